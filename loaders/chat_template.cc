#include "loaders/chat_template.h"

#include <algorithm>
#include <filesystem>

#include "common/mapped_file.h"
#include "loaders/gguf_tokenizer.h"
#include "loaders/jinja_parser.h"
#include "loaders/json_util.h"
#include "loaders/utf8.h"

namespace oko {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

struct ChatTemplate::Parsed {
  jinja::Body body;
};

namespace {

Status ToStatus(const jinja::TemplateError& e, const std::string& origin) {
  if (e.pos().line == 0) return Errorf("{}: {}", origin, e.message());
  return Errorf("{}:{}:{}: {}", origin, e.pos().line, e.pos().column, e.message());
}

// The template text of tokenizer_config.json's `chat_template`.
Result<std::string> TemplateFromConfig(const ordered_json& config, const std::string& path) {
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null())
    return Errorf("{}: no 'chat_template': the model has no chat template (use raw completion)", path);
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array())
    return Errorf("{}: 'chat_template' must be a string or a list of {{name, template}}", path);
  for (const auto& entry : *it) {
    if (!entry.is_object()) continue;
    const auto name = entry.find("name");
    const auto text = entry.find("template");
    if (name != entry.end() && *name == "default" && text != entry.end() && text->is_string())
      return text->get<std::string>();
  }
  return Errorf("{}: 'chat_template' is a list without a template named \"default\"", path);
}

// bos_token etc. are strings or AddedToken objects {"content": ...}; null means absent.
void PresetSpecialTokens(const ordered_json& config, ordered_json* preset) {
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    const auto it = config.find(key);
    if (it == config.end()) continue;
    if (it->is_string()) (*preset)[key] = *it;
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
      (*preset)[key] = (*it)["content"];
  }
  const auto extra = config.find("additional_special_tokens");
  if (extra != config.end() && extra->is_array()) {
    ordered_json tokens = ordered_json::array();
    for (const auto& t : *extra) {
      if (t.is_string()) tokens.push_back(t);
      if (t.is_object() && t.contains("content")) tokens.push_back(t["content"]);
    }
    (*preset)["additional_special_tokens"] = tokens;
  }
}

}  // namespace

Result<ChatTemplate> ChatTemplate::LoadFromGguf(const std::string& path) {
  OKO_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open(path));
  OKO_ASSIGN_OR_RETURN(TokenizerJsonTexts texts, GgufTokenizerJson(*gguf));
  OKO_ASSIGN_OR_RETURN(ordered_json config, ParseJsonText<ordered_json>(texts.config_json, path));
  if (!config.contains("chat_template"))
    return Errorf("{}: no 'tokenizer.chat_template': the model has no chat template (use raw completion)", path);
  const std::string source = config["chat_template"];
  if (source.size() > kMaxTemplateBytes)
    return Errorf("{}: 'tokenizer.chat_template' is {} bytes, over the limit of {} bytes", path, source.size(),
                  kMaxTemplateBytes);
  OKO_ASSIGN_OR_RETURN(ChatTemplate t, Parse(source, path + " tokenizer.chat_template"));
  PresetSpecialTokens(config, &t.preset_);
  return t;
}

Result<ChatTemplate> ChatTemplate::Parse(std::string_view source, const std::string& origin_for_errors) {
  // transformers reads templates as UTF-8 text (json.load, open(encoding="utf-8")) and
  // fails on anything else; so do we, where the byte is.
  if (const size_t bad = utf8::FirstInvalidByte(source); bad != std::string_view::npos) {
    const std::string_view before = source.substr(0, bad);
    const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
    const size_t line_start = before.rfind('\n') == std::string_view::npos ? 0 : before.rfind('\n') + 1;
    return Errorf("{}:{}:{}: invalid UTF-8 (byte 0x{:02X} at offset {}); a chat template must be UTF-8 text",
                  origin_for_errors, line, bad - line_start + 1, static_cast<unsigned char>(source[bad]), bad);
  }
  auto parsed = std::make_shared<Parsed>();
  try {
    parsed->body = jinja::ParseTemplate(source);
  } catch (const jinja::TemplateError& e) {
    return ToStatus(e, origin_for_errors);
  } catch (const std::exception& e) {
    return Errorf("{}: {}", origin_for_errors, e.what());
  }
  return ChatTemplate(std::move(parsed), origin_for_errors);
}

Result<ChatTemplateSource> ReadChatTemplateSource(const std::string& model_dir) {
  const std::string config_path = (fs::path(model_dir) / "tokenizer_config.json").string();
  const std::string jinja_path = (fs::path(model_dir) / "chat_template.jinja").string();
  ChatTemplateSource t;
  if (fs::exists(config_path)) {
    OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path, kMaxTokenizerConfigBytes));
    OKO_ASSIGN_OR_RETURN(t.tokenizer_config, ParseJsonText<ordered_json>(text, config_path));
    if (!t.tokenizer_config.is_object()) return Errorf("{}: not a JSON object", config_path);
  }
  if (fs::exists(jinja_path)) {
    OKO_ASSIGN_OR_RETURN(t.source, ReadFileToString(jinja_path, kMaxTemplateBytes));
    t.origin = jinja_path;
  } else if (fs::exists(config_path)) {
    OKO_ASSIGN_OR_RETURN(t.source, TemplateFromConfig(t.tokenizer_config, config_path));
    if (t.source.size() > kMaxTemplateBytes)
      return Errorf("{}: 'chat_template' is {} bytes, over the limit of {} bytes", config_path,
                    t.source.size(), kMaxTemplateBytes);
    t.origin = config_path + " chat_template";
  } else {
    return Errorf("{}: no tokenizer_config.json or chat_template.jinja: the model has no chat template "
                  "(use raw completion)", model_dir);
  }
  // Python reads a template as UTF-8 text and fails on anything else; so does oko.
  if (const size_t bad = utf8::FirstInvalidByte(t.source); bad != std::string::npos)
    return Errorf("{}: not valid UTF-8: byte 0x{:02X} at offset {}", t.origin,
                  static_cast<unsigned char>(t.source[bad]), bad);
  return t;
}

Result<ChatTemplate> ChatTemplate::LoadFromDir(const std::string& model_dir) {
  if (IsGgufPath(model_dir)) return LoadFromGguf(model_dir);
  OKO_ASSIGN_OR_RETURN(ChatTemplateSource source, ReadChatTemplateSource(model_dir));
  OKO_ASSIGN_OR_RETURN(ChatTemplate t, Parse(source.source, source.origin));
  PresetSpecialTokens(source.tokenizer_config, &t.preset_);
  return t;
}

Result<std::string> ChatTemplate::Render(const ordered_json& variables, const Limits& limits) const {
  if (!variables.is_object()) return Errorf("{}: template variables must be a JSON object", origin_);
  ordered_json context = preset_;
  context["tools"] = nullptr;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = false;
  for (const auto& [key, value] : variables.items()) context[key] = value;
  try {
    const jinja::Value root = jinja::FromJson(context);
    return jinja::RenderTemplate(parsed_->body, root.as_dict(), limits);
  } catch (const jinja::TemplateError& e) {
    return ToStatus(e, origin_);
  } catch (const std::exception& e) {
    return Status::Error(origin_ + ": " + e.what(), ExitCode::kRuntime);
  }
}

}  // namespace oko
