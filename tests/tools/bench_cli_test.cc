// `oko bench` and `oko profile` as a user runs them: the limit of each decode row is the
// lower of the bandwidth's and the compute roofline's, and says which (16 sequences of
// the tiny model are bound by the dot products wherever their peak is measured).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

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

// A profile of sequences decoded together counts every sequence's tokens, and each
// matrix's row is held to the limit that binds it: its bytes at the read bandwidth, or
// its products at its kernel's peak (one of the machine's measured arithmetics).
TEST(ProfileCli, DecodeOfSequencesTogetherIsHeldToTheLimitThatBinds) {
  for (const char* weights : {"", " --quant q8_0"}) {
    SCOPED_TRACE(weights);
    const auto r = test::RunOko("profile " + Model() + weights + " -t 1 -p 4 -n 3 --parallel 16 --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    const nlohmann::json& machine = j["machine"];
    const double read = machine["read_gbs"];
    const std::vector<double> peaks = {machine["f32_gflops"], machine["bf16_gflops"], machine["int8_gops"]};
    const nlohmann::json& decode = j["decode"];
    EXPECT_EQ(decode["tokens"], 48);
    EXPECT_EQ(decode["sequences"], 16);
    int compute_bound = 0;
    for (const nlohmann::json& op : decode["ops"]) {
      const std::string name = op["name"];
      if (name.find("_proj") == std::string::npos && name != "lm_head") continue;
      SCOPED_TRACE(name);
      const double fraction = op["limit_fraction"], gflops = op["gflops"], gbs = op["gbs"];
      if (op["bound"] == "memory") {
        EXPECT_NEAR(fraction, gbs / read, 1e-9 * fraction);
        continue;
      }
      ++compute_bound;
      EXPECT_TRUE(std::any_of(peaks.begin(), peaks.end(),
                              [&](double p) { return p > 0 && std::abs(fraction - gflops / p) <= 1e-9 * fraction; }))
          << fraction;
    }
    // 16 rows per pass: every measured dot product is slower than the bytes it reads.
    if (machine["bf16_gflops"].get<double>() > 0 && machine["int8_gops"].get<double>() > 0) EXPECT_GT(compute_bound, 0);
  }
  const auto text = test::RunOko("profile " + Model() + " -t 1 -p 4 -n 3 --parallel 3");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, testing::HasSubstr("decode of 3 sequences together: 9 tokens"));
  const auto one = test::RunOko("profile " + Model() + " -t 1 -p 4 -n 3 --json");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(nlohmann::json::parse(one.out)["decode"]["sequences"], 1);
}

}  // namespace
}  // namespace oko
