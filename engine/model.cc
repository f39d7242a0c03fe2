#include "engine/model.h"

#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "common/check.h"
#include "common/mapped_file.h"
#include "engine/compute_choice.h"
#include "engine/quant_plan.h"
#include "loaders/gguf_model.h"
#include "ops/rms_norm.h"

namespace oko {

Result<ComputeMode> ParseComputeMode(const std::string& s) {
  if (s == "f32") return ComputeMode::kF32;
  if (s == "bf16") return ComputeMode::kBf16;
  return Errorf("the compute mode must be f32 or bf16, got '{}'", s);
}

namespace {

int LoadingThreads(const EngineOptions& options) {
  return options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
}

struct Quantized {
  QuantizedWeights weights;
  std::vector<std::string> fallbacks;
};

// Every weight the plan covers (PlanModel), quantized over a pool of options.threads.
Result<Quantized> Quantize(const ModelDir& m, const EngineOptions& options) {
  const ModelConfig& c = m.config;
  OKO_ASSIGN_OR_RETURN(QuantPlan plan, ParseQuantPlan(options.quant, static_cast<int>(c.num_layers),
                                                       c.tie_word_embeddings));
  const std::vector<PlannedTensor> todo = PlanModel(c, m.tensors, plan);
  ThreadPool pool(LoadingThreads(options));
  Quantized q;
  for (size_t i = 0; i < todo.size(); ++i) {
    const PlannedTensor& p = todo[i];
    OKO_ASSIGN_OR_RETURN(QuantizedTensor t, QuantizeForLoad(*p.tensor, p.name, plan, &pool));
    if (t.choice.fell_back()) q.fallbacks.push_back(FallbackNote(p.name, t.choice, p.tensor->shape[1]));
    q.weights.emplace(p.name, std::move(t.weight));
    // The stored weights are not read again: their pages leave the resident set.
    if (m.tensors.IsMapped(*p.tensor)) ReleaseMappedPages(p.tensor->data, p.tensor->nbytes);
    if (options.on_quant_progress) options.on_quant_progress(i + 1, todo.size());
  }
  return q;
}

// An owned, 64-byte aligned copy of `w` whose row r is row source_row(r) of `w`.
template <typename SourceRow>
Result<OwnedWeight> CopyRows(const WeightView& w, SourceRow source_row, const std::string& name) {
  const size_t rb = w.row_bytes();
  std::shared_ptr<std::byte> storage = AllocateStreamedBytes(w.nbytes);
  if (storage == nullptr) return RuntimeErrorf("tensor '{}': out of memory ({} bytes)", name, w.nbytes);
  std::byte* dst = storage.get();
  for (size_t r = 0; r < w.rows; ++r) std::memcpy(dst + r * rb, w.data + source_row(r) * rb, rb);
  OwnedWeight out{w, std::move(storage)};
  out.view.data = dst;
  return out;
}

// A GGUF file's matrices as weights the graph runs in place; the file stays mapped as
// long as any of them lives. Copied instead: the llama q/k matrices, rows put back in
// Hugging Face order (loaders/gguf_model.h; whole rows move, blocks are not re-quantized).
Result<QuantizedWeights> GgufWeights(const ModelDir& m) {
  QuantizedWeights weights;
  const size_t hd = static_cast<size_t>(m.config.head_dim);
  const auto unpermuted = [&](size_t r) { return LlamaQkFileRow(r, hd); };
  for (const auto& [name, t] : m.gguf_tensors) {
    if (t->ne.size() != 2) continue;
    const auto type = QuantTypeFromGgml(t->ggml_type);
    if (!type.has_value())
      return Errorf("{}: tensor '{}' is {}, a type oko does not run (it runs F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                    "Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)",
                    m.dir, t->name, GgmlTypeSizeOf(t->ggml_type)->name);
    const WeightView view{*type, t->data, static_cast<size_t>(t->ne[1]), static_cast<size_t>(t->ne[0]), t->nbytes};
    if (LlamaQkRowPermuted(m.config, name)) {
      OKO_ASSIGN_OR_RETURN(OwnedWeight w, CopyRows(view, unpermuted, t->name));
      weights.emplace(name, std::move(w));
    } else {
      weights.emplace(name, OwnedWeight{view, std::shared_ptr<const void>(m.gguf, t->data)});
    }
  }
  return weights;
}

// The dtype the model's matrices are stored in (layer 0's up_proj), which `auto` compute
// decides on. A GGUF file's quantized matrices count as f32: the choice keeps their prefill
// exact, as for --quant of an f32 folder.
DType StoredMatrixDType(const ModelDir& m) {
  const std::string name = LayerTensor(0, LayerWeight::kUpProj);
  if (m.gguf == nullptr) {
    const TensorView* w = m.tensors.Find(name);
    return w != nullptr ? w->dtype : DType::kF32;
  }
  const auto it = m.gguf_tensors.find(name);
  const std::optional<QuantType> type =
      it != m.gguf_tensors.end() ? QuantTypeFromGgml(it->second->ggml_type) : std::nullopt;
  if (type == QuantType::kBF16) return DType::kBF16;
  if (type == QuantType::kF16) return DType::kF16;
  return DType::kF32;
}

// The weights whose format this CPU's int8 kernels read fastest with rows interleaved
// (QuantInterleaveRows: every block format on AVX512-VNNI), copied into that layout over the
// pool, all in one block of huge pages (AllocateStreamedBytes; a 0.6B model's matrices are
// 1-2 MiB each, too small for huge pages of their own). The bytes they came from leave memory (a mapped file's pages are
// given back), so the resident size stays that of the format. Only where the kernels run
// on 8-bit activations: the exact f32 path would copy the rows back a group at a time.
Status InterleaveForKernels(QuantizedWeights& weights, const ModelDir& m, ThreadPool& pool) {
  std::vector<std::pair<OwnedWeight*, size_t>> todo;  // weight, rows per group
  for (auto& [name, w] : weights) {
    const size_t group = QuantInterleaveRows(w.view.type);
    if (CanInterleave(w.view, group)) todo.emplace_back(&w, group);
  }
  if (todo.empty()) return {};
  size_t total = 0;
  for (auto [w, group] : todo) total += (w->view.nbytes + 63) / 64 * 64;
  const std::shared_ptr<std::byte> block = AllocateStreamedBytes(total);
  if (block == nullptr) return RuntimeErrorf("out of memory ({} bytes for the interleaved weights)", total);
  std::vector<size_t> offsets(todo.size() + 1, 0);
  for (size_t i = 0; i < todo.size(); ++i) offsets[i + 1] = offsets[i] + (todo[i].first->view.nbytes + 63) / 64 * 64;
  pool.ParallelFor(todo.size(), 1, [&](size_t i0, size_t i1, int) {
    for (size_t i = i0; i < i1; ++i) {
      auto [w, group] = todo[i];
      const WeightView from = w->view;
      const bool mapped = m.gguf != nullptr && !w->storage.owner_before(m.gguf) && !m.gguf.owner_before(w->storage);
      w->view = InterleaveRows(from, group, block.get() + offsets[i]);
      w->storage = std::shared_ptr<const void>(block, block.get() + offsets[i]);  // frees a --quant copy
      if (mapped) ReleaseMappedPages(from.data, from.nbytes);
    }
  }, 4);
  return {};
}

}  // namespace

Result<std::shared_ptr<const Model>> Model::Load(const std::string& dir,
                                                 const EngineOptions& options) {
  OKO_ASSIGN_OR_RETURN(ModelDir m, OpenModelDir(dir));
  ComputeChoice compute{options.compute, "asked for"};
  if (options.compute_auto) {
    const DType weights = StoredMatrixDType(m);
    const bool bf16_possible = weights == DType::kBF16 && OnednnBf16Supported();
    // The probe (0.1 s, once per CPU) only where bf16 could be chosen.
    compute = ChooseCompute(bf16_possible ? LoadOrMeasureComputeRates() : ComputeRates{},
                            OnednnBf16Supported(), weights);
  }
  if (compute.mode == ComputeMode::kBf16 && !OnednnBf16Supported())
    return Errorf("bf16 compute needs AVX-512, which this CPU lacks: use f32 compute");
  // Quantized weights run with 8-bit activations unless f32 was asked for: the fast
  // default, as llama.cpp computes.
  const bool exact = !options.compute_auto && options.compute == ComputeMode::kF32;
  const char* quant_why = exact ? "; quantized weights exact" : "; quantized weights with 8-bit activations";
  OKO_ASSIGN_OR_RETURN(std::vector<LoraAdapter> adapters, LoadLoraAdapters(options.lora, m.config));
  if (options.lora_merge && options.lora.empty()) return Errorf("no LoRA adapter to merge");
  if (options.lora_merge && (!options.quant.empty() || m.gguf != nullptr))
    return Errorf("LoRA adapters cannot be merged into quantized weights (unmerged, they run on "
                  "them)");
  Quantized q;
  if (m.gguf != nullptr) {
    if (!options.quant.empty())
      return Errorf("{} is a GGUF file: its weights run in the types it holds (quantizing at load "
                    "applies to model folders)", dir);
    OKO_ASSIGN_OR_RETURN(q.weights, GgufWeights(m));
    compute.why += quant_why;
  } else if (!options.quant.empty()) {
    OKO_ASSIGN_OR_RETURN(q, Quantize(m, options));
    compute.why += quant_why;
  } else if (options.lora_merge) {
    ThreadPool pool(LoadingThreads(options));
    q.weights = MergeLora(adapters, options.lora, m, pool);
  }
  if (!exact) {
    ThreadPool pool(LoadingThreads(options));
    OKO_RETURN_IF_ERROR(InterleaveForKernels(q.weights, m, pool));
  }
  auto model = std::shared_ptr<Model>(new Model(std::move(m), compute, std::move(q.weights),
                                                exact ? ComputeMode::kF32 : ComputeMode::kBf16));
  model->quant_ = options.quant;
  model->quant_fallbacks_ = std::move(q.fallbacks);
  model->AddLora(adapters, options);
  return std::shared_ptr<const Model>(std::move(model));
}

void Model::AddLora(const std::vector<LoraAdapter>& adapters, const EngineOptions& options) {
  lora_merged_ = options.lora_merge;
  for (size_t i = 0; i < adapters.size(); ++i) {
    loras_.push_back({adapters[i].name, adapters[i].dir, static_cast<float>(options.lora[i].scale),
                      adapters[i].modules.size()});
    for (const LoraModule& mod : adapters[i].modules)
      max_lora_rank_ = std::max(max_lora_rank_, static_cast<size_t>(mod.rank));
  }
  if (lora_merged_) {
    max_lora_rank_ = 0;
    return;
  }
  AttachLora(adapters, graph_);
}

Model::Model(ModelDir dir, ComputeChoice compute, QuantizedWeights quantized, ComputeMode quant_mode)
    : dir_(std::move(dir)),
      compute_(std::move(compute)),
      graph_(LayerGraph::Build(dir_.config, dir_.tensors, compute_.mode, &quantized, quant_mode)) {
  SetOnednnThreads(1);  // each pool worker runs its own slice (engine/linear.h)
}

void Model::LogitsOfHidden(ThreadPool& pool, const float* x, int64_t T, float* out,
                           std::span<const float> lora_scales) const {
  const ModelConfig& c = dir_.config;
  const size_t H = c.hidden_size;
  const Node& norm = graph_.final_norm();
  std::vector<float> xn(T * H);
  RmsNormRows({x, H, norm.norm_weight, xn.data(), H, size_t(T), H, static_cast<float>(c.rms_norm_eps)});
  Linear& lm_head = *graph_.lm_head().linear;
  lm_head.Forward(pool, xn.data(), H, T, out, c.vocab_size, Phase::kPrefill);  // positions of one sequence
  if (!lm_head.has_lora() || lora_scales.empty()) return;
  std::vector<float> scratch(T * lm_head.max_lora_rank());
  lm_head.ForwardLora(pool, xn.data(), H, T, out, c.vocab_size, lora_scales, scratch.data());
}

}  // namespace oko
