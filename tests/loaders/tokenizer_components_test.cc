// Tokenizer components on small hand-written tokenizer.json files: each behaviour the
// goldens do not reach (split behaviours, Metaspace, added-token flags, unknown
// characters, ignore_merges, ByteLevel with its own regex), with expectations worked out
// from HF tokenizers' source (tokenizers/src/{pre_tokenizers,normalizers,decoders}).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "loaders/tokenizer.h"
#include "loaders/tokenizer_components.h"
#include "loaders/utf8.h"

namespace oko {
namespace {

using json = nlohmann::json;
using Strings = std::vector<std::string>;

// A character-level BPE model: vocab ids in order, merges as pairs.
json CharTokenizer(const Strings& vocab, const std::vector<std::pair<std::string, std::string>>& merges) {
  json v = json::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = i;
  json m = json::array();
  for (const auto& [a, b] : merges) m.push_back({a, b});
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "BPE"}, {"vocab", v}, {"merges", m}, {"unk_token", nullptr}}}};
}

std::unique_ptr<Tokenizer> Make(const json& j) {
  auto t = Tokenizer::FromJson(j.dump(), "", "test/tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? std::move(t).value() : nullptr;
}

Strings Tokens(const Tokenizer& t, std::string_view text) {
  auto ids = t.Encode(text);
  EXPECT_TRUE(ids.ok()) << ids.status().message();
  Strings out;
  for (int32_t id : *ids) out.emplace_back(t.TokenText(id));
  return out;
}

json SplitOn(const std::string& literal, const std::string& behavior) {
  return {{"type", "Split"}, {"pattern", {{"String", literal}}}, {"behavior", behavior}, {"invert", false}};
}

TEST(SplitPreTokenizer, Behaviors) {
  json j = CharTokenizer({"a", "-", "b", "a-", "-b", "--"}, {{"a", "-"}, {"-", "b"}, {"-", "-"}});
  EXPECT_EQ(Tokens(*Make(j), "a-b"), (Strings{"a-", "b"}));  // no pre-tokenizer: one word
  j["pre_tokenizer"] = SplitOn("-", "Isolated");
  EXPECT_EQ(Tokens(*Make(j), "a-b"), (Strings{"a", "-", "b"}));
  j["pre_tokenizer"] = SplitOn("-", "Removed");
  EXPECT_EQ(Tokens(*Make(j), "a-b"), (Strings{"a", "b"}));
  j["pre_tokenizer"] = SplitOn("-", "MergedWithPrevious");
  EXPECT_EQ(Tokens(*Make(j), "a-b"), (Strings{"a-", "b"}));
  j["pre_tokenizer"] = SplitOn("-", "MergedWithNext");
  EXPECT_EQ(Tokens(*Make(j), "a-b"), (Strings{"a", "-b"}));
  j["pre_tokenizer"] = SplitOn("-", "Contiguous");
  EXPECT_EQ(Tokens(*Make(j), "a--b"), (Strings{"a", "--", "b"}));
  j["pre_tokenizer"] = SplitOn("-", "Isolated");
  EXPECT_EQ(Tokens(*Make(j), "a--b"), (Strings{"a", "-", "-", "b"}));
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "-+"}}}, {"behavior", "Isolated"}, {"invert", true}};
  EXPECT_EQ(Tokens(*Make(j), "a--b"), (Strings{"a", "--", "b"}));
}

TEST(MetaspacePreTokenizer, PrependSchemesAndDecoder) {
  const std::string sp = "\u2581";
  json j = CharTokenizer({sp, "h", "i", "y", "o", "u", sp + "h", sp + "hi", sp + "y", sp + "yo", sp + "you", "<X>"},
                         {{sp, "h"}, {sp + "h", "i"}, {sp, "y"}, {sp + "y", "o"}, {sp + "yo", "u"}});
  j["added_tokens"] = json::array({{{"id", 11}, {"content", "<X>"}, {"special", true}}});
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", sp}, {"prepend_scheme", "always"}, {"split", true}};
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", sp}, {"prepend_scheme", "always"}, {"split", true}};
  auto t = Make(j);
  EXPECT_EQ(Tokens(*t, "hi you"), (Strings{sp + "hi", sp + "you"}));
  EXPECT_EQ(Tokens(*t, "hi<X>you"), (Strings{sp + "hi", "<X>", sp + "you"}));
  EXPECT_EQ(t->Decode(*t->Encode("hi you")), "hi you");
  EXPECT_EQ(t->Decode(*t->Encode("hi<X>you"), /*skip_special=*/true), "hi you");

  j["pre_tokenizer"]["prepend_scheme"] = "first";  // only at the start of the input
  t = Make(j);
  EXPECT_EQ(Tokens(*t, "hi<X>you"), (Strings{sp + "hi", "<X>", "y", "o", "u"}));
  j["pre_tokenizer"]["prepend_scheme"] = "never";
  t = Make(j);
  EXPECT_EQ(Tokens(*t, "hi you"), (Strings{"h", "i", sp + "you"}));
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", sp}, {"add_prefix_space", true}, {"split", false}};
  t = Make(j);  // one piece: merges may not cross "▁" boundaries anyway here
  EXPECT_EQ(Tokens(*t, "hi you"), (Strings{sp + "hi", sp + "you"}));
}

TEST(ByteLevelPreTokenizer, OwnRegexAndPrefixSpace) {
  Strings vocab;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    utf8::Append(ByteLevelChar(static_cast<uint8_t>(b)), &s);
    vocab.push_back(s);
  }
  vocab.insert(vocab.end(), {"hi", "\u0120hi", "\u0120\u0120"});
  json j = CharTokenizer(vocab, {{"h", "i"}, {"\u0120", "hi"}, {"\u0120", "\u0120"}});
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  j["decoder"] = {{"type", "ByteLevel"}};
  auto t = Make(j);
  EXPECT_EQ(Tokens(*t, "hi hi"), (Strings{"\u0120hi", "\u0120hi"}));
  EXPECT_EQ(t->Decode(*t->Encode("hi hi")), " hi hi");
  // GPT-2's \s+(?!\S): of three spaces before a word, the last one goes with the word.
  EXPECT_EQ(Tokens(*t, "hi   hi"), (Strings{"\u0120hi", "\u0120\u0120", "\u0120hi"}));
  j["pre_tokenizer"]["add_prefix_space"] = false;
  EXPECT_EQ(Tokens(*Make(j), "hi hi"), (Strings{"hi", "\u0120hi"}));
  // Without the regex the text is one word and merges run across the space.
  j["pre_tokenizer"]["use_regex"] = false;
  // hiĠĠhi: h+i (rank 0) twice, then Ġ+hi (rank 1); Ġ+Ġ (rank 2) is no longer adjacent.
  EXPECT_EQ(Tokens(*Make(j), "hi  hi"), (Strings{"hi", "\u0120", "\u0120hi"}));
}

TEST(AddedTokens, StripSingleWordAndNormalizedFlags) {
  json j = CharTokenizer({"a", "b", " ", "x", "@", "<m>"}, {});
  j["added_tokens"] = json::array({{{"id", 5}, {"content", "<m>"}, {"lstrip", true}}});
  EXPECT_EQ(Tokens(*Make(j), "a <m> b"), (Strings{"a", "<m>", " ", "b"}));
  j["added_tokens"][0]["lstrip"] = false;
  j["added_tokens"][0]["rstrip"] = true;
  EXPECT_EQ(Tokens(*Make(j), "a <m> b"), (Strings{"a", " ", "<m>", "b"}));
  j["added_tokens"][0]["rstrip"] = false;
  // normalized: matched after the normalizer ran, so "@" -> "<m>" becomes the token.
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", "@"}}}, {"content", "<m>"}};
  j["added_tokens"][0]["normalized"] = true;
  EXPECT_EQ(Tokens(*Make(j), "a@b"), (Strings{"a", "<m>", "b"}));
  j["added_tokens"][0]["normalized"] = false;  // raw-text match only: "<m>" is not in "a@b"
  auto t = Make(j);
  auto ids = t->Encode("a@b");
  EXPECT_FALSE(ids.ok());  // '<' is not in the vocab and there is no unk_token
  EXPECT_NE(ids.status().message().find("'<' is not in the vocab"), std::string::npos);
}

TEST(AddedTokens, SingleWordNeedsWordBoundaries) {
  json j = CharTokenizer({"x", " ", "<", "m", ">", "<m>"}, {});
  j["added_tokens"] = json::array({{{"id", 5}, {"content", "<m>"}, {"single_word", true}}});
  EXPECT_EQ(Tokens(*Make(j), "x<m> <m>"), (Strings{"x", "<", "m", ">", " ", "<m>"}));
}

TEST(BpeModel, UnknownCharactersAndIgnoreMerges) {
  json j = CharTokenizer({"<unk>", "a", "b", "abc", "c"}, {});
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(Tokens(*Make(j), "a\u00e9\u00e8b"), (Strings{"a", "<unk>", "<unk>", "b"}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(Tokens(*Make(j), "a\u00e9\u00e8b"), (Strings{"a", "<unk>", "b"}));
  EXPECT_EQ(Tokens(*Make(j), "abc"), (Strings{"a", "b", "c"}));  // no merge builds "abc"
  j["model"]["ignore_merges"] = true;  // Llama 3: a whole-word vocab hit wins
  EXPECT_EQ(Tokens(*Make(j), "abc"), (Strings{"abc"}));
}

TEST(BpeModel, ByteFallbackDecodesInvalidBytesPerToken) {
  Strings vocab = {"<unk>"};
  for (int b = 0; b < 256; ++b) vocab.push_back(fmt::format("<0x{:02X}>", b));
  vocab.push_back("a");
  json j = CharTokenizer(vocab, {});
  j["model"]["unk_token"] = "<unk>";
  j["model"]["byte_fallback"] = true;
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
  auto t = Make(j);
  EXPECT_EQ(Tokens(*t, "a\u00e9"), (Strings{"a", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(t->Decode(*t->Encode("a\u00e9")), "a\u00e9");
  // A cut character: one U+FFFD per byte token (HF byte_fallback.rs), unlike ByteLevel.
  const std::vector<int32_t> cut = {*t->TokenId("<0xE6>"), *t->TokenId("<0x97>"), *t->TokenId("a")};
  EXPECT_EQ(t->Decode(cut), "\uFFFD\uFFFDa");
}

TEST(Normalizers, RegexReplaceAndUnicodeForms) {
  json j = CharTokenizer({"a", " ", "\u00e9", "e", "\u0301"}, {});
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}};
  EXPECT_EQ(Tokens(*Make(j), "a   a"), (Strings{"a", " ", "a"}));
  j["normalizer"] = {{"type", "NFC"}};
  EXPECT_EQ(Tokens(*Make(j), "e\u0301"), (Strings{"\u00e9"}));
  j["normalizer"] = {{"type", "NFD"}};
  EXPECT_EQ(Tokens(*Make(j), "\u00e9"), (Strings{"e", "\u0301"}));
}

TEST(Decoders, StripAndReplace) {
  json j = CharTokenizer({"_", "a"}, {});
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "_"}}}, {"content", " "}},
                                            {{"type", "Fuse"}},
                                            {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}}})}};
  auto t = Make(j);
  EXPECT_EQ(t->Decode(*t->Encode("__a__")), " a ");
}

}  // namespace
}  // namespace oko
