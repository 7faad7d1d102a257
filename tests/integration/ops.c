/* ops.c — running the main daemon: keep_alive 0, GET /metrics (promtool when installed),
 * `switchyard ps`, devices, the /api/events feed, one load at a time, the free-memory check
 * (memory_busy), per-request keep_alive, a third-party GGUF (../shared/testdata) and API keys.
 * Also the command line: a number option that is not one is a usage error (exit 2).
 * Must never happen: a metric or event that disagrees with what happened, two loads at once past
 * scheduling.max_loads, a request without a valid key answered, a bad number on the command line
 * taken (or read as 0) and the daemon started anyway.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include <fcntl.h>

#include "harness.h"

/* D's /api/ps lists name */
static bool ps_lists(const char *name) {
  json_t *m = it_ps_model(&D, name);
  bool listed = m != NULL;
  json_decref(m);
  return listed;
}

/* Ollama's per-request keep_alive: honoured where the matrix allows it (flex), ignored elsewhere.
 */
static void t_request_keep_alive(void) {
  resp r;
  json_t *q = it_chat_body("flex", "hi", 2, false);
  json_object_set_new(q, "keep_alive", json_string("0s"));
  it_post_json("/v1/chat/completions", q, &r);
  CHECK(r.status == 200, "flex: %ld", r.status);
  it_resp_clear(&r);
  CHECK(!ps_lists("flex"), "keep_alive 0 on request: flex should be unloaded as it ended");
  q = it_chat_body("chat", "hi", 2, false);
  json_object_set_new(q, "keep_alive", json_integer(0));
  it_post_json("/v1/chat/completions", q, &r);
  CHECK(r.status == 200, "chat: %ld", r.status);
  it_resp_clear(&r);
  CHECK(ps_lists("chat"), "chat does not allow request keep_alive: it stays");
  q = it_chat_body("flex", "hi", 2, false);
  json_object_set_new(q, "keep_alive", json_string("soon"));
  it_post_json("/v1/chat/completions", q, &r);
  CHECK(it_is_error(&r, 400, "invalid_value") &&
            strcmp(it_jstr(r.json, "error.param"), "keep_alive") == 0,
        "bad keep_alive: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

static void t_devices(void) {
  resp r;
  it_get("/api/ps", &r);
  json_t *devs = json_object_get(r.json, "devices");
  bool cpu = false;
  size_t i;
  json_t *d;
  json_array_foreach(devs, i, d) cpu |=
      strcmp(it_jstr(d, "type"), "cpu") == 0 && it_jnum(d, "total") > 0 && it_jnum(d, "free") >= 0;
  it_resp_clear(&r);
  CHECK(cpu, "the engine's CPU device, with its memory, in /api/ps");
}

/* GET /api/events follows loads and unloads as they happen, in order. */
static void t_events(void) {
  resp r;
  it_post("/api/unload", "{\"model\":\"busy\"}", &r); /* start from unloaded, whatever ran before */
  CHECK(r.status == 200, "unload first: %ld", r.status);
  it_resp_clear(&r);
  it_feed f = {.mu = PTHREAD_MUTEX_INITIALIZER,
               .cond = PTHREAD_COND_INITIALIZER,
               .until = {"\"type\":\"unloaded\",\"model\":\"busy\""}};
  pthread_t th;
  pthread_create(&th, NULL, it_feed_main, &f);
  pthread_mutex_lock(&f.mu);
  while (!f.hello) pthread_cond_wait(&f.cond, &f.mu); /* subscribed before anything happens */
  pthread_mutex_unlock(&f.mu);
  it_post("/api/load", "{\"model\":\"busy\"}", &r);
  long load = r.status;
  it_resp_clear(&r);
  it_post("/api/unload", "{\"model\":\"busy\"}", &r);
  long unload = r.status;
  it_resp_clear(&r);
  pthread_join(th, NULL);
  const char *b = f.body.data ? f.body.data : "";
  const char *want[] = {
      "\"type\":\"loading\",\"model\":\"busy\"", "\"type\":\"load_progress\",\"model\":\"busy\"",
      "\"type\":\"loaded\",\"model\":\"busy\"", "\"type\":\"unloading\",\"model\":\"busy\"",
      "\"type\":\"unloaded\",\"model\":\"busy\""};
  const char *at = b;
  bool ordered = true;
  for (int i = 0; i < 5 && ordered; i++) {
    const char *p = strstr(at, want[i]);
    ordered = p != NULL;
    if (p) at = p;
  }
  bool sse = strncmp(b, "data: {", 7) == 0;
  sy_buf_free(&f.body);
  CHECK(load == 200 && unload == 200, "load %ld, unload %ld", load, unload);
  CHECK(f.rc == CURLE_WRITE_ERROR, "the feed ended by us (curl %d)", f.rc);
  CHECK(sse, "server-sent events");
  CHECK(ordered, "loading, load_progress, loaded, unloading, unloaded for busy, in that order");
}

static void *admin_load_main(void *arg) {
  char body[128];
  snprintf(body, sizeof body, "{\"model\":\"%s\"}", (const char *)arg);
  resp r;
  it_post("/api/load", body, &r);
  it_resp_clear(&r);
  return NULL;
}

/* scheduling.max_loads (1 by default): two models asked for at once load one after the other. */
static void t_one_load_at_a_time(void) {
  resp r;
  it_post("/api/unload", "{\"model\":\"busy\"}", &r);
  it_resp_clear(&r);
  it_post("/api/unload", "{\"model\":\"flex\"}", &r);
  it_resp_clear(&r);
  it_feed f = {.mu = PTHREAD_MUTEX_INITIALIZER,
               .cond = PTHREAD_COND_INITIALIZER,
               .until = {"\"type\":\"loaded\",\"model\":\"busy\"",
                         "\"type\":\"loaded\",\"model\":\"flex\""}};
  pthread_t th, l1, l2;
  pthread_create(&th, NULL, it_feed_main, &f);
  pthread_mutex_lock(&f.mu);
  while (!f.hello) pthread_cond_wait(&f.cond, &f.mu);
  pthread_mutex_unlock(&f.mu);
  pthread_create(&l1, NULL, admin_load_main, "busy");
  pthread_create(&l2, NULL, admin_load_main, "flex");
  pthread_join(l1, NULL);
  pthread_join(l2, NULL);
  pthread_join(th, NULL);
  /* the events alternate: loading X, loaded X, loading Y, loaded Y */
  const char *b = f.body.data ? f.body.data : "";
  int depth = 0, max_depth = 0, loads = 0;
  for (const char *p = b; (p = strstr(p, "\"type\":\"load")) != NULL; p++) {
    static const char loading[] = "\"type\":\"loading\"", loaded[] = "\"type\":\"loaded\"",
                      failed[] = "\"type\":\"load_failed\"";
    if (strncmp(p, loading, sizeof loading - 1) == 0) {
      depth++;
      loads++;
    } else if (strncmp(p, loaded, sizeof loaded - 1) == 0 ||
               strncmp(p, failed, sizeof failed - 1) == 0) {
      depth--;
    }
    if (depth > max_depth) max_depth = depth;
  }
  sy_buf_free(&f.body);
  CHECK(loads == 2, "two loads seen: %d (curl %d)", loads, f.rc);
  CHECK(max_depth == 1, "loads overlapped (%d at once)", max_depth);
}

static void t_ps_cli(void) {
  resp r;
  it_post_json("/v1/chat/completions", it_chat_body("chat", "hi", 2, false),
               &r); /* chat is loaded */
  it_resp_clear(&r);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s ps --port %d", it_daemon_bin, D.port);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL, "popen");
  sy_buf out = {0};
  char line[512];
  while (fgets(line, sizeof line, p)) sy_buf_puts(&out, line);
  int st = pclose(p);
  bool header = out.data && strstr(out.data, "NAME") && strstr(out.data, "SIZE") &&
                strstr(out.data, "CACHE") && strstr(out.data, "CONTEXT");
  bool chat = out.data && strstr(out.data, "\nchat ") && strstr(out.data, "memory: ");
  sy_buf_free(&out);
  CHECK(st == 0, "switchyard ps exited %d", st);
  CHECK(header && chat, "the table lists chat under its header");
  snprintf(cmd, sizeof cmd, "%s ps --port 1 2>/dev/null", it_daemon_bin);
  p = popen(cmd, "r");
  while (p && fgets(line, sizeof line, p)) {
  }
  st = p ? pclose(p) : -1;
  CHECK(st != 0, "no daemon there: a failing exit status");
}

/* Run the switchyard program with args (NULL-ended, at most 14) to its end: its exit status (128 +
 * signal when killed, -1 when it could not be run), its stderr appended to err (stdout goes to
 * /dev/null). Waits on the pipe's end, never on time. */
static int run_switchyard(const char *const *args, sy_buf *err) {
  const char *argv[16] = {it_daemon_bin};
  for (size_t i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
  int pfd[2];
  if (pipe(pfd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    if (null > 2) close(null);
    dup2(pfd[1], 2);
    close(pfd[0]);
    close(pfd[1]);
    execv(it_daemon_bin, (char *const *)argv);
    _exit(127);
  }
  close(pfd[1]);
  if (pid < 0) {
    close(pfd[0]);
    return -1;
  }
  char buf[512];
  ssize_t n;
  while ((n = read(pfd[0], buf, sizeof buf)) > 0) sy_buf_append(err, buf, (size_t)n);
  close(pfd[0]);
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A number option that is not a number in its range (sy_parse_long, src/common/argnum.c) is a
 * usage error: exit status 2 and a line naming the option and the value, before anything starts.
 * The daemon's cases end in --check and a config that does not exist, so a value wrongly taken
 * would show as the config's error (status 1), never as a daemon left running. */
static void t_cli_bad_numbers(void) {
  char missing[600];
  snprintf(missing, sizeof missing, "%s/no-such-config.yaml", it_tmpdir);
  static const char *const bad[][2] = {
      {"--load-timeout", "abc"}, {"--load-timeout", "0"},     {"--load-timeout", "-5"},
      {"--load-timeout", "10s"}, {"--load-timeout", "86401"}, {"--load-timeout", ""},
      {"--port", "abc"},         {"--port", "65536"},         {"--port", "99999999999999999999"},
      {"--ready-fd", "x1"},      {"--ready-fd", "-1"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    sy_buf err = {0};
    const char *args[] = {bad[i][0], bad[i][1], "--check", "--config", missing, NULL};
    int st = run_switchyard(args, &err);
    char want[128];
    snprintf(want, sizeof want, "not '%s'", bad[i][1]);
    bool named = err.data && strstr(err.data, bad[i][0]) && strstr(err.data, want) &&
                 strstr(err.data, " must be ");
    bool started = err.data && strstr(err.data, "no-such-config");
    char said[512];
    snprintf(said, sizeof said, "%s", err.data ? err.data : "");
    sy_buf_free(&err);
    CHECK(st == 2 && named && !started, "switchyard %s '%s': exit %d, stderr: %s", bad[i][0],
          bad[i][1], st, said);
  }
  /* the ps subcommand's own --port */
  static const char *const ps_bad[] = {"abc", "0", "65536", "8080x"};
  for (size_t i = 0; i < sizeof ps_bad / sizeof *ps_bad; i++) {
    sy_buf err = {0};
    const char *args[] = {"ps", "--port", ps_bad[i], NULL};
    int st = run_switchyard(args, &err);
    char want[128];
    snprintf(want, sizeof want, "--port must be 1..65535, not '%s'", ps_bad[i]);
    bool named = err.data && strstr(err.data, want);
    char said[512];
    snprintf(said, sizeof said, "%s", err.data ? err.data : "");
    sy_buf_free(&err);
    CHECK(st == 2 && named, "switchyard ps --port '%s': exit %d, stderr: %s", ps_bad[i], st, said);
  }
}

static void t_keep_alive_zero(void) {
  resp r;
  it_post_json("/v1/chat/completions", it_chat_body("once", "hi", 2, false), &r);
  CHECK(r.status == 200, "status %ld", r.status);
  it_resp_clear(&r);
  CHECK(!ps_lists("once"), "a keep_alive 0 model is unloaded when its request ends");
}

static void t_third_party_gguf(void) {
  resp r;
  it_post_json("/v1/completions",
               json_pack("{s:s, s:s, s:i, s:f}", "model", "llama2", "prompt", "The quick brown fox",
                         "max_tokens", 6, "temperature", 0.0),
               &r);
  CHECK(r.status == 200, "completion on a third-party GGUF: %ld %s", r.status, r.body.data);
  CHECK(it_jnum(r.json, "usage.prompt_tokens") >= 5, "prompt tokens");
  it_resp_clear(&r);
  it_post_json("/v1/embeddings",
               json_pack("{s:s, s:[s,s]}", "model", "llama2-embed", "input", "one", "two"), &r);
  CHECK(r.status == 200, "embeddings (mean pooling) on a third-party GGUF: %ld %s", r.status,
        r.body.data);
  size_t dim;
  double n = it_norm_of(
      json_object_get(json_array_get(json_object_get(r.json, "data"), 1), "embedding"), &dim);
  CHECK(dim == 8 && fabs(n - 1) < 1e-3, "dim %zu (n_embd 8), norm %f", dim, n);
  it_resp_clear(&r);
}

/* GET path on d (extra headers NULL-ended, or NULL): the HTTP status. */
static long get_status(const daemon_proc *d, const char *path, const char *const *headers) {
  resp r;
  it_http_do(d, "GET", path, NULL, &r, headers);
  long st = r.status;
  it_resp_clear(&r);
  return st;
}

static void t_api_keys(void) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/keys.yaml", it_tmpdir);
  FILE *f = fopen(cfg, "w");
  fprintf(f,
          "api_keys: [sk-test-one, sk-test-two]\nlog_level: warn\nmodels:\n  - name: chat\n    "
          "file: %s/tiny-qwen2.gguf\n    context: 256\n    parallel: 1\n",
          it_models_dir);
  fclose(f);
  daemon_proc k = {0};
  CHECK(it_start_daemon(&k, cfg) == 0, "start the keyed daemon");
  resp r;
  it_http_do(&k, "GET", "/v1/models", NULL, &r, NULL);
  long no_key = r.status;
  bool code_ok = it_is_error(&r, 401, "invalid_api_key");
  it_resp_clear(&r);
  const char *wrong[] = {"Authorization: Bearer sk-wrong", NULL};
  long bad_key = get_status(&k, "/v1/models", wrong);
  long metrics_no_key = get_status(&k, "/metrics", NULL);
  k.api_key = "sk-test-two";
  long good_key = get_status(&k, "/v1/models", NULL);
  long metrics_key = get_status(&k, "/metrics", NULL);
  k.api_key = NULL;
  long health = get_status(&k, "/health", NULL);
  int st = it_stop_daemon(&k);
  CHECK(no_key == 401 && code_ok, "no key: %ld", no_key);
  CHECK(bad_key == 401, "wrong key: %ld", bad_key);
  CHECK(good_key == 200, "right key: %ld", good_key);
  CHECK(health == 200, "health needs no key: %ld", health);
  CHECK(metrics_no_key == 401 && metrics_key == 200,
        "/metrics needs the key: %ld without, %ld with", metrics_no_key, metrics_key);
  CHECK(st == 0, "clean exit on SIGTERM: %d", st);
}

/* POST path {"model": chat, ...extra} on B with key: the status; *ollama_shape: the error is
 * Ollama's {"error": "..."} naming the admin key, *openai_code: OpenAI's error code (or ""). */
static long admin_post(const char *key, const char *path, json_t *body, bool *ollama_shape,
                       char openai_code[64]) {
  resp r;
  B.api_key = key;
  it_post_json_at(&B, path, body, &r);
  B.api_key = NULL;
  long st = r.status;
  const char *oe = json_string_value(json_object_get(r.json, "error"));
  if (ollama_shape) *ollama_shape = oe && strstr(oe, "admin_keys");
  const char *code = json_string_value(json_object_get(json_object_get(r.json, "error"), "code"));
  if (openai_code) snprintf(openai_code, 64, "%s", code ? code : "");
  it_resp_clear(&r);
  return st;
}

/* admin_keys: an API key may use models but not pull, delete, load or unload (403
 * admin_key_required, in each route's shape); an admin key may do both. */
static void admin_body(void) {
  char code[64];
  bool oshape;
  long st = admin_post("sk-user", "/api/load", json_pack("{s:s}", "model", "chat"), NULL, code);
  CHECK(st == 403 && !strcmp(code, "admin_key_required"), "load with an API key: %ld %s", st, code);
  st = admin_post("sk-user", "/api/pull", json_pack("{s:s}", "model", "hf.co/a/b:Q4_K_M"), &oshape,
                  NULL);
  CHECK(st == 403 && oshape, "pull with an API key: %ld, Ollama's shape %d", st, oshape);
  st = admin_post("sk-user", "/api/generate",
                  json_pack("{s:s, s:i}", "model", "chat", "keep_alive", 0), &oshape, NULL);
  CHECK(st == 403 && oshape, "Ollama's unload (keep_alive 0) with an API key: %ld", st);
  st = admin_post("sk-user", "/api/generate", json_pack("{s:s}", "model", "chat"), NULL, NULL);
  CHECK(st == 200, "Ollama's load (an empty generate) is a request like any: %ld", st);
  st = admin_post("sk-admin", "/api/unload", json_pack("{s:s}", "model", "chat"), NULL, code);
  CHECK(st == 200, "unload with the admin key: %ld %s", st, code);
  st = admin_post("sk-admin", "/api/load", json_pack("{s:s}", "model", "chat"), NULL, code);
  CHECK(st == 200, "load with the admin key: %ld %s", st, code);
  st = admin_post("sk-admin", "/v1/chat/completions", it_chat_body("chat", "hi", 2, false), NULL,
                  code);
  CHECK(st == 200, "an admin key is an API key too: %ld %s", st, code);
  st = admin_post(NULL, "/api/load", json_pack("{s:s}", "model", "chat"), NULL, code);
  CHECK(st == 401, "no key at all: %ld", st);
}

static void t_admin_keys(void) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "api_keys: [sk-user]\nadmin_keys: [sk-admin]\nlog_level: warn\nmodels:\n"
           "  - {name: chat, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1}\n",
           it_models_dir);
  it_with_own_daemon("admin-keys", yaml, admin_body);
}

static void t_metrics(void) {
  resp r;
  it_post_json("/v1/chat/completions", it_chat_body("chat", "count me", 4, false), &r);
  CHECK(r.status == 200, "chat %ld", r.status);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_chat_body("chat", "count me streamed", 4, true), &r);
  CHECK(r.status == 200, "chat stream %ld", r.status);
  it_resp_clear(&r);
  it_post("/v1/chat/completions",
          "{\"model\":\"gpt-17-unknown\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          &r);
  CHECK(r.status == 404, "unknown model %ld", r.status);
  it_resp_clear(&r);
  it_post_json("/v1/embeddings", json_pack("{s:s, s:s}", "model", "embed", "input", "count me too"),
               &r);
  CHECK(r.status == 200, "embeddings %ld", r.status);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_chat_body("once", "load, then unload", 2, false),
               &r); /* keep_alive 0 */
  CHECK(r.status == 200, "once %ld", r.status);
  it_resp_clear(&r);
  it_get("/metrics", &r);
  CHECK(r.status == 200, "GET /metrics %ld", r.status);
  CHECK(strcmp(r.content_type, "text/plain; version=0.0.4; charset=utf-8") == 0,
        "content type '%s'", r.content_type);
  const char *t = r.body.data ? r.body.data : "";
  struct {
    const char *head;
    double min;
  } want[] = {
      {"switchyard_requests_total{model=\"chat\",endpoint=\"chat\",status=\"200\"}", 2},
      {"switchyard_requests_total{model=\"\",endpoint=\"chat\",status=\"404\"}", 1},
      {"switchyard_requests_total{model=\"embed\",endpoint=\"embeddings\",status=\"200\"}", 1},
      {"switchyard_prompt_tokens_total{model=\"chat\"}", 1},
      {"switchyard_generated_tokens_total{model=\"chat\"}", 1},
      {"switchyard_prompt_tokens_total{model=\"embed\"}", 1},
      {"switchyard_time_to_first_token_seconds_count{model=\"chat\"}", 2},
      {"switchyard_request_duration_seconds_count{model=\"chat\",endpoint=\"chat\"}", 2},
      {"switchyard_model_loads_total{model=\"once\",result=\"ok\"}", 1},
      {"switchyard_model_unloads_total{model=\"once\",reason=\"keep_alive_0\"}", 1},
      {"switchyard_model_load_duration_seconds_count{model=\"once\"}", 1},
      {"switchyard_model_loaded{model=\"chat\"}", 1},
      {"switchyard_model_loaded{model=\"once\"}", 0},
      {"switchyard_queue_depth{model=\"chat\"}", 0},
      {"switchyard_requests_in_flight{model=\"chat\"}", 0},
      {"switchyard_model_memory_bytes{model=\"chat\",kind=\"estimated\"}", 1},
      {"switchyard_model_memory_bytes{model=\"chat\",kind=\"measured\"}", 1},
      {"switchyard_model_memory_bytes{model=\"slow\",kind=\"estimated\"}", 1},
      {"switchyard_prompt_cache_bytes{model=\"chat\"}", 0}, /* present (docs/PROMPT_CACHE.md) */
      {"switchyard_memory_budget_bytes", 1},
      {"switchyard_memory_used_bytes", 1},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    double v = it_metric(t, want[i].head);
    CHECK(v >= want[i].min, "%s = %g, want >= %g", want[i].head, v, want[i].min);
  }
  CHECK(it_metric(t, "switchyard_model_loaded{model=\"once\"}") == 0, "once is unloaded");
  CHECK(!strstr(t, "gpt-17-unknown"), "a client's model name never becomes a label");
  char out[4096];
  int pc = it_promtool_check(&r.body, out, sizeof out);
  if (pc < 0)
    printf(
        "note: promtool not installed (Debian package prometheus): the exposition format was not "
        "validated\n");
  CHECK(pc != 0, "promtool check metrics: %.900s", out);
  it_resp_clear(&r);
  it_http_do(&D, "POST", "/metrics", "{}", &r, NULL);
  CHECK(it_is_error(&r, 405, "method_not_allowed"), "POST /metrics %ld", r.status);
  it_resp_clear(&r);
}

/* The budget is checked against what is really free: with a reserve larger than the machine, no
 * model fits *now* although it fits the configured budget: 503 memory_busy, not 507. */
static void memory_busy_body(void) {
  resp r;
  it_b_chat(it_chat_body("a", "hello", 2, false), &r);
  bool busy = it_is_error(&r, 503, "memory_busy") && atoi(r.retry_after) > 0 &&
              strstr(it_jstr(r.json, "error.message"), "free right now");
  long st = r.status;
  it_resp_clear(&r);
  CHECK(busy, "want 503 memory_busy with Retry-After, got %ld", st);
}

static void t_memory_busy(void) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmemory: {budget: 1GiB, reserve: 512TiB}\nmodels:\n"
           "  - {name: a, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1}\n",
           it_models_dir);
  it_with_own_daemon("membusy", yaml, memory_busy_body);
}

static const it_test tests[] = {
    {"keep_alive_zero", t_keep_alive_zero, false},
    {"metrics", t_metrics, false},
    {"ps_cli", t_ps_cli, false},
    {"cli_bad_numbers", t_cli_bad_numbers, false},
    {"devices", t_devices, false},
    {"events", t_events, false},
    {"one_load_at_a_time", t_one_load_at_a_time, false},
    {"memory_busy", t_memory_busy, false},
    {"request_keep_alive", t_request_keep_alive, false},
    {"third_party_gguf", t_third_party_gguf, true},
    {"api_keys", t_api_keys, false},
    {"admin_keys", t_admin_keys, false},
};
const itest_table itest_ops = {"ops", tests, sizeof tests / sizeof *tests};
