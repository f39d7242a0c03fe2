// Tokenizer: a Hugging Face tokenizer.json (BPE model) with its normalizer,
// pre-tokenizer, added tokens, post-processor and decoder, built from the file's own
// sections: byte-level BPE (GPT-2, Qwen, Llama 3) and SentencePiece-style BPE with
// byte fallback (Llama 2). Reference: HF tokenizers (Rust), Tokenizer::encode with
// add_special_tokens and Tokenizer::decode; transformers' clean_up_tokenization_spaces is
// not applied. tokenizer_config.json, when present, supplies bos/eos tokens.
//
// Thread safety: Encode/Decode are const and may run concurrently (the BPE word cache is
// locked).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "loaders/added_tokens.h"
#include "loaders/bpe.h"
#include "loaders/tokenizer_components.h"

namespace oko {

// The tokenizer.json of `dir`, following a git symlink stored as a small text file that
// names its target (e.g. "../tiny-qwen3/tokenizer.json").
Result<std::string> ResolveTokenizerPath(const std::string& dir);

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, if present, DIR/tokenizer_config.json. Errors name
  // the file and the section, e.g. "DIR/tokenizer.json: pre_tokenizer.pretokenizers[0]:
  // pre-tokenizer type 'Digits' is not supported by oko".
  static Result<std::unique_ptr<Tokenizer>> Load(const std::string& model_dir);
  // Builds from the text of tokenizer.json (and of tokenizer_config.json, may be empty);
  // `path` is used in messages.
  static Result<std::unique_ptr<Tokenizer>> FromJson(std::string_view tokenizer_json,
                                                     std::string_view config_json,
                                                     const std::string& path);

  // Ids of `text` (valid UTF-8, else an error naming the byte offset). With
  // add_special_tokens the post-processor adds its tokens (e.g. BOS for Llama 2).
  Result<std::vector<int32_t>> Encode(std::string_view text, bool add_special_tokens = true) const;
  // Text of `ids` as HF decodes it; ids outside the vocabulary are skipped (as in HF).
  // Invalid UTF-8 from byte tokens becomes U+FFFD.
  std::string Decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The text each id adds to the text before it, as labels for a trace: a SentencePiece
  // "▁the" reads " the" where Decode of it alone strips the space (the decoder's Strip
  // applies at the start of a text only). Piece k = Decode(ids[k-1], ids[k]) minus
  // Decode(ids[k-1]) when that is its prefix, else Decode(ids[k]); ids[0] takes itself
  // as context (Decode(x, x) minus Decode(x)). Concatenated, the pieces give Decode(ids)
  // up to that leading-space rule and split UTF-8 (a token ending inside a character
  // reads U+FFFD).
  std::vector<std::string> DecodePieces(std::span<const int32_t> ids) const;
  // DecodePieces of one id with no context (e.g. a predicted next token).
  std::string DecodePiece(int32_t id) const;
  // DecodePiece's bytes as the token stands for them: where it ends inside a character,
  // its part of that character's UTF-8, not U+FFFD (OpenAI logprobs' `bytes`).
  std::string PieceBytes(int32_t id) const;

  // The vocabulary string of an id ("" for ids that have none).
  std::string_view TokenText(int32_t id) const;
  std::optional<int32_t> TokenId(std::string_view token) const;
  // One past the largest id (model vocab and added tokens).
  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  // An added token marked "special" (skipped by Decode(skip_special=true)).
  bool IsSpecial(int32_t id) const;

  // From tokenizer_config.json (unset when absent or null).
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  // Whether HF transformers adds BOS (add_bos_token); the post-processor of
  // tokenizer.json already does when Encode(add_special_tokens=true).
  bool add_bos_token() const { return add_bos_token_; }

 private:
  Tokenizer() = default;
  Status ParseConfig(std::string_view config_json, const std::string& path);
  std::string Decode(std::span<const int32_t> ids, bool skip_special, InvalidUtf8 invalid) const;
  // What `id` adds to the text after `before` (DecodePieces).
  std::string PieceAfter(int32_t before, int32_t id, InvalidUtf8 invalid) const;
  // Normalizes, pre-tokenizes and runs BPE on one segment without added tokens.
  Status EncodePlain(std::string_view text, bool at_input_start, std::vector<int32_t>* ids) const;

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedTokenMatcher raw_added_;         // added tokens matched in the raw text
  AddedTokenMatcher normalized_added_;  // ... and in the normalized text
  StringArena added_text_;              // contents of the added tokens
  std::vector<std::string_view> tokens_;  // id -> string (model vocab + added tokens)
  std::vector<bool> special_;           // id -> added token with special: true
  TokenIndex added_ids_;                // added token content -> id
  std::optional<int32_t> bos_id_, eos_id_;
  bool add_bos_token_ = false;
};

// Turns ids into text as they arrive. Emits text only once it is complete UTF-8: a
// token may end inside a character (Cyrillic, CJK, emoji bytes split across tokens).
// Concatenating every Push() and the final Flush() gives Decode(all ids).
// Method (as HF text-generation-inference): decode a short window of ids that starts
// one emitted token back, so decoders that strip a leading space see context, and emit
// the part beyond what was already emitted unless it ends in U+FFFD (incomplete).
// A run of byte-fallback tokens (<0xHH>) is held until a token ends it: HF decodes the
// run as a whole, so a later byte can turn earlier ones into U+FFFD.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}
  std::string Push(int32_t id);
  // Emits whatever is pending (incomplete bytes as U+FFFD) and resets.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // the window: ids_[0, read_) were emitted already
  size_t read_ = 0;
};

}  // namespace oko
