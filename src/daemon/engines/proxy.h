/* proxy.h — requests for external engines (engine: external): the OpenAI routes a model declares
 * (dispatched by the body's "model", JSON or multipart, which api/api.c resolves) and
 * /upstream/<model>/<path> (any method, query string kept) are relayed over HTTP to the engine's
 * process on 127.0.0.1, which the scheduler starts, counts and evicts like a worker. The request
 * holds the model for its whole duration; the response streams back as it comes (SSE intact),
 * hop-by-hop headers and the client's Authorization dropped. A client that goes away cancels the
 * upstream transfer. A WebSocket upgrade on /upstream/ is relayed by proxy_ws.c. */
#ifndef SY_PROXY_H
#define SY_PROXY_H

#include <stdbool.h>

#include "daemon.h"

/* /upstream/<model>/<path> (any method): rest is the path after "/upstream/". Answers r (404
 * model_not_found when the model is not an external one with upstream pass-through). */
void proxy_upstream(sy_daemon *d, http_req *r, const char *rest);

/* /upstream/<model>/<path> with a WebSocket upgrade (proxy_ws.c), m an external model with
 * upstream pass-through: the engine acquired for the session's whole life, our own upgrade sent to
 * it, and only after its 101 the client's; then messages relayed both ways. Answers r: the
 * handshake's errors (405, 426, 400), the scheduler's, 502 upstream_error (the engine refused or
 * did not answer), 503 too_many_sessions. */
void proxy_ws_upstream(sy_daemon *d, http_req *r, const matrix_model *m, const char *path);

/* An OpenAI route (matrix_ext_route) whose body's "model" the caller resolved to m, a model of
 * engine external (api/api.c parsed the body once; the raw bytes are relayed as received).
 * Answers r: 400 wrong_capability when m does not serve r's path (its routes), else the engine's
 * own answer. */
void proxy_serve(sy_daemon *d, http_req *r, const matrix_model *m);

#endif
