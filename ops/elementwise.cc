#include "ops/elementwise.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include <hwy/contrib/math/math-inl.h>

#include "ops/simd-inl.h"
#include "ops/softmax-inl.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {

void AddInplaceT(float* HWY_RESTRICT y, const float* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    const auto v = hn::Add(LoadTail(d, y + i, n - i, 0.0f), LoadTail(d, x + i, n - i, 0.0f));
    StoreTail(d, v, y + i, n - i);
  }
}

void AddScaledInplaceT(float* HWY_RESTRICT y, const float* HWY_RESTRICT x, float a, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto va = hn::Set(d, a);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  if (i < n) {
    const auto v = hn::MulAdd(va, LoadTail(d, x + i, n - i, 0.0f), LoadTail(d, y + i, n - i, 0.0f));
    StoreTail(d, v, y + i, n - i);
  }
}

// silu(g) * u with sigmoid from e = exp(-|g|) (always in range, never overflows):
// sigmoid(g) = 1/(1+e) for g >= 0, e/(1+e) otherwise.
template <class D, class V>
HWY_INLINE V SiluMulVec(D d, V g, V u) {
  const auto e = hn::Exp(d, hn::Neg(hn::Abs(g)));
  const auto r = hn::Div(hn::Set(d, 1.0f), hn::Add(hn::Set(d, 1.0f), e));
  const auto sig = hn::IfThenElse(hn::Lt(g, hn::Zero(d)), hn::Mul(e, r), r);
  return hn::Mul(hn::Mul(g, sig), u);
}

// gate, up and out may alias (elementwise, each lane read before it is written).
void SiluMulT(const float* gate, const float* up, float* out, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(SiluMulVec(d, hn::LoadU(d, gate + i), hn::LoadU(d, up + i)), d, out + i);
  if (i < n) {
    const auto v = SiluMulVec(d, LoadTail(d, gate + i, n - i, 0.0f), LoadTail(d, up + i, n - i, 0.0f));
    StoreTail(d, v, out + i, n - i);
  }
}

void SoftmaxInplaceT(float* x, size_t n) { SoftmaxRow(hn::ScalableTag<float>(), x, n); }

template <typename T>
void WidenRow(const T* HWY_RESTRICT src, float* HWY_RESTRICT dst, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadF32(d, src + i), d, dst + i);
  for (; i < n; ++i) dst[i] = ToF32(src[i]);
}

void Bf16ToF32RowT(const uint16_t* src, float* dst, size_t n) {
  WidenRow(reinterpret_cast<const hwy::bfloat16_t*>(src), dst, n);
}
void F16ToF32RowT(const uint16_t* src, float* dst, size_t n) {
  WidenRow(reinterpret_cast<const hwy::float16_t*>(src), dst, n);
}

void F32ToBf16RowT(const float* HWY_RESTRICT src, uint16_t* HWY_RESTRICT dst, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const hn::RebindToSigned<decltype(d)> di;
  const hn::Rebind<hwy::bfloat16_t, decltype(d)> dbf;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto u = hn::BitCast(du, hn::LoadU(d, src + i));
    // Round the f32 bits to nearest even at bit 16 so the truncating DemoteTo is exact.
    const auto odd = hn::And(hn::ShiftRight<16>(u), hn::Set(du, 1u));
    const auto rounded = hn::And(hn::Add(u, hn::Add(hn::Set(du, 0x7fffu), odd)), hn::Set(du, 0xffff0000u));
    const auto abs_bits = hn::BitCast(di, hn::And(u, hn::Set(du, 0x7fffffffu)));
    const auto is_nan = hn::RebindMask(du, hn::Gt(abs_bits, hn::Set(di, 0x7f800000)));
    const auto bits = hn::IfThenElse(is_nan, hn::Or(u, hn::Set(du, 0x400000u)), rounded);
    hn::StoreU(hn::DemoteTo(dbf, hn::BitCast(d, bits)), dbf,
               reinterpret_cast<hwy::bfloat16_t*>(dst + i));
  }
  for (; i < n; ++i) dst[i] = F32ToBf16(src[i]);
}

void F32ToF16RowT(const float* HWY_RESTRICT src, uint16_t* HWY_RESTRICT dst, size_t n) {
  size_t i = 0;
  if constexpr (kNativeF16) {  // vcvtps2ph, immediate rounding mode 0 = nearest even
    const hn::ScalableTag<float> d;
    const hn::Rebind<hwy::float16_t, decltype(d)> dh;
    const size_t N = hn::Lanes(d);
    for (; i + N <= n; i += N)
      hn::StoreU(hn::DemoteTo(dh, hn::LoadU(d, src + i)), dh,
                 reinterpret_cast<hwy::float16_t*>(dst + i));
  }
  for (; i < n; ++i) dst[i] = F32ToF16(src[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {
HWY_EXPORT(AddInplaceT);
HWY_EXPORT(AddScaledInplaceT);
HWY_EXPORT(SiluMulT);
HWY_EXPORT(SoftmaxInplaceT);
HWY_EXPORT(Bf16ToF32RowT);
HWY_EXPORT(F16ToF32RowT);
HWY_EXPORT(F32ToBf16RowT);
HWY_EXPORT(F32ToF16RowT);

void AddInplace(float* y, const float* x, size_t n) { HWY_DYNAMIC_DISPATCH(AddInplaceT)(y, x, n); }
void AddScaledInplace(float* y, const float* x, float a, size_t n) {
  HWY_DYNAMIC_DISPATCH(AddScaledInplaceT)(y, x, a, n);
}
void SiluMul(const float* gate, const float* up, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMulT)(gate, up, out, n);
}
void SoftmaxInplace(float* x, size_t n) { HWY_DYNAMIC_DISPATCH(SoftmaxInplaceT)(x, n); }
void Bf16ToF32Row(const uint16_t* src, float* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(Bf16ToF32RowT)(src, dst, n);
}
void F16ToF32Row(const uint16_t* src, float* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(F16ToF32RowT)(src, dst, n);
}
void F32ToBf16Row(const float* src, uint16_t* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(F32ToBf16RowT)(src, dst, n);
}
void F32ToF16Row(const float* src, uint16_t* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(F32ToF16RowT)(src, dst, n);
}
}  // namespace oko
#endif
