/* jinja_builtins.c — global functions, tests, filters and methods, with llama.cpp's argument
 * rules (common/jinja/value.cpp): keyword arguments stay in their positional slot, a filter's
 * input is argument 0, `x|default` needs an argument, `select` is `selectattr`, etc. */
#include "jinja_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- argument helpers ---- */

static void ensure_count(jr *r, const jargs *a, size_t min, size_t max) {
  if (a->n < min || a->n > max)
    jr_fail(r, a->pos, "Function '%s' expected between %zu and %zu arguments, got %zu", a->name,
            min, max, a->n);
}

static jv *arg(jr *r, const jargs *a, size_t i) {
  if (i < a->n) return a->v[i];
  jr_fail(r, a->pos, "Function '%s' expected at least %zu arguments, got %zu", a->name, i + 1,
          a->n);
}

static jv *arg_or(const jargs *a, size_t i, jv *def) { return i < a->n ? a->v[i] : def; }

static jv *kwarg(const jargs *a, const char *key) {
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i]->t == JV_KWARG && strcmp(a->v[i]->u.kw.key, key) == 0) return a->v[i]->u.kw.val;
  return NULL;
}

static jv *kw_or_pos(jr *r, const jargs *a, const char *key, size_t pos) {
  jv *v = kwarg(a, key);
  if ((!v || v->t == JV_UNDEF) && pos < a->n && a->v[pos]->t != JV_KWARG) return a->v[pos];
  return v ? v : r->undef;
}

/* type letters for ensure_vals: i int, f float, s string, b bool, a array/tuple, o object */
static bool type_ok(const jv *v, char t) {
  switch (t) {
    case 'i':
      return v->t == JV_INT;
    case 'f':
      return v->t == JV_FLOAT;
    case 's':
      return v->t == JV_STR;
    case 'b':
      return v->t == JV_BOOL;
    case 'a':
      return jv_is_array(v);
    case 'o':
      return v->t == JV_OBJECT;
  }
  return false;
}

/* llama.cpp's ensure_vals<...>(required...): types upper case = required */
static void ensure_vals(jr *r, const jargs *a, const char *types) {
  size_t req = 0;
  for (const char *t = types; *t; t++)
    if (isupper((unsigned char)*t)) req++;
  ensure_count(r, a, req, 999);
  for (size_t i = 0; types[i]; i++) {
    if (!isupper((unsigned char)types[i]) || i >= a->n) continue;
    if (!type_ok(a->v[i], (char)tolower((unsigned char)types[i])))
      jr_fail(r, a->pos, "Function '%s' expected value of another type, got %s", a->name,
              jv_type_name(a->v[i]));
  }
}

static jv *str_sub(jr *r, const jv *s, size_t st, size_t en) {
  jv *v = jv_str(r, s->u.s.p + st, en - st);
  size_t k = 0;
  for (size_t i = 0; i < s->u.s.noffs; i++)
    if (s->u.s.offs[i] > st && s->u.s.offs[i] < en) k++;
  if (k) {
    size_t *o = jr_alloc(r, k * sizeof(size_t));
    k = 0;
    for (size_t i = 0; i < s->u.s.noffs; i++)
      if (s->u.s.offs[i] > st && s->u.s.offs[i] < en) o[k++] = s->u.s.offs[i] - st;
    v->u.s.offs = o;
    v->u.s.noffs = k;
  }
  return v;
}

/* a copy of s (same parts) to transform in place */
static jv *str_dup_parts(jr *r, const jv *s) {
  jv *v = jv_str_copy(r, s->u.s.p, s->u.s.len);
  v->u.s.offs = s->u.s.offs;
  v->u.s.noffs = s->u.s.noffs;
  return v;
}

static jv *undef_or(jr *r, jv *v) { return v ? v : r->undef; }

/* ---- tojson ---- */

static void ascii_escape(jr *r, jsink *out, const char *p, size_t n) {
  bool in_str = false, esc = false;
  char buf[16];
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)p[i];
    if (!in_str || esc || c == '\\' || c == '"' || c < 0x80) {
      if (!in_str) {
        if (c == '"') in_str = true;
      } else if (esc) {
        esc = false;
      } else if (c == '\\') {
        esc = true;
      } else if (c == '"') {
        in_str = false;
      }
      jsink_put(r, out, p + i, 1);
      i++;
      continue;
    }
    uint32_t cp = 0;
    size_t len = 0;
    unsigned char c1 = i + 1 < n ? (unsigned char)p[i + 1] : 0;
    unsigned char c2 = i + 2 < n ? (unsigned char)p[i + 2] : 0;
    unsigned char c3 = i + 3 < n ? (unsigned char)p[i + 3] : 0;
    if (!(c & 0x40)) {
      len = 0;
    } else if (!(c & 0x20)) {
      if (i + 1 < n && (c1 & 0xc0) == 0x80) {
        cp = ((uint32_t)(c & 0x1f) << 6) | (c1 & 0x3f);
        len = 2;
      }
    } else if (!(c & 0x10)) {
      if (i + 2 < n && (c1 & 0xc0) == 0x80 && (c2 & 0xc0) == 0x80) {
        cp = ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(c1 & 0x3f) << 6) | (c2 & 0x3f);
        len = 3;
      }
    } else if (!(c & 0x08)) {
      if (i + 3 < n && (c1 & 0xc0) == 0x80 && (c2 & 0xc0) == 0x80 && (c3 & 0xc0) == 0x80) {
        cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(c1 & 0x3f) << 12) |
             ((uint32_t)(c2 & 0x3f) << 6) | (c3 & 0x3f);
        len = 4;
      }
    }
    if (!len) {
      jsink_put(r, out, "\\ufffd", 6);
      i++;
      continue;
    }
    if (cp <= 0xFFFF) {
      snprintf(buf, sizeof(buf), "\\u%04x", (unsigned)cp);
      jsink_put(r, out, buf, 6);
    } else {
      cp -= 0x10000;
      snprintf(buf, sizeof(buf), "\\u%04x", (unsigned)(0xD800 + ((cp >> 10) & 0x3FF)));
      jsink_put(r, out, buf, 6);
      snprintf(buf, sizeof(buf), "\\u%04x", (unsigned)(0xDC00 + (cp & 0x3FF)));
      jsink_put(r, out, buf, 6);
    }
    i += len;
  }
}

static jv *bi_tojson(jr *r, const jargs *a) {
  ensure_count(r, a, 1, 5);
  jv *ascii = kw_or_pos(r, a, "ensure_ascii", 1);
  jv *ind = kw_or_pos(r, a, "indent", 2);
  jv *seps = kw_or_pos(r, a, "separators", 3);
  jv *sort = kw_or_pos(r, a, "sort_keys", 4);
  int indent = -1;
  if (ind->t == JV_INT) indent = (int)ind->u.i;
  if (jv_as_bool(r, a->pos, sort))
    jr_fail(r, a->pos, "NotImplemented: tojson sort_keys=true not implemented");
  bool ensure_ascii = jv_as_bool(r, a->pos, ascii);
  size_t nsep = jv_is_array(seps) ? seps->u.a.n : 0;
  const char *isep = indent < 0 ? ", " : ",", *ksep = ": ";
  size_t isl = strlen(isep), ksl = 2;
  if (nsep > 0) {
    jv *s = jv_as_string(r, a->pos, seps->u.a.v[0]);
    isep = s->u.s.p;
    isl = s->u.s.len;
  }
  if (nsep > 1) {
    jv *s = jv_as_string(r, a->pos, seps->u.a.v[1]);
    ksep = s->u.s.p;
    ksl = s->u.s.len;
  }
  if (indent > 0 && (size_t)indent > r->max_output) jr_fail(r, a->pos, "tojson indent too large");
  jsink s = {0};
  jv_to_json(r, a->pos, &s, arg(r, a, 0), indent, 0, isep, isl, ksep, ksl, 0);
  if (!ensure_ascii) return jv_str(r, s.p ? s.p : "", s.len);
  jsink e = {0};
  ascii_escape(r, &e, s.p ? s.p : "", s.len);
  return jv_str(r, e.p ? e.p : "", e.len);
}

/* ---- global functions ---- */

static jv *bi_raise(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  jv *m = a->v[0];
  jr_fail(r, a->pos, "Jinja Exception: %.*s", (int)(m->u.s.len > 2000 ? 2000 : m->u.s.len),
          m->u.s.p);
}

static jv *bi_namespace(jr *r, const jargs *a) {
  jv *o = jv_object(r);
  for (size_t i = 0; i < a->n; i++) {
    if (a->v[i]->t != JV_KWARG) jr_fail(r, a->pos, "namespace() arguments must be kwargs");
    jv_obj_set_cstr(r, o, a->v[i]->u.kw.key, a->v[i]->u.kw.val);
  }
  return o;
}

static jv *bi_strftime_now(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  char *fmt = jr_strdup(r, a->v[0]->u.s.p, a->v[0]->u.s.len);
  struct tm tm;
  time_t now = r->now;
  char buf[100];
  if (!localtime_r(&now, &tm)) jr_fail(r, a->pos, "strftime_now: failed to format time");
  size_t n = strftime(buf, sizeof(buf), fmt, &tm);
  if (!n) jr_fail(r, a->pos, "strftime_now: failed to format time");
  return jv_str_copy(r, buf, n);
}

static jv *bi_range(jr *r, const jargs *a) {
  ensure_count(r, a, 1, 3);
  ensure_vals(r, a, "Iii");
  int64_t start = 0, stop, step = 1;
  if (a->n == 1) {
    stop = jv_as_int(r, a->pos, a->v[0]);
  } else if (a->n == 2) {
    start = jv_as_int(r, a->pos, a->v[0]);
    stop = jv_as_int(r, a->pos, a->v[1]);
  } else {
    start = jv_as_int(r, a->pos, a->v[0]);
    stop = jv_as_int(r, a->pos, a->v[1]);
    step = jv_as_int(r, a->pos, a->v[2]);
  }
  if (step == 0) jr_fail(r, a->pos, "range() step argument must not be zero");
  jv *out = jv_array(r, 0);
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) {
      jv_push(r, out, jv_int(r, i));
      if (i > INT64_MAX - step) break;
    }
  } else {
    for (int64_t i = start; i > stop; i += step) {
      jv_push(r, out, jv_int(r, i));
      if (i < INT64_MIN - step) break;
    }
  }
  return out;
}

/* ---- tests ---- */

static jv *t_boolean(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t == JV_BOOL); }
static jv *t_callable(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t == JV_FUNC); }
static jv *t_odd(jr *r, const jargs *a) {
  ensure_vals(r, a, "I");
  return jv_bool(r, a->v[0]->u.i % 2 != 0);
}
static jv *t_even(jr *r, const jargs *a) {
  ensure_vals(r, a, "I");
  return jv_bool(r, a->v[0]->u.i % 2 == 0);
}
static jv *t_false(jr *r, const jargs *a) {
  jv *v = arg(r, a, 0);
  return jv_bool(r, v->t == JV_BOOL && !v->u.i);
}
static jv *t_true(jr *r, const jargs *a) {
  jv *v = arg(r, a, 0);
  return jv_bool(r, v->t == JV_BOOL && v->u.i);
}
static jv *t_divisibleby(jr *r, const jargs *a) {
  ensure_vals(r, a, "II");
  int64_t x = a->v[0]->u.i, y = a->v[1]->u.i;
  if (y == 0) jr_fail(r, a->pos, "divisibleby: division by zero");
  if (y == -1) return r->vtrue;
  return jv_bool(r, x % y == 0);
}
static jv *t_string(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t == JV_STR); }
static jv *t_integer(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t == JV_INT); }
static jv *t_float(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t == JV_FLOAT); }
static jv *t_number(jr *r, const jargs *a) { return jv_bool(r, jv_is_num(arg(r, a, 0))); }
static jv *t_iterable(jr *r, const jargs *a) {
  jv *v = arg(r, a, 0);
  return jv_bool(r, jv_is_array(v) || v->t == JV_STR || v->t == JV_UNDEF);
}
static jv *t_mapping(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t == JV_OBJECT); }
static jv *t_lower(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  for (size_t i = 0; i < a->v[0]->u.s.len; i++)
    if (isupper((unsigned char)a->v[0]->u.s.p[i])) return r->vfalse;
  return r->vtrue;
}
static jv *t_upper(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  for (size_t i = 0; i < a->v[0]->u.s.len; i++)
    if (islower((unsigned char)a->v[0]->u.s.p[i])) return r->vfalse;
  return r->vtrue;
}
static jv *t_none(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t == JV_NONE); }
static jv *t_defined(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t != JV_UNDEF); }
static jv *t_undefined(jr *r, const jargs *a) { return jv_bool(r, arg(r, a, 0)->t == JV_UNDEF); }
static jv *cmp2(jr *r, const jargs *a, int op) {
  ensure_count(r, a, 2, 2);
  return jv_bool(r, jv_compare(r, a->pos, a->v[0], a->v[1], op));
}
static jv *t_eq(jr *r, const jargs *a) { return cmp2(r, a, CMP_EQ); }
static jv *t_ge(jr *r, const jargs *a) { return cmp2(r, a, CMP_GE); }
static jv *t_gt(jr *r, const jargs *a) { return cmp2(r, a, CMP_GT); }
static jv *t_lt(jr *r, const jargs *a) { return cmp2(r, a, CMP_LT); }
static jv *t_ne(jr *r, const jargs *a) { return cmp2(r, a, CMP_NE); }
static jv *t_in(jr *r, const jargs *a) {
  ensure_count(r, a, 2, 999);
  return jv_bool(r, jinja_test_in(r, a->pos, a->v[0], a->v[1]));
}
static jv *t_test(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  return jv_bool(r, jinja_test_builtin(a->v[0]->u.s.p, a->v[0]->u.s.len) != NULL);
}
static jv *t_not_impl(jr *r, const jargs *a) {
  jr_fail(r, a->pos, "NotImplemented: %s test not implemented", a->name);
}

static const jbuiltin tests[] = {
    {"boolean", t_boolean},
    {"callable", t_callable},
    {"odd", t_odd},
    {"even", t_even},
    {"false", t_false},
    {"true", t_true},
    {"divisibleby", t_divisibleby},
    {"string", t_string},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"iterable", t_iterable},
    {"sequence", t_iterable},
    {"mapping", t_mapping},
    {"lower", t_lower},
    {"upper", t_upper},
    {"none", t_none},
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"ge", t_ge},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"ne", t_ne},
    {"in", t_in},
    {"test", t_test},
    {"sameas", t_not_impl},
    {"escaped", t_not_impl},
    {"filter", t_not_impl},
    {NULL, NULL},
};

static const jbuiltin globals[] = {
    {"raise_exception", bi_raise}, {"namespace", bi_namespace}, {"strftime_now", bi_strftime_now},
    {"range", bi_range},           {"tojson", bi_tojson},       {NULL, NULL},
};

static jbi_fn find(const jbuiltin *t, const char *name, size_t len) {
  for (; t->name; t++)
    if (strlen(t->name) == len && memcmp(t->name, name, len) == 0) return t->fn;
  return NULL;
}

jbi_fn jinja_test_builtin(const char *name, size_t len) { return find(tests, name, len); }

jbi_fn jinja_global_builtin(const char *name, size_t len) {
  jbi_fn f = find(globals, name, len);
  if (!f && len > 8 && memcmp(name, "test_is_", 8) == 0) f = find(tests, name + 8, len - 8);
  return f;
}

/* ---- shared filters ---- */

static jv *f_default(jr *r, const jargs *a) {
  ensure_count(r, a, 2, 3);
  bool check_bool = jv_as_bool(r, a->pos, kw_or_pos(r, a, "boolean", 2));
  jv *in = a->v[0];
  bool no_value = check_bool ? !jv_as_bool(r, a->pos, in) : (in->t == JV_UNDEF || in->t == JV_NONE);
  return no_value ? a->v[1] : in;
}

static jv *empty_str(jr *r, const jargs *a) { return jv_str(r, "", 0); }
static jv *empty_arr(jr *r, const jargs *a) { return jv_array(r, 0); }
static jv *empty_int(jr *r, const jargs *a) { return jv_int(r, 0); }
static jv *empty_undef(jr *r, const jargs *a) { return r->undef; }

/* ---- int / float / bool / none ---- */

static jv *i_abs(jr *r, const jargs *a) {
  ensure_vals(r, a, "I");
  int64_t v = a->v[0]->u.i;
  return jv_int(r, v < 0 ? (int64_t)(0 - (uint64_t)v) : v);
}
static jv *i_int(jr *r, const jargs *a) {
  ensure_vals(r, a, "I");
  return jv_int(r, a->v[0]->u.i);
}
static jv *i_float(jr *r, const jargs *a) {
  ensure_vals(r, a, "I");
  return jv_float(r, (double)a->v[0]->u.i);
}
static jv *fl_abs(jr *r, const jargs *a) {
  ensure_vals(r, a, "F");
  double v = a->v[0]->u.f;
  return jv_float(r, v < 0.0 ? -v : v);
}
static jv *fl_int(jr *r, const jargs *a) {
  ensure_vals(r, a, "F");
  return jv_int(r, jv_d2i(a->v[0]->u.f));
}
static jv *fl_float(jr *r, const jargs *a) {
  ensure_vals(r, a, "F");
  return jv_float(r, a->v[0]->u.f);
}
static jv *b_int(jr *r, const jargs *a) {
  ensure_vals(r, a, "B");
  return jv_int(r, a->v[0]->u.i ? 1 : 0);
}
static jv *b_float(jr *r, const jargs *a) {
  ensure_vals(r, a, "B");
  return jv_float(r, a->v[0]->u.i ? 1.0 : 0.0);
}
static jv *b_string(jr *r, const jargs *a) {
  ensure_vals(r, a, "B");
  return a->v[0]->u.i ? jv_str(r, "True", 4) : jv_str(r, "False", 5);
}
static jv *n_string(jr *r, const jargs *a) { return jv_str(r, "None", 4); }

static const jbuiltin int_bi[] = {
    {"default", f_default}, {"abs", i_abs},        {"int", i_int},        {"float", i_float},
    {"safe", bi_tojson},    {"string", bi_tojson}, {"tojson", bi_tojson}, {NULL, NULL},
};
static const jbuiltin float_bi[] = {
    {"default", f_default}, {"abs", fl_abs},       {"int", fl_int},       {"float", fl_float},
    {"safe", bi_tojson},    {"string", bi_tojson}, {"tojson", bi_tojson}, {NULL, NULL},
};
static const jbuiltin bool_bi[] = {
    {"default", f_default}, {"int", b_int},        {"float", b_float}, {"safe", b_string},
    {"string", b_string},   {"tojson", bi_tojson}, {NULL, NULL},
};
static const jbuiltin none_bi[] = {
    {"default", f_default},    {"tojson", bi_tojson},     {"string", n_string},
    {"safe", n_string},        {"items", empty_arr},      {"map", empty_arr},
    {"reject", empty_arr},     {"rejectattr", empty_arr}, {"select", empty_arr},
    {"selectattr", empty_arr}, {"unique", empty_arr},     {NULL, NULL},
};
static const jbuiltin undef_bi[] = {
    {"default", f_default},
    {"capitalize", empty_str},
    {"first", empty_undef},
    {"items", empty_arr},
    {"join", empty_str},
    {"last", empty_undef},
    {"length", empty_int},
    {"list", empty_arr},
    {"lower", empty_str},
    {"map", empty_arr},
    {"max", empty_undef},
    {"min", empty_undef},
    {"reject", empty_arr},
    {"rejectattr", empty_arr},
    {"replace", empty_str},
    {"reverse", empty_arr},
    {"safe", empty_str},
    {"select", empty_arr},
    {"selectattr", empty_arr},
    {"sort", empty_arr},
    {"string", empty_str},
    {"strip", empty_str},
    {"sum", empty_int},
    {"title", empty_str},
    {"truncate", empty_str},
    {"unique", empty_arr},
    {"upper", empty_str},
    {"wordcount", empty_int},
    {NULL, NULL},
};

/* ---- strings ---- */

static jv *s_upper(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  jv *v = str_dup_parts(r, a->v[0]);
  char *p = (char *)v->u.s.p;
  for (size_t i = 0; i < v->u.s.len; i++) p[i] = (char)toupper((unsigned char)p[i]);
  return v;
}
static jv *s_lower(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  jv *v = str_dup_parts(r, a->v[0]);
  char *p = (char *)v->u.s.p;
  for (size_t i = 0; i < v->u.s.len; i++) p[i] = (char)tolower((unsigned char)p[i]);
  return v;
}

/* capitalize and title work part by part, like llama.cpp's jinja::string */
static jv *case_parts(jr *r, const jargs *a, bool title) {
  ensure_vals(r, a, "S");
  jv *v = str_dup_parts(r, a->v[0]);
  char *p = (char *)v->u.s.p;
  size_t st = 0;
  for (size_t k = 0; k <= v->u.s.noffs; k++) {
    size_t en = k < v->u.s.noffs ? v->u.s.offs[k] : v->u.s.len;
    if (title) {
      bool next = true;
      for (size_t i = st; i < en; i++) {
        unsigned char c = (unsigned char)p[i];
        if (isspace(c)) {
          next = true;
        } else if (next) {
          p[i] = (char)toupper(c);
          next = false;
        } else {
          p[i] = (char)tolower(c);
        }
      }
    } else if (en > st) {
      p[st] = (char)toupper((unsigned char)p[st]);
      for (size_t i = st + 1; i < en; i++) p[i] = (char)tolower((unsigned char)p[i]);
    }
    st = en;
  }
  return v;
}
static jv *s_title(jr *r, const jargs *a) { return case_parts(r, a, true); }
static jv *s_capitalize(jr *r, const jargs *a) { return case_parts(r, a, false); }

static jv *do_strip(jr *r, const jargs *a, bool left, bool right) {
  jv *in = a->v[0];
  jv *chars = kw_or_pos(r, a, "chars", 1);
  const char *cs = NULL;
  size_t cl = 0;
  if (chars->t != JV_UNDEF) {
    jv *c = jv_as_string(r, a->pos, chars);
    cs = c->u.s.p;
    cl = c->u.s.len;
  }
  size_t st = 0, en = in->u.s.len;
#define MATCH(ch) (cs ? memchr(cs, (unsigned char)(ch), cl) != NULL : isspace((unsigned char)(ch)))
  if (left)
    while (st < en && MATCH(in->u.s.p[st])) st++;
  if (right)
    while (en > st && MATCH(in->u.s.p[en - 1])) en--;
#undef MATCH
  return str_sub(r, in, st, en);
}
static jv *s_strip(jr *r, const jargs *a) {
  if (arg(r, a, 0)->t != JV_STR) jr_fail(r, a->pos, "strip() first argument must be a string");
  return do_strip(r, a, true, true);
}
static jv *s_rstrip(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  return do_strip(r, a, false, true);
}
static jv *s_lstrip(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  return do_strip(r, a, true, false);
}
static jv *s_length(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  return jv_int(r, (int64_t)a->v[0]->u.s.len);
}
static jv *s_startswith(jr *r, const jargs *a) {
  ensure_vals(r, a, "SS");
  const jv *s = a->v[0], *x = a->v[1];
  return jv_bool(r, s->u.s.len >= x->u.s.len && memcmp(s->u.s.p, x->u.s.p, x->u.s.len) == 0);
}
static jv *s_endswith(jr *r, const jargs *a) {
  ensure_vals(r, a, "SS");
  const jv *s = a->v[0], *x = a->v[1];
  return jv_bool(r, s->u.s.len >= x->u.s.len &&
                        memcmp(s->u.s.p + s->u.s.len - x->u.s.len, x->u.s.p, x->u.s.len) == 0);
}

static const char *find_bytes(const char *h, size_t hl, const char *n, size_t nl) {
  return memmem(h, hl, n, nl);
}

static const char *rfind_bytes(const char *h, size_t hl, const char *n, size_t nl) {
  if (nl > hl) return NULL;
  for (size_t i = hl - nl + 1; i-- > 0;)
    if (memcmp(h + i, n, nl) == 0) return h + i;
  return NULL;
}

static jv *do_split(jr *r, const jargs *a, bool rev) {
  ensure_count(r, a, 1, 3);
  jv *in = a->v[0];
  if (in->t != JV_STR)
    jr_fail(r, a->pos, "%s() first argument must be a string", rev ? "rsplit" : "split");
  const char *d = " ";
  size_t dl = 1;
  if (a->n > 1) {
    jv *dv = jv_as_string(r, a->pos, a->v[1]);
    d = dv->u.s.p;
    dl = dv->u.s.len;
  }
  if (!dl) jr_fail(r, a->pos, "empty separator");
  int64_t maxsplit = a->n > 2 ? jv_as_int(r, a->pos, a->v[2]) : -1;
  jv *out = jv_array(r, 0);
  const char *p = in->u.s.p;
  size_t len = in->u.s.len;
  if (!rev) {
    const char *f;
    while (maxsplit != 0 && (f = find_bytes(p, len, d, dl)) != NULL) {
      jv_push(r, out, jv_str(r, p, (size_t)(f - p)));
      len -= (size_t)(f - p) + dl;
      p = f + dl;
      --maxsplit;
    }
    jv_push(r, out, jv_str(r, p, len));
    return out;
  }
  const char *f;
  while (maxsplit != 0 && (f = rfind_bytes(p, len, d, dl)) != NULL) {
    size_t at = (size_t)(f - p);
    jv_push(r, out, jv_str(r, f + dl, len - at - dl));
    len = at;
    --maxsplit;
  }
  jv_push(r, out, jv_str(r, p, len));
  for (size_t i = 0, j = out->u.a.n - 1; i < j; i++, j--) {
    jv *t = out->u.a.v[i];
    out->u.a.v[i] = out->u.a.v[j];
    out->u.a.v[j] = t;
  }
  return out;
}
static jv *s_split(jr *r, const jargs *a) { return do_split(r, a, false); }
static jv *s_rsplit(jr *r, const jargs *a) { return do_split(r, a, true); }

static jv *s_replace(jr *r, const jargs *a) {
  ensure_vals(r, a, "SSSi");
  jv *s = a->v[0], *o = a->v[1], *nw = a->v[2];
  int64_t count = a->n > 3 ? jv_as_int(r, a->pos, a->v[3]) : -1;
  if (count > 0)
    jr_fail(r, a->pos, "NotImplemented: String replace with count argument not implemented");
  if (o->u.s.len == nw->u.s.len && memcmp(o->u.s.p, nw->u.s.p, o->u.s.len) == 0)
    return jv_str(r, s->u.s.p, s->u.s.len);
  jsink out = {0};
  if (!o->u.s.len) {
    if (nw->u.s.len && s->u.s.len + 1 > r->max_output / nw->u.s.len)
      jr_fail(r, a->pos, "replace() result longer than %zu bytes", r->max_output);
    jsink_put(r, &out, nw->u.s.p, nw->u.s.len);
    for (size_t i = 0; i < s->u.s.len; i++) {
      jsink_put(r, &out, s->u.s.p + i, 1);
      jsink_put(r, &out, nw->u.s.p, nw->u.s.len);
    }
  } else {
    const char *p = s->u.s.p, *f;
    size_t len = s->u.s.len;
    while ((f = find_bytes(p, len, o->u.s.p, o->u.s.len)) != NULL) {
      jsink_put(r, &out, p, (size_t)(f - p));
      jsink_put(r, &out, nw->u.s.p, nw->u.s.len);
      len -= (size_t)(f - p) + o->u.s.len;
      p = f + o->u.s.len;
    }
    jsink_put(r, &out, p, len);
  }
  return jv_str(r, out.p ? out.p : "", out.len);
}

static jv *s_format(jr *r, const jargs *a) {
  jv *in = arg(r, a, 0);
  if (in->t != JV_STR) jr_fail(r, a->pos, "format() first argument must be a string");
  jsink out = {0};
  size_t ai = 1, lit = 0;
  const char *p = in->u.s.p;
  size_t n = in->u.s.len;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '{') continue;
    if (i + 1 >= n || p[i + 1] != '}')
      jr_fail(r, a->pos, "NotImplemented: format() only supports simple '{}' placeholders");
    if (i > lit) {
      jsink_part(r, &out);
      jsink_put(r, &out, p + lit, i - lit);
    }
    jsink_put_str(r, &out, jv_as_string(r, a->pos, arg(r, a, ai++)));
    i++;
    lit = i + 1;
  }
  if (n > lit) {
    jsink_part(r, &out);
    jsink_put(r, &out, p + lit, n - lit);
  }
  return jsink_to_str(r, &out);
}

static jv *s_int(jr *r, const jargs *a) {
  jv *in = arg(r, a, 0);
  jv *def = kw_or_pos(r, a, "default", 1);
  jv *bv = kw_or_pos(r, a, "base", 2);
  int64_t base64 = bv->t == JV_UNDEF ? 10 : jv_as_int(r, a->pos, bv);
  int base = (int)base64;
  if (base != 0 && (base < 2 || base > 36))
    jr_fail(r, a->pos, "int() base must be 0 or between 2 and 36");
  if (in->t != JV_STR) jr_fail(r, a->pos, "int() first argument must be a string");
  char *s = jr_strdup(r, in->u.s.p, in->u.s.len);
  char *end;
  errno = 0;
  long v = strtol(s, &end, base);
  if (end == s || errno == ERANGE || v < INT_MIN || v > INT_MAX)
    return jv_int(r, def->t == JV_UNDEF ? 0 : jv_as_int(r, a->pos, def));
  return jv_int(r, v);
}

static jv *s_float(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  jv *def = kw_or_pos(r, a, "default", 1);
  char *s = jr_strdup(r, a->v[0]->u.s.p, a->v[0]->u.s.len);
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno == ERANGE)
    return jv_float(r, def->t == JV_UNDEF ? 0.0 : jv_as_float(r, a->pos, def));
  return jv_float(r, v);
}

static jv *s_string(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  jv *v = jv_str(r, a->v[0]->u.s.p, a->v[0]->u.s.len);
  v->u.s.offs = a->v[0]->u.s.offs;
  v->u.s.noffs = a->v[0]->u.s.noffs;
  return v;
}

static void slice_args(jr *r, const jargs *a, int64_t *start, int64_t *stop, int64_t *step) {
  jv *a0 = a->v[1], *a1 = arg_or(a, 2, r->undef), *a2 = arg_or(a, 3, r->undef);
  if (a->n == 1) {
    *start = 0;
    *stop = jv_as_int(r, a->pos, a0);
    *step = 1;
  } else if (a->n == 2) {
    *start = jv_as_int(r, a->pos, a0);
    *stop = jv_as_int(r, a->pos, a1);
    *step = 1;
  } else {
    *start = jv_as_int(r, a->pos, a0);
    *stop = jv_as_int(r, a->pos, a1);
    *step = jv_as_int(r, a->pos, a2);
  }
  if (*step == 0) jr_fail(r, a->pos, "slice step cannot be zero");
}

/* Python-like slicing as llama.cpp's slice<T>() does it; calls emit(i) for each index */
static void slice_idx(jr *r, size_t pos, int64_t len, int64_t start, int64_t stop, int64_t step,
                      void (*emit)(jr *, void *, int64_t), void *ctx) {
  int64_t dir = step > 0 ? 1 : -1;
  int64_t s, e;
  if (dir > 0) {
    s = start < 0 ? (len + start > 0 ? len + start : 0) : (start < len ? start : len);
    e = stop < 0 ? (len + stop > 0 ? len + stop : 0) : (stop < len ? stop : len);
  } else {
    s = start < 0 ? (len + start > 0 ? len + start : 0) : (start < len - 1 ? start : len - 1);
    e = stop < -1 ? (len + stop > -1 ? len + stop : -1) : (stop < len - 1 ? stop : len - 1);
  }
  for (int64_t i = s; dir * i < dir * e; i += step) {
    jr_step(r, pos, 1);
    if (i >= 0 && i < len) emit(r, ctx, i);
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
}

typedef struct {
  jsink *sink;
  const jv *src;
  jv *arr;
} slice_ctx;

static void emit_byte(jr *r, void *c, int64_t i) {
  slice_ctx *sc = c;
  jsink_put(r, sc->sink, sc->src->u.s.p + i, 1);
}

static void emit_item(jr *r, void *c, int64_t i) {
  slice_ctx *sc = c;
  jv_push(r, sc->arr, sc->src->u.a.v[i]);
}

static jv *s_slice(jr *r, const jargs *a) {
  ensure_count(r, a, 1, 4);
  ensure_vals(r, a, "SIii");
  int64_t start, stop, step;
  slice_args(r, a, &start, &stop, &step);
  jsink out = {0};
  slice_ctx c = {&out, a->v[0], NULL};
  slice_idx(r, a->pos, (int64_t)a->v[0]->u.s.len, start, stop, step, emit_byte, &c);
  return jv_str(r, out.p ? out.p : "", out.len);
}

static jv *s_safe(jr *r, const jargs *a) {
  ensure_vals(r, a, "S");
  return a->v[0];
}

static jv *s_indent(jr *r, const jargs *a) {
  ensure_count(r, a, 1, 4);
  jv *in = a->v[0];
  jv *width = kw_or_pos(r, a, "width", 1);
  bool first = jv_as_bool(r, a->pos, kw_or_pos(r, a, "first", 2));
  bool blank = jv_as_bool(r, a->pos, kw_or_pos(r, a, "blank", 3));
  if (in->t != JV_STR) jr_fail(r, a->pos, "indent() first argument must be a string");
  const char *ind = "    ";
  size_t il = 4;
  if (width->t == JV_INT) {
    if (width->u.i < 0 || (uint64_t)width->u.i > r->max_output)
      jr_fail(r, a->pos, "indent() width out of range");
    il = (size_t)width->u.i;
    char *sp = jr_alloc(r, il + 1);
    memset(sp, ' ', il);
    ind = sp;
  } else if (width->t == JV_STR) {
    ind = width->u.s.p;
    il = width->u.s.len;
  }
  jsink out = {0};
  const char *p = in->u.s.p;
  size_t n = in->u.s.len, st = 0;
  while (st < n) {
    const char *nl = memchr(p + st, '\n', n - st);
    size_t en = nl ? (size_t)(nl - p) : n;
    bool empty = out.len == 0;
    if (!empty) jsink_put(r, &out, "\n", 1);
    if (empty ? first : (en > st || blank)) jsink_put(r, &out, ind, il);
    jsink_put(r, &out, p + st, en - st);
    st = nl ? en + 1 : n;
  }
  if (n && p[n - 1] == '\n') {
    jsink_put(r, &out, "\n", 1);
    if (blank) jsink_put(r, &out, ind, il);
  }
  return jv_str(r, out.p ? out.p : "", out.len);
}

static jv *not_impl(jr *r, const jargs *a) {
  jr_fail(r, a->pos, "NotImplemented: %s builtin not implemented", a->name);
}

static const jbuiltin str_bi[] = {
    {"default", f_default},   {"upper", s_upper},
    {"lower", s_lower},       {"strip", s_strip},
    {"rstrip", s_rstrip},     {"lstrip", s_lstrip},
    {"title", s_title},       {"capitalize", s_capitalize},
    {"length", s_length},     {"startswith", s_startswith},
    {"endswith", s_endswith}, {"split", s_split},
    {"rsplit", s_rsplit},     {"replace", s_replace},
    {"format", s_format},     {"int", s_int},
    {"float", s_float},       {"string", s_string},
    {"slice", s_slice},       {"safe", s_safe},
    {"tojson", bi_tojson},    {"indent", s_indent},
    {"join", not_impl},       {NULL, NULL},
};

/* ---- arrays ---- */

static jv *a_list(jr *r, const jargs *a) {
  ensure_vals(r, a, "A");
  jv *in = a->v[0], *out = jv_array(r, in->u.a.n);
  for (size_t i = 0; i < in->u.a.n; i++) jv_push(r, out, in->u.a.v[i]);
  return out;
}
static jv *a_first(jr *r, const jargs *a) {
  ensure_vals(r, a, "A");
  return a->v[0]->u.a.n ? a->v[0]->u.a.v[0] : r->undef;
}
static jv *a_last(jr *r, const jargs *a) {
  ensure_vals(r, a, "A");
  return a->v[0]->u.a.n ? a->v[0]->u.a.v[a->v[0]->u.a.n - 1] : r->undef;
}
static jv *a_length(jr *r, const jargs *a) {
  ensure_vals(r, a, "A");
  return jv_int(r, (int64_t)a->v[0]->u.a.n);
}
static jv *a_slice(jr *r, const jargs *a) {
  ensure_count(r, a, 1, 4);
  ensure_vals(r, a, "AIii");
  int64_t start, stop, step;
  slice_args(r, a, &start, &stop, &step);
  jv *in = a->v[0];
  jv *out = in->t == JV_TUPLE ? jv_tuple(r, 0) : jv_array(r, 0);
  slice_ctx c = {NULL, in, out};
  slice_idx(r, a->pos, (int64_t)in->u.a.n, start, stop, step, emit_item, &c);
  return out;
}

static jv *item_attr(jr *r, size_t pos, jv *item, jv *attr) {
  jv *v = jv_obj_get(r, pos, item, attr);
  return v ? v : r->undef;
}

static jv *selectattr(jr *r, const jargs *a, bool reject) {
  ensure_count(r, a, 2, 4);
  ensure_vals(r, a, "ASss");
  jv *arr = a->v[0], *attr = a->v[1], *out = jv_array(r, 0);
  if (a->n == 2) {
    for (size_t i = 0; i < arr->u.a.n; i++) {
      jv *it = arr->u.a.v[i];
      if (it->t != JV_OBJECT) jr_fail(r, a->pos, "selectattr: item is not an object");
      bool sel = jv_as_bool(r, a->pos, item_attr(r, a->pos, it, attr));
      if (sel != reject) jv_push(r, out, it);
    }
    return out;
  }
  jv *tname = a->n == 3 ? a->v[1] : a->v[2];
  jv *tn = jv_as_string(r, a->pos, tname);
  jbi_fn fn = jinja_test_builtin(tn->u.s.p, tn->u.s.len);
  if (!fn) jr_fail(r, a->pos, "selectattr: unknown test '%.*s'", (int)tn->u.s.len, tn->u.s.p);
  jv *extra = a->n == 3 ? a->v[2] : a->v[3];
  for (size_t i = 0; i < arr->u.a.n; i++) {
    jv *it = arr->u.a.v[i], *subject = it;
    if (a->n == 4) {
      if (it->t != JV_OBJECT) jr_fail(r, a->pos, "selectattr: item is not an object");
      subject = item_attr(r, a->pos, it, attr);
    }
    jv *targs[2] = {subject, extra};
    jargs ta = {targs, 2, a->pos, "test"};
    bool sel = jv_as_bool(r, a->pos, fn(r, &ta));
    if (sel != reject) jv_push(r, out, it);
  }
  return out;
}
static jv *a_selectattr(jr *r, const jargs *a) { return selectattr(r, a, false); }
static jv *a_rejectattr(jr *r, const jargs *a) { return selectattr(r, a, true); }

static jv *at_index(jr *r, size_t pos, jv *arr, int64_t i) {
  int64_t n = (int64_t)arr->u.a.n;
  if (i < 0) i += n;
  if (i < 0 || i >= n)
    jr_fail(r, pos, "Index %lld out of bounds for array of size %lld", (long long)i, (long long)n);
  return arr->u.a.v[i];
}

static jv *at_key(jr *r, size_t pos, jv *obj, jv *key) {
  jv *v = jv_obj_get(r, pos, obj, key);
  if (!v) jr_fail(r, pos, "Key not found in value of type Object");
  return v;
}

static jv *a_join(jr *r, const jargs *a) {
  ensure_count(r, a, 1, 3);
  if (!jv_is_array(a->v[0])) jr_fail(r, a->pos, "join() first argument must be an array");
  jv *d = kw_or_pos(r, a, "d", 1), *attr = kw_or_pos(r, a, "attribute", 2);
  bool attr_int = attr->t == JV_INT;
  if (attr->t != JV_UNDEF && attr->t != JV_STR && !attr_int)
    jr_fail(r, a->pos, "join() attribute must be string or integer");
  jv *dl = d->t == JV_UNDEF ? r->empty_str : jv_as_string(r, a->pos, d);
  jv *arr = a->v[0];
  jsink out = {0};
  for (size_t i = 0; i < arr->u.a.n; i++) {
    jv *v = arr->u.a.v[i];
    if (attr->t != JV_UNDEF) {
      if (attr_int && jv_is_array(v))
        v = at_index(r, a->pos, v, attr->u.i);
      else if (!attr_int && v->t == JV_OBJECT)
        v = at_key(r, a->pos, v, attr);
    }
    if (v->t != JV_STR && v->t != JV_INT && v->t != JV_FLOAT)
      jr_fail(r, a->pos, "join() can only join arrays of strings or numerics");
    jv *s = jv_as_string(r, a->pos, v);
    jsink_put(r, &out, s->u.s.p, s->u.s.len);
    if (i + 1 < arr->u.a.n) jsink_put(r, &out, dl->u.s.p, dl->u.s.len);
  }
  return jv_str(r, out.p ? out.p : "", out.len);
}

static jv *repr_string(jr *r, const jargs *a) { return jv_as_string(r, a->pos, a->v[0]); }
static jv *a_string(jr *r, const jargs *a) {
  ensure_vals(r, a, "A");
  return repr_string(r, a);
}

static jv *a_map(jr *r, const jargs *a) {
  ensure_count(r, a, 2, 999);
  if (!jv_is_array(a->v[0])) jr_fail(r, a->pos, "map: first argument must be an array");
  if (a->v[1]->t != JV_KWARG)
    jr_fail(r, a->pos, "NotImplemented: map: filter-mapping not implemented");
  jv *in = a->v[0], *attr = kw_or_pos(r, a, "attribute", 1);
  bool attr_int = attr->t == JV_INT;
  if (attr->t != JV_STR && !attr_int)
    jr_fail(r, a->pos, "map: attribute must be string or integer");
  jv *def = undef_or(r, kwarg(a, "default"));
  jv *out = in->t == JV_TUPLE ? jv_tuple(r, in->u.a.n) : jv_array(r, in->u.a.n);
  for (size_t i = 0; i < in->u.a.n; i++) {
    jv *it = in->u.a.v[i], *v = def;
    if (attr_int) {
      if (jv_is_array(it)) {
        int64_t k = attr->u.i, n = (int64_t)it->u.a.n;
        if (k < 0) k += n;
        if (k >= 0 && k < n) v = it->u.a.v[k];
      }
    } else if (it->t == JV_OBJECT) {
      jv *x = jv_obj_get(r, a->pos, it, attr);
      if (x) v = x;
    }
    jv_push(r, out, v);
  }
  return out;
}

static jv *a_append(jr *r, const jargs *a) {
  ensure_count(r, a, 2, 999);
  if (!jv_is_array(a->v[0])) jr_fail(r, a->pos, "append: first argument must be an array");
  if (a->v[0]->t == JV_TUPLE) jr_fail(r, a->pos, "Attempting to modify immutable type");
  jv_push(r, a->v[0], a->v[1]);
  return a->v[0];
}

static jv *a_pop(jr *r, const jargs *a) {
  ensure_count(r, a, 1, 2);
  ensure_vals(r, a, "Ai");
  jv *arr = a->v[0];
  int64_t i = a->n == 2 ? jv_as_int(r, a->pos, a->v[1]) : -1;
  if (arr->t == JV_TUPLE) jr_fail(r, a->pos, "Attempting to modify immutable type");
  int64_t n = (int64_t)arr->u.a.n;
  if (i < 0) i += n;
  if (i < 0 || i >= n)
    jr_fail(r, a->pos, "Index %lld out of bounds for array of size %lld", (long long)i,
            (long long)n);
  jv *v = arr->u.a.v[i];
  memmove(arr->u.a.v + i, arr->u.a.v + i + 1, (size_t)(n - i - 1) * sizeof(jv *));
  arr->u.a.n--;
  return v;
}

typedef struct {
  jv *attr;
  bool attr_int, rev, by_value, pairs;
  size_t pos;
} sort_opts;

/* a < b in the sort's order (value_compare lt, or gt when reversed) */
static bool sort_less(jr *r, const sort_opts *o, jv *a, jv *b) {
  if (o->attr && o->attr->t != JV_UNDEF) {
    if (o->attr_int && jv_is_array(a) && jv_is_array(b)) {
      a = at_index(r, o->pos, a, o->attr->u.i);
      b = at_index(r, o->pos, b, o->attr->u.i);
    } else if (!o->attr_int && a->t == JV_OBJECT && b->t == JV_OBJECT) {
      a = at_key(r, o->pos, a, o->attr);
      b = at_key(r, o->pos, b, o->attr);
    } else {
      jr_fail(r, o->pos, "sort: unsupported object attribute comparison between %s and %s",
              jv_type_name(a), jv_type_name(b));
    }
  }
  return jv_compare(r, o->pos, a, b, o->rev ? CMP_GT : CMP_LT);
}

/* std::sort as libstdc++ implements it (introsort, median-of-three, heap sort past the depth
 * limit, insertion sort below 16), so that items comparing equal end up in the same order as in
 * llama.cpp. The guards on the "unguarded" loops never bind for a consistent comparator; they keep
 * an inconsistent one (mixed types compare oddly) inside the array. */
typedef struct {
  jr *r;
  const sort_opts *o;
  jv **base;
  size_t n;
} jsorter;

static bool lt(jsorter *s, jv *a, jv *b) {
  jr_step(s->r, s->o->pos, 1);
  return sort_less(s->r, s->o, a, b);
}

static void swap_(jv **a, jv **b) {
  jv *t = *a;
  *a = *b;
  *b = t;
}

static void push_heap_(jsorter *s, jv **f, size_t hole, size_t top, jv *val) {
  size_t parent = hole ? (hole - 1) / 2 : 0;
  while (hole > top && lt(s, f[parent], val)) {
    f[hole] = f[parent];
    hole = parent;
    parent = hole ? (hole - 1) / 2 : 0;
  }
  f[hole] = val;
}

static void adjust_heap_(jsorter *s, jv **f, size_t hole, size_t len, jv *val) {
  size_t top = hole, child = hole;
  while (len > 0 && child < (len - 1) / 2) {
    child = 2 * (child + 1);
    if (lt(s, f[child], f[child - 1])) child--;
    f[hole] = f[child];
    hole = child;
  }
  if ((len & 1) == 0 && len >= 2 && child == (len - 2) / 2) {
    child = 2 * (child + 1);
    f[hole] = f[child - 1];
    hole = child - 1;
  }
  push_heap_(s, f, hole, top, val);
}

static void heap_sort_(jsorter *s, jv **f, size_t len) {
  if (len < 2) return;
  for (size_t parent = (len - 2) / 2;; parent--) {
    adjust_heap_(s, f, parent, len, f[parent]);
    if (parent == 0) break;
  }
  while (len > 1) {
    len--;
    jv *v = f[len];
    f[len] = f[0];
    adjust_heap_(s, f, 0, len, v);
  }
}

static void median_to_first(jsorter *s, jv **res, jv **a, jv **b, jv **c) {
  if (lt(s, *a, *b)) {
    if (lt(s, *b, *c))
      swap_(res, b);
    else if (lt(s, *a, *c))
      swap_(res, c);
    else
      swap_(res, a);
  } else if (lt(s, *a, *c)) {
    swap_(res, a);
  } else if (lt(s, *b, *c)) {
    swap_(res, c);
  } else {
    swap_(res, b);
  }
}

static jv **partition_(jsorter *s, jv **first, jv **last, jv **pivot) {
  jv **lo = first, **hi = last;
  while (true) {
    while (first < hi && lt(s, *first, *pivot)) ++first;
    --last;
    while (last > lo && lt(s, *pivot, *last)) --last;
    if (!(first < last)) return first;
    swap_(first, last);
    ++first;
  }
}

static void introsort_(jsorter *s, jv **first, jv **last, int depth) {
  while (last - first > 16) {
    if (depth == 0) {
      heap_sort_(s, first, (size_t)(last - first));
      return;
    }
    --depth;
    jv **mid = first + (last - first) / 2;
    median_to_first(s, first, first + 1, mid, last - 1);
    jv **cut = partition_(s, first + 1, last, first);
    introsort_(s, cut, last, depth);
    last = cut;
  }
}

static void linear_insert_(jsorter *s, jv **pos, jv **begin) {
  jv *val = *pos;
  jv **next = pos - 1;
  while (next >= begin && lt(s, val, *next)) {
    *pos = *next;
    pos = next;
    --next;
  }
  *pos = val;
}

static void insertion_sort_(jsorter *s, jv **first, jv **last) {
  if (first == last) return;
  for (jv **i = first + 1; i != last; ++i) {
    if (lt(s, *i, *first)) {
      jv *val = *i;
      memmove(first + 1, first, (size_t)(i - first) * sizeof(jv *));
      *first = val;
    } else {
      linear_insert_(s, i, first);
    }
  }
}

static void std_sort(jr *r, const sort_opts *o, jv **v, size_t n) {
  if (n < 2) return;
  jsorter s = {r, o, v, n};
  int lg = 0;
  while (((size_t)1 << (lg + 1)) <= n) lg++;
  introsort_(&s, v, v + n, lg * 2);
  if (n > 16) {
    insertion_sort_(&s, v, v + 16);
    for (jv **i = v + 16; i != v + n; ++i) linear_insert_(&s, i, v);
  } else {
    insertion_sort_(&s, v, v + n);
  }
}

static jv *a_sort(jr *r, const jargs *a) {
  ensure_count(r, a, 1, 4);
  if (!jv_is_array(a->v[0])) jr_fail(r, a->pos, "sort: first argument must be an array");
  jv *in = a->v[0];
  sort_opts o = {0};
  o.rev = jv_as_bool(r, a->pos, kw_or_pos(r, a, "reverse", 1));
  o.attr = kw_or_pos(r, a, "attribute", 3);
  o.attr_int = o.attr->t == JV_INT;
  o.pos = a->pos;
  size_t n = in->u.a.n;
  jv *out = in->t == JV_TUPLE ? jv_tuple(r, n) : jv_array(r, n);
  for (size_t i = 0; i < n; i++) jv_push(r, out, in->u.a.v[i]);
  std_sort(r, &o, out->u.a.v, n);
  return out;
}

static jv *a_reverse(jr *r, const jargs *a) {
  ensure_vals(r, a, "A");
  jv *in = a->v[0];
  size_t n = in->u.a.n;
  jv *out = in->t == JV_TUPLE ? jv_tuple(r, n) : jv_array(r, n);
  for (size_t i = n; i-- > 0;) jv_push(r, out, in->u.a.v[i]);
  return out;
}

static jv *minmax(jr *r, const jargs *a, int op) {
  ensure_count(r, a, 1, 4);
  ensure_vals(r, a, "A");
  jv *attr = kw_or_pos(r, a, "attribute", 2);
  if (attr->t != JV_UNDEF)
    jr_fail(r, a->pos, "NotImplemented: %s: attribute not implemented", a->name);
  jv *arr = a->v[0];
  if (!arr->u.a.n) return r->undef;
  jv *res = arr->u.a.v[0];
  for (size_t i = 1; i < arr->u.a.n; i++)
    if (jv_compare(r, a->pos, arr->u.a.v[i], res, op)) res = arr->u.a.v[i];
  return res;
}
static jv *a_min(jr *r, const jargs *a) { return minmax(r, a, CMP_LT); }
static jv *a_max(jr *r, const jargs *a) { return minmax(r, a, CMP_GT); }

static const jbuiltin arr_bi[] = {
    {"default", f_default},
    {"list", a_list},
    {"first", a_first},
    {"last", a_last},
    {"length", a_length},
    {"slice", a_slice},
    {"selectattr", a_selectattr},
    {"select", a_selectattr},
    {"rejectattr", a_rejectattr},
    {"reject", a_rejectattr},
    {"join", a_join},
    {"string", a_string},
    {"tojson", bi_tojson},
    {"map", a_map},
    {"append", a_append},
    {"pop", a_pop},
    {"sort", a_sort},
    {"reverse", a_reverse},
    {"min", a_min},
    {"max", a_max},
    {"unique", not_impl},
    {NULL, NULL},
};

/* ---- objects ---- */

static jv *o_get(jr *r, const jargs *a) {
  ensure_count(r, a, 2, 3);
  if (a->v[0]->t != JV_OBJECT) jr_fail(r, a->pos, "get: first argument must be an object");
  if (a->v[1]->t != JV_STR) jr_fail(r, a->pos, "get: second argument must be a string (key)");
  jv *def = a->n == 3 ? a->v[2] : r->none;
  jv *v = jv_obj_get(r, a->pos, a->v[0], a->v[1]);
  return v ? v : def;
}
static jv *o_keys(jr *r, const jargs *a) {
  ensure_vals(r, a, "O");
  jv *o = a->v[0], *out = jv_array(r, o->u.o.n);
  for (size_t i = 0; i < o->u.o.n; i++) jv_push(r, out, o->u.o.k[i]);
  return out;
}
static jv *o_values(jr *r, const jargs *a) {
  ensure_vals(r, a, "O");
  jv *o = a->v[0], *out = jv_array(r, o->u.o.n);
  for (size_t i = 0; i < o->u.o.n; i++) jv_push(r, out, o->u.o.v[i]);
  return out;
}
static jv *o_items(jr *r, const jargs *a) {
  ensure_vals(r, a, "O");
  jv *o = a->v[0], *out = jv_array(r, o->u.o.n);
  for (size_t i = 0; i < o->u.o.n; i++) {
    jv *t = jv_tuple(r, 2);
    jv_push(r, t, o->u.o.k[i]);
    jv_push(r, t, o->u.o.v[i]);
    jv_push(r, out, t);
  }
  return out;
}
static jv *o_string(jr *r, const jargs *a) {
  ensure_vals(r, a, "O");
  return repr_string(r, a);
}
static jv *o_length(jr *r, const jargs *a) {
  ensure_vals(r, a, "O");
  return jv_int(r, (int64_t)a->v[0]->u.o.n);
}

static jv *o_dictsort(jr *r, const jargs *a) {
  jv *in = arg(r, a, 0);
  jv *by = kw_or_pos(r, a, "by", 2);
  sort_opts o = {0};
  o.rev = jv_as_bool(r, a->pos, kw_or_pos(r, a, "reverse", 3));
  o.pos = a->pos;
  bool by_value = by->t == JV_STR && by->u.s.len == 5 && memcmp(by->u.s.p, "value", 5) == 0;
  size_t n = in->t == JV_OBJECT ? in->u.o.n : 0;
  /* sort pair tuples by their key or value */
  jv **pairs = jr_alloc(r, (n ? n : 1) * sizeof(jv *));
  for (size_t i = 0; i < n; i++) {
    jv *t = jv_tuple(r, 2);
    jv_push(r, t, in->u.o.k[i]);
    jv_push(r, t, in->u.o.v[i]);
    pairs[i] = t;
  }
  o.attr = jv_int(r, by_value ? 1 : 0);
  o.attr_int = true;
  std_sort(r, &o, pairs, n);
  jv *out = jv_object(r);
  for (size_t i = 0; i < n; i++) jv_obj_set(r, a->pos, out, pairs[i]->u.a.v[0], pairs[i]->u.a.v[1]);
  return out;
}

static const jbuiltin obj_bi[] = {
    {"get", o_get},        {"keys", o_keys},     {"values", o_values}, {"items", o_items},
    {"tojson", bi_tojson}, {"string", o_string}, {"length", o_length}, {"dictsort", o_dictsort},
    {"join", not_impl},    {NULL, NULL},
};

jbi_fn jinja_type_builtin(jr *r, size_t pos, jv *v, const char *name, size_t len) {
  const jbuiltin *t;
  switch (v->t) {
    case JV_INT:
      t = int_bi;
      break;
    case JV_FLOAT:
      t = float_bi;
      break;
    case JV_BOOL:
      t = bool_bi;
      break;
    case JV_STR:
      t = str_bi;
      break;
    case JV_ARRAY:
    case JV_TUPLE:
      t = arr_bi;
      break;
    case JV_OBJECT:
      if (v->nobi) return NULL;
      t = obj_bi;
      break;
    case JV_NONE:
      t = none_bi;
      break;
    case JV_UNDEF:
      t = undef_bi;
      break;
    default:
      jr_fail(r, pos, "%s has no builtins", jv_type_name(v));
  }
  return find(t, name, len);
}
