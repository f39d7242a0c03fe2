#include "ops/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

class RopeTest : public test::TargetTest {};

TEST_P(RopeTest, MatchesReference) {
  constexpr size_t kRows = 3, kHeads = 3;
  for (size_t head_dim : {2, 6, 8, 10, 16, 18, 32, 34, 64, 128, 256}) {
    const size_t half = head_dim / 2;
    const size_t x_stride = kHeads * head_dim + 3;
    test::Buffer<float> x = test::RandomFloats(kRows * x_stride, head_dim, /*offset=*/1, -2.0f, 2.0f);
    test::Buffer<float> cos(kRows * half, 2), sin(kRows * half, 3);
    for (size_t r = 0; r < kRows; ++r) {
      for (size_t i = 0; i < half; ++i) {  // HF: inv_freq = theta^(-2i/d), angle = pos * inv_freq
        const double angle = (r * 37 + 5) * std::pow(1e6, -2.0 * i / head_dim);
        cos[r * half + i] = static_cast<float>(std::cos(angle));
        sin[r * half + i] = static_cast<float>(std::sin(angle));
      }
    }
    std::vector<double> want(kRows * x_stride);
    for (size_t r = 0; r < kRows; ++r) {
      for (size_t j = 0; j < x_stride; ++j) want[r * x_stride + j] = x[r * x_stride + j];
      for (size_t h = 0; h < kHeads; ++h) {
        for (size_t i = 0; i < half; ++i) {
          const size_t lo = r * x_stride + h * head_dim + i, hi = lo + half;
          const double c = cos[r * half + i], s = sin[r * half + i];
          want[lo] = x[lo] * c - double{x[hi]} * s;
          want[hi] = x[hi] * c + double{x[lo]} * s;
        }
      }
    }
    RopeNeoxInplace({x.data(), x_stride, kRows, kHeads, head_dim, cos.data(), sin.data()});
    test::ExpectNear(x.data(), want, 1e-6, 1e-6, "head_dim=" + std::to_string(head_dim));
  }
}

OKO_INSTANTIATE_ON_ALL_TARGETS(RopeTest);

}  // namespace
}  // namespace oko
