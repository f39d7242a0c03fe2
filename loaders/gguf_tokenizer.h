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
#include "loaders/gguf_writer.h"
#include "loaders/hf_config.h"

namespace oko {

struct TokenizerJsonTexts {
  std::string tokenizer_json;
  // bos/eos/pad/unk_token, add_bos_token and chat_template (when the file has one).
  std::string config_json;
};

// Errors name the file and the key.
Result<TokenizerJsonTexts> GgufTokenizerJson(const GgufFile& f);

// The other way: a model folder's tokenizer.json and tokenizer_config.json as the
// tokenizer.* keys llama.cpp's converter writes (the chat template too, when the folder has
// one), `vocab_size` tokens (ids without a token become "[PADn]", type UNUSED).
//  - Byte-level BPE (Qwen2/Qwen3, Llama 3): "gpt2", tokenizer.ggml.pre named from the
//    split regex (the table above), merges. Added tokens: CONTROL when special or spelled
//    <|...|>, else USER_DEFINED.
//  - BPE with byte fallback and a "▁" normalizer (SentencePiece models): "llama", scores
//    rebuilt from the merges (minus the rank of the first merge that makes a token; tokens
//    no merge makes: minus (merge count + id); CONTROL, UNKNOWN and BYTE tokens: 0),
//    add_space_prefix.
// bos/eos/pad/unk ids from tokenizer_config.json's *_token, else config.json's *_token_id;
// add_bos_token / add_eos_token from tokenizer_config.json.
Result<GgufMetadata> GgufTokenizerMetadata(const std::string& model_dir, const ModelConfig& c,
                                           bool has_chat_template);

}  // namespace oko
