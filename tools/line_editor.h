// LineEditor: libedit line editing and history for `oko chat` on a terminal, and Ctrl-C.
// SIGINT sets a flag that the token loop checks (stopping an answer) and wakes the key
// reader, so a Ctrl-C at the prompt ends the read even when it arrives while libedit is
// busy between reads (libedit alone would lose it until the next key).
#pragma once

#include <atomic>
#include <string>

namespace oko {

// A line typed at the terminal, or why there is none.
struct TypedLine {
  enum Kind { kText, kInterrupted, kEnd } kind;
  std::string text;
};

class LineEditor {
 public:
  // Selects a UTF-8 character locale (libedit encodes the line it returns by it) and
  // installs the SIGINT handler. One per process.
  LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Reads a line after `prompt`: kEnd on Ctrl-D at an empty line, kInterrupted on Ctrl-C.
  TypedLine ReadLine(const char* prompt);
  void AddHistory(const std::string& line);
  // True once Ctrl-C was pressed since the last ClearInterrupt() or ReadLine().
  const std::atomic<bool>* interrupted() const;
  void ClearInterrupt();
};

}  // namespace oko
