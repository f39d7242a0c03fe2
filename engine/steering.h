// Steering vectors from contrasting prompts (oko steer-vector): for pairs of prompts
// (positive, negative), v_i = mean over pairs of (residual after layer i at the positive
// prompt's last token - the same for the negative one), as llama.cpp's control vectors
// are made with the mean method. --steer FILE adds them back (engine/interventions.h).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/context.h"

namespace oko {

struct PromptPair {
  std::vector<int32_t> positive, negative;  // each non-empty, fitting the context
};

// v[i] ([hidden]) for every layer i of the model, run in `context` (reset before each
// prompt; its interventions apply, as they would to the prompts later).
std::vector<std::vector<float>> MeanDifferenceVectors(Context& context, const std::vector<PromptPair>& pairs);

}  // namespace oko
