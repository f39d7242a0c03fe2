#include "engine/profile_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "engine/kernel_paths.h"

namespace oko {

namespace {

// The op's name without its layer ("attn.q_proj").
std::string OpName(const Node& n) { return std::string(SiteName(n.site)); }

bool ComputeBound(const Node& n, Phase phase) {
  if (phase == Phase::kDecode) return false;
  return n.kind == OpKind::kMatMul || n.kind == OpKind::kLogits || n.kind == OpKind::kAttention;
}

// An op's (or layer's) sums over its nodes.
struct Acc {
  ProfileRow row;
  double flops = 0, bytes = 0;
  // Decode: the time its nodes' limits allow, summed over the nodes bound by the read
  // bandwidth and over those bound by their kernel's peak.
  double bandwidth_s = 0, compute_s = 0;
  size_t order = 0;
};

void Finish(Acc& a, Phase phase, double total_ms, const MachineLimits& limits, double peak) {
  ProfileRow& r = a.row;
  const double s = r.ms / 1e3;
  r.share = total_ms > 0 ? r.ms / total_ms : 0;
  r.gflops = s > 0 ? a.flops / s / 1e9 : 0;
  r.gbs = s > 0 ? a.bytes / s / 1e9 : 0;
  if (phase == Phase::kDecode) {
    // Each node's limit is the slower of its bytes at the read bandwidth and its products
    // at its kernel's peak: one sequence's matrices are bound by the first, a batch's on
    // quantized weights can be by the second.
    r.compute_bound = a.compute_s > a.bandwidth_s;
    r.limit_fraction = s > 0 ? (a.bandwidth_s + a.compute_s) / s : 0;
    return;
  }
  const double limit = r.compute_bound ? peak : limits.read_gbs;
  r.limit_fraction = limit > 0 ? (r.compute_bound ? r.gflops : r.gbs) / limit : 0;
}

}  // namespace

PhaseProfile SummarizeProfile(const Profiler& p, const LayerGraph& g, Phase phase, int64_t tokens,
                              const MachineLimits& limits, double compute_peak_gflops, size_t sequences) {
  PhaseProfile out;
  out.phase = phase;
  out.tokens = tokens;
  out.sequences = static_cast<int64_t>(sequences);
  const auto& stats = p.stats(phase);
  const std::vector<WeightSite> sites = WeightSites(g);  // the matrices in node order
  size_t matrix = 0;
  std::map<std::string, Acc> ops, layers;
  for (size_t i = 0; i < stats.size() && i < g.nodes().size(); ++i) {
    const Node& n = g.nodes()[i];
    const bool is_matrix = n.linear != nullptr;
    const WeightSite* site = is_matrix && matrix < sites.size() ? &sites[matrix] : nullptr;
    matrix += is_matrix ? 1 : 0;
    const Profiler::Stat& s = stats[i];
    if (s.calls == 0) continue;
    out.total_ms += s.ns / 1e6;
    const double bandwidth_s = limits.read_gbs > 0 ? s.bytes / (limits.read_gbs * 1e9) : 0;
    const double peak = site != nullptr && phase == Phase::kDecode ? DecodePeakGops(*site, sequences, limits) : 0;
    const double compute_s = peak > 0 ? s.flops / (peak * 1e9) : 0;
    const bool node_compute_bound = compute_s > bandwidth_s;
    auto add = [&](std::map<std::string, Acc>& m, const std::string& key, bool bound) {
      Acc& a = m[key];
      if (a.row.name.empty()) a.order = m.size();
      a.row.name = key;
      a.row.calls += s.calls;
      a.row.ms += s.ns / 1e6;
      a.row.compute_bound = bound;
      a.flops += s.flops;
      a.bytes += s.bytes;
      if (node_compute_bound) {
        a.compute_s += compute_s;
      } else {
        a.bandwidth_s += bandwidth_s;
      }
    };
    add(ops, OpName(n), ComputeBound(n, phase));
    if (n.layer >= 0) add(layers, fmt::format("L{}", n.layer), false);
  }
  auto rows = [&](std::map<std::string, Acc>& m) {
    std::vector<Acc*> sorted;
    for (auto& [k, a] : m) sorted.push_back(&a);
    std::sort(sorted.begin(), sorted.end(), [](Acc* a, Acc* b) { return a->order < b->order; });
    std::vector<ProfileRow> v;
    for (Acc* a : sorted) {
      Finish(*a, phase, out.total_ms, limits, compute_peak_gflops);
      v.push_back(a->row);
    }
    return v;
  };
  out.by_op = rows(ops);
  out.by_layer = rows(layers);
  return out;
}

std::string FormatProfile(const PhaseProfile& p) {
  const std::string phase = p.phase == Phase::kPrefill ? "prefill"
                            : p.sequences > 1         ? fmt::format("decode of {} sequences together", p.sequences)
                                                      : "decode";
  std::string s = fmt::format("{}: {} tokens, {:.1f} ms ({:.1f} tok/s)\n", phase, p.tokens,
                              p.total_ms, p.total_ms > 0 ? p.tokens / (p.total_ms / 1e3) : 0.0);
  s += fmt::format("  {:<18} {:>7} {:>10} {:>6} {:>9} {:>8} {:>14}\n", "op", "calls", "ms", "share",
                   "GFLOP/s", "GB/s", "of limit");
  bool in_cache = false;
  for (const auto& r : p.by_op) {
    // Past 100% of the DRAM read bandwidth an op's bytes came from cache: say so rather
    // than print "111.9% bw" as if the limit were broken.
    const bool cache = !r.compute_bound && r.limit_fraction > 1;
    in_cache |= cache;
    s += fmt::format("  {:<18} {:>7} {:>10.2f} {:>5.1f}% {:>9.1f} {:>8.1f} {:>7.1f}% {:>6}\n", r.name,
                     r.calls, r.ms, 100 * r.share, r.gflops, r.gbs, 100 * r.limit_fraction,
                     r.compute_bound ? "peak" : cache ? "cache" : "bw");
  }
  if (in_cache) s += "  (cache: faster than the measured DRAM read bandwidth: its bytes were cache-resident)\n";
  s += fmt::format("  {:<18} {:>7} {:>10} {:>6}\n", "layer", "calls", "ms", "share");
  for (const auto& r : p.by_layer)
    s += fmt::format("  {:<18} {:>7} {:>10.2f} {:>5.1f}%\n", r.name, r.calls, r.ms, 100 * r.share);
  return s;
}

nlohmann::json ProfileToJson(const PhaseProfile& p) {
  auto rows = [](const std::vector<ProfileRow>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& r : v)
      a.push_back({{"name", r.name}, {"calls", r.calls}, {"ms", r.ms}, {"share", r.share},
                   {"gflops", r.gflops}, {"gbs", r.gbs},
                   {"bound", r.compute_bound ? "compute" : "memory"},
                   {"limit_fraction", r.limit_fraction}});
    return a;
  };
  return {{"tokens", p.tokens}, {"sequences", p.sequences}, {"total_ms", p.total_ms},
          {"tok_s", p.total_ms > 0 ? p.tokens / (p.total_ms / 1e3) : 0.0},
          {"ops", rows(p.by_op)}, {"layers", rows(p.by_layer)}};
}

}  // namespace oko
