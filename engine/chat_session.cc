#include "engine/chat_session.h"

#include <algorithm>

#include "loaders/utf8.h"

namespace oko {

using ordered_json = nlohmann::ordered_json;

namespace {

ordered_json Message(std::string_view role, std::string_view content) {
  return ordered_json{{"role", role}, {"content", content}};
}

// The end-of-turn token is whatever special token the template writes right after an
// assistant message (<|im_end|> for ChatML, <|eot_id|> for Llama 3, </s> for Llama 2):
// found by rendering a probe reply, so no list of names is needed.
std::optional<int32_t> EndOfTurnId(const Tokenizer& tokenizer, const ChatTemplate& chat_template) {
  constexpr std::string_view kProbe = "oko-probe-reply";
  ordered_json probe = ordered_json::object();
  probe["messages"] = ordered_json::array({Message("user", "hi"), Message("assistant", kProbe)});
  const auto rendered = chat_template.Render(probe);
  if (!rendered.ok()) return std::nullopt;
  const size_t at = rendered->find(kProbe);
  if (at == std::string::npos) return std::nullopt;
  std::string after = rendered->substr(at + kProbe.size());
  after.erase(0, after.find_first_not_of(" \n"));
  const auto ids = tokenizer.Encode(after, /*add_special_tokens=*/false);
  if (!ids.ok() || ids->empty() || !tokenizer.IsSpecial(ids->front())) return std::nullopt;
  return ids->front();
}

}  // namespace

std::vector<int32_t> ChatStopIds(const ModelConfig& config, const Tokenizer& tokenizer,
                                 const ChatTemplate* chat_template) {
  std::vector<int32_t> ids(config.eos_token_ids.begin(), config.eos_token_ids.end());
  if (auto eos = tokenizer.eos_id()) ids.push_back(*eos);
  if (chat_template != nullptr)
    if (auto end_of_turn = EndOfTurnId(tokenizer, *chat_template)) ids.push_back(*end_of_turn);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

bool PromptOpensThinking(std::string_view prompt) {
  const size_t end = prompt.find_last_not_of(" \n");
  const std::string_view tag = "<think>";
  return end != std::string::npos && end + 1 >= tag.size() && prompt.substr(end + 1 - tag.size(), tag.size()) == tag;
}

ChatSession::ChatSession(Context& context, const Tokenizer& tokenizer, std::optional<ChatTemplate> chat_template,
                         const SamplerOptions& sampling, ChatOptions options)
    : context_(context),
      tokenizer_(tokenizer),
      template_(std::move(chat_template)),
      options_(std::move(options)),
      sampler_(sampling),
      generator_(context) {
  generate_.max_new_tokens = options_.max_new_tokens;
  generate_.stop_ids = ChatStopIds(context.config(), tokenizer, template_ ? &*template_ : nullptr);
}

ordered_json ChatSession::Messages() const {
  ordered_json all = ordered_json::array();
  if (!options_.system.empty()) all.push_back(Message("system", options_.system));
  for (const auto& m : turns_) all.push_back(m);
  return all;
}

Status ChatSession::SetMessages(const ordered_json& messages) {
  if (!messages.is_array()) return Status::Error("expected a list of messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const ordered_json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return Errorf("message {}: expected an object with a string 'role'", i);
    if (!m.contains("content") || !(m["content"].is_string() || m["content"].is_null()))
      return Errorf("message {}: 'content' must be a string (or null)", i);
  }
  const bool has_system = !messages.empty() && messages[0]["role"] == "system" && messages[0]["content"].is_string();
  options_.system = has_system ? messages[0]["content"].get<std::string>() : "";
  turns_ = ordered_json::array();
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) turns_.push_back(messages[i]);
  return {};
}

ordered_json ChatSession::PromptVariables(std::string_view user_text) const {
  ordered_json variables = {{"messages", Messages()}, {"add_generation_prompt", true}};
  variables["messages"].push_back(Message("user", user_text));
  if (!options_.enable_thinking) variables["enable_thinking"] = false;
  return variables;
}

Result<std::string> ChatSession::RenderPrompt(std::string_view user_text) const {
  if (!template_) return std::string(user_text);
  return template_->Render(PromptVariables(user_text));
}

const std::vector<TokenTag>& ChatSession::TokenTags() const {
  if (tags_) return *tags_;
  const std::vector<int32_t>& ids = cached_tokens();
  std::vector<TokenTag>& tags = tags_.emplace(ids.size());
  const size_t prompt = std::min(last_prompt_tokens_, ids.size());
  if (template_) {
    auto tagged = TagRenderedTokens(*template_, tokenizer_, last_variables_, std::span(ids).first(prompt));
    if (tagged.ok()) std::copy(tagged->begin(), tagged->end(), tags.begin());
  } else {  // raw completion: the message and the tokenizer's own BOS
    for (size_t k = 0; k < prompt; ++k)
      tags[k] = {last_user_turn_, tokenizer_.IsSpecial(ids[k]) ? kTemplateRole : "user"};
  }
  for (size_t k = prompt; k < ids.size(); ++k)
    tags[k] = {last_user_turn_ + 1, tokenizer_.IsSpecial(ids[k]) ? kTemplateRole : "assistant"};
  return *tags_;
}

Result<std::vector<int32_t>> ChatSession::Tokenize(std::string_view user_text, bool* start_thinking) const {
  OKO_ASSIGN_OR_RETURN(std::string prompt, RenderPrompt(user_text));
  *start_thinking = template_ && PromptOpensThinking(prompt);
  // A rendered template already holds its BOS and role tokens; a raw prompt gets the
  // tokenizer's own (add_special_tokens), as transformers does in both cases.
  OKO_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer_.Encode(prompt, /*add_special_tokens=*/raw_completion()));
  if (ids.empty()) return Status::Error("the message has no tokens");
  for (int32_t id : ids)
    if (id >= context_.config().vocab_size)
      return Errorf("token id {} of the prompt is outside the model's vocabulary [0, {})", id,
                    context_.config().vocab_size);
  return ids;
}

namespace {
// Names the byte within the text the user typed, not within the rendered prompt.
Status CheckUtf8(std::string_view text, std::string_view what) {
  if (const size_t bad = utf8::FirstInvalidByte(text); bad != std::string_view::npos)
    return Errorf("{} is not valid UTF-8: byte 0x{:02X} at offset {}", what,
                  static_cast<unsigned char>(text[bad]), bad);
  return {};
}
}  // namespace

Status ChatSession::SetSystem(std::string system) {
  OKO_RETURN_IF_ERROR(CheckUtf8(system, "the system prompt"));
  options_.system = std::move(system);
  return {};
}

Result<GenerationStats> ChatSession::Send(std::string_view user_text, const PieceCallback& on_piece,
                                          const std::atomic<bool>* cancel) {
  OKO_RETURN_IF_ERROR(CheckUtf8(options_.system, "the system prompt"));
  OKO_RETURN_IF_ERROR(CheckUtf8(user_text, "the message"));
  bool start_thinking = false;
  OKO_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, Tokenize(user_text, &start_thinking));
  ThinkingSplitter splitter(tokenizer_, start_thinking);
  std::vector<int32_t> reply;
  std::vector<ReplyPiece> pieces;
  auto emit = [&] {
    for (const ReplyPiece& p : pieces) on_piece(p);
    pieces.clear();
  };
  const auto& stops = generate_.stop_ids;
  const GenerationStats stats = generator_.Generate(prompt, generate_, sampler_, [&](int32_t id) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) return false;
    if (std::binary_search(stops.begin(), stops.end(), id)) return true;  // ends the turn, unseen
    reply.push_back(id);
    splitter.Push(id, &pieces);
    emit();
    return true;
  });
  splitter.Flush(&pieces);
  emit();

  tags_.reset();
  last_variables_ = template_ ? PromptVariables(user_text) : ordered_json();
  last_prompt_tokens_ = prompt.size();
  last_user_turn_ = static_cast<int64_t>(Messages().size());
  // The reply as the model wrote it, <think> block included: the template decides what
  // of it later turns see.
  turns_.push_back(Message("user", user_text));
  turns_.push_back(Message("assistant", tokenizer_.Decode(reply, /*skip_special=*/true)));
  last_stats_ = stats;
  ++totals_.turns;
  totals_.prompt_tokens += stats.prompt_tokens;
  totals_.prefilled_tokens += stats.prefilled_tokens;
  totals_.generated_tokens += stats.generated_tokens;
  totals_.model_seconds += stats.prefill_seconds + stats.decode_seconds;
  return stats;
}

}  // namespace oko
