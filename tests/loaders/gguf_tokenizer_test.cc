// The tokenizer and chat template of a GGUF file (loaders/gguf_tokenizer.h) against the
// goldens of the same tokenizers: the Qwen3 file's byte-level BPE gives tokenizer.json's
// ids on every case of shared/golden/tokenizer (llama.cpp itself misses the 10 non-NFC
// ones), the small-llama files' SentencePiece (scores, no merges) gives the ids of
// stories260k's tokenizer.json on every case, and the templates render as the folders'.
#include "loaders/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <fstream>
#include <sstream>

#include "common/mapped_file.h"
#include "loaders/chat_template.h"
#include "loaders/tokenizer.h"
#include "tests/test_util.h"

namespace oko {
namespace {

using json = nlohmann::json;
using test::SharedPath;

const std::string kQwenGguf = "models/gguf/tiny-qwen3-q8_0.gguf";
const std::string kLlamaGguf = "models/gguf/small-llama-256-q4_0.gguf";

std::unique_ptr<Tokenizer> Load(const std::string& relative) {
  auto t = Tokenizer::Load(SharedPath(relative));
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? std::move(t).value() : nullptr;
}

std::vector<int32_t> Ids(const json& j) { return j.get<std::vector<int32_t>>(); }

TEST(GgufTokenizer, QwenFileEncodesEveryGoldenCaseAsTokenizerJson) {
  auto tok = Load(kQwenGguf);
  ASSERT_TRUE(tok);
  auto text = ReadFileToString(SharedPath("golden/tokenizer/qwen3.jsonl"));
  ASSERT_TRUE(text.ok());
  std::istringstream in(*text);
  int cases = 0, equal = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const json c = json::parse(line);
    ++cases;
    auto ids = tok->Encode(c["text"].get<std::string>(), /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status().message();
    EXPECT_EQ(*ids, Ids(c["ids"])) << c["id"];
    equal += *ids == Ids(c["ids"]);
    EXPECT_EQ(tok->Decode(*ids), tok->Decode(Ids(c["ids"]))) << c["id"];
  }
  EXPECT_EQ(cases, 174);
  EXPECT_EQ(equal, 174);
}

TEST(GgufTokenizer, QwenFileHasItsSpecialTokens) {
  auto tok = Load(kQwenGguf);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->vocab_size(), 151936);
  EXPECT_EQ(tok->bos_id(), 151643);
  EXPECT_EQ(tok->eos_id(), 151645);
  EXPECT_FALSE(tok->add_bos_token());
  EXPECT_TRUE(tok->IsSpecial(151644));  // <|im_start|>
  auto ids = tok->Encode("<|im_start|>user\nhi<|im_end|>", true);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->front(), 151644);
  EXPECT_EQ(ids->back(), 151645);
}

TEST(GgufTokenizer, LlamaFileEncodesAsTheFoldersTokenizerJson) {
  auto gguf = Load(kLlamaGguf), folder = Load("models/stories260k");
  ASSERT_TRUE(gguf && folder);
  EXPECT_EQ(gguf->vocab_size(), 512);
  EXPECT_EQ(gguf->bos_id(), 1);
  EXPECT_EQ(gguf->eos_id(), 2);
  EXPECT_TRUE(gguf->add_bos_token());
  auto text = ReadFileToString(SharedPath("golden/stories260k/tokenizer_cases.json"));
  ASSERT_TRUE(text.ok());
  const json cases = json::parse(*text)["cases"];
  ASSERT_EQ(cases.size(), 67u);
  for (const json& c : cases) {
    const std::string s = c["text"];
    auto ids = gguf->Encode(s, true), plain = gguf->Encode(s, false);
    ASSERT_TRUE(ids.ok() && plain.ok()) << c["name"];
    EXPECT_EQ(*ids, Ids(c["hf_ids"])) << c["name"];
    EXPECT_EQ(*plain, Ids(c["hf_ids_no_special"])) << c["name"];
    EXPECT_EQ(gguf->Decode(*ids, true), folder->Decode(*ids, true)) << c["name"];
  }
}

TEST(GgufTokenizer, QwenFileTemplateRendersAsTheFolders) {
  auto gguf = ChatTemplate::LoadFromDir(SharedPath(kQwenGguf));
  auto folder = ChatTemplate::LoadFromDir(SharedPath("models/tiny-qwen3"));
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  ASSERT_TRUE(folder.ok()) << folder.status().message();
  const nlohmann::ordered_json vars = {
      {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}}},
      {"add_generation_prompt", true},
      {"enable_thinking", false}};
  auto a = gguf->Render(vars), b = folder->Render(vars);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(a->find("<|im_start|>assistant"), std::string::npos);
}

TEST(GgufTokenizer, FileWithoutATemplateSaysSo) {
  auto t = ChatTemplate::LoadFromDir(SharedPath(kLlamaGguf));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no 'tokenizer.chat_template'"), std::string::npos) << t.status().message();
}

// The other way (GgufTokenizerMetadata): a byte-level BPE's split regex names its
// tokenizer.ggml.pre, ids the tokenizer lacks are padded, added tokens get llama.cpp's
// types; a regex llama.cpp has no name for is refused, naming the file.
std::string TinyByteLevelFolder(const std::string& name, const std::string& regex) {
  const std::string dir = test::TempDir(name);
  const nlohmann::json tok = {
      {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}},
      {"added_tokens",
       {{{"id", 3}, {"content", "<|eot_id|>"}, {"special", true}}, {{"id", 4}, {"content", "<x>"}, {"special", false}}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}}, {{"type", "ByteLevel"}}}}}}};
  std::ofstream(dir + "/tokenizer.json") << tok.dump();
  std::ofstream(dir + "/tokenizer_config.json") << R"({"bos_token": "ab", "add_bos_token": true})";
  return dir;
}

const GgufValue& Value(const GgufMetadata& md, const std::string& key) {
  for (const auto& [k, v] : md)
    if (k == key) return v;
  ADD_FAILURE() << key << " is missing";
  static const GgufValue none;
  return none;
}

TEST(GgufTokenizerMetadata, ByteLevelBpeAsLlamaCppWritesIt) {
  const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  ModelConfig c;
  c.vocab_size = 6;
  c.eos_token_ids = {3};
  auto md = GgufTokenizerMetadata(TinyByteLevelFolder("gguf_tok_md", llama3), c, false);
  ASSERT_TRUE(md.ok()) << md.status().message();
  EXPECT_EQ(Value(*md, "tokenizer.ggml.model").str(), "gpt2");
  EXPECT_EQ(Value(*md, "tokenizer.ggml.pre").str(), "llama-bpe");
  const auto& tokens = Value(*md, "tokenizer.ggml.tokens").array();
  ASSERT_EQ(tokens.size(), 6u);
  EXPECT_EQ(tokens[5].str(), "[PAD5]");
  std::vector<int64_t> types;
  for (const GgufValue& t : Value(*md, "tokenizer.ggml.token_type").array()) types.push_back(std::get<int64_t>(t.value));
  EXPECT_EQ(types, (std::vector<int64_t>{1, 1, 1, 3, 4, 5}));  // NORMAL, CONTROL, USER_DEFINED, UNUSED
  EXPECT_EQ(Value(*md, "tokenizer.ggml.merges").array()[0].str(), "a b");
  EXPECT_EQ(std::get<uint64_t>(Value(*md, "tokenizer.ggml.bos_token_id").value), 2u);  // tokenizer_config
  EXPECT_EQ(std::get<uint64_t>(Value(*md, "tokenizer.ggml.eos_token_id").value), 3u);  // config.json
  EXPECT_TRUE(std::get<bool>(Value(*md, "tokenizer.ggml.add_bos_token").value));
}

TEST(GgufTokenizerMetadata, AnUnnamedSplitRegexIsRefused) {
  ModelConfig c;
  c.vocab_size = 5;
  const std::string dir = TinyByteLevelFolder("gguf_tok_md_bad", R"(\p{L}+|\s+)");
  auto md = GgufTokenizerMetadata(dir, c, false);
  ASSERT_FALSE(md.ok());
  EXPECT_NE(md.status().message().find(dir + "/tokenizer.json: the pre-tokenizer's split regex is not one llama.cpp "
                                             "names"),
            std::string::npos)
      << md.status().message();
}

}  // namespace
}  // namespace oko
