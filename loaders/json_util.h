// Parsing JSON text with nlohmann and an error that says where and why: the file, the
// line and column, and what the parser saw (e.g. "ill-formed UTF-8 byte"), instead of a
// bare "not valid JSON".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace oko {

// The parser's reason without its "[json.exception.parse_error.101] " prefix.
inline std::string JsonErrorReason(const std::exception& e) {
  std::string what = e.what();
  if (what.starts_with("[json.exception.")) {
    const size_t close = what.find("] ");
    if (close != std::string::npos) what = what.substr(close + 2);
  }
  return what;
}

// Parses `text` as JSON (nlohmann::json or nlohmann::ordered_json); `path` names the file
// and `what` the part of it, e.g. "PATH: header is not valid JSON: <reason>".
template <typename Json = nlohmann::json>
Result<Json> ParseJsonText(std::string_view text, const std::string& path,
                           std::string_view what = "") {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Errorf("{}: {}{}not valid JSON: {}", path, what, what.empty() ? "" : " is ",
                  JsonErrorReason(e));
  }
}

}  // namespace oko
