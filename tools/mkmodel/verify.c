/* verify.c — load a written model through llama.cpp and run it once (see verify.h).
 * Reads the model file; must never write one. */
#include "verify.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "llama.h"
#include "mtmd.h"

#define MK_VERIFY_TOKENS 64
#define MK_VERIFY_GEN 12

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  size_t len = s[0] < 0x80             ? 1
               : (s[0] & 0xe0) == 0xc0 ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
  if (len == 0 || len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
  }
  return len;
}

/* Append a token's text to a one-line summary: control characters and bytes that are not valid
 * UTF-8 (byte-level tokens often hold part of a character) are written as escapes. */
static void append_escaped(char *dst, size_t cap, const char *src, size_t n) {
  size_t len = strlen(dst);
  const unsigned char *u = (const unsigned char *)src;
  for (size_t i = 0; i < n && len + 5 < cap;) {
    size_t k = utf8_len(u + i, n - i);
    if (k == 1 && u[i] == '\n') {
      len += (size_t)snprintf(dst + len, cap - len, "\\n");
    } else if (k == 0 || (k == 1 && (u[i] < 0x20 || u[i] == 0x7f))) {
      len += (size_t)snprintf(dst + len, cap - len, "\\x%02x", u[i]);
      k = 1;
    } else {
      memcpy(dst + len, src + i, k);
      len += k;
    }
    i += k;
  }
  dst[len < cap ? len : cap - 1] = '\0';
}

static int tokenize(const struct llama_vocab *vocab, const char *text, llama_token *out, char *err,
                    size_t errlen) {
  int n = llama_tokenize(vocab, text, (int32_t)strlen(text), out, MK_VERIFY_TOKENS, true, false);
  if (n <= 0) snprintf(err, errlen, "tokenizing '%s' gave %d tokens", text, n);
  return n;
}

static int run_generate(struct llama_context *ctx, const struct llama_vocab *vocab, char *summary,
                        size_t summarylen, char *err, size_t errlen) {
  llama_token toks[MK_VERIFY_TOKENS];
  int n = tokenize(vocab, "The quick brown fox jumps over the lazy dog.", toks, err, errlen);
  if (n <= 0) return -1;
  int n_vocab = llama_vocab_n_tokens(vocab);
  snprintf(summary, summarylen, "%d prompt tokens, greedy: \"", n);
  int distinct = 0;
  llama_token prev = -1;
  struct llama_batch batch = llama_batch_get_one(toks, n);
  for (int step = 0; step < MK_VERIFY_GEN; step++) {
    if (llama_decode(ctx, batch) != 0) {
      snprintf(err, errlen, "llama_decode failed at step %d", step);
      return -1;
    }
    const float *logits = llama_get_logits_ith(ctx, -1);
    if (!logits) {
      snprintf(err, errlen, "no logits at step %d", step);
      return -1;
    }
    int best = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n_vocab; i++) {
      /* -inf: a head narrower than the vocabulary, padded (qwen3tts's codec head) */
      if (logits[i] == -INFINITY) continue;
      if (!isfinite(logits[i])) {
        snprintf(err, errlen, "logit %d is not finite at step %d", i, step);
        return -1;
      }
      if (logits[i] > hi) {
        hi = logits[i];
        best = i;
      }
      if (logits[i] < lo) lo = logits[i];
    }
    if (hi - lo < 1e-6f) {
      snprintf(err, errlen, "all logits equal (%g) at step %d: the weights carry no signal", hi,
               step);
      return -1;
    }
    if (best != prev) distinct++;
    prev = best;
    char piece[64];
    int k = llama_token_to_piece(vocab, best, piece, sizeof(piece), 0, true);
    if (k > 0) append_escaped(summary, summarylen, piece, (size_t)k);
    toks[0] = best;
    batch = llama_batch_get_one(toks, 1);
  }
  size_t len = strlen(summary);
  snprintf(summary + len, summarylen - len, "\" (%d token changes in %d steps)", distinct,
           MK_VERIFY_GEN);
  return 0;
}

/* n_embd: floats to read from the pooled output (n_embd_out, or n_cls_out with pooling rank). */
static int embed_one(struct llama_context *ctx, const struct llama_vocab *vocab, int n_embd,
                     const char *text, float *out, char *err, size_t errlen) {
  llama_token toks[MK_VERIFY_TOKENS];
  int n = tokenize(vocab, text, toks, err, errlen);
  if (n <= 0) return -1;
  /* encoder-only models (bert: no KV cache) run through llama_encode, decoders with pooling
   * (e.g. qwen3 with pooling last) through llama_decode */
  llama_memory_t mem = llama_get_memory(ctx);
  int encoder = mem == NULL;
  if (mem) llama_memory_clear(mem, true);
  int r = encoder ? llama_encode(ctx, llama_batch_get_one(toks, n))
                  : llama_decode(ctx, llama_batch_get_one(toks, n));
  if (r != 0) {
    snprintf(err, errlen, "%s failed (%d)", encoder ? "llama_encode" : "llama_decode", r);
    return -1;
  }
  const float *e = llama_get_embeddings_seq(ctx, 0);
  if (!e) {
    snprintf(err, errlen, "no pooled embedding (pooling type %d)", (int)llama_pooling_type(ctx));
    return -1;
  }
  for (int i = 0; i < n_embd; i++) {
    if (!isfinite(e[i])) {
      snprintf(err, errlen, "embedding component %d is not finite", i);
      return -1;
    }
    out[i] = e[i];
  }
  return 0;
}

static int run_embed(struct llama_context *ctx, const struct llama_model *model,
                     const struct llama_vocab *vocab, char *summary, size_t summarylen, char *err,
                     size_t errlen) {
  enum { MAX_EMBD = 65536 };
  static float a[MAX_EMBD], b[MAX_EMBD];
  int n_embd = llama_model_n_embd_out(model);
  if (n_embd <= 0 || n_embd > MAX_EMBD) {
    snprintf(err, errlen, "implausible embedding size %d", n_embd);
    return -1;
  }
  if (embed_one(ctx, vocab, n_embd, "The quick brown fox jumps over the lazy dog.", a, err,
                errlen) != 0 ||
      embed_one(ctx, vocab, n_embd, "A completely different sentence about databases.", b, err,
                errlen) != 0) {
    return -1;
  }
  double na = 0, nb = 0, dot = 0;
  for (int i = 0; i < n_embd; i++) {
    na += (double)a[i] * a[i];
    nb += (double)b[i] * b[i];
    dot += (double)a[i] * b[i];
  }
  if (na <= 0 || nb <= 0) {
    snprintf(err, errlen, "zero embedding");
    return -1;
  }
  double cos = dot / sqrt(na * nb);
  if (cos > 0.999999) {
    snprintf(err, errlen, "two different sentences gave the same embedding");
    return -1;
  }
  snprintf(summary, summarylen, "embedding n=%d, pooling %d, |e|=%.4f, cos(two sentences)=%.4f",
           n_embd, (int)llama_pooling_type(ctx), sqrt(na), cos);
  return 0;
}

/* Pooling rank: the pooled output is n_cls_out scores. Two different texts must score finite
 * and differently (the pair formatting is the runtime's business, not the file's). */
static int run_rank(struct llama_context *ctx, const struct llama_model *model,
                    const struct llama_vocab *vocab, char *summary, size_t summarylen, char *err,
                    size_t errlen) {
  float a[16], b[16];
  int n_out = (int)llama_model_n_cls_out(model);
  if (n_out < 1 || n_out > 16) {
    snprintf(err, errlen, "implausible classifier output count %d", n_out);
    return -1;
  }
  if (embed_one(ctx, vocab, n_out, "what is a fox? A fox is a small wild canine.", a, err,
                errlen) != 0 ||
      embed_one(ctx, vocab, n_out, "what is a fox? Databases store rows in pages.", b, err,
                errlen) != 0) {
    return -1;
  }
  if (a[0] == b[0]) {
    snprintf(err, errlen, "two different pairs gave the same score %g", (double)a[0]);
    return -1;
  }
  snprintf(summary, summarylen, "rank scores (n_cls_out %d): %.4f, %.4f", n_out, (double)a[0],
           (double)b[0]);
  return 0;
}

int mk_verify(const char *path, int embedding, int hybrid, int threads, char *summary,
              size_t summarylen, char *err, size_t errlen) {
  summary[0] = '\0';
  struct llama_model *model = mk_verify_load(path);
  if (!model) {
    snprintf(err, errlen, "llama.cpp cannot load %s (run with --verbose for its log)", path);
    return -1;
  }
  if (hybrid && !llama_model_is_hybrid(model)) {
    snprintf(err, errlen, "llama.cpp does not load %s as a hybrid (attention + recurrent) model",
             path);
    llama_model_free(model);
    return -1;
  }
  struct llama_context *ctx = mk_verify_context(model, 256, 256, threads, embedding);
  int rc = -1;
  if (!ctx) {
    snprintf(err, errlen, "llama.cpp cannot create a context for %s", path);
  } else {
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    if (!embedding)
      rc = run_generate(ctx, vocab, summary, summarylen, err, errlen);
    else if (llama_pooling_type(ctx) == LLAMA_POOLING_TYPE_RANK)
      rc = run_rank(ctx, model, vocab, summary, summarylen, err, errlen);
    else
      rc = run_embed(ctx, model, vocab, summary, summarylen, err, errlen);
    llama_free(ctx);
  }
  if (rc == 0 && hybrid) {
    size_t len = strlen(summary);
    snprintf(summary + len, summarylen - len, "; hybrid memory (attention + recurrent layers)");
  }
  llama_model_free(model);
  return rc;
}

struct llama_model *mk_verify_load(const char *path) {
  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  return llama_model_load_from_file(path, mp);
}

struct llama_context *mk_verify_context(struct llama_model *model, int n_ctx, int n_batch,
                                        int threads, int embeddings) {
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)n_ctx;
  cp.n_batch = (uint32_t)n_batch;
  cp.n_ubatch = (uint32_t)n_batch;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.embeddings = embeddings != 0;
  return llama_init_from_model(model, cp);
}

struct mtmd_context *mk_verify_mtmd(const char *path, const struct llama_model *model,
                                    int threads) {
  struct mtmd_context_params mcp = mtmd_context_params_default();
  mcp.use_gpu = false;
  mcp.n_threads = threads;
  mcp.print_timings = false;
  mcp.warmup = false;
  return mtmd_init_from_file(path, model, mcp);
}

int32_t mk_verify_find_token(const struct llama_vocab *vocab, const char *s) {
  int32_t n = llama_vocab_n_tokens(vocab);
  for (llama_token t = n - 1; t >= 0; t--) {
    const char *x = llama_vocab_get_text(vocab, t);
    if (x && strcmp(x, s) == 0) return t;
  }
  return -1;
}
