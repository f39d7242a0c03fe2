// Attribution by knockout (oko attribute): how much the prediction at the last position
// depends on each earlier token. For every key position s, the log-probability of the
// target token is recomputed with every query's edge to s knocked out in all layers
// (engine/interventions.h), and compared with the plain run.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/context.h"

namespace oko {

struct Attribution {
  int32_t target = 0;         // the token whose log-probability is followed
  double logprob = 0;         // at the last position, without knockout
  std::vector<double> delta;  // [T]: log p(target | key s knocked out) - logprob
};

// Runs ids (non-empty, fitting the context) 1 + T times from a fresh cache; the target is
// the model's top next token when none is given. The context's interventions are
// replaced during the call and restored after it.
Attribution AttributeByKnockout(Context& context, std::span<const int32_t> ids, std::optional<int32_t> target);

}  // namespace oko
