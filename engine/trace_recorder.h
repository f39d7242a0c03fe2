// TraceRecorder: a TraceSink that keeps the attention of chosen layers, heads and query
// positions and writes it as a trace .safetensors (DESIGN.md "Files it writes").
//
// Filters are applied as events arrive (WantsAttention skips whole layers, OnAttention
// drops queries and heads not asked for), so memory and time grow with what is asked.
// Everything is keyed by absolute position: after the KV ring wraps, a query's row holds
// the keys it actually attended (sinks and the window), and keys it did not see are 0.
//
// File layout (all metadata values are JSON text, docs/TRACES.md):
//   attn.L        [heads, queries, keys] f32 or f16, one per recorded layer L
//   lens.ids      [lens_layers, queries, k] i32 (with the logit lens)
//   lens.probs    [lens_layers, queries, k] f32
//   __metadata__  format, model, tokens, token_ids, layers, heads, query_positions,
//                 key_positions, key_is_sink, sink_count, attended, options, ...
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/status.h"
#include "engine/trace.h"
#include "loaders/trace_file.h"

namespace oko {

class Context;

struct TraceFilter {
  std::vector<int64_t> layers;  // empty: every layer
  std::vector<int64_t> heads;   // empty: every query head
  int64_t query_begin = 0;      // absolute query positions [query_begin, query_end)
  int64_t query_end = INT64_MAX;
  bool residuals = false;       // keep the residual stream of recorded queries (logit lens)
  // Keep probabilities as f16 (half the memory; about 3 significant digits): a long
  // recording such as `oko chat --record-attention`. Write then saves f16 too.
  bool store_f16 = false;
};

// One position of the traced sequence. turn/role name the chat message it belongs to
// (-1 / "" outside a chat).
struct TraceToken {
  int32_t id = 0;
  std::string text;
  int64_t turn = -1;
  std::string role;
};

struct TraceWriteOptions {
  std::string model;                 // model name (folder name)
  std::vector<TraceToken> tokens;    // every position of the sequence, index = position
  DType dtype = DType::kF32;         // of attn.L: kF32 or kF16
  std::string options_json = "{}";   // how the trace was made (flags), a JSON object
  std::map<std::string, std::string> extra;  // more metadata (JSON text values)
};

class TraceRecorder : public TraceSink {
 public:
  // num_layers / num_heads of the model; sink_count: the KV cache's sink positions.
  TraceRecorder(int64_t num_layers, int64_t num_heads, int64_t sink_count, TraceFilter filter);

  bool WantsAttention(int64_t layer) const override { return layer_slot_[layer] >= 0; }
  void OnAttention(const AttentionEvent& e) override;
  void OnResidual(int64_t layer, int64_t pos0, int64_t T, const float* x, int64_t dim) override;

  const std::vector<int64_t>& layers() const { return layers_; }
  const std::vector<int64_t>& heads() const { return heads_; }
  std::vector<int64_t> QueryPositions() const;
  // Every key position some recorded query attended, ascending.
  std::vector<int64_t> KeyPositions() const;
  // Bytes of the attention tensors the file will hold (the header aside).
  uint64_t TensorBytes(DType dtype) const;
  // Nanoseconds spent inside the hooks, summed over threads.
  int64_t hook_ns() const { return hook_ns_.load(std::memory_order_relaxed); }
  // Bytes the recording holds in memory (probabilities, key lists, residuals).
  uint64_t HeldBytes() const;

  // Logit lens: each recorded layer's residual (and the embeddings) through the final norm
  // and lm_head, top-k per recorded query. Needs filter.residuals.
  void ComputeLogitLens(Context& context, int64_t k);
  // Every token id the lens ranked (to name them in the metadata).
  const std::vector<int32_t>& lens_ids() const { return lens_.ids; }

  // Writes the trace atomically. Errors name the path.
  Status Write(const std::string& path, const TraceWriteOptions& o) const;
  // The trace as Write would save it (the logit lens aside), in memory and restricted
  // to the queries in [query_begin, query_end): what a live view such as `oko chat`'s
  // /attn renders without a file.
  TraceData Snapshot(const TraceWriteOptions& o, int64_t query_begin, int64_t query_end) const;

 private:
  using Keys = std::shared_ptr<const std::vector<int64_t>>;
  struct Row {  // one (layer, query): the heads asked for, over the keys it attended
    Keys keys;                 // shared by the layers of a query that saw the same keys
    std::vector<float> probs;  // [heads_.size(), keys->size()], unless store_f16
    std::vector<uint16_t> half;  // the same as f16, with store_f16
  };
  struct Lens {
    int64_t k = 0;
    std::vector<int64_t> layers;   // -1: embeddings, then decoder layers
    std::vector<int32_t> ids;      // [layers, queries, k]
    std::vector<float> probs;
  };
  // Head `h` of the row (layer slot, query) spread over the columns `keys` (0 where unseen).
  void DenseRow(size_t slot, int64_t query, int64_t h, const std::vector<int64_t>& keys,
                float* out) const;
  Row* FindOrAddRow(int64_t layer_slot, int64_t query, const int64_t* keys, int64_t n);
  std::map<std::string, std::string> Metadata(const TraceWriteOptions& o,
                                              const std::vector<int64_t>& queries,
                                              const std::vector<int64_t>& keys) const;

  std::vector<int64_t> layers_, heads_;
  std::vector<int64_t> layer_slot_;  // model layer -> index in layers_, or -1
  std::vector<int64_t> head_slot_;   // model head -> index in heads_, or -1
  int64_t sink_count_;
  TraceFilter filter_;
  mutable std::mutex mu_;
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Row>> rows_;  // (slot, query)
  std::map<int64_t, Keys> query_keys_;  // query -> the keys its first recorded layer saw
  std::map<std::pair<int64_t, int64_t>, std::vector<float>> residuals_;  // (layer, query)
  int64_t last_query_ = -1;  // the largest query position recorded
  Lens lens_;
  std::atomic<int64_t> hook_ns_{0};
};

}  // namespace oko
