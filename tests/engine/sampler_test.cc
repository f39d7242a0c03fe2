// Sampler: greedy, temperature, each filter (top-k, top-p, min-p), penalties, and the
// seed. Distributions are checked by drawing many samples with a fixed seed and
// comparing frequencies with the exact probabilities (within 5 standard deviations).
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace oko {
namespace {

constexpr int kDraws = 40000;

std::vector<float> LogitsOf(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

// Frequency of every id over kDraws samples of `logits` (a fresh copy each draw).
std::map<int32_t, double> Frequencies(const SamplerOptions& o, const std::vector<float>& logits) {
  Sampler sampler(o);
  std::map<int32_t, double> freq;
  for (int i = 0; i < kDraws; ++i) {
    std::vector<float> copy = logits;
    freq[sampler.Sample(copy, {})] += 1;
  }
  for (auto& [id, f] : freq) f /= kDraws;
  return freq;
}

// Every id of `expected` (probabilities summing to 1) drawn at its rate, and no other id.
void ExpectDistribution(const std::map<int32_t, double>& freq, const std::map<int32_t, double>& expected) {
  for (const auto& [id, f] : freq) EXPECT_TRUE(expected.count(id)) << "drew id " << id << " (" << f << ")";
  for (const auto& [id, p] : expected) {
    const double sigma = std::sqrt(p * (1 - p) / kDraws);
    const auto it = freq.find(id);
    const double f = it == freq.end() ? 0.0 : it->second;
    EXPECT_NEAR(f, p, 5 * sigma) << "id " << id;
  }
}

SamplerOptions Sampling(float temperature, uint64_t seed = 7) {
  SamplerOptions o;
  o.temperature = temperature;
  o.seed = seed;
  return o;
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler sampler(Sampling(0.0f));
  std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(sampler.Sample(logits, {}), 1);
  std::vector<float> negative = {-5.0f, -2.0f, -3.0f};
  EXPECT_EQ(sampler.Sample(negative, {}), 1);
}

TEST(Sampler, TemperatureOneDrawsTheSoftmax) {
  const auto freq = Frequencies(Sampling(1.0f), LogitsOf({0.5, 0.3, 0.15, 0.05}));
  ExpectDistribution(freq, {{0, 0.5}, {1, 0.3}, {2, 0.15}, {3, 0.05}});
}

TEST(Sampler, TemperatureScalesTheLogits) {
  // T = 2: p_i proportional to sqrt(q_i).
  const std::vector<double> q = {0.64, 0.16, 0.16, 0.04};
  const double z = 0.8 + 0.4 + 0.4 + 0.2;
  const auto freq = Frequencies(Sampling(2.0f), LogitsOf(q));
  ExpectDistribution(freq, {{0, 0.8 / z}, {1, 0.4 / z}, {2, 0.4 / z}, {3, 0.2 / z}});
}

TEST(Sampler, TopKKeepsTheKMostLikelyRenormalized) {
  SamplerOptions o = Sampling(1.0f);
  o.top_k = 2;
  const auto freq = Frequencies(o, LogitsOf({0.1, 0.5, 0.1, 0.3}));
  ExpectDistribution(freq, {{1, 0.5 / 0.8}, {3, 0.3 / 0.8}});
  o.top_k = 1;
  ExpectDistribution(Frequencies(o, LogitsOf({0.1, 0.5, 0.1, 0.3})), {{1, 1.0}});
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingTheMass) {
  SamplerOptions o = Sampling(1.0f);
  o.top_p = 0.75f;  // 0.5 + 0.3 reaches it: the 0.15 and 0.05 tokens go
  const std::vector<float> logits = LogitsOf({0.15, 0.5, 0.05, 0.3});
  ExpectDistribution(Frequencies(o, logits), {{1, 0.5 / 0.8}, {3, 0.3 / 0.8}});
  o.top_p = 0.85f;  // needs the third token too
  ExpectDistribution(Frequencies(o, logits), {{1, 0.5 / 0.95}, {3, 0.3 / 0.95}, {0, 0.15 / 0.95}});
  o.top_p = 0.01f;  // always at least one token
  ExpectDistribution(Frequencies(o, logits), {{1, 1.0}});
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheTop) {
  SamplerOptions o = Sampling(1.0f);
  o.min_p = 0.35f;  // threshold 0.175: keeps 0.5 and 0.3
  const std::vector<float> logits = LogitsOf({0.5, 0.3, 0.15, 0.05});
  ExpectDistribution(Frequencies(o, logits), {{0, 0.5 / 0.8}, {1, 0.3 / 0.8}});
  o.min_p = 0.09f;  // threshold 0.045: keeps all four
  ExpectDistribution(Frequencies(o, logits), {{0, 0.5}, {1, 0.3}, {2, 0.15}, {3, 0.05}});
}

TEST(Sampler, FiltersCompose) {
  // top-k 3 (drops 0.05), then top-p 0.6 over {0.5, 0.3, 0.15}/0.95 keeps the first two.
  SamplerOptions o = Sampling(1.0f);
  o.top_k = 3;
  o.top_p = 0.6f;
  ExpectDistribution(Frequencies(o, LogitsOf({0.5, 0.3, 0.15, 0.05})), {{0, 0.5 / 0.8}, {1, 0.3 / 0.8}});
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerOptions o = Sampling(0.0f);
  o.repetition_penalty = 2.0f;
  Sampler sampler(o);
  std::vector<float> logits = {4.0f, 3.0f, -1.0f, 0.5f};
  const std::vector<int32_t> history = {0, 2, 0, 99};  // 99: outside the vocabulary, ignored
  EXPECT_EQ(sampler.Sample(logits, history), 1);     // 4 -> 2 falls below 3
  EXPECT_FLOAT_EQ(logits[0], 2.0f);
  EXPECT_FLOAT_EQ(logits[1], 3.0f);
  EXPECT_FLOAT_EQ(logits[2], -2.0f);  // once, though seen twice
  EXPECT_FLOAT_EQ(logits[3], 0.5f);
}

TEST(Sampler, PresencePenaltySubtractsOncePerSeenToken) {
  SamplerOptions o = Sampling(0.0f);
  o.presence_penalty = 1.5f;
  Sampler sampler(o);
  std::vector<float> logits = {2.0f, 1.0f, 0.0f};
  EXPECT_EQ(sampler.Sample(logits, std::vector<int32_t>{0, 0, 0, 2}), 1);
  EXPECT_FLOAT_EQ(logits[0], 0.5f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);
  EXPECT_FLOAT_EQ(logits[2], -1.5f);
}

TEST(Sampler, FrequencyPenaltySubtractsOncePerOccurrence) {
  SamplerOptions o = Sampling(0.0f);
  o.frequency_penalty = 0.5f;
  o.presence_penalty = 1.0f;
  Sampler sampler(o);
  std::vector<float> logits = {2.0f, 1.0f, 0.0f};
  EXPECT_EQ(sampler.Sample(logits, std::vector<int32_t>{0, 0, 0, 2}), 1);
  EXPECT_FLOAT_EQ(logits[0], 2.0f - 1.0f - 3 * 0.5f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);
  EXPECT_FLOAT_EQ(logits[2], 0.0f - 1.0f - 0.5f);
}

TEST(Sampler, PenaltiesLookOnlyAtTheLastN) {
  SamplerOptions o = Sampling(0.0f);
  o.repetition_penalty = 4.0f;
  o.penalty_last_n = 2;
  Sampler sampler(o);
  std::vector<float> logits = {4.0f, 4.0f, 4.0f};
  sampler.Sample(logits, std::vector<int32_t>{0, 1, 2});  // 0 is older than the last 2
  EXPECT_FLOAT_EQ(logits[0], 4.0f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);
  EXPECT_FLOAT_EQ(logits[2], 1.0f);
}

TEST(Sampler, PenaltiesShiftTheDistribution) {
  // Equal logits; the penalised token becomes exp(-ln 2) = half as likely as each other.
  SamplerOptions o = Sampling(1.0f);
  o.presence_penalty = static_cast<float>(std::log(2.0));
  Sampler sampler(o);
  std::map<int32_t, double> freq;
  for (int i = 0; i < kDraws; ++i) {
    std::vector<float> logits = {1.0f, 1.0f, 1.0f};
    freq[sampler.Sample(logits, std::vector<int32_t>{2})] += 1;
  }
  for (auto& [id, f] : freq) f /= kDraws;
  ExpectDistribution(freq, {{0, 0.4}, {1, 0.4}, {2, 0.2}});
}

std::vector<int32_t> Draw(uint64_t seed, int n) {
  SamplerOptions o = Sampling(0.8f, seed);
  o.top_k = 50;
  o.top_p = 0.95f;
  Sampler sampler(o);
  std::vector<float> base(1000);
  for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<float>(std::sin(i * 0.37) * 3);
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = base;
    ids.push_back(sampler.Sample(logits, ids));
  }
  return ids;
}

TEST(Sampler, SameSeedSameChoicesOtherSeedOtherChoices) {
  EXPECT_EQ(Draw(42, 200), Draw(42, 200));
  EXPECT_NE(Draw(42, 200), Draw(43, 200));
}

// Against a direct reading of the definitions: p = exp(l) / sum(exp), sorted by p.
TEST(Logprobs, AreTheLogSoftmaxAndTheTopAreTheMostLikelyInOrder) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f, -40.0f, 1.5f};
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l));
  const double lse = LogSumExp(logits);
  EXPECT_NEAR(lse, std::log(sum), 1e-12);
  for (int32_t id = 0; id < 7; ++id)
    EXPECT_FLOAT_EQ(Logprob(logits, id, lse).logprob, static_cast<float>(std::log(std::exp(double{logits[id]}) / sum)))
        << id;

  const std::vector<TokenLogprob> top = TopLogprobs(logits, 4, lse);
  ASSERT_EQ(top.size(), 4u);
  const std::vector<int32_t> want = {1, 3, 4, 6};  // the tie 1/3: lower id first
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(top[k].id, want[k]) << k;
    EXPECT_FLOAT_EQ(top[k].logprob, Logprob(logits, want[k], lse).logprob) << k;
  }
  EXPECT_TRUE(TopLogprobs(logits, 0, lse).empty());
  EXPECT_EQ(TopLogprobs(logits, 100, lse).size(), logits.size());
}

// Large logits: the max is subtracted before exp.
TEST(Logprobs, DoNotOverflowOnLargeLogits) {
  const std::vector<float> logits = {1000.0f, 1000.0f};
  EXPECT_NEAR(Logprob(logits, 0, LogSumExp(logits)).logprob, std::log(0.5), 1e-6);
}

}  // namespace
}  // namespace oko
