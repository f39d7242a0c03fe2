#include "loaders/bpe.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "loaders/tokenizer_components.h"
#include "loaders/utf8.h"

namespace oko {

Result<std::unique_ptr<BpeModel>> BpeModel::Create(
    StringArena arena, TokenIndex vocab,
    const std::vector<std::pair<std::string_view, std::string_view>>& merges,
    BpeOptions options) {
  std::unique_ptr<BpeModel> m(new BpeModel(std::move(arena), std::move(vocab), options));
  const auto find = [&](std::string_view s) { return m->vocab_.Find(s); };
  m->merges_.Reserve(merges.size());
  // In batches: hash and prefetch every lookup of the batch first, so that the cache
  // misses into the 150k-entry tables overlap instead of queueing one after another.
  constexpr size_t kBatch = 16;
  std::string joined;
  size_t offset[kBatch + 1];
  uint64_t hash[kBatch][3];
  int32_t ids[kBatch][3];
  for (size_t base = 0; base < merges.size(); base += kBatch) {
    const size_t n = std::min(kBatch, merges.size() - base);
    joined.clear();
    for (size_t i = 0; i < n; ++i) {
      offset[i] = joined.size();
      joined.append(merges[base + i].first).append(merges[base + i].second);
    }
    offset[n] = joined.size();
    const auto joined_at = [&](size_t i) {
      return std::string_view(joined).substr(offset[i], offset[i + 1] - offset[i]);
    };
    for (size_t i = 0; i < n; ++i) {
      hash[i][0] = HashBytes(merges[base + i].first);
      hash[i][1] = HashBytes(merges[base + i].second);
      hash[i][2] = HashBytes(joined_at(i));
      for (uint64_t h : hash[i]) m->vocab_.Prefetch(h);
    }
    for (size_t i = 0; i < n; ++i) {
      const auto& [left, right] = merges[base + i];
      ids[i][0] = m->vocab_.Find(left, hash[i][0]);
      ids[i][1] = m->vocab_.Find(right, hash[i][1]);
      ids[i][2] = m->vocab_.Find(joined_at(i), hash[i][2]);
      if (ids[i][0] < 0 || ids[i][1] < 0 || ids[i][2] < 0) {
        return Errorf("merges[{}] \"{} {}\": token '{}' is not in the vocab", base + i, left,
                      right, ids[i][0] < 0 ? left : ids[i][1] < 0 ? right : joined_at(i));
      }
      m->merges_.Prefetch(ids[i][0], ids[i][1]);
    }
    // A repeated pair keeps its last rank, as HF's map construction does.
    for (size_t i = 0; i < n; ++i) {
      m->merges_.Insert(ids[i][0], ids[i][1], {static_cast<uint32_t>(base + i), ids[i][2]});
    }
  }
  std::string ch;
  for (int b = 0; b < 256; ++b) {
    ch.clear();
    utf8::Append(ByteLevelChar(static_cast<uint8_t>(b)), &ch);
    m->byte_level_ids_[b] = find(ch);
    m->byte_fallback_ids_[b] = find(fmt::format("<0x{:02X}>", b));
  }
  return m;
}

Status BpeModel::InitialSymbols(std::string_view piece, bool byte_level,
                                std::vector<int32_t>* out) const {
  std::string mapped;
  size_t pos = 0;
  bool previous_unk = false;
  while (pos < piece.size()) {
    const size_t begin = pos;
    int32_t id;
    std::string_view ch;
    if (byte_level) {
      const auto byte = static_cast<uint8_t>(piece[pos++]);
      id = byte_level_ids_[byte];
      if (id < 0) {
        mapped.clear();
        utf8::Append(ByteLevelChar(byte), &mapped);
        ch = mapped;
      }
    } else {
      pos += utf8::SequenceLength(static_cast<unsigned char>(piece[pos]));
      ch = piece.substr(begin, pos - begin);
      id = vocab_.Find(ch);
    }
    if (id >= 0) {
      out->push_back(id);
      previous_unk = false;
      continue;
    }
    // HF uses byte fallback only when every byte of the character has its token.
    if (options_.byte_fallback &&
        std::all_of(ch.begin(), ch.end(),
                    [&](char c) { return byte_fallback_ids_[static_cast<uint8_t>(c)] >= 0; })) {
      for (char c : ch) out->push_back(byte_fallback_ids_[static_cast<uint8_t>(c)]);
      previous_unk = false;
      continue;
    }
    if (!options_.unk_id) {
      return Errorf("character '{}' is not in the vocab and the model has no unk_token", ch);
    }
    if (!(options_.fuse_unk && previous_unk)) out->push_back(*options_.unk_id);
    previous_unk = true;
  }
  return {};
}

void BpeModel::MergeAll(BpeScratch* s) const {
  std::vector<int32_t>& id = s->word;
  const int n = static_cast<int>(id.size());
  if (n < 2) return;
  std::vector<int32_t>& prev = s->prev;
  std::vector<int32_t>& next = s->next;
  prev.resize(n);
  next.resize(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::vector<BpeScratch::Candidate>& heap = s->heap;
  heap.clear();
  const auto push = [&](int32_t pos) {
    const int32_t right = next[pos];
    if (right < 0) return;
    const PairIndex::Value* m = merges_.Find(id[pos], id[right]);
    if (m == nullptr) return;
    heap.push_back({m->rank, pos, id[pos], id[right], m->id});
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  for (int i = 0; i + 1 < n; ++i) merges_.Prefetch(id[i], id[i + 1]);  // overlap the misses
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const BpeScratch::Candidate top = heap.back();
    heap.pop_back();
    const int32_t pos = top.pos, right = next[pos];
    // Stale when the symbol or its right neighbour changed since the push.
    if (id[pos] != top.left || right < 0 || id[right] != top.right) continue;
    id[pos] = top.merged;
    id[right] = -1;
    next[pos] = next[right];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    if (prev[pos] >= 0) push(prev[pos]);
    push(pos);
  }
  id.erase(std::remove(id.begin(), id.end(), -1), id.end());
}

bool BpeModel::CacheLookup(std::string_view piece, uint64_t hash, std::vector<int32_t>* ids) const {
  std::unique_lock<std::mutex> lock(cache_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return false;
  const CacheEntry* set = &cache_[(hash * kCacheWays) & (kCacheEntries - 1)];
  for (size_t way = 0; way < kCacheWays; ++way) {
    const CacheEntry& e = set[way];
    if (e.hash == hash && e.key_len == piece.size() &&
        std::memcmp(e.key, piece.data(), piece.size()) == 0) {
      ids->insert(ids->end(), e.ids, e.ids + e.n_ids);
      return true;
    }
  }
  return false;
}

void BpeModel::CacheStore(std::string_view piece, uint64_t hash,
                          const std::vector<int32_t>& word) const {
  if (word.size() > kCacheIds) return;
  std::unique_lock<std::mutex> lock(cache_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  CacheEntry* set = &cache_[(hash * kCacheWays) & (kCacheEntries - 1)];
  std::copy_backward(set, set + kCacheWays - 1, set + kCacheWays);
  CacheEntry& e = set[0];
  e.hash = hash;
  e.key_len = static_cast<uint8_t>(piece.size());
  e.n_ids = static_cast<uint8_t>(word.size());
  std::memcpy(e.key, piece.data(), piece.size());
  std::copy(word.begin(), word.end(), e.ids);
}

Status BpeModel::Tokenize(std::string_view piece, bool byte_level, BpeScratch* scratch,
                          std::vector<int32_t>* ids) const {
  const bool cacheable = piece.size() <= kCacheKeyBytes;
  const uint64_t hash = cacheable ? HashBytes(piece) : 0;
  if (cacheable && CacheLookup(piece, hash, ids)) return {};
  std::vector<int32_t>& word = scratch->word;
  word.clear();
  if (options_.ignore_merges) {
    std::string key;
    if (byte_level) {
      for (char c : piece) utf8::Append(ByteLevelChar(static_cast<uint8_t>(c)), &key);
    }
    const int32_t id = vocab_.Find(byte_level ? std::string_view(key) : piece);
    if (id >= 0) word.push_back(id);
  }
  if (word.empty()) {
    OKO_RETURN_IF_ERROR(InitialSymbols(piece, byte_level, &word));
    MergeAll(scratch);
  }
  ids->insert(ids->end(), word.begin(), word.end());
  if (cacheable) CacheStore(piece, hash, word);
  return {};
}

}  // namespace oko
