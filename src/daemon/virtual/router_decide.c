/* router_decide.c — a router's decision for one request (router_decide.h). The classifier is one
 * short generation on the light model, acquired through the scheduler like any request: greedy,
 * under a grammar that allows only the route names (the worker compiles the JSON schema router.c
 * builds), bounded by the router's timeout. Anything but a valid answer in time gives the default
 * route: a router never fails a request because its classifier did. */
#include "clock.h"
#include "virtual/router_decide.h"

#include <string.h>
#include <time.h>

#include "log.h"
#include "engines/worker.h"

#define CLS_MAX_ANSWER 1024 /* bytes of the classifier's text kept; a route name is at most 32 */

/* Run the classifier: the route's index, or -1 with why filled (then the default serves). *hup
 * when the client went away meanwhile. */
static long classify(sy_daemon *d, const matrix *mx, const matrix_router *rt, const router_facts *f,
                     int fd, bool *hup, char *why, size_t wl) {
  double t0 = (sy_mono_s() * 1e3);
  const matrix_model *mm = matrix_find(mx, rt->cls_model);
  if (!mm) {
    snprintf(why, wl, "classifier model '%.64s' is gone", rt->cls_model);
    return -1;
  }
  api_error err = {0};
  worker *w = sched_acquire(d->sc, mm, &err); /* may load it: not bounded by the timeout */
  if (!w) {
    snprintf(why, wl, "classifier model %.64s: %.200s", mm->name, err.message);
    return -1;
  }
  long route = -1;
  json_t *msg = router_classifier_msg(rt, f);
  wreq *q = msg ? worker_submit(w, msg, &err) : NULL;
  if (!msg)
    snprintf(why, wl, "out of memory");
  else if (!q)
    snprintf(why, wl, "classifier model %.64s: %.200s", mm->name, err.message);
  sy_buf text = {0};
  text.limit = CLS_MAX_ANSWER;
  while (q) {
    int left = (int)(rt->cls_timeout_ms - ((sy_mono_s() * 1e3) - t0));
    ipc_msg m = {0};
    if (left <= 0 || !wreq_wait(q, &m, fd, left, hup)) {
      snprintf(why, wl, *hup ? "the client went away" : "timed out after %d ms",
               rt->cls_timeout_ms);
      break;
    }
    const char *op = ipc_op(&m);
    if (!strcmp(op, "delta")) {
      const char *t = json_string_value(json_object_get(m.hdr, "text"));
      if (t) (void)sy_buf_puts(&text, t); /* past the limit: refused, and the answer is invalid */
    } else if (!strcmp(op, "done") || !strcmp(op, "error")) {
      if (!strcmp(op, "error")) {
        const char *em = json_string_value(json_object_get(m.hdr, "message"));
        snprintf(why, wl, "classifier model %.64s: %.200s", mm->name, em ? em : "error");
      } else {
        route = router_classifier_answer(rt, text.data, text.len);
        if (route < 0)
          snprintf(why, wl, "the classifier answered '%.64s', not a route",
                   text.data ? text.data : "");
      }
      ipc_msg_clear(&m);
      break;
    }
    ipc_msg_clear(&m);
  }
  sy_buf_free(&text);
  wreq_free(q); /* cancels a generation cut by the timeout */
  sched_release(d->sc, mm, w);
  return route;
}

bool router_decide(sy_daemon *d, const matrix *mx, const matrix_router *rt, const json_t *req,
                   bool chat, int client_fd, router_decision *out) {
  double t0 = (sy_mono_s() * 1e3);
  memset(out, 0, sizeof *out);
  out->rt = rt;
  out->rule = -1;
  router_facts f;
  router_facts_of(req, chat, &f);
  char why[320] = "";
  bool hup = false;
  long r = router_match_rule(rt, &f);
  if (r >= 0) {
    out->rule = r;
    out->route = rt->rules[r].route;
    out->by = ROUTER_BY_RULE;
  } else if (rt->has_classifier) {
    double c0 = (sy_mono_s() * 1e3);
    long c = classify(d, mx, rt, &f, client_fd, &hup, why, sizeof why);
    if (!hup) router_stats_classifier(rt->name, ((sy_mono_s() * 1e3) - c0) / 1e3, c >= 0);
    out->route = c >= 0 ? (size_t)c : rt->default_route;
    out->by = c >= 0 ? ROUTER_BY_CLASSIFIER : ROUTER_BY_DEFAULT;
  } else {
    out->route = rt->default_route;
    out->by = ROUTER_BY_DEFAULT;
  }
  out->ms = (sy_mono_s() * 1e3) - t0;
  if (hup) {
    LOG_D("router %s: the client went away while the classifier ran", rt->name);
  } else if (out->by == ROUTER_BY_RULE) {
    LOG_D("router %s: route %s (model %s) by rule %ld in %.2f ms (est. %lld prompt tokens%s%s%s)",
          rt->name, rt->routes[out->route].name, rt->routes[out->route].model, out->rule, out->ms,
          f.prompt_tokens, f.images ? ", images" : "", f.audio ? ", audio" : "",
          f.tools ? ", tools" : "");
  } else {
    LOG_D("router %s: route %s (model %s) by %s in %.2f ms%s%s", rt->name,
          rt->routes[out->route].name, rt->routes[out->route].model, router_by_name(out->by),
          out->ms, why[0] ? ": " : "", why);
  }
  router_facts_clear(&f);
  return !hup;
}

json_t *router_model_json(const sy_daemon *d, const matrix *mx, const matrix_router *rt) {
  json_t *routes = json_object();
  for (size_t i = 0; i < rt->n_routes; i++) {
    const matrix_model *mm = matrix_find(mx, rt->routes[i].model);
    json_object_set_new(routes, rt->routes[i].name,
                        json_string(mm ? mm->name : rt->routes[i].model));
  }
  return json_pack("{s:s, s:s, s:I, s:s, s:o, s:s, s:s*}", "id", rt->name, "object", "model",
                   "created", (json_int_t)d->started, "owned_by", "switchyard-router", "routes",
                   routes, "default", rt->routes[rt->default_route].name, "classifier",
                   rt->has_classifier ? rt->cls_model : NULL);
}
