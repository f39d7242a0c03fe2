// Decode on AVX512-BF16: y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]) for a few rows (the
// next token of M sequences, 1 <= M <= kBf16RowsMaxM), x rounded to bf16 (RNE) once per
// call by RoundRowsToBf16, bf16 W used in place: the fast mode's arithmetic, as the
// prefill's packed bf16 kernel (gemm_packed.h) rounds it. Each row of y is computed the
// same way whatever M is (same steps, same order): a sequence decoded in a batch gets
// exactly what it gets alone.
//
// Each weight row is read from memory once for all M rows: R rows a part of the range
// apart stream side by side (as the GEMV's streams, matmul.h), each 64-byte step of a
// weight row is one register that vdpbf16ps multiplies into the M rows' accumulators, so
// a step costs M dot instructions where the f32 path widens twice and runs 2M FMAs.
// Why: decode of several sequences is bound by reading W, and the f32 arithmetic of M
// rows (the row kernels of matmul.h) had become as long as the reads.
//
// K even (bf16 pairs); any N; y columns outside [n_begin, n_end) and the padding between
// y rows are not touched. Products of bf16 values are exact in f32, accumulation f32
// (vdpbf16ps flushes denormal inputs and results to zero).
// Reference: f64 matmul of the bf16-rounded x and W. Tolerance: 1e-5 * sum_k |w x| abs.
// Threads: disjoint column ranges may run concurrently. Allocates nothing.
// Cost: 2*M*N*K flop; N*K*2 + M*K*2 + M*N*4 bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace oko {

inline constexpr size_t kBf16RowsMaxM = 11;

// Whether this CPU runs it (AVX512-BF16).
bool Bf16RowsSupported();

// x [M, K] f32 (row stride x_stride) -> xb [M, K] bf16, RNE (K even).
void RoundRowsToBf16(const float* x, size_t x_stride, size_t M, size_t K, uint16_t* xb);

// y[m, n] for m < M, n in [n_begin, n_end); xb from RoundRowsToBf16 (row stride K).
void GemmBf16Rows(const uint16_t* xb, size_t M, size_t K, const uint16_t* w, const float* bias,
                  float* y, size_t y_stride, size_t n_begin, size_t n_end);

}  // namespace oko
