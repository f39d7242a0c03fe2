// The layer graph: the model as an explicit list of op nodes, built from the config.
// Each node names its op, its layer, the activation buffers it reads and writes and the
// weights it uses; the profiler times nodes and the trace hook reads their outputs.
// Adding an architecture means adding a builder here, not editing kernels.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/linear.h"
#include "loaders/hf_config.h"

namespace oko {

enum class OpKind : uint8_t {
  kEmbed,      // x = embed_tokens[ids]
  kRmsNorm,    // out = rmsnorm(in) * w          (rows of `cols`)
  kHeadNorm,   // in place per-head rmsnorm     (Qwen3 q_norm / k_norm)
  kMatMul,     // out = in W^T (+ b)
  kRope,       // in place rotary embedding of q and k
  kKvStore,    // k, v -> KV cache at the batch positions
  kAttention,  // softmax(q k^T / sqrt(d)) v over the visible cache   (trace hook)
  kSiluMul,    // out = silu(in) * in2
  kResidual,   // out += in                     (residual stream)
  kLogits,     // out = final hidden of the wanted rows W_lm^T
};
std::string_view OpKindName(OpKind k);

// Where a node sits in the model: one per op of a decoder layer, plus the nodes before and
// after the layers. Nodes are identified by (site, layer), never by formatted names.
enum class Site : uint8_t {
  kEmbed,
  kAttnNorm, kQProj, kKProj, kVProj, kQNorm, kKNorm, kRope, kKvStore, kAttention, kOProj,
  kAttnResidual,
  kMlpNorm, kGateProj, kUpProj, kSiluMul, kDownProj, kMlpResidual,
  kFinalNorm, kLmHead,
};
// "attn.q_proj", "final_norm", ... (the name table of every report).
std::string_view SiteName(Site s);

// Activation buffers, each [max_batch, width] f32, owned by the model.
enum class Buf : uint8_t { kX, kXn, kQ, kK, kV, kAttn, kProj, kGate, kUp, kLogits, kNone };
inline constexpr int kNumBufs = static_cast<int>(Buf::kNone);

struct Node {
  Site site;
  OpKind kind;
  int64_t layer = -1;  // -1: before or after the decoder layers
  Buf in = Buf::kNone, in2 = Buf::kNone, out = Buf::kNone;
  Linear* linear = nullptr;          // kMatMul, kLogits
  const float* norm_weight = nullptr;  // kRmsNorm, kHeadNorm
  int64_t cols = 0;                  // kRmsNorm / kHeadNorm row width; elementwise width
};

// "L3.attn.q_proj" inside the layers, the site's name outside them.
std::string NodeName(const Node& n);

// Weights that replace the stored ones, by Hugging Face tensor name: --quant's quantized
// copies, the matrices of a GGUF file, --lora-merge's merged matrices ("lm_head.weight"
// gives a tied model's lm_head its own matrix, the embedding table staying as stored).
using QuantizedWeights = std::map<std::string, OwnedWeight>;

// Owns the per-layer weights (as Linear views and widened norm vectors) and the nodes.
class LayerGraph {
 public:
  // `quantized` (optional): weights by tensor name that replace the stored ones (--quant)
  // or stand for them (a GGUF file's matrices, absent from `tensors`), run in
  // `quant_mode` (kBf16: 8-bit activations, kF32: exact); moved from.
  static LayerGraph Build(const ModelConfig& c, const TensorStore& tensors, ComputeMode mode,
                          QuantizedWeights* quantized = nullptr,
                          ComputeMode quant_mode = ComputeMode::kF32);

  const std::vector<Node>& nodes() const { return nodes_; }
  // Row `id` of the embedding table as f32 (dequantized when --quant quantized it, as
  // llama.cpp's files hold it).
  void EmbedRow(int32_t id, float* dst) const;
  size_t embedding_row_bytes() const { return embed_.row_bytes(); }
  // Index of the node after which decoder layer `layer` is complete (its residual add).
  size_t LayerEnd(int64_t layer) const { return layer_end_[layer]; }
  size_t BufWidth(Buf b) const { return widths_[static_cast<int>(b)]; }
  const Node& final_norm() const { return nodes_[nodes_.size() - 2]; }
  const Node& lm_head() const { return nodes_.back(); }
  // The Linear of a weight by its Hugging Face name ("model.layers.0.mlp.up_proj.weight";
  // "lm_head.weight" also on a tied model); nullptr when the model has none. Mutable only
  // while the model is being built (adapters are attached then).
  Linear* FindLinear(const std::string& weight);
  // The Hugging Face name of one of its Linears ("" for none of them).
  std::string WeightName(const Linear* linear) const;

 private:
  Linear* AddLinear(const TensorStore& t, const std::string& weight, const std::string& bias);
  void AddLayer(const ModelConfig& c, const TensorStore& t, int64_t layer);
  void SetEmbeddings(const TensorStore& t);
  const float* AddNorm(const TensorStore& t, const std::string& name);

  ComputeMode mode_ = ComputeMode::kF32, quant_mode_ = ComputeMode::kF32;
  QuantizedWeights* quantized_ = nullptr;  // while building
  std::vector<Node> nodes_;
  std::vector<size_t> layer_end_;
  std::vector<std::unique_ptr<Linear>> linears_;
  std::map<std::string, Linear*> linear_by_weight_;
  std::vector<std::unique_ptr<std::vector<float>>> norms_;
  WeightView embed_;
  std::shared_ptr<const void> embed_storage_;  // a quantized table's bytes
  size_t widths_[kNumBufs] = {};
};

}  // namespace oko
