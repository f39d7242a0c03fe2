// LoRA adapters on a model (loaders/lora_adapter.h reads them): attached unmerged to the
// Linears they adapt, so each context can switch them on, off or rescale them
// (Context::set_lora_scale), or merged into f32 copies of the weights at load.
#pragma once

#include <string>
#include <vector>

#include "engine/graph.h"
#include "loaders/lora_adapter.h"
#include "loaders/model_dir.h"

namespace oko {

// An adapter as the model carries it: what the user named and the scale asked for.
struct LoraInfo {
  std::string name;  // the folder's name (chat's /lora NAME)
  std::string dir;
  float scale = 1.0f;  // SCALE of --lora DIR:SCALE: a context's starting scale
  size_t modules = 0;  // adapted linear layers
};

// Reads every adapter of `specs` and checks it against the model (at most
// kMaxLoraAdapters).
Result<std::vector<LoraAdapter>> LoadLoraAdapters(const std::vector<LoraSpec>& specs,
                                                  const ModelConfig& config);

// Adds adapter i's terms to the Linears of `graph`.
void AttachLora(const std::vector<LoraAdapter>& adapters, LayerGraph& graph);

// W + sum over adapters of SCALE * s * B A, in f32, for every adapted weight (by Hugging
// Face tensor name; lm_head as "lm_head.weight" also on a tied model).
QuantizedWeights MergeLora(const std::vector<LoraAdapter>& adapters,
                           const std::vector<LoraSpec>& specs, const ModelDir& model,
                           ThreadPool& pool);

}  // namespace oko
