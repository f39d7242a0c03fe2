// oko template -m DIR --messages F.json [--add-generation-prompt] [--no-thinking]:
// prints the prompt the model's own chat template renders, exactly (no newline added).
#include <cstdio>
#include <iostream>

#include "common/mapped_file.h"
#include "loaders/chat_template.h"
#include "loaders/json_util.h"
#include "tools/command.h"
#include "tools/flags.h"

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
  OKO_ASSIGN_OR_RETURN(std::string text, args.messages_path == "-"
                                              ? ReadStreamToString(std::cin, "stdin", kMaxMessagesBytes)
                                              : ReadFileToString(args.messages_path, kMaxMessagesBytes));
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
  AddInputFileFlag(app, "--messages", &args->messages_path, /*allow_stdin=*/true,
                   "JSON file: a list of messages, or an object of template variables (-: stdin)")
      ->required();
  app->add_flag("--add-generation-prompt", args->add_generation_prompt,
                "end with the assistant's turn header");
  app->add_flag("--no-thinking", args->no_thinking, "set enable_thinking=false");
  AddExamples(app, {"oko template -m ../shared/models/tiny-qwen3 --messages chat.json --add-generation-prompt",
                    "echo '[{\"role\": \"user\", \"content\": \"Hi\"}]' | oko template -m DIR --messages -"});
  return {app, [args] { return RunTemplate(*args); }};
}

}  // namespace oko
