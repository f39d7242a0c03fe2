#include "loaders/gguf_writer.h"

#include <cstring>
#include <set>

namespace oko {
namespace {

// The serialized header, metadata and tensor infos.
class Buffer {
 public:
  template <typename T>
  void Put(T v) {
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &v, sizeof(T));
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    bytes_.append(s);
  }
  void PutValue(const GgufValue& v) {
    switch (v.type) {
      case GgufType::kUint8: return Put(static_cast<uint8_t>(std::get<uint64_t>(v.value)));
      case GgufType::kInt8: return Put(static_cast<int8_t>(std::get<int64_t>(v.value)));
      case GgufType::kUint16: return Put(static_cast<uint16_t>(std::get<uint64_t>(v.value)));
      case GgufType::kInt16: return Put(static_cast<int16_t>(std::get<int64_t>(v.value)));
      case GgufType::kUint32: return Put(static_cast<uint32_t>(std::get<uint64_t>(v.value)));
      case GgufType::kInt32: return Put(static_cast<int32_t>(std::get<int64_t>(v.value)));
      case GgufType::kUint64: return Put(std::get<uint64_t>(v.value));
      case GgufType::kInt64: return Put(std::get<int64_t>(v.value));
      case GgufType::kFloat32: return Put(static_cast<float>(std::get<double>(v.value)));
      case GgufType::kFloat64: return Put(std::get<double>(v.value));
      case GgufType::kBool: return Put(static_cast<uint8_t>(std::get<bool>(v.value)));
      case GgufType::kString: return PutString(v.str());
      case GgufType::kArray:
        Put(static_cast<uint32_t>(v.element_type));
        Put<uint64_t>(v.array().size());
        for (const GgufValue& item : v.array()) PutValue(item);
        return;
    }
  }
  void PadTo(uint64_t alignment) { bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, '\0'); }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

uint64_t Padded(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// The tensor's bytes, or an error naming it.
Result<uint64_t> TensorBytes(const GgufTensorToWrite& t, const std::string& path) {
  const auto size = GgmlTypeSizeOf(t.ggml_type);
  if (!size) return Errorf("{}: tensor '{}': unknown ggml type {}", path, t.name, t.ggml_type);
  if (t.ne.empty() || t.ne[0] % size->block != 0)
    return Errorf("{}: tensor '{}': rows of {} values do not fit {}'s block of {}", path, t.name,
                  t.ne.empty() ? 0 : t.ne[0], size->name, size->block);
  uint64_t numel = 1;
  for (uint64_t d : t.ne) numel *= d;
  return numel / size->block * size->block_bytes;
}

}  // namespace

GgufValue GgufString(std::string s) { return {GgufType::kString, GgufType::kUint8, std::move(s)}; }
GgufValue GgufUint32(uint32_t v) { return {GgufType::kUint32, GgufType::kUint8, uint64_t{v}}; }
GgufValue GgufInt32(int32_t v) { return {GgufType::kInt32, GgufType::kUint8, int64_t{v}}; }
GgufValue GgufFloat32(float v) { return {GgufType::kFloat32, GgufType::kUint8, double{v}}; }
GgufValue GgufBool(bool v) { return {GgufType::kBool, GgufType::kUint8, v}; }
GgufValue GgufArray(GgufType element_type, std::vector<GgufValue> items) {
  return {GgufType::kArray, element_type, std::move(items)};
}

Status WriteGguf(const std::string& path, const GgufMetadata& metadata, const std::vector<GgufTensorToWrite>& tensors,
                 uint32_t alignment) {
  Buffer head;
  head.Put(kGgufMagic);
  head.Put<uint32_t>(3);
  head.Put<uint64_t>(tensors.size());
  head.Put<uint64_t>(metadata.size() + 1);
  std::set<std::string_view> keys, names;
  for (const auto& [key, value] : metadata) {
    if (key == "general.alignment" || !keys.insert(key).second)
      return Errorf("{}: metadata key '{}' given twice (general.alignment is the writer's)", path, key);
    head.PutString(key);
    head.Put(static_cast<uint32_t>(value.type));
    head.PutValue(value);
  }
  head.PutString("general.alignment");
  head.Put(static_cast<uint32_t>(GgufType::kUint32));
  head.Put(alignment);
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const GgufTensorToWrite& t : tensors) {
    if (!names.insert(t.name).second) return Errorf("{}: tensor '{}' given twice", path, t.name);
    OKO_ASSIGN_OR_RETURN(uint64_t bytes, TensorBytes(t, path));
    head.PutString(t.name);
    head.Put<uint32_t>(t.ne.size());
    for (uint64_t d : t.ne) head.Put(d);
    head.Put(t.ggml_type);
    head.Put(offset);
    sizes.push_back(bytes);
    offset = Padded(offset + bytes, alignment);
  }
  head.PadTo(alignment);
  OKO_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path));
  OKO_RETURN_IF_ERROR(f.Write(head.bytes()));
  const std::string zeros(alignment, '\0');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t start = f.bytes_written();
    OKO_RETURN_IF_ERROR(tensors[i].write(f));
    if (f.bytes_written() - start != sizes[i])
      return RuntimeErrorf("{}: tensor '{}': wrote {} bytes, expected {}", path, tensors[i].name,
                           f.bytes_written() - start, sizes[i]);
    OKO_RETURN_IF_ERROR(f.Write(zeros.data(), Padded(sizes[i], alignment) - sizes[i]));
  }
  return f.Commit();
}

}  // namespace oko
