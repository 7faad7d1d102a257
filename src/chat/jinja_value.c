/* jinja_value.c — values, their conversions and printing, as llama.cpp's common/jinja/value.cpp
 * defines them: truthiness, Python-style repr, JSON, equality (1 == 1.0 == true), object keys. */
#include "jinja_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- errors and budgets ---- */

void jr_fail(jr *r, size_t pos, const char *fmt, ...) {
  if (r->err && r->err_len) {
    int line, col;
    if (pos == 0) pos = r->cur_pos;
    jinja_line_col(r->t->src, r->t->len, pos, &line, &col);
    int k = snprintf(r->err, r->err_len, "jinja: %d:%d: ", line, col);
    if (k >= 0 && (size_t)k < r->err_len) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(r->err + k, r->err_len - (size_t)k, fmt, ap);
      va_end(ap);
    }
    for (char *q = r->err; *q; q++)
      if (*q == '\n' || *q == '\r') *q = ' ';
  }
  longjmp(*r->fail_jb, 1);
}

void jr_oom(jr *r) { jr_fail(r, 0, "render needs more memory than allowed"); }

void jr_step(jr *r, size_t pos, long n) {
  r->steps += n;
  if (r->steps > r->max_steps)
    jr_fail(r, pos, "template runs too long (more than %ld steps)", r->max_steps);
}

void *jr_alloc(jr *r, size_t n) {
  void *p = ja_alloc(&r->arena, n);
  if (!p) jr_oom(r);
  return p;
}

char *jr_strdup(jr *r, const char *p, size_t n) {
  char *s = jr_alloc(r, n + 1);
  if (n) memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* ---- constructors ---- */

static jv *mkv(jr *r, int t) {
  jv *v = jr_alloc(r, sizeof(*v));
  v->t = (uint8_t)t;
  return v;
}

jv *jv_int(jr *r, int64_t i) {
  if (i >= -128 && i < 1024) {
    jv **slot = &r->small_ints[i + 128];
    if (!*slot) {
      *slot = mkv(r, JV_INT);
      (*slot)->u.i = i;
    }
    return *slot;
  }
  jv *v = mkv(r, JV_INT);
  v->u.i = i;
  return v;
}

jv *jv_float(jr *r, double f) {
  jv *v = mkv(r, JV_FLOAT);
  v->u.f = f;
  return v;
}

jv *jv_bool(jr *r, bool b) { return b ? r->vtrue : r->vfalse; }

jv *jv_undef(jr *r, const char *hint) {
  if (!hint) return r->undef;
  jv *v = mkv(r, JV_UNDEF);
  v->u.hint = hint;
  return v;
}

jv *jv_str(jr *r, const char *p, size_t len) {
  jv *v = mkv(r, JV_STR);
  v->u.s.p = p ? p : "";
  v->u.s.len = len;
  return v;
}

jv *jv_str_copy(jr *r, const char *p, size_t len) {
  if (len > r->max_output) jr_fail(r, 0, "string longer than %zu bytes", r->max_output);
  jr_step(r, 0, (long)(len / 16));
  return jv_str(r, jr_strdup(r, p, len), len);
}

jv *jv_str_cstr(jr *r, const char *s) { return jv_str_copy(r, s, strlen(s)); }

jv *jv_array(jr *r, size_t cap) {
  jv *v = mkv(r, JV_ARRAY);
  if (cap) {
    v->u.a.v = jr_alloc(r, cap * sizeof(jv *));
    v->u.a.cap = cap;
  }
  return v;
}

jv *jv_tuple(jr *r, size_t cap) {
  jv *v = jv_array(r, cap);
  v->t = JV_TUPLE;
  return v;
}

jv *jv_object(jr *r) { return mkv(r, JV_OBJECT); }

jv *jv_kwarg(jr *r, const char *key, jv *val) {
  jv *v = mkv(r, JV_KWARG);
  v->u.kw.key = key;
  v->u.kw.val = val;
  return v;
}

jv *jv_func_builtin(jr *r, const char *name, jbi_fn fn, jv *self) {
  jv *v = mkv(r, JV_FUNC);
  v->u.fn.kind = JF_BUILTIN;
  v->u.fn.name = name;
  v->u.fn.bi = fn;
  v->u.fn.self = self;
  return v;
}

void jv_push(jr *r, jv *arr, jv *item) {
  jr_step(r, 0, 1);
  if (arr->u.a.n == arr->u.a.cap) {
    size_t nc = arr->u.a.cap ? arr->u.a.cap * 2 : 4;
    jv **nv = jr_alloc(r, nc * sizeof(jv *));
    if (arr->u.a.n) memcpy(nv, arr->u.a.v, arr->u.a.n * sizeof(jv *));
    arr->u.a.v = nv;
    arr->u.a.cap = nc;
  }
  arr->u.a.v[arr->u.a.n++] = item;
}

/* ---- numbers ---- */

double jv_int_flt(int64_t i) {
  double d = (double)i;
  if (d >= 9223372036854775808.0) return INFINITY;
  if ((int64_t)d != i) return i < 0 ? -INFINITY : INFINITY;
  return d;
}

int64_t jv_d2i(double d) {
  /* what static_cast<int64_t> gives on x86 (cvttsd2si): INT64_MIN when out of range */
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return INT64_MIN;
  return (int64_t)d;
}

static int64_t val_int(const jv *v) {
  if (v->t == JV_FLOAT) return isfinite(v->u.f) ? jv_d2i(v->u.f) : 0;
  return v->u.i;
}

static double val_flt(const jv *v) {
  if (v->t == JV_FLOAT) return v->u.f;
  if (v->t == JV_BOOL) return (double)v->u.i;
  return jv_int_flt(v->u.i);
}

static bool is_numeric(const jv *v) {
  return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL;
}

bool jv_is_array(const jv *v) { return v->t == JV_ARRAY || v->t == JV_TUPLE; }

bool jv_is_num(const jv *v) { return v->t == JV_INT || v->t == JV_FLOAT; }

const char *jv_type_name(const jv *v) {
  static const char *const names[] = {"Undefined", "None",     "Boolean", "Integer",
                                      "Float",     "String",   "Array",   "Tuple",
                                      "Object",    "Function", "KwArg"};
  return names[v->t];
}

bool jv_as_bool(jr *r, size_t pos, const jv *v) {
  switch (v->t) {
    case JV_INT:
    case JV_BOOL:
      return v->u.i != 0;
    case JV_FLOAT:
      return v->u.f != 0.0;
    case JV_STR:
      return v->u.s.len > 0;
    case JV_ARRAY:
    case JV_TUPLE:
      return v->u.a.n > 0;
    case JV_OBJECT:
      return v->u.o.n > 0;
    case JV_NONE:
    case JV_UNDEF:
      return false;
    default:
      jr_fail(r, pos, "%s is not a bool value", jv_type_name(v));
  }
}

int64_t jv_as_int(jr *r, size_t pos, const jv *v) {
  if (is_numeric(v)) return val_int(v);
  jr_fail(r, pos, "%s is not an int value", jv_type_name(v));
}

double jv_as_float(jr *r, size_t pos, const jv *v) {
  if (v->t == JV_INT || v->t == JV_FLOAT) return val_flt(v);
  jr_fail(r, pos, "%s is not a float value", jv_type_name(v));
}

void jv_float_str(double f, char *buf, size_t n) {
  snprintf(buf, n, "%f", f);
  size_t l = strlen(buf);
  while (l > 0 && buf[l - 1] == '0') l--;
  buf[l] = '\0';
  if (l > 0 && buf[l - 1] == '.' && l + 1 < n) {
    buf[l] = '0';
    buf[l + 1] = '\0';
  }
}

jv *jv_as_string(jr *r, size_t pos, jv *v) {
  char buf[400];
  switch (v->t) {
    case JV_STR:
      return v;
    case JV_INT:
      snprintf(buf, sizeof(buf), "%lld", (long long)v->u.i);
      return jv_str_cstr(r, buf);
    case JV_FLOAT:
      jv_float_str(v->u.f, buf, sizeof(buf));
      return jv_str_cstr(r, buf);
    case JV_BOOL:
      return jv_str(r, v->u.i ? "True" : "False", v->u.i ? 4 : 5);
    case JV_NONE:
      return jv_str(r, "None", 4);
    case JV_ARRAY:
    case JV_TUPLE:
    case JV_OBJECT: {
      jsink s = {0};
      jv_repr(r, pos, &s, v, 0);
      jv *out = jsink_to_str(r, &s);
      out->u.s.noffs = 0; /* one part */
      return out;
    }
    default:
      jr_fail(r, pos, "%s is not a string value", jv_type_name(v));
  }
}

/* ---- equality, hashing, comparison ---- */

bool jv_immutable(const jv *v) { return v->t != JV_ARRAY && v->t != JV_OBJECT; }

static bool hashable_d(const jv *v, int depth) {
  if (depth > JR_MAX_NEST) return false;
  switch (v->t) {
    case JV_INT:
    case JV_FLOAT:
    case JV_STR:
    case JV_BOOL:
    case JV_NONE:
    case JV_KWARG:
      return true;
    case JV_ARRAY:
    case JV_TUPLE:
      for (size_t i = 0; i < v->u.a.n; i++)
        if (!jv_immutable(v->u.a.v[i]) || !hashable_d(v->u.a.v[i], depth + 1)) return false;
      return true;
    case JV_OBJECT:
      for (size_t i = 0; i < v->u.o.n; i++)
        if (!jv_immutable(v->u.o.v[i]) || !hashable_d(v->u.o.v[i], depth + 1)) return false;
      return true;
    default:
      return false;
  }
}

bool jv_hashable(const jv *v) { return hashable_d(v, 0); }

static bool equiv_d(const jv *a, const jv *b, int depth) {
  if (depth > JR_MAX_NEST) return false;
  switch (a->t) {
    case JV_INT:
    case JV_FLOAT:
    case JV_BOOL:
      return is_numeric(b) && val_int(a) == val_int(b) && val_flt(a) == val_flt(b);
    case JV_STR:
      return b->t == JV_STR && a->u.s.len == b->u.s.len &&
             memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;
    case JV_ARRAY:
    case JV_TUPLE:
      if (b->t != a->t || !hashable_d(a, depth) || !hashable_d(b, depth) || a->u.a.n != b->u.a.n)
        return false;
      for (size_t i = 0; i < a->u.a.n; i++)
        if (!equiv_d(a->u.a.v[i], b->u.a.v[i], depth + 1)) return false;
      return true;
    case JV_OBJECT:
      if (b->t != JV_OBJECT || !hashable_d(a, depth) || !hashable_d(b, depth) ||
          a->u.o.n != b->u.o.n)
        return false;
      for (size_t i = 0; i < a->u.o.n; i++)
        if (!equiv_d(a->u.o.k[i], b->u.o.k[i], depth + 1) ||
            !equiv_d(a->u.o.v[i], b->u.o.v[i], depth + 1))
          return false;
      return true;
    case JV_NONE:
      return b->t == JV_NONE;
    case JV_UNDEF:
      return b->t == JV_UNDEF;
    case JV_FUNC:
      return b->t == JV_FUNC;
    case JV_KWARG:
      return b->t == JV_KWARG && strcmp(a->u.kw.key, b->u.kw.key) == 0 &&
             a->u.kw.val == b->u.kw.val;
  }
  return false;
}

bool jv_equiv(const jv *a, const jv *b) { return equiv_d(a, b, 0); }

static int bytes_cmp(const jv *a, const jv *b) {
  size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
  int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
  if (c) return c;
  return a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len ? 1 : 0;
}

bool jv_compare(jr *r, size_t pos, jv *a, jv *b, int op) {
  if (jv_is_num(a) && jv_is_num(b)) {
    double x = val_flt(a), y = val_flt(b);
    switch (op) {
      case CMP_EQ:
        return x == y;
      case CMP_GE:
        return x >= y;
      case CMP_GT:
        return x > y;
      case CMP_LT:
        return x < y;
      default:
        return x != y;
    }
  }
  if ((b->t == JV_STR && jv_is_num(a)) || (a->t == JV_STR && jv_is_num(b)) ||
      (a->t == JV_STR && b->t == JV_STR)) {
    int c = bytes_cmp(jv_as_string(r, pos, a), jv_as_string(r, pos, b));
    switch (op) {
      case CMP_EQ:
        return c == 0;
      case CMP_GE:
        return c >= 0;
      case CMP_GT:
        return c > 0;
      case CMP_LT:
        return c < 0;
      default:
        return c != 0;
    }
  }
  if (a->t == JV_BOOL && b->t == JV_BOOL) {
    if (op == CMP_EQ) return a->u.i == b->u.i;
    if (op == CMP_NE) return a->u.i != b->u.i;
    jr_fail(r, pos, "Unsupported comparison operator for bool type");
  }
  return false;
}

/* ---- objects ---- */

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

static uint64_t key_hash(const jv *k, int depth) {
  switch (k->t) {
    case JV_STR: {
      uint64_t h = 0xcbf29ce484222325ULL;
      for (size_t i = 0; i < k->u.s.len; i++)
        h = (h ^ (unsigned char)k->u.s.p[i]) * 0x100000001b3ULL;
      return h;
    }
    case JV_INT:
    case JV_FLOAT:
    case JV_BOOL:
      return mix((uint64_t)val_int(k) + 0x9e3779b97f4a7c15ULL);
    case JV_TUPLE:
    case JV_ARRAY: {
      uint64_t h = 77;
      if (depth < JR_MAX_NEST)
        for (size_t i = 0; i < k->u.a.n; i++) h = mix(h * 31 + key_hash(k->u.a.v[i], depth + 1));
      return h;
    }
    default:
      return 12345;
  }
}

static void obj_reindex(jr *r, jv *o) {
  size_t cap = 16;
  while (cap < o->u.o.n * 2 + 2) cap *= 2;
  o->u.o.idx = jr_alloc(r, cap * sizeof(uint32_t));
  o->u.o.icap = cap;
  for (size_t i = 0; i < o->u.o.n; i++) {
    size_t s = key_hash(o->u.o.k[i], 0) & (cap - 1);
    while (o->u.o.idx[s]) s = (s + 1) & (cap - 1);
    o->u.o.idx[s] = (uint32_t)(i + 1);
  }
}

static long obj_find(const jv *o, const jv *key) {
  if (o->u.o.idx) {
    size_t cap = o->u.o.icap, s = key_hash(key, 0) & (cap - 1);
    while (o->u.o.idx[s]) {
      size_t i = o->u.o.idx[s] - 1;
      if (jv_equiv(o->u.o.k[i], key)) return (long)i;
      s = (s + 1) & (cap - 1);
    }
    return -1;
  }
  for (size_t i = 0; i < o->u.o.n; i++)
    if (jv_equiv(o->u.o.k[i], key)) return (long)i;
  return -1;
}

static void check_key(jr *r, size_t pos, const jv *key) {
  if (!jv_immutable(key) || !jv_hashable(key))
    jr_fail(r, pos, "Object key of unhashable type: %s", jv_type_name(key));
}

jv *jv_obj_get(jr *r, size_t pos, jv *obj, jv *key) {
  check_key(r, pos, key);
  long i = obj_find(obj, key);
  return i < 0 ? NULL : obj->u.o.v[i];
}

jv *jv_obj_get_cstr(jv *obj, const char *key, size_t klen) {
  jv k = {.t = JV_STR};
  k.u.s.p = key;
  k.u.s.len = klen;
  long i = obj_find(obj, &k);
  return i < 0 ? NULL : obj->u.o.v[i];
}

void jv_obj_set(jr *r, size_t pos, jv *o, jv *key, jv *val) {
  check_key(r, pos, key);
  long i = obj_find(o, key);
  if (i >= 0) {
    o->u.o.v[i] = val;
    return;
  }
  jr_step(r, pos, 1);
  if (o->u.o.n == o->u.o.cap) {
    size_t nc = o->u.o.cap ? o->u.o.cap * 2 : 4;
    jv **nk = jr_alloc(r, nc * sizeof(jv *)), **nv = jr_alloc(r, nc * sizeof(jv *));
    if (o->u.o.n) {
      memcpy(nk, o->u.o.k, o->u.o.n * sizeof(jv *));
      memcpy(nv, o->u.o.v, o->u.o.n * sizeof(jv *));
    }
    o->u.o.k = nk;
    o->u.o.v = nv;
    o->u.o.cap = nc;
  }
  o->u.o.k[o->u.o.n] = key;
  o->u.o.v[o->u.o.n] = val;
  o->u.o.n++;
  if (o->u.o.n > 8) {
    if (!o->u.o.idx || o->u.o.n * 2 > o->u.o.icap) {
      obj_reindex(r, o);
    } else {
      size_t cap = o->u.o.icap, s = key_hash(key, 0) & (cap - 1);
      while (o->u.o.idx[s]) s = (s + 1) & (cap - 1);
      o->u.o.idx[s] = (uint32_t)o->u.o.n;
    }
  }
}

void jv_obj_set_cstr(jr *r, jv *obj, const char *key, jv *val) {
  jv_obj_set(r, 0, obj, jv_str(r, key, strlen(key)), val);
}

/* ---- sinks ---- */

static void sink_reserve(jr *r, jsink *s, size_t n) {
  if (n > r->max_output) jr_fail(r, 0, "output longer than %zu bytes", r->max_output);
  if (n + 1 <= s->cap) return;
  size_t nc = s->cap ? s->cap : 64;
  while (nc < n + 1) nc *= 2;
  char *np = jr_alloc(r, nc);
  if (s->len) memcpy(np, s->p, s->len);
  s->p = np;
  s->cap = nc;
}

void jsink_put(jr *r, jsink *s, const char *p, size_t n) {
  if (!n) return;
  if (n > r->max_output || s->len + n > r->max_output)
    jr_fail(r, 0, "output longer than %zu bytes", r->max_output);
  jr_step(r, 0, (long)(n / 16));
  sink_reserve(r, s, s->len + n);
  memcpy(s->p + s->len, p, n);
  s->len += n;
  s->p[s->len] = '\0';
}

/* Part boundaries only matter to capitalize/title; past this many a string is taken as one
 * part, so that concatenating in a loop cannot cost more memory in boundaries than in text. */
#define JR_MAX_PARTS 4096

static void sink_off(jr *r, jsink *s, size_t off) {
  if (off == 0 || (s->noffs && s->offs[s->noffs - 1] >= off) || s->noffs >= JR_MAX_PARTS) return;
  if (s->noffs == s->ocap) {
    size_t nc = s->ocap ? s->ocap * 2 : 8;
    size_t *no = jr_alloc(r, nc * sizeof(size_t));
    if (s->noffs) memcpy(no, s->offs, s->noffs * sizeof(size_t));
    s->offs = no;
    s->ocap = nc;
  }
  s->offs[s->noffs++] = off;
}

void jsink_part(jr *r, jsink *s) { sink_off(r, s, s->len); }

void jsink_put_str(jr *r, jsink *s, const jv *str) {
  size_t base = s->len;
  jsink_part(r, s);
  jsink_put(r, s, str->u.s.p, str->u.s.len);
  for (size_t i = 0; i < str->u.s.noffs; i++) sink_off(r, s, base + str->u.s.offs[i]);
}

jv *jsink_to_str(jr *r, jsink *s) {
  jsink_resolve(r, 0, s, 0);
  jv *v = jv_str(r, s->p ? s->p : "", s->len);
  /* parts that start at the very end hold nothing */
  size_t n = s->noffs;
  while (n && s->offs[n - 1] >= s->len) n--;
  v->u.s.offs = s->offs;
  v->u.s.noffs = n;
  return v;
}

void jsink_gather(jr *r, size_t pos, jsink *s, jv *v, int depth) {
  switch (v->t) {
    case JV_STR:
      jsink_put_str(r, s, v);
      break;
    case JV_INT:
    case JV_FLOAT:
    case JV_BOOL:
      jsink_put_str(r, s, jv_as_string(r, pos, v));
      break;
    case JV_ARRAY:
    case JV_TUPLE:
      if (depth > JR_MAX_NEST) jr_fail(r, pos, "value nests too deeply to print");
      for (size_t i = 0; i < v->u.a.n; i++) jsink_gather(r, pos, s, v->u.a.v[i], depth + 1);
      break;
    default:
      break;
  }
}

void jsink_emit(jr *r, size_t pos, jsink *s, jv *v) {
  if (!jv_is_array(v)) {
    jsink_gather(r, pos, s, v, 0);
    return;
  }
  if (s->ndefs == s->dcap) {
    size_t nc = s->dcap ? s->dcap * 2 : 4;
    jdefer *nd = jr_alloc(r, nc * sizeof(*nd));
    if (s->ndefs) memcpy(nd, s->defs, s->ndefs * sizeof(*nd));
    s->defs = nd;
    s->dcap = nc;
  }
  jr_step(r, pos, 1);
  s->defs[s->ndefs++] = (jdefer){s->len, v};
}

void jsink_resolve(jr *r, size_t pos, jsink *s, size_t from) {
  if (from >= s->ndefs) return;
  size_t start = s->defs[from].at, tail = s->len - start;
  char *old = jr_strdup(r, s->p ? s->p + start : "", tail);
  size_t k0 = 0;
  while (k0 < s->noffs && s->offs[k0] < start) k0++;
  size_t nold = s->noffs - k0;
  size_t *oldoffs = jr_alloc(r, (nold ? nold : 1) * sizeof(size_t));
  for (size_t i = 0; i < nold; i++) oldoffs[i] = s->offs[k0 + i] - start;
  size_t ndefs = s->ndefs;
  jdefer *defs = s->defs;
  s->len = start;
  s->noffs = k0;
  s->ndefs = from;
  size_t a = 0, oi = 0;
  for (size_t d = from; d <= ndefs; d++) {
    size_t b = d < ndefs ? defs[d].at - start : tail;
    size_t base = s->len;
    jsink_put(r, s, old + a, b - a);
    for (; oi < nold && oldoffs[oi] < b; oi++)
      if (oldoffs[oi] >= a) sink_off(r, s, base + oldoffs[oi] - a);
    if (d < ndefs) jsink_gather(r, pos, s, defs[d].arr, 0);
    a = b;
  }
  if (s->p) s->p[s->len] = '\0';
}

/* a ~ b. Building a string piece by piece (`set s = s ~ x` in a loop) would keep every
 * intermediate copy in the arena, so a concatenation leaves spare room after its bytes and the
 * next concatenation onto the same string writes there instead of copying. */
jv *jv_concat(jr *r, size_t pos, jv *a, jv *b) {
  size_t al = a->u.s.len, bl = b->u.s.len, total = al + bl;
  if (total > r->max_output || total < al)
    jr_fail(r, pos, "string longer than %zu bytes", r->max_output);
  jr_step(r, pos, (long)(bl / 16) + 1);
  jstrbuf *buf = a->u.s.buf;
  char *p;
  if (buf && a->u.s.p + al == buf->data + buf->used && buf->used + bl <= buf->cap) {
    p = (char *)a->u.s.p;
    memcpy(buf->data + buf->used, b->u.s.p, bl);
    buf->used += bl;
  } else {
    size_t cap = total < 32 ? 64 : total * 2;
    if (cap > r->max_output) cap = total > r->max_output ? total : r->max_output;
    buf = jr_alloc(r, sizeof(jstrbuf) + cap + 1);
    buf->cap = cap;
    buf->used = total;
    p = buf->data;
    if (al) memcpy(p, a->u.s.p, al);
    if (bl) memcpy(p + al, b->u.s.p, bl);
  }
  jv *v = jv_str(r, p, total);
  v->u.s.buf = buf;
  /* parts: a's, then b's first part, then b's */
  size_t n = a->u.s.noffs + (bl ? 1 : 0) + b->u.s.noffs;
  if (n > 4096) n = 0;
  if (n) {
    size_t *o = jr_alloc(r, n * sizeof(size_t)), k = 0;
    for (size_t i = 0; i < a->u.s.noffs; i++) o[k++] = a->u.s.offs[i];
    if (bl && al) o[k++] = al;
    for (size_t i = 0; i < b->u.s.noffs; i++)
      if (al + b->u.s.offs[i] > (k ? o[k - 1] : 0)) o[k++] = al + b->u.s.offs[i];
    v->u.s.offs = o;
    v->u.s.noffs = k;
  }
  return v;
}

/* ---- repr and JSON ---- */

static void put_cstr(jr *r, jsink *s, const char *c) { jsink_put(r, s, c, strlen(c)); }

void jv_repr(jr *r, size_t pos, jsink *s, jv *v, int depth) {
  if (depth > JR_MAX_NEST) jr_fail(r, pos, "value nests too deeply to print");
  switch (v->t) {
    case JV_STR:
      if (memchr(v->u.s.p, '\'', v->u.s.len)) {
        jv_to_json(r, pos, s, v, -1, 0, ", ", 2, ": ", 2, depth);
      } else {
        jsink_put(r, s, "'", 1);
        jsink_put(r, s, v->u.s.p, v->u.s.len);
        jsink_put(r, s, "'", 1);
      }
      break;
    case JV_ARRAY:
    case JV_TUPLE: {
      bool tup = v->t == JV_TUPLE;
      jsink_put(r, s, tup ? "(" : "[", 1);
      for (size_t i = 0; i < v->u.a.n; i++) {
        if (i) jsink_put(r, s, ", ", 2);
        jv_repr(r, pos, s, v->u.a.v[i], depth + 1);
      }
      if (tup && v->u.a.n == 1) jsink_put(r, s, ",", 1);
      jsink_put(r, s, tup ? ")" : "]", 1);
      break;
    }
    case JV_OBJECT:
      jsink_put(r, s, "{", 1);
      for (size_t i = 0; i < v->u.o.n; i++) {
        if (i) jsink_put(r, s, ", ", 2);
        jv_repr(r, pos, s, v->u.o.k[i], depth + 1);
        jsink_put(r, s, ": ", 2);
        jv_repr(r, pos, s, v->u.o.v[i], depth + 1);
      }
      jsink_put(r, s, "}", 1);
      break;
    case JV_UNDEF:
      if (v->u.hint) {
        put_cstr(r, s, "Undefined (hint: '");
        put_cstr(r, s, v->u.hint);
        put_cstr(r, s, "')");
      } else {
        put_cstr(r, s, "Undefined");
      }
      break;
    case JV_FUNC:
      put_cstr(r, s, "Function<");
      put_cstr(r, s, v->u.fn.name ? v->u.fn.name : "");
      put_cstr(r, s, ">(");
      if (v->u.fn.self) {
        jv *self = v->u.fn.self;
        if (self->t == JV_STR) {
          /* llama.cpp prints a string's parts for debugging here */
          size_t st = 0;
          for (size_t i = 0; i <= self->u.s.noffs; i++) {
            size_t en = i < self->u.s.noffs ? self->u.s.offs[i] : self->u.s.len;
            put_cstr(r, s, "TMPL:  ");
            jsink_put(r, s, self->u.s.p + st, en - st);
            put_cstr(r, s, "\n");
            st = en;
          }
        } else {
          jv_repr(r, pos, s, self, depth + 1);
        }
      }
      put_cstr(r, s, ")");
      break;
    case JV_KWARG:
      put_cstr(r, s, "KwArg");
      break;
    default:
      jsink_put_str(r, s, jv_as_string(r, pos, v));
      break;
  }
}

static void json_str(jr *r, jsink *s, const char *p, size_t n) {
  jsink_put(r, s, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    const char *e = NULL;
    char buf[8];
    switch (c) {
      case '"':
        e = "\\\"";
        break;
      case '\\':
        e = "\\\\";
        break;
      case '\b':
        e = "\\b";
        break;
      case '\f':
        e = "\\f";
        break;
      case '\n':
        e = "\\n";
        break;
      case '\r':
        e = "\\r";
        break;
      case '\t':
        e = "\\t";
        break;
      default:
        if (c < 0x20) {
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          e = buf;
        }
    }
    if (e) {
      jsink_put(r, s, p + run, i - run);
      jsink_put(r, s, e, strlen(e));
      run = i + 1;
    }
  }
  jsink_put(r, s, p + run, n - run);
  jsink_put(r, s, "\"", 1);
}

static void json_indent(jr *r, jsink *s, int n) {
  static const char sp[] = "                                ";
  while (n > 0) {
    int k = n > 32 ? 32 : n;
    jsink_put(r, s, sp, (size_t)k);
    n -= k;
  }
}

void jv_to_json(jr *r, size_t pos, jsink *s, jv *v, int indent, int lvl, const char *isep,
                size_t isl, const char *ksep, size_t ksl, int depth) {
  char buf[64];
  if (depth > JR_MAX_NEST) jr_fail(r, pos, "value nests too deeply for JSON");
  switch (v->t) {
    case JV_NONE:
    case JV_UNDEF:
      put_cstr(r, s, "null");
      break;
    case JV_BOOL:
      put_cstr(r, s, v->u.i ? "true" : "false");
      break;
    case JV_INT:
      snprintf(buf, sizeof(buf), "%lld", (long long)v->u.i);
      put_cstr(r, s, buf);
      break;
    case JV_FLOAT:
      snprintf(buf, sizeof(buf), "%g", v->u.f);
      put_cstr(r, s, buf);
      break;
    case JV_STR:
      json_str(r, s, v->u.s.p, v->u.s.len);
      break;
    case JV_ARRAY:
    case JV_TUPLE:
    case JV_OBJECT: {
      bool obj = v->t == JV_OBJECT;
      size_t n = obj ? v->u.o.n : v->u.a.n;
      jsink_put(r, s, obj ? "{" : "[", 1);
      if (n) {
        if (indent >= 0) jsink_put(r, s, "\n", 1);
        for (size_t i = 0; i < n; i++) {
          if (indent > 0) json_indent(r, s, (lvl + 1) * indent);
          if (obj) {
            jv *k = jv_as_string(r, pos, v->u.o.k[i]);
            json_str(r, s, k->u.s.p, k->u.s.len);
            jsink_put(r, s, ksep, ksl);
            jv_to_json(r, pos, s, v->u.o.v[i], indent, lvl + 1, isep, isl, ksep, ksl, depth + 1);
          } else {
            jv_to_json(r, pos, s, v->u.a.v[i], indent, lvl + 1, isep, isl, ksep, ksl, depth + 1);
          }
          if (i + 1 < n) jsink_put(r, s, isep, isl);
          if (indent >= 0) jsink_put(r, s, "\n", 1);
        }
        if (indent > 0) json_indent(r, s, lvl * indent);
      }
      jsink_put(r, s, obj ? "}" : "]", 1);
      break;
    }
    default:
      put_cstr(r, s, "null");
      break;
  }
}

/* ---- from JSON ---- */

jv *jv_from_json(jr *r, const json_t *j, int depth) {
  if (depth > JR_MAX_NEST) jr_fail(r, 0, "context JSON nests too deeply");
  jr_step(r, 0, 1);
  switch (json_typeof(j)) {
    case JSON_NULL:
      return r->none;
    case JSON_TRUE:
      return r->vtrue;
    case JSON_FALSE:
      return r->vfalse;
    case JSON_INTEGER:
      return jv_int(r, (int64_t)json_integer_value(j));
    case JSON_REAL:
      return jv_float(r, json_real_value(j));
    case JSON_STRING:
      return jv_str(r, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
      size_t n = json_array_size(j);
      jv *a = jv_array(r, n);
      for (size_t i = 0; i < n; i++)
        jv_push(r, a, jv_from_json(r, json_array_get(j, i), depth + 1));
      return a;
    }
    case JSON_OBJECT: {
      jv *o = jv_object(r);
      const char *k;
      json_t *val;
      void *it = json_object_iter((json_t *)j);
      while (it) {
        k = json_object_iter_key(it);
        val = json_object_iter_value(it);
        jv_obj_set(r, 0, o, jv_str(r, k, strlen(k)), jv_from_json(r, val, depth + 1));
        it = json_object_iter_next((json_t *)j, it);
      }
      return o;
    }
  }
  return r->none;
}
