// Linear: one weight matrix of the model, y = x W^T (+ b), W [N, K] memory-mapped as stored.
// Decode (M = 1) streams W through the Highway GEMV split over the thread pool; prefill
// (M > 1) uses oneDNN where it computes in the requested precision, else the Highway
// multi-row kernel (exact f32 accumulation of widened weights).
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
  bool UsesOnednn() const;
  const TensorView* w_;
  std::vector<float> bias_;
  int64_t N_, K_;
  ComputeMode mode_;
  std::unique_ptr<OnednnMatMul> gemm_;  // created on the first prefill call
};

}  // namespace oko
