// The thread pool under stress: every task of every job runs exactly once, jobs follow
// each other without a lost wake-up, and the pool shuts down cleanly.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "engine/thread_pool.h"

namespace oko {
namespace {

TEST(ThreadPoolTest, EveryTaskOfEveryJobRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(64);
    for (int job = 0; job < 20000; ++job) {
      const size_t tasks = 1 + (job * 7) % 40;
      for (auto& h : hits) h.store(0, std::memory_order_relaxed);
      pool.Run(tasks, [&](size_t t, int worker) {
        ASSERT_LT(worker, threads);
        hits[t].fetch_add(1, std::memory_order_relaxed);
      });
      for (size_t t = 0; t < hits.size(); ++t)
        ASSERT_EQ(hits[t].load(), t < tasks ? 1 : 0) << "job " << job << " task " << t;
    }
  }
}

TEST(ThreadPoolTest, JobsAfterWorkersFellAsleepStillComplete) {
  ThreadPool pool(2);
  std::atomic<int> sum{0};
  for (int job = 0; job < 5; ++job) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // workers go to sleep
    pool.Run(8, [&](size_t t, int) { sum += static_cast<int>(t); });
  }
  EXPECT_EQ(sum.load(), 5 * 28);
}

TEST(ThreadPoolTest, ParallelForCoversTheRangeInAlignedChunks) {
  ThreadPool pool(3);
  for (size_t n : {1, 7, 64, 1000, 1025}) {
    std::vector<std::atomic<int>> seen(n);
    pool.ParallelFor(n, 16, [&](size_t b, size_t e, int) {
      EXPECT_EQ(b % 16, 0u);
      for (size_t i = b; i < e; ++i) seen[i]++;
    });
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i].load(), 1) << "n " << n << " i " << i;
  }
}

}  // namespace
}  // namespace oko
