#include "engine/chat_tags.h"

#include <algorithm>
#include <optional>

namespace oko {

namespace {

using ordered_json = nlohmann::ordered_json;

size_t CommonPrefix(const std::string& a, const std::string& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// The common suffix, at most `limit` long.
size_t CommonSuffix(const std::string& a, const std::string& b, size_t limit) {
  size_t i = 0;
  while (i < limit && i < a.size() && i < b.size() && a[a.size() - 1 - i] == b[b.size() - 1 - i]) ++i;
  return i;
}

struct Span {
  size_t begin = 0, end = 0;
};

// Where `rendered` (the render of `v`) holds message i's content, or nullopt when a
// variant does not render or the content does not show (a template may drop a message).
std::optional<Span> ContentSpan(const ChatTemplate& t, const ordered_json& v, size_t i,
                                const std::string& rendered) {
  size_t prefix = rendered.size(), suffix = rendered.size();
  for (const char* replacement : {"\x01", "\x02"}) {
    ordered_json variant = v;
    variant["messages"][i]["content"] = replacement;
    Result<std::string> other = t.Render(variant);
    if (!other.ok()) return std::nullopt;
    if (*other == rendered) return std::nullopt;  // the template does not show this content
    const size_t p = CommonPrefix(rendered, *other);
    prefix = std::min(prefix, p);
    suffix = std::min(suffix, CommonSuffix(rendered, *other, std::min(rendered.size(), other->size()) - p));
  }
  suffix = std::min(suffix, rendered.size() - prefix);
  return Span{prefix, rendered.size() - suffix};
}

// How many characters after message i's content (ending at `content_end` of `rendered`)
// the template writes to close that message: the tail a render of the conversation up
// to message i puts after its content, when `rendered` has it there too.
size_t FooterLength(const ChatTemplate& t, const ordered_json& v, size_t i, const std::string& rendered,
                    size_t content_end) {
  ordered_json upto = v;
  ordered_json& messages = upto["messages"];
  messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(i) + 1, messages.end());
  upto["add_generation_prompt"] = false;
  Result<std::string> alone = t.Render(upto);
  if (!alone.ok()) return 0;
  const std::optional<Span> content = ContentSpan(t, upto, i, *alone);
  if (!content) return 0;
  const std::string_view footer = std::string_view(*alone).substr(content->end);
  return std::string_view(rendered).substr(content_end).starts_with(footer) ? footer.size() : 0;
}

}  // namespace

Result<std::vector<TokenTag>> TagRenderedChars(const ChatTemplate& t, const ordered_json& variables,
                                               std::string* rendered) {
  OKO_ASSIGN_OR_RETURN(*rendered, t.Render(variables));
  const std::string& text = *rendered;
  if (!variables.contains("messages") || !variables["messages"].is_array())
    return Status::Error("the variables hold no list of messages");
  const ordered_json& messages = variables["messages"];
  const int64_t n = static_cast<int64_t>(messages.size());
  std::vector<TokenTag> tags(text.size(), TokenTag{n, kTemplateRole});  // the generation prompt
  size_t done = 0;  // characters [0, done) belong to messages already placed
  for (int64_t i = 0; i < n; ++i) {
    const ordered_json& m = messages[i];
    if (!m.is_object() || !m.contains("content") || !m["content"].is_string()) continue;
    const std::optional<Span> content = ContentSpan(t, variables, i, text);
    if (!content || content->begin < done) continue;  // not rendered, or not in order
    const size_t end = content->end + FooterLength(t, variables, i, text, content->end);
    const std::string role = m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "";
    for (size_t c = done; c < end; ++c) tags[c] = {i, c >= content->begin && c < content->end ? role : kTemplateRole};
    done = end;
  }
  return tags;
}

std::vector<size_t> TokenCharOffsets(const Tokenizer& tokenizer, std::span<const int32_t> ids,
                                     const std::string& text) {
  // Offsets into the decoded text first: each token starts where the text emitted
  // before it ends.
  StreamingDetokenizer stream(tokenizer);
  std::string decoded;
  std::vector<size_t> at;
  at.reserve(ids.size());
  for (int32_t id : ids) {
    at.push_back(decoded.size());
    decoded += stream.Push(id);
  }
  decoded += stream.Flush();
  if (decoded == text) return at;
  // Then decoded -> text, greedily: equal bytes advance both; otherwise skip a few bytes
  // on whichever side resynchronises sooner.
  std::vector<size_t> map(decoded.size() + 1, text.size());
  constexpr size_t kLook = 16;
  size_t i = 0, j = 0;
  while (j < decoded.size()) {
    if (i < text.size() && text[i] == decoded[j]) {
      map[j++] = i++;
      continue;
    }
    size_t skip_text = kLook + 1, skip_decoded = kLook + 1;
    for (size_t k = 1; k <= kLook && i + k < text.size(); ++k)
      if (text[i + k] == decoded[j]) { skip_text = k; break; }
    for (size_t k = 1; k <= kLook && j + k < decoded.size() && i < text.size(); ++k)
      if (decoded[j + k] == text[i]) { skip_decoded = k; break; }
    if (skip_text <= kLook && skip_text <= skip_decoded) {
      i += skip_text;
    } else if (skip_decoded <= kLook) {
      for (size_t k = 0; k < skip_decoded; ++k) map[j++] = std::min(i, text.size());
    } else {
      map[j++] = std::min(i, text.size());
      i = std::min(i + 1, text.size());
    }
  }
  for (size_t& a : at) a = map[a];
  return at;
}

Result<std::vector<TokenTag>> TagRenderedTokens(const ChatTemplate& t, const Tokenizer& tokenizer,
                                                const ordered_json& variables, std::span<const int32_t> ids) {
  std::string text;
  OKO_ASSIGN_OR_RETURN(std::vector<TokenTag> chars, TagRenderedChars(t, variables, &text));
  const int64_t n = static_cast<int64_t>(variables["messages"].size());
  std::vector<TokenTag> tags;
  tags.reserve(ids.size());
  for (size_t at : TokenCharOffsets(tokenizer, ids, text))
    tags.push_back(at < chars.size() ? chars[at] : TokenTag{n, kTemplateRole});
  return tags;
}

}  // namespace oko
