// Terminal views of a trace: a heatmap of one layer and head (or the head average) with
// token labels and each query's top attended tokens, and the logit lens per position.
#pragma once

#include <string>

#include "common/status.h"
#include "loaders/trace_file.h"

namespace oko {

enum class TermColor { kNone, k256, kTrue };

struct ShowOptions {
  int64_t layer = -1;  // model layer; -1: the last recorded one
  int64_t head = -1;   // model head; -1: the average of the recorded heads
  int width = 80;      // terminal columns
  TermColor color = TermColor::kNone;
  int max_rows = 48;   // heatmap rows before queries are pooled
  int top = 3;         // top attended tokens listed per query
  int max_listed = 200;  // queries listed with their top tokens (the last ones)
  // Values are differences (a diff's A - B): a diverging scale around 0 relative to the
  // largest magnitude shown, and the queries listed are those that differ most.
  bool diverging = false;
};

// Colours: none when NO_COLOR is set or stdout is not a terminal; truecolor when
// COLORTERM says so, else 256 colours. Width: the terminal's, else $COLUMNS, else 80.
TermColor DetectTermColor();
int TerminalWidth();

// Errors: a layer or head the trace did not record.
Result<std::string> RenderHeatmap(const TraceData& t, const ShowOptions& o);
// Top-1 token of each lens layer per query position (layers subsampled to fit).
std::string RenderLogitLens(const TraceData& t, const ShowOptions& o);

// A token as one terminal-safe label: spaces, newlines and tabs made visible (␣ ↵ →),
// at most `cols` code points.
std::string TokenLabel(const std::string& text, size_t cols);

}  // namespace oko
