// RopeTable: cos/sin of every position's rotary angles, computed once and grown on demand
// (positions are absolute and keep growing past the KV capacity in sliding-window mode).
// inv_freq follows HF `_compute_default_rope_parameters` (f32), with the linear and
// llama3 scalings of `ROPE_INIT_FUNCTIONS`, or a GGUF file's rope_freqs factors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "loaders/hf_config.h"

namespace oko {

class RopeTable {
 public:
  RopeTable(int64_t head_dim, double theta, const RopeScaling& scaling);

  // Makes positions [0, n) available.
  void Reserve(int64_t n);
  // Rows of head_dim/2 floats for absolute position `pos` (Reserve first).
  const float* cos(int64_t pos) const { return cos_.data() + pos * half_; }
  const float* sin(int64_t pos) const { return sin_.data() + pos * half_; }
  int64_t half() const { return half_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  int64_t half_;
  int64_t size_ = 0;
  std::vector<float> inv_freq_;
  std::vector<float> cos_, sin_;
};

}  // namespace oko
