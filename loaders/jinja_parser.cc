#include "loaders/jinja_parser.h"

#include <fmt/format.h>

#include <algorithm>

#include "loaders/jinja_builtins.h"
#include "loaders/jinja_lexer.h"

namespace oko::jinja {
namespace {

ExprPtr MakeExpr(ExprKind kind, SourcePos pos) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->pos = pos;
  return e;
}

ExprPtr MakeExpr(ExprKind kind, SourcePos pos, ExprPtr a, ExprPtr b) {
  ExprPtr e = MakeExpr(kind, pos);
  e->args.push_back(std::move(a));
  e->args.push_back(std::move(b));
  return e;
}

std::string Describe(const Token& t) {
  switch (t.type) {
    case TokenType::kText: return "template text";
    case TokenType::kBlockBegin: return "'{%'";
    case TokenType::kBlockEnd: return "'%}'";
    case TokenType::kVarBegin: return "'{{'";
    case TokenType::kVarEnd: return "'}}'";
    case TokenType::kString: return "a string";
    case TokenType::kInt:
    case TokenType::kFloat: return "a number";
    case TokenType::kEof: return "the end of the template";
    case TokenType::kName:
    case TokenType::kOperator: return "'" + t.text + "'";
  }
  return "?";
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body Run() { return ParseBody({}); }

 private:
  // Counts nesting on the way down so that pathological input fails cleanly.
  class DepthGuard {
   public:
    DepthGuard(Parser* p, const Token& at) : p_(p) {
      if (++p_->depth_ > kMaxParseDepth)
        p_->Fail(at, fmt::format("nesting deeper than {} levels", kMaxParseDepth));
    }
    ~DepthGuard() { --p_->depth_; }

   private:
    Parser* p_;
  };

  const Token& Cur() const { return t_[i_]; }
  const Token& Peek() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  bool IsOp(std::string_view op) const { return Cur().type == TokenType::kOperator && Cur().text == op; }
  bool IsName(std::string_view n) const { return Cur().type == TokenType::kName && Cur().text == n; }
  bool SkipOp(std::string_view op) { return IsOp(op) ? (++i_, true) : false; }
  bool SkipName(std::string_view n) { return IsName(n) ? (++i_, true) : false; }

  [[noreturn]] void Fail(const Token& t, const std::string& message) const {
    throw TemplateError(message, t.pos);
  }
  void ExpectOp(std::string_view op) {
    if (!SkipOp(op)) Fail(Cur(), fmt::format("expected '{}', got {}", op, Describe(Cur())));
  }
  std::string ExpectName() {
    if (Cur().type != TokenType::kName) Fail(Cur(), fmt::format("expected a name, got {}", Describe(Cur())));
    return t_[i_++].text;
  }
  void ExpectBlockEnd() {
    if (Cur().type != TokenType::kBlockEnd) Fail(Cur(), fmt::format("expected '%}}', got {}", Describe(Cur())));
    ++i_;
  }
  // After a body stopped on `name`: consume "name %}".
  void ExpectEndTag(std::string_view name) {
    if (!SkipName(name)) Fail(Cur(), fmt::format("expected '{}', got {}", name, Describe(Cur())));
    ExpectBlockEnd();
  }

  // Statements until a block tag named in `ends` (cursor left on that name) or, when
  // `ends` is empty, the end of the template.
  Body ParseBody(std::initializer_list<std::string_view> ends) {
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == TokenType::kText) {
        auto s = MakeStmt(StmtKind::kText, t.pos);
        s->text = t.text;
        body.push_back(std::move(s));
        ++i_;
      } else if (t.type == TokenType::kVarBegin) {
        ++i_;
        auto s = MakeStmt(StmtKind::kOutput, t.pos);
        s->expr = ParseTuple(true);
        if (Cur().type != TokenType::kVarEnd) Fail(Cur(), fmt::format("expected '}}}}', got {}", Describe(Cur())));
        ++i_;
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        const Token& name = Peek();
        if (name.type != TokenType::kName) Fail(name, fmt::format("expected a tag name, got {}", Describe(name)));
        ++i_;
        if (std::find(ends.begin(), ends.end(), name.text) != ends.end()) return body;
        body.push_back(ParseStatement(ends.size() == 0 ? "" : *(ends.end() - 1)));
      } else if (t.type == TokenType::kEof) {
        if (ends.size() != 0)
          Fail(t, fmt::format("unexpected end of template, expected '{{% {} %}}'", *(ends.end() - 1)));
        return body;
      } else {
        Fail(t, fmt::format("unexpected {}", Describe(t)));
      }
    }
  }

  static StmtPtr MakeStmt(StmtKind kind, SourcePos pos) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->pos = pos;
    return s;
  }

  // Cursor on the tag name; `closing` is the end tag the enclosing block waits for.
  StmtPtr ParseStatement(std::string_view closing) {
    const Token& name = Cur();
    DepthGuard guard(this, name);
    if (name.text == "if") return ParseIf();
    if (name.text == "for") return ParseFor();
    if (name.text == "set") return ParseSet();
    if (name.text == "macro") return ParseMacro();
    if (name.text == "generation") return ParseGeneration();
    if (name.text == "break" || name.text == "continue") {
      if (loop_depth_ == 0) Fail(name, fmt::format("'{}' outside a for loop", name.text));
      ++i_;
      ExpectBlockEnd();
      return MakeStmt(name.text == "break" ? StmtKind::kBreak : StmtKind::kContinue, name.pos);
    }
    const bool is_end = name.text == "else" || name.text == "elif" || name.text.rfind("end", 0) == 0;
    if (is_end && closing.empty()) Fail(name, fmt::format("unexpected '{}' outside any block", name.text));
    if (is_end) Fail(name, fmt::format("unexpected '{}', expected '{}'", name.text, closing));
    Fail(name, fmt::format("unknown or unsupported tag '{}'", name.text));
  }

  StmtPtr ParseIf() {
    auto s = MakeStmt(StmtKind::kIf, Cur().pos);
    ++i_;
    ExprPtr cond = ParseTuple(true);
    ExpectBlockEnd();
    while (true) {
      Body body = ParseBody({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (SkipName("elif")) {
        cond = ParseTuple(true);
        ExpectBlockEnd();
        continue;
      }
      if (SkipName("else")) {
        ExpectBlockEnd();
        s->else_body = ParseBody({"endif"});
      }
      ExpectEndTag("endif");
      return s;
    }
  }

  std::vector<std::string> ParseTargets() {
    const bool parens = SkipOp("(");
    std::vector<std::string> names = {ExpectName()};
    while (SkipOp(",")) {
      if (Cur().type != TokenType::kName) break;
      names.push_back(ExpectName());
    }
    if (parens) ExpectOp(")");
    return names;
  }

  StmtPtr ParseFor() {
    auto s = MakeStmt(StmtKind::kFor, Cur().pos);
    ++i_;
    s->targets = ParseTargets();
    if (!SkipName("in")) Fail(Cur(), fmt::format("expected 'in', got {}", Describe(Cur())));
    s->expr = ParseTuple(false);
    if (SkipName("if")) s->filter = ParseExpression();
    if (IsName("recursive")) Fail(Cur(), "recursive for loops are not supported");
    ExpectBlockEnd();
    ++loop_depth_;
    s->body = ParseBody({"else", "endfor"});
    --loop_depth_;
    if (SkipName("else")) {
      ExpectBlockEnd();
      s->else_body = ParseBody({"endfor"});
    }
    ExpectEndTag("endfor");
    return s;
  }

  StmtPtr ParseSet() {
    auto s = MakeStmt(StmtKind::kSet, Cur().pos);
    ++i_;
    if (Cur().type == TokenType::kName && Peek().type == TokenType::kOperator && Peek().text == ".") {
      s->targets = {ExpectName()};
      ++i_;
      s->attr = ExpectName();
    } else {
      s->targets = ParseTargets();
    }
    if (SkipOp("=")) {
      s->expr = ParseTuple(true);
      ExpectBlockEnd();
      return s;
    }
    if (!s->attr.empty() || s->targets.size() != 1) Fail(Cur(), fmt::format("expected '=', got {}", Describe(Cur())));
    ExpectBlockEnd();
    s->block_set = true;
    s->body = ParseBody({"endset"});
    ExpectEndTag("endset");
    return s;
  }

  // {% macro name(a, b=default) %}; the body is not inside any enclosing loop.
  StmtPtr ParseMacro() {
    auto s = MakeStmt(StmtKind::kMacro, Cur().pos);
    ++i_;
    s->text = ExpectName();
    ExpectOp("(");
    while (!SkipOp(")")) {
      if (!s->targets.empty()) ExpectOp(",");
      s->targets.push_back(ExpectName());
      s->defaults.push_back(SkipOp("=") ? ParseExpression() : nullptr);
    }
    ExpectBlockEnd();
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    s->body = ParseBody({"endmacro"});
    loop_depth_ = saved_loop_depth;
    ExpectEndTag("endmacro");
    return s;
  }

  // transformers' AssistantTracker extension marks assistant text for masks; rendering
  // is unaffected.
  StmtPtr ParseGeneration() {
    auto s = MakeStmt(StmtKind::kBlock, Cur().pos);
    ++i_;
    ExpectBlockEnd();
    s->body = ParseBody({"endgeneration"});
    ExpectEndTag("endgeneration");
    return s;
  }

  bool IsTupleEnd() const {
    const TokenType t = Cur().type;
    return t == TokenType::kBlockEnd || t == TokenType::kVarEnd || IsOp(")") || IsName("if") ||
           IsName("recursive");
  }

  // An expression, or a tuple when commas follow (`a, b`); with_condexpr false leaves an
  // `if` for the for-loop filter.
  ExprPtr ParseTuple(bool with_condexpr) {
    const SourcePos pos = Cur().pos;
    auto parse = [&] { return with_condexpr ? ParseExpression() : ParseOr(); };
    ExprPtr first = parse();
    if (!IsOp(",")) return first;
    ExprPtr tuple = MakeExpr(ExprKind::kTuple, pos);
    tuple->args.push_back(std::move(first));
    while (SkipOp(",") && !IsTupleEnd()) tuple->args.push_back(parse());
    return tuple;
  }

  ExprPtr ParseExpression() {
    DepthGuard guard(this, Cur());
    ExprPtr expr = ParseOr();
    while (IsName("if")) {
      ExprPtr e = MakeExpr(ExprKind::kCondition, Cur().pos);
      ++i_;
      e->args.push_back(ParseOr());
      e->args.push_back(std::move(expr));
      e->args.push_back(SkipName("else") ? ParseExpression() : nullptr);
      expr = std::move(e);
    }
    return expr;
  }

  ExprPtr ParseOr() {
    ExprPtr left = ParseAnd();
    while (IsName("or")) {
      const SourcePos pos = t_[i_++].pos;
      left = MakeExpr(ExprKind::kOr, pos, std::move(left), ParseAnd());
    }
    return left;
  }

  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (IsName("and")) {
      const SourcePos pos = t_[i_++].pos;
      left = MakeExpr(ExprKind::kAnd, pos, std::move(left), ParseNot());
    }
    return left;
  }

  ExprPtr ParseNot() {
    if (!IsName("not")) return ParseCompare();
    DepthGuard guard(this, Cur());
    ExprPtr e = MakeExpr(ExprKind::kUnary, Cur().pos);
    ++i_;
    e->name = "not";
    e->args.push_back(ParseNot());
    return e;
  }

  ExprPtr ParseCompare() {
    const SourcePos pos = Cur().pos;
    ExprPtr first = ParseMath1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == TokenType::kOperator &&
          (IsOp("==") || IsOp("!=") || IsOp("<") || IsOp("<=") || IsOp(">") || IsOp(">="))) {
        op = Cur().text;
        ++i_;
      } else if (SkipName("in")) {
        op = "in";
      } else if (IsName("not") && Peek().type == TokenType::kName && Peek().text == "in") {
        i_ += 2;
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = MakeExpr(ExprKind::kCompare, pos);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(ParseMath1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  // One precedence level of left-associative binary operators.
  template <typename Next>
  ExprPtr ParseBinary(std::initializer_list<std::string_view> ops, Next next) {
    ExprPtr left = (this->*next)();
    while (Cur().type == TokenType::kOperator &&
           std::find(ops.begin(), ops.end(), Cur().text) != ops.end()) {
      ExprPtr e = MakeExpr(ExprKind::kBinary, Cur().pos);
      e->name = t_[i_++].text;
      e->args.push_back(std::move(left));
      e->args.push_back((this->*next)());
      left = std::move(e);
    }
    return left;
  }
  ExprPtr ParseMath1() { return ParseBinary({"+", "-"}, &Parser::ParseConcat); }
  ExprPtr ParseConcat() { return ParseBinary({"~"}, &Parser::ParseMath2); }
  ExprPtr ParseMath2() { return ParseBinary({"*", "/", "//", "%"}, &Parser::ParsePow); }
  ExprPtr ParsePow() { return ParseBinary({"**"}, &Parser::ParseUnaryWithFilters); }
  ExprPtr ParseUnaryWithFilters() { return ParseUnary(true); }

  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard guard(this, Cur());
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      node = MakeExpr(ExprKind::kUnary, Cur().pos);
      node->name = t_[i_++].text;
      node->args.push_back(ParseUnary(false));
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    return with_filter ? ParseFilterExpr(std::move(node)) : std::move(node);
  }

  ExprPtr Literal(Value v, SourcePos pos) {
    ExprPtr e = MakeExpr(ExprKind::kLiteral, pos);
    e->literal = std::move(v);
    return e;
  }

  ExprPtr ParsePrimary() {
    const Token& t = Cur();
    switch (t.type) {
      case TokenType::kName: {
        ++i_;
        if (t.text == "true" || t.text == "True") return Literal(Value::Bool(true), t.pos);
        if (t.text == "false" || t.text == "False") return Literal(Value::Bool(false), t.pos);
        if (t.text == "none" || t.text == "None") return Literal(Value::None(), t.pos);
        ExprPtr e = MakeExpr(ExprKind::kName, t.pos);
        e->name = t.text;
        return e;
      }
      case TokenType::kString: {
        std::string s;
        while (Cur().type == TokenType::kString) s += t_[i_++].text;  // "a" "b" concatenate
        return Literal(Value::Str(std::move(s)), t.pos);
      }
      case TokenType::kInt: ++i_; return Literal(Value::Int(t.int_value), t.pos);
      case TokenType::kFloat: ++i_; return Literal(Value::Float(t.float_value), t.pos);
      default: break;
    }
    if (SkipOp("(")) {
      if (SkipOp(")")) return MakeExpr(ExprKind::kTuple, t.pos);
      ExprPtr e = ParseTuple(true);
      ExpectOp(")");
      return e;
    }
    if (SkipOp("[")) return ParseSequence(ExprKind::kList, t.pos, "]");
    if (SkipOp("{")) return ParseSequence(ExprKind::kDict, t.pos, "}");
    Fail(t, fmt::format("unexpected {}", Describe(t)));
  }

  // [a, b, c] or {k: v, ...}; a trailing comma is allowed.
  ExprPtr ParseSequence(ExprKind kind, SourcePos pos, std::string_view close) {
    ExprPtr e = MakeExpr(kind, pos);
    while (!SkipOp(close)) {
      if (!e->args.empty()) {
        ExpectOp(",");
        if (SkipOp(close)) break;
      }
      e->args.push_back(ParseExpression());
      if (kind == ExprKind::kDict) {
        ExpectOp(":");
        e->args.push_back(ParseExpression());
      }
    }
    return e;
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".")) {
        ++i_;
        const Token& t = Cur();
        if (t.type == TokenType::kInt) {  // x.0 is x[0]
          ++i_;
          node = MakeExpr(ExprKind::kGetItem, t.pos, std::move(node), Literal(Value::Int(t.int_value), t.pos));
          continue;
        }
        ExprPtr e = MakeExpr(ExprKind::kGetAttr, t.pos);
        e->name = ExpectName();
        e->args.push_back(std::move(node));
        node = std::move(e);
      } else if (IsOp("[")) {
        node = ParseSubscript(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr obj) {
    const SourcePos pos = Cur().pos;
    ++i_;
    ExprPtr start = IsOp(":") ? nullptr : ParseExpression();
    if (SkipOp("]")) return MakeExpr(ExprKind::kGetItem, pos, std::move(obj), std::move(start));
    ExpectOp(":");
    ExprPtr e = MakeExpr(ExprKind::kSlice, pos, std::move(obj), std::move(start));
    e->args.push_back(IsOp("]") || IsOp(":") ? nullptr : ParseExpression());
    e->args.push_back(SkipOp(":") && !IsOp("]") ? ParseExpression() : nullptr);
    ExpectOp("]");
    return e;
  }

  // callee(args, name=value): a kCall node whose args[0] is the callee.
  ExprPtr ParseCall(ExprPtr callee) {
    ExprPtr e = MakeExpr(ExprKind::kCall, Cur().pos);
    e->args.push_back(std::move(callee));
    AppendCallArgs(e.get());
    return e;
  }

  // "(a, b, name=value)" appended to e's args (after the callee or operand) and keywords.
  void AppendCallArgs(Expr* e) {
    ExpectOp("(");
    bool first = true;
    while (!SkipOp(")")) {
      if (!first) {
        ExpectOp(",");
        if (SkipOp(")")) break;
      }
      first = false;
      if (Cur().type == TokenType::kName && Peek().type == TokenType::kOperator && Peek().text == "=") {
        std::string key = ExpectName();
        ++i_;
        e->keywords.emplace_back(std::move(key), ParseExpression());
      } else {
        if (!e->keywords.empty()) Fail(Cur(), "positional argument after a keyword argument");
        e->args.push_back(ParseExpression());
      }
    }
  }

  ExprPtr ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        ++i_;
        const Token& name = Cur();
        ExprPtr e = MakeExpr(ExprKind::kFilter, name.pos);
        e->name = ExpectName();
        if (!IsKnownFilter(e->name)) Fail(name, fmt::format("no filter named '{}'", e->name));
        e->args.push_back(std::move(node));
        if (IsOp("(")) AppendCallArgs(e.get());
        node = std::move(e);
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  // `x is [not] name`, `x is name(args)` or `x is name arg` (jinja2's one bare argument).
  ExprPtr ParseTest(ExprPtr node) {
    ++i_;
    ExprPtr e = MakeExpr(ExprKind::kTest, Cur().pos);
    e->negated = SkipName("not");
    const Token& name = Cur();
    e->name = ExpectName();
    if (!IsKnownTest(e->name)) Fail(name, fmt::format("no test named '{}'", e->name));
    e->args.push_back(std::move(node));
    const TokenType t = Cur().type;
    if (IsOp("(")) {
      AppendCallArgs(e.get());
    } else if ((t == TokenType::kName || t == TokenType::kString || t == TokenType::kInt ||
                t == TokenType::kFloat || IsOp("[") || IsOp("{")) &&
               !IsName("else") && !IsName("or") && !IsName("and")) {
      e->args.push_back(ParsePostfix(ParsePrimary()));
    }
    return e;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body ParseTemplate(std::string_view source) { return Parser(Tokenize(source)).Run(); }

}  // namespace oko::jinja
