// Reading the component sections of tokenizer.json (internal to loaders/tokenizer*):
// typed field access whose messages name the section path and the field, the
// {"String"|"Regex"} pattern type, and the few parameters several components share.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "loaders/regex.h"

namespace oko::tokenizer_json {

using json = nlohmann::json;

Result<const json*> Field(const json& j, const char* key, const std::string& where);
Result<std::string> StringField(const json& j, const char* key, const std::string& where);
// Absent or null gives `dflt`.
Result<bool> BoolField(const json& j, const char* key, const std::string& where, bool dflt);
Result<int64_t> IntField(const json& j, const char* key, const std::string& where);
// A string field holding exactly one character.
Result<char32_t> CharField(const json& j, const char* key, const std::string& where);
Result<const json*> ArrayField(const json& j, const char* key, const std::string& where);
// The "type" of a component object.
Result<std::string> TypeOf(const json& j, const std::string& where);
Status Unsupported(const std::string& where, const std::string& kind, const std::string& type);

// A "pattern" field: {"String": "..."} (literal) or {"Regex": "..."}.
struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> regex;  // set for {"Regex": ...}

  // Appends the [begin, end) matches in s.
  Status FindAll(std::string_view s, std::vector<Regex::Span>* out) const;
};
Result<Pattern> ParsePattern(const json& j, const std::string& where, bool allow_regex);
// Replaces every match of `pattern` in *text by `content`.
Status ReplaceAll(const Pattern& pattern, const std::string& content, std::string* text);

// Metaspace's prepend scheme (pre-tokenizer and decoder).
enum class PrependScheme { kAlways, kFirst, kNever };
Result<PrependScheme> ParsePrependScheme(const json& j, const std::string& where);

// The list `key` of a Sequence component, each item parsed by `parse` with its path.
template <typename T, typename ParseFn>
Result<std::vector<std::unique_ptr<T>>> ParseList(const json& j, const char* key,
                                                  const std::string& where, ParseFn parse) {
  OKO_ASSIGN_OR_RETURN(const json* list, ArrayField(j, key, where));
  std::vector<std::unique_ptr<T>> steps;
  for (size_t i = 0; i < list->size(); ++i) {
    OKO_ASSIGN_OR_RETURN(auto step, parse((*list)[i], fmt::format("{}.{}[{}]", where, key, i)));
    if (step) steps.push_back(std::move(step));
  }
  return steps;
}

}  // namespace oko::tokenizer_json
