// ChatSession on tiny-qwen3 (the real Qwen3 tokenizer and template, random weights) and
// stories260k (no template): rendering through the template, stop ids, the second turn
// prefilling only the tokens after the cached prefix, reasoning dropped from history,
// the transcript, cancelling, the seed, raw completion, and a context that wraps.
#include "engine/chat_session.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace oko {
namespace {

using ordered_json = nlohmann::ordered_json;

struct Chat {
  std::unique_ptr<Context> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatSession> session;
};

// Short replies keep the tests fast.
ChatOptions Short() {
  ChatOptions o;
  o.max_new_tokens = 12;
  return o;
}

Chat Open(const std::string& name, const ChatOptions& options = Short(), int64_t ctx = 4096, uint64_t seed = 11) {
  const std::string dir = test::SharedPath("models/" + name);
  EngineOptions engine;
  engine.threads = 1;
  engine.ctx = ctx;
  Chat c;
  auto model = LoadContext(dir, engine);
  EXPECT_TRUE(model.ok()) << model.status().message();
  c.model = std::move(model.value());
  auto tokenizer = Tokenizer::Load(dir);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  c.tokenizer = std::move(tokenizer.value());
  std::optional<ChatTemplate> chat_template;
  if (auto t = ChatTemplate::LoadFromDir(dir); t.ok()) chat_template = std::move(t.value());
  SamplerOptions sampling;
  sampling.temperature = 0.6f;
  sampling.top_k = 20;
  sampling.seed = seed;
  c.session = std::make_unique<ChatSession>(*c.model, *c.tokenizer, std::move(chat_template), sampling, options);
  return c;
}

struct Reply {
  GenerationStats stats;
  std::string text;
};

Reply Send(ChatSession& session, const std::string& message, const std::atomic<bool>* cancel = nullptr) {
  Reply r;
  auto stats = session.Send(message, [&](const ReplyPiece& p) { r.text += p.text; }, cancel);
  EXPECT_TRUE(stats.ok()) << stats.status().message();
  if (stats.ok()) r.stats = *stats;
  return r;
}

size_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

TEST(ChatSession, TextThatIsNotUtf8IsRefusedAndTheConversationGoesOn) {
  Chat c = Open("tiny-qwen3");
  const auto bad = c.session->Send("hi \xff there", [](const ReplyPiece&) {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "the message is not valid UTF-8: byte 0xFF at offset 3");
  EXPECT_TRUE(c.session->Messages().empty());

  const Status system = c.session->SetSystem("be \xc3");
  ASSERT_FALSE(system.ok());
  EXPECT_EQ(system.message(), "the system prompt is not valid UTF-8: byte 0xC3 at offset 3");
  EXPECT_EQ(c.session->system(), "");

  Send(*c.session, "hi there");
  EXPECT_EQ(c.session->Messages().size(), 2u);
}

TEST(ChatSession, StopIdsAreTheEosIdsAndTheTemplatesEndOfTurn) {
  Chat qwen = Open("tiny-qwen3");
  EXPECT_EQ(qwen.session->stop_ids(), (std::vector<int32_t>{151643, 151645}));  // <|endoftext|>, <|im_end|>
  EXPECT_FALSE(qwen.session->raw_completion());
  Chat stories = Open("stories260k");
  EXPECT_TRUE(stories.session->raw_completion());
  // generation_config.json: [1, 2]; llama2.c ends a story at the next BOS too.
  EXPECT_EQ(stories.session->stop_ids(), (std::vector<int32_t>{1, 2}));
}

TEST(ChatSession, RendersThroughTheTemplate) {
  ChatOptions options = Short();
  options.system = "Be brief.";
  Chat c = Open("tiny-qwen3", options);
  EXPECT_EQ(*c.session->RenderPrompt("Hi"),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  options.enable_thinking = false;
  Chat no_thinking = Open("tiny-qwen3", options);
  EXPECT_TRUE(no_thinking.session->RenderPrompt("Hi")->ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
}

TEST(ChatSession, SecondTurnPrefillsOnlyTheTokensAfterTheCachedPrefix) {
  Chat c = Open("tiny-qwen3");
  const Reply first = Send(*c.session, "Hello there, who are you?");
  EXPECT_EQ(first.stats.prefilled_tokens, first.stats.prompt_tokens);  // empty cache
  EXPECT_GT(first.stats.generated_tokens, 0);

  const std::vector<int32_t> cached = c.session->cached_tokens();
  auto second_prompt = c.tokenizer->Encode(*c.session->RenderPrompt("Tell me more."), false);
  ASSERT_TRUE(second_prompt.ok());
  const Reply second = Send(*c.session, "Tell me more.");
  const int64_t reused = static_cast<int64_t>(CommonPrefix(cached, *second_prompt));
  EXPECT_EQ(second.stats.prompt_tokens, static_cast<int64_t>(second_prompt->size()));
  EXPECT_EQ(second.stats.prefilled_tokens, second.stats.prompt_tokens - reused);
  // The whole first prompt is a prefix of the second: only the reply (as the template
  // rewrites it), the new message and the generation prompt are computed.
  EXPECT_GE(reused, first.stats.prompt_tokens);
  EXPECT_EQ(c.session->totals().turns, 2);
  EXPECT_EQ(c.session->totals().prefilled_tokens, first.stats.prefilled_tokens + second.stats.prefilled_tokens);
}

TEST(ChatSession, HistoryDropsEarlierReasoningAsTheTemplateDoes) {
  Chat c = Open("tiny-qwen3");
  ASSERT_TRUE(c.session
                  ->SetMessages(ordered_json::parse(R"([
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "<think>\nsecret plan\n</think>\n\nA1"}])"))
                  .ok());
  EXPECT_EQ(c.session->system(), "S");
  const std::string prompt = *c.session->RenderPrompt("Q2");
  EXPECT_EQ(prompt.find("secret plan"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>"), std::string::npos)
      << prompt;
}

TEST(ChatSession, TranscriptResetAndLoad) {
  ChatOptions options = Short();
  options.system = "S";
  Chat c = Open("tiny-qwen3", options);
  const Reply r = Send(*c.session, "one");
  ordered_json messages = c.session->Messages();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0]["role"], "system");
  EXPECT_EQ(messages[1], (ordered_json{{"role", "user"}, {"content", "one"}}));
  EXPECT_EQ(messages[2]["role"], "assistant");
  EXPECT_EQ(messages[2]["content"], r.text);  // no <think> in this reply: shown == stored

  c.session->Reset();
  EXPECT_EQ(c.session->Messages(), (ordered_json::array({{{"role", "system"}, {"content", "S"}}})));
  ASSERT_TRUE(c.session->SetMessages(messages).ok());
  EXPECT_EQ(c.session->Messages(), messages);
  ASSERT_TRUE(c.session->SetSystem("").ok());
  EXPECT_EQ(c.session->Messages().size(), 2u);

  const Status bad = c.session->SetMessages(ordered_json::parse(R"([{"role": "user", "content": "a"}, {"content": 3}])"));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("message 1"), std::string::npos) << bad.message();
  EXPECT_FALSE(c.session->SetMessages(ordered_json::object()).ok());
}

TEST(ChatSession, SameSeedSameConversation) {
  Chat a = Open("tiny-qwen3", Short(), 4096, 5), b = Open("tiny-qwen3", Short(), 4096, 5),
       other = Open("tiny-qwen3", Short(), 4096, 6);
  for (const char* message : {"first", "second"}) {
    const std::string ra = Send(*a.session, message).text;
    EXPECT_EQ(ra, Send(*b.session, message).text);
    EXPECT_NE(ra, Send(*other.session, message).text);
  }
}

TEST(ChatSession, CancelStopsTheReplyAndKeepsWhatWasShown) {
  ChatOptions options;
  options.max_new_tokens = 200;
  Chat c = Open("tiny-qwen3", options);
  std::atomic<bool> cancel{false};
  std::string shown;
  int pieces = 0;
  auto stats = c.session->Send("go", [&](const ReplyPiece& p) {
    shown += p.text;
    if (++pieces == 3) cancel = true;
  }, &cancel);
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->stopped_by_callback);
  EXPECT_LT(stats->generated_tokens, 200);
  EXPECT_EQ(c.session->Messages().back()["content"], shown);
  // The conversation goes on.
  EXPECT_GT(Send(*c.session, "again").stats.generated_tokens, 0);
}

TEST(ChatSession, RawCompletionWithoutTemplate) {
  Chat c = Open("stories260k");
  const Reply r = Send(*c.session, "Once upon a time");
  const auto ids = c.tokenizer->Encode("Once upon a time", /*add_special_tokens=*/true);
  EXPECT_EQ(r.stats.prompt_tokens, static_cast<int64_t>(ids->size()));
  EXPECT_GT(r.stats.generated_tokens, 0);
  EXPECT_FALSE(r.text.empty());
}

TEST(ChatSession, ContextThatFillsWrapsAndTheChatGoesOn) {
  ChatOptions options;
  options.max_new_tokens = 24;
  Chat c = Open("tiny-qwen3", options, /*ctx=*/64);
  EXPECT_EQ(c.session->context_window(), 64);
  for (int turn = 0; turn < 5; ++turn) Send(*c.session, "Tell me a long story about turn " + std::to_string(turn));
  EXPECT_TRUE(c.session->context_wrapped());
  EXPECT_GT(c.session->context_position(), 64);
  EXPECT_GT(Send(*c.session, "still there?").stats.generated_tokens, 0);
}

}  // namespace
}  // namespace oko
