/* embed.c — the `embed` op: one L2-normalised vector per input string.
 * Every input is decoded whole in one ubatch (load makes n_ubatch = n_batch >= n_ctx), so pooling
 * sees all of its tokens. Models with a KV cache (causal LMs) decode one input at a time. Models
 * without one (BERT-like encoders) pack short inputs, one sequence id each, into one decode while
 * the batch stays under EMBED_PACK_ROWS tokens: below that ggml-cpu's attention handles every
 * query row on its own, skipping masked keys, so a text embeds to the same bits alone or packed;
 * at 64 query rows and more it switches to a tiled kernel whose sums depend on the neighbours.
 * Must never leave KV cells behind between requests, nor send a vector that is not normalised. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define EMBED_PACK_ROWS 64

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

/* L2-normalise src (dim floats) into dst; a zero vector stays zero. */
static void embed_normalise(const float *src, float *dst, int32_t dim) {
  double sum = 0;
  for (int32_t i = 0; i < dim; i++) sum += (double)src[i] * src[i];
  double norm = sqrt(sum);
  for (int32_t i = 0; i < dim; i++) dst[i] = norm > 0 ? (float)(src[i] / norm) : 0.0f;
}

void embed_run(worker *w, int64_t id, const json_t *hdr) {
  embed_state *e = w->embed;
  const json_t *input = json_object_get(hdr, "input");
  size_t n = json_is_string(input) ? 1 : json_array_size(input);
  if (!(json_is_string(input) || json_is_array(input)) || n == 0 || n > WK_MAX_EMBED_INPUTS) {
    reply_error(w, id, 400, "invalid_request",
                "\"input\" must be a non-empty array of strings (at most %d)", WK_MAX_EMBED_INPUTS);
    return;
  }
  int32_t dim = w->n_embd;
  if (dim <= 0 || (double)n * dim * sizeof(float) > IPC_MAX_PAYLOAD) {
    reply_error(w, id, 400, "invalid_request", "too many inputs for one request");
    return;
  }
  llama_token **toks = calloc(n, sizeof *toks);
  int32_t *lens = calloc(n, sizeof *lens);
  float *out = malloc(n * (size_t)dim * sizeof *out);
  int64_t total = 0;
  if (!toks || !lens || !out) {
    reply_error(w, id, 500, "out_of_memory", "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *s = json_is_string(input) ? input : json_array_get(input, i);
    if (!json_is_string(s)) {
      reply_error(w, id, 400, "invalid_request", "input[%zu] must be a string", i);
      goto done;
    }
    if (engine_tokenize(w, json_string_value(s), json_string_length(s), true, false, &toks[i],
                        &lens[i]) != 0) {
      reply_error(w, id, 500, "tokenize_failed", "input[%zu] could not be tokenized", i);
      goto done;
    }
    if (lens[i] == 0) {
      reply_error(w, id, 400, "invalid_request", "input[%zu] is empty (0 tokens)", i);
      goto done;
    }
    if (lens[i] > w->n_ctx_seq || lens[i] > e->cap) {
      reply_error(w, id, 400, "context_length_exceeded",
                  "This model's maximum context length is %d tokens; input[%zu] has %d tokens.",
                  w->n_ctx_seq, i, lens[i]);
      goto done;
    }
    total += lens[i];
  }

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
      if (inbox_ended(&w->in)) goto done; /* aborted: the daemon is gone */
      LOG_E("embed %lld: llama_decode failed (%d)", (long long)id, rc);
      reply_error(w, id, 500, "decode_failed", "llama_decode failed");
      goto done;
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
        reply_error(w, id, 500, "embedding_failed", "the engine returned no embedding");
        goto done;
      }
      embed_normalise(v, out + k * (size_t)dim, dim);
    }
  }
  llama_memory_clear(mem, true);
  LOG_D("embed %lld: %zu inputs, %lld tokens", (long long)id, n, (long long)total);
  reply_embeddings(w, id, (int32_t)n, dim, total, out);

done:
  if (toks)
    for (size_t i = 0; i < n; i++) free(toks[i]);
  free(toks);
  free(lens);
  free(out);
}
