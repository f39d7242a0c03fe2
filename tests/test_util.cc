#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "loaders/json_util.h"

namespace oko::test {

namespace fs = std::filesystem;

std::string SharedDir() {
  if (const char* env = std::getenv("OKO_SHARED"); env != nullptr && *env != '\0') return env;
  return (fs::path(OKO_SOURCE_DIR) / ".." / "shared").lexically_normal().string();
}

std::string SharedPath(const std::string& relative) { return SharedDir() + "/" + relative; }

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto j = ParseJsonText(text.str(), path);
  EXPECT_TRUE(j.ok()) << j.status().message();
  return j.ok() ? j.value() : nlohmann::json();
}

const Tokenizer& Qwen3Tokenizer() {
  static const auto tokenizer = [] {
    auto t = Tokenizer::Load(SharedPath("models/qwen3-tokenizer"));
    EXPECT_TRUE(t.ok()) << t.status().message();
    return std::move(t.value());
  }();
  return *tokenizer;
}

std::string TempDir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() /
                       ("oko_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  static const struct Cleanup {
    fs::path root = fs::temp_directory_path() / ("oko_test_" + std::to_string(::getpid()));
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(root, ec);
    }
  } cleanup;
  return dir.string();
}

namespace {
std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

CommandResult RunCommand(const std::string& command, const std::string& stdin_text) {
  const std::string dir = TempDir("run_" + std::to_string(std::rand()));
  const fs::path in = fs::path(dir) / "stdin", out = fs::path(dir) / "stdout",
                 err = fs::path(dir) / "stderr";
  std::ofstream(in, std::ios::binary) << stdin_text;
  const std::string cmd = command + " <'" + in.string() + "' >'" + out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out);
  r.err = Slurp(err);
  fs::remove_all(dir);
  return r;
}

CommandResult RunOko(const std::string& args, const std::string& stdin_text) {
  return RunCommand(std::string("'") + OKO_BINARY + "' " + args, stdin_text);
}

CommandResult RunOkoStdoutTo(const std::string& args, const std::string& redirection) {
  const std::string dir = TempDir("run_" + std::to_string(std::rand()));
  const fs::path err = fs::path(dir) / "stderr";
  const std::string cmd = std::string("'") + OKO_BINARY + "' " + args + " </dev/null 2>'" + err.string() + "' " +
                          redirection;
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = Slurp(err);
  fs::remove_all(dir);
  return r;
}

}  // namespace oko::test
