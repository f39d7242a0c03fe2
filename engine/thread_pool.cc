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
  epoch_.fetch_add(1, std::memory_order_release);
  epoch_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::DrainTasks(int worker) {
  for (;;) {
    const size_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (t >= num_tasks_) break;
    fn_(ctx_, t, worker);
  }
}

void ThreadPool::Dispatch(size_t num_tasks, TaskFn fn, const void* ctx) {
  fn_ = fn;
  ctx_ = ctx;
  num_tasks_ = num_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  busy_workers_.store(num_threads_ - 1, std::memory_order_relaxed);
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  // A futex wake costs a system call: only pay it when a worker went to sleep.
  if (sleepers_.load(std::memory_order_seq_cst) > 0) epoch_.notify_all();
  DrainTasks(0);
  // Wait for the workers to finish their last task (they may still hold one).
  while (busy_workers_.load(std::memory_order_acquire) != 0) _mm_pause();
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
    DrainTasks(worker);
    busy_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace oko
