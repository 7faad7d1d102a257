/* budget.c — the memory budget (a RAM budget here; the same rules hold for a GPU) on daemons of
 * their own: eviction by priority and LRU, the wait queue and queue_full, the swap guard, admin
 * load/unload (and unloading a busy model), and the backoff after a failed load.
 * Must never happen: the budget exceeded, a busy or guarded model evicted, a waiter left waiting
 * with no bound.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

/* Names of the models /api/ps lists (comma-separated, sorted by the daemon's order), the memory
 * it counts, and the summed resident memory of their worker processes read from /proc. */
static void budget_ps(char *names, size_t len, long long *used, long long *budget, long long *rss) {
  resp r;
  it_http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  names[0] = '\0';
  *rss = 0;
  json_t *models = json_object_get(r.json, "models");
  size_t i;
  json_t *m;
  json_array_foreach(models, i, m) {
    size_t n = strlen(names);
    snprintf(names + n, len - n, "%s%s", n ? "," : "", it_jstr(m, "name"));
    long long pid = it_jnum(m, "pid");
    if (pid > 0) {
      char path[64], line[256];
      snprintf(path, sizeof path, "/proc/%lld/status", pid);
      FILE *f = fopen(path, "r");
      while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) *rss += strtoll(line + 6, NULL, 10) * 1024;
      if (f) fclose(f);
    }
  }
  *used = it_jnum(r.json, "memory.used");
  *budget = it_jnum(r.json, "memory.budget");
  it_resp_clear(&r);
}

static void budget_body(void) {
  char names[256];
  long long used, budget, rss;
  CHECK(it_budget_request("a") == 200 && it_budget_request("b") == 200, "a and b load");
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strcmp(names, "pinned,a,b") == 0, "resident after a, b: %s", names);
  CHECK(it_budget_request("a") == 200, "a again (b is now the least recently used)");
  CHECK(it_budget_request("c") == 200, "c loads by evicting");
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strcmp(names, "pinned,a,c") == 0, "LRU eviction took b: %s", names);
  CHECK(it_budget_request("b") == 200, "b comes back");
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strcmp(names, "pinned,b,c") == 0, "then a was the least recently used: %s", names);
  /* round robin: every request served, the budget never exceeded, the pinned model never leaves */
  const char *order[] = {"a", "b", "c", "c", "a", "b", "a", "c", "b", "b", "a", "c"};
  for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
    long st = it_budget_request(order[i]);
    CHECK(st == 200, "request %zu to %s: %ld", i, order[i], st);
    budget_ps(names, sizeof names, &used, &budget, &rss);
    CHECK(budget == 480LL << 20, "budget %lld", budget);
    CHECK(used <= budget, "counted %lld > budget %lld (%s)", used, budget, names);
    CHECK(rss <= budget, "resident %lld > budget %lld (%s)", rss, budget, names);
    CHECK(strncmp(names, "pinned,", 7) == 0, "the pinned model left: %s", names);
    CHECK(strstr(names, order[i]) != NULL, "%s not resident after its request: %s", order[i],
          names);
  }
  /* a model that can never fit is refused at once, with the numbers */
  resp r;
  it_b_chat(it_chat_body("huge", "hello", 2, false), &r);
  bool refused = it_is_error(&r, 507, "model_too_large");
  char msg[1024];
  snprintf(msg, sizeof msg, "%s",
           it_jstr(r.json, "error.message") ? it_jstr(r.json, "error.message") : "(none)");
  bool numbers = strstr(msg, "needs") && strstr(msg, "budget is 0.47 GiB") && strstr(msg, "pinned");
  it_resp_clear(&r);
  CHECK(refused, "huge: 507 model_too_large");
  CHECK(numbers, "the message gives need, budget and pinned: %.400s", msg);
  /* a worker killed with SIGKILL is noticed and its memory returned: then loading the third model
   * needs no eviction */
  budget_ps(names, sizeof names, &used, &budget, &rss);
  const char *victim = strrchr(names, ',') + 1; /* the last one listed */
  char vname[16];
  snprintf(vname, sizeof vname, "%s", victim);
  resp p;
  it_http_do(&B, "GET", "/api/ps", NULL, &p, NULL);
  long long pid = -1;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(p.json, "models"), i,
                     m) if (strcmp(it_jstr(m, "name"), vname) == 0) pid = it_jnum(m, "pid");
  it_resp_clear(&p);
  CHECK(pid > 0, "pid of %s", vname);
  kill((pid_t)pid, SIGKILL);
  bool gone = false;
  for (int tries = 0; tries < 100000 && !gone; tries++) { /* bounded: wait until it is noticed */
    budget_ps(names, sizeof names, &used, &budget, &rss);
    gone = strstr(names, vname) == NULL;
  }
  CHECK(gone, "the killed worker of %s is still listed: %s", vname, names);
  char before[256];
  snprintf(before, sizeof before, "%s", names); /* pinned + one model */
  const char *third = strcmp(vname, "a") && strstr(before, "a") == NULL    ? "a"
                      : strcmp(vname, "b") && strstr(before, ",b") == NULL ? "b"
                                                                           : "c";
  CHECK(it_budget_request(third) == 200, "load %s", third);
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strstr(names, third) && strlen(names) > strlen(before), "no eviction was needed: %s -> %s",
        before, names);
}

static void t_budget(void) {
  /* Estimates (llama-fit-params): a, b, c (tiny-qwen2, context 256, 1 slot) 166 MiB each, mostly
   * the logits buffer; the pinned bert 3 MiB estimated, ~18 MiB measured (the larger counts);
   * huge (context 262144 × 4 slots) 571 MiB; plus 16 MiB of process overhead each. A 480 MiB
   * budget holds the pinned model and two of a, b, c, never three, and never huge. */
  char yaml[2048];
  const char *d = it_models_dir;
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmemory: {budget: 480MiB}\nscheduling: {swap_guard: 0}\nmodels:\n"
           "  - {name: pinned, file: %s/tiny-bert.gguf, pin: true, context: 128, parallel: 1}\n"
           "  - {name: a, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n"
           "  - {name: b, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n"
           "  - {name: c, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n"
           "  - {name: huge, file: %s/tiny-qwen2.gguf, context: 262144, parallel: 4}\n",
           d, d, d, d, d);
  it_with_own_daemon("budget", yaml, budget_body);
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/budget.yaml", it_tmpdir);
  /* what was measured is remembered for the next start */
  char state[600];
  snprintf(state, sizeof state, "%s.state/measurements.json", cfg);
  json_t *j = json_load_file(state, 0, NULL);
  size_t n = json_object_size(json_object_get(j, "models"));
  bool has_a = false;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(j, "models"), k, v) has_a |=
      strstr(k, "tiny-qwen2.gguf|") && strstr(k, "ctx=256|np=1") && json_integer_value(v) > 0;
  json_decref(j);
  CHECK(n >= 2 && has_a, "measurements remembered in %s: %zu entries", state, n);
}

static void queue_body(void) {
  resp r;
  it_bg_req bg;
  it_bg_chat(&bg, &B, it_long_chat_body("x", "keep going", 2000, false));
  bool busy = it_wait_inflight(&B, "x", NULL);
  /* y needs x's room, x is busy, and y may queue nobody: refused at once, with Retry-After */
  it_b_chat(it_chat_body("y", "hello", 2, false), &r);
  bool full = it_is_error(&r, 503, "queue_full") && atoi(r.retry_after) > 0;
  long y_status = r.status;
  it_resp_clear(&r);
  /* z may queue: it waits for x's request to end, then evicts x and loads */
  it_b_chat(it_chat_body("z", "hello", 2, false), &r);
  long z_status = r.status;
  it_resp_clear(&r);
  it_bg_join(&bg);
  long x_status = bg.r.status;
  long long x_tokens = it_jnum(bg.r.json, "usage.completion_tokens");
  it_resp_clear(&bg.r);
  CHECK(busy, "x never showed as busy");
  CHECK(full, "y: want 503 queue_full with Retry-After, got %ld", y_status);
  CHECK(z_status == 200, "z waited and was served: %ld", z_status);
  CHECK(x_status == 200 && x_tokens == 2000,
        "x's request ran to its end undisturbed: %ld, %lld tokens", x_status, x_tokens);
  char names[256];
  long long used, budget, rss;
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strcmp(names, "z") == 0, "z replaced x: %s", names);
}

static void t_queue(void) {
  /* x, y, z: tiny-qwen2 with batch 64 (~73 MiB estimated each); a 120 MiB budget holds one */
  char yaml[1024];
  const char *d = it_models_dir;
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmemory: {budget: 120MiB}\nscheduling: {swap_guard: 0}\n"
           "defaults: {parallel: 1, batch: 64, keep_alive: -1}\nmodels:\n"
           "  - {name: x, file: %s/tiny-qwen2.gguf}\n"
           "  - {name: y, file: %s/tiny-qwen2.gguf, max_queue: 0}\n"
           "  - {name: z, file: %s/tiny-qwen2.gguf, max_queue: 4}\n",
           d, d, d);
  it_with_own_daemon("queue", yaml, queue_body);
}

/* The thrash guard: a model loaded less than swap_guard ago is not evicted, even idle; a request
 * that needs its room waits (here: may not wait, max_queue 0, so it is refused at once). */
static void guard_body(void) {
  CHECK(it_budget_request("a") == 200, "a loads");
  resp r;
  it_b_chat(it_chat_body("b", "hello", 2, false), &r);
  bool held = it_is_error(&r, 503, "queue_full");
  it_resp_clear(&r);
  char names[256];
  long long used, budget, rss;
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(held, "b must wait for a's guard (and may not wait: 503)");
  CHECK(strcmp(names, "a") == 0, "a keeps its place: %s", names);
}

static void t_swap_guard(void) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmemory: {budget: 120MiB}\nscheduling: {swap_guard: 1h}\n"
           "defaults: {parallel: 1, batch: 64, keep_alive: -1}\nmodels:\n"
           "  - {name: a, file: %s/tiny-qwen2.gguf}\n"
           "  - {name: b, file: %s/tiny-qwen2.gguf, max_queue: 0}\n",
           it_models_dir, it_models_dir);
  it_with_own_daemon("guard", yaml, guard_body);
}

static void t_admin(void) {
  resp r;
  it_post("/api/load", "{\"model\":\"busy\"}", &r);
  CHECK(r.status == 200 && strcmp(it_jstr(r.json, "status"), "loaded") == 0, "load: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  it_get("/v1/models/busy", &r);
  CHECK(it_jnum(r.json, "memory.estimated") > 0 && it_jnum(r.json, "memory.measured") > 0,
        "memory in /v1/models: %s", r.body.data);
  it_resp_clear(&r);
  it_post("/api/unload", "{\"model\":\"busy\"}", &r);
  CHECK(r.status == 200 && strcmp(it_jstr(r.json, "status"), "unloaded") == 0, "unload: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  it_get("/api/ps", &r);
  bool listed = r.body.data && strstr(r.body.data, "\"busy\"");
  it_resp_clear(&r);
  CHECK(!listed, "busy still listed after unload");
  it_post("/api/unload", "{\"model\":\"busy\"}", &r);
  CHECK(r.status == 200, "unloading what is not loaded is fine: %ld", r.status);
  it_resp_clear(&r);
  it_post("/api/unload", "{\"model\":\"nope\"}", &r);
  CHECK(it_is_error(&r, 404, "model_not_found"), "unknown model: %ld", r.status);
  it_resp_clear(&r);
  it_get("/api/load", &r);
  CHECK(it_is_error(&r, 405, "method_not_allowed"), "GET /api/load: %ld", r.status);
  it_resp_clear(&r);
}

/* Unloading a model that is serving a request is refused (409), the request runs on. */
static void t_admin_unload_busy(void) {
  resp r;
  it_bg_req bg;
  it_bg_chat(&bg, &D, it_long_chat_body("slow", "keep going", 2000, false));
  bool busy = it_wait_inflight(&D, "slow", NULL);
  it_post("/api/unload", "{\"model\":\"slow\"}", &r);
  bool refused =
      it_is_error(&r, 409, "model_busy") && strstr(it_jstr(r.json, "error.message"), "in flight");
  long st = r.status;
  it_resp_clear(&r);
  it_bg_join(&bg);
  long bg_status = bg.r.status;
  long long tokens = it_jnum(bg.r.json, "usage.completion_tokens");
  it_resp_clear(&bg.r);
  CHECK(busy, "slow never showed as busy");
  CHECK(refused, "unload of a busy model: want 409 model_busy, got %ld", st);
  CHECK(bg_status == 200 && tokens == 2000, "the request ran on: %ld, %lld tokens", bg_status,
        tokens);
}

/* A model whose file is cut short: its load fails (500 with the engine's reason); the next
 * request within the back-off gets that reason at once (503 + Retry-After) instead of another
 * doomed load. */
static void backoff_body(void) {
  resp r;
  it_b_chat(it_chat_body("broken", "hello", 2, false), &r);
  bool failed = it_is_error(&r, 500, "load_failed");
  long st1 = r.status;
  it_resp_clear(&r);
  it_b_chat(it_chat_body("broken", "hello", 2, false), &r);
  bool backed_off = it_is_error(&r, 503, "load_failed") && atoi(r.retry_after) > 0 &&
                    strstr(it_jstr(r.json, "error.message"), "retried in");
  long st2 = r.status;
  it_resp_clear(&r);
  CHECK(failed, "first request: want 500 load_failed, got %ld", st1);
  CHECK(backed_off, "second request: want 503 with Retry-After, got %ld", st2);
}

static void t_load_backoff(void) {
  char src[600], dst[600];
  snprintf(src, sizeof src, "%s/tiny-qwen2.gguf", it_models_dir);
  snprintf(dst, sizeof dst, "%s/broken.gguf", it_tmpdir);
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  CHECK(in && out, "copy");
  fseek(in, 0, SEEK_END);
  long keep = ftell(in) - (4L << 20); /* the header stays whole; the last tensors are cut off */
  fseek(in, 0, SEEK_SET);
  char buf[65536];
  for (long done = 0; done < keep;) {
    size_t n =
        fread(buf, 1, (size_t)(keep - done) < sizeof buf ? (size_t)(keep - done) : sizeof buf, in);
    if (n == 0) break;
    fwrite(buf, 1, n, out);
    done += (long)n;
  }
  fclose(in);
  fclose(out);
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmodels:\n  - {name: broken, file: %s, context: 256, parallel: 1}\n",
           dst);
  it_with_own_daemon("backoff", yaml, backoff_body);
}

static const it_test tests[] = {
    {"memory_budget", t_budget, false},
    {"wait_queue", t_queue, false},
    {"swap_guard", t_swap_guard, false},
    {"admin_load_unload", t_admin, false},
    {"admin_unload_busy", t_admin_unload_busy, false},
    {"load_backoff", t_load_backoff, false},
};
const itest_table itest_budget = {"budget", tests, sizeof tests / sizeof *tests};
