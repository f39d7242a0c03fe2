// docs/CLI.md is the command-line contract: every flag each subcommand's --help prints
// must be documented there, in the subcommand's section or among the common flags.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/model_folder.h"
#include "tests/test_util.h"

namespace oko {
namespace {

const std::vector<std::string> kSubcommands = {"info",    "tokenize", "detokenize", "template", "logits", "run",
                                               "chat",    "trace",    "bench",      "profile",  "make-model", "quantize", "steer-vector",
                                               "attribute", "serve"};

// The flags in the first column of --help's option lines ("  -m,--model DIR REQUIRED  ...").
std::vector<std::string> HelpFlags(const std::string& help) {
  std::vector<std::string> flags;
  std::istringstream in(help);
  const std::regex flag(R"((?:^|[ ,])(--?[A-Za-z][A-Za-z0-9-]*))");
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("  -")) continue;
    const std::string first_column = line.substr(2, line.find("  ", 2) - 2);
    for (std::sregex_iterator it(first_column.begin(), first_column.end(), flag), end; it != end; ++it)
      if ((*it)[1] != "-h" && (*it)[1] != "--help") flags.push_back((*it)[1]);
  }
  return flags;
}

// The text from the "## ..." heading that names `name` to the next heading.
std::string Section(const std::string& doc, const std::string& name) {
  const std::regex heading("\n## [^\n]*" + name + "(,|\n)");
  std::smatch m;
  if (!std::regex_search(doc, m, heading)) return "";
  const size_t begin = m.position(0) + 1;
  return doc.substr(begin, doc.find("\n## ", begin) - begin);
}

TEST(CliDocTest, EveryFlagOfEverySubcommandsHelpIsInDocsCliMd) {
  const std::string doc = test::ReadBytes(std::string(OKO_SOURCE_DIR) + "/docs/CLI.md");
  const std::string common = Section(doc, "Common flags");
  ASSERT_NE(common, "");
  for (const std::string& sub : kSubcommands) {
    SCOPED_TRACE(sub);
    const auto r = test::RunOko(sub + " --help");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string section = Section(doc, "oko " + sub);
    ASSERT_NE(section, "") << "docs/CLI.md has no '## oko " << sub << "' section";
    const std::vector<std::string> flags = HelpFlags(r.out);
    EXPECT_FALSE(flags.empty()) << r.out;
    for (const std::string& f : flags) {
      const std::string quoted = "`" + f + "`";
      EXPECT_TRUE(section.find(quoted) != std::string::npos || common.find(quoted) != std::string::npos)
          << f << " (oko " << sub << " --help) is not documented in docs/CLI.md";
    }
  }
}

TEST(CliDocTest, EveryHelpShowsExamplesAndUsageNamesOko) {
  for (const std::string& sub : kSubcommands) {
    const auto r = test::RunOko("help " + sub);
    ASSERT_EQ(r.exit_code, 0) << sub << ": " << r.err;
    EXPECT_THAT(r.out, ::testing::HasSubstr("Usage: oko " + sub + " [OPTIONS]")) << r.out;
    EXPECT_THAT(r.out, ::testing::HasSubstr("Examples:\n  oko " + sub)) << r.out;
  }
}

}  // namespace
}  // namespace oko
