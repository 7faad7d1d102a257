/* bench.c — an OpenAI-API load generator for `make bench`: the same requests against any
 * server (switchyard or llama-server), measured by the same client. Prints one JSON object.
 *
 * usage: bench --url http://127.0.0.1:PORT --model NAME [--tokens 128] [--streams 8]
 *              [--latency-runs 50] [--runs 3]
 *        bench --compare SWITCHYARD.json LLAMA.json [--label TEXT]   (the markdown table;
 * compare.c)
 *        bench mixed ...   (the multi-model swap workload; mixed.c)
 *        bench agent ..., bench agent-table ...   (the prompt cache in conversations; agent.c)
 * Measures: single-stream decode tok/s ((completion_tokens-1) / (last chunk - first
 * chunk)), time to first token, aggregate decode tok/s of N concurrent streams (all tokens / wall
 * time), and the latency of a 1-token non-streamed request (p50, p90). This is a benchmark, never a
 * test. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "buf.h"
#include "clock.h"
#include "compare.h"
#include "lib.h"
#include "mixed.h"

static const char *base_url, *model;
static int n_tokens = 128, n_streams = 8, latency_runs = 50, runs = 3;

typedef struct run {
  const char *prompt;
  int max_tokens;
  bool stream;
  double t0, t_first, t_last, t_end;
  long completion_tokens;
  double engine_ms; /* timings.prompt_ms + timings.predicted_ms, as the server reports them */
  long status;
  sy_buf body;
  size_t scanned;
} run;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  run *r = ud;
  double t = sy_mono_s();
  sy_buf_append(&r->body, p, sz * n);
  /* scan new complete SSE events for content and usage */
  while (r->stream) {
    char *start = r->body.data + r->scanned;
    char *end = strstr(start, "\n\n");
    if (!end) break;
    if (strncmp(start, "data: {", 7) == 0) {
      json_t *e = json_loadb(start + 6, (size_t)(end - start - 6), 0, NULL);
      json_t *ch = json_array_get(json_object_get(e, "choices"), 0);
      const char *c = json_string_value(json_object_get(json_object_get(ch, "delta"), "content"));
      if (c && *c) {
        if (r->t_first == 0) r->t_first = t;
        r->t_last = t;
      }
      json_t *u = json_object_get(e, "usage");
      if (json_is_object(u))
        r->completion_tokens = (long)json_integer_value(json_object_get(u, "completion_tokens"));
      json_decref(e);
    }
    r->scanned = (size_t)(end + 2 - r->body.data);
  }
  return sz * n;
}

static void do_run(run *r) {
  CURL *c = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s/v1/chat/completions", base_url);
  json_t *q = json_pack("{s:s, s:[{s:s, s:s}], s:i, s:f, s:i, s:b, s:b, s:{s:b}}", "model", model,
                        "messages", "role", "user", "content", r->prompt, "max_tokens",
                        r->max_tokens, "temperature", 0.0, "seed", 1, "ignore_eos", 1, "stream",
                        r->stream, "stream_options", "include_usage", 1);
  if (!r->stream) json_object_del(q, "stream_options");
  /* llama-server would otherwise reuse the previous identical prompt's KV cache and skip the
   * prompt; switchyard does not reuse prompts (yet), so compare like with like. */
  json_object_set_new(q, "cache_prompt", json_false());
  char *body = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  bench_post_json(c, url, body, hl, on_data, r);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  r->t0 = sy_mono_s();
  curl_easy_perform(c);
  r->t_end = sy_mono_s();
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  if (!r->stream) {
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    r->completion_tokens =
        (long)json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens"));
    json_t *t = json_object_get(j, "timings");
    r->engine_ms = json_number_value(json_object_get(t, "prompt_ms")) +
                   json_number_value(json_object_get(t, "predicted_ms"));
    json_decref(j);
  }
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(body);
}

static void *run_main(void *p) {
  do_run(p);
  return NULL;
}

static const char *prompt_text =
    "Write a long and detailed story about a railway switchyard at night, the trains, the people "
    "who work "
    "there, and the sounds of the engines as they move cars from one track to another.";

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "mixed") == 0) return bench_mixed(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "agent") == 0) return bench_agent(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "agent-table") == 0) return bench_agent_table(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "--compare") == 0) return bench_compare(argc, argv);
  static const struct option opts[] = {{"url", 1, 0, 'u'},
                                       {"model", 1, 0, 'm'},
                                       {"tokens", 1, 0, 't'},
                                       {"streams", 1, 0, 's'},
                                       {"latency-runs", 1, 0, 'l'},
                                       {"runs", 1, 0, 'r'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'u':
        base_url = optarg;
        break;
      case 'm':
        model = optarg;
        break;
      case 't':
        n_tokens = atoi(optarg);
        break;
      case 's':
        n_streams = atoi(optarg);
        break;
      case 'l':
        latency_runs = atoi(optarg);
        break;
      case 'r':
        runs = atoi(optarg);
        break;
      default:
        return 2;
    }
  }
  if (!base_url || !model || n_streams < 1 || n_streams > 64 || runs < 1 || latency_runs < 1) {
    fprintf(stderr,
            "usage: bench --url URL --model NAME [--tokens N] [--streams N] [--runs N] "
            "[--latency-runs N]\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  run warm = {.prompt = prompt_text, .max_tokens = 8, .stream = true};
  do_run(&warm);
  if (warm.status != 200) {
    fprintf(stderr, "bench: warm-up request failed (%ld): %s\n", warm.status,
            warm.body.data ? warm.body.data : "");
    return 1;
  }
  sy_buf_free(&warm.body);

  /* single stream */
  double best_tps = 0, sum_tps = 0, sum_ttft = 0;
  for (int i = 0; i < runs; i++) {
    run r = {.prompt = prompt_text, .max_tokens = n_tokens, .stream = true};
    do_run(&r);
    double tps = r.completion_tokens > 1 && r.t_last > r.t_first
                     ? (r.completion_tokens - 1) / (r.t_last - r.t_first)
                     : 0;
    sum_tps += tps;
    sum_ttft += r.t_first - r.t0;
    if (tps > best_tps) best_tps = tps;
    if (r.completion_tokens != n_tokens)
      fprintf(stderr, "bench: single stream got %ld tokens\n", r.completion_tokens);
    sy_buf_free(&r.body);
  }

  /* N concurrent streams */
  double sum_agg = 0;
  for (int k = 0; k < runs; k++) {
    run *rs = calloc((size_t)n_streams, sizeof *rs);
    pthread_t *th = calloc((size_t)n_streams, sizeof *th);
    double t0 = sy_mono_s();
    for (int i = 0; i < n_streams; i++) {
      rs[i] = (run){.prompt = prompt_text, .max_tokens = n_tokens, .stream = true};
      pthread_create(&th[i], NULL, run_main, &rs[i]);
    }
    long total = 0;
    double t_end = t0;
    for (int i = 0; i < n_streams; i++) {
      pthread_join(th[i], NULL);
      total += rs[i].completion_tokens;
      if (rs[i].t_end > t_end) t_end = rs[i].t_end;
      sy_buf_free(&rs[i].body);
    }
    sum_agg += total / (t_end - t0);
    free(rs);
    free(th);
  }

  /* 1-token latency */
  double *lat = calloc((size_t)latency_runs, sizeof *lat),
         *over = calloc((size_t)latency_runs, sizeof *over);
  for (int i = 0; i < latency_runs; i++) {
    run r = {.prompt = "Hi", .max_tokens = 1, .stream = false};
    do_run(&r);
    lat[i] = (r.t_end - r.t0) * 1000;
    over[i] = lat[i] - r.engine_ms; /* time outside the engine: HTTP, JSON, IPC, queues */
    sy_buf_free(&r.body);
  }
  qsort(lat, (size_t)latency_runs, sizeof *lat, bench_cmp_double);
  qsort(over, (size_t)latency_runs, sizeof *over, bench_cmp_double);
  printf(
      "{\"single_stream_tok_s\": %.2f, \"single_stream_best_tok_s\": %.2f, \"ttft_ms\": %.1f, "
      "\"streams\": %d, \"aggregate_tok_s\": %.2f, \"one_token_p50_ms\": %.2f, "
      "\"one_token_p90_ms\": %.2f, "
      "\"overhead_p50_ms\": %.3f, \"tokens\": %d, \"runs\": %d}\n",
      sum_tps / runs, best_tps, sum_ttft / runs * 1000, n_streams, sum_agg / runs,
      lat[latency_runs / 2], lat[latency_runs * 9 / 10], over[latency_runs / 2], n_tokens, runs);
  free(lat);
  free(over);
  curl_global_cleanup();
  return 0;
}
