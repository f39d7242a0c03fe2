#include "engine/generator.h"

#include <algorithm>
#include <chrono>

namespace oko {

namespace {
double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

double GenerationStats::PrefillTokensPerSecond() const {
  return prefill_seconds > 0 ? prefilled_tokens / prefill_seconds : 0;
}
double GenerationStats::DecodeTokensPerSecond() const {
  // The first generated token comes from the prefill's logits: decode made the rest.
  return decode_seconds > 0 ? std::max<int64_t>(generated_tokens - 1, 0) / decode_seconds : 0;
}

GenerationStats Generator::Generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                    Sampler& sampler, const TokenCallback& on_token) {
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());
  if (prompt.empty()) return stats;
  const auto start = std::chrono::steady_clock::now();
  const int64_t ring_limit = context_.kv_cache().window();
  const bool wrapped_before = context_.position() > ring_limit;

  const size_t reused = context_.ReusePrefix(prompt);
  const auto todo = prompt.subspan(reused);
  stats.prefilled_tokens = static_cast<int64_t>(todo.size());
  context_.Forward(todo, Logits::kLast, &logits_);
  const auto prefilled = std::chrono::steady_clock::now();
  stats.prefill_seconds = Seconds(start, prefilled);

  std::vector<int32_t> history(prompt.begin(), prompt.end());
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const int32_t id = sampler.Sample(logits_, history);
    history.push_back(id);
    ++stats.generated_tokens;
    if (i == 0) stats.first_token_seconds = Seconds(start, std::chrono::steady_clock::now());
    const bool is_stop =
        std::find(options.stop_ids.begin(), options.stop_ids.end(), id) != options.stop_ids.end();
    if (!on_token(id)) {
      stats.stopped_by_callback = true;
      break;
    }
    if (is_stop) {
      stats.stopped_by_eos = true;
      // The stop token belongs to the transcript (the template writes it): cache it too.
      context_.Forward(std::span<const int32_t>(&id, 1), Logits::kNone, nullptr);
      break;
    }
    if (i + 1 == options.max_new_tokens) break;
    context_.Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &logits_);
  }
  stats.decode_seconds = Seconds(prefilled, std::chrono::steady_clock::now());
  stats.context_wrapped = !wrapped_before && context_.position() > ring_limit;
  return stats;
}

}  // namespace oko
