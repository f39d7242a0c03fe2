// Context: one sequence run through a shared Model. It owns what belongs to the sequence:
// the KV cache, the activation buffers, the RoPE table, the position, the ids whose keys
// and values the cache holds (so a prompt that extends them prefills only what is new),
// the interventions it runs under, and the hooks (trace sink, profiler). Contexts of one Model may run on different
// threads, each with its own ThreadPool; several contexts decode together in one pass
// over the weights through BatchDecoder (engine/batch_decoder.h).
// Forward() runs a batch of token ids at the next positions (prefill when many, decode
// when one), appending their keys and values to the cache.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/forward.h"
#include "engine/interventions.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/profiler.h"
#include "engine/rope_table.h"
#include "engine/thread_pool.h"
#include "engine/trace.h"

namespace oko {

class Context {
 public:
  // Uses the context fields of `options` (ctx, window, sink, max_batch, kv_dtype); the
  // model's compute mode and the pool's size are reported back by options().
  static Result<std::unique_ptr<Context>> Create(std::shared_ptr<const Model> model,
                                                 std::shared_ptr<ThreadPool> pool,
                                                 const EngineOptions& options);

  const Model& model() const { return *model_; }
  const ModelConfig& config() const { return model_->config(); }
  // As resolved: threads = the pool's size, compute = the model's, window narrowed to a
  // model's trained sliding window.
  const EngineOptions& options() const { return options_; }
  const KvCache& kv_cache() const { return kv_; }
  ThreadPool& pool() { return *pool_; }
  // For more contexts on the same weights and pool (BatchDecoder, servers).
  const std::shared_ptr<const Model>& shared_model() const { return model_; }
  const std::shared_ptr<ThreadPool>& shared_pool() const { return pool_; }

  // Runs `ids` at positions position() .. position()+n-1. logits receives [1, vocab]
  // (kLast) or [n, vocab] (kAll) f32 values. Ids must be in [0, vocab).
  void Forward(std::span<const int32_t> ids, Logits which, std::vector<float>* logits);
  int64_t position() const { return position_; }
  // The ids at positions [0, position()), in order.
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Forgets every position (the cache is overwritten from position 0).
  void Reset();
  // Commits the cache's memory for positions [0, n) now (KvCache::Commit): benchmarks
  // time runs without their first touch of it.
  void CommitCache(int64_t n) { kv_.Commit(n); }
  // Drops positions >= n, when they are still in the cache (chat prefix reuse).
  bool Rewind(int64_t n);
  // Keeps the longest prefix of tokens() that `prompt` starts with and that is still in
  // the cache, leaving at least one prompt token to run (it produces the logits);
  // returns its length.
  size_t ReusePrefix(std::span<const int32_t> prompt);

  // The logits [T, vocab] of hidden states x [T, hidden] (the logit lens).
  void LogitsOfHidden(const float* x, int64_t T, float* out);

  // The scale of each unmerged LoRA adapter of the model (Model::loras(), in order),
  // starting at --lora's SCALE. Changing one changes every position's keys and values, so
  // the cache is dropped (Reset) when it holds any; returns whether it did.
  std::span<const float> lora_scales() const { return lora_scales_; }
  bool set_lora_scale(size_t adapter, float scale);

  // The interventions this sequence runs under (engine/interventions.h), nullptr: none.
  // The positions already in the cache keep what they were computed with: a caller that
  // changes them rewinds (or resets) to the first position the change affects.
  void set_interventions(std::shared_ptr<const Interventions> iv) { interventions_ = std::move(iv); }
  const std::shared_ptr<const Interventions>& interventions() const { return interventions_; }

  void set_trace(TraceSink* sink) { trace_ = sink; }
  void set_profiler(Profiler* p) { profiler_ = p; }
  TraceSink* trace() const { return trace_; }

 private:
  friend class ForwardPass;  // reads and advances the sequence state of each segment
  Context(std::shared_ptr<const Model> model, std::shared_ptr<ThreadPool> pool,
          const EngineOptions& options);

  std::shared_ptr<const Model> model_;
  std::shared_ptr<ThreadPool> pool_;
  EngineOptions options_;
  RopeTable rope_;
  KvCache kv_;
  Workspace workspace_;
  int64_t position_ = 0;
  std::vector<int32_t> tokens_;
  std::vector<float> lora_scales_;
  std::shared_ptr<const Interventions> interventions_;
  TraceSink* trace_ = nullptr;
  Profiler* profiler_ = nullptr;
};

// A model loaded for one sequence, with a pool of options.threads workers: what the
// single-sequence commands use.
Result<std::unique_ptr<Context>> LoadContext(const std::string& dir, const EngineOptions& options);

}  // namespace oko
