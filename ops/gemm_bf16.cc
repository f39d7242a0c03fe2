#include "ops/gemm_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "common/check.h"

// GCC 12 flags the deliberately undefined upper lanes inside its own AVX-512 shuffle
// intrinsics (_mm512_undefined_*) as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Compiled for AVX-512 with BF16 whatever the build's baseline; only called after
// Bf16GemmSupported() said yes.
#define OKO_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

namespace oko {
namespace {

constexpr size_t kTileVectors = 3;  // packed blocks of 16 rows per tile: 48 rows
constexpr size_t kTileColumns = 8;  // weight rows per tile
// Packed row blocks kept in L2 while a range of weight rows streams past them: 96 rows of
// K = 3072 take 576 KiB (this machine's L2: 1 MiB per core).
constexpr size_t kChunkBlocks = 2 * kTileVectors;

// acc[v][j] += packed block v's 16 rows · weight row j, for all K / 2 pairs; the
// accumulators are then stored column by column: tile[j][16 v + lane].
template <size_t MV, size_t NR>
OKO_AVX512_BF16 void Tile(const uint32_t* a, size_t block_words, size_t pairs,
                          const uint16_t* w, size_t K, float* tile) {
  __m512 acc[MV][NR];
#pragma GCC unroll 24
  for (size_t v = 0; v < MV; ++v)
#pragma GCC unroll 8
    for (size_t j = 0; j < NR; ++j) acc[v][j] = _mm512_setzero_ps();
  for (size_t p = 0; p < pairs; ++p) {
    __m512bh rows[MV];
#pragma GCC unroll 3
    for (size_t v = 0; v < MV; ++v)
      rows[v] = (__m512bh)_mm512_loadu_si512(a + v * block_words + p * kBf16PackRows);
#pragma GCC unroll 8
    for (size_t j = 0; j < NR; ++j) {
      uint32_t pair;
      std::memcpy(&pair, w + j * K + 2 * p, sizeof(pair));
      const __m512bh col = (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
#pragma GCC unroll 3
      for (size_t v = 0; v < MV; ++v) acc[v][j] = _mm512_dpbf16_ps(acc[v][j], rows[v], col);
    }
  }
#pragma GCC unroll 24
  for (size_t v = 0; v < MV; ++v)
#pragma GCC unroll 8
    for (size_t j = 0; j < NR; ++j) _mm512_storeu_ps(tile + j * MV * 16 + v * 16, acc[v][j]);
}

using TileFn = void (*)(const uint32_t*, size_t, size_t, const uint16_t*, size_t, float*);

template <size_t MV, size_t... J>
constexpr std::array<TileFn, kTileColumns> TilesOfHeight(std::index_sequence<J...>) {
  return {&Tile<MV, J + 1>...};
}
// kTiles[mv - 1][nr - 1]: the edges of M and N get their own narrower tiles.
constexpr std::array<std::array<TileFn, kTileColumns>, kTileVectors> kTiles = {
    TilesOfHeight<1>(std::make_index_sequence<kTileColumns>()),
    TilesOfHeight<2>(std::make_index_sequence<kTileColumns>()),
    TilesOfHeight<3>(std::make_index_sequence<kTileColumns>())};

// r[i] lane j <- r[j] lane i, for 16 vectors of 16 32-bit words: pairs of rows, then
// quads, interleaved within 128-bit lanes, then the lanes regrouped in two steps.
OKO_AVX512_BF16 void Transpose16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4 q + j] holds, in 128-bit lane L, column 4 L + j of rows 4 q .. 4 q + 3.
  __m512i u[16];
  for (int q = 0; q < 4; ++q) {
    const __m512i* g = t + 4 * q;
    u[4 * q + 0] = _mm512_unpacklo_epi64(g[0], g[2]);
    u[4 * q + 1] = _mm512_unpackhi_epi64(g[0], g[2]);
    u[4 * q + 2] = _mm512_unpacklo_epi64(g[1], g[3]);
    u[4 * q + 3] = _mm512_unpackhi_epi64(g[1], g[3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i even_a = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);   // lanes 0, 2
    const __m512i odd_a = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);    // lanes 1, 3
    const __m512i even_b = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
    const __m512i odd_b = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_i32x4(even_a, even_b, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(even_a, even_b, 0xdd);
    r[4 + j] = _mm512_shuffle_i32x4(odd_a, odd_b, 0x88);
    r[12 + j] = _mm512_shuffle_i32x4(odd_a, odd_b, 0xdd);
  }
}

__mmask16 FirstLanes(size_t n) { return n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1); }

// One block: `rows` rows of x (the rest of the 16 are zero), 16 pairs at a time: each
// row's 32 floats rounded to 16 bf16 pairs (vcvtne2ps2bf16, RNE), then transposed so
// that each vector holds one pair of all 16 rows.
OKO_AVX512_BF16 void PackBlock(const float* x, size_t x_stride, size_t rows, size_t pairs,
                               uint32_t* block) {
  for (size_t p0 = 0; p0 < pairs; p0 += 16) {
    const size_t n = std::min<size_t>(16, pairs - p0), floats = 2 * n;
    const __mmask16 lo = FirstLanes(floats), hi = FirstLanes(floats > 16 ? floats - 16 : 0);
    __m512i r[16];
    for (size_t i = 0; i < 16; ++i) {
      if (i >= rows) {
        r[i] = _mm512_setzero_si512();
        continue;
      }
      const float* src = x + i * x_stride + 2 * p0;
      r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + 16),
                                          _mm512_maskz_loadu_ps(lo, src));
    }
    Transpose16x16(r);
    for (size_t q = 0; q < n; ++q) _mm512_storeu_si512(block + (p0 + q) * kBf16PackRows, r[q]);
  }
}

}  // namespace

bool Bf16GemmSupported() { return __builtin_cpu_supports("avx512bf16"); }

void PackBf16Rows(const float* x, size_t x_stride, size_t M, size_t K, size_t block_begin,
                  size_t block_end, uint32_t* packed) {
  OKO_CHECK(K % 2 == 0, "K={} must be even", K);
  const size_t pairs = K / 2;
  for (size_t b = block_begin; b < block_end; ++b) {
    const size_t m0 = b * kBf16PackRows;
    PackBlock(x + m0 * x_stride, x_stride, std::min(kBf16PackRows, M - m0), pairs,
              packed + m0 * pairs);
  }
}

void GemmBf16Packed(const uint32_t* packed, size_t M, size_t K, const uint16_t* w,
                    const float* bias, float* y, size_t y_stride, size_t n_begin,
                    size_t n_end) {
  OKO_CHECK(K % 2 == 0, "K={} must be even", K);
  const size_t pairs = K / 2, block_words = kBf16PackRows * pairs;
  const size_t blocks = (M + kBf16PackRows - 1) / kBf16PackRows;
  alignas(64) float tile[kTileColumns * kTileVectors * kBf16PackRows];
  for (size_t c0 = 0; c0 < blocks; c0 += kChunkBlocks) {
    const size_t c1 = std::min(blocks, c0 + kChunkBlocks);
    for (size_t n0 = n_begin; n0 < n_end; n0 += kTileColumns) {
      const size_t nr = std::min(kTileColumns, n_end - n0);
      for (size_t b = c0; b < c1; b += kTileVectors) {
        const size_t mv = std::min(kTileVectors, c1 - b);
        kTiles[mv - 1][nr - 1](packed + b * block_words, block_words, pairs, w + n0 * K, K,
                               tile);
        const size_t m0 = b * kBf16PackRows, height = mv * kBf16PackRows;
        const size_t rows = std::min(height, M - m0);
        for (size_t r = 0; r < rows; ++r) {
          float* out = y + (m0 + r) * y_stride + n0;
          for (size_t j = 0; j < nr; ++j)
            out[j] = tile[j * height + r] + (bias != nullptr ? bias[n0 + j] : 0.0f);
        }
      }
    }
  }
}

}  // namespace oko
