// AtomicFile: everything oko writes goes to "PATH.tmp.PID" and is renamed over PATH only
// when complete, so a crash or kill -9 leaves the old file or none, never half a file.
// The temporary name ends in ".tmp.PID", so it never matches the "*.safetensors" (or any
// other extension) a reader globs for. Every failure is a runtime error (exit status 3).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "common/status.h"

namespace oko {

class AtomicFile {
 public:
  static Result<AtomicFile> Create(const std::string& path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  ~AtomicFile();  // removes the temporary file unless Commit() succeeded

  Status Write(const void* data, size_t size);
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  // Flushes, fsyncs and renames the temporary file over the final path.
  Status Commit();
  uint64_t bytes_written() const { return written_; }

 private:
  AtomicFile(std::string path, std::string tmp, std::FILE* f)
      : path_(std::move(path)), tmp_(std::move(tmp)), file_(f) {}
  std::string path_;
  std::string tmp_;
  std::FILE* file_ = nullptr;
  uint64_t written_ = 0;
};

// Writes `contents` to `path` atomically.
Status WriteFileAtomically(const std::string& path, std::string_view contents);

}  // namespace oko
