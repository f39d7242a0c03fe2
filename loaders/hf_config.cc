#include "loaders/hf_config.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "loaders/gguf_model.h"
#include "loaders/json_fields.h"
#include "loaders/json_util.h"

namespace oko {
namespace {

using json = nlohmann::json;

Status ParseRopeScaling(const json* v, const std::string& path, RopeScaling* out) {
  if (v == nullptr) return {};
  if (!v->is_object()) return Errorf("{}: 'rope_scaling' must be an object or null", path);
  JsonFields f(*v, path, "rope_scaling.");
  std::string type;
  OKO_RETURN_IF_ERROR(f.String("rope_type", &type));
  if (type.empty()) OKO_RETURN_IF_ERROR(f.String("type", &type));
  if (type == "default" || type.empty()) return {};
  if (type != "linear" && type != "llama3")
    return Errorf("{}: rope_scaling type '{}' is not implemented (supported: linear, llama3)",
                  path, type);
  out->type = type;
  OKO_RETURN_IF_ERROR(f.Double("factor", &out->factor));
  if (out->factor <= 0)
    return Errorf("{}: 'rope_scaling.factor' must be > 0, got {}", path, out->factor);
  OKO_RETURN_IF_ERROR(f.Double("low_freq_factor", &out->low_freq_factor));
  OKO_RETURN_IF_ERROR(f.Double("high_freq_factor", &out->high_freq_factor));
  OKO_RETURN_IF_ERROR(f.Int("original_max_position_embeddings",
                            &out->original_max_position_embeddings, type == "llama3"));
  return {};
}

}  // namespace

std::string_view ArchName(Arch a) {
  switch (a) {
    case Arch::kQwen3: return "qwen3";
    case Arch::kQwen2: return "qwen2";
    case Arch::kLlama: return "llama";
  }
  return "?";
}

Result<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& path) {
  OKO_ASSIGN_OR_RETURN(json j, ParseJsonText(json_text, path));
  if (!j.is_object()) return Errorf("{}: not a JSON object", path);
  JsonFields f(j, path);
  ModelConfig c;
  OKO_RETURN_IF_ERROR(f.String("model_type", &c.model_type));
  if (c.model_type == "qwen3") {
    c.arch = Arch::kQwen3;
    c.qk_norm = true;
  } else if (c.model_type == "qwen2") {
    c.arch = Arch::kQwen2;
    c.qkv_bias = true;
  } else if (c.model_type == "llama" || c.model_type == "mistral") {  // mistral: + sliding_window
    c.arch = Arch::kLlama;
  } else {
    return Errorf("{}: model_type '{}' is not supported (supported: qwen3, qwen2, llama, mistral)", path,
                  c.model_type.empty() ? "(missing)" : c.model_type);
  }
  OKO_RETURN_IF_ERROR(f.Int("vocab_size", &c.vocab_size, true, 1, kMaxVocabSize));
  OKO_RETURN_IF_ERROR(f.Int("hidden_size", &c.hidden_size, true, 1, kMaxHidden));
  OKO_RETURN_IF_ERROR(f.Int("intermediate_size", &c.intermediate_size, true, 1, kMaxIntermediate));
  OKO_RETURN_IF_ERROR(f.Int("num_hidden_layers", &c.num_layers, true, 1, kMaxLayers));
  OKO_RETURN_IF_ERROR(f.Int("num_attention_heads", &c.num_heads, true, 1, kMaxHeads));
  c.num_kv_heads = c.num_heads;
  OKO_RETURN_IF_ERROR(f.Int("num_key_value_heads", &c.num_kv_heads, false, 1, kMaxHeads));
  if (c.num_heads % c.num_kv_heads != 0)
    return Errorf("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", path,
                  c.num_heads, c.num_kv_heads);
  if (c.num_heads / c.num_kv_heads > 64)  // the attention kernels' query group (kBlockQueries)
    return Errorf("{}: {} query heads per key/value head are not supported (at most 64)", path,
                  c.num_heads / c.num_kv_heads);
  if (c.hidden_size % c.num_heads != 0 && f.Get("head_dim") == nullptr)
    return Errorf("{}: hidden_size {} is not a multiple of num_attention_heads {} and no head_dim is given",
                  path, c.hidden_size, c.num_heads);
  c.head_dim = c.hidden_size / c.num_heads;
  OKO_RETURN_IF_ERROR(f.Int("head_dim", &c.head_dim, false, 1, kMaxHeadDim));
  if (c.head_dim > kMaxHeadDim)
    return Errorf("{}: head_dim (hidden_size / num_attention_heads) is {}, over oko's limit of {}",
                  path, c.head_dim, kMaxHeadDim);
  if (c.head_dim % 2 != 0) return Errorf("{}: head_dim {} must be even for RoPE", path, c.head_dim);
  OKO_RETURN_IF_ERROR(f.Double("rms_norm_eps", &c.rms_norm_eps));
  OKO_RETURN_IF_ERROR(f.Double("rope_theta", &c.rope_theta));
  if (c.rope_theta <= 0) return Errorf("{}: 'rope_theta' must be > 0", path);
  OKO_RETURN_IF_ERROR(ParseRopeScaling(f.Get("rope_scaling"), path, &c.rope_scaling));
  OKO_RETURN_IF_ERROR(f.Bool("tie_word_embeddings", &c.tie_word_embeddings));
  bool attention_bias = false;
  OKO_RETURN_IF_ERROR(f.Bool("attention_bias", &attention_bias));
  if (attention_bias) c.qkv_bias = c.o_bias = true;
  bool mlp_bias = false;
  OKO_RETURN_IF_ERROR(f.Bool("mlp_bias", &mlp_bias));
  if (mlp_bias) return Errorf("{}: 'mlp_bias': true is not implemented", path);
  std::string act = "silu";
  OKO_RETURN_IF_ERROR(f.String("hidden_act", &act));
  if (act != "silu") return Errorf("{}: hidden_act '{}' is not implemented (only silu)", path, act);
  OKO_RETURN_IF_ERROR(f.Int("max_position_embeddings", &c.max_position_embeddings, false));
  // Sliding-window attention. Mistral: every layer attends the last `sliding_window`
  // positions (null in Mistral v0.2+ means full attention); the engine honours it as its
  // attention window (engine/kv_cache.h). Qwen2/Qwen3 apply a window only to some layers
  // (use_sliding_window with max_window_layers), which oko does not implement: refuse it
  // rather than answer with full attention.
  if (c.model_type == "mistral") {
    OKO_RETURN_IF_ERROR(f.Int("sliding_window", &c.sliding_window, false, 1));
  } else {
    // As transformers' Qwen2Config: layer i slides when use_sliding_window, sliding_window
    // is set and i >= max_window_layers.
    bool use_sliding_window = false;
    int64_t window = 0, max_window_layers = 28;  // transformers' default
    OKO_RETURN_IF_ERROR(f.Bool("use_sliding_window", &use_sliding_window));
    OKO_RETURN_IF_ERROR(f.Int("sliding_window", &window, false, 0));
    OKO_RETURN_IF_ERROR(f.Int("max_window_layers", &max_window_layers, false, 0));
    if (use_sliding_window && window > 0 && max_window_layers < c.num_layers)
      return Errorf("{}: 'use_sliding_window': true with max_window_layers {} < num_hidden_layers {} "
                    "(a sliding window on some layers) is not implemented",
                    path, max_window_layers, c.num_layers);
  }
  int64_t bos = -1;
  OKO_RETURN_IF_ERROR(f.Int("bos_token_id", &bos, false, 0, kMaxTokenId));
  if (bos >= 0) c.bos_token_id = bos;
  OKO_RETURN_IF_ERROR(f.Ids("eos_token_id", &c.eos_token_ids));
  OKO_RETURN_IF_ERROR(f.String("torch_dtype", &c.torch_dtype));
  // transformers >= 4.56 saves "dtype" in place of "torch_dtype".
  if (c.torch_dtype.empty()) OKO_RETURN_IF_ERROR(f.String("dtype", &c.torch_dtype));
  return c;
}

Status ParseGenerationConfig(const std::string& json_text, const std::string& path,
                             ModelConfig* config) {
  OKO_ASSIGN_OR_RETURN(json j, ParseJsonText(json_text, path));
  if (!j.is_object()) return Errorf("{}: not a JSON object", path);
  JsonFields f(j, path);
  GenerationDefaults& g = config->generation;
  auto opt_double = [&](const char* key, std::optional<double>* out) -> Status {
    if (f.Get(key) == nullptr) return {};
    double v = 0;
    OKO_RETURN_IF_ERROR(f.Double(key, &v));
    *out = v;
    return {};
  };
  if (f.Get("do_sample") != nullptr) {
    bool b = false;
    OKO_RETURN_IF_ERROR(f.Bool("do_sample", &b));
    g.do_sample = b;
  }
  OKO_RETURN_IF_ERROR(opt_double("temperature", &g.temperature));
  OKO_RETURN_IF_ERROR(opt_double("top_p", &g.top_p));
  OKO_RETURN_IF_ERROR(opt_double("min_p", &g.min_p));
  OKO_RETURN_IF_ERROR(opt_double("repetition_penalty", &g.repetition_penalty));
  if (f.Get("top_k") != nullptr) {
    int64_t k = 0;
    OKO_RETURN_IF_ERROR(f.Int("top_k", &k, true, 0));
    g.top_k = k;
  }
  OKO_RETURN_IF_ERROR(f.Ids("eos_token_id", &g.eos_token_ids));
  for (int64_t id : g.eos_token_ids)
    if (std::find(config->eos_token_ids.begin(), config->eos_token_ids.end(), id) ==
        config->eos_token_ids.end())
      config->eos_token_ids.push_back(id);
  return {};
}

Result<ModelConfig> LoadModelConfig(const std::string& dir) {
  namespace fs = std::filesystem;
  if (IsGgufPath(dir)) return LoadGgufModelConfig(dir);
  const std::string path = (fs::path(dir) / "config.json").string();
  if (!PathExists(path)) return Errorf("{}: missing (is '{}' a Hugging Face model folder?)", path, dir);
  OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxConfigJsonBytes));
  OKO_ASSIGN_OR_RETURN(ModelConfig c, ParseModelConfig(text, path));
  const std::string gen = (fs::path(dir) / "generation_config.json").string();
  if (PathExists(gen)) {
    OKO_ASSIGN_OR_RETURN(std::string gen_text, ReadFileToString(gen, kMaxConfigJsonBytes));
    OKO_RETURN_IF_ERROR(ParseGenerationConfig(gen_text, gen, &c));
  }
  return c;
}

const char* LayerWeightSuffix(LayerWeight w) {
  switch (w) {
    case LayerWeight::kInputNorm: return "input_layernorm.weight";
    case LayerWeight::kPostAttentionNorm: return "post_attention_layernorm.weight";
    case LayerWeight::kQProj: return "self_attn.q_proj.weight";
    case LayerWeight::kKProj: return "self_attn.k_proj.weight";
    case LayerWeight::kVProj: return "self_attn.v_proj.weight";
    case LayerWeight::kOProj: return "self_attn.o_proj.weight";
    case LayerWeight::kQBias: return "self_attn.q_proj.bias";
    case LayerWeight::kKBias: return "self_attn.k_proj.bias";
    case LayerWeight::kVBias: return "self_attn.v_proj.bias";
    case LayerWeight::kOBias: return "self_attn.o_proj.bias";
    case LayerWeight::kQNorm: return "self_attn.q_norm.weight";
    case LayerWeight::kKNorm: return "self_attn.k_norm.weight";
    case LayerWeight::kGateProj: return "mlp.gate_proj.weight";
    case LayerWeight::kUpProj: return "mlp.up_proj.weight";
    case LayerWeight::kDownProj: return "mlp.down_proj.weight";
  }
  return "?";
}

std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  std::vector<ExpectedTensor> t = {
      {"model.embed_tokens.weight", {V, H}},
      {"model.norm.weight", {H}},
      {"lm_head.weight", {V, H}, c.tie_word_embeddings},
  };
  using W = LayerWeight;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    auto add = [&](LayerWeight w, std::vector<int64_t> shape) {
      t.push_back({LayerTensor(l, w), std::move(shape)});
    };
    add(W::kInputNorm, {H});
    add(W::kPostAttentionNorm, {H});
    add(W::kQProj, {c.q_dim(), H});
    add(W::kKProj, {c.kv_dim(), H});
    add(W::kVProj, {c.kv_dim(), H});
    add(W::kOProj, {H, c.q_dim()});
    if (c.qkv_bias) {
      add(W::kQBias, {c.q_dim()});
      add(W::kKBias, {c.kv_dim()});
      add(W::kVBias, {c.kv_dim()});
    }
    if (c.o_bias) add(W::kOBias, {H});
    if (c.qk_norm) {
      add(W::kQNorm, {c.head_dim});
      add(W::kKNorm, {c.head_dim});
    }
    add(W::kGateProj, {I, H});
    add(W::kUpProj, {I, H});
    add(W::kDownProj, {H, I});
  }
  return t;
}

Status CheckTensors(const ModelConfig& c, const TensorStore& store) {
  std::vector<std::string> missing, wrong, unexpected;
  std::set<std::string> known;
  for (const auto& e : ExpectedTensors(c)) {
    known.insert(e.name);
    const TensorView* t = store.Find(e.name);
    if (t == nullptr) {
      if (!e.optional) missing.push_back(e.name);
      continue;
    }
    if (t->shape != e.shape)
      wrong.push_back(fmt::format("{}: tensor '{}' has shape {}, expected {}", *t->file, e.name,
                                  ShapeString(t->shape), ShapeString(e.shape)));
    else if (t->dtype != DType::kF32 && t->dtype != DType::kBF16 && t->dtype != DType::kF16)
      wrong.push_back(fmt::format("{}: tensor '{}' has dtype {}, expected F32, BF16 or F16",
                                  *t->file, e.name, DTypeName(t->dtype)));
  }
  for (const auto& [name, t] : store.tensors()) {
    // Precomputed RoPE tables some exporters keep are harmless.
    if (!known.count(name) && name.find("rotary_emb.inv_freq") == std::string::npos)
      unexpected.push_back(name);
  }
  if (missing.empty() && wrong.empty() && unexpected.empty()) return {};
  std::string msg = fmt::format("model tensors do not match config.json ({} {} layers):",
                                ArchName(c.arch), c.num_layers);
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    msg += fmt::format("\n  {} ({}):", what, v.size());
    for (size_t i = 0; i < v.size() && i < 20; ++i) msg += "\n    " + v[i];
    if (v.size() > 20) msg += fmt::format("\n    ... and {} more", v.size() - 20);
  };
  list("missing", missing);
  list("wrong shape or dtype", wrong);
  list("unexpected", unexpected);
  return Status::Error(msg);
}

}  // namespace oko
