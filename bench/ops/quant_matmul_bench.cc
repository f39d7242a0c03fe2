// GEMV (decode) and small-M GEMM on GGML-quantized weights (ops/quant_matmul), weights
// [N, K] in the format's blocks. GB/s counts the weight bytes streamed (the format's
// bytes, not f32); compare with BM_Read_U64 (plain load loop, same arena, same run) and
// `oko bench --machine`. cold:1 reads a different weight copy each iteration from a 1 GiB
// arena (DRAM: the decode case), cold:0 one copy (cache). The arena holds f16 1.0 bit
// patterns, so scales are finite: speed does not depend on the values. The int8 kernels
// read the weights in the layout the model gives them on this CPU (QuantInterleaveRows;
// the *_RowMajor cases: row-major).
#include <cmath>
#include <cstdint>
#include <vector>

#include "bench/ops/bench_util.h"
#include "engine/thread_pool.h"
#include "ops/quant_matmul.h"

namespace oko::bench {
namespace {

// The layout of the weights the int8 kernels get from the model on this CPU.
size_t ModelLayout(QuantType type) { return QuantInterleaveRows(type); }

void RunGemv(benchmark::State& s, QuantType type, QuantCompute compute = QuantCompute::kExact,
             size_t interleave = 1) {
  const size_t K = s.range(0), N = s.range(1);
  const bool cold = s.range(2) != 0;
  const int threads = static_cast<int>(s.range(3));
  const size_t w_bytes = N * QuantRowBytes(type, K);
  std::vector<float> x(K, 0.5f), y(N);
  std::vector<uint8_t> xq_buf;
  uint8_t* xq = Int8ActivationRows(xq_buf, type, K, 1);
  ThreadPool pool(threads);
  Arena& arena = Arena::Get();
  QuantMatMulArgs a{x.data(), K, WeightView{type, nullptr, N, K, w_bytes, interleave}, nullptr, y.data(), N,
                    1, compute};
  size_t i = 0;
  BestTime best;
  for (auto _ : s) {
    best.Start();
    a.w.data = static_cast<const std::byte*>(arena.Slice(w_bytes, cold ? i++ : 0));
    if (compute == QuantCompute::kInt8) {  // once per call, as Linear does
      QuantizeInt8Activations(type, x.data(), K, xq);
      a.xq = xq;
    }
    pool.ParallelFor(N, 16, [&](size_t b, size_t e, int) { GemvQuantRows(a, b, e); }, 4);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, w_bytes + 4.0 * (K + N), 2.0 * N * K, best);
  s.SetLabel(DispatchedTargetName());
}

void BM_GemvQuant_Q8_0(benchmark::State& s) { RunGemv(s, QuantType::kQ8_0); }
void BM_GemvQuant_Q4_0(benchmark::State& s) { RunGemv(s, QuantType::kQ4_0); }
void BM_GemvQuant_Q5_0(benchmark::State& s) { RunGemv(s, QuantType::kQ5_0); }
void BM_GemvQuant_Q4_K(benchmark::State& s) { RunGemv(s, QuantType::kQ4_K); }
void BM_GemvQuant_Q5_K(benchmark::State& s) { RunGemv(s, QuantType::kQ5_K); }
void BM_GemvQuant_Q6_K(benchmark::State& s) { RunGemv(s, QuantType::kQ6_K); }

void GemvArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"K", "N", "cold", "threads"});
  b->Args({kHidden06, kInter06, 1, 1});  // 0.6B up/gate, DRAM
  b->Args({kHidden06, kInter06, 0, 1});  // from cache: the kernel's own speed
  b->Args({kInter06, kHidden06, 1, 1});  // 0.6B down
  b->Args({kHidden06, kInter06, 1, 2});
  b->Args({kHidden06, kVocab, 1, 1});  // 0.6B lm_head (Q6_K in Q4_K_M files), DRAM
}
// The int8 kernels (activations rounded to 8 bits per block, as llama.cpp).
void BM_GemvQuantInt8_Q8_0(benchmark::State& s) {
  RunGemv(s, QuantType::kQ8_0, QuantCompute::kInt8, ModelLayout(QuantType::kQ8_0));
}
void BM_GemvQuantInt8_Q8_0_RowMajor(benchmark::State& s) { RunGemv(s, QuantType::kQ8_0, QuantCompute::kInt8); }
void BM_GemvQuantInt8_Q4_0(benchmark::State& s) {
  RunGemv(s, QuantType::kQ4_0, QuantCompute::kInt8, ModelLayout(QuantType::kQ4_0));
}
void BM_GemvQuantInt8_Q4_0_RowMajor(benchmark::State& s) { RunGemv(s, QuantType::kQ4_0, QuantCompute::kInt8); }
void BM_GemvQuantInt8_Q4_1(benchmark::State& s) {
  RunGemv(s, QuantType::kQ4_1, QuantCompute::kInt8, ModelLayout(QuantType::kQ4_1));
}
void BM_GemvQuantInt8_Q4_1_RowMajor(benchmark::State& s) { RunGemv(s, QuantType::kQ4_1, QuantCompute::kInt8); }
void BM_GemvQuantInt8_Q5_0(benchmark::State& s) {
  RunGemv(s, QuantType::kQ5_0, QuantCompute::kInt8, ModelLayout(QuantType::kQ5_0));
}
void BM_GemvQuantInt8_Q5_0_RowMajor(benchmark::State& s) { RunGemv(s, QuantType::kQ5_0, QuantCompute::kInt8); }
void BM_GemvQuantInt8_Q5_1(benchmark::State& s) {
  RunGemv(s, QuantType::kQ5_1, QuantCompute::kInt8, ModelLayout(QuantType::kQ5_1));
}
void BM_GemvQuantInt8_Q5_1_RowMajor(benchmark::State& s) { RunGemv(s, QuantType::kQ5_1, QuantCompute::kInt8); }
void BM_GemvQuantInt8_Q4_K(benchmark::State& s) {
  RunGemv(s, QuantType::kQ4_K, QuantCompute::kInt8, ModelLayout(QuantType::kQ4_K));
}
void BM_GemvQuantInt8_Q4_K_RowMajor(benchmark::State& s) { RunGemv(s, QuantType::kQ4_K, QuantCompute::kInt8); }
BENCHMARK(BM_GemvQuantInt8_Q8_0)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q8_0_RowMajor)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q4_0)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q4_0_RowMajor)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q4_1)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q4_1_RowMajor)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q5_0)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q5_0_RowMajor)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q5_1)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q5_1_RowMajor)->Apply(GemvArgs)->UseRealTime();
void BM_GemvQuantInt8_Q6_K(benchmark::State& s) {
  RunGemv(s, QuantType::kQ6_K, QuantCompute::kInt8, ModelLayout(QuantType::kQ6_K));
}
void BM_GemvQuantInt8_Q6_K_RowMajor(benchmark::State& s) { RunGemv(s, QuantType::kQ6_K, QuantCompute::kInt8); }
BENCHMARK(BM_GemvQuantInt8_Q4_K)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q4_K_RowMajor)->Apply(GemvArgs)->UseRealTime();
void BM_GemvQuantInt8_Q5_K(benchmark::State& s) {
  RunGemv(s, QuantType::kQ5_K, QuantCompute::kInt8, ModelLayout(QuantType::kQ5_K));
}
void BM_GemvQuantInt8_Q5_K_RowMajor(benchmark::State& s) { RunGemv(s, QuantType::kQ5_K, QuantCompute::kInt8); }
BENCHMARK(BM_GemvQuantInt8_Q5_K)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q5_K_RowMajor)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q6_K)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuantInt8_Q6_K_RowMajor)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuant_Q8_0)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuant_Q4_0)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuant_Q5_0)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuant_Q4_K)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuant_Q5_K)->Apply(GemvArgs)->UseRealTime();
BENCHMARK(BM_GemvQuant_Q6_K)->Apply(GemvArgs)->UseRealTime();

// Small-M GEMM (short prompts) and the prefill slab path's dequantization alone.
void BM_GemmQuant_Q4_K(benchmark::State& s) {
  const size_t M = s.range(0), K = s.range(1), N = s.range(2);
  const size_t w_bytes = N * QuantRowBytes(QuantType::kQ4_K, K);
  std::vector<float> x(M * K, 0.5f), y(M * N);
  Arena& arena = Arena::Get();
  QuantMatMulArgs a{x.data(), K, WeightView{QuantType::kQ4_K, nullptr, N, K, w_bytes}, nullptr,
                    y.data(), N, M};
  size_t i = 0;
  BestTime best;
  for (auto _ : s) {
    best.Start();
    a.w.data = static_cast<const std::byte*>(arena.Slice(w_bytes, i++));
    GemmQuantRows(a, 0, N);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, w_bytes + 4.0 * M * (K + N), 2.0 * M * N * K, best);
}
BENCHMARK(BM_GemmQuant_Q4_K)->ArgNames({"M", "K", "N"})->Args({4, kHidden06, kInter06})
    ->Args({16, kHidden06, kInter06})->Args({128, kHidden06, kInter06})->UseRealTime();

// Batched decode: M activation rows quantized to 8 bits (once per call, as Linear does)
// times the weights, one thread, each weight row read once for all M rows.
void RunGemmInt8(benchmark::State& s, QuantType type, size_t interleave) {
  const size_t M = s.range(0), K = s.range(1), N = s.range(2);
  const bool cold = s.range(3) != 0;
  const size_t w_bytes = N * QuantRowBytes(type, K), xb = Int8ActivationBytes(type, K);
  std::vector<float> x(M * K, 0.5f), y(M * N);
  std::vector<uint8_t> xq_buf;
  uint8_t* xq = Int8ActivationRows(xq_buf, type, K, M);
  Arena& arena = Arena::Get();
  QuantMatMulArgs a{x.data(), K, WeightView{type, nullptr, N, K, w_bytes, interleave}, nullptr, y.data(), N, M,
                    QuantCompute::kInt8, xq};
  size_t i = 0;
  BestTime best;
  for (auto _ : s) {
    best.Start();
    a.w.data = static_cast<const std::byte*>(arena.Slice(w_bytes, cold ? i++ : 0));
    for (size_t m = 0; m < M; ++m) QuantizeInt8Activations(type, x.data() + m * K, K, xq + m * xb);
    GemmQuantRows(a, 0, N);
    benchmark::DoNotOptimize(y.data());
    best.Stop();
  }
  SetThroughput(s, w_bytes + 4.0 * M * (K + N), 2.0 * M * N * K, best);
}
void GemmInt8Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "cold"});
  for (int64_t M : {2, 4, 8}) b->Args({M, kHidden06, kInter06, 1})->Args({M, kHidden06, kInter06, 0});
  b->Args({4, kInter06, kHidden06, 1});  // 0.6B down, DRAM
  b->Args({8, kHidden06, kVocab, 1});    // 0.6B lm_head of a batch of 8 (Q6_K in Q4_K_M files), DRAM
}
void BM_GemmQuantInt8_Q8_0(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ8_0, ModelLayout(QuantType::kQ8_0)); }
void BM_GemmQuantInt8_Q8_0_RowMajor(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ8_0, 1); }
void BM_GemmQuantInt8_Q4_0(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ4_0, ModelLayout(QuantType::kQ4_0)); }
void BM_GemmQuantInt8_Q4_0_RowMajor(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ4_0, 1); }
void BM_GemmQuantInt8_Q4_1(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ4_1, ModelLayout(QuantType::kQ4_1)); }
void BM_GemmQuantInt8_Q4_1_RowMajor(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ4_1, 1); }
void BM_GemmQuantInt8_Q5_0(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ5_0, ModelLayout(QuantType::kQ5_0)); }
void BM_GemmQuantInt8_Q5_0_RowMajor(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ5_0, 1); }
void BM_GemmQuantInt8_Q5_1(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ5_1, ModelLayout(QuantType::kQ5_1)); }
void BM_GemmQuantInt8_Q5_1_RowMajor(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ5_1, 1); }
void BM_GemmQuantInt8_Q4_K(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ4_K, ModelLayout(QuantType::kQ4_K)); }
void BM_GemmQuantInt8_Q5_K(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ5_K, ModelLayout(QuantType::kQ5_K)); }
void BM_GemmQuantInt8_Q5_K_RowMajor(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ5_K, 1); }
void BM_GemmQuantInt8_Q4_K_RowMajor(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ4_K, 1); }
void BM_GemmQuantInt8_Q6_K(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ6_K, ModelLayout(QuantType::kQ6_K)); }
void BM_GemmQuantInt8_Q6_K_RowMajor(benchmark::State& s) { RunGemmInt8(s, QuantType::kQ6_K, 1); }
BENCHMARK(BM_GemmQuantInt8_Q8_0)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q8_0_RowMajor)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q4_0)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q4_0_RowMajor)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q4_1)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q4_1_RowMajor)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q5_0)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q5_0_RowMajor)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q5_1)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q5_1_RowMajor)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q4_K)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q5_K)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q5_K_RowMajor)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q4_K_RowMajor)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q6_K)->Apply(GemmInt8Args)->UseRealTime();
BENCHMARK(BM_GemmQuantInt8_Q6_K_RowMajor)->Apply(GemmInt8Args)->UseRealTime();

// Quantizing at load (QuantizeRow: ggml's reference quantizers, scalar), per thread: the
// k-quants search 16-21 grids per 32 values (Q6_K 19 per 16). items/s = values/s.
void RunQuantize(benchmark::State& s, QuantType type) {
  const size_t K = 4096;
  std::vector<float> x(K);
  for (size_t i = 0; i < K; ++i) x[i] = std::sin(0.37f * i) * (1.0f + (i % 7));
  std::vector<uint8_t> q(QuantRowBytes(type, K));
  for (auto _ : s) {
    QuantizeRow(type, x.data(), q.data(), K);
    benchmark::DoNotOptimize(q.data());
  }
  s.SetItemsProcessed(s.iterations() * K);
}
void BM_QuantizeRow_Q8_0(benchmark::State& s) { RunQuantize(s, QuantType::kQ8_0); }
void BM_QuantizeRow_Q4_0(benchmark::State& s) { RunQuantize(s, QuantType::kQ4_0); }
void BM_QuantizeRow_Q4_K(benchmark::State& s) { RunQuantize(s, QuantType::kQ4_K); }
void BM_QuantizeRow_Q5_K(benchmark::State& s) { RunQuantize(s, QuantType::kQ5_K); }
void BM_QuantizeRow_Q6_K(benchmark::State& s) { RunQuantize(s, QuantType::kQ6_K); }
BENCHMARK(BM_QuantizeRow_Q8_0);
BENCHMARK(BM_QuantizeRow_Q4_0);
BENCHMARK(BM_QuantizeRow_Q4_K);
BENCHMARK(BM_QuantizeRow_Q5_K);
BENCHMARK(BM_QuantizeRow_Q6_K);

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
