// RequestConnection finds a request's socket by its addresses and tells a client that
// closed from one that is there (or sent more): real TCP sockets on loopback.
#include "tools/request_connection.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace oko {
namespace {

int Port(int fd, bool peer) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  (peer ? getpeername : getsockname)(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A listening socket, a client connected to it and the server's end of that connection.
struct Connection {
  Connection() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener, 4), 0);
    a.sin_port = htons(static_cast<uint16_t>(Port(listener, false)));
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    server = accept(listener, nullptr, nullptr);
    request.local_addr = request.remote_addr = "127.0.0.1";
    request.local_port = Port(server, false);
    request.remote_port = Port(server, true);
  }
  ~Connection() {
    for (int fd : {listener, client, server})
      if (fd >= 0) close(fd);
  }
  void CloseClient() {
    close(client);
    client = -1;
  }
  int listener = -1, client = -1, server = -1;
  httplib::Request request;
};

// The FIN of a close reaches loopback's other end at once, but poll for it a while.
bool GoneWithin(const RequestConnection& c, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!c.ClientGone()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(RequestConnection, FindsTheSocketAndSeesTheClientClose) {
  Connection c;
  const RequestConnection watch(c.request);
  EXPECT_TRUE(watch.found());
  EXPECT_FALSE(watch.ClientGone());
  // A pipelined request waiting to be read: still there.
  ASSERT_EQ(send(c.client, "GET", 3, 0), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(watch.ClientGone());
  char buf[3];
  ASSERT_EQ(recv(c.server, buf, 3, 0), 3);
  EXPECT_FALSE(watch.ClientGone());
  c.CloseClient();
  EXPECT_TRUE(GoneWithin(watch, std::chrono::seconds(5)));
}

TEST(RequestConnection, AnotherConnectionsAddressesAreNotIt) {
  Connection c;
  httplib::Request other = c.request;
  other.remote_port = c.request.local_port;  // no socket has these ends
  const RequestConnection watch(other);
  EXPECT_FALSE(watch.found());
  c.CloseClient();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(watch.ClientGone());  // not found: always seems there
}

}  // namespace
}  // namespace oko
