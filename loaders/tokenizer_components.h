// The pipeline stages of a Hugging Face tokenizer.json, built from its JSON sections
// (https://huggingface.co/docs/tokenizers/components): normalizers, pre-tokenizers,
// post-processors and decoders. Each Parse* function reads one section (a small JSON
// object) and fails with a message naming the section path and the field, e.g.
// "pre_tokenizer.pretokenizers[0]: type 'Digits' is not supported". A type that is not
// implemented is always an error, never silently ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace oko {

// GPT-2's bytes_to_unicode: every byte gets a printable character (printable ASCII and
// Latin-1 map to themselves, the rest to U+0100..U+0143).
char32_t ByteLevelChar(uint8_t byte);
// The byte a byte-level character stands for, or -1 for other characters.
int ByteLevelByte(char32_t cp);

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual Status Apply(std::string* text) const = 0;
};

// The pre-tokenized form of one text segment: pieces are [begin, end) byte ranges of
// `text`, in order. `byte_level` means the ByteLevel pre-tokenizer has run lazily: each
// byte of a piece stands for its byte-level character (see ByteLevelChar). Keeping raw
// bytes lets the BPE model map bytes to ids with a table instead of decoding chars.
struct PreTokens {
  std::string text;
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  bool byte_level = false;
  bool at_input_start = true;  // the segment starts at offset 0 of the input text

  std::string_view Piece(size_t i) const {
    return std::string_view(text).substr(pieces[i].first, pieces[i].second - pieces[i].first);
  }
  // Rewrites `text` into byte-level characters (needed before a later stage reads it).
  void MaterializeByteLevel();
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual Status Apply(PreTokens* p) const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of a single sequence (add_special_tokens=true).
  virtual void Process(std::vector<int32_t>* ids) const = 0;
};

// What decoding does with bytes that do not form valid UTF-8 (byte-level and byte-fallback
// tokens can each stand for part of a character): U+FFFD, as HF does, or keep them (the
// raw bytes the tokens stand for).
enum class InvalidUtf8 { kReplace, kKeep };

class Decoder {
 public:
  virtual ~Decoder() = default;
  // HF decode_chain: token strings in, token strings out (later stages see the result).
  virtual void DecodeChain(std::vector<std::string>* tokens, InvalidUtf8 invalid) const = 0;
};

// `where` names the section for messages ("normalizer", "decoder.decoders[2]", ...).
// A null section gives a null pointer.
Result<std::unique_ptr<Normalizer>> ParseNormalizer(const nlohmann::json& j,
                                                    const std::string& where);
Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const nlohmann::json& j,
                                                        const std::string& where);
Result<std::unique_ptr<PostProcessor>> ParsePostProcessor(const nlohmann::json& j,
                                                          const std::string& where);
Result<std::unique_ptr<Decoder>> ParseDecoder(const nlohmann::json& j, const std::string& where);

}  // namespace oko
