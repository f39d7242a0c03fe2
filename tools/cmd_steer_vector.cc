// oko steer-vector -m DIR --positive P.txt --negative N.txt [--layers a-b] --out FILE:
// a steering vector for --steer from paired prompts (engine/steering.h), one prompt a
// line, line k of P paired with line k of N.
#include <sstream>

#include "common/mapped_file.h"
#include "engine/steering.h"
#include "loaders/safetensors_writer.h"
#include "loaders/tokenizer.h"
#include "tools/command.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"

namespace oko {
namespace {

struct SteerVectorOptions {
  EngineFlags engine;
  std::string positive, negative, layers = "*", out;
};

Result<std::vector<std::string>> Lines(const std::string& path, const char* flag) {
  OKO_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path, 64ull << 20));
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  if (lines.empty()) return Errorf("{} {}: no prompt in it (one prompt a line)", flag, path);
  return lines;
}

Status RunSteerVector(const SteerVectorOptions& o) {
  OKO_ASSIGN_OR_RETURN(const auto positive, Lines(o.positive, "--positive"));
  OKO_ASSIGN_OR_RETURN(const auto negative, Lines(o.negative, "--negative"));
  if (positive.size() != negative.size())
    return Errorf("--positive {} has {} prompts and --negative {} has {}: they are paired line by line", o.positive,
                  positive.size(), o.negative, negative.size());
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(o.engine.model_dir, options, o.engine.CtxWhat()));
  auto layers = ParseLayers(o.layers, context->config());
  if (!layers.ok()) return layers.status().WithContext("--layers " + o.layers);
  OKO_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(o.engine.model_dir));
  std::vector<PromptPair> pairs(positive.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    OKO_ASSIGN_OR_RETURN(pairs[i].positive, tokenizer->Encode(positive[i]));
    OKO_ASSIGN_OR_RETURN(pairs[i].negative, tokenizer->Encode(negative[i]));
    for (const auto* ids : {&pairs[i].positive, &pairs[i].negative}) {
      if (ids->empty()) return Errorf("prompt pair {} has a prompt of no tokens", i + 1);
      OKO_RETURN_IF_ERROR(CheckPromptFits(*context, static_cast<int64_t>(ids->size())));
    }
  }
  const auto v = MeanDifferenceVectors(*context, pairs);
  std::vector<TensorToWrite> tensors;
  for (size_t l = 0; l < v.size(); ++l)
    if ((*layers)[l])
      tensors.push_back(TensorFromBytes(fmt::format("layers.{}", l), DType::kF32,
                                        {static_cast<int64_t>(v[l].size())}, v[l].data()));
  OKO_RETURN_IF_ERROR(WriteSafetensors(o.out, tensors, {{"format", "pt"}}));
  std::fprintf(stderr, "steering vectors of %zu layers from %zu prompt pairs -> %s\n", tensors.size(), pairs.size(),
               o.out.c_str());
  return {};
}

}  // namespace

Subcommand AddSteerVectorCommand(CLI::App& root) {
  auto o = std::make_shared<SteerVectorOptions>();
  o->engine.compute = "f32";
  CLI::App* app = root.add_subcommand("steer-vector", "Make a steering vector for --steer from paired prompts");
  o->engine.Add(app);
  AddInputFileFlag(app, "--positive", &o->positive, false, "prompts towards the direction, one a line")->required();
  AddInputFileFlag(app, "--negative", &o->negative, false, "prompts away from it, paired line by line")->required();
  app->add_option("--layers", o->layers, "layers to write, e.g. 2-4 (default: *, every layer)");
  app->add_option("--out", o->out, "the .safetensors file (f32 tensors layers.{i} of shape [hidden])")->required();
  AddExamples(app, {"oko steer-vector -m ../shared/models/stories260k --positive happy.txt --negative sad.txt "
                    "--out happy.safetensors",
                    "oko run -m ../shared/models/stories260k -p 'Once upon a time' --steer happy.safetensors:4"});
  return {app, [o] { return RunSteerVector(*o); }};
}

}  // namespace oko
