// The engine flags every model-running subcommand shares (DESIGN.md "Common flags").
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include <optional>

#include "engine/context.h"
#include "engine/sampler.h"

namespace oko {

struct EngineFlags {
  std::string model_dir;
  int threads = 0;
  int64_t ctx = 4096;
  int64_t sink = 0;
  std::string compute = "auto";
  std::string kv = "f32";
  std::string quant;  // "": weights as stored

  void Add(CLI::App* app, bool model_required = true);
  Result<EngineOptions> ToOptions() const;
  // The model folder's name, as traces record it.
  std::string ModelName() const;
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

// A prompt of `tokens` tokens must fit the KV cache (-c/--ctx) and the positions the model
// was trained for (max_position_embeddings): otherwise it would be silently cut to its
// last tokens. Exit status 2 with both numbers.
Status CheckPromptFits(const Context& context, int64_t tokens);

// Parses "1,2,3" into token ids; errors name the bad item.
Result<std::vector<int32_t>> ParseIds(const std::string& text);

}  // namespace oko
