#include "engine/attribution.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "engine/interventions.h"

namespace oko {

namespace {
double LogProb(const std::vector<float>& logits, int32_t id) {
  const double m = *std::max_element(logits.begin(), logits.end());
  double s = 0;
  for (float x : logits) s += std::exp(double(x) - m);
  return double(logits[id]) - m - std::log(s);
}

std::vector<float> LastLogits(Context& context, std::span<const int32_t> ids) {
  std::vector<float> logits;
  context.Reset();
  context.Forward(ids, Logits::kLast, &logits);
  return logits;
}
}  // namespace

Attribution AttributeByKnockout(Context& context, std::span<const int32_t> ids, std::optional<int32_t> target) {
  const auto previous = context.interventions();
  context.set_interventions(nullptr);
  const std::vector<float> base = LastLogits(context, ids);
  Attribution a;
  a.target = target.value_or(static_cast<int32_t>(std::max_element(base.begin(), base.end()) - base.begin()));
  a.logprob = LogProb(base, a.target);
  for (size_t s = 0; s < ids.size(); ++s) {
    InterventionSpec spec;
    spec.knockout = {"*:*:" + std::to_string(s)};
    auto knockout = Interventions::Make(spec, context.config());
    OKO_CHECK(knockout.ok(), "{}", knockout.status().message());
    context.set_interventions(std::make_shared<const Interventions>(std::move(knockout).value()));
    a.delta.push_back(LogProb(LastLogits(context, ids), a.target) - a.logprob);
  }
  context.set_interventions(previous);
  context.Reset();
  return a;
}

}  // namespace oko
