#include "loaders/jinja_value.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "loaders/jinja_strings.h"

namespace oko::jinja {
namespace {

// `depth`: the lists and dicts around `j`.
Value FromJsonAt(const nlohmann::ordered_json& j, int depth) {
  if (j.is_structured() && depth >= kMaxValueDepth)
    throw TemplateError(fmt::format("input nests deeper than {} levels", kMaxValueDepth));
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::None();
    case nlohmann::ordered_json::value_t::boolean: return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::Float(static_cast<double>(u));
      return Value::Int(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::Str(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(FromJsonAt(x, depth + 1));
      return Value::MakeList(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, x] : j.items()) d.Set(k, FromJsonAt(x, depth + 1));
      return Value::MakeDict(std::move(d));
    }
    default: return Value::None();  // binary / discarded: not produced by the JSON parser
  }
}

// json.dumps' string encoding with ensure_ascii=False: only '"', '\\' and controls escaped.
void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char ch : s) {
    switch (ch) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          *out += fmt::format("\\u{:04x}", static_cast<unsigned char>(ch));
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void AppendJson(const Value& v, int indent, int level, std::string* out) {
  CheckStringSize(out->size());
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(indent) * lvl, ' ');
  };
  const char* item_sep = indent < 0 ? ", " : ",";
  if (v.is_none()) {
    *out += "null";
  } else if (v.is_bool()) {
    *out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    *out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    const double d = v.as_float();
    *out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : FormatFloat(d);
  } else if (v.is_string()) {
    AppendJsonString(v.as_string(), out);
  } else if (v.is_list()) {
    const auto& items = v.as_list().items;
    if (items.empty()) {
      *out += "[]";
      return;
    }
    out->push_back('[');
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) *out += item_sep;
      newline(level + 1);
      AppendJson(items[i], indent, level + 1, out);
    }
    newline(level);
    out->push_back(']');
  } else if (v.is_dict()) {
    const auto& entries = v.as_dict().entries;
    if (entries.empty()) {
      *out += "{}";
      return;
    }
    out->push_back('{');
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) *out += item_sep;
      newline(level + 1);
      AppendJsonString(entries[i].first, out);
      *out += ": ";
      AppendJson(entries[i].second, indent, level + 1, out);
    }
    newline(level);
    out->push_back('}');
  } else {
    ThrowIfUndefined(v);
    throw TemplateError(fmt::format("Object of type {} is not JSON serializable", TypeName(v)));
  }
}

// repr() of a str: single quotes unless the text holds ' and no ", as CPython chooses.
std::string ReprString(std::string_view s) {
  const bool use_double = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos;
  const char quote = use_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : DecodeUtf8(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    } else {
      AppendUtf8(c, &out);
    }
  }
  out.push_back(quote);
  return out;
}

// Repr's walk: how deep it is, and the namespaces it is inside of (a cycle ends there).
struct ReprWalk {
  int depth = 0;
  std::vector<const Dict*> open_namespaces;
};

std::string ReprAt(const Value& v, ReprWalk& walk);

std::string ReprItems(const List& list, ReprWalk& walk) {
  std::string out(1, list.is_tuple ? '(' : '[');
  for (size_t i = 0; i < list.items.size(); ++i) {
    if (i > 0) out += ", ";
    out += ReprAt(list.items[i], walk);
    CheckStringSize(out.size());
  }
  if (list.is_tuple && list.items.size() == 1) out += ",";
  out.push_back(list.is_tuple ? ')' : ']');
  return out;
}

std::string ReprDict(const Dict& d, ReprWalk& walk) {
  std::string out = "{";
  for (size_t i = 0; i < d.entries.size(); ++i) {
    if (i > 0) out += ", ";
    out += ReprString(d.entries[i].first) + ": " + ReprAt(d.entries[i].second, walk);
    CheckStringSize(out.size());
  }
  return out + "}";
}

std::string ReprNamespace(const Dict& attrs, ReprWalk& walk) {
  auto& open = walk.open_namespaces;
  if (std::find(open.begin(), open.end(), &attrs) != open.end()) return "<Namespace {...}>";
  open.push_back(&attrs);
  std::string out = "<Namespace " + ReprDict(attrs, walk) + ">";
  open.pop_back();
  return out;
}

std::string ReprAt(const Value& v, ReprWalk& walk) {
  if (v.is_undefined()) return "Undefined";
  if (v.is_none()) return "None";
  if (v.is_bool()) return v.as_bool() ? "True" : "False";
  if (v.is_int()) return std::to_string(v.as_int());
  if (v.is_float()) return FormatFloat(v.as_float());
  if (v.is_string()) return ReprString(v.as_string());
  if (v.is_function()) return "<function " + v.as_function().name + ">";
  if (++walk.depth > kMaxPrintDepth)
    throw TemplateError(fmt::format("value nests deeper than {} levels to print", kMaxPrintDepth));
  std::string out = v.is_list() ? ReprItems(v.as_list(), walk)
                    : v.is_dict() ? ReprDict(v.as_dict(), walk)
                                  : ReprNamespace(v.namespace_attrs(), walk);
  --walk.depth;
  return out;
}

// Lists and dicts nested in `v`, itself included; a namespace is a leaf (it owns nothing).
int Nesting(const Value& v) {
  if (v.is_list()) return v.as_list().nesting;
  if (v.is_dict()) return v.as_dict().nesting;
  return 0;
}

int NestingOfContainer(int deepest_item) {
  const int nesting = deepest_item + 1;
  if (nesting > kMaxValueDepth)
    throw TemplateError(fmt::format("lists and dicts nest deeper than {} levels", kMaxValueDepth));
  return nesting;
}

bool EqualLists(const List& a, const List& b) {
  if (a.items.size() != b.items.size()) return false;
  for (size_t i = 0; i < a.items.size(); ++i)
    if (!Equal(a.items[i], b.items[i])) return false;
  return true;
}

bool EqualDicts(const Dict& a, const Dict& b) {
  if (a.entries.size() != b.entries.size()) return false;
  for (const auto& [k, v] : a.entries) {
    const Value* other = b.Find(k);
    if (other == nullptr || !Equal(v, *other)) return false;
  }
  return true;
}

}  // namespace

const Value* Dict::Find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void Dict::Set(const std::string& key, Value value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(key, std::move(value));
}

const Value& CallArgs::Get(size_t index, std::string_view name, const Value& fallback) const {
  if (index < positional.size()) return positional[index];
  for (const auto& [k, v] : keyword)
    if (k == name) return v;
  return fallback;
}

Value Value::MakeList(std::vector<Value> items, bool is_tuple) {
  int deepest = 0;
  for (const Value& item : items) deepest = std::max(deepest, Nesting(item));
  auto list = std::make_shared<List>();
  list->items = std::move(items);
  list->is_tuple = is_tuple;
  list->nesting = NestingOfContainer(deepest);
  return Value(Storage(std::shared_ptr<const List>(std::move(list))));
}

Value Value::MakeDict(Dict dict) {
  int deepest = 0;
  for (const auto& [key, item] : dict.entries) deepest = std::max(deepest, Nesting(item));
  dict.nesting = NestingOfContainer(deepest);
  return Value(Storage(std::shared_ptr<const Dict>(std::make_shared<Dict>(std::move(dict)))));
}

Value Value::MakeNamespace(Dict* attrs) { return Value(Storage(Namespace{attrs})); }

Value Value::MakeFunction(std::string name, std::function<Value(const CallArgs&)> call) {
  return Value(Storage(std::shared_ptr<const Function>(
      std::make_shared<Function>(Function{std::move(name), std::move(call)}))));
}

double Value::AsDouble() const { return is_float() ? as_float() : static_cast<double>(AsInteger()); }

std::string TypeName(const Value& v) {
  if (v.is_undefined()) return "Undefined";
  if (v.is_none()) return "NoneType";
  if (v.is_bool()) return "bool";
  if (v.is_int()) return "int";
  if (v.is_float()) return "float";
  if (v.is_string()) return "str";
  if (v.is_list()) return v.as_list().is_tuple ? "tuple" : "list";
  if (v.is_dict()) return "dict";
  if (v.is_namespace()) return "Namespace";
  return "function";
}

std::string UndefinedMessage(const Value& v) {
  return v.undefined_hint().empty() ? "value is undefined" : v.undefined_hint();
}

void ThrowIfUndefined(const Value& v) {
  if (v.is_undefined()) throw TemplateError(UndefinedMessage(v));
}

Value FromJson(const nlohmann::ordered_json& j) { return FromJsonAt(j, 0); }

bool Truthy(const Value& v) {
  if (v.is_undefined() || v.is_none()) return false;
  if (v.is_bool()) return v.as_bool();
  if (v.is_int()) return v.as_int() != 0;
  if (v.is_float()) return v.as_float() != 0.0;
  if (v.is_string()) return !v.as_string().empty();
  if (v.is_list()) return !v.as_list().items.empty();
  if (v.is_dict()) return !v.as_dict().entries.empty();
  return true;
}

bool Equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.AsDouble() == b.AsDouble();
    return a.AsInteger() == b.AsInteger();
  }
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (a.is_none() || b.is_none()) return a.is_none() && b.is_none();
  if (a.is_string() && b.is_string()) return a.as_string() == b.as_string();
  if (a.is_list() && b.is_list())
    return a.as_list().is_tuple == b.as_list().is_tuple && EqualLists(a.as_list(), b.as_list());
  if (a.is_dict() && b.is_dict()) return EqualDicts(a.as_dict(), b.as_dict());
  if (a.is_namespace() && b.is_namespace()) return &a.namespace_attrs() == &b.namespace_attrs();
  if (a.is_function() && b.is_function()) return &a.as_function() == &b.as_function();
  return false;
}

std::string ToStr(const Value& v) {
  if (v.is_undefined()) return "";
  if (v.is_string()) return v.as_string();
  return Repr(v);
}

std::string Repr(const Value& v) {
  ReprWalk walk;
  return ReprAt(v, walk);
}

std::string FormatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*e", precision - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  // buf is "[-]D[.DDD]e[+-]XX": split into sign, significant digits and exponent.
  std::string_view text(buf);
  const bool negative = text[0] == '-';
  if (negative) text.remove_prefix(1);
  const size_t e = text.find('e');
  std::string digits;
  for (char c : text.substr(0, e))
    if (c != '.') digits.push_back(c);
  const int exponent = std::atoi(std::string(text.substr(e + 1)).c_str());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = negative ? "-" : "";
  const int n = static_cast<int>(digits.size());
  if (exponent >= 16 || exponent < -4) {  // CPython's repr switches to scientific here
    out.push_back(digits[0]);
    if (n > 1) out.append(".").append(digits, 1, std::string::npos);
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (exponent >= 0) {
    if (n <= exponent + 1) {
      out += digits + std::string(exponent + 1 - n, '0') + ".0";
    } else {
      out.append(digits, 0, exponent + 1).append(".").append(digits, exponent + 1, std::string::npos);
    }
  } else {
    out.append("0.").append(-exponent - 1, '0').append(digits);
  }
  return out;
}

std::string ToJson(const Value& v, int indent) {
  std::string out;
  AppendJson(v, indent, 0, &out);
  CheckStringSize(out.size());
  return out;
}

void CheckStringSize(size_t bytes) {
  if (bytes > kMaxStringBytes)
    throw TemplateError(fmt::format("a string would exceed {} MiB", kMaxStringBytes >> 20));
}

}  // namespace oko::jinja
