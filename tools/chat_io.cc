#include "tools/chat_io.h"

#include <fmt/format.h>

#include <cmath>

namespace oko {

namespace {
constexpr std::string_view kDim = "\x1b[2m", kNormal = "\x1b[0m";
}  // namespace

std::vector<CLI::Option*> ChatFlags::Add(CLI::App* app) {
  return {app->add_option("--system", system, "system prompt (default: none)"),
          app->add_flag("--no-thinking", no_thinking, "pass enable_thinking=false to the chat template (Qwen3)"),
          app->add_flag("--hide-thinking", hide_thinking, "do not print the <think> part of replies")};
}

Result<OpenedChat> OpenChat(const EngineFlags& engine, const SamplingFlags& sampling, const ChatFlags& chat,
                            int64_t max_new_tokens) {
  OpenedChat c;
  OKO_ASSIGN_OR_RETURN(EngineOptions options, engine.ToOptions());
  OKO_ASSIGN_OR_RETURN(c.context, OpenContext(engine.model_dir, options, engine.CtxWhat()));
  OKO_ASSIGN_OR_RETURN(c.tokenizer, Tokenizer::Load(engine.model_dir));
  // Every message is encoded inside the chat session: an id past the model's vocabulary
  // would stop the engine, so a tokenizer larger than the model is refused up front.
  if (c.tokenizer->vocab_size() > c.context->config().vocab_size)
    return Errorf("{}: tokenizer.json has {} tokens, more than vocab_size {} of config.json (the tokenizer does not "
                  "belong to this model)",
                  engine.model_dir, c.tokenizer->vocab_size(), c.context->config().vocab_size);
  std::optional<ChatTemplate> chat_template;
  if (auto t = ChatTemplate::LoadFromDir(engine.model_dir); t.ok()) {
    chat_template = std::move(t.value());
  } else {
    c.no_template_reason = t.status().message();
  }
  ChatOptions chat_options;
  chat_options.enable_thinking = !chat.no_thinking;
  chat_options.max_new_tokens = max_new_tokens;
  c.session = std::make_unique<ChatSession>(*c.context, *c.tokenizer, std::move(chat_template),
                                            sampling.Resolve(c.context->config().generation), chat_options);
  if (Status s = c.session->SetSystem(chat.system); !s.ok()) return Errorf("--system: {}", s.message());
  return c;
}

void ReplyPrinter::Write(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

void ReplyPrinter::Print(const ReplyPiece& piece) {
  if (piece.channel == ReplyChannel::kThinking) {
    if (hide_thinking_) return;
    if (!in_thinking_) Write(terminal_ ? kDim : "<think>\n");
    in_thinking_ = true;
  } else if (in_thinking_) {
    Write(terminal_ ? fmt::format("{}\n\n", kNormal) : "\n</think>\n\n");
    in_thinking_ = false;
  }
  Write(piece.text);
}

void ReplyPrinter::Finish() {
  if (in_thinking_) Write(terminal_ ? kNormal : "\n</think>");
  in_thinking_ = false;
  Write("\n");
}

std::string FormatStats(const GenerationStats& s) {
  // A rate over less than two tokens or no time is no rate: "—".
  const auto rate = [](int64_t tokens, double per_second) {
    return tokens > 1 && per_second > 0 && std::isfinite(per_second) ? fmt::format("{:.1f} tok/s", per_second)
                                                                      : std::string("— tok/s");
  };
  const std::string reused = s.prefilled_tokens == s.prompt_tokens
                                 ? ""
                                 : fmt::format(" ({} prefilled, {} from the cache)", s.prefilled_tokens,
                                               s.prompt_tokens - s.prefilled_tokens);
  return fmt::format("prompt {} token{}{}, {} | generated {} token{}, {} | first token {:.0f} ms", s.prompt_tokens,
                     s.prompt_tokens == 1 ? "" : "s", reused, rate(s.prefilled_tokens, s.PrefillTokensPerSecond()),
                     s.generated_tokens, s.generated_tokens == 1 ? "" : "s",
                     rate(s.generated_tokens, s.DecodeTokensPerSecond()), s.first_token_seconds * 1e3);
}

}  // namespace oko
