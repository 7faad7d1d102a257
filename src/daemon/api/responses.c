/* responses.c — the OpenAI Responses API (api_int.h), a door onto the chat path rather than a
 * second one: POST /v1/responses is translated (parse/responses_parse.c) into the body
 * /v1/chat/completions takes and served as a chat is (api_chat_serve in chat.c: the same checks,
 * template, tool calls, reasoning, grammars, images, router, scheduler, limits, metrics); only the
 * worker's events are written back differently, through a dialect made per request, by
 * api/responses_out.c (the response object, or its typed events). Stored responses
 * (api/responses_store.c, the daemon's d->responses) are what GET/DELETE /v1/responses/{id} see
 * and what previous_response_id continues. POST /v1/responses/input_tokens is the same request
 * with "count_only": the worker renders and tokenises the prompt and answers at once. Errors name
 * the Responses fields (api_error_body in api.c renames what the chat path reports).
 * Exports api_responses_create, api_responses_input_tokens, api_responses_item. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/api_int.h"
#include "api/responses_out.h"
#include "api/responses_store.h"
#include "http/sse.h"
#include "log.h"
#include "parse/responses_parse.h"

/* One request's state: its dialect (what chat.c calls back), its translation, and what the store
 * needs. Made by serve(); owned by the chat path from the dialect's open on (close frees it), by
 * serve() when open never came (the request was refused before a worker answered). */
typedef struct rsp_ctx {
  api_dialect dl; /* first: chat.c keeps a pointer to it until close */
  sy_daemon *d;
  const json_t *echo; /* the request's settings (borrowed: read by open only) */
  json_t *history;    /* the conversation before the answer (owned), for the store */
  bool store;         /* keep the answer (store: true) */
  bool *opened;       /* serve()'s flag, set by open (and never touched after) */
  rsp_out out;        /* the answer in the Responses shape */
  api_error err;      /* a whole answer's worker error */
  json_t *done;       /* input_tokens: the done frame's header (owned) */
} rsp_ctx;

static void ctx_free(rsp_ctx *x) {
  rsp_out_free(&x->out);
  json_decref(x->history);
  json_decref(x->done);
  free(x);
}

/* Keep the finished answer when the request asked to (a failed one is not kept). */
static void save(rsp_ctx *x) {
  const char *st = json_string_value(json_object_get(x->out.resp, "status"));
  if (!x->store || !x->d->responses || !st || strcmp(st, "failed") == 0) return;
  json_array_append_new(x->history, rsp_out_message(x->out.resp));
  if (rsp_store_put(x->d->responses, x->out.resp, x->history) != 0)
    LOG_W("response %s is not stored: it is larger than the store (%zu MiB) or memory ran out",
          json_string_value(json_object_get(x->out.resp, "id")), RSP_STORE_MAX_BYTES >> 20);
}

/* The events rsp_out made so far, as SSE ("event: type" + data) into out. */
static void put_events(rsp_ctx *x, sy_buf *out) {
  json_t *evs = rsp_out_take_events(&x->out);
  size_t i;
  json_t *e;
  json_array_foreach(evs, i, e) {
    sse_append_event(out, json_string_value(json_object_get(e, "type")), e);
  }
  json_decref(evs);
}

/* ---- the dialect: the worker's events as the Responses API's ---- */

static void *rsp_open(const char *model, bool stream, void *ud) {
  rsp_ctx *x = ud;
  char id[48];
  api_random_id(id, sizeof id, "resp_");
  if (rsp_out_init(&x->out, id, model, (long long)time(NULL), x->echo, stream) != 0) return NULL;
  *x->opened = true;
  x->opened = NULL;
  rsp_out_start(&x->out); /* streamed: created, in_progress go out with the first event */
  return x;
}

static relay_rc rsp_event(void *tr, const ipc_msg *m, sy_buf *out) {
  rsp_ctx *x = tr;
  const char *op = ipc_op(m);
  relay_rc rc = RELAY_MORE;
  if (strcmp(op, "delta") == 0) {
    rsp_out_delta(&x->out, m->hdr);
  } else if (strcmp(op, "done") == 0) {
    rsp_out_done(&x->out, m->hdr);
    if (x->out.events) save(x); /* a whole answer is kept when it is replied */
    rc = RELAY_END;
  } else if (strcmp(op, "error") == 0) {
    api_worker_error(m->hdr, &x->err);
    rsp_parse_fix_error(&x->err);
    rsp_out_fail(&x->out, &x->err);
    rc = RELAY_END;
  }
  if (x->out.events) put_events(x, out);
  return rc;
}

static json_t *rsp_reply(void *tr, api_error *err) {
  rsp_ctx *x = tr;
  if (x->err.status) {
    *err = x->err;
    return NULL;
  }
  save(x);
  return json_incref(x->out.resp);
}

static void rsp_close(void *tr) { ctx_free(tr); }

/* input_tokens: the count_only request's done frame → {"object", "input_tokens"}. */
static void *count_open(const char *model, bool stream, void *ud) {
  (void)model, (void)stream;
  rsp_ctx *x = ud;
  *x->opened = true;
  x->opened = NULL;
  return x;
}

static relay_rc count_event(void *tr, const ipc_msg *m, sy_buf *out) {
  (void)out;
  rsp_ctx *x = tr;
  const char *op = ipc_op(m);
  if (strcmp(op, "done") == 0) {
    x->done = json_incref(m->hdr);
    return RELAY_END;
  }
  if (strcmp(op, "error") == 0) {
    api_worker_error(m->hdr, &x->err);
    return RELAY_END;
  }
  return RELAY_MORE;
}

static json_t *count_reply(void *tr, api_error *err) {
  rsp_ctx *x = tr;
  if (!x->done) {
    if (x->err.status)
      *err = x->err;
    else
      API_SERVER(err, "worker_error", "the count ended without a result");
    return NULL;
  }
  return json_pack("{s:s, s:I}", "object", "response.input_tokens", "input_tokens",
                   (json_int_t)api_jint(x->done, "prompt_tokens"));
}

/* ---- the endpoints ---- */

/* POST /v1/responses (count_only: /v1/responses/input_tokens). */
static void serve(sy_daemon *d, http_req *r, api_call *c, bool count_only) {
  api_error err = {0};
  rsp_request rq = {0};
  json_t *history = NULL;
  const char *prev = NULL;
  if (c->target.kind == API_TARGET_NONE) { /* the model first, as chat's checks do */
    err = c->target.err;
    goto refuse;
  }
  if (rsp_parse_previous_id(c->req, &prev, &err) != 0) goto refuse;
  if (prev && !(d->responses && rsp_store_get(d->responses, prev, NULL, &history))) {
    api_error_set(&err, 404, "invalid_request_error", "previous_response_not_found",
                  "previous_response_id", "Previous response with id '%.128s' not found.", prev);
    goto refuse;
  }
  int rc = rsp_parse_request(c->req, history, &rq, &err);
  json_decref(history);
  if (rc != 0) goto refuse;
  rsp_ctx *x = calloc(1, sizeof *x);
  if (!x) {
    API_SERVER(&err, "out_of_memory", "out of memory");
    goto refuse;
  }
  bool opened = false;
  x->d = d;
  x->echo = rq.echo;
  x->history = rq.history;
  rq.history = NULL;
  x->store = rq.store && !count_only;
  x->opened = &opened;
  if (count_only) {
    x->dl = (api_dialect){.open = count_open,
                          .event = count_event,
                          .reply = count_reply,
                          .close = rsp_close,
                          .count_only = true,
                          .ud = x};
    json_object_set_new(rq.chat, "stream", json_false());
  } else {
    x->dl = (api_dialect){
        .open = rsp_open, .event = rsp_event, .reply = rsp_reply, .close = rsp_close, .ud = x};
  }
  api_chat_serve(d, r, c, rq.chat, &x->dl);
  if (!opened) ctx_free(x); /* refused before a worker answered: never the chat path's */
  rsp_request_clear(&rq);
  return;
refuse:
  atomic_fetch_add(&d->requests, 1); /* as the chat path counts the ones it refuses */
  c->obs.model = api_obs_model_of(d, &c->target);
  rsp_request_clear(&rq);
  api_fail(r, &c->obs, &err);
}

void api_responses_create(sy_daemon *d, http_req *r, api_call *c) { serve(d, r, c, false); }

void api_responses_input_tokens(sy_daemon *d, http_req *r, api_call *c) { serve(d, r, c, true); }

/* GET /v1/responses/{id} (the stored response), DELETE /v1/responses/{id}. */
void api_responses_item(sy_daemon *d, http_req *r, api_call *c) {
  const char *id = c->rest, *method = http_method(r);
  api_error err;
  if (!*id || strchr(id, '/')) { /* /input_items, /cancel: not served */
    api_error_set(&err, 404, "invalid_request_error", "not_found", NULL,
                  "Unknown endpoint: %.16s %.200s", method, http_path(r));
    http_reply_error(r, &err);
    return;
  }
  if (strcmp(method, "DELETE") == 0) {
    if (d->responses && rsp_store_delete(d->responses, id)) {
      http_reply_json(
          r, 200,
          json_pack("{s:s, s:s, s:b}", "id", id, "object", "response.deleted", "deleted", 1));
      return;
    }
  } else {
    sy_buf q = {0};
    bool stream = http_query(r, &q) == 0 && q.data && strstr(q.data, "stream=true");
    sy_buf_free(&q);
    if (stream) {
      API_BAD(&err, "stream", "unsupported_parameter",
              "a stored response cannot be streamed again; GET it without stream=true");
      http_reply_error(r, &err);
      return;
    }
    json_t *resp = NULL;
    if (d->responses && rsp_store_get(d->responses, id, &resp, NULL)) {
      http_reply_json(r, 200, resp);
      return;
    }
  }
  api_error_set(&err, 404, "invalid_request_error", "response_not_found", NULL,
                "Response with id '%.128s' not found.", id);
  http_reply_error(r, &err);
}
