#include "loaders/jinja_lexer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "loaders/jinja_strings.h"

namespace oko::jinja {
namespace {

// jinja2 splits the source on \r\n, \r and \n, joins with \n, and (keep_trailing_newline
// False) drops one final newline.
std::string NormalizeNewlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(NormalizeNewlines(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) LexData();
    Emit(TokenType::kEof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  // Tokens arrive in source order, so the column is counted on from the previous token's
  // (a long line would otherwise cost quadratic time); an earlier offset counts afresh.
  SourcePos PosAt(size_t offset) {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) - 1;
    const size_t line_start = *it;
    if (offset < last_offset_ || line_start > last_offset_) {
      last_offset_ = line_start;
      last_column_ = 1;
    }
    last_column_ += CodePointCount(std::string_view(src_).substr(last_offset_, offset - last_offset_));
    last_offset_ = offset;
    return {static_cast<int>(it - line_starts_.begin()) + 1, static_cast<int>(last_column_)};
  }

  [[noreturn]] void Fail(size_t offset, const std::string& message) {
    throw TemplateError(message, PosAt(offset));
  }

  Token& Emit(TokenType type, std::string text, size_t offset) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.pos = PosAt(offset);
    tokens_.push_back(std::move(t));
    return tokens_.back();
  }

  // Text up to the next tag, then the tag. jinja2's OptionalLStrip rule: "-" strips all
  // whitespace before the tag; otherwise lstrip_blocks removes the spaces and tabs between
  // a line start and a block or comment tag.
  void LexData() {
    const size_t start = pos_;
    size_t tag = src_.find('{', pos_);
    while (tag != std::string::npos && tag + 1 < src_.size() && src_[tag + 1] != '{' &&
           src_[tag + 1] != '%' && src_[tag + 1] != '#') {
      tag = src_.find('{', tag + 1);
    }
    if (tag == std::string::npos || tag + 1 >= src_.size()) {
      Emit(TokenType::kText, src_.substr(start), start);
      pos_ = src_.size();
      return;
    }
    const char kind = src_[tag + 1];
    const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
    std::string text = src_.substr(start, tag - start);
    if (sign == '-') {
      text = PyStrip(text, std::nullopt, /*left=*/false, /*right=*/true);
    } else if (sign != '+' && kind != '{') {
      const size_t line_pos = text.rfind('\n') + 1;  // npos + 1 == 0
      const bool line_starting = start == 0 || src_[start - 1] == '\n';
      const bool only_blanks = std::all_of(text.begin() + line_pos, text.end(), IsAsciiSpace);
      if ((line_pos > 0 || line_starting) && only_blanks) text.resize(line_pos);
    }
    if (!text.empty()) Emit(TokenType::kText, std::move(text), start);
    pos_ = tag + 2 + (sign != 0 ? 1 : 0);
    if (kind == '#') {
      LexComment(tag);
    } else if (kind == '%') {
      Emit(TokenType::kBlockBegin, "{%", tag);
      LexTag(tag, /*block=*/true);
    } else {
      Emit(TokenType::kVarBegin, "{{", tag);
      LexTag(tag, /*block=*/false);
    }
  }

  void LexComment(size_t open) {
    const size_t close = src_.find("#}", pos_);
    if (close == std::string::npos) Fail(open, "unterminated comment: missing '#}'");
    const bool strip_after = close > pos_ && src_[close - 1] == '-';
    const bool keep_newline = close > pos_ && src_[close - 1] == '+';
    pos_ = close + 2;
    AfterTagEnd(strip_after, keep_newline);
  }

  // After %} or #}: "-" eats all following whitespace, trim_blocks eats one newline.
  void AfterTagEnd(bool strip_after, bool keep_newline) {
    if (strip_after) {
      while (pos_ < src_.size() && IsAsciiSpace(src_[pos_])) ++pos_;
    } else if (!keep_newline && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
  }

  // Tokens inside {% %} or {{ }}; an end marker only counts outside brackets, so
  // `{{ {'a': {'b': 1}} }}` lexes as jinja2 lexes it.
  void LexTag(size_t open, bool block) {
    int depth = 0;
    const char closer = block ? '%' : '}';
    while (true) {
      while (pos_ < src_.size() && IsAsciiSpace(src_[pos_])) ++pos_;
      if (pos_ >= src_.size())
        Fail(open, block ? "unterminated block tag: missing '%}'" : "unterminated expression: missing '}}'");
      if (depth == 0 && LexTagEnd(closer, block)) return;
      LexToken(&depth);
    }
  }

  bool LexTagEnd(char closer, bool block) {
    const bool marked = (src_[pos_] == '-' || (block && src_[pos_] == '+'));
    const size_t at = pos_ + (marked ? 1 : 0);
    if (at + 1 >= src_.size() || src_[at] != closer || src_[at + 1] != '}') return false;
    Emit(block ? TokenType::kBlockEnd : TokenType::kVarEnd, block ? "%}" : "}}", pos_);
    pos_ = at + 2;
    const bool strip_after = marked && src_[at - 1] == '-';
    if (block) {
      AfterTagEnd(strip_after, marked && src_[at - 1] == '+');
    } else if (strip_after) {
      AfterTagEnd(true, false);
    }
    return true;
  }

  void LexToken(int* depth) {
    const size_t start = pos_;
    const char c = src_[pos_];
    if (IsNameStart(c)) {
      while (pos_ < src_.size() && IsNameChar(src_[pos_])) ++pos_;
      Emit(TokenType::kName, src_.substr(start, pos_ - start), start);
    } else if (IsDigit(c)) {
      LexNumber();
    } else if (c == '\'' || c == '"') {
      LexString();
    } else {
      LexOperator(depth);
    }
  }

  void ScanDigits() {
    while (pos_ < src_.size() && (IsDigit(src_[pos_]) || (src_[pos_] == '_' && pos_ + 1 < src_.size() && IsDigit(src_[pos_ + 1]))))
      ++pos_;
  }

  void LexNumber() {
    const size_t start = pos_;
    ScanDigits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && IsDigit(src_[pos_ + 1])) {
      ++pos_;
      ScanDigits();
      is_float = true;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && IsDigit(src_[p])) {
        pos_ = p;
        ScanDigits();
        is_float = true;
      }
    }
    std::string text = src_.substr(start, pos_ - start);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    errno = 0;
    Token& t = Emit(is_float ? TokenType::kFloat : TokenType::kInt, text, start);
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      t.int_value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) Fail(start, fmt::format("integer literal {} does not fit in 64 bits", text));
    }
  }

  // Python string escapes, as jinja2 decodes literals with "unicode-escape"; an unknown
  // escape keeps its backslash.
  void LexString() {
    const size_t start = pos_;
    const char quote = src_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) Fail(start, "unterminated string literal");
      const char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        continue;
      }
      if (pos_ >= src_.size()) Fail(start, "unterminated string literal");
      DecodeEscape(start, &value);
    }
    Emit(TokenType::kString, std::move(value), start);
  }

  void DecodeEscape(size_t literal_start, std::string* value) {
    const char e = src_[pos_++];
    switch (e) {
      case 'n': value->push_back('\n'); return;
      case 't': value->push_back('\t'); return;
      case 'r': value->push_back('\r'); return;
      case 'a': value->push_back('\a'); return;
      case 'b': value->push_back('\b'); return;
      case 'f': value->push_back('\f'); return;
      case 'v': value->push_back('\v'); return;
      case '\\': case '\'': case '"': value->push_back(e); return;
      case '\n': return;  // line continuation
      case 'x': AppendUtf8(HexEscape(literal_start, 2), value); return;
      case 'u': AppendUtf8(HexEscape(literal_start, 4), value); return;
      case 'U': AppendUtf8(HexEscape(literal_start, 8), value); return;
      default: break;
    }
    if (e >= '0' && e <= '7') {
      char32_t code = e - '0';
      for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k)
        code = code * 8 + (src_[pos_++] - '0');
      AppendUtf8(code, value);
      return;
    }
    value->push_back('\\');
    value->push_back(e);
  }

  char32_t HexEscape(size_t literal_start, int digits) {
    char32_t code = 0;
    for (int k = 0; k < digits; ++k) {
      const int h = pos_ < src_.size() ? HexValue(src_[pos_]) : -1;
      if (h < 0) Fail(literal_start, "truncated \\x, \\u or \\U escape in string literal");
      code = code * 16 + static_cast<char32_t>(h);
      ++pos_;
    }
    if (code > 0x10FFFF) Fail(literal_start, "escape \\U is beyond U+10FFFF");
    return code;
  }

  void LexOperator(int* depth) {
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    const size_t start = pos_;
    for (std::string_view op : kTwoChar) {
      if (src_.compare(pos_, 2, op) == 0) {
        pos_ += 2;
        Emit(TokenType::kOperator, std::string(op), start);
        return;
      }
    }
    const char c = src_[pos_];
    if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos)
      Fail(start, fmt::format("unexpected character '{}'", c));
    if (c == '(' || c == '[' || c == '{') ++*depth;
    if (c == ')' || c == ']' || c == '}') {
      if (*depth == 0) Fail(start, fmt::format("unexpected '{}'", c));
      --*depth;
    }
    ++pos_;
    Emit(TokenType::kOperator, std::string(1, c), start);
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  size_t pos_ = 0;
  size_t last_offset_ = 0;  // PosAt's cache: an offset and its 1-based column
  size_t last_column_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Tokenize(std::string_view source) { return Lexer(source).Run(); }

}  // namespace oko::jinja
