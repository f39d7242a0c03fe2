#include "engine/machine_limits.h"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/mapped_file.h"
#include "ops/machine_probe.h"

namespace oko {

namespace {

namespace fs = std::filesystem;
constexpr size_t kReadBytes = size_t{512} << 20;  // far beyond any cache here (DEPS.md)
constexpr int kRepeats = 5;

template <typename Fn>
double BestSeconds(int repeats, const Fn& fn) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Runs fn(thread) once on every thread of the pool at the same time: each task waits at
// a barrier until all have started, so no thread runs two tasks in a row while another
// is still waking up (which would measure one core twice).
template <typename Fn>
void OnAllThreadsAtOnce(ThreadPool& pool, const Fn& fn) {
  std::atomic<int> arrived{0};
  const int n = pool.size();
  pool.Run(n, [&](size_t t, int) {
    arrived.fetch_add(1);
    while (arrived.load() < n) _mm_pause();
    fn(t);
  });
}

double MeasureReadGbs(ThreadPool& pool) {
  void* mem = mmap(nullptr, kReadBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0;
  auto* bytes = static_cast<uint8_t*>(mem);
  // Huge pages: the machine's best streaming read (4 KiB pages measured 1.5x lower).
  madvise(mem, kReadBytes, MADV_HUGEPAGE);
  std::memset(bytes, 1, kReadBytes);  // fault the pages in first
  // Threads claim 4 MiB chunks as they go, as decode's GEMVs split their rows: a core
  // slowed by another job (this VM's second core is shared) then reads less instead of
  // holding the others up, and the probe measures what a balanced job gets. A static
  // half each read 28-36 GB/s on 2 threads while decode streamed weights at 44.5.
  constexpr size_t kChunk = size_t{4} << 20;
  std::atomic<uint64_t> checksum{0};
  const double s = BestSeconds(kRepeats, [&] {
    std::atomic<size_t> next{0};
    OnAllThreadsAtOnce(pool, [&](size_t) {
      for (size_t c; (c = next.fetch_add(1)) < kReadBytes / kChunk;)
        checksum += ReadBytesChecksum(bytes + c * kChunk, kChunk);
    });
  });
  munmap(mem, kReadBytes);
  return static_cast<double>(kReadBytes) / s / 1e9;
}

template <typename Probe>
double MeasurePeakGflops(ThreadPool& pool, Probe probe) {
  constexpr size_t kIterations = 4 << 20;
  double flops = 0;
  const double s = BestSeconds(kRepeats, [&] {
    std::atomic<double> total{0};
    OnAllThreadsAtOnce(pool, [&](size_t) { total += probe(kIterations); });
    flops = total;
  });
  return flops / s / 1e9;
}

fs::path CachePath() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const fs::path base = xdg != nullptr && *xdg ? fs::path(xdg) : fs::path(home ? home : "/tmp") / ".cache";
  return base / "oko" / "machine.json";
}

// Bumped when a probe changes, so figures measured by an older probe are not reused
// (version 2: the peak probes no longer overstate 8x).
constexpr int kProbeVersion = 2;

std::string CacheKey(const std::string& cpu, int threads) {
  return cpu + " | threads " + std::to_string(threads) + " | probe " +
         std::to_string(kProbeVersion);
}

}  // namespace

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
      return line.substr(line.find(':') + 2);
  return "unknown cpu";
}

MachineLimits MeasureMachine(ThreadPool& pool) {
  MachineLimits m;
  m.cpu = CpuModelName();
  m.threads = pool.size();
  m.read_gbs = MeasureReadGbs(pool);
  m.f32_gflops = MeasurePeakGflops(pool, FmaF32Flops);
  m.bf16_gflops = MeasurePeakGflops(pool, DotBf16Flops);
  return m;
}

namespace {

nlohmann::json ReadCache(const fs::path& path) {
  nlohmann::json cache = nlohmann::json::object();
  if (auto text = ReadFileToString(path.string()); text.ok()) {
    cache = nlohmann::json::parse(*text, nullptr, false);
    if (!cache.is_object()) cache = nlohmann::json::object();
  }
  return cache;
}

std::optional<MachineLimits> FromCache(const nlohmann::json& cache, const std::string& key, int threads) {
  if (!cache.contains(key) || !cache[key].is_object()) return std::nullopt;
  const nlohmann::json& e = cache[key];
  MachineLimits m;
  m.cpu = CpuModelName();
  m.threads = threads;
  m.read_gbs = e.value("read_gbs", 0.0);
  m.f32_gflops = e.value("f32_gflops", 0.0);
  m.bf16_gflops = e.value("bf16_gflops", 0.0);
  if (m.read_gbs > 0 && m.f32_gflops > 0) return m;
  return std::nullopt;
}

}  // namespace

std::optional<MachineLimits> CachedMachineLimits(ThreadPool& pool) {
  return FromCache(ReadCache(CachePath()), CacheKey(CpuModelName(), pool.size()), pool.size());
}

MachineLimits LoadOrMeasureMachine(ThreadPool& pool, bool remeasure) {
  using json = nlohmann::json;
  const fs::path path = CachePath();
  const std::string key = CacheKey(CpuModelName(), pool.size());
  json cache = ReadCache(path);
  if (!remeasure) {
    if (std::optional<MachineLimits> m = FromCache(cache, key, pool.size())) return *m;
  }
  const MachineLimits m = MeasureMachine(pool);
  cache[key] = {{"read_gbs", m.read_gbs}, {"f32_gflops", m.f32_gflops}, {"bf16_gflops", m.bf16_gflops}};
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (!ec) (void)WriteFileAtomically(path.string(), cache.dump(2) + "\n");  // a cache: best effort
  return m;
}

}  // namespace oko
