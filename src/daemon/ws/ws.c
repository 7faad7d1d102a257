/* ws.c — see ws.h. Every wslay call is made under the connection's mutex (wslay is not
 * thread-safe; ws_send comes from other threads); whole messages are copied out of wslay's callback
 * into an inbox and handed to the handler after the mutex is released, so a handler may call
 * ws_send on its own connection.
 * Must never call the handler with the mutex held, never block in a wslay callback (the socket is
 * non-blocking; EAGAIN is WSLAY_ERR_WOULDBLOCK), never spin: the loop sleeps in poll on exactly
 * what it waits for. */
#include "ws/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "clock.h"
#include "log.h"
#include "ws/ws_handshake.h"

#define WS_INBOX_READ 64 /* whole messages held before the socket is read again */
#define WS_INBOX_MAX \
  1024 /* ... and at most (one read of wslay's buffer may hold many small ones) */

typedef struct ws_in {
  bool text;
  uint8_t *data;
  size_t len;
} ws_in;

struct ws_conn {
  int fd;
  bool client;
  wslay_event_context_ptr ctx;
  pthread_mutex_t mu;
  int wake_fd;
  uint8_t *pre;
  size_t npre, pre_off;
  ws_limits lim;
  bool eof;            /* the peer's socket ended (or failed) */
  bool close_queued;   /* ws_close (or the loop) queued a close */
  uint16_t close_code; /* what we queued */
  ws_in *inbox;        /* growable, up to WS_INBOX_MAX */
  size_t n_in, cap_in;
  bool inbox_full; /* a read stopped early: more may be in wslay's buffer */
  bool sent;       /* bytes went out since the loop last looked (activity, for the idle timeout) */
};

/* ---- wslay's callbacks (called under c->mu) ---- */

static ssize_t cb_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud) {
  (void)flags;
  ws_conn *c = ud;
  if (c->n_in >= WS_INBOX_READ) { /* hand these on first */
    c->inbox_full = true;
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (c->pre_off < c->npre) {
    size_t n = c->npre - c->pre_off < len ? c->npre - c->pre_off : len;
    memcpy(buf, c->pre + c->pre_off, n);
    c->pre_off += n;
    return (ssize_t)n;
  }
  ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
  if (n > 0) return n;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  c->eof = true;
  wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}

static ssize_t cb_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud) {
  ws_conn *c = ud;
  int f = MSG_DONTWAIT | MSG_NOSIGNAL | (flags & WSLAY_MSG_MORE ? MSG_MORE : 0);
  ssize_t n = send(c->fd, data, len, f);
  if (n > 0) c->sent = true;
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  c->eof = true;
  wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}

static int cb_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud) {
  (void)ud;
  if (getrandom(buf, len, 0) != (ssize_t)len) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return 0;
}

static void cb_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *ud) {
  (void)ctx;
  ws_conn *c = ud;
  if (a->opcode != WSLAY_TEXT_FRAME && a->opcode != WSLAY_BINARY_FRAME) return; /* control */
  uint8_t *copy = malloc(a->msg_length ? a->msg_length : 1);
  if (copy && c->n_in == c->cap_in && c->cap_in < WS_INBOX_MAX) {
    size_t cap = c->cap_in ? c->cap_in * 2 : 16;
    ws_in *g = realloc(c->inbox, cap * sizeof *g);
    if (g) {
      c->inbox = g;
      c->cap_in = cap;
    }
  }
  if (!copy || c->n_in >= c->cap_in) { /* cannot hold it: fail the connection, never drop */
    free(copy);
    if (!c->close_queued) {
      c->close_queued = true;
      c->close_code = WS_CLOSE_INTERNAL;
      wslay_event_queue_close(c->ctx, WS_CLOSE_INTERNAL, NULL, 0);
    }
    wslay_event_shutdown_read(c->ctx);
    return;
  }
  if (a->msg_length) memcpy(copy, a->msg, a->msg_length); /* an empty message has no bytes */
  c->inbox[c->n_in++] = (ws_in){a->opcode == WSLAY_TEXT_FRAME, copy, a->msg_length};
}

/* ---- a connection ---- */

ws_conn *ws_conn_new(int fd, bool client, const void *pre, size_t npre, const ws_limits *l) {
  ws_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->fd = fd;
  c->client = client;
  c->lim = *l;
  c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (npre) {
    c->pre = malloc(npre);
    if (c->pre) memcpy(c->pre, pre, npre);
    c->npre = npre;
  }
  struct wslay_event_callbacks cbs = {cb_recv, cb_send, cb_genmask, NULL, NULL, NULL, cb_msg};
  int rc = client ? wslay_event_context_client_init(&c->ctx, &cbs, c)
                  : wslay_event_context_server_init(&c->ctx, &cbs, c);
  if (rc != 0 || c->wake_fd < 0 || (npre && !c->pre)) {
    if (rc == 0) wslay_event_context_free(c->ctx);
    if (c->wake_fd >= 0) close(c->wake_fd);
    free(c->pre);
    free(c);
    return NULL;
  }
  wslay_event_config_set_max_recv_msg_length(c->ctx, l->max_message_bytes);
  pthread_mutex_init(&c->mu, NULL);
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  return c;
}

static void inbox_clear(ws_in *in, size_t n) {
  for (size_t i = 0; i < n; i++) free(in[i].data);
}

void ws_conn_free(ws_conn *c) {
  if (!c) return;
  wslay_event_context_free(c->ctx);
  inbox_clear(c->inbox, c->n_in);
  free(c->inbox);
  close(c->wake_fd);
  pthread_mutex_destroy(&c->mu);
  free(c->pre);
  free(c);
}

static void wake(ws_conn *c) {
  uint64_t one = 1;
  if (write(c->wake_fd, &one, sizeof one) < 0) { /* the counter is full: it is awake anyway */
  }
}

/* Queue a close under c->mu (once). */
static void close_locked(ws_conn *c, uint16_t code, const char *reason) {
  if (c->close_queued || wslay_event_get_close_sent(c->ctx)) return;
  c->close_queued = true;
  c->close_code = code;
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > 123) rl = 123;
  wslay_event_queue_close(c->ctx, code, (const uint8_t *)reason, rl);
}

void ws_close(ws_conn *c, uint16_t code, const char *reason) {
  pthread_mutex_lock(&c->mu);
  close_locked(c, code, reason);
  pthread_mutex_unlock(&c->mu);
  wake(c);
}

int ws_send(ws_conn *c, bool text, const void *data, size_t len) {
  int rc = -1;
  pthread_mutex_lock(&c->mu);
  if (!c->close_queued && !c->eof && !wslay_event_get_close_sent(c->ctx)) {
    if (wslay_event_get_queued_msg_length(c->ctx) + len > WS_MAX_QUEUED_BYTES) {
      LOG_W("websocket: the peer does not read (%zu bytes queued): closed",
            wslay_event_get_queued_msg_length(c->ctx));
      close_locked(c, WS_CLOSE_POLICY, "the peer does not read its messages");
    } else {
      struct wslay_event_msg m = {text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, data, len};
      rc = wslay_event_queue_msg(c->ctx, &m) == 0 ? 0 : -1;
    }
  }
  pthread_mutex_unlock(&c->mu);
  wake(c);
  return rc;
}

bool ws_closing(ws_conn *c) {
  pthread_mutex_lock(&c->mu);
  bool r = c->close_queued || c->eof || wslay_event_get_close_sent(c->ctx) ||
           wslay_event_get_close_received(c->ctx);
  pthread_mutex_unlock(&c->mu);
  return r;
}

uint16_t ws_close_code_sent(ws_conn *c) {
  pthread_mutex_lock(&c->mu);
  uint16_t r = wslay_event_get_close_sent(c->ctx) ? wslay_event_get_status_code_sent(c->ctx) : 0;
  pthread_mutex_unlock(&c->mu);
  return r;
}

int ws_run(ws_conn *c, const ws_handler *h, void *ud, int stop_fd) {
  double last = sy_mono_s(), close_deadline = 0;
  bool stopping = false;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    bool wr = !c->eof && wslay_event_want_read(c->ctx);
    bool ww = !c->eof && wslay_event_want_write(c->ctx);
    bool sent_close = wslay_event_get_close_sent(c->ctx);
    bool more = c->inbox_full || c->pre_off < c->npre;
    pthread_mutex_unlock(&c->mu);
    if (!wr && !ww) break;
    double now = sy_mono_s();
    if (sent_close && close_deadline == 0) close_deadline = now + WS_CLOSE_WAIT_MS / 1000.0;
    if (close_deadline > 0 && now >= close_deadline) break; /* the peer never answered our close */
    double until = close_deadline > 0 ? close_deadline : last + c->lim.idle_timeout_s;
    int timeout = more ? 0 : (int)((until - now) * 1000) + 1;
    if (timeout < 0) timeout = 0;
    struct pollfd p[4] = {{c->fd, (short)((wr ? POLLIN : 0) | (ww ? POLLOUT : 0)), 0},
                          {c->wake_fd, POLLIN, 0},
                          {stopping ? -1 : stop_fd, POLLIN, 0},
                          {h && h->on_extra ? h->extra_fd : -1, POLLIN, 0}};
    int n = poll(p, 4, timeout);
    if (n < 0 && errno != EINTR) break;
    if (p[1].revents & POLLIN) {
      uint64_t v;
      if (read(c->wake_fd, &v, sizeof v) < 0) { /* nothing to drain */
      }
    }
    if (!stopping && p[2].revents & POLLIN) {
      stopping = true;
      ws_close(c, WS_CLOSE_GOING_AWAY, "server shutting down");
    }
    ws_in *in;
    size_t n_in = 0;
    pthread_mutex_lock(&c->mu);
    c->inbox_full = false;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) || more) wslay_event_recv(c->ctx);
    if (!c->eof && wslay_event_want_write(c->ctx)) wslay_event_send(c->ctx);
    bool sent = c->sent;
    c->sent = false;
    n_in = c->n_in;
    in = c->inbox; /* handed on whole: a new inbox grows for the next read */
    if (n_in) {
      c->inbox = NULL;
      c->n_in = c->cap_in = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (n_in || sent || (p[0].revents & POLLIN)) last = sy_mono_s();
    for (size_t i = 0; i < n_in; i++) {
      /* messages that came before a close are handed on; none after we (or the handler) queued
       * ours */
      pthread_mutex_lock(&c->mu);
      bool closed_by_us = c->close_queued;
      pthread_mutex_unlock(&c->mu);
      if (h && h->on_message && !closed_by_us)
        h->on_message(ud, c, in[i].text, in[i].data, in[i].len);
      free(in[i].data);
    }
    if (n_in) free(in);
    if (h && h->on_extra && p[3].revents & (POLLIN | POLLHUP | POLLERR)) h->on_extra(ud, c);
    if (close_deadline == 0 && c->lim.idle_timeout_s > 0 &&
        sy_mono_s() - last >= c->lim.idle_timeout_s) {
      LOG_I("websocket: idle for %d s: closed", c->lim.idle_timeout_s);
      ws_close(c, WS_CLOSE_GOING_AWAY, "idle timeout");
      last = sy_mono_s();
    }
  }
  pthread_mutex_lock(&c->mu);
  int code =
      wslay_event_get_close_received(c->ctx) ? wslay_event_get_status_code_received(c->ctx) : 1006;
  bool linger =
      !c->eof && wslay_event_get_close_sent(c->ctx) && !wslay_event_get_close_received(c->ctx);
  pthread_mutex_unlock(&c->mu);
  if (linger) { /* we closed without reading the rest (a frame too big, say): let our close frame
                 * reach the peer before the socket goes, instead of a reset by unread bytes */
    shutdown(c->fd, SHUT_WR);
    double until = sy_mono_s() + WS_CLOSE_WAIT_MS / 1000.0;
    char scratch[16384];
    for (;;) {
      int left = (int)((until - sy_mono_s()) * 1000);
      struct pollfd p = {c->fd, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, left) <= 0) break;
      ssize_t n = recv(c->fd, scratch, sizeof scratch, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    }
  }
  return code;
}

/* ---- the hub ---- */

struct ws_hub {
  ws_limits lim;
  int max_sessions;
  pthread_mutex_t mu;
  int open[WS_ROUTE_N];
  long long total[WS_ROUTE_N], refused[WS_ROUTE_N];
  long long msgs[WS_ROUTE_N][2], bytes[WS_ROUTE_N][2]; /* [0] in, [1] out */
  long long closes[WS_ROUTE_N][3];                     /* normal, going away, error */
};

static const char *const route_names[WS_ROUTE_N] = {"realtime", "upstream"};

ws_hub *ws_hub_new(const ws_limits *l, int max_sessions) {
  ws_hub *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->lim = *l;
  h->max_sessions = max_sessions;
  pthread_mutex_init(&h->mu, NULL);
  return h;
}

void ws_hub_free(ws_hub *h) {
  if (!h) return;
  pthread_mutex_destroy(&h->mu);
  free(h);
}

const ws_limits *ws_hub_limits(const ws_hub *h) { return &h->lim; }

int ws_hub_enter(ws_hub *h, ws_route route, api_error *e) {
  pthread_mutex_lock(&h->mu);
  int n = 0;
  for (int i = 0; i < WS_ROUTE_N; i++) n += h->open[i];
  bool ok = n < h->max_sessions;
  if (ok) {
    h->open[route]++;
    h->total[route]++;
  } else {
    h->refused[route]++;
  }
  pthread_mutex_unlock(&h->mu);
  if (!ok) {
    api_error_set(e, 503, "server_error", "too_many_sessions", NULL,
                  "%d WebSocket sessions are open (limits.ws_max_sessions); try again later",
                  h->max_sessions);
    e->retry_after_s = 1;
  }
  return ok ? 0 : -1;
}

void ws_hub_leave(ws_hub *h, ws_route route) {
  pthread_mutex_lock(&h->mu);
  h->open[route]--;
  pthread_mutex_unlock(&h->mu);
}

void ws_hub_count(ws_hub *h, ws_route route, bool in, size_t bytes) {
  pthread_mutex_lock(&h->mu);
  h->msgs[route][in ? 0 : 1]++;
  h->bytes[route][in ? 0 : 1] += (long long)bytes;
  pthread_mutex_unlock(&h->mu);
}

void ws_hub_closed(ws_hub *h, ws_route route, int code) {
  pthread_mutex_lock(&h->mu);
  h->closes[route][code == WS_CLOSE_NORMAL ? 0 : code == WS_CLOSE_GOING_AWAY ? 1 : 2]++;
  pthread_mutex_unlock(&h->mu);
}

int ws_hub_render(ws_hub *h, sy_buf *out) {
  static const char *const dir[2] = {"in", "out"}, *const cls[3] = {"normal", "going_away",
                                                                    "error"};
  int rc = 0;
  pthread_mutex_lock(&h->mu);
  rc |= sy_buf_puts(out,
                    "# HELP switchyard_ws_sessions_open WebSocket sessions open now.\n"
                    "# TYPE switchyard_ws_sessions_open gauge\n");
  for (int r = 0; r < WS_ROUTE_N; r++)
    rc |= sy_buf_printf(out, "switchyard_ws_sessions_open{route=\"%s\"} %d\n", route_names[r],
                        h->open[r]);
  rc |= sy_buf_puts(out,
                    "# HELP switchyard_ws_sessions_total WebSocket sessions accepted.\n"
                    "# TYPE switchyard_ws_sessions_total counter\n");
  for (int r = 0; r < WS_ROUTE_N; r++)
    rc |= sy_buf_printf(out, "switchyard_ws_sessions_total{route=\"%s\"} %lld\n", route_names[r],
                        h->total[r]);
  rc |= sy_buf_puts(out,
                    "# HELP switchyard_ws_sessions_refused_total WebSocket upgrades refused "
                    "because limits.ws_max_sessions were open.\n"
                    "# TYPE switchyard_ws_sessions_refused_total counter\n");
  for (int r = 0; r < WS_ROUTE_N; r++)
    rc |= sy_buf_printf(out, "switchyard_ws_sessions_refused_total{route=\"%s\"} %lld\n",
                        route_names[r], h->refused[r]);
  rc |= sy_buf_puts(out,
                    "# HELP switchyard_ws_messages_total WebSocket messages, by direction.\n"
                    "# TYPE switchyard_ws_messages_total counter\n");
  for (int r = 0; r < WS_ROUTE_N; r++)
    for (int d = 0; d < 2; d++)
      rc |= sy_buf_printf(out, "switchyard_ws_messages_total{route=\"%s\",direction=\"%s\"} %lld\n",
                          route_names[r], dir[d], h->msgs[r][d]);
  rc |= sy_buf_puts(out,
                    "# HELP switchyard_ws_message_bytes_total WebSocket payload bytes, by "
                    "direction.\n# TYPE switchyard_ws_message_bytes_total counter\n");
  for (int r = 0; r < WS_ROUTE_N; r++)
    for (int d = 0; d < 2; d++)
      rc |= sy_buf_printf(out,
                          "switchyard_ws_message_bytes_total{route=\"%s\",direction=\"%s\"} %lld\n",
                          route_names[r], dir[d], h->bytes[r][d]);
  rc |= sy_buf_puts(out,
                    "# HELP switchyard_ws_closes_total WebSocket sessions ended, by how.\n"
                    "# TYPE switchyard_ws_closes_total counter\n");
  for (int r = 0; r < WS_ROUTE_N; r++)
    for (int k = 0; k < 3; k++)
      rc |= sy_buf_printf(out, "switchyard_ws_closes_total{route=\"%s\",code=\"%s\"} %lld\n",
                          route_names[r], cls[k], h->closes[r][k]);
  pthread_mutex_unlock(&h->mu);
  return rc ? -1 : 0;
}

/* ---- the server side of an upgrade ---- */

typedef struct accept_box {
  ws_hub *hub;
  ws_route route;
  ws_session_fn fn;
  void *ud;
  void (*drop)(void *ud);
} accept_box;

static void box_upgraded(void *cls, int fd, const char *extra, size_t n_extra, int stop_fd) {
  accept_box *b = cls;
  ws_conn *c = ws_conn_new(fd, false, extra, n_extra, &b->hub->lim);
  if (c) {
    b->fn(b->ud, c, stop_fd);
    ws_conn_free(c);
  } else {
    LOG_W("websocket: out of memory for a session");
    if (b->drop) b->drop(b->ud);
  }
  ws_hub_leave(b->hub, b->route);
  free(b);
}

static void box_drop(void *cls) {
  accept_box *b = cls;
  if (b->drop) b->drop(b->ud);
  ws_hub_leave(b->hub, b->route);
  free(b);
}

int ws_accept(ws_hub *h, http_req *r, ws_route route, const char *protocol, ws_session_fn fn,
              void *ud, void (*drop)(void *ud), api_error *e) {
  char accept[WS_ACCEPT_LEN + 1];
  if (ws_handshake_check(http_method(r), http_header(r, "Upgrade"), http_header(r, "Connection"),
                         http_header(r, "Sec-WebSocket-Version"),
                         http_header(r, "Sec-WebSocket-Key"), accept, e) != 0) {
    if (e->status == 426) http_add_header(r, "Sec-WebSocket-Version", WS_VERSION);
    return -1;
  }
  if (ws_hub_enter(h, route, e) != 0) return -1;
  accept_box *b = malloc(sizeof *b);
  if (!b) {
    ws_hub_leave(h, route);
    API_SERVER(e, "out_of_memory", "out of memory");
    return -1;
  }
  *b = (accept_box){h, route, fn, ud, drop};
  http_add_header(r, "Sec-WebSocket-Accept", accept);
  if (protocol && *protocol) http_add_header(r, "Sec-WebSocket-Protocol", protocol);
  http_reply_upgrade(r, box_upgraded, b, box_drop);
  return 0;
}
