#include "tools/engine_flags.h"

#include <charconv>
#include <random>

#include "engine/quant_plan.h"
#include "tools/command.h"

namespace oko {

void EngineFlags::Add(CLI::App* app, bool model_required) {
  if (model_required) {
    AddModelOption(app, &model_dir);
  } else {
    app->add_option("-m,--model", model_dir, "Hugging Face model folder")->check(CLI::ExistingDirectory);
  }
  app->add_option("-t,--threads", threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app->add_option("-c,--ctx", ctx, "KV-cache capacity in positions")->check(CLI::PositiveNumber);
  app->add_option("--sink", sink, "positions kept when the KV ring wraps (StreamingLLM)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--compute", compute,
                  "precision of the prefill matmul activations: f32 (exact), bf16 (fast, "
                  "AVX512-BF16) or auto (bf16 for bf16 weights on CPUs that have it)")
      ->check(CLI::IsMember({"auto", "f32", "bf16"}));
  app->add_option("--kv", kv, "KV-cache storage: f32 or f16")->check(CLI::IsMember({"f32", "f16"}));
  app->add_option("--quant", quant,
                  "quantize the weights while loading: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, "
                  "q6_k, q4_k_m, q5_k_m (default: as stored)");
}

std::string EngineFlags::ModelName() const {
  std::string d = model_dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d.substr(d.find_last_of('/') + 1);
}

Result<EngineOptions> EngineFlags::ToOptions() const {
  EngineOptions o;
  o.threads = threads;
  o.ctx = ctx;
  o.sink = sink;
  if (compute == "auto") {
    o.compute_auto = true;
  } else {
    OKO_ASSIGN_OR_RETURN(o.compute, ParseComputeMode(compute));
  }
  o.kv_dtype = kv == "f16" ? DType::kF16 : DType::kF32;
  if (!quant.empty()) {
    // Checked before any work (the plan needs the layer count, which the load knows).
    OKO_RETURN_IF_ERROR(ParseQuantPlan(quant, 1, false).status().WithContext("--quant"));
    o.quant = quant;
    o.on_quant_progress = [spec = quant](size_t done, size_t total) {
      std::fprintf(stderr, "\rquantizing to %s: %zu/%zu tensors", spec.c_str(), done, total);
      if (done == total) std::fprintf(stderr, "\n");
    };
  }
  return o;
}

void SamplingFlags::Add(CLI::App* app) {
  app->add_option("--temp", temperature, "temperature (0: greedy)");
  app->add_option("--top-k", top_k, "keep the k most likely tokens (0: off)");
  app->add_option("--top-p", top_p, "nucleus sampling mass (1: off)");
  app->add_option("--min-p", min_p, "drop tokens below min-p times the top probability");
  app->add_option("--repeat-penalty", repeat_penalty, "repetition penalty (1: off)");
  app->add_option("--presence-penalty", presence_penalty, "presence penalty (0: off)");
  app->add_option("--seed", seed, "random seed (same seed, same text)");
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
  o.seed = seed.value_or(std::random_device{}());
  return o;
}

Status CheckPromptFits(const Context& context, int64_t tokens) {
  const int64_t ctx = context.kv_cache().capacity();
  if (tokens > ctx)
    return Errorf("the prompt has {} tokens, more than the context of {} positions (raise -c/--ctx)",
                  tokens, ctx);
  const int64_t max_pos = context.config().max_position_embeddings;
  if (max_pos > 0 && tokens > max_pos)
    return Errorf("the prompt has {} tokens, more than the {} positions the model allows "
                  "(max_position_embeddings in config.json)",
                  tokens, max_pos);
  return {};
}

Result<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    int32_t id = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || id < 0)
      return Errorf("--ids: '{}' is not a token id", item);
    ids.push_back(id);
    start = end + 1;
  }
  return ids;
}

}  // namespace oko
