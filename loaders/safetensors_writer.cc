#include "loaders/safetensors_writer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace oko {

namespace {
uint64_t ByteSize(const TensorToWrite& t) {
  uint64_t n = DTypeSize(t.dtype);
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return n;
}

}  // namespace

TensorToWrite TensorFromBytes(std::string name, DType dtype, std::vector<int64_t> shape,
                              const void* data) {
  TensorToWrite t{std::move(name), dtype, std::move(shape), nullptr};
  const uint64_t n = ByteSize(t);
  t.write = [data, n](AtomicFile& f) { return f.Write(data, n); };
  return t;
}

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  // Largest elements first (stable otherwise), as the Rust safetensors writer does: the data
  // region starts 8-byte aligned, so every tensor is then aligned to its element size.
  std::vector<const TensorToWrite*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    return DTypeSize(a->dtype) > DTypeSize(b->dtype);
  });
  // nlohmann::ordered_json keeps the tensors in the order their bytes are written.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite* t : order) {
    if (header.contains(t->name))
      return Errorf("{}: tensor name '{}' is used twice", path, t->name);
    const uint64_t n = ByteSize(*t);
    header[t->name] = {{"dtype", DTypeName(t->dtype)}, {"shape", t->shape},
                       {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data region starts 8-byte aligned
  OKO_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path));
  const uint64_t len = text.size();
  OKO_RETURN_IF_ERROR(f.Write(&len, 8));
  OKO_RETURN_IF_ERROR(f.Write(text));
  for (const TensorToWrite* t : order) {
    const uint64_t before = f.bytes_written();
    OKO_RETURN_IF_ERROR(t->write(f));
    if (f.bytes_written() - before != ByteSize(*t))
      return Errorf("{}: tensor '{}' wrote {} bytes, expected {}", path, t->name,
                    f.bytes_written() - before, ByteSize(*t));
  }
  return f.Commit();
}

}  // namespace oko
