// oko tokenize / oko detokenize, driven through the binary (the CLI contract).
#include <gtest/gtest.h>

#include <fstream>

#include "tests/test_util.h"

namespace oko {
namespace {

using test::RunOko;
using test::SharedPath;

std::string Model(const std::string& name) { return "-m '" + SharedPath("models/" + name) + "'"; }

TEST(TokenizeCli, PrintsIdsOfText) {
  auto r = RunOko("tokenize " + Model("qwen3-tokenizer") + " --text 'Hello world<|im_end|>'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[9707, 1879, 151645]\n");
}

TEST(TokenizeCli, ReadsStdinAndAddsBos) {
  auto r = RunOko("tokenize " + Model("stories260k"), "Lily and Tom went to the park");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1, 317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433]\n");
  r = RunOko("tokenize " + Model("stories260k"), "");
  EXPECT_EQ(r.out, "[1]\n");
}

TEST(TokenizeCli, FollowsTokenizerJsonLink) {
  auto r = RunOko("tokenize " + Model("tiny-llama") + " --text 'Hello world'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[9707, 1879]\n");
}

TEST(TokenizeCli, RejectsInvalidUtf8) {
  auto r = RunOko("tokenize " + Model("qwen3-tokenizer"), "ok\xFF");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("stdin: the text is not valid UTF-8"), std::string::npos) << r.err;
}

TEST(DetokenizeCli, PrintsTextAsHfDecodes) {
  auto r = RunOko("detokenize " + Model("qwen3-tokenizer") + " --ids 26338,1456,131372,220,108386");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Кошка 你好");
  // A cut character becomes U+FFFD; the special token stays.
  r = RunOko("detokenize " + Model("qwen3-tokenizer") + " --ids 162,245,151645");
  EXPECT_EQ(r.out, "\xEF\xBF\xBD<|im_end|>");
  r = RunOko("detokenize " + Model("qwen3-tokenizer") + " --ids 151644,872,198,9707,151645 --skip-special");
  EXPECT_EQ(r.out, "user\nHello");
  r = RunOko("detokenize " + Model("stories260k") + " --ids 1,403,407,261,378 --skip-special");
  EXPECT_EQ(r.out, "Once upon a time");
}

TEST(DetokenizeCli, BadIdsAreBadInput) {
  auto r = RunOko("detokenize " + Model("qwen3-tokenizer") + " --ids 1,two");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("'two' is not a token id"), std::string::npos) << r.err;
  r = RunOko("detokenize " + Model("stories260k") + " --ids 512");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("outside the vocabulary [0, 512)"), std::string::npos) << r.err;
}

TEST(TokenizeCli, BadTokenizerFileNamesTheFileAndSection) {
  const std::string dir = test::TempDir("bad_tokenizer");
  std::ofstream(dir + "/tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {"a": 0}}})";
  auto r = RunOko("tokenize -m '" + dir + "' --text a");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(dir + "/tokenizer.json: model: missing 'merges'"), std::string::npos) << r.err;

  const std::string empty = test::TempDir("no_tokenizer");
  r = RunOko("tokenize -m '" + empty + "' --text a");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no tokenizer.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace oko
