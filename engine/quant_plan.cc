#include "engine/quant_plan.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "common/mapped_file.h"

namespace oko {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Layer index of "model.layers.N.<...>", or -1.
int LayerOf(const std::string& name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (name.rfind(kPrefix, 0) != 0) return -1;
  return std::atoi(name.c_str() + kPrefix.size());
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third
// in between get more bits in the _M mixes.
bool UseMoreBits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

}  // namespace

Result<QuantPlan> ParseQuantPlan(std::string_view spec, int n_layers, bool tied_embeddings) {
  QuantPlan p;
  p.spec = Lower(spec);
  p.n_layers = n_layers;
  p.tied_embeddings = tied_embeddings;
  std::string base = p.spec;
  if (p.spec == "q4_k_m" || p.spec == "q5_k_m") {
    p.mix_m = true;
    base = p.spec.substr(0, 4);
  }
  const auto type = QuantTypeFromName(base);
  if (!type.has_value() || !IsBlockQuant(*type)) {
    return Errorf("--quant {}: unknown type (expected one of q8_0, q4_0, q4_1, q5_0, q5_1, "
                  "q4_k, q5_k, q6_k, q4_k_m, q5_k_m)", spec);
  }
  p.base = *type;
  return p;
}

std::optional<TensorQuant> PlanTensor(const QuantPlan& plan, const std::string& name,
                                      const std::vector<int64_t>& shape) {
  if (shape.size() != 2) return std::nullopt;
  const int64_t cols = shape[1];
  const bool output = name == "lm_head.weight" ||
                      (plan.tied_embeddings && name == "model.embed_tokens.weight");
  QuantType t = plan.base;
  if (output) {
    if (cols % 256 != 0) t = QuantType::kQ8_0;
    else if (t != QuantType::kQ8_0) t = QuantType::kQ6_K;
  } else if (plan.mix_m && (EndsWith(name, "self_attn.v_proj.weight") ||
                            EndsWith(name, "mlp.down_proj.weight"))) {
    const int layer = LayerOf(name);
    if (layer >= 0 && UseMoreBits(layer, plan.n_layers)) t = QuantType::kQ6_K;
  }
  TensorQuant q{t, t};
  if (cols % QuantBlock(q.type) != 0) {
    switch (q.type) {
      case QuantType::kQ4_K: q.type = QuantType::kQ5_0; break;
      case QuantType::kQ5_K: q.type = QuantType::kQ5_1; break;
      case QuantType::kQ6_K: q.type = QuantType::kQ8_0; break;
      default: break;
    }
    if (cols % QuantBlock(q.type) != 0) q.type = QuantType::kF16;
  }
  return q;
}

std::string FallbackNote(const std::string& name, const TensorQuant& q, int64_t cols) {
  return fmt::format("{}: {} -> {} (rows of {} values, not a multiple of {})", name,
                     QuantTypeName(q.wanted), QuantTypeName(q.type), cols, QuantBlock(q.wanted));
}

size_t PlannedBytes(const QuantPlan& plan, const TensorView& t) {
  const auto q = PlanTensor(plan, t.name, t.shape);
  if (!q.has_value()) return t.nbytes;
  return static_cast<size_t>(t.shape[0]) * QuantRowBytes(q->type, static_cast<size_t>(t.shape[1]));
}

Result<OwnedWeight> QuantizeWeight(const TensorView& t, QuantType type, ThreadPool* pool) {
  const auto src_type = QuantTypeFromDType(t.dtype);
  if (!src_type.has_value() || t.shape.size() != 2) {
    return Errorf("tensor '{}': cannot quantize dtype {} shape {} (need a 2-D F32, BF16 or "
                  "F16 tensor)", t.name, DTypeName(t.dtype), ShapeString(t.shape));
  }
  const WeightView src{*src_type, t.data, static_cast<size_t>(t.shape[0]), static_cast<size_t>(t.shape[1]),
                       t.nbytes};
  return ConvertWeight(src, type, t.name, pool);
}

Result<OwnedWeight> ConvertWeight(const WeightView& src, QuantType type, const std::string& name,
                                  ThreadPool* pool) {
  const size_t rows = src.rows, cols = src.cols;
  if (cols % QuantBlock(type) != 0) {
    return Errorf("tensor '{}': rows of {} values are not a multiple of {}'s block of {}",
                  name, cols, QuantTypeName(type), QuantBlock(type));
  }
  const size_t rb = QuantRowBytes(type, cols), bytes = rows * rb;
  std::shared_ptr<std::byte> storage = AllocateStreamedBytes(bytes + 64);
  if (storage == nullptr) return RuntimeErrorf("tensor '{}': out of memory ({} bytes)", name, bytes);
  auto* dst = reinterpret_cast<uint8_t*>(storage.get());
  const auto* in = reinterpret_cast<const uint8_t*>(src.data);
  const size_t src_rb = src.row_bytes();
  auto work = [&](size_t r0, size_t r1, int) {
    std::vector<float> row(cols);
    for (size_t r = r0; r < r1; ++r) {
      DequantizeRow(src.type, in + r * src_rb, row.data(), cols);  // exact for F32/BF16/F16
      QuantizeRow(type, row.data(), dst + r * rb, cols);
    }
  };
  if (pool != nullptr) pool->ParallelFor(rows, 1, work, 4);
  else work(0, rows, 0);
  OwnedWeight w;
  w.view = WeightView{type, storage.get(), rows, cols, bytes};
  w.storage = std::move(storage);
  return w;
}

Result<QuantizedTensor> QuantizeForLoad(const TensorView& t, const std::string& name,
                                        const QuantPlan& plan, ThreadPool* pool) {
  const auto q = PlanTensor(plan, name, t.shape);
  if (!q.has_value()) {
    return Errorf("tensor '{}' (shape {}) stays as stored under --quant {}", name,
                  ShapeString(t.shape), plan.spec);
  }
  auto w = QuantizeWeight(t, q->type, pool);
  if (!w.ok()) return w.status();
  return QuantizedTensor{std::move(w.value()), *q};
}

std::vector<PlannedTensor> PlanModel(const ModelConfig& c, const TensorStore& tensors,
                                     const QuantPlan& plan) {
  std::vector<PlannedTensor> planned;
  for (const ExpectedTensor& e : ExpectedTensors(c)) {
    const TensorView* t = tensors.Find(e.name);
    if (t == nullptr) continue;
    if (std::optional<TensorQuant> q = PlanTensor(plan, e.name, t->shape)) planned.push_back({e.name, t, *q});
  }
  return planned;
}

}  // namespace oko
