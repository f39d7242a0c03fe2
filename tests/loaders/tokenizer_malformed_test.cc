// Malformed tokenizer.json files found by fuzzing (tests/fuzz/fuzz_tokenizer_json.cc):
// each must be an error that names the file and the section, never an abort.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "loaders/tokenizer.h"

namespace oko {
namespace {

using ::testing::HasSubstr;

std::string LoadError(const std::string& tokenizer_json) {
  auto t = Tokenizer::FromJson(tokenizer_json, "", "T/tokenizer.json");
  return t.ok() ? "(loaded without error)" : t.status().message();
}

std::string Model(const std::string& fields) {
  return R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], )" + fields + "}}";
}

// simdjson's is_null() and field.value() give results that throw when converted
// implicitly; a misspelt null (`nul`, `nuunk_token`) ended in std::terminate.
TEST(TokenizerMalformed, BrokenLiteralsAreErrorsNotExceptions) {
  EXPECT_THAT(LoadError(Model(R"("unk_token": nul)")), HasSubstr("T/tokenizer.json: model.unk_token"));
  EXPECT_THAT(LoadError(Model(R"("byte_fallback": nulx)")), HasSubstr("T/tokenizer.json: model.byte_fallback"));
  EXPECT_THAT(LoadError(Model(R"("dropout": nu)")), HasSubstr("T/tokenizer.json: model.dropout"));
  EXPECT_THAT(LoadError(Model(R"("end_of_word_suffix": n)")), HasSubstr("T/tokenizer.json: model"));
  EXPECT_THAT(LoadError(R"({"model": )"), HasSubstr("T/tokenizer.json"));
  EXPECT_THAT(LoadError(R"({"decoder": )"), HasSubstr("T/tokenizer.json"));
  EXPECT_EQ(LoadError(Model(R"("unk_token": null)")), "(loaded without error)");
}

// Ids index a table as long as the largest id: a vocab id of 144444410 made FromJson
// allocate 2.3 GB (fuzz_tokenizer_json out of memory), and INT32_MAX overflowed id + 1.
TEST(TokenizerMalformed, HugeTokenIdsAreRejected) {
  EXPECT_EQ(LoadError(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 144444410}, "merges": []}})"),
            "T/tokenizer.json: model.vocab: the id of 'b' is 144444410, over the limit of 16777216 tokens");
  EXPECT_EQ(LoadError(R"({"added_tokens": [{"id": 2147483647, "content": "<x>"}], )"
                      R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})"),
            "T/tokenizer.json: added_tokens[0]: id 2147483647 is over the limit of 16777216 tokens");
}

// HF would emit whatever ids TemplateProcessing names; an id past the vocabulary would
// then index past the embedding table, so it is an error at load (fuzz_tokenizer_json).
TEST(TokenizerMalformed, PostProcessorIdsMustBeInTheVocabulary) {
  const auto file = [](const std::string& ids) {
    return R"({"post_processor": {"type": "TemplateProcessing", "single": [)"
           R"({"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],)"
           R"( "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [)" + ids +
           R"(], "tokens": ["<s>"]}}}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}})";
  };
  EXPECT_EQ(LoadError(file("2")), "T/tokenizer.json: post_processor: token id 2 is not in the vocabulary (2 ids)");
  const std::string good = file("1");
  EXPECT_EQ(LoadError(good), "(loaded without error)");
}

TEST(TokenizerMalformed, FuzzerInputsAreRejected) {
  const std::string dir = std::string(OKO_SOURCE_DIR) + "/tests/fuzz/corpus/fuzz_tokenizer_json/";
  for (const char* name : {"crash-truncated-null", "oom-huge-token-id", "crash-post-processor-id"}) {
    std::ifstream f(dir + name, std::ios::binary);
    ASSERT_TRUE(f.good()) << dir + name;
    std::string bytes(std::istreambuf_iterator<char>(f), {});
    const size_t nul = bytes.find('\0');
    const std::string json = bytes.substr(0, nul);
    const std::string config = nul == std::string::npos ? "" : bytes.substr(nul + 1);
    auto t = Tokenizer::FromJson(json, config, "T/tokenizer.json");
    ASSERT_FALSE(t.ok()) << name;
    EXPECT_THAT(t.status().message(), HasSubstr("T/tokenizer.json")) << name;
  }
}

}  // namespace
}  // namespace oko
