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

namespace oko {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  bool byte_fallback = false;  // unknown characters become <0xXX> byte tokens
  bool ignore_merges = false;  // a pre-token that is a whole vocab entry is one token
  bool fuse_unk = false;       // consecutive unknown characters give one unk token
  std::optional<int32_t> unk_id;
};

class BpeModel {
 public:
  // `merges` in rank order (index = rank), as token strings. Errors name the merge.
  static Result<std::unique_ptr<BpeModel>> Create(
      Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
      BpeOptions options);

  // Appends the ids of one pre-token. With `byte_level` each byte of `piece` stands for
  // its byte-level character (ByteLevel pre-tokenizer, applied lazily).
  Status Tokenize(std::string_view piece, bool byte_level, std::vector<int32_t>* ids) const;

  const Vocab& vocab() const { return vocab_; }

 private:
  struct Merge {
    uint32_t rank;
    int32_t id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b);
  }
  BpeModel(Vocab vocab, BpeOptions options) : vocab_(std::move(vocab)), options_(options) {}
  // The word's symbols before any merge.
  Status InitialSymbols(std::string_view piece, bool byte_level, std::vector<int32_t>* out) const;
  void MergeAll(std::vector<int32_t>* symbols) const;

  Vocab vocab_;
  BpeOptions options_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_level_ids_[256];  // vocab id of each byte's byte-level character, or -1
  int32_t byte_fallback_ids_[256];  // vocab id of "<0xXX>", or -1

  // Cache of recent pre-tokens (HF keeps one too): most words repeat.
  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedBytes = 64;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace oko
