// oko run -m DIR (-p PROMPT | -f FILE | --ids 1,2,3) [-n N] [sampling flags] [--chat]: raw
// completion, or with --chat one chat turn through the model's own template (the prompt
// is the user message). Streamed as it is generated; the speed goes to stderr as the
// last line (with --verbose, also the sampling settings and why generation stopped).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "common/limits.h"
#include "common/mapped_file.h"
#include "engine/generator.h"
#include "loaders/tokenizer.h"
#include "tools/chat_io.h"
#include "tools/command.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"
#include "tools/intervention_compare.h"
#include "tools/token_ids.h"

namespace oko {
namespace {

struct RunOptions {
  EngineFlags engine;
  InterventionFlags interventions;
  SamplingFlags sampling;
  ChatFlags chat;
  bool as_chat = false, verbose = false, ids_given = false, compare = false;
  std::string prompt, ids, file;
  int64_t max_new_tokens = 256;
};

// Ctrl-C stops generation; the text so far and the speed line are still printed.
volatile std::sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

// False once stdout cannot be written (a full disk, a closed pipe): no use generating on.
bool Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 && !std::ferror(stdout);
}

void PrintSpeed(const GenerationStats& s) { std::fprintf(stderr, "%s\n", FormatStats(s).c_str()); }

Result<std::string> PromptText(const RunOptions& o) {
  if (o.file.empty()) return o.prompt;
  if (o.file == "-") return ReadStreamToString(std::cin, "stdin", kMaxStdinTextBytes);
  return ReadFileToString(o.file, kMaxStdinTextBytes);
}

Status RunChatTurn(const RunOptions& o) {
  OKO_ASSIGN_OR_RETURN(const std::string text, PromptText(o));
  OKO_ASSIGN_OR_RETURN(OpenedChat chat, OpenChat(o.engine, o.sampling, o.chat, o.max_new_tokens));
  if (chat.session->raw_completion()) return Status::Error(chat.no_template_reason);
  OKO_RETURN_IF_ERROR(o.interventions.ApplyTo(*chat.context));
  ReplyPrinter printer(stdout, ::isatty(STDOUT_FILENO), o.chat.hide_thinking);
  OKO_ASSIGN_OR_RETURN(GenerationStats s, chat.session->Send(text, [&](const ReplyPiece& p) { printer.Print(p); }));
  printer.Finish();
  PrintSpeed(s);
  return {};
}

Result<std::vector<int32_t>> PromptIds(const RunOptions& o, const Tokenizer& tokenizer, int64_t vocab_size) {
  if (o.ids_given) {
    OKO_ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseTokenIds(o.ids));
    OKO_RETURN_IF_ERROR(CheckTokenRange(ids, vocab_size, "--ids"));
    return ids;
  }
  const char* source = o.file.empty() ? "-p" : "-f";
  OKO_ASSIGN_OR_RETURN(const std::string text, PromptText(o));
  auto encoded = tokenizer.Encode(text);
  if (!encoded.ok()) return encoded.status().WithContext(source);
  OKO_RETURN_IF_ERROR(CheckTokenRange(*encoded, vocab_size, source));
  return std::move(encoded).value();
}

// Why generation ended, for --verbose.
std::string StopReason(const GenerationStats& s, int64_t max_new_tokens, bool output_failed) {
  if (output_failed) return "stdout cannot be written";
  if (g_interrupted) return "interrupted (Ctrl-C)";
  if (s.stopped_by_eos) return "end of text (an EOS token)";
  return fmt::format("-n {} tokens generated", max_new_tokens);
}

// The prompt's continuation from a fresh cache under the context's interventions (the
// same seed each time, so only they differ), and its first next-token logits.
std::vector<int32_t> Continue(Context& context, std::span<const int32_t> prompt, const SamplerOptions& sampling,
                              const GenerateOptions& gen, std::vector<float>* first_logits) {
  context.Reset();
  context.Forward(prompt, Logits::kLast, first_logits);
  context.Reset();
  Sampler sampler(sampling);
  std::vector<int32_t> ids;
  Generator(context).Generate(prompt, gen, sampler, [&](int32_t id) {
    ids.push_back(id);
    return !g_interrupted;
  });
  return ids;
}

// --compare: the same prompt without and with the interventions (one load): the next
// token's distributions, then both continuations side by side.
Status RunCompare(Context& context, const Tokenizer& tokenizer,
                  std::span<const int32_t> prompt, const SamplerOptions& sampling, const GenerateOptions& gen) {
  const auto iv = context.interventions();
  if (iv == nullptr) return Status::Error("--compare needs an intervention flag", ExitCode::kUsage);
  std::vector<float> first_without, first_with;
  context.set_interventions(nullptr);
  std::signal(SIGINT, OnInterrupt);
  const std::vector<int32_t> without = Continue(context, prompt, sampling, gen, &first_without);
  context.set_interventions(iv);
  const std::vector<int32_t> with = Continue(context, prompt, sampling, gen, &first_with);
  std::signal(SIGINT, SIG_DFL);
  std::string with_title = "with";
  for (const std::string& d : iv->descriptions()) with_title += " " + d;
  const std::string report =
      tokenizer.Decode(prompt, /*skip_special=*/true) + "\n\n" +
      FormatComparison(CompareNextToken(first_without.data(), first_with.data(), context.config().vocab_size),
                       &tokenizer) +
      "\n" +
      SideBySide("without", tokenizer.Decode(without, true), with_title, tokenizer.Decode(with, true));
  if (!Print(report)) return RuntimeErrorf("cannot write to stdout");
  return {};
}

Status RunRun(const RunOptions& o) {
  if (o.as_chat) return RunChatTurn(o);
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(o.engine.model_dir, options, o.engine.CtxWhat()));
  OKO_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(o.engine.model_dir));
  OKO_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, PromptIds(o, *tokenizer, context->config().vocab_size));
  if (prompt.empty()) return Errorf("the prompt has no tokens");
  OKO_RETURN_IF_ERROR(o.interventions.ApplyTo(*context, tokenizer.get(), prompt));
  OKO_RETURN_IF_ERROR(CheckPromptFits(*context, static_cast<int64_t>(prompt.size())));

  const SamplerOptions sampling = o.sampling.Resolve(context->config().generation);
  if (o.verbose) std::fprintf(stderr, "sampling: %s\n", FormatSampling(sampling).c_str());
  Sampler sampler(sampling);
  GenerateOptions gen;
  gen.max_new_tokens = o.max_new_tokens;
  gen.stop_ids.assign(context->config().eos_token_ids.begin(), context->config().eos_token_ids.end());
  if (auto eos = tokenizer->eos_id()) gen.stop_ids.push_back(*eos);
  if (o.compare) return RunCompare(*context, *tokenizer, prompt, sampling, gen);

  // The prompt goes through the same detokenizer so that the first generated token is
  // decoded in context (SentencePiece strips the space of a text's first word only).
  StreamingDetokenizer detok(*tokenizer, /*skip_special=*/true);
  bool output_ok = true;
  for (int32_t id : prompt) output_ok = output_ok && Print(detok.Push(id));
  Generator generator(*context);
  std::signal(SIGINT, OnInterrupt);
  const GenerationStats s = generator.Generate(prompt, gen, sampler, [&](int32_t id) {
    output_ok = output_ok && Print(detok.Push(id));
    return output_ok && !g_interrupted;
  });
  std::signal(SIGINT, SIG_DFL);
  Print(detok.Flush() + "\n");
  if (s.context_wrapped)
    std::fprintf(stderr,
                 "oko run: the context of %lld positions filled up: the KV cache became a ring and the oldest "
                 "tokens fell out of attention (raise -c to keep them)\n",
                 static_cast<long long>(context->kv_cache().capacity()));
  PrintSpeed(s);
  if (o.verbose) std::fprintf(stderr, "stopped: %s\n", StopReason(s, o.max_new_tokens, !output_ok).c_str());
  return {};
}

}  // namespace

Subcommand AddRunCommand(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* app = root.add_subcommand("run", "Complete a prompt, streaming the text");
  o->engine.Add(app);
  o->interventions.Add(app, /*with_text=*/true);
  o->sampling.Add(app);
  auto* p = app->add_option("-p,--prompt", o->prompt, "prompt text");
  auto* f = AddInputFileFlag(app, "-f,--file", &o->file, /*allow_stdin=*/true, "prompt text from a file (-: stdin)");
  auto* ids = app->add_option("--ids", o->ids, "prompt as comma-separated token ids, e.g. 1,2,3 or [1, 2, 3]");
  p->excludes(ids)->excludes(f);
  f->excludes(ids);
  auto* chat = app->add_flag("--chat", o->as_chat,
                             "one chat turn: the prompt is a user message rendered by the chat template")
                   ->excludes(ids);
  for (CLI::Option* flag : o->chat.Add(app)) flag->needs(chat);
  app->add_flag("--compare", o->compare,
                "run the prompt without and with the interventions: KL divergence and top-5 of the next token, "
                "both continuations side by side")
      ->excludes(chat);
  AddIntFlag(app, "-n,--n-predict", &o->max_new_tokens, {0, kMaxTokenCount}, "tokens to generate (default: 256)");
  app->add_flag("-v,--verbose", o->verbose, "also print the seed and sampling settings, and why generation stopped (stderr)");
  AddExamples(app, {"oko run -m ../shared/models/stories260k -p \"Once upon a time\" --seed 42",
                    "oko run -m DIR -f prompt.txt -n 64 --temp 0 --verbose",
                    "oko run -m ../shared/models/tiny-qwen3 --chat -p \"Hi!\" --no-thinking"});
  return {app, [o, p, ids, f]() -> Status {
            if (p->count() == 0 && ids->count() == 0 && f->count() == 0)
              return Status::Error("give -p PROMPT, -f FILE or --ids", ExitCode::kUsage);
            o->ids_given = ids->count() > 0;
            return RunRun(*o);
          }};
}

}  // namespace oko
