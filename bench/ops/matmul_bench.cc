// GEMV (decode) and small-M GEMM through GemvRows/GemmRows, weights [N, K].
// Rates are wall time (see BestTime in bench_util.h for *_best).
// cold:1 reads a different weight copy each iteration from a 1 GiB arena (DRAM, the real
// decode case); cold:0 reuses one copy (cache). BM_Read_U64 is a plain load loop over the
// same arena: the bandwidth ceiling measured in the same run.
#include <cstdint>
#include <vector>

#include "bench/ops/bench_util.h"
#include "common/dtype.h"
#include "engine/thread_pool.h"
#include "ops/gemm_bf16_rows.h"
#include "ops/matmul.h"

namespace oko::bench {
namespace {

void RunGemv(benchmark::State& s, DType dtype) {
  const size_t K = s.range(0), N = s.range(1);
  const bool cold = s.range(2) != 0;
  const int threads = static_cast<int>(s.range(3));
  const size_t w_bytes = N * K * DTypeSize(dtype);
  std::vector<float> x(K, 0.5f), y(N);
  ThreadPool pool(threads);
  Arena& arena = Arena::Get();
  MatMulArgs a{x.data(), K, nullptr, dtype, nullptr, y.data(), N, 1, K, N};
  size_t i = 0;
  BestTime best;
  for (auto _ : s) {
    best.Start();
    a.w = arena.Slice(w_bytes, cold ? i++ : 0);
    pool.ParallelFor(N, 8, [&](size_t b, size_t e, int) { GemvRows(a, b, e); });
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, w_bytes + 4.0 * (K + N), 2.0 * N * K, best);
  s.SetLabel(DispatchedTargetName());
}

void BM_Gemv_F32(benchmark::State& s) { RunGemv(s, DType::kF32); }
void BM_Gemv_Bf16(benchmark::State& s) { RunGemv(s, DType::kBF16); }
void BM_Gemv_F16(benchmark::State& s) { RunGemv(s, DType::kF16); }

void GemvArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"K", "N", "cold", "threads"});
  for (int cold : {1, 0}) {
    b->Args({kHidden06, kInter06, cold, 1});  // 0.6B up/gate
    b->Args({kHidden17, kInter17, cold, 1});  // 1.7B up/gate
    b->Args({kInter17, kHidden17, cold, 1});  // 1.7B down
    b->Args({kInter06, kHidden06, cold, 1});  // 0.6B down
  }
  b->Args({kHidden06, kVocab, 1, 1});  // 0.6B lm_head
  b->Args({kHidden06, kInter06, 1, 2});
  b->Args({kHidden06, kVocab, 1, 2});  // 0.6B lm_head, both cores
}
BENCHMARK(BM_Gemv_F32)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_Gemv_Bf16)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_Gemv_F16)->Apply(GemvArgs)->UseRealTime();

// Small-M GEMM (e.g. a short prompt or speculative batch) with cold bf16 weights.
void BM_Gemm_Bf16(benchmark::State& s) {
  const size_t M = s.range(0), K = s.range(1), N = s.range(2);
  const size_t w_bytes = N * K * 2;
  std::vector<float> x(M * K, 0.5f), y(M * N);
  Arena& arena = Arena::Get();
  MatMulArgs a{x.data(), K, nullptr, DType::kBF16, nullptr, y.data(), N, M, K, N};
  size_t i = 0;
  BestTime best;
  for (auto _ : s) {
    best.Start();
    a.w = arena.Slice(w_bytes, i++);
    GemmRows(a, 0, N);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, w_bytes + 4.0 * M * (K + N), 2.0 * M * N * K, best);
}
BENCHMARK(BM_Gemm_Bf16)->ArgNames({"M", "K", "N"})->Args({2, kHidden06, kInter06})
    ->Args({3, kHidden06, kInter06})->Args({4, kHidden06, kInter06})->Args({6, kHidden06, kInter06})->Args({8, kHidden06, kInter06})->Args({16, kHidden06, kInter06})->Args({64, kHidden06, kInter06})->Args({8, kInter06, kHidden06})->Args({4, kInter06, kHidden06})
    ->UseRealTime();

// The same shapes on the bf16-dot rows kernel of batched decode (x rounded to bf16 once).
void BM_GemmBf16Rows(benchmark::State& s) {
  if (!Bf16RowsSupported()) return s.SkipWithError("no AVX512-BF16");
  const size_t M = s.range(0), K = s.range(1), N = s.range(2);
  const bool cold = s.range(3) != 0;
  const size_t w_bytes = N * K * 2;
  std::vector<float> x(M * K, 0.5f), y(M * N);
  std::vector<uint16_t> xb(M * K);
  RoundRowsToBf16(x.data(), K, M, K, xb.data());
  Arena& arena = Arena::Get();
  size_t i = 0;
  BestTime best;
  for (auto _ : s) {
    best.Start();
    const auto* w = static_cast<const uint16_t*>(arena.Slice(w_bytes, cold ? i++ : 0));
    GemmBf16Rows(xb.data(), M, K, w, nullptr, y.data(), N, 0, N);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, w_bytes + 2.0 * M * K + 4.0 * M * N, 2.0 * M * N * K, best);
}
void Bf16RowsArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "cold"});
  for (int64_t M : {2, 4, 8}) b->Args({M, kHidden06, kInter06, 1});
  for (int64_t M : {4, 8}) b->Args({M, kInter06, kHidden06, 1});
  b->Args({4, kHidden06, kVocab, 1});
  for (int64_t M : {4, 8}) b->Args({M, kHidden06, 256, 0});  // 512 KiB of W: from L2
}
BENCHMARK(BM_GemmBf16Rows)->Apply(Bf16RowsArgs)->UseRealTime();

// Bandwidth ceiling: sum of u64 over a different 24 MiB slice of the arena every iteration.
void BM_Read_U64(benchmark::State& s) {
  const size_t bytes = s.range(0) << 20;
  Arena& arena = Arena::Get();
  size_t i = 0;
  BestTime best;
  for (auto _ : s) {
    best.Start();
    const uint64_t* p = static_cast<const uint64_t*>(arena.Slice(bytes, i++));
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t j = 0; j < bytes / 8; j += 4) s0 += p[j], s1 += p[j + 1], s2 += p[j + 2], s3 += p[j + 3];
    benchmark::DoNotOptimize(s0 + s1 + s2 + s3);
    best.Stop();
  }
  SetThroughput(s, static_cast<double>(bytes), 0.0, best);
}
BENCHMARK(BM_Read_U64)->ArgNames({"MiB"})->Arg(24)->UseRealTime();

}  // namespace
}  // namespace oko::bench
