// oko info -m DIR: what a model folder holds and what it will cost to run.
#include <map>

#include "engine/machine_limits.h"
#include "loaders/model_dir.h"
#include "ops/gemm_onednn.h"
#include "ops/machine_probe.h"
#include "tools/command.h"

namespace oko {
namespace {

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.{}f} {}", bytes, u == 0 ? 0 : 2, units[u]);
}

Status RunInfo(const std::string& dir) {
  OKO_ASSIGN_OR_RETURN(ModelDir m, OpenModelDir(dir));
  const ModelConfig& c = m.config;
  std::map<std::string_view, uint64_t> bytes_per_dtype;
  for (const auto& [name, t] : m.tensors.tensors()) bytes_per_dtype[DTypeName(t.dtype)] += t.nbytes;
  std::string dtypes;
  for (const auto& [name, bytes] : bytes_per_dtype)
    dtypes += fmt::format("{}{} {}", dtypes.empty() ? "" : ", ", name, HumanBytes(bytes));
  const int64_t kv_per_token = 2 * c.num_layers * c.kv_dim();  // K and V, every layer
  fmt::print("model        {}\n", dir);
  fmt::print("architecture {} ({})\n", ArchName(c.arch), c.model_type);
  fmt::print("parameters   {} ({:.3f} M)\n", m.ParameterCount(), m.ParameterCount() / 1e6);
  fmt::print("tensors      {} in {} file(s), {}\n", m.tensors.tensors().size(),
             m.tensors.files().size(), HumanBytes(m.tensors.total_bytes()));
  fmt::print("dtypes       {}\n", dtypes);
  fmt::print("vocab        {}\n", c.vocab_size);
  fmt::print("hidden       {}\n", c.hidden_size);
  fmt::print("intermediate {}\n", c.intermediate_size);
  fmt::print("layers       {}\n", c.num_layers);
  fmt::print("heads        {} query, {} key/value (GQA group {}), head_dim {}\n", c.num_heads,
             c.num_kv_heads, c.num_heads / c.num_kv_heads, c.head_dim);
  fmt::print("rope         theta {}{}\n", c.rope_theta,
             c.rope_scaling.type.empty() ? "" : fmt::format(", {} scaling x{}", c.rope_scaling.type,
                                                             c.rope_scaling.factor));
  fmt::print("rms_norm_eps {}\n", c.rms_norm_eps);
  fmt::print("embeddings   {}\n", c.tie_word_embeddings ? "tied (lm_head = embed_tokens)" : "untied");
  fmt::print("biases       q/k/v {}, o {}; q/k norm {}\n", c.qkv_bias ? "yes" : "no",
             c.o_bias ? "yes" : "no", c.qk_norm ? "yes" : "no");
  fmt::print("max context  {}\n", c.max_position_embeddings);
  fmt::print("eos ids      [{}]\n", fmt::join(c.eos_token_ids, ", "));
  fmt::print("kv cache     {} per 1k tokens (f32), {} (f16)\n",
             HumanBytes(kv_per_token * 1024.0 * 4), HumanBytes(kv_per_token * 1024.0 * 2));
  fmt::print("tokenizer    {}\n", m.has_tokenizer ? "tokenizer.json" : "none");
  fmt::print("chat template {}\n", m.has_chat_template ? "yes" : "no");
  fmt::print("this cpu     {}, ops on {}, bf16 compute {}\n", CpuIdentity(), SimdTargetName(),
             OnednnBf16Supported() ? "available" : "unavailable (no AVX-512)");
  return {};
}

}  // namespace

Subcommand AddInfoCommand(CLI::App& root) {
  auto dir = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand("info", "Model summary: architecture, parameters, dtypes, bytes");
  AddModelOption(app, dir.get());
  return {app, [dir] { return RunInfo(*dir); }};
}

}  // namespace oko
