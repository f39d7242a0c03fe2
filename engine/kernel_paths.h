// Which kernel each weight matrix of a model runs, for the reports that must say it
// (`oko bench`, `oko info`): figures from different machines or modes are never confused.
// The kernel is Linear's own decision (ChooseLinearPath), not a second copy of it.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/graph.h"
#include "engine/linear.h"
#include "engine/machine_limits.h"

namespace oko {

// One weight matrix of the graph, as it will run.
struct WeightSite {
  Site site;
  int64_t layer;       // -1 for lm_head
  std::string weight;  // Hugging Face tensor name ("model.layers.0.mlp.up_proj.weight")
  QuantType type;
  ComputeMode mode;
  size_t rows, cols;   // N, K
  size_t interleave = 1;  // WeightView::interleave
};
// Every matrix of the graph, in node order.
std::vector<WeightSite> WeightSites(const LayerGraph& g);

struct PathGroup {
  std::string kernel;            // LinearPathName: "BF16 GEMV, f32 FMA"
  std::vector<std::string> ops;  // "attn.q_proj", "mlp.down_proj (14 of 28)", "lm_head"
};
// The kernels a forward of M rows runs (kDecode: the next token of M sequences; kPrefill:
// M positions of a prompt), one group per kernel in graph order; an op that runs
// different kernels in different layers (a mixed quantization) is counted in each.
std::vector<PathGroup> DescribePaths(std::span<const WeightSite> sites, size_t M, Phase phase);
// The compute roofline of decoding M sequences together: the aggregate tok/s if every
// matrix's products ran at this machine's measured peak for its M-row kernel's arithmetic
// (MachineLimits: f32 FMA, bf16 dot, int8 dot; attention and the vector ops left out).
// tok_s 0 where a kernel's peak is not measured here (the int8 dot off AVX512-VNNI, AMX).
struct ComputeRoofline {
  double tok_s = 0;
  std::string arithmetic;  // ArithmeticName of every matrix's kernel, or "mixed"
};
ComputeRoofline DecodeComputeRoofline(std::span<const WeightSite> sites, size_t M, const MachineLimits& limits);
// The measured peak (GOP/s) of the arithmetic that site's kernel runs on when M sequences
// decode together; 0 where this machine's probe has no figure for it.
double DecodePeakGops(const WeightSite& site, size_t M, const MachineLimits& limits);

// {"kernel": [ops...], ...} in group order.
nlohmann::ordered_json PathsToJson(const std::vector<PathGroup>& groups);
// Lines "<kernel>: op, op, ...", the first after `label`, the rest indented to match.
std::string FormatPaths(const std::string& label, const std::vector<PathGroup>& groups);

}  // namespace oko
