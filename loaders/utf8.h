// UTF-8 helpers for the tokenizer: validation, code point iteration, the lossy
// conversion Hugging Face uses when token bytes are not valid UTF-8, and the Unicode
// properties the tokenizer components need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace oko::utf8 {

// Decodes the code point that starts at s[*pos] and advances *pos past it. The input
// must be valid UTF-8 (checked once by the caller with FirstInvalidByte).
inline char32_t Next(std::string_view s, size_t* pos) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[*pos + k]); };
  const unsigned char c = b(0);
  char32_t cp;
  if (c < 0x80) {
    cp = c;
    *pos += 1;
  } else if (c < 0xE0) {
    cp = (char32_t{c} & 0x1F) << 6 | (b(1) & 0x3F);
    *pos += 2;
  } else if (c < 0xF0) {
    cp = (char32_t{c} & 0x0F) << 12 | (char32_t{b(1)} & 0x3F) << 6 | (b(2) & 0x3F);
    *pos += 3;
  } else {
    cp = (char32_t{c} & 0x07) << 18 | (char32_t{b(1)} & 0x3F) << 12 |
         (char32_t{b(2)} & 0x3F) << 6 | (b(3) & 0x3F);
    *pos += 4;
  }
  return cp;
}

// Length in bytes of the UTF-8 sequence that starts with lead byte `c` (1 for bytes
// that cannot start a sequence).
inline size_t SequenceLength(unsigned char c) {
  return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

void Append(char32_t cp, std::string* out);

// Offset of the first byte that is not part of a well-formed UTF-8 sequence, or npos.
size_t FirstInvalidByte(std::string_view s);

// Valid UTF-8 with every ill-formed subsequence replaced by U+FFFD, one per maximal
// subpart (Unicode 15 section 3.9, "U+FFFD substitution of maximal subparts"): what
// Rust's String::from_utf8_lossy does in HF tokenizers' ByteLevel decoder.
std::string Lossy(std::string_view bytes);

// Unicode White_Space (Rust's char::is_whitespace).
bool IsWhiteSpace(char32_t cp);
// Rust regex's Unicode \w (letters, marks, decimal digits, letter numbers, connector
// punctuation such as '_', joiners): what HF's single_word added tokens call a word.
bool IsWordChar(char32_t cp);

}  // namespace oko::utf8
