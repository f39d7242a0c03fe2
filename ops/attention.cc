#include "ops/attention.h"

#include <algorithm>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include "common/check.h"
#include "ops/simd-inl.h"
#include "ops/softmax-inl.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {

// Slots handled together: their K/V rows stay in L1 while every query of the group uses
// them, so each KV byte comes from memory once per call.
constexpr size_t kSlotBlock = 4;
// f16 KV rows are widened into a stack buffer [kSlotBlock, kMaxHeadDim].
constexpr size_t kMaxHeadDim = kAttentionMaxHeadDimF16;

// Pointers to `count` consecutive KV rows as f32: f32 rows in place, f16 rows widened
// into buf [kSlotBlock, kMaxHeadDim].
template <typename TKV>
HWY_INLINE void RowsAsF32(const TKV* HWY_RESTRICT base, size_t slot, size_t count,
                          size_t stride, size_t D, float* HWY_RESTRICT buf,
                          const float** rows) {
  if constexpr (std::is_same_v<TKV, float>) {
    for (size_t s = 0; s < count; ++s) rows[s] = base + (slot + s) * stride;
  } else {
    const hn::ScalableTag<float> df;
    const size_t N = hn::Lanes(df);
    for (size_t s = 0; s < count; ++s) {
      const TKV* HWY_RESTRICT src = base + (slot + s) * stride;
      float* HWY_RESTRICT dst = buf + s * kMaxHeadDim;
      size_t i = 0;
      for (; i + N <= D; i += N) hn::Store(LoadF32(df, src + i), df, dst + i);
      if (i < D) hn::Store(LoadTailF32(df, src + i, D - i), df, dst + i);
      rows[s] = dst;
    }
  }
}

// out[s] = scale * q · rows[s] for kSlotBlock rows, sharing each q load.
HWY_INLINE void DotBlock(const float* HWY_RESTRICT q, const float* const* rows, size_t D,
                         float scale, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  size_t i = 0;
  for (; i + N <= D; i += N) {
    const auto vq = hn::LoadU(df, q + i);
    a0 = hn::MulAdd(vq, hn::LoadU(df, rows[0] + i), a0);
    a1 = hn::MulAdd(vq, hn::LoadU(df, rows[1] + i), a1);
    a2 = hn::MulAdd(vq, hn::LoadU(df, rows[2] + i), a2);
    a3 = hn::MulAdd(vq, hn::LoadU(df, rows[3] + i), a3);
  }
  if (i < D) {
    const size_t n = D - i;
    const auto vq = LoadTail(df, q + i, n, 0.0f);
    a0 = hn::MulAdd(vq, LoadTail(df, rows[0] + i, n, 0.0f), a0);
    a1 = hn::MulAdd(vq, LoadTail(df, rows[1] + i, n, 0.0f), a1);
    a2 = hn::MulAdd(vq, LoadTail(df, rows[2] + i, n, 0.0f), a2);
    a3 = hn::MulAdd(vq, LoadTail(df, rows[3] + i, n, 0.0f), a3);
  }
  out[0] = scale * hn::GetLane(hn::SumOfLanes(df, a0));
  out[1] = scale * hn::GetLane(hn::SumOfLanes(df, a1));
  out[2] = scale * hn::GetLane(hn::SumOfLanes(df, a2));
  out[3] = scale * hn::GetLane(hn::SumOfLanes(df, a3));
}

// out[0, D) += sum_s p[s] * rows[s] over `count` rows.
HWY_INLINE void AccumulateRows(const float* HWY_RESTRICT p, const float* const* rows,
                               size_t count, size_t D, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  if (count == kSlotBlock) {
    const auto p0 = hn::Set(df, p[0]), p1 = hn::Set(df, p[1]);
    const auto p2 = hn::Set(df, p[2]), p3 = hn::Set(df, p[3]);
    size_t i = 0;
    for (; i + N <= D; i += N) {
      auto o = hn::LoadU(df, out + i);
      o = hn::MulAdd(p0, hn::LoadU(df, rows[0] + i), o);
      o = hn::MulAdd(p1, hn::LoadU(df, rows[1] + i), o);
      o = hn::MulAdd(p2, hn::LoadU(df, rows[2] + i), o);
      o = hn::MulAdd(p3, hn::LoadU(df, rows[3] + i), o);
      hn::StoreU(o, df, out + i);
    }
    if (i < D) {
      const size_t n = D - i;
      auto o = LoadTail(df, out + i, n, 0.0f);
      o = hn::MulAdd(p0, LoadTail(df, rows[0] + i, n, 0.0f), o);
      o = hn::MulAdd(p1, LoadTail(df, rows[1] + i, n, 0.0f), o);
      o = hn::MulAdd(p2, LoadTail(df, rows[2] + i, n, 0.0f), o);
      o = hn::MulAdd(p3, LoadTail(df, rows[3] + i, n, 0.0f), o);
      StoreTail(df, o, out + i, n);
    }
    return;
  }
  for (size_t s = 0; s < count; ++s) {
    const auto ps = hn::Set(df, p[s]);
    size_t i = 0;
    for (; i + N <= D; i += N)
      hn::StoreU(hn::MulAdd(ps, hn::LoadU(df, rows[s] + i), hn::LoadU(df, out + i)), df, out + i);
    if (i < D) {
      const size_t n = D - i;
      const auto o = hn::MulAdd(ps, LoadTail(df, rows[s] + i, n, 0.0f), LoadTail(df, out + i, n, 0.0f));
      StoreTail(df, o, out + i, n);
    }
  }
}

template <typename TKV>
void AttentionTyped(const AttentionArgs& a) {
  const hn::ScalableTag<float> df;
  const TKV* k = static_cast<const TKV*>(a.k);
  const TKV* v = static_cast<const TKV*>(a.v);
  const size_t D = a.head_dim;
  size_t total = 0;
  for (size_t s = 0; s < a.num_spans; ++s) total += a.spans[s].end - a.spans[s].begin;

  HWY_ALIGN float buf[std::is_same_v<TKV, float> ? 1 : kSlotBlock * kMaxHeadDim];
  const float* rows[kSlotBlock];

  // 1. scores, written straight into probs.
  size_t col = 0;
  for (size_t sp = 0; sp < a.num_spans; ++sp) {
    for (size_t j = a.spans[sp].begin; j < a.spans[sp].end; j += kSlotBlock) {
      const size_t count = std::min(kSlotBlock, a.spans[sp].end - j);
      RowsAsF32(k, j, count, a.kv_stride, D, buf, rows);
      for (size_t g = 0; g < a.num_queries; ++g) {
        const float* q = a.q + g * a.q_stride;
        float* p = a.probs + g * total + col;
        if (count == kSlotBlock) {
          DotBlock(q, rows, D, a.scale, p);
        } else {
          for (size_t s = 0; s < count; ++s) p[s] = a.scale * DotF32(df, q, rows[s], D);
        }
      }
      col += count;
    }
  }
  // 2. softmax per query.
  for (size_t g = 0; g < a.num_queries; ++g) SoftmaxRow(df, a.probs + g * total, total);
  // 3. out = probs · V.
  for (size_t g = 0; g < a.num_queries; ++g) {
    float* out = a.out + g * a.out_stride;
    for (size_t i = 0; i < D; ++i) out[i] = 0.0f;
  }
  col = 0;
  for (size_t sp = 0; sp < a.num_spans; ++sp) {
    for (size_t j = a.spans[sp].begin; j < a.spans[sp].end; j += kSlotBlock) {
      const size_t count = std::min(kSlotBlock, a.spans[sp].end - j);
      RowsAsF32(v, j, count, a.kv_stride, D, buf, rows);
      for (size_t g = 0; g < a.num_queries; ++g)
        AccumulateRows(a.probs + g * total + col, rows, count, D, a.out + g * a.out_stride);
      col += count;
    }
  }
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
  OKO_CHECK(a.kv_dtype == DType::kF32 || a.head_dim <= kAttentionMaxHeadDimF16,
            "head_dim={} > {} for f16 KV", a.head_dim, kAttentionMaxHeadDimF16);
  for (size_t s = 0; s < a.num_spans; ++s)
    OKO_CHECK(a.spans[s].begin <= a.spans[s].end, "span {} = [{}, {})", s, a.spans[s].begin,
              a.spans[s].end);
  HWY_DYNAMIC_DISPATCH(AttentionQueriesT)(a);
}
}  // namespace oko
#endif
