// --quant end to end, up to the graph wiring (the lead's): quantize the source model of
// each shared GGUF file with our plan and quantizers, dequantize it into an f32 model
// folder, run the f32 engine, and compare with the exact reference of that GGUF file
// (shared/golden/gguf/STEM/exact: PyTorch f32 on llama.cpp's dequantized weights). Equal
// weights give logits at the f32 floor (atol 1e-3, README of that folder), so this checks
// that plan + quantizer + dequantizer reproduce llama-quantize's model. The kernels that
// multiply quantized weights directly are tested at op level against the same
// dequantized weights (tests/ops/quant_matmul_test).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/npy.h"
#include "engine/context.h"
#include "engine/quant_plan.h"
#include "loaders/json_util.h"
#include "loaders/safetensors.h"
#include "loaders/safetensors_writer.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;

// The source model of STEM quantized with --quant SPEC and dequantized to f32, written as a
// model folder; returns the folder.
std::string DequantizedModel(const std::string& model, const std::string& spec) {
  const std::string src = test::SharedPath("models/" + model);
  const auto config = test::ReadJson(src + "/config.json");
  auto plan = ParseQuantPlan(spec, config["num_hidden_layers"].get<int>(),
                             config.value("tie_word_embeddings", false));
  EXPECT_TRUE(plan.ok());
  auto file = SafetensorsFile::Open(src + "/model.safetensors");
  EXPECT_TRUE(file.ok()) << file.status().message();
  ThreadPool pool(2);
  std::vector<std::vector<float>> values;
  std::vector<TensorToWrite> out;
  values.reserve((*file)->tensors().size());
  for (const TensorView& t : (*file)->tensors()) {
    std::vector<float> v(t.numel());
    const auto q = PlanTensor(*plan, t.name, t.shape);
    if (q.has_value()) {
      auto w = QuantizeWeight(t, q->type, &pool);
      EXPECT_TRUE(w.ok()) << w.status().message();
      const size_t rows = t.shape[0], cols = t.shape[1], rb = w->view.row_bytes();
      for (size_t r = 0; r < rows; ++r)
        DequantizeRow(w->view.type, reinterpret_cast<const uint8_t*>(w->view.data) + r * rb,
                      v.data() + r * cols, cols);
    } else {
      DequantizeRow(*QuantTypeFromDType(t.dtype), t.data, v.data(), v.size());
    }
    values.push_back(std::move(v));
    out.push_back(TensorFromBytes(t.name, DType::kF32, t.shape, values.back().data()));
  }
  const std::string dir = test::TempDir(model + "-" + spec);
  EXPECT_TRUE(WriteSafetensors(dir + "/model.safetensors", out).ok());
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().extension() == ".json") fs::copy_file(e.path(), dir + "/" + e.path().filename().string());
  return dir;
}

void CheckStem(const std::string& stem) {
  const std::string golden = test::SharedPath("golden/gguf/" + stem);
  const std::string model = stem.rfind("tiny-qwen3", 0) == 0 ? "tiny-qwen3" : "small-llama-256";
  const std::string spec = stem.substr(model.size() + 1);
  const std::string dir = DequantizedModel(model, spec);
  EngineOptions o;
  o.threads = 2;
  o.compute = ComputeMode::kF32;
  o.ctx = 512;
  auto m = LoadContext(dir, o);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const int64_t V = (*m)->config().vocab_size;
  for (const auto& e : fs::directory_iterator(golden + "/exact")) {
    if (!e.is_directory()) continue;
    const std::string p = e.path().string();
    const auto ids64 = ReadNpy(p + "/input_ids.npy")->AsInts();
    const std::vector<int32_t> ids(ids64.begin(), ids64.end());
    (*m)->Reset();
    std::vector<float> logits;
    (*m)->Forward(ids, Logits::kAll, &logits);
    const auto last = ReadNpy(p + "/logits_last.npy")->AsFloats();
    double max_diff = 0;
    for (int64_t v = 0; v < V; ++v)
      max_diff = std::max(max_diff, std::fabs(double(logits[logits.size() - V + v]) - last[v]));
    if (fs::exists(p + "/logits.npy")) {
      const auto all = ReadNpy(p + "/logits.npy")->AsFloats();
      for (size_t i = 0; i < all.size(); ++i)
        max_diff = std::max(max_diff, std::fabs(double(logits[i]) - all[i]));
    }
    EXPECT_LE(max_diff, 1e-3) << stem << " " << e.path().filename() << ": max |dlogit| vs exact";
  }
}

TEST(QuantE2E, SmallLlamaQ8_0) { CheckStem("small-llama-256-q8_0"); }
TEST(QuantE2E, SmallLlamaQ4_0) { CheckStem("small-llama-256-q4_0"); }
TEST(QuantE2E, SmallLlamaQ4_1) { CheckStem("small-llama-256-q4_1"); }
TEST(QuantE2E, SmallLlamaQ5_0) { CheckStem("small-llama-256-q5_0"); }
TEST(QuantE2E, SmallLlamaQ5_1) { CheckStem("small-llama-256-q5_1"); }
TEST(QuantE2E, SmallLlamaQ4_K_M) { CheckStem("small-llama-256-q4_k_m"); }
TEST(QuantE2E, SmallLlamaQ5_K_M) { CheckStem("small-llama-256-q5_k_m"); }
TEST(QuantE2E, SmallLlamaQ6_K) { CheckStem("small-llama-256-q6_k"); }
TEST(QuantE2E, TinyQwen3Q8_0) { CheckStem("tiny-qwen3-q8_0"); }

}  // namespace
}  // namespace oko
