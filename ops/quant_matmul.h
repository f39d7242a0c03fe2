// Weight matmuls on quantized weights: y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]) with W a
// WeightView in any QuantType (GGML blocks, or F32/BF16/F16).
//
// Exact mode (this file): each chunk of 256 values of a weight row (one super-block, or 8
// blocks of 32) is dequantized in registers (Highway, every target) into an L1 buffer
// with exactly the rounding of DequantizeRow (= gguf-py / ggml to_float), then multiplied
// with the f32 activations by f32 FMAs. So the result is the f32 matmul of x with the
// dequantized weights: no rounding of the activations.
//
// GemvQuantRows: rows [n_begin, n_end) of y for M = 1 (decode; streams each weight row
// once). GemmQuantRows: any M, each weight row read once for all of them; exact: weight
// rows dequantized 3 at a time into a buffer of the thread and multiplied with all M rows
// in 3x3 register tiles (large prefills go through DequantizeWeightRows + the packed f32
// GEMM instead, see engine/linear.cc); kInt8: each block unpacked once for tiles of 4
// activation rows (8 for the k-quants; batched decode), every row computed exactly as
// GemvQuantRows computes it alone.
// K must be a multiple of the format's block, and of 32 for F32/BF16/F16 (Linear sends
// those to ops/matmul, which takes any K). y rows outside [n_begin, n_end) are not
// touched; y must not overlap x.
// Reference: f64 matmul of x with DequantizeRow(W). Tolerance: 1e-5 * sum_k |w x| abs.
// Threads: disjoint row ranges may run concurrently. Allocates only thread-local buffers
// (3 rows of K floats for exact GemmQuantRows, the activations of kInt8), grown once.
// Cost: 2*M*N*K flop; N*row_bytes + M*K*4 + M*N*4 bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/quant_formats.h"

namespace oko {

// kExact: the f32 matmul on the dequantized weights (above). kInt8 (the fast mode, as
// llama.cpp computes): the activations are rounded to 8 bits per block, Q8_0 blocks of 32
// for the 32-block formats (ggml's quantize_row_q8_0, plus d*sum(q) per block for Q4_1/
// Q5_1's m term, as Q8_1), BlockQ8K per 256 for the k-quants, and each block's dot product
// runs in int8 x int8 -> int32 (AVX2 vpmaddubsw/vpmaddwd), scaled in f32. Error: that of
// rounding x to 8 bits per block (~0.4% of max|x| per block), the same arithmetic as
// llama.cpp's CPU backend. Targets below AVX2 run kExact.
enum class QuantCompute { kExact, kInt8 };

struct QuantMatMulArgs {
  const float* x;     // [M, K], row stride x_stride
  size_t x_stride;
  WeightView w;       // [N, K]
  const float* bias;  // [N] or nullptr
  float* y;           // [M, N], row stride y_stride
  size_t y_stride;
  size_t M;
  QuantCompute compute = QuantCompute::kExact;
  // kInt8 only: the M rows of x already quantized by QuantizeInt8Activations, row m at
  // xq + m * Int8ActivationBytes (once per call, shared by the threads), or nullptr: each
  // call quantizes x itself.
  const void* xq = nullptr;
};

// The activations of the int8 kernels for weights of `type` (K values). The 32-block
// formats: Q8_0's rounding (per block of 32, d = max|x| / 127 rounded to f16, q =
// round(x / d)) as float sums[K/32] (d * sum(q) per block), float d[K/32], int32
// offsets[K/4] (-128 * the sum of each 4 consecutive q) and int8 q[K]. The k-quants:
// ActQ8K per 256 values (below), whose rows are a multiple of 64 bytes. The kernels take
// any address but the k-quants' run faster from a 64-byte boundary (Int8ActivationRows).
size_t Int8ActivationBytes(QuantType type, size_t K);
void QuantizeInt8Activations(QuantType type, const float* x, size_t K, void* out);
// Whether QuantizeInt8Activations writes the same bytes for weights of type a and of type
// b: the 32-block formats share one encoding, Q4_K and Q5_K another, Q6_K has its own.
bool SameInt8Activations(QuantType a, QuantType b);

// The k-quants' activations per 256 values: BlockQ8K's q, d and sums of 16 (the q of
// Q4_K/Q5_K paired, below), and in dsums, d times the sums the weights' terms outside the
// products multiply: Q6_K's offsets the 16 sums of 16, Q4_K/Q5_K's mins 8 sums of 32 (then
// zeros). So the 512-bit kernels take that term in one FMA per activation row and
// super-block, f32 rounding of exact values (int32 madd, convert and FMA before; with the
// alignment below, 8 rows from cache, Zen 4: Q4_K 146 -> 169 GFLOP/s, Q6_K 137 -> 155).
// q first and the size a multiple of 64 bytes, so that in rows from a 64-byte boundary no
// load of q splits a cache line.
struct ActQ8K {
  int8_t qs[256];
  float dsums[16];
  float d;
  int16_t sums[16];
  int16_t sums32[8];  // Q4_K/Q5_K: the sums of each sub-block of 32, in sub-block order
  uint8_t padding[12];
};
static_assert(sizeof(ActQ8K) % 64 == 0);

// `rows` rows of Int8ActivationBytes(type, K) in buf, from a 64-byte boundary: buf grown
// if needed, the first row returned.
uint8_t* Int8ActivationRows(std::vector<uint8_t>& buf, QuantType type, size_t K, size_t rows);

// Q4_K/Q5_K activations hold each super-block's sub-blocks of 32 in the order 0 2 1 3 4 6
// 5 7 (the sums of 16 stay in order): the low nibbles of 64 weight bytes are sub-blocks
// 4h and 4h + 2, the high ones 4h + 1 and 4h + 3, so a 512-bit register of either meets
// 64 consecutive activations. PairedPosition: where sub-block j is; PairSubBlocks
// reorders the 256 q of a super-block (its own inverse).
constexpr size_t PairedPosition(size_t sub_block) {
  return (sub_block & 4) | ((sub_block & 1) << 1) | ((sub_block >> 1) & 1);
}
void PairSubBlocks(int8_t* qs);

// Whether GemvQuantRows runs the int8 kernel for this format on the dispatched target.
bool QuantInt8Supported(QuantType type);

// The rows per group of the interleaved layout (WeightView::interleave) that this
// target's int8 kernel reads for `type`, or 1 where it reads row-major rows only: 16 for
// every block format on AVX512-VNNI (16 rows per register, lane r = row r: each activation
// row's dot products with 16 weight rows in 64 vpdpbusd per super-block, no reduction). Every
// kernel takes both layouts (interleaved weights elsewhere are copied back to row-major
// rows a group at a time); rows of a batch equal the row alone in either.
size_t QuantInterleaveRows(QuantType type);

void GemvQuantRows(const QuantMatMulArgs& a, size_t n_begin, size_t n_end);
void GemmQuantRows(const QuantMatMulArgs& a, size_t n_begin, size_t n_end);

// out[(n - n_begin) * K + k] = dequantized W[n, k] for n in [n_begin, n_end), with the
// Highway dequantizer of the kernels (bit-identical to DequantizeRow).
void DequantizeWeightRows(const WeightView& w, size_t n_begin, size_t n_end, float* out);

}  // namespace oko
