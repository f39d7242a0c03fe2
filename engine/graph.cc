#include "engine/graph.h"

#include <cstring>
#include <optional>

#include "common/check.h"
#include "ops/elementwise.h"
#include "ops/quant_matmul.h"

namespace oko {

std::string_view OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kEmbed: return "embed";
    case OpKind::kRmsNorm: return "rms_norm";
    case OpKind::kHeadNorm: return "head_norm";
    case OpKind::kMatMul: return "matmul";
    case OpKind::kRope: return "rope";
    case OpKind::kKvStore: return "kv_store";
    case OpKind::kAttention: return "attention";
    case OpKind::kSiluMul: return "silu_mul";
    case OpKind::kResidual: return "residual";
    case OpKind::kLogits: return "lm_head";
  }
  return "?";
}

std::string_view SiteName(Site s) {
  switch (s) {
    case Site::kEmbed: return "embed";
    case Site::kAttnNorm: return "attn_norm";
    case Site::kQProj: return "attn.q_proj";
    case Site::kKProj: return "attn.k_proj";
    case Site::kVProj: return "attn.v_proj";
    case Site::kQNorm: return "attn.q_norm";
    case Site::kKNorm: return "attn.k_norm";
    case Site::kRope: return "attn.rope";
    case Site::kKvStore: return "attn.kv_store";
    case Site::kAttention: return "attn.softmax";
    case Site::kOProj: return "attn.o_proj";
    case Site::kAttnResidual: return "attn.residual";
    case Site::kMlpNorm: return "mlp_norm";
    case Site::kGateProj: return "mlp.gate_proj";
    case Site::kUpProj: return "mlp.up_proj";
    case Site::kSiluMul: return "mlp.silu_mul";
    case Site::kDownProj: return "mlp.down_proj";
    case Site::kMlpResidual: return "mlp.residual";
    case Site::kFinalNorm: return "final_norm";
    case Site::kLmHead: return "lm_head";
  }
  return "?";
}

void LayerGraph::SetEmbeddings(const TensorStore& t) {
  const std::string name = "model.embed_tokens.weight";
  if (quantized_ != nullptr) {
    if (auto q = quantized_->find(name); q != quantized_->end()) {
      embed_ = q->second.view;
      embed_storage_ = q->second.storage;
      return;
    }
  }
  const TensorView* table = t.Find(name);
  OKO_CHECK(table != nullptr, "tensor {} missing (CheckTensors should have caught it)", name);
  embed_ = {*QuantTypeFromDType(table->dtype), table->data, static_cast<size_t>(table->shape[0]),
            static_cast<size_t>(table->shape[1]), table->nbytes};
}

void LayerGraph::EmbedRow(int32_t id, float* dst) const {
  const auto n = static_cast<size_t>(id);
  if (embed_.interleave > 1) return DequantizeWeightRows(embed_, n, n + 1, dst);  // tied, interleaved
  const std::byte* row = embed_.data + n * embed_.row_bytes();
  const size_t H = embed_.cols;
  switch (embed_.type) {  // the stored dtypes through the vectorized converters
    case QuantType::kBF16: return Bf16ToF32Row(reinterpret_cast<const uint16_t*>(row), dst, H);
    case QuantType::kF16: return F16ToF32Row(reinterpret_cast<const uint16_t*>(row), dst, H);
    default: return DequantizeRow(embed_.type, row, dst, H);
  }
}

std::string NodeName(const Node& n) {
  if (n.layer < 0) return std::string(SiteName(n.site));
  return fmt::format("L{}.{}", n.layer, SiteName(n.site));
}

Linear* LayerGraph::AddLinear(const TensorStore& t, const std::string& weight,
                              const std::string& bias) {
  const TensorView* b = bias.empty() ? nullptr : t.Find(bias);
  if (quantized_ != nullptr) {
    if (auto q = quantized_->find(weight); q != quantized_->end()) {
      // Plain F32/F16/BF16 matrices (a GGUF file's, an F16 fallback, a merged LoRA) run in
      // the model's mode.
      const ComputeMode mode = IsBlockQuant(q->second.view.type) ? quant_mode_ : mode_;
      linears_.push_back(std::make_unique<Linear>(q->second, b, mode));  // shares the bytes
      return linear_by_weight_[weight] = linears_.back().get();
    }
  }
  const TensorView* w = t.Find(weight);
  OKO_CHECK(w != nullptr, "tensor {} missing (CheckTensors should have caught it)", weight);
  linears_.push_back(std::make_unique<Linear>(w, b, mode_));
  return linear_by_weight_[weight] = linears_.back().get();
}

Linear* LayerGraph::FindLinear(const std::string& weight) {
  const auto it = linear_by_weight_.find(weight);
  return it == linear_by_weight_.end() ? nullptr : it->second;
}

std::string LayerGraph::WeightName(const Linear* linear) const {
  for (const auto& [name, l] : linear_by_weight_)
    if (l == linear) return name;
  return "";
}

const float* LayerGraph::AddNorm(const TensorStore& t, const std::string& name) {
  const TensorView* w = t.Find(name);
  OKO_CHECK(w != nullptr, "tensor {} missing", name);
  auto v = std::make_unique<std::vector<float>>(w->numel());
  if (w->dtype == DType::kF32) std::memcpy(v->data(), w->data, w->nbytes);
  if (w->dtype == DType::kBF16) Bf16ToF32Row(w->as<uint16_t>(), v->data(), v->size());
  if (w->dtype == DType::kF16) F16ToF32Row(w->as<uint16_t>(), v->data(), v->size());
  norms_.push_back(std::move(v));
  return norms_.back()->data();
}

void LayerGraph::AddLayer(const ModelConfig& c, const TensorStore& t, int64_t l) {
  using W = LayerWeight;
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  auto linear = [&](W w, std::optional<W> bias = std::nullopt) {
    return AddLinear(t, LayerTensor(l, w), bias ? LayerTensor(l, *bias) : "");
  };
  auto bias_if = [](bool has, W b) { return has ? std::optional<W>(b) : std::nullopt; };
  auto norm = [&](W w) { return AddNorm(t, LayerTensor(l, w)); };
  auto add = [&](Site site, OpKind kind, Buf in, Buf in2, Buf out, Linear* lin = nullptr,
                 const float* norm_weight = nullptr, int64_t cols = 0) {
    nodes_.push_back({site, kind, l, in, in2, out, lin, norm_weight, cols});
  };
  constexpr Buf kNone = Buf::kNone;
  // x = x + o_proj(attention(rope(norm_qk(q, k)), v)) over rmsnorm(x)
  add(Site::kAttnNorm, OpKind::kRmsNorm, Buf::kX, kNone, Buf::kXn, nullptr, norm(W::kInputNorm), H);
  add(Site::kQProj, OpKind::kMatMul, Buf::kXn, kNone, Buf::kQ, linear(W::kQProj, bias_if(c.qkv_bias, W::kQBias)));
  add(Site::kKProj, OpKind::kMatMul, Buf::kXn, kNone, Buf::kK, linear(W::kKProj, bias_if(c.qkv_bias, W::kKBias)));
  add(Site::kVProj, OpKind::kMatMul, Buf::kXn, kNone, Buf::kV, linear(W::kVProj, bias_if(c.qkv_bias, W::kVBias)));
  if (c.qk_norm) {
    add(Site::kQNorm, OpKind::kHeadNorm, Buf::kQ, kNone, Buf::kQ, nullptr, norm(W::kQNorm), c.head_dim);
    add(Site::kKNorm, OpKind::kHeadNorm, Buf::kK, kNone, Buf::kK, nullptr, norm(W::kKNorm), c.head_dim);
  }
  add(Site::kRope, OpKind::kRope, Buf::kQ, Buf::kK, kNone);
  add(Site::kKvStore, OpKind::kKvStore, Buf::kK, Buf::kV, kNone);
  add(Site::kAttention, OpKind::kAttention, Buf::kQ, kNone, Buf::kAttn);
  add(Site::kOProj, OpKind::kMatMul, Buf::kAttn, kNone, Buf::kProj, linear(W::kOProj, bias_if(c.o_bias, W::kOBias)));
  add(Site::kAttnResidual, OpKind::kResidual, Buf::kProj, kNone, Buf::kX, nullptr, nullptr, H);
  // x = x + down(silu(gate(h)) * up(h)), h = rmsnorm(x)
  add(Site::kMlpNorm, OpKind::kRmsNorm, Buf::kX, kNone, Buf::kXn, nullptr, norm(W::kPostAttentionNorm), H);
  add(Site::kGateProj, OpKind::kMatMul, Buf::kXn, kNone, Buf::kGate, linear(W::kGateProj));
  add(Site::kUpProj, OpKind::kMatMul, Buf::kXn, kNone, Buf::kUp, linear(W::kUpProj));
  add(Site::kSiluMul, OpKind::kSiluMul, Buf::kGate, Buf::kUp, Buf::kGate, nullptr, nullptr, I);
  add(Site::kDownProj, OpKind::kMatMul, Buf::kGate, kNone, Buf::kProj, linear(W::kDownProj));
  add(Site::kMlpResidual, OpKind::kResidual, Buf::kProj, kNone, Buf::kX, nullptr, nullptr, H);
  layer_end_.push_back(nodes_.size() - 1);
}

LayerGraph LayerGraph::Build(const ModelConfig& c, const TensorStore& t, ComputeMode mode,
                             QuantizedWeights* quantized, ComputeMode quant_mode) {
  LayerGraph g;
  g.mode_ = mode;
  g.quant_mode_ = quant_mode;
  g.quantized_ = quantized;
  g.SetEmbeddings(t);
  const size_t H = c.hidden_size, I = c.intermediate_size;
  g.widths_[int(Buf::kX)] = g.widths_[int(Buf::kXn)] = g.widths_[int(Buf::kProj)] = H;
  g.widths_[int(Buf::kQ)] = g.widths_[int(Buf::kAttn)] = c.q_dim();
  g.widths_[int(Buf::kK)] = g.widths_[int(Buf::kV)] = c.kv_dim();
  g.widths_[int(Buf::kGate)] = g.widths_[int(Buf::kUp)] = I;
  g.widths_[int(Buf::kLogits)] = c.vocab_size;

  g.nodes_.push_back({Site::kEmbed, OpKind::kEmbed, -1, Buf::kNone, Buf::kNone, Buf::kX});
  for (int64_t l = 0; l < c.num_layers; ++l) g.AddLayer(c, t, l);
  g.nodes_.push_back({Site::kFinalNorm, OpKind::kRmsNorm, -1, Buf::kX, Buf::kNone, Buf::kXn, nullptr,
                      g.AddNorm(t, "model.norm.weight"), int64_t(H)});
  const bool own_lm_head = (t.Find("lm_head.weight") != nullptr && !c.tie_word_embeddings) ||
                           (quantized != nullptr && quantized->contains("lm_head.weight"));
  Linear* lm_head = g.AddLinear(t, own_lm_head ? "lm_head.weight" : "model.embed_tokens.weight", "");
  g.linear_by_weight_.erase("model.embed_tokens.weight");  // the table itself is no Linear
  g.linear_by_weight_["lm_head.weight"] = lm_head;
  g.nodes_.push_back({Site::kLmHead, OpKind::kLogits, -1, Buf::kXn, Buf::kNone, Buf::kLogits, lm_head});
  g.quantized_ = nullptr;
  return g;
}

}  // namespace oko
