/* embeddings.c — POST /v1/embeddings and the rerank endpoints (/v1/rerank, /rerank, /v1/reranking,
 * /reranking): one request, one reply from the worker, answered as one JSON body (api_int.h).
 * Exports api_embeddings_handle and api_rerank_handle. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "engines/relay.h"
#include "media/base64.h"
#include "parse/api_parse.h"

/* ---- embeddings ---- */

/* Send msg (stolen) to w and wait for its one reply (embed, rerank). True with the reply in *m
 * when it is not an error; false when the request already ended here: refused (counted and
 * answered, with err_param naming the field of a worker's refusal when given) or abandoned by
 * its client (counted as cancelled). The caller frees *q and *m either way. */
static bool one_reply(sy_daemon *d, http_req *r, req_obs *obs, worker *w, json_t *msg,
                      const char *err_param, wreq **q, ipc_msg *m) {
  api_error err = {0};
  relay rl; /* the one pump (engines/relay.h), for one event here */
  *q = worker_submit(w, msg, &err);
  relay_init(&rl, NULL, NULL, *q, http_client_fd(r));
  bool got = *q && relay_next(&rl, m);
  relay_deinit(&rl);
  if (!*q) {
    api_fail(r, obs, &err);
  } else if (!got) {
    atomic_fetch_add(&d->cancelled, 1);
    metrics_cancelled(obs->mt, obs->model);
    api_obs_end(obs, 499);
    http_reply_abort(r);
  } else if (strcmp(ipc_op(m), "error") == 0) {
    api_worker_error(m->hdr, &err);
    if (err.param && err_param) err.param = err_param;
    api_fail(r, obs, &err);
  } else {
    return true;
  }
  return false;
}

void api_embeddings_handle(sy_daemon *d, http_req *r, api_call *c) {
  req_obs *obs = &c->obs;
  api_error err = {0};
  api_embed e;
  atomic_fetch_add(&d->requests, 1);
  if (api_parse_embed(c->mx, &c->target, c->req, &e, &err) != 0) {
    obs->model = api_obs_model_of(d, &c->target);
    api_fail(r, obs, &err);
    return;
  }
  obs->model = metrics_model(sched_metrics(d->sc), e.model->name);
  worker *w = sched_acquire(d->sc, e.model, &err);
  if (!w) {
    api_embed_clear(&e);
    api_fail(r, obs, &err);
    return;
  }
  json_t *msg = e.msg;
  e.msg = NULL;
  wreq *q = NULL;
  ipc_msg m = {0};
  if (one_reply(d, r, obs, w, msg, NULL, &q, &m)) {
    long long n = api_jint(m.hdr, "n"), dim = api_jint(m.hdr, "dim");
    if (strcmp(ipc_op(&m), "embeddings") != 0 || n != (long long)e.n_inputs || dim <= 0 ||
        m.payload_len != (size_t)(n * dim) * sizeof(float)) {
      API_SERVER(&err, "bad_worker_reply", "the worker sent a malformed embeddings reply");
      api_fail(r, obs, &err);
    } else if (e.dimensions > dim) {
      API_BAD(&err, "dimensions", "invalid_value",
              "'dimensions' is %lld, more than model '%s' has (%lld)", e.dimensions, e.model->name,
              dim);
      api_fail(r, obs, &err);
    } else {
      /* "dimensions": each vector cut to its first `keep` values and renormalised, in place
       * (the reply is ours) */
      float *v = m.payload;
      long long keep = e.dimensions ? e.dimensions : dim;
      json_t *data = json_array();
      for (long long i = 0; i < n; i++) {
        json_t *emb;
        if (keep < dim) api_embed_truncate(v + i * dim, (size_t)keep);
        if (e.base64) {
          char *b = sy_base64_encode(v + i * dim, (size_t)keep * sizeof(float));
          emb = json_string(b ? b : "");
          free(b);
        } else {
          emb = json_array();
          for (long long k = 0; k < keep; k++)
            json_array_append_new(emb, json_real(v[i * dim + k]));
        }
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", emb));
      }
      long long pt = api_jint(m.hdr, "prompt_tokens");
      metrics_tokens(obs->mt, obs->model, pt, 0);
      api_obs_end(obs, 200);
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

void api_rerank_handle(sy_daemon *d, http_req *r, api_call *c) {
  req_obs *obs = &c->obs;
  api_error err = {0};
  api_rerank rr;
  atomic_fetch_add(&d->requests, 1);
  if (api_parse_rerank(c->mx, &c->target, c->req, &rr, &err) != 0) {
    obs->model = api_obs_model_of(d, &c->target);
    api_fail(r, obs, &err);
    return;
  }
  obs->model = metrics_model(sched_metrics(d->sc), rr.model->name);
  worker *w = sched_acquire(d->sc, rr.model, &err);
  if (!w) {
    api_rerank_clear(&rr);
    api_fail(r, obs, &err);
    return;
  }
  json_t *msg = rr.msg;
  rr.msg = NULL;
  wreq *q = NULL;
  ipc_msg m = {0};
  if (one_reply(d, r, obs, w, msg, "documents", &q, &m)) {
    /* the worker answers with an embeddings frame of one float (the score) per document */
    long long n = api_jint(m.hdr, "n"), pt = api_jint(m.hdr, "prompt_tokens");
    const float *v = m.payload;
    bool ok = strcmp(ipc_op(&m), "embeddings") == 0 && n == (long long)rr.n_documents &&
              api_jint(m.hdr, "dim") == 1 && m.payload_len == (size_t)n * sizeof(float);
    for (long long i = 0; ok && i < n; i++) ok = isfinite(v[i]);
    json_t *body = ok ? rerank_json(&rr, v, pt) : NULL;
    if (!body) {
      API_SERVER(&err, "bad_worker_reply",
                 "the worker sent a malformed or non-finite rerank reply");
      api_fail(r, obs, &err);
    } else {
      metrics_tokens(obs->mt, obs->model, pt, 0);
      api_obs_end(obs, 200);
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
