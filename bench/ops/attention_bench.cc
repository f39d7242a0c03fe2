// AttentionQueries for one Qwen3-0.6B KV head (2 query heads per KV head, head_dim 128)
// at context 32 (a batch of short chats), 512 and 4096. cold:1 walks through the KV
// caches of all 28 layers x 8 KV heads (as decode does), taking them from a 1 GiB arena,
// so K/V come from DRAM.
// layout:0 is slot-major ([slot][kv_head][D], kv_stride = kv_heads * head_dim: each head's
// rows are 256-512 B pieces 2-4 KiB apart); layout:1 is head-major ([kv_head][slot][D],
// kv_stride = head_dim: each head's K and V are contiguous).
// BM_AttentionPrefill: a whole causal prompt of one KV head, as prefill runs it: per
// position (AttentionQueries, what a traced prefill does) or in blocks of `block`
// positions (AttentionBlock); GFLOP/s counts the causal flops only.
#include <algorithm>
#include <vector>

#include "bench/ops/bench_util.h"
#include "common/dtype.h"
#include "ops/attention.h"

namespace oko::bench {
namespace {

void RunAttention(benchmark::State& s, DType kv_dtype) {
  const size_t ctx = s.range(0);
  const bool cold = s.range(1) != 0;
  const bool head_major = s.range(2) != 0;
  const size_t G = kHeads06 / kKvHeads06, D = kHeadDim;
  const size_t kv_stride = head_major ? D : kKvHeads06 * D;
  const size_t head_offset = head_major ? ctx * D : D;  // elements between KV heads
  const size_t elem = DTypeSize(kv_dtype);
  const size_t cache_bytes = ctx * kKvHeads06 * D * elem;  // one layer's K (or V), all heads
  std::vector<float> q(G * D, 0.05f), probs(G * ctx), out(G * D);
  const SlotSpan span{0, ctx};
  Arena& arena = Arena::Get();
  AttentionArgs a{q.data(), D, G, nullptr, nullptr, {kv_stride}, kv_dtype, &span, 1, D,
                  0.088f, probs.data(), out.data(), D};
  size_t layer = 0, head = 0;
  BestTime best;
  for (auto _ : s) {
    best.Start();
    const auto* k = static_cast<const uint8_t*>(arena.Slice(2 * cache_bytes, cold ? layer : 0));
    a.k = k + head * head_offset * elem;
    a.v = k + cache_bytes + head * head_offset * elem;
    AttentionQueries(a);
    benchmark::DoNotOptimize(out.data());
    if (++head == kKvHeads06) head = 0, ++layer;
    best.Stop();
  }
  SetThroughput(s, 2.0 * ctx * D * elem, 4.0 * G * ctx * D, best);
  s.SetLabel(DispatchedTargetName());
}

void BM_Attention_F32(benchmark::State& s) { RunAttention(s, DType::kF32); }
void BM_Attention_F16(benchmark::State& s) { RunAttention(s, DType::kF16); }

void AttentionArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"ctx", "cold", "layout"});
  for (int ctx : {32, 512, 4096})
    for (int cold : {1, 0})
      for (int layout : {0, 1}) b->Args({ctx, cold, layout});
}
BENCHMARK(BM_Attention_F32)->Apply(AttentionArgs)->UseRealTime();
BENCHMARK(BM_Attention_F16)->Apply(AttentionArgs)->UseRealTime();

void RunPrefill(benchmark::State& s, DType kv_dtype) {
  const size_t T = s.range(0), block = s.range(1);
  const size_t G = kHeads06 / kKvHeads06, D = kHeadDim, q_dim = kHeads06 * D;
  std::vector<float> q(T * q_dim, 0.05f), out(T * q_dim), scores(std::max(G * T, AttentionBlockScratch(G * block, T + block, D)));
  const void* k = Arena::Get().Slice(2 * T * D * DTypeSize(kv_dtype), 0);
  const void* v = static_cast<const uint8_t*>(k) + T * D * DTypeSize(kv_dtype);
  std::vector<KeyColumns> keys(block);
  BestTime best;
  for (auto _ : s) {
    best.Start();
    for (size_t t0 = 0; t0 < T; t0 += std::max<size_t>(block, 1)) {
      if (block == 0) {
        const SlotSpan span{0, t0 + 1};
        AttentionQueries({q.data() + t0 * q_dim, D, G, k, v, {D}, kv_dtype, &span, 1, D, 0.088f,
                          scores.data(), out.data() + t0 * q_dim, D});
        continue;
      }
      const size_t n = std::min(block, T - t0);
      for (size_t t = 0; t < n; ++t) keys[t] = {t0 + t + 1, 0, 0};
      const SlotSpan span{0, t0 + n};
      AttentionBlock({q.data() + t0 * q_dim, q_dim, n, G, k, v, {D}, kv_dtype, &span, 1,
                      keys.data(), D, 0.088f, scores.data(), out.data() + t0 * q_dim, q_dim});
    }
    benchmark::DoNotOptimize(out.data());
    best.Stop();
  }
  const double keys_attended = 0.5 * T * (T + 1);
  SetThroughput(s, 2.0 * T * D * DTypeSize(kv_dtype), 4.0 * G * keys_attended * D, best);
  s.SetLabel(DispatchedTargetName());
}

void BM_AttentionPrefill_F32(benchmark::State& s) { RunPrefill(s, DType::kF32); }
void BM_AttentionPrefill_F16(benchmark::State& s) { RunPrefill(s, DType::kF16); }

void PrefillArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"prompt", "block"});
  for (int block : {0, 4, 8, 16, 32}) b->Args({512, block});
  b->Args({4096, 0})->Args({4096, 8});
}
BENCHMARK(BM_AttentionPrefill_F32)->Apply(PrefillArgs)->UseRealTime();
BENCHMARK(BM_AttentionPrefill_F16)->Apply(PrefillArgs)->UseRealTime();

}  // namespace
}  // namespace oko::bench
