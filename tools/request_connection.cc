#include "tools/request_connection.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace oko {
namespace {

// An address as /proc/net/tcp{,6} spell it: each 4-byte word of its network-order bytes
// printed as a host-order hex number ("0100007F" for 127.0.0.1), then ":" and the port.
std::optional<std::string> ProcNetEndpoint(const std::string& ip, int port) {
  unsigned char bytes[16];
  size_t n = 4;
  if (inet_pton(AF_INET, ip.c_str(), bytes) != 1) {
    if (inet_pton(AF_INET6, ip.c_str(), bytes) != 1) return std::nullopt;
    n = 16;
  }
  std::string out;
  for (size_t i = 0; i < n; i += 4) {
    uint32_t word;
    std::memcpy(&word, bytes + i, 4);
    out += fmt::format("{:08X}", word);
  }
  return out + fmt::format(":{:04X}", port);
}

// The inode of the TCP socket with these ends, from the kernel's table, or "".
std::string SocketInode(const std::string& local, const std::string& remote) {
  for (const char* table : {"/proc/self/net/tcp", "/proc/self/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, l, r, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> l >> r >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (l == local && r == remote) return inode;
    }
  }
  return "";
}

// The descriptor whose link reads socket:[inode]. Only names are read (readlink), so no
// other thread's descriptor is touched while it may be closing.
int FdOfInode(const std::string& inode) {
  const std::string want = "socket:[" + inode + "]";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(entry.path(), link_ec);
    if (link_ec || target.string() != want) continue;
    const std::string name = entry.path().filename().string();
    int fd = -1;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec == std::errc()) return fd;
  }
  return -1;
}

int FindSocket(const httplib::Request& req) {
  const auto local = ProcNetEndpoint(req.local_addr, req.local_port);
  const auto remote = ProcNetEndpoint(req.remote_addr, req.remote_port);
  if (!local || !remote) return -1;
  const std::string inode = SocketInode(*local, *remote);
  return inode.empty() || inode == "0" ? -1 : FdOfInode(inode);
}

}  // namespace

RequestConnection::RequestConnection(const httplib::Request& req) : fd_(FindSocket(req)) {}

bool RequestConnection::ClientGone() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;  // nothing to read: still connected
  if ((p.revents & (POLLERR | POLLNVAL)) != 0) return true;
  char byte;
  const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace oko
