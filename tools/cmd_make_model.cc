// oko make-model: a Hugging Face folder with random weights of a real model's shapes, for
// benchmarks (speed does not depend on the values). Deterministic for a seed.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/limits.h"
#include "common/mapped_file.h"
#include "engine/gguf_export.h"
#include "loaders/hf_config.h"
#include "loaders/json_util.h"
#include "loaders/safetensors_writer.h"
#include "tools/command.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"
#include "loaders/tokenizer.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

struct Preset {
  const char* name;
  int64_t hidden, intermediate, layers, heads, kv_heads, head_dim;
  bool tied;  // tie_word_embeddings
};

// Dims copied from the real Qwen3 configs (and shared/models/tiny-qwen3).
constexpr Preset kPresets[] = {
    {"qwen3-0.6b", 1024, 3072, 28, 16, 8, 128, true},  {"qwen3-1.7b", 2048, 6144, 28, 16, 8, 128, true},
    {"qwen3-4b", 2560, 9728, 36, 32, 8, 128, true},    {"qwen3-8b", 4096, 12288, 36, 32, 8, 128, false},
    {"qwen3-14b", 5120, 17408, 40, 40, 8, 128, false}, {"qwen3-32b", 5120, 25600, 64, 64, 8, 128, false},
    {"tiny-qwen3", 64, 192, 4, 4, 2, 32, true},
};

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.emplace_back(p.name);
  return names;
}

ojson PresetConfig(const Preset& p) {
  return ojson{{"architectures", {"Qwen3ForCausalLM"}},
               {"attention_bias", false},
               {"attention_dropout", 0.0},
               {"bos_token_id", 151643},
               {"eos_token_id", 151645},
               {"head_dim", p.head_dim},
               {"hidden_act", "silu"},
               {"hidden_size", p.hidden},
               {"initializer_range", 0.02},
               {"intermediate_size", p.intermediate},
               {"max_position_embeddings", 40960},
               {"max_window_layers", p.layers},
               {"model_type", "qwen3"},
               {"num_attention_heads", p.heads},
               {"num_hidden_layers", p.layers},
               {"num_key_value_heads", p.kv_heads},
               {"rms_norm_eps", 1e-06},
               {"rope_scaling", nullptr},
               {"rope_theta", 1000000},
               {"sliding_window", nullptr},
               {"tie_word_embeddings", p.tied},
               {"torch_dtype", "bfloat16"},
               {"use_cache", true},
               {"use_sliding_window", false},
               {"vocab_size", 151936}};
}

ojson PresetGenerationConfig() {
  return ojson{{"bos_token_id", 151643}, {"do_sample", true},
               {"eos_token_id", {151645, 151643}}, {"pad_token_id", 151643},
               {"temperature", 0.6}, {"top_k", 20}, {"top_p", 0.95}};
}

// splitmix64: tiny, fast, and the same stream on every machine.
struct SplitMix64 {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float NextSigned() { return static_cast<float>(static_cast<int64_t>(Next()) >> 40) * 0x1p-23f; }
};

uint64_t HashName(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

void StoreAs(DType dtype, float v, std::byte* dst) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, &v, 4);
  } else {
    const uint16_t h = dtype == DType::kBF16 ? F32ToBf16(v) : F32ToF16(v);
    std::memcpy(dst, &h, 2);
  }
}

// Norm weights are 1 (as initialised by HF), biases 0, matrices uniform with std 0.02.
// Values [begin, begin + count) of the tensor's stream into dst (in `dtype`).
class RandomValues {
 public:
  RandomValues(const std::string& name, uint64_t seed)
      : rng_{seed ^ HashName(name)},
        is_norm_(name.find("norm") != std::string::npos),
        is_bias_(name.ends_with(".bias")) {}
  // The next `count` values (the stream continues across calls).
  void Next(DType dtype, int64_t count, std::byte* dst) {
    const float scale = 0.02f * 1.7320508f;  // uniform(-a, a) has std a / sqrt(3)
    const size_t esize = DTypeSize(dtype);
    for (int64_t i = 0; i < count; ++i) {
      const float v = is_norm_ ? 1.0f : is_bias_ ? 0.0f : scale * rng_.NextSigned();
      StoreAs(dtype, v, dst + i * esize);
    }
  }

 private:
  SplitMix64 rng_;
  bool is_norm_, is_bias_;
};

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TensorToWrite RandomTensor(const ExpectedTensor& e, DType dtype, uint64_t seed) {
  TensorToWrite t{e.name, dtype, e.shape, nullptr};
  t.write = [=](AtomicFile& f) -> Status {
    RandomValues values(e.name, seed);
    const int64_t n = Elements(e.shape);
    const size_t esize = DTypeSize(dtype);
    std::vector<std::byte> buf(size_t{1} << 20);
    const int64_t per_chunk = static_cast<int64_t>(buf.size() / esize);
    for (int64_t begin = 0; begin < n; begin += per_chunk) {
      const int64_t count = std::min(per_chunk, n - begin);
      values.Next(dtype, count, buf.data());
      OKO_RETURN_IF_ERROR(f.Write(buf.data(), count * esize));
    }
    return {};
  };
  return t;
}

// The same values in memory, for make-model --quant ([1, n] for a vector).
OwnedWeight RandomWeight(const ExpectedTensor& e, DType dtype, uint64_t seed) {
  const size_t rows = e.shape.size() == 2 ? static_cast<size_t>(e.shape[0]) : 1;
  const size_t cols = static_cast<size_t>(e.shape.back()), bytes = rows * cols * DTypeSize(dtype);
  auto storage = std::shared_ptr<std::byte[]>(new std::byte[bytes]);
  RandomValues(e.name, seed).Next(dtype, static_cast<int64_t>(rows * cols), storage.get());
  return {WeightView{*QuantTypeFromDType(dtype), storage.get(), rows, cols, bytes}, storage};
}

Status CopyFile(const fs::path& from, const fs::path& to) {
  OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(from.string()));
  return WriteFileAtomically(to.string(), text);
}

struct MakeModelOptions {
  std::string preset, config_path, tokenizer_dir, out, dtype = "bf16";
  std::string quant;  // a GGUF file in this type instead of a folder
  uint64_t seed = 0;
  int64_t lora_rank = 0;  // also write OUT/lora-rR: an adapter on all seven projections
  bool force = false;
};

// A PEFT adapter folder of rank r on q/k/v/o_proj and gate/up/down_proj of every layer,
// with random A and B (PEFT starts B at zero; a trained one is not): for `oko bench --lora`.
Status WriteRandomLora(const fs::path& dir, const ModelConfig& c, int64_t r, DType dtype, uint64_t seed) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return RuntimeErrorf("{}: cannot create the folder: {}", dir.string(), ec.message());
  const int64_t H = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
  const std::pair<const char*, std::pair<int64_t, int64_t>> modules[] = {  // in, out
      {"self_attn.q_proj", {H, Q}}, {"self_attn.k_proj", {H, KV}}, {"self_attn.v_proj", {H, KV}},
      {"self_attn.o_proj", {Q, H}}, {"mlp.gate_proj", {H, I}},     {"mlp.up_proj", {H, I}},
      {"mlp.down_proj", {I, H}}};
  std::vector<TensorToWrite> tensors;
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (const auto& [module, in_out] : modules) {
      const std::string name = fmt::format("base_model.model.model.layers.{}.{}", l, module);
      tensors.push_back(RandomTensor({name + ".lora_A.weight", {r, in_out.first}}, dtype, seed));
      tensors.push_back(RandomTensor({name + ".lora_B.weight", {in_out.second, r}}, dtype, seed));
    }
  OKO_RETURN_IF_ERROR(WriteSafetensors((dir / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}}));
  const ojson config{{"peft_type", "LORA"}, {"r", r}, {"lora_alpha", 2 * r}, {"use_rslora", false},
                     {"bias", "none"}, {"use_dora", false}, {"fan_in_fan_out", false},
                     {"target_modules", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}},
                     {"task_type", "CAUSAL_LM"}};
  return WriteFileAtomically((dir / "adapter_config.json").string(), config.dump(2) + "\n");
}

// Nothing a user owns is overwritten without --force: --out must be new or an empty folder
// (with --quant: a new .gguf file).
Status CheckOut(const MakeModelOptions& o) {
  if (!o.quant.empty()) {
    OKO_RETURN_IF_ERROR(CheckGgufExportType(o.quant));
    if (o.lora_rank > 0)
      return Status::Error("--lora-rank writes an adapter folder inside the model's folder: not with --quant",
                           ExitCode::kUsage);
    return CheckGgufOutFile(o.out, o.force);
  }
  if (o.out.empty() || o.out == "-") return Status::Error("--out must name a folder", ExitCode::kUsage);
  std::error_code ec;
  if (!fs::exists(o.out, ec) || o.force) return {};
  if (!fs::is_directory(o.out, ec)) return Errorf("--out {}: exists and is not a folder", o.out);
  if (!fs::is_empty(o.out, ec))
    return Errorf("--out {}: the folder is not empty; make-model would overwrite its files (--force to do it)", o.out);
  return {};
}

// The tokenizer: --tokenizer, else the one beside --config, else the Qwen3 tokenizer of
// the presets. Its ids must fit the config's vocab_size, or every prompt would fail.
Result<std::string> TokenizerDir(const MakeModelOptions& o, const ModelConfig& c) {
  std::string dir = o.tokenizer_dir;
  if (dir.empty() && !o.config_path.empty()) {
    const fs::path parent = fs::path(o.config_path).parent_path();
    const std::string beside = parent.empty() ? "." : parent.string();
    if (PathExists(beside + "/tokenizer.json")) dir = beside;
  }
  if (dir.empty()) dir = SharedDir() + "/models/qwen3-tokenizer";
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
    if (!PathExists((fs::path(dir) / name).string()))
      return Errorf("{}: missing {} (pass --tokenizer DIR)", dir, name);
  OKO_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(dir));
  if (tokenizer->vocab_size() > c.vocab_size)
    return Errorf("the tokenizer in {} has {} tokens, more than vocab_size {} of the config (pass --tokenizer DIR "
                  "with a matching tokenizer)",
                  dir, tokenizer->vocab_size(), c.vocab_size);
  return dir;
}

int64_t Parameters(const ModelConfig& c) {
  int64_t params = 0;
  for (const auto& e : ExpectedTensors(c))
    if (!e.optional) params += Elements(e.shape);
  return params;
}

// --quant: a GGUF file, each tensor generated (the values the folder would hold), quantized
// and written in turn: memory holds one tensor, not the model.
Status WriteQuantizedGguf(const MakeModelOptions& o, const ModelConfig& c, const std::string& tokenizer_dir,
                          DType dtype) {
  GeneratedModel m{c, fs::path(o.out).stem().string(), tokenizer_dir,
                   [&](const ExpectedTensor& e) -> Result<OwnedWeight> { return RandomWeight(e, dtype, o.seed); }};
  GgufExportOptions e{"", o.quant, o.out, 0, QuantProgressLine(o.quant)};
  OKO_ASSIGN_OR_RETURN(GgufExportSummary s, ExportGeneratedGguf(m, e));
  for (const std::string& note : s.fallbacks) fmt::print(stderr, "fell back: {}\n", note);
  DropFromPageCache(o.out);  // so that benchmarks read it through huge pages
  fmt::print("wrote {} ({} {}, {:.1f} M parameters, {} from {} values, {:.2f} GB)\n", o.out, ArchName(c.arch),
             o.preset.empty() ? o.config_path : o.preset, Parameters(c) / 1e6, o.quant, o.dtype, s.bytes / 1e9);
  return {};
}

Status RunMakeModel(const MakeModelOptions& o) {
  ojson config, generation;
  if (!o.preset.empty()) {
    const Preset* p = nullptr;
    for (const auto& q : kPresets)
      if (o.preset == q.name) p = &q;
    if (p == nullptr) return Errorf("unknown preset '{}'", o.preset);
    config = PresetConfig(*p);
    generation = PresetGenerationConfig();
  } else {
    OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(o.config_path, kMaxConfigJsonBytes));
    OKO_ASSIGN_OR_RETURN(config, ParseJsonText<ojson>(text, o.config_path));
    if (!config.is_object()) return Errorf("{}: not a JSON object", o.config_path);
  }
  const DType dtype = o.dtype == "f32" ? DType::kF32 : o.dtype == "f16" ? DType::kF16 : DType::kBF16;
  config["torch_dtype"] = o.dtype == "f32" ? "float32" : o.dtype == "f16" ? "float16" : "bfloat16";
  OKO_ASSIGN_OR_RETURN(ModelConfig c, ParseModelConfig(config.dump(), o.config_path.empty()
                                                                          ? "preset " + o.preset
                                                                          : o.config_path));
  OKO_ASSIGN_OR_RETURN(const std::string tokenizer_dir, TokenizerDir(o, c));
  if (!o.quant.empty()) return WriteQuantizedGguf(o, c, tokenizer_dir, dtype);

  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) return RuntimeErrorf("{}: cannot create the folder: {}", o.out, ec.message());
  std::vector<TensorToWrite> tensors;
  for (const auto& e : ExpectedTensors(c))
    if (!e.optional) tensors.push_back(RandomTensor(e, dtype, o.seed));
  const fs::path out(o.out);
  const std::string weights = (out / "model.safetensors").string();
  OKO_RETURN_IF_ERROR(WriteSafetensors(weights, tensors, {{"format", "pt"}}));
  DropFromPageCache(weights);  // so that benchmarks read it through huge pages
  OKO_RETURN_IF_ERROR(WriteFileAtomically((out / "config.json").string(), config.dump(2) + "\n"));
  if (!generation.is_null())
    OKO_RETURN_IF_ERROR(WriteFileAtomically((out / "generation_config.json").string(),
                                            generation.dump(2) + "\n"));
  OKO_ASSIGN_OR_RETURN(const std::string tokenizer_json, ResolveTokenizerPath(tokenizer_dir));
  OKO_RETURN_IF_ERROR(CopyFile(tokenizer_json, out / "tokenizer.json"));  // the file, not a link to it
  OKO_RETURN_IF_ERROR(CopyFile(fs::path(tokenizer_dir) / "tokenizer_config.json", out / "tokenizer_config.json"));
  fmt::print("wrote {} ({} {}, {:.1f} M parameters, {})\n", o.out, ArchName(c.arch),
             o.preset.empty() ? o.config_path : o.preset, Parameters(c) / 1e6, o.dtype);
  if (o.lora_rank > 0) {
    const fs::path lora = out / fmt::format("lora-r{}", o.lora_rank);
    OKO_RETURN_IF_ERROR(WriteRandomLora(lora, c, o.lora_rank, dtype, o.seed));
    fmt::print("wrote {} (LoRA adapter, r {}, 7 projections of {} layers)\n", lora.string(),
               o.lora_rank, c.num_layers);
  }
  return {};
}

}  // namespace

Subcommand AddMakeModelCommand(CLI::App& root) {
  auto o = std::make_shared<MakeModelOptions>();
  CLI::App* app = root.add_subcommand(
      "make-model", "Write a model folder with random weights of a real model's shapes");
  auto* preset = app->add_option("--preset", o->preset,
                                 fmt::format("a real model's shapes: {}", fmt::join(PresetNames(), ", ")))
                     ->check(CLI::IsMember(PresetNames()));
  auto* config = AddInputFileFlag(app, "--config", &o->config_path, /*allow_stdin=*/false,
                                  "a config.json to copy the dims from");
  preset->excludes(config);
  app->add_option("--tokenizer", o->tokenizer_dir,
                  "folder with tokenizer.json and tokenizer_config.json (default: the one beside --config, "
                  "else $OKO_SHARED/models/qwen3-tokenizer)");
  app->add_option("--out", o->out, "output folder: new or empty unless --force (with --quant: a new FILE.gguf)")
      ->required();
  app->add_flag("--force", o->force, "write into a non-empty --out, overwriting its model files");
  app->add_option("--dtype", o->dtype, "weight dtype: bf16, f16 or f32; with --quant, of the values quantized "
                                       "(default: bf16)")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}));
  app->add_option("--quant", o->quant,
                  "write a GGUF file in this type instead of a folder, one tensor at a time (for shapes whose "
                  "bf16 weights do not fit in memory): q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, "
                  "q5_k_m, f32, f16, bf16 (default: none, a folder)");
  AddUint64Flag(app, "--seed", &o->seed, 0, "random seed (default: 0)");
  AddIntFlag(app, "--lora-rank", &o->lora_rank, {0, kMaxLoraRank},
             "also write OUT/lora-rR, a PEFT adapter of rank R on the seven projections of every "
             "layer, for oko bench --lora (default: 0, none)");
  AddExamples(app, {"oko make-model --preset qwen3-0.6b --out ../models/random-0.6b",
                    "oko make-model --config ../shared/models/stories260k/config.json --out /tmp/st --dtype f32",
                    "oko make-model --preset qwen3-0.6b --lora-rank 16 --out /tmp/q06  # + /tmp/q06/lora-r16",
                    "oko make-model --preset qwen3-14b --quant q4_k_m --out /tmp/qwen3-14b-q4_k_m.gguf"});
  return {app, [o, preset, config]() -> Status {
            if (preset->count() == 0 && config->count() == 0)
              return Status::Error("give --preset or --config", ExitCode::kUsage);
            OKO_RETURN_IF_ERROR(CheckOut(*o));
            return RunMakeModel(*o);
          }};
}

}  // namespace oko
