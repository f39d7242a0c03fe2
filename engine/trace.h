// TraceSink: the hook through which a person (or a test) sees inside a forward pass.
// Off means a null pointer and one predictable branch per node; nothing is copied and no
// second forward pass runs. On means the engine hands the sink views of its own buffers.
#pragma once

#include <cstdint>

namespace oko {

// Softmax attention probabilities of `num_heads` query heads at one query position
// (after masking, before multiplying V), over the keys the model actually attended.
struct AttentionEvent {
  int64_t layer;
  int64_t query_pos;      // absolute position of the query token
  int64_t first_head;     // query heads [first_head, first_head + num_heads)
  int64_t num_heads;
  const float* probs;     // [num_heads, num_keys]
  const int64_t* key_positions;  // [num_keys], absolute positions (ring order resolved)
  int64_t num_keys;
};

class TraceSink {
 public:
  virtual ~TraceSink() = default;
  // Asked once per layer per forward call; false skips that layer's events.
  virtual bool WantsAttention(int64_t layer) const { return true; }
  // Called from worker threads, each call for a distinct (query_pos, heads) pair.
  virtual void OnAttention(const AttentionEvent& e) {}
  // The residual stream [T, dim] at positions pos0.. after decoder layer `layer`
  // (layer == -1: the embeddings). Called from the main thread.
  virtual void OnResidual(int64_t layer, int64_t pos0, int64_t T, const float* x, int64_t dim) {}
  // The final RMSNorm output [T, dim] (the input of lm_head).
  virtual void OnFinalHidden(int64_t pos0, int64_t T, const float* x, int64_t dim) {}
};

}  // namespace oko
