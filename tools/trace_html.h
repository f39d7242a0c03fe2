// The trace viewer: one self-contained HTML page (data, JS and CSS inline, no network)
// with a layers x heads grid of thumbnails, a large heatmap, attention lines between
// tokens, the head average and the logit lens (tools/trace_viewer/*).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "loaders/trace_file.h"
#include "tools/trace_diff.h"

namespace oko {

// A trace's page; it opens on model layer `layer` (-1: the last recorded) and head
// `head` (-1: the head average).
std::string RenderTraceHtml(const TraceData& t, const std::string& title, int64_t layer = -1, int64_t head = -1);
// A diff's page: heatmaps of A - B and the drift ranking, opening on (layer, head).
std::string RenderDiffHtml(const TraceDiff& d, const std::string& title, int64_t layer = -1, int64_t head = -1);

// Probabilities in the viewer's 8-bit encoding, as base64: round(255 * sqrt(p)) each
// (viewer.js decodes it).
std::string EncodeProbabilities(std::span<const float> p);

// What the chat page of `oko serve` knows of the model it talks to.
struct ChatPageModel {
  std::string name;
  int64_t layers = 0, heads = 0;
  bool chat = true;  // false: no chat template, the page continues text (/v1/completions)
};
// The chat page (`GET /` of oko serve; tools/trace_viewer/chat.*): streams answers and
// draws where they looked with the trace viewer. Self-contained, no network but its own server.
std::string RenderChatPage(const ChatPageModel& model);
// Where the viewer page held by the chat page takes its payload.
inline constexpr char kChatPayloadMark[] = "__OKO_PAYLOAD__";

}  // namespace oko
