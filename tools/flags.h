// Command-line values that oko checks itself rather than through CLI11, so that every
// error reads the same way ("-c must be at least 2 (got 0)", "--top-p must be in (0, 1],
// got 2", "-n 99999999999 is too large (max 2147483647)") and comes before any work:
// CLI11 only stores the text; CheckFlags converts and range-checks it once the command
// line is parsed (tools/main.cc). Errors are exit status 1 (usage), except a missing
// model folder or input file, which is bad input (2): docs/CLI.md "Exit status".
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "common/status.h"

namespace oko {

inline constexpr int64_t kMaxTokenCount = std::numeric_limits<int32_t>::max();

struct IntRange {
  int64_t min = 0;
  int64_t max = kMaxTokenCount;
  std::string max_reason = "";  // appended to "is too large (max N...)"
};

// A real interval; open ends exclude the bound. Values are always finite.
struct RealRange {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;
};

// An integer flag. `names` as CLI11's ("-n,--n-predict"); `help` should end with the
// default, e.g. "tokens to generate (default: 256)".
CLI::Option* AddIntFlag(CLI::App* app, const std::string& names, int64_t* value, const IntRange& range,
                        const std::string& help);
CLI::Option* AddIntFlag(CLI::App* app, const std::string& names, int* value, const IntRange& range,
                        const std::string& help);
CLI::Option* AddIntFlag(CLI::App* app, const std::string& names, std::optional<int64_t>* value,
                        const IntRange& range, const std::string& help);
// The full uint64 range, for seeds.
CLI::Option* AddUint64Flag(CLI::App* app, const std::string& names, std::optional<uint64_t>* value,
                           const std::string& help);
CLI::Option* AddUint64Flag(CLI::App* app, const std::string& names, uint64_t* value, uint64_t min,
                           const std::string& help);
CLI::Option* AddRealFlag(CLI::App* app, const std::string& names, std::optional<float>* value,
                         const RealRange& range, const std::string& help);

// A folder that must exist (exit 2 otherwise): -m/--model.
CLI::Option* AddFolderFlag(CLI::App* app, const std::string& names, std::string* value, const std::string& help);
// A model: a Hugging Face folder, or a GGUF file (a path ending in .gguf).
CLI::Option* AddModelFlag(CLI::App* app, const std::string& names, std::string* value, const std::string& help);
// A file that must exist, or "-" for stdin when allow_stdin (exit 2 otherwise).
CLI::Option* AddInputFileFlag(CLI::App* app, const std::string& names, std::string* value, bool allow_stdin,
                              const std::string& help);

// Converts and checks every flag above that `app` was given. Called by main before the
// subcommand runs.
Status CheckFlags(const CLI::App* app);

// The name a message uses for an option: its short form if it has one ("-c"), else its
// long form ("--top-p").
std::string FlagName(const CLI::Option* option);

// Pure parsers, for tests and for the flags above. `flag` names the flag in messages.
Result<int64_t> ParseIntFlag(const std::string& flag, const std::string& text, const IntRange& range);
Result<uint64_t> ParseUint64Flag(const std::string& flag, const std::string& text, uint64_t min);
Result<double> ParseRealFlag(const std::string& flag, const std::string& text, const RealRange& range);

}  // namespace oko
