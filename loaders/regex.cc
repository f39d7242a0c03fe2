#include "loaders/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "loaders/utf8.h"

namespace oko {
namespace {

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

Result<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    return Errorf("regex '{}' does not compile: {} at offset {}", pattern, Pcre2Message(error),
                  offset);
  }
  // Without JIT PCRE2 still matches correctly, only slower.
  const bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return std::unique_ptr<Regex>(new Regex(code, jit));
}

Regex::~Regex() { pcre2_code_free(code_); }

Status Regex::FindAll(std::string_view s, std::vector<Span>* out) const {
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(code_, nullptr));
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t start = 0;
  while (start <= s.size()) {
    int rc = jit_ ? pcre2_jit_match(code_, subject, s.size(), start, 0, md.get(), nullptr)
                  : PCRE2_ERROR_JIT_STACKLIMIT;
    // The JIT stack (32 KiB by default) can run out on pathological inputs; the
    // interpreter keeps its backtracking state on the heap instead.
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code_, subject, s.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       md.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return Errorf("regex match failed: {}", Pcre2Message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out->emplace_back(b, e);
      start = e;
    } else {  // empty match: step over one character
      if (b >= s.size()) break;
      start = b + utf8::SequenceLength(static_cast<unsigned char>(s[b]));
    }
  }
  return {};
}

}  // namespace oko
