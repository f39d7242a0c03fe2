#include "loaders/token_index.h"

#include <algorithm>

namespace oko {

std::string_view StringArena::Store(std::string_view s) {
  if (s.empty()) return "";  // a non-null pointer: TokenIndex marks free slots with null
  if (s.size() > capacity_ - used_) {
    capacity_ = std::max(kBlockSize, s.size());
    blocks_.push_back(std::unique_ptr<char[]>(new char[capacity_]));
    used_ = 0;
  }
  char* dst = blocks_.back().get() + used_;
  std::memcpy(dst, s.data(), s.size());
  used_ += s.size();
  return {dst, s.size()};
}

namespace {
// Power-of-two table size for n entries at a load factor of at most 5/8.
size_t SlotsFor(size_t n) {
  size_t slots = 64;
  while (slots * 5 < n * 8) slots *= 2;
  return slots;
}
}  // namespace

void TokenIndex::Reserve(size_t n) {
  if (SlotsFor(n) > slots_.size()) Rehash(SlotsFor(n));
}

void TokenIndex::Insert(std::string_view key, int32_t id, uint64_t h) {
  if (SlotsFor(size_ + 1) > slots_.size()) Rehash(SlotsFor(size_ + 1) * 2);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.data == nullptr) {
      s = Slot{key.data(), static_cast<uint32_t>(key.size()), static_cast<uint32_t>(h), id};
      ++size_;
      return;
    }
    if (s.hash == static_cast<uint32_t>(h) && std::string_view(s.data, s.len) == key) {
      s.id = id;
      return;
    }
  }
}

void TokenIndex::Rehash(size_t slots) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(slots, Slot{});
  mask_ = slots_.size() - 1;
  size_ = 0;
  for (const Slot& s : old)
    if (s.data != nullptr) Insert(std::string_view(s.data, s.len), s.id);
}

void PairIndex::Reserve(size_t n) {
  const size_t cap = SlotsFor(n);
  if (cap <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) Insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key), s.value);
}

void PairIndex::Insert(int32_t a, int32_t b, Value v) {
  if (SlotsFor(size_ + 1) > slots_.size()) Reserve((size_ + 1) * 2);
  const uint64_t key = Key(a, b);
  for (size_t i = Mix(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.value = v;
      return;
    }
    if (s.key == kEmpty) {
      s = Slot{key, v};
      ++size_;
      return;
    }
  }
}

}  // namespace oko
