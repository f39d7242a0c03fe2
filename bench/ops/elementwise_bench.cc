// Elementwise ops at Qwen3 lengths: softmax over a context (512, 4096) and the vocab,
// SiLU-mul and the residual add over the MLP / hidden widths. Data hot in cache.
#include <cstdint>
#include <vector>

#include "bench/ops/bench_util.h"
#include "ops/elementwise.h"

namespace oko::bench {
namespace {

void BM_Softmax_F32(benchmark::State& s) {
  const size_t n = s.range(0);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 97) * 0.1f;
  BestTime best;
  for (auto _ : s) {  // repeated in place: the values stay finite, the work is the same
    best.Start();
    SoftmaxInplace(x.data(), n);
    benchmark::DoNotOptimize(x.data());
    best.Stop();
  }
  SetThroughput(s, 8.0 * n, 5.0 * n, best);
  s.SetLabel(DispatchedTargetName());
}
BENCHMARK(BM_Softmax_F32)->ArgNames({"n"})->Arg(512)->Arg(4096)->Arg(kVocab)->UseRealTime();

void BM_SiluMul_F32(benchmark::State& s) {
  const size_t n = s.range(0);
  std::vector<float> g(n, 0.3f), u(n, 0.7f), out(n);
  BestTime best;
  for (auto _ : s) {
    best.Start();
    SiluMul(g.data(), u.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
    best.Stop();
  }
  SetThroughput(s, 12.0 * n, 6.0 * n, best);
  s.SetLabel(DispatchedTargetName());
}
BENCHMARK(BM_SiluMul_F32)->ArgNames({"n"})->Arg(kInter06)->Arg(512 * kInter06)->UseRealTime();

void BM_AddInplace_F32(benchmark::State& s) {
  const size_t n = s.range(0);
  std::vector<float> y(n, 0.0f), x(n, 1e-9f);
  BestTime best;
  for (auto _ : s) {
    best.Start();
    AddInplace(y.data(), x.data(), n);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, 12.0 * n, 1.0 * n, best);
  s.SetLabel(DispatchedTargetName());
}
BENCHMARK(BM_AddInplace_F32)->ArgNames({"n"})->Arg(kHidden06)->Arg(512 * kHidden06)->UseRealTime();

void BM_F32ToBf16Row(benchmark::State& s) {
  const size_t n = s.range(0);
  std::vector<float> x(n, 0.3f);
  std::vector<uint16_t> y(n);
  BestTime best;
  for (auto _ : s) {
    best.Start();
    F32ToBf16Row(x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, 6.0 * n, 0.0, best);
  s.SetLabel(DispatchedTargetName());
}
BENCHMARK(BM_F32ToBf16Row)->ArgNames({"n"})->Arg(512 * kHidden06)->UseRealTime();

void BM_F32ToF16Row(benchmark::State& s) {
  const size_t n = s.range(0);
  std::vector<float> x(n, 0.3f);
  std::vector<uint16_t> y(n);
  BestTime best;
  for (auto _ : s) {
    best.Start();
    F32ToF16Row(x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, 6.0 * n, 0.0, best);
  s.SetLabel(DispatchedTargetName());
}
BENCHMARK(BM_F32ToF16Row)->ArgNames({"n"})->Arg(kKvHeads06 * kHeadDim)->UseRealTime();

}  // namespace
}  // namespace oko::bench
