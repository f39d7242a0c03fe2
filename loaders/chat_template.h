// A model's own chat template (the Jinja `chat_template` of tokenizer_config.json),
// rendered as Hugging Face transformers renders it: jinja2 with trim_blocks and
// lstrip_blocks, tojson = json.dumps(ensure_ascii=False), raise_exception and
// strftime_now, the special tokens preset as variables. Byte-exact against
// ../shared/golden/chat_template.
//
// The Jinja subset (loaders/jinja_*.cc): if/elif/else, for (tuple targets, `if` filter,
// else, loop.*, break/continue), set (names, tuples, namespace attributes, blocks),
// macro, generation; the full expression grammar of jinja2 3.1; the filters, tests,
// str and dict methods in jinja_builtins.cc. Not supported, each a clear error: raw,
// call, filter, with, include/extends/block, recursive loops, str % formatting.
// Integers are 64-bit (a JSON integer beyond that arrives as a float).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "loaders/jinja_eval.h"

namespace oko {

// The text of a model folder's chat template, as ChatTemplate::LoadFromDir finds it, and
// its tokenizer_config.json (an empty object when the folder has none).
struct ChatTemplateSource {
  std::string source;
  std::string origin;  // the file (and key) it came from, for messages
  nlohmann::ordered_json tokenizer_config = nlohmann::ordered_json::object();
};
Result<ChatTemplateSource> ReadChatTemplateSource(const std::string& model_dir);

class ChatTemplate {
 public:
  using Limits = jinja::RenderLimits;

  // Parses `source`; errors read "<origin>:<line>:<column>: <what>".
  static Result<ChatTemplate> Parse(std::string_view source, const std::string& origin_for_errors);
  // Reads DIR/chat_template.jinja if present (it takes precedence, as in transformers),
  // else tokenizer_config.json's `chat_template` (a string, or a list of {name, template}
  // from which "default" is taken), and presets bos/eos/pad/unk_token and
  // additional_special_tokens from tokenizer_config.json. A folder without a template is
  // an error that says so.
  // A path ending in .gguf: the file's tokenizer.chat_template, with its special tokens.
  static Result<ChatTemplate> LoadFromDir(const std::string& model_dir);

  // Renders with `variables`, a JSON object: {"messages": [...], "tools": [...],
  // "add_generation_prompt": bool, "enable_thinking": bool, ...}. Keys absent take
  // apply_chat_template's defaults (tools and documents None, add_generation_prompt
  // false); variables override the preset special tokens. Pass ordered_json so that
  // objects keep their key order through tojson, as Python dicts do (a plain
  // nlohmann::json converts implicitly, with its keys sorted).
  Result<std::string> Render(const nlohmann::ordered_json& variables, const Limits& limits = {}) const;

  const std::string& origin() const { return origin_; }

 private:
  struct Parsed;
  static Result<ChatTemplate> LoadFromGguf(const std::string& path);
  ChatTemplate(std::shared_ptr<const Parsed> parsed, std::string origin)
      : parsed_(std::move(parsed)), origin_(std::move(origin)) {}

  std::shared_ptr<const Parsed> parsed_;
  std::string origin_;
  nlohmann::ordered_json preset_ = nlohmann::ordered_json::object();
};

}  // namespace oko
