#include "common/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace oko {

constexpr size_t kHugePageBytes = size_t{2} << 20;

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
  // Weights are streamed at every token. With huge pages advised, faults on a file not
  // yet in the page cache build 2 MiB folios (ext4 large folios, kernel >= 6.x) and map
  // each with one TLB entry: reading the 0.6B model went from 12.0 to 15.2 GB/s on one
  // core (docs/PERFORMANCE.md). Advisory: files already cached keep their folios.
  if (size >= kHugePageBytes) ::madvise(p, size, MADV_HUGEPAGE);
  ::close(fd);  // the mapping keeps the file alive
  return std::unique_ptr<MappedFile>(
      new MappedFile(path, static_cast<const std::byte*>(p), size));
}

std::shared_ptr<std::byte> AllocateStreamedBytes(size_t bytes, size_t small_prefix) {
  if (bytes < kHugePageBytes) {
    void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (mem == nullptr) return nullptr;
    return std::shared_ptr<std::byte>(static_cast<std::byte*>(mem), std::free);
  }
  // Straight from the kernel, not the allocator: mimalloc's pages of a large block may be
  // faulted in already (no huge pages then, whatever is advised). One huge page more, to
  // start on a 2 MiB boundary.
  const size_t size = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes + kHugePageBytes;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto address = reinterpret_cast<uintptr_t>(p);
  auto* start = reinterpret_cast<std::byte*>((address + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
  const size_t small = std::min((small_prefix + 4095) / 4096 * 4096, size - kHugePageBytes);
  ::madvise(start + small, size - kHugePageBytes - small, MADV_HUGEPAGE);
  return std::shared_ptr<std::byte>(start, [p, size](std::byte*) { ::munmap(p, size); });
}

void CommitPages(std::byte* p, size_t bytes) {
  if (bytes == 0) return;
  const auto begin = reinterpret_cast<uintptr_t>(p) / 4096 * 4096;
  const auto end = reinterpret_cast<uintptr_t>(p) + bytes;
  (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

MappedFile::~MappedFile() {
  if (size_ > 0) ::munmap(const_cast<std::byte*>(data_), size_);
}

void DropFromPageCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
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
  return ReadStreamToString(in, path, max_bytes);
}

Result<std::string> ReadStreamToString(std::istream& in, const std::string& name,
                                       uint64_t max_bytes) {
  std::string text;
  std::vector<char> chunk(size_t{1} << 16);
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    text.append(chunk.data(), static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes)
      return Errorf("{}: more than {} bytes, over the limit for this input", name, max_bytes);
  }
  if (in.bad()) return Errorf("{}: read error", name);
  return text;
}

void ReleaseMappedPages(const void* p, size_t n) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const auto end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (end <= begin) return;
  // Not in huge pages from now on: a 2 MiB page of the file that a neighbour still in use
  // shares would otherwise come back whole when the neighbour is read, the released part
  // with it (0.6B Q4_K_M with its Q4_K interleaved at load: 113 MB of released pages
  // resident again).
  (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_NOHUGEPAGE);
  (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace oko
