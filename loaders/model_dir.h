// A Hugging Face model folder: config, tensors (validated against the config), and which
// tokenizer files are there.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "loaders/gguf.h"
#include "loaders/hf_config.h"
#include "loaders/safetensors.h"

namespace oko {

struct ModelDir {
  std::string dir;  // the folder, or the .gguf file
  ModelConfig config;
  // The folder's safetensors; of a GGUF file, its 1-D tensors (norms, biases), which are
  // F32, F16 or BF16, under their Hugging Face names.
  TensorStore tensors;
  // A GGUF file's model: the file and every tensor by Hugging Face name (the engine maps
  // its matrices, which may be in any ggml type).
  std::shared_ptr<const GgufFile> gguf;
  std::map<std::string, const GgufTensor*> gguf_tensors;
  bool has_tokenizer = false;      // tokenizer.json (tokenizer.ggml.model in a GGUF)
  bool has_chat_template = false;  // tokenizer_config.json with a chat_template

  // Sum of the elements of every tensor in the files (the true parameter count).
  int64_t ParameterCount() const;
};

// Loads config.json (+ generation_config.json), maps every safetensors file and checks
// each tensor the architecture needs. A path ending in .gguf is opened as a GGUF file
// (loaders/gguf_model.h).
Result<ModelDir> OpenModelDir(const std::string& dir);

// Whether DIR has chat_template.jinja, or a tokenizer_config.json with a chat_template
// (a string or a named list).
bool HasChatTemplate(const std::string& dir);

}  // namespace oko
