// Writes a .safetensors file atomically (temporary name, then rename).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/dtype.h"
#include "common/status.h"

namespace oko {

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Writes exactly the tensor's bytes (numel * dtype size), in chunks if it likes, so that
  // large tensors need not be held in memory at once.
  std::function<Status(AtomicFile&)> write;
};

// Convenience: a tensor whose bytes are already in memory (must outlive the call).
TensorToWrite TensorFromBytes(std::string name, DType dtype, std::vector<int64_t> shape,
                              const void* data);

// Tensors are laid out largest element size first, keeping the given order otherwise, so each
// is aligned to its element size in the mapped file. Names must be unique.
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace oko
