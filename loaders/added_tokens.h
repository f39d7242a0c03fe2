// Added tokens of tokenizer.json ("added_tokens"): special and user tokens that are
// matched in the text before the BPE model sees it (HF tokenizers added_vocabulary.rs).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace oko {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;      // dropped by Decode(skip_special=true)
  bool lstrip = false;       // the match absorbs whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matches when not inside a word
  bool normalized = false;   // matched in the normalized text instead of the raw text
};

// A piece of text: either plain text [begin, end) or one added token.
struct TextSegment {
  size_t begin = 0, end = 0;
  int32_t token_id = -1;  // -1: plain text
};

// Finds added tokens leftmost-longest, case-sensitive, non-overlapping (HF's
// aho-corasick with MatchKind::LeftmostLongest), then applies each token's flags.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() { by_first_byte_.fill({}); }
  void Add(const AddedToken& token);
  // Splits `text` into plain segments (non-empty) and token matches, in order.
  void Split(std::string_view text, std::vector<TextSegment>* out) const;

 private:
  // Longest match starting at `pos`, or -1.
  int LongestAt(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  // Indices into tokens_ by first byte, longest content first.
  std::array<std::vector<int>, 256> by_first_byte_;
};

}  // namespace oko
