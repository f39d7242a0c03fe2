// The intervention flags through the real binary: the refusals of
// ../shared/golden/interventions/cases.json (exit 2, a message naming the value), and
// `oko logits` under a case's flags against its float32 reference.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>

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

}  // namespace
}  // namespace oko
