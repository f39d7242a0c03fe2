// libFuzzer target: a GGUF file image (ParseGguf). Whatever it accepts must lie inside the
// image: every byte of every tensor is read here, so ASan reports any view that reaches
// outside the buffer; sizes agree with the shapes and the ggml type table.
#include <string>

#include "loaders/gguf.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  auto contents = ParseGguf(bytes, size, "fuzz.gguf");
  if (!contents.ok()) {
    if (contents.status().message().empty()) fuzz::Fail("error without a message");
    return 0;
  }
  unsigned sum = 0;
  for (const GgufTensor& t : contents->tensors) {
    const auto type = GgmlTypeSizeOf(t.ggml_type);
    if (!type) fuzz::Fail("tensor '" + t.name + "' of an unknown type was accepted");
    uint64_t numel = 1;
    for (uint64_t d : t.ne) numel *= d;
    if (numel / type->block * type->block_bytes != t.nbytes)
      fuzz::Fail("tensor '" + t.name + "': nbytes does not match its shape");
    if (t.nbytes > 0 && (t.data < bytes || t.data + t.nbytes > bytes + size))
      fuzz::Fail("tensor '" + t.name + "' is outside the file");
    for (size_t i = 0; i < t.nbytes; ++i) sum += static_cast<unsigned>(t.data[i]);
  }
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
