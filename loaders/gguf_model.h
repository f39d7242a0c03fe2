// A GGUF file read as a model: the ModelConfig from its `<arch>.*` metadata and its
// tensors under their Hugging Face names (llama.cpp's converter renames them:
// token_embd.weight = model.embed_tokens.weight, blk.N.attn_q.weight =
// model.layers.N.self_attn.q_proj.weight, output.weight = lm_head.weight, ...).
// The weights stay as the file holds them: the llama architecture's q/k rows in
// llama.cpp's order (see LlamaQkRowPermuted), every ggml type; the engine maps them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "loaders/gguf.h"
#include "loaders/gguf_writer.h"
#include "loaders/hf_config.h"

namespace oko {

// The Hugging Face name of a GGUF tensor of qwen3 / qwen2 / llama; nullopt for others.
std::optional<std::string> HfTensorName(std::string_view gguf_name);

// The other way: the GGUF name of a Hugging Face tensor name; nullopt for others.
std::optional<std::string> GgufTensorName(std::string_view hf_name);

// general.architecture and the `<arch>.*` keys of a config, as llama.cpp's converter
// writes them (GgufModelConfig reads them back to `c`). RoPE scaling "linear" becomes
// rope.scaling.*; llama3 is the tensor rope_freqs.weight (Llama3RopeFreqFactors).
Result<GgufMetadata> GgufArchMetadata(const ModelConfig& c);

// Llama 3.1+ RoPE scaling as GGUF holds it: the tensor rope_freqs.weight, F32
// [head_dim / 2], inv_freq[i] divided by factor i (1 for short wavelengths, `factor` for
// long ones, interpolated between). GgufModelConfig reads it into
// rope_scaling.freq_factors (type "rope_freqs").
inline constexpr char kRopeFreqsTensor[] = "rope_freqs.weight";
// The factors of a "llama3" rope_scaling, as llama.cpp's converter computes them.
std::vector<float> Llama3RopeFreqFactors(const ModelConfig& c);

// general.architecture (qwen3, qwen2, llama) and the `<arch>.*` keys (and rope_freqs.weight)
// as config.json would hold them, checked by ParseModelConfig; tied embeddings when there is no output.weight;
// bos / eos from tokenizer.ggml.* (eos: eos_token_id, eot_token_id and the control tokens
// spelled <|endoftext|>, <|im_end|>, <|eot_id|>, <|eom_id|>, <|end_of_text|>, as llama.cpp
// stops at them). Errors name the file and the GGUF key.
Result<ModelConfig> GgufModelConfig(const GgufFile& f);
// GgufFile::Open + GgufModelConfig.
Result<ModelConfig> LoadGgufModelConfig(const std::string& path);

// Every tensor of the file by Hugging Face name, checked against ExpectedTensors(c):
// shapes, 1-D tensors in F32/F16/BF16, data aligned for the kernels (4 bytes for F32, 2
// for the others); lists every missing, misshapen and unknown tensor in one message.
Result<std::map<std::string, const GgufTensor*>> GgufModelTensors(const ModelConfig& c, const GgufFile& f);

// Whether llama.cpp's converter permuted the rows of this tensor (Hugging Face name) for
// its interleaved RoPE: q_proj / k_proj of the llama architecture. Within each head of
// head_dim rows, file row 2i + j holds Hugging Face row j * head_dim/2 + i. (Llama files
// with q/k biases, which would be permuted too, are refused: no such model is known.)
bool LlamaQkRowPermuted(const ModelConfig& c, const std::string& hf_name);
// Row r of such a matrix in Hugging Face order is file row LlamaQkFileRow(r); file row f
// holds Hugging Face row LlamaQkHfRow(f).
inline size_t LlamaQkFileRow(size_t r, size_t head_dim) {
  const size_t half = head_dim / 2, in_head = r % head_dim;
  return r - in_head + 2 * (in_head % half) + in_head / half;
}
inline size_t LlamaQkHfRow(size_t f, size_t head_dim) {
  const size_t half = head_dim / 2, in_head = f % head_dim;
  return f - in_head + (in_head % 2) * half + in_head / 2;
}

}  // namespace oko
