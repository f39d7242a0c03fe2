// Helpers shared by the Highway kernels (per-target code: include inside HWY_NAMESPACE
// files after highway.h). Include guard toggles per target, as Highway requires.
#if defined(OKO_OPS_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef OKO_OPS_SIMD_INL_H_
#undef OKO_OPS_SIMD_INL_H_
#else
#define OKO_OPS_SIMD_INL_H_
#endif

#include <hwy/highway.h>

#include "common/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Loads `count` < Lanes(d) elements, the rest `fill`. Highway 1.0.3's MaskedLoad is a
// full aligned load on SSE4/AVX2 (DEPS.md pitfall 1), so copy through a stack buffer there.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE hn::Vec<D> LoadTail(D d, const T* HWY_RESTRICT p, size_t count, T fill) {
#if HWY_MEM_OPS_MIGHT_FAULT
  HWY_ALIGN T buf[HWY_MAX_BYTES / sizeof(T)];
  for (size_t j = 0; j < hn::Lanes(d); ++j) buf[j] = j < count ? p[j] : fill;
  return hn::Load(d, buf);
#else
  const auto m = hn::FirstN(d, count);
  return hn::IfThenElse(m, hn::MaskedLoad(m, d, p), hn::Set(d, fill));
#endif
}

// Stores the first `count` lanes of v.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void StoreTail(D d, hn::Vec<D> v, T* HWY_RESTRICT p, size_t count) {
  hn::BlendedStore(v, hn::FirstN(d, count), d, p);
}

// sum_i x[i]*y[i] over n floats, 4 accumulators.
template <class D>
HWY_INLINE float DotF32(D d, const float* HWY_RESTRICT x, const float* HWY_RESTRICT y, size_t n) {
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), a0);
    a1 = hn::MulAdd(hn::LoadU(d, x + i + N), hn::LoadU(d, y + i + N), a1);
    a2 = hn::MulAdd(hn::LoadU(d, x + i + 2 * N), hn::LoadU(d, y + i + 2 * N), a2);
    a3 = hn::MulAdd(hn::LoadU(d, x + i + 3 * N), hn::LoadU(d, y + i + 3 * N), a3);
  }
  for (; n - i >= N; i += N) a0 = hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), a0);
  if (i < n) a1 = hn::MulAdd(LoadTail(d, x + i, n - i, 0.0f), LoadTail(d, y + i, n - i, 0.0f), a1);
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
}

// Hardware f16 <-> f32 conversion (F16C) exists from AVX2 up. Below that, Highway 1.0.3
// emulates it without inf/NaN (and truncates when narrowing), so we use scalar code there.
constexpr bool kNativeF16 = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2;

inline float ToF32(float v) { return v; }
inline float ToF32(hwy::bfloat16_t v) { return Bf16ToF32(v.bits); }
inline float ToF32(hwy::float16_t v) { return F16ToF32(v.bits); }

// Loads Lanes(df) consecutive weights of type T (f32, bf16 or f16) widened exactly to f32.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadF32(DF df, const float* HWY_RESTRICT p) {
  return hn::LoadU(df, p);
}
template <class DF>
HWY_INLINE hn::Vec<DF> LoadF32(DF df, const hwy::bfloat16_t* HWY_RESTRICT p) {
  const hn::Rebind<hwy::bfloat16_t, DF> dbf;
  return hn::PromoteTo(df, hn::LoadU(dbf, p));
}
template <class DF>
HWY_INLINE hn::Vec<DF> LoadF32(DF df, const hwy::float16_t* HWY_RESTRICT p) {
  if constexpr (kNativeF16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, p));
  } else {
    HWY_ALIGN float buf[HWY_MAX_BYTES / sizeof(float)];
    for (size_t j = 0; j < hn::Lanes(df); ++j) buf[j] = ToF32(p[j]);
    return hn::Load(df, buf);
  }
}

// Loads `count` < Lanes(df) elements widened to f32, the other lanes 0. Reads only
// [p, p + count): safe at the end of any buffer on every target.
template <class DF, typename T>
HWY_INLINE hn::Vec<DF> LoadTailF32(DF df, const T* HWY_RESTRICT p, size_t count) {
  HWY_ALIGN float buf[HWY_MAX_BYTES / sizeof(float)];
  for (size_t j = 0; j < hn::Lanes(df); ++j) buf[j] = j < count ? ToF32(p[j]) : 0.0f;
  return hn::Load(df, buf);
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#endif  // OKO_OPS_SIMD_INL_H_
