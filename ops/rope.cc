#include "ops/rope.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/rope.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include "common/check.h"
#include "ops/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {

void RopeNeoxInplaceT(const RopeArgs& a) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t half = a.head_dim / 2;
  for (size_t r = 0; r < a.rows; ++r) {
    const float* HWY_RESTRICT cos = a.cos + r * half;
    const float* HWY_RESTRICT sin = a.sin + r * half;
    for (size_t h = 0; h < a.heads; ++h) {
      float* HWY_RESTRICT lo = a.x + r * a.x_stride + h * a.head_dim;
      float* HWY_RESTRICT hi = lo + half;
      size_t i = 0;
      for (; i + N <= half; i += N) {
        const auto va = hn::LoadU(d, lo + i), vb = hn::LoadU(d, hi + i);
        const auto c = hn::LoadU(d, cos + i), s = hn::LoadU(d, sin + i);
        hn::StoreU(hn::NegMulAdd(vb, s, hn::Mul(va, c)), d, lo + i);  // a*c - b*s
        hn::StoreU(hn::MulAdd(va, s, hn::Mul(vb, c)), d, hi + i);     // b*c + a*s
      }
      if (i < half) {
        const size_t n = half - i;
        const auto va = LoadTail(d, lo + i, n, 0.0f), vb = LoadTail(d, hi + i, n, 0.0f);
        const auto c = LoadTail(d, cos + i, n, 0.0f), s = LoadTail(d, sin + i, n, 0.0f);
        StoreTail(d, hn::NegMulAdd(vb, s, hn::Mul(va, c)), lo + i, n);
        StoreTail(d, hn::MulAdd(va, s, hn::Mul(vb, c)), hi + i, n);
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {
HWY_EXPORT(RopeNeoxInplaceT);
void RopeNeoxInplace(const RopeArgs& a) {
  OKO_CHECK(a.head_dim % 2 == 0, "head_dim={} must be even", a.head_dim);
  OKO_CHECK(a.rows <= 1 || a.x_stride >= a.heads * a.head_dim, "x_stride={} < heads*head_dim={}",
            a.x_stride, a.heads * a.head_dim);
  HWY_DYNAMIC_DISPATCH(RopeNeoxInplaceT)(a);
}
}  // namespace oko
#endif
