#include "engine/compute_choice.h"

#include <fmt/format.h>

namespace oko {

ComputeChoice ChooseCompute(const ComputeRates& rates, bool onednn_bf16, DType weights) {
  if (weights != DType::kBF16) return {ComputeMode::kF32, fmt::format("{} weights", DTypeName(weights))};
  const double f32 = rates.f32_fma_gflops;
  // AMX tiles, measured as oneDNN runs them: several times the AVX-512 rates where present.
  if (onednn_bf16 && rates.amx_gemm_gflops > 0 && f32 > 0 &&
      rates.amx_gemm_gflops >= kMinBf16Speedup * f32)
    return {ComputeMode::kBf16, fmt::format("AMX bf16 GEMM {:.1f}x f32 FMA", rates.amx_gemm_gflops / f32)};
  if (rates.bf16_dot_gflops <= 0 || !onednn_bf16) return {ComputeMode::kF32, "no bf16 dot on this CPU"};
  const double ratio = f32 > 0 ? rates.bf16_dot_gflops / f32 : 0;
  const ComputeMode mode = ratio >= kMinBf16Speedup ? ComputeMode::kBf16 : ComputeMode::kF32;
  return {mode, fmt::format("bf16 dot {:.1f}x f32 FMA", ratio)};
}

}  // namespace oko
