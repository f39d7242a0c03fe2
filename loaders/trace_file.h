// Reads an attention trace written by TraceRecorder (engine/trace_recorder.h) and checks
// that its tensors agree with its metadata, so the viewers and the diff can trust it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace oko {

struct TraceData {
  std::string path;
  std::string model;
  std::string dtype;                       // "f32" or "f16" (values below are f32)
  std::string options;                     // JSON object text
  std::vector<std::string> tokens;         // every position of the sequence
  std::vector<int64_t> token_ids;
  std::vector<int64_t> token_turns;        // chat traces only: turn and role of every position
  std::vector<std::string> token_roles;
  std::vector<int64_t> layers, heads;      // recorded model layers and query heads
  std::vector<int64_t> query_positions;    // ascending absolute positions
  std::vector<int64_t> key_positions;      // ascending absolute positions
  std::vector<int64_t> key_is_sink;        // per key: 1 for a KV-cache sink
  int64_t sink_count = 0;
  std::vector<std::vector<float>> attn;    // per recorded layer: [heads, queries, keys]
  // Logit lens (empty without): per lens layer (-1 = embeddings), query, rank.
  std::vector<int64_t> lens_layers;
  int64_t lens_k = 0;
  std::vector<int32_t> lens_ids;
  std::vector<float> lens_probs;
  std::map<int64_t, std::string> lens_tokens;  // id -> text of every id in lens_ids

  int64_t H() const { return static_cast<int64_t>(heads.size()); }
  int64_t Q() const { return static_cast<int64_t>(query_positions.size()); }
  int64_t K() const { return static_cast<int64_t>(key_positions.size()); }
  // Row of layer slot `l`, head slot `h`, query slot `q`: K() probabilities.
  const float* Row(size_t l, int64_t h, int64_t q) const {
    return attn[l].data() + (h * Q() + q) * K();
  }
};

// Errors name the file and what disagrees (e.g. "T.safetensors: tensor 'attn.2' has shape
// [4, 3, 9], expected [4, 3, 10] (heads, query_positions, key_positions)").
Result<TraceData> ReadTrace(const std::string& path);
// The same from the bytes of a trace file (what ReadTrace maps); `path` is for messages.
// The result holds copies, so `data` may go away afterwards.
Result<TraceData> ReadTraceFromMemory(const std::byte* data, size_t size, const std::string& path);

}  // namespace oko
