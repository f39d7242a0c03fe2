// RmsNormRows: y[r,i] = x[r,i] * w[i] / sqrt(mean_i x[r,i]^2 + eps), rows [0, rows).
// Shapes: x, y [rows, cols] row-major with strides x_stride, y_stride >= cols; w [cols].
// y may alias x. Types: x, y f32; w f32 (weights are widened once at load).
// Threads: disjoint row ranges may run concurrently. Allocates nothing.
// Reference: HF Qwen3RMSNorm / LlamaRMSNorm (f32, weight * normed). Tolerance: 2e-6 rel.
// Cost: 4*rows*cols flop; rows*cols*8 + cols*4 bytes.
#pragma once

#include <cstddef>

namespace oko {

struct RmsNormArgs {
  const float* x;
  size_t x_stride;
  const float* w;
  float* y;
  size_t y_stride;
  size_t rows;
  size_t cols;
  float eps;
};

void RmsNormRows(const RmsNormArgs& a);

}  // namespace oko
