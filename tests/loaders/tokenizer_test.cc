// Tokenizer against Hugging Face goldens: ../shared/golden/tokenizer (Qwen3, byte-level
// BPE) and ../shared/golden/stories260k (Llama 2 style SentencePiece BPE).
#include "loaders/tokenizer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/mapped_file.h"
#include "loaders/utf8.h"
#include "tests/test_util.h"

namespace oko {
namespace {

using json = nlohmann::json;
using test::SharedPath;

// The whole file; an unreadable golden fails the test that needs it.
std::string ReadAll(const std::string& path) {
  auto text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << text.status().message();
  return text.ok() ? *text : std::string();
}

std::vector<json> ReadJsonl(const std::string& path) {
  std::vector<json> lines;
  std::istringstream in(ReadAll(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

std::vector<int32_t> Ids(const json& j) { return j.get<std::vector<int32_t>>(); }

// Loaded once per process (the Qwen3 file is 11 MB) and kept for every test.
const Tokenizer& LoadOnce(const std::string& model, std::unique_ptr<Tokenizer>* slot) {
  if (!*slot) {
    auto t = Tokenizer::Load(SharedPath("models/" + model));
    EXPECT_TRUE(t.ok()) << t.status().message();
    *slot = std::move(t).value();
  }
  return **slot;
}
// Function-local statics: initialised once even when threads race to the first call
// (ctest runs each test in its own process, so the concurrency test may be the first).
const Tokenizer& Qwen() {
  static const Tokenizer& tok = [] {
    static std::unique_ptr<Tokenizer> slot;
    return std::cref(LoadOnce("qwen3-tokenizer", &slot));
  }();
  return tok;
}
const Tokenizer& Stories() {
  static const Tokenizer& tok = [] {
    static std::unique_ptr<Tokenizer> slot;
    return std::cref(LoadOnce("stories260k", &slot));
  }();
  return tok;
}

// Every Push and the final Flush, concatenated; each chunk must be valid UTF-8.
std::string StreamAll(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  StreamingDetokenizer stream(tok, skip_special);
  std::string out;
  for (int32_t id : ids) {
    const std::string chunk = stream.Push(id);
    EXPECT_EQ(utf8::FirstInvalidByte(chunk), std::string_view::npos) << "chunk of id " << id;
    out += chunk;
  }
  return out + stream.Flush();
}

TEST(TokenizerQwen3, EncodesEveryGoldenCase) {
  const auto cases = ReadJsonl(SharedPath("golden/tokenizer/qwen3.jsonl"));
  ASSERT_EQ(cases.size(), 174u);
  int passed = 0;
  for (const json& c : cases) {
    const std::string text = c["text"];
    auto ids = Qwen().Encode(text, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids.ok()) << c["id"] << ": " << ids.status().message();
    EXPECT_EQ(*ids, Ids(c["ids"])) << c["id"] << " text: " << text;
    // Qwen3's post-processor (ByteLevel) adds nothing.
    auto with_special = Qwen().Encode(text, /*add_special_tokens=*/true);
    ASSERT_TRUE(with_special.ok());
    EXPECT_EQ(*with_special, *ids) << c["id"];
    passed += *ids == Ids(c["ids"]);
  }
  EXPECT_EQ(passed, 174);
}

TEST(TokenizerQwen3, RoundTripsEveryGoldenCase) {
  for (const json& c : ReadJsonl(SharedPath("golden/tokenizer/qwen3.jsonl"))) {
    // Decode gives the NFC form of the text, so compare with what NFC-stable input gives.
    const std::string decoded = Qwen().Decode(Ids(c["ids"]));
    auto again = Qwen().Encode(decoded, false);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, Ids(c["ids"])) << c["id"];
  }
}

TEST(TokenizerQwen3, RegexEdgeCasesFollowUnicodeProperties) {
  const auto cases = ReadJsonl(SharedPath("golden/tokenizer/qwen3_regex_edge.jsonl"));
  ASSERT_EQ(cases.size(), 11u);
  for (const json& c : cases) {
    auto ids = Qwen().Encode(c["text"].get<std::string>(), false);
    ASSERT_TRUE(ids.ok()) << ids.status().message();
    EXPECT_EQ(*ids, Ids(c["ids"])) << c["id"];
  }
}

TEST(TokenizerQwen3, DecodesEveryGoldenCase) {
  const auto cases = ReadJsonl(SharedPath("golden/tokenizer/qwen3_decode.jsonl"));
  ASSERT_EQ(cases.size(), 16u);
  for (const json& c : cases) {
    const bool skip = c["skip_special_tokens"];
    EXPECT_EQ(Qwen().Decode(Ids(c["ids"]), skip), c["text"].get<std::string>()) << c["id"];
    EXPECT_EQ(StreamAll(Qwen(), Ids(c["ids"]), skip), c["text"].get<std::string>()) << c["id"];
  }
}

TEST(TokenizerQwen3, EncodesTheCorpusExactly) {
  const std::string text = ReadAll(SharedPath("golden/tokenizer/corpus.txt"));
  const std::string raw = ReadAll(SharedPath("golden/tokenizer/corpus.ids.u32"));
  std::vector<int32_t> expected(raw.size() / 4);
  std::memcpy(expected.data(), raw.data(), raw.size());
  ASSERT_EQ(expected.size(), 438082u);
  auto ids = Qwen().Encode(text, false);
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  ASSERT_EQ(ids->size(), expected.size());
  const auto mismatch = std::mismatch(ids->begin(), ids->end(), expected.begin());
  EXPECT_TRUE(mismatch.first == ids->end())
      << "first difference at index " << (mismatch.first - ids->begin());
}

TEST(TokenizerQwen3, VocabularyAndSpecialTokens) {
  const Tokenizer& t = Qwen();
  EXPECT_EQ(t.vocab_size(), 151669);
  EXPECT_EQ(t.TokenId("<|im_end|>"), 151645);
  EXPECT_EQ(t.TokenId("<|im_start|>"), 151644);
  EXPECT_EQ(t.TokenId("<think>"), 151667);
  EXPECT_EQ(t.TokenId("Hello"), 9707);
  EXPECT_EQ(t.TokenId("no such token"), std::nullopt);
  EXPECT_EQ(t.TokenText(151667), "<think>");
  EXPECT_EQ(t.TokenText(1879), "Ġworld");
  EXPECT_EQ(t.TokenText(-1), "");
  EXPECT_EQ(t.TokenText(1 << 30), "");
  EXPECT_TRUE(t.IsSpecial(151645));
  EXPECT_FALSE(t.IsSpecial(151667));  // <think> is an added token with special: false
  EXPECT_FALSE(t.IsSpecial(9707));
  EXPECT_EQ(t.eos_id(), 151645);      // tokenizer_config.json eos_token <|im_end|>
  EXPECT_EQ(t.bos_id(), std::nullopt);  // bos_token null
  EXPECT_FALSE(t.add_bos_token());
}

TEST(TokenizerQwen3, ConcurrentEncodesAgree) {
  const auto cases = ReadJsonl(SharedPath("golden/tokenizer/qwen3.jsonl"));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int rep = 0; rep < 5; ++rep) {
        for (const json& c : cases) {
          auto ids = Qwen().Encode(c["text"].get<std::string>(), false);
          if (!ids.ok() || *ids != Ids(c["ids"])) ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(TokenizerQwen3, RejectsInvalidUtf8) {
  auto ids = Qwen().Encode("ok \xE6\x97 broken");
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.status().message().find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(ids.status().message().find("offset 3"), std::string::npos);
}

TEST(TokenizerQwen3, LongInputsDoNotBreakTheRegex) {
  const std::string spaces(200000, ' ');
  auto ids = Qwen().Encode(spaces + "x" + spaces, false);
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  EXPECT_EQ(Qwen().Decode(*ids), spaces + "x" + spaces);
}

TEST(TokenizerStreaming, EmitsOnlyCompleteCharacters) {
  // "Кошка 你好 👍🏽": tokens that end inside Cyrillic, CJK and emoji characters.
  const std::string text = "Кошка 你好 👍🏽 и я люблю красные яблоки 👨‍👩‍👧";
  auto ids = Qwen().Encode(text, false);
  ASSERT_TRUE(ids.ok());
  StreamingDetokenizer stream(Qwen());
  std::string out;
  int held = 0;
  for (int32_t id : *ids) {
    const std::string chunk = stream.Push(id);
    EXPECT_EQ(utf8::FirstInvalidByte(chunk), std::string_view::npos);
    EXPECT_EQ(chunk.find("\xEF\xBF\xBD"), std::string::npos) << "id " << id;
    held += chunk.empty();
    out += chunk;
  }
  EXPECT_GT(held, 0);  // some tokens were incomplete characters and were held back
  out += stream.Flush();
  EXPECT_EQ(out, text);
}

TEST(TokenizerStreaming, MatchesDecodeOnEveryGoldenCase) {
  for (const json& c : ReadJsonl(SharedPath("golden/tokenizer/qwen3.jsonl"))) {
    const auto ids = Ids(c["ids"]);
    EXPECT_EQ(StreamAll(Qwen(), ids, false), Qwen().Decode(ids)) << c["id"];
    EXPECT_EQ(StreamAll(Qwen(), ids, true), Qwen().Decode(ids, true)) << c["id"];
  }
  const json cases = json::parse(ReadAll(SharedPath("golden/stories260k/tokenizer_cases.json")));
  for (const json& c : cases["cases"]) {
    const auto ids = Ids(c["hf_ids"]);
    EXPECT_EQ(StreamAll(Stories(), ids, false), Stories().Decode(ids)) << c["name"];
    EXPECT_EQ(StreamAll(Stories(), ids, true), Stories().Decode(ids, true)) << c["name"];
  }
}

TEST(TokenizerStreaming, FlushEmitsATruncatedCharacterAsReplacement) {
  StreamingDetokenizer stream(Qwen());
  EXPECT_EQ(stream.Push(9707), "Hello");
  EXPECT_EQ(stream.Push(162), "");  // E6: first byte of a 3-byte character
  EXPECT_EQ(stream.Flush(), "\xEF\xBF\xBD");
}

// Found by fuzz_tokenizer_codec: HF's ByteFallback decoder turns a run of byte tokens
// that is not valid UTF-8 as a whole into one U+FFFD per byte, so <0x41> alone is "A"
// but <0x41> <0xC5> is two U+FFFD. Streaming emitted the "A" (and then half a U+FFFD).
TEST(TokenizerStreaming, HoldsAByteFallbackRunUntilATokenEndsIt) {
  const int32_t kUnk = 0, kBos = 1, kEos = 2, kByte00 = 3, kByte41 = 68, kByteC5 = 200,
                kA = 261, kOnce = 403, kUpon = 407;
  ASSERT_EQ(Stories().TokenText(kByte41), "<0x41>");
  ASSERT_EQ(Stories().TokenText(kByteC5), "<0xC5>");
  EXPECT_EQ(Stories().Decode(std::vector<int32_t>{kByte41}), "A");
  EXPECT_EQ(Stories().Decode(std::vector<int32_t>{kByte41, kByteC5}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  StreamingDetokenizer stream(Stories());
  EXPECT_EQ(stream.Push(kOnce), "Once");
  EXPECT_EQ(stream.Push(kByte41), "");  // the run may go on
  EXPECT_EQ(stream.Push(kA), "A a");
  const std::vector<std::vector<int32_t>> cases = {
      {kBos, kOnce, kUpon, kA, kByte00, kByteC5, kUnk, kEos},  // the fuzzer's input
      {kOnce, kByte41, kByteC5, kA},
      {kOnce, kByte41, kUnk, kByteC5, kA},  // <unk> is special: skipped, the run goes on
      {kByte41, kByte41, kByteC5},
  };
  for (const auto& ids : cases)
    for (bool skip : {false, true})
      EXPECT_EQ(StreamAll(Stories(), ids, skip), Stories().Decode(ids, skip)) << "skip " << skip;
}

TEST(TokenizerStories260k, EncodesThePrompts) {
  const json prompts = json::parse(ReadAll(SharedPath("golden/stories260k/prompts.json")));
  ASSERT_EQ(prompts["prompts"].size(), 4u);
  for (const json& p : prompts["prompts"]) {
    auto ids = Stories().Encode(p["text"].get<std::string>());
    ASSERT_TRUE(ids.ok()) << ids.status().message();
    EXPECT_EQ(*ids, Ids(p["ids"])) << p["name"];
  }
}

TEST(TokenizerStories260k, MatchesEveryHfCase) {
  const json cases = json::parse(ReadAll(SharedPath("golden/stories260k/tokenizer_cases.json")));
  ASSERT_EQ(cases["cases"].size(), 67u);
  for (const json& c : cases["cases"]) {
    const std::string text = c["text"];
    auto ids = Stories().Encode(text, true);
    ASSERT_TRUE(ids.ok()) << ids.status().message();
    EXPECT_EQ(*ids, Ids(c["hf_ids"])) << c["name"];
    auto plain = Stories().Encode(text, false);
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(*plain, Ids(c["hf_ids_no_special"])) << c["name"];
    EXPECT_EQ(Stories().Decode(Ids(c["hf_ids"]), /*skip_special=*/true),
              c["hf_decoded"].get<std::string>())
        << c["name"];
  }
}

TEST(TokenizerStories260k, ConfigAndSpecialTokens) {
  const Tokenizer& t = Stories();
  EXPECT_EQ(t.vocab_size(), 512);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_TRUE(t.add_bos_token());
  EXPECT_TRUE(t.IsSpecial(1));
  EXPECT_EQ(t.TokenId("<0x0A>"), 13);
  // Added tokens go through the decoder too (HF): "<s>" stays, the space after it too.
  EXPECT_EQ(t.Decode(std::vector<int32_t>{1, 403, 407}), "<s> Once upon");
}

// Trace labels: each token's own text, leading space included, in both tokenizer kinds.
TEST(TokenizerPieces, KeepLeadingSpacesAndJoinToTheText) {
  const std::vector<int32_t> once{1, 403, 407, 261};  // <s> Once upon a
  EXPECT_EQ(Stories().DecodePieces(once), (std::vector<std::string>{"<s>", " Once", " upon", " a"}));
  EXPECT_EQ(Stories().DecodePiece(407), " upon");  // alone, Decode strips it: "upon"
  EXPECT_EQ(Stories().Decode(std::vector<int32_t>{407}), "upon");
  const std::string text = "Hello world, привет 世界!\n\tx";
  auto ids = Qwen().Encode(text, false);
  ASSERT_TRUE(ids.ok());
  const std::vector<std::string> pieces = Qwen().DecodePieces(*ids);
  ASSERT_EQ(pieces.size(), ids->size());
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  EXPECT_EQ(joined, text);
  EXPECT_EQ(pieces[1], " world");
  EXPECT_EQ(Qwen().DecodePiece((*ids)[1]), " world");
}

// The bytes each token stands for: where a token ends inside a character, its part of
// the UTF-8 (DecodePiece shows U+FFFD there), so the pieces' bytes join to the text; in
// both tokenizer kinds (byte-level, and SentencePiece's <0xXX> byte fallback).
TEST(TokenizerPieces, BytesAreTheTokensOwn) {
  const std::string text = "Hi 𝔘𝔫 龘 🦩";
  auto ids = Qwen().Encode(text, false);
  ASSERT_TRUE(ids.ok());
  std::string joined;
  bool split = false;  // some token ends inside a character
  for (int32_t id : *ids) {
    joined += Qwen().PieceBytes(id);
    split = split || Qwen().DecodePiece(id).find("\xEF\xBF\xBD") != std::string::npos;
  }
  EXPECT_EQ(joined, text);
  EXPECT_TRUE(split) << "the text no longer splits a character; pick another";
  const auto e4 = Qwen().TokenId("\xC3\xA4");  // the byte-level character of byte 0xE4
  ASSERT_TRUE(e4.has_value());
  EXPECT_EQ(Qwen().PieceBytes(*e4), "\xE4");
  EXPECT_EQ(Qwen().DecodePiece(*e4), "\xEF\xBF\xBD");
  const auto f0 = Stories().TokenId("<0xF0>");
  ASSERT_TRUE(f0.has_value());
  EXPECT_EQ(Stories().PieceBytes(*f0), "\xF0");
  EXPECT_EQ(Stories().DecodePiece(*f0), "\xEF\xBF\xBD");
  EXPECT_EQ(Stories().PieceBytes(407), " upon");  // whole characters: the text's bytes
}

TEST(TokenizerLoad, FollowsASymlinkCheckedOutAsAFile) {
  // tiny-llama/tokenizer.json is the 28-byte text "../tiny-qwen3/tokenizer.json".
  auto t = Tokenizer::Load(SharedPath("models/tiny-llama"));
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->vocab_size(), Qwen().vocab_size());
  EXPECT_EQ(*(*t)->Encode("Hello world", false), (std::vector<int32_t>{9707, 1879}));
}

// Writes tokenizer.json (and nothing else) into a fresh folder.
std::string DirWith(const std::string& name, const std::string& tokenizer_json) {
  const std::string dir = test::TempDir(name);
  std::ofstream(dir + "/tokenizer.json") << tokenizer_json;
  return dir;
}

// The small stories260k file (every kind of section), to break one section at a time.
json SmallTokenizer() { return json::parse(ReadAll(SharedPath("models/stories260k/tokenizer.json"))); }

std::string LoadError(const std::string& name, const std::string& text) {
  auto t = Tokenizer::Load(DirWith(name, text));
  EXPECT_FALSE(t.ok());
  return t.ok() ? "" : t.status().message();
}

TEST(TokenizerLoad, ErrorsNameTheFileAndTheSection) {
  EXPECT_NE(Tokenizer::Load(test::TempDir("empty")).status().message().find("no tokenizer.json"),
            std::string::npos);

  std::string e = LoadError("garbage", "{ not json");
  EXPECT_NE(e.find("tokenizer.json"), std::string::npos) << e;

  json j = SmallTokenizer();
  j.erase("model");
  e = LoadError("no_model", j.dump());
  EXPECT_NE(e.find("missing section 'model'"), std::string::npos) << e;

  j = SmallTokenizer();
  j["model"].erase("merges");
  e = LoadError("no_merges", j.dump());
  EXPECT_NE(e.find("model: missing 'merges'"), std::string::npos) << e;

  j = SmallTokenizer();
  j["model"]["merges"][3] = "zzz qqq";
  e = LoadError("bad_merge", j.dump());
  EXPECT_NE(e.find("merges[3]"), std::string::npos) << e;

  j = SmallTokenizer();
  j["model"]["merges"][3] = 7;
  e = LoadError("bad_merge_type", j.dump());
  EXPECT_NE(e.find("merges[3]"), std::string::npos) << e;

  j = SmallTokenizer();
  j["model"]["type"] = "Unigram";
  e = LoadError("unigram", j.dump());
  EXPECT_NE(e.find("'Unigram' is not supported"), std::string::npos) << e;

  j = SmallTokenizer();
  j["model"].erase("type");  // early files: BPE recognised by its fields
  EXPECT_TRUE(Tokenizer::Load(DirWith("untyped", j.dump())).ok());

  j = SmallTokenizer();
  j["normalizer"]["normalizers"][1] = {{"type", "Lowercase"}};
  e = LoadError("lowercase", j.dump());
  EXPECT_NE(e.find("normalizer.normalizers[1]: normalizer type 'Lowercase' is not supported"),
            std::string::npos)
      << e;

  j = SmallTokenizer();
  j["pre_tokenizer"] = {{"type", "Digits"}, {"individual_digits", true}};
  e = LoadError("digits", j.dump());
  EXPECT_NE(e.find("pre_tokenizer: pre-tokenizer type 'Digits' is not supported"), std::string::npos) << e;

  j = SmallTokenizer();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  e = LoadError("bad_regex", j.dump());
  EXPECT_NE(e.find("pre_tokenizer.pattern"), std::string::npos) << e;

  j = SmallTokenizer();
  j["decoder"]["decoders"][3].erase("start");
  e = LoadError("strip", j.dump());
  EXPECT_NE(e.find("decoder.decoders[3]: missing field 'start'"), std::string::npos) << e;

  j = SmallTokenizer();
  j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<bos>";
  e = LoadError("template", j.dump());
  EXPECT_NE(e.find("post_processor.single[0]"), std::string::npos) << e;

  j = SmallTokenizer();
  j["added_tokens"][0].erase("id");
  e = LoadError("added", j.dump());
  EXPECT_NE(e.find("added_tokens[0]"), std::string::npos) << e;

  j = SmallTokenizer();
  j["model"]["vocab"]["<s>"] = "one";
  e = LoadError("vocab_id", j.dump());
  EXPECT_NE(e.find("model.vocab"), std::string::npos) << e;
}

TEST(TokenizerLoad, MergesInPairForm) {
  json j = SmallTokenizer();
  json pairs = json::array();
  for (const json& m : j["model"]["merges"]) {
    const std::string s = m.is_string() ? m.get<std::string>()
                                        : m[0].get<std::string>() + " " + m[1].get<std::string>();
    const size_t space = s.find(' ');
    pairs.push_back({s.substr(0, space), s.substr(space + 1)});
  }
  json strings = json::array();
  for (const json& p : pairs) strings.push_back(p[0].get<std::string>() + " " + p[1].get<std::string>());
  j["model"]["merges"] = strings;
  auto a = Tokenizer::Load(DirWith("merges_strings", j.dump()));
  j["model"]["merges"] = pairs;
  auto b = Tokenizer::Load(DirWith("merges_pairs", j.dump()));
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  const std::string text = "Once upon a time there was a cat.";
  EXPECT_EQ(*(*a)->Encode(text), *Stories().Encode(text));
  EXPECT_EQ(*(*b)->Encode(text), *Stories().Encode(text));
}

}  // namespace
}  // namespace oko
