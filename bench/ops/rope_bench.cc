// RopeNeoxInplace over the q heads of Qwen3-0.6B (16 x 128) for 1 (decode) or 512 rows.
#include <cmath>
#include <vector>

#include "bench/ops/bench_util.h"
#include "ops/rope.h"

namespace oko::bench {
namespace {

void BM_Rope_F32(benchmark::State& s) {
  const size_t rows = s.range(0), heads = s.range(1), D = kHeadDim, half = D / 2;
  std::vector<float> x(rows * heads * D, 0.5f), cos(rows * half), sin(rows * half);
  for (size_t i = 0; i < rows * half; ++i) cos[i] = std::cos(0.01f * i), sin[i] = std::sin(0.01f * i);
  const RopeArgs a{x.data(), heads * D, rows, heads, D, cos.data(), sin.data()};
  BestTime best;
  for (auto _ : s) {
    best.Start();
    RopeNeoxInplace(a);
    benchmark::DoNotOptimize(x.data());
    best.Stop();
  }
  SetThroughput(s, rows * (heads * D * 8.0 + half * 8.0), 6.0 * rows * heads * half, best);
  s.SetLabel(DispatchedTargetName());
}
BENCHMARK(BM_Rope_F32)->ArgNames({"rows", "heads"})->Args({1, kHeads06})->Args({512, kHeads06})->UseRealTime();

}  // namespace
}  // namespace oko::bench
