/* api.c — the OpenAI-compatible front: route a checked HTTP request by method and path to its
 * endpoint family (chat.c, embeddings.c, transcribe.c, speech.c, admin.c; external engines'
 * routes to engines/proxy.c; a voice pipeline's chat to virtual/pipeline.c), and count it for
 * GET /metrics. The families validate (parse/api_parse.c), get a worker from the scheduler and
 * relay the worker's events as one JSON response or as server-sent events. Must never leave a
 * worker request running for a client that went away, never answer twice, and never answer a
 * worker's error other than as api_error.h's table says (api_worker_error). */
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "clock.h"
#include "api/speech.h"
#include "api/transcribe.h"
#include "engines/proxy.h"
#include "parse/api_parse.h"
#include "virtual/pipeline.h"

/* ---- small helpers ---- */

void api_worker_error(const json_t *hdr, api_error *e) {
  api_error_from_worker(hdr, e);
  if (e->code && strcmp(e->code, "context_length_exceeded") == 0) e->param = "messages";
}

long long api_jint(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
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
int api_obs_model_of(const sy_daemon *d, const json_t *req) {
  const matrix_model *m = matrix_find(d->mx, json_string_value(json_object_get(req, "model")));
  return m ? metrics_model(sched_metrics(d->sc), m->name) : METRICS_NO_MODEL;
}

void api_handle(void *ud, http_req *r) {
  sy_daemon *d = ud;
  const char *method = http_method(r), *path = http_path(r);
  bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0,
       post = strcmp(method, "POST") == 0;
  api_error err = {0};
  if (proxy_handle(d, r))
    return; /* external engines (proxy.c): their routes and /upstream/<model>/ */
  /* the rerank paths are llama-server's: /rerank, /reranking, /v1/rerank, /v1/reranking */
  static const char *posts[] = {
      "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank", "/rerank",
      "/v1/reranking",        "/reranking"};
  int which = -1;
  for (int i = 0; i < (int)(sizeof posts / sizeof posts[0]); i++)
    if (strcmp(path, posts[i]) == 0) which = i;
  if (which >= 0) {
    static const metrics_endpoint eps[] = {
        METRICS_EP_CHAT,   METRICS_EP_COMPLETIONS, METRICS_EP_EMBEDDINGS, METRICS_EP_RERANK,
        METRICS_EP_RERANK, METRICS_EP_RERANK,      METRICS_EP_RERANK};
    req_obs obs = {.mt = sched_metrics(d->sc), .model = METRICS_NO_MODEL, .ep = eps[which]};
    obs.t0 = sy_mono_s();
    if (!post) {
      api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                    "%s requires POST", path);
      http_add_header(r, "Allow", "POST");
      api_fail(r, &obs, &err);
      return;
    }
    size_t len;
    const char *body = http_body(r, &len);
    json_t *req = api_parse_body(body, len, &err);
    if (!req) {
      api_fail(r, &obs, &err);
      return;
    }
    atomic_fetch_add(&d->requests, 1);
    const matrix *mx = d->mx;
    const matrix_pipeline *voice = which == 0 ? pipe_voice_of(mx, req) : NULL;
    const matrix_pipeline *other =
        which <= 1 && !voice
            ? matrix_find_pipeline(mx, json_string_value(json_object_get(req, "model")))
            : NULL;
    if (other) {
      api_error_set(&err, 400, "invalid_request_error", "wrong_capability", "model",
                    "'%s' is a %s pipeline: %s", other->name,
                    matrix_pipeline_kind_name(other->kind),
                    other->kind == MATRIX_PIPE_VOICE ? "use it with /v1/chat/completions"
                                                     : "use it with /v1/audio/transcriptions");
      api_fail(r, &obs, &err);
    } else if (voice) { /* pipeline.c; counted as the audio endpoints are, under the pipeline's name
                         */
      pipe_voice_turn(d, r, mx, voice, req);
      obs.model = metrics_model(obs.mt, voice->name);
      unsigned st = http_reply_status(r);
      api_obs_end(&obs, st ? (int)st : 499);
    } else if (which >= 3)
      api_rerank_handle(d, r, req, &obs);
    else if (which == 2)
      api_embeddings_handle(d, r, req, &obs);
    else
      api_chat_handle(d, r, req, which == 0, &obs);
    json_decref(req);
    return;
  }
  bool asr =
      strcmp(path, "/v1/audio/transcriptions") == 0 || strcmp(path, "/v1/audio/translations") == 0;
  if (asr || strcmp(path, "/v1/audio/speech") == 0) { /* api/transcribe.c, api/speech.c */
    req_obs obs = {.mt = sched_metrics(d->sc),
                   .model = METRICS_NO_MODEL,
                   .ep = asr ? METRICS_EP_TRANSCRIBE : METRICS_EP_SPEECH};
    obs.t0 = sy_mono_s();
    if (asr)
      api_transcribe_handle(d, r, strcmp(path, "/v1/audio/translations") == 0);
    else
      api_speech_handle(d, r);
    /* counted when the reply is decided (a stream: at its start); the served model is the one
     * the handler named in X-Switchyard-Model */
    const char *served = http_reply_header(r, "X-Switchyard-Model");
    if (served) obs.model = metrics_model(obs.mt, served);
    unsigned st = http_reply_status(r);
    api_obs_end(&obs, st ? (int)st : 499);
    return;
  }
  if (strcmp(path, "/v1/audio/voices") == 0) {
    api_voices_handle(d, r);
    return;
  }
  if (strcmp(path, "/api/load") == 0 || strcmp(path, "/api/unload") == 0) {
    if (!post) {
      api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                    "%s requires POST", path);
      http_add_header(r, "Allow", "POST");
      http_reply_error(r, &err);
    } else {
      api_admin_load(d, r, strcmp(path, "/api/load") == 0);
    }
    return;
  }
  bool known = strcmp(path, "/health") == 0 || strcmp(path, "/v1/models") == 0 ||
               strncmp(path, "/v1/models/", 11) == 0 || strcmp(path, "/api/ps") == 0 ||
               strcmp(path, "/metrics") == 0 || strcmp(path, "/api/events") == 0;
  if (known && !get) {
    api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL, "%s requires GET",
                  path);
    http_add_header(r, "Allow", "GET");
    http_reply_error(r, &err);
  } else if (strcmp(path, "/health") == 0) {
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
  } else if (strcmp(path, "/v1/models") == 0) {
    api_admin_models(d, r, NULL);
  } else if (strncmp(path, "/v1/models/", 11) == 0) {
    api_admin_models(d, r, path + 11);
  } else if (strcmp(path, "/api/ps") == 0) {
    api_admin_ps(d, r);
  } else if (strcmp(path, "/metrics") == 0) {
    api_admin_metrics(d, r);
  } else if (strcmp(path, "/api/events") == 0) {
    api_admin_events(d, r);
  } else {
    api_error_set(&err, 404, "invalid_request_error", "not_found", NULL,
                  "Unknown endpoint: %.16s %.200s", method, path);
    http_reply_error(r, &err);
  }
}
