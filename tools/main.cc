// oko: the command line. Thin: parse arguments, call the engine, map errors to exit codes
// (0 ok, 1 usage, 2 bad input, 3 runtime; DESIGN.md).
#include <cstdio>
#include <vector>

#include "tools/command.h"

int main(int argc, char** argv) {
  CLI::App app{"oko: a CPU inference engine for transformer language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "oko 0.1");
  std::vector<oko::Subcommand> commands = {
      oko::AddInfoCommand(app),
      oko::AddMakeModelCommand(app),
      oko::AddLogitsCommand(app),
      oko::AddRunCommand(app),
      oko::AddChatCommand(app),
      oko::AddBenchCommand(app),
      oko::AddProfileCommand(app),
      oko::AddTemplateCommand(app),
      oko::AddTokenizeCommand(app),
      oko::AddDetokenizeCommand(app),
      oko::AddTraceCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(oko::ExitCode::kUsage);
  }
  for (const auto& cmd : commands) {
    if (!cmd.app->parsed()) continue;
    const oko::Status status = cmd.run();
    if (status.ok()) return 0;
    std::fprintf(stderr, "oko %s: error: %s\n", cmd.app->get_name().c_str(),
                 status.message().c_str());
    return static_cast<int>(status.code());
  }
  return static_cast<int>(oko::ExitCode::kUsage);
}
