#include "ops/matmul.h"

#include <algorithm>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "common/check.h"
#include "ops/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {

// One weight row n times kM activation rows, kU vectors of K per step (kM * kU f32
// accumulators). Reading 2-8 adjacent rows at once (2-4 KiB apart) to share x loads ran
// at 12-15 GB/s where one row at a time ran 31-34 (DRAM-cold GEMV); rows a part of the
// range apart do not have that problem and beat one row (GemvBlock, TilesOfTriple), so
// this is for the rows left over, and AVX3's 8-row tiles. Writes y[m0 + m, n] (+ bias).
template <size_t kM, size_t kU, typename TW>
HWY_INLINE void MatMulTile(const MatMulArgs& a, const TW* HWY_RESTRICT w, size_t n, size_t m0) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t K = a.K;
  const TW* HWY_RESTRICT wr = w + n * K;
  const float* HWY_RESTRICT xm[kM];
  for (size_t m = 0; m < kM; ++m) xm[m] = a.x + (m0 + m) * a.x_stride;

  hn::Vec<decltype(df)> acc[kM][kU];
  for (size_t m = 0; m < kM; ++m)
    for (size_t u = 0; u < kU; ++u) acc[m][u] = hn::Zero(df);

  size_t k = 0;
  for (; k + kU * N <= K; k += kU * N) {
    for (size_t u = 0; u < kU; ++u) {
      const auto vw = LoadF32(df, wr + k + u * N);
      for (size_t m = 0; m < kM; ++m)
        acc[m][u] = hn::MulAdd(vw, hn::LoadU(df, xm[m] + k + u * N), acc[m][u]);
    }
  }
  for (; k + N <= K; k += N) {
    const auto vw = LoadF32(df, wr + k);
    for (size_t m = 0; m < kM; ++m) acc[m][0] = hn::MulAdd(vw, hn::LoadU(df, xm[m] + k), acc[m][0]);
  }
  if (k < K) {
    const auto vw = LoadTailF32(df, wr + k, K - k);
    for (size_t m = 0; m < kM; ++m)
      acc[m][kU - 1] = hn::MulAdd(vw, LoadTailF32(df, xm[m] + k, K - k), acc[m][kU - 1]);
  }
  const float bias = a.bias != nullptr ? a.bias[n] : 0.0f;
  for (size_t m = 0; m < kM; ++m) {
    auto sum = acc[m][0];
    for (size_t u = 1; u < kU; ++u) sum = hn::Add(sum, acc[m][u]);
    a.y[(m0 + m) * a.y_stride + n] = hn::GetLane(hn::SumOfLanes(df, sum)) + bias;
  }
}

// Blocks of several weight rows ask for each row kPrefetchBytes ahead, once per cache
// line: the hardware prefetcher alone kept too few of their streams in flight. bench/ops
// matmul_bench, Zen 2, 1 thread, DRAM-cold bf16, GFLOP/s, none -> 512 -> 2048 bytes
// ahead, alternated: M=4 K=1024 N=3072 61.5-62.1 -> 69.2-72.1 -> 70.3-73.2, M=4 K=3072
// N=1024 57.1-57.6 -> 73.1-75.8 -> 72.3-72.6, M=8 K=1024 44.9-45.0 -> 49.2-49.7 ->
// 49.5-49.6. Past a row's end is the next row; past the matrix's end the hint is
// dropped (prefetches do not fault). Tried and dropped: M=1 (6 streams already kept the
// memory busy: no change), bf16 widened by shift/mask over x in even/odd order (M=8 K=3072
// faster, M=4-8 at K=1024 slower).
constexpr size_t kPrefetchBytes = 1024;

template <typename TW>
HWY_INLINE void PrefetchEachLine(const TW* HWY_RESTRICT row, size_t k) {
  if ((k * sizeof(TW)) % 64 == 0) hwy::Prefetch(row + k + kPrefetchBytes / sizeof(TW));
}

// kR weight rows n, n + step, ... times kM activation rows, one vector of K per step: each x vector is
// loaded once for the kR rows and each weight vector widened once for the kM rows
// (MatMulTile loads an x vector per FMA). Writes y[m0 + m, n + r * step] (+ bias).
template <size_t kR, size_t kM, typename TW>
HWY_INLINE void MatMulBlock(const MatMulArgs& a, const TW* HWY_RESTRICT w, size_t n, size_t step, size_t m0) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t K = a.K;
  const TW* HWY_RESTRICT wr[kR];
  for (size_t r = 0; r < kR; ++r) wr[r] = w + (n + r * step) * K;
  const float* HWY_RESTRICT xm[kM];
  for (size_t m = 0; m < kM; ++m) xm[m] = a.x + (m0 + m) * a.x_stride;

  hn::Vec<decltype(df)> acc[kR][kM];
  for (size_t r = 0; r < kR; ++r)
    for (size_t m = 0; m < kM; ++m) acc[r][m] = hn::Zero(df);
  size_t k = 0;
  for (; k + N <= K; k += N) {
    hn::Vec<decltype(df)> vw[kR];
    for (size_t r = 0; r < kR; ++r) PrefetchEachLine(wr[r], k);
    for (size_t r = 0; r < kR; ++r) vw[r] = LoadF32(df, wr[r] + k);
    for (size_t m = 0; m < kM; ++m) {
      const auto vx = hn::LoadU(df, xm[m] + k);
      for (size_t r = 0; r < kR; ++r) acc[r][m] = hn::MulAdd(vw[r], vx, acc[r][m]);
    }
  }
  if (k < K) {
    hn::Vec<decltype(df)> vw[kR];
    for (size_t r = 0; r < kR; ++r) vw[r] = LoadTailF32(df, wr[r] + k, K - k);
    for (size_t m = 0; m < kM; ++m) {
      const auto vx = LoadTailF32(df, xm[m] + k, K - k);
      for (size_t r = 0; r < kR; ++r) acc[r][m] = hn::MulAdd(vw[r], vx, acc[r][m]);
    }
  }
  for (size_t r = 0; r < kR; ++r) {
    const float bias = a.bias != nullptr ? a.bias[n + r * step] : 0.0f;
    for (size_t m = 0; m < kM; ++m)
      a.y[(m0 + m) * a.y_stride + n + r * step] = hn::GetLane(hn::SumOfLanes(df, acc[r][m])) + bias;
  }
}

// M = 1: several weight rows n, n + step, ... at once, each an independent stream from
// memory (rows a part of the range apart: adjacent rows share pages and ran slower), 2
// accumulators each (FMA latency x throughput). One row at a time leaves the memory
// system idle between a thread's few outstanding misses. bench/ops matmul_bench, Zen 2,
// DRAM-cold bf16 K=1024 N=151936, 1 thread: 1 stream (MatMulTile<1, 4>) 11.4 GB/s, 2
// streams 13.9, 3 15.5-16.5, 4 17.4-17.7, 6 19.0 (the plain one-stream read loop: 12.5).
// `oko bench -m /tmp/q06 -p 0 -n 32 -t 1` (Qwen3-0.6B shape) tg32: 9.0 tok/s with one
// stream, 11.6-12.0 with 2, 13.0-14.1 with 4, 14.1-14.9 with 6, 14.2-15.2 with 7.
//
// Zen 4 wants fewer streams while x stays in L1 beside them, more once it does not (each
// step reloads x for every kR rows). matmul_bench, f16 and bf16, DRAM-cold, 1 thread,
// GB/s, 4 / 5 / 6 / 7 streams, two rounds: K=1024 N=3072 36-37 / 35-36 / 35 / 31-32,
// K=2048 N=6144 34-35 / 34 / 30-32 / 27-28, K=3072 N=1024 30-31 / 29 / 29-30 / 27-28,
// K=6144 N=2048 (x 24 KiB) 25 / 26-27 / 28-29 / 27. `oko bench -t 1 -p 0 -n 32`, f16,
// alternated, 6 streams -> 4 up to 12 KiB of x: Qwen3-1.7B shape 8.1 / 8.1 / 8.1 / 7.5 ->
// 8.4 / 8.4 / 8.5 / 8.2 tok/s, 0.6B 21.1 / 21.1 / 21.6 -> 22.2 / 22.3 / 23.5. Below
// AVX3 the only machine measured (Zen 2, above) read K=1024 rows faster with 6 streams
// than with 4: it keeps 6.
constexpr size_t kGemvStreamsShortRows = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 ? 4 : 6;
constexpr size_t kGemvStreamsLongRows = 6;
constexpr size_t kGemvShortRowMaxXBytes = 12 << 10;

template <size_t kR, typename TW>
HWY_INLINE void GemvBlock(const MatMulArgs& a, const TW* HWY_RESTRICT w, size_t n, size_t step) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t K = a.K;
  const TW* HWY_RESTRICT wr[kR];
  for (size_t r = 0; r < kR; ++r) wr[r] = w + (n + r * step) * K;
  hn::Vec<decltype(df)> acc[kR][2];
  for (size_t r = 0; r < kR; ++r) acc[r][0] = acc[r][1] = hn::Zero(df);
  size_t k = 0;
  for (; k + 2 * N <= K; k += 2 * N) {
    const auto x = hn::LoadU(df, a.x + k), xb = hn::LoadU(df, a.x + k + N);
    for (size_t r = 0; r < kR; ++r) acc[r][0] = hn::MulAdd(LoadF32(df, wr[r] + k), x, acc[r][0]);
    for (size_t r = 0; r < kR; ++r) acc[r][1] = hn::MulAdd(LoadF32(df, wr[r] + k + N), xb, acc[r][1]);
  }
  for (; k < K; k += N) {
    const size_t count = std::min(N, K - k);
    const auto x = LoadTailF32(df, a.x + k, count);
    for (size_t r = 0; r < kR; ++r) acc[r][0] = hn::MulAdd(LoadTailF32(df, wr[r] + k, count), x, acc[r][0]);
  }
  for (size_t r = 0; r < kR; ++r)
    a.y[n + r * step] = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc[r][0], acc[r][1]))) +
                        (a.bias != nullptr ? a.bias[n + r * step] : 0.0f);
}

template <size_t kStreams, typename TW>
void GemvStreams(const MatMulArgs& a, const TW* w, size_t n_begin, size_t n_end) {
  const size_t part = (n_end - n_begin) / kStreams;
  for (size_t n = n_begin; n < n_begin + part; ++n) GemvBlock<kStreams>(a, w, n, part);
  for (size_t n = n_begin + kStreams * part; n < n_end; ++n) MatMulTile<1, 4>(a, w, n, 0);
}

template <typename TW>
void GemvTyped(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  const TW* w = static_cast<const TW*>(a.w);
  if (a.K * sizeof(float) <= kGemvShortRowMaxXBytes) return GemvStreams<kGemvStreamsShortRows>(a, w, n_begin, n_end);
  GemvStreams<kGemvStreamsLongRows>(a, w, n_begin, n_end);
}

// Activation rows per tile: kWideM rows x kWideU vectors of K = 16 accumulators on AVX3
// (32 zmm), 8 below (16 ymm), enough independent FMA chains to cover the FMA latency;
// each weight vector is loaded and widened once for all of them.
constexpr size_t kWideM = 8;
constexpr size_t kWideU = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 ? 2 : 1;

// Rows [m, M) of x times weight row n: tiles of kWideM rows, then 4, 3, 2, 1.
template <typename TW>
HWY_INLINE void TilesOfRow(const MatMulArgs& a, const TW* w, size_t n, size_t m) {
  for (; m + kWideM <= a.M; m += kWideM) MatMulTile<kWideM, kWideU>(a, w, n, m);
  if (m + 4 <= a.M) {
    MatMulTile<4, 2>(a, w, n, m);
    m += 4;
  }
  switch (a.M - m) {
    case 3: MatMulTile<3, 2>(a, w, n, m); break;
    case 2: MatMulTile<2, 4>(a, w, n, m); break;
    case 1: MatMulTile<1, 4>(a, w, n, m); break;
    default: break;
  }
}

// Below AVX3 (16 vector registers), 2 <= M <= kWideM: several weight rows at once, so
// that each x vector is loaded once for all of them: triples of rows in 3 x M blocks.
// bench/ops matmul_bench, Zen 2, 1 thread, DRAM-cold bf16, GFLOP/s, K=1024 N=3072 unless
// said, one row at a time (MatMulTile) -> pairs -> triples: M=2 19.9 -> 25.1 -> 32.3, M=3
// 28.7 -> 38.2 -> 47.6, M=4 35.8 -> 48.0 -> 55.5, M=4 K=3072 N=1024 (x past L1) 26.9 ->
// 46.4 -> 48.9. M=5-8 as a 3 x 4 block and a 3 x (M - 4) one, against pairs in 2 x 6 and
// 2 x 2 blocks (alternated, with the prefetch of MatMulBlock): M=6 58.5-58.7 -> 61.8-62.0,
// M=8 52.2-52.3 -> 64.9-65.4, M=8 K=3072 56.3 -> 69.4-69.7.
constexpr bool kRowBlocks = !(HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3);

// Rows [m0, m0 + rows) of x times weight rows n, n + step and n + 2 step, rows <= 4: one
// block of 3 x rows (at most 12 accumulators, 3 weight vectors and an x vector: AVX2's 16
// registers). The same blocks in a loop over m ran 25% slower (44 vs 57.5 GFLOP/s at M=4).
template <typename TW>
HWY_INLINE void TripleBlock(const MatMulArgs& a, const TW* w, size_t n, size_t step, size_t m0, size_t rows) {
  switch (rows) {
    case 1: return MatMulBlock<3, 1>(a, w, n, step, m0);
    case 2: return MatMulBlock<3, 2>(a, w, n, step, m0);
    case 3: return MatMulBlock<3, 3>(a, w, n, step, m0);
    default: return MatMulBlock<3, 4>(a, w, n, step, m0);
  }
}

// Rows [0, M) of x, M <= 8, times weight rows n, n + step and n + 2 step.
template <typename TW>
HWY_INLINE void TilesOfTriple(const MatMulArgs& a, const TW* w, size_t n, size_t step) {
  if (a.M <= 4) return TripleBlock(a, w, n, step, 0, a.M);
  MatMulBlock<3, 4>(a, w, n, step, 0);
  TripleBlock(a, w, n, step, 4, a.M - 4);
}

// Weight rows per block when M > kWideM: a block (64 rows x K) stays in L2 while every
// tile of kWideM activation rows passes over it, each tile in L1 (M=16 x K=1024 read x
// from L2 and ran at 35 GFLOP/s, blocked 8-row tiles at 50 on this Zen 2).
constexpr size_t kRowBlock = 64;

// M > 1: each weight row is streamed from memory once, then reused from cache for every
// tile of activation rows.
template <typename TW>
void GemmTyped(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  if (a.M == 1) return GemvTyped<TW>(a, n_begin, n_end);
  const TW* w = static_cast<const TW*>(a.w);
  if (a.M <= kWideM) {
    // Weight rows a third of the range apart: adjacent rows (2 KiB apart at K = 1024)
    // streamed together ran at half the speed (M = 4 in pairs: 20.1 GFLOP/s, the
    // prefetcher?), rows half the range apart did not (43.1).
    size_t n = n_begin;
    if (kRowBlocks) {
      const size_t third = (n_end - n_begin) / 3;
      for (; n < n_begin + third; ++n) TilesOfTriple(a, w, n, third);
      n = n_begin + 3 * third;
    }
    for (; n < n_end; ++n) TilesOfRow(a, w, n, 0);
    return;
  }
  for (size_t n0 = n_begin; n0 < n_end; n0 += kRowBlock) {
    const size_t n1 = std::min(n_end, n0 + kRowBlock);
    size_t m = 0;
    for (; m + kWideM <= a.M; m += kWideM)
      for (size_t n = n0; n < n1; ++n) MatMulTile<kWideM, kWideU>(a, w, n, m);
    for (size_t n = n0; n < n1; ++n) TilesOfRow(a, w, n, m);
  }
}

void GemvRowsT(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  switch (a.w_dtype) {
    case DType::kF32: return GemvTyped<float>(a, n_begin, n_end);
    case DType::kBF16: return GemvTyped<hwy::bfloat16_t>(a, n_begin, n_end);
    default: return GemvTyped<hwy::float16_t>(a, n_begin, n_end);
  }
}

void GemmRowsT(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  switch (a.w_dtype) {
    case DType::kF32: return GemmTyped<float>(a, n_begin, n_end);
    case DType::kBF16: return GemmTyped<hwy::bfloat16_t>(a, n_begin, n_end);
    default: return GemmTyped<hwy::float16_t>(a, n_begin, n_end);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {
namespace {
void CheckArgs(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  OKO_CHECK(a.w_dtype == DType::kF32 || a.w_dtype == DType::kBF16 || a.w_dtype == DType::kF16,
            "weight dtype {} not supported (F32, BF16, F16)", DTypeName(a.w_dtype));
  OKO_CHECK(n_begin <= n_end && n_end <= a.N, "rows [{}, {}) outside N={}", n_begin, n_end, a.N);
  OKO_CHECK(a.M <= 1 || a.x_stride >= a.K, "x_stride={} < K={}", a.x_stride, a.K);
  OKO_CHECK(a.M <= 1 || a.y_stride >= a.N, "y_stride={} < N={}", a.y_stride, a.N);
}
}  // namespace

HWY_EXPORT(GemvRowsT);
HWY_EXPORT(GemmRowsT);

void GemvRows(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  CheckArgs(a, n_begin, n_end);
  OKO_CHECK(a.M == 1, "GemvRows needs M == 1, got M={} (use GemmRows)", a.M);
  HWY_DYNAMIC_DISPATCH(GemvRowsT)(a, n_begin, n_end);
}

void GemmRows(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  CheckArgs(a, n_begin, n_end);
  HWY_DYNAMIC_DISPATCH(GemmRowsT)(a, n_begin, n_end);
}
}  // namespace oko
#endif
