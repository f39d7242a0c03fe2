// The trace viewer: one self-contained HTML page (data, JS and CSS inline, no network)
// with a layers x heads grid of thumbnails, a large heatmap, attention lines between
// tokens, the head average and the logit lens (tools/trace_viewer/*).
#pragma once

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

}  // namespace oko
