// GGUF files on the command line: `-m FILE.gguf` runs as `-m DIR` does (info, tokenize,
// template, logits, run), and a broken file is exit 2 with a message naming the file and
// the key or tensor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "common/mapped_file.h"
#include "common/npy.h"
#include "tests/test_util.h"

namespace oko {
namespace {

using ::testing::HasSubstr;

std::string Gguf(const std::string& stem) { return test::SharedPath("models/gguf/" + stem + ".gguf"); }

// A copy of a shared GGUF file with `bytes` written at `offset`.
std::string PatchedCopy(const std::string& stem, size_t offset, const std::string& bytes, const std::string& name) {
  auto text = ReadFileToString(Gguf(stem));
  EXPECT_TRUE(text.ok());
  std::string image = text.ok() ? *text : "";
  image.replace(offset, bytes.size(), bytes);
  const std::string path = test::TempDir(name) + "/" + stem + ".gguf";
  std::ofstream(path, std::ios::binary) << image;
  return path;
}

TEST(GgufCli, InfoNamesTheTypesAndTheTokenizer) {
  auto r = test::RunOko("info -m " + Gguf("small-llama-256-q4_k_m"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("architecture llama (llama)\n"));
  EXPECT_THAT(r.out, HasSubstr("tensors      39 in 1 file(s)"));
  EXPECT_THAT(r.out, HasSubstr("dtypes       F32 9.00 KiB (9), Q4_K 1.51 MiB (25), Q6_K 472.50 KiB (5)\n"));
  EXPECT_THAT(r.out, HasSubstr("gguf         version 3, 28 metadata keys\n"));
  EXPECT_THAT(r.out, HasSubstr("tokenizer    tokenizer.ggml llama (default)\n"));
  EXPECT_THAT(r.out, HasSubstr("chat template no\n"));
}

TEST(GgufCli, TokenizeTemplateAndLogitsRunOnTheFile) {
  auto tok = test::RunOko("tokenize -m " + Gguf("tiny-qwen3-q8_0") + " --text 'Hello world'");
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  EXPECT_EQ(tok.out, "[9707, 1879]\n");
  const std::string messages = test::TempDir("gguf_cli_template") + "/m.json";
  std::ofstream(messages) << R"([{"role": "user", "content": "Hi"}])";
  auto tmpl = test::RunOko("template -m " + Gguf("tiny-qwen3-q8_0") + " --messages " + messages +
                           " --add-generation-prompt");
  ASSERT_EQ(tmpl.exit_code, 0) << tmpl.err;
  EXPECT_THAT(tmpl.out, HasSubstr("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
  const std::string out = test::TempDir("gguf_cli_logits") + "/l.npy";
  auto logits = test::RunOko("logits -m " + Gguf("small-llama-256-q8_0") + " --ids 1,403,407 --out " + out + " -t 1");
  ASSERT_EQ(logits.exit_code, 0) << logits.err;
  auto npy = ReadNpy(out);
  ASSERT_TRUE(npy.ok()) << npy.status().message();
  EXPECT_EQ(npy->shape, (std::vector<int64_t>{1, 512}));
  auto run = test::RunOko("run -m " + Gguf("small-llama-256-q4_0") + " -p 'Once upon a time' -n 4 -t 1 --temp 0");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("Once upon a time"));
}

TEST(GgufCli, BrokenFilesAreBadInputNamingTheProblem) {
  // The version field (bytes 4-7), then the first key's length (bytes 24-31).
  auto r = test::RunOko("info -m " + PatchedCopy("small-llama-256-q4_0", 4, std::string("\x07\0\0\0", 4), "gguf_v7"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("small-llama-256-q4_0.gguf: GGUF version 7 is not supported"));
  r = test::RunOko("run -m " + PatchedCopy("small-llama-256-q4_0", 24, std::string("\xff\xff\xff\xff\0\0\0\0", 8),
                                            "gguf_key") + " -p hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("small-llama-256-q4_0.gguf: metadata key #0 is 4294967295 bytes long"));
  // Cut inside the data region: the last tensors lie outside the file.
  auto text = ReadFileToString(Gguf("small-llama-256-q4_0"));
  ASSERT_TRUE(text.ok());
  const std::string cut = test::TempDir("gguf_cut") + "/cut.gguf";
  std::ofstream(cut, std::ios::binary) << text->substr(0, text->size() - 1000);
  r = test::RunOko("logits -m " + cut + " --ids 1 --out -");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cut.gguf: tensor '"));
  EXPECT_THAT(r.err, HasSubstr("lie outside the file"));
  r = test::RunOko("run -m " + Gguf("small-llama-256-q4_0") + " -p hi --quant q8_0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is a GGUF file, whose weights run in the types it holds (--quant"));
}

}  // namespace
}  // namespace oko
