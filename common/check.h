// OKO_CHECK: an always-on precondition check for programmer errors in engine/ and ops/
// (never for user input: that gets a Status). Prints file:line and the message, aborts.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace oko::internal {
[[noreturn]] inline void CheckFailed(const char* file, int line, const char* cond,
                                     const std::string& msg) {
  std::fprintf(stderr, "%s:%d: check failed: %s %s\n", file, line, cond, msg.c_str());
  std::abort();
}
}  // namespace oko::internal

#define OKO_CHECK(cond, ...)                                                              \
  do {                                                                                    \
    if (__builtin_expect(!(cond), 0))                                                     \
      ::oko::internal::CheckFailed(__FILE__, __LINE__, #cond, fmt::format("" __VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define OKO_DCHECK(cond, ...) \
  do {                        \
  } while (0)
#else
#define OKO_DCHECK(cond, ...) OKO_CHECK(cond, __VA_ARGS__)
#endif
