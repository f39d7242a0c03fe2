// `oko make-model` run as a user runs it: the folder it writes has the real model's tensors
// and files, follows the safetensors rules Hugging Face's readers enforce, loads with
// `oko info`, and is deterministic for a seed.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "tests/model_folder.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using ::testing::HasSubstr;

// Runs make-model with `args` into a fresh folder and returns the folder.
std::string MakeModel(const std::string& name, const std::string& args) {
  const std::string out = test::TempDir(name) + "/model";
  const auto r = test::RunOko("make-model " + args + " --out " + out);
  EXPECT_EQ(r.exit_code, 0) << "make-model " << args << "\n" << r.err;
  return out;
}

// Every tensor's name -> (dtype, shape); with `with_dtype` false, name -> shape.
std::map<std::string, std::string> TensorSignature(const ojson& header, bool with_dtype) {
  std::map<std::string, std::string> sig;
  for (const auto& [name, e] : header.items())
    if (name != "__metadata__")
      sig[name] = (with_dtype ? e["dtype"].get<std::string>() + " " : "") + e["shape"].dump();
  return sig;
}

ojson ReadJson(const std::string& path) { return ojson::parse(test::ReadBytes(path)); }

// A tensor's values widened to double, decoded here without oko's conversions.
std::vector<double> Values(const std::string& path, const std::string& name) {
  const std::string bytes = test::ReadBytes(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  const ojson e = test::SafetensorsHeader(path)[name];
  const auto begin = e["data_offsets"][0].get<uint64_t>(), end = e["data_offsets"][1].get<uint64_t>();
  const char* p = bytes.data() + 8 + header_len + begin;
  const std::string dtype = e["dtype"].get<std::string>();
  std::vector<double> v;
  if (dtype == "F32") {
    for (uint64_t i = 0; i < (end - begin) / 4; ++i) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      v.push_back(f);
    }
  } else {
    for (uint64_t i = 0; i < (end - begin) / 2; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      if (dtype == "BF16") {
        const uint32_t bits = uint32_t{h} << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        v.push_back(f);
      } else {  // IEEE half: sign, 5-bit exponent (bias 15), 10-bit fraction
        const int exp = (h >> 10) & 31, frac = h & 1023;
        const double mag = exp == 0 ? std::ldexp(frac, -24) : std::ldexp(1024 + frac, exp - 25);
        v.push_back((h & 0x8000) ? -mag : mag);
      }
    }
  }
  return v;
}

TEST(MakeModelCliTest, TinyQwen3PresetIsTheSharedModelsShapeAndLoads) {
  const std::string out = test::TempDir("preset") + "/model";
  const auto r = test::RunOko("make-model --preset tiny-qwen3 --out " + out + " --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "wrote " + out + " (qwen3 tiny-qwen3, 10.0 M parameters, bf16)\n");

  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(out)) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"config.json", "generation_config.json",
                                          "model.safetensors", "tokenizer.json",
                                          "tokenizer_config.json"}));

  const std::string shared = test::SharedPath("models/tiny-qwen3");
  EXPECT_EQ(TensorSignature(test::SafetensorsHeader(out + "/model.safetensors"), true),
            TensorSignature(test::SafetensorsHeader(shared + "/model.safetensors"), true));
  for (const char* name : {"config.json", "generation_config.json"}) {
    ojson expected = ReadJson(shared + "/" + name);
    expected.erase("transformers_version");
    EXPECT_EQ(nlohmann::json(ReadJson(out + "/" + name)), nlohmann::json(expected)) << name;
  }
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(test::ReadBytes(out + "/" + name) ==
                test::ReadBytes(test::SharedPath("models/qwen3-tokenizer/") + name))
        << name;

  const auto info = test::RunOko("info -m " + out);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("\narchitecture Qwen3ForCausalLM (qwen3)\n"));
  EXPECT_THAT(info.out, HasSubstr("\nparameters   9970496 (9.970 M)\n"));
  EXPECT_THAT(info.out, HasSubstr("\ndtypes       BF16 19.02 MiB\n"));
  EXPECT_THAT(info.out, HasSubstr("\nembeddings   tied (lm_head = embed_tokens)\n"));
  EXPECT_THAT(info.out, HasSubstr("\nchat template yes\n"));
}

// What the Rust `safetensors` crate (and so transformers) checks when it opens a file,
// and transformers' own check of the "format" metadata.
TEST(MakeModelCliTest, OutputFollowsTheRulesOfHuggingFaceReaders) {
  const std::string out = MakeModel("hf_rules", "--preset tiny-qwen3");
  const std::string path = out + "/model.safetensors";
  const std::string bytes = test::ReadBytes(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  const ojson header = test::SafetensorsHeader(path);
  EXPECT_EQ(header["__metadata__"], ojson({{"format", "pt"}}));
  // Tensors tile the data region in header order: no gap, no overlap, nothing after.
  uint64_t offset = 0;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") continue;
    EXPECT_EQ(e["data_offsets"][0].get<uint64_t>(), offset) << name;
    offset = e["data_offsets"][1].get<uint64_t>();
  }
  EXPECT_EQ(8 + header_len + offset, bytes.size());
}

TEST(MakeModelCliTest, WeightsAreInitialisedAsHuggingFaceDoes) {
  const std::string path = MakeModel("values", "--preset tiny-qwen3 --dtype f32") + "/model.safetensors";
  for (const char* norm : {"model.norm.weight", "model.layers.2.self_attn.q_norm.weight",
                           "model.layers.0.post_attention_layernorm.weight"})
    for (double v : Values(path, norm)) ASSERT_EQ(v, 1.0) << norm;
  // Matrices: uniform(-a, a) with a = 0.02 * sqrt(3), so std 0.02.
  for (const char* matrix : {"model.embed_tokens.weight", "model.layers.3.mlp.down_proj.weight"}) {
    const std::vector<double> v = Values(path, matrix);
    double sum = 0, sum2 = 0, max_abs = 0;
    for (double x : v) {
      sum += x;
      sum2 += x * x;
      max_abs = std::max(max_abs, std::abs(x));
    }
    const double mean = sum / v.size(), std = std::sqrt(sum2 / v.size() - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.001) << matrix;
    EXPECT_NEAR(std, 0.02, 0.0005) << matrix;
    EXPECT_LE(max_abs, 0.02 * std::sqrt(3.0)) << matrix;
    EXPECT_GT(max_abs, 0.0340) << matrix;
  }
}

TEST(MakeModelCliTest, SameSeedSameBytesOtherSeedOtherBytes) {
  const std::string a = MakeModel("seed_a", "--preset tiny-qwen3 --seed 7");
  const std::string b = MakeModel("seed_b", "--preset tiny-qwen3 --seed 7");
  const std::string c = MakeModel("seed_c", "--preset tiny-qwen3 --seed 8");
  const std::string model_a = test::ReadBytes(a + "/model.safetensors");
  const std::string model_b = test::ReadBytes(b + "/model.safetensors");
  const std::string model_c = test::ReadBytes(c + "/model.safetensors");
  EXPECT_TRUE(model_a == model_b) << "the same seed must give the same bytes";
  ASSERT_EQ(model_a.size(), model_c.size());
  EXPECT_FALSE(model_a == model_c) << "another seed must give other bytes";
  // Every matrix differs, not only the first one written.
  const auto va = Values(a + "/model.safetensors", "model.layers.3.mlp.down_proj.weight");
  const auto vc = Values(c + "/model.safetensors", "model.layers.3.mlp.down_proj.weight");
  EXPECT_NE(va, vc);
  EXPECT_EQ(test::ReadBytes(a + "/config.json"), test::ReadBytes(c + "/config.json"));
}

TEST(MakeModelCliTest, DtypesF32AndF16HoldTheSameWeightsRounded) {
  const std::string f32 = MakeModel("dtype_f32", "--preset tiny-qwen3 --seed 3 --dtype f32");
  const std::string f16 = MakeModel("dtype_f16", "--preset tiny-qwen3 --seed 3 --dtype f16");
  const std::string bf16 = MakeModel("dtype_bf16", "--preset tiny-qwen3 --seed 3 --dtype bf16");
  const struct {
    std::string dir, dtype, torch_dtype, info;
  } cases[] = {{f32, "F32", "float32", "F32 38.03 MiB"},  // 9970496 * 4 B = 38.034 MiB
               {f16, "F16", "float16", "F16 19.02 MiB"},
               {bf16, "BF16", "bfloat16", "BF16 19.02 MiB"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.dtype);
    const ojson header = test::SafetensorsHeader(c.dir + "/model.safetensors");
    for (const auto& [name, e] : header.items()) {
      if (name == "__metadata__") continue;
      EXPECT_EQ(e["dtype"], c.dtype) << name;
    }
    EXPECT_EQ(ReadJson(c.dir + "/config.json")["torch_dtype"], c.torch_dtype);
    const auto info = test::RunOko("info -m " + c.dir);
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_THAT(info.out, HasSubstr("\ndtypes       " + c.info + "\n"));
    EXPECT_THAT(info.out, HasSubstr("\nparameters   9970496 (9.970 M)\n"));
  }
  // The same seed draws the same f32 values; f16 and bf16 hold them rounded to nearest.
  for (const char* name : {"model.embed_tokens.weight", "model.layers.1.self_attn.k_proj.weight"}) {
    const auto x = Values(f32 + "/model.safetensors", name);
    const auto h = Values(f16 + "/model.safetensors", name);
    const auto b = Values(bf16 + "/model.safetensors", name);
    ASSERT_EQ(x.size(), h.size());
    ASSERT_EQ(x.size(), b.size());
    size_t exact_bf16 = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_LE(std::abs(h[i] - x[i]), std::max(std::abs(x[i]) * 0x1p-11, 0x1p-25)) << name << i;
      ASSERT_LE(std::abs(b[i] - x[i]), std::abs(x[i]) * 0x1p-8) << name << i;
      exact_bf16 += b[i] == x[i];
    }
    EXPECT_LT(exact_bf16, x.size() / 100) << "f32 values should carry more bits than bf16";
  }
}

TEST(MakeModelCliTest, ConfigOfASharedModelGivesItsTensors) {
  const std::string stories = test::SharedPath("models/stories260k");
  const std::string out = MakeModel(
      "config_stories", "--config " + stories + "/config.json --tokenizer " + stories + " --dtype f32");
  EXPECT_EQ(TensorSignature(test::SafetensorsHeader(out + "/model.safetensors"), true),
            TensorSignature(test::SafetensorsHeader(stories + "/model.safetensors"), true));
  EXPECT_EQ(nlohmann::json(ReadJson(out + "/config.json")),
            nlohmann::json(ReadJson(stories + "/config.json")));
  EXPECT_TRUE(test::ReadBytes(out + "/tokenizer.json") == test::ReadBytes(stories + "/tokenizer.json"));
  auto info = test::RunOko("info -m " + out);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("\nparameters   260032 (0.260 M)\n"));
  EXPECT_THAT(info.out, HasSubstr("\nchat template no\n"));

  const std::string llama = test::SharedPath("models/tiny-llama");
  const std::string out2 = MakeModel("config_llama", "--config " + llama + "/config.json");
  EXPECT_EQ(TensorSignature(test::SafetensorsHeader(out2 + "/model.safetensors"), false),
            TensorSignature(test::SafetensorsHeader(llama + "/model.safetensors"), false));
  EXPECT_EQ(ReadJson(out2 + "/config.json")["torch_dtype"], "bfloat16");
  info = test::RunOko("info -m " + out2);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("\narchitecture LlamaForCausalLM (llama)\n"));
  EXPECT_THAT(info.out, HasSubstr("\nparameters   9853376 (9.853 M)\n"));
}

TEST(MakeModelCliTest, UntiedConfigWritesLmHead) {
  const std::string dir = test::TempDir("untied");
  ojson config = ReadJson(test::SharedPath("models/tiny-llama/config.json"));
  config["tie_word_embeddings"] = false;
  test::WriteBytes(dir + "/config.json", config.dump());
  const std::string out = MakeModel("untied_out", "--config " + dir + "/config.json");
  const ojson header = test::SafetensorsHeader(out + "/model.safetensors");
  ASSERT_TRUE(header.contains("lm_head.weight"));
  EXPECT_EQ(header["lm_head.weight"]["shape"], ojson({151936, 64}));
  const auto info = test::RunOko("info -m " + out);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("\nparameters   19577280 (19.577 M)\n"));  // + 151936 * 64
  EXPECT_THAT(info.out, HasSubstr("\nembeddings   untied\n"));
}

TEST(MakeModelCliTest, BadConfigOrTokenizerIsBadInput) {
  const std::string dir = test::TempDir("bad_input");
  ojson config = ReadJson(test::SharedPath("models/tiny-llama/config.json"));
  config["model_type"] = "gpt2";
  test::WriteBytes(dir + "/gpt2.json", config.dump());
  auto r = test::RunOko("make-model --config " + dir + "/gpt2.json --out " + dir + "/a");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "oko make-model: error: " + dir +
                       "/gpt2.json: model_type 'gpt2' is not supported (supported: qwen3, qwen2, "
                       "llama, mistral)\n");
  EXPECT_FALSE(fs::exists(dir + "/a"));

  test::WriteBytes(dir + "/broken.json", "{\"model_type\": ");
  r = test::RunOko("make-model --config " + dir + "/broken.json --out " + dir + "/b");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::StartsWith("oko make-model: error: " + dir + "/broken.json: not valid JSON: "));

  r = test::RunOko("make-model --preset tiny-qwen3 --tokenizer " + dir + " --out " + dir + "/c");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "oko make-model: error: " + dir + ": missing tokenizer.json (pass --tokenizer DIR)\n");
  EXPECT_FALSE(fs::exists(dir + "/c"));

  test::WriteBytes(dir + "/file", "");
  r = test::RunOko("make-model --preset tiny-qwen3 --out " + dir + "/file/sub");
  EXPECT_EQ(r.exit_code, 3) << "a folder that cannot be created is a runtime error (DESIGN.md)";
  EXPECT_THAT(r.err, HasSubstr(dir + "/file/sub: cannot create the folder"));
}

// --quant writes the GGUF file that quantizing the folder would give, byte for byte (the
// same values, plan and quantizer; the same general.name from "m" and "m.gguf"), one
// tensor at a time; the file then runs.
TEST(MakeModelCliTest, QuantWritesTheFileQuantizingTheFolderGives) {
  const std::string dir = test::TempDir("quant");
  ASSERT_EQ(test::RunOko("make-model --preset tiny-qwen3 --seed 3 --out " + dir + "/folder/m").exit_code, 0);
  const auto q = test::RunOko("quantize -m " + dir + "/folder/m --type q4_k_m --out " + dir + "/from_folder.gguf");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const auto r = test::RunOko("make-model --preset tiny-qwen3 --seed 3 --quant q4_k_m --out " + dir + "/m.gguf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("q4_k_m from bf16 values"));
  EXPECT_THAT(r.err, HasSubstr("fell back: model.layers.0.self_attn.q_proj.weight: Q4_K -> Q5_0"));
  EXPECT_TRUE(test::ReadBytes(dir + "/m.gguf") == test::ReadBytes(dir + "/from_folder.gguf"));
  const auto run = test::RunOko("run -m " + dir + "/m.gguf -p Hello -n 4 --temp 0");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // An existing file is kept without --force; --lora-rank needs a folder.
  EXPECT_EQ(test::RunOko("make-model --preset tiny-qwen3 --quant q8_0 --out " + dir + "/m.gguf").exit_code, 2);
  EXPECT_EQ(test::RunOko("make-model --preset tiny-qwen3 --quant q8_0 --lora-rank 2 --out " + dir + "/l.gguf")
                .exit_code, 1);
  EXPECT_EQ(test::RunOko("make-model --preset tiny-qwen3 --quant q3_k --out " + dir + "/x.gguf").exit_code, 1);
  EXPECT_EQ(test::RunOko("make-model --preset tiny-qwen3 --quant q8_0 --out " + dir + "/x.bin").exit_code, 1);
}

TEST(MakeModelCliTest, UsageErrorsExitWithOne) {
  const std::string out = test::TempDir("usage") + "/model";
  const std::string config = test::SharedPath("models/tiny-qwen3/config.json");
  const std::vector<std::string> usage_errors = {
      "make-model --out " + out,
      "make-model --preset tiny-qwen3",
      "make-model --preset qwen3-70b --out " + out,
      "make-model --preset tiny-qwen3 --config " + config + " --out " + out,
      "make-model --preset tiny-qwen3 --dtype f8 --out " + out,
      "make-model --preset tiny-qwen3 --seed x --out " + out,
  };
  // A missing input file is bad input (docs/CLI.md "Exit status").
  EXPECT_EQ(test::RunOko("make-model --config /no/such/config.json --out " + out).exit_code, 2);
  for (const std::string& args : usage_errors) {
    const auto r = test::RunOko(args);
    EXPECT_EQ(r.exit_code, 1) << "oko " << args << "\n" << r.err;
    EXPECT_NE(r.err, "") << args;
  }
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace oko
