#include "ops/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

using test::Buffer;
using test::RandomFloats;

// Weights [N, K] in the given dtype, at a misaligned offset, and their exact f32 values.
struct Weights {
  Weights(DType dtype, size_t N, size_t K, uint32_t seed, size_t offset)
      : dtype(dtype), values(RandomFloats(N * K, seed).ToVector()) {
    const size_t elem = DTypeSize(dtype);
    bytes.resize((N * K + offset + 1) * elem);
    start = bytes.data() + offset * elem;
    for (size_t i = 0; i < N * K; ++i) {
      if (dtype == DType::kF32) {
        std::memcpy(start + 4 * i, &values[i], 4);
        continue;
      }
      const uint16_t h = dtype == DType::kBF16 ? F32ToBf16(values[i]) : F32ToF16(values[i]);
      values[i] = dtype == DType::kBF16 ? Bf16ToF32(h) : F16ToF32(h);
      std::memcpy(start + 2 * i, &h, 2);
    }
  }
  DType dtype;
  std::vector<float> values;
  std::vector<uint8_t> bytes;
  uint8_t* start;
};

// Double-precision y[m, n] and the tolerance 1e-5 * sum_k |w x| (+ tiny).
void Reference(const MatMulArgs& a, const std::vector<float>& w, size_t n_begin, size_t n_end,
               std::vector<double>& want, std::vector<double>& tol) {
  want.clear();
  tol.clear();
  for (size_t m = 0; m < a.M; ++m) {
    for (size_t n = n_begin; n < n_end; ++n) {
      double sum = a.bias != nullptr ? a.bias[n] : 0.0, mag = 0.0;
      for (size_t k = 0; k < a.K; ++k) {
        const double p = static_cast<double>(w[n * a.K + k]) * a.x[m * a.x_stride + k];
        sum += p;
        mag += std::fabs(p);
      }
      want.push_back(sum);
      tol.push_back(1e-5 * mag + 1e-6 * std::fabs(sum) + 1e-30);
    }
  }
}

void RunCase(DType dtype, size_t M, size_t K, size_t N, bool with_bias, bool gemv) {
  const uint32_t seed = static_cast<uint32_t>(K * 131 + N * 7 + M);
  const Weights w(dtype, N, K, seed, /*offset=*/1 + K % 3);
  const size_t x_stride = K + 3, y_stride = N + 5;
  Buffer<float> x = RandomFloats(M * x_stride, seed + 1, /*offset=*/3);
  Buffer<float> bias = RandomFloats(N, seed + 2, /*offset=*/1);
  Buffer<float> y(M * y_stride, /*offset=*/2);
  for (size_t i = 0; i < y.size(); ++i) y[i] = -12345.0f;

  MatMulArgs a{x.data(), x_stride, w.start, dtype, with_bias ? bias.data() : nullptr,
               y.data(), y_stride, M, K, N};
  // Two row ranges, as the engine splits N over threads; the first one is odd-sized.
  const size_t split = N / 3;
  for (auto [b, e] : {std::pair{size_t{0}, split}, std::pair{split, N}}) {
    if (gemv) {
      GemvRows(a, b, e);
    } else {
      GemmRows(a, b, e);
    }
  }
  std::vector<double> want, tol;
  Reference(a, w.values, 0, N, want, tol);
  std::vector<float> got;
  for (size_t m = 0; m < M; ++m)
    for (size_t n = 0; n < N; ++n) got.push_back(y[m * y_stride + n]);
  test::ExpectWithin(got.data(), want, tol,
                     std::string(DTypeName(dtype)) + (gemv ? " gemv" : " gemm") + " M=" +
                         std::to_string(M) + " K=" + std::to_string(K) + " N=" +
                         std::to_string(N) + (with_bias ? " bias" : ""));
  // Padding between rows is untouched.
  for (size_t m = 0; m < M; ++m)
    for (size_t n = N; n < y_stride; ++n) ASSERT_EQ(y[m * y_stride + n], -12345.0f);
}

class MatMulTest : public test::TargetTest {};

TEST_P(MatMulTest, GemvMatchesReference) {
  // 6145: rows long enough for the GEMV's long-row stream count (x past 12 KiB).
  std::vector<size_t> ks = test::kTailSizes;
  ks.push_back(6145);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16})
    for (size_t K : ks)
      for (size_t N : {1, 4, 7, 8, 9, 13, 19, 35})
        RunCase(dtype, /*M=*/1, K, N, /*with_bias=*/N % 2 == 1, /*gemv=*/true);
}

TEST_P(MatMulTest, GemmMatchesReference) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16})
    for (size_t K : {0, 1, 5, 16, 17, 35, 128, 1024})
      for (size_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9})
        for (size_t N : {1, 5, 9, 13})
          RunCase(dtype, M, K, N, /*with_bias=*/(N + M) % 2 == 1, /*gemv=*/false);
}

TEST_P(MatMulTest, EmptyRowRangeWritesNothing) {
  std::vector<float> x(16, 1.0f), w(16 * 4, 1.0f), y(4, 7.0f);
  MatMulArgs a{x.data(), 16, w.data(), DType::kF32, nullptr, y.data(), 4, 1, 16, 4};
  GemvRows(a, 2, 2);
  GemmRows(a, 4, 4);
  for (float v : y) EXPECT_EQ(v, 7.0f);
}

OKO_INSTANTIATE_ON_ALL_TARGETS(MatMulTest);

}  // namespace
}  // namespace oko
