// oko template -m DIR --messages F.json [--add-generation-prompt] [--no-thinking]:
// prints the prompt the model's own chat template renders, exactly (no newline added).
#include <cstdio>

#include "common/mapped_file.h"
#include "loaders/chat_template.h"
#include "loaders/json_util.h"
#include "tools/command.h"

namespace oko {
namespace {

struct TemplateArgs {
  std::string dir;
  std::string messages_path;
  bool add_generation_prompt = false;
  bool no_thinking = false;
};

// F.json is a list of messages or an object of template variables.
Result<nlohmann::ordered_json> ReadVariables(const TemplateArgs& args) {
  OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(args.messages_path, kMaxMessagesBytes));
  OKO_ASSIGN_OR_RETURN(auto j, ParseJsonText<nlohmann::ordered_json>(text, args.messages_path));
  if (j.is_array()) j = nlohmann::ordered_json{{"messages", std::move(j)}};
  if (!j.is_object())
    return Errorf("{}: expected a list of messages or an object of template variables", args.messages_path);
  if (!j.contains("messages") || !j["messages"].is_array())
    return Errorf("{}: 'messages' must be a list of messages", args.messages_path);
  if (args.add_generation_prompt) j["add_generation_prompt"] = true;
  if (args.no_thinking) j["enable_thinking"] = false;
  return j;
}

Status RunTemplate(const TemplateArgs& args) {
  OKO_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::LoadFromDir(args.dir));
  OKO_ASSIGN_OR_RETURN(nlohmann::ordered_json variables, ReadVariables(args));
  auto rendered = tmpl.Render(variables);
  if (!rendered.ok()) return rendered.status().WithContext("rendering " + args.messages_path);
  std::fwrite(rendered->data(), 1, rendered->size(), stdout);
  return {};
}

}  // namespace

Subcommand AddTemplateCommand(CLI::App& root) {
  auto args = std::make_shared<TemplateArgs>();
  CLI::App* app = root.add_subcommand("template", "Render the model's own chat template");
  AddModelOption(app, &args->dir);
  app->add_option("--messages", args->messages_path,
                  "JSON file: a list of messages, or an object of template variables")
      ->required();
  app->add_flag("--add-generation-prompt", args->add_generation_prompt,
                "End with the assistant's turn header");
  app->add_flag("--no-thinking", args->no_thinking, "Set enable_thinking=false");
  return {app, [args] { return RunTemplate(*args); }};
}

}  // namespace oko
