// The ring-buffer KV cache: slot arithmetic, and whole-model equivalences that must hold
// past the wrap point (ring of capacity W == full cache with a sliding-window mask of W),
// prefill == decode, and thread-count independence.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/kv_cache.h"
#include "engine/context.h"
#include "tests/test_util.h"

namespace oko {
namespace {

std::vector<int64_t> Expected(int64_t pos, int64_t window, int64_t sink) {
  std::vector<int64_t> v;
  for (int64_t p = 0; p < std::min(sink, pos + 1); ++p) v.push_back(p);
  for (int64_t p = std::max(sink, pos - (window - sink) + 1); p <= pos; ++p) v.push_back(p);
  return v;
}

TEST(KvCacheTest, VisibleSpansCoverTheWindowAndSinksInOrder) {
  for (int64_t sink : {0, 1, 3}) {
    for (int64_t batch : {1, 4}) {
      KvCache kv(1, 1, 2, /*capacity=*/10, /*window=*/0, sink, batch, DType::kF32);
      for (int64_t pos = 0; pos < 60; ++pos) {
        SlotSpan spans[3];
        std::vector<int64_t> positions;
        const size_t n = kv.VisibleSpans(pos, spans, &positions);
        ASSERT_EQ(positions, Expected(pos, 10, sink)) << "pos " << pos << " sink " << sink;
        // The spans hold exactly the slots of those positions, in the same order.
        std::vector<int64_t> slots;
        for (size_t s = 0; s < n; ++s)
          for (size_t j = spans[s].begin; j < spans[s].end; ++j) slots.push_back(j);
        ASSERT_EQ(slots.size(), positions.size());
        for (size_t i = 0; i < slots.size(); ++i) ASSERT_EQ(slots[i], kv.Slot(positions[i]));
        // A batch of `batch` writes ending at pos never overwrites a key any of its
        // queries attends.
        std::set<int64_t> needed;
        for (int64_t q = std::max<int64_t>(0, pos - batch + 1); q <= pos; ++q)
          for (int64_t p : Expected(q, 10, sink)) needed.insert(kv.Slot(p) * 1000 + p);
        std::set<int64_t> slot_owner;
        for (int64_t key : needed) slot_owner.insert(key / 1000);
        ASSERT_EQ(slot_owner.size(), needed.size()) << "two live positions share a slot at " << pos;
      }
    }
  }
}

// Every (layer, head, slot) row lies inside the cache's bytes, no two overlap, and
// slots fill the memory in order (chunk by chunk across all heads), so a cache holding a
// few positions touches only its first chunk row; across chunk sizes and dtypes.
TEST(KvCacheTest, RowsTileTheCacheInSlotOrder) {
  for (DType dtype : {DType::kF32, DType::kF16}) {
    for (int64_t capacity : {2, 5, 300, 1000}) {
      const int64_t layers = 3, heads = 2, head_dim = 6;
      KvCache kv(layers, heads, head_dim, capacity, 0, 0, 4, dtype);
      const size_t row_bytes = head_dim * DTypeSize(dtype);
      const auto* base = static_cast<const uint8_t*>(kv.K(0, 0));
      std::vector<std::pair<size_t, size_t>> rows;  // (byte offset, slot)
      for (int64_t l = 0; l < layers; ++l)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t slot = 0; slot < capacity + 4; ++slot) {
            const auto* row = static_cast<const uint8_t*>(kv.K(l, h)) + kv.rows().Offset(slot) * DTypeSize(dtype);
            ASSERT_EQ(static_cast<const uint8_t*>(kv.V(l, h)) - static_cast<const uint8_t*>(kv.V(0, 0)),
                      static_cast<const uint8_t*>(kv.K(l, h)) - base);
            rows.emplace_back(row - base, slot);
          }
      std::sort(rows.begin(), rows.end());
      for (size_t i = 0; i < rows.size(); ++i) {
        ASSERT_LE(rows[i].first + row_bytes, kv.bytes() / 2) << "capacity " << capacity;
        if (i == 0) continue;
        ASSERT_GE(rows[i].first, rows[i - 1].first + row_bytes) << "rows overlap, capacity " << capacity;
        // Memory order never goes back past a chunk: a later byte holds no slot of an
        // earlier chunk.
        ASSERT_GE(rows[i].second >> kv.rows().chunk_log2, rows[i - 1].second >> kv.rows().chunk_log2);
      }
    }
  }
}

// How many of the 4 KiB pages of [p, p + bytes) are resident.
size_t ResidentPages(const void* p, size_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(p) / 4096 * 4096;
  const size_t pages = (reinterpret_cast<uintptr_t>(p) + bytes - begin + 4095) / 4096;
  std::vector<unsigned char> in(pages);
  if (mincore(reinterpret_cast<void*>(begin), pages * 4096, in.data()) != 0) return 0;
  return static_cast<size_t>(std::count_if(in.begin(), in.end(), [](unsigned char c) { return c & 1; }));
}

// Commit faults in the chunks the positions use, K and V, and no further; the rows
// already written keep their values.
TEST(KvCacheTest, CommitFaultsInThePositionsChunksAndKeepsTheirRows) {
  const int64_t layers = 2, heads = 8, head_dim = 128, capacity = 2048;  // 2 MiB chunks of f32
  KvCache kv(layers, heads, head_dim, capacity, 0, 0, 1, DType::kF32);
  ASSERT_TRUE(kv.allocated());
  const size_t chunk_bytes = kv.rows().chunk_stride * sizeof(float);
  ASSERT_EQ(chunk_bytes, size_t{2} << 20);
  std::vector<float> k(heads * head_dim), v(heads * head_dim);
  for (size_t i = 0; i < k.size(); ++i) k[i] = 0.5f + static_cast<float>(i), v[i] = -k[i];
  kv.Store(1, 0, 1, k.data(), v.data());
  const auto* k0 = static_cast<const std::byte*>(kv.K(0, 0));
  const auto* v0 = static_cast<const std::byte*>(kv.V(0, 0));
  for (const auto* base : {k0, v0}) ASSERT_EQ(ResidentPages(base + chunk_bytes, 3 * chunk_bytes), 0u);
  kv.Commit(3 * 256 + 1);  // chunks 0-3
  for (const auto* base : {k0, v0}) {
    EXPECT_EQ(ResidentPages(base, 4 * chunk_bytes), 4 * chunk_bytes / 4096);
    EXPECT_EQ(ResidentPages(base + 4 * chunk_bytes, 4 * chunk_bytes), 0u);
  }
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t d = 0; d < head_dim; ++d) {
      ASSERT_EQ(static_cast<const float*>(kv.K(1, h))[d], k[h * head_dim + d]);
      ASSERT_EQ(static_cast<const float*>(kv.V(1, h))[d], v[h * head_dim + d]);
    }
}

// A prefill block's union of keys, with each position's columns of it, gives every
// position exactly the keys VisibleSpans gives it alone.
TEST(KvCacheTest, BlockSpansGiveEachPositionItsOwnKeys) {
  for (int64_t sink : {0, 1, 3}) {
    for (int64_t window : {0, 7}) {
      const int64_t batch = 5;
      KvCache kv(1, 1, 2, /*capacity=*/10, window, sink, batch, DType::kF32);
      for (int64_t first = 0; first < 50; ++first) {
        for (int64_t len = 1; len <= batch; ++len) {
          SlotSpan spans[3];
          KeyColumns keys[batch];
          const size_t n = kv.BlockSpans(first, first + len - 1, spans, keys);
          std::vector<int64_t> columns;  // the slot of every column
          for (size_t s = 0; s < n; ++s)
            for (size_t j = spans[s].begin; j < spans[s].end; ++j) columns.push_back(j);
          for (int64_t t = 0; t < len; ++t) {
            const KeyColumns& k = keys[t];
            ASSERT_LE(k.end, columns.size());
            std::vector<int64_t> seen;
            for (size_t c = 0; c < k.end; ++c)
              if (c < k.hole_begin || c >= k.hole_end) seen.push_back(columns[c]);
            SlotSpan own[3];
            std::vector<int64_t> positions;
            kv.VisibleSpans(first + t, own, &positions);
            std::vector<int64_t> want;
            for (int64_t p : positions) want.push_back(kv.Slot(p));
            ASSERT_EQ(seen, want) << "sink " << sink << " window " << window << " block " << first
                                  << "+" << len << " position " << first + t;
          }
        }
      }
    }
  }
}

// A token stream longer than the windows below: the stories260k story ids cycle.
std::vector<int32_t> Tokens(size_t n) {
  std::vector<int32_t> ids = {1};
  for (size_t i = 1; i < n; ++i) ids.push_back(static_cast<int32_t>(3 + (i * 37) % 500));
  return ids;
}

std::vector<float> RunAll(EngineOptions o, const std::vector<int32_t>& ids, size_t chunk) {
  auto m = LoadContext(test::SharedPath("models/stories260k"), o);
  EXPECT_TRUE(m.ok()) << m.status().message();
  std::vector<float> all, part;
  for (size_t i = 0; i < ids.size(); i += chunk) {
    const size_t n = std::min(chunk, ids.size() - i);
    (*m)->Forward(std::span<const int32_t>(ids).subspan(i, n), Logits::kAll, &part);
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

TEST(RingBufferTest, WrappedRingEqualsFullCacheWithWindowMask) {
  const auto ids = Tokens(300);
  for (int64_t sink : {0, 4}) {
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{32}}) {
      EngineOptions ring;
      ring.threads = 2;
      ring.ctx = 48;
      ring.sink = sink;
      ring.max_batch = 16;
      EngineOptions full = ring;
      full.ctx = 512;
      full.window = 48;
      // The same sums in another order (the ring splits the window into two spans):
      // f32 rounding only, logits reach |20|.
      const double d = MaxAbsDiff(RunAll(ring, ids, chunk), RunAll(full, ids, chunk));
      EXPECT_LE(d, 1e-4) << "sink " << sink << " chunk " << chunk;
    }
  }
}

TEST(RingBufferTest, WindowChangesTheResultOncePastIt) {
  // Guards the test above against comparing two identical full-context runs.
  const auto ids = Tokens(100);
  EngineOptions ring;
  ring.threads = 1;
  ring.ctx = 48;
  EngineOptions full = ring;
  full.ctx = 512;
  EXPECT_GT(MaxAbsDiff(RunAll(ring, ids, 100), RunAll(full, ids, 100)), 1e-2);
}

TEST(ForwardTest, PrefillEqualsDecode) {
  const auto ids = Tokens(80);
  EngineOptions o;
  o.threads = 2;
  o.ctx = 256;
  EXPECT_LE(MaxAbsDiff(RunAll(o, ids, ids.size()), RunAll(o, ids, 1)), 1e-4);
}

TEST(ForwardTest, ThreadCountDoesNotChangeResults) {
  const auto ids = Tokens(64);
  EngineOptions one;
  one.threads = 1;
  one.ctx = 128;
  EngineOptions three = one;
  three.threads = 3;
  EXPECT_LE(MaxAbsDiff(RunAll(one, ids, 9), RunAll(three, ids, 9)), 1e-5);
}

TEST(ForwardTest, F16KvCacheStaysClose) {
  const auto ids = Tokens(64);
  EngineOptions f32;
  f32.threads = 2;
  f32.ctx = 128;
  EngineOptions f16 = f32;
  f16.kv_dtype = DType::kF16;
  const double d = MaxAbsDiff(RunAll(f32, ids, 64), RunAll(f16, ids, 64));
  EXPECT_GT(d, 0.0);   // it really is stored in f16
  EXPECT_LE(d, 0.05);  // and stays close (golden README: 0.05-0.1 for f16 KV)
}

}  // namespace
}  // namespace oko
