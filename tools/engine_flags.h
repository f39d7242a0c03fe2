// The engine flags every model-running subcommand shares (docs/CLI.md "Common flags"),
// and the checks that run before a model is loaded: ranges, the KV cache against the
// machine's memory, the context against what the model was trained for.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/interventions.h"
#include "engine/sampler.h"
#include "loaders/tokenizer.h"

namespace oko {

struct EngineFlags {
  std::string model_dir;
  int threads = 0;
  int64_t ctx = 4096;
  int64_t sink = 0;
  std::string compute = "auto";
  std::string kv = "f32";
  std::string quant;  // "": weights as stored
  std::vector<std::string> lora;  // DIR[:SCALE] each
  bool lora_merge = false;
  CLI::Option* ctx_option = nullptr;  // whether -c was given

  void Add(CLI::App* app, bool model_required = true);
  // Checks that need several flags together (--sink below -c); no model needed.
  Result<EngineOptions> ToOptions() const;
  // The model folder's name, as traces record it.
  std::string ModelName() const;
  bool ctx_given() const { return ctx_option != nullptr && ctx_option->count() > 0; }
  // "-c 600" when -c was given, else "" (OpenContext's ctx_what).
  std::string CtxWhat() const { return ctx_given() ? "-c " + std::to_string(ctx) : ""; }
};

// Loads the model after checking that its KV cache and buffers fit in this machine's
// memory (exit 2 with the size in bytes), warning on stderr when the context goes past
// the model's max_position_embeddings (`ctx_what` says where the context size came from,
// e.g. "-c 600"; empty: the default, never warned about). An allocation that still fails
// is exit 3 with the size.
Result<std::unique_ptr<Context>> OpenContext(const std::string& dir, const EngineOptions& options,
                                             const std::string& ctx_what);

// --ablate, --knockout, --emphasize (+ -heads, -alpha) and --steer (docs/INTERVENTIONS.md),
// on run, chat, logits, trace and bench.
struct InterventionFlags {
  InterventionSpec spec;
  std::string emphasize_text;  // --emphasize-text (run, trace): resolved against the prompt

  // with_text: also --emphasize-text (commands whose prompt is text).
  void Add(CLI::App* app, bool with_text = false);
  // The interventions the flags give, checked against the model (exit 2 naming the flag,
  // its value and the model's limits); nullptr when none was given. --emphasize-text
  // becomes the positions of the first occurrence of its tokens in `prompt`.
  Result<std::shared_ptr<const Interventions>> Make(const ModelConfig& config, const Tokenizer* tokenizer = nullptr,
                                                    std::span<const int32_t> prompt = {}) const;
  // Make, then set on `context`.
  Status ApplyTo(Context& context, const Tokenizer* tokenizer = nullptr, std::span<const int32_t> prompt = {}) const;
};

// Sampling flags; unset ones take the model's generation_config.json defaults.
struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p, repeat_penalty, presence_penalty;
  std::optional<int64_t> top_k;
  std::optional<uint64_t> seed;

  void Add(CLI::App* app);
  // generation_config.json values where no flag was given; greedy when it says
  // do_sample: false; a random seed unless --seed.
  SamplerOptions Resolve(const GenerationDefaults& defaults) const;
};

// "seed 42 | temp 0.8 | top-k 40 | top-p 0.95 | min-p 0 | repeat-penalty 1 | presence-penalty 0"
std::string FormatSampling(const SamplerOptions& o);

// "quantizing to q4_k_m: 12/197 tensors" on stderr, redrawn in place on a terminal, once
// at the end otherwise: EngineOptions::on_quant_progress.
std::function<void(size_t, size_t)> QuantProgressLine(const std::string& spec);

// The --out of a command that writes a GGUF file: a name ending in .gguf (oko and
// llama.cpp tell GGUF files by it; else exit 1), not a folder, and not an existing file
// unless --force (exit 2).
Status CheckGgufOutFile(const std::string& out, bool force);

// A prompt of `tokens` tokens must fit the KV cache (-c/--ctx) and the positions the model
// was trained for (max_position_embeddings): otherwise it would be silently cut to its
// last tokens. Exit status 2 with both numbers. The same rule for every subcommand.
Status CheckPromptFits(int64_t tokens, int64_t ctx, int64_t max_position_embeddings);
Status CheckPromptFits(const Context& context, int64_t tokens);

}  // namespace oko
