#include "tools/command.h"

#include <cstdlib>

#include "tools/flags.h"

namespace oko {

std::string SharedDir() {
  if (const char* env = std::getenv("OKO_SHARED"); env != nullptr && *env != '\0') return env;
  return OKO_DEFAULT_SHARED_DIR;
}

void AddModelOption(CLI::App* app, std::string* dir) {
  AddModelFlag(app, "-m,--model", dir, "Hugging Face model folder or GGUF file")->required();
}

void AddExamples(CLI::App* app, std::initializer_list<std::string_view> examples) {
  std::string text = "\nExamples:\n";
  for (std::string_view e : examples) text += fmt::format("  {}\n", e);
  app->footer(text);
}

}  // namespace oko
