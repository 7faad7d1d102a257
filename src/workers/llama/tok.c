/* tok.c — text to tokens and back for the loaded vocabulary: tokenising a string (in pieces
 * when it is long: tok.h says why and when that gives the same tokens), and appending one token's
 * text to a growing buffer. A leaf of the worker: it calls llama.h only, never a file above it
 * (engine, gen, embed, speech, chat). Must never write past the buffers it grows. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tok.h"
#include "worker.h"

/* ---- one call ---- */

/* Room for need more tokens in *toks (n used, cap allocated). 0 or -1. */
static int tok_room(llama_token **toks, int32_t n, int32_t *cap, int32_t need) {
  if (*cap - n >= need) return 0;
  if ((int64_t)n + need > INT32_MAX / 2) return -1;
  llama_token *t2 = realloc(*toks, (size_t)(n + need) * sizeof **toks);
  if (!t2) return -1;
  *toks = t2;
  *cap = n + need;
  return 0;
}

/* Append llama_tokenize(text) to *toks (n used, cap allocated; grown as needed). 0 or -1. */
static int tok_append(const struct llama_vocab *v, const char *text, size_t len, bool add_special,
                      bool parse_special, llama_token **toks, int32_t *n, int32_t *cap) {
  if (len > (size_t)INT32_MAX / 2) return -1;
  int32_t need = (int32_t)len + 8;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (tok_room(toks, *n, cap, need) != 0) return -1;
    int32_t got =
        llama_tokenize(v, text, (int32_t)len, *toks + *n, *cap - *n, add_special, parse_special);
    if (got >= 0) {
      *n += got;
      return 0;
    }
    if (got == INT32_MIN) return -1;
    need = -got; /* too small: exactly this many */
  }
  return -1;
}

/* ---- in pieces ---- */

/* Whether the special token text s (m bytes) could take part of an occurrence of t (n bytes)
 * before the partition reaches t: it contains t, or one's end is the other's start. */
static bool overlaps(const char *s, size_t m, const char *t, size_t n) {
  if (memmem(s, m, t, n)) return true;
  for (size_t k = 1; k < n; k++) {
    size_t tail = n - k; /* t's last tail bytes start s, or s ends with t's first k bytes */
    if (m >= tail && memcmp(s, t + k, tail) == 0) return true;
    if (m >= k && memcmp(s + m - k, t, k) == 0) return true;
  }
  return false;
}

#define TOK_SPECIAL \
  (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED | LLAMA_TOKEN_ATTR_UNKNOWN)

void tok_cut_init(tok_cut *c, const struct llama_vocab *v, size_t piece_bytes) {
  memset(c, 0, sizeof *c);
  c->piece_bytes = piece_bytes;
  enum llama_vocab_type type = llama_vocab_type(v);
  if (type != LLAMA_VOCAB_TYPE_BPE && type != LLAMA_VOCAB_TYPE_SPM) return;
  llama_token cut = llama_vocab_eot(v);
  if (cut == LLAMA_TOKEN_NULL) cut = llama_vocab_eos(v);
  if (cut == LLAMA_TOKEN_NULL) return;
  enum llama_token_attr a = llama_vocab_get_attr(v, cut);
  if (!(a & TOK_SPECIAL) || (a & (LLAMA_TOKEN_ATTR_LSTRIP | LLAMA_TOKEN_ATTR_RSTRIP))) return;
  const char *t = llama_vocab_get_text(v, cut);
  size_t n = t ? strlen(t) : 0;
  if (n == 0 || n > TOK_CUT_MAX) return;
  /* the partition tries longer special tokens first (same length: any order) */
  int32_t nv = llama_vocab_n_tokens(v);
  for (llama_token i = 0; i < nv; i++) {
    if (i == cut || !(llama_vocab_get_attr(v, i) & TOK_SPECIAL)) continue;
    const char *s = llama_vocab_get_text(v, i);
    size_t m = s ? strlen(s) : 0;
    if (m >= n && overlaps(s, m, t, n)) return;
  }
  memcpy(c->text, t, n);
  c->len = n;
}

int tok_text(const struct llama_vocab *v, const tok_cut *c, const char *text, size_t len,
             bool add_special, bool parse_special, llama_token **out, int32_t *n_out) {
  *out = NULL;
  *n_out = 0;
  llama_token *toks = NULL;
  int32_t n = 0, cap = 0;
  if (!parse_special || !c->len || len <= c->piece_bytes) {
    if (tok_append(v, text, len, add_special, parse_special, &toks, &n, &cap) != 0) goto fail;
    *out = toks;
    *n_out = n;
    return 0;
  }
  /* what add_special adds around the whole text (llama-vocab.cpp: BPE and SPM alike) */
  if (add_special && llama_vocab_get_add_bos(v)) {
    if (tok_room(&toks, n, &cap, 1) != 0) goto fail;
    toks[n++] = llama_vocab_bos(v);
  }
  size_t at = 0;
  while (at < len) {
    size_t end = len;
    if (len - at > c->piece_bytes) { /* right after the first cut token past piece_bytes */
      const char *hit =
          memmem(text + at + c->piece_bytes, len - at - c->piece_bytes, c->text, c->len);
      if (hit) end = (size_t)(hit - text) + c->len;
    }
    if (tok_append(v, text + at, end - at, false, true, &toks, &n, &cap) != 0) goto fail;
    at = end;
  }
  if (add_special && llama_vocab_get_add_eos(v)) {
    if (tok_room(&toks, n, &cap, 1) != 0) goto fail;
    toks[n++] = llama_vocab_eos(v);
  }
  *out = toks;
  *n_out = n;
  return 0;
fail:
  free(toks);
  return -1;
}

int tok_tokenize(const worker *w, const char *text, size_t len, bool add_special,
                 bool parse_special, llama_token **out, int32_t *n_out) {
  return tok_text(w->vocab, &w->cut, text, len, add_special, parse_special, out, n_out);
}

int tok_piece(const worker *w, llama_token tok, char **buf, size_t *len, size_t *cap) {
  for (int attempt = 0; attempt < 3; attempt++) {
    size_t need = 64;
    if (*cap - *len < need || !*buf) {
      size_t nc = *cap ? *cap : 256;
      while (nc - *len < need) nc *= 2;
      char *nb = realloc(*buf, nc);
      if (!nb) return -1;
      *buf = nb;
      *cap = nc;
    }
    size_t room = *cap - *len;
    if (room > INT32_MAX) room = INT32_MAX;
    /* Qwen3-ASR's <asr_text> is rendered: chat.c splits the answer at it */
    int32_t n =
        llama_token_to_piece(w->vocab, tok, *buf + *len, (int32_t)room, 0, tok == w->asr_sep);
    if (n >= 0) {
      *len += (size_t)n;
      return 0;
    }
    /* Too small: grow to fit -n more bytes and try again. */
    size_t nc = *cap;
    while (nc - *len < (size_t)-n) nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb) return -1;
    *buf = nb;
    *cap = nc;
  }
  return -1;
}
