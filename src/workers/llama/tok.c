/* tok.c — text to tokens and back for the loaded vocabulary: tokenising a string, and appending
 * one token's text to a growing buffer. A leaf of the worker: it calls llama.h only, never a
 * file above it (engine, gen, embed, speech, chat). Must never write past the buffers it grows. */
#include <limits.h>
#include <stdlib.h>

#include "worker.h"

int tok_tokenize(const worker *w, const char *text, size_t len, bool add_special,
                 bool parse_special, llama_token **out, int32_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (len > (size_t)INT32_MAX / 2) return -1;
  int32_t cap = (int32_t)len + 8;
  llama_token *toks = malloc((size_t)cap * sizeof *toks);
  if (!toks) return -1;
  int32_t n = llama_tokenize(w->vocab, text, (int32_t)len, toks, cap, add_special, parse_special);
  if (n < 0 && n != INT32_MIN) {
    cap = -n;
    llama_token *t2 = realloc(toks, (size_t)cap * sizeof *toks);
    if (!t2) {
      free(toks);
      return -1;
    }
    toks = t2;
    n = llama_tokenize(w->vocab, text, (int32_t)len, toks, cap, add_special, parse_special);
  }
  if (n < 0) {
    free(toks);
    return -1;
  }
  *out = toks;
  *n_out = n;
  return 0;
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
