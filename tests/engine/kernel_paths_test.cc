// The kernel report of bench and info: which kernel each matmul runs, grouped.
#include "engine/kernel_paths.h"

#include <gtest/gtest.h>

#include "ops/gemm_packed.h"
#include "ops/quant_matmul.h"

namespace oko {
namespace {

// A two-layer model's matrices: q and down per layer, lm_head; down in q6_k in layer 1
// only (as q4_k_m gives some layers more bits).
std::vector<WeightSite> MixedSites(QuantType base, ComputeMode mode) {
  std::vector<WeightSite> sites;
  for (int64_t l = 0; l < 2; ++l) {
    sites.push_back({Site::kQProj, l, "q", base, mode, 1024, 1024});
    sites.push_back({Site::kDownProj, l, "down", l == 1 ? QuantType::kQ6_K : base, mode, 1024, 3072});
  }
  sites.push_back({Site::kLmHead, -1, "lm_head.weight", QuantType::kQ6_K, mode, 151936, 1024});
  return sites;
}

TEST(KernelPaths, PlainWeightsRunOneKernelPerPhase) {
  std::vector<WeightSite> sites;
  for (Site s : {Site::kQProj, Site::kUpProj, Site::kLmHead})
    sites.push_back({s, s == Site::kLmHead ? -1 : 0, "w", QuantType::kBF16, ComputeMode::kF32, 64, 64});
  const std::vector<PathGroup> decode = DescribePaths(sites, 1, Phase::kDecode);
  ASSERT_EQ(decode.size(), 1u);
  EXPECT_EQ(decode[0].kernel, "BF16 GEMV, f32 FMA");
  EXPECT_EQ(decode[0].ops, (std::vector<std::string>{"attn.q_proj", "mlp.up_proj", "lm_head"}));
  EXPECT_EQ(DescribePaths(sites, 4, Phase::kDecode)[0].kernel, "BF16 4-row GEMV, f32 FMA");
  if (PackedGemmF32Supported()) {
    EXPECT_EQ(DescribePaths(sites, 256, Phase::kPrefill)[0].kernel, "BF16 packed GEMM, f32 FMA");
  }
}

TEST(KernelPaths, AMixedQuantizationCountsTheLayersOfEachKernel) {
  if (!QuantInt8Supported(QuantType::kQ4_K) || !QuantInt8Supported(QuantType::kQ6_K))
    GTEST_SKIP() << "no int8 kernels on this target";
  const std::vector<WeightSite> sites = MixedSites(QuantType::kQ4_K, ComputeMode::kBf16);
  const std::vector<PathGroup> decode = DescribePaths(sites, 1, Phase::kDecode);
  ASSERT_EQ(decode.size(), 2u);
  EXPECT_EQ(decode[0].kernel, "Q4_K GEMV, int8 dot on 8-bit x");
  EXPECT_EQ(decode[0].ops, (std::vector<std::string>{"attn.q_proj", "mlp.down_proj (1 of 2)"}));
  EXPECT_EQ(decode[1].kernel, "Q6_K GEMV, int8 dot on 8-bit x");
  EXPECT_EQ(decode[1].ops, (std::vector<std::string>{"mlp.down_proj (1 of 2)", "lm_head"}));
  // Q4_K in the interleaved layout (QuantInterleaveRows) says so.
  std::vector<WeightSite> interleaved = sites;
  for (WeightSite& s : interleaved) s.interleave = s.type == QuantType::kQ4_K ? 16 : 1;
  EXPECT_EQ(DescribePaths(interleaved, 4, Phase::kDecode)[0].kernel,
            "Q4_K 4-row GEMV, int8 dot on 8-bit x, 16 rows interleaved");
  EXPECT_EQ(DescribePaths(interleaved, 4, Phase::kDecode)[1].kernel, "Q6_K 4-row GEMV, int8 dot on 8-bit x");
  // The exact mode dequantizes; prefill's large batches go through slabs.
  EXPECT_EQ(DescribePaths(MixedSites(QuantType::kQ4_K, ComputeMode::kF32), 1, Phase::kDecode)[0].kernel,
            "Q4_K GEMV, dequantized to f32 FMA");
  if (PackedGemmF32Supported()) {
    EXPECT_EQ(DescribePaths(sites, 256, Phase::kPrefill)[0].kernel,
              PackedGemmBf16Supported() ? "Q4_K slabs dequantized to bf16, packed GEMM, bf16 dot"
                                        : "Q4_K slabs dequantized, packed f32 GEMM");
    EXPECT_EQ(DescribePaths(MixedSites(QuantType::kQ4_K, ComputeMode::kF32), 256, Phase::kPrefill)[0].kernel,
              "Q4_K slabs dequantized, packed f32 GEMM");
  }
}

// The compute roofline adds each matrix's 2 N K ops at its kernel's peak: f32 weights in
// the f32 mode run f32 FMAs at any M; without a measured peak there is no roofline.
TEST(KernelPaths, ComputeRooflineTimesEveryMatrixAtItsKernelsPeak) {
  MachineLimits limits;
  limits.f32_gflops = 100;
  limits.bf16_gflops = 200;
  limits.int8_gops = 400;
  std::vector<WeightSite> sites;
  sites.push_back({Site::kQProj, 0, "q", QuantType::kF32, ComputeMode::kF32, 1000, 500});
  sites.push_back({Site::kLmHead, -1, "lm_head.weight", QuantType::kF32, ComputeMode::kF32, 4000, 500});
  const ComputeRoofline f32 = DecodeComputeRoofline(sites, 4, limits);
  EXPECT_DOUBLE_EQ(f32.tok_s, 100e9 / (2.0 * 5000 * 500));  // 20000 tok/s
  EXPECT_EQ(f32.arithmetic, "f32 FMA");
  limits.f32_gflops = 0;
  EXPECT_EQ(DecodeComputeRoofline(sites, 4, limits).tok_s, 0.0);
}

TEST(KernelPaths, ComputeRooflineOfAMixedQuantizationUsesTheInt8Peak) {
  if (!QuantInt8Supported(QuantType::kQ4_K) || !QuantInt8Supported(QuantType::kQ6_K))
    GTEST_SKIP() << "no int8 kernels on this target";
  MachineLimits limits;
  limits.f32_gflops = 100;
  limits.int8_gops = 400;
  const std::vector<WeightSite> sites = MixedSites(QuantType::kQ4_K, ComputeMode::kBf16);
  double ops = 0;
  for (const WeightSite& s : sites) ops += 2.0 * static_cast<double>(s.rows * s.cols);
  const ComputeRoofline int8 = DecodeComputeRoofline(sites, 8, limits);
  EXPECT_DOUBLE_EQ(int8.tok_s, 400e9 / ops);
  EXPECT_EQ(int8.arithmetic, "int8 dot");
  // The exact mode dequantizes to f32 FMAs.
  const ComputeRoofline exact = DecodeComputeRoofline(MixedSites(QuantType::kQ4_K, ComputeMode::kF32), 8, limits);
  EXPECT_DOUBLE_EQ(exact.tok_s, 100e9 / ops);
  EXPECT_EQ(exact.arithmetic, "f32 FMA");
  // bf16 q and down beside the int8 lm_head: each at its own peak.
  std::vector<WeightSite> mixed = sites;
  for (WeightSite& s : mixed)
    if (s.site != Site::kLmHead) s.type = QuantType::kF32;
  mixed[0].mode = mixed[1].mode = mixed[2].mode = mixed[3].mode = ComputeMode::kF32;
  const ComputeRoofline both = DecodeComputeRoofline(mixed, 8, limits);
  EXPECT_DOUBLE_EQ(both.tok_s, 1.0 / ((ops - 2.0 * 151936 * 1024) / 100e9 + 2.0 * 151936 * 1024 / 400e9));
  EXPECT_EQ(both.arithmetic, "mixed");
}

TEST(KernelPaths, FormatsOneLinePerKernelUnderALabel) {
  const std::vector<PathGroup> groups{{"a", {"x", "y"}}, {"bb", {"z"}}};
  EXPECT_EQ(FormatPaths("decode ", groups), "decode a: x, y\n       bb: z\n");
  EXPECT_EQ(PathsToJson(groups).dump(), R"({"a":["x","y"],"bb":["z"]})");
}

}  // namespace
}  // namespace oko
