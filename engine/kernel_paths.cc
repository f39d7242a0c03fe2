#include "engine/kernel_paths.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

namespace oko {

std::vector<WeightSite> WeightSites(const LayerGraph& g) {
  std::vector<WeightSite> sites;
  for (const Node& n : g.nodes()) {
    if (n.linear == nullptr) continue;
    const WeightView& w = n.linear->weight();
    sites.push_back({n.site, n.layer, g.WeightName(n.linear), w.type, n.linear->mode(), w.rows, w.cols, w.interleave});
  }
  return sites;
}

std::vector<PathGroup> DescribePaths(std::span<const WeightSite> sites, size_t M, Phase phase) {
  std::map<Site, int> layers_of;  // how many layers hold each op
  for (const WeightSite& s : sites) ++layers_of[s.site];
  struct Group {
    std::string kernel;
    std::vector<std::pair<Site, int>> ops;  // op, layers that run it here (first-seen order)
  };
  std::vector<Group> groups;
  for (const WeightSite& s : sites) {
    const LinearPath path = ChooseLinearPath(s.type, s.mode, M, s.cols);
    const std::string kernel = LinearPathName(path, s.type, s.mode, M, s.cols, phase, s.interleave);
    auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) { return x.kernel == kernel; });
    if (g == groups.end()) g = groups.insert(groups.end(), Group{kernel, {}});
    auto op = std::find_if(g->ops.begin(), g->ops.end(), [&](const auto& o) { return o.first == s.site; });
    if (op == g->ops.end()) op = g->ops.insert(g->ops.end(), {s.site, 0});
    ++op->second;
  }
  std::vector<PathGroup> out;
  for (const Group& g : groups) {
    PathGroup p{g.kernel, {}};
    for (const auto& [site, n] : g.ops) {
      const int all = layers_of[site];
      p.ops.push_back(n == all ? std::string(SiteName(site))
                               : fmt::format("{} ({} of {})", SiteName(site), n, all));
    }
    out.push_back(std::move(p));
  }
  return out;
}

namespace {
// GOP/s; 0 where not measured.
double PeakGops(const MachineLimits& m, Arithmetic a) {
  switch (a) {
    case Arithmetic::kF32Fma: return m.f32_gflops;
    case Arithmetic::kBf16Dot: return m.bf16_gflops;
    case Arithmetic::kInt8Dot: return m.int8_gops;
    case Arithmetic::kAmxBf16: return 0;
  }
  return 0;
}

Arithmetic DecodeArithmetic(const WeightSite& s, size_t M) {
  return LinearArithmetic(ChooseLinearPath(s.type, s.mode, M, s.cols), s.type, s.mode, M, s.cols, Phase::kDecode);
}
}  // namespace

double DecodePeakGops(const WeightSite& site, size_t M, const MachineLimits& limits) {
  return PeakGops(limits, DecodeArithmetic(site, M));
}

ComputeRoofline DecodeComputeRoofline(std::span<const WeightSite> sites, size_t M, const MachineLimits& limits) {
  double seconds = 0;  // per token
  std::set<Arithmetic> used;
  for (const WeightSite& s : sites) {
    const double peak = DecodePeakGops(s, M, limits);
    if (peak <= 0) return {};
    seconds += 2.0 * static_cast<double>(s.rows) * static_cast<double>(s.cols) / (peak * 1e9);
    used.insert(DecodeArithmetic(s, M));
  }
  if (seconds <= 0) return {};
  return {1.0 / seconds, used.size() == 1 ? std::string(ArithmeticName(*used.begin())) : "mixed"};
}

nlohmann::ordered_json PathsToJson(const std::vector<PathGroup>& groups) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const PathGroup& g : groups) j[g.kernel] = g.ops;
  return j;
}

std::string FormatPaths(const std::string& label, const std::vector<PathGroup>& groups) {
  std::string out;
  for (const PathGroup& g : groups)
    out += fmt::format("{:<{}}{}: {}\n", out.empty() ? label : "", label.size(), g.kernel,
                       fmt::join(g.ops, ", "));
  return out;
}

}  // namespace oko
