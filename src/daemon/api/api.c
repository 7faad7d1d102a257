/* api.c — the OpenAI-compatible front: the route table (api_routes[] below: method + path →
 * handler, metrics endpoint, body kind) that sends a checked HTTP request to its endpoint family
 * (chat.c, messages.c, responses.c, ollama.c, embeddings.c, transcribe.c, speech.c, admin.c,
 * pull.c; external engines to engines/proxy.c); unknown paths (404) and wrong methods (405, with
 * Allow) are
 * answered by the table itself. Before the handler runs, the body is parsed once (JSON, or a
 * multipart form by its Content-Type) and its "model" resolved once (api_resolve: model, router,
 * pipeline, external engine or a peer's model, forwarded to the peer by engines/proxy.c on every
 * route with a body but R_NO_PEER's); the handler gets both in an api_call. The families validate
 * (parse/api_parse.c), get a worker from the scheduler and relay the worker's events
 * (engines/relay.c). Must never leave a worker request running for a client that went away, never
 * answer twice, and never answer a worker's error other than as api_error.h's table says
 * (api_worker_error). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "api/ollama_xlate.h"
#include "clock.h"
#include "engines/proxy.h"
#include "parse/api_parse.h"
#include "parse/responses_parse.h"
#include "ui/ui.h"

/* ---- small helpers ---- */

void api_worker_error(const json_t *hdr, api_error *e) {
  api_error_from_worker(hdr, e);
  if (e->code && strcmp(e->code, "context_length_exceeded") == 0) e->param = "messages";
}

relay_rc api_count_event(api_count *c, const ipc_msg *m) {
  const char *op = ipc_op(m);
  if (strcmp(op, "done") == 0) {
    json_decref(c->done);
    c->done = json_incref(m->hdr);
    return RELAY_END;
  }
  if (strcmp(op, "error") == 0) {
    api_worker_error(m->hdr, &c->err);
    return RELAY_END;
  }
  return RELAY_MORE;
}

long long api_count_result(const api_count *c, api_error *err) {
  if (c->done) return api_jint(c->done, "prompt_tokens");
  if (c->err.status)
    *err = c->err;
  else
    API_SERVER(err, "worker_error", "the count ended without a result");
  return -1;
}

void api_count_clear(api_count *c) {
  json_decref(c->done);
  c->done = NULL;
}

void api_fold_tool_calls(json_t *calls, const json_t *tc) {
  size_t i;
  json_t *c;
  json_array_foreach(tc, i, c) {
    json_int_t idx = json_integer_value(json_object_get(c, "index"));
    json_t *fn = json_object_get(c, "function");
    const char *args = json_string_value(json_object_get(fn, "arguments"));
    if (json_is_string(json_object_get(c, "id")) && idx == (json_int_t)json_array_size(calls)) {
      json_array_append_new(
          calls, json_pack("{s:O, s:s, s:{s:O, s:s}}", "id", json_object_get(c, "id"), "type",
                           "function", "function", "name", json_object_get(fn, "name"), "arguments",
                           args ? args : ""));
    } else if (args && idx >= 0 && (size_t)idx < json_array_size(calls)) {
      json_t *f = json_object_get(json_array_get(calls, (size_t)idx), "function");
      const char *have = json_string_value(json_object_get(f, "arguments"));
      sy_buf b = {0};
      sy_buf_puts(&b, have ? have : "");
      sy_buf_puts(&b, args);
      json_object_set_new(f, "arguments", json_stringn(b.data ? b.data : "", b.len));
      sy_buf_free(&b);
    }
  }
}

long long api_jint(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* Anthropic's Messages API answers errors in its own shape, on its paths (the table's 404 and
 * 405 under /v1/messages/ too), Ollama's API in its own on its paths (ollama_path: /api/ but our
 * own load, unload, ps and events); every other path in OpenAI's. */
json_t *api_error_body(const char *path, const api_error *e) {
  bool anthropic = path && strncmp(path, "/v1/messages", 12) == 0 &&
                   (path[12] == '\0' || path[12] == '/' || path[12] == '?');
  if (path && strncmp(path, "/v1/responses", 13) == 0) {
    /* the Responses API's field names for what the chat path says in its own (messages →
     * input, max_tokens → max_output_tokens, ...) */
    api_error r = *e;
    rsp_parse_fix_error(&r);
    return api_error_json(&r);
  }
  if (ollama_path(path)) return ollama_error_json(e); /* {"error": "<message>"} */
  return anthropic ? api_error_anthropic_json(e) : api_error_json(e);
}

/* ---- metrics: what GET /metrics needs to know of one request (req_obs: api_int.h) ---- */

double api_obs_elapsed(const req_obs *o) { return sy_mono_s() - o->t0; }

/* The request is answered with status (499: the client went away first). */
void api_obs_end(const req_obs *o, int status) {
  metrics_request(o->mt, o->model, o->ep, status, api_obs_elapsed(o));
}

/* Reply with an error and count it. */
void api_fail(http_req *r, const req_obs *o, const api_error *e) {
  api_obs_end(o, e->status);
  http_reply_error(r, e);
}

/* The model a refused request named, when it is one of the matrix's (never a client's string). */
int api_obs_model_of(const sy_daemon *d, const api_target *t) {
  return t->model ? metrics_model(sched_metrics(d->sc), t->model->name) : METRICS_NO_MODEL;
}

/* ---- the route table ---- */

enum {
  R_GET = 1 << 0,    /* GET and HEAD */
  R_POST = 1 << 1,   /* POST */
  R_ANY = 1 << 2,    /* every method (the handler relays it as it is) */
  R_DELETE = 1 << 3, /* DELETE */
};
enum {
  R_PREFIX = 1 << 0, /* path is a prefix (ends in '/'); the rest goes to the handler */
  R_JSON = 1 << 1, /* the body must be a JSON object (else 400 invalid_json); its model resolved */
  R_FORM = 1 << 2, /* the body must be a multipart form; its "model" field resolved */
  R_EXT_ONLY = 1 << 3,    /* only external engines serve it: anything else is an unknown endpoint */
  R_COUNT_REPLY = 1 << 4, /* counted by the table when the handler has replied (the served model:
                             X-Switchyard-Model); else the handler counts it */
  R_ADMIN = 1 << 5,       /* an admin action: 403 admin_key_required unless http_is_admin */
  R_NO_PEER = 1 << 6,     /* a body that names a peer's model is not forwarded (on every other route
                             with a body it is: engines/proxy.c, proxy_peer) */
};
#define R_NO_EP ((metrics_endpoint)-1)

typedef void (*api_route_fn)(sy_daemon *d, http_req *r, api_call *c);

typedef struct api_route {
  const char *path;
  unsigned methods;    /* R_GET | R_POST | R_ANY */
  unsigned flags;      /* R_PREFIX, R_JSON, ... */
  metrics_endpoint ep; /* counted in GET /metrics as this endpoint; R_NO_EP: not counted */
  api_route_fn fn;     /* NULL: R_EXT_ONLY */
} api_route;

static void h_chat(sy_daemon *d, http_req *r, api_call *c) { api_chat_handle(d, r, c, true); }
static void h_completions(sy_daemon *d, http_req *r, api_call *c) {
  api_chat_handle(d, r, c, false);
}
static void h_transcribe(sy_daemon *d, http_req *r, api_call *c) {
  api_transcribe_handle(d, r, c, false);
}
static void h_translate(sy_daemon *d, http_req *r, api_call *c) {
  api_transcribe_handle(d, r, c, true);
}
static void h_voices(sy_daemon *d, http_req *r, api_call *c) {
  (void)c;
  api_voices_handle(d, r);
}
static void h_load(sy_daemon *d, http_req *r, api_call *c) { api_admin_load(d, r, c, true); }
static void h_unload(sy_daemon *d, http_req *r, api_call *c) { api_admin_load(d, r, c, false); }
static void h_health(sy_daemon *d, http_req *r, api_call *c) {
  (void)d, (void)c;
  http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}
static void h_models(sy_daemon *d, http_req *r, api_call *c) { api_admin_models(d, r, c->rest); }
static void h_ps(sy_daemon *d, http_req *r, api_call *c) {
  (void)c;
  api_admin_ps(d, r);
}
static void h_metrics(sy_daemon *d, http_req *r, api_call *c) {
  (void)c;
  api_admin_metrics(d, r);
}
static void h_events(sy_daemon *d, http_req *r, api_call *c) {
  (void)c;
  api_admin_events(d, r);
}
static void h_ui(sy_daemon *d, http_req *r, api_call *c) {
  (void)d, (void)c;
  ui_serve(r, http_path(r));
}
static void h_upstream(sy_daemon *d, http_req *r, api_call *c) { proxy_upstream(d, r, c->rest); }

/* Every endpoint, in one place. An external engine may also serve the paths matrix_ext_route
 * names (by the body's model, engines/proxy.c); the rerank paths are llama-server's. */
static const api_route api_routes[] = {
    {"/v1/chat/completions", R_POST, R_JSON, METRICS_EP_CHAT, h_chat},
    {"/v1/completions", R_POST, R_JSON, METRICS_EP_COMPLETIONS, h_completions},
    {"/v1/embeddings", R_POST, R_JSON, METRICS_EP_EMBEDDINGS, api_embeddings_handle},
    {"/v1/rerank", R_POST, R_JSON, METRICS_EP_RERANK, api_rerank_handle},
    {"/rerank", R_POST, R_JSON, METRICS_EP_RERANK, api_rerank_handle},
    {"/v1/reranking", R_POST, R_JSON, METRICS_EP_RERANK, api_rerank_handle},
    {"/reranking", R_POST, R_JSON, METRICS_EP_RERANK, api_rerank_handle},
    {"/v1/audio/transcriptions", R_POST, R_FORM | R_COUNT_REPLY, METRICS_EP_TRANSCRIBE,
     h_transcribe},
    {"/v1/audio/translations", R_POST, R_FORM | R_COUNT_REPLY, METRICS_EP_TRANSCRIBE, h_translate},
    {"/v1/audio/speech", R_POST, R_JSON | R_COUNT_REPLY, METRICS_EP_SPEECH, api_speech_handle},
    {"/v1/audio/voices", R_GET, 0, R_NO_EP, h_voices},
    {"/v1/realtime", R_GET, 0, R_NO_EP, api_realtime_handle}, /* WebSocket: realtime.c */
    {"/v1/messages", R_POST, R_JSON, METRICS_EP_MESSAGES, api_messages_handle},
    {"/v1/messages/count_tokens", R_POST, R_JSON, METRICS_EP_MSG_COUNT, api_count_tokens_handle},
    {"/v1/responses", R_POST, R_JSON, METRICS_EP_RESPONSES, api_responses_create},
    {"/v1/responses/input_tokens", R_POST, R_JSON, METRICS_EP_RSP_TOKENS,
     api_responses_input_tokens},
    {"/v1/responses/", R_GET | R_DELETE, R_PREFIX, R_NO_EP, api_responses_item},
    {"/v1/images/generations", R_POST, R_JSON | R_EXT_ONLY, R_NO_EP, NULL},
    {"/v1/images/edits", R_POST, R_JSON | R_EXT_ONLY, R_NO_EP, NULL},
    {"/api/load", R_POST, R_JSON | R_ADMIN, R_NO_EP, h_load},
    {"/api/unload", R_POST, R_JSON | R_ADMIN, R_NO_EP, h_unload},
    {"/api/pull", R_POST, R_JSON | R_ADMIN | R_NO_PEER, R_NO_EP, api_pull_handle},
    {"/api/delete", R_ANY, R_JSON | R_ADMIN | R_NO_PEER, R_NO_EP,
     api_delete_handle}, /* DELETE: checked there */
    {"/health", R_GET, 0, R_NO_EP, h_health},
    {"/v1/models", R_GET, 0, R_NO_EP, h_models},
    {"/v1/models/", R_GET, R_PREFIX, R_NO_EP, h_models},
    {"/api/ps", R_GET, 0, R_NO_EP, h_ps},
    {"/metrics", R_GET, 0, R_NO_EP, h_metrics},
    {"/api/events", R_GET, 0, R_NO_EP, h_events},
    /* Ollama's API (ollama.c; its errors in Ollama's shape: api_error_body); the model is
     * looked up again there by Ollama's naming rule. The prefix answers the rest of /api/: it
     * comes after every exact /api/ route above */
    {"/api/chat", R_POST, R_JSON, METRICS_EP_OLLAMA_CHAT, api_ollama_chat},
    {"/api/generate", R_POST, R_JSON, METRICS_EP_OLLAMA_GEN, api_ollama_generate},
    {"/api/embed", R_POST, R_JSON, METRICS_EP_OLLAMA_EMBED, api_ollama_embed},
    {"/api/embeddings", R_POST, R_JSON, METRICS_EP_OLLAMA_EMBED, api_ollama_embeddings},
    {"/api/show", R_POST, R_JSON, R_NO_EP, api_ollama_show},
    {"/api/tags", R_GET, 0, R_NO_EP, api_ollama_tags},
    {"/api/version", R_GET, 0, R_NO_EP, api_ollama_version},
    {"/api/", R_ANY, R_PREFIX, R_NO_EP, api_ollama_other},
    {"/upstream/", R_ANY, R_PREFIX, R_NO_EP, h_upstream},
    /* the status page (ui/ui.c): files compiled in; no API key needed (http_path_is_public) */
    {"/", R_GET, 0, R_NO_EP, h_ui},
    {"/ui", R_GET, 0, R_NO_EP, h_ui},
    {"/ui/", R_GET, R_PREFIX, R_NO_EP, h_ui},
};

/* The route for path, or NULL. */
static const api_route *route_find(const char *path) {
  for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
    const api_route *rt = &api_routes[i];
    if (rt->flags & R_PREFIX ? strncmp(path, rt->path, strlen(rt->path)) == 0
                             : strcmp(path, rt->path) == 0)
      return rt;
  }
  return NULL;
}

static bool method_ok(const api_route *rt, const char *method) {
  if (rt->methods & R_ANY) return true;
  if (rt->methods & R_GET && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
    return true;
  if (rt->methods & R_DELETE && strcmp(method, "DELETE") == 0) return true;
  return rt->methods & R_POST && strcmp(method, "POST") == 0;
}

/* Reply the table's own errors, counted when the route has an endpoint. */
static void route_fail(http_req *r, const api_route *rt, api_call *c, const api_error *e) {
  if (rt && rt->ep != R_NO_EP)
    api_fail(r, &c->obs, e);
  else
    http_reply_error(r, e);
}

/* The body of c, parsed once: a multipart form when Content-Type carries a boundary, else JSON;
 * the model it names resolved into c->target (NONE without one). What could not be parsed is
 * not answered here: its route's handler needs it (jerr: the JSON's error, ferr: the form's) only
 * if no external engine takes the request. Returns whether the body is a form. */
static bool body_parse(http_req *r, api_call *c, api_error *jerr, api_error *ferr) {
  size_t len;
  const char *body = http_body(r, &len);
  char boundary[MP_MAX_BOUNDARY + 1];
  const char *ct = http_header(r, "Content-Type");
  json_t *model = NULL;
  if (!ct || mp_boundary(ct, boundary, sizeof boundary) != 0) {
    c->req = api_parse_body(body, len, jerr);
    if (c->req) api_resolve(c->mx, c->peers, c->req, &c->target);
    return false;
  }
  char msg[256];
  c->parts = calloc(MP_MAX_PARTS, sizeof *c->parts);
  if (!c->parts) {
    API_SERVER(ferr, "out_of_memory", "out of memory");
    return true;
  }
  if (mp_parse(body, len, boundary, c->parts, MP_MAX_PARTS, &c->n_parts, msg, sizeof msg) != 0) {
    API_BAD(ferr, NULL, "invalid_multipart", "could not parse the form: %s", msg);
    free(c->parts);
    c->parts = NULL;
    return true;
  }
  const mp_part *p = mp_find(c->parts, c->n_parts, "model");
  if (p && (p->len >= 256 || memchr(p->data, '\0', p->len))) { /* NONE, with the form's own words */
    API_BAD(&c->target.err, "model", "invalid_value", "'model' is not a model name");
    return true;
  }
  model = p ? json_pack("{s:s%}", "model", p->data, p->len) : json_object();
  api_resolve(c->mx, c->peers, model, &c->target);
  json_decref(model);
  return true;
}

/* 404 for a path no route (or, for an external engine's path, no external model) serves. */
static void reply_unknown(http_req *r, const char *method, const char *path) {
  api_error err;
  api_error_set(&err, 404, "invalid_request_error", "not_found", NULL,
                "Unknown endpoint: %.16s %.200s", method, path);
  http_reply_error(r, &err);
}

void api_handle(void *ud, http_req *r) {
  sy_daemon *d = ud;
  const char *method = http_method(r), *path = http_path(r);
  const api_route *rt = route_find(path);
  api_call c = {.mx = atomic_load(&d->mx),
                .peers = d->peers,
                .obs = {.mt = sched_metrics(d->sc), .model = METRICS_NO_MODEL}};
  api_error err = {0};
  if (!rt) {
    reply_unknown(r, method, path);
    return;
  }
  c.obs.ep = rt->ep == R_NO_EP ? METRICS_EP_CHAT : rt->ep; /* read only when rt->ep is one */
  c.obs.t0 = sy_mono_s();
  if (rt->flags & R_PREFIX) c.rest = path + strlen(rt->path);
  if (!method_ok(rt, method)) {
    const char *allow = rt->methods & R_DELETE ? "GET, DELETE"
                        : rt->methods & R_GET  ? "GET"
                                               : "POST";
    api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL, "%s requires %s",
                  path, allow);
    http_add_header(r, "Allow", allow);
    route_fail(r, rt, &c, &err);
    return;
  }
  if (rt->flags & R_ADMIN && !http_is_admin(r)) {
    api_admin_refuse(&err);
    route_fail(r, rt, &c, &err);
    return;
  }
  api_error jerr = {0}, ferr = {0};
  bool form = rt->flags & (R_JSON | R_FORM) ? body_parse(r, &c, &jerr, &ferr) : false;
  if (c.target.kind == API_TARGET_EXTERNAL && matrix_ext_route(path)) {
    proxy_serve(d, r, c.target.model); /* relayed as it is; not counted here (as before) */
  } else if (c.target.kind == API_TARGET_PEER && !(rt->flags & R_NO_PEER)) {
    api_error perr;
    proxy_peer_req q = {.model = c.target.peer_model};
    /* forwarded as it is, whatever the family (the peer checks it); not counted here either */
    proxy_peer(d, r, c.target.peer, &q, &perr);
  } else if (rt->flags & R_EXT_ONLY) {
    reply_unknown(r, method, path);
  } else if (rt->flags & R_JSON && !c.req) {
    if (form) { /* a form where JSON was wanted: the JSON parser's words for it */
      size_t len;
      const char *body = http_body(r, &len);
      json_decref(api_parse_body(body, len, &jerr));
    }
    route_fail(r, rt, &c, &jerr);
  } else if (rt->flags & R_FORM && !c.parts) {
    if (!form)
      API_BAD(&ferr, NULL, "invalid_content_type",
              "the request must be multipart/form-data with a boundary (send the file as a form "
              "upload)");
    route_fail(r, rt, &c, &ferr);
  } else {
    rt->fn(d, r, &c);
    if (rt->flags & R_COUNT_REPLY) {
      /* counted when the reply is decided (a stream: at its start); the served model is the one
       * the handler named in X-Switchyard-Model */
      const char *served = http_reply_header(r, "X-Switchyard-Model");
      if (served) c.obs.model = metrics_model(c.obs.mt, served);
      unsigned st = http_reply_status(r);
      api_obs_end(&c.obs, st ? (int)st : 499);
    }
  }
  json_decref(c.req);
  free(c.parts);
}
