// Interventions beyond the goldens (tests/engine/interventions_golden_test.cc): the spec
// syntax, positions that stay absolute when the KV ring wraps, batched decode, and no-op
// interventions that leave the outputs bit-identical.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <span>

#include "engine/batch_decoder.h"
#include "engine/context.h"
#include "engine/interventions.h"
#include "engine/steering.h"
#include "engine/attribution.h"
#include "tests/engine/attention_recorder.h"
#include "tests/test_util.h"

namespace oko {
namespace {

ModelConfig Config() {
  ModelConfig c;
  c.num_layers = 4;
  c.num_heads = 8;
  c.num_kv_heads = 4;
  c.hidden_size = 64;
  c.head_dim = 8;
  return c;
}

std::string Error(const InterventionSpec& s) {
  auto iv = Interventions::Make(s, Config());
  return iv.ok() ? "" : iv.status().message();
}

TEST(InterventionSpec, ParsesHeadsRangesAndStars) {
  InterventionSpec s;
  s.ablate = {"1.2,3.*"};
  auto iv = Interventions::Make(s, Config());
  ASSERT_TRUE(iv.ok()) << iv.status().message();
  EXPECT_EQ(iv->HeadScale(0), nullptr);
  ASSERT_NE(iv->HeadScale(1), nullptr);
  EXPECT_EQ(iv->HeadScale(1)[2], 0.0f);
  EXPECT_EQ(iv->HeadScale(1)[1], 1.0f);
  for (int h = 0; h < 8; ++h) EXPECT_EQ(iv->HeadScale(3)[h], 0.0f);
  EXPECT_FALSE(iv->BiasesScores(1));
}

TEST(InterventionSpec, KnockoutAndEmphasisBiasTheScores) {
  InterventionSpec s;
  s.knockout = {"1-2:5-6,9:0-1;3:*:4"};
  s.emphasize = "2-3";
  s.emphasize_heads = "0.1";
  s.emphasize_alpha = 0.5;
  auto iv = Interventions::Make(s, Config());
  ASSERT_TRUE(iv.ok()) << iv.status().message();
  const int64_t keys[] = {0, 1, 2, 3, 4};
  float bias[5];
  iv->KeyBias(1, 0, 5, keys, 5, bias);
  EXPECT_THAT(bias, ::testing::ElementsAre(-INFINITY, -INFINITY, 0, 0, 0));
  iv->KeyBias(1, 0, 7, keys, 5, bias);  // query 7 is not knocked out
  EXPECT_THAT(bias, ::testing::ElementsAre(0, 0, 0, 0, 0));
  iv->KeyBias(3, 0, 100, keys, 5, bias);
  EXPECT_THAT(bias, ::testing::ElementsAre(0, 0, 0, 0, -INFINITY));
  iv->KeyBias(0, 1, 4, keys, 5, bias);  // emphasized head: log 0.5 outside keys 2-3
  EXPECT_FLOAT_EQ(bias[0], std::log(0.5f));
  EXPECT_EQ(bias[2], 0.0f);
  EXPECT_TRUE(iv->BiasDiffersAcross(0, 0, 2));
  EXPECT_FALSE(iv->BiasDiffersAcross(0, 2, 2));
  for (int64_t l : {0, 1, 2, 3}) EXPECT_TRUE(iv->BiasesScores(l)) << l;
}

int64_t FirstPosition(const InterventionSpec& s) {
  auto iv = Interventions::Make(s, Config());
  EXPECT_TRUE(iv.ok()) << iv.status().message();
  return iv.ok() ? iv->FirstPosition() : -1;
}

TEST(InterventionSpec, FirstPositionItChanges) {
  InterventionSpec s;
  s.knockout = {"*:10-12:3-5"};
  EXPECT_EQ(FirstPosition(s), 10);
  s.knockout = {"*:2-12:30-40;1:20:*"};
  EXPECT_EQ(FirstPosition(s), 20);
  s = {};
  s.emphasize = "4-8";  // row 4 is the first to see keys in and outside the span
  EXPECT_EQ(FirstPosition(s), 4);
  s.emphasize = "0-3,4-6";  // rows 0-6 see only keys in it
  EXPECT_EQ(FirstPosition(s), 7);
  s.emphasize = "*";
  EXPECT_EQ(FirstPosition(s), Interventions::kNoPosition);
  s.ablate = {"0.0"};
  EXPECT_EQ(FirstPosition(s), 0);
}

TEST(InterventionSpec, RefusesWithTheValueAndTheLimits) {
  InterventionSpec s;
  s.ablate = {"4.0"};
  EXPECT_EQ(Error(s), "--ablate 4.0: layer 4 is out of range (the model has layers 0-3)");
  s.ablate = {"1.8"};
  EXPECT_EQ(Error(s), "--ablate 1.8: head 8 is out of range (the model has heads 0-7)");
  s.ablate = {"1"};
  EXPECT_THAT(Error(s), ::testing::HasSubstr("not LAYER.HEAD"));
  s = {};
  s.knockout = {"*:10-5:0-3"};
  EXPECT_THAT(Error(s), ::testing::HasSubstr("10-5 is reversed"));
  s.knockout = {"*:1-2"};
  EXPECT_THAT(Error(s), ::testing::HasSubstr("not LAYERS:QUERIES:KEYS"));
  s.knockout = {"*:x:1"};
  EXPECT_THAT(Error(s), ::testing::HasSubstr("'x' is not a query position"));
  s = {};
  s.emphasize = "1-3";
  s.emphasize_alpha = 0;
  EXPECT_THAT(Error(s), ::testing::HasSubstr("--emphasize-alpha must be in (0, 1]"));
  s.emphasize_alpha = 1.5;
  EXPECT_THAT(Error(s), ::testing::HasSubstr("--emphasize-alpha must be in (0, 1]"));
  s = {};
  s.steer = {"/nonexistent/v.safetensors:2"};
  EXPECT_THAT(Error(s), ::testing::HasSubstr("--steer /nonexistent/v.safetensors:2"));
}

std::unique_ptr<Context> Load(int64_t ctx, int64_t window) {
  EngineOptions o;
  o.threads = 2;
  o.compute = ComputeMode::kF32;
  o.ctx = ctx;
  o.window = window;
  o.max_batch = 8;
  auto c = LoadContext(test::SharedPath("models/stories260k"), o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? std::move(c).value() : nullptr;
}

std::shared_ptr<const Interventions> Make(const InterventionSpec& s, const Context& c) {
  auto iv = Interventions::Make(s, c.config());
  EXPECT_TRUE(iv.ok()) << iv.status().message();
  return iv.ok() ? std::make_shared<const Interventions>(std::move(iv).value()) : nullptr;
}

std::vector<int32_t> Ids(size_t n) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < n; ++i) ids.push_back(static_cast<int32_t>(1 + (i * 37) % 500));
  return ids;
}

// Prefill of the first half, then one token at a time: every position's logits.
std::vector<float> AllLogits(Context& c, const std::vector<int32_t>& ids) {
  std::vector<float> all, step;
  const size_t half = ids.size() / 2;
  c.Forward(std::span(ids).first(half), Logits::kAll, &all);
  for (size_t i = half; i < ids.size(); ++i) {
    c.Forward(std::span(ids).subspan(i, 1), Logits::kLast, &step);
    all.insert(all.end(), step.begin(), step.end());
  }
  return all;
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

InterventionSpec Spread() {
  InterventionSpec s;
  s.ablate = {"1.3"};
  s.knockout = {"*:20-39:18-25"};
  s.emphasize = "30-33";
  s.emphasize_heads = "2.*,4.1";
  s.steer = {test::SharedPath("golden/interventions/steer/stories260k-rand-l1-2.safetensors:0.5")};
  return s;
}

// A ring of 16 slots that has wrapped twice computes what a 64-position cache with a
// 16-position sliding window computes: the interventions' positions are absolute.
TEST(Interventions, PositionsStayAbsoluteWhenTheRingWraps) {
  const auto ids = Ids(48);
  auto ring = Load(16, 0), window = Load(64, 16), plain = Load(64, 16);
  ASSERT_TRUE(ring && window && plain);
  ring->set_interventions(Make(Spread(), *ring));
  window->set_interventions(Make(Spread(), *window));
  const auto a = AllLogits(*ring, ids), b = AllLogits(*window, ids), base = AllLogits(*plain, ids);
  EXPECT_LE(MaxDiff(a, b), 1e-4);
  EXPECT_GT(MaxDiff(a, base), 0.1) << "the interventions changed nothing";
}

// Batched decode applies each sequence's own interventions.
TEST(Interventions, BatchedDecodeMatchesEachSequenceAlone) {
  const auto ids = Ids(20);
  auto alone = Load(64, 0);
  ASSERT_TRUE(alone);
  std::vector<std::unique_ptr<Context>> batch;
  for (int i = 0; i < 2; ++i) batch.push_back(std::move(Context::Create(alone->shared_model(), alone->shared_pool(),
                                                                        alone->options()).value()));
  batch[0]->set_interventions(Make(Spread(), *alone));
  BatchDecoder decoder(alone->shared_model(), alone->shared_pool(), 2);
  std::vector<Context*> contexts = {batch[0].get(), batch[1].get()};
  for (Context* c : contexts) c->Forward(std::span(ids).first(10), Logits::kNone, nullptr);
  std::vector<float> batched, row;
  std::vector<std::vector<float>> got(2);
  for (size_t i = 10; i < ids.size(); ++i) {
    const int32_t step[2] = {ids[i], ids[i]};
    decoder.Decode(contexts, step, &batched);
    for (size_t k = 0; k < 2; ++k) got[k].insert(got[k].end(), batched.begin() + k * 512, batched.begin() + (k + 1) * 512);
  }
  for (size_t k = 0; k < 2; ++k) {
    alone->Reset();
    alone->set_interventions(k == 0 ? Make(Spread(), *alone) : nullptr);
    std::vector<float> want, step;
    alone->Forward(std::span(ids).first(10), Logits::kNone, nullptr);
    for (size_t i = 10; i < ids.size(); ++i) {
      alone->Forward(std::span(ids).subspan(i, 1), Logits::kLast, &step);
      want.insert(want.end(), step.begin(), step.end());
    }
    EXPECT_LE(MaxDiff(got[k], want), 1e-5) << "sequence " << k;
  }
  EXPECT_GT(MaxDiff(got[0], got[1]), 0.1);
}

// Interventions that change nothing (pairs with key > query, alpha 1, a vector at
// coefficient 0) go through the bias and steering paths and leave every bit as it was.
TEST(Interventions, NoOpInterventionsAreBitIdentical) {
  const auto ids = Ids(24);
  auto with = Load(64, 0), without = Load(64, 0);
  ASSERT_TRUE(with && without);
  InterventionSpec s;
  s.knockout = {"*:0-5:6-30"};
  s.emphasize = "0-2";
  s.emphasize_alpha = 1.0;
  s.steer = {test::SharedPath("golden/interventions/steer/stories260k-rand-l1-2.safetensors:0")};
  with->set_interventions(Make(s, *with));
  EXPECT_EQ(AllLogits(*with, ids), AllLogits(*without, ids));
}

// v_i = residual after layer i at the last token of the positive prompt minus the
// negative one's, averaged over the pairs.
TEST(Steering, MeanDifferenceOfTheLastResiduals) {
  auto c = Load(64, 0);
  ASSERT_TRUE(c);
  const std::vector<int32_t> a = {1, 403, 407, 261}, b = {1, 20, 30, 40, 50};
  auto last = [&](const std::vector<int32_t>& ids) {
    Recorder rec(5, 8, static_cast<int64_t>(ids.size()));
    c->Reset();
    c->set_trace(&rec);
    c->Forward(ids, Logits::kNone, nullptr);
    c->set_trace(nullptr);
    return rec.residual;
  };
  const auto ra = last(a), rb = last(b);
  const auto v = MeanDifferenceVectors(*c, {{a, b}});
  ASSERT_EQ(v.size(), 5u);
  for (int64_t l = 0; l < 5; ++l) {
    ASSERT_EQ(v[l].size(), 64u);
    for (size_t d = 0; d < 64; ++d)
      ASSERT_NEAR(v[l][d], ra.at(l + 1)[(a.size() - 1) * 64 + d] - rb.at(l + 1)[(b.size() - 1) * 64 + d], 1e-6);
  }
  double norm = 0;
  const auto opposite = MeanDifferenceVectors(*c, {{a, b}, {b, a}});  // kept: [2] is a reference into it
  for (float x : opposite[2]) norm += std::fabs(x);
  EXPECT_LT(norm, 1e-4);
}

double LogProbOf(const std::vector<float>& logits, int32_t id) {
  double m = *std::max_element(logits.begin(), logits.end()), s = 0;
  for (float x : logits) s += std::exp(double(x) - m);
  return logits[id] - m - std::log(s);
}

// delta[s] is the change of the target's log-probability under "*:*:s", the target the
// top next token by default; the context's own interventions come back afterwards.
TEST(Attribution, KnockoutOfEachKey) {
  auto c = Load(64, 0);
  ASSERT_TRUE(c);
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 261};
  std::vector<float> base, knocked;
  c->Forward(ids, Logits::kLast, &base);
  const int32_t top = static_cast<int32_t>(std::max_element(base.begin(), base.end()) - base.begin());
  InterventionSpec s;
  s.knockout = {"*:*:3"};
  c->Reset();
  c->set_interventions(Make(s, *c));
  c->Forward(ids, Logits::kLast, &knocked);
  const auto mine = c->interventions();
  const Attribution a = AttributeByKnockout(*c, ids, std::nullopt);
  EXPECT_EQ(a.target, top);
  ASSERT_EQ(a.delta.size(), ids.size());
  EXPECT_NEAR(a.logprob, LogProbOf(base, top), 1e-9);
  EXPECT_NEAR(a.delta[3], LogProbOf(knocked, top) - LogProbOf(base, top), 1e-9);
  EXPECT_EQ(c->interventions(), mine);
  EXPECT_EQ(AttributeByKnockout(*c, ids, 42).target, 42);
}

}  // namespace
}  // namespace oko
