#include "engine/thread_pool.h"

#include <immintrin.h>

namespace oko {

namespace {
// About 50-100 µs of spinning: covers the gap between the kernels of one decode step.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads < 1 ? 1 : num_threads) {
  for (int w = 1; w < num_threads_; ++w) threads_.emplace_back([this, w] { WorkerLoop(w); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  epoch_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::DrainTasks(uint32_t job, int worker) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(c >> 32) != job) return;
    const size_t t = static_cast<uint32_t>(c);
    if (t >= num_tasks_) return;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
    fn_(ctx_, t, worker);
    done_tasks_.fetch_add(1, std::memory_order_release);
    c = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::Dispatch(size_t num_tasks, TaskFn fn, const void* ctx) {
  const uint32_t job = epoch_.load(std::memory_order_relaxed) + 1;
  fn_ = fn;
  ctx_ = ctx;
  num_tasks_ = num_tasks;
  done_tasks_.store(0, std::memory_order_relaxed);
  claim_.store(static_cast<uint64_t>(job) << 32, std::memory_order_release);
  epoch_.store(job, std::memory_order_seq_cst);
  // A futex wake costs a system call: only pay it when a worker went to sleep.
  if (sleepers_.load(std::memory_order_seq_cst) > 0) epoch_.notify_all();
  DrainTasks(job, 0);
  while (done_tasks_.load(std::memory_order_acquire) != num_tasks) _mm_pause();
}

void ThreadPool::WorkerLoop(int worker) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t e = epoch_.load(std::memory_order_acquire);
    for (int i = 0; e == seen && i < kSpinIterations; ++i) {
      _mm_pause();
      e = epoch_.load(std::memory_order_acquire);
    }
    if (e == seen) {
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      epoch_.wait(seen, std::memory_order_seq_cst);
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      continue;
    }
    seen = e;
    if (stop_.load(std::memory_order_acquire)) return;
    DrainTasks(e, worker);
  }
}

}  // namespace oko
