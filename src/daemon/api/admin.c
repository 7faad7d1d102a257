/* admin.c — the endpoints that are not OpenAI inference (api_int.h): GET /v1/models (models,
 * routers, pipelines, and the peers' models, marked), GET /metrics, POST /api/load and /api/unload,
 * GET /api/events and GET /api/ps. Exports api_admin_*. */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "engines/peer.h"
#include "http/sse.h"
#include "obs/events.h"
#include "parse/api_parse.h"
#include "virtual/pipeline.h"
#include "virtual/router_decide.h"
#include "ws/ws.h"

/* ---- models, health, ps ---- */

static json_t *model_json(sy_daemon *d, const matrix_model *m) {
  json_t *caps = json_array(), *aliases = json_array();
  static const struct {
    unsigned bit;
    const char *name;
  } cn[] = {{MATRIX_CAP_CHAT, "chat"},     {MATRIX_CAP_COMPLETION, "completion"},
            {MATRIX_CAP_EMBED, "embed"},   {MATRIX_CAP_RERANK, "rerank"},
            {MATRIX_CAP_VISION, "vision"}, {MATRIX_CAP_TRANSCRIBE, "transcribe"},
            {MATRIX_CAP_SPEECH, "speech"}, {MATRIX_CAP_AUDIO, "audio"}};
  for (size_t i = 0; i < sizeof cn / sizeof cn[0]; i++)
    if (m->caps & cn[i].bit) json_array_append_new(caps, json_string(cn[i].name));
  for (size_t i = 0; i < m->n_aliases; i++)
    json_array_append_new(aliases, json_string(m->aliases[i]));
  long long est, meas;
  sched_memory(d->sc, m, &est, &meas);
  return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:s, s:i, s:{s:I, s:I}}", "id", m->name,
                   "object", "model", "created", (json_int_t)d->started, "owned_by", "switchyard",
                   "capabilities", caps, "aliases", aliases, "status", sched_state(d->sc, m),
                   "context_length", m->context, "memory", "estimated", (json_int_t)est, "measured",
                   (json_int_t)meas);
}

void api_admin_models(sy_daemon *d, http_req *r, const char *id) {
  const matrix *mx = d->mx;
  if (id) { /* the path's name, resolved as a request's "model" is */
    json_t *q = json_pack("{s:s}", "model", id);
    api_target t;
    api_resolve(mx, d->peers, q, &t);
    json_decref(q);
    if (t.kind == API_TARGET_ROUTER) {
      http_reply_json(r, 200, router_model_json(d, mx, t.router));
    } else if (t.kind == API_TARGET_PIPELINE) {
      http_reply_json(r, 200, pipe_model_json(t.pipeline, d->started));
    } else if (t.kind == API_TARGET_PEER) {
      json_t *e = peers_model_json(d->peers, t.peer_model);
      if (e)
        http_reply_json(r, 200, e);
      else
        http_reply_error(r, &t.err); /* gone from the peer's list since */
    } else if (t.kind == API_TARGET_NONE) {
      api_error err;
      api_error_set(&err, 404, "invalid_request_error", "model_not_found", "model",
                    "The model '%.200s' does not exist", id);
      http_reply_error(r, &err);
    } else {
      http_reply_json(r, 200, model_json(d, t.model));
    }
    return;
  }
  json_t *data = json_array();
  for (size_t i = 0; i < mx->n_models; i++)
    json_array_append_new(data, model_json(d, &mx->models[i]));
  for (size_t i = 0; i < mx->n_routers; i++)
    json_array_append_new(data, router_model_json(d, mx, &mx->routers[i]));
  for (size_t i = 0; i < mx->n_pipelines; i++)
    json_array_append_new(data, pipe_model_json(&mx->pipelines[i], d->started));
  peers_models_json(d->peers, mx, data); /* marked "peer": NAME, after every local name */
  http_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* ---- GET /metrics ---- */

void api_admin_metrics(sy_daemon *d, http_req *r) {
  api_error err = {0};
  sy_buf out = {0};
  if (sched_metrics_render(d->sc, &out) != 0 || router_stats_render(&out) != 0 ||
      (d->ws && ws_hub_render(d->ws, &out) != 0)) {
    sy_buf_free(&out);
    API_SERVER(&err, "out_of_memory", "could not render the metrics");
    http_reply_error(r, &err);
    return;
  }
  http_reply_buf(r, 200, METRICS_CONTENT_TYPE, &out);
}

void api_admin_refuse(api_error *e) {
  api_error_set(e, 403, "invalid_request_error", "admin_key_required", NULL,
                "this is an admin action (pull, delete, load, unload): it needs one of the "
                "config's admin_keys");
}

/* POST /api/load and /api/unload {"model": NAME}: the admin side of the scheduler. */
void api_admin_load(sy_daemon *d, http_req *r, api_call *c, bool load) {
  api_error err = {0};
  const matrix_model *m = api_target_model(&c->target, ~0u, "loading", &err);
  if (!m) {
    http_reply_error(r, &err);
    return;
  }
  if (load) {
    worker *w = sched_acquire(d->sc, m, &err); /* loads it (evicting idle models if needed) */
    if (!w) {
      http_reply_error(r, &err);
      return;
    }
    sched_release(d->sc, m, w);
  } else if (sched_unload(d->sc, m, &err) != 0) {
    http_reply_error(r, &err);
    return;
  }
  http_reply_json(r, 200,
                  json_pack("{s:s, s:s}", "model", m->name, "status", sched_state(d->sc, m)));
}

/* GET /api/events: server-sent events of loads and unloads, from now on, until the client goes. */
typedef struct event_feed {
  events *ev;
  unsigned long long seq;
  int fd;
  sy_buf out;
  bool hello_sent;
  bool done; /* the daemon is shutting down: end the stream once out is flushed */
} event_feed;

static ssize_t event_feed_read(void *cls, char *buf, size_t max) {
  event_feed *f = cls;
  if (!f->hello_sent) {
    json_t *h = json_pack("{s:s, s:I}", "type", "hello", "next_seq", (json_int_t)f->seq);
    sse_append_json(&f->out, h);
    json_decref(h);
    f->hello_sent = true;
  }
  while (f->out.len == 0) {
    if (f->done) return HTTP_STREAM_END;
    json_t *e = events_wait(f->ev, &f->seq, 1000);
    if (!e) {
      if (fd_peer_gone(f->fd)) return HTTP_STREAM_ABORT;
      sy_buf_puts(&f->out, ": ping\n\n"); /* a comment: keeps proxies from timing the stream out */
      continue;
    }
    sse_append_json(&f->out, e);
    const char *type = json_string_value(json_object_get(e, "type"));
    f->done = type && strcmp(type, "shutdown") == 0;
    json_decref(e);
  }
  return (ssize_t)sy_buf_take(&f->out, buf, max);
}

static void event_feed_free(void *cls) {
  event_feed *f = cls;
  sy_buf_free(&f->out);
  free(f);
}

void api_admin_events(sy_daemon *d, http_req *r) {
  event_feed *f = calloc(1, sizeof *f);
  if (!f) {
    api_error err;
    API_SERVER(&err, "out_of_memory", "out of memory");
    http_reply_error(r, &err);
    return;
  }
  f->ev = sched_events(d->sc);
  f->seq = events_next_seq(f->ev);
  f->fd = http_client_fd(r);
  http_reply_stream(r, 200, "text/event-stream", event_feed_read, f, event_feed_free);
}

/* GET /api/ps: the scheduler's table (with Ollama's fields: ollama.c), and the request counters. */
void api_admin_ps(sy_daemon *d, http_req *r) {
  json_t *ps = sched_ps(d->sc);
  api_ollama_ps_fields(d, ps); /* Ollama's fields beside ours, for both kinds of clients */
  /* the peers' models as they report them (theirs have Ollama's fields already), and the peers */
  peers_ps_json(d->peers, atomic_load(&d->mx), ps);
  json_object_set_new(ps, "stats",
                      json_pack("{s:I, s:I}", "requests", (json_int_t)atomic_load(&d->requests),
                                "cancelled", (json_int_t)atomic_load(&d->cancelled)));
  http_reply_json(r, 200, ps);
}
