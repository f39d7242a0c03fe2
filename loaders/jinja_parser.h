// Tokens -> statement tree, following jinja2 3.1's grammar and operator precedence
// (parser.py): condexpr < or < and < not < compare < + - < ~ < * / // % < ** < unary
// < postfix (. [] ()) and filters/tests.
#pragma once

#include <string_view>

#include "loaders/jinja_ast.h"

namespace oko::jinja {

// Nesting deeper than this (blocks or expressions) is a syntax error, not a stack overflow.
inline constexpr int kMaxParseDepth = 200;

// Throws TemplateError with the position of the offending token.
Body ParseTemplate(std::string_view source);

}  // namespace oko::jinja
