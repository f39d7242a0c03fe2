// libFuzzer target: model.safetensors.index.json (ParseShardIndex). Every shard it accepts
// must be a plain file name in the model folder.
#include <set>

#include "loaders/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  auto index = ParseShardIndex(fuzz::AsText(data, size), "model.safetensors.index.json");
  if (!index.ok()) return 0;
  std::set<std::string> shards(index->shards.begin(), index->shards.end());
  if (shards.size() != index->shards.size()) fuzz::Fail("a shard is listed twice");
  for (const auto& [tensor, shard] : index->weight_map) {
    if (!shards.contains(shard)) fuzz::Fail("shard '" + shard + "' missing from the list");
    if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos)
      fuzz::Fail("shard '" + shard + "' is not a plain file name");
  }
  return 0;
}
