// config.json (+ generation_config.json) of a Hugging Face model folder -> ModelConfig.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "loaders/safetensors.h"

namespace oko {

enum class Arch { kQwen3, kQwen2, kLlama };
std::string_view ArchName(Arch a);

struct RopeScaling {
  // "" = none; "linear", "llama3" as in HF; "rope_freqs": a GGUF file's per-frequency
  // factors (freq_factors), llama.cpp's form of llama3 (factor: the largest of them).
  std::string type;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 0;
  std::vector<float> freq_factors;  // rope_freqs: inv_freq[i] is divided by freq_factors[i]
};

// Sampling defaults from generation_config.json (absent fields stay unset).
struct GenerationDefaults {
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k;
  std::vector<int64_t> eos_token_ids;
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;     // q/k/v projections carry a bias (Qwen2; attention_bias)
  bool o_bias = false;       // o_proj carries a bias (attention_bias in Llama/Qwen3)
  bool qk_norm = false;      // per-head RMSNorm of q and k (Qwen3)
  int64_t max_position_embeddings = 0;
  int64_t sliding_window = 0;  // mistral: attend only the last N positions (0: all)
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config.json and generation_config.json, merged
  std::string torch_dtype;
  GenerationDefaults generation;

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
};

// Parses `json_text` (the contents of config.json; `path` is for messages).
Result<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& path);
// Parses generation_config.json text into `config->generation` and merges eos ids.
Status ParseGenerationConfig(const std::string& json_text, const std::string& path,
                             ModelConfig* config);
// Reads DIR/config.json and, when present, DIR/generation_config.json; of a path ending
// in .gguf, the GGUF file's metadata (loaders/gguf_model.h).
Result<ModelConfig> LoadModelConfig(const std::string& dir);

// The tensors an architecture needs, with their shapes.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
  bool optional = false;  // e.g. lm_head.weight of a tied model
};
std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& c);

// The tensors of one decoder layer: one table of Hugging Face names, shared by the
// check below and the engine's graph builder.
enum class LayerWeight : uint8_t {
  kInputNorm, kPostAttentionNorm,
  kQProj, kKProj, kVProj, kOProj,
  kQBias, kKBias, kVBias, kOBias,
  kQNorm, kKNorm,
  kGateProj, kUpProj, kDownProj,
};
// "self_attn.q_proj.weight" ...
const char* LayerWeightSuffix(LayerWeight w);
// "model.layers.3.self_attn.q_proj.weight"
inline std::string LayerTensor(int64_t layer, LayerWeight w) {
  return fmt::format("model.layers.{}.{}", layer, LayerWeightSuffix(w));
}

// Checks that every required tensor exists with its shape and a float dtype; lists all
// missing, misshapen and unexpected tensors by name in one message.
Status CheckTensors(const ModelConfig& c, const TensorStore& store);

}  // namespace oko
