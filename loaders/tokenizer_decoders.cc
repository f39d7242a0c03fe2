// The decoders of tokenizer.json (HF tokenizers src/decoders): token strings -> text.
#include <nlohmann/json.hpp>

#include "loaders/tokenizer_components.h"
#include "loaders/tokenizer_json.h"
#include "loaders/utf8.h"

namespace oko {
namespace {

using namespace tokenizer_json;  // NOLINT: the section readers

// Byte-level characters back to bytes, all tokens joined, then lossy UTF-8 (or the bytes
// as they are, InvalidUtf8::kKeep). A token
// with a character outside the alphabet (an added token such as "<|im_end|>" is
// ASCII and maps to itself) contributes its UTF-8 bytes unchanged, as in HF.
class ByteLevelDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens, InvalidUtf8 invalid) const override {
    std::string bytes;
    for (const std::string& t : *tokens) {
      const size_t start = bytes.size();
      size_t pos = 0;
      while (pos < t.size()) {
        const int b = ByteLevelByte(utf8::Next(t, &pos));
        if (b < 0) {
          bytes.resize(start);
          bytes += t;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
    }
    tokens->assign(1, invalid == InvalidUtf8::kKeep ? std::move(bytes) : utf8::Lossy(bytes));
  }
};

// Runs of "<0xXX>" tokens become their bytes when those form valid UTF-8 (or always,
// InvalidUtf8::kKeep), otherwise one U+FFFD per byte token (HF byte_fallback.rs).
class ByteFallbackDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens, InvalidUtf8 invalid) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t n_bytes = 0;
    auto flush = [&] {
      if (n_bytes == 0) return;
      if (invalid == InvalidUtf8::kKeep || utf8::FirstInvalidByte(bytes) == std::string_view::npos) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < n_bytes; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
      n_bytes = 0;
    };
    for (std::string& t : *tokens) {
      const int b = ParseByteToken(t);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
        ++n_bytes;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    *tokens = std::move(out);
  }

 private:
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  static int ParseByteToken(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    const int hi = Hex(t[3]), lo = Hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens, InvalidUtf8) const override {
    std::string all;
    for (const std::string& t : *tokens) all += t;
    tokens->assign(1, std::move(all));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void DecodeChain(std::vector<std::string>* tokens, InvalidUtf8) const override {
    // A literal pattern (the only kind ParseDecoder accepts) cannot fail to match.
    for (std::string& t : *tokens) (void)ReplaceAll(pattern_, content_, &t);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Removes up to `start` leading and `stop` trailing `content` characters of each token.
// Byte-wise (in valid UTF-8 a character's encoding matches only at character boundaries),
// so bytes kept by InvalidUtf8::kKeep pass through.
class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : start_(start), stop_(stop) {
    utf8::Append(content, &content_);
  }
  void DecodeChain(std::vector<std::string>* tokens, InvalidUtf8) const override {
    const size_t n = content_.size();
    for (std::string& t : *tokens) {
      size_t begin = 0, end = t.size();
      for (size_t k = 0; k < start_ && end - begin >= n && t.compare(begin, n, content_) == 0; ++k) begin += n;
      for (size_t k = 0; k < stop_ && end - begin >= n && t.compare(end - n, n, content_) == 0; ++k) end -= n;
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;  // UTF-8
  size_t start_, stop_;
};

// The replacement becomes a space; in the first token it is dropped (the prefix space
// the pre-tokenizer added), unless prepend_scheme is "never" (HF metaspace.rs). Byte-wise,
// as StripDecoder.
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool strip_first) : strip_first_(strip_first) {
    utf8::Append(replacement, &replacement_);
  }
  void DecodeChain(std::vector<std::string>* tokens, InvalidUtf8) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      const std::string& t = (*tokens)[i];
      std::string out;
      for (size_t pos = 0;;) {
        const size_t at = t.find(replacement_, pos);
        out.append(t, pos, at == std::string::npos ? std::string::npos : at - pos);
        if (at == std::string::npos) break;
        if (i != 0 || !strip_first_) out.push_back(' ');
        pos = at + replacement_.size();
      }
      (*tokens)[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;  // UTF-8
  bool strip_first_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void DecodeChain(std::vector<std::string>* tokens, InvalidUtf8 invalid) const override {
    for (const auto& step : steps_) step->DecodeChain(tokens, invalid);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};


}  // namespace

Result<std::unique_ptr<Decoder>> ParseDecoder(const json& j, const std::string& where) {
  if (j.is_null()) return std::unique_ptr<Decoder>();
  OKO_ASSIGN_OR_RETURN(std::string type, TypeOf(j, where));
  std::unique_ptr<Decoder> d;
  if (type == "ByteLevel") {
    d.reset(new ByteLevelDecoder());
  } else if (type == "ByteFallback") {
    d.reset(new ByteFallbackDecoder());
  } else if (type == "Fuse") {
    d.reset(new FuseDecoder());
  } else if (type == "Replace") {
    OKO_ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(j, where, /*allow_regex=*/false));
    OKO_ASSIGN_OR_RETURN(std::string content, StringField(j, "content", where));
    d.reset(new ReplaceDecoder(std::move(pattern), std::move(content)));
  } else if (type == "Strip") {
    OKO_ASSIGN_OR_RETURN(char32_t content, CharField(j, "content", where));
    OKO_ASSIGN_OR_RETURN(int64_t start, IntField(j, "start", where));
    OKO_ASSIGN_OR_RETURN(int64_t stop, IntField(j, "stop", where));
    d.reset(new StripDecoder(content, static_cast<size_t>(start), static_cast<size_t>(stop)));
  } else if (type == "Metaspace") {
    OKO_ASSIGN_OR_RETURN(char32_t replacement, CharField(j, "replacement", where));
    OKO_ASSIGN_OR_RETURN(auto prepend, ParsePrependScheme(j, where));
    d.reset(new MetaspaceDecoder(replacement, prepend != PrependScheme::kNever));
  } else if (type == "Sequence") {
    OKO_ASSIGN_OR_RETURN(auto steps, ParseList<Decoder>(j, "decoders", where, ParseDecoder));
    d.reset(new SequenceDecoder(std::move(steps)));
  } else {
    return Unsupported(where, "decoder", type);
  }
  return d;
}

}  // namespace oko
