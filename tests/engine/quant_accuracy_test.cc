// --quant accuracy against the bar of shared/golden/gguf: small-llama-256 quantized at
// load by oko (the same bytes llama-quantize wrote into the shared GGUF files) must give
// next-token distributions no further from the exact reference (PyTorch f32 on the
// dequantized weights) than llama.cpp's on its file: KL(exact || oko) <= KL(exact ||
// llama.cpp), per prompt, on the prompt logits; token-by-token decode (the 8-bit activations
// path of the default compute) lands within a quarter of llama.cpp's KL. --compute f32
// multiplies the dequantized weights exactly and lands at the f32 floor. The same bar, on
// the same references, for llama.cpp's own files of those weights, run by `-m FILE.gguf`
// (GgufAccuracy): the weights mapped as stored, the llama q/k rows put back in order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/npy.h"
#include "engine/context.h"
#include "engine/kernel_paths.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;

// Mean over positions of KL(p || q), p and q the softmax of rows of [T, V] logits.
double MeanKl(const std::vector<float>& exact, const std::vector<float>& got, size_t V) {
  const size_t T = exact.size() / V;
  double total = 0;
  for (size_t t = 0; t < T; ++t) {
    const float* a = exact.data() + t * V;
    const float* b = got.data() + t * V;
    const double ma = *std::max_element(a, a + V), mb = *std::max_element(b, b + V);
    double za = 0, zb = 0;
    for (size_t v = 0; v < V; ++v) za += std::exp(a[v] - ma), zb += std::exp(b[v] - mb);
    double kl = 0;
    for (size_t v = 0; v < V; ++v) {
      const double la = a[v] - ma - std::log(za), lb = b[v] - mb - std::log(zb);
      kl += std::exp(la) * (la - lb);
    }
    total += kl;
  }
  return total / static_cast<double>(T);
}

// small-llama-256 quantized at load, or llama.cpp's GGUF file of it.
enum class Source { kQuantAtLoad, kGgufFile };

std::unique_ptr<Context> Load(const std::string& spec, Source source, bool exact) {
  EngineOptions o;
  o.threads = 2;
  o.ctx = 64;
  o.compute_auto = !exact;
  o.compute = ComputeMode::kF32;
  std::string model = test::SharedPath("models/small-llama-256");
  if (source == Source::kGgufFile) model = test::SharedPath("models/gguf/small-llama-256-" + spec + ".gguf");
  else o.quant = spec;
  auto c = LoadContext(model, o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? std::move(c).value() : nullptr;
}

// The fast mode holds its weights in the layout this CPU's int8 kernels read
// (QuantInterleaveRows; so the KL below covers those kernels), the exact mode row-major.
void ExpectKernelLayouts(const Context& fast, const Context& exact) {
  for (const WeightSite& s : WeightSites(fast.model().graph())) {
    const size_t group = QuantInterleaveRows(s.type);
    EXPECT_EQ(s.interleave, s.rows % group == 0 ? group : 1) << s.weight;
  }
  for (const WeightSite& s : WeightSites(exact.model().graph())) EXPECT_EQ(s.interleave, 1u) << s.weight;
}

void CheckAgainstLlamaCpp(const std::string& spec, Source source = Source::kQuantAtLoad) {
  const std::string golden = test::SharedPath("golden/gguf/small-llama-256-" + spec);
  std::ifstream in(golden + "/metrics.json");
  const auto metrics = nlohmann::json::parse(in);
  auto fast = Load(spec, source, false), exact = Load(spec, source, true);
  ASSERT_TRUE(fast && exact);
  ExpectKernelLayouts(*fast, *exact);
  const size_t V = fast->config().vocab_size;
  for (const auto& prompt : metrics["prompts"]) {
    const std::string name = prompt["name"];
    const double bar = prompt["exact_vs_llamacpp"]["kl_mean"];
    const auto ids64 = ReadNpy(golden + "/exact/" + name + "/input_ids.npy")->AsInts();
    const std::vector<int32_t> ids(ids64.begin(), ids64.end());
    const auto ref = ReadNpy(golden + "/exact/" + name + "/logits.npy")->AsFloats();
    const std::vector<float> reference(ref.begin(), ref.end());
    std::vector<float> prefill, decode, row, exact_logits;
    fast->Reset();
    fast->Forward(ids, Logits::kAll, &prefill);
    fast->Reset();
    for (int32_t id : ids) {
      fast->Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &row);
      decode.insert(decode.end(), row.begin(), row.end());
    }
    exact->Reset();
    exact->Forward(ids, Logits::kAll, &exact_logits);
    const double kl_prefill = MeanKl(reference, prefill, V), kl_decode = MeanKl(reference, decode, V);
    const double kl_exact = MeanKl(reference, exact_logits, V);
    SCOPED_TRACE(spec + " " + name);
    std::printf("%s %s: KL(exact || oko) prefill %.3g, decode %.3g, f32 %.3g; llama.cpp %.3g\n", spec.c_str(),
                name.c_str(), kl_prefill, kl_decode, kl_exact, bar);
    // The bar is defined on prompt logits: what oko's prefill gives (exact arithmetic on
    // the quantized weights: the f32 floor).
    EXPECT_LE(kl_prefill, bar);
    // Decode rounds the activations to 8-bit blocks exactly as llama.cpp does (Q8_0 / Q8_K);
    // the same positions decoded one at a time land at 0.74-1.19x llama.cpp's batched KL
    // here (accumulation order; 0.66-1.18x before the 512-bit kernels of session 12), so
    // within a quarter of it.
    EXPECT_LE(kl_decode, 1.25 * bar);
    EXPECT_LE(kl_exact, 1e-9);  // the f32 floor (README: KL ~1e-11)
  }
}

TEST(QuantAccuracy, Q8_0) { CheckAgainstLlamaCpp("q8_0"); }
TEST(QuantAccuracy, Q4_0) { CheckAgainstLlamaCpp("q4_0"); }
TEST(QuantAccuracy, Q4_1) { CheckAgainstLlamaCpp("q4_1"); }
TEST(QuantAccuracy, Q5_0) { CheckAgainstLlamaCpp("q5_0"); }
TEST(QuantAccuracy, Q5_1) { CheckAgainstLlamaCpp("q5_1"); }
TEST(QuantAccuracy, Q4_K_M) { CheckAgainstLlamaCpp("q4_k_m"); }
TEST(QuantAccuracy, Q5_K_M) { CheckAgainstLlamaCpp("q5_k_m"); }
TEST(QuantAccuracy, Q6_K) { CheckAgainstLlamaCpp("q6_k"); }

// tiny-qwen3 in Q8_0 (151936 logits: only the last position is stored in full). f32
// compute lands at the f32 floor on the last position and agrees on the top-1 id at
// every position; the default (8-bit activations, as llama.cpp) meets llama.cpp's KL at
// the last position, the mean over the prompts with the README's slack.
TEST(GgufAccuracy, TinyQwen3Q8_0) {
  const std::string golden = test::SharedPath("golden/gguf/tiny-qwen3-q8_0");
  const auto metrics = test::ReadJson(golden + "/metrics.json");
  EngineOptions o;
  o.threads = 2;
  o.ctx = 64;
  o.compute = ComputeMode::kF32;
  auto exact = LoadContext(test::SharedPath("models/gguf/tiny-qwen3-q8_0.gguf"), o);
  o.compute_auto = true;
  auto fast = LoadContext(test::SharedPath("models/gguf/tiny-qwen3-q8_0.gguf"), o);
  ASSERT_TRUE(exact.ok() && fast.ok()) << exact.status().message() << fast.status().message();
  double kl_fast = 0, bar = 0;
  for (const auto& prompt : metrics["prompts"]) {
    const std::string name = prompt["name"], dir = golden + "/exact/" + name;
    SCOPED_TRACE(name);
    const auto ids64 = ReadNpy(dir + "/input_ids.npy")->AsInts();
    const std::vector<int32_t> ids(ids64.begin(), ids64.end());
    const std::vector<float> last = ReadNpy(dir + "/logits_last.npy")->AsFloats();
    const std::vector<int64_t> top1 = ReadNpy(dir + "/logits_topk_ids.npy")->AsInts();
    const size_t V = last.size(), T = ids.size();
    std::vector<float> all, fast_last;
    (*exact)->Reset();
    (*exact)->Forward(ids, Logits::kAll, &all);
    ASSERT_EQ(all.size(), T * V);
    const std::vector<float> exact_last(all.end() - V, all.end());
    float max_diff = 0;
    for (size_t v = 0; v < V; ++v) max_diff = std::max(max_diff, std::abs(exact_last[v] - last[v]));
    EXPECT_LE(max_diff, 1e-3f);  // the f32 floor (README: ~1e-4)
    for (size_t t = 0; t < T; ++t) {
      const float* row = all.data() + t * V;
      EXPECT_EQ(std::max_element(row, row + V) - row, top1[t * 10]) << "position " << t;
    }
    (*fast)->Reset();
    (*fast)->Forward(ids, Logits::kLast, &fast_last);
    const double kl = MeanKl(last, fast_last, V);
    std::printf("tiny-qwen3-q8_0 %s: f32 max |dlogit| %.3g, KL(exact || oko) f32 %.3g, 8-bit %.3g; llama.cpp %.3g\n",
                name.c_str(), max_diff, MeanKl(last, exact_last, V), kl,
                prompt["exact_vs_llamacpp"]["kl_last"].get<double>());
    kl_fast += kl / metrics["prompts"].size();
    bar += prompt["exact_vs_llamacpp"]["kl_last"].get<double>() / metrics["prompts"].size();
  }
  EXPECT_LE(kl_fast, 1.1 * bar + 1e-5);
}

TEST(GgufAccuracy, Q8_0) { CheckAgainstLlamaCpp("q8_0", Source::kGgufFile); }
TEST(GgufAccuracy, Q4_0) { CheckAgainstLlamaCpp("q4_0", Source::kGgufFile); }
TEST(GgufAccuracy, Q4_1) { CheckAgainstLlamaCpp("q4_1", Source::kGgufFile); }
TEST(GgufAccuracy, Q5_0) { CheckAgainstLlamaCpp("q5_0", Source::kGgufFile); }
TEST(GgufAccuracy, Q5_1) { CheckAgainstLlamaCpp("q5_1", Source::kGgufFile); }
TEST(GgufAccuracy, Q4_K_M) { CheckAgainstLlamaCpp("q4_k_m", Source::kGgufFile); }
TEST(GgufAccuracy, Q5_K_M) { CheckAgainstLlamaCpp("q5_k_m", Source::kGgufFile); }
TEST(GgufAccuracy, Q6_K) { CheckAgainstLlamaCpp("q6_k", Source::kGgufFile); }

}  // namespace
}  // namespace oko
