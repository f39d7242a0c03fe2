#include "tools/token_ids.h"

#include <charconv>
#include <limits>

namespace oko {
namespace {

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") + 1 - b);
}

}  // namespace

Result<std::vector<int32_t>> ParseTokenIds(std::string_view text, std::string_view flag) {
  std::string_view body = Trim(text);
  if (body.empty()) return Errorf("{} is empty: give comma-separated token ids, e.g. 1,2,3", flag);
  if (body.front() == '[') {
    if (body.back() != ']') return Errorf("{}: '[' without a closing ']'", flag);
    body = Trim(body.substr(1, body.size() - 2));
    if (body.empty()) return std::vector<int32_t>();
  }
  std::vector<int32_t> ids;
  for (size_t start = 0; start <= body.size();) {
    size_t end = body.find(',', start);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view item = Trim(body.substr(start, end - start));
    int64_t id = -1;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || id < 0 ||
        id > std::numeric_limits<int32_t>::max())
      return Errorf("{}: '{}' is not a token id (ids are integers from 0)", flag, item);
    ids.push_back(static_cast<int32_t>(id));
    start = end + 1;
  }
  return ids;
}

Status CheckTokenRange(std::span<const int32_t> ids, int64_t vocab_size, std::string_view source) {
  for (int32_t id : ids)
    if (id < 0 || id >= vocab_size)
      return Errorf("{}: token id {} is outside the vocabulary [0, {})", source, id, vocab_size);
  return {};
}

}  // namespace oko
