#include "tools/lora_drift.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "loaders/safetensors_writer.h"

namespace oko {
namespace {

// Passes everything to a TraceRecorder and keeps the residual stream of every position
// after each layer (index 0: the embeddings).
class DriftSink : public TraceSink {
 public:
  DriftSink(TraceRecorder& rec, int64_t layers) : residual(layers + 1), rec_(rec) {}
  bool WantsAttention(int64_t layer) const override { return rec_.WantsAttention(layer); }
  void OnAttention(const AttentionEvent& e) override { rec_.OnAttention(e); }
  void OnResidual(int64_t layer, int64_t pos0, int64_t T, const float* x, int64_t dim) override {
    rec_.OnResidual(layer, pos0, T, x, dim);
    residual[layer + 1].insert(residual[layer + 1].end(), x, x + T * dim);
  }
  std::vector<std::vector<float>> residual;

 private:
  TraceRecorder& rec_;
};

struct Run {
  TraceData trace;
  std::vector<std::vector<float>> residual;
  std::vector<float> logits;
};

Run RunOnce(Context& context, const std::vector<int32_t>& ids, const TraceFilter& filter,
            const TraceWriteOptions& write, const std::string& name) {
  const ModelConfig& c = context.config();
  TraceRecorder rec(c.num_layers, c.num_heads, context.kv_cache().sink(), filter);
  DriftSink sink(rec, c.num_layers);
  context.Reset();
  TraceSink* before = context.trace();
  context.set_trace(&sink);
  Run run;
  context.Forward(ids, Logits::kLast, &run.logits);
  context.set_trace(before);
  run.trace = rec.Snapshot(write, 0, INT64_MAX);
  run.trace.path = name;
  run.residual = std::move(sink.residual);
  return run;
}

double RelativeL2(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : 0.0;
}

std::vector<double> LogSoftmax(const std::vector<float>& x) {
  const double m = *std::max_element(x.begin(), x.end());
  double s = 0;
  for (float v : x) s += std::exp(v - m);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] - m - std::log(s);
  return out;
}

// KL(p || q) of two logit vectors, in nats.
double KlOfLogits(const std::vector<float>& p_logits, const std::vector<float>& q_logits) {
  const std::vector<double> lp = LogSoftmax(p_logits), lq = LogSoftmax(q_logits);
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(0.0, kl);
}

}  // namespace

Result<LoraDrift> MeasureLoraDrift(const Context& context, const std::vector<int32_t>& ids,
                                   const TraceFilter& filter, const TraceWriteOptions& write) {
  const std::vector<float> scales(context.lora_scales().begin(), context.lora_scales().end());
  if (scales.empty())
    return Errorf("drift needs LoRA adapters applied unmerged (--lora DIR without --lora-merge)");
  if (std::all_of(scales.begin(), scales.end(), [](float s) { return s == 0; }))
    return Errorf("drift: every adapter's scale is 0, so the two runs would be the same model");
  // A context of its own: rebuilding the conversation's cache afterwards would compute it
  // grouped differently from how it grew (one prefill against prompt and decode steps),
  // which in bf16 compute changes its values and so the next reply.
  EngineOptions options = context.options();
  if (options.window == 0 && options.sink == 0) options.ctx = std::max<int64_t>(1, static_cast<int64_t>(ids.size()));
  OKO_ASSIGN_OR_RETURN(std::unique_ptr<Context> scratch,
                       Context::Create(context.shared_model(), context.shared_pool(), options));
  scratch->set_interventions(context.interventions());
  for (size_t i = 0; i < scales.size(); ++i) scratch->set_lora_scale(i, scales[i]);
  Run adapted = RunOnce(*scratch, ids, filter, write, "adapted");
  for (size_t i = 0; i < scales.size(); ++i) scratch->set_lora_scale(i, 0.0f);
  Run base = RunOnce(*scratch, ids, filter, write, "base");

  LoraDrift d;
  OKO_ASSIGN_OR_RETURN(d.attention, DiffTraces(adapted.trace, base.trace));
  for (size_t l = 0; l < base.residual.size(); ++l)
    d.residual_rel_l2.push_back(RelativeL2(adapted.residual[l], base.residual[l]));
  d.next_token_kl = KlOfLogits(base.logits, adapted.logits);
  d.adapted_logits = std::move(adapted.logits);
  d.base_logits = std::move(base.logits);
  return d;
}

namespace {

// One character per head, darker = more drift (relative to the largest).
std::string DriftMap(const TraceDiff& d) {
  static constexpr std::string_view kShades = " .:-=+*#%@";
  const TraceData& t = d.delta;
  double top = 0;
  for (const HeadDrift& h : d.ranked) top = std::max(top, h.jsd);
  std::map<std::pair<int64_t, int64_t>, double> jsd;
  for (const HeadDrift& h : d.ranked) jsd[{h.layer, h.head}] = h.jsd;
  std::string out = fmt::format("Jensen-Shannon divergence per head (darkest: {:.4f} bits)\n", top);
  out += "layer  heads " + fmt::format("{}-{}", t.heads.front(), t.heads.back()) + "\n";
  for (int64_t layer : t.layers) {
    out += fmt::format("{:>5}  ", layer);
    for (int64_t head : t.heads) {
      const double v = jsd[{layer, head}];
      const size_t shade = top > 0 ? std::min<size_t>(kShades.size() - 1,
                                                      static_cast<size_t>(v / top * (kShades.size() - 1) + 0.5))
                                   : 0;
      out += kShades[shade];
    }
    out += "\n";
  }
  return out;
}

}  // namespace

std::string RenderLoraDrift(const LoraDrift& d, size_t top) {
  std::string out = fmt::format("next token: KL(base || adapted) = {:.4g} nats\n", d.next_token_kl);
  out += "residual stream, relative L2 change after each layer:";
  for (size_t l = 0; l < d.residual_rel_l2.size(); ++l)
    out += fmt::format(" {}{:.3f}", l == 0 ? "emb " : fmt::format("L{} ", l - 1), d.residual_rel_l2[l]);
  out += "\n\n" + RenderDrift(d.attention, top) + "\n" + DriftMap(d.attention);
  return out;
}

Status WriteLoraDrift(const LoraDrift& d, const std::string& path) {
  const TraceData& t = d.attention.delta;
  const int64_t L = static_cast<int64_t>(t.layers.size()), H = t.H();
  std::vector<float> jsd(L * H, 0.0f), l1(L * H, 0.0f);
  for (const HeadDrift& h : d.attention.ranked) {
    const int64_t li = std::lower_bound(t.layers.begin(), t.layers.end(), h.layer) - t.layers.begin();
    const int64_t hi = std::lower_bound(t.heads.begin(), t.heads.end(), h.head) - t.heads.begin();
    jsd[li * H + hi] = static_cast<float>(h.jsd);
    l1[li * H + hi] = static_cast<float>(h.l1);
  }
  const std::vector<float> residual(d.residual_rel_l2.begin(), d.residual_rel_l2.end());
  auto f32 = [](std::string name, std::vector<int64_t> shape, const std::vector<float>& v) {
    return TensorFromBytes(std::move(name), DType::kF32, std::move(shape), v.data());
  };
  const auto n = [](const std::vector<float>& v) { return static_cast<int64_t>(v.size()); };
  const std::vector<TensorToWrite> tensors = {
      f32("drift.jsd", {L, H}, jsd),
      f32("drift.l1", {L, H}, l1),
      f32("residual_rel_l2", {n(residual)}, residual),
      f32("logits_last.adapted", {n(d.adapted_logits)}, d.adapted_logits),
      f32("logits_last.base", {n(d.base_logits)}, d.base_logits),
  };
  const std::map<std::string, std::string> metadata = {
      {"format", "oko-lora-drift"},
      {"model", t.model},
      {"layers", nlohmann::json(t.layers).dump()},
      {"heads", nlohmann::json(t.heads).dump()},
      {"token_ids", nlohmann::json(t.token_ids).dump()},
      {"next_token_kl", fmt::format("{}", d.next_token_kl)},
      {"jsd_unit", "\"bits (log base 2), mean over query rows\""},
  };
  return WriteSafetensors(path, tensors, metadata);
}

}  // namespace oko
