// Element types of tensors on disk (safetensors names) and scalar conversions.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace oko {

enum class DType : uint8_t { kF32, kF16, kBF16, kF64, kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64, kBool };

struct DTypeInfo {
  DType dtype;
  std::string_view name;  // as spelled in safetensors headers
  size_t size;
};

inline constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4},  {DType::kF16, "F16", 2},  {DType::kBF16, "BF16", 2},
    {DType::kF64, "F64", 8},  {DType::kI8, "I8", 1},    {DType::kU8, "U8", 1},
    {DType::kI16, "I16", 2},  {DType::kU16, "U16", 2},  {DType::kI32, "I32", 4},
    {DType::kU32, "U32", 4},  {DType::kI64, "I64", 8},  {DType::kU64, "U64", 8},
    {DType::kBool, "BOOL", 1},
};

inline const DTypeInfo& Info(DType t) { return kDTypes[static_cast<int>(t)]; }
inline size_t DTypeSize(DType t) { return Info(t).size; }
inline std::string_view DTypeName(DType t) { return Info(t).name; }
inline std::optional<DType> DTypeFromName(std::string_view name) {
  for (const auto& i : kDTypes)
    if (i.name == name) return i.dtype;
  return std::nullopt;
}

// bf16 is the top half of an f32: widening is exact.
inline float Bf16ToF32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even (what PyTorch does); NaN stays NaN.
inline uint16_t F32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

#if defined(__clang__) && __clang_major__ < 15
// Clang 14 (the fuzz build, scripts/fuzz.sh) has no _Float16 on x86 without AVX512-FP16:
// the same IEEE conversions in integer arithmetic, round to nearest even
// (M. Dukhan's FP16 library, fp16_ieee_to/from_fp32_value).
inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in f32
    const float v = static_cast<float>(mant) * 0x1.0p-24f;
    return sign != 0 ? -v : v;
  }
  const uint32_t bits = sign | (exp == 31 ? 0x7f800000u | (mant << 13) : ((exp + 112) << 23) | (mant << 13));
  return std::bit_cast<float>(bits);
}
inline uint16_t F32ToF16(float f) {
  const uint32_t w = std::bit_cast<uint32_t>(f);
  const uint32_t shl1_w = w + w, sign = w & 0x80000000u;
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  uint32_t bias = shl1_w & 0xff000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = std::bit_cast<float>((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = std::bit_cast<uint32_t>(base);
  const uint32_t nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}
#else
inline float F16ToF32(uint16_t h) { return static_cast<float>(std::bit_cast<_Float16>(h)); }
inline uint16_t F32ToF16(float f) { return std::bit_cast<uint16_t>(static_cast<_Float16>(f)); }
#endif

}  // namespace oko
