/* reply.c — the generate and embed frames the worker sends (delta, done, embeddings; shapes in
 * docs/PROTOCOL.md), on top of the shared senders (wio.h), which mark the worker dead on a failed
 * send so the main loop exits. Must never send text that is not valid UTF-8. */

#include "worker.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the embeddings payload is sent as host floats; this worker assumes a little-endian host"
#endif

void reply_delta(worker *w, wio_id id, const char *text, size_t len) {
  if (len == 0) return;
  json_t *hdr =
      json_pack("{s:s, s:I, s:s%}", "op", "delta", "id", (json_int_t)id, "text", text, len);
  wio_send(&w->out, hdr, NULL, 0);
}

void reply_delta_obj(worker *w, wio_id id, json_t *delta) {
  if (!delta) return;
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:o}", "op", "delta", "id", (json_int_t)id, "delta", delta), NULL,
           0);
}

void reply_done(worker *w, wio_id id, const char *finish_reason, const char *stop, size_t stop_len,
                const reply_usage *u) {
  json_t *hdr =
      json_pack("{s:s, s:I, s:s, s:i, s:i, s:i, s:f, s:f}", "op", "done", "id", (json_int_t)id,
                "finish_reason", finish_reason, "prompt_tokens", (int)u->prompt_tokens,
                "cached_tokens", (int)u->cached_tokens, "completion_tokens",
                (int)u->completion_tokens, "prompt_ms", u->prompt_ms, "gen_ms", u->gen_ms);
  /* a stop string is a request's (valid UTF-8, as the daemon checked the JSON it came in) */
  if (hdr && stop) json_object_set_new(hdr, "stop", json_stringn(stop, stop_len));
  wio_send(&w->out, hdr, NULL, 0);
}

void reply_embeddings(worker *w, wio_id id, int32_t n, int32_t dim, int64_t prompt_tokens,
                      const float *data) {
  json_t *hdr = json_pack("{s:s, s:I, s:i, s:i, s:I}", "op", "embeddings", "id", (json_int_t)id,
                          "n", (int)n, "dim", (int)dim, "prompt_tokens", (json_int_t)prompt_tokens);
  wio_send(&w->out, hdr, data, (size_t)n * (size_t)dim * sizeof(float));
}
