// Regex: a PCRE2 pattern compiled with PCRE2_UTF | PCRE2_UCP and JIT, for the regexes
// tokenizer.json gives (Split pre-tokenizer, Replace normalizer/decoder). UCP makes
// \s, \w, \d and POSIX classes follow Unicode properties, as Oniguruma does in HF
// tokenizers (and unlike JavaScript's \s). std::regex is neither Unicode-aware nor fast.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

struct pcre2_real_code_8;

namespace oko {

class Regex {
 public:
  using Span = std::pair<size_t, size_t>;  // [begin, end) byte offsets

  // Errors quote the PCRE2 message and the offset in the pattern.
  static Result<std::unique_ptr<Regex>> Compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends every non-empty, non-overlapping match in `s` (valid UTF-8), left to right.
  Status FindAll(std::string_view s, std::vector<Span>* out) const;

 private:
  Regex(pcre2_real_code_8* code, bool jit) : code_(code), jit_(jit) {}
  pcre2_real_code_8* code_;
  bool jit_;
};

}  // namespace oko
