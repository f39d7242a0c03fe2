// Safetensors files, single or sharded, memory-mapped and validated before use.
// Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// "__metadata__": {str: str}, then the data region; offsets are relative to it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/dtype.h"
#include "common/mapped_file.h"
#include "common/status.h"

namespace oko {

inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

// A zero-copy view of one tensor inside a mapped file.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  const std::string* file = nullptr;  // path of the file it lives in

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  template <typename T>
  const T* as() const { return reinterpret_cast<const T*>(data); }
};

std::string ShapeString(const std::vector<int64_t>& shape);

class SafetensorsFile {
 public:
  // Maps and validates `path`; every error names the file and the tensor. A tensor whose
  // bytes are not aligned to its element size in the mapping (a header length that is not
  // a multiple of 8, or odd offsets: legal, but no writer we know makes them) is copied
  // once into aligned memory, as kernels load whole elements.
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Validates an in-memory image (used by Open and by the fuzzer).
  static Result<std::vector<TensorView>> ParseHeader(const std::byte* data, size_t size,
                                                     const std::string& path,
                                                     std::map<std::string, std::string>* metadata);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Whether `p` points into the file's mapping (not into an aligned copy).
  bool Maps(const std::byte* p) const { return p >= file_->data() && p < file_->data() + file_->size(); }

 private:
  std::unique_ptr<MappedFile> file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
  std::vector<std::vector<uint64_t>> aligned_copies_;  // 8-byte aligned: every dtype's size
};

// model.safetensors.index.json: which shard holds each tensor.
struct ShardIndex {
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  std::vector<std::string> shards;                // distinct shards, in first-seen order
};
// Parses the text of an index file; `path` is for messages. A shard must be a plain file
// name in the same folder.
Result<ShardIndex> ParseShardIndex(std::string_view text, const std::string& path);

// All tensors of a model folder: model.safetensors, else the shards named by
// model.safetensors.index.json (each shard mapped once), else every *.safetensors.
class TensorStore {
 public:
  static Result<TensorStore> OpenDir(const std::string& dir);

  // A tensor of a file held elsewhere (a GGUF file's 1-D tensors, loaders/model_dir.h);
  // error when the name is taken.
  Status AddView(TensorView t);

  const TensorView* Find(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return by_name_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  uint64_t total_bytes() const;
  // Whether the tensor's bytes are in a file mapping (ReleaseMappedPages may drop them).
  bool IsMapped(const TensorView& t) const;

 private:
  Status Add(std::unique_ptr<SafetensorsFile> file);
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, TensorView> by_name_;
};

}  // namespace oko
