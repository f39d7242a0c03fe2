// Flat open-addressing hash tables for the tokenizer's vocabulary (string -> id) and
// merges ((left id, right id) -> (rank, merged id)). A 150k-token vocabulary in
// std::unordered_map costs a node allocation per entry and a cache miss per probe;
// loading and BPE are dominated by these lookups, so the tables keep everything in
// one array with linear probing. Keys of TokenIndex live in a StringArena.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

namespace oko {

// A fast 64-bit hash of bytes (multiply-xorshift over 8-byte words); token strings
// are short, and std::hash's byte loop showed up in profiles.
inline uint64_t HashBytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
  }
  uint64_t w = 0;
  std::memcpy(&w, s.data() + i, s.size() - i);
  h = (h ^ w) * 0x94D049BB133111EBULL;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  return h ^ (h >> 32);
}

// Append-only storage for strings with stable addresses (views stay valid when the
// arena is moved).
class StringArena {
 public:
  std::string_view Store(std::string_view s);

 private:
  static constexpr size_t kBlockSize = 1 << 20;
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t capacity_ = 0;  // of the last block
  size_t used_ = 0;      // bytes used in the last block
};

class TokenIndex {
 public:
  // Room for n entries without rehashing.
  void Reserve(size_t n);
  // `key` must outlive the index. A repeated key keeps the last id.
  void Insert(std::string_view key, int32_t id) { Insert(key, id, HashBytes(key)); }
  void Insert(std::string_view key, int32_t id, uint64_t hash);
  // The id of `key`, or -1.
  int32_t Find(std::string_view key) const { return Find(key, HashBytes(key)); }
  // Find with hash = HashBytes(key) precomputed. Hashing a batch of keys and calling
  // Prefetch for each before the lookups overlaps their cache misses (bulk loading).
  int32_t Find(std::string_view key, uint64_t hash) const {
    if (slots_.empty()) return -1;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.data == nullptr) return -1;
      if (s.hash == static_cast<uint32_t>(hash) && s.len == key.size() &&
          std::memcmp(s.data, key.data(), key.size()) == 0) {
        return s.id;
      }
    }
  }
  void Prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
  }
  // Calls fn(key, id) for every entry, in no particular order.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const Slot& s : slots_)
      if (s.data != nullptr) fn(std::string_view(s.data, s.len), s.id);
  }

 private:
  struct Slot {
    const char* data = nullptr;
    uint32_t len = 0;
    uint32_t hash = 0;
    int32_t id = -1;
  };
  void Rehash(size_t slots);

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

class PairIndex {
 public:
  struct Value {
    uint32_t rank;
    int32_t id;
  };
  void Reserve(size_t n);
  // A repeated pair keeps the last value.
  void Insert(int32_t a, int32_t b, Value v);
  void Prefetch(int32_t a, int32_t b) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Mix(Key(a, b)) & mask_]);
  }
  // The value for (a, b), or nullptr.
  const Value* Find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = Key(a, b);
    for (size_t i = Mix(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    Value value{};
  };
  static uint64_t Key(int32_t a, int32_t b) {
    return static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b);
  }
  static uint64_t Mix(uint64_t k) {  // murmur3 finalizer
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    return k ^ (k >> 33);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace oko
