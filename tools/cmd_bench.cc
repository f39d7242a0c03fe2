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

void PrintMachine(const MachineLimits& m) {
  fmt::print("machine  {} | {} threads | read {:.1f} GB/s | f32 FMA {:.0f} GFLOP/s | bf16 dot {:.0f} GFLOP/s\n",
             m.cpu, m.threads, m.read_gbs, m.f32_gflops, m.bf16_gflops);
}

Status RunBench(const BenchOptions& o) {
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  if (o.engine.model_dir.empty()) {
    if (!o.machine) return Status::Error("bench: give -m DIR (or --machine)", ExitCode::kUsage);
    ThreadPool pool(options.threads > 0 ? options.threads : std::thread::hardware_concurrency());
    PrintMachine(LoadOrMeasureMachine(pool, /*remeasure=*/true));
    return {};
  }
  options.ctx = std::max<int64_t>(options.ctx, o.prompt + o.depth + o.generate + 1);
  OKO_ASSIGN_OR_RETURN(auto context, LoadContext(o.engine.model_dir, options));
  const MachineLimits limits = LoadOrMeasureMachine(context->pool(), o.machine);
  const int64_t V = context->config().vocab_size;
  const auto prompt = SyntheticIds(o.prompt, V);
  const auto depth = SyntheticIds(o.depth, V, 1);
  const auto decode = SyntheticIds(o.generate, V, 2);
  std::vector<float> logits;

  // Warm-up: page the weights in, create the oneDNN primitives.
  context->Forward(SyntheticIds(std::min<int64_t>(o.prompt, 64), V), Logits::kLast, &logits);
  context->Reset();
  std::vector<double> pp, tg;
  for (int64_t r = 0; r < o.repetitions; ++r) {
    context->Reset();
    if (o.prompt > 0) pp.push_back(o.prompt / Seconds([&] { context->Forward(prompt, Logits::kLast, &logits); }));
    context->Reset();
    if (o.depth > 0) context->Forward(depth, Logits::kNone, nullptr);
    if (o.generate > 0)
      tg.push_back(o.generate / Seconds([&] {
                     for (int32_t id : decode)
                       context->Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &logits);
                   }));
  }
  const MeanStd pps = Summarize(pp), tgs = Summarize(tg);
  const double bytes = WeightBytesPerToken(context->model().graph());
  const double kv_bytes = 2.0 * context->config().num_layers * context->config().kv_dim() *
                          DTypeSize(options.kv_dtype) * (o.depth + o.generate / 2.0);
  const double tg_limit = limits.read_gbs * 1e9 / (bytes + kv_bytes);
  const double pp_gflops = pps.mean * MatMulFlopsPerToken(context->model().graph()) / 1e9;
  const double peak = context->options().compute == ComputeMode::kBf16 ? limits.bf16_gflops : limits.f32_gflops;
  if (o.json) {
    nlohmann::json j = {
        {"model", o.engine.model_dir},
        {"threads", context->options().threads},
        {"compute", ComputeModeName(context->options().compute)},
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
  PrintMachine(limits);
  fmt::print("model    {} | {} | compute {} | weights {:.1f} MB read per token\n", o.engine.model_dir,
             ArchName(context->config().arch), ComputeModeName(context->options().compute), bytes / 1e6);
  fmt::print("{:<12} {:>14} {:>24}\n", "test", "tok/s", "vs limit");
  if (o.prompt > 0)
    fmt::print("{:<12} {:>8.1f} ± {:<5.1f} {:>8.1f} GFLOP/s = {:4.1f}% of peak\n",
               fmt::format("pp{}", o.prompt), pps.mean, pps.std, pp_gflops, peak > 0 ? 100 * pp_gflops / peak : 0);
  if (o.generate > 0)
    fmt::print("{:<12} {:>8.1f} ± {:<5.1f} limit {:.1f} tok/s = {:4.1f}% of bandwidth\n",
               fmt::format("tg{}{}", o.generate, o.depth ? fmt::format("@d{}", o.depth) : ""),
               tgs.mean, tgs.std, tg_limit, tg_limit > 0 ? 100 * tgs.mean / tg_limit : 0);
  return {};
}

}  // namespace

Subcommand AddBenchCommand(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand("bench", "Prompt and generation speed against the machine's limits");
  o->engine.Add(app, /*model_required=*/false);
  app->add_option("-p,--n-prompt", o->prompt, "prompt tokens (pp)")->check(CLI::NonNegativeNumber);
  app->add_option("-n,--n-gen", o->generate, "generated tokens (tg)")->check(CLI::NonNegativeNumber);
  app->add_option("-d,--depth", o->depth, "context already in the cache before tg")->check(CLI::NonNegativeNumber);
  app->add_option("-r,--repetitions", o->repetitions, "repetitions")->check(CLI::PositiveNumber);
  app->add_flag("--json", o->json, "one JSON object");
  app->add_flag("--machine", o->machine, "re-measure the machine's bandwidth and peak");
  return {app, [o] { return RunBench(*o); }};
}

}  // namespace oko
