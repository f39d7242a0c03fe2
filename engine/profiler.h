// Profiler: per node of the layer graph, calls, wall time, and the FLOPs and bytes its
// shapes imply (so GFLOP/s and GB/s come for free). Off means a null pointer in the
// engine: one branch per node. Prefill and decode are kept apart.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace oko {

enum class Phase : uint8_t { kPrefill = 0, kDecode = 1 };

struct OpCost {
  double flops = 0;
  double bytes = 0;
};

class Profiler {
 public:
  struct Stat {
    int64_t calls = 0;
    int64_t ns = 0;
    double flops = 0;
    double bytes = 0;
  };

  static int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void Record(Phase phase, size_t node, int64_t ns, const OpCost& cost) {
    auto& v = stats_[static_cast<int>(phase)];
    if (v.size() <= node) v.resize(node + 1);
    Stat& s = v[node];
    ++s.calls;
    s.ns += ns;
    s.flops += cost.flops;
    s.bytes += cost.bytes;
  }
  // Positions run through the model, per phase (a forward of one position is decode).
  void AddTokens(Phase phase, int64_t n) { tokens_[static_cast<int>(phase)] += n; }
  int64_t tokens(Phase phase) const { return tokens_[static_cast<int>(phase)]; }
  const std::vector<Stat>& stats(Phase phase) const { return stats_[static_cast<int>(phase)]; }
  void Clear() {
    stats_[0].clear();
    stats_[1].clear();
    tokens_[0] = tokens_[1] = 0;
  }

 private:
  std::vector<Stat> stats_[2];
  int64_t tokens_[2] = {0, 0};
};

}  // namespace oko
