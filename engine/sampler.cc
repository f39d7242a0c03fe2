#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace oko {

double Sampler::NextUniform() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1p-53;
}

void Sampler::ApplyPenalties(std::span<float> logits, std::span<const int32_t> history) const {
  if (o_.repetition_penalty == 1.0f && o_.presence_penalty == 0.0f && o_.frequency_penalty == 0.0f) return;
  const size_t n = std::min<size_t>(history.size(), static_cast<size_t>(o_.penalty_last_n));
  std::vector<int32_t> recent(history.end() - n, history.end());
  std::sort(recent.begin(), recent.end());
  for (size_t i = 0; i < recent.size();) {
    const int32_t id = recent[i];
    size_t count = 0;
    for (; i < recent.size() && recent[i] == id; ++i) ++count;
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
    float& l = logits[id];
    l = l > 0 ? l / o_.repetition_penalty : l * o_.repetition_penalty;
    l -= o_.presence_penalty + o_.frequency_penalty * static_cast<float>(count);
  }
}

double LogSumExp(std::span<const float> logits) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  return max + std::log(sum);
}

TokenLogprob Logprob(std::span<const float> logits, int32_t id, double log_sum_exp) {
  return TokenLogprob{id, static_cast<float>(logits[static_cast<size_t>(id)] - log_sum_exp)};
}

std::vector<TokenLogprob> TopLogprobs(std::span<const float> logits, size_t top, double log_sum_exp) {
  auto more_likely = [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  };
  // A heap of the best `top` so far, its least likely on top: one pass, no copy of the row.
  std::vector<int32_t> best;
  top = std::min(top, logits.size());
  for (int32_t id = 0; id < static_cast<int32_t>(logits.size()) && top > 0; ++id) {
    if (best.size() < top) {
      best.push_back(id);
      std::push_heap(best.begin(), best.end(), more_likely);
    } else if (more_likely(id, best.front())) {
      std::pop_heap(best.begin(), best.end(), more_likely);
      best.back() = id;
      std::push_heap(best.begin(), best.end(), more_likely);
    }
  }
  std::sort_heap(best.begin(), best.end(), more_likely);
  std::vector<TokenLogprob> out;
  for (int32_t id : best) out.push_back(Logprob(logits, id, log_sum_exp));
  return out;
}

int32_t Sampler::Sample(std::span<float> logits, std::span<const int32_t> history) {
  ApplyPenalties(logits, history);
  if (o_.temperature <= 0.0f)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());

  // Candidates sorted by logit, highest first; top-k keeps only the first k.
  candidates_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) candidates_[i] = {logits[i], static_cast<int32_t>(i)};
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t k = candidates_.size();
  if (o_.top_k > 0 && static_cast<size_t>(o_.top_k) < k) {
    k = static_cast<size_t>(o_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  candidates_.resize(k);

  // Softmax of logit / temperature over the candidates.
  std::vector<double> p(k);
  const double inv_t = 1.0 / o_.temperature, top = candidates_[0].logit;
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += p[i] = std::exp((candidates_[i].logit - top) * inv_t);
  for (double& x : p) x /= sum;

  // top-p: the smallest prefix whose mass reaches top_p (at least one token).
  size_t keep = k;
  if (o_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < k; ++i) {
      cum += p[i];
      if (cum >= o_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  // min-p: drop tokens less likely than min_p times the most likely one.
  if (o_.min_p > 0.0f)
    while (keep > 1 && p[keep - 1] < o_.min_p * p[0]) --keep;

  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += p[i];
  double r = NextUniform() * mass;
  for (size_t i = 0; i < keep; ++i) {
    r -= p[i];
    if (r < 0) return candidates_[i].id;
  }
  return candidates_[keep - 1].id;
}

}  // namespace oko
