// AttentionQueries: a group of query heads that share one KV head (GQA), attending one
// query position against spans of the KV cache. For each query g:
//   s[j] = scale * q[g] · k[j]   for every slot j in the spans (span order)
//   p = softmax(s)               (f32, max-subtracted)
//   out[g] = sum_j p[j] * v[j]
// The engine turns its ring buffer + causal/window mask into at most a few contiguous
// slot spans. K and V are stored slot-major: slot j of this KV head starts at
// k + j * kv_stride (elements), f32 or f16.
// probs: [num_queries, total] scratch that receives p (the trace hook reads it).
// Threads: distinct (query, head) groups may run concurrently. Allocates nothing.
// Cost: 4*num_queries*total*head_dim flop; 2*total*head_dim*sizeof(kv) bytes.
#pragma once

#include <cstddef>

#include "common/dtype.h"

namespace oko {

// Largest head_dim supported with an f16 KV cache (f32 has no limit).
inline constexpr size_t kAttentionMaxHeadDimF16 = 512;

struct SlotSpan {
  size_t begin, end;  // slots [begin, end)
};

struct AttentionArgs {
  const float* q;     // [num_queries, head_dim], row stride q_stride
  size_t q_stride;
  size_t num_queries;
  const void* k;      // slot 0 of this KV head
  const void* v;
  size_t kv_stride;   // elements between consecutive slots
  DType kv_dtype;     // kF32 or kF16
  const SlotSpan* spans;
  size_t num_spans;
  size_t head_dim;
  float scale;
  float* probs;       // [num_queries, total slots in spans]
  float* out;         // [num_queries, head_dim], row stride out_stride
  size_t out_stride;
};

void AttentionQueries(const AttentionArgs& a);

}  // namespace oko
