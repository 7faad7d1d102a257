/* bench_voice.c — `make bench-voice`'s client (bench/voice_turn.sh starts the daemon): streamed
 * voice turns through POST /v1/chat/completions on a voice pipeline. Each turn posts the WAV as
 * input_audio (base64), reads the SSE stream, times the first audio chunk and the last byte by its
 * own clock, counts the pcm16 samples it got (24 kHz) and takes the stage timings from the usage
 * chunk (usage.switchyard_timings). One warm-up turn (it loads the models) is not counted. Prints
 * each run and the medians (docs/PERFORMANCE.md, "Voice turn").
 *
 * usage: bench-voice --url http://127.0.0.1:8080 [--model talk] [--runs N] [--wav FILE]
 * Without --wav the input is 3 s of a 220 Hz tone (16 kHz mono s16). */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib.h"
#include "media/base64.h"

#define MAX_WAV (64u << 20)  /* bytes of input audio we are willing to send */
#define MAX_LINE (32u << 20) /* one SSE line (an audio chunk's base64 fits many times over) */
#define MAX_ERRBODY 300      /* bytes of a non-200 body shown */
#define MAX_RUNS 1000
#define N_KEYS 5

static const char *const keys[N_KEYS] = {"stt_ms", "llm_first_token_ms", "tts_first_audio_ms",
                                         "first_audio_ms", "total_ms"};

typedef struct turn {
  struct timespec t0;
  char *line; /* the SSE line being read */
  size_t len, cap;
  bool first_seen, failed;
  double first_audio_ms, end_ms, audio_s;
  double t[N_KEYS]; /* the server's stage timings, in keys[] order */
  bool have_timings;
  size_t samples;
  int status; /* from the status line */
  char err[512];
} turn;

static double ms_since(const struct timespec *t0) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Decoded length of a padded base64 string: only the sample count is needed, not the bytes. */
static size_t b64_decoded_len(const char *s, size_t n) {
  if (n < 4) return 0;
  size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
  return n / 4 * 3 - pad;
}

static unsigned char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  size_t cap = 0, len = 0;
  for (;;) {
    if (len == cap) {
      if (cap >= MAX_WAV) break;
      cap = cap ? cap * 2 : 1 << 16;
      unsigned char *nb = realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  bool ok = feof(f) && !ferror(f);
  fclose(f);
  if (!ok) {
    free(buf);
    return NULL;
  }
  *n = len;
  return buf;
}

static void put_le(unsigned char *p, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* 3 s of a 220 Hz tone as a 16 kHz mono s16 WAV: the input when there is no speech file. */
static unsigned char *tone_wav(size_t *n) {
  const uint32_t ns = 48000;
  unsigned char *w = malloc(44 + 2 * (size_t)ns);
  if (!w) return NULL;
  memcpy(w, "RIFF", 4);
  put_le(w + 4, 36 + 2 * ns, 4);
  memcpy(w + 8, "WAVEfmt ", 8);
  put_le(w + 16, 16, 4);
  put_le(w + 20, 1, 2);     /* PCM */
  put_le(w + 22, 1, 2);     /* mono */
  put_le(w + 24, 16000, 4); /* rate */
  put_le(w + 28, 32000, 4); /* bytes per second */
  put_le(w + 32, 2, 2);     /* block align */
  put_le(w + 34, 16, 2);    /* bits */
  memcpy(w + 36, "data", 4);
  put_le(w + 40, 2 * ns, 4);
  for (uint32_t i = 0; i < ns; i++) {
    int16_t s = (int16_t)(8000 * sin(2 * M_PI * 220 * i / 16000));
    put_le(w + 44 + 2 * i, (uint16_t)s, 2);
  }
  *n = 44 + 2 * (size_t)ns;
  return w;
}

/* One "data: {...}" event: count its audio, take its timings, stop on an error event. */
static void on_event(turn *t, const char *json, size_t n) {
  json_error_t je;
  json_t *ev = json_loadb(json, n, 0, &je);
  if (!ev) {
    snprintf(t->err, sizeof t->err, "bad event JSON: %s", je.text);
    t->failed = true;
    return;
  }
  if (json_object_get(ev, "error")) {
    char *s = json_dumps(ev, JSON_COMPACT);
    snprintf(t->err, sizeof t->err, "error: %.400s", s ? s : "?");
    free(s);
    t->failed = true;
    json_decref(ev);
    return;
  }
  json_t *choice = json_array_get(json_object_get(ev, "choices"), 0);
  json_t *data =
      json_object_get(json_object_get(json_object_get(choice, "delta"), "audio"), "data");
  if (json_is_string(data)) {
    t->samples += b64_decoded_len(json_string_value(data), json_string_length(data)) / 2;
    if (!t->first_seen) {
      t->first_seen = true;
      t->first_audio_ms = ms_since(&t->t0);
    }
  }
  json_t *usage = json_object_get(ev, "usage");
  if (json_is_object(usage) && json_object_size(usage) > 0) {
    json_t *st = json_object_get(usage, "switchyard_timings");
    t->have_timings = true;
    for (int k = 0; k < N_KEYS; k++) {
      json_t *v = json_object_get(st, keys[k]);
      if (!json_is_number(v)) {
        snprintf(t->err, sizeof t->err, "usage.switchyard_timings.%s missing", keys[k]);
        t->failed = true;
        break;
      }
      t->t[k] = json_number_value(v);
    }
  }
  json_decref(ev);
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
  turn *t = ud;
  size_t n = sz * nm;
  if (t->failed) return 0; /* aborts the transfer */
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\n') {
      if (t->len + 1 >= t->cap) {
        if (t->cap >= MAX_LINE) {
          snprintf(t->err, sizeof t->err, "an SSE line over %u bytes", MAX_LINE);
          t->failed = true;
          return 0;
        }
        size_t nc = t->cap ? t->cap * 2 : 1 << 16;
        char *nl = realloc(t->line, nc);
        if (!nl) {
          t->failed = true;
          snprintf(t->err, sizeof t->err, "out of memory");
          return 0;
        }
        t->line = nl;
        t->cap = nc;
      }
      t->line[t->len++] = p[i];
      continue;
    }
    if (t->len > 7 && !memcmp(t->line, "data: {", 7)) on_event(t, t->line + 6, t->len - 6);
    t->len = 0;
    if (t->failed) return 0;
  }
  return n;
}

/* A non-200 answer keeps its first bytes for the message. */
static size_t on_err_body(turn *t, const char *p, size_t n) {
  size_t have = strlen(t->err);
  if (have < MAX_ERRBODY) {
    size_t take = n < MAX_ERRBODY - have ? n : MAX_ERRBODY - have;
    memcpy(t->err + have, p, take);
    t->err[have + take] = '\0';
  }
  return n;
}

static size_t on_any_body(char *p, size_t sz, size_t nm, void *ud) {
  turn *t = ud;
  return t->status == 200 ? on_body(p, sz, nm, ud) : on_err_body(t, p, sz * nm);
}

/* The last status line (after any 1xx) decides how the body is read. */
static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
  turn *t = ud;
  size_t n = sz * nm;
  int code;
  if (n > 9 && !memcmp(p, "HTTP/", 5) && sscanf(p, "HTTP/%*s %d", &code) == 1) t->status = code;
  return n;
}

/* One streamed turn; false (with a message on stderr) when it did not complete. */
static bool run_turn(const char *url, const char *body, turn *t) {
  memset(t, 0, sizeof *t);
  CURL *c = curl_easy_init();
  if (!c) return false;
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip inside the timed turn */
  bench_post_json(c, url, body, hl, on_any_body, t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  /* a stalled stream (no byte for 120 s) ends the turn */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
  clock_gettime(CLOCK_MONOTONIC, &t->t0);
  CURLcode rc = curl_easy_perform(c);
  t->end_ms = ms_since(&t->t0);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(t->line);
  t->line = NULL;
  if (rc == CURLE_OK && status != 200) {
    fprintf(stderr, "bench-voice: HTTP %ld: %s\n", status, t->err);
    return false;
  }
  if (t->failed) {
    fprintf(stderr, "bench-voice: %s\n", t->err);
    return false;
  }
  if (rc != CURLE_OK) {
    fprintf(stderr, "bench-voice: %s\n", curl_easy_strerror(rc));
    return false;
  }
  if (!t->first_seen || !t->have_timings) {
    fprintf(stderr, "bench-voice: the stream ended without %s\n",
            t->first_seen ? "a usage chunk" : "audio");
    return false;
  }
  t->audio_s = (double)t->samples / 24000;
  return true;
}

int main(int argc, char **argv) {
  const char *url = "http://127.0.0.1:8080", *model = "talk", *wav = NULL;
  int runs = 10;
  static const struct option opts[] = {{"url", required_argument, 0, 'u'},
                                       {"model", required_argument, 0, 'm'},
                                       {"runs", required_argument, 0, 'r'},
                                       {"wav", required_argument, 0, 'w'},
                                       {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'u')
      url = optarg;
    else if (o == 'm')
      model = optarg;
    else if (o == 'r')
      runs = atoi(optarg);
    else if (o == 'w')
      wav = *optarg ? optarg : NULL;
    else
      return 2;
  }
  if (runs < 1 || runs > MAX_RUNS) {
    fprintf(stderr, "bench-voice: --runs must be 1..%d\n", MAX_RUNS);
    return 2;
  }
  size_t n_audio = 0;
  unsigned char *audio = wav ? read_file(wav, &n_audio) : tone_wav(&n_audio);
  if (!audio) {
    fprintf(stderr, "bench-voice: cannot read %s (or it is over %u bytes)\n",
            wav ? wav : "the tone", MAX_WAV);
    return 1;
  }
  char *b64 = sy_base64_encode(audio, n_audio);
  free(audio);
  json_t *b =
      json_pack("{s:s, s:b, s:[ss], s:{s:s, s:s}, s:i, s:[{s:s, s:[{s:s, s:{s:s, s:s}}]}]}",
                "model", model, "stream", 1, "modalities", "text", "audio", "audio", "voice",
                "alloy", "format", "pcm16", "seed", 1, "messages", "role", "user", "content",
                "type", "input_audio", "input_audio", "data", b64 ? b64 : "", "format", "wav");
  free(b64);
  char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
  json_decref(b);
  if (!body) {
    fprintf(stderr, "bench-voice: out of memory\n");
    return 1;
  }
  char u[1024];
  snprintf(u, sizeof u, "%s/v1/chat/completions", url);
  curl_global_init(CURL_GLOBAL_DEFAULT);

  turn *rows = calloc((size_t)runs, sizeof *rows), warm;
  bool ok = rows && run_turn(u, body, &warm); /* loads the three models */
  for (int i = 0; ok && i < runs; i++) ok = run_turn(u, body, &rows[i]);
  free(body);
  curl_global_cleanup();
  if (!ok) {
    free(rows);
    return 1;
  }

  double v[MAX_RUNS];
  printf(
      "run  stt_ms  llm_first_token_ms  tts_first_audio_ms  first_audio_ms  total_ms  "
      "first_audio-stt_ms\n");
  for (int i = 0; i < runs; i++) {
    const double *t = rows[i].t;
    printf("%3d %7.1f %19.1f %19.1f %15.1f %9.1f %19.1f\n", i + 1, t[0], t[1], t[2], t[3], t[4],
           t[3] - t[0]);
  }
  printf("%d streamed voice turns (after one warm-up), medians in ms:\n", runs);
  for (int k = 0; k < N_KEYS; k++) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < runs; i++) {
      v[i] = rows[i].t[k];
      lo = v[i] < lo ? v[i] : lo;
      hi = v[i] > hi ? v[i] : hi;
    }
    printf("  %-20s %8.1f   (min %.1f, max %.1f)\n", keys[k], bench_median(v, runs), lo, hi);
  }
  for (int i = 0; i < runs; i++) v[i] = rows[i].t[3] - rows[i].t[0];
  printf("  first_audio - stt     %8.1f\n", bench_median(v, runs));
  for (int i = 0; i < runs; i++) v[i] = rows[i].first_audio_ms;
  printf("  client first audio   %8.1f\n", bench_median(v, runs));
  for (int i = 0; i < runs; i++) v[i] = rows[i].end_ms;
  printf("  client last byte     %8.1f\n", bench_median(v, runs));
  for (int i = 0; i < runs; i++) v[i] = rows[i].audio_s;
  printf("  audio out            %8.2f s\n", bench_median(v, runs));
  free(rows);
  return 0;
}
