// ReplyStream: the ids of a reply turned into the text a client is sent, piece by piece:
// the reasoning apart from the answer (engine/thinking_splitter.h), and the answer cut
// before the first of the request's stop sequences, with the text that could be the
// start of one held back until it is known not to be.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/thinking_splitter.h"

namespace oko {

class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Returns the text that is safe to emit; sets *stopped at a stop sequence (the text
  // after it is dropped).
  std::string Push(std::string_view text, bool* stopped);
  // What was held back (at the end of the reply).
  std::string Flush() { return std::exchange(pending_, {}); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

class ReplyStream {
 public:
  // `start_thinking`: the prompt opened a <think> block (PromptOpensThinking).
  ReplyStream(const Tokenizer& tokenizer, bool start_thinking, std::vector<std::string> stops)
      : splitter_(tokenizer, start_thinking), stop_(std::move(stops)) {}

  // Appends to *out the text `id` completes; false once a stop sequence is reached.
  bool Push(int32_t id, std::vector<ReplyPiece>* out);
  // Appends what is still pending at the end of the reply.
  void Finish(std::vector<ReplyPiece>* out);
  // A stop sequence ended the answer.
  bool stopped() const { return stopped_; }

 private:
  void Filter(std::vector<ReplyPiece>* out);

  ThinkingSplitter splitter_;
  StopFilter stop_;
  std::vector<ReplyPiece> raw_;
  bool stopped_ = false;
};

}  // namespace oko
