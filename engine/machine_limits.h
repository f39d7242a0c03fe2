// MachineLimits: what this machine can do, measured (never assumed): streaming read
// bandwidth (decode is bound by it) and f32 / bf16 FMA peak (prefill is bound by it),
// for a given thread count. Cached per machine in ~/.cache/oko/machine.json.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "engine/thread_pool.h"

namespace oko {

struct MachineLimits {
  std::string cpu;
  int threads = 1;
  double read_gbs = 0;     // GB/s (1e9 bytes) of a streaming read over 512 MiB
  double f32_gflops = 0;   // FMA peak
  double bf16_gflops = 0;  // vdpbf16ps peak; 0 without AVX512-BF16
};

// Runs the probes on `pool` (about a second).
MachineLimits MeasureMachine(ThreadPool& pool);
// The cached figures for this CPU and thread count, measured and cached when absent or
// when `remeasure`.
MachineLimits LoadOrMeasureMachine(ThreadPool& pool, bool remeasure);
// The cached figures only (nothing measured): unset when this CPU and thread count have
// none yet. For views that must not stall for a second, such as oko chat's /profile.
std::optional<MachineLimits> CachedMachineLimits(ThreadPool& pool);
std::string CpuModelName();

}  // namespace oko
