#include "tools/trace_show.h"

#include <algorithm>
#include <sstream>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>

namespace oko {

namespace {

constexpr size_t kLabelCols = 10;  // token text columns in row labels

struct Rgb {
  int r, g, b;
};

// A magma-like ramp: dark (little attention) to pale yellow (all of it).
Rgb Ramp(double v) {
  static constexpr Rgb kStops[] = {{20, 14, 40}, {80, 18, 123}, {182, 54, 121}, {251, 136, 97}, {252, 253, 191}};
  v = std::clamp(v, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(v));
  const double f = v - i;
  const Rgb a = kStops[i], b = kStops[i + 1];
  return {static_cast<int>(a.r + f * (b.r - a.r)), static_cast<int>(a.g + f * (b.g - a.g)),
          static_cast<int>(a.b + f * (b.b - a.b))};
}

// One cell for attention p. Keys never attended (p == 0) stay blank, so the causal
// triangle and evicted ring positions show as empty space.
std::string Cell(float p, TermColor color) {
  if (p <= 0) return " ";
  if (color == TermColor::kNone) {
    if (p >= 0.4f) return "■";
    if (p >= 0.15f) return "▓";
    if (p >= 0.05f) return "▒";
    if (p >= 0.01f) return "░";
    return "·";
  }
  const Rgb c = Ramp(std::sqrt(p));  // sqrt: small weights stay visible
  if (color == TermColor::kTrue) return fmt::format("\x1b[38;2;{};{};{}m█\x1b[0m", c.r, c.g, c.b);
  const int idx = 16 + 36 * (c.r * 5 / 255) + 6 * (c.g * 5 / 255) + c.b * 5 / 255;
  return fmt::format("\x1b[38;5;{}m█\x1b[0m", idx);
}

// One cell for a difference d, relative to the largest magnitude shown: red where A
// attends more, blue where B does; plain ■ ▪ + (A more) and □ ▫ - (B more) by size.
// The colour bar of a heatmap: each step's colour beside the weight it stands for.
std::string ColorScale(TermColor color) {
  std::string out = "scale:";
  for (float p : {0.01f, 0.05f, 0.15f, 0.4f, 1.0f}) out += fmt::format(" {} {:g}", Cell(p, color), p);
  return out + "  (blank: not attended)\n";
}

std::string DiffCell(float d, float scale, TermColor color) {
  if (d == 0) return " ";
  const float a = std::min(1.0f, std::fabs(d) / scale);
  if (color == TermColor::kNone) {
    if (a >= 0.5f) return d > 0 ? "■" : "□";
    if (a >= 0.15f) return d > 0 ? "▪" : "▫";
    if (a >= 0.02f) return d > 0 ? "+" : "-";
    return "·";
  }
  const double m = std::sqrt(a);  // as the HTML viewer: small drift stays visible
  const Rgb c = d > 0 ? Rgb{static_cast<int>(20 + 235 * m), static_cast<int>(14 + 76 * m), static_cast<int>(40 + 20 * m)}
                      : Rgb{static_cast<int>(20 + 60 * m), static_cast<int>(14 + 126 * m), static_cast<int>(40 + 215 * m)};
  if (color == TermColor::kTrue) return fmt::format("\x1b[38;2;{};{};{}m█\x1b[0m", c.r, c.g, c.b);
  const int idx = 16 + 36 * (c.r * 5 / 255) + 6 * (c.g * 5 / 255) + c.b * 5 / 255;
  return fmt::format("\x1b[38;5;{}m█\x1b[0m", idx);
}

int64_t CodePoints(const std::string& s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; });
}

// Attention of layer slot l, head slot h (or the head average when h < 0): [Q, K].
std::vector<float> Matrix(const TraceData& t, size_t l, int64_t h) {
  const int64_t Q = t.Q(), K = t.K();
  std::vector<float> m(Q * K, 0.0f);
  const int64_t h0 = h < 0 ? 0 : h, h1 = h < 0 ? t.H() : h + 1;
  for (int64_t hh = h0; hh < h1; ++hh)
    for (int64_t q = 0; q < Q; ++q) {
      const float* row = t.Row(l, hh, q);
      for (int64_t k = 0; k < K; ++k) m[q * K + k] += row[k] / static_cast<float>(h1 - h0);
    }
  return m;
}

bool IsChat(const TraceData& t) { return !t.token_roles.empty(); }

// In a chat trace, the message a position belongs to: "u1" for the content of message 1
// (a user message), "·1" for the template's scaffolding around it.
std::string MessageMark(const TraceData& t, int64_t pos) {
  const std::string& r = t.token_roles[pos];
  const char* letter = r == "system" ? "s" : r == "user" ? "u" : r == "assistant" ? "a" : r == "template" ? "·" : "?";
  return fmt::format("{}{:<3}", letter, t.token_turns[pos]);
}

// Columns of a row label: position, the chat message mark, the token.
size_t LabelWidth(const TraceData& t) { return 6 + (IsChat(t) ? 5 : 0) + kLabelCols + 1; }

// A token with no text (a special token decoded to nothing) is named by its id, so that
// it never reads as an empty label.
std::string PositionLabel(const TraceData& t, int64_t pos, size_t cols) {
  std::string label = TokenLabel(t.tokens[pos], cols);
  if (label.empty() && pos < static_cast<int64_t>(t.token_ids.size()))
    label = TokenLabel(fmt::format("<{}>", t.token_ids[pos]), cols);  // as tokens without a tokenizer read
  return label;
}

std::string RowLabel(const TraceData& t, int64_t pos) {
  const std::string mark = IsChat(t) ? MessageMark(t, pos) + " " : "";
  const std::string label = PositionLabel(t, pos, kLabelCols);
  return fmt::format("{:>5} {}{:<{}}", pos, mark, label, kLabelCols);
}

// Words of `text` re-flowed to lines of at most `width` columns.
std::string Wrap(const std::string& text, int width) {
  std::string out, line;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    if (!line.empty() && static_cast<int>(CodePoints(line) + 1 + CodePoints(word)) > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line + "\n";
}

std::string TrimRight(std::string s) {
  s.erase(s.find_last_not_of(' ') + 1);
  return s;
}

// Position ruler over the key columns: the key position every 10 columns.
std::string Ruler(const TraceData& t, int64_t cols, int64_t pool, size_t indent) {
  std::string line(indent, ' ');
  for (int64_t c = 0; c < cols;) {
    if (c % 10 == 0) {
      const std::string label = std::to_string(t.key_positions[c * pool]);
      line += label;
      c += static_cast<int64_t>(label.size());
    } else {
      line += ' ';
      ++c;
    }
  }
  return TrimRight(line) + "\n";
}

Result<size_t> LayerSlot(const TraceData& t, int64_t layer) {
  if (layer < 0) return t.layers.size() - 1;
  auto it = std::find(t.layers.begin(), t.layers.end(), layer);
  if (it == t.layers.end()) return Errorf("{}: layer {} was not recorded", t.path, layer);
  return static_cast<size_t>(it - t.layers.begin());
}

Result<int64_t> HeadSlot(const TraceData& t, int64_t head) {
  if (head < 0) return int64_t{-1};
  auto it = std::find(t.heads.begin(), t.heads.end(), head);
  if (it == t.heads.end()) return Errorf("{}: head {} was not recorded", t.path, head);
  return static_cast<int64_t>(it - t.heads.begin());
}

// The keys a row gives most (diverging: the largest differences, signed).
std::string TopKeys(const TraceData& t, const float* row, int top, bool diverging) {
  std::vector<int64_t> order(t.K());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  const size_t n = std::min<size_t>(top, order.size());
  auto size = [&](int64_t k) { return diverging ? std::fabs(row[k]) : row[k]; };
  std::partial_sort(order.begin(), order.begin() + n, order.end(),
                    [&](int64_t a, int64_t b) { return size(a) > size(b); });
  std::string s;
  for (size_t i = 0; i < n && size(order[i]) > 0; ++i) {
    const int64_t pos = t.key_positions[order[i]];
    const float p = row[order[i]];
    s += fmt::format("{}'{}'@{} {}", i ? ", " : "", PositionLabel(t, pos, kLabelCols), pos,
                     diverging ? fmt::format("{:+.3g}", p) : fmt::format("{:.2f}", p));
  }
  return s;
}

// The query slots listed under the heatmap: the last ones, or (diverging) those whose
// rows differ most, in position order.
std::vector<int64_t> ListedQueries(const TraceData& t, const std::vector<float>& m, const ShowOptions& o) {
  const int64_t Q = t.Q(), K = t.K();
  std::vector<int64_t> q(Q);
  for (int64_t i = 0; i < Q; ++i) q[i] = i;
  if (!o.diverging) {
    q.erase(q.begin(), q.begin() + std::max<int64_t>(0, Q - o.max_listed));
    return q;
  }
  std::vector<double> l1(Q, 0.0);
  for (int64_t i = 0; i < Q; ++i)
    for (int64_t k = 0; k < K; ++k) l1[i] += std::fabs(m[i * K + k]);
  std::stable_sort(q.begin(), q.end(), [&](int64_t a, int64_t b) { return l1[a] > l1[b]; });
  q.resize(std::min<int64_t>(Q, o.max_listed));
  std::sort(q.begin(), q.end());
  return q;
}

}  // namespace

TermColor DetectTermColor() {
  if (const char* nc = std::getenv("NO_COLOR"); nc != nullptr && *nc != '\0') return TermColor::kNone;
  if (!isatty(STDOUT_FILENO)) return TermColor::kNone;
  const char* ct = std::getenv("COLORTERM");
  if (ct != nullptr && (std::strcmp(ct, "truecolor") == 0 || std::strcmp(ct, "24bit") == 0))
    return TermColor::kTrue;
  return TermColor::k256;
}

int TerminalWidth() {
  winsize w{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
  if (const char* c = std::getenv("COLUMNS"); c != nullptr && std::atoi(c) > 0) return std::atoi(c);
  return 80;
}

std::string TokenLabel(const std::string& text, size_t cols) {
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < text.size() && n < cols;) {
    const unsigned char c = text[i];
    const size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (c == ' ') out += "␣";
    else if (c == '\n') out += "↵";
    else if (c == '\t') out += "→";
    else if (c < 0x20 || c == 0x7f) out += "·";
    else out += text.substr(i, len);
    i += len;
    ++n;
  }
  return out;
}

Result<std::string> RenderHeatmap(const TraceData& t, const ShowOptions& o) {
  OKO_ASSIGN_OR_RETURN(size_t l, LayerSlot(t, o.layer));
  OKO_ASSIGN_OR_RETURN(int64_t h, HeadSlot(t, o.head));
  const int64_t Q = t.Q(), K = t.K();
  if (Q == 0 || K == 0) return Errorf("{}: the trace holds no attention rows", t.path);
  const std::vector<float> m = Matrix(t, l, h);
  const size_t label = LabelWidth(t);
  const int64_t avail = std::max<int64_t>(8, o.width - static_cast<int64_t>(label));
  const int64_t kpool = (K + avail - 1) / avail, cols = (K + kpool - 1) / kpool;
  const int64_t qpool = (Q + o.max_rows - 1) / o.max_rows, rows = (Q + qpool - 1) / qpool;
  // Cells: pooled over kpool keys (summed) and qpool queries (averaged).
  std::vector<float> cells(rows * cols, 0.0f);
  float scale = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t q0 = r * qpool, q1 = std::min(Q, q0 + qpool);
    for (int64_t c = 0; c < cols; ++c) {
      float v = 0;
      for (int64_t q = q0; q < q1; ++q)
        for (int64_t k = c * kpool; k < std::min(K, (c + 1) * kpool); ++k) v += m[q * K + k];
      cells[r * cols + c] = v / static_cast<float>(q1 - q0);
      scale = std::max(scale, std::fabs(cells[r * cols + c]));
    }
  }
  const std::string head_name =
      h < 0 ? fmt::format("average of {} heads", t.H()) : fmt::format("head {}", t.heads[h]);
  std::string out = o.diverging ? fmt::format("A − B, layer {}, {} · {} queries × {} keys ({}); largest |A − B| {:.4f}\n",
                                              t.layers[l], head_name, Q, K, t.model, scale)
                                : fmt::format("layer {}, {} · {} queries × {} keys ({})\n", t.layers[l], head_name, Q, K,
                                              t.model);
  if (kpool > 1)
    out += fmt::format("note: {} keys do not fit {} columns: each column sums {} keys\n", K, o.width, kpool);
  if (qpool > 1)
    out += fmt::format("note: each row averages {} queries (narrow with --queries)\n", qpool);
  out += Ruler(t, cols, kpool, label);
  for (int64_t r = 0; r < rows; ++r) {
    std::string line = RowLabel(t, t.query_positions[r * qpool]) + " ";
    for (int64_t c = 0; c < cols; ++c) {
      const float v = cells[r * cols + c];
      line += o.diverging ? DiffCell(v, scale > 0 ? scale : 1.0f, o.color) : Cell(v, o.color);
    }
    out += TrimRight(line) + "\n";
  }
  if (t.sink_count > 0) out += fmt::format("sinks: key positions 0-{} are kept when the KV ring wraps\n", t.sink_count - 1);
  if (IsChat(t))
    out += Wrap("messages: s system, u user, a assistant (content), · template scaffolding; the number is the "
                "message's index in the conversation",
                o.width);
  if (o.diverging)
    out += Wrap(o.color == TermColor::kNone
                    ? "legend: A attends more ■ ≥½ ▪ ≥0.15 + ≥0.02 of the largest; B more □ ▫ -; · smaller; blank: equal"
                    : "legend: red: A attends more, blue: B attends more, relative to the largest; blank: equal",
                o.width);
  else if (o.color == TermColor::kNone)
    out += "legend: ■ ≥0.4  ▓ ≥0.15  ▒ ≥0.05  ░ ≥0.01  · >0  (blank: not attended)\n";
  else
    out += ColorScale(o.color);
  const std::string head_short = h < 0 ? std::string("head average") : fmt::format("head {}", t.heads[h]);
  out += o.diverging ? fmt::format("\nlargest differences A − B of the queries that differ most (layer {}, {}):\n",
                                   t.layers[l], head_short)
                     : fmt::format("\ntop attended tokens per query (layer {}, {}):\n", t.layers[l], head_short);
  const std::vector<int64_t> listed = ListedQueries(t, m, o);
  if (static_cast<int64_t>(listed.size()) < Q)
    out += o.diverging ? fmt::format("({} of {} queries)\n", listed.size(), Q)
                       : fmt::format("(the last {} of {} queries)\n", listed.size(), Q);
  for (int64_t q : listed)
    out += RowLabel(t, t.query_positions[q]) + " → " + TopKeys(t, m.data() + q * K, o.top, o.diverging) + "\n";
  return out;
}

std::string RenderLogitLens(const TraceData& t, const ShowOptions& o) {
  if (t.lens_layers.empty()) return "";
  constexpr int kCell = 11;
  const size_t label = LabelWidth(t);
  const int64_t L = t.lens_layers.size();
  const int64_t fit = std::max<int64_t>(2, (o.width - static_cast<int64_t>(label)) / kCell);
  std::vector<int64_t> shown;  // lens layer slots, evenly spread, first and last kept
  for (int64_t i = 0; i < std::min(L, fit); ++i)
    shown.push_back(std::min(L, fit) == 1 ? L - 1 : i * (L - 1) / (std::min(L, fit) - 1));
  std::string out = "\nlogit lens: top-1 next token read from each layer's residual stream\n";
  if (static_cast<int64_t>(shown.size()) < L) {
    std::vector<std::string> dropped;
    for (int64_t i = 0; i < L; ++i)
      if (std::find(shown.begin(), shown.end(), i) == shown.end())
        dropped.push_back(t.lens_layers[i] < 0 ? "emb" : fmt::format("L{}", t.lens_layers[i]));
    out += fmt::format("note: {} of {} layers fit the width; not shown: {}\n", shown.size(), L, fmt::join(dropped, " "));
  }
  out += std::string(label, ' ');
  for (int64_t s : shown) {
    const int64_t layer = t.lens_layers[s];
    out += fmt::format("{:<{}}", layer < 0 ? std::string("emb") : fmt::format("L{}", layer), kCell);
  }
  out += "\n";
  const int64_t first = std::max<int64_t>(0, t.Q() - o.max_listed);
  for (int64_t q = first; q < t.Q(); ++q) {
    out += RowLabel(t, t.query_positions[q]) + " ";
    for (int64_t s : shown) {
      const size_t i = (s * t.Q() + q) * t.lens_k;
      auto name = t.lens_tokens.find(t.lens_ids[i]);
      // 5 + 1 + 4 columns ("␣the 0.99"): a cell never overflows its kCell - 1.
      const std::string text = TokenLabel(name == t.lens_tokens.end() ? "?" : name->second, 5);
      const std::string cell = fmt::format("{} {:.2f}", text, t.lens_probs[i]);
      out += cell + std::string(std::max<int64_t>(1, kCell - CodePoints(cell)), ' ');
    }
    out += "\n";
  }
  return out;
}

}  // namespace oko
