#include "ops/gemm_bf16_rows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

// Raw intrinsics, not Highway: runs once where the CPU has AVX512-BF16.
class GemmBf16RowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Bf16RowsSupported()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  }
};

TEST_F(GemmBf16RowsTest, RoundsLikeTheScalarRne) {
  for (size_t K : {2, 16, 30, 32, 34, 64, 1026}) {
    const test::Buffer<float> x = test::RandomFloats(3 * (K + 5), static_cast<uint32_t>(K), 1, -3.0f, 3.0f);
    std::vector<uint16_t> xb(3 * K + 1, 0xABCD);
    RoundRowsToBf16(x.data(), K + 5, 3, K, xb.data());
    for (size_t m = 0; m < 3; ++m)
      for (size_t k = 0; k < K; ++k)
        ASSERT_EQ(xb[m * K + k], F32ToBf16(x[m * (K + 5) + k])) << "K=" << K << " m=" << m << " k=" << k;
    EXPECT_EQ(xb[3 * K], 0xABCD) << "wrote past the rows";
  }
}

void RunCase(size_t M, size_t K, size_t N, bool with_bias, size_t n_begin, size_t n_end) {
  const uint32_t seed = static_cast<uint32_t>(M * 7919 + K * 31 + N);
  const test::Buffer<float> wf = test::RandomFloats(N * K, seed);
  std::vector<uint16_t> w(N * K);
  for (size_t i = 0; i < w.size(); ++i) w[i] = F32ToBf16(wf[i]);
  const std::vector<float> bias = test::RandomFloats(N, seed + 1).ToVector();
  const size_t x_stride = K + 3, y_stride = N + 2;
  const test::Buffer<float> x = test::RandomFloats(M * x_stride, seed + 2, 1);
  std::vector<uint16_t> xb(M * K);
  RoundRowsToBf16(x.data(), x_stride, M, K, xb.data());
  std::vector<float> y(M * y_stride, -7.0f);
  GemmBf16Rows(xb.data(), M, K, w.data(), with_bias ? bias.data() : nullptr, y.data(), y_stride,
               n_begin, n_end);
  std::vector<double> want, tol;
  std::vector<float> got;
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      const float cell = y[m * y_stride + n];
      if (n < n_begin || n >= n_end) {
        ASSERT_EQ(cell, -7.0f) << "wrote outside the range, n=" << n;
        continue;
      }
      double sum = with_bias ? bias[n] : 0.0, mag = 0.0;
      for (size_t k = 0; k < K; ++k) {
        const double p = double{Bf16ToF32(xb[m * K + k])} * Bf16ToF32(w[n * K + k]);
        sum += p;
        mag += std::fabs(p);
      }
      want.push_back(sum);
      tol.push_back(1e-5 * mag + 1e-6);
      got.push_back(cell);
    }
    ASSERT_EQ(y[m * y_stride + N], -7.0f) << "wrote into the padding";
  }
  test::ExpectWithin(got.data(), want, tol,
                     "M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N));
}

TEST_F(GemmBf16RowsTest, EveryRowCountMatchesTheReference) {
  for (size_t M = 1; M <= kBf16RowsMaxM; ++M) {
    RunCase(M, /*K=*/96, /*N=*/37, /*with_bias=*/M % 2 == 0, 0, 37);  // streams + leftover rows
    RunCase(M, /*K=*/1024, /*N=*/13, /*with_bias=*/true, 0, 13);
  }
}

TEST_F(GemmBf16RowsTest, TailsOfKAndRangesOfN) {
  for (size_t K : {2, 30, 34, 62, 66, 130})
    for (size_t M : {1, 4, 8, 11}) RunCase(M, K, 21, true, 0, 21);
  RunCase(4, 64, 50, false, 7, 33);
  RunCase(9, 64, 50, true, 49, 50);
  RunCase(3, 64, 50, true, 20, 20);  // empty range
}

}  // namespace
}  // namespace oko
