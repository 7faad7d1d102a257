/* threads.c — the busy CPU workers' thread shares (src/daemon/sched/cpu_share.h): two models busy
 * at once on daemon B split the cores (at least 1 thread each, never more than the cores together),
 * and the one left busy gets all of its threads back. Must never depend on the machine's core
 * count: the models ask for every core, whatever that is, and the expectation is computed from it.
 * Structure, not meaning; every wait is a bounded poll of /api/ps, never a sleep. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct stream_bg {
  const char *model;
  atomic_bool stop; /* set by the test: the client hangs up (the daemon cancels the request) */
  atomic_int chunks;
  pthread_t th;
} stream_bg;

static size_t stream_bg_data(char *p, size_t sz, size_t n, void *ud) {
  (void)p;
  stream_bg *b = ud;
  atomic_fetch_add(&b->chunks, 1);
  return atomic_load(&b->stop) ? 0 : sz * n; /* 0 = curl closes the connection */
}

/* A streamed chat on daemon B that runs until the test sets stop (ignore_eos, a long budget). */
static void *stream_bg_main(void *ud) {
  stream_bg *b = ud;
  it_post_streamed(&B, "/v1/chat/completions", it_long_chat_body(b->model, "Go on", 100000, true),
                   stream_bg_data, b, NULL);
  return NULL;
}

/* "inflight" and "threads" of share-a and share-b in one snapshot of B's /api/ps (-1 when not
 * listed / absent): the scheduler changes both under one lock, so one response is consistent. */
static void ps_threads(long long *ia, long long *ta, long long *ib, long long *tb) {
  resp r;
  it_http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  *ia = *ta = *ib = *tb = -1;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(r.json, "models"), i, m) {
    const char *name = json_string_value(json_object_get(m, "name"));
    bool is_a = name && !strcmp(name, "share-a"), is_b = name && !strcmp(name, "share-b");
    if (!is_a && !is_b) continue;
    json_t *t = json_object_get(m, "threads");
    *(is_a ? ia : ib) = json_integer_value(json_object_get(m, "inflight"));
    if (json_is_integer(t)) *(is_a ? ta : tb) = json_integer_value(t);
  }
  it_resp_clear(&r);
}

static int cores_here(void) { /* the daemon (our child) inherits this affinity */
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
}

static void cpu_share_body(void) {
  int ncpu = cores_here();
  stream_bg a = {.model = "share-a"}, b = {.model = "share-b"};
  atomic_init(&a.stop, false), atomic_init(&b.stop, false);
  atomic_init(&a.chunks, 0), atomic_init(&b.chunks, 0);
  pthread_create(&a.th, NULL, stream_bg_main, &a);
  pthread_create(&b.th, NULL, stream_bg_main, &b);
  long long ia = -1, ta = -1, ib = -1, tb = -1;
  for (int i = 0; i < 100000 && !(ia == 1 && ib == 1);
       i++) { /* bounded: both loaded and streaming */
    ps_threads(&ia, &ta, &ib, &tb);
  }
  bool both = ia == 1 && ib == 1;
  long long want_sum =
      ncpu > 2 ? ncpu : 2; /* each wants ncpu; together they get the cores, >= 1 each */
  bool shared = ta >= 1 && tb >= 1 && ta + tb == want_sum;
  atomic_store(&a.stop, true); /* a's client leaves: a is cancelled, b has the cores again */
  long long tb_alone = -1, ta_now = -1;
  for (int i = 0; i < 100000 && ia != 0; i++) ps_threads(&ia, &ta_now, &ib, &tb_alone);
  bool b_still = ib == 1;
  atomic_store(&b.stop, true);
  pthread_join(a.th, NULL);
  pthread_join(b.th, NULL);
  CHECK(both, "both models busy at once (inflight a %lld, b %lld)", ia, ib);
  CHECK(shared,
        "%d cores, two busy workers wanting %d each: threads %lld + %lld (want %lld in all, >= 1 "
        "each)",
        ncpu, ncpu, ta, tb, want_sum);
  CHECK(b_still && tb_alone == ncpu, "b alone again: %lld threads (want %d; still busy: %d)",
        tb_alone, ncpu, b_still);
}

static void t_cpu_share(void) {
  char y[1024];
  int n = cores_here();
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: share-a, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, threads: %d, "
           "gpu_layers: 0}\n"
           "  - {name: share-b, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, threads: %d, "
           "gpu_layers: 0}\n",
           it_models_dir, n, it_models_dir, n);
  it_with_own_daemon("cpu_share", y, cpu_share_body);
}

static const it_test tests[] = {
    {"cpu_share", t_cpu_share, false},
};
const itest_table itest_threads = {"threads", tests, sizeof tests / sizeof *tests};
