#include "ops/quant_matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/ops/ops_test_util.h"

namespace oko {
namespace {

using test::Buffer;
using test::RandomFloats;

// A random [N, K] weight in `type` (made by QuantizeRow), at an offset that is 2-byte but
// not vector aligned (blocks begin with an f16 scale: ops/quant_formats.h), and its exact
// values (DequantizeRow, the reference); with interleave > 1, view is the weight in
// groups of that many rows (InterleaveRows, from the same offset) and row_major the rows.
struct QWeights {
  QWeights(QuantType type, size_t N, size_t K, uint32_t seed, size_t offset, size_t interleave = 1)
      : values(N * K) {
    const size_t rb = QuantRowBytes(type, K);
    bytes.resize(N * rb + offset + 1);
    uint8_t* start = bytes.data() + offset;
    const auto src = RandomFloats(N * K, seed, 0, -0.3f, 0.5f);
    for (size_t n = 0; n < N; ++n) {
      QuantizeRow(type, src.data() + n * K, start + n * rb, K);
      DequantizeRow(type, start + n * rb, values.data() + n * K, K);
    }
    row_major = view = WeightView{type, reinterpret_cast<const std::byte*>(start), N, K, N * rb};
    if (interleave > 1) {
      interleaved.resize(N * rb + offset + 1);
      view = InterleaveRows(row_major, interleave, reinterpret_cast<std::byte*>(interleaved.data() + offset));
    }
  }
  std::vector<float> values;
  std::vector<uint8_t> bytes, interleaved;
  WeightView view, row_major;
};

// The formats InterleaveRows takes: every block format.
constexpr QuantType kInterleavable[] = {QuantType::kQ8_0, QuantType::kQ4_0, QuantType::kQ4_1, QuantType::kQ5_0,
                                        QuantType::kQ5_1, QuantType::kQ4_K, QuantType::kQ5_K, QuantType::kQ6_K};

std::vector<QuantType> AllTypes() {
  std::vector<QuantType> t;
  for (const auto& i : kQuantTypes) t.push_back(i.type);
  return t;
}

std::vector<size_t> Ks(QuantType t) {
  if (QuantBlock(t) == 256) return {256, 512, 768};
  if (QuantBlock(t) == 32) return {32, 64, 96, 288, 544};
  return {32, 64, 288};
}

class QuantMatMulTest : public test::TargetTest {};

TEST_P(QuantMatMulTest, DequantizeMatchesReferenceBitForBit) {
  for (QuantType type : AllTypes()) {
    for (size_t K : Ks(type)) {
      const size_t N = 5;
      const QWeights w(type, N, K, static_cast<uint32_t>(K * 3 + 1), 2 * (1 + K % 3));
      std::vector<float> got(2 * K);
      DequantizeWeightRows(w.view, 2, 4, got.data());
      EXPECT_EQ(std::memcmp(got.data(), w.values.data() + 2 * K, 2 * K * 4), 0)
          << QuantTypeName(type) << " K=" << K;
    }
  }
}

void RunCase(QuantType type, size_t M, size_t K, size_t N, bool bias_on, bool gemv, size_t interleave = 1) {
  const uint32_t seed = static_cast<uint32_t>(K * 131 + N * 7 + M);
  const QWeights w(type, N, K, seed, 2 * (1 + K % 3), interleave);
  const size_t x_stride = K + 3, y_stride = N + 5;
  Buffer<float> x = RandomFloats(M * x_stride, seed + 1, 3);
  Buffer<float> bias = RandomFloats(N, seed + 2, 1);
  Buffer<float> y(M * y_stride, 2);
  for (size_t i = 0; i < y.size(); ++i) y[i] = -12345.0f;
  const QuantMatMulArgs a{x.data(), x_stride, w.view, bias_on ? bias.data() : nullptr,
                          y.data(), y_stride, M};
  const size_t split = N / 3;
  for (auto [b, e] : {std::pair{size_t{0}, split}, std::pair{split, N}}) {
    if (gemv) GemvQuantRows(a, b, e);
    else GemmQuantRows(a, b, e);
  }
  const std::string what = std::string(QuantTypeName(type)) + " M=" + std::to_string(M) +
                           " K=" + std::to_string(K) + " N=" + std::to_string(N) +
                           " interleave=" + std::to_string(interleave);
  for (size_t m = 0; m < M; ++m) {
    std::vector<double> want, tol;
    for (size_t n = 0; n < N; ++n) {
      double s = bias_on ? bias[n] : 0.0, mag = 0.0;
      for (size_t k = 0; k < K; ++k) {
        const double p = double(w.values[n * K + k]) * x[m * x_stride + k];
        s += p;
        mag += std::fabs(p);
      }
      want.push_back(s);
      tol.push_back(1e-5 * mag + 1e-6 * std::fabs(s) + 1e-30);
    }
    test::ExpectWithin(y.data() + m * y_stride, want, tol, what);
    for (size_t n = N; n < y_stride && m * y_stride + n < y.size(); ++n)
      ASSERT_EQ(y[m * y_stride + n], -12345.0f) << what << " padding touched";
  }
}

TEST_P(QuantMatMulTest, GemvMatchesReference) {
  for (QuantType type : AllTypes())
    for (size_t K : Ks(type))
      for (size_t N : {1, 4, 17}) RunCase(type, 1, K, N, N % 2 == 1, true);
}

TEST_P(QuantMatMulTest, GemmMatchesReference) {
  for (QuantType type : AllTypes())
    for (size_t K : Ks(type))
      for (size_t M : {1, 2, 3, 4, 5, 9}) RunCase(type, M, K, 7, M % 2 == 0, false);
}

// The interleaved layout is a permutation of the row-major bytes: any range of rows
// comes back as it was, and every kernel reads it (the int8 ones below).
TEST_P(QuantMatMulTest, InterleavedRowsComeBackAndMultiplyExactly) {
  for (QuantType type : kInterleavable) {
    const size_t N = 48, K = 512, rb = QuantRowBytes(type, K);
    const QWeights w(type, N, K, 21, 2, 16);
    ASSERT_EQ(w.view.interleave, 16u);
    ASSERT_NE(std::memcmp(w.view.data, w.row_major.data, N * rb), 0) << QuantTypeName(type);
    for (auto [b, e] : {std::pair{0, 48}, std::pair{5, 21}, std::pair{16, 32}, std::pair{47, 48}}) {
      std::vector<std::byte> back(static_cast<size_t>(e - b) * rb);
      CopyRowMajorRows(w.view, b, e, back.data());
      EXPECT_EQ(std::memcmp(back.data(), w.row_major.data + b * rb, back.size()), 0)
          << QuantTypeName(type) << " rows " << b << ".." << e;
      std::vector<float> got(static_cast<size_t>(e - b) * K);
      DequantizeWeightRows(w.view, b, e, got.data());
      EXPECT_EQ(std::memcmp(got.data(), w.values.data() + b * K, got.size() * 4), 0) << QuantTypeName(type);
    }
    for (size_t M : {1, 3}) RunCase(type, M, K, 32, true, M == 1, 16);
  }
  EXPECT_FALSE(CanInterleave(QWeights(QuantType::kBF16, 16, 64, 1, 2).view, 16));  // no blocks
  EXPECT_FALSE(CanInterleave(QWeights(QuantType::kQ4_K, 24, 256, 1, 2).view, 16));  // 24 rows
  EXPECT_FALSE(CanInterleave(QWeights(QuantType::kQ4_K, 32, 256, 1, 2, 16).view, 16));  // already
  EXPECT_TRUE(CanInterleave(QWeights(QuantType::kQ4_K, 32, 256, 1, 2).view, 16));
}

// The vectorized activation quantizers give exactly the scalar references' bytes:
// QuantizeRow(kQ8_0) (roundf: halves away from zero) and QuantizeActivationsQ8K (ties to
// even), including values that land exactly on a half and blocks of zeros.
TEST_P(QuantMatMulTest, Int8ActivationsMatchScalarReferences) {
  const size_t K = 1024;
  std::vector<float> x = RandomFloats(K, 17, 0, -2.0f, 3.0f).ToVector();
  for (size_t j = 0; j < 32; ++j) x[64 + j] = 0.0f;
  // A block whose max is 127: every x / d is x itself, so k + 0.5 is an exact tie.
  for (size_t j = 0; j < 32; ++j) x[128 + j] = j == 0 ? 127.0f : (j % 2 ? 1.0f : -1.0f) * (0.5f + j);
  for (QuantType type : {QuantType::kQ8_0, QuantType::kQ4_K, QuantType::kQ5_K, QuantType::kQ6_K}) {
    std::vector<uint8_t> got(Int8ActivationBytes(type, K));
    QuantizeInt8Activations(type, x.data(), K, got.data());
    if (QuantBlock(type) == 256) {
      std::vector<BlockQ8K> want(K / 256);
      QuantizeActivationsQ8K(x.data(), want.data(), K);
      ASSERT_EQ(got.size(), K / 256 * sizeof(ActQ8K));
      for (size_t i = 0; i < K / 256; ++i) {
        if (type != QuantType::kQ6_K) PairSubBlocks(want[i].qs);
        const auto& a = reinterpret_cast<const ActQ8K*>(got.data())[i];
        EXPECT_EQ(std::memcmp(a.qs, want[i].qs, 256), 0) << QuantTypeName(type) << " block " << i;
        EXPECT_EQ(a.d, want[i].d) << QuantTypeName(type) << " block " << i;
        for (size_t g = 0; g < 16; ++g) {
          EXPECT_EQ(a.sums[g], want[i].sums[g]) << QuantTypeName(type) << " block " << i << " sum " << g;
          // Q6_K: d * each sum of 16; Q4_K/Q5_K: d * each sum of 32, then zeros.
          const int sum = type == QuantType::kQ6_K ? want[i].sums[g]
                          : g < 8                  ? want[i].sums[2 * g] + want[i].sums[2 * g + 1]
                                                   : 0;
          EXPECT_EQ(a.dsums[g], want[i].d * static_cast<float>(sum)) << QuantTypeName(type) << " " << i << " " << g;
        }
      }
      continue;
    }
    std::vector<uint8_t> want_bytes(QuantRowBytes(QuantType::kQ8_0, K));
    QuantizeRow(QuantType::kQ8_0, x.data(), want_bytes.data(), K);
    const auto* want = reinterpret_cast<const BlockQ8_0*>(want_bytes.data());
    ASSERT_EQ(got.size(), 2 * K / 32 * sizeof(float) + K / 4 * sizeof(int32_t) + K);
    const auto* sums = reinterpret_cast<const float*>(got.data());
    const auto* offsets = reinterpret_cast<const int32_t*>(sums + 2 * K / 32);
    const auto* qs = reinterpret_cast<const int8_t*>(offsets + K / 4);
    EXPECT_EQ(qs[4 * 32 + 1], 2);   // 1.5 rounds away from zero
    EXPECT_EQ(qs[4 * 32 + 2], -3);  // -2.5 too
    for (size_t b = 0; b < K / 32; ++b) {
      EXPECT_EQ(std::memcmp(qs + 32 * b, want[b].qs, 32), 0) << "Q8_0 block " << b;
      int q = 0;
      for (int j = 0; j < 32; ++j) q += want[b].qs[j];
      EXPECT_EQ(sums[K / 32 + b], F16ToF32(want[b].d)) << b;
      EXPECT_EQ(sums[b], F16ToF32(want[b].d) * static_cast<float>(q)) << b;
      for (int j = 0; j < 32; j += 4) {
        const int four = want[b].qs[j] + want[b].qs[j + 1] + want[b].qs[j + 2] + want[b].qs[j + 3];
        EXPECT_EQ(offsets[8 * b + j / 4], -128 * four) << b;
      }
    }
  }
}

// Matrices that read one x share its int8 encoding (engine/linear.cc PrepareRows) exactly
// where SameInt8Activations says the bytes are the same.
TEST_P(QuantMatMulTest, SameInt8ActivationsMeansSameBytes) {
  const size_t K = 512;
  const std::vector<float> x = RandomFloats(K, 23, 0, -2.0f, 3.0f).ToVector();
  for (QuantType a : kInterleavable) {
    for (QuantType b : kInterleavable) {
      std::vector<uint8_t> xa(Int8ActivationBytes(a, K)), xb(Int8ActivationBytes(b, K));
      QuantizeInt8Activations(a, x.data(), K, xa.data());
      QuantizeInt8Activations(b, x.data(), K, xb.data());
      EXPECT_EQ(SameInt8Activations(a, b), xa == xb) << QuantTypeName(a) << " " << QuantTypeName(b);
    }
  }
}

TEST(PairSubBlocks, PutsSubBlockJAtPairedPosition) {
  BlockQ8K b{};
  for (int v = 0; v < 256; ++v) b.qs[v] = static_cast<int8_t>(v / 32);
  PairSubBlocks(b.qs);
  const int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int pos = 0; pos < 8; ++pos) {
    EXPECT_EQ(b.qs[32 * pos], order[pos]);
    EXPECT_EQ(b.qs[32 * pos + 31], order[pos]);
    EXPECT_EQ(PairedPosition(static_cast<size_t>(order[pos])), static_cast<size_t>(pos));
  }
}

// kInt8: against the f64 product of the dequantized weights with the activations as the
// kernel rounds them (Q8_0 blocks of 32, or BlockQ8K), on targets that run it; exact
// elsewhere. Also checks the int8 result stays near the exact one (8-bit activations).
void ExpectInt8MatchesRoundedActivations(QuantType type, size_t K, size_t N, size_t interleave) {
  const QWeights w(type, N, K, static_cast<uint32_t>(K + 7), 2, interleave);
  Buffer<float> x = RandomFloats(K, static_cast<uint32_t>(K), 1);
  Buffer<float> bias = RandomFloats(N, 3, 0);
  std::vector<float> xr(K);
  const bool int8 = QuantInt8Supported(type);
  if (int8 && QuantBlock(type) == 256) {
    std::vector<BlockQ8K> xq(K / 256);
    QuantizeActivationsQ8K(x.data(), xq.data(), K);
    for (size_t k = 0; k < K; ++k) xr[k] = xq[k / 256].qs[k % 256] * xq[k / 256].d;
  } else if (int8) {
    std::vector<uint8_t> xq(QuantRowBytes(QuantType::kQ8_0, K));
    QuantizeRow(QuantType::kQ8_0, x.data(), xq.data(), K);
    DequantizeRow(QuantType::kQ8_0, xq.data(), xr.data(), K);
  } else {
    xr = x.ToVector();
  }
  std::vector<float> y(N, -1.0f);
  QuantMatMulArgs a{x.data(), K, w.view, bias.data(), y.data(), N, 1, QuantCompute::kInt8};
  GemvQuantRows(a, 0, 7);
  GemvQuantRows(a, 7, N);
  // Activations quantized once by the caller: the same result.
  std::vector<uint8_t> xq(Int8ActivationBytes(type, K));
  QuantizeInt8Activations(type, x.data(), K, xq.data());
  std::vector<float> y2(N, -2.0f);
  QuantMatMulArgs a2 = a;
  a2.y = y2.data();
  a2.xq = xq.data();
  GemvQuantRows(a2, 0, N);
  EXPECT_EQ(std::memcmp(y.data(), y2.data(), N * 4), 0) << QuantTypeName(type);
  std::vector<double> want, tol;
  for (size_t n = 0; n < N; ++n) {
    double s = bias[n], mag = 0, exact = bias[n];
    for (size_t k = 0; k < K; ++k) {
      s += double(w.values[n * K + k]) * xr[k];
      exact += double(w.values[n * K + k]) * x[k];
      mag += std::fabs(double(w.values[n * K + k]) * xr[k]);
    }
    want.push_back(s);
    tol.push_back(1e-5 * mag + 1e-6);
    EXPECT_NEAR(y[n], exact, 0.02 * mag + 1e-6) << "8-bit activations too far from exact";
  }
  test::ExpectWithin(y.data(), want, tol,
                     std::string(QuantTypeName(type)) + " int8 K=" + std::to_string(K) +
                         " interleave=" + std::to_string(interleave));
}

TEST_P(QuantMatMulTest, GemvInt8MatchesRoundedActivations) {
  for (QuantType type : {QuantType::kQ8_0, QuantType::kQ4_0, QuantType::kQ4_1, QuantType::kQ5_0,
                         QuantType::kQ5_1, QuantType::kQ4_K, QuantType::kQ5_K, QuantType::kQ6_K}) {
    // Odd block counts (96, 288) take the 512-bit Q8_0 kernel's half-register tail.
    const std::vector<size_t> ks = QuantBlock(type) == 32 ? std::vector<size_t>{96, 256, 288, 1024}
                                                          : std::vector<size_t>{256, 512, 1024};
    for (size_t K : ks) ExpectInt8MatchesRoundedActivations(type, K, 19, 1);
  }
  // 48 rows in groups of 16, the first call's range ending inside a group; groups of an
  // odd number of 32-blocks (96, 288) start off the 64-byte lines.
  for (QuantType type : kInterleavable) {
    const std::vector<size_t> ks = QuantBlock(type) == 32 ? std::vector<size_t>{96, 256, 288, 1024}
                                                          : std::vector<size_t>{256, 1024};
    for (size_t K : ks) ExpectInt8MatchesRoundedActivations(type, K, 48, 16);
  }
}

// Each of M rows of a GemmQuantRows kInt8 call equals GemvQuantRows of that row alone.
void ExpectGemmInt8RowsEqualGemvAlone(QuantType type, size_t K, size_t interleave = 1) {
  const size_t N = interleave > 1 ? 32 : 13, x_stride = K + 5, y_stride = N + 3;
  const QWeights w(type, N, K, 11, 2, interleave);
  Buffer<float> bias = RandomFloats(N, 5, 0);
  for (size_t M : {2, 3, 4, 5, 8, 9, 16}) {
    const std::string what = std::string(QuantTypeName(type)) + " K=" + std::to_string(K) + " M=" + std::to_string(M);
    Buffer<float> x = RandomFloats(M * x_stride, static_cast<uint32_t>(M + 100), 1);
    std::vector<float> y(M * y_stride, -7.0f), alone(N);
    QuantMatMulArgs a{x.data(), x_stride, w.view, bias.data(), y.data(), y_stride, M,
                      QuantCompute::kInt8};
    GemmQuantRows(a, 0, 6);
    GemmQuantRows(a, 6, N);
    const size_t xb = Int8ActivationBytes(type, K);
    std::vector<uint8_t> xq(M * xb);
    for (size_t m = 0; m < M; ++m) QuantizeInt8Activations(type, x.data() + m * x_stride, K, xq.data() + m * xb);
    std::vector<float> y2(M * y_stride, -7.0f);
    QuantMatMulArgs a2 = a;
    a2.y = y2.data();
    a2.xq = xq.data();
    GemmQuantRows(a2, 0, N);
    EXPECT_EQ(std::memcmp(y.data(), y2.data(), y.size() * 4), 0) << what << ": caller-quantized";
    for (size_t m = 0; m < M; ++m) {
      QuantMatMulArgs one{x.data() + m * x_stride, K, w.view, bias.data(), alone.data(), N, 1,
                          QuantCompute::kInt8};
      GemvQuantRows(one, 0, N);
      EXPECT_EQ(std::memcmp(alone.data(), y.data() + m * y_stride, N * 4), 0) << what << " row " << m;
      for (size_t n = N; n < y_stride; ++n) ASSERT_EQ(y[m * y_stride + n], -7.0f) << what << " padding";
    }
  }
}

// kInt8 over M rows (batched decode), on targets that run it: every row bit for bit what
// GemvQuantRows gives it alone, with the activations quantized by the kernel or once by
// the caller, strides respected and the padding between y rows untouched. (Elsewhere
// kInt8 is exact, and GemmMatchesReference covers it.)
TEST_P(QuantMatMulTest, GemmInt8RowsEqualGemvAlone) {
  for (QuantType type : {QuantType::kQ8_0, QuantType::kQ4_0, QuantType::kQ4_1, QuantType::kQ5_0,
                         QuantType::kQ5_1, QuantType::kQ4_K, QuantType::kQ5_K, QuantType::kQ6_K}) {
    if (!QuantInt8Supported(type)) continue;
    for (size_t K : {size_t{512}, QuantBlock(type) == 32 ? size_t{288} : size_t{768}}) {
      ExpectGemmInt8RowsEqualGemvAlone(type, K);
    }
  }
  for (QuantType type : kInterleavable)
    if (QuantInt8Supported(type)) ExpectGemmInt8RowsEqualGemvAlone(type, 768, 16);
}

OKO_INSTANTIATE_ON_ALL_TARGETS(QuantMatMulTest);

}  // namespace
}  // namespace oko
