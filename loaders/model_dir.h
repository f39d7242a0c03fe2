// A Hugging Face model folder: config, tensors (validated against the config), and which
// tokenizer files are there.
#pragma once

#include <string>

#include "common/status.h"
#include "loaders/hf_config.h"
#include "loaders/safetensors.h"

namespace oko {

struct ModelDir {
  std::string dir;
  ModelConfig config;
  TensorStore tensors;
  bool has_tokenizer = false;      // tokenizer.json
  bool has_chat_template = false;  // tokenizer_config.json with a chat_template

  // Sum of the elements of every tensor in the files (the true parameter count).
  int64_t ParameterCount() const;
};

// Loads config.json (+ generation_config.json), maps every safetensors file and checks
// each tensor the architecture needs.
Result<ModelDir> OpenModelDir(const std::string& dir);

// Whether DIR has chat_template.jinja, or a tokenizer_config.json with a chat_template
// (a string or a named list).
bool HasChatTemplate(const std::string& dir);

}  // namespace oko
