// What `oko chat` and `oko run --chat` share: their flags, opening a model folder as a
// chat session, printing a reply (the reasoning set apart), the speed line.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "engine/chat_session.h"
#include "tools/engine_flags.h"

namespace oko {

struct ChatFlags {
  std::string system;
  bool no_thinking = false;
  bool hide_thinking = false;

  // Returns the options, so that `oko run` can make them need --chat.
  std::vector<CLI::Option*> Add(CLI::App* app);
};

struct OpenedChat {
  std::unique_ptr<Context> context;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatSession> session;  // declared last: destroyed before what it uses
  std::string no_template_reason;        // set when the session is raw completion
};

// Loads the model, tokenizer and chat template of `engine.model_dir`. A folder whose
// template cannot be loaded opens in raw completion mode, with the reason.
Result<OpenedChat> OpenChat(const EngineFlags& engine, const SamplingFlags& sampling,
                            const ChatFlags& chat, int64_t max_new_tokens);

// Prints a reply as it streams. The reasoning is dimmed on a terminal, kept between
// <think> tags elsewhere (so scripts can strip it), or left out with hide_thinking.
class ReplyPrinter {
 public:
  ReplyPrinter(std::FILE* out, bool terminal, bool hide_thinking)
      : out_(out), terminal_(terminal), hide_thinking_(hide_thinking) {}
  void Print(const ReplyPiece& piece);
  // Closes an open reasoning block and ends the line.
  void Finish();

 private:
  void Write(std::string_view text);

  std::FILE* out_;
  bool terminal_, hide_thinking_;
  bool in_thinking_ = false;
};

// "prompt 57 tokens (12 prefilled, 45 from the cache), 1234.5 tok/s | generated 20 tokens, 456.7 tok/s | first token 12 ms"
std::string FormatStats(const GenerationStats& s);

}  // namespace oko
