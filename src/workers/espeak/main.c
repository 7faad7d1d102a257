/* main.c — switchyard-espeak: the built-in CPU voice, one worker process (docs/PROTOCOL.md).
 *
 *   switchyard-espeak [--ipc-fd N] [--log-level debug|info|warn|error] [--log-format text|json]
 *                     [--tag MODEL]
 *
 * Expects `load` first, then serves `speak`, `voices`, `cancel` and `shutdown`. One request
 * synthesises at a time (espeak-ng is one global state), in a forked child (see espeak.h); the
 * others wait in a bounded FIFO. The main loop polls the daemon's socket and the running child's
 * pipe, so a `cancel` is seen while a child synthesises. Exits 0 on `shutdown` or end of stream,
 * 1 on a failed load or a broken channel, 2 on bad arguments.
 *
 * Ids and every frame sent (here and in the child) go through the shared skeleton (wio.h); its
 * reader thread does not: this process forks, and a forking process must stay single-threaded
 * (the child would inherit whatever lock another thread held), so the loop polls the socket
 * itself. Must never block on the child while the daemon has a frame waiting. */
#include <errno.h>
#include <espeak-ng/speak_lib.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "espeak.h"
#include "ipc.h"
#include "log.h"
#include "wargs.h"
#include "wio.h"

#define ES_MAX_QUEUE 256

typedef struct running {
  es_job job;
  pid_t pid;
  int fd; /* the child's frames */
  long long samples;
  bool active;
} running;

typedef struct espeak_worker {
  wio_out out; /* replies; out.dead once a send failed */
  int fd;
  int rate;
  es_job queue[ES_MAX_QUEUE]; /* FIFO of waiting requests */
  size_t q_head, q_len;
  running cur;
} espeak_worker;

/* The `done` of a speak: the samples sent (at w->rate) and why it ended. */
static void es_send_done(espeak_worker *w, wio_id id, long long samples, const char *finish) {
  wio_done(&w->out, id, "{s:I, s:i, s:s}", "samples", (json_int_t)samples, "rate", w->rate,
           "finish_reason", finish);
}

/* ---- the running child ---- */

static void start_next(espeak_worker *w) {
  while (!w->cur.active && w->q_len > 0 && !w->out.dead) {
    es_job j = w->queue[w->q_head];
    w->q_head = (w->q_head + 1) % ES_MAX_QUEUE;
    w->q_len--;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      wio_error(&w->out, j.id, 500, "synthesis_failed", "cannot create a pipe");
      free(j.text);
      continue;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
      close(p[0]);
      close(p[1]);
      wio_error(&w->out, j.id, 500, "synthesis_failed", "cannot fork");
      free(j.text);
      continue;
    }
    if (pid == 0) { /* the child: synthesise, then leave without running the parent's exit path */
      close(p[0]);
      close(w->fd);
      signal(SIGPIPE, SIG_IGN);
      _exit(es_child_run(p[1], &j, w->rate));
    }
    close(p[1]);
    w->cur = (running){.job = j, .pid = pid, .fd = p[0], .active = true};
    LOG_D("speak id=%lld: child %d, voice %s, rate %d, %zu bytes", (long long)j.id, (int)pid,
          j.voice, j.rate, j.len);
  }
}

/* End the running request: kill the child when it still runs, reap it, free its job. */
static void end_current(espeak_worker *w, bool kill_it) {
  running *c = &w->cur;
  if (!c->active) return;
  if (kill_it) kill(c->pid, SIGKILL);
  close(c->fd);
  int st;
  while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
  }
  free(c->job.text);
  memset(c, 0, sizeof *c);
}

/* One frame from the child: relay it. Terminal frames end the request. */
static void relay_child(espeak_worker *w) {
  running *c = &w->cur;
  ipc_msg m;
  int rc = ipc_recv(c->fd, &m);
  if (rc == IPC_BADMSG) return;
  if (rc != IPC_OK) { /* the child died before its last frame */
    LOG_E("speak id=%lld: the synthesis process ended early", (long long)c->job.id);
    wio_error(&w->out, c->job.id, 500, "synthesis_failed", "the synthesis process ended early");
    end_current(w, true);
    return;
  }
  const char *op = ipc_op(&m);
  if (strcmp(op, "audio") == 0) c->samples += (long long)(m.payload_len / sizeof(float));
  bool terminal = strcmp(op, "done") == 0 || strcmp(op, "error") == 0;
  wio_send(&w->out, json_incref(m.hdr), m.payload, m.payload_len);
  ipc_msg_clear(&m);
  if (terminal) end_current(w, false);
}

/* ---- requests ---- */

static void handle_speak(espeak_worker *w, wio_id id, const json_t *hdr) {
  const json_t *in = json_object_get(hdr, "input");
  if (!json_is_string(in) || json_string_length(in) == 0) {
    wio_error(&w->out, id, 400, "invalid_request", "speak needs a non-empty string 'input'");
    return;
  }
  size_t len = json_string_length(in);
  if (len > ES_MAX_TEXT) {
    wio_error(&w->out, id, 400, "invalid_request", "the input is too long");
    return;
  }
  if (w->q_len >= ES_MAX_QUEUE) {
    wio_error(&w->out, id, 503, "overloaded", "too many speech requests are waiting");
    return;
  }
  es_job j = {.id = id, .len = len};
  const char *voice = json_string_value(json_object_get(hdr, "voice"));
  if (es_resolve_voice(voice, j.voice, sizeof j.voice) != 0) {
    wio_error(&w->out, id, 400, "invalid_voice",
              "unknown voice '%.100s' (GET /v1/audio/voices lists them)", voice ? voice : "");
    return;
  }
  const json_t *sp = json_object_get(hdr, "speed");
  j.rate = es_rate_for_speed(json_is_number(sp) ? json_number_value(sp) : 1.0);
  if (!(j.text = malloc(len + 1))) {
    wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
    return;
  }
  memcpy(j.text, json_string_value(in), len + 1);
  for (size_t i = 0; i < len; i++) /* JSON may carry \u0000: espeak reads C strings */
    if (j.text[i] == '\0') j.text[i] = ' ';
  w->queue[(w->q_head + w->q_len) % ES_MAX_QUEUE] = j;
  w->q_len++;
}

static void handle_cancel(espeak_worker *w, wio_id id) {
  if (w->cur.active && w->cur.job.id == id) {
    long long s = w->cur.samples;
    end_current(w, true);
    es_send_done(w, id, s, "cancelled");
    return;
  }
  for (size_t k = 0; k < w->q_len; k++) {
    es_job *j = &w->queue[(w->q_head + k) % ES_MAX_QUEUE];
    if (j->id != id) continue;
    free(j->text);
    for (size_t m = k; m + 1 < w->q_len; m++) /* close the gap, keeping the order */
      w->queue[(w->q_head + m) % ES_MAX_QUEUE] = w->queue[(w->q_head + m + 1) % ES_MAX_QUEUE];
    w->q_len--;
    es_send_done(w, id, 0, "cancelled");
    return;
  }
}

/* Returns 1 when the worker should exit. */
static int handle(espeak_worker *w, const ipc_msg *m) {
  const char *op = ipc_op(m);
  wio_id id = wio_msg_id(m->hdr);
  if (strcmp(op, "shutdown") == 0) {
    LOG_I("shutdown");
    return 1;
  }
  if (!id) {
    LOG_W("\"%.64s\" without a valid id; ignored", op);
  } else if (strcmp(op, "speak") == 0) {
    handle_speak(w, id, m->hdr);
  } else if (strcmp(op, "cancel") == 0) {
    handle_cancel(w, id);
  } else if (strcmp(op, "voices") == 0) {
    json_t *v = es_voices_json();
    wio_send(&w->out,
             v ? json_pack("{s:s, s:I, s:o, s:i}", "op", "done", "id", (json_int_t)id, "voices", v,
                           "rate", w->rate)
               : NULL,
             NULL, 0);
  } else {
    LOG_W("unexpected op \"%.64s\"", op);
    wio_error(&w->out, id, 400, "unknown_op", "unknown or unexpected op");
  }
  return 0;
}

static int loop(espeak_worker *w) {
  for (;;) {
    start_next(w);
    if (w->out.dead) return 1;
    struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN},
                          {.fd = w->cur.active ? w->cur.fd : -1, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      LOG_E("poll: %s", strerror(errno));
      return 1;
    }
    if (p[0].revents) { /* the daemon first: a cancel must not wait behind audio */
      ipc_msg m;
      int rc = ipc_recv(w->fd, &m);
      if (rc == IPC_EOF) {
        LOG_I("the daemon closed the channel; exiting");
        return 0;
      }
      if (rc == IPC_ERR) {
        LOG_E("ipc: bad framing or read error; giving up on the channel");
        return 1;
      }
      if (rc == IPC_OK) {
        int stop = handle(w, &m);
        ipc_msg_clear(&m);
        if (stop) return 0;
      }
      continue;
    }
    if (p[1].revents) relay_child(w);
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: switchyard-espeak [--ipc-fd N] [--log-level debug|info|warn|error]\n"
          "                         [--log-format text|json] [--tag MODEL]\n");
}

int main(int argc, char **argv) {
  sy_wargs args;
  if (sy_wargs_parse(argc, argv, "espeak", false, &args) != 0) {
    usage();
    return 2;
  }
  if (sy_wargs_start(&args) != 0) return 2;
  int fd = args.fd;
  static espeak_worker w;
  w.fd = fd;
  wio_out_init(&w.out, fd);
  int status = 1;
  ipc_msg m;
  int rc = ipc_recv(fd, &m);
  if (rc != IPC_OK) {
    LOG_I("the channel closed before load");
    wio_out_deinit(&w.out);
    return rc == IPC_EOF ? 0 : 1;
  }
  if (strcmp(ipc_op(&m), "load") != 0) {
    wio_error(&w.out, 0, 400, "load_failed", "the first message must be load");
    goto out_msg;
  }
  /* "model": "" for espeak's own data, or a folder: espeak-ng-data itself or the one holding it */
  const char *path = json_string_value(json_object_get(m.hdr, "model"));
  char dir[4096] = "";
  if (path && *path) {
    snprintf(dir, sizeof dir, "%s", path);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = '\0';
    const char *base = strrchr(dir, '/');
    if (base && strcmp(base + 1, "espeak-ng-data") == 0) dir[base == dir ? 1 : base - dir] = '\0';
  }
  char err[512];
  w.rate = es_init(*dir ? dir : NULL, err, sizeof err);
  if (w.rate <= 0) {
    LOG_E("%s", err);
    wio_error(&w.out, 0, 500, "load_failed", "%s", err);
    goto out_msg;
  }
  char probe[160];
  if (es_resolve_voice("en-us", probe, sizeof probe) != 0) {
    wio_error(&w.out, 0, 500, "load_failed",
              "espeak-ng has no en-us voice (incomplete espeak-ng-data?)");
    goto out_term;
  }
  json_t *voices = es_voices_json();
  size_t nv = json_array_size(voices);
  json_decref(voices);
  const char *data = NULL;
  const char *ver = espeak_Info(&data);
  char desc[256];
  snprintf(desc, sizeof desc, "espeak-ng %s, %zu voices, %d Hz", ver ? ver : "?", nv, w.rate);
  wio_send(&w.out,
           json_pack("{s:s, s:i, s:i, s:i, s:I, s:s, s:s, s:i, s:I}", "op", "ready", "n_ctx", 0,
                     "n_parallel", 1, "sample_rate", w.rate, "model_bytes", (json_int_t)0, "arch",
                     "espeak-ng", "desc", desc, "has_chat_template", 0, "n_voices", (json_int_t)nv),
           NULL, 0);
  LOG_I("ready: %s (data %s)", desc, data ? data : "?");
  ipc_msg_clear(&m);
  status = loop(&w);
  end_current(&w, true);
  while (w.q_len > 0) {
    free(w.queue[w.q_head].text);
    w.q_head = (w.q_head + 1) % ES_MAX_QUEUE;
    w.q_len--;
  }
  goto out_term;
out_msg:
  ipc_msg_clear(&m);
  wio_out_deinit(&w.out);
  return status;
out_term:
  ipc_msg_clear(&m);
  es_term();
  wio_out_deinit(&w.out);
  return status;
}
