#include "engine/steering.h"

namespace oko {

namespace {
// Keeps the residual stream of the last position after every layer.
class LastResidual : public TraceSink {
 public:
  explicit LastResidual(int64_t layers) : rows(layers) {}
  bool WantsAttention(int64_t) const override { return false; }
  void OnResidual(int64_t layer, int64_t pos0, int64_t T, const float* x, int64_t dim) override {
    if (layer >= 0) rows[layer].assign(x + (T - 1) * dim, x + T * dim);
  }
  std::vector<std::vector<float>> rows;
};

// Adds sign * the last position's residual after each layer of `ids` to `sum`.
void Accumulate(Context& context, const std::vector<int32_t>& ids, float sign,
                std::vector<std::vector<float>>& sum) {
  LastResidual last(context.config().num_layers);
  TraceSink* previous = context.trace();
  context.set_trace(&last);
  context.Reset();
  context.Forward(ids, Logits::kNone, nullptr);  // the last chunk's rows end at the last token
  context.set_trace(previous);
  for (size_t l = 0; l < sum.size(); ++l)
    for (size_t d = 0; d < sum[l].size(); ++d) sum[l][d] += sign * last.rows[l][d];
}
}  // namespace

std::vector<std::vector<float>> MeanDifferenceVectors(Context& context, const std::vector<PromptPair>& pairs) {
  const ModelConfig& c = context.config();
  std::vector<std::vector<float>> v(c.num_layers, std::vector<float>(c.hidden_size, 0.0f));
  for (const PromptPair& p : pairs) {
    Accumulate(context, p.positive, 1.0f, v);
    Accumulate(context, p.negative, -1.0f, v);
  }
  for (auto& layer : v)
    for (float& x : layer) x /= static_cast<float>(pairs.size());
  return v;
}

}  // namespace oko
