#include "ops/gemm_onednn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

// oneDNN picks its own ISA, so these tests run once (not per Highway target).
// Returns oneDNN's implementation name.
std::string RunCase(DType w_dtype, ComputeMode mode, size_t M, size_t K, size_t N, bool with_bias) {
  const uint32_t seed = static_cast<uint32_t>(M * 1000 + K * 10 + N);
  std::vector<float> wf = test::RandomFloats(N * K, seed).ToVector();
  std::vector<uint16_t> w16(N * K);
  for (size_t i = 0; i < wf.size(); ++i) {
    if (w_dtype == DType::kBF16) w16[i] = F32ToBf16(wf[i]), wf[i] = Bf16ToF32(w16[i]);
    if (w_dtype == DType::kF16) w16[i] = F32ToF16(wf[i]), wf[i] = F16ToF32(w16[i]);
  }
  const std::vector<float> bias = test::RandomFloats(N, seed + 1).ToVector();
  const size_t x_stride = K + 3, y_stride = N + 1;
  const test::Buffer<float> x = test::RandomFloats(M * x_stride, seed + 2, 1);
  std::vector<float> y(M * y_stride, -7.0f);

  const void* w = w_dtype == DType::kF32 ? static_cast<const void*>(wf.data()) : w16.data();
  OnednnMatMul mm(w, w_dtype, N, K, with_bias ? bias.data() : nullptr, mode);
  EXPECT_GE(mm.weight_bytes(), N * K * (mode == ComputeMode::kBf16 ? 2 : 4));
  for (int rep = 0; rep < 2; ++rep) mm.Run(x.data(), x_stride, M, y.data(), y_stride);  // cached 2nd
  EXPECT_NE(std::string(mm.impl_name()).substr(0, 3), "ref") << mm.impl_name();

  // bf16 mode: the reference rounds x and W to bf16 (RNE) and accumulates exactly, so the
  // only difference is f32 accumulation order.
  const bool bf16 = mode == ComputeMode::kBf16;
  std::vector<double> want, tol;
  std::vector<float> got;
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      double sum = with_bias ? bias[n] : 0.0, mag = 0.0;
      for (size_t k = 0; k < K; ++k) {
        const float xv = x[m * x_stride + k], wv = wf[n * K + k];
        const double p = bf16 ? double{Bf16ToF32(F32ToBf16(xv))} * Bf16ToF32(F32ToBf16(wv))
                              : double{xv} * wv;
        sum += p;
        mag += std::fabs(p);
      }
      want.push_back(sum);
      tol.push_back(1e-5 * mag + 1e-6);
      got.push_back(y[m * y_stride + n]);
    }
    EXPECT_EQ(y[m * y_stride + N], -7.0f) << "wrote past the row";
  }
  test::ExpectWithin(got.data(), want, tol,
                     std::string(DTypeName(w_dtype)) + (bf16 ? " bf16" : " f32") + " M=" +
                         std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N));
  return mm.impl_name();
}

// The "flags" line of /proc/cpuinfo holds `flag`.
bool CpuInfoHasFlag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("flags", 0) == 0) return (line + " ").find(" " + flag + " ") != std::string::npos;
  return false;
}

TEST(OnednnMatMulTest, AmxOnlyWhereTheCpuHasIt) {
  if (!CpuInfoHasFlag("amx_bf16") || !CpuInfoHasFlag("amx_tile")) {
    EXPECT_FALSE(OnednnAmxBf16Supported());
  }
  if (OnednnAmxBf16Supported()) {
    EXPECT_TRUE(OnednnBf16Supported());
  }
}

TEST(OnednnMatMulTest, Bf16RunsOnAmxTilesWhereGranted) {
  if (!OnednnAmxBf16Supported())
    GTEST_SKIP() << "no AMX here (the CPU lacks AMX-BF16, the kernel did not grant the tiles, or "
                    "ONEDNN_MAX_CPU_ISA is below AMX): the AMX path does not run; its choice is "
                    "tested in compute_choice_test";
  const std::string impl = RunCase(DType::kBF16, ComputeMode::kBf16, 128, 512, 256, true);
  EXPECT_NE(impl.find("amx"), std::string::npos) << impl;
  RunCase(DType::kBF16, ComputeMode::kBf16, 13, 96, 80, false);
}

TEST(OnednnMatMulTest, F32ModeMatchesReference) {
  for (DType w : {DType::kF32, DType::kBF16, DType::kF16})
    for (size_t M : {1, 3, 17, 64})
      RunCase(w, ComputeMode::kF32, M, /*K=*/96, /*N=*/80, /*with_bias=*/M % 2 == 1);
  RunCase(DType::kBF16, ComputeMode::kF32, 130, 1024, 96, false);
}

TEST(OnednnMatMulTest, Bf16ModeMatchesBf16RoundedReference) {
  if (!OnednnBf16Supported()) GTEST_SKIP() << "oneDNN has no bf16 matmul on this CPU (no AVX-512)";
  for (DType w : {DType::kF32, DType::kBF16, DType::kF16})
    for (size_t M : {1, 3, 17, 64})
      RunCase(w, ComputeMode::kBf16, M, /*K=*/96, /*N=*/80, /*with_bias=*/M % 2 == 0);
  RunCase(DType::kBF16, ComputeMode::kBf16, 130, 1024, 96, true);
  RunCase(DType::kBF16, ComputeMode::kBf16, 5, 33, 7, true);  // odd shapes
}

TEST(OnednnMatMulTest, SeveralBatchSizesOnOneObject) {
  std::vector<uint16_t> w(64 * 32);
  for (size_t i = 0; i < w.size(); ++i) w[i] = F32ToBf16(static_cast<float>(i % 7) - 3.0f);
  // Small integers: exact in either mode.
  const ComputeMode mode = OnednnBf16Supported() ? ComputeMode::kBf16 : ComputeMode::kF32;
  OnednnMatMul mm(w.data(), DType::kBF16, 64, 32, nullptr, mode);
  SetOnednnThreads(2);
  for (size_t M : {4, 1, 4, 9}) {
    std::vector<float> x(M * 32, 1.0f), y(M * 64);
    mm.Run(x.data(), 32, M, y.data(), 64);
    for (size_t n = 0; n < 64; ++n) {
      float want = 0.0f;
      for (size_t k = 0; k < 32; ++k) want += Bf16ToF32(w[n * 32 + k]);
      for (size_t m = 0; m < M; ++m) ASSERT_EQ(y[m * 64 + n], want) << "M=" << M;
    }
  }
}

}  // namespace
}  // namespace oko
