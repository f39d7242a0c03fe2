#include "ops/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

struct Case {
  size_t num_queries, head_dim, capacity;
  std::vector<SlotSpan> spans;
  std::vector<float> key_bias{}, head_scale{};  // empty: none
  size_t chunk_log2 = 63;  // slots per chunk of the cache's rows, log2 (63: one chunk)
};

// A cache of `capacity` slots in chunks of 2^chunk_log2 (the engine's layout, with other
// heads' rows between chunks): slot j's row is at element Row(j).
struct ChunkedRows {
  KvRows rows;
  size_t elements;
  ChunkedRows(size_t capacity, size_t stride, size_t chunk_log2) {
    const size_t chunk_slots = chunk_log2 >= 63 ? capacity : size_t{1} << chunk_log2;
    const size_t chunks = (capacity + chunk_slots - 1) / chunk_slots;
    rows = {stride, chunk_log2, chunk_slots * stride + 3};
    elements = chunks * rows.chunk_stride;
  }
  size_t Row(size_t slot) const {  // by division, as a check of KvRows::Offset's shifts
    const size_t chunk_slots = size_t{1} << std::min<size_t>(rows.chunk_log2, 62);
    return slot / chunk_slots * rows.chunk_stride + slot % chunk_slots * rows.stride;
  }
};

void RunCase(DType kv_dtype, const Case& c, uint32_t seed) {
  const size_t D = c.head_dim, G = c.num_queries;
  // Two KV heads interleaved per slot, like the engine's cache; we attend with head 1.
  const ChunkedRows layout(c.capacity, 2 * D + 1, c.chunk_log2);
  const size_t q_stride = D + 3, out_stride = D + 2;
  const test::Buffer<float> q = test::RandomFloats(G * q_stride, seed, 1, -2.0f, 2.0f);
  std::vector<float> k = test::RandomFloats(layout.elements, seed + 1).ToVector();
  std::vector<float> v = test::RandomFloats(layout.elements, seed + 2).ToVector();
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  if (kv_dtype == DType::kF16) {  // the reference uses the values the kernel sees
    for (size_t i = 0; i < k.size(); ++i) {
      k16[i] = F32ToF16(k[i]);
      v16[i] = F32ToF16(v[i]);
      k[i] = F16ToF32(k16[i]);
      v[i] = F16ToF32(v16[i]);
    }
  }
  size_t total = 0;
  for (const SlotSpan& s : c.spans) total += s.end - s.begin;
  test::Buffer<float> probs(G * total, 2), out(G * out_stride, 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = 99.0f;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  const size_t head = D + 1;  // element offset of KV head 1 inside a slot
  AttentionArgs a;
  a.q = q.data();
  a.q_stride = q_stride;
  a.num_queries = G;
  a.k = kv_dtype == DType::kF16 ? static_cast<const void*>(k16.data() + head) : k.data() + head;
  a.v = kv_dtype == DType::kF16 ? static_cast<const void*>(v16.data() + head) : v.data() + head;
  a.rows = layout.rows;
  a.kv_dtype = kv_dtype;
  a.spans = c.spans.data();
  a.num_spans = c.spans.size();
  a.head_dim = D;
  a.scale = scale;
  a.probs = probs.data();
  a.out = out.data();
  a.out_stride = out_stride;
  a.key_bias = c.key_bias.empty() ? nullptr : c.key_bias.data();
  a.head_scale = c.head_scale.empty() ? nullptr : c.head_scale.data();
  AttentionQueries(a);

  const std::string what = std::string(DTypeName(kv_dtype)) + " G=" + std::to_string(G) +
                           " D=" + std::to_string(D) + " total=" + std::to_string(total) +
                           " chunk_log2=" + std::to_string(c.chunk_log2);
  for (size_t g = 0; g < G; ++g) {
    std::vector<size_t> slots;
    for (const SlotSpan& s : c.spans)
      for (size_t j = s.begin; j < s.end; ++j) slots.push_back(j);
    std::vector<double> p(total);
    double max = -INFINITY, sum = 0.0;
    for (size_t t = 0; t < total; ++t) {
      double dot = 0.0;
      for (size_t d = 0; d < D; ++d) dot += double{q[g * q_stride + d]} * k[layout.Row(slots[t]) + head + d];
      p[t] = scale * dot + (c.key_bias.empty() ? 0.0 : c.key_bias[t]);
      max = std::max(max, p[t]);
    }
    if (max == -INFINITY) max = 0;  // every key removed: p = 0
    for (double& x : p) sum += x = std::exp(x - max);
    for (double& x : p) x = sum > 0 ? x / sum : 0;
    const double head_scale = c.head_scale.empty() ? 1.0 : c.head_scale[g];
    test::ExpectNear(probs.data() + g * total, p, 1e-5, 1e-7, what + " probs g=" + std::to_string(g));
    std::vector<double> want(D, 0.0), tol(D, 1e-6);
    for (size_t t = 0; t < total; ++t) {
      for (size_t d = 0; d < D; ++d) {
        const double pv = head_scale * p[t] * v[layout.Row(slots[t]) + head + d];
        want[d] += pv;
        tol[d] += 1e-5 * std::fabs(pv);
      }
    }
    test::ExpectWithin(out.data() + g * out_stride, want, tol, what + " out g=" + std::to_string(g));
    for (size_t d = D; d < out_stride && g + 1 < G; ++d) ASSERT_EQ(out[g * out_stride + d], 99.0f);
  }
}

class AttentionTest : public test::TargetTest {};

TEST_P(AttentionTest, MatchesReference) {
  uint32_t seed = 1;
  for (DType kv : {DType::kF32, DType::kF16}) {
    for (size_t G : {1, 2, 3, 8}) {
      for (size_t D : {1, 4, 15, 16, 17, 64, 128}) {
        for (size_t total : {1, 3, 4, 5, 9, 40})
          RunCase(kv, {G, D, 48, {{0, total}}}, seed++);
        // A wrapped ring buffer with an attention sink: three spans.
        RunCase(kv, {G, D, 48, {{0, 2}, {37, 48}, {3, 20}}}, seed++);
      }
    }
    RunCase(kv, {2, 128, 4100, {{0, 4096}}}, seed++);  // long context, Qwen3 head_dim
    // The engine's chunked cache: spans across chunk boundaries, within one chunk, and
    // rows prefetched ahead in the next chunk.
    for (size_t chunk_log2 : {0, 2, 3, 8}) {
      Case chunked{2, 17, 300, {{0, 4}, {100, 300}, {10, 90}}};
      chunked.chunk_log2 = chunk_log2;
      RunCase(kv, chunked, seed++);
      chunked = {3, 128, 1100, {{0, 1030}}};
      chunked.chunk_log2 = chunk_log2;
      RunCase(kv, chunked, seed++);
    }
    // A wrapped ring whose first span is shorter than a block of keys: blocks start
    // inside the later spans.
    for (size_t G : {1, 8}) RunCase(kv, {G, 64, 300, {{0, 4}, {100, 300}, {10, 90}}}, seed++);
  }
}

// The interventions' hooks: a bias per key (-inf removes it) and an output scale per head.
TEST_P(AttentionTest, KeyBiasAndHeadScaleMatchReference) {
  uint32_t seed = 500;
  for (DType kv : {DType::kF32, DType::kF16}) {
    for (size_t G : {1, 3}) {
      Case c{G, 17, 48, {{0, 2}, {37, 48}, {3, 20}}};
      for (size_t j = 0; j < 30; ++j) c.key_bias.push_back(j % 5 == 1 ? -INFINITY : 0.25f * (j % 7) - 0.5f);
      for (size_t g = 0; g < G; ++g) c.head_scale.push_back(g == 0 ? 0.0f : 1.5f);
      RunCase(kv, c, seed++);
      c.key_bias.assign(30, -INFINITY);  // every key removed: p = 0, out = 0
      RunCase(kv, c, seed++);
    }
  }
}

TEST_P(AttentionTest, NoSlotsGivesZeroOutput) {
  std::vector<float> q(8, 1.0f), k(8, 1.0f), out(8, 5.0f), probs(1);
  const SlotSpan span{3, 3};
  AttentionArgs a{q.data(), 8, 1, k.data(), k.data(), {8}, DType::kF32, &span, 1, 8, 1.0f,
                  probs.data(), out.data(), 8};
  AttentionQueries(a);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

// Scores far apart must not overflow: the max is subtracted before exp.
TEST_P(AttentionTest, LargeScoresStayFinite) {
  const size_t D = 16;
  std::vector<float> q(D, 30.0f), k(4 * D), v(4 * D), probs(4), out(D);
  for (size_t j = 0; j < 4; ++j)
    for (size_t d = 0; d < D; ++d) k[j * D + d] = j == 2 ? 1.0f : -1.0f, v[j * D + d] = float(j);
  const SlotSpan span{0, 4};
  AttentionArgs a{q.data(), D, 1, k.data(), v.data(), {D}, DType::kF32, &span, 1, D, 1.0f,
                  probs.data(), out.data(), D};
  AttentionQueries(a);
  EXPECT_EQ(probs[2], 1.0f);
  for (float x : out) EXPECT_EQ(x, 2.0f);
}

// The engine may write the output over q: all scores are computed before out is written.
TEST_P(AttentionTest, OutputMayAliasQ) {
  const size_t G = 3, D = 24, slots = 11;
  const std::vector<float> q = test::RandomFloats(G * D, 5).ToVector();
  const std::vector<float> k = test::RandomFloats(slots * D, 6).ToVector();
  const std::vector<float> v = test::RandomFloats(slots * D, 7).ToVector();
  const SlotSpan span{0, slots};
  std::vector<float> probs(G * slots), out(G * D), inout = q;
  AttentionArgs a{q.data(), D, G, k.data(), v.data(), {D}, DType::kF32, &span, 1, D, 0.2f,
                  probs.data(), out.data(), D};
  AttentionQueries(a);
  a.q = inout.data();
  a.out = inout.data();
  AttentionQueries(a);
  for (size_t i = 0; i < G * D; ++i) ASSERT_EQ(inout[i], out[i]) << i;
}

// A block of positions gives what AttentionQueries gives each position alone over the
// keys it sees (the others, masked, must not contribute). The scratch starts as NaN: a
// value read before it is written would show.
struct BlockCase {
  size_t group, head_dim, positions;
  std::vector<SlotSpan> spans;  // the union, in column order
  std::vector<KeyColumns> keys;
  bool bias_and_scale = false;  // a key bias per position and column, a scale per head
  size_t chunk_log2 = 63;       // as Case's
};

// The slots of the visible columns of `keys`, as spans of consecutive slots.
std::vector<SlotSpan> VisibleSlotSpans(const std::vector<SlotSpan>& spans, const KeyColumns& keys) {
  std::vector<SlotSpan> out;
  size_t col = 0;
  for (const SlotSpan& s : spans) {
    for (size_t slot = s.begin; slot < s.end; ++slot, ++col) {
      if (col >= keys.end || (col >= keys.hole_begin && col < keys.hole_end)) continue;
      if (!out.empty() && out.back().end == slot) ++out.back().end;
      else out.push_back({slot, slot + 1});
    }
  }
  return out;
}

void RunBlockCase(DType kv_dtype, const BlockCase& c, uint32_t seed) {
  const size_t D = c.head_dim, G = c.group, P = c.positions;
  size_t capacity = 0;
  for (const SlotSpan& s : c.spans) capacity = std::max(capacity, s.end);
  const size_t q_pos_stride = 3 * G * D + 5;  // other KV heads' queries sit between positions
  const std::vector<float> q = test::RandomFloats(P * q_pos_stride, seed, 0, -2.0f, 2.0f).ToVector();
  const ChunkedRows layout(capacity, D, c.chunk_log2);
  const std::vector<float> k = test::RandomFloats(layout.elements, seed + 1).ToVector();
  const std::vector<float> v = test::RandomFloats(layout.elements, seed + 2).ToVector();
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  for (size_t i = 0; i < k.size(); ++i) k16[i] = F32ToF16(k[i]), v16[i] = F32ToF16(v[i]);
  const void* kp = kv_dtype == DType::kF16 ? static_cast<const void*>(k16.data()) : k.data();
  const void* vp = kv_dtype == DType::kF16 ? static_cast<const void*>(v16.data()) : v.data();
  size_t total = 0;
  for (const SlotSpan& s : c.spans) total += s.end - s.begin;
  std::vector<float> scratch(AttentionBlockScratch(P * G, total, D), NAN), out(P * q_pos_stride, 99.0f);
  std::vector<float> block_probs(P * G * total, NAN);
  // A bias row per query (t, g): the heads of a group get different ones (emphasis on
  // some heads only).
  std::vector<float> key_bias(P * G * total), head_scale(G);
  for (size_t i = 0; i < key_bias.size(); ++i) key_bias[i] = i % 6 == 2 ? -INFINITY : 0.1f * (i % 9);
  for (size_t g = 0; g < G; ++g) head_scale[g] = 0.5f * g;
  const float scale = 0.3f;
  AttentionBlockArgs args{q.data(), q_pos_stride, P, G, kp, vp, layout.rows, kv_dtype, c.spans.data(),
                          c.spans.size(), c.keys.data(), D, scale, scratch.data(), out.data(),
                          q_pos_stride, block_probs.data()};
  if (c.bias_and_scale) {
    args.key_bias = key_bias.data();
    args.key_bias_stride = G * total;
    args.key_bias_head_stride = total;
    args.head_scale = head_scale.data();
  }
  AttentionBlock(args);

  const std::string what = std::string(DTypeName(kv_dtype)) + " G=" + std::to_string(G) +
                           " D=" + std::to_string(D) + " P=" + std::to_string(P);
  for (size_t t = 0; t < P; ++t) {
    const std::vector<SlotSpan> own = VisibleSlotSpans(c.spans, c.keys[t]);
    size_t visible = 0;
    for (const SlotSpan& s : own) visible += s.end - s.begin;
    std::vector<float> probs(G * visible + 1), want(G * D), own_bias;
    for (size_t g = 0; g < G; ++g)  // this position's bias rows at its visible columns
      for (size_t col = 0; col < total; ++col) {
        const KeyColumns& kc = c.keys[t];
        if (col < kc.end && !(col >= kc.hole_begin && col < kc.hole_end))
          own_bias.push_back(key_bias[(t * G + g) * total + col]);
      }
    AttentionArgs per_position{q.data() + t * q_pos_stride, D, G, kp, vp, layout.rows, kv_dtype, own.data(),
                               own.size(), D, scale, probs.data(), want.data(), D};
    if (c.bias_and_scale) {
      per_position.key_bias = own_bias.data();
      per_position.key_bias_head_stride = visible;
      per_position.head_scale = head_scale.data();
    }
    AttentionQueries(per_position);
    for (size_t g = 0; g < G; ++g) {
      const std::string at = what + " t=" + std::to_string(t) + " g=" + std::to_string(g);
      // The block's probabilities: this position's, at its visible columns, 0 elsewhere.
      const float* row = block_probs.data() + (t * G + g) * total;
      const KeyColumns& keys = c.keys[t];
      for (size_t col = 0, j = 0; col < total; ++col) {
        const bool seen = col < keys.end && !(col >= keys.hole_begin && col < keys.hole_end);
        const float ref = seen ? probs[g * visible + j++] : 0.0f;
        ASSERT_NEAR(row[col], ref, 1e-5f * ref + 1e-7f) << at << " column " << col;
      }
      for (size_t d = 0; d < D; ++d) {
        const float got = out[t * q_pos_stride + g * D + d], ref = want[g * D + d];
        ASSERT_NEAR(got, ref, 1e-5f * (1.0f + std::fabs(ref))) << at << " d " << d;
      }
    }
    for (size_t i = G * D; i < q_pos_stride; ++i) ASSERT_EQ(out[t * q_pos_stride + i], 99.0f) << what;
  }
}

// Causal prefill from position p0: position t sees columns [0, p0 + t + 1).
BlockCase Causal(size_t group, size_t head_dim, size_t positions, size_t p0) {
  BlockCase c{group, head_dim, positions, {{0, p0 + positions}}, {}};
  for (size_t t = 0; t < positions; ++t) c.keys.push_back({p0 + t + 1, 0, 0});
  return c;
}

// A wrapped ring with 2 sinks and a window sliding by one key per position.
BlockCase Sliding(size_t group, size_t head_dim, size_t positions) {
  BlockCase c{group, head_dim, positions, {{0, 2}, {40, 64}, {3, 3 + positions + 8}}, {}};
  const size_t total = 2 + 24 + positions + 8;
  for (size_t t = 0; t < positions; ++t) c.keys.push_back({total - (positions - 1 - t), 2, 2 + t});
  return c;
}

TEST_P(AttentionTest, BlockMatchesPerPosition) {
  uint32_t seed = 100;
  for (DType kv : {DType::kF32, DType::kF16}) {
    for (size_t G : {1, 2, 3}) {
      for (size_t D : {4, 17, 64, 128}) {
        for (size_t P : {1, 5, 8}) {
          RunBlockCase(kv, Causal(G, D, P, 0), seed++);
          RunBlockCase(kv, Causal(G, D, P, 37), seed++);
          RunBlockCase(kv, Sliding(G, D, P), seed++);
        }
      }
    }
  }
  RunBlockCase(DType::kF16, Causal(4, 128, 16, 300 - 16), seed++);  // 64 queries, many column blocks
  for (size_t chunk_log2 : {0, 2, 8}) {  // the engine's chunked cache
    for (BlockCase c : {Causal(2, 17, 8, 37), Sliding(3, 64, 5), Causal(4, 128, 16, 300 - 16)}) {
      c.chunk_log2 = chunk_log2;
      RunBlockCase(DType::kF16, c, seed++);
    }
  }
  for (DType kv : {DType::kF32, DType::kF16}) {
    for (BlockCase c : {Causal(3, 17, 8, 5), Sliding(2, 64, 5), Causal(1, 4, 1, 0)}) {
      c.bias_and_scale = true;
      RunBlockCase(kv, c, seed++);
    }
  }
}

TEST_P(AttentionTest, BlockOutputMayAliasQ) {
  const size_t G = 2, D = 24, P = 6;
  const BlockCase c = Causal(G, D, P, 5);
  const std::vector<float> q = test::RandomFloats(P * G * D, 5).ToVector();
  const std::vector<float> k = test::RandomFloats(11 * D, 6).ToVector();
  const std::vector<float> v = test::RandomFloats(11 * D, 7).ToVector();
  std::vector<float> scratch(AttentionBlockScratch(P * G, 11, D)), out(P * G * D), inout = q;
  AttentionBlockArgs a{q.data(), G * D, P, G, k.data(), v.data(), {D}, DType::kF32,
                       c.spans.data(), 1, c.keys.data(), D, 0.2f, scratch.data(), out.data(), G * D};
  AttentionBlock(a);
  a.q = inout.data();
  a.out = inout.data();
  AttentionBlock(a);
  for (size_t i = 0; i < inout.size(); ++i) ASSERT_EQ(inout[i], out[i]) << i;
}

OKO_INSTANTIATE_ON_ALL_TARGETS(AttentionTest);

}  // namespace
}  // namespace oko
