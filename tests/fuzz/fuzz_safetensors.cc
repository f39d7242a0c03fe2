// libFuzzer target: a safetensors file image (u64 header length, JSON header, data).
// Whatever ParseHeader accepts must lie inside the image: every byte of every tensor is
// read here, so ASan reports any view that reaches outside the buffer.
#include <map>
#include <string>

#include "loaders/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  std::map<std::string, std::string> metadata;
  auto tensors = SafetensorsFile::ParseHeader(bytes, size, "fuzz.safetensors", &metadata);
  if (!tensors.ok()) {
    if (tensors.status().message().empty()) fuzz::Fail("error without a message");
    return 0;
  }
  unsigned sum = 0;
  for (const TensorView& t : *tensors) {
    if (static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype) != t.nbytes)
      fuzz::Fail("tensor '" + t.name + "': nbytes does not match its shape");
    if (t.nbytes > 0 && (t.data < bytes || t.data + t.nbytes > bytes + size))
      fuzz::Fail("tensor '" + t.name + "' is outside the file");
    for (size_t i = 0; i < t.nbytes; ++i) sum += static_cast<unsigned>(t.data[i]);
  }
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
