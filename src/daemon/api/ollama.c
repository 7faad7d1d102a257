/* ollama.c — Ollama's API on Switchyard (api_int.h): POST /api/chat, /api/generate, /api/embed,
 * /api/embeddings, /api/show; GET /api/tags, /api/version; Ollama's fields in GET /api/ps; and a
 * clear 501 for what is not built (/api/pull, /api/delete, /api/create, /api/copy, /api/push).
 * The endpoint glue only: the translations are pure (ollama_xlate.c). A chat or generate is the
 * translated /v1 request served by the chat path as a dialect (api_chat_serve: the same checks,
 * routers, scheduling, media decoding, metrics), its answer written as NDJSON lines or one
 * object; embeddings go to the scheduler and the worker as /v1/embeddings' do. The model is looked
 * up by Ollama's naming rule (ollama_match), not as api.c resolved it. Every error on these paths
 * is Ollama's shape, {"error": "<message>"} (api_error_body in api.c). Exports api_ollama_*.
 * docs/API.md, "Ollama's API". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api.h"
#include "api/api_int.h"
#include "api/ollama_xlate.h"
#include "clock.h"
#include "config/gguf_header.h"
#include "engines/relay.h"
#include "log.h"
#include "virtual/router_decide.h"

/* The file's modification time (unix seconds), 0 when it cannot be read. */
static long long file_mtime(const char *path) {
  struct stat st;
  return path && *path && stat(path, &st) == 0 ? (long long)st.st_mtime : 0;
}

/* A request refused before the chat path (which counts its own): counted in stats.requests and
 * /metrics, answered (in Ollama's shape: api_error_body). */
static void refuse(sy_daemon *d, http_req *r, api_call *c, const api_error *e) {
  atomic_fetch_add(&d->requests, 1);
  c->obs.model = api_obs_model_of(d, &c->target);
  api_fail(r, &c->obs, e);
}

/* ---- names ---- */

/* 404 for a name no rule matched, listing what Ollama's routes serve. */
static void not_found(const matrix *mx, const char *name, api_error *err) {
  sy_buf names = {0};
  for (size_t i = 0; i < mx->n_models && names.len < 600; i++)
    if (ollama_lists(&mx->models[i]))
      sy_buf_printf(&names, "%s%s", names.len ? ", " : "", mx->models[i].name);
  for (size_t i = 0; i < mx->n_routers && names.len < 600; i++)
    sy_buf_printf(&names, "%s%s", names.len ? ", " : "", mx->routers[i].name);
  api_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                "model \"%.200s\" not found (models: %s)", name, names.len ? names.data : "none");
  sy_buf_free(&names);
}

/* Resolve an Ollama name (ollama_match) into *t as a /v1 request's "model" is resolved; false +
 * err (404) when no rule matches. */
static bool resolve(const matrix *mx, const char *name, api_target *t, api_error *err) {
  const char *own = ollama_match(mx, name);
  memset(t, 0, sizeof *t);
  if (!own) {
    not_found(mx, name, err);
    return false;
  }
  json_t *q = json_pack("{s:s}", "model", own);
  api_resolve(mx, NULL, q, t); /* a peer's model by its exact name was forwarded by api.c */
  json_decref(q);
  return true;
}

/* Whether t can serve an Ollama generation (routers: gen true) or embedding; else err (400). */
static bool servable(const api_target *t, bool gen, api_error *err) {
  if (t->kind == API_TARGET_PIPELINE) {
    API_BAD(err, "model", "wrong_capability",
            "'%s' is a pipeline: use it with /v1/chat/completions or /v1/audio/transcriptions",
            t->pipeline->name);
    return false;
  }
  if (t->kind == API_TARGET_EXTERNAL) {
    API_BAD(err, "model", "wrong_capability",
            "model '%s' is an external engine: only its own routes (and /upstream/%s/) reach it",
            t->model->name, t->model->name);
    return false;
  }
  if (t->kind == API_TARGET_ROUTER && !gen) {
    API_BAD(err, "model", "wrong_capability",
            "'%s' is a router: it serves /api/chat and /api/generate, not embeddings",
            t->router->name);
    return false;
  }
  if (t->kind == API_TARGET_NONE) {
    *err = t->err;
    return false;
  }
  if (t->kind == API_TARGET_MODEL && !ollama_lists(t->model)) {
    char caps[128];
    API_BAD(err, "model", "wrong_capability",
            "model '%s' is not served by Ollama's API (its capabilities: %s; use its /v1 route)",
            t->model->name, matrix_caps_str(t->model->caps, caps, sizeof caps));
    return false;
  }
  return true;
}

/* The model a load-only request loads: the model, or a router's default route's. */
static const matrix_model *load_target(const matrix *mx, const api_target *t) {
  if (t->kind != API_TARGET_ROUTER) return t->model;
  return matrix_find(mx, t->router->routes[t->router->default_route].model);
}

/* options.num_ctx above what m serves per request: never a reload (load settings are the
 * matrix's); the answer says so in a header, and the log. */
static void num_ctx_note(http_req *r, const matrix_model *m, long long num_ctx) {
  if (num_ctx <= m->context) return;
  char v[160];
  snprintf(v, sizeof v, "%d (options.num_ctx %lld not applied: the model matrix sets it)",
           m->context, num_ctx);
  http_add_header(r, "X-Switchyard-Context", v);
  LOG_W(
      "ollama: a request asked model %s for num_ctx %lld; it serves %d tokens per request "
      "(its matrix context): not reloaded",
      m->name, num_ctx, m->context);
}

/* A conversation that cannot fit: more messages than the model (a router: its largest route) has
 * tokens of context, each message taking at least one. Refused here, before the model loads or a
 * worker renders it (rendering grows faster than the message count). */
static bool messages_fit(const matrix *mx, const api_target *t, const json_t *body,
                         api_error *err) {
  size_t n = json_array_size(json_object_get(body, "messages"));
  long long ctx = t->model ? t->model->context : 0;
  for (size_t i = 0; t->router && i < t->router->n_routes; i++) {
    const matrix_model *m = matrix_find(mx, t->router->routes[i].model);
    if (m && m->context > ctx) ctx = m->context;
  }
  if (ctx <= 0 || n <= (size_t)ctx) return true;
  API_BAD(err, "messages", "context_length_exceeded",
          "%zu messages cannot fit in a context of %lld tokens (each message takes at least one)",
          n, ctx);
  return false;
}

/* ---- load and unload (an empty chat, generate or embed) ---- */

/* Load m (keep_alive: for how long, when the matrix lets requests say), or unload it now with
 * keep_alive 0 (as POST /api/unload: only when idle). body: the answer when it worked (stolen). */
static void load_only(sy_daemon *d, http_req *r, api_call *c, bool has_ka, int ka, json_t *body) {
  api_error err = {0};
  atomic_fetch_add(&d->requests, 1);
  const matrix_model *m = load_target(c->mx, &c->target);
  if (!m) {
    json_decref(body);
    API_SERVER(&err, "model_not_found", "the router's default route names no model");
    api_fail(r, &c->obs, &err);
    return;
  }
  c->obs.model = metrics_model(c->obs.mt, m->name);
  if (has_ka && ka == 0) {
    if (!http_is_admin(r)) api_admin_refuse(&err);
    if (err.status || sched_unload(d->sc, m, &err) != 0) {
      json_decref(body);
      api_fail(r, &c->obs, &err);
      return;
    }
  } else {
    worker *w = sched_acquire(d->sc, m, &err);
    if (!w) {
      json_decref(body);
      api_fail(r, &c->obs, &err);
      return;
    }
    if (has_ka) sched_keep_alive(d->sc, m, ka);
    sched_release(d->sc, m, w);
  }
  api_obs_end(&c->obs, 200);
  http_add_header(r, "X-Switchyard-Model", m->name);
  http_reply_json(r, 200, body);
}

/* ---- /api/chat and /api/generate: a dialect of the chat path ---- */

/* One request's state, the dialect's ud: what the translator needs that the chat path does not
 * carry. Lives on the HTTP thread's stack for api_chat_serve's duration. */
typedef struct oll_req {
  const matrix *mx;
  http_req *r;
  const char *name; /* the model as the client named it: Ollama echoes it */
  bool chat_api;    /* /api/chat ("message"), else /api/generate ("response") */
  double t0;        /* the body was complete */
  double t_serve;   /* handed to the chat path: from here to open is the wait for the worker */
  long long num_ctx;
} oll_req;

static void *oll_open(const char *model, bool stream, void *ud) {
  oll_req *q = ud;
  const matrix_model *m = matrix_find(q->mx, model); /* the served one (a router's route) */
  if (m) num_ctx_note(q->r, m, q->num_ctx);
  ollama_tr_params p = {.model = q->name,
                        .chat = q->chat_api,
                        .stream = stream,
                        .t0 = q->t0,
                        .load_s = sy_mono_s() - q->t_serve};
  return ollama_tr_new(&p);
}

static relay_rc oll_event(void *tr, const ipc_msg *m, sy_buf *out) {
  return ollama_tr_event(tr, ipc_op(m), m->hdr, sy_mono_s(), out) ? RELAY_END : RELAY_MORE;
}

static json_t *oll_reply(void *tr, api_error *err) { return ollama_tr_reply(tr, err); }

static void oll_close(void *tr) { ollama_tr_free(tr); }

static void gen_handle(sy_daemon *d, http_req *r, api_call *c, bool chat_api) {
  api_error err = {0};
  ollama_gen og = {0};
  if (ollama_parse_gen(c->req, chat_api, &og, &err) != 0) {
    refuse(d, r, c, &err);
    return;
  }
  if (!resolve(c->mx, og.model, &c->target, &err) || !servable(&c->target, true, &err) ||
      !messages_fit(c->mx, &c->target, og.body, &err)) {
    refuse(d, r, c, &err);
    ollama_gen_clear(&og);
    return;
  }
  /* in Ollama's words, before the chat path would say it in OpenAI's (image_url parts) */
  const matrix_model *m = c->target.kind == API_TARGET_MODEL ? c->target.model : NULL;
  if (m && og.n_images && !og.load_only && !(m->caps & MATRIX_CAP_VISION)) {
    API_BAD(&err, "images", "unsupported_content",
            "model '%s' does not take images (its matrix entry has no vision mmproj)", m->name);
    refuse(d, r, c, &err);
    ollama_gen_clear(&og);
    return;
  }
  if (og.load_only) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    bool unload = og.has_keep_alive && og.keep_alive_s == 0;
    load_only(d, r, c, og.has_keep_alive, og.keep_alive_s,
              ollama_load_reply(og.model, chat_api, unload, &now));
    ollama_gen_clear(&og);
    return;
  }
  oll_req q = {.mx = c->mx,
               .r = r,
               .name = og.model,
               .chat_api = chat_api,
               .t0 = c->obs.t0,
               .t_serve = sy_mono_s(),
               .num_ctx = og.num_ctx};
  api_dialect dl = {.open = oll_open,
                    .event = oll_event,
                    .reply = oll_reply,
                    .close = oll_close,
                    .ud = &q,
                    .content_type = "application/x-ndjson",
                    .completion = !og.chat};
  api_chat_serve(d, r, c, og.body, &dl);
  ollama_gen_clear(&og);
}

void api_ollama_chat(sy_daemon *d, http_req *r, api_call *c) { gen_handle(d, r, c, true); }
void api_ollama_generate(sy_daemon *d, http_req *r, api_call *c) { gen_handle(d, r, c, false); }

/* ---- /api/embed and /api/embeddings ---- */

/* The vectors of an embeddings reply (n × dim floats) in Ollama's shape: /api/embed's
 * {"model", "embeddings", durations, prompt_eval_count}, or /api/embeddings' {"embedding"}
 * (the first); dimensions kept when asked. NULL + err when the reply is malformed or the
 * dimensions are more than the model has. */
static json_t *embed_json(const ollama_embed *oe, const ipc_msg *m, size_t n_inputs, double t0,
                          double load_s, api_error *err) {
  long long n = api_jint(m->hdr, "n"), dim = api_jint(m->hdr, "dim");
  if (strcmp(ipc_op(m), "embeddings") != 0 || n != (long long)n_inputs || dim <= 0 ||
      m->payload_len != (size_t)(n * dim) * sizeof(float)) {
    API_SERVER(err, "bad_worker_reply", "the worker sent a malformed embeddings reply");
    return NULL;
  }
  if (oe->dimensions > dim) {
    API_BAD(err, "dimensions", "invalid_value", "dimensions %lld is more than the model's %lld",
            oe->dimensions, dim);
    return NULL;
  }
  long long keep = oe->dimensions ? oe->dimensions : dim;
  float *v = malloc((size_t)dim * sizeof *v);
  json_t *all = json_array();
  for (long long i = 0; v && i < n; i++) {
    memcpy(v, (const float *)m->payload + i * dim, (size_t)dim * sizeof *v);
    if (keep < dim) api_embed_truncate(v, (size_t)keep);
    json_t *e = json_array();
    for (long long k = 0; k < keep; k++) json_array_append_new(e, json_real(v[k]));
    json_array_append_new(all, e);
  }
  free(v);
  if (!v) {
    json_decref(all);
    API_SERVER(err, "out_of_memory", "out of memory");
    return NULL;
  }
  if (oe->legacy) {
    json_t *o = json_pack("{s:O}", "embedding", json_array_get(all, 0));
    json_decref(all);
    return o;
  }
  double total = sy_mono_s() - t0;
  return json_pack("{s:s, s:o, s:I, s:I, s:I}", "model", oe->model, "embeddings", all,
                   "total_duration", (json_int_t)(total * 1e9), "load_duration",
                   (json_int_t)(load_s * 1e9), "prompt_eval_count",
                   (json_int_t)api_jint(m->hdr, "prompt_tokens"));
}

static void embed_handle(sy_daemon *d, http_req *r, api_call *c, bool legacy) {
  api_error err = {0};
  ollama_embed oe = {0};
  if (ollama_parse_embed(c->req, legacy, &oe, &err) != 0) {
    refuse(d, r, c, &err);
    return;
  }
  if (!resolve(c->mx, oe.model, &c->target, &err) || !servable(&c->target, false, &err)) {
    refuse(d, r, c, &err);
    ollama_embed_clear(&oe);
    return;
  }
  if (oe.load_only) {
    json_t *body = legacy ? json_pack("{s:[]}", "embedding")
                          : json_pack("{s:s, s:[]}", "model", oe.model, "embeddings");
    load_only(d, r, c, oe.has_keep_alive, oe.keep_alive_s, body);
    ollama_embed_clear(&oe);
    return;
  }
  atomic_fetch_add(&d->requests, 1);
  api_embed e;
  if (api_parse_embed(c->mx, &c->target, oe.body, &e, &err) != 0) {
    c->obs.model = api_obs_model_of(d, &c->target);
    api_fail(r, &c->obs, &err);
    ollama_embed_clear(&oe);
    return;
  }
  c->obs.model = metrics_model(c->obs.mt, e.model->name);
  double t = sy_mono_s();
  worker *w = sched_acquire(d->sc, e.model, &err);
  double load_s = sy_mono_s() - t;
  if (!w) {
    api_embed_clear(&e);
    ollama_embed_clear(&oe);
    api_fail(r, &c->obs, &err);
    return;
  }
  num_ctx_note(r, e.model, oe.num_ctx);
  json_t *msg = e.msg;
  e.msg = NULL;
  ipc_msg m = {0};
  relay rl; /* the one pump (engines/relay.h), for the one reply */
  wreq *q = worker_submit(w, msg, &err);
  relay_init(&rl, NULL, NULL, q, http_client_fd(r));
  bool got = q && relay_next(&rl, &m);
  relay_deinit(&rl);
  if (!q) {
    api_fail(r, &c->obs, &err);
  } else if (!got) {
    atomic_fetch_add(&d->cancelled, 1);
    metrics_cancelled(c->obs.mt, c->obs.model);
    api_obs_end(&c->obs, 499);
    http_reply_abort(r);
  } else if (strcmp(ipc_op(&m), "error") == 0) {
    api_worker_error(m.hdr, &err);
    api_fail(r, &c->obs, &err);
  } else {
    json_t *body = embed_json(&oe, &m, e.n_inputs, c->obs.t0, load_s, &err);
    if (!body) {
      api_fail(r, &c->obs, &err);
    } else {
      metrics_tokens(c->obs.mt, c->obs.model, api_jint(m.hdr, "prompt_tokens"), 0);
      api_obs_end(&c->obs, 200);
      http_add_header(r, "X-Switchyard-Model", e.model->name);
      http_reply_json(r, 200, body);
    }
  }
  ipc_msg_clear(&m);
  wreq_free(q);
  if (e.has_keep_alive) sched_keep_alive(d->sc, e.model, e.keep_alive_s);
  sched_release(d->sc, e.model, w);
  api_embed_clear(&e);
  ollama_embed_clear(&oe);
}

void api_ollama_embed(sy_daemon *d, http_req *r, api_call *c) { embed_handle(d, r, c, false); }
void api_ollama_embeddings(sy_daemon *d, http_req *r, api_call *c) { embed_handle(d, r, c, true); }

/* ---- /api/tags, /api/show, /api/version, /api/ps ---- */

void api_ollama_tags(sy_daemon *d, http_req *r, api_call *c) {
  json_t *models = json_array();
  for (size_t i = 0; i < c->mx->n_models; i++) {
    const matrix_model *m = &c->mx->models[i];
    if (ollama_lists(m)) json_array_append_new(models, ollama_tags_entry(m, file_mtime(m->file)));
  }
  for (size_t i = 0; i < c->mx->n_routers; i++)
    json_array_append_new(models, ollama_router_entry(&c->mx->routers[i], (long long)d->started));
  http_reply_json(r, 200, json_pack("{s:o}", "models", models));
}

void api_ollama_show(sy_daemon *d, http_req *r, api_call *c) {
  api_error err = {0};
  json_t *jm = json_object_get(c->req, "model");
  if (!jm || json_is_null(jm)) jm = json_object_get(c->req, "name"); /* the older field */
  const char *name = json_string_value(jm);
  if (!name || !*name) {
    API_BAD(&err, "model", "missing_required_parameter", "model is required");
    http_reply_error(r, &err);
    return;
  }
  if (!resolve(c->mx, name, &c->target, &err)) {
    http_reply_error(r, &err);
    return;
  }
  json_t *body = NULL;
  if (c->target.kind == API_TARGET_ROUTER) {
    body =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:[s], s:s, s:s}, s:[s, s], s:o}",
                  "license", "", "modelfile", "", "parameters", "", "template", "", "details",
                  "parent_model", "", "format", "router", "family", "router", "families", "router",
                  "parameter_size", "", "quantization_level", "", "capabilities", "completion",
                  "tools", "switchyard", router_model_json(d, c->mx, c->target.router));
  } else if (c->target.kind == API_TARGET_MODEL && ollama_lists(c->target.model)) {
    const matrix_model *m = c->target.model;
    char *tmpl = NULL, gerr[256];
    if (!m->chat_template && m->file && ghdr_read_template(m->file, &tmpl, gerr, sizeof gerr))
      LOG_W("show %s: cannot read its chat template: %s", m->name, gerr);
    body = ollama_show(m, file_mtime(m->file), tmpl);
    free(tmpl);
  } else {
    not_found(c->mx, name, &err);
    http_reply_error(r, &err);
    return;
  }
  http_reply_json(r, 200, body);
}

void api_ollama_version(sy_daemon *d, http_req *r, api_call *c) {
  (void)d, (void)c;
  http_reply_json(r, 200, json_pack("{s:s}", "version", OLLAMA_API_VERSION));
}

void api_ollama_ps_fields(sy_daemon *d, json_t *ps) {
  const matrix *mx = atomic_load(&d->mx);
  time_t now = time(NULL);
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(ps, "models"), i, e) {
    const matrix_model *m = matrix_find(mx, json_string_value(json_object_get(e, "name")));
    ollama_ps_fields(e, m, m ? file_mtime(m->file) : 0, now);
  }
}

/* ---- the rest of Ollama's /api/ ---- */

void api_ollama_other(sy_daemon *d, http_req *r, api_call *c) {
  (void)d;
  static const char *const not_built[] = {"push", "create", "copy", "blobs/"};
  api_error err;
  for (size_t i = 0; i < sizeof not_built / sizeof *not_built; i++) {
    size_t n = strlen(not_built[i]);
    if (strncmp(c->rest, not_built[i], n) == 0 &&
        (not_built[i][n - 1] == '/' || c->rest[n] == '\0')) {
      api_error_set(&err, 501, "server_error", "not_implemented", NULL,
                    "%s /api/%.40s is not built yet in Switchyard: its models come from the model "
                    "matrix (the config and the models folder; docs/CONFIG.md)",
                    http_method(r), c->rest);
      http_reply_error(r, &err);
      return;
    }
  }
  api_error_set(&err, 404, "invalid_request_error", "not_found", NULL,
                "unknown endpoint: %.16s %.200s", http_method(r), http_path(r));
  http_reply_error(r, &err);
}
