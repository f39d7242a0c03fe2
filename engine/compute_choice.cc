#include "engine/compute_choice.h"

#include <fmt/format.h>

namespace oko {

ComputeChoice ChooseCompute(const ComputeRates& rates, bool onednn_bf16, DType weights) {
  if (weights != DType::kBF16) return {ComputeMode::kF32, fmt::format("{} weights", DTypeName(weights))};
  if (rates.bf16_dot_gflops <= 0 || !onednn_bf16) return {ComputeMode::kF32, "no bf16 dot on this CPU"};
  const double ratio = rates.f32_fma_gflops > 0 ? rates.bf16_dot_gflops / rates.f32_fma_gflops : 0;
  const ComputeMode mode = ratio >= kMinBf16Speedup ? ComputeMode::kBf16 : ComputeMode::kF32;
  return {mode, fmt::format("bf16 dot {:.1f}x f32 FMA", ratio)};
}

}  // namespace oko
