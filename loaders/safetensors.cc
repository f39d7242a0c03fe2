#include "loaders/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/limits.h"
#include "loaders/json_util.h"

namespace oko {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Multiplies non-negative sizes, failing on overflow past 2^62.
bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > (uint64_t{1} << 62) / a) return false;
  *out = a * b;
  return true;
}

Result<TensorView> ParseEntry(const std::string& name, const json& e, size_t data_size,
                              const std::string& path) {
  auto bad = [&](const std::string& what) {
    return Errorf("{}: tensor '{}': {}", path, name, what);
  };
  if (name.size() > kMaxTensorNameBytes)
    return Errorf("{}: a tensor name is {} bytes long, over the limit of {} bytes ('{}...')", path,
                  name.size(), kMaxTensorNameBytes, name.substr(0, 40));
  if (!e.is_object()) return bad("entry is not an object");
  TensorView t;
  t.name = name;
  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) return bad("missing or non-string 'dtype'");
  auto dtype = DTypeFromName(dt->get<std::string>());
  if (!dtype) return bad(fmt::format("unknown dtype '{}'", dt->get<std::string>()));
  t.dtype = *dtype;

  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) return bad("missing or non-array 'shape'");
  if (sh->size() > kMaxTensorRank)
    return bad(fmt::format("shape has {} dimensions, over the limit of {}", sh->size(), kMaxTensorRank));
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned())
      return bad(fmt::format("shape {} has an entry that is not a non-negative integer",
                             sh->dump()));
    const uint64_t v = d.get<uint64_t>();
    if (!CheckedMul(numel, v, &numel)) return bad("shape is too large");
    t.shape.push_back(static_cast<int64_t>(v));
  }
  uint64_t expected_bytes = 0;
  if (!CheckedMul(numel, DTypeSize(t.dtype), &expected_bytes)) return bad("shape is too large");

  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    return bad("'data_offsets' must be [begin, end] with non-negative integers");
  const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
  if (begin > end) return bad(fmt::format("data_offsets [{}, {}] has begin > end", begin, end));
  if (end > data_size)
    return bad(fmt::format("data_offsets [{}, {}] past the end of the data region ({} bytes)",
                           begin, end, data_size));
  if (end - begin != expected_bytes)
    return bad(fmt::format("shape {} of {} needs {} bytes but data_offsets span {}",
                           ShapeString(t.shape), DTypeName(t.dtype), expected_bytes, end - begin));
  t.nbytes = expected_bytes;
  t.data = reinterpret_cast<const std::byte*>(begin);  // rebased by the caller
  return t;
}

// nlohmann keeps the last of two equal keys; a header that names a tensor twice is
// refused, as Hugging Face's safetensors refuses it. A second, SAX-only pass over the
// (already valid) header sees every top-level key. Returns the first repeated one.
class TopLevelKeys : public nlohmann::json_sax<json> {
 public:
  std::string twice;
  bool key(string_t& k) override {
    if (depth_ == 1 && twice.empty() && !seen_.insert(k).second) twice = k;
    return true;
  }
  bool start_object(std::size_t) override { return ++depth_, true; }
  bool end_object() override { return --depth_, true; }
  bool start_array(std::size_t) override { return ++depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  int depth_ = 0;
  std::set<std::string> seen_;
};

std::string NamedTwice(std::string_view header) {
  TopLevelKeys keys;
  json::sax_parse(header, &keys);
  return keys.twice;
}

// As Hugging Face's safetensors requires, the tensors tile the data region exactly: in
// order of their offsets each begins where the previous one ended (no two share a byte,
// no byte belongs to none), the first at 0 and the last at the region's end. Offsets are
// still relative to the region here.
Status CheckTiling(const std::vector<TensorView>& tensors, size_t region_size, const std::string& path) {
  std::vector<const TensorView*> order;
  for (const auto& t : tensors) order.push_back(&t);
  const auto begin_of = [](const TensorView* t) { return reinterpret_cast<uintptr_t>(t->data); };
  const auto end_of = [&](const TensorView* t) { return begin_of(t) + t->nbytes; };
  std::sort(order.begin(), order.end(), [&](const TensorView* a, const TensorView* b) {
    return begin_of(a) != begin_of(b) ? begin_of(a) < begin_of(b) : end_of(a) < end_of(b);
  });
  uintptr_t covered = 0;                 // bytes [0, covered) belong to a tensor
  const TensorView* furthest = nullptr;  // the tensor that ends at `covered`
  for (const TensorView* t : order) {
    if (begin_of(t) < covered && t->nbytes > 0)
      return Errorf("{}: tensors '{}' and '{}' overlap", path, furthest->name, t->name);
    if (begin_of(t) > covered)
      return Errorf("{}: bytes [{}, {}) of the data region belong to no tensor (before '{}'): tensors must tile "
                    "the data region",
                    path, covered, begin_of(t), t->name);
    if (end_of(t) > covered || furthest == nullptr) {
      covered = end_of(t);
      furthest = t;
    }
  }
  if (covered != region_size)
    return Errorf("{}: bytes [{}, {}) of the data region belong to no tensor (after the last): tensors must tile "
                  "the data region",
                  path, covered, region_size);
  return {};
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Result<std::vector<TensorView>> SafetensorsFile::ParseHeader(
    const std::byte* data, size_t size, const std::string& path,
    std::map<std::string, std::string>* metadata) {
  if (size < 8) return Errorf("{}: file is {} bytes, too short for a safetensors header", path, size);
  uint64_t header_len;
  std::memcpy(&header_len, data, 8);
  if (header_len > kMaxSafetensorsHeaderBytes)
    return Errorf("{}: header length {} exceeds the {} byte limit", path, header_len,
                  kMaxSafetensorsHeaderBytes);
  if (header_len > size - 8)
    return Errorf("{}: header length {} runs past the end of the file ({} bytes)", path,
                  header_len, size);
  const char* text = reinterpret_cast<const char*>(data + 8);
  auto parsed = ParseJsonText(std::string_view(text, header_len), path, "header");
  if (!parsed.ok()) return parsed.status();
  if (const std::string twice = NamedTwice(std::string_view(text, header_len)); !twice.empty())
    return Errorf("{}: the header names tensor '{}' twice", path, twice.substr(0, 200));
  json header = std::move(parsed).value();
  if (!header.is_object()) return Errorf("{}: header is not a JSON object", path);
  if (header.size() > kMaxTensorsPerFile + 1)  // + __metadata__
    return Errorf("{}: the header lists {} tensors, over the limit of {} per file", path,
                  header.size() - header.contains("__metadata__"), kMaxTensorsPerFile);

  const std::byte* region = data + 8 + header_len;
  const size_t region_size = size - 8 - header_len;
  std::vector<TensorView> tensors;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Errorf("{}: __metadata__ is not an object", path);
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return Errorf("{}: __metadata__ value '{}' is not a string", path, m.key());
        if (metadata != nullptr) (*metadata)[m.key()] = m->get<std::string>();
      }
      continue;
    }
    OKO_ASSIGN_OR_RETURN(TensorView t, ParseEntry(it.key(), *it, region_size, path));
    tensors.push_back(std::move(t));
  }
  OKO_RETURN_IF_ERROR(CheckTiling(tensors, region_size, path));
  for (auto& t : tensors) t.data = region + reinterpret_cast<uintptr_t>(t.data);
  return tensors;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  auto f = std::unique_ptr<SafetensorsFile>(new SafetensorsFile);
  OKO_ASSIGN_OR_RETURN(f->file_, MappedFile::Open(path));
  OKO_ASSIGN_OR_RETURN(f->tensors_,
                       ParseHeader(f->file_->data(), f->file_->size(), path, &f->metadata_));
  for (auto& t : f->tensors_) {
    t.file = &f->file_->path();
    if (reinterpret_cast<uintptr_t>(t.data) % DTypeSize(t.dtype) == 0) continue;
    auto& copy = f->aligned_copies_.emplace_back((t.nbytes + 7) / 8);
    std::memcpy(copy.data(), t.data, t.nbytes);
    t.data = reinterpret_cast<const std::byte*>(copy.data());
  }
  return f;
}

Result<ShardIndex> ParseShardIndex(std::string_view text, const std::string& path) {
  OKO_ASSIGN_OR_RETURN(json j, ParseJsonText(text, path));
  if (!j.is_object()) return Errorf("{}: not a JSON object", path);
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) return Errorf("{}: missing 'weight_map' object", path);
  ShardIndex index;
  std::set<std::string> names;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) return Errorf("{}: weight_map['{}'] is not a string", path, it.key());
    const std::string shard = it->get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." ||
        shard == "..")
      return Errorf("{}: weight_map['{}'] names '{}', not a file in the folder", path, it.key(),
                    shard);
    index.weight_map[it.key()] = shard;
    if (names.insert(shard).second) index.shards.push_back(shard);
  }
  return index;
}

Status TensorStore::Add(std::unique_ptr<SafetensorsFile> file) {
  for (const auto& t : file->tensors()) {
    auto [it, inserted] = by_name_.emplace(t.name, t);
    if (!inserted)
      return Errorf("{}: tensor '{}' is also in {}", file->path(), t.name, *it->second.file);
  }
  files_.push_back(std::move(file));
  return {};
}

Status TensorStore::AddView(TensorView t) {
  if (by_name_.count(t.name)) return Errorf("{}: tensor '{}' appears twice", *t.file, t.name);
  by_name_.emplace(t.name, std::move(t));
  return {};
}

Result<TensorStore> TensorStore::OpenDir(const std::string& dir) {
  TensorStore store;
  // As transformers does: model.safetensors first, then the index of a sharded model. Other
  // .safetensors files beside them (adapters, traces, consolidated copies) are not weights.
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (PathExists(single.string())) {
    OKO_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(single.string()));
    OKO_RETURN_IF_ERROR(store.Add(std::move(f)));
    return store;
  }
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> shards;
  if (PathExists(index.string())) {
    OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index.string(), kMaxIndexJsonBytes));
    OKO_ASSIGN_OR_RETURN(ShardIndex parsed, ParseShardIndex(text, index.string()));
    shards = std::move(parsed.shards);
    const std::map<std::string, std::string>& expected = parsed.weight_map;
    for (const auto& shard : shards) {
      const std::string p = (fs::path(dir) / shard).string();
      if (!PathExists(p))
        return Errorf("{}: shard '{}' named in the weight_map is missing", index.string(), shard);
      OKO_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(p));
      OKO_RETURN_IF_ERROR(store.Add(std::move(f)));
    }
    for (const auto& [name, shard] : expected) {
      const TensorView* t = store.Find(name);
      const std::string shard_path = (fs::path(dir) / shard).string();
      if (t == nullptr || *t->file != shard_path)
        return Errorf("{}: tensor '{}' is not in shard '{}'{}", index.string(), name, shard,
                      t == nullptr ? "" : fmt::format(" (it is in {})", *t->file));
    }
    return store;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".safetensors") shards.push_back(entry.path().string());
  if (ec) return Errorf("{}: cannot list the folder: {}", dir, ec.message());
  if (shards.empty()) return Errorf("{}: no *.safetensors file in the folder", dir);
  std::sort(shards.begin(), shards.end());
  for (const auto& p : shards) {
    OKO_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(p));
    OKO_RETURN_IF_ERROR(store.Add(std::move(f)));
  }
  return store;
}

const TensorView* TensorStore::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

bool TensorStore::IsMapped(const TensorView& t) const {
  return std::any_of(files_.begin(), files_.end(), [&](const auto& f) { return f->Maps(t.data); });
}

uint64_t TensorStore::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, t] : by_name_) n += t.nbytes;
  return n;
}

}  // namespace oko
