// The trace viewer: one self-contained HTML page (data, JS and CSS inline, no network)
// with a layers x heads grid of thumbnails, a large heatmap, attention lines between
// tokens, the head average and the logit lens (tools/trace_viewer/*).
#pragma once

#include <string>
#include <vector>

#include "loaders/trace_file.h"
#include "tools/trace_diff.h"

namespace oko {

// A trace's page.
std::string RenderTraceHtml(const TraceData& t, const std::string& title);
// A diff's page: heatmaps of A - B and the drift ranking.
std::string RenderDiffHtml(const TraceDiff& d, const std::string& title);

}  // namespace oko
