// oko bench -m DIR [-p 512] [-n 128] [-t N] [-r 3] [--depth D] [--json]: prompt processing
// (pp) and generation (tg) speed, as llama-bench measures them, against this machine's
// measured limits. `oko bench --machine` re-measures those limits.
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/machine_limits.h"
#include "tools/bench_util.h"
#include "tools/command.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"

namespace oko {
namespace {

struct BenchOptions {
  EngineFlags engine;
  int64_t prompt = 512, generate = 128, depth = 0, repetitions = 3;
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

void PrintMachine(const MachineLimits& m, bool measured_now) {
  fmt::print("machine  {} | {} thread{} | read {:.1f} GB/s | f32 FMA {:.0f} GFLOP/s | bf16 dot {:.0f} GFLOP/s ({})\n",
             m.cpu, m.threads, m.threads == 1 ? "" : "s", m.read_gbs, m.f32_gflops, m.bf16_gflops,
             measured_now ? "measured now" : "cached in ~/.cache/oko/machine.json; --machine re-measures");
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
    PrintMachine(LoadOrMeasureMachine(pool, /*remeasure=*/true), true);
    return {};
  }
  if (o.prompt == 0 && o.generate == 0) return Status::Error("-p 0 and -n 0: nothing to measure", ExitCode::kUsage);
  OKO_ASSIGN_OR_RETURN(options.ctx, BenchContext(o));
  const std::string ctx_what = fmt::format("-p {} -d {} -n {}", o.prompt, o.depth, o.generate);
  OKO_ASSIGN_OR_RETURN(auto model, LoadModel(o.engine.model_dir, options, ctx_what));
  const MachineLimits limits = LoadOrMeasureMachine(model->pool(), o.machine);
  const int64_t V = model->config().vocab_size;
  const auto prompt = SyntheticIds(o.prompt, V);
  const auto depth = SyntheticIds(o.depth, V, 1);
  const auto decode = SyntheticIds(o.generate, V, 2);
  std::vector<float> logits;

  // Warm-up: page the weights in, create the oneDNN primitives.
  model->Forward(SyntheticIds(std::min<int64_t>(o.prompt, 64), V), Logits::kLast, &logits);
  model->Reset();
  std::vector<double> pp, tg;
  for (int64_t r = 0; r < o.repetitions; ++r) {
    model->Reset();
    if (o.prompt > 0) pp.push_back(o.prompt / Seconds([&] { model->Forward(prompt, Logits::kLast, &logits); }));
    model->Reset();
    if (o.depth > 0) model->Forward(depth, Logits::kNone, nullptr);
    if (o.generate > 0)
      tg.push_back(o.generate / Seconds([&] {
                     for (int32_t id : decode)
                       model->Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &logits);
                   }));
  }
  const MeanStd pps = Summarize(pp), tgs = Summarize(tg);
  const double bytes = WeightBytesPerToken(model->graph());
  const double kv_bytes = 2.0 * model->config().num_layers * model->config().kv_dim() *
                          DTypeSize(options.kv_dtype) * (o.depth + o.generate / 2.0);
  const double tg_limit = limits.read_gbs * 1e9 / (bytes + kv_bytes);
  const double pp_gflops = pps.mean * MatMulFlopsPerToken(model->graph()) / 1e9;
  const double peak = model->options().compute == ComputeMode::kBf16 ? limits.bf16_gflops : limits.f32_gflops;
  if (o.json) {
    nlohmann::json j = {
        {"oko_version", "0.1"},
        {"model", o.engine.model_dir},
        {"threads", model->options().threads},
        {"kv", o.engine.kv},
        {"ctx", options.ctx},
        {"repetitions", o.repetitions},
        {"compute", ComputeModeName(model->options().compute)},
        {"pp", {{"n", o.prompt}, {"tok_s", pps.mean}, {"stddev", pps.std}, {"gflops", pp_gflops},
                {"peak_gflops", peak}, {"peak_fraction", peak > 0 ? pp_gflops / peak : 0}}},
        {"tg", {{"n", o.generate}, {"depth", o.depth}, {"tok_s", tgs.mean}, {"stddev", tgs.std}}},
        {"weight_bytes_per_token", bytes},
        {"kv_bytes_per_token", kv_bytes},
        {"read_bandwidth_gbs", limits.read_gbs},
        {"tg_limit_tok_s", tg_limit},
        {"tg_roofline", tg_limit > 0 ? tgs.mean / tg_limit : 0}};
    fmt::print("{}\n", j.dump(2));
    return {};
  }
  PrintMachine(limits, o.machine);
  fmt::print("model    {} | {} | compute {} | kv {} | ctx {} | {} repetition{} | weights {:.1f} MB read per token\n\n",
             o.engine.model_dir, ArchName(model->config().arch), ComputeModeName(model->options().compute),
             o.engine.kv, options.ctx, o.repetitions, o.repetitions == 1 ? "" : "s", bytes / 1e6);
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
               fmt::format("{:.1f} ± {:.1f}", tgs.mean, tgs.std), fmt::format("{:.1f} tok/s bandwidth", tg_limit),
               pct(tgs.mean, tg_limit));
  return {};
}

}  // namespace

Subcommand AddBenchCommand(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand("bench", "Prompt and generation speed against the machine's limits");
  o->engine.Add(app, /*model_required=*/false);
  AddIntFlag(app, "-p,--n-prompt", &o->prompt, {0, kMaxTokenCount}, "prompt tokens, pp (default: 512)");
  AddIntFlag(app, "-n,--n-gen", &o->generate, {0, kMaxTokenCount}, "generated tokens, tg (default: 128)");
  AddIntFlag(app, "-d,--depth", &o->depth, {0, kMaxTokenCount}, "context already in the cache before tg (default: 0)");
  AddIntFlag(app, "-r,--repetitions", &o->repetitions, {1, 1000}, "repetitions (default: 3)");
  app->add_flag("--json", o->json, "one JSON object");
  app->add_flag("--machine", o->machine, "re-measure the machine's bandwidth and peak");
  AddExamples(app, {"oko bench -m ../shared/models/tiny-qwen3 -p 64 -n 16",
                    "oko bench -m DIR -t 1 --kv f16 --json",
                    "oko bench --machine"});
  return {app, [o] { return RunBench(*o); }};
}

}  // namespace oko
