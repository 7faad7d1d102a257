/* api.c — the OpenAI-compatible endpoints: route a checked HTTP request, validate it
 * (api_parse.c), get a worker from the scheduler, relay the worker's events as one JSON response
 * or as server-sent events. Must never leave a worker request running for a client that went
 * away, never answer twice, and never answer a worker's error other than as apierr.h's table
 * says (api_worker_error). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "api_audio.h"
#include "api_parse.h"
#include "api_router.h"
#include "api_speech.h"
#include "audio.h"
#include "buf.h"
#include "daemon.h"
#include "events.h"
#include "image.h"
#include "log.h"
#include "pipeline.h"
#include "proxy.h"
#include "sse.h"

/* ---- small helpers ---- */

void api_worker_error(const json_t *hdr, api_error *e) {
  api_error_from_worker(hdr, e);
  if (e->code && strcmp(e->code, "context_length_exceeded") == 0) e->param = "messages";
}

static long long jint(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* ---- metrics: what GET /metrics needs to know of one request ---- */

typedef struct req_obs {
  metrics *mt;
  int model; /* index in the matrix, METRICS_NO_MODEL until the request names a known model */
  metrics_endpoint ep;
  double t0; /* when the body was complete (sy_mono_s) */
} req_obs;

static double obs_elapsed(const req_obs *o) { return sy_mono_s() - o->t0; }

/* The request is answered with status (499: the client went away first). */
static void obs_end(const req_obs *o, int status) {
  metrics_request(o->mt, o->model, o->ep, status, obs_elapsed(o));
}

/* Reply with an error and count it. */
static void fail(http_req *r, const req_obs *o, const api_error *e) {
  obs_end(o, e->status);
  http_reply_error(r, e);
}

/* The model a refused request named, when it is one of the matrix's (never a client's string). */
static int obs_model_of(const sy_daemon *d, const json_t *req) {
  const matrix_model *m = matrix_find(d->mx, json_string_value(json_object_get(req, "model")));
  return m ? metrics_model(sched_metrics(d->sc), m->name) : METRICS_NO_MODEL;
}

static json_t *usage_json(const json_t *done) {
  long long p = jint(done, "prompt_tokens"), c = jint(done, "completion_tokens");
  return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)p, "completion_tokens",
                   (json_int_t)c, "total_tokens", (json_int_t)(p + c));
}

/* The worker's own timings, named as llama-server names them, so a client can tell engine time
 * from the time spent around it. */
static json_t *timings_json(const json_t *done) {
  json_t *pm = json_object_get(done, "prompt_ms"), *gm = json_object_get(done, "gen_ms");
  return json_pack("{s:I, s:f, s:I, s:f}", "prompt_n", (json_int_t)jint(done, "prompt_tokens"),
                   "prompt_ms", json_is_number(pm) ? json_number_value(pm) : 0.0, "predicted_n",
                   (json_int_t)jint(done, "completion_tokens"), "predicted_ms",
                   json_is_number(gm) ? json_number_value(gm) : 0.0);
}

static const char *finish_reason(const json_t *done) {
  const char *f = json_string_value(json_object_get(done, "finish_reason"));
  return f && strcmp(f, "length") == 0       ? "length"
         : f && strcmp(f, "tool_calls") == 0 ? "tool_calls"
                                             : "stop";
}

/* Log-probabilities in OpenAI's shape: chat {"content":[entries]}; legacy completions
 * {"tokens","token_logprobs","top_logprobs":[{token: logprob}],"text_offset"} (offsets from base).
 */
static json_t *logprobs_json(const json_t *entries, bool chat, size_t base) {
  if (chat) return json_pack("{s:O}", "content", entries);
  json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
  size_t i, off = base;
  json_t *e;
  json_array_foreach(entries, i, e) {
    const char *t = json_string_value(json_object_get(e, "token"));
    json_array_append(tokens, json_object_get(e, "token"));
    json_array_append(lps, json_object_get(e, "logprob"));
    json_t *m = json_object();
    size_t k;
    json_t *a;
    json_array_foreach(json_object_get(e, "top_logprobs"), k, a) json_object_set(
        m, json_string_value(json_object_get(a, "token")), json_object_get(a, "logprob"));
    json_array_append_new(tops, m);
    json_array_append_new(offs, json_integer((json_int_t)off));
    off += t ? strlen(t) : 0;
  }
  return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs",
                   tops, "text_offset", offs);
}

/* A structured delta from the worker ({"reasoning_content"} or {"tool_calls":[…]}, OpenAI's shape),
 * or NULL for plain text. Only these two keys pass, and only with the right types. */
static json_t *worker_delta(const json_t *hdr) {
  json_t *d = json_object_get(hdr, "delta");
  if (!json_is_object(d)) return NULL;
  json_t *out = json_object();
  json_t *rc = json_object_get(d, "reasoning_content"), *tc = json_object_get(d, "tool_calls");
  if (json_is_string(rc)) json_object_set(out, "reasoning_content", rc);
  if (json_is_array(tc)) json_object_set(out, "tool_calls", tc);
  return out;
}

/* Fold one tool-call delta into the message's tool_calls (non-streamed answers): a delta with an
 * id starts a call, later ones append to its arguments. */
static void fold_tool_calls(json_t *calls, const json_t *tc) {
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

/* ---- generation (chat and completions) ---- */

typedef struct gen_job {
  sy_daemon *d;
  const matrix_model *model;
  worker *w;
  wreq *q;
  int fd;
  bool chat, include_usage;
  char id[48];
  long long created;
  sy_buf out;
  bool finished;
  ipc_msg first;
  bool has_first;
  req_obs obs;
  int status;          /* the HTTP status sent; 0 = none yet */
  bool has_keep_alive; /* the request's keep_alive, for the scheduler at release */
  int keep_alive_s;
  json_t *lp; /* streamed: log-probabilities waiting for their text's chunk */
} gen_job;

static void gen_job_free(void *cls) {
  gen_job *j = cls;
  if (!j->finished) {
    atomic_fetch_add(&j->d->cancelled, 1);
    metrics_cancelled(j->obs.mt, j->obs.model);
  }
  obs_end(&j->obs, j->status ? j->status : 499);
  if (j->has_first) ipc_msg_clear(&j->first);
  wreq_free(j->q);
  if (j->has_keep_alive) sched_keep_alive(j->d->sc, j->model, j->keep_alive_s);
  sched_release(j->d->sc, j->model, j->w);
  sy_buf_free(&j->out);
  json_decref(j->lp);
  free(j);
}

/* One streamed chunk: delta text (or NULL; or a structured delta, stolen), finish reason on the
 * last. */
static json_t *gen_chunk_delta(gen_job *j, const char *text, json_t *sdelta, const char *finish) {
  json_t *choice;
  if (j->chat) {
    json_t *delta = sdelta ? sdelta : json_object();
    if (text) json_object_set_new(delta, "content", json_string(text));
    choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs",
                       "finish_reason", finish ? json_string(finish) : json_null());
  } else {
    choice = json_pack("{s:i, s:s, s:n, s:o}", "index", 0, "text", text ? text : "", "logprobs",
                       "finish_reason", finish ? json_string(finish) : json_null());
  }
  if (choice && j->lp) { /* the tokens behind this text */
    json_object_set_new(choice, "logprobs", logprobs_json(j->lp, j->chat, 0));
    json_decref(j->lp);
    j->lp = NULL;
  }
  json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o]}", "id", j->id, "object",
                        j->chat ? "chat.completion.chunk" : "text_completion", "created",
                        (json_int_t)j->created, "model", j->model->name, "system_fingerprint",
                        "switchyard", "choices", choice);
  if (c && j->include_usage) json_object_set_new(c, "usage", json_null());
  return c;
}

static json_t *gen_chunk(gen_job *j, const char *text, const char *finish) {
  return gen_chunk_delta(j, text, NULL, finish);
}

static void emit(gen_job *j, json_t *chunk) {
  if (chunk) sse_append_json(&j->out, chunk);
  json_decref(chunk);
}

/* Turn one worker event into SSE text in j->out. */
static void gen_stream_event(gen_job *j, ipc_msg *m) {
  const char *op = ipc_op(m);
  if (strcmp(op, "delta") == 0) {
    const char *t = json_string_value(json_object_get(m->hdr, "text"));
    json_t *lp = json_object_get(m->hdr, "logprobs");
    if (json_is_array(lp)) {
      if (!j->lp) j->lp = json_array();
      json_array_extend(j->lp, lp);
    }
    json_t *sd = j->chat ? worker_delta(m->hdr) : NULL;
    if (sd && json_object_size(sd) > 0)
      emit(j, gen_chunk_delta(j, NULL, sd, NULL));
    else
      json_decref(sd);
    if (t && *t) emit(j, gen_chunk(j, t, NULL));
  } else if (strcmp(op, "done") == 0) {
    metrics_tokens(j->obs.mt, j->obs.model, jint(m->hdr, "prompt_tokens"),
                   jint(m->hdr, "completion_tokens"));
    emit(j, gen_chunk(j, NULL, finish_reason(m->hdr))); /* carries any log-probabilities left */
    if (j->include_usage) {
      json_t *u = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[], s:o}", "id", j->id, "object",
                            j->chat ? "chat.completion.chunk" : "text_completion", "created",
                            (json_int_t)j->created, "model", j->model->name, "system_fingerprint",
                            "switchyard", "choices", "usage", usage_json(m->hdr));
      emit(j, u);
    }
    sse_append_done(&j->out);
    j->finished = true;
  } else if (strcmp(op, "error") == 0) {
    api_error e;
    api_worker_error(m->hdr, &e);
    emit(j, api_error_json(&e));
    sse_append_done(&j->out);
    j->finished = true;
  }
}

static ssize_t gen_stream_read(void *cls, char *buf, size_t max) {
  gen_job *j = cls;
  while (j->out.len == 0) {
    if (j->finished) return HTTP_STREAM_END;
    ipc_msg m;
    if (j->has_first) {
      m = j->first;
      j->has_first = false;
    } else {
      bool hup = false;
      if (!wreq_wait(j->q, &m, j->fd, -1, &hup)) {
        if (hup) LOG_D("client went away: cancelling %s", j->id);
        return HTTP_STREAM_ABORT; /* gen_job_free cancels the worker request */
      }
    }
    gen_stream_event(j, &m);
    ipc_msg_clear(&m);
  }
  size_t n = j->out.len < max ? j->out.len : max;
  memcpy(buf, j->out.data, n);
  sy_buf_consume(&j->out, n);
  return (ssize_t)n;
}

static void gen_reply_whole(gen_job *j, http_req *r, ipc_msg *first) {
  sy_buf text = {0}, reasoning = {0};
  json_t *calls = json_array(), *lps = NULL;
  ipc_msg m = *first;
  memset(first, 0, sizeof *first);
  for (;;) {
    const char *op = ipc_op(&m);
    if (strcmp(op, "delta") == 0) {
      const char *t = json_string_value(json_object_get(m.hdr, "text"));
      if (t) sy_buf_puts(&text, t);
      json_t *lp = json_object_get(m.hdr, "logprobs");
      if (json_is_array(lp)) {
        if (!lps) lps = json_array();
        json_array_extend(lps, lp);
      }
      json_t *sd = j->chat ? worker_delta(m.hdr) : NULL;
      const char *rc = json_string_value(json_object_get(sd, "reasoning_content"));
      if (rc) sy_buf_puts(&reasoning, rc);
      if (json_object_get(sd, "tool_calls"))
        fold_tool_calls(calls, json_object_get(sd, "tool_calls"));
      json_decref(sd);
    } else if (strcmp(op, "done") == 0) {
      json_t *choice;
      if (j->chat) {
        bool has_calls = json_array_size(calls) > 0;
        json_t *msg = json_pack(
            "{s:s, s:o}", "role", "assistant", "content",
            has_calls && text.len == 0 ? json_null() : json_string(text.data ? text.data : ""));
        if (reasoning.len)
          json_object_set_new(msg, "reasoning_content",
                              json_stringn(reasoning.data, reasoning.len));
        if (has_calls) json_object_set(msg, "tool_calls", calls);
        choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "message", msg, "logprobs",
                           "finish_reason", finish_reason(m.hdr));
        if (choice && lps) json_object_set_new(choice, "logprobs", logprobs_json(lps, true, 0));
      } else {
        choice = json_pack("{s:i, s:s, s:n, s:s}", "index", 0, "text", text.data ? text.data : "",
                           "logprobs", "finish_reason", finish_reason(m.hdr));
        if (choice && lps) json_object_set_new(choice, "logprobs", logprobs_json(lps, false, 0));
      }
      json_t *resp =
          json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o], s:o}", "id", j->id, "object",
                    j->chat ? "chat.completion" : "text_completion", "created",
                    (json_int_t)j->created, "model", j->model->name, "system_fingerprint",
                    "switchyard", "choices", choice, "usage", usage_json(m.hdr));
      json_object_set_new(resp, "timings", timings_json(m.hdr));
      metrics_tokens(j->obs.mt, j->obs.model, jint(m.hdr, "prompt_tokens"),
                     jint(m.hdr, "completion_tokens"));
      j->status = 200;
      http_reply_json(r, 200, resp);
      j->finished = true;
      break;
    } else if (strcmp(op, "error") == 0) {
      api_error e;
      api_worker_error(m.hdr, &e);
      j->status = e.status;
      http_reply_error(r, &e);
      j->finished = true;
      break;
    }
    ipc_msg_clear(&m);
    bool hup = false;
    if (!wreq_wait(j->q, &m, j->fd, -1, &hup)) {
      http_reply_abort(r); /* the client went away; freeing the job cancels the request */
      break;
    }
  }
  ipc_msg_clear(&m);
  sy_buf_free(&text);
  sy_buf_free(&reasoning);
  json_decref(calls);
  json_decref(lps);
}

/* One input_audio part decoded (base64, then any format sy_audio_decode reads) to API_AUDIO_RATE
 * mono float, appended to pay. *seconds accumulates the request's audio. 0, or -1 + err. */
static int gen_audio(const matrix *mx, const json_t *part, size_t k, double *seconds, sy_buf *pay,
                     size_t *n, api_error *err) {
  size_t max = mx->max_upload_bytes ? mx->max_upload_bytes : SY_AUDIO_DEFAULT_MAX_BYTES;
  char e[256] = "";
  sy_audio a = {0};
  bool unsupported = false;
  int rc = api_audio_b64(json_object_get(part, "data"), max, API_AUDIO_RATE, API_MAX_AUDIO_SECONDS,
                         &a, &unsupported, e, sizeof e);
  if (rc != 0 || a.n < 2) {
    API_BAD(err, "messages", "invalid_audio", "audio %zu: could not decode the audio%s: %s", k,
            unsupported ? " (a format this build cannot read)" : "",
            rc ? e : "it holds no samples");
    sy_audio_free(&a);
    return -1;
  }
  *seconds += (double)a.n / API_AUDIO_RATE;
  rc = *seconds > API_MAX_AUDIO_SECONDS ? -1 : sy_buf_append(pay, a.pcm, a.n * sizeof(float));
  *n = a.n;
  sy_audio_free(&a);
  if (rc != 0) {
    API_BAD(err, "messages", "invalid_audio", "the audio is too long together (%d s at most)",
            API_MAX_AUDIO_SECONDS);
    return -1;
  }
  return 0;
}

/* A chat's media decoded here (a worker never parses an image or audio file) into one payload in
 * marker order: each image as RGB ("images": [{w, h}]), each audio part as API_AUDIO_RATE mono
 * float32 ("audios": [{n}]); with both kinds, every entry also has "index", its marker's position.
 * 0, or -1 + err (400 with the decoder's reason: http URLs, files outside limits.image_dir,
 * corrupt or oversized images or audio). */
static int gen_media(const matrix *mx, api_gen *g, sy_buf *pay, api_error *err) {
  size_t n = json_array_size(g->media), n_audio = 0, k_image = 0, k_audio = 0;
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) n_audio += json_is_object(json_array_get(g->media, i));
  bool mixed = n_audio > 0 && n_audio < n;
  sy_image_limits lim = {.max_bytes = (size_t)mx->max_image_bytes,
                         .max_pixels = (uint64_t)mx->max_image_pixels};
  json_t *dims = json_array(), *auds = json_array();
  double seconds = 0;
  pay->limit = IPC_MAX_PAYLOAD;
  for (size_t i = 0; i < n; i++) {
    const json_t *u = json_array_get(g->media, i);
    json_t *ent;
    if (json_is_object(u)) {
      size_t ns = 0;
      if (gen_audio(mx, u, ++k_audio, &seconds, pay, &ns, err) != 0) goto fail;
      json_array_append_new(auds, ent = json_pack("{s:I}", "n", (json_int_t)ns));
    } else {
      sy_image im = {0};
      char e[256];
      k_image++;
      if (sy_image_decode_url(json_string_value(u), json_string_length(u), mx->image_dir, &lim, &im,
                              e, sizeof e) != 0) {
        API_BAD(err, "messages", "invalid_image", "image %zu: %s", k_image, e);
        goto fail;
      }
      int rc = sy_buf_append(pay, im.rgb, (size_t)im.w * im.h * 3);
      json_array_append_new(
          dims, ent = json_pack("{s:I, s:I}", "w", (json_int_t)im.w, "h", (json_int_t)im.h));
      sy_image_free(&im);
      if (rc != 0) {
        API_BAD(err, "messages", "invalid_image",
                "the images are too large together (%u MiB of pixels at most)",
                IPC_MAX_PAYLOAD >> 20);
        goto fail;
      }
    }
    if (mixed && ent) json_object_set_new(ent, "index", json_integer((json_int_t)i));
  }
  if (json_array_size(dims)) json_object_set(g->msg, "images", dims);
  if (json_array_size(auds)) json_object_set(g->msg, "audios", auds);
  json_decref(dims);
  json_decref(auds);
  return 0;
fail:
  json_decref(dims);
  json_decref(auds);
  return -1;
}

/* Check req against its model, decode its media, get a worker: 0 with *g, *rgb, *w set; else
 * nothing is answered and err says why: 1 = the request is refused, 2 = the model could not be
 * acquired (loading failed, too large, queue full, ...). */
static int gen_prepare(sy_daemon *d, const matrix *mx, const json_t *req, bool chat, req_obs *obs,
                       api_gen *g, sy_buf *rgb, worker **w, api_error *err) {
  memset(rgb, 0, sizeof *rgb);
  if (api_parse_generate(mx, req, chat, g, err) != 0) {
    obs->model = obs_model_of(d, req);
    return 1;
  }
  obs->model = metrics_model(sched_metrics(d->sc), g->model->name);
  if (gen_media(mx, g, rgb, err) != 0) {
    sy_buf_free(rgb);
    api_gen_clear(g);
    return 1;
  }
  *w = sched_acquire(d->sc, g->model, err);
  if (!*w) {
    sy_buf_free(rgb);
    api_gen_clear(g);
    return 2;
  }
  return 0;
}

static void gen_run(sy_daemon *d, http_req *r, bool chat, req_obs *obs, api_gen *gp, sy_buf *rgbp,
                    worker *w);

/* A request to a router (api_router.c decides the route): served by the route's model, or when
 * that model cannot be acquired and the router allows it, by the next route of its fallback list
 * that accepts the request. The answer's "model" is the model that served. */
static void handle_routed(sy_daemon *d, const matrix *mx, http_req *r, const json_t *req, bool chat,
                          req_obs *obs, const matrix_router *rt) {
  api_route ar;
  if (!api_router_decide(d, mx, rt, req, chat, http_client_fd(r), &ar)) {
    atomic_fetch_add(&d->cancelled, 1);
    obs_end(obs, 499);
    http_reply_abort(r);
    return;
  }
  size_t cand[MATRIX_MAX_ROUTES];
  size_t n = router_candidates(rt, ar.route, cand, MATRIX_MAX_ROUTES);
  json_t *rq = json_copy((json_t *)req); /* shallow: only "model" changes */
  api_error first = {0};
  int first_model =
      METRICS_NO_MODEL; /* the answer is the first route's error: counted under its model */
  for (size_t i = 0; rq && i < n; i++) {
    const matrix_route *ro = &rt->routes[cand[i]];
    const matrix_model *mm = matrix_find(mx, ro->model);
    api_error err = {0};
    api_gen g;
    sy_buf rgb;
    worker *w = NULL;
    int rc = 1;
    if (!mm) {
      API_SERVER(&err, "model_not_found", "router %s: route %s names no model", rt->name, ro->name);
    } else {
      json_object_set_new(rq, "model", json_string(mm->name));
      rc = gen_prepare(d, mx, rq, chat, obs, &g, &rgb, &w, &err);
    }
    if (rc == 0) {
      router_by by = i ? ROUTER_BY_FALLBACK : ar.by;
      router_stats_decision(rt->name, ro->name, by);
      char hv[256], ms[32];
      snprintf(hv, sizeof hv, "%s/%s", rt->name, ro->name);
      snprintf(ms, sizeof ms, "%.3f", ar.ms);
      http_add_header(r, "X-Switchyard-Route", hv);
      http_add_header(r, "X-Switchyard-Route-By", router_by_name(by));
      http_add_header(r, "X-Switchyard-Route-Ms", ms);
      json_decref(rq);
      gen_run(d, r, chat, obs, &g, &rgb, w);
      return;
    }
    if (i == 0) {
      first = err;
      first_model = obs->model;
    }
    /* the request itself refused by the chosen model: its error. A route whose model cannot take
     * this kind of request (an image for a model without vision, a chat for a completion-only
     * model), and a fallback route that refuses it for any reason, are skipped; shutting down ends
     * the tries */
    bool kind = err.code &&
                (!strcmp(err.code, "unsupported_content") || !strcmp(err.code, "wrong_capability"));
    bool next = i + 1 < n && ((rc == 2 && !(err.code && !strcmp(err.code, "shutting_down"))) ||
                              (rc == 1 && (i > 0 || kind)));
    LOG_D("router %s: route %s (model %s) %s: %s%s", rt->name, ro->name, ro->model,
          rc == 2 ? "could not be acquired" : "refused the request", err.message,
          next ? "; trying the next route" : "");
    if (!next) break;
  }
  json_decref(rq);
  if (!first.status) API_SERVER(&first, "out_of_memory", "out of memory");
  obs->model = first_model;
  fail(r, obs, &first);
}

static void handle_generate(sy_daemon *d, http_req *r, const json_t *req, bool chat, req_obs *obs) {
  const matrix *mx = d->mx;
  const matrix_router *rt =
      matrix_find_router(mx, json_string_value(json_object_get(req, "model")));
  if (rt) {
    handle_routed(d, mx, r, req, chat, obs, rt);
    return;
  }
  api_error err = {0};
  api_gen g;
  sy_buf rgb;
  worker *w = NULL;
  if (gen_prepare(d, mx, req, chat, obs, &g, &rgb, &w, &err) != 0) {
    fail(r, obs, &err);
    return;
  }
  gen_run(d, r, chat, obs, &g, &rgb, w);
}

/* Serve a prepared request on w: submit, then answer whole or streamed. Owns g, rgb and w. */
static void gen_run(sy_daemon *d, http_req *r, bool chat, req_obs *obs, api_gen *gp, sy_buf *rgbp,
                    worker *w) {
  api_error err = {0};
  api_gen g = *gp;
  sy_buf rgb = *rgbp;
  gen_job *j = calloc(1, sizeof *j);
  if (!j) {
    sched_release(d->sc, g.model, w);
    api_gen_clear(&g);
    sy_buf_free(&rgb);
    API_SERVER(&err, "out_of_memory", "out of memory");
    fail(r, obs, &err);
    return;
  }
  j->d = d;
  j->model = g.model;
  j->w = w;
  j->chat = chat;
  j->include_usage = g.stream && g.include_usage;
  j->has_keep_alive = g.has_keep_alive;
  j->keep_alive_s = g.keep_alive_s;
  j->obs = *obs;
  j->fd = http_client_fd(r);
  j->created = (long long)time(NULL);
  api_random_id(j->id, sizeof j->id, chat ? "chatcmpl-" : "cmpl-");
  json_t *msg = g.msg;
  g.msg = NULL;
  api_gen_clear(&g);
  j->q = worker_submit_payload(w, msg, rgb.data, rgb.len, &err);
  sy_buf_free(&rgb);
  if (!j->q) {
    sched_release(d->sc, j->model, w);
    free(j);
    fail(r, obs, &err);
    return;
  }
  http_add_header(r, "X-Switchyard-Model", j->model->name);
  /* Wait for the first event before choosing the status: a prompt the worker refuses is a
   * proper HTTP error even when streaming was asked for. */
  bool hup = false;
  ipc_msg first;
  if (!wreq_wait(j->q, &first, j->fd, -1, &hup)) {
    gen_job_free(j); /* counts as cancelled */
    http_reply_abort(r);
    return;
  }
  if (strcmp(ipc_op(&first), "delta") == 0) metrics_ttft(obs->mt, obs->model, obs_elapsed(obs));
  if (strcmp(ipc_op(&first), "error") == 0) {
    api_error_set(&err, 500, NULL, NULL, NULL, "?");
    api_worker_error(first.hdr, &err);
    ipc_msg_clear(&first);
    j->finished = true;
    j->status = err.status;
    gen_job_free(j);
    http_reply_error(r, &err);
    return;
  }
  if (!g.stream) {
    gen_reply_whole(j, r, &first);
    gen_job_free(j);
    return;
  }
  /* the role chunk, then the first event */
  if (j->chat) {
    json_t *c = gen_chunk(j, NULL, NULL);
    json_t *delta = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
    json_object_set_new(delta, "role", json_string("assistant"));
    json_object_set_new(delta, "content", json_string(""));
    emit(j, c);
  }
  j->first = first;
  j->has_first = true;
  j->status = 200;
  http_reply_stream(r, 200, "text/event-stream", gen_stream_read, j, gen_job_free);
}

/* ---- embeddings ---- */

/* Send msg (stolen) to w and wait for its one reply (embed, rerank). True with the reply in *m
 * when it is not an error; false when the request already ended here: refused (counted and
 * answered, with err_param naming the field of a worker's refusal when given) or abandoned by
 * its client (counted as cancelled). The caller frees *q and *m either way. */
static bool one_reply(sy_daemon *d, http_req *r, req_obs *obs, worker *w, json_t *msg,
                      const char *err_param, wreq **q, ipc_msg *m) {
  api_error err = {0};
  bool hup = false;
  *q = worker_submit(w, msg, &err);
  if (!*q) {
    fail(r, obs, &err);
  } else if (!wreq_wait(*q, m, http_client_fd(r), -1, &hup)) {
    atomic_fetch_add(&d->cancelled, 1);
    metrics_cancelled(obs->mt, obs->model);
    obs_end(obs, 499);
    http_reply_abort(r);
  } else if (strcmp(ipc_op(m), "error") == 0) {
    api_worker_error(m->hdr, &err);
    if (err.param && err_param) err.param = err_param;
    fail(r, obs, &err);
  } else {
    return true;
  }
  return false;
}

static void handle_embed(sy_daemon *d, http_req *r, const json_t *req, req_obs *obs) {
  api_error err = {0};
  api_embed e;
  if (api_parse_embed(d->mx, req, &e, &err) != 0) {
    obs->model = obs_model_of(d, req);
    fail(r, obs, &err);
    return;
  }
  obs->model = metrics_model(sched_metrics(d->sc), e.model->name);
  worker *w = sched_acquire(d->sc, e.model, &err);
  if (!w) {
    api_embed_clear(&e);
    fail(r, obs, &err);
    return;
  }
  json_t *msg = e.msg;
  e.msg = NULL;
  wreq *q = NULL;
  ipc_msg m = {0};
  if (one_reply(d, r, obs, w, msg, NULL, &q, &m)) {
    long long n = jint(m.hdr, "n"), dim = jint(m.hdr, "dim");
    if (strcmp(ipc_op(&m), "embeddings") != 0 || n != (long long)e.n_inputs || dim <= 0 ||
        m.payload_len != (size_t)(n * dim) * sizeof(float)) {
      API_SERVER(&err, "bad_worker_reply", "the worker sent a malformed embeddings reply");
      fail(r, obs, &err);
    } else {
      const float *v = m.payload;
      json_t *data = json_array();
      for (long long i = 0; i < n; i++) {
        json_t *emb;
        if (e.base64) {
          char *b = sy_base64_encode(v + i * dim, (size_t)dim * sizeof(float));
          emb = json_string(b ? b : "");
          free(b);
        } else {
          emb = json_array();
          for (long long k = 0; k < dim; k++) json_array_append_new(emb, json_real(v[i * dim + k]));
        }
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", emb));
      }
      long long pt = jint(m.hdr, "prompt_tokens");
      metrics_tokens(obs->mt, obs->model, pt, 0);
      obs_end(obs, 200);
      http_add_header(r, "X-Switchyard-Model", e.model->name);
      http_reply_json(r, 200,
                      json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data,
                                "model", e.model->name, "usage", "prompt_tokens", (json_int_t)pt,
                                "total_tokens", (json_int_t)pt));
    }
  }
  ipc_msg_clear(&m);
  wreq_free(q);
  if (e.has_keep_alive) sched_keep_alive(d->sc, e.model, e.keep_alive_s);
  sched_release(d->sc, e.model, w);
}

/* ---- POST /v1/rerank ---- */

typedef struct rerank_hit {
  float score;
  size_t index;
} rerank_hit;

/* Score descending; equal scores keep the documents' order, so the answer is deterministic. */
static int rerank_cmp(const void *a, const void *b) {
  const rerank_hit *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* The answer: llama-server's (Jina/Cohere) object with "results", or TEI's bare array. */
static json_t *rerank_json(const api_rerank *rr, const float *scores, long long prompt_tokens) {
  rerank_hit *hits = malloc(rr->n_documents * sizeof *hits);
  if (!hits) return NULL;
  for (size_t i = 0; i < rr->n_documents; i++) hits[i] = (rerank_hit){scores[i], i};
  qsort(hits, rr->n_documents, sizeof *hits, rerank_cmp);
  json_t *results = json_array();
  for (size_t k = 0; k < rr->top_n; k++) {
    json_t *text = json_array_get(rr->documents, hits[k].index);
    json_t *h = json_pack("{s:I, s:f}", "index", (json_int_t)hits[k].index,
                          rr->tei ? "score" : "relevance_score", (double)hits[k].score);
    if (h && rr->return_documents) {
      if (rr->tei)
        json_object_set(h, "text", text);
      else
        json_object_set_new(h, "document", json_pack("{s:O}", "text", text));
    }
    json_array_append_new(results, h);
  }
  free(hits);
  if (rr->tei) return results;
  return json_pack("{s:s, s:s, s:o, s:{s:I, s:I}}", "object", "list", "model", rr->model->name,
                   "results", results, "usage", "prompt_tokens", (json_int_t)prompt_tokens,
                   "total_tokens", (json_int_t)prompt_tokens);
}

static void handle_rerank(sy_daemon *d, http_req *r, const json_t *req, req_obs *obs) {
  api_error err = {0};
  api_rerank rr;
  if (api_parse_rerank(d->mx, req, &rr, &err) != 0) {
    obs->model = obs_model_of(d, req);
    fail(r, obs, &err);
    return;
  }
  obs->model = metrics_model(sched_metrics(d->sc), rr.model->name);
  worker *w = sched_acquire(d->sc, rr.model, &err);
  if (!w) {
    api_rerank_clear(&rr);
    fail(r, obs, &err);
    return;
  }
  json_t *msg = rr.msg;
  rr.msg = NULL;
  wreq *q = NULL;
  ipc_msg m = {0};
  if (one_reply(d, r, obs, w, msg, "documents", &q, &m)) {
    /* the worker answers with an embeddings frame of one float (the score) per document */
    long long n = jint(m.hdr, "n"), pt = jint(m.hdr, "prompt_tokens");
    const float *v = m.payload;
    bool ok = strcmp(ipc_op(&m), "embeddings") == 0 && n == (long long)rr.n_documents &&
              jint(m.hdr, "dim") == 1 && m.payload_len == (size_t)n * sizeof(float);
    for (long long i = 0; ok && i < n; i++) ok = isfinite(v[i]);
    json_t *body = ok ? rerank_json(&rr, v, pt) : NULL;
    if (!body) {
      API_SERVER(&err, "bad_worker_reply",
                 "the worker sent a malformed or non-finite rerank reply");
      fail(r, obs, &err);
    } else {
      metrics_tokens(obs->mt, obs->model, pt, 0);
      obs_end(obs, 200);
      http_add_header(r, "X-Switchyard-Model", rr.model->name);
      http_reply_json(r, 200, body);
    }
  }
  ipc_msg_clear(&m);
  wreq_free(q);
  if (rr.has_keep_alive) sched_keep_alive(d->sc, rr.model, rr.keep_alive_s);
  sched_release(d->sc, rr.model, w);
  api_rerank_clear(&rr);
}

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

static void handle_models(sy_daemon *d, http_req *r, const char *id) {
  const matrix *mx = d->mx;
  if (id && matrix_find_router(mx, id)) {
    http_reply_json(r, 200, api_router_model_json(d, mx, matrix_find_router(mx, id)));
    return;
  }
  if (id) {
    const matrix_model *m = matrix_find(mx, id);
    const matrix_pipeline *pp = m ? NULL : matrix_find_pipeline(mx, id);
    if (pp) {
      http_reply_json(r, 200, pipe_model_json(pp, d->started));
      return;
    }
    if (!m) {
      api_error err;
      api_error_set(&err, 404, "invalid_request_error", "model_not_found", "model",
                    "The model '%.200s' does not exist", id);
      http_reply_error(r, &err);
      return;
    }
    http_reply_json(r, 200, model_json(d, m));
    return;
  }
  json_t *data = json_array();
  for (size_t i = 0; i < mx->n_models; i++)
    json_array_append_new(data, model_json(d, &mx->models[i]));
  for (size_t i = 0; i < mx->n_routers; i++)
    json_array_append_new(data, api_router_model_json(d, mx, &mx->routers[i]));
  for (size_t i = 0; i < mx->n_pipelines; i++)
    json_array_append_new(data, pipe_model_json(&mx->pipelines[i], d->started));
  http_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* ---- GET /metrics ---- */

static void handle_metrics(sy_daemon *d, http_req *r) {
  api_error err = {0};
  sy_buf out = {0};
  if (sched_metrics_render(d->sc, &out) != 0 || router_stats_render(&out) != 0) {
    sy_buf_free(&out);
    API_SERVER(&err, "out_of_memory", "could not render the metrics");
    http_reply_error(r, &err);
    return;
  }
  http_reply_buf(r, 200, METRICS_CONTENT_TYPE, &out);
}

/* POST /api/load and /api/unload {"model": NAME}: the admin side of the scheduler. */
static void handle_admin(sy_daemon *d, http_req *r, bool load) {
  api_error err = {0};
  size_t len;
  const char *body = http_body(r, &len);
  json_t *req = api_parse_body(body, len, &err);
  const matrix_model *m = req ? api_find_model(d->mx, req, ~0u, "loading", &err) : NULL;
  json_decref(req);
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
  size_t n = f->out.len < max ? f->out.len : max;
  memcpy(buf, f->out.data, n);
  sy_buf_consume(&f->out, n);
  return (ssize_t)n;
}

static void event_feed_free(void *cls) {
  event_feed *f = cls;
  sy_buf_free(&f->out);
  free(f);
}

static void handle_events(sy_daemon *d, http_req *r) {
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
      fail(r, &obs, &err);
      return;
    }
    size_t len;
    const char *body = http_body(r, &len);
    json_t *req = api_parse_body(body, len, &err);
    if (!req) {
      fail(r, &obs, &err);
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
      fail(r, &obs, &err);
    } else if (voice) { /* pipeline.c; counted as the audio endpoints are, under the pipeline's name
                         */
      pipe_voice_turn(d, r, mx, voice, req);
      obs.model = metrics_model(obs.mt, voice->name);
      unsigned st = http_reply_status(r);
      obs_end(&obs, st ? (int)st : 499);
    } else if (which >= 3)
      handle_rerank(d, r, req, &obs);
    else if (which == 2)
      handle_embed(d, r, req, &obs);
    else
      handle_generate(d, r, req, which == 0, &obs);
    json_decref(req);
    return;
  }
  bool asr =
      strcmp(path, "/v1/audio/transcriptions") == 0 || strcmp(path, "/v1/audio/translations") == 0;
  if (asr || strcmp(path, "/v1/audio/speech") == 0) { /* api_audio.c, api_speech.c */
    req_obs obs = {.mt = sched_metrics(d->sc),
                   .model = METRICS_NO_MODEL,
                   .ep = asr ? METRICS_EP_TRANSCRIBE : METRICS_EP_SPEECH};
    obs.t0 = sy_mono_s();
    if (asr)
      api_audio_handle(d, r, strcmp(path, "/v1/audio/translations") == 0);
    else
      api_speech_handle(d, r);
    /* counted when the reply is decided (a stream: at its start); the served model is the one
     * the handler named in X-Switchyard-Model */
    const char *served = http_reply_header(r, "X-Switchyard-Model");
    if (served) obs.model = metrics_model(obs.mt, served);
    unsigned st = http_reply_status(r);
    obs_end(&obs, st ? (int)st : 499);
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
      handle_admin(d, r, strcmp(path, "/api/load") == 0);
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
    handle_models(d, r, NULL);
  } else if (strncmp(path, "/v1/models/", 11) == 0) {
    handle_models(d, r, path + 11);
  } else if (strcmp(path, "/api/ps") == 0) {
    json_t *ps = sched_ps(d->sc);
    json_object_set_new(ps, "stats",
                        json_pack("{s:I, s:I}", "requests", (json_int_t)atomic_load(&d->requests),
                                  "cancelled", (json_int_t)atomic_load(&d->cancelled)));
    http_reply_json(r, 200, ps);
  } else if (strcmp(path, "/metrics") == 0) {
    handle_metrics(d, r);
  } else if (strcmp(path, "/api/events") == 0) {
    handle_events(d, r);
  } else {
    api_error_set(&err, 404, "invalid_request_error", "not_found", NULL,
                  "Unknown endpoint: %.16s %.200s", method, path);
    http_reply_error(r, &err);
  }
}
