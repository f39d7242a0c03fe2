// oko quantize on the command line: its flags and exit codes (docs/CLI.md), and llama.cpp
// (node-llama-cpp, scripts/llamacpp/install.sh) on the files it writes: the same token ids
// and, bit for bit, the same next-token probabilities as on llama.cpp's own file of the
// same weights (shared/models/gguf), for every type those files hold.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string SmallLlama() { return test::SharedPath("models/small-llama-256"); }

TEST(QuantizeCli, WritesAFileThatOkoRuns) {
  const std::string out = test::TempDir("quantize_cli_ok") + "/m.gguf";
  auto r = test::RunOko("quantize -m " + SmallLlama() + " --type Q4_K_M --out " + out + " -t 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "wrote " + out + " (39 tensors: F32 9, Q4_K 25, Q6_K 5; 2.09 MB)\n");
  EXPECT_THAT(r.err, HasSubstr("quantized 39 tensors to Q4_K_M"));
  auto info = test::RunOko("info -m " + out);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("tokenizer    tokenizer.ggml llama (default)\n"));
}

TEST(QuantizeCli, FallbacksAreSaid) {
  const std::string out = test::TempDir("quantize_cli_fallback") + "/q.gguf";
  auto r = test::RunOko("quantize -m " + test::SharedPath("models/tiny-qwen3") + " --type q4_k --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("fell back: model.layers.0.mlp.down_proj.weight: Q4_K -> Q5_0 (rows of 192 values, "
                               "not a multiple of 256)\n"));
}

TEST(QuantizeCli, RequantizingIsSaid) {
  const std::string out = test::TempDir("quantize_cli_requant") + "/q.gguf";
  const std::string src = test::SharedPath("models/gguf/small-llama-256-q8_0.gguf");
  auto r = test::RunOko("quantize -m " + src + " --type q4_0 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("held block-quantized weights; they were dequantized and quantized again"));
}

// A folder of weights and config alone: written, with a warning that llama.cpp needs a
// tokenizer in the file.
TEST(QuantizeCli, AFolderWithoutTokenizerIsWarnedAbout) {
  const std::string dir = test::TempDir("quantize_cli_no_tokenizer");
  for (const char* f : {"config.json", "model.safetensors"})
    fs::create_symlink(fs::path(SmallLlama()) / f, fs::path(dir) / f);
  const std::string out = dir + "/m.gguf";
  auto r = test::RunOko("quantize -m " + dir + " --type q8_0 --out " + out + " -t 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: " + dir + " has no tokenizer (tokenizer.json)"));
  auto with = test::RunOko("quantize -m " + SmallLlama() + " --type q8_0 --out " + dir + "/with.gguf -t 1");
  ASSERT_EQ(with.exit_code, 0) << with.err;
  EXPECT_THAT(with.err, ::testing::Not(HasSubstr("warning")));
}

TEST(QuantizeCli, BadFlagsAreUsageErrors) {
  const std::string dir = test::TempDir("quantize_cli_usage");
  auto type = test::RunOko("quantize -m " + SmallLlama() + " --type q3_k --out " + dir + "/x.gguf");
  EXPECT_EQ(type.exit_code, 1);
  EXPECT_THAT(type.err, HasSubstr("--type q3_k: unknown type (expected one of q8_0,"));
  auto ext = test::RunOko("quantize -m " + SmallLlama() + " --type q8_0 --out " + dir + "/x.bin");
  EXPECT_EQ(ext.exit_code, 1);
  EXPECT_THAT(ext.err, HasSubstr("must end in .gguf"));
  auto missing = test::RunOko("quantize -m " + SmallLlama() + " --out " + dir + "/x.gguf");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("--type is required"));
  EXPECT_FALSE(fs::exists(dir + "/x.gguf"));
}

TEST(QuantizeCli, AnExistingFileNeedsForce) {
  const std::string out = test::TempDir("quantize_cli_force") + "/m.gguf";
  std::ofstream(out) << "mine";
  auto r = test::RunOko("quantize -m " + SmallLlama() + " --type q8_0 --out " + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--out " + out + ": the file exists (--force to overwrite it)"));
  std::ifstream in(out);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "mine");
  auto forced = test::RunOko("quantize -m " + SmallLlama() + " --type q8_0 --out " + out + " --force");
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  std::ifstream written(out, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(written), {}).substr(0, 4), "GGUF");
}

TEST(QuantizeCli, BadInputAndWriteFailures) {
  auto model = test::RunOko("quantize -m /nonexistent/model --type q8_0 --out /tmp/x.gguf");
  EXPECT_EQ(model.exit_code, 2);
  EXPECT_THAT(model.err, HasSubstr("/nonexistent/model"));
  auto unwritable = test::RunOko("quantize -m " + SmallLlama() + " --type q8_0 --out /nonexistent/dir/x.gguf");
  EXPECT_EQ(unwritable.exit_code, 3);
  EXPECT_THAT(unwritable.err, HasSubstr("/nonexistent/dir/x.gguf"));
  const std::string dir = test::TempDir("quantize_cli_folder");
  auto folder = test::RunOko("quantize -m " + SmallLlama() + " --type q8_0 --out " + dir + "/sub.gguf");
  EXPECT_EQ(folder.exit_code, 0) << folder.err;
  fs::create_directories(dir + "/d.gguf");
  auto is_dir = test::RunOko("quantize -m " + SmallLlama() + " --type q8_0 --out " + dir + "/d.gguf --force");
  EXPECT_EQ(is_dir.exit_code, 2);
  EXPECT_THAT(is_dir.err, HasSubstr("is a folder"));
}

// node-llama-cpp's folder: $OKO_LLAMACPP_DIR, else /tmp/oko-llamacpp (install.sh's default).
std::string LlamaCppDir() {
  const char* env = std::getenv("OKO_LLAMACPP_DIR");
  return env != nullptr && *env != '\0' ? env : "/tmp/oko-llamacpp";
}

TEST(QuantizeCli, LlamaCppRunsOurFilesAsItsOwn) {
  if (!fs::exists(LlamaCppDir() + "/node_modules/node-llama-cpp")) {
    // The CI installs it (.ci/run) and sets OKO_REQUIRE_LLAMACPP: there this fails.
    if (std::getenv("OKO_REQUIRE_LLAMACPP") != nullptr) FAIL() << "node-llama-cpp is not in " << LlamaCppDir();
    GTEST_SKIP() << "node-llama-cpp is not installed in " << LlamaCppDir() << " (scripts/llamacpp/install.sh)";
  }
  const std::string dir = test::TempDir("quantize_cli_llamacpp");
  std::string pairs;
  auto add = [&](const std::string& model, const std::string& type) {
    const std::string out = dir + "/" + model + "-" + type + ".gguf";
    auto r = test::RunOko("quantize -m " + test::SharedPath("models/" + model) + " --type " + type + " --out " + out);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    pairs += " '" + out + "' '" + test::SharedPath("models/gguf/" + model + "-" + type + ".gguf") + "'";
  };
  for (const char* type : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k_m", "q5_k_m", "q6_k"})
    add("small-llama-256", type);
  add("tiny-qwen3", "q8_0");  // gpt2 tokenizer, chat template, control tokens
  const std::string script = std::string(OKO_SOURCE_DIR) + "/scripts/llamacpp/gguf_same.mjs";
  const std::string text = "Once upon a time, Lily and Tom went to the park.<|im_start|>user\nПривет!<|im_end|>";
  auto llama = test::RunCommand("OKO_LLAMACPP_DIR='" + LlamaCppDir() + "' node '" + script + "' 0 '" + text + "'" + pairs);
  EXPECT_EQ(llama.exit_code, 0) << llama.out << llama.err;
  EXPECT_EQ(std::count(llama.out.begin(), llama.out.end(), '\n'), 9) << llama.out;
}

}  // namespace
}  // namespace oko
