// RopeNeoxInplace: rotary position embedding in the rotate-half (GPT-NeoX / HF) form.
// For each row r and head h, with half = head_dim/2 and i in [0, half):
//   a = x[i], b = x[i + half]
//   x[i]        = a * cos[r,i] - b * sin[r,i]
//   x[i + half] = b * cos[r,i] + a * sin[r,i]
// Shapes: x [rows, x_stride] holding `heads` heads of head_dim contiguous floats each;
// cos, sin [rows, half] (the angles of each row's absolute position, precomputed once by
// the engine: inv_freq[i] = theta^(-2i/head_dim), HF apply_rotary_pos_emb).
// Threads: disjoint rows may run concurrently. Cost: 6*rows*heads*half flop.
#pragma once

#include <cstddef>

namespace oko {

struct RopeArgs {
  float* x;
  size_t x_stride;
  size_t rows;
  size_t heads;
  size_t head_dim;
  const float* cos;
  const float* sin;
};

void RopeNeoxInplace(const RopeArgs& a);

}  // namespace oko
