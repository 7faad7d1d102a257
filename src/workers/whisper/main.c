/* main.c — switchyard-whisper: one worker process per loaded whisper.cpp model
 * (docs/PROTOCOL.md).
 *
 *   switchyard-whisper [--ipc-fd N] [--log-level debug|info|warn|error] [--tag MODEL]
 *
 * Sets the process up, starts the reader thread, expects `load` first, then serves `transcribe`
 * requests one at a time in arrival order. Exits 0 on `shutdown` or end of stream, 1 on a failed
 * load or a broken channel, 2 on bad arguments. Never exits without freeing what it holds (the
 * tests run it under ASan/LSan). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "wargs.h"
#include "ww.h"

struct ww_node {
  ipc_msg msg;
  ww_node *next;
};

static int64_t msg_id(const json_t *hdr) {
  const json_t *v = json_object_get(hdr, "id");
  if (!json_is_integer(v)) return 0;
  json_int_t id = json_integer_value(v);
  return id > 0 ? (int64_t)id : 0;
}

/* ---- replies ------------------------------------------------------------------------------ */

void ww_send(ww *w, json_t *hdr) {
  if (!hdr) {
    LOG_E("reply: out of memory building a frame");
    return;
  }
  if (w->dead) {
    json_decref(hdr);
    return;
  }
  if (ipc_send_steal(&w->chan, hdr, NULL, 0) != IPC_OK) {
    LOG_W("reply: send failed (%s); the daemon is gone", strerror(errno));
    w->dead = true;
  }
}

char *ww_utf8(const char *s, size_t n, size_t *out_len) {
  char *o = malloc(n * 3 + 1); /* each bad byte may become 3 bytes */
  if (!o) return NULL;
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, k = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t j = 1; ok && j < len; j++) ok = (p[i + j] & 0xc0) == 0x80;
    if (ok && len > 1) { /* no overlong forms, surrogates or code points past U+10FFFF */
      unsigned cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
      for (size_t j = 1; j < len; j++) cp = cp << 6 | (p[i + j] & 0x3f);
      ok = (len == 2 && cp >= 0x80) || (len == 3 && cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff)) ||
           (len == 4 && cp >= 0x10000 && cp <= 0x10ffff);
    }
    if (ok) {
      memcpy(o + k, p + i, len);
      k += len;
      i += len;
    } else {
      memcpy(o + k, "\xef\xbf\xbd", 3);
      k += 3;
      i++;
    }
  }
  o[k] = '\0';
  if (out_len) *out_len = k;
  return o;
}

void ww_error(ww *w, int64_t id, int status, const char *code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t n;
  char *fixed = ww_utf8(msg, strlen(msg), &n);
  LOG_D("reply: error id=%lld status=%d code=%s: %s", (long long)id, status, code, fixed ? fixed : "");
  ww_send(w, json_pack("{s:s, s:I, s:i, s:s, s:s, s:s%}", "op", "error", "id", (json_int_t)id, "status", status,
                       "type", status >= 500 ? "server_error" : "invalid_request_error", "code", code, "message",
                       fixed ? fixed : "error", fixed ? n : (size_t)5));
  free(fixed);
}

/* ---- the reader thread -------------------------------------------------------------------- */

static void mark_ended(ww *w, bool failed) {
  pthread_mutex_lock(&w->mu);
  w->ended = true;
  w->failed = failed;
  atomic_store(&w->abort, true); /* nobody is left to read a transcription */
  pthread_cond_broadcast(&w->cv_msg);
  pthread_mutex_unlock(&w->mu);
}

/* A cancel: the running request aborts at once; a waiting one is remembered for ww_begin. */
static void note_cancel(ww *w, int64_t id) {
  pthread_mutex_lock(&w->mu);
  if (id == w->current) {
    atomic_store(&w->abort, true);
  } else {
    w->cancelled[w->n_cancelled % WW_CANCEL_RING] = id;
    w->n_cancelled++;
  }
  pthread_mutex_unlock(&w->mu);
}

static void *reader_main(void *arg) {
  ww *w = arg;
  for (;;) {
    ipc_msg m;
    int rc = ipc_recv(w->fd, &m);
    if (rc == IPC_BADMSG) {
      LOG_W("ipc: skipping a frame whose header is not a JSON object");
      continue;
    }
    if (rc == IPC_EOF) {
      mark_ended(w, false);
      return NULL;
    }
    if (rc != IPC_OK) {
      pthread_mutex_lock(&w->mu);
      bool closing = w->closing;
      pthread_mutex_unlock(&w->mu);
      if (!closing) LOG_E("ipc: bad framing or read error (%s); giving up on the channel", strerror(errno));
      mark_ended(w, !closing);
      return NULL;
    }
    if (strcmp(ipc_op(&m), "threads") == 0) { /* applies from the next decode (ww_threads) */
      json_int_t n = json_integer_value(json_object_get(m.hdr, "n"));
      if (n >= 1 && n <= INT32_MAX) atomic_store(&w->threads_share, (int)n);
      else LOG_W("threads: %lld ignored", (long long)n);
      ipc_msg_clear(&m);
      continue;
    }
    if (strcmp(ipc_op(&m), "cancel") == 0) {
      int64_t id = msg_id(m.hdr);
      if (id) note_cancel(w, id);
      else LOG_W("cancel without a valid id; ignored");
      ipc_msg_clear(&m);
      continue;
    }
    ww_node *node = malloc(sizeof *node);
    if (!node) {
      LOG_E("ipc: out of memory queueing a frame");
      ipc_msg_clear(&m);
      mark_ended(w, true);
      return NULL;
    }
    node->msg = m;
    node->next = NULL;
    pthread_mutex_lock(&w->mu);
    while (w->n >= WW_INBOX_CAP && !w->closing) pthread_cond_wait(&w->cv_space, &w->mu);
    if (w->closing) {
      pthread_mutex_unlock(&w->mu);
      ipc_msg_clear(&node->msg);
      free(node);
      return NULL;
    }
    if (w->tail) w->tail->next = node;
    else w->head = node;
    w->tail = node;
    w->n++;
    pthread_cond_signal(&w->cv_msg);
    pthread_mutex_unlock(&w->mu);
  }
}

/* The oldest frame; false when the reader ended and nothing is left. */
static bool pop(ww *w, ipc_msg *out) {
  pthread_mutex_lock(&w->mu);
  while (!w->head && !w->ended) pthread_cond_wait(&w->cv_msg, &w->mu);
  ww_node *node = w->head;
  if (node) {
    w->head = node->next;
    if (!w->head) w->tail = NULL;
    w->n--;
    *out = node->msg;
    pthread_cond_signal(&w->cv_space);
  }
  pthread_mutex_unlock(&w->mu);
  free(node);
  return node != NULL;
}

bool ww_begin(ww *w, int64_t id) {
  bool ok = true;
  pthread_mutex_lock(&w->mu);
  w->current = id;
  if (id) {
    size_t n = w->n_cancelled < WW_CANCEL_RING ? w->n_cancelled : WW_CANCEL_RING;
    for (size_t i = 0; i < n; i++)
      if (w->cancelled[i] == id) {
        w->cancelled[i] = 0;
        ok = false;
      }
    if (!w->ended) atomic_store(&w->abort, !ok);
  }
  pthread_mutex_unlock(&w->mu);
  return ok;
}

static void reader_stop(ww *w) {
  if (w->reader_started) {
    pthread_mutex_lock(&w->mu);
    w->closing = true;
    pthread_cond_broadcast(&w->cv_space);
    bool ended = w->ended;
    pthread_mutex_unlock(&w->mu);
    /* a reader blocked in read(2) sees EOF once the read side is shut; else cancel it */
    if (shutdown(w->fd, SHUT_RD) != 0 && !ended) pthread_cancel(w->reader);
    pthread_join(w->reader, NULL);
    w->reader_started = false;
  }
  while (w->head) {
    ww_node *node = w->head;
    w->head = node->next;
    ipc_msg_clear(&node->msg);
    free(node);
  }
  w->tail = NULL;
  w->n = 0;
}

/* ---- the loop ----------------------------------------------------------------------------- */

static int serve(ww *w) {
  while (!w->dead) {
    ipc_msg m;
    if (!pop(w, &m)) {
      LOG_I("the daemon closed the channel; exiting");
      pthread_mutex_lock(&w->mu);
      bool failed = w->failed;
      pthread_mutex_unlock(&w->mu);
      return failed ? 1 : 0;
    }
    const char *op = ipc_op(&m);
    int64_t id = msg_id(m.hdr);
    if (strcmp(op, "shutdown") == 0) {
      LOG_I("shutdown");
      ipc_msg_clear(&m);
      return 0;
    }
    if (strcmp(op, "transcribe") == 0 && id) {
      ww_transcribe(w, id, &m);
    } else if (!id) {
      LOG_W("\"%.64s\" without a valid id; ignored", op);
    } else if (strcmp(op, "generate") == 0 || strcmp(op, "embed") == 0) {
      ww_error(w, id, 400, "wrong_capability", "this model transcribes speech; it does not %s",
               op[0] == 'g' ? "generate text" : "embed");
    } else {
      ww_error(w, id, 400, "unknown_op", "unknown or unexpected op \"%.64s\"", op);
    }
    ipc_msg_clear(&m);
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: switchyard-whisper [--ipc-fd N] [--log-level debug|info|warn|error] [--tag MODEL]\n");
}

int main(int argc, char **argv) {
  sy_wargs args;
  if (sy_wargs_parse(argc, argv, "whisper", false, &args) != 0) {
    usage();
    return 2;
  }
  if (sy_wargs_start(&args) != 0) return 2;
  int fd = args.fd;

  static ww w; /* the one process-wide state; zero-initialised */
  int status = 1;
  w.fd = fd;
  ipc_chan_init(&w.chan, fd);
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv_msg, NULL);
  pthread_cond_init(&w.cv_space, NULL);
  atomic_init(&w.abort, false);
  ww_log_install(&w);
  if (pthread_create(&w.reader, NULL, reader_main, &w) != 0) {
    LOG_E("cannot start the reader thread");
    goto out;
  }
  w.reader_started = true;

  ipc_msg m;
  if (!pop(&w, &m)) {
    LOG_I("the channel closed before load");
    status = w.failed ? 1 : 0;
    goto out;
  }
  if (strcmp(ipc_op(&m), "load") != 0) {
    LOG_E("the first message is \"%.64s\", not load", ipc_op(&m));
    ww_error(&w, 0, 400, "load_failed", "the first message must be load");
    ipc_msg_clear(&m);
    goto out;
  }
  int lrc = ww_load(&w, m.hdr);
  ipc_msg_clear(&m);
  if (lrc == 0) status = serve(&w);

out:
  reader_stop(&w);
  ww_free(&w);
  pthread_cond_destroy(&w.cv_msg);
  pthread_cond_destroy(&w.cv_space);
  pthread_mutex_destroy(&w.mu);
  ipc_chan_deinit(&w.chan);
  LOG_D("exit %d", status);
  return status;
}
