// Python str semantics on UTF-8 strings: the methods and filters chat templates call
// (strip, split, replace, upper...) work on code points, as CPython does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace oko::jinja {

// Bytes that are not valid UTF-8 decode to one code point each (U+DC80 + byte, Python's
// surrogateescape) and encode back to the same byte, so nothing is lost or crashes.
std::u32string DecodeUtf8(std::string_view s);
std::string EncodeUtf8(std::u32string_view s);
void AppendUtf8(char32_t c, std::string* out);
size_t CodePointCount(std::string_view s);

// str.isspace() for one code point.
bool IsPySpace(char32_t c);

// str.strip/lstrip/rstrip: `chars` unset strips whitespace.
std::string PyStrip(std::string_view s, const std::optional<std::string>& chars, bool left,
                    bool right);
// str.split(sep, maxsplit); sep unset splits on runs of whitespace. sep must not be empty.
std::vector<std::string> PySplit(std::string_view s, const std::optional<std::string>& sep,
                                 int64_t maxsplit);
// str.replace(old, new, count); count < 0 replaces all.
std::string PyReplace(std::string_view s, std::string_view old, std::string_view repl,
                      int64_t count);
std::string PyUpper(std::string_view s);
std::string PyLower(std::string_view s);
// str.capitalize() and str.title().
std::string PyCapitalize(std::string_view s);
std::string PyTitle(std::string_view s);
// jinja2's title filter, which is not str.title(): see jinja2.filters.do_title.
std::string JinjaTitle(std::string_view s);

}  // namespace oko::jinja
