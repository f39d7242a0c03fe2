// Shared by `oko bench` and `oko profile`: synthetic prompts and what a token costs.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "engine/model.h"

namespace oko {

// n token ids spread over the vocabulary (speed does not depend on which).
inline std::vector<int32_t> SyntheticIds(int64_t n, int64_t vocab, int64_t offset = 0) {
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((offset + i * 7919 + 13) % vocab);
  return ids;
}

// Weight bytes one decode step reads: every matmul weight once (lm_head included).
inline double WeightBytesPerToken(const LayerGraph& g) {
  std::set<const Linear*> seen;
  double bytes = 0;
  for (const Node& n : g.nodes())
    if (n.linear != nullptr && seen.insert(n.linear).second) bytes += n.linear->weight_bytes();
  return bytes;
}

// FLOPs of the matmuls per prompt token (lm_head runs once per prompt, left out).
inline double MatMulFlopsPerToken(const LayerGraph& g) {
  double flops = 0;
  for (const Node& n : g.nodes())
    if (n.kind == OpKind::kMatMul) flops += 2.0 * n.linear->N() * n.linear->K();
  return flops;
}

}  // namespace oko
