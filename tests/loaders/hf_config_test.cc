// config.json (+ generation_config.json) -> ModelConfig, and the check of a folder's
// tensors against it. Expected values are copied from the shared config.json files.
#include "loaders/hf_config.h"

#include "common/limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loaders/model_dir.h"
#include "loaders/safetensors_writer.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A small Qwen3 config.json, as transformers writes it.
json Qwen3Json() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "bos_token_id": 151643,
    "eos_token_id": 151645, "head_dim": 32, "hidden_act": "silu", "hidden_size": 64,
    "intermediate_size": 192, "max_position_embeddings": 40960, "model_type": "qwen3",
    "num_attention_heads": 4, "num_hidden_layers": 4, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 151936})");
}

Result<ModelConfig> Parse(const json& j) { return ParseModelConfig(j.dump(), "dir/config.json"); }

std::string ParseError(const json& j) {
  auto c = Parse(j);
  return c.ok() ? "(parsed without error)" : c.status().message();
}

TEST(HfConfigTest, Stories260kHasItsTrueValues) {
  auto c = LoadModelConfig(test::SharedPath("models/stories260k"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 172);
  EXPECT_EQ(c->num_layers, 5);
  EXPECT_EQ(c->num_heads, 8);
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->q_dim(), 64);
  EXPECT_EQ(c->kv_dim(), 32);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->rope_scaling.type, "");
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->max_position_embeddings, 512);
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2, 1));  // config's 2, then generation's [1, 2]
  EXPECT_EQ(c->torch_dtype, "float32");
  EXPECT_EQ(c->generation.do_sample, true);
  EXPECT_EQ(c->generation.temperature, 1.0);
  EXPECT_EQ(c->generation.top_p, 0.9);
  EXPECT_FALSE(c->generation.top_k.has_value());
  EXPECT_FALSE(c->generation.min_p.has_value());
  EXPECT_THAT(c->generation.eos_token_ids, ElementsAre(1, 2));
}

TEST(HfConfigTest, TinyQwen3HasItsTrueValues) {
  auto c = LoadModelConfig(test::SharedPath("models/tiny-qwen3"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->arch, Arch::kQwen3);
  EXPECT_EQ(ArchName(c->arch), "qwen3");
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 192);
  EXPECT_EQ(c->num_layers, 4);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 32);  // not hidden / heads = 16
  EXPECT_EQ(c->q_dim(), 128);
  EXPECT_EQ(c->kv_dim(), 64);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_EQ(c->max_position_embeddings, 40960);
  EXPECT_EQ(c->bos_token_id, 151643);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645, 151643));
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  EXPECT_EQ(c->generation.do_sample, true);
  EXPECT_EQ(c->generation.temperature, 0.6);
  EXPECT_EQ(c->generation.top_k, 20);
  EXPECT_EQ(c->generation.top_p, 0.95);
}

TEST(HfConfigTest, TinyLlamaHasItsTrueValues) {
  auto c = LoadModelConfig(test::SharedPath("models/tiny-llama"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 160);
  EXPECT_EQ(c->num_layers, 3);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->max_position_embeddings, 8192);
  EXPECT_EQ(c->bos_token_id, 151643);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645, 151643));
  EXPECT_EQ(c->torch_dtype, "float32");
}

TEST(HfConfigTest, SharedModelsPassTheTensorCheck) {
  for (const char* model : {"stories260k", "tiny-qwen3", "tiny-llama"}) {
    auto m = OpenModelDir(test::SharedPath(std::string("models/") + model));
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_TRUE(m->has_tokenizer) << model;
  }
}

TEST(HfConfigTest, HeadDimDefaultsToHiddenOverHeads) {
  json j = Qwen3Json();
  j.erase("head_dim");
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->q_dim(), 64);
  j["num_attention_heads"] = 3;
  j["num_key_value_heads"] = 1;
  EXPECT_EQ(ParseError(j),
            "dir/config.json: hidden_size 64 is not a multiple of num_attention_heads 3 and no "
            "head_dim is given");
  j["head_dim"] = 24;
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->head_dim, 24);
}

TEST(HfConfigTest, KvHeadsDefaultToHeadsAndMustDivideThem) {
  json j = Qwen3Json();
  j.erase("num_key_value_heads");
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->num_kv_heads, 4);
  j["num_key_value_heads"] = 3;
  EXPECT_EQ(ParseError(j), "dir/config.json: num_attention_heads 4 is not a multiple of "
                           "num_key_value_heads 3");
  j["num_key_value_heads"] = 0;
  EXPECT_EQ(ParseError(j), "dir/config.json: 'num_key_value_heads' must be >= 1, got 0");
}

TEST(HfConfigTest, EosIsAnIdOrAList) {
  json j = Qwen3Json();
  auto c = Parse(j);
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645));
  j["eos_token_id"] = {7, 9, 7};
  c = Parse(j);
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->eos_token_ids, ElementsAre(7, 9));
  j["eos_token_id"] = nullptr;
  c = Parse(j);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->eos_token_ids.empty());
  j["eos_token_id"] = {7, "8"};
  EXPECT_EQ(ParseError(j), "dir/config.json: 'eos_token_id' must be a token id or a list of ids, "
                           "got [7,\"8\"]");
  j["eos_token_id"] = -1;
  EXPECT_THAT(ParseError(j), HasSubstr("'eos_token_id' must be a token id or a list of ids"));
}

TEST(HfConfigTest, GenerationConfigIsMerged) {
  auto c = Parse(Qwen3Json());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(ParseGenerationConfig(R"({"eos_token_id": [151643, 151645], "temperature": 0.7,
      "top_k": 0, "min_p": 0.05, "repetition_penalty": 1.1, "do_sample": false})",
                                    "dir/generation_config.json", &*c)
                  .ok());
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645, 151643));
  EXPECT_THAT(c->generation.eos_token_ids, ElementsAre(151643, 151645));
  EXPECT_EQ(c->generation.temperature, 0.7);
  EXPECT_EQ(c->generation.top_k, 0);
  EXPECT_EQ(c->generation.min_p, 0.05);
  EXPECT_EQ(c->generation.repetition_penalty, 1.1);
  EXPECT_EQ(c->generation.do_sample, false);
  EXPECT_FALSE(c->generation.top_p.has_value());

  const Status bad = ParseGenerationConfig(R"({"temperature": "hot"})",
                                           "dir/generation_config.json", &*c);
  EXPECT_EQ(bad.message(), "dir/generation_config.json: 'temperature' must be a number, got \"hot\"");
  EXPECT_EQ(ParseGenerationConfig(R"({"top_k": -1})", "g.json", &*c).message(),
            "g.json: 'top_k' must be >= 0, got -1");
  EXPECT_THAT(ParseGenerationConfig("[", "g.json", &*c).message(), HasSubstr("g.json: not valid JSON: "));
}

TEST(HfConfigTest, LoadModelConfigReadsGenerationConfigOnlyWhenPresent) {
  const std::string dir = test::TempDir("load_config");
  std::ofstream(dir + "/config.json") << Qwen3Json().dump();
  auto c = LoadModelConfig(dir);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645));
  EXPECT_FALSE(c->generation.temperature.has_value());

  std::ofstream(dir + "/generation_config.json") << R"({"eos_token_id": [1, 151645], "top_p": 0.8})";
  c = LoadModelConfig(dir);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645, 1));
  EXPECT_EQ(c->generation.top_p, 0.8);

  std::ofstream(dir + "/generation_config.json") << R"({"do_sample": "yes"})";
  c = LoadModelConfig(dir);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            dir + "/generation_config.json: 'do_sample' must be true or false, got \"yes\"");

  const std::string empty = test::TempDir("no_config");
  c = LoadModelConfig(empty);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), empty + "/config.json: missing (is '" + empty +
                                      "' a Hugging Face model folder?)");
}

TEST(HfConfigTest, Qwen2ExpectsQkvBiasesAndNoQkNorm) {
  json j = Qwen3Json();
  j["model_type"] = "qwen2";
  j.erase("attention_bias");
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->arch, Arch::kQwen2);
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->qk_norm);
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& e : ExpectedTensors(*c)) expected[e.name] = e.shape;
  EXPECT_EQ(expected.size(), 3u + 4 * 12);
  EXPECT_EQ(expected["model.layers.3.self_attn.q_proj.bias"], std::vector<int64_t>{128});
  EXPECT_EQ(expected["model.layers.3.self_attn.k_proj.bias"], std::vector<int64_t>{64});
  EXPECT_EQ(expected["model.layers.3.self_attn.v_proj.bias"], std::vector<int64_t>{64});
  EXPECT_EQ(expected.count("model.layers.0.self_attn.o_proj.bias"), 0u);
  EXPECT_EQ(expected.count("model.layers.0.self_attn.q_norm.weight"), 0u);
}

TEST(HfConfigTest, ExpectedTensorsOfQwen3HaveTheRealShapes) {
  auto c = Parse(Qwen3Json());
  ASSERT_TRUE(c.ok());
  std::map<std::string, ExpectedTensor> expected;
  for (const auto& e : ExpectedTensors(*c)) expected[e.name] = e;
  EXPECT_EQ(expected.size(), 3u + 4 * 11);
  EXPECT_EQ(expected["model.embed_tokens.weight"].shape, (std::vector<int64_t>{151936, 64}));
  EXPECT_TRUE(expected["lm_head.weight"].optional);  // tied
  EXPECT_FALSE(expected["model.norm.weight"].optional);
  EXPECT_EQ(expected["model.layers.0.self_attn.q_proj.weight"].shape,
            (std::vector<int64_t>{128, 64}));
  EXPECT_EQ(expected["model.layers.0.self_attn.k_proj.weight"].shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(expected["model.layers.0.self_attn.o_proj.weight"].shape,
            (std::vector<int64_t>{64, 128}));
  EXPECT_EQ(expected["model.layers.3.self_attn.q_norm.weight"].shape, std::vector<int64_t>{32});
  EXPECT_EQ(expected["model.layers.3.mlp.gate_proj.weight"].shape, (std::vector<int64_t>{192, 64}));
  EXPECT_EQ(expected["model.layers.3.mlp.down_proj.weight"].shape, (std::vector<int64_t>{64, 192}));

  json j = Qwen3Json();
  j["attention_bias"] = true;
  j["tie_word_embeddings"] = false;
  c = Parse(j);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_TRUE(c->o_bias);
  expected.clear();
  for (const auto& e : ExpectedTensors(*c)) expected[e.name] = e;
  EXPECT_EQ(expected.size(), 3u + 4 * 15);
  EXPECT_FALSE(expected["lm_head.weight"].optional);
  EXPECT_EQ(expected["model.layers.1.self_attn.o_proj.bias"].shape, std::vector<int64_t>{64});
}

TEST(HfConfigTest, RopeScalingLinearAndLlama3Parse) {
  json j = Qwen3Json();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->rope_scaling.type, "linear");
  EXPECT_EQ(c->rope_scaling.factor, 2.0);

  j["model_type"] = "llama";
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->rope_scaling.type, "llama3");
  EXPECT_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_EQ(c->rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);

  j["rope_scaling"] = {{"rope_type", "default"}};
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->rope_scaling.type, "");
}

TEST(HfConfigTest, RopeScalingNotImplementedIsRejected) {
  json j = Qwen3Json();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0},
                       {"original_max_position_embeddings", 32768}};
  EXPECT_EQ(ParseError(j), "dir/config.json: rope_scaling type 'yarn' is not implemented "
                           "(supported: linear, llama3)");
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  EXPECT_THAT(ParseError(j), HasSubstr("rope_scaling type 'dynamic' is not implemented"));
  j["rope_scaling"] = "linear";
  EXPECT_EQ(ParseError(j), "dir/config.json: 'rope_scaling' must be an object or null");
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  EXPECT_EQ(ParseError(j),
            "dir/config.json: missing 'rope_scaling.original_max_position_embeddings'");
  j["rope_scaling"] = {{"type", "linear"}, {"factor", "2"}};
  EXPECT_EQ(ParseError(j), "dir/config.json: 'rope_scaling.factor' must be a number, got \"2\"");
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 0}};
  EXPECT_EQ(ParseError(j), "dir/config.json: 'rope_scaling.factor' must be > 0, got 0");
}

TEST(HfConfigTest, UnknownModelTypeIsRejected) {
  json j = Qwen3Json();
  j["model_type"] = "gpt2";
  EXPECT_EQ(ParseError(j), "dir/config.json: model_type 'gpt2' is not supported (supported: "
                           "qwen3, qwen2, llama, mistral)");
  j.erase("model_type");
  EXPECT_EQ(ParseError(j), "dir/config.json: model_type '(missing)' is not supported (supported: "
                           "qwen3, qwen2, llama, mistral)");
}

TEST(HfConfigTest, WrongFieldTypesAreRejectedNamingTheField) {
  const std::pair<const char*, json> cases[] = {
      {"hidden_size", "64"},          {"vocab_size", 151936.5},
      {"num_hidden_layers", true},    {"rms_norm_eps", "1e-6"},
      {"rope_theta", {1}},            {"tie_word_embeddings", "true"},
      {"attention_bias", 0},          {"max_position_embeddings", "4k"},
      {"bos_token_id", {1}},          {"torch_dtype", 16},
      {"model_type", 3},              {"head_dim", 32.0},
  };
  const std::map<std::string, std::string> kinds = {
      {"hidden_size", "an integer"},  {"vocab_size", "an integer"},
      {"num_hidden_layers", "an integer"}, {"rms_norm_eps", "a number"},
      {"rope_theta", "a number"},     {"tie_word_embeddings", "true or false"},
      {"attention_bias", "true or false"}, {"max_position_embeddings", "an integer"},
      {"bos_token_id", "an integer"}, {"torch_dtype", "a string"},
      {"model_type", "a string"},     {"head_dim", "an integer"},
  };
  for (const auto& [field, value] : cases) {
    json j = Qwen3Json();
    j[field] = value;
    EXPECT_EQ(ParseError(j), fmt::format("dir/config.json: '{}' must be {}, got {}", field,
                                         kinds.at(field), value.dump()));
  }
}

TEST(HfConfigTest, MissingAndOutOfRangeFieldsAreRejected) {
  for (const char* field : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads"}) {
    json j = Qwen3Json();
    j.erase(field);
    EXPECT_EQ(ParseError(j), fmt::format("dir/config.json: missing '{}'", field));
    j[field] = 0;
    EXPECT_EQ(ParseError(j), fmt::format("dir/config.json: '{}' must be >= 1, got 0", field));
  }
  json j = Qwen3Json();
  j["head_dim"] = 33;
  EXPECT_EQ(ParseError(j), "dir/config.json: head_dim 33 must be even for RoPE");
  j = Qwen3Json();
  j["rope_theta"] = 0;
  EXPECT_EQ(ParseError(j), "dir/config.json: 'rope_theta' must be > 0");
  j = Qwen3Json();
  j["hidden_act"] = "gelu";
  EXPECT_EQ(ParseError(j), "dir/config.json: hidden_act 'gelu' is not implemented (only silu)");
  j = Qwen3Json();
  j["mlp_bias"] = true;
  EXPECT_EQ(ParseError(j), "dir/config.json: 'mlp_bias': true is not implemented");
  EXPECT_THAT(ParseModelConfig("{\"model_type\": ", "c.json").status().message(),
              HasSubstr("c.json: not valid JSON: parse error at line 1, column 16"));
  EXPECT_EQ(ParseModelConfig("[1]", "c.json").status().message(), "c.json: not a JSON object");
}

// A corrupt config.json must not make ExpectedTensors (and the engine) allocate for 10^8
// layers or overflow vocab * hidden and heads * head_dim: sizes have upper limits.
// (tests/fuzz/corpus/fuzz_config/oom-huge-sizes ran fuzz_config out of memory.)
TEST(HfConfigTest, ImplausiblyLargeSizesAreRejectedNamingTheLimit) {
  const std::vector<std::pair<const char*, int64_t>> limits = {
      {"vocab_size", kMaxVocabSize},     {"hidden_size", kMaxHidden},
      {"intermediate_size", kMaxIntermediate}, {"num_hidden_layers", kMaxLayers},
      {"num_attention_heads", kMaxHeads}, {"num_key_value_heads", kMaxHeads},
      {"head_dim", kMaxHeadDim}};
  for (const auto& [field, limit] : limits) {
    json j = Qwen3Json();
    j[field] = limit + 1;
    EXPECT_EQ(ParseError(j), fmt::format("dir/config.json: '{}' is {}, over oko's limit of {}",
                                         field, limit + 1, limit));
  }
  json j = Qwen3Json();
  j["num_hidden_layers"] = 18446744073709551615ull;  // beyond int64: rejected, not wrapped
  EXPECT_THAT(ParseError(j), HasSubstr("'num_hidden_layers' is 18446744073709551615, over oko's limit"));
  j = Qwen3Json();
  j["eos_token_id"] = {151645, int64_t{1} << 31};
  EXPECT_THAT(ParseError(j), HasSubstr("'eos_token_id' must be a token id or a list of ids"));
  j = Qwen3Json();
  j["bos_token_id"] = int64_t{1} << 31;
  EXPECT_THAT(ParseError(j), HasSubstr("'bos_token_id' is 2147483648, over oko's limit"));
  // The limits are far above real models.
  j = Qwen3Json();
  j["vocab_size"] = 262144;
  j["hidden_size"] = 16384;
  j["intermediate_size"] = 53248;
  j["num_hidden_layers"] = 126;
  j["num_attention_heads"] = 128;
  j["num_key_value_heads"] = 8;
  j["head_dim"] = 128;
  EXPECT_TRUE(Parse(j).ok()) << ParseError(j);
}

TEST(HfConfigTest, DtypeIsReadFromTorchDtypeOrDtype) {
  json j = Qwen3Json();
  j.erase("torch_dtype");
  j["dtype"] = "float16";  // as transformers >= 4.56 saves it
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->torch_dtype, "float16");
}

// A folder whose tensors are those `config` expects, edited by the test.
class CheckTensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    json j = Qwen3Json();
    j["vocab_size"] = 16;
    j["hidden_size"] = 8;
    j["intermediate_size"] = 12;
    j["num_hidden_layers"] = 2;
    j["num_attention_heads"] = 2;
    j["num_key_value_heads"] = 1;
    j["head_dim"] = 4;
    auto c = Parse(j);
    ASSERT_TRUE(c.ok()) << c.status().message();
    config_ = *c;
    for (const auto& e : ExpectedTensors(config_))
      if (!e.optional) tensors_[e.name] = {e.shape, DType::kF32};
  }
  // Writes the tensors to a fresh folder and checks them against the config.
  Status Check() {
    dir_ = test::TempDir("check_tensors");
    std::vector<TensorToWrite> write;
    for (const auto& [name, t] : tensors_)
      write.push_back(TensorFromBytes(name, t.second, t.first, zeros_.data()));
    OKO_RETURN_IF_ERROR(WriteSafetensors(dir_ + "/model.safetensors", write));
    OKO_ASSIGN_OR_RETURN(TensorStore store, TensorStore::OpenDir(dir_));
    return CheckTensors(config_, store);
  }

  ModelConfig config_;
  std::map<std::string, std::pair<std::vector<int64_t>, DType>> tensors_;
  std::vector<float> zeros_ = std::vector<float>(16 * 8);
  std::string dir_;
};

TEST_F(CheckTensorsTest, CompleteFolderPasses) {
  EXPECT_EQ(tensors_.size(), 2u + 2 * 11);
  const Status s = Check();
  EXPECT_TRUE(s.ok()) << s.message();
  tensors_["lm_head.weight"] = {{16, 8}, DType::kF32};  // tied, but present: allowed
  tensors_["model.rotary_emb.inv_freq"] = {{2}, DType::kF32};
  const Status t = Check();
  EXPECT_TRUE(t.ok()) << t.message();
}

TEST_F(CheckTensorsTest, ListsMissingMisshapenAndUnexpectedTensorsByName) {
  tensors_.erase("model.layers.1.mlp.up_proj.weight");
  tensors_.erase("model.norm.weight");
  tensors_["model.layers.0.self_attn.q_norm.weight"] = {{8}, DType::kF32};
  tensors_["model.layers.1.self_attn.k_proj.weight"] = {{8, 8}, DType::kF32};
  tensors_["model.layers.0.input_layernorm.weight"] = {{8}, DType::kI32};
  tensors_["model.layers.2.mlp.up_proj.weight"] = {{12, 8}, DType::kF32};
  tensors_["lm_head.weight"] = {{16, 4}, DType::kF32};
  const Status s = Check();
  ASSERT_FALSE(s.ok());
  const std::string file = dir_ + "/model.safetensors";
  EXPECT_EQ(s.message(),
            "model tensors do not match config.json (qwen3 2 layers):\n"
            "  missing (2):\n"
            "    model.norm.weight\n"
            "    model.layers.1.mlp.up_proj.weight\n"
            "  wrong shape or dtype (4):\n"
            "    " + file + ": tensor 'lm_head.weight' has shape [16, 4], expected [16, 8]\n"
            "    " + file + ": tensor 'model.layers.0.input_layernorm.weight' has dtype I32, "
            "expected F32, BF16 or F16\n"
            "    " + file + ": tensor 'model.layers.0.self_attn.q_norm.weight' has shape [8], "
            "expected [4]\n"
            "    " + file + ": tensor 'model.layers.1.self_attn.k_proj.weight' has shape [8, 8], "
            "expected [4, 8]\n"
            "  unexpected (1):\n"
            "    model.layers.2.mlp.up_proj.weight");
}

TEST_F(CheckTensorsTest, UntiedModelNeedsLmHead) {
  config_.tie_word_embeddings = false;
  const Status s = Check();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("missing (1):\n    lm_head.weight"));
}

TEST_F(CheckTensorsTest, LongListsAreCut) {
  config_.num_layers = 4;  // 2 * 11 tensors of layers 2 and 3 are missing
  const Status s = Check();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("(qwen3 4 layers)"));
  EXPECT_THAT(s.message(), HasSubstr("missing (22):\n    model.layers.2.input_layernorm.weight"));
  EXPECT_THAT(s.message(), HasSubstr("\n    ... and 2 more"));
  EXPECT_THAT(s.message(), Not(HasSubstr("unexpected")));
}

TEST_F(CheckTensorsTest, OpenModelDirNamesTheFolder) {
  tensors_.erase("model.embed_tokens.weight");
  ASSERT_FALSE(Check().ok());
  json j = Qwen3Json();
  j["vocab_size"] = 16;
  j["hidden_size"] = 8;
  j["intermediate_size"] = 12;
  j["num_hidden_layers"] = 2;
  j["num_attention_heads"] = 2;
  j["num_key_value_heads"] = 1;
  j["head_dim"] = 4;
  std::ofstream(dir_ + "/config.json") << j.dump();
  auto m = OpenModelDir(dir_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ExitCode::kBadInput);
  EXPECT_THAT(m.status().message(),
              HasSubstr(dir_ + ": model tensors do not match config.json (qwen3 2 layers):\n"
                               "  missing (1):\n    model.embed_tokens.weight"));
}

}  // namespace
}  // namespace oko

namespace oko {
namespace {

// Mistral is Llama plus a sliding window over every layer; null (Mistral v0.2+) means
// full attention. Qwen2/Qwen3 windows on some layers only are refused, not ignored.
TEST(HfConfigTest, SlidingWindowsAreReadOrRefused) {
  json j = Qwen3Json();
  j["model_type"] = "mistral";
  j["sliding_window"] = 4096;
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->sliding_window, 4096);
  j["sliding_window"] = nullptr;
  EXPECT_EQ(Parse(j)->sliding_window, 0);

  j = Qwen3Json();
  j["use_sliding_window"] = false;
  j["sliding_window"] = 4096;
  j["max_window_layers"] = 2;
  EXPECT_EQ(Parse(j)->sliding_window, 0);
  j["use_sliding_window"] = true;
  j["max_window_layers"] = j["num_hidden_layers"];  // no layer slides (transformers' rule)
  EXPECT_TRUE(Parse(j).ok());
  j["max_window_layers"] = 2;
  EXPECT_THAT(ParseError(j), HasSubstr("'use_sliding_window': true with max_window_layers 2 < "
                                       "num_hidden_layers"));
}

TEST(HfConfigTest, DimensionsOverTheLimitsAreRefused) {
  json j = Qwen3Json();
  j["num_hidden_layers"] = 5000;
  EXPECT_EQ(ParseError(j), "dir/config.json: 'num_hidden_layers' is 5000, over oko's limit of 1024");
  j = Qwen3Json();
  j.erase("head_dim");
  j["hidden_size"] = 65536;
  j["num_attention_heads"] = 2;
  j["num_key_value_heads"] = 2;
  EXPECT_THAT(ParseError(j), HasSubstr("head_dim (hidden_size / num_attention_heads) is 32768, over "
                                       "oko's limit of 1024"));
}

}  // namespace
}  // namespace oko
