#include "ops/rms_norm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

class RmsNormTest : public test::TargetTest {};

TEST_P(RmsNormTest, MatchesReference) {
  constexpr size_t kRows = 3;
  for (size_t cols : test::kTailSizes) {
    for (bool in_place : {false, true}) {
      const size_t x_stride = cols + 2, y_stride = cols + 5;
      const uint32_t seed = static_cast<uint32_t>(cols);
      test::Buffer<float> x = test::RandomFloats(kRows * x_stride, seed, /*offset=*/1, -3.0f, 3.0f);
      test::Buffer<float> w = test::RandomFloats(cols, seed + 1, /*offset=*/3, 0.5f, 1.5f);
      test::Buffer<float> y(kRows * y_stride, /*offset=*/2);
      const float eps = 1e-6f;
      std::vector<double> want;
      for (size_t r = 0; r < kRows; ++r) {
        double ss = 0.0;
        for (size_t i = 0; i < cols; ++i) ss += double{x[r * x_stride + i]} * x[r * x_stride + i];
        const double inv = 1.0 / std::sqrt((cols ? ss / cols : 0.0) + eps);
        for (size_t i = 0; i < cols; ++i) want.push_back(x[r * x_stride + i] * inv * w[i]);
      }
      float* out = in_place ? x.data() : y.data();
      const size_t out_stride = in_place ? x_stride : y_stride;
      RmsNormRows({x.data(), x_stride, w.data(), out, out_stride, kRows, cols, eps});
      std::vector<float> got;
      for (size_t r = 0; r < kRows; ++r)
        for (size_t i = 0; i < cols; ++i) got.push_back(out[r * out_stride + i]);
      test::ExpectNear(got.data(), want, 2e-6, 1e-7,
                       "cols=" + std::to_string(cols) + (in_place ? " in place" : ""));
    }
  }
}

OKO_INSTANTIATE_ON_ALL_TARGETS(RmsNormTest);

}  // namespace
}  // namespace oko
