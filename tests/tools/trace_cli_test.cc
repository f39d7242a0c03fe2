// `oko trace` end to end: the written file against the golden attention, size refusal,
// usage errors, and the terminal heatmap's text.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/mapped_file.h"
#include "common/npy.h"
#include "loaders/trace_file.h"
#include "tests/test_util.h"
#include "tools/trace_show.h"

namespace oko {
namespace {

namespace fs = std::filesystem;

const char* kOnceIds = "1,403,407,261,378";

std::string Stories() { return "-m '" + test::SharedPath("models/stories260k") + "' -t 1"; }

TEST(TraceCli, WritesTheGoldenAttentionOfPromptAndGeneration) {
  const std::string out = test::TempDir("cli_golden") + "/t.safetensors";
  const auto r = test::RunOko("trace " + Stories() + " --ids " + kOnceIds + " -n 3 --out '" + out + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("5 layers x 8 heads x 8 queries x 8 keys, f32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("recording"), std::string::npos) << r.err;
  auto t = ReadTrace(out);
  ASSERT_TRUE(t.ok()) << t.status().message();
  // The golden "once" prompt is the teacher-forced story: its first 8 ids are the prompt
  // and the 3 greedy tokens run.c writes.
  auto ref = ReadNpy(test::SharedPath("golden/stories260k/ref_torch/once/attn_probs.npy"));
  auto ids = ReadNpy(test::SharedPath("golden/stories260k/ref_torch/once/input_ids.npy"));
  ASSERT_TRUE(ref.ok() && ids.ok());
  const auto golden_ids = ids->AsInts();
  const int64_t T = golden_ids.size(), n = std::min<int64_t>(T, 8);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(t->token_ids[i], golden_ids[i]) << i;
  const auto g = ref->AsFloats();
  for (int64_t l = 0; l < 5; ++l)
    for (int64_t h = 0; h < 8; ++h)
      for (int64_t q = 0; q < n; ++q)
        for (int64_t k = 0; k < n; ++k)
          ASSERT_NEAR(t->Row(l, h, q)[k], g[((l * 8 + h) * T + q) * T + k], 1e-5);
}

TEST(TraceCli, PromptTextIsTokenizedAndNamed) {
  const std::string out = test::TempDir("cli_prompt") + "/t.safetensors";
  const auto r = test::RunOko("trace " + Stories() + " -p 'Once upon a time' -n 4 --dtype f16 --out '" + out + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("trace: generated: "), std::string::npos) << r.err;
  auto t = ReadTrace(out);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_GE(t->tokens.size(), 5u);
  EXPECT_EQ(t->token_ids[0], 1);  // BOS, added by the tokenizer's post-processor
  EXPECT_EQ(t->tokens[1], " Once");  // as it reads in the text: SentencePiece's "▁Once"
  EXPECT_EQ(t->tokens[2], " upon");
  EXPECT_EQ(t->dtype, "f16");
  EXPECT_NE(t->options.find("\"prompt\":\"Once upon a time\""), std::string::npos) << t->options;
  const auto both = test::RunOko("trace " + Stories() + " -p hi --ids 1 --out '" + out + "'");
  EXPECT_EQ(both.exit_code, 1) << both.err;
}

// The file is plain safetensors: Python's standard library alone reads the header, the
// metadata and the values (numpy and safetensors, as docs/TRACES.md shows, do it in one line).
TEST(TraceCli, PythonReadsTheFile) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  const std::string dir = test::TempDir("cli_python");
  const std::string out = dir + "/t.safetensors", script = dir + "/read.py", result = dir + "/out.txt";
  ASSERT_EQ(test::RunOko("trace " + Stories() + " --ids " + kOnceIds + " --out '" + out + "'").exit_code, 0);
  ASSERT_TRUE(WriteFileAtomically(script,
                                  "import json, struct, sys\n"
                                  "f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]\n"
                                  "h = json.loads(f.read(n)); meta = h.pop('__metadata__')\n"
                                  "t = h['attn.4']; a, b = t['data_offsets']; f.seek(8 + n + a)\n"
                                  "v = struct.unpack('<%df' % ((b - a) // 4), f.read(b - a))\n"
                                  "print(t['dtype'], t['shape'], repr(json.loads(meta['tokens'])[2]), '%.6f' % v[-1])\n")
                  .ok());
  ASSERT_EQ(std::system(("python3 '" + script + "' '" + out + "' >'" + result + "'").c_str()), 0);
  auto text = ReadFileToString(result);
  ASSERT_TRUE(text.ok());
  auto t = ReadTrace(out);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*text, fmt::format("F32 [8, 5, 5] ' upon' {:.6f}\n", t->Row(4, 7, 4)[4]));
}

TEST(TraceCli, RefusesPastMaxBytesAndKeepsTheOldFile) {
  const std::string dir = test::TempDir("cli_max");
  const std::string out = dir + "/t.safetensors";
  ASSERT_TRUE(WriteFileAtomically(out, "old").ok());
  const auto r = test::RunOko("trace " + Stories() + " --ids " + kOnceIds + " -n 20 --max-bytes 1000 --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("over --max-bytes 1000"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--dtype f16"), std::string::npos) << r.err;
  EXPECT_EQ(fs::file_size(out), 3u);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(TraceCli, BadInputExitsTwo) {
  const std::string out = test::TempDir("cli_bad") + "/t.safetensors";
  auto r = test::RunOko("trace " + Stories() + " --ids 1,2 --layers 7 --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--layers: 7 is out of range, the model has 5"), std::string::npos) << r.err;
  r = test::RunOko("trace " + Stories() + " --ids 1,2 --queries 5-2 --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 2);
  r = test::RunOko("trace " + Stories() + " --ids 1,2");
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

TEST(TraceCli, ShowPrintsAPlainHeatmapWhenNotATerminal) {
  const std::string out = test::TempDir("cli_show") + "/t.safetensors";
  const auto r = test::RunOko("trace " + Stories() + " --ids " + kOnceIds +
                              " -n 2 --out '" + out + "' --show --layer 0 --head 3 --logit-lens");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("layer 0, head 3 · 7 queries × 7 keys (stories260k)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    0 <s>        ■\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos) << "colours on a pipe";
  EXPECT_NE(r.out.find("top attended tokens per query (layer 0, head 3)"), std::string::npos);
  EXPECT_NE(r.out.find("    0 <s>        → '<s>'@0 1.00\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("logit lens"), std::string::npos);
}

// A 3-token, 1-layer, 1-head trace with known rows.
TraceData SmallTrace(int64_t K) {
  TraceData t;
  t.path = "small.safetensors";
  t.model = "toy";
  for (int64_t i = 0; i < K; ++i) {
    t.tokens.push_back(i == 1 ? "\nNew line" : "tok" + std::to_string(i));
    t.token_ids.push_back(i);
    t.key_positions.push_back(i);
    t.key_is_sink.push_back(0);
  }
  t.layers = {2};
  t.heads = {1};
  t.query_positions = {0, 1, 2};
  t.attn.assign(1, std::vector<float>(3 * K, 0.0f));
  float* a = t.attn[0].data();
  a[0] = 1;
  a[K] = 0.4f, a[K + 1] = 0.6f;
  a[2 * K] = 0.2f, a[2 * K + 1] = 0.3f, a[2 * K + 2] = 0.006f;
  return t;
}

TEST(TraceShow, PlainHeatmapText) {
  ShowOptions o;
  o.width = 40;
  auto text = RenderHeatmap(SmallTrace(3), o);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text,
            "layer 2, average of 1 heads · 3 queries × 3 keys (toy)\n"
            "                 0\n"
            "    0 tok0       ■\n"
            "    1 ↵New␣line  ■■\n"
            "    2 tok2       ▓▓·\n"
            "legend: ■ ≥0.4  ▓ ≥0.15  ▒ ≥0.05  ░ ≥0.01  · >0  (blank: not attended)\n"
            "\n"
            "top attended tokens per query (layer 2, head average):\n"
            "    0 tok0       → 'tok0'@0 1.00\n"
            "    1 ↵New␣line  → '↵New␣line'@1 0.60, 'tok0'@0 0.40\n"
            "    2 tok2       → '↵New␣line'@1 0.30, 'tok0'@0 0.20, 'tok2'@2 0.01\n");
  o.head = 5;
  EXPECT_FALSE(RenderHeatmap(SmallTrace(3), o).ok());
}

TEST(TraceShow, DifferenceHeatmapIsDiverging) {
  TraceData t = SmallTrace(3);
  std::vector<float>& d = t.attn[0];
  std::fill(d.begin(), d.end(), 0.0f);
  d[3] = 0.4f, d[4] = -0.3f;     // query 1: A looks at key 0 more, at key 1 less
  d[6] = 0.05f, d[7] = -0.001f;  // query 2: small differences
  ShowOptions o;
  o.width = 40;
  o.diverging = true;
  o.max_listed = 1;
  auto text = RenderHeatmap(t, o);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text,
            "A − B, layer 2, average of 1 heads · 3 queries × 3 keys (toy); largest |A − B| 0.4000\n"
            "                 0\n"
            "    0 tok0\n"
            "    1 ↵New␣line  ■□\n"
            "    2 tok2       +·\n"
            "legend: A attends more ■ ≥½ ▪ ≥0.15 +\n"  // wrapped to the 40 columns
            "≥0.02 of the largest; B more □ ▫ -; ·\n"
            "smaller; blank: equal\n"
            "\n"
            "largest differences A − B of the queries that differ most (layer 2, head average):\n"
            "(1 of 3 queries)\n"
            "    1 ↵New␣line  → 'tok0'@0 +0.4, '↵New␣line'@1 -0.3\n");
  o.color = TermColor::kTrue;
  text = RenderHeatmap(t, o);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("\x1b[38;2;255;90;60m█"), std::string::npos) << *text;  // the largest, red
}

TEST(TraceShow, ATokenWithoutTextIsNamedByItsId) {
  TraceData t = SmallTrace(3);
  t.tokens[2] = "";  // e.g. a special token that decodes to nothing (Qwen3's 151703)
  t.token_ids[2] = 151703;
  ShowOptions o;
  o.width = 80;
  auto text = RenderHeatmap(t, o);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_NE(text->find("    2 <151703>   "), std::string::npos) << *text;
  EXPECT_NE(text->find("'<151703>'@2"), std::string::npos) << *text;
}

TEST(TraceShow, ChatTracesMarkEachPositionsMessage) {
  TraceData t = SmallTrace(3);
  t.token_turns = {0, 0, 1};
  t.token_roles = {"template", "system", "user"};
  ShowOptions o;
  o.width = 60;
  auto text = RenderHeatmap(t, o);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_NE(text->find("    0 ·0   tok0       ■\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("    1 s0   ↵New␣line  ■■\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("    2 u1   tok2       ▓▓·\n"), std::string::npos) << *text;
  // Wrapped to the 60 columns.
  EXPECT_NE(text->find("messages: s system, u user, a assistant (content), ·\ntemplate scaffolding"),
            std::string::npos) << *text;
}

TEST(TraceShow, LongSequencesArePooledToTheWidth) {
  ShowOptions o;
  o.width = 60;
  o.color = TermColor::kTrue;
  auto text = RenderHeatmap(SmallTrace(300), o);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("note: 300 keys do not fit 60 columns: each column sums 7 keys"), std::string::npos) << *text;
  EXPECT_NE(text->find("\x1b[38;2;"), std::string::npos);
  // Every heatmap line fits: label (17) + 38 columns.
  EXPECT_NE(text->find("    2 tok2       \x1b[38;2;"), std::string::npos);
}

}  // namespace
}  // namespace oko
