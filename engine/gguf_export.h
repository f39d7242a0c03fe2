// oko quantize: a model folder or GGUF file written as a GGUF file in one type (or
// llama.cpp's q4_k_m / q5_k_m mix), as llama.cpp's converter + llama-quantize would write
// it, so that llama.cpp and other GGUF readers load it.
//  - The matrices get the types of engine/quant_plan.h (the same plan and quantizer as
//    --quant, so oko on the file computes exactly what --quant computes on the folder);
//    with f32 / f16 / bf16 every matrix is stored in that type. 1-D tensors are F32
//    (llama.cpp's convention; widening is exact).
//  - Tensor names and the llama architecture's q/k row order are llama.cpp's
//    (loaders/gguf_model.h); metadata: general.*, `<arch>.*`, the tokenizer and chat
//    template (loaders/gguf_tokenizer.h), general.file_type.
//  - From a GGUF file: its metadata is kept (but general.file_type) and its matrices are
//    dequantized and quantized again (lossy unless the source is F32/F16/BF16).
// One tensor is quantized at a time, over a pool, then written: memory holds the mapped
// source and one converted tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/linear.h"
#include "loaders/hf_config.h"

namespace oko {

struct GgufExportOptions {
  std::string model;  // a model folder or a .gguf file
  std::string type;   // as --quant takes it, or f32, f16, bf16
  std::string out;    // the GGUF file to write (atomically)
  int threads = 0;    // 0: every core
  std::function<void(size_t done, size_t total)> on_progress;  // after each tensor
};

struct GgufExportSummary {
  size_t tensors = 0;
  uint64_t bytes = 0;                        // of the file
  std::map<std::string, size_t> type_counts;  // "Q4_K" -> tensors
  std::vector<std::string> fallbacks;        // FallbackNote lines (quant_plan.h)
  bool requantized = false;                  // a source matrix was already block-quantized
  bool without_tokenizer = false;            // none in the source: llama.cpp will not load the file
};

// An unknown type is a usage error (exit 1); what cannot be written (an unsupported
// architecture, tokenizer or RoPE scaling) is exit 2, naming it; a failed write exit 3.
Result<GgufExportSummary> ExportGguf(const GgufExportOptions& options);

// A model that exists as its config and a maker of each tensor's values (oko make-model
// --quant): written as ExportGguf writes a folder, each tensor made, converted and written
// in turn, so memory holds one tensor at a time and a model whose bf16 weights would not
// fit can be written quantized.
struct GeneratedModel {
  ModelConfig config;
  std::string name;           // general.name
  std::string tokenizer_dir;  // tokenizer.json and tokenizer_config.json, or "" for none
  // A tensor of ExpectedTensors(config) (the optional ones are left out) in F32/BF16/F16,
  // [rows, cols] for a matrix, [1, n] for a vector.
  std::function<Result<OwnedWeight>(const ExpectedTensor&)> make;
};
// options.model is not used.
Result<GgufExportSummary> ExportGeneratedGguf(const GeneratedModel& model, const GgufExportOptions& options);

// Whether `type` names a type ExportGguf writes (any case); else a usage error (exit 1)
// listing them.
Status CheckGgufExportType(const std::string& type);

}  // namespace oko
