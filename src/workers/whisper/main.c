/* main.c — switchyard-whisper: one worker process per loaded whisper.cpp model
 * (docs/PROTOCOL.md).
 *
 *   switchyard-whisper [--ipc-fd N] [--log-level debug|info|warn|error] [--log-format text|json]
 *                      [--tag MODEL]
 *
 * Sets the process up, starts the reader thread (wio_inbox, which takes `cancel` itself),
 * expects `load` first, then serves `transcribe` requests one at a time in arrival order. Exits 0
 * on `shutdown` or end of stream, 1 on a failed load or a broken channel, 2 on bad arguments.
 * The top of the worker (main → transcribe → parakeet): nothing below calls it. Never exits
 * without freeing what it holds (the tests run it under ASan/LSan). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "wargs.h"
#include "wio.h"
#include "ww.h"

/* ---- the loop ----------------------------------------------------------------------------- */

static int serve(ww *w) {
  while (!w->out.dead) {
    ipc_msg m;
    if (wio_inbox_pop(&w->in, &m, true) != WIO_MSG) {
      LOG_I("the daemon closed the channel; exiting");
      return wio_inbox_failed(&w->in) ? 1 : 0;
    }
    const char *op = ipc_op(&m);
    wio_id id = wio_msg_id(m.hdr);
    if (strcmp(op, "shutdown") == 0) {
      LOG_I("shutdown");
      ipc_msg_clear(&m);
      return 0;
    }
    if (strcmp(op, "transcribe") == 0 && id) {
      ww_transcribe(w, id, &m);
    } else if (strcmp(op, "threads") ==
               0) { /* the daemon's share (cpu_share.h): from the next decode */
      json_int_t n = json_integer_value(json_object_get(m.hdr, "n"));
      if (n >= 1 && n <= INT32_MAX)
        atomic_store(&w->threads_share, (int)n);
      else
        LOG_W("threads: %lld ignored", (long long)n);
    } else if (!id) {
      LOG_W("\"%.64s\" without a valid id; ignored", op);
    } else if (strcmp(op, "generate") == 0 || strcmp(op, "embed") == 0) {
      wio_error(&w->out, id, 400, "wrong_capability",
                "this model transcribes speech; it does not %s",
                op[0] == 'g' ? "generate text" : "embed");
    } else {
      wio_error(&w->out, id, 400, "unknown_op", "unknown or unexpected op \"%.64s\"", op);
    }
    ipc_msg_clear(&m);
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: switchyard-whisper [--ipc-fd N] [--log-level debug|info|warn|error]\n"
          "                          [--log-format text|json] [--tag MODEL]\n");
}

int main(int argc, char **argv) {
  sy_wargs args;
  if (sy_wargs_parse(argc, argv, "whisper", false, &args) != 0) {
    usage();
    return 2;
  }
  if (sy_wargs_start(&args) != 0) return 2;

  static ww w; /* the one process-wide state; zero-initialised */
  int status = 1;
  wio_out_init(&w.out, args.fd);
  wio_inbox_init(&w.in, args.fd, WW_INBOX_CAP, true);
  ww_log_install(&w);
  ipc_msg m;
  if (!wio_await_load(&w.in, &w.out, &m, &status)) goto out;
  int lrc = ww_load(&w, m.hdr);
  ipc_msg_clear(&m);
  if (lrc == 0) status = serve(&w);

out:
  wio_inbox_deinit(&w.in);
  ww_free(&w);
  wio_out_deinit(&w.out);
  LOG_D("exit %d", status);
  return status;
}
