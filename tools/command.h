// The `oko` subcommands: each tools/cmd_*.cc adds one to the CLI11 app and returns the
// function that runs it once the arguments are parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "common/status.h"

namespace oko {

struct Subcommand {
  CLI::App* app = nullptr;
  std::function<Status()> run;
};

Subcommand AddInfoCommand(CLI::App& root);
Subcommand AddMakeModelCommand(CLI::App& root);
Subcommand AddQuantizeCommand(CLI::App& root);
Subcommand AddLogitsCommand(CLI::App& root);
Subcommand AddRunCommand(CLI::App& root);
Subcommand AddChatCommand(CLI::App& root);
Subcommand AddBenchCommand(CLI::App& root);
Subcommand AddProfileCommand(CLI::App& root);
Subcommand AddTemplateCommand(CLI::App& root);
Subcommand AddTokenizeCommand(CLI::App& root);
Subcommand AddDetokenizeCommand(CLI::App& root);
Subcommand AddTraceCommand(CLI::App& root);
Subcommand AddSteerVectorCommand(CLI::App& root);
Subcommand AddAttributeCommand(CLI::App& root);
Subcommand AddServeCommand(CLI::App& root);

// The shared data folder: $OKO_SHARED, else ../shared beside the source tree.
std::string SharedDir();

// -m/--model DIR, required, must be a folder (exit 2 when it is not).
void AddModelOption(CLI::App* app, std::string* dir);

// The "Examples:" footer of a subcommand's --help.
void AddExamples(CLI::App* app, std::initializer_list<std::string_view> examples);

}  // namespace oko
