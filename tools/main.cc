// oko: the command line. Thin: parse arguments, check them, call the engine, map errors to
// exit codes (0 ok, 1 usage, 2 bad input, 3 runtime; docs/CLI.md).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <string_view>
#include <system_error>
#include <vector>

#include "tools/command.h"
#include "tools/flags.h"

namespace {

#ifndef OKO_GIT_COMMIT
#define OKO_GIT_COMMIT "unknown"
#endif

int Fail(const std::string& who, const std::string& message, oko::ExitCode code) {
  std::fprintf(stderr, "%s: error: %s\n", who.c_str(), message.c_str());
  return static_cast<int>(code);
}

// stdout is buffered: a full disk or a closed stdout shows only when it is flushed, so a
// command that "succeeded" is not done until this passes (README: exit 3).
int CheckStdout(const std::string& who, int code) {
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return code;
  const int err = errno;
  const int status = Fail(who, fmt::format("cannot write to stdout: {}", std::strerror(err)), oko::ExitCode::kRuntime);
  return code == 0 ? status : code;
}

// `oko foo` names the unknown subcommand (CLI11 would say "A subcommand is required");
// `oko help [SUB]` is `oko [SUB] --help`.
std::vector<std::string> NormalizeArgs(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "help") {
    args.erase(args.begin());
    args.push_back("--help");
  }
  return args;
}

int Run(CLI::App& app, const std::vector<oko::Subcommand>& commands, std::vector<std::string> args) {
  if (!args.empty() && !args[0].empty() && args[0][0] != '-') {
    bool known = false;
    for (const auto& cmd : commands) known |= cmd.app->get_name() == args[0];
    if (!known)
      return Fail("oko", fmt::format("unknown subcommand '{}' (oko --help lists them)", args[0]),
                  oko::ExitCode::kUsage);
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  const oko::Subcommand* chosen = nullptr;
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      app.exit(e);  // --help, --version
      return CheckStdout("oko", 0);
    }
    std::string who = "oko";
    for (const auto& cmd : commands)
      if (cmd.app->parsed()) who = "oko " + cmd.app->get_name();
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && who == "oko")
      return Fail(who, "give a subcommand (oko --help lists them)", oko::ExitCode::kUsage);
    return Fail(who, fmt::format("{} (see {} --help)", e.what(), who), oko::ExitCode::kUsage);
  }
  for (const auto& cmd : commands)
    if (cmd.app->parsed()) chosen = &cmd;
  if (chosen == nullptr) return Fail("oko", "give a subcommand (oko --help lists them)", oko::ExitCode::kUsage);
  const std::string who = "oko " + chosen->app->get_name();
  oko::Status status = oko::CheckFlags(chosen->app);
  if (status.ok()) status = chosen->run();
  if (!status.ok()) return CheckStdout(who, Fail(who, status.message(), status.code()));
  return CheckStdout(who, 0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"oko: a CPU inference engine for transformer language models", "oko"};
  app.require_subcommand(1);
  // A flag given twice takes its last value, as in llama.cpp and most Unix tools (a script
  // can append an override). The repeatable flags still add up: --lora says TakeAll, and
  // vector options (--ablate, --knockout, --steer) keep every value anyway.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", "oko 0.1 (" OKO_GIT_COMMIT ")");
  app.footer("\noko help SUBCOMMAND (or oko SUBCOMMAND --help) lists its flags; docs/CLI.md has them all.");
  std::vector<oko::Subcommand> commands = {
      oko::AddInfoCommand(app),
      oko::AddMakeModelCommand(app),
      oko::AddQuantizeCommand(app),
      oko::AddLogitsCommand(app),
      oko::AddRunCommand(app),
      oko::AddChatCommand(app),
      oko::AddBenchCommand(app),
      oko::AddProfileCommand(app),
      oko::AddTemplateCommand(app),
      oko::AddTokenizeCommand(app),
      oko::AddDetokenizeCommand(app),
      oko::AddTraceCommand(app),
      oko::AddSteerVectorCommand(app),
      oko::AddAttributeCommand(app),
      oko::AddServeCommand(app),
  };
  try {
    return Run(app, commands, NormalizeArgs(argc, argv));
  } catch (const std::bad_alloc&) {
    // Sizes that can be known are checked before they are allocated (tools/resources.h);
    // this is what is left: exit 3, never an abort.
    return Fail("oko", "out of memory", oko::ExitCode::kRuntime);
  } catch (const std::system_error& e) {  // fmt::print on a stdout that fails
    return Fail("oko", fmt::format("cannot write: {}", e.what()), oko::ExitCode::kRuntime);
  } catch (const std::exception& e) {
    // A library's exception that a check before it should have made impossible (such as
    // oneDNN refusing a primitive): still a message and exit 3, not an abort.
    return Fail("oko", fmt::format("internal error: {}", e.what()), oko::ExitCode::kRuntime);
  }
}
