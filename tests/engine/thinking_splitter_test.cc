// ThinkingSplitter with the real Qwen3 tokenizer: <think> blocks go to the thinking
// channel, newlines around each channel are stripped as the template strips them, and
// multi-byte characters split across tokens come out whole.
#include "engine/thinking_splitter.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace oko {
namespace {

struct Split {
  std::string thinking, answer;
  int pieces = 0;
};

// Streams the ids of `text` one at a time.
Split Stream(const std::string& text, bool start_thinking) {
  auto ids = test::Qwen3Tokenizer().Encode(text, /*add_special_tokens=*/false);
  EXPECT_TRUE(ids.ok());
  ThinkingSplitter splitter(test::Qwen3Tokenizer(), start_thinking);
  std::vector<ReplyPiece> pieces;
  for (int32_t id : *ids) splitter.Push(id, &pieces);
  splitter.Flush(&pieces);
  Split s;
  for (const ReplyPiece& p : pieces) {
    EXPECT_FALSE(p.text.empty());
    (p.channel == ReplyChannel::kThinking ? s.thinking : s.answer) += p.text;
    ++s.pieces;
  }
  return s;
}

TEST(ThinkingSplitter, SeparatesTheThinkBlockAndStripsNewlines) {
  const Split s = Stream("<think>\nThe user greets me.\n\nI greet back.\n</think>\n\nHello! How can I help?\n", false);
  EXPECT_EQ(s.thinking, "The user greets me.\n\nI greet back.");
  EXPECT_EQ(s.answer, "Hello! How can I help?");
  EXPECT_GT(s.pieces, 4);  // streamed, not one block
}

TEST(ThinkingSplitter, EmptyThinkBlockGivesOnlyTheAnswer) {
  const Split s = Stream("<think>\n\n</think>\n\nJust the answer.", false);
  EXPECT_EQ(s.thinking, "");
  EXPECT_EQ(s.answer, "Just the answer.");
}

TEST(ThinkingSplitter, NoTagsIsAllAnswer) {
  const Split s = Stream("Line one.\nLine two.", false);
  EXPECT_EQ(s.thinking, "");
  EXPECT_EQ(s.answer, "Line one.\nLine two.");
}

TEST(ThinkingSplitter, PromptThatOpenedTheBlock) {
  const Split s = Stream("\nweighing options\n</think>\n\nDone.", true);
  EXPECT_EQ(s.thinking, "weighing options");
  EXPECT_EQ(s.answer, "Done.");
}

TEST(ThinkingSplitter, MultiByteCharactersComeOutWhole) {
  const std::string text = "Привет, 世界! 🦀🦀 ok";
  const Split s = Stream("<think>🤔 думаю</think>" + text, false);
  EXPECT_EQ(s.thinking, "🤔 думаю");
  EXPECT_EQ(s.answer, text);
}

}  // namespace
}  // namespace oko
