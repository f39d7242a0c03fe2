// Which chat message each token of a rendered conversation belongs to, and whether it is
// that message's content or the template's scaffolding around it: what a chat trace's
// metadata (token_turns, token_roles) and its views show for every position.
//
// The template alone decides how a message renders (Qwen3 keeps only the answer of an
// earlier reply, Llama 3 trims, ...), so nothing is assumed about its syntax. Instead:
// - a message's content span is where the render changes when only that content changes:
//   the conversation is rendered again with the content replaced by "\x01" and by "\x02",
//   and the span is what lies between the common prefix and the common suffix (two
//   replacements, so a content that starts or ends like its replacement cannot stretch
//   the match);
// - a message's scaffolding after its content (ChatML's "<|im_end|>\n") is the tail that
//   a render of the conversation up to that message puts after its content; everything
//   else up to the next message's content is that next message's header. What follows
//   the last message (the generation prompt) belongs to the reply, message n.
// Tokens map to characters through the streaming detokenizer (the text each token
// completes); a token belongs to the segment its first character falls in.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "loaders/chat_template.h"
#include "loaders/tokenizer.h"

namespace oko {

// The role of a token that is not message content.
inline constexpr const char* kTemplateRole = "template";

struct TokenTag {
  int64_t turn = -1;  // index of the message in variables["messages"]; n: the reply
  std::string role;   // that message's role for its content, kTemplateRole otherwise
};

// A char-level map of a render: per character of the rendered text, its tag.
// `variables` is what was rendered (messages, add_generation_prompt, ...). Errors: the
// template fails on `variables` itself; renders of variants that fail only lose detail.
Result<std::vector<TokenTag>> TagRenderedChars(const ChatTemplate& t, const nlohmann::ordered_json& variables,
                                               std::string* rendered);

// Tags of `ids`, the tokenization of the render of `variables`.
Result<std::vector<TokenTag>> TagRenderedTokens(const ChatTemplate& t, const Tokenizer& tokenizer,
                                                const nlohmann::ordered_json& variables,
                                                std::span<const int32_t> ids);

// For each token of `ids`, the index of the character of `text` it starts at, given that
// `ids` encode `text` (not necessarily exactly: a decode that differs, say by a
// normalizer, is aligned greedily). Tokens that end inside a character start where it does.
std::vector<size_t> TokenCharOffsets(const Tokenizer& tokenizer, std::span<const int32_t> ids,
                                     const std::string& text);

}  // namespace oko
