// Prefill GEMM for bf16 weights with AVX512-BF16's vdpbf16ps: y[M, N] = x[M, K] · W[N, K]^T
// (+ bias[N]), W row-major exactly as stored (used in place, no copy, no per-M setup).
//
// x is rounded to bf16 (RNE) and packed once per call, in blocks of 16 rows whose vector
// lanes are the rows: block b holds, for each pair index p = k/2, the 16 rows' (k, k+1)
// pairs as 32-bit words, [M/16][K/2][16]. The kernel broadcasts one (k, k+1) pair of a
// weight row to all lanes and multiply-adds it into 16 rows of that output column at once,
// so weights need no transposed copy: each tile is 48 rows x 8 columns, 24 accumulators,
// and reads 3 packed vectors and 8 broadcast pairs per 24 vdpbf16ps.
//
// Why not Highway: 1.0.3 has no bf16 dot product (ReorderWidenMulAccumulate emulates it
// at half the speed, DEPS.md). Why not oneDNN: its brgemm reaches ~210 GFLOP/s per core
// at the Qwen3-0.6B shapes here, this kernel ~300 (bench/ops/gemm_bf16_bench).
//
// K must be even. M, N any; rows of y outside [n_begin, n_end) and the padding between y
// rows are not touched. Products of bf16 values are exact in f32; accumulation is f32
// (vdpbf16ps flushes denormal inputs and results to zero).
// Reference: f64 matmul of the bf16-rounded x and W. Tolerance: 1e-5 * sum_k |w x| abs.
// Threads: PackBf16Rows on disjoint block ranges and GemmBf16Packed on disjoint column
// ranges may run concurrently. Allocates nothing.
// Cost: 2*M*N*K flop; W is read once per 96 rows of x (from cache after the first).
#pragma once

#include <cstddef>
#include <cstdint>

namespace oko {

// True when the CPU has AVX512-BF16 (the only requirement of the functions below).
bool Bf16GemmSupported();

constexpr size_t kBf16PackRows = 16;  // rows per packed block

// 32-bit words PackBf16Rows writes for M rows of K values (K even).
inline size_t PackedBf16Words(size_t M, size_t K) {
  return (M + kBf16PackRows - 1) / kBf16PackRows * kBf16PackRows * (K / 2);
}

// Packs blocks [block_begin, block_end) of x (f32 rows with stride x_stride) into
// `packed`; rows past M are zero.
void PackBf16Rows(const float* x, size_t x_stride, size_t M, size_t K, size_t block_begin,
                  size_t block_end, uint32_t* packed);

// y[m, n] = sum_k x[m, k] W[n, k] (+ bias[n]) for all m < M and n in [n_begin, n_end).
void GemmBf16Packed(const uint32_t* packed, size_t M, size_t K, const uint16_t* w,
                    const float* bias, float* y, size_t y_stride, size_t n_begin,
                    size_t n_end);

}  // namespace oko
