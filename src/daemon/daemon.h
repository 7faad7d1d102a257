/* daemon.h — the daemon's one state struct: everything a request handler may reach (api.c's
 * public face, the HTTP handler, is api/api.h). Handlers on many threads read it at once: after
 * start-up only mx (atomic) and the counters may change. */
#ifndef SY_DAEMON_H
#define SY_DAEMON_H

#include <stdatomic.h>
#include <time.h>

#include "http/http.h"
#include "config/matrix.h"
#include "sched/sched.h"

typedef struct sy_daemon {
  /* The current matrix; replaced by a reload (SIGHUP) while requests run. Read it once per use:
   * older matrices stay valid until the scheduler is freed. */
  _Atomic(matrix *) mx;
  sched *sc;
  http_server *http;
  time_t started;
  atomic_long requests;  /* generation/embedding requests accepted */
  atomic_long cancelled; /* ... ended early because the client went away */
  /* The Responses API's stored responses (api/responses_store.h: bounded, thread-safe); NULL: none
   * are kept (GET answers 404, previous_response_id too). Made and freed by main.c. */
  struct rsp_store *responses;
  /* The peers (engines/peer.h: other daemons whose models this one forwards to; thread safe);
   * NULL: none. Made by main.c, followed across reloads (peers_reload). */
  struct peers *peers;
  /* WebSocket sessions (ws/ws.h: limits, counts, metrics); NULL: upgrades answer 503. Made and
   * freed by main.c. */
  struct ws_hub *ws;
} sy_daemon;

#endif
