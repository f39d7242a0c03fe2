// libFuzzer target: an attention trace file as `oko trace --diff` and the viewers read it
// (ReadTraceFromMemory). An accepted trace must agree with its own metadata, as the
// readers of TraceData assume: Row(l, h, q) stays inside attn[l].
#include "loaders/trace_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  auto t = ReadTraceFromMemory(reinterpret_cast<const std::byte*>(data), size, "fuzz.safetensors");
  if (!t.ok()) return 0;
  if (t->attn.size() != t->layers.size()) fuzz::Fail("attn and layers differ in count");
  const size_t row = static_cast<size_t>(t->H() * t->Q() * t->K());
  for (const auto& a : t->attn)
    if (a.size() != row) fuzz::Fail("an attention tensor disagrees with heads x queries x keys");
  if (t->tokens.size() != t->token_ids.size()) fuzz::Fail("tokens and token_ids differ in count");
  for (int64_t p : t->query_positions)
    if (p < 0 || p >= static_cast<int64_t>(t->tokens.size())) fuzz::Fail("query position outside the tokens");
  for (int64_t p : t->key_positions)
    if (p < 0 || p >= static_cast<int64_t>(t->tokens.size())) fuzz::Fail("key position outside the tokens");
  if (t->lens_ids.size() != t->lens_probs.size()) fuzz::Fail("lens ids and probs differ in count");
  return 0;
}
