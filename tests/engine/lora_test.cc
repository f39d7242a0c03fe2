// PEFT LoRA adapters (--lora): the golden cases of ../shared/golden/lora (float32 PyTorch
// of the merged model, no one here wrote it) unmerged and merged, the adapters it says
// must be refused, per-context switching, and the config rules PEFT defines.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/batch_decoder.h"
#include "engine/context.h"
#include "loaders/lora_adapter.h"
#include "tests/engine/golden_util.h"
#include "tests/test_util.h"

namespace oko {
namespace {

// The README's tolerances for --compute f32: logits, residual and final hidden 1e-3,
// attention probabilities 1e-4, greedy ids identical (no case has a fragile step).
const test::Tolerance kLoraF32{1e-3, 1e-3, 1e-4};

// The case's flags ("--lora", "golden/lora/adapters/X:0.5", ...) with shared/ paths made
// absolute.
std::vector<LoraSpec> SpecsOf(const nlohmann::json& argv) {
  std::vector<LoraSpec> specs;
  for (size_t i = 0; i + 1 < argv.size(); i += 2) {
    EXPECT_EQ(argv[i], "--lora");
    auto spec = ParseLoraSpec(test::SharedPath(argv[i + 1].get<std::string>()));
    EXPECT_TRUE(spec.ok()) << spec.status().message();
    if (spec.ok()) specs.push_back(spec.value());
  }
  return specs;
}

Result<std::unique_ptr<Context>> Load(const std::string& model, std::vector<LoraSpec> specs,
                                      bool merge = false) {
  EngineOptions o;
  o.threads = 2;
  o.compute = ComputeMode::kF32;
  o.ctx = 512;
  o.lora = std::move(specs);
  o.lora_merge = merge;
  return LoadContext(test::SharedPath(model), o);
}

const nlohmann::json& Cases() {
  static const nlohmann::json cases = test::ReadJson(test::SharedPath("golden/lora/cases.json"));
  return cases;
}

class LoraGolden : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(LoraGolden, MatchesReference) {
  const auto& [name, merge] = GetParam();
  for (const auto& c : Cases()["cases"]) {
    if (c["name"] != name) continue;
    ASSERT_TRUE(c["fragile_greedy_steps"].empty()) << "the test assumes no fragile greedy step";
    auto ctx = Load(c["model"].get<std::string>(), SpecsOf(c["argv"]), merge);
    ASSERT_TRUE(ctx.ok()) << ctx.status().message();
    EXPECT_EQ(ctx.value()->model().lora_merged(), merge);
    test::CheckForward(ctx.value().get(), test::SharedPath("golden/lora/" + c["dir"].get<std::string>()),
                       kLoraF32, /*probes=*/false);
    return;
  }
  FAIL() << "no case " << name << " in golden/lora/cases.json";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, LoraGolden,
    ::testing::Combine(::testing::Values("q3_r4_paragraph", "q3_r4_chat", "q3_r8_paragraph",
                                         "q3_r8_russian", "q3_r4_half_paragraph",
                                         "q3_r4_plus_r8_chat", "s_r4_once32", "s_r4_lily_tom"),
                       ::testing::Bool()),
    [](const auto& info) {
      return std::get<0>(info.param) + (std::get<1>(info.param) ? "_merged" : "_unmerged");
    });

TEST(LoraGolden, EveryCaseIsTested) {
  EXPECT_EQ(Cases()["cases"].size(), 8u) << "a case was added to golden/lora: list it above";
}

TEST(LoraRefusals, GoldenBadAdapters) {
  for (const auto& r : Cases()["refusals"]) {
    SCOPED_TRACE(r["name"].get<std::string>());
    auto ctx = Load(r["model"].get<std::string>(), SpecsOf(r["argv"]));
    ASSERT_FALSE(ctx.ok());
    EXPECT_EQ(ctx.status().code(), ExitCode::kBadInput);
    bool named = false;
    for (const auto& word : r["expect_any"])
      named = named || ctx.status().message().find(word.get<std::string>()) != std::string::npos;
    EXPECT_TRUE(named) << ctx.status().message();
  }
}

TEST(LoraRefusals, CommandLineExitsTwo) {
  const auto r = test::RunOko("run -m " + test::SharedPath("models/tiny-qwen3") + " -p hi -n 1 --lora " +
                              test::SharedPath("golden/lora/adapters/bad-use-dora"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("use_dora"), std::string::npos) << r.err;
}

TEST(LoraRefusals, AdapterOfAnotherModel) {
  // stories260k's adapter has hidden 64 but intermediate 172: tiny-qwen3's MLP is 192 wide.
  auto ctx = Load("models/tiny-qwen3", {{test::SharedPath("golden/lora/adapters/stories260k-r4-all"), 1.0}});
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("the model needs"), std::string::npos) << ctx.status().message();
}

std::vector<float> LastLogits(Context& ctx, const std::vector<int32_t>& ids) {
  std::vector<float> logits;
  ctx.Reset();
  ctx.Forward(ids, Logits::kLast, &logits);
  return logits;
}

// "Lily and Tom went to the park" (golden/lora/cases.json, s_r4_lily_tom).
const std::vector<int32_t> kLilyTom = {1, 317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433};

TEST(LoraSwitching, ScaleZeroIsTheBaseModelExactly) {
  auto base = Load("models/stories260k", {});
  auto adapted = Load("models/stories260k", {{test::SharedPath("golden/lora/adapters/stories260k-r4-all"), 0.0}});
  ASSERT_TRUE(base.ok() && adapted.ok());
  EXPECT_EQ(LastLogits(*base.value(), kLilyTom), LastLogits(*adapted.value(), kLilyTom));
}

TEST(LoraSwitching, RescaleDropsTheCacheAndMatchesALoadAtThatScale) {
  const std::string dir = test::SharedPath("golden/lora/adapters/stories260k-r4-all");
  auto half = Load("models/stories260k", {{dir, 0.5}});
  auto ctx = Load("models/stories260k", {{dir, 1.0}});
  ASSERT_TRUE(half.ok() && ctx.ok());
  Context& c = *ctx.value();
  const std::vector<float> full = LastLogits(c, kLilyTom);
  EXPECT_TRUE(c.set_lora_scale(0, 0.5f)) << "the cache held the prompt";
  EXPECT_EQ(c.position(), 0);
  EXPECT_EQ(LastLogits(c, kLilyTom), LastLogits(*half.value(), kLilyTom));
  EXPECT_TRUE(c.set_lora_scale(0, 1.0f));
  EXPECT_EQ(LastLogits(c, kLilyTom), full);
  EXPECT_FALSE(c.set_lora_scale(0, 1.0f)) << "an unchanged scale keeps the cache";
}

// Contexts of one model with different scales decode together: each row gets its own.
TEST(LoraSwitching, BatchedDecodeKeepsEachContextsScale) {
  const std::string dir = test::SharedPath("golden/lora/adapters/stories260k-r4-all");
  auto first = Load("models/stories260k", {{dir, 1.0}});
  ASSERT_TRUE(first.ok());
  std::shared_ptr<const Model> model = first.value()->shared_model();
  std::vector<std::unique_ptr<Context>> contexts;
  const float scales[] = {1.0f, 0.0f, 0.5f, 1.0f};
  EngineOptions o = first.value()->options();
  for (float s : scales) {
    auto c = Context::Create(model, first.value()->shared_pool(), o);
    ASSERT_TRUE(c.ok());
    c.value()->set_lora_scale(0, s);
    contexts.push_back(std::move(c).value());
  }
  std::vector<Context*> ptrs;
  std::vector<std::vector<float>> alone;
  for (auto& c : contexts) {
    alone.push_back(LastLogits(*c, kLilyTom));
    ptrs.push_back(c.get());
  }
  BatchDecoder decoder(model, first.value()->shared_pool(), 4);
  std::vector<float> batched;
  const std::vector<int32_t> next(4, 42);
  decoder.Decode(ptrs, next, &batched);
  const size_t V = model->config().vocab_size;
  for (size_t i = 0; i < contexts.size(); ++i) {
    Context& c = *contexts[i];
    c.Rewind(static_cast<int64_t>(kLilyTom.size()));
    std::vector<float> single;
    c.Forward(std::span<const int32_t>(&next[i], 1), Logits::kLast, &single);
    for (size_t v = 0; v < V; ++v)
      ASSERT_NEAR(batched[i * V + v], single[v], 1e-5) << "context " << i << " (scale " << scales[i] << ")";
  }
  // The scales changed the outputs (the test would not notice a shared scale otherwise).
  EXPECT_NE(alone[0], alone[1]);
  EXPECT_NE(alone[0], alone[2]);
}

// The logit lens reads the last layer's residual as the model's own logits: with a LoRA
// on lm_head (tiny-qwen3-r8-rslora-all has one) the adapter's term is part of both.
TEST(LoraSwitching, LogitLensOfTheLastLayerIncludesLmHeadsAdapter) {
  auto ctx = Load("models/tiny-qwen3", {{test::SharedPath("golden/lora/adapters/tiny-qwen3-r8-rslora-all"), 1.0}});
  ASSERT_TRUE(ctx.ok()) << ctx.status().message();
  Context& c = *ctx.value();
  const ModelConfig& m = c.config();
  const std::vector<int32_t> ids = {785, 2310, 326, 7256};
  test::Recorder rec(m.num_layers, m.num_heads, static_cast<int64_t>(ids.size()));
  c.set_trace(&rec);
  std::vector<float> logits;
  c.Forward(ids, Logits::kAll, &logits);
  c.set_trace(nullptr);
  const std::vector<float>& last = rec.residual[m.num_layers];
  std::vector<float> lens(logits.size());
  c.LogitsOfHidden(last.data(), static_cast<int64_t>(ids.size()), lens.data());
  const test::Diff d = test::MaxDiff(lens.data(), logits, logits.size());
  EXPECT_LE(d.max, 1e-4);
  c.set_lora_scale(0, 0.0f);
  c.LogitsOfHidden(last.data(), static_cast<int64_t>(ids.size()), lens.data());
  EXPECT_GT(test::MaxDiff(lens.data(), logits, logits.size()).max, 1e-3) << "lm_head's adapter was not applied";
}

TEST(LoraMerge, RefusedWithQuantAndWithoutAdapters) {
  EngineOptions o;
  o.lora_merge = true;
  auto no_adapter = LoadContext(test::SharedPath("models/stories260k"), o);
  ASSERT_FALSE(no_adapter.ok());
  o.lora = {{test::SharedPath("golden/lora/adapters/stories260k-r4-all"), 1.0}};
  o.quant = "q8_0";
  auto with_quant = LoadContext(test::SharedPath("models/stories260k"), o);
  ASSERT_FALSE(with_quant.ok());
  EXPECT_NE(with_quant.status().message().find("quantized"), std::string::npos);
  const auto r = test::RunOko("run -m " + test::SharedPath("models/stories260k") + " -p hi -n 1 --quant q8_0 --lora-merge --lora " +
                              test::SharedPath("golden/lora/adapters/stories260k-r4-all"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--lora-merge with --quant"), std::string::npos) << r.err;
}

TEST(LoraSpec, SplitsAtTheLastColonBeforeANumber) {
  auto s = ParseLoraSpec("adapters/a:0.5");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value().dir, "adapters/a");
  EXPECT_EQ(s.value().scale, 0.5);
  s = ParseLoraSpec("a:b:-2");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value().dir, "a:b");
  EXPECT_EQ(s.value().scale, -2);
  s = ParseLoraSpec("dir:with:colon");  // no number after the last colon: all of it is DIR
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value().dir, "dir:with:colon");
  EXPECT_EQ(s.value().scale, 1.0);
  EXPECT_FALSE(ParseLoraSpec(":0.5").ok());
  EXPECT_FALSE(ParseLoraSpec("a:inf").ok());
}

TEST(LoraConfig, PatternsMatchAModuleOrItsDottedTail) {
  auto c = ParseLoraConfig(R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": true,
      "rank_pattern": {"layers.2.mlp.down_proj": 2, "lm_head": 4},
      "alpha_pattern": {"q_proj": 4}})", "adapter_config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c.value().RankOf("model.layers.2.mlp.down_proj"), 2);
  EXPECT_EQ(c.value().RankOf("model.layers.12.mlp.down_proj"), 8);  // "12" does not end in ".2"
  EXPECT_EQ(c.value().RankOf("lm_head"), 4);
  EXPECT_EQ(c.value().AlphaOf("model.layers.0.self_attn.q_proj"), 4);
  EXPECT_EQ(c.value().AlphaOf("model.layers.0.self_attn.k_proj"), 16);
  EXPECT_DOUBLE_EQ(c.value().ScalingOf("model.layers.2.mlp.down_proj"), 16 / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(c.value().ScalingOf("model.layers.0.self_attn.q_proj"), 4 / std::sqrt(8.0));
}

TEST(LoraConfig, RefusesWhatItDoesNotImplementByName) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"peft_type": "IA3", "r": 8})", "peft_type"},
      {R"({"peft_type": "LORA", "r": 8, "use_dora": true})", "use_dora"},
      {R"({"peft_type": "LORA", "r": 8, "bias": "all"})", "bias"},
      {R"({"peft_type": "LORA", "r": 8, "modules_to_save": ["lm_head"]})", "modules_to_save"},
      {R"({"peft_type": "LORA", "r": 8, "fan_in_fan_out": true})", "fan_in_fan_out"},
      {R"({"peft_type": "LORA", "r": 0})", "'r'"},
      {R"({"peft_type": "LORA", "r": 8, "lora_alpha": -1})", "lora_alpha"},
      {R"({"peft_type": "LORA", "r": 8, "rank_pattern": {"q_proj": 0}})", "rank_pattern"},
      {R"({"peft_type": "LORA", "r": 8, "layers_to_transform": ["a"]})", "layers_to_transform"},
      {R"([1, 2])", "object"},
      {R"({"peft_type": )", "JSON"},
  };
  for (const auto& [text, word] : cases) {
    auto c = ParseLoraConfig(text, "adapter_config.json");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), ExitCode::kBadInput);
    EXPECT_NE(c.status().message().find(word), std::string::npos) << c.status().message();
  }
}

}  // namespace
}  // namespace oko
