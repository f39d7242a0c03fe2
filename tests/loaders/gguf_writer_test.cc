// GGUF writer: what it writes the reader (loaders/gguf.h) reads back as written: every
// metadata value type, nested arrays, tensors at aligned offsets with their bytes; and it
// refuses what would make a broken file, leaving no file behind.
#include "loaders/gguf_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

GgufTensorToWrite BytesTensor(std::string name, uint32_t type, std::vector<uint64_t> ne, std::string bytes) {
  return {std::move(name), type, std::move(ne), [bytes](AtomicFile& f) { return f.Write(bytes); }};
}

TEST(GgufWriter, WhatIsWrittenReadsBack) {
  GgufMetadata md = {
      {"general.architecture", GgufString("llama")},
      {"u32", GgufUint32(4000000000u)},
      {"i32", GgufInt32(-7)},
      {"f32", GgufFloat32(1e-5f)},
      {"bool", GgufBool(true)},
      {"u64", GgufValue{GgufType::kUint64, GgufType::kUint8, uint64_t{1} << 40}},
      {"i8", GgufValue{GgufType::kInt8, GgufType::kUint8, int64_t{-3}}},
      {"f64", GgufValue{GgufType::kFloat64, GgufType::kUint8, 0.1}},
      {"strings", GgufArray(GgufType::kString, {GgufString("a"), GgufString(""), GgufString("▁b")})},
      {"nested", GgufArray(GgufType::kArray, {GgufArray(GgufType::kInt32, {GgufInt32(1), GgufInt32(2)}),
                                              GgufArray(GgufType::kInt32, {})})},
  };
  std::string q8(34, '\x11'), f32(12, '\x22');
  const std::string path = test::TempDir("gguf_writer_ok") + "/t.gguf";
  ASSERT_TRUE(WriteGguf(path, md, {BytesTensor("w", 8, {32, 1}, q8), BytesTensor("n", 0, {3}, f32)}, 64).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->contents().version, 3u);
  EXPECT_EQ((*f)->contents().alignment, 64u);
  EXPECT_EQ((*f)->contents().data_offset % 64, 0u);
  EXPECT_EQ((*f)->Uint("general.alignment").value(), 64u);
  for (const auto& [key, value] : md) {
    const GgufValue* v = (*f)->Find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_TRUE(*v == value) << key;
  }
  const GgufTensor* w = (*f)->FindTensor("w");
  const GgufTensor* n = (*f)->FindTensor("n");
  ASSERT_TRUE(w && n);
  EXPECT_EQ(w->ne, (std::vector<uint64_t>{32, 1}));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(w->data), w->nbytes), q8);
  EXPECT_EQ(n->offset, 64u);  // 34 bytes of Q8_0, padded to the alignment
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(n->data), n->nbytes), f32);
}

TEST(GgufWriter, RefusesBrokenFilesAndLeavesNone) {
  const std::string dir = test::TempDir("gguf_writer_bad");
  const std::string path = dir + "/t.gguf";
  const auto expect_refused = [&](const GgufMetadata& md, const std::vector<GgufTensorToWrite>& tensors,
                                  const std::string& what, ExitCode code) {
    Status s = WriteGguf(path, md, tensors);
    ASSERT_FALSE(s.ok()) << what;
    EXPECT_THAT(s.message(), HasSubstr(what));
    EXPECT_EQ(s.code(), code) << what;
    EXPECT_TRUE(fs::is_empty(dir)) << what << ": a file was left";
  };
  const auto t = BytesTensor("t", 0, {2}, std::string(8, '\0'));
  expect_refused({{"k", GgufBool(true)}, {"k", GgufBool(false)}}, {}, "metadata key 'k' given twice",
                 ExitCode::kBadInput);
  expect_refused({{"general.alignment", GgufUint32(16)}}, {}, "'general.alignment' given twice", ExitCode::kBadInput);
  expect_refused({}, {t, t}, "tensor 't' given twice", ExitCode::kBadInput);
  expect_refused({}, {BytesTensor("u", 99, {2}, "")}, "tensor 'u': unknown ggml type 99", ExitCode::kBadInput);
  expect_refused({}, {BytesTensor("q", 2, {48}, "")}, "rows of 48 values do not fit Q4_0's block of 32",
                 ExitCode::kBadInput);
  expect_refused({}, {BytesTensor("short", 0, {4}, std::string(8, '\0'))}, "tensor 'short': wrote 8 bytes, expected 16",
                 ExitCode::kRuntime);
}

}  // namespace
}  // namespace oko
