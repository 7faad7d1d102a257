/* bench_speech.c — `make bench-speech`: the built-in voice (espeak-ng) through POST
 * /v1/audio/speech. For each text size and format: time to the first audio byte (the HTTP body's
 * first byte: the request, the worker's first sentence, the encoder) and the real-time factor
 * (wall time of the whole response / seconds of audio; below 1 = faster than real time). The
 * first request also loads the worker (reported apart as "cold").
 *
 * usage: bench-speech --url http://127.0.0.1:8080 [--model speak] [--runs N] [--texts N]
 *                     [--formats pcm,mp3,opus] [--seed N]
 * --texts N: only the first N texts (neural voices are slow on a CPU); --seed: sent with every
 * request (neural voices). Prints a markdown table. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib.h"

typedef struct run {
  size_t bytes;
  double t_first; /* seconds to the first body byte, by our own clock */
  struct timespec t0;
} run;

static double since(const struct timespec *t0) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  run *r = ud;
  (void)p;
  if (r->bytes == 0 && sz * n > 0) r->t_first = since(&r->t0);
  r->bytes += sz * n;
  return sz * n;
}

/* One request; returns the HTTP status, fills bytes/first/total. */
static long g_seed = -1;

static long speak(const char *url, const char *model, const char *text, const char *fmt, run *r,
                  double *total) {
  json_t *b = json_pack("{s:s, s:s, s:s, s:s}", "model", model, "input", text, "voice", "en-us",
                        "response_format", fmt);
  if (g_seed >= 0) json_object_set_new(b, "seed", json_integer(g_seed));
  char *body = json_dumps(b, JSON_COMPACT);
  json_decref(b);
  char u[512];
  snprintf(u, sizeof u, "%s/v1/audio/speech", url);
  CURL *c = curl_easy_init();
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  bench_post_json(c, u, body, hl, on_body, r);
  memset(r, 0, sizeof *r);
  clock_gettime(CLOCK_MONOTONIC, &r->t0);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  *total = since(&r->t0);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(body);
  return status;
}

int main(int argc, char **argv) {
  const char *url = "http://127.0.0.1:8080", *model = "speak";
  int runs = 5, n_texts = 3;
  const char *fmt_list = "pcm,mp3,opus";
  static const struct option opts[] = {{"url", required_argument, 0, 'u'},
                                       {"model", required_argument, 0, 'm'},
                                       {"runs", required_argument, 0, 'r'},
                                       {"texts", required_argument, 0, 't'},
                                       {"formats", required_argument, 0, 'f'},
                                       {"seed", required_argument, 0, 's'},
                                       {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'u')
      url = optarg;
    else if (o == 'm')
      model = optarg;
    else if (o == 'r')
      runs = atoi(optarg);
    else if (o == 't')
      n_texts = atoi(optarg);
    else if (o == 'f')
      fmt_list = optarg;
    else if (o == 's')
      g_seed = atol(optarg);
    else
      return 2;
  }
  if (runs < 1 || runs > 1000) runs = 5;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  static char medium[1024], longer[4096];
  size_t p = 0;
  for (int i = 0; i < 5; i++)
    p += (size_t)snprintf(medium + p, sizeof medium - p,
                          "This is sentence number %d of a short paragraph. ", i + 1);
  p = 0;
  while (p + 120 < sizeof longer - 200 && p < 4000)
    p += (size_t)snprintf(longer + p, sizeof longer - p,
                          "The quick brown fox jumps over the lazy dog, and then it runs away. ");
  longer[4000 < p ? 4000 : p] = '\0';
  const struct {
    const char *name, *text;
  } texts[] = {{"1 sentence", "Hello, and welcome to Switchyard."},
               {"5 sentences", medium},
               {"~4000 chars", longer}};
  const char *all_fmts[] = {"pcm", "mp3", "opus"}, *fmts[3];
  size_t n_fmts = 0;
  for (size_t i = 0; i < 3; i++)
    if (strstr(fmt_list, all_fmts[i])) fmts[n_fmts++] = all_fmts[i];
  if (n_fmts == 0 || strcmp(fmts[0], "pcm") != 0) {
    fprintf(stderr,
            "bench-speech: --formats must include pcm (its length gives the audio seconds)\n");
    return 2;
  }
  if (n_texts < 1 || n_texts > 3) n_texts = 3;

  run r;
  double total;
  long st = speak(url, model, "Hello.", "pcm", &r, &total);
  if (st != 200) {
    fprintf(stderr, "bench-speech: %s answered %ld\n", url, st);
    return 1;
  }
  printf(
      "cold (worker load + first request, \"Hello.\", pcm): first byte %.1f ms, total %.1f ms\n\n",
      r.t_first * 1e3, total * 1e3);
  printf(
      "| text | chars | format | audio s | first byte ms (median) | total ms (median) | real-time "
      "factor |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for (size_t t = 0; t < (size_t)n_texts && t < sizeof texts / sizeof *texts; t++) {
    for (size_t f = 0; f < n_fmts; f++) {
      double first[1000], tot[1000], audio_s = 0;
      for (int i = 0; i < runs; i++) {
        st = speak(url, model, texts[t].text, fmts[f], &r, &tot[i]);
        if (st != 200) {
          fprintf(stderr, "bench-speech: %s/%s answered %ld\n", texts[t].name, fmts[f], st);
          return 1;
        }
        first[i] = r.t_first;
        if (!strcmp(fmts[f], "pcm")) audio_s = (double)r.bytes / 2 / 24000;
      }
      static double pcm_audio_s; /* the pcm run's duration stands for every format of this text */
      if (!strcmp(fmts[f], "pcm")) pcm_audio_s = audio_s;
      double mt = bench_median(tot, runs);
      printf("| %s | %zu | %s | %.2f | %.1f | %.1f | %.4f |\n", texts[t].name,
             strlen(texts[t].text), fmts[f], pcm_audio_s, bench_median(first, runs) * 1e3, mt * 1e3,
             pcm_audio_s > 0 ? mt / pcm_audio_s : 0);
    }
  }
  curl_global_cleanup();
  return 0;
}
