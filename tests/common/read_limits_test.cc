// Reading whole inputs stops at their limit, also when the size is unknown up front.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <sstream>
#include <string>
#include <thread>

#include "common/mapped_file.h"

namespace oko {
namespace {

TEST(ReadStreamToString, ReadsUpToTheLimitAndRefusesMore) {
  const std::string text(100000, 'x');
  std::istringstream exact(text);
  auto ok = ReadStreamToString(exact, "stdin", text.size());
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(*ok, text);

  std::istringstream over(text);
  auto refused = ReadStreamToString(over, "stdin", text.size() - 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "stdin: more than 99999 bytes, over the limit for this input");
}

TEST(ReadFileToString, APipeOverTheLimitIsRefused) {
  std::signal(SIGPIPE, SIG_IGN);  // the writer's last writes find the pipe closed
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  // More than the pipe buffer: the writer blocks until the reader gives up and closes.
  std::thread writer([fd = fds[1]] {
    const std::string chunk(4096, 'y');
    for (int i = 0; i < 64; ++i)
      if (write(fd, chunk.data(), chunk.size()) < 0) break;
    close(fd);
  });
  const std::string path = "/proc/self/fd/" + std::to_string(fds[0]);
  auto r = ReadFileToString(path, 100000);
  close(fds[0]);
  writer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), path + ": more than 100000 bytes, over the limit for this input");
}

}  // namespace
}  // namespace oko
