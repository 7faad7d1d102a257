/* worker.h — the daemon's side of one worker process: spawn it with a socketpair on fd 3, send
 * framed requests, route each reply frame to the request that owns its id, notice when the
 * process dies, stop it. Engine-agnostic: it knows frames, ids and processes, not models.
 *
 * Thread safety: every function may be called from any thread. Each worker has one reader thread
 * (the only receiver on its socket). A wreq belongs to the thread that submitted it. */
#ifndef SY_WORKER_H
#define SY_WORKER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "http/api_error.h"
#include "ipc.h"
#include "config/matrix.h"

typedef struct worker worker;
typedef struct wreq wreq;

/* Called once from the reader thread when the process has gone (crash, exit, or stop). */
typedef void (*worker_exit_fn)(void *ud, worker *w);

typedef struct worker_params {
  const char *exe;        /* path of the worker program */
  const char *tag;        /* log tag, e.g. the model name */
  const char *log_level;  /* passed as --log-level */
  const json_t *load;     /* the load message sent first */
  int load_timeout_s;     /* give up (and kill) after this long without "ready" */
  worker_exit_fn on_exit; /* may be NULL */
  void *on_exit_ud;
  void (*on_progress)(
      void *ud, double progress); /* load progress 0..1, on the caller's thread; may be NULL */
  void *on_progress_ud;
} worker_params;

/* Start a worker and wait for its "ready" (returned in *ready, a new reference, when non-NULL).
 * The returned worker holds one reference for the caller. On failure returns NULL and fills err
 * with the worker's own reason when it gave one. */
worker *worker_start(const worker_params *p, json_t **ready, api_error *err);

/* An external engine (a third-party HTTP server, engine: external): argv run in a process group
 * of its own (stdin /dev/null, stdout and stderr logged line by line with the tag), ${PORT}
 * substituted, then GET health_path polled until it answers health_status. No frames: requests
 * reach it over HTTP on 127.0.0.1:worker_port() (proxy.c). Stopping it sends stop_signal to the
 * group, waits stop_grace, then SIGKILLs the group; when the leader exits, whatever is left of the
 * group is killed too. NULL + err (with its last output lines) when it exits or times out first. */
typedef struct worker_ext_params {
  const char *tag;
  const matrix_external *ext;
  worker_exit_fn on_exit; /* may be NULL */
  void *on_exit_ud;
} worker_ext_params;
worker *worker_start_external(const worker_ext_params *p, api_error *err);
/* The processes to measure: the worker's own pid; for an external engine every live process of
 * its process group (at most cap, from /proc). Returns how many were written. */
size_t worker_group_pids(const worker *w, pid_t *out, size_t cap);
/* The port an external engine listens on (0 for a frame worker). */
int worker_port(const worker *w);

void worker_ref(worker *w);
/* Drop a reference; the last one stops the process (if still alive) and frees everything. */
void worker_unref(worker *w);

bool worker_alive(const worker *w);
/* Wait up to ms for the process to have ended (and been reaped); true if it has. For telling a
 * crash from a protocol error when a connection to it fails. */
bool worker_wait_dead(worker *w, int ms);
pid_t worker_pid(const worker *w);

/* Ask the worker to exit; after grace_ms kill it. Returns when the process has been reaped.
 * In-flight requests get an error event. Idempotent. */
void worker_stop(worker *w, int grace_ms);

/* Submit a request: msg is stolen; its "id" is set here. Returns NULL (err filled) if the worker
 * is gone. */
wreq *worker_submit(worker *w, json_t *msg, api_error *err);
/* The same with a binary payload (copied into the frame; e.g. a generate's image RGB). */
wreq *worker_submit_payload(worker *w, json_t *msg, const void *payload, size_t payload_len,
                            api_error *err);

/* Tell a frame worker how many threads to compute with from its next step on (op "threads", no
 * reply; cpu_share.h decides the number). No-op for an external engine or n < 1. */
void worker_set_threads(worker *w, int n);
/* Tell a llama worker the most its prompt cache in RAM may hold (op "cache_limit",
 * docs/PROTOCOL.md); it drops least recently used entries down to it. Any thread; no reply. */
void worker_set_cache_limit(worker *w, long long bytes);
/* Its prompt cache in RAM (bytes, and entries in *entries unless NULL), as the worker last told
 * (frame "cache"); 0 before it tells. Any thread. */
long long worker_cache_bytes(const worker *w, int *entries);

/* An fd that becomes readable (POLLIN) when events are pending for this request. */
int wreq_fd(const wreq *r);
/* Pop the next event without blocking: 1 and *out filled, 0 when none is pending. After a
 * terminal event ("done", "embeddings", "error") nothing more comes. */
int wreq_pop(wreq *r, ipc_msg *out);
/* Block up to timeout_ms (-1 = forever) for the next event; also returns early (0) when
 * watch_fd (>= 0, e.g. the client's socket) hangs up, setting *hup. 1 = got one, 0 = none. */
int wreq_wait(wreq *r, ipc_msg *out, int watch_fd, int timeout_ms, bool *hup);
/* Tell the worker to stop this request (no-op once terminal). */
void wreq_cancel(wreq *r);
/* Cancel if needed and forget the request. */
void wreq_free(wreq *r);

/* True if fd's peer has hung up (POLLRDHUP/POLLHUP/POLLERR), without consuming input. */
bool fd_peer_gone(int fd);

#endif
