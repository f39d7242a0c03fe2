// oko run -m DIR (-p PROMPT | --ids 1,2,3) [-n N] [sampling flags] [--chat]: raw
// completion, or with --chat one chat turn through the model's own template (the prompt
// is the user message). Streamed as it is generated; the speed goes to stderr as the
// last line.
#include <unistd.h>

#include <cstdio>

#include "engine/generator.h"
#include "loaders/tokenizer.h"
#include "tools/chat_io.h"
#include "tools/command.h"
#include "tools/engine_flags.h"

namespace oko {
namespace {

struct RunOptions {
  EngineFlags engine;
  SamplingFlags sampling;
  ChatFlags chat;
  bool as_chat = false;
  std::string prompt, ids;
  int64_t max_new_tokens = 256;
};

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void PrintSpeed(const GenerationStats& s) { std::fprintf(stderr, "%s\n", FormatStats(s).c_str()); }

Status RunChatTurn(const RunOptions& o) {
  OKO_ASSIGN_OR_RETURN(OpenedChat chat, OpenChat(o.engine, o.sampling, o.chat, o.max_new_tokens));
  if (chat.session->raw_completion()) return Status::Error(chat.no_template_reason);
  ReplyPrinter printer(stdout, ::isatty(STDOUT_FILENO), o.chat.hide_thinking);
  OKO_ASSIGN_OR_RETURN(GenerationStats s, chat.session->Send(o.prompt, [&](const ReplyPiece& p) { printer.Print(p); }));
  printer.Finish();
  PrintSpeed(s);
  return {};
}

Status RunRun(const RunOptions& o) {
  if (o.as_chat) return RunChatTurn(o);
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  OKO_ASSIGN_OR_RETURN(auto context, LoadContext(o.engine.model_dir, options));
  OKO_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(o.engine.model_dir));
  std::vector<int32_t> prompt;
  if (!o.ids.empty()) {
    OKO_ASSIGN_OR_RETURN(prompt, ParseIds(o.ids));
  } else {
    auto encoded = tokenizer->Encode(o.prompt);
    if (!encoded.ok()) return encoded.status().WithContext("-p");
    prompt = std::move(encoded).value();
  }
  if (prompt.empty()) return Status::Error("the prompt has no tokens", ExitCode::kUsage);
  OKO_RETURN_IF_ERROR(CheckPromptFits(*context, static_cast<int64_t>(prompt.size())));
  for (int32_t id : prompt)
    if (id >= context->config().vocab_size)
      return Errorf("--ids: token id {} is outside the vocabulary [0, {})", id, context->config().vocab_size);

  Sampler sampler(o.sampling.Resolve(context->config().generation));
  GenerateOptions gen;
  gen.max_new_tokens = o.max_new_tokens;
  gen.stop_ids.assign(context->config().eos_token_ids.begin(), context->config().eos_token_ids.end());
  if (auto eos = tokenizer->eos_id()) gen.stop_ids.push_back(*eos);

  // The prompt goes through the same detokenizer so that the first generated token is
  // decoded in context (SentencePiece strips the space of a text's first word only).
  StreamingDetokenizer detok(*tokenizer, /*skip_special=*/true);
  for (int32_t id : prompt) Print(detok.Push(id));
  Generator generator(*context);
  const GenerationStats s = generator.Generate(prompt, gen, sampler, [&](int32_t id) {
    Print(detok.Push(id));
    return true;
  });
  Print(detok.Flush() + "\n");
  PrintSpeed(s);
  return {};
}

}  // namespace

Subcommand AddRunCommand(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* app = root.add_subcommand("run", "Complete a prompt, streaming the text");
  o->engine.Add(app);
  o->sampling.Add(app);
  auto* p = app->add_option("-p,--prompt", o->prompt, "prompt text");
  auto* ids = app->add_option("--ids", o->ids, "prompt as comma-separated token ids");
  p->excludes(ids);
  app->add_flag("--chat", o->as_chat, "one chat turn: the prompt is a user message rendered by the chat template")
      ->excludes(ids);
  o->chat.Add(app);
  app->add_option("-n,--n-predict", o->max_new_tokens, "tokens to generate")->check(CLI::NonNegativeNumber);
  return {app, [o, p, ids]() -> Status {
            if (p->count() == 0 && ids->count() == 0)
              return Status::Error("run: give -p PROMPT or --ids", ExitCode::kUsage);
            return RunRun(*o);
          }};
}

}  // namespace oko
