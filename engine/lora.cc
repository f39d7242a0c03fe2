#include "engine/lora.h"

#include "common/check.h"
#include "common/limits.h"
#include "ops/elementwise.h"

namespace oko {

Result<std::vector<LoraAdapter>> LoadLoraAdapters(const std::vector<LoraSpec>& specs,
                                                  const ModelConfig& config) {
  if (specs.size() > kMaxLoraAdapters)
    return Errorf("{} --lora adapters, over oko's limit of {}", specs.size(), kMaxLoraAdapters);
  std::vector<LoraAdapter> adapters;
  for (const LoraSpec& spec : specs) {
    OKO_ASSIGN_OR_RETURN(LoraAdapter a, LoadLoraAdapter(spec.dir, config));
    adapters.push_back(std::move(a));
  }
  return adapters;
}

void AttachLora(const std::vector<LoraAdapter>& adapters, LayerGraph& graph) {
  for (size_t i = 0; i < adapters.size(); ++i)
    for (const LoraModule& m : adapters[i].modules) {
      Linear* linear = graph.FindLinear(m.name + ".weight");
      OKO_CHECK(linear != nullptr, "LoRA module {} has no Linear (LoadLoraAdapter checks)", m.name);
      linear->AddLora(i, static_cast<float>(m.scaling), m.a, m.b, static_cast<size_t>(m.rank));
    }
}

namespace {

// The stored weight a module adapts, widened to f32 rows.
std::vector<float> StoredF32(const ModelDir& model, const std::string& module) {
  const ModelConfig& c = model.config;
  std::string name = module + ".weight";
  if (module == "lm_head" && (c.tie_word_embeddings || model.tensors.Find(name) == nullptr))
    name = "model.embed_tokens.weight";
  const TensorView* t = model.tensors.Find(name);
  OKO_CHECK(t != nullptr && t->shape.size() == 2, "weight {} missing", name);
  const auto type = QuantTypeFromDType(t->dtype);
  OKO_CHECK(type.has_value(), "weight {} is {}", name, DTypeName(t->dtype));
  const size_t rows = static_cast<size_t>(t->shape[0]), cols = static_cast<size_t>(t->shape[1]);
  std::vector<float> w(rows * cols);
  const size_t row_bytes = cols * DTypeSize(t->dtype);
  for (size_t r = 0; r < rows; ++r) DequantizeRow(*type, t->data + r * row_bytes, w.data() + r * cols, cols);
  return w;
}

}  // namespace

QuantizedWeights MergeLora(const std::vector<LoraAdapter>& adapters,
                           const std::vector<LoraSpec>& specs, const ModelDir& model,
                           ThreadPool& pool) {
  std::map<std::string, std::vector<float>> merged;
  std::map<std::string, std::pair<size_t, size_t>> shapes;  // [out, in]
  for (size_t i = 0; i < adapters.size(); ++i)
    for (const LoraModule& m : adapters[i].modules) {
      auto [it, fresh] = merged.try_emplace(m.name);
      if (fresh) it->second = StoredF32(model, m.name);
      shapes[m.name] = {static_cast<size_t>(m.out), static_cast<size_t>(m.in)};
      const float scale = static_cast<float>(specs[i].scale * m.scaling);
      float* w = it->second.data();
      const size_t in = static_cast<size_t>(m.in), rank = static_cast<size_t>(m.rank);
      // Row n of W gains sum_k (scale B[n, k]) A[k, :].
      pool.ParallelFor(static_cast<size_t>(m.out), 1, [&](size_t n0, size_t n1, int) {
        for (size_t n = n0; n < n1; ++n)
          for (size_t k = 0; k < rank; ++k)
            AddScaledInplace(w + n * in, m.a.data() + k * in, scale * m.b[n * rank + k], in);
      });
    }
  QuantizedWeights weights;
  for (auto& [module, values] : merged) {
    const auto [out, in] = shapes[module];
    weights.emplace(module + ".weight", OwnedF32(std::move(values), out, in));
  }
  return weights;
}

}  // namespace oko
