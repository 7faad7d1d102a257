/* ollama.c — Ollama's API on Switchyard (api_int.h): POST /api/chat, /api/generate, /api/embed,
 * /api/embeddings, /api/show; GET /api/tags, /api/version; Ollama's fields in GET /api/ps; and a
 * clear 501 for what is not built (/api/pull, /api/delete, /api/create, /api/copy, /api/push).
 * The endpoint glue only: the translations are pure (ollama_xlate.c); a chat or generate is the
 * translated /v1 request served by the chat path (api_gen_acquire: the same checks, routers,
 * scheduling and media decoding as /v1/chat/completions), then this file's relay job writes the
 * worker's events as NDJSON lines or one answer; embeddings go to the scheduler and the worker as
 * /v1/embeddings' do. Every error on these routes is Ollama's shape, {"error": "<message>"}: the
 * routes take their bodies raw (no R_JSON in api.c's table) so that a body that is not JSON is
 * answered here too. Exports api_ollama_*. docs/API.md, "Ollama's API". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api.h"
#include "api/api_int.h"
#include "api/ollama_xlate.h"
#include "clock.h"
#include "engines/relay.h"
#include "log.h"
#include "virtual/router_decide.h"

/* ---- replies in Ollama's shape ---- */

static void reply_error(http_req *r, const api_error *e) {
  if (e->retry_after_s > 0) {
    char v[16];
    snprintf(v, sizeof v, "%d", e->retry_after_s);
    http_add_header(r, "Retry-After", v);
  }
  http_reply_json(r, (unsigned)ollama_status(e), ollama_error_json(e));
}

/* Reply with an error and count it (o: the request's metrics record, or NULL: not counted). */
static void fail(http_req *r, const req_obs *o, const api_error *e) {
  if (o) api_obs_end(o, ollama_status(e));
  reply_error(r, e);
}

/* The request's method is POST (post) or GET/HEAD; else 405 with Allow, counted when o is set. */
static bool method_ok(http_req *r, const req_obs *o, bool post) {
  const char *m = http_method(r);
  if (post ? strcmp(m, "POST") == 0 : strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) return true;
  api_error e;
  api_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s requires %s",
                http_path(r), post ? "POST" : "GET");
  http_add_header(r, "Allow", post ? "POST" : "GET");
  fail(r, o, &e);
  return false;
}

/* The body as a JSON object, or NULL + err (400). */
static json_t *body_json(http_req *r, api_error *err) {
  size_t len;
  const char *body = http_body(r, &len);
  return api_parse_body(body, len, err);
}

/* The file's modification time (unix seconds), 0 when it cannot be read. */
static long long file_mtime(const char *path) {
  struct stat st;
  return path && *path && stat(path, &st) == 0 ? (long long)st.st_mtime : 0;
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
  api_resolve(mx, q, t);
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
  const matrix_model *m = load_target(c->mx, &c->target);
  if (!m) {
    json_decref(body);
    API_SERVER(&err, "model_not_found", "the router's default route names no model");
    fail(r, &c->obs, &err);
    return;
  }
  c->obs.model = metrics_model(c->obs.mt, m->name);
  if (has_ka && ka == 0) {
    if (sched_unload(d->sc, m, &err) != 0) {
      json_decref(body);
      fail(r, &c->obs, &err);
      return;
    }
  } else {
    worker *w = sched_acquire(d->sc, m, &err);
    if (!w) {
      json_decref(body);
      fail(r, &c->obs, &err);
      return;
    }
    if (has_ka) sched_keep_alive(d->sc, m, ka);
    sched_release(d->sc, m, w);
  }
  api_obs_end(&c->obs, 200);
  http_add_header(r, "X-Switchyard-Model", m->name);
  http_reply_json(r, 200, body);
}

/* ---- /api/chat and /api/generate ---- */

/* One answer being relayed: the worker's events through the translator. */
typedef struct oll_job {
  sy_daemon *d;
  const matrix_model *model;
  worker *w;
  wreq *q;
  relay rl;
  ollama_tr *tr;
  req_obs obs;
  int status; /* the HTTP status sent; 0 = none yet */
  bool finished;
  bool has_keep_alive;
  int keep_alive_s;
} oll_job;

static void job_free(void *cls) {
  oll_job *j = cls;
  if (!j->finished) {
    atomic_fetch_add(&j->d->cancelled, 1);
    metrics_cancelled(j->obs.mt, j->obs.model);
  }
  api_obs_end(&j->obs, j->status ? j->status : 499);
  relay_deinit(&j->rl);
  wreq_free(j->q);
  if (j->has_keep_alive) sched_keep_alive(j->d->sc, j->model, j->keep_alive_s);
  sched_release(j->d->sc, j->model, j->w);
  ollama_tr_free(j->tr);
  free(j);
}

/* The relay's translate function (streamed and whole). */
static relay_rc job_event(void *cls, const ipc_msg *m, sy_buf *out) {
  oll_job *j = cls;
  const char *op = ipc_op(m);
  if (strcmp(op, "done") == 0) {
    metrics_tokens(j->obs.mt, j->obs.model, api_jint(m->hdr, "prompt_tokens"),
                   api_jint(m->hdr, "completion_tokens"));
    metrics_prompt_cache(j->obs.mt, j->obs.model, api_jint(m->hdr, "cached_tokens"));
  }
  if (!ollama_tr_event(j->tr, op, m->hdr, sy_mono_s(), out)) return RELAY_MORE;
  j->finished = true;
  return RELAY_END;
}

static const relay_ops job_ops = {.event = job_event, .free = job_free};

/* Serve an acquired request (g, media and w are owned from here): submit it, then answer with
 * NDJSON lines or one object, as og asked. name: the model as the client named it (Ollama
 * echoes it). */
static void run(sy_daemon *d, http_req *r, api_call *c, const ollama_gen *og, bool chat_api,
                api_gen *g, sy_buf *media, worker *w, double load_s) {
  api_error err = {0};
  oll_job *j = calloc(1, sizeof *j);
  ollama_tr_params tp = {.model = og->model,
                         .chat = chat_api,
                         .stream = og->stream,
                         .t0 = c->obs.t0,
                         .load_s = load_s};
  if (j) j->tr = ollama_tr_new(&tp);
  if (!j || !j->tr) {
    free(j);
    sched_release(d->sc, g->model, w);
    api_gen_clear(g);
    sy_buf_free(media);
    API_SERVER(&err, "out_of_memory", "out of memory");
    fail(r, &c->obs, &err);
    return;
  }
  j->d = d;
  j->model = g->model;
  j->w = w;
  j->obs = c->obs;
  j->has_keep_alive = g->has_keep_alive;
  j->keep_alive_s = g->keep_alive_s;
  json_t *msg = g->msg;
  g->msg = NULL;
  api_gen_clear(g);
  j->q = worker_submit_payload(w, msg, media->data, media->len, &err);
  sy_buf_free(media);
  if (!j->q) {
    sched_release(d->sc, j->model, w);
    ollama_tr_free(j->tr);
    free(j);
    fail(r, &c->obs, &err);
    return;
  }
  relay_init(&j->rl, &job_ops, j, j->q, http_client_fd(r));
  http_add_header(r, "X-Switchyard-Model", j->model->name);
  /* the first event decides the status: a prompt the worker refuses is an HTTP error */
  ipc_msg first;
  if (!relay_next(&j->rl, &first)) {
    job_free(j); /* counts as cancelled */
    http_reply_abort(r);
    return;
  }
  if (strcmp(ipc_op(&first), "delta") == 0)
    metrics_ttft(j->obs.mt, j->obs.model, api_obs_elapsed(&j->obs));
  if (strcmp(ipc_op(&first), "error") == 0) {
    api_worker_error(first.hdr, &err);
    ipc_msg_clear(&first);
    j->finished = true;
    j->status = ollama_status(&err);
    job_free(j);
    reply_error(r, &err);
    return;
  }
  relay_put_back(&j->rl, &first);
  if (og->stream) {
    j->status = 200;
    relay_stream(&j->rl, r, 200, "application/x-ndjson");
    return;
  }
  if (relay_collect(&j->rl, job_event, j) != RELAY_END) {
    job_free(j); /* the client went away: cancelled */
    http_reply_abort(r);
    return;
  }
  json_t *body = ollama_tr_reply(j->tr, &err);
  j->status = body ? 200 : ollama_status(&err);
  job_free(j);
  if (body)
    http_reply_json(r, 200, body);
  else
    reply_error(r, &err);
}

static void gen_handle(sy_daemon *d, http_req *r, api_call *c, bool chat_api) {
  if (!method_ok(r, &c->obs, true)) return;
  atomic_fetch_add(&d->requests, 1);
  api_error err = {0};
  ollama_gen og = {0};
  json_t *req = body_json(r, &err);
  if (!req || ollama_parse_gen(req, chat_api, &og, &err) != 0) {
    json_decref(req);
    fail(r, &c->obs, &err);
    return;
  }
  json_decref(req);
  if (!resolve(c->mx, og.model, &c->target, &err) || !servable(&c->target, true, &err) ||
      !messages_fit(c->mx, &c->target, og.body, &err)) {
    c->obs.model = api_obs_model_of(d, &c->target);
    fail(r, &c->obs, &err);
    ollama_gen_clear(&og);
    return;
  }
  if (og.load_only) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    load_only(
        d, r, c, og.has_keep_alive, og.keep_alive_s,
        ollama_load_reply(og.model, chat_api, og.has_keep_alive && og.keep_alive_s == 0, &now));
    ollama_gen_clear(&og);
    return;
  }
  api_gen g;
  sy_buf media;
  worker *w = NULL;
  double t = sy_mono_s();
  int rc = api_gen_acquire(d, r, c, og.body, og.chat, &g, &media, &w, &err);
  if (rc == 0) {
    num_ctx_note(r, g.model, og.num_ctx);
    run(d, r, c, &og, chat_api, &g, &media, w, sy_mono_s() - t);
  } else if (rc == -1) {
    if (err.code && strcmp(err.code, "unsupported_content") == 0 &&
        strstr(err.message, "image_url"))
      api_error_set(&err, 400, "invalid_request_error", "unsupported_content", "images",
                    "model '%s' does not take images (its matrix entry has no vision mmproj)",
                    c->target.model ? c->target.model->name : og.model);
    fail(r, &c->obs, &err); /* -2: the client left while a router decided (answered) */
  }
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
    if (keep < dim) ollama_truncate_vector(v, (size_t)keep);
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
  if (!method_ok(r, &c->obs, true)) return;
  atomic_fetch_add(&d->requests, 1);
  api_error err = {0};
  ollama_embed oe = {0};
  json_t *req = body_json(r, &err);
  if (!req || ollama_parse_embed(req, legacy, &oe, &err) != 0) {
    json_decref(req);
    fail(r, &c->obs, &err);
    return;
  }
  json_decref(req);
  if (!resolve(c->mx, oe.model, &c->target, &err) || !servable(&c->target, false, &err)) {
    c->obs.model = api_obs_model_of(d, &c->target);
    fail(r, &c->obs, &err);
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
  api_embed e;
  if (api_parse_embed(c->mx, &c->target, oe.body, &e, &err) != 0) {
    c->obs.model = api_obs_model_of(d, &c->target);
    fail(r, &c->obs, &err);
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
    fail(r, &c->obs, &err);
    return;
  }
  num_ctx_note(r, e.model, oe.num_ctx);
  json_t *msg = e.msg;
  e.msg = NULL;
  ipc_msg m = {0};
  bool hup = false;
  wreq *q = worker_submit(w, msg, &err);
  if (!q) {
    fail(r, &c->obs, &err);
  } else if (!wreq_wait(q, &m, http_client_fd(r), -1, &hup)) {
    atomic_fetch_add(&d->cancelled, 1);
    metrics_cancelled(c->obs.mt, c->obs.model);
    api_obs_end(&c->obs, 499);
    http_reply_abort(r);
  } else if (strcmp(ipc_op(&m), "error") == 0) {
    api_worker_error(m.hdr, &err);
    fail(r, &c->obs, &err);
  } else {
    json_t *body = embed_json(&oe, &m, e.n_inputs, c->obs.t0, load_s, &err);
    if (!body) {
      fail(r, &c->obs, &err);
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
  if (!method_ok(r, NULL, false)) return;
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
  if (!method_ok(r, NULL, true)) return;
  api_error err = {0};
  json_t *req = body_json(r, &err);
  json_t *jm = json_object_get(req, "model");
  if (!jm || json_is_null(jm)) jm = json_object_get(req, "name"); /* the older field */
  const char *name = json_string_value(jm);
  if (req && (!name || !*name))
    API_BAD(&err, "model", "missing_required_parameter", "model is required");
  if (!req || !name || !*name || !resolve(c->mx, name, &c->target, &err)) {
    json_decref(req);
    fail(r, NULL, &err);
    return;
  }
  json_decref(req);
  json_t *body = NULL;
  if (c->target.kind == API_TARGET_ROUTER) {
    body =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:[s], s:s, s:s}, s:[s, s], s:o}",
                  "license", "", "modelfile", "", "parameters", "", "template", "", "details",
                  "parent_model", "", "format", "router", "family", "router", "families", "router",
                  "parameter_size", "", "quantization_level", "", "capabilities", "completion",
                  "tools", "switchyard", router_model_json(d, c->mx, c->target.router));
  } else if (c->target.kind == API_TARGET_MODEL && ollama_lists(c->target.model)) {
    body = ollama_show(c->target.model, file_mtime(c->target.model->file));
  } else {
    not_found(c->mx, name, &err);
    fail(r, NULL, &err);
    return;
  }
  http_reply_json(r, 200, body);
}

void api_ollama_version(sy_daemon *d, http_req *r, api_call *c) {
  (void)d, (void)c;
  if (!method_ok(r, NULL, false)) return;
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
  static const char *const not_built[] = {"pull", "push", "create", "copy", "delete", "blobs/"};
  api_error err;
  for (size_t i = 0; i < sizeof not_built / sizeof *not_built; i++) {
    size_t n = strlen(not_built[i]);
    if (strncmp(c->rest, not_built[i], n) == 0 &&
        (not_built[i][n - 1] == '/' || c->rest[n] == '\0')) {
      api_error_set(&err, 501, "server_error", "not_implemented", NULL,
                    "%s /api/%.40s is not built yet in Switchyard: its models come from the model "
                    "matrix (the config and the models folder; docs/CONFIG.md)",
                    http_method(r), c->rest);
      reply_error(r, &err);
      return;
    }
  }
  api_error_set(&err, 404, "invalid_request_error", "not_found", NULL,
                "unknown endpoint: %.16s %.200s", http_method(r), http_path(r));
  reply_error(r, &err);
}
