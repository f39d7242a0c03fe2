// What oko serve sends of a reply: with the real Qwen3 tokenizer, the reasoning apart
// from the answer, and the answer cut before a stop sequence that spans tokens, with the
// text that might begin one held back only until it is known not to.
#include "tools/reply_stream.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace oko {
namespace {

struct Sent {
  std::string thinking, answer;
  size_t tokens_taken = 0;  // Push calls until one returned false (or all)
  bool stopped = false;
};

Sent Stream(const std::string& text, std::vector<std::string> stops, bool start_thinking = false) {
  auto ids = test::Qwen3Tokenizer().Encode(text, /*add_special_tokens=*/false);
  EXPECT_TRUE(ids.ok());
  ReplyStream stream(test::Qwen3Tokenizer(), start_thinking, std::move(stops));
  std::vector<ReplyPiece> pieces;
  Sent s;
  for (int32_t id : *ids) {
    ++s.tokens_taken;
    if (!stream.Push(id, &pieces)) break;
  }
  stream.Finish(&pieces);
  for (const ReplyPiece& p : pieces) {
    EXPECT_FALSE(p.text.empty());
    (p.channel == ReplyChannel::kThinking ? s.thinking : s.answer) += p.text;
  }
  s.stopped = stream.stopped();
  return s;
}

TEST(ReplyStream, ReasoningAndAnswerApart) {
  const Sent s = Stream("<think>\nThe user greets me.\n</think>\n\nHello! How can I help?", {});
  EXPECT_EQ(s.thinking, "The user greets me.");
  EXPECT_EQ(s.answer, "Hello! How can I help?");
  EXPECT_FALSE(s.stopped);
}

TEST(ReplyStream, StopSequenceAcrossTokensCutsTheAnswerAndStops) {
  const std::string text = "Hello! How can I help you today? I am here.";
  const Sent s = Stream(text, {"you to"});
  EXPECT_EQ(s.answer, "Hello! How can I help ");
  EXPECT_TRUE(s.stopped);
  const auto ids = test::Qwen3Tokenizer().Encode(text, false);
  EXPECT_LT(s.tokens_taken, ids->size());  // generation ends at the stop, not at the end
}

TEST(ReplyStream, HeldBackTextComesOutWhenNoStopFollows) {
  const Sent s = Stream("Hello! How can I help you today?", {"you tomorrow", "day?!"});
  EXPECT_EQ(s.answer, "Hello! How can I help you today?");
  EXPECT_FALSE(s.stopped);
}

TEST(ReplyStream, StopSequencesDoNotApplyToTheReasoning) {
  const Sent s = Stream("<think>\nSay STOP later.\n</think>\n\nFine. STOP now.", {"STOP"});
  EXPECT_EQ(s.thinking, "Say STOP later.");
  EXPECT_EQ(s.answer, "Fine. ");
  EXPECT_TRUE(s.stopped);
}

TEST(StopFilter, HoldsBackOnlyWhatMayBeginAStop) {
  StopFilter f({"abc", "xy"});
  bool stopped = false;
  EXPECT_EQ(f.Push("12a", &stopped), "12");  // "a" may begin "abc"
  EXPECT_EQ(f.Push("bz", &stopped), "abz");
  EXPECT_EQ(f.Push("x", &stopped), "");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(f.Push("y and more", &stopped), "");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(f.Flush(), "");
}

TEST(StopFilter, TheEarliestStopWins) {
  StopFilter f({"later", "soon"});
  bool stopped = false;
  EXPECT_EQ(f.Push("come soon, later", &stopped), "come ");
  EXPECT_TRUE(stopped);
}

}  // namespace
}  // namespace oko
