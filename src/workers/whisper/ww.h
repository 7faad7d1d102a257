/* ww.h — the switchyard-whisper worker: one process per loaded whisper.cpp model, serving the
 * daemon over the socketpair protocol of docs/PROTOCOL.md with whisper.cpp's C API only.
 *
 *   main.c        arguments, process setup, the message loop
 *   transcribe.c  load (model, optional Silero VAD), one transcription per request
 *   parakeet.c    Parakeet-TDT models, through whisper.cpp's Parakeet engine (parakeet.h)
 *   words.c       what both engines send alike: a segment frame, words from token pieces
 * Each file calls only the ones below it (main → transcribe → parakeet → words) and src/common
 * (wio: the reader thread, its inbox, the senders; utf8).
 *
 * Requests are served one at a time, in arrival order: whisper_full runs on the context's own
 * state (the only path where whisper.cpp applies its built-in VAD), so a second request waits for
 * the first. The reader thread (wio_inbox, own_cancels) is the only other thread: it queues frames,
 * and for a `cancel` of the request that runs it raises the abort flag that whisper.cpp's abort
 * callback polls (wio_inbox_aborted).
 * Nothing here may trust a field of a received message before checking its type and bounds. */
#ifndef SY_WORKER_WHISPER_H
#define SY_WORKER_WHISPER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ipc.h"
#include "wio.h"

#define WW_INBOX_CAP 1024    /* received frames waiting for the main thread */
#define WW_SAMPLE_RATE 16000 /* what whisper.cpp takes */
#define WW_MAX_PROMPT 4096   /* bytes of prompt passed to the decoder */

typedef struct ww {
  wio_out out;  /* replies; out.dead once a send failed */
  wio_inbox in; /* the reader thread; it takes `cancel` itself (wio_inbox_begin/aborted) */

  /* the engine (transcribe.c) */
  struct whisper_context *ctx;      /* a whisper model, or */
  struct parakeet_context *pctx;    /* a Parakeet-TDT one */
  char *vad_model;                  /* Silero VAD ggml path, or NULL */
  struct whisper_vad_context *vctx; /* for reporting speech segments; NULL without VAD */
  int n_threads;                    /* loaded with */
  atomic_int threads_share;         /* the daemon's "threads" op (cpu_share.h); 0 = n_threads */
  char log_buf[1024];
  size_t log_len;
} ww;

/* The threads the next decode runs with: the daemon's share while other workers are busy too,
 * never more than loaded with. */
static inline int ww_threads(ww *w) {
  int n = atomic_load(&w->threads_share);
  return n >= 1 && n < w->n_threads ? n : w->n_threads;
}

/* v kept inside [lo, hi] */
static inline double ww_clamp(double v, double lo, double hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* The engines' abort callback: the running request was cancelled (or the daemon is gone). */
static inline bool ww_abort_cb(void *ud) { return wio_inbox_aborted(&((ww *)ud)->in); }

/* words.c: a segment frame, and words from token pieces (a piece starting with a space starts a
 * word) */
typedef struct ww_words {
  json_t *arr; /* [{word, start, end}] */
  sy_buf word; /* the word being collected */
  double w0, w1;
} ww_words;
void ww_words_init(ww_words *b, double t0);
/* One piece of text t (NUL-terminated, may be "") over [t0, t1] seconds. */
void ww_words_piece(ww_words *b, const char *t, double t0, double t1);
/* End the last word and return the array (a new reference; the builder is done). */
json_t *ww_words_end(ww_words *b);
/* Send a segment frame {text, t0, t1, words} (words, stolen, may be NULL) for request id, and
 * append its text to all. */
void ww_send_segment(ww *w, wio_id id, sy_buf *all, const char *text, size_t len, double t0,
                     double t1, json_t *words);

/* transcribe.c */
void ww_log_install(ww *w);
/* Handle load: model (and VAD), then ready. -1 after sending an error (the caller exits 1). */
int ww_load(ww *w, const json_t *hdr);
void ww_free(ww *w);
/* One transcribe frame: segments as they come, then done (or error). */
void ww_transcribe(ww *w, wio_id id, const ipc_msg *m);

/* parakeet.c */
/* 1: the file is a Parakeet model (whisper.cpp's ggml format, Parakeet header); 0: not; -1:
 * unreadable. */
int ww_parakeet_probe(const char *path);
bool ww_parakeet_load(ww *w, const char *path, bool gpu);
void ww_parakeet_describe(ww *w, char *desc, size_t n);
/* Transcribe n samples (in windows: speech, the VAD's [{start, end}] seconds, or fixed cuts),
 * sending each segment and appending its text to text. 0, or the engine's error code. */
int ww_parakeet_full(ww *w, wio_id id, const float *pcm, int n, const json_t *speech, bool words,
                     sy_buf *text);

#endif
