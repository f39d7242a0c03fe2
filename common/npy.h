// .npy v1 files (little-endian, C order): what `oko logits` writes and the golden
// references are stored as.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace oko {

struct NpyArray {
  std::string descr;  // '<f4', '<f8', '<i4', '<i8', '|u1' (raw bytes, e.g. GGML blocks)
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  int64_t numel() const;
  // Element i converted to double.
  double At(int64_t i) const;
  std::vector<float> AsFloats() const;
  std::vector<int64_t> AsInts() const;
};

Result<NpyArray> ReadNpy(const std::string& path);
// Writes a float32 array atomically.
Status WriteNpyF32(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace oko
