// ReplyPrinter: the reasoning dimmed on a terminal, between <think> tags elsewhere, or
// left out; the answer as it came.
#include "tools/chat_io.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace oko {
namespace {

std::string Printed(bool terminal, bool hide_thinking, const std::vector<ReplyPiece>& pieces) {
  std::FILE* f = std::tmpfile();
  ReplyPrinter printer(f, terminal, hide_thinking);
  for (const ReplyPiece& p : pieces) printer.Print(p);
  printer.Finish();
  std::string out(static_cast<size_t>(std::ftell(f)), '\0');
  std::rewind(f);
  EXPECT_EQ(std::fread(out.data(), 1, out.size(), f), out.size());
  std::fclose(f);
  return out;
}

const std::vector<ReplyPiece> kReply = {{ReplyChannel::kThinking, "Let me"},
                                        {ReplyChannel::kThinking, " think."},
                                        {ReplyChannel::kAnswer, "Hello"},
                                        {ReplyChannel::kAnswer, "!"}};

TEST(ReplyPrinter, ThinkingDimmedOnATerminal) {
  EXPECT_EQ(Printed(true, false, kReply), "\x1b[2mLet me think.\x1b[0m\n\nHello!\n");
}

TEST(ReplyPrinter, ThinkingTaggedInAPipe) {
  EXPECT_EQ(Printed(false, false, kReply), "<think>\nLet me think.\n</think>\n\nHello!\n");
}

TEST(ReplyPrinter, HiddenThinking) {
  EXPECT_EQ(Printed(true, true, kReply), "Hello!\n");
  EXPECT_EQ(Printed(false, true, kReply), "Hello!\n");
}

TEST(ReplyPrinter, StoppedWhileThinkingClosesTheBlock) {
  const std::vector<ReplyPiece> cut = {{ReplyChannel::kThinking, "Hmm"}};
  EXPECT_EQ(Printed(true, false, cut), "\x1b[2mHmm\x1b[0m\n");
  EXPECT_EQ(Printed(false, false, cut), "<think>\nHmm\n</think>\n");
}

TEST(FormatStats, PromptNewTokensSpeedsAndFirstToken) {
  GenerationStats s;
  s.prompt_tokens = 41;
  s.prefilled_tokens = 16;
  s.prefill_seconds = 0.5;
  s.generated_tokens = 11;
  s.decode_seconds = 2.0;
  s.first_token_seconds = 0.012;
  EXPECT_EQ(FormatStats(s), "prompt 41 tokens (16 prefilled, 25 from the cache), 32.0 tok/s | generated 11 tokens, 5.0 tok/s | first token 12 ms");
}

}  // namespace
}  // namespace oko
