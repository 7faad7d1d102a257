/* main.c — switchyard-llama: one worker process per loaded model (docs/PROTOCOL.md).
 *
 *   switchyard-llama [--ipc-fd N] [--log-level debug|info|warn|error] [--log-format text|json]
 *                    [--tag MODEL]
 *
 * Sets the process up (dies with its parent, ignores SIGPIPE), starts the reader thread, expects
 * `load` first, then runs the message loop: drain received frames, and while any request is
 * active run one continuous-batching step between drains; block only when idle. Exits 0 on
 * `shutdown` or end of stream, 1 on a failed load or a broken channel, 2 on bad arguments.
 * Must never exit without freeing what it holds (the tests run it under ASan/LSan), and never
 * answer a frame that has no valid id with anything but a log line. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "wargs.h"
#include "wio.h"
#include "worker.h"

#define MAIN_MAX_DRAIN 64 /* frames handled between two decode steps while busy */

static void main_usage(void) {
  fprintf(stderr,
          "usage: switchyard-llama [--ipc-fd N] [--log-level debug|info|warn|error]\n"
          "                        [--log-format text|json] [--tag MODEL]\n"
          "       switchyard-llama --list-devices [--rpc HOST:PORT,...]\n");
}

/* Handle one frame after load. Returns 1 when the worker should exit. */
static int main_handle(worker *w, const ipc_msg *m) {
  const char *op = ipc_op(m);
  wio_id id = wio_msg_id(m->hdr);
  if (strcmp(op, "rerank") == 0) {
    if (!id)
      LOG_W("rerank without a valid id; ignored");
    else if (w->mode != WK_MODE_RERANK)
      wio_error(&w->out, id, 400, "wrong_capability", "this model is not loaded for reranking");
    else
      embed_rerank(w, id, m->hdr);
  } else if (strcmp(op, "speak") == 0 || strcmp(op, "voices") == 0) {
    if (!id)
      LOG_W("%s without a valid id; ignored", op);
    else if (w->mode != WK_MODE_SPEECH)
      wio_error(&w->out, id, 400, "wrong_capability", "this model has no speech projector");
    else if (op[0] != 's' && m->payload_len)
      wio_error(&w->out, id, 400, "invalid_request", "voices takes no payload");
    else if (op[0] == 's')
      speech_submit(w, id, m->hdr, m->payload, m->payload_len);
    else
      speech_voices(w, id);
  } else if (w->mode == WK_MODE_SPEECH &&
             (strcmp(op, "generate") == 0 || strcmp(op, "embed") == 0)) {
    if (id) wio_error(&w->out, id, 400, "wrong_capability", "this model is loaded for speech");
  } else if (strcmp(op, "generate") == 0 || strcmp(op, "embed") == 0) {
    bool is_embed = op[0] == 'e';
    if (!id) {
      LOG_W("%s without a valid id; ignored", op);
    } else if (is_embed && w->mode == WK_MODE_RERANK) {
      wio_error(&w->out, id, 400, "wrong_capability",
                "this model is loaded for reranking, not embeddings");
    } else if (is_embed != wk_embeds(w)) {
      wio_error(&w->out, id, 400, "wrong_capability",
                is_embed ? "this model is loaded for text generation, not embeddings"
                         : "this model is loaded for embeddings, not text generation");
    } else if (is_embed) {
      if (m->payload_len)
        wio_error(&w->out, id, 400, "invalid_request", "embed takes no payload");
      else
        embed_run(w, id, m->hdr);
    } else {
      gen_submit(w, id, m->hdr, m->payload, m->payload_len);
    }
  } else if (strcmp(op, "cancel") == 0) {
    if (!id)
      LOG_W("cancel without a valid id; ignored");
    else if (w->mode == WK_MODE_SPEECH)
      speech_cancel(w, id);
    else if (!wk_embeds(w))
      gen_cancel(w, id);
  } else if (strcmp(op, "threads") == 0) {
    /* the daemon's share of the cores while other workers are busy too (cpu_share.h): from the
     * next decode on; never more than loaded with */
    json_int_t n = json_integer_value(json_object_get(m->hdr, "n"));
    if (n >= 1 && n <= w->n_threads_max && w->ctx) {
      llama_set_n_threads(w->ctx, (int32_t)n, (int32_t)n);
      LOG_D("threads: %lld", (long long)n);
    } else {
      LOG_W("threads: %lld ignored (1..%d)", (long long)n, w->n_threads_max);
    }
  } else if (strcmp(op, "cache_limit") == 0) {
    /* the scheduler's share of the budget for the prompt cache (docs/PROMPT_CACHE.md) */
    const json_t *b = json_object_get(m->hdr, "bytes");
    if (json_is_integer(b) && json_integer_value(b) >= 0 && w->gen)
      gen_cache_limit(w, (int64_t)json_integer_value(b));
    else
      LOG_W("cache_limit ignored (a byte count >= 0, generate mode only)");
  } else if (strcmp(op, "shutdown") == 0) {
    LOG_I("shutdown");
    if (w->gen) gen_persist(w); /* the unload keeps its conversations (docs/PROMPT_CACHE.md) */
    return 1;
  } else {
    LOG_W("unexpected op \"%.64s\"%s", op, id ? "" : " (no id; ignored)");
    if (id) wio_error(&w->out, id, 400, "unknown_op", "unknown or unexpected op \"%.64s\"", op);
  }
  return 0;
}

/* The message loop after a successful load. Returns the exit status. */
static int main_loop(worker *w) {
  int drained = 0;
  while (!w->out.dead) {
    bool idle = w->mode == WK_MODE_SPEECH ? !speech_busy(w) : !gen_busy(w);
    ipc_msg m;
    int rc = idle || drained < MAIN_MAX_DRAIN ? wio_inbox_pop(&w->in, &m, idle) : WIO_EMPTY;
    if (rc == WIO_MSG) {
      drained++;
      int stop = main_handle(w, &m);
      ipc_msg_clear(&m);
      if (stop) return 0;
      continue;
    }
    if (rc == WIO_END) {
      LOG_I("the daemon closed the channel; exiting");
      return wio_inbox_failed(&w->in) ? 1 : 0;
    }
    drained = 0;
    if (w->mode == WK_MODE_SPEECH)
      speech_step(w);
    else
      gen_step(w);
  }
  return 0;
}

int main(int argc, char **argv) {
  sy_wargs args;
  if (sy_wargs_parse(argc, argv, "llama", true, &args) != 0) {
    main_usage();
    return 2;
  }
  if (args.list_devices) return devices_print(args.rpc[0] ? args.rpc : NULL);
  /* No PR_SET_PDEATHSIG: it fires when the daemon *thread* that spawned us exits (an HTTP
   * connection thread), not the daemon process. When the daemon dies, the kernel closes its end
   * of the socket and the inbox thread's EOF ends this process. */
  if (sy_wargs_start(&args) != 0) return 2;
  int fd = args.fd;

  static worker w; /* the one process-wide state; zero-initialised */
  int status = 1;
  wio_out_init(&w.out, fd);
  wio_inbox_init(&w.in, fd, WK_INBOX_CAP, false);
  engine_log_install(&w);
  llama_backend_init();
  ipc_msg m;
  if (!wio_await_load(&w.in, &w.out, &m, &status)) goto out;
  int lrc = engine_load(&w, m.hdr);
  ipc_msg_clear(&m);
  if (lrc != 0) {
    status = wio_inbox_ended(&w.in) && !wio_inbox_failed(&w.in) ? 0 : 1;
    goto out;
  }
  status = main_loop(&w);

out:
  wio_inbox_deinit(&w.in);
  engine_free(&w);
  llama_backend_free();
  llama_log_set(NULL, NULL);
  pthread_mutex_destroy(&w.logline.mu);
  wio_out_deinit(&w.out);
  LOG_D("exit %d", status);
  return status;
}
