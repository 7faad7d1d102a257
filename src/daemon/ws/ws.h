/* ws.h — WebSocket connections (RFC 6455) for the daemon: the framing by libwslay (Debian's
 * libwslay-dev: a small, event-based framing library that works on any non-blocking socket; it
 * masks, unmasks, reassembles fragments, answers pings and enforces a message size), a session loop
 * per connection, bounded, and the hub that counts sessions against limits.ws_max_sessions and
 * renders them for GET /metrics.
 *
 * The two roles: the daemon as a server (a client's upgrade, ws_accept: /v1/realtime and
 * /upstream/<model>/… to external engines) and as a client (engines/proxy_ws.c connects to the
 * engine). One thread runs a connection's loop (ws_run: its socket, a wake eventfd, the server's
 * stop eventfd, the idle timeout) and delivers every whole message to the handler on that thread;
 * any thread may queue messages (ws_send) or a close (ws_close).
 *
 * Must never buffer more than limits.ws_max_message_bytes of a message (a frame or message over it
 * closes with 1009 before its payload is read), never queue more than WS_MAX_QUEUED_BYTES for a
 * peer that does not read (the connection is closed with 1008 instead), never outlive the server
 * (stop_fd), never let a silent peer hold a session past the idle timeout. */
#ifndef SY_WS_H
#define SY_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http/http.h"

#define WS_MAX_QUEUED_BYTES (32u << 20) /* bytes queued for one peer that has not read them yet */
#define WS_CLOSE_WAIT_MS 2000           /* after our close frame: the peer's, at most this long */

/* close codes (RFC 6455 section 7.4.1) */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003 /* e.g. a binary frame where text is expected */
#define WS_CLOSE_INVALID 1007     /* a message that is not what it says (bad UTF-8 text) */
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

typedef struct ws_limits {
  size_t max_message_bytes; /* limits.ws_max_message_bytes: one frame or reassembled message */
  int idle_timeout_s;       /* limits.ws_idle_timeout_s: no frame either way for this long */
} ws_limits;

/* ---- one connection ---- */

typedef struct ws_conn ws_conn;

/* A connection over fd (non-blocking after this; not owned: the caller closes it after
 * ws_conn_free), server side (client == false: frames from the peer must be masked) or client
 * side; pre[0..npre) are bytes already read from fd (copied). NULL on out of memory. */
ws_conn *ws_conn_new(int fd, bool client, const void *pre, size_t npre, const ws_limits *l);
void ws_conn_free(ws_conn *c);

typedef struct ws_handler {
  /* A whole message: text (opcode 1) or binary (2). Runs on the loop's thread. */
  void (*on_message)(void *ud, ws_conn *c, bool text, const uint8_t *data, size_t len);
  /* Optional: the loop also waits for extra_fd (>= 0) to be readable and then calls on_extra. */
  int extra_fd;
  void (*on_extra)(void *ud, ws_conn *c);
} ws_handler;

/* Run c's loop until the connection ends (closing handshake done, the peer gone, a protocol error,
 * the idle timeout, or stop_fd readable: then a close 1001 is sent first). Returns the close code
 * received from the peer, or 1006 (none: abnormal) . */
int ws_run(ws_conn *c, const ws_handler *h, void *ud, int stop_fd);

/* Queue a message (any thread). 0; -1 when the connection is closing or closed, or when it would
 * put more than WS_MAX_QUEUED_BYTES in the queue (the connection is then closed with 1008). */
int ws_send(ws_conn *c, bool text, const void *data, size_t len);
/* Queue a close frame (any thread; reason: at most 123 bytes, cut). Once it is sent and the peer's
 * is back (or WS_CLOSE_WAIT_MS passed) ws_run returns. Later calls do nothing. */
void ws_close(ws_conn *c, uint16_t code, const char *reason);
/* Whether a close was queued, sent or received. */
bool ws_closing(ws_conn *c);
/* The code of the close frame we sent (0: none). */
uint16_t ws_close_code_sent(ws_conn *c);

/* ---- the hub: sessions at once, and what /metrics shows ---- */

typedef enum ws_route {
  WS_ROUTE_REALTIME = 0, /* /v1/realtime */
  WS_ROUTE_UPSTREAM,     /* /upstream/<model>/… */
  WS_ROUTE_N
} ws_route;

typedef struct ws_hub ws_hub;

/* max_sessions: limits.ws_max_sessions. NULL on out of memory. Thread-safe after this. */
ws_hub *ws_hub_new(const ws_limits *l, int max_sessions);
void ws_hub_free(ws_hub *h);
const ws_limits *ws_hub_limits(const ws_hub *h);

/* Take a session slot for route (0), or -1 with e set (503 too_many_sessions; Retry-After). */
int ws_hub_enter(ws_hub *h, ws_route route, api_error *e);
void ws_hub_leave(ws_hub *h, ws_route route);
/* A message in (from a client or an upstream) or out, counted. */
void ws_hub_count(ws_hub *h, ws_route route, bool in, size_t bytes);
/* A session ended with close code (counted by class: normal, going_away, error). */
void ws_hub_closed(ws_hub *h, ws_route route, int code);
/* Append the switchyard_ws_* families (Prometheus text 0.0.4). 0, or -1 when out refused. */
int ws_hub_render(ws_hub *h, sy_buf *out);

/* ---- the server side of a client's upgrade ---- */

/* A session: runs on the connection's thread once the 101 has left, with the connection (owned by
 * the caller of fn: freed after fn returns) and the server's stop_fd for ws_run. */
typedef void (*ws_session_fn)(void *ud, ws_conn *c, int stop_fd);

/* Answer r's upgrade: the handshake checked (405, 426, 400 as ws_handshake_check says), a slot
 * taken (503), then 101 with protocol as Sec-WebSocket-Protocol (NULL: none) and fn(ud, ...) run
 * on the connection's thread; the slot is given back after it. Returns 0 when the 101 was queued:
 * then exactly one of fn and drop(ud) (the 101 never left) runs. Else -1 with e set: r is not
 * answered (the caller answers e in its shape) and neither runs (ud is still the caller's). */
int ws_accept(ws_hub *h, http_req *r, ws_route route, const char *protocol, ws_session_fn fn,
              void *ud, void (*drop)(void *ud), api_error *e);

#endif
