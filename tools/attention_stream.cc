#include "tools/attention_stream.h"

#include <algorithm>

#include "tools/trace_html.h"

namespace oko {

namespace {

TraceFilter FilterOf(const ModelConfig& config, const AttentionRequest& r, int64_t first_query) {
  TraceFilter f;
  f.layers = {r.layer < 0 ? config.num_layers - 1 : r.layer};
  if (r.head >= 0) f.heads = {r.head};
  f.query_begin = first_query;
  return f;
}

}  // namespace

AttentionStream::AttentionStream(const ModelConfig& config, const AttentionRequest& request,
                                 std::vector<int32_t> prompt, const Tokenizer& tokenizer)
    // A slot never wraps its ring (the scheduler ends a sequence at the context's end),
    // so no key is a sink.
    : recorder_(std::make_shared<TraceRecorder>(config.num_layers, config.num_heads, /*sink_count=*/0,
                                                FilterOf(config, request, static_cast<int64_t>(prompt.size()) - 1))),
      tokenizer_(tokenizer),
      layer_(request.layer < 0 ? config.num_layers - 1 : request.layer),
      prompt_tokens_(tokenizer.DecodePieces(prompt)),
      ids_(std::move(prompt)),
      prompt_size_(ids_.size()),
      next_query_(static_cast<int64_t>(ids_.size()) - 1) {}

nlohmann::ordered_json AttentionStream::TakeRows(std::optional<int32_t> generated) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  if (!named_) {
    named_ = true;
    out["layer"] = layer_;
    out["heads"] = recorder_->heads();
    out["prompt_tokens"] = prompt_tokens_;
  }
  const TraceData t = recorder_->Snapshot(TraceWriteOptions{}, next_query_, INT64_MAX);
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (int64_t qi = 0; qi < t.Q(); ++qi) {
    const int64_t q = t.query_positions[qi];
    // Keys 0..q, 0 where one was not attended.
    std::vector<float> probs(static_cast<size_t>(t.H() * (q + 1)), 0.0f);
    for (int64_t h = 0; h < t.H(); ++h)
      for (int64_t ki = 0; ki < t.K() && t.key_positions[ki] <= q; ++ki)
        probs[h * (q + 1) + t.key_positions[ki]] = t.Row(0, h, qi)[ki];
    const std::string token =
        q < static_cast<int64_t>(prompt_size_) ? prompt_tokens_[q] : tokenizer_.DecodePiece(ids_[q]);
    rows.push_back({{"pos", q}, {"token", token}, {"probs", EncodeProbabilities(probs)}});
    next_query_ = q + 1;
  }
  out["rows"] = std::move(rows);
  if (generated) ids_.push_back(*generated);
  return out;
}

}  // namespace oko
