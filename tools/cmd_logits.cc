// oko logits -m DIR --ids 1,2,3 --out F.npy [--all-positions]: the logits of the last
// position [1, vocab] (or of every position [n, vocab]) as a float32 .npy.
#include "common/npy.h"
#include "tools/command.h"
#include "tools/engine_flags.h"

namespace oko {
namespace {

struct LogitsOptions {
  EngineFlags engine;
  std::string ids, out;
  bool all_positions = false;
};

Status RunLogits(const LogitsOptions& o) {
  OKO_ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(o.ids));
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  if (static_cast<int64_t>(ids.size()) > options.ctx) options.ctx = ids.size();
  OKO_ASSIGN_OR_RETURN(auto context, LoadContext(o.engine.model_dir, options));
  OKO_RETURN_IF_ERROR(CheckPromptFits(*context, static_cast<int64_t>(ids.size())));
  const int64_t V = context->config().vocab_size;
  for (int32_t id : ids)
    if (id >= V) return Errorf("--ids: token id {} is outside the vocabulary [0, {})", id, V);
  std::vector<float> logits;
  context->Forward(ids, o.all_positions ? Logits::kAll : Logits::kLast, &logits);
  const int64_t rows = o.all_positions ? static_cast<int64_t>(ids.size()) : 1;
  return WriteNpyF32(o.out, {rows, V}, logits.data());
}

}  // namespace

Subcommand AddLogitsCommand(CLI::App& root) {
  auto o = std::make_shared<LogitsOptions>();
  o->engine.compute = "f32";  // logits are for checking: the exact mode unless asked
  CLI::App* app = root.add_subcommand("logits", "Write the logits of token ids to a .npy file");
  o->engine.Add(app);
  app->add_option("--ids", o->ids, "comma-separated token ids")->required();
  app->add_option("--out", o->out, "output .npy (float32 [positions, vocab])")->required();
  app->add_flag("--all-positions", o->all_positions, "logits of every position, not only the last");
  return {app, [o] { return RunLogits(*o); }};
}

}  // namespace oko
