// oko bench -m DIR [-p 512] [-n 128] [-t N] [-r 3] [--depth D] [--parallel N] [--json]:
// prompt processing (pp) and generation (tg) speed, as llama-bench measures them, against
// this machine's measured limits; --parallel N adds tg of N sequences decoded together.
// `oko bench --machine` re-measures those limits.
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/batch_decoder.h"
#include "engine/machine_limits.h"
#include "tools/bench_util.h"
#include "tools/command.h"
#include "tools/engine_flags.h"

namespace oko {
namespace {

struct BenchOptions {
  EngineFlags engine;
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

void PrintMachine(const MachineLimits& m) {
  fmt::print("machine  {} | {} | {} threads | read {:.1f} GB/s | f32 FMA {:.0f} GFLOP/s | bf16 dot {:.0f} GFLOP/s\n",
             m.cpu, m.simd, m.threads, m.read_gbs, m.f32_gflops, m.bf16_gflops);
  fmt::print("probe    {}\n", m.ProbeNote());
}

constexpr int64_t kMaxParallel = 64;  // sequences decoded together

struct Measured {
  std::vector<double> pp, tg, parallel_tg;
};

// pp and tg of one sequence, `repetitions` times.
void MeasureOneSequence(const BenchOptions& o, Context& context, Measured& m) {
  const int64_t V = context.config().vocab_size;
  const auto prompt = SyntheticIds(o.prompt, V);
  const auto depth = SyntheticIds(o.depth, V, 1);
  const auto decode = SyntheticIds(o.generate, V, 2);
  std::vector<float> logits;
  // Warm-up: page the weights in, create the oneDNN primitives.
  context.Forward(SyntheticIds(std::min<int64_t>(o.prompt, 64), V), Logits::kLast, &logits);
  for (int64_t r = 0; r < o.repetitions; ++r) {
    context.Reset();
    if (o.prompt > 0) m.pp.push_back(o.prompt / Seconds([&] { context.Forward(prompt, Logits::kLast, &logits); }));
    context.Reset();
    if (o.depth > 0) context.Forward(depth, Logits::kNone, nullptr);
    if (o.generate > 0)
      m.tg.push_back(o.generate / Seconds([&] {
                       for (int32_t id : decode)
                         context.Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &logits);
                     }));
  }
}

// tg of o.parallel sequences decoding together (each at depth o.depth), aggregate tok/s.
Status MeasureParallel(const BenchOptions& o, std::shared_ptr<const Model> model,
                       std::shared_ptr<ThreadPool> pool, const EngineOptions& options, Measured& m) {
  const int64_t V = model->config().vocab_size;
  const size_t n = static_cast<size_t>(o.parallel);
  std::vector<std::unique_ptr<Context>> owned;
  std::vector<Context*> contexts;
  for (size_t i = 0; i < n; ++i) {
    OKO_ASSIGN_OR_RETURN(auto c, Context::Create(model, pool, options));
    contexts.push_back(c.get());
    owned.push_back(std::move(c));
  }
  BatchDecoder decoder(model, pool, n);
  std::vector<float> logits;
  std::vector<int32_t> ids(n);
  for (int64_t r = 0; r < o.repetitions; ++r) {
    for (size_t i = 0; i < n; ++i) {
      contexts[i]->Reset();
      if (o.depth > 0) contexts[i]->Forward(SyntheticIds(o.depth, V, 1 + i), Logits::kNone, nullptr);
    }
    m.parallel_tg.push_back(o.generate * o.parallel / Seconds([&] {
      for (int64_t step = 0; step < o.generate; ++step) {
        for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((step * 7919 + i * 104729 + 2) % V);
        decoder.Decode(contexts, ids, &logits);
      }
    }));
  }
  return {};
}

Status RunBench(const BenchOptions& o) {
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  if (o.parallel < 1 || o.parallel > kMaxParallel)
    return Status::Error(fmt::format("--parallel must be in [1, {}], got {}", kMaxParallel, o.parallel),
                         ExitCode::kUsage);
  if (o.engine.model_dir.empty()) {
    if (!o.machine) return Status::Error("bench: give -m DIR (or --machine)", ExitCode::kUsage);
    ThreadPool pool(options.threads > 0 ? options.threads : std::thread::hardware_concurrency());
    PrintMachine(LoadOrMeasureMachine(pool, /*remeasure=*/true));
    return {};
  }
  options.ctx = std::max<int64_t>(options.ctx, o.prompt + o.depth + o.generate + 1);
  OKO_ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::Load(o.engine.model_dir, options));
  auto pool = std::make_shared<ThreadPool>(options.threads > 0 ? options.threads
                                                               : std::thread::hardware_concurrency());
  OKO_ASSIGN_OR_RETURN(auto context, Context::Create(model, pool, options));
  const MachineLimits limits = LoadOrMeasureMachine(*pool, o.machine);
  Measured m;
  MeasureOneSequence(o, *context, m);
  if (o.parallel > 1 && o.generate > 0) OKO_RETURN_IF_ERROR(MeasureParallel(o, model, pool, options, m));

  const MeanStd pps = Summarize(m.pp), tgs = Summarize(m.tg), par = Summarize(m.parallel_tg);
  const double bytes = WeightBytesPerToken(model->graph());
  // KV bytes a decode step reads per sequence (the mean over the tg run).
  const double kv_bytes = 2.0 * model->config().num_layers * model->config().kv_dim() *
                          DTypeSize(options.kv_dtype) * (o.depth + o.generate / 2.0);
  const double tg_limit = limits.read_gbs * 1e9 / (bytes + kv_bytes);
  // N sequences per step: the weights once, every sequence's KV.
  const double par_limit = o.parallel * limits.read_gbs * 1e9 / (bytes + o.parallel * kv_bytes);
  const double pp_gflops = pps.mean * MatMulFlopsPerToken(model->graph()) / 1e9;
  const double peak = model->compute() == ComputeMode::kBf16 ? limits.bf16_gflops : limits.f32_gflops;
  if (o.json) {
    nlohmann::json j = {
        {"model", o.engine.model_dir},
        {"cpu", limits.cpu},
        {"simd", limits.simd},
        {"threads", context->options().threads},
        {"compute", ComputeModeName(model->compute())},
        {"compute_reason", model->compute_reason()},
        {"probe", {{"measured_at", limits.measured_at}, {"cpu_share", limits.cpu_share}}},
        {"pp", {{"n", o.prompt}, {"tok_s", pps.mean}, {"stddev", pps.std}, {"gflops", pp_gflops},
                {"peak_gflops", peak}, {"peak_fraction", peak > 0 ? pp_gflops / peak : 0}}},
        {"tg", {{"n", o.generate}, {"depth", o.depth}, {"tok_s", tgs.mean}, {"stddev", tgs.std}}},
        {"weight_bytes_per_token", bytes},
        {"kv_bytes_per_token", kv_bytes},
        {"read_bandwidth_gbs", limits.read_gbs},
        {"tg_limit_tok_s", tg_limit},
        {"tg_roofline", tg_limit > 0 ? tgs.mean / tg_limit : 0}};
    if (!m.parallel_tg.empty())
      j["parallel"] = {{"sequences", o.parallel}, {"tok_s", par.mean}, {"stddev", par.std},
                       {"speedup", tgs.mean > 0 ? par.mean / tgs.mean : 0},
                       {"limit_tok_s", par_limit}, {"roofline", par_limit > 0 ? par.mean / par_limit : 0}};
    fmt::print("{}\n", j.dump(2));
    return {};
  }
  PrintMachine(limits);
  fmt::print("model    {} | {} | compute {} ({}) | weights {:.1f} MB read per token\n",
             o.engine.model_dir, ArchName(model->config().arch), ComputeModeName(model->compute()),
             model->compute_reason(), bytes / 1e6);
  fmt::print("{:<12} {:>14} {:>24}\n", "test", "tok/s", "vs limit");
  const std::string at_depth = o.depth ? fmt::format("@d{}", o.depth) : "";
  if (o.prompt > 0)
    fmt::print("{:<12} {:>8.1f} ± {:<5.1f} {:>8.1f} GFLOP/s = {:4.1f}% of peak\n",
               fmt::format("pp{}", o.prompt), pps.mean, pps.std, pp_gflops, peak > 0 ? 100 * pp_gflops / peak : 0);
  if (o.generate > 0)
    fmt::print("{:<12} {:>8.1f} ± {:<5.1f} limit {:.1f} tok/s = {:4.1f}% of bandwidth\n",
               fmt::format("tg{}{}", o.generate, at_depth), tgs.mean, tgs.std, tg_limit,
               tg_limit > 0 ? 100 * tgs.mean / tg_limit : 0);
  if (!m.parallel_tg.empty())
    fmt::print("{:<12} {:>8.1f} ± {:<5.1f} limit {:.1f} tok/s = {:4.1f}% of bandwidth; {:.2f}x one sequence\n",
               fmt::format("tg{}{}x{}", o.generate, at_depth, o.parallel), par.mean, par.std, par_limit,
               par_limit > 0 ? 100 * par.mean / par_limit : 0, tgs.mean > 0 ? par.mean / tgs.mean : 0);
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
  app->add_option("--parallel", o->parallel,
                  "also decode N sequences together (one pass over the weights per step): aggregate tok/s");
  app->add_flag("--json", o->json, "one JSON object");
  app->add_flag("--machine", o->machine, "re-measure the machine's bandwidth and peak");
  return {app, [o] { return RunBench(*o); }};
}

}  // namespace oko
