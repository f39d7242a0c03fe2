#include "engine/graph.h"

#include <cstring>

#include "common/check.h"
#include "ops/elementwise.h"

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

Linear* LayerGraph::AddLinear(const TensorStore& t, const std::string& weight,
                              const std::string& bias, ComputeMode mode) {
  const TensorView* w = t.Find(weight);
  OKO_CHECK(w != nullptr, "tensor {} missing (CheckTensors should have caught it)", weight);
  linears_.push_back(std::make_unique<Linear>(w, bias.empty() ? nullptr : t.Find(bias), mode));
  return linears_.back().get();
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

LayerGraph LayerGraph::Build(const ModelConfig& c, const TensorStore& t, ComputeMode mode) {
  LayerGraph g;
  g.embed_ = t.Find("model.embed_tokens.weight");
  const size_t H = c.hidden_size, I = c.intermediate_size;
  g.widths_[int(Buf::kX)] = g.widths_[int(Buf::kXn)] = g.widths_[int(Buf::kProj)] = H;
  g.widths_[int(Buf::kQ)] = g.widths_[int(Buf::kAttn)] = c.q_dim();
  g.widths_[int(Buf::kK)] = g.widths_[int(Buf::kV)] = c.kv_dim();
  g.widths_[int(Buf::kGate)] = g.widths_[int(Buf::kUp)] = I;
  g.widths_[int(Buf::kLogits)] = c.vocab_size;

  g.nodes_.push_back({"embed", OpKind::kEmbed, -1, Buf::kNone, Buf::kNone, Buf::kX});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("L{}.", l);
    auto tensor = [&](const char* suffix) { return LayerTensor(l, suffix); };
    auto linear = [&](const char* w, const char* b, bool has_bias) {
      return g.AddLinear(t, tensor(w), has_bias ? tensor(b) : "", mode);
    };
    auto add = [&](Node n) {
      n.layer = l;
      g.nodes_.push_back(std::move(n));
    };
    // x = x + o_proj(attention(rope(norm_qk(q, k)), v)) over rmsnorm(x)
    add({p + "attn_norm", OpKind::kRmsNorm, l, Buf::kX, Buf::kNone, Buf::kXn, nullptr,
         g.AddNorm(t, tensor("input_layernorm.weight")), int64_t(H)});
    add({p + "attn.q_proj", OpKind::kMatMul, l, Buf::kXn, Buf::kNone, Buf::kQ,
         linear("self_attn.q_proj.weight", "self_attn.q_proj.bias", c.qkv_bias)});
    add({p + "attn.k_proj", OpKind::kMatMul, l, Buf::kXn, Buf::kNone, Buf::kK,
         linear("self_attn.k_proj.weight", "self_attn.k_proj.bias", c.qkv_bias)});
    add({p + "attn.v_proj", OpKind::kMatMul, l, Buf::kXn, Buf::kNone, Buf::kV,
         linear("self_attn.v_proj.weight", "self_attn.v_proj.bias", c.qkv_bias)});
    if (c.qk_norm) {
      add({p + "attn.q_norm", OpKind::kHeadNorm, l, Buf::kQ, Buf::kNone, Buf::kQ, nullptr,
           g.AddNorm(t, tensor("self_attn.q_norm.weight")), c.head_dim});
      add({p + "attn.k_norm", OpKind::kHeadNorm, l, Buf::kK, Buf::kNone, Buf::kK, nullptr,
           g.AddNorm(t, tensor("self_attn.k_norm.weight")), c.head_dim});
    }
    add({p + "attn.rope", OpKind::kRope, l, Buf::kQ, Buf::kK, Buf::kNone});
    add({p + "attn.kv_store", OpKind::kKvStore, l, Buf::kK, Buf::kV, Buf::kNone});
    add({p + "attn.softmax", OpKind::kAttention, l, Buf::kQ, Buf::kNone, Buf::kAttn});
    add({p + "attn.o_proj", OpKind::kMatMul, l, Buf::kAttn, Buf::kNone, Buf::kProj,
         linear("self_attn.o_proj.weight", "self_attn.o_proj.bias", c.o_bias)});
    add({p + "attn.residual", OpKind::kResidual, l, Buf::kProj, Buf::kNone, Buf::kX, nullptr,
         nullptr, int64_t(H)});
    // x = x + down(silu(gate(h)) * up(h)), h = rmsnorm(x)
    add({p + "mlp_norm", OpKind::kRmsNorm, l, Buf::kX, Buf::kNone, Buf::kXn, nullptr,
         g.AddNorm(t, tensor("post_attention_layernorm.weight")), int64_t(H)});
    add({p + "mlp.gate_proj", OpKind::kMatMul, l, Buf::kXn, Buf::kNone, Buf::kGate,
         linear("mlp.gate_proj.weight", "", false)});
    add({p + "mlp.up_proj", OpKind::kMatMul, l, Buf::kXn, Buf::kNone, Buf::kUp,
         linear("mlp.up_proj.weight", "", false)});
    add({p + "mlp.silu_mul", OpKind::kSiluMul, l, Buf::kGate, Buf::kUp, Buf::kGate, nullptr,
         nullptr, int64_t(I)});
    add({p + "mlp.down_proj", OpKind::kMatMul, l, Buf::kGate, Buf::kNone, Buf::kProj,
         linear("mlp.down_proj.weight", "", false)});
    add({p + "mlp.residual", OpKind::kResidual, l, Buf::kProj, Buf::kNone, Buf::kX, nullptr,
         nullptr, int64_t(H)});
    g.layer_end_.push_back(g.nodes_.size() - 1);
  }
  g.nodes_.push_back({"final_norm", OpKind::kRmsNorm, -1, Buf::kX, Buf::kNone, Buf::kXn, nullptr,
                      g.AddNorm(t, "model.norm.weight"), int64_t(H)});
  const char* lm_head = t.Find("lm_head.weight") != nullptr && !c.tie_word_embeddings
                            ? "lm_head.weight"
                            : "model.embed_tokens.weight";
  g.nodes_.push_back({"lm_head", OpKind::kLogits, -1, Buf::kXn, Buf::kNone, Buf::kLogits,
                      g.AddLinear(t, lm_head, "", mode)});
  return g;
}

}  // namespace oko
