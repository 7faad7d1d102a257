/* external.c — external engines (engine: external) on daemons of their own: llama-server from
 * the engine cache as a third-party server behind the proxy: chat and streaming relayed, eviction,
 * a start that fails, a crash (mid-stream too), the process group killed whole, SIGHUP keeping an
 * unchanged engine. Skipped when --engines (or SWITCHYARD_ENGINES) does not hold llama-server.
 * Must never happen: an engine process (or any of its group) outliving its model, a client left
 * hanging when the engine dies.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static char llama_server[4200]; /* <engines>/bin/llama-server, set by ext_skip */

static bool ext_skip(void) {
  if (!llama_server[0] && it_engines_dir)
    snprintf(llama_server, sizeof llama_server, "%s/bin/llama-server", it_engines_dir);
  if (llama_server[0] && access(llama_server, X_OK) == 0) return false;
  snprintf(it_cur_skip, sizeof it_cur_skip,
           "llama-server not found (pass --engines DIR or SWITCHYARD_ENGINES)");
  return true;
}

/* A model entry running llama-server on tiny-qwen2 (one slot), with extra lines for `external:`. */
static void ext_llama_entry(sy_buf *y, const char *name, const char *model_extra,
                            const char *ext_extra) {
  sy_buf_printf(y,
                "  - name: %s\n    engine: external\n%s"
                "    external:\n      argv: [%s, -m, %s/tiny-qwen2.gguf, --host, 127.0.0.1, "
                "--port, '${PORT}',\n"
                "             -c, '4096', -np, '1', -t, '2']\n"
                "      health: {path: /health, status: 200, timeout: 120s}\n"
                "      routes: [/v1/chat/completions, /v1/completions, /v1/audio/transcriptions]\n"
                "      stop_grace: 5s\n%s",
                name, model_extra ? model_extra : "", llama_server, it_models_dir,
                ext_extra ? ext_extra : "");
}

static void with_ext_daemon(const char *name, const sy_buf *y, void (*body)(void)) {
  it_with_own_daemon(name, y->data, body);
}

/* A streamed chat on ext that runs on (ignore_eos) for max_tokens: new reference. */
static json_t *go_on_body(int max_tokens) {
  return json_pack("{s:s, s:[{s:s, s:s}], s:i, s:b, s:b}", "model", "ext", "messages", "role",
                   "user", "content", "Go on", "max_tokens", max_tokens, "ignore_eos", 1, "stream",
                   1);
}

static void ext_chat_body(void) {
  resp r;
  /* listed with the capabilities its routes imply, not started yet */
  it_http_do(&B, "GET", "/v1/models/ext", NULL, &r, NULL);
  CHECK(r.status == 200 && it_jstr(r.json, "capabilities.0") &&
            strcmp(it_jstr(r.json, "capabilities.0"), "chat") == 0 &&
            strcmp(it_jstr(r.json, "status"), "unloaded") == 0,
        "model listed: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_b_chat(it_chat_body("ext", "Hello there", 8, false), &r);
  CHECK(r.status == 200 && it_jstr(r.json, "choices.0.message.content") &&
            it_jnum(r.json, "usage.completion_tokens") > 0,
        "chat through the proxy: %ld %s", r.status, r.body.data);
  CHECK(strcmp(r.model_hdr, "ext") == 0, "X-Switchyard-Model: '%s'", r.model_hdr);
  it_resp_clear(&r);
  long long pid = it_b_ps_pid("ext");
  CHECK(pid > 0, "/api/ps lists the engine with its pid");
  /* streamed: SSE chunks as llama-server sends them, ending in [DONE] */
  it_b_chat(it_chat_body("ext", "Count to ten", 12, true), &r);
  bool done, wf;
  json_t *ev = it_sse_events(&r.body, &done, &wf);
  size_t nev = json_array_size(ev);
  json_decref(ev);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/event-stream", 17) == 0 && done && wf &&
            nev >= 3,
        "stream: %ld '%s' done=%d well_formed=%d events=%zu", r.status, r.content_type, done, wf,
        nev);
  it_resp_clear(&r);
  /* completions: the other declared route (greedy and seeded: llama-server answers 500 when its
   * own output parser trips over what random weights sampled at 0.8 happen to say) */
  it_http_do(
      &B, "POST", "/v1/completions",
      "{\"model\":\"ext\",\"prompt\":\"Once\",\"max_tokens\":4,\"temperature\":0,\"seed\":1}", &r,
      NULL);
  CHECK(r.status == 200 && it_jstr(r.json, "choices.0.text"), "completions: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  /* a route it does not declare, and pass-through */
  it_http_do(&B, "POST", "/v1/embeddings", "{\"model\":\"ext\",\"input\":\"x\"}", &r, NULL);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "undeclared route: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/upstream/ext/health", NULL, &r, NULL);
  CHECK(
      r.status == 200 && it_jstr(r.json, "status") && strcmp(it_jstr(r.json, "status"), "ok") == 0,
      "/upstream/ext/health: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/upstream/ext/v1/models?limit=5&x=a%20b", NULL, &r, NULL);
  CHECK(r.status == 200 && json_is_array(json_object_get(r.json, "data")),
        "/upstream/ext/v1/models: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "POST", "/upstream/ext/tokenize", "{\"content\":\"hello world\"}", &r, NULL);
  CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "tokens")) >= 1,
        "POST through /upstream: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* a multipart body is dispatched by its model field: llama-server's own refusal comes back (501:
   * a model without audio input; 404 where a build lacks the endpoint), not a Switchyard error */
  {
    CURL *mc = curl_easy_init();
    curl_mime *mime = curl_mime_init(mc);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "model");
    curl_mime_data(part, "ext", CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    curl_mime_filename(part, "a.wav");
    curl_mime_data(part, "RIFF....", 8);
    char murl[128];
    snprintf(murl, sizeof murl, "%s/v1/audio/transcriptions", B.base);
    memset(&r, 0, sizeof r);
    curl_easy_setopt(mc, CURLOPT_URL, murl);
    curl_easy_setopt(mc, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(mc, CURLOPT_WRITEFUNCTION, it_on_body);
    curl_easy_setopt(mc, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(mc, CURLOPT_HEADERFUNCTION, it_on_header);
    curl_easy_setopt(mc, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(mc, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(mc) == CURLE_OK) curl_easy_getinfo(mc, CURLINFO_RESPONSE_CODE, &r.status);
    curl_mime_free(mime);
    curl_easy_cleanup(mc);
    bool relayed = (r.status == 501 || r.status == 404) && strcmp(r.model_hdr, "ext") == 0;
    long mst = r.status;
    char mh[128];
    snprintf(mh, sizeof mh, "%s", r.model_hdr);
    it_resp_clear(&r);
    CHECK(relayed, "multipart dispatched to the engine: %ld, X-Switchyard-Model '%s'", mst, mh);
  }
  it_http_do(&B, "GET", "/upstream/ext/no/such/page", NULL, &r, NULL);
  CHECK(r.status == 404, "the upstream's own 404 is relayed: %ld", r.status);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/upstream/nobody/health", NULL, &r, NULL);
  CHECK(it_is_error(&r, 404, "model_not_found"), "unknown upstream: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  CHECK(it_b_ps_pid("ext") == pid, "the same process served everything");
  /* a client that hangs up mid-stream cancels the upstream transfer */
  long long before = it_ps_stat(&B, "cancelled");
  CURLcode rc = it_abandon_stream(&B, "/v1/chat/completions", go_on_body(3000));
  CHECK(rc == CURLE_WRITE_ERROR, "the client aborted (curl %d)", rc);
  /* one slot: this only runs once llama-server has let go of the abandoned stream */
  it_b_chat(it_chat_body("ext", "Next", 4, false), &r);
  CHECK(r.status == 200, "next request %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  long long after = -1;
  for (int tries = 0; tries < 100000 && after <= before;
       tries++) /* counted as the handler returns */
    after = it_ps_stat(&B, "cancelled");
  CHECK(after > before, "the abandoned stream was counted as cancelled (%lld -> %lld)", before,
        after);
}

static void t_ext_chat(void) {
  if (ext_skip()) return;
  sy_buf y = {0};
  sy_buf_puts(&y, "log_level: warn\nbuiltin_voice: false\nmodels:\n");
  ext_llama_entry(&y, "ext", "    keep_alive: -1\n", "      memory: 200MiB\n");
  with_ext_daemon("ext_chat", &y, ext_chat_body);
  sy_buf_free(&y);
}

static bool pid_gone(long long pid) { return kill((pid_t)pid, 0) != 0 && errno == ESRCH; }

static void ext_evict_body(void) {
  CHECK(it_budget_request("ea") == 200, "ea starts");
  long long pa = it_b_ps_pid("ea");
  CHECK(pa > 0 && it_b_ps_pid("eb") < 0, "ea resident alone (pid %lld)", pa);
  CHECK(it_budget_request("eb") == 200, "eb starts, evicting ea");
  long long pb = it_b_ps_pid("eb");
  CHECK(pb > 0 && it_b_ps_pid("ea") < 0, "eb resident, ea gone from /api/ps");
  CHECK(pid_gone(pa), "ea's process %lld is gone (process group killed and reaped)", pa);
  CHECK(it_budget_request("ea") == 200, "ea starts again on the next request");
  long long pa2 = it_b_ps_pid("ea");
  CHECK(pa2 > 0 && pa2 != pa && it_b_ps_pid("eb") < 0 && pid_gone(pb),
        "ea restarted (pid %lld), eb evicted", pa2);
}

static void t_ext_evict(void) {
  if (ext_skip()) return;
  sy_buf y = {0};
  sy_buf_puts(
      &y,
      "log_level: warn\nbuiltin_voice: false\nmemory: {budget: 1GiB}\nscheduling: {swap_guard: 0}\n"
      "models:\n");
  ext_llama_entry(&y, "ea", NULL, "      memory: 600MiB\n");
  ext_llama_entry(&y, "eb", NULL, "      memory: 600MiB\n");
  with_ext_daemon("ext_evict", &y, ext_evict_body);
  sy_buf_free(&y);
}

static void ext_fail_body(void) {
  resp r;
  /* alive but never healthy: the health timeout, naming the model, its check and its output */
  it_b_chat(it_chat_body("deaf", "hi", 2, false), &r);
  const char *msg = it_jstr(r.json, "error.message");
  CHECK(it_is_error(&r, 500, "load_timeout") && strstr(msg, "'deaf'") &&
            strstr(msg, "GET /health") && strstr(msg, "deaf-engine-says-hello"),
        "never healthy: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  CHECK(it_b_ps_pid("deaf") < 0, "nothing of it stays resident");
  /* exits during start-up: its status and its last words */
  it_b_chat(it_chat_body("dies", "hi", 2, false), &r);
  msg = it_jstr(r.json, "error.message");
  CHECK(it_is_error(&r, 500, "load_failed") && strstr(msg, "'dies'") &&
            strstr(msg, "exited with status 3") && strstr(msg, "no-gpu-for-me"),
        "exits at start: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* a program that does not exist */
  it_b_chat(it_chat_body("nothere", "hi", 2, false), &r);
  msg = it_jstr(r.json, "error.message");
  CHECK(r.status == 500 && msg && strstr(msg, "'nothere'") && strstr(msg, "No such file"),
        "missing program: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/health", NULL, &r, NULL);
  CHECK(r.status == 200, "daemon still up");
  it_resp_clear(&r);
}

static void t_ext_fail(void) {
  char y[2048];
  snprintf(
      y, sizeof y,
      "log_level: warn\nbuiltin_voice: false\nmodels:\n"
      "  - name: deaf\n    engine: external\n    external:\n"
      "      argv: ['echo deaf-engine-says-hello; exec sleep 600']\n      shell: true\n"
      "      health: {timeout: 2s}\n      stop_grace: 0\n      routes: [/v1/chat/completions]\n"
      "  - name: dies\n    engine: external\n    external:\n"
      "      argv: ['echo no-gpu-for-me >&2; exit 3']\n      shell: true\n      routes: "
      "[/v1/chat/completions]\n"
      "  - name: nothere\n    engine: external\n    external:\n"
      "      argv: [/nonexistent/engine-binary, --port, '${PORT}']\n      routes: "
      "[/v1/chat/completions]\n");
  it_with_own_daemon("ext_fail", y, ext_fail_body);
}

/* A streamed request whose first bytes are announced on a pipe (the test then kills the engine). */
typedef struct mid_stream {
  sy_buf body;
  int pfd[2];
  bool told;
  long status;
  CURLcode rc;
} mid_stream;

static size_t mid_write(char *p, size_t sz, size_t n, void *ud) {
  mid_stream *m = ud;
  sy_buf_append(&m->body, p, sz * n);
  if (!m->told && strstr(m->body.data ? m->body.data : "", "\n\n")) { /* one whole event */
    m->told = true;
    ssize_t w = write(m->pfd[1], "x", 1);
    (void)w;
  }
  return sz * n;
}

static void *mid_main(void *p) {
  mid_stream *m = p;
  m->rc = it_post_streamed(&B, "/v1/chat/completions", go_on_body(3500), mid_write, m, &m->status);
  close(m->pfd[1]); /* wakes the test if no event ever came */
  return NULL;
}

/* Killed while streaming: the client gets the events so far, then an error event, then a clean end.
 */
static void ext_mid_stream_kill(void) {
  mid_stream m = {0};
  CHECK(pipe(m.pfd) == 0, "pipe");
  pthread_t th;
  pthread_create(&th, NULL, mid_main, &m);
  char x;
  ssize_t got = read(m.pfd[0], &x, 1); /* the first event has arrived (or the request ended) */
  close(m.pfd[0]);
  long long pid = it_b_ps_pid("ext");
  if (got == 1 && pid > 0) kill((pid_t)pid, SIGKILL);
  pthread_join(th, NULL);
  bool done = false, wf = false;
  json_t *ev = it_sse_events(&m.body, &done, &wf);
  size_t n = json_array_size(ev);
  const char *code = it_jstr(json_array_get(ev, n ? n - 1 : 0), "error.code");
  bool ok = got == 1 && pid > 0 && m.rc == CURLE_OK && m.status == 200 && wf && !done && n >= 2 &&
            code && strcmp(code, "upstream_crashed") == 0;
  json_decref(ev);
  CHECK(ok,
        "mid-stream kill: got=%zd pid=%lld curl=%d status=%ld well_formed=%d done=%d events=%zu: "
        "%.300s",
        got, pid, m.rc, m.status, wf, done, n, m.body.data ? m.body.data : "");
  sy_buf_free(&m.body);
}

static void ext_crash_body(void) {
  resp r;
  it_b_chat(it_chat_body("ext", "warm up", 2, false), &r);
  CHECK(r.status == 200, "warm-up %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_bg_req b;
  it_bg_chat(&b, &B, go_on_body(3500));
  long long pid = -1;
  it_wait_inflight(&B, "ext", &pid);
  if (pid > 0) kill((pid_t)pid, SIGKILL);
  it_bg_join(&b);
  CHECK(pid > 0, "the long request never showed as in flight");
  /* before the upstream answered: a 502; mid-stream: an error event ends the stream, no [DONE] */
  bool done = false, wf = false;
  json_t *ev = b.r.status == 200 ? it_sse_events(&b.r.body, &done, &wf) : NULL;
  json_t *last = json_array_get(ev, json_array_size(ev) ? json_array_size(ev) - 1 : 0);
  const char *code = it_jstr(last, "error.code");
  bool ok = (b.r.status == 200 && !done && code && strcmp(code, "upstream_crashed") == 0) ||
            it_is_error(&b.r, 502, "upstream_crashed");
  json_decref(ev);
  CHECK(ok, "in-flight request: %ld %.300s", b.r.status, b.r.body.data ? b.r.body.data : "");
  it_resp_clear(&b.r);
  it_http_do(&B, "GET", "/health", NULL, &r, NULL);
  CHECK(r.status == 200, "daemon still up");
  it_resp_clear(&r);
  it_b_chat(it_chat_body("ext", "after the crash", 4, false), &r);
  CHECK(r.status == 200, "the next request restarts it: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  long long pid2 = it_b_ps_pid("ext");
  CHECK(pid2 > 0 && pid2 != pid, "a new process (%lld, was %lld)", pid2, pid);
  ext_mid_stream_kill();
  if (it_cur_failed) return;
  it_b_chat(it_chat_body("ext", "after the second crash", 4, false), &r);
  CHECK(r.status == 200, "restarted again: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

static void t_ext_crash(void) {
  if (ext_skip()) return;
  sy_buf y = {0};
  sy_buf_puts(&y, "log_level: warn\nbuiltin_voice: false\nmodels:\n");
  ext_llama_entry(&y, "ext", NULL, NULL);
  with_ext_daemon("ext_crash", &y, ext_crash_body);
  sy_buf_free(&y);
}

/* Live (not zombie) processes of process group pgrp, from /proc, into out (at most cap); how many.
 */
static size_t group_members(long long pgrp, long long *out, size_t cap) {
  size_t n = 0;
  DIR *d = opendir("/proc");
  struct dirent *de;
  while (d && n < cap && (de = readdir(d))) {
    char *end, path[64], st[512];
    long long pid = strtoll(de->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(st, 1, sizeof st - 1, f) : 0;
    if (f) fclose(f);
    st[len] = '\0';
    const char *rp = strrchr(st, ')');
    char state;
    long long ppid, pg;
    if (rp && sscanf(rp + 1, " %c %lld %lld", &state, &ppid, &pg) == 3 && pg == pgrp &&
        state != 'Z')
      out[n++] = pid;
  }
  if (d) closedir(d);
  return n;
}

static void ext_group_body(void) {
  resp r;
  it_b_chat(it_chat_body("grp", "hello", 2, false), &r);
  CHECK(r.status == 200, "through a shell launcher: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  json_t *m = it_b_ps_model("grp");
  long long leader = m ? it_jnum(m, "pid") : -1, measured = m ? it_jnum(m, "size_measured") : -1;
  json_decref(m);
  long long members[16];
  size_t n = group_members(leader, members, 16);
  CHECK(leader > 0 && n >= 3,
        "the shell (pid %lld), llama-server and the helper share a group: %zu members", leader, n);
  /* the group is measured, not the shell alone (a few MiB): llama-server holds tens of MiB */
  CHECK(measured > (24LL << 20), "measured %lld bytes for the group", measured);
  int pfd[16];
  for (size_t i = 0; i < n; i++) pfd[i] = (int)syscall(SYS_pidfd_open, (pid_t)members[i], 0);
  it_http_do(&B, "POST", "/api/unload", "{\"model\":\"grp\"}", &r, NULL);
  long st = r.status;
  it_resp_clear(&r);
  /* each member's pidfd turns readable when it exits (a SIGKILL takes a moment to land); one that
   * survived would hold it for 600 s, so a wait of 30 s tells the two apart */
  size_t alive = 0;
  for (size_t i = 0; i < n; i++) {
    struct pollfd p = {.fd = pfd[i], .events = POLLIN};
    if (pfd[i] >= 0 && poll(&p, 1, 30000) != 1) alive++;
    if (pfd[i] >= 0) close(pfd[i]);
  }
  CHECK(st == 200, "unload: %ld", st);
  CHECK(alive == 0, "%zu of the group's %zu processes outlived the unload", alive, n);
}

static void t_ext_group(void) {
  if (ext_skip()) return;
  static char y[12000];
  /* cwd and env (${PORT} substituted there too) reach the program; no exec: the shell stays the
   * group's leader and llama-server is its child; a helper that ignores SIGTERM would outlive the
   * stop signal: only the group kill at the leader's exit ends it */
  snprintf(y, sizeof y,
           "log_level: warn\nbuiltin_voice: false\nmodels:\n"
           "  - name: grp\n    engine: external\n    external:\n"
           "      argv: ['(trap \"\" TERM; exec sleep 600) & %s -m tiny-qwen2.gguf --host "
           "127.0.0.1 --port $SY_PORT -c 512 -np 1 -t 2; echo ended']\n"
           "      shell: true\n      cwd: %s\n      env: {SY_PORT: '${PORT}'}\n"
           "      routes: [/v1/chat/completions]\n      stop_grace: 30s\n",
           llama_server, it_models_dir);
  it_with_own_daemon("ext_group", y, ext_group_body);
}

/* SIGHUP: an external engine whose `external:` is unchanged keeps its process (other keys take
 * their new values); one whose argv changed is stopped and starts again with the new one. */
static char ext_reload_cfg[600];

static void ext_reload_yaml(sy_buf *y, const char *chg_threads, const char *keep_alive) {
  y->len = 0;
  sy_buf_puts(y, "log_level: warn\nbuiltin_voice: false\nmodels:\n");
  char ka[64];
  snprintf(ka, sizeof ka, "    keep_alive: %s\n", keep_alive);
  ext_llama_entry(y, "same", ka, NULL);
  sy_buf_printf(y,
                "  - name: chg\n    engine: external\n    external:\n"
                "      argv: [%s, -m, %s/tiny-qwen2.gguf, --host, 127.0.0.1, --port, '${PORT}', "
                "-c, '512', -t, '%s']\n"
                "      routes: [/v1/chat/completions]\n",
                llama_server, it_models_dir, chg_threads);
}

static void ext_reload_body(void) {
  CHECK(it_b_load("same") == 200 && it_b_load("chg") == 200, "both start");
  long long same_pid = it_b_ps_pid("same"), chg_pid = it_b_ps_pid("chg");
  it_feed f = {.d = &B,
               .mu = PTHREAD_MUTEX_INITIALIZER,
               .cond = PTHREAD_COND_INITIALIZER,
               .until = {"\"type\":\"reloaded\"", "\"type\":\"unloaded\",\"model\":\"chg\""}};
  pthread_t fth;
  it_feed_start(&f, &fth);
  sy_buf y = {0};
  ext_reload_yaml(&y, "1", "-1");
  it_write_file(ext_reload_cfg, y.data);
  sy_buf_free(&y);
  kill(B.pid, SIGHUP);
  pthread_join(fth, NULL);
  bool changed = f.body.data && strstr(f.body.data, "\"changed\":[\"chg\"]");
  sy_buf_free(&f.body);
  CHECK(changed, "the reloaded event names chg as changed");
  json_t *m = it_b_ps_model("same");
  long long exp = m ? it_jnum(m, "expires_in_s") : 0;
  CHECK(m && it_jnum(m, "pid") == same_pid && exp == -1,
        "same kept its process (%lld) and took keep_alive -1 (%lld)", same_pid, exp);
  json_decref(m);
  CHECK(pid_gone(chg_pid) || it_b_ps_pid("chg") != chg_pid, "chg's old process was stopped");
  resp r;
  it_b_chat(it_chat_body("chg", "hi", 2, false), &r);
  CHECK(r.status == 200, "chg under its new argv: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  long long np = it_b_ps_pid("chg");
  CHECK(np > 0 && np != chg_pid, "a new process for chg (%lld)", np);
}

static void t_ext_reload(void) {
  if (ext_skip()) return;
  sy_buf y = {0};
  ext_reload_yaml(&y, "2", "300");
  snprintf(ext_reload_cfg, sizeof ext_reload_cfg, "%s/ext_reload.yaml", it_tmpdir);
  it_with_own_daemon("ext_reload", y.data, ext_reload_body);
  sy_buf_free(&y);
}

static const it_test tests[] = {
    {"ext_chat", t_ext_chat, false},   {"ext_evict", t_ext_evict, false},
    {"ext_fail", t_ext_fail, false},   {"ext_crash", t_ext_crash, false},
    {"ext_group", t_ext_group, false}, {"ext_reload", t_ext_reload, false},
};
const itest_table itest_external = {"external", tests, sizeof tests / sizeof *tests};
