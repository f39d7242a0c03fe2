#include "common/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace oko {

Result<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errorf("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Errorf("{}: not a regular file", path);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* p = nullptr;
  if (size > 0) {
    p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return Errorf("{}: mmap failed: {}", path, std::strerror(err));
    }
  }
  ::close(fd);  // the mapping keeps the file alive
  return std::unique_ptr<MappedFile>(
      new MappedFile(path, static_cast<const std::byte*>(p), size));
}

MappedFile::~MappedFile() {
  if (size_ > 0) ::munmap(const_cast<std::byte*>(data_), size_);
}

bool PathExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) || ec;
}

Result<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errorf("{}: cannot open: {}", path, std::strerror(errno));
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Errorf("{}: is a folder, not a file", path);
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_bytes)
    return Errorf("{}: the file is {} bytes, over the limit of {} bytes for this file", path, size,
                  max_bytes);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Errorf("{}: read error", path);
  return ss.str();
}

}  // namespace oko
