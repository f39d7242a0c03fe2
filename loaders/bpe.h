// BpeModel: the "model" section of a BPE tokenizer.json. Turns one pre-token into ids by
// applying merges lowest rank first (HF tokenizers models/bpe/word.rs, merge_all):
// O(n log n) in the pre-token's length with a heap of candidate pairs and a hash map of
// (left id, right id) -> (rank, merged id). Results of short pre-tokens are cached.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "loaders/token_index.h"

namespace oko {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct BpeOptions {
  bool byte_fallback = false;  // unknown characters become <0xXX> byte tokens
  bool ignore_merges = false;  // a pre-token that is a whole vocab entry is one token
  bool fuse_unk = false;       // consecutive unknown characters give one unk token
  std::optional<int32_t> unk_id;
};

class BpeModel {
 public:
  // `vocab` keys live in `arena`; `merges` in rank order (index = rank), as token
  // strings. Errors name the merge.
  static Result<std::unique_ptr<BpeModel>> Create(
      StringArena arena, TokenIndex vocab,
      const std::vector<std::pair<std::string_view, std::string_view>>& merges,
      BpeOptions options);

  // Appends the ids of one pre-token. With `byte_level` each byte of `piece` stands for
  // its byte-level character (ByteLevel pre-tokenizer, applied lazily).
  Status Tokenize(std::string_view piece, bool byte_level, std::vector<int32_t>* ids) const;

  const TokenIndex& vocab() const { return vocab_; }

 private:
  BpeModel(StringArena arena, TokenIndex vocab, BpeOptions options)
      : arena_(std::move(arena)), vocab_(std::move(vocab)), options_(options) {}
  // The word's symbols before any merge.
  Status InitialSymbols(std::string_view piece, bool byte_level, std::vector<int32_t>* out) const;
  void MergeAll(std::vector<int32_t>* symbols) const;

  StringArena arena_;  // the vocab's strings
  TokenIndex vocab_;
  BpeOptions options_;
  PairIndex merges_;
  int32_t byte_level_ids_[256];  // vocab id of each byte's byte-level character, or -1
  int32_t byte_fallback_ids_[256];  // vocab id of "<0xXX>", or -1

  // Cache of recent pre-tokens (HF keeps one too): most words repeat.
  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedBytes = 64;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace oko
