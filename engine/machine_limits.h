// MachineLimits: what this machine can do, measured (never assumed): streaming read
// bandwidth (decode is bound by it), f32 / bf16 FMA peak (prefill is bound by it) and the
// int8 dot's (decoding a batch of sequences on quantized weights can be),
// for a given thread count. Cached per machine in ~/.cache/oko/machine.json.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "engine/thread_pool.h"

namespace oko {

struct MachineLimits {
  std::string cpu;         // CpuIdentity()
  std::string simd;        // the Highway target the ops run (SimdTargetName())
  int threads = 1;
  double read_gbs = 0;     // GB/s (1e9 bytes) reading 512 MiB, 6 streams per thread
  double f32_gflops = 0;   // FMA peak
  double bf16_gflops = 0;  // vdpbf16ps peak; 0 without AVX512-BF16
  double int8_gops = 0;    // vpdpbusd peak (2 ops per byte product); 0 off the AVX3_DL target
  std::string measured_at;  // local time of the probe, "2026-12-04 14:10"
  // The probes' threads got less than 90% of their wall time on a CPU (another process
  // ran): the figures are too low to trust, and are measured again next time.
  double cpu_share = 1;
  bool disturbed() const { return cpu_share < 0.9; }
  // "measured 2026-12-04 14:10" (+ a warning when disturbed).
  std::string ProbeNote() const;
};

// Single-core arithmetic rates of this CPU (register-only probes), what the compute mode
// is chosen from (engine/compute_choice.h).
struct ComputeRates {
  double f32_fma_gflops = 0;
  double bf16_dot_gflops = 0;  // 0: no AVX512-BF16
  // oneDNN's bf16 matmul on AMX tiles, achieved (M = 128, N = K = 512, in L2); 0: no AMX
  double amx_gemm_gflops = 0;
};

// Runs the probes on `pool` (about a second).
MachineLimits MeasureMachine(ThreadPool& pool);
// The cached figures for this CPU and thread count, measured and cached when absent or
// when `remeasure`.
MachineLimits LoadOrMeasureMachine(ThreadPool& pool, bool remeasure);
// The cached figures only (nothing measured): unset when this CPU and thread count have
// none yet. For views that must not stall for a second, such as oko chat's /profile.
std::optional<MachineLimits> CachedMachineLimits(ThreadPool& pool);
// "AMD EPYC (family 23, model 49)": the model name alone does not tell Zen 2 from Zen 4.
std::string CpuIdentity();

// The size of cpu0's last-level cache in bytes (sysfs); 0 when the system does not say.
size_t LastLevelCacheBytes();

// Whether a decode that read `bytes_per_token` at `tok_s` proves m.read_gbs too low: bytes
// that cannot stay in the caches (more than twice the last-level cache, llc_bytes; never
// when that is unknown, 0) streamed over 10% faster than the probe says the memory reads.
// The CPU-share check cannot see it: a neighbour busy with the memory, not the cores,
// slowed the probe (seen on Zen 4: 33 GB/s cached, 57 measured again, decode "at 118% of
// the limit"). The caller measures again.
bool DecodeBeatsReadProbe(const MachineLimits& m, double bytes_per_token, double tok_s, size_t llc_bytes);

// *limits measured again (and cached) where a decode on `pool` proved them too low
// (DecodeBeatsReadProbe with this machine's cache): "decode read 41.2 GB/s, more than the
// cached 33.0", or "" where they stand.
std::string RemeasureIfDecodeBeatsProbe(ThreadPool& pool, double bytes_per_token, double tok_s,
                                        MachineLimits* limits);
// Measured once per CPU (about 0.1 s) and cached beside the machine limits.
ComputeRates LoadOrMeasureComputeRates();

}  // namespace oko
