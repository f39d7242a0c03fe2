// ChatTemplate against the Hugging Face renderings in ../shared/golden/chat_template, and
// the Jinja features, error positions and limits one at a time.
#include "loaders/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace oko {
namespace {

using ordered_json = nlohmann::ordered_json;

struct GoldenCase {
  std::string id;
  ordered_json variables;
  std::string rendered;
};

std::vector<GoldenCase> LoadGoldenCases() {
  std::ifstream in(test::SharedPath("golden/chat_template/qwen3.jsonl"));
  std::vector<GoldenCase> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const ordered_json j = ordered_json::parse(line);
    GoldenCase c;
    c.id = j["id"].get<std::string>();
    c.variables = j["options"];
    c.variables["messages"] = j["messages"];
    c.rendered = j["rendered"].get<std::string>();
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(ChatTemplateGolden, AllQwen3CasesRenderByteForByte) {
  auto tmpl = ChatTemplate::LoadFromDir(test::SharedPath("models/qwen3-tokenizer"));
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
  const std::vector<GoldenCase> cases = LoadGoldenCases();
  ASSERT_EQ(cases.size(), 16u);
  int passed = 0;
  for (const GoldenCase& c : cases) {
    auto out = tmpl->Render(c.variables);
    ASSERT_TRUE(out.ok()) << c.id << ": " << out.status().message();
    EXPECT_EQ(*out, c.rendered) << "case " << c.id;
    passed += *out == c.rendered;
  }
  EXPECT_EQ(passed, 16);
}

// Renders `source` with `variables` (a JSON object text); failures come back as the
// error message prefixed with "ERROR: ".
std::string Render(std::string_view source, const std::string& variables = "{}",
                   const ChatTemplate::Limits& limits = {}) {
  auto tmpl = ChatTemplate::Parse(source, "t");
  if (!tmpl.ok()) return "ERROR: " + tmpl.status().message();
  auto out = tmpl->Render(ordered_json::parse(variables), limits);
  if (!out.ok()) return "ERROR: " + out.status().message();
  return *out;
}

// A folder holding `files` (name -> contents).
std::string MakeDir(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files) {
  const std::string dir = test::TempDir(name);
  for (const auto& [file, text] : files) std::ofstream(dir + "/" + file, std::ios::binary) << text;
  return dir;
}

TEST(ChatTemplateLoad, FolderWithoutTemplateSaysSo) {
  auto no_files = ChatTemplate::LoadFromDir(test::TempDir("empty"));
  ASSERT_FALSE(no_files.ok());
  EXPECT_NE(no_files.status().message().find("no chat template"), std::string::npos);
  auto no_key = ChatTemplate::LoadFromDir(MakeDir("no_key", {{"tokenizer_config.json", R"({"eos_token": "x"})"}}));
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.status().message().find("no 'chat_template'"), std::string::npos);
  EXPECT_EQ(no_key.status().code(), ExitCode::kBadInput);
}

TEST(ChatTemplateLoad, NamedListPicksDefaultAndPresetsSpecialTokens) {
  const std::string dir = MakeDir("named", {{"tokenizer_config.json", R"({
      "chat_template": [{"name": "tool_use", "template": "T"},
                        {"name": "default", "template": "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}"}],
      "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null})"}});
  auto tmpl = ChatTemplate::LoadFromDir(dir);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
  EXPECT_EQ(*tmpl->Render(ordered_json::object()), "<s>|</s>|");
  EXPECT_EQ(*tmpl->Render(ordered_json{{"eos_token", "E"}}), "<s>|E|");
}

TEST(ChatTemplateLoad, ChatTemplateJinjaFileTakesPrecedence) {
  const std::string dir = MakeDir("jinja_file", {{"tokenizer_config.json", R"({"chat_template": "config"})"},
                                                 {"chat_template.jinja", "file\n"}});
  auto tmpl = ChatTemplate::LoadFromDir(dir);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
  EXPECT_EQ(*tmpl->Render(ordered_json::object()), "file");  // one trailing newline dropped
}

TEST(ChatTemplateRender, VariablesMustBeAnObject) {
  auto tmpl = ChatTemplate::Parse("x", "t");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_FALSE(tmpl->Render(ordered_json::array()).ok());
}

TEST(JinjaWhitespace, TrimBlocksAndLstripBlocks) {
  EXPECT_EQ(Render("a\n  {% if true %}\n    x\n  {% endif %}\nb"), "a\n    x\nb");
  EXPECT_EQ(Render("a  {% if true %}x{% endif %}  b"), "a  x  b");  // not at a line start
  EXPECT_EQ(Render("{% if true %}\nx\n{% endif %}\n\n"), "x\n");  // one final newline dropped
  EXPECT_EQ(Render("  {{ 'a' }}\n  {% if true %}b{% endif %}\n"), "  a\nb");
  EXPECT_EQ(Render("x\r\ny\rz"), "x\ny\nz");
}

TEST(JinjaWhitespace, MinusAndPlusMarkers) {
  EXPECT_EQ(Render("a\n{%- if true %}\n  b\n  {%- endif %}\n\n{{- 'c' -}}\n   d"), "a  bcd");
  EXPECT_EQ(Render("x {%- if true +%}\ny\n{%- endif %}"), "x\ny");
  EXPECT_EQ(Render("  {%+ if true %}q{% endif %}"), "  q");
  EXPECT_EQ(Render("a\n  {#- c -#}  b\n   {# c3 #}\nc"), "ab\nc");
}

TEST(JinjaStatements, IfElifElse) {
  EXPECT_EQ(Render("{% if x %}a{% elif y %}b{% else %}c{% endif %}", R"({"x": 0, "y": [1]})"), "b");
  EXPECT_EQ(Render("{% if x %}a{% elif y %}b{% else %}c{% endif %}", R"({"x": "", "y": {}})"), "c");
}

TEST(JinjaStatements, ForLoopVariables) {
  EXPECT_EQ(Render("{% for i in ['a','b','c'] %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}"
                   "{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "01TrueFalse3;12FalseFalse3;23FalseTrue3;");
  EXPECT_EQ(Render("{% for i in [1,2,3,4,5] if i is odd %}{{ loop.index }}:{{ i }}{{ loop.last }} {% endfor %}"),
            "1:1False 2:3False 3:5True ");
  EXPECT_EQ(Render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
                   R"({"d": {"z": 1, "a": [1, "x", null]}})"),
            "z=1;a=[1, 'x', None];za");
  EXPECT_EQ(Render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
                   "{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "0134");
  EXPECT_EQ(Render("{% for a in [[1,2],[3]] %}{% for b in a %}{{ loop.index }}{{ b }}{% endfor %}|{{ loop.index }} {% endfor %}"),
            "1122|1 13|2 ");
}

TEST(JinjaStatements, SetScopesAndNamespace) {
  // A set inside a loop stays in the loop; one inside an if does not.
  EXPECT_EQ(Render("{% set x = 1 %}{% for i in range(2) %}{% set x = 5 %}{{ x }}{% endfor %}{{ x }}"
                   "{% if true %}{% set x = 9 %}{% endif %}{{ x }}"),
            "5519");
  EXPECT_EQ(Render("{% set ns = namespace(a=1, b='x') %}{% for i in range(4) %}{% set ns.a = ns.a + i %}"
                   "{% endfor %}{{ ns.a }}{{ ns.b }}"),
            "7x");
  EXPECT_EQ(Render("{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}"), "12(1, 2)");
  EXPECT_EQ(Render("{% set s %}got {{ 1 + 1 }}{% endset %}[{{ s }}]"), "[got 2]");
  EXPECT_NE(Render("{% set y = 3 %}{% set y.attr = 1 %}").find("not a namespace"), std::string::npos);
}

TEST(JinjaStatements, Macros) {
  EXPECT_EQ(Render("{% macro m(a, b=2, c=a) %}[{{ a }},{{ b }},{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(1, c=5) }}"),
            "[1,2,1][1,3,1][1,2,5]");
  // Macros see where they are defined, not the caller's loop variables.
  EXPECT_EQ(Render("{% set top = 'T' %}{% macro m() %}{{ top }}{{ i is defined }}{% endmacro %}"
                   "{% for i in range(2) %}{{ m() }}{% endfor %}"),
            "TFalseTFalse");
  EXPECT_EQ(Render("{% for i in range(2) %}{% macro m() %}{{ i }}{% endmacro %}{{ m() }}{% endfor %}"), "01");
  EXPECT_EQ(Render("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n }}*{{ fact(n - 1) }}{% endif %}{% endmacro %}{{ fact(5) }}"),
            "5*4*3*2*1");
  EXPECT_EQ(Render("{% macro inf(n) %}{{ inf(n + 1) }}{% endmacro %}{{ inf(0) }}"),
            "ERROR: t:1:25: macro calls nested deeper than 32");
  EXPECT_EQ(Render("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=2) }}"), "ERROR: t:1:42: macro 'm' has no parameter 'b'");
}

TEST(JinjaStatements, GenerationTagRendersItsBody) {
  EXPECT_EQ(Render("{% for m in ['a', 'b'] %}{% generation %}{{ m }}{% if m == 'a' %}{% continue %}{% endif %}!"
                   "{% endgeneration %}{% endfor %}"),
            "ab!");
}

TEST(JinjaExpressions, LiteralsAccessAndSlices) {
  EXPECT_EQ(Render("{{ none }}|{{ true }}|{{ 1.0 }}|{{ [none, \"it's\", 'q\"x', 'a\\nb'] }}|{{ {'a': 'b'} }}|{{ (1,) }}"),
            "None|True|1.0|[None, \"it's\", 'q\"x', 'a\\nb']|{'a': 'b'}|(1,)");
  EXPECT_EQ(Render("{{ 'multi' \"part\" }} {{ '\\x41\\u00e9\\101\\q' }}"), "multipart AéA\\q");
  EXPECT_EQ(Render("{% set d = {'k': [1, {'z': 2}]} %}{{ d.k[1].z }}{{ d['k'][0] }}{{ d.k.0 }}{{ d.k[-1]['z'] }}"), "2112");
  EXPECT_EQ(Render("{{ 'abc'[::-1] }}{{ [1,2,3,4,5][1:4] }}{{ [1,2,3,4,5][::2] }}{{ 'héllo'[1:3] }}"
                   "{{ 'abc'[-5:10] }}{{ [1,2,3,4][3:0:-1] }}"),
            "cba[2, 3, 4][1, 3, 5]élabc[4, 3, 2]");
}

TEST(JinjaExpressions, ArithmeticAndConcatenation) {
  EXPECT_EQ(Render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"
                   " {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.0e-5 }} {{ 10 - 3 - 2 }} {{ 2 ** 3 ** 2 }}"),
            "7 3 -4 2 3.5 1024 0.5 0.30000000000000004 1e+20 1e-05 5 64");
  EXPECT_EQ(Render("{{ 'a' ~ 1 ~ none ~ true ~ [1] ~ undefined_name }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ 'x' + 'y' }} {{ [1] + [2] }}"),
            "a1NoneTrue[1] ababab [1, 1] xy [1, 2]");
  EXPECT_EQ(Render("{{ messages|length - 1 }}", R"({"messages": [1, 2, 3]})"), "2");
  EXPECT_NE(Render("{{ x + 1 }}", R"({"x": "a"})").find("t:1:6: unsupported operand type(s) for +: 'str' and 'int'"),
            std::string::npos);
  EXPECT_NE(Render("{{ 5 // 0 }}").find("division by zero"), std::string::npos);
}

TEST(JinjaExpressions, ComparisonsLogicAndInlineIf) {
  EXPECT_EQ(Render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 5 }} {{ 'a' in 'cat' }} {{ 2 in [1,2] }} {{ 'k' in {'k':1} }}"
                   " {{ 3 not in [1] }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1,2] < [1,3] }}"),
            "True False True True True True True True True");
  EXPECT_EQ(Render("{{ true and 'x' }} {{ false or 'y' }} {{ none or 0 or '' }}|{{ not none }} {{ 'a' if false }}|"
                   "{{ 'a' if 0 else 'b' }} {{ not 1 == 2 }} {{ 1 if false else 2 if false else 3 }}"),
            "x y |True |b True 3");
  EXPECT_NE(Render("{{ '</think>' in x }}", R"({"x": null})").find("argument of type 'NoneType' is not iterable"),
            std::string::npos);
}

TEST(JinjaFilters, StringAndSequenceFilters) {
  EXPECT_EQ(Render("{{ '  x  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'Hi'|upper }}{{ 'Hi'|lower }}|{{ [1,2,3]|join(', ') }}"
                   "|{{ [1,2]|first }}{{ [1,2]|last }}|{{ 5|string }}|{{ 'héllo'|length }}|{{ {'a':1}|length }}"),
            "x|hi|HIhi|1, 2, 3|12|5|5|1");
  EXPECT_EQ(Render("{{ x|default('d') }}|{{ ''|default('e') }}|{{ ''|default('e', true) }}|{{ 'ß'|upper }}"), "d||e|SS");
  EXPECT_EQ(Render("{{ d|items|list }}{{ undefined_name|items|list }}", R"({"d": {"b": 1, "a": 2}})"),
            "[('b', 1), ('a', 2)][]");
  EXPECT_EQ(Render("{{ [{'a':1},{'a':2}]|map(attribute='a')|list }}{{ [1,2,3,4]|select('even')|list }}"
                   "{{ [{'r':'x'},{'r':'y'}]|rejectattr('r', 'equalto', 'x')|map(attribute='r')|join }}"),
            "[1, 2][2, 4]y");
}

TEST(JinjaFilters, ToJsonIsJsonDumpsWithoutAsciiEscaping) {
  EXPECT_EQ(Render("{{ x|tojson }}", R"({"x": {"b": [1, 2.5, "é\u0001\t\"\\", null, true, {}], "a": [], "c": 1e100}})"),
            R"({"b": [1, 2.5, "é\u0001\t\"\\", null, true, {}], "a": [], "c": 1e+100})");
  EXPECT_EQ(Render("{{ x|tojson(indent=2) }}", R"({"x": {"a": [1, {}]}})"), "{\n  \"a\": [\n    1,\n    {}\n  ]\n}");
  EXPECT_NE(Render("{{ undefined_name|tojson }}").find("is undefined"), std::string::npos);
}

TEST(JinjaTests, TypeTests) {
  const std::string t =
      "{{ x is defined }}{{ x is none }}{{ x is string }}{{ x is number }}{{ x is mapping }}"
      "{{ x is sequence }}{{ x is iterable }}{{ x is true }}{{ x is false }}{{ x is not none }}";
  EXPECT_EQ(Render(t, R"({"x": "s"})"), "TrueFalseTrueFalseFalseTrueTrueFalseFalseTrue");
  EXPECT_EQ(Render(t, R"({"x": false})"), "TrueFalseFalseTrueFalseFalseFalseFalseTrueTrue");
  EXPECT_EQ(Render(t, R"({"x": {"k": 1}})"), "TrueFalseFalseFalseTrueTrueTrueFalseFalseTrue");
  EXPECT_EQ(Render(t, R"({"x": null})"), "TrueTrueFalseFalseFalseFalseFalseFalseFalseFalse");
  EXPECT_EQ(Render(t, "{}"), "FalseFalseFalseFalseFalseFalseTrueFalseFalseTrue");
  EXPECT_EQ(Render("{{ 6 is divisibleby 3 }}{{ 3 is even }}{{ 3 is eq 3 }}{{ 3 is in [3] }}"), "TrueFalseTrueTrue");
}

TEST(JinjaMethods, StringAndDictMethods) {
  EXPECT_EQ(Render("{{ 'a,b,,c'.split(',') }}{{ '  a  b '.split() }}{{ 'a b c'.split(' ', 1) }}|{{ '\\n\\nx\\n'.strip('\\n') }}"
                   "|{{ 'xxa'.lstrip('x') }}|{{ 'axx'.rstrip('x') }}|{{ '  y '.strip() }}|{{ 'aaa'.replace('a', 'b', 2) }}"
                   "|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}"),
            "['a', 'b', '', 'c']['a', 'b']['a', 'b c']|x|a|a|y|bba|TrueTrue");
  EXPECT_EQ(Render("{{ d.get('a') }}{{ d.get('b') }}{{ d.get('b', 2) }}|{{ d.keys()|list }}{{ d.values()|list }}",
                   R"({"d": {"a": 1}})"),
            "1None2|['a'][1]");
}

TEST(JinjaUndefined, BehavesAsJinja2DefaultUndefined) {
  EXPECT_EQ(Render("[{{ nope }}]{% if nope %}t{% else %}f{% endif %}{{ nope|length }}{% for x in nope %}x{% endfor %}"
                   "{{ 'a' in nope }}{{ m.missing is defined }}{{ n.attr }}",
                   R"({"m": {}, "n": null})"),
            "[]f0FalseFalse");
  EXPECT_EQ(Render("{{ m.a.b }}", R"({"m": {}})"), "ERROR: t:1:8: 'dict object' has no attribute 'a'");
  EXPECT_EQ(Render("{{ nope + 'a' }}"), "ERROR: t:1:9: 'nope' is undefined");
  EXPECT_EQ(Render("{{ nope.startswith('a') }}"), "ERROR: t:1:4: 'nope' is undefined");
}

TEST(JinjaErrors, SyntaxErrorsReportLineAndColumn) {
  EXPECT_EQ(Render("line1\n{% if x %}\n  {{ 1 + }}\n{% endif %}"), "ERROR: t:3:10: unexpected '}}'");
  EXPECT_EQ(Render("{% if x %}\nx"), "ERROR: t:2:2: unexpected end of template, expected '{% endif %}'");
  EXPECT_EQ(Render("{% if true %}{% endfor %}"), "ERROR: t:1:17: unexpected 'endfor', expected 'endif'");
  EXPECT_EQ(Render("a\n {% call m() %}{% endcall %}"), "ERROR: t:2:5: unknown or unsupported tag 'call'");
  EXPECT_EQ(Render("{{ x | nosuch }}"), "ERROR: t:1:8: no filter named 'nosuch'");
  EXPECT_EQ(Render("{{ x is nosuch }}"), "ERROR: t:1:9: no test named 'nosuch'");
  EXPECT_EQ(Render("ab\n  {{ 'open }}"), "ERROR: t:2:6: unterminated string literal");
  EXPECT_EQ(Render("{{ x"), "ERROR: t:1:1: unterminated expression: missing '}}'");
  EXPECT_EQ(Render("{# x"), "ERROR: t:1:1: unterminated comment: missing '#}'");
  EXPECT_EQ(Render("{% break %}"), "ERROR: t:1:4: 'break' outside a for loop");
  EXPECT_EQ(Render("{{ raise_exception('Only user and assistant roles are supported!') }}"),
            "ERROR: t:1:19: template raised an exception: Only user and assistant roles are supported!");
}

// Found by fuzz_chat_template (ASan stack-use-after-scope): map(attribute=...) without
// default= kept a reference to the temporary fallback Value().
TEST(JinjaFuzzRegressions, MapAttributeWithAndWithoutDefault) {
  const char* vars = R"({"xs": [{"a": 1}, {}]})";
  EXPECT_EQ(Render("{{ xs | map(attribute='a', default=0) | list }}", vars), "[1, 0]");
  EXPECT_EQ(Render("{{ xs | map(attribute='a') | select('defined') | list }}", vars), "[1]");
  EXPECT_EQ(Render("{{ xs | map(attribute='b') | list | length }}", vars), "2");
}

// transformers fails to read a template that is not UTF-8; the error says where.
TEST(JinjaFuzzRegressions, InvalidUtf8IsAnErrorWithItsPosition) {
  EXPECT_EQ(Render("ok\n{{ 'caf\xE9' }}"),
            "ERROR: t:2:8: invalid UTF-8 (byte 0xE9 at offset 10); a chat template must be UTF-8 text");
  EXPECT_EQ(Render("\xF0\x9F\xA6"), "ERROR: t:1:1: invalid UTF-8 (byte 0xF0 at offset 0); a chat template must be UTF-8 text");
  EXPECT_EQ(Render("{{ '\xF0\x9F\xA6\x99' }}"), "\xF0\x9F\xA6\x99");
}

TEST(JinjaLimits, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_NE(Render(deep).find("nesting deeper than"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  EXPECT_NE(Render(blocks).find("nesting deeper than"), std::string::npos);
  EXPECT_NE(Render("{{ " + std::string(100000, '-') + "1 }}").find("nesting deeper than"), std::string::npos);
}

// Expected outputs from jinja2 3.1 (ImmutableSandboxedEnvironment, as transformers renders).
TEST(JinjaStatements, NamespacesMayReferToEachOther) {
  EXPECT_EQ(Render("{% set ns = namespace(n=0) %}{% set ns.n = ns %}{{ ns.n }}|{{ [ns] }}"),
            "<Namespace {'n': <Namespace {...}>}>|[<Namespace {'n': <Namespace {...}>}>]");
  EXPECT_EQ(Render("{% set a = namespace() %}{% set b = namespace(a=a) %}{% set a.b = [b, {'k': a}] %}"
                   "{{ a }}|{{ b }}|{{ a.b[0].a.b[1].k == a }}"),
            "<Namespace {'b': [<Namespace {'a': <Namespace {...}>}>, {'k': <Namespace {...}>}]}>|"
            "<Namespace {'a': <Namespace {'b': [<Namespace {...}>, {'k': <Namespace {...}>}]}>}>|True");
}

TEST(JinjaLimits, ValuesBuiltInLoopsNestNoDeeperThanTheLimit) {
  const std::string nest = "{% set ns = namespace(x=0) %}{% for i in range(N) %}{% set ns.x = [ns.x] %}{% endfor %}";
  const auto nested = [&](int n) { return std::regex_replace(nest, std::regex("N"), std::to_string(n)); };
  EXPECT_EQ(Render(nested(255) + "{{ ns.x|string|length }}"), "511");
  EXPECT_EQ(Render(nested(100000) + "{{ ns.x }}"), "ERROR: t:1:72: lists and dicts nest deeper than 256 levels");
  // A chain of namespaces is not owned (no limit on building it) but prints only so deep.
  const std::string chain =
      "{% set ns = namespace(all=[]) %}{% for i in range(5000) %}{% set ns.all = ns.all + [namespace(i=i)] %}{% endfor %}"
      "{% for n in ns.all %}{% if not loop.last %}{% set n.next = ns.all[loop.index] %}{% endif %}{% endfor %}";
  EXPECT_EQ(Render(chain + "{{ ns.all[4998] }}"), "<Namespace {'i': 4998, 'next': <Namespace {'i': 4999}>}>");
  EXPECT_NE(Render(chain + "{{ ns.all[0] }}").find("nests deeper than 1000 levels to print"), std::string::npos);
  // Namespaces live until the render ends, so their number is bounded too.
  EXPECT_NE(Render("{% for i in range(1000000) %}{% set n = namespace() %}{% set n = namespace() %}{% endfor %}")
                .find("more than 1048576 namespace() calls in one render"),
            std::string::npos);
}

TEST(JinjaLimits, EndlessLoopsAreBounded) {
  EXPECT_NE(Render("{% for i in range(1000000000000) %}{% endfor %}").find("range() of more than"), std::string::npos);
  ChatTemplate::Limits limits;
  limits.max_loop_iterations = 10000;
  EXPECT_NE(Render("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "{}", limits)
                .find("more than 10000 loop iterations"),
            std::string::npos);
  // Each iteration builds a 1 MB string: the step budget stops it long before 2^20 loops.
  const std::string heavy = "{% for i in range(1000000) %}{% set s = 'x' * 1000000 %}{% endfor %}";
  EXPECT_NE(Render(heavy).find("evaluation steps"), std::string::npos);
}

TEST(JinjaLimits, OutputAndStringSizesAreBounded) {
  ChatTemplate::Limits limits;
  limits.max_output_bytes = 1000;
  EXPECT_EQ(Render("{% for i in range(100) %}0123456789{% endfor %}", "{}", limits).size(), 1000u);
  EXPECT_NE(Render("{% for i in range(101) %}0123456789{% endfor %}", "{}", limits).find("output exceeds"),
            std::string::npos);
  EXPECT_NE(Render("{{ 'x' * 100000000 }}").find("would exceed 16 MiB"), std::string::npos);
  EXPECT_NE(Render("{% set s = 'ab' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}").find("would exceed"),
            std::string::npos);
}

}  // namespace
}  // namespace oko
