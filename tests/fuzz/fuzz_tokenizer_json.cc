// libFuzzer target: tokenizer.json, then (after a NUL byte) tokenizer_config.json. A
// tokenizer that loads must then encode and decode a few fixed strings without crashing.
#include <string>
#include <vector>

#include "loaders/tokenizer.h"
#include "loaders/utf8.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  const auto [tokenizer_text, config_text] = fuzz::SplitAtNul(fuzz::AsText(data, size));
  auto tok = Tokenizer::FromJson(tokenizer_text, config_text, "fuzz/tokenizer.json");
  if (!tok.ok()) return 0;
  const Tokenizer& t = **tok;
  for (const char* text : {"", "Hello world!", " a  b\n\n\tc", "héllo 你好 🦙", "<|im_start|>x</s>"}) {
    auto ids = t.Encode(text, /*add_special_tokens=*/true);
    if (!ids.ok()) continue;
    for (int32_t id : *ids)
      if (id < 0 || id >= t.vocab_size()) fuzz::Fail("Encode returned an id outside the vocabulary");
    const std::string back = t.Decode(*ids);
    if (utf8::FirstInvalidByte(back) != std::string_view::npos) fuzz::Fail("Decode returned invalid UTF-8");
  }
  std::vector<int32_t> all;
  for (int32_t id = -1; id < t.vocab_size() + 1 && id < 300; ++id) all.push_back(id);
  const std::string text = t.Decode(all, /*skip_special=*/false);
  if (utf8::FirstInvalidByte(text) != std::string_view::npos) fuzz::Fail("Decode returned invalid UTF-8");
  return 0;
}
