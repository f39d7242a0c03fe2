#include "tools/flags.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "loaders/gguf.h"

namespace oko {
namespace {

using Check = std::function<Status()>;

// The checks of every subcommand, run by CheckFlags for the one the user chose.
std::map<const CLI::App*, std::vector<Check>>& Registry() {
  static std::map<const CLI::App*, std::vector<Check>> checks;
  return checks;
}

// CLI11 stores the text in `text`; `convert` runs when the option was given.
CLI::Option* AddChecked(CLI::App* app, const std::string& names, const std::string& help, const char* type,
                        const std::function<Status(const std::string& flag, const std::string& text)>& convert) {
  auto text = std::make_shared<std::string>();
  CLI::Option* option = app->add_option(names, *text, help)->type_name(type);
  Registry()[app].push_back([option, text, convert]() -> Status {
    if (option->count() == 0) return {};
    return convert(FlagName(option), *text);
  });
  return option;
}

std::string Bound(double v, bool open, bool is_min) {
  return is_min ? fmt::format("{}{}", open ? "(" : "[", v) : fmt::format("{}{}", v, open ? ")" : "]");
}

Status RangeError(const std::string& flag, const std::string& text, const RealRange& r) {
  const bool has_min = std::isfinite(r.min), has_max = std::isfinite(r.max);
  if (has_min && has_max)
    return Status::Error(fmt::format("{} must be in {}, {}, got {}", flag, Bound(r.min, r.min_open, true),
                                     Bound(r.max, r.max_open, false), text),
                         ExitCode::kUsage);
  if (has_min)
    return Status::Error(
        fmt::format("{} must be {} {} (got {})", flag, r.min_open ? "greater than" : "at least", r.min, text),
        ExitCode::kUsage);
  return Status::Error(
      fmt::format("{} must be {} {} (got {})", flag, r.max_open ? "less than" : "at most", r.max, text),
      ExitCode::kUsage);
}

Status Usage(std::string message) { return Status::Error(std::move(message), ExitCode::kUsage); }

}  // namespace

std::string FlagName(const CLI::Option* option) {
  if (!option->get_snames().empty()) return "-" + option->get_snames().front();
  if (!option->get_lnames().empty()) return "--" + option->get_lnames().front();
  return option->get_name();
}

Result<int64_t> ParseIntFlag(const std::string& flag, const std::string& text, const IntRange& range) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || end != text.data() + text.size() || (ec != std::errc() && ec != std::errc::result_out_of_range))
    return Usage(fmt::format("{}: '{}' is not an integer", flag, text));
  const bool negative = text.front() == '-';
  if (ec == std::errc::result_out_of_range ? negative : v < range.min)
    return Usage(fmt::format("{} must be at least {} (got {})", flag, range.min, text));
  if (ec == std::errc::result_out_of_range || v > range.max)
    return Usage(fmt::format("{} {} is too large (max {}{})", flag, text, range.max, range.max_reason));
  return v;
}

Result<uint64_t> ParseUint64Flag(const std::string& flag, const std::string& text, uint64_t min) {
  if (!text.empty() && text.front() == '-') {
    OKO_ASSIGN_OR_RETURN(int64_t ignored, ParseIntFlag(flag, text, {0, 0}));  // names a non-number
    (void)ignored;
  }
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || end != text.data() + text.size() || (ec != std::errc() && ec != std::errc::result_out_of_range))
    return Usage(fmt::format("{}: '{}' is not an integer", flag, text));
  if (ec == std::errc::result_out_of_range)
    return Usage(fmt::format("{} {} is too large (max {})", flag, text, std::numeric_limits<uint64_t>::max()));
  if (v < min) return Usage(fmt::format("{} must be at least {} (got {})", flag, min, text));
  return v;
}

Result<double> ParseRealFlag(const std::string& flag, const std::string& text, const RealRange& range) {
  double v = 0;
  // chars_format::general: no hex ("0x10"), no leading '+' or space.
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::general);
  if (text.empty() || end != text.data() + text.size() || (ec != std::errc() && ec != std::errc::result_out_of_range))
    return Usage(fmt::format("{}: '{}' is not a number", flag, text));
  // from_chars leaves v unset out of range; strtod says which way (HUGE_VAL or 0).
  if (ec == std::errc::result_out_of_range) v = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(v)) return Usage(fmt::format("{} must be a finite number (got {})", flag, text));
  const bool below = range.min_open ? v <= range.min : v < range.min;
  const bool above = range.max_open ? v >= range.max : v > range.max;
  if (below || above) return RangeError(flag, text, range);
  return v;
}

CLI::Option* AddIntFlag(CLI::App* app, const std::string& names, int64_t* value, const IntRange& range,
                        const std::string& help) {
  return AddChecked(app, names, help, "INT", [=](const std::string& flag, const std::string& text) -> Status {
    OKO_ASSIGN_OR_RETURN(*value, ParseIntFlag(flag, text, range));
    return {};
  });
}

CLI::Option* AddIntFlag(CLI::App* app, const std::string& names, int* value, const IntRange& range,
                        const std::string& help) {
  IntRange r = range;
  r.max = std::min<int64_t>(r.max, std::numeric_limits<int>::max());
  return AddChecked(app, names, help, "INT", [=](const std::string& flag, const std::string& text) -> Status {
    OKO_ASSIGN_OR_RETURN(const int64_t v, ParseIntFlag(flag, text, r));
    *value = static_cast<int>(v);
    return {};
  });
}

CLI::Option* AddIntFlag(CLI::App* app, const std::string& names, std::optional<int64_t>* value,
                        const IntRange& range, const std::string& help) {
  return AddChecked(app, names, help, "INT", [=](const std::string& flag, const std::string& text) -> Status {
    OKO_ASSIGN_OR_RETURN(*value, ParseIntFlag(flag, text, range));
    return {};
  });
}

CLI::Option* AddUint64Flag(CLI::App* app, const std::string& names, std::optional<uint64_t>* value,
                           const std::string& help) {
  return AddChecked(app, names, help, "INT", [=](const std::string& flag, const std::string& text) -> Status {
    OKO_ASSIGN_OR_RETURN(*value, ParseUint64Flag(flag, text, 0));
    return {};
  });
}

CLI::Option* AddUint64Flag(CLI::App* app, const std::string& names, uint64_t* value, uint64_t min,
                           const std::string& help) {
  return AddChecked(app, names, help, "INT", [=](const std::string& flag, const std::string& text) -> Status {
    OKO_ASSIGN_OR_RETURN(*value, ParseUint64Flag(flag, text, min));
    return {};
  });
}

CLI::Option* AddRealFlag(CLI::App* app, const std::string& names, std::optional<float>* value,
                         const RealRange& range, const std::string& help) {
  return AddChecked(app, names, help, "NUM", [=](const std::string& flag, const std::string& text) -> Status {
    OKO_ASSIGN_OR_RETURN(const double v, ParseRealFlag(flag, text, range));
    if (std::abs(v) > std::numeric_limits<float>::max())
      return Usage(fmt::format("{} {} is too large", flag, text));
    *value = static_cast<float>(v);
    return {};
  });
}

CLI::Option* AddFolderFlag(CLI::App* app, const std::string& names, std::string* value, const std::string& help) {
  return AddChecked(app, names, help, "DIR", [=](const std::string& flag, const std::string& text) -> Status {
    std::error_code ec;
    if (text.empty()) return Usage(fmt::format("{} is empty", flag));
    if (!std::filesystem::is_directory(text, ec))
      return Errorf("{} {}: {}", flag, text, std::filesystem::exists(text, ec) ? "not a folder" : "no such folder");
    *value = text;
    return {};
  });
}

CLI::Option* AddModelFlag(CLI::App* app, const std::string& names, std::string* value, const std::string& help) {
  return AddChecked(app, names, help, "DIR|FILE.gguf", [=](const std::string& flag, const std::string& text) -> Status {
    std::error_code ec;
    if (text.empty()) return Usage(fmt::format("{} is empty", flag));
    if (IsGgufPath(text) && !std::filesystem::is_directory(text, ec)) {
      if (!std::filesystem::is_regular_file(text, ec))
        return Errorf("{} {}: {}", flag, text, std::filesystem::exists(text, ec) ? "not a file" : "no such file");
    } else if (!std::filesystem::is_directory(text, ec)) {
      return Errorf("{} {}: {}", flag, text,
                    std::filesystem::exists(text, ec) ? "not a folder (nor a .gguf file)" : "no such folder");
    }
    *value = text;
    return {};
  });
}

CLI::Option* AddInputFileFlag(CLI::App* app, const std::string& names, std::string* value, bool allow_stdin,
                              const std::string& help) {
  return AddChecked(app, names, help, "FILE", [=](const std::string& flag, const std::string& text) -> Status {
    std::error_code ec;
    if (text.empty()) return Usage(fmt::format("{} is empty", flag));
    if (!(allow_stdin && text == "-") && !std::filesystem::is_regular_file(text, ec))
      return Errorf("{} {}: {}", flag, text, std::filesystem::exists(text, ec) ? "not a file" : "no such file");
    *value = text;
    return {};
  });
}

Status CheckFlags(const CLI::App* app) {
  const auto it = Registry().find(app);
  if (it == Registry().end()) return {};
  for (const Check& check : it->second) OKO_RETURN_IF_ERROR(check());
  return {};
}

}  // namespace oko
