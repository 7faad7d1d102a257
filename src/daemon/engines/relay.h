/* relay.h — the one pump from a worker request's events to the client: a response backed by a
 * worker (chat and completions, transcriptions, speech, a voice pipeline's turn) reads the
 * worker's frames here and hands each one to its family's translate function, which appends the
 * client's bytes (SSE events, raw audio, nothing while a whole answer is collected) to the
 * relay's buffer. The relay owns the waiting (the request's eventfd and the client's socket
 * together, wreq_wait), the event put back after the first one decided the status, the
 * streaming callback handed to http.c, and the end of the job: the job is freed as the stream
 * ends, before its last chunk leaves (http.h), so whatever it holds (the worker, the scheduler's
 * in-flight count) is free by the time the client sees the end.
 *
 * Must never leave a worker request running for a client that went away (the job's free cancels
 * it: wreq_free), never free a job twice, and never hold more than one event at a time.
 *
 * Thread safety: a relay belongs to the request's HTTP thread (thread-per-connection); nothing
 * here is shared.
 *
 * Usage (a streamed answer; the job embeds the relay, its free calls relay_deinit):
 *   relay_init(&j->rl, &my_ops, j, j->q, http_client_fd(r));
 *   ipc_msg m;
 *   if (!relay_next(&j->rl, &m)) { my_free(j); http_reply_abort(r); return; }  // client gone
 *   if (error frame) { ... http_reply_error ... } else relay_put_back(&j->rl, &m);
 *   relay_stream(&j->rl, r, 200, "text/event-stream");   // owns j from here on
 */
#ifndef SY_RELAY_H
#define SY_RELAY_H

#include <stdbool.h>

#include "buf.h"
#include "engines/worker.h"
#include "http/http.h"
#include "ipc.h"

/* What a translate function (or a pull) says after one event. */
typedef enum relay_rc {
  RELAY_MORE = 0, /* read on */
  RELAY_END,      /* that was the answer's last event: what is in out is its tail */
  RELAY_ABORT,    /* cut the response short (raw audio cannot carry an error) */
  RELAY_GONE      /* the client went away (a pull's own wait saw it) */
} relay_rc;

/* One worker event m (borrowed: the relay clears it afterwards) translated for the client:
 * append its bytes to out (may be nothing). job: the relay's job, or relay_collect's ud. */
typedef relay_rc (*relay_event_fn)(void *job, const ipc_msg *m, sy_buf *out);

typedef struct relay_ops {
  /* A streamed answer's events (relay_stream): one of event or pull is set. */
  relay_event_fn event;
  /* For a job that reads several workers itself (a voice pipeline's steps): one move, appending
   * to out; called instead of waiting on the relay's wreq. */
  relay_rc (*pull)(void *job, sy_buf *out);
  /* Free the job (it calls relay_deinit on its relay). Called exactly once by relay_stream's
   * stream: at its end, before the last chunk leaves, or when the connection ends otherwise. A
   * job that never reached relay_stream is freed by its owner. */
  void (*free)(void *job);
} relay_ops;

typedef struct relay {
  const relay_ops *ops;
  void *job;
  wreq *q;    /* borrowed: the job owns it (and frees it, which cancels it in the worker) */
  int fd;     /* the client's socket, watched for a hang-up while waiting */
  sy_buf out; /* bytes for the client not yet handed to http.c */
  ipc_msg first;
  bool has_first; /* first is put back: relay_next returns it before waiting again */
  bool ended;     /* a translate returned RELAY_END: the stream ends once out is drained */
} relay;

/* Set rl up for job (ops and q may be NULL / set later by the owner); out is empty. */
void relay_init(relay *rl, const relay_ops *ops, void *job, wreq *q, int fd);
/* Free what rl holds (its buffer, an event put back). The job's free calls it; rl may be reused
 * after another relay_init. */
void relay_deinit(relay *rl);

/* The next event into *m (the caller clears it): the one put back, else the wreq's next, waited
 * for with no time limit. false when the client went away (or the wait failed): *m is untouched. */
bool relay_next(relay *rl, ipc_msg *m);
/* Put m (taken) back: the next relay_next returns it. At most one event is held. */
void relay_put_back(relay *rl, ipc_msg *m);

/* A whole answer: events (relay_next) through fn(ud, m, &rl->out) until it returns RELAY_END or
 * RELAY_ABORT, which is returned; RELAY_GONE when the client went away first. The reply is the
 * caller's to make. */
relay_rc relay_collect(relay *rl, relay_event_fn fn, void *ud);

/* A streamed answer: reply r with status and content_type, its body rl->out first, then the
 * events (rl->ops->event over rl->q, or rl->ops->pull) until one ends it. The job is owned by the
 * stream from here on (rl->ops->free frees it, exactly once). */
void relay_stream(relay *rl, http_req *r, unsigned status, const char *content_type);

#endif
