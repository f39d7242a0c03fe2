// oko tokenize -m DIR [--text T]: the ids of T (or of stdin) as a JSON array.
// oko detokenize -m DIR --ids 1,2,3 [--skip-special]: the text as HF decodes it.
#include <cstdio>
#include <iostream>

#include "common/mapped_file.h"
#include "loaders/tokenizer.h"
#include "tools/command.h"

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

// "1,2,3" (spaces and enclosing brackets allowed, so a JSON array pastes as is).
Result<std::vector<int32_t>> ParseIds(std::string_view s, int32_t vocab_size) {
  std::vector<int32_t> ids;
  std::string item;
  const auto flush = [&]() -> Status {
    if (item.empty()) return {};
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0') return Errorf("--ids: '{}' is not a token id", item);
    if (v < 0 || v >= vocab_size)
      return Errorf("--ids: id {} is outside the vocabulary [0, {})", item, vocab_size);
    ids.push_back(static_cast<int32_t>(v));
    item.clear();
    return {};
  };
  for (char c : s) {
    if (c == ',') {
      OKO_RETURN_IF_ERROR(flush());
    } else if (c != ' ' && c != '[' && c != ']' && c != '\n') {
      item += c;
    }
  }
  OKO_RETURN_IF_ERROR(flush());
  return ids;
}

Status RunDetokenize(const DetokenizeArgs& a) {
  OKO_ASSIGN_OR_RETURN(auto tok, Tokenizer::Load(a.dir));
  OKO_ASSIGN_OR_RETURN(auto ids, ParseIds(a.ids, tok->vocab_size()));
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
  app->add_option("--text", args->text, "Text to tokenize (default: all of stdin, as is)");
  return {app, [args] { return RunTokenize(*args); }};
}

Subcommand AddDetokenizeCommand(CLI::App& root) {
  auto args = std::make_shared<DetokenizeArgs>();
  CLI::App* app = root.add_subcommand(
      "detokenize", "Text of token ids as Hugging Face decodes it, written without a newline");
  AddModelOption(app, &args->dir);
  app->add_option("--ids", args->ids, "Comma-separated token ids, e.g. 9707,1879")->required();
  app->add_flag("--skip-special", args->skip_special, "Drop special tokens (skip_special_tokens)");
  return {app, [args] { return RunDetokenize(*args); }};
}

}  // namespace oko
