/* messages.c — Anthropic's Messages API (api_int.h): POST /v1/messages and
 * /v1/messages/count_tokens, a door onto the chat path, not a second engine. The body is
 * translated (api/anthropic.c, pure) into the chat completions body the chat path takes, which
 * then runs as any chat does (api_chat_serve in chat.c: the same checks, templates, tool calls,
 * reasoning, grammars, images, routers, scheduling, limits and metrics); only the worker's events
 * are written back in Anthropic's shape, through the dialect below. count_tokens is the same
 * request with "count_only" in its generate message: the worker renders the prompt with the
 * model's template and tokenises it exactly as it would for a generation, and answers at once.
 * Errors are Anthropic's shape on these paths (api_error_body in api.c). Exports
 * api_messages_handle, api_count_tokens_handle. */
#include <stdlib.h>
#include <string.h>

#include "api/anthropic.h"
#include "api/api_int.h"
#include "parse/api_parse.h"

/* ---- the dialect: the worker's events as Anthropic's ---- */

static void *msg_open(const char *model, bool stream, void *ud) {
  (void)ud;
  char id[48];
  api_random_id(id, sizeof id, "msg_");
  return anth_out_new(id, model, stream);
}

static relay_rc msg_event(void *tr, const ipc_msg *m, sy_buf *out) {
  return anth_out_event(tr, ipc_op(m), m->hdr, out) ? RELAY_END : RELAY_MORE;
}

static json_t *msg_reply(void *tr, api_error *err) { return anth_out_message(tr, err); }

static void msg_close(void *tr) { anth_out_free(tr); }

static const api_dialect messages_dialect = {
    .open = msg_open, .event = msg_event, .reply = msg_reply, .close = msg_close};

/* count_tokens: the done frame's prompt tokens, {"input_tokens"}. */
typedef struct count_tr {
  json_t *done;
  api_error err;
} count_tr;

static void *count_open(const char *model, bool stream, void *ud) {
  (void)model, (void)stream, (void)ud;
  return calloc(1, sizeof(count_tr));
}

static relay_rc count_event(void *tr, const ipc_msg *m, sy_buf *out) {
  (void)out;
  count_tr *t = tr;
  const char *op = ipc_op(m);
  if (strcmp(op, "done") == 0) {
    t->done = json_incref(m->hdr);
    return RELAY_END;
  }
  if (strcmp(op, "error") == 0) {
    api_error_from_worker(m->hdr, &t->err);
    return RELAY_END;
  }
  return RELAY_MORE;
}

static json_t *count_reply(void *tr, api_error *err) {
  count_tr *t = tr;
  if (!t->done) {
    if (t->err.status)
      *err = t->err;
    else
      API_SERVER(err, "worker_error", "the count ended without a result");
    return NULL;
  }
  return json_pack("{s:I}", "input_tokens", (json_int_t)api_jint(t->done, "prompt_tokens"));
}

static void count_close(void *tr) {
  count_tr *t = tr;
  json_decref(t->done);
  free(t);
}

static const api_dialect count_dialect = {.open = count_open,
                                          .event = count_event,
                                          .reply = count_reply,
                                          .close = count_close,
                                          .count_only = true};

/* ---- the endpoints ---- */

/* Whether a chat body (translated) holds an image part. */
static bool has_image(const json_t *chat) {
  size_t i, k;
  json_t *m, *p;
  json_array_foreach(json_object_get(chat, "messages"), i, m) {
    json_array_foreach(json_object_get(m, "content"), k, p) {
      const char *t = json_string_value(json_object_get(p, "type"));
      if (t && strcmp(t, "image_url") == 0) return true;
    }
  }
  return false;
}

static void serve(sy_daemon *d, http_req *r, api_call *c, anth_kind kind, const api_dialect *dl) {
  api_error err = {0};
  json_t *chat = anth_to_chat(c->req, kind, &err);
  if (!chat) {
    atomic_fetch_add(&d->requests, 1); /* as the chat path counts the ones it refuses */
    c->obs.model = api_obs_model_of(d, &c->target);
    api_fail(r, &c->obs, &err);
    return;
  }
  /* in Anthropic's words, before the chat path would say it in OpenAI's (image_url parts) */
  const matrix_model *m = c->target.kind == API_TARGET_MODEL ? c->target.model : NULL;
  if (m && (m->caps & MATRIX_CAP_CHAT) && !(m->caps & MATRIX_CAP_VISION) && has_image(chat)) {
    API_BAD(&err, "messages", "unsupported_content",
            "messages: model '%s' does not take image blocks (it has no vision projector)",
            m->name);
    atomic_fetch_add(&d->requests, 1);
    c->obs.model = api_obs_model_of(d, &c->target);
    api_fail(r, &c->obs, &err);
    json_decref(chat);
    return;
  }
  api_chat_serve(d, r, c, chat, dl);
  json_decref(chat);
}

void api_messages_handle(sy_daemon *d, http_req *r, api_call *c) {
  serve(d, r, c, ANTH_MESSAGES, &messages_dialect);
}

void api_count_tokens_handle(sy_daemon *d, http_req *r, api_call *c) {
  serve(d, r, c, ANTH_COUNT_TOKENS, &count_dialect);
}
