#include "loaders/jinja_builtins.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <unordered_map>

#include "loaders/jinja_ops.h"
#include "loaders/jinja_strings.h"

namespace oko::jinja {
namespace {

using FilterFn = Value (*)(const Value&, const CallArgs&);
using TestFn = bool (*)(const Value&, const CallArgs&);

// range() refuses to build more items than this; loops have their own limit.
constexpr int64_t kMaxRangeItems = int64_t{1} << 22;
// A positional index no call reaches: CallArgs::Get then only sees keyword arguments.
constexpr size_t kKeywordOnly = SIZE_MAX;

const Value& NoneValue() {
  static const Value kNone = Value::None();
  return kNone;
}

// A str argument, or nullopt for None/absent (Python's `chars=None`).
std::optional<std::string> OptString(const CallArgs& a, size_t i, std::string_view name) {
  const Value& v = a.Get(i, name, NoneValue());
  if (v.is_none() || v.is_undefined()) return std::nullopt;
  if (!v.is_string()) throw TemplateError(fmt::format("argument '{}' must be a string, not {}", name, TypeName(v)));
  return v.as_string();
}

std::string StringArg(const CallArgs& a, size_t i, std::string_view name) {
  std::optional<std::string> s = OptString(a, i, name);
  if (!s) throw TemplateError(fmt::format("missing string argument '{}'", name));
  return *s;
}

int64_t IntArg(const CallArgs& a, size_t i, std::string_view name, int64_t fallback) {
  const Value& v = a.Get(i, name, NoneValue());
  if (v.is_none() || v.is_undefined()) return fallback;
  if (!v.is_int() && !v.is_bool()) throw TemplateError(fmt::format("argument '{}' must be an integer, not {}", name, TypeName(v)));
  return v.AsInteger();
}

Value StrValue(std::string s) {
  CheckStringSize(s.size());
  return Value::Str(std::move(s));
}

std::string Join(const std::vector<Value>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += ToStr(items[i]);
    CheckStringSize(out.size());
  }
  return out;
}

// Python int(str) then int(float(str)), as jinja2's int filter tries them.
std::optional<int64_t> ParseInt(const std::string& text) {
  const std::string s = PyStrip(text, std::nullopt, true, true);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long i = std::strtoll(s.c_str(), &end, 10);
  if (*end == '\0' && errno == 0) return i;
  const double d = std::strtod(s.c_str(), &end);
  if (*end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
  return std::nullopt;
}

// --- filters ---------------------------------------------------------------------

Value FilterLength(const Value& v, const CallArgs&) { return Value::Int(Length(v)); }

Value FilterToJson(const Value& v, const CallArgs& a) {
  return Value::Str(ToJson(v, static_cast<int>(IntArg(a, 0, "indent", -1))));
}

Value FilterTrim(const Value& v, const CallArgs& a) {
  return Value::Str(PyStrip(ToStr(v), OptString(a, 0, "chars"), true, true));
}

Value FilterUpper(const Value& v, const CallArgs&) { return Value::Str(PyUpper(ToStr(v))); }
Value FilterLower(const Value& v, const CallArgs&) { return Value::Str(PyLower(ToStr(v))); }
Value FilterCapitalize(const Value& v, const CallArgs&) { return Value::Str(PyCapitalize(ToStr(v))); }
Value FilterTitle(const Value& v, const CallArgs&) { return Value::Str(JinjaTitle(ToStr(v))); }

Value FilterJoin(const Value& v, const CallArgs& a) {
  const std::string sep = OptString(a, 0, "d").value_or("");
  std::vector<Value> items = Iterate(v);
  if (std::optional<std::string> attr = OptString(a, 1, "attribute")) {
    for (Value& x : items) x = GetItem(x, Value::Str(*attr));
  }
  return Value::Str(Join(items, sep));
}

Value FilterDefault(const Value& v, const CallArgs& a) {
  static const Value kEmpty = Value::Str("");
  static const Value kFalse = Value::Bool(false);
  const bool boolean = Truthy(a.Get(1, "boolean", kFalse));
  if (v.is_undefined() || (boolean && !Truthy(v))) return a.Get(0, "default_value", kEmpty);
  return v;
}

Value FilterFirst(const Value& v, const CallArgs&) {
  std::vector<Value> items = Iterate(v);
  return items.empty() ? Value::MakeUndefined("No first item, sequence was empty.") : items.front();
}

Value FilterLast(const Value& v, const CallArgs&) {
  std::vector<Value> items = Iterate(v);
  return items.empty() ? Value::MakeUndefined("No last item, sequence was empty.") : items.back();
}

Value FilterString(const Value& v, const CallArgs&) { return Value::Str(ToStr(v)); }

Value FilterItems(const Value& v, const CallArgs&) {
  if (v.is_undefined()) return Value::MakeList({});
  if (!v.is_dict()) throw TemplateError(fmt::format("can only get item pairs from a mapping, not {}", TypeName(v)));
  std::vector<Value> pairs;
  for (const auto& [k, x] : v.as_dict().entries) pairs.push_back(Value::MakeList({Value::Str(k), x}, true));
  return Value::MakeList(std::move(pairs));
}

Value FilterList(const Value& v, const CallArgs&) { return Value::MakeList(Iterate(v)); }

Value FilterInt(const Value& v, const CallArgs& a) {
  const int64_t fallback = IntArg(a, 0, "default", 0);
  if (v.is_int() || v.is_bool()) return Value::Int(v.AsInteger());
  if (v.is_float() && std::isfinite(v.as_float()) && std::fabs(v.as_float()) < 9.2e18)
    return Value::Int(static_cast<int64_t>(v.as_float()));
  if (v.is_string()) return Value::Int(ParseInt(v.as_string()).value_or(fallback));
  return Value::Int(fallback);
}

Value FilterFloat(const Value& v, const CallArgs& a) {
  const Value& fallback = a.Get(0, "default", NoneValue());
  const double def = fallback.is_number() ? fallback.AsDouble() : 0.0;
  if (v.is_number()) return Value::Float(v.AsDouble());
  if (v.is_string()) {
    const std::string s = PyStrip(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return Value::Float(d);
  }
  return Value::Float(def);
}

Value FilterAbs(const Value& v, const CallArgs&) {
  if (v.is_float()) return Value::Float(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    return v.AsInteger() < 0 ? Negate(v, true) : Value::Int(v.AsInteger());
  }
  throw TemplateError(fmt::format("bad operand type for abs(): '{}'", TypeName(v)));
}

Value FilterReplace(const Value& v, const CallArgs& a) {
  return StrValue(PyReplace(ToStr(v), StringArg(a, 0, "old"), StringArg(a, 1, "new"), IntArg(a, 2, "count", -1)));
}

Value FilterReverse(const Value& v, const CallArgs&) {
  if (v.is_string()) {
    std::u32string cps = DecodeUtf8(v.as_string());
    return Value::Str(EncodeUtf8(std::u32string(cps.rbegin(), cps.rend())));
  }
  std::vector<Value> items = Iterate(v);
  return Value::MakeList(std::vector<Value>(items.rbegin(), items.rend()));
}

Value FilterSafe(const Value& v, const CallArgs&) { return v; }

// Arguments from `first` on, for a filter or test that a higher-order filter applies.
CallArgs ArgsFrom(const CallArgs& a, size_t first) {
  CallArgs rest;
  for (size_t i = first; i < a.positional.size(); ++i) rest.positional.push_back(a.positional[i]);
  return rest;
}

Value FilterMap(const Value& v, const CallArgs& a) {
  std::vector<Value> items = Iterate(v);
  if (std::optional<std::string> attr = OptString(a, kKeywordOnly, "attribute")) {
    const Value fallback = a.Get(kKeywordOnly, "default", Value());  // a copy: Get may return the temporary
    for (Value& x : items) {
      x = GetItem(x, Value::Str(*attr));
      if (x.is_undefined() && !fallback.is_undefined()) x = fallback;
    }
    return Value::MakeList(std::move(items));
  }
  const std::string filter = StringArg(a, 0, "filter");
  if (!IsKnownFilter(filter)) throw TemplateError(fmt::format("no filter named '{}'", filter));
  const CallArgs rest = ArgsFrom(a, 1);
  for (Value& x : items) x = ApplyFilter(filter, x, rest);
  return Value::MakeList(std::move(items));
}

// select/reject (attr_arg false) and selectattr/rejectattr (attr_arg true).
Value SelectItems(const Value& v, const CallArgs& a, bool attr_arg, bool keep) {
  const std::optional<std::string> attr = attr_arg ? std::optional(StringArg(a, 0, "attr")) : std::nullopt;
  const size_t test_at = attr_arg ? 1 : 0;
  const std::optional<std::string> test = OptString(a, test_at, "test");
  if (test && !IsKnownTest(*test)) throw TemplateError(fmt::format("no test named '{}'", *test));
  const CallArgs rest = ArgsFrom(a, test_at + 1);
  std::vector<Value> out;
  for (const Value& x : Iterate(v)) {
    const Value subject = attr ? GetItem(x, Value::Str(*attr)) : x;
    if ((test ? ApplyTest(*test, subject, rest) : Truthy(subject)) == keep) out.push_back(x);
  }
  return Value::MakeList(std::move(out));
}
Value FilterSelect(const Value& v, const CallArgs& a) { return SelectItems(v, a, false, true); }
Value FilterReject(const Value& v, const CallArgs& a) { return SelectItems(v, a, false, false); }
Value FilterSelectAttr(const Value& v, const CallArgs& a) { return SelectItems(v, a, true, true); }
Value FilterRejectAttr(const Value& v, const CallArgs& a) { return SelectItems(v, a, true, false); }

const std::unordered_map<std::string_view, FilterFn>& Filters() {
  static const std::unordered_map<std::string_view, FilterFn> kFilters = {
      {"length", FilterLength},   {"count", FilterLength},       {"tojson", FilterToJson},
      {"trim", FilterTrim},       {"upper", FilterUpper},        {"lower", FilterLower},
      {"capitalize", FilterCapitalize}, {"title", FilterTitle},  {"join", FilterJoin},
      {"default", FilterDefault}, {"d", FilterDefault},          {"first", FilterFirst},
      {"last", FilterLast},       {"string", FilterString},      {"items", FilterItems},
      {"list", FilterList},       {"int", FilterInt},            {"float", FilterFloat},
      {"abs", FilterAbs},         {"replace", FilterReplace},    {"reverse", FilterReverse},
      {"safe", FilterSafe},       {"map", FilterMap},            {"select", FilterSelect},
      {"reject", FilterReject},   {"selectattr", FilterSelectAttr},
      {"rejectattr", FilterRejectAttr},
  };
  return kFilters;
}

// --- tests -----------------------------------------------------------------------

const Value& TestArg(const CallArgs& a) {
  if (a.positional.empty()) throw TemplateError("this test needs an argument");
  return a.positional[0];
}

bool IsCasedAs(const Value& v, bool upper) {
  if (!v.is_string()) return false;
  const std::string& s = v.as_string();
  return (upper ? PyUpper(s) == s : PyLower(s) == s) && PyUpper(s) != PyLower(s);
}

const std::unordered_map<std::string_view, TestFn>& Tests() {
  static const std::unordered_map<std::string_view, TestFn> kTests = {
      {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
      {"boolean", [](const Value& v, const CallArgs&) { return v.is_bool(); }},
      {"true", [](const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](const Value& v, const CallArgs&) { return v.is_int(); }},
      {"float", [](const Value& v, const CallArgs&) { return v.is_float(); }},
      {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},
      {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
      {"mapping", [](const Value& v, const CallArgs&) { return v.is_dict(); }},
      {"sequence", [](const Value& v, const CallArgs&) { return v.is_string() || v.is_list() || v.is_dict(); }},
      {"iterable", [](const Value& v, const CallArgs&) {
         return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
       }},
      {"callable", [](const Value& v, const CallArgs&) { return v.is_function(); }},
      {"lower", [](const Value& v, const CallArgs&) { return IsCasedAs(v, false); }},
      {"upper", [](const Value& v, const CallArgs&) { return IsCasedAs(v, true); }},
      {"odd", [](const Value& v, const CallArgs&) { return v.is_int() && v.as_int() % 2 != 0; }},
      {"even", [](const Value& v, const CallArgs&) { return v.is_int() && v.as_int() % 2 == 0; }},
      {"divisibleby", [](const Value& v, const CallArgs& a) {
         const Value& n = TestArg(a);
         return v.is_int() && n.is_int() && n.as_int() != 0 && v.as_int() % n.as_int() == 0;
       }},
      {"eq", [](const Value& v, const CallArgs& a) { return CompareOp("==", v, TestArg(a)); }},
      {"equalto", [](const Value& v, const CallArgs& a) { return CompareOp("==", v, TestArg(a)); }},
      {"==", [](const Value& v, const CallArgs& a) { return CompareOp("==", v, TestArg(a)); }},
      {"ne", [](const Value& v, const CallArgs& a) { return CompareOp("!=", v, TestArg(a)); }},
      {"lt", [](const Value& v, const CallArgs& a) { return CompareOp("<", v, TestArg(a)); }},
      {"le", [](const Value& v, const CallArgs& a) { return CompareOp("<=", v, TestArg(a)); }},
      {"gt", [](const Value& v, const CallArgs& a) { return CompareOp(">", v, TestArg(a)); }},
      {"ge", [](const Value& v, const CallArgs& a) { return CompareOp(">=", v, TestArg(a)); }},
      {"in", [](const Value& v, const CallArgs& a) { return Contains(TestArg(a), v); }},
      {"sameas", [](const Value& v, const CallArgs& a) {
         // Python `is`: equal singletons (None, True, False) or equal values of one type.
         const Value& o = TestArg(a);
         return TypeName(v) == TypeName(o) && Equal(v, o);
       }},
  };
  return kTests;
}

// --- methods ---------------------------------------------------------------------

bool StartsOrEndsWith(const std::string& s, const Value& affix, bool start) {
  auto check = [&](const Value& x) {
    if (!x.is_string()) throw TemplateError(fmt::format("startswith/endswith take a str or a tuple of str, not {}", TypeName(x)));
    const std::string& a = x.as_string();
    if (a.size() > s.size()) return false;
    return start ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) {
    for (const Value& x : affix.as_list().items)
      if (check(x)) return true;
    return false;
  }
  return check(affix);
}

bool StringMethod(const std::string& s, std::string_view name, const CallArgs& a, Value* out) {
  if (name == "startswith" || name == "endswith") {
    if (a.positional.empty()) throw TemplateError(fmt::format("{}() takes at least 1 argument", name));
    *out = Value::Bool(StartsOrEndsWith(s, a.positional[0], name == "startswith"));
  } else if (name == "strip" || name == "lstrip" || name == "rstrip") {
    *out = Value::Str(PyStrip(s, OptString(a, 0, "chars"), name != "rstrip", name != "lstrip"));
  } else if (name == "split") {
    const std::optional<std::string> sep = OptString(a, 0, "sep");
    if (sep && sep->empty()) throw TemplateError("empty separator");
    std::vector<Value> parts;
    for (std::string& p : PySplit(s, sep, IntArg(a, 1, "maxsplit", -1))) parts.push_back(Value::Str(std::move(p)));
    *out = Value::MakeList(std::move(parts));
  } else if (name == "replace") {
    *out = StrValue(PyReplace(s, StringArg(a, 0, "old"), StringArg(a, 1, "new"), IntArg(a, 2, "count", -1)));
  } else if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    *out = Value::Str(name == "upper" ? PyUpper(s) : name == "lower" ? PyLower(s) : name == "title" ? PyTitle(s) : PyCapitalize(s));
  } else if (name == "find" || name == "count") {
    const std::string sub = StringArg(a, 0, "sub");
    if (name == "find") {
      const size_t at = s.find(sub);
      *out = Value::Int(at == std::string::npos ? -1 : static_cast<int64_t>(CodePointCount(s.substr(0, at))));
    } else {
      *out = Value::Int(sub.empty() ? static_cast<int64_t>(CodePointCount(s)) + 1
                                    : static_cast<int64_t>(PySplit(s, sub, -1).size()) - 1);
    }
  } else if (name == "join") {
    if (a.positional.empty()) throw TemplateError("join() takes exactly one argument");
    *out = Value::Str(Join(Iterate(a.positional[0]), s));
  } else {
    return false;
  }
  return true;
}

bool DictMethod(const Dict& d, std::string_view name, const CallArgs& a, Value* out) {
  std::vector<Value> items;
  if (name == "get") {
    if (a.positional.empty()) throw TemplateError("get() takes at least 1 argument");
    const Value& key = a.positional[0];
    const Value* found = key.is_string() ? d.Find(key.as_string()) : nullptr;
    *out = found != nullptr ? *found : a.Get(1, "default", NoneValue());
    return true;
  }
  if (name != "items" && name != "keys" && name != "values") return false;
  for (const auto& [k, v] : d.entries) {
    if (name == "items") items.push_back(Value::MakeList({Value::Str(k), v}, true));
    if (name == "keys") items.push_back(Value::Str(k));
    if (name == "values") items.push_back(v);
  }
  *out = Value::MakeList(std::move(items));
  return true;
}

// --- globals ---------------------------------------------------------------------

Value Range(const CallArgs& a) {
  const size_t n = a.positional.size();
  if (n == 0 || n > 3) throw TemplateError("range() takes 1 to 3 arguments");
  const int64_t start = n == 1 ? 0 : IntArg(a, 0, "start", 0);
  const int64_t stop = IntArg(a, n == 1 ? 0 : 1, "stop", 0);
  const int64_t step = n == 3 ? IntArg(a, 2, "step", 1) : 1;
  if (step == 0) throw TemplateError("range() arg 3 must not be zero");
  const double count = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step));
  if (count > static_cast<double>(kMaxRangeItems))
    throw TemplateError(fmt::format("range() of more than {} items", kMaxRangeItems));
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.push_back(Value::Int(i));
  return Value::MakeList(std::move(items));
}

Value StrftimeNow(const CallArgs& a) {
  const std::string format = StringArg(a, 0, "format");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  const size_t n = std::strftime(buf, sizeof(buf), format.c_str(), &local);
  return Value::Str(std::string(buf, n));
}

const std::unordered_map<std::string_view, Value>& Globals() {
  static const std::unordered_map<std::string_view, Value> kGlobals = {
      {"range", Value::MakeFunction("range", Range)},
      {"dict", Value::MakeFunction("dict", [](const CallArgs& a) { return Value::MakeDict(KeywordDict(a, "dict")); })},
      {"raise_exception", Value::MakeFunction("raise_exception", [](const CallArgs& a) -> Value {
         throw TemplateError("template raised an exception: " + ToStr(a.Get(0, "message", Value::Str(""))));
       })},
      {"strftime_now", Value::MakeFunction("strftime_now", StrftimeNow)},
  };
  return kGlobals;
}

}  // namespace

Dict KeywordDict(const CallArgs& a, std::string_view fn) {
  Dict d;
  for (const Value& p : a.positional) {
    if (!p.is_dict()) throw TemplateError(fmt::format("{}() takes a mapping or keyword arguments", fn));
    for (const auto& [k, v] : p.as_dict().entries) d.Set(k, v);
  }
  for (const auto& [k, v] : a.keyword) d.Set(k, v);
  return d;
}

bool IsKnownFilter(std::string_view name) { return Filters().count(name) != 0; }
bool IsKnownTest(std::string_view name) { return Tests().count(name) != 0; }

Value ApplyFilter(std::string_view name, const Value& v, const CallArgs& args) {
  const auto it = Filters().find(name);
  if (it == Filters().end()) throw TemplateError(fmt::format("no filter named '{}'", name));
  return it->second(v, args);
}

bool ApplyTest(std::string_view name, const Value& v, const CallArgs& args) {
  const auto it = Tests().find(name);
  if (it == Tests().end()) throw TemplateError(fmt::format("no test named '{}'", name));
  return it->second(v, args);
}

bool CallMethod(const Value& obj, std::string_view name, const CallArgs& args, Value* out) {
  if (obj.is_string()) return StringMethod(obj.as_string(), name, args, out);
  if (obj.is_dict()) return DictMethod(obj.as_dict(), name, args, out);
  return false;
}

Value FindGlobal(std::string_view name) {
  const auto it = Globals().find(name);
  return it == Globals().end() ? Value::MakeUndefined(fmt::format("'{}' is undefined", name)) : it->second;
}

}  // namespace oko::jinja
