// The read probe checked against what decode itself streamed: a cached figure that a
// decode of weights larger than the caches beat is measured again.
#include "engine/machine_limits.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "tests/test_util.h"

namespace oko {
namespace {

constexpr size_t kLlc = 32u << 20;  // a Zen 4 CCD's L3

MachineLimits Reading(double read_gbs) {
  MachineLimits m;
  m.read_gbs = read_gbs;
  return m;
}

TEST(DecodeBeatsReadProbe, OnlyWeightsTheCachesCannotHoldAndOnlyPastTheMargin) {
  // 600 MB per token at 60 tok/s: 36 GB/s read, beyond 30 GB/s plus 10%.
  EXPECT_TRUE(DecodeBeatsReadProbe(Reading(30), 600e6, 60, kLlc));
  // 32.4 GB/s: within 10% of 30 (the KV bytes are an average, the timings noisy, and the
  // probe reads a little below what a prefetching decode streams: bf16 on Zen 4, 1 thread,
  // 101-105% of it).
  EXPECT_FALSE(DecodeBeatsReadProbe(Reading(30), 600e6, 54, kLlc));
  // 60 MB fits in twice the cache: decode may read from it faster than the memory.
  EXPECT_FALSE(DecodeBeatsReadProbe(Reading(30), 60e6, 5000, kLlc));
  // No cache size known, or no figure: nothing is proved.
  EXPECT_FALSE(DecodeBeatsReadProbe(Reading(30), 600e6, 60, 0));
  EXPECT_FALSE(DecodeBeatsReadProbe(Reading(0), 600e6, 60, kLlc));
}

TEST(LastLevelCacheBytes, ReadsSysfsWhereItExists) {
  if (!std::filesystem::exists("/sys/devices/system/cpu/cpu0/cache/index0/size"))
    GTEST_SKIP() << "no cache sizes in sysfs here";
  const size_t llc = LastLevelCacheBytes();
  EXPECT_GE(llc, size_t{256} << 10);
  EXPECT_LE(llc, size_t{4} << 30);
}

// The probe really runs again, and its figure replaces the cached one (in a cache of the
// test's own).
TEST(RemeasureIfDecodeBeatsProbe, MeasuresAgainOnlyWhenDecodeBeatTheFigure) {
  if (LastLevelCacheBytes() == 0) GTEST_SKIP() << "no cache sizes in sysfs here";
  ASSERT_EQ(setenv("XDG_CACHE_HOME", test::TempDir("machine_limits_cache").c_str(), 1), 0);
  ThreadPool pool(1);
  const double bytes = 40.0 * static_cast<double>(LastLevelCacheBytes());
  MachineLimits limits = Reading(0.001);  // GB/s: a figure far too low
  limits.measured_at = "2026-01-01 00:00";
  MachineLimits kept = limits;
  EXPECT_EQ(RemeasureIfDecodeBeatsProbe(pool, bytes, 0.001 * 1e9 / bytes, &kept), "");
  EXPECT_EQ(kept.measured_at, "2026-01-01 00:00");
  const std::string why = RemeasureIfDecodeBeatsProbe(pool, bytes, 1.0, &limits);
  EXPECT_NE(why.find("more than the cached 0.0"), std::string::npos) << why;
  EXPECT_GT(limits.read_gbs, 0.1);
  EXPECT_NE(limits.measured_at, "2026-01-01 00:00");
  const std::optional<MachineLimits> cached = CachedMachineLimits(pool);
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->read_gbs, limits.read_gbs);
}

}  // namespace
}  // namespace oko
