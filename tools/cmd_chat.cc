// oko chat -m DIR [sampling flags] [--system S] [--no-thinking] [--hide-thinking] [-n N]:
// a conversation through the model's own chat template (engine/chat_session.h).
// On a terminal: libedit line editing and history, multi-line input, slash commands,
// Ctrl-C stops the answer, Ctrl-D exits. Otherwise stdin holds one message a line and
// each reply is printed as one block ending in a newline, for scripts.
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/mapped_file.h"
#include "loaders/model_dir.h"
#include "engine/machine_limits.h"
#include "engine/profile_report.h"
#include "engine/trace_recorder.h"
#include "tools/chat_io.h"
#include "tools/command.h"
#include "tools/flags.h"
#include "tools/resources.h"
#include "tools/line_editor.h"
#include "tools/lora_drift.h"
#include "tools/trace_show.h"

namespace oko {
namespace {

struct ChatArgs {
  EngineFlags engine;
  InterventionFlags interventions;
  SamplingFlags sampling;
  ChatFlags chat;
  int64_t max_new_tokens = 4096;
  bool record_attention = false;
  bool profile = false;
};

constexpr std::string_view kHelp =
    "Type a message and press Enter. End a line with \\ to continue on the next, or put\n"
    "\"\"\" alone on a line to open and to close a multi-line block.\n"
    "  /help           this text\n"
    "  /reset          forget the conversation (the system prompt stays)\n"
    "  /system TEXT    set the system prompt (/system alone clears it)\n"
    "  /stats          speed of the last turn, tokens prefilled vs reused, context use\n"
    "  /save FILE      write the conversation as a JSON list of messages\n"
    "  /load FILE      continue a conversation saved with /save\n"
    "  /attn [L] [H]   where the last answer's tokens looked: layer L (default the last),\n"
    "                  head H (default the average of the heads)\n"
    "  /trace FILE     write the session's attention trace (.safetensors, docs/TRACES.md)\n"
    "  /profile        where the time went per op since the last /profile (the first one\n"
    "                  turns the profiler on); /profile off turns it off\n"
    "  /lora           the --lora adapters and their scales; /lora NAME SCALE rescales one\n"
    "                  (0 switches it off), /lora off switches all off\n"
    "  /drift [L] [H]  what the adapters did to the last answer's attention, residual\n"
    "                  stream and next token (the conversation run with them and without)\n"
    "  /ablate L.H[,...]         zero attention heads (as --ablate), e.g. /ablate 2.1,3.*\n"
    "  /knockout L:Q:K[;...]     remove attention edges (as --knockout), e.g. /knockout *:10-12:3-5\n"
    "  /emphasize KEYS [heads=L.H,...] [alpha=A]\n"
    "                  steer attention to the key positions KEYS (as --emphasize)\n"
    "  /steer FILE[:COEF]        add a steering vector to the residual (as --steer)\n"
    "  /interventions [off]      list the interventions in force, or clear them\n"
    "  /exit           leave (as Ctrl-D)\n"
    "Ctrl-C stops the current answer; Ctrl-D exits.\n";

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") + 1 - b);
}

// "~/c.json" -> "$HOME/c.json", as a shell would.
std::string ExpandHome(std::string_view path) {
  const char* home = std::getenv("HOME");
  if (home == nullptr || !(path == "~" || path.starts_with("~/"))) return std::string(path);
  return std::string(home) + std::string(path.substr(1));
}

// "12" -> 12; "" -> `fallback`.
Result<int64_t> ParseIndex(std::string_view s, int64_t fallback, const char* what,
                           const char* command = "/attn") {
  if (s.empty()) return fallback;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0)
    return Errorf("{}: {} '{}' is not a non-negative integer", command, what, s);
  return v;
}

class ChatCli {
 public:
  // Replies are styled for a terminal only when both ends are one. With
  // --record-attention every layer and head is recorded from the start: prefix reuse
  // runs each position once, so a later /attn or /trace can only show what was kept
  // when it ran. It is opt-in because it costs layers x heads x positions^2 / 2 halves
  // (stored as f16: Qwen3-0.6B's 28 layers x 16 heads hold about 0.5 GB over 1k positions,
  // 7.5 GB over 4k).
  ChatCli(OpenedChat chat, std::string model_name, bool interactive, bool hide_thinking,
          bool record_attention, bool profile, InterventionSpec interventions)
      : chat_(std::move(chat)),
        interventions_(std::move(interventions)),
        session_(*chat_.session),
        printer_(stdout, interactive && ::isatty(STDOUT_FILENO), hide_thinking),
        model_name_(std::move(model_name)) {
    interactive_ = interactive;
    if (profile) StartProfiler();
    if (!record_attention) return;
    TraceFilter keep_all;
    keep_all.store_f16 = true;  // half the memory; /trace writes f16
    recorder_ = std::make_unique<TraceRecorder>(chat_.context->config().num_layers,
                                                chat_.context->config().num_heads,
                                                chat_.context->kv_cache().sink(), keep_all);
    chat_.context->set_trace(recorder_.get());
  }
  ~ChatCli() {
    chat_.context->set_trace(nullptr);
    chat_.context->set_profiler(nullptr);
  }

  Status RunInteractive();
  Status RunScripted();

 private:
  void Say(std::string_view text);
  // Notices (the ring, a stop) go to stderr when stdout is a script's reply stream.
  void Notice(std::string_view text);
  void Greet();
  std::optional<std::string> ReadMessage();
  std::optional<std::string> ReadBlock();
  Status HandleLine(std::string_view line, bool* quit);
  Status HandleCommand(std::string_view name, std::string_view arg, bool* quit);
  Status Send(std::string_view text);
  void PrintStats();
  Status Save(const std::string& path);
  Status Load(const std::string& path);
  TraceWriteOptions TraceOptions() const;
  Status ShowAttention(std::string_view arg);
  Status WriteTrace(const std::string& path);
  void StartProfiler();
  Status Profile(std::string_view arg);
  Status Lora(std::string_view arg);
  Status Drift(std::string_view arg);
  Status ChangeInterventions(std::string_view name, std::string_view arg);
  Status SetInterventions(const InterventionSpec& spec);
  void ListInterventions();

  OpenedChat chat_;
  InterventionSpec interventions_;  // as the flags and the commands gave them
  ChatSession& session_;
  ReplyPrinter printer_;
  LineEditor* editor_ = nullptr;  // on a terminal only
  bool interactive_ = false;
  bool told_context_full_ = false;
  std::string model_name_;
  std::unique_ptr<TraceRecorder> recorder_;  // with --record-attention only
  std::unique_ptr<Profiler> profiler_;       // from --profile or the first /profile on
};

void ChatCli::Say(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void ChatCli::Notice(std::string_view text) {
  if (interactive_) return Say(text);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

void ChatCli::Greet() {
  const ModelConfig& c = chat_.context->config();
  Say(fmt::format("oko chat: {} ({} layers, context window {} positions)\n", c.model_type, c.num_layers,
                  session_.context_window()));
  if (session_.raw_completion())
    Say(fmt::format("No chat template in {}. Raw completion mode: each message is a prompt of its own, "
                    "continued as plain text.\n",
                    model_name_));
  Say("/help lists the commands; Ctrl-C stops an answer, Ctrl-D exits.\n");
}

// A message may span lines: "\" at the end of a line continues it; a line of """ opens
// a block that the next such line closes. nullopt at end of input; Ctrl-C drops the
// message being typed ("").
std::optional<std::string> ChatCli::ReadMessage() {
  TypedLine line = editor_->ReadLine("> ");
  if (line.kind != TypedLine::kText) return line.kind == TypedLine::kEnd ? std::nullopt : std::optional<std::string>("");
  if (Trim(line.text) == "\"\"\"") return ReadBlock();
  std::string text = std::move(line.text);
  while (!text.empty() && text.back() == '\\') {
    text.back() = '\n';
    TypedLine next = editor_->ReadLine("... ");
    if (next.kind == TypedLine::kEnd) return std::nullopt;
    if (next.kind == TypedLine::kInterrupted) return "";
    text += next.text;
  }
  return text;
}

std::optional<std::string> ChatCli::ReadBlock() {
  std::string text;
  for (;;) {
    TypedLine line = editor_->ReadLine("... ");
    if (line.kind == TypedLine::kEnd) return std::nullopt;
    if (line.kind == TypedLine::kInterrupted) return "";
    if (Trim(line.text) == "\"\"\"") return text;
    if (!text.empty()) text += '\n';
    text += line.text;
  }
}

Status ChatCli::RunInteractive() {
  LineEditor editor;
  editor_ = &editor;
  Greet();
  bool quit = false;
  while (!quit) {
    const std::optional<std::string> message = ReadMessage();
    if (!message) break;
    if (Trim(*message).empty()) continue;
    editor.AddHistory(*message);
    if (Status s = HandleLine(*message, &quit); !s.ok()) std::fprintf(stderr, "error: %s\n", s.message().c_str());
  }
  return {};
}

// One message a line. As on a terminal, an error is reported and the chat goes on (a
// script's later lines may not depend on it); the run then ends with the first error's
// exit status, so the script still learns of it (docs/CLI.md "oko chat").
Status ChatCli::RunScripted() {
  bool quit = false;
  Status first_error;
  for (std::string line; !quit && std::getline(std::cin, line);) {
    if (Trim(line).empty()) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Status s = HandleLine(line, &quit);
    if (s.ok()) continue;
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    if (first_error.ok()) first_error = Status::Error("the chat went on after: " + s.message(), s.code());
  }
  return first_error;
}

Status ChatCli::HandleLine(std::string_view line, bool* quit) {
  const std::string_view trimmed = Trim(line);
  if (trimmed.empty() || trimmed.front() != '/') return Send(line);
  const size_t space = trimmed.find_first_of(" \t");
  const std::string_view name = trimmed.substr(0, space);
  const std::string_view arg = space == std::string_view::npos ? "" : Trim(trimmed.substr(space));
  return HandleCommand(name, arg, quit);
}

Status ChatCli::HandleCommand(std::string_view name, std::string_view arg, bool* quit) {
  const bool takes_no_argument = name == "/help" || name == "/reset" || name == "/stats" || name == "/exit" ||
                                 name == "/quit";
  if (takes_no_argument && !arg.empty()) return Errorf("{} takes no argument (got '{}')", name, arg);
  if (name == "/help") {
    Say(kHelp);
  } else if (name == "/reset") {
    session_.Reset();
    Say("The conversation is cleared.\n");
  } else if (name == "/system") {
    OKO_RETURN_IF_ERROR(session_.SetSystem(std::string(arg)));
    Say(arg.empty() ? "The system prompt is cleared.\n" : "The system prompt is set.\n");
  } else if (name == "/stats") {
    PrintStats();
  } else if (name == "/save" || name == "/load") {
    if (arg.empty()) return Errorf("{} needs a file name", name);
    return name == "/save" ? Save(ExpandHome(arg)) : Load(ExpandHome(arg));
  } else if (name == "/attn") {
    return ShowAttention(arg);
  } else if (name == "/trace") {
    if (arg.empty()) return Errorf("/trace needs a file name");
    return WriteTrace(ExpandHome(arg));
  } else if (name == "/profile") {
    return Profile(arg);
  } else if (name == "/lora") {
    return Lora(arg);
  } else if (name == "/drift") {
    return Drift(arg);
  } else if (name == "/ablate" || name == "/knockout" || name == "/emphasize" || name == "/steer") {
    if (arg.empty()) return Errorf("{} needs a value (/help shows the syntax)", name);
    return ChangeInterventions(name, arg);
  } else if (name == "/interventions") {
    if (arg == "off") return SetInterventions({});
    if (!arg.empty()) return Errorf("/interventions: '{}' is not an option (/interventions or /interventions off)", arg);
    ListInterventions();
  } else if (name == "/exit" || name == "/quit") {
    *quit = true;
  } else {
    return Errorf("unknown command {} (/help lists them)", name);
  }
  return {};
}

// "/ablate 2.1" adds to what is in force, as a repeated flag would; /emphasize replaces
// the emphasis.
Status ChatCli::ChangeInterventions(std::string_view name, std::string_view arg) {
  InterventionSpec spec = interventions_;
  if (name == "/ablate") spec.ablate.emplace_back(arg);
  if (name == "/knockout") spec.knockout.emplace_back(arg);
  if (name == "/steer") spec.steer.push_back(ExpandHome(arg));
  if (name == "/emphasize") {
    spec.emphasize_heads.clear();
    spec.emphasize_alpha = 0.01;
    std::istringstream words{std::string(arg)};
    words >> spec.emphasize;
    for (std::string w; words >> w;) {
      if (w.starts_with("heads=")) {
        spec.emphasize_heads = w.substr(6);
      } else if (w.starts_with("alpha=")) {
        char* end = nullptr;
        spec.emphasize_alpha = std::strtod(w.c_str() + 6, &end);
        if (*end != '\0') return Errorf("/emphasize: alpha '{}' is not a number", w.substr(6));
      } else {
        return Errorf("/emphasize: '{}' is not heads=L.H,... or alpha=A", w);
      }
    }
  }
  return SetInterventions(spec);
}

// Checked against the model first (a bad spec changes nothing); the cache is kept only
// up to the first position the change affects.
Status ChatCli::SetInterventions(const InterventionSpec& spec) {
  std::shared_ptr<const Interventions> next;
  if (!spec.empty()) {
    OKO_ASSIGN_OR_RETURN(Interventions iv, Interventions::Make(spec, chat_.context->config()));
    next = std::make_shared<const Interventions>(std::move(iv));
  }
  Context& context = *chat_.context;
  const std::shared_ptr<const Interventions>& previous = context.interventions();
  const int64_t first = std::min(previous ? previous->FirstPosition() : Interventions::kNoPosition,
                                 next ? next->FirstPosition() : Interventions::kNoPosition);
  context.set_interventions(next);
  interventions_ = spec;
  if (spec.empty()) Say("No interventions.\n");
  else ListInterventions();
  if (first < context.position()) {
    if (!context.Rewind(first)) context.Reset();
    Say(fmt::format("The KV cache is kept up to position {}: the next message recomputes the conversation from "
                    "there.\n", context.position()));
  }
  return {};
}

void ChatCli::ListInterventions() {
  const auto& iv = chat_.context->interventions();
  if (iv == nullptr) {
    Say("No interventions.\n");
    return;
  }
  std::string text = "Interventions for the next answers:\n";
  for (const std::string& d : iv->descriptions()) text += "  " + d + "\n";
  Say(text);
}

Status ChatCli::Send(std::string_view text) {
  if (editor_ != nullptr) editor_->ClearInterrupt();
  auto stats = session_.Send(text, [&](const ReplyPiece& p) { printer_.Print(p); },
                             editor_ != nullptr ? editor_->interrupted() : nullptr);
  if (!stats.ok()) return stats.status();
  printer_.Finish();
  if (stats->stopped_by_callback) Notice("[stopped]\n");
  if (session_.context_wrapped() && !told_context_full_) {
    told_context_full_ = true;
    Notice(fmt::format("[the context window of {} positions is full: the KV cache is now a ring, the oldest "
                    "tokens fall out of attention and the chat goes on]\n",
                    session_.context_window()));
  }
  return {};
}

void ChatCli::PrintStats() {
  if (const auto& last = session_.last_stats()) {
    Say(fmt::format("last turn: {}\n", FormatStats(*last)));
    Say(fmt::format("           {} of the {} prompt tokens came from the KV cache\n",
                    last->prompt_tokens - last->prefilled_tokens, last->prompt_tokens));
  } else {
    Say("last turn: none yet\n");
  }
  const ChatTotals& t = session_.totals();
  Say(fmt::format("session:   {} turn{} since the start (/reset and /load included), {} prompt tokens prefilled "
                  "of {} rendered, {} generated\n", t.turns,
                  t.turns == 1 ? "" : "s", t.prefilled_tokens, t.prompt_tokens, t.generated_tokens));
  Say(fmt::format("context:   position {}, window {}{}\n", session_.context_position(), session_.context_window(),
                  session_.context_wrapped() ? " (wrapped: attention slides over the last window)" : ""));
  if (recorder_) {
    // Hook time is summed over the worker threads: divided by their number it compares
    // with the wall time of the turns.
    const int threads = chat_.context->options().threads;
    const double hook_ms = recorder_->hook_ns() / 1e6 / threads, model_ms = t.model_seconds * 1e3;
    const uint64_t held = recorder_->HeldBytes();
    Say(fmt::format("attention: recording took {:.2f} ms of the session's {:.1f} ms in the model ({:.1f}%; hook "
                    "time over {} threads); it holds {} for {} positions\n",
                    hook_ms, model_ms, 100 * hook_ms / std::max(1e-9, model_ms), threads,
                    held < 1000000 ? fmt::format("{:.1f} kB", held / 1e3) : fmt::format("{:.1f} MB", held / 1e6),
                    recorder_->QueryPositions().size()));
  }
}

void ChatCli::StartProfiler() {
  profiler_ = std::make_unique<Profiler>();
  chat_.context->set_profiler(profiler_.get());
}

// The table oko profile prints, for what ran since the profiler started or since the
// last /profile, against this machine's limits when `oko profile` has measured them.
Status ChatCli::Profile(std::string_view arg) {
  if (arg == "off") {
    chat_.context->set_profiler(nullptr);
    profiler_.reset();
    Say("The profiler is off.\n");
    return {};
  }
  if (!arg.empty()) return Errorf("/profile: '{}' is not an option (/profile or /profile off)", arg);
  if (!profiler_) {
    StartProfiler();
    Say("The profiler is on: /profile again shows where the time went from now on.\n");
    return {};
  }
  Context& context = *chat_.context;
  const std::optional<MachineLimits> cached = CachedMachineLimits(context.pool());
  const MachineLimits limits = cached.value_or(MachineLimits{});
  const double peak = context.options().compute == ComputeMode::kBf16 ? limits.bf16_gflops : limits.f32_gflops;
  std::string text;
  for (Phase phase : {Phase::kPrefill, Phase::kDecode}) {
    if (profiler_->tokens(phase) == 0) continue;
    text += FormatProfile(SummarizeProfile(*profiler_, context.model().graph(), phase, profiler_->tokens(phase), limits, peak));
  }
  if (text.empty()) text = "Nothing ran since the last /profile.\n";
  else if (!cached) text += "(\"of limit\" needs this machine's limits: run oko profile once to measure them)\n";
  Say(text);
  profiler_->Clear();
  return {};
}

Status ChatCli::Save(const std::string& path) {
  OKO_RETURN_IF_ERROR(WriteFileAtomically(path, session_.Messages().dump(2) + "\n"));
  Say(fmt::format("Saved {} messages to {}\n", session_.Messages().size(), path));
  return {};
}

Status ChatCli::Load(const std::string& path) {
  OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  const auto messages = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (messages.is_discarded()) return Errorf("{}: not valid JSON", path);
  OKO_RETURN_IF_ERROR(session_.SetMessages(messages).WithContext(path));
  Say(fmt::format("Loaded {} messages from {}\n", messages.size(), path));
  return {};
}

// Every position the cache holds: its token as it reads in the text, and the message
// and role it belongs to.
TraceWriteOptions ChatCli::TraceOptions() const {
  TraceWriteOptions o;
  o.model = model_name_;
  o.dtype = DType::kF16;  // as recorded
  const std::vector<int32_t>& ids = session_.cached_tokens();
  const std::vector<std::string> pieces = chat_.tokenizer->DecodePieces(ids);
  const std::vector<TokenTag> tags = session_.TokenTags();
  for (size_t i = 0; i < ids.size(); ++i) o.tokens.push_back({ids[i], pieces[i], tags[i].turn, tags[i].role});
  return o;
}

// Rows: the last answer's positions that ran through the model (a reply's last token
// runs only when it ends the turn or the next turn starts); columns: every key.
Status ChatCli::ShowAttention(std::string_view arg) {
  if (!recorder_) return Errorf("/attn: start oko chat with --record-attention to use it");
  const auto& last = session_.last_stats();
  if (!last) return Errorf("/attn: there is no answer yet");
  const size_t space = arg.find_first_of(" \t");
  const ModelConfig& c = chat_.context->config();
  OKO_ASSIGN_OR_RETURN(int64_t layer, ParseIndex(arg.substr(0, space), c.num_layers - 1, "layer"));
  OKO_ASSIGN_OR_RETURN(int64_t head,
                       ParseIndex(space == std::string_view::npos ? "" : Trim(arg.substr(space)), -1, "head"));
  if (layer >= c.num_layers)
    return Errorf("/attn: layer {} is out of range: the model has layers 0-{}", layer, c.num_layers - 1);
  if (head >= c.num_heads)
    return Errorf("/attn: head {} is out of range: the model has heads 0-{}", head, c.num_heads - 1);
  TraceData t = recorder_->Snapshot(TraceOptions(), last->prompt_tokens, session_.context_position());
  if (t.Q() == 0) return Errorf("/attn: the last answer has no position that ran through the model yet");
  t.path = "/attn";
  ShowOptions s;
  s.layer = layer;
  s.head = head;
  s.width = TerminalWidth();
  s.color = DetectTermColor();
  OKO_ASSIGN_OR_RETURN(std::string text, RenderHeatmap(t, s));
  Say(text);
  return {};
}

Status ChatCli::WriteTrace(const std::string& path) {
  if (!recorder_) return Errorf("/trace: start oko chat with --record-attention to use it");
  OKO_RETURN_IF_ERROR(recorder_->Write(path, TraceOptions()));
  std::error_code ec;
  const uintmax_t bytes = std::filesystem::file_size(path, ec);
  Say(fmt::format("Wrote the trace of {} positions ({} layers x {} heads, {} bytes) to {}\n",
                  recorder_->QueryPositions().size(), recorder_->layers().size(), recorder_->heads().size(),
                  ec ? 0 : bytes, path));
  return {};
}

// /lora: list; /lora NAME SCALE; /lora off. A change drops the KV cache (every position's
// keys and values depend on the adapters), so the next message prefills the conversation.
Status ChatCli::Lora(std::string_view arg) {
  Context& context = *chat_.context;
  const std::vector<LoraInfo>& loras = context.model().loras();
  if (loras.empty()) return Errorf("/lora: no adapters (start oko chat with --lora DIR[:SCALE])");
  if (arg.empty()) {
    for (size_t i = 0; i < loras.size(); ++i)
      Say(fmt::format("  {}  scale {}  ({} matrices{})  {}\n", loras[i].name,
                      context.model().lora_merged() ? loras[i].scale : context.lora_scales()[i], loras[i].modules,
                      context.model().lora_merged() ? ", merged" : "", loras[i].dir));
    return {};
  }
  if (context.model().lora_merged())
    return Errorf("/lora: the adapters were merged into the weights at load (--lora-merge): they cannot change");
  bool dropped = false;
  std::string what;
  if (arg == "off") {
    for (size_t i = 0; i < loras.size(); ++i) dropped = context.set_lora_scale(i, 0.0f) || dropped;
    what = "Every adapter is off";
  } else {
    const size_t space = arg.find_first_of(" \t");
    const std::string name(arg.substr(0, space));
    const std::string value(space == std::string_view::npos ? "" : Trim(arg.substr(space)));
    size_t index = loras.size();
    for (size_t i = 0; i < loras.size(); ++i)
      if (loras[i].name == name) index = index == loras.size() ? i : loras.size() + 1;
    if (index == loras.size()) return Errorf("/lora: no adapter named '{}' (/lora lists them)", name);
    if (index > loras.size()) return Errorf("/lora: two adapters are named '{}'", name);
    float scale = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), scale);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() || !std::isfinite(scale))
      return Errorf("/lora: give NAME SCALE (a finite number, 0 switches it off), or off");
    dropped = context.set_lora_scale(index, scale);
    what = fmt::format("{}: scale {}", name, scale);
  }
  Say(what + (dropped ? ". The adapters shape every position's keys and values: the KV cache is dropped and "
                        "the next message prefills the conversation again.\n"
                      : ".\n"));
  return {};
}

// /drift [L] [H]: the conversation so far run with the adapters and without (the cache is
// rebuilt afterwards); the report of `oko trace --drift` over the last answer's positions.
Status ChatCli::Drift(std::string_view arg) {
  if (!recorder_) return Errorf("/drift: start oko chat with --record-attention to use it");
  const auto& last = session_.last_stats();
  if (!last) return Errorf("/drift: there is no answer yet");
  const std::vector<int32_t> ids = session_.cached_tokens();
  TraceFilter filter;
  filter.query_begin = last->prompt_tokens;
  filter.query_end = static_cast<int64_t>(ids.size());
  if (filter.query_begin >= filter.query_end) return Errorf("/drift: the last answer has no position in the cache");
  OKO_ASSIGN_OR_RETURN(LoraDrift d, MeasureLoraDrift(*chat_.context, ids, filter, TraceOptions()));
  Say(RenderLoraDrift(d, 10));
  if (arg.empty()) return {};
  const size_t space = arg.find_first_of(" \t");
  const ModelConfig& c = chat_.context->config();
  OKO_ASSIGN_OR_RETURN(int64_t layer, ParseIndex(arg.substr(0, space), 0, "layer", "/drift"));
  OKO_ASSIGN_OR_RETURN(int64_t head, ParseIndex(space == std::string_view::npos ? "" : Trim(arg.substr(space)), 0, "head", "/drift"));
  if (layer >= c.num_layers || head >= c.num_heads)
    return Errorf("/drift: layer {} head {} is out of range: the model has layers 0-{}, heads 0-{}", layer, head,
                  c.num_layers - 1, c.num_heads - 1);
  ShowOptions s;
  s.layer = layer;
  s.head = head;
  s.width = TerminalWidth();
  s.color = DetectTermColor();
  s.diverging = true;
  s.max_listed = 10;
  OKO_ASSIGN_OR_RETURN(std::string map, RenderHeatmap(d.attention.delta, s));
  Say(map);
  return {};
}

// --record-attention keeps layers x heads x positions^2 / 2 halves: said up front when a
// full context would not fit in memory (a short chat still works).
void WarnAboutRecording(const Context& context) {
  const ModelConfig& c = context.config();
  const double positions = static_cast<double>(context.kv_cache().capacity());
  const double bytes = static_cast<double>(c.num_layers * c.num_heads) * positions * positions / 2 * 2;
  const uint64_t ram = PhysicalMemoryBytes();
  if (ram == 0 || bytes <= static_cast<double>(ram)) return;
  std::fprintf(stderr,
               "oko chat: warning: --record-attention grows to about %s at the full context of %.0f positions, more "
               "than this machine's %s of memory (lower -c)\n",
               HumanBytes(bytes).c_str(), positions, HumanBytes(static_cast<double>(ram)).c_str());
}

Status RunChat(const ChatArgs& args) {
  OKO_ASSIGN_OR_RETURN(OpenedChat chat, OpenChat(args.engine, args.sampling, args.chat, args.max_new_tokens));
  OKO_RETURN_IF_ERROR(args.interventions.ApplyTo(*chat.context));
  const bool interactive = ::isatty(STDIN_FILENO);
  if (args.record_attention) WarnAboutRecording(*chat.context);
  if (chat.session->raw_completion()) {
    // A template that is there but broken is an error, not a quiet fallback.
    if (HasChatTemplate(args.engine.model_dir)) return Status::Error(chat.no_template_reason);
    if (!interactive)
      std::fprintf(stderr, "oko chat: %s has no chat template: raw completion, each line is a prompt\n",
                   args.engine.ModelName().c_str());
    if (!args.chat.system.empty() || args.chat.no_thinking)
      std::fprintf(stderr, "oko chat: warning: --system and --no-thinking need a chat template: ignored\n");
  }
  ChatCli cli(std::move(chat), args.engine.ModelName(), interactive, args.chat.hide_thinking,
              args.record_attention, args.profile, args.interventions.spec);
  return interactive ? cli.RunInteractive() : cli.RunScripted();
}

}  // namespace

Subcommand AddChatCommand(CLI::App& root) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* app = root.add_subcommand("chat", "Chat with the model through its own chat template");
  args->engine.Add(app);
  args->interventions.Add(app);
  args->sampling.Add(app);
  args->chat.Add(app);
  AddIntFlag(app, "-n,--n-predict", &args->max_new_tokens, {1, kMaxTokenCount}, "most tokens per reply (default: 4096)");
  app->add_flag("--record-attention", args->record_attention,
                "record every layer's attention for /attn and /trace (memory grows with the square of the context)");
  app->add_flag("--profile", args->profile, "time every op from the start, for /profile");
  AddExamples(app, {"oko chat -m ../shared/models/tiny-qwen3 --seed 42 -n 12",
                    "oko chat -m DIR --system \"Be brief.\" --no-thinking",
                    "printf 'Hi\\n/stats\\n' | oko chat -m DIR --seed 1"});
  return {app, [args] { return RunChat(*args); }};
}

}  // namespace oko
