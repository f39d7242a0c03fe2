// oko profile -m DIR [-p 512] [-n 128] [--parallel N] [--json]: where the time goes, per op
// and per layer, prefill and decode apart, against this machine's measured limits;
// --parallel N profiles the decode of N sequences together.
#include <chrono>
#include <nlohmann/json.hpp>

#include "engine/machine_limits.h"
#include "engine/profile_report.h"
#include "tools/bench_util.h"
#include "tools/command.h"
#include "tools/decode_batch.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"

namespace oko {
namespace {

struct ProfileOptions {
  EngineFlags engine;
  int64_t prompt = 512, generate = 128, parallel = 1;
  bool json = false;
};

// Decodes `ids` one at a time; returns the seconds it took.
double Decode(Context& context, const std::vector<int32_t>& ids) {
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (int32_t id : ids) context.Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &logits);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Status RunProfile(const ProfileOptions& o) {
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  // As oko bench: without -c the context is sized to fit; with -c it must hold the run.
  const int64_t needed = o.prompt + 2 * o.generate + 1;  // decode runs twice: plain, profiled
  if (o.engine.ctx_given() && needed > o.engine.ctx)
    return Errorf("-p {} + 2 x -n {} needs a context of {} positions, more than -c {} (raise -c, or leave it "
                  "out to size it to fit)",
                  o.prompt, o.generate, needed, o.engine.ctx);
  options.ctx = o.engine.ctx_given() ? o.engine.ctx : needed;
  const std::string ctx_what = fmt::format("-p {} -n {}", o.prompt, o.generate);
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(o.engine.model_dir, options, ctx_what));
  MachineLimits limits = LoadOrMeasureMachine(context->pool(), false);
  const int64_t V = context->config().vocab_size;
  const auto prompt = SyntheticIds(std::max<int64_t>(o.prompt, 1), V);
  const auto decode = SyntheticIds(o.generate, V, 2);
  std::vector<float> logits;
  // --parallel: the decode is of that many sequences together, each after its own prompt
  // of the same length; the prefill profiled is the first sequence's.
  std::unique_ptr<DecodeBatch> batch;
  if (o.parallel > 1 && o.generate > 0) {
    OKO_ASSIGN_OR_RETURN(batch, DecodeBatch::Create(*context, options, static_cast<size_t>(o.parallel),
                                                    static_cast<int64_t>(prompt.size()) + o.generate));
  }
  const auto decode_seconds = [&] {
    if (batch == nullptr) return Decode(*context, decode);
    batch->Reset(static_cast<int64_t>(prompt.size()));
    return batch->Decode(o.generate);
  };

  // Warm-up (the cache's memory committed, as the batch's is), and the decode speed
  // without the profiler, to report its overhead.
  context->CommitCache(static_cast<int64_t>(prompt.size()) + o.generate);
  context->Forward(prompt, Logits::kLast, &logits);
  const double plain = decode_seconds();
  context->Reset();

  Profiler profiler;
  context->set_profiler(&profiler);
  context->Forward(prompt, Logits::kLast, &logits);
  if (batch != nullptr) batch->set_profiler(&profiler);
  const double profiled = decode_seconds();
  if (batch != nullptr) batch->set_profiler(nullptr);
  context->set_profiler(nullptr);
  const int64_t decoded = o.generate * o.parallel;  // tokens, all sequences together

  // The KV cache left out: the weights alone prove too low a probe.
  const std::string probe_why =
      o.generate > 0 && plain > 0
          ? RemeasureIfDecodeBeatsProbe(context->pool(), WeightBytesPerToken(context->model().graph()),
                                        o.generate / plain, &limits)
          : "";
  const double peak = context->model().compute() == ComputeMode::kBf16 ? limits.bf16_gflops : limits.f32_gflops;
  const PhaseProfile pre = SummarizeProfile(profiler, context->model().graph(), Phase::kPrefill,
                                            static_cast<int64_t>(prompt.size()), limits, peak);
  const PhaseProfile dec = SummarizeProfile(profiler, context->model().graph(), Phase::kDecode, decoded,
                                            limits, peak, static_cast<size_t>(o.parallel));
  const double overhead = plain > 0 ? profiled / plain - 1 : 0;
  if (o.json) {
    nlohmann::json j = {{"model", o.engine.model_dir},
                        {"threads", context->options().threads},
                        {"machine", {{"cpu", limits.cpu}, {"simd", limits.simd},
                                     {"read_gbs", limits.read_gbs}, {"f32_gflops", limits.f32_gflops},
                                     {"bf16_gflops", limits.bf16_gflops}, {"int8_gops", limits.int8_gops},
                                     {"measured_at", limits.measured_at}, {"cpu_share", limits.cpu_share},
                                     {"why_now", probe_why}}},
                        {"compute", ComputeModeName(context->model().compute())},
                        {"compute_reason", context->model().compute_reason()},
                        {"prefill", ProfileToJson(pre)},
                        {"decode", o.generate > 0 ? ProfileToJson(dec) : nlohmann::json()},
                        {"profiler_overhead", overhead}};
    fmt::print("{}\n", j.dump(2));
    return {};
  }
  const int threads = context->options().threads;
  fmt::print("machine: {} ({}), read {:.1f} GB/s, f32 {:.0f} GFLOP/s, bf16 {:.0f} GFLOP/s{} ({} thread{}; {})\n",
             limits.cpu, limits.simd, limits.read_gbs, limits.f32_gflops, limits.bf16_gflops,
             limits.int8_gops > 0 ? fmt::format(", int8 {:.0f} GOP/s", limits.int8_gops) : "", threads,
             threads == 1 ? "" : "s", limits.ProbeNote() + (probe_why.empty() ? "" : ", now: " + probe_why));
  fmt::print("compute: {} ({})\n", ComputeModeName(context->model().compute()),
             context->model().compute_reason());
  fmt::print("{}", FormatProfile(pre));
  if (o.generate == 0) return {};  // -n 0: no decode to show
  fmt::print("\n{}", FormatProfile(dec));
  fmt::print("profiler overhead on decode: {:+.1f}% (the table's decode ran at {:.1f} tok/s, {:.1f} unprofiled)\n",
             100 * overhead, decoded / profiled, decoded / plain);
  return {};
}

}  // namespace

Subcommand AddProfileCommand(CLI::App& root) {
  auto o = std::make_shared<ProfileOptions>();
  CLI::App* app = root.add_subcommand("profile", "Per-op time, GFLOP/s and GB/s against the machine's limits");
  o->engine.Add(app);
  AddIntFlag(app, "-p,--n-prompt", &o->prompt, {1, kMaxTokenCount}, "prompt tokens (default: 512)");
  AddIntFlag(app, "-n,--n-gen", &o->generate, {0, kMaxTokenCount}, "decode steps (default: 128)");
  AddIntFlag(app, "--parallel", &o->parallel, {1, 64},
             "decode this many sequences together, one pass over the weights per step (default: 1)");
  app->add_flag("--json", o->json, "one JSON object");
  AddExamples(app, {"oko profile -m ../shared/models/stories260k -p 64 -n 16",
                    "oko profile -m DIR -t 1 --json > profile.json",
                    "oko profile -m DIR -t 1 -p 64 -n 32 --parallel 8"});
  return {app, [o] { return RunProfile(*o); }};
}

}  // namespace oko
