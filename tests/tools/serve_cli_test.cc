// oko serve's command line before it serves: slots that do not fit in memory (exit 2),
// an address it cannot listen on (exit 3), flag ranges (exit 1). Serving itself is
// server_test (in process) and openai_client_test (this binary, stopped by SIGTERM).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace oko {
namespace {

using ::testing::HasSubstr;

std::string Model() { return "-m '" + test::SharedPath("models/tiny-qwen3") + "'"; }

TEST(ServeCli, SlotsPastTheMachinesMemoryAreBadInput) {
  const auto r = test::RunOko("serve " + Model() + " --parallel 256 -c 100000000 --host 256.0.0.1");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--parallel 256 slots of -c 100000000 positions would need"));
}

TEST(ServeCli, AnAddressItCannotListenOnIsARuntimeError) {
  const auto r = test::RunOko("serve " + Model() + " -t 1 -c 64 --host 256.0.0.1 --port 8080");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot listen on 256.0.0.1:8080"));
}

TEST(ServeCli, FlagRangesAreUsageErrors) {
  for (const char* flag : {"--parallel 0", "--parallel 257", "--port 65536", "--queue -1"}) {
    const auto r = test::RunOko("serve " + Model() + " " + flag);
    EXPECT_EQ(r.exit_code, 1) << flag << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("oko serve: error: ")) << flag;
  }
}

}  // namespace
}  // namespace oko
