/* worker.c — spawn, talk to, watch and stop one worker process (see worker.h).
 * Must never block the reader thread on anything but its socket, never let a reply reach a
 * request other than the one whose id it carries, and never leave a child unreaped. */
#include "worker.h"

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
  bool terminal;  /* a terminal event has been queued (by the worker or synthesised) */
  bool listed;    /* in w->pending (guarded by w->mu) */
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
  bool alive;    /* guarded by mu */
  bool reaped;   /* guarded by mu */
  char exit_reason[128];
  char tag[128];
  worker_exit_fn on_exit;
  void *on_exit_ud;
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
  if (r->tail) r->tail->next = n; else r->head = n;
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
  if (r->prev) r->prev->next = r->next; else w->pending = r->next;
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

/* Wait up to ms for the process to exit by itself, then kill it; reap it; describe how it ended. */
static void reap(worker *w, int ms) {
  int st = 0;
  pid_t got = waitpid(w->pid, &st, WNOHANG);
  if (got == 0) {
    int pfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
    if (pfd >= 0) {
      struct pollfd p = {.fd = pfd, .events = POLLIN};
      while (poll(&p, 1, ms) < 0 && errno == EINTR) {}
      close(pfd);
    }
    got = waitpid(w->pid, &st, WNOHANG);
    if (got == 0) {
      kill(w->pid, SIGKILL);
      got = waitpid(w->pid, &st, 0);
    }
  }
  if (got == w->pid && WIFSIGNALED(st))
    snprintf(w->exit_reason, sizeof w->exit_reason, "killed by signal %d (%s)", WTERMSIG(st),
             strsignal(WTERMSIG(st)));
  else if (got == w->pid && WIFEXITED(st))
    snprintf(w->exit_reason, sizeof w->exit_reason, "exited with status %d", WEXITSTATUS(st));
  else
    snprintf(w->exit_reason, sizeof w->exit_reason, "ended (status unknown)");
}

static void *reader_main(void *arg) {
  worker *w = arg;
  for (;;) {
    ipc_msg m;
    int rc = ipc_recv(w->fd, &m);
    if (rc == IPC_BADMSG) { /* still in step: drop the frame, keep the worker */
      LOG_W("worker %s (pid %d): skipping a frame whose header is not a JSON object", w->tag, (int)w->pid);
      continue;
    }
    if (rc != IPC_OK) {
      if (rc == IPC_ERR) LOG_W("worker %s (pid %d): bad frame or read error: %s", w->tag, (int)w->pid, strerror(errno));
      break;
    }
    json_t *jid = json_object_get(m.hdr, "id");
    long long id = json_is_integer(jid) ? (long long)json_integer_value(jid) : 0;
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
  w->alive = false;
  w->reaped = true;
  char msg[512];
  snprintf(msg, sizeof msg, "the worker for model '%s' %s while serving this request", w->tag,
           w->exit_reason);
  while (w->pending) {
    wreq *r = w->pending;
    unlist(w, r);
    wreq_push_error(r, 500, "worker_crashed", msg);
  }
  pthread_cond_broadcast(&w->exited_cond);
  pthread_mutex_unlock(&w->mu);
  LOG_I("worker %s (pid %d) %s", w->tag, (int)w->pid, w->exit_reason);
  if (w->on_exit) w->on_exit(w->on_exit_ud, w);
  return NULL;
}

/* ---- lifecycle ---- */

static void worker_free(worker *w) {
  if (w->reader_started) {
    worker_stop(w, 2000);
    pthread_join(w->reader, NULL);
  }
  if (w->fd >= 0) close(w->fd);
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

void worker_stop(worker *w, int grace_ms) {
  pthread_mutex_lock(&w->mu);
  if (w->reaped || w->pid <= 0) {
    pthread_mutex_unlock(&w->mu);
    return;
  }
  pthread_mutex_unlock(&w->mu);
  json_t *m = json_pack("{s:s}", "op", "shutdown");
  if (m) ipc_send_steal(&w->chan, m, NULL, 0);
  struct timespec ts = sy_deadline(grace_ms);
  pthread_mutex_lock(&w->mu);
  while (!w->reaped) {
    if (pthread_cond_timedwait(&w->exited_cond, &w->mu, &ts) == ETIMEDOUT) {
      if (!w->reaped) kill(w->pid, SIGKILL);
      while (!w->reaped) pthread_cond_wait(&w->exited_cond, &w->mu);
    }
  }
  pthread_mutex_unlock(&w->mu);
}

wreq *worker_submit(worker *w, json_t *msg, api_error *err) { return worker_submit_payload(w, msg, NULL, 0, err); }

wreq *worker_submit_payload(worker *w, json_t *msg, const void *payload, size_t payload_len, api_error *err) {
  pthread_mutex_lock(&w->mu);
  if (!w->alive) {
    pthread_mutex_unlock(&w->mu);
    json_decref(msg);
    API_SERVER(err, "worker_crashed", "the worker for model '%s' is not running (%s)", w->tag, w->exit_reason);
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
  atomic_init(&w->refs, 1);
  w->fd = sv[0];
  ipc_chan_init(&w->chan, w->fd);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->exited_cond, NULL);
  snprintf(w->tag, sizeof w->tag, "%s", p->tag);
  snprintf(w->exit_reason, sizeof w->exit_reason, "has not started");
  w->on_exit = p->on_exit;
  w->on_exit_ud = p->on_exit_ud;

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, child_fd, 3);
  char *argv[] = {(char *)p->exe, "--ipc-fd", "3", "--log-level",
                  (char *)(p->log_level ? p->log_level : "info"), "--tag", (char *)p->tag, NULL};
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
    if (p->on_progress && json_is_number(pv)) p->on_progress(p->on_progress_ud, json_number_value(pv));
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
    api_error_set(err, status >= 400 && status < 600 ? status : 500, "server_error", "load_failed", NULL,
                  "model '%s' failed to load: %s", p->tag, wm ? wm : "unknown error");
    (void)code;
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
