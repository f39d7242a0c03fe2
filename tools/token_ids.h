// Token ids given on the command line (--ids of run, logits, trace, detokenize) and the one
// check that ids fit a vocabulary, whoever produced them (--ids or a tokenizer).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace oko {

// "1,2,3": spaces, newlines and one pair of enclosing brackets allowed, so that the JSON
// array `oko tokenize` prints pastes as is. "[]" is no ids; "" is an error (a flag given
// with nothing). Errors are exit status 2 and name `flag` and the bad item.
Result<std::vector<int32_t>> ParseTokenIds(std::string_view text, std::string_view flag = "--ids");

// Every id in [0, vocab_size); `source` names where they came from ("--ids", "-p").
Status CheckTokenRange(std::span<const int32_t> ids, int64_t vocab_size, std::string_view source);

}  // namespace oko
