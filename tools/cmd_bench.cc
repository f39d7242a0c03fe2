// oko bench -m DIR [-p 512] [-n 128] [-t N] [-r 3] [--depth D] [--parallel N] [--json]:
// prompt processing (pp) and generation (tg) speed, as llama-bench measures them, against
// this machine's measured limits; --parallel N adds tg of N sequences decoded together
// (its rounds alternate with one sequence's).
// `oko bench --machine` re-measures those limits.
#include <chrono>
#include <cmath>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "engine/kernel_paths.h"
#include "engine/machine_limits.h"
#include "tools/bench_util.h"
#include "tools/command.h"
#include "tools/decode_batch.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"

namespace oko {
namespace {

struct BenchOptions {
  EngineFlags engine;
  InterventionFlags interventions;
  int64_t prompt = 512, generate = 128, depth = 0, repetitions = 3, parallel = 1;
  bool json = false, machine = false;
};

struct MeanStd {
  double mean = 0, std = 0;
};
MeanStd Summarize(const std::vector<double>& v) {
  MeanStd m;
  for (double x : v) m.mean += x / v.size();
  for (double x : v) m.std += (x - m.mean) * (x - m.mean) / std::max<size_t>(v.size() - 1, 1);
  m.std = std::sqrt(m.std);
  return m;
}

double Seconds(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A decode row's limit: the bandwidth's (weights and KV per step) or, where lower, the
// compute roofline's (a batch of sequences on quantized weights can be bound by the dot
// products rather than the memory).
struct DecodeLimit {
  double tok_s = 0;
  std::string bound;  // "bandwidth", or the arithmetic ("int8 dot", ...)
  std::string Describe() const { return fmt::format("{:.1f} tok/s {}", tok_s, bound); }
};
DecodeLimit LowerLimit(double bandwidth_tok_s, const ComputeRoofline& compute) {
  if (compute.tok_s > 0 && compute.tok_s < bandwidth_tok_s) return {compute.tok_s, compute.arithmetic};
  return {bandwidth_tok_s, "bandwidth"};
}

// why_now: why the probe ran in this command ("" where the cached figures were used).
void PrintMachine(const MachineLimits& m, const std::string& why_now) {
  fmt::print("machine  {} | {} | {} thread{} | read {:.1f} GB/s | f32 FMA {:.0f} GFLOP/s | bf16 dot {:.0f} GFLOP/s{}\n",
             m.cpu, m.simd, m.threads, m.threads == 1 ? "" : "s", m.read_gbs, m.f32_gflops, m.bf16_gflops,
             m.int8_gops > 0 ? fmt::format(" | int8 dot {:.0f} GOP/s", m.int8_gops) : "");
  fmt::print("probe    {} ({})\n", m.ProbeNote(),
             why_now.empty() ? "cached in ~/.cache/oko/machine.json; --machine re-measures" : why_now);
}

struct Measured {
  std::vector<double> pp, tg, parallel_tg;
};

// One sequence's rounds: pp and tg of `context`, after a warm-up that pages the weights
// in, creates the oneDNN primitives and commits the cache's memory.
class OneSequence {
 public:
  OneSequence(const BenchOptions& o, Context& context)
      : o_(o), context_(context), prompt_(Ids(o.prompt)), depth_(Ids(o.depth, 1)), decode_(Ids(o.generate, 2)) {
    context_.CommitCache(std::max(o.prompt, o.depth + o.generate));
    context_.Forward(Ids(std::max<int64_t>(std::min<int64_t>(o.prompt, 64), 1)), Logits::kLast, &logits_);
  }
  void Round(Measured& m) {
    context_.Reset();
    if (o_.prompt > 0) m.pp.push_back(o_.prompt / Seconds([&] { context_.Forward(prompt_, Logits::kLast, &logits_); }));
    context_.Reset();
    if (o_.depth > 0) context_.Forward(depth_, Logits::kNone, nullptr);
    if (o_.generate > 0)
      m.tg.push_back(o_.generate / Seconds([&] {
                       for (int32_t id : decode_)
                         context_.Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &logits_);
                     }));
  }

 private:
  std::vector<int32_t> Ids(int64_t n, int64_t seed = 0) const {
    return SyntheticIds(n, context_.config().vocab_size, seed);
  }
  const BenchOptions& o_;
  Context& context_;
  std::vector<int32_t> prompt_, depth_, decode_;
  std::vector<float> logits_;
};

// Every round of one sequence, each followed by a round of the batch (--parallel): the two
// alternate, so a neighbour's load that comes and goes moves both alike and their ratio
// holds.
Status Measure(const BenchOptions& o, Context& context, const EngineOptions& options, Measured& m) {
  OneSequence one(o, context);
  std::unique_ptr<DecodeBatch> batch;
  if (o.parallel > 1 && o.generate > 0) {
    OKO_ASSIGN_OR_RETURN(batch, DecodeBatch::Create(context, options, static_cast<size_t>(o.parallel),
                                                    o.depth + o.generate));
  }
  for (int64_t r = 0; r < o.repetitions; ++r) {
    one.Round(m);
    if (batch == nullptr) continue;
    batch->Reset(o.depth);
    m.parallel_tg.push_back(o.generate * o.parallel / batch->Decode(o.generate));
  }
  return {};
}

// One rule for every subcommand: what runs must fit the context. Without -c the context
// is sized to fit; with -c a benchmark larger than it is refused, not run through the ring.
Result<int64_t> BenchContext(const BenchOptions& o) {
  const int64_t needed = o.prompt + o.depth + o.generate + 1;
  if (!o.engine.ctx_given()) return needed;
  if (needed > o.engine.ctx)
    return Errorf("-p {} + -d {} + -n {} needs a context of {} positions, more than -c {} (raise -c, or leave it "
                  "out to size it to fit)",
                  o.prompt, o.depth, o.generate, needed, o.engine.ctx);
  return o.engine.ctx;
}

Status RunBench(const BenchOptions& o) {
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  if (o.engine.model_dir.empty()) {
    if (!o.machine) return Status::Error("give -m DIR (or --machine)", ExitCode::kUsage);
    ThreadPool pool(options.threads > 0 ? options.threads : std::thread::hardware_concurrency());
    PrintMachine(LoadOrMeasureMachine(pool, /*remeasure=*/true), "now");
    return {};
  }
  if (o.prompt == 0 && o.generate == 0) return Status::Error("-p 0 and -n 0: nothing to measure", ExitCode::kUsage);
  OKO_ASSIGN_OR_RETURN(options.ctx, BenchContext(o));
  const std::string ctx_what = fmt::format("-p {} -d {} -n {}", o.prompt, o.depth, o.generate);
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(o.engine.model_dir, options, ctx_what));
  OKO_RETURN_IF_ERROR(o.interventions.ApplyTo(*context));
  MachineLimits limits = LoadOrMeasureMachine(context->pool(), o.machine);
  std::string probe_why = o.machine ? "now" : "";
  Measured m;
  OKO_RETURN_IF_ERROR(Measure(o, *context, options, m));

  const MeanStd pps = Summarize(m.pp), tgs = Summarize(m.tg), par = Summarize(m.parallel_tg);
  const double bytes = WeightBytesPerToken(context->model().graph());
  const double kv_bytes = 2.0 * context->config().num_layers * context->config().kv_dim() *
                          DTypeSize(options.kv_dtype) * (o.depth + o.generate / 2.0);
  if (!o.machine) {
    const std::string why = RemeasureIfDecodeBeatsProbe(context->pool(), bytes + kv_bytes, tgs.mean, &limits);
    if (!why.empty()) probe_why = "now: " + why;
  }
  const Model& model = context->model();
  const std::vector<WeightSite> sites = WeightSites(model.graph());
  const ComputeRoofline tg_compute = DecodeComputeRoofline(sites, 1, limits);
  const DecodeLimit tg_limit = LowerLimit(limits.read_gbs * 1e9 / (bytes + kv_bytes), tg_compute);
  // N sequences per step: the weights once, every sequence's KV.
  const ComputeRoofline par_compute = DecodeComputeRoofline(sites, o.parallel, limits);
  const DecodeLimit par_limit =
      LowerLimit(o.parallel * limits.read_gbs * 1e9 / (bytes + o.parallel * kv_bytes), par_compute);
  const double pp_gflops = pps.mean * MatMulFlopsPerToken(context->model().graph()) / 1e9;
  const double peak = model.compute() == ComputeMode::kBf16 ? limits.bf16_gflops : limits.f32_gflops;
  const size_t prefill_rows = static_cast<size_t>(std::min<int64_t>(o.prompt, options.max_batch));
  std::vector<std::pair<std::string, std::vector<PathGroup>>> paths;
  if (o.prompt > 0)
    paths.emplace_back(fmt::format("prefill x{}", prefill_rows), DescribePaths(sites, prefill_rows, Phase::kPrefill));
  if (o.generate > 0) paths.emplace_back("decode x1", DescribePaths(sites, 1, Phase::kDecode));
  if (o.generate > 0 && o.parallel > 1)
    paths.emplace_back(fmt::format("decode x{}", o.parallel), DescribePaths(sites, o.parallel, Phase::kDecode));
  if (o.json) {
    nlohmann::json j = {
        {"oko_version", "0.1"},
        {"model", o.engine.model_dir},
        {"cpu", limits.cpu},
        {"simd", limits.simd},
        {"probe", {{"measured_at", limits.measured_at}, {"cpu_share", limits.cpu_share}, {"why_now", probe_why}}},
        {"threads", context->options().threads},
        {"kv", o.engine.kv},
        {"ctx", options.ctx},
        {"repetitions", o.repetitions},
        {"compute", ComputeModeName(model.compute())},
        {"compute_reason", model.compute_reason()},
        {"quant", model.quant()},
        {"pp", {{"n", o.prompt}, {"tok_s", pps.mean}, {"stddev", pps.std}, {"gflops", pp_gflops},
                {"peak_gflops", peak}, {"peak_fraction", peak > 0 ? pp_gflops / peak : 0}}},
        {"tg", {{"n", o.generate}, {"depth", o.depth}, {"tok_s", tgs.mean}, {"stddev", tgs.std}}},
        {"weight_bytes_per_token", bytes},
        {"kv_bytes_per_token", kv_bytes},
        {"read_bandwidth_gbs", limits.read_gbs},
        {"tg_limit_tok_s", tg_limit.tok_s},
        {"tg_bound", tg_limit.bound},
        {"tg_compute_limit_tok_s", tg_compute.tok_s},
        {"tg_roofline", tg_limit.tok_s > 0 ? tgs.mean / tg_limit.tok_s : 0}};
    if (const auto& iv = context->interventions()) j["interventions"] = iv->descriptions();
    for (const auto& [what, groups] : paths) j["paths"][what] = PathsToJson(groups);
    if (!m.parallel_tg.empty())
      j["parallel"] = {{"sequences", o.parallel}, {"tok_s", par.mean}, {"stddev", par.std},
                       {"speedup", tgs.mean > 0 ? par.mean / tgs.mean : 0},
                       {"limit_tok_s", par_limit.tok_s}, {"bound", par_limit.bound},
                       {"compute_limit_tok_s", par_compute.tok_s},
                       {"roofline", par_limit.tok_s > 0 ? par.mean / par_limit.tok_s : 0}};
    fmt::print("{}\n", j.dump(2));
    return {};
  }
  PrintMachine(limits, probe_why);
  fmt::print("model    {} | {}{} | compute {} ({}) | kv {} | ctx {} | {} repetition{} | weights {:.1f} MB read per token\n\n",
             o.engine.model_dir, ArchName(context->config().arch),
             model.quant().empty() ? "" : " --quant " + model.quant(), ComputeModeName(model.compute()),
             model.compute_reason(), o.engine.kv, options.ctx, o.repetitions, o.repetitions == 1 ? "" : "s",
             bytes / 1e6);
  fmt::print("paths    on {}\n", limits.simd);
  for (const auto& [what, groups] : paths) fmt::print("{}", FormatPaths(fmt::format("  {:<13}", what), groups));
  fmt::print("\n");
  if (const auto& iv = context->interventions())
    fmt::print("interventions {}\n\n", fmt::join(iv->descriptions(), " "));
  // A llama-bench-style markdown table: fixed columns, one row per test.
  constexpr const char* kRow = "| {:<14} | {:>20} | {:>26} | {:>8} |\n";
  fmt::print(kRow, "test", "tok/s", "limit", "of limit");
  fmt::print("|{:-<16}|{:->22}|{:->28}|{:->10}|\n", "", ":", ":", ":");
  const auto pct = [](double x, double limit) { return limit > 0 ? fmt::format("{:.1f}%", 100 * x / limit) : "—"; };
  if (o.prompt > 0)
    fmt::print(kRow, fmt::format("pp{}", o.prompt), fmt::format("{:.1f} ± {:.1f}", pps.mean, pps.std),
               fmt::format("{:.0f} GFLOP/s peak", peak), pct(pp_gflops, peak));
  if (o.generate > 0)
    fmt::print(kRow, fmt::format("tg{}{}", o.generate, o.depth ? fmt::format("@d{}", o.depth) : ""),
               fmt::format("{:.1f} ± {:.1f}", tgs.mean, tgs.std), tg_limit.Describe(), pct(tgs.mean, tg_limit.tok_s));
  if (!m.parallel_tg.empty())
    fmt::print(kRow, fmt::format("tg{}{} x{}", o.generate, o.depth ? fmt::format("@d{}", o.depth) : "", o.parallel),
               fmt::format("{:.1f} ± {:.1f}", par.mean, par.std), par_limit.Describe(), pct(par.mean, par_limit.tok_s));
  if (!m.parallel_tg.empty() && tgs.mean > 0)
    fmt::print("\n{} sequences decoded together: {:.2f}x the tok/s of one\n", o.parallel, par.mean / tgs.mean);
  return {};
}

}  // namespace

Subcommand AddBenchCommand(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand("bench", "Prompt and generation speed against the machine's limits");
  o->engine.Add(app, /*model_required=*/false);
  o->interventions.Add(app);
  AddIntFlag(app, "-p,--n-prompt", &o->prompt, {0, kMaxTokenCount}, "prompt tokens, pp (default: 512)");
  AddIntFlag(app, "-n,--n-gen", &o->generate, {0, kMaxTokenCount}, "generated tokens, tg (default: 128)");
  AddIntFlag(app, "-d,--depth", &o->depth, {0, kMaxTokenCount}, "context already in the cache before tg (default: 0)");
  AddIntFlag(app, "-r,--repetitions", &o->repetitions, {1, 1000}, "repetitions (default: 3)");
  AddIntFlag(app, "--parallel", &o->parallel, {1, 64},
             "also decode N sequences together, one pass over the weights per step: aggregate tok/s (default: 1)");
  app->add_flag("--json", o->json, "one JSON object");
  app->add_flag("--machine", o->machine, "re-measure the machine's bandwidth and peak");
  AddExamples(app, {"oko bench -m ../shared/models/tiny-qwen3 -p 64 -n 16",
                    "oko bench -m DIR -t 1 --kv f16 --json",
                    "oko bench -m DIR -p 0 -n 64 --parallel 8",
                    "oko bench --machine"});
  return {app, [o] { return RunBench(*o); }};
}

}  // namespace oko
