// Writes GGUF version 3 files (the layout in loaders/gguf.h), atomically: metadata in the
// given order, then the tensor infos, then each tensor's bytes at an offset that is a
// multiple of the alignment, which the file states as general.alignment. Tensors are
// written one at a time through their callbacks, so a model need not be in memory at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/atomic_file.h"
#include "common/status.h"
#include "loaders/gguf.h"

namespace oko {

// Metadata values for the writer (GgufValue holds every width as 64 bits; these fix the
// stored type).
GgufValue GgufString(std::string s);
GgufValue GgufUint32(uint32_t v);
GgufValue GgufInt32(int32_t v);
GgufValue GgufFloat32(float v);
GgufValue GgufBool(bool v);
// An array of `element_type` values (each of that type).
GgufValue GgufArray(GgufType element_type, std::vector<GgufValue> items);

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

struct GgufTensorToWrite {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<uint64_t> ne;  // ne[0] is the row length (a multiple of the type's block)
  // Writes exactly the tensor's bytes (GgmlTypeSizeOf(ggml_type) times the blocks).
  std::function<Status(AtomicFile&)> write;
};

// Errors: a duplicate key or tensor name, general.alignment among `metadata` (the writer
// sets it), an unknown ggml type, a row that the block does not divide, a callback that
// writes another number of bytes than the tensor holds (runtime error, exit 3, as every
// write failure).
Status WriteGguf(const std::string& path, const GgufMetadata& metadata, const std::vector<GgufTensorToWrite>& tensors,
                 uint32_t alignment = kGgufDefaultAlignment);

}  // namespace oko
