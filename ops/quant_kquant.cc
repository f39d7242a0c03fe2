// The scale/min search of the Q4_K/Q5_K reference quantizer (MakeQkx2 in quant_formats.cc)
// for the 8 sub-blocks of a super-block at once, one sub-block per SIMD lane. Every lane
// performs exactly the scalar code's IEEE operations in the same order (no FMA: compiled
// with -ffp-contract=off, Highway Mul/Add/Div only), so the bytes do not change; only the
// 8 independent searches run side by side (about 8x fewer instructions on AVX2).
#include "ops/quant_kquant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/quant_kquant.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void KQuantSearchT(int nmax, float rmin, float rdelta, int nstep, const float* HWY_RESTRICT x,
                   const float* HWY_RESTRICT w, float* HWY_RESTRICT scales,
                   float* HWY_RESTRICT neg_mins, uint8_t* HWY_RESTRICT L) {
  const hn::CappedTag<float, 8> d;
  const hn::RebindToSigned<decltype(d)> di;
  using V = hn::Vec<decltype(d)>;
  using VI = hn::Vec<decltype(di)>;
  const size_t N = hn::Lanes(d);
  // Transposed: xt[i * 8 + j] = value i of sub-block j.
  HWY_ALIGN float xt[32 * 8], wt[32 * 8];
  for (int j = 0; j < 8; ++j)
    for (int i = 0; i < 32; ++i) {
      xt[i * 8 + j] = x[32 * j + i];
      wt[i * 8 + j] = w[32 * j + i];
    }
  const V zero = hn::Zero(d), vmax_l = hn::Set(d, static_cast<float>(nmax));
  const VI izero = hn::Zero(di), inmax = hn::Set(di, nmax);
  const V magic = hn::Set(d, 12582912.f);
  auto nearest = [&](V f) {  // NearestInt: (bits(f + 1.5*2^23) & 0x7fffff) - 0x400000
    const VI bits = hn::BitCast(di, hn::Add(f, magic));
    return hn::Sub(hn::And(bits, hn::Set(di, 0x007fffff)), hn::Set(di, 0x00400000));
  };
  auto clamp = [&](VI l) { return hn::Min(hn::Max(l, izero), inmax); };
  for (size_t j0 = 0; j0 < 8; j0 += N) {
    V mn = hn::LoadU(d, xt + j0), mx = mn;
    V sum_w = hn::LoadU(d, wt + j0);
    V sum_x = hn::Mul(sum_w, mn);
    for (int i = 1; i < 32; ++i) {
      const V xi = hn::LoadU(d, xt + i * 8 + j0), wi = hn::LoadU(d, wt + i * 8 + j0);
      mn = hn::IfThenElse(hn::Lt(xi, mn), xi, mn);
      mx = hn::IfThenElse(hn::Gt(xi, mx), xi, mx);
      sum_w = hn::Add(sum_w, wi);
      sum_x = hn::Add(sum_x, hn::Mul(wi, xi));
    }
    mn = hn::IfThenElse(hn::Gt(mn, zero), zero, mn);
    const V mn0 = mn;
    const auto flat = hn::Eq(mx, mn);
    const V range = hn::Sub(mx, mn);
    V iscale = hn::Div(vmax_l, range);
    V scale = hn::Div(hn::Set(d, 1.0f), iscale);
    VI Lv[32], La[32];
    V best = zero;
    for (int i = 0; i < 32; ++i) {
      const V xi = hn::LoadU(d, xt + i * 8 + j0), wi = hn::LoadU(d, wt + i * 8 + j0);
      Lv[i] = clamp(nearest(hn::Mul(iscale, hn::Sub(xi, mn))));
      const V diff = hn::Sub(hn::Add(hn::Mul(scale, hn::ConvertTo(d, Lv[i])), mn), xi);
      best = hn::Add(best, hn::Mul(wi, hn::Mul(diff, diff)));
    }
    for (int is = 0; is <= nstep; ++is) {
      const float num = rmin + rdelta * is + nmax;
      iscale = hn::Div(hn::Set(d, num), hn::Sub(mx, mn));  // min moves with each better fit
      V sum_l = zero, sum_l2 = zero, sum_xl = zero;
      for (int i = 0; i < 32; ++i) {
        const V xi = hn::LoadU(d, xt + i * 8 + j0), wi = hn::LoadU(d, wt + i * 8 + j0);
        La[i] = clamp(nearest(hn::Mul(iscale, hn::Sub(xi, mn))));
        const V l = hn::ConvertTo(d, La[i]);
        const V wl = hn::Mul(wi, l);
        sum_l = hn::Add(sum_l, wl);
        sum_l2 = hn::Add(sum_l2, hn::Mul(wl, l));
        sum_xl = hn::Add(sum_xl, hn::Mul(wl, xi));
      }
      const V D = hn::Sub(hn::Mul(sum_w, sum_l2), hn::Mul(sum_l, sum_l));
      V this_scale = hn::Div(hn::Sub(hn::Mul(sum_w, sum_xl), hn::Mul(sum_x, sum_l)), D);
      V this_min = hn::Div(hn::Sub(hn::Mul(sum_l2, sum_x), hn::Mul(sum_l, sum_xl)), D);
      const auto pos = hn::Gt(this_min, zero);
      this_scale = hn::IfThenElse(pos, hn::Div(sum_xl, sum_l2), this_scale);
      this_min = hn::IfThenElse(pos, zero, this_min);
      V cur = zero;
      for (int i = 0; i < 32; ++i) {
        const V xi = hn::LoadU(d, xt + i * 8 + j0), wi = hn::LoadU(d, wt + i * 8 + j0);
        const V diff =
            hn::Sub(hn::Add(hn::Mul(this_scale, hn::ConvertTo(d, La[i])), this_min), xi);
        cur = hn::Add(cur, hn::Mul(wi, hn::Mul(diff, diff)));
      }
      const auto take = hn::And(hn::Gt(D, zero), hn::Lt(cur, best));
      for (int i = 0; i < 32; ++i) Lv[i] = hn::IfThenElse(hn::RebindMask(di, take), La[i], Lv[i]);
      best = hn::IfThenElse(take, cur, best);
      scale = hn::IfThenElse(take, this_scale, scale);
      mn = hn::IfThenElse(take, this_min, mn);
    }
    // A flat sub-block: all levels 0, scale 0, min as found.
    scale = hn::IfThenElse(flat, zero, scale);
    const auto flat_i = hn::RebindMask(di, flat);
    HWY_ALIGN int32_t lbuf[8];
    for (int i = 0; i < 32; ++i) {
      hn::Store(hn::IfThenElse(flat_i, izero, Lv[i]), di, lbuf);
      for (size_t j = 0; j < N; ++j) L[32 * (j0 + j) + i] = static_cast<uint8_t>(lbuf[j]);
    }
    hn::StoreU(scale, d, scales + j0);
    // -min as the scalar code: exact, and -0.0 for a min of +0.0 (Neg may compute 0 - x).
    hn::StoreU(hn::Mul(hn::Set(d, -1.0f), hn::IfThenElse(flat, mn0, mn)), d, neg_mins + j0);
  }
}

// Q6_K: make_qx_quants(16, 32, x, L, rmse_type 1) for the 16 sub-blocks of 16, one per
// lane, as MakeQx in quant_formats.cc.
void Q6KSearchT(const float* HWY_RESTRICT x, float* HWY_RESTRICT scales, int8_t* HWY_RESTRICT L) {
  constexpr int kNmax = 32;
  const hn::CappedTag<float, 16> d;
  const hn::RebindToSigned<decltype(d)> di;
  using V = hn::Vec<decltype(d)>;
  using VI = hn::Vec<decltype(di)>;
  const size_t N = hn::Lanes(d);
  HWY_ALIGN float xt[16 * 16];
  for (int j = 0; j < 16; ++j)
    for (int i = 0; i < 16; ++i) xt[i * 16 + j] = x[16 * j + i];
  const V zero = hn::Zero(d), magic = hn::Set(d, 12582912.f);
  const VI lo = hn::Set(di, -kNmax), hi = hn::Set(di, kNmax - 1);
  auto level = [&](V f) {  // clamp(NearestInt(f), -nmax, nmax - 1)
    const VI bits = hn::BitCast(di, hn::Add(f, magic));
    const VI l = hn::Sub(hn::And(bits, hn::Set(di, 0x007fffff)), hn::Set(di, 0x00400000));
    return hn::Min(hn::Max(l, lo), hi);
  };
  for (size_t j0 = 0; j0 < 16; j0 += N) {
    V amax = zero, mx = zero;
    for (int i = 0; i < 16; ++i) {
      const V xi = hn::LoadU(d, xt + i * 16 + j0);
      const V ax = hn::Abs(xi);
      const auto gt = hn::Gt(ax, amax);
      amax = hn::IfThenElse(gt, ax, amax);
      mx = hn::IfThenElse(gt, xi, mx);
    }
    const auto tiny = hn::Lt(amax, hn::Set(d, 1e-15f));
    VI Lv[16];
    V sumlx = zero, suml2 = zero;
    {
      const V iscale = hn::Div(hn::Set(d, static_cast<float>(-kNmax)), mx);
      for (int i = 0; i < 16; ++i) {
        const V xi = hn::LoadU(d, xt + i * 16 + j0);
        Lv[i] = level(hn::Mul(iscale, xi));
        const V l = hn::ConvertTo(d, Lv[i]), w = hn::Mul(xi, xi);
        sumlx = hn::Add(sumlx, hn::Mul(hn::Mul(w, xi), l));
        suml2 = hn::Add(suml2, hn::Mul(hn::Mul(w, l), l));
      }
    }
    V scale = hn::IfThenElse(hn::Ne(suml2, zero), hn::Div(sumlx, suml2), zero);
    V best = hn::Mul(scale, sumlx);
    for (int is = -9; is <= 9; ++is) {
      if (is == 0) continue;
      const V iscale = hn::Div(hn::Set(d, -(kNmax + 0.1f * is)), mx);
      VI La[16];
      V slx = zero, sl2 = zero;
      for (int i = 0; i < 16; ++i) {
        const V xi = hn::LoadU(d, xt + i * 16 + j0);
        La[i] = level(hn::Mul(iscale, xi));
        const V l = hn::ConvertTo(d, La[i]), w = hn::Mul(xi, xi);
        slx = hn::Add(slx, hn::Mul(hn::Mul(w, xi), l));
        sl2 = hn::Add(sl2, hn::Mul(hn::Mul(w, l), l));
      }
      const auto take = hn::And(hn::Gt(sl2, zero), hn::Gt(hn::Mul(slx, slx), hn::Mul(best, sl2)));
      const auto take_i = hn::RebindMask(di, take);
      for (int i = 0; i < 16; ++i) Lv[i] = hn::IfThenElse(take_i, La[i], Lv[i]);
      scale = hn::IfThenElse(take, hn::Div(slx, sl2), scale);
      best = hn::IfThenElse(take, hn::Mul(scale, slx), best);
    }
    // Sub-blocks of (near) zeros: scale 0, levels 0 (not nmax).
    scale = hn::IfThenElse(tiny, zero, scale);
    const auto tiny_i = hn::RebindMask(di, tiny);
    const VI nmax = hn::Set(di, kNmax);
    HWY_ALIGN int32_t lbuf[16];
    for (int i = 0; i < 16; ++i) {
      hn::Store(hn::IfThenElse(tiny_i, hn::Zero(di), hn::Add(Lv[i], nmax)), di, lbuf);
      for (size_t j = 0; j < N; ++j) L[16 * (j0 + j) + i] = static_cast<int8_t>(lbuf[j]);
    }
    hn::StoreU(scale, d, scales + j0);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {
HWY_EXPORT(KQuantSearchT);
HWY_EXPORT(Q6KSearchT);
void Q6KSearch(const float* x, float* scales, int8_t* L) {
  HWY_DYNAMIC_DISPATCH(Q6KSearchT)(x, scales, L);
}
void KQuantSearch(int nmax, float rmin, float rdelta, int nstep, const float* x, const float* w,
                  float* scales, float* neg_mins, uint8_t* L) {
  HWY_DYNAMIC_DISPATCH(KQuantSearchT)(nmax, rmin, rdelta, nstep, x, w, scales, neg_mins, L);
}
}  // namespace oko
#endif
