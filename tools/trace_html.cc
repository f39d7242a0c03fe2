#include "tools/trace_html.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "tools/trace_viewer_assets.h"

namespace oko {

namespace {

std::string Base64(const std::vector<uint8_t>& in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    const uint32_t n = (uint32_t(in[i]) << 16) | (i + 1 < in.size() ? uint32_t(in[i + 1]) << 8 : 0) |
                       (i + 2 < in.size() ? in[i + 2] : 0);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// 8 bits a value, sqrt-spaced so that small weights keep distinct shades (viewer.js
// decodes them); the exact values stay in the .safetensors. Differences are scaled by
// their largest magnitude first: drift is often far below 1.
uint8_t Quantize(float p, bool is_signed, float scale) {
  if (!is_signed) return static_cast<uint8_t>(std::lround(255 * std::sqrt(std::clamp(p, 0.0f, 1.0f))));
  const float m = std::sqrt(std::min(1.0f, std::fabs(p) / scale));
  return static_cast<uint8_t>(128 + std::lround(127 * (p < 0 ? -m : m)));
}

float MaxAbs(const TraceData& t) {
  float m = 0;
  for (const auto& layer : t.attn)
    for (float v : layer) m = std::max(m, std::fabs(v));
  return m > 0 ? m : 1.0f;
}

// Keys a query can attend are those at or before it: rows store only those.
std::vector<int64_t> RowLengths(const TraceData& t) {
  std::vector<int64_t> len;
  for (int64_t q : t.query_positions)
    len.push_back(std::upper_bound(t.key_positions.begin(), t.key_positions.end(), q) - t.key_positions.begin());
  return len;
}

nlohmann::json Lens(const TraceData& t) {
  if (t.lens_layers.empty()) return nullptr;
  nlohmann::json names = nlohmann::json::object();
  for (const auto& [id, text] : t.lens_tokens) names[std::to_string(id)] = text;
  return {{"layers", t.lens_layers}, {"k", t.lens_k}, {"ids", t.lens_ids},
          {"probs", t.lens_probs}, {"names", names}};
}

nlohmann::json Payload(const TraceData& t, bool is_signed, const std::string& title) {
  const std::vector<int64_t> len = RowLengths(t);
  const float scale = is_signed ? MaxAbs(t) : 1.0f;
  nlohmann::json attn = nlohmann::json::array();
  for (size_t l = 0; l < t.attn.size(); ++l) {
    std::vector<uint8_t> bytes;
    for (int64_t h = 0; h < t.H(); ++h)
      for (int64_t q = 0; q < t.Q(); ++q) {
        const float* row = t.Row(l, h, q);
        for (int64_t k = 0; k < len[q]; ++k) bytes.push_back(Quantize(row[k], is_signed, scale));
      }
    attn.push_back(Base64(bytes));
  }
  return {{"title", title}, {"model", t.model}, {"tokens", t.tokens}, {"turns", t.token_turns},
          {"roles", t.token_roles}, {"queries", t.query_positions},
          {"keys", t.key_positions}, {"sinks", t.key_is_sink}, {"layers", t.layers},
          {"heads", t.heads}, {"rowlen", len}, {"attn", attn}, {"signed", is_signed}, {"scale", scale},
          {"lens", Lens(t)}, {"drift", nullptr}};
}

// JSON text made safe inside a <script> element: "</" in a string would end it early.
std::string ScriptSafe(std::string json_text) {
  for (size_t i = json_text.find("</"); i != std::string::npos; i = json_text.find("</", i + 3))
    json_text.replace(i, 2, "<\\/");
  return json_text;
}

std::string JsonText(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// The viewer's page with `data` (script-safe JSON text) as its payload.
std::string ViewerPage(const std::string& data) {
  return std::string("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>oko trace</title>\n<style>") +
         viewer::kCss + "</style></head><body>\n" + viewer::kHtml + "<script>const OKO = " + data +
         ";</script>\n<script>" + viewer::kJs + "</script>\n</body></html>\n";
}

std::string Page(const nlohmann::json& payload) { return ViewerPage(ScriptSafe(JsonText(payload))); }

}  // namespace

std::string EncodeProbabilities(std::span<const float> p) {
  std::vector<uint8_t> bytes;
  bytes.reserve(p.size());
  for (float v : p) bytes.push_back(Quantize(v, false, 1.0f));
  return Base64(bytes);
}

std::string RenderChatPage(const ChatPageModel& m) {
  const nlohmann::json server = {{"model", m.name}, {"layers", m.layers}, {"heads", m.heads}, {"chat", m.chat}};
  // The chat page draws each answer's attention with the viewer, in a frame whose page
  // is this one with the payload filled in (chat.js).
  const nlohmann::json viewer_page = ViewerPage(std::string(kChatPayloadMark));
  return std::string("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>oko chat</title>\n"
         // No favicon request: the page asks nothing of the network but its answers.
         "<link rel=\"icon\" href=\"data:,\">\n<style>") +
         viewer::kChatCss + "</style></head><body>\n" + viewer::kChatHtml + "<script>const OKO_SERVER = " +
         ScriptSafe(JsonText(server)) + ";\nconst VIEWER_PAGE = " + ScriptSafe(JsonText(viewer_page)) +
         ";</script>\n<script>" + viewer::kChatJs + "</script>\n</body></html>\n";
}

std::string RenderTraceHtml(const TraceData& t, const std::string& title, int64_t layer, int64_t head) {
  nlohmann::json p = Payload(t, false, title);
  p["initial"] = {{"layer", layer}, {"head", head}};
  return Page(p);
}

std::string RenderDiffHtml(const TraceDiff& d, const std::string& title, int64_t layer, int64_t head) {
  nlohmann::json p = Payload(d.delta, true, title);
  p["initial"] = {{"layer", layer}, {"head", head}};
  nlohmann::json drift = nlohmann::json::array();
  for (const HeadDrift& h : d.ranked)
    drift.push_back({{"layer", h.layer}, {"head", h.head}, {"jsd", h.jsd}, {"l1", h.l1},
                     {"max_l1", h.max_l1}, {"worst_query", h.worst_query}});
  p["drift"] = drift;
  return Page(p);
}

}  // namespace oko
