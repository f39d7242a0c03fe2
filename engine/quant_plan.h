// --quant: which type each weight of a model gets, and quantizing a weight at load.
//
// Types as llama.cpp's llama-quantize picks them (llama_tensor_get_type, no importance
// matrix), checked against shared/models/gguf/README.md:
//  - 1-D tensors (norms, biases) stay as they are (PlanTensor returns nullopt).
//  - The output matrix (lm_head.weight, or model.embed_tokens.weight when the embeddings
//    are tied): Q6_K, except Q8_0 for a q8_0 plan or a row that is not a multiple of 256.
//  - The mixes q4_k_m / q5_k_m: Q4_K / Q5_K, except self_attn.v_proj and mlp.down_proj of
//    the layers where use_more_bits(layer, n_layers) (layer < n/8, layer >= 7n/8, or
//    (layer - n/8) % 3 == 2): Q6_K. (llama.cpp's special cases for 70B llama, 8-expert
//    models and fused attn_qkv do not apply to the models oko runs.)
//  - Everything else 2-D (the untied embedding table too): the base type.
//  - Rows that are not a multiple of the type's block fall back as llama-quantize does:
//    Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16 when 32 does not divide the row
//    either. oko also falls back to F16 for the 32-block types (llama-quantize refuses:
//    "no tensor type fallback is defined"), so every model loads with every --quant.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/linear.h"
#include "engine/thread_pool.h"
#include "loaders/hf_config.h"
#include "loaders/safetensors.h"
#include "ops/quant_formats.h"

namespace oko {

struct QuantPlan {
  std::string spec;                     // as given, lower case: "q4_k_m"
  QuantType base = QuantType::kQ8_0;    // q4_k_m -> Q4_K
  bool mix_m = false;                   // the _M mixes
  int n_layers = 0;
  bool tied_embeddings = false;         // model.embed_tokens.weight is also the output
};

// spec: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m (any case).
// Anything else is an error naming the accepted values.
Result<QuantPlan> ParseQuantPlan(std::string_view spec, int n_layers, bool tied_embeddings);

struct TensorQuant {
  QuantType type;    // what the tensor gets
  QuantType wanted;  // before the fallback for its row length
  bool fell_back() const { return type != wanted; }
};

// The type of a tensor (Hugging Face name, shape [rows, cols]) under the plan; nullopt
// for tensors that stay as stored (not 2-D).
std::optional<TensorQuant> PlanTensor(const QuantPlan& plan, const std::string& name,
                                      const std::vector<int64_t>& shape);

// "model.layers.3.mlp.down_proj.weight: Q6_K -> Q8_0 (rows of 176 values, not a multiple
// of 256)": the line to print on load and in `oko info` for a tensor that fell back.
std::string FallbackNote(const std::string& name, const TensorQuant& q, int64_t cols);

// The weights `plan` quantizes in a model, in ExpectedTensors order: every 2-D one, the
// embedding table too (as llama.cpp's files hold it: its rows are dequantized at lookup).
struct PlannedTensor {
  std::string name;
  const TensorView* tensor;
  TensorQuant choice;
};
std::vector<PlannedTensor> PlanModel(const ModelConfig& c, const TensorStore& tensors,
                                     const QuantPlan& plan);

// Bytes of the tensor under the plan (its stored size when it stays as stored).
size_t PlannedBytes(const QuantPlan& plan, const TensorView& t);

// A 2-D F32/BF16/F16 tensor in `type`, rows quantized in parallel over the pool (nullptr:
// on the calling thread). Error (naming the tensor) for other dtypes/ranks or a row length
// the type's block does not divide.
Result<OwnedWeight> QuantizeWeight(const TensorView& t, QuantType type, ThreadPool* pool);
// The same for a weight in any format (a GGUF tensor): each row dequantized to f32, then
// quantized to `type`. `name` is for messages.
Result<OwnedWeight> ConvertWeight(const WeightView& src, QuantType type, const std::string& name,
                                  ThreadPool* pool);

struct QuantizedTensor {
  OwnedWeight weight;  // for Linear(OwnedWeight, bias, mode)
  TensorQuant choice;
};

// PlanTensor + QuantizeWeight: what the graph builder calls for each weight under --quant.
// Error for a tensor the plan leaves as stored (check PlanTensor first).
Result<QuantizedTensor> QuantizeForLoad(const TensorView& t, const std::string& name,
                                        const QuantPlan& plan, ThreadPool* pool);

}  // namespace oko
