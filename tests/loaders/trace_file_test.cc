// ReadTrace / ReadTraceFromMemory on hand-made trace images: the inputs the fuzzer
// (tests/fuzz/fuzz_trace.cc) found problems with.
#include "loaders/trace_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace oko {
namespace {

std::string ReadSeed(const std::string& name) {
  const std::string path = std::string(OKO_SOURCE_DIR) + "/tests/fuzz/corpus/fuzz_trace/" + name;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Found by fuzz_trace (UBSan: misaligned load): the data region starts right after a
// header of any length, so an F16 attention tensor and the I32/F32 lens tensors need not
// be aligned. They are read bytewise, with the same values as aligned ones.
TEST(TraceFileTest, ReadsUnalignedTensors) {
  const std::string bytes = ReadSeed("unaligned_lens");
  auto t = ReadTraceFromMemory(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(),
                               "unaligned_lens");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->attn.size(), 1u);
  ASSERT_EQ(t->attn[0].size(), 2u);  // 1 head x 1 query x 2 keys, F16
  EXPECT_EQ(t->attn[0][0], 0.5f);
  EXPECT_EQ(t->attn[0][1], 0.5f);
  ASSERT_EQ(t->lens_ids.size(), 6u);  // 2 lens layers x 1 query x k=3
  for (int32_t id : t->lens_ids) EXPECT_EQ(id, 3);
  for (float p : t->lens_probs) EXPECT_EQ(p, 0.5f);
  EXPECT_EQ(t->lens_tokens.at(3), "a");
}

TEST(TraceFileTest, MemoryAndFileReadersAgree) {
  const std::string bytes = ReadSeed("small");
  auto from_memory = ReadTraceFromMemory(reinterpret_cast<const std::byte*>(bytes.data()),
                                         bytes.size(), "small");
  auto from_file = ReadTrace(std::string(OKO_SOURCE_DIR) + "/tests/fuzz/corpus/fuzz_trace/small");
  ASSERT_TRUE(from_memory.ok()) << from_memory.status().message();
  ASSERT_TRUE(from_file.ok()) << from_file.status().message();
  EXPECT_EQ(from_memory->tokens, from_file->tokens);
  EXPECT_EQ(from_memory->layers, from_file->layers);
  EXPECT_EQ(from_memory->attn, from_file->attn);
}

TEST(TraceFileTest, TruncatedTraceNamesTheFile) {
  std::string bytes = ReadSeed("small");
  bytes.resize(bytes.size() - 5);
  auto t = ReadTraceFromMemory(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(), "T.safetensors");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("T.safetensors"), std::string::npos) << t.status().message();
}

}  // namespace
}  // namespace oko
