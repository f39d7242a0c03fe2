#include "ops/gemm_bf16_rows.h"

#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "common/check.h"

namespace oko {

#define OKO_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

namespace {

constexpr size_t kStep = 32;  // bf16 values per zmm: one 64-byte line of a weight row
// Each weight stream is prefetched this far ahead into L2, one line per step: with the
// multiply-adds of M rows between its loads, the core holds too few misses in flight for
// the hardware prefetcher alone. `oko bench -m /tmp/q06 -t 2 -p 0 -n 32 --parallel N`
// (Qwen3-0.6B shape, Zen 4), tok/s, x4 / x8: no prefetch 102-121 / 152; L1 (T0) 1 KiB
// ahead 92 / 160; L2 (T1) 1 KiB 102-124 / 157-162, 2 KiB 100-130 / 187-210, 4 KiB
// 102-108 / 180-185. matmul_bench, 1 thread, M = 4 from DRAM: 16 GB/s with T0 1 KiB, 19.5
// without, 21.5 with T1 2 KiB (the one-row GEMV: 29). One row (M = 1, a light loop) runs
// without it: tg32 1 thread 22.3-24.5 tok/s, with it 18.9-20.7 (the f32 GEMV of matmul.h
// 21.7-22.7; 6 streams 18.1-20.7, 8 streams 16.9-17.5).
constexpr size_t kPrefetchBytes = 2048;

// GCC 12's _mm512_reduce_add_ps and extracts warn of an uninitialized variable in its
// own header: the halves and quarters are folded by shuffles instead.
OKO_AVX512_BF16 inline float SumOfLanes(__m512 v) {
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0x4E));  // + the other 256-bit half
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0xB1));  // + the other 128-bit quarter
  __m128 s4 = _mm512_maskz_extractf32x4_ps(0xF, v, 0);
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4)));
}

// 32 bf16 values at p, or the `live` ones of the tail of K (zeros past it).
OKO_AVX512_BF16 inline __m512bh LoadStep(const uint16_t* p, bool full, __mmask32 live) {
  return full ? (__m512bh)_mm512_loadu_si512(p) : (__m512bh)_mm512_maskz_loadu_epi16(live, p);
}

// Weight rows n, n + step, ... (kR of them) times the kM rows of xb; the tail of K in the
// same loop, by masked loads. The loops over r and m are
// unrolled so that the accumulators are registers: GCC (-O3) left them on the stack, a
// store per multiply-add (perf annotate), x8 111 -> 153 tok/s once unrolled.
template <size_t kM, size_t kR>
OKO_AVX512_BF16 void Block(const uint16_t* xb, size_t K, const uint16_t* w, const float* bias,
                           float* y, size_t y_stride, size_t n, size_t step) {
  const uint16_t* wr[kR];
#pragma GCC unroll 4
  for (size_t r = 0; r < kR; ++r) wr[r] = w + (n + r * step) * K;
  __m512 acc[kR][kM];
#pragma GCC unroll 4
  for (size_t r = 0; r < kR; ++r)
#pragma GCC unroll 11
    for (size_t m = 0; m < kM; ++m) acc[r][m] = _mm512_setzero_ps();
  for (size_t k = 0; k < K; k += kStep) {
    const uint64_t left = K - k;
    const bool full = left >= kStep;
    const __mmask32 live = _cvtu32_mask32(full ? ~0u : static_cast<uint32_t>((uint64_t{1} << left) - 1));
    __m512bh vw[kR];
#pragma GCC unroll 4
    for (size_t r = 0; r < kR; ++r) {
      if constexpr (kM > 1) _mm_prefetch(reinterpret_cast<const char*>(wr[r] + k) + kPrefetchBytes, _MM_HINT_T1);
      vw[r] = LoadStep(wr[r] + k, full, live);
    }
#pragma GCC unroll 11
    for (size_t m = 0; m < kM; ++m) {
      const __m512bh vx = LoadStep(xb + m * K + k, full, live);
#pragma GCC unroll 4
      for (size_t r = 0; r < kR; ++r) acc[r][m] = _mm512_dpbf16_ps(acc[r][m], vx, vw[r]);
    }
  }
#pragma GCC unroll 4
  for (size_t r = 0; r < kR; ++r) {
    const float b = bias != nullptr ? bias[n + r * step] : 0.0f;
#pragma GCC unroll 11
    for (size_t m = 0; m < kM; ++m) y[m * y_stride + n + r * step] = SumOfLanes(acc[r][m]) + b;
  }
}

// kR streams over [n_begin, n_end), the leftover rows one at a time. kR * kM accumulators
// plus kR weight vectors and an x vector stay within the 32 zmm registers.
template <size_t kM>
OKO_AVX512_BF16 void Rows(const uint16_t* xb, size_t K, const uint16_t* w, const float* bias,
                          float* y, size_t y_stride, size_t n_begin, size_t n_end) {
  // 6 streams (as the GEMV) ran x4 at 77-79 tok/s where 4 ran 100-130.
  constexpr size_t kR = kM <= 6 ? 4 : kM <= 8 ? 3 : 2;
  const size_t part = (n_end - n_begin) / kR;
  for (size_t n = n_begin; n < n_begin + part; ++n) Block<kM, kR>(xb, K, w, bias, y, y_stride, n, part);
  for (size_t n = n_begin + kR * part; n < n_end; ++n) Block<kM, 1>(xb, K, w, bias, y, y_stride, n, 0);
}

template <size_t... kMs>
void Dispatch(std::index_sequence<kMs...>, size_t M, const uint16_t* xb, size_t K, const uint16_t* w,
              const float* bias, float* y, size_t y_stride, size_t n_begin, size_t n_end) {
  using Fn = void (*)(const uint16_t*, size_t, const uint16_t*, const float*, float*, size_t, size_t, size_t);
  static constexpr Fn kByM[] = {&Rows<kMs + 1>...};
  kByM[M - 1](xb, K, w, bias, y, y_stride, n_begin, n_end);
}

OKO_AVX512_BF16 void RoundRow(const float* x, size_t K, uint16_t* xb) {
  size_t k = 0;
  for (; k + 32 <= K; k += 32)
    _mm512_storeu_si512(xb + k, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k)));
  for (; k < K; k += 16) {
    const __mmask16 live = _cvtu32_mask16((1u << std::min<size_t>(16, K - k)) - 1);
    _mm256_mask_storeu_epi16(xb + k, live, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(live, x + k)));
  }
}

}  // namespace

bool Bf16RowsSupported() { return __builtin_cpu_supports("avx512bf16"); }

void RoundRowsToBf16(const float* x, size_t x_stride, size_t M, size_t K, uint16_t* xb) {
  OKO_CHECK(Bf16RowsSupported() && K % 2 == 0, "bf16 rows: K={} (needs AVX512-BF16, K even)", K);
  for (size_t m = 0; m < M; ++m) RoundRow(x + m * x_stride, K, xb + m * K);
}

void GemmBf16Rows(const uint16_t* xb, size_t M, size_t K, const uint16_t* w, const float* bias,
                  float* y, size_t y_stride, size_t n_begin, size_t n_end) {
  OKO_CHECK(M >= 1 && M <= kBf16RowsMaxM && K % 2 == 0 && Bf16RowsSupported(),
            "bf16 rows: M={} K={}", M, K);
  Dispatch(std::make_index_sequence<kBf16RowsMaxM>(), M, xb, K, w, bias, y, y_stride, n_begin, n_end);
}

}  // namespace oko
