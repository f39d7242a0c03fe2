#include "loaders/jinja_strings.h"

#include <utf8proc.h>

namespace oko::jinja {
namespace {

constexpr char32_t kEscapeBase = 0xDC80;  // surrogateescape: byte b -> U+DC80 + (b - 0x80)

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
size_t ValidSequenceLength(std::string_view s, size_t i, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t n;
  char32_t c;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    n = 2, c = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, c = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, c = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    c = (c << 6) | (b & 0x3F);
  }
  static constexpr char32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kMinForLength[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return n;
}

bool InSet(char32_t c, const std::u32string& set) { return set.find(c) != std::u32string::npos; }

bool IsCased(char32_t c) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

template <typename F>
std::string MapCodePoints(std::string_view s, F f) {
  std::u32string cps = DecodeUtf8(s);
  for (char32_t& c : cps) c = f(c);
  return EncodeUtf8(cps);
}

char32_t Upper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<int32_t>(c))); }
char32_t Lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<int32_t>(c))); }
char32_t Title(char32_t c) { return static_cast<char32_t>(utf8proc_totitle(static_cast<int32_t>(c))); }

}  // namespace

std::u32string DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t c;
    const size_t n = ValidSequenceLength(s, i, &c);
    if (n == 0) {
      out.push_back(kEscapeBase + static_cast<unsigned char>(s[i]) - 0x80);
      ++i;
    } else {
      out.push_back(c);
      i += n;
    }
  }
  return out;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c >= kEscapeBase && c < kEscapeBase + 0x80) {
    out->push_back(static_cast<char>(c - kEscapeBase + 0x80));
  } else if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string EncodeUtf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) AppendUtf8(c, &out);
  return out;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    char32_t c;
    const size_t len = ValidSequenceLength(s, i, &c);
    i += len == 0 ? 1 : len;
    ++n;
  }
  return n;
}

bool IsPySpace(char32_t c) {
  // CPython's _PyUnicode_IsWhitespace table.
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string PyStrip(std::string_view s, const std::optional<std::string>& chars, bool left,
                    bool right) {
  const std::u32string cps = DecodeUtf8(s);
  const std::u32string set = chars ? DecodeUtf8(*chars) : std::u32string();
  auto strip = [&](char32_t c) { return chars ? InSet(c, set) : IsPySpace(c); };
  size_t begin = 0, end = cps.size();
  if (left) while (begin < end && strip(cps[begin])) ++begin;
  if (right) while (end > begin && strip(cps[end - 1])) --end;
  return EncodeUtf8(std::u32string_view(cps).substr(begin, end - begin));
}

std::vector<std::string> PySplit(std::string_view s, const std::optional<std::string>& sep,
                                 int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    size_t start = 0;
    for (size_t hit; (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) &&
                     (hit = s.find(*sep, start)) != std::string_view::npos;) {
      parts.emplace_back(s.substr(start, hit - start));
      start = hit + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  const std::u32string cps = DecodeUtf8(s);
  size_t i = 0;
  while (true) {
    while (i < cps.size() && IsPySpace(cps[i])) ++i;
    if (i == cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      size_t end = cps.size();
      while (end > i && IsPySpace(cps[end - 1])) --end;
      parts.push_back(EncodeUtf8(std::u32string_view(cps).substr(i, end - i)));
      break;
    }
    size_t j = i;
    while (j < cps.size() && !IsPySpace(cps[j])) ++j;
    parts.push_back(EncodeUtf8(std::u32string_view(cps).substr(i, j - i)));
    i = j;
  }
  return parts;
}

std::string PyReplace(std::string_view s, std::string_view old, std::string_view repl,
                      int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts `repl` before every code point and at the end
    const std::u32string cps = DecodeUtf8(s);
    int64_t done = 0;
    for (char32_t c : cps) {
      if (count < 0 || done < count) out += repl, ++done;
      AppendUtf8(c, &out);
    }
    if (count < 0 || done < count) out += repl;
    return out;
  }
  size_t start = 0;
  for (int64_t done = 0; count < 0 || done < count; ++done) {
    const size_t hit = s.find(old, start);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(start, hit - start)).append(repl);
    start = hit + old.size();
  }
  out.append(s.substr(start));
  return out;
}

std::string PyUpper(std::string_view s) { return MapCodePoints(s, Upper); }
std::string PyLower(std::string_view s) { return MapCodePoints(s, Lower); }

std::string PyCapitalize(std::string_view s) {
  std::u32string cps = DecodeUtf8(s);
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? Title(cps[i]) : Lower(cps[i]);
  return EncodeUtf8(cps);
}

std::string PyTitle(std::string_view s) {
  std::u32string cps = DecodeUtf8(s);
  bool previous_cased = false;
  for (char32_t& c : cps) {
    const bool cased = IsCased(c);
    c = previous_cased ? Lower(c) : Title(c);
    previous_cased = cased;
  }
  return EncodeUtf8(cps);
}

}  // namespace oko::jinja
