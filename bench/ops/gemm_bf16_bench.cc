// Prefill GEMM with the vdpbf16ps kernel (ops/gemm_bf16.h): y[M, N] = x[M, K] · W[N, K]^T,
// bf16 weights used in place, f32 activations packed to bf16 inside the timed region (as
// the engine does per call). Same shapes as BM_OnednnMatMul_Bf16 for a side-by-side.
// Weights are hot (same matrix every iteration): prefill is compute bound.
#include <vector>

#include "bench/ops/bench_util.h"
#include "engine/thread_pool.h"
#include "ops/gemm_bf16.h"

namespace oko::bench {
namespace {

void BM_GemmBf16(benchmark::State& s) {
  if (!Bf16GemmSupported()) return s.SkipWithError("no AVX512-BF16");
  const size_t M = s.range(0), K = s.range(1), N = s.range(2);
  ThreadPool pool(static_cast<int>(s.range(3)));
  std::vector<uint16_t> w(N * K, 0x3c00);
  std::vector<float> x(M * K, 0.5f), y(M * N);
  std::vector<uint32_t> packed(PackedBf16Words(M, K));
  const size_t blocks = (M + kBf16PackRows - 1) / kBf16PackRows;
  auto run = [&] {
    pool.ParallelFor(blocks, 1, [&](size_t b0, size_t b1, int) {
      PackBf16Rows(x.data(), K, M, K, b0, b1, packed.data());
    });
    pool.ParallelFor(N, 8, [&](size_t n0, size_t n1, int) {
      GemmBf16Packed(packed.data(), M, K, w.data(), nullptr, y.data(), N, n0, n1);
    }, 4);
  };
  run();
  BestTime best;
  for (auto _ : s) {
    best.Start();
    run();
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, 2.0 * N * K + 4.0 * M * (K + N), 2.0 * M * N * K, best);
}

BENCHMARK(BM_GemmBf16)
    ->ArgNames({"M", "K", "N", "threads"})
    ->Args({4, kHidden06, kInter06, 1})
    ->Args({16, kHidden06, kInter06, 1})
    ->Args({48, kHidden06, kInter06, 1})
    ->Args({48, kInter06, kHidden06, 1})
    ->Args({64, kHidden06, kInter06, 1})
    ->Args({64, kInter06, kHidden06, 1})
    ->Args({512, kHidden06, kInter06, 1})
    ->Args({512, kInter06, kHidden06, 1})
    ->Args({512, kHidden17, kInter17, 1})
    ->Args({512, kHidden06, kInter06, 2})
    ->UseRealTime();

}  // namespace
}  // namespace oko::bench
