// AttentionQueries: a group of query heads that share one KV head (GQA), attending one
// query position against spans of the KV cache. For each query g:
//   s[j] = scale * q[g] · k[j] + bias[g][j]   for every slot j in the spans (span order)
//   p = softmax(s)               (f32, max-subtracted)
//   out[g] = head_scale[g] * sum_j p[j] * v[j]
// key_bias and head_scale are optional (nullptr: 0 and 1): the interventions' hooks
// (engine/interventions.h), a bias of -inf removes a key, log A < 0 weakens it, a scale
// of 0 ablates a head (p is still reported). Query g's bias row is
// key_bias + g * key_bias_head_stride (0: one row for the whole group).
// The engine turns its ring buffer + causal/window mask into at most a few contiguous
// slot spans. Slot j of this KV head starts at k + rows.Offset(j) (elements), f32 or f16
// (f16 widened exactly). Any head_dim, num_queries <= kBlockQueries; total = sum of
// span lengths.
// total == 0 gives out = 0. Scores are max-subtracted before exp, so large scores do not
// overflow; a query whose scores are all -inf gets p = 0 and out = 0 (HF would give NaN).
// probs: [num_queries, total] scratch that receives p (the trace hook reads it).
// out may alias q (same rows and stride): every score is computed before out is written.
// Layout and speed: each K/V row is read once for all queries (tiles of up to 4 queries
// x 4 slots). Head-major caches (rows.stride = head_dim, each head's K and V contiguous,
// or contiguous per chunk of at least 64 KiB) stream at the read-loop bandwidth;
// slot-major (stride = kv_heads * head_dim, 256 B pieces 2 KiB apart for f16) measured
// 1.7x (f16) / 2x (f32) slower from DRAM at ctx 4096 even with software prefetching
// (about 4x without).
// Reference: HF eager_attention_forward (f32 softmax). Tolerance: probs 1e-5 rel, out
// 1e-5 * sum_j |p_j v_j| abs.
// Threads: distinct (query, head) groups may run concurrently. Allocates nothing.
// Cost: 4*num_queries*total*head_dim flop; 2*total*head_dim*sizeof(kv) bytes.
#pragma once

#include <cstddef>

#include "common/dtype.h"

namespace oko {

constexpr size_t kBlockQueries = 64;  // queries of one call at most

struct SlotSpan {
  size_t begin, end;  // slots [begin, end)
};

// Where a KV head's slot rows are, in elements from slot 0: chunks of 2^chunk_log2
// consecutive slots `stride` apart, chunk c at c * chunk_stride. One chunk (the default)
// is a plain strided array. The engine's cache interleaves all heads' chunks so that its
// memory is committed as positions fill (engine/kv_cache.h).
struct KvRows {
  size_t stride;
  size_t chunk_log2 = 63;
  size_t chunk_stride = 0;

  size_t Offset(size_t slot) const {
    const size_t in_chunk = slot & ((size_t{1} << chunk_log2) - 1);
    return (slot >> chunk_log2) * chunk_stride + in_chunk * stride;
  }
};

struct AttentionArgs {
  const float* q;     // [num_queries, head_dim], row stride q_stride
  size_t q_stride;
  size_t num_queries;
  const void* k;      // slot 0 of this KV head
  const void* v;
  KvRows rows;        // where each slot's K (from k) and V (from v) row is
  DType kv_dtype;     // kF32 or kF16
  const SlotSpan* spans;
  size_t num_spans;
  size_t head_dim;
  float scale;
  float* probs;       // [num_queries, total slots in spans]
  float* out;         // [num_queries, head_dim], row stride out_stride
  size_t out_stride;
  const float* key_bias = nullptr;    // rows of [total], or nullptr
  size_t key_bias_head_stride = 0;
  const float* head_scale = nullptr;  // [num_queries] or nullptr
};

void AttentionQueries(const AttentionArgs& a);

// Asks for the K and V rows of the first kAttentionPrefetchSlots slots of the spans, the
// ones AttentionQueries reads before its own prefetching (that many slots ahead) reaches
// them, so that a caller running short attentions one after another (decode: one per
// sequence and KV head) overlaps the next one's first loads with the current one's work.
// Arguments as in AttentionArgs; reads no memory (prefetches do not fault).
inline constexpr size_t kAttentionPrefetchSlots = 16;
void PrefetchAttentionKv(const void* k, const void* v, const KvRows& rows, DType kv_dtype, size_t head_dim,
                         const SlotSpan* spans, size_t num_spans);

// The keys one query position of a block sees, as columns of the block's spans: every
// column in [0, end) except those in [hole_begin, hole_end) (keys that slid out of a
// window between the block's first position and this one; sinks stay before the hole).
struct KeyColumns {
  size_t end, hole_begin, hole_end;
};

// AttentionBlock: prefill. Consecutive query positions t < num_positions, each with a
// group of query heads g < group sharing one KV head, attend the union of the keys
// they see (spans, in order); position t sees the columns keys[t] says. Same result as
// AttentionQueries per position (masked keys get p = 0), but the block's queries are
// transposed so that scores are broadcast-K x vector-of-queries FMAs, each K/V row is
// loaded once for the whole block, and the output is accumulated in registers: prefill
// attention becomes compute- rather than load-bound (bench/ops/attention_bench).
// Query (t, g) is the row q + t * q_pos_stride + g * head_dim, its output
// out + t * out_pos_stride + g * head_dim (out may alias q). num_positions * group <=
// kBlockQueries. scratch: AttentionBlockScratch(queries, total keys, head_dim) floats.
// Tolerance as AttentionQueries.
// Cost: 4 * num_positions * group * total * head_dim flop (masked keys included), plus
// num_positions * group * total stores when probs is wanted.
constexpr size_t kQueryPad = 16;  // queries are padded to whole vectors of up to 16 lanes

inline size_t AttentionBlockScratch(size_t queries, size_t total_keys, size_t head_dim) {
  const size_t padded = (queries + kQueryPad - 1) / kQueryPad * kQueryPad;
  // Queries transposed, scores, one K tile of up to 8 columns widened to f32.
  return padded * (head_dim + total_keys) + 8 * head_dim;
}

struct AttentionBlockArgs {
  const float* q;
  size_t q_pos_stride;
  size_t num_positions;
  size_t group;
  const void* k;
  const void* v;
  KvRows rows;
  DType kv_dtype;
  const SlotSpan* spans;
  size_t num_spans;
  const KeyColumns* keys;  // [num_positions]
  size_t head_dim;
  float scale;
  float* scratch;
  float* out;
  size_t out_pos_stride;
  // Optional (nullptr: not written): [num_positions * group, total keys of the spans],
  // row t * group + g = p of query (t, g) over every column, 0 where masked (the trace).
  float* probs = nullptr;
  // Optional, as AttentionQueries' (a query whose keys all get -inf has p = 0, out = 0):
  // the row key_bias + t * key_bias_stride + g * key_bias_head_stride is added to query
  // (t, g)'s scores over the columns (a stride of 0 shares one row across positions or
  // heads).
  const float* key_bias = nullptr;
  size_t key_bias_stride = 0;
  size_t key_bias_head_stride = 0;
  const float* head_scale = nullptr;  // [group]: query (t, g)'s output times head_scale[g]
};

void AttentionBlock(const AttentionBlockArgs& a);

}  // namespace oko
