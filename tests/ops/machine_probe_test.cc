#include "ops/machine_probe.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

class MachineProbeTest : public test::TargetTest {};

// The read probe's checksum is the wrapping sum of the range's u32 words, so every byte
// was read once: sizes where the streams split evenly and where a tail is left.
TEST_P(MachineProbeTest, ReadChecksumIsTheSumOfEveryWord) {
  for (size_t n : {64, 128, 384, 1024, 6 * 64 * 7, 4096 + 64 * 5, 1 << 16}) {
    std::vector<uint32_t> words(n / 4);
    for (size_t i = 0; i < words.size(); ++i) words[i] = static_cast<uint32_t>(i * 2654435761u + 12345u);
    uint32_t want = 0;
    for (uint32_t w : words) want += w;
    std::vector<uint8_t> bytes(n);
    std::memcpy(bytes.data(), words.data(), n);
    EXPECT_EQ(static_cast<uint32_t>(ReadBytesChecksum(bytes.data(), n)), want) << "n=" << n;
  }
}

// The int8 peak probe counts 12 vpdpbusd of 64 byte products (2 ops each) per
// iteration where the int8 kernels run vpdpbusd (AVX3_DL), and reports nothing elsewhere.
TEST_P(MachineProbeTest, Int8ProbeCountsItsProductsOnlyWhereTheKernelsRunVnni) {
  const double ops = DotInt8Ops(1000);
  if (GetParam() == HWY_AVX3_DL) {
    EXPECT_EQ(ops, 2.0 * 12 * 64 * 1000);
  } else {
    EXPECT_EQ(ops, 0.0);
  }
}

OKO_INSTANTIATE_ON_ALL_TARGETS(MachineProbeTest);

}  // namespace
}  // namespace oko
