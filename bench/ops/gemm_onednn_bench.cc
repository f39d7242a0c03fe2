// Prefill GEMM through oneDNN (OnednnMatMul): y[M, N] = x[M, K] · W[N, K]^T, bf16 weights
// (used in place in kBf16 mode, widened once in kF32 mode); activations f32 (kF32 mode) or
// rounded to bf16 (kBf16).
// Weights are hot (same matrix every iteration): prefill is compute bound.
#include <immintrin.h>

#include <vector>

#include "bench/ops/bench_util.h"
#include "common/dtype.h"
#include "ops/gemm_onednn.h"

namespace oko::bench {
namespace {

void RunGemm(benchmark::State& s, ComputeMode mode) {
  const size_t M = s.range(0), K = s.range(1), N = s.range(2);
  const int threads = static_cast<int>(s.range(3));
  std::vector<uint16_t> w(N * K, 0x3c00);
  std::vector<float> x(M * K, 0.5f), y(M * N);
  SetOnednnThreads(threads);
  OnednnMatMul mm(w.data(), DType::kBF16, N, K, nullptr, mode);
  mm.Run(x.data(), K, M, y.data(), N);  // creates the primitive for this M
  BestTime best;
  for (auto _ : s) {
    best.Start();
    mm.Run(x.data(), K, M, y.data(), N);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, mm.weight_bytes() + 4.0 * M * (K + N), 2.0 * M * N * K, best);
}

void BM_OnednnMatMul_F32(benchmark::State& s) { RunGemm(s, ComputeMode::kF32); }
void BM_OnednnMatMul_Bf16(benchmark::State& s) { RunGemm(s, ComputeMode::kBf16); }

void GemmArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads"});
  for (int M : {4, 16}) b->Args({M, kHidden06, kInter06, 1});  // crossover with GemmRows
  for (int M : {64, 512}) {
    b->Args({M, kHidden06, kInter06, 1});   // 0.6B up/gate
    b->Args({M, kInter06, kHidden06, 1});   // 0.6B down
    b->Args({M, kHidden17, kInter17, 1});   // 1.7B up/gate
  }
  b->Args({512, kHidden06, kInter06, 2});
}
BENCHMARK(BM_OnednnMatMul_F32)->Apply(GemmArgs)->UseRealTime();
BENCHMARK(BM_OnednnMatMul_Bf16)->Apply(GemmArgs)->UseRealTime();

// The f32 FMA ceiling in the same run (PERF.md: 199 GFLOP/s on a quiet core): 12
// independent zmm FMA chains, 20000 iterations per benchmark iteration.
__attribute__((target("avx512f"))) void BM_FmaPeak_F32(benchmark::State& s) {
  if (!__builtin_cpu_supports("avx512f")) return s.SkipWithError("no AVX-512");
  constexpr int kChains = 12, kIters = 20000;
  const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
  BestTime best;
  for (auto _ : s) {
    best.Start();
    // Distinct start values, or the compiler merges identical chains into one.
    __m512 a0 = _mm512_set1_ps(0.1f), a1 = _mm512_set1_ps(0.2f), a2 = _mm512_set1_ps(0.3f),
           a3 = _mm512_set1_ps(0.4f), a4 = _mm512_set1_ps(0.5f), a5 = _mm512_set1_ps(0.6f),
           a6 = _mm512_set1_ps(0.7f), a7 = _mm512_set1_ps(0.8f), a8 = _mm512_set1_ps(0.9f),
           a9 = _mm512_set1_ps(1.1f), a10 = _mm512_set1_ps(1.2f), a11 = _mm512_set1_ps(1.3f);
    for (int i = 0; i < kIters; ++i) {
      a0 = _mm512_fmadd_ps(a0, b, c), a1 = _mm512_fmadd_ps(a1, b, c);
      a2 = _mm512_fmadd_ps(a2, b, c), a3 = _mm512_fmadd_ps(a3, b, c);
      a4 = _mm512_fmadd_ps(a4, b, c), a5 = _mm512_fmadd_ps(a5, b, c);
      a6 = _mm512_fmadd_ps(a6, b, c), a7 = _mm512_fmadd_ps(a7, b, c);
      a8 = _mm512_fmadd_ps(a8, b, c), a9 = _mm512_fmadd_ps(a9, b, c);
      a10 = _mm512_fmadd_ps(a10, b, c), a11 = _mm512_fmadd_ps(a11, b, c);
    }
    const __m512 sum = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                      _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
        _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    benchmark::DoNotOptimize(sum);
    best.Stop();
  }
  SetThroughput(s, 0.0, 32.0 * kChains * kIters, best);
}
BENCHMARK(BM_FmaPeak_F32)->UseRealTime();

}  // namespace
}  // namespace oko::bench
