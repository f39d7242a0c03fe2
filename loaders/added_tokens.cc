#include "loaders/added_tokens.h"

#include <algorithm>

#include "loaders/utf8.h"

namespace oko {
namespace {

// The code point that ends just before `end` (text[..end] is valid UTF-8).
char32_t PreviousChar(std::string_view text, size_t end, size_t* begin) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
  *begin = b;
  size_t pos = b;
  return utf8::Next(text, &pos);
}

}  // namespace

void AddedTokenMatcher::Add(const AddedToken& token) {
  if (token.content.empty()) return;
  tokens_.push_back(token);
  auto& list = by_first_byte_[static_cast<uint8_t>(token.content[0])];
  list.push_back(static_cast<int>(tokens_.size() - 1));
  std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
    return tokens_[a].content.size() > tokens_[b].content.size();
  });
}

int AddedTokenMatcher::LongestAt(std::string_view text, size_t pos) const {
  for (int t : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    const std::string& c = tokens_[t].content;
    if (text.compare(pos, c.size(), c) == 0) return t;
  }
  return -1;
}

void AddedTokenMatcher::Split(std::string_view text, std::vector<TextSegment>* out) const {
  size_t plain_begin = 0;  // start of the text not yet emitted
  size_t pos = tokens_.empty() ? text.size() : 0;  // nothing to find: one plain segment
  while (pos < text.size()) {
    const int t = by_first_byte_[static_cast<uint8_t>(text[pos])].empty() ? -1 : LongestAt(text, pos);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[t];
    size_t begin = pos, end = pos + token.content.size();
    if (token.single_word) {
      size_t unused;
      size_t after = end;
      const bool word_before = begin > 0 && utf8::IsWordChar(PreviousChar(text, begin, &unused));
      const bool word_after = end < text.size() && utf8::IsWordChar(utf8::Next(text, &after));
      if (word_before || word_after) {  // HF drops the match and searches after it
        pos = end;
        continue;
      }
    }
    if (token.lstrip) {  // never reaches into the previous match
      size_t b;
      while (begin > plain_begin && utf8::IsWhiteSpace(PreviousChar(text, begin, &b))) begin = b;
    }
    if (token.rstrip) {
      size_t next = end;
      while (end < text.size() && utf8::IsWhiteSpace(utf8::Next(text, &next))) end = next;
    }
    if (begin > plain_begin) out->push_back({plain_begin, begin, -1});
    out->push_back({begin, end, token.id});
    plain_begin = pos = end;
  }
  if (plain_begin < text.size()) out->push_back({plain_begin, text.size(), -1});
}

}  // namespace oko
