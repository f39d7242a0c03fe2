// Jinja source -> tokens, with the whitespace rules transformers configures
// (trim_blocks, lstrip_blocks, keep_trailing_newline=False) and the `-`/`+` markers,
// following jinja2 3.1's lexer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "loaders/jinja_value.h"

namespace oko::jinja {

enum class TokenType {
  kText,        // template data between tags, whitespace rules already applied
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kVarBegin,    // {{
  kVarEnd,      // }}
  kName,
  kString,      // text holds the decoded value
  kInt,
  kFloat,
  kOperator,    // text holds the operator: "==", "(", "|", ...
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  SourcePos pos;
};

// Throws TemplateError (with the position) on an unterminated tag, comment or string, or
// a character that starts no token.
std::vector<Token> Tokenize(std::string_view source);

}  // namespace oko::jinja
