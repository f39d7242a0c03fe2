// RmsNormRows at decode (rows:1) and prefill (rows:512) shapes; data hot in cache.
#include <vector>

#include "bench/ops/bench_util.h"
#include "ops/rms_norm.h"

namespace oko::bench {
namespace {

void BM_RmsNorm_F32(benchmark::State& s) {
  const size_t rows = s.range(0), cols = s.range(1);
  std::vector<float> x(rows * cols, 0.5f), w(cols, 1.0f), y(rows * cols);
  const RmsNormArgs a{x.data(), cols, w.data(), y.data(), cols, rows, cols, 1e-6f};
  BestTime best;
  for (auto _ : s) {
    best.Start();
    RmsNormRows(a);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, rows * cols * 8.0 + cols * 4.0, 4.0 * rows * cols, best);
  s.SetLabel(DispatchedTargetName());
}
BENCHMARK(BM_RmsNorm_F32)->ArgNames({"rows", "cols"})
    ->Args({1, kHidden06})->Args({1, kHidden17})->Args({512, kHidden06})
    ->Args({16, kHeadDim})->UseRealTime();  // q_norm of one token: 16 heads of 128

}  // namespace
}  // namespace oko::bench
