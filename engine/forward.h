// ForwardPass: runs the layer graph once over the rows of one or more sequences. Each
// segment is T consecutive new positions of one context; the rows of every segment are
// stacked, so the matmuls read each weight once for all of them (a prefill chunk is one
// segment of T rows; batched decode is N segments of one row). Row-wise ops see one
// batch; RoPE, the KV store and attention work per segment, each on its own context's
// positions and cache. Prefill attention runs in blocks of positions per KV head, decode
// per position; both apply the segment's interventions (engine/interventions.h) in the
// kernels and hand the trace sink the probabilities they computed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/graph.h"
#include "engine/profiler.h"
#include "engine/thread_pool.h"

namespace oko {

class Context;
class Model;

enum class Logits { kNone, kLast, kAll };

struct Segment {
  Context* context;
  std::span<const int32_t> ids;  // run at context->position() ..
  Logits logits;                 // which of its rows' logits are wanted
};

// Activation buffers of up to `rows` rows and the per-worker attention scratch.
class Workspace {
 public:
  Workspace(const Model& model, size_t rows, int workers);
  size_t rows() const { return rows_; }
  float* buf(Buf b) { return bufs_[static_cast<int>(b)].data(); }

 private:
  friend class ForwardPass;
  size_t rows_;
  std::vector<float> bufs_[kNumBufs];
  std::vector<float> rope_cos_, rope_sin_;  // [rows, head_dim / 2]
  // Per worker: the probabilities [group, visible keys] of a decode position, or the
  // scratch of a prefill block (AttentionBlockScratch); grown to the largest cache seen.
  std::vector<std::vector<float>> attention_scratch_;
  // Per worker, only while a trace records: a block's probabilities [queries, keys], and
  // the absolute positions of the keys a query sees.
  std::vector<std::vector<float>> block_probs_;
  std::vector<std::vector<int64_t>> key_positions_;
  std::vector<float> lora_scratch_;  // [rows, the model's largest LoRA rank]
  // Per worker, only under interventions that bias scores: the bias rows of a block.
  std::vector<std::vector<float>> key_bias_;
};

class ForwardPass {
 public:
  // Runs every segment (ids in [0, vocab), distinct contexts, rows in total at most
  // workspace.rows(), each segment at most its cache's max_batch) and appends the wanted
  // logits, segment by segment, to *logits ([rows wanted, vocab]). Advances each context.
  static void Run(const Model& model, ThreadPool& pool, Workspace& workspace,
                  std::span<const Segment> segments, Profiler* profiler,
                  std::vector<float>* logits);

  // Query positions per prefill attention block: about kBlockTargetQueries query heads.
  static size_t BlockPositions(int64_t group);

 private:
  struct Part;  // a segment with its rows and positions
  struct AttentionTask;
  struct RowRun;  // consecutive rows whose contexts scale the LoRA adapters alike
  ForwardPass(const Model& model, ThreadPool& pool, Workspace& ws, std::span<const Segment> s);
  void RunNode(const Node& n);
  size_t FusedCount(std::span<const Node> nodes, size_t i) const;
  void RunFused(std::span<const Node> group);
  void RecordTimes(Profiler& profiler, std::span<const Node> nodes, size_t i, size_t count,
                   int64_t ns) const;
  void Embed();
  void Rope(const Node& n);
  void Attention(const Node& n);
  void AttendPosition(const Node& n, const Part& p, size_t t, size_t kv_head, int worker);
  void PrefetchDecodeKv(const Node& n, size_t task) const;
  void AttendBlock(const Node& n, const Part& p, size_t t0, size_t positions, size_t kv_head,
                   int worker);
  void AddSteering(int64_t layer);
  void LmHead(const Node& n);
  static void AddRowRun(std::vector<RowRun>& runs, size_t row0, size_t rows,
                        std::span<const float> scales);
  void Lora(const Node& n, const float* x, float* y, const std::vector<RowRun>& runs);
  void Hooks(size_t node_index, const Node& n);
  OpCost NodeCost(const Node& n) const;
  float* buf(Buf b) { return ws_.buf(b); }

  static constexpr size_t kBlockTargetQueries = 32;
  static constexpr size_t kMaxFused = 3;  // matmuls in one job: q, k, v
  const Model& model_;
  ThreadPool& pool_;
  Workspace& ws_;
  std::vector<Part> parts_;
  std::vector<AttentionTask> attention_tasks_;
  std::vector<RowRun> row_runs_;  // of the parts' rows
  size_t rows_ = 0;
  size_t logit_rows_ = 0;  // rows through lm_head, gathered to the front of its input
  Phase phase_;
};

}  // namespace oko
