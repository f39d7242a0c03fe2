#include "loaders/jinja_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <unordered_map>

#include "loaders/jinja_builtins.h"
#include "loaders/jinja_ops.h"

namespace oko::jinja {
namespace {

enum class Flow { kNormal, kBreak, kContinue };

// Macro calls nested deeper than this (recursion included) are an error.
constexpr int kMaxCallDepth = 32;
// namespace() calls per render: each lives until the render ends (a few dozen bytes), so
// the step budget alone would allow a GB of them.
constexpr size_t kMaxNamespaces = size_t{1} << 20;

class Evaluator {
 public:
  Evaluator(const Dict& variables, const RenderLimits& limits)
      : variables_(variables), limits_(limits), namespace_function_(MakeNamespaceFunction()) {}

  std::string Run(const Body& body) {
    std::string out;
    out_ = &out;
    frames_.emplace_back();
    Exec(body);
    return out;
  }

 private:
  using Frame = std::unordered_map<std::string, Value>;

  Flow Exec(const Body& body) {
    for (const StmtPtr& s : body) {
      const Flow flow = ExecWithPos(*s);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  // Errors raised without a position get the statement's.
  Flow ExecWithPos(const Stmt& s) {
    try {
      return ExecStmt(s);
    } catch (TemplateError& e) {
      if (e.pos().line == 0) e.set_pos(s.pos);
      throw;
    }
  }

  Flow ExecStmt(const Stmt& s) {
    switch (s.kind) {
      case StmtKind::kText: Append(s.text); return Flow::kNormal;
      case StmtKind::kOutput: Append(ToStr(Eval(*s.expr))); return Flow::kNormal;
      case StmtKind::kIf:
        for (const auto& [cond, body] : s.branches)
          if (Truthy(Eval(*cond))) return Exec(body);
        return Exec(s.else_body);
      case StmtKind::kFor: return ExecFor(s);
      case StmtKind::kSet: ExecSet(s); return Flow::kNormal;
      case StmtKind::kMacro: frames_.back()[s.text] = MakeMacro(s); return Flow::kNormal;
      case StmtKind::kBlock: return Exec(s.body);
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void Append(std::string_view s) {
    if (out_->size() + s.size() > limits_.max_output_bytes)
      throw TemplateError(fmt::format("output exceeds the limit of {} bytes", limits_.max_output_bytes));
    out_->append(s);
  }

  // jinja2's loop object for item `i` of `items`.
  static Value LoopInfo(const std::vector<Value>& items, size_t i) {
    const auto n = static_cast<int64_t>(items.size());
    const auto k = static_cast<int64_t>(i);
    Dict loop;
    loop.entries = {
        {"index0", Value::Int(k)},
        {"index", Value::Int(k + 1)},
        {"revindex0", Value::Int(n - k - 1)},
        {"revindex", Value::Int(n - k)},
        {"first", Value::Bool(k == 0)},
        {"last", Value::Bool(k == n - 1)},
        {"length", Value::Int(n)},
        {"depth", Value::Int(1)},
        {"depth0", Value::Int(0)},
        {"previtem", k > 0 ? items[i - 1] : Value::MakeUndefined("there is no previous item")},
        {"nextitem", k + 1 < n ? items[i + 1] : Value::MakeUndefined("there is no next item")},
    };
    return Value::MakeDict(std::move(loop));
  }

  // The body runs in a scope of its own (sets inside do not leak out, as in jinja2); an
  // `if` filter is applied first so that loop.length and loop.last count kept items.
  Flow ExecFor(const Stmt& s) {
    std::vector<Value> items = Iterate(Eval(*s.expr));
    frames_.emplace_back();
    if (s.filter) {
      std::vector<Value> kept;
      for (Value& item : items) {
        CountIteration();
        Assign(s.targets, item);
        if (Truthy(Eval(*s.filter))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      CountIteration();
      Assign(s.targets, items[i]);
      frames_.back()["loop"] = LoopInfo(items, i);
      if (Exec(s.body) == Flow::kBreak) break;
    }
    frames_.pop_back();
    return items.empty() ? Exec(s.else_body) : Flow::kNormal;
  }

  void CountIteration() {
    if (++iterations_ > limits_.max_loop_iterations)
      throw TemplateError(fmt::format("more than {} loop iterations in one render", limits_.max_loop_iterations));
  }

  void Assign(const std::vector<std::string>& targets, const Value& v) {
    Frame& frame = frames_.back();
    if (targets.size() == 1) {
      frame[targets[0]] = v;
      return;
    }
    const std::vector<Value> items = Iterate(v);
    if (items.size() != targets.size())
      throw TemplateError(fmt::format("cannot unpack {} values into {} names", items.size(), targets.size()));
    for (size_t i = 0; i < targets.size(); ++i) frame[targets[i]] = items[i];
  }

  void ExecSet(const Stmt& s) {
    if (s.block_set) {
      std::string captured;
      std::string* saved = out_;
      out_ = &captured;
      Exec(s.body);
      out_ = saved;
      Assign(s.targets, Value::Str(std::move(captured)));
      return;
    }
    Value v = Eval(*s.expr);
    if (s.attr.empty()) {
      Assign(s.targets, v);
      return;
    }
    const Value ns = Lookup(s.targets[0]);
    if (!ns.is_namespace())
      throw TemplateError(fmt::format("cannot assign attribute '{}' on '{}', which is not a namespace()", s.attr, s.targets[0]));
    ns.namespace_attrs().Set(s.attr, std::move(v));
  }

  // namespace(): its attributes live in namespaces_, as long as the render.
  Value MakeNamespaceFunction() {
    return Value::MakeFunction("namespace", [this](const CallArgs& args) {
      if (namespaces_.size() >= kMaxNamespaces)
        throw TemplateError(fmt::format("more than {} namespace() calls in one render", kMaxNamespaces));
      return Value::MakeNamespace(&namespaces_.emplace_back(KeywordDict(args, "namespace")));
    });
  }

  // A macro is a function over this evaluator, which outlives every value of the render.
  // It closes over the scopes where it is defined: frames [0, closure_end), which stay
  // on the stack for as long as the macro can be called.
  Value MakeMacro(const Stmt& macro) {
    const size_t closure_end = frames_.size();
    return Value::MakeFunction(macro.text, [this, &macro, closure_end](const CallArgs& args) {
      return CallMacro(macro, closure_end, args);
    });
  }

  // The body renders to a string in a scope of its own that sees the scopes of the
  // definition, not those of the caller, as jinja2's macros do.
  Value CallMacro(const Stmt& macro, size_t closure_end, const CallArgs& args) {
    if (static_cast<int>(macro_scopes_.size()) >= kMaxCallDepth)
      throw TemplateError(fmt::format("macro calls nested deeper than {}", kMaxCallDepth));
    if (args.positional.size() > macro.targets.size())
      throw TemplateError(fmt::format("macro '{}' takes {} arguments, got {}", macro.text, macro.targets.size(), args.positional.size()));
    Frame params;
    for (const auto& [name, value] : args.keyword) {
      if (std::find(macro.targets.begin(), macro.targets.end(), name) == macro.targets.end())
        throw TemplateError(fmt::format("macro '{}' has no parameter '{}'", macro.text, name));
      params[name] = value;
    }
    for (size_t i = 0; i < args.positional.size(); ++i) params[macro.targets[i]] = args.positional[i];
    const size_t saved_frames = frames_.size();
    macro_scopes_.push_back({closure_end, saved_frames});
    frames_.push_back(std::move(params));
    // Defaults are evaluated inside the macro's scope, so they may use earlier parameters.
    for (size_t i = 0; i < macro.targets.size(); ++i) {
      const std::string& name = macro.targets[i];
      if (frames_.back().count(name) != 0) continue;
      Value v = macro.defaults[i] ? Eval(*macro.defaults[i])
                                  : Value::MakeUndefined(fmt::format("parameter '{}' was not provided", name));
      frames_.back()[name] = std::move(v);
    }
    std::string captured;
    std::string* saved_out = out_;
    out_ = &captured;
    Exec(macro.body);
    out_ = saved_out;
    frames_.resize(saved_frames);
    macro_scopes_.pop_back();
    return Value::Str(std::move(captured));
  }

  Value Lookup(const std::string& name) const {
    const MacroScope scope = macro_scopes_.empty() ? MacroScope{0, 0} : macro_scopes_.back();
    for (size_t i = frames_.size(); i-- > scope.base;) {
      const auto found = frames_[i].find(name);
      if (found != frames_[i].end()) return found->second;
    }
    for (size_t i = scope.closure_end; i-- > 0;) {
      const auto found = frames_[i].find(name);
      if (found != frames_[i].end()) return found->second;
    }
    if (const Value* v = variables_.Find(name)) return *v;
    if (name == "namespace") return namespace_function_;
    return FindGlobal(name);
  }

  // Every evaluation is counted against the step budget; errors raised without a
  // position get this expression's.
  Value Eval(const Expr& e) {
    try {
      Value v = EvalInner(e);
      steps_ += 1 + (v.is_string() ? static_cast<int64_t>(v.as_string().size() >> 4) : 0);
      if (steps_ > limits_.max_steps)
        throw TemplateError(fmt::format("render exceeded its budget of {} evaluation steps", limits_.max_steps));
      return v;
    } catch (TemplateError& err) {
      if (err.pos().line == 0) err.set_pos(e.pos);
      throw;
    }
  }

  Value EvalOptional(const ExprPtr& e) { return e ? Eval(*e) : Value::None(); }

  std::vector<Value> EvalItems(const Expr& e) {
    std::vector<Value> items;
    items.reserve(e.args.size());
    for (const ExprPtr& a : e.args) items.push_back(Eval(*a));
    return items;
  }

  Value EvalInner(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral: return e.literal;
      case ExprKind::kName: return Lookup(e.name);
      case ExprKind::kList: return Value::MakeList(EvalItems(e));
      case ExprKind::kTuple: return Value::MakeList(EvalItems(e), true);
      case ExprKind::kDict: return EvalDict(e);
      case ExprKind::kGetAttr: return GetAttr(Eval(*e.args[0]), e.name);
      case ExprKind::kGetItem: {
        Value obj = Eval(*e.args[0]);
        return GetItem(obj, Eval(*e.args[1]));
      }
      case ExprKind::kSlice: {
        Value obj = Eval(*e.args[0]);
        Value start = EvalOptional(e.args[1]), stop = EvalOptional(e.args[2]);
        return GetSlice(obj, start, stop, EvalOptional(e.args[3]));
      }
      case ExprKind::kCall: return EvalCall(e);
      case ExprKind::kFilter: {
        Value v = Eval(*e.args[0]);
        return ApplyFilter(e.name, v, EvalArgs(e));
      }
      case ExprKind::kTest: {
        Value v = Eval(*e.args[0]);
        return Value::Bool(ApplyTest(e.name, v, EvalArgs(e)) != e.negated);
      }
      case ExprKind::kUnary:
        if (e.name == "not") return Value::Bool(!Truthy(Eval(*e.args[0])));
        return Negate(Eval(*e.args[0]), e.name == "-");
      case ExprKind::kBinary: {
        Value a = Eval(*e.args[0]);
        return BinaryOp(e.name, a, Eval(*e.args[1]));
      }
      case ExprKind::kAnd: {
        Value a = Eval(*e.args[0]);
        return Truthy(a) ? Eval(*e.args[1]) : a;
      }
      case ExprKind::kOr: {
        Value a = Eval(*e.args[0]);
        return Truthy(a) ? a : Eval(*e.args[1]);
      }
      case ExprKind::kCompare: return EvalCompare(e);
      case ExprKind::kCondition:
        if (Truthy(Eval(*e.args[0]))) return Eval(*e.args[1]);
        return e.args[2] ? Eval(*e.args[2]) : Value::MakeUndefined("the inline if had no else");
    }
    return Value();
  }

  Value EvalDict(const Expr& e) {
    Dict d;
    for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
      const Value key = Eval(*e.args[i]);
      if (!key.is_string()) throw TemplateError(fmt::format("dict keys must be strings here, got {}", TypeName(key)));
      d.Set(key.as_string(), Eval(*e.args[i + 1]));
    }
    return Value::MakeDict(std::move(d));
  }

  // Arguments after args[0] (the callee, or the operand of a filter or test).
  CallArgs EvalArgs(const Expr& e) {
    CallArgs args;
    for (size_t i = 1; i < e.args.size(); ++i) args.positional.push_back(Eval(*e.args[i]));
    for (const auto& [name, expr] : e.keywords) args.keyword.emplace_back(name, Eval(*expr));
    return args;
  }

  // obj.method(...) calls a str or dict method; anything else must evaluate to a function.
  Value EvalCall(const Expr& e) {
    const Expr& callee = *e.args[0];
    Value f;
    if (callee.kind == ExprKind::kGetAttr) {
      Value obj = Eval(*callee.args[0]);
      if (obj.is_undefined()) throw TemplateError(UndefinedMessage(obj), callee.args[0]->pos);
      CallArgs args = EvalArgs(e);
      Value out;
      if (CallMethod(obj, callee.name, args, &out)) return out;
      f = GetAttr(obj, callee.name);
      return CallFunction(f, args);
    }
    f = Eval(callee);
    return CallFunction(f, EvalArgs(e));
  }

  static Value CallFunction(const Value& f, const CallArgs& args) {
    ThrowIfUndefined(f);
    if (!f.is_function()) throw TemplateError(fmt::format("'{}' object is not callable", TypeName(f)));
    return f.as_function().call(args);
  }

  // a < b < c is (a < b) and (b < c), evaluating b once, as in Python.
  Value EvalCompare(const Expr& e) {
    Value left = Eval(*e.args[0]);
    for (size_t i = 0; i < e.ops.size(); ++i) {
      Value right = Eval(*e.args[i + 1]);
      if (!CompareOp(e.ops[i], left, right)) return Value::Bool(false);
      left = std::move(right);
    }
    return Value::Bool(true);
  }

  const Dict& variables_;
  const RenderLimits limits_;
  // Every namespace() of the render (a deque: they stay where they are).
  std::deque<Dict> namespaces_;
  const Value namespace_function_;
  std::vector<Frame> frames_;
  // Per active macro call: the frames it closes over, [0, closure_end), and its own,
  // [base, end).
  struct MacroScope {
    size_t closure_end;
    size_t base;
  };
  std::vector<MacroScope> macro_scopes_;
  std::string* out_ = nullptr;
  int64_t iterations_ = 0;
  int64_t steps_ = 0;
};

}  // namespace

std::string RenderTemplate(const Body& body, const Dict& variables, const RenderLimits& limits) {
  return Evaluator(variables, limits).Run(body);
}

}  // namespace oko::jinja
