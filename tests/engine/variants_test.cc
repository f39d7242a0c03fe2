// Architecture variants shared/ has no golden for, tested against their twins: the same
// weights written sharded and unsharded, as f16 and as f32, tied and untied with a copied
// lm_head, with and without head_dim in config.json, Qwen2 with zero q/k/v biases against
// Llama, Mistral's sliding_window against Llama with the same attention window — each pair
// must give the same logits.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/dtype.h"
#include "engine/context.h"
#include "loaders/safetensors.h"
#include "loaders/safetensors_writer.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// An editable in-memory copy of a model folder's tensors (as f32) and config.
struct ModelCopy {
  json config;
  std::vector<std::string> names;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, std::vector<float>> values;
};

ModelCopy Read(const std::string& model) {
  ModelCopy m;
  const std::string dir = test::SharedPath("models/" + model);
  std::ifstream in(dir + "/config.json");
  m.config = json::parse(in);
  auto store = TensorStore::OpenDir(dir);
  EXPECT_TRUE(store.ok());
  for (const auto& [name, t] : store->tensors()) {
    std::vector<float> v(t.numel());
    for (int64_t i = 0; i < t.numel(); ++i)
      v[i] = t.dtype == DType::kF32 ? t.as<float>()[i] : Bf16ToF32(t.as<uint16_t>()[i]);
    m.names.push_back(name);
    m.shapes[name] = t.shape;
    m.values[name] = std::move(v);
  }
  return m;
}

// Writes `m` as a model folder; tensors in `dtype`, split over `shards` files.
std::string Write(const ModelCopy& m, const std::string& name, DType dtype, int shards = 1) {
  const std::string dir = test::TempDir(name);
  std::ofstream(dir + "/config.json") << m.config.dump(2);
  std::vector<std::vector<uint16_t>> halves;  // keeps converted data alive until written
  std::vector<std::vector<TensorToWrite>> files(shards);
  json weight_map = json::object();
  for (size_t i = 0; i < m.names.size(); ++i) {
    const std::string& n = m.names[i];
    const auto& v = m.values.at(n);
    const int shard = static_cast<int>(i % shards);
    const std::string file = shards == 1 ? "model.safetensors"
                                         : fmt::format("model-{:05d}-of-{:05d}.safetensors", shard + 1, shards);
    weight_map[n] = file;
    if (dtype == DType::kF32) {
      files[shard].push_back(TensorFromBytes(n, dtype, m.shapes.at(n), v.data()));
    } else {
      halves.emplace_back(v.size());
      for (size_t j = 0; j < v.size(); ++j) halves.back()[j] = F32ToF16(v[j]);
      files[shard].push_back(TensorFromBytes(n, dtype, m.shapes.at(n), halves.back().data()));
    }
  }
  for (int s = 0; s < shards; ++s) {
    const std::string file = shards == 1 ? "model.safetensors"
                                         : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards);
    EXPECT_TRUE(WriteSafetensors(dir + "/" + file, files[s]).ok());
  }
  if (shards > 1)
    std::ofstream(dir + "/model.safetensors.index.json") << json{{"weight_map", weight_map}}.dump();
  return dir;
}

// How Logits feeds the ids: prefill runs the batched matmuls (oneDNN for f32 weights);
// one token at a time decodes, where every weight dtype goes through the same GEMV.
enum class Feed { kPrefill, kOneTokenAtATime };

// The logits of every position.
std::vector<float> Logits(const std::string& dir, int64_t window = 0, Feed feed = Feed::kPrefill) {
  EngineOptions o;
  o.threads = 2;
  o.ctx = 64;
  o.window = window;
  auto model = LoadContext(dir, o);
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return {};
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 432, 383, 286};
  std::vector<float> logits;
  if (feed == Feed::kPrefill) {
    (*model)->Forward(ids, Logits::kAll, &logits);
    return logits;
  }
  std::vector<float> all, step;
  for (int32_t id : ids) {
    (*model)->Forward(std::span(&id, 1), Logits::kLast, &step);
    all.insert(all.end(), step.begin(), step.end());
  }
  return all;
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

TEST(VariantsTest, ShardedEqualsUnsharded) {
  const ModelCopy m = Read("stories260k");
  EXPECT_LE(MaxDiff(Logits(Write(m, "one", DType::kF32)), Logits(Write(m, "three", DType::kF32, 3))), 0.0);
}

TEST(VariantsTest, F16WeightsEqualTheSameValuesInF32) {
  ModelCopy m = Read("stories260k");
  for (auto& [name, v] : m.values)
    for (float& x : v) x = F16ToF32(F32ToF16(x));  // f16-representable values
  // Widening f16 is exact, so the same kernel gives the same bits.
  const auto f16 = Logits(Write(m, "f16", DType::kF16), 0, Feed::kOneTokenAtATime);
  EXPECT_EQ(MaxDiff(f16, Logits(Write(m, "f32", DType::kF32), 0, Feed::kOneTokenAtATime)), 0.0);
  EXPECT_GT(MaxDiff(f16, Logits(test::SharedPath("models/stories260k"), 0, Feed::kOneTokenAtATime)), 0.0)
      << "the rounding to f16 should be visible against the original weights";
}

TEST(VariantsTest, UntiedWithCopiedLmHeadEqualsTied) {
  ModelCopy m = Read("stories260k");
  const auto tied = Logits(Write(m, "tied", DType::kF32));
  m.config["tie_word_embeddings"] = false;
  m.names.push_back("lm_head.weight");
  m.shapes["lm_head.weight"] = m.shapes["model.embed_tokens.weight"];
  m.values["lm_head.weight"] = m.values["model.embed_tokens.weight"];
  const std::string untied_dir = Write(m, "untied", DType::kF32);
  EXPECT_LE(MaxDiff(tied, Logits(untied_dir)), 0.0);
  // And the untied head really is read: change it, the logits change.
  m.values["lm_head.weight"][0] += 1.0f;
  EXPECT_GT(MaxDiff(tied, Logits(Write(m, "untied2", DType::kF32))), 0.0);
}

TEST(VariantsTest, HeadDimAbsentFromConfigDefaultsToHiddenOverHeads) {
  ModelCopy m = Read("stories260k");
  const auto with = Logits(Write(m, "with_head_dim", DType::kF32));
  m.config.erase("head_dim");
  EXPECT_LE(MaxDiff(with, Logits(Write(m, "without_head_dim", DType::kF32))), 0.0);
}

TEST(VariantsTest, Qwen2WithZeroBiasesEqualsLlamaAndBiasesMatter) {
  ModelCopy m = Read("stories260k");
  const auto llama = Logits(Write(m, "llama", DType::kF32));
  m.config["model_type"] = "qwen2";
  m.config["architectures"] = {"Qwen2ForCausalLM"};
  const int64_t layers = m.config["num_hidden_layers"];
  for (int64_t l = 0; l < layers; ++l)
    for (const char* p : {"q_proj", "k_proj", "v_proj"}) {
      const std::string w = fmt::format("model.layers.{}.self_attn.{}.weight", l, p);
      const std::string b = fmt::format("model.layers.{}.self_attn.{}.bias", l, p);
      m.names.push_back(b);
      m.shapes[b] = {m.shapes[w][0]};
      m.values[b].assign(m.shapes[w][0], 0.0f);
    }
  EXPECT_LE(MaxDiff(llama, Logits(Write(m, "qwen2_zero_bias", DType::kF32))), 1e-6);
  m.values["model.layers.0.self_attn.v_proj.bias"][3] = 0.5f;
  EXPECT_GT(MaxDiff(llama, Logits(Write(m, "qwen2_bias", DType::kF32))), 1e-4);
}

// HF Mistral: each query attends the last sliding_window positions, itself included. A
// silent "Llama with full attention" would differ as soon as the prompt is longer.
TEST(VariantsTest, MistralSlidingWindowEqualsLlamaWithThatWindow) {
  ModelCopy m = Read("stories260k");
  const std::string llama_dir = Write(m, "llama_for_mistral", DType::kF32);
  const auto full = Logits(llama_dir);
  const auto windowed = Logits(llama_dir, /*window=*/3);
  ASSERT_GT(MaxDiff(full, windowed), 1e-4) << "8 tokens with a window of 3 must change the logits";
  m.config["model_type"] = "mistral";
  m.config["architectures"] = {"MistralForCausalLM"};
  m.config["sliding_window"] = 3;
  EXPECT_LE(MaxDiff(windowed, Logits(Write(m, "mistral_window3", DType::kF32))), 0.0);
  m.config["sliding_window"] = nullptr;  // Mistral v0.2+: full attention
  EXPECT_LE(MaxDiff(full, Logits(Write(m, "mistral_no_window", DType::kF32))), 0.0);
}

}  // namespace
}  // namespace oko
