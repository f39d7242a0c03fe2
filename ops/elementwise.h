// Elementwise ops of the layer graph. All f32, any length n (tails handled, no alignment
// needed), in place where the name says so. Threads: disjoint ranges may run
// concurrently. Allocate nothing. Tested against f64 references on every Highway target.
#pragma once

#include <cstddef>
#include <cstdint>

namespace oko {

// y[i] += x[i]. Cost: n flop; 12n bytes.
void AddInplace(float* y, const float* x, size_t n);

// y[i] += a * x[i] (one fused multiply-add where the target has FMA). Cost: 2n flop; 12n
// bytes.
void AddScaledInplace(float* y, const float* x, float a, size_t n);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)) (HF ACT2FN["silu"]).
// Computed as g * sigmoid(g) with exp(-|g|) (contrib/math Exp), so any finite g is fine.
// out may alias gate or up. Cost: ~6n flop; 12n bytes. Tolerance: 1e-6 rel.
void SiluMul(const float* gate, const float* up, float* out, size_t n);

// In-place numerically stable softmax of x[0, n): max-subtracted exp, f32 sum.
// Entries equal to -inf get probability 0; if all are -inf the row becomes all 0.
// Tolerance: 2e-6 rel. Cost: ~5n flop; 8n bytes.
void SoftmaxInplace(float* x, size_t n);

// Widens n bf16 / f16 values to f32 (exact, incl. subnormals, inf and NaN; f16 uses F16C
// on AVX2 and up, scalar code below).
void Bf16ToF32Row(const uint16_t* src, float* dst, size_t n);
void F16ToF32Row(const uint16_t* src, float* dst, size_t n);
// Narrows n f32 values to bf16, round to nearest even (PyTorch .to(bfloat16)); NaN stays
// NaN. Highway 1.0.3's DemoteTo truncates, so the rounding is done here.
void F32ToBf16Row(const float* src, uint16_t* dst, size_t n);
// Narrows n f32 values to f16 (round to nearest even): KV-cache storage.
void F32ToF16Row(const float* src, uint16_t* dst, size_t n);

}  // namespace oko
