// BpeModel: the "model" section of a BPE tokenizer.json. Turns one pre-token into ids by
// applying merges lowest rank first (HF tokenizers models/bpe/word.rs, merge_all):
// O(n log n) in the pre-token's length with a heap of candidate pairs and a hash map of
// (left id, right id) -> (rank, merged id). Results of short pre-tokens are cached.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "loaders/token_index.h"

namespace oko {

struct BpeOptions {
  bool byte_fallback = false;  // unknown characters become <0xXX> byte tokens
  bool ignore_merges = false;  // a pre-token that is a whole vocab entry is one token
  bool fuse_unk = false;       // consecutive unknown characters give one unk token
  std::optional<int32_t> unk_id;
};

// Working memory of one Encode call, reused across its pre-tokens.
struct BpeScratch {
  struct Candidate {  // a possible merge of the symbol at `pos` with its right neighbour
    uint32_t rank;
    int32_t pos;
    int32_t left, right;  // the pair's ids when pushed (stale if they changed)
    int32_t merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;  // lowest rank, then leftmost
    }
  };
  std::vector<int32_t> word, prev, next;
  std::vector<Candidate> heap;
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
  Status Tokenize(std::string_view piece, bool byte_level, BpeScratch* scratch,
                  std::vector<int32_t>* ids) const;

  const TokenIndex& vocab() const { return vocab_; }

 private:
  // Two-way set-associative cache of recent short pre-tokens and their ids, one cache
  // line per entry (HF keeps a word cache too: most words repeat). A new word takes way
  // 0 and moves the previous one to way 1, so each set keeps its two most recent words.
  static constexpr size_t kCacheKeyBytes = 22;
  static constexpr size_t kCacheIds = 8;
  static constexpr size_t kCacheEntries = 1 << 16;  // 4 MiB
  static constexpr size_t kCacheWays = 2;
  struct CacheEntry {
    uint64_t hash = 0;
    uint8_t key_len = 0;  // 0: empty (pieces are never empty)
    uint8_t n_ids = 0;
    char key[kCacheKeyBytes];
    int32_t ids[kCacheIds];
  };

  BpeModel(StringArena arena, TokenIndex vocab, BpeOptions options)
      : arena_(std::move(arena)), vocab_(std::move(vocab)), options_(options) {}
  // The word's symbols before any merge.
  Status InitialSymbols(std::string_view piece, bool byte_level, std::vector<int32_t>* out) const;
  void MergeAll(BpeScratch* s) const;
  bool CacheLookup(std::string_view piece, uint64_t hash, std::vector<int32_t>* ids) const;
  void CacheStore(std::string_view piece, uint64_t hash, const std::vector<int32_t>& word) const;

  StringArena arena_;  // the vocab's strings
  TokenIndex vocab_;
  BpeOptions options_;
  PairIndex merges_;
  int32_t byte_level_ids_[256];     // vocab id of each byte's byte-level character, or -1
  int32_t byte_fallback_ids_[256];  // vocab id of "<0xXX>", or -1

  // Concurrent Encode calls share the cache; one that finds it locked skips it.
  mutable std::mutex cache_mu_;
  std::unique_ptr<CacheEntry[]> cache_{new CacheEntry[kCacheEntries]};
};

}  // namespace oko
