// GGUF parser: llama.cpp's files in shared/models/gguf parse with the tensors types.json
// lists, every metadata value type (nested arrays too) round-trips from a file written
// here, and every malformed file is refused with a message naming the file and the key or
// tensor. GGUF as a model (loaders/gguf_model.h): tensor names, and metadata that does
// not make a model named by its GGUF key.
#include "loaders/gguf.h"
#include "loaders/gguf_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <algorithm>

#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Writes GGUF images byte by byte, so that tests can also write broken ones.
class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) {
    Put<uint32_t>(0x46554747);  // "GGUF"
    Put(version);
  }

  template <typename T>
  GgufBuilder& Put(T v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  GgufBuilder& Str(const std::string& s) {
    Put<uint64_t>(s.size());
    bytes_ += s;
    return *this;
  }
  // The two counts of the header.
  GgufBuilder& Counts(uint64_t tensors, uint64_t keys) { return Put(tensors).Put(keys); }
  GgufBuilder& Key(const std::string& key, GgufType type) { return Str(key).Put(static_cast<uint32_t>(type)); }
  GgufBuilder& TensorInfo(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    Str(name).Put<uint32_t>(ne.size());
    for (uint64_t d : ne) Put(d);
    return Put(type).Put(offset);
  }
  // Zero bytes up to the next multiple of `alignment`, then `data`.
  GgufBuilder& Data(const std::string& data, size_t alignment = 32) {
    bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, '\0');
    bytes_ += data;
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

Result<GgufContents> Parse(const std::string& image) {
  return ParseGguf(reinterpret_cast<const std::byte*>(image.data()), image.size(), "t.gguf");
}

std::string ParseError(const std::string& image) {
  auto c = Parse(image);
  return c.ok() ? "(parsed without error)" : c.status().message();
}

// One F32 tensor "w" of 4 values at offset 0, after `keys` metadata pairs written by `meta`.
std::string WithMetadata(uint64_t keys, const std::function<void(GgufBuilder&)>& meta) {
  GgufBuilder b;
  b.Counts(1, keys);
  meta(b);
  b.TensorInfo("w", {4}, 0, 0);
  return b.Data(std::string(16, '\1')).bytes();
}

TEST(GgufTest, SharedFilesParseWithTheTensorsOfTypesJson) {
  const auto types = test::ReadJson(test::SharedPath("models/gguf/types.json"));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(test::SharedPath("models/gguf"))) {
    if (entry.path().extension() != ".gguf") continue;
    SCOPED_TRACE(entry.path().string());
    ++files;
    auto f = GgufFile::Open(entry.path().string());
    ASSERT_TRUE(f.ok()) << f.status().message();
    const auto& expected = types[entry.path().filename().string()];
    ASSERT_EQ((*f)->tensors().size(), expected.size());
    for (const auto& e : expected) {
      const GgufTensor* t = (*f)->FindTensor(e["name"].get<std::string>());
      ASSERT_NE(t, nullptr) << e["name"];
      EXPECT_EQ(GgmlTypeSizeOf(t->ggml_type)->name, e["type"].get<std::string>()) << t->name;
      EXPECT_EQ(t->shape(), e["shape"].get<std::vector<int64_t>>()) << t->name;
      EXPECT_EQ(t->nbytes, e["bytes"].get<size_t>()) << t->name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % (*f)->contents().alignment, 0u) << t->name;
    }
    EXPECT_EQ((*f)->contents().version, 3u);
    EXPECT_TRUE((*f)->String("general.architecture").ok());
  }
  EXPECT_EQ(files, 9);
}

TEST(GgufTest, SharedQwenFileHasItsTokenizerArrays) {
  auto f = GgufFile::Open(test::SharedPath("models/gguf/tiny-qwen3-q8_0.gguf"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(*(*f)->String("general.architecture"), "qwen3");
  EXPECT_EQ(*(*f)->Uint("qwen3.block_count"), 4u);
  EXPECT_EQ(*(*f)->Uint("tokenizer.ggml.bos_token_id"), 151643u);
  auto tokens = (*f)->Array("tokenizer.ggml.tokens", GgufType::kString);
  ASSERT_TRUE(tokens.ok()) << tokens.status().message();
  EXPECT_EQ((*tokens)->size(), 151936u);
  auto merges = (*f)->Array("tokenizer.ggml.merges", GgufType::kString);
  ASSERT_TRUE(merges.ok());
  EXPECT_EQ((*merges)->size(), 151387u);
  EXPECT_TRUE((*f)->String("tokenizer.chat_template").ok());
}

TEST(GgufTest, EveryValueTypeAndNestedArraysRoundTrip) {
  const std::string image = WithMetadata(14, [](GgufBuilder& b) {
    b.Key("u8", GgufType::kUint8).Put<uint8_t>(200);
    b.Key("i8", GgufType::kInt8).Put<int8_t>(-5);
    b.Key("u16", GgufType::kUint16).Put<uint16_t>(60000);
    b.Key("i16", GgufType::kInt16).Put<int16_t>(-30000);
    b.Key("u32", GgufType::kUint32).Put<uint32_t>(4000000000u);
    b.Key("i32", GgufType::kInt32).Put<int32_t>(-2000000000);
    b.Key("f32", GgufType::kFloat32).Put<float>(0.5f);
    b.Key("bool", GgufType::kBool).Put<uint8_t>(1);
    b.Key("str", GgufType::kString).Str("héllo");
    b.Key("u64", GgufType::kUint64).Put<uint64_t>(uint64_t{1} << 40);
    b.Key("i64", GgufType::kInt64).Put<int64_t>(-(int64_t{1} << 40));
    b.Key("f64", GgufType::kFloat64).Put<double>(1e-300);
    b.Key("strs", GgufType::kArray).Put(static_cast<uint32_t>(GgufType::kString)).Put<uint64_t>(2).Str("a").Str("");
    // [[1, 2], []] of int32
    b.Key("nested", GgufType::kArray).Put(static_cast<uint32_t>(GgufType::kArray)).Put<uint64_t>(2);
    b.Put(static_cast<uint32_t>(GgufType::kInt32)).Put<uint64_t>(2).Put<int32_t>(1).Put<int32_t>(2);
    b.Put(static_cast<uint32_t>(GgufType::kInt32)).Put<uint64_t>(0);
  });
  auto c = Parse(image);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto& m = c->metadata;
  ASSERT_EQ(m.size(), 14u);
  EXPECT_EQ(std::get<uint64_t>(m.at("u8").value), 200u);
  EXPECT_EQ(std::get<int64_t>(m.at("i8").value), -5);
  EXPECT_EQ(std::get<uint64_t>(m.at("u16").value), 60000u);
  EXPECT_EQ(std::get<int64_t>(m.at("i16").value), -30000);
  EXPECT_EQ(std::get<uint64_t>(m.at("u32").value), 4000000000u);
  EXPECT_EQ(std::get<int64_t>(m.at("i32").value), -2000000000);
  EXPECT_EQ(std::get<double>(m.at("f32").value), 0.5);
  EXPECT_EQ(std::get<bool>(m.at("bool").value), true);
  EXPECT_EQ(m.at("str").str(), "héllo");
  EXPECT_EQ(std::get<uint64_t>(m.at("u64").value), uint64_t{1} << 40);
  EXPECT_EQ(std::get<int64_t>(m.at("i64").value), -(int64_t{1} << 40));
  EXPECT_EQ(std::get<double>(m.at("f64").value), 1e-300);
  ASSERT_EQ(m.at("strs").array().size(), 2u);
  EXPECT_EQ(m.at("strs").array()[0].str(), "a");
  const GgufValue& nested = m.at("nested");
  EXPECT_EQ(nested.element_type, GgufType::kArray);
  ASSERT_EQ(nested.array().size(), 2u);
  ASSERT_EQ(nested.array()[0].array().size(), 2u);
  EXPECT_EQ(std::get<int64_t>(nested.array()[0].array()[1].value), 2);
  EXPECT_TRUE(nested.array()[1].array().empty());
  ASSERT_EQ(c->tensors.size(), 1u);
  EXPECT_EQ(c->tensors[0].nbytes, 16u);
  EXPECT_EQ(c->data_offset % 32, 0u);
}

TEST(GgufTest, VersionTwoParsesAndAlignmentIsHonoured) {
  GgufBuilder b(2);
  b.Counts(2, 1).Key("general.alignment", GgufType::kUint32).Put<uint32_t>(64);
  b.TensorInfo("a", {2}, 0, 0).TensorInfo("b", {32, 2}, 8, 64);  // F32 [2]; Q8_0 2 rows of 32
  const std::string image = b.Data(std::string(64 + 68, '\2'), 64).bytes();
  auto c = Parse(image);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->alignment, 64u);
  EXPECT_EQ(c->data_offset % 64, 0u);
  EXPECT_EQ(c->tensors[1].nbytes, 68u);
  EXPECT_EQ(c->tensors[1].shape(), (std::vector<int64_t>{2, 32}));
}

struct Malformed {
  const char* what;
  std::string image;
  const char* message;  // a part of the error
};

std::vector<Malformed> MalformedImages() {
  auto header = [](uint64_t tensors, uint64_t keys) {
    GgufBuilder b;
    b.Counts(tensors, keys);
    return b;
  };
  auto one_tensor = [&](std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data) {
    GgufBuilder b = header(1, 0);
    return b.TensorInfo("blk.0.w", ne, type, offset).Data(std::string(data, '\3')).bytes();
  };
  std::vector<Malformed> v;
  v.push_back({"empty", "", "inside the header"});
  v.push_back({"bad magic", "GGUX\3\0\0\0", "not a GGUF file"});
  v.push_back({"version 1", GgufBuilder(1).Counts(0, 0).bytes(), "version 1 is not supported"});
  v.push_back({"truncated counts", GgufBuilder().Put<uint64_t>(0).bytes(), "inside the header"});
  v.push_back({"too many tensors", header(uint64_t{1} << 40, 0).bytes(), "over the limit"});
  v.push_back({"too many keys", header(0, uint64_t{1} << 40).bytes(), "metadata keys, over the limit"});
  v.push_back({"key runs past the end", header(0, 1).Put<uint64_t>(1000).bytes(), "runs past the end"});
  v.push_back({"huge key", header(0, 1).Put<uint64_t>(uint64_t{1} << 20).bytes(), "over the limit"});
  v.push_back({"unknown value type", header(0, 1).Key("k", GgufType(13)).bytes(), "'k' has unknown value type 13"});
  v.push_back({"bool of 2", header(0, 1).Key("k", GgufType::kBool).Put<uint8_t>(2).bytes(), "'k': a bool is 2"});
  v.push_back({"truncated value", header(0, 1).Key("k", GgufType::kUint64).Put<uint32_t>(1).bytes(),
               "inside the value of 'k'"});
  v.push_back({"string past the end", header(0, 1).Key("k", GgufType::kString).Put<uint64_t>(99).bytes(),
               "the value of 'k' (99 bytes) runs past the end"});
  v.push_back({"array longer than the file",
               header(0, 1).Key("k", GgufType::kArray).Put<uint32_t>(10).Put<uint64_t>(1000000).bytes(),
               "'k': array of 1000000 uint64 values runs past the end"});
  v.push_back({"array over the limit",
               header(0, 1).Key("k", GgufType::kArray).Put<uint32_t>(0).Put<uint64_t>(uint64_t{1} << 60).bytes(),
               "over the limit"});
  v.push_back({"array of unknown type",
               header(0, 1).Key("k", GgufType::kArray).Put<uint32_t>(77).Put<uint64_t>(0).bytes(),
               "'k': array of unknown value type 77"});
  {
    GgufBuilder b = header(0, 1);
    b.Key("deep", GgufType::kArray);
    for (int i = 0; i < 6; ++i) b.Put(static_cast<uint32_t>(GgufType::kArray)).Put<uint64_t>(1);
    v.push_back({"arrays nested too deep", b.Put<uint32_t>(0).Put<uint64_t>(0).bytes(), "'deep': arrays nested"});
  }
  v.push_back({"duplicate key",
               header(0, 2).Key("k", GgufType::kUint8).Put<uint8_t>(1).Key("k", GgufType::kUint8).Put<uint8_t>(2).bytes(),
               "metadata key 'k' appears twice"});
  v.push_back({"alignment not a power of two",
               header(0, 1).Key("general.alignment", GgufType::kUint32).Put<uint32_t>(48).bytes(),
               "'general.alignment' is 48"});
  v.push_back({"alignment of the wrong type",
               header(0, 1).Key("general.alignment", GgufType::kString).Str("32").bytes(),
               "'general.alignment' must be a uint32"});
  v.push_back({"zero dimensions", one_tensor({}, 0, 0, 0), "tensor 'blk.0.w': 0 dimensions"});
  v.push_back({"five dimensions", one_tensor({1, 1, 1, 1, 1}, 0, 0, 4), "tensor 'blk.0.w': 5 dimensions"});
  v.push_back({"unknown ggml type", one_tensor({4}, 99, 0, 16), "tensor 'blk.0.w': unknown ggml type 99"});
  v.push_back({"row not a multiple of the block", one_tensor({48, 1}, 8, 0, 64),
               "tensor 'blk.0.w': rows of 48 values are not a multiple of Q8_0's block of 32"});
  v.push_back({"shape overflows", one_tensor({uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0, 0),
               "tensor 'blk.0.w': shape is too large"});
  v.push_back({"tensor past the end", one_tensor({8}, 0, 0, 16), "tensor 'blk.0.w': bytes [0, 32) of the data region"});
  v.push_back({"offset far outside", one_tensor({4}, 0, uint64_t{1} << 63, 16), "lie outside the file"});
  v.push_back({"unaligned offset", one_tensor({4}, 0, 4, 32), "offset 4 is not a multiple of the alignment 32"});
  v.push_back({"truncated tensor info", header(1, 0).Str("w").Put<uint32_t>(2).Put<uint64_t>(4).bytes(),
               "inside tensor 'w'"});
  v.push_back({"no data region", header(1, 0).TensorInfo("w", {4}, 0, 0).bytes(), "ends before its data region"});
  {
    GgufBuilder b = header(2, 0);
    b.TensorInfo("a", {4}, 0, 0).TensorInfo("a", {4}, 0, 32);
    v.push_back({"duplicate tensor", b.Data(std::string(64, '\4')).bytes(), "tensor 'a' appears twice"});
  }
  {
    GgufBuilder b = header(2, 0);
    b.TensorInfo("a", {16}, 0, 0).TensorInfo("b", {4}, 0, 32);
    v.push_back({"overlapping tensors", b.Data(std::string(64, '\4')).bytes(), "tensors 'a' and 'b' overlap"});
  }
  return v;
}

TEST(GgufTest, MalformedFilesAreRefusedNamingTheKeyOrTensor) {
  for (const Malformed& m : MalformedImages()) {
    SCOPED_TRACE(m.what);
    const std::string error = ParseError(m.image);
    EXPECT_THAT(error, HasSubstr("t.gguf: "));
    EXPECT_THAT(error, HasSubstr(m.message));
  }
}

// Every prefix of a valid file is refused (nothing reads past the end), with a message.
TEST(GgufTest, EveryTruncationIsRefused) {
  const std::string image = WithMetadata(2, [](GgufBuilder& b) {
    b.Key("s", GgufType::kString).Str("abc");
    b.Key("a", GgufType::kArray).Put(static_cast<uint32_t>(GgufType::kUint16)).Put<uint64_t>(3);
    b.Put<uint16_t>(1).Put<uint16_t>(2).Put<uint16_t>(3);
  });
  ASSERT_TRUE(Parse(image).ok());
  for (size_t n = 0; n < image.size(); ++n) {
    const std::string error = ParseError(image.substr(0, n));
    EXPECT_THAT(error, HasSubstr("t.gguf: ")) << n;
  }
}

TEST(GgufTest, TypedGettersNameTheKey) {
  const std::string path = test::TempDir("gguf_getters") + "/m.gguf";
  std::ofstream(path, std::ios::binary) << WithMetadata(2, [](GgufBuilder& b) {
    b.Key("n", GgufType::kInt32).Put<int32_t>(-1);
    b.Key("s", GgufType::kString).Str("x");
  });
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_THAT((*f)->Uint("n").status().message(), HasSubstr("'n' must be a non-negative integer"));
  EXPECT_THAT((*f)->Uint("missing").status().message(), HasSubstr("metadata key 'missing' is missing"));
  EXPECT_THAT((*f)->Float("s").status().message(), HasSubstr("'s' must be a number"));
  EXPECT_THAT((*f)->Array("s", GgufType::kString).status().message(), HasSubstr("'s' must be an array of string"));
  EXPECT_EQ(*(*f)->String("s"), "x");
  EXPECT_EQ(*(*f)->Float("n"), -1.0);
  EXPECT_THAT((*f)->Bool("s").status().message(), HasSubstr(path));
}

TEST(GgufTest, GgufPathsAreRecognizedByTheirExtension) {
  EXPECT_TRUE(IsGgufPath("m.gguf"));
  EXPECT_TRUE(IsGgufPath("/x/M.GGUF"));
  EXPECT_FALSE(IsGgufPath("/x/model"));
  EXPECT_FALSE(IsGgufPath("gguf"));
}

TEST(GgufModelNames, TensorsMapToHuggingFaceNames) {
  EXPECT_EQ(HfTensorName("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(HfTensorName("output.weight"), "lm_head.weight");
  EXPECT_EQ(HfTensorName("output_norm.weight"), "model.norm.weight");
  EXPECT_EQ(HfTensorName("blk.12.attn_q.weight"), "model.layers.12.self_attn.q_proj.weight");
  EXPECT_EQ(HfTensorName("blk.0.attn_k_norm.weight"), "model.layers.0.self_attn.k_norm.weight");
  EXPECT_EQ(HfTensorName("blk.3.ffn_down.weight"), "model.layers.3.mlp.down_proj.weight");
  EXPECT_EQ(HfTensorName("blk.1.attn_v.bias"), "model.layers.1.self_attn.v_proj.bias");
  EXPECT_EQ(HfTensorName("blk.01.attn_q.weight"), std::nullopt);  // one spelling per layer
  EXPECT_EQ(HfTensorName("blk.x.attn_q.weight"), std::nullopt);
  EXPECT_EQ(HfTensorName("blk.0.attn_qkv.weight"), std::nullopt);
  EXPECT_EQ(HfTensorName("rope_freqs.weight"), std::nullopt);
}

// A file of llama metadata: `keys` (arch keys without the "llama." prefix) as uint32.
std::string LlamaMetadataFile(const std::string& name, const std::vector<std::pair<std::string, uint32_t>>& keys,
                              const std::string& arch = "llama") {
  GgufBuilder b;
  b.Counts(0, keys.size() + 1).Key("general.architecture", GgufType::kString).Str(arch);
  for (const auto& [k, v] : keys) b.Key("llama." + k, GgufType::kUint32).Put(v);
  const std::string path = test::TempDir(name) + "/m.gguf";
  std::ofstream(path, std::ios::binary) << b.bytes();
  return path;
}

std::string ConfigError(const std::string& path) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return f.status().message();
  auto c = GgufModelConfig(**f);
  return c.ok() ? "(no error)" : c.status().message();
}

TEST(GgufModelConfigTest, BadMetadataIsNamedByItsGgufKey) {
  const std::vector<std::pair<std::string, uint32_t>> ok = {
      {"embedding_length", 64}, {"block_count", 2},   {"feed_forward_length", 128},
      {"attention.head_count", 4}, {"vocab_size", 100}};
  auto with = [&](std::string key, uint32_t v) {
    auto keys = ok;
    for (auto& [k, value] : keys)
      if (k == key) value = v;
    if (std::none_of(keys.begin(), keys.end(), [&](const auto& kv) { return kv.first == key; }))
      keys.emplace_back(key, v);
    return keys;
  };
  EXPECT_THAT(ConfigError(LlamaMetadataFile("gguf_cfg_arch", ok, "gpt2")),
              HasSubstr("'general.architecture' is 'gpt2', not supported"));
  EXPECT_THAT(ConfigError(LlamaMetadataFile("gguf_cfg_missing", {{"embedding_length", 64}})),
              HasSubstr("m.gguf: metadata key 'llama.block_count' is missing"));
  EXPECT_THAT(ConfigError(LlamaMetadataFile("gguf_cfg_layers", with("block_count", 100000))),
              HasSubstr("m.gguf: 'llama.block_count' is 100000, over oko's limit"));
  EXPECT_THAT(ConfigError(LlamaMetadataFile("gguf_cfg_kv", with("attention.head_count_kv", 3))),
              HasSubstr("m.gguf: llama.attention.head_count 4 is not a multiple of llama.attention.head_count_kv 3"));
  EXPECT_THAT(ConfigError(LlamaMetadataFile("gguf_cfg_rope", with("rope.dimension_count", 8))),
              HasSubstr("'llama.rope.dimension_count' is 8, but oko needs it equal to the head size 16"));
  EXPECT_THAT(ConfigError(LlamaMetadataFile("gguf_cfg_vocab", {{"embedding_length", 64}, {"block_count", 2},
                                                                {"feed_forward_length", 128}, {"attention.head_count", 4}})),
              HasSubstr("m.gguf: no 'llama.vocab_size' and no 2-D token_embd.weight"));
  EXPECT_EQ(ConfigError(LlamaMetadataFile("gguf_cfg_ok", ok)), "(no error)");
}

// Tensors against the metadata: each unusable file names the tensors.
TEST(GgufModelTensorsTest, MissingUnknownAndMisshapenTensorsAreListed) {
  auto tensors_error = [](const std::string& name, const std::vector<std::pair<std::string, std::vector<uint64_t>>>& ts,
                          uint32_t alignment = 32) {
    GgufBuilder b;
    b.Counts(ts.size(), 7).Key("general.architecture", GgufType::kString).Str("llama");
    b.Key("general.alignment", GgufType::kUint32).Put(alignment);
    for (const auto& [k, v] : std::vector<std::pair<std::string, uint32_t>>{
             {"embedding_length", 64}, {"block_count", 1}, {"feed_forward_length", 128},
             {"attention.head_count", 4}, {"vocab_size", 100}})
      b.Key("llama." + k, GgufType::kUint32).Put(v);
    std::string data;
    for (const auto& [n, ne] : ts) {
      b.TensorInfo(n, ne, 0, data.size());
      uint64_t numel = 1;
      for (uint64_t d : ne) numel *= d;
      data += std::string(numel * 4 + (alignment - numel * 4 % alignment) % alignment, '\0');
    }
    const std::string path = test::TempDir(name) + "/m.gguf";
    std::ofstream(path, std::ios::binary) << b.Data(data, alignment).bytes();
    auto f = GgufFile::Open(path);
    EXPECT_TRUE(f.ok()) << f.status().message();
    auto c = GgufModelConfig(**f);
    if (!c.ok()) return c.status().message();
    auto t = GgufModelTensors(*c, **f);
    return t.ok() ? std::string("(no error)") : t.status().message();
  };
  const std::string e = tensors_error("gguf_tensors", {{"token_embd.weight", {64, 100}},
                                                       {"output_norm.weight", {32}},
                                                       {"blk.0.attn_qkv.weight", {64, 192}}});
  EXPECT_THAT(e, HasSubstr("m.gguf: tensors do not match its metadata (llama 1 layers)"));
  EXPECT_THAT(e, HasSubstr("model.layers.0.self_attn.q_proj.weight"));  // missing
  EXPECT_THAT(e, HasSubstr("'output_norm.weight' has shape [32], expected [64]"));
  EXPECT_THAT(e, HasSubstr("unknown to oko (1):\n    blk.0.attn_qkv.weight"));
  // With general.alignment 1 the data region starts right after the infos: odd here.
  EXPECT_THAT(tensors_error("gguf_unaligned", {{"output_norm.weight", {64}}}, 1),
              HasSubstr("'output_norm.weight' is not aligned to 4 bytes (general.alignment 1)"));
  EXPECT_THAT(tensors_error("gguf_rope_freqs", {{"rope_freqs.weight", {16}}}),
              HasSubstr("m.gguf: tensor 'rope_freqs.weight' must be F32 of 8 values (head size / 2), got F32 [16]"));
  EXPECT_THAT(tensors_error("gguf_rope_freqs_zero", {{"rope_freqs.weight", {8}}}),
              HasSubstr("m.gguf: tensor 'rope_freqs.weight' holds 0: factors must be positive and finite"));
}

}  // namespace
}  // namespace oko
