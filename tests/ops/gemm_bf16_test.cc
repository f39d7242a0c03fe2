#include "ops/gemm_bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

// Packs x in two calls (as two workers would), computes the columns [n_begin, n_end) and
// checks them against an f64 matmul of the bf16-rounded x and W; every other element of y
// must keep its sentinel.
void RunCase(size_t M, size_t K, size_t N, size_t n_begin, size_t n_end, bool with_bias) {
  if (!Bf16GemmSupported()) GTEST_SKIP() << "no AVX512-BF16";
  const uint32_t seed = static_cast<uint32_t>(M * 7919 + K * 31 + N);
  const std::vector<float> wf = test::RandomFloats(N * K, seed).ToVector();
  std::vector<uint16_t> w(N * K);
  for (size_t i = 0; i < w.size(); ++i) w[i] = F32ToBf16(wf[i]);
  const std::vector<float> bias = test::RandomFloats(N, seed + 1).ToVector();
  const size_t x_stride = K + 5, y_stride = N + 3;
  const test::Buffer<float> x = test::RandomFloats(M * x_stride, seed + 2, 1);
  constexpr float kSentinel = -7.0f;
  std::vector<float> y(M * y_stride, kSentinel);

  std::vector<uint32_t> packed(PackedBf16Words(M, K), 0xdeadbeef);
  const size_t blocks = (M + kBf16PackRows - 1) / kBf16PackRows;
  PackBf16Rows(x.data(), x_stride, M, K, 0, blocks / 2, packed.data());
  PackBf16Rows(x.data(), x_stride, M, K, blocks / 2, blocks, packed.data());
  GemmBf16Packed(packed.data(), M, K, w.data(), with_bias ? bias.data() : nullptr, y.data(),
                 y_stride, n_begin, n_end);

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
        const double p = double{Bf16ToF32(F32ToBf16(x[m * x_stride + k]))} * Bf16ToF32(w[n * K + k]);
        sum += p;
        mag += std::fabs(p);
      }
      want.push_back(sum);
      tol.push_back(1e-5 * mag + 1e-6);
      got.push_back(y[m * y_stride + n]);
    }
  }
  test::ExpectWithin(got.data(), want, tol,
                     "M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" +
                         std::to_string(N) + " n=[" + std::to_string(n_begin) + ", " +
                         std::to_string(n_end) + ")");
}

TEST(GemmBf16Test, MatchesBf16RoundedReference) {
  // M: one row, a partial block, whole tiles of 48 rows, a partial chunk of 96 and more.
  for (size_t M : {1, 5, 16, 17, 48, 50, 96, 100, 161})
    RunCase(M, /*K=*/64, /*N=*/24, 0, 24, /*with_bias=*/M % 2 == 1);
  // N: every edge width of the 8-column tiles; K: short, odd pair counts and real sizes.
  for (size_t N : {1, 3, 7, 9, 13, 15}) RunCase(20, 34, N, 0, N, true);
  RunCase(33, 2, 5, 0, 5, false);
  RunCase(64, 1024, 40, 0, 40, false);
  RunCase(130, 3072, 17, 0, 17, true);
}

TEST(GemmBf16Test, ColumnRangesTouchOnlyTheirColumns) {
  RunCase(70, 96, 37, 8, 21, true);
  RunCase(70, 96, 37, 36, 37, false);
}

TEST(GemmBf16Test, PaddingRowsArePackedAsZero) {
  if (!Bf16GemmSupported()) GTEST_SKIP() << "no AVX512-BF16";
  const size_t M = 3, K = 4;
  const std::vector<float> x(M * K, 1.0f);
  std::vector<uint32_t> packed(PackedBf16Words(M, K), 0xdeadbeef);
  ASSERT_EQ(packed.size(), kBf16PackRows * K / 2);
  PackBf16Rows(x.data(), K, M, K, 0, 1, packed.data());
  const uint32_t one_one = 0x3f803f80;  // bf16 pair (1.0, 1.0)
  for (size_t p = 0; p < K / 2; ++p)
    for (size_t r = 0; r < kBf16PackRows; ++r)
      EXPECT_EQ(packed[p * kBf16PackRows + r], r < M ? one_one : 0u) << p << " " << r;
}

}  // namespace
}  // namespace oko
