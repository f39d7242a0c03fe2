#include "ops/gemm_packed.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "common/check.h"
#include "ops/elementwise.h"

// GCC 12 flags the deliberately undefined upper lanes inside its own AVX-512 shuffle
// intrinsics (_mm512_undefined_*) as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Compiled for AVX-512 whatever the build's baseline; only called after the CPU check.
#define OKO_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define OKO_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

namespace oko {
namespace {

constexpr size_t kTileVectors = 3;  // packed blocks of 16 rows per tile: 48 rows
constexpr size_t kTileColumns = 8;  // weight rows per tile
// Packed row blocks kept in L2 while a range of weight rows streams past them: 96 rows of
// K = 3072 take 576 KiB in bf16 (this machine's L2: 1 MiB per core).
constexpr size_t kChunkBlocks = 2 * kTileVectors;

// acc[v][j] += packed block v's 16 rows · weight row j over `steps` steps of K; the
// accumulators are then stored column by column: tile[j][16 v + lane]. bf16: a step is a
// (k, k+1) pair, one 32-bit word, of bf16 weights; f32: one k of f32 weights.
template <size_t MV, size_t NR>
OKO_AVX512_BF16 void TileBf16(const uint32_t* a, size_t block_words, size_t steps,
                              const uint16_t* w, size_t w_stride, float* tile) {
  __m512 acc[MV][NR];
#pragma GCC unroll 24
  for (size_t v = 0; v < MV; ++v)
#pragma GCC unroll 8
    for (size_t j = 0; j < NR; ++j) acc[v][j] = _mm512_setzero_ps();
  for (size_t p = 0; p < steps; ++p) {
    __m512bh rows[MV];
#pragma GCC unroll 3
    for (size_t v = 0; v < MV; ++v)
      rows[v] = (__m512bh)_mm512_loadu_si512(a + v * block_words + p * kPackRows);
#pragma GCC unroll 8
    for (size_t j = 0; j < NR; ++j) {
      uint32_t pair;
      std::memcpy(&pair, w + j * w_stride + 2 * p, sizeof(pair));
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

template <size_t MV, size_t NR>
OKO_AVX512 void TileF32(const float* a, size_t block_floats, size_t steps, const float* w,
                        size_t w_stride, float* tile) {
  __m512 acc[MV][NR];
#pragma GCC unroll 24
  for (size_t v = 0; v < MV; ++v)
#pragma GCC unroll 8
    for (size_t j = 0; j < NR; ++j) acc[v][j] = _mm512_setzero_ps();
  for (size_t k = 0; k < steps; ++k) {
    __m512 rows[MV];
#pragma GCC unroll 3
    for (size_t v = 0; v < MV; ++v) rows[v] = _mm512_loadu_ps(a + v * block_floats + k * kPackRows);
#pragma GCC unroll 8
    for (size_t j = 0; j < NR; ++j) {
      const __m512 col = _mm512_set1_ps(w[j * w_stride + k]);
#pragma GCC unroll 3
      for (size_t v = 0; v < MV; ++v) acc[v][j] = _mm512_fmadd_ps(rows[v], col, acc[v][j]);
    }
  }
#pragma GCC unroll 24
  for (size_t v = 0; v < MV; ++v)
#pragma GCC unroll 8
    for (size_t j = 0; j < NR; ++j) _mm512_storeu_ps(tile + j * MV * 16 + v * 16, acc[v][j]);
}

// kTiles<Tile>[mv - 1][nr - 1]: the edges of M and N get their own narrower tiles.
template <size_t MV, size_t NR>
struct Bf16Tile {
  static constexpr auto kRun = &TileBf16<MV, NR>;
};
template <size_t MV, size_t NR>
struct F32Tile {
  static constexpr auto kRun = &TileF32<MV, NR>;
};
template <template <size_t, size_t> class Tile, size_t MV, size_t... J>
constexpr auto TileRow(std::index_sequence<J...>) {
  return std::array{Tile<MV, J + 1>::kRun...};
}
template <template <size_t, size_t> class Tile>
constexpr auto kTiles = std::array{TileRow<Tile, 1>(std::make_index_sequence<kTileColumns>()),
                                   TileRow<Tile, 2>(std::make_index_sequence<kTileColumns>()),
                                   TileRow<Tile, 3>(std::make_index_sequence<kTileColumns>())};
static_assert(kTileVectors == 3, "one TileRow per tile height");

// The loops shared by both variants: chunks of packed rows, tiles of 8 weight rows, tiles
// of 48 rows; run_tile(b, mv, n0, nr, tile) fills `tile`, which lands in y plus bias.
template <typename RunTile>
void ForEachTile(size_t M, const float* bias, float* y, size_t y_stride, size_t n_begin,
                 size_t n_end, const RunTile& run_tile) {
  const size_t blocks = PackedBlocks(M);
  alignas(64) float tile[kTileColumns * kTileVectors * kPackRows];
  for (size_t c0 = 0; c0 < blocks; c0 += kChunkBlocks) {
    const size_t c1 = std::min(blocks, c0 + kChunkBlocks);
    for (size_t n0 = n_begin; n0 < n_end; n0 += kTileColumns) {
      const size_t nr = std::min(kTileColumns, n_end - n0);
      for (size_t b = c0; b < c1; b += kTileVectors) {
        const size_t mv = std::min(kTileVectors, c1 - b);
        run_tile(b, mv, n0, nr, tile);
        const size_t m0 = b * kPackRows, height = mv * kPackRows;
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

// r[i] lane j <- r[j] lane i, for 16 vectors of 16 32-bit words: pairs of rows, then
// quads, interleaved within 128-bit lanes, then the lanes regrouped in two steps.
OKO_AVX512 void Transpose16x16(__m512i r[16]) {
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

// One block: `rows` rows of x (the rest of the 16 are zero), 16 steps at a time: each
// row's next 16 steps as one vector (bf16: 32 floats rounded to 16 pairs by
// vcvtne2ps2bf16, RNE), then transposed so that each vector holds one step of all rows.
// The f32 instance contains no BF16 instruction, so it runs on any AVX-512 CPU.
template <bool kBf16>
OKO_AVX512_BF16 void PackBlock(const float* x, size_t x_stride, size_t rows, size_t steps,
                               uint32_t* block) {
  constexpr size_t kFloatsPerStep = kBf16 ? 2 : 1;
  for (size_t s0 = 0; s0 < steps; s0 += 16) {
    const size_t n = std::min<size_t>(16, steps - s0), floats = kFloatsPerStep * n;
    const __mmask16 lo = FirstLanes(floats), hi = FirstLanes(floats > 16 ? floats - 16 : 0);
    __m512i r[16];
    for (size_t i = 0; i < 16; ++i) {
      if (i >= rows) {
        r[i] = _mm512_setzero_si512();
        continue;
      }
      const float* src = x + i * x_stride + kFloatsPerStep * s0;
      if constexpr (kBf16) {
        r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + 16),
                                            _mm512_maskz_loadu_ps(lo, src));
      } else {
        r[i] = _mm512_castps_si512(_mm512_maskz_loadu_ps(lo, src));
      }
    }
    Transpose16x16(r);
    for (size_t q = 0; q < n; ++q) _mm512_storeu_si512(block + (s0 + q) * kPackRows, r[q]);
  }
}

}  // namespace

bool PackedGemmBf16Supported() { return __builtin_cpu_supports("avx512bf16"); }
bool PackedGemmF32Supported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

void PackBf16Rows(const float* x, size_t x_stride, size_t M, size_t K, size_t block_begin,
                  size_t block_end, uint32_t* packed) {
  OKO_CHECK(K % 2 == 0, "K={} must be even", K);
  const size_t pairs = K / 2;
  for (size_t b = block_begin; b < block_end; ++b) {
    const size_t m0 = b * kPackRows;
    PackBlock<true>(x + m0 * x_stride, x_stride, std::min(kPackRows, M - m0), pairs,
                    packed + m0 * pairs);
  }
}

void PackF32Rows(const float* x, size_t x_stride, size_t M, size_t K, size_t block_begin,
                 size_t block_end, float* packed) {
  // Floats travel through the 32-bit-word transpose bit for bit.
  auto* words = reinterpret_cast<uint32_t*>(packed);
  for (size_t b = block_begin; b < block_end; ++b) {
    const size_t m0 = b * kPackRows;
    PackBlock<false>(x + m0 * x_stride, x_stride, std::min(kPackRows, M - m0), K, words + m0 * K);
  }
}

void GemmBf16Packed(const uint32_t* packed, size_t M, size_t K, const uint16_t* w,
                    const float* bias, float* y, size_t y_stride, size_t n_begin,
                    size_t n_end) {
  OKO_CHECK(K % 2 == 0, "K={} must be even", K);
  const size_t pairs = K / 2, block_words = kPackRows * pairs;
  ForEachTile(M, bias, y, y_stride, n_begin, n_end,
              [&](size_t b, size_t mv, size_t n0, size_t nr, float* tile) {
                kTiles<Bf16Tile>[mv - 1][nr - 1](packed + b * block_words, block_words, pairs,
                                                  w + n0 * K, K, tile);
              });
}

void GemmF32Packed(const float* packed, size_t M, size_t K, const void* w, DType w_dtype,
                   const float* bias, float* y, size_t y_stride, size_t n_begin,
                   size_t n_end) {
  OKO_CHECK(w_dtype == DType::kF32 || w_dtype == DType::kBF16 || w_dtype == DType::kF16,
            "weight dtype {} not supported (F32, BF16, F16)", DTypeName(w_dtype));
  const size_t block_floats = kPackRows * K;
  // The tile's weight rows widened to f32, once per chunk of rows of x.
  thread_local std::vector<float> widened;
  if (w_dtype != DType::kF32 && widened.size() < kTileColumns * K) widened.resize(kTileColumns * K);
  size_t widened_n0 = SIZE_MAX;
  ForEachTile(M, bias, y, y_stride, n_begin, n_end,
              [&](size_t b, size_t mv, size_t n0, size_t nr, float* tile) {
                const float* rows = static_cast<const float*>(w) + n0 * K;
                if (w_dtype != DType::kF32) {
                  if (widened_n0 != n0) {
                    const auto* src = static_cast<const uint16_t*>(w) + n0 * K;
                    if (w_dtype == DType::kBF16) Bf16ToF32Row(src, widened.data(), nr * K);
                    if (w_dtype == DType::kF16) F16ToF32Row(src, widened.data(), nr * K);
                    widened_n0 = n0;
                  }
                  rows = widened.data();
                }
                kTiles<F32Tile>[mv - 1][nr - 1](packed + b * block_floats, block_floats, K,
                                                 rows, K, tile);
              });
}

}  // namespace oko
