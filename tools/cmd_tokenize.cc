// oko tokenize -m DIR [--text T]: the ids of T (or of stdin) as a JSON array.
// oko detokenize -m DIR --ids 1,2,3 [--skip-special]: the text as HF decodes it.
#include <cstdio>
#include <iostream>

#include "common/mapped_file.h"
#include "loaders/tokenizer.h"
#include "tools/command.h"
#include "tools/token_ids.h"

namespace oko {
namespace {

struct TokenizeArgs {
  std::string dir;
  std::optional<std::string> text;
};

Status RunTokenize(const TokenizeArgs& a) {
  OKO_ASSIGN_OR_RETURN(auto tok, Tokenizer::Load(a.dir));
  std::string text;
  if (a.text) {
    text = *a.text;
  } else {
    OKO_ASSIGN_OR_RETURN(text, ReadStreamToString(std::cin, "stdin", kMaxStdinTextBytes));
  }
  auto ids = tok->Encode(text);
  if (!ids.ok()) return ids.status().WithContext(a.text ? "--text" : "stdin");
  fmt::print("[{}]\n", fmt::join(*ids, ", "));
  return {};
}

struct DetokenizeArgs {
  std::string dir;
  std::string ids;
  bool skip_special = false;
};

Status RunDetokenize(const DetokenizeArgs& a) {
  OKO_ASSIGN_OR_RETURN(auto tok, Tokenizer::Load(a.dir));
  OKO_ASSIGN_OR_RETURN(auto ids, ParseTokenIds(a.ids));
  OKO_RETURN_IF_ERROR(CheckTokenRange(ids, tok->vocab_size(), "--ids"));
  const std::string text = tok->Decode(ids, a.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return {};
}

}  // namespace

Subcommand AddTokenizeCommand(CLI::App& root) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* app = root.add_subcommand(
      "tokenize", "Token ids of a text (with the tokenizer's special tokens) as a JSON array");
  AddModelOption(app, &args->dir);
  app->add_option("--text", args->text, "text to tokenize (default: all of stdin, as is)");
  AddExamples(app, {"oko tokenize -m ../shared/models/tiny-qwen3 --text \"Hello world\"",
                    "oko tokenize -m DIR < story.txt"});
  return {app, [args] { return RunTokenize(*args); }};
}

Subcommand AddDetokenizeCommand(CLI::App& root) {
  auto args = std::make_shared<DetokenizeArgs>();
  CLI::App* app = root.add_subcommand(
      "detokenize", "Text of token ids as Hugging Face decodes it, written without a newline");
  AddModelOption(app, &args->dir);
  app->add_option("--ids", args->ids, "comma-separated token ids, e.g. 9707,1879 or [9707, 1879]")->required();
  app->add_flag("--skip-special", args->skip_special, "drop special tokens (skip_special_tokens)");
  AddExamples(app, {"oko detokenize -m ../shared/models/tiny-qwen3 --ids 9707,1879",
                    "oko detokenize -m DIR --ids \"$(oko tokenize -m DIR --text hi)\" --skip-special"});
  return {app, [args] { return RunDetokenize(*args); }};
}

}  // namespace oko
