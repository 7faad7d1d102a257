/* cli_ps.c — `switchyard ps`: ask a running daemon what is loaded (GET /api/ps) and print it as a
 * table, the way `ollama ps` does (PROCESSOR from Ollama's size_vram field beside ours). A client
 * only: it never touches models or workers. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argnum.h"
#include "buf.h"
#include "cli.h"

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  return sy_buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

static void human_size(long long b, char *out, size_t len) {
  if (b >= 1LL << 30)
    snprintf(out, len, "%.1f GiB", (double)b / (double)(1LL << 30));
  else
    snprintf(out, len, "%.0f MiB", (double)b / (double)(1LL << 20));
}

/* A size in at most 6 characters: 0, 512K, 12.0M, 1.0G. */
static void short_size(long long b, char *out, size_t len) {
  if (b >= 1LL << 30)
    snprintf(out, len, "%.1fG", (double)b / (double)(1LL << 30));
  else if (b >= 1LL << 20)
    snprintf(out, len, "%.1fM", (double)b / (double)(1LL << 20));
  else if (b > 0)
    snprintf(out, len, "%.0fK", (double)b / 1024.0);
  else
    snprintf(out, len, "0");
}

/* The prompt cache in RAM: held / the budget's share for it now ("-" for a model without one). */
static void cache_cell(const json_t *pc, char *out, size_t len) {
  if (!json_is_object(pc)) {
    snprintf(out, len, "-");
    return;
  }
  char held[16], limit[16];
  short_size((long long)json_integer_value(json_object_get(pc, "bytes")), held, sizeof held);
  short_size((long long)json_integer_value(json_object_get(pc, "limit")), limit, sizeof limit);
  snprintf(out, len, "%s/%s", held, limit);
}

static void human_until(long long s, char *out, size_t len) {
  if (s < 0)
    snprintf(out, len, "forever");
  else if (s < 60)
    snprintf(out, len, "%lld seconds from now", s);
  else if (s < 3600)
    snprintf(out, len, "%lld minutes from now", s / 60);
  else
    snprintf(out, len, "%lld hours from now", s / 3600);
}

/* Where a model computes, as `ollama ps` says it: from size_vram (the part in GPU pools, Ollama's
 * field of /api/ps) and size. */
static void processor(long long size, long long vram, char *out, size_t len) {
  if (vram <= 0 || size <= 0)
    snprintf(out, len, "100%% CPU");
  else if (vram >= size)
    snprintf(out, len, "100%% GPU");
  else {
    int gpu = (int)(vram * 100 / size);
    snprintf(out, len, "%d%%/%d%% CPU/GPU", 100 - gpu, gpu);
  }
}

int cli_ps(int argc, char **argv) {
  const char *host = "127.0.0.1", *key = getenv("SWITCHYARD_API_KEY");
  int port = 8080;
  static const struct option opts[] = {{"host", required_argument, 0, 'H'},
                                       {"port", required_argument, 0, 'p'},
                                       {"api-key", required_argument, 0, 'k'},
                                       {0, 0, 0, 0}};
  int c;
  long num;
  optind = 1;
  while ((c = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
    if (c == 'H')
      host = optarg;
    else if (c == 'p' && sy_parse_long(optarg, 1, 65535, &num) == 0)
      port = (int)num;
    else if (c == 'p') {
      fprintf(stderr, "switchyard ps: --port must be 1..65535, not '%s'\n", optarg);
      return 2;
    } else if (c == 'k')
      key = optarg;
    else {
      fprintf(stderr, "usage: switchyard ps [--host H] [--port P] [--api-key K]\n");
      return 2;
    }
  }
  char url[512], auth[512];
  snprintf(url, sizeof url, "http://%s%s%s:%d/api/ps", strchr(host, ':') ? "[" : "", host,
           strchr(host, ':') ? "]" : "", port);
  sy_buf body = {.limit = 16 << 20};
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *cu = curl_easy_init();
  struct curl_slist *hl = NULL;
  if (key) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    hl = curl_slist_append(hl, auth);
  }
  curl_easy_setopt(cu, CURLOPT_URL, url);
  curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(cu, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(cu, CURLOPT_TIMEOUT, 10L);
  CURLcode rc = curl_easy_perform(cu);
  long status = 0;
  curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(cu);
  curl_global_cleanup();
  json_t *j = rc == CURLE_OK && body.len ? json_loadb(body.data, body.len, 0, NULL) : NULL;
  if (rc != CURLE_OK || status != 200 || !j) {
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    fprintf(stderr, "switchyard ps: %s: %s\n", url,
            rc != CURLE_OK ? curl_easy_strerror(rc)
            : msg          ? msg
                           : "unexpected reply");
    json_decref(j);
    sy_buf_free(&body);
    return 1;
  }
  printf("%-28s %-10s %-10s %-13s %-15s %-8s %-22s %-8s %s\n", "NAME", "STATE", "SIZE", "CACHE",
         "PROCESSOR", "CONTEXT", "UNTIL", "INFLIGHT", "QUEUE");
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(j, "models"), i, m) {
    char size[32], until[48], ctx[16], cache[40], proc[32];
    long long bytes = (long long)json_integer_value(json_object_get(m, "size"));
    human_size(bytes, size, sizeof size);
    cache_cell(json_object_get(m, "prompt_cache"), cache, sizeof cache);
    processor(bytes, (long long)json_integer_value(json_object_get(m, "size_vram")), proc,
              sizeof proc);
    json_t *exp = json_object_get(m, "expires_in_s");
    if (json_is_integer(exp))
      human_until((long long)json_integer_value(exp), until, sizeof until);
    else
      snprintf(until, sizeof until, "-");
    json_t *cx = json_object_get(m, "context");
    if (json_is_integer(cx))
      snprintf(ctx, sizeof ctx, "%lld", (long long)json_integer_value(cx));
    else
      snprintf(ctx, sizeof ctx, "-");
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *state = json_string_value(json_object_get(m, "state"));
    printf("%-28s %-10s %-10s %-13s %-15s %-8s %-22s %-8lld %lld\n", name ? name : "?",
           state ? state : "?", size, cache, proc, ctx, until,
           (long long)json_integer_value(json_object_get(m, "inflight")),
           (long long)json_integer_value(json_object_get(m, "queued")));
  }
  json_t *mem = json_object_get(j, "memory");
  char used[32], budget[32];
  human_size((long long)json_integer_value(json_object_get(mem, "used")), used, sizeof used);
  human_size((long long)json_integer_value(json_object_get(mem, "budget")), budget, sizeof budget);
  printf("memory: %s of %s\n", used, budget);
  json_decref(j);
  sy_buf_free(&body);
  return 0;
}
