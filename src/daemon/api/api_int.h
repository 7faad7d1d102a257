/* api_int.h — private to api/: what the endpoint families share (a request's metrics record, the
 * error reply that counts it) and each family's handler, called by api.c's dispatcher. Nothing
 * outside src/daemon/api/ includes this header; api.h is the wing's public face. */
#ifndef SY_API_INT_H
#define SY_API_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "daemon.h"
#include "obs/metrics.h"

/* What GET /metrics needs to know of one request. */
typedef struct req_obs {
  metrics *mt;
  int model; /* index in the matrix, METRICS_NO_MODEL until the request names a known model */
  metrics_endpoint ep;
  double t0; /* when the body was complete (sy_mono_s) */
} req_obs;

/* A JSON integer field of o, 0 when absent or not an integer. */
long long api_jint(const json_t *o, const char *k);
/* Seconds since the body was complete. */
double api_obs_elapsed(const req_obs *o);
/* The request is answered with status (499: the client went away first). */
void api_obs_end(const req_obs *o, int status);
/* Reply with an error and count it. */
void api_fail(http_req *r, const req_obs *o, const api_error *e);
/* The model a refused request named, when it is one of the matrix's (never a client's string). */
int api_obs_model_of(const sy_daemon *d, const json_t *req);

/* The families (req: the parsed body, borrowed; obs: counted when the reply is decided). */
/* chat.c: /v1/chat/completions (chat) and /v1/completions; a router's name is served here too */
void api_chat_handle(sy_daemon *d, http_req *r, const json_t *req, bool chat, req_obs *obs);
/* embeddings.c */
void api_embeddings_handle(sy_daemon *d, http_req *r, const json_t *req, req_obs *obs);
void api_rerank_handle(sy_daemon *d, http_req *r, const json_t *req, req_obs *obs);
/* admin.c: GET /v1/models (id NULL: the list), /metrics, /api/events, /api/ps; POST /api/load
 * (load) and /api/unload */
void api_admin_models(sy_daemon *d, http_req *r, const char *id);
void api_admin_metrics(sy_daemon *d, http_req *r);
void api_admin_load(sy_daemon *d, http_req *r, bool load);
void api_admin_events(sy_daemon *d, http_req *r);
void api_admin_ps(sy_daemon *d, http_req *r);

#endif
