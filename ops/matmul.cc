#include "ops/matmul.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include "common/check.h"
#include "ops/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {

// Register tile: kR weight rows x kM activation rows, one f32 accumulator vector each.
// Every weight vector is widened once and used for kM rows of x; every x vector is
// loaded once and used for kR weight rows. Writes y[m0 + m, n0 + r] (+ bias).
template <size_t kR, size_t kM, typename TW>
HWY_INLINE void MatMulTile(const MatMulArgs& a, const TW* HWY_RESTRICT w, size_t n0, size_t m0) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t K = a.K;
  const TW* HWY_RESTRICT wr[kR];
  for (size_t r = 0; r < kR; ++r) wr[r] = w + (n0 + r) * K;
  const float* HWY_RESTRICT xm[kM];
  for (size_t m = 0; m < kM; ++m) xm[m] = a.x + (m0 + m) * a.x_stride;

  hn::Vec<decltype(df)> acc[kR][kM];
  for (size_t r = 0; r < kR; ++r)
    for (size_t m = 0; m < kM; ++m) acc[r][m] = hn::Zero(df);

  size_t k = 0;
  for (; k + N <= K; k += N) {
    hn::Vec<decltype(df)> vx[kM];
    for (size_t m = 0; m < kM; ++m) vx[m] = hn::LoadU(df, xm[m] + k);
    for (size_t r = 0; r < kR; ++r) {
      const auto vw = LoadF32(df, wr[r] + k);
      for (size_t m = 0; m < kM; ++m) acc[r][m] = hn::MulAdd(vw, vx[m], acc[r][m]);
    }
  }
  if (k < K) {
    hn::Vec<decltype(df)> vx[kM];
    for (size_t m = 0; m < kM; ++m) vx[m] = LoadTailF32(df, xm[m] + k, K - k);
    for (size_t r = 0; r < kR; ++r) {
      const auto vw = LoadTailF32(df, wr[r] + k, K - k);
      for (size_t m = 0; m < kM; ++m) acc[r][m] = hn::MulAdd(vw, vx[m], acc[r][m]);
    }
  }
  for (size_t m = 0; m < kM; ++m) {
    float* HWY_RESTRICT y = a.y + (m0 + m) * a.y_stride + n0;
    for (size_t r = 0; r < kR; ++r) {
      const float bias = a.bias != nullptr ? a.bias[n0 + r] : 0.0f;
      y[r] = hn::GetLane(hn::SumOfLanes(df, acc[r][m])) + bias;
    }
  }
}

// M = 1: 8 weight rows at a time (8 independent FMA chains, 8 sequential streams),
// then 4, then single rows.
template <typename TW>
void GemvTyped(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  const TW* w = static_cast<const TW*>(a.w);
  size_t n = n_begin;
  for (; n + 8 <= n_end; n += 8) MatMulTile<8, 1>(a, w, n, 0);
  for (; n + 4 <= n_end; n += 4) MatMulTile<4, 1>(a, w, n, 0);
  for (; n < n_end; ++n) MatMulTile<1, 1>(a, w, n, 0);
}

// Activation rows per tile: 4 x 4 accumulators fit the 32 zmm registers; 4 x 2 fit 16.
constexpr size_t kGemmM = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 ? 4 : 2;

template <size_t kR, typename TW>
HWY_INLINE void GemmColumn(const MatMulArgs& a, const TW* w, size_t n0) {
  size_t m = 0;
  for (; m + kGemmM <= a.M; m += kGemmM) MatMulTile<kR, kGemmM>(a, w, n0, m);
  switch (a.M - m) {
    case 3: MatMulTile<kR, 3>(a, w, n0, m); break;
    case 2: MatMulTile<kR, 2>(a, w, n0, m); break;
    case 1: MatMulTile<kR, 1>(a, w, n0, m); break;
    default: break;
  }
}

// M > 1: each block of 4 weight rows is streamed from memory once and then reused from
// L1/L2 for every tile of activation rows.
template <typename TW>
void GemmTyped(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  if (a.M == 1) return GemvTyped<TW>(a, n_begin, n_end);
  const TW* w = static_cast<const TW*>(a.w);
  size_t n = n_begin;
  for (; n + 4 <= n_end; n += 4) GemmColumn<4>(a, w, n);
  for (; n < n_end; ++n) GemmColumn<1>(a, w, n);
}

void GemvRowsT(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  switch (a.w_dtype) {
    case DType::kF32: return GemvTyped<float>(a, n_begin, n_end);
    case DType::kBF16: return GemvTyped<hwy::bfloat16_t>(a, n_begin, n_end);
    default: return GemvTyped<hwy::float16_t>(a, n_begin, n_end);
  }
}

void GemmRowsT(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  switch (a.w_dtype) {
    case DType::kF32: return GemmTyped<float>(a, n_begin, n_end);
    case DType::kBF16: return GemmTyped<hwy::bfloat16_t>(a, n_begin, n_end);
    default: return GemmTyped<hwy::float16_t>(a, n_begin, n_end);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {
namespace {
void CheckArgs(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  OKO_CHECK(a.w_dtype == DType::kF32 || a.w_dtype == DType::kBF16 || a.w_dtype == DType::kF16,
            "weight dtype {} not supported (F32, BF16, F16)", DTypeName(a.w_dtype));
  OKO_CHECK(n_begin <= n_end && n_end <= a.N, "rows [{}, {}) outside N={}", n_begin, n_end, a.N);
  OKO_CHECK(a.M <= 1 || a.x_stride >= a.K, "x_stride={} < K={}", a.x_stride, a.K);
  OKO_CHECK(a.M <= 1 || a.y_stride >= a.N, "y_stride={} < N={}", a.y_stride, a.N);
}
}  // namespace

HWY_EXPORT(GemvRowsT);
HWY_EXPORT(GemmRowsT);

void GemvRows(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  CheckArgs(a, n_begin, n_end);
  OKO_CHECK(a.M == 1, "GemvRows needs M == 1, got M={} (use GemmRows)", a.M);
  HWY_DYNAMIC_DISPATCH(GemvRowsT)(a, n_begin, n_end);
}

void GemmRows(const MatMulArgs& a, size_t n_begin, size_t n_end) {
  CheckArgs(a, n_begin, n_end);
  HWY_DYNAMIC_DISPATCH(GemmRowsT)(a, n_begin, n_end);
}
}  // namespace oko
#endif
