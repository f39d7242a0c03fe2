// The intervention flags through the real binary: the refusals of
// ../shared/golden/interventions/cases.json (exit 2, a message naming the value), and
// `oko logits` under a case's flags against its float32 reference.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "common/npy.h"
#include "tests/test_util.h"

namespace oko {
namespace {

std::string Quoted(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += " '" + a + "'";
  return s;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

TEST(InterventionsCli, RefusesTheBadSpecsWithTheirValue) {
  const auto cases = test::ReadJson(test::SharedPath("golden/interventions/cases.json"));
  ASSERT_FALSE(cases["refusals"].empty());
  for (const auto& r : cases["refusals"]) {
    SCOPED_TRACE(r["name"].get<std::string>());
    std::vector<std::string> argv = r["argv"];
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == "--steer") argv[i + 1] = test::SharedPath(argv[i + 1]);
    const std::string out = test::TempDir("iv_refusal") + "/l.npy";
    const auto run = test::RunOko("logits -m '" + test::SharedPath(r["model"]) + "' --ids 1,2,3 --out '" + out + "'" +
                                  Quoted(argv));
    EXPECT_EQ(run.exit_code, 2) << run.err;
    bool named = false;
    for (const auto& want : r["expect_any"]) named = named || Lower(run.err).find(Lower(want)) != std::string::npos;
    EXPECT_TRUE(named) << run.err;
  }
}

// Every flag reaches the engine: each case's last logits from `oko logits`.
TEST(InterventionsCli, LogitsMatchEveryCase) {
  const auto cases = test::ReadJson(test::SharedPath("golden/interventions/cases.json"));
  for (const auto& c : cases["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    std::vector<std::string> argv = c["argv"];
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == "--steer") argv[i + 1] = test::SharedPath(argv[i + 1]);
    std::string ids;
    for (const auto& id : c["ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
    const std::string out = test::TempDir("iv_logits") + "/l.npy";
    const auto run = test::RunOko("logits -t 2 -m '" + test::SharedPath(c["model"]) + "' --ids " + ids + " --out '" +
                                  out + "'" + Quoted(argv));
    ASSERT_EQ(run.exit_code, 0) << run.err;
    auto got = ReadNpy(out);
    auto want = ReadNpy(test::SharedPath("golden/interventions/" + c["dir"].get<std::string>() + "/logits_last.npy"));
    ASSERT_TRUE(got.ok() && want.ok());
    const auto g = got->AsFloats(), w = want->AsFloats();
    ASSERT_EQ(g.size(), w.size());
    double m = 0;
    for (size_t i = 0; i < g.size(); ++i) m = std::max(m, std::fabs(double(g[i]) - double(w[i])));
    EXPECT_LE(m, 1e-3);
  }
}

TEST(InterventionsCli, CompareShowsBothDistributionsAndContinuations) {
  const std::string m = "'" + test::SharedPath("models/stories260k") + "'";
  const auto run = test::RunOko("run -m " + m + " -p 'Once upon a time' -n 8 --temp 0 --emphasize 2-3 --compare");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, ::testing::HasSubstr("KL(without || with) = "));
  EXPECT_THAT(run.out, ::testing::HasSubstr("| with --emphasize 2-3"));
  const auto plain = test::RunOko("run -m " + m + " -p 'Once upon a time' -n 8 --temp 0 --compare");
  EXPECT_EQ(plain.exit_code, 1) << plain.err;
  const std::string out = test::TempDir("iv_compare") + "/l.npy";
  const auto logits = test::RunOko("logits -m " + m + " --ids 1,403,407 --out '" + out + "' --ablate '2.*' --compare");
  ASSERT_EQ(logits.exit_code, 0) << logits.err;
  EXPECT_THAT(logits.err, ::testing::HasSubstr("KL(without || with) = "));
}

// --emphasize-text is --emphasize of the positions of the text's tokens in the prompt.
TEST(InterventionsCli, EmphasizeTextFindsItsTokensInThePrompt) {
  const std::string m = "'" + test::SharedPath("models/stories260k") + "'";
  const std::string p = " -p 'Lily and Tom went to the park' -n 6 --temp 0 ";
  const auto by_text = test::RunOko("run -m " + m + p + "--emphasize-text 'went to'");
  const auto by_positions = test::RunOko("run -m " + m + p + "--emphasize 5-7");  // " w" "ent" " to"
  const auto plain = test::RunOko("run -m " + m + p);
  ASSERT_EQ(by_text.exit_code, 0) << by_text.err;
  EXPECT_EQ(by_text.out, by_positions.out);
  EXPECT_NE(by_text.out, plain.out);
  const auto missing = test::RunOko("run -m " + m + p + "--emphasize-text 'a dragon'");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, ::testing::HasSubstr("--emphasize-text 'a dragon'"));
}

// The chat commands change the next answers, and /interventions off restores them.
TEST(InterventionsCli, ChatCommandsSetAndClear) {
  const std::string m = "'" + test::SharedPath("models/stories260k") + "'";
  const auto r = test::RunOko("chat -m " + m + " -n 8 --temp 0",
                              "Lily and Tom\n/ablate 2.*,3.*\nLily and Tom\n/interventions off\nLily and Tom\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 8u) << r.out;
  EXPECT_EQ(lines[1], "Interventions for the next answers:");
  EXPECT_EQ(lines[2], "  --ablate 2.*,3.*");
  EXPECT_THAT(lines[3], ::testing::HasSubstr("The KV cache is kept up to position 0"));
  EXPECT_NE(lines[0], lines[4]) << "the ablation changed nothing";
  EXPECT_EQ(lines[5], "No interventions.");
  EXPECT_EQ(lines[0], lines[7]) << r.out;
}

}  // namespace
}  // namespace oko
