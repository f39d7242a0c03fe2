#include "engine/model.h"

#include "common/check.h"
#include "engine/compute_choice.h"
#include "ops/rms_norm.h"

namespace oko {

Result<ComputeMode> ParseComputeMode(const std::string& s) {
  if (s == "f32") return ComputeMode::kF32;
  if (s == "bf16") return ComputeMode::kBf16;
  return Errorf("the compute mode must be f32 or bf16, got '{}'", s);
}

Result<std::shared_ptr<const Model>> Model::Load(const std::string& dir,
                                                 const EngineOptions& options) {
  OKO_ASSIGN_OR_RETURN(ModelDir m, OpenModelDir(dir));
  ComputeChoice compute{options.compute, "asked for"};
  if (options.compute_auto) {
    const TensorView* w = m.tensors.Find(LayerTensor(0, LayerWeight::kUpProj));
    const DType weights = w != nullptr ? w->dtype : DType::kF32;
    const bool bf16_possible = weights == DType::kBF16 && OnednnBf16Supported();
    // The probe (0.1 s, once per CPU) only where bf16 could be chosen.
    compute = ChooseCompute(bf16_possible ? LoadOrMeasureComputeRates() : ComputeRates{},
                            OnednnBf16Supported(), weights);
  }
  if (compute.mode == ComputeMode::kBf16 && !OnednnBf16Supported())
    return Errorf("bf16 compute needs AVX-512, which this CPU lacks: use f32 compute");
  return std::shared_ptr<const Model>(new Model(std::move(m), compute));
}

Model::Model(ModelDir dir, ComputeChoice compute)
    : dir_(std::move(dir)),
      compute_(std::move(compute)),
      graph_(LayerGraph::Build(dir_.config, dir_.tensors, compute_.mode)) {
  SetOnednnThreads(1);  // each pool worker runs its own slice (engine/linear.h)
}

void Model::LogitsOfHidden(ThreadPool& pool, const float* x, int64_t T, float* out) const {
  const ModelConfig& c = dir_.config;
  const size_t H = c.hidden_size;
  const Node& norm = graph_.final_norm();
  std::vector<float> xn(T * H);
  RmsNormRows({x, H, norm.norm_weight, xn.data(), H, size_t(T), H, static_cast<float>(c.rms_norm_eps)});
  graph_.lm_head().linear->Forward(pool, xn.data(), H, T, out, c.vocab_size);
}

}  // namespace oko
