// libFuzzer target: a Jinja chat template, then (after a NUL byte) the render variables
// as JSON: an object as given, an array as {"messages": [...]}, anything else a default
// conversation. Parse errors and render errors are fine; an exception that is not a
// template error (ExitCode::kRuntime from Render) is a bug.
#include <nlohmann/json.hpp>
#include <string>

#include "loaders/chat_template.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  using ordered_json = nlohmann::ordered_json;
  const auto [source, vars_text] = fuzz::SplitAtNul(fuzz::AsText(data, size));
  auto tmpl = ChatTemplate::Parse(source, "fuzz.jinja");
  if (!tmpl.ok()) return 0;
  ordered_json vars = ordered_json::parse(vars_text.begin(), vars_text.end(), nullptr,
                                          /*allow_exceptions=*/false);
  if (vars.is_array()) {
    vars = ordered_json{{"messages", std::move(vars)}};
  } else if (!vars.is_object()) {
    vars = ordered_json::parse(R"({"messages": [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi <b>there</b> \u00e9"}, {"role": "assistant", "content":
        "<think>\nhm\n</think>\n\nHello!", "tool_calls": [{"function": {"name": "f", "arguments":
        {"x": 1}}}]}, {"role": "tool", "content": "42"}], "tools": [{"type": "function",
        "function": {"name": "f", "parameters": {}}}], "add_generation_prompt": true,
        "bos_token": "<s>", "eos_token": "</s>"})");
  }
  // Smaller budgets than the defaults keep each execution short; they are the same checks.
  ChatTemplate::Limits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_loop_iterations = 1 << 14;
  limits.max_steps = 1 << 18;
  auto out = tmpl->Render(vars, limits);
  if (!out.ok() && out.status().code() == ExitCode::kRuntime)
    fuzz::Fail("Render threw a non-template exception: " + out.status().message());
  return 0;
}
