// Prefill GEMM with the packed AVX-512 kernels (ops/gemm_packed.h): y[M, N] = x[M, K] · W[N, K]^T,
// weights used in place, f32 activations packed inside the timed region (as the engine
// does per call). bf16: bf16 weights on vdpbf16ps, same shapes as BM_OnednnMatMul_Bf16 for
// a side-by-side; f32: the exact mode, per weight type.
// Weights are hot (same matrix every iteration): prefill is compute bound.
#include <vector>

#include "bench/ops/bench_util.h"
#include "engine/thread_pool.h"
#include "ops/gemm_packed.h"

namespace oko::bench {
namespace {

template <bool kBf16>
void RunPacked(benchmark::State& s, DType w_dtype) {
  if (kBf16 ? !PackedGemmBf16Supported() : !PackedGemmF32Supported())
    return s.SkipWithError("the CPU lacks the instructions");
  const size_t M = s.range(0), K = s.range(1), N = s.range(2);
  ThreadPool pool(static_cast<int>(s.range(3)));
  std::vector<uint16_t> w16(N * K, 0x3c00);
  std::vector<float> w32(w_dtype == DType::kF32 ? N * K : 0, 0.5f);
  const void* w = w_dtype == DType::kF32 ? static_cast<const void*>(w32.data()) : w16.data();
  std::vector<float> x(M * K, 0.5f), y(M * N);
  std::vector<uint32_t> packed16(kBf16 ? PackedBf16Words(M, K) : 0);
  std::vector<float> packed32(kBf16 ? 0 : PackedF32Floats(M, K));
  auto run = [&] {
    pool.ParallelFor(PackedBlocks(M), 1, [&](size_t b0, size_t b1, int) {
      if (kBf16) PackBf16Rows(x.data(), K, M, K, b0, b1, packed16.data());
      else PackF32Rows(x.data(), K, M, K, b0, b1, packed32.data());
    });
    pool.ParallelFor(N, 8, [&](size_t n0, size_t n1, int) {
      if (kBf16) GemmBf16Packed(packed16.data(), M, K, w16.data(), nullptr, y.data(), N, n0, n1);
      else GemmF32Packed(packed32.data(), M, K, w, w_dtype, nullptr, y.data(), N, n0, n1);
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
  SetThroughput(s, 1.0 * N * K * DTypeSize(w_dtype) + 4.0 * M * (K + N), 2.0 * M * N * K, best);
}

void BM_GemmPacked_Bf16(benchmark::State& s) { RunPacked<true>(s, DType::kBF16); }
void BM_GemmPacked_F32_WeightsF16(benchmark::State& s) { RunPacked<false>(s, DType::kF16); }
void BM_GemmPacked_F32_WeightsF32(benchmark::State& s) { RunPacked<false>(s, DType::kF32); }

void PackedArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads"});
  for (int M : {16, 48, 64}) b->Args({M, kHidden06, kInter06, 1});
  b->Args({64, kInter06, kHidden06, 1});
  b->Args({512, kHidden06, kInter06, 1});   // 0.6B up/gate
  b->Args({512, kInter06, kHidden06, 1});   // 0.6B down
  b->Args({512, kHidden17, kInter17, 1});   // 1.7B up/gate
  b->Args({512, kHidden06, kInter06, 2});
}
BENCHMARK(BM_GemmPacked_Bf16)->Apply(PackedArgs)->UseRealTime();
BENCHMARK(BM_GemmPacked_F32_WeightsF16)->Apply(PackedArgs)->UseRealTime();
BENCHMARK(BM_GemmPacked_F32_WeightsF32)->Apply(PackedArgs)->UseRealTime();

}  // namespace
}  // namespace oko::bench
