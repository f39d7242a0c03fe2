// KvCache: per layer, K and V of `capacity` positions in a ring buffer (f32 or f16).
//
// Keys are stored after RoPE at their absolute positions, so nothing is recomputed when
// the ring wraps: the oldest positions are overwritten and attention continues as a
// sliding window over the last `capacity` positions, of which the first `sink` (the
// StreamingLLM attention sinks) are never evicted.
//
// Physical layout: [layer][kv head][slot][head_dim], head-major so that one head's keys
// are one contiguous stream for attention (1.7-2x faster at 4k context than slot-major,
// measured in bench/ops/attention_bench). Slots: `sink` fixed, then a ring of
// window + slack. The slack is
// the largest batch written at once: a prefill chunk writes its keys before its queries
// attend, and the chunk's first query must still see the keys the chunk's last writes
// would otherwise overwrite.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/dtype.h"
#include "ops/attention.h"

namespace oko {

class KvCache {
 public:
  // window (<= capacity, 0 = capacity): how many positions a query attends, sinks
  // included. A smaller window than capacity is a sliding-window mask over a cache that
  // has not wrapped; tests compare it with a wrapped ring of capacity == window.
  KvCache(int64_t num_layers, int64_t kv_heads, int64_t head_dim, int64_t capacity,
          int64_t window, int64_t sink, int64_t max_batch, DType dtype);

  int64_t capacity() const { return capacity_; }
  int64_t window() const { return window_; }
  int64_t sink() const { return sink_; }
  int64_t max_batch() const { return slack_; }
  int64_t ring() const { return ring_; }  // slots after the sinks, window + slack
  DType dtype() const { return dtype_; }
  int64_t kv_dim() const { return kv_heads_ * head_dim_; }
  int64_t head_dim() const { return head_dim_; }
  size_t bytes() const;

  // The physical slot of absolute position `pos`.
  int64_t Slot(int64_t pos) const {
    return pos < sink_ ? pos : sink_ + (pos - sink_) % ring_;
  }
  // Element pointers to slot 0 of (layer, kv head); slot j is at + j * head_dim().
  void* K(int64_t layer, int64_t head) { return Base(k_, layer, head); }
  void* V(int64_t layer, int64_t head) { return Base(v_, layer, head); }
  // Stores rows [T, kv_dim] of k and v (f32) at positions pos0 .. pos0+T-1 (T <= max_batch()).
  void Store(int64_t layer, int64_t pos0, int64_t T, const float* k, const float* v);

  // The slot spans a query at absolute position `pos` attends (causal, window, sinks),
  // oldest first. Returns their count (<= 3); `positions` (optional) receives the
  // absolute position of every visible key in span order.
  size_t VisibleSpans(int64_t pos, SlotSpan spans[3], std::vector<int64_t>* positions) const;
  // For the consecutive query positions first..last (a prefill block): the spans of the
  // union of the keys they attend (sinks, then the window, oldest first; returns their
  // count <= 3) and, in keys[pos - first], the columns of that union each one sees;
  // `positions` (optional) receives the absolute position of every column.
  size_t BlockSpans(int64_t first, int64_t last, SlotSpan spans[3], KeyColumns* keys,
                    std::vector<int64_t>* positions = nullptr) const;

 private:
  // The oldest non-sink position a query at `pos` attends.
  int64_t WindowStart(int64_t pos) const { return std::max(sink_, pos - (window_ - sink_) + 1); }
  // Appends the spans of positions first..last (inclusive, all past the sinks), split
  // where the ring wraps; returns the new span count.
  size_t AddWindowSpans(int64_t first, int64_t last, SlotSpan* spans, size_t n) const;
  void* Base(std::unique_ptr<uint8_t[]>& buf, int64_t layer, int64_t head) {
    const int64_t index = ((layer * kv_heads_ + head) * slots_) * head_dim_;
    return buf.get() + static_cast<size_t>(index) * DTypeSize(dtype_);
  }
  int64_t num_layers_, kv_heads_, head_dim_, capacity_, window_, sink_, slack_, ring_, slots_;
  DType dtype_;
  size_t bytes_ = 0;  // of K, and of V
  // Left uninitialised: slots are written before they are read, and untouched pages of
  // a large allocation cost no memory, so a 32k-position cache only costs what is used.
  std::unique_ptr<uint8_t[]> k_, v_;
};

}  // namespace oko
