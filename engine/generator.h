// Generator: prompt in, tokens out, through one context. The context remembers which
// tokens its cache holds, so a chat turn whose prompt extends the previous one prefills
// only the new tokens.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "engine/context.h"
#include "engine/sampler.h"

namespace oko {

struct GenerationStats {
  int64_t prompt_tokens = 0;     // tokens of the prompt
  int64_t prefilled_tokens = 0;  // of which actually computed (the rest came from the cache)
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  double first_token_seconds = 0;  // from the call to the first generated token
  bool stopped_by_eos = false;
  bool stopped_by_callback = false;
  bool context_wrapped = false;  // the KV ring overwrote old positions during this call

  double PrefillTokensPerSecond() const;
  double DecodeTokensPerSecond() const;
};

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  std::vector<int32_t> stop_ids;  // eos / end-of-turn ids: generation ends after one
};

// Called for every generated token (stop tokens included); return false to stop.
using TokenCallback = std::function<bool(int32_t id)>;

class Generator {
 public:
  explicit Generator(Context& context) : context_(context) {}

  GenerationStats Generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                           Sampler& sampler, const TokenCallback& on_token);

 private:
  Context& context_;
  std::vector<float> logits_;
};

}  // namespace oko
