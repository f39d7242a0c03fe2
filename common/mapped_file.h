// MappedFile: a read-only memory map of a whole file, unmapped on destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <string>

#include "common/limits.h"
#include "common/status.h"

namespace oko {

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const std::byte* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const std::byte* data_;
  size_t size_;
};

// Gives back the pages of [p, p + n) of a read-only file mapping that lie wholly inside it
// (their contents stay readable: a later access reads them in again), and maps them in
// small pages from now on. For weights that were converted or repacked at load and are
// not read again. Best effort.
void ReleaseMappedPages(const void* p, size_t n);

// `bytes` of memory streamed at every token (weights, the KV cache), 64-byte aligned, or
// nullptr when memory runs out. Large ones are 2 MiB aligned and advised to huge pages,
// as mapped weight files are (MappedFile::Open): with the kernel's transparent huge pages
// in `madvise` mode, weights copied at load on 4 KiB pages decoded slower than the same
// bytes mapped, and decode attention read a KV cache on 4 KiB pages at 14 GB/s where huge
// pages gave 22 (docs/PERFORMANCE.md, session 22). Untouched pages cost no memory; a
// touched byte commits its whole 2 MiB, except in the first `small_prefix` bytes, which
// stay on 4 KiB pages (for memory that is touched first and may be all that is used).
std::shared_ptr<std::byte> AllocateStreamedBytes(size_t bytes, size_t small_prefix = 0);
// Faults in every page of [p, p + bytes) as a write would, contents unchanged, so that a
// later timed run does not pay their first touch. Advisory: kernels before 5.14 ignore it.
void CommitPages(std::byte* p, size_t bytes);

// Drops a file just written (and synced) from the page cache, so that its first mapping
// reads it in huge folios (see MappedFile::Open) instead of keeping the small ones the
// writes made. Best effort: nothing happens where the kernel does not support it.
void DropFromPageCache(const std::string& path);

// Reads all of `in` (a pipe, say) into a string, refusing more than `max_bytes`; errors
// start with `name`.
Result<std::string> ReadStreamToString(std::istream& in, const std::string& name,
                                       uint64_t max_bytes);

// Reads a whole (small) file into a string; errors name the file. A file larger than
// `max_bytes` is refused with a message that names the limit (common/limits.h), also
// when it is not a regular file (/dev/stdin) and its size shows only as it is read.
Result<std::string> ReadFileToString(const std::string& path,
                                     uint64_t max_bytes = kMaxReadFileBytes);

// Whether `path` exists, without throwing: true also when it cannot be told (a symlink
// loop, no permission), so that opening it then reports the real error with the file name.
bool PathExists(const std::string& path);

}  // namespace oko
