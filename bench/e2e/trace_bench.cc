// What a full attention trace costs: greedy decode (tg128 after a 32-token prefill) with
// no trace sink vs a TraceRecorder keeping every layer, head and query, on the shared
// tiny models. Run: build/bench/trace_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true (say whether the machine was shared).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "engine/model.h"
#include "engine/trace_recorder.h"

namespace oko {
namespace {

constexpr int kPrompt = 32, kDecode = 128;

std::string ModelDir(const std::string& name) {
  const char* env = std::getenv("OKO_SHARED");
  return (env != nullptr && *env ? std::string(env) : std::string(OKO_SOURCE_DIR) + "/../shared") + "/models/" + name;
}

void BM_Decode(benchmark::State& s, const std::string& name, bool trace) {
  EngineOptions o;
  o.threads = static_cast<int>(s.range(0));
  o.ctx = kPrompt + kDecode + 1;
  auto loaded = Model::Load(ModelDir(name), o);
  if (!loaded.ok()) {
    s.SkipWithError(loaded.status().message().c_str());
    return;
  }
  Model& model = **loaded;
  const ModelConfig& c = model.config();
  std::vector<int32_t> prompt(kPrompt);
  for (int i = 0; i < kPrompt; ++i) prompt[i] = (i * 37 + 1) % static_cast<int>(c.vocab_size);
  std::vector<float> logits;
  for (auto _ : s) {
    s.PauseTiming();
    auto rec = std::make_unique<TraceRecorder>(c.num_layers, c.num_heads, 0, TraceFilter{});
    model.Reset();
    model.set_trace(trace ? rec.get() : nullptr);
    model.Forward(prompt, Logits::kLast, &logits);
    s.ResumeTiming();
    for (int i = 0; i < kDecode; ++i) {
      const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      model.Forward(std::span<const int32_t>(&next, 1), Logits::kLast, &logits);
    }
    s.PauseTiming();
    model.set_trace(nullptr);
    rec.reset();
    s.ResumeTiming();
  }
  s.counters["tok/s"] = benchmark::Counter(kDecode, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(BM_Decode, stories260k_notrace, "stories260k", false)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, stories260k_fulltrace, "stories260k", true)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, tinyqwen3_notrace, "tiny-qwen3", false)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, tinyqwen3_fulltrace, "tiny-qwen3", true)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

}  // namespace
}  // namespace oko
