// A TraceSink for golden tests: residuals per layer, the final hidden state and the
// attention probabilities [layer, head, query, key] of the first T positions.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "engine/trace.h"

namespace oko {

// Records what the trace hook sees: residuals per layer, final hidden, attention rows.
class Recorder : public TraceSink {
 public:
  Recorder(int64_t layers, int64_t heads, int64_t T) : layers_(layers), heads_(heads), T_(T) {
    attn.assign(layers * heads * T * T, 0.0f);
  }
  void OnAttention(const AttentionEvent& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (int64_t h = 0; h < e.num_heads; ++h)
      for (int64_t k = 0; k < e.num_keys; ++k) {
        const int64_t s = e.key_positions[k];
        if (e.query_pos < T_ && s < T_)
          attn[((e.layer * heads_ + e.first_head + h) * T_ + e.query_pos) * T_ + s] =
              e.probs[h * e.num_keys + k];
      }
  }
  void OnResidual(int64_t layer, int64_t pos0, int64_t T, const float* x, int64_t dim) override {
    auto& r = residual[layer + 1];
    r.insert(r.end(), x, x + T * dim);
  }
  void OnFinalHidden(int64_t pos0, int64_t T, const float* x, int64_t dim) override {
    final_hidden.insert(final_hidden.end(), x, x + T * dim);
  }
  std::vector<float> attn;
  std::map<int64_t, std::vector<float>> residual;
  std::vector<float> final_hidden;

 private:
  int64_t layers_, heads_, T_;
  std::mutex mu_;
};

}  // namespace oko
