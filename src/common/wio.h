/* wio.h — the skeleton every worker program shares (docs/PROTOCOL.md): request ids, the frames a
 * worker sends (wio_out), and the reader thread with its bounded inbox (wio_inbox).
 *
 *   wio_id      a request's "id": a positive integer the daemon chose; 0 = none (load, fatal)
 *   wio_out     the sending side of the daemon's socket: one frame per call, and after the first
 *               failed send the worker is "dead" (the daemon is gone): later sends do nothing
 *   wio_inbox   a reader thread that receives every frame and queues it (at most cap; the reader
 *               waits for room instead of growing), handed to the main thread by wio_inbox_pop;
 *               end of input (EOF or broken framing) is marked once, readable without the lock;
 *               optionally (own_cancels) the reader takes `cancel` frames itself, for workers
 *               that run one request at a time inside a long engine call (wio_inbox_begin)
 *
 * Usage:
 *   wio_out out; wio_inbox in;
 *   wio_out_init(&out, fd);
 *   wio_inbox_init(&in, fd, 1024, false);
 *   if (wio_inbox_start(&in) != 0) ...;
 *   ipc_msg m;
 *   while (!out.dead && wio_inbox_pop(&in, &m, true) == WIO_MSG) {
 *     wio_id id = wio_msg_id(m.hdr);
 *     ... wio_error(&out, id, 400, "unknown_op", "unknown op \"%.64s\"", ipc_op(&m)); ...
 *     ipc_msg_clear(&m);
 *   }
 *   wio_inbox_deinit(&in);  (joins the reader, frees what is queued)
 *   wio_out_deinit(&out);
 *
 * Ownership: every send steals its header (a json_t reference; NULL counts as "out of memory
 * building the frame": logged, nothing sent); payloads are borrowed. A popped ipc_msg belongs to
 * the caller (ipc_msg_clear). Neither struct owns the fd.
 *
 * Thread safety: wio_out's frames never interleave (ipc_chan's lock), but `dead` is a plain
 * flag: send from one thread (the main thread) at a time. The reader thread only receives,
 * queues and (own_cancels) raises the abort flag: it never sends a frame and never calls back
 * into the worker. wio_inbox_ended and wio_inbox_aborted are lock free, for engine callbacks on
 * any thread; the other wio_inbox calls are for the main thread. */
#ifndef SY_WIO_H
#define SY_WIO_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

/* A request id: > 0 for a request, 0 for none (the load, a fatal error). */
typedef int64_t wio_id;

/* The positive integer "id" of a received header, or 0 when absent or invalid. */
wio_id wio_msg_id(const json_t *hdr);

/* ---- sending ------------------------------------------------------------------------------ */

typedef struct wio_out {
  ipc_chan chan;
  bool dead; /* a send failed: the daemon is gone; nothing more is sent */
} wio_out;

void wio_out_init(wio_out *o, int fd);
void wio_out_deinit(wio_out *o);

/* Send hdr (stolen) with payload[0..len) (borrowed; NULL when len is 0). Returns 0, or -1 when
 * hdr is NULL, the worker is already dead, or the send failed (then o->dead is set). */
int wio_send(wio_out *o, json_t *hdr, const void *payload, size_t len);

/* Send {"op": op, "id": id, ...the fields of fmt} with a payload: fmt is a json_pack object
 * format ("{s:s, s:i}") whose fields follow op and id in order, or NULL for none. Returns as
 * wio_send (-1 also when fmt does not pack). */
int wio_sendf(wio_out *o, const char *op, wio_id id, const void *payload, size_t len,
              const char *fmt, ...);

/* A `done` frame: {"op": "done", "id": id, ...the fields of fmt} (fmt as wio_sendf). */
int wio_done(wio_out *o, wio_id id, const char *fmt, ...);

/* An `error` frame {op, id, status, type, code, message}: type follows from status (>= 500
 * server_error, else invalid_request_error); the printf-style message is cut at 1023 bytes and
 * made valid UTF-8 (it may quote input). */
void wio_error(wio_out *o, wio_id id, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- receiving ---------------------------------------------------------------------------- */

#define WIO_CANCEL_RING 64 /* own_cancels: ids cancelled before they started, remembered */

typedef struct wio_inbox_node wio_inbox_node;

typedef struct wio_inbox {
  int fd;
  size_t cap;       /* frames queued at most */
  bool own_cancels; /* the reader takes `cancel` frames (see wio_inbox_begin) */
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv_msg;   /* a frame arrived, or the reader ended */
  pthread_cond_t cv_space; /* the queue has room again, or the main thread is closing */
  wio_inbox_node *head, *tail;
  size_t n;
  bool ended;                        /* the reader finished (EOF or error); under mu */
  bool failed;                       /* it finished on an error, not a clean EOF; under mu */
  bool closing;                      /* the main thread is tearing down; under mu */
  wio_id cancelled[WIO_CANCEL_RING]; /* own_cancels; under mu */
  size_t n_cancelled;                /* under mu */
  wio_id current;                    /* own_cancels: the request running, 0 = none; under mu */
  atomic_bool ended_flag;            /* copy of ended, lock free */
  atomic_bool abort;                 /* the running request was cancelled, or input ended */
} wio_inbox;

enum { WIO_MSG = 1, WIO_EMPTY = 0, WIO_END = -1 };

/* Set up an inbox over fd holding at most cap frames (cap > 0). With own_cancels, `cancel`
 * frames are never queued: the reader aborts the running request or remembers the id. */
void wio_inbox_init(wio_inbox *in, int fd, size_t cap, bool own_cancels);
/* Start the reader thread. 0, or -1 when the thread cannot be created. */
int wio_inbox_start(wio_inbox *in);
/* Take the oldest frame into *out. With wait, block until there is one or the reader ended.
 * Returns WIO_MSG, WIO_EMPTY (only without wait) or WIO_END (the reader ended, nothing left). */
int wio_inbox_pop(wio_inbox *in, ipc_msg *out, bool wait);
/* Every worker's start: start the reader and wait for the first frame, which must be "load".
 * Returns true with *m the load frame (the caller clears it). Returns false when the reader cannot
 * start, the channel closed first, or the first frame is something else (answered with an error
 * load_failed, id 0); *status is then the exit status to use (0 only for a clean close). */
bool wio_await_load(wio_inbox *in, wio_out *out, ipc_msg *m, int *status);
/* True once the reader has ended (lock free). */
bool wio_inbox_ended(wio_inbox *in);
/* True when the reader ended on an I/O or framing error rather than a clean EOF. */
bool wio_inbox_failed(wio_inbox *in);
/* own_cancels: mark id as the running request (0 = none). Returns false when id was cancelled
 * before it started (the caller answers "cancelled" without running it). Starting an id resets
 * the abort flag, unless input has ended. */
bool wio_inbox_begin(wio_inbox *in, wio_id id);
/* True when the running request was cancelled or input ended (lock free; for abort callbacks). */
bool wio_inbox_aborted(wio_inbox *in);
/* Stop the reader (shuts the read side of the fd; cancels the thread when that is no socket),
 * join it, free what is queued, destroy the locks. Safe when never started. */
void wio_inbox_deinit(wio_inbox *in);

#endif
