// Linear: one weight matrix of the model, y = x W^T (+ b), W [N, K] memory-mapped as stored.
// Decode (M = 1) streams W through the Highway GEMV split over the thread pool. Prefill
// (M > 1) in bf16 mode runs bf16 weights through the vdpbf16ps kernel (ops/gemm_bf16.h:
// x packed once, columns of W split over the pool) and f32 weights through oneDNN; in
// f32 mode, f32 weights use oneDNN and bf16/f16 weights the Highway multi-row kernel
// (exact f32 accumulation of widened weights).
//
// oneDNN runs inside our pool, one single-threaded matmul per slice of W's rows per
// worker, rather than on its own OpenMP team: two thread pools spinning on two cores
// fight (DEPS.md), and ours already balances slices across workers.
#pragma once

#include <memory>
#include <vector>

#include "engine/thread_pool.h"
#include "loaders/safetensors.h"
#include "ops/gemm_onednn.h"
#include "ops/matmul.h"

namespace oko {

class Linear {
 public:
  Linear(const TensorView* weight, const TensorView* bias, ComputeMode mode);

  int64_t N() const { return N_; }
  int64_t K() const { return K_; }
  DType dtype() const { return w_->dtype; }
  size_t weight_bytes() const { return w_->nbytes; }

  // y[M, N] = x[M, K] W^T (+ b); row strides in elements.
  void Forward(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
               size_t y_stride);

 private:
  bool UsesBf16Kernel() const;
  bool UsesOnednn() const;
  const TensorView* w_;
  std::vector<float> bias_;
  int64_t N_, K_;
  ComputeMode mode_;
  void ForwardBf16(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                   size_t y_stride);
  void ForwardOnednn(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                     size_t y_stride);
  // One per slice of rows of W, created on the first prefill call.
  std::vector<std::unique_ptr<OnednnMatMul>> slices_;
};

}  // namespace oko
