#include "tools/reply_stream.h"

#include <algorithm>

namespace oko {

std::string StopFilter::Push(std::string_view text, bool* stopped) {
  pending_ += text;
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    *stopped = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  size_t keep = 0;  // the longest tail of pending_ that begins a stop sequence
  for (const std::string& s : stops_)
    for (size_t n = std::min(s.size() - 1, pending_.size()); n > keep; --n)
      if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

bool ReplyStream::Push(int32_t id, std::vector<ReplyPiece>* out) {
  if (stopped_) return false;
  splitter_.Push(id, &raw_);
  Filter(out);
  return !stopped_;
}

void ReplyStream::Finish(std::vector<ReplyPiece>* out) {
  if (stopped_) return;
  splitter_.Flush(&raw_);
  Filter(out);
  if (stopped_) return;
  if (std::string rest = stop_.Flush(); !rest.empty()) out->push_back({ReplyChannel::kAnswer, std::move(rest)});
}

// The reasoning passes as it is (stop sequences apply to the answer, as llama.cpp's
// server applies them to the content).
void ReplyStream::Filter(std::vector<ReplyPiece>* out) {
  for (ReplyPiece& p : raw_) {
    if (stopped_) break;
    if (p.channel == ReplyChannel::kThinking) {
      if (!p.text.empty()) out->push_back(std::move(p));
      continue;
    }
    std::string text = stop_.Push(p.text, &stopped_);
    if (!text.empty()) out->push_back({ReplyChannel::kAnswer, std::move(text)});
  }
  raw_.clear();
}

}  // namespace oko
