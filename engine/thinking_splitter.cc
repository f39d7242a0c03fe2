#include "engine/thinking_splitter.h"

namespace oko {

ThinkingSplitter::ThinkingSplitter(const Tokenizer& tokenizer, bool start_thinking)
    : detok_(tokenizer, /*skip_special=*/true),
      open_id_(tokenizer.TokenId("<think>")),
      close_id_(tokenizer.TokenId("</think>")),
      channel_(start_thinking ? ReplyChannel::kThinking : ReplyChannel::kAnswer) {}

void ThinkingSplitter::Push(int32_t id, std::vector<ReplyPiece>* out) {
  if (id == open_id_) return SwitchTo(ReplyChannel::kThinking, out);
  if (id == close_id_) return SwitchTo(ReplyChannel::kAnswer, out);
  Emit(detok_.Push(id), out);
}

void ThinkingSplitter::Flush(std::vector<ReplyPiece>* out) {
  Emit(detok_.Flush(), out);
  held_newlines_ = 0;
}

void ThinkingSplitter::SwitchTo(ReplyChannel channel, std::vector<ReplyPiece>* out) {
  Flush(out);
  channel_ = channel;
  channel_started_ = false;
}

void ThinkingSplitter::Emit(std::string text, std::vector<ReplyPiece>* out) {
  if (!channel_started_) {
    text.erase(0, text.find_first_not_of('\n'));
    if (text.empty()) return;
    channel_started_ = true;
  }
  const size_t body = text.find_last_not_of('\n') + 1;  // npos + 1 == 0: all newlines
  const size_t trailing = text.size() - body;
  if (body == 0) {
    held_newlines_ += trailing;
    return;
  }
  text.resize(body);
  text.insert(0, held_newlines_, '\n');
  held_newlines_ = trailing;
  out->push_back({channel_, std::move(text)});
}

}  // namespace oko
