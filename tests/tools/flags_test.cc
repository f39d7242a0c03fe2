// The flag parsers of tools/flags.h and tools/token_ids.h: what they accept and the
// exact messages of what they refuse.
#include "tools/flags.h"

#include <gtest/gtest.h>

#include "tools/token_ids.h"

namespace oko {
namespace {

std::string Error(const Status& s) { return s.ok() ? "ok" : s.message(); }

TEST(ParseIntFlag, AcceptsDecimalIntegersInRange) {
  EXPECT_EQ(ParseIntFlag("-n", "0", {0, 10}).value(), 0);
  EXPECT_EQ(ParseIntFlag("-n", "10", {0, 10}).value(), 10);
  EXPECT_EQ(ParseIntFlag("-c", "-5", {-10, 10}).value(), -5);
}

TEST(ParseIntFlag, RefusesWithPlainMessages) {
  EXPECT_EQ(Error(ParseIntFlag("-n", "-1", {0, 10}).status()), "-n must be at least 0 (got -1)");
  EXPECT_EQ(Error(ParseIntFlag("-n", "99999999999", {0, 2147483647}).status()),
            "-n 99999999999 is too large (max 2147483647)");
  EXPECT_EQ(Error(ParseIntFlag("-n", "99999999999999999999", {0, 10}).status()),
            "-n 99999999999999999999 is too large (max 10)");
  EXPECT_EQ(Error(ParseIntFlag("-n", "-99999999999999999999", {0, 10}).status()),
            "-n must be at least 0 (got -99999999999999999999)");
  for (const char* bad : {"abc", "", "1.5", "0x10", " 1", "+1", "1e3"})
    EXPECT_EQ(Error(ParseIntFlag("-n", bad, {0, 10}).status()), fmt::format("-n: '{}' is not an integer", bad));
  EXPECT_EQ(ParseIntFlag("-n", "-1", {0, 10}).status().code(), ExitCode::kUsage);
}

TEST(ParseUint64Flag, TakesTheWholeRange) {
  EXPECT_EQ(ParseUint64Flag("--seed", "18446744073709551615", 0).value(), UINT64_MAX);
  EXPECT_EQ(Error(ParseUint64Flag("--seed", "18446744073709551616", 0).status()),
            "--seed 18446744073709551616 is too large (max 18446744073709551615)");
  EXPECT_EQ(Error(ParseUint64Flag("--seed", "-1", 0).status()), "--seed must be at least 0 (got -1)");
}

TEST(ParseRealFlag, RefusesNonFiniteHexAndOutOfRange) {
  EXPECT_DOUBLE_EQ(ParseRealFlag("--top-p", "0.95", {0, 1, true}).value(), 0.95);
  EXPECT_EQ(Error(ParseRealFlag("--top-p", "2", {0, 1, true}).status()), "--top-p must be in (0, 1], got 2");
  EXPECT_EQ(Error(ParseRealFlag("--top-p", "0", {0, 1, true}).status()), "--top-p must be in (0, 1], got 0");
  EXPECT_EQ(Error(ParseRealFlag("--temp", "nan", {0, 100}).status()), "--temp must be a finite number (got nan)");
  EXPECT_EQ(Error(ParseRealFlag("--temp", "-inf", {0, 100}).status()), "--temp must be a finite number (got -inf)");
  EXPECT_EQ(Error(ParseRealFlag("--temp", "1e400", {0, 100}).status()), "--temp must be a finite number (got 1e400)");
  EXPECT_EQ(Error(ParseRealFlag("--temp", "0x10", {0, 100}).status()), "--temp: '0x10' is not a number");
  EXPECT_EQ(Error(ParseRealFlag("--x", "-1", {0}).status()), "--x must be at least 0 (got -1)");
  EXPECT_DOUBLE_EQ(ParseRealFlag("--temp", "1e-400", {0, 100}).value(), 0.0);  // underflow reads as 0
}

TEST(ParseTokenIds, OneSyntaxForEveryCommand) {
  EXPECT_EQ(ParseTokenIds("1,2,3").value(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(ParseTokenIds("[1, 2, 3]").value(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(ParseTokenIds(" 9707 ,\n1879 ").value(), (std::vector<int32_t>{9707, 1879}));
  EXPECT_EQ(ParseTokenIds("[]").value(), std::vector<int32_t>{});
  EXPECT_EQ(Error(ParseTokenIds("").status()), "--ids is empty: give comma-separated token ids, e.g. 1,2,3");
  EXPECT_EQ(Error(ParseTokenIds("1,,2").status()), "--ids: '' is not a token id (ids are integers from 0)");
  EXPECT_EQ(Error(ParseTokenIds("1,-2").status()), "--ids: '-2' is not a token id (ids are integers from 0)");
  EXPECT_EQ(Error(ParseTokenIds("[1, 2").status()), "--ids: '[' without a closing ']'");
  EXPECT_EQ(Error(ParseTokenIds("99999999999").status()),
            "--ids: '99999999999' is not a token id (ids are integers from 0)");
}

TEST(CheckTokenRange, NamesTheSource) {
  const std::vector<int32_t> ids = {1, 512};
  EXPECT_TRUE(CheckTokenRange(std::span(ids).first(1), 512, "--ids").ok());
  EXPECT_EQ(Error(CheckTokenRange(ids, 512, "-p")), "-p: token id 512 is outside the vocabulary [0, 512)");
}

}  // namespace
}  // namespace oko
