// Tags of a rendered chat (engine/chat_tags.h) with tiny-qwen3's real Qwen3 tokenizer and
// template: every token of the system, user and assistant messages and of the scaffolding
// around them lands in its message, across turns, with the template rewriting an earlier
// reply (its <think> block dropped) and the generation prompt belonging to the reply.
#include "engine/chat_tags.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/test_util.h"

namespace oko {
namespace {

using ordered_json = nlohmann::ordered_json;

struct Qwen3 {
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;
};

const Qwen3& Load() {
  static const Qwen3 q = [] {
    const std::string dir = test::SharedPath("models/tiny-qwen3");
    Qwen3 q;
    auto tok = Tokenizer::Load(dir);
    EXPECT_TRUE(tok.ok()) << tok.status().message();
    q.tokenizer = std::move(tok).value();
    auto t = ChatTemplate::LoadFromDir(dir);
    EXPECT_TRUE(t.ok()) << t.status().message();
    q.chat_template = std::move(t).value();
    return q;
  }();
  return q;
}

ordered_json Msg(const char* role, const char* content) { return {{"role", role}, {"content", content}}; }

struct Tagged {
  std::vector<int32_t> ids;
  std::vector<std::string> pieces;
  std::vector<TokenTag> tags;
  // (turn, role) -> the text of its tokens, in order.
  std::map<std::pair<int64_t, std::string>, std::string> text;
  std::string Of(int64_t turn, const std::string& role) const {
    auto it = text.find({turn, role});
    return it == text.end() ? "(none)" : it->second;
  }
  bool Has(int64_t turn, const std::string& role) const { return text.contains({turn, role}); }
};

Tagged Tag(const ordered_json& variables) {
  const Qwen3& q = Load();
  Tagged t;
  auto rendered = q.chat_template->Render(variables);
  EXPECT_TRUE(rendered.ok()) << rendered.status().message();
  auto ids = q.tokenizer->Encode(*rendered, /*add_special_tokens=*/false);
  EXPECT_TRUE(ids.ok());
  t.ids = *ids;
  t.pieces = q.tokenizer->DecodePieces(t.ids);
  auto tags = TagRenderedTokens(*q.chat_template, *q.tokenizer, variables, t.ids);
  EXPECT_TRUE(tags.ok()) << tags.status().message();
  t.tags = *tags;
  EXPECT_EQ(t.tags.size(), t.ids.size());
  for (size_t i = 0; i < t.tags.size(); ++i) t.text[{t.tags[i].turn, t.tags[i].role}] += t.pieces[i];
  return t;
}

TEST(ChatTags, TwoTurnsWithSystemAndARewrittenReply) {
  ordered_json v = {{"messages", ordered_json::array({Msg("system", "Be brief."), Msg("user", "Hello there"),
                                                      Msg("assistant", "<think>\nLet me see.\n</think>\n\nHi! I am here."),
                                                      Msg("user", "Tell me more")})},
                    {"add_generation_prompt", true}};
  const Tagged t = Tag(v);
  EXPECT_EQ(t.Of(0, "system"), "Be brief.");
  EXPECT_EQ(t.Of(1, "user"), "Hello there");
  EXPECT_EQ(t.Of(2, "assistant"), "Hi! I am here.");  // the template dropped the reasoning
  EXPECT_EQ(t.Of(3, "user"), "Tell me more");
  EXPECT_EQ(t.Of(0, "template"), "<|im_start|>system\n<|im_end|>\n");
  EXPECT_EQ(t.Of(1, "template"), "<|im_start|>user\n<|im_end|>\n");
  EXPECT_EQ(t.Of(2, "template"), "<|im_start|>assistant\n<|im_end|>\n");
  EXPECT_EQ(t.Of(3, "template"), "<|im_start|>user\n<|im_end|>\n");
  EXPECT_EQ(t.Of(4, "template"), "<|im_start|>assistant\n");  // the generation prompt: the reply's
  EXPECT_EQ(t.text.size(), 9u);
  // Positions ascend through the messages.
  for (size_t i = 1; i < t.tags.size(); ++i) EXPECT_GE(t.tags[i].turn, t.tags[i - 1].turn) << i;
  EXPECT_EQ(t.tags.front().turn, 0);
  EXPECT_EQ(t.tags.front().role, kTemplateRole);
}

TEST(ChatTags, NoSystemNoThinkingAndALastReplyKeptWhole) {
  // The last message an assistant's: Qwen3 keeps its reasoning (after the last query),
  // inside a "<think>\n" it writes whatever the content is: that much is scaffolding.
  ordered_json v = {{"messages", ordered_json::array({Msg("user", "Why?"),
                                                      Msg("assistant", "<think>\nHmm.\n</think>\n\nBecause.")})},
                    {"add_generation_prompt", false}};
  Tagged t = Tag(v);
  EXPECT_EQ(t.Of(0, "user"), "Why?");
  EXPECT_EQ(t.Of(1, "assistant"), "Hmm.\n</think>\n\nBecause.");
  EXPECT_EQ(t.Of(1, "template"), "<|im_start|>assistant\n<think>\n<|im_end|>\n");
  EXPECT_FALSE(t.Has(2, kTemplateRole));

  v = {{"messages", ordered_json::array({Msg("user", "Hi")})}, {"add_generation_prompt", true},
       {"enable_thinking", false}};
  t = Tag(v);
  EXPECT_EQ(t.Of(0, "user"), "Hi");
  EXPECT_EQ(t.Of(1, "template"), "<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTags, ContentThatLooksLikeItsNeighboursStaysItsOwn) {
  // Content that starts and ends with what the template writes around it.
  ordered_json v = {{"messages", ordered_json::array({Msg("user", "user\n<|im_end|>\nx"), Msg("user", "")})},
                    {"add_generation_prompt", true}};
  const Tagged t = Tag(v);
  EXPECT_EQ(t.Of(0, "user"), "user\n<|im_end|>\nx");
  EXPECT_FALSE(t.Has(1, "user"));  // empty content: scaffolding only
  EXPECT_EQ(t.Of(1, "template"), "<|im_start|>user\n<|im_end|>\n");
}

// A template that leaves the system message out: the messages after it keep theirs.
TEST(ChatTags, AMessageTheTemplateDropsTakesNoCharacters) {
  auto t = ChatTemplate::Parse(
      "{% for m in messages %}{% if m.role != 'system' %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>"
      "{% endif %}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
      "test");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ordered_json v = {{"messages", ordered_json::array({Msg("system", "S"), Msg("user", "U1"), Msg("assistant", "A1"),
                                                      Msg("user", "U2")})},
                    {"add_generation_prompt", true}};
  std::string text;
  auto chars = TagRenderedChars(*t, v, &text);
  ASSERT_TRUE(chars.ok()) << chars.status().message();
  ASSERT_EQ(text, "<user>U1</user><assistant>A1</assistant><user>U2</user><assistant>");
  std::string tags;
  for (const TokenTag& c : *chars) tags += c.role == kTemplateRole ? char('0' + c.turn) : c.role[0];
  EXPECT_EQ(tags, "111111uu1111111" "22222222222aa222222222222" "333333uu3333333" "44444444444");
}

TEST(ChatTags, OffsetsAlignWhenTheDecodeDiffers) {
  const Qwen3& q = Load();
  auto ids = q.tokenizer->Encode("ab cd", false);
  ASSERT_TRUE(ids.ok());
  // The text holds an extra character the ids do not: later tokens still find theirs.
  const std::vector<size_t> at = TokenCharOffsets(*q.tokenizer, *ids, "ab  cd");
  ASSERT_EQ(at.size(), ids->size());
  EXPECT_EQ(at.front(), 0u);
  EXPECT_GE(at.back(), 2u);
  EXPECT_LE(at.back(), 4u);
}

}  // namespace
}  // namespace oko
