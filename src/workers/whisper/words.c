/* words.c — what whisper and Parakeet send alike (ww.h): a `segment` frame, and its words from
 * the segment's token pieces: a piece that starts with a space begins a new word, a word's
 * leading spaces are dropped, and a word spans from its first piece's start to its last piece's
 * end. Must never emit an empty word, invalid UTF-8, or an end before its start. */
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

void ww_send_segment(ww *w, wio_id id, sy_buf *all, const char *text, size_t len, double t0,
                     double t1, json_t *words) {
  json_t *f = json_pack("{s:s, s:I, s:s%, s:f, s:f}", "op", "segment", "id", (json_int_t)id, "text",
                        text, len, "t0", t0, "t1", t1);
  if (f && words)
    json_object_set_new(f, "words", words);
  else
    json_decref(words);
  sy_buf_append(all, text, len);
  wio_send(&w->out, f, NULL, 0);
}
