/* ps.c — `switchyard ps`: ask a running daemon what is loaded (GET /api/ps) and print it as a
 * table, the way `ollama ps` does (PROCESSOR from Ollama's size_vram field beside ours); a peer's
 * model as NAME@PEER with the state and memory the peer reports, then one line per peer. A client
 * only: it never touches models or workers. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

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
  cli_conn cn;
  cli_conn_init(&cn, "ps");
  static const struct option opts[] = {CLI_CONN_OPTIONS, {0, 0, 0, 0}};
  static const char usage[] = "usage: switchyard ps [--host H] [--port P] [--api-key K]\n";
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
    int t = cli_conn_option(&cn, c, optarg, usage);
    if (t == -2) return 0;
    if (t < 0) return 2;
    if (t == 0) {
      fputs(usage, stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fputs(usage, stderr);
    return 2;
  }
  if (cli_conn_resolve(&cn) != 0) return 2;
  cli_reply r;
  if (cli_request(&cn, "GET", "/api/ps", NULL, 30, &r) != 0) return 1;
  if (r.status != 200 || !json_is_object(r.json)) {
    int rc = cli_fail(&cn, &r);
    cli_reply_free(&r);
    return rc;
  }
  json_t *j = r.json;
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
    const char *peer = json_string_value(json_object_get(m, "peer"));
    char shown[160]; /* a peer's model: NAME@PEER */
    snprintf(shown, sizeof shown, "%s%s%s", name ? name : "?", peer ? "@" : "", peer ? peer : "");
    printf("%-28s %-10s %-10s %-13s %-15s %-8s %-22s %-8lld %lld\n", shown, state ? state : "?",
           size, cache, proc, ctx, until,
           (long long)json_integer_value(json_object_get(m, "inflight")),
           (long long)json_integer_value(json_object_get(m, "queued")));
  }
  json_t *mem = json_object_get(j, "memory");
  char used[32], budget[32];
  human_size((long long)json_integer_value(json_object_get(mem, "used")), used, sizeof used);
  human_size((long long)json_integer_value(json_object_get(mem, "budget")), budget, sizeof budget);
  printf("memory: %s of %s\n", used, budget);
  json_array_foreach(json_object_get(j, "peers"), i, m) { /* what each peer reports of itself */
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *url = json_string_value(json_object_get(m, "url"));
    const char *state = json_string_value(json_object_get(m, "state"));
    const char *why = json_string_value(json_object_get(m, "error"));
    json_t *pm = json_object_get(m, "memory");
    printf("peer %s (%s): %s", name ? name : "?", url ? url : "?", state ? state : "?");
    if (json_is_object(pm)) {
      human_size((long long)json_integer_value(json_object_get(pm, "used")), used, sizeof used);
      human_size((long long)json_integer_value(json_object_get(pm, "budget")), budget,
                 sizeof budget);
      printf(", memory: %s of %s", used, budget);
    }
    printf("%s%s\n", why ? ": " : "", why ? why : "");
  }
  cli_reply_free(&r);
  return 0;
}
