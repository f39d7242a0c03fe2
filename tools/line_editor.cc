#include "tools/line_editor.h"

#include <editline/readline.h>
#include <fcntl.h>
#include <langinfo.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace oko {
namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "written by a signal handler");
int g_wake[2] = {-1, -1};  // self-pipe: the handler writes, the key reader polls

extern "C" void OnInterrupt(int) {
  const int saved = errno;
  g_interrupted.store(true);
  [[maybe_unused]] const ssize_t n = write(g_wake[1], "!", 1);  // full pipe: already awake
  errno = saved;
}

void DrainWakePipe() {
  char buf[64];
  while (read(g_wake[0], buf, sizeof buf) > 0) {
  }
}

// One byte of `fd`, false at end of input or once Ctrl-C was pressed. The flag is
// checked before every wait, and the handler's pipe byte ends a wait already begun.
bool ReadByte(int fd, unsigned char* byte) {
  for (;;) {
    if (g_interrupted.load()) return false;
    struct pollfd fds[2] = {{fd, POLLIN, 0}, {g_wake[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (fds[1].revents != 0) {
      DrainWakePipe();
      continue;
    }
    const ssize_t n = read(fd, byte, 1);
    if (n == 1) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// libedit's key reader (rl_getc_function): a code point decoded from UTF-8, as libedit's
// own reader returns, or -1, which ends the line.
extern "C" int ReadKey(FILE* in) {
  const int fd = fileno(in);
  unsigned char lead = 0;
  if (!ReadByte(fd, &lead)) return -1;
  const int extra = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
  int code = extra == 3 ? lead & 0x07 : extra == 2 ? lead & 0x0F : extra == 1 ? lead & 0x1F : lead;
  for (int i = 0; i < extra; ++i) {
    unsigned char next = 0;
    if (!ReadByte(fd, &next)) return -1;
    code = (code << 6) | (next & 0x3F);
  }
  return code;
}

void UseUtf8Locale() {
  const char* set = std::setlocale(LC_CTYPE, "");
  if (set == nullptr || std::strcmp(nl_langinfo(CODESET), "UTF-8") != 0) std::setlocale(LC_CTYPE, "C.UTF-8");
}

}  // namespace

LineEditor::LineEditor() {
  UseUtf8Locale();
  if (pipe2(g_wake, O_NONBLOCK | O_CLOEXEC) != 0) g_wake[0] = g_wake[1] = -1;
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // output to the terminal must not fail with EINTR
  sigaction(SIGINT, &action, nullptr);
  rl_readline_name = "oko";
  // Both read at libedit's first initialisation. Its own SIGINT handling is off: it
  // switches the terminal to cooked mode mid-read and re-raises to the whole process
  // group; ReadKey ending the line is all a Ctrl-C at the prompt needs.
  rl_catch_signals = 0;
  rl_getc_function = ReadKey;
  using_history();
}

TypedLine LineEditor::ReadLine(const char* prompt) {
  ClearInterrupt();
  char* raw = readline(prompt);
  // Null both at end of input and when Ctrl-C ended the read.
  if (raw == nullptr) {
    const bool interrupted = g_interrupted.exchange(false);
    std::fputs("\n", stdout);
    return {interrupted ? TypedLine::kInterrupted : TypedLine::kEnd, {}};
  }
  TypedLine line{TypedLine::kText, raw};
  std::free(raw);
  return line;
}

void LineEditor::AddHistory(const std::string& line) { add_history(line.c_str()); }

const std::atomic<bool>* LineEditor::interrupted() const { return &g_interrupted; }

void LineEditor::ClearInterrupt() {
  g_interrupted.store(false);
  DrainWakePipe();
}

}  // namespace oko
