// `oko bench` as a user runs it: the limit of each decode row is the lower of the
// bandwidth's and the compute roofline's, and says which (16 sequences of the tiny model
// are bound by the dot products wherever their peak is measured).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace oko {
namespace {

std::string Model() { return "-m '" + test::SharedPath("models/tiny-qwen3") + "'"; }

// limit = min(bandwidth, compute) where the compute roofline is measured (> 0), and
// bound names the one that binds.
void ExpectLowerLimit(double limit, const std::string& bound, double bandwidth, double compute) {
  const double want = compute > 0 ? std::min(bandwidth, compute) : bandwidth;
  EXPECT_NEAR(limit, want, 1e-9 * want);
  if (compute > 0 && compute < bandwidth) {
    EXPECT_NE(bound, "bandwidth");
  } else {
    EXPECT_EQ(bound, "bandwidth");
  }
}

TEST(BenchCli, DecodeLimitsAreTheLowerOfBandwidthAndComputeRoofline) {
  for (const char* weights : {"", " --quant q8_0"}) {
    SCOPED_TRACE(weights);
    const auto r = test::RunOko("bench " + Model() + weights + " -t 1 -p 4 -n 4 -r 1 --parallel 16 --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    const double read = j["read_bandwidth_gbs"].get<double>() * 1e9;
    const double weight = j["weight_bytes_per_token"], kv = j["kv_bytes_per_token"];
    ASSERT_GT(read, 0);
    ExpectLowerLimit(j["tg_limit_tok_s"], j["tg_bound"], read / (weight + kv), j["tg_compute_limit_tok_s"]);
    const nlohmann::json& p = j["parallel"];
    ExpectLowerLimit(p["limit_tok_s"], p["bound"], 16 * read / (weight + 16 * kv), p["compute_limit_tok_s"]);
  }
}

}  // namespace
}  // namespace oko
