// Prefill GEMM on AVX-512 with packed activations: y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]),
// W row-major exactly as stored (used in place, no copy, no per-M setup). Two variants:
//   bf16: x rounded to bf16 (RNE), bf16 W, vdpbf16ps (AVX512-BF16): the fast mode.
//   f32:  x in f32, W f32, bf16 or f16 widened exactly to f32, f32 FMAs: the exact mode.
//
// x is packed once per call in blocks of 16 rows whose vector lanes are the rows: for each
// step of K (a (k, k+1) pair as one 32-bit word in bf16, one k in f32) a block holds that
// step of its 16 rows, [M/16][steps][16]. The kernel broadcasts one step of a weight row
// to all lanes and multiply-adds it into 16 rows of that output column at once, so the
// weights need no transposed copy: each tile is 48 rows x 8 columns, 24 accumulators,
// and reads 3 packed vectors and 8 broadcasts per 24 multiply-adds. The f32 variant
// widens the 8 weight rows of a tile into a small buffer first (once per 96 rows of x).
//
// Why not Highway: 1.0.3 has no bf16 dot product (ReorderWidenMulAccumulate emulates it
// at half the speed, DEPS.md). Why not oneDNN: its brgemm reaches 206-211 GFLOP/s per core
// at the Qwen3-0.6B shapes here, this kernel 215-227, with no primitive to create per M
// (bench/ops/gemm_packed_bench); oneDNN's f32 path would need f32 copies of bf16/f16 W.
//
// bf16 needs K even. M, N any; columns of y outside [n_begin, n_end) and the padding
// between y rows are not touched. bf16: products of bf16 values are exact in f32,
// accumulation f32 (vdpbf16ps flushes denormal inputs and results to zero).
// Reference: f64 matmul of x and W as the variant rounds them. Tolerance:
// 1e-5 * sum_k |w x| abs.
// Threads: Pack*Rows on disjoint block ranges and Gemm*Packed on disjoint column ranges
// may run concurrently. Gemm*Packed use a small buffer of the calling thread.
// Cost: 2*M*N*K flop; W is read once per 96 rows of x (from cache after the first).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace oko {

constexpr size_t kPackRows = 16;  // rows per packed block

// Whether the CPU runs the bf16 variant (AVX512-BF16) / the f32 variant (AVX-512 F).
bool PackedGemmBf16Supported();
bool PackedGemmF32Supported();

inline size_t PackedBlocks(size_t M) { return (M + kPackRows - 1) / kPackRows; }

// bf16: 32-bit words (bf16 pairs) PackBf16Rows writes for M rows of K values (K even).
inline size_t PackedBf16Words(size_t M, size_t K) { return PackedBlocks(M) * kPackRows * (K / 2); }

// Packs blocks [block_begin, block_end) of x (f32 rows with stride x_stride) into
// `packed`; rows past M are zero.
void PackBf16Rows(const float* x, size_t x_stride, size_t M, size_t K, size_t block_begin,
                  size_t block_end, uint32_t* packed);

// y[m, n] = sum_k x[m, k] W[n, k] (+ bias[n]) for all m < M and n in [n_begin, n_end).
void GemmBf16Packed(const uint32_t* packed, size_t M, size_t K, const uint16_t* w,
                    const float* bias, float* y, size_t y_stride, size_t n_begin,
                    size_t n_end);

// f32: floats PackF32Rows writes for M rows of K values.
inline size_t PackedF32Floats(size_t M, size_t K) { return PackedBlocks(M) * kPackRows * K; }

void PackF32Rows(const float* x, size_t x_stride, size_t M, size_t K, size_t block_begin,
                 size_t block_end, float* packed);

// As GemmBf16Packed, exactly in f32; w is [N, K] of w_dtype (F32, BF16 or F16).
void GemmF32Packed(const float* packed, size_t M, size_t K, const void* w, DType w_dtype,
                   const float* bias, float* y, size_t y_stride, size_t n_begin,
                   size_t n_end);

}  // namespace oko
