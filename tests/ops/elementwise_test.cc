#include "ops/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

class ElementwiseTest : public test::TargetTest {};

TEST_P(ElementwiseTest, AddInplace) {
  for (size_t n : test::kTailSizes) {
    test::Buffer<float> y = test::RandomFloats(n, n, 1), x = test::RandomFloats(n, n + 1, 2);
    std::vector<double> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = double{y[i]} + x[i];
    AddInplace(y.data(), x.data(), n);
    test::ExpectNear(y.data(), want, 1e-7, 0.0, "n=" + std::to_string(n));
  }
}

TEST_P(ElementwiseTest, AddScaledInplace) {
  for (size_t n : test::kTailSizes) {
    test::Buffer<float> y = test::RandomFloats(n, n, 1), x = test::RandomFloats(n, n + 1, 2);
    const float a = -0.37f;
    std::vector<double> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = double{y[i]} + double{a} * x[i];
    AddScaledInplace(y.data(), x.data(), a, n);
    test::ExpectNear(y.data(), want, 1e-6, 1e-7, "n=" + std::to_string(n));
  }
}

TEST_P(ElementwiseTest, SiluMul) {
  for (size_t n : test::kTailSizes) {
    for (int alias = 0; alias < 3; ++alias) {  // out separate, out = gate, out = up
      test::Buffer<float> gate = test::RandomFloats(n, n, 1, -30.0f, 30.0f);
      test::Buffer<float> up = test::RandomFloats(n, n + 1, 2, -2.0f, 2.0f);
      if (n > 2) gate[0] = -200.0f, gate[1] = 200.0f, gate[2] = 0.0f;  // exp range edges
      test::Buffer<float> out(n, 3);
      std::vector<double> want(n);
      for (size_t i = 0; i < n; ++i) want[i] = gate[i] / (1.0 + std::exp(-double{gate[i]})) * up[i];
      float* dst = alias == 0 ? out.data() : alias == 1 ? gate.data() : up.data();
      SiluMul(gate.data(), up.data(), dst, n);
      test::ExpectNear(dst, want, 1e-6, 1e-30, "n=" + std::to_string(n) + " alias=" + std::to_string(alias));
    }
  }
}

std::vector<double> RefSoftmax(const float* x, size_t n) {
  double max = -kInf, sum = 0.0;
  for (size_t i = 0; i < n; ++i) max = std::max(max, double{x[i]});
  std::vector<double> p(n, 0.0);
  if (max == -kInf) return p;
  for (size_t i = 0; i < n; ++i) sum += p[i] = std::exp(x[i] - max);
  for (double& v : p) v /= sum;
  return p;
}

TEST_P(ElementwiseTest, Softmax) {
  for (size_t n : test::kTailSizes) {
    test::Buffer<float> x = test::RandomFloats(n, n, 1, -20.0f, 20.0f);
    for (size_t i = 0; i < n; i += 3) x[i] = -kInf;  // masked entries
    if (n > 1) x[1] = 80.0f;                        // large logits must not overflow
    const std::vector<double> want = RefSoftmax(x.data(), n);
    SoftmaxInplace(x.data(), n);
    test::ExpectNear(x.data(), want, 2e-6, 1e-9, "n=" + std::to_string(n));
  }
}

TEST_P(ElementwiseTest, SoftmaxAllMaskedGivesZeros) {
  for (size_t n : {1, 5, 16, 33}) {
    std::vector<float> x(n, -kInf);
    SoftmaxInplace(x.data(), n);
    for (float v : x) EXPECT_EQ(v, 0.0f) << "n=" << n;
  }
}

// Every f16 and bf16 bit pattern widens exactly (NaN stays NaN).
TEST_P(ElementwiseTest, WidenRowsExact) {
  std::vector<uint16_t> bits(65536 + 5);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i * 40503u);
  for (size_t offset : {0, 1}) {
    const size_t n = bits.size() - offset;
    std::vector<float> got(n);
    Bf16ToF32Row(bits.data() + offset, got.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const float want = Bf16ToF32(bits[offset + i]);
      ASSERT_TRUE(std::isnan(want) ? std::isnan(got[i]) : got[i] == want) << "bf16 " << bits[offset + i];
    }
    F16ToF32Row(bits.data() + offset, got.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const float want = F16ToF32(bits[offset + i]);
      ASSERT_TRUE(std::isnan(want) ? std::isnan(got[i]) : got[i] == want) << "f16 " << bits[offset + i];
    }
  }
}

// Narrowing rounds to nearest even, like the scalar (PyTorch) conversions, incl. ties,
// overflow to inf, subnormals and NaN.
TEST_P(ElementwiseTest, NarrowRowsRoundToNearestEven) {
  std::vector<float> x;
  std::mt19937 rng(7);
  for (int i = 0; i < 4000; ++i) {
    uint32_t u = rng();
    if (i % 4 == 1) u = (u & 0xffff0000u) | 0x8000u;           // bf16 tie
    if (i % 4 == 2) u = (u & 0xffffe000u) | 0x1000u;           // f16 tie (normal range)
    if (i % 8 == 3) u = (u & 0x807fffffu) | (uint32_t{100 + (u >> 28)} << 23);  // f16 range
    float f;
    std::memcpy(&f, &u, 4);
    x.push_back(f);
  }
  for (float f : {0.0f, -0.0f, 65504.0f, 65520.0f, 1e-7f, 6e-8f, 3e-8f, kInf, -kInf,
                  std::numeric_limits<float>::quiet_NaN(), 3.4e38f})
    x.push_back(f);
  for (size_t n : {x.size(), x.size() - 3}) {
    std::vector<uint16_t> got(n);
    F32ToBf16Row(x.data(), got.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const uint16_t want = F32ToBf16(x[i]);
      if (std::isnan(x[i])) {
        ASSERT_TRUE(std::isnan(Bf16ToF32(got[i])));
      } else {
        ASSERT_EQ(got[i], want) << "bf16 of " << x[i];
      }
    }
    F32ToF16Row(x.data(), got.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const uint16_t want = F32ToF16(x[i]);
      if (std::isnan(x[i])) {
        ASSERT_TRUE(std::isnan(F16ToF32(got[i])));
      } else {
        ASSERT_EQ(got[i], want) << "f16 of " << x[i];
      }
    }
  }
}

OKO_INSTANTIATE_ON_ALL_TARGETS(ElementwiseTest);

}  // namespace
}  // namespace oko
