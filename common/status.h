// Status and Result<T>: how loaders and tools report bad input without exceptions.
// A message says what is wrong, where (file, tensor, field) and, when useful, what to do:
//   "model.safetensors: tensor 'x' has shape [64], expected [128] (head_dim in config.json)"
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace oko {

// Exit statuses of the oko command line (DESIGN.md).
enum class ExitCode : int { kOk = 0, kUsage = 1, kBadInput = 2, kRuntime = 3 };

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Error(std::string message, ExitCode code = ExitCode::kBadInput) {
    Status s;
    s.ok_ = false;
    s.code_ = code;
    s.message_ = std::move(message);
    return s;
  }
  bool ok() const { return ok_; }
  const std::string& message() const { return message_; }
  ExitCode code() const { return code_; }
  // Prefixes the message with context, e.g. the file name: "F: <message>".
  Status WithContext(const std::string& context) const {
    return ok_ ? *this : Error(context + ": " + message_, code_);
  }

 private:
  bool ok_ = true;
  ExitCode code_ = ExitCode::kOk;
  std::string message_;
};

template <typename... Args>
Status Errorf(fmt::format_string<Args...> f, Args&&... args) {
  return Status::Error(fmt::format(f, std::forward<Args>(args)...));
}

// A failure of the machine rather than of the input (a write that fails, a disk that is
// full, a folder that cannot be created): exit status 3 (DESIGN.md).
template <typename... Args>
Status RuntimeErrorf(fmt::format_string<Args...> f, Args&&... args) {
  return Status::Error(fmt::format(f, std::forward<Args>(args)...), ExitCode::kRuntime);
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace oko

// Returns early from a function returning Status or Result<T> when `expr` failed.
#define OKO_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::oko::Status oko_status_ = (expr);        \
    if (!oko_status_.ok()) return oko_status_; \
  } while (0)

#define OKO_CONCAT_INNER(a, b) a##b
#define OKO_CONCAT(a, b) OKO_CONCAT_INNER(a, b)
// OKO_ASSIGN_OR_RETURN(auto x, MakeX()): unwraps a Result or returns its error.
#define OKO_ASSIGN_OR_RETURN(lhs, expr) \
  OKO_ASSIGN_OR_RETURN_IMPL(OKO_CONCAT(oko_result_, __LINE__), lhs, expr)
#define OKO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
