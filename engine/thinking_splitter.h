// ThinkingSplitter: turns the ids of a reply into streamed text on two channels, the
// reasoning between <think> and </think> (Qwen3, DeepSeek-R1) and the answer. Text is
// emitted only once it is complete UTF-8 (StreamingDetokenizer). Each channel is
// stripped of leading and trailing newlines, as Qwen3's chat template strips them when
// it renders a reply back (reasoning_content.strip('\n'), content.lstrip('\n')).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "loaders/tokenizer.h"

namespace oko {

enum class ReplyChannel { kThinking, kAnswer };

struct ReplyPiece {
  ReplyChannel channel;
  std::string text;
};

class ThinkingSplitter {
 public:
  // `start_thinking`: the prompt already opened a <think> block (templates that put
  // "<think>\n" in the generation prompt).
  ThinkingSplitter(const Tokenizer& tokenizer, bool start_thinking);

  // Appends to `out` the text `id` completes (nothing while a character is incomplete;
  // a tag id switches the channel and emits nothing of its own).
  void Push(int32_t id, std::vector<ReplyPiece>* out);
  // Emits what is pending; trailing newlines of the channel are dropped.
  void Flush(std::vector<ReplyPiece>* out);
  ReplyChannel channel() const { return channel_; }

 private:
  void SwitchTo(ReplyChannel channel, std::vector<ReplyPiece>* out);
  void Emit(std::string text, std::vector<ReplyPiece>* out);

  StreamingDetokenizer detok_;
  std::optional<int32_t> open_id_, close_id_;
  ReplyChannel channel_;
  bool channel_started_ = false;  // some text of this channel was emitted
  size_t held_newlines_ = 0;      // trailing newlines, emitted only if text follows
};

}  // namespace oko
