// What a full attention trace costs: greedy decode (tg128 after a 32-token prefill) with
// no trace sink, with an idle sink (attached, asking for no layer: the hook's own checks,
// an upper bound of what the null-pointer branch costs when no sink is attached), and
// with a TraceRecorder keeping every layer, head and query as f32 (oko trace) or f16
// (oko chat --record-attention), on the shared tiny models. Run: build/bench/trace_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true (say whether the machine was shared).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "engine/context.h"
#include "engine/trace_recorder.h"

namespace oko {
namespace {

constexpr int kPrompt = 32, kDecode = 128;

std::string ModelDir(const std::string& name) {
  const char* env = std::getenv("OKO_SHARED");
  return (env != nullptr && *env ? std::string(env) : std::string(OKO_SOURCE_DIR) + "/../shared") + "/models/" + name;
}

enum class Sink { kNone, kIdle, kFullF32, kFullF16 };

// Attached, wants nothing.
class IdleSink : public TraceSink {
 public:
  bool WantsAttention(int64_t) const override { return false; }
};

void BM_Decode(benchmark::State& s, const std::string& name, Sink sink) {
  EngineOptions o;
  o.threads = static_cast<int>(s.range(0));
  o.ctx = kPrompt + kDecode + 1;
  auto loaded = LoadContext(ModelDir(name), o);
  if (!loaded.ok()) {
    s.SkipWithError(loaded.status().message().c_str());
    return;
  }
  Context& context = **loaded;
  const ModelConfig& c = context.config();
  std::vector<int32_t> prompt(kPrompt);
  for (int i = 0; i < kPrompt; ++i) prompt[i] = (i * 37 + 1) % static_cast<int>(c.vocab_size);
  std::vector<float> logits;
  for (auto _ : s) {
    s.PauseTiming();
    TraceFilter f;
    f.store_f16 = sink == Sink::kFullF16;
    auto rec = std::make_unique<TraceRecorder>(c.num_layers, c.num_heads, 0, f);
    IdleSink idle;
    context.Reset();
    context.set_trace(sink == Sink::kNone ? nullptr : sink == Sink::kIdle ? static_cast<TraceSink*>(&idle) : rec.get());
    context.Forward(prompt, Logits::kLast, &logits);
    s.ResumeTiming();
    for (int i = 0; i < kDecode; ++i) {
      const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      context.Forward(std::span<const int32_t>(&next, 1), Logits::kLast, &logits);
    }
    s.PauseTiming();
    context.set_trace(nullptr);
    rec.reset();
    s.ResumeTiming();
  }
  s.counters["tok/s"] = benchmark::Counter(kDecode, benchmark::Counter::kIsIterationInvariantRate);
}

#define OKO_TRACE_BENCH(id, model)                                                                            \
  BENCHMARK_CAPTURE(BM_Decode, id##_notrace, model, Sink::kNone)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();   \
  BENCHMARK_CAPTURE(BM_Decode, id##_idlesink, model, Sink::kIdle)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();  \
  BENCHMARK_CAPTURE(BM_Decode, id##_fulltrace, model, Sink::kFullF32)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime(); \
  BENCHMARK_CAPTURE(BM_Decode, id##_fulltrace_f16, model, Sink::kFullF16)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()

OKO_TRACE_BENCH(stories260k, "stories260k");
OKO_TRACE_BENCH(tinyqwen3, "tiny-qwen3");

}  // namespace
}  // namespace oko
