// Per-target softmax of one row, shared by elementwise.cc (SoftmaxInplace) and
// attention.cc. Include inside a foreach_target file after highway.h.
#if defined(OKO_OPS_SOFTMAX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef OKO_OPS_SOFTMAX_INL_H_
#undef OKO_OPS_SOFTMAX_INL_H_
#else
#define OKO_OPS_SOFTMAX_INL_H_
#endif

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <limits>

#include "ops/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {

// x[0, n) <- exp(x - max) / sum. -inf entries become 0; a row that is all -inf becomes
// all 0 (HF would give NaN; a fully masked row contributes nothing here).
template <class D>
HWY_INLINE void SoftmaxRow(D d, float* HWY_RESTRICT x, size_t n) {
  if (n == 0) return;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const size_t N = hn::Lanes(d);
  auto vmax = hn::Set(d, kNegInf);
  size_t i = 0;
  for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
  if (i < n) vmax = hn::Max(vmax, LoadTail(d, x + i, n - i, kNegInf));
  const float max = hn::GetLane(hn::MaxOfLanes(d, vmax));
  if (max == kNegInf) {
    for (size_t j = 0; j < n; ++j) x[j] = 0.0f;
    return;
  }
  const auto vm = hn::Set(d, max);
  auto sum0 = hn::Zero(d), sum1 = hn::Zero(d);
  for (i = 0; i + 2 * N <= n; i += 2 * N) {
    const auto e0 = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    const auto e1 = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i + N), vm));
    hn::StoreU(e0, d, x + i);
    hn::StoreU(e1, d, x + i + N);
    sum0 = hn::Add(sum0, e0);
    sum1 = hn::Add(sum1, e1);
  }
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    hn::StoreU(e, d, x + i);
    sum0 = hn::Add(sum0, e);
  }
  if (i < n) {
    const auto e = hn::Exp(d, hn::Sub(LoadTail(d, x + i, n - i, kNegInf), vm));  // pad -> 0
    StoreTail(d, e, x + i, n - i);
    sum1 = hn::Add(sum1, e);
  }
  const auto inv = hn::Set(d, 1.0f / hn::GetLane(hn::SumOfLanes(d, hn::Add(sum0, sum1))));
  for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), inv), d, x + i);
  if (i < n) StoreTail(d, hn::Mul(LoadTail(d, x + i, n - i, 0.0f), inv), x + i, n - i);
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#endif  // OKO_OPS_SOFTMAX_INL_H_
