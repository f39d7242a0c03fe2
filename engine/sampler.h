// Sampler: turns a logits row into the next token id, as HF generate() does:
// repetition / presence / frequency penalties over the recent history, then temperature, top-k,
// top-p (nucleus), min-p. temperature <= 0 is greedy (argmax, lowest id on ties).
// The same seed gives the same choices.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace oko {

struct SamplerOptions {
  float temperature = 0.0f;      // <= 0: greedy
  int64_t top_k = 0;             // 0: off
  float top_p = 1.0f;            // 1: off
  float min_p = 0.0f;            // 0: off
  float repetition_penalty = 1.0f;  // HF: logit / p if > 0, else logit * p
  float presence_penalty = 0.0f;    // subtracted once from every seen token's logit
  float frequency_penalty = 0.0f;   // subtracted once per occurrence (OpenAI's definition)
  int64_t penalty_last_n = 64;   // how much history the penalties look at
  uint64_t seed = 0;
};

// A token with its log-probability under the model: the log-softmax of the raw logits,
// before penalties, temperature and truncation (what the model predicts, not what the
// sampler drew from).
struct TokenLogprob {
  int32_t id;
  float logprob;
};

// `id`'s log-probability in `logits` and the `top` most likely tokens (most likely first,
// ties: lower id first). Computed in double over the whole row.
TokenLogprob Logprob(std::span<const float> logits, int32_t id, double log_sum_exp);
double LogSumExp(std::span<const float> logits);
std::vector<TokenLogprob> TopLogprobs(std::span<const float> logits, size_t top, double log_sum_exp);

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& o) : o_(o), state_(o.seed ^ 0x6f6b6f5eed5eedull) {}
  // `logits` is modified (penalties, scaling). `history` is every token so far.
  int32_t Sample(std::span<float> logits, std::span<const int32_t> history);
  const SamplerOptions& options() const { return o_; }

 private:
  void ApplyPenalties(std::span<float> logits, std::span<const int32_t> history) const;
  double NextUniform();  // [0, 1)

  SamplerOptions o_;
  uint64_t state_;
  struct Candidate {
    float logit;
    int32_t id;
  };
  std::vector<Candidate> candidates_;
};

}  // namespace oko
