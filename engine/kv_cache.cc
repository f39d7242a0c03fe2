#include "engine/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"
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
  bytes_ = static_cast<size_t>(num_layers_ * kv_heads_ * slots_ * head_dim_) * DTypeSize(dtype_);
  k_ = std::make_unique_for_overwrite<uint8_t[]>(bytes_);
  v_ = std::make_unique_for_overwrite<uint8_t[]>(bytes_);
}

size_t KvCache::bytes() const { return 2 * bytes_; }

void KvCache::Store(int64_t layer, int64_t pos0, int64_t T, const float* k, const float* v) {
  OKO_CHECK(T <= slack_, "batch {} exceeds the KV slack {}", T, slack_);
  const size_t esize = DTypeSize(dtype_);
  const int64_t kv_dim = kv_heads_ * head_dim_;
  for (int64_t h = 0; h < kv_heads_; ++h) {
    auto* kb = static_cast<uint8_t*>(K(layer, h));
    auto* vb = static_cast<uint8_t*>(V(layer, h));
    for (int64_t t = 0; t < T; ++t) {
      const size_t off = static_cast<size_t>(Slot(pos0 + t) * head_dim_) * esize;
      const float* ks = k + t * kv_dim + h * head_dim_;
      const float* vs = v + t * kv_dim + h * head_dim_;
      if (dtype_ == DType::kF32) {
        std::memcpy(kb + off, ks, head_dim_ * 4);
        std::memcpy(vb + off, vs, head_dim_ * 4);
      } else {
        F32ToF16Row(ks, reinterpret_cast<uint16_t*>(kb + off), head_dim_);
        F32ToF16Row(vs, reinterpret_cast<uint16_t*>(vb + off), head_dim_);
      }
    }
  }
}

size_t KvCache::VisibleSpans(int64_t pos, SlotSpan spans[3],
                             std::vector<int64_t>* positions) const {
  size_t n = 0;
  if (positions != nullptr) positions->clear();
  auto add_positions = [&](int64_t first, int64_t last) {  // inclusive, same ring lap
    if (first > last) return;
    spans[n++] = {static_cast<size_t>(Slot(first)), static_cast<size_t>(Slot(last)) + 1};
    if (positions != nullptr)
      for (int64_t p = first; p <= last; ++p) positions->push_back(p);
  };
  const int64_t sink_end = std::min(sink_, pos + 1);
  add_positions(0, sink_end - 1);
  const int64_t window = window_ - sink_;
  const int64_t first = std::max(sink_, pos - window + 1);
  if (first > pos) return n;
  // Split the window where the ring wraps.
  const int64_t lap_end = first + (ring_ - (first - sink_) % ring_) - 1;  // last pos before wrap
  if (lap_end >= pos) {
    add_positions(first, pos);
  } else {
    add_positions(first, lap_end);
    add_positions(lap_end + 1, pos);
  }
  return n;
}

}  // namespace oko
