// PEFT LoRA adapters as PEFT saves them: a folder with adapter_config.json and
// adapter_model.safetensors, read without conversion and checked against the model before
// anything runs.
//
// Meaning (PEFT's unmerged forward): each adapted linear layer computes
//   y = x W^T (+ b) + SCALE * s * (x A^T) B^T,  A = lora_A [r, in], B = lora_B [out, r],
// with s = lora_alpha / r, or lora_alpha / sqrt(r) under use_rslora. rank_pattern and
// alpha_pattern override r and alpha per module: key K matches module M when K equals M
// or a dot-separated tail of it ("layers.2.mlp.down_proj" matches
// "model.layers.2.mlp.down_proj"); keys are tried in sorted order, the first match wins.
// SCALE is the user's (--lora DIR:SCALE); it is not part of the adapter.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "loaders/hf_config.h"
#include "loaders/safetensors.h"

namespace oko {

// The fields of adapter_config.json that decide what the tensors mean.
struct LoraConfig {
  int64_t r = 0;
  double alpha = 0;
  bool use_rslora = false;
  std::map<std::string, int64_t> rank_pattern;
  std::map<std::string, double> alpha_pattern;
  std::optional<std::vector<int64_t>> layers_to_transform;

  int64_t RankOf(const std::string& module) const;
  double AlphaOf(const std::string& module) const;
  // s of the module: alpha / r, or alpha / sqrt(r) under use_rslora.
  double ScalingOf(const std::string& module) const;
};

// Parses the text of adapter_config.json; `path` names it in messages. Settings oko does
// not implement (DoRA, modules_to_save, a bias, fan_in_fan_out, another peft_type) are
// refused, naming the field.
Result<LoraConfig> ParseLoraConfig(std::string_view text, const std::string& path);

// One adapted linear layer, its A and B widened to f32.
struct LoraModule {
  std::string name;  // as in the model: "model.layers.3.self_attn.q_proj", "lm_head"
  int64_t rank = 0, in = 0, out = 0;
  double scaling = 0;    // s
  std::vector<float> a;  // [rank, in]
  std::vector<float> b;  // [out, rank]
};

struct LoraAdapter {
  std::string dir;
  std::string name;  // the folder's name
  std::vector<LoraModule> modules;
};

// Reads DIR/adapter_config.json and DIR/adapter_model.safetensors and checks every tensor
// against `model`: names PEFT gives the seven projections of a decoder layer and lm_head,
// A and B both present, shapes (r from the config, in/out from the model), layers.
Result<LoraAdapter> LoadLoraAdapter(const std::string& dir, const ModelConfig& model);

// The checks and widening of LoadLoraAdapter on tensors already read (`path` names their
// file in messages; the fuzzer's entry).
Result<std::vector<LoraModule>> ReadLoraModules(const LoraConfig& config,
                                                const std::vector<TensorView>& tensors,
                                                const ModelConfig& model, const std::string& path);

// "DIR[:SCALE]": splits at the last colon when what follows is a number.
struct LoraSpec {
  std::string dir;
  double scale = 1.0;
};
Result<LoraSpec> ParseLoraSpec(std::string_view arg);

}  // namespace oko
