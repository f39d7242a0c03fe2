#include "ops/attention.h"

#include <algorithm>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include <hwy/cache_control.h>
#if HWY_ARCH_X86
#include <xmmintrin.h>
#endif

#include "common/check.h"
#include "ops/simd-inl.h"
#include "ops/softmax-inl.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {

// Slots per tile, and queries per tile (kMaxQueries x kSlotBlock accumulators or
// broadcast probabilities must fit the registers: 32 zmm on AVX3, 16 below). Every K/V
// vector is loaded (and widened) once per tile and used by all its queries, so with
// GQA groups of up to kMaxQueries each KV byte is read once.
constexpr size_t kSlotBlock = 4;
constexpr size_t kMaxQueries = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 ? 4 : 2;
// Rows are prefetched into L2 this many slots ahead: with the slot-major cache layout a
// head's rows are short pieces at a large stride, which the hardware prefetchers miss.
// Measured at ctx 4096 slot-major (best GB/s, f32 / f16): into L1 (T0) 8 ahead 13 / 12,
// into L2 (T1) 16 ahead 21 / 17, 24-48 ahead no better; head-major unchanged (43 / 28).
constexpr size_t kPrefetchSlots = 16;

template <typename TKV>
HWY_INLINE void PrefetchRow(const TKV* row, size_t D) {
  const char* p = reinterpret_cast<const char*>(row);
  for (size_t off = 0; off < D * sizeof(TKV); off += 64) {
#if HWY_ARCH_X86
    _mm_prefetch(p + off, _MM_HINT_T1);
#else
    hwy::Prefetch(p + off);
#endif
  }
}

#if HWY_TARGET != HWY_SCALAR
// Horizontal sum of lo and hi, halved: lanes [0, N/2) hold pair sums of lo, [N/2, N) of hi.
template <class D, class V>
HWY_INLINE V PairSum(D d, V lo, V hi) {
  return hn::Add(hn::ConcatEven(d, hi, lo), hn::ConcatOdd(d, hi, lo));
}
#endif

// out[i] = scale * (sum of the lanes of v[i]) for i < count <= 4, with 3-5 shuffle+add
// steps instead of four full reductions. Each sum's rounding depends on v[i] alone.
template <class D>
HWY_INLINE void SumOfLanes4(D d, const hn::Vec<D>* v, float scale, float* HWY_RESTRICT out,
                            size_t count) {
#if HWY_TARGET == HWY_SCALAR
  for (size_t i = 0; i < count; ++i) out[i] = scale * hn::GetLane(v[i]);
#else
  auto c = PairSum(d, PairSum(d, v[0], v[1]), PairSum(d, v[2], v[3]));  // N/4 lanes each
  for (size_t n = hn::Lanes(d) / 4; n > 1; n /= 2) c = PairSum(d, c, c);
  HWY_ALIGN float buf[HWY_MAX_BYTES / sizeof(float)];
  hn::Store(hn::Mul(c, hn::Set(d, scale)), d, buf);
  for (size_t i = 0; i < count; ++i) out[i] = buf[i];
#endif
}

// The queries of one call: for each, its row of q, its row of scores (column 0) and its
// output row.
struct QuerySet {
  size_t count = 0;
  const float* q[kBlockQueries];
  float* scores[kBlockQueries];
  float* out[kBlockQueries];
};

// scores[i0 + i][col + s] = scale * q[i0 + i] · rows[s] for kQ queries and the first
// `count` of kS = 4 slots (the caller pads rows). A score is rounded the same way
// wherever its slot falls in a tile, so a block of queries gets the bits each query
// gets alone.
template <size_t kQ, size_t kS, typename TKV>
HWY_INLINE void ScoreTile(const QuerySet& qs, size_t i0, size_t D, float scale,
                          const TKV* const* rows, size_t col, size_t count) {
  static_assert(kS == 4, "scores come in tiles of four slots");
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const float* HWY_RESTRICT q[kQ];
  for (size_t i = 0; i < kQ; ++i) q[i] = qs.q[i0 + i];
  hn::Vec<decltype(df)> acc[kQ][kS];
  for (size_t i = 0; i < kQ; ++i)
    for (size_t s = 0; s < kS; ++s) acc[i][s] = hn::Zero(df);
  size_t d = 0;
  for (; d + N <= D; d += N) {
    hn::Vec<decltype(df)> vk[kS];
    for (size_t s = 0; s < kS; ++s) vk[s] = LoadF32(df, rows[s] + d);
    for (size_t i = 0; i < kQ; ++i) {
      const auto vq = hn::LoadU(df, q[i] + d);
      for (size_t s = 0; s < kS; ++s) acc[i][s] = hn::MulAdd(vq, vk[s], acc[i][s]);
    }
  }
  if (d < D) {
    hn::Vec<decltype(df)> vk[kS];
    for (size_t s = 0; s < kS; ++s) vk[s] = LoadTailF32(df, rows[s] + d, D - d);
    for (size_t i = 0; i < kQ; ++i) {
      const auto vq = LoadTailF32(df, q[i] + d, D - d);
      for (size_t s = 0; s < kS; ++s) acc[i][s] = hn::MulAdd(vq, vk[s], acc[i][s]);
    }
  }
  for (size_t i = 0; i < kQ; ++i) {
    SumOfLanes4(df, acc[i], scale, qs.scores[i0 + i] + col, count);
  }
}

// out[i0 + i] += sum_s scores[i0 + i][col + s] * rows[s] for kQ queries and kS slots,
// streaming: each output row is loaded and stored per tile, each V row read once.
template <size_t kQ, size_t kS, typename TKV>
HWY_INLINE void AccumulateTile(const QuerySet& qs, size_t i0, size_t D, const TKV* const* rows,
                               size_t col) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  float* HWY_RESTRICT out[kQ];
  hn::Vec<decltype(df)> p[kQ][kS];
  for (size_t i = 0; i < kQ; ++i) {
    out[i] = qs.out[i0 + i];
    for (size_t s = 0; s < kS; ++s) p[i][s] = hn::Set(df, qs.scores[i0 + i][col + s]);
  }
  size_t d = 0;
  for (; d + N <= D; d += N) {
    hn::Vec<decltype(df)> vv[kS];
    for (size_t s = 0; s < kS; ++s) vv[s] = LoadF32(df, rows[s] + d);
    for (size_t i = 0; i < kQ; ++i) {
      auto o = hn::LoadU(df, out[i] + d);
      for (size_t s = 0; s < kS; ++s) o = hn::MulAdd(p[i][s], vv[s], o);
      hn::StoreU(o, df, out[i] + d);
    }
  }
  if (d < D) {
    const size_t n = D - d;
    hn::Vec<decltype(df)> vv[kS];
    for (size_t s = 0; s < kS; ++s) vv[s] = LoadTailF32(df, rows[s] + d, n);
    for (size_t i = 0; i < kQ; ++i) {
      auto o = LoadTail(df, out[i] + d, n, 0.0f);
      for (size_t s = 0; s < kS; ++s) o = hn::MulAdd(p[i][s], vv[s], o);
      StoreTail(df, o, out[i] + d, n);
    }
  }
}

// Runs the score or accumulate tile over all queries in groups of kMaxQueries (then 3, 2, 1).
// (count: the valid slots of a score tile.)
template <bool kScores, size_t kS, typename TKV>
HWY_INLINE void ForQueryGroups(const QuerySet& qs, size_t D, float scale, const TKV* const* rows,
                               size_t col, size_t count) {
  size_t i = 0;
  for (; i + kMaxQueries <= qs.count; i += kMaxQueries) {
    if constexpr (kScores) ScoreTile<kMaxQueries, kS>(qs, i, D, scale, rows, col, count);
    else AccumulateTile<kMaxQueries, kS>(qs, i, D, rows, col);
  }
  switch (qs.count - i) {
    case 3:
      if constexpr (kScores) ScoreTile<3, kS>(qs, i, D, scale, rows, col, count);
      else AccumulateTile<3, kS>(qs, i, D, rows, col);
      break;
    case 2:
      if constexpr (kScores) ScoreTile<2, kS>(qs, i, D, scale, rows, col, count);
      else AccumulateTile<2, kS>(qs, i, D, rows, col);
      break;
    case 1:
      if constexpr (kScores) ScoreTile<1, kS>(qs, i, D, scale, rows, col, count);
      else AccumulateTile<1, kS>(qs, i, D, rows, col);
      break;
    default: break;
  }
}

// One pass over the slots of all spans: scores from K (kScores) or output from V.
template <bool kScores, typename TKV>
HWY_INLINE void SlotPass(const QuerySet& qs, const SlotSpan* spans, size_t num_spans,
                         const TKV* base, size_t kv_stride, size_t D, float scale) {
  size_t col = 0;
  for (size_t sp = 0; sp < num_spans; ++sp) {
    const size_t end = spans[sp].end;
    for (size_t j = spans[sp].begin; j < end; j += kSlotBlock) {
      const size_t count = std::min(kSlotBlock, end - j);
      const TKV* rows[kSlotBlock];
      for (size_t s = 0; s < count; ++s) {
        rows[s] = base + (j + s) * kv_stride;
        if (j + s + kPrefetchSlots < end) PrefetchRow(rows[s] + kPrefetchSlots * kv_stride, D);
      }
      if constexpr (kScores) {
        for (size_t s = count; s < kSlotBlock; ++s) rows[s] = rows[0];  // computed, not stored
        ForQueryGroups<true, kSlotBlock>(qs, D, scale, rows, col, count);
      } else if (count == kSlotBlock) {
        ForQueryGroups<false, kSlotBlock>(qs, D, scale, rows, col, count);
      } else {
        for (size_t s = 0; s < count; ++s) ForQueryGroups<false, 1>(qs, D, scale, rows + s, col + s, 1);
      }
      col += count;
    }
  }
}

size_t TotalSlots(const SlotSpan* spans, size_t num_spans) {
  size_t total = 0;
  for (size_t s = 0; s < num_spans; ++s) total += spans[s].end - spans[s].begin;
  return total;
}

void ZeroRows(const QuerySet& qs, size_t D) {
  for (size_t i = 0; i < qs.count; ++i) std::fill(qs.out[i], qs.out[i] + D, 0.0f);
}

template <typename TKV>
void AttentionTyped(const AttentionArgs& a) {
  const hn::ScalableTag<float> df;
  const size_t total = TotalSlots(a.spans, a.num_spans);
  QuerySet qs;
  qs.count = a.num_queries;
  for (size_t g = 0; g < a.num_queries; ++g) {
    qs.q[g] = a.q + g * a.q_stride;
    qs.scores[g] = a.probs + g * total;
    qs.out[g] = a.out + g * a.out_stride;
  }
  SlotPass<true>(qs, a.spans, a.num_spans, static_cast<const TKV*>(a.k), a.kv_stride,
                 a.head_dim, a.scale);
  for (size_t g = 0; g < a.num_queries; ++g) SoftmaxRow(df, qs.scores[g], total);
  ZeroRows(qs, a.head_dim);
  SlotPass<false>(qs, a.spans, a.num_spans, static_cast<const TKV*>(a.v), a.kv_stride,
                  a.head_dim, a.scale);
}

void AttentionQueriesT(const AttentionArgs& a) {
  if (a.kv_dtype == DType::kF32) {
    AttentionTyped<float>(a);
  } else {
    AttentionTyped<hwy::float16_t>(a);
  }
}

// ---- Blocks of query positions (prefill) ----

// Columns per pass of the block accumulation: their V rows (32 KiB in f16 at head_dim
// 128) stay in L1 while every query tile and head_dim chunk reuses them.
constexpr size_t kColumnBlock = 128;
// Output vectors per query kept in registers while the columns stream by: kBlockTileQ
// queries x kBlockTileV vectors of accumulators (16 of 32 zmm; 8 of 16 ymm).
constexpr size_t kBlockTileQ = 4;
constexpr size_t kBlockTileV = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 ? 4 : 2;

// out[i0 + i][d0, d0 + kV * N) (or `tail` < N lanes when kTail) += sum over the columns
// c < n of scores[i0 + i][col0 + c] * rows[c][d0, ...), accumulated in registers.
template <size_t kQ, size_t kV, bool kTail, typename TKV>
HWY_INLINE void AccumulateColumns(const QuerySet& qs, size_t i0, size_t col0,
                                  const TKV* const* rows, size_t n, size_t d0, size_t tail) {
  static_assert(!kTail || kV == 1, "a tail chunk is one partial vector");
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  hn::Vec<decltype(df)> acc[kQ][kV];
  for (size_t i = 0; i < kQ; ++i)
    for (size_t v = 0; v < kV; ++v)
      acc[i][v] = kTail ? LoadTail(df, qs.out[i0 + i] + d0, tail, 0.0f)
                        : hn::LoadU(df, qs.out[i0 + i] + d0 + v * N);
  for (size_t c = 0; c < n; ++c) {
    hn::Vec<decltype(df)> vv[kV];
    for (size_t v = 0; v < kV; ++v)
      vv[v] = kTail ? LoadTailF32(df, rows[c] + d0, tail) : LoadF32(df, rows[c] + d0 + v * N);
    for (size_t i = 0; i < kQ; ++i) {
      const auto p = hn::Set(df, qs.scores[i0 + i][col0 + c]);
      for (size_t v = 0; v < kV; ++v) acc[i][v] = hn::MulAdd(p, vv[v], acc[i][v]);
    }
  }
  for (size_t i = 0; i < kQ; ++i)
    for (size_t v = 0; v < kV; ++v) {
      if (kTail) StoreTail(df, acc[i][v], qs.out[i0 + i] + d0, tail);
      else hn::StoreU(acc[i][v], df, qs.out[i0 + i] + d0 + v * N);
    }
}

// All of head_dim for kQ queries over n columns: chunks of kBlockTileV vectors, then
// single vectors, then the partial tail.
template <size_t kQ, typename TKV>
HWY_INLINE void AccumulateQueries(const QuerySet& qs, size_t i0, size_t col0,
                                  const TKV* const* rows, size_t n, size_t D) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  size_t d = 0;
  for (; d + kBlockTileV * N <= D; d += kBlockTileV * N)
    AccumulateColumns<kQ, kBlockTileV, false>(qs, i0, col0, rows, n, d, 0);
  for (; d + N <= D; d += N) AccumulateColumns<kQ, 1, false>(qs, i0, col0, rows, n, d, 0);
  if (d < D) AccumulateColumns<kQ, 1, true>(qs, i0, col0, rows, n, d, D - d);
}

// out += P · V over the columns [0, end) of the spans, one column block at a time.
// tile_end[k]: columns at or past it have p = 0 for the queries of tile k (queries
// [k * kBlockTileQ, (k + 1) * kBlockTileQ)); `end` is the largest.
template <typename TKV>
void AccumulateBlock(const QuerySet& qs, const SlotSpan* spans, const TKV* v, size_t kv_stride,
                     size_t D, const size_t* tile_end, size_t end) {
  if (end == 0) return;
  const TKV* rows[kColumnBlock];
  size_t sp = 0, slot = spans[0].begin, col0 = 0;
  while (col0 < end) {
    size_t n = 0;  // gather the rows of the next column block
    for (; n < kColumnBlock && col0 + n < end; ++n) {
      while (slot == spans[sp].end) slot = spans[++sp].begin;
      rows[n] = v + slot++ * kv_stride;
    }
    for (size_t i = 0, tile = 0; i < qs.count; i += kBlockTileQ, ++tile) {
      if (col0 >= tile_end[tile]) continue;
      const size_t cols = std::min(n, tile_end[tile] - col0);
      switch (std::min(kBlockTileQ, qs.count - i)) {
        case 4: AccumulateQueries<4>(qs, i, col0, rows, cols, D); break;
        case 3: AccumulateQueries<3>(qs, i, col0, rows, cols, D); break;
        case 2: AccumulateQueries<2>(qs, i, col0, rows, cols, D); break;
        default: AccumulateQueries<1>(qs, i, col0, rows, cols, D); break;
      }
    }
    col0 += n;
  }
}

template <typename TKV>
void AttentionBlockTyped(const AttentionBlockArgs& a) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const hn::ScalableTag<float> df;
  const size_t total = TotalSlots(a.spans, a.num_spans), D = a.head_dim;
  QuerySet qs;
  qs.count = a.num_positions * a.group;
  size_t tile_end[kBlockQueries / kBlockTileQ] = {}, end = 0;
  for (size_t i = 0; i < qs.count; ++i) {
    const size_t t = i / a.group, g = i % a.group;
    qs.q[i] = a.q + t * a.q_pos_stride + g * D;
    qs.scores[i] = a.scores + i * total;
    qs.out[i] = a.out + t * a.out_pos_stride + g * D;
    tile_end[i / kBlockTileQ] = std::max(tile_end[i / kBlockTileQ], a.keys[t].end);
    end = std::max(end, a.keys[t].end);
  }
  SlotPass<true>(qs, a.spans, a.num_spans, static_cast<const TKV*>(a.k), a.kv_stride, D, a.scale);
  for (size_t i = 0; i < qs.count; ++i) {
    const KeyColumns& keys = a.keys[i / a.group];
    float* row = qs.scores[i];
    std::fill(row + keys.hole_begin, row + keys.hole_end, kNegInf);
    SoftmaxRow(df, row, keys.end);
    std::fill(row + keys.end, row + total, 0.0f);
  }
  ZeroRows(qs, D);  // after every score: out may alias q
  AccumulateBlock(qs, a.spans, static_cast<const TKV*>(a.v), a.kv_stride, D, tile_end, end);
}

void AttentionBlockT(const AttentionBlockArgs& a) {
  if (a.kv_dtype == DType::kF32) {
    AttentionBlockTyped<float>(a);
  } else {
    AttentionBlockTyped<hwy::float16_t>(a);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {
HWY_EXPORT(AttentionQueriesT);
void AttentionQueries(const AttentionArgs& a) {
  OKO_CHECK(a.kv_dtype == DType::kF32 || a.kv_dtype == DType::kF16, "kv dtype {} not supported",
            DTypeName(a.kv_dtype));
  for (size_t s = 0; s < a.num_spans; ++s)
    OKO_CHECK(a.spans[s].begin <= a.spans[s].end, "span {} = [{}, {})", s, a.spans[s].begin,
              a.spans[s].end);
  OKO_CHECK(a.num_queries <= kBlockQueries, "{} queries share one KV head (at most {})",
            a.num_queries, kBlockQueries);
  HWY_DYNAMIC_DISPATCH(AttentionQueriesT)(a);
}

HWY_EXPORT(AttentionBlockT);
void AttentionBlock(const AttentionBlockArgs& a) {
  OKO_CHECK(a.kv_dtype == DType::kF32 || a.kv_dtype == DType::kF16, "kv dtype {} not supported",
            DTypeName(a.kv_dtype));
  OKO_CHECK(a.num_positions * a.group <= kBlockQueries, "{} positions x {} heads in one block (at most {})",
            a.num_positions, a.group, kBlockQueries);
  size_t total = 0;
  for (size_t s = 0; s < a.num_spans; ++s) {
    OKO_CHECK(a.spans[s].begin <= a.spans[s].end, "span {} = [{}, {})", s, a.spans[s].begin,
              a.spans[s].end);
    total += a.spans[s].end - a.spans[s].begin;
  }
  for (size_t t = 0; t < a.num_positions; ++t) {
    const KeyColumns& k = a.keys[t];
    OKO_CHECK(k.hole_begin <= k.hole_end && k.hole_end <= k.end && k.end <= total,
              "position {}: keys [0, {}) minus [{}, {}) of {}", t, k.end, k.hole_begin, k.hole_end, total);
  }
  HWY_DYNAMIC_DISPATCH(AttentionBlockT)(a);
}
}  // namespace oko
#endif
