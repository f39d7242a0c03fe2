#include "loaders/tokenizer_json.h"

#include "loaders/utf8.h"

namespace oko::tokenizer_json {

Result<const json*> Field(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return Errorf("{}: missing field '{}'", where, key);
  return &*it;
}

Result<std::string> StringField(const json& j, const char* key, const std::string& where) {
  OKO_ASSIGN_OR_RETURN(const json* v, Field(j, key, where));
  if (!v->is_string()) return Errorf("{}: '{}' must be a string, got {}", where, key, v->dump());
  return v->get<std::string>();
}

Result<bool> BoolField(const json& j, const char* key, const std::string& where, bool dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) return Errorf("{}: '{}' must be true or false, got {}", where, key, it->dump());
  return it->get<bool>();
}

Result<int64_t> IntField(const json& j, const char* key, const std::string& where) {
  OKO_ASSIGN_OR_RETURN(const json* v, Field(j, key, where));
  if (!v->is_number_integer() || v->get<int64_t>() < 0)
    return Errorf("{}: '{}' must be a non-negative integer, got {}", where, key, v->dump());
  return v->get<int64_t>();
}

Result<std::string> TypeOf(const json& j, const std::string& where) {
  if (!j.is_object()) return Errorf("{}: expected an object, got {}", where, j.dump());
  return StringField(j, "type", where);
}

Result<const json*> ArrayField(const json& j, const char* key, const std::string& where) {
  OKO_ASSIGN_OR_RETURN(const json* v, Field(j, key, where));
  if (!v->is_array()) return Errorf("{}: '{}' must be an array", where, key);
  return v;
}

Status Unsupported(const std::string& where, const std::string& kind, const std::string& type) {
  return Errorf("{}: {} type '{}' is not supported by oko", where, kind, type);
}

Status Pattern::FindAll(std::string_view s, std::vector<Regex::Span>* out) const {
  if (regex) return regex->FindAll(s, out);
  if (literal.empty()) return {};
  for (size_t pos = s.find(literal); pos != std::string_view::npos;
       pos = s.find(literal, pos + literal.size())) {
    out->emplace_back(pos, pos + literal.size());
  }
  return {};
}

Result<Pattern> ParsePattern(const json& j, const std::string& where, bool allow_regex) {
  OKO_ASSIGN_OR_RETURN(const json* p, Field(j, "pattern", where));
  Pattern pattern;
  if (p->is_object() && p->contains("String") && (*p)["String"].is_string()) {
    pattern.literal = (*p)["String"].get<std::string>();
    return pattern;
  }
  if (p->is_object() && p->contains("Regex") && (*p)["Regex"].is_string()) {
    if (!allow_regex) return Errorf("{}: a Regex pattern is not supported here", where);
    auto re = Regex::Compile((*p)["Regex"].get<std::string>());
    if (!re.ok()) return re.status().WithContext(where + ".pattern");
    pattern.regex = std::move(re).value();
    return pattern;
  }
  return Errorf("{}: 'pattern' must be {{\"String\": ...}} or {{\"Regex\": ...}}, got {}", where,
                p->dump());
}

Status ReplaceAll(const Pattern& pattern, const std::string& content, std::string* text) {
  std::vector<Regex::Span> matches;
  OKO_RETURN_IF_ERROR(pattern.FindAll(*text, &matches));
  if (matches.empty()) return {};
  std::string out;
  out.reserve(text->size() + matches.size() * content.size());
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    out.append(*text, prev, b - prev);
    out += content;
    prev = e;
  }
  out.append(*text, prev);
  *text = std::move(out);
  return {};
}

Result<char32_t> CharField(const json& j, const char* key, const std::string& where) {
  OKO_ASSIGN_OR_RETURN(std::string s, StringField(j, key, where));
  size_t pos = 0;
  if (s.empty() || utf8::FirstInvalidByte(s) != std::string_view::npos ||
      (utf8::Next(s, &pos), pos != s.size())) {
    return Errorf("{}: '{}' must be one character, got '{}'", where, key, s);
  }
  pos = 0;
  return utf8::Next(s, &pos);
}

// "prepend_scheme" in current files, "add_prefix_space" in files written before
// tokenizers 0.14.
Result<PrependScheme> ParsePrependScheme(const json& j, const std::string& where) {
  if (j.contains("prepend_scheme")) {
    OKO_ASSIGN_OR_RETURN(std::string s, StringField(j, "prepend_scheme", where));
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    return Errorf("{}: unknown prepend_scheme '{}'", where, s);
  }
  OKO_ASSIGN_OR_RETURN(bool add, BoolField(j, "add_prefix_space", where, true));
  return add ? PrependScheme::kAlways : PrependScheme::kNever;
}

}  // namespace oko::tokenizer_json
