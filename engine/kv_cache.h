// KvCache: per layer, K and V of `capacity` positions in a ring buffer (f32 or f16).
//
// Keys are stored after RoPE at their absolute positions, so nothing is recomputed when
// the ring wraps: the oldest positions are overwritten and attention continues as a
// sliding window over the last `capacity` positions, of which the first `sink` (the
// StreamingLLM attention sinks) are never evicted.
//
// Physical layout: chunks of up to 2^kChunkSlotsLog2 consecutive slots,
// [chunk][layer][kv head][slot in chunk][head_dim]. Within a chunk each head's rows are
// one contiguous run (64 KiB of f16 at head_dim 128), so attention streams a head's keys
// in long runs (head-major was 1.7-2x faster at 4k context than slot-major in
// bench/ops/attention_bench); chunks follow slot order, so memory is committed as
// positions fill. The cache lives on huge pages (AllocateStreamedBytes), which read 1.5x
// faster at depth 4096 than 4 KiB ones: a touched byte commits 2 MiB, which per head would
// have made a fresh 4k-position cache wholly resident, but here commits one chunk row of
// all heads ahead of use. The first chunk row stays on 4 KiB pages: a new context (a
// short chat, each of 8 sequences decoded together) would otherwise clear all of it
// (56 MiB for the 0.6B shape in f32) before its first token, and it is 256 positions of
// thousands where depth makes the pages matter.
// Slots: `sink` fixed, then a ring of window + slack. The slack is the largest batch
// written at once: a prefill chunk writes its keys before its queries attend, and the
// chunk's first query must still see the keys the chunk's last writes would otherwise
// overwrite.
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
  // 256 slots (64 KiB runs of f16 at head_dim 128): chunks of 64, 256 and 1024 slots
  // decoded level at depth 4096 (docs/PERFORMANCE.md, session 22); 256 keeps the runs long
  // and the memory committed ahead of use small (28 MiB of f16 K and V for the 0.6B shape).
  static constexpr size_t kChunkSlotsLog2 = 8;

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
  bool allocated() const { return k_ != nullptr && v_ != nullptr; }  // false: out of memory
  // Commits the memory of the slots positions [0, n) will use (CommitPages): on huge
  // pages each first touch clears 2 MiB, which a timed decode would otherwise pay.
  void Commit(int64_t n);

  // The physical slot of absolute position `pos`.
  int64_t Slot(int64_t pos) const {
    return pos < sink_ ? pos : sink_ + (pos - sink_) % ring_;
  }
  // Element pointers to slot 0 of (layer, kv head); slot j is at + rows().Offset(j).
  void* K(int64_t layer, int64_t head) { return Base(k_, layer, head); }
  void* V(int64_t layer, int64_t head) { return Base(v_, layer, head); }
  const void* K(int64_t layer, int64_t head) const { return Base(k_, layer, head); }
  const void* V(int64_t layer, int64_t head) const { return Base(v_, layer, head); }
  KvRows rows() const { return rows_; }
  // Stores rows [T, kv_dim] of k and v (f32) at positions pos0 .. pos0+T-1 (T <= max_batch()).
  void Store(int64_t layer, int64_t pos0, int64_t T, const float* k, const float* v);
  // The same for one kv head's part of each row (heads are independent: tasks may store
  // different heads at once).
  void StoreHead(int64_t layer, int64_t head, int64_t pos0, int64_t T, const float* k, const float* v);

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
  void* Base(const std::shared_ptr<std::byte>& buf, int64_t layer, int64_t head) const {
    const size_t piece = static_cast<size_t>(layer * kv_heads_ + head) << rows_.chunk_log2;
    return buf.get() + piece * rows_.stride * DTypeSize(dtype_);
  }
  int64_t num_layers_, kv_heads_, head_dim_, capacity_, window_, sink_, slack_, ring_, slots_;
  DType dtype_;
  KvRows rows_{};
  size_t bytes_ = 0;  // of K, and of V
  // Left uninitialised: slots are written before they are read, and untouched pages of
  // a large allocation cost no memory, so a 32k-position cache only costs what is used.
  std::shared_ptr<std::byte> k_, v_;
};

}  // namespace oko
