// The TCP connection an HTTP request came on, to tell whether its client is still there.
// cpp-httplib 0.11 hands a handler no socket (a content provider's DataSink can tell, but
// only after the status is committed, which a whole JSON reply must not do early), so the
// socket is found by the request's addresses: the kernel's TCP table (/proc/net/tcp,
// tcp6) gives the inode of the connection with the request's local and remote ends (a
// unique 4-tuple), and /proc/self/fd the descriptor linked to it. Only that descriptor,
// which the handler's own thread holds, is ever used. Linux; elsewhere, or when not
// found, the client always seems there.
#pragma once

#include <httplib.h>

namespace oko {

class RequestConnection {
 public:
  // Valid while the handler of `req` runs (httplib keeps the socket open until it returns).
  explicit RequestConnection(const httplib::Request& req);

  // True once the client closed the connection (or reset it). Bytes waiting to be read
  // (a pipelined request) mean it is still there, as does a socket that was not found.
  bool ClientGone() const;

  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace oko
