// Model: a loaded Hugging Face model folder, its layer graph, KV cache and thread pool.
// Forward() runs a batch of token ids at the next positions (prefill when many, decode
// when one), appending their keys and values to the cache.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/kv_cache.h"
#include "engine/profiler.h"
#include "engine/rope_table.h"
#include "engine/thread_pool.h"
#include "engine/trace.h"
#include "loaders/model_dir.h"

namespace oko {

struct EngineOptions {
  int threads = 0;            // 0: every core
  int64_t ctx = 4096;         // KV capacity in positions (clamped to the model's maximum)
  int64_t window = 0;         // attended positions (0: ctx); < ctx masks a sliding window
  int64_t sink = 0;           // positions never evicted when the ring wraps
  int64_t max_batch = 256;    // prefill chunk
  DType kv_dtype = DType::kF32;
  ComputeMode compute = ComputeMode::kF32;
  // Picks kBf16 when the weights are bf16 and the CPU has AVX512-BF16, else kF32.
  bool compute_auto = false;
};

enum class Logits { kNone, kLast, kAll };

class Model {
 public:
  static Result<std::unique_ptr<Model>> Load(const std::string& dir, const EngineOptions& options);

  const ModelConfig& config() const { return dir_.config; }
  const ModelDir& model_dir() const { return dir_; }
  const EngineOptions& options() const { return options_; }
  const LayerGraph& graph() const { return graph_; }
  const KvCache& kv_cache() const { return kv_; }
  ThreadPool& pool() { return pool_; }

  // Runs `ids` at positions position() .. position()+n-1. logits receives [1, vocab]
  // (kLast) or [n, vocab] (kAll) f32 values. Ids must be in [0, vocab).
  void Forward(std::span<const int32_t> ids, Logits which, std::vector<float>* logits);
  int64_t position() const { return position_; }
  // Forgets every position (the cache is overwritten from position 0).
  void Reset() { position_ = 0; }
  // Drops positions >= n, when they are still in the cache (chat prefix reuse).
  bool Rewind(int64_t n);

  // The logits [T, vocab] of hidden states x [T, hidden] taken through the final norm and
  // lm_head (the logit lens: any layer's residual stream read as if it were the last).
  void LogitsOfHidden(const float* x, int64_t T, float* out);

  void set_trace(TraceSink* sink) { trace_ = sink; }
  void set_profiler(Profiler* p) { profiler_ = p; }

 private:
  Model(ModelDir dir, const EngineOptions& options);
  struct Batch {
    int64_t pos0;
    int64_t T;
    Phase phase;
    Logits logits;
  };
  void ForwardChunk(std::span<const int32_t> ids, Logits which, std::vector<float>* logits);
  void RunNode(const Node& n, const Batch& b);
  OpCost NodeCost(const Node& n, const Batch& b) const;
  void Embed(std::span<const int32_t> ids, float* x);
  void Attention(const Node& n, const Batch& b);
  void AttentionBlocks(const Node& n, const Batch& b);
  // Query positions per prefill attention block: about kBlockTargetQueries query heads.
  size_t BlockPositions() const;
  static constexpr size_t kBlockTargetQueries = 32;
  float* buf(Buf b) { return bufs_[static_cast<int>(b)].data(); }

  ModelDir dir_;
  EngineOptions options_;
  ThreadPool pool_;
  LayerGraph graph_;
  RopeTable rope_;
  KvCache kv_;
  std::vector<float> bufs_[kNumBufs];
  std::vector<std::vector<float>> rope_scratch_;   // cos, sin rows of the batch
  // Per worker: the probabilities [group, visible keys] of a position, or the scratch of
  // a prefill block (AttentionBlockScratch).
  std::vector<std::vector<float>> probs_scratch_;
  std::vector<std::vector<int64_t>> key_positions_;  // per worker, for the trace
  int64_t position_ = 0;
  TraceSink* trace_ = nullptr;
  Profiler* profiler_ = nullptr;
};

// Parses "f32" / "bf16" (the --compute flag).
Result<ComputeMode> ParseComputeMode(const std::string& s);
inline const char* ComputeModeName(ComputeMode m) { return m == ComputeMode::kBf16 ? "bf16" : "f32"; }

}  // namespace oko
