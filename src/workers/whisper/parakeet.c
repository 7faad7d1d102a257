/* parakeet.c — NVIDIA Parakeet-TDT models through whisper.cpp's own Parakeet engine
 * (include/parakeet.h, libparakeet). A Parakeet file has whisper's ggml magic but a different
 * header and its own C API, so the worker tells the two apart before loading and runs Parakeet
 * here: greedy TDT decoding, no language choice, prompt, temperature or translation.
 *
 * The audio is cut into windows no longer than the model's audio context (5000 mel frames, 50 s,
 * for the released models): parakeet_full encodes a longer input in one graph whose attention
 * grows with the square of its length. With VAD the windows are the speech the VAD model found
 * (each cut again if too long); without, fixed cuts. One window gives one segment.
 * The lowest file of the worker: it calls parakeet.h and src/common only (never transcribe.c or
 * main.c), and must never run past the abort flag between windows. */
#include "parakeet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "utf8.h"
#include "wio.h"
#include "ww.h"

/* ---- telling the formats apart ------------------------------------------------------------ */

/* The first 18 int32 of the file. whisper.cpp writes magic, 11 hyper-parameters (n_mels at 10),
 * then its mel filters' n_mel and n_fft (201). Parakeet writes magic, 15 hyper-parameters
 * (n_mels at 6, n_fft at 8), then its filters' n_mel and n_fft / 2 + 1 bins. */
int ww_parakeet_probe(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  int32_t h[18];
  size_t got = fread(h, sizeof h[0], 18, f);
  fclose(f);
  if (got != 18 || h[0] != 0x67676d6c) return 0;
  bool whisper = h[12] == h[10] && h[13] == 201;
  bool parakeet = h[6] > 0 && h[16] == h[6] && h[8] > 0 && h[17] == h[8] / 2 + 1;
  return parakeet && !whisper;
}

/* ---- load --------------------------------------------------------------------------------- */

bool ww_parakeet_load(ww *w, const char *path, bool gpu) {
  struct parakeet_context_params cp = parakeet_context_default_params();
  cp.use_gpu = gpu;
  w->pctx = parakeet_init_from_file_with_params(path, cp);
  return w->pctx != NULL;
}

void ww_parakeet_describe(ww *w, char *desc, size_t n) {
  snprintf(desc, n, "parakeet-tdt (%d layers, width %d, vocabulary %d)",
           parakeet_model_n_audio_layer(w->pctx), parakeet_model_n_audio_state(w->pctx),
           parakeet_model_n_vocab(w->pctx));
}

/* ---- transcribe --------------------------------------------------------------------------- */

typedef struct prun {
  ww *w;
  wio_id id;
  bool words;
  double t0, t1; /* the window, seconds of the whole audio */
  sy_buf *text;
} prun;

/* A token's text as it reads in the transcript: SentencePiece's ▁ becomes a space, control pieces
 * (<unk>, </s>) come out empty. */
static void token_text(struct parakeet_context *ctx, parakeet_token id, char *out, int n) {
  const char *piece = parakeet_token_to_str(ctx, id);
  out[0] = '\0';
  if (piece) parakeet_token_to_text(piece, false, out, n);
}

/* Words from the segment's tokens: a token whose text starts with a space starts a word. Token
 * times are mel frames (10 ms) from the window's start. */
static json_t *segment_words(prun *r, int seg) {
  struct parakeet_context *ctx = r->w->pctx;
  ww_words b;
  ww_words_init(&b, r->t0);
  int n = parakeet_full_n_tokens(ctx, seg);
  for (int j = 0; j < n; j++) {
    char t[256] = "";
    parakeet_token_data d = parakeet_full_get_token_data(ctx, seg, j);
    token_text(ctx, d.id, t, sizeof t);
    if (!t[0]) continue;
    double a = ww_clamp(r->t0 + (double)d.t0 / 100.0, r->t0, r->t1);
    ww_words_piece(&b, t, a, ww_clamp(r->t0 + (double)d.t1 / 100.0, a, r->t1));
  }
  return ww_words_end(&b);
}

/* Each segment the engine finished (one per window): its text with whisper's leading space, its
 * span from the tokens' times (the window when it has none), kept inside the window. */
static void new_segment_cb(struct parakeet_context *ctx, struct parakeet_state *st, int n_new,
                           void *ud) {
  prun *r = ud;
  int n = parakeet_full_n_segments(ctx);
  for (int i = n - n_new; i < n; i++) {
    if (i < 0) continue;
    const char *t = parakeet_full_get_segment_text(ctx, i);
    if (!t) t = "";
    while (*t == ' ') t++;
    if (!*t) continue;
    size_t ln, tl = strlen(t);
    char *spaced = malloc(tl + 2), *text = NULL;
    if (spaced) { /* whisper's segments start with a space; so do these */
      spaced[0] = ' ';
      memcpy(spaced + 1, t, tl + 1);
      text = sy_utf8_repair(spaced, tl + 1, &ln);
      free(spaced);
    }
    if (!text) continue;
    double s0 = -1, s1 = -1;
    int nt = parakeet_full_n_tokens(ctx, i);
    for (int j = 0; j < nt; j++) {
      parakeet_token_data d = parakeet_full_get_token_data(ctx, i, j);
      char tt[256];
      token_text(ctx, d.id, tt, sizeof tt);
      if (!tt[0]) continue;
      if (s0 < 0 || (double)d.t0 / 100.0 < s0) s0 = (double)d.t0 / 100.0;
      if ((double)d.t1 / 100.0 > s1) s1 = (double)d.t1 / 100.0;
    }
    s0 = s0 < 0 ? r->t0 : ww_clamp(r->t0 + s0, r->t0, r->t1);
    s1 = s1 < 0 ? r->t1 : ww_clamp(r->t0 + s1, s0, r->t1);
    ww_send_segment(r->w, r->id, r->text, text, ln, s0, s1, r->words ? segment_words(r, i) : NULL);
    free(text);
  }
}

static bool encoder_begin_cb(struct parakeet_context *ctx, struct parakeet_state *st, void *ud) {
  return !wio_inbox_aborted(&((ww *)ud)->in);
}

/* Transcribe pcm[a, b) in windows of at most max samples; a tail under 100 ms joins the window
 * before it. 0, or the engine's error. */
static int run_span(ww *w, prun *r, struct parakeet_full_params *p, const float *pcm, int a, int b,
                    int max) {
  for (int s = a; s < b && !wio_inbox_aborted(&w->in);) {
    int len = b - s;
    if (len > max && len - max >= WW_SAMPLE_RATE / 10) len = max;
    r->t0 = (double)s / WW_SAMPLE_RATE;
    r->t1 = (double)(s + len) / WW_SAMPLE_RATE;
    int rc = parakeet_full(w->pctx, *p, pcm + s, len);
    if (rc != 0) return rc;
    s += len;
  }
  return 0;
}

int ww_parakeet_full(ww *w, wio_id id, const float *pcm, int n, const json_t *speech, bool words,
                     sy_buf *text) {
  int ctx_frames = parakeet_model_n_audio_ctx(w->pctx);
  if (ctx_frames < 100 || ctx_frames > 6000) ctx_frames = 3000; /* 1..60 s, else 30 s */
  int max = ctx_frames * PARAKEET_HOP_LENGTH;
  prun r = {.w = w, .id = id, .words = words, .text = text};
  struct parakeet_full_params p = parakeet_full_default_params(PARAKEET_SAMPLING_GREEDY);
  p.n_threads = ww_threads(w);
  p.no_context = true;
  p.new_segment_callback = new_segment_cb;
  p.new_segment_callback_user_data = &r;
  p.abort_callback = ww_abort_cb;
  p.abort_callback_user_data = w;
  p.encoder_begin_callback = encoder_begin_cb;
  p.encoder_begin_callback_user_data = w;
  if (!speech) return run_span(w, &r, &p, pcm, 0, n, max);
  size_t i;
  json_t *s;
  json_array_foreach(speech, i, s) {
    double t0 = json_number_value(json_object_get(s, "start")),
           t1 = json_number_value(json_object_get(s, "end"));
    int a = (int)ww_clamp(t0 * WW_SAMPLE_RATE, 0, n), b = (int)ww_clamp(t1 * WW_SAMPLE_RATE, a, n);
    int rc = run_span(w, &r, &p, pcm, a, b, max);
    if (rc != 0) return rc;
  }
  return 0;
}
