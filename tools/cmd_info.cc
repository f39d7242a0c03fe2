// oko info -m DIR|FILE.gguf: what a model folder or GGUF file holds and what it will cost
// to run.
#include <map>

#include <nlohmann/json.hpp>

#include "common/limits.h"
#include "common/mapped_file.h"
#include "engine/kernel_paths.h"
#include "engine/machine_limits.h"
#include "engine/model.h"
#include "engine/quant_plan.h"
#include "loaders/chat_template.h"
#include "loaders/model_dir.h"
#include "loaders/tokenizer.h"
#include "ops/gemm_onednn.h"
#include "ops/machine_probe.h"
#include "tools/command.h"

namespace oko {
namespace {

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.{}f} {}", bytes, u == 0 ? 0 : 2, units[u]);
}

// config.json's "architectures"[0] (LlamaForCausalLM), else the architecture oko maps it to.
std::string ArchitectureName(const std::string& dir, const ModelConfig& c) {
  auto text = ReadFileToString(dir + "/config.json", kMaxConfigJsonBytes);
  if (text.ok()) {
    const auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("architectures") && j["architectures"].is_array() &&
        !j["architectures"].empty() && j["architectures"][0].is_string())
      return j["architectures"][0].get<std::string>();
  }
  return std::string(ArchName(c.arch));
}

// info describes the whole folder, so it checks all of it: the tokenizer and chat
// template too, not only what Model::Load reads.
Status CheckTokenizerFiles(const ModelDir& m) {
  if (m.has_tokenizer) OKO_RETURN_IF_ERROR(Tokenizer::Load(m.dir).status());
  if (m.has_chat_template) OKO_RETURN_IF_ERROR(ChatTemplate::LoadFromDir(m.dir).status());
  return {};
}

// The stored tensors: of a folder, its safetensors; of a GGUF file, all of its tensors by
// ggml type.
struct TensorSummary {
  size_t tensors = 0, files = 0;
  uint64_t bytes = 0;
  std::map<std::string_view, uint64_t> bytes_per_dtype, count_per_dtype;
};

TensorSummary SummarizeTensors(const ModelDir& m) {
  TensorSummary s;
  auto add = [&](std::string_view type, uint64_t bytes) {
    ++s.tensors;
    s.bytes += bytes;
    s.bytes_per_dtype[type] += bytes;
    ++s.count_per_dtype[type];
  };
  if (m.gguf != nullptr) {
    s.files = 1;
    for (const GgufTensor& t : m.gguf->tensors()) add(GgmlTypeSizeOf(t.ggml_type)->name, t.nbytes);
    return s;
  }
  s.files = m.tensors.files().size();
  for (const auto& [name, t] : m.tensors.tensors()) add(DTypeName(t.dtype), t.nbytes);
  return s;
}

nlohmann::ordered_json InfoJson(const ModelDir& m, const TensorSummary& s) {
  const ModelConfig& c = m.config;
  nlohmann::ordered_json dtypes = nlohmann::ordered_json::object(), counts = nlohmann::ordered_json::object();
  for (const auto& [name, bytes] : s.bytes_per_dtype) dtypes[std::string(name)] = bytes;
  for (const auto& [name, n] : s.count_per_dtype) counts[std::string(name)] = n;
  nlohmann::ordered_json j = {{"model", m.dir},
          {"architecture", ArchitectureName(m.dir, c)},
          {"model_type", c.model_type},
          {"parameters", m.ParameterCount()},
          {"tensors", s.tensors},
          {"files", s.files},
          {"bytes", s.bytes},
          {"bytes_per_dtype", dtypes},
          {"tensors_per_dtype", counts},
          {"vocab_size", c.vocab_size},
          {"hidden_size", c.hidden_size},
          {"intermediate_size", c.intermediate_size},
          {"num_layers", c.num_layers},
          {"num_heads", c.num_heads},
          {"num_kv_heads", c.num_kv_heads},
          {"head_dim", c.head_dim},
          {"rope_theta", c.rope_theta},
          {"max_position_embeddings", c.max_position_embeddings},
          {"eos_token_ids", c.eos_token_ids},
          {"kv_bytes_per_token_f32", 2 * c.num_layers * c.kv_dim() * 4},
          {"tokenizer", m.has_tokenizer},
          {"chat_template", m.has_chat_template}};
  if (m.gguf != nullptr) {
    nlohmann::ordered_json keys = nlohmann::ordered_json::array();
    for (const auto& [key, value] : m.gguf->metadata()) keys.push_back(key);
    j["gguf"] = {{"version", m.gguf->contents().version}, {"metadata_keys", keys}};
  }
  return j;
}

// "gpt2 (qwen2)" of a GGUF file's tokenizer, "tokenizer.json" of a folder's.
std::string TokenizerName(const ModelDir& m) {
  if (!m.has_tokenizer) return "none";
  if (m.gguf == nullptr) return "tokenizer.json";
  const GgufValue* model = m.gguf->Find("tokenizer.ggml.model");
  const GgufValue* pre = m.gguf->Find("tokenizer.ggml.pre");
  std::string name = "tokenizer.ggml " + (model->is_string() ? model->str() : "?");
  if (pre != nullptr && pre->is_string()) name += " (" + pre->str() + ")";
  return name;
}

// --quant: the weights' size under the plan, and the tensors that fall back.
struct QuantSummary {
  std::string spec;
  uint64_t bytes = 0;  // every tensor, quantized or as stored
  std::vector<std::string> fallbacks;
};

Result<QuantSummary> SummarizeQuant(const ModelDir& m, const std::string& spec) {
  const ModelConfig& c = m.config;
  if (m.gguf != nullptr)
    return Errorf("{} is a GGUF file, whose weights run in the types it holds (--quant applies to model folders)",
                  m.dir);
  OKO_ASSIGN_OR_RETURN(QuantPlan plan, ParseQuantPlan(spec, static_cast<int>(c.num_layers), c.tie_word_embeddings));
  QuantSummary q{spec, m.tensors.total_bytes(), {}};
  for (const PlannedTensor& p : PlanModel(c, m.tensors, plan)) {
    q.bytes = q.bytes - p.tensor->nbytes + PlannedBytes(plan, *p.tensor);
    if (p.choice.fell_back()) q.fallbacks.push_back(FallbackNote(p.name, p.choice, p.tensor->shape[1]));
  }
  return q;
}

// How `oko run` would compute with this model here: the compute mode `auto` picks and the
// kernel each matmul runs (with --quant: on the weights it would quantize to).
struct ComputePlan {
  std::string compute;  // "f32 (no bf16 dot on this CPU)"
  std::vector<std::pair<std::string, std::vector<PathGroup>>> paths;
};

Result<ComputePlan> PlanCompute(const std::string& dir, const std::string& quant) {
  EngineOptions options;
  options.compute_auto = true;
  OKO_ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::Load(dir, options));
  std::vector<WeightSite> sites = WeightSites(model->graph());
  if (!quant.empty()) {
    const ModelConfig& c = model->config();
    OKO_ASSIGN_OR_RETURN(QuantPlan plan, ParseQuantPlan(quant, static_cast<int>(c.num_layers),
                                                        c.tie_word_embeddings));
    for (WeightSite& s : sites) {
      const std::vector<int64_t> shape{static_cast<int64_t>(s.rows), static_cast<int64_t>(s.cols)};
      if (std::optional<TensorQuant> q = PlanTensor(plan, s.weight, shape)) {
        s.type = q->type;
        s.mode = ComputeMode::kBf16;  // quantized weights' default: 8-bit activations
      }
    }
  }
  const size_t prefill = static_cast<size_t>(EngineOptions{}.max_batch);
  return ComputePlan{fmt::format("{} ({})", ComputeModeName(model->compute()), model->compute_reason()),
                     {{fmt::format("prefill x{}", prefill), DescribePaths(sites, prefill, Phase::kPrefill)},
                      {"decode x1", DescribePaths(sites, 1, Phase::kDecode)}}};
}

Status RunInfo(const std::string& dir, bool json, const std::string& quant) {
  OKO_ASSIGN_OR_RETURN(ModelDir m, OpenModelDir(dir));
  OKO_RETURN_IF_ERROR(CheckTokenizerFiles(m));
  const ModelConfig& c = m.config;
  const TensorSummary tensors = SummarizeTensors(m);
  std::string dtypes;
  for (const auto& [name, bytes] : tensors.bytes_per_dtype)
    dtypes += fmt::format("{}{} {}{}", dtypes.empty() ? "" : ", ", name, HumanBytes(bytes),
                          m.gguf != nullptr ? fmt::format(" ({})", tensors.count_per_dtype.at(name)) : "");
  const int64_t kv_per_token = 2 * c.num_layers * c.kv_dim();  // K and V, every layer
  std::optional<QuantSummary> q;
  if (!quant.empty()) {
    auto summary = SummarizeQuant(m, quant);
    if (!summary.ok()) return Status::Error("--quant: " + summary.status().message(), ExitCode::kUsage);
    q = std::move(*summary);
  }
  const Result<ComputePlan> plan = PlanCompute(dir, quant);
  if (json) {
    nlohmann::ordered_json j = InfoJson(m, tensors);
    j["cpu"] = CpuIdentity();
    j["simd"] = SimdTargetName();
    j["bf16_compute"] = OnednnBf16Supported();
    j["amx"] = OnednnAmxBf16Supported();
    if (q) j["quant"] = {{"type", q->spec}, {"bytes", q->bytes}, {"fallbacks", q->fallbacks}};
    if (plan.ok()) {
      j["compute"] = plan->compute;
      for (const auto& [what, groups] : plan->paths) j["paths"][what] = PathsToJson(groups);
    } else {
      j["compute_error"] = plan.status().message();
    }
    fmt::print("{}\n", j.dump(2));
    return {};
  }
  fmt::print("model        {}\n", dir);
  fmt::print("architecture {} ({})\n", ArchitectureName(dir, c), c.model_type);
  fmt::print("parameters   {} ({:.3f} M)\n", m.ParameterCount(), m.ParameterCount() / 1e6);
  fmt::print("tensors      {} in {} file(s), {}\n", tensors.tensors, tensors.files, HumanBytes(tensors.bytes));
  if (m.gguf != nullptr)
    fmt::print("gguf         version {}, {} metadata keys\n", m.gguf->contents().version, m.gguf->metadata().size());
  fmt::print("dtypes       {}\n", dtypes);
  fmt::print("vocab        {}\n", c.vocab_size);
  fmt::print("hidden       {}\n", c.hidden_size);
  fmt::print("intermediate {}\n", c.intermediate_size);
  fmt::print("layers       {}\n", c.num_layers);
  fmt::print("heads        {} query, {} key/value (GQA group {}), head_dim {}\n", c.num_heads,
             c.num_kv_heads, c.num_heads / c.num_kv_heads, c.head_dim);
  fmt::print("rope         theta {}{}\n", c.rope_theta,
             c.rope_scaling.type.empty() ? "" : fmt::format(", {} scaling x{}", c.rope_scaling.type,
                                                             c.rope_scaling.factor));
  fmt::print("rms_norm_eps {}\n", c.rms_norm_eps);
  fmt::print("embeddings   {}\n", c.tie_word_embeddings ? "tied (lm_head = embed_tokens)" : "untied");
  fmt::print("biases       q/k/v {}, o {}; q/k norm {}\n", c.qkv_bias ? "yes" : "no",
             c.o_bias ? "yes" : "no", c.qk_norm ? "yes" : "no");
  fmt::print("max context  {}\n", c.max_position_embeddings);
  fmt::print("eos ids      [{}]\n", fmt::join(c.eos_token_ids, ", "));
  fmt::print("kv cache     {} per 1k tokens (f32), {} (f16)\n",
             HumanBytes(kv_per_token * 1024.0 * 4), HumanBytes(kv_per_token * 1024.0 * 2));
  fmt::print("tokenizer    {}\n", TokenizerName(m));
  fmt::print("chat template {}\n", m.has_chat_template ? "yes" : "no");
  if (q) {
    fmt::print("--quant {}   {} (as stored: {})\n", q->spec, HumanBytes(q->bytes), HumanBytes(m.tensors.total_bytes()));
    for (const std::string& note : q->fallbacks) fmt::print("  falls back: {}\n", note);
  }
  fmt::print("this cpu     {}, ops on {}, bf16 compute {}\n", CpuIdentity(), SimdTargetName(),
             OnednnBf16Supported() ? OnednnAmxBf16Supported() ? "available (AMX)" : "available"
                                   : "unavailable (no AVX-512)");
  if (!plan.ok()) {
    fmt::print("compute      unknown: {}\n", plan.status().message());
    return {};
  }
  fmt::print("compute      auto: {}{}\n", plan->compute, q ? ", weights as --quant makes them" : "");
  for (const auto& [what, groups] : plan->paths)
    fmt::print("{}", FormatPaths(fmt::format("{:<15}", "  " + what + " "), groups));
  return {};
}

}  // namespace

Subcommand AddInfoCommand(CLI::App& root) {
  auto dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto quant = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand("info", "Model summary: architecture, parameters, dtypes, bytes");
  AddModelOption(app, dir.get());
  app->add_flag("--json", *json, "one JSON object instead of the table");
  app->add_option("--quant", *quant,
                  "also show the weights' size under this --quant type and which tensors fall back "
                  "(default: none)");
  AddExamples(app, {"oko info -m ../shared/models/tiny-qwen3", "oko info -m DIR --json | jq .parameters",
                    "oko info -m DIR --quant q4_k_m", "oko info -m model-q4_k_m.gguf"});
  return {app, [dir, json, quant] { return RunInfo(*dir, *json, *quant); }};
}

}  // namespace oko
