/* matrix_router.c — the model matrix's routers (docs/CONFIG.md "routers"): virtual models whose
 * routes name real models, whose rules and classifier pick one per request (router.c does the
 * picking; this file only reads and checks the config). Parsed after the models and pipelines, so
 * a router's name is checked against theirs here; the routes' models are checked after discovery
 * (mx_router_check), when every model is known, with the position kept in each route's source.
 *
 * This file must never accept a route, rule or classifier that names a route the router does not
 * have, a route whose model cannot serve chat or completions, or more than MATRIX_MAX_ROUTERS
 * routers, MATRIX_MAX_ROUTES routes or MATRIX_MAX_RULES rules; and never leave a half-read router
 * where matrix_free cannot find it. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/matrix_int.h"

void mx_router_clear(matrix_router *rt) {
  free(rt->name);
  free(rt->source);
  for (size_t i = 0; i < rt->n_routes; i++) {
    free(rt->routes[i].name);
    free(rt->routes[i].model);
    free(rt->routes[i].source);
  }
  free(rt->routes);
  for (size_t i = 0; i < rt->n_rules; i++) free(rt->rules[i].system_tag);
  free(rt->rules);
  free(rt->cls_model);
  free(rt->cls_prompt);
  free(rt->cls_routes);
  free(rt->fallback);
  memset(rt, 0, sizeof *rt);
}

static bool route_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MATRIX_ROUTE_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return false;
  return true;
}

/* The index of route `name` in rt, or -1 (with an error at n naming path). */
static long route_ref(loader *l, const yaml_node_t *n, const char *path, const matrix_router *rt) {
  const char *s;
  if (mx_want_str(l, n, path, &s)) return -1;
  for (size_t i = 0; i < rt->n_routes; i++)
    if (!strcmp(rt->routes[i].name, s)) return (long)i;
  return mx_at(l, n, "%s: '%.64s' is not one of router '%s''s routes", path, s, rt->name);
}

/* A list of route names into a fresh index vector (each at most once). */
static int route_list(loader *l, const yaml_node_t *n, const char *path, const matrix_router *rt,
                      size_t **out, size_t *nout) {
  if (mx_want_kind(l, n, path, YAML_SEQUENCE_NODE)) return -1;
  size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cap == 0) return mx_at(l, n, "%s: must name at least one route", path);
  if (cap > MATRIX_MAX_ROUTES) return mx_at(l, n, "%s: at most %d routes", path, MATRIX_MAX_ROUTES);
  if (!(*out = calloc(cap, sizeof **out))) return mx_oom(l);
  *nout = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *e = mx_node(l, *it);
    char ip[160];
    snprintf(ip, sizeof ip, "%s[%zu]", path, *nout);
    long r = e ? route_ref(l, e, ip, rt) : mx_at(l, n, "%s: malformed list", path);
    if (r < 0) return -1;
    for (size_t k = 0; k < *nout; k++)
      if ((*out)[k] == (size_t)r)
        return mx_at(l, e, "%s: route '%s' is listed twice", ip, rt->routes[r].name);
    (*out)[(*nout)++] = (size_t)r;
  }
  return 0;
}

static int router_routes(loader *l, const yaml_node_t *n, const char *path, matrix_router *rt) {
  if (mx_want_kind(l, n, path, YAML_MAPPING_NODE)) return -1;
  size_t np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (np == 0) return mx_at(l, n, "%s: a router needs at least one route", path);
  if (np > MATRIX_MAX_ROUTES) return mx_at(l, n, "%s: at most %d routes", path, MATRIX_MAX_ROUTES);
  if (!(rt->routes = calloc(np, sizeof *rt->routes))) return mx_oom(l);
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = mx_node(l, p->key), *v = mx_node(l, p->value);
    char g[64], rp[160], src[PATH_MAX + 48];
    if (!k || !v) return mx_at(l, n, "%s: malformed mapping", path);
    if (k->type != YAML_SCALAR_NODE || !route_name_ok(mx_sval(k)))
      return mx_at(l, k ? k : n, "%s: route names are 1..%d letters, digits, '_' or '-', got %s",
                   path, MATRIX_ROUTE_NAME_MAX, mx_got(k, g, sizeof g));
    for (size_t i = 0; i < rt->n_routes; i++)
      if (!strcmp(rt->routes[i].name, mx_sval(k)))
        return mx_at(l, k, "%s.%s: duplicate key", path, mx_sval(k));
    snprintf(rp, sizeof rp, "%s.%s", path, mx_sval(k));
    matrix_route *r = &rt->routes[rt->n_routes];
    snprintf(src, sizeof src, "%s:%zu:%zu", l->file, v->start_mark.line + 1,
             v->start_mark.column + 1);
    if (!(r->name = strdup(mx_sval(k))) || !(r->source = strdup(src))) return mx_oom(l);
    rt->n_routes++; /* owned from here: router_clear frees it */
    if (mx_want_str_dup(l, v, rp, &r->model)) return -1;
  }
  return 0;
}

enum { RU_IMAGES, RU_AUDIO, RU_TOOLS, RU_MIN_TOKENS, RU_SYSTEM_TAG, RU_ROUTE, RU_N };
static const char *const rule_keys[RU_N] = {"images",     "audio", "tools", "min_prompt_tokens",
                                            "system_tag", "route"};

static int router_rules(loader *l, const yaml_node_t *n, const char *path, matrix_router *rt) {
  if (mx_is_null(n)) return 0;
  if (mx_want_kind(l, n, path, YAML_SEQUENCE_NODE)) return -1;
  size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cap > MATRIX_MAX_RULES) return mx_at(l, n, "%s: at most %d rules", path, MATRIX_MAX_RULES);
  if (cap && !(rt->rules = calloc(cap, sizeof *rt->rules))) return mx_oom(l);
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *e = mx_node(l, *it), *v[RU_N];
    char rp[128], kp[160];
    snprintf(rp, sizeof rp, "%s[%zu]", path, rt->n_rules);
    if (!e) return mx_at(l, n, "%s: malformed list", path);
    if (mx_want_map(l, e, rp, rule_keys, RU_N, v)) return -1;
    matrix_rule *ru = &rt->rules[rt->n_rules++];
    if (!v[RU_ROUTE]) return mx_at(l, e, "%s: 'route' is required", rp);
    snprintf(kp, sizeof kp, "%s.route", rp);
    long r = route_ref(l, v[RU_ROUTE], kp, rt);
    if (r < 0) return -1;
    ru->route = (size_t)r;
    bool *flags[3] = {&ru->images, &ru->audio, &ru->tools};
    for (int i = 0; i < 3; i++) {
      snprintf(kp, sizeof kp, "%s.%s", rp, rule_keys[i]);
      if (v[i] && mx_want_bool(l, v[i], kp, flags[i])) return -1;
    }
    snprintf(kp, sizeof kp, "%s.min_prompt_tokens", rp);
    if (v[RU_MIN_TOKENS] &&
        mx_want_ll(l, v[RU_MIN_TOKENS], kp, 1, 1LL << 30, &ru->min_prompt_tokens))
      return -1;
    snprintf(kp, sizeof kp, "%s.system_tag", rp);
    if (v[RU_SYSTEM_TAG]) {
      if (mx_want_str_dup(l, v[RU_SYSTEM_TAG], kp, &ru->system_tag)) return -1;
      if (strlen(ru->system_tag) > 256)
        return mx_at(l, v[RU_SYSTEM_TAG], "%s: at most 256 bytes", kp);
    }
  }
  return 0;
}

enum { CL_MODEL, CL_PROMPT, CL_ROUTES, CL_TIMEOUT, CL_MAX_TOKENS, CL_MAX_INPUT, CL_N };
static const char *const cls_keys[CL_N] = {"model",      "prompt",     "routes",
                                           "timeout_ms", "max_tokens", "max_input_chars"};

static int router_classifier(loader *l, const yaml_node_t *n, const char *path, matrix_router *rt) {
  yaml_node_t *v[CL_N];
  char kp[128];
  if (mx_want_map(l, n, path, cls_keys, CL_N, v)) return -1;
  rt->has_classifier = true;
  rt->cls_timeout_ms = 2000;
  rt->cls_max_tokens = 16;
  rt->cls_max_input_chars = 2000;
  if (!v[CL_MODEL])
    return mx_at(l, n, "%s: 'model' is required (the light chat model that classifies)", path);
  snprintf(kp, sizeof kp, "%s.model", path);
  if (mx_want_str_dup(l, v[CL_MODEL], kp, &rt->cls_model)) return -1;
  snprintf(kp, sizeof kp, "%s.prompt", path);
  if (v[CL_PROMPT]) {
    if (mx_want_str_dup(l, v[CL_PROMPT], kp, &rt->cls_prompt)) return -1;
    if (strlen(rt->cls_prompt) > 16384)
      return mx_at(l, v[CL_PROMPT], "%s: at most 16384 bytes", kp);
  }
  snprintf(kp, sizeof kp, "%s.routes", path);
  if (v[CL_ROUTES]) {
    if (route_list(l, v[CL_ROUTES], kp, rt, &rt->cls_routes, &rt->n_cls_routes)) return -1;
  } else {
    if (!(rt->cls_routes = calloc(rt->n_routes, sizeof *rt->cls_routes))) return mx_oom(l);
    for (size_t i = 0; i < rt->n_routes; i++) rt->cls_routes[i] = i;
    rt->n_cls_routes = rt->n_routes;
  }
  snprintf(kp, sizeof kp, "%s.timeout_ms", path);
  if (v[CL_TIMEOUT] && mx_want_int(l, v[CL_TIMEOUT], kp, 1, 600000, &rt->cls_timeout_ms)) return -1;
  snprintf(kp, sizeof kp, "%s.max_tokens", path);
  if (v[CL_MAX_TOKENS] && mx_want_int(l, v[CL_MAX_TOKENS], kp, 1, 256, &rt->cls_max_tokens))
    return -1;
  snprintf(kp, sizeof kp, "%s.max_input_chars", path);
  if (v[CL_MAX_INPUT] && mx_want_int(l, v[CL_MAX_INPUT], kp, 16, 1 << 20, &rt->cls_max_input_chars))
    return -1;
  return 0;
}

enum { RT_NAME, RT_ROUTES, RT_RULES, RT_CLASSIFIER, RT_DEFAULT, RT_FALLBACK, RT_N };
static const char *const router_keys[RT_N] = {"name",       "routes",  "rules",
                                              "classifier", "default", "fallback"};

static int load_router(loader *l, const yaml_node_t *n, size_t idx, matrix_router *rt) {
  char path[48], kp[96];
  snprintf(path, sizeof path, "routers[%zu]", idx);
  yaml_node_t *v[RT_N];
  if (mx_want_map(l, n, path, router_keys, RT_N, v)) return -1;
  if (!v[RT_NAME]) return mx_at(l, n, "%s: 'name' is required", path);
  snprintf(kp, sizeof kp, "%s.name", path);
  if (mx_want_str_dup(l, v[RT_NAME], kp, &rt->name)) return -1;
  if (!mx_name_ok(rt->name))
    return mx_at(l, v[RT_NAME], "%s: '%s' is not a valid name (1..%d characters, no spaces)", kp,
                 rt->name, NAME_MAX_LEN);
  const matrix_model *o = matrix_find(l->m, rt->name);
  if (o)
    return mx_at(l, v[RT_NAME], "%s: '%s' is already used by model '%s' (%s)", kp, rt->name,
                 o->name, o->source);
  for (size_t i = 0; i < idx; i++) /* the routers before this one */
    if (!strcmp(l->m->routers[i].name, rt->name))
      return mx_at(l, v[RT_NAME], "%s: router '%s' is defined twice", kp, rt->name);
  const matrix_pipeline *pl = matrix_find_pipeline(l->m, rt->name); /* pipelines are read first */
  if (pl)
    return mx_at(l, v[RT_NAME], "%s: '%s' is already used by pipeline '%s' (%s)", kp, rt->name,
                 pl->name, pl->source);
  char src[PATH_MAX + 32];
  snprintf(src, sizeof src, "%s:%zu", l->file, n->start_mark.line + 1);
  if (!(rt->source = strdup(src))) return mx_oom(l);
  if (!v[RT_ROUTES]) return mx_at(l, n, "%s: 'routes' is required", path);
  snprintf(kp, sizeof kp, "%s.routes", path);
  if (router_routes(l, v[RT_ROUTES], kp, rt)) return -1;
  snprintf(kp, sizeof kp, "%s.rules", path);
  if (v[RT_RULES] && router_rules(l, v[RT_RULES], kp, rt)) return -1;
  snprintf(kp, sizeof kp, "%s.classifier", path);
  if (v[RT_CLASSIFIER] && !mx_is_null(v[RT_CLASSIFIER]) &&
      router_classifier(l, v[RT_CLASSIFIER], kp, rt))
    return -1;
  if (!v[RT_DEFAULT]) {
    if (rt->n_routes > 1)
      return mx_at(l, n,
                   "%s: 'default' is required (the route taken when no rule matches and the "
                   "classifier cannot "
                   "answer)",
                   path);
    rt->default_route = 0;
  } else {
    snprintf(kp, sizeof kp, "%s.default", path);
    long r = route_ref(l, v[RT_DEFAULT], kp, rt);
    if (r < 0) return -1;
    rt->default_route = (size_t)r;
  }
  if (v[RT_FALLBACK] && !mx_is_null(v[RT_FALLBACK])) {
    snprintf(kp, sizeof kp, "%s.fallback", path);
    if (v[RT_FALLBACK]->type == YAML_SEQUENCE_NODE) {
      if (route_list(l, v[RT_FALLBACK], kp, rt, &rt->fallback, &rt->n_fallback)) return -1;
    } else {
      bool on;
      if (mx_want_bool(l, v[RT_FALLBACK], kp, &on)) return -1;
      if (on) {
        if (!(rt->fallback = calloc(rt->n_routes, sizeof *rt->fallback))) return mx_oom(l);
        for (size_t i = 0; i < rt->n_routes; i++) rt->fallback[i] = i;
        rt->n_fallback = rt->n_routes;
      }
    }
  }
  return 0;
}

int mx_load_routers(loader *l, const yaml_node_t *n) {
  matrix *m = l->m;
  if (mx_want_kind(l, n, "routers", YAML_SEQUENCE_NODE)) return -1;
  size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cap > MATRIX_MAX_ROUTERS)
    return mx_at(l, n, "routers: at most %d routers", MATRIX_MAX_ROUTERS);
  if (cap && !(m->routers = calloc(cap, sizeof *m->routers))) return mx_oom(l);
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *e = mx_node(l, *it);
    if (!e) return mx_at(l, n, "routers: malformed list");
    /* counted first, so matrix_free frees a half-read router */
    size_t k = m->n_routers++;
    if (load_router(l, e, k, &m->routers[k])) return -1;
  }
  return 0;
}

/* After discovery: every route names a model that serves chat or completions, rules on images or
 * audio lead to models that take them, the classifier is a chat model. */
int mx_router_check(matrix *m, char *err, size_t errlen) {
  char caps[128];
  for (size_t i = 0; i < m->n_routers; i++) {
    const matrix_router *rt = &m->routers[i];
    for (size_t k = 0; k < rt->n_routes; k++) {
      const matrix_route *r = &rt->routes[k];
      const matrix_model *mm = matrix_find(m, r->model);
      if (!mm && matrix_peer_may_offer(m, r->model))
        continue; /* a peer's model: what it can do is the peer's to say, at request time */
      if (!mm) {
        mx_set_err(err, errlen, "%s: router '%s', route '%s': there is no model '%s'", r->source,
                   rt->name, r->name, r->model);
        return -1;
      }
      if (!(mm->caps & (MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION))) {
        mx_set_err(
            err, errlen,
            "%s: router '%s', route '%s': model '%s' serves neither chat nor completions (%s)",
            r->source, rt->name, r->name, mm->name, matrix_caps_str(mm->caps, caps, sizeof caps));
        return -1;
      }
    }
    for (size_t k = 0; k < rt->n_rules; k++) {
      const matrix_rule *ru = &rt->rules[k];
      const matrix_route *r = &rt->routes[ru->route];
      const matrix_model *mm = matrix_find(m, r->model);
      unsigned need = (ru->images ? MATRIX_CAP_VISION : 0) | (ru->audio ? MATRIX_CAP_AUDIO : 0);
      if (mm && (mm->caps & need) != need) { /* !mm: a peer's model (checked above) */
        mx_set_err(
            err, errlen,
            "%s: router '%s', rules[%zu]: route '%s' leads to model '%s', which does not take %s",
            rt->source, rt->name, k, r->name, mm->name,
            (need & ~mm->caps & MATRIX_CAP_VISION) ? "images (no vision capability)"
                                                   : "audio (no audio capability)");
        return -1;
      }
    }
    if (rt->has_classifier) {
      const matrix_model *mm = matrix_find(m, rt->cls_model);
      if (!mm || !(mm->caps & MATRIX_CAP_CHAT)) {
        mx_set_err(err, errlen, "%s: router '%s': classifier.model '%s' %s", rt->source, rt->name,
                   rt->cls_model, mm ? "is not a chat model" : "does not exist");
        return -1;
      }
    }
    const matrix_model *clash = matrix_find(m, rt->name);
    if (clash) /* only a discovered file can get here: configured names were checked while parsing
                */
      mx_warn(m, "router '%s' hides the discovered model '%s' (%s)", rt->name, clash->name,
              clash->source);
  }
  return 0;
}

const matrix_router *matrix_find_router(const matrix *m, const char *name) {
  if (!m || !name) return NULL;
  for (size_t i = 0; i < m->n_routers; i++)
    if (!strcmp(m->routers[i].name, name)) return &m->routers[i];
  return NULL;
}
