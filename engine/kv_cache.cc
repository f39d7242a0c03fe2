#include "engine/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "common/mapped_file.h"
#include "ops/elementwise.h"

namespace oko {

KvCache::KvCache(int64_t num_layers, int64_t kv_heads, int64_t head_dim, int64_t capacity,
                 int64_t window, int64_t sink, int64_t max_batch, DType dtype)
    : num_layers_(num_layers),
      kv_heads_(kv_heads),
      head_dim_(head_dim),
      capacity_(capacity),
      window_(window == 0 ? capacity : std::min(window, capacity)),
      sink_(std::min(sink, window_ - 1)),
      slack_(max_batch),
      dtype_(dtype) {
  OKO_CHECK(capacity >= 2 && max_batch >= 1 && sink >= 0, "capacity {} batch {} sink {}",
            capacity, max_batch, sink);
  OKO_CHECK(dtype == DType::kF32 || dtype == DType::kF16, "KV dtype must be f32 or f16");
  ring_ = capacity_ - sink_ + slack_;
  slots_ = sink_ + ring_;
  size_t chunk_log2 = 0;  // a small cache is one chunk of its slots, rounded up to a power of 2
  while (chunk_log2 < kChunkSlotsLog2 && (int64_t{1} << chunk_log2) < slots_) ++chunk_log2;
  const auto chunk_slots = int64_t{1} << chunk_log2;
  const auto pieces = static_cast<size_t>(num_layers_ * kv_heads_);
  const auto row = static_cast<size_t>(head_dim_);
  rows_ = {row, chunk_log2, pieces * row << chunk_log2};
  const auto chunks = static_cast<size_t>((slots_ + chunk_slots - 1) / chunk_slots);
  bytes_ = chunks * rows_.chunk_stride * DTypeSize(dtype_);
  const size_t first_chunk = rows_.chunk_stride * DTypeSize(dtype_);  // on small pages: see the header
  k_ = AllocateStreamedBytes(bytes_, first_chunk);
  v_ = AllocateStreamedBytes(bytes_, first_chunk);
}

size_t KvCache::bytes() const { return 2 * bytes_; }

void KvCache::Commit(int64_t n) {
  const int64_t slots = std::min(n, slots_);
  if (slots <= 0 || !allocated()) return;
  const int64_t chunk_slots = int64_t{1} << rows_.chunk_log2;
  const auto chunks = static_cast<size_t>((slots + chunk_slots - 1) / chunk_slots);
  const size_t bytes = std::min(bytes_, chunks * rows_.chunk_stride * DTypeSize(dtype_));
  CommitPages(k_.get(), bytes);
  CommitPages(v_.get(), bytes);
}

void KvCache::Store(int64_t layer, int64_t pos0, int64_t T, const float* k, const float* v) {
  for (int64_t h = 0; h < kv_heads_; ++h) StoreHead(layer, h, pos0, T, k, v);
}

void KvCache::StoreHead(int64_t layer, int64_t head, int64_t pos0, int64_t T, const float* k, const float* v) {
  OKO_CHECK(T <= slack_, "batch {} exceeds the KV slack {}", T, slack_);
  const size_t esize = DTypeSize(dtype_);
  const int64_t kv_dim = kv_heads_ * head_dim_;
  auto* kb = static_cast<uint8_t*>(K(layer, head));
  auto* vb = static_cast<uint8_t*>(V(layer, head));
  for (int64_t t = 0; t < T; ++t) {
    const size_t off = rows_.Offset(static_cast<size_t>(Slot(pos0 + t))) * esize;
    const float* ks = k + t * kv_dim + head * head_dim_;
    const float* vs = v + t * kv_dim + head * head_dim_;
    if (dtype_ == DType::kF32) {
      std::memcpy(kb + off, ks, head_dim_ * 4);
      std::memcpy(vb + off, vs, head_dim_ * 4);
    } else {
      F32ToF16Row(ks, reinterpret_cast<uint16_t*>(kb + off), head_dim_);
      F32ToF16Row(vs, reinterpret_cast<uint16_t*>(vb + off), head_dim_);
    }
  }
}

size_t KvCache::AddWindowSpans(int64_t first, int64_t last, SlotSpan* spans, size_t n) const {
  if (first > last) return n;
  const int64_t lap_end = first + (ring_ - (first - sink_) % ring_) - 1;  // last pos before wrap
  auto add = [&](int64_t a, int64_t b) {
    spans[n++] = {static_cast<size_t>(Slot(a)), static_cast<size_t>(Slot(b)) + 1};
  };
  if (lap_end >= last) {
    add(first, last);
  } else {
    add(first, lap_end);
    add(lap_end + 1, last);
  }
  return n;
}

size_t KvCache::VisibleSpans(int64_t pos, SlotSpan spans[3],
                             std::vector<int64_t>* positions) const {
  const int64_t sink_end = std::min(sink_, pos + 1), first = WindowStart(pos);
  size_t n = 0;
  if (sink_end > 0) spans[n++] = {0, static_cast<size_t>(sink_end)};
  n = AddWindowSpans(first, pos, spans, n);
  if (positions != nullptr) {
    positions->clear();
    for (int64_t p = 0; p < sink_end; ++p) positions->push_back(p);
    for (int64_t p = first; p <= pos; ++p) positions->push_back(p);
  }
  return n;
}

size_t KvCache::BlockSpans(int64_t first, int64_t last, SlotSpan spans[3], KeyColumns* keys,
                           std::vector<int64_t>* positions) const {
  const int64_t sink_end = std::min(sink_, last + 1), window_first = WindowStart(first);
  OKO_CHECK(last - window_first < ring_, "block {}..{} attends more keys than the ring holds",
            first, last);
  size_t n = 0;
  if (sink_end > 0) spans[n++] = {0, static_cast<size_t>(sink_end)};
  n = AddWindowSpans(window_first, last, spans, n);
  for (int64_t pos = first; pos <= last; ++pos) {
    KeyColumns& k = keys[pos - first];
    if (pos < sink_) {
      k = {static_cast<size_t>(pos + 1), 0, 0};
    } else {
      k.hole_begin = static_cast<size_t>(sink_end);
      k.hole_end = k.hole_begin + static_cast<size_t>(WindowStart(pos) - window_first);
      k.end = k.hole_begin + static_cast<size_t>(pos - window_first + 1);
    }
  }
  if (positions != nullptr) {
    positions->clear();
    for (int64_t p = 0; p < sink_end; ++p) positions->push_back(p);
    for (int64_t p = window_first; p <= last; ++p) positions->push_back(p);
  }
  return n;
}

}  // namespace oko
