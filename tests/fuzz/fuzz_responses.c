/* fuzz_responses.c — libFuzzer target for the OpenAI Responses API's request parser
 * (src/daemon/parse/responses_parse.h, built by `make fuzz`): any bytes as a /v1/responses body
 * go through api_parse_body, rsp_parse_request (with and without a previous response's history),
 * and what comes out through the chat checks (api_parse_generate on a hand-built vision model) and
 * rsp_parse_fix_error. Every outcome must be well-formed: a translation with its three parts and
 * a history no longer than the messages, or an error whose status, code and message are set and
 * printable as OpenAI's error body; never a crash, a leak or undefined behaviour. When the input
 * is a JSON array, it is also fed to the answer translation (api/responses_out.h) as worker
 * frames, streamed and whole. Seeds: tests/fuzz/corpus/fuzz_responses/. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/responses_out.h"
#include "parse/api_parse.h"
#include "parse/responses_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static matrix_model models[] = {
    {.name = "m",
     .caps = MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION | MATRIX_CAP_VISION,
     .context = 512,
     .parallel = 1},
};
static matrix mx = {.models = models, .n_models = 1, .max_body_bytes = 1 << 20};

static void check_error(const api_error *e) {
  if (e->status < 400 || e->status > 599 || !e->code || !e->message[0]) abort();
  json_t *j = api_error_json(e);
  if (!j) abort();
  json_decref(j);
}

static void translate(const json_t *req, const json_t *history) {
  rsp_request rq;
  api_error e = {0};
  if (rsp_parse_request(req, history, &rq, &e) != 0) {
    if (rq.chat || rq.history || rq.echo) abort();
    check_error(&e);
    return;
  }
  json_t *msgs = json_object_get(rq.chat, "messages");
  if (!json_is_array(msgs) || !json_is_object(rq.echo) ||
      json_array_size(rq.history) > json_array_size(msgs) || json_array_size(msgs) == 0)
    abort();
  api_gen g;
  api_error ce = {0};
  if (api_parse_generate(&mx, NULL, rq.chat, true, &g, &ce) == 0) {
    if (!g.msg) abort();
    api_gen_clear(&g);
  } else {
    rsp_parse_fix_error(&ce);
    check_error(&ce);
  }
  rsp_request_clear(&rq);
}

/* frames: worker frame headers, in order; "op" picks delta / done, anything else fails it. */
static void answer(const json_t *frames, bool stream) {
  rsp_out o;
  if (rsp_out_init(&o, "resp_fuzz", "m", 1, NULL, stream) != 0) abort();
  rsp_out_start(&o);
  size_t i;
  json_t *f;
  json_array_foreach(frames, i, f) {
    const char *op = json_string_value(json_object_get(f, "op"));
    if (op && strcmp(op, "delta") == 0) {
      rsp_out_delta(&o, f);
    } else if (op && strcmp(op, "done") == 0) {
      rsp_out_done(&o, f);
    } else {
      api_error e;
      api_error_set(&e, 500, "server_error", "worker_error", NULL, "fuzz");
      rsp_out_fail(&o, &e);
    }
    if (i % 4 == 0) json_decref(rsp_out_take_events(&o));
  }
  json_decref(rsp_out_take_events(&o));
  json_t *m = rsp_out_message(o.resp);
  char *s = json_dumps(o.resp, JSON_COMPACT); /* the object must be encodable */
  if (!m || !s) abort();
  free(s);
  json_decref(m);
  rsp_out_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  api_error e = {0};
  json_t *req = api_parse_body((const char *)data, size, &e);
  if (!req) {
    check_error(&e);
    json_error_t je;
    json_t *any = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
    if (json_is_array(any)) {
      answer(any, true);
      answer(any, false);
    }
    json_decref(any);
    return 0;
  }
  translate(req, NULL);
  static const char history[] =
      "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":null,"
      "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
      "\"arguments\":\"{}\"}}]}]";
  json_t *h = json_loads(history, 0, NULL);
  translate(req, h);
  json_decref(h);
  json_decref(req);
  return 0;
}
