/* ww.h — the switchyard-whisper worker: one process per loaded whisper.cpp model, serving the
 * daemon over the socketpair protocol of docs/PROTOCOL.md with whisper.cpp's C API only.
 *
 *   main.c        arguments, process setup, the reader thread and its queue, replies, the loop
 *   transcribe.c  load (model, optional Silero VAD), one transcription per request
 *   parakeet.c    Parakeet-TDT models, through whisper.cpp's Parakeet engine (parakeet.h)
 *
 * Requests are served one at a time, in arrival order: whisper_full runs on the context's own
 * state (the only path where whisper.cpp applies its built-in VAD), so a second request waits for
 * the first. The reader thread is the only other thread: it queues frames, and for a `cancel` of
 * the request that runs it raises the abort flag that whisper.cpp's abort callback polls.
 * Nothing here may trust a field of a received message before checking its type and bounds. */
#ifndef SY_WORKER_WHISPER_H
#define SY_WORKER_WHISPER_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ipc.h"

#define WW_INBOX_CAP 1024     /* received frames waiting for the main thread */
#define WW_CANCEL_RING 64     /* ids cancelled before they started, remembered */
#define WW_SAMPLE_RATE 16000  /* what whisper.cpp takes */
#define WW_MAX_PROMPT 4096    /* bytes of prompt passed to the decoder */

typedef struct ww_node ww_node;

typedef struct ww {
  ipc_chan chan;
  int fd;
  bool dead; /* a send failed: the daemon is gone */

  /* the reader thread and its queue (main.c) */
  pthread_t reader;
  bool reader_started;
  pthread_mutex_t mu;
  pthread_cond_t cv_msg, cv_space;
  ww_node *head, *tail;
  size_t n;
  bool ended, failed, closing; /* under mu */
  int64_t cancelled[WW_CANCEL_RING]; /* under mu */
  size_t n_cancelled;
  int64_t current;      /* the id being transcribed, 0 = none; under mu */
  atomic_bool abort;    /* the running request was cancelled, or the channel ended */

  /* the engine (transcribe.c) */
  struct whisper_context *ctx;     /* a whisper model, or */
  struct parakeet_context *pctx;   /* a Parakeet-TDT one */
  char *vad_model;               /* Silero VAD ggml path, or NULL */
  struct whisper_vad_context *vctx; /* for reporting speech segments; NULL without VAD */
  int n_threads;             /* loaded with */
  atomic_int threads_share;  /* the daemon's "threads" op (cpu_share.h); 0 = n_threads */
  char log_buf[1024];
  size_t log_len;
} ww;

/* The threads the next decode runs with: the daemon's share while other workers are busy too,
 * never more than loaded with. */
static inline int ww_threads(ww *w) {
  int n = atomic_load(&w->threads_share);
  return n >= 1 && n < w->n_threads ? n : w->n_threads;
}

/* main.c: replies (each marks w->dead on a failed send). */
void ww_send(ww *w, json_t *hdr); /* stolen */
void ww_error(ww *w, int64_t id, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A valid UTF-8 copy of s[0..n) (invalid bytes become U+FFFD); malloc'd, NUL-terminated. */
char *ww_utf8(const char *s, size_t n, size_t *out_len);
/* Mark id as running (0 = none). Returns false when id was cancelled before it started. */
bool ww_begin(ww *w, int64_t id);

/* transcribe.c */
void ww_log_install(ww *w);
/* Handle load: model (and VAD), then ready. -1 after sending an error (the caller exits 1). */
int ww_load(ww *w, const json_t *hdr);
void ww_free(ww *w);
/* One transcribe frame: segments as they come, then done (or error). */
void ww_transcribe(ww *w, int64_t id, const ipc_msg *m);

/* parakeet.c */
/* 1: the file is a Parakeet model (whisper.cpp's ggml format, Parakeet header); 0: not; -1: unreadable. */
int ww_parakeet_probe(const char *path);
bool ww_parakeet_load(ww *w, const char *path, bool gpu);
void ww_parakeet_describe(ww *w, char *desc, size_t n);
/* Transcribe n samples (in windows: speech, the VAD's [{start, end}] seconds, or fixed cuts),
 * sending each segment and appending its text to text. 0, or the engine's error code. */
int ww_parakeet_full(ww *w, int64_t id, const float *pcm, int n, const json_t *speech, bool words, sy_buf *text);

#endif
