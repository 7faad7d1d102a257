/* mixed.c — `bench mixed`: a mixed workload over several models whose memory budget holds only
 * some of them at once: N clients, each sticking to one model for a few requests and then moving
 * to another (fixed seed), all at once. Reports requests served, errors, throughput, p50/p99
 * latency and the number of model loads (swaps) read from the daemon's /metrics. A benchmark,
 * never a test. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "lib.h"
#include "mixed.h"

static const char *mx_url;
static char *mx_models[16];
static int mx_n_models, mx_clients = 16, mx_requests = 12, mx_stick = 3, mx_tokens = 16;

/* GET base+path into out; the HTTP status. */
static long mx_get(const char *path, sy_buf *out) {
  char url[512];
  snprintf(url, sizeof url, "%s%s", mx_url, path);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bench_to_buf);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  long st = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  curl_easy_cleanup(c);
  return st;
}

/* Sum of switchyard_model_loads_total{...result="ok"...} in /metrics, or -1. */
static long long mx_loads(void) {
  sy_buf b = {0};
  long long sum = -1;
  if (mx_get("/metrics", &b) == 200 && b.data) {
    sum = 0;
    for (char *p = strstr(b.data, "switchyard_model_loads_total{"); p;
         p = strstr(p + 1, "switchyard_model_loads_total{")) {
      char *end = strchr(p, '}');
      if (!end || !strstr(p, "result=\"ok\"") || strstr(p, "result=\"ok\"") > end) continue;
      sum += strtoll(end + 1, NULL, 10);
    }
  }
  sy_buf_free(&b);
  return sum;
}

typedef struct mx_client {
  int id;
  double *lat; /* per request, seconds; < 0 = failed */
  long tokens;
} mx_client;

static void *mx_client_main(void *arg) {
  mx_client *c = arg;
  unsigned seed = 1234u + (unsigned)c->id * 7919u;
  int model = (int)(rand_r(&seed) % (unsigned)mx_n_models);
  CURL *cu = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s/v1/chat/completions", mx_url);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  for (int i = 0; i < mx_requests; i++) {
    if (i > 0 && i % mx_stick == 0)
      model =
          (model + 1 + (int)(rand_r(&seed) % (unsigned)(mx_n_models - 1 ? mx_n_models - 1 : 1))) %
          mx_n_models;
    json_t *q = json_pack("{s:s, s:[{s:s, s:s}], s:i, s:f, s:b}", "model", mx_models[model],
                          "messages", "role", "user", "content", "Tell me about railway yards.",
                          "max_tokens", mx_tokens, "temperature", 0.0, "ignore_eos", 1);
    char *body = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    sy_buf out = {0};
    bench_post_json(cu, url, body, hl, bench_to_buf, &out);
    double t0 = sy_mono_s();
    long st = 0;
    if (curl_easy_perform(cu) == CURLE_OK) curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &st);
    c->lat[i] = st == 200 ? sy_mono_s() - t0 : -1;
    if (st == 200) {
      json_t *j = json_loadb(out.data, out.len, 0, NULL);
      c->tokens += (long)json_integer_value(
          json_object_get(json_object_get(j, "usage"), "completion_tokens"));
      json_decref(j);
    } else {
      fprintf(stderr, "bench mixed: client %d request %d to %s: HTTP %ld %.200s\n", c->id, i,
              mx_models[model], st, out.data ? out.data : "");
    }
    sy_buf_free(&out);
    free(body);
  }
  curl_slist_free_all(hl);
  curl_easy_cleanup(cu);
  return NULL;
}

int bench_mixed(int argc, char **argv) {
  static const struct option opts[] = {{"url", 1, 0, 'u'},
                                       {"models", 1, 0, 'm'},
                                       {"clients", 1, 0, 'c'},
                                       {"requests", 1, 0, 'r'},
                                       {"stick", 1, 0, 's'},
                                       {"tokens", 1, 0, 't'},
                                       {0, 0, 0, 0}};
  int o;
  optind = 1;
  char *models = NULL;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'u')
      mx_url = optarg;
    else if (o == 'm')
      models = optarg;
    else if (o == 'c')
      mx_clients = atoi(optarg);
    else if (o == 'r')
      mx_requests = atoi(optarg);
    else if (o == 's')
      mx_stick = atoi(optarg);
    else if (o == 't')
      mx_tokens = atoi(optarg);
    else
      return 2;
  }
  for (char *tok = models ? strtok(models, ",") : NULL; tok && mx_n_models < 16;
       tok = strtok(NULL, ","))
    mx_models[mx_n_models++] = tok;
  if (!mx_url || mx_n_models < 2 || mx_clients < 1 || mx_clients > 256 || mx_requests < 1 ||
      mx_stick < 1) {
    fprintf(stderr,
            "usage: bench mixed --url URL --models a,b,c [--clients 16] [--requests 12] [--stick "
            "3] [--tokens 16]\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  long long loads0 = mx_loads();
  mx_client *cs = calloc((size_t)mx_clients, sizeof *cs);
  pthread_t *th = calloc((size_t)mx_clients, sizeof *th);
  double t0 = sy_mono_s();
  for (int i = 0; i < mx_clients; i++) {
    cs[i].id = i;
    cs[i].lat = calloc((size_t)mx_requests, sizeof *cs[i].lat);
    pthread_create(&th[i], NULL, mx_client_main, &cs[i]);
  }
  size_t n = (size_t)mx_clients * (size_t)mx_requests, ok = 0;
  double *all = calloc(n, sizeof *all);
  long tokens = 0;
  for (int i = 0; i < mx_clients; i++) {
    pthread_join(th[i], NULL);
    for (int k = 0; k < mx_requests; k++)
      if (cs[i].lat[k] >= 0) all[ok++] = cs[i].lat[k];
    tokens += cs[i].tokens;
    free(cs[i].lat);
  }
  double wall = sy_mono_s() - t0;
  long long loads1 = mx_loads();
  qsort(all, ok, sizeof *all, bench_cmp_double);
  printf(
      "{\"requests\": %zu, \"ok\": %zu, \"errors\": %zu, \"wall_s\": %.2f, \"requests_per_s\": "
      "%.3f, "
      "\"tokens_per_s\": %.2f, \"p50_s\": %.3f, \"p99_s\": %.3f, \"loads\": %lld}\n",
      n, ok, n - ok, wall, ok / wall, tokens / wall, ok ? all[ok / 2] : 0,
      ok ? all[(ok * 99) / 100 < ok ? (ok * 99) / 100 : ok - 1] : 0,
      loads0 >= 0 && loads1 >= 0 ? loads1 - loads0 : -1);
  free(all);
  free(cs);
  free(th);
  curl_global_cleanup();
  return ok == n ? 0 : 1;
}
