#include "loaders/jinja_strings.h"

#include <utf8proc.h>

#include <algorithm>
#include <iterator>

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

// CPython's full case mappings that are more than one code point (SpecialCasing.txt,
// unconditional part), which utf8proc's simple mappings lack: "ß".upper() == "SS".
// Generated with Python 3.11: every c with len(c.upper()), len(c.title()) or
// len(c.lower()) > 1. Columns: code point, upper, title, lower (nullptr = simple mapping).
struct SpecialCase {
  char32_t cp;
  const char32_t* upper;
  const char32_t* title;
  const char32_t* lower;
};
constexpr SpecialCase kSpecialCases[] = {
{0xDF, U"\x53\x53", U"\x53\x73", nullptr},
{0x130, nullptr, nullptr, U"\x69\x307"},
{0x149, U"\x2BC\x4E", U"\x2BC\x4E", nullptr},
{0x1F0, U"\x4A\x30C", U"\x4A\x30C", nullptr},
{0x390, U"\x399\x308\x301", U"\x399\x308\x301", nullptr},
{0x3B0, U"\x3A5\x308\x301", U"\x3A5\x308\x301", nullptr},
{0x587, U"\x535\x552", U"\x535\x582", nullptr},
{0x1E96, U"\x48\x331", U"\x48\x331", nullptr},
{0x1E97, U"\x54\x308", U"\x54\x308", nullptr},
{0x1E98, U"\x57\x30A", U"\x57\x30A", nullptr},
{0x1E99, U"\x59\x30A", U"\x59\x30A", nullptr},
{0x1E9A, U"\x41\x2BE", U"\x41\x2BE", nullptr},
{0x1F50, U"\x3A5\x313", U"\x3A5\x313", nullptr},
{0x1F52, U"\x3A5\x313\x300", U"\x3A5\x313\x300", nullptr},
{0x1F54, U"\x3A5\x313\x301", U"\x3A5\x313\x301", nullptr},
{0x1F56, U"\x3A5\x313\x342", U"\x3A5\x313\x342", nullptr},
{0x1F80, U"\x1F08\x399", nullptr, nullptr},
{0x1F81, U"\x1F09\x399", nullptr, nullptr},
{0x1F82, U"\x1F0A\x399", nullptr, nullptr},
{0x1F83, U"\x1F0B\x399", nullptr, nullptr},
{0x1F84, U"\x1F0C\x399", nullptr, nullptr},
{0x1F85, U"\x1F0D\x399", nullptr, nullptr},
{0x1F86, U"\x1F0E\x399", nullptr, nullptr},
{0x1F87, U"\x1F0F\x399", nullptr, nullptr},
{0x1F88, U"\x1F08\x399", nullptr, nullptr},
{0x1F89, U"\x1F09\x399", nullptr, nullptr},
{0x1F8A, U"\x1F0A\x399", nullptr, nullptr},
{0x1F8B, U"\x1F0B\x399", nullptr, nullptr},
{0x1F8C, U"\x1F0C\x399", nullptr, nullptr},
{0x1F8D, U"\x1F0D\x399", nullptr, nullptr},
{0x1F8E, U"\x1F0E\x399", nullptr, nullptr},
{0x1F8F, U"\x1F0F\x399", nullptr, nullptr},
{0x1F90, U"\x1F28\x399", nullptr, nullptr},
{0x1F91, U"\x1F29\x399", nullptr, nullptr},
{0x1F92, U"\x1F2A\x399", nullptr, nullptr},
{0x1F93, U"\x1F2B\x399", nullptr, nullptr},
{0x1F94, U"\x1F2C\x399", nullptr, nullptr},
{0x1F95, U"\x1F2D\x399", nullptr, nullptr},
{0x1F96, U"\x1F2E\x399", nullptr, nullptr},
{0x1F97, U"\x1F2F\x399", nullptr, nullptr},
{0x1F98, U"\x1F28\x399", nullptr, nullptr},
{0x1F99, U"\x1F29\x399", nullptr, nullptr},
{0x1F9A, U"\x1F2A\x399", nullptr, nullptr},
{0x1F9B, U"\x1F2B\x399", nullptr, nullptr},
{0x1F9C, U"\x1F2C\x399", nullptr, nullptr},
{0x1F9D, U"\x1F2D\x399", nullptr, nullptr},
{0x1F9E, U"\x1F2E\x399", nullptr, nullptr},
{0x1F9F, U"\x1F2F\x399", nullptr, nullptr},
{0x1FA0, U"\x1F68\x399", nullptr, nullptr},
{0x1FA1, U"\x1F69\x399", nullptr, nullptr},
{0x1FA2, U"\x1F6A\x399", nullptr, nullptr},
{0x1FA3, U"\x1F6B\x399", nullptr, nullptr},
{0x1FA4, U"\x1F6C\x399", nullptr, nullptr},
{0x1FA5, U"\x1F6D\x399", nullptr, nullptr},
{0x1FA6, U"\x1F6E\x399", nullptr, nullptr},
{0x1FA7, U"\x1F6F\x399", nullptr, nullptr},
{0x1FA8, U"\x1F68\x399", nullptr, nullptr},
{0x1FA9, U"\x1F69\x399", nullptr, nullptr},
{0x1FAA, U"\x1F6A\x399", nullptr, nullptr},
{0x1FAB, U"\x1F6B\x399", nullptr, nullptr},
{0x1FAC, U"\x1F6C\x399", nullptr, nullptr},
{0x1FAD, U"\x1F6D\x399", nullptr, nullptr},
{0x1FAE, U"\x1F6E\x399", nullptr, nullptr},
{0x1FAF, U"\x1F6F\x399", nullptr, nullptr},
{0x1FB2, U"\x1FBA\x399", U"\x1FBA\x345", nullptr},
{0x1FB3, U"\x391\x399", nullptr, nullptr},
{0x1FB4, U"\x386\x399", U"\x386\x345", nullptr},
{0x1FB6, U"\x391\x342", U"\x391\x342", nullptr},
{0x1FB7, U"\x391\x342\x399", U"\x391\x342\x345", nullptr},
{0x1FBC, U"\x391\x399", nullptr, nullptr},
{0x1FC2, U"\x1FCA\x399", U"\x1FCA\x345", nullptr},
{0x1FC3, U"\x397\x399", nullptr, nullptr},
{0x1FC4, U"\x389\x399", U"\x389\x345", nullptr},
{0x1FC6, U"\x397\x342", U"\x397\x342", nullptr},
{0x1FC7, U"\x397\x342\x399", U"\x397\x342\x345", nullptr},
{0x1FCC, U"\x397\x399", nullptr, nullptr},
{0x1FD2, U"\x399\x308\x300", U"\x399\x308\x300", nullptr},
{0x1FD3, U"\x399\x308\x301", U"\x399\x308\x301", nullptr},
{0x1FD6, U"\x399\x342", U"\x399\x342", nullptr},
{0x1FD7, U"\x399\x308\x342", U"\x399\x308\x342", nullptr},
{0x1FE2, U"\x3A5\x308\x300", U"\x3A5\x308\x300", nullptr},
{0x1FE3, U"\x3A5\x308\x301", U"\x3A5\x308\x301", nullptr},
{0x1FE4, U"\x3A1\x313", U"\x3A1\x313", nullptr},
{0x1FE6, U"\x3A5\x342", U"\x3A5\x342", nullptr},
{0x1FE7, U"\x3A5\x308\x342", U"\x3A5\x308\x342", nullptr},
{0x1FF2, U"\x1FFA\x399", U"\x1FFA\x345", nullptr},
{0x1FF3, U"\x3A9\x399", nullptr, nullptr},
{0x1FF4, U"\x38F\x399", U"\x38F\x345", nullptr},
{0x1FF6, U"\x3A9\x342", U"\x3A9\x342", nullptr},
{0x1FF7, U"\x3A9\x342\x399", U"\x3A9\x342\x345", nullptr},
{0x1FFC, U"\x3A9\x399", nullptr, nullptr},
{0xFB00, U"\x46\x46", U"\x46\x66", nullptr},
{0xFB01, U"\x46\x49", U"\x46\x69", nullptr},
{0xFB02, U"\x46\x4C", U"\x46\x6C", nullptr},
{0xFB03, U"\x46\x46\x49", U"\x46\x66\x69", nullptr},
{0xFB04, U"\x46\x46\x4C", U"\x46\x66\x6C", nullptr},
{0xFB05, U"\x53\x54", U"\x53\x74", nullptr},
{0xFB06, U"\x53\x54", U"\x53\x74", nullptr},
{0xFB13, U"\x544\x546", U"\x544\x576", nullptr},
{0xFB14, U"\x544\x535", U"\x544\x565", nullptr},
{0xFB15, U"\x544\x53B", U"\x544\x56B", nullptr},
{0xFB16, U"\x54E\x546", U"\x54E\x576", nullptr},
{0xFB17, U"\x544\x53D", U"\x544\x56D", nullptr},
};

enum class Case { kUpper, kLower, kTitle };

void AppendCased(char32_t c, Case which, std::u32string* out) {
  const auto it = std::lower_bound(std::begin(kSpecialCases), std::end(kSpecialCases), c,
                                   [](const SpecialCase& s, char32_t x) { return s.cp < x; });
  if (it != std::end(kSpecialCases) && it->cp == c) {
    const char32_t* full = which == Case::kUpper ? it->upper : which == Case::kTitle ? it->title : it->lower;
    if (full != nullptr) {
      out->append(full);
      return;
    }
  }
  const auto cp = static_cast<utf8proc_int32_t>(c);
  const auto mapped = which == Case::kUpper   ? utf8proc_toupper(cp)
                      : which == Case::kTitle ? utf8proc_totitle(cp)
                                              : utf8proc_tolower(cp);
  out->push_back(static_cast<char32_t>(mapped));
}

std::string MapCase(std::string_view s, Case which) {
  std::u32string out;
  for (char32_t c : DecodeUtf8(s)) AppendCased(c, which, &out);
  return EncodeUtf8(out);
}

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

std::string PyUpper(std::string_view s) { return MapCase(s, Case::kUpper); }
std::string PyLower(std::string_view s) { return MapCase(s, Case::kLower); }

std::string PyCapitalize(std::string_view s) {
  const std::u32string cps = DecodeUtf8(s);
  std::u32string out;
  for (size_t i = 0; i < cps.size(); ++i) AppendCased(cps[i], i == 0 ? Case::kTitle : Case::kLower, &out);
  return EncodeUtf8(out);
}

std::string PyTitle(std::string_view s) {
  std::u32string out;
  bool previous_cased = false;
  for (char32_t c : DecodeUtf8(s)) {
    AppendCased(c, previous_cased ? Case::kLower : Case::kTitle, &out);
    previous_cased = IsCased(c);
  }
  return EncodeUtf8(out);
}

std::string JinjaTitle(std::string_view s) {
  // jinja2's do_title: words are split at runs of [-\s({\[<]; each word's first
  // character is upper-cased (str.upper) and the rest lower-cased.
  auto is_break = [](char32_t c) { return IsPySpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
  std::u32string out;
  bool word_start = true;
  for (char32_t c : DecodeUtf8(s)) {
    if (is_break(c)) {
      out.push_back(c);
      word_start = true;
      continue;
    }
    AppendCased(c, word_start ? Case::kUpper : Case::kLower, &out);
    word_start = false;
  }
  return EncodeUtf8(out);
}

}  // namespace oko::jinja
