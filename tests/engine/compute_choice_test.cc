// The compute mode `auto` picks, from the probe profiles of the CPUs oko has met.
#include "engine/compute_choice.h"

#include <gtest/gtest.h>

namespace oko {
namespace {

// Per-core register-only probes (issue reports and docs/PERFORMANCE.md).
constexpr ComputeRates kZen4{117, 235};          // bf16 dot 2x f32 FMA
constexpr ComputeRates kEmeraldRapids{175, 84};  // bf16 dot half the f32 FMA rate
constexpr ComputeRates kZen2{60, 0};             // AVX2: no bf16 dot
// A Sapphire Rapids core with AMX granted: the Emerald Rapids vector rates and oneDNN's
// AMX GEMM at ~0.45 of the tiles' 1024 FLOP/cycle at 2 GHz (no AMX machine measured yet).
constexpr ComputeRates kSapphireRapidsAmx{175, 84, 920};

TEST(ComputeChoice, ZenFourTakesTheBf16Dot) {
  const ComputeChoice c = ChooseCompute(kZen4, true, DType::kBF16);
  EXPECT_EQ(c.mode, ComputeMode::kBf16);
  EXPECT_EQ(c.why, "bf16 dot 2.0x f32 FMA");
}

TEST(ComputeChoice, XeonWhereTheBf16DotIsSlowerWidensToF32) {
  const ComputeChoice c = ChooseCompute(kEmeraldRapids, true, DType::kBF16);
  EXPECT_EQ(c.mode, ComputeMode::kF32);
  EXPECT_EQ(c.why, "bf16 dot 0.5x f32 FMA");
}

TEST(ComputeChoice, AmxTilesTakeBf16WhereTheBf16DotIsSlow) {
  const ComputeChoice c = ChooseCompute(kSapphireRapidsAmx, true, DType::kBF16);
  EXPECT_EQ(c.mode, ComputeMode::kBf16);
  EXPECT_EQ(c.why, "AMX bf16 GEMM 5.3x f32 FMA");
  // Only for bf16 weights, and only where oneDNN runs bf16.
  EXPECT_EQ(ChooseCompute(kSapphireRapidsAmx, true, DType::kF16).mode, ComputeMode::kF32);
  EXPECT_EQ(ChooseCompute(kSapphireRapidsAmx, false, DType::kBF16).mode, ComputeMode::kF32);
  // Tiles slower than the f32 FMAs (a throttled or emulated AMX) are not taken.
  EXPECT_EQ(ChooseCompute({175, 84, 200}, true, DType::kBF16).mode, ComputeMode::kF32);
}

TEST(ComputeChoice, NoBf16DotOrNoOnednnBf16MeansF32) {
  EXPECT_EQ(ChooseCompute(kZen2, false, DType::kBF16).mode, ComputeMode::kF32);
  EXPECT_EQ(ChooseCompute(kZen2, false, DType::kBF16).why, "no bf16 dot on this CPU");
  EXPECT_EQ(ChooseCompute(kZen4, false, DType::kBF16).mode, ComputeMode::kF32);
}

TEST(ComputeChoice, OnlyBf16WeightsEverTakeBf16) {
  EXPECT_EQ(ChooseCompute(kZen4, true, DType::kF16).mode, ComputeMode::kF32);
  EXPECT_EQ(ChooseCompute(kZen4, true, DType::kF32).mode, ComputeMode::kF32);
  EXPECT_EQ(ChooseCompute(kZen4, true, DType::kF16).why, "F16 weights");
}

TEST(ComputeChoice, TheThresholdIsAClearWin) {
  EXPECT_EQ(ChooseCompute({100, 125}, true, DType::kBF16).mode, ComputeMode::kF32);
  EXPECT_EQ(ChooseCompute({100, 130}, true, DType::kBF16).mode, ComputeMode::kBf16);
}

}  // namespace
}  // namespace oko
