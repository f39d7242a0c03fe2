#include "loaders/gguf_model.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <cmath>
#include <cstring>
#include <numbers>
#include <set>

namespace oko {
namespace {

using json = nlohmann::json;

struct LayerPart {
  std::string_view gguf;  // after "blk.N."
  LayerWeight weight;
};
constexpr LayerPart kLayerParts[] = {
    {"attn_norm.weight", LayerWeight::kInputNorm},   {"ffn_norm.weight", LayerWeight::kPostAttentionNorm},
    {"attn_q.weight", LayerWeight::kQProj},          {"attn_k.weight", LayerWeight::kKProj},
    {"attn_v.weight", LayerWeight::kVProj},          {"attn_output.weight", LayerWeight::kOProj},
    {"attn_q.bias", LayerWeight::kQBias},            {"attn_k.bias", LayerWeight::kKBias},
    {"attn_v.bias", LayerWeight::kVBias},            {"attn_output.bias", LayerWeight::kOBias},
    {"attn_q_norm.weight", LayerWeight::kQNorm},     {"attn_k_norm.weight", LayerWeight::kKNorm},
    {"ffn_gate.weight", LayerWeight::kGateProj},     {"ffn_up.weight", LayerWeight::kUpProj},
    {"ffn_down.weight", LayerWeight::kDownProj},
};

// The layer number of "blk.N." names: digits, no leading zero, below kMaxLayers.
std::optional<int64_t> ParseLayer(std::string_view digits) {
  if (digits.empty() || digits.size() > 4 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  int64_t n = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + (ch - '0');
  }
  return n < kMaxLayers ? std::optional<int64_t>(n) : std::nullopt;
}

// GGUF keys of `<arch>.*` copied into a config.json object under their Hugging Face
// names; remembers which is which, so that ParseModelConfig's messages can name the keys
// of the file.
class ConfigBuilder {
 public:
  ConfigBuilder(const GgufFile& f, std::string arch) : f_(f), arch_(std::move(arch)) {}

  Status Uint(std::string_view key, const char* hf_key, bool required = false) {
    const std::string k = Key(key);
    if (f_.Find(k) == nullptr && !required) return {};
    OKO_ASSIGN_OR_RETURN(uint64_t v, f_.Uint(k));
    config_[hf_key] = v;
    names_.emplace_back(hf_key, k);
    return {};
  }
  Status Float(std::string_view key, const char* hf_key) {
    const std::string k = Key(key);
    if (f_.Find(k) == nullptr) return {};
    OKO_ASSIGN_OR_RETURN(double v, f_.Float(k));
    config_[hf_key] = v;
    names_.emplace_back(hf_key, k);
    return {};
  }
  std::string Key(std::string_view key) const { return arch_ + "." + std::string(key); }
  json& config() { return config_; }

  // `message` with each config.json name it mentions (as a whole word) replaced by the
  // GGUF key.
  std::string InGgufTerms(std::string message) const {
    const auto word_char = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
    for (const auto& [hf, gguf] : names_) {
      for (size_t at = message.find(hf); at != std::string::npos; at = message.find(hf, at + 1)) {
        const size_t end = at + hf.size();
        if ((at > 0 && word_char(message[at - 1])) || (end < message.size() && word_char(message[end]))) continue;
        message.replace(at, hf.size(), gguf);
        at += gguf.size() - 1;
      }
    }
    return message;
  }

 private:
  const GgufFile& f_;
  std::string arch_;
  json config_ = json::object();
  std::vector<std::pair<std::string, std::string>> names_;  // config.json name, GGUF key
};

// rope.scaling.* as config.json's rope_scaling ("none" and absence: no scaling).
Status AddRopeScaling(const GgufFile& f, ConfigBuilder& b) {
  const std::string type_key = b.Key("rope.scaling.type");
  if (f.Find(type_key) == nullptr) return {};
  OKO_ASSIGN_OR_RETURN(std::string type, f.String(type_key));
  if (type == "none") return {};
  json scaling = {{"rope_type", type}};
  const std::string factor = b.Key("rope.scaling.factor"), original = b.Key("rope.scaling.original_context_length");
  if (f.Find(factor) != nullptr) {
    OKO_ASSIGN_OR_RETURN(double v, f.Float(factor));
    scaling["factor"] = v;
  }
  if (f.Find(original) != nullptr) {
    OKO_ASSIGN_OR_RETURN(uint64_t v, f.Uint(original));
    scaling["original_max_position_embeddings"] = v;
  }
  b.config()["rope_scaling"] = scaling;
  return {};
}

// A key that must equal head_dim when present: oko has no partial RoPE and no value
// heads of another size.
Status CheckEqualsHeadDim(const GgufFile& f, const std::string& key, const ModelConfig& c) {
  if (f.Find(key) == nullptr) return {};
  OKO_ASSIGN_OR_RETURN(uint64_t v, f.Uint(key));
  if (v != static_cast<uint64_t>(c.head_dim))
    return Errorf("{}: '{}' is {}, but oko needs it equal to the head size {}", f.path(), key, v, c.head_dim);
  return {};
}

// Control tokens that end a turn or a text by their spelling, as llama.cpp finds them: a
// GGUF holds one eos id where generation_config.json lists several (Qwen3: <|im_end|> and
// <|endoftext|>).
std::vector<uint64_t> EndOfTurnTokens(const GgufFile& f) {
  static constexpr std::string_view kEndOfTurn[] = {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>",
                                                    "<|end_of_text|>"};
  const GgufValue* tokens = f.Find("tokenizer.ggml.tokens");
  const GgufValue* types = f.Find("tokenizer.ggml.token_type");
  std::vector<uint64_t> ids;
  if (tokens == nullptr || !tokens->is_array() || tokens->element_type != GgufType::kString) return ids;
  const bool typed = types != nullptr && types->is_array() && types->element_type == GgufType::kInt32 &&
                     types->array().size() == tokens->array().size();
  for (size_t id = 0; id < tokens->array().size(); ++id) {
    const std::string& text = tokens->array()[id].str();
    if (std::find(std::begin(kEndOfTurn), std::end(kEndOfTurn), text) == std::end(kEndOfTurn)) continue;
    if (!typed || std::get<int64_t>(types->array()[id].value) == 3) ids.push_back(id);  // CONTROL
  }
  return ids;
}

Status AddTokenIds(const GgufFile& f, json& config) {
  if (f.Find("tokenizer.ggml.bos_token_id") != nullptr) {
    OKO_ASSIGN_OR_RETURN(uint64_t bos, f.Uint("tokenizer.ggml.bos_token_id"));
    config["bos_token_id"] = bos;
  }
  json eos = json::array();
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    if (f.Find(key) == nullptr) continue;
    OKO_ASSIGN_OR_RETURN(uint64_t id, f.Uint(key));
    eos.push_back(id);
  }
  for (uint64_t id : EndOfTurnTokens(f))
    if (std::find(eos.begin(), eos.end(), json(id)) == eos.end()) eos.push_back(id);
  if (!eos.empty()) config["eos_token_id"] = eos;
  return {};
}

// Llama 3.1+ files carry their RoPE scaling as a factor per frequency, not as keys.
Status AddRopeFreqFactors(const GgufFile& f, ModelConfig& c) {
  const GgufTensor* t = f.FindTensor(kRopeFreqsTensor);
  if (t == nullptr) return {};
  const uint64_t half = static_cast<uint64_t>(c.head_dim / 2);
  if (t->ggml_type != 0 || t->ne.size() != 1 || t->ne[0] != half)
    return Errorf("{}: tensor '{}' must be F32 of {} values (head size / 2), got {} {}", f.path(), kRopeFreqsTensor,
                  half, GgmlTypeSizeOf(t->ggml_type)->name, ShapeString(t->shape()));
  if (!c.rope_scaling.type.empty())
    return Errorf("{}: tensor '{}' and rope.scaling.type '{}' both scale RoPE", f.path(), kRopeFreqsTensor,
                  c.rope_scaling.type);
  std::vector<float> factors(half);
  std::memcpy(factors.data(), t->data, half * sizeof(float));
  for (float x : factors)
    if (!(x > 0) || !std::isfinite(x))
      return Errorf("{}: tensor '{}' holds {}: factors must be positive and finite", f.path(), kRopeFreqsTensor, x);
  c.rope_scaling.type = "rope_freqs";
  c.rope_scaling.factor = *std::max_element(factors.begin(), factors.end());
  c.rope_scaling.freq_factors = std::move(factors);
  return {};
}

}  // namespace

std::optional<std::string> HfTensorName(std::string_view name) {
  if (name == "token_embd.weight") return "model.embed_tokens.weight";
  if (name == "output_norm.weight") return "model.norm.weight";
  if (name == "output.weight") return "lm_head.weight";
  constexpr std::string_view kBlock = "blk.";
  if (name.substr(0, kBlock.size()) != kBlock) return std::nullopt;
  const size_t dot = name.find('.', kBlock.size());
  if (dot == std::string_view::npos) return std::nullopt;
  const auto layer = ParseLayer(name.substr(kBlock.size(), dot - kBlock.size()));
  if (!layer) return std::nullopt;
  for (const LayerPart& p : kLayerParts)
    if (name.substr(dot + 1) == p.gguf) return LayerTensor(*layer, p.weight);
  return std::nullopt;
}

std::optional<std::string> GgufTensorName(std::string_view hf_name) {
  if (hf_name == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf_name == "model.norm.weight") return "output_norm.weight";
  if (hf_name == "lm_head.weight") return "output.weight";
  constexpr std::string_view kLayers = "model.layers.";
  if (!hf_name.starts_with(kLayers)) return std::nullopt;
  const size_t dot = hf_name.find('.', kLayers.size());
  if (dot == std::string_view::npos) return std::nullopt;
  const auto layer = ParseLayer(hf_name.substr(kLayers.size(), dot - kLayers.size()));
  if (!layer) return std::nullopt;
  for (const LayerPart& p : kLayerParts)
    if (hf_name == LayerTensor(*layer, p.weight)) return fmt::format("blk.{}.{}", *layer, p.gguf);
  return std::nullopt;
}

Result<GgufMetadata> GgufArchMetadata(const ModelConfig& c) {
  const std::string arch(ArchName(c.arch));
  GgufMetadata md;
  const auto u32 = [&](std::string_view key, int64_t v) {
    md.emplace_back(fmt::format("{}.{}", arch, key), GgufUint32(static_cast<uint32_t>(v)));
  };
  const auto f32 = [&](std::string_view key, double v) {
    md.emplace_back(fmt::format("{}.{}", arch, key), GgufFloat32(static_cast<float>(v)));
  };
  md.emplace_back("general.architecture", GgufString(arch));
  if (c.max_position_embeddings > 0) u32("context_length", c.max_position_embeddings);
  u32("embedding_length", c.hidden_size);
  u32("block_count", c.num_layers);
  u32("feed_forward_length", c.intermediate_size);
  u32("attention.head_count", c.num_heads);
  u32("attention.head_count_kv", c.num_kv_heads);
  u32("attention.key_length", c.head_dim);
  u32("attention.value_length", c.head_dim);
  u32("rope.dimension_count", c.head_dim);
  f32("rope.freq_base", c.rope_theta);
  f32("attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  // As llama.cpp's converter: only llama states it (the reader takes the embedding's rows).
  if (c.arch == Arch::kLlama) u32("vocab_size", c.vocab_size);
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "linear") {
    md.emplace_back(fmt::format("{}.rope.scaling.type", arch), GgufString(rs.type));
    f32("rope.scaling.factor", rs.factor);
  } else if (!rs.type.empty() && rs.type != "llama3" && rs.type != "rope_freqs") {
    return Errorf("RoPE scaling '{}' cannot be written to GGUF (linear and llama3 can)", rs.type);
  }
  return md;
}

Result<ModelConfig> GgufModelConfig(const GgufFile& f) {
  OKO_ASSIGN_OR_RETURN(std::string arch, f.String("general.architecture"));
  if (arch != "qwen3" && arch != "qwen2" && arch != "llama")
    return Errorf("{}: 'general.architecture' is '{}', not supported (supported: qwen3, qwen2, llama)", f.path(),
                  arch);
  ConfigBuilder b(f, arch);
  json& config = b.config();
  config["model_type"] = arch;
  OKO_RETURN_IF_ERROR(b.Uint("context_length", "max_position_embeddings"));
  OKO_RETURN_IF_ERROR(b.Uint("embedding_length", "hidden_size", true));
  OKO_RETURN_IF_ERROR(b.Uint("block_count", "num_hidden_layers", true));
  OKO_RETURN_IF_ERROR(b.Uint("feed_forward_length", "intermediate_size", true));
  OKO_RETURN_IF_ERROR(b.Uint("attention.head_count", "num_attention_heads", true));
  OKO_RETURN_IF_ERROR(b.Uint("attention.head_count_kv", "num_key_value_heads"));
  OKO_RETURN_IF_ERROR(b.Uint("attention.key_length", "head_dim"));
  OKO_RETURN_IF_ERROR(b.Float("attention.layer_norm_rms_epsilon", "rms_norm_eps"));
  OKO_RETURN_IF_ERROR(b.Float("rope.freq_base", "rope_theta"));
  OKO_RETURN_IF_ERROR(b.Uint("vocab_size", "vocab_size"));
  OKO_RETURN_IF_ERROR(AddRopeScaling(f, b));
  OKO_RETURN_IF_ERROR(AddTokenIds(f, config));
  // llama.cpp's converter leaves vocab_size out for most architectures: the embedding
  // table's rows are the vocabulary.
  const GgufTensor* embed = f.FindTensor("token_embd.weight");
  if (!config.contains("vocab_size")) {
    if (embed == nullptr || embed->ne.size() != 2)
      return Errorf("{}: no '{}' and no 2-D token_embd.weight to take the vocabulary size from", f.path(),
                    b.Key("vocab_size"));
    config["vocab_size"] = embed->ne[1];
  }
  config["tie_word_embeddings"] = f.FindTensor("output.weight") == nullptr;
  auto parsed = ParseModelConfig(config.dump(), f.path());
  if (!parsed.ok()) return Status::Error(b.InGgufTerms(parsed.status().message()));
  const ModelConfig& c = *parsed;
  OKO_RETURN_IF_ERROR(CheckEqualsHeadDim(f, b.Key("attention.value_length"), c));
  OKO_RETURN_IF_ERROR(CheckEqualsHeadDim(f, b.Key("rope.dimension_count"), c));
  OKO_RETURN_IF_ERROR(AddRopeFreqFactors(f, *parsed));
  return parsed;
}

std::vector<float> Llama3RopeFreqFactors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  const float old_context = static_cast<float>(s.original_max_position_embeddings);
  const float low_wavelen = old_context / static_cast<float>(s.low_freq_factor);
  const float high_wavelen = old_context / static_cast<float>(s.high_freq_factor);
  std::vector<float> factors;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    // The converter's arithmetic is float32 (torch), as is this.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    const float freq = static_cast<float>(1.0 / std::pow(c.rope_theta, static_cast<double>(exponent)));
    const float wavelen = 2 * std::numbers::pi_v<float> / freq;
    if (wavelen < high_wavelen) {
      factors.push_back(1);
    } else if (wavelen > low_wavelen) {
      factors.push_back(static_cast<float>(s.factor));
    } else {
      const float smooth = (old_context / wavelen - static_cast<float>(s.low_freq_factor)) /
                           static_cast<float>(s.high_freq_factor - s.low_freq_factor);
      factors.push_back(1 / ((1 - smooth) / static_cast<float>(s.factor) + smooth));
    }
  }
  return factors;
}

Result<ModelConfig> LoadGgufModelConfig(const std::string& path) {
  OKO_ASSIGN_OR_RETURN(auto f, GgufFile::Open(path));
  return GgufModelConfig(*f);
}

Result<std::map<std::string, const GgufTensor*>> GgufModelTensors(const ModelConfig& c, const GgufFile& f) {
  std::map<std::string, const GgufTensor*> by_hf;
  std::vector<std::string> missing, wrong, unknown;
  for (const GgufTensor& t : f.tensors()) {
    if (t.name == kRopeFreqsTensor) continue;  // in the config (GgufModelConfig)
    const auto hf = HfTensorName(t.name);
    if (hf) by_hf[*hf] = &t;
    else unknown.push_back(t.name);
  }
  std::set<std::string> expected;
  for (const ExpectedTensor& e : ExpectedTensors(c)) {
    expected.insert(e.name);
    auto it = by_hf.find(e.name);
    if (it == by_hf.end()) {
      if (!e.optional) missing.push_back(e.name);
      continue;
    }
    const GgufTensor& t = *it->second;
    const uint32_t type = t.ggml_type;
    // Kernels load whole f32 values and f16 scales; only a general.alignment of 1 or 2
    // (legal, but no writer we know makes it) can leave a tensor short of that.
    const uint64_t align = GgmlTypeSizeOf(type)->block == 1 ? GgmlTypeSizeOf(type)->block_bytes : 2;
    if (t.shape() != e.shape)
      wrong.push_back(fmt::format("'{}' has shape {}, expected {}", t.name, ShapeString(t.shape()), ShapeString(e.shape)));
    else if (reinterpret_cast<uintptr_t>(t.data) % align != 0)
      wrong.push_back(fmt::format("'{}' is not aligned to {} bytes (general.alignment {})", t.name, align,
                                  f.contents().alignment));
    else if (e.shape.size() == 1 && type != 0 && type != 1 && type != 30)  // F32, F16, BF16
      wrong.push_back(fmt::format("'{}' is {}, expected F32, F16 or BF16", t.name, GgmlTypeSizeOf(type)->name));
  }
  for (const auto& [hf, t] : by_hf)
    if (!expected.count(hf)) unknown.push_back(t->name);
  if (missing.empty() && wrong.empty() && unknown.empty()) return by_hf;
  std::string msg = fmt::format("{}: tensors do not match its metadata ({} {} layers):", f.path(), ArchName(c.arch),
                                c.num_layers);
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    msg += fmt::format("\n  {} ({}):", what, v.size());
    for (size_t i = 0; i < v.size() && i < 20; ++i) msg += "\n    " + v[i];
    if (v.size() > 20) msg += fmt::format("\n    ... and {} more", v.size() - 20);
  };
  list("missing (Hugging Face names)", missing);
  list("wrong shape or type", wrong);
  list("unknown to oko", unknown);
  return Status::Error(msg);
}

bool LlamaQkRowPermuted(const ModelConfig& c, const std::string& hf_name) {
  if (c.arch != Arch::kLlama) return false;
  for (int64_t l = 0; l < c.num_layers; ++l)
    if (hf_name == LayerTensor(l, LayerWeight::kQProj) || hf_name == LayerTensor(l, LayerWeight::kKProj))
      return true;
  return false;
}

}  // namespace oko
