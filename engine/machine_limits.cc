#include "engine/machine_limits.h"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/mapped_file.h"
#include "ops/gemm_onednn.h"
#include "ops/machine_probe.h"

namespace oko {

namespace {

namespace fs = std::filesystem;
constexpr size_t kReadBytes = size_t{512} << 20;  // far beyond any cache here (DEPS.md)
constexpr int kRepeats = 5;

double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The fastest of `repeats` runs, and the share of its wall time x threads that this
// process got on a CPU (below 1: another process took some).
struct Best {
  double seconds = 1e30;
  double cpu_share = 1;
};

template <typename Fn>
Best BestSeconds(int repeats, int threads, const Fn& fn) {
  Best best;
  for (int r = 0; r < repeats; ++r) {
    const double cpu0 = ProcessCpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s < best.seconds) best = {s, std::min(1.0, (ProcessCpuSeconds() - cpu0) / (s * threads))};
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

// GB/s, and the CPU share of the best run.
std::pair<double, double> MeasureReadGbs(ThreadPool& pool) {
  void* mem = mmap(nullptr, kReadBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return {0, 1};
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
  const Best best = BestSeconds(kRepeats, pool.size(), [&] {
    std::atomic<size_t> next{0};
    OnAllThreadsAtOnce(pool, [&](size_t) {
      for (size_t c; (c = next.fetch_add(1)) < kReadBytes / kChunk;)
        checksum += ReadBytesChecksum(bytes + c * kChunk, kChunk);
    });
  });
  munmap(mem, kReadBytes);
  return {static_cast<double>(kReadBytes) / best.seconds / 1e9, best.cpu_share};
}

// GFLOP/s, and the CPU share of the best run.
template <typename Probe>
std::pair<double, double> MeasurePeakGflops(ThreadPool& pool, Probe probe) {
  constexpr size_t kIterations = 4 << 20;
  double flops = 0;
  const Best best = BestSeconds(kRepeats, pool.size(), [&] {
    std::atomic<double> total{0};
    OnAllThreadsAtOnce(pool, [&](size_t) { total += probe(kIterations); });
    flops = total;
  });
  return {flops / best.seconds / 1e9, best.cpu_share};
}

std::string LocalTimeNow() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M", std::localtime(&now));
  return text;
}

// A field of /proc/cpuinfo's first processor ("model name", "cpu family", ...).
std::string CpuInfoField(const std::string& name) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos || line.rfind(name, 0) != 0) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    if (key == name) return colon + 2 <= line.size() ? line.substr(colon + 2) : "";
  }
  return "";
}

fs::path CachePath() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const fs::path base = xdg != nullptr && *xdg ? fs::path(xdg) : fs::path(home ? home : "/tmp") / ".cache";
  return base / "oko" / "machine.json";
}

// Bumped when a probe changes, so figures measured by an older probe are not reused
// (version 2: the peak probes no longer overstate 8x; 3: keyed by CPU family and model,
// with the probe's CPU share; 4: the read probe reads 6 streams at once; 5: the compute
// rates include AMX; 6: the int8 dot's peak).
constexpr int kProbeVersion = 6;

std::string CacheKey(const std::string& cpu, int threads) {
  return cpu + " | threads " + std::to_string(threads) + " | probe " +
         std::to_string(kProbeVersion);
}

}  // namespace

std::string CpuIdentity() {
  const std::string name = CpuInfoField("model name");
  return fmt::format("{} (family {}, model {})", name.empty() ? "unknown cpu" : name,
                     CpuInfoField("cpu family"), CpuInfoField("model"));
}

std::string MachineLimits::ProbeNote() const {
  std::string note = "measured " + (measured_at.empty() ? std::string("earlier") : measured_at);
  if (disturbed())
    note += fmt::format(" WHILE BUSY (the probe got {:.0f}% of its CPU time: figures too low; "
                        "measured again next run)", 100 * cpu_share);
  return note;
}

size_t LastLevelCacheBytes() {
  size_t best = 0;
  int best_level = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = fmt::format("/sys/devices/system/cpu/cpu0/cache/index{}/", index);
    std::ifstream level_in(dir + "level"), size_in(dir + "size");
    int level = 0;
    std::string size;  // "32768K"
    if (!(level_in >> level) || !(size_in >> size) || size.empty()) continue;
    const size_t unit = size.back() == 'K' ? 1024 : size.back() == 'M' ? 1024 * 1024 : 1;
    const size_t bytes = std::strtoull(size.c_str(), nullptr, 10) * unit;
    if (level > best_level || (level == best_level && bytes > best)) best_level = level, best = bytes;
  }
  return best;
}

bool DecodeBeatsReadProbe(const MachineLimits& m, double bytes_per_token, double tok_s, size_t llc_bytes) {
  // The KV bytes per token are an average, timings are noisy, and a prefetching decode
  // streams a little faster than the probe reads (bf16, Zen 4, 1 thread: 101-105% of it).
  constexpr double kMargin = 1.10;
  if (llc_bytes == 0 || bytes_per_token <= 2.0 * static_cast<double>(llc_bytes) || m.read_gbs <= 0) return false;
  return bytes_per_token * tok_s / 1e9 > kMargin * m.read_gbs;
}

std::string RemeasureIfDecodeBeatsProbe(ThreadPool& pool, double bytes_per_token, double tok_s,
                                        MachineLimits* limits) {
  if (!DecodeBeatsReadProbe(*limits, bytes_per_token, tok_s, LastLevelCacheBytes())) return "";
  const double cached = limits->read_gbs;
  *limits = LoadOrMeasureMachine(pool, /*remeasure=*/true);
  return fmt::format("decode read {:.1f} GB/s, more than the cached {:.1f}", bytes_per_token * tok_s / 1e9, cached);
}

MachineLimits MeasureMachine(ThreadPool& pool) {
  MachineLimits m;
  m.cpu = CpuIdentity();
  m.simd = SimdTargetName();
  m.threads = pool.size();
  m.measured_at = LocalTimeNow();
  const auto [read, read_share] = MeasureReadGbs(pool);
  const auto [f32, f32_share] = MeasurePeakGflops(pool, FmaF32Flops);
  const auto [bf16, bf16_share] = MeasurePeakGflops(pool, DotBf16Flops);
  const auto [int8, int8_share] = MeasurePeakGflops(pool, DotInt8Ops);
  m.read_gbs = read;
  m.f32_gflops = f32;
  m.bf16_gflops = bf16;
  m.int8_gops = int8;
  m.cpu_share = std::min({read_share, f32_share, bf16_share, int8_share});
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
  m.cpu = CpuIdentity();
  m.simd = SimdTargetName();
  m.threads = threads;
  m.read_gbs = e.value("read_gbs", 0.0);
  m.f32_gflops = e.value("f32_gflops", 0.0);
  m.bf16_gflops = e.value("bf16_gflops", 0.0);
  m.int8_gops = e.value("int8_gops", 0.0);
  m.measured_at = e.value("measured_at", "");
  m.cpu_share = e.value("cpu_share", 1.0);
  if (m.read_gbs > 0 && m.f32_gflops > 0) return m;
  return std::nullopt;
}

}  // namespace

std::optional<MachineLimits> CachedMachineLimits(ThreadPool& pool) {
  return FromCache(ReadCache(CachePath()), CacheKey(CpuIdentity(), pool.size()), pool.size());
}

namespace {
void WriteCache(const fs::path& path, const nlohmann::json& cache) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (!ec) (void)WriteFileAtomically(path.string(), cache.dump(2) + "\n");  // a cache: best effort
}
}  // namespace

MachineLimits LoadOrMeasureMachine(ThreadPool& pool, bool remeasure) {
  using json = nlohmann::json;
  const fs::path path = CachePath();
  const std::string key = CacheKey(CpuIdentity(), pool.size());
  json cache = ReadCache(path);
  if (!remeasure) {
    // Figures a busy machine disturbed are measured again rather than trusted for good.
    std::optional<MachineLimits> m = FromCache(cache, key, pool.size());
    if (m && !m->disturbed()) return *m;
  }
  const MachineLimits m = MeasureMachine(pool);
  cache[key] = {{"read_gbs", m.read_gbs},       {"f32_gflops", m.f32_gflops},
                {"bf16_gflops", m.bf16_gflops}, {"int8_gops", m.int8_gops},
                {"measured_at", m.measured_at},
                {"cpu_share", m.cpu_share},     {"simd", m.simd}};
  WriteCache(path, cache);
  return m;
}

namespace {
// GFLOP/s of oneDNN's bf16 matmul on one thread (as the engine runs it: one matmul per
// worker), and the CPU share of the best run; {0, 1} where it has no AMX tiles.
std::pair<double, double> MeasureAmxGemmGflops() {
  if (!OnednnAmxBf16Supported()) return {0, 1};
  constexpr size_t kM = 128, kN = 512, kK = 512, kRuns = 100;
  const std::vector<uint16_t> w(kN * kK, 0x3f80);  // bf16 1.0
  const std::vector<float> x(kM * kK, 0.5f);
  std::vector<float> y(kM * kN);
  SetOnednnThreads(1);
  OnednnMatMul gemm(w.data(), DType::kBF16, kN, kK, nullptr, ComputeMode::kBf16);
  gemm.Run(x.data(), kK, kM, y.data(), kN);  // its JIT, outside the timing
  const Best best = BestSeconds(kRepeats, 1, [&] {
    for (size_t r = 0; r < kRuns; ++r) gemm.Run(x.data(), kK, kM, y.data(), kN);
  });
  return {2.0 * kM * kN * kK * kRuns / best.seconds / 1e9, best.cpu_share};
}
}  // namespace

ComputeRates LoadOrMeasureComputeRates() {
  const fs::path path = CachePath();
  const std::string key = CpuIdentity() + " | compute rates | probe " + std::to_string(kProbeVersion);
  nlohmann::json cache = ReadCache(path);
  if (cache.contains(key) && cache[key].is_object() && cache[key].value("cpu_share", 0.0) >= 0.9)
    return {cache[key].value("f32_fma_gflops", 0.0), cache[key].value("bf16_dot_gflops", 0.0),
            cache[key].value("amx_gemm_gflops", 0.0)};
  ThreadPool one(1);
  const auto [f32, f32_share] = MeasurePeakGflops(one, FmaF32Flops);
  const auto [bf16, bf16_share] = MeasurePeakGflops(one, DotBf16Flops);
  const auto [amx, amx_share] = MeasureAmxGemmGflops();
  cache[key] = {{"f32_fma_gflops", f32},
                {"bf16_dot_gflops", bf16},
                {"amx_gemm_gflops", amx},
                {"cpu_share", std::min({f32_share, bf16_share, amx_share})},
                {"measured_at", LocalTimeNow()}};
  WriteCache(path, cache);
  return {f32, bf16, amx};
}

}  // namespace oko
