// Helpers shared by the Highway kernels (per-target code: include inside HWY_NAMESPACE
// files after highway.h). Include guard toggles per target, as Highway requires.
#if defined(OKO_OPS_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef OKO_OPS_SIMD_INL_H_
#undef OKO_OPS_SIMD_INL_H_
#else
#define OKO_OPS_SIMD_INL_H_
#endif

#include <hwy/highway.h>

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
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), a0);
  if (i < n) a1 = hn::MulAdd(LoadTail(d, x + i, n - i, 0.0f), LoadTail(d, y + i, n - i, 0.0f), a1);
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#endif  // OKO_OPS_SIMD_INL_H_
