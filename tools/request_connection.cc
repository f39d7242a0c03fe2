#include "tools/request_connection.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <string>

namespace oko {
namespace {

using NameFn = int (*)(int, sockaddr*, socklen_t*);

// The numeric address and port of a socket's end, as httplib spells them (getnameinfo
// with NI_NUMERICHOST), or false.
bool Endpoint(NameFn name_of, int fd, std::string* ip, int* port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (name_of(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (addr.ss_family == AF_INET) {
    *port = ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    *port = ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  } else {
    return false;
  }
  std::array<char, NI_MAXHOST> host{};
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host.data(), host.size(), nullptr, 0,
                  NI_NUMERICHOST) != 0)
    return false;
  *ip = host.data();
  return true;
}

bool IsEndpoint(NameFn name_of, int fd, const std::string& want_ip, int want_port) {
  std::string ip;
  int port = -1;
  return Endpoint(name_of, fd, &ip, &port) && port == want_port && ip == want_ip;
}

int FindSocket(const httplib::Request& req) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const std::string name = entry.path().filename().string();
    int fd = -1;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (IsEndpoint(getsockname, fd, req.local_addr, req.local_port) &&
        IsEndpoint(getpeername, fd, req.remote_addr, req.remote_port))
      return fd;
  }
  return -1;
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
