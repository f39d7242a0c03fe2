// libFuzzer target: config.json, then (after a NUL byte) generation_config.json. A config
// that parses is then used as the loader uses it: the list of tensors it expects.
#include <string>

#include "loaders/hf_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  const auto [config_text, generation_text] = fuzz::SplitAtNul(fuzz::AsText(data, size));
  auto config = ParseModelConfig(std::string(config_text), "config.json");
  if (!config.ok()) return 0;
  Status s = ParseGenerationConfig(std::string(generation_text), "generation_config.json", &*config);
  (void)s;
  const ModelConfig& c = *config;
  if (c.num_layers < 1 || c.num_heads < 1 || c.num_kv_heads < 1 || c.head_dim < 1 ||
      c.num_heads % c.num_kv_heads != 0)
    fuzz::Fail("an accepted config has impossible dimensions");
  for (const ExpectedTensor& t : ExpectedTensors(c))
    for (int64_t d : t.shape)
      if (d < 1) fuzz::Fail("expected tensor '" + t.name + "' has a dimension < 1");
  return 0;
}
