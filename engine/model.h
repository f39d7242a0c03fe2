// Model: the weights of a loaded Hugging Face model folder and its layer graph. Immutable
// after Load: any number of contexts (engine/context.h), on any threads, share one Model;
// each context holds one sequence's KV cache, buffers and position.
#pragma once

#include <functional>
#include <span>
#include <memory>
#include <string>

#include "engine/compute_choice.h"
#include "engine/graph.h"
#include "engine/lora.h"
#include "engine/thread_pool.h"
#include "loaders/lora_adapter.h"
#include "loaders/model_dir.h"

namespace oko {

struct EngineOptions {
  int threads = 0;            // 0: every core
  int64_t ctx = 4096;         // KV capacity in positions (clamped to the model's maximum)
  int64_t window = 0;         // attended positions (0: ctx); < ctx masks a sliding window
  int64_t sink = 0;           // positions never evicted when the ring wraps
  int64_t max_batch = 256;    // prefill chunk
  DType kv_dtype = DType::kF32;
  ComputeMode compute = ComputeMode::kF32;
  // Chooses from the CPU's measured rates (engine/compute_choice.h).
  bool compute_auto = false;
  // Quantize the weights while loading: "q4_k_m", ... (engine/quant_plan.h); "" keeps
  // them as stored. Quantized weights run with 8-bit activations (llama.cpp's arithmetic)
  // unless compute is f32 (exact on the dequantized weights).
  std::string quant;
  // Called after each quantized tensor with (done, total), from the loading thread.
  std::function<void(size_t, size_t)> on_quant_progress;
  // PEFT LoRA adapters (--lora DIR:SCALE), applied unmerged unless lora_merge.
  std::vector<LoraSpec> lora;
  bool lora_merge = false;
};

class Model {
 public:
  // Uses options.compute / compute_auto; the other fields belong to contexts.
  static Result<std::shared_ptr<const Model>> Load(const std::string& dir,
                                                   const EngineOptions& options);

  const ModelConfig& config() const { return dir_.config; }
  const ModelDir& model_dir() const { return dir_; }
  ComputeMode compute() const { return compute_.mode; }
  // Why: "asked for", or what `auto` saw ("bf16 dot 2.0x f32 FMA", "f16 weights", ...).
  const std::string& compute_reason() const { return compute_.why; }
  const LayerGraph& graph() const { return graph_; }
  // --quant: the plan ("" when the weights run as stored) and, per tensor that fell back
  // to another type for its row length, what happened.
  const std::string& quant() const { return quant_; }
  const std::vector<std::string>& quant_fallbacks() const { return quant_fallbacks_; }
  // The adapters of --lora, in order: unmerged (each context scales them, the scale here
  // is its starting value), or merged into the weights when lora_merged().
  const std::vector<LoraInfo>& loras() const { return loras_; }
  bool lora_merged() const { return lora_merged_; }
  // The largest rank of an unmerged adapter term (0: none): the scratch ForwardPass needs.
  size_t max_lora_rank() const { return max_lora_rank_; }

  // The logits [T, vocab] of hidden states x [T, hidden] taken through the final norm and
  // lm_head (the logit lens: any layer's residual stream read as if it were the last),
  // with lm_head's LoRA terms at `lora_scales` (a context's).
  void LogitsOfHidden(ThreadPool& pool, const float* x, int64_t T, float* out,
                      std::span<const float> lora_scales = {}) const;

 private:
  Model(ModelDir dir, ComputeChoice compute, QuantizedWeights quantized, ComputeMode quant_mode);
  void AddLora(const std::vector<LoraAdapter>& adapters, const EngineOptions& options);

  ModelDir dir_;
  ComputeChoice compute_;
  LayerGraph graph_;
  std::string quant_;
  std::vector<std::string> quant_fallbacks_;
  std::vector<LoraInfo> loras_;
  bool lora_merged_ = false;
  size_t max_lora_rank_ = 0;
};

// Parses "f32" / "bf16".
Result<ComputeMode> ParseComputeMode(const std::string& s);
inline const char* ComputeModeName(ComputeMode m) { return m == ComputeMode::kBf16 ? "bf16" : "f32"; }

}  // namespace oko
