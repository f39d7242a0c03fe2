#include "loaders/model_dir.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "loaders/gguf_model.h"

namespace oko {

namespace fs = std::filesystem;

int64_t ModelDir::ParameterCount() const {
  int64_t n = 0;
  if (gguf != nullptr) {
    for (const GgufTensor& t : gguf->tensors()) {
      int64_t numel = 1;
      for (uint64_t d : t.ne) numel *= static_cast<int64_t>(d);
      n += numel;
    }
    return n;
  }
  for (const auto& [name, t] : tensors.tensors()) n += t.numel();
  return n;
}

bool HasChatTemplate(const std::string& dir) {
  if (IsGgufPath(dir)) {
    auto f = GgufFile::Open(dir);
    return f.ok() && (*f)->Find("tokenizer.chat_template") != nullptr;
  }
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

namespace {

std::optional<DType> PlainDType(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0: return DType::kF32;
    case 1: return DType::kF16;
    case 30: return DType::kBF16;
    default: return std::nullopt;
  }
}

Result<ModelDir> OpenGgufModel(const std::string& path) {
  ModelDir m;
  m.dir = path;
  OKO_ASSIGN_OR_RETURN(std::shared_ptr<const GgufFile> f, GgufFile::Open(path));
  OKO_ASSIGN_OR_RETURN(m.config, GgufModelConfig(*f));
  OKO_ASSIGN_OR_RETURN(m.gguf_tensors, GgufModelTensors(m.config, *f));
  for (const auto& [name, t] : m.gguf_tensors) {
    if (t->ne.size() != 1) continue;
    TensorView v{name, *PlainDType(t->ggml_type), t->shape(), t->data, t->nbytes, &f->path()};
    OKO_RETURN_IF_ERROR(m.tensors.AddView(std::move(v)));
  }
  m.has_tokenizer = f->Find("tokenizer.ggml.model") != nullptr;
  m.has_chat_template = f->Find("tokenizer.chat_template") != nullptr;
  m.gguf = std::move(f);
  return m;
}

}  // namespace

Result<ModelDir> OpenModelDir(const std::string& dir) {
  if (IsGgufPath(dir)) return OpenGgufModel(dir);
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
