// oko trace -m DIR (-p PROMPT | --ids 1,2,3) [-n N] --out T.safetensors [--layers 0-3]
//   [--heads 0,2] [--queries A-B] [--dtype f16|f32] [--max-bytes N] [--show [--layer L]
//   [--head H]] [--html T.html] [--logit-lens]
// oko trace --diff A.safetensors B.safetensors [--layer L] [--head H] [--html D.html]
// oko trace --view T.safetensors [--show [--layer L] [--head H]] [--html T.html]
// Records the attention of the prompt and of N greedy tokens after it (docs/TRACES.md).
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "common/limits.h"
#include "engine/generator.h"
#include "engine/trace_recorder.h"
#include "loaders/hf_config.h"
#include "loaders/tokenizer.h"
#include "common/atomic_file.h"
#include "loaders/trace_file.h"
#include "tools/command.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"
#include "tools/lora_drift.h"
#include "tools/resources.h"
#include "tools/token_ids.h"
#include "tools/trace_diff.h"
#include "tools/trace_html.h"
#include "tools/trace_show.h"

namespace oko {
namespace {

struct TraceOptions {
  EngineFlags engine;
  InterventionFlags interventions;
  std::string prompt, ids, out, layers, heads, queries, dtype = "f32", html, view, drift;
  std::vector<std::string> diff;
  int64_t n = 0;
  uint64_t max_bytes = 1ull << 30;
  bool show = false, logit_lens = false;
  int64_t show_layer = -1, show_head = -1, lens_k = 5;
};

Result<int64_t> ParseNumber(const std::string& s, const std::string& flag) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0)
    return Errorf("{}: '{}' is not a non-negative integer", flag, s);
  return v;
}

// "0-3,5" -> [0, 1, 2, 3, 5]; every value below `limit`.
Result<std::vector<int64_t>> ParseList(const std::string& text, int64_t limit, const std::string& flag) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t dash = item.find('-');
    OKO_ASSIGN_OR_RETURN(int64_t a, ParseNumber(item.substr(0, dash), flag));
    int64_t b = a;
    if (dash != std::string::npos) {
      OKO_ASSIGN_OR_RETURN(b, ParseNumber(item.substr(dash + 1), flag));
    }
    if (b < a) return Errorf("{}: range '{}' is empty", flag, item);
    if (b >= limit) return Errorf("{}: {} is out of range, the model has {}", flag, b, limit);
    for (int64_t i = a; i <= b; ++i) out.push_back(i);
    start = end + 1;
  }
  return out;
}

// "A-B" (inclusive), "A-" (from A on) or "A": absolute query positions [begin, end).
Status ParseQueries(const std::string& text, TraceFilter* f) {
  if (text.empty()) return Status();
  const size_t dash = text.find('-');
  OKO_ASSIGN_OR_RETURN(f->query_begin, ParseNumber(text.substr(0, dash), "--queries"));
  f->query_end = f->query_begin + 1;
  if (dash == std::string::npos) return Status();
  if (dash + 1 == text.size()) {
    f->query_end = INT64_MAX;
    return Status();
  }
  OKO_ASSIGN_OR_RETURN(int64_t last, ParseNumber(text.substr(dash + 1), "--queries"));
  if (last < f->query_begin) return Errorf("--queries: range '{}' is empty", text);
  f->query_end = last + 1;
  return Status();
}

Status CheckSize(uint64_t bytes, const TraceOptions& o, const char* what) {
  if (const uint64_t ram = PhysicalMemoryBytes(); ram > 0 && bytes > ram)
    return Errorf("the trace {} {}, more than this machine's {} of memory: narrow it with --layers, --heads or "
                  "--queries, or use --dtype f16",
                  what, BytesAndHuman(bytes), BytesAndHuman(ram));
  if (bytes <= o.max_bytes) return Status();
  return Errorf("the trace {} {}, over --max-bytes {}: narrow it with --layers, "
                "--heads or --queries, use --dtype f16, or raise --max-bytes",
                what, BytesAndHuman(bytes), o.max_bytes);
}

// A file that is not a safetensors file at all reads as "not a trace", not as a
// header length of 2478506395849358171.
Result<TraceData> ReadTraceFile(const std::string& path) {
  auto t = ReadTrace(path);
  if (!t.ok() && (t.status().message().find(": header ") != std::string::npos ||
                  t.status().message().find("too short for a safetensors header") != std::string::npos))
    return Errorf("{} is not a safetensors trace ({})", path, t.status().message());
  return t;
}

// --out is checked before the model runs: its folder must exist and be writable (exit 3
// otherwise, as when the write itself fails).
Status CheckOutputPath(const std::string& flag, const std::string& path) {
  if (path == "-") return Errorf("{} -: a trace cannot go to stdout (use --show to see it)", flag);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return RuntimeErrorf("{} {}: cannot write: no folder {}", flag, path, dir);
  if (::access(dir.c_str(), W_OK) != 0) return RuntimeErrorf("{} {}: cannot write in {}", flag, path, dir);
  return {};
}

// The text of one token as it reads in the output, leading space included (or "<id>"
// without a tokenizer).
std::string TokenText(const Tokenizer* tok, int32_t id) {
  return tok != nullptr ? tok->DecodePiece(id) : fmt::format("<{}>", id);
}

std::vector<TraceToken> Tokens(const Tokenizer* tok, const std::vector<int32_t>& ids) {
  std::vector<TraceToken> tokens;
  const std::vector<std::string> pieces = tok != nullptr ? tok->DecodePieces(ids) : std::vector<std::string>();
  for (size_t i = 0; i < ids.size(); ++i)
    tokens.push_back({ids[i], tok != nullptr ? pieces[i] : TokenText(tok, ids[i]), -1, ""});
  return tokens;
}

// The model's tokenizer when it has one (needed by -p; names tokens in the trace).
Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const TraceOptions& o) {
  if (o.prompt.empty() && !std::filesystem::exists(o.engine.model_dir + "/tokenizer.json"))
    return std::unique_ptr<Tokenizer>();
  return Tokenizer::Load(o.engine.model_dir);
}

Result<std::vector<int32_t>> PromptIds(const TraceOptions& o, const Tokenizer* tok) {
  if (!o.ids.empty() && !o.prompt.empty())
    return Status::Error("give the prompt as -p or --ids, not both", ExitCode::kUsage);
  if (!o.ids.empty()) return ParseTokenIds(o.ids);
  if (o.prompt.empty()) return Status::Error("give the prompt as -p TEXT or --ids 1,2,3", ExitCode::kUsage);
  auto encoded = tok->Encode(o.prompt);
  if (!encoded.ok()) return encoded.status().WithContext("-p");
  std::vector<int32_t> ids = std::move(encoded).value();
  if (ids.empty()) return Errorf("-p: the prompt encodes to no tokens");
  return ids;
}

// The flags of the run; "interventions": what the probabilities were recorded under.
std::string OptionsJson(const TraceOptions& o, int64_t prompt_tokens, const Interventions* iv) {
  nlohmann::json j = {{"ctx", o.engine.ctx},         {"sink", o.engine.sink},
                      {"compute", o.engine.compute}, {"kv", o.engine.kv},
                      {"threads", o.engine.threads}, {"dtype", o.dtype},
                      {"layers", o.layers},          {"heads", o.heads},
                      {"queries", o.queries},        {"generated", o.n}, {"prompt", o.prompt},
                      {"prompt_tokens", prompt_tokens}, {"logit_lens", o.logit_lens}};
  if (iv != nullptr) j["interventions"] = iv->descriptions();
  return j.dump();
}

struct Timing {
  int64_t forward_ns = 0, lens_ns = 0, write_ns = 0;
};

// Prefill, then N greedy tokens, each traced (the last one run too, so that its attention
// is recorded). Returns the whole sequence.
std::vector<int32_t> Generate(Context& context, std::vector<int32_t> ids, int64_t n) {
  Sampler greedy(SamplerOptions{});
  GenerateOptions options;
  options.max_new_tokens = n;
  Generator(context).Generate(ids, options, greedy, [&](int32_t id) {
    ids.push_back(id);
    return true;
  });
  if (n > 0) context.Forward(std::span<const int32_t>(&ids.back(), 1), Logits::kNone, nullptr);
  return ids;
}

// --show and --html read the file just written (or the --view file): what they display
// is what was saved.
Status View(const TraceOptions& o, const std::string& path) {
  OKO_ASSIGN_OR_RETURN(TraceData t, ReadTraceFile(path));
  if (!o.show && o.html.empty()) return Status::Error("--view needs --show or --html", ExitCode::kUsage);
  if (!o.html.empty()) {
    OKO_RETURN_IF_ERROR(WriteFileAtomically(o.html, RenderTraceHtml(t, t.model + " · " + path, o.show_layer, o.show_head)));
    std::fprintf(stderr, "trace: viewer -> %s\n", o.html.c_str());
  }
  if (!o.show) return Status();
  ShowOptions s;
  s.layer = o.show_layer;
  s.head = o.show_head;
  s.width = TerminalWidth();
  s.color = DetectTermColor();
  OKO_ASSIGN_OR_RETURN(std::string text, RenderHeatmap(t, s));
  text += RenderLogitLens(t, s);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return Status();
}

// The pair whose difference heatmap --diff draws: --layer and --head when both are
// given, else the most drifting head among those that match what is given.
Result<const HeadDrift*> DiffPair(const TraceDiff& d, const TraceOptions& o) {
  for (const HeadDrift& h : d.ranked)
    if ((o.show_layer < 0 || h.layer == o.show_layer) && (o.show_head < 0 || h.head == o.show_head)) return &h;
  return Errorf("--diff: {} and {} have no layer {} head {} in common", d.a_path, d.b_path,
                o.show_layer < 0 ? std::string("(any)") : std::to_string(o.show_layer),
                o.show_head < 0 ? std::string("(any)") : std::to_string(o.show_head));
}

Status RunDiff(const TraceOptions& o) {
  OKO_ASSIGN_OR_RETURN(TraceData a, ReadTraceFile(o.diff[0]));
  OKO_ASSIGN_OR_RETURN(TraceData b, ReadTraceFile(o.diff[1]));
  if (!o.html.empty()) OKO_RETURN_IF_ERROR(CheckOutputPath("--html", o.html));
  OKO_ASSIGN_OR_RETURN(TraceDiff d, DiffTraces(a, b));
  OKO_ASSIGN_OR_RETURN(const HeadDrift* pair, DiffPair(d, o));
  ShowOptions s;
  s.layer = pair->layer;
  s.head = pair->head;
  s.width = TerminalWidth();
  s.color = DetectTermColor();
  s.diverging = true;
  s.max_listed = 10;
  OKO_ASSIGN_OR_RETURN(std::string map, RenderHeatmap(d.delta, s));
  const std::string text = RenderDrift(d, 20) + "\n" + map;
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (o.html.empty()) return Status();
  OKO_RETURN_IF_ERROR(WriteFileAtomically(o.html, RenderDiffHtml(d, "drift " + o.diff[0] + " → " + o.diff[1], pair->layer, pair->head)));
  std::fprintf(stderr, "trace: drift viewer -> %s\n", o.html.c_str());
  return Status();
}

Result<TraceFilter> MakeFilter(const TraceOptions& o, const ModelConfig& c) {
  TraceFilter f;
  OKO_ASSIGN_OR_RETURN(f.layers, ParseList(o.layers, c.num_layers, "--layers"));
  OKO_ASSIGN_OR_RETURN(f.heads, ParseList(o.heads, c.num_heads, "--heads"));
  OKO_RETURN_IF_ERROR(ParseQueries(o.queries, &f));
  f.residuals = o.logit_lens;
  return f;
}

// Refuses before the model runs when even the upper bound (every key up to the last
// query) is over, so an oversized trace never fills memory.
Status CheckEstimate(const TraceOptions& o, const ModelConfig& c, const TraceFilter& f, int64_t total,
                     DType dtype) {
  const int64_t q_end = std::min(total, f.query_end);
  const int64_t q_count = std::max<int64_t>(0, q_end - f.query_begin);
  const double layers = f.layers.empty() ? c.num_layers : f.layers.size();
  const double heads = f.heads.empty() ? c.num_heads : f.heads.size();
  // In doubles: 2^31 queries squared overflow uint64; the size saturates instead.
  const double bytes = layers * heads * q_count * q_end * DTypeSize(dtype);
  return CheckSize(bytes >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(bytes), o, "would hold");
}

TraceWriteOptions WriteOptions(const TraceOptions& o, const TraceRecorder& rec, const Tokenizer* tok,
                               const std::vector<int32_t>& ids, DType dtype, const Interventions* iv) {
  TraceWriteOptions w{o.engine.ModelName(), Tokens(tok, ids), dtype,
                      OptionsJson(o, static_cast<int64_t>(ids.size()) - o.n, iv), {}};
  if (!o.logit_lens) return w;
  nlohmann::json names = nlohmann::json::object();
  for (int32_t id : rec.lens_ids()) names[std::to_string(id)] = TokenText(tok, id);
  w.extra["lens_tokens"] = names.dump();
  return w;
}

// What the trace cost: hook time is summed over worker threads, so it is divided by
// their number to compare with the forward's wall time.
void ReportCost(const Timing& time, const TraceRecorder& rec, int threads, size_t tokens) {
  const double hook_ms = rec.hook_ns() / 1e6 / threads, forward_ms = time.forward_ns / 1e6;
  const std::string lens = time.lens_ns > 0 ? fmt::format("; logit lens {:.1f} ms", time.lens_ns / 1e6) : "";
  std::fprintf(stderr,
               "trace: forward %.1f ms for %zu tokens, of which recording %.2f ms (%.1f%%; hook time "
               "over %d threads)%s; write %.1f ms\n",
               forward_ms, tokens, hook_ms, 100.0 * hook_ms / std::max(1e-9, forward_ms), threads,
               lens.c_str(), time.write_ns / 1e6);
}

// What can be checked before the model runs: the flags against the model's shape and the
// prompt, --queries against the sequence, the output paths.
Status CheckRecordRequest(const TraceOptions& o, const ModelConfig& c, const TraceFilter& f, int64_t prompt_tokens) {
  const int64_t total = prompt_tokens + o.n;
  if (f.query_begin >= total)
    return Errorf("--queries {}: the sequence has {} positions (0-{})", o.queries, total, total - 1);
  const auto recorded = [](const std::vector<int64_t>& list, int64_t v) {
    return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
  };
  if (o.show_layer >= 0 && (o.show_layer >= c.num_layers || !recorded(f.layers, o.show_layer)))
    return Errorf("--layer {}: not recorded (the model has layers 0-{}; --layers {})", o.show_layer,
                  c.num_layers - 1, o.layers.empty() ? "all" : o.layers);
  if (o.show_head >= 0 && (o.show_head >= c.num_heads || !recorded(f.heads, o.show_head)))
    return Errorf("--head {}: not recorded (the model has heads 0-{}; --heads {})", o.show_head,
                  c.num_heads - 1, o.heads.empty() ? "all" : o.heads);
  if (!o.out.empty()) OKO_RETURN_IF_ERROR(CheckOutputPath("--out", o.out));
  if (!o.html.empty()) OKO_RETURN_IF_ERROR(CheckOutputPath("--html", o.html));
  return {};
}

// Without --out, --show and --html look at a trace written to a temporary file.
std::string TraceOutPath(const TraceOptions& o) {
  if (!o.out.empty()) return o.out;
  return (std::filesystem::temp_directory_path() / fmt::format("oko-trace-{}.safetensors", ::getpid())).string();
}

Status RunRecord(const TraceOptions& o) {
  if (o.engine.model_dir.empty()) return Status::Error("-m/--model is required", ExitCode::kUsage);
  if (o.out.empty() && !o.show && o.html.empty())
    return Status::Error("give --out FILE, --show or --html FILE", ExitCode::kUsage);
  OKO_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, LoadTokenizer(o));
  OKO_ASSIGN_OR_RETURN(std::vector<int32_t> ids, PromptIds(o, tok.get()));
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  OKO_ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(o.engine.model_dir));
  OKO_RETURN_IF_ERROR(CheckTokenRange(ids, config.vocab_size, o.ids.empty() ? "-p" : "--ids"));
  OKO_RETURN_IF_ERROR(CheckPromptFits(static_cast<int64_t>(ids.size()), options.ctx, config.max_position_embeddings));
  OKO_ASSIGN_OR_RETURN(TraceFilter f, MakeFilter(o, config));
  OKO_RETURN_IF_ERROR(CheckRecordRequest(o, config, f, static_cast<int64_t>(ids.size())));
  const DType dtype = o.dtype == "f16" ? DType::kF16 : DType::kF32;
  OKO_RETURN_IF_ERROR(CheckEstimate(o, config, f, static_cast<int64_t>(ids.size()) + o.n, dtype));
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(o.engine.model_dir, options, o.engine.CtxWhat()));
  OKO_RETURN_IF_ERROR(o.interventions.ApplyTo(*context, tok.get(), ids));
  const ModelConfig& c = context->config();
  TraceRecorder rec(c.num_layers, c.num_heads, context->kv_cache().sink(), f);

  Timing time;
  context->set_trace(&rec);
  int64_t t0 = Profiler::NowNs();
  ids = Generate(*context, std::move(ids), o.n);
  time.forward_ns = Profiler::NowNs() - t0;
  context->set_trace(nullptr);
  if (tok != nullptr && o.n > 0)
    std::fprintf(stderr, "trace: generated: %s\n", tok->Decode(std::span(ids.end() - o.n, ids.end())).c_str());
  t0 = Profiler::NowNs();
  if (o.logit_lens) rec.ComputeLogitLens(*context, o.lens_k);
  time.lens_ns = o.logit_lens ? std::max<int64_t>(1, Profiler::NowNs() - t0) : 0;

  const uint64_t bytes = rec.TensorBytes(dtype);
  const std::string path = TraceOutPath(o);
  std::fprintf(stderr, "trace: %zu layers x %zu heads x %zu queries x %zu keys, %s: %s -> %s\n",
               rec.layers().size(), rec.heads().size(), rec.QueryPositions().size(),
               rec.KeyPositions().size(), o.dtype.c_str(), BytesAndHuman(bytes).c_str(),
               o.out.empty() ? "(not kept)" : o.out.c_str());
  OKO_RETURN_IF_ERROR(CheckSize(bytes, o, "holds"));
  t0 = Profiler::NowNs();
  const TraceWriteOptions w = WriteOptions(o, rec, tok.get(), ids, dtype, context->interventions().get());
  OKO_RETURN_IF_ERROR(rec.Write(path, w));
  time.write_ns = Profiler::NowNs() - t0;
  ReportCost(time, rec, context->options().threads, ids.size());
  const Status shown = o.show || !o.html.empty() ? View(o, path) : Status();
  if (o.out.empty()) std::filesystem::remove(path);
  return shown;
}

// --drift OUT: the prompt (and N greedy tokens with the adapters on) run with and without
// the --lora adapters in one context; the report on stdout, OUT .html or .safetensors.
Status RunDrift(const TraceOptions& o) {
  if (o.engine.model_dir.empty()) return Status::Error("-m/--model is required", ExitCode::kUsage);
  if (o.engine.lora.empty())
    return Status::Error("--drift compares a model with and without its --lora adapters: give --lora DIR",
                         ExitCode::kUsage);
  if (o.engine.lora_merge)
    return Status::Error("--drift switches the adapters off and on: drop --lora-merge", ExitCode::kUsage);
  if (!o.out.empty() || o.show || !o.html.empty())
    return Status::Error("--drift writes its own report: drop --out, --show and --html", ExitCode::kUsage);
  const bool html = o.drift.ends_with(".html");
  if (!html && !o.drift.ends_with(".safetensors"))
    return Errorf("--drift {}: name an .html or a .safetensors file", o.drift);
  OKO_RETURN_IF_ERROR(CheckOutputPath("--drift", o.drift));
  OKO_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, LoadTokenizer(o));
  OKO_ASSIGN_OR_RETURN(std::vector<int32_t> ids, PromptIds(o, tok.get()));
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  OKO_ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(o.engine.model_dir));
  OKO_RETURN_IF_ERROR(CheckTokenRange(ids, config.vocab_size, o.ids.empty() ? "-p" : "--ids"));
  OKO_RETURN_IF_ERROR(CheckPromptFits(static_cast<int64_t>(ids.size()) + o.n, options.ctx,
                                      config.max_position_embeddings));
  OKO_ASSIGN_OR_RETURN(TraceFilter f, MakeFilter(o, config));
  OKO_RETURN_IF_ERROR(CheckRecordRequest(o, config, f, static_cast<int64_t>(ids.size())));
  OKO_RETURN_IF_ERROR(CheckEstimate(o, config, f, static_cast<int64_t>(ids.size()) + o.n, DType::kF32));
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(o.engine.model_dir, options, o.engine.CtxWhat()));
  // Interventions act in both runs: the drift is the adapters' under them.
  OKO_RETURN_IF_ERROR(o.interventions.ApplyTo(*context, tok.get(), ids));
  ids = Generate(*context, std::move(ids), o.n);
  if (tok != nullptr && o.n > 0)
    std::fprintf(stderr, "trace: generated with the adapters: %s\n",
                 tok->Decode(std::span(ids.end() - o.n, ids.end())).c_str());
  const TraceWriteOptions write{o.engine.ModelName(), Tokens(tok.get(), ids), DType::kF32,
                                OptionsJson(o, static_cast<int64_t>(ids.size()) - o.n,
                                            context->interventions().get()),
                                {}};
  OKO_ASSIGN_OR_RETURN(LoraDrift d, MeasureLoraDrift(*context, ids, f, write));
  const std::string text = RenderLoraDrift(d, 20);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (!html) {
    OKO_RETURN_IF_ERROR(WriteLoraDrift(d, o.drift));
  } else {
    OKO_ASSIGN_OR_RETURN(const HeadDrift* pair, DiffPair(d.attention, o));
    const std::string title = fmt::format("LoRA drift · {} · adapted − base · next-token KL {:.4g} nats",
                                          o.engine.ModelName(), d.next_token_kl);
    OKO_RETURN_IF_ERROR(WriteFileAtomically(o.drift, RenderDiffHtml(d.attention, title, pair->layer, pair->head)));
  }
  std::fprintf(stderr, "trace: drift -> %s\n", o.drift.c_str());
  return Status();
}

// --view T: the views of a trace written before, such as oko chat's /trace.
Status RunView(const TraceOptions& o) {
  if (!o.html.empty()) OKO_RETURN_IF_ERROR(CheckOutputPath("--html", o.html));
  return View(o, o.view);
}

}  // namespace

Subcommand AddTraceCommand(CLI::App& root) {
  auto o = std::make_shared<TraceOptions>();
  CLI::App* app = root.add_subcommand("trace", "Record where each token looks: attention to a .safetensors trace");
  o->engine.compute = "f32";  // traces are for looking closely: the exact mode unless asked
  o->engine.Add(app, /*model_required=*/false);  // --diff needs no model
  o->interventions.Add(app, /*with_text=*/true);
  app->add_option("-p,--prompt", o->prompt, "prompt text (encoded with the model's tokenizer)");
  app->add_option("--ids", o->ids, "prompt as comma-separated token ids, e.g. 1,2,3 or [1, 2, 3]");
  AddIntFlag(app, "-n,--n-predict", &o->n, {0, kMaxTokenCount},
             "greedy tokens generated (and traced) after the prompt (default: 0)");
  app->add_option("--out", o->out, "trace file to write (.safetensors; default: none, only --show/--html)");
  app->add_option("--layers", o->layers, "layers to record, e.g. 0-3,5 (default: all)");
  app->add_option("--heads", o->heads, "query heads to record, e.g. 0,2 (default: all)");
  app->add_option("--queries", o->queries, "query positions A-B, A- or A (default: all)");
  app->add_option("--dtype", o->dtype, "stored precision: f32 or f16 (default: f32)")->check(CLI::IsMember({"f32", "f16"}));
  AddUint64Flag(app, "--max-bytes", &o->max_bytes, 1, "refuse to write a larger trace (default: 1073741824, 1 GiB)");
  app->add_flag("--show", o->show, "print a heatmap of the trace in the terminal");
  AddIntFlag(app, "--layer", &o->show_layer, {0, kMaxLayers},
                  "layer shown by --show (default: the last recorded), or by --diff (default: the most drifting)");
  AddIntFlag(app, "--head", &o->show_head, {0, kMaxHeads},
                  "head shown by --show (default: the head average), or by --diff (default: the most drifting)");
  app->add_flag("--logit-lens", o->logit_lens, "record each layer's top next tokens (final norm + lm_head)");
  AddIntFlag(app, "--lens-k", &o->lens_k, {1, 1000}, "tokens kept per position by --logit-lens (default: 5)");
  app->add_option("--html", o->html, "also write a self-contained HTML viewer");
  app->add_option("--view", o->view, "T.safetensors: --show or --html a trace written before (e.g. by oko chat /trace)");
  app->add_option("--diff", o->diff, "A.safetensors B.safetensors: rank the drift between two traces")
      ->expected(2);
  app->add_option("--drift", o->drift,
                  "OUT.html|OUT.safetensors: run the tokens with and without the --lora adapters and "
                  "report the drift of attention per layer and head, of the residual stream and of the "
                  "next token (default: none)");
  AddExamples(app, {"oko trace -m ../shared/models/stories260k -p \"Once upon a time\" --show",
                    "oko trace -m DIR -p \"The cat sat\" -n 8 --out t.safetensors --html t.html --logit-lens",
                    "oko trace --diff a.safetensors b.safetensors --layer 2 --head 0",
                    "oko trace -m DIR -p \"Lily and Tom\" --lora ADAPTER --drift drift.html"});
  return {app, [o] {
            if (!o->diff.empty()) return RunDiff(*o);
            if (!o->view.empty()) return RunView(*o);
            return o->drift.empty() ? RunRecord(*o) : RunDrift(*o);
          }};
}

}  // namespace oko
