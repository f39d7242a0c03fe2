// Helpers shared by the tests: where the shared data is, running the oko binary, .npy.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "loaders/tokenizer.h"

namespace oko::test {

// $OKO_SHARED, else ../shared beside the repository root.
std::string SharedDir();
std::string SharedPath(const std::string& relative);
// A JSON file (a golden's manifest, metrics); a failed expectation and null when unreadable.
nlohmann::json ReadJson(const std::string& path);
// The real Qwen3 tokenizer of models/qwen3-tokenizer, loaded once (a failed expectation
// when it cannot be).
const Tokenizer& Qwen3Tokenizer();
// A fresh empty folder under the build's temporary area, removed at process exit.
std::string TempDir(const std::string& name);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs a shell command, optionally feeding stdin.
CommandResult RunCommand(const std::string& command, const std::string& stdin_text = "");
// Runs the oko binary with `args` (shell-quoted here), optionally feeding stdin.
CommandResult RunOko(const std::string& args, const std::string& stdin_text = "");
// The same with stdout sent where a shell redirection says (">/dev/full", ">&-") instead
// of captured.
CommandResult RunOkoStdoutTo(const std::string& args, const std::string& redirection);

}  // namespace oko::test
