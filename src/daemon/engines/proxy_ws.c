/* proxy_ws.c — WebSockets through /upstream/<model>/… to an external engine (proxy.h): the
 * client's upgrade is checked, the engine acquired from the scheduler (so it is busy, never
 * evicted, while the socket is open), our own upgrade request sent to it on 127.0.0.1, and only
 * when it answers 101 is the client answered 101; then messages are relayed both ways, whole (the
 * daemon speaks the framing with each side: ws/ws.h), one thread per direction. When either side
 * ends, the other gets a close frame: the engine's code when it sent one, 1001 when it went away
 * (it crashed, or the daemon is stopping).
 * Must never answer the client 101 before the engine did, never release the model while a socket
 * is open, never relay our API key, never wait on the engine without a bound. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "engines/proxy.h"
#include "log.h"
#include "ws/ws.h"
#include "ws/ws_handshake.h"

#define PROXY_WS_HANDSHAKE_MS 10000 /* connect + the engine's 101 */
#define PROXY_WS_MAX_REQUEST (64 * 1024)

typedef struct ws_job {
  sy_daemon *d;
  const matrix_model *m;
  worker *w;
  int ufd;   /* the engine's socket */
  char *pre; /* bytes after the engine's 101 head */
  size_t npre;
  ws_conn *client, *up;
  int stop_fd;
} ws_job;

static void job_free(ws_job *j) {
  if (j->ufd >= 0) close(j->ufd);
  free(j->pre);
  if (j->w) sched_release(j->d->sc, j->m, j->w);
  free(j);
}

/* Header lines of the client's request that go on to the engine. */
static bool ws_passes(const char *name) {
  static const char *const skip[] = {
      "Connection", "Keep-Alive",     "Upgrade",           "Host", "Authorization",
      "x-api-key",  "Content-Length", "Transfer-Encoding", "TE",   "Proxy-Authorization"};
  for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
    if (strcasecmp(name, skip[i]) == 0) return false;
  /* the framing is ours with each side: key, version and extensions are negotiated anew (no
   * compression); the subprotocol is passed on below */
  return strncasecmp(name, "Sec-WebSocket-", 14) != 0;
}

typedef struct req_ctx {
  sy_buf *b;
  int rc;
} req_ctx;

static int add_line(void *ud, const char *name, const char *value) {
  req_ctx *c = ud;
  if (ws_passes(name) && sy_buf_printf(c->b, "%s: %s\r\n", name, value)) c->rc = -1;
  return c->rc;
}

/* Wait for fd to be ready for ev until deadline (monotonic s). 0 ready, -1 timeout or error. */
static int wait_fd(int fd, short ev, double deadline) {
  for (;;) {
    int ms = (int)((deadline - sy_mono_s()) * 1000);
    if (ms <= 0) return -1;
    struct pollfd p = {fd, ev, 0};
    int n = poll(&p, 1, ms);
    if (n > 0) return p.revents & (ev | POLLHUP | POLLERR) ? 0 : -1;
    if (n < 0 && errno != EINTR) return -1;
  }
}

/* Connect to the engine and do our half of the handshake. 0, or -1 with e set (502). */
static int upstream_open(ws_job *j, http_req *r, const char *path, char *protocol,
                         size_t protocol_len, api_error *e) {
  double deadline = sy_mono_s() + PROXY_WS_HANDSHAKE_MS / 1000.0;
  char key[WS_KEY_LEN + 1], accept[WS_ACCEPT_LEN + 1];
  sy_buf req = {.limit = PROXY_WS_MAX_REQUEST}, head = {.limit = WS_MAX_RESPONSE_HEAD + 4096};
  int status = 0;
  bool ok = false;
  const char *why = "could not connect";
  if (ws_new_key(key) || ws_accept_for(key, accept)) goto fail;
  const char *proto = http_header(r, "Sec-WebSocket-Protocol");
  req_ctx rc = {&req, 0};
  sy_buf_printf(&req, "GET %s", path);
  size_t mark = req.len;
  if (sy_buf_append(&req, "?", 1) || http_query(r, &req)) rc.rc = -1;
  if (req.data && req.len == mark + 1) req.data[--req.len] = '\0';
  if (sy_buf_printf(&req,
                    " HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: "
                    "Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                    worker_port(j->w), key))
    rc.rc = -1;
  if (proto && sy_buf_printf(&req, "Sec-WebSocket-Protocol: %s\r\n", proto)) rc.rc = -1;
  if (rc.rc == 0) http_each_header(r, add_line, &rc);
  if (rc.rc || sy_buf_puts(&req, "\r\n")) {
    why = "the request is too large to relay";
    goto fail;
  }
  j->ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)worker_port(j->w)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (j->ufd < 0 ||
      (connect(j->ufd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) ||
      wait_fd(j->ufd, POLLOUT, deadline) != 0)
    goto fail;
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (getsockopt(j->ufd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) goto fail;
  why = "the engine did not answer the upgrade";
  for (size_t off = 0; off < req.len;) {
    ssize_t n = send(j->ufd, req.data + off, req.len - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) goto fail;
    if (wait_fd(j->ufd, POLLOUT, deadline) != 0) goto fail;
  }
  long end = 0;
  while (end == 0) {
    char buf[4096];
    if (wait_fd(j->ufd, POLLIN, deadline) != 0) goto fail;
    ssize_t n = recv(j->ufd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0 || sy_buf_append(&head, buf, (size_t)n)) goto fail;
    end = ws_response_parse(head.data, head.len, accept, &status, &ok, protocol, protocol_len);
    if (end < 0) {
      why = "the engine's answer to the upgrade is too long";
      goto fail;
    }
  }
  if (!ok) {
    api_error_set(e, 502, "server_error", "upstream_error", NULL,
                  "model '%s' (external engine) refused the WebSocket upgrade (status %d)",
                  j->m->name, status);
    goto out;
  }
  if ((size_t)end < head.len) {
    j->npre = head.len - (size_t)end;
    j->pre = malloc(j->npre);
    if (!j->pre) goto fail;
    memcpy(j->pre, head.data + end, j->npre);
  }
  sy_buf_free(&req);
  sy_buf_free(&head);
  return 0;
fail:
  api_error_set(e, 502, "server_error", "upstream_error", NULL, "model '%s' (external engine): %s",
                j->m->name, why);
out:
  sy_buf_free(&req);
  sy_buf_free(&head);
  return -1;
}

/* ---- the session: one thread per direction ---- */

static void to_upstream(void *ud, ws_conn *c, bool text, const uint8_t *data, size_t len) {
  (void)c;
  ws_job *j = ud;
  ws_hub_count(j->d->ws, WS_ROUTE_UPSTREAM, true, len);
  ws_send(j->up, text, data, len);
}

static void to_client(void *ud, ws_conn *c, bool text, const uint8_t *data, size_t len) {
  (void)c;
  ws_job *j = ud;
  ws_hub_count(j->d->ws, WS_ROUTE_UPSTREAM, false, len);
  ws_send(j->client, text, data, len);
}

/* The engine's side: ends when the engine closes, goes away, or the client's side closed it. */
static void *upstream_loop(void *arg) {
  ws_job *j = arg;
  ws_handler h = {.on_message = to_client, .extra_fd = -1};
  int code = ws_run(j->up, &h, j, j->stop_fd);
  if (code == 1006 || code == 1005 || code == 1015) { /* no usable code: it went away */
    LOG_I("proxy %s: the engine's WebSocket ended (%d)", j->m->name, code);
    ws_close(j->client, WS_CLOSE_GOING_AWAY, "the engine went away");
  } else {
    ws_close(j->client, (uint16_t)code, NULL);
  }
  return NULL;
}

static void session(void *ud, ws_conn *client, int stop_fd) {
  ws_job *j = ud;
  ws_limits lim = *ws_hub_limits(j->d->ws);
  j->client = client;
  j->stop_fd = stop_fd;
  j->up = ws_conn_new(j->ufd, true, j->pre, j->npre, &lim);
  pthread_t t;
  if (!j->up || pthread_create(&t, NULL, upstream_loop, j) != 0) {
    ws_conn_free(j->up);
    ws_close(client, WS_CLOSE_INTERNAL, "out of memory");
    ws_run(client, NULL, NULL, stop_fd);
    job_free(j);
    return;
  }
  LOG_I("proxy %s: WebSocket session open", j->m->name);
  ws_handler h = {.on_message = to_upstream, .extra_fd = -1};
  int code = ws_run(client, &h, j, stop_fd);
  uint16_t sent = ws_close_code_sent(client);
  /* the client ended it (or went away): the engine gets its code, or 1001 */
  ws_close(j->up,
           code == 1006 || code == 1005 || code == 1015 ? WS_CLOSE_GOING_AWAY : (uint16_t)code,
           NULL);
  pthread_join(t, NULL);
  ws_hub_closed(j->d->ws, WS_ROUTE_UPSTREAM, sent ? sent : code);
  LOG_I("proxy %s: WebSocket session closed (%d)", j->m->name, sent ? sent : code);
  ws_conn_free(j->up);
  job_free(j);
}

static void drop(void *ud) { job_free(ud); }

void proxy_ws_upstream(sy_daemon *d, http_req *r, const matrix_model *m, const char *path) {
  api_error err = {0};
  char accept[WS_ACCEPT_LEN + 1], protocol[WS_MAX_PROTOCOL + 1] = "";
  if (!d->ws) {
    api_error_set(&err, 503, "server_error", "too_many_sessions", NULL,
                  "WebSocket sessions are not available (out of memory at start)");
    http_reply_error(r, &err);
    return;
  }
  if (ws_handshake_check(http_method(r), http_header(r, "Upgrade"), http_header(r, "Connection"),
                         http_header(r, "Sec-WebSocket-Version"),
                         http_header(r, "Sec-WebSocket-Key"), accept, &err) != 0) {
    if (err.status == 426) http_add_header(r, "Sec-WebSocket-Version", WS_VERSION);
    http_reply_error(r, &err);
    return;
  }
  ws_job *j = calloc(1, sizeof *j);
  if (!j) {
    API_SERVER(&err, "out_of_memory", "out of memory");
    http_reply_error(r, &err);
    return;
  }
  j->d = d;
  j->m = m;
  j->ufd = -1;
  j->w = sched_acquire(d->sc, m, &err);
  if (!j->w) {
    job_free(j);
    http_reply_error(r, &err);
    return;
  }
  atomic_fetch_add(&d->requests, 1);
  if (upstream_open(j, r, path, protocol, sizeof protocol, &err) != 0) {
    LOG_W("proxy %s: %s", m->name, err.message);
    job_free(j);
    http_reply_error(r, &err);
    return;
  }
  http_add_header(r, "X-Switchyard-Model", m->name);
  if (ws_accept(d->ws, r, WS_ROUTE_UPSTREAM, protocol, session, j, drop, &err) != 0) {
    job_free(j);
    http_reply_error(r, &err);
  }
}
