/* words.c — words from a segment's token pieces, for whisper and Parakeet alike (ww.h): a piece
 * that starts with a space begins a new word, a word's leading spaces are dropped, and a word
 * spans from its first piece's start to its last piece's end. Must never emit an empty word,
 * invalid UTF-8, or an end before its start. */
#include <stdlib.h>

#include "utf8.h"
#include "ww.h"

void ww_words_init(ww_words *b, double t0) {
  b->arr = json_array();
  b->word = (sy_buf){0};
  b->w0 = b->w1 = t0;
}

/* The word collected so far, as {word, start, end}, then an empty word. */
static void ww_words_flush(ww_words *b) {
  if (b->word.len == 0) return;
  size_t ln;
  char *fixed = sy_utf8_repair(b->word.data, b->word.len, &ln);
  if (fixed && ln > 0 && b->arr)
    json_array_append_new(b->arr, json_pack("{s:s%, s:f, s:f}", "word", fixed, ln, "start", b->w0,
                                            "end", b->w1 < b->w0 ? b->w0 : b->w1));
  free(fixed);
  b->word.len = 0;
}

void ww_words_piece(ww_words *b, const char *t, double t0, double t1) {
  if (t[0] == ' ') ww_words_flush(b); /* the word before ends here */
  const char *p = t;
  if (b->word.len == 0) {
    while (*p == ' ') p++;
    if (!*p) return;
    b->w0 = t0;
  }
  sy_buf_puts(&b->word, p);
  b->w1 = t1;
}

json_t *ww_words_end(ww_words *b) {
  ww_words_flush(b);
  sy_buf_free(&b->word);
  json_t *a = b->arr;
  b->arr = NULL;
  return a;
}
