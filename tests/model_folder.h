// Helpers of the tests that look at model folders without oko's loaders: the raw
// bytes, the safetensors header parsed with nlohmann, and copies of shared models.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace oko::test {

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The JSON header of a .safetensors file (order kept, as on disk).
inline nlohmann::ordered_json SafetensorsHeader(const std::string& path) {
  const std::string bytes = ReadBytes(path);
  uint64_t len = 0;
  std::memcpy(&len, bytes.data(), 8);
  return nlohmann::ordered_json::parse(bytes.substr(8, len));
}

// Sum over the header's tensors of the product of their shapes.
inline int64_t HeaderParameterCount(const nlohmann::ordered_json& header) {
  int64_t n = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    int64_t numel = 1;
    for (const auto& d : entry["shape"]) numel *= d.get<int64_t>();
    n += numel;
  }
  return n;
}

// Copies the regular files of `from` into a new folder `to`, writable whatever the
// permissions of the originals (the shared models are read-only).
inline void CopyFolder(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(to);
  for (const auto& e : std::filesystem::directory_iterator(from))
    if (e.is_regular_file())
      WriteBytes((std::filesystem::path(to) / e.path().filename()).string(),
                 ReadBytes(e.path().string()));
}

}  // namespace oko::test
