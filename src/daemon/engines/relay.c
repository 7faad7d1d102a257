/* relay.c — see relay.h. The stream's read callback drains the buffer first, then asks for the
 * next event (or a pull's next move) until something is there to send, or the answer has ended,
 * or the client went away. Exports relay_*. */
#include "engines/relay.h"

#include <string.h>

#include "log.h"

void relay_init(relay *rl, const relay_ops *ops, void *job, wreq *q, int fd) {
  *rl = (relay){.ops = ops, .job = job, .q = q, .fd = fd};
}

void relay_deinit(relay *rl) {
  if (rl->has_first) ipc_msg_clear(&rl->first);
  rl->has_first = false;
  sy_buf_free(&rl->out);
}

bool relay_next(relay *rl, ipc_msg *m) {
  if (rl->has_first) {
    *m = rl->first;
    rl->has_first = false;
    return true;
  }
  bool hup = false;
  if (!rl->q || !wreq_wait(rl->q, m, rl->fd, -1, &hup)) {
    if (hup) LOG_D("relay: the client went away; cancelling its request");
    return false;
  }
  return true;
}

void relay_put_back(relay *rl, ipc_msg *m) {
  if (rl->has_first) ipc_msg_clear(&rl->first); /* one event at a time: never happens */
  rl->first = *m;
  rl->has_first = true;
  memset(m, 0, sizeof *m);
}

/* One move: an event through fn, or the job's pull. */
static relay_rc relay_move(relay *rl, relay_event_fn fn, void *ud) {
  if (!fn) return rl->ops->pull(rl->job, &rl->out);
  ipc_msg m;
  if (!relay_next(rl, &m)) return RELAY_GONE;
  relay_rc rc = fn(ud, &m, &rl->out);
  ipc_msg_clear(&m);
  return rc;
}

relay_rc relay_collect(relay *rl, relay_event_fn fn, void *ud) {
  for (;;) {
    relay_rc rc = relay_move(rl, fn, ud);
    if (rc != RELAY_MORE) return rc;
  }
}

static ssize_t relay_read(void *cls, char *buf, size_t max) {
  relay *rl = cls;
  while (rl->out.len == 0) {
    if (rl->ended) return HTTP_STREAM_END; /* the job is freed now, before the end leaves */
    relay_rc rc = relay_move(rl, rl->ops->pull ? NULL : rl->ops->event, rl->job);
    if (rc == RELAY_GONE || rc == RELAY_ABORT) return HTTP_STREAM_ABORT; /* freeing cancels */
    if (rc == RELAY_END) rl->ended = true;
  }
  return (ssize_t)sy_buf_take(&rl->out, buf, max);
}

static void relay_free(void *cls) {
  relay *rl = cls;
  rl->ops->free(rl->job); /* rl lives in the job: not touched after this */
}

void relay_stream(relay *rl, http_req *r, unsigned status, const char *content_type) {
  http_reply_stream(r, status, content_type, relay_read, rl, relay_free);
}
