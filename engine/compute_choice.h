// The compute mode `auto` resolves to, chosen from what this CPU measured rather than
// from a feature flag: the bf16 path (activations rounded to bf16, vdpbf16ps) only pays
// where the bf16 dot is clearly faster than f32 FMA. Zen 4 measured 235 vs 117 GFLOP/s
// per core (2x: bf16); an Emerald Rapids Xeon 84 vs 175 (0.5x: f32, whose prefill ran
// 1.4-1.6x faster there); a Zen 2 has no bf16 dot at all (f32). Where oneDNN runs AMX
// tiles (Sapphire Rapids and later, when the kernel grants them), its bf16 GEMM is timed
// against the f32 FMA peak the same way.
#pragma once

#include <string>

#include "common/dtype.h"
#include "engine/machine_limits.h"
#include "ops/gemm_onednn.h"

namespace oko {

struct ComputeChoice {
  ComputeMode mode;
  std::string why;  // "bf16 dot 2.0x f32 FMA", ...
};

// Pure: bf16 for bf16 weights when AMX's GEMM or the bf16 dot runs at least
// kMinBf16Speedup x the f32 FMA rate and oneDNN can run bf16 (it covers the batch sizes the packed kernel leaves);
// f32 otherwise (f16 and f32 weights always: their bf16 mode would round them).
inline constexpr double kMinBf16Speedup = 1.3;
ComputeChoice ChooseCompute(const ComputeRates& rates, bool onednn_bf16, DType weights);

}  // namespace oko
