// `oko run` and `oko logits` end to end: the real binary against llama2.c's run.c.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/npy.h"
#include "ops/gemm_onednn.h"
#include "tests/test_util.h"

namespace oko {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Stories() { return test::SharedPath("models/stories260k"); }

TEST(RunCliTest, GreedyStoryIsTheOneRunCWrites) {
  for (const char* name : {"once", "lily_tom", "cat"}) {
    SCOPED_TRACE(name);
    std::ifstream in(test::SharedPath("golden/stories260k/golden.json"));
    const auto golden = nlohmann::json::parse(in);
    std::string text;
    for (const auto& p : golden["prompts"])
      if (p["name"] == name) text = p["text"];
    const auto r = test::RunOko("run -m '" + Stories() + "' -p '" + text + "' --temp 0 -n 128 -t 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, ReadText(test::SharedPath(std::string("golden/stories260k/runc_text_") + name + ".txt")));
    EXPECT_NE(r.err.find("tok/s"), std::string::npos) << "the speed line is missing: " << r.err;
  }
}

TEST(RunCliTest, SameSeedSameTextOtherSeedOtherText) {
  const std::string base = "run -m '" + Stories() + "' -p 'Once upon a time' -n 60 --temp 1 ";
  const auto a = test::RunOko(base + "--seed 7");
  const auto b = test::RunOko(base + "--seed 7");
  const auto c = test::RunOko(base + "--seed 8");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

TEST(RunCliTest, BadInputIsExitTwoAndUsageIsExitOne) {
  EXPECT_EQ(test::RunOko("run -m '" + Stories() + "' --ids 1,99999").exit_code, 2);
  EXPECT_EQ(test::RunOko("run -m '" + Stories() + "' --ids 1,x").exit_code, 2);
  EXPECT_EQ(test::RunOko("run -m '" + Stories() + "'").exit_code, 1);
  EXPECT_EQ(test::RunOko("run -m /nonexistent -p hi").exit_code, 2);  // bad input, as a broken folder
  const auto r = test::RunOko("run -m '" + test::SharedPath("golden") + "' -p hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
}

TEST(RunCliTest, AFlagGivenTwiceTakesItsLastValue) {
  const std::string base = "run -m '" + Stories() + "' --temp 0 -t 1 ";
  const auto once = test::RunOko(base + "-p 'Once upon a time' -n 6");
  const auto twice = test::RunOko(base + "-p 'The dog' -n 2 -p 'Once upon a time' -n 6");
  ASSERT_EQ(once.exit_code, 0) << once.err;
  ASSERT_EQ(twice.exit_code, 0) << twice.err;
  EXPECT_EQ(twice.out, once.out);
  EXPECT_NE(twice.err.find("generated 6 tokens"), std::string::npos) << twice.err;
}

TEST(RunCliTest, ComputeBf16NeedsTheCpuForIt) {
  const auto r = test::RunOko("run -m '" + Stories() + "' -p hi -n 2 --seed 1 --compute bf16");
  if (OnednnBf16Supported()) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
  } else {  // oneDNN threw, uncaught, before the check
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.err, "oko run: error: --compute bf16 needs a CPU with AVX-512, and this one has none (use auto or f32)\n");
  }
}

TEST(LogitsCliTest, AllPositionsMatchRunC) {
  std::ifstream in(test::SharedPath("golden/stories260k/golden.json"));
  const auto golden = nlohmann::json::parse(in);
  const auto& p = golden["prompts"][1];
  std::vector<int> ids = p["logits_ids"];
  ids.resize(20);
  std::string list;
  for (int id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  const std::string out = test::TempDir("logits") + "/l.npy";
  const auto r = test::RunOko("logits -m '" + Stories() + "' --ids " + list + " --out '" + out +
                              "' --all-positions --compute f32");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto mine = ReadNpy(out);
  ASSERT_TRUE(mine.ok()) << mine.status().message();
  ASSERT_EQ(mine->shape, (std::vector<int64_t>{20, 512}));
  auto ref = ReadNpy(test::SharedPath("golden/stories260k/" + p["logits_file"].get<std::string>()));
  ASSERT_TRUE(ref.ok());
  for (int64_t i = 0; i < 20 * 512; ++i) ASSERT_NEAR(mine->At(i), ref->At(i), 1e-4) << "at " << i;

  // Without --all-positions: the last row only.
  ASSERT_EQ(test::RunOko("logits -m '" + Stories() + "' --ids " + list + " --out '" + out + "'").exit_code, 0);
  auto last = ReadNpy(out);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->shape, (std::vector<int64_t>{1, 512}));
  for (int64_t v = 0; v < 512; ++v) ASSERT_NEAR(last->At(v), ref->At(19 * 512 + v), 1e-4);
}

}  // namespace
}  // namespace oko
