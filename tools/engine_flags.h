// The engine flags every model-running subcommand shares (DESIGN.md "Common flags").
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "engine/model.h"

namespace oko {

struct EngineFlags {
  std::string model_dir;
  int threads = 0;
  int64_t ctx = 4096;
  int64_t sink = 0;
  std::string compute = "f32";
  std::string kv = "f32";

  void Add(CLI::App* app);
  Result<EngineOptions> ToOptions() const;
};

// Parses "1,2,3" into token ids; errors name the bad item.
Result<std::vector<int32_t>> ParseIds(const std::string& text);

}  // namespace oko
