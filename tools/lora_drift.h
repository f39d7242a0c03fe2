// What LoRA adapters did to a model's attention: the same tokens run with the context's
// adapter scales and with every adapter off (one model, one context), compared per layer
// and head (trace_diff.h: Jensen-Shannon divergence and L1 per query row), per layer of
// the residual stream (relative L2 change) and at the next token (KL divergence).
// `oko trace --lora DIR --drift OUT` and chat's /drift report it.
#pragma once

#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/trace_recorder.h"
#include "tools/trace_diff.h"

namespace oko {

struct LoraDrift {
  TraceDiff attention;                 // adapted (A) against base (B)
  std::vector<double> residual_rel_l2;  // [layers + 1]: ||r_A - r_B|| / ||r_B|| (0: embeddings)
  double next_token_kl = 0;            // KL(base || adapted) of the last position, nats
  std::vector<float> adapted_logits, base_logits;  // of the last position
};

// Runs `ids` from position 0 twice, with the adapter scales and interventions of `context`
// (which must hold unmerged adapters) and then with every scale 0, in a context of its own
// on the same weights and pool: `context` and its cache are left as they were, so a chat
// goes on exactly from where it was. `write` names the model and tokens of the two traces.
Result<LoraDrift> MeasureLoraDrift(const Context& context, const std::vector<int32_t>& ids,
                                   const TraceFilter& filter, const TraceWriteOptions& write);

// The terminal report: the residual and next-token lines, the ranked table (`top` rows)
// and a layers x heads map of the Jensen-Shannon divergence.
std::string RenderLoraDrift(const LoraDrift& d, size_t top);

// OUT.safetensors: drift.jsd and drift.l1 [layers, heads] (the recorded ones, metadata
// "layers"/"heads"), residual_rel_l2 [layers + 1], the last position's logits of both
// runs, metadata next_token_kl and the tokens. Written atomically.
Status WriteLoraDrift(const LoraDrift& d, const std::string& path);

}  // namespace oko
