// ProfileReport: the profiler's per-node numbers folded per op (across layers) and per
// layer, for prefill and decode apart, with achieved GFLOP/s and GB/s and the fraction of
// the machine's measured limit: bandwidth for memory-bound ops, FMA peak for compute-bound
// ones (prefill matmuls and attention; in decode, matrices whose kernel's peak binds).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/graph.h"
#include "engine/machine_limits.h"
#include "engine/profiler.h"

namespace oko {

struct ProfileRow {
  std::string name;  // op ("attn.q_proj", "final_norm") or layer ("L3")
  int64_t calls = 0;
  double ms = 0;
  double share = 0;  // of the phase's total time
  double gflops = 0;
  double gbs = 0;
  bool compute_bound = false;
  double limit_fraction = 0;  // achieved / limit
};

struct PhaseProfile {
  Phase phase;
  double total_ms = 0;
  int64_t tokens = 0;
  int64_t sequences = 1;  // decoded together per step
  std::vector<ProfileRow> by_op;
  std::vector<ProfileRow> by_layer;
};

// `compute_peak_gflops` is the peak the prefill matmuls run against (bf16 or f32). In
// decode, `sequences` decoded together per step: each matrix's limit is the slower of its
// bytes at the read bandwidth and its products at the peak of its kernel for that many
// rows (DecodePeakGops), so a batch's quantized matrices can be compute bound.
PhaseProfile SummarizeProfile(const Profiler& p, const LayerGraph& g, Phase phase, int64_t tokens,
                              const MachineLimits& limits, double compute_peak_gflops, size_t sequences = 1);
std::string FormatProfile(const PhaseProfile& p);
nlohmann::json ProfileToJson(const PhaseProfile& p);

}  // namespace oko
