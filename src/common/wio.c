/* wio.c — the worker skeleton (see wio.h): ids, senders, the reader thread and its bounded
 * inbox. The reader only receives and queues (and, with own_cancels, raises the abort flag); it
 * must never send a frame, call into an engine, or let the queue grow past its cap (it waits
 * for room instead). A frame with a bad JSON header is skipped (the stream is still in step);
 * broken framing ends the channel. A sender must never keep going silently after a failed send:
 * it marks the worker dead so the main loop exits. */
#include "wio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "utf8.h"

wio_id wio_msg_id(const json_t *hdr) {
  const json_t *v = json_object_get(hdr, "id");
  if (!json_is_integer(v)) return 0;
  json_int_t id = json_integer_value(v);
  return id > 0 ? (wio_id)id : 0;
}

/* ---- sending ------------------------------------------------------------------------------ */

void wio_out_init(wio_out *o, int fd) {
  ipc_chan_init(&o->chan, fd);
  o->dead = false;
}

void wio_out_deinit(wio_out *o) { ipc_chan_deinit(&o->chan); }

int wio_send(wio_out *o, json_t *hdr, const void *payload, size_t len) {
  if (!hdr) {
    LOG_E("reply: out of memory building a frame");
    return -1;
  }
  if (o->dead) {
    json_decref(hdr);
    return -1;
  }
  if (ipc_send_steal(&o->chan, hdr, payload, len) != IPC_OK) {
    LOG_W("reply: send failed (%s); the daemon is gone", strerror(errno));
    o->dead = true;
    return -1;
  }
  return 0;
}

/* {"op": op, "id": id} followed by the fields fmt packs, in order; NULL when something fails
 * (json_vpack_ex releases what "o" would have stolen). */
static json_t *wio_vhdr(const char *op, wio_id id, const char *fmt, va_list ap) {
  json_t *h = json_pack("{s:s, s:I}", "op", op, "id", (json_int_t)id);
  if (!fmt) return h;
  json_t *rest = json_vpack_ex(NULL, 0, fmt, ap);
  if (!h || !json_is_object(rest) || json_object_update(h, rest) != 0) {
    json_decref(h);
    h = NULL;
  }
  json_decref(rest);
  return h;
}

int wio_sendf(wio_out *o, const char *op, wio_id id, const void *payload, size_t len,
              const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  json_t *h = wio_vhdr(op, id, fmt, ap);
  va_end(ap);
  return wio_send(o, h, payload, len);
}

int wio_done(wio_out *o, wio_id id, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  json_t *h = wio_vhdr("done", id, fmt, ap);
  va_end(ap);
  return wio_send(o, h, NULL, 0);
}

void wio_error(wio_out *o, wio_id id, int status, const char *code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* The message may quote input; never let a cut multi-byte character make it invalid. */
  size_t fixed_len;
  char *fixed = sy_utf8_repair(msg, strlen(msg), &fixed_len);
  LOG_D("reply: error id=%lld status=%d code=%s: %s", (long long)id, status, code,
        fixed ? fixed : "");
  json_t *hdr =
      json_pack("{s:s, s:I, s:i, s:s, s:s, s:s%}", "op", "error", "id", (json_int_t)id, "status",
                status, "type", status >= 500 ? "server_error" : "invalid_request_error", "code",
                code, "message", fixed ? fixed : "error", fixed ? fixed_len : (size_t)5);
  free(fixed);
  wio_send(o, hdr, NULL, 0);
}

/* ---- receiving ---------------------------------------------------------------------------- */

struct wio_inbox_node {
  ipc_msg msg;
  wio_inbox_node *next;
};

void wio_inbox_init(wio_inbox *in, int fd, size_t cap, bool own_cancels) {
  memset(in, 0, sizeof *in);
  in->fd = fd;
  in->cap = cap ? cap : 1;
  in->own_cancels = own_cancels;
  pthread_mutex_init(&in->mu, NULL);
  pthread_cond_init(&in->cv_msg, NULL);
  pthread_cond_init(&in->cv_space, NULL);
  atomic_init(&in->ended_flag, false);
  atomic_init(&in->abort, false);
}

static void wio_inbox_mark_ended(wio_inbox *in, bool failed) {
  pthread_mutex_lock(&in->mu);
  in->ended = true;
  in->failed = failed;
  atomic_store(&in->ended_flag, true);
  atomic_store(&in->abort, true); /* nobody is left to read what a running request makes */
  pthread_cond_broadcast(&in->cv_msg);
  pthread_mutex_unlock(&in->mu);
}

/* own_cancels: the running request aborts at once; a waiting one is remembered for begin. */
static void wio_inbox_note_cancel(wio_inbox *in, wio_id id) {
  pthread_mutex_lock(&in->mu);
  if (id == in->current) {
    atomic_store(&in->abort, true);
  } else {
    in->cancelled[in->n_cancelled % WIO_CANCEL_RING] = id;
    in->n_cancelled++;
  }
  pthread_mutex_unlock(&in->mu);
}

static void *wio_inbox_reader(void *arg) {
  wio_inbox *in = arg;
  for (;;) {
    ipc_msg m;
    int rc = ipc_recv(in->fd, &m);
    if (rc == IPC_BADMSG) { /* the stream is still in step: skip this frame */
      LOG_W("ipc: skipping a frame whose header is not a JSON object");
      continue;
    }
    if (rc == IPC_EOF) {
      LOG_D("ipc: end of stream");
      wio_inbox_mark_ended(in, false);
      return NULL;
    }
    if (rc != IPC_OK) {
      pthread_mutex_lock(&in->mu);
      bool closing = in->closing;
      pthread_mutex_unlock(&in->mu);
      if (!closing)
        LOG_E("ipc: bad framing or read error (%s); giving up on the channel", strerror(errno));
      wio_inbox_mark_ended(in, !closing);
      return NULL;
    }
    if (in->own_cancels && strcmp(ipc_op(&m), "cancel") == 0) {
      wio_id id = wio_msg_id(m.hdr);
      if (id)
        wio_inbox_note_cancel(in, id);
      else
        LOG_W("cancel without a valid id; ignored");
      ipc_msg_clear(&m);
      continue;
    }
    wio_inbox_node *node = malloc(sizeof *node);
    if (!node) {
      LOG_E("ipc: out of memory queueing a frame");
      ipc_msg_clear(&m);
      wio_inbox_mark_ended(in, true);
      return NULL;
    }
    node->msg = m;
    node->next = NULL;
    pthread_mutex_lock(&in->mu);
    while (in->n >= in->cap && !in->closing) pthread_cond_wait(&in->cv_space, &in->mu);
    if (in->closing) {
      pthread_mutex_unlock(&in->mu);
      ipc_msg_clear(&node->msg);
      free(node);
      return NULL;
    }
    if (in->tail)
      in->tail->next = node;
    else
      in->head = node;
    in->tail = node;
    in->n++;
    pthread_cond_signal(&in->cv_msg);
    pthread_mutex_unlock(&in->mu);
  }
}

int wio_inbox_start(wio_inbox *in) {
  if (pthread_create(&in->thread, NULL, wio_inbox_reader, in) != 0) return -1;
  in->started = true;
  return 0;
}

int wio_inbox_pop(wio_inbox *in, ipc_msg *out, bool wait) {
  pthread_mutex_lock(&in->mu);
  while (wait && !in->head && !in->ended) pthread_cond_wait(&in->cv_msg, &in->mu);
  int rc;
  if (in->head) {
    wio_inbox_node *node = in->head;
    in->head = node->next;
    if (!in->head) in->tail = NULL;
    in->n--;
    *out = node->msg;
    free(node);
    pthread_cond_signal(&in->cv_space);
    rc = WIO_MSG;
  } else {
    rc = in->ended ? WIO_END : WIO_EMPTY;
  }
  pthread_mutex_unlock(&in->mu);
  return rc;
}

bool wio_await_load(wio_inbox *in, wio_out *out, ipc_msg *m, int *status) {
  *status = 1;
  if (wio_inbox_start(in) != 0) {
    LOG_E("cannot start the reader thread");
    return false;
  }
  if (wio_inbox_pop(in, m, true) != WIO_MSG) {
    LOG_I("the channel closed before load");
    *status = wio_inbox_failed(in) ? 1 : 0;
    return false;
  }
  if (strcmp(ipc_op(m), "load") != 0) {
    LOG_E("the first message is \"%.64s\", not load", ipc_op(m));
    wio_error(out, 0, 400, "load_failed", "the first message must be load");
    ipc_msg_clear(m);
    return false;
  }
  return true;
}

bool wio_inbox_ended(wio_inbox *in) { return atomic_load(&in->ended_flag); }

bool wio_inbox_failed(wio_inbox *in) {
  pthread_mutex_lock(&in->mu);
  bool f = in->failed;
  pthread_mutex_unlock(&in->mu);
  return f;
}

bool wio_inbox_begin(wio_inbox *in, wio_id id) {
  bool ok = true;
  pthread_mutex_lock(&in->mu);
  in->current = id;
  if (id) {
    size_t n = in->n_cancelled < WIO_CANCEL_RING ? in->n_cancelled : WIO_CANCEL_RING;
    for (size_t i = 0; i < n; i++)
      if (in->cancelled[i] == id) {
        in->cancelled[i] = 0;
        ok = false;
      }
    if (!in->ended) atomic_store(&in->abort, !ok);
  }
  pthread_mutex_unlock(&in->mu);
  return ok;
}

bool wio_inbox_aborted(wio_inbox *in) { return atomic_load(&in->abort); }

void wio_inbox_deinit(wio_inbox *in) {
  if (in->started) {
    pthread_mutex_lock(&in->mu);
    in->closing = true;
    pthread_cond_broadcast(&in->cv_space);
    pthread_mutex_unlock(&in->mu);
    /* Wake a reader blocked in read(2): on a socket, shutting the read side makes it see EOF.
     * On anything else (a pipe in a test), cancel it; read(2) is a cancellation point. */
    if (shutdown(in->fd, SHUT_RD) != 0) {
      pthread_mutex_lock(&in->mu);
      bool ended = in->ended;
      pthread_mutex_unlock(&in->mu);
      if (!ended) pthread_cancel(in->thread);
    }
    pthread_join(in->thread, NULL);
    in->started = false;
  }
  while (in->head) {
    wio_inbox_node *node = in->head;
    in->head = node->next;
    ipc_msg_clear(&node->msg);
    free(node);
  }
  in->tail = NULL;
  in->n = 0;
  pthread_cond_destroy(&in->cv_msg);
  pthread_cond_destroy(&in->cv_space);
  pthread_mutex_destroy(&in->mu);
}
