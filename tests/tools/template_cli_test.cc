// `oko template` end to end: the rendered prompt exactly as the golden says, from a list
// of messages or an object of variables, and exit status 2 naming the file on bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/test_util.h"

namespace oko {
namespace {

using ordered_json = nlohmann::ordered_json;

const std::string& Qwen3Dir() {
  static const std::string dir = test::SharedPath("models/qwen3-tokenizer");
  return dir;
}

ordered_json GoldenCase(const std::string& id) {
  std::ifstream in(test::SharedPath("golden/chat_template/qwen3.jsonl"));
  for (std::string line; std::getline(in, line);) {
    ordered_json j = ordered_json::parse(line);
    if (j["id"] == id) return j;
  }
  ADD_FAILURE() << "no golden case " << id;
  return ordered_json::object();
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(TemplateCli, MessageListWithGenerationPromptFlag) {
  const ordered_json golden = GoldenCase("system-user-genprompt");
  const std::string file = WriteFile(test::TempDir("list"), "m.json", golden["messages"].dump());
  const auto r = test::RunOko("template -m '" + Qwen3Dir() + "' --messages '" + file + "' --add-generation-prompt");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, golden["rendered"].get<std::string>());  // exactly: no newline added
}

TEST(TemplateCli, NoThinkingFlag) {
  const ordered_json golden = GoldenCase("no-thinking");
  const std::string file = WriteFile(test::TempDir("nothink"), "m.json", golden["messages"].dump());
  const auto r = test::RunOko("template -m '" + Qwen3Dir() + "' --messages '" + file +
                              "' --add-generation-prompt --no-thinking");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, golden["rendered"].get<std::string>());
}

TEST(TemplateCli, VariablesObjectWithToolsAndToolCalls) {
  for (const char* id : {"tools-with-system", "tool-call-roundtrip", "parallel-tool-responses"}) {
    const ordered_json golden = GoldenCase(id);
    ordered_json variables = golden["options"];
    variables["messages"] = golden["messages"];
    const std::string file = WriteFile(test::TempDir("vars"), "v.json", variables.dump());
    const auto r = test::RunOko("template -m '" + Qwen3Dir() + "' --messages '" + file + "'");
    ASSERT_EQ(r.exit_code, 0) << id << ": " << r.err;
    EXPECT_EQ(r.out, golden["rendered"].get<std::string>()) << id;
  }
}

TEST(TemplateCli, BadMessagesFileIsExit2NamingTheFile) {
  const std::string dir = test::TempDir("bad");
  for (const std::string& text : {std::string("[{\"role\": "), std::string("42"), std::string("{\"messages\": 1}")}) {
    const std::string file = WriteFile(dir, "bad.json", text);
    const auto r = test::RunOko("template -m '" + Qwen3Dir() + "' --messages '" + file + "'");
    EXPECT_EQ(r.exit_code, 2) << text;
    EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
  }
  // Valid JSON the template rejects (content null in a user turn: jinja2 raises too).
  const std::string file = WriteFile(dir, "null.json", R"([{"role": "user", "content": null}])");
  const auto r = test::RunOko("template -m '" + Qwen3Dir() + "' --messages '" + file + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokenizer_config.json chat_template:"), std::string::npos) << r.err;
}

TEST(TemplateCli, FolderWithoutTemplateOrBrokenTemplate) {
  const std::string messages = WriteFile(test::TempDir("msgs"), "m.json", R"([{"role": "user", "content": "hi"}])");
  const std::string empty = test::TempDir("no_template");
  auto r = test::RunOko("template -m '" + empty + "' --messages '" + messages + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no chat template"), std::string::npos) << r.err;

  const std::string broken = test::TempDir("broken");
  WriteFile(broken, "chat_template.jinja", "{% for m in messages %}\n{{ m.content }\n{% endfor %}");
  r = test::RunOko("template -m '" + broken + "' --messages '" + messages + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("chat_template.jinja:2:"), std::string::npos) << r.err;
}

TEST(TemplateCli, MissingMessagesOptionIsUsageError) {
  const auto r = test::RunOko("template -m '" + Qwen3Dir() + "'");
  EXPECT_EQ(r.exit_code, 1);
}

}  // namespace
}  // namespace oko
