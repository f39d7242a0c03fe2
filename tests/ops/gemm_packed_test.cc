#include "ops/gemm_packed.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

enum class Variant { kBf16, kF32 };

// Packs x in two calls (as two workers would), computes the columns [n_begin, n_end) and
// checks them against an f64 matmul of x and W as the variant rounds them (bf16: both to
// bf16; f32: W of w_dtype widened exactly); every other element of y keeps its sentinel.
void RunCase(Variant variant, DType w_dtype, size_t M, size_t K, size_t N, size_t n_begin,
             size_t n_end, bool with_bias) {
  const bool bf16 = variant == Variant::kBf16;
  if (bf16 ? !PackedGemmBf16Supported() : !PackedGemmF32Supported())
    GTEST_SKIP() << "the CPU lacks the instructions";
  const uint32_t seed = static_cast<uint32_t>(M * 7919 + K * 31 + N);
  std::vector<float> wf = test::RandomFloats(N * K, seed).ToVector();
  std::vector<uint16_t> w16(N * K);
  for (size_t i = 0; i < wf.size(); ++i) {
    if (w_dtype == DType::kBF16) w16[i] = F32ToBf16(wf[i]), wf[i] = Bf16ToF32(w16[i]);
    if (w_dtype == DType::kF16) w16[i] = F32ToF16(wf[i]), wf[i] = F16ToF32(w16[i]);
  }
  const void* w = w_dtype == DType::kF32 ? static_cast<const void*>(wf.data()) : w16.data();
  const std::vector<float> bias = test::RandomFloats(N, seed + 1).ToVector();
  const size_t x_stride = K + 5, y_stride = N + 3;
  const test::Buffer<float> x = test::RandomFloats(M * x_stride, seed + 2, 1);
  constexpr float kSentinel = -7.0f;
  std::vector<float> y(M * y_stride, kSentinel);

  const size_t blocks = PackedBlocks(M);
  const float* b = with_bias ? bias.data() : nullptr;
  if (bf16) {
    std::vector<uint32_t> packed(PackedBf16Words(M, K), 0xdeadbeef);
    PackBf16Rows(x.data(), x_stride, M, K, 0, blocks / 2, packed.data());
    PackBf16Rows(x.data(), x_stride, M, K, blocks / 2, blocks, packed.data());
    GemmBf16Packed(packed.data(), M, K, w16.data(), b, y.data(), y_stride, n_begin, n_end);
  } else {
    std::vector<float> packed(PackedF32Floats(M, K), NAN);
    PackF32Rows(x.data(), x_stride, M, K, 0, blocks / 2, packed.data());
    PackF32Rows(x.data(), x_stride, M, K, blocks / 2, blocks, packed.data());
    GemmF32Packed(packed.data(), M, K, w, w_dtype, b, y.data(), y_stride, n_begin, n_end);
  }

  std::vector<double> want, tol;
  std::vector<float> got;
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < y_stride; ++n) {
      if (n < n_begin || n >= n_end) {
        ASSERT_EQ(y[m * y_stride + n], kSentinel) << "wrote y[" << m << ", " << n << "]";
        continue;
      }
      double sum = with_bias ? bias[n] : 0.0, mag = std::fabs(sum);
      for (size_t k = 0; k < K; ++k) {
        const float xv = x[m * x_stride + k];
        const double p = double{bf16 ? Bf16ToF32(F32ToBf16(xv)) : xv} * wf[n * K + k];
        sum += p;
        mag += std::fabs(p);
      }
      want.push_back(sum);
      tol.push_back(1e-5 * mag + 1e-6);
      got.push_back(y[m * y_stride + n]);
    }
  }
  test::ExpectWithin(got.data(), want, tol,
                     std::string(bf16 ? "bf16" : "f32") + " W " + std::string(DTypeName(w_dtype)) +
                         " M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" +
                         std::to_string(N) + " n=[" + std::to_string(n_begin) + ", " +
                         std::to_string(n_end) + ")");
}

void RunShapes(Variant v, DType w) {
  // M: one row, a partial block, whole tiles of 48 rows, a partial chunk of 96 and more.
  for (size_t M : {1, 5, 16, 17, 48, 50, 96, 100, 161})
    RunCase(v, w, M, /*K=*/64, /*N=*/24, 0, 24, /*with_bias=*/M % 2 == 1);
  // N: every edge width of the 8-column tiles; K: short, partial steps of 16, real sizes.
  for (size_t N : {1, 3, 7, 9, 13, 15}) RunCase(v, w, 20, 34, N, 0, N, true);
  RunCase(v, w, 33, 2, 5, 0, 5, false);
  RunCase(v, w, 64, 1024, 40, 0, 40, false);
  RunCase(v, w, 130, 3072, 17, 0, 17, true);
  // Column ranges touch only their columns.
  RunCase(v, w, 70, 96, 37, 8, 21, true);
  RunCase(v, w, 70, 96, 37, 36, 37, false);
}

TEST(GemmPackedTest, Bf16MatchesBf16RoundedReference) { RunShapes(Variant::kBf16, DType::kBF16); }

TEST(GemmPackedTest, F32MatchesExactReferenceForEveryWeightType) {
  for (DType w : {DType::kF32, DType::kBF16, DType::kF16}) RunShapes(Variant::kF32, w);
  RunCase(Variant::kF32, DType::kF16, 40, 35, 11, 0, 11, true);  // odd K
}

TEST(GemmPackedTest, PaddingRowsArePackedAsZero) {
  if (!PackedGemmBf16Supported()) GTEST_SKIP() << "no AVX512-BF16";
  const size_t M = 3, K = 4;
  const std::vector<float> x(M * K, 1.0f);
  std::vector<uint32_t> packed(PackedBf16Words(M, K), 0xdeadbeef);
  ASSERT_EQ(packed.size(), kPackRows * K / 2);
  PackBf16Rows(x.data(), K, M, K, 0, 1, packed.data());
  const uint32_t one_one = 0x3f803f80;  // bf16 pair (1.0, 1.0)
  for (size_t p = 0; p < K / 2; ++p)
    for (size_t r = 0; r < kPackRows; ++r)
      EXPECT_EQ(packed[p * kPackRows + r], r < M ? one_one : 0u) << p << " " << r;
}

}  // namespace
}  // namespace oko
