// oko logits -m DIR --ids 1,2,3 --out F.npy [--all-positions]: the logits of the last
// position [1, vocab] (or of every position [n, vocab]) as a float32 .npy (--out -: to
// stdout); a one-line summary on stderr.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "common/mapped_file.h"
#include "common/npy.h"
#include "tools/command.h"
#include "loaders/tokenizer.h"
#include "tools/engine_flags.h"
#include "tools/intervention_compare.h"
#include "tools/token_ids.h"

namespace oko {
namespace {

struct LogitsOptions {
  EngineFlags engine;
  InterventionFlags interventions;
  std::string ids, out;
  bool all_positions = false, compare = false;
};

// The .npy bytes go through a temporary file (WriteNpyF32 writes files atomically).
Status WriteNpyToStdout(const std::vector<int64_t>& shape, const float* data) {
  const std::string tmp =
      (std::filesystem::temp_directory_path() / fmt::format("oko-logits-{}.npy", ::getpid())).string();
  Status written = WriteNpyF32(tmp, shape, data);
  if (written.ok()) {
    auto bytes = ReadFileToString(tmp);
    if (bytes.ok()) std::fwrite(bytes->data(), 1, bytes->size(), stdout);  // checked at exit (main)
    written = bytes.status();
  }
  std::filesystem::remove(tmp);
  return written;
}

// --compare: the same ids again without the interventions; the next-token distributions
// on stderr (stdout may hold the .npy).
Status CompareWithout(Context& context, const LogitsOptions& o, const std::vector<int32_t>& ids, const float* with) {
  if (context.interventions() == nullptr) return Status::Error("--compare needs an intervention flag", ExitCode::kUsage);
  const auto iv = context.interventions();
  context.Reset();
  context.set_interventions(nullptr);
  std::vector<float> without;
  context.Forward(ids, Logits::kLast, &without);
  context.set_interventions(iv);
  std::unique_ptr<Tokenizer> tokenizer;
  if (auto t = Tokenizer::Load(o.engine.model_dir); t.ok()) tokenizer = std::move(t).value();
  const NextTokenComparison c = CompareNextToken(without.data(), with, context.config().vocab_size);
  std::fprintf(stderr, "%s", FormatComparison(c, tokenizer.get()).c_str());
  return {};
}

Status RunLogits(const LogitsOptions& o) {
  OKO_ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseTokenIds(o.ids));
  if (ids.empty()) return Errorf("--ids: give at least one token id");
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  if (static_cast<int64_t>(ids.size()) > options.ctx) options.ctx = ids.size();
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(o.engine.model_dir, options, o.engine.CtxWhat()));
  OKO_RETURN_IF_ERROR(o.interventions.ApplyTo(*context));
  OKO_RETURN_IF_ERROR(CheckPromptFits(*context, static_cast<int64_t>(ids.size())));
  const int64_t V = context->config().vocab_size;
  OKO_RETURN_IF_ERROR(CheckTokenRange(ids, V, "--ids"));
  std::vector<float> logits;
  context->Forward(ids, o.all_positions ? Logits::kAll : Logits::kLast, &logits);
  if (o.compare) OKO_RETURN_IF_ERROR(CompareWithout(*context, o, ids, logits.data() + logits.size() - V));
  const int64_t rows = o.all_positions ? static_cast<int64_t>(ids.size()) : 1;
  if (o.out == "-") {
    OKO_RETURN_IF_ERROR(WriteNpyToStdout({rows, V}, logits.data()));
  } else {
    OKO_RETURN_IF_ERROR(WriteNpyF32(o.out, {rows, V}, logits.data()));
  }
  std::fprintf(stderr, "logits: [%lld, %lld] float32 of %zu token%s -> %s\n", static_cast<long long>(rows),
               static_cast<long long>(V), ids.size(), ids.size() == 1 ? "" : "s",
               o.out == "-" ? "stdout" : o.out.c_str());
  return {};
}

}  // namespace

Subcommand AddLogitsCommand(CLI::App& root) {
  auto o = std::make_shared<LogitsOptions>();
  o->engine.compute = "f32";  // logits are for checking: the exact mode unless asked
  CLI::App* app = root.add_subcommand("logits", "Write the logits of token ids to a .npy file");
  o->engine.Add(app);
  o->interventions.Add(app);
  app->add_option("--ids", o->ids, "comma-separated token ids, e.g. 1,2,3 or [1, 2, 3]")->required();
  app->add_option("--out", o->out, "output .npy, float32 [positions, vocab] (-: stdout)")->required();
  app->add_flag("--all-positions", o->all_positions, "logits of every position, not only the last");
  app->add_flag("--compare", o->compare,
                "also run without the interventions: KL divergence and top-5 next tokens on stderr");
  AddExamples(app, {"oko logits -m ../shared/models/stories260k --ids 1,403,407 --out l.npy",
                    "oko logits -m DIR --ids \"$(oko tokenize -m DIR --text hi)\" --all-positions --out all.npy",
                    "oko logits -m DIR --ids 1,2 --out - | python3 -c 'import numpy,sys; print(numpy.load(sys.stdin.buffer))'"});
  return {app, [o] { return RunLogits(*o); }};
}

}  // namespace oko
