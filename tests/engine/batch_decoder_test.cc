// Several sequences on one Model: each sequence's logits decoded in a batch equal its
// logits decoded alone (through the same kernels: exactly; the batch's skinny GEMM
// against the single row's GEMV: within f32 rounding), contexts on different threads
// share the weights (TSan runs this file), and a context's cached ids are its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <thread>

#include "engine/batch_decoder.h"
#include "engine/generator.h"
#include "ops/gemm_bf16_rows.h"
#include "ops/gemm_onednn.h"
#include "tests/test_util.h"

namespace oko {
namespace {

struct Shared {
  std::shared_ptr<const Model> model;
  std::shared_ptr<ThreadPool> pool;
};

// compute: kF32 or kBf16 as asked; nullopt: the default (auto; 8-bit activations for
// quantized weights).
Shared Load(const std::string& name, int threads = 2, const std::string& quant = "",
            std::optional<ComputeMode> compute = ComputeMode::kF32) {
  EngineOptions o;
  o.quant = quant;
  o.compute_auto = !compute.has_value();
  o.compute = compute.value_or(ComputeMode::kF32);
  auto m = Model::Load(test::SharedPath("models/" + name), o);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return {m.ok() ? *m : nullptr, std::make_shared<ThreadPool>(threads)};
}

std::unique_ptr<Context> NewContext(const Shared& s, int64_t ctx = 256) {
  EngineOptions o;
  o.ctx = ctx;
  auto c = Context::Create(s.model, s.pool, o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? std::move(c).value() : nullptr;
}

std::vector<int32_t> Prompt(size_t n, int32_t salt, int64_t vocab) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 31 + salt * 7 + 3) % vocab);
  return ids;
}

int32_t Argmax(const float* x, int64_t n) { return static_cast<int32_t>(std::max_element(x, x + n) - x); }

// Sequences of different lengths (so different positions) decode `steps` greedy tokens
// together; the same prompts decoded one by one in their own contexts must agree.
void CheckBatchMatchesAlone(const std::string& name, std::vector<size_t> prompt_lengths, int steps,
                            float rel_tol, const std::string& quant = "",
                            std::optional<ComputeMode> compute = ComputeMode::kF32) {
  SCOPED_TRACE(name + " " + quant + (compute.has_value() ? "" : " (default compute)"));
  const Shared s = Load(name, 2, quant, compute);
  const int64_t V = s.model->config().vocab_size;
  const size_t N = prompt_lengths.size();
  std::vector<std::unique_ptr<Context>> batch, alone;
  std::vector<int32_t> next(N);
  std::vector<float> logits;
  for (size_t i = 0; i < N; ++i) {
    batch.push_back(NewContext(s));
    alone.push_back(NewContext(s));
    const auto prompt = Prompt(prompt_lengths[i], static_cast<int32_t>(i), V);
    batch[i]->Forward(prompt, Logits::kLast, &logits);
    next[i] = Argmax(logits.data(), V);
    alone[i]->Forward(prompt, Logits::kNone, nullptr);
  }
  BatchDecoder decoder(s.model, s.pool, N);
  std::vector<Context*> contexts;
  for (auto& c : batch) contexts.push_back(c.get());
  std::vector<float> batched, single;
  for (int step = 0; step < steps; ++step) {
    decoder.Decode(contexts, next, &batched);
    ASSERT_EQ(batched.size(), N * V);
    for (size_t i = 0; i < N; ++i) {
      alone[i]->Forward(std::span<const int32_t>(&next[i], 1), Logits::kLast, &single);
      float scale = 0;
      for (float x : single) scale = std::max(scale, std::fabs(x));
      for (int64_t v = 0; v < V; ++v)
        ASSERT_NEAR(batched[i * V + v], single[v], rel_tol * scale)
            << "sequence " << i << " step " << step << " id " << v;
      EXPECT_EQ(batch[i]->position(), alone[i]->position());
      next[i] = Argmax(single.data(), V);
    }
  }
  for (size_t i = 0; i < N; ++i) EXPECT_EQ(batch[i]->tokens(), alone[i]->tokens());
}

TEST(BatchDecoder, TinyQwen3FourSequencesMatchAlone) {
  CheckBatchMatchesAlone("tiny-qwen3", {5, 1, 17, 9}, 6, 1e-5f);
}

TEST(BatchDecoder, StoriesEightSequencesMatchAlone) {
  CheckBatchMatchesAlone("stories260k", {3, 12, 1, 7, 30, 2, 19, 4}, 8, 1e-5f);
}

// Quantized weights: the batch runs the kernels on tiles of rows, as decode does on one
// (ops/quant_matmul.h), not the exact prefill GEMM. The exact kernels, then the default
// int8 ones (8-bit activations), which give each row bit for bit what they give it alone:
// any difference would be amplified where the next layer rounds its input to 8 bits.
// small-llama-256's rows of 256 and 768 take the k-quants' kernels, 9 sequences a tile of
// 8 and one of 1.
TEST(BatchDecoder, QuantizedSequencesMatchAlone) {
  CheckBatchMatchesAlone("tiny-qwen3", {5, 1, 17, 9, 2, 6}, 5, 1e-5f, "q8_0");
  CheckBatchMatchesAlone("stories260k", {3, 12, 1}, 5, 1e-5f, "q4_k_m");
  CheckBatchMatchesAlone("tiny-qwen3", {5, 1, 17, 9, 2, 6}, 5, 0.0f, "q8_0", std::nullopt);
  CheckBatchMatchesAlone("small-llama-256", {4, 9, 1, 13, 2, 7, 5, 11, 3}, 4, 0.0f, "q4_k_m", std::nullopt);
}

// The bf16 mode decodes one row and a batch's rows through the same bf16-dot kernel
// (ops/gemm_bf16_rows.h), each row the same whatever the batch: exactly equal.
TEST(BatchDecoder, Bf16ModeSequencesMatchAloneExactly) {
  if (!OnednnBf16Supported() || !Bf16RowsSupported()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  const Shared s = Load("tiny-qwen3", 2, "", ComputeMode::kBf16);
  const Linear* q = s.model->graph().nodes()[2].linear;  // layer 0's q_proj
  ASSERT_NE(q, nullptr);
  for (size_t M : {1, 4, 8})
    EXPECT_NE(LinearPathName(q->path(M), q->format(), q->mode(), M, q->K(), Phase::kDecode, 1).find("bf16 dot"),
              std::string::npos) << "M=" << M;
  CheckBatchMatchesAlone("tiny-qwen3", {5, 1, 17, 9}, 4, 0.0f, "", ComputeMode::kBf16);
  CheckBatchMatchesAlone("tiny-qwen3", {3, 8, 2, 6, 1, 11, 4, 7}, 3, 0.0f, "", ComputeMode::kBf16);
}

TEST(BatchDecoder, TinyLlamaTwoSequencesMatchAlone) {
  CheckBatchMatchesAlone("tiny-llama", {4, 11}, 5, 1e-5f);
}

// One sequence in a batch goes through the same kernels as Context::Forward: bit for bit.
TEST(BatchDecoder, BatchOfOneIsExactlyForward) {
  const Shared s = Load("tiny-qwen3");
  const int64_t V = s.model->config().vocab_size;
  auto a = NewContext(s), b = NewContext(s);
  const auto prompt = Prompt(13, 1, V);
  a->Forward(prompt, Logits::kNone, nullptr);
  b->Forward(prompt, Logits::kNone, nullptr);
  BatchDecoder decoder(s.model, s.pool, 4);
  Context* contexts[] = {a.get()};
  std::vector<float> batched, single;
  for (int32_t id : {5, 77, 1024}) {
    decoder.Decode(contexts, std::span<const int32_t>(&id, 1), &batched);
    b->Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &single);
    ASSERT_EQ(batched, single);
  }
}

// Two contexts of one Model on two threads at once, each with its own pool (prefill in
// blocks, then decode), give what each gives alone.
TEST(BatchDecoder, ContextsOnDifferentThreadsShareTheModel) {
  const Shared s = Load("tiny-qwen3", 1);
  const int64_t V = s.model->config().vocab_size;
  auto run = [&](int32_t salt, std::shared_ptr<ThreadPool> pool) {
    EngineOptions o;
    o.ctx = 128;
    auto c = Context::Create(s.model, std::move(pool), o);
    std::vector<float> logits;
    (*c)->Forward(Prompt(40, salt, V), Logits::kLast, &logits);
    std::vector<int32_t> out;
    for (int i = 0; i < 8; ++i) {
      const int32_t id = Argmax(logits.data(), V);
      out.push_back(id);
      (*c)->Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &logits);
    }
    return std::make_pair(out, logits);
  };
  const auto want0 = run(0, s.pool), want1 = run(1, s.pool);
  decltype(run(0, s.pool)) got0, got1;
  std::thread t0([&] { got0 = run(0, std::make_shared<ThreadPool>(2)); });
  std::thread t1([&] { got1 = run(1, std::make_shared<ThreadPool>(2)); });
  t0.join();
  t1.join();
  EXPECT_EQ(got0.first, want0.first);
  EXPECT_EQ(got1.first, want1.first);
  for (int64_t v = 0; v < V; ++v) {
    ASSERT_NEAR(got0.second[v], want0.second[v], 1e-4f);
    ASSERT_NEAR(got1.second[v], want1.second[v], 1e-4f);
  }
}

// Two conversations on one model: each context reuses only its own prefix.
TEST(BatchDecoder, EachContextReusesOnlyItsOwnPrefix) {
  const Shared s = Load("stories260k");
  const int64_t V = s.model->config().vocab_size;
  auto a = NewContext(s), b = NewContext(s);
  const auto pa = Prompt(20, 1, V), pb = Prompt(20, 2, V);
  Sampler greedy(SamplerOptions{});
  GenerateOptions g;
  g.max_new_tokens = 4;
  auto ignore = [](int32_t) { return true; };
  Generator(*a).Generate(pa, g, greedy, ignore);
  const GenerationStats sb = Generator(*b).Generate(pb, g, greedy, ignore);
  EXPECT_EQ(sb.prefilled_tokens, 20);  // nothing of a's cache
  std::vector<int32_t> longer = a->tokens();
  longer.push_back(3);
  const GenerationStats sa = Generator(*a).Generate(longer, g, greedy, ignore);
  EXPECT_EQ(sa.prefilled_tokens, 1);
}

}  // namespace
}  // namespace oko
