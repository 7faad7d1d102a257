/* router_decide.h — the daemon side of routers: decide a request's route (rules, then the
 * classifier on the light model through the scheduler, then the default). api/chat.c then serves
 * the request on the chosen route's model, falling back along the router's list when that model
 * cannot be loaded. Was api_router.h; router.h is the pure part. Exports router_decide (and its
 * result, router_decision) and router_model_json, /v1/models's entry for a router. */
#ifndef SY_ROUTER_DECIDE_H
#define SY_ROUTER_DECIDE_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon.h"
#include "virtual/router.h"

typedef struct router_decision {
  const matrix_router *rt;
  size_t route; /* index in rt->routes */
  router_by by; /* rule, classifier or default */
  long rule;    /* the rule that matched (by rule), else -1 */
  double ms;    /* time spent deciding (the classifier's, mostly) */
} router_decision;

/* Decide the route of req (a chat when chat) to router rt of matrix mx. Never fails: a classifier
 * that errs or times out gives the default route. False only when the client (client_fd) went away
 * while the classifier ran: nothing was answered then. */
bool router_decide(sy_daemon *d, const matrix *mx, const matrix_router *rt, const json_t *req,
                   bool chat, int client_fd, router_decision *out);

/* GET /v1/models's entry for a router. */
json_t *router_model_json(const sy_daemon *d, const matrix *mx, const matrix_router *rt);

#endif
