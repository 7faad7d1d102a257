/* chat.c — POST /v1/chat/completions and /v1/completions (api_int.h): check the request against
 * its model (parse/api_parse.c), decode its images and audio (media/), get a worker, relay its
 * deltas (engines/relay.c) as one JSON answer or as server-sent events; a request naming a router
 * is decided by virtual/router_decide.c and served on the chosen route's model, with fallback; a
 * chat naming a voice pipeline is its turn (virtual/pipeline.c). The model is the one api.c
 * resolved (api_call.target), never looked up again here. Exports api_chat_handle. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/api_int.h"
#include "buf.h"
#include "engines/proxy.h"
#include "engines/relay.h"
#include "http/sse.h"
#include "log.h"
#include "media/audio.h"
#include "media/image.h"
#include "parse/api_parse.h"
#include "virtual/pipeline.h"
#include "virtual/router_decide.h"

/* OpenAI's usage; prompt_tokens_details.cached_tokens: prompt tokens reused from the model's
 * prompt cache (docs/PROMPT_CACHE.md), not computed again. */
static json_t *usage_json(const json_t *done) {
  long long p = api_jint(done, "prompt_tokens"), c = api_jint(done, "completion_tokens");
  return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)p, "completion_tokens",
                   (json_int_t)c, "total_tokens", (json_int_t)(p + c), "prompt_tokens_details",
                   "cached_tokens", (json_int_t)api_jint(done, "cached_tokens"));
}

/* The worker's own timings, named as llama-server names them, so a client can tell engine time
 * from the time spent around it. */
static json_t *timings_json(const json_t *done) {
  json_t *pm = json_object_get(done, "prompt_ms"), *gm = json_object_get(done, "gen_ms");
  return json_pack("{s:I, s:I, s:f, s:I, s:f}", "cache_n",
                   (json_int_t)api_jint(done, "cached_tokens"), "prompt_n",
                   (json_int_t)(api_jint(done, "prompt_tokens") - api_jint(done, "cached_tokens")),
                   "prompt_ms", json_is_number(pm) ? json_number_value(pm) : 0.0, "predicted_n",
                   (json_int_t)api_jint(done, "completion_tokens"), "predicted_ms",
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

/* ---- generation (chat and completions) ---- */

typedef struct gen_job {
  sy_daemon *d;
  const matrix_model *model;
  worker *w;
  wreq *q;
  relay rl; /* the worker's events to the client (its out: SSE waiting to be written) */
  bool chat, include_usage;
  char id[48];
  long long created;
  bool finished;
  req_obs obs;
  int status;          /* the HTTP status sent; 0 = none yet */
  bool has_keep_alive; /* the request's keep_alive, for the scheduler at release */
  int keep_alive_s;
  json_t *lp;            /* streamed: log-probabilities waiting for their text's chunk */
  const api_dialect *dl; /* another API's answer (api_chat_serve), or NULL: OpenAI's; points at
                           dl_own, a copy: a streamed answer outlives its handler's stack */
  api_dialect dl_own;
  void *tr; /* dl's translator */
} gen_job;

static void gen_job_free(void *cls) {
  gen_job *j = cls;
  if (!j->finished) {
    atomic_fetch_add(&j->d->cancelled, 1);
    metrics_cancelled(j->obs.mt, j->obs.model);
  }
  api_obs_end(&j->obs, j->status ? j->status : 499);
  relay_deinit(&j->rl);
  wreq_free(j->q);
  if (j->has_keep_alive) sched_keep_alive(j->d->sc, j->model, j->keep_alive_s);
  sched_release(j->d->sc, j->model, j->w);
  json_decref(j->lp);
  if (j->tr) j->dl->close(j->tr);
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

/* A generation's done: its tokens and its use of the prompt cache, counted. */
static void done_metrics(gen_job *j, const json_t *done) {
  metrics_tokens(j->obs.mt, j->obs.model, api_jint(done, "prompt_tokens"),
                 api_jint(done, "completion_tokens"));
  metrics_prompt_cache(j->obs.mt, j->obs.model, api_jint(done, "cached_tokens"));
}

static json_t *gen_chunk(gen_job *j, const char *text, const char *finish) {
  return gen_chunk_delta(j, text, NULL, finish);
}

static void emit(sy_buf *out, json_t *chunk) {
  if (chunk) sse_append_json(out, chunk);
  json_decref(chunk);
}

/* One worker event through the job's dialect (relay_collect's and relay_stream's function). */
static relay_rc gen_dialect_event(void *job, const ipc_msg *m, sy_buf *out) {
  gen_job *j = job;
  if (strcmp(ipc_op(m), "done") == 0 && !j->dl->count_only) done_metrics(j, m->hdr);
  relay_rc rc = j->dl->event(j->tr, m, out);
  if (rc == RELAY_END) j->finished = true;
  return rc;
}

/* The relay's translate function: one worker event as SSE text in out. */
static relay_rc gen_stream_event(void *job, const ipc_msg *m, sy_buf *out) {
  gen_job *j = job;
  if (j->dl) return gen_dialect_event(j, m, out);
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
      emit(out, gen_chunk_delta(j, NULL, sd, NULL));
    else
      json_decref(sd);
    if (t && *t) emit(out, gen_chunk(j, t, NULL));
  } else if (strcmp(op, "done") == 0) {
    done_metrics(j, m->hdr);
    emit(out, gen_chunk(j, NULL, finish_reason(m->hdr))); /* carries any log-probabilities left */
    if (j->include_usage) {
      json_t *u = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[], s:o}", "id", j->id, "object",
                            j->chat ? "chat.completion.chunk" : "text_completion", "created",
                            (json_int_t)j->created, "model", j->model->name, "system_fingerprint",
                            "switchyard", "choices", "usage", usage_json(m->hdr));
      emit(out, u);
    }
    sse_append_done(out);
    j->finished = true;
    return RELAY_END;
  } else if (strcmp(op, "error") == 0) {
    api_error e;
    api_worker_error(m->hdr, &e);
    emit(out, api_error_json(&e));
    sse_append_done(out);
    j->finished = true;
    return RELAY_END;
  }
  return RELAY_MORE;
}

static const relay_ops gen_stream_ops = {.event = gen_stream_event, .free = gen_job_free};

/* A whole answer being collected (relay_collect's ud): the deltas so far; the last frame decides
 * the reply (resp, or err). */
typedef struct gen_whole {
  gen_job *j;
  sy_buf text, reasoning;
  json_t *calls, *lps;
  json_t *resp;  /* done: the answer */
  api_error err; /* error: the worker's, mapped */
} gen_whole;

static relay_rc gen_whole_event(void *ud, const ipc_msg *m, sy_buf *out) {
  (void)out;
  gen_whole *w = ud;
  gen_job *j = w->j;
  const char *op = ipc_op(m);
  if (strcmp(op, "delta") == 0) {
    const char *t = json_string_value(json_object_get(m->hdr, "text"));
    if (t) sy_buf_puts(&w->text, t);
    json_t *lp = json_object_get(m->hdr, "logprobs");
    if (json_is_array(lp)) {
      if (!w->lps) w->lps = json_array();
      json_array_extend(w->lps, lp);
    }
    json_t *sd = j->chat ? worker_delta(m->hdr) : NULL;
    const char *rc = json_string_value(json_object_get(sd, "reasoning_content"));
    if (rc) sy_buf_puts(&w->reasoning, rc);
    if (json_object_get(sd, "tool_calls"))
      api_fold_tool_calls(w->calls, json_object_get(sd, "tool_calls"));
    json_decref(sd);
  } else if (strcmp(op, "done") == 0) {
    json_t *choice;
    if (j->chat) {
      bool has_calls = json_array_size(w->calls) > 0;
      json_t *msg =
          json_pack("{s:s, s:o}", "role", "assistant", "content",
                    has_calls && w->text.len == 0 ? json_null()
                                                  : json_string(w->text.data ? w->text.data : ""));
      if (w->reasoning.len)
        json_object_set_new(msg, "reasoning_content",
                            json_stringn(w->reasoning.data, w->reasoning.len));
      if (has_calls) json_object_set(msg, "tool_calls", w->calls);
      choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "message", msg, "logprobs",
                         "finish_reason", finish_reason(m->hdr));
      if (choice && w->lps) json_object_set_new(choice, "logprobs", logprobs_json(w->lps, true, 0));
    } else {
      choice =
          json_pack("{s:i, s:s, s:n, s:s}", "index", 0, "text", w->text.data ? w->text.data : "",
                    "logprobs", "finish_reason", finish_reason(m->hdr));
      if (choice && w->lps)
        json_object_set_new(choice, "logprobs", logprobs_json(w->lps, false, 0));
    }
    w->resp = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o], s:o}", "id", j->id, "object",
                        j->chat ? "chat.completion" : "text_completion", "created",
                        (json_int_t)j->created, "model", j->model->name, "system_fingerprint",
                        "switchyard", "choices", choice, "usage", usage_json(m->hdr));
    json_object_set_new(w->resp, "timings", timings_json(m->hdr));
    done_metrics(j, m->hdr);
    return RELAY_END;
  } else if (strcmp(op, "error") == 0) {
    api_worker_error(m->hdr, &w->err);
    return RELAY_END;
  }
  return RELAY_MORE;
}

/* The whole answer in the job's dialect: the events collected, then one reply. */
static void gen_reply_dialect(gen_job *j, http_req *r) {
  api_error err = {0};
  json_t *body = NULL;
  if (relay_collect(&j->rl, gen_dialect_event, j) != RELAY_END) {
    http_reply_abort(r); /* the client went away; freeing the job cancels the request */
    return;
  }
  j->finished = true;
  if ((body = j->dl->reply(j->tr, &err))) {
    j->status = 200;
    http_reply_json(r, 200, body);
  } else {
    j->status = err.status;
    http_reply_error(r, &err);
  }
}

/* The whole answer: the events collected (the first one is put back in j->rl), then one reply. */
static void gen_reply_whole(gen_job *j, http_req *r) {
  if (j->dl) {
    gen_reply_dialect(j, r);
    return;
  }
  gen_whole w = {.j = j, .calls = json_array()};
  if (relay_collect(&j->rl, gen_whole_event, &w) != RELAY_END) {
    http_reply_abort(r); /* the client went away; freeing the job cancels the request */
  } else if (w.resp) {
    j->status = 200;
    j->finished = true;
    http_reply_json(r, 200, w.resp);
  } else {
    j->status = w.err.status;
    j->finished = true;
    http_reply_error(r, &w.err);
  }
  sy_buf_free(&w.text);
  sy_buf_free(&w.reasoning);
  json_decref(w.calls);
  json_decref(w.lps);
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
static int gen_prepare(sy_daemon *d, const matrix *mx, const api_target *t, const json_t *req,
                       bool chat, const api_dialect *dl, req_obs *obs, api_gen *g, sy_buf *rgb,
                       worker **w, api_error *err) {
  memset(rgb, 0, sizeof *rgb);
  if (api_parse_generate(mx, t, req, chat, g, err) != 0) {
    obs->model = api_obs_model_of(d, t);
    return 1;
  }
  if (dl && dl->count_only) json_object_set_new(g->msg, "count_only", json_true());
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

static void gen_run(sy_daemon *d, http_req *r, bool chat, const api_dialect *dl, req_obs *obs,
                    api_gen *gp, sy_buf *rgbp, worker *w);

/* A router's route ro leads to peer p's model: the client's own request (orig, its body as it came
 * to its route, which may be another API's: the peer speaks them all) forwarded with "model" set
 * to the route's model, the route's headers added to the answer. 0 when answered (the peer's
 * answer, or an error); 2 when the peer could not be reached and fall_back (nothing answered, err:
 * the 503), as a local route's model that cannot be acquired. */
static int routed_to_peer(sy_daemon *d, http_req *r, const matrix_router *rt,
                          const matrix_route *ro, router_by by, const router_decision *ar, peer *p,
                          const json_t *orig, bool fall_back, api_error *err) {
  json_t *fwd = json_copy((json_t *)orig); /* shallow: only "model" changes */
  char *body = NULL;
  if (fwd && json_object_set_new(fwd, "model", json_string(ro->model)) == 0)
    body = json_dumps(fwd, JSON_COMPACT);
  json_decref(fwd);
  if (!body) {
    API_SERVER(err, "out_of_memory", "out of memory");
    http_reply_error(r, err);
    return 0;
  }
  char hv[256], ms[32];
  snprintf(hv, sizeof hv, "%s/%s", rt->name, ro->name);
  snprintf(ms, sizeof ms, "%.3f", ar->ms);
  proxy_peer_req q = {
      .model = ro->model,
      .body = body,
      .len = strlen(body),
      .fall_back = fall_back,
      .hdr_names = {"X-Switchyard-Route", "X-Switchyard-Route-By", "X-Switchyard-Route-Ms"},
      .hdr_values = {hv, router_by_name(by), ms},
      .n_hdr = 3};
  int rc = proxy_peer(d, r, p, &q, err);
  free(body);
  if (rc == PROXY_UNREACHABLE) return 2;
  router_stats_decision(rt->name, ro->name, by);
  return 0;
}

/* A request to a router (router_decide.c decides the route): served by the route's model, or when
 * that model cannot be acquired and the router allows it, by the next route of its fallback list
 * that accepts the request. The answer's "model" is the model that served. */
static void handle_routed(sy_daemon *d, const matrix *mx, http_req *r, const json_t *req, bool chat,
                          const api_dialect *dl, req_obs *obs, const matrix_router *rt,
                          const json_t *orig) {
  router_decision ar;
  if (!router_decide(d, mx, rt, req, chat, http_client_fd(r), &ar)) {
    atomic_fetch_add(&d->cancelled, 1);
    api_obs_end(obs, 499);
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
    peer *p = mm ? NULL : peers_find(d->peers, ro->model);
    if (p) { /* a peer's model: the request as the client sent it, with the route's model */
      router_by by = i ? ROUTER_BY_FALLBACK : ar.by;
      rc = routed_to_peer(d, r, rt, ro, by, &ar, p, orig, i + 1 < n, &err);
      if (rc == 0) {
        api_obs_end(obs, http_reply_status(r) ? (int)http_reply_status(r) : 499);
        json_decref(rq);
        return;
      }
      obs->model = METRICS_NO_MODEL;
    } else if (!mm) {
      API_SERVER(&err, "model_not_found", "router %s: route %s names no model", rt->name, ro->name);
    } else {
      api_target mt = {
          .kind = mm->engine == MATRIX_ENGINE_EXTERNAL ? API_TARGET_EXTERNAL : API_TARGET_MODEL,
          .model = mm};
      json_object_set_new(rq, "model", json_string(mm->name));
      rc = gen_prepare(d, mx, &mt, rq, chat, dl, obs, &g, &rgb, &w, &err);
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
      gen_run(d, r, chat, dl, obs, &g, &rgb, w);
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
  api_fail(r, obs, &first);
}

/* A chat naming a voice pipeline: its turn (pipeline.c), counted as the audio endpoints are, under
 * the pipeline's name. Any other pipeline is refused here. */
static void handle_pipeline(sy_daemon *d, http_req *r, api_call *c, bool chat) {
  const matrix_pipeline *p = c->target.pipeline;
  if (chat && p->kind == MATRIX_PIPE_VOICE) {
    pipe_voice_turn(d, r, c->mx, p, c->req);
    c->obs.model = metrics_model(c->obs.mt, p->name);
    unsigned st = http_reply_status(r);
    api_obs_end(&c->obs, st ? (int)st : 499);
    return;
  }
  api_error err;
  api_error_set(&err, 400, "invalid_request_error", "wrong_capability", "model",
                "'%s' is a %s pipeline: %s", p->name, matrix_pipeline_kind_name(p->kind),
                p->kind == MATRIX_PIPE_VOICE ? "use it with /v1/chat/completions"
                                             : "use it with /v1/audio/transcriptions");
  api_fail(r, &c->obs, &err);
}

/* A chat (req: its body) or completion to c's target, answered in OpenAI's shape or dl's. */
static void serve(sy_daemon *d, http_req *r, api_call *c, const json_t *req, bool chat,
                  const api_dialect *dl) {
  atomic_fetch_add(&d->requests, 1);
  api_error err = {0};
  if (dl && c->target.kind == API_TARGET_PIPELINE) {
    API_BAD(&err, "model", "wrong_capability",
            "'%s' is a pipeline: use it with /v1/chat/completions or /v1/audio/transcriptions",
            c->target.pipeline->name);
    api_fail(r, &c->obs, &err);
    return;
  }
  if (dl && c->target.kind == API_TARGET_EXTERNAL) {
    API_BAD(&err, "model", "wrong_capability",
            "model '%s' is an external engine: only its own routes are relayed to it",
            c->target.model->name);
    c->obs.model = api_obs_model_of(d, &c->target);
    api_fail(r, &c->obs, &err);
    return;
  }
  if (c->target.kind == API_TARGET_PIPELINE) {
    handle_pipeline(d, r, c, chat);
    return;
  }
  if (c->target.kind == API_TARGET_ROUTER) {
    handle_routed(d, c->mx, r, req, chat, dl, &c->obs, c->target.router, c->req);
    return;
  }
  api_gen g;
  sy_buf rgb;
  worker *w = NULL;
  if (gen_prepare(d, c->mx, &c->target, req, chat, dl, &c->obs, &g, &rgb, &w, &err) != 0) {
    api_fail(r, &c->obs, &err);
    return;
  }
  gen_run(d, r, chat, dl, &c->obs, &g, &rgb, w);
}

void api_chat_handle(sy_daemon *d, http_req *r, api_call *c, bool chat) {
  serve(d, r, c, c->req, chat, NULL);
}

void api_chat_serve(sy_daemon *d, http_req *r, api_call *c, const json_t *req,
                    const api_dialect *dl) {
  serve(d, r, c, req, !dl->completion, dl);
}

/* Serve a prepared request on w: submit, then answer whole or streamed. Owns g, rgb and w. */
static void gen_run(sy_daemon *d, http_req *r, bool chat, const api_dialect *dl, req_obs *obs,
                    api_gen *gp, sy_buf *rgbp, worker *w) {
  api_error err = {0};
  api_gen g = *gp;
  sy_buf rgb = *rgbp;
  gen_job *j = calloc(1, sizeof *j);
  if (!j) {
    sched_release(d->sc, g.model, w);
    api_gen_clear(&g);
    sy_buf_free(&rgb);
    API_SERVER(&err, "out_of_memory", "out of memory");
    api_fail(r, obs, &err);
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
  j->created = (long long)time(NULL);
  api_random_id(j->id, sizeof j->id, chat ? "chatcmpl-" : "cmpl-");
  if (dl) {
    j->dl_own = *dl;
    j->dl = &j->dl_own;
  }
  if (dl && !(j->tr = dl->open(j->model->name, g.stream, dl->ud))) {
    sched_release(d->sc, j->model, w);
    api_gen_clear(&g);
    sy_buf_free(&rgb);
    free(j);
    API_SERVER(&err, "out_of_memory", "out of memory");
    api_fail(r, obs, &err);
    return;
  }
  json_t *msg = g.msg;
  g.msg = NULL;
  api_gen_clear(&g);
  j->q = worker_submit_payload(w, msg, rgb.data, rgb.len, &err);
  sy_buf_free(&rgb);
  if (!j->q) {
    sched_release(d->sc, j->model, w);
    if (j->tr) dl->close(j->tr);
    free(j);
    api_fail(r, obs, &err);
    return;
  }
  relay_init(&j->rl, &gen_stream_ops, j, j->q, http_client_fd(r));
  http_add_header(r, "X-Switchyard-Model", j->model->name);
  /* Wait for the first event before choosing the status: a prompt the worker refuses is a
   * proper HTTP error even when streaming was asked for. */
  ipc_msg first;
  if (!relay_next(&j->rl, &first)) {
    gen_job_free(j); /* counts as cancelled */
    http_reply_abort(r);
    return;
  }
  if (strcmp(ipc_op(&first), "delta") == 0) metrics_ttft(obs->mt, obs->model, api_obs_elapsed(obs));
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
  relay_put_back(&j->rl, &first);
  if (!g.stream) {
    gen_reply_whole(j, r);
    gen_job_free(j);
    return;
  }
  /* the role chunk, then the first event (a dialect writes its own start) */
  if (j->chat && !j->dl) {
    json_t *c = gen_chunk(j, NULL, NULL);
    json_t *delta = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
    json_object_set_new(delta, "role", json_string("assistant"));
    json_object_set_new(delta, "content", json_string(""));
    emit(&j->rl.out, c);
  }
  j->status = 200;
  relay_stream(&j->rl, r, 200, dl && dl->content_type ? dl->content_type : "text/event-stream");
}
