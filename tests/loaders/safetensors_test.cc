// Safetensors loader: the shared models load zero-copy, the writer round-trips every dtype,
// sharded folders load through their index, and every malformed file is rejected with a
// message naming the file, the tensor and what is wrong.
#include "loaders/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "loaders/safetensors_writer.h"
#include "tests/model_folder.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

const char* const kSharedModels[] = {"stories260k", "tiny-qwen3", "tiny-llama"};

// A safetensors image: u64 LE header length, the header text, then `data_bytes` bytes.
std::string Image(const std::string& header, size_t data_bytes) {
  const uint64_t len = header.size();
  std::string s(reinterpret_cast<const char*>(&len), 8);
  return s + header + std::string(data_bytes, '\x5a');
}

// [begin, end) of every mapping of `path` in this process, from /proc/self/maps.
std::vector<std::pair<uintptr_t, uintptr_t>> MappingsOf(const std::string& path) {
  const std::string canonical = fs::canonical(path).string();
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos || line.substr(slash) != canonical) continue;
    uintptr_t begin = 0, end = 0;
    std::sscanf(line.c_str(), "%lx-%lx", &begin, &end);
    ranges.emplace_back(begin, end);
  }
  return ranges;
}

std::string OpenError(const std::string& path) {
  auto f = SafetensorsFile::Open(path);
  return f.ok() ? "(opened without error)" : f.status().message();
}

TEST(SafetensorsTest, SharedModelsLoadWithTheirHeaderTensors) {
  for (const char* model : kSharedModels) {
    SCOPED_TRACE(model);
    const std::string dir = test::SharedPath(std::string("models/") + model);
    auto store = TensorStore::OpenDir(dir);
    ASSERT_TRUE(store.ok()) << store.status().message();
    const auto header = test::SafetensorsHeader(dir + "/model.safetensors");
    ASSERT_EQ(store->tensors().size(), header.size() - 1);  // all but __metadata__
    ASSERT_EQ(store->files().size(), 1u);
    uint64_t total = 0;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") continue;
      const TensorView* t = store->Find(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(DTypeName(t->dtype), entry["dtype"].get<std::string>()) << name;
      EXPECT_EQ(t->shape, entry["shape"].get<std::vector<int64_t>>()) << name;
      const auto off = entry["data_offsets"].get<std::vector<uint64_t>>();
      EXPECT_EQ(t->nbytes, off[1] - off[0]) << name;
      total += off[1] - off[0];
    }
    EXPECT_EQ(store->total_bytes(), total);
    EXPECT_EQ(store->Find("no.such.tensor"), nullptr);
  }
}

TEST(SafetensorsTest, TensorsAreViewsIntoTheMapping) {
  for (const char* model : kSharedModels) {
    SCOPED_TRACE(model);
    const std::string path = test::SharedPath(std::string("models/") + model + "/model.safetensors");
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().message();
    const auto ranges = MappingsOf(path);
    ASSERT_FALSE(ranges.empty()) << path << " is not mapped";
    const std::string bytes = test::ReadBytes(path);
    const auto header = test::SafetensorsHeader(path);
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    for (const TensorView& t : (*file)->tensors()) {
      const auto p = reinterpret_cast<uintptr_t>(t.data);
      bool inside = false;
      for (const auto& [begin, end] : ranges) inside |= p >= begin && p + t.nbytes <= end;
      EXPECT_TRUE(inside) << t.name << " does not point into the mapping of " << path;
      EXPECT_EQ(*t.file, path);
      // The view's bytes are the file's bytes at 8 + header + data_offsets[0].
      const uint64_t begin = header[t.name]["data_offsets"][0].get<uint64_t>();
      ASSERT_EQ(std::memcmp(t.data, bytes.data() + 8 + header_len + begin, t.nbytes), 0) << t.name;
    }
  }
}

TEST(SafetensorsTest, MisalignedTensorsAreCopiedToAlignedMemory) {
  // A header of 8k + 3 bytes puts the data region at an odd address; "b" is also at an
  // offset that is not a multiple of 4.
  std::string header = R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[6,14]}})";
  while (header.size() % 8 != 3) header += ' ';
  const float b_values[2] = {1.5f, -2.25f};
  const uint16_t a_values[3] = {0x3f80, 0x4000, 0xc040};  // bf16 1, 2, -3
  std::string data(14, '\0');
  std::memcpy(data.data(), a_values, 6);
  std::memcpy(data.data() + 6, b_values, 8);
  const uint64_t len = header.size();
  const std::string path = test::TempDir("misaligned") + "/m.safetensors";
  test::WriteBytes(path, std::string(reinterpret_cast<const char*>(&len), 8) + header + data);

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  for (const TensorView& t : (*file)->tensors()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % DTypeSize(t.dtype), 0u) << t.name;
    const auto* expected = t.name == "a" ? static_cast<const void*>(a_values) : b_values;
    EXPECT_EQ(std::memcmp(t.data, expected, t.nbytes), 0) << t.name;
  }
  EXPECT_EQ((*file)->tensors().size(), 2u);
}

TEST(SafetensorsTest, MetadataIsKept) {
  for (const char* model : kSharedModels) {
    auto file = SafetensorsFile::Open(
        test::SharedPath(std::string("models/") + model + "/model.safetensors"));
    ASSERT_TRUE(file.ok()) << file.status().message();
    const std::map<std::string, std::string> expected = {{"format", "pt"}};
    EXPECT_EQ((*file)->metadata(), expected) << model;
  }
  const std::string path = test::TempDir("metadata") + "/m.safetensors";
  const float x = 1.5f;
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"tokens", "[\"a\", \"b\"]"}, {"empty", ""}};
  ASSERT_TRUE(WriteSafetensors(path, {TensorFromBytes("x", DType::kF32, {1}, &x)}, meta).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ((*file)->metadata(), meta);
  ASSERT_EQ((*file)->tensors().size(), 1u);
  EXPECT_EQ((*file)->tensors()[0].as<float>()[0], 1.5f);
}

TEST(SafetensorsTest, WriterRoundTripsEveryDtype) {
  const std::string path = test::TempDir("round_trip") + "/all.safetensors";
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<TensorToWrite> tensors;
  for (const DTypeInfo& info : kDTypes) {
    const std::vector<int64_t> shape = {3, 5};
    std::vector<uint8_t> bytes(15 * info.size);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + info.size);
    payloads.push_back(std::move(bytes));
    tensors.push_back(TensorFromBytes(fmt::format("t.{}", info.name), info.dtype, shape,
                                      payloads.back().data()));
  }
  const double scalar = -2.25;
  tensors.push_back(TensorFromBytes("scalar", DType::kF64, {}, &scalar));
  tensors.push_back(TensorFromBytes("empty", DType::kF32, {4, 0}, nullptr));
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));

  // The data region starts 8-byte aligned and holds exactly the tensors' bytes.
  const std::string bytes = test::ReadBytes(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  uint64_t data_bytes = sizeof scalar;
  for (const auto& p : payloads) data_bytes += p.size();
  EXPECT_EQ(bytes.size(), 8 + header_len + data_bytes);

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ((*file)->tensors().size(), std::size(kDTypes) + 2);
  EXPECT_TRUE((*file)->metadata().empty());
  std::map<std::string, const TensorView*> got;
  for (const TensorView& t : (*file)->tensors()) got[t.name] = &t;
  for (size_t i = 0; i < std::size(kDTypes); ++i) {
    SCOPED_TRACE(kDTypes[i].name);
    const TensorView* t = got[fmt::format("t.{}", kDTypes[i].name)];
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, kDTypes[i].dtype);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 5}));
    EXPECT_EQ(t->numel(), 15);
    ASSERT_EQ(t->nbytes, payloads[i].size());
    EXPECT_EQ(std::memcmp(t->data, payloads[i].data(), t->nbytes), 0);
  }
  ASSERT_NE(got["scalar"], nullptr);
  EXPECT_EQ(got["scalar"]->shape, std::vector<int64_t>{});
  EXPECT_EQ(got["scalar"]->as<double>()[0], -2.25);
  ASSERT_NE(got["empty"], nullptr);
  EXPECT_EQ(got["empty"]->numel(), 0);
  EXPECT_EQ(got["empty"]->nbytes, 0u);
  // Mixed sizes are laid out so that every view is aligned to its element size.
  for (const TensorView& t : (*file)->tensors())
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % DTypeSize(t.dtype), 0u) << t.name;
}

TEST(SafetensorsTest, WriterKeepsTheOrderOfEqualSizesAndAlignsMixedOnes) {
  const std::string path = test::TempDir("order") + "/order.safetensors";
  const uint8_t bytes[16] = {};
  ASSERT_TRUE(WriteSafetensors(path, {TensorFromBytes("z.u8", DType::kU8, {3}, bytes),
                                      TensorFromBytes("y.f32", DType::kF32, {1}, bytes),
                                      TensorFromBytes("x.bf16", DType::kBF16, {1}, bytes),
                                      TensorFromBytes("w.f32", DType::kF32, {2}, bytes),
                                      TensorFromBytes("v.i64", DType::kI64, {1}, bytes)})
                  .ok());
  const auto header = test::SafetensorsHeader(path);
  std::vector<std::pair<std::string, uint64_t>> layout;
  for (const auto& [name, entry] : header.items())
    layout.emplace_back(name, entry["data_offsets"][0].get<uint64_t>());
  EXPECT_EQ(layout, (std::vector<std::pair<std::string, uint64_t>>{
                        {"v.i64", 0}, {"y.f32", 8}, {"w.f32", 12}, {"x.bf16", 20}, {"z.u8", 22}}));
}

TEST(SafetensorsTest, WriterRejectsADuplicateName) {
  const std::string path = test::TempDir("dup_write") + "/dup.safetensors";
  const float x[2] = {};
  const Status s = WriteSafetensors(path, {TensorFromBytes("w", DType::kF32, {1}, x),
                                           TensorFromBytes("w", DType::kF32, {2}, x)});
  EXPECT_EQ(s.message(), path + ": tensor name 'w' is used twice");
  EXPECT_FALSE(fs::exists(path));
}

TEST(SafetensorsTest, DtypeNamesAndSizesMatchTheFormat) {
  const std::map<std::string, size_t> expected = {
      {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I8", 1}, {"U8", 1},  {"I16", 2},
      {"U16", 2}, {"I32", 4}, {"U32", 4},  {"I64", 8}, {"U64", 8}, {"BOOL", 1}};
  for (const auto& [name, size] : expected) {
    auto dtype = DTypeFromName(name);
    ASSERT_TRUE(dtype.has_value()) << name;
    EXPECT_EQ(DTypeName(*dtype), name);
    EXPECT_EQ(DTypeSize(*dtype), size) << name;
  }
  EXPECT_FALSE(DTypeFromName("f32").has_value());
  EXPECT_FALSE(DTypeFromName("F8_E4M3").has_value());
}

TEST(SafetensorsTest, WriterFailsWhenATensorWritesTheWrongByteCount) {
  const std::string path = test::TempDir("short_write") + "/short.safetensors";
  TensorToWrite t{"w", DType::kF32, {4}, [](AtomicFile& f) { return f.Write("abc", 3); }};
  const Status s = WriteSafetensors(path, {t});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("tensor 'w' wrote 3 bytes, expected 16"));
  EXPECT_FALSE(fs::exists(path)) << "a failed write must not leave a file";
}

// Two shards and an index, as transformers' save_pretrained writes them.
struct ShardedFolder {
  std::string dir;
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8}, c = {9, 10, 11};

  explicit ShardedFolder(const std::string& name) : dir(test::TempDir(name)) {}
  std::string Shard(int i) const { return fmt::format("model-0000{}-of-00002.safetensors", i); }
  void WriteShards() const {
    ASSERT_TRUE(WriteSafetensors(dir + "/" + Shard(1),
                                 {TensorFromBytes("a", DType::kF32, {2, 3}, a.data()),
                                  TensorFromBytes("b", DType::kF32, {2}, b.data())},
                                 {{"format", "pt"}})
                    .ok());
    ASSERT_TRUE(WriteSafetensors(dir + "/" + Shard(2),
                                 {TensorFromBytes("c", DType::kF32, {3}, c.data())},
                                 {{"format", "pt"}})
                    .ok());
  }
  void WriteIndex(const json& weight_map) const {
    const json index = {{"metadata", {{"total_size", 44}}}, {"weight_map", weight_map}};
    test::WriteBytes(dir + "/model.safetensors.index.json", index.dump(2));
  }
  json Map() const { return {{"a", Shard(1)}, {"b", Shard(1)}, {"c", Shard(2)}}; }
  std::string Error() const {
    auto store = TensorStore::OpenDir(dir);
    return store.ok() ? "(opened without error)" : store.status().message();
  }
};

TEST(SafetensorsTest, ShardedFolderLoadsThroughItsIndex) {
  ShardedFolder f("sharded");
  f.WriteShards();
  f.WriteIndex(f.Map());
  auto store = TensorStore::OpenDir(f.dir);
  ASSERT_TRUE(store.ok()) << store.status().message();
  ASSERT_EQ(store->files().size(), 2u) << "each shard is mapped once";
  EXPECT_EQ(store->tensors().size(), 3u);
  EXPECT_EQ(store->total_bytes(), 44u);
  const TensorView* a = store->Find("a");
  const TensorView* c = store->Find("c");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(*a->file, f.dir + "/" + f.Shard(1));
  EXPECT_EQ(*c->file, f.dir + "/" + f.Shard(2));
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->as<float>()[5], 6.0f);
  EXPECT_EQ(c->as<float>()[2], 11.0f);
  EXPECT_EQ(MappingsOf(f.dir + "/" + f.Shard(1)).size(), 1u);
  EXPECT_EQ(MappingsOf(f.dir + "/" + f.Shard(2)).size(), 1u);
}

TEST(SafetensorsTest, FolderWithoutIndexLoadsEverySafetensorsFile) {
  ShardedFolder f("no_index");
  f.WriteShards();
  auto store = TensorStore::OpenDir(f.dir);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(store->files().size(), 2u);
  EXPECT_EQ(store->tensors().size(), 3u);
}

TEST(SafetensorsTest, ModelSafetensorsIsPreferredAsTransformersDoes) {
  ShardedFolder f("prefer_single");
  f.WriteShards();
  f.WriteIndex(f.Map());
  const float x = 3;
  ASSERT_TRUE(WriteSafetensors(f.dir + "/model.safetensors",
                               {TensorFromBytes("x", DType::kF32, {1}, &x)})
                  .ok());
  ASSERT_TRUE(WriteSafetensors(f.dir + "/adapter_model.safetensors",
                               {TensorFromBytes("base_model.x", DType::kF32, {1}, &x)})
                  .ok());
  auto store = TensorStore::OpenDir(f.dir);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(store->files().size(), 1u);
  ASSERT_EQ(store->tensors().size(), 1u);
  EXPECT_EQ(*store->Find("x")->file, f.dir + "/model.safetensors");
  EXPECT_TRUE(MappingsOf(f.dir + "/" + f.Shard(1)).empty()) << "shards of a stale index are not read";
}

TEST(SafetensorsTest, ShardNamedInTheIndexIsMissing) {
  ShardedFolder f("missing_shard");
  f.WriteShards();
  fs::remove(f.dir + "/" + f.Shard(2));
  f.WriteIndex(f.Map());
  const std::string e = f.Error();
  EXPECT_THAT(e, HasSubstr(f.dir + "/model.safetensors.index.json"));
  EXPECT_THAT(e, HasSubstr("shard 'model-00002-of-00002.safetensors' named in the weight_map is missing"));
}

TEST(SafetensorsTest, TensorInTheIndexButNotInItsShard) {
  ShardedFolder f("not_in_shard");
  f.WriteShards();
  json map = f.Map();
  map["d"] = f.Shard(2);
  f.WriteIndex(map);
  EXPECT_THAT(f.Error(), HasSubstr("model.safetensors.index.json: tensor 'd' is not in shard "
                                   "'model-00002-of-00002.safetensors'"));
}

TEST(SafetensorsTest, TensorInTheIndexButInAnotherShard) {
  ShardedFolder f("wrong_shard");
  f.WriteShards();
  json map = f.Map();
  map["c"] = f.Shard(1);  // c lives in shard 2, and shard 2 is named by nobody else
  map["b"] = f.Shard(2);
  f.WriteIndex(map);
  EXPECT_THAT(f.Error(), HasSubstr("tensor 'b' is not in shard 'model-00002-of-00002.safetensors'"));
}

TEST(SafetensorsTest, DuplicateTensorAcrossShards) {
  ShardedFolder f("duplicate");
  f.WriteShards();
  ASSERT_TRUE(WriteSafetensors(f.dir + "/" + f.Shard(2),
                               {TensorFromBytes("c", DType::kF32, {3}, f.c.data()),
                                TensorFromBytes("a", DType::kF32, {2, 3}, f.a.data())})
                  .ok());
  f.WriteIndex(f.Map());
  const std::string e = f.Error();
  EXPECT_THAT(e, HasSubstr(f.dir + "/" + f.Shard(2) + ": tensor 'a' is also in " + f.dir + "/" +
                           f.Shard(1)));
}

TEST(SafetensorsTest, IndexThatIsNotAWeightMap) {
  ShardedFolder f("bad_index");
  f.WriteShards();
  test::WriteBytes(f.dir + "/model.safetensors.index.json", "{\"weight_map\": ");
  EXPECT_THAT(f.Error(), HasSubstr("model.safetensors.index.json: not valid JSON"));
  test::WriteBytes(f.dir + "/model.safetensors.index.json", "{\"metadata\": {}}");
  EXPECT_THAT(f.Error(), HasSubstr("model.safetensors.index.json: missing 'weight_map' object"));
  f.WriteIndex({{"a", 3}});
  EXPECT_THAT(f.Error(), HasSubstr("weight_map['a'] is not a string"));
  f.WriteIndex({{"a", "../elsewhere.safetensors"}});
  EXPECT_THAT(f.Error(), HasSubstr("weight_map['a'] names '../elsewhere.safetensors', not a file "
                                   "in the folder"));
}

TEST(SafetensorsTest, FolderWithoutSafetensors) {
  const std::string dir = test::TempDir("empty_folder");
  auto store = TensorStore::OpenDir(dir);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().message(), dir + ": no *.safetensors file in the folder");
  const std::string missing = dir + "/absent";
  store = TensorStore::OpenDir(missing);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(missing + ": cannot list the folder"));
}

TEST(SafetensorsTest, MissingFile) {
  const std::string path = test::TempDir("missing_file") + "/absent.safetensors";
  EXPECT_THAT(OpenError(path), HasSubstr(path + ": cannot open: No such file or directory"));
}

// Any image the parser accepts yields views inside it, without overlaps; run it under
// -DOKO_SANITIZE=ON to also catch reads outside the buffer.
TEST(SafetensorsTest, TruncatedOrCorruptedImagesNeverEscapeTheBuffer) {
  const std::string path = test::TempDir("fuzz") + "/f.safetensors";
  const float a[6] = {1, 2, 3, 4, 5, 6};
  const uint16_t b[3] = {1, 2, 3};
  ASSERT_TRUE(WriteSafetensors(path, {TensorFromBytes("a", DType::kF32, {2, 3}, a),
                                      TensorFromBytes("b", DType::kBF16, {3}, b),
                                      TensorFromBytes("e", DType::kI8, {0}, nullptr)},
                               {{"k", "v"}})
                  .ok());
  const std::string good = test::ReadBytes(path);
  auto check = [](const std::string& image) {
    std::vector<std::byte> buf(image.size());  // exactly sized, so ASan sees any overrun
    if (!image.empty()) std::memcpy(buf.data(), image.data(), image.size());
    auto parsed = SafetensorsFile::ParseHeader(buf.data(), buf.size(), "f", nullptr);
    if (!parsed.ok()) return false;
    for (const TensorView& t : *parsed) {
      EXPECT_GE(t.data, buf.data() + 8);
      EXPECT_LE(t.data + t.nbytes, buf.data() + buf.size());
      EXPECT_EQ(static_cast<int64_t>(t.nbytes), t.numel() * static_cast<int64_t>(DTypeSize(t.dtype)));
    }
    return true;
  };
  ASSERT_TRUE(check(good));
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(check(good.substr(0, n))) << "a file cut to " << n << " bytes was accepted";
  std::mt19937 rng(1234);
  for (int i = 0; i < 3000; ++i) {
    std::string image = good;
    for (int flips = 1 + i % 3; flips > 0; --flips)
      image[rng() % image.size()] = static_cast<char>(rng());
    check(image);
  }
}

// One malformed file: its bytes and a substring the error must contain (after the path).
struct Malformed {
  const char* name;
  std::string bytes;
  const char* expected;
};

std::string Tensor(const std::string& name, const std::string& dtype, const std::string& shape,
                   uint64_t begin, uint64_t end) {
  return fmt::format(R"("{}": {{"dtype": "{}", "shape": {}, "data_offsets": [{}, {}]}})", name,
                     dtype, shape, begin, end);
}

std::string LengthOnly(uint64_t len) { return std::string(reinterpret_cast<const char*>(&len), 8); }

const Malformed kMalformed[] = {
    {"Empty", "", "file is 0 bytes, too short for a safetensors header"},
    {"Truncated", std::string("\x10\0\0\0", 4), "file is 4 bytes, too short for a safetensors header"},
    {"HeaderPastEnd", LengthOnly(64) + "{}", "header length 64 runs past the end of the file (10 bytes)"},
    {"HeaderOver100MB", LengthOnly((100u << 20) + 1) + "{}",
     "header length 104857601 exceeds the 104857600 byte limit"},
    {"HeaderNotJson", Image("{\"a\": {\"dtype\": ", 0), "header is not valid JSON"},
    {"HeaderNotObject", Image("[1, 2, 3]", 0), "header is not a JSON object"},
    {"EntryNotObject", Image(R"({"w": [1, 2]})", 0), "tensor 'w': entry is not an object"},
    {"OffsetsOutOfRange", Image("{" + Tensor("w", "F32", "[4]", 0, 16) + "}", 12),
     "tensor 'w': data_offsets [0, 16] past the end of the data region (12 bytes)"},
    {"BeginAfterEnd", Image("{" + Tensor("w", "F32", "[0]", 8, 4) + "}", 16),
     "tensor 'w': data_offsets [8, 4] has begin > end"},
    {"Overlap",
     Image("{" + Tensor("a", "F32", "[4]", 0, 16) + ", " + Tensor("b", "F32", "[2]", 8, 16) + "}", 16),
     "tensors 'a' and 'b' overlap"},
    {"OverlapBehindAnEmptyTensor",
     Image("{" + Tensor("a", "F32", "[8]", 0, 32) + ", " + Tensor("e", "F32", "[0]", 4, 4) + ", " +
               Tensor("b", "F32", "[2]", 16, 24) + "}",
           32),
     "tensors 'a' and 'b' overlap"},
    {"SizeShapeMismatch", Image("{" + Tensor("w", "BF16", "[2, 3]", 0, 16) + "}", 16),
     "tensor 'w': shape [2, 3] of BF16 needs 12 bytes but data_offsets span 16"},
    {"UnknownDtype", Image("{" + Tensor("w", "F7", "[1]", 0, 1) + "}", 1),
     "tensor 'w': unknown dtype 'F7'"},
    {"MissingDtype", Image(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4),
     "tensor 'w': missing or non-string 'dtype'"},
    {"NegativeShape", Image("{" + Tensor("w", "F32", "[2, -1]", 0, 8) + "}", 8),
     "tensor 'w': shape [2,-1] has an entry that is not a non-negative integer"},
    {"NonIntegerShape", Image("{" + Tensor("w", "F32", "[2.5]", 0, 8) + "}", 8),
     "tensor 'w': shape [2.5] has an entry that is not a non-negative integer"},
    {"ShapeNotArray", Image("{" + Tensor("w", "F32", "4", 0, 16) + "}", 16),
     "tensor 'w': missing or non-array 'shape'"},
    {"ShapeOverflow", Image("{" + Tensor("w", "F32", "[4294967296, 4294967296]", 0, 8) + "}", 8),
     "tensor 'w': shape is too large"},
    {"BadOffsets", Image(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4),
     "tensor 'w': 'data_offsets' must be [begin, end] with non-negative integers"},
    {"MetadataNotStrings", Image(R"({"__metadata__": {"n": 3}})", 0),
     "__metadata__ value 'n' is not a string"},
};

void PrintTo(const Malformed& m, std::ostream* os) { *os << m.name; }

class MalformedTest : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedTest, IsRejectedNamingFileTensorAndProblem) {
  const Malformed& m = GetParam();
  const std::string path = test::TempDir(std::string("malformed_") + m.name) + "/model.safetensors";
  test::WriteBytes(path, m.bytes);
  ASSERT_EQ(fs::file_size(path), m.bytes.size());
  EXPECT_THAT(OpenError(path), HasSubstr(path + ": " + m.expected));
  // The same image parsed from memory gives the same message.
  auto parsed = SafetensorsFile::ParseHeader(reinterpret_cast<const std::byte*>(m.bytes.data()),
                                             m.bytes.size(), "mem", nullptr);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr(std::string("mem: ") + m.expected));
  // A folder holding it fails to load too.
  auto store = TensorStore::OpenDir(fs::path(path).parent_path().string());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(m.expected));
}

INSTANTIATE_TEST_SUITE_P(SafetensorsTest, MalformedTest, ::testing::ValuesIn(kMalformed),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace oko
