// The values a Jinja template computes with, modelled on the Python objects jinja2 sees
// when transformers renders a chat template: str, int, float, bool, None, list/tuple,
// dict (insertion-ordered, string keys), jinja2's namespace and Undefined, and callables.
// Strings are UTF-8; operations that Python defines on code points (len, slices, strip)
// decode on the fly.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace oko::jinja {

// Where an error happened in the template source (1-based; 0 = not yet known).
struct SourcePos {
  int line = 0;
  int column = 0;
};

// Thrown inside the lexer, parser and evaluator; ChatTemplate turns it into a Status at
// its API boundary, so no exception leaves loaders/.
class TemplateError : public std::exception {
 public:
  explicit TemplateError(std::string message, SourcePos pos = {})
      : message_(std::move(message)), pos_(pos) {}
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const { return message_; }
  SourcePos pos() const { return pos_; }
  void set_pos(SourcePos pos) { pos_ = pos; }

 private:
  std::string message_;
  SourcePos pos_;
};

// No single string a template builds may exceed this (the output has its own limit).
inline constexpr size_t kMaxStringBytes = size_t{16} << 20;
// Deepest nesting of lists/dicts in any value, from JSON input or built by a template
// (`{% set ns.x = [ns.x] %}` in a loop would otherwise nest until printing or freeing it
// overflowed the stack).
inline constexpr int kMaxValueDepth = 256;
// Deepest a value prints, counting the namespaces it reaches (they may refer to each
// other: chains of any length). jinja2 stops with a RecursionError near 1000 too.
inline constexpr int kMaxPrintDepth = 1000;

class Value;
struct List {
  std::vector<Value> items;
  bool is_tuple = false;  // only changes how it prints: (1, 2) vs [1, 2]
  int nesting = 1;        // lists and dicts nested here, this one included (Value::MakeList)
};
struct Dict {
  std::vector<std::pair<std::string, Value>> entries;  // insertion order, as Python's dict
  int nesting = 1;  // as List's, set by Value::MakeDict (a namespace's attributes: unused)
  const Value* Find(std::string_view key) const;
  void Set(const std::string& key, Value value);
};
// Positional and keyword arguments of a call, filter or test.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // Argument `index` or `name`, else `fallback` itself: bind the result to a reference
  // only when `fallback` outlives it (not a temporary such as Value()).
  const Value& Get(size_t index, std::string_view name, const Value& fallback) const;
};
struct Function {
  std::string name;
  std::function<Value(const CallArgs&)> call;
};
// jinja2's Undefined; `hint` is the message raised when it is used where jinja2 raises.
struct Undefined {
  std::string hint;
};
struct NoneType {};
// jinja2's namespace(): the one mutable object (`{% set ns.x = ... %}`). Its attributes
// belong to the render that created it (RenderTemplate), not to the values that refer to
// it, so namespaces may refer to each other, even in a cycle as jinja2 allows, without
// owning each other: nothing leaks, and a value counts a namespace as a leaf.
struct Namespace {
  Dict* attrs;
};

class Value {
 public:
  using Storage = std::variant<Undefined, NoneType, bool, int64_t, double, std::string,
                               std::shared_ptr<const List>, std::shared_ptr<const Dict>,
                               Namespace, std::shared_ptr<const Function>>;
  Value() : v_(Undefined{}) {}
  // Factories rather than implicit constructors: a bare `true` or "x" would otherwise
  // convert to the wrong alternative.
  static Value Bool(bool b) { return Value(Storage(b)); }
  static Value Int(int64_t i) { return Value(Storage(i)); }
  static Value Float(double d) { return Value(Storage(d)); }
  static Value Str(std::string s) { return Value(Storage(std::move(s))); }

  static Value MakeUndefined(std::string hint) { return Value(Storage(Undefined{std::move(hint)})); }
  static Value None() { return Value(Storage(NoneType{})); }
  // Throw TemplateError when the result would nest deeper than kMaxValueDepth.
  static Value MakeList(std::vector<Value> items, bool is_tuple = false);
  static Value MakeDict(Dict dict);
  static Value MakeFunction(std::string name, std::function<Value(const CallArgs&)> call);
  // `attrs` must outlive every copy of the value (the render owns it).
  static Value MakeNamespace(Dict* attrs);

  bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
  bool is_none() const { return std::holds_alternative<NoneType>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_float() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is int
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<const List>>(v_); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<const Dict>>(v_); }
  bool is_namespace() const { return std::holds_alternative<Namespace>(v_); }
  bool is_function() const { return std::holds_alternative<std::shared_ptr<const Function>>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(v_); }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  Dict& namespace_attrs() const { return *std::get<Namespace>(v_).attrs; }
  const Function& as_function() const { return *std::get<std::shared_ptr<const Function>>(v_); }
  const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }

  // An int, or a bool as 0/1 (Python's int(True)); callers check is_int() || is_bool().
  int64_t AsInteger() const { return is_bool() ? int64_t{as_bool()} : as_int(); }
  // Any number as a double.
  double AsDouble() const;

 private:
  explicit Value(Storage v) : v_(std::move(v)) {}
  Storage v_;
};

// Python's type name, for messages: 'str', 'int', 'NoneType', 'dict object'...
std::string TypeName(const Value& v);
// The message of jinja2's UndefinedError for an Undefined `v`.
std::string UndefinedMessage(const Value& v);
// Throws the "is undefined" error jinja2 raises when `v` is Undefined.
void ThrowIfUndefined(const Value& v);

// nlohmann JSON (insertion-ordered, as Python's json.loads gives) -> Value.
Value FromJson(const nlohmann::ordered_json& j);

bool Truthy(const Value& v);
bool Equal(const Value& a, const Value& b);
// Python's str() and repr(); Undefined prints as "" (jinja2's default Undefined). A
// namespace met again inside itself prints its attributes as {...}, as Python's dict
// repr does; deeper than kMaxPrintDepth is a TemplateError.
std::string ToStr(const Value& v);
std::string Repr(const Value& v);
// Python's repr(float): the shortest string that round-trips, "1.0", "1e+16".
std::string FormatFloat(double d);
// json.dumps(v, ensure_ascii=False, indent=indent, separators=None, sort_keys=False),
// the tojson filter transformers installs. indent < 0 means None.
std::string ToJson(const Value& v, int indent = -1);

// Throws when a string of `bytes` would exceed kMaxStringBytes.
void CheckStringSize(size_t bytes);

}  // namespace oko::jinja
