// Element types of tensors on disk (safetensors names) and scalar conversions.
#pragma once

#include <bit>
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

inline float F16ToF32(uint16_t h) { return static_cast<float>(std::bit_cast<_Float16>(h)); }
inline uint16_t F32ToF16(float f) { return std::bit_cast<uint16_t>(static_cast<_Float16>(f)); }

}  // namespace oko
