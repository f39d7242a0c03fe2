// libFuzzer target: a PEFT LoRA adapter, adapter_config.json then (after a NUL byte) the
// image of adapter_model.safetensors, checked against stories260k's shapes as --lora
// checks an adapter against the model. Whatever is accepted must be usable: every module
// a linear layer of the model, A [r, in] and B [out, r] as the config says, finite values.
#include <cmath>
#include <map>
#include <string>

#include "loaders/lora_adapter.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  const auto [config_text, weights] = fuzz::SplitAtNul(fuzz::AsText(data, size));
  auto config = ParseLoraConfig(config_text, "adapter_config.json");
  if (!config.ok()) return 0;
  std::map<std::string, std::string> metadata;
  auto tensors = SafetensorsFile::ParseHeader(reinterpret_cast<const std::byte*>(weights.data()),
                                              weights.size(), "adapter_model.safetensors", &metadata);
  if (!tensors.ok()) return 0;
  ModelConfig model;  // stories260k
  model.hidden_size = 64;
  model.intermediate_size = 172;
  model.num_layers = 5;
  model.num_heads = 8;
  model.num_kv_heads = 4;
  model.head_dim = 8;
  model.vocab_size = 512;
  auto modules = ReadLoraModules(*config, *tensors, model, "adapter_model.safetensors");
  if (!modules.ok()) return 0;
  for (const LoraModule& m : *modules) {
    if (m.rank != config->RankOf(m.name) || m.rank < 1) fuzz::Fail("rank differs from the config: " + m.name);
    if (m.a.size() != static_cast<size_t>(m.rank * m.in) || m.b.size() != static_cast<size_t>(m.out * m.rank))
      fuzz::Fail("A or B has the wrong size: " + m.name);
    if (!std::isfinite(m.scaling) || m.scaling <= 0) fuzz::Fail("scaling not positive: " + m.name);
    for (float x : m.a)
      if (!std::isfinite(x)) fuzz::Fail("non-finite A value accepted: " + m.name);
  }
  return 0;
}
