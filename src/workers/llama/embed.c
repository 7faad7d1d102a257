/* embed.c — the `embed` op: one L2-normalised vector per input string; and the `rerank` op: one
 * score per (query, document) pair, from a context with pooling rank (the classification head).
 * Every input is decoded whole in one ubatch (load makes n_ubatch = n_batch >= n_ctx), so pooling
 * sees all of its tokens. Models with a KV cache (causal LMs) decode one input at a time. Models
 * without one (BERT-like encoders) pack short inputs, one sequence id each, into one decode while
 * the batch stays under EMBED_PACK_ROWS tokens: below that ggml-cpu's attention handles every
 * query row on its own, skipping masked keys, so a text embeds to the same bits alone or packed;
 * at 64 query rows and more it switches to a tiled kernel whose sums depend on the neighbours.
 * Must never leave KV cells behind between requests, nor send a vector that is not normalised
 * (scores are sent as the engine gives them). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define EMBED_PACK_ROWS 64
#define EMBED_WHAT_LEN 64 /* bytes naming one input in an error message */

struct embed_state {
  struct llama_batch batch;
  int32_t cap;
};

int embed_init(worker *w) {
  embed_state *e = calloc(1, sizeof *e);
  if (!e) return -1;
  e->cap = w->n_batch;
  e->batch = llama_batch_init(e->cap, 0, 1);
  w->embed = e;
  return e->batch.token ? 0 : -1;
}

void embed_free(worker *w) {
  if (!w->embed) return;
  llama_batch_free(w->embed->batch);
  free(w->embed);
  w->embed = NULL;
}

/* The token lists of one request's inputs (rerank: its query-document pairs) and the floats they
 * give. */
typedef struct embed_job {
  size_t n;
  llama_token **toks;
  int32_t *lens;
  float *out;    /* n x dim */
  int64_t total; /* tokens in all */
} embed_job;

/* Room for n inputs of dim floats each. 0, or -1 having answered out of memory. */
static int job_alloc(worker *w, wio_id id, embed_job *j, size_t n, int32_t dim) {
  *j = (embed_job){.n = n};
  j->toks = calloc(n, sizeof *j->toks);
  j->lens = calloc(n, sizeof *j->lens);
  j->out = malloc(n * (size_t)dim * sizeof *j->out);
  if (j->toks && j->lens && j->out) return 0;
  wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
  return -1;
}

static void job_free(embed_job *j) {
  if (j->toks)
    for (size_t i = 0; i < j->n; i++) free(j->toks[i]);
  free(j->toks);
  free(j->lens);
  free(j->out);
}

/* Input i's tokens, named `what` in a message ("input[3]"), are not empty and fit the context and
 * one batch; counted in the total. 0, or -1 having answered. */
static int job_check(worker *w, wio_id id, embed_job *j, size_t i, const char *what) {
  int32_t len = j->lens[i];
  if (len == 0) {
    wio_error(&w->out, id, 400, "invalid_request", "%s is empty (0 tokens)", what);
    return -1;
  }
  if (len > w->n_ctx_seq || len > w->embed->cap) {
    wio_error(&w->out, id, 400, "context_length_exceeded",
              "This model's maximum context length is %d tokens; %s has %d tokens.", w->n_ctx_seq,
              what, len);
    return -1;
  }
  j->total += len;
  return 0;
}

/* L2-normalise src (dim floats) into dst; a zero vector stays zero. */
static void embed_normalise(const float *src, float *dst, int32_t dim) {
  double sum = 0;
  for (int32_t i = 0; i < dim; i++) sum += (double)src[i] * src[i];
  double norm = sqrt(sum);
  for (int32_t i = 0; i < dim; i++) dst[i] = norm > 0 ? (float)(src[i] / norm) : 0.0f;
}

/* Decode the n token lists (each fits one ubatch) and write dim floats per input to out: the
 * pooled vector L2-normalised, or with pooling rank the first score as it is. Returns 0, or -1
 * once it has answered the error (or the daemon is gone). */
static int embed_decode(worker *w, wio_id id, llama_token *const *toks, const int32_t *lens,
                        size_t n, float *out, int32_t dim) {
  embed_state *e = w->embed;
  llama_memory_t mem = llama_get_memory(w->ctx);
  int32_t pack = mem ? 1 : w->n_parallel;
  int32_t rows = e->cap < EMBED_PACK_ROWS ? e->cap : EMBED_PACK_ROWS;
  struct llama_batch *b = &e->batch;
  for (size_t i = 0; i < n;) {
    size_t first = i;
    b->n_tokens = 0;
    /* The first input always goes in (it fits: lens <= cap); more only while under `rows`. */
    while (i < n && (i == first || ((int32_t)(i - first) < pack && b->n_tokens + lens[i] < rows))) {
      for (int32_t k = 0; k < lens[i]; k++) {
        int32_t j = b->n_tokens;
        b->token[j] = toks[i][k];
        b->pos[j] = k;
        b->n_seq_id[j] = 1;
        b->seq_id[j][0] = (llama_seq_id)(i - first);
        b->logits[j] = 1;
        b->n_tokens = j + 1;
      }
      i++;
    }
    llama_memory_clear(mem, true);
    int rc = llama_decode(w->ctx, *b);
    if (rc != 0) {
      llama_memory_clear(mem, true);
      if (wio_inbox_ended(&w->in)) return -1; /* aborted: the daemon is gone */
      LOG_E("embed %lld: llama_decode failed (%d)", (long long)id, rc);
      wio_error(&w->out, id, 500, "decode_failed", "llama_decode failed");
      return -1;
    }
    int32_t last = -1; /* batch index of the last token of the current input */
    for (size_t k = first; k < i; k++) {
      last += lens[k];
      const float *v = w->pooling == LLAMA_POOLING_TYPE_NONE
                           ? llama_get_embeddings_ith(w->ctx, last)
                           : llama_get_embeddings_seq(w->ctx, (llama_seq_id)(k - first));
      if (!v) {
        llama_memory_clear(mem, true);
        LOG_E("embed %lld: the engine returned no embedding", (long long)id);
        wio_error(&w->out, id, 500, "embedding_failed", "the engine returned no embedding");
        return -1;
      }
      if (w->pooling == LLAMA_POOLING_TYPE_RANK)
        out[k * (size_t)dim] = v[0]; /* n_cls_out scores; the first is the relevance */
      else
        embed_normalise(v, out + k * (size_t)dim, dim);
    }
  }
  llama_memory_clear(mem, true);
  return 0;
}

void embed_run(worker *w, wio_id id, const json_t *hdr) {
  const json_t *input = json_object_get(hdr, "input");
  size_t n = json_is_string(input) ? 1 : json_array_size(input);
  if (!(json_is_string(input) || json_is_array(input)) || n == 0 || n > WK_MAX_EMBED_INPUTS) {
    wio_error(&w->out, id, 400, "invalid_request",
              "\"input\" must be a non-empty array of strings (at most %d)", WK_MAX_EMBED_INPUTS);
    return;
  }
  int32_t dim = w->n_embd;
  if (dim <= 0 || (double)n * dim * sizeof(float) > IPC_MAX_PAYLOAD) {
    wio_error(&w->out, id, 400, "invalid_request", "too many inputs for one request");
    return;
  }
  embed_job j;
  if (job_alloc(w, id, &j, n, dim) != 0) goto done;
  for (size_t i = 0; i < n; i++) {
    char what[EMBED_WHAT_LEN];
    const json_t *s = json_is_string(input) ? input : json_array_get(input, i);
    if (!json_is_string(s)) {
      wio_error(&w->out, id, 400, "invalid_request", "input[%zu] must be a string", i);
      goto done;
    }
    if (tok_tokenize(w, json_string_value(s), json_string_length(s), true, false, &j.toks[i],
                     &j.lens[i]) != 0) {
      wio_error(&w->out, id, 500, "tokenize_failed", "input[%zu] could not be tokenized", i);
      goto done;
    }
    snprintf(what, sizeof what, "input[%zu]", i);
    if (job_check(w, id, &j, i, what) != 0) goto done;
  }
  if (embed_decode(w, id, j.toks, j.lens, n, j.out, dim) != 0) goto done;
  LOG_D("embed %lld: %zu inputs, %lld tokens", (long long)id, n, (long long)j.total);
  reply_embeddings(w, id, (int32_t)n, dim, j.total, j.out);

done:
  job_free(&j);
}

/* ---- rerank ---- */

/* Bytes of tmpl with every "{query}" and "{document}" replaced (one pass: a placeholder inside the
 * query or document is text, not a placeholder); written to out when it is not NULL. */
static size_t rerank_fill(const char *tmpl, const char *q, size_t ql, const char *d, size_t dl,
                          char *out) {
  size_t n = 0;
  for (const char *p = tmpl; *p;) {
    const char *sub = NULL;
    size_t sl = 0, skip = 1;
    if (strncmp(p, "{query}", 7) == 0) {
      sub = q, sl = ql, skip = 7;
    } else if (strncmp(p, "{document}", 10) == 0) {
      sub = d, sl = dl, skip = 10;
    } else {
      sub = p, sl = 1;
    }
    if (out) memcpy(out + n, sub, sl);
    n += sl;
    p += skip;
  }
  return n;
}

/* The tokens of one pair. With the model's rerank template (tokenizer.chat_template.rerank):
 * the template with {query} and {document} filled in, special tokens parsed. Otherwise the
 * cross-encoder layout llama-server uses: [BOS] query [EOS] [SEP] document [EOS], each special
 * token only where the vocabulary adds it (EOS falls back to SEP). 0, or -1 having answered. */
static int rerank_pair(worker *w, wio_id id, size_t i, const char *tmpl, const json_t *query,
                       const llama_token *qt, int32_t nq, const json_t *doc, llama_token **out,
                       int32_t *n_out) {
  const char *q = json_string_value(query), *d = json_string_value(doc);
  size_t ql = json_string_length(query), dl = json_string_length(doc);
  if (tmpl) {
    size_t len = rerank_fill(tmpl, q, ql, d, dl, NULL);
    if (len > WK_MAX_RERANK_PROMPT) {
      wio_error(&w->out, id, 400, "context_length_exceeded",
                "the rerank prompt of documents[%zu] is %zu bytes (at most %d)", i, len,
                WK_MAX_RERANK_PROMPT);
      return -1;
    }
    char *text = malloc(len + 1);
    if (!text) {
      wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
      return -1;
    }
    rerank_fill(tmpl, q, ql, d, dl, text);
    text[len] = '\0';
    int rc = tok_tokenize(w, text, len, false, true, out, n_out);
    free(text);
    if (rc != 0)
      wio_error(&w->out, id, 500, "tokenize_failed", "documents[%zu] could not be tokenized", i);
    return rc;
  }
  llama_token *dt;
  int32_t nd;
  if (tok_tokenize(w, d, dl, false, false, &dt, &nd) != 0) {
    wio_error(&w->out, id, 500, "tokenize_failed", "documents[%zu] could not be tokenized", i);
    return -1;
  }
  const struct llama_vocab *v = w->vocab;
  llama_token eos = llama_vocab_eos(v), sep_tok = llama_vocab_sep(v);
  if (eos == LLAMA_TOKEN_NULL) eos = sep_tok;
  bool bos = llama_vocab_get_add_bos(v);
  bool add_eos = llama_vocab_get_add_eos(v) && eos != LLAMA_TOKEN_NULL;
  bool sep = llama_vocab_get_add_sep(v) && sep_tok != LLAMA_TOKEN_NULL;
  int64_t n = (int64_t)nq + nd + bos + 2 * add_eos + sep;
  llama_token *t = n <= INT32_MAX ? malloc((size_t)(n ? n : 1) * sizeof *t) : NULL;
  if (!t) {
    free(dt);
    wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
    return -1;
  }
  int32_t k = 0;
  if (bos) t[k++] = llama_vocab_bos(v);
  memcpy(t + k, qt, (size_t)nq * sizeof *t);
  k += nq;
  if (add_eos) t[k++] = eos;
  if (sep) t[k++] = sep_tok;
  memcpy(t + k, dt, (size_t)nd * sizeof *t);
  k += nd;
  if (add_eos) t[k++] = eos;
  free(dt);
  *out = t;
  *n_out = k;
  return 0;
}

void embed_rerank(worker *w, wio_id id, const json_t *hdr) {
  const json_t *query = json_object_get(hdr, "query"), *docs = json_object_get(hdr, "documents");
  size_t n = json_array_size(docs);
  if (!json_is_string(query) || !json_is_array(docs) || n == 0 || n > WK_MAX_EMBED_INPUTS) {
    wio_error(&w->out, id, 400, "invalid_request",
              "rerank needs a string \"query\" and 1 to %d string \"documents\"",
              WK_MAX_EMBED_INPUTS);
    return;
  }
  const char *tmpl = llama_model_chat_template(w->model, "rerank");
  llama_token *qt = NULL;
  int32_t nq = 0;
  embed_job j;
  if (job_alloc(w, id, &j, n, 1) != 0) goto done;
  if (!tmpl && tok_tokenize(w, json_string_value(query), json_string_length(query), false, false,
                            &qt, &nq) != 0) {
    wio_error(&w->out, id, 500, "tokenize_failed", "the query could not be tokenized");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *d = json_array_get(docs, i);
    char what[EMBED_WHAT_LEN];
    if (!json_is_string(d)) {
      wio_error(&w->out, id, 400, "invalid_request", "documents[%zu] must be a string", i);
      goto done;
    }
    if (rerank_pair(w, id, i, tmpl, query, qt, nq, d, &j.toks[i], &j.lens[i]) != 0) goto done;
    snprintf(what, sizeof what, "the query with documents[%zu]", i);
    if (job_check(w, id, &j, i, what) != 0) goto done;
  }
  if (embed_decode(w, id, j.toks, j.lens, n, j.out, 1) != 0) goto done;
  LOG_D("rerank %lld: %zu documents, %lld tokens%s", (long long)id, n, (long long)j.total,
        tmpl ? " (rerank template)" : "");
  reply_embeddings(w, id, (int32_t)n, 1, j.total, j.out);

done:
  job_free(&j);
  free(qt);
}
