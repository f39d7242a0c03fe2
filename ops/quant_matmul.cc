#include "ops/quant_matmul.h"

#include <cpuid.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/quant_matmul.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "common/check.h"

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Values dequantized at a time: one super-block, or 8 blocks of 32.
constexpr size_t kChunk = 256;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using DU8 = hn::Rebind<uint8_t, DI>;  // as many u8 lanes as f32 lanes (N <= 16)
using DI8 = hn::Rebind<int8_t, DI>;

// Bit j of a 32-bit word, for Q5_0/Q5_1's high bits (Highway 1.0.3 has variable shifts on
// some targets only).
alignas(64) static constexpr int32_t kBit[32] = {
    1 << 0,  1 << 1,  1 << 2,  1 << 3,  1 << 4,  1 << 5,  1 << 6,  1 << 7,
    1 << 8,  1 << 9,  1 << 10, 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15,
    1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22, 1 << 23,
    1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28, 1 << 29, 1 << 30, INT32_MIN};

HWY_INLINE hn::Vec<DI> LoadBytes(const uint8_t* p) { return hn::PromoteTo(DI(), hn::LoadU(DU8(), p)); }

// Values [v0, v0 + len) of one weight row into out (aligned), rounding exactly as
// DequantizeRow: one multiply (x = q*d), or a multiply then an add (x = q*d + m), never an
// FMA. v0 and len are multiples of the block.
template <QuantType T>
HWY_INLINE void DequantChunk(const uint8_t* HWY_RESTRICT row, size_t v0, size_t len,
                             float* HWY_RESTRICT out) {
  const DF df;
  const DI di;
  const size_t N = hn::Lanes(df);
  const auto k15 = hn::Set(di, 15);
  if constexpr (T == QuantType::kQ8_0) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + v0 / 32;
    for (size_t i = 0; i < len / 32; ++i, out += 32) {
      const auto d = hn::Set(df, F16ToF32(b[i].d));
      for (size_t j = 0; j < 32; j += N) {
        const auto q = hn::PromoteTo(di, hn::LoadU(DI8(), b[i].qs + j));
        hn::Store(hn::Mul(hn::ConvertTo(df, q), d), df, out + j);
      }
    }
  } else if constexpr (T == QuantType::kQ4_0 || T == QuantType::kQ4_1) {
    using B = std::conditional_t<T == QuantType::kQ4_0, BlockQ4_0, BlockQ4_1>;
    const B* b = reinterpret_cast<const B*>(row) + v0 / 32;
    for (size_t i = 0; i < len / 32; ++i, out += 32) {
      const auto d = hn::Set(df, F16ToF32(b[i].d));
      for (size_t j = 0; j < 16; j += N) {
        const auto v = LoadBytes(b[i].qs + j);
        auto lo = hn::And(v, k15), hi = hn::ShiftRight<4>(v);
        if constexpr (T == QuantType::kQ4_0) {
          lo = hn::Sub(lo, hn::Set(di, 8));
          hi = hn::Sub(hi, hn::Set(di, 8));
          hn::Store(hn::Mul(hn::ConvertTo(df, lo), d), df, out + j);
          hn::Store(hn::Mul(hn::ConvertTo(df, hi), d), df, out + 16 + j);
        } else {
          const auto m = hn::Set(df, F16ToF32(b[i].m));
          hn::Store(hn::Add(hn::Mul(hn::ConvertTo(df, lo), d), m), df, out + j);
          hn::Store(hn::Add(hn::Mul(hn::ConvertTo(df, hi), d), m), df, out + 16 + j);
        }
      }
    }
  } else if constexpr (T == QuantType::kQ5_0 || T == QuantType::kQ5_1) {
    using B = std::conditional_t<T == QuantType::kQ5_0, BlockQ5_0, BlockQ5_1>;
    const B* b = reinterpret_cast<const B*>(row) + v0 / 32;
    const auto k16 = hn::Set(di, 16);
    for (size_t i = 0; i < len / 32; ++i, out += 32) {
      const auto d = hn::Set(df, F16ToF32(b[i].d));
      uint32_t qh;
      std::memcpy(&qh, b[i].qh, 4);
      const auto vqh = hn::Set(di, static_cast<int32_t>(qh));
      for (size_t j = 0; j < 16; j += N) {
        const auto v = LoadBytes(b[i].qs + j);
        const auto h0 = hn::IfThenElseZero(
            hn::Ne(hn::And(vqh, hn::LoadU(di, kBit + j)), hn::Zero(di)), k16);
        const auto h1 = hn::IfThenElseZero(
            hn::Ne(hn::And(vqh, hn::LoadU(di, kBit + 16 + j)), hn::Zero(di)), k16);
        auto lo = hn::Or(hn::And(v, k15), h0), hi = hn::Or(hn::ShiftRight<4>(v), h1);
        if constexpr (T == QuantType::kQ5_0) {
          hn::Store(hn::Mul(hn::ConvertTo(df, hn::Sub(lo, k16)), d), df, out + j);
          hn::Store(hn::Mul(hn::ConvertTo(df, hn::Sub(hi, k16)), d), df, out + 16 + j);
        } else {
          const auto m = hn::Set(df, F16ToF32(b[i].m));
          hn::Store(hn::Add(hn::Mul(hn::ConvertTo(df, lo), d), m), df, out + j);
          hn::Store(hn::Add(hn::Mul(hn::ConvertTo(df, hi), d), m), df, out + 16 + j);
        }
      }
    }
  } else if constexpr (T == QuantType::kQ4_K || T == QuantType::kQ5_K) {
    using B = std::conditional_t<T == QuantType::kQ4_K, BlockQ4_K, BlockQ5_K>;
    const B& b = reinterpret_cast<const B*>(row)[v0 / 256];
    const float d = F16ToF32(b.d), dmin = F16ToF32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0; j < 8; j += 2, q += 32, out += 64) {
      uint8_t sc, mn;
      ScaleMinK4(j, b.scales, &sc, &mn);
      const auto d1 = hn::Set(df, d * sc), m1 = hn::Set(df, dmin * mn);
      ScaleMinK4(j + 1, b.scales, &sc, &mn);
      const auto d2 = hn::Set(df, d * sc), m2 = hn::Set(df, dmin * mn);
      for (size_t l = 0; l < 32; l += N) {
        const auto v = LoadBytes(q + l);
        auto lo = hn::And(v, k15), hi = hn::ShiftRight<4>(v);
        if constexpr (T == QuantType::kQ5_K) {
          const auto h = LoadBytes(b.qh + l);
          const auto k16 = hn::Set(di, 16);
          lo = hn::Or(lo, hn::IfThenElseZero(hn::Ne(hn::And(h, hn::Set(di, 1 << j)), hn::Zero(di)), k16));
          hi = hn::Or(hi, hn::IfThenElseZero(hn::Ne(hn::And(h, hn::Set(di, 2 << j)), hn::Zero(di)), k16));
        }
        hn::Store(hn::Sub(hn::Mul(d1, hn::ConvertTo(df, lo)), m1), df, out + l);
        hn::Store(hn::Sub(hn::Mul(d2, hn::ConvertTo(df, hi)), m2), df, out + 32 + l);
      }
    }
  } else if constexpr (T == QuantType::kQ6_K) {
    const BlockQ6_K& b = reinterpret_cast<const BlockQ6_K*>(row)[v0 / 256];
    const float d = F16ToF32(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    const auto k3 = hn::Set(di, 3), k32 = hn::Set(di, 32);
    for (int n = 0; n < 256; n += 128, out += 128, ql += 64, qh += 32, sc += 8) {
      for (size_t l = 0; l < 32; l += N) {
        const size_t is = l / 16;
        const auto a = LoadBytes(ql + l), c = LoadBytes(ql + l + 32), h = LoadBytes(qh + l);
        const auto q1 = hn::Sub(hn::Or(hn::And(a, k15), hn::ShiftLeft<4>(hn::And(h, k3))), k32);
        const auto q2 = hn::Sub(
            hn::Or(hn::And(c, k15), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), k3))), k32);
        const auto q3 = hn::Sub(
            hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), k3))), k32);
        const auto q4 = hn::Sub(hn::Or(hn::ShiftRight<4>(c), hn::ShiftLeft<4>(hn::ShiftRight<6>(h))), k32);
        hn::Store(hn::Mul(hn::Set(df, d * sc[is]), hn::ConvertTo(df, q1)), df, out + l);
        hn::Store(hn::Mul(hn::Set(df, d * sc[is + 2]), hn::ConvertTo(df, q2)), df, out + 32 + l);
        hn::Store(hn::Mul(hn::Set(df, d * sc[is + 4]), hn::ConvertTo(df, q3)), df, out + 64 + l);
        hn::Store(hn::Mul(hn::Set(df, d * sc[is + 6]), hn::ConvertTo(df, q4)), df, out + 96 + l);
      }
    }
  } else {
    // F32, BF16, F16: the scalar reference (Linear sends these to ops/matmul instead).
    const size_t esize = Info(T).block_bytes;
    DequantizeRow(T, row + v0 * esize, out, len);
  }
}

// One weight row streamed in chunks of 256 dequantized values, times one activation row;
// kU accumulators. Returns the dot product.
template <QuantType T>
HWY_INLINE float RowDot(const uint8_t* HWY_RESTRICT row, const float* HWY_RESTRICT x, size_t K) {
  const DF df;
  const size_t N = hn::Lanes(df);
  HWY_ALIGN float buf[kChunk];
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  for (size_t k0 = 0; k0 < K; k0 += kChunk) {
    const size_t len = std::min(kChunk, K - k0);
    DequantChunk<T>(row, k0, len, buf);
    const float* xk = x + k0;
    size_t j = 0;
    for (; j + 4 * N <= len; j += 4 * N) {
      a0 = hn::MulAdd(hn::Load(df, buf + j), hn::LoadU(df, xk + j), a0);
      a1 = hn::MulAdd(hn::Load(df, buf + j + N), hn::LoadU(df, xk + j + N), a1);
      a2 = hn::MulAdd(hn::Load(df, buf + j + 2 * N), hn::LoadU(df, xk + j + 2 * N), a2);
      a3 = hn::MulAdd(hn::Load(df, buf + j + 3 * N), hn::LoadU(df, xk + j + 3 * N), a3);
    }
    for (; j < len; j += N) a0 = hn::MulAdd(hn::Load(df, buf + j), hn::LoadU(df, xk + j), a0);
  }
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
}

#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL)
#define OKO_QUANT_INT8 1
// ---- int8 dot products (QuantCompute::kInt8), AVX2 intrinsics ----

// The int8 kernels leave each dot product in the 8 lanes of a vector; Hsum4 sums 4 of
// them at once (the lane sums of a, b, c, d), the same tree for each, so a row's result
// does not depend on its neighbours. One vector at a time, the reductions were a quarter
// of a Q4_K GEMV's time at K = 1024 (perf, Zen 4); 4 at once, the GEMV from cache went
// 64 -> 77 GFLOP/s, Q6_K 67 -> 78 (bench/ops quant_matmul_bench, 1 thread).
HWY_INLINE __m128 Hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// v with s added to its lane 0 (a term the kernel keeps as a scalar).
HWY_INLINE __m256 AddToLane0(__m256 v, float s) { return _mm256_add_ps(v, _mm256_zextps128_ps256(_mm_set_ss(s))); }

// The int8 kernels ask for the weight bytes QuantPrefetchBytes(kM) ahead of each block
// (past a row's end: the next row): the hardware prefetcher alone left one row's stream
// short of the memory's speed. bench/ops quant_matmul_bench, Zen 2, 1 thread, DRAM-cold
// GEMV, GB/s, none -> 512 -> 1024 -> 2048 bytes ahead, alternated: Q8_0 9.8-10.0 ->
// 12.9-13.4 -> 13.0-13.6 -> 13.2-13.6, Q4_K 8.7-9.2 -> 10.1-11.6 -> 10.4-11.6 ->
// 10.3-11.5, Q6_K 8.8-9.0 -> 12.1-12.9 -> 12.5-13.0 -> 12.4-13.2.
// On the 512-bit targets the one-row kernels (decode's GEMV streams) go through a block
// in half the time and want the lines closer: Zen 4, 1 thread, DRAM-cold GEMV, GB/s,
// median of 3-6 rounds each beside a bf16 GEMV reading 27.7-29.0, 1024 -> 256 bytes
// ahead: K=1024 N=3072 Q4_K 19.9 -> 24.2, Q6_K 21.6 -> 25.1, Q8_0 21.8 -> 26.2; K=3072
// N=1024 Q4_K 20.7 -> 25.7, Q6_K 22.5 -> 26.3, Q8_0 20.7 -> 26.7; N=151936 (lm_head) Q6_K
// 24.5 -> 28.0 (none: 23.6, 25.1, 26.6 at K=1024; 128 to 384 within 5% of 256; 2048 and
// 4096 below 1024). The batched kernels (4 and 8 rows) stay at 1024: at 256 they read
// 4-14% slower.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t QuantPrefetchBytes(size_t rows) { return rows == 1 ? 256 : 1024; }
#else
constexpr size_t QuantPrefetchBytes(size_t) { return 1024; }
#endif
template <size_t kM>
HWY_INLINE void PrefetchAhead(const void* block, size_t bytes) {
  const char* p = static_cast<const char*>(block) + QuantPrefetchBytes(kM);
  for (size_t off = 0; off < bytes; off += 64) hwy::Prefetch(p + off);
}

// The int8 kernels take kM activation rows (1 in decode, up to Int8Rows(T) when several
// sequences decode together): each weight block is loaded and unpacked once for all of
// them, and every row's sums run in the order they run for one row, so a batch gives each
// row exactly what it gives alone. 8 rows for the k-quants, whose super-block takes many
// operations to unpack; 4 for the 32-blocks (two accumulator chains per row: 32
// registers at 8 rows). bench/ops quant_matmul_bench, Zen 4, 1 thread, 8 rows from
// cache, GFLOP/s, tiles of 4 -> 8: Q4_K 131 -> 146, Q6_K 124 -> 140, Q8_0 96-97 -> 92-93.
constexpr bool IsKQuant(QuantType type) {
  return type == QuantType::kQ4_K || type == QuantType::kQ5_K || type == QuantType::kQ6_K;
}
constexpr size_t Int8Rows(QuantType type) { return IsKQuant(type) ? 8 : 4; }

// AVX512-VNNI (the AVX3_DL target): vpdpbusd and vpdpwssd do in one instruction what
// AVX2 does in two (vpmaddubsw + vpmaddwd, vpmaddwd + vpaddd). The integer sums are the
// same (no i16 pair below saturates: each use says why), so every result is bit for bit
// the AVX2 one. bench/ops quant_matmul_bench and `oko bench --parallel N` figures at the
// kernels' users (docs/PERFORMANCE.md, Zen 4). Written as inline assembly in their EVEX
// (AVX512-VNNI) encoding: Highway 1.0.3 compiles AVX3_DL for "avxvnni", so the compiler
// emits the VEX (AVX-VNNI) encoding, which Zen 4 and Ice Lake lack (SIGILL), and the
// target cannot gain avx512vnni for a function it inlines.
#define OKO_VNNI (HWY_TARGET == HWY_AVX3_DL)

// acc + the 8 int32 sums of 4 products of 32 unsigned bytes u and 32 signed bytes s.
HWY_INLINE __m256i DotU8I8(__m256i acc, __m256i u, __m256i s) {
#if OKO_VNNI
  asm("%{evex%} vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u), [s] "v"(s));
  return acc;
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// acc + the int32 sums of 2 products of the int16 pairs of a and b (V: __m256i, or
// __m512i on the AVX-512 targets).
template <class V>
HWY_INLINE V AddPairProducts(V acc, V a, V b) {
#if OKO_VNNI
  asm("%{evex%} vpdpwssd %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
#else
  if constexpr (sizeof(V) == 64) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
  } else {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
  }
#endif
}

// The AVX-512 targets run the k-quant kernels on 512-bit vectors: a super-block's 256
// values in four registers instead of eight, its scales and mins unpacked once. Every
// sum is the same integer; the float sums per super-block add in another order than on
// AVX2 (16 lanes, not 8). bench/ops quant_matmul_bench, Zen 4, 1 thread, from cache,
// GFLOP/s: Q4_K GEMV 53 -> 63, Q6_K 57 -> 67, Q4_K 4 rows 107 -> 115.
#define OKO_ZMM (HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL)

#if OKO_ZMM
HWY_INLINE __m512i Load64(const void* p) { return _mm512_loadu_si512(p); }

// The sum of v's two 256-bit halves.
HWY_INLINE __m256 Halves(__m512 v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); }

#if OKO_VNNI
// The 16 int32 sums of 4 products of 64 unsigned bytes u and 64 signed bytes s.
HWY_INLINE __m512i DotU8I8(__m512i u, __m512i s) {
  __m512i sums = _mm512_setzero_si512();
  asm("vpdpbusd %[s], %[u], %[sums]" : [sums] "+v"(sums) : [u] "v"(u), [s] "v"(s));
  return sums;
}
#endif
#endif

// 32 signed bytes times 32 signed bytes -> 8 int32 sums of 4 products. vpmaddubsw wants
// one operand unsigned: |a| and b with a's sign (no i16 overflow: 2*128*127 < 2^15).
HWY_INLINE __m256i DotI8(__m256i abs_a, __m256i a, __m256i b) {
  return DotU8I8(_mm256_setzero_si256(), abs_a, _mm256_sign_epi8(b, a));
}

HWY_INLINE __m256i Load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// A row of activations quantized for the 32-block formats (QuantizeInt8Activations).
struct ActQ8_0 {
  const float* sums;       // d * sum(q) per block, for Q4_1/Q5_1's m term
  const float* d;          // the blocks' f16 scales as f32: converted once, not per weight row
  const int32_t* offsets;  // -128 * the sum of each 4 consecutive q, for the 512-bit Q8_0 kernel
  const int8_t* qs;        // the values, block after block
};

// The parts of one row of K activations in Int8ActivationBytes's layout.
HWY_INLINE ActQ8_0 ActQ8_0Row(const uint8_t* xq, size_t K) {
  const auto* sums = reinterpret_cast<const float*>(xq);
  const auto* offsets = reinterpret_cast<const int32_t*>(sums + 2 * K / 32);
  return {sums, sums + K / 32, offsets, reinterpret_cast<const int8_t*>(offsets + K / 4)};
}

// M = 1: kQ8Streams Q8_0 weight rows, a part of the range apart, at once, each x block
// loaded once for all of them: several memory streams, as the bf16 GEMV reads (one row
// at a time left the memory idle between a thread's few misses). Each row sums exactly
// as the one-row kernel does (even and odd blocks apart), so batched and single decode
// agree.
// bench/ops quant_matmul_bench, Zen 2, DRAM-cold K=1024 N=3072, GB/s, one row -> 2 -> 4
// -> 6 streams, alternated: 1 thread 14.0-14.3 -> 16.5 -> 16.0-16.8 -> 16.2-17.1, 2 threads
// 23.6-24.3 -> 25.7-26.4 -> 28.4-28.7 -> 25.9-27.8; 4 streams with the prefetch: 1 thread
// 18.0-18.1 (from cache: 20.5).
constexpr size_t kQ8Streams = 4;

#if OKO_VNNI
// Q8_0 on 512-bit registers, two blocks in each. vpdpbusd wants one operand unsigned and
// AVX-512 has no vpsignb (the AVX2 kernel's way), so the weights go in as w + 128 (the sign
// bit flipped) and each lane's sum starts from -128 times its 4 activations' sum
// (ActQ8_0::offsets, computed as they were quantized): the integer is exactly sum(w * x).
// bench/ops quant_matmul_bench, Zen 4, 1 thread, from cache, GFLOP/s: GEMV 64 -> 73, 4 rows
// 90 -> 97.
alignas(64) static constexpr int32_t kBlockOfLane[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};

// [v[0] x 8, v[1] x 8]
HWY_INLINE __m512 PairOfScales(const float* v) {
  const __m128 two = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v)));  // 4-byte aligned
  return _mm512_permutexvar_ps(_mm512_load_si512(kBlockOfLane), _mm512_castps128_ps512(two));
}

// [f32(h0) x 8, f32(h1) x 8]: one conversion for two f16 scales (two and their
// broadcasts and a blend before: 4 rows from cache 96-97 -> 102-103 GFLOP/s, the GEMV
// 72 -> 73-75, Zen 4, 1 thread).
HWY_INLINE __m512 PairOfScales(uint16_t h0, uint16_t h1) {
  const __m128 two = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h0 | uint32_t{h1} << 16)));
  return _mm512_permutexvar_ps(_mm512_load_si512(kBlockOfLane), _mm512_castps128_ps512(two));
}

// Every 32-block format on these registers, in pairs of blocks. The 4- and 5-bit values
// q go in unsigned as they are stored: Q4_0 (w = q - 8) and Q5_0 (w = q - 16) start each
// lane's sum from -8 or -16 times its 4 activations' sum, offsets / 16 or / 8 (exact: the
// offsets are multiples of 128); Q4_1 / Q5_1 (w = q * d + m) add m * dx * sum(qx) per
// block as the 256-bit kernel does (a scalar in block order, into lane 0 at the end). Row
// by row on 256-bit registers, Q4_0 streamed 13.8 GB/s from DRAM where Q8_0's pairs and
// streams read 26 (Zen 4, 1 thread, K=1024 N=3072; in pairs and streams: 17.4), and
// decoded slower than llama.cpp (`oko bench -t 1 -p 0 -n 64`, Qwen3-0.6B shape in Q4_0:
// 40.7 vs 44.2 tok/s; with RowsPair below 54.6-55.3 vs 48.1-49.9). In pairs, Q5_0 from
// DRAM 12.7 -> 18.4 GB/s; decode Q5_0 30-34 -> 45-46 tok/s, Q5_1 31 -> 34-38, Q4_1 39 ->
// 41-42 (their scalar min terms), llama.cpp 27-29, 25-27 and 31.
template <QuantType T>
using Block32 = std::conditional_t<
    T == QuantType::kQ8_0, BlockQ8_0,
    std::conditional_t<T == QuantType::kQ4_0, BlockQ4_0,
                       std::conditional_t<T == QuantType::kQ4_1, BlockQ4_1,
                                          std::conditional_t<T == QuantType::kQ5_0, BlockQ5_0, BlockQ5_1>>>>;
constexpr bool HasMin(QuantType t) { return t == QuantType::kQ4_1 || t == QuantType::kQ5_1; }
constexpr bool HasFifthBit(QuantType t) { return t == QuantType::kQ5_0 || t == QuantType::kQ5_1; }

// A pair of blocks: b and b + 1 (kWhole), or b alone (the last of an odd count; the
// upper 8 lanes then hold zeros).
template <bool kWhole>
constexpr __mmask16 kPairLanes = kWhole ? 0xFFFF : 0x00FF;

// The weights of a pair as unsigned bytes, values 0-31 of block b, then of b + 1.
template <QuantType T, bool kWhole>
HWY_INLINE __m512i WeightPair(const Block32<T>* HWY_RESTRICT w, size_t b) {
  if constexpr (T == QuantType::kQ8_0) {
    __m512i q = _mm512_castsi256_si512(Load32(w[b].qs));
    if constexpr (kWhole) q = _mm512_inserti64x4(q, Load32(w[b + 1].qs), 1);
    return _mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80)));
  } else {  // 128-bit lanes [b's low nibbles (values 0-15), b's high (16-31), b + 1's ...]
    const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs));
    const __m128i r1 = kWhole ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b + 1].qs)) : r0;
    const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(r0, r0)), _mm256_set_m128i(r1, r1), 1);
    __m512i u = _mm512_and_si512(_mm512_mask_srli_epi16(raw, 0xFF00FF00u, raw, 4), _mm512_set1_epi8(0x0F));
    if constexpr (HasFifthBit(T)) {  // bit v of qh: the fifth bit of value v
      uint32_t h0, h1 = 0;
      std::memcpy(&h0, w[b].qh, 4);
      if constexpr (kWhole) std::memcpy(&h1, w[b + 1].qh, 4);
      u = _mm512_mask_add_epi8(u, _cvtu64_mask64(h0 | uint64_t{h1} << 32), u, _mm512_set1_epi8(16));
    }
    return u;
  }
}

template <QuantType T, bool kWhole>
HWY_INLINE __m512 WeightPairScales(const Block32<T>* HWY_RESTRICT w, size_t b) {
  if constexpr (kWhole) return PairOfScales(w[b].d, w[b + 1].d);
  return _mm512_maskz_mov_ps(kPairLanes<kWhole>, _mm512_set1_ps(F16ToF32(w[b].d)));
}

// An activation row's side of a pair: the lanes' starting sums, the values, the scales.
struct ActPair {
  __m512i sums, qx;
  __m512 dx;
};

template <QuantType T, bool kWhole>
HWY_INLINE ActPair ActivationPair(const ActQ8_0& x, size_t b) {
  constexpr __mmask64 kBytes = kWhole ? ~__mmask64{0} : 0xFFFFFFFFu;
  __m512i sums = _mm512_setzero_si512();
  if constexpr (!HasMin(T)) sums = _mm512_maskz_loadu_epi32(kPairLanes<kWhole>, x.offsets + 8 * b);
  if constexpr (T == QuantType::kQ4_0) sums = _mm512_srai_epi32(sums, 4);
  if constexpr (T == QuantType::kQ5_0) sums = _mm512_srai_epi32(sums, 3);
  return {sums, _mm512_maskz_loadu_epi8(kBytes, x.qs + 32 * b),
          kWhole ? PairOfScales(x.d + b) : _mm512_set1_ps(x.d[b])};
}

HWY_INLINE __m512 AccumulatePair(__m512 acc, __m512i u, __m512 dw, const ActPair& x) {
  __m512i sums = x.sums;
  asm("vpdpbusd %[qx], %[u], %[sums]" : [sums] "+v"(sums) : [u] "v"(u), [qx] "v"(x.qx));
  return _mm512_fmadd_ps(_mm512_mul_ps(dw, x.dx), _mm512_cvtepi32_ps(sums), acc);
}

// Q4_1 / Q5_1: min += m * dx * sum(qx) for the pair's blocks, in block order.
template <QuantType T, bool kWhole>
HWY_INLINE __m128 AddMins(__m128 min, const Block32<T>* HWY_RESTRICT w, const ActQ8_0& x, size_t b) {
  if constexpr (HasMin(T)) {
    min = _mm_fmadd_ss(_mm_set_ss(F16ToF32(w[b].m)), _mm_set_ss(x.sums[b]), min);
    if constexpr (kWhole) min = _mm_fmadd_ss(_mm_set_ss(F16ToF32(w[b + 1].m)), _mm_set_ss(x.sums[b + 1]), min);
  }
  return min;
}

// A pair of blocks of one weight row times the same blocks of kM activation rows, into
// acc and min.
template <QuantType T, size_t kM, bool kWhole>
HWY_INLINE void BlockPair(const Block32<T>* HWY_RESTRICT w, const ActQ8_0* x, size_t b, __m512* acc, __m128* min) {
  const __m512i u = WeightPair<T, kWhole>(w, b);
  const __m512 dw = WeightPairScales<T, kWhole>(w, b);
  for (size_t m = 0; m < kM; ++m) {
    acc[m] = AccumulatePair(acc[m], u, dw, ActivationPair<T, kWhole>(x[m], b));
    min[m] = AddMins<T, kWhole>(min[m], w, x[m], b);
  }
}

// A pair of blocks of kR weight rows times one activation row, whose side is loaded once
// for all of them (as BlockPair<T, 1> for each row: the same sums). bench/ops
// quant_matmul_bench, Zen 4, 1 thread, K=1024 N=3072, GB/s, per row -> once: from cache
// Q8_0 37.0 -> 44.3, Q4_0 19.1 -> 20.0; from DRAM Q8_0 27.0 -> 28.8 (a bf16 GEMV beside
// it: 28.4), Q4_0 17.5 -> 18.7.
template <QuantType T, size_t kR, bool kWhole>
HWY_INLINE void RowsPair(const Block32<T>* HWY_RESTRICT const* w, const ActQ8_0& x, size_t b, __m512* acc,
                         __m128* min) {
  const ActPair xp = ActivationPair<T, kWhole>(x, b);
  for (size_t r = 0; r < kR; ++r) {
    acc[r] = AccumulatePair(acc[r], WeightPair<T, kWhole>(w[r], b), WeightPairScales<T, kWhole>(w[r], b), xp);
    min[r] = AddMins<T, kWhole>(min[r], w[r], x, b);
  }
}

// The kN rows' dot products from their pair chains and min terms.
template <QuantType T, size_t kN>
HWY_INLINE void FinishPairs(const __m512* acc0, const __m512* acc1, const __m128* min, __m256* out) {
  for (size_t r = 0; r < kN; ++r) {
    out[r] = Halves(_mm512_add_ps(acc0[r], acc1[r]));
    if constexpr (HasMin(T)) out[r] = AddToLane0(out[r], _mm_cvtss_f32(min[r]));
  }
}

template <QuantType T, size_t kM>
HWY_INLINE void DotPairs(const uint8_t* HWY_RESTRICT row, const ActQ8_0* x, size_t nb, __m256* out) {
  const auto* w = reinterpret_cast<const Block32<T>*>(row);
  __m512 acc0[kM], acc1[kM];  // even and odd pairs: two chains per row
  __m128 min[kM];
  for (size_t m = 0; m < kM; ++m) {
    acc0[m] = acc1[m] = _mm512_setzero_ps();
    min[m] = _mm_setzero_ps();
  }
  size_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    PrefetchAhead<kM>(&w[b], 4 * sizeof(w[b]));
    BlockPair<T, kM, true>(w, x, b, acc0, min);
    BlockPair<T, kM, true>(w, x, b + 2, acc1, min);
  }
  if (b + 2 <= nb) {
    BlockPair<T, kM, true>(w, x, b, acc0, min);
    b += 2;
  }
  if (b < nb) BlockPair<T, kM, false>(w, x, b, acc1, min);
  FinishPairs<T, kM>(acc0, acc1, min, out);
}

template <QuantType T, size_t kR>
HWY_INLINE void DotPairStreams(const uint8_t* HWY_RESTRICT base, size_t row_bytes, size_t n, size_t step,
                               const ActQ8_0& x, size_t nb, __m256* out) {
  const Block32<T>* HWY_RESTRICT w[kR];
  for (size_t r = 0; r < kR; ++r) w[r] = reinterpret_cast<const Block32<T>*>(base + (n + r * step) * row_bytes);
  __m512 acc0[kR], acc1[kR];
  __m128 min[kR];
  for (size_t r = 0; r < kR; ++r) {
    acc0[r] = acc1[r] = _mm512_setzero_ps();
    min[r] = _mm_setzero_ps();
  }
  size_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    for (size_t r = 0; r < kR; ++r) PrefetchAhead<1>(&w[r][b], 4 * sizeof(w[r][b]));
    RowsPair<T, kR, true>(w, x, b, acc0, min);
    RowsPair<T, kR, true>(w, x, b + 2, acc1, min);
  }
  if (b + 2 <= nb) {
    RowsPair<T, kR, true>(w, x, b, acc0, min);
    b += 2;
  }
  if (b < nb) RowsPair<T, kR, false>(w, x, b, acc1, min);
  FinishPairs<T, kR>(acc0, acc1, min, out);
}
#else
// Block i of a Q8_0 weight row times block i of each activation row, into acc. The
// scale d * dx is a vector product (dx broadcast from memory); formed in a scalar and
// broadcast, as DotQ8_0Streams does (the same rounding: results agree bit for bit), the
// 4- and 8-row kernels ran 3-4% slower (bench/ops quant_matmul_bench, Zen 2, 1 thread,
// from cache: 51-52 -> 53-54 GFLOP/s).
template <size_t kM>
HWY_INLINE void BlockQ8_0Dots(const BlockQ8_0& w, const ActQ8_0* x, size_t i, __m256* acc) {
  const __m256i q = Load32(w.qs), abs_q = _mm256_sign_epi8(q, q);
  const __m256 d = _mm256_set1_ps(F16ToF32(w.d));
  for (size_t m = 0; m < kM; ++m)
    acc[m] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_broadcast_ss(&x[m].d[i])),
                             _mm256_cvtepi32_ps(DotI8(abs_q, q, Load32(x[m].qs + 32 * i))), acc[m]);
}

template <size_t kM>
HWY_INLINE void DotQ8_0(const BlockQ8_0* HWY_RESTRICT w, const ActQ8_0* x, size_t nb,
                        __m256* out) {
  __m256 acc0[kM], acc1[kM];  // even and odd blocks: two chains per row
  for (size_t m = 0; m < kM; ++m) acc0[m] = acc1[m] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    PrefetchAhead<kM>(&w[i], 2 * sizeof(w[i]));
    BlockQ8_0Dots<kM>(w[i], x, i, acc0);
    BlockQ8_0Dots<kM>(w[i + 1], x, i + 1, acc1);
  }
  for (; i < nb; ++i) BlockQ8_0Dots<kM>(w[i], x, i, acc0);
  for (size_t m = 0; m < kM; ++m) out[m] = _mm256_add_ps(acc0[m], acc1[m]);
}

template <size_t kR>
HWY_INLINE void DotQ8_0Streams(const uint8_t* HWY_RESTRICT base, size_t row_bytes, size_t n, size_t step,
                               const ActQ8_0& x, size_t nb, __m256* out) {
  const BlockQ8_0* HWY_RESTRICT w[kR];
  for (size_t r = 0; r < kR; ++r) w[r] = reinterpret_cast<const BlockQ8_0*>(base + (n + r * step) * row_bytes);
  __m256 acc[2][kR];
  for (size_t r = 0; r < kR; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
  for (size_t i = 0; i < nb; ++i) {
    const __m256i qx = Load32(x.qs + 32 * i);
    for (size_t r = 0; r < kR; ++r) {
      if ((i & 1) == 0) PrefetchAhead<1>(&w[r][i], 2 * sizeof(BlockQ8_0));
      const __m256i q = Load32(w[r][i].qs), abs_q = _mm256_sign_epi8(q, q);
      acc[i & 1][r] = _mm256_fmadd_ps(_mm256_set1_ps(F16ToF32(w[r][i].d) * x.d[i]),
                                      _mm256_cvtepi32_ps(DotI8(abs_q, q, qx)), acc[i & 1][r]);
    }
  }
  for (size_t r = 0; r < kR; ++r) out[r] = _mm256_add_ps(acc[0][r], acc[1][r]);
}

template <size_t kM>
HWY_INLINE void DotQ4_0(const BlockQ4_0* HWY_RESTRICT w, const ActQ8_0* x, size_t nb,
                        __m256* out) {
  __m256 acc[kM];
  for (size_t m = 0; m < kM; ++m) acc[m] = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F), k8 = _mm256_set1_epi8(8);
  for (size_t i = 0; i < nb; ++i) {
    PrefetchAhead<kM>(&w[i], sizeof(w[i]));
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].qs));
    // Low nibbles are values 0..15 of the block, high nibbles 16..31.
    __m256i q = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    q = _mm256_sub_epi8(_mm256_and_si256(q, m4), k8);
    const __m256i abs_q = _mm256_sign_epi8(q, q);
    const float d = F16ToF32(w[i].d);
    for (size_t m = 0; m < kM; ++m)
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(d * x[m].d[i]),
                               _mm256_cvtepi32_ps(DotI8(abs_q, q, Load32(x[m].qs + 32 * i))), acc[m]);
  }
  for (size_t m = 0; m < kM; ++m) out[m] = acc[m];
}

// Bit j of qh as byte j = 0x10 (the fifth bit of value j of a Q5_0/Q5_1 block), else 0.
HWY_INLINE __m256i FifthBits(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  // Byte j takes byte j/8 of qh (vpshufb stays in 128-bit lanes; both hold qh's 4 bytes).
  const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int32_t>(qh)), shuf);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Q4_1, Q5_0, Q5_1 x Q8_0 activations. Q5_0: signed values (q - 16) as DotI8. Q4_1/Q5_1:
// unsigned values in vpmaddubsw, x = q*d + m adds m * sum(x) with sum(x) = dx * sum(qx)
// per block (xs, as llama.cpp's Q8_1).
template <QuantType T, size_t kM>
HWY_INLINE void DotQ5Q41(const uint8_t* HWY_RESTRICT row, const ActQ8_0* x,
                         size_t nb, __m256* out) {
  using B = std::conditional_t<T == QuantType::kQ5_0, BlockQ5_0,
                               std::conditional_t<T == QuantType::kQ4_1, BlockQ4_1, BlockQ5_1>>;
  const B* w = reinterpret_cast<const B*>(row);
  __m256 acc[kM];
  float msum[kM];
  for (size_t m = 0; m < kM; ++m) {
    acc[m] = _mm256_setzero_ps();
    msum[m] = 0.0f;
  }
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (size_t i = 0; i < nb; ++i) {
    PrefetchAhead<kM>(&w[i], sizeof(w[i]));
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].qs));
    __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);
    if constexpr (T != QuantType::kQ4_1) q = _mm256_or_si256(q, FifthBits(w[i].qh));
    if constexpr (T == QuantType::kQ5_0) q = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
    const __m256i abs_q = _mm256_sign_epi8(q, q);
    const float d = F16ToF32(w[i].d);
    for (size_t m = 0; m < kM; ++m) {
      const __m256i qx = Load32(x[m].qs + 32 * i);
      __m256i p;
      if constexpr (T == QuantType::kQ5_0) {
        p = DotI8(abs_q, q, qx);
      } else {
        p = DotU8I8(_mm256_setzero_si256(), q, qx);  // q <= 31: no i16 pair saturates
        msum[m] += F16ToF32(w[i].m) * x[m].sums[i];
      }
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(d * x[m].d[i]), _mm256_cvtepi32_ps(p), acc[m]);
    }
  }
  for (size_t m = 0; m < kM; ++m) out[m] = AddToLane0(acc[m], msum[m]);
}
#endif  // OKO_VNNI

// The 8 six-bit scales (bytes 0-7) and mins (bytes 8-15) of a Q4_K/Q5_K super-block at
// once from its 12 bytes of 32-bit words w0 w1 w2 (bytes 0-3 of w0: scales 0-3 in the low
// 6 bits, of w1: mins 0-3; w2: the low 4 bits of scales 4-7 and, shifted 4, of mins 4-7,
// whose top 2 bits are the top bits of w0's / w1's bytes): per word of the result,
// [w0 & 0x3f, (w2 & 0x0f) | (w0 >> 6) << 4, w1 & 0x3f, (w2 >> 4 & 0x0f) | (w1 >> 6) << 4]
// for each byte. Reads 16 bytes (the block's first 4 values follow its scales). In vector
// registers (where it took 14 scalar operations and 4 inserts): Q4_K GEMV from cache
// 80-81 -> 88 GFLOP/s, 8 rows 122 -> 125 (bench/ops quant_matmul_bench, Zen 4, 1 thread).
HWY_INLINE __m128i ScalesMinsK4(const uint8_t* q) {
  const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i low = _mm_srlv_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4));
  const __m128i top = _mm_srli_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(1, 1, 0, 0)), 2);
  return _mm_or_si128(_mm_and_si128(low, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)),
                      _mm_and_si128(top, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030)));
}

// Q4_K/Q5_K x Q8K: per super-block d*dx * sum_j sc_j (q_j . qx_j) - dmin*dx * sum_j m_j
// sum(qx_j). The 4/5-bit values are unsigned: vpmaddubsw takes them directly; the 6-bit
// scales multiply in vpmaddwd, so a super-block accumulates in int32
// (max 8*63*2*31*127*2 < 2^31). The scales and mins stay in registers (unpacked through
// memory and broadcast one by one, the kernel ran at 8.5-8.9 GB/s from cache on Zen 2).
template <bool kQ5>
using BlockQ45_K = std::conditional_t<kQ5, BlockQ5_K, BlockQ4_K>;

#if OKO_ZMM
// Register k of a Q4_K/Q5_K super-block: the low (k even) or high (k odd) nibbles of bytes
// 64 (k / 2) .. 64 (k / 2) + 63, sub-blocks 4 (k / 2) + k % 2 (128-bit lanes 0-1) and
// that + 2 (lanes 2-3), where the paired activations (PairSubBlocks) meet them.
constexpr int Q45SubBlock(int k, int lane) { return 4 * (k / 2) + k % 2 + 2 * (lane / 2); }

// Word w of row k: the sub-block of the values a word holds in register k, the bit of qh
// that holds their Q5_K fifth bits.
alignas(64) static constexpr auto kSubBlockOfWord = [] {
  std::array<std::array<uint16_t, 32>, 4> index{};
  for (int k = 0; k < 4; ++k)
    for (int w = 0; w < 32; ++w) index[k][w] = static_cast<uint16_t>(Q45SubBlock(k, w / 8));
  return index;
}();

HWY_INLINE __m512i LoadWords(const uint16_t* p) { return _mm512_load_si512(p); }

// The scaled sums of a super-block's 256 products: sum over words w of the 4 registers q
// (unsigned values) of scale(w) * (q . x)(w), with x the super-block's 256 activations in
// order and scale(w) the scale of the 16 or 32 values a word's bytes belong to. The
// caller gathers the scales once per super-block into kScaleRegs registers (ScaleIndex).
#if OKO_VNNI
// vpdpbusd sums 4 products into an int32 that fits in 16 bits (4 * 63 * 127 < 2^15 for
// the 6-bit Q6_K values and less for Q4_K/Q5_K), so two registers of sums pack into one
// of int16 (vpackssdw, exact) for one vpdpwssd by the scales: 6 multiplies per
// super-block and activation row where vpmaddubsw + vpdpwssd took 8 (the multiplies share
// Zen 4's FMA pipes, one 512-bit op per cycle). Q4_K GEMV from cache 77 -> 82 GFLOP/s,
// 8 rows 115-120 -> 125 (Zen 4, 1 thread).
constexpr int kScaleRegs = 2;

// Scale register r, word w: packed from q[2r] (words 0-3 of each 128-bit lane j) and
// q[2r + 1] (words 4-7); the value of `scale_of(register, lane)`.
template <class ScaleOf>
constexpr std::array<std::array<uint16_t, 32>, kScaleRegs> ScaleIndex(ScaleOf scale_of) {
  std::array<std::array<uint16_t, 32>, kScaleRegs> index{};
  for (int r = 0; r < kScaleRegs; ++r)
    for (int w = 0; w < 32; ++w) index[r][w] = static_cast<uint16_t>(scale_of(2 * r + (w % 8) / 4, w / 8));
  return index;
}

HWY_INLINE __m512i ScaledSums(const __m512i* q, const int8_t* x, const __m512i* scales) {
  __m512i t[4];
  for (int k = 0; k < 4; ++k) t[k] = DotU8I8(q[k], Load64(x + 64 * k));
  const __m512i sums = AddPairProducts(_mm512_setzero_si512(), _mm512_packs_epi32(t[0], t[1]), scales[0]);
  return AddPairProducts(sums, _mm512_packs_epi32(t[2], t[3]), scales[1]);
}
#else
constexpr int kScaleRegs = 4;

// Scale register k, word w (the products of register k's bytes 2w and 2w + 1).
template <class ScaleOf>
constexpr std::array<std::array<uint16_t, 32>, kScaleRegs> ScaleIndex(ScaleOf scale_of) {
  std::array<std::array<uint16_t, 32>, kScaleRegs> index{};
  for (int k = 0; k < kScaleRegs; ++k)
    for (int w = 0; w < 32; ++w) index[k][w] = static_cast<uint16_t>(scale_of(k, w / 8));
  return index;
}

HWY_INLINE __m512i ScaledSums(const __m512i* q, const int8_t* x, const __m512i* scales) {
  __m512i sums[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // two chains
  for (int k = 0; k < 4; ++k)
    sums[k & 1] = AddPairProducts(sums[k & 1], _mm512_maddubs_epi16(q[k], Load64(x + 64 * k)), scales[k]);
  return _mm512_add_epi32(sums[0], sums[1]);
}
#endif

// Register k of a Q6_K super-block holds values 64k .. 64k + 63, lane j the scale group
// 4k + j.
alignas(64) static constexpr auto kQ45ScaleIndex = ScaleIndex(Q45SubBlock);
alignas(64) static constexpr auto kQ6ScaleIndex = ScaleIndex([](int k, int lane) { return 4 * k + lane; });

// Super-block i of one weight row times super-block i of kM activation rows: into acc[m]
// (the scaled sums) and mins[m] (the dmin terms, subtracted at the end). Register k holds
// sub-blocks Q45SubBlock(k, lane) and meets activations 64k .. 64k + 63 of the paired
// order.
template <bool kQ5, size_t kM>
HWY_INLINE void SuperBlockQ45_K(const BlockQ45_K<kQ5>* HWY_RESTRICT w, const ActQ8K* const* x, size_t i,
                                __m512* acc, __m256* mins) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  PrefetchAhead<kM>(&w[i], sizeof(w[i]));
  const __m128i scales_mins = ScalesMinsK4(w[i].scales);
  const __m512i scales = _mm512_castsi128_si512(_mm_cvtepu8_epi16(scales_mins));
  // Both f16 scales in one conversion (two before: the GEMV K=1024 N=3072, 1 thread, Zen 4,
  // from cache 104 -> 108-109 GFLOP/s, from DRAM 25.9 -> 27.1 GB/s).
  uint32_t d_dmin;
  std::memcpy(&d_dmin, &w[i].d, sizeof(d_dmin));
  const __m128 scales_f32 = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d_dmin)));
  const __m256 dmins = _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(scales_f32)),
                                     _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(scales_mins, 8))));
  __m512i q[4], sc[kScaleRegs];
  for (int r = 0; r < kScaleRegs; ++r) sc[r] = _mm512_permutexvar_epi16(LoadWords(kQ45ScaleIndex[r].data()), scales);
  for (int h = 0; h < 2; ++h) {
    const __m512i bits = Load64(w[i].qs + 64 * h);
    q[2 * h] = _mm512_and_si512(bits, m4);                              // sub-blocks 4h, 4h + 2
    q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4);  // 4h + 1, 4h + 3
  }
  if constexpr (kQ5) {  // bit j of qh[l] is bit 4 of value l of sub-block j
    const __m512i qh = _mm512_broadcast_i64x4(Load32(w[i].qh));
    for (int k = 0; k < 4; ++k) {
      const __m512i fifth = _mm512_slli_epi16(_mm512_srlv_epi16(qh, LoadWords(kSubBlockOfWord[k].data())), 4);
      q[k] = _mm512_ternarylogic_epi32(q[k], fifth, _mm512_set1_epi8(0x10), 0xF8);  // q | (fifth & 0x10)
    }
  }
  const float d = _mm_cvtss_f32(scales_f32);
  for (size_t m = 0; m < kM; ++m) {
    mins[m] = _mm256_fmadd_ps(dmins, _mm256_loadu_ps(x[m][i].dsums), mins[m]);
    const __m512i sums = ScaledSums(q, x[m][i].qs, sc);
    acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(d * x[m][i].d), _mm512_cvtepi32_ps(sums), acc[m]);
  }
}

// The shifts that bring the two high bits of each 32 values to bits 4-5 (see the AVX2
// kernel's u[0..3]): values 0-31 and 32-63 of a 128-value half, then 64-95 and 96-127.
alignas(64) static constexpr uint16_t kQ6HighLeft[32] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                                        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
alignas(64) static constexpr uint16_t kQ6HighRight[32] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                         2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};

// Q6_K x Q8K as the AVX2 kernel below, register k holding values 64k .. 64k + 63.
template <size_t kM>
HWY_INLINE void SuperBlockQ6_K(const BlockQ6_K* HWY_RESTRICT w, const ActQ8K* const* x, size_t i,
                               __m512* acc, __m512* offset) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  PrefetchAhead<kM>(&w[i], sizeof(w[i]));
  const __m128i scales8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
  const __m256i scales = _mm256_cvtepi8_epi16(scales8);
  __m512i u[4], sc[kScaleRegs];
  for (int h = 0; h < 2; ++h) {
    const __m512i low = Load64(w[i].ql + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(Load32(w[i].qh + 32 * h));
    const __m512i up_left = _mm512_sllv_epi16(qh, LoadWords(kQ6HighLeft));
    const __m512i up_right = _mm512_srlv_epi16(qh, LoadWords(kQ6HighRight));
    // (low & 0x0F) | (high & 0x30)
    u[2 * h] = _mm512_ternarylogic_epi32(_mm512_and_si512(low, m4), up_left, m30, 0xF8);
    u[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(low, 4), m4), up_right, m30, 0xF8);
  }
  for (int r = 0; r < kScaleRegs; ++r)
    sc[r] = _mm512_permutexvar_epi16(LoadWords(kQ6ScaleIndex[r].data()), _mm512_castsi256_si512(scales));
  const float d = F16ToF32(w[i].d);
  const __m512 offsets = _mm512_mul_ps(_mm512_set1_ps(32.0f * d), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(scales8)));
  for (size_t m = 0; m < kM; ++m) {
    offset[m] = _mm512_fmadd_ps(offsets, _mm512_loadu_ps(x[m][i].dsums), offset[m]);
    const __m512i sums = ScaledSums(u, x[m][i].qs, sc);
    acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(d * x[m][i].d), _mm512_cvtepi32_ps(sums), acc[m]);
  }
}

// A k-quant row's running sums: the scaled products and the term subtracted at the end.
// (Q6_K's offsets per 16 values, the others' mins per 32.)
using KAcc = __m512;
template <QuantType T>
using KExtra = std::conditional_t<T == QuantType::kQ6_K, __m512, __m256>;
HWY_INLINE __m256 FinishK(KAcc acc, __m512 extra) { return Halves(_mm512_sub_ps(acc, extra)); }
HWY_INLINE __m256 FinishK(KAcc acc, __m256 extra) { return _mm256_sub_ps(Halves(acc), extra); }
#else  // AVX2

using KAcc = __m256;
template <QuantType T>
using KExtra = float;
HWY_INLINE __m256 FinishK(KAcc acc, float extra) { return AddToLane0(acc, -extra); }

// vpshufb masks that broadcast 16-bit word j of each 128-bit lane to the whole lane.
alignas(32) static constexpr uint8_t kWordBroadcast[8][32] = {
#define OKO_WORD(j) \
  {2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, \
   2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, \
   2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1}
    OKO_WORD(0), OKO_WORD(1), OKO_WORD(2), OKO_WORD(3), OKO_WORD(4), OKO_WORD(5), OKO_WORD(6), OKO_WORD(7)
#undef OKO_WORD
};

// Sum of the 4 int32 lanes (exact).
HWY_INLINE int HsumI32(__m128i v) {
  v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 1));
  return _mm_cvtsi128_si32(v);
}

// Super-block i of one weight row times super-block i of kM activation rows: into acc[m]
// (the scaled sums) and mins[m] (the dmin terms, subtracted at the end). The loop over the
// super-blocks is outside (DotK): so split, GCC compiled it better (Zen 2, 1 thread,
// DRAM-cold GEMV K=1024 N=3072: Q4_K 9.9-10.0 -> 12.0-12.2 GB/s; Q6_K's split the same
// way 11.4-11.9 -> 14.6-14.9). Several weight rows at once, as Q8_0 reads them, gained
// nothing more on Zen 2, bound by the arithmetic; on Zen 4 with the 512-bit kernels they
// did (DotKStreams).
template <bool kQ5, size_t kM>
HWY_INLINE void SuperBlockQ45_K(const BlockQ45_K<kQ5>* HWY_RESTRICT w, const ActQ8K* const* x, size_t i,
                                __m256* acc, float* mins) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(1);
  PrefetchAhead<kM>(&w[i], sizeof(w[i]));
  const __m128i scales_mins = ScalesMinsK4(w[i].scales);
  const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scales_mins));
  const __m128i mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(scales_mins, 8));
  __m256i acc_i[kM];
  for (size_t m = 0; m < kM; ++m) {
    const __m256i sums = Load32(x[m][i].sums);  // 16 sums of 16: pairs are the 8 sub-blocks
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
    const int msum = HsumI32(_mm_madd_epi16(mins16, pairs));
    mins[m] += F16ToF32(w[i].dmin) * x[m][i].d * static_cast<float>(msum);
    acc_i[m] = _mm256_setzero_si256();
  }
  __m256i qh = _mm256_setzero_si256();
  if constexpr (kQ5) qh = Load32(w[i].qh);
  for (int p = 0; p < 4; ++p) {
    const __m256i bits = Load32(w[i].qs + 32 * p);
    __m256i lo = _mm256_and_si256(bits, m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
    if constexpr (kQ5) {  // bit 2p of qh[l] is bit 4 of the low value, bit 2p+1 of the high
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, m1), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), m1), 4));
      qh = _mm256_srli_epi16(qh, 2);
    }
    const __m256i sc_lo = _mm256_shuffle_epi8(scales, Load32(kWordBroadcast[2 * p]));
    const __m256i sc_hi = _mm256_shuffle_epi8(scales, Load32(kWordBroadcast[2 * p + 1]));
    for (size_t m = 0; m < kM; ++m) {
      const __m256i plo = _mm256_maddubs_epi16(lo, Load32(x[m][i].qs + 32 * PairedPosition(2 * p)));
      const __m256i phi = _mm256_maddubs_epi16(hi, Load32(x[m][i].qs + 32 * PairedPosition(2 * p + 1)));
      acc_i[m] = AddPairProducts(acc_i[m], plo, sc_lo);
      acc_i[m] = AddPairProducts(acc_i[m], phi, sc_hi);
    }
  }
  const float d = F16ToF32(w[i].d);
  for (size_t m = 0; m < kM; ++m)
    acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(d * x[m][i].d), _mm256_cvtepi32_ps(acc_i[m]), acc[m]);
}

// vpshufb masks: word 2k of the low lane broadcast across it, word 2k + 1 of the high lane
// across it.
alignas(32) static constexpr uint8_t kScalePairBroadcast[4][32] = {
#define OKO_PAIR(k)                                                                                  \
  {4 * k,     4 * k + 1, 4 * k,     4 * k + 1, 4 * k,     4 * k + 1, 4 * k,     4 * k + 1,           \
   4 * k,     4 * k + 1, 4 * k,     4 * k + 1, 4 * k,     4 * k + 1, 4 * k,     4 * k + 1,           \
   4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,           \
   4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3}
    OKO_PAIR(0), OKO_PAIR(1), OKO_PAIR(2), OKO_PAIR(3)
#undef OKO_PAIR
};

// Q6_K x Q8K: the 6-bit values as unsigned u = q + 32 in [0, 63] for vpmaddubsw, the
// per-16 int8 scales in vpmaddwd, and the offset 32 * sum_g sc_g sum(qx_g) subtracted.
// Super-block i of one weight row times super-block i of kM activation rows: into acc[m]
// and offset[m] (subtracted at the end).
template <size_t kM>
HWY_INLINE void SuperBlockQ6_K(const BlockQ6_K* HWY_RESTRICT w, const ActQ8K* const* x, size_t i,
                               __m256* acc, float* offset) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  PrefetchAhead<kM>(&w[i], sizeof(w[i]));
  const __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales)));
  float ddx[kM];
  __m256i acc_i[kM];
  for (size_t m = 0; m < kM; ++m) {
    ddx[m] = F16ToF32(w[i].d) * x[m][i].d;
    const __m256i prods = _mm256_madd_epi16(scales, Load32(x[m][i].sums));
    const int osum = HsumI32(_mm_add_epi32(_mm256_castsi256_si128(prods), _mm256_extracti128_si256(prods, 1)));
    offset[m] += ddx[m] * static_cast<float>(32 * osum);
    acc_i[m] = _mm256_setzero_si256();
  }
  for (int h = 0; h < 2; ++h) {
    // Scales 8h..8h+7 in both lanes; pair k takes scale 8h+2k in the low lane, 8h+2k+1 in
    // the high one (one vpshufb where set1 + insert took four ops).
    // One immediate per branch: unoptimized builds do not fold `h == 0 ? 0x44 : 0xEE`.
    const __m256i half = h == 0 ? _mm256_permute4x64_epi64(scales, 0x44) : _mm256_permute4x64_epi64(scales, 0xEE);
    const uint8_t* ql = w[i].ql + 64 * h;
    const __m256i l0 = Load32(ql), l1 = Load32(ql + 32), qh = Load32(w[i].qh + 32 * h);
    const __m256i u[4] = {
        _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
        _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                        _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30))};
    for (int k = 0; k < 4; ++k) {
      const __m256i s = _mm256_shuffle_epi8(half, Load32(kScalePairBroadcast[k]));
      for (size_t m = 0; m < kM; ++m) {
        const __m256i p = _mm256_maddubs_epi16(u[k], Load32(x[m][i].qs + 128 * h + 32 * k));
        acc_i[m] = AddPairProducts(acc_i[m], p, s);
      }
    }
  }
  for (size_t m = 0; m < kM; ++m)
    acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(ddx[m]), _mm256_cvtepi32_ps(acc_i[m]), acc[m]);
}

#endif  // OKO_ZMM

// Super-block i of a k-quant weight row times super-block i of kM activation rows.
template <QuantType T, size_t kM>
HWY_INLINE void SuperBlockK(const uint8_t* HWY_RESTRICT row, const ActQ8K* const* x, size_t i, KAcc* acc,
                            KExtra<T>* extra) {
  if constexpr (T == QuantType::kQ6_K) {
    SuperBlockQ6_K<kM>(reinterpret_cast<const BlockQ6_K*>(row), x, i, acc, extra);
  } else {
    constexpr bool kQ5 = T == QuantType::kQ5_K;
    SuperBlockQ45_K<kQ5, kM>(reinterpret_cast<const BlockQ45_K<kQ5>*>(row), x, i, acc, extra);
  }
}

template <QuantType T, size_t kM>
HWY_INLINE void DotK(const uint8_t* HWY_RESTRICT row, const ActQ8K* const* x, size_t nb, __m256* out) {
  KAcc acc[kM] = {};
  KExtra<T> extra[kM] = {};
  for (size_t i = 0; i < nb; ++i) SuperBlockK<T, kM>(row, x, i, acc, extra);
  for (size_t m = 0; m < kM; ++m) out[m] = FinishK(acc[m], extra[m]);
}

// M = 1: kKStreams k-quant weight rows, a part of the range apart, super-block by
// super-block, as DotQ8_0Streams reads Q8_0 (each row sums exactly as DotK<T, 1>).
// bench/ops quant_matmul_bench, Zen 4, 1 thread, DRAM-cold K=1024 N=3072, GB/s, one row
// at a time -> 4 streams: Q4_K 20.4 -> 22.9, Q6_K 23.8 -> 29.6 (the machine reads 28).
constexpr size_t kKStreams = 4;

template <QuantType T>
HWY_INLINE void DotKStreams(const uint8_t* HWY_RESTRICT base, size_t row_bytes, size_t n, size_t step,
                            const ActQ8K* x, size_t nb, __m256* out) {
  KAcc acc[kKStreams] = {};
  KExtra<T> extra[kKStreams] = {};
  for (size_t i = 0; i < nb; ++i)
    for (size_t r = 0; r < kKStreams; ++r)
      SuperBlockK<T, 1>(base + (n + r * step) * row_bytes, &x, i, &acc[r], &extra[r]);
  for (size_t r = 0; r < kKStreams; ++r) out[r] = FinishK(acc[r], extra[r]);
}

// One weight row times kM quantized activation rows (xq[m]: Int8ActivationBytes each).
template <QuantType T, size_t kM>
HWY_INLINE void Int8RowDots(const uint8_t* HWY_RESTRICT row, const uint8_t* const* xq, size_t K,
                            __m256* out) {
  if constexpr (IsKQuant(T)) {
    const ActQ8K* x[kM];
    for (size_t m = 0; m < kM; ++m) x[m] = reinterpret_cast<const ActQ8K*>(xq[m]);
    DotK<T, kM>(row, x, K / 256, out);
  } else {
    ActQ8_0 x[kM];
    for (size_t m = 0; m < kM; ++m) x[m] = ActQ8_0Row(xq[m], K);
#if OKO_VNNI
    DotPairs<T, kM>(row, x, K / 32, out);
#else
    if constexpr (T == QuantType::kQ8_0) {
      DotQ8_0<kM>(reinterpret_cast<const BlockQ8_0*>(row), x, K / 32, out);
    } else if constexpr (T == QuantType::kQ4_0) {
      DotQ4_0<kM>(reinterpret_cast<const BlockQ4_0*>(row), x, K / 32, out);
    } else {
      DotQ5Q41<T, kM>(row, x, K / 32, out);
    }
#endif
  }
}

// The formats whose one-row kernel reads kQ8Streams / kKStreams rows at once (StreamDots):
// the other 32-blocks only where they go in pairs (row by row on AVX2 they stayed bound
// by their arithmetic).
constexpr bool HasStreams(QuantType type) {
  return type == QuantType::kQ8_0 || IsKQuant(type) || OKO_VNNI;
}

// M = 1: weight rows n + r * part (r < 4) times one activation row.
template <QuantType T>
HWY_INLINE void StreamDots(const uint8_t* HWY_RESTRICT base, size_t row_bytes, size_t n, size_t part,
                           const uint8_t* xq, size_t K, __m256* out) {
  if constexpr (IsKQuant(T)) {
    DotKStreams<T>(base, row_bytes, n, part, reinterpret_cast<const ActQ8K*>(xq), K / 256, out);
  } else {
#if OKO_VNNI
    DotPairStreams<T, kQ8Streams>(base, row_bytes, n, part, ActQ8_0Row(xq, K), K / 32, out);
#else
    DotQ8_0Streams<kQ8Streams>(base, row_bytes, n, part, ActQ8_0Row(xq, K), K / 32, out);
#endif
  }
}

// fn(std::integral_constant<size_t, rows>()) for 1 <= rows <= kMax: a tile's number of
// activation rows as the compile-time constant the kernels take.
template <size_t kMax, typename Fn>
HWY_INLINE void WithRows(size_t rows, const Fn& fn) {
  if constexpr (kMax > 1) {
    if (rows < kMax) return WithRows<kMax - 1>(rows, fn);
  }
  fn(std::integral_constant<size_t, kMax>());
}

#if OKO_VNNI
// ---- Every block format (Q4_K, Q5_K, Q6_K, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) with 16 weight rows interleaved (QuantInterleaveRows, WeightView::interleave) ----
// One 512-bit register holds 4 values of each of 16 weight rows (lane r = row r), so an
// activation row's dword, broadcast, meets 16 rows in one vpdpbusd, a sub-block's scale
// is one vpmulld for 16 rows, and the 16 results are stored without a reduction. All
// sums per super-block are exact integers, then one convert and FMA per activation row
// for the 16 rows. Every activation row runs the same instructions whatever the number
// of rows, so a row of a batch equals the row alone, bit for bit.
// Q4_K: a super-block of a group is 36 lines of 64 bytes, line k the dword k of the 16
// rows' blocks: line 0 (d, dmin), lines 1-3 the 12 bytes of 6-bit scales and mins, lines
// 4-35 the 128 bytes of 4-bit values (line 4 + c: qs bytes 4c..4c+3; their low nibbles
// are values 64p + l of sub-block 2p, the high ones 64p + 32 + l of sub-block 2p + 1,
// with p = c / 8, l = 4 (c % 8)). Per activation row and super-block: 64 vpdpbusd, 8
// vpmulld, 4 vpdpwssd for the mins.
// bench/ops quant_matmul_bench, Zen 4, 1 thread, K = 1024 N = 3072, GFLOP/s, row-major ->
// interleaved, one run: from cache GEMV Q4_K 103 -> 154, Q6_K 78 -> 93; 4 rows Q4_K 122
// -> 327, Q6_K 113 -> 225; 8 rows Q4_K 161 -> 325, Q6_K 140 -> 240. From DRAM the GEMVs
// read as before (21-23 GB/s, the neighbour moving both); decode of Qwen3-0.6B Q4_K_M
// went from 48-61 to 54-67 tok/s (docs/PERFORMANCE.md).
constexpr size_t kGroupRows = 16;
constexpr bool HasGroupKernel(QuantType type) {  // every block format
  return type != QuantType::kF32 && type != QuantType::kF16 && type != QuantType::kBF16;
}
// The bytes of one (super-)block of a group's 16 rows: 2304 for Q4_K, 2816 for Q5_K, 3360
// for Q6_K, 544 for Q8_0, 288 for Q4_0, 320 for Q4_1, 352 for Q5_0, 384 for Q5_1.
constexpr size_t GroupBlockBytes(QuantType type) {
  return kGroupRows * (type == QuantType::kQ4_K   ? sizeof(BlockQ4_K)
                       : type == QuantType::kQ5_K ? sizeof(BlockQ5_K)
                       : type == QuantType::kQ6_K ? sizeof(BlockQ6_K)
                       : type == QuantType::kQ4_0 ? sizeof(BlockQ4_0)
                       : type == QuantType::kQ4_1 ? sizeof(BlockQ4_1)
                       : type == QuantType::kQ5_0 ? sizeof(BlockQ5_0)
                       : type == QuantType::kQ5_1 ? sizeof(BlockQ5_1)
                                                  : sizeof(BlockQ8_0));
}
// The values in one (super-)block of a row.
constexpr size_t GroupBlockValues(QuantType type) { return IsKQuant(type) ? 256 : 32; }

// acc + the 16 int32 sums of 4 products of 64 unsigned bytes u with the 4 signed bytes at
// x, broadcast (EVEX embedded broadcast: no register for x).
HWY_INLINE __m512i DotU8Broadcast(__m512i acc, __m512i u, const int32_t* x) {
  asm("vpdpbusd %[x]%{1to16%}, %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u), [x] "m"(*x));
  return acc;
}
// acc + the 16 int32 sums of the products of the int16 pairs of a with the pair at x.
HWY_INLINE __m512i DotI16Broadcast(__m512i acc, __m512i a, const int32_t* x) {
  asm("vpdpwssd %[x]%{1to16%}, %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [x] "m"(*x));
  return acc;
}

// A zeroed register by the zero idiom (vpxord r, r, r), for the sums that restart at every
// sub-block. Written _mm512_setzero_si512(), GCC keeps one zero register and copies it
// into each (vmovdqa64). quant_matmul_bench from cache, Zen 5, 1 thread, K = 1024 N =
// 3072, medians of 3, 2 alternated rounds, copies -> zero idiom: 8 rows Q4_K 532-548 ->
// 549-568 GFLOP/s, Q6_K 346-358 -> 361-363; 4 rows level. A loop of dots and copies alone
// runs as fast as the dots, so the gain is in how the kernel schedules, not the copies.
// volatile: GCC would otherwise merge the identical statements into one register again.
HWY_INLINE __m512i FreshZero() {
  __m512i z;
  asm volatile("vpxord %0, %0, %0" : "=v"(z));
  return z;
}

// A group super-block's scales (sub-block j's as an int32 per row) and mins (the pairs
// of sub-blocks 2p, 2p + 1 as int16 per row), unpacked from the 12 bytes of each row as
// ScaleMinK4 reads them, and d, dmin per row.
struct Q4KGroupScales {
  __m512i scale[8], min_pairs[4];
  __m512 d, dmin;
};

// A vpshufb control that puts byte `low` of every dword in its low byte, byte `high` (or
// none: kNoByte) in its third, zeros elsewhere (vpshufb indexes the bytes of a 128-bit
// lane, whose dword d starts at byte 4d).
constexpr uint32_t kNoByte = 0x80;
HWY_INLINE __m512i DwordBytes(uint32_t low, uint32_t high) {
  uint32_t c[4];
  for (uint32_t d = 0; d < 4; ++d)
    c[d] = 0x80008000u | (low + 4 * d) | (high == kNoByte ? kNoByte : high + 4 * d) << 16;
  return _mm512_broadcast_i32x4(_mm_setr_epi32(static_cast<int>(c[0]), static_cast<int>(c[1]),
                                               static_cast<int>(c[2]), static_cast<int>(c[3])));
}

HWY_INLINE Q4KGroupScales UnpackQ4KScales(const uint8_t* HWY_RESTRICT b) {
  const __m512i a = Load64(b + 64), m = Load64(b + 128), c = Load64(b + 192);
  const __m512i low6 = _mm512_set1_epi8(0x3F), low4 = _mm512_set1_epi8(0x0F), top2 = _mm512_set1_epi8(0x30);
  const __m512i sc03 = _mm512_and_si512(a, low6), mn03 = _mm512_and_si512(m, low6);
  // Scales and mins 4-7: their low 4 bits in c's nibbles, their top 2 bits in the top 2
  // bits of a's (scales) and m's (mins) bytes.
  const __m512i sc47 = _mm512_or_si512(_mm512_and_si512(c, low4), _mm512_and_si512(_mm512_srli_epi32(a, 2), top2));
  const __m512i mn47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(c, 4), low4),
                                       _mm512_and_si512(_mm512_srli_epi32(m, 2), top2));
  Q4KGroupScales s;
  for (uint32_t j = 0; j < 4; ++j) {  // byte j of each row, zero-extended
    const __m512i byte_j = DwordBytes(j, kNoByte);
    s.scale[j] = _mm512_shuffle_epi8(sc03, byte_j);
    s.scale[j + 4] = _mm512_shuffle_epi8(sc47, byte_j);
  }
  for (uint32_t p = 0; p < 2; ++p) {  // bytes 2p and 2p + 1 of each row as two int16
    const __m512i pair = DwordBytes(2 * p, 2 * p + 1);
    s.min_pairs[p] = _mm512_shuffle_epi8(mn03, pair);
    s.min_pairs[p + 2] = _mm512_shuffle_epi8(mn47, pair);
  }
  const __m512i dd = Load64(b);
  s.d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
  s.dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
  return s;
}

// acc[m] += the 16 rows of one group super-block b times activation row x[m][i], m < kM.
// Q5_K (kQ5) is Q4_K with 8 lines of qh between the scales and the values (qs from line
// 12): value l of sub-block pair p takes bit 2p (low nibble) or 2p + 1 (high nibble) of
// qh byte l as its fifth, so the line of qs bytes 4t..4t+3 of a pair meets qh line 4 + t:
// a vptestmb and a masked vpaddb per nibble register, for all kM rows. bench/ops
// quant_matmul_bench, Zen 4, 1 thread, K = 1024 N = 3072, GFLOP/s, row-major -> interleaved:
// GEMV from cache 72 -> 140, from DRAM 67 -> 82 (23 -> 28 GB/s); 8 rows from DRAM 154 ->
// 270. Qwen3-0.6B Q5_K_M, tok/s, alternated: decode 1 thread 51.0-53.7 -> 60.4-62.0; 8
// sequences 1 thread 129 -> 179-180, 2 threads 198-217 -> 261-283.
template <size_t kM, bool kQ5 = false>
HWY_INLINE void Q4KGroupSuperBlock(const uint8_t* HWY_RESTRICT b, const ActQ8K* const* x, size_t i,
                                   __m512* acc) {
  const Q4KGroupScales s = UnpackQ4KScales(b);
  const __m512i low4 = _mm512_set1_epi8(0x0F), fifth = _mm512_set1_epi8(16);
  constexpr size_t kValuesLine = kQ5 ? 12 : 4;
  __m512i total[kM];
  for (size_t m = 0; m < kM; ++m) total[m] = _mm512_setzero_si512();
  for (size_t p = 0; p < 4; ++p) {
    __m512i lo[kM], hi[kM];
    for (size_t m = 0; m < kM; ++m) lo[m] = FreshZero(), hi[m] = FreshZero();
    for (size_t t = 0; t < 8; ++t) {
      const size_t c = 8 * p + t;
      const __m512i q = Load64(b + 64 * (kValuesLine + c));
      __m512i q_lo = _mm512_and_si512(q, low4), q_hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
      if constexpr (kQ5) {
        const __m512i h = Load64(b + 64 * (4 + t));
        const auto bit = static_cast<char>(1u << (2 * p));
        q_lo = _mm512_mask_add_epi8(q_lo, _mm512_test_epi8_mask(h, _mm512_set1_epi8(bit)), q_lo, fifth);
        q_hi = _mm512_mask_add_epi8(q_hi, _mm512_test_epi8_mask(h, _mm512_set1_epi8(static_cast<char>(bit << 1))),
                                    q_hi, fifth);
      }
      // The activations hold sub-blocks in the paired order (PairedPosition): sub-block
      // 2p's values 32p..32p+31 of the 128 low nibbles, 2p + 1's the same of the high ones.
      const size_t lo_dword = c < 16 ? c : c + 16;
      for (size_t m = 0; m < kM; ++m) {
        const auto* xd = reinterpret_cast<const int32_t*>(x[m][i].qs);
        lo[m] = DotU8Broadcast(lo[m], q_lo, xd + lo_dword);
        hi[m] = DotU8Broadcast(hi[m], q_hi, xd + lo_dword + 16);
      }
    }
    for (size_t m = 0; m < kM; ++m) {
      total[m] = _mm512_add_epi32(total[m], _mm512_mullo_epi32(lo[m], s.scale[2 * p]));
      total[m] = _mm512_add_epi32(total[m], _mm512_mullo_epi32(hi[m], s.scale[2 * p + 1]));
    }
  }
  for (size_t m = 0; m < kM; ++m) {
    const auto* sums = reinterpret_cast<const int32_t*>(x[m][i].sums32);
    __m512i mins = _mm512_setzero_si512();
    for (size_t p = 0; p < 4; ++p) mins = DotI16Broadcast(mins, s.min_pairs[p], sums + p);
    const __m512 dx = _mm512_set1_ps(x[m][i].d);
    acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(s.d, dx), _mm512_cvtepi32_ps(total[m]), acc[m]);
    acc[m] = _mm512_fnmadd_ps(_mm512_mul_ps(s.dmin, dx), _mm512_cvtepi32_ps(mins), acc[m]);
  }
}

// Q6_K: a super-block of the group is 32 lines of ql (line c: ql bytes 4c..4c+3 of the
// 16 rows), 16 of qh, 4 of the int8 scales, then the 16 rows' f16 d. Value kind k of half
// n (values 128n + 32k + l, l < 32; scale 8n + 2k + l / 16) takes its low 4 bits from ql
// byte 64n + 32 (k & 1) + l (the low nibble for k < 2, the high one for k >= 2), its top
// 2 from bits 2k, 2k + 1 of qh byte 32n + l. The values stay unsigned (0..63) in the
// products; the -32 comes once per super-block from the activations' sums of 16: sum
// (q - 32) x = sum q x - 32 sum x, exact integers. Per activation row and super-block: 64
// vpdpbusd, 16 vpmulld, 8 vpdpwssd for the offsets.
// The scales are read where they are used, after the values they scale: read first,
// their line (the 49th of 53) waited for memory at every super-block (decode 40 -> 65
// tok/s, lm_head 41% -> 105% of the cached read limit in `oko profile`).
HWY_INLINE __m512i Q6KScaleLine(const uint8_t* HWY_RESTRICT b, uint32_t line) { return Load64(b + 64 * (48 + line)); }

// Scale s of every row as int32 (sign-extended from its byte).
HWY_INLINE __m512i Q6KScale(const uint8_t* HWY_RESTRICT b, uint32_t index) {
  uint32_t c[4];
  for (uint32_t d = 0; d < 4; ++d) c[d] = 0x00808080u | (4 * d + index % 4) << 24;
  const __m512i top = _mm512_shuffle_epi8(Q6KScaleLine(b, index / 4), _mm512_broadcast_i32x4(_mm_setr_epi32(
      static_cast<int>(c[0]), static_cast<int>(c[1]), static_cast<int>(c[2]), static_cast<int>(c[3]))));
  return _mm512_srai_epi32(top, 24);
}

// Scales 2h and 2h + 1 of every row as an int16 pair (sign-extended from their bytes).
HWY_INLINE __m512i Q6KScalePair(const uint8_t* HWY_RESTRICT b, uint32_t h) {
  uint32_t c[4];
  const uint32_t o = 2 * (h % 2);
  for (uint32_t d = 0; d < 4; ++d) c[d] = 0x00800080u | (4 * d + o) << 8 | (4 * d + o + 1) << 24;
  const __m512i high = _mm512_shuffle_epi8(Q6KScaleLine(b, h / 2), _mm512_broadcast_i32x4(_mm_setr_epi32(
      static_cast<int>(c[0]), static_cast<int>(c[1]), static_cast<int>(c[2]), static_cast<int>(c[3]))));
  return _mm512_srai_epi16(high, 8);
}

// The 64 6-bit values of value kind k (0..3) of one chunk: 4 of each of the 16 rows.
template <int kKind>
HWY_INLINE __m512i Q6KValues(__m512i ql, __m512i qh) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), top2 = _mm512_set1_epi8(0x30);
  const __m512i low = kKind < 2 ? _mm512_and_si512(ql, low4) : _mm512_and_si512(_mm512_srli_epi16(ql, 4), low4);
  __m512i high;
  if constexpr (kKind % 2 == 0) high = kKind == 0 ? _mm512_slli_epi16(qh, 4) : qh;
  if constexpr (kKind == 1) high = _mm512_slli_epi16(qh, 2);
  if constexpr (kKind == 3) high = _mm512_srli_epi16(qh, 2);
  return _mm512_or_si512(low, _mm512_and_si512(high, top2));
}

// total[m] += the scaled sums of value kinds kA and kA + 2 (both from the same ql byte's
// two nibbles) of half n, scale half is, for kM activation rows.
template <size_t kM, int kA>
HWY_INLINE void Q6KKinds(const uint8_t* HWY_RESTRICT b, const ActQ8K* const* x, size_t i,
                         size_t n, size_t is, __m512i* total) {
  __m512i lo[kM], hi[kM];
  for (size_t m = 0; m < kM; ++m) lo[m] = FreshZero(), hi[m] = FreshZero();
  for (size_t c4 = 0; c4 < 4; ++c4) {
    const size_t t = 4 * is + c4;
    const __m512i ql = Load64(b + 64 * (16 * n + 8 * kA + t)), qh = Load64(b + 64 * (32 + 8 * n + t));
    const __m512i va = Q6KValues<kA>(ql, qh), vb = Q6KValues<kA + 2>(ql, qh);
    for (size_t m = 0; m < kM; ++m) {
      const auto* xd = reinterpret_cast<const int32_t*>(x[m][i].qs) + 32 * n + t;
      lo[m] = DotU8Broadcast(lo[m], va, xd + 8 * kA);
      hi[m] = DotU8Broadcast(hi[m], vb, xd + 8 * (kA + 2));
    }
  }
  const __m512i sa = Q6KScale(b, static_cast<uint32_t>(8 * n + is + 2 * kA));
  const __m512i sb = Q6KScale(b, static_cast<uint32_t>(8 * n + is + 2 * (kA + 2)));
  for (size_t m = 0; m < kM; ++m) {
    total[m] = _mm512_add_epi32(total[m], _mm512_mullo_epi32(lo[m], sa));
    total[m] = _mm512_add_epi32(total[m], _mm512_mullo_epi32(hi[m], sb));
  }
}

template <size_t kM>
HWY_INLINE void Q6KGroupSuperBlock(const uint8_t* HWY_RESTRICT b, const ActQ8K* const* x, size_t i, __m512* acc) {
  __m512i total[kM];
  for (size_t m = 0; m < kM; ++m) total[m] = _mm512_setzero_si512();
  for (size_t n = 0; n < 2; ++n) {
    for (size_t is = 0; is < 2; ++is) {
      Q6KKinds<kM, 0>(b, x, i, n, is, total);
      Q6KKinds<kM, 1>(b, x, i, n, is, total);
    }
  }
  __m512i pairs[8];
  for (uint32_t h = 0; h < 8; ++h) pairs[h] = Q6KScalePair(b, h);
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * 52)));
  for (size_t m = 0; m < kM; ++m) {
    const auto* sums = reinterpret_cast<const int32_t*>(x[m][i].sums);
    __m512i offsets = _mm512_setzero_si512();
    for (uint32_t h = 0; h < 8; ++h) offsets = DotI16Broadcast(offsets, pairs[h], sums + h);
    const __m512i exact = _mm512_sub_epi32(total[m], _mm512_slli_epi32(offsets, 5));
    acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(x[m][i].d)), _mm512_cvtepi32_ps(exact), acc[m]);
  }
}

// Q8_0: a group block is 8 lines and 32 bytes. Line k holds values 4k..4k + 3 of the 16
// rows' blocks, the last 32 bytes the rows' f16 d (InterleaveRows puts the d that leads
// each 34-byte block after its dwords). The weights go in as w + 128 (unsigned, the sign
// bit flipped), line k meets the activation dword k, and the sum starts from -128 times
// the block's 32 activations (ActQ8_0Group): exactly sum(w * x). Per block and activation
// row: 8 vpdpbusd, a convert, a multiply and an FMA for 16 rows, where the row-major
// kernel pays a convert, multiply and FMA per row and pair of blocks. bench/ops
// quant_matmul_bench, Zen 4, 1 thread, K = 1024 N = 3072, from cache GFLOP/s, row-major ->
// interleaved: GEMV 87 -> 167, 4 rows 103 -> 297, 8 rows 104 -> 304. Decode of Qwen3-0.6B
// Q8_0 (tok/s, alternated with the row-major build): 1 thread 40.4-42.0 -> 43.3-45.0, 2
// threads 45.3-50.1 -> 51.5-61.3; 8 sequences on 2 threads 128 -> 231
// (docs/PERFORMANCE.md). More prefetch distance (1088, 2176 bytes) did not help.
// Until session 21 the d stayed in front (line 0: d and values 0, 1): each line met the
// activation dword 2 bytes early, 9 vpdpbusd per block and row. d behind, GFLOP/s (best
// of a run, 2 runs alternated): 8 rows from DRAM 298-300 -> 337-338, from cache 306 ->
// 339-340; 4 rows from cache 294-295 -> 328-332; GEMV level (from DRAM 63-67 -> 68).
// Qwen3-0.6B Q8_0, 1 thread, 8 sequences, tok/s, alternated: 200-203 -> 219-222.
struct ActQ8_0Group {
  const int8_t* qs;
  const float* d;
  const int32_t* block_offsets;  // -128 (Q8_0), -8 (Q4_0) or -16 (Q5_0) times the sum of each block's values
  const float* sums;             // d times the sum of each block's values (Q4_1/Q5_1's m term)
};

// acc + the 16 int32 sums of 4 products of 64 unsigned bytes u with the 4 signed bytes at
// p (any alignment), broadcast.
struct Bytes4 {
  uint8_t b[4];
};
HWY_INLINE __m512i DotU8BroadcastAt(__m512i acc, __m512i u, const int8_t* p) {
  asm("vpdpbusd %[x]%{1to16%}, %[u], %[acc]"
      : [acc] "+v"(acc)
      : [u] "v"(u), [x] "m"(*reinterpret_cast<const Bytes4*>(p)));
  return acc;
}

template <size_t kM>
HWY_INLINE void Q8_0GroupBlock(const uint8_t* HWY_RESTRICT b, const ActQ8_0Group* x, size_t i, __m512* acc) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i w[8];
  for (size_t k = 0; k < 8; ++k) w[k] = _mm512_xor_si512(Load64(b + 64 * k), flip);
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * 8)));
  for (size_t m = 0; m < kM; ++m) {
    const int8_t* q = x[m].qs + 32 * i;
    __m512i sum = _mm512_set1_epi32(x[m].block_offsets[i]);
    for (size_t k = 0; k < 8; ++k) sum = DotU8BroadcastAt(sum, w[k], q + 4 * k);
    acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(x[m].d[i])), _mm512_cvtepi32_ps(sum), acc[m]);
  }
}

// Q4_0: a group block is 4 lines and 32 bytes. Line k holds qs bytes 4k..4k + 3 of the
// 16 rows' blocks, the last 32 bytes their f16 d (InterleaveRows puts the d that leads
// each 18-byte block after its dwords). The low nibble of qs byte j is value j, the high
// one value j + 16 (0..15, standing for q - 8), so each line gives two registers, low and
// high nibbles, that meet activation dwords k and k + 4. The sum starts from -8 times the
// block's activations (ActQ8_0Group): exactly sum((q - 8) x). Per block and activation
// row: 8 vpdpbusd, a convert, a multiply and an FMA for 16 rows. bench/ops
// quant_matmul_bench, Zen 4, 1 thread, K = 1024 N = 3072, GFLOP/s, row-major ->
// interleaved: GEMV from cache 67 -> 166, from DRAM 66 -> 97 (19 -> 28 GB/s: the row-major
// kernel's reductions were the limit); 8 rows 85 -> 272 from cache, 79 -> 253 from DRAM.
// Qwen3-0.6B Q4_0, tok/s, alternated: decode 1 thread 55.0-55.6 -> 71.1-74.0, 2 threads
// 73.9-78.1 -> 77.3-79.9; 8 sequences 1 thread 83-84 -> 180-181, 2 threads 143-147 ->
// 275-315; pp512 1 thread 174-181 -> 170-174 (the prefill copies groups back to rows).
// Q5_0 (22 bytes: d, the qh dword, qs; 5 lines and 32 bytes): line 0 holds the rows' qh
// (bit j: the fifth bit of value j), lines 1-4 the qs bytes, the last 32 bytes d: Q5_1's
// layout with d behind instead of d and m in front. The sum starts from -16 times the
// block's activations. quant_matmul_bench (medians of 3), row-major -> interleaved: GEMV
// from cache 58 -> 118, from DRAM 54 -> 78; 8 rows 84 -> 242. Qwen3-0.6B Q5_0, tok/s,
// alternated: decode 1 thread 40.7-41.9 -> 59.4-60.2 (96-98% of the limit), 2 threads
// 70-78 -> 92-94; 8 sequences 1 thread 75-76 -> 167-168, 2 threads 132-142 -> 238-239;
// pp512 1 thread 179-182 -> 176-177.
// Until session 21 the d stayed in front (line 0: d and qs bytes 0, 1), so each line met
// the activation dwords 2 bytes early and the tail's two bytes took two more registers:
// 10 vpdpbusd per block and row. d behind, GFLOP/s as Q8_0's: GEMV from cache Q4_0 181 ->
// 211, Q5_0 122 -> 163-165; 8 rows from DRAM Q4_0 280 -> 339, Q5_0 253 -> 310; 4 rows
// from DRAM Q4_0 268 -> 303, Q5_0 227 -> 273. Qwen3-0.6B, 1 thread, 8 sequences, tok/s:
// Q4_0 183-187 -> 205-210, Q5_0 172-175 -> 192-199.
//
// nibbles + 16 in the bytes whose fifth bit is set: byte p of each row's dword holds
// value first + p, whose fifth bit is bit first + p of the row's qh dword. A qword holds
// two rows' bytes and qh dwords, and vpshufbitqmb gives each byte the bit of its qword
// that its control byte names.
HWY_INLINE __m512i AddFifthBits(__m512i nibbles, __m512i qh, int first) {
  uint64_t select = 0;
  for (int p = 0; p < 4; ++p) {
    const auto bit = static_cast<uint64_t>(first + p);
    select |= bit << (8 * p) | (bit + 32) << (8 * (p + 4));
  }
  const __mmask64 set = _mm512_bitshuffle_epi64_mask(qh, _mm512_set1_epi64(static_cast<long long>(select)));
  return _mm512_mask_add_epi8(nibbles, set, nibbles, _mm512_set1_epi8(0x10));
}

// A line of qs bytes 4k..4k + 3 of Q4_0, Q4_1, Q5_0 or Q5_1 as low and high nibbles,
// values 4k..4k + 3 and 16 on of each row, with their fifth bits (kQ5, from the group
// block's qh line).
template <bool kQ5>
HWY_INLINE void SplitNibbles(__m512i line, __m512i qh, size_t k, __m512i* lo, __m512i* hi) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  *lo = _mm512_and_si512(line, low4);
  *hi = _mm512_and_si512(_mm512_srli_epi16(line, 4), low4);
  if constexpr (kQ5) {
    *lo = AddFifthBits(*lo, qh, static_cast<int>(4 * k));
    *hi = AddFifthBits(*hi, qh, static_cast<int>(16 + 4 * k));
  }
}

// sum + the 16 rows' dots of the nibble registers lo, hi (values 4k.. and 16 + 4k.. of
// a block's 32) with the block's activations q.
HWY_INLINE __m512i NibbleDots(__m512i sum, const __m512i* lo, const __m512i* hi, const int8_t* q) {
  for (size_t k = 0; k < 4; ++k) {
    sum = DotU8BroadcastAt(sum, lo[k], q + 4 * k);
    sum = DotU8BroadcastAt(sum, hi[k], q + 16 + 4 * k);
  }
  return sum;
}

template <size_t kM, bool kQ5>
HWY_INLINE void Q40Q50GroupBlock(const uint8_t* HWY_RESTRICT b, const ActQ8_0Group* x, size_t i, __m512* acc) {
  constexpr size_t kFirstQs = kQ5 ? 1 : 0;  // the line of qs bytes 0..3
  const __m512i qh = kQ5 ? Load64(b) : _mm512_setzero_si512();
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * (kFirstQs + 4))));
  __m512i lo[4], hi[4];
  for (size_t k = 0; k < 4; ++k) SplitNibbles<kQ5>(Load64(b + 64 * (kFirstQs + k)), qh, k, &lo[k], &hi[k]);
  for (size_t m = 0; m < kM; ++m) {
    const __m512i sum = NibbleDots(_mm512_set1_epi32(x[m].block_offsets[i]), lo, hi, x[m].qs + 32 * i);
    acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(x[m].d[i])), _mm512_cvtepi32_ps(sum), acc[m]);
  }
}

// Q4_1: a group block is 5 lines, no tail. Blocks are 20 bytes, 5 whole dwords: line 0
// holds each row's f16 d and f16 m, line k (1-4) its qs bytes 4k - 4..4k - 1, whose low
// nibbles are values 4k - 4..4k - 1 and high ones values 16 on (q in 0..15 standing for
// d q + m). The nibbles meet the activation dwords in place (8 vpdpbusd); m meets d times
// the sum of the block's activations (ActQ8_0Group::sums): exactly sum((d q + m) x).
// Q5_1 (24 bytes, 6 lines): the same with line 1 each row's qh dword (bit j: the fifth bit
// of value j), added to the nibbles by a vpshufbitqmb and a masked vpaddb per register.
// bench/ops quant_matmul_bench, Zen 4, 1 thread, K = 1024 N = 3072, GFLOP/s (median of 3),
// row-major -> interleaved: Q4_1 GEMV from cache 52 -> 192, from DRAM 51 -> 100; 4 rows 75
// -> 272, 8 rows 74 -> 299 (from DRAM). Qwen3-0.6B Q4_1, `oko bench -t 1`, tok/s,
// alternated: decode 43-44 -> 64-67, 8 sequences 72 -> 186-195; pp512 175-179 -> 171-172
// (the prefill copies groups back to rows). Q5_1, medians of 3 (the neighbour busy): GEMV
// from cache 45 -> 116, from DRAM 34 -> 65, 8 rows 70 -> 247; Qwen3-0.6B Q5_1 1 thread:
// decode 33-38 -> 51.4-51.5, 8 sequences 60-64 -> 165-171, pp512 177-180 -> 164-172.
template <size_t kM, bool kQ5>
HWY_INLINE void Q41Q51GroupBlock(const uint8_t* HWY_RESTRICT b, const ActQ8_0Group* x, size_t i, __m512* acc) {
  const __m512i line0 = Load64(b);
  const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(line0));
  const __m512 mins = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(line0, 16)));
  constexpr size_t kFirstQs = kQ5 ? 2 : 1;  // the line of qs bytes 0..3
  const __m512i qh = kQ5 ? Load64(b + 64) : _mm512_setzero_si512();
  __m512i lo[4], hi[4];
  for (size_t k = 0; k < 4; ++k) SplitNibbles<kQ5>(Load64(b + 64 * (kFirstQs + k)), qh, k, &lo[k], &hi[k]);
  for (size_t m = 0; m < kM; ++m) {
    const __m512i sum = NibbleDots(_mm512_setzero_si512(), lo, hi, x[m].qs + 32 * i);
    acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(x[m].d[i])), _mm512_cvtepi32_ps(sum), acc[m]);
    acc[m] = _mm512_fmadd_ps(mins, _mm512_set1_ps(x[m].sums[i]), acc[m]);
  }
}

// How far ahead a group kernel asks for its weights depends on how long it spends on a
// block. One activation row reads as fast as memory allows and the hardware prefetcher
// keeps up; lines 256 bytes ahead into L1 help it. `oko bench -m` Qwen3-0.6B Q4_K_M `-t 1`,
// Zen 4, tok/s, one sequence / 8 sequences, alternated over 3-4 rounds, bytes ahead: none
// 35-37 / 118-124, 128 61-66 / 121-150, 256 59-67 / 127-149, 512 47-52 / 104-148, 1024
// 42-53 / 92-129.
constexpr size_t kGroupPrefetchBytes = 256;
// A tile of 5-8 rows spends 5-8 times longer per block, memory sits idle, and lines a few
// blocks ahead were not asked for yet: each line then waited on memory. Such tiles ask
// for the lines 512 columns ahead (2 super-blocks, 16 blocks of 32) into L2 (hint T1; T0
// one block ahead gave 8 rows of Q4_K 213, T1 there 285). quant_matmul_bench from DRAM, 1
// thread, K = 1024 N = 3072, GFLOP/s median of 5, 256 bytes (T0) -> 512 columns (T1): 8
// rows Q4_K 229 -> 302, Q6_K 151 -> 222, Q8_0 151 -> 277 (from cache: 318, 253, 291); 4
// rows Q4_K 265 -> 277, Q8_0 168 -> 207, Q6_K 203 -> 193; 2 rows lost (Q4_K 185 -> 158)
// and one row lost more (Q8_0 57 -> 38), so they keep the near distance. Batches of
// Qwen3-0.6B, tok/s, 1 / 2 threads: Q4_K_M x8 144 -> 193 / 237 -> 316, Q8_0 x8 108 -> 197
// / 206 -> 303. Tiles of 4 rows kept the near distance once the Q8_0, Q4_0 and Q5_0
// kernels lost their misaligned dots (session 21; best of a run, 2 runs, far -> near):
// Q8_0 199-215 -> 252-256, Q4_0 305-306 -> 327-330, Q6_K 200-202 -> 237-239, Q4_1 290 ->
// 299-300, Q4_K 314-315 -> 319-320, Q5_0, Q5_1, Q5_K level.
// In the model the k-quants' 4-row tiles wait on memory with the near distance (perf: a
// third of Q6_K's samples on the first loads of a super-block and on the prefetches), so
// they take the far one: Qwen3-0.6B Q4_K_M, 4 sequences, tok/s, 1 thread, 2-4 rounds
// alternated in each of four runs, near -> far (512, 1024 and 2048 columns level among
// them): 129-141 -> 146-159, 121-131 -> 143-170, 141-150 -> 164-176, 155-167 -> 159-175;
// 2 threads 225-246 -> 231-268. Q8_0's 4 rows stayed level (91-119 -> 103-124); 2 and 3
// rows of Q4_K_M lost (3 rows 135-161 -> 135-144).
// Q6_K's 4-row tiles take the far distance too, except on Zen 4 (OnZen4 below): there
// the near one read faster (session 25: why Q6_K differs there, with its 53-line
// super-block against Q4_K's 36, is not known). quant_matmul_bench from DRAM, 1 thread,
// far -> near: Zen 4, best of 3 in each of 3 alternated rounds, K = 1024 N = 3072 194-196
// -> 228-230 GFLOP/s, K = 3072 N = 1024 179-185 -> 171-174; Qwen3-0.6B Q4_K_M (Q6_K
// lm_head), 4 sequences, 1 thread, `oko profile -p 1 -n 32 --parallel 4`, alternated
// twice: lm_head 220 -> 193-194 ms, decode 173-174 -> 180-181 tok/s. Zen 5 (the 512-bit
// datapaths go through a block in about half the time), medians of 3 in 2 alternated
// rounds, GB/s: K = 1024 N = 3072 26.3-27.7 -> 22.3-23.3, K = 3072 N = 1024 26.0-27.5 ->
// 17.0-17.1; the profile above, 3 alternated rounds: lm_head 141-160 -> 149-173 ms,
// down_proj 72-80 -> 81-86, decode 235-261 -> 222-251 tok/s.
constexpr size_t TiledPrefetchRows(QuantType type) {
  return type == QuantType::kQ4_K || type == QuantType::kQ5_K || type == QuantType::kQ6_K ? 4 : 5;
}
constexpr size_t kTiledPrefetchColumns = 512;

template <QuantType T, size_t kM, bool kFar = (kM >= TiledPrefetchRows(T))>
HWY_INLINE void PrefetchAhead(const uint8_t* block) {
  constexpr size_t kBytes = GroupBlockBytes(T);
  if constexpr (kFar) {
    constexpr size_t kAhead = kBytes * kTiledPrefetchColumns / GroupBlockValues(T);
    for (size_t line = 0; line < kBytes; line += 64)
      _mm_prefetch(reinterpret_cast<const char*>(block + kAhead + line), _MM_HINT_T1);
  } else {
    for (size_t line = 0; line < kBytes; line += 64) hwy::Prefetch(block + kGroupPrefetchBytes + line);
  }
}

// AMD family 19h with AVX-512 (the group kernels' target): Zen 4, whose 512-bit operations
// take two passes through 256-bit datapaths.
HWY_INLINE bool OnZen4() {
  static const bool zen4 = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(0, &a, &b, &c, &d) == 0) return false;
    const bool amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;  // "AuthenticAMD"
    if (!amd || __get_cpuid(1, &a, &b, &c, &d) == 0) return false;
    const unsigned family = (a >> 8 & 0xF) + (a >> 20 & 0xFF);  // base + extended (base 0xF)
    return family == 0x19;
  }();
  return zen4;
}

// An activation row as a group kernel of format T reads it.
template <QuantType T>
using GroupAct = std::conditional_t<GroupBlockValues(T) == 32, ActQ8_0Group, const ActQ8K*>;

// out[m][r] = row r of the group at `group` times activation row x[m], m < kM.
template <QuantType T, size_t kM, bool kFar = (kM >= TiledPrefetchRows(T))>
HWY_INLINE void GroupDots(const uint8_t* HWY_RESTRICT group, const GroupAct<T>* x, size_t nb, __m512* out) {
  for (size_t m = 0; m < kM; ++m) out[m] = _mm512_setzero_ps();
  for (size_t i = 0; i < nb; ++i) {
    const uint8_t* b = group + i * GroupBlockBytes(T);
    PrefetchAhead<T, kM, kFar>(b);
    if constexpr (T == QuantType::kQ4_K || T == QuantType::kQ5_K) {
      Q4KGroupSuperBlock<kM, T == QuantType::kQ5_K>(b, x, i, out);
    } else if constexpr (T == QuantType::kQ6_K) {
      Q6KGroupSuperBlock<kM>(b, x, i, out);
    } else if constexpr (T == QuantType::kQ4_0 || T == QuantType::kQ5_0) {
      Q40Q50GroupBlock<kM, T == QuantType::kQ5_0>(b, x, i, out);
    } else if constexpr (T == QuantType::kQ4_1 || T == QuantType::kQ5_1) {
      Q41Q51GroupBlock<kM, T == QuantType::kQ5_1>(b, x, i, out);
    } else {
      Q8_0GroupBlock<kM>(b, x, i, out);
    }
  }
}

// How far a 32-block format's unsigned weight bytes in the group kernels stand above the
// values they mean: Q8_0's w + 128, Q4_0's q (q - 8), Q5_0's q (q - 16); Q4_1 and Q5_1 mean
// d q + m, their offset is m's term.
template <QuantType T>
constexpr int32_t GroupValueBias() {
  return T == QuantType::kQ8_0 ? 128 : T == QuantType::kQ4_0 ? 8 : T == QuantType::kQ5_0 ? 16 : 0;
}

// The a.M activation rows at xq (xb bytes each) as the group kernel of T reads them; the
// 32-blocks' offsets (-GroupValueBias times each block's sum) go to `block_offsets`, nb
// per row.
template <QuantType T>
void GroupActivations(const uint8_t* xq, size_t xb, size_t M, size_t K, std::vector<GroupAct<T>>& acts,
                      std::vector<int32_t>& block_offsets) {
  acts.resize(M);
  if constexpr (GroupBlockValues(T) == 32) {
    const size_t nb = K / 32;
    constexpr int32_t kBias = GroupValueBias<T>();
    if (kBias != 0) block_offsets.resize(M * nb);
    for (size_t m = 0; m < M; ++m) {
      const ActQ8_0 row = ActQ8_0Row(xq + m * xb, K);
      int32_t* sums = kBias != 0 ? block_offsets.data() + m * nb : nullptr;
      for (size_t i = 0; kBias != 0 && i < nb; ++i) {
        int32_t offset = 0;  // -128 times the block's sum
        for (size_t j = 0; j < 8; ++j) offset += row.offsets[8 * i + j];
        sums[i] = offset / (128 / kBias);  // exact: a multiple of 128
      }
      acts[m] = {row.qs, row.d, sums, row.sums};
    }
  } else {
    for (size_t m = 0; m < M; ++m) acts[m] = reinterpret_cast<const ActQ8K*>(xq + m * xb);
  }
}

// Rows [n_begin, n_end) of y for every activation row (xq: a.M rows of xb bytes), the
// weights in groups of 16 rows, tiles of up to 8 activation rows per pass over a group.
template <QuantType T>
void GemmInterleaved(const QuantMatMulArgs& a, const uint8_t* xq, size_t xb, size_t n_begin, size_t n_end) {
  const size_t nb = a.w.cols / QuantBlock(T);
  const auto* base = reinterpret_cast<const uint8_t*>(a.w.data);
  thread_local std::vector<GroupAct<T>> acts;
  thread_local std::vector<int32_t> block_offsets;
  GroupActivations<T>(xq, xb, a.M, a.w.cols, acts, block_offsets);
  constexpr size_t kTile = 8;
  for (size_t g = n_begin / kGroupRows * kGroupRows; g < n_end; g += kGroupRows) {
    const uint8_t* group = base + g / kGroupRows * nb * GroupBlockBytes(T);
    const size_t lo = std::max(g, n_begin) - g, hi = std::min(g + kGroupRows, n_end) - g;
    const __mmask16 keep = static_cast<__mmask16>((1u << hi) - (1u << lo));
    const __m512 bias = a.bias != nullptr ? _mm512_maskz_loadu_ps(keep, a.bias + g) : _mm512_setzero_ps();
    for (size_t m0 = 0; m0 < a.M; m0 += kTile) {
      const size_t rows = std::min(kTile, a.M - m0);
      const GroupAct<T>* x = acts.data() + m0;
      __m512 dots[kTile];
      WithRows<kTile>(rows, [&](auto m) {
        constexpr size_t kM = decltype(m)::value;
        if constexpr (T == QuantType::kQ6_K && kM == TiledPrefetchRows(T)) {
          if (OnZen4()) return GroupDots<T, kM, false>(group, x, nb, dots);
        }
        GroupDots<T, kM>(group, x, nb, dots);
      });
      for (size_t m = 0; m < rows; ++m)
        _mm512_mask_storeu_ps(a.y + (m0 + m) * a.y_stride + g, keep, _mm512_add_ps(dots[m], bias));
    }
  }
}
#endif  // OKO_VNNI

// Rows [n_begin, n_end) of y for all M activation rows, each weight row read once and
// multiplied with tiles of up to Int8Rows(T) activation rows. The activations: a.xq
// (M rows quantized by the caller, once per call), or quantized here.
template <QuantType T>
void GemmInt8Typed(const QuantMatMulArgs& a, size_t n_begin, size_t n_end) {
  const size_t K = a.w.cols, rb = a.w.row_bytes(), xb = Int8ActivationBytes(T, K);
  const auto* base = reinterpret_cast<const uint8_t*>(a.w.data);
  thread_local std::vector<uint8_t> xq_buf;
  const auto* xq = static_cast<const uint8_t*>(a.xq);
  if (xq == nullptr) {
    uint8_t* rows = Int8ActivationRows(xq_buf, T, K, a.M);
    for (size_t m = 0; m < a.M; ++m) QuantizeInt8Activations(T, a.x + m * a.x_stride, K, rows + m * xb);
    xq = rows;
  }
#if OKO_VNNI
  if constexpr (HasGroupKernel(T)) {
    if (a.w.interleave == kGroupRows) return GemmInterleaved<T>(a, xq, xb, n_begin, n_end);
  }
#endif
  const auto store = [&](size_t m, size_t n, float dot) {
    a.y[m * a.y_stride + n] = dot + (a.bias != nullptr ? a.bias[n] : 0.0f);
  };
  alignas(16) float dots[4];
  if (a.M == 1) {
    size_t n = n_begin;
    if constexpr (HasStreams(T)) {
      constexpr size_t kStreams = IsKQuant(T) ? kKStreams : kQ8Streams;
      static_assert(kStreams == 4);  // one Hsum4
      const size_t part = (n_end - n_begin) / kStreams;
      for (; n < n_begin + part; ++n) {
        __m256 v[kStreams];
        StreamDots<T>(base, rb, n, part, xq, K, v);
        _mm_store_ps(dots, Hsum4(v[0], v[1], v[2], v[3]));
        for (size_t r = 0; r < kStreams; ++r) store(0, n + r * part, dots[r]);
      }
      n = n_begin + kStreams * part;
    }
    for (; n + 4 <= n_end; n += 4) {
      __m256 v[4];
      for (size_t r = 0; r < 4; ++r) Int8RowDots<T, 1>(base + (n + r) * rb, &xq, K, &v[r]);
      _mm_store_ps(dots, Hsum4(v[0], v[1], v[2], v[3]));
      for (size_t r = 0; r < 4; ++r) store(0, n + r, dots[r]);
    }
    for (; n < n_end; ++n) {
      __m256 v;
      Int8RowDots<T, 1>(base + n * rb, &xq, K, &v);
      store(0, n, _mm_cvtss_f32(Hsum4(v, v, v, v)));
    }
    return;
  }
  constexpr size_t kTile = Int8Rows(T);
  static_assert(kTile % 4 == 0);
  for (size_t n = n_begin; n < n_end; ++n) {
    for (size_t m0 = 0; m0 < a.M; m0 += kTile) {
      const size_t rows = std::min(kTile, a.M - m0);
      const uint8_t* x[kTile] = {};
      for (size_t m = 0; m < rows; ++m) x[m] = xq + (m0 + m) * xb;
      __m256 v[kTile];
      WithRows<kTile>(rows, [&](auto m) { Int8RowDots<T, decltype(m)::value>(base + n * rb, x, K, v); });
      for (size_t m = rows; m < kTile; ++m) v[m] = v[0];
      for (size_t q = 0; q < rows; q += 4) {
        _mm_store_ps(dots, Hsum4(v[q], v[q + 1], v[q + 2], v[q + 3]));
        for (size_t m = q; m < std::min(rows, q + 4); ++m) store(m0 + m, n, dots[m - q]);
      }
    }
  }
}
#endif  // AVX2 int8

bool QuantInt8SupportedT(QuantType type) {
#ifdef OKO_QUANT_INT8
  return IsBlockQuant(type);
#else
  (void)type;
  return false;
#endif
}

// Runs the int8 kernels where a asks for them and they exist; returns false otherwise.
template <QuantType T>
HWY_INLINE bool RanInt8(const QuantMatMulArgs& a, size_t n_begin, size_t n_end) {
#ifdef OKO_QUANT_INT8
  if constexpr (T != QuantType::kF32 && T != QuantType::kF16 && T != QuantType::kBF16) {
    if (a.compute == QuantCompute::kInt8) {
      GemmInt8Typed<T>(a, n_begin, n_end);
      return true;
    }
  }
#endif
  (void)a, (void)n_begin, (void)n_end;
  return false;
}

// Whether the kernel of this call reads the interleaved layout of a.w itself.
template <QuantType T>
bool ReadsInterleaved(const QuantMatMulArgs& a) {
#if OKO_VNNI
  return HasGroupKernel(T) && a.compute == QuantCompute::kInt8 && a.w.interleave == kGroupRows;
#else
  (void)a;
  return false;
#endif
}

// w's rows [n_begin, n_end), interleaved, one group at a time as row-major rows in a
// buffer of the thread: fn(row-major view of rows [n0, n1), n0).
template <typename Fn>
void ByRowMajorGroups(const WeightView& w, size_t n_begin, size_t n_end, Fn fn) {
  thread_local std::vector<std::byte> rows;
  const size_t group = w.interleave, rb = w.row_bytes();
  if (rows.size() < group * rb) rows.resize(group * rb);
  for (size_t n0 = n_begin; n0 < n_end;) {
    const size_t n1 = std::min(n_end, (n0 / group + 1) * group);
    CopyRowMajorRows(w, n0, n1, rows.data());
    fn(WeightView{w.type, rows.data(), n1 - n0, w.cols, (n1 - n0) * rb}, n0);
    n0 = n1;
  }
}

// Interleaved weights where the kernel reads row-major rows: `kernel` on each group's
// rows copied back.
template <typename Kernel>
void OnRowMajorRows(const QuantMatMulArgs& a, size_t n_begin, size_t n_end, Kernel kernel) {
  ByRowMajorGroups(a.w, n_begin, n_end, [&](const WeightView& rows, size_t n0) {
    QuantMatMulArgs b = a;
    b.w = rows;
    b.y = a.y + n0;
    b.bias = a.bias != nullptr ? a.bias + n0 : nullptr;
    kernel(b, 0, rows.rows);
  });
}

template <QuantType T>
void GemvTyped(const QuantMatMulArgs& a, size_t n_begin, size_t n_end) {
  if (a.w.interleave > 1 && !ReadsInterleaved<T>(a)) return OnRowMajorRows(a, n_begin, n_end, GemvTyped<T>);
  if (RanInt8<T>(a, n_begin, n_end)) return;
  const auto* base = reinterpret_cast<const uint8_t*>(a.w.data);
  const size_t rb = a.w.row_bytes(), K = a.w.cols;
  for (size_t n = n_begin; n < n_end; ++n) {
    const float s = RowDot<T>(base + n * rb, a.x, K);
    a.y[n] = s + (a.bias != nullptr ? a.bias[n] : 0.0f);
  }
}

template <QuantType T>
void DequantRowsTyped(const WeightView& w, size_t n_begin, size_t n_end, float* out) {
  if (w.interleave > 1) {
    return ByRowMajorGroups(w, n_begin, n_end, [&](const WeightView& rows, size_t n0) {
      DequantRowsTyped<T>(rows, 0, rows.rows, out + (n0 - n_begin) * w.cols);
    });
  }
  const auto* base = reinterpret_cast<const uint8_t*>(w.data);
  const size_t rb = w.row_bytes(), K = w.cols;
  HWY_ALIGN float buf[kChunk];
  for (size_t n = n_begin; n < n_end; ++n, out += K) {
    for (size_t k0 = 0; k0 < K; k0 += kChunk) {
      const size_t len = std::min(kChunk, K - k0);
      DequantChunk<T>(base + n * rb, k0, len, buf);
      std::memcpy(out + k0, buf, len * sizeof(float));
    }
  }
}

// kN dequantized weight rows (w, K floats each, row stride K) times kM activation rows:
// kN*kM accumulators, kN + kM loads per kN*kM FMAs (3x3 fits AVX2's 16 registers).
template <size_t kN, size_t kM>
HWY_INLINE void TileFromRows(const QuantMatMulArgs& a, const float* HWY_RESTRICT w, size_t n0,
                             size_t m0) {
  const DF df;
  const size_t N = hn::Lanes(df), K = a.w.cols;
  hn::Vec<DF> acc[kN][kM];
  for (size_t n = 0; n < kN; ++n)
    for (size_t m = 0; m < kM; ++m) acc[n][m] = hn::Zero(df);
  const float* xm[kM];
  for (size_t m = 0; m < kM; ++m) xm[m] = a.x + (m0 + m) * a.x_stride;
  for (size_t k = 0; k < K; k += N) {  // K is a multiple of 32 >= N
    hn::Vec<DF> wv[kN];
    for (size_t n = 0; n < kN; ++n) wv[n] = hn::LoadU(df, w + n * K + k);
    for (size_t m = 0; m < kM; ++m) {
      const auto xv = hn::LoadU(df, xm[m] + k);
      for (size_t n = 0; n < kN; ++n) acc[n][m] = hn::MulAdd(wv[n], xv, acc[n][m]);
    }
  }
  for (size_t n = 0; n < kN; ++n) {
    const float bias = a.bias != nullptr ? a.bias[n0 + n] : 0.0f;
    for (size_t m = 0; m < kM; ++m)
      a.y[(m0 + m) * a.y_stride + n0 + n] = hn::GetLane(hn::SumOfLanes(df, acc[n][m])) + bias;
  }
}

template <size_t kN>
HWY_INLINE void TilesOverM(const QuantMatMulArgs& a, const float* HWY_RESTRICT w, size_t n0) {
  size_t m = 0;
  for (; m + 3 <= a.M; m += 3) TileFromRows<kN, 3>(a, w, n0, m);
  if (a.M - m == 2) TileFromRows<kN, 2>(a, w, n0, m);
  if (a.M - m == 1) TileFromRows<kN, 1>(a, w, n0, m);
}

// M > 1, exact: 3 weight rows at a time are dequantized once into a buffer of the
// thread, then multiplied with every activation row in 3x3 tiles.
template <QuantType T>
void GemmTyped(const QuantMatMulArgs& a, size_t n_begin, size_t n_end) {
  if (a.w.interleave > 1 && !ReadsInterleaved<T>(a)) return OnRowMajorRows(a, n_begin, n_end, GemmTyped<T>);
  if (RanInt8<T>(a, n_begin, n_end)) return;
  if (a.M == 1) return GemvTyped<T>(a, n_begin, n_end);
  constexpr size_t kRows = 3;
  thread_local std::vector<float> rows_buf;
  if (rows_buf.size() < kRows * a.w.cols) rows_buf.resize(kRows * a.w.cols);
  float* w = rows_buf.data();
  for (size_t n = n_begin; n < n_end; n += kRows) {
    const size_t rows = std::min(kRows, n_end - n);
    DequantRowsTyped<T>(a.w, n, n + rows, w);
    if (rows == 3) TilesOverM<3>(a, w, n);
    if (rows == 2) TilesOverM<2>(a, w, n);
    if (rows == 1) TilesOverM<1>(a, w, n);
  }
}

// ---- activations for the int8 kernels, vectorized; bit for bit the scalar references ----
// (the scalar ones took ~4.5% of a 4-sequence Q8_0 decode step, on the calling thread
// while the other threads waited; perf, Zen 2, 2 threads.)

// roundf: to nearest, halves away from zero (v - Trunc(v) is exact).
HWY_INLINE hn::Vec<DF> RoundHalfAway(hn::Vec<DF> v) {
  const DF df;
  const auto t = hn::Trunc(v);
  const auto away = hn::Abs(hn::Sub(v, t)) >= hn::Set(df, 0.5f);
  return hn::IfThenElse(away, hn::Add(t, hn::CopySign(hn::Set(df, 1.0f), v)), t);
}

HWY_INLINE float AbsMax(const float* HWY_RESTRICT x, size_t n) {
  const DF df;
  auto amax = hn::Zero(df);
  for (size_t j = 0; j < n; j += hn::Lanes(df)) amax = hn::Max(amax, hn::Abs(hn::LoadU(df, x + j)));
  return hn::GetLane(hn::MaxOfLanes(df, amax));
}

// offsets[k] = -128 times the sum of the values qs[4k .. 4k + 3], k < K / 4 (K a multiple
// of 32). A pass of its own after the row's blocks: read back right after their stores,
// the bytes waited on store forwarding. perf of `oko bench -t 2 --parallel 8`, Qwen3-0.6B
// Q8_0, Zen 5: the quantization 2.22% -> 1.40% of the samples.
HWY_INLINE void Q8_0Offsets(const int8_t* HWY_RESTRICT qs, size_t K, int32_t* HWY_RESTRICT offsets) {
#ifdef OKO_QUANT_INT8
  const __m256i ones = _mm256_set1_epi8(1);
  for (size_t j = 0; j < K; j += 32) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + j));
    const __m256i sums = DotU8I8(_mm256_setzero_si256(), ones, q);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(offsets + j / 4),
                        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, 7)));
  }
#else
  for (size_t j = 0; j < K; j += 4) offsets[j / 4] = -128 * (qs[j] + qs[j + 1] + qs[j + 2] + qs[j + 3]);
#endif
}

// As QuantizeRow(kQ8_0) (ggml's quantize_row_q8_0_ref: d = max|x|/127 rounded to f16,
// q = roundf(x / d)), in the layout of Int8ActivationBytes: each block's d as f32,
// d * sum(q), the offsets, the values.
void QuantizeActivationsQ8_0(const float* HWY_RESTRICT x, size_t K, uint8_t* HWY_RESTRICT out) {
  const DF df;
  const DI di;
  const DI8 di8;
  float* sums = reinterpret_cast<float*>(out);
  float* d = sums + K / 32;
  int32_t* offsets = reinterpret_cast<int32_t*>(d + K / 32);
  int8_t* const values = reinterpret_cast<int8_t*>(offsets + K / 4);
  for (size_t b = 0; b < K / 32; ++b, x += 32) {
    int8_t* qs = values + 32 * b;
    const float scale = AbsMax(x, 32) / 127.0f;
    const auto inv = hn::Set(df, scale != 0.0f ? 1.0f / scale : 0.0f);
    auto sum = hn::Zero(di);
    for (size_t j = 0; j < 32; j += hn::Lanes(df)) {
      const auto q = hn::ConvertTo(di, RoundHalfAway(hn::Mul(hn::LoadU(df, x + j), inv)));
      sum = hn::Add(sum, q);
      hn::StoreU(hn::DemoteTo(di8, q), di8, qs + j);
    }
    d[b] = F16ToF32(F32ToF16(scale));
    sums[b] = d[b] * static_cast<float>(hn::GetLane(hn::SumOfLanes(di, sum)));
  }
  Q8_0Offsets(values, K, offsets);
}

// sums[g] = the sum of the values qs[16g .. 16g + 15], g < 16: in a pass after the
// row's values (as Q8_0Offsets), 8 groups a register, where a horizontal sum per group took most of
// the quantization's samples. perf of `oko bench -t 1 --parallel 8`, Qwen3-0.6B Q4_K_M,
// Zen 5: QuantizeActivationsQ8KT 1.14% -> 0.66-0.77% of the samples.
HWY_INLINE void Q8KGroupSums(const int8_t* HWY_RESTRICT qs, int16_t* HWY_RESTRICT sums) {
#ifdef OKO_QUANT_INT8
  const __m256i ones = _mm256_set1_epi8(1);
  for (size_t h = 0; h < 2; ++h, qs += 128, sums += 8) {
    __m256i fours[4];  // sums of each 4 values of 32
    for (size_t k = 0; k < 4; ++k) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * k));
      fours[k] = DotU8I8(_mm256_setzero_si256(), ones, q);
    }
    // Within each 128-bit lane, two horizontal adds leave the groups in the order 0 2 4 6 | 1 3 5 7.
    const __m256i pairs01 = _mm256_hadd_epi32(fours[0], fours[1]), pairs23 = _mm256_hadd_epi32(fours[2], fours[3]);
    const __m256i groups = _mm256_hadd_epi32(pairs01, pairs23);
    const __m256i ordered = _mm256_permutevar8x32_epi32(groups, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    const __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(ordered), _mm256_extracti128_si256(ordered, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(sums), packed);
  }
#else
  for (size_t g = 0; g < 16; ++g) {
    int sum = 0;
    for (size_t j = 0; j < 16; ++j) sum += qs[16 * g + j];
    sums[g] = static_cast<int16_t>(sum);
  }
#endif
}

// As QuantizeActivationsQ8K (ties to even, clamped to [-127, 127]).
void QuantizeActivationsQ8KT(const float* HWY_RESTRICT x, size_t K, ActQ8K* HWY_RESTRICT out) {
  const DF df;
  const DI di;
  const DI8 di8;
  const auto lo = hn::Set(di, -127), hi = hn::Set(di, 127);
  for (size_t i = 0; i < K / 256; ++i, x += 256) {
    const float amax = AbsMax(x, 256);
    out[i].d = amax / 127.0f;
    const auto inv = hn::Set(df, amax > 0.0f ? 127.0f / amax : 0.0f);
    for (size_t j = 0; j < 256; j += hn::Lanes(df)) {
      const auto r = hn::Round(hn::Mul(hn::LoadU(df, x + j), inv));
      const auto q = hn::Min(hn::Max(hn::ConvertTo(di, r), lo), hi);
      hn::StoreU(hn::DemoteTo(di8, q), di8, out[i].qs + j);
    }
  }
  for (size_t i = 0; i < K / 256; ++i) Q8KGroupSums(out[i].qs, out[i].sums);
}

void QuantizeInt8ActivationsT(QuantType type, const float* x, size_t K, void* out) {
  if (QuantBlock(type) == 256) {
    auto* blocks = static_cast<ActQ8K*>(out);
    QuantizeActivationsQ8KT(x, K, blocks);
    for (size_t i = 0; i < K / 256; ++i) {
      ActQ8K& b = blocks[i];
      if (type == QuantType::kQ6_K) {
        for (size_t g = 0; g < 16; ++g) b.dsums[g] = b.d * static_cast<float>(b.sums[g]);
      } else {
        PairSubBlocks(b.qs);
        for (size_t j = 0; j < 8; ++j) {
          b.sums32[j] = static_cast<int16_t>(b.sums[2 * j] + b.sums[2 * j + 1]);
          b.dsums[j] = b.d * static_cast<float>(b.sums32[j]);
        }
        std::fill(b.dsums + 8, b.dsums + 16, 0.0f);
      }
    }
    return;
  }
  QuantizeActivationsQ8_0(x, K, static_cast<uint8_t*>(out));
}

size_t QuantInterleaveRowsT(QuantType type) {
#if OKO_VNNI
  if (HasGroupKernel(type)) return kGroupRows;
#endif
  (void)type;
  return 1;
}

#define OKO_QUANT_SWITCH(type, FN, ...)                                  \
  switch (type) {                                                        \
    case QuantType::kF32: return FN<QuantType::kF32>(__VA_ARGS__);       \
    case QuantType::kF16: return FN<QuantType::kF16>(__VA_ARGS__);       \
    case QuantType::kBF16: return FN<QuantType::kBF16>(__VA_ARGS__);     \
    case QuantType::kQ8_0: return FN<QuantType::kQ8_0>(__VA_ARGS__);     \
    case QuantType::kQ4_0: return FN<QuantType::kQ4_0>(__VA_ARGS__);     \
    case QuantType::kQ4_1: return FN<QuantType::kQ4_1>(__VA_ARGS__);     \
    case QuantType::kQ5_0: return FN<QuantType::kQ5_0>(__VA_ARGS__);     \
    case QuantType::kQ5_1: return FN<QuantType::kQ5_1>(__VA_ARGS__);     \
    case QuantType::kQ4_K: return FN<QuantType::kQ4_K>(__VA_ARGS__);     \
    case QuantType::kQ5_K: return FN<QuantType::kQ5_K>(__VA_ARGS__);     \
    case QuantType::kQ6_K: return FN<QuantType::kQ6_K>(__VA_ARGS__);     \
  }

void GemvQuantRowsT(const QuantMatMulArgs& a, size_t n_begin, size_t n_end) {
  OKO_QUANT_SWITCH(a.w.type, GemvTyped, a, n_begin, n_end);
}
void GemmQuantRowsT(const QuantMatMulArgs& a, size_t n_begin, size_t n_end) {
  OKO_QUANT_SWITCH(a.w.type, GemmTyped, a, n_begin, n_end);
}
void DequantizeWeightRowsT(const WeightView& w, size_t n_begin, size_t n_end, float* out) {
  OKO_QUANT_SWITCH(w.type, DequantRowsTyped, w, n_begin, n_end, out);
}
#undef OKO_QUANT_SWITCH
#undef OKO_QUANT_INT8

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {

size_t Int8ActivationBytes(QuantType type, size_t K) {
  return QuantBlock(type) == 256 ? K / 256 * sizeof(ActQ8K)
                                 : 2 * K / 32 * sizeof(float) + K / 4 * sizeof(int32_t) + K;
}

bool SameInt8Activations(QuantType a, QuantType b) {
  if (QuantBlock(a) != QuantBlock(b)) return false;
  return QuantBlock(a) == 32 || (a == QuantType::kQ6_K) == (b == QuantType::kQ6_K);
}

uint8_t* Int8ActivationRows(std::vector<uint8_t>& buf, QuantType type, size_t K, size_t rows) {
  constexpr size_t kAlign = 64;
  const size_t bytes = rows * Int8ActivationBytes(type, K) + kAlign - 1;
  if (buf.size() < bytes) buf.resize(bytes);
  const auto address = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + (kAlign - address % kAlign) % kAlign;
}

void PairSubBlocks(int8_t* qs) {
  for (size_t j : {1, 5}) std::swap_ranges(qs + 32 * j, qs + 32 * j + 32, qs + 32 * PairedPosition(j));
}

namespace {
void CheckWeight(const WeightView& w, size_t n_begin, size_t n_end) {
  OKO_CHECK(w.cols % 32 == 0, "{} weight: K={} not a multiple of 32", QuantTypeName(w.type),
            w.cols);
  OKO_CHECK(w.nbytes >= w.rows * w.row_bytes(), "{} weight [{}, {}]: {} bytes, expected {}",
            QuantTypeName(w.type), w.rows, w.cols, w.nbytes, w.rows * w.row_bytes());
  OKO_CHECK(n_begin <= n_end && n_end <= w.rows, "rows [{}, {}) outside N={}", n_begin, n_end,
            w.rows);
  OKO_CHECK(w.interleave == 1 || (w.rows % w.interleave == 0 && IsBlockQuant(w.type)),
            "{} weight [{}, {}] interleaved in groups of {}", QuantTypeName(w.type), w.rows, w.cols,
            w.interleave);
}
}  // namespace

HWY_EXPORT(GemvQuantRowsT);
HWY_EXPORT(GemmQuantRowsT);
HWY_EXPORT(DequantizeWeightRowsT);
HWY_EXPORT(QuantInt8SupportedT);
HWY_EXPORT(QuantInterleaveRowsT);
HWY_EXPORT(QuantizeInt8ActivationsT);

void QuantizeInt8Activations(QuantType type, const float* x, size_t K, void* out) {
  OKO_CHECK(K % QuantBlock(type) == 0, "int8 activations: {} values, not a multiple of {}", K,
            QuantBlock(type));
  HWY_DYNAMIC_DISPATCH(QuantizeInt8ActivationsT)(type, x, K, out);
}

bool QuantInt8Supported(QuantType type) { return HWY_DYNAMIC_DISPATCH(QuantInt8SupportedT)(type); }
size_t QuantInterleaveRows(QuantType type) { return HWY_DYNAMIC_DISPATCH(QuantInterleaveRowsT)(type); }

void GemvQuantRows(const QuantMatMulArgs& a, size_t n_begin, size_t n_end) {
  CheckWeight(a.w, n_begin, n_end);
  OKO_CHECK(a.M == 1, "GemvQuantRows needs M == 1, got M={} (use GemmQuantRows)", a.M);
  HWY_DYNAMIC_DISPATCH(GemvQuantRowsT)(a, n_begin, n_end);
}

void GemmQuantRows(const QuantMatMulArgs& a, size_t n_begin, size_t n_end) {
  CheckWeight(a.w, n_begin, n_end);
  OKO_CHECK(a.M <= 1 || a.x_stride >= a.w.cols, "x_stride={} < K={}", a.x_stride, a.w.cols);
  OKO_CHECK(a.M <= 1 || a.y_stride >= a.w.rows, "y_stride={} < N={}", a.y_stride, a.w.rows);
  HWY_DYNAMIC_DISPATCH(GemmQuantRowsT)(a, n_begin, n_end);
}

void DequantizeWeightRows(const WeightView& w, size_t n_begin, size_t n_end, float* out) {
  CheckWeight(w, n_begin, n_end);
  HWY_DYNAMIC_DISPATCH(DequantizeWeightRowsT)(w, n_begin, n_end, out);
}
}  // namespace oko
#endif
