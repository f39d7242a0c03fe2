// The HTML viewer in headless Chromium (skipped when chromium is not installed) and
// `oko trace --diff`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "loaders/trace_file.h"
#include "tests/test_util.h"
#include "tools/trace_diff.h"

namespace oko {
namespace {

namespace fs = std::filesystem;

std::string Stories() { return "-m '" + test::SharedPath("models/stories260k") + "' -t 1"; }
const char* kLilyTom = "1,317,269,274,287,263,377,267,265,282,295,433";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool HaveChromium() { return std::system("command -v chromium >/dev/null 2>&1") == 0; }

struct Browser {
  int exit_code;
  std::string out, err;
};

// Headless Chromium on a local file: `what` is "--dump-dom" or "--screenshot=PNG".
Browser RunChromium(const std::string& html, const std::string& what) {
  const std::string dir = test::TempDir("chromium_" + std::to_string(std::rand()));
  const std::string cmd =
      "chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir='" + dir +
      "/profile' --enable-logging=stderr --window-size=1400,1000 " + what + " 'file://" + html +
      "' >'" + dir + "/out' 2>'" + dir + "/err'";
  const int status = std::system(cmd.c_str());
  return {WEXITSTATUS(status), Slurp(dir + "/out"), Slurp(dir + "/err")};
}

// Loads the page, checks it drew without a JS error, and saves a screenshot.
void CheckPage(const std::string& html, const std::string& screenshot) {
  const Browser dom = RunChromium(html, "--dump-dom");
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_NE(dom.out.find("<title>ok</title>"), std::string::npos)
      << "the page did not finish drawing: " << dom.out.substr(0, dom.out.find("</title>") + 8);
  EXPECT_EQ(dom.err.find("Uncaught"), std::string::npos) << dom.err;
  EXPECT_EQ(dom.err.find(":ERROR:CONSOLE"), std::string::npos) << dom.err;
  const Browser shot = RunChromium(html, "--screenshot='" + screenshot + "'");
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  ASSERT_TRUE(fs::exists(screenshot));
  EXPECT_GT(fs::file_size(screenshot), 20000u) << "an almost empty screenshot";
  std::printf("screenshot: %s\n", screenshot.c_str());
}

TEST(TraceViewer, PageIsSelfContainedAndDrawsInChromium) {
  const std::string dir = test::TempDir("viewer");
  const std::string out = dir + "/t.safetensors", html = dir + "/t.html";
  const auto r = test::RunOko("trace " + Stories() + " --ids " + kLilyTom + " -n 24 --logit-lens --out '" +
                              out + "' --html '" + html + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string page = Slurp(html);
  EXPECT_EQ(page.find("<script src"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_NE(page.find("\"lens\":{"), std::string::npos);
  if (!HaveChromium()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  CheckPage(html, (fs::temp_directory_path() / "oko_trace_viewer.png").string());
}

// 1000 tokens, every layer and head: the page must still load and draw.
TEST(TraceViewer, ThousandTokens) {
  if (!HaveChromium()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  const std::string dir = test::TempDir("viewer_1k");
  const std::string out = dir + "/t.safetensors", html = dir + "/t.html";
  const auto r = test::RunOko("trace " + Stories() + " -c 1024 --ids 1 -n 999 --dtype f16 --logit-lens --out '" +
                              out + "' --html '" + html + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CheckPage(html, (fs::temp_directory_path() / "oko_trace_viewer_1k.png").string());
}

// A chat's trace (oko chat /trace) viewed afterwards with --view: the terminal rows and
// the page name every position's message and role, and the page draws.
TEST(TraceViewer, ChatTraceViewedLater) {
  const std::string dir = test::TempDir("viewer_chat");
  const std::string trace = dir + "/c.safetensors", html = dir + "/c.html";
  const auto chat = test::RunOko("chat -m '" + test::SharedPath("models/tiny-qwen3") +
                                     "' -t 1 --seed 2 -n 6 --record-attention --system 'Be brief.'",
                                 "Hello\nMore\n/trace " + trace + "\n");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  const auto r = test::RunOko("trace --view '" + trace + "' --html '" + html + "' --show --layer 1 --head 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("layer 1, head 2 · "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    0 ·0   <|im_start"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("messages: s system, u user"), std::string::npos) << r.out;
  const std::string page = Slurp(html);
  EXPECT_NE(page.find("\"roles\":[\"template\",\"template\""), std::string::npos);
  EXPECT_NE(page.find("\"system\""), std::string::npos);
  EXPECT_NE(page.find("\"turns\":[0,0,"), std::string::npos);
  EXPECT_EQ(test::RunOko("trace --view '" + trace + "'").exit_code, 1);  // nothing asked
  if (HaveChromium()) CheckPage(html, (fs::temp_directory_path() / "oko_trace_viewer_chat.png").string());
}

TEST(TraceDiff, SameTraceHasNoDriftAndF16KvSome) {
  const std::string dir = test::TempDir("diff");
  const std::string a = dir + "/a.safetensors", b = dir + "/b.safetensors", c = dir + "/c.safetensors";
  const std::string args = "trace " + Stories() + " --ids " + kLilyTom + " -n 8 --out ";
  ASSERT_EQ(test::RunOko(args + "'" + a + "'").exit_code, 0);
  ASSERT_EQ(test::RunOko(args + "'" + b + "'").exit_code, 0);
  ASSERT_EQ(test::RunOko(args + "'" + c + "' --kv f16").exit_code, 0);
  auto ta = ReadTrace(a), tb = ReadTrace(b), tc = ReadTrace(c);
  ASSERT_TRUE(ta.ok() && tb.ok() && tc.ok());
  auto same = DiffTraces(*ta, *tb);
  ASSERT_TRUE(same.ok()) << same.status().message();
  ASSERT_EQ(same->ranked.size(), 40u);
  for (const HeadDrift& h : same->ranked) EXPECT_EQ(h.jsd, 0.0);
  auto drift = DiffTraces(*ta, *tc);
  ASSERT_TRUE(drift.ok());
  EXPECT_GT(drift->ranked.front().jsd, 0.0);
  EXPECT_LT(drift->ranked.front().jsd, 0.01);
  for (size_t i = 1; i < drift->ranked.size(); ++i) EXPECT_GE(drift->ranked[i - 1].jsd, drift->ranked[i].jsd);

  const std::string html = dir + "/d.html";
  const auto r = test::RunOko("trace --diff '" + a + "' '" + c + "' --html '" + html + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rank layer head       JSD   L1 mean    L1 max  worst query"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(20 more heads; all in the --html page)"), std::string::npos) << r.out;
  // Under the ranking, the difference heatmap of the most drifting head (plain on a pipe).
  const HeadDrift& top = drift->ranked.front();
  EXPECT_NE(r.out.find(fmt::format("A − B, layer {}, head {} · 20 queries × 20 keys", top.layer, top.head)),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("legend: A attends more ■"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("largest differences A − B of the queries that differ most"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos);
  const auto chosen = test::RunOko("trace --diff '" + a + "' '" + c + "' --layer 0 --head 1");
  ASSERT_EQ(chosen.exit_code, 0) << chosen.err;
  EXPECT_NE(chosen.out.find("A − B, layer 0, head 1 ·"), std::string::npos) << chosen.out;
  const auto absent = test::RunOko("trace --diff '" + a + "' '" + c + "' --layer 9");
  EXPECT_EQ(absent.exit_code, 2);
  EXPECT_NE(absent.err.find("have no layer 9 head (any) in common"), std::string::npos) << absent.err;
  if (HaveChromium()) CheckPage(html, (fs::temp_directory_path() / "oko_trace_diff.png").string());
}

TEST(TraceDiff, DifferentTokensAreRefused) {
  const std::string dir = test::TempDir("diff_tokens");
  const std::string a = dir + "/a.safetensors", b = dir + "/b.safetensors";
  ASSERT_EQ(test::RunOko("trace " + Stories() + " --ids 1,317,269 --out '" + a + "'").exit_code, 0);
  ASSERT_EQ(test::RunOko("trace " + Stories() + " --ids 1,317,270 --out '" + b + "'").exit_code, 0);
  const auto r = test::RunOko("trace --diff '" + a + "' '" + b + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("trace different tokens: position 2 is 269"), std::string::npos) << r.err;
  const auto missing = test::RunOko("trace --diff '" + a + "' '" + dir + "/none.safetensors'");
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

TEST(TraceDiff, DisjointRowsHaveFullDivergence) {
  TraceData a;
  a.path = "a";
  a.tokens = {"x", "y"};
  a.token_ids = {5, 6};
  a.layers = {0};
  a.heads = {0};
  a.query_positions = {1};
  a.key_positions = {0, 1};
  a.key_is_sink = {0, 0};
  a.attn = {{1.0f, 0.0f}};
  TraceData b = a;
  b.path = "b";
  b.attn = {{0.0f, 1.0f}};
  auto d = DiffTraces(a, b);
  ASSERT_TRUE(d.ok());
  EXPECT_NEAR(d->ranked[0].jsd, 1.0, 1e-12);
  EXPECT_NEAR(d->ranked[0].l1, 2.0, 1e-12);
  EXPECT_EQ(d->delta.attn[0], (std::vector<float>{1.0f, -1.0f}));
}

}  // namespace
}  // namespace oko
