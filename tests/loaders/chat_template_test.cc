// ChatTemplate against the Hugging Face renderings in ../shared/golden/chat_template, and
// the Jinja features, error positions and limits one at a time.
#include "loaders/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace oko {
namespace {

using ordered_json = nlohmann::ordered_json;

struct GoldenCase {
  std::string id;
  ordered_json variables;
  std::string rendered;
};

std::vector<GoldenCase> LoadGoldenCases() {
  std::ifstream in(test::SharedPath("golden/chat_template/qwen3.jsonl"));
  std::vector<GoldenCase> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const ordered_json j = ordered_json::parse(line);
    GoldenCase c;
    c.id = j["id"].get<std::string>();
    c.variables = j["options"];
    c.variables["messages"] = j["messages"];
    c.rendered = j["rendered"].get<std::string>();
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(ChatTemplateGolden, AllQwen3CasesRenderByteForByte) {
  auto tmpl = ChatTemplate::LoadFromDir(test::SharedPath("models/qwen3-tokenizer"));
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
  const std::vector<GoldenCase> cases = LoadGoldenCases();
  ASSERT_EQ(cases.size(), 16u);
  int passed = 0;
  for (const GoldenCase& c : cases) {
    auto out = tmpl->Render(c.variables);
    ASSERT_TRUE(out.ok()) << c.id << ": " << out.status().message();
    EXPECT_EQ(*out, c.rendered) << "case " << c.id;
    passed += *out == c.rendered;
  }
  EXPECT_EQ(passed, 16);
}

// Renders `source` with `variables` (a JSON object text); failures come back as the
// error message prefixed with "ERROR: ".
std::string Render(std::string_view source, const std::string& variables = "{}",
                   const ChatTemplate::Limits& limits = {}) {
  auto tmpl = ChatTemplate::Parse(source, "t");
  if (!tmpl.ok()) return "ERROR: " + tmpl.status().message();
  auto out = tmpl->Render(ordered_json::parse(variables), limits);
  if (!out.ok()) return "ERROR: " + out.status().message();
  return *out;
}

}  // namespace
}  // namespace oko
