/* matrix_yaml.c — the model matrix's readers: one YAML node into one checked value (a string, a
 * bool, an integer or a size within bounds, a duration, a list of strings, a mapping with a fixed
 * set of keys), and the key descriptor tables (matrix_int.h) that drive them for whole sections.
 * Every error names the key by its path and carries the node's own "file:line:col".
 *
 * This file must never accept a value it did not fully check (a number with trailing junk, an
 * out-of-range integer, an unknown or duplicate key), never read a string without its length
 * (a NUL inside is an error), and never return -1 without having written the error. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/matrix_int.h"

/* ---- errors --------------------------------------------------------------------------------- */

void mx_set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* "FILE:LINE:COL: reason" at node n; returns -1. */
int mx_at(loader *l, const yaml_node_t *n, const char *fmt, ...) {
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  mx_set_err(l->err, l->errlen, "%s:%zu:%zu: %s", l->file, n->start_mark.line + 1,
             n->start_mark.column + 1, what);
  return -1;
}

int mx_oom(loader *l) {
  mx_set_err(l->err, l->errlen, "%s: out of memory", l->file);
  return -1;
}

yaml_node_t *mx_node(loader *l, int id) { return yaml_document_get_node(l->doc, id); }

const char *mx_sval(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

bool mx_is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const char *s = mx_sval(n);
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* What a node is, for "expected X, got Y". */
const char *mx_got(const yaml_node_t *n, char *buf, size_t len) {
  if (n->type == YAML_MAPPING_NODE) return "a mapping";
  if (n->type == YAML_SEQUENCE_NODE) return "a list";
  if (mx_is_null(n)) return "nothing";
  const char *s = mx_sval(n);
  if (strlen(s) > 40)
    snprintf(buf, len, "'%.37s...'", s);
  else
    snprintf(buf, len, "'%s'", s);
  return buf;
}

/* A scalar that is a string: not null, no NUL inside. */
int mx_want_str(loader *l, const yaml_node_t *n, const char *path, const char **out) {
  char g[64];
  if (n->type != YAML_SCALAR_NODE || mx_is_null(n))
    return mx_at(l, n, "%s: expected a string, got %s", path, mx_got(n, g, sizeof g));
  if (strlen(mx_sval(n)) != n->data.scalar.length)
    return mx_at(l, n, "%s: the string contains a NUL byte", path);
  *out = mx_sval(n);
  return 0;
}

/* A plain true/false scalar. */
int mx_want_bool(loader *l, const yaml_node_t *n, const char *path, bool *out) {
  char g[64];
  const char *v = n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                      ? mx_sval(n)
                      : "";
  if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
    *out = true;
  else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
    *out = false;
  else
    return mx_at(l, n, "%s: expected true or false, got %s", path, mx_got(n, g, sizeof g));
  return 0;
}

int mx_want_str_dup(loader *l, const yaml_node_t *n, const char *path, char **out) {
  const char *s;
  if (mx_want_str(l, n, path, &s)) return -1;
  if (!*s) return mx_at(l, n, "%s: must not be empty", path);
  char *d = strdup(s);
  if (!d) return mx_oom(l);
  free(*out);
  *out = d;
  return 0;
}

/* Parse "[-+]digits" fully; -1 if not an integer, -2 if it overflows long long. */
static int parse_ll(const char *s, long long *v) {
  const char *p = s;
  if (*p == '-' || *p == '+') p++;
  if (!isdigit((unsigned char)*p)) return -1;
  for (const char *q = p; *q; q++)
    if (!isdigit((unsigned char)*q)) return -1;
  errno = 0;
  *v = strtoll(s, NULL, 10);
  return errno == ERANGE ? -2 : 0;
}

int mx_want_ll(loader *l, const yaml_node_t *n, const char *path, long long lo, long long hi,
               long long *out) {
  char g[64];
  long long v;
  int r = n->type == YAML_SCALAR_NODE && !mx_is_null(n) ? parse_ll(mx_sval(n), &v) : -1;
  if (r == -1) return mx_at(l, n, "%s: expected an integer, got %s", path, mx_got(n, g, sizeof g));
  if (r == -2 || v < lo || v > hi)
    return mx_at(l, n, "%s: %s is out of range (%lld..%lld)", path, mx_sval(n), lo, hi);
  *out = v;
  return 0;
}

int mx_want_int(loader *l, const yaml_node_t *n, const char *path, int lo, int hi, int *out) {
  long long v;
  if (mx_want_ll(l, n, path, lo, hi, &v)) return -1;
  *out = (int)v;
  return 0;
}

/* A memory size: bytes, or a number with KiB/MiB/GiB/TiB (or KB/MB/GB/TB, also powers of 1024,
 * as every GPU tool means them); lo..hi bytes. */
int mx_want_size(loader *l, const yaml_node_t *n, const char *path, long long lo, long long hi,
                 long long *out) {
  char g[64];
  const char *s = n->type == YAML_SCALAR_NODE && !mx_is_null(n) ? mx_sval(n) : NULL;
  char *end = NULL;
  double v = s ? strtod(s, &end) : -1;
  static const char *const units[] = {"",  "K",  "KB",  "KiB", "M",  "MB", "MiB",
                                      "G", "GB", "GiB", "T",   "TB", "TiB"};
  static const int shift[] = {0, 10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40};
  int u = -1;
  for (int i = 0; s && end != s && i < 13 && u < 0; i++)
    if (strcmp(end, units[i]) == 0) u = i;
  if (u < 0 || !(v >= 0))
    return mx_at(l, n, "%s: expected a size like 8GiB, 512MiB or a number of bytes, got %s", path,
                 mx_got(n, g, sizeof g));
  double bytes = v * (double)(1LL << shift[u]);
  if (bytes < (double)lo || bytes > (double)hi)
    return mx_at(l, n, "%s: %s is out of range (%lld..%lld bytes)", path, s, lo, hi);
  *out = (long long)bytes;
  return 0;
}

/* keep_alive: integer seconds, or a number with s, m or h; -1..INT_MAX seconds. */
int mx_want_duration(loader *l, const yaml_node_t *n, const char *path, int *out) {
  char g[64];
  if (n->type != YAML_SCALAR_NODE || mx_is_null(n))
    return mx_at(l, n, "%s: expected seconds or a duration like 30s, 5m, 2h, got %s", path,
                 mx_got(n, g, sizeof g));
  char num[32];
  const char *s = mx_sval(n);
  size_t len = strlen(s);
  long long mul = 1;
  if (len > 1 && strchr("smh", s[len - 1])) {
    mul = s[len - 1] == 's' ? 1 : s[len - 1] == 'm' ? 60 : 3600;
    len--;
  }
  long long v;
  int r = len < sizeof num ? 0 : -2;
  if (r == 0) {
    memcpy(num, s, len);
    num[len] = '\0';
    r = parse_ll(num, &v);
  }
  if (r == -1 || (r == 0 && mul > 1 && (num[0] == '-' || num[0] == '+')))
    return mx_at(l, n, "%s: expected seconds or a duration like 30s, 5m, 2h, got %s", path,
                 mx_got(n, g, sizeof g));
  if (r == -2 || v < -1 || v > INT_MAX / mul || (v == -1 && mul > 1))
    return mx_at(l, n, "%s: %s is out of range (-1..%d seconds)", path, s, INT_MAX);
  *out = (int)(v * mul);
  return 0;
}

int mx_want_kind(loader *l, const yaml_node_t *n, const char *path, yaml_node_type_t t) {
  char g[64];
  if (n->type == t) return 0;
  return mx_at(l, n, "%s: expected %s, got %s", path,
               t == YAML_MAPPING_NODE ? "a mapping" : "a list", mx_got(n, g, sizeof g));
}

/* Check a mapping against its allowed keys: vals[i] gets the value of keys[i] (NULL if absent).
 * Unknown, duplicate and non-string keys are errors at the key. */
int mx_want_map(loader *l, const yaml_node_t *n, const char *path, const char *const *keys,
                size_t nkeys, yaml_node_t **vals) {
  if (mx_want_kind(l, n, path, YAML_MAPPING_NODE)) return -1;
  for (size_t i = 0; i < nkeys; i++) vals[i] = NULL;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = mx_node(l, p->key), *v = mx_node(l, p->value);
    char g[64];
    if (!k || !v) return mx_at(l, n, "%s: malformed mapping", path);
    if (k->type != YAML_SCALAR_NODE)
      return mx_at(l, k, "%s%skeys must be strings, got %s", path, *path ? ": " : "",
                   mx_got(k, g, sizeof g));
    size_t i = 0;
    while (i < nkeys && strcmp(mx_sval(k), keys[i]) != 0) i++;
    if (i == nkeys)
      return mx_at(l, k, "%s%s%.64s: unknown key", path, *path ? "." : "", mx_sval(k));
    if (vals[i]) return mx_at(l, k, "%s%s%s: duplicate key", path, *path ? "." : "", keys[i]);
    vals[i] = v;
  }
  return 0;
}

/* A list of strings (null = empty) into a fresh vector; each passes check when given. */
int mx_want_str_list(loader *l, const yaml_node_t *n, const char *path, char ***out, size_t *nout,
                     bool (*check)(const char *), const char *check_what) {
  *out = NULL;
  *nout = 0;
  if (mx_is_null(n)) return 0;
  if (mx_want_kind(l, n, path, YAML_SEQUENCE_NODE)) return -1;
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++, i++) {
    yaml_node_t *e = mx_node(l, *it);
    char ipath[160];
    const char *s;
    snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
    if (!e || mx_want_str(l, e, ipath, &s)) goto fail;
    if (!*s) {
      mx_at(l, e, "%s: must not be empty", ipath);
      goto fail;
    }
    if (check && !check(s)) {
      mx_at(l, e, "%s: '%s' is not a valid %s", ipath, s, check_what);
      goto fail;
    }
    if (mx_strv_push(out, nout, s)) {
      mx_oom(l);
      goto fail;
    }
  }
  return 0;
fail:
  mx_strv_free(*out, *nout);
  *out = NULL;
  *nout = 0;
  return -1;
}

/* ---- key descriptor tables ------------------------------------------------------------------ */

int mx_want_keys(loader *l, const yaml_node_t *n, const char *path, const mx_key *keys,
                 size_t nkeys, yaml_node_t **vals) {
  const char *names[MX_MAX_KEYS];
  if (nkeys > MX_MAX_KEYS) return mx_at(l, n, "%s: internal error: too many keys", path);
  for (size_t i = 0; i < nkeys; i++) names[i] = keys[i].name;
  return mx_want_map(l, n, path, names, nkeys, vals);
}

/* One of k's choices (want_str first: a null or a list is "expected a string"); its index. */
static int want_choice(loader *l, const mx_key *k, const yaml_node_t *v, const char *path,
                       const char **out) {
  const char *s;
  if (mx_want_str(l, v, path, &s)) return -1;
  for (size_t i = 0; i < k->n_choices; i++)
    if (!strcmp(s, k->choices[i])) {
      *out = k->choices[i];
      return (int)i;
    }
  char known[256];
  size_t at = 0;
  known[0] = '\0';
  for (size_t i = 0; i < k->n_choices && at < sizeof known; i++) {
    int w = snprintf(known + at, sizeof known - at, "%s%s", i ? ", " : "", k->choices[i]);
    if (w < 0) break;
    at += (size_t)w;
  }
  return mx_at(l, v, "%s: unknown %s '%s' (known: %s)", path, k->what, s, known);
}

/* The row's value when the key is absent. */
static void key_default(const mx_key *k, void *dst) {
  switch (k->type) {
    case MX_BOOL:
      *(bool *)dst = k->dflt != 0;
      break;
    case MX_INT:
    case MX_DURATION:
    case MX_ENUM:
      *(int *)dst = k->dflt;
      break;
    case MX_SIZE:
      *(long long *)dst = k->dflt == UNSET ? UNSET_SIZE : k->dflt;
      break;
    case MX_STRING:
    case MX_ENUM_STR:
    case MX_CUSTOM:
      break; /* NULL (the struct starts zeroed) or the parser's own */
  }
}

static int key_read(loader *l, const mx_key *k, const yaml_node_t *v, const char *path,
                    void *base) {
  void *dst = (char *)base + k->off;
  const char *s;
  int i;
  switch (k->type) {
    case MX_BOOL:
      return mx_want_bool(l, v, path, dst);
    case MX_INT:
      return mx_want_int(l, v, path, (int)k->lo, (int)k->hi, dst);
    case MX_DURATION:
      return mx_want_duration(l, v, path, dst);
    case MX_SIZE:
      return mx_want_size(l, v, path, k->lo, k->hi, dst);
    case MX_STRING:
      return mx_want_str_dup(l, v, path, dst);
    case MX_ENUM:
      if ((i = want_choice(l, k, v, path, &s)) < 0) return -1;
      *(int *)dst = i;
      return 0;
    case MX_ENUM_STR: {
      if (want_choice(l, k, v, path, &s) < 0) return -1;
      char *d = strdup(s);
      if (!d) return mx_oom(l);
      free(*(char **)dst);
      *(char **)dst = d;
      return 0;
    }
    case MX_CUSTOM:
      return k->parse(l, base, v, path);
  }
  return mx_at(l, v, "%s: internal error: unknown key type", path);
}

int mx_keys_read(loader *l, const mx_key *keys, size_t nkeys, yaml_node_t *const *vals,
                 const yaml_node_t *map, const char *path, void *dst) {
  char p[192];
  for (size_t i = 0; i < nkeys; i++) {
    const mx_key *k = &keys[i];
    const yaml_node_t *v = vals[i];
    key_default(k, (char *)dst + k->off);
    if (v && (k->flags & MX_NULL_ABSENT) && mx_is_null(v)) v = NULL;
    if (!v && (k->flags & MX_REQUIRED))
      return mx_at(l, map, "%s: missing required key '%s'", path, k->name);
    if (!v && !(k->flags & MX_ALWAYS)) continue;
    snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k->name);
    if (key_read(l, k, v, p, dst)) return -1;
  }
  return 0;
}
