#include "ops/attention.h"

#include <algorithm>
#include <limits>
#include <type_traits>

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
constexpr size_t kPrefetchSlots = kAttentionPrefetchSlots;

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
// `count` of kS = 4 slots (the caller pads rows, so every score goes through the same
// reduction).
template <size_t kQ, size_t kS, typename TKV>
HWY_INLINE void ScoreTile(const QuerySet& qs, size_t i0, size_t D, float scale,
                          const TKV* const* rows, const size_t* cols, size_t count) {
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
    float sums[kS];
    SumOfLanes4(df, acc[i], scale, sums, count);
    for (size_t s = 0; s < count; ++s) qs.scores[i0 + i][cols[s]] = sums[s];
  }
}

// out[i0 + i] += sum_s scores[i0 + i][col + s] * rows[s] for kQ queries and kS slots,
// streaming: each output row is loaded and stored per tile, each V row read once.
template <size_t kQ, size_t kS, typename TKV>
HWY_INLINE void AccumulateTile(const QuerySet& qs, size_t i0, size_t D, const TKV* const* rows,
                               const size_t* cols) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  float* HWY_RESTRICT out[kQ];
  hn::Vec<decltype(df)> p[kQ][kS];
  for (size_t i = 0; i < kQ; ++i) {
    out[i] = qs.out[i0 + i];
    for (size_t s = 0; s < kS; ++s) p[i][s] = hn::Set(df, qs.scores[i0 + i][cols[s]]);
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
                               const size_t* cols, size_t count) {
  size_t i = 0;
  for (; i + kMaxQueries <= qs.count; i += kMaxQueries) {
    if constexpr (kScores) ScoreTile<kMaxQueries, kS>(qs, i, D, scale, rows, cols, count);
    else AccumulateTile<kMaxQueries, kS>(qs, i, D, rows, cols);
  }
  switch (qs.count - i) {
    case 3:
      if constexpr (kScores) ScoreTile<3, kS>(qs, i, D, scale, rows, cols, count);
      else AccumulateTile<3, kS>(qs, i, D, rows, cols);
      break;
    case 2:
      if constexpr (kScores) ScoreTile<2, kS>(qs, i, D, scale, rows, cols, count);
      else AccumulateTile<2, kS>(qs, i, D, rows, cols);
      break;
    case 1:
      if constexpr (kScores) ScoreTile<1, kS>(qs, i, D, scale, rows, cols, count);
      else AccumulateTile<1, kS>(qs, i, D, rows, cols);
      break;
    default: break;
  }
}

size_t TotalSlots(const SlotSpan* spans, size_t num_spans) {
  size_t total = 0;
  for (size_t s = 0; s < num_spans; ++s) total += spans[s].end - spans[s].begin;
  return total;
}

// The slots of the spans in column order, from column `col` on.
class SlotCursor {
 public:
  // col < the spans' total.
  SlotCursor(const SlotSpan* spans, size_t col) : spans_(spans) {
    while (col >= spans_[sp_].end - spans_[sp_].begin) {
      col -= spans_[sp_].end - spans_[sp_].begin;
      ++sp_;
    }
    slot_ = spans_[sp_].begin + col;
  }
  // The next column's slot.
  size_t Next() {
    while (slot_ == spans_[sp_].end) slot_ = spans_[++sp_].begin;
    return slot_++;
  }
  // The slots from the next one to the end of its span or of its chunk of `rows` (where
  // the rows lie at a fixed stride).
  struct Run {
    size_t first, count, span_end;
  };
  Run NextRun(const KvRows& rows) {
    while (slot_ == spans_[sp_].end) slot_ = spans_[++sp_].begin;
    const size_t chunk_end = ((slot_ >> rows.chunk_log2) + 1) << rows.chunk_log2;
    const size_t first = slot_;
    slot_ = std::min(spans_[sp_].end, chunk_end);
    return {first, slot_ - first, spans_[sp_].end};
  }

 private:
  const SlotSpan* spans_;
  size_t sp_ = 0, slot_ = 0;
};

// The K or V rows of the spans' slots in column order, from column `col` on, walked by
// pointer within a run of slots at one stride (KvRows::Offset once per run, not per row),
// each asking for the row kPrefetchSlots further along when its span reaches it. The
// scalar work of finding each row (SlotCursor::Next, Offset's shift, mask and multiply)
// was about 28% of the f16 kernel's samples at ctx 512 from cache (docs/PERFORMANCE.md,
// session 28).
template <typename TKV>
class RowCursor {
 public:
  RowCursor(const SlotSpan* spans, size_t col, const TKV* base, const KvRows& rows, size_t D)
      : slots_(spans, col), base_(base), rows_(rows), D_(D) {}

  const TKV* Next() {
    if (left_ == 0) {
      const SlotCursor::Run run = slots_.NextRun(rows_);
      slot_ = run.first;
      left_ = run.count;
      span_end_ = run.span_end;
      row_ = base_ + rows_.Offset(slot_);
    }
    const TKV* row = row_;
    if (left_ > kPrefetchSlots) {
      PrefetchRow(row + kPrefetchSlots * rows_.stride, D_);
    } else if (slot_ + kPrefetchSlots < span_end_) {  // in the next chunk
      PrefetchRow(base_ + rows_.Offset(slot_ + kPrefetchSlots), D_);
    }
    row_ += rows_.stride;
    ++slot_;
    --left_;
    return row;
  }

 private:
  SlotCursor slots_;
  const TKV* base_;
  KvRows rows_;
  size_t D_;
  const TKV* row_ = nullptr;  // slot_'s row
  size_t slot_ = 0, left_ = 0, span_end_ = 0;  // left_: slots left in the run from slot_
};

// One pass over the slots of all spans: scores from K (kScores) or output from V. The
// columns split into kSlotBlock parts read side by side, a tile taking one slot of each:
// kSlotBlock memory streams where one (a head's K or V is one contiguous run) left the
// memory idle between a core's few misses, as the GEMV's streams found (matmul.h).
// bench/ops attention_bench, ctx 4096 from DRAM, head-major, 1 thread, Zen 4, GB/s mean
// (best): f32 21.6 (23.8) -> 23.2 (25.8), f16 19.1 (21.5) -> 21.1 (22.9); `oko profile -t 1
// -p 4096 -n 16 --kv f16` (bf16 Qwen3-0.6B shape), attention 433-435 -> 393-415 ms. f16
// stays below f32's GB/s from cache too (25-28 vs 48-51 at ctx 512): its widening, not
// the memory, sets its pace.
template <bool kScores, typename TKV>
HWY_INLINE void SlotPass(const QuerySet& qs, const SlotSpan* spans, size_t num_spans,
                         const TKV* base, const KvRows& kv_rows, size_t D, float scale) {
  const size_t total = TotalSlots(spans, num_spans), part = total / kSlotBlock;
  if (part > 0) {
    RowCursor<TKV> streams[kSlotBlock] = {{spans, 0, base, kv_rows, D},
                                          {spans, part, base, kv_rows, D},
                                          {spans, 2 * part, base, kv_rows, D},
                                          {spans, 3 * part, base, kv_rows, D}};
    static_assert(kSlotBlock == 4);
    for (size_t t = 0; t < part; ++t) {
      const TKV* rows[kSlotBlock];
      size_t cols[kSlotBlock];
      for (size_t s = 0; s < kSlotBlock; ++s) {
        rows[s] = streams[s].Next();
        cols[s] = s * part + t;
      }
      ForQueryGroups<kScores, kSlotBlock>(qs, D, scale, rows, cols, kSlotBlock);
    }
  }
  if (kSlotBlock * part == total) return;
  RowCursor<TKV> rest(spans, kSlotBlock * part, base, kv_rows, D);
  for (size_t col = kSlotBlock * part; col < total; ++col) {
    const TKV* rows[kSlotBlock];
    rows[0] = rest.Next();
    if constexpr (kScores) {
      for (size_t s = 1; s < kSlotBlock; ++s) rows[s] = rows[0];  // computed, not stored
      ForQueryGroups<true, kSlotBlock>(qs, D, scale, rows, &col, 1);
    } else {
      ForQueryGroups<false, 1>(qs, D, scale, rows, &col, 1);
    }
  }
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
  SlotPass<true>(qs, a.spans, a.num_spans, static_cast<const TKV*>(a.k), a.rows,
                 a.head_dim, a.scale);
  if (a.key_bias != nullptr)
    for (size_t g = 0; g < a.num_queries; ++g) {
      const float* bias = a.key_bias + g * a.key_bias_head_stride;
      for (size_t j = 0; j < total; ++j) qs.scores[g][j] += bias[j];
    }
  for (size_t g = 0; g < a.num_queries; ++g) SoftmaxRow(df, qs.scores[g], total);
  ZeroRows(qs, a.head_dim);
  SlotPass<false>(qs, a.spans, a.num_spans, static_cast<const TKV*>(a.v), a.rows,
                  a.head_dim, a.scale);
  if (a.head_scale != nullptr)
    for (size_t g = 0; g < a.num_queries; ++g)
      for (size_t d = 0; d < a.head_dim; ++d) qs.out[g][d] *= a.head_scale[g];
}

void AttentionQueriesT(const AttentionArgs& a) {
  if (a.kv_dtype == DType::kF32) {
    AttentionTyped<float>(a);
  } else {
    AttentionTyped<hwy::float16_t>(a);
  }
}

// ---- Blocks of query positions (prefill) ----
//
// The block's queries are transposed once (qt[d][query], padded to whole vectors), so
// scores come out as st[column][query] from broadcast-K x vector-of-queries FMAs: no
// horizontal sums, and the masked softmax runs down the columns a vector of queries at a
// time. The output is then accumulated per query in registers from broadcast-p x V.

// Score tiles: kScoreCols key columns x kScoreQV query vectors of accumulators.
constexpr size_t kScoreCols = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 ? 8 : 4;
constexpr size_t kScoreQV = 2;
// Columns per pass of the accumulation: their V rows (32 KiB in f16 at head_dim 128) stay
// in L1 while every query tile and head_dim chunk reuses them.
constexpr size_t kColumnBlock = 128;
// Accumulation tiles: kBlockTileQ queries x kBlockTileV output vectors (16 of 32 zmm).
constexpr size_t kBlockTileQ = 4;
constexpr size_t kBlockTileV = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 ? 4 : 2;
static_assert(HWY_LANES(float) <= kQueryPad, "AttentionBlockScratch pads queries to kQueryPad");

// The rows of columns [col0, col0 + n) of the spans, in column order.
template <typename TKV>
void GatherRows(const SlotSpan* spans, const TKV* base, const KvRows& kv_rows, size_t col0, size_t n,
                const TKV** rows) {
  SlotCursor cursor(spans, col0);
  for (size_t c = 0; c < n; ++c) rows[c] = base + kv_rows.Offset(cursor.Next());
}

// st[c][q0 + ...] = scale * k[c] · q for kC key columns and kQV vectors of queries.
template <size_t kC, size_t kQV>
HWY_INLINE void ScoreColumnTile(const float* HWY_RESTRICT qt, size_t nqp, size_t q0,
                                const float* const* k, size_t D, float scale,
                                float* HWY_RESTRICT st) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  hn::Vec<decltype(df)> acc[kC][kQV];
  for (size_t c = 0; c < kC; ++c)
    for (size_t v = 0; v < kQV; ++v) acc[c][v] = hn::Zero(df);
  for (size_t d = 0; d < D; ++d) {
    hn::Vec<decltype(df)> vq[kQV];
    for (size_t v = 0; v < kQV; ++v) vq[v] = hn::LoadU(df, qt + d * nqp + q0 + v * N);
    for (size_t c = 0; c < kC; ++c) {
      const auto kb = hn::Set(df, k[c][d]);
      for (size_t v = 0; v < kQV; ++v) acc[c][v] = hn::MulAdd(kb, vq[v], acc[c][v]);
    }
  }
  const auto vs = hn::Set(df, scale);
  for (size_t c = 0; c < kC; ++c)
    for (size_t v = 0; v < kQV; ++v) hn::StoreU(hn::Mul(acc[c][v], vs), df, st + c * nqp + q0 + v * N);
}

// All query vectors for kC columns.
template <size_t kC>
HWY_INLINE void ScoreColumns(const float* qt, size_t nqp, const float* const* k, size_t D,
                             float scale, float* st) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  size_t q0 = 0;
  for (; q0 + kScoreQV * N <= nqp; q0 += kScoreQV * N) ScoreColumnTile<kC, kScoreQV>(qt, nqp, q0, k, D, scale, st);
  for (; q0 < nqp; q0 += N) ScoreColumnTile<kC, 1>(qt, nqp, q0, k, D, scale, st);
}

// st[c][q] for the columns [0, end): K rows as f32 (f16 rows widened into kf32 first).
template <typename TKV>
void ScoreBlock(const AttentionBlockArgs& a, const float* qt, size_t nqp, size_t end, float* st,
                float* kf32) {
  const hn::ScalableTag<float> df;
  const size_t D = a.head_dim;
  const TKV* rows[kScoreCols];
  const float* k[kScoreCols];
  for (size_t col = 0; col < end; col += kScoreCols) {
    const size_t n = std::min(kScoreCols, end - col);
    GatherRows(a.spans, static_cast<const TKV*>(a.k), a.rows, col, n, rows);
    for (size_t c = 0; c < n; ++c) {
      if constexpr (std::is_same_v<TKV, float>) {
        k[c] = rows[c];
      } else {
        float* row = kf32 + c * D;
        size_t d = 0;
        for (; d + hn::Lanes(df) <= D; d += hn::Lanes(df)) hn::StoreU(LoadF32(df, rows[c] + d), df, row + d);
        if (d < D) StoreTail(df, LoadTailF32(df, rows[c] + d, D - d), row + d, D - d);
        k[c] = row;
      }
    }
    if (n == kScoreCols) {
      ScoreColumns<kScoreCols>(qt, nqp, k, D, a.scale, st + col * nqp);
    } else {
      for (size_t c = 0; c < n; ++c) ScoreColumns<1>(qt, nqp, k + c, D, a.scale, st + (col + c) * nqp);
    }
  }
}

// Softmax down the columns [0, end) of st for the queries [q0, q0 + N), each over the
// columns it sees (the others get p = 0): lane i masks columns >= key_end[i] and those
// in [hole_begin[i], hole_end[i]).
void SoftmaxColumns(float* st, size_t nqp, size_t q0, size_t end, const float* key_end,
                    const float* hole_begin, const float* hole_end) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const hn::ScalableTag<float> df;
  const auto ve = hn::LoadU(df, key_end), vhb = hn::LoadU(df, hole_begin);
  const auto vhe = hn::LoadU(df, hole_end), neg_inf = hn::Set(df, kNegInf);
  auto vmax = neg_inf, col = hn::Zero(df);
  const auto one = hn::Set(df, 1.0f);
  for (size_t c = 0; c < end; ++c, col = hn::Add(col, one)) {
    float* p = st + c * nqp + q0;
    const auto hidden = hn::Or(hn::Ge(col, ve), hn::And(hn::Ge(col, vhb), hn::Lt(col, vhe)));
    const auto x = hn::IfThenElse(hidden, neg_inf, hn::LoadU(df, p));
    hn::StoreU(x, df, p);
    vmax = hn::Max(vmax, x);
  }
  const auto safe_max = hn::IfThenElse(hn::Eq(vmax, neg_inf), hn::Zero(df), vmax);
  auto sum = hn::Zero(df);
  for (size_t c = 0; c < end; ++c) {
    float* p = st + c * nqp + q0;
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, p), safe_max));  // exp(-inf) = 0
    hn::StoreU(e, df, p);
    sum = hn::Add(sum, e);
  }
  // A query whose every column is -inf (a key bias removed them all) gets p = 0.
  const auto inv = hn::IfThenElseZero(hn::Gt(sum, hn::Zero(df)), hn::Div(one, sum));
  for (size_t c = 0; c < end; ++c) {
    float* p = st + c * nqp + q0;
    hn::StoreU(hn::Mul(hn::LoadU(df, p), inv), df, p);
  }
}

// out[i][d0, d0 + kV * N) (or `tail` < N lanes when kTail) += sum over the columns c < n
// of st[col0 + c][i] * rows[c][d0, ...), for the kQ queries i in out, in registers.
template <size_t kQ, size_t kV, bool kTail, typename TKV>
HWY_INLINE void AccumulateColumns(float* const* out, const float* st, size_t nqp, size_t col0,
                                  const TKV* const* rows, size_t n, size_t d0, size_t tail) {
  static_assert(!kTail || kV == 1, "a tail chunk is one partial vector");
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  hn::Vec<decltype(df)> acc[kQ][kV];
  for (size_t i = 0; i < kQ; ++i)
    for (size_t v = 0; v < kV; ++v)
      acc[i][v] = kTail ? LoadTail(df, out[i] + d0, tail, 0.0f) : hn::LoadU(df, out[i] + d0 + v * N);
  for (size_t c = 0; c < n; ++c) {
    hn::Vec<decltype(df)> vv[kV];
    for (size_t v = 0; v < kV; ++v)
      vv[v] = kTail ? LoadTailF32(df, rows[c] + d0, tail) : LoadF32(df, rows[c] + d0 + v * N);
    const float* p = st + (col0 + c) * nqp;
    for (size_t i = 0; i < kQ; ++i) {
      const auto pi = hn::Set(df, p[i]);
      for (size_t v = 0; v < kV; ++v) acc[i][v] = hn::MulAdd(pi, vv[v], acc[i][v]);
    }
  }
  for (size_t i = 0; i < kQ; ++i)
    for (size_t v = 0; v < kV; ++v) {
      if (kTail) StoreTail(df, acc[i][v], out[i] + d0, tail);
      else hn::StoreU(acc[i][v], df, out[i] + d0 + v * N);
    }
}

// All of head_dim for kQ queries over n columns: chunks of kBlockTileV vectors, then
// single vectors, then the partial tail.
template <size_t kQ, typename TKV>
HWY_INLINE void AccumulateQueries(float* const* out, const float* st, size_t nqp, size_t col0,
                                  const TKV* const* rows, size_t n, size_t D) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  size_t d = 0;
  for (; d + kBlockTileV * N <= D; d += kBlockTileV * N)
    AccumulateColumns<kQ, kBlockTileV, false>(out, st, nqp, col0, rows, n, d, 0);
  for (; d + N <= D; d += N) AccumulateColumns<kQ, 1, false>(out, st, nqp, col0, rows, n, d, 0);
  if (d < D) AccumulateColumns<kQ, 1, true>(out, st, nqp, col0, rows, n, d, D - d);
}

// out = P · V over the columns [0, end), one column block at a time. tile_end[k]: the
// columns at or past it have p = 0 for the queries of tile k ([k, k + 1) * kBlockTileQ).
template <typename TKV>
void AccumulateBlock(const AttentionBlockArgs& a, float* const* out, size_t nq, const float* st,
                     size_t nqp, const size_t* tile_end, size_t end) {
  const TKV* rows[kColumnBlock];
  for (size_t col0 = 0; col0 < end; col0 += kColumnBlock) {
    const size_t n = std::min(kColumnBlock, end - col0);
    GatherRows(a.spans, static_cast<const TKV*>(a.v), a.rows, col0, n, rows);
    for (size_t i = 0, tile = 0; i < nq; i += kBlockTileQ, ++tile) {
      if (col0 >= tile_end[tile]) continue;
      const size_t cols = std::min(n, tile_end[tile] - col0);
      const float* sti = st + i;
      switch (std::min(kBlockTileQ, nq - i)) {
        case 4: AccumulateQueries<4>(out + i, sti, nqp, col0, rows, cols, a.head_dim); break;
        case 3: AccumulateQueries<3>(out + i, sti, nqp, col0, rows, cols, a.head_dim); break;
        case 2: AccumulateQueries<2>(out + i, sti, nqp, col0, rows, cols, a.head_dim); break;
        default: AccumulateQueries<1>(out + i, sti, nqp, col0, rows, cols, a.head_dim); break;
      }
    }
  }
}

// probs[i][c] = st[c][i] for the block's queries, zero past the columns any of them sees.
void CopyProbabilities(const AttentionBlockArgs& a, const float* st, size_t nq, size_t nqp,
                       size_t end) {
  size_t total = 0;
  for (size_t s = 0; s < a.num_spans; ++s) total += a.spans[s].end - a.spans[s].begin;
  for (size_t i = 0; i < nq; ++i) {
    float* row = a.probs + i * total;
    for (size_t c = 0; c < end; ++c) row[c] = st[c * nqp + i];
    std::fill(row + end, row + total, 0.0f);
  }
}

template <typename TKV>
void AttentionBlockTyped(const AttentionBlockArgs& a) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>()), D = a.head_dim;
  const size_t nq = a.num_positions * a.group, nqp = (nq + N - 1) / N * N;
  size_t end = 0;
  for (size_t t = 0; t < a.num_positions; ++t) end = std::max(end, a.keys[t].end);
  float* qt = a.scratch;                // [D][nqp]
  float* st = qt + D * nqp;             // [end][nqp]
  float* kf32 = st + end * nqp;         // [kScoreCols][D]
  // Per query: its rows, its visible columns (as floats for the vector masks), padding
  // lanes see every column so that their softmax stays finite.
  float* out[kBlockQueries] = {};  // the first nq set below
  HWY_ALIGN float key_end[kBlockQueries + kQueryPad], hole_begin[kBlockQueries + kQueryPad],
      hole_end[kBlockQueries + kQueryPad];
  size_t tile_end[kBlockQueries / kBlockTileQ] = {};
  for (size_t i = 0; i < nqp; ++i) {
    const size_t t = i / a.group, g = i % a.group;
    const KeyColumns keys = i < nq ? a.keys[t] : KeyColumns{end, 0, 0};
    key_end[i] = static_cast<float>(keys.end);
    hole_begin[i] = static_cast<float>(keys.hole_begin);
    hole_end[i] = static_cast<float>(keys.hole_end);
    for (size_t d = 0; d < D; ++d) qt[d * nqp + i] = i < nq ? a.q[t * a.q_pos_stride + g * D + d] : 0.0f;
    if (i < nq) {
      out[i] = a.out + t * a.out_pos_stride + g * D;
      tile_end[i / kBlockTileQ] = std::max(tile_end[i / kBlockTileQ], keys.end);
    }
  }
  ScoreBlock<TKV>(a, qt, nqp, end, st, kf32);
  if (a.key_bias != nullptr)
    for (size_t i = 0; i < nq; ++i) {
      const float* bias =
          a.key_bias + (i / a.group) * a.key_bias_stride + (i % a.group) * a.key_bias_head_stride;
      for (size_t c = 0; c < end; ++c) st[c * nqp + i] += bias[c];
    }
  for (size_t q0 = 0; q0 < nqp; q0 += N)
    SoftmaxColumns(st, nqp, q0, end, key_end + q0, hole_begin + q0, hole_end + q0);
  if (a.probs != nullptr) CopyProbabilities(a, st, nq, nqp, end);
  for (size_t i = 0; i < nq; ++i) std::fill(out[i], out[i] + D, 0.0f);  // q was read: out may alias it
  AccumulateBlock<TKV>(a, out, nq, st, nqp, tile_end, end);
  if (a.head_scale != nullptr)
    for (size_t i = 0; i < nq; ++i)
      for (size_t d = 0; d < D; ++d) out[i][d] *= a.head_scale[i % a.group];
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

void PrefetchAttentionKv(const void* k, const void* v, const KvRows& rows, DType kv_dtype, size_t head_dim,
                         const SlotSpan* spans, size_t num_spans) {
  const size_t row_bytes = head_dim * DTypeSize(kv_dtype);
  size_t left = kAttentionPrefetchSlots;
  for (size_t s = 0; s < num_spans && left > 0; ++s) {
    for (size_t slot = spans[s].begin; slot < spans[s].end && left > 0; ++slot, --left) {
      const size_t offset = rows.Offset(slot) * DTypeSize(kv_dtype);
      for (size_t line = 0; line < row_bytes; line += 64) {
        hwy::Prefetch(static_cast<const char*>(k) + offset + line);
        hwy::Prefetch(static_cast<const char*>(v) + offset + line);
      }
    }
  }
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
