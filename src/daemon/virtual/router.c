/* router.c — the pure part of routers (router.h): a request's facts, the rules, the classifier's
 * message and answer, the fallback order; and the process's router counters for GET /metrics. */
#include "virtual/router.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Caps on what is copied out of a hostile body (the body itself is bounded by limits). */
#define FACTS_MAX_SYSTEM (64 << 10)
#define ROUTER_NAME_MAX 128 /* matrix.c's limit on a name */

/* ---- facts ---- */

/* Append a message's text (a string, or the text of its {type:"text"} parts) to b (when given,
 * up to cap bytes); note images and audio. Returns the text's length. */
static long long content_text(const json_t *content, sy_buf *b, size_t cap, router_facts *f) {
  long long n = 0;
  if (json_is_string(content)) {
    n = (long long)json_string_length(content);
    if (b && b->len + (size_t)n + 1 <= cap) {
      if (b->len) sy_buf_puts(b, "\n");
      sy_buf_append(b, json_string_value(content), (size_t)n);
    }
    return n;
  }
  if (!json_is_array(content)) return 0;
  size_t i;
  json_t *p;
  json_array_foreach(content, i, p) {
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) continue;
    if (!strcmp(type, "image_url"))
      f->images = true;
    else if (!strcmp(type, "input_audio"))
      f->audio = true;
    else if (!strcmp(type, "text")) {
      json_t *t = json_object_get(p, "text");
      if (!json_is_string(t)) continue;
      size_t len = json_string_length(t);
      if (b && b->len + len + 1 <= cap) {
        if (b->len) sy_buf_puts(b, "\n");
        sy_buf_append(b, json_string_value(t), len);
      }
      n += (long long)len;
    }
  }
  return n;
}

void router_facts_of(const json_t *req, bool chat, router_facts *f) {
  memset(f, 0, sizeof *f);
  json_t *tools = json_object_get(req, "tools");
  f->tools = json_is_array(tools) && json_array_size(tools) > 0;
  if (!chat) {
    json_t *p = json_object_get(req, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
    if (json_is_string(p)) {
      f->prompt_bytes = (long long)json_string_length(p);
      f->text = strndup(json_string_value(p), json_string_length(p));
    }
  } else {
    sy_buf sys = {0};
    const json_t *last_user = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(req, "messages"), i, m) {
      const char *role = json_string_value(json_object_get(m, "role"));
      bool is_sys = role && (!strcmp(role, "system") || !strcmp(role, "developer"));
      f->prompt_bytes +=
          content_text(json_object_get(m, "content"), is_sys ? &sys : NULL, FACTS_MAX_SYSTEM, f);
      if (role && !strcmp(role, "user")) last_user = json_object_get(m, "content");
    }
    if (sys.len) f->system = strndup(sys.data, sys.len);
    sy_buf_free(&sys);
    if (last_user) {
      sy_buf t = {0};
      router_facts scratch = {0};
      content_text(last_user, &t, (size_t)1 << 30, &scratch);
      f->text = t.len ? strndup(t.data, t.len) : NULL;
      sy_buf_free(&t);
    }
  }
  f->prompt_tokens = (f->prompt_bytes + ROUTER_BYTES_PER_TOKEN - 1) / ROUTER_BYTES_PER_TOKEN;
}

void router_facts_clear(router_facts *f) {
  free(f->system);
  free(f->text);
  memset(f, 0, sizeof *f);
}

const char *router_by_name(router_by b) {
  static const char *const names[ROUTER_BY_N] = {"rule", "classifier", "default", "fallback"};
  return (unsigned)b < ROUTER_BY_N ? names[b] : "?";
}

/* ---- rules ---- */

long router_match_rule(const matrix_router *rt, const router_facts *f) {
  for (size_t i = 0; i < rt->n_rules; i++) {
    const matrix_rule *r = &rt->rules[i];
    if (r->images && !f->images) continue;
    if (r->audio && !f->audio) continue;
    if (r->tools && !f->tools) continue;
    if (r->min_prompt_tokens > 0 && f->prompt_tokens < r->min_prompt_tokens) continue;
    if (r->system_tag && (!f->system || !strstr(f->system, r->system_tag))) continue;
    return (long)i;
  }
  return -1;
}

/* ---- the classifier ---- */

/* The longest prefix of s (len bytes) of at most max bytes that does not cut a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max) {
  if (len <= max) return len;
  size_t n = max;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  return n;
}

json_t *router_classifier_msg(const matrix_router *rt, const router_facts *f) {
  json_t *names = json_array();
  sy_buf q = {0};
  for (size_t i = 0; i < rt->n_cls_routes; i++) {
    const char *n = rt->routes[rt->cls_routes[i]].name;
    json_array_append_new(names, json_string(n));
    sy_buf_printf(&q, "%s%s", i ? ", " : "", n);
  }
  char *prompt = NULL;
  if (!rt->cls_prompt && asprintf(&prompt,
                                  "You are a router. Read the user's message and answer with the "
                                  "one route that should handle it, "
                                  "and nothing else. The routes: %s.",
                                  q.data ? q.data : "") < 0)
    prompt = NULL;
  const char *text = f->text ? f->text : "";
  size_t len = utf8_cut(text, strlen(text), (size_t)rt->cls_max_input_chars);
  json_t *msg =
      json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s%}], s:i, s:f, s:{s:s, s:{s:s, s:o}}, s:{s:b}}",
                "op", "generate", "messages", "role", "system", "content",
                rt->cls_prompt ? rt->cls_prompt
                : prompt       ? prompt
                               : "",
                "role", "user", "content", text, len, "max_tokens", rt->cls_max_tokens,
                "temperature", 0.0, "response_format", "type", "json_schema", "schema", "type",
                "string", "enum", names, "chat_template_kwargs", "enable_thinking", 0);
  free(prompt);
  sy_buf_free(&q);
  return msg;
}

long router_classifier_answer(const matrix_router *rt, const char *text, size_t len) {
  if (!text) return -1;
  while (len && (*text == ' ' || *text == '\n' || *text == '\t' || *text == '\r')) text++, len--;
  while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\t' ||
                 text[len - 1] == '\r'))
    len--;
  if (len >= 2 && text[0] == '"' && text[len - 1] == '"')
    text++, len -= 2; /* names need no JSON escapes */
  for (size_t i = 0; i < rt->n_cls_routes; i++) {
    const char *n = rt->routes[rt->cls_routes[i]].name;
    if (strlen(n) == len && !memcmp(n, text, len)) return (long)rt->cls_routes[i];
  }
  return -1;
}

size_t router_candidates(const matrix_router *rt, size_t chosen, size_t *out, size_t cap) {
  size_t n = 0;
  if (cap == 0) return 0;
  out[n++] = chosen;
  for (size_t i = 0; i < rt->n_fallback && n < cap; i++) {
    bool seen = false;
    for (size_t k = 0; k < n; k++) seen |= out[k] == rt->fallback[i];
    if (!seen) out[n++] = rt->fallback[i];
  }
  return n;
}

/* ---- counters ---- */

static const double cls_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BOUNDS (sizeof cls_bounds / sizeof cls_bounds[0])

typedef struct dec_row {
  char router[ROUTER_NAME_MAX + 1], route[MATRIX_ROUTE_NAME_MAX + 1];
  router_by by;
  unsigned long long n;
} dec_row;

typedef struct cls_row {
  char router[ROUTER_NAME_MAX + 1];
  unsigned long long buckets[N_BOUNDS], count, failed;
  double sum;
} cls_row;

static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static dec_row *dec_rows;
static size_t n_dec;
static cls_row *cls_rows;
static size_t n_cls;

/* rows (n of them, size bytes each) with one more, zeroed, at the end: the new array (rows is
 * then gone), or NULL when out of memory (rows untouched). */
static void *grow_rows(void *rows, size_t n, size_t size) {
  unsigned char *nr = realloc(rows, (n + 1) * size);
  if (nr) memset(nr + n * size, 0, size);
  return nr;
}

void router_stats_decision(const char *router, const char *route, router_by by) {
  pthread_mutex_lock(&stats_mu);
  size_t i = 0;
  while (i < n_dec && (dec_rows[i].by != by || strcmp(dec_rows[i].router, router) ||
                       strcmp(dec_rows[i].route, route)))
    i++;
  if (i == n_dec && n_dec < ROUTER_STATS_MAX) {
    dec_row *nr = grow_rows(dec_rows, n_dec, sizeof *nr);
    if (nr) {
      dec_rows = nr;
      snprintf(nr[n_dec].router, sizeof nr[n_dec].router, "%s", router);
      snprintf(nr[n_dec].route, sizeof nr[n_dec].route, "%s", route);
      nr[n_dec].by = by;
      n_dec++;
    }
  }
  if (i < n_dec) dec_rows[i].n++;
  pthread_mutex_unlock(&stats_mu);
}

void router_stats_classifier(const char *router, double seconds, bool ok) {
  pthread_mutex_lock(&stats_mu);
  size_t i = 0;
  while (i < n_cls && strcmp(cls_rows[i].router, router)) i++;
  if (i == n_cls && n_cls < ROUTER_STATS_MAX) {
    cls_row *nr = grow_rows(cls_rows, n_cls, sizeof *nr);
    if (nr) {
      cls_rows = nr;
      snprintf(nr[n_cls].router, sizeof nr[n_cls].router, "%s", router);
      n_cls++;
    }
  }
  if (i < n_cls) {
    cls_row *r = &cls_rows[i];
    for (size_t b = 0; b < N_BOUNDS; b++)
      if (seconds <= cls_bounds[b]) r->buckets[b]++;
    r->count++;
    r->sum += seconds;
    if (!ok) r->failed++;
  }
  pthread_mutex_unlock(&stats_mu);
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(sy_buf *o, const char *s) {
  for (; *s; s++) {
    if (*s == '\\')
      sy_buf_puts(o, "\\\\");
    else if (*s == '"')
      sy_buf_puts(o, "\\\"");
    else if (*s == '\n')
      sy_buf_puts(o, "\\n");
    else
      sy_buf_append(o, s, 1);
  }
}

/* The start of a sample, up to its router label's value: name{router="<router, escaped> */
static void sample_head(sy_buf *o, const char *name, const char *router) {
  sy_buf_puts(o, name);
  sy_buf_puts(o, "{router=\"");
  put_label(o, router);
}

int router_stats_render(sy_buf *o) {
  pthread_mutex_lock(&stats_mu);
  sy_buf_puts(o,
              "# HELP switchyard_router_decisions_total Requests to a router, by the route that "
              "served them and "
              "what chose it (rule, classifier, default, fallback).\n"
              "# TYPE switchyard_router_decisions_total counter\n");
  for (size_t i = 0; i < n_dec; i++) {
    sample_head(o, "switchyard_router_decisions_total", dec_rows[i].router);
    sy_buf_puts(o, "\",route=\"");
    put_label(o, dec_rows[i].route);
    sy_buf_printf(o, "\",by=\"%s\"} %llu\n", router_by_name(dec_rows[i].by), dec_rows[i].n);
  }
  sy_buf_puts(
      o,
      "# HELP switchyard_router_classifier_seconds Time the router's classifier took per request "
      "(the light model's acquisition and its constrained generation).\n"
      "# TYPE switchyard_router_classifier_seconds histogram\n");
  for (size_t i = 0; i < n_cls; i++) {
    const cls_row *r = &cls_rows[i];
    for (size_t b = 0; b <= N_BOUNDS; b++) {
      sample_head(o, "switchyard_router_classifier_seconds_bucket", r->router);
      if (b < N_BOUNDS)
        sy_buf_printf(o, "\",le=\"%g\"} %llu\n", cls_bounds[b], r->buckets[b]);
      else
        sy_buf_printf(o, "\",le=\"+Inf\"} %llu\n", r->count);
    }
    sample_head(o, "switchyard_router_classifier_seconds_sum", r->router);
    sy_buf_printf(o, "\"} %.6f\n", r->sum);
    sample_head(o, "switchyard_router_classifier_seconds_count", r->router);
    sy_buf_printf(o, "\"} %llu\n", r->count);
  }
  sy_buf_puts(
      o,
      "# HELP switchyard_router_classifier_failures_total Classifier runs that gave no valid route "
      "(error or timeout): the default route served.\n"
      "# TYPE switchyard_router_classifier_failures_total counter\n");
  for (size_t i = 0; i < n_cls; i++) {
    sample_head(o, "switchyard_router_classifier_failures_total", cls_rows[i].router);
    sy_buf_printf(o, "\"} %llu\n", cls_rows[i].failed);
  }
  int rc = o->data ? 0 : -1; /* only out of memory can fail: nothing at all was written then */
  pthread_mutex_unlock(&stats_mu);
  return rc;
}

void router_stats_reset(void) {
  pthread_mutex_lock(&stats_mu);
  free(dec_rows);
  free(cls_rows);
  dec_rows = NULL;
  cls_rows = NULL;
  n_dec = n_cls = 0;
  pthread_mutex_unlock(&stats_mu);
}
