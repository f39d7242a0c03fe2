#include "tools/engine_flags.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <new>
#include <random>

#include "engine/quant_plan.h"
#include "loaders/gguf.h"
#include "loaders/hf_config.h"
#include "ops/gemm_onednn.h"
#include "tools/flags.h"
#include "tools/resources.h"

namespace oko {

std::function<void(size_t, size_t)> QuantProgressLine(const std::string& spec) {
  const bool terminal = isatty(STDERR_FILENO) != 0;
  return [spec, terminal](size_t done, size_t total) {
    if (terminal) std::fprintf(stderr, "\rquantizing to %s: %zu/%zu tensors", spec.c_str(), done, total);
    if (done == total) std::fprintf(stderr, "%squantized %zu tensors to %s\n", terminal ? "\r" : "", total, spec.c_str());
  };
}

Status CheckGgufOutFile(const std::string& out, bool force) {
  if (!IsGgufPath(out))
    return Status::Error(fmt::format("--out {}: the file name must end in .gguf (oko and llama.cpp tell GGUF "
                                     "files by it)",
                                     out),
                         ExitCode::kUsage);
  std::error_code ec;
  if (std::filesystem::is_directory(out, ec)) return Errorf("--out {}: is a folder", out);
  if (std::filesystem::exists(out, ec) && !force) return Errorf("--out {}: the file exists (--force to overwrite it)", out);
  return {};
}

void EngineFlags::Add(CLI::App* app, bool model_required) {
  CLI::Option* m = AddModelFlag(app, "-m,--model", &model_dir, "Hugging Face model folder or GGUF file");
  if (model_required) m->required();
  AddIntFlag(app, "-t,--threads", &threads,
             {0, MaxThreads(), fmt::format(": 4 per core, this machine has {}", HardwareThreads())},
             "threads (default: 0, every core)");
  ctx_option = AddIntFlag(app, "-c,--ctx", &ctx, {2, INT64_MAX},
                          "KV-cache capacity in positions; past it the cache is a ring (default: 4096)");
  AddIntFlag(app, "--sink", &sink, {0, INT64_MAX},
             "positions kept when the KV ring wraps, StreamingLLM (default: 0)");
  app->add_option("--compute", compute,
                  "precision of the matmul activations: f32 (exact), bf16 (fast, needs AVX-512) or "
                  "auto (bf16 for bf16 weights where this CPU's measured bf16 dot beats f32 FMA; "
                  "8-bit activations for --quant weights) (default: " + compute + ")")
      ->check(CLI::IsMember({"auto", "f32", "bf16"}));
  app->add_option("--kv", kv, "KV-cache storage: f32 or f16 (default: f32)")->check(CLI::IsMember({"f32", "f16"}));
  app->add_option("--quant", quant,
                  "quantize the matmul weights while loading: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, "
                  "q5_k, q6_k, q4_k_m, q5_k_m (default: none, weights as stored)");
  app->add_option("--lora", lora,
                  "PEFT LoRA adapter folder DIR[:SCALE] (adapter_config.json + "
                  "adapter_model.safetensors), applied unmerged; repeat to add several "
                  "(default: none; SCALE defaults to 1)")
      ->type_name("DIR[:SCALE]")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_flag("--lora-merge", lora_merge,
                "merge the --lora adapters into f32 copies of the weights at load: no "
                "switching, f32 weight bytes (default: off, unmerged)");
}

std::string EngineFlags::ModelName() const {
  std::string d = model_dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d.substr(d.find_last_of('/') + 1);
}

Result<EngineOptions> EngineFlags::ToOptions() const {
  if (sink >= ctx)
    return Status::Error(fmt::format("--sink must be less than -c ({}), got {}", ctx, sink), ExitCode::kUsage);
  EngineOptions o;
  o.threads = threads;
  o.ctx = ctx;
  o.sink = sink;
  if (compute == "bf16" && !OnednnBf16Supported())
    return Errorf("--compute bf16 needs a CPU with AVX-512, and this one has none (use auto or f32)");
  if (compute == "auto") {
    o.compute_auto = true;
  } else {
    OKO_ASSIGN_OR_RETURN(o.compute, ParseComputeMode(compute));
  }
  o.kv_dtype = kv == "f16" ? DType::kF16 : DType::kF32;
  if (!quant.empty()) {
    // Checked before any work (the plan's layer count only matters at load).
    if (auto plan = ParseQuantPlan(quant, 1, false); !plan.ok())
      return Status::Error("--quant: " + plan.status().message(), ExitCode::kUsage);
    o.quant = quant;
    o.on_quant_progress = QuantProgressLine(quant);
  }
  for (const std::string& arg : lora) {
    auto spec = ParseLoraSpec(arg);
    if (!spec.ok()) return spec.status().WithContext("--lora " + arg);
    o.lora.push_back(std::move(spec).value());
  }
  if (lora_merge && lora.empty()) return Errorf("--lora-merge needs at least one --lora DIR");
  if (!quant.empty() && model_dir.ends_with(".gguf"))
    return Errorf("--quant {}: {} is a GGUF file, whose weights run in the types it holds (--quant "
                  "quantizes the weights of a model folder)", quant, model_dir);
  if (lora_merge && model_dir.ends_with(".gguf"))
    return Errorf("--lora-merge: {} is a GGUF file, whose quantized weights adapters cannot be "
                  "merged into; drop --lora-merge (the adapters then run unmerged on them)", model_dir);
  if (lora_merge && !quant.empty())
    return Errorf("--lora-merge with --quant: adapters cannot be merged into quantized weights; "
                  "drop --lora-merge (the adapters then run unmerged on the quantized weights)");
  o.lora_merge = lora_merge;
  return o;
}

namespace {

Status CheckMemory(const ModelConfig& c, const EngineOptions& o, const std::string& ctx_what) {
  const MemoryEstimate e = EstimateMemory(c, o);
  const uint64_t ram = PhysicalMemoryBytes();
  if (ram == 0 || e.total() <= ram) return {};
  return Errorf("{}: the KV cache of {} positions would need {} and the buffers {}, more than this machine's "
                "{} of memory (lower -c/--ctx, or use --kv f16)",
                ctx_what.empty() ? fmt::format("-c {}", o.ctx) : ctx_what, o.ctx, BytesAndHuman(e.kv_cache),
                BytesAndHuman(e.activations), BytesAndHuman(ram));
}

}  // namespace

Result<std::unique_ptr<Context>> OpenContext(const std::string& dir, const EngineOptions& options,
                                             const std::string& ctx_what) {
  OKO_ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(dir));
  OKO_RETURN_IF_ERROR(CheckMemory(config, options, ctx_what));
  const int64_t trained = config.max_position_embeddings;
  if (!ctx_what.empty() && trained > 0 && options.ctx > trained)
    std::fprintf(stderr,
                 "oko: warning: %s: a context of %lld positions is past the %lld the model was trained for "
                 "(max_position_embeddings); expect worse text past position %lld\n",
                 ctx_what.c_str(), static_cast<long long>(options.ctx), static_cast<long long>(trained),
                 static_cast<long long>(trained));
  try {
    OKO_ASSIGN_OR_RETURN(auto context, LoadContext(dir, options));
    for (const std::string& note : context->model().quant_fallbacks())
      std::fprintf(stderr, "oko: --quant %s: %s\n", options.quant.c_str(), note.c_str());
    for (const LoraInfo& l : context->model().loras())
      std::fprintf(stderr, "oko: LoRA %s: %zu matrices adapted, scale %g%s\n", l.name.c_str(), l.modules,
                   l.scale, context->model().lora_merged() ? ", merged" : "");
    return context;
  } catch (const std::bad_alloc&) {
    return RuntimeErrorf("out of memory: the KV cache and buffers need about {}",
                         BytesAndHuman(EstimateMemory(config, options).total()));
  }
}

void InterventionFlags::Add(CLI::App* app, bool with_text) {
  app->add_option("--ablate", spec.ablate,
                  "zero the output of attention heads LAYER.HEAD[,...], e.g. 2.1,3.* (repeatable; default: none)");
  app->add_option("--knockout", spec.knockout,
                  "remove attention edges LAYERS:QUERIES:KEYS[;...] (positions, * = all, a-b inclusive), "
                  "e.g. '*:10-12:3-5' (repeatable; default: none)");
  app->add_option("--emphasize", spec.emphasize,
                  "steer attention to the key positions KEYS (e.g. 4-8,12): other keys' probabilities times "
                  "--emphasize-alpha, renormalized (default: none)");
  if (with_text)
    app->add_option("--emphasize-text", emphasize_text,
                    "--emphasize the positions of the first occurrence of this text's tokens in the prompt")
        ->excludes("--emphasize");
  app->add_option("--emphasize-heads", spec.emphasize_heads,
                  "the heads --emphasize acts in, LAYER.HEAD[,...] (default: every head)");
  app->add_option("--emphasize-alpha", spec.emphasize_alpha,
                  "the factor in (0, 1] on the probabilities of keys outside --emphasize (default: 0.01)");
  app->add_option("--steer", spec.steer,
                  "add COEF times the vectors layers.{i} of a safetensors FILE to the residual after layer i, "
                  "FILE[:COEF] (repeatable; COEF default: 1)");
}

namespace {
// "a-b": the positions of the first occurrence of `needle` in `prompt`.
std::optional<std::string> Find(std::span<const int32_t> prompt, const std::vector<int32_t>& needle) {
  if (needle.empty()) return std::nullopt;
  const auto at = std::search(prompt.begin(), prompt.end(), needle.begin(), needle.end());
  if (at == prompt.end()) return std::nullopt;
  const int64_t first = at - prompt.begin();
  return fmt::format("{}-{}", first, first + static_cast<int64_t>(needle.size()) - 1);
}

// The text's tokens as the prompt would hold them: encoded alone, or after a space (a
// word inside a sentence).
Result<std::string> TextPositions(const std::string& text, const Tokenizer& tokenizer,
                                  std::span<const int32_t> prompt) {
  for (const std::string& variant : {text, " " + text}) {
    OKO_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, tokenizer.Encode(variant, /*add_special_tokens=*/false));
    if (auto span = Find(prompt, ids)) return *span;
  }
  return Errorf("--emphasize-text '{}': its tokens are not in the prompt ({} tokens)", text, prompt.size());
}
}  // namespace

Result<std::shared_ptr<const Interventions>> InterventionFlags::Make(const ModelConfig& config,
                                                                     const Tokenizer* tokenizer,
                                                                     std::span<const int32_t> prompt) const {
  InterventionSpec s = spec;
  if (!emphasize_text.empty()) {
    if (tokenizer == nullptr)
      return Errorf("--emphasize-text '{}' needs a text prompt and the model's tokenizer (not with --chat)",
                    emphasize_text);
    OKO_ASSIGN_OR_RETURN(s.emphasize, TextPositions(emphasize_text, *tokenizer, prompt));
  }
  if (s.empty()) {
    if (!s.emphasize_heads.empty()) return Errorf("--emphasize-heads {} needs --emphasize", s.emphasize_heads);
    return std::shared_ptr<const Interventions>();
  }
  OKO_ASSIGN_OR_RETURN(Interventions iv, Interventions::Make(s, config));
  return std::make_shared<const Interventions>(std::move(iv));
}

Status InterventionFlags::ApplyTo(Context& context, const Tokenizer* tokenizer, std::span<const int32_t> prompt) const {
  OKO_ASSIGN_OR_RETURN(auto iv, Make(context.config(), tokenizer, prompt));
  context.set_interventions(std::move(iv));
  return {};
}

void SamplingFlags::Add(CLI::App* app) {
  const std::string from_model = " (default: generation_config.json, else ";
  AddRealFlag(app, "--temp", &temperature, {0, 100}, "temperature, 0: greedy" + from_model + "greedy)");
  AddIntFlag(app, "--top-k", &top_k, {0, kMaxTokenCount}, "keep the k most likely tokens, 0: off" + from_model + "0)");
  AddRealFlag(app, "--top-p", &top_p, {0, 1, /*min_open=*/true}, "nucleus sampling mass, 1: off" + from_model + "1)");
  AddRealFlag(app, "--min-p", &min_p, {0, 1}, "drop tokens below min-p times the top probability" + from_model + "0)");
  AddRealFlag(app, "--repeat-penalty", &repeat_penalty, {0, 100, /*min_open=*/true},
              "repetition penalty, 1: off" + from_model + "1)");
  AddRealFlag(app, "--presence-penalty", &presence_penalty, {-2, 2}, "presence penalty, 0: off (default: 0)");
  AddUint64Flag(app, "--seed", &seed, "random seed: same seed, same text (default: a fresh random seed)");
}

SamplerOptions SamplingFlags::Resolve(const GenerationDefaults& g) const {
  SamplerOptions o;
  const bool sample = g.do_sample.value_or(g.temperature.has_value());
  o.temperature = temperature.value_or(sample ? static_cast<float>(g.temperature.value_or(1.0)) : 0.0f);
  o.top_k = top_k.value_or(g.top_k.value_or(0));
  o.top_p = top_p.value_or(static_cast<float>(g.top_p.value_or(1.0)));
  o.min_p = min_p.value_or(static_cast<float>(g.min_p.value_or(0.0)));
  o.repetition_penalty = repeat_penalty.value_or(static_cast<float>(g.repetition_penalty.value_or(1.0)));
  o.presence_penalty = presence_penalty.value_or(0.0f);
  o.seed = seed.value_or((uint64_t{std::random_device{}()} << 32) | std::random_device{}());
  return o;
}

std::string FormatSampling(const SamplerOptions& o) {
  return fmt::format("seed {} | temp {}{} | top-k {} | top-p {} | min-p {} | repeat-penalty {} | presence-penalty {}",
                     o.seed, o.temperature, o.temperature <= 0 ? " (greedy)" : "", o.top_k, o.top_p, o.min_p,
                     o.repetition_penalty, o.presence_penalty);
}

Status CheckPromptFits(int64_t tokens, int64_t ctx, int64_t max_pos) {
  if (tokens > ctx)
    return Errorf("the prompt has {} tokens, more than the context of {} positions (raise -c/--ctx)",
                  tokens, ctx);
  if (max_pos > 0 && tokens > max_pos)
    return Errorf("the prompt has {} tokens, more than the {} positions the model allows "
                  "(max_position_embeddings in config.json)",
                  tokens, max_pos);
  return {};
}

Status CheckPromptFits(const Context& context, int64_t tokens) {
  return CheckPromptFits(tokens, context.kv_cache().capacity(), context.config().max_position_embeddings);
}

}  // namespace oko
