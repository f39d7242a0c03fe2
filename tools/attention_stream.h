// The attention view of `oko serve`: a request with {"oko": {"attention": {"layer": L,
// "head": H}}} has where its answer's tokens looked recorded (one layer; every query
// head, or one) and handed out row by row as the tokens are generated, for the chat page
// (tools/trace_viewer/chat.*) to draw with the trace viewer. Other requests pay nothing.
//
// A row is one query position: from the prompt's last (which chose the first answer
// token) to the last answer token run. As JSON (docs/SERVER.md):
//   {"pos": q, "token": TEXT, "probs": BASE64}
// where probs holds [heads][q + 1] bytes, round(255 * sqrt(p)) over keys 0..q, the
// trace viewer's encoding. The first batch of rows also names the layer, the heads and
// the prompt's tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/trace_recorder.h"
#include "loaders/hf_config.h"
#include "loaders/tokenizer.h"

namespace oko {

struct AttentionRequest {
  int64_t layer = -1;  // model layer (-1: the last)
  int64_t head = -1;   // query head (-1: every head)
};

class AttentionStream {
 public:
  // `request` already checked against the model (layer and head in range, or -1).
  AttentionStream(const ModelConfig& config, const AttentionRequest& request, std::vector<int32_t> prompt,
                  const Tokenizer& tokenizer);

  // What the scheduler hands the sequence's forward passes to.
  std::shared_ptr<TraceSink> sink() const { return recorder_; }
  // The rows computed since the last call ({"rows": []} when none), then notes `generated`
  // (the token those rows produced last) for the next rows' labels. On the scheduler's
  // thread, after the step: the first call also carries "layer", "heads" and
  // "prompt_tokens".
  nlohmann::ordered_json TakeRows(std::optional<int32_t> generated);

 private:
  std::shared_ptr<TraceRecorder> recorder_;
  const Tokenizer& tokenizer_;
  int64_t layer_;
  std::vector<std::string> prompt_tokens_;  // the prompt's tokens as text
  std::vector<int32_t> ids_;  // prompt, then the generated tokens
  size_t prompt_size_;
  int64_t next_query_;  // the first position not yet handed out
  bool named_ = false;  // layer, heads and prompt_tokens handed out
};

}  // namespace oko
