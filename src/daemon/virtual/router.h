/* router.h — routers: virtual models whose requests go to one of several real models
 * (docs/CONFIG.md "routers", docs/ARCHITECTURE.md "Router").
 *
 * The pure part (no I/O, unit-tested): what a request looks like to the rules (router_facts), the
 * rules themselves, the classifier's worker message and the reading of its answer, the order in
 * which routes are tried when a route's model cannot be loaded. The daemon side (router_decide.c)
 * runs the classifier on the light model through the scheduler.
 *
 * The counters behind GET /metrics's switchyard_router_* families live here too, one registry per
 * process (like the log): their label values are router and route names from the matrix, never a
 * client's string, and at most ROUTER_STATS_MAX rows are kept. */
#ifndef SY_ROUTER_H
#define SY_ROUTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "config/matrix.h"

/* The daemon has no tokenizer: prompt tokens are estimated as ceil(bytes / 4), about what BPE
 * vocabularies give for English text (fewer tokens per byte for code and other scripts). */
#define ROUTER_BYTES_PER_TOKEN 4

/* What the rules and the classifier see of a request. Read from the raw body before it is checked
 * against a model, so it copes with any JSON shape (what it cannot read counts as absent). */
typedef struct router_facts {
  bool images;             /* an image_url part in any message */
  bool audio;              /* an input_audio part in any message */
  bool tools;              /* "tools" is a non-empty array */
  long long prompt_bytes;  /* text of every message (or the prompt) */
  long long prompt_tokens; /* estimated: ceil(prompt_bytes / ROUTER_BYTES_PER_TOKEN) */
  char *system;            /* the system and developer messages' text, joined; or NULL */
  char *text; /* what the classifier reads: the last user message's text, or the prompt;
                 NULL when there is none */
} router_facts;

void router_facts_of(const json_t *req, bool chat, router_facts *f);
void router_facts_clear(router_facts *f);

/* What chose the route. */
typedef enum router_by {
  ROUTER_BY_RULE = 0,   /* a rule matched */
  ROUTER_BY_CLASSIFIER, /* the light model answered */
  ROUTER_BY_DEFAULT,    /* no rule matched and there is no classifier, or it failed or timed out */
  ROUTER_BY_FALLBACK,   /* the chosen route's model could not be loaded: a later one served */
  ROUTER_BY_N
} router_by;
const char *router_by_name(router_by b); /* "rule", "classifier", "default", "fallback" */

/* The first rule of rt that f satisfies: its index in rt->rules, or -1. */
long router_match_rule(const matrix_router *rt, const router_facts *f);

/* The classifier's "generate" message for the worker (no id): the question as the system message,
 * the request's text (cut to cls_max_input_chars) as the user's, greedy sampling, and a JSON schema
 * {"type":"string","enum":[routes]} the worker compiles to a grammar, so the answer can only be
 * one of the allowed route names. NULL when out of memory. */
json_t *router_classifier_msg(const matrix_router *rt, const router_facts *f);

/* The route the classifier's answer names (a JSON string, or a bare name): its index in
 * rt->routes when it is one of cls_routes, else -1. */
long router_classifier_answer(const matrix_router *rt, const char *text, size_t len);

/* The routes to try, in order, into out (cap entries): chosen first, then rt->fallback's routes
 * after it (each once). Returns how many. */
size_t router_candidates(const matrix_router *rt, size_t chosen, size_t *out, size_t cap);

/* ---- counters (GET /metrics) ---- */

#define ROUTER_STATS_MAX 1024

/* A request to router `router` went to route `route`, chosen by `by`. */
void router_stats_decision(const char *router, const char *route, router_by by);
/* The classifier ran for seconds; ok = it answered a valid route (else: error, timeout). */
void router_stats_classifier(const char *router, double seconds, bool ok);
/* Append the switchyard_router_* families (Prometheus text format 0.0.4). 0, or -1 when out refused
 * to grow. */
int router_stats_render(sy_buf *out);
/* Forget every row (tests). */
void router_stats_reset(void);

#endif
