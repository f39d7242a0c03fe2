// --quant planning against the types llama-quantize chose in shared/models/gguf
// (types.json), quantizing at load, and Linear on quantized weights.
#include "engine/quant_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "engine/linear.h"
#include "loaders/gguf_model.h"
#include "loaders/json_util.h"
#include "ops/gemm_packed.h"
#include "tests/test_util.h"

namespace oko {
namespace {

TEST(QuantPlan, ParseSpec) {
  auto p = ParseQuantPlan("Q4_K_M", 28, true);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->base, QuantType::kQ4_K);
  EXPECT_TRUE(p->mix_m);
  EXPECT_EQ(ParseQuantPlan("q8_0", 4, false)->base, QuantType::kQ8_0);
  for (const char* bad : {"q3_k", "f16", "q4_k_s", ""}) {
    auto r = ParseQuantPlan(bad, 4, false);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("q4_k_m"), std::string::npos);
  }
}

// Every matrix of every GGUF file gets the type llama-quantize gave it.
TEST(QuantPlan, MatchesLlamaQuantizeTypes) {
  const auto types = test::ReadJson(test::SharedPath("models/gguf/types.json"));
  int checked = 0;
  for (const auto& [file, tensors] : types.items()) {
    const std::string model = file.rfind("tiny-qwen3", 0) == 0 ? "tiny-qwen3" : "small-llama-256";
    std::string spec = file.substr(model.size() + 1);
    spec = spec.substr(0, spec.find_first_of(". "));
    const auto config = test::ReadJson(test::SharedPath("models/" + model + "/config.json"));
    auto plan = ParseQuantPlan(spec, config["num_hidden_layers"].get<int>(),
                               config.value("tie_word_embeddings", false));
    ASSERT_TRUE(plan.ok()) << file << ": " << plan.status().message();
    for (const auto& t : tensors) {
      const std::string name = HfTensorName(t["name"].get<std::string>()).value_or("");
      ASSERT_FALSE(name.empty()) << t["name"];
      std::vector<int64_t> shape = t["shape"].get<std::vector<int64_t>>();
      const auto q = PlanTensor(*plan, name, shape);
      if (t["type"] == "F32") {
        EXPECT_FALSE(q.has_value()) << file << " " << name;
        continue;
      }
      ASSERT_TRUE(q.has_value()) << file << " " << name;
      EXPECT_EQ(QuantTypeName(q->type), t["type"].get<std::string>()) << file << " " << name;
      ++checked;
    }
  }
  EXPECT_GE(checked, 250);
}

TEST(QuantPlan, FallbackChainAndNote) {
  auto plan = ParseQuantPlan("q4_k", 4, false);
  ASSERT_TRUE(plan.ok());
  auto q = PlanTensor(*plan, "model.layers.0.mlp.up_proj.weight", {176, 64});
  EXPECT_EQ(q->type, QuantType::kQ5_0);
  EXPECT_TRUE(q->fell_back());
  EXPECT_EQ(FallbackNote("x", *q, 64), "x: Q4_K -> Q5_0 (rows of 64 values, not a multiple of 256)");
  EXPECT_EQ(PlanTensor(*plan, "model.layers.0.mlp.down_proj.weight", {64, 176})->type, QuantType::kF16);
  EXPECT_EQ(PlanTensor(*plan, "model.layers.0.mlp.down_proj.weight", {64, 512})->type, QuantType::kQ4_K);
  auto q80 = ParseQuantPlan("q8_0", 4, false);
  EXPECT_EQ(PlanTensor(*q80, "model.layers.0.mlp.up_proj.weight", {8, 80})->type, QuantType::kF16);
  EXPECT_FALSE(PlanTensor(*q80, "model.norm.weight", {64}).has_value());
}

TensorView RandomTensor(std::vector<uint16_t>& storage, size_t rows, size_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  storage.resize(rows * cols);
  for (auto& v : storage) v = F32ToBf16(u(rng));
  TensorView t;
  t.name = "w";
  t.dtype = DType::kBF16;
  t.shape = {static_cast<int64_t>(rows), static_cast<int64_t>(cols)};
  t.data = reinterpret_cast<const std::byte*>(storage.data());
  t.nbytes = storage.size() * 2;
  return t;
}

TEST(QuantPlan, QuantizeWeightIsRowByRowQuantizeRow) {
  std::vector<uint16_t> storage;
  const TensorView t = RandomTensor(storage, 37, 512, 5);
  ThreadPool pool(2);
  for (QuantType type : {QuantType::kQ8_0, QuantType::kQ4_K, QuantType::kQ6_K}) {
    auto w = QuantizeWeight(t, type, &pool);
    ASSERT_TRUE(w.ok());
    std::vector<float> row(512);
    std::vector<uint8_t> want(QuantRowBytes(type, 512));
    for (size_t r = 0; r < 37; ++r) {
      for (size_t k = 0; k < 512; ++k) row[k] = Bf16ToF32(storage[r * 512 + k]);
      QuantizeRow(type, row.data(), want.data(), 512);
      ASSERT_EQ(std::memcmp(want.data(), reinterpret_cast<const uint8_t*>(w->view.data) + r * want.size(),
                            want.size()), 0) << QuantTypeName(type) << " row " << r;
    }
  }
  auto bad = QuantizeWeight(RandomTensor(storage, 2, 80, 1), QuantType::kQ4_K, nullptr);
  EXPECT_FALSE(bad.ok());
}

// Linear on a quantized weight = f64 matmul on the dequantized weight (f32 mode; bf16 mode
// rounds the activations in decode), for decode (M=1), small M and prefill M (packed path
// where AVX-512 runs it), with a bias.
TEST(QuantPlan, LinearOnQuantizedWeights) {
  std::vector<uint16_t> storage, bias_storage;
  const size_t N = 40, K = 768;
  const TensorView t = RandomTensor(storage, N, K, 9);
  TensorView bias = RandomTensor(bias_storage, 1, N, 10);
  bias.shape = {static_cast<int64_t>(N)};
  ThreadPool pool(2);
  for (const char* spec : {"q8_0", "q4_k", "q5_k", "q6_k", "q4_0", "q5_1"}) {
    auto plan = ParseQuantPlan(spec, 1, false);
    auto qt = QuantizeForLoad(t, "model.layers.0.mlp.up_proj.weight", *plan, &pool);
    ASSERT_TRUE(qt.ok());
    std::vector<float> wd(N * K);
    for (size_t n = 0; n < N; ++n)
      DequantizeRow(qt->weight.view.type,
                    reinterpret_cast<const uint8_t*>(qt->weight.view.data) + n * qt->weight.view.row_bytes(),
                    wd.data() + n * K, K);
    const WeightView view = qt->weight.view;
    Linear lin(std::move(qt->weight), &bias, ComputeMode::kF32);
    Linear fast(view, &bias, ComputeMode::kBf16);  // view: lin keeps the bytes alive
    EXPECT_EQ(lin.format(), plan->base);
    for (size_t M : {1, 3, 13, 40}) {
      std::mt19937 rng(static_cast<uint32_t>(M));
      std::uniform_real_distribution<float> u(-1, 1);
      std::vector<float> x(M * K), y(M * N);
      for (float& v : x) v = u(rng);
      lin.Forward(pool, x.data(), K, M, y.data(), N, Phase::kDecode);
      std::vector<float> yf(M * N), yp(M * N);
      fast.Forward(pool, x.data(), K, M, yf.data(), N, Phase::kDecode);
      fast.Forward(pool, x.data(), K, M, yp.data(), N, Phase::kPrefill);
      for (size_t m = 0; m < M; ++m) {
        for (size_t n = 0; n < N; ++n) {
          double s = Bf16ToF32(bias_storage[n]), mag = 0;
          for (size_t k = 0; k < K; ++k) {
            s += double(wd[n * K + k]) * x[m * K + k];
            mag += std::fabs(double(wd[n * K + k]) * x[m * K + k]);
          }
          ASSERT_NEAR(y[m * N + n], s, 1e-5 * mag + 1e-6) << spec << " M=" << M << " n=" << n;
          // bf16 mode: 8-bit activations in decode (0.4% of max|x| per block) where the
          // row kernels run (M = 1, small batches; any M without the packed GEMM); the
          // packed GEMM (prefill) exact on the dequantized weights, or where the bf16
          // kernel runs, on weights and x rounded to bf16 (2^-8 of each product at most).
          const bool rows = fast.RunsByRows(M), bf16 = !rows && PackedGemmBf16Supported();
          const double packed_tol = bf16 ? 4e-3 : 1e-5;
          ASSERT_NEAR(yf[m * N + n], s, (rows ? 1e-2 : packed_tol) * mag + 1e-6) << spec << " fast";
          ASSERT_NEAR(yp[m * N + n], s, (rows ? 1e-5 : packed_tol) * mag + 1e-6) << spec << " fast prefill";
        }
      }
    }
  }
}

}  // namespace
}  // namespace oko
