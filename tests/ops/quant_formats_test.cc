// The GGML block formats against llama.cpp's own files (shared/golden/gguf, made by
// llama-quantize from shared/models/small-llama-256 and tiny-qwen3):
//  - DequantizeRow on every dequant/*.raw.npy equals gguf-py's *.npy bit for bit;
//  - QuantizeRow on the f32/bf16 source rows gives the stored bytes exactly (the
//    32-blocks as the issue requires, and the k-quants as well);
//  - k-quant RMSE per tensor within 1% of llama.cpp's (metrics.json weight_rmse).
#include "ops/quant_formats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/npy.h"
#include "loaders/gguf_model.h"
#include "loaders/json_util.h"
#include "loaders/safetensors.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> GoldenDirs() {
  std::vector<std::string> dirs;
  const std::string root = test::SharedPath("golden/gguf");
  for (const auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / "dequant" / "index.json")) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

TEST(QuantFormats, TypeTable) {
  for (size_t i = 0; i < std::size(kQuantTypes); ++i)
    EXPECT_EQ(static_cast<size_t>(kQuantTypes[i].type), i);
  EXPECT_EQ(QuantTypeFromName("q4_k"), QuantType::kQ4_K);
  EXPECT_EQ(QuantTypeFromName("Q8_0"), QuantType::kQ8_0);
  EXPECT_EQ(QuantTypeFromName("q3_k"), std::nullopt);
  EXPECT_EQ(QuantRowBytes(QuantType::kQ6_K, 768), 630u);
  EXPECT_EQ(QuantRowBytes(QuantType::kQ4_0, 64), 36u);
  EXPECT_EQ(QuantTypeFromGgml(14), QuantType::kQ6_K);
  EXPECT_EQ(QuantTypeFromGgml(11), std::nullopt);  // Q3_K: not run by oko
}

TEST(QuantFormats, DequantizeMatchesGgufPyBitForBit) {
  int files = 0;
  for (const std::string& dir : GoldenDirs()) {
    for (const auto& e : test::ReadJson(dir + "/dequant/index.json")) {
      const std::string type_name = e["type"];
      const auto type = QuantTypeFromName(type_name);
      ASSERT_TRUE(type.has_value()) << dir << ": " << type_name;
      auto raw = ReadNpy(dir + "/dequant/" + e["raw"].get<std::string>());
      auto want = ReadNpy(dir + "/dequant/" + e["values"].get<std::string>());
      ASSERT_TRUE(raw.ok() && want.ok()) << dir;
      const size_t rows = raw->shape[0], row_bytes = raw->shape[1], cols = want->shape[1];
      ASSERT_EQ(row_bytes, QuantRowBytes(*type, cols)) << dir << " " << e["tensor"];
      std::vector<float> got(rows * cols);
      for (size_t r = 0; r < rows; ++r)
        DequantizeRow(*type, raw->data.data() + r * row_bytes, got.data() + r * cols, cols);
      size_t bad = 0, first = 0;
      for (size_t i = 0; i < rows * cols; ++i) {
        if (std::memcmp(&got[i], want->data.data() + 4 * i, 4) != 0 && bad++ == 0) first = i;
      }
      EXPECT_EQ(bad, 0u) << dir << " " << e["tensor"] << " " << type_name << ": first at " << first
                         << " got " << got[first] << " want "
                         << reinterpret_cast<const float*>(want->data.data())[first];
      ++files;
    }
  }
  EXPECT_GE(files, 20);
}

struct Source {
  std::unique_ptr<SafetensorsFile> file;
  nlohmann::json config;
  bool llama = false;
  std::string dir;
};

Source OpenSource(const std::string& golden_dir) {
  Source s;
  const auto metrics = test::ReadJson(golden_dir + "/metrics.json");
  std::string model = metrics["source_model"];  // "shared/models/NAME"
  model = model.substr(model.find("models/"));
  s.dir = test::SharedPath(model);
  auto f = SafetensorsFile::Open(s.dir + "/model.safetensors");
  EXPECT_TRUE(f.ok()) << f.status().message();
  if (f.ok()) s.file = std::move(f.value());
  s.config = test::ReadJson(s.dir + "/config.json");
  s.llama = s.config["model_type"] == "llama";
  return s;
}

// Row r of the source tensor as f32, in GGUF order: llama.cpp's converter permutes the
// q/k rows of the llama architecture per head, (2, hd/2) -> (hd/2, 2).
std::vector<float> SourceRow(const Source& s, const std::string& gguf_name, size_t r) {
  const std::string hf = HfTensorName(gguf_name).value_or("");
  const TensorView* t = nullptr;
  for (const auto& v : s.file->tensors())
    if (v.name == hf) t = &v;
  EXPECT_NE(t, nullptr) << hf;
  const size_t cols = t->shape[1];
  size_t src = r;
  const bool q = gguf_name.find("attn_q.") != std::string::npos;
  const bool k = gguf_name.find("attn_k.") != std::string::npos;
  if (s.llama && (q || k)) {
    const size_t heads = s.config[k ? "num_key_value_heads" : "num_attention_heads"];
    const size_t hd = t->shape[0] / heads;
    const size_t h = r / hd, within = r % hd;
    src = h * hd + (within % 2) * (hd / 2) + within / 2;
  }
  std::vector<float> row(cols);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(t->data) + src * cols * DTypeSize(t->dtype);
  DequantizeRow(*QuantTypeFromDType(t->dtype), p, row.data(), cols);
  return row;
}

TEST(QuantFormats, QuantizeMatchesLlamaQuantizeBytes) {
  int exact_32 = 0;
  for (const std::string& dir : GoldenDirs()) {
    const Source s = OpenSource(dir);
    ASSERT_NE(s.file, nullptr);
    for (const auto& e : test::ReadJson(dir + "/dequant/index.json")) {
      const auto type = *QuantTypeFromName(e["type"].get<std::string>());
      auto raw = ReadNpy(dir + "/dequant/" + e["raw"].get<std::string>());
      ASSERT_TRUE(raw.ok());
      const size_t row_bytes = raw->shape[1], r0 = e["rows"][0];
      const std::string name = e["tensor"];
      size_t rows_equal = 0, rows = raw->shape[0];
      std::vector<uint8_t> got(row_bytes);
      for (size_t r = 0; r < rows; ++r) {
        const std::vector<float> x = SourceRow(s, name, r0 + r);
        ASSERT_EQ(QuantRowBytes(type, x.size()), row_bytes);
        QuantizeRow(type, x.data(), got.data(), x.size());
        rows_equal += std::memcmp(got.data(), raw->data.data() + r * row_bytes, row_bytes) == 0;
      }
      // The k-quants too: same algorithm, same float operations (not required by the
      // issue, which asks for RMSE within 1%, but true on every sample here).
      EXPECT_EQ(rows_equal, rows) << dir << " " << name << " " << QuantTypeName(type);
      exact_32 += QuantBlock(type) == 32;
    }
  }
  EXPECT_GE(exact_32, 10);
}

TEST(QuantFormats, KQuantRmseWithinOnePercentOfLlamaCpp) {
  int checked = 0;
  for (const std::string& dir : GoldenDirs()) {
    const auto metrics = test::ReadJson(dir + "/metrics.json");
    const Source s = OpenSource(dir);
    ASSERT_NE(s.file, nullptr);
    for (const auto& e : metrics["weight_rmse"]) {
      const auto type = QuantTypeFromName(e["type"].get<std::string>());
      if (!type || QuantBlock(*type) != 256) continue;
      const std::string name = e["name"];
      const std::string hf = HfTensorName(name).value_or("");
      const TensorView* t = nullptr;
      for (const auto& v : s.file->tensors())
        if (v.name == hf) t = &v;
      ASSERT_NE(t, nullptr) << hf;
      // Row order does not change the RMSE: no permutation needed.
      const size_t rows = t->shape[0], cols = t->shape[1];
      std::vector<float> x(cols), y(cols);
      std::vector<uint8_t> q(QuantRowBytes(*type, cols));
      double se = 0;
      for (size_t r = 0; r < rows; ++r) {
        DequantizeRow(*QuantTypeFromDType(t->dtype),
                      reinterpret_cast<const uint8_t*>(t->data) + r * cols * DTypeSize(t->dtype),
                      x.data(), cols);
        QuantizeRow(*type, x.data(), q.data(), cols);
        DequantizeRow(*type, q.data(), y.data(), cols);
        for (size_t i = 0; i < cols; ++i) se += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
      }
      const double rmse = std::sqrt(se / double(rows * cols)), want = e["rmse"];
      EXPECT_LE(rmse, 1.01 * want) << dir << " " << name;
      EXPECT_GE(rmse, 0.99 * want) << dir << " " << name;
      ++checked;
    }
  }
  EXPECT_GE(checked, 30);
}

// Round trip on synthetic rows: zeros, constants, one spike (edge cases of the searches).
TEST(QuantFormats, EdgeRowsRoundTrip) {
  for (const auto& info : kQuantTypes) {
    const size_t cols = 512;
    std::vector<std::vector<float>> cases = {std::vector<float>(cols, 0.0f),
                                             std::vector<float>(cols, 0.25f),
                                             std::vector<float>(cols, -3.0f)};
    cases.push_back(std::vector<float>(cols, 0.0f));
    cases.back()[7] = 5.0f;
    for (const auto& x : cases) {
      std::vector<uint8_t> q(QuantRowBytes(info.type, cols));
      std::vector<float> y(cols);
      QuantizeRow(info.type, x.data(), q.data(), cols);
      DequantizeRow(info.type, q.data(), y.data(), cols);
      double amax = 0;
      for (float v : x) amax = std::max(amax, std::fabs(double(v)));
      for (size_t i = 0; i < cols; ++i)
        ASSERT_NEAR(y[i], x[i], 0.07 * amax + 1e-6) << info.name << " i=" << i;
    }
  }
}

}  // namespace
}  // namespace oko
