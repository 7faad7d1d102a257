/* json_schema.c — JSON Schema → GBNF (see json_schema.h, docs/GRAMMAR.md).
 *
 * The walk turns each (sub)schema into a GBNF expression; structures get their own rules, named
 * from the schema path ("root-address-city"). Every value rule ends with `space`, a bounded run
 * of whitespace, so the model may pretty-print. $refs become named rules made once, so recursive
 * schemas become recursive rules; a $ref reached again before any '{' or '[' was consumed would
 * be left recursion (which llama.cpp refuses), so it is an error here.
 *
 * llama.cpp expands S{m,n} into n rules and refuses a sequence whose repetitions multiply past
 * 2000, so no sequence we write holds more than one large repetition, and bounds are capped. */
#include "json_schema.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gbnf.h"

#define JS_MAX_DEPTH 128          /* nested subschemas (each keyword level counts) */
#define JS_MAX_RULES 4096         /* rules we write (llama.cpp adds more for repetitions) */
#define JS_MAX_BYTES (512 * 1024) /* grammar text */
#define JS_MAX_WORK 100000        /* subschema visits, merges included */
#define JS_MAX_ENUM 1024          /* enum values */
#define JS_MAX_REPEAT 1000        /* largest {m,n} bound written */
#define JS_MAX_REPEAT_SUM 100000  /* sum of bounds: llama.cpp makes a rule per repetition */
#define JS_MAX_PATTERN 1024       /* pattern length in bytes */
#define JS_MAX_PATTERN_DEPTH 32   /* nested groups in a pattern */
#define JS_MAX_REF_LEN 512
#define JS_MAX_TOOLS 256
#define JS_MAX_NAME 256 /* tool and parameter names */
#define JS_UNBOUNDED INT64_MAX

enum prim {
  P_SPACE,
  P_CHAR,
  P_PCHAR,
  P_STRING,
  P_INTEGRAL,
  P_DECIMAL,
  P_INTEGER,
  P_NUMBER,
  P_UNUMBER,
  P_BOOLEAN,
  P_NULL,
  P_VALUE,
  P_OBJECT,
  P_ARRAY,
  P_HEX4,
  P_DATE,
  P_TIME,
  P_DATETIME,
  P_UUID,
  P_COUNT
};

typedef struct js_ref {
  char *ref;
  const char *rule;
  int busy;         /* being defined */
  unsigned nesting; /* j->nesting when it started */
} js_ref;

typedef struct js {
  sy_gbnf g;
  const json_t *root;
  const char *prim[P_COUNT];
  js_ref *refs;
  size_t nrefs, refcap;
  unsigned nesting; /* '{' / '[' entered on the way down: tells recursion from left recursion */
  unsigned long work;
  unsigned long repeat_sum;
  char *err;
  size_t err_len;
  int failed;
} js;

static int visit_body(js *j, const json_t *s, const char *hint, int depth, sy_buf *out);

__attribute__((format(printf, 2, 3))) static int fail(js *j, const char *fmt, ...) {
  if (!j->failed && j->err && j->err_len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, j->err_len, fmt, ap);
    va_end(ap);
  }
  j->failed = 1;
  return -1;
}

/* Called when the builder or a buffer refuses: the grammar outgrew its bounds (or memory). */
static int fail_size(js *j) {
  return fail(j, "schema too large: the grammar would exceed %d rules or %d bytes", JS_MAX_RULES,
              JS_MAX_BYTES);
}

static void js_init(js *j, char *err, size_t err_len) {
  memset(j, 0, sizeof *j);
  sy_gbnf_init(&j->g, JS_MAX_RULES, JS_MAX_BYTES);
  j->err = err;
  j->err_len = err_len;
  if (err && err_len) err[0] = '\0';
}

static void js_free(js *j) {
  for (size_t i = 0; i < j->nrefs; i++) free(j->refs[i].ref);
  free(j->refs);
  sy_gbnf_free(&j->g);
}

static sy_buf new_buf(void) { return (sy_buf){.limit = JS_MAX_BYTES}; }

/* Add a rule from a finished buffer (freed here); NULL (and failed) when refused. */
static const char *add_rule(js *j, const char *hint, sy_buf *b) {
  const char *name = NULL;
  if (b->data && !j->failed) name = sy_gbnf_add(&j->g, hint, b->data);
  if (!name && !j->failed) fail_size(j);
  sy_buf_free(b);
  return name;
}

static const char *add_rule_str(js *j, const char *hint, const char *body) {
  const char *name = j->failed ? NULL : sy_gbnf_add(&j->g, hint, body);
  if (!name && !j->failed) fail_size(j);
  return name;
}

/* Count a repetition bound against the budget llama.cpp will expand. */
static int count_repeat(js *j, int64_t n) {
  j->repeat_sum += (unsigned long)n;
  if (j->repeat_sum > JS_MAX_REPEAT_SUM) {
    return fail(j, "schema too large: length and item bounds add up to more than %d",
                JS_MAX_REPEAT_SUM);
  }
  return 0;
}

/* A rule "atom{mn,mx}" (mx JS_UNBOUNDED: "atom{mn,}"). Bounded repetitions get rules of their
 * own because llama.cpp multiplies the bounds of those in one sequence; identical ones are made
 * (and counted against the budget) once. */
static const char *rep_rule(js *j, const char *hint, const char *atom, int64_t mn, int64_t mx) {
  sy_buf b = new_buf();
  int rc = mx == JS_UNBOUNDED
               ? sy_buf_printf(&b, "%s{%lld,}", atom, (long long)mn)
               : sy_buf_printf(&b, "%s{%lld,%lld}", atom, (long long)mn, (long long)mx);
  const char *name = rc ? NULL : sy_gbnf_find(&j->g, b.data);
  if (rc) fail_size(j);
  if (name || rc || count_repeat(j, mx == JS_UNBOUNDED ? mn : mx)) {
    sy_buf_free(&b);
    return name;
  }
  return add_rule(j, hint, &b);
}

/* ---- primitive rules ------------------------------------------------------------------------ */

static const char *prim(js *j, enum prim p) {
  if (j->failed) return NULL;
  if (j->prim[p]) return j->prim[p];
  char body[512];
  const char *name = NULL;
#define P(x) (prim(j, x) ? j->prim[x] : "")
  switch (p) {
    case P_SPACE:
      name = add_rule_str(j, "space", "| \" \" | \"\\n\" [ \\t]{0,20}");
      break;
    case P_CHAR:
      name = add_rule_str(
          j, "char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})");
      break;
    case P_PCHAR: /* a regex '.': any character but a newline */
      name = add_rule_str(j, "pchar",
                          "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfrt] | \"u\" [0-9a-fA-F]{4})");
      break;
    case P_STRING:
      snprintf(body, sizeof body, "\"\\\"\" %s* \"\\\"\" %s", P(P_CHAR), P(P_SPACE));
      name = add_rule_str(j, "string", body);
      break;
    case P_INTEGRAL:
      name = add_rule_str(j, "integral-part", "\"0\" | [1-9] [0-9]{0,15}");
      break;
    case P_DECIMAL:
      name = add_rule_str(j, "decimal-part", "[0-9]{1,16}");
      break;
    case P_INTEGER:
      snprintf(body, sizeof body, "\"-\"? %s %s", P(P_INTEGRAL), P(P_SPACE));
      name = add_rule_str(j, "integer", body);
      break;
    case P_NUMBER:
    case P_UNUMBER:
      snprintf(body, sizeof body, "%s%s (\".\" %s)? ([eE] [-+]? [0-9]{1,3})? %s",
               p == P_NUMBER ? "\"-\"? " : "", P(P_INTEGRAL), P(P_DECIMAL), P(P_SPACE));
      name = add_rule_str(j, p == P_NUMBER ? "number" : "unsigned-number", body);
      break;
    case P_BOOLEAN:
      snprintf(body, sizeof body, "(\"true\" | \"false\") %s", P(P_SPACE));
      name = add_rule_str(j, "boolean", body);
      break;
    case P_NULL:
      snprintf(body, sizeof body, "\"null\" %s", P(P_SPACE));
      name = add_rule_str(j, "null", body);
      break;
    case P_VALUE:
    case P_OBJECT:
    case P_ARRAY: {
      /* value, object and array refer to each other: name value first, define it last */
      const char *value = sy_gbnf_reserve(&j->g, "value");
      if (!value) {
        fail_size(j);
        return NULL;
      }
      j->prim[P_VALUE] = value;
      const char *sp = P(P_SPACE), *str = P(P_STRING);
      snprintf(body, sizeof body, "\"{\" %s (%s \":\" %s %s (\",\" %s %s \":\" %s %s)*)? \"}\" %s",
               sp, str, sp, value, sp, str, sp, value, sp);
      j->prim[P_OBJECT] = add_rule_str(j, "object", body);
      snprintf(body, sizeof body, "\"[\" %s (%s (\",\" %s %s)*)? \"]\" %s", sp, value, sp, value,
               sp);
      j->prim[P_ARRAY] = add_rule_str(j, "array", body);
      snprintf(body, sizeof body, "%s | %s | %s | %s | %s | %s", P(P_OBJECT), P(P_ARRAY),
               P(P_STRING), P(P_NUMBER), P(P_BOOLEAN), P(P_NULL));
      if (!j->failed && sy_gbnf_define(&j->g, value, body) != 0) fail_size(j);
      return j->failed ? NULL : j->prim[p];
    }
    case P_HEX4:
      name = add_rule_str(j, "hex4", "[0-9a-fA-F]{4}");
      break;
    case P_DATE:
      name = add_rule_str(j, "date",
                          "[0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" "
                          "(\"0\" [1-9] | [12] [0-9] | \"3\" [01])");
      break;
    case P_TIME:
      name = add_rule_str(j, "time",
                          "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] "
                          "(\".\" [0-9]{1,6})? (\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" "
                          "[0-5] [0-9])");
      break;
    case P_DATETIME:
      snprintf(body, sizeof body, "%s \"T\" %s", P(P_DATE), P(P_TIME));
      name = add_rule_str(j, "date-time", body);
      break;
    case P_UUID: {
      const char *h = P(P_HEX4);
      snprintf(body, sizeof body, "%s %s \"-\" %s \"-\" %s \"-\" %s \"-\" %s %s %s", h, h, h, h, h,
               h, h, h);
      name = add_rule_str(j, "uuid", body);
      break;
    }
    case P_COUNT:
      break;
  }
#undef P
  if (j->failed) return NULL;
  j->prim[p] = name;
  return name;
}

/* Append a primitive's name (with a leading space when b is not empty). */
static int put_prim(js *j, sy_buf *b, enum prim p) {
  const char *n = prim(j, p);
  if (!n) return -1;
  if (sy_buf_printf(b, "%s%s", b->len ? " " : "", n) != 0) return fail_size(j);
  return 0;
}

/* ---- helpers over schemas -------------------------------------------------------------------- */

/* Keywords that only annotate. */
static const char *const ANNOTATIONS[] = {"title",
                                          "description",
                                          "default",
                                          "examples",
                                          "$schema",
                                          "$id",
                                          "$comment",
                                          "$defs",
                                          "definitions",
                                          "deprecated",
                                          "readOnly",
                                          "writeOnly",
                                          "contentMediaType",
                                          "contentEncoding",
                                          "discriminator",
                                          "$anchor",
                                          "strict",
                                          "example",
                                          "externalDocs",
                                          "xml",
                                          NULL};

/* Keywords that change what is valid and that we cannot honour. */
static const char *const UNSUPPORTED[] = {"not",
                                          "if",
                                          "then",
                                          "else",
                                          "patternProperties",
                                          "propertyNames",
                                          "dependentRequired",
                                          "dependentSchemas",
                                          "dependencies",
                                          "contains",
                                          "minContains",
                                          "maxContains",
                                          "unevaluatedItems",
                                          "maxProperties",
                                          "multipleOf",
                                          "$dynamicRef",
                                          "$recursiveRef",
                                          NULL};

static int in_list(const char *const *list, const char *k) {
  for (; *list; list++) {
    if (strcmp(*list, k) == 0) return 1;
  }
  return 0;
}

static int check_keywords(js *j, const json_t *s) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)s, k, v) {
    if (!in_list(UNSUPPORTED, k)) continue;
    if (strcmp(k, "maxProperties") == 0 && json_is_integer(v) && json_integer_value(v) < 0) {
      continue;
    }
    return fail(j, "unsupported JSON Schema keyword '%s'", k);
  }
  /* harmless values of keywords we otherwise cannot honour */
  v = json_object_get(s, "uniqueItems");
  if (v && !json_is_false(v)) return fail(j, "unsupported JSON Schema keyword 'uniqueItems'");
  v = json_object_get(s, "minProperties");
  if (v && !(json_is_integer(v) && json_integer_value(v) <= 0)) {
    return fail(j, "unsupported JSON Schema keyword 'minProperties'");
  }
  v = json_object_get(s, "unevaluatedProperties");
  if (v && !json_is_true(v)) {
    return fail(j, "unsupported JSON Schema keyword 'unevaluatedProperties'");
  }
  return 0;
}

/* Does s carry a keyword other than an annotation and those named in skip? */
static int has_constraints(const json_t *s, const char *const *skip) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)s, k, v) {
    if (!in_list(ANNOTATIONS, k) && !in_list(skip, k)) return 1;
  }
  return 0;
}

/* Hint for a child rule: parent-suffix, bounded. */
static void child_hint(char *dst, size_t n, const char *parent, const char *suffix) {
  size_t a = strnlen(parent, n - 2), b = strnlen(suffix, n - 2 - a);
  memcpy(dst, parent, a);
  dst[a] = '-';
  memcpy(dst + a + 1, suffix, b);
  dst[a + 1 + b] = '\0';
}

/* Append the JSON text of v as a GBNF literal. */
static int put_json_lit(js *j, sy_buf *b, const json_t *v) {
  char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text) return fail(j, "cannot encode an enum or const value");
  size_t n = strlen(text);
  int rc = n > JS_MAX_BYTES / 4 ? -1 : sy_gbnf_lit(b, text, n);
  free(text);
  return rc ? fail_size(j) : 0;
}

/* Resolve a local JSON pointer ("#", "#/$defs/a", "#/definitions/a~1b"). */
static const json_t *resolve_pointer(const json_t *root, const char *ref) {
  if (ref[0] != '#') return NULL;
  const json_t *cur = root;
  const char *p = ref + 1;
  if (*p == '\0') return cur;
  if (*p != '/') return NULL;
  char tok[JS_MAX_REF_LEN + 1];
  while (*p == '/') {
    p++;
    size_t n = 0;
    while (*p && *p != '/') {
      char c = *p++;
      if (c == '~' && (*p == '0' || *p == '1')) c = *p++ == '0' ? '~' : '/';
      if (n >= JS_MAX_REF_LEN) return NULL;
      tok[n++] = c;
    }
    tok[n] = '\0';
    if (json_is_object(cur)) {
      cur = json_object_get(cur, tok);
    } else if (json_is_array(cur)) {
      char *end;
      unsigned long idx = strtoul(tok, &end, 10);
      if (!n || *end) return NULL;
      cur = json_array_get(cur, idx);
    } else {
      return NULL;
    }
    if (!cur) return NULL;
  }
  return cur;
}

/* A subschema as its own rule; returns the rule's name (owned by j->g) or NULL. */
static const char *visit(js *j, const json_t *s, const char *hint, int depth) {
  sy_buf b = new_buf();
  if (visit_body(j, s, hint, depth, &b) != 0) {
    sy_buf_free(&b);
    return NULL;
  }
  return add_rule(j, hint, &b);
}

/* Append " | " between alternatives, then name. */
static int put_alt(js *j, sy_buf *out, const char *name) {
  if (!name) return -1;
  if (sy_buf_printf(out, "%s%s", out->len ? " | " : "", name) != 0) return fail_size(j);
  return 0;
}

/* ---- $ref ----------------------------------------------------------------------------------- */

static const char *const REF_ONLY[] = {"$ref", NULL};

static int visit_ref(js *j, const json_t *s, int depth, sy_buf *out) {
  const json_t *r = json_object_get(s, "$ref");
  if (!json_is_string(r)) return fail(j, "$ref must be a string");
  const char *ref = json_string_value(r);
  if (strlen(ref) > JS_MAX_REF_LEN) return fail(j, "$ref too long");
  if (ref[0] != '#') return fail(j, "only local $refs ('#/$defs/...') are supported: '%s'", ref);
  if (has_constraints(s, REF_ONLY)) {
    return fail(j, "$ref '%s' with sibling keywords is not supported (use allOf)", ref);
  }
  for (size_t i = 0; i < j->nrefs; i++) {
    if (strcmp(j->refs[i].ref, ref) != 0) continue;
    if (j->refs[i].busy && j->refs[i].nesting == j->nesting) {
      return fail(j, "$ref '%s' refers to itself without any object or array in between", ref);
    }
    return put_alt(j, out, j->refs[i].rule);
  }
  const json_t *target = resolve_pointer(j->root, ref);
  if (!target) return fail(j, "unresolvable $ref '%s'", ref);
  const char *last = strrchr(ref, '/');
  char hint[96];
  snprintf(hint, sizeof hint, "ref-%s", last ? last + 1 : "root");
  if (j->nrefs == j->refcap) {
    size_t cap = j->refcap ? j->refcap * 2 : 16;
    js_ref *nr = realloc(j->refs, cap * sizeof *nr);
    if (!nr) return fail_size(j);
    j->refs = nr;
    j->refcap = cap;
  }
  const char *name = sy_gbnf_reserve(&j->g, hint);
  char *dup = strdup(ref);
  if (!name || !dup) {
    free(dup);
    return fail_size(j);
  }
  size_t idx = j->nrefs++;
  j->refs[idx] = (js_ref){dup, name, 1, j->nesting};
  sy_buf body = new_buf();
  int rc = visit_body(j, target, name, depth + 1, &body);
  if (rc == 0 && sy_gbnf_define(&j->g, name, body.data) != 0) rc = fail_size(j);
  sy_buf_free(&body);
  j->refs[idx].busy = 0;
  return rc ? -1 : put_alt(j, out, name);
}

/* ---- allOf: merge the subschemas into one --------------------------------------------------- */

static const char *const ALLOF_ONLY[] = {"allOf", NULL};

/* Follow a $ref-only schema to its target; siblings other than annotations are an error. */
static const json_t *deref(js *j, const json_t *s) {
  for (int hops = 0; json_is_object(s) && json_object_get(s, "$ref"); hops++) {
    const json_t *r = json_object_get(s, "$ref");
    if (hops >= 32) {
      fail(j, "$ref chain too long or cyclic");
      return NULL;
    }
    if (has_constraints(s, REF_ONLY)) {
      fail(j, "$ref with sibling keywords is not supported (use allOf)");
      return NULL;
    }
    if (!json_is_string(r) || !(s = resolve_pointer(j->root, json_string_value(r)))) {
      fail(j, "unresolvable $ref '%s'", json_is_string(r) ? json_string_value(r) : "?");
      return NULL;
    }
  }
  return s;
}

/* The subschemas of an allOf tree, $refs followed and nested allOfs flattened, into list. */
static int flatten_allof(js *j, const json_t *s, json_t *list, int depth) {
  if (depth > JS_MAX_DEPTH) return fail(j, "schema nested too deeply (limit %d)", JS_MAX_DEPTH);
  if (++j->work > JS_MAX_WORK) return fail(j, "schema too complex");
  if (!(s = deref(j, s))) return -1;
  if (json_is_true(s)) return 0;
  if (!json_is_object(s)) return fail(j, "allOf: a subschema must be an object or true");
  const json_t *all = json_object_get(s, "allOf");
  if (all) {
    if (!json_is_array(all) || json_array_size(all) == 0) {
      return fail(j, "allOf must be a non-empty array");
    }
    size_t i;
    json_t *sub;
    json_array_foreach(all, i, sub) {
      if (flatten_allof(j, sub, list, depth + 1)) return -1;
    }
  }
  if (!all || has_constraints(s, ALLOF_ONLY)) {
    if (json_array_append(list, (json_t *)s)) return fail_size(j);
  }
  return 0;
}

/* Type names of a "type" value as bits; 0 for a bad value. */
static const char *const TYPES[] = {"string", "number", "integer", "boolean",
                                    "null",   "object", "array",   NULL};

static unsigned type_bits(const json_t *t) {
  unsigned bits = 0;
  if (json_is_string(t)) {
    for (unsigned i = 0; TYPES[i]; i++) {
      if (strcmp(TYPES[i], json_string_value(t)) == 0) return 1u << i;
    }
    return 0;
  }
  if (!json_is_array(t)) return 0;
  size_t i;
  json_t *e;
  json_array_foreach(t, i, e) {
    unsigned b = type_bits(e);
    if (!b || !json_is_string(e)) return 0;
    bits |= b;
  }
  return bits;
}

static json_t *bits_to_type(unsigned bits) {
  json_t *arr = json_array();
  for (unsigned i = 0; TYPES[i] && arr; i++) {
    if (bits & (1u << i)) json_array_append_new(arr, json_string(TYPES[i]));
  }
  if (arr && json_array_size(arr) == 1) {
    json_t *one = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return one;
  }
  return arr;
}

static json_t *pair_allof(const json_t *a, const json_t *b) {
  return json_pack("{s:[OO]}", "allOf", a, b);
}

/* Merge src's keywords into dst with allOf meaning. */
static int merge_into(js *j, json_t *dst, const json_t *src) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)src, k, v) {
    if (in_list(ANNOTATIONS, k) || strcmp(k, "allOf") == 0) continue;
    json_t *have = json_object_get(dst, k);
    json_t *nv = NULL;
    if (!have) {
      nv = json_incref(v);
    } else if (json_equal(have, v)) {
      continue;
    } else if (strcmp(k, "required") == 0 && json_is_array(have) && json_is_array(v)) {
      nv = json_copy(have);
      size_t i;
      json_t *e;
      json_array_foreach(v, i, e) {
        int dup = 0;
        for (size_t m = 0; m < json_array_size(have); m++)
          dup |= json_equal(json_array_get(have, m), e);
        if (!dup && nv) json_array_append(nv, e);
      }
    } else if (strcmp(k, "properties") == 0 && json_is_object(have) && json_is_object(v)) {
      nv = json_copy(have);
      const char *pk;
      json_t *pv;
      json_object_foreach(v, pk, pv) {
        json_t *old = nv ? json_object_get(nv, pk) : NULL;
        if (nv) json_object_set_new(nv, pk, old ? pair_allof(old, pv) : json_incref(pv));
      }
    } else if (strcmp(k, "type") == 0) {
      unsigned a = type_bits(have), b = type_bits(v);
      if (!a || !b) return fail(j, "invalid 'type'");
      /* an integer is a number */
      if ((a & 2) && (b & 4)) a |= 4;
      if ((b & 2) && (a & 4)) b |= 4;
      unsigned both = a & b;
      if ((both & 4) && !((a & 2) && (b & 2))) both &= ~2u;
      if (!both) return fail(j, "allOf: the subschemas' types have nothing in common");
      nv = bits_to_type(both);
    } else if (json_is_number(have) && json_is_number(v) &&
               (strncmp(k, "min", 3) == 0 || strncmp(k, "max", 3) == 0 ||
                strcmp(k, "exclusiveMinimum") == 0 || strcmp(k, "exclusiveMaximum") == 0)) {
      int lower = strncmp(k, "min", 3) == 0 || strcmp(k, "exclusiveMinimum") == 0;
      double x = json_number_value(have), y = json_number_value(v);
      nv = json_incref(lower ? (x > y ? have : v) : (x < y ? have : v));
    } else if (strcmp(k, "additionalProperties") == 0) {
      if (json_is_false(have) || json_is_false(v)) {
        nv = json_false();
      } else if (json_is_true(have)) {
        nv = json_incref(v);
      } else if (json_is_true(v)) {
        continue;
      } else {
        nv = pair_allof(have, v);
      }
    } else if (strcmp(k, "items") == 0 && !json_is_array(have) && !json_is_array(v)) {
      nv = pair_allof(have, v);
    } else if (strcmp(k, "enum") == 0 && json_is_array(have) && json_is_array(v)) {
      nv = json_array();
      size_t i;
      json_t *e;
      json_array_foreach(have, i, e) {
        for (size_t m = 0; m < json_array_size(v) && nv; m++) {
          if (json_equal(json_array_get(v, m), e)) {
            json_array_append(nv, e);
            break;
          }
        }
      }
      if (nv && json_array_size(nv) == 0) {
        json_decref(nv);
        return fail(j, "allOf: the enums have no value in common");
      }
    } else {
      return fail(j, "allOf: conflicting values for '%s' are not supported", k);
    }
    if (!nv || json_object_set_new(dst, k, nv) != 0) return fail_size(j);
  }
  return 0;
}

/* Merge a list of schemas and visit the result. */
static int visit_merged(js *j, const json_t *list, const char *hint, int depth, sy_buf *out) {
  json_t *m = json_object();
  if (!m) return fail_size(j);
  size_t i;
  json_t *e;
  int rc = 0;
  json_array_foreach(list, i, e) {
    if (++j->work > JS_MAX_WORK) rc = fail(j, "schema too complex");
    if (rc || (rc = merge_into(j, m, e)) != 0) break;
  }
  if (rc == 0) rc = visit_body(j, m, hint, depth + 1, out);
  json_decref(m);
  return rc;
}

static int visit_allof(js *j, const json_t *s, const char *hint, int depth, sy_buf *out) {
  json_t *list = json_array();
  if (!list) return fail_size(j);
  int rc = flatten_allof(j, s, list, depth);
  if (rc == 0) rc = visit_merged(j, list, hint, depth, out);
  json_decref(list);
  return rc;
}

/* ---- anyOf / oneOf -------------------------------------------------------------------------- */

static const char *const ANYOF_KEYS[] = {"anyOf", "oneOf", NULL};

static int visit_anyof(js *j, const json_t *s, const json_t *alts, const char *hint, int depth,
                       sy_buf *out) {
  if (!json_is_array(alts) || json_array_size(alts) == 0) {
    return fail(j, "anyOf/oneOf must be a non-empty array");
  }
  /* keywords beside anyOf apply to every alternative: merge them into each */
  json_t *base = NULL;
  if (has_constraints(s, ANYOF_KEYS)) {
    base = json_copy((json_t *)s);
    if (!base) return fail_size(j);
    json_object_del(base, "anyOf");
    json_object_del(base, "oneOf");
  }
  sy_buf b = new_buf();
  size_t i;
  json_t *alt;
  int rc = 0;
  json_array_foreach(alts, i, alt) {
    char h[128];
    snprintf(h, sizeof h, "%s-%zu", hint, i);
    const char *name = NULL;
    if (base) {
      json_t *list = json_array();
      sy_buf ab = new_buf();
      if (!list) {
        rc = fail_size(j);
      } else if ((rc = flatten_allof(j, base, list, depth + 1)) == 0 &&
                 (rc = flatten_allof(j, alt, list, depth + 1)) == 0 &&
                 (rc = visit_merged(j, list, h, depth, &ab)) == 0) {
        name = add_rule(j, h, &ab);
      }
      sy_buf_free(&ab);
      json_decref(list);
    } else {
      name = visit(j, alt, h, depth + 1);
    }
    if (rc || (rc = put_alt(j, &b, name)) != 0) break;
  }
  json_decref(base);
  if (rc == 0 && sy_buf_puts(out, b.data) != 0) rc = fail_size(j);
  sy_buf_free(&b);
  return rc;
}

/* ---- integers in a range -------------------------------------------------------------------- */

#define INT_LIMIT 100000000000000000ll /* 1e17: past this a bound is treated as absent */

static int all_same(const char *s, char c) {
  for (; *s; s++) {
    if (*s != c) return 0;
  }
  return 1;
}

/* Alternatives matching the n-digit strings from lo to hi (both n digits, lo <= hi). */
static int digits_range(sy_buf *b, const char *lo, const char *hi, int n) {
  if (n == 1) return sy_buf_printf(b, "[%c-%c]", lo[0], hi[0]);
  if (lo[0] == hi[0]) {
    int rc = sy_buf_printf(b, "\"%c\" (", lo[0]);
    if (!rc) rc = digits_range(b, lo + 1, hi + 1, n - 1);
    return rc ? rc : sy_buf_puts(b, ")");
  }
  char nines[24], zeros[24];
  memset(nines, '9', (size_t)n - 1);
  memset(zeros, '0', (size_t)n - 1);
  nines[n - 1] = zeros[n - 1] = '\0';
  char a = lo[0], z = hi[0];
  int rc = 0, alts = 0;
  if (!all_same(lo + 1, '0')) {
    rc |= sy_buf_printf(b, "\"%c\" (", a);
    rc |= digits_range(b, lo + 1, nines, n - 1);
    rc |= sy_buf_puts(b, ")");
    a++;
    alts++;
  }
  int hi_full = all_same(hi + 1, '9');
  if (!hi_full) z--;
  if (a <= z) {
    rc |= sy_buf_printf(b, "%s[%c-%c] [0-9]{%d}", alts++ ? " | " : "", a, z, n - 1);
  }
  if (!hi_full) {
    rc |= sy_buf_printf(b, "%s\"%c\" (", alts ? " | " : "", hi[0]);
    rc |= digits_range(b, zeros, hi + 1, n - 1);
    rc |= sy_buf_puts(b, ")");
  }
  return rc ? -1 : 0;
}

/* Decimal numbers without leading zeros from lo to hi (0 <= lo <= hi); hi INT64_MAX: no bound,
 * up to 16 digits (as the plain integer rule). */
static int uint_range(sy_buf *b, int64_t lo, int64_t hi) {
  char los[24], his[24];
  int nlo = snprintf(los, sizeof los, "%lld", (long long)lo);
  int nhi = hi == INT64_MAX ? nlo : snprintf(his, sizeof his, "%lld", (long long)hi);
  int rc = 0;
  int64_t pow = 1;
  for (int i = 1; i < nlo; i++) pow *= 10; /* 10^(nlo-1) */
  for (int len = nlo; len <= nhi && rc == 0; len++, pow *= 10) {
    int64_t from = len == nlo ? lo : pow;
    int64_t to = pow * 10 - 1;
    if (hi != INT64_MAX && hi < to) to = hi;
    char fs[24], ts[24];
    snprintf(fs, sizeof fs, "%lld", (long long)from);
    snprintf(ts, sizeof ts, "%lld", (long long)to);
    rc |= sy_buf_printf(b, "%s(", len == nlo ? "" : " | ");
    rc |= digits_range(b, fs, ts, len);
    rc |= sy_buf_puts(b, ")");
  }
  if (hi == INT64_MAX && nlo < 16) rc |= sy_buf_printf(b, " | [1-9] [0-9]{%d,15}", nlo);
  return rc ? -1 : 0;
}

/* An integer from lo to hi; INT64_MIN / INT64_MAX: no bound on that side. */
static int int_range(js *j, sy_buf *out, int64_t lo, int64_t hi) {
  sy_buf b = new_buf();
  int rc = 0;
  if (hi >= 0) rc |= uint_range(&b, lo < 0 ? 0 : lo, hi);
  if (lo < 0) {
    /* negatives: "-" then a magnitude from max(1, -hi) to -lo */
    int64_t mlo = hi >= 0 ? 1 : -hi, mhi = lo == INT64_MIN ? INT64_MAX : -lo;
    rc |= sy_buf_printf(&b, "%s\"-\" (", b.len ? " | " : "");
    rc |= uint_range(&b, mlo, mhi);
    rc |= sy_buf_puts(&b, ")");
  }
  const char *sp = prim(j, P_SPACE);
  if (rc || !sp || sy_buf_printf(out, "(%s) %s", b.data, sp) != 0) rc = fail_size(j);
  sy_buf_free(&b);
  return rc;
}

/* A numeric bound: *v set, 1 when present, 0 when absent, -1 when not a number. */
static int get_num(const json_t *s, const char *k, double *v) {
  const json_t *x = json_object_get(s, k);
  if (!x) return 0;
  if (!json_is_number(x)) return -1;
  *v = json_number_value(x);
  return 1;
}

static int visit_integer(js *j, const json_t *s, sy_buf *out) {
  double v = 0;
  int64_t lo = INT64_MIN, hi = INT64_MAX;
  int r;
  /* draft 4: exclusiveMinimum/Maximum are booleans that modify minimum/maximum */
  const json_t *exmin = json_object_get(s, "exclusiveMinimum");
  const json_t *exmax = json_object_get(s, "exclusiveMaximum");
  if ((r = get_num(s, "minimum", &v)) < 0) return fail(j, "'minimum' must be a number");
  if (r) {
    if (v > INT_LIMIT) return fail(j, "'minimum' too large");
    if (v >= -INT_LIMIT) lo = (int64_t)ceil(v) + (json_is_true(exmin) && v == ceil(v));
  }
  if ((r = get_num(s, "maximum", &v)) < 0) return fail(j, "'maximum' must be a number");
  if (r) {
    if (v < -INT_LIMIT) return fail(j, "'maximum' too small");
    if (v <= INT_LIMIT) hi = (int64_t)floor(v) - (json_is_true(exmax) && v == floor(v));
  }
  if (exmin && !json_is_boolean(exmin)) {
    if ((r = get_num(s, "exclusiveMinimum", &v)) < 0) return fail(j, "bad 'exclusiveMinimum'");
    if (v > INT_LIMIT) return fail(j, "'exclusiveMinimum' too large");
    if (v >= -INT_LIMIT && (int64_t)floor(v) + 1 > lo) lo = (int64_t)floor(v) + 1;
  }
  if (exmax && !json_is_boolean(exmax)) {
    if ((r = get_num(s, "exclusiveMaximum", &v)) < 0) return fail(j, "bad 'exclusiveMaximum'");
    if (v < -INT_LIMIT) return fail(j, "'exclusiveMaximum' too small");
    if (v <= INT_LIMIT && (int64_t)ceil(v) - 1 < hi) hi = (int64_t)ceil(v) - 1;
  }
  if (lo > hi) return fail(j, "no integer lies between 'minimum' and 'maximum'");
  if (lo == INT64_MIN && hi == INT64_MAX) return put_prim(j, out, P_INTEGER);
  return int_range(j, out, lo, hi);
}

static int visit_number(js *j, const json_t *s, sy_buf *out) {
  /* bounds on non-integers are not enforced (docs/GRAMMAR.md), except the sign */
  double v = 0;
  int r1 = get_num(s, "minimum", &v);
  int nonneg = r1 > 0 && v >= 0;
  if (r1 < 0) return fail(j, "'minimum' must be a number");
  const json_t *ex = json_object_get(s, "exclusiveMinimum");
  if (json_is_number(ex) && json_number_value(ex) >= 0) nonneg = 1;
  return put_prim(j, out, nonneg ? P_UNUMBER : P_NUMBER);
}

/* ---- pattern: a regex subset, matched against the string's JSON text ------------------------ */

typedef struct rx {
  js *j;
  const char *start, *p, *end;
  const char *hint;
  int depth;
} rx;

typedef struct rx_range {
  uint32_t lo, hi;
} rx_range;

#define RX_MAX_RANGES 128

typedef struct rx_class {
  rx_range r[RX_MAX_RANGES];
  int n;
  int neg;
} rx_class;

static int rx_fail(rx *r, const char *what) {
  return fail(r->j, "pattern: %s at offset %d", what, (int)(r->p - r->start));
}

static int class_add(rx *r, rx_class *c, uint32_t lo, uint32_t hi) {
  if (c->n >= RX_MAX_RANGES) return rx_fail(r, "character class too large");
  if (lo > hi) return rx_fail(r, "bad range in character class");
  c->r[c->n++] = (rx_range){lo, hi};
  return 0;
}

static int class_has(const rx_class *c, uint32_t cp) {
  for (int i = 0; i < c->n; i++) {
    if (c->r[i].lo <= cp && cp <= c->r[i].hi) return 1;
  }
  return 0;
}

/* The JSON text of one character inside a string, as a GBNF literal. */
static int put_json_char(sy_buf *b, uint32_t cp) {
  char t[8];
  size_t n = 0;
  switch (cp) {
    case '"':
      memcpy(t, "\\\"", n = 2);
      break;
    case '\\':
      memcpy(t, "\\\\", n = 2);
      break;
    case '\n':
      memcpy(t, "\\n", n = 2);
      break;
    case '\r':
      memcpy(t, "\\r", n = 2);
      break;
    case '\t':
      memcpy(t, "\\t", n = 2);
      break;
    case '\b':
      memcpy(t, "\\b", n = 2);
      break;
    case '\f':
      memcpy(t, "\\f", n = 2);
      break;
    default:
      if (cp < 0x20) {
        n = (size_t)snprintf(t, sizeof t, "\\u%04x", (unsigned)cp);
      } else if (cp < 0x80) {
        t[n++] = (char)cp;
      } else if (cp < 0x800) {
        t[n++] = (char)(0xC0 | (cp >> 6));
        t[n++] = (char)(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        t[n++] = (char)(0xE0 | (cp >> 12));
        t[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[n++] = (char)(0x80 | (cp & 0x3F));
      } else {
        t[n++] = (char)(0xF0 | (cp >> 18));
        t[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[n++] = (char)(0x80 | (cp & 0x3F));
      }
  }
  return sy_gbnf_lit(b, t, n);
}

/* A class as a GBNF term. Characters JSON escapes ('"', '\', controls) become their escapes;
 * a negated class allows only the common escapes (\" \\ \n \t \r), which narrows it. */
static int class_emit(rx *r, const rx_class *c, sy_buf *out) {
  sy_buf b = new_buf();
  int rc = 0, alts = 0;
  if (c->neg) {
    rc |= sy_buf_puts(&b, "[^");
    for (int i = 0; i < c->n; i++) {
      rc |= sy_gbnf_class_cp(&b, c->r[i].lo);
      if (c->r[i].hi != c->r[i].lo) {
        rc |= sy_buf_puts(&b, "-");
        rc |= sy_gbnf_class_cp(&b, c->r[i].hi);
      }
    }
    rc |= sy_buf_puts(&b, "\\x22\\x5C\\x00-\\x1F]");
    alts++;
    static const uint32_t esc[] = {'"', '\\', '\n', '\t', '\r'};
    for (size_t i = 0; i < sizeof esc / sizeof esc[0]; i++) {
      if (class_has(c, esc[i])) continue;
      rc |= sy_buf_puts(&b, " | ");
      alts++;
      rc |= put_json_char(&b, esc[i]);
    }
  } else {
    /* the plain part: each range minus controls, '"' and '\' */
    static const uint32_t seg[3][2] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, UINT32_MAX}};
    sy_buf cls = new_buf();
    for (int i = 0; i < c->n; i++) {
      for (int k = 0; k < 3; k++) {
        uint32_t lo = c->r[i].lo > seg[k][0] ? c->r[i].lo : seg[k][0];
        uint32_t hi = c->r[i].hi < seg[k][1] ? c->r[i].hi : seg[k][1];
        if (lo > hi) continue;
        rc |= sy_gbnf_class_cp(&cls, lo);
        if (hi != lo) {
          rc |= sy_buf_puts(&cls, "-");
          rc |= sy_gbnf_class_cp(&cls, hi);
        }
      }
    }
    if (cls.len) {
      rc |= sy_buf_printf(&b, "[%s]", cls.data);
      alts++;
    }
    sy_buf_free(&cls);
    for (uint32_t cp = 0; cp < 0x20 && !rc; cp++) {
      if (!class_has(c, cp)) continue;
      rc |= sy_buf_puts(&b, alts++ ? " | " : "");
      rc |= put_json_char(&b, cp);
    }
    static const uint32_t esc[] = {'"', '\\'};
    for (size_t i = 0; i < 2; i++) {
      if (!class_has(c, esc[i])) continue;
      rc |= sy_buf_puts(&b, alts++ ? " | " : "");
      rc |= put_json_char(&b, esc[i]);
    }
  }
  if (!rc && alts == 0)
    rc = rx_fail(r, "empty character class");
  else if (rc)
    rc = fail_size(r->j);
  else
    rc = sy_buf_printf(out, alts > 1 ? "(%s)" : "%s", b.data) ? fail_size(r->j) : 0;
  sy_buf_free(&b);
  return rc;
}

/* Decode one UTF-8 code point at r->p. */
static int rx_cp(rx *r, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)r->p;
  if (r->p >= r->end) return rx_fail(r, "unexpected end");
  int n = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
  if (r->end - r->p < n) return rx_fail(r, "bad UTF-8");
  uint32_t v = n == 1 ? s[0] : n == 2 ? s[0] & 0x1F : n == 3 ? s[0] & 0x0F : s[0] & 0x07;
  for (int i = 1; i < n; i++) v = (v << 6) | (s[i] & 0x3F);
  r->p += n;
  *cp = v;
  return 0;
}

static int hexval(const char *p, int n, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < n; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    *v = *v * 16 + (uint32_t)d;
  }
  return 0;
}

/* After a '\': a shorthand class (fills c, returns 1) or one character (*cp, returns 0). */
static int rx_escape(rx *r, rx_class *c, uint32_t *cp) {
  if (r->p >= r->end) return rx_fail(r, "trailing backslash");
  char e = *r->p++;
  memset(c, 0, sizeof *c);
  switch (e) {
    case 'd':
    case 'D':
      c->neg = e == 'D';
      return class_add(r, c, '0', '9') ? -1 : 1;
    case 'w':
    case 'W':
      c->neg = e == 'W';
      if (class_add(r, c, '0', '9') || class_add(r, c, 'a', 'z') || class_add(r, c, 'A', 'Z') ||
          class_add(r, c, '_', '_'))
        return -1;
      return 1;
    case 's':
    case 'S':
      c->neg = e == 'S';
      if (class_add(r, c, ' ', ' ') || class_add(r, c, '\t', '\r')) return -1;
      return 1;
    case 'n':
      *cp = '\n';
      return 0;
    case 't':
      *cp = '\t';
      return 0;
    case 'r':
      *cp = '\r';
      return 0;
    case 'f':
      *cp = '\f';
      return 0;
    case 'v':
      *cp = '\v';
      return 0;
    case '0':
      *cp = 0;
      return 0;
    case 'x':
    case 'u': {
      int n = e == 'x' ? 2 : 4;
      if (r->end - r->p < n || hexval(r->p, n, cp)) return rx_fail(r, "bad \\x or \\u escape");
      r->p += n;
      if (*cp >= 0xD800 && *cp <= 0xDFFF) return rx_fail(r, "surrogate escapes are not supported");
      return 0;
    }
    default:
      if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
        r->p--;
        return rx_fail(r, "unsupported escape");
      }
      *cp = (unsigned char)e;
      if ((unsigned char)e >= 0x80) {
        r->p--;
        return rx_cp(r, cp);
      }
      return 0;
  }
}

static int rx_bracket(rx *r, rx_class *c) {
  memset(c, 0, sizeof *c);
  if (r->p < r->end && *r->p == '^') {
    c->neg = 1;
    r->p++;
  }
  int first = 1;
  for (;;) {
    if (r->p >= r->end) return rx_fail(r, "unterminated character class");
    if (*r->p == ']' && !first) {
      r->p++;
      return 0;
    }
    first = 0;
    uint32_t lo, hi;
    if (*r->p == '\\') {
      r->p++;
      rx_class sh;
      int k = rx_escape(r, &sh, &lo);
      if (k < 0) return -1;
      if (k == 1) {
        if (sh.neg) return rx_fail(r, "negated shorthand inside a class is not supported");
        for (int i = 0; i < sh.n; i++) {
          if (class_add(r, c, sh.r[i].lo, sh.r[i].hi)) return -1;
        }
        continue;
      }
    } else if (*r->p == '[' && r->end - r->p > 1 && r->p[1] == ':') {
      return rx_fail(r, "POSIX classes are not supported");
    } else if (rx_cp(r, &lo)) {
      return -1;
    }
    hi = lo;
    if (r->end - r->p > 1 && *r->p == '-' && r->p[1] != ']') {
      r->p++;
      if (*r->p == '\\') {
        r->p++;
        rx_class sh;
        int k = rx_escape(r, &sh, &hi);
        if (k < 0) return -1;
        if (k == 1) return rx_fail(r, "bad range in character class");
      } else if (rx_cp(r, &hi)) {
        return -1;
      }
    }
    if (class_add(r, c, lo, hi)) return -1;
  }
}

static int rx_alt(rx *r, sy_buf *out, int *nullable);

/* One atom as a self-contained GBNF term. */
static int rx_atom(rx *r, sy_buf *out, int *nullable) {
  char c = *r->p;
  *nullable = 0;
  if (c == '(') {
    r->p++;
    if (r->p < r->end && *r->p == '?') {
      if (r->end - r->p > 1 && r->p[1] == ':') {
        r->p += 2;
      } else if (r->end - r->p > 2 && r->p[1] == '<' && r->p[2] != '=' && r->p[2] != '!') {
        while (r->p < r->end && *r->p != '>') r->p++; /* a named group is a group */
        if (r->p++ >= r->end) return rx_fail(r, "bad group name");
      } else {
        return rx_fail(r, "lookaround and inline flags are not supported");
      }
    }
    if (++r->depth > JS_MAX_PATTERN_DEPTH) return rx_fail(r, "groups nested too deeply");
    sy_buf inner = new_buf();
    int rc = rx_alt(r, &inner, nullable);
    r->depth--;
    if (rc == 0 && (r->p >= r->end || *r->p != ')')) rc = rx_fail(r, "missing ')'");
    if (rc == 0) {
      r->p++;
      rc = sy_buf_printf(out, "(%s)", inner.len ? inner.data : "\"\"") ? fail_size(r->j) : 0;
    }
    sy_buf_free(&inner);
    return rc;
  }
  rx_class cls;
  uint32_t cp;
  if (c == '[') {
    r->p++;
    return rx_bracket(r, &cls) ? -1 : class_emit(r, &cls, out);
  }
  if (c == '.') {
    r->p++;
    return put_prim(r->j, out, P_PCHAR);
  }
  if (c == '\\') {
    r->p++;
    int k = rx_escape(r, &cls, &cp);
    if (k < 0) return -1;
    if (k == 1) return class_emit(r, &cls, out);
  } else if (c == '^' || c == '$') {
    return rx_fail(r, "anchors are only supported at the start and end");
  } else if (c == '*' || c == '+' || c == '?' || c == '{') {
    return rx_fail(r, "nothing to repeat");
  } else if (rx_cp(r, &cp)) {
    return -1;
  }
  return put_json_char(out, cp) ? fail_size(r->j) : 0;
}

static int rx_int(rx *r, int64_t *v) {
  if (r->p >= r->end || *r->p < '0' || *r->p > '9') return -1;
  *v = 0;
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
    *v = *v * 10 + (*r->p++ - '0');
    if (*v > 1000000) return -1;
  }
  return 0;
}

/* A sequence of quantified atoms. */
static int rx_seq(rx *r, sy_buf *out, int *nullable) {
  *nullable = 1;
  while (r->p < r->end && *r->p != '|' && *r->p != ')') {
    sy_buf atom = new_buf();
    int an = 0;
    if (rx_atom(r, &atom, &an)) {
      sy_buf_free(&atom);
      return -1;
    }
    int64_t mn = 1, mx = 1;
    const char *q = r->p;
    if (r->p < r->end) {
      if (*r->p == '*')
        mn = 0, mx = JS_UNBOUNDED, r->p++;
      else if (*r->p == '+')
        mn = 1, mx = JS_UNBOUNDED, r->p++;
      else if (*r->p == '?')
        mn = 0, mx = 1, r->p++;
      else if (*r->p == '{') {
        r->p++;
        if (rx_int(r, &mn)) goto bad_brace;
        mx = mn;
        if (r->p < r->end && *r->p == ',') {
          r->p++;
          mx = JS_UNBOUNDED;
          if (r->p < r->end && *r->p != '}' && rx_int(r, &mx)) goto bad_brace;
        }
        if (r->p >= r->end || *r->p != '}' || mx < mn) goto bad_brace;
        r->p++;
      }
    }
    if (r->p != q && r->p < r->end) {
      if (*r->p == '?')
        r->p++; /* lazy: same language */
      else if (*r->p == '+') {
        sy_buf_free(&atom);
        return rx_fail(r, "possessive quantifiers are not supported");
      }
    }
    int rc = 0;
    const char *sep = out->len ? " " : "";
    if (mx == JS_UNBOUNDED && an) {
      rc = rx_fail(r, "a repeated group that can match the empty string");
    } else if (mn > JS_MAX_REPEAT || (mx != JS_UNBOUNDED && mx > JS_MAX_REPEAT)) {
      rc = rx_fail(r, "repetition bound too large (limit 1000)");
    } else if (mn == 1 && mx == 1) {
      rc = sy_buf_printf(out, "%s%s", sep, atom.data);
    } else if (mn == 0 && mx == 1) {
      rc = sy_buf_printf(out, "%s%s?", sep, atom.data);
    } else if (mx == JS_UNBOUNDED && mn <= 1) {
      rc = sy_buf_printf(out, "%s%s%s", sep, atom.data, mn ? "+" : "*");
    } else {
      char hint[96];
      child_hint(hint, sizeof hint, r->hint, "rep");
      const char *name = rep_rule(r->j, hint, atom.data, mn, mx);
      rc = name ? sy_buf_printf(out, "%s%s", sep, name) : -1;
    }
    sy_buf_free(&atom);
    if (rc) return r->j->failed ? -1 : fail_size(r->j);
    if (!(an || mn == 0)) *nullable = 0;
    continue;
  bad_brace:
    sy_buf_free(&atom);
    return rx_fail(r, "bad {m,n} quantifier");
  }
  return 0;
}

static int rx_alt(rx *r, sy_buf *out, int *nullable) {
  *nullable = 0;
  for (;;) {
    sy_buf seq = new_buf();
    int sn = 0;
    if (rx_seq(r, &seq, &sn)) {
      sy_buf_free(&seq);
      return -1;
    }
    *nullable |= sn;
    int rc = sy_buf_printf(out, "%s%s", out->len ? " | " : "", seq.len ? seq.data : "\"\"");
    sy_buf_free(&seq);
    if (rc) return fail_size(r->j);
    if (r->p < r->end && *r->p == '|') {
      r->p++;
      continue;
    }
    return 0;
  }
}

static int visit_pattern(js *j, const char *pat, const char *hint, sy_buf *out) {
  size_t n = strlen(pat);
  if (n > JS_MAX_PATTERN) return fail(j, "pattern too long (limit %d bytes)", JS_MAX_PATTERN);
  rx r = {j, pat, pat, pat + n, hint, 0};
  int start = n && pat[0] == '^';
  if (start) r.p++;
  int end = 0;
  if (r.end > r.p && r.end[-1] == '$') {
    size_t bs = 0;
    for (const char *q = r.end - 2; q >= r.p && *q == '\\'; q--) bs++;
    if (bs % 2 == 0) {
      end = 1;
      r.end--;
    }
  }
  sy_buf body = new_buf();
  int nullable;
  int rc = rx_alt(&r, &body, &nullable);
  if (rc == 0 && r.p < r.end) rc = rx_fail(&r, "unbalanced ')'");
  const char *ch = rc ? NULL : prim(j, P_CHAR);
  const char *sp = rc ? NULL : prim(j, P_SPACE);
  if (rc == 0 && (!ch || !sp)) rc = -1;
  /* an unanchored pattern may match anywhere in the string */
  if (rc == 0 &&
      sy_buf_printf(out, "\"\\\"\" %s%s(%s) %s%s\"\\\"\" %s", start ? "" : ch, start ? "" : "* ",
                    body.len ? body.data : "\"\"", end ? "" : ch, end ? "" : "* ", sp) != 0) {
    rc = fail_size(j);
  }
  sy_buf_free(&body);
  return rc;
}

/* ---- strings, arrays, objects --------------------------------------------------------------- */

/* A non-negative integer keyword: 1 and *v when present, 0 when absent, -1 (failed) when bad. */
static int get_count(js *j, const json_t *s, const char *k, int64_t *v) {
  const json_t *x = json_object_get(s, k);
  if (!x) return 0;
  double d = json_is_number(x) ? json_number_value(x) : -1;
  if (d < 0 || d != floor(d)) return fail(j, "'%s' must be a non-negative integer", k);
  *v = d > 1e12 ? (int64_t)1e12 : (int64_t)d;
  return 1;
}

/* Bounds [mn, mx] from two count keywords; mx above the cap is dropped (docs/GRAMMAR.md). */
static int get_bounds(js *j, const json_t *s, const char *kmin, const char *kmax, int64_t *mn,
                      int64_t *mx) {
  *mn = 0;
  *mx = JS_UNBOUNDED;
  if (get_count(j, s, kmin, mn) < 0 || get_count(j, s, kmax, mx) < 0) return -1;
  if (*mn > *mx) return fail(j, "'%s' is greater than '%s'", kmin, kmax);
  if (*mn > JS_MAX_REPEAT) return fail(j, "'%s' too large (limit %d)", kmin, JS_MAX_REPEAT);
  if (*mx > JS_MAX_REPEAT) *mx = JS_UNBOUNDED;
  return 0;
}

static enum prim format_prim(const char *f) {
  if (!f) return P_COUNT;
  if (strcmp(f, "date") == 0) return P_DATE;
  if (strcmp(f, "time") == 0) return P_TIME;
  if (strcmp(f, "date-time") == 0) return P_DATETIME;
  if (strcmp(f, "uuid") == 0) return P_UUID;
  return P_COUNT; /* other formats annotate only */
}

static int visit_string(js *j, const json_t *s, const char *hint, sy_buf *out) {
  const json_t *f = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
  enum prim fp = format_prim(json_string_value(f));
  int lengths = json_object_get(s, "minLength") || json_object_get(s, "maxLength");
  if (pat) {
    if (!json_is_string(pat)) return fail(j, "'pattern' must be a string");
    if (lengths) return fail(j, "'pattern' together with 'minLength'/'maxLength' is not supported");
    if (fp != P_COUNT) return fail(j, "'pattern' together with 'format' is not supported");
    return visit_pattern(j, json_string_value(pat), hint, out);
  }
  const char *sp = prim(j, P_SPACE);
  if (!sp) return -1;
  if (fp != P_COUNT) {
    const char *r = prim(j, fp);
    if (!r || sy_buf_printf(out, "\"\\\"\" %s \"\\\"\" %s", r, sp)) return fail_size(j);
    return 0;
  }
  int64_t mn, mx;
  if (!lengths) return put_prim(j, out, P_STRING);
  if (get_bounds(j, s, "minLength", "maxLength", &mn, &mx)) return -1;
  if (mn == 0 && mx == JS_UNBOUNDED) return put_prim(j, out, P_STRING);
  const char *ch = prim(j, P_CHAR);
  if (!ch) return -1;
  char h[128];
  child_hint(h, sizeof h, hint, "chars");
  const char *chars = rep_rule(j, h, ch, mn, mx);
  if (!chars) return -1;
  return sy_buf_printf(out, "\"\\\"\" %s \"\\\"\" %s", chars, sp) ? fail_size(j) : 0;
}

/* `("," space item){mn,mx}` as a term (its own rule when bounded). */
static const char *rest_items(js *j, const char *item, int64_t mn, int64_t mx, const char *hint,
                              sy_buf *tmp) {
  const char *sp = prim(j, P_SPACE);
  if (!sp) return NULL;
  sy_buf_free(tmp);
  int rc;
  if (mx == JS_UNBOUNDED && mn == 0) {
    rc = sy_buf_printf(tmp, "(\",\" %s %s)*", sp, item);
  } else {
    char h[128], group[256];
    child_hint(h, sizeof h, hint, "rest");
    snprintf(group, sizeof group, "(\",\" %s %s)", sp, item);
    const char *name = rep_rule(j, h, group, mn, mx);
    rc = !name || sy_buf_puts(tmp, name);
  }
  if (rc) {
    if (!j->failed) fail_size(j);
    return NULL;
  }
  return tmp->data;
}

static int visit_array(js *j, const json_t *s, const char *hint, int depth, sy_buf *out) {
  const json_t *items = json_object_get(s, "items");
  const json_t *tuple = json_object_get(s, "prefixItems");
  const json_t *more = items;
  if (!tuple && json_is_array(items)) { /* draft 4 tuples */
    tuple = items;
    more = json_object_get(s, "additionalItems");
  }
  if (tuple && !json_is_array(tuple)) return fail(j, "'prefixItems' must be an array");
  int64_t mn, mx;
  if (get_bounds(j, s, "minItems", "maxItems", &mn, &mx)) return -1;
  const char *sp = prim(j, P_SPACE);
  if (!sp) return -1;
  size_t np = tuple ? json_array_size(tuple) : 0;
  if (np == 0) tuple = NULL;
  /* a tuple is written whole; more items only when `items` allows them (docs/GRAMMAR.md) */
  if (!tuple && !more) more = json_true();
  if (json_is_false(more)) mx = 0;
  const char *item = NULL;
  char h[128];
  j->nesting++;
  if (more && !json_is_false(more)) {
    child_hint(h, sizeof h, hint, "item");
    item = visit(j, more, h, depth + 1);
    if (!item) goto out;
  }
  if (sy_buf_printf(out, "\"[\" %s", sp)) goto full;
  for (size_t i = 0; i < np; i++) {
    snprintf(h, sizeof h, "%s-%zu", hint, i);
    const char *t = visit(j, json_array_get(tuple, i), h, depth + 1);
    if (!t) goto err;
    if (i ? sy_buf_printf(out, " \",\" %s %s", sp, t) : sy_buf_printf(out, " %s", t)) goto full;
  }
  if (tuple && np > 0) {
    if (item && (mx == JS_UNBOUNDED || mx > (int64_t)np)) {
      int64_t emn = mn > (int64_t)np ? mn - (int64_t)np : 0;
      int64_t emx = mx == JS_UNBOUNDED ? mx : mx - (int64_t)np;
      sy_buf tmp = new_buf();
      const char *r = rest_items(j, item, emn, emx, hint, &tmp);
      int rc = !r || sy_buf_printf(out, " %s", r);
      sy_buf_free(&tmp);
      if (rc) goto err;
    }
  } else if (mx > 0) {
    sy_buf tmp = new_buf();
    const char *r =
        rest_items(j, item, mn > 1 ? mn - 1 : 0, mx == JS_UNBOUNDED ? mx : mx - 1, hint, &tmp);
    int rc = !r || sy_buf_printf(out, mn ? " %s %s" : " (%s %s)?", item, r);
    sy_buf_free(&tmp);
    if (rc) goto err;
  }
  if (sy_buf_printf(out, " \"]\" %s", sp)) goto full;
  j->nesting--;
  return 0;
err:
  if (j->failed) goto out;
full:
  fail_size(j);
out:
  j->nesting--;
  return -1;
}

#define NS_MAX_NAMES 128
#define NS_MAX_LEN 64

/* Decode UTF-8 (valid: jansson checked it) into code points; -1 when longer than max. */
static int utf8_cps(const char *s, uint32_t *cps, int max) {
  int n = 0;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    if (n >= max) return -1;
    int k = p[0] < 0x80 ? 1 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;
    uint32_t v = k == 1 ? p[0] : k == 2 ? p[0] & 0x1F : k == 3 ? p[0] & 0x0F : p[0] & 0x07;
    for (int i = 1; i < k; i++) {
      if (!p[i]) return -1;
      v = (v << 6) | (p[i] & 0x3F);
    }
    p += k;
    cps[n++] = v;
  }
  return n;
}

/* Alternatives for the rest of a key, given the names in set that share its first pos
 * characters: follow one of them, or leave them all (then anything), or end if none ends here. */
static int ns_node(js *j, uint32_t (*cps)[NS_MAX_LEN], const int *len, const int *set, int nset,
                   int pos, sy_buf *b) {
  const char *ch = prim(j, P_CHAR), *sp = prim(j, P_SPACE);
  if (!ch || !sp) return -1;
  int rc = 0, terminal = 0;
  sy_buf cls = new_buf();
  int sub[NS_MAX_NAMES];
  for (int i = 0; i < nset && !rc; i++) {
    int a = set[i];
    if (len[a] == pos) {
      terminal = 1;
      continue;
    }
    uint32_t c = cps[a][pos];
    int seen = 0;
    for (int k = 0; k < i; k++) seen |= len[set[k]] > pos && cps[set[k]][pos] == c;
    if (seen) continue;
    int nsub = 0;
    for (int k = i; k < nset; k++) {
      if (len[set[k]] > pos && cps[set[k]][pos] == c) sub[nsub++] = set[k];
    }
    if (c >= 0x20 && c != '"' && c != '\\') rc |= sy_gbnf_class_cp(&cls, c);
    rc |= put_json_char(b, c);
    rc |= sy_buf_puts(b, " (");
    if (!rc) rc = ns_node(j, cps, len, sub, nsub, pos + 1, b);
    rc |= sy_buf_puts(b, ") | ");
  }
  if (!rc) {
    rc |= sy_buf_printf(b,
                        "([^%s\\x22\\x5C\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" "
                        "[0-9a-fA-F]{4})) %s* \"\\\"\" %s",
                        cls.data ? cls.data : "", ch, sp);
    if (!terminal) rc |= sy_buf_printf(b, " | \"\\\"\" %s", sp);
  }
  sy_buf_free(&cls);
  return rc ? (j->failed ? -1 : fail_size(j)) : 0;
}

/* A key rule: any JSON string but the given names (the string rule when there are too many
 * or too long names to list; docs/GRAMMAR.md). */
static const char *key_not_in(js *j, const char **names, int n, const char *hint) {
  if (n == 0 || n > NS_MAX_NAMES) return prim(j, P_STRING);
  uint32_t(*cps)[NS_MAX_LEN] = malloc((size_t)n * sizeof *cps);
  int len[NS_MAX_NAMES], set[NS_MAX_NAMES];
  if (!cps) {
    fail_size(j);
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    if ((len[i] = utf8_cps(names[i], cps[i], NS_MAX_LEN)) < 0) {
      free(cps);
      return prim(j, P_STRING);
    }
    set[i] = i;
  }
  sy_buf b = new_buf();
  int rc =
      sy_buf_puts(&b, "\"\\\"\" (") || ns_node(j, cps, len, set, n, 0, &b) || sy_buf_puts(&b, ")");
  free(cps);
  if (rc) {
    sy_buf_free(&b);
    if (!j->failed) fail_size(j);
    return NULL;
  }
  char h[128];
  child_hint(h, sizeof h, hint, "key");
  return add_rule(j, h, &b);
}

#define OBJ_MAX_PROPS 1024

static int visit_object(js *j, const json_t *s, const char *hint, int depth, sy_buf *out) {
  const json_t *props = json_object_get(s, "properties");
  const json_t *req = json_object_get(s, "required");
  const json_t *ap = json_object_get(s, "additionalProperties");
  if (props && !json_is_object(props)) return fail(j, "'properties' must be an object");
  if (req && !json_is_array(req)) return fail(j, "'required' must be an array");
  if (ap && !json_is_boolean(ap) && !json_is_object(ap)) {
    return fail(j, "'additionalProperties' must be a boolean or a schema");
  }
  if (!props && !json_array_size(req) && (!ap || json_is_true(ap))) {
    return put_prim(j, out, P_OBJECT);
  }
  /* listed properties only, unless additionalProperties says otherwise (as llama.cpp) */
  int extra = ap ? !json_is_false(ap) : !props;
  size_t np = (props ? json_object_size(props) : 0) + json_array_size(req);
  if (np > OBJ_MAX_PROPS) return fail(j, "too many properties (limit %d)", OBJ_MAX_PROPS);
  const char **names = calloc(np + 1, sizeof *names);
  const char **kvs = calloc(np + 1, sizeof *kvs);
  char *isreq = calloc(np + 1, 1);
  size_t *order = calloc(np + 1, sizeof *order);
  const char *sp = prim(j, P_SPACE);
  int rc = (!names || !kvs || !isreq || !order) ? fail_size(j) : sp ? 0 : -1;
  size_t n = 0;
  const char *k;
  json_t *v;
  if (rc == 0 && props) {
    json_object_foreach((json_t *)props, k, v) names[n++] = k;
  }
  for (size_t i = 0; rc == 0 && i < json_array_size(req); i++) {
    const json_t *r = json_array_get(req, i);
    if (!json_is_string(r)) {
      rc = fail(j, "'required' must list strings");
      break;
    }
    size_t m = 0;
    while (m < n && strcmp(names[m], json_string_value(r)) != 0) m++;
    if (m == n) names[n++] = json_string_value(r); /* required, not described: any value */
    isreq[m] = 1;
  }
  /* one rule per key-value pair, required ones first, each group in schema order */
  size_t nreq = 0, no = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (isreq[i]) order[nreq++] = i;
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!isreq[i]) order[nreq + no++] = i;
  }
  j->nesting++;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    size_t m = order[i];
    const json_t *ps = props ? json_object_get(props, names[m]) : NULL;
    char h[128];
    child_hint(h, sizeof h, hint, names[m]);
    const char *val = visit(j, ps ? ps : json_true(), h, depth + 1);
    sy_buf b = new_buf();
    json_t *key = json_string(names[m]);
    if (!val || !key || put_json_lit(j, &b, key) ||
        sy_buf_printf(&b, " %s \":\" %s %s", sp, sp, val)) {
      rc = j->failed ? -1 : fail_size(j);
    } else {
      size_t hl = strlen(h);
      snprintf(h + hl, sizeof h - hl, "-kv");
      rc = (kvs[i] = add_rule(j, h, &b)) ? 0 : -1;
    }
    json_decref(key);
    sy_buf_free(&b);
  }
  /* the additional pairs: a key none of the names, and the additionalProperties value */
  const char *xkv = NULL;
  if (rc == 0 && extra) {
    char h[128];
    child_hint(h, sizeof h, hint, "additional");
    const char *key = key_not_in(j, names, (int)n, hint);
    const char *val = key ? visit(j, ap ? ap : json_true(), h, depth + 1) : NULL;
    sy_buf b = new_buf();
    if (!val || sy_buf_printf(&b, "%s \":\" %s %s", key, sp, val)) {
      rc = j->failed ? -1 : fail_size(j);
    } else {
      child_hint(h, sizeof h, hint, "additional-kv");
      rc = (xkv = add_rule(j, h, &b)) ? 0 : -1;
    }
    sy_buf_free(&b);
  }
  j->nesting--;
  /* rest[i]: the optional pairs from i on, each after a comma; first[i]: the same when no pair
   * was written yet, so the first one present has no comma */
  const char *rest = NULL, *first = NULL;
  char h[128];
  sy_buf b = new_buf();
  if (rc == 0 && xkv) {
    child_hint(h, sizeof h, hint, "rest");
    if (sy_buf_printf(&b, "(\",\" %s %s)*", sp, xkv) || !(rest = add_rule(j, h, &b))) rc = -1;
    child_hint(h, sizeof h, hint, "first");
    if (rc == 0 && !nreq &&
        (sy_buf_printf(&b, "%s %s", xkv, rest) || !(first = add_rule(j, h, &b)))) {
      rc = -1;
    }
  }
  for (size_t i = n; rc == 0 && i-- > nreq;) {
    const char *next_rest = rest;
    child_hint(h, sizeof h, hint, "rest");
    if (sy_buf_printf(&b, "(\",\" %s %s)?%s%s", sp, kvs[i], rest ? " " : "", rest ? rest : "") ||
        !(rest = add_rule(j, h, &b))) {
      rc = -1;
      break;
    }
    if (nreq) continue;
    child_hint(h, sizeof h, hint, "first");
    if (sy_buf_printf(&b, "%s%s%s%s%s", kvs[i], next_rest ? " " : "", next_rest ? next_rest : "",
                      first ? " | " : "", first ? first : "") ||
        !(first = add_rule(j, h, &b))) {
      rc = -1;
    }
  }
  sy_buf_free(&b);
  if (rc == 0) rc = sy_buf_printf(out, "\"{\" %s", sp);
  for (size_t i = 0; rc == 0 && i < nreq; i++) {
    rc = i ? sy_buf_printf(out, " \",\" %s %s", sp, kvs[i]) : sy_buf_printf(out, " %s", kvs[i]);
  }
  if (rc == 0 && nreq && rest) rc = sy_buf_printf(out, " %s", rest);
  if (rc == 0 && !nreq && first) rc = sy_buf_printf(out, " %s?", first);
  if (rc == 0) rc = sy_buf_printf(out, " \"}\" %s", sp);
  if (rc && !j->failed) fail_size(j);
  free(names);
  free(kvs);
  free(isreq);
  free(order);
  return rc ? -1 : 0;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static int visit_type(js *j, const json_t *s, const char *type, const char *hint, int depth,
                      sy_buf *out) {
  if (strcmp(type, "string") == 0) return visit_string(j, s, hint, out);
  if (strcmp(type, "integer") == 0) return visit_integer(j, s, out);
  if (strcmp(type, "number") == 0) return visit_number(j, s, out);
  if (strcmp(type, "boolean") == 0) return put_prim(j, out, P_BOOLEAN);
  if (strcmp(type, "null") == 0) return put_prim(j, out, P_NULL);
  if (strcmp(type, "object") == 0) return visit_object(j, s, hint, depth, out);
  if (strcmp(type, "array") == 0) return visit_array(j, s, hint, depth, out);
  return fail(j, "unknown type '%s'", type);
}

/* The type a schema without "type" implies by its keywords; NULL: any value. */
static const char *implied_type(const json_t *s) {
  static const struct {
    const char *key, *type;
  } hints[] = {{"properties", "object"},       {"additionalProperties", "object"},
               {"required", "object"},         {"items", "array"},
               {"prefixItems", "array"},       {"minItems", "array"},
               {"maxItems", "array"},          {"minLength", "string"},
               {"maxLength", "string"},        {"pattern", "string"},
               {"minimum", "number"},          {"maximum", "number"},
               {"exclusiveMinimum", "number"}, {"exclusiveMaximum", "number"}};
  for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
    if (json_object_get(s, hints[i].key)) return hints[i].type;
  }
  return NULL;
}

static int visit_body(js *j, const json_t *s, const char *hint, int depth, sy_buf *out) {
  if (j->failed) return -1;
  if (++j->work > JS_MAX_WORK) return fail(j, "schema too complex");
  if (depth > JS_MAX_DEPTH) return fail(j, "schema nested too deeply (limit %d)", JS_MAX_DEPTH);
  if (json_is_true(s)) return put_prim(j, out, P_VALUE);
  if (json_is_false(s)) return fail(j, "the schema 'false' matches nothing");
  if (!json_is_object(s)) return fail(j, "a schema must be an object or a boolean");
  if (check_keywords(j, s)) return -1;
  if (json_object_get(s, "$ref")) return visit_ref(j, s, depth, out);
  if (json_object_get(s, "allOf")) return visit_allof(j, s, hint, depth, out);
  const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
  if (any && one) return fail(j, "anyOf together with oneOf is not supported");
  if (any || one) return visit_anyof(j, s, any ? any : one, hint, depth, out);

  const json_t *nullable = json_object_get(s, "nullable"); /* OpenAPI 3.0 */
  if (json_is_true(nullable)) {
    json_t *c = json_copy((json_t *)s);
    char h[128];
    child_hint(h, sizeof h, hint, "nonnull");
    int rc = !c || json_object_del(c, "nullable") ? fail_size(j) : 0;
    const char *inner = rc ? NULL : visit(j, c, h, depth + 1);
    json_decref(c);
    if (!inner) return -1;
    if (put_alt(j, out, inner)) return -1;
    return put_alt(j, out, prim(j, P_NULL));
  }
  const json_t *cv = json_object_get(s, "const");
  if (cv) {
    const char *sp = prim(j, P_SPACE);
    if (!sp || put_json_lit(j, out, cv)) return -1;
    return sy_buf_printf(out, " %s", sp) ? fail_size(j) : 0;
  }
  const json_t *ev = json_object_get(s, "enum");
  if (ev) {
    if (!json_is_array(ev) || json_array_size(ev) == 0) {
      return fail(j, "'enum' must be a non-empty array");
    }
    if (json_array_size(ev) > JS_MAX_ENUM) return fail(j, "enum too large (limit %d)", JS_MAX_ENUM);
    j->work += json_array_size(ev);
    if (j->work > JS_MAX_WORK) return fail(j, "schema too complex");
    const char *sp = prim(j, P_SPACE);
    if (!sp || sy_buf_puts(out, "(")) return fail_size(j);
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
      if (i && sy_buf_puts(out, " | ")) return fail_size(j);
      if (put_json_lit(j, out, e)) return -1;
    }
    return sy_buf_printf(out, ") %s", sp) ? fail_size(j) : 0;
  }
  const json_t *t = json_object_get(s, "type");
  if (!t) {
    const char *it = implied_type(s);
    return it ? visit_type(j, s, it, hint, depth, out) : put_prim(j, out, P_VALUE);
  }
  if (json_is_string(t)) return visit_type(j, s, json_string_value(t), hint, depth, out);
  if (!type_bits(t)) return fail(j, "'type' must be a type name or an array of them");
  /* several types: one alternative each */
  size_t i;
  json_t *e;
  json_array_foreach(t, i, e) {
    json_t *c = json_copy((json_t *)s);
    char h[128];
    child_hint(h, sizeof h, hint, json_string_value(e));
    int rc = !c || json_object_set(c, "type", e) ? fail_size(j) : 0;
    const char *name = rc ? NULL : visit(j, c, h, depth + 1);
    json_decref(c);
    if (put_alt(j, out, name)) return -1;
  }
  return 0;
}

/* ---- entry points --------------------------------------------------------------------------- */

static int finish(js *j, char **out) {
  if (j->failed) return -1;
  char *text = sy_gbnf_render(&j->g);
  if (!text) return fail_size(j);
  *out = text;
  return 0;
}

int sy_schema_to_gbnf(const json_t *schema, char **out, char *err, size_t err_len) {
  js j;
  js_init(&j, err, err_len);
  *out = NULL;
  j.root = schema;
  const char *root = sy_gbnf_reserve(&j.g, "root");
  sy_buf b = new_buf();
  int rc = !root ? fail_size(&j) : visit_body(&j, schema, "root", 0, &b);
  if (rc == 0 && sy_gbnf_define(&j.g, root, b.data) != 0) rc = fail_size(&j);
  sy_buf_free(&b);
  if (rc == 0) rc = finish(&j, out);
  js_free(&j);
  return rc;
}

static const char JSON_OBJECT_GBNF[] =
    "root ::= object\n"
    "value ::= object | array | string | number | (\"true\" | \"false\" | \"null\") space\n"
    "object ::= \"{\" space (string \":\" space value (\",\" space string \":\" space value)*)? "
    "\"}\" space\n"
    "array ::= \"[\" space (value (\",\" space value)*)? \"]\" space\n"
    "string ::= \"\\\"\" char* \"\\\"\" space\n"
    "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})\n"
    "number ::= \"-\"? integral-part (\".\" decimal-part)? ([eE] [-+]? [0-9]{1,3})? space\n"
    "integral-part ::= \"0\" | [1-9] [0-9]{0,15}\n"
    "decimal-part ::= [0-9]{1,16}\n"
    "space ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

const char *sy_gbnf_json_object(void) { return JSON_OBJECT_GBNF; }

/* ---- forced tool calls ---------------------------------------------------------------------- */

enum tc_format { TC_HERMES, TC_LLAMA3, TC_MISTRAL, TC_QWEN3_CODER };

/* Any text that does not contain stop (ASCII): a right-recursive rule per matched prefix of
 * stop (KMP states), so llama.cpp keeps a flat stack however long the text. */
static const char *until_rule(js *j, const char *stop, const char *hint) {
  size_t L = strlen(stop);
  const char *names[32];
  if (L == 0 || L >= 32) return NULL;
  for (size_t k = 0; k < L; k++) {
    char h[96];
    snprintf(h, sizeof h, "%s-%zu", hint, k);
    if (!(names[k] = sy_gbnf_reserve(&j->g, h))) {
      fail_size(j);
      return NULL;
    }
  }
  char buf[64];
  for (size_t k = 0; k < L; k++) {
    sy_buf b = new_buf();
    int rc = sy_buf_puts(&b, "([^");
    for (size_t i = 0; i < L; i++) rc |= sy_gbnf_class_cp(&b, (unsigned char)stop[i]);
    rc |= sy_buf_printf(&b, "] %s", names[0]);
    for (size_t i = 0; i < L; i++) {
      char c = stop[i];
      if (memchr(stop, c, i)) continue; /* each character once */
      /* the longest prefix of stop that ends the text matched so far plus c */
      memcpy(buf, stop, k);
      buf[k] = c;
      size_t next = k + 1;
      while (next > 0 && memcmp(buf + k + 1 - next, stop, next) != 0) next--;
      if (next == L) continue; /* that would complete stop */
      rc |= sy_buf_puts(&b, " | ");
      rc |= sy_gbnf_lit(&b, &c, 1);
      rc |= sy_buf_printf(&b, " %s", names[next]);
    }
    rc |= sy_buf_puts(&b, ")?");
    if (rc || sy_gbnf_define(&j->g, names[k], b.data) != 0) {
      sy_buf_free(&b);
      fail_size(j);
      return NULL;
    }
    sy_buf_free(&b);
  }
  return names[0];
}

/* Does a parameter schema ask for a plain string (written raw by qwen3_coder)? */
static int is_string_schema(const json_t *s) {
  const json_t *t = json_object_get(s, "type");
  return json_is_string(t) && strcmp(json_string_value(t), "string") == 0;
}

/* qwen3_coder: the <parameter=...> blocks of one function, required ones first. */
static int qwen3_coder_params(js *j, const json_t *params, const char *hint, sy_buf *out) {
  const json_t *props = json_object_get(params, "properties");
  const json_t *req = json_object_get(params, "required");
  if (props && !json_is_object(props)) return fail(j, "'properties' must be an object");
  for (int pass = 0; pass < 2 && props; pass++) {
    const char *k;
    json_t *ps;
    json_object_foreach((json_t *)props, k, ps) {
      int isreq = 0;
      for (size_t i = 0; i < json_array_size(req); i++) {
        const char *r = json_string_value(json_array_get(req, i));
        isreq |= r && strcmp(r, k) == 0;
      }
      if (isreq != (pass == 0)) continue;
      if (strlen(k) > JS_MAX_NAME) return fail(j, "parameter name too long");
      char h[128];
      child_hint(h, sizeof h, hint, k);
      const json_t *rs = ps; /* follow a top-level $ref to see the type */
      if (json_is_object(ps) && json_object_get(ps, "$ref")) {
        j->nesting++;
        rs = deref(j, ps);
        j->nesting--;
        if (!rs) return -1;
      }
      const char *val = NULL;
      sy_buf vb = new_buf();
      const json_t *ev = json_object_get(rs, "enum");
      if (is_string_schema(rs) && json_is_array(ev) && json_array_size(ev) > 0) {
        size_t i;
        json_t *e;
        int rc = json_array_size(ev) > JS_MAX_ENUM ? fail(j, "enum too large") : 0;
        json_array_foreach(ev, i, e) {
          if (rc) break;
          if (!json_is_string(e)) {
            rc = fail(j, "a string enum holds a non-string");
            break;
          }
          rc = (i && sy_buf_puts(&vb, " | ")) ||
               sy_gbnf_lit(&vb, json_string_value(e), json_string_length(e));
        }
        if (rc) {
          sy_buf_free(&vb);
          return j->failed ? -1 : fail_size(j);
        }
        val = add_rule(j, h, &vb);
      } else if (is_string_schema(rs)) {
        val = until_rule(j, "</parameter>", "xml-text");
      } else {
        j->nesting++;
        val = visit(j, ps, h, 1);
        j->nesting--;
      }
      sy_buf_free(&vb);
      if (!val) return -1;
      sy_buf b = new_buf();
      char lit[JS_MAX_NAME + 16];
      int n = snprintf(lit, sizeof lit, "<parameter=%s>\n", k);
      int rc =
          sy_gbnf_lit(&b, lit, (size_t)n) || sy_buf_printf(&b, " %s \"\\n</parameter>\\n\"", val);
      size_t hl = strlen(h);
      snprintf(h + hl, sizeof h - hl, "-param");
      const char *pr = rc ? NULL : add_rule(j, h, &b);
      sy_buf_free(&b);
      if (!pr || sy_buf_printf(out, " %s%s", pr, pass ? "?" : "")) {
        return j->failed ? -1 : fail_size(j);
      }
    }
  }
  return 0;
}

/* One call of one function, in the format's shape. */
static const char *tool_call_rule(js *j, enum tc_format f, const char *name, const json_t *params,
                                  int idx) {
  char hint[64];
  snprintf(hint, sizeof hint, "tool%d", idx);
  static const char EMPTY[] = "{\"type\": \"object\", \"properties\": {}}";
  json_t *empty = NULL;
  if (!params) params = empty = json_loads(EMPTY, 0, NULL);
  if (!params) {
    fail_size(j);
    return NULL;
  }
  /* $refs in parameters point into parameters; each tool has its own */
  for (size_t i = 0; i < j->nrefs; i++) free(j->refs[i].ref);
  j->nrefs = 0;
  j->root = params;
  sy_buf b = new_buf();
  const char *sp = prim(j, P_SPACE);
  int rc = sp ? 0 : -1;
  if (f == TC_QWEN3_CODER) {
    char lit[JS_MAX_NAME + 16];
    int n = snprintf(lit, sizeof lit, "<function=%s>\n", name);
    if (rc == 0 && sy_gbnf_lit(&b, lit, (size_t)n)) rc = fail_size(j);
    const json_t *ps = deref(j, params);
    if (rc == 0 && !ps) rc = -1;
    if (rc == 0 && !json_is_object(ps))
      rc = fail(j, "tool '%s': parameters must be an object", name);
    if (rc == 0) rc = check_keywords(j, ps);
    if (rc == 0) rc = qwen3_coder_params(j, ps, hint, &b);
    if (rc == 0 && sy_buf_puts(&b, " \"</function>\"")) rc = fail_size(j);
  } else {
    char h[80];
    snprintf(h, sizeof h, "%s-args", hint);
    const char *args = rc ? NULL : visit(j, params, h, 0);
    json_t *jn = json_string(name);
    if (!args || !jn) {
      rc = -1;
    } else if (sy_buf_printf(&b, "\"{\" %s \"\\\"name\\\"\" %s \":\" %s ", sp, sp, sp) ||
               put_json_lit(j, &b, jn) ||
               sy_buf_printf(&b, " %s \",\" %s \"\\\"%s\\\"\" %s \":\" %s %s", sp, sp,
                             f == TC_LLAMA3 ? "parameters" : "arguments", sp, sp, args)) {
      rc = -1;
    } else if (f == TC_MISTRAL &&
               sy_buf_printf(&b,
                             " (\",\" %s \"\\\"id\\\"\" %s \":\" %s \"\\\"\" [a-zA-Z0-9]{9} "
                             "\"\\\"\" %s)?",
                             sp, sp, sp, sp)) {
      rc = -1;
    } else if (sy_buf_printf(&b, " \"}\" %s", sp)) {
      rc = -1;
    }
    json_decref(jn);
  }
  json_decref(empty);
  j->root = NULL;
  if (rc) {
    sy_buf_free(&b);
    if (!j->failed) fail_size(j);
    return NULL;
  }
  return add_rule(j, hint, &b);
}

int sy_gbnf_tool_calls(const json_t *tools, const char *only_name, const char *format,
                       bool parallel, char **out, char *err, size_t err_len) {
  js j;
  js_init(&j, err, err_len);
  *out = NULL;
  enum tc_format f;
  if (!format) format = "";
  if (strcmp(format, "hermes") == 0)
    f = TC_HERMES;
  else if (strcmp(format, "llama3") == 0)
    f = TC_LLAMA3;
  else if (strcmp(format, "mistral") == 0)
    f = TC_MISTRAL;
  else if (strcmp(format, "qwen3_coder") == 0)
    f = TC_QWEN3_CODER;
  else {
    fail(&j, "unknown tool call format '%s'", format);
    return -1;
  }
  if (!json_is_array(tools)) return fail(&j, "'tools' must be an array");
  if (json_array_size(tools) > JS_MAX_TOOLS)
    return fail(&j, "too many tools (limit %d)", JS_MAX_TOOLS);
  const char *root = sy_gbnf_reserve(&j.g, "root");
  sy_buf calls = new_buf();
  int rc = root ? 0 : fail_size(&j), found = 0;
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) {
    if (rc) break;
    const json_t *type = json_object_get(t, "type");
    const json_t *fn = json_object_get(t, "function");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0)) {
      continue;
    }
    const char *name = json_string_value(json_object_get(fn, "name"));
    if (!name || !*name || strlen(name) > JS_MAX_NAME) {
      rc = fail(&j, "tools[%zu]: a function needs a name of 1 to %d bytes", i, JS_MAX_NAME);
      break;
    }
    if (only_name && strcmp(only_name, name) != 0) continue;
    if (f == TC_QWEN3_CODER && strpbrk(name, "<>\n")) {
      rc = fail(&j, "tool '%s': name not usable in the qwen3_coder format", name);
      break;
    }
    const char *call = tool_call_rule(&j, f, name, json_object_get(fn, "parameters"), (int)i);
    if (!call) {
      if (err && err_len && !strstr(err, name)) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "tool '%s': %s", name, err);
        snprintf(err, err_len, "%s", tmp);
      }
      rc = -1;
      break;
    }
    found++;
    if (put_alt(&j, &calls, call)) rc = -1;
  }
  if (rc == 0 && !found) {
    rc = only_name ? fail(&j, "no function named '%s' in tools", only_name)
                   : fail(&j, "no functions in tools");
  }
  const char *call = NULL;
  if (rc == 0 && !(call = add_rule(&j, "call", &calls))) rc = -1;
  sy_buf_free(&calls);
  sy_buf b = new_buf();
  const char *sp = rc ? NULL : prim(&j, P_SPACE);
  if (rc == 0 && sp) {
    const char *one = call;
    switch (f) {
      case TC_HERMES:
      case TC_QWEN3_CODER:
        rc = f == TC_HERMES ? sy_buf_printf(&b, "\"<tool_call>\" %s %s \"</tool_call>\"", sp, call)
                            : sy_buf_printf(&b, "\"<tool_call>\\n\" %s \"\\n</tool_call>\"", call);
        one = rc ? NULL : add_rule(&j, "tool-call", &b);
        rc = !one ||
             (parallel ? sy_buf_printf(&b, "%s (%s %s)*", one, sp, one) : sy_buf_puts(&b, one));
        break;
      case TC_LLAMA3:
        rc = parallel ? sy_buf_printf(&b, "%s (\";\"? %s %s)*", call, sp, call)
                      : sy_buf_puts(&b, call);
        break;
      case TC_MISTRAL:
        rc = sy_buf_printf(&b, "\"[TOOL_CALLS]\" %s \"[\" %s %s", sp, sp, call) ||
             (parallel && sy_buf_printf(&b, " (\",\" %s %s)*", sp, call)) ||
             sy_buf_puts(&b, " \"]\"");
        break;
    }
    if (rc || sy_gbnf_define(&j.g, root, b.data) != 0) rc = j.failed ? -1 : fail_size(&j);
  } else {
    rc = -1;
  }
  sy_buf_free(&b);
  if (rc == 0) rc = finish(&j, out);
  js_free(&j);
  return rc;
}
