// GGML block formats of quantized weights, in memory exactly as ggml / GGUF store them
// (ggml-common.h layouts, little endian), so a GGUF tensor maps without a copy and what
// oko writes other tools read.
//
//   Q8_0  32 values, 34 bytes: f16 d; int8 q[32]                        x = q*d
//   Q4_0  32 values, 18 bytes: f16 d; u8 qs[16] (lo nibble j, hi j+16)  x = (q-8)*d
//   Q4_1  32 values, 20 bytes: f16 d, m; u8 qs[16]                      x = q*d + m
//   Q5_0  32 values, 22 bytes: f16 d; u32 qh (bit 4 of q); u8 qs[16]    x = (q-16)*d
//   Q5_1  32 values, 24 bytes: f16 d, m; u32 qh; u8 qs[16]              x = q*d + m
//   Q4_K 256 values, 144 bytes: f16 d, dmin; u8 scales[12] (8 x 6-bit scale and min);
//        u8 qs[128]                          x = (d*sc)*q - dmin*m per 32
//   Q5_K 256 values, 176 bytes: as Q4_K plus u8 qh[32] (bit 4 of q)
//   Q6_K 256 values, 210 bytes: u8 ql[128], qh[64]; i8 scales[16]; f16 d
//                                            x = (d*sc)*(q-32) per 16
// F32, F16 and BF16 are listed too (block of 1) so one weight type covers every format.
//
// DequantizeRow gives exactly the f32 values of gguf-py's quants.py (= ggml's C to_float):
// tested bit for bit on every sample of shared/golden/gguf. QuantizeRow is ggml's
// reference quantizer (quantize_row_*_ref, no importance matrix): byte-identical to
// llama-quantize for the 32-blocks; the k-quants follow the same algorithm (make_qkx2 /
// make_qx searches), RMSE within 1% of llama.cpp's (tests/ops/quant_formats_test).
// Threads: pure functions of their arguments. Allocate nothing.
// Cost: dequantize ~1 op per value; quantize: Q*_0/1 a few ops per value, Q4_K/Q5_K ~21
// (16) search passes per 32 values, Q6_K 19 passes per 16.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/dtype.h"

namespace oko {

enum class QuantType : uint8_t { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K };

struct QuantTypeInfo {
  QuantType type;
  std::string_view name;  // as ggml spells it ("Q4_K"); --quant takes it in any case
  size_t block;           // values per block
  size_t block_bytes;     // bytes per block
  uint32_t ggml_type;     // ggml_type id in GGUF files
};

inline constexpr QuantTypeInfo kQuantTypes[] = {
    {QuantType::kF32, "F32", 1, 4, 0},      {QuantType::kF16, "F16", 1, 2, 1},
    {QuantType::kBF16, "BF16", 1, 2, 30},   {QuantType::kQ8_0, "Q8_0", 32, 34, 8},
    {QuantType::kQ4_0, "Q4_0", 32, 18, 2},  {QuantType::kQ4_1, "Q4_1", 32, 20, 3},
    {QuantType::kQ5_0, "Q5_0", 32, 22, 6},  {QuantType::kQ5_1, "Q5_1", 32, 24, 7},
    {QuantType::kQ4_K, "Q4_K", 256, 144, 12}, {QuantType::kQ5_K, "Q5_K", 256, 176, 13},
    {QuantType::kQ6_K, "Q6_K", 256, 210, 14},
};

inline const QuantTypeInfo& Info(QuantType t) { return kQuantTypes[static_cast<int>(t)]; }
inline std::string_view QuantTypeName(QuantType t) { return Info(t).name; }
inline size_t QuantBlock(QuantType t) { return Info(t).block; }
inline bool IsBlockQuant(QuantType t) { return Info(t).block > 1; }
// Bytes of one row of `cols` values; cols must be a multiple of the block.
inline size_t QuantRowBytes(QuantType t, size_t cols) {
  return cols / Info(t).block * Info(t).block_bytes;
}
// "q4_k", "Q4_K", "f16", ... (case-insensitive); nullopt for anything else.
std::optional<QuantType> QuantTypeFromName(std::string_view name);
// The plain element types as a QuantType (F32, F16, BF16); nullopt for others.
std::optional<QuantType> QuantTypeFromDType(DType t);
// ggml_type id -> QuantType; nullopt for types oko does not run (Q2_K, IQ*, ...).
std::optional<QuantType> QuantTypeFromGgml(uint32_t ggml_type);

// The blocks, as ggml lays them out (f16 stored as raw uint16_t bits).
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[16]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// 6-bit scale and min j (0..7) of a Q4_K / Q5_K super-block (ggml's get_scale_min_k4).
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// dst[0, cols) = the values of one row of `type` (cols a multiple of the block).
void DequantizeRow(QuantType type, const void* src, float* dst, size_t cols);
// One row of cols values (a multiple of the block) into QuantRowBytes(type, cols) bytes.
void QuantizeRow(QuantType type, const float* src, void* dst, size_t cols);

// Activations for the int8 dot products (ops/quant_matmul.h, QuantCompute::kInt8):
// per 256 values one f32 scale d = max|x|/127, q = round(x/d) (ties to even) in
// [-127, 127], and the sums of q per 16 (for the k-quants' min and offset terms). As
// ggml's Q8_K, with d from |max| rather than the signed max.
struct BlockQ8K { float d; int16_t sums[16]; int8_t qs[256]; };
void QuantizeActivationsQ8K(const float* x, BlockQ8K* out, size_t cols);  // cols % 256 == 0

// A weight matrix [rows, cols] in one format: what Linear and the kernels take. Does not
// own the bytes. data must be 2-byte aligned, as every block size is even and blocks
// start with an f16 scale (GGUF's 32-byte tensor alignment and oko's 64-byte owned weights
// both give it).
// interleave == 1: row-major, rows QuantRowBytes(type, cols) bytes apart, as GGUF stores
// them. interleave == G (> 1, InterleaveRows): the same bytes transposed dword by dword
// within groups of G rows, for kernels that compute G rows per register (lane r = row r):
// block i of the group's rows holds the dword k of its G blocks in turn, so the 64-byte
// line k of that block (G = 16) is dword k of rows 0..15; blocks of 4k + 2 bytes then
// hold the G blocks' f16 d after their dwords (Q8_0's, Q4_0's and Q5_0's d leads the
// block, so their dwords start 2 bytes in; Q6_K's ends it). A pure permutation of the
// bytes: nbytes stays rows * row_bytes().
struct WeightView {
  QuantType type = QuantType::kF32;
  const std::byte* data = nullptr;
  size_t rows = 0, cols = 0;
  size_t nbytes = 0;  // rows * row_bytes()
  size_t interleave = 1;
  size_t row_bytes() const { return QuantRowBytes(type, cols); }
};

// Whether InterleaveRows can put w in groups of `group` rows: a block format, rows a
// (non-zero) multiple of the group, row-major now.
bool CanInterleave(const WeightView& w, size_t group);
// w (row-major) in groups of `group` rows into out (w.nbytes bytes); returns the view of
// out. CanInterleave(w, group) must hold.
WeightView InterleaveRows(const WeightView& w, size_t group, std::byte* out);
// Rows [n_begin, n_end) of w in the row-major GGUF layout, row_bytes() each, into out
// (any layout of w).
void CopyRowMajorRows(const WeightView& w, size_t n_begin, size_t n_end, std::byte* out);

}  // namespace oko
