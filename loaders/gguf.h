// GGUF files (llama.cpp's format), versions 2 and 3, memory-mapped and validated before
// use. Layout, all little endian:
//   u32 magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
//   metadata: {string key, u32 value type, value} ...   (string = u64 length + bytes;
//     array = u32 element type, u64 count, elements; arrays may nest)
//   tensor infos: {string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset} ...
//   padding to general.alignment (default 32), then the data region; offsets are
//   relative to it and multiples of the alignment.
// Everything read is bounded by common/limits.h; every error names the file and the key
// or tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"

namespace oko {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint64_t kGgufDefaultAlignment = 32;  // when general.alignment is absent

enum class GgufType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
std::string_view GgufTypeName(GgufType t);

// One metadata value. Integers of every width are held as int64/uint64 (by signedness),
// floats as double; `type` keeps the type as stored.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  GgufType element_type = GgufType::kUint8;  // arrays: the type of their elements
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> value;

  bool is_unsigned() const { return std::holds_alternative<uint64_t>(value); }
  bool is_signed() const { return std::holds_alternative<int64_t>(value); }
  bool is_integer() const { return is_unsigned() || is_signed(); }
  bool is_float() const { return std::holds_alternative<double>(value); }
  bool is_string() const { return type == GgufType::kString; }
  bool is_array() const { return type == GgufType::kArray; }
  const std::string& str() const { return std::get<std::string>(value); }
  const std::vector<GgufValue>& array() const { return std::get<std::vector<GgufValue>>(value); }
  bool operator==(const GgufValue&) const = default;
};

// Block size and bytes per block of a ggml type id (every type ggml defines, so that files
// holding types oko does not run still parse); nullopt for unknown ids.
struct GgmlTypeSize {
  std::string_view name;
  uint64_t block;
  uint64_t block_bytes;
};
std::optional<GgmlTypeSize> GgmlTypeSizeOf(uint32_t ggml_type);

struct GgufTensor {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<uint64_t> ne;   // as stored: ne[0] is the row length
  uint64_t offset = 0;        // in the data region
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  // numpy order [rows, row length] for 2-D: the reverse of ne.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

struct GgufContents {
  uint32_t version = 0;
  uint64_t alignment = kGgufDefaultAlignment;
  uint64_t data_offset = 0;  // where the data region starts in the file
  std::map<std::string, GgufValue> metadata;
  std::vector<GgufTensor> tensors;  // in file order
};

// Validates an in-memory GGUF image (used by GgufFile::Open and by the fuzzer): every
// tensor's bytes lie inside [data, data + size).
Result<GgufContents> ParseGguf(const std::byte* data, size_t size, const std::string& path);

class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const GgufContents& contents() const { return contents_; }
  const std::map<std::string, GgufValue>& metadata() const { return contents_.metadata; }
  const std::vector<GgufTensor>& tensors() const { return contents_.tensors; }
  const GgufValue* Find(const std::string& key) const;
  const GgufTensor* FindTensor(const std::string& name) const;

  // Typed metadata access; errors name the file and the key. Integer getters accept any
  // integer type whose value fits.
  Result<std::string> String(const std::string& key) const;
  Result<uint64_t> Uint(const std::string& key) const;
  Result<double> Float(const std::string& key) const;  // any float or integer type
  Result<bool> Bool(const std::string& key) const;
  // An array of `type` elements.
  Result<const std::vector<GgufValue>*> Array(const std::string& key, GgufType type) const;

 private:
  Result<const GgufValue*> Get(const std::string& key) const;
  std::unique_ptr<MappedFile> file_;
  GgufContents contents_;
  std::map<std::string, size_t> tensor_index_;
};

// Whether `path` names a GGUF file (ends in .gguf, any case) rather than a model folder.
bool IsGgufPath(const std::string& path);

}  // namespace oko
