#include "engine/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "engine/context.h"
#include "engine/model.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/rms_norm.h"
#include "ops/rope.h"

namespace oko {

struct ForwardPass::Part {
  Context* context;
  std::span<const int32_t> ids;
  Logits logits;
  size_t row0;   // its first row in the workspace
  int64_t pos0;  // its first position
  int64_t T;
  bool tracing = false;  // its trace records the attention of the current layer
};

struct ForwardPass::AttentionTask {
  uint32_t part, t0, positions, kv_head;
};

struct ForwardPass::RowRun {
  size_t row0, rows;
  std::span<const float> scales;
};

Workspace::Workspace(const Model& model, size_t rows, int workers) : rows_(rows) {
  const LayerGraph& g = model.graph();
  // The vocabulary-wide logits rows are grown as passes want them (most want one).
  for (int b = 0; b < kNumBufs; ++b)
    if (static_cast<Buf>(b) != Buf::kLogits) bufs_[b].assign(rows * g.BufWidth(static_cast<Buf>(b)), 0.0f);
  const size_t half = model.config().head_dim / 2;
  rope_cos_.assign(rows * half, 0.0f);
  rope_sin_.assign(rows * half, 0.0f);
  attention_scratch_.resize(workers);
  lora_scratch_.resize(rows * model.max_lora_rank());
  block_probs_.resize(workers);
  key_positions_.resize(workers);
  key_bias_.resize(workers);
}

size_t ForwardPass::BlockPositions(int64_t group) {
  return std::max<size_t>(1, kBlockTargetQueries / static_cast<size_t>(group));
}

ForwardPass::ForwardPass(const Model& model, ThreadPool& pool, Workspace& ws,
                         std::span<const Segment> segments)
    : model_(model), pool_(pool), ws_(ws) {
  const ModelConfig& c = model.config();
  const size_t group = c.num_heads / c.num_kv_heads, per_block = BlockPositions(group);
  bool decode = true;
  for (const Segment& s : segments) {
    Context& ctx = *s.context;
    const int64_t T = static_cast<int64_t>(s.ids.size());
    OKO_CHECK(T >= 1 && T <= ctx.kv_.max_batch(), "{} positions in one pass (at most {})", T,
              ctx.kv_.max_batch());
    parts_.push_back({s.context, s.ids, s.logits, rows_, ctx.position_, T});
    AddRowRun(row_runs_, rows_, static_cast<size_t>(T), ctx.lora_scales_);
    rows_ += static_cast<size_t>(T);
    logit_rows_ += s.logits == Logits::kAll ? T : s.logits == Logits::kLast ? 1 : 0;
    decode = decode && T == 1;
    ctx.rope_.Reserve(ctx.position_ + T);
    // Scratch for the largest set of keys a query of this cache can see.
    const size_t keys = static_cast<size_t>(ctx.kv_.capacity() + ctx.kv_.max_batch());
    const size_t scratch = std::max(group * keys, AttentionBlockScratch(per_block * group, keys, c.head_dim));
    for (auto& v : ws.attention_scratch_)
      if (v.size() < scratch) v.resize(scratch);
    if (ctx.trace_ != nullptr)
      for (auto& v : ws.block_probs_)
        if (v.size() < per_block * group * keys) v.resize(per_block * group * keys);
    if (ctx.interventions_ != nullptr)
      for (auto& v : ws.key_bias_)
        if (v.size() < per_block * group * keys) v.resize(per_block * group * keys);
  }
  OKO_CHECK(rows_ <= ws.rows(), "{} rows in one pass, the workspace holds {}", rows_, ws.rows());
  phase_ = decode ? Phase::kDecode : Phase::kPrefill;
  std::vector<float>& logits = ws.bufs_[static_cast<int>(Buf::kLogits)];
  if (logits.size() < logit_rows_ * c.vocab_size) logits.resize(logit_rows_ * c.vocab_size);
  const uint32_t kv_heads = static_cast<uint32_t>(c.num_kv_heads);
  const auto num_parts = static_cast<uint32_t>(parts_.size());
  if (decode) {
    // One task per (KV head, sequence), head-major: a range of tasks (Attention claims
    // them in ranges) then holds every sequence's share of its heads, whatever their
    // depths.
    for (uint32_t j = 0; j < kv_heads; ++j)
      for (uint32_t p = 0; p < num_parts; ++p) attention_tasks_.push_back({p, 0, 1, j});
    return;
  }
  for (uint32_t p = 0; p < num_parts; ++p) {
    const uint32_t T = static_cast<uint32_t>(parts_[p].T);
    // One task per (position, KV head) of a decoding part; blocks of positions otherwise.
    const uint32_t step = T == 1 ? 1 : static_cast<uint32_t>(per_block);
    for (uint32_t t0 = 0; t0 < T; t0 += step)
      for (uint32_t j = 0; j < kv_heads; ++j)
        attention_tasks_.push_back({p, t0, std::min(step, T - t0), j});
  }
}

void ForwardPass::Run(const Model& model, ThreadPool& pool, Workspace& workspace,
                      std::span<const Segment> segments, Profiler* profiler,
                      std::vector<float>* logits) {
  ForwardPass pass(model, pool, workspace, segments);
  const std::span<const Node> nodes = model.graph().nodes();
  for (size_t i = 0; i < nodes.size();) {
    const Node& n = nodes[i];
    if (n.kind == OpKind::kLogits && pass.logit_rows_ == 0) break;
    const size_t count = pass.FusedCount(nodes, i);
    const int64_t t0 = profiler != nullptr ? Profiler::NowNs() : 0;
    if (count == 1) {
      pass.RunNode(n);
    } else {
      pass.RunFused(nodes.subspan(i, count));
    }
    if (profiler != nullptr) pass.RecordTimes(*profiler, nodes, i, count, Profiler::NowNs() - t0);
    for (size_t j = i; j < i + count; ++j) {
      if (nodes[j].layer >= 0 && model.graph().LayerEnd(nodes[j].layer) == j) pass.AddSteering(nodes[j].layer);
      pass.Hooks(j, nodes[j]);
    }
    i += count;
  }
  if (profiler != nullptr) profiler->AddTokens(pass.phase_, static_cast<int64_t>(pass.rows_));
  if (logits != nullptr && pass.logit_rows_ > 0) {
    const float* src = workspace.buf(Buf::kLogits);
    logits->insert(logits->end(), src, src + pass.logit_rows_ * model.config().vocab_size);
  }
  for (const Part& p : pass.parts_) {
    p.context->position_ += p.T;
    p.context->tokens_.insert(p.context->tokens_.end(), p.ids.begin(), p.ids.end());
  }
}

void ForwardPass::Embed() {
  const size_t H = model_.config().hidden_size;
  for (const Part& p : parts_)
    for (size_t t = 0; t < p.ids.size(); ++t) model_.graph().EmbedRow(p.ids[t], buf(Buf::kX) + (p.row0 + t) * H);
}

// Fewer rows are normalized on the caller: a job costs more than their arithmetic, and
// half the rows would come from the other core's cache. 8 sequences on 2 threads, `oko
// profile -t 2 -p 1 -n 32 --parallel 8` (Q4_K_M, Zen 5), attn_norm and mlp_norm over the
// pool -> on the caller: 3.7-4.3 -> 1.0-1.2 ms each (~1.5 us per 8 rows alone, ~3.7 us
// more as a job: the break-even is near 40 rows); decode 440-447 -> 448-458 tok/s.
constexpr size_t kParallelNormRows = 32;

void ForwardPass::RunNode(const Node& n) {
  const ModelConfig& c = model_.config();
  const LayerGraph& g = model_.graph();
  const size_t T = rows_;
  switch (n.kind) {
    case OpKind::kEmbed:
      Embed();
      break;
    case OpKind::kRmsNorm: {
      const size_t w = g.BufWidth(n.in);
      const RmsNormArgs a{buf(n.in), w, n.norm_weight, buf(n.out), w, 0, size_t(n.cols),
                          static_cast<float>(c.rms_norm_eps)};
      const auto rows = [&](size_t r0, size_t r1, int) {
        RmsNormArgs part = a;
        part.x += r0 * w;
        part.y += r0 * w;
        part.rows = r1 - r0;
        RmsNormRows(part);
      };
      if (T < kParallelNormRows) {
        rows(0, T, 0);
      } else {
        pool_.ParallelFor(T, 1, rows);
      }
      break;
    }
    case OpKind::kHeadNorm: {
      const size_t hd = n.cols, rows = T * g.BufWidth(n.in) / hd;
      RmsNormRows({buf(n.in), hd, n.norm_weight, buf(n.out), hd, rows, hd,
                   static_cast<float>(c.rms_norm_eps)});
      break;
    }
    case OpKind::kMatMul:
      n.linear->Forward(pool_, buf(n.in), g.BufWidth(n.in), T, buf(n.out), g.BufWidth(n.out), phase_);
      if (n.linear->has_lora()) Lora(n, buf(n.in), buf(n.out), row_runs_);
      break;
    case OpKind::kRope:
      Rope(n);
      break;
    case OpKind::kKvStore: {
      // The sequences' kv heads split among the workers (one job, one range each: a task
      // per head and sequence cost more than it saved, 14.8 -> 25 ms). 8 sequences on 2
      // threads, f16 KV, `oko profile -t 2 -p 1 -n 32 --parallel 8`: kv_store 14.5-14.8 ->
      // 9.4-12.6 ms. One row is stored faster than a job is handed out.
      const size_t kv_dim = c.kv_dim(), heads = c.num_kv_heads;
      const auto store = [&](size_t b, size_t e, int) {  // items: sequence x kv head
        for (size_t i = b; i < e; ++i) {
          const Part& p = parts_[i / heads];
          p.context->kv_.StoreHead(n.layer, static_cast<int64_t>(i % heads), p.pos0, p.T,
                                   buf(n.in) + p.row0 * kv_dim, buf(n.in2) + p.row0 * kv_dim);
        }
      };
      if (T == 1) {
        store(0, heads, 0);
      } else {
        pool_.ParallelFor(parts_.size() * heads, 1, store);
      }
      break;
    }
    case OpKind::kAttention:
      Attention(n);
      break;
    case OpKind::kSiluMul:
      pool_.ParallelFor(T * n.cols, 64, [&](size_t i0, size_t i1, int) {
        SiluMul(buf(n.in) + i0, buf(n.in2) + i0, buf(n.out) + i0, i1 - i0);
      });
      break;
    case OpKind::kResidual:
      AddInplace(buf(n.out), buf(n.in), T * n.cols);
      break;
    case OpKind::kLogits:
      LmHead(n);
      break;
  }
}

// Where the matmuls run by rows (decode, small batches: Linear::RunsByRows), the ones that
// read the same input (q, k, v; gate, up) run as one pool job over their rows in turn: one
// barrier instead of one per matrix. A gate/up pair directly followed by its SiLU product
// (and without LoRA terms, which come before the product) also takes the product of each
// range of rows in the same task, while the rows are in cache. Returns the nodes the
// group spans from `i` (1: run alone).
size_t ForwardPass::FusedCount(std::span<const Node> nodes, size_t i) const {
  auto by_rows = [&](const Node& n) { return n.kind == OpKind::kMatMul && n.linear->RunsByRows(rows_); };
  if (!by_rows(nodes[i])) return 1;
  size_t end = i + 1;
  while (end < nodes.size() && end - i < kMaxFused && by_rows(nodes[end]) && nodes[end].in == nodes[i].in)
    ++end;
  if (end - i != 2 || end == nodes.size()) return end - i;
  const Node &gate = nodes[i], &up = nodes[i + 1], &product = nodes[end];
  const bool gated = product.kind == OpKind::kSiluMul && product.in == gate.out &&
                     product.in2 == up.out && gate.linear->N() == up.linear->N() &&
                     product.cols == gate.linear->N() && !gate.linear->has_lora() &&
                     !up.linear->has_lora();
  return gated ? 3 : 2;
}

void ForwardPass::RunFused(std::span<const Node> group) {
  const LayerGraph& g = model_.graph();
  thread_local std::vector<uint8_t> xq[kMaxFused];
  Linear::RowsCall calls[kMaxFused];
  size_t matmuls = 0, rows_total = 0;
  for (const Node& n : group) {
    if (n.kind != OpKind::kMatMul) continue;
    calls[matmuls] = n.linear->PrepareRows(buf(n.in), g.BufWidth(n.in), rows_, buf(n.out),
                                           g.BufWidth(n.out), phase_, &xq[matmuls],
                                           matmuls > 0 ? &calls[matmuls - 1] : nullptr);
    rows_total += static_cast<size_t>(n.linear->N());
    ++matmuls;
  }
  if (group.back().kind == OpKind::kSiluMul) {
    const Node &gate = group[0], &up = group[1], &product = group[2];
    const size_t N = static_cast<size_t>(gate.linear->N());
    pool_.ParallelFor(N, 16, [&](size_t n0, size_t n1, int) {
      gate.linear->Rows(calls[0], n0, n1);
      up.linear->Rows(calls[1], n0, n1);
      for (size_t r = 0; r < rows_; ++r)
        SiluMul(buf(product.in) + r * N + n0, buf(product.in2) + r * N + n0,
                buf(product.out) + r * N + n0, n1 - n0);
    }, 4);
    return;
  }
  // The matrices' rows one after another: a task's range may span two of them.
  pool_.ParallelFor(rows_total, 16, [&](size_t b, size_t e, int) {
    size_t first = 0;
    for (size_t m = 0; m < matmuls; ++m) {
      const size_t n = static_cast<size_t>(group[m].linear->N());
      const size_t lo = std::max(b, first), hi = std::min(e, first + n);
      if (lo < hi) group[m].linear->Rows(calls[m], lo - first, hi - first);
      first += n;
    }
  }, 4);
  for (const Node& n : group)
    if (n.linear->has_lora()) Lora(n, buf(n.in), buf(n.out), row_runs_);
}

// A fused group's time is shared among its nodes in proportion to the bytes each moves
// (the matmuls are memory bound here), so per-op reports keep one row per matrix.
void ForwardPass::RecordTimes(Profiler& profiler, std::span<const Node> nodes, size_t i,
                              size_t count, int64_t ns) const {
  double total = 0;
  for (size_t j = i; j < i + count; ++j) total += NodeCost(nodes[j]).bytes;
  for (size_t j = i; j < i + count; ++j) {
    const OpCost cost = NodeCost(nodes[j]);
    const double share = count == 1 || total == 0 ? 1.0 : cost.bytes / total;
    profiler.Record(phase_, j, static_cast<int64_t>(static_cast<double>(ns) * share), cost);
  }
}

void ForwardPass::Rope(const Node& n) {
  const ModelConfig& c = model_.config();
  const size_t half = c.head_dim / 2;
  float* cos = ws_.rope_cos_.data();
  float* sin = ws_.rope_sin_.data();
  for (const Part& p : parts_) {
    for (int64_t t = 0; t < p.T; ++t) {
      const size_t row = p.row0 + static_cast<size_t>(t);
      std::memcpy(cos + row * half, p.context->rope_.cos(p.pos0 + t), half * 4);
      std::memcpy(sin + row * half, p.context->rope_.sin(p.pos0 + t), half * 4);
    }
  }
  const size_t T = rows_;
  RopeNeoxInplace({buf(n.in), size_t(c.q_dim()), T, size_t(c.num_heads), size_t(c.head_dim), cos, sin});
  RopeNeoxInplace({buf(n.in2), size_t(c.kv_dim()), T, size_t(c.num_kv_heads), size_t(c.head_dim), cos, sin});
}

void ForwardPass::Attention(const Node& n) {
  for (Part& p : parts_) {
    TraceSink* trace = p.context->trace_;
    p.tracing = trace != nullptr && trace->WantsAttention(n.layer);
  }
  const auto attend = [&](size_t i, int worker) {
    const AttentionTask& task = attention_tasks_[i];
    const Part& p = parts_[task.part];
    if (p.T == 1) {
      AttendPosition(n, p, 0, task.kv_head, worker);
    } else {
      AttendBlock(n, p, task.t0, task.positions, task.kv_head, worker);
    }
  };
  if (phase_ == Phase::kPrefill) return pool_.Run(attention_tasks_.size(), attend);
  // A decode task is one position's keys of one head, too short to be claimed alone: in
  // ranges, 4 per thread. Each task first asks for the next one's first K/V rows (see
  // PrefetchDecodeKv). 8 sequences on 2 threads (64 tasks), `oko profile -t 2 -p 1 -n
  // 32 --parallel 8`, Q4_K_M, Zen 5, 3 alternated rounds: attention 51.5-52.2 -> 40.3-43.9
  // ms, decode 439-462 -> 448-482 tok/s (2 ranges per thread the same); after `-p 512`,
  // twice alternated: attention 680-711 -> 604-636 ms, decode 162-172 -> 181-206 tok/s.
  pool_.ParallelFor(attention_tasks_.size(), 1, [&](size_t b, size_t e, int worker) {
    for (size_t i = b; i < e; ++i) {
      if (i + 1 < attention_tasks_.size()) PrefetchDecodeKv(n, i + 1);
      attend(i, worker);
    }
  }, 4);
}

// A decode task reads a few KB of one sequence's cache at short depths, from DRAM (the
// weights streamed through since the layer before), before the kernel's own prefetching
// (ops/attention.h) starts. Asked for one task ahead: 8 sequences of Qwen3-0.6B Q4_K_M at
// depth 1-33, `oko profile -p 1 -n 32 --parallel 8 --kv f16`, Zen 5, 3 alternated rounds:
// attention 73-78 -> 60-62 ms on 1 thread, 49-56 -> 43-46 on 2 (8, 32 or 64 rows ahead
// the same within the noise); at depth 512 level (the kernel's own prefetching has them).
void ForwardPass::PrefetchDecodeKv(const Node& n, size_t task) const {
  const AttentionTask& next = attention_tasks_[task];
  const Part& p = parts_[next.part];
  const KvCache& kv = p.context->kv_;
  SlotSpan spans[3];
  const size_t num_spans = kv.VisibleSpans(p.pos0, spans, nullptr);
  PrefetchAttentionKv(kv.K(n.layer, next.kv_head), kv.V(n.layer, next.kv_head), kv.rows(), kv.dtype(),
                      model_.config().head_dim, spans, num_spans);
}

namespace {
struct BiasStrides {
  size_t position, head;  // 0: one row shared by all positions / heads
};
// The score bias of the queries at positions first .. first + positions - 1 of query heads
// [head, head + group) over the keys at `keys`: rows [position][head][key], only one head
// row when the group's heads share it and one position row when no knockout makes it
// depend on the query (emphasis alone: the fill then costs one row per block).
BiasStrides FillKeyBias(const Interventions& iv, int64_t layer, int64_t head, size_t group, int64_t first,
                        size_t positions, const std::vector<int64_t>& keys, float* out) {
  const size_t heads = iv.BiasDiffersAcross(layer, head, static_cast<int64_t>(group)) ? group : 1;
  const size_t rows = iv.BiasDependsOnQuery(layer) ? positions : 1;
  for (size_t t = 0; t < rows; ++t)
    for (size_t h = 0; h < heads; ++h)
      iv.KeyBias(layer, head + static_cast<int64_t>(h), first + static_cast<int64_t>(t), keys.data(),
                 keys.size(), out + (t * heads + h) * keys.size());
  return {rows > 1 ? heads * keys.size() : 0, heads > 1 ? keys.size() : 0};
}

const float* HeadsFrom(const float* scale, size_t head) { return scale == nullptr ? nullptr : scale + head; }
}  // namespace

void ForwardPass::AttendPosition(const Node& n, const Part& p, size_t t, size_t j, int worker) {
  const ModelConfig& c = model_.config();
  const size_t group = c.num_heads / c.num_kv_heads, hd = c.head_dim, q_dim = c.q_dim();
  KvCache& kv = p.context->kv_;
  const int64_t pos = p.pos0 + static_cast<int64_t>(t);
  SlotSpan spans[3];
  const Interventions* iv = p.context->interventions_.get();
  const bool biased = iv != nullptr && iv->BiasesScores(n.layer);
  std::vector<int64_t>* positions = p.tracing || biased ? &ws_.key_positions_[worker] : nullptr;
  const size_t num_spans = kv.VisibleSpans(pos, spans, positions);
  float* probs = ws_.attention_scratch_[worker].data();
  const size_t offset = (p.row0 + t) * q_dim + j * group * hd;
  AttentionArgs a{buf(n.in) + offset, hd, group, kv.K(n.layer, j), kv.V(n.layer, j), kv.rows(),
                  kv.dtype(), spans, num_spans, hd, 1.0f / std::sqrt(static_cast<float>(hd)),
                  probs, buf(n.out) + offset, hd};
  if (iv != nullptr) {
    a.head_scale = HeadsFrom(iv->HeadScale(n.layer), j * group);
    if (biased) {
      a.key_bias = ws_.key_bias_[worker].data();
      a.key_bias_head_stride = FillKeyBias(*iv, n.layer, j * group, group, pos, 1, *positions,
                                           ws_.key_bias_[worker].data()).head;
    }
  }
  AttentionQueries(a);
  if (p.tracing) {
    p.context->trace_->OnAttention({n.layer, pos, static_cast<int64_t>(j * group),
                                    static_cast<int64_t>(group), probs, positions->data(),
                                    static_cast<int64_t>(positions->size())});
  }
}

// Prefill: blocks of consecutive positions per KV head, so that each key and value row
// is loaded once for the whole block (ops/attention.h).
void ForwardPass::AttendBlock(const Node& n, const Part& p, size_t t0, size_t positions,
                              size_t j, int worker) {
  const ModelConfig& c = model_.config();
  const size_t group = c.num_heads / c.num_kv_heads, hd = c.head_dim, q_dim = c.q_dim();
  KvCache& kv = p.context->kv_;
  const int64_t first = p.pos0 + static_cast<int64_t>(t0);
  SlotSpan spans[3];
  KeyColumns keys[kBlockQueries];
  const Interventions* iv = p.context->interventions_.get();
  const bool biased = iv != nullptr && iv->BiasesScores(n.layer);
  std::vector<int64_t>& columns = ws_.key_positions_[worker];  // of the keys, when biased
  const size_t num_spans = kv.BlockSpans(first, first + static_cast<int64_t>(positions) - 1, spans,
                                         keys, biased ? &columns : nullptr);
  const size_t offset = (p.row0 + t0) * q_dim + j * group * hd;
  float* block_probs = p.tracing ? ws_.block_probs_[worker].data() : nullptr;
  AttentionBlockArgs a{buf(n.in) + offset, q_dim, positions, group, kv.K(n.layer, j),
                       kv.V(n.layer, j), kv.rows(), kv.dtype(), spans, num_spans, keys, hd,
                       1.0f / std::sqrt(static_cast<float>(hd)), ws_.attention_scratch_[worker].data(),
                       buf(n.out) + offset, q_dim, block_probs};
  if (iv != nullptr) {
    a.head_scale = HeadsFrom(iv->HeadScale(n.layer), j * group);
    if (biased) {
      a.key_bias = ws_.key_bias_[worker].data();
      const BiasStrides s = FillKeyBias(*iv, n.layer, j * group, group, first, positions, columns,
                                        ws_.key_bias_[worker].data());
      a.key_bias_stride = s.position;
      a.key_bias_head_stride = s.head;
    }
  }
  AttentionBlock(a);
  if (!p.tracing) return;
  // Each position's probabilities over the keys it sees: its columns of the block's.
  size_t total = 0;
  for (size_t s = 0; s < num_spans; ++s) total += spans[s].end - spans[s].begin;
  std::vector<int64_t>& key_positions = ws_.key_positions_[worker];
  float* probs = ws_.attention_scratch_[worker].data();  // free once the block is done
  for (size_t t = 0; t < positions; ++t) {
    const int64_t pos = first + static_cast<int64_t>(t);
    SlotSpan visible[3];
    kv.VisibleSpans(pos, visible, &key_positions);
    const KeyColumns& k = keys[t];
    const size_t seen = k.end - (k.hole_end - k.hole_begin);
    OKO_CHECK(seen == key_positions.size(), "position {} sees {} keys, its block columns {}", pos,
              key_positions.size(), seen);
    for (size_t g = 0; g < group; ++g) {
      const float* row = block_probs + (t * group + g) * total;
      float* dst = std::copy(row, row + k.hole_begin, probs + g * seen);
      std::copy(row + k.hole_end, row + k.end, dst);
    }
    p.context->trace_->OnAttention({n.layer, pos, static_cast<int64_t>(j * group),
                                    static_cast<int64_t>(group), probs, key_positions.data(),
                                    static_cast<int64_t>(seen)});
  }
}

// Activation addition: each steered segment's rows of the residual stream, after `layer`.
void ForwardPass::AddSteering(int64_t layer) {
  const size_t H = model_.config().hidden_size;
  for (const Part& p : parts_) {
    const Interventions* iv = p.context->interventions_.get();
    const float* v = iv == nullptr ? nullptr : iv->Steering(layer);
    if (v == nullptr) continue;
    for (size_t r = p.row0; r < p.row0 + static_cast<size_t>(p.T); ++r) AddInplace(buf(Buf::kX) + r * H, v, H);
  }
}

// Only the rows whose logits are wanted go through the (vocab-sized) lm_head: they are
// moved to the front of its input first (in order, so a row never overwrites one not yet
// moved).
void ForwardPass::LmHead(const Node& n) {
  const size_t w = model_.graph().BufWidth(n.in);
  float* x = buf(n.in);
  size_t wanted = 0;
  auto keep = [&](size_t row) {
    if (row != wanted) std::memmove(x + wanted * w, x + row * w, w * sizeof(float));
    ++wanted;
  };
  std::vector<RowRun> runs;
  for (const Part& p : parts_) {
    const size_t end = p.row0 + static_cast<size_t>(p.T), first = wanted;
    if (p.logits == Logits::kAll)
      for (size_t r = p.row0; r < end; ++r) keep(r);
    if (p.logits == Logits::kLast) keep(end - 1);
    AddRowRun(runs, first, wanted - first, p.context->lora_scales_);
  }
  n.linear->Forward(pool_, x, w, wanted, buf(n.out), model_.graph().BufWidth(n.out), phase_);
  if (n.linear->has_lora()) Lora(n, x, buf(n.out), runs);
}

void ForwardPass::AddRowRun(std::vector<RowRun>& runs, size_t row0, size_t rows,
                            std::span<const float> scales) {
  if (rows == 0) return;
  RowRun* last = runs.empty() ? nullptr : &runs.back();
  if (last != nullptr && last->row0 + last->rows == row0 && std::ranges::equal(last->scales, scales)) {
    last->rows += rows;
    return;
  }
  runs.push_back({row0, rows, scales});
}

// The LoRA terms of n's Linear (engine/linear.h), one call per run of rows that share the
// adapters' scales: usually one for the whole pass.
void ForwardPass::Lora(const Node& n, const float* x, float* y, const std::vector<RowRun>& runs) {
  const size_t xs = model_.graph().BufWidth(n.in), ys = model_.graph().BufWidth(n.out);
  for (const RowRun& r : runs)
    n.linear->ForwardLora(pool_, x + r.row0 * xs, xs, r.rows, y + r.row0 * ys, ys, r.scales,
                          ws_.lora_scratch_.data());
}

void ForwardPass::Hooks(size_t node_index, const Node& n) {
  const size_t H = model_.config().hidden_size;
  const LayerGraph& g = model_.graph();
  for (const Part& p : parts_) {
    TraceSink* trace = p.context->trace_;
    if (trace == nullptr) continue;
    if (n.kind == OpKind::kEmbed) trace->OnResidual(-1, p.pos0, p.T, buf(Buf::kX) + p.row0 * H, H);
    if (n.layer >= 0 && g.LayerEnd(n.layer) == node_index)
      trace->OnResidual(n.layer, p.pos0, p.T, buf(Buf::kX) + p.row0 * H, H);
    if (n.site == Site::kFinalNorm) trace->OnFinalHidden(p.pos0, p.T, buf(Buf::kXn) + p.row0 * H, H);
  }
}

OpCost ForwardPass::NodeCost(const Node& n) const {
  const ModelConfig& c = model_.config();
  const LayerGraph& g = model_.graph();
  const double T = static_cast<double>(rows_);
  switch (n.kind) {
    case OpKind::kMatMul:
    case OpKind::kLogits: {
      const double M = n.kind == OpKind::kLogits ? static_cast<double>(logit_rows_) : T;
      const double N = n.linear->N(), K = n.linear->K();
      return {2 * M * N * K, static_cast<double>(n.linear->weight_bytes()) + 4 * M * (N + K)};
    }
    case OpKind::kAttention: {
      OpCost cost;
      for (const Part& p : parts_) {
        const KvCache& kv = p.context->kv_;
        // Causal: the query at position q attends min(q + 1, window) keys.
        double attended = 0;
        for (int64_t q = p.pos0; q < p.pos0 + p.T; ++q)
          attended += static_cast<double>(std::min<int64_t>(q + 1, kv.window()));
        const double keys = static_cast<double>(std::min<int64_t>(p.pos0 + p.T, kv.window()));
        cost.flops += 4.0 * c.num_heads * attended * c.head_dim;
        cost.bytes += 2 * keys * c.kv_dim() * DTypeSize(kv.dtype()) + 8.0 * p.T * c.q_dim();
      }
      return cost;
    }
    case OpKind::kRmsNorm:
    case OpKind::kHeadNorm:
      return {4 * T * g.BufWidth(n.in), 8 * T * g.BufWidth(n.in)};
    case OpKind::kSiluMul:
      return {6 * T * n.cols, 12 * T * n.cols};
    case OpKind::kResidual:
      return {T * n.cols, 12 * T * n.cols};
    case OpKind::kRope:
      return {6 * T * (c.q_dim() + c.kv_dim()) / 2.0, 8 * T * (c.q_dim() + c.kv_dim())};
    case OpKind::kKvStore: {
      double bytes = 0;
      for (const Part& p : parts_)
        bytes += static_cast<double>(p.T) * c.kv_dim() * (8 + 2 * DTypeSize(p.context->kv_.dtype()));
      return {0, bytes};
    }
    case OpKind::kEmbed:
      return {0, T * (4.0 * c.hidden_size + g.embedding_row_bytes())};
  }
  return {};
}

}  // namespace oko
