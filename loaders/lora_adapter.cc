#include "loaders/lora_adapter.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/limits.h"
#include "common/mapped_file.h"
#include "loaders/json_fields.h"
#include "loaders/json_util.h"
#include "loaders/safetensors.h"

namespace oko {
namespace {

using json = nlohmann::json;

// PEFT settings that change what the tensors mean and that oko does not implement: each is
// refused by name rather than silently ignored.
Status RefuseUnsupported(const json& j, const std::string& path) {
  JsonFields f(j, path);
  std::string peft_type;
  OKO_RETURN_IF_ERROR(f.String("peft_type", &peft_type));
  if (peft_type != "LORA")
    return Errorf("{}: 'peft_type' is \"{}\"; oko reads LoRA adapters (\"LORA\") only", path,
                  peft_type);
  bool dora = false, fan_in_fan_out = false;
  OKO_RETURN_IF_ERROR(f.Bool("use_dora", &dora));
  if (dora) return Errorf("{}: 'use_dora' is true; DoRA adapters are not supported", path);
  OKO_RETURN_IF_ERROR(f.Bool("fan_in_fan_out", &fan_in_fan_out));
  if (fan_in_fan_out)
    return Errorf("{}: 'fan_in_fan_out' is true (GPT-2 style Conv1D weights); not supported", path);
  std::string bias = "none";
  OKO_RETURN_IF_ERROR(f.String("bias", &bias));
  if (bias != "none")
    return Errorf("{}: 'bias' is \"{}\"; only adapters without bias terms (\"none\") are "
                  "supported", path, bias);
  if (const json* m = f.Get("modules_to_save"); m != nullptr && !(m->is_array() && m->empty()))
    return Errorf("{}: 'modules_to_save' is {}; adapters that replace whole modules are not "
                  "supported", path, m->dump());
  return {};
}

template <typename T>
Status ParsePattern(const JsonFields& f, const char* key, std::map<std::string, T>* out,
                    const std::string& path) {
  const json* p = f.Get(key);
  if (p == nullptr) return {};
  if (!p->is_object()) return Errorf("{}: '{}' must be an object", path, key);
  for (const auto& item : p->items()) {
    const std::string& k = item.key();
    const json& v = item.value();
    const bool ok = std::is_integral_v<T> ? v.is_number_integer() : v.is_number();
    if (!ok || v.get<double>() <= 0)
      return Errorf("{}: '{}.{}' must be a positive {}, got {}", path, key, k,
                    std::is_integral_v<T> ? "integer" : "number", v.dump());
    (*out)[k] = v.get<T>();
  }
  return {};
}

// PEFT >= 0.15: key K matches module M when re.match(r"(.*\.)?(K)$", M).
bool PatternMatches(const std::string& key, const std::string& module) {
  if (key == module) return true;
  return module.size() > key.size() && module.ends_with(key) &&
         module[module.size() - key.size() - 1] == '.';
}

template <typename T>
std::optional<T> Lookup(const std::map<std::string, T>& pattern, const std::string& module) {
  for (const auto& [key, value] : pattern)
    if (PatternMatches(key, module)) return value;
  return std::nullopt;
}

// The modules of the model an adapter may target, with their [out, in].
struct Target {
  int64_t in, out;
};
std::map<std::string, Target> Targets(const ModelConfig& c) {
  using W = LayerWeight;
  const int64_t H = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
  const std::pair<W, Target> shapes[] = {
      {W::kQProj, {H, Q}},    {W::kKProj, {H, KV}}, {W::kVProj, {H, KV}}, {W::kOProj, {Q, H}},
      {W::kGateProj, {H, I}}, {W::kUpProj, {H, I}}, {W::kDownProj, {I, H}},
  };
  std::map<std::string, Target> targets;
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (const auto& [w, shape] : shapes) {
      std::string name = LayerTensor(l, w);
      name.resize(name.size() - std::strlen(".weight"));
      targets[name] = shape;
    }
  targets["lm_head"] = {H, c.vocab_size};
  return targets;
}

int64_t LayerOf(const std::string& module) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (!module.starts_with(kPrefix)) return -1;
  int64_t layer = -1;
  std::from_chars(module.data() + kPrefix.size(), module.data() + module.size(), layer);
  return layer;
}

// Element by element through memcpy: the views of ReadLoraModules need not be aligned
// (SafetensorsFile::Open aligns what it maps; a header parsed in memory does not).
Result<std::vector<float>> ToF32(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  auto widen = [&](float (*convert)(uint16_t)) {
    for (size_t i = 0; i < v.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      v[i] = convert(h);
    }
  };
  switch (t.dtype) {
    case DType::kF32: std::memcpy(v.data(), t.data, t.nbytes); break;
    case DType::kBF16: widen(Bf16ToF32); break;
    case DType::kF16: widen(F16ToF32); break;
    default:
      return Errorf("tensor '{}' is {}; LoRA weights must be F32, BF16 or F16", t.name,
                    DTypeName(t.dtype));
  }
  return v;
}

// "base_model.model.<module>.lora_A.weight" -> module and 'A'; anything else is an error
// that names the tensor.
struct TensorRole {
  std::string module;
  char matrix;  // 'A' or 'B'
};
Result<TensorRole> RoleOf(const std::string& name, const std::string& path) {
  constexpr std::string_view kPrefix = "base_model.model.";
  if (name.find("lora_embedding_") != std::string::npos || name.find("embed_tokens") != std::string::npos)
    return Errorf("{}: tensor '{}': LoRA on embeddings is not supported", path, name);
  if (name.find("lora_magnitude_vector") != std::string::npos)
    return Errorf("{}: tensor '{}' is DoRA's magnitude; DoRA adapters are not supported", path, name);
  for (const char matrix : {'A', 'B'}) {
    const std::string suffix = fmt::format(".lora_{}.weight", matrix);
    if (name.starts_with(kPrefix) && name.ends_with(suffix) && name.size() > kPrefix.size() + suffix.size())
      return TensorRole{name.substr(kPrefix.size(), name.size() - kPrefix.size() - suffix.size()), matrix};
  }
  return Errorf("{}: tensor '{}' is not a PEFT LoRA tensor "
                "(base_model.model.<module>.lora_A.weight or .lora_B.weight)", path, name);
}

Status CheckShape(const TensorView& t, const std::vector<int64_t>& want, const std::string& path,
                  const std::string& why) {
  if (t.shape == want) return {};
  return Errorf("{}: tensor '{}' is {}, the model needs {} ({})", path, t.name,
                ShapeString(t.shape), ShapeString(want), why);
}

Result<LoraModule> ReadModule(const std::string& module, const TensorView& a, const TensorView& b,
                              const Target& target, const LoraConfig& config,
                              const std::string& path) {
  LoraModule m;
  m.name = module;
  m.rank = config.RankOf(module);
  m.in = target.in;
  m.out = target.out;
  m.scaling = config.ScalingOf(module);
  const std::string rank_why = fmt::format("r = {} for {}", m.rank, module);
  OKO_RETURN_IF_ERROR(CheckShape(a, {m.rank, m.in}, path,
                                 fmt::format("{}, in_features {}", rank_why, m.in)));
  OKO_RETURN_IF_ERROR(CheckShape(b, {m.out, m.rank}, path,
                                 fmt::format("out_features {}, {}", m.out, rank_why)));
  auto a32 = ToF32(a), b32 = ToF32(b);
  if (!a32.ok()) return a32.status().WithContext(path);
  if (!b32.ok()) return b32.status().WithContext(path);
  m.a = std::move(a32).value();
  m.b = std::move(b32).value();
  for (const std::vector<float>* v : {&m.a, &m.b})
    for (float x : *v)
      if (!std::isfinite(x))
        return Errorf("{}: {} of {} holds a value that is not finite", path,
                      v == &m.a ? "lora_A" : "lora_B", module);
  return m;
}

}  // namespace

int64_t LoraConfig::RankOf(const std::string& module) const {
  return Lookup(rank_pattern, module).value_or(r);
}

double LoraConfig::AlphaOf(const std::string& module) const {
  return Lookup(alpha_pattern, module).value_or(alpha);
}

double LoraConfig::ScalingOf(const std::string& module) const {
  const double rank = static_cast<double>(RankOf(module));
  return AlphaOf(module) / (use_rslora ? std::sqrt(rank) : rank);
}

Result<LoraConfig> ParseLoraConfig(std::string_view text, const std::string& path) {
  OKO_ASSIGN_OR_RETURN(json j, ParseJsonText(text, path));
  if (!j.is_object()) return Errorf("{}: must be a JSON object", path);
  OKO_RETURN_IF_ERROR(RefuseUnsupported(j, path));
  JsonFields f(j, path);
  LoraConfig c;
  OKO_RETURN_IF_ERROR(f.Int("r", &c.r, true, 1, kMaxLoraRank));
  c.alpha = static_cast<double>(c.r);  // PEFT's default lora_alpha is 8 but it always saves it
  OKO_RETURN_IF_ERROR(f.Double("lora_alpha", &c.alpha));
  if (!(c.alpha > 0) || !std::isfinite(c.alpha))
    return Errorf("{}: 'lora_alpha' must be a positive number", path);
  OKO_RETURN_IF_ERROR(f.Bool("use_rslora", &c.use_rslora));
  OKO_RETURN_IF_ERROR(ParsePattern(f, "rank_pattern", &c.rank_pattern, path));
  OKO_RETURN_IF_ERROR(ParsePattern(f, "alpha_pattern", &c.alpha_pattern, path));
  for (const auto& [key, rank] : c.rank_pattern)
    if (rank > kMaxLoraRank)
      return Errorf("{}: 'rank_pattern.{}' is {}, over oko's limit of {}", path, key, rank, kMaxLoraRank);
  if (const json* layers = f.Get("layers_to_transform")) {
    std::vector<int64_t> list;
    if (layers->is_number_integer()) list.push_back(layers->get<int64_t>());
    else if (layers->is_array())
      for (const json& l : *layers) {
        if (!l.is_number_integer())
          return Errorf("{}: 'layers_to_transform' must hold layer numbers, got {}", path, l.dump());
        list.push_back(l.get<int64_t>());
      }
    else
      return Errorf("{}: 'layers_to_transform' must be a layer number or a list of them", path);
    c.layers_to_transform = std::move(list);
  }
  return c;
}

Result<LoraAdapter> LoadLoraAdapter(const std::string& dir, const ModelConfig& model) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
  const std::string weights_path = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!fs::is_directory(dir))
    return Errorf("{}: not a folder (a LoRA adapter is a folder with adapter_config.json and "
                  "adapter_model.safetensors)", dir);
  if (!fs::exists(weights_path) && fs::exists(fs::path(dir) / "adapter_model.bin"))
    return Errorf("{}: holds adapter_model.bin (pickled PyTorch), which oko does not read; "
                  "convert it to safetensors (PEFT: save_pretrained(..., "
                  "safe_serialization=True))", dir);
  OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path, kMaxConfigJsonBytes));
  OKO_ASSIGN_OR_RETURN(LoraConfig config, ParseLoraConfig(text, config_path));
  OKO_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(weights_path));
  std::string name = fs::path(dir).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(dir).lexically_normal().parent_path().filename().string();
  OKO_ASSIGN_OR_RETURN(std::vector<LoraModule> modules,
                       ReadLoraModules(config, file->tensors(), model, weights_path));
  return LoraAdapter{dir, name, std::move(modules)};
}

Result<std::vector<LoraModule>> ReadLoraModules(const LoraConfig& config,
                                                const std::vector<TensorView>& tensors,
                                                const ModelConfig& model, const std::string& path) {
  // Pair each module's A and B.
  std::map<std::string, std::pair<const TensorView*, const TensorView*>> pairs;
  for (const TensorView& t : tensors) {
    OKO_ASSIGN_OR_RETURN(TensorRole role, RoleOf(t.name, path));
    auto& [a, b] = pairs[role.module];
    (role.matrix == 'A' ? a : b) = &t;
  }
  if (pairs.empty()) return Errorf("{}: holds no LoRA tensors", path);

  const std::map<std::string, Target> targets = Targets(model);
  std::vector<LoraModule> modules;
  for (const auto& [module, ab] : pairs) {
    const auto target = targets.find(module);
    if (target == targets.end())
      return Errorf("{}: '{}' is not a linear layer of this model (q/k/v/o_proj, gate/up/"
                    "down_proj of model.layers.0-{}, or lm_head)", path, module,
                    model.num_layers - 1);
    if (ab.first == nullptr || ab.second == nullptr)
      return Errorf("{}: '{}' has lora_{} but no lora_{}", path, module,
                    ab.first ? 'A' : 'B', ab.first ? 'B' : 'A');
    const int64_t layer = LayerOf(module);
    if (layer >= 0 && config.layers_to_transform &&
        std::ranges::find(*config.layers_to_transform, layer) == config.layers_to_transform->end())
      return Errorf("{}: '{}' is in layer {}, which the config's 'layers_to_transform' leaves out",
                    path, module, layer);
    OKO_ASSIGN_OR_RETURN(LoraModule m, ReadModule(module, *ab.first, *ab.second, target->second,
                                                 config, path));
    modules.push_back(std::move(m));
  }
  return modules;
}

Result<LoraSpec> ParseLoraSpec(std::string_view arg) {
  LoraSpec spec{std::string(arg), 1.0};
  const size_t colon = arg.rfind(':');
  if (colon != std::string_view::npos) {
    const std::string_view tail = arg.substr(colon + 1);
    double scale = 0;
    const auto [end, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), scale);
    if (!tail.empty() && ec == std::errc() && end == tail.data() + tail.size()) {
      if (!std::isfinite(scale))
        return Errorf("the scale after ':' must be a finite number");
      spec = {std::string(arg.substr(0, colon)), scale};
    }
  }
  if (spec.dir.empty()) return Errorf("no adapter folder before the scale");
  return spec;
}

}  // namespace oko
