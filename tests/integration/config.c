/* config.c — the config file: a bad one refused at start (clear message, non-zero exit), and
 * SIGHUP reloading the matrix: unchanged models keep their worker, a changed one finishes its
 * requests and restarts, a removed one goes, a broken new file keeps the old matrix.
 * Must never happen: a request in flight cut by a reload, a bad reload that empties the daemon.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static char reload_cfg[512];

static void reload_body(void) {
  const char *d = it_models_dir;
  CHECK(it_b_load("keep") == 200 && it_b_load("change") == 200 && it_b_load("gone") == 200,
        "keep, change, gone load");
  json_t *k0 = it_b_ps_model("keep");
  long long keep_pid = it_jnum(k0, "pid");
  json_decref(k0);
  /* a long request on "change" is in flight across the reload */
  it_bg_req bg;
  it_bg_chat(&bg, &B, it_long_chat_body("change", "keep going", 2000, false));
  bool busy = it_wait_inflight(&B, "change", NULL);
  it_feed f = {.d = &B,
               .mu = PTHREAD_MUTEX_INITIALIZER,
               .cond = PTHREAD_COND_INITIALIZER,
               .until = {"\"type\":\"reloaded\"", "\"type\":\"unloaded\",\"model\":\"gone\"",
                         "\"type\":\"unloaded\",\"model\":\"change\""}};
  pthread_t fth;
  it_feed_start(&f, &fth);
  char yaml[2048];
  snprintf(
      yaml, sizeof yaml,
      "log_level: warn\nmodels:\n"
      "  - {name: keep, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1, "
      "priority: 3}\n"
      "  - {name: change, file: %s/tiny-qwen2.gguf, context: 512, parallel: 1, keep_alive: -1}\n"
      "  - {name: added, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1}\n",
      d, d, d);
  it_write_file(reload_cfg, yaml);
  kill(B.pid, SIGHUP);
  bool drained = false; /* the old worker is seen draining while its request runs */
  for (int tries = 0; tries < 100000 && !drained; tries++) {
    json_t *m = it_b_ps_model("change");
    drained = m && json_is_true(json_object_get(m, "draining")) && it_jnum(m, "inflight") == 1;
    json_decref(m);
    if (!m) break; /* gone already */
  }
  it_bg_join(&bg); /* the request in flight finishes on its old worker */
  long bg_status = bg.r.status;
  long long tokens = it_jnum(bg.r.json, "usage.completion_tokens");
  it_resp_clear(&bg.r);
  pthread_join(fth, NULL);
  json_t *ev = NULL;
  for (const char *p = f.body.data; p && (p = strstr(p, "data: ")); p += 6) {
    json_t *e = json_loads(p + 6, JSON_DISABLE_EOF_CHECK, NULL);
    if (e && strcmp(it_jstr(e, "type") ? it_jstr(e, "type") : "", "reloaded") == 0 && !ev)
      ev = json_incref(e);
    json_decref(e);
  }
  sy_buf_free(&f.body);
  CHECK(busy, "change never showed as busy");
  CHECK(drained, "the changed model's old worker drained its request");
  CHECK(bg_status == 200 && tokens == 2000, "the request in flight ran on: %ld, %lld tokens",
        bg_status, tokens);
  /* unchanged: keep, and the built-in speak */
  CHECK(ev && it_jnum(ev, "unchanged") == 2 &&
            strcmp(it_jstr(ev, "added.0") ? it_jstr(ev, "added.0") : "", "added") == 0 &&
            strcmp(it_jstr(ev, "changed.0") ? it_jstr(ev, "changed.0") : "", "change") == 0 &&
            strcmp(it_jstr(ev, "removed.0") ? it_jstr(ev, "removed.0") : "", "gone") == 0,
        "reloaded event: unchanged 2, added [added], changed [change], removed [gone]");
  json_decref(ev);
  json_t *k1 = it_b_ps_model("keep");
  CHECK(k1 && it_jnum(k1, "pid") == keep_pid, "keep stayed loaded in the same worker (pid %lld)",
        keep_pid);
  json_decref(k1);
  json_t *g = it_b_ps_model("gone");
  CHECK(!g, "gone is unloaded");
  json_decref(g);
  resp r;
  it_b_chat(it_chat_body("gone", "hi", 2, false), &r);
  CHECK(it_is_error(&r, 404, "model_not_found"), "a removed model is not found: %ld", r.status);
  it_resp_clear(&r);
  it_b_chat(it_chat_body("change", "hi", 2, false), &r);
  CHECK(r.status == 200, "change under its new settings: %ld", r.status);
  it_resp_clear(&r);
  json_t *c = it_b_ps_model("change");
  CHECK(c && it_jnum(c, "context") == 512 && !json_is_true(json_object_get(c, "draining")),
        "change runs with context 512 now");
  json_decref(c);
  it_b_chat(it_chat_body("added", "hi", 2, false), &r);
  CHECK(r.status == 200, "the added model serves: %ld", r.status);
  it_resp_clear(&r);
  /* a broken file changes nothing */
  it_feed f2 = {.d = &B,
                .mu = PTHREAD_MUTEX_INITIALIZER,
                .cond = PTHREAD_COND_INITIALIZER,
                .until = {"\"type\":\"reload_failed\""}};
  it_feed_start(&f2, &fth);
  it_write_file(reload_cfg, "models: [ {name: x, file: \n");
  kill(B.pid, SIGHUP);
  pthread_join(fth, NULL);
  bool failed_ev =
      f2.body.data && strstr(f2.body.data, "reload_failed") && strstr(f2.body.data, "reload.yaml:");
  sy_buf_free(&f2.body);
  CHECK(failed_ev, "a broken file is refused with file:line (reload_failed event)");
  it_b_chat(it_chat_body("keep", "hi", 2, false), &r);
  CHECK(r.status == 200, "keep still serves after a failed reload: %ld", r.status);
  it_resp_clear(&r);
  json_t *k2 = it_b_ps_model("keep");
  CHECK(k2 && it_jnum(k2, "pid") == keep_pid, "and keeps its worker");
  json_decref(k2);
}

/* SIGHUP reloads the matrix: unchanged models keep their worker, a changed one finishes its
 * request in flight and comes back with its new settings, a removed one unloads, a new one
 * serves, and a broken file changes nothing. */
static void t_reload(void) {
  char yaml[2048];
  const char *d = it_models_dir;
  snprintf(
      yaml, sizeof yaml,
      "log_level: warn\nmodels:\n"
      "  - {name: keep, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n"
      "  - {name: change, file: %s/tiny-qwen2.gguf, context: 2048, parallel: 1, keep_alive: -1}\n"
      "  - {name: gone, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n",
      d, d, d);
  snprintf(reload_cfg, sizeof reload_cfg, "%s/reload.yaml", it_tmpdir);
  it_with_own_daemon("reload", yaml, reload_body);
}

static void t_bad_config(void) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/bad.yaml", it_tmpdir);
  FILE *f = fopen(cfg, "w");
  fprintf(f, "models:\n  - name: x\n    file: /nonexistent/model.gguf\n");
  fclose(f);
  daemon_proc k = {0};
  CHECK(it_start_daemon(&k, cfg) != 0, "a config naming a missing file must be refused at start");
}

static const it_test tests[] = {
    {"bad_config", t_bad_config, false},
    {"reload", t_reload, false},
};
const itest_table itest_config = {"config", tests, sizeof tests / sizeof *tests};
