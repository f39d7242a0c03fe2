// ThreadPool: one per process; the calling thread is worker 0 and N-1 workers wait for
// work. Run() hands out task indices from an atomic counter, so uneven tasks balance, and
// the caller works too: a job finishes when its tasks are done, not when every worker
// has woken up, so a worker the OS has descheduled (shared cores) never stalls a job it
// did not join. Workers spin briefly after each job (decode issues hundreds of jobs per
// token), then sleep on a futex-backed atomic wait so an idle engine uses no CPU.
#pragma once

#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace oko {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }

  // Calls fn(task, worker) for every task in [0, num_tasks) and returns when all are
  // done. worker is in [0, size()). Must not be called from inside a task.
  template <typename Fn>
  void Run(size_t num_tasks, const Fn& fn) {
    if (num_tasks == 0) return;
    if (num_threads_ == 1 || num_tasks == 1) {
      for (size_t t = 0; t < num_tasks; ++t) fn(t, 0);
      return;
    }
    Dispatch(num_tasks, &Invoke<Fn>, &fn);
  }

  // Splits [0, n) into about `chunks_per_thread * size()` contiguous ranges, each a
  // multiple of `align` (except the last), and calls fn(begin, end, worker).
  template <typename Fn>
  void ParallelFor(size_t n, size_t align, const Fn& fn, size_t chunks_per_thread = 1) {
    if (n == 0) return;
    const size_t parts = static_cast<size_t>(num_threads_) * chunks_per_thread;
    size_t chunk = (n + parts - 1) / parts;
    chunk = (chunk + align - 1) / align * align;
    const size_t tasks = (n + chunk - 1) / chunk;
    Run(tasks, [&](size_t t, int worker) {
      const size_t begin = t * chunk;
      const size_t end = begin + chunk < n ? begin + chunk : n;
      fn(begin, end, worker);
    });
  }

 private:
  using TaskFn = void (*)(const void* ctx, size_t task, int worker);
  template <typename Fn>
  static void Invoke(const void* ctx, size_t task, int worker) {
    (*static_cast<const Fn*>(ctx))(task, worker);
  }
  void Dispatch(size_t num_tasks, TaskFn fn, const void* ctx);
  void WorkerLoop(int worker);
  // Claims and runs tasks of job `job` until none is left (or the job is over).
  void DrainTasks(uint32_t job, int worker);

  const int num_threads_;
  std::vector<std::thread> threads_;
  // The current job. fn_, ctx_ and num_tasks_ are written before claim_ names the new
  // job and stay valid until its last claimed task is done.
  TaskFn fn_ = nullptr;
  const void* ctx_ = nullptr;
  size_t num_tasks_ = 0;
  // High 32 bits: job number; low 32: next unclaimed task. A worker claims a task with a
  // compare-exchange that fails once the job it woke for is no longer current.
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) std::atomic<size_t> done_tasks_{0};
  alignas(64) std::atomic<uint32_t> epoch_{0};  // = the current job number
  std::atomic<int> sleepers_{0};  // workers blocked in epoch_.wait()
  std::atomic<bool> stop_{false};
};

}  // namespace oko
