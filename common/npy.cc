#include "common/npy.h"

#include <cstring>

#include "common/atomic_file.h"
#include "common/mapped_file.h"

namespace oko {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

double NpyArray::At(int64_t i) const {
  const uint8_t* p = data.data();
  if (descr == "<f4") { float v; std::memcpy(&v, p + 4 * i, 4); return v; }
  if (descr == "<f8") { double v; std::memcpy(&v, p + 8 * i, 8); return v; }
  if (descr == "<i4") { int32_t v; std::memcpy(&v, p + 4 * i, 4); return v; }
  if (descr == "<i8") { int64_t v; std::memcpy(&v, p + 8 * i, 8); return static_cast<double>(v); }
  if (descr == "|u1") return p[i];
  return 0.0;
}

std::vector<float> NpyArray::AsFloats() const {
  std::vector<float> v(numel());
  for (int64_t i = 0; i < numel(); ++i) v[i] = static_cast<float>(At(i));
  return v;
}

std::vector<int64_t> NpyArray::AsInts() const {
  std::vector<int64_t> v(numel());
  for (int64_t i = 0; i < numel(); ++i) v[i] = static_cast<int64_t>(At(i));
  return v;
}

Result<NpyArray> ReadNpy(const std::string& path) {
  OKO_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    return Errorf("{}: not a .npy file", path);
  if (bytes[6] != 1) return Errorf("{}: .npy version {} not supported (only 1.0)", path, int(bytes[6]));
  uint16_t header_len;
  std::memcpy(&header_len, bytes.data() + 8, 2);
  if (10u + header_len > bytes.size()) return Errorf("{}: truncated .npy header", path);
  const std::string header = bytes.substr(10, header_len);
  // The header is a Python dict literal written by numpy; three fields matter.
  NpyArray a;
  auto value_after = [&](const std::string& key) -> std::string {
    const size_t k = header.find("'" + key + "':");
    if (k == std::string::npos) return "";
    size_t v = header.find_first_not_of(' ', k + key.size() + 3);
    return v == std::string::npos ? "" : header.substr(v);
  };
  const std::string descr = value_after("descr");
  if (descr.size() < 2 || descr[0] != '\'' || descr.find('\'', 1) == std::string::npos)
    return Errorf("{}: .npy header has no descr", path);
  a.descr = descr.substr(1, descr.find('\'', 1) - 1);
  if (value_after("fortran_order").rfind("False", 0) != 0)
    return Errorf("{}: Fortran-order .npy not supported", path);
  const std::string shape = value_after("shape");
  if (shape.empty() || shape[0] != '(' || shape.find(')') == std::string::npos)
    return Errorf("{}: .npy header has no shape", path);
  int64_t dim = -1;
  for (char ch : shape.substr(1, shape.find(')') - 1)) {
    if (ch >= '0' && ch <= '9') {
      dim = (dim < 0 ? 0 : dim * 10) + (ch - '0');
    } else if (dim >= 0) {
      a.shape.push_back(dim);
      dim = -1;
    }
  }
  if (dim >= 0) a.shape.push_back(dim);
  size_t esize = a.descr == "<f8" || a.descr == "<i8" ? 8 : a.descr == "|u1" ? 1 : 4;
  if (a.descr != "<f4" && a.descr != "<f8" && a.descr != "<i4" && a.descr != "<i8" &&
      a.descr != "|u1")
    return Errorf("{}: dtype '{}' not supported", path, a.descr);
  const size_t need = static_cast<size_t>(a.numel()) * esize;
  if (bytes.size() - 10 - header_len != need)
    return Errorf("{}: data is {} bytes, shape needs {}", path, bytes.size() - 10 - header_len, need);
  a.data.assign(bytes.begin() + 10 + header_len, bytes.end());
  return a;
}

Status WriteNpyF32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  std::string dims;
  int64_t n = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ",";
    n *= d;
  }
  if (shape.size() > 1) dims.pop_back();  // (3,) for 1-D, (2,3) otherwise
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.append(reinterpret_cast<const char*>(&len), 2);
  out += header;
  out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * 4);
  return WriteFileAtomically(path, out);
}

}  // namespace oko
