/* reply.c — the frames the worker sends to the daemon (shapes in docs/PROTOCOL.md).
 * Must never send text that is not valid UTF-8, and never keep going silently after a failed
 * send: it marks the worker dead so the main loop exits. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the embeddings payload is sent as host floats; this worker assumes a little-endian host"
#endif

static void reply_frame(worker *w, json_t *hdr, const void *payload, size_t payload_len) {
  if (!hdr) {
    LOG_E("reply: out of memory building a frame");
    return;
  }
  if (w->dead) {
    json_decref(hdr);
    return;
  }
  if (ipc_send_steal(&w->chan, hdr, payload, payload_len) != IPC_OK) {
    LOG_W("reply: send failed (%s); the daemon is gone", strerror(errno));
    w->dead = true;
  }
}

void reply_send(worker *w, json_t *hdr) { reply_frame(w, hdr, NULL, 0); }

void reply_payload(worker *w, json_t *hdr, const void *payload, size_t len) {
  reply_frame(w, hdr, payload, len);
}

void reply_error(worker *w, int64_t id, int status, const char *code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* The message may quote input; never let a cut multi-byte character make it invalid. */
  size_t fixed_len;
  char *fixed = text_utf8_repair(msg, strlen(msg), &fixed_len);
  LOG_D("reply: error id=%lld status=%d code=%s: %s", (long long)id, status, code,
        fixed ? fixed : "");
  json_t *hdr =
      json_pack("{s:s, s:I, s:i, s:s, s:s, s:s%}", "op", "error", "id", (json_int_t)id, "status",
                status, "type", status >= 500 ? "server_error" : "invalid_request_error", "code",
                code, "message", fixed ? fixed : "error", fixed ? fixed_len : (size_t)5);
  free(fixed);
  reply_frame(w, hdr, NULL, 0);
}

void reply_delta(worker *w, int64_t id, const char *text, size_t len) {
  if (len == 0) return;
  json_t *hdr =
      json_pack("{s:s, s:I, s:s%}", "op", "delta", "id", (json_int_t)id, "text", text, len);
  reply_frame(w, hdr, NULL, 0);
}

void reply_delta_obj(worker *w, int64_t id, json_t *delta) {
  if (!delta) return;
  reply_frame(w, json_pack("{s:s, s:I, s:o}", "op", "delta", "id", (json_int_t)id, "delta", delta), NULL, 0);
}

void reply_done(worker *w, int64_t id, const char *finish_reason, int32_t prompt_tokens,
                int32_t completion_tokens, double prompt_ms, double gen_ms) {
  json_t *hdr = json_pack("{s:s, s:I, s:s, s:i, s:i, s:f, s:f}", "op", "done", "id", (json_int_t)id,
                          "finish_reason", finish_reason, "prompt_tokens", (int)prompt_tokens,
                          "completion_tokens", (int)completion_tokens, "prompt_ms", prompt_ms,
                          "gen_ms", gen_ms);
  reply_frame(w, hdr, NULL, 0);
}

void reply_embeddings(worker *w, int64_t id, int32_t n, int32_t dim, int64_t prompt_tokens,
                      const float *data) {
  json_t *hdr = json_pack("{s:s, s:I, s:i, s:i, s:I}", "op", "embeddings", "id", (json_int_t)id,
                          "n", (int)n, "dim", (int)dim, "prompt_tokens", (json_int_t)prompt_tokens);
  reply_frame(w, hdr, data, (size_t)n * (size_t)dim * sizeof(float));
}
