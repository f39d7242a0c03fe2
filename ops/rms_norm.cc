#include "ops/rms_norm.h"

#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/rms_norm.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include "ops/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {

void RmsNormRowsT(const RmsNormArgs& a) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  for (size_t r = 0; r < a.rows; ++r) {
    const float* x = a.x + r * a.x_stride;
    float* y = a.y + r * a.y_stride;
    const float mean_sq = a.cols == 0 ? 0.0f : DotF32(d, x, x, a.cols) / static_cast<float>(a.cols);
    const auto scale = hn::Set(d, 1.0f / std::sqrt(mean_sq + a.eps));
    size_t i = 0;
    for (; i + N <= a.cols; i += N)
      hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), scale), hn::LoadU(d, a.w + i)), d, y + i);
    if (i < a.cols) {
      const size_t n = a.cols - i;
      const auto v = hn::Mul(hn::Mul(LoadTail(d, x + i, n, 0.0f), scale), LoadTail(d, a.w + i, n, 0.0f));
      StoreTail(d, v, y + i, n);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {
HWY_EXPORT(RmsNormRowsT);
void RmsNormRows(const RmsNormArgs& a) { HWY_DYNAMIC_DISPATCH(RmsNormRowsT)(a); }
}  // namespace oko
#endif
