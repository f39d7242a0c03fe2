#include "common/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace oko {

Result<AtomicFile> AtomicFile::Create(const std::string& path) {
  std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr)
    return RuntimeErrorf("{}: cannot write (creating {}): {}", path, tmp, std::strerror(errno));
  return AtomicFile(path, std::move(tmp), f);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_(std::move(other.tmp_)),
      file_(other.file_),
      written_(other.written_) {
  other.file_ = nullptr;
  other.tmp_.clear();
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!tmp_.empty()) std::remove(tmp_.c_str());
}

Status AtomicFile::Write(const void* data, size_t size) {
  if (file_ == nullptr) return RuntimeErrorf("{}: write after close", path_);
  if (size > 0 && std::fwrite(data, 1, size, file_) != size)
    return RuntimeErrorf("{}: write failed: {}", tmp_, std::strerror(errno));
  written_ += size;
  return {};
}

Status AtomicFile::Commit() {
  if (file_ == nullptr) return RuntimeErrorf("{}: commit after close", path_);
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) return RuntimeErrorf("{}: write failed: {}", tmp_, std::strerror(errno));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    return RuntimeErrorf("{}: cannot rename into place: {}", path_, std::strerror(errno));
  tmp_.clear();
  return {};
}

Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  OKO_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path));
  OKO_RETURN_IF_ERROR(f.Write(contents));
  return f.Commit();
}

}  // namespace oko
