#include "tools/resources.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

#include "common/dtype.h"

namespace oko {
namespace {

// Saturating arithmetic: an absurd -c must give an absurd size, not a wrapped small one.
uint64_t Mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}
uint64_t Add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

}  // namespace

MemoryEstimate EstimateMemory(const ModelConfig& c, const EngineOptions& o) {
  MemoryEstimate e;
  const uint64_t ctx = static_cast<uint64_t>(std::max<int64_t>(o.ctx, 0));
  const uint64_t rows = std::min<uint64_t>(static_cast<uint64_t>(o.max_batch), ctx);
  const uint64_t slots = Add(ctx, rows);  // window + sink + the ring's slack of one batch
  e.kv_cache = Mul(Mul(2 * static_cast<uint64_t>(c.num_layers * c.kv_dim()), slots), DTypeSize(o.kv_dtype));
  // Buffers: a batch of rows of every activation width (vocab for the logits).
  const uint64_t widths = static_cast<uint64_t>(c.vocab_size + 4 * c.intermediate_size +
                                                 8 * (c.hidden_size + c.num_heads * c.head_dim));
  const uint64_t threads = static_cast<uint64_t>(o.threads > 0 ? o.threads : HardwareThreads());
  // Attention scratch per thread: a block of padded queries times (head_dim + keys).
  const uint64_t group = static_cast<uint64_t>(c.num_heads / std::max<int64_t>(c.num_kv_heads, 1));
  const uint64_t scratch = Mul(Mul(64 + group, Add(static_cast<uint64_t>(c.head_dim), slots)), 4);
  e.activations = Add(Mul(Mul(rows, widths), 4), Mul(threads, scratch));
  return e;
}

uint64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

int HardwareThreads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }
int MaxThreads() { return 4 * HardwareThreads(); }

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.{}f} {}", bytes, u == 0 ? 0 : 1, units[u]);
}

std::string BytesAndHuman(uint64_t bytes) {
  return fmt::format("{} bytes ({})", bytes, HumanBytes(static_cast<double>(bytes)));
}

}  // namespace oko
