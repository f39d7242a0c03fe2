#include "engine/trace_recorder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/check.h"
#include "engine/context.h"
#include "engine/profiler.h"
#include "loaders/safetensors_writer.h"
#include "ops/elementwise.h"

namespace oko {

namespace {

// Sorted, unique; an empty list means every index in [0, n).
std::vector<int64_t> Selection(std::vector<int64_t> v, int64_t n, const char* what) {
  if (v.empty()) {
    v.resize(n);
    std::iota(v.begin(), v.end(), 0);
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  for (int64_t i : v) OKO_CHECK(i >= 0 && i < n, "{} {} outside [0, {})", what, i, n);
  return v;
}

std::vector<int64_t> Slots(const std::vector<int64_t>& selected, int64_t n) {
  std::vector<int64_t> slot(n, -1);
  for (size_t i = 0; i < selected.size(); ++i) slot[selected[i]] = static_cast<int64_t>(i);
  return slot;
}

// The key positions of a row as inclusive [first, last] spans (they are ascending).
nlohmann::json Spans(const std::vector<int64_t>& keys) {
  nlohmann::json spans = nlohmann::json::array();
  for (size_t i = 0; i < keys.size();) {
    size_t j = i;
    while (j + 1 < keys.size() && keys[j + 1] == keys[j] + 1) ++j;
    spans.push_back({keys[i], keys[j]});
    i = j + 1;
  }
  return spans;
}

// Writes a row of f32 values as the trace's dtype.
Status WriteRow(AtomicFile& f, const std::vector<float>& row, DType dtype,
                std::vector<uint16_t>* half) {
  if (dtype == DType::kF32) return f.Write(row.data(), row.size() * 4);
  half->resize(row.size());
  F32ToF16Row(row.data(), half->data(), row.size());
  return f.Write(half->data(), half->size() * 2);
}

}  // namespace

TraceRecorder::TraceRecorder(int64_t num_layers, int64_t num_heads, int64_t sink_count,
                             TraceFilter filter)
    : layers_(Selection(filter.layers, num_layers, "layer")),
      heads_(Selection(filter.heads, num_heads, "head")),
      layer_slot_(Slots(layers_, num_layers)),
      head_slot_(Slots(heads_, num_heads)),
      sink_count_(sink_count),
      filter_(std::move(filter)) {}

TraceRecorder::Row* TraceRecorder::FindOrAddRow(int64_t layer_slot, int64_t query,
                                                const int64_t* keys, int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& row = rows_[{layer_slot, query}];
  if (row == nullptr) {
    row = std::make_unique<Row>();
    // Every layer of a query attends the same keys (one KV window for all): keep the list
    // once per query unless a layer's differs.
    Keys& shared = query_keys_[query];
    if (shared == nullptr || static_cast<int64_t>(shared->size()) != n ||
        !std::equal(keys, keys + n, shared->begin())) {
      Keys own = std::make_shared<const std::vector<int64_t>>(keys, keys + n);
      if (shared == nullptr) shared = own;
      row->keys = std::move(own);
    } else {
      row->keys = shared;
    }
    if (filter_.store_f16) row->half.assign(heads_.size() * n, 0);
    else row->probs.assign(heads_.size() * n, 0.0f);
    last_query_ = std::max(last_query_, query);
  }
  // Events of one query in one forward see the same keys (OnResidual(-1) drops re-runs).
  OKO_CHECK(static_cast<int64_t>(row->keys->size()) == n, "query {} saw {} then {} keys",
            query, row->keys->size(), n);
  return row.get();
}

void TraceRecorder::OnAttention(const AttentionEvent& e) {
  if (e.query_pos < filter_.query_begin || e.query_pos >= filter_.query_end) return;
  const int64_t slot = layer_slot_[e.layer];
  if (slot < 0) return;
  const int64_t* wanted = head_slot_.data() + e.first_head;
  if (std::all_of(wanted, wanted + e.num_heads, [](int64_t s) { return s < 0; })) return;
  const int64_t t0 = Profiler::NowNs();
  Row* row = FindOrAddRow(slot, e.query_pos, e.key_positions, e.num_keys);
  // Distinct events write distinct heads of the row: no lock needed for the copy.
  for (int64_t h = 0; h < e.num_heads; ++h) {
    if (wanted[h] < 0) continue;
    if (filter_.store_f16)
      F32ToF16Row(e.probs + h * e.num_keys, row->half.data() + wanted[h] * e.num_keys, e.num_keys);
    else
      std::memcpy(row->probs.data() + wanted[h] * e.num_keys, e.probs + h * e.num_keys,
                  e.num_keys * sizeof(float));
  }
  hook_ns_.fetch_add(Profiler::NowNs() - t0, std::memory_order_relaxed);
}

void TraceRecorder::OnResidual(int64_t layer, int64_t pos0, int64_t T, const float* x,
                               int64_t dim) {
  const int64_t t0 = Profiler::NowNs();
  std::lock_guard<std::mutex> lock(mu_);
  if (layer == -1 && pos0 <= last_query_) {
    // A forward over positions already recorded (a rewind) replaces what they held.
    std::erase_if(rows_, [&](const auto& r) { return r.first.second >= pos0; });
    std::erase_if(query_keys_, [&](const auto& r) { return r.first >= pos0; });
    std::erase_if(residuals_, [&](const auto& r) { return r.first.second >= pos0; });
  }
  if (filter_.residuals) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t pos = pos0 + t;
      if (pos < filter_.query_begin || pos >= filter_.query_end) continue;
      residuals_[{layer, pos}].assign(x + t * dim, x + (t + 1) * dim);
      last_query_ = std::max(last_query_, pos);
    }
  }
  hook_ns_.fetch_add(Profiler::NowNs() - t0, std::memory_order_relaxed);
}

std::vector<int64_t> TraceRecorder::QueryPositions() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> q;
  for (const auto& r : rows_) q.push_back(r.first.second);
  for (const auto& r : residuals_) q.push_back(r.first.second);
  std::sort(q.begin(), q.end());
  q.erase(std::unique(q.begin(), q.end()), q.end());
  return q;
}

std::vector<int64_t> TraceRecorder::KeyPositions() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<char> seen;
  for (const auto& r : rows_) {
    for (int64_t p : *r.second->keys) {
      if (p >= static_cast<int64_t>(seen.size())) seen.resize(p + 1, 0);
      seen[p] = 1;
    }
  }
  std::vector<int64_t> keys;
  for (size_t p = 0; p < seen.size(); ++p)
    if (seen[p]) keys.push_back(static_cast<int64_t>(p));
  return keys;
}

uint64_t TraceRecorder::HeldBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t bytes = 0;
  std::vector<const std::vector<int64_t>*> lists;
  for (const auto& [key, row] : rows_) {
    bytes += row->probs.size() * sizeof(float) + row->half.size() * sizeof(uint16_t) + sizeof(Row);
    lists.push_back(row->keys.get());
  }
  std::sort(lists.begin(), lists.end());
  lists.erase(std::unique(lists.begin(), lists.end()), lists.end());
  for (const auto* keys : lists) bytes += keys->size() * sizeof(int64_t);
  for (const auto& [key, r] : residuals_) bytes += r.size() * sizeof(float);
  return bytes;
}

uint64_t TraceRecorder::TensorBytes(DType dtype) const {
  return layers_.size() * heads_.size() * QueryPositions().size() * KeyPositions().size() *
         DTypeSize(dtype);
}

void TraceRecorder::ComputeLogitLens(Context& context, int64_t k) {
  OKO_CHECK(filter_.residuals, "the logit lens needs TraceFilter::residuals");
  const std::vector<int64_t> queries = QueryPositions();
  const int64_t V = context.config().vocab_size, D = context.config().hidden_size;
  const int64_t Q = queries.size();
  k = std::min(k, V);
  lens_ = Lens{k, {}, {}, {}};
  constexpr int64_t kChunk = 32;  // rows per lm_head call: [32, vocab] f32 of scratch
  std::vector<float> x(kChunk * D), logits(kChunk * V);
  std::vector<int32_t> order(V);
  for (int64_t layer = -1; layer < context.config().num_layers; ++layer) {
    if (!residuals_.contains({layer, queries.empty() ? 0 : queries[0]})) continue;
    lens_.layers.push_back(layer);
    for (int64_t q0 = 0; q0 < Q; q0 += kChunk) {
      const int64_t n = std::min(kChunk, Q - q0);
      for (int64_t i = 0; i < n; ++i) {
        const auto& r = residuals_.at({layer, queries[q0 + i]});
        std::copy(r.begin(), r.end(), x.begin() + i * D);
      }
      context.LogitsOfHidden(x.data(), n, logits.data());
      for (int64_t i = 0; i < n; ++i) {
        const float* row = logits.data() + i * V;
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
        double sum = 0;
        for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - row[order[0]]);
        for (int64_t j = 0; j < k; ++j) {
          lens_.ids.push_back(order[j]);
          lens_.probs.push_back(static_cast<float>(std::exp(double(row[order[j]]) - row[order[0]]) / sum));
        }
      }
    }
  }
}

std::map<std::string, std::string> TraceRecorder::Metadata(const TraceWriteOptions& o,
                                                           const std::vector<int64_t>& queries,
                                                           const std::vector<int64_t>& keys) const {
  nlohmann::json texts = nlohmann::json::array(), ids = nlohmann::json::array(),
                 turns = nlohmann::json::array(), roles = nlohmann::json::array();
  bool chat = false;
  for (const TraceToken& t : o.tokens) {
    texts.push_back(t.text);
    ids.push_back(t.id);
    turns.push_back(t.turn);
    roles.push_back(t.role);
    chat = chat || t.turn >= 0;
  }
  nlohmann::json sinks = nlohmann::json::array(), attended = nlohmann::json::array();
  for (int64_t p : keys) sinks.push_back(p < sink_count_ ? 1 : 0);
  for (int64_t q : queries) {
    auto it = rows_.find({0, q});
    attended.push_back(it == rows_.end() ? nlohmann::json::array() : Spans(*it->second->keys));
  }
  std::map<std::string, std::string> m = o.extra;
  m["format"] = "oko-trace-1";
  m["model"] = o.model;
  m["dtype"] = o.dtype == DType::kF16 ? "f16" : "f32";
  m["tokens"] = texts.dump();
  m["token_ids"] = ids.dump();
  if (chat) {
    m["token_turns"] = turns.dump();
    m["token_roles"] = roles.dump();
  }
  m["layers"] = nlohmann::json(layers_).dump();
  m["heads"] = nlohmann::json(heads_).dump();
  m["query_positions"] = nlohmann::json(queries).dump();
  m["key_positions"] = nlohmann::json(keys).dump();
  m["key_is_sink"] = sinks.dump();
  m["sink_count"] = std::to_string(sink_count_);
  m["attended"] = attended.dump();
  m["options"] = o.options_json;
  if (!lens_.layers.empty()) {
    m["lens_layers"] = nlohmann::json(lens_.layers).dump();
    m["lens_k"] = std::to_string(lens_.k);
  }
  return m;
}

void TraceRecorder::DenseRow(size_t slot, int64_t query, int64_t h,
                             const std::vector<int64_t>& keys, float* out) const {
  std::fill(out, out + keys.size(), 0.0f);
  auto it = rows_.find({static_cast<int64_t>(slot), query});
  if (it == rows_.end()) return;
  const Row& r = *it->second;
  const std::vector<int64_t>& row_keys = *r.keys;
  const size_t n = row_keys.size();
  // Both key lists ascend: one merge walk maps row keys to columns.
  size_t col = 0;
  for (size_t i = 0; i < n; ++i) {
    while (keys[col] != row_keys[i]) ++col;
    out[col] = filter_.store_f16 ? F16ToF32(r.half[h * n + i]) : r.probs[h * n + i];
  }
}

Status TraceRecorder::Write(const std::string& path, const TraceWriteOptions& o) const {
  OKO_CHECK(o.dtype == DType::kF32 || o.dtype == DType::kF16, "trace dtype f32 or f16");
  const std::vector<int64_t> queries = QueryPositions(), keys = KeyPositions();
  for (int64_t p : keys)
    if (p >= static_cast<int64_t>(o.tokens.size()))
      return Errorf("{}: key position {} has no token ({} given)", path, p, o.tokens.size());
  const int64_t H = heads_.size(), Q = queries.size(), K = keys.size();
  std::vector<TensorToWrite> tensors;
  for (size_t slot = 0; slot < layers_.size(); ++slot) {
    auto write = [this, slot, &queries, &keys, H, K, &o](AtomicFile& f) -> Status {
      std::vector<float> dense(K);
      std::vector<uint16_t> half;
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t q : queries) {
          DenseRow(slot, q, h, keys, dense.data());
          OKO_RETURN_IF_ERROR(WriteRow(f, dense, o.dtype, &half));
        }
      }
      return Status();
    };
    tensors.push_back({"attn." + std::to_string(layers_[slot]), o.dtype, {H, Q, K}, write});
  }
  if (!lens_.layers.empty()) {
    const std::vector<int64_t> shape{static_cast<int64_t>(lens_.layers.size()), Q, lens_.k};
    tensors.push_back(TensorFromBytes("lens.ids", DType::kI32, shape, lens_.ids.data()));
    tensors.push_back(TensorFromBytes("lens.probs", DType::kF32, shape, lens_.probs.data()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return WriteSafetensors(path, tensors, Metadata(o, queries, keys));
}

TraceData TraceRecorder::Snapshot(const TraceWriteOptions& o, int64_t query_begin,
                                  int64_t query_end) const {
  TraceData t;
  t.model = o.model;
  t.dtype = "f32";
  t.options = o.options_json;
  const bool chat = std::any_of(o.tokens.begin(), o.tokens.end(), [](const TraceToken& x) { return x.turn >= 0; });
  for (const TraceToken& tok : o.tokens) {
    t.tokens.push_back(tok.text);
    t.token_ids.push_back(tok.id);
    if (!chat) continue;
    t.token_turns.push_back(tok.turn);
    t.token_roles.push_back(tok.role);
  }
  t.layers = layers_;
  t.heads = heads_;
  for (int64_t q : QueryPositions())
    if (q >= query_begin && q < query_end) t.query_positions.push_back(q);
  t.key_positions = KeyPositions();
  for (int64_t p : t.key_positions) t.key_is_sink.push_back(p < sink_count_ ? 1 : 0);
  t.sink_count = sink_count_;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t slot = 0; slot < layers_.size(); ++slot) {
    std::vector<float>& attn = t.attn.emplace_back(t.H() * t.Q() * t.K());
    for (int64_t h = 0; h < t.H(); ++h)
      for (int64_t q = 0; q < t.Q(); ++q)
        DenseRow(slot, t.query_positions[q], h, t.key_positions, attn.data() + (h * t.Q() + q) * t.K());
  }
  return t;
}

}  // namespace oko
