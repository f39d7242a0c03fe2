#include "tools/engine_flags.h"

#include <charconv>

#include "tools/command.h"

namespace oko {

void EngineFlags::Add(CLI::App* app) {
  AddModelOption(app, &model_dir);
  app->add_option("-t,--threads", threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app->add_option("-c,--ctx", ctx, "KV-cache capacity in positions")->check(CLI::PositiveNumber);
  app->add_option("--sink", sink, "positions kept when the KV ring wraps (StreamingLLM)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--compute", compute,
                  "precision of matmul activations: f32 (exact) or bf16 (fast prefill)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  app->add_option("--kv", kv, "KV-cache storage: f32 or f16")->check(CLI::IsMember({"f32", "f16"}));
}

Result<EngineOptions> EngineFlags::ToOptions() const {
  EngineOptions o;
  o.threads = threads;
  o.ctx = ctx;
  o.sink = sink;
  OKO_ASSIGN_OR_RETURN(o.compute, ParseComputeMode(compute));
  o.kv_dtype = kv == "f16" ? DType::kF16 : DType::kF32;
  return o;
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
