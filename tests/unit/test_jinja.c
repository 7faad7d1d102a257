/* test_jinja.c — unit tests for src/chat/jinja.h, the bounded Jinja interpreter.
 *
 * Expected outputs in the table below were produced by llama.cpp's own engine (common/jinja/)
 * from the same template and context, so each row is a byte-exact compatibility check.
 *
 * Covers: expressions (arithmetic, ~ and + on strings, comparisons, `in`, and/or/not, ternary),
 * how values print (None, True, floats, lists, dicts) and their repr via |string, tojson
 * (indent, separators, ensure_ascii), string and list and dict filters and methods, tests,
 * selectattr/map, default, whitespace control (lstrip/trim blocks, `-` markers, comments, the
 * dropped trailing newline), loops (loop.*, else, filter, unpacking, break/continue), scoping,
 * namespace, macros with defaults and caller, set blocks, lazy printing of lists, a small chat
 * template, strftime_now with SY_JINJA_NOW; render errors (raise_exception carries its message,
 * undefined arithmetic, unknown filter...); limits (deep recursion, huge range, huge output,
 * string repetition, step budget, memory budget, self-containing list); malformed templates
 * (unterminated tags, strings and comments, bad syntax, unknown tags, deep nesting) that must give
 * an error naming line:col; API edge cases; a mutation fuzz loop over a real chat template (no
 * crash, no leak under ASan).
 */
#include "jinja.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
/* clang-format on */

struct case_ {
  const char *name, *tmpl, *ctx, *want;
};
struct err_case {
  const char *name, *tmpl, *frag;
};

static const struct case_ cases[] = {
    {"arith",
     "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 / 2 }}|{{ 7 % 3 }}|{{ 10 - 4 - 3 }}|{{ 2.5 * 2 }}",
     "{}", "7|9|3.5|1|3|5.0"},
    {"concat", "{{ 'a' ~ 1 ~ true ~ none }}|{{ 'x' + 'y' }}|{{ 'ab' * 2 }}|{{ none ~ 'z' }}", "{}",
     "a1True|xy|abab|z"},
    {"compare", "{{ 1 == 1.0 }}|{{ 1 == true }}|{{ 'a' != 'b' }}|{{ 2 > 1 }}|{{ [1,2] == [1,2] }}",
     "{}", "True|True|True|True|True"},
    {"membership",
     "{{ 'a' in 'cat' }}|{{ 3 in [1,2] }}|{{ 'k' in {'k': 1} }}|{{ 'z' not in ['z'] }}|{{ 1 in "
     "nothing }}",
     "{}", "True|False|True|False|False"},
    {"logic",
     "{{ 0 or 'x' }}|{{ 1 and 2 }}|{{ not none }}|{{ 'y' if 0 else 'n' }}|{{ 'a' if false }}.",
     "{}", "x|2|True|n|."},
    {"print_values",
     "{{ none }}|{{ true }}|{{ 1.0 }}|{{ 0.1 }}|{{ [1, 'a', none] }}|{{ {'a': 1} }}|{{ nothing }}",
     "{}", "|True|1.0|0.1|1a||"},
    {"repr",
     "{{ [1, 'a', \"it's\", none, true, 1.5, (1, 2)]|string }}|{{ {'k': 'v', 1: none}|string }}",
     "{}", "[1, 'a', \"it's\", None, True, 1.5, (1, 2)]|{'k': 'v', 1: None}"},
    {"tojson",
     "{{ {'a': [1, 2.5, 'x\"\\n'], 'b': none}|tojson }}|{{ [1, {'k': true}]|tojson(indent=2) }}|{{ "
     "'\303\251\342\234\223\360\237\230\200'|tojson(ensure_ascii=true) }}|{{ [1, "
     "2]|tojson(separators=(',', ':')) }}",
     "{}",
     "{\"a\": [1, 2.5, \"x\\\"\\n\"], \"b\": null}|[\n  1,\n  {\n    \"k\": true\n  "
     "}\n]|\"\\u00e9\\u2713\\ud83d\\ude00\"|[1,2]"},
    {"string_filters",
     "{{ ' x '|trim }}|{{ 'ab'|upper }}|{{ 'AB'|lower }}|{{ 'hello world'|title }}|{{ "
     "'hELLO'|capitalize }}|{{ 'abc'|length }}|{{ 'aXa'|replace('X', '-') }}|{{ 'a,b'.split(',') "
     "}}|{{ 'xxaxx'.strip('x') }}",
     "{}", "x|AB|ab|Hello World|Hello|3|a-a|ab|a"},
    {"string_methods",
     "{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith('x') }}|{{ '{}-{}'.format(1, 'b') }}|{{ "
     "'42'|int + 1 }}|{{ '2.5'|float }}|{{ 'abcdef'[1:4] }}|{{ 'abc'[::-1] }}|{{ 'a\\nb'|indent(2) "
     "}}",
     "{}", "True|False|1-b|43|2.5|bcd|cba|a\n  b"},
    {"list_filters",
     "{{ [3, 1, 2]|sort }}|{{ [1, 2, 3]|first }}|{{ [1, 2, 3]|last }}|{{ ['a', 'b']|join(', ') "
     "}}|{{ [1, 2, 3]|reverse|list }}|{{ [3, 5, 1]|max }}|{{ [1, 2, 3][-1] }}|{{ [1, 2, 3][1:] }}",
     "{}", "123|1|3|a, b|321|5|3|23"},
    {"dict_filters",
     "{{ {'b': 1, 'a': 2}|dictsort }}|{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }};{% "
     "endfor %}|{{ {'a': 1}.get('b', 'd') }}|{{ {'a': 1}|length }}",
     "{}", "|x=1;y=2;|d|1"},
    {"select_map",
     "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join }}|{{ "
     "messages|rejectattr('role', 'equalto', 'system')|list|length }}|{{ "
     "messages|map(attribute='role')|join(',') }}",
     "{\"messages\":[{\"role\":\"system\",\"content\":\"Be "
     "brief.\"},{\"role\":\"user\",\"content\":\" Hi "
     "\"},{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":[{\"type\":\"function\","
     "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":\"x\"}}}]}],\"add_generation_"
     "prompt\":true,\"bos_token\":\"<s>\"}",
     " Hi |2|system,user,assistant"},
    {"default",
     "{{ nothing|default('d') }}|{{ none|default('n') }}|{{ ''|default('e', true) }}|{{ "
     "'v'|default('d') }}",
     "{}", "d|n|e|v"},
    {"tests",
     "{{ 1 is odd }}|{{ x is defined }}|{{ none is none }}|{{ 'a' is string }}|{{ {} is mapping "
     "}}|{{ 6 is divisibleby(3) }}|{{ 1 is number }}|{{ x is not defined }}",
     "{}", "True|False|True|True|True|True|True|True"},
    {"ws_blocks", "a\n  {% if true %}\n  b\n  {% endif %}\nc", "{}", "a\n  b\nc"},
    {"ws_dash", "a  {{- 'b' -}}  c\n  {%- if true -%}\n  d\n  {%- endif %}", "{}", "abcd"},
    {"ws_comment", "x{# c #}y\n{#- c -#}\n z", "{}", "yz"},
    {"ws_trailing_newline", "line\n", "{}", "line"},
    {"loop_vars",
     "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last "
     "}}{{ loop.length }}{{ loop.revindex }};{% endfor %}",
     "{}", "10TrueFalse33;21FalseFalse32;32FalseTrue31;"},
    {"loop_else_filter",
     "{% for x in [] %}x{% else %}none{% endfor %}|{% for x in range(6) if x is even %}{{ x }}{% "
     "endfor %}|{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
     "{}", "none|024|37"},
    {"loop_break_continue",
     "{% for x in range(10) %}{% if x == 4 %}{% break %}{% endif %}{% if x is odd %}{% continue "
     "%}{% endif %}{{ x }}{% endfor %}|{% for x in range(3) %}a{% if true %}b{% break %}{% endif "
     "%}{% endfor %}",
     "{}", "02|a"},
    {"scoping", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}",
     "{}", "241"},
    {"namespace",
     "{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% set "
     "ns.s = ns.s ~ m.role[0] %}{% endfor %}{{ ns.n }}{{ ns.s }}",
     "{\"messages\":[{\"role\":\"system\",\"content\":\"Be "
     "brief.\"},{\"role\":\"user\",\"content\":\" Hi "
     "\"},{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":[{\"type\":\"function\","
     "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":\"x\"}}}]}],\"add_generation_"
     "prompt\":true,\"bos_token\":\"<s>\"}",
     "3sua"},
    {"macros",
     "{% macro g(name, greet='Hello') %}{{ greet }}, {{ name }}!{% endmacro %}{{ g('Bob') }}|{{ "
     "g('Al', greet='Hi') }}|{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}in{% "
     "endcall %}|{% macro r(n) %}{% if n %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) "
     "}}",
     "{}", "Hello, Bob!|Hi, Al!|[in]|321"},
    {"set_block",
     "{% set t %}v={{ 1 }}{% endset %}{{ t }}|{% set a, b = [1, 2] %}{{ b }}{{ a }}|{% set l = [] "
     "%}{% set _ = l.append(3) %}{{ l|length }}",
     "{}", "v=1|21|1"},
    {"lazy_list", "{% set l = [1] %}{{ l }}{% set _ = l.append(2) %}", "{}", "12"},
    {"chat",
     "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content|trim }}{% if m.tool_calls "
     "%}{% for tc in m.tool_calls %}{{ tc.function.name }}{{ tc.function.arguments|tojson }}{% "
     "endfor %}{% endif %}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
     "{\"messages\":[{\"role\":\"system\",\"content\":\"Be "
     "brief.\"},{\"role\":\"user\",\"content\":\" Hi "
     "\"},{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":[{\"type\":\"function\","
     "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":\"x\"}}}]}],\"add_generation_"
     "prompt\":true,\"bos_token\":\"<s>\"}",
     "<s><|system|>Be brief.<|user|>Hi<|assistant|>Hellof{\"a\": 1, \"b\": \"x\"}<|assistant|>"},
    {"strftime", "{{ strftime_now('%Y-%m-%d') }}", "{}", "2025-01-01"},
    {"generation_noop", "{% generation %}g{% endgeneration %}", "{}", "g"},
};
static const struct err_case errors[] = {
    {"raise", "a{{ raise_exception('custom failure 42') }}", "custom failure 42"},
    {"undef_arith", "{{ nothing + 1 }}", "undefined"},
    {"unknown_filter", "{{ 1|frobnicate }}", "frobnicate"},
    {"string_lt", "{{ 'a' < 'b' }}", "Unknown operator"},
    {"break_outside", "{% break %}", "Break"},
    {"iterate_string", "{% for c in 'abc' %}{% endfor %}", "Expected iterable"},
    {"call_non_function", "{{ 'a'() }}", "not a function"},
};

/* Render tmpl with ctx (JSON text or NULL); returns rc, output in *out (caller frees). */
static int render(const char *tmpl, const char *ctx, const jinja_limits *lim, char **out, char *err,
                  size_t err_len) {
  json_t *c = NULL;
  if (ctx) {
    json_error_t je;
    c = json_loads(ctx, 0, &je);
    assert_non_null(c);
  }
  jinja_tmpl *t = jinja_parse(tmpl, strlen(tmpl), err, err_len);
  int rc = -1;
  *out = NULL;
  if (t) {
    size_t n;
    rc = jinja_render(t, c, lim, out, &n, err, err_len);
    if (rc == 0) assert_int_equal(strlen(*out), n);
    jinja_free(t);
  }
  json_decref(c);
  return rc;
}

static void test_table(void **state) {
  (void)state;
  setenv("SY_JINJA_NOW", "1735689600", 1);
  setenv("TZ", "UTC", 1);
  tzset();
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512], *out;
    int rc = render(cases[i].tmpl, cases[i].ctx, NULL, &out, err, sizeof(err));
    if (rc != 0 || strcmp(out, cases[i].want) != 0)
      fail_msg("case %s: rc=%d err=%s\n got: [%s]\nwant: [%s]", cases[i].name, rc, err,
               out ? out : "", cases[i].want);
    free(out);
  }
}

static void test_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
    char err[512], *out;
    int rc = render(errors[i].tmpl, "{}", NULL, &out, err, sizeof(err));
    if (rc != -1 || out != NULL || !strstr(err, errors[i].frag))
      fail_msg("case %s: rc=%d err=%s (want it to mention %s)", errors[i].name, rc, err,
               errors[i].frag);
    assert_null(strchr(err, '\n'));
  }
}

static void test_raise_exception_message(void **state) {
  (void)state;
  char err[512], *out;
  assert_int_equal(render("{% if true %}{{ raise_exception('Only user and assistant roles') }}"
                          "{% endif %}",
                          NULL, NULL, &out, err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "Only user and assistant roles"));
  assert_non_null(strstr(err, "1:"));
}

static void expect_limit(const char *tmpl, const jinja_limits *lim, const char *frag) {
  char err[512], *out;
  int rc = render(tmpl, "{}", lim, &out, err, sizeof(err));
  if (rc != -1 || out != NULL || (frag && !strstr(err, frag)))
    fail_msg("%s: rc=%d err=%s (want %s)", tmpl, rc, err, frag ? frag : "an error");
}

static void test_limits(void **state) {
  (void)state;
  /* unbounded macro recursion */
  expect_limit("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL, "recursion");
  /* ** is not an operator in llama.cpp's engine: a parse error */
  expect_limit("{% for i in range(10**9) %}x{% endfor %}", NULL, NULL);
  /* a billion iterations: the step budget stops it early */
  jinja_limits small = {.max_steps = 100000};
  expect_limit("{% for i in range(1000000000) %}x{% endfor %}", &small, "steps");
  expect_limit("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
               &small, "steps");
  /* memory runs out before the default step budget */
  jinja_limits mem = {.max_memory = 8 << 20};
  expect_limit("{% for i in range(1000000000) %}x{% endfor %}", &mem, "memory");
  /* huge output, by repetition or by doubling */
  expect_limit("{{ 'x' * 1000000000 }}", NULL, "longer than");
  jinja_limits out1k = {.max_output = 1024};
  expect_limit("{% for i in range(2000) %}x{% endfor %}", &out1k, "longer than");
  expect_limit(
      "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}"
      "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      NULL, "longer than");
  expect_limit(
      "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
      "{% set ns.l = ns.l + ns.l + [i] %}{% endfor %}",
      NULL, NULL);
  /* a list that contains itself cannot be printed or serialized */
  expect_limit("{% set l = [1] %}{% set _ = l.append(l) %}{{ l }}", NULL, "deeply");
  expect_limit("{% set l = [1] %}{% set _ = l.append(l) %}{{ l|tojson }}", NULL, "deeply");
  expect_limit("{% set l = [1] %}{% set _ = l.append(l) %}{{ l|string }}", NULL, "deeply");
  /* a small depth limit is honoured */
  jinja_limits shallow = {.max_depth = 8};
  expect_limit("{{ [[[[[[[[[[1]]]]]]]]]] }}", &shallow, "recursion");

  /* within limits the same shapes render */
  char err[256], *out;
  assert_int_equal(
      render("{% for i in range(1000) %}{% endfor %}ok", "{}", &small, &out, err, sizeof(err)), 0);
  assert_string_equal(out, "ok");
  free(out);
}

static void expect_parse_error(const char *tmpl, const char *frag) {
  char err[512];
  jinja_tmpl *t = jinja_parse(tmpl, strlen(tmpl), err, sizeof(err));
  if (t) {
    jinja_free(t);
    fail_msg("%s: parsed", tmpl);
  }
  /* err names line:col */
  int line, col;
  if (sscanf(err, "jinja: %d:%d:", &line, &col) != 2)
    fail_msg("%s: message without line:col: %s", tmpl, err);
  if (frag && !strstr(err, frag)) fail_msg("%s: %s (want %s)", tmpl, err, frag);
}

static void test_malformed(void **state) {
  (void)state;
  expect_parse_error("{% if x %}abc", NULL);
  expect_parse_error("{% for x in y %}abc", NULL);
  expect_parse_error("{{ x ", NULL);
  expect_parse_error("{{ x }", NULL);
  expect_parse_error("{% if %}", NULL);
  expect_parse_error("{{ 'abc }}", "end of input");
  expect_parse_error("{{ 'a\\q' }}", "escape");
  expect_parse_error("{# never closed", "comment");
  expect_parse_error("{% raw %}x{% endraw %}", "Unknown statement");
  expect_parse_error("{% endfor %}", "Unknown statement");
  expect_parse_error("{{ 1 + }}", NULL);
  expect_parse_error("{{ (1, }}", NULL);
  expect_parse_error("{{ [1, 2 }}", NULL);
  expect_parse_error("{{ {'a' 1} }}", NULL);
  expect_parse_error("{{ 1 if true else -1 }}", NULL);
  expect_parse_error("{{ x | }}", NULL);
  expect_parse_error("{{ @ }}", "unexpected character");
  expect_parse_error("{% set %}", NULL);
  expect_parse_error("{% macro %}", NULL);
  expect_parse_error("{% call x %}{% endcall %}", NULL);
  expect_parse_error("{{ 99999999999999999999 }}", NULL);
  expect_parse_error("{% if a %}{% elif b %}{% else %}", NULL);
  expect_parse_error("hello\n  {{ ) }}", "2:");
  /* deep nesting is refused, not a stack overflow */
  char deep[20000];
  size_t n = 0;
  n += (size_t)sprintf(deep + n, "{{ ");
  for (int i = 0; i < 5000; i++) deep[n++] = '(';
  deep[n++] = '1';
  for (int i = 0; i < 5000; i++) deep[n++] = ')';
  n += (size_t)sprintf(deep + n, " }}");
  deep[n] = '\0';
  expect_parse_error(deep, "deeply");
  char ifs[40000] = "";
  for (int i = 0; i < 2000; i++) strcat(ifs, "{% if 1 %}");
  expect_parse_error(ifs, NULL);
}

static void test_api_edges(void **state) {
  (void)state;
  char err[256], *out = (char *)1;
  size_t n;
  /* empty template, NULL context */
  jinja_tmpl *t = jinja_parse("", 0, err, sizeof(err));
  assert_non_null(t);
  assert_int_equal(jinja_render(t, NULL, NULL, &out, &n, err, sizeof(err)), 0);
  assert_string_equal(out, "");
  assert_int_equal(n, 0);
  free(out);
  jinja_free(t);
  /* a context that is not an object */
  t = jinja_parse("x", 1, err, sizeof(err));
  json_t *arr = json_array();
  assert_int_equal(jinja_render(t, arr, NULL, &out, &n, err, sizeof(err)), -1);
  assert_null(out);
  json_decref(arr);
  /* NUL bytes in the template are text */
  jinja_free(t);
  t = jinja_parse("a\0b", 3, err, sizeof(err));
  assert_non_null(t);
  assert_int_equal(jinja_render(t, NULL, NULL, &out, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(out, "a\0b", 3);
  free(out);
  jinja_free(t);
  jinja_free(NULL);
  /* CRLF normalised, one trailing newline dropped */
  assert_int_equal(render("a\r\nb\r\n", NULL, NULL, &out, err, sizeof(err)), 0);
  assert_string_equal(out, "a\nb");
  free(out);
  /* a tiny error buffer is fine */
  assert_int_equal(render("{{ nothing + 1 }}", NULL, NULL, &out, err, 4), -1);
  assert_true(strlen(err) < 4);
  /* a template renders many times, with different contexts */
  t = jinja_parse("{{ x }}", 7, err, sizeof(err));
  for (int i = 0; i < 3; i++) {
    json_t *c = json_pack("{s:i}", "x", i);
    assert_int_equal(jinja_render(t, c, NULL, &out, &n, err, sizeof(err)), 0);
    assert_int_equal(out[0], '0' + i);
    free(out);
    json_decref(c);
  }
  jinja_free(t);
}

/* capitalize/title work per string part, as llama.cpp keeps concatenations in parts */
static void test_string_parts(void **state) {
  (void)state;
  char err[256], *out;
  assert_int_equal(render("{{ ('hello' ~ 'world')|capitalize }}|{{ ('ab' ~ 'cd')|title }}|"
                          "{% set b %}{{ 'ab' }}{{ 'cd' }}{% endset %}{{ b|capitalize }}|"
                          "{{ 'hello world'|capitalize }}",
                          NULL, NULL, &out, err, sizeof(err)),
                   0);
  assert_string_equal(out, "HelloWorld|AbCd|AbCd|Hello world");
  free(out);
}

static const char *chatml =
    "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0].role == 'system' %}"
    "{{- messages[0].content + '\\n\\n' }}{%- endif %}{{- '# Tools\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools><|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if message.role == 'assistant' and message.tool_calls %}"
    "{{- '<|im_start|>assistant\\n' + (message.content or '') }}"
    "{%- for tc in message.tool_calls %}{%- set f = tc.function %}"
    "{{- '\\n<tool_call>\\n{\"name\": \"' }}{{- f.name }}{{- '\", \"arguments\": ' }}"
    "{{- f.arguments | tojson }}{{- '}\\n</tool_call>' }}{%- endfor %}{{- '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}";

static void test_chatml_tools(void **state) {
  (void)state;
  char err[256], *out;
  const char *ctx =
      "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U\"}"
      ","
      "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"arguments\":{\"q\":\"x\",\"n\":2}}}]},"
      "{\"role\":\"tool\",\"content\":\"R\"}],\"tools\":[{\"type\":\"function\",\"function\":"
      "{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],\"add_generation_prompt\":true}";
  assert_int_equal(render(chatml, ctx, NULL, &out, err, sizeof(err)), 0);
  assert_string_equal(out,
                      "<|im_start|>system\nS\n\n# Tools\n<tools>\n{\"type\": \"function\", "
                      "\"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}\n"
                      "</tools><|im_end|>\n<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU"
                      "<|im_end|>\n<|im_start|>assistant\n\n<tool_call>\n{\"name\": \"f\", "
                      "\"arguments\": {\"q\": \"x\", \"n\": 2}}\n</tool_call><|im_end|>\n"
                      "<|im_start|>tool\nR<|im_end|>\n<|im_start|>assistant\n");
  free(out);
}

/* byte mutations of a real template: every outcome is a clean result or a clean error */
static void test_fuzz(void **state) {
  (void)state;
  const char *ctx =
      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
      "\"content\":\"yo\",\"tool_calls\":[{\"function\":{\"name\":\"f\","
      "\"arguments\":{\"a\":1}}}]}],\"tools\":[{\"function\":{\"name\":\"f\"}}],"
      "\"add_generation_prompt\":true}";
  json_error_t je;
  json_t *c = json_loads(ctx, 0, &je);
  assert_non_null(c);
  size_t len = strlen(chatml);
  char *buf = malloc(len + 1);
  static const char alphabet[] = "{}%#-()[]|.,:'\"~+*/ \nabxz0129=<>!";
  unsigned seed = 12345;
  jinja_limits lim = {.max_steps = 200000, .max_output = 1 << 20, .max_memory = 16 << 20};
  int ok = 0, bad = 0;
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(buf, chatml, len + 1);
    int muts = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
    for (int m = 0; m < muts; m++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = (seed >> 8) % len;
      seed = seed * 1103515245u + 12345u;
      buf[at] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
    }
    char err[256];
    jinja_tmpl *t = jinja_parse(buf, len, err, sizeof(err));
    if (!t) {
      bad++;
      continue;
    }
    char *out;
    size_t n;
    if (jinja_render(t, c, &lim, &out, &n, err, sizeof(err)) == 0) {
      ok++;
      free(out);
    } else {
      bad++;
    }
    jinja_free(t);
  }
  assert_true(ok > 0 && bad > 0);
  free(buf);
  json_decref(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_raise_exception_message),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_api_edges),
      cmocka_unit_test(test_string_parts),
      cmocka_unit_test(test_chatml_tools),
      cmocka_unit_test(test_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
