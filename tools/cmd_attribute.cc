// oko attribute -m DIR -p PROMPT [--target TEXT] [--json] [--html FILE]: which prompt
// tokens the next-token prediction depends on (engine/attribution.h), shown as the
// prompt with each token shaded by its effect.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "engine/attribution.h"
#include "loaders/tokenizer.h"
#include "tools/command.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"

namespace oko {
namespace {

struct AttributeOptions {
  EngineFlags engine;
  std::string prompt, target, html;
  bool json = false;
};

// Red: knocking the token out lowers the target's probability (it is needed); blue:
// raises it. Intensity: |delta| / the largest |delta|, on the square-root scale.
struct Shade {
  int r, g, b;
};
Shade ShadeOf(double delta, double largest) {
  const double x = largest > 0 ? std::sqrt(std::min(1.0, std::fabs(delta) / largest)) : 0;
  const int fade = static_cast<int>(std::lround(255 * (1 - x)));
  return delta < 0 ? Shade{255, fade, fade} : Shade{fade, fade, 255};
}

std::string Escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

std::string Terminal(const std::vector<std::string>& pieces, const Attribution& a, double largest) {
  std::string out;
  for (size_t s = 0; s < pieces.size(); ++s) {
    const Shade c = ShadeOf(a.delta[s], largest);
    out += fmt::format("\x1b[48;2;{};{};{}m\x1b[38;2;0;0;0m{}\x1b[0m", c.r, c.g, c.b, pieces[s]);
  }
  return out + "\n";
}

std::string Html(const std::vector<std::string>& pieces, const Attribution& a, double largest,
                 const std::string& target) {
  std::string body;
  for (size_t s = 0; s < pieces.size(); ++s) {
    const Shade c = ShadeOf(a.delta[s], largest);
    body += fmt::format("<span style=\"background:rgb({},{},{})\" title=\"position {}: {:+.4f}\">{}</span>", c.r, c.g,
                        c.b, s, a.delta[s], Escaped(pieces[s]));
  }
  return fmt::format(
      "<!doctype html><meta charset=\"utf-8\"><title>oko attribute</title>"
      "<style>body{{font:16px/1.8 monospace;max-width:60em;margin:2em auto;white-space:pre-wrap}}</style>"
      "<p>target {} (log p = {:.4f}); red: knocking the token out lowers it, blue: raises it; hover for the change</p>"
      "<p>{}</p>\n",
      Escaped(target), a.logprob, body);
}

Status RunAttribute(const AttributeOptions& o) {
  OKO_ASSIGN_OR_RETURN(EngineOptions options, o.engine.ToOptions());
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(o.engine.model_dir, options, o.engine.CtxWhat()));
  OKO_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(o.engine.model_dir));
  OKO_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, tokenizer->Encode(o.prompt));
  if (ids.empty()) return Errorf("-p: the prompt has no tokens");
  OKO_RETURN_IF_ERROR(CheckPromptFits(*context, static_cast<int64_t>(ids.size())));
  std::optional<int32_t> target;
  if (!o.target.empty()) {
    // The prediction is one token: the first the text becomes after the prompt (encoded
    // alone, a leading space may be a token of its own).
    OKO_ASSIGN_OR_RETURN(const std::vector<int32_t> both, tokenizer->Encode(o.prompt + o.target));
    OKO_ASSIGN_OR_RETURN(const std::vector<int32_t> alone, tokenizer->Encode(o.target, /*add_special_tokens=*/false));
    if (alone.empty()) return Errorf("--target '{}' has no tokens", o.target);
    const bool extends = both.size() > ids.size() && std::equal(ids.begin(), ids.end(), both.begin());
    target = extends ? both[ids.size()] : alone.front();
  }
  const Attribution a = AttributeByKnockout(*context, ids, target);
  const std::vector<std::string> pieces = tokenizer->DecodePieces(ids);
  const std::string target_text = tokenizer->DecodePiece(a.target);
  double largest = 0;
  for (double d : a.delta) largest = std::max(largest, std::fabs(d));
  if (!o.html.empty()) {
    const std::string page = Html(pieces, a, largest, target_text);
    OKO_RETURN_IF_ERROR(WriteFileAtomically(o.html, page));
  }
  if (o.json) {
    nlohmann::json j = {{"target", a.target}, {"target_text", target_text}, {"logprob", a.logprob}};
    j["positions"] = nlohmann::json::array();
    for (size_t s = 0; s < ids.size(); ++s)
      j["positions"].push_back({{"position", s}, {"id", ids[s]}, {"text", pieces[s]}, {"delta", a.delta[s]}});
    fmt::print("{}\n", j.dump(2));
    return {};
  }
  std::string out = fmt::format("target '{}' (id {}): log p = {:.4f} at the last position\n", target_text, a.target,
                                a.logprob);
  if (::isatty(STDOUT_FILENO)) out += Terminal(pieces, a, largest);
  out += "position  token                 change of log p when every edge to it is knocked out\n";
  for (size_t s = 0; s < ids.size(); ++s)
    out += fmt::format("{:>8}  {:<20}  {:+.4f}\n", s, nlohmann::json(pieces[s]).dump(), a.delta[s]);
  fmt::print("{}", out);
  return {};
}

}  // namespace

Subcommand AddAttributeCommand(CLI::App& root) {
  auto o = std::make_shared<AttributeOptions>();
  o->engine.compute = "f32";
  CLI::App* app = root.add_subcommand("attribute", "Which prompt tokens the next-token prediction depends on");
  o->engine.Add(app);
  app->add_option("-p,--prompt", o->prompt, "the prompt")->required();
  app->add_option("--target", o->target, "the predicted token to follow: the first token of TEXT (default: the model's top next token)");
  app->add_flag("--json", o->json, "one JSON object instead of the table");
  app->add_option("--html", o->html, "also write the shaded prompt as an HTML page");
  AddExamples(app, {"oko attribute -m ../shared/models/stories260k -p 'Lily and Tom went to the park. Lily said to'",
                    "oko attribute -m ../shared/models/stories260k -p 'Once upon a time' --target ' there' --json"});
  return {app, [o] { return RunAttribute(*o); }};
}

}  // namespace oko
