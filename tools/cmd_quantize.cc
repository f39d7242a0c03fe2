// oko quantize: a model folder or GGUF file written as a GGUF file (engine/gguf_export.h).

#include "common/limits.h"
#include "engine/gguf_export.h"
#include "tools/command.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"
#include "tools/resources.h"

namespace oko {
namespace {

struct QuantizeOptions {
  std::string model, type, out;
  int64_t threads = 0;
  bool force = false;
};

// Checked before any work: the type, an --out that -m would read back as GGUF, and nothing
// a user owns overwritten without --force.
Status CheckQuantizeFlags(const QuantizeOptions& o) {
  OKO_RETURN_IF_ERROR(CheckGgufExportType(o.type));
  return CheckGgufOutFile(o.out, o.force);
}

Status RunQuantize(const QuantizeOptions& o) {
  GgufExportOptions e{o.model, o.type, o.out, static_cast<int>(o.threads), QuantProgressLine(o.type)};
  OKO_ASSIGN_OR_RETURN(GgufExportSummary s, ExportGguf(e));
  for (const std::string& note : s.fallbacks) fmt::print(stderr, "fell back: {}\n", note);
  if (s.requantized)
    fmt::print(stderr, "note: {} held block-quantized weights; they were dequantized and quantized again, which "
                       "loses accuracy\n", o.model);
  if (s.without_tokenizer)
    fmt::print(stderr, "warning: {} has no tokenizer (tokenizer.json): the file holds none, and llama.cpp "
                       "will not load it\n", o.model);
  std::string types;
  for (const auto& [type, count] : s.type_counts) types += fmt::format("{}{} {}", types.empty() ? "" : ", ", type, count);
  fmt::print("wrote {} ({} tensors: {}; {:.2f} MB)\n", o.out, s.tensors, types, s.bytes / 1e6);
  return {};
}

}  // namespace

Subcommand AddQuantizeCommand(CLI::App& root) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* app = root.add_subcommand("quantize", "Write a model as a GGUF file in one weight type (llama.cpp reads it)");
  AddModelOption(app, &o->model);
  app->add_option("--type", o->type,
                  "weight type: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m (as --quant), "
                  "or f32, f16, bf16")
      ->required();
  app->add_option("--out", o->out, "the GGUF file to write (name ending in .gguf; new unless --force)")->required();
  app->add_flag("--force", o->force, "overwrite --out if it exists");
  AddIntFlag(app, "-t,--threads", &o->threads, {0, MaxThreads(), fmt::format(": 4 per core, this machine has {}", HardwareThreads())}, "threads (default: 0, every core)");
  AddExamples(app, {"oko quantize -m ../models/Qwen3-0.6B --type q4_k_m --out qwen3-0.6b-q4_k_m.gguf",
                    "oko quantize -m model-f16.gguf --type q8_0 --out model-q8_0.gguf"});
  return {app, [o]() -> Status {
            OKO_RETURN_IF_ERROR(CheckQuantizeFlags(*o));
            return RunQuantize(*o);
          }};
}

}  // namespace oko
