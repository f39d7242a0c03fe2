// The parsed template: statements and expressions, each with its source position so
// that runtime errors point at line:column.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loaders/jinja_value.h"

namespace oko::jinja {

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // args = items
  kTuple,     // args = items
  kDict,      // args = key0, value0, key1, value1...
  kGetAttr,   // args[0].name
  kGetItem,   // args[0][args[1]]
  kSlice,     // args[0][args[1]:args[2]:args[3]], absent parts are null
  kCall,      // args[0](args[1..], keywords)
  kFilter,    // args[0] | name(args[1..], keywords)
  kTest,      // args[0] is [not] name(args[1..]); negated
  kUnary,     // name ("-", "+", "not") args[0]
  kBinary,    // args[0] name args[1]: + - * / // % ** ~
  kAnd,       // args[0] and args[1]
  kOr,        // args[0] or args[1]
  kCompare,   // args[0] ops[0] args[1] ops[1] args[2]...: == != < <= > >= in notin
  kCondition, // args[1] if args[0] else args[2] (args[2] null when no else)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  SourcePos pos;
  std::string name;
  Value literal;
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  std::vector<std::string> ops;
};

enum class StmtKind {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // branches (condition, body); else_body
  kFor,       // for targets in expr [if filter]: body; else_body
  kSet,       // targets = expr; or targets[0].attr = expr; or block set capturing body
  kBreak,
  kContinue,
  kMacro,     // {% macro text(targets = defaults) %} body {% endmacro %}
  kBlock,     // {% generation %} body {% endgeneration %}: transformers' tag, renders body
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind = StmtKind::kText;
  SourcePos pos;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string attr;  // {% set ns.attr = ... %}
  bool block_set = false;
  std::vector<ExprPtr> defaults;  // a macro's parameter defaults, null where none
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
};

}  // namespace oko::jinja
