/* worker.c — spawn, talk to, watch and stop one worker process (see worker.h).
 * Must never block the reader thread on anything but its socket, never let a reply reach a
 * request other than the one whose id it carries, and never leave a child unreaped.
 * Exports worker_* and wreq_* (one request in flight on a worker), and fd_peer_gone. */
#include "engines/worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include "clock.h"
#include "log.h"

extern char **environ;

typedef struct wnode {
  ipc_msg m;
  struct wnode *next;
} wnode;

struct wreq {
  worker *w;
  long long id;
  pthread_mutex_t mu;
  wnode *head, *tail;
  bool terminal; /* a terminal event has been queued (by the worker or synthesised) */
  bool listed;   /* in w->pending (guarded by w->mu) */
  int efd;
  struct wreq *prev, *next;
};

struct worker {
  atomic_int refs;
  pid_t pid;
  int fd;
  ipc_chan chan;
  pthread_t reader;
  bool reader_started;
  pthread_mutex_t mu;
  pthread_cond_t exited_cond;
  wreq *pending; /* guarded by mu */
  long long next_id;
  bool alive;  /* guarded by mu */
  bool reaped; /* guarded by mu */
  char exit_reason[128];
  char tag[128];
  worker_exit_fn on_exit;
  void *on_exit_ud;
  /* engine: external (worker_start_external): no frames, a process group and an output pipe */
  bool external;
  int port;
  int out_fd; /* the read end of its stdout+stderr, -1 when none */
  int stop_signal;
  int stop_grace_ms;
  char tail[4][240]; /* its last output lines (guarded by mu), for load errors */
  unsigned tail_next;
  char fatal_code[32]; /* its "fatal" frame (guarded by mu): why it is about to abort */
  char fatal_msg[256];
  atomic_llong cache_bytes; /* its prompt cache in RAM, as its last "cache" frame said */
  atomic_int cache_entries;
};

/* "progress" is not terminal: it may come many times for id 0 before "ready". */
static bool op_is_terminal(const char *op) {
  return strcmp(op, "done") == 0 || strcmp(op, "embeddings") == 0 || strcmp(op, "error") == 0 ||
         strcmp(op, "ready") == 0;
}

/* ---- requests ---- */

static wreq *wreq_new(worker *w, long long id) {
  wreq *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r->efd < 0) {
    free(r);
    return NULL;
  }
  pthread_mutex_init(&r->mu, NULL);
  r->w = w;
  r->id = id;
  worker_ref(w);
  return r;
}

/* Queue an event (takes ownership of m's contents). */
static void wreq_push(wreq *r, ipc_msg *m) {
  wnode *n = malloc(sizeof *n);
  pthread_mutex_lock(&r->mu);
  if (!n || r->terminal) { /* nothing may follow a terminal event */
    ipc_msg_clear(m);
    free(n);
    pthread_mutex_unlock(&r->mu);
    return;
  }
  n->m = *m;
  n->next = NULL;
  memset(m, 0, sizeof *m);
  if (r->tail)
    r->tail->next = n;
  else
    r->head = n;
  r->tail = n;
  if (op_is_terminal(ipc_op(&n->m))) r->terminal = true;
  uint64_t one = 1;
  ssize_t wr = write(r->efd, &one, sizeof one);
  (void)wr;
  pthread_mutex_unlock(&r->mu);
}

static void wreq_push_error(wreq *r, int status, const char *code, const char *msg) {
  ipc_msg m = {0};
  m.hdr = json_pack("{s:s, s:I, s:i, s:s, s:s, s:s}", "op", "error", "id", (json_int_t)r->id,
                    "status", status, "type", "server_error", "code", code, "message", msg);
  if (m.hdr) wreq_push(r, &m);
}

int wreq_fd(const wreq *r) { return r->efd; }

int wreq_pop(wreq *r, ipc_msg *out) {
  pthread_mutex_lock(&r->mu);
  wnode *n = r->head;
  if (n) {
    r->head = n->next;
    if (!r->head) r->tail = NULL;
  }
  if (!r->head) { /* drain the counter so poll() sleeps until the next push */
    uint64_t v;
    ssize_t rd = read(r->efd, &v, sizeof v);
    (void)rd;
  }
  pthread_mutex_unlock(&r->mu);
  if (!n) return 0;
  *out = n->m;
  free(n);
  return 1;
}

static long long now_ms(void) { return sy_mono_ms(); }

int wreq_wait(wreq *r, ipc_msg *out, int watch_fd, int timeout_ms, bool *hup) {
  long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  if (hup) *hup = false;
  for (;;) {
    if (wreq_pop(r, out)) return 1;
    struct pollfd p[2] = {{.fd = r->efd, .events = POLLIN}, {.fd = watch_fd, .events = POLLRDHUP}};
    int left = -1;
    if (deadline >= 0) {
      long long d = deadline - now_ms();
      if (d <= 0) return 0;
      left = (int)d;
    }
    int n = poll(p, watch_fd >= 0 ? 2 : 1, left);
    if (n < 0 && errno != EINTR) return 0;
    if (watch_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
      if (wreq_pop(r, out)) return 1;
      if (hup) *hup = true;
      return 0;
    }
  }
}

bool fd_peer_gone(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLRDHUP};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void unlist(worker *w, wreq *r) {
  if (!r->listed) return;
  if (r->prev)
    r->prev->next = r->next;
  else
    w->pending = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->listed = false;
}

void wreq_cancel(wreq *r) {
  pthread_mutex_lock(&r->mu);
  bool term = r->terminal;
  pthread_mutex_unlock(&r->mu);
  if (term || r->id == 0) return;
  json_t *m = json_pack("{s:s, s:I}", "op", "cancel", "id", (json_int_t)r->id);
  if (m) ipc_send_steal(&r->w->chan, m, NULL, 0);
}

void worker_set_threads(worker *w, int n) {
  if (!w || w->external || n < 1) return;
  json_t *m = json_pack("{s:s, s:i}", "op", "threads", "n", n);
  if (m) ipc_send_steal(&w->chan, m, NULL, 0);
}

void worker_set_cache_limit(worker *w, long long bytes) {
  if (!w || w->external || bytes < 0) return;
  json_t *m = json_pack("{s:s, s:I}", "op", "cache_limit", "bytes", (json_int_t)bytes);
  if (m) ipc_send_steal(&w->chan, m, NULL, 0);
}

long long worker_cache_bytes(const worker *w, int *entries) {
  if (entries) *entries = w ? atomic_load(&w->cache_entries) : 0;
  return w ? atomic_load(&w->cache_bytes) : 0;
}

void wreq_free(wreq *r) {
  if (!r) return;
  wreq_cancel(r);
  worker *w = r->w;
  pthread_mutex_lock(&w->mu);
  unlist(w, r);
  pthread_mutex_unlock(&w->mu);
  ipc_msg m;
  while (wreq_pop(r, &m)) ipc_msg_clear(&m);
  close(r->efd);
  pthread_mutex_destroy(&r->mu);
  free(r);
  worker_unref(w);
}

/* ---- the reader thread ---- */

/* w->exit_reason from what waitpid gave (got, st): "<killed> by signal N (name)", "exited with
 * status N", or "ended (status unknown)" when got is not w's pid. */
static void describe_exit(worker *w, pid_t got, int st, const char *killed) {
  if (got == w->pid && WIFSIGNALED(st))
    snprintf(w->exit_reason, sizeof w->exit_reason, "%s by signal %d (%s)", killed, WTERMSIG(st),
             strsignal(WTERMSIG(st)));
  else if (got == w->pid && WIFEXITED(st))
    snprintf(w->exit_reason, sizeof w->exit_reason, "exited with status %d", WEXITSTATUS(st));
  else
    snprintf(w->exit_reason, sizeof w->exit_reason, "ended (status unknown)");
}

/* The end of a reader thread, called with w->mu held once the process is reaped: marks w dead,
 * wakes whoever waits for that, unlocks, logs how it ended (what: "worker", "external engine")
 * and tells the owner. */
static void reader_exited(worker *w, const char *what) {
  w->alive = false;
  w->reaped = true;
  pthread_cond_broadcast(&w->exited_cond);
  pthread_mutex_unlock(&w->mu);
  LOG_I("%s %s (pid %d) %s", what, w->tag, (int)w->pid, w->exit_reason);
  if (w->on_exit) w->on_exit(w->on_exit_ud, w);
}

/* Wait for the reader to reap w; past the deadline ts, SIGKILL it (its process group when group)
 * and wait on. */
static void await_reaped(worker *w, struct timespec ts, bool group) {
  pthread_mutex_lock(&w->mu);
  while (!w->reaped) {
    if (pthread_cond_timedwait(&w->exited_cond, &w->mu, &ts) == ETIMEDOUT && !w->reaped) {
      if (group)
        LOG_W("external engine %s (pid %d) did not stop within %d ms: killing its process group",
              w->tag, (int)w->pid, w->stop_grace_ms);
      kill(group ? -w->pid : w->pid, SIGKILL);
      while (!w->reaped) pthread_cond_wait(&w->exited_cond, &w->mu);
    }
  }
  pthread_mutex_unlock(&w->mu);
}

/* Wait up to ms for the process to exit by itself, then kill it; reap it; describe how it ended. */
static void reap(worker *w, int ms) {
  int st = 0;
  pid_t got = waitpid(w->pid, &st, WNOHANG);
  if (got == 0) {
    int pfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
    if (pfd >= 0) {
      struct pollfd p = {.fd = pfd, .events = POLLIN};
      while (poll(&p, 1, ms) < 0 && errno == EINTR) {
      }
      close(pfd);
    }
    got = waitpid(w->pid, &st, WNOHANG);
    if (got == 0) {
      kill(w->pid, SIGKILL);
      got = waitpid(w->pid, &st, 0);
    }
  }
  describe_exit(w, got, st, "killed");
}

static void *reader_main(void *arg) {
  worker *w = arg;
  for (;;) {
    ipc_msg m;
    int rc = ipc_recv(w->fd, &m);
    if (rc == IPC_BADMSG) { /* still in step: drop the frame, keep the worker */
      LOG_W("worker %s (pid %d): skipping a frame whose header is not a JSON object", w->tag,
            (int)w->pid);
      continue;
    }
    if (rc != IPC_OK) {
      if (rc == IPC_ERR)
        LOG_W("worker %s (pid %d): bad frame or read error: %s", w->tag, (int)w->pid,
              strerror(errno));
      break;
    }
    json_t *jid = json_object_get(m.hdr, "id");
    long long id = json_is_integer(jid) ? (long long)json_integer_value(jid) : 0;
    if (id == 0 && strcmp(ipc_op(&m), "cache") == 0) { /* its prompt cache's size, unasked */
      json_t *b = json_object_get(m.hdr, "bytes"), *e = json_object_get(m.hdr, "entries");
      if (json_is_integer(b) && json_integer_value(b) >= 0)
        atomic_store(&w->cache_bytes, (long long)json_integer_value(b));
      if (json_is_integer(e) && json_integer_value(e) >= 0 && json_integer_value(e) <= INT_MAX)
        atomic_store(&w->cache_entries, (int)json_integer_value(e));
      ipc_msg_clear(&m);
      continue;
    }
    if (id == 0 && strcmp(ipc_op(&m), "fatal") == 0) { /* it says why before it aborts */
      const char *c = json_string_value(json_object_get(m.hdr, "code"));
      const char *t = json_string_value(json_object_get(m.hdr, "message"));
      pthread_mutex_lock(&w->mu);
      snprintf(w->fatal_code, sizeof w->fatal_code, "%s",
               c && strcmp(c, "rpc_unavailable") == 0 ? c : "worker_crashed");
      snprintf(w->fatal_msg, sizeof w->fatal_msg, "%s", t ? t : "");
      pthread_mutex_unlock(&w->mu);
      LOG_W("worker %s (pid %d) is aborting: %s", w->tag, (int)w->pid, t ? t : "?");
      ipc_msg_clear(&m);
      continue;
    }
    pthread_mutex_lock(&w->mu);
    wreq *r = w->pending;
    while (r && r->id != id) r = r->next;
    if (r && op_is_terminal(ipc_op(&m))) unlist(w, r);
    if (r) wreq_push(r, &m);
    pthread_mutex_unlock(&w->mu);
    if (!r) {
      LOG_D("worker %s: dropping %s for unknown id %lld", w->tag, ipc_op(&m), id);
      ipc_msg_clear(&m);
    }
  }
  reap(w, 3000);
  pthread_mutex_lock(&w->mu);
  char msg[768];
  bool rpc = strcmp(w->fatal_code, "rpc_unavailable") == 0;
  snprintf(msg, sizeof msg, "the worker for model '%s' %s while serving this request%s%s%s", w->tag,
           w->exit_reason, w->fatal_msg[0] ? " (" : "", w->fatal_msg, w->fatal_msg[0] ? ")" : "");
  while (w->pending) {
    wreq *r = w->pending;
    unlist(w, r);
    wreq_push_error(r, rpc ? 502 : 500, rpc ? "rpc_unavailable" : "worker_crashed", msg);
  }
  reader_exited(w, "worker");
  return NULL;
}

/* ---- lifecycle ---- */

static void worker_free(worker *w) {
  if (w->reader_started) {
    worker_stop(w, 2000);
    pthread_join(w->reader, NULL);
  }
  if (w->fd >= 0) close(w->fd);
  if (w->out_fd >= 0) close(w->out_fd);
  ipc_chan_deinit(&w->chan);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->exited_cond);
  free(w);
}

void worker_ref(worker *w) { atomic_fetch_add(&w->refs, 1); }

void worker_unref(worker *w) {
  if (w && atomic_fetch_sub(&w->refs, 1) == 1) worker_free(w);
}

bool worker_alive(const worker *w) {
  pthread_mutex_lock((pthread_mutex_t *)&w->mu);
  bool a = w->alive;
  pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
  return a;
}

pid_t worker_pid(const worker *w) { return w->pid; }

bool worker_wait_dead(worker *w, int ms) {
  struct timespec ts = sy_deadline(ms);
  pthread_mutex_lock(&w->mu);
  while (!w->reaped && w->pid > 0)
    if (pthread_cond_timedwait(&w->exited_cond, &w->mu, &ts) == ETIMEDOUT) break;
  bool dead = w->reaped;
  pthread_mutex_unlock(&w->mu);
  return dead;
}

static void ext_stop(worker *w);

void worker_stop(worker *w, int grace_ms) {
  pthread_mutex_lock(&w->mu);
  if (w->reaped || w->pid <= 0) {
    pthread_mutex_unlock(&w->mu);
    return;
  }
  pthread_mutex_unlock(&w->mu);
  if (w->external) {
    ext_stop(w);
    return;
  }
  json_t *m = json_pack("{s:s}", "op", "shutdown");
  if (m) ipc_send_steal(&w->chan, m, NULL, 0);
  await_reaped(w, sy_deadline(grace_ms), false);
}

wreq *worker_submit(worker *w, json_t *msg, api_error *err) {
  return worker_submit_payload(w, msg, NULL, 0, err);
}

wreq *worker_submit_payload(worker *w, json_t *msg, const void *payload, size_t payload_len,
                            api_error *err) {
  pthread_mutex_lock(&w->mu);
  if (!w->alive) {
    pthread_mutex_unlock(&w->mu);
    json_decref(msg);
    API_SERVER(err, "worker_crashed", "the worker for model '%s' is not running (%s)", w->tag,
               w->exit_reason);
    return NULL;
  }
  long long id = ++w->next_id;
  wreq *r = wreq_new(w, id);
  if (!r) {
    pthread_mutex_unlock(&w->mu);
    json_decref(msg);
    API_SERVER(err, "out_of_memory", "out of memory");
    return NULL;
  }
  r->next = w->pending;
  if (w->pending) w->pending->prev = r;
  w->pending = r;
  r->listed = true;
  pthread_mutex_unlock(&w->mu);
  json_object_set_new(msg, "id", json_integer(id));
  if (ipc_send_steal(&w->chan, msg, payload, payload_len) != IPC_OK) {
    pthread_mutex_lock(&w->mu);
    unlist(w, r);
    pthread_mutex_unlock(&w->mu);
    wreq_push_error(r, 500, "worker_crashed", "could not send the request to the worker");
  }
  return r;
}

/* What every worker starts with (w fresh from calloc): one reference, its frames on fd and its
 * output on out_fd (-1: none), its lock, its log tag, "has not started", its exit callback. */
static void worker_init(worker *w, int fd, int out_fd, const char *tag, worker_exit_fn on_exit,
                        void *on_exit_ud) {
  atomic_init(&w->refs, 1);
  w->fd = fd;
  w->out_fd = out_fd;
  ipc_chan_init(&w->chan, fd);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->exited_cond, NULL);
  snprintf(w->tag, sizeof w->tag, "%s", tag);
  snprintf(w->exit_reason, sizeof w->exit_reason, "has not started");
  w->on_exit = on_exit;
  w->on_exit_ud = on_exit_ud;
}

worker *worker_start(const worker_params *p, json_t **ready, api_error *err) {
  if (ready) *ready = NULL;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    API_SERVER(err, "spawn_failed", "socketpair: %s", strerror(errno));
    return NULL;
  }
  /* The child end must not already be fd 3, or dup2 would leave FD_CLOEXEC set on it. */
  int child_fd = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
  close(sv[1]);
  worker *w = calloc(1, sizeof *w);
  if (!w || child_fd < 0) {
    close(sv[0]);
    if (child_fd >= 0) close(child_fd);
    free(w);
    API_SERVER(err, "spawn_failed", "out of memory");
    return NULL;
  }
  worker_init(w, sv[0], -1, p->tag, p->on_exit, p->on_exit_ud);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, child_fd, 3);
  char *argv[] = {(char *)p->exe,
                  "--ipc-fd",
                  "3",
                  "--log-level",
                  (char *)(p->log_level ? p->log_level : "info"),
                  "--log-format", /* the daemon's own: one format on the shared stderr */
                  (char *)sy_log_format_name(sy_log_get_format()),
                  "--tag",
                  (char *)p->tag,
                  NULL};
  int rc = posix_spawn(&w->pid, p->exe, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(child_fd);
  if (rc != 0) {
    API_SERVER(err, "spawn_failed", "could not start worker %s: %s", p->exe, strerror(rc));
    w->pid = 0;
    worker_free(w);
    return NULL;
  }
  w->alive = true;
  wreq *ctl = wreq_new(w, 0);
  if (ctl) {
    ctl->next = w->pending;
    w->pending = ctl;
    ctl->listed = true;
  }
  if (!ctl || pthread_create(&w->reader, NULL, reader_main, w) != 0) {
    kill(w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
    w->reaped = true;
    if (ctl) wreq_free(ctl);
    API_SERVER(err, "spawn_failed", "could not start the worker's reader thread");
    worker_unref(w);
    return NULL;
  }
  w->reader_started = true;
  LOG_I("worker %s started (pid %d)", w->tag, (int)w->pid);
  json_t *load = json_deep_copy(p->load);
  json_object_set_new(load, "op", json_string("load"));
  ipc_send_steal(&w->chan, load, NULL, 0);

  ipc_msg m = {0};
  long long deadline = now_ms() + (long long)p->load_timeout_s * 1000;
  int got;
  for (;;) { /* "progress" frames until "ready" or "error" */
    long long left = deadline - now_ms();
    got = left > 0 ? wreq_wait(ctl, &m, -1, (int)left, NULL) : 0;
    if (!got || strcmp(ipc_op(&m), "progress") != 0) break;
    json_t *pv = json_object_get(m.hdr, "progress");
    if (p->on_progress && json_is_number(pv))
      p->on_progress(p->on_progress_ud, json_number_value(pv));
    ipc_msg_clear(&m);
  }
  if (got && strcmp(ipc_op(&m), "ready") == 0) {
    if (ready) *ready = json_incref(m.hdr);
    ipc_msg_clear(&m);
    wreq_free(ctl);
    return w;
  }
  if (got) {
    const char *wm = json_string_value(json_object_get(m.hdr, "message"));
    const char *code = json_string_value(json_object_get(m.hdr, "code"));
    json_t *st = json_object_get(m.hdr, "status");
    int status = json_is_integer(st) ? (int)json_integer_value(st) : 500;
    /* load_failed, unless the worker named a cause the API tells apart (an RPC server that
     * cannot be reached: rpc_unavailable, 502) */
    api_error known;
    bool rpc = code && strcmp(code, "rpc_unavailable") == 0 && api_error_from_worker(m.hdr, &known);
    api_error_set(err, status >= 400 && status < 600 ? status : 500, "server_error",
                  rpc ? known.code : "load_failed", NULL, "model '%s' failed to load: %s", p->tag,
                  wm ? wm : "unknown error");
  } else {
    API_SERVER(err, "load_timeout", "model '%s' did not finish loading within %d s", p->tag,
               p->load_timeout_s);
  }
  ipc_msg_clear(&m);
  wreq_free(ctl);
  worker_stop(w, 1000);
  worker_unref(w);
  return NULL;
}

/* ---- external engines ---- */

int worker_port(const worker *w) { return w->external ? w->port : 0; }

size_t worker_group_pids(const worker *w, pid_t *out, size_t cap) {
  if (cap == 0 || w->pid <= 0) return 0;
  out[0] = w->pid;
  if (!w->external) return 1;
  size_t n = 1;
  DIR *d = opendir("/proc");
  struct dirent *de;
  for (int seen = 0; d && n < cap && seen < 1000000 && (de = readdir(d)); seen++) {
    char *end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end || pid <= 0 || pid == w->pid) continue;
    char path[64], st[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(st, 1, sizeof st - 1, f) : 0;
    if (f) fclose(f);
    st[len] = '\0';
    const char *rp =
        strrchr(st, ')'); /* "pid (comm) state ppid pgrp ...": comm may hold anything */
    char state;
    long ppid, pgrp;
    if (rp && sscanf(rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 && pgrp == w->pid)
      out[n++] = (pid_t)pid;
  }
  if (d) closedir(d);
  return n;
}

/* One line of the engine's output: to the log with its tag, and into the tail ring. Control bytes
 * become '?' so a hostile program cannot forge log lines or terminal escapes. */
static void ext_line(worker *w, char *line, size_t n) {
  while (n && (line[n - 1] == '\r' || line[n - 1] == '\n')) n--;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)line[i] < 0x20 && line[i] != '\t') line[i] = '?';
  if (n == 0) return;
  LOG_I("[%s] %.*s", w->tag, (int)n, line);
  pthread_mutex_lock(&w->mu);
  snprintf(w->tail[w->tail_next++ % 4], sizeof w->tail[0], "%.*s", (int)n, line);
  pthread_mutex_unlock(&w->mu);
}

/* The last output lines, joined with " | ", into out. */
static void ext_tail(worker *w, char *out, size_t cap) {
  size_t at = 0;
  out[0] = '\0';
  pthread_mutex_lock(&w->mu);
  unsigned n = w->tail_next < 4 ? w->tail_next : 4;
  for (unsigned i = w->tail_next - n; i < w->tail_next && at < cap; i++) {
    int k = snprintf(out + at, cap - at, "%s%s", at ? " | " : "", w->tail[i % 4]);
    if (k < 0) break;
    at += (size_t)k;
  }
  pthread_mutex_unlock(&w->mu);
}

/* Read what the pipe has (non-blocking): lines out, bounded line length (longer ones are cut into
 * pieces). false at end of file or error. */
static bool ext_pump(worker *w, char *line, size_t *ll, size_t cap) {
  char buf[4096];
  for (int rounds = 0; rounds < 256; rounds++) {
    ssize_t n = read(w->out_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n' || *ll == cap - 1) {
        ext_line(w, line, *ll);
        *ll = 0;
        if (buf[i] == '\n') continue;
      }
      line[(*ll)++] = buf[i];
    }
  }
  return true;
}

/* The reader thread of an external engine: logs its output until the leader exits, then kills
 * what is left of its process group (while the zombie leader still holds the group's id, so the
 * id cannot have been reused), reaps it and reports the exit. */
static void *ext_reader_main(void *arg) {
  worker *w = arg;
  char line[1024];
  size_t ll = 0;
  bool out_open = w->out_fd >= 0;
  int pfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
  for (;;) {
    struct pollfd p[2] = {{.fd = pfd, .events = POLLIN},
                          {.fd = out_open ? w->out_fd : -1, .events = POLLIN}};
    if (pfd < 0 && !out_open) break; /* no pidfd (old kernel): the pipe's end is all we get */
    int n = poll(p, 2, -1);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (p[1].revents) out_open = ext_pump(w, line, &ll, sizeof line);
    if (pfd >= 0 && (p[0].revents & POLLIN)) {
      if (out_open) ext_pump(w, line, &ll, sizeof line); /* what it wrote just before exiting */
      break;
    }
  }
  if (ll) ext_line(w, line, ll);
  if (pfd >= 0) close(pfd);
  kill(-w->pid, SIGKILL);
  int st = 0;
  pid_t got;
  while ((got = waitpid(w->pid, &st, 0)) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&w->mu);
  describe_exit(w, got, st, "was killed");
  reader_exited(w, "external engine");
  return NULL;
}

/* stop_signal to the group, stop_grace, then SIGKILL to the group; returns once reaped. */
static void ext_stop(worker *w) {
  kill(-w->pid, w->stop_signal);
  await_reaped(w, sy_deadline(w->stop_grace_ms), true);
}

/* A free TCP port on 127.0.0.1 (the kernel's pick), or 0. Another program may take it before the
 * engine binds it: the engine then fails to start and the error says so. */
static int ext_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  int port = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &al) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

/* s with every ${PORT} replaced by port (new string, or NULL when out of memory). */
static char *ext_subst(const char *s, int port) {
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  size_t n = 0;
  for (const char *q = s; (q = strstr(q, "${PORT}")); q += 7) n++;
  size_t len = strlen(s) + n * strlen(ps) + 1;
  char *out = malloc(len), *o = out;
  if (!out) return NULL;
  for (const char *q = s; *q;) {
    if (strncmp(q, "${PORT}", 7) == 0) {
      o += sprintf(o, "%s", ps);
      q += 7;
    } else {
      *o++ = *q++;
    }
  }
  *o = '\0';
  return out;
}

static void strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

/* The environment: the daemon's, with the model's entries (substituted) replacing same-named ones.
 */
static char **ext_envp(const matrix_external *e, int port) {
  size_t n = 0;
  while (environ[n]) n++;
  char **out = calloc(n + e->n_env + 1, sizeof *out);
  size_t k = 0;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    bool over = false;
    for (size_t j = 0; j < e->n_env && !over; j++)
      over = strncmp(e->env[j], environ[i], kl) == 0 && e->env[j][kl] == '=';
    if (!over && !(out[k++] = strdup(environ[i]))) goto oom;
  }
  for (size_t j = 0; j < e->n_env; j++)
    if (!(out[k++] = ext_subst(e->env[j], port))) goto oom;
  return out;
oom:
  strv_free(out);
  return NULL;
}

static size_t ext_discard(char *p, size_t sz, size_t nm, void *ud) {
  (void)p;
  (void)ud;
  return sz * nm;
}

/* Poll the health URL until it answers the expected status (true), or the process exits or the
 * start-up timeout passes (false, err filled). */
static bool ext_wait_healthy(worker *w, const matrix_external *e, api_error *err) {
  char url[1100], tail[1024];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", w->port, e->health_path);
  CURL *c = curl_easy_init();
  if (!c) {
    API_SERVER(err, "load_failed", "model '%s': out of memory", w->tag);
    return false;
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ext_discard);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
  long long deadline = now_ms() + (long long)e->startup_timeout_s * 1000;
  long last = 0;
  bool ok = false;
  for (;;) {
    long long left = deadline - now_ms();
    if (!worker_alive(w) || left <= 0) break;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(left < 5000 ? left : 5000));
    if (curl_easy_perform(c) == CURLE_OK) {
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &last);
      if (last == e->health_status) {
        ok = true;
        break;
      }
    }
    /* next try in 100 ms, or at once when the process exits */
    long long wait = deadline - now_ms();
    struct timespec ts = sy_deadline(wait < 100 ? (int)(wait > 0 ? wait : 0) : 100);
    pthread_mutex_lock(&w->mu);
    if (w->alive) pthread_cond_timedwait(&w->exited_cond, &w->mu, &ts);
    pthread_mutex_unlock(&w->mu);
  }
  curl_easy_cleanup(c);
  if (ok) return true;
  if (!worker_alive(w)) {
    /* the reader logs the last lines before it reports the exit */
    ext_tail(w, tail, sizeof tail);
    api_error_set(err, 500, "server_error", "load_failed", NULL,
                  "model '%s' (external engine) %s during start-up%s%s", w->tag, w->exit_reason,
                  tail[0] ? "; its last output: " : " (it printed nothing)", tail);
  } else {
    ext_tail(w, tail, sizeof tail);
    char got[48] = "no answer";
    if (last) snprintf(got, sizeof got, "last answer: status %ld", last);
    api_error_set(
        err, 500, "server_error", "load_timeout", NULL,
        "model '%s' (external engine) did not become healthy within %d s (GET %s on port %d "
        "should answer %d; %s)%s%s",
        w->tag, e->startup_timeout_s, e->health_path, w->port, e->health_status, got,
        tail[0] ? "; its last output: " : "", tail);
  }
  return false;
}

worker *worker_start_external(const worker_ext_params *p, api_error *err) {
  const matrix_external *e = p->ext;
  int port = e->port ? e->port : ext_free_port();
  if (port <= 0) {
    API_SERVER(err, "spawn_failed", "model '%s': no free port for the external engine", p->tag);
    return NULL;
  }
  char **argv = calloc(e->argc + 4, sizeof *argv);
  char **envp = ext_envp(e, port);
  worker *w = calloc(1, sizeof *w);
  int pp[2] = {-1, -1};
  bool ok = argv && envp && w && pipe2(pp, O_CLOEXEC) == 0;
  size_t k = 0;
  if (ok && e->shell) {
    ok = (argv[k++] = strdup("/bin/sh")) && (argv[k++] = strdup("-c")) &&
         (argv[k++] = ext_subst(e->argv[0], port));
  } else {
    for (size_t i = 0; ok && i < e->argc; i++)
      ok = (argv[k++] = ext_subst(e->argv[i], port)) != NULL;
  }
  if (!ok) {
    API_SERVER(err, "spawn_failed", "model '%s': could not prepare the external engine: %s", p->tag,
               strerror(errno));
    goto fail;
  }
  worker_init(w, -1, pp[0], p->tag, p->on_exit, p->on_exit_ud);
  w->external = true;
  w->port = port;
  w->stop_signal = e->stop_signal;
  w->stop_grace_ms = e->stop_grace_ms;

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pp[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pp[1], 2);
  if (e->cwd) posix_spawn_file_actions_addchdir_np(&fa, e->cwd);
  /* its own process group (killed as one); the daemon's blocked and ignored signals undone */
  sigset_t none, dfl;
  sigemptyset(&none);
  sigemptyset(&dfl);
  int dsigs[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD};
  for (size_t i = 0; i < sizeof dsigs / sizeof dsigs[0]; i++) sigaddset(&dfl, dsigs[i]);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &dfl);
  posix_spawnattr_setflags(&at,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int rc = posix_spawnp(&w->pid, argv[0], &fa, &at, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(pp[1]);
  pp[1] = -1;
  strv_free(argv);
  strv_free(envp);
  argv = envp = NULL;
  if (rc != 0) {
    API_SERVER(err, "spawn_failed", "model '%s': could not start the external engine '%s'%s: %s",
               p->tag, e->argv[0], e->cwd ? " (in its cwd)" : "", strerror(rc));
    w->pid = 0;
    worker_free(w);
    return NULL;
  }
  fcntl(w->out_fd, F_SETFL, fcntl(w->out_fd, F_GETFL) | O_NONBLOCK);
  w->alive = true;
  if (pthread_create(&w->reader, NULL, ext_reader_main, w) != 0) {
    kill(-w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
    w->reaped = true;
    API_SERVER(err, "spawn_failed", "could not start the external engine's reader thread");
    worker_unref(w);
    return NULL;
  }
  w->reader_started = true;
  LOG_I("external engine %s started (pid %d, port %d)", w->tag, (int)w->pid, port);
  if (ext_wait_healthy(w, e, err)) {
    LOG_I("external engine %s is healthy (GET %s on port %d)", w->tag, e->health_path, port);
    return w;
  }
  worker_stop(w, 0);
  worker_unref(w);
  return NULL;
fail:
  if (pp[0] >= 0) close(pp[0]);
  if (pp[1] >= 0) close(pp[1]);
  strv_free(argv);
  strv_free(envp);
  free(w);
  return NULL;
}
