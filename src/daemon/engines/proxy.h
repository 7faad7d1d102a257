/* proxy.h — requests for external engines (engine: external) and for peers' models (CONFIG.md
 * "Peers"; proxy_peer, below). External engines: the OpenAI routes a model declares
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
#include "engines/peer.h"

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

/* proxy_peer's "nothing answered: the peer could not be reached" (the caller may fall back). */
#define PROXY_UNREACHABLE 1
#define PROXY_PEER_MAX_HEADERS 4 /* headers a caller adds to a forwarded answer */

/* What to forward to a peer, beyond the request itself. */
typedef struct proxy_peer_req {
  const char *model; /* the peer's model the request names (for messages) */
  const char *body;  /* the body to send instead of the request's own (NULL: as received) */
  size_t len;
  bool fall_back; /* a peer that cannot be reached answers nothing: PROXY_UNREACHABLE */
  /* headers added to the answer (a router's X-Switchyard-Route...) whenever one is given */
  const char *hdr_names[PROXY_PEER_MAX_HEADERS], *hdr_values[PROXY_PEER_MAX_HEADERS];
  size_t n_hdr;
} proxy_peer_req;

/* Forward request r (any API family: its method, path, query string and headers, the client's
 * API key and hop-by-hop headers left out; the peer's key and PEER_HOP_HEADER added) to peer p,
 * whose model q->model it names, as q says (a router's request: another body, its route's
 * model; headers of its own). The answer streams back as the peer
 * sends it (SSE, audio, uploads' answers), with X-Switchyard-Peer: NAME; a client that goes away
 * closes the connection to the peer within PROXY_POLL_MS, which cancels the request there. A
 * request that already carries PEER_HOP_HEADER is refused (508 peer_loop): forwarded once at
 * most. A peer that cannot be connected to within its connect_timeout is 503 peer_unavailable
 * with Retry-After; one that fails after connecting, 502 peer_error.
 * Returns 0 when r was answered (err: what was answered, when an error); PROXY_UNREACHABLE when
 * q->fall_back and the peer could not be reached: nothing answered, *err the 503. */
int proxy_peer(sy_daemon *d, http_req *r, peer *p, const proxy_peer_req *q, api_error *err);

#endif
