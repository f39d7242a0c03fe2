// Drift between two traces of the same tokens: per layer and head, how differently the
// two runs distribute attention (Jensen-Shannon divergence and L1 distance per query
// row, aligned by absolute key position), ranked, with the A - B difference.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "loaders/trace_file.h"

namespace oko {

struct HeadDrift {
  int64_t layer = 0, head = 0;
  double jsd = 0;      // mean over queries, base 2 (0 = same, 1 = disjoint)
  double l1 = 0;       // mean over queries of sum |pA - pB| (0 .. 2)
  double max_l1 = 0;   // the worst query row
  int64_t worst_query = 0;  // its absolute position
  int64_t moved_key = 0;    // the key whose probability changed most in that row
  double moved_by = 0;      // pA - pB of that key
};

struct TraceDiff {
  std::string a_path, b_path;
  TraceData delta;               // A - B over the common layers, heads and queries
  std::vector<HeadDrift> ranked;  // most drift first
};

// Errors (bad input): different token sequences (names the first differing position),
// nothing recorded in common.
Result<TraceDiff> DiffTraces(const TraceData& a, const TraceData& b);
// The ranking as a table, `top` rows.
std::string RenderDrift(const TraceDiff& d, size_t top);

}  // namespace oko
