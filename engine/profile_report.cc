#include "engine/profile_report.h"

#include <fmt/format.h>

#include <map>

namespace oko {

namespace {

// The op's name without its layer ("attn.q_proj").
std::string OpName(const Node& n) { return std::string(SiteName(n.site)); }

bool ComputeBound(const Node& n, Phase phase) {
  if (phase == Phase::kDecode) return false;
  return n.kind == OpKind::kMatMul || n.kind == OpKind::kLogits || n.kind == OpKind::kAttention;
}

void Finish(ProfileRow& r, double total_ms, const MachineLimits& limits, double peak, double flops,
            double bytes) {
  const double s = r.ms / 1e3;
  r.share = total_ms > 0 ? r.ms / total_ms : 0;
  r.gflops = s > 0 ? flops / s / 1e9 : 0;
  r.gbs = s > 0 ? bytes / s / 1e9 : 0;
  const double limit = r.compute_bound ? peak : limits.read_gbs;
  r.limit_fraction = limit > 0 ? (r.compute_bound ? r.gflops : r.gbs) / limit : 0;
}

}  // namespace

PhaseProfile SummarizeProfile(const Profiler& p, const LayerGraph& g, Phase phase, int64_t tokens,
                              const MachineLimits& limits, double compute_peak_gflops) {
  PhaseProfile out;
  out.phase = phase;
  out.tokens = tokens;
  const auto& stats = p.stats(phase);
  struct Acc {
    ProfileRow row;
    double flops = 0, bytes = 0;
    size_t order = 0;
  };
  std::map<std::string, Acc> ops, layers;
  for (size_t i = 0; i < stats.size() && i < g.nodes().size(); ++i) {
    const Node& n = g.nodes()[i];
    const Profiler::Stat& s = stats[i];
    if (s.calls == 0) continue;
    out.total_ms += s.ns / 1e6;
    auto add = [&](std::map<std::string, Acc>& m, const std::string& key, bool bound) {
      Acc& a = m[key];
      if (a.row.name.empty()) a.order = m.size();
      a.row.name = key;
      a.row.calls += s.calls;
      a.row.ms += s.ns / 1e6;
      a.row.compute_bound = bound;
      a.flops += s.flops;
      a.bytes += s.bytes;
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
      Finish(a->row, out.total_ms, limits, compute_peak_gflops, a->flops, a->bytes);
      v.push_back(a->row);
    }
    return v;
  };
  out.by_op = rows(ops);
  out.by_layer = rows(layers);
  return out;
}

std::string FormatProfile(const PhaseProfile& p) {
  const char* phase = p.phase == Phase::kPrefill ? "prefill" : "decode";
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
  return {{"tokens", p.tokens}, {"total_ms", p.total_ms},
          {"tok_s", p.total_ms > 0 ? p.tokens / (p.total_ms / 1e3) : 0.0},
          {"ops", rows(p.by_op)}, {"layers", rows(p.by_layer)}};
}

}  // namespace oko
