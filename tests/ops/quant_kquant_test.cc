#include "ops/quant_kquant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

class QuantKQuantTest : public test::TargetTest {};

// The SIMD search equals the scalar reference bit for bit, on random and edge super-blocks.
TEST_P(QuantKQuantTest, SimdSearchMatchesScalarBitForBit) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int c = 0; c < 200; ++c) {
    std::vector<float> x(256), w(256);
    for (int i = 0; i < 256; ++i) {
      switch (c % 5) {
        case 0: x[i] = g(rng) * 0.02f; break;
        case 1: x[i] = std::fabs(g(rng)) + 0.5f; break;     // all positive
        case 2: x[i] = (i / 32) % 2 ? 0.0f : -0.25f; break;  // flat sub-blocks
        case 3: x[i] = i % 37 == 0 ? 8.0f * g(rng) : 0.01f * g(rng); break;
        default: x[i] = -std::fabs(g(rng)); break;          // all negative
      }
    }
    for (int j = 0; j < 8; ++j) {
      float s2 = 0;
      for (int l = 0; l < 32; ++l) s2 += x[32 * j + l] * x[32 * j + l];
      for (int l = 0; l < 32; ++l) w[32 * j + l] = std::sqrt(s2 / 32) + std::fabs(x[32 * j + l]);
    }
    for (int nmax : {15, 31}) {
      const float rmin = nmax == 15 ? -1.0f : -0.5f;
      const int nstep = nmax == 15 ? 20 : 15;
      float s1[8], m1[8], s2[8], m2[8];
      uint8_t L1[256], L2[256];
      KQuantSearch(nmax, rmin, 0.1f, nstep, x.data(), w.data(), s1, m1, L1);
      KQuantSearchScalar(nmax, rmin, 0.1f, nstep, x.data(), w.data(), s2, m2, L2);
      for (int j = 0; j < 8; ++j) {
        ASSERT_EQ(std::memcmp(&s1[j], &s2[j], 4), 0)
            << "case " << c << " nmax " << nmax << " j " << j << ": " << s1[j] << " vs " << s2[j];
        ASSERT_EQ(std::memcmp(&m1[j], &m2[j], 4), 0)
            << "case " << c << " nmax " << nmax << " j " << j << ": " << m1[j] << " vs " << m2[j];
      }
      ASSERT_EQ(std::memcmp(L1, L2, sizeof L1), 0) << "case " << c << " nmax " << nmax;
    }
  }
}

TEST_P(QuantKQuantTest, Q6KSearchMatchesScalarBitForBit) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int c = 0; c < 300; ++c) {
    std::vector<float> x(256);
    for (int i = 0; i < 256; ++i) {
      switch (c % 5) {
        case 0: x[i] = g(rng) * 0.02f; break;
        case 1: x[i] = std::fabs(g(rng)) + 0.5f; break;
        case 2: x[i] = (i / 16) % 2 ? 0.0f : -0.25f; break;  // zero sub-blocks
        case 3: x[i] = i % 37 == 0 ? 8.0f * g(rng) : 0.01f * g(rng); break;
        default: x[i] = -std::fabs(g(rng)); break;
      }
    }
    float s1[16], s2[16];
    int8_t L1[256], L2[256];
    Q6KSearch(x.data(), s1, L1);
    Q6KSearchScalar(x.data(), s2, L2);
    for (int j = 0; j < 16; ++j)
      ASSERT_EQ(std::memcmp(&s1[j], &s2[j], 4), 0) << "case " << c << " j " << j << ": " << s1[j]
                                                   << " vs " << s2[j];
    ASSERT_EQ(std::memcmp(L1, L2, sizeof L1), 0) << "case " << c;
  }
}

OKO_INSTANTIATE_ON_ALL_TARGETS(QuantKQuantTest);

}  // namespace
}  // namespace oko
