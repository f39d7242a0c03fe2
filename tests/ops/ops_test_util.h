// Helpers for the op tests: a fixture that runs each test on every compiled Highway
// target, seeded random data with misaligned starts, and an element-wise tolerance check.
#pragma once

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace oko::test {

// Tail-breaking lengths for every vector width N = 4, 8, 16 f32 lanes (0, 1, N-1, N, N+1,
// 2N+3) plus real Qwen3 dims.
inline const std::vector<size_t> kTailSizes = {0,  1,  3,  4,  5,  7,   8,   9,    11,  15,
                                               16, 17, 19, 35, 64, 128, 1024, 3072};

// Mocks the supported targets so that HWY_DYNAMIC_DISPATCH runs the target under test.
class TargetTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

#define OKO_INSTANTIATE_ON_ALL_TARGETS(Suite)                                             \
  INSTANTIATE_TEST_SUITE_P(Targets, Suite,                                                \
                           ::testing::ValuesIn(::hwy::SupportedAndGeneratedTargets()),     \
                           [](const ::testing::TestParamInfo<int64_t>& info) {             \
                             return std::string(::hwy::TargetName(info.param));            \
                           })

// n values uniform in [lo, hi) that start `offset` elements into the buffer, so the data
// is misaligned for offset != 0. data() points at the first value.
template <typename T = float>
class Buffer {
 public:
  Buffer(size_t n, size_t offset) : storage_(n + offset + 1), offset_(offset), n_(n) {}
  T* data() { return storage_.data() + offset_; }
  const T* data() const { return storage_.data() + offset_; }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  size_t size() const { return n_; }
  std::vector<T> ToVector() const { return std::vector<T>(data(), data() + n_); }

 private:
  std::vector<T> storage_;
  size_t offset_, n_;
};

inline Buffer<float> RandomFloats(size_t n, uint32_t seed, size_t offset = 0, float lo = -1.0f,
                                  float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  Buffer<float> b(n, offset);
  for (size_t i = 0; i < n; ++i) b[i] = u(rng);
  return b;
}

// Checks |got[i] - want[i]| <= tol[i] for every i; reports the first few failures.
inline void ExpectWithin(const float* got, const std::vector<double>& want,
                         const std::vector<double>& tol, const std::string& what) {
  int failures = 0;
  for (size_t i = 0; i < want.size() && failures < 5; ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= tol[i])) {  // also catches NaN
      ADD_FAILURE() << what << ": i=" << i << " got " << got[i] << " want " << want[i]
                    << " err " << err << " tol " << tol[i];
      ++failures;
    }
  }
}

// Tolerance rel * |want| + abs for every element.
inline void ExpectNear(const float* got, const std::vector<double>& want, double rel,
                       double abs, const std::string& what) {
  std::vector<double> tol(want.size());
  for (size_t i = 0; i < want.size(); ++i) tol[i] = rel * std::fabs(want[i]) + abs;
  ExpectWithin(got, want, tol, what);
}

}  // namespace oko::test
