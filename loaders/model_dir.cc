#include "loaders/model_dir.h"

#include <filesystem>
#include <nlohmann/json.hpp>

namespace oko {

namespace fs = std::filesystem;

int64_t ModelDir::ParameterCount() const {
  int64_t n = 0;
  for (const auto& [name, t] : tensors.tensors()) n += t.numel();
  return n;
}

bool HasChatTemplate(const std::string& dir) {
  // transformers reads chat_template.jinja first, then tokenizer_config.json.
  if (fs::exists(fs::path(dir) / "chat_template.jinja")) return true;
  auto text = ReadFileToString((fs::path(dir) / "tokenizer_config.json").string(),
                               kMaxTokenizerConfigBytes);
  if (!text.ok()) return false;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  auto it = j.find("chat_template");
  return it != j.end() && (it->is_string() || it->is_array());
}

Result<ModelDir> OpenModelDir(const std::string& dir) {
  ModelDir m;
  m.dir = dir;
  OKO_ASSIGN_OR_RETURN(m.config, LoadModelConfig(dir));
  OKO_ASSIGN_OR_RETURN(m.tensors, TensorStore::OpenDir(dir));
  OKO_RETURN_IF_ERROR(CheckTensors(m.config, m.tensors).WithContext(dir));
  m.has_tokenizer = PathExists((fs::path(dir) / "tokenizer.json").string());
  m.has_chat_template = HasChatTemplate(dir);
  return m;
}

}  // namespace oko
