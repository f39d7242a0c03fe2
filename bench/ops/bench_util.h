// Helpers for the op benchmarks: a 1 GiB arena to make weight reads come from DRAM,
// throughput counters, and the model shapes.
#pragma once

#include <benchmark/benchmark.h>
#include <hwy/targets.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace oko::bench {

// Qwen3-0.6B and Qwen3-1.7B dimensions.
constexpr size_t kHidden06 = 1024, kInter06 = 3072, kVocab = 151936;
constexpr size_t kHidden17 = 2048, kInter17 = 6144;
constexpr size_t kHeadDim = 128, kHeads06 = 16, kKvHeads06 = 8;

// 1 GiB filled with 0x3c00 half-words: finite as f32 (~0.0078), bf16 (0.0078) and f16
// (1.0). "Cold" benchmarks take a different slice every iteration, so nothing stays in
// cache (DEPS.md: 24 MiB already mostly falls out of this VM's cache). On huge pages, as
// the model's weights are (AllocateStreamedBytes): on 4 KiB pages the Q4_K GEMV from DRAM
// read 78 GFLOP/s where the same code read 90 on huge pages.
class Arena {
 public:
  static constexpr size_t kBytes = size_t{1} << 30;
  static Arena& Get() {
    static Arena arena;
    return arena;
  }
  // The i-th slice of `bytes` (64-byte aligned); wraps around the arena.
  const void* Slice(size_t bytes, size_t i) const {
    const size_t stride = (bytes + 4095) / 4096 * 4096;
    const size_t count = kBytes / stride;
    return data_ + (i % count) * stride;
  }

 private:
  Arena() {
    data_ = static_cast<uint8_t*>(std::aligned_alloc(size_t{2} << 20, kBytes));
    madvise(data_, kBytes, MADV_HUGEPAGE);
    const uint16_t fill = 0x3c00;
    for (size_t i = 0; i < kBytes; i += 2) std::memcpy(data_ + i, &fill, 2);
  }
  uint8_t* data_;
};

// Wall time of the fastest iteration. On this shared machine the mean wall time includes
// preemption by other jobs (and CPU time still includes their cache and memory traffic),
// so the best iteration is the estimate of an idle machine, as in DEPS.md. Clock reads
// add ~20 ns per iteration: compare sub-microsecond ops with care.
class BestTime {
 public:
  void Start() { t0_ = Clock::now(); }
  void Stop() { best_ = std::min(best_, std::chrono::duration<double>(Clock::now() - t0_).count()); }
  double seconds() const { return best_; }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0_;
  double best_ = 1e30;
};

// Counters from per-iteration bytes and flops: GB/s and GFLOP/s from the mean wall time
// (benchmarks use UseRealTime), GB/s_best and GFLOP/s_best from the fastest iteration.
inline void SetThroughput(benchmark::State& s, double bytes, double flops, const BestTime& best) {
  using C = benchmark::Counter;
  s.counters["GB/s"] = C(bytes * 1e-9, C::kIsIterationInvariantRate);
  s.counters["GFLOP/s"] = C(flops * 1e-9, C::kIsIterationInvariantRate);
  s.counters["GB/s_best"] = C(bytes * 1e-9 / best.seconds());
  s.counters["GFLOP/s_best"] = C(flops * 1e-9 / best.seconds());
}

// The Highway target HWY_DYNAMIC_DISPATCH runs: the best one compiled and supported.
inline const char* DispatchedTargetName() {
  return hwy::TargetName(hwy::SupportedAndGeneratedTargets().front());
}

}  // namespace oko::bench
