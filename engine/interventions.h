// Interventions: settings of a sequence that change what its forward pass computes, for
// studying attention (docs/INTERVENTIONS.md). Inside a decoder layer they act in this
// order: scores + causal mask -> knockout -> softmax -> emphasize -> (traced probs) ->
// p·V -> ablate -> o_proj -> residual -> MLP -> residual -> steer.
//   ablate L.H          head H's slice of p·V is zero (its probabilities are unchanged)
//   knockout L:Q:K      score(q, k) = -inf for q in Q, k in K, in every head of layers L
//   emphasize K (A)     in the selected heads p(k) *= A for k outside K, rows renormalized
//   steer FILE[:COEF]   COEF · v_i added to the residual after layer i
// Emphasis is a key bias too: p·w / Σ p·w = softmax(s + log w), so knockout and emphasis
// are one additive bias on the scores (−inf, then log A outside the span), which the
// attention kernels apply before their softmax (ops/attention.h): the probabilities they
// produce (and the trace records) are the emphasized ones. Ablation is the kernels'
// head_scale of 0. Positions are absolute token indices, so the ring buffer wrapping
// changes nothing.
//
// Spec syntax (docs/CLI.md): layers, heads and positions are 0-based; `*` = all; `a-b`
// inclusive; lists comma-separated; several knockout specs are `;`-separated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "loaders/hf_config.h"

namespace oko {

// The flags' values as given (the CLI and chat both fill this).
struct InterventionSpec {
  std::vector<std::string> ablate;    // each "L.H[,...]"
  std::vector<std::string> knockout;  // each "LAYERS:QUERIES:KEYS[;...]"
  std::string emphasize;              // "KEYS", "" = none
  std::string emphasize_heads;        // "L.H[,...]", "" = every head
  double emphasize_alpha = 0.01;
  std::vector<std::string> steer;     // each "FILE[:COEF]"

  bool empty() const { return ablate.empty() && knockout.empty() && emphasize.empty() && steer.empty(); }
};

// Sets of absolute positions: inclusive ranges.
struct PositionSet {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  bool Contains(int64_t p) const {
    for (const auto& [a, b] : ranges)
      if (p >= a && p <= b) return true;
    return false;
  }
};

// "*", "a", "a-b" or a list of them: a mask over the model's layers (steer-vector's
// --layers); errors name the model's layers.
Result<std::vector<bool>> ParseLayers(std::string_view list, const ModelConfig& config);

class Interventions {
 public:
  // Parses and checks `spec` against the model (layers, heads, the steering files' hidden
  // size and dtype); errors (exit 2) name the flag, its value and the model's limits.
  static Result<Interventions> Make(const InterventionSpec& spec, const ModelConfig& config);

  // The kernels' head_scale for `layer` ([num_heads], 0 = ablated), nullptr when none.
  const float* HeadScale(int64_t layer) const {
    return head_scale_[layer].empty() ? nullptr : head_scale_[layer].data();
  }
  // Whether knockout or emphasis changes the scores of `layer`.
  bool BiasesScores(int64_t layer) const { return biases_[layer]; }
  // Whether the bias of `layer` depends on the query position (a knockout acts there);
  // emphasis alone does not.
  bool BiasDependsOnQuery(int64_t layer) const { return knocks_out_[layer]; }
  // Whether heads [first, first + count) of `layer` get different biases (emphasis on
  // some of them only).
  bool BiasDiffersAcross(int64_t layer, int64_t first, int64_t count) const;
  // The score bias of query head `head` at absolute position `query` over keys at the
  // absolute positions keys[0, n): -inf (knocked out), log A (outside an emphasized
  // span) or 0.
  void KeyBias(int64_t layer, int64_t head, int64_t query, const int64_t* keys, size_t n,
               float* out) const;
  // The vector added to the residual after `layer` ([hidden], coefficients applied),
  // nullptr when none.
  const float* Steering(int64_t layer) const {
    return steer_[layer].empty() ? nullptr : steer_[layer].data();
  }
  // The first position whose outputs they change (kNoPosition: none): a cache computed
  // without them holds right every position before it.
  static constexpr int64_t kNoPosition = INT64_MAX;
  int64_t FirstPosition() const;
  // One line per intervention, in the flags' syntax (chat's /interventions).
  const std::vector<std::string>& descriptions() const { return descriptions_; }

 private:
  struct Knockout {
    std::vector<bool> layers;
    PositionSet queries, keys;
  };
  Status AddAblation(const std::string& text, const ModelConfig& c);
  Status AddKnockout(const std::string& text, const ModelConfig& c);
  Status SetEmphasis(const InterventionSpec& spec, const ModelConfig& c);
  Status AddSteering(const std::string& text, const ModelConfig& c);

  int64_t num_heads_ = 0;
  std::vector<std::vector<float>> head_scale_;  // [layer] -> [num_heads] or empty
  std::vector<bool> biases_;                    // [layer]
  std::vector<bool> knocks_out_;                // [layer]
  std::vector<Knockout> knockouts_;
  PositionSet emphasis_keys_;
  std::vector<bool> emphasized_;  // [layer * num_heads + head]
  float log_alpha_ = 0;
  std::vector<std::vector<float>> steer_;  // [layer] -> [hidden] or empty
  std::vector<std::string> descriptions_;
};

}  // namespace oko
