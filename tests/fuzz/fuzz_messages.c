/* fuzz_messages.c — libFuzzer target for the Messages API's request parser (built by `make fuzz`):
 * the input is a request body, parsed as the route table parses it (api_parse_body), translated
 * by anth_to_chat (api/anthropic.c) as a Messages and as a count_tokens request, and what is
 * accepted checked on by the chat path's own parser (api_parse_generate) against a vision model,
 * as the endpoint does; every refusal is written as Anthropic's error body. Then the worker's
 * answer side: the input's first bytes pick a script of delta/done/error events fed through
 * anth_out, streamed and whole. ASan and UBSan see any read or write out of bounds, any leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "parse/api_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static matrix_model models[] = {
    {.name = "m", .caps = MATRIX_CAP_CHAT | MATRIX_CAP_VISION, .context = 512, .parallel = 1},
};
static matrix mx = {.models = models, .n_models = 1, .max_body_bytes = 1 << 24};

/* The answer side: events chosen by the input's bytes, their headers the input's JSON (or its
 * members) when it parses. */
static void answer(const uint8_t *data, size_t size, const json_t *body, bool stream) {
  static const char *const ops[] = {"delta", "done", "error", "ping"};
  anth_out *o = anth_out_new("msg_fuzz", "m", stream);
  if (!o) return;
  sy_buf out = {0};
  for (size_t i = 0; i < size && i < 24; i++) {
    const char *k = NULL;
    json_t *v;
    const json_t *h = body;
    size_t n = 0;
    json_object_foreach((json_t *)body, k, v) { /* the i-th member, when it is an object */
      if (n++ == i && json_is_object(v)) h = v;
    }
    anth_out_event(o, ops[data[i] & 3], h, &out);
  }
  api_error err = {0};
  json_t *m = anth_out_message(o, &err);
  json_decref(m);
  sy_buf_free(&out);
  anth_out_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  api_error err = {0};
  json_t *req = api_parse_body((const char *)data, size, &err);
  if (!req) return 0;
  for (int kind = 0; kind < 2; kind++) {
    json_t *chat = anth_to_chat(req, kind ? ANTH_COUNT_TOKENS : ANTH_MESSAGES, &err);
    if (chat) {
      api_gen g;
      if (api_parse_generate(&mx, NULL, chat, true, &g, &err) == 0) api_gen_clear(&g);
    }
    if (!chat || err.status) json_decref(api_error_anthropic_json(&err));
    json_decref(chat);
    memset(&err, 0, sizeof err);
  }
  answer(data, size, req, data[0] & 1);
  json_decref(req);
  return 0;
}
