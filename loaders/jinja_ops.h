// Operators and element access with the semantics jinja2 gets from Python (and from
// its sandbox's getattr/getitem): what errors, what silently yields Undefined.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "loaders/jinja_value.h"

namespace oko::jinja {

// The items a for loop visits: list items, dict keys, string characters; Undefined is
// empty. Other types throw ("'int' object is not iterable").
std::vector<Value> Iterate(const Value& v);
// len(): code points of a string, items of a list or dict; Undefined is 0.
int64_t Length(const Value& v);

// obj.name: a dict key or namespace attribute; anything missing is Undefined; an
// Undefined `obj` throws (jinja2's UndefinedError).
Value GetAttr(const Value& obj, const std::string& name);
// obj[key]: Python indexing (negative indices count from the end); missing is Undefined.
Value GetItem(const Value& obj, const Value& key);
// obj[start:stop:step] on a list or string; unset parts are None or Undefined.
Value GetSlice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// `item in container`.
bool Contains(const Value& container, const Value& item);
// + - * / // % ** ~ on two values.
Value BinaryOp(std::string_view op, const Value& a, const Value& b);
// Unary - and +.
Value Negate(const Value& v, bool minus);
// == != < <= > >= in notin.
bool CompareOp(std::string_view op, const Value& a, const Value& b);

}  // namespace oko::jinja
