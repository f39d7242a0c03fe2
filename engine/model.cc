#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/check.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/rms_norm.h"
#include "ops/rope.h"

namespace oko {

Result<ComputeMode> ParseComputeMode(const std::string& s) {
  if (s == "f32") return ComputeMode::kF32;
  if (s == "bf16") return ComputeMode::kBf16;
  return Errorf("--compute must be f32 or bf16, got '{}'", s);
}

namespace {
int ResolveThreads(int t) {
  if (t > 0) return t;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}
}  // namespace

Result<std::unique_ptr<Model>> Model::Load(const std::string& dir, const EngineOptions& options) {
  OKO_ASSIGN_OR_RETURN(ModelDir m, OpenModelDir(dir));
  if (options.ctx < 2) return Errorf("--ctx must be at least 2, got {}", options.ctx);
  if (options.window < 0 || options.window > options.ctx)
    return Errorf("the attention window must be in [0, ctx], got {}", options.window);
  if (options.sink < 0 || options.sink >= options.ctx)
    return Errorf("--sink must be in [0, ctx), got {}", options.sink);
  EngineOptions resolved = options;
  // A model trained with a sliding window (Mistral's sliding_window) attends at most that
  // many positions: the engine's attention window, narrowed further only by the caller.
  if (const int64_t sw = m.config.sliding_window; sw > 0) {
    const int64_t current = options.window == 0 ? options.ctx : options.window;
    if (sw < current) resolved.window = sw;
  }
  if (options.compute_auto) {
    const TensorView* w = m.tensors.Find(LayerTensor(0, "mlp.up_proj.weight"));
    const bool bf16_weights = w != nullptr && w->dtype == DType::kBF16;
    resolved.compute = bf16_weights && __builtin_cpu_supports("avx512bf16") ? ComputeMode::kBf16
                                                                            : ComputeMode::kF32;
    resolved.compute_auto = false;
  }
  return std::unique_ptr<Model>(new Model(std::move(m), resolved));
}

Model::Model(ModelDir dir, const EngineOptions& options)
    : dir_(std::move(dir)),
      options_(options),
      pool_(ResolveThreads(options.threads)),
      graph_(LayerGraph::Build(dir_.config, dir_.tensors, options.compute)),
      rope_(dir_.config.head_dim, dir_.config.rope_theta, dir_.config.rope_scaling),
      kv_(dir_.config.num_layers, dir_.config.num_kv_heads, dir_.config.head_dim, options.ctx,
          options.window, options.sink,
          std::min(options.max_batch, options.ctx), options.kv_dtype) {
  options_.threads = pool_.size();
  SetOnednnThreads(1);  // each pool worker runs its own slice (engine/linear.h)
  const size_t rows = kv_.max_batch();
  for (int b = 0; b < kNumBufs; ++b)
    bufs_[b].assign(rows * graph_.BufWidth(static_cast<Buf>(b)), 0.0f);
  const size_t half = dir_.config.head_dim / 2;
  rope_scratch_.assign(2, std::vector<float>(rows * half));
  const size_t group = dir_.config.num_heads / dir_.config.num_kv_heads;
  const size_t max_keys = options.ctx + rows;
  const size_t scratch = std::max(group * max_keys,
                                  AttentionBlockScratch(BlockPositions() * group, max_keys,
                                                        dir_.config.head_dim));
  probs_scratch_.assign(pool_.size(), std::vector<float>(scratch));
  key_positions_.assign(pool_.size(), {});
}

bool Model::Rewind(int64_t n) {
  if (n > position_ || n < 0) return false;
  // The positions a query at n attends must not have been overwritten by those dropped.
  const int64_t window = kv_.window() - kv_.sink();
  const int64_t oldest_needed = std::max(kv_.sink(), n - window);
  if (position_ - 1 - oldest_needed >= kv_.ring()) return false;
  position_ = n;
  return true;
}

void Model::Forward(std::span<const int32_t> ids, Logits which, std::vector<float>* logits) {
  const int64_t V = dir_.config.vocab_size;
  for (int32_t id : ids) OKO_CHECK(id >= 0 && id < V, "token id {} outside [0, {})", id, V);
  if (logits != nullptr) logits->clear();
  const size_t chunk = static_cast<size_t>(kv_.max_batch());
  for (size_t begin = 0; begin < ids.size(); begin += chunk) {
    const size_t end = std::min(ids.size(), begin + chunk);
    const bool last = end == ids.size();
    const Logits w = which == Logits::kAll ? Logits::kAll : (last ? which : Logits::kNone);
    ForwardChunk(ids.subspan(begin, end - begin), w, logits);
  }
}

void Model::ForwardChunk(std::span<const int32_t> ids, Logits which, std::vector<float>* logits) {
  const Batch b{position_, static_cast<int64_t>(ids.size()),
                ids.size() == 1 ? Phase::kDecode : Phase::kPrefill, which};
  rope_.Reserve(b.pos0 + b.T);
  const auto& nodes = graph_.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (n.kind == OpKind::kLogits && which == Logits::kNone) break;
    const int64_t t0 = profiler_ != nullptr ? Profiler::NowNs() : 0;
    if (n.kind == OpKind::kEmbed) {
      Embed(ids, buf(Buf::kX));
    } else {
      RunNode(n, b);
    }
    if (profiler_ != nullptr) profiler_->Record(b.phase, i, Profiler::NowNs() - t0, NodeCost(n, b));
    if (trace_ != nullptr) {
      const int64_t H = dir_.config.hidden_size;
      if (n.kind == OpKind::kEmbed) trace_->OnResidual(-1, b.pos0, b.T, buf(Buf::kX), H);
      if (n.layer >= 0 && graph_.LayerEnd(n.layer) == i)
        trace_->OnResidual(n.layer, b.pos0, b.T, buf(Buf::kX), H);
      if (n.name == "final_norm") trace_->OnFinalHidden(b.pos0, b.T, buf(Buf::kXn), H);
    }
  }
  if (profiler_ != nullptr) profiler_->AddTokens(b.phase, b.T);
  if (logits != nullptr && which != Logits::kNone) {
    const int64_t V = dir_.config.vocab_size;
    const int64_t rows = which == Logits::kAll ? b.T : 1;
    const float* src = buf(Buf::kLogits);
    logits->insert(logits->end(), src, src + rows * V);
  }
  position_ += b.T;
}

void Model::LogitsOfHidden(const float* x, int64_t T, float* out) {
  const ModelConfig& c = dir_.config;
  const size_t H = c.hidden_size;
  const auto& nodes = graph_.nodes();
  const auto norm = std::find_if(nodes.begin(), nodes.end(), [](const Node& n) { return n.name == "final_norm"; });
  const auto head = std::find_if(nodes.begin(), nodes.end(), [](const Node& n) { return n.kind == OpKind::kLogits; });
  OKO_CHECK(norm != nodes.end() && head != nodes.end(), "the graph has no final_norm or lm_head");
  std::vector<float> xn(T * H);
  RmsNormRows({x, H, norm->norm_weight, xn.data(), H, size_t(T), H, static_cast<float>(c.rms_norm_eps)});
  head->linear->Forward(pool_, xn.data(), H, T, out, c.vocab_size);
}

void Model::Embed(std::span<const int32_t> ids, float* x) {
  const TensorView& e = graph_.embeddings();
  const size_t H = dir_.config.hidden_size;
  for (size_t t = 0; t < ids.size(); ++t) {
    const std::byte* row = e.data + static_cast<size_t>(ids[t]) * H * DTypeSize(e.dtype);
    float* dst = x + t * H;
    if (e.dtype == DType::kF32) std::memcpy(dst, row, H * 4);
    if (e.dtype == DType::kBF16) Bf16ToF32Row(reinterpret_cast<const uint16_t*>(row), dst, H);
    if (e.dtype == DType::kF16) F16ToF32Row(reinterpret_cast<const uint16_t*>(row), dst, H);
  }
}

void Model::RunNode(const Node& n, const Batch& b) {
  const ModelConfig& c = dir_.config;
  const size_t T = static_cast<size_t>(b.T);
  switch (n.kind) {
    case OpKind::kEmbed:
      break;  // handled by ForwardChunk, which has the ids
    case OpKind::kRmsNorm: {
      const size_t w = graph_.BufWidth(n.in);
      const RmsNormArgs a{buf(n.in), w, n.norm_weight, buf(n.out), w, 0, size_t(n.cols),
                          static_cast<float>(c.rms_norm_eps)};
      pool_.ParallelFor(T, 1, [&](size_t r0, size_t r1, int) {
        RmsNormArgs part = a;
        part.x += r0 * w;
        part.y += r0 * w;
        part.rows = r1 - r0;
        RmsNormRows(part);
      });
      break;
    }
    case OpKind::kHeadNorm: {
      const size_t hd = n.cols, rows = T * graph_.BufWidth(n.in) / hd;
      RmsNormRows({buf(n.in), hd, n.norm_weight, buf(n.out), hd, rows, hd,
                   static_cast<float>(c.rms_norm_eps)});
      break;
    }
    case OpKind::kMatMul: {
      n.linear->Forward(pool_, buf(n.in), graph_.BufWidth(n.in), T, buf(n.out),
                        graph_.BufWidth(n.out));
      break;
    }
    case OpKind::kRope: {
      const size_t half = c.head_dim / 2;
      float* cos = rope_scratch_[0].data();
      float* sin = rope_scratch_[1].data();
      for (size_t t = 0; t < T; ++t) {
        std::memcpy(cos + t * half, rope_.cos(b.pos0 + t), half * 4);
        std::memcpy(sin + t * half, rope_.sin(b.pos0 + t), half * 4);
      }
      RopeNeoxInplace({buf(n.in), size_t(c.q_dim()), T, size_t(c.num_heads), size_t(c.head_dim), cos, sin});
      RopeNeoxInplace({buf(n.in2), size_t(c.kv_dim()), T, size_t(c.num_kv_heads), size_t(c.head_dim), cos, sin});
      break;
    }
    case OpKind::kKvStore:
      kv_.Store(n.layer, b.pos0, b.T, buf(n.in), buf(n.in2));
      break;
    case OpKind::kAttention:
      Attention(n, b);
      break;
    case OpKind::kSiluMul:
      pool_.ParallelFor(T * n.cols, 64, [&](size_t i0, size_t i1, int) {
        SiluMul(buf(n.in) + i0, buf(n.in2) + i0, buf(n.out) + i0, i1 - i0);
      });
      break;
    case OpKind::kResidual:
      AddInplace(buf(n.out), buf(n.in), T * n.cols);
      break;
    case OpKind::kLogits: {
      // Only the rows whose logits are wanted go through the (vocab-sized) lm_head.
      const size_t w = graph_.BufWidth(n.in);
      const size_t rows = b.logits == Logits::kAll ? T : 1;
      const float* x = buf(n.in) + (T - rows) * w;
      n.linear->Forward(pool_, x, w, rows, buf(n.out), graph_.BufWidth(n.out));
      break;
    }
  }
}

void Model::Attention(const Node& n, const Batch& b) {
  const ModelConfig& c = dir_.config;
  const size_t kv_heads = c.num_kv_heads, group = c.num_heads / c.num_kv_heads;
  const size_t hd = c.head_dim, q_dim = c.q_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const bool tracing = trace_ != nullptr && trace_->WantsAttention(n.layer);
  // With a trace attached every layer runs per position, so that a trace filtered to some
  // layers records the same values as a full one (blocks round differently).
  if (b.T > 1 && trace_ == nullptr) return AttentionBlocks(n, b);
  pool_.Run(static_cast<size_t>(b.T) * kv_heads, [&](size_t task, int worker) {
    const size_t t = task / kv_heads, j = task % kv_heads;
    const int64_t pos = b.pos0 + static_cast<int64_t>(t);
    SlotSpan spans[3];
    std::vector<int64_t>* positions = tracing ? &key_positions_[worker] : nullptr;
    const size_t num_spans = kv_.VisibleSpans(pos, spans, positions);
    const AttentionArgs a{buf(n.in) + t * q_dim + j * group * hd, hd, group,
                          kv_.K(n.layer, j), kv_.V(n.layer, j), hd, kv_.dtype(),
                          spans, num_spans, hd, scale, probs_scratch_[worker].data(),
                          buf(n.out) + t * q_dim + j * group * hd, hd};
    AttentionQueries(a);
    if (tracing) {
      trace_->OnAttention({n.layer, pos, static_cast<int64_t>(j * group),
                           static_cast<int64_t>(group), probs_scratch_[worker].data(),
                           positions->data(), static_cast<int64_t>(positions->size())});
    }
  });
}

// Prefill without a trace: blocks of consecutive positions per KV head, so that each
// key and value row is loaded once for the whole block (ops/attention.h).
void Model::AttentionBlocks(const Node& n, const Batch& b) {
  const ModelConfig& c = dir_.config;
  const size_t kv_heads = c.num_kv_heads, group = c.num_heads / c.num_kv_heads;
  const size_t hd = c.head_dim, q_dim = c.q_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t T = static_cast<size_t>(b.T), per_block = BlockPositions();
  const size_t blocks = (T + per_block - 1) / per_block;
  pool_.Run(blocks * kv_heads, [&](size_t task, int worker) {
    const size_t t0 = task / kv_heads * per_block, j = task % kv_heads;
    const size_t positions = std::min(per_block, T - t0);
    const int64_t first = b.pos0 + static_cast<int64_t>(t0);
    SlotSpan spans[3];
    KeyColumns keys[kBlockQueries];
    const size_t num_spans =
        kv_.BlockSpans(first, first + static_cast<int64_t>(positions) - 1, spans, keys);
    const size_t offset = t0 * q_dim + j * group * hd;
    AttentionBlock({buf(n.in) + offset, q_dim, positions, group, kv_.K(n.layer, j),
                    kv_.V(n.layer, j), hd, kv_.dtype(), spans, num_spans, keys, hd, scale,
                    probs_scratch_[worker].data(), buf(n.out) + offset, q_dim});
  });
}

size_t Model::BlockPositions() const {
  const size_t group = dir_.config.num_heads / dir_.config.num_kv_heads;
  return std::max<size_t>(1, kBlockTargetQueries / group);
}

OpCost Model::NodeCost(const Node& n, const Batch& b) const {
  const ModelConfig& c = dir_.config;
  const double T = static_cast<double>(b.T);
  switch (n.kind) {
    case OpKind::kMatMul:
    case OpKind::kLogits: {
      const double M = n.kind == OpKind::kLogits && b.logits != Logits::kAll ? 1 : T;
      const double N = n.linear->N(), K = n.linear->K();
      return {2 * M * N * K, static_cast<double>(n.linear->weight_bytes()) + 4 * M * (N + K)};
    }
    case OpKind::kAttention: {
      // Causal: the query at position p attends min(p + 1, window) keys.
      double attended = 0;
      for (int64_t p = b.pos0; p < b.pos0 + b.T; ++p)
        attended += static_cast<double>(std::min<int64_t>(p + 1, kv_.window()));
      const double keys = std::min<double>(static_cast<double>(b.pos0) + T, kv_.window());
      const double hd = c.head_dim;
      return {4 * c.num_heads * attended * hd,
              2 * keys * c.kv_dim() * DTypeSize(kv_.dtype()) + 8 * T * c.q_dim()};
    }
    case OpKind::kRmsNorm:
    case OpKind::kHeadNorm:
      return {4 * T * graph_.BufWidth(n.in), 8 * T * graph_.BufWidth(n.in)};
    case OpKind::kSiluMul:
      return {6 * T * n.cols, 12 * T * n.cols};
    case OpKind::kResidual:
      return {T * n.cols, 12 * T * n.cols};
    case OpKind::kRope:
      return {6 * T * (c.q_dim() + c.kv_dim()) / 2.0, 8 * T * (c.q_dim() + c.kv_dim())};
    case OpKind::kKvStore:
      return {0, T * c.kv_dim() * (8 + 2 * DTypeSize(kv_.dtype()))};
    case OpKind::kEmbed:
      return {0, T * c.hidden_size * (4 + DTypeSize(graph_.embeddings().dtype))};
  }
  return {};
}

}  // namespace oko
