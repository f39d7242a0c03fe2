#include "loaders/bpe.h"

#include <algorithm>

#include "loaders/tokenizer_components.h"
#include "loaders/utf8.h"

namespace oko {

Result<std::unique_ptr<BpeModel>> BpeModel::Create(
    Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    BpeOptions options) {
  std::unique_ptr<BpeModel> m(new BpeModel(std::move(vocab), options));
  const auto find = [&](std::string_view s) -> int32_t {
    auto it = m->vocab_.find(s);
    return it == m->vocab_.end() ? -1 : it->second;
  };
  m->merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const int32_t a = find(left), b = find(right);
    joined.assign(left).append(right);
    const int32_t c = find(joined);
    if (a < 0 || b < 0 || c < 0) {
      return Errorf("merges[{}] \"{} {}\": token '{}' is not in the vocab", rank, left, right,
                    a < 0 ? left : b < 0 ? right : joined);
    }
    // A repeated pair keeps its last rank, as HF's map construction does.
    m->merges_[PairKey(a, b)] = Merge{static_cast<uint32_t>(rank), c};
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
      auto it = vocab_.find(ch);
      id = it == vocab_.end() ? -1 : it->second;
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

void BpeModel::MergeAll(std::vector<int32_t>* symbols) const {
  std::vector<int32_t>& id = *symbols;
  const int n = static_cast<int>(id.size());
  if (n < 2) return;
  std::vector<int32_t> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // Candidate merges ordered by (rank, position): the lowest rank first, leftmost on ties.
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Candidate> heap;
  const auto push = [&](int32_t pos) {
    const int32_t right = next[pos];
    if (right < 0) return;
    auto it = merges_.find(PairKey(id[pos], id[right]));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, pos, it->second.id});
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate top = heap.back();
    heap.pop_back();
    const int32_t pos = top.pos, right = next[pos];
    // Stale when the symbol was merged away or its right neighbour changed.
    if (id[pos] < 0 || right < 0) continue;
    auto it = merges_.find(PairKey(id[pos], id[right]));
    if (it == merges_.end() || it->second.id != top.merged) continue;
    id[pos] = top.merged;
    id[right] = -1;
    next[pos] = next[right];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    if (prev[pos] >= 0) push(prev[pos]);
    push(pos);
  }
  id.erase(std::remove(id.begin(), id.end(), -1), id.end());
}

Status BpeModel::Tokenize(std::string_view piece, bool byte_level,
                          std::vector<int32_t>* ids) const {
  const bool cacheable = piece.size() <= kMaxCachedBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return {};
    }
  }
  std::vector<int32_t> word;
  if (options_.ignore_merges) {
    std::string key;
    if (byte_level) {
      for (char c : piece) utf8::Append(ByteLevelChar(static_cast<uint8_t>(c)), &key);
    }
    auto it = vocab_.find(byte_level ? std::string_view(key) : piece);
    if (it != vocab_.end()) word.push_back(it->second);
  }
  if (word.empty()) {
    OKO_RETURN_IF_ERROR(InitialSymbols(piece, byte_level, &word));
    MergeAll(&word);
  }
  ids->insert(ids->end(), word.begin(), word.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();  // keep only recent words
    cache_.emplace(piece, std::move(word));
  }
  return {};
}

}  // namespace oko
