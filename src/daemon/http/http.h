/* http.h — the daemon's HTTP front: libmicrohttpd in thread-per-connection mode, request limits
 * (body size, header count, connections), Host-header and API-key checks, body accumulation, and
 * the response helpers handlers use. It knows nothing of models or OpenAI; it hands a complete,
 * checked request to one handler function.
 *
 * Why thread-per-connection: a handler may block (waiting for a worker) and a streaming response
 * is a blocking callback that polls the worker's events and the client's socket together, so a
 * client that goes away is noticed at once (MHD alone would not notice while a connection waits).
 * Concurrency is bounded by max_connections. */
#ifndef SY_HTTP_H
#define SY_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http/api_error.h"
#include "buf.h"

typedef struct http_req http_req;
typedef void (*http_handler_fn)(void *ud, http_req *r);

/* A streaming body: fill buf with up to max bytes; return the count, 0 never (block instead),
 * HTTP_STREAM_END at the end, HTTP_STREAM_ABORT to drop the connection. The reply's free_fn runs
 * once: right at HTTP_STREAM_END (before the last chunk leaves, so whatever it releases is free by
 * the time the client sees the end), or when the connection ends otherwise. */
#define HTTP_STREAM_END (-1)
#define HTTP_STREAM_ABORT (-2)
typedef ssize_t (*http_stream_fn)(void *cls, char *buf, size_t max);

typedef struct http_params {
  const char *host; /* numeric address or "localhost" */
  int port;         /* 0 = any free port */
  size_t max_body_bytes;
  size_t max_upload_bytes; /* bodies of /v1/audio/... (file uploads); 0 = max_body_bytes */
  int max_connections;
  int max_headers;             /* default 100 */
  const char *const *api_keys; /* NULL/empty = no auth; a key comes in Authorization: Bearer
                                  or x-api-key (Anthropic's header) */
  size_t n_api_keys;
  const char *const *admin_keys; /* keys that may also take admin actions (http_is_admin); an
                                    admin key is accepted wherever an API key is */
  size_t n_admin_keys;
  http_handler_fn handler;
  void *handler_ud;
  /* The body of an error reply to a request for path (new reference): each API family answers
   * errors in its own shape, the ones answered here before the handler (401, 403, 413, 431) too.
   * NULL: api_error_json (OpenAI's shape) for every path. */
  json_t *(*error_body)(const char *path, const api_error *e);
} http_params;

typedef struct http_server http_server;

http_server *http_start(const http_params *p, char *err, size_t errlen);
int http_port(const http_server *s);
void http_stop(http_server *s);

/* Request accessors. */
const char *http_method(const http_req *r);
const char *http_path(const http_req *r);
const char *http_header(const http_req *r, const char *name);
const char *http_body(const http_req *r, size_t *len);
int http_client_fd(const http_req *r);
/* Whether the request may take admin actions (pull, delete, load, unload): true when no keys are
 * configured at all, else only when it carried one of admin_keys. */
bool http_is_admin(const http_req *r);

/* Call fn for every request header (name, value) in arrival order until it returns non-zero. */
void http_each_header(const http_req *r, int (*fn)(void *ud, const char *name, const char *value),
                      void *ud);
/* The value of query argument name (decoded; "" for a bare name), or NULL when absent. */
const char *http_arg(const http_req *r, const char *name);
/* The query string rebuilt from the parsed arguments ("a=1&b=x%20y", percent-encoded; "" when
 * none), appended to out. 0, or -1 when out refused to grow. */
int http_query(const http_req *r, sy_buf *out);

/* Add a response header to whatever reply follows (copied). */
void http_add_header(http_req *r, const char *name, const char *value);
/* Replies: exactly one per request. json is stolen. */
void http_reply_json(http_req *r, unsigned status, json_t *json);
/* The status of the reply queued so far (0: none yet, or the connection is being aborted). */
unsigned http_reply_status(const http_req *r);
/* The value of an extra reply header added with http_add_header, or NULL. */
const char *http_reply_header(const http_req *r, const char *name);
void http_reply_error(http_req *r, const api_error *e);
/* A whole body of any type; b's bytes are taken (b is left empty). */
void http_reply_buf(http_req *r, unsigned status, const char *content_type, sy_buf *b);
/* A whole body from static storage (never freed, never copied): data must outlive the server.
 * content_type NULL: no Content-Type (a 304). */
void http_reply_static(http_req *r, unsigned status, const char *content_type, const void *data,
                       size_t len);
void http_reply_stream(http_req *r, unsigned status, const char *content_type, http_stream_fn fn,
                       void *cls, void (*free_fn)(void *cls));
/* A streamed reply with exactly the given headers (names[i]: values[i]; no Content-Type or
 * caching headers of our own): for relaying another server's answer. */
void http_reply_stream_raw(http_req *r, unsigned status, const char *const *names,
                           const char *const *values, size_t n, http_stream_fn fn, void *cls,
                           void (*free_fn)(void *cls));
/* Drop the connection without a reply (the client is gone). */
void http_reply_abort(http_req *r);

/* A protocol upgrade (WebSocket, ws/ws.h): runs once the 101 answer has left, on the connection's
 * own thread (thread-per-connection: it may block), with the raw socket (never close it: the
 * server does as fn returns), the bytes the client sent after its request (extra, n_extra: to be
 * read before the socket's) and stop_fd, readable once the server is stopping (http_stop waits for
 * every fn to return before it stops). */
typedef void (*http_upgrade_fn)(void *cls, int fd, const char *extra, size_t n_extra, int stop_fd);
/* Reply 101 Switching Protocols with the headers added so far (http_add_header: Upgrade,
 * Sec-WebSocket-Accept, ...); fn(cls, ...) runs after it. When the answer never leaves (the
 * connection failed first), drop(cls) runs instead; exactly one of the two runs. */
void http_reply_upgrade(http_req *r, http_upgrade_fn fn, void *cls, void (*drop)(void *cls));

/* True if host (a Host header value) names this machine's loopback interface. */
bool http_host_is_loopback(const char *host);

/* True if a request with this method, Origin and Host headers is a browser's write from another
 * origin (a page elsewhere posting to us: CSRF): a method other than GET, HEAD or OPTIONS with an
 * Origin header whose host[:port] is not Host (an Origin of "null" too). Requests without Origin
 * (SDKs, curl) are not browsers' cross-origin writes. Pure. */
bool http_cross_origin_write(const char *method, const char *origin, const char *host);

/* True for the paths served without an API key: /health and the status page's files ("/", "/ui",
 * "/ui/…": static, no state; the page asks for the key and sends it on its API calls). Pure. */
bool http_path_is_public(const char *path);

#endif
