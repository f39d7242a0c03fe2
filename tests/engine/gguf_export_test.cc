// oko quantize (engine/gguf_export.h): the files it writes
//  - equal llama.cpp's own (its converter + llama-quantize, shared/models/gguf) in every
//    metadata value and tensor byte, for every type those files hold;
//  - give exactly the logits of --quant TYPE on the source folder (the same plan and
//    quantizer), in both compute modes;
//  - read back as a source themselves: a folder written as F32 GGUF and that file quantized
//    give the folder's quantized file (tensor for tensor).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/context.h"
#include "engine/gguf_export.h"
#include "loaders/gguf.h"
#include "tests/test_util.h"

namespace oko {
namespace {

std::string Model(const std::string& name) { return test::SharedPath("models/" + name); }

std::string Export(const std::string& model, const std::string& type, const std::string& name) {
  const std::string out = test::TempDir("gguf_export_" + name) + "/" + name + ".gguf";
  auto s = ExportGguf({model, type, out, 2, nullptr});
  EXPECT_TRUE(s.ok()) << s.status().message();
  return out;
}

std::unique_ptr<GgufFile> Open(const std::string& path) {
  auto f = GgufFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().message();
  return f.ok() ? std::move(*f) : nullptr;
}

// Every tensor of `a` is in `b` with the same type, shape and bytes, and vice versa.
void ExpectSameTensors(const GgufFile& a, const GgufFile& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const GgufTensor& t : a.tensors()) {
    const GgufTensor* u = b.FindTensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(t.ggml_type, u->ggml_type) << t.name;
    EXPECT_EQ(t.ne, u->ne) << t.name;
    ASSERT_EQ(t.nbytes, u->nbytes) << t.name;
    EXPECT_EQ(std::memcmp(t.data, u->data, t.nbytes), 0) << t.name << ": the bytes differ";
  }
}

// Our file against llama.cpp's: the same keys and values (general.alignment, which we
// always state and llama.cpp leaves at its default, aside), the same tensors.
void ExpectLikeLlamaCpp(const std::string& model, const std::string& type) {
  const std::string stem = model + "-" + type;
  auto ours = Open(Export(Model(model), type, stem));
  auto theirs = Open(test::SharedPath("models/gguf/" + stem + ".gguf"));
  ASSERT_TRUE(ours && theirs);
  EXPECT_EQ(ours->contents().alignment, 32u);
  for (const auto& [key, value] : theirs->metadata()) {
    const GgufValue* v = ours->Find(key);
    ASSERT_NE(v, nullptr) << stem << ": " << key << " is missing";
    EXPECT_EQ(v->type, value.type) << stem << ": " << key;
    EXPECT_EQ(v->element_type, value.element_type) << stem << ": " << key;
    EXPECT_TRUE(*v == value) << stem << ": " << key << " differs";
  }
  EXPECT_EQ(ours->metadata().size(), theirs->metadata().size() + 1) << stem << ": keys llama.cpp does not write";
  ExpectSameTensors(*ours, *theirs);
}

TEST(GgufExport, SmallLlamaEqualsLlamaCppInEveryType) {
  for (const char* type : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k_m", "q5_k_m", "q6_k"})
    ExpectLikeLlamaCpp("small-llama-256", type);
}

TEST(GgufExport, TinyQwen3EqualsLlamaCppWithTokenizerAndTemplate) { ExpectLikeLlamaCpp("tiny-qwen3", "q8_0"); }

// exact: f32 compute on the dequantized weights; else `auto`, whose quantized weights run
// with 8-bit activations.
std::vector<float> AllLogits(const std::string& model, const std::string& quant, bool exact,
                             const std::vector<int32_t>& ids) {
  EngineOptions o;
  o.threads = 2;
  o.ctx = 64;
  o.compute_auto = !exact;
  o.quant = quant;
  auto c = LoadContext(model, o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return {};
  std::vector<float> logits;
  (*c)->Forward(ids, Logits::kAll, &logits);
  return logits;
}

// Bit for bit: the file holds exactly the weights --quant makes, rows in llama.cpp's order
// (llama q/k) put back on load.
void ExpectLogitsOfQuant(const std::string& model, const std::string& type, const std::vector<int32_t>& ids) {
  const std::string file = Export(Model(model), type, model + "-logits-" + type);
  for (bool exact : {true, false}) {
    const auto expected = AllLogits(Model(model), type, exact, ids);
    const auto got = AllLogits(file, "", exact, ids);
    ASSERT_FALSE(expected.empty());
    EXPECT_TRUE(got == expected) << model << " " << type << (exact ? " exact" : " 8-bit activations");
  }
}

const std::vector<int32_t> kLlamaIds = {1, 403, 407, 261, 300, 410, 265, 270};
const std::vector<int32_t> kQwenIds = {9707, 1879, 11, 151644, 872, 198, 13};

TEST(GgufExport, LogitsEqualQuantAtLoad) {
  for (const char* type : {"q8_0", "q4_k_m", "q5_1"}) ExpectLogitsOfQuant("small-llama-256", type, kLlamaIds);
  ExpectLogitsOfQuant("tiny-qwen3", "q4_k_m", kQwenIds);  // fallbacks: Q5_0, Q8_0
}

TEST(GgufExport, PlainTypesRunAsTheFolder) {
  const std::string file = Export(Model("small-llama-256"), "f32", "small-llama-256-f32");
  EXPECT_TRUE(AllLogits(file, "", true, kLlamaIds) == AllLogits(Model("small-llama-256"), "", true, kLlamaIds));
  const std::string bf16 = Export(Model("tiny-qwen3"), "bf16", "tiny-qwen3-bf16");
  auto f = Open(bf16);
  ASSERT_TRUE(f);
  for (const GgufTensor& t : f->tensors()) EXPECT_EQ(t.ggml_type, t.ne.size() == 2 ? 30u : 0u) << t.name;
  // `auto` decides on the matrices' dtype, found in the file as in the folder (it took a
  // bf16 file for f32 weights: f32 compute where the folder ran the bf16 dot).
  EngineOptions o;
  o.ctx = 64;
  o.compute_auto = true;
  auto of_file = LoadContext(bf16, o), of_folder = LoadContext(Model("tiny-qwen3"), o);
  ASSERT_TRUE(of_file.ok() && of_folder.ok());
  EXPECT_EQ((*of_file)->model().compute(), (*of_folder)->model().compute());
  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(kQwenIds[i % kQwenIds.size()]);  // past the small-batch kernels
  std::vector<float> from_file, from_folder;
  (*of_file)->Forward(ids, Logits::kAll, &from_file);
  (*of_folder)->Forward(ids, Logits::kAll, &from_folder);
  EXPECT_TRUE(from_file == from_folder);
}

TEST(GgufExport, AGgufSourceQuantizesAsItsFolder) {
  const std::string f32 = Export(Model("small-llama-256"), "f32", "small-llama-256-f32-src");
  auto from_file = Open(Export(f32, "q4_k_m", "from-f32-gguf"));
  auto from_folder = Open(Export(Model("small-llama-256"), "q4_k_m", "from-folder"));
  ASSERT_TRUE(from_file && from_folder);
  ExpectSameTensors(*from_file, *from_folder);
  EXPECT_EQ(from_file->String("tokenizer.ggml.model").value(), "llama");
}

TEST(GgufExport, RequantizingIsSaid) {
  auto s = ExportGguf({test::SharedPath("models/gguf/small-llama-256-q8_0.gguf"), "q4_0",
                       test::TempDir("gguf_export_requant") + "/requant.gguf", 2, nullptr});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(s->requantized);
  EXPECT_EQ(s->type_counts.at("Q4_0"), 29u);
  EXPECT_EQ(s->type_counts.at("Q6_K"), 1u);
}

TEST(GgufExport, UnknownTypeIsAUsageError) {
  auto s = ExportGguf({Model("small-llama-256"), "q3_k", test::TempDir("gguf_export_x") + "/x.gguf", 1, nullptr});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), ExitCode::kUsage);
  EXPECT_NE(s.status().message().find("q3_k"), std::string::npos) << s.status().message();
}

}  // namespace
}  // namespace oko

namespace oko {
namespace {

// small-llama-256 with Llama 3.1's RoPE scaling, its original context short enough (64)
// that the 16 frequencies of its heads fall in all three bands (kept, interpolated, scaled).
std::string Llama3ScaledModel() {
  const std::string src = Model("small-llama-256"), dir = test::TempDir("llama3_scaled");
  auto config = test::ReadJson(src + "/config.json");
  config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  std::ofstream(dir + "/config.json") << config.dump(2);
  for (const char* name : {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    std::filesystem::create_symlink(src + "/" + name, dir + "/" + name);
  return dir;
}

TEST(GgufExport, Llama3RopeScalingTravelsAsRopeFreqs) {
  const std::string dir = Llama3ScaledModel();
  const std::string file = Export(dir, "f32", "llama3-scaled");
  auto f = Open(file);
  ASSERT_TRUE(f);
  const GgufTensor* freqs = f->FindTensor("rope_freqs.weight");
  ASSERT_NE(freqs, nullptr);
  std::vector<float> factors(16);
  std::memcpy(factors.data(), freqs->data, 64);
  EXPECT_EQ(factors[0], 1.0f);                   // wavelength 6.3 < 64 / 4: kept
  EXPECT_GT(factors[3], 1.0f);                   // 35: interpolated
  EXPECT_LT(factors[3], 8.0f);
  EXPECT_EQ(factors[15], 8.0f);                  // long: slowed 8x
  std::vector<int32_t> ids;
  for (int i = 0; i < 48; ++i) ids.push_back(kLlamaIds[i % kLlamaIds.size()]);
  const auto folder = AllLogits(dir, "", true, ids), gguf = AllLogits(file, "", true, ids);
  const auto unscaled = AllLogits(Model("small-llama-256"), "", true, ids);
  ASSERT_EQ(folder.size(), gguf.size());
  float max_diff = 0, max_unscaled = 0;
  for (size_t i = 0; i < folder.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(folder[i] - gguf[i]));
    max_unscaled = std::max(max_unscaled, std::fabs(folder[i] - unscaled[i]));
  }
  // inv_freq / factor rounds differently from HF's interpolation, by an ulp in a few
  // frequencies: float noise, far below what the scaling itself changes.
  EXPECT_LT(max_diff, 1e-4f);
  EXPECT_GT(max_unscaled, 1e-1f);
}

}  // namespace
}  // namespace oko
