#include "tools/command.h"

#include <cstdlib>

namespace oko {

std::string SharedDir() {
  if (const char* env = std::getenv("OKO_SHARED"); env != nullptr && *env != '\0') return env;
  return OKO_DEFAULT_SHARED_DIR;
}

void AddModelOption(CLI::App* app, std::string* dir) {
  app->add_option("-m,--model", *dir, "Hugging Face model folder")
      ->required()
      ->check(CLI::ExistingDirectory);
}

}  // namespace oko
