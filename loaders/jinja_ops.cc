#include "loaders/jinja_ops.h"

#include <fmt/format.h>

#include <cmath>

#include "loaders/jinja_strings.h"

namespace oko::jinja {
namespace {

// Largest list a template may build with * or +; keeps `[0] * 10**12` an error.
constexpr size_t kMaxListItems = size_t{1} << 22;

[[noreturn]] void ThrowOperandError(std::string_view op, const Value& a, const Value& b) {
  throw TemplateError(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op,
                                  TypeName(a), TypeName(b)));
}

bool IsIntLike(const Value& v) { return v.is_int() || v.is_bool(); }

void ThrowOnOverflow(bool overflow) {
  if (overflow) throw TemplateError("integer overflow (oko's ints are 64-bit)");
}

int64_t FloorDiv(int64_t a, int64_t b) {
  if (b == -1) {
    ThrowOnOverflow(a == INT64_MIN);
    return -a;
  }
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t PyMod(int64_t a, int64_t b) {
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

int64_t IntPow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) ThrowOnOverflow(__builtin_mul_overflow(result, base, &result));
    exp >>= 1;
    if (exp > 0) ThrowOnOverflow(__builtin_mul_overflow(base, base, &base));
  }
  return result;
}

Value IntArith(std::string_view op, int64_t a, int64_t b) {
  int64_t r = 0;
  if (op == "+") ThrowOnOverflow(__builtin_add_overflow(a, b, &r));
  if (op == "-") ThrowOnOverflow(__builtin_sub_overflow(a, b, &r));
  if (op == "*") ThrowOnOverflow(__builtin_mul_overflow(a, b, &r));
  if (op == "+" || op == "-" || op == "*") return Value::Int(r);
  if (b == 0 && (op == "/" || op == "//" || op == "%")) throw TemplateError("division by zero");
  if (op == "/") return Value::Float(static_cast<double>(a) / static_cast<double>(b));
  if (op == "//") return Value::Int(FloorDiv(a, b));
  if (op == "%") return Value::Int(PyMod(a, b));
  if (b < 0) return Value::Float(std::pow(static_cast<double>(a), static_cast<double>(b)));
  return Value::Int(IntPow(a, b));
}

Value FloatArith(std::string_view op, double a, double b) {
  if (op == "+") return Value::Float(a + b);
  if (op == "-") return Value::Float(a - b);
  if (op == "*") return Value::Float(a * b);
  if (op == "**") return Value::Float(std::pow(a, b));
  if (b == 0) throw TemplateError("float division by zero");
  if (op == "/") return Value::Float(a / b);
  if (op == "//") return Value::Float(std::floor(a / b));
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return Value::Float(r);
}

// str * n and list * n.
Value Repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty()) CheckStringSize(static_cast<size_t>(std::min<int64_t>(n, kMaxStringBytes + 1)) * s.size());
    const size_t total = static_cast<size_t>(n) * s.size();
    std::string out = n > 0 ? s : std::string();
    out.reserve(total);
    // Doubling, then the remainder (a whole number of copies of s): O(total) bytes moved.
    while (!out.empty() && out.size() * 2 <= total) out.append(out.data(), out.size());
    out.append(out.data(), total - out.size());
    return Value::Str(std::move(out));
  }
  const auto& items = seq.as_list().items;
  if (!items.empty() && static_cast<uint64_t>(n) > kMaxListItems / items.size())
    throw TemplateError(fmt::format("a list would exceed {} items", kMaxListItems));
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::MakeList(std::move(out), seq.as_list().is_tuple);
}

// Python's slice.indices(): clamps start/stop for a sequence of `len` items.
void SliceIndex(const Value& v, int64_t len, int64_t step, bool is_start, int64_t* out) {
  if (!IsIntLike(v)) {
    if (!v.is_none() && !v.is_undefined())
      throw TemplateError(fmt::format("slice indices must be integers or None, not {}", TypeName(v)));
    *out = step > 0 ? (is_start ? 0 : len) : (is_start ? len - 1 : -1);
    return;
  }
  int64_t i = v.AsInteger();
  if (i < 0) {
    i += len;
    if (i < 0) i = step < 0 ? -1 : 0;
  } else if (i >= len) {
    i = step < 0 ? len - 1 : len;
  }
  *out = i;
}

bool LessThan(const Value& a, const Value& b, std::string_view op) {
  ThrowIfUndefined(a);
  ThrowIfUndefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.AsDouble() < b.AsDouble();
    return a.AsInteger() < b.AsInteger();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 = code point order
  if (a.is_list() && b.is_list()) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!Equal(x[i], y[i])) return LessThan(x[i], y[i], op);
    return x.size() < y.size();
  }
  throw TemplateError(fmt::format("'{}' not supported between instances of '{}' and '{}'", op,
                                  TypeName(a), TypeName(b)));
}

}  // namespace

std::vector<Value> Iterate(const Value& v) {
  if (v.is_list()) return v.as_list().items;
  if (v.is_undefined()) return {};
  std::vector<Value> out;
  if (v.is_dict()) {
    for (const auto& [k, x] : v.as_dict().entries) out.push_back(Value::Str(k));
  } else if (v.is_string()) {
    for (char32_t c : DecodeUtf8(v.as_string())) {
      std::string s;
      AppendUtf8(c, &s);
      out.push_back(Value::Str(std::move(s)));
    }
  } else {
    throw TemplateError(fmt::format("'{}' object is not iterable", TypeName(v)));
  }
  return out;
}

int64_t Length(const Value& v) {
  if (v.is_string()) return static_cast<int64_t>(CodePointCount(v.as_string()));
  if (v.is_list()) return static_cast<int64_t>(v.as_list().items.size());
  if (v.is_dict()) return static_cast<int64_t>(v.as_dict().entries.size());
  if (v.is_undefined()) return 0;
  throw TemplateError(fmt::format("object of type '{}' has no len()", TypeName(v)));
}

Value GetAttr(const Value& obj, const std::string& name) {
  ThrowIfUndefined(obj);
  const Value* found = nullptr;
  if (obj.is_dict()) found = obj.as_dict().Find(name);
  if (obj.is_namespace()) found = obj.namespace_attrs().Find(name);
  if (found != nullptr) return *found;
  return Value::MakeUndefined(fmt::format("'{} object' has no attribute '{}'", TypeName(obj), name));
}

Value GetItem(const Value& obj, const Value& key) {
  ThrowIfUndefined(obj);
  if (key.is_string()) return GetAttr(obj, key.as_string());
  if (IsIntLike(key) && (obj.is_list() || obj.is_string())) {
    const int64_t len = Length(obj);
    int64_t i = key.AsInteger();
    if (i < 0) i += len;
    if (i >= 0 && i < len) {
      if (obj.is_list()) return obj.as_list().items[static_cast<size_t>(i)];
      std::string s;
      AppendUtf8(DecodeUtf8(obj.as_string())[static_cast<size_t>(i)], &s);
      return Value::Str(std::move(s));
    }
  }
  return Value::MakeUndefined(fmt::format("'{} object' has no element {}", TypeName(obj), Repr(key)));
}

Value GetSlice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  ThrowIfUndefined(obj);
  if (!obj.is_list() && !obj.is_string())
    return Value::MakeUndefined(fmt::format("'{} object' cannot be sliced", TypeName(obj)));
  int64_t st = 1;
  if (IsIntLike(step)) st = step.AsInteger();
  if (st == 0) throw TemplateError("slice step cannot be zero");
  const std::u32string cps = obj.is_string() ? DecodeUtf8(obj.as_string()) : std::u32string();
  const int64_t len = obj.is_string() ? static_cast<int64_t>(cps.size()) : Length(obj);
  int64_t begin, end;
  SliceIndex(start, len, st, true, &begin);
  SliceIndex(stop, len, st, false, &end);
  std::vector<Value> items;
  std::u32string chars;
  for (int64_t i = begin; st > 0 ? i < end : i > end; i += st) {
    if (obj.is_string()) {
      chars.push_back(cps[static_cast<size_t>(i)]);
    } else {
      items.push_back(obj.as_list().items[static_cast<size_t>(i)]);
    }
  }
  if (obj.is_string()) return Value::Str(EncodeUtf8(chars));
  return Value::MakeList(std::move(items), obj.as_list().is_tuple);
}

bool Contains(const Value& container, const Value& item) {
  if (container.is_undefined()) return false;
  if (container.is_string()) {
    if (!item.is_string())
      throw TemplateError(fmt::format("'in <string>' requires string as left operand, not {}", TypeName(item)));
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_list()) {
    for (const Value& x : container.as_list().items)
      if (Equal(x, item)) return true;
    return false;
  }
  if (container.is_dict()) return item.is_string() && container.as_dict().Find(item.as_string()) != nullptr;
  throw TemplateError(fmt::format("argument of type '{}' is not iterable", TypeName(container)));
}

Value BinaryOp(std::string_view op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = ToStr(a);
    const std::string t = ToStr(b);
    CheckStringSize(s.size() + t.size());
    return Value::Str(s + t);
  }
  ThrowIfUndefined(a);
  ThrowIfUndefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return FloatArith(op, a.AsDouble(), b.AsDouble());
    return IntArith(op, a.AsInteger(), b.AsInteger());
  }
  if (op == "+" && a.is_string() && b.is_string()) {
    CheckStringSize(a.as_string().size() + b.as_string().size());
    return Value::Str(a.as_string() + b.as_string());
  }
  if (op == "+" && a.is_list() && b.is_list()) {
    if (a.as_list().is_tuple != b.as_list().is_tuple) ThrowOperandError(op, a, b);
    std::vector<Value> items = a.as_list().items;
    if (items.size() + b.as_list().items.size() > kMaxListItems)
      throw TemplateError(fmt::format("a list would exceed {} items", kMaxListItems));
    items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
    return Value::MakeList(std::move(items), a.as_list().is_tuple);
  }
  if (op == "*" && (a.is_string() || a.is_list()) && IsIntLike(b)) return Repeat(a, b.AsInteger());
  if (op == "*" && IsIntLike(a) && (b.is_string() || b.is_list())) return Repeat(b, a.AsInteger());
  ThrowOperandError(op, a, b);
}

Value Negate(const Value& v, bool minus) {
  ThrowIfUndefined(v);
  if (!v.is_number()) throw TemplateError(fmt::format("bad operand type for unary {}: '{}'", minus ? '-' : '+', TypeName(v)));
  if (v.is_float()) return Value::Float(minus ? -v.as_float() : v.as_float());
  const int64_t i = v.AsInteger();
  if (minus) ThrowOnOverflow(i == INT64_MIN);
  return Value::Int(minus ? -i : i);
}

bool CompareOp(std::string_view op, const Value& a, const Value& b) {
  if (op == "==") return Equal(a, b);
  if (op == "!=") return !Equal(a, b);
  if (op == "in") return Contains(b, a);
  if (op == "notin") return !Contains(b, a);
  if (op == "<") return LessThan(a, b, op);
  if (op == ">") return LessThan(b, a, op);
  if (op == "<=") return !LessThan(b, a, op);
  return !LessThan(a, b, op);  // >=
}

}  // namespace oko::jinja
