#include "loaders/gguf.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "common/limits.h"

namespace oko {
namespace {

// Sequential reads from the image; each failure says what was being read and where.
class Reader {
 public:
  Reader(const std::byte* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  Status Read(T* out, std::string_view what) {
    if (remaining() < sizeof(T))
      return Errorf("{}: the file ends at byte {} inside {}", path_, size_, what);
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return {};
  }

  Status ReadString(std::string* out, uint64_t max_bytes, std::string_view what) {
    uint64_t len = 0;
    OKO_RETURN_IF_ERROR(Read(&len, what));
    if (len > max_bytes)
      return Errorf("{}: {} is {} bytes long, over the limit of {} bytes", path_, what, len,
                    max_bytes);
    if (len > remaining())
      return Errorf("{}: {} ({} bytes) runs past the end of the file", path_, what, len);
    out->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return {};
  }

 private:
  const std::byte* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

// The fewest bytes one value of `t` takes in the file: an array count is checked against
// it before anything is allocated.
uint64_t MinValueBytes(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kString: case GgufType::kUint64: case GgufType::kInt64:
    case GgufType::kFloat64: return 8;
    case GgufType::kArray: return 12;  // element type + count
  }
  return 1;
}

bool KnownType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

class MetadataParser {
 public:
  MetadataParser(Reader& r, const std::string& path) : r_(r), path_(path) {}

  // The value of `key`, of type `type`, at `depth` arrays deep.
  Status Value(const std::string& key, GgufType type, uint64_t depth, GgufValue* out) {
    out->type = type;
    switch (type) {
      case GgufType::kUint8: return Scalar<uint8_t, uint64_t>(key, out);
      case GgufType::kInt8: return Scalar<int8_t, int64_t>(key, out);
      case GgufType::kUint16: return Scalar<uint16_t, uint64_t>(key, out);
      case GgufType::kInt16: return Scalar<int16_t, int64_t>(key, out);
      case GgufType::kUint32: return Scalar<uint32_t, uint64_t>(key, out);
      case GgufType::kInt32: return Scalar<int32_t, int64_t>(key, out);
      case GgufType::kUint64: return Scalar<uint64_t, uint64_t>(key, out);
      case GgufType::kInt64: return Scalar<int64_t, int64_t>(key, out);
      case GgufType::kFloat32: return Scalar<float, double>(key, out);
      case GgufType::kFloat64: return Scalar<double, double>(key, out);
      case GgufType::kBool: return Bool(key, out);
      case GgufType::kString: {
        std::string s;
        OKO_RETURN_IF_ERROR(r_.ReadString(&s, kMaxGgufStringBytes, fmt::format("the value of '{}'", key)));
        out->value = std::move(s);
        return {};
      }
      case GgufType::kArray: return Array(key, depth, out);
    }
    return Errorf("{}: metadata '{}' has unknown value type {}", path_, key, static_cast<uint32_t>(type));
  }

 private:
  template <typename Stored, typename Held>
  Status Scalar(const std::string& key, GgufValue* out) {
    Stored v{};
    OKO_RETURN_IF_ERROR(r_.Read(&v, fmt::format("the value of '{}'", key)));
    out->value = static_cast<Held>(v);
    return {};
  }

  Status Bool(const std::string& key, GgufValue* out) {
    uint8_t v = 0;
    OKO_RETURN_IF_ERROR(r_.Read(&v, fmt::format("the value of '{}'", key)));
    if (v > 1) return Errorf("{}: metadata '{}': a bool is {}, not 0 or 1", path_, key, v);
    out->value = v == 1;
    return {};
  }

  Status Array(const std::string& key, uint64_t depth, GgufValue* out) {
    if (depth >= kMaxGgufArrayDepth)
      return Errorf("{}: metadata '{}': arrays nested over {} deep", path_, key, kMaxGgufArrayDepth);
    uint32_t elem = 0;
    uint64_t count = 0;
    OKO_RETURN_IF_ERROR(r_.Read(&elem, fmt::format("the array '{}'", key)));
    OKO_RETURN_IF_ERROR(r_.Read(&count, fmt::format("the array '{}'", key)));
    if (!KnownType(elem))
      return Errorf("{}: metadata '{}': array of unknown value type {}", path_, key, elem);
    const auto type = static_cast<GgufType>(elem);
    if (count > kMaxGgufArrayLength)
      return Errorf("{}: metadata '{}': array of {} values, over the limit of {}", path_, key, count,
                    kMaxGgufArrayLength);
    if (count > r_.remaining() / MinValueBytes(type))
      return Errorf("{}: metadata '{}': array of {} {} values runs past the end of the file", path_, key,
                    count, GgufTypeName(type));
    values_ += count;
    if (values_ > kMaxGgufValues)
      return Errorf("{}: metadata '{}': the arrays hold over {} values in all", path_, key, kMaxGgufValues);
    out->element_type = type;
    std::vector<GgufValue> items(count);
    for (auto& item : items) OKO_RETURN_IF_ERROR(Value(key, type, depth + 1, &item));
    out->value = std::move(items);
    return {};
  }

  Reader& r_;
  const std::string& path_;
  uint64_t values_ = 0;
};

Status ParseMetadata(Reader& r, uint64_t count, const std::string& path, GgufContents* out) {
  MetadataParser values(r, path);
  for (uint64_t i = 0; i < count; ++i) {
    std::string key;
    OKO_RETURN_IF_ERROR(r.ReadString(&key, kMaxGgufKeyBytes, fmt::format("metadata key #{}", i)));
    uint32_t type = 0;
    OKO_RETURN_IF_ERROR(r.Read(&type, fmt::format("the type of '{}'", key)));
    if (!KnownType(type)) return Errorf("{}: metadata '{}' has unknown value type {}", path, key, type);
    GgufValue v;
    OKO_RETURN_IF_ERROR(values.Value(key, static_cast<GgufType>(type), 0, &v));
    if (!out->metadata.emplace(key, std::move(v)).second)
      return Errorf("{}: metadata key '{}' appears twice", path, key);
  }
  return {};
}

Status ReadAlignment(const std::string& path, GgufContents* out) {
  auto it = out->metadata.find("general.alignment");
  if (it == out->metadata.end()) return {};
  const GgufValue& v = it->second;
  if (v.type != GgufType::kUint32)
    return Errorf("{}: 'general.alignment' must be a uint32, got {}", path, GgufTypeName(v.type));
  const uint64_t a = std::get<uint64_t>(v.value);
  if (a == 0 || (a & (a - 1)) != 0 || a > kMaxGgufAlignment)
    return Errorf("{}: 'general.alignment' is {}: not a power of two up to {}", path, a, kMaxGgufAlignment);
  out->alignment = a;
  return {};
}

// Multiplies sizes, failing on overflow past 2^62.
bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > (uint64_t{1} << 62) / a) return false;
  *out = a * b;
  return true;
}

Status ParseTensorInfo(Reader& r, uint64_t i, const std::string& path, GgufTensor* t) {
  OKO_RETURN_IF_ERROR(r.ReadString(&t->name, kMaxTensorNameBytes, fmt::format("the name of tensor #{}", i)));
  auto bad = [&](const std::string& what) { return Errorf("{}: tensor '{}': {}", path, t->name, what); };
  uint32_t n_dims = 0;
  OKO_RETURN_IF_ERROR(r.Read(&n_dims, fmt::format("tensor '{}'", t->name)));
  if (n_dims == 0 || n_dims > kMaxGgufTensorDims)
    return bad(fmt::format("{} dimensions (1 to {} allowed)", n_dims, kMaxGgufTensorDims));
  t->ne.resize(n_dims);
  for (auto& d : t->ne) OKO_RETURN_IF_ERROR(r.Read(&d, fmt::format("tensor '{}'", t->name)));
  OKO_RETURN_IF_ERROR(r.Read(&t->ggml_type, fmt::format("tensor '{}'", t->name)));
  OKO_RETURN_IF_ERROR(r.Read(&t->offset, fmt::format("tensor '{}'", t->name)));
  const auto size = GgmlTypeSizeOf(t->ggml_type);
  if (!size) return bad(fmt::format("unknown ggml type {}", t->ggml_type));
  if (t->ne[0] % size->block != 0)
    return bad(fmt::format("rows of {} values are not a multiple of {}'s block of {}", t->ne[0], size->name,
                           size->block));
  uint64_t numel = 1, bytes = 0;
  for (uint64_t d : t->ne)
    if (!CheckedMul(numel, d, &numel)) return bad("shape is too large");
  if (!CheckedMul(numel / size->block, size->block_bytes, &bytes)) return bad("shape is too large");
  t->nbytes = bytes;
  return {};
}

// Places every tensor in the data region [data_offset, size): aligned, inside the file,
// no two sharing a byte.
Status PlaceTensors(const std::byte* data, size_t size, const std::string& path, GgufContents* c) {
  const uint64_t region = size - c->data_offset;
  std::vector<GgufTensor*> order;
  for (auto& t : c->tensors) {
    if (t.offset % c->alignment != 0)
      return Errorf("{}: tensor '{}': offset {} is not a multiple of the alignment {}", path, t.name, t.offset,
                    c->alignment);
    if (t.offset > region || t.nbytes > region - t.offset)
      return Errorf("{}: tensor '{}': bytes [{}, {}) of the data region lie outside the file ({} bytes of data)",
                    path, t.name, t.offset, t.offset + t.nbytes, region);
    t.data = data + c->data_offset + t.offset;
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensor& prev = *order[i - 1];
    if (order[i]->offset < prev.offset + prev.nbytes && order[i]->nbytes > 0)
      return Errorf("{}: tensors '{}' and '{}' overlap", path, prev.name, order[i]->name);
  }
  return {};
}

}  // namespace

std::string_view GgufTypeName(GgufType t) {
  static constexpr std::string_view kNames[] = {"uint8", "int8",  "uint16", "int16", "uint32", "int32", "float32",
                                                "bool",  "string", "array", "uint64", "int64", "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

std::optional<GgmlTypeSize> GgmlTypeSizeOf(uint32_t ggml_type) {
  // ggml.c's type_traits (blck_size, type_size); ids 4, 5 (Q4_2, Q4_3) and 31-33, 36-38
  // were removed from ggml.
  static constexpr struct { uint32_t id; GgmlTypeSize size; } kTypes[] = {
      {0, {"F32", 1, 4}},        {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},     {3, {"Q4_1", 32, 20}},
      {6, {"Q5_0", 32, 22}},     {7, {"Q5_1", 32, 24}},      {8, {"Q8_0", 32, 34}},     {9, {"Q8_1", 32, 36}},
      {10, {"Q2_K", 256, 84}},   {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},  {13, {"Q5_K", 256, 176}},
      {14, {"Q6_K", 256, 210}},  {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}}, {17, {"IQ2_XS", 256, 74}},
      {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},  {20, {"IQ4_NL", 32, 18}},  {21, {"IQ3_S", 256, 110}},
      {22, {"IQ2_S", 256, 82}},  {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},        {25, {"I16", 1, 2}},
      {26, {"I32", 1, 4}},       {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},       {29, {"IQ1_M", 256, 56}},
      {30, {"BF16", 1, 2}},      {34, {"TQ1_0", 256, 54}},   {35, {"TQ2_0", 256, 66}},  {39, {"MXFP4", 32, 17}},
  };
  for (const auto& t : kTypes)
    if (t.id == ggml_type) return t.size;
  return std::nullopt;
}

Result<GgufContents> ParseGguf(const std::byte* data, size_t size, const std::string& path) {
  Reader r(data, size, path);
  uint32_t magic = 0;
  GgufContents c;
  uint64_t n_tensors = 0, n_keys = 0;
  OKO_RETURN_IF_ERROR(r.Read(&magic, "the header"));
  if (magic != kGgufMagic) return Errorf("{}: not a GGUF file (no 'GGUF' magic)", path);
  OKO_RETURN_IF_ERROR(r.Read(&c.version, "the header"));
  if (c.version != 2 && c.version != 3)
    return Errorf("{}: GGUF version {} is not supported (2 and 3 are)", path, c.version);
  OKO_RETURN_IF_ERROR(r.Read(&n_tensors, "the header"));
  OKO_RETURN_IF_ERROR(r.Read(&n_keys, "the header"));
  if (n_tensors > kMaxTensorsPerFile)
    return Errorf("{}: {} tensors, over the limit of {} per file", path, n_tensors, kMaxTensorsPerFile);
  if (n_keys > kMaxGgufMetadataKeys)
    return Errorf("{}: {} metadata keys, over the limit of {}", path, n_keys, kMaxGgufMetadataKeys);
  OKO_RETURN_IF_ERROR(ParseMetadata(r, n_keys, path, &c));
  OKO_RETURN_IF_ERROR(ReadAlignment(path, &c));
  std::set<std::string_view> names;
  c.tensors.resize(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    OKO_RETURN_IF_ERROR(ParseTensorInfo(r, i, path, &c.tensors[i]));
    if (!names.insert(c.tensors[i].name).second)
      return Errorf("{}: tensor '{}' appears twice", path, c.tensors[i].name);
  }
  const uint64_t end = r.pos();
  c.data_offset = (end + c.alignment - 1) / c.alignment * c.alignment;
  if (c.data_offset > size) {
    if (n_tensors > 0) return Errorf("{}: the file ends before its data region (at byte {})", path, c.data_offset);
    c.data_offset = size;  // no tensors: the file may end right after the infos
  }
  OKO_RETURN_IF_ERROR(PlaceTensors(data, size, path, &c));
  return c;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  auto f = std::unique_ptr<GgufFile>(new GgufFile);
  OKO_ASSIGN_OR_RETURN(f->file_, MappedFile::Open(path));
  OKO_ASSIGN_OR_RETURN(f->contents_, ParseGguf(f->file_->data(), f->file_->size(), path));
  for (size_t i = 0; i < f->contents_.tensors.size(); ++i) f->tensor_index_[f->contents_.tensors[i].name] = i;
  return f;
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = contents_.metadata.find(key);
  return it == contents_.metadata.end() ? nullptr : &it->second;
}

const GgufTensor* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &contents_.tensors[it->second];
}

Result<const GgufValue*> GgufFile::Get(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Errorf("{}: metadata key '{}' is missing", path(), key);
  return v;
}

Result<std::string> GgufFile::String(const std::string& key) const {
  OKO_ASSIGN_OR_RETURN(const GgufValue* v, Get(key));
  if (!v->is_string()) return Errorf("{}: '{}' must be a string, got {}", path(), key, GgufTypeName(v->type));
  return v->str();
}

Result<uint64_t> GgufFile::Uint(const std::string& key) const {
  OKO_ASSIGN_OR_RETURN(const GgufValue* v, Get(key));
  if (v->is_unsigned()) return std::get<uint64_t>(v->value);
  if (v->is_signed() && std::get<int64_t>(v->value) >= 0) return static_cast<uint64_t>(std::get<int64_t>(v->value));
  return Errorf("{}: '{}' must be a non-negative integer, got {}", path(), key, GgufTypeName(v->type));
}

Result<double> GgufFile::Float(const std::string& key) const {
  OKO_ASSIGN_OR_RETURN(const GgufValue* v, Get(key));
  if (v->is_float()) return std::get<double>(v->value);
  if (v->is_unsigned()) return static_cast<double>(std::get<uint64_t>(v->value));
  if (v->is_signed()) return static_cast<double>(std::get<int64_t>(v->value));
  return Errorf("{}: '{}' must be a number, got {}", path(), key, GgufTypeName(v->type));
}

Result<bool> GgufFile::Bool(const std::string& key) const {
  OKO_ASSIGN_OR_RETURN(const GgufValue* v, Get(key));
  if (v->type != GgufType::kBool) return Errorf("{}: '{}' must be a bool, got {}", path(), key, GgufTypeName(v->type));
  return std::get<bool>(v->value);
}

Result<const std::vector<GgufValue>*> GgufFile::Array(const std::string& key, GgufType type) const {
  OKO_ASSIGN_OR_RETURN(const GgufValue* v, Get(key));
  if (!v->is_array() || v->element_type != type)
    return Errorf("{}: '{}' must be an array of {}", path(), key, GgufTypeName(type));
  return &v->array();
}

bool IsGgufPath(const std::string& path) {
  if (path.size() < 5) return false;
  std::string ext = path.substr(path.size() - 5);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".gguf";
}

}  // namespace oko
