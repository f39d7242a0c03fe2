// Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

namespace oko::fuzz {

// The input as text.
inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits at the first NUL byte (never part of valid JSON): {before, after}. Without a NUL
// the second part is empty.
inline std::pair<std::string_view, std::string_view> SplitAtNul(std::string_view s) {
  const size_t k = s.find('\0');
  if (k == std::string_view::npos) return {s, {}};
  return {s.substr(0, k), s.substr(k + 1)};
}

// `s` with bytes outside printable ASCII as \xNN, for messages.
inline std::string Escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A broken invariant: print it and abort, so libFuzzer saves the input.
[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace oko::fuzz
