/* test_json_schema.c — unit tests for src/chat/json_schema.h (JSON Schema → GBNF) and the GBNF
 * builder (gbnf.h). These check the grammar text and the errors; tests/grammar/check.c runs the
 * grammars through llama.cpp's sampler against real documents.
 *
 * Covers: primitives, required/optional property order, additionalProperties, enum/const
 * literals and escaping, string bounds and formats, integer ranges, arrays (bounds, tuples),
 * anyOf/oneOf/allOf, $ref (recursive, left-recursive refused), nullable and type arrays, patterns
 * (supported subset and refusals), unsupported keywords, hostile inputs (deep nesting, ref
 * cycles, huge enums, big repetition budgets), the json_object grammar, the tool-call grammars
 * for each format and their errors, and rule naming in the builder. */
#include <stdlib.h>
#include <string.h>

#include "gbnf.h"
#include "json_schema.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

static char err[256];

/* Grammar for a schema given as JSON text; NULL (and err set) on error. */
static char *gbnf(const char *schema) {
  json_error_t je;
  json_t *s = json_loads(schema, JSON_DECODE_ANY, &je);
  assert_non_null(s);
  char *out = (char *)0x1;
  int rc = sy_schema_to_gbnf(s, &out, err, sizeof err);
  json_decref(s);
  if (rc != 0) {
    assert_null(out);
    assert_true(err[0] != '\0');
    return NULL;
  }
  assert_non_null(out);
  return out;
}

/* The body of rule name in grammar g ("" when absent); static buffer. */
static const char *rule(const char *g, const char *name) {
  static char body[8192];
  size_t n = strlen(name);
  for (const char *p = g; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (strncmp(p, name, n) == 0 && strncmp(p + n, " ::= ", 5) == 0) {
      const char *b = p + n + 5, *e = strchr(b, '\n');
      size_t len = e ? (size_t)(e - b) : strlen(b);
      if (len >= sizeof body) len = sizeof body - 1;
      memcpy(body, b, len);
      body[len] = '\0';
      return body;
    }
  }
  return "";
}

static void expect_error(const char *schema, const char *needle) {
  char *g = gbnf(schema);
  if (g) fail_msg("expected an error for %s, got:\n%s", schema, g);
  if (!strstr(err, needle)) fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_primitives(void **state) {
  (void)state;
  char *g = gbnf("{\"type\": \"string\"}");
  assert_string_equal(rule(g, "root"), "string");
  assert_string_equal(rule(g, "string"), "\"\\\"\" char* \"\\\"\" space");
  assert_string_equal(rule(g, "space"), "| \" \" | \"\\n\" [ \\t]{0,20}");
  assert_string_equal(strstr(g, "root ::= "), g); /* root first */
  free(g);
  g = gbnf("{\"type\": \"boolean\"}");
  assert_string_equal(rule(g, "boolean"), "(\"true\" | \"false\") space");
  free(g);
  g = gbnf("true");
  assert_string_equal(rule(g, "root"), "value");
  assert_non_null(strstr(rule(g, "value"), "object | array | string | number"));
  free(g);
  g = gbnf("{}");
  assert_string_equal(rule(g, "root"), "value");
  free(g);
  g = gbnf("{\"type\": \"number\", \"minimum\": 0}");
  assert_string_equal(rule(g, "root"), "unsigned-number");
  free(g);
  g = gbnf("{\"type\": \"integer\"}");
  assert_string_equal(rule(g, "integer"), "\"-\"? integral-part space");
  free(g);
}

static void test_object_order(void **state) {
  (void)state;
  char *g = gbnf(
      "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}, "
      "\"b\": {\"type\": \"string\"}, \"c\": {\"type\": \"boolean\"}}, "
      "\"required\": [\"c\", \"a\"]}");
  /* required ones first in schema order (a, c), then optional b */
  assert_string_equal(rule(g, "root"),
                      "\"{\" space root-a-kv \",\" space root-c-kv root-rest "
                      "\"}\" space");
  assert_string_equal(rule(g, "root-rest"), "(\",\" space root-b-kv)?");
  assert_string_equal(rule(g, "root-a-kv"), "\"\\\"a\\\"\" space \":\" space root-a");
  free(g);
  /* no required: the first present pair has no comma */
  g = gbnf("{\"properties\": {\"x\": {}, \"y\": {}}}");
  assert_string_equal(rule(g, "root"), "\"{\" space root-first1? \"}\" space");
  assert_string_equal(rule(g, "root-first1"), "root-x-kv root-rest | root-first");
  assert_string_equal(rule(g, "root-first"), "root-y-kv");
  free(g);
  /* properties {} and no additionalProperties: the empty object */
  g = gbnf("{\"type\": \"object\", \"properties\": {}}");
  assert_string_equal(rule(g, "root"), "\"{\" space \"}\" space");
  free(g);
  g = gbnf("{\"type\": \"object\"}");
  assert_string_equal(rule(g, "root"), "object");
  free(g);
}

static void test_additional_properties(void **state) {
  (void)state;
  char *g = gbnf(
      "{\"properties\": {\"id\": {\"type\": \"integer\"}}, \"required\": [\"id\"], "
      "\"additionalProperties\": {\"type\": \"string\"}}");
  assert_string_equal(rule(g, "root-additional-kv"), "root-key \":\" space root-additional");
  /* the key may not be "id" */
  assert_non_null(strstr(rule(g, "root-key"), "\"i\" (\"d\" ("));
  assert_string_equal(rule(g, "root-rest"), "(\",\" space root-additional-kv)*");
  free(g);
  g = gbnf("{\"type\": \"object\", \"additionalProperties\": false}");
  assert_string_equal(rule(g, "root"), "\"{\" space \"}\" space");
  free(g);
  g = gbnf("{\"type\": \"object\", \"additionalProperties\": {\"type\": \"integer\"}}");
  assert_string_equal(rule(g, "root-additional-kv"), "string \":\" space root-additional");
  assert_string_equal(rule(g, "root-additional"), "integer");
  free(g);
}

static void test_enum_const(void **state) {
  (void)state;
  char *g = gbnf("{\"enum\": [\"a\\\"b\", 1, null, {\"k\": [true]}]}");
  assert_string_equal(rule(g, "root"),
                      "(\"\\\"a\\\\\\\"b\\\"\" | \"1\" | \"null\" | \"{\\\"k\\\":[true]}\") space");
  free(g);
  g = gbnf("{\"const\": \"x\\ny\"}");
  assert_string_equal(rule(g, "root"), "\"\\\"x\\\\ny\\\"\" space");
  free(g);
  expect_error("{\"enum\": []}", "non-empty");
}

static void test_strings(void **state) {
  (void)state;
  char *g = gbnf("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 5}");
  assert_string_equal(rule(g, "root"), "\"\\\"\" root-chars \"\\\"\" space");
  assert_string_equal(rule(g, "root-chars"), "char{2,5}");
  free(g);
  g = gbnf("{\"type\": \"string\", \"minLength\": 3}");
  assert_string_equal(rule(g, "root-chars"), "char{3,}");
  free(g);
  /* maxLength above the cap is dropped (documented relaxation) */
  g = gbnf("{\"type\": \"string\", \"maxLength\": 100000}");
  assert_string_equal(rule(g, "root"), "string");
  free(g);
  g = gbnf("{\"type\": \"string\", \"format\": \"date-time\"}");
  assert_string_equal(rule(g, "root"), "\"\\\"\" date-time \"\\\"\" space");
  assert_string_equal(rule(g, "date-time"), "date \"T\" time");
  free(g);
  g = gbnf("{\"type\": \"string\", \"format\": \"uuid\"}");
  assert_string_equal(rule(g, "uuid"),
                      "hex4 hex4 \"-\" hex4 \"-\" hex4 \"-\" hex4 \"-\" hex4 hex4 hex4");
  free(g);
  g = gbnf("{\"type\": \"string\", \"format\": \"email\"}"); /* annotation only */
  assert_string_equal(rule(g, "root"), "string");
  free(g);
  expect_error("{\"type\": \"string\", \"minLength\": 5000}", "minLength");
  expect_error("{\"type\": \"string\", \"minLength\": -1}", "non-negative");
  expect_error("{\"type\": \"string\", \"minLength\": 3, \"maxLength\": 2}", "greater");
}

static void test_integer_ranges(void **state) {
  (void)state;
  char *g = gbnf("{\"type\": \"integer\", \"minimum\": 0, \"maximum\": 150}");
  assert_string_equal(rule(g, "root"),
                      "(([0-9]) | ([1-9] [0-9]{1}) | (\"1\" ([0-4] [0-9]{1} | "
                      "\"5\" ([0-0])))) space");
  free(g);
  g = gbnf("{\"type\": \"integer\", \"minimum\": -3, \"maximum\": -1}");
  assert_string_equal(rule(g, "root"), "(\"-\" (([1-3]))) space");
  free(g);
  g = gbnf("{\"type\": \"integer\", \"exclusiveMinimum\": 9}");
  assert_string_equal(rule(g, "root"), "(([1-9] [0-9]{1}) | [1-9] [0-9]{2,15}) space");
  free(g);
  g = gbnf("{\"type\": \"integer\", \"maximum\": 0}");
  assert_string_equal(rule(g, "root"), "(([0-0]) | \"-\" (([1-9]) | [1-9] [0-9]{1,15})) space");
  free(g);
  expect_error("{\"type\": \"integer\", \"minimum\": 3, \"maximum\": 2}", "no integer");
  expect_error("{\"type\": \"integer\", \"minimum\": \"3\"}", "number");
}

static void test_arrays(void **state) {
  (void)state;
  char *g = gbnf("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}}");
  assert_string_equal(rule(g, "root"),
                      "\"[\" space (root-item (\",\" space root-item)*)? \"]\" space");
  free(g);
  g = gbnf(
      "{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"minItems\": 2, "
      "\"maxItems\": 4}");
  assert_string_equal(rule(g, "root"), "\"[\" space root-item root-rest \"]\" space");
  assert_string_equal(rule(g, "root-rest"), "(\",\" space root-item){1,3}");
  free(g);
  g = gbnf("{\"type\": \"array\", \"maxItems\": 0}");
  assert_string_equal(rule(g, "root"), "\"[\" space \"]\" space");
  free(g);
  g = gbnf(
      "{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"}, "
      "{\"type\": \"integer\"}]}");
  assert_string_equal(rule(g, "root"), "\"[\" space root-0 \",\" space root-1 \"]\" space");
  free(g);
  g = gbnf(
      "{\"type\": \"array\", \"items\": [{\"type\": \"string\"}], \"additionalItems\": "
      "{\"type\": \"null\"}}");
  assert_string_equal(rule(g, "root"), "\"[\" space root-0 (\",\" space root-item)* \"]\" space");
  free(g);
  expect_error("{\"type\": \"array\", \"uniqueItems\": true}", "uniqueItems");
  expect_error("{\"type\": \"array\", \"minItems\": 1001}", "minItems");
}

static void test_combinators(void **state) {
  (void)state;
  char *g = gbnf("{\"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"string\"}]}");
  assert_string_equal(rule(g, "root"), "root-0 | root-1");
  free(g);
  g = gbnf("{\"oneOf\": [{\"type\": \"null\"}, {\"const\": 1}]}");
  assert_string_equal(rule(g, "root"), "root-0 | root-1");
  free(g);
  /* keywords beside anyOf are merged into each alternative */
  g = gbnf(
      "{\"type\": \"object\", \"properties\": {\"a\": {}, \"b\": {}}, \"anyOf\": "
      "[{\"required\": [\"a\"]}, {\"required\": [\"b\"]}]}");
  assert_non_null(strstr(rule(g, "root-0"), "root-0-a-kv"));
  assert_non_null(strstr(rule(g, "root-1"), "b-kv"));
  assert_null(strstr(rule(g, "root-1"), "a-kv root"));
  free(g);
  g = gbnf(
      "{\"allOf\": [{\"type\": \"object\", \"properties\": {\"a\": {\"type\": "
      "\"integer\"}}, \"required\": [\"a\"]}, {\"properties\": {\"b\": {\"type\": "
      "\"string\"}}, \"required\": [\"b\"]}]}");
  assert_string_equal(rule(g, "root"), "\"{\" space root-a-kv \",\" space root-b-kv \"}\" space");
  free(g);
  g = gbnf(
      "{\"allOf\": [{\"type\": \"number\"}, {\"type\": \"integer\", \"minimum\": 1}, "
      "{\"minimum\": 5}]}");
  assert_string_equal(rule(g, "root"), "(([5-9]) | [1-9] [0-9]{1,15}) space");
  free(g);
  g = gbnf("{\"type\": [\"string\", \"null\"]}");
  assert_string_equal(rule(g, "root"), "root-string | root-null");
  free(g);
  g = gbnf("{\"type\": \"integer\", \"nullable\": true}");
  assert_string_equal(rule(g, "root"), "root-nonnull | null");
  free(g);
  expect_error("{\"allOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}",
               "nothing in common");
  expect_error("{\"allOf\": [{\"const\": 1}, {\"const\": 2}]}", "conflicting");
  expect_error("{\"anyOf\": []}", "non-empty");
  expect_error("{\"anyOf\": [{}], \"oneOf\": [{}]}", "oneOf");
}

static void test_refs(void **state) {
  (void)state;
  char *g = gbnf(
      "{\"$ref\": \"#/$defs/node\", \"$defs\": {\"node\": {\"type\": \"object\", "
      "\"properties\": {\"kids\": {\"type\": \"array\", \"items\": {\"$ref\": "
      "\"#/$defs/node\"}}}}}}");
  assert_string_equal(rule(g, "root"), "ref-node");
  assert_string_equal(rule(g, "ref-node-kids-item"), "ref-node");
  free(g);
  g = gbnf(
      "{\"properties\": {\"p\": {\"$ref\": \"#/definitions/a~1b\"}}, \"required\": [\"p\"], "
      "\"definitions\": {\"a/b\": {\"type\": \"integer\"}}}");
  assert_string_equal(rule(g, "ref-a~1b"), "");
  assert_string_equal(rule(g, "ref-a-1b"), "integer");
  free(g);
  /* allOf over a $ref, with annotations beside the $ref */
  g = gbnf(
      "{\"allOf\": [{\"$ref\": \"#/$defs/a\", \"description\": \"d\"}, {\"required\": "
      "[\"x\"]}], \"$defs\": {\"a\": {\"properties\": {\"x\": {\"type\": \"null\"}}}}}");
  assert_string_equal(rule(g, "root"), "\"{\" space root-x-kv \"}\" space");
  free(g);
  expect_error("{\"$ref\": \"#/$defs/a\", \"$defs\": {\"a\": {\"$ref\": \"#/$defs/a\"}}}",
               "refers to itself");
  expect_error(
      "{\"$ref\": \"#/$defs/a\", \"$defs\": {\"a\": {\"anyOf\": [{\"$ref\": "
      "\"#/$defs/b\"}, {\"type\": \"null\"}]}, \"b\": {\"$ref\": \"#/$defs/a\"}}}",
      "refers to itself");
  expect_error(
      "{\"$ref\": \"#/$defs/a\", \"$defs\": {\"a\": {\"allOf\": [{\"$ref\": "
      "\"#/$defs/a\"}]}}}",
      "");
  expect_error("{\"$ref\": \"#/$defs/missing\"}", "unresolvable");
  expect_error("{\"$ref\": \"https://example.com/s.json\"}", "local");
  expect_error("{\"$ref\": \"#/$defs/a\", \"type\": \"string\", \"$defs\": {\"a\": {}}}",
               "sibling");
}

static void test_patterns(void **state) {
  (void)state;
  char *g = gbnf("{\"type\": \"string\", \"pattern\": \"^[a-z_]+\\\\d{2}(x|y)?$\"}");
  assert_string_equal(rule(g, "root"),
                      "\"\\\"\" ([a-z\\x5F]+ root-rep (\"x\" | \"y\")?) \"\\\"\" space");
  free(g);
  g = gbnf("{\"type\": \"string\", \"pattern\": \"^\\\"\\\\\\\\.$\"}");
  assert_string_equal(rule(g, "root"), "\"\\\"\" (\"\\\\\\\"\" \"\\\\\\\\\" pchar) \"\\\"\" space");
  free(g);
  /* unanchored: anything around the match */
  g = gbnf("{\"type\": \"string\", \"pattern\": \"ab\"}");
  assert_string_equal(rule(g, "root"), "\"\\\"\" char* (\"a\" \"b\") char* \"\\\"\" space");
  free(g);
  expect_error("{\"type\": \"string\", \"pattern\": \"(a*)*\"}", "empty string");
  expect_error("{\"type\": \"string\", \"pattern\": \"(?!a)\"}", "lookaround");
  expect_error("{\"type\": \"string\", \"pattern\": \"(a)\\\\1\"}", "unsupported escape");
  expect_error("{\"type\": \"string\", \"pattern\": \"a{2000}\"}", "too large");
  expect_error("{\"type\": \"string\", \"pattern\": \"[b-a]\"}", "bad range");
  expect_error("{\"type\": \"string\", \"pattern\": \"(a\"}", "missing ')'");
  expect_error("{\"type\": \"string\", \"pattern\": \"a)\"}", "unbalanced");
  expect_error("{\"type\": \"string\", \"pattern\": \"*a\"}", "nothing to repeat");
  expect_error("{\"type\": \"string\", \"pattern\": \"a^b\"}", "anchors");
  expect_error("{\"type\": \"string\", \"pattern\": \"^a$\", \"maxLength\": 3}", "pattern");
}

static void test_unsupported_and_invalid(void **state) {
  (void)state;
  expect_error("{\"not\": {\"type\": \"string\"}}", "'not'");
  expect_error("{\"type\": \"object\", \"patternProperties\": {}}", "patternProperties");
  expect_error("{\"if\": {}, \"then\": {}}", "'if'");
  expect_error("{\"type\": \"number\", \"multipleOf\": 2}", "multipleOf");
  expect_error("{\"type\": \"strin\"}", "unknown type");
  expect_error("{\"type\": 5}", "type");
  expect_error("false", "matches nothing");
  expect_error("42", "object or a boolean");
  expect_error("{\"properties\": []}", "properties");
  expect_error("{\"required\": [1]}", "strings");
  /* harmless keywords are ignored */
  char *g = gbnf(
      "{\"type\": \"string\", \"title\": \"t\", \"description\": \"d\", \"x-vendor\": "
      "1, \"examples\": [\"a\"], \"default\": \"a\", \"minProperties\": 0}");
  assert_string_equal(rule(g, "root"), "string");
  free(g);
}

static void test_hostile(void **state) {
  (void)state;
  /* deep nesting */
  size_t depth = 1000;
  char *deep = malloc(depth * 12 + 16);
  char *p = deep;
  for (size_t i = 0; i < depth; i++) p += sprintf(p, "{\"items\":");
  p += sprintf(p, "{}");
  for (size_t i = 0; i < depth; i++) *p++ = '}';
  *p = '\0';
  expect_error(deep, "too deeply");
  free(deep);
  /* a huge enum */
  json_t *s = json_object(), *e = json_array();
  for (int i = 0; i < 5000; i++) json_array_append_new(e, json_integer(i));
  json_object_set_new(s, "enum", e);
  char *out = NULL;
  assert_int_equal(sy_schema_to_gbnf(s, &out, err, sizeof err), -1);
  assert_null(out);
  assert_non_null(strstr(err, "enum too large"));
  json_decref(s);
  /* exponential allOf over $refs is cut by the work bound */
  s = json_object();
  json_t *defs = json_object();
  for (int i = 0; i < 40; i++) {
    char a[32], b[32];
    snprintf(a, sizeof a, "a%d", i);
    snprintf(b, sizeof b, "#/$defs/a%d", i + 1);
    json_object_set_new(defs, a, json_pack("{s:[{s:s},{s:s}]}", "allOf", "$ref", b, "$ref", b));
  }
  json_object_set_new(defs, "a40", json_pack("{s:s}", "type", "string"));
  json_object_set_new(s, "$defs", defs);
  json_object_set_new(s, "$ref", json_string("#/$defs/a0"));
  assert_int_equal(sy_schema_to_gbnf(s, &out, err, sizeof err), -1);
  json_decref(s);
  /* many long bounded strings: identical bounds cost once, distinct ones hit the budget */
  s = json_object();
  json_t *props = json_object();
  for (int i = 0; i < 300; i++) {
    char k[16];
    snprintf(k, sizeof k, "p%d", i);
    json_object_set_new(props, k, json_pack("{s:s,s:i}", "type", "string", "maxLength", 999));
  }
  json_object_set_new(s, "properties", props);
  assert_int_equal(sy_schema_to_gbnf(s, &out, err, sizeof err), 0);
  free(out);
  for (int i = 0; i < 300; i++) {
    char k[16];
    snprintf(k, sizeof k, "p%d", i);
    json_object_set_new(props, k, json_pack("{s:s,s:i}", "type", "string", "maxLength", 700 + i));
  }
  assert_int_equal(sy_schema_to_gbnf(s, &out, err, sizeof err), -1);
  assert_non_null(strstr(err, "bounds add up"));
  json_decref(s);
  /* a grammar past the size bound */
  s = json_object();
  props = json_object();
  for (int i = 0; i < 1000; i++) {
    char k[300];
    memset(k, 'k', 250);
    snprintf(k + 250, sizeof k - 250, "%d", i);
    json_object_set_new(props, k, json_pack("{s:s}", "type", "integer"));
  }
  json_object_set_new(s, "properties", props);
  json_object_set_new(s, "additionalProperties", json_true());
  int rc = sy_schema_to_gbnf(s, &out, err, sizeof err);
  if (rc == 0) free(out);
  json_decref(s);
}

static void test_json_object(void **state) {
  (void)state;
  const char *g = sy_gbnf_json_object();
  assert_string_equal(rule(g, "root"), "object");
  assert_true(rule(g, "value")[0] != '\0');
  assert_true(rule(g, "space")[0] != '\0');
}

static const char TOOLS[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": "
    "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"n\": {\"type\": "
    "\"integer\"}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": "
    "{\"name\": \"now\"}}]";

static char *tools_gbnf(const char *tools, const char *only, const char *format, bool parallel) {
  json_t *t = json_loads(tools, 0, NULL);
  assert_non_null(t);
  char *out = NULL;
  int rc = sy_gbnf_tool_calls(t, only, format, parallel, &out, err, sizeof err);
  json_decref(t);
  if (rc) {
    assert_null(out);
    return NULL;
  }
  return out;
}

static void test_tool_calls(void **state) {
  (void)state;
  char *g = tools_gbnf(TOOLS, NULL, "hermes", false);
  assert_non_null(g);
  assert_string_equal(rule(g, "root"), "tool-call");
  assert_string_equal(rule(g, "tool-call"), "\"<tool_call>\" space call \"</tool_call>\"");
  assert_string_equal(rule(g, "call"), "tool0 | tool1");
  assert_non_null(strstr(rule(g, "tool0"), "\"\\\"get_weather\\\"\""));
  assert_non_null(strstr(rule(g, "tool0"), "\"\\\"arguments\\\"\" space \":\" space tool0-args"));
  assert_string_equal(rule(g, "tool1-args"), "\"{\" space \"}\" space");
  free(g);
  g = tools_gbnf(TOOLS, "now", "hermes", true);
  assert_string_equal(rule(g, "call"), "tool1");
  assert_string_equal(rule(g, "root"), "tool-call (space tool-call)*");
  free(g);
  g = tools_gbnf(TOOLS, NULL, "llama3", false);
  assert_non_null(strstr(rule(g, "tool0"), "parameters"));
  free(g);
  g = tools_gbnf(TOOLS, NULL, "mistral", true);
  assert_string_equal(rule(g, "root"),
                      "\"[TOOL_CALLS]\" space \"[\" space call (\",\" space call)* \"]\"");
  free(g);
  g = tools_gbnf(TOOLS, "get_weather", "qwen3_coder", false);
  assert_string_equal(rule(g, "root"), "tool-call");
  assert_string_equal(rule(g, "tool-call"), "\"<tool_call>\\n\" call \"\\n</tool_call>\"");
  assert_string_equal(rule(g, "tool0"),
                      "\"<function=get_weather>\\n\" tool0-city-param "
                      "tool0-n-param? \"</function>\"");
  assert_string_equal(rule(g, "tool0-city-param"),
                      "\"<parameter=city>\\n\" xml-text-0 \"\\n</parameter>\\n\"");
  free(g);
  /* errors */
  assert_null(tools_gbnf(TOOLS, "missing", "hermes", false));
  assert_non_null(strstr(err, "no function named 'missing'"));
  assert_null(tools_gbnf(TOOLS, NULL, "chatml", false));
  assert_non_null(strstr(err, "unknown tool call format"));
  assert_null(tools_gbnf("[]", NULL, "hermes", false));
  assert_non_null(strstr(err, "no functions"));
  assert_null(tools_gbnf("{}", NULL, "hermes", false));
  assert_null(tools_gbnf("[{\"type\": \"function\", \"function\": {}}]", NULL, "hermes", false));
  assert_non_null(strstr(err, "name"));
  assert_null(
      tools_gbnf("[{\"type\": \"function\", \"function\": {\"name\": \"f\", "
                 "\"parameters\": {\"not\": {}}}}]",
                 NULL, "hermes", false));
  assert_non_null(strstr(err, "tool 'f'"));
  assert_non_null(strstr(err, "'not'"));
  /* $refs resolve inside each tool's own parameters */
  g = tools_gbnf(
      "[{\"function\": {\"name\": \"a\", \"parameters\": {\"properties\": {\"x\": "
      "{\"$ref\": \"#/$defs/t\"}}, \"$defs\": {\"t\": {\"type\": \"integer\"}}}}}, "
      "{\"function\": {\"name\": \"b\", \"parameters\": {\"properties\": {\"x\": "
      "{\"$ref\": \"#/$defs/t\"}}, \"$defs\": {\"t\": {\"type\": \"string\"}}}}}]",
      NULL, "hermes", false);
  assert_non_null(g);
  assert_string_equal(rule(g, "ref-t"), "integer");
  assert_string_equal(rule(g, "ref-t1"), "string");
  free(g);
}

static void test_builder(void **state) {
  (void)state;
  sy_gbnf g;
  sy_gbnf_init(&g, 4, 1000);
  assert_string_equal(sy_gbnf_add(&g, "a b", "\"x\""), "a-b");
  assert_string_equal(sy_gbnf_add(&g, "a b", "\"x\""), "a-b"); /* same body: same rule */
  assert_string_equal(sy_gbnf_add(&g, "a-b", "\"y\""), "a-b1");
  const char *r = sy_gbnf_reserve(&g, "rec");
  assert_string_equal(r, "rec");
  assert_null(sy_gbnf_render(&g)); /* rec not defined yet */
  assert_int_equal(sy_gbnf_define(&g, "rec", "\"(\" rec? \")\""), 0);
  assert_int_equal(sy_gbnf_define(&g, "rec", "\"z\""), -1);
  char *text = sy_gbnf_render(&g);
  assert_string_equal(text, "a-b ::= \"x\"\na-b1 ::= \"y\"\nrec ::= \"(\" rec? \")\"\n");
  free(text);
  assert_non_null(sy_gbnf_add(&g, "", "\"w\""));
  assert_null(sy_gbnf_add(&g, "more", "\"v\"")); /* over max_rules */
  assert_null(sy_gbnf_render(&g));
  sy_gbnf_free(&g);
  sy_buf b = {0};
  assert_int_equal(sy_gbnf_lit(&b, "a\"\\\n\x01\x7f", 6), 0);
  assert_string_equal(b.data, "\"a\\\"\\\\\\n\\x01\\x7F\"");
  sy_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_primitives),
      cmocka_unit_test(test_object_order),
      cmocka_unit_test(test_additional_properties),
      cmocka_unit_test(test_enum_const),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_integer_ranges),
      cmocka_unit_test(test_arrays),
      cmocka_unit_test(test_combinators),
      cmocka_unit_test(test_refs),
      cmocka_unit_test(test_patterns),
      cmocka_unit_test(test_unsupported_and_invalid),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_json_object),
      cmocka_unit_test(test_tool_calls),
      cmocka_unit_test(test_builder),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
