// Weight matmuls: y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]), W row-major [N, K] exactly as
// stored by PyTorch / safetensors (no copy). x, y, bias f32; W f32, bf16 or f16 (widened
// exactly to f32, f32 accumulation: the exact mode).
//
// GemvRows computes rows [n_begin, n_end) of y for M = 1 (decode; checks M == 1): memory
// bound, streams each weight row once, sequentially (one row at a time measured 2-3x
// faster from DRAM than interleaving rows). The engine splits N over its threads.
// GemmRows does the same for any M >= 1 rows of x, reading each weight row from memory
// once for all M (tiles of 1 weight row x 4 activation rows; oneDNN handles large
// prefill batches, see gemm_onednn.h).
// Any K, N (tails handled); x, w, y need no alignment. y rows outside [n_begin, n_end)
// and the padding between y rows are not touched. y must not overlap x (rows of y are
// written while later rows of x are still read).
// Reference: torch.nn.functional.linear in f64. Tolerance: 1e-5 * sum_k |w x| abs.
// Threads: disjoint row ranges may run concurrently. Allocates nothing.
// Cost: 2*M*N*K flop; N*K*sizeof(W) + M*K*4 + M*N*4 bytes.
#pragma once

#include <cstddef>

#include "common/dtype.h"

namespace oko {

struct MatMulArgs {
  const float* x;      // [M, K], row stride x_stride
  size_t x_stride;
  const void* w;       // [N, K] row-major
  DType w_dtype;       // kF32, kBF16 or kF16
  const float* bias;   // [N] or nullptr
  float* y;            // [M, N], row stride y_stride
  size_t y_stride;
  size_t M, K, N;
};

void GemvRows(const MatMulArgs& a, size_t n_begin, size_t n_end);
void GemmRows(const MatMulArgs& a, size_t n_begin, size_t n_end);

}  // namespace oko
