#include "engine/interventions.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string_view>

#include "loaders/safetensors.h"

namespace oko {

namespace {

constexpr int64_t kAnyPosition = std::numeric_limits<int64_t>::max();

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

Result<int64_t> ParseIndex(std::string_view s, std::string_view what) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0)
    return Errorf("'{}' is not a {} (a number from 0)", s, what);
  return v;
}

// "*", "a", "a-b" or a comma-separated list of them; `limit` > 0: every value must be
// below it ("the model has {what}s 0-{limit-1}"), `*` means [0, limit - 1]; limit 0:
// unbounded, `*` means every position.
Result<std::vector<std::pair<int64_t, int64_t>>> ParseRanges(std::string_view list, int64_t limit,
                                                             std::string_view what) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (std::string_view item : Split(list, ',')) {
    if (item == "*") {
      ranges.emplace_back(0, limit > 0 ? limit - 1 : kAnyPosition);
      continue;
    }
    const size_t dash = item.find('-');
    OKO_ASSIGN_OR_RETURN(const int64_t a, ParseIndex(item.substr(0, dash), what));
    int64_t b = a;
    if (dash != std::string_view::npos) {
      OKO_ASSIGN_OR_RETURN(b, ParseIndex(item.substr(dash + 1), what));
      if (b < a) return Errorf("the range {} is reversed (write {}-{})", item, b, a);
    }
    if (limit > 0 && b >= limit)
      return Errorf("{} {} is out of range (the model has {}s 0-{})", what, b, what, limit - 1);
    ranges.emplace_back(a, b);
  }
  return ranges;
}

// "L.H[,...]" with `*` for either: the (layer, head) pairs, as a mask [layer * heads + head].
Result<std::vector<bool>> ParseHeads(std::string_view list, const ModelConfig& c) {
  std::vector<bool> mask(static_cast<size_t>(c.num_layers * c.num_heads), false);
  for (std::string_view item : Split(list, ',')) {
    const size_t dot = item.find('.');
    if (dot == std::string_view::npos)
      return Errorf("'{}' is not LAYER.HEAD (e.g. 2.1 or 3.*)", item);
    OKO_ASSIGN_OR_RETURN(const auto layers, ParseRanges(item.substr(0, dot), c.num_layers, "layer"));
    OKO_ASSIGN_OR_RETURN(const auto heads, ParseRanges(item.substr(dot + 1), c.num_heads, "head"));
    for (const auto& [l0, l1] : layers)
      for (int64_t l = l0; l <= l1; ++l)
        for (const auto& [h0, h1] : heads)
          for (int64_t h = h0; h <= h1; ++h) mask[l * c.num_heads + h] = true;
  }
  return mask;
}

Status InFlag(const Status& s, std::string_view flag, std::string_view value) {
  return s.WithContext(fmt::format("{} {}", flag, value));
}

// "FILE[:COEF]": the coefficient is what follows the last ':' when it is a number.
std::pair<std::string, std::optional<double>> SplitCoefficient(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return {text, std::nullopt};
  const std::string tail = text.substr(colon + 1);
  char* end = nullptr;
  const double v = std::strtod(tail.c_str(), &end);
  if (tail.empty() || end != tail.c_str() + tail.size()) return {text, std::nullopt};
  return {text.substr(0, colon), v};
}

}  // namespace

Result<std::vector<bool>> ParseLayers(std::string_view list, const ModelConfig& c) {
  OKO_ASSIGN_OR_RETURN(const auto ranges, ParseRanges(list, c.num_layers, "layer"));
  std::vector<bool> mask(c.num_layers, false);
  for (const auto& [a, b] : ranges)
    for (int64_t l = a; l <= b; ++l) mask[l] = true;
  return mask;
}

Result<Interventions> Interventions::Make(const InterventionSpec& spec, const ModelConfig& c) {
  Interventions iv;
  iv.num_heads_ = c.num_heads;
  iv.head_scale_.resize(c.num_layers);
  iv.biases_.assign(c.num_layers, false);
  iv.knocks_out_.assign(c.num_layers, false);
  iv.steer_.resize(c.num_layers);
  for (const std::string& a : spec.ablate) OKO_RETURN_IF_ERROR(InFlag(iv.AddAblation(a, c), "--ablate", a));
  for (const std::string& k : spec.knockout) OKO_RETURN_IF_ERROR(InFlag(iv.AddKnockout(k, c), "--knockout", k));
  OKO_RETURN_IF_ERROR(iv.SetEmphasis(spec, c));
  for (const std::string& s : spec.steer) OKO_RETURN_IF_ERROR(InFlag(iv.AddSteering(s, c), "--steer", s));
  return iv;
}

Status Interventions::AddAblation(const std::string& text, const ModelConfig& c) {
  OKO_ASSIGN_OR_RETURN(const std::vector<bool> mask, ParseHeads(text, c));
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int64_t h = 0; h < c.num_heads; ++h) {
      if (!mask[l * c.num_heads + h]) continue;
      if (head_scale_[l].empty()) head_scale_[l].assign(c.num_heads, 1.0f);
      head_scale_[l][h] = 0.0f;
    }
  descriptions_.push_back("--ablate " + text);
  return {};
}

Status Interventions::AddKnockout(const std::string& text, const ModelConfig& c) {
  for (std::string_view one : Split(text, ';')) {
    const auto fields = Split(one, ':');
    if (fields.size() != 3) return Errorf("'{}' is not LAYERS:QUERIES:KEYS (e.g. *:10-12:3-5)", one);
    OKO_ASSIGN_OR_RETURN(const auto layers, ParseRanges(fields[0], c.num_layers, "layer"));
    Knockout k;
    k.layers.assign(c.num_layers, false);
    for (const auto& [a, b] : layers)
      for (int64_t l = a; l <= b; ++l) k.layers[l] = biases_[l] = knocks_out_[l] = true;
    OKO_ASSIGN_OR_RETURN(k.queries.ranges, ParseRanges(fields[1], 0, "query position"));
    OKO_ASSIGN_OR_RETURN(k.keys.ranges, ParseRanges(fields[2], 0, "key position"));
    knockouts_.push_back(std::move(k));
  }
  descriptions_.push_back("--knockout '" + text + "'");
  return {};
}

Status Interventions::SetEmphasis(const InterventionSpec& spec, const ModelConfig& c) {
  if (spec.emphasize.empty()) {
    if (!spec.emphasize_heads.empty()) return Errorf("--emphasize-heads {} needs --emphasize", spec.emphasize_heads);
    return {};
  }
  if (!(spec.emphasize_alpha > 0 && spec.emphasize_alpha <= 1))
    return Errorf("--emphasize-alpha must be in (0, 1], got {}", spec.emphasize_alpha);
  auto keys = ParseRanges(spec.emphasize, 0, "key position");
  if (!keys.ok()) return InFlag(keys.status(), "--emphasize", spec.emphasize);
  emphasis_keys_.ranges = std::move(keys).value();
  if (spec.emphasize_heads.empty()) {
    emphasized_.assign(static_cast<size_t>(c.num_layers * c.num_heads), true);
  } else {
    auto heads = ParseHeads(spec.emphasize_heads, c);
    if (!heads.ok()) return InFlag(heads.status(), "--emphasize-heads", spec.emphasize_heads);
    emphasized_ = std::move(heads).value();
  }
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int64_t h = 0; h < c.num_heads; ++h)
      if (emphasized_[l * c.num_heads + h]) biases_[l] = true;
  log_alpha_ = static_cast<float>(std::log(spec.emphasize_alpha));
  descriptions_.push_back(fmt::format("--emphasize {}{} --emphasize-alpha {}", spec.emphasize,
                                      spec.emphasize_heads.empty() ? "" : " --emphasize-heads " + spec.emphasize_heads,
                                      spec.emphasize_alpha));
  return {};
}

// The file is untrusted: every tensor must be layers.{i} (i a layer of the model), f32,
// of shape [hidden].
Status Interventions::AddSteering(const std::string& text, const ModelConfig& c) {
  const auto [path, coef] = SplitCoefficient(text);
  const double k = coef.value_or(1.0);
  if (!std::isfinite(k)) return Errorf("the coefficient {} is not a finite number", k);
  OKO_ASSIGN_OR_RETURN(const auto file, SafetensorsFile::Open(path));
  for (const TensorView& t : file->tensors()) {
    constexpr std::string_view kPrefix = "layers.";
    if (!t.name.starts_with(kPrefix)) return Errorf("tensor '{}' is not named layers.LAYER", t.name);
    auto layer = ParseIndex(std::string_view(t.name).substr(kPrefix.size()), "layer");
    if (!layer.ok()) return Errorf("tensor '{}' is not named layers.LAYER", t.name);
    if (*layer >= c.num_layers)
      return Errorf("tensor '{}' is for layer {}, the model has layers 0-{}", t.name, *layer, c.num_layers - 1);
    if (t.dtype != DType::kF32 || t.shape != std::vector<int64_t>{c.hidden_size})
      return Errorf("tensor '{}' is {} {}, expected F32 [{}] (the model's hidden size)", t.name,
                    DTypeName(t.dtype), ShapeString(t.shape), c.hidden_size);
    std::vector<float>& v = steer_[*layer];
    if (v.empty()) v.assign(c.hidden_size, 0.0f);
    const float* x = t.as<float>();
    for (int64_t i = 0; i < c.hidden_size; ++i) {
      if (!std::isfinite(x[i])) return Errorf("tensor '{}' holds a non-finite value at {}", t.name, i);
      v[i] += static_cast<float>(k * x[i]);
    }
  }
  descriptions_.push_back("--steer " + text);
  return {};
}

namespace {
// The smallest position in `s` (kAnyPosition when empty).
int64_t First(const PositionSet& s) {
  int64_t first = kAnyPosition;
  for (const auto& [a, b] : s.ranges) first = std::min(first, a);
  return first;
}
// The smallest position not in `s`.
int64_t FirstOutside(const PositionSet& s) {
  int64_t p = 0;
  for (bool moved = true; moved && p != kAnyPosition;) {
    moved = false;
    for (const auto& [a, b] : s.ranges)
      if (p >= a && p <= b) {
        p = b == kAnyPosition ? kAnyPosition : b + 1;
        moved = true;
      }
  }
  return p;
}
}  // namespace

int64_t Interventions::FirstPosition() const {
  for (size_t l = 0; l < head_scale_.size(); ++l)
    if (!head_scale_[l].empty() || !steer_[l].empty()) return 0;  // every position
  int64_t first = kNoPosition;
  // A knocked-out pair (t, s) needs s <= t: no query before both ranges start changes.
  for (const Knockout& k : knockouts_) first = std::min(first, std::max(First(k.queries), First(k.keys)));
  // A row changes only when it sees keys both in and outside the span.
  if (!emphasized_.empty()) first = std::min(first, std::max(First(emphasis_keys_), FirstOutside(emphasis_keys_)));
  return first;
}

bool Interventions::BiasDiffersAcross(int64_t layer, int64_t first, int64_t count) const {
  if (emphasized_.empty()) return false;
  const size_t base = static_cast<size_t>(layer * num_heads_ + first);
  for (int64_t h = 1; h < count; ++h)
    if (emphasized_[base + h] != emphasized_[base]) return true;
  return false;
}

void Interventions::KeyBias(int64_t layer, int64_t head, int64_t query, const int64_t* keys, size_t n,
                            float* out) const {
  const bool emphasis = !emphasized_.empty() && emphasized_[layer * num_heads_ + head];
  for (size_t i = 0; i < n; ++i)
    out[i] = emphasis && !emphasis_keys_.Contains(keys[i]) ? log_alpha_ : 0.0f;
  for (const Knockout& k : knockouts_) {
    if (!k.layers[layer] || !k.queries.Contains(query)) continue;
    for (size_t i = 0; i < n; ++i)
      if (k.keys.Contains(keys[i])) out[i] = -std::numeric_limits<float>::infinity();
  }
}

}  // namespace oko
