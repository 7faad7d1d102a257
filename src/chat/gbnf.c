/* gbnf.c — see gbnf.h. */
#include "gbnf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 48

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Find the rule whose name (by_body == 0) or body equals s; 0 when none, else index + 1. */
static size_t map_find(const sy_gbnf *g, const sy_gbnf_map *m, const char *s, int body) {
  if (!m->cap) return 0;
  for (size_t i = hash_str(s) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    size_t v = m->slot[i];
    if (!v) return 0;
    const char *k = body ? g->rules[v - 1].body : g->rules[v - 1].name;
    if (k && strcmp(k, s) == 0) return v;
  }
}

static int map_put(sy_gbnf *g, sy_gbnf_map *m, size_t idx, int body) {
  if ((g->n + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    size_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    size_t *old = m->slot, ocap = m->cap;
    m->slot = slot;
    m->cap = cap;
    for (size_t i = 0; i < ocap; i++) {
      if (!old[i]) continue;
      const char *k = body ? g->rules[old[i] - 1].body : g->rules[old[i] - 1].name;
      size_t j = hash_str(k) & (cap - 1);
      while (slot[j]) j = (j + 1) & (cap - 1);
      slot[j] = old[i];
    }
    free(old);
  }
  const char *k = body ? g->rules[idx].body : g->rules[idx].name;
  size_t j = hash_str(k) & (m->cap - 1);
  while (m->slot[j]) j = (j + 1) & (m->cap - 1);
  m->slot[j] = idx + 1;
  return 0;
}

void sy_gbnf_init(sy_gbnf *g, size_t max_rules, size_t max_bytes) {
  memset(g, 0, sizeof *g);
  g->max_rules = max_rules;
  g->max_bytes = max_bytes;
}

void sy_gbnf_free(sy_gbnf *g) {
  for (size_t i = 0; i < g->n; i++) {
    free(g->rules[i].name);
    free(g->rules[i].body);
  }
  free(g->rules);
  free(g->by_name.slot);
  free(g->by_body.slot);
  memset(g, 0, sizeof *g);
}

/* A free rule name made from hint: only [a-zA-Z0-9-], bounded, numbered when taken. */
static char *free_name(const sy_gbnf *g, const char *hint) {
  char base[NAME_MAX_LEN + 1];
  size_t n = 0;
  for (const char *p = hint; *p && n < NAME_MAX_LEN; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    base[n++] = ok ? c : '-';
  }
  if (n == 0) base[n++] = 'r';
  base[n] = '\0';
  char name[NAME_MAX_LEN + 24];
  snprintf(name, sizeof name, "%s", base);
  for (size_t i = 1; map_find(g, &g->by_name, name, 0); i++) {
    snprintf(name, sizeof name, "%s%zu", base, i);
  }
  return strdup(name);
}

static size_t push_rule(sy_gbnf *g, const char *hint, const char *body) {
  if (g->full) return 0;
  size_t add = strlen(hint) + 32 + (body ? strlen(body) : 0);
  if (g->n >= g->max_rules || g->bytes + add > g->max_bytes) goto full;
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 32;
    struct sy_gbnf_rule *r = realloc(g->rules, cap * sizeof *r);
    if (!r) goto full;
    g->rules = r;
    g->cap = cap;
  }
  char *name = free_name(g, hint);
  char *b = body ? strdup(body) : NULL;
  if (!name || (body && !b)) {
    free(name);
    free(b);
    goto full;
  }
  g->rules[g->n] = (struct sy_gbnf_rule){name, b};
  if (map_put(g, &g->by_name, g->n, 0) || (b && map_put(g, &g->by_body, g->n, 1))) {
    /* the rule is kept (freed with g) but the builder is done */
    g->n++;
    goto full;
  }
  g->bytes += add;
  return ++g->n;
full:
  g->full = 1;
  return 0;
}

const char *sy_gbnf_add(sy_gbnf *g, const char *hint, const char *body) {
  if (g->full) return NULL;
  size_t same = map_find(g, &g->by_body, body, 1);
  if (same) return g->rules[same - 1].name;
  size_t i = push_rule(g, hint, body);
  return i ? g->rules[i - 1].name : NULL;
}

const char *sy_gbnf_find(const sy_gbnf *g, const char *body) {
  size_t i = map_find(g, &g->by_body, body, 1);
  return i ? g->rules[i - 1].name : NULL;
}

const char *sy_gbnf_reserve(sy_gbnf *g, const char *hint) {
  size_t i = push_rule(g, hint, NULL);
  return i ? g->rules[i - 1].name : NULL;
}

int sy_gbnf_define(sy_gbnf *g, const char *name, const char *body) {
  if (g->full) return -1;
  size_t i = map_find(g, &g->by_name, name, 0);
  if (!i || g->rules[i - 1].body) return -1;
  size_t add = strlen(body);
  if (g->bytes + add > g->max_bytes) {
    g->full = 1;
    return -1;
  }
  char *b = strdup(body);
  if (!b) {
    g->full = 1;
    return -1;
  }
  g->rules[i - 1].body = b;
  g->bytes += add;
  if (map_put(g, &g->by_body, i - 1, 1)) {
    g->full = 1;
    return -1;
  }
  return 0;
}

char *sy_gbnf_render(const sy_gbnf *g) {
  if (g->full) return NULL;
  sy_buf out = {0};
  for (size_t i = 0; i < g->n; i++) {
    if (!g->rules[i].body ||
        sy_buf_printf(&out, "%s ::= %s\n", g->rules[i].name, g->rules[i].body) != 0) {
      sy_buf_free(&out);
      return NULL;
    }
  }
  if (!out.data && sy_buf_append(&out, "", 0) != 0) return NULL;
  return out.data;
}

int sy_gbnf_lit(sy_buf *b, const char *s, size_t n) {
  int rc = sy_buf_puts(b, "\"");
  for (size_t i = 0; i < n && rc == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"':
        rc = sy_buf_puts(b, "\\\"");
        break;
      case '\\':
        rc = sy_buf_puts(b, "\\\\");
        break;
      case '\n':
        rc = sy_buf_puts(b, "\\n");
        break;
      case '\r':
        rc = sy_buf_puts(b, "\\r");
        break;
      case '\t':
        rc = sy_buf_puts(b, "\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          rc = sy_buf_printf(b, "\\x%02X", c);
        } else {
          rc = sy_buf_append(b, &s[i], 1);
        }
    }
  }
  return rc ? rc : sy_buf_puts(b, "\"");
}

int sy_gbnf_class_cp(sy_buf *b, uint32_t cp) {
  if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9')) {
    char c = (char)cp;
    return sy_buf_append(b, &c, 1);
  }
  if (cp < 0x80) return sy_buf_printf(b, "\\x%02X", (unsigned)cp);
  if (cp <= 0xFFFF) return sy_buf_printf(b, "\\u%04X", (unsigned)cp);
  return sy_buf_printf(b, "\\U%08X", (unsigned)cp);
}
