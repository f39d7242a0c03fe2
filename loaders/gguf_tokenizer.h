// The tokenizer and chat template of a GGUF file, as the tokenizer.json and
// tokenizer_config.json Hugging Face would hold for them, so that the one tokenizer
// (loaders/tokenizer.h) and template engine (loaders/chat_template.h) run them.
//  - tokenizer.ggml.model "gpt2": byte-level BPE with the file's tokens and merges, split
//    by the regex of tokenizer.ggml.pre ("qwen2": Qwen2/Qwen3 with NFC as their
//    tokenizer.json; "llama-bpe": Llama 3).
//  - "llama": SentencePiece with byte fallback. GGUF keeps scores, not merges: every split
//    of a token into two tokens becomes a merge ranked by the token's score, which merges
//    the pair whose result scores highest first, leftmost on ties: llama.cpp's (and
//    SentencePiece's) rule. add_space_prefix (default true) prepends "▁".
// Tokens of type CONTROL / UNKNOWN are special added tokens, USER_DEFINED plain added
// tokens; add_bos_token / add_eos_token become the post-processor.
#pragma once

#include <string>

#include "common/status.h"
#include "loaders/gguf.h"

namespace oko {

struct TokenizerJsonTexts {
  std::string tokenizer_json;
  // bos/eos/pad/unk_token, add_bos_token and chat_template (when the file has one).
  std::string config_json;
};

// Errors name the file and the key.
Result<TokenizerJsonTexts> GgufTokenizerJson(const GgufFile& f);

}  // namespace oko
