#include "tools/intervention_compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace oko {

namespace {

std::vector<double> LogSoftmax(const float* x, int64_t V) {
  const double m = *std::max_element(x, x + V);
  double s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(double(x[i]) - m);
  const double lse = m + std::log(s);
  std::vector<double> out(V);
  for (int64_t i = 0; i < V; ++i) out[i] = double(x[i]) - lse;
  return out;
}

std::vector<std::pair<int32_t, double>> Top(const std::vector<double>& logp, size_t k) {
  std::vector<int32_t> ids(logp.size());
  std::iota(ids.begin(), ids.end(), 0);
  k = std::min(k, ids.size());
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return logp[a] > logp[b] || (logp[a] == logp[b] && a < b); });
  std::vector<std::pair<int32_t, double>> top;
  for (size_t i = 0; i < k; ++i) top.emplace_back(ids[i], std::exp(logp[ids[i]]));
  return top;
}

// Token text on one line: control characters escaped, quoted.
std::string Shown(int32_t id, const Tokenizer* tokenizer) {
  if (tokenizer == nullptr) return std::to_string(id);
  std::string out = "'";
  for (char ch : tokenizer->DecodePiece(id)) {
    if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else out += ch;
  }
  return out + "'";
}

size_t Columns(const std::string& s) {  // code points, close enough for a terminal column
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// Splits text into lines of at most `width` characters, at spaces where it can (newlines kept as breaks; a UTF-8
// sequence is never cut).
std::vector<std::string> Wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines(1);
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\n') {
      lines.emplace_back();
      ++i;
      continue;
    }
    size_t n = 1;
    while (i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) ++n;
    if (Columns(lines.back()) + 1 > width) {  // break after the line's last space, if any
      const size_t space = lines.back().rfind(' ');
      std::string carry = space == std::string::npos ? "" : lines.back().substr(space + 1);
      if (space != std::string::npos) lines.back().resize(space + 1);
      lines.push_back(std::move(carry));
    }
    lines.back() += text.substr(i, n);
    i += n;
  }
  return lines;
}


}  // namespace

NextTokenComparison CompareNextToken(const float* without, const float* with, int64_t V, size_t k) {
  const std::vector<double> a = LogSoftmax(without, V), b = LogSoftmax(with, V);
  NextTokenComparison c;
  for (int64_t i = 0; i < V; ++i) c.kl += std::exp(a[i]) * (a[i] - b[i]);
  c.kl = std::max(c.kl, 0.0);  // rounding can leave a tiny negative sum
  c.top_without = Top(a, k);
  c.top_with = Top(b, k);
  return c;
}

std::string FormatComparison(const NextTokenComparison& c, const Tokenizer* tokenizer) {
  std::string out = fmt::format("next token: KL(without || with) = {:.4g} nats\n", c.kl);
  out += fmt::format("  {:<4}{:<28}{}\n", "#", "without", "with");
  for (size_t i = 0; i < std::max(c.top_without.size(), c.top_with.size()); ++i) {
    auto cell = [&](const std::vector<std::pair<int32_t, double>>& top) {
      return i < top.size() ? fmt::format("{} {:.3f}", Shown(top[i].first, tokenizer), top[i].second) : "";
    };
    const std::string left = cell(c.top_without);
    out += fmt::format("  {:<4}{}{}{}\n", i + 1, left, std::string(left.size() < 28 ? 28 - Columns(left) : 1, ' '),
                       cell(c.top_with));
  }
  return out;
}

std::string SideBySide(const std::string& left_title, const std::string& left, const std::string& right_title,
                       const std::string& right, size_t width) {
  const std::vector<std::string> l = Wrap(left, width), r = Wrap(right, width);
  std::string out;
  auto row = [&](const std::string& a, const std::string& b) {
    out += a + std::string(width > Columns(a) ? width - Columns(a) : 0, ' ') + " | " + b + "\n";
  };
  row(left_title, right_title);
  row(std::string(width, '-'), std::string(width, '-'));
  for (size_t i = 0; i < std::max(l.size(), r.size()); ++i) row(i < l.size() ? l[i] : "", i < r.size() ? r[i] : "");
  return out;
}

}  // namespace oko
