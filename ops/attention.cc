#include "ops/attention.h"

#include <algorithm>

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

// out[i] = scale * (sum of the lanes of v[i]) for i < 4, with 3-5 shuffle+add steps
// instead of four full reductions.
template <class D>
HWY_INLINE void SumOfLanes4(D d, const hn::Vec<D>* v, float scale, float* HWY_RESTRICT out) {
#if HWY_TARGET == HWY_SCALAR
  for (size_t i = 0; i < 4; ++i) out[i] = scale * hn::GetLane(v[i]);
#else
  auto c = PairSum(d, PairSum(d, v[0], v[1]), PairSum(d, v[2], v[3]));  // N/4 lanes each
  for (size_t n = hn::Lanes(d) / 4; n > 1; n /= 2) c = PairSum(d, c, c);
  HWY_ALIGN float buf[HWY_MAX_BYTES / sizeof(float)];
  hn::Store(hn::Mul(c, hn::Set(d, scale)), d, buf);
  for (size_t i = 0; i < 4; ++i) out[i] = buf[i];
#endif
}

// probs[g0 + q, s] = scale * q[g0 + q] · rows[s] for kQ queries and kS slots.
template <size_t kQ, size_t kS, typename TKV>
HWY_INLINE void ScoreTile(const AttentionArgs& a, size_t g0, const TKV* const* rows,
                          float* HWY_RESTRICT probs, size_t total) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df), D = a.head_dim;
  const float* HWY_RESTRICT q[kQ];
  for (size_t i = 0; i < kQ; ++i) q[i] = a.q + (g0 + i) * a.q_stride;
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
    float* out = probs + (g0 + i) * total;
    if constexpr (kS == 4) {
      SumOfLanes4(df, acc[i], a.scale, out);
    } else {
      for (size_t s = 0; s < kS; ++s) out[s] = a.scale * hn::GetLane(hn::SumOfLanes(df, acc[i][s]));
    }
  }
}

// out[g0 + q] += sum_s probs[g0 + q, s] * rows[s] for kQ queries and kS slots.
template <size_t kQ, size_t kS, typename TKV>
HWY_INLINE void AccumulateTile(const AttentionArgs& a, size_t g0, const TKV* const* rows,
                               const float* HWY_RESTRICT probs, size_t total) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df), D = a.head_dim;
  float* HWY_RESTRICT out[kQ];
  hn::Vec<decltype(df)> p[kQ][kS];
  for (size_t i = 0; i < kQ; ++i) {
    out[i] = a.out + (g0 + i) * a.out_stride;
    for (size_t s = 0; s < kS; ++s) p[i][s] = hn::Set(df, probs[(g0 + i) * total + s]);
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

// Runs Tile<kQ, kS> over all queries in groups of kMaxQueries (then 3, 2, 1).
template <bool kScores, size_t kS, typename TKV>
HWY_INLINE void ForQueryGroups(const AttentionArgs& a, const TKV* const* rows, float* probs,
                               size_t total) {
  size_t g = 0;
  for (; g + kMaxQueries <= a.num_queries; g += kMaxQueries) {
    if constexpr (kScores) ScoreTile<kMaxQueries, kS>(a, g, rows, probs, total);
    else AccumulateTile<kMaxQueries, kS>(a, g, rows, probs, total);
  }
  switch (a.num_queries - g) {
    case 3:
      if constexpr (kScores) ScoreTile<3, kS>(a, g, rows, probs, total);
      else AccumulateTile<3, kS>(a, g, rows, probs, total);
      break;
    case 2:
      if constexpr (kScores) ScoreTile<2, kS>(a, g, rows, probs, total);
      else AccumulateTile<2, kS>(a, g, rows, probs, total);
      break;
    case 1:
      if constexpr (kScores) ScoreTile<1, kS>(a, g, rows, probs, total);
      else AccumulateTile<1, kS>(a, g, rows, probs, total);
      break;
    default: break;
  }
}

// One pass over the slots of all spans: scores from K (kScores) or output from V.
template <bool kScores, typename TKV>
HWY_INLINE void SlotPass(const AttentionArgs& a, const TKV* base, size_t total) {
  size_t col = 0;
  for (size_t sp = 0; sp < a.num_spans; ++sp) {
    const size_t end = a.spans[sp].end;
    for (size_t j = a.spans[sp].begin; j < end; j += kSlotBlock) {
      const size_t count = std::min(kSlotBlock, end - j);
      const TKV* rows[kSlotBlock];
      for (size_t s = 0; s < count; ++s) {
        rows[s] = base + (j + s) * a.kv_stride;
        if (j + s + kPrefetchSlots < end) PrefetchRow(rows[s] + kPrefetchSlots * a.kv_stride, a.head_dim);
      }
      if (count == kSlotBlock) {
        ForQueryGroups<kScores, kSlotBlock>(a, rows, a.probs + col, total);
      } else {
        for (size_t s = 0; s < count; ++s) ForQueryGroups<kScores, 1>(a, rows + s, a.probs + col + s, total);
      }
      col += count;
    }
  }
}

template <typename TKV>
void AttentionTyped(const AttentionArgs& a) {
  const hn::ScalableTag<float> df;
  size_t total = 0;
  for (size_t s = 0; s < a.num_spans; ++s) total += a.spans[s].end - a.spans[s].begin;
  SlotPass<true>(a, static_cast<const TKV*>(a.k), total);
  for (size_t g = 0; g < a.num_queries; ++g) SoftmaxRow(df, a.probs + g * total, total);
  for (size_t g = 0; g < a.num_queries; ++g) {
    float* out = a.out + g * a.out_stride;
    for (size_t i = 0; i < a.head_dim; ++i) out[i] = 0.0f;
  }
  SlotPass<false>(a, static_cast<const TKV*>(a.v), total);
}

void AttentionQueriesT(const AttentionArgs& a) {
  if (a.kv_dtype == DType::kF32) {
    AttentionTyped<float>(a);
  } else {
    AttentionTyped<hwy::float16_t>(a);
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
  HWY_DYNAMIC_DISPATCH(AttentionQueriesT)(a);
}
}  // namespace oko
#endif
