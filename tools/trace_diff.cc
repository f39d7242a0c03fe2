#include "tools/trace_diff.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "tools/trace_show.h"

namespace oko {

namespace {

std::vector<int64_t> Common(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

int64_t IndexOf(const std::vector<int64_t>& v, int64_t x) {
  return std::lower_bound(v.begin(), v.end(), x) - v.begin();
}

Status CheckSameTokens(const TraceData& a, const TraceData& b) {
  const size_t n = std::min(a.token_ids.size(), b.token_ids.size());
  for (size_t i = 0; i < n; ++i)
    if (a.token_ids[i] != b.token_ids[i])
      return Errorf("{} and {} trace different tokens: position {} is {} ('{}') in the first, {} ('{}') "
                    "in the second; drift compares two runs over the same tokens",
                    a.path, b.path, i, a.token_ids[i], TokenLabel(a.tokens[i], 20), b.token_ids[i],
                    TokenLabel(b.tokens[i], 20));
  if (a.token_ids.size() != b.token_ids.size())
    return Errorf("{} and {} trace different tokens: {} and {} positions; drift compares two runs "
                  "over the same tokens", a.path, b.path, a.token_ids.size(), b.token_ids.size());
  return Status();
}

// A row of `t` spread over the union key list `keys`.
void Aligned(const TraceData& t, const float* row, const std::vector<int64_t>& keys, std::vector<float>* out) {
  out->assign(keys.size(), 0.0f);
  for (int64_t k = 0; k < t.K(); ++k) (*out)[IndexOf(keys, t.key_positions[k])] = row[k];
}

double Jsd(const std::vector<float>& p, const std::vector<float>& q) {
  double s = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = 0.5 * (double(p[i]) + q[i]);
    if (p[i] > 0) s += 0.5 * p[i] * std::log2(p[i] / m);
    if (q[i] > 0) s += 0.5 * q[i] * std::log2(q[i] / m);
  }
  return std::max(0.0, s);
}

}  // namespace

Result<TraceDiff> DiffTraces(const TraceData& a, const TraceData& b) {
  OKO_RETURN_IF_ERROR(CheckSameTokens(a, b));
  TraceDiff d{a.path, b.path, {}, {}};
  TraceData& t = d.delta;
  t.path = a.path + " - " + b.path;
  t.model = a.model == b.model ? a.model : a.model + " vs " + b.model;
  t.tokens = a.tokens;
  t.token_ids = a.token_ids;
  t.token_turns = a.token_turns;
  t.token_roles = a.token_roles;
  t.layers = Common(a.layers, b.layers);
  t.heads = Common(a.heads, b.heads);
  t.query_positions = Common(a.query_positions, b.query_positions);
  std::set_union(a.key_positions.begin(), a.key_positions.end(), b.key_positions.begin(),
                 b.key_positions.end(), std::back_inserter(t.key_positions));
  if (t.layers.empty() || t.heads.empty() || t.query_positions.empty())
    return Errorf("{} and {} have no layer, head and query recorded in common", a.path, b.path);
  t.sink_count = std::max(a.sink_count, b.sink_count);
  for (int64_t p : t.key_positions) t.key_is_sink.push_back(p < t.sink_count ? 1 : 0);
  const int64_t H = t.H(), Q = t.Q(), K = t.K();
  std::vector<float> pa, pb;
  for (int64_t layer : t.layers) {
    const size_t la = IndexOf(a.layers, layer), lb = IndexOf(b.layers, layer);
    std::vector<float> delta(H * Q * K);
    for (int64_t h = 0; h < H; ++h) {
      HeadDrift hd;
      hd.layer = layer;
      hd.head = t.heads[h];
      const int64_t ha = IndexOf(a.heads, t.heads[h]), hb = IndexOf(b.heads, t.heads[h]);
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t pos = t.query_positions[q];
        Aligned(a, a.Row(la, ha, IndexOf(a.query_positions, pos)), t.key_positions, &pa);
        Aligned(b, b.Row(lb, hb, IndexOf(b.query_positions, pos)), t.key_positions, &pb);
        double l1 = 0;
        for (int64_t k = 0; k < K; ++k) {
          delta[(h * Q + q) * K + k] = pa[k] - pb[k];
          l1 += std::fabs(double(pa[k]) - pb[k]);
        }
        hd.jsd += Jsd(pa, pb) / Q;
        hd.l1 += l1 / Q;
        if (l1 > hd.max_l1 || q == 0) {
          hd.max_l1 = l1;
          hd.worst_query = pos;
          const float* row = delta.data() + (h * Q + q) * K;
          const int64_t k = std::max_element(row, row + K, [](float x, float y) {
                              return std::fabs(x) < std::fabs(y);
                            }) - row;
          hd.moved_key = t.key_positions[k];
          hd.moved_by = row[k];
        }
      }
      d.ranked.push_back(hd);
    }
    t.attn.push_back(std::move(delta));
  }
  std::stable_sort(d.ranked.begin(), d.ranked.end(),
                   [](const HeadDrift& x, const HeadDrift& y) { return x.jsd > y.jsd; });
  return d;
}

std::string RenderDrift(const TraceDiff& d, size_t top) {
  const TraceData& t = d.delta;
  std::string out = fmt::format(
      "drift {} -> {}: {} layers x {} heads x {} queries over {} keys\n"
      "JSD: Jensen-Shannon divergence (base 2, 0 same .. 1 disjoint), mean over queries; "
      "L1: sum |pA - pB| per query row (0 .. 2)\n"
      "{:>4} {:>5} {:>4} {:>9} {:>9} {:>9}  worst query -> the key it moved most on\n",
      d.a_path, d.b_path, t.layers.size(), t.heads.size(), t.Q(), t.K(), "rank", "layer", "head",
      "JSD", "L1 mean", "L1 max");
  for (size_t i = 0; i < std::min(top, d.ranked.size()); ++i) {
    const HeadDrift& h = d.ranked[i];
    out += fmt::format("{:>4} {:>5} {:>4} {:>9.3g} {:>9.3g} {:>9.3g}  {} '{}' -> {} '{}' {:+.3g}\n", i + 1,
                       h.layer, h.head, h.jsd, h.l1, h.max_l1, h.worst_query,
                       TokenLabel(t.tokens[h.worst_query], 12), h.moved_key,
                       TokenLabel(t.tokens[h.moved_key], 12), h.moved_by);
  }
  if (d.ranked.size() > top) out += fmt::format("({} more heads; all in the --html page)\n", d.ranked.size() - top);
  return out;
}

}  // namespace oko
