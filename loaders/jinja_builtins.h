// The filters, tests, str/dict methods and global functions a chat template can call:
// jinja2's built-ins plus what transformers adds (tojson as json.dumps, raise_exception,
// strftime_now).
#pragma once

#include <string_view>

#include "loaders/jinja_value.h"

namespace oko::jinja {

// Names the parser checks at parse time, as jinja2 does ("no filter named 'x'").
bool IsKnownFilter(std::string_view name);
bool IsKnownTest(std::string_view name);

Value ApplyFilter(std::string_view name, const Value& v, const CallArgs& args);
bool ApplyTest(std::string_view name, const Value& v, const CallArgs& args);
// obj.name(args) for the str and dict methods templates use; false when `obj` has no
// method `name`.
bool CallMethod(const Value& obj, std::string_view name, const CallArgs& args, Value* out);
// range, dict, raise_exception, strftime_now; Undefined for any other name. (namespace()
// is the evaluator's: the render owns the namespaces.)
Value FindGlobal(std::string_view name);
// The keyword arguments of dict() and namespace(), after any mappings passed positionally;
// `fn` names the function in the error for any other positional argument.
Dict KeywordDict(const CallArgs& a, std::string_view fn);

}  // namespace oko::jinja
