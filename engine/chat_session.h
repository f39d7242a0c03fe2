// ChatSession: a conversation with a model through the model's own chat template.
//
// Every turn renders the whole conversation, so the template alone decides what the
// history looks like (Qwen3 drops the reasoning of earlier turns, exactly as
// transformers' apply_chat_template would), and hands the ids to the Generator, whose
// prefix reuse then prefills only the tokens that changed since the cache was filled:
// the previous reply as the template rewrites it, the new user message and the
// generation prompt.
//
// Without a template (base models such as stories260k) it is raw completion: every
// message is a prompt of its own, tokenized with the tokenizer's BOS.
#pragma once

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/chat_tags.h"
#include "engine/generator.h"
#include "engine/thinking_splitter.h"
#include "loaders/chat_template.h"
#include "loaders/tokenizer.h"

namespace oko {

struct ChatOptions {
  std::string system;           // "" = no system message
  bool enable_thinking = true;  // false passes enable_thinking=false to the template
  int64_t max_new_tokens = 4096;
};

// Receives the reply as it is decoded, piece by piece.
using PieceCallback = std::function<void(const ReplyPiece& piece)>;

struct ChatTotals {
  int64_t turns = 0;
  int64_t prompt_tokens = 0;     // rendered, summed over turns
  int64_t prefilled_tokens = 0;  // of which computed
  int64_t generated_tokens = 0;
  double model_seconds = 0;      // prefill and decode time, summed over turns
};

// The ids that end a reply: every eos id of config.json and generation_config.json, the
// tokenizer's eos token and the template's end-of-turn token (sorted, no repeats).
std::vector<int32_t> ChatStopIds(const ModelConfig& config, const Tokenizer& tokenizer,
                                 const ChatTemplate* chat_template);
// Whether a rendered prompt leaves a <think> block open for the model to continue.
bool PromptOpensThinking(std::string_view prompt);

class ChatSession {
 public:
  // `chat_template` unset: raw completion. The context and tokenizer must outlive the
  // session, which runs the conversation in that context.
  ChatSession(Context& context, const Tokenizer& tokenizer, std::optional<ChatTemplate> chat_template,
              const SamplerOptions& sampling, ChatOptions options);

  // One turn: the user message in, the reply streamed to `on_piece`. When `cancel`
  // becomes true the reply stops before the next token; what was shown stays in the
  // transcript. Errors (a template that raises, text that is not UTF-8) leave the
  // conversation as it was.
  Result<GenerationStats> Send(std::string_view user_text, const PieceCallback& on_piece,
                               const std::atomic<bool>* cancel = nullptr);

  // Forgets the turns; keeps the system prompt. The cache keeps what still matches.
  void Reset() { turns_ = nlohmann::ordered_json::array(); }
  // Refuses text that is not valid UTF-8 (and keeps the old prompt).
  Status SetSystem(std::string system);
  const std::string& system() const { return options_.system; }
  // The transcript as chat messages: the system message (when set), then the turns.
  nlohmann::ordered_json Messages() const;
  // Replaces the conversation with `messages`, a list of {"role", "content"} objects
  // (other keys are kept for the template); a leading system message becomes the
  // system prompt. Errors name the bad message.
  Status SetMessages(const nlohmann::ordered_json& messages);

  // The prompt the next turn would render for `user_text` (what Send tokenizes).
  Result<std::string> RenderPrompt(std::string_view user_text) const;
  // For every position of cached_tokens(), the message it belongs to (its index in the
  // messages of the last turn's prompt, as Messages() listed them then plus the reply)
  // and its role: "system", "user", "assistant" for content, "template" for the
  // scaffolding around it and for special tokens (engine/chat_tags.h). Renders the
  // template a few times per message (0.2 s for 40 messages of tiny-qwen3), once per
  // turn: later calls reuse the result until the next Send.
  const std::vector<TokenTag>& TokenTags() const;
  bool raw_completion() const { return !template_.has_value(); }
  const std::vector<int32_t>& stop_ids() const { return generate_.stop_ids; }
  const std::optional<GenerationStats>& last_stats() const { return last_stats_; }
  const ChatTotals& totals() const { return totals_; }
  // The ids whose keys and values the cache holds.
  const std::vector<int32_t>& cached_tokens() const { return context_.tokens(); }
  // Positions run so far in this cache, and how many attention sees at once. Past the
  // window the KV ring overwrites the oldest positions and the chat goes on.
  int64_t context_position() const { return context_.position(); }
  int64_t context_window() const { return context_.kv_cache().window(); }
  bool context_wrapped() const { return context_position() > context_window(); }

 private:
  nlohmann::ordered_json PromptVariables(std::string_view user_text) const;
  Result<std::vector<int32_t>> Tokenize(std::string_view user_text, bool* start_thinking) const;

  Context& context_;
  const Tokenizer& tokenizer_;
  std::optional<ChatTemplate> template_;
  ChatOptions options_;
  Sampler sampler_;
  Generator generator_;
  GenerateOptions generate_;
  nlohmann::ordered_json turns_ = nlohmann::ordered_json::array();
  std::optional<GenerationStats> last_stats_;
  ChatTotals totals_;
  // What the cache holds came from: the last turn's template variables (or its raw
  // prompt), how many of its tokens are prompt, and its user message's index.
  nlohmann::ordered_json last_variables_;
  size_t last_prompt_tokens_ = 0;
  int64_t last_user_turn_ = -1;
  mutable std::optional<std::vector<TokenTag>> tags_;  // TokenTags() of the cache as it is
};

}  // namespace oko
