// Normalizers, pre-tokenizers and post-processors of tokenizer.json (HF tokenizers
// src/{normalizers,pre_tokenizers,processors}); decoders are in tokenizer_decoders.cc.
#include "loaders/tokenizer_components.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdlib>

#include "loaders/tokenizer_json.h"
#include "loaders/utf8.h"

namespace oko {
namespace {

using namespace tokenizer_json;  // NOLINT: the section readers
using Span = Regex::Span;

// ---- Normalizers -----------------------------------------------------------------

// NFC, NFD, NFKC, NFKD through utf8proc. Runs of ASCII are copied as they are: an
// ASCII character is a starter that no normalization form changes and that blocks
// reordering and composition across it, so text splits there into independent parts.
// Only the last ASCII character before a non-ASCII run goes with the run (it may
// compose with a following mark: e + U+0301 = é).
class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  Status Apply(std::string* text) const override {
    const std::string& s = *text;
    size_t i = 0;
    while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
    if (i == s.size()) return {};
    std::string out;
    out.reserve(s.size() + s.size() / 8);
    i = 0;
    while (i < s.size()) {
      size_t j = i;
      while (j < s.size() && static_cast<unsigned char>(s[j]) < 0x80) ++j;
      if (j == s.size()) {
        out.append(s, i, j - i);
        break;
      }
      const size_t run_begin = j > i ? j - 1 : j;
      out.append(s, i, run_begin - i);
      size_t k = j;
      while (k < s.size() && static_cast<unsigned char>(s[k]) >= 0x80) ++k;
      utf8proc_uint8_t* dst = nullptr;
      const utf8proc_ssize_t n =
          utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + run_begin),
                       static_cast<utf8proc_ssize_t>(k - run_begin), &dst,
                       static_cast<utf8proc_option_t>(options_));
      if (n < 0) return Errorf("Unicode normalization failed: {}", utf8proc_errmsg(n));
      out.append(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
      std::free(dst);
      i = k;
    }
    *text = std::move(out);
    return {};
  }

 private:
  int options_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  Status Apply(std::string* text) const override {
    if (!text->empty()) text->insert(0, prepend_);  // HF: an empty text stays empty
    return {};
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status Apply(std::string* text) const override { return ReplaceAll(pattern_, content_, text); }

 private:
  Pattern pattern_;
  std::string content_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  Status Apply(std::string* text) const override {
    for (const auto& step : steps_) OKO_RETURN_IF_ERROR(step->Apply(text));
    return {};
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// ---- Pre-tokenizers --------------------------------------------------------------

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Result<Behavior> ParseBehavior(const json& j, const std::string& where) {
  OKO_ASSIGN_OR_RETURN(std::string b, StringField(j, "behavior", where));
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  return Errorf("{}: unknown split behavior '{}'", where, b);
}

struct Part {
  Span span;
  bool is_match;
};

// Cuts [begin, end) at `matches` (relative offsets, sorted, disjoint) into alternating
// match / non-match parts, then combines them as HF's SplitDelimiterBehavior does
// (tokenizers/src/tokenizer/normalizer.rs, NormalizedString::split). Appends the
// non-empty resulting pieces (absolute offsets) to *out.
void SplitByMatches(uint32_t begin, uint32_t end, const std::vector<Span>& matches, bool invert,
                    Behavior behavior, std::vector<std::pair<uint32_t, uint32_t>>* out) {
  std::vector<Part> parts;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) parts.push_back({{prev, b}, invert});
    parts.push_back({{b, e}, !invert});
    prev = e;
  }
  if (begin + prev < end) parts.push_back({{prev, end - begin}, invert});

  std::vector<Part> merged;
  switch (behavior) {
    case Behavior::kIsolated:
      merged = std::move(parts);
      break;
    case Behavior::kRemoved:
      for (const Part& p : parts)
        if (!p.is_match) merged.push_back(p);
      break;
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !merged.empty()) {
          merged.back().span.second = p.span.second;
        } else {
          merged.push_back(p);
        }
        previous_match = p.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) {
          merged.back().span.first = it->span.first;
        } else {
          merged.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match == previous_match && !merged.empty()) {
          merged.back().span.second = p.span.second;
        } else {
          merged.push_back(p);
        }
        previous_match = p.is_match;
      }
      break;
    }
  }
  for (const Part& p : merged) {
    if (p.span.second > p.span.first) {
      out->emplace_back(begin + static_cast<uint32_t>(p.span.first),
                        begin + static_cast<uint32_t>(p.span.second));
    }
  }
}

// Splits every piece of *p at the matches of `pattern`.
Status SplitPieces(const Pattern& pattern, bool invert, Behavior behavior, PreTokens* p) {
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  pieces.reserve(p->pieces.size() + p->text.size() / 4);
  std::vector<Span> matches;
  for (size_t i = 0; i < p->pieces.size(); ++i) {
    matches.clear();
    OKO_RETURN_IF_ERROR(pattern.FindAll(p->Piece(i), &matches));
    SplitByMatches(p->pieces[i].first, p->pieces[i].second, matches, invert, behavior, &pieces);
  }
  p->pieces = std::move(pieces);
  return {};
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  Status Apply(PreTokens* p) const override {
    if (p->byte_level) p->MaterializeByteLevel();
    return SplitPieces(pattern_, invert_, behavior_, p);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's pattern, used by ByteLevel when use_regex is true (HF byte_level.rs).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, Pattern gpt2)
      : add_prefix_space_(add_prefix_space), gpt2_(std::move(gpt2)) {}
  Status Apply(PreTokens* p) const override {
    if (p->byte_level) p->MaterializeByteLevel();
    if (add_prefix_space_) {
      PreTokens q;
      q.at_input_start = p->at_input_start;
      for (size_t i = 0; i < p->pieces.size(); ++i) {
        const std::string_view piece = p->Piece(i);
        const auto begin = static_cast<uint32_t>(q.text.size());
        if (piece.empty() || piece[0] != ' ') q.text += ' ';
        q.text += piece;
        q.pieces.emplace_back(begin, static_cast<uint32_t>(q.text.size()));
      }
      *p = std::move(q);
    }
    if (gpt2_.regex) OKO_RETURN_IF_ERROR(SplitPieces(gpt2_, false, Behavior::kIsolated, p));
    p->byte_level = true;
    return {};
  }

 private:
  bool add_prefix_space_;
  Pattern gpt2_;  // no regex when use_regex is false
};

// SentencePiece-style spaces: ' ' becomes the replacement (U+2581), optionally
// prepended, and pieces start at each replacement (HF metaspace.rs).
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {
    pattern_.literal = replacement_;
  }
  Status Apply(PreTokens* p) const override {
    if (p->byte_level) p->MaterializeByteLevel();
    PreTokens q;
    q.at_input_start = p->at_input_start;
    std::vector<Span> matches;
    for (size_t i = 0; i < p->pieces.size(); ++i) {
      std::string piece(p->Piece(i));
      size_t pos = 0;
      while ((pos = piece.find(' ', pos)) != std::string::npos) {
        piece.replace(pos, 1, replacement_);
        pos += replacement_.size();
      }
      const bool first = p->at_input_start && i == 0;
      if ((prepend_ == PrependScheme::kAlways || (prepend_ == PrependScheme::kFirst && first)) &&
          piece.rfind(replacement_, 0) != 0) {
        piece.insert(0, replacement_);
      }
      const auto begin = static_cast<uint32_t>(q.text.size());
      q.text += piece;
      const auto end = static_cast<uint32_t>(q.text.size());
      if (!split_) {
        if (end > begin) q.pieces.emplace_back(begin, end);
        continue;
      }
      matches.clear();
      OKO_RETURN_IF_ERROR(pattern_.FindAll(piece, &matches));
      SplitByMatches(begin, end, matches, false, Behavior::kMergedWithNext, &q.pieces);
    }
    *p = std::move(q);
    return {};
  }

 private:
  std::string replacement_;
  PrependScheme prepend_;
  bool split_;
  Pattern pattern_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  Status Apply(PreTokens* p) const override {
    for (const auto& step : steps_) OKO_RETURN_IF_ERROR(step->Apply(p));
    return {};
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

// ---- Post-processors -------------------------------------------------------------

// TemplateProcessing's "single" template: special token ids around the sequence "A".
class TemplatePostProcessor : public PostProcessor {
 public:
  struct Item {
    bool is_sequence;
    std::vector<int32_t> ids;  // for special tokens
  };
  explicit TemplatePostProcessor(std::vector<Item> items) : items_(std::move(items)) {}
  void Process(std::vector<int32_t>* ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids->size() + items_.size());
    for (const Item& item : items_) {
      if (item.is_sequence) {
        out.insert(out.end(), ids->begin(), ids->end());
      } else {
        out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
    }
    *ids = std::move(out);
  }

 private:
  std::vector<Item> items_;
};

// ByteLevel's post-processing only trims offsets, which oko does not report.
class NoOpPostProcessor : public PostProcessor {
 public:
  void Process(std::vector<int32_t>*) const override {}
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void Process(std::vector<int32_t>* ids) const override {
    for (const auto& step : steps_) step->Process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

Result<std::unique_ptr<PostProcessor>> ParseTemplate(const json& j, const std::string& where) {
  OKO_ASSIGN_OR_RETURN(const json* single, ArrayField(j, "single", where));
  OKO_ASSIGN_OR_RETURN(const json* specials, Field(j, "special_tokens", where));
  if (!specials->is_object()) return Errorf("{}: 'special_tokens' must be an object", where);
  std::vector<TemplatePostProcessor::Item> items;
  for (size_t i = 0; i < single->size(); ++i) {
    const json& item = (*single)[i];
    const std::string at = fmt::format("{}.single[{}]", where, i);
    if (item.is_object() && item.contains("Sequence")) {
      items.push_back({true, {}});
      continue;
    }
    if (!item.is_object() || !item.contains("SpecialToken"))
      return Errorf("{}: expected {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}}", at);
    OKO_ASSIGN_OR_RETURN(std::string name, StringField(item["SpecialToken"], "id", at));
    auto it = specials->find(name);
    if (it == specials->end())
      return Errorf("{}: special token '{}' is not in 'special_tokens'", at, name);
    const std::string sat = fmt::format("{}.special_tokens['{}']", where, name);
    OKO_ASSIGN_OR_RETURN(const json* ids, ArrayField(*it, "ids", sat));
    TemplatePostProcessor::Item special{false, {}};
    for (const json& id : *ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        return Errorf("{}: 'ids' must hold token ids, got {}", sat, id.dump());
      special.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    items.push_back(std::move(special));
  }
  return std::unique_ptr<PostProcessor>(new TemplatePostProcessor(std::move(items)));
}

}  // namespace

char32_t ByteLevelChar(uint8_t byte) {
  static const auto* table = [] {
    auto* t = new std::array<char32_t, 256>();
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      (*t)[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return (*table)[byte];
}

int ByteLevelByte(char32_t cp) {
  static const auto* table = [] {
    auto* t = new std::array<int16_t, 324>();
    t->fill(-1);
    for (int b = 0; b < 256; ++b) (*t)[ByteLevelChar(static_cast<uint8_t>(b))] = static_cast<int16_t>(b);
    return t;
  }();
  return cp < table->size() ? (*table)[cp] : -1;
}

void PreTokens::MaterializeByteLevel() {
  std::string mapped;
  mapped.reserve(text.size() * 2);
  std::vector<uint32_t> offset(text.size() + 1);
  for (size_t i = 0; i < text.size(); ++i) {
    offset[i] = static_cast<uint32_t>(mapped.size());
    utf8::Append(ByteLevelChar(static_cast<uint8_t>(text[i])), &mapped);
  }
  offset[text.size()] = static_cast<uint32_t>(mapped.size());
  for (auto& [b, e] : pieces) {
    b = offset[b];
    e = offset[e];
  }
  text = std::move(mapped);
  byte_level = false;
}

Result<std::unique_ptr<Normalizer>> ParseNormalizer(const json& j, const std::string& where) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  OKO_ASSIGN_OR_RETURN(std::string type, TypeOf(j, where));
  std::unique_ptr<Normalizer> n;
  if (type == "NFC") {
    n.reset(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  } else if (type == "NFD") {
    n.reset(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
  } else if (type == "NFKC") {
    n.reset(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  } else if (type == "NFKD") {
    n.reset(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  } else if (type == "Prepend") {
    OKO_ASSIGN_OR_RETURN(std::string prepend, StringField(j, "prepend", where));
    n.reset(new PrependNormalizer(std::move(prepend)));
  } else if (type == "Replace") {
    OKO_ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(j, where, /*allow_regex=*/true));
    OKO_ASSIGN_OR_RETURN(std::string content, StringField(j, "content", where));
    n.reset(new ReplaceNormalizer(std::move(pattern), std::move(content)));
  } else if (type == "Sequence") {
    OKO_ASSIGN_OR_RETURN(auto steps, ParseList<Normalizer>(j, "normalizers", where, ParseNormalizer));
    n.reset(new SequenceNormalizer(std::move(steps)));
  } else {
    return Unsupported(where, "normalizer", type);
  }
  return n;
}

Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return std::unique_ptr<PreTokenizer>();
  OKO_ASSIGN_OR_RETURN(std::string type, TypeOf(j, where));
  std::unique_ptr<PreTokenizer> p;
  if (type == "Split") {
    OKO_ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(j, where, /*allow_regex=*/true));
    OKO_ASSIGN_OR_RETURN(Behavior behavior, ParseBehavior(j, where));
    OKO_ASSIGN_OR_RETURN(bool invert, BoolField(j, "invert", where, false));
    p.reset(new SplitPreTokenizer(std::move(pattern), behavior, invert));
  } else if (type == "ByteLevel") {
    OKO_ASSIGN_OR_RETURN(bool add_prefix_space, BoolField(j, "add_prefix_space", where, true));
    OKO_ASSIGN_OR_RETURN(bool use_regex, BoolField(j, "use_regex", where, true));
    Pattern gpt2;
    if (use_regex) {
      OKO_ASSIGN_OR_RETURN(gpt2.regex, Regex::Compile(kGpt2Pattern));
    }
    p.reset(new ByteLevelPreTokenizer(add_prefix_space, std::move(gpt2)));
  } else if (type == "Metaspace") {
    OKO_ASSIGN_OR_RETURN(std::string replacement, StringField(j, "replacement", where));
    OKO_ASSIGN_OR_RETURN(auto prepend, ParsePrependScheme(j, where));
    OKO_ASSIGN_OR_RETURN(bool split, BoolField(j, "split", where, true));
    p.reset(new MetaspacePreTokenizer(std::move(replacement), prepend, split));
  } else if (type == "Sequence") {
    OKO_ASSIGN_OR_RETURN(auto steps,
                         ParseList<PreTokenizer>(j, "pretokenizers", where, ParsePreTokenizer));
    p.reset(new SequencePreTokenizer(std::move(steps)));
  } else {
    return Unsupported(where, "pre-tokenizer", type);
  }
  return p;
}

Result<std::unique_ptr<PostProcessor>> ParsePostProcessor(const json& j, const std::string& where) {
  if (j.is_null()) return std::unique_ptr<PostProcessor>();
  OKO_ASSIGN_OR_RETURN(std::string type, TypeOf(j, where));
  if (type == "TemplateProcessing") return ParseTemplate(j, where);
  if (type == "ByteLevel") return std::unique_ptr<PostProcessor>(new NoOpPostProcessor());
  if (type == "Sequence") {
    OKO_ASSIGN_OR_RETURN(auto steps,
                         ParseList<PostProcessor>(j, "processors", where, ParsePostProcessor));
    return std::unique_ptr<PostProcessor>(new SequencePostProcessor(std::move(steps)));
  }
  return Unsupported(where, "post-processor", type);
}


}  // namespace oko
