// GGUF files as models: every file in shared/models/gguf loads with the config of the
// folder it was converted from, and a Q8_0 file (whose bytes oko's quantizer reproduces
// exactly) gives bit for bit the logits of its folder quantized at load (--quant q8_0),
// in both compute modes: same weights, same kernels, the llama q/k rows back in order.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "engine/context.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;

TEST(GgufModel, EveryFileLoadsWithItsFoldersConfig) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(test::SharedPath("models/gguf"))) {
    if (entry.path().extension() != ".gguf") continue;
    ++files;
    const std::string stem = entry.path().stem().string();
    SCOPED_TRACE(stem);
    const std::string folder = stem.starts_with("tiny-qwen3") ? "tiny-qwen3" : "small-llama-256";
    auto gguf = Model::Load(entry.path().string(), EngineOptions{});
    ASSERT_TRUE(gguf.ok()) << gguf.status().message();
    auto hf = LoadModelConfig(test::SharedPath("models/" + folder));
    ASSERT_TRUE(hf.ok()) << hf.status().message();
    const ModelConfig& a = (*gguf)->config();
    const ModelConfig& b = *hf;
    EXPECT_EQ(a.arch, b.arch);
    EXPECT_EQ(a.vocab_size, b.vocab_size);
    EXPECT_EQ(a.hidden_size, b.hidden_size);
    EXPECT_EQ(a.intermediate_size, b.intermediate_size);
    EXPECT_EQ(a.num_layers, b.num_layers);
    EXPECT_EQ(a.num_heads, b.num_heads);
    EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
    EXPECT_EQ(a.head_dim, b.head_dim);
    EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
    EXPECT_EQ(a.qk_norm, b.qk_norm);
    EXPECT_EQ(a.rope_theta, b.rope_theta);
    EXPECT_FLOAT_EQ(static_cast<float>(a.rms_norm_eps), static_cast<float>(b.rms_norm_eps));  // stored as f32
    EXPECT_EQ(a.bos_token_id, b.bos_token_id);
    // The file's eos id and its end-of-turn tokens: generation_config.json's list.
    EXPECT_EQ(std::set<int64_t>(a.eos_token_ids.begin(), a.eos_token_ids.end()),
              std::set<int64_t>(b.eos_token_ids.begin(), b.eos_token_ids.end()));
  }
  EXPECT_EQ(files, 9);
}

std::vector<float> AllLogits(const std::string& model, const std::string& quant, bool exact,
                             const std::vector<int32_t>& ids) {
  EngineOptions o;
  o.threads = 2;
  o.ctx = 64;
  o.quant = quant;
  o.compute = ComputeMode::kF32;
  o.compute_auto = !exact;
  auto c = LoadContext(model, o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return {};
  std::vector<float> logits, row, decoded;
  (*c)->Forward(ids, Logits::kAll, &logits);
  (*c)->Reset();
  for (int32_t id : ids) {  // the decode path (GEMV; 8-bit activations when not exact)
    (*c)->Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &row);
    decoded.insert(decoded.end(), row.begin(), row.end());
  }
  logits.insert(logits.end(), decoded.begin(), decoded.end());
  return logits;
}

void ExpectFileEqualsFolder(const std::string& file, const std::string& folder) {
  // 14 ids: prefill takes the packed GEMM path (M >= 12), decode the GEMV.
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 9, 30, 77, 200, 311, 5, 64, 128, 2};
  for (bool exact : {true, false}) {
    SCOPED_TRACE(exact ? "f32" : "8-bit activations");
    const auto a = AllLogits(test::SharedPath("models/gguf/" + file), "", exact, ids);
    const auto b = AllLogits(test::SharedPath("models/" + folder), "q8_0", exact, ids);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    size_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
    EXPECT_EQ(differ, 0u) << "of " << a.size() << " logits";
  }
}

TEST(GgufModel, LlamaQ8_0FileEqualsItsFolderQuantizedAtLoad) {
  ExpectFileEqualsFolder("small-llama-256-q8_0.gguf", "small-llama-256");
}

TEST(GgufModel, QwenQ8_0FileEqualsItsFolderQuantizedAtLoad) {
  ExpectFileEqualsFolder("tiny-qwen3-q8_0.gguf", "tiny-qwen3");
}

}  // namespace
}  // namespace oko
