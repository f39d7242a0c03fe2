// Prefill GEMM through oneDNN (OnednnMatMul): y[M, N] = x[M, K] · W[N, K]^T, bf16 weights
// reordered once at construction; activations f32 (kF32 mode) or rounded to bf16 (kBf16).
// Weights are hot (same matrix every iteration): prefill is compute bound. Single-thread
// rates use CPU time (the machine is shared; DEPS.md).
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
  for (auto _ : s) {
    mm.Run(x.data(), K, M, y.data(), N);
    benchmark::DoNotOptimize(y.data());
  }
  SetThroughput(s, mm.weight_bytes() + 4.0 * M * (K + N), 2.0 * M * N * K);
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
}
// Two OpenMP threads: wall time (the second thread's CPU time is not counted otherwise).
void GemmArgs2(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads"})->Args({512, kHidden06, kInter06, 2})->UseRealTime();
}
BENCHMARK(BM_OnednnMatMul_F32)->Apply(GemmArgs);
BENCHMARK(BM_OnednnMatMul_Bf16)->Apply(GemmArgs);
BENCHMARK(BM_OnednnMatMul_F32)->Apply(GemmArgs2);
BENCHMARK(BM_OnednnMatMul_Bf16)->Apply(GemmArgs2);

}  // namespace
}  // namespace oko::bench
