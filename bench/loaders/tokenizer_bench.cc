// Tokenizer throughput: encode MB/s (10^6 bytes of UTF-8 input per second) of
// ../shared/golden/tokenizer/corpus.txt with the Qwen3 tokenizer (ids checked against
// corpus.ids.u32 before timing), and the load time of the Qwen3 tokenizer.json (11 MB).
// MB/s and bytes_per_second are per CPU second (Google Benchmark rates use CPU time);
// on a shared machine the wall-clock Time column is larger.
// Run: build/bench/tokenizer_bench --benchmark_repetitions=9 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstring>

#include "common/mapped_file.h"
#include "loaders/tokenizer.h"
#include "tools/command.h"

namespace oko {
namespace {

// $OKO_SHARED, else ../shared beside the source tree (tools/command.h).
std::string Shared(const std::string& relative) { return SharedDir() + "/" + relative; }

std::string ReadAll(benchmark::State& state, const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) state.SkipWithError(text.status().message().c_str());
  return text.ok() ? *text : std::string();
}

std::unique_ptr<Tokenizer> LoadQwen(benchmark::State& state) {
  auto tok = Tokenizer::Load(Shared("models/qwen3-tokenizer"));
  if (!tok.ok()) {
    state.SkipWithError(tok.status().message().c_str());
    return nullptr;
  }
  return std::move(tok).value();
}

// Encodes the corpus once and compares with the expected ids; false (and the benchmark
// marked as failed) when they differ, so no speed is reported for wrong output.
bool CheckCorpus(benchmark::State& state, const Tokenizer& tok, const std::string& text) {
  const std::string raw = ReadAll(state, Shared("golden/tokenizer/corpus.ids.u32"));
  std::vector<int32_t> expected(raw.size() / 4);
  std::memcpy(expected.data(), raw.data(), expected.size() * 4);
  auto ids = tok.Encode(text, false);
  if (!ids.ok() || *ids != expected) {
    state.SkipWithError("corpus ids differ from corpus.ids.u32");
    return false;
  }
  return true;
}

void SetThroughput(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e6,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// Warm: the BPE word cache holds the corpus's words from earlier iterations.
void BM_TokenizerEncode_Corpus(benchmark::State& state) {
  const std::string text = ReadAll(state, Shared("golden/tokenizer/corpus.txt"));
  auto tok = LoadQwen(state);
  if (!tok || !CheckCorpus(state, *tok, text)) return;
  for (auto _ : state) benchmark::DoNotOptimize(tok->Encode(text, false));
  SetThroughput(state, text.size());
}
BENCHMARK(BM_TokenizerEncode_Corpus)->Unit(benchmark::kMillisecond);

// Cold: a freshly loaded tokenizer (empty word cache) each iteration; load not timed.
void BM_TokenizerEncode_CorpusCold(benchmark::State& state) {
  const std::string text = ReadAll(state, Shared("golden/tokenizer/corpus.txt"));
  auto tok = LoadQwen(state);
  if (!tok || !CheckCorpus(state, *tok, text)) return;
  for (auto _ : state) {
    state.PauseTiming();
    tok = LoadQwen(state);
    state.ResumeTiming();
    benchmark::DoNotOptimize(tok->Encode(text, false));
  }
  SetThroughput(state, text.size());
}
BENCHMARK(BM_TokenizerEncode_CorpusCold)->Unit(benchmark::kMillisecond);

void BM_TokenizerLoad_Qwen3(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(LoadQwen(state));
}
BENCHMARK(BM_TokenizerLoad_Qwen3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace oko
