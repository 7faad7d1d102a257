/* harness.c — the integration tests' harness (see harness.h): the counters, starting and stopping
 * a daemon, the HTTP client, JSON and SSE helpers, multipart and WAV helpers, and the main
 * instance's config. Used by main.c and every feature file; holds no test.
 *
 * Rules for everything here and in the feature files: assert on structure, never on meaning; no
 * sleeps as synchronisation (every wait is on a condition: a pipe, a response, a bounded poll of
 * /api/ps); every daemon started is stopped, and a hang fails the test (curl timeouts), never CI.
 */
#include "harness.h"

/* ---- the counters and the current test's verdict ---- */

int it_n_pass, it_n_fail, it_n_skip;

char it_cur_fail[1024];

char it_cur_skip[256]; /* set by a test that cannot run here: counted as skipped */

bool it_cur_failed;

/* ---- the daemon under test ---- */

const char *it_daemon_bin, *it_models_dir, *it_testdata_dir;

const char *it_engines_dir; /* --engines or SWITCHYARD_ENGINES: the engine cache's install folder */

char it_tmpdir[256];

daemon_proc D; /* the main instance */

bool it_have_testdata;

bool it_have_vlm; /* models/tiny-vlm-mmproj.gguf exists (tests/run.sh make_models) */

bool it_have_alm; /* models/tiny-alm-mmproj.gguf exists (mkmodel --mmproj-kind audio) */

bool it_have_quant; /* models/tiny-qwen2-q8_0.gguf and -q4_k_m.gguf exist (tests/run.sh make_models)
                     */

bool it_have_pocket; /* models/tiny-pocket-mmproj.gguf exists (mkmodel --arch pockettts --mmproj) */

bool it_have_hybrid; /* models/tiny-hybrid.gguf exists (tests/models.sh; qwen3next) */

const char *it_daemon_log;

int it_start_daemon(daemon_proc *d, const char *config) { return it_start_daemon_at(d, config, 0); }

int it_start_daemon_at(daemon_proc *d, const char *config, int port) {
  int pfd[2];
  char portarg[16];
  snprintf(portarg, sizeof portarg, "%d", port);
  if (pipe(pfd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(pfd[0]);
    /* each daemon remembers its own measurements: "<config>.state/" (one test's measurements,
     * say under ASan, must not become another test's footprints) */
    char state[600];
    snprintf(state, sizeof state, "%s.state", config);
    setenv("SWITCHYARD_STATE_DIR", state, 1);
    if (it_daemon_log) { /* the test reads what the daemon and its workers logged */
      int lfd = open(it_daemon_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (lfd >= 0) dup2(lfd, 2);
    }
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
    execl(it_daemon_bin, it_daemon_bin, "--config", config, "--port", portarg, "--ready-fd", fdarg,
          (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  char buf[32] = {0};
  ssize_t n = read(pfd[0], buf, sizeof buf - 1); /* blocks until listening (or the daemon died) */
  close(pfd[0]);
  if (n <= 0) {
    waitpid(pid, NULL, 0);
    return -1;
  }
  d->pid = pid;
  d->port = atoi(buf);
  snprintf(d->base, sizeof d->base, "http://127.0.0.1:%d", d->port);
  return 0;
}

int it_stop_daemon(daemon_proc *d) {
  if (d->pid <= 0) return -1;
  kill(d->pid, SIGTERM);
  int st = 0;
  waitpid(d->pid, &st, 0);
  d->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- HTTP client ---- */

size_t it_on_body(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  return sy_buf_append(&r->body, p, sz * n) == 0 ? sz * n : 0;
}

size_t it_on_header(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  size_t len = sz * n;
  const char *keys[] = {"x-switchyard-model:", "content-type:", "retry-after:", "server-timing:"};
  char *dst[] = {r->model_hdr, r->content_type, r->retry_after, r->server_timing};
  for (int k = 0; k < 4; k++) {
    size_t kl = strlen(keys[k]);
    if (len > kl && strncasecmp(p, keys[k], kl) == 0) {
      size_t v = kl;
      while (v < len && p[v] == ' ') v++;
      size_t e = len;
      while (e > v && (p[e - 1] == '\r' || p[e - 1] == '\n')) e--;
      snprintf(dst[k], k == 3 ? sizeof r->server_timing : 128, "%.*s", (int)(e - v), p + v);
    }
  }
  return len;
}

void it_resp_clear(resp *r) {
  sy_buf_free(&r->body);
  json_decref(r->json);
  memset(r, 0, sizeof *r);
}

/* A curl handle for d's path: the body to on_body(…, ud), the headers to on_header(…, hud) unless
 * NULL, no signals, and a hang fails the test (300 s) instead of CI. */
static CURL *easy_for(const daemon_proc *d, const char *path, curl_write_callback on_body, void *ud,
                      curl_write_callback on_header, void *hud) {
  CURL *c = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s%s", d->base, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, ud);
  if (on_header) {
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hud);
  }
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  return c;
}

void it_http_do(const daemon_proc *d, const char *method, const char *path, const char *body,
                resp *r, const char *const *headers) {
  memset(r, 0, sizeof *r);
  CURL *c = easy_for(d, path, it_on_body, r, it_on_header, r);
  struct curl_slist *hl = NULL;
  if (body) hl = curl_slist_append(hl, "Content-Type: application/json");
  char auth[256];
  if (d->api_key) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", d->api_key);
    hl = curl_slist_append(hl, auth);
  }
  for (const char *const *h = headers; h && *h; h++) hl = curl_slist_append(hl, *h);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

void it_post(const char *path, const char *body, resp *r) {
  it_http_do(&D, "POST", path, body, r, NULL);
}

void it_get(const char *path, resp *r) { it_http_do(&D, "GET", path, NULL, r, NULL); }

void it_post_json_at(const daemon_proc *d, const char *path, json_t *body, resp *r) {
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  it_http_do(d, "POST", path, s, r, NULL);
  free(s);
}

void it_post_json(const char *path, json_t *body, resp *r) { it_post_json_at(&D, path, body, r); }

/* the test's own second daemon */
daemon_proc B;

void it_b_chat(json_t *body, resp *r) { it_post_json_at(&B, "/v1/chat/completions", body, r); }

const json_t *it_jpath(const json_t *j, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  const json_t *cur = j;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
    cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
  return cur;
}

const char *it_jstr(const json_t *j, const char *path) {
  return json_string_value(it_jpath(j, path));
}

bool it_read_whole(const char *path, sy_buf *b) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char chunk[65536];
  size_t n;
  bool ok = true;
  while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0) ok = sy_buf_append(b, chunk, n) == 0;
  fclose(f);
  return ok;
}

long long it_jnum(const json_t *j, const char *path) {
  const json_t *v = it_jpath(j, path);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

json_t *it_sse_events(const sy_buf *b, bool *done, bool *well_formed) {
  json_t *arr = json_array();
  *done = false;
  *well_formed = true;
  const char *p = b->data ? b->data : "";
  while (*p) {
    const char *end = strstr(p, "\n\n");
    if (!end) {
      *well_formed = false;
      break;
    }
    if (strncmp(p, "data: ", 6) != 0 || *done)
      *well_formed = false;
    else if (strncmp(p + 6, "[DONE]", 6) == 0)
      *done = true;
    else {
      json_t *e = json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL);
      if (!e)
        *well_formed = false;
      else
        json_array_append_new(arr, e);
    }
    p = end + 2;
  }
  return arr;
}

void it_stream_text(json_t *events, bool chat, sy_buf *text, const char **finish, json_t **usage) {
  size_t i;
  json_t *e;
  *finish = NULL;
  *usage = NULL;
  json_array_foreach(events, i, e) {
    json_t *ch = json_array_get(json_object_get(e, "choices"), 0);
    const char *t = chat ? it_jstr(ch, "delta.content") : it_jstr(ch, "text");
    if (t) sy_buf_puts(text, t);
    const char *f = json_string_value(json_object_get(ch, "finish_reason"));
    if (f) *finish = f;
    json_t *u = json_object_get(e, "usage");
    if (json_is_object(u)) *usage = u;
  }
}

bool it_is_error(const resp *r, long status, const char *code) {
  const char *c = it_jstr(r->json, "error.code");
  return r->status == status && it_jstr(r->json, "error.message") &&
         it_jstr(r->json, "error.type") && (!code || (c && strcmp(c, code) == 0));
}

json_t *it_chat_body(const char *model, const char *content, int max_tokens, bool stream) {
  return json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:f, s:i, s:b}", "model", model,
                   "messages", "role", "system", "content", "You are terse.", "role", "user",
                   "content", content, "max_tokens", max_tokens, "temperature", 0.0, "seed", 42,
                   "stream", stream);
}

json_t *it_long_chat_body(const char *model, const char *content, int max_tokens, bool stream) {
  json_t *q = it_chat_body(model, content, max_tokens, stream);
  json_object_set_new(q, "ignore_eos", json_true());
  return q;
}

bool it_chat_streams(json_t *body, resp *r) {
  json_object_set_new(body, "stream", json_true());
  it_post_json("/v1/chat/completions", body, r);
  bool done = false, wf = false;
  json_t *ev = it_sse_events(&r->body, &done, &wf);
  bool ok = r->status == 200 && done && wf && json_array_size(ev) > 1;
  json_decref(ev);
  return ok;
}

double it_norm_of(const json_t *vec, size_t *dim) {
  double s = 0;
  size_t i;
  json_t *x;
  *dim = json_array_size(vec);
  json_array_foreach(vec, i, x) s += json_number_value(x) * json_number_value(x);
  return sqrt(s);
}

size_t it_abort_after_first(char *p, size_t sz, size_t n, void *ud) {
  (void)p;
  it_abort_ctx *a = ud;
  return ++a->chunks >= 2 ? 0 : sz * n; /* 0 = curl closes the connection */
}

CURLcode it_post_streamed(const daemon_proc *d, const char *path, json_t *body,
                          curl_write_callback on_body, void *ud, long *status) {
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  CURL *c = easy_for(d, path, on_body, ud, NULL, NULL);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, s);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  CURLcode rc = curl_easy_perform(c);
  if (status) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(s);
  return rc;
}

static void *bg_chat_main(void *arg) {
  it_bg_req *b = arg;
  it_post_json_at(b->d, "/v1/chat/completions", b->body, &b->r);
  return NULL;
}

void it_bg_chat(it_bg_req *b, const daemon_proc *d, json_t *body) {
  memset(&b->r, 0, sizeof b->r);
  b->d = d;
  b->body = body;
  pthread_create(&b->th, NULL, bg_chat_main, b);
}

void it_bg_join(it_bg_req *b) { pthread_join(b->th, NULL); }

CURLcode it_abandon_stream(const daemon_proc *d, const char *path, json_t *body) {
  it_abort_ctx a = {0};
  return it_post_streamed(d, path, body, it_abort_after_first, &a, NULL);
}

static size_t feed_data(char *p, size_t sz, size_t n, void *ud) {
  it_feed *f = ud;
  pthread_mutex_lock(&f->mu);
  sy_buf_append(&f->body, p, sz * n);
  bool stop = true;
  for (int i = 0; i < 4 && f->until[i]; i++) stop &= strstr(f->body.data, f->until[i]) != NULL;
  if (!f->hello && strstr(f->body.data, "\"type\":\"hello\"")) {
    f->hello = true;
    pthread_cond_broadcast(&f->cond);
  }
  pthread_mutex_unlock(&f->mu);
  return stop ? 0 : sz * n; /* 0: we have what we came for; curl hangs up */
}

void *it_feed_main(void *arg) {
  it_feed *f = arg;
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "%s/api/events", (f->d ? f->d : &D)->base);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, feed_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
  f->rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  pthread_mutex_lock(&f->mu);
  f->hello = true; /* wake the test even if the stream never started */
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

void it_feed_start(it_feed *f, pthread_t *th) {
  pthread_create(th, NULL, it_feed_main, f);
  pthread_mutex_lock(&f->mu);
  while (!f->hello) pthread_cond_wait(&f->cond, &f->mu);
  pthread_mutex_unlock(&f->mu);
}

/* ---- GET /metrics ---- */

double it_metric(const char *text, const char *head) {
  size_t n = strlen(head);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, head, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

int it_promtool_check(const sy_buf *body, char *out, size_t outlen) {
  if (system("command -v promtool >/dev/null 2>&1") != 0) return -1;
  char path[600], cmd[700];
  snprintf(path, sizeof path, "%s/metrics.txt", it_tmpdir);
  FILE *f = fopen(path, "w");
  if (!f) return 0;
  fwrite(body->data, 1, body->len, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", path);
  FILE *p = popen(cmd, "r");
  if (!p) return 0;
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 0 ? 1 : 0;
}

long it_budget_request(const char *model) {
  resp r;
  it_b_chat(it_chat_body(model, "hello", 2, false), &r);
  long st = r.status;
  it_resp_clear(&r);
  return st;
}

void it_with_own_daemon(const char *name, const char *yaml, void (*body)(void)) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/%s.yaml", it_tmpdir, name);
  FILE *f = fopen(cfg, "w");
  CHECK(f != NULL, "write %s", cfg);
  fputs(yaml, f);
  fclose(f);
  CHECK(it_start_daemon(&B, cfg) == 0, "start the %s daemon", name);
  body();
  int st = it_stop_daemon(&B); /* always, even when a check in body failed */
  CHECK(st == 0, "%s daemon: clean exit %d", name, st);
}

void it_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

json_t *it_ps_model(const daemon_proc *d, const char *name) {
  resp r;
  it_http_do(d, "GET", "/api/ps", NULL, &r, NULL);
  json_t *found = NULL, *m;
  size_t i;
  json_array_foreach(json_object_get(r.json, "models"), i,
                     m) if (strcmp(it_jstr(m, "name"), name) == 0) found = json_incref(m);
  it_resp_clear(&r);
  return found;
}

json_t *it_b_ps_model(const char *name) { return it_ps_model(&B, name); }

long long it_ps_stat(const daemon_proc *d, const char *key) {
  resp r;
  it_http_do(d, "GET", "/api/ps", NULL, &r, NULL);
  char path[64];
  snprintf(path, sizeof path, "stats.%s", key);
  long long v = it_jnum(r.json, path);
  it_resp_clear(&r);
  return v;
}

bool it_wait_inflight(const daemon_proc *d, const char *name, long long *pid) {
  for (int tries = 0; tries < 100000; tries++) { /* bounded: until it is being served */
    json_t *m = it_ps_model(d, name);
    bool busy = m && it_jnum(m, "inflight") >= 1;
    if (busy && pid) *pid = it_jnum(m, "pid");
    json_decref(m);
    if (busy) return true;
  }
  return false;
}

long it_b_load(const char *name) {
  char body[128];
  snprintf(body, sizeof body, "{\"model\":\"%s\"}", name);
  resp r;
  it_http_do(&B, "POST", "/api/load", body, &r, NULL);
  long st = r.status;
  it_resp_clear(&r);
  return st;
}

/* two small valid PNGs (RGB, 5x4 and 3x7) */
const char it_png_5x4[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAQklEQVR42hXIMRHAMAwEwevSuXNnABojSPEzoaAiYB6OQA"
    "igk3IXICDBUB8Q"
    "oSs1rFla/4dHetm7fEMTPbO3+6l+D1cfDu22FFMAAAAAAElFTkSuQmCC";
const char it_png_3x7[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAMAAAAHCAIAAABC22D+"
    "AAAASUlEQVR42g3FoRHAIBBE0S2IEujmGyYOdw4Xc0MFqSB6maEtSkieeUKksP4r"
    "WS/XLoKM7hhikSu8pjjkGT6PKGS5XV7RyDbd9gfMkR4Eg25eQgAAAABJRU5ErkJggg==";

json_t *it_vision_body(const char *model, const char *text, const char *const *urls) {
  json_t *parts = json_pack("[{s:s, s:s}]", "type", "text", "text", text);
  for (size_t i = 0; urls && urls[i]; i++)
    json_array_append_new(parts, json_pack("{s:s, s:{s:s, s:s}}", "type", "image_url", "image_url",
                                           "url", urls[i], "detail", "auto"));
  return json_pack("{s:s, s:[{s:s, s:o}], s:i, s:f, s:i}", "model", model, "messages", "role",
                   "user", "content", parts, "max_tokens", 6, "temperature", 0.0, "seed", 7);
}

char *it_data_url(const char *b64) {
  char *u = malloc(strlen(b64) + 32);
  sprintf(u, "data:image/png;base64,%s", b64);
  return u;
}

/* ---- multipart uploads, WAVs, subtitles (speech to text) ---- */

void it_post_form_at(const daemon_proc *d, const char *path, const void *file, size_t file_len,
                     const char *const *kv, resp *r) {
  memset(r, 0, sizeof *r);
  CURL *c = easy_for(d, path, it_on_body, r, it_on_header, r);
  curl_mime *form = curl_mime_init(c);
  if (file) {
    curl_mimepart *p = curl_mime_addpart(form);
    curl_mime_name(p, "file");
    curl_mime_data(p, file, file_len);
    curl_mime_filename(p, "audio.wav");
  }
  for (const char *const *k = kv; k && k[0] && k[1]; k += 2) {
    curl_mimepart *p = curl_mime_addpart(form);
    curl_mime_name(p, k[0]);
    curl_mime_data(p, k[1], CURL_ZERO_TERMINATED);
  }
  curl_easy_setopt(c, CURLOPT_MIMEPOST, form);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_mime_free(form);
  curl_easy_cleanup(c);
  if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

void it_post_form(const char *path, const void *file, size_t file_len, const char *const *kv,
                  resp *r) {
  it_post_form_at(&D, path, file, file_len, kv, r);
}

void it_make_wav(sy_buf *b, double secs) {
  uint32_t n = (uint32_t)(secs * 16000), bytes = n * 2;
  unsigned char h[44] =
      "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0data";
  uint32_t riff = 36 + bytes;
  memcpy(h + 4, &riff, 4);
  memcpy(h + 40, &bytes, 4);
  sy_buf_append(b, h, 44);
  unsigned seed = 7;
  for (uint32_t i = 0; i < n; i++) {
    double t = i / 16000.0;
    seed = seed * 1103515245u + 12345u;
    double v = 0.3 * sin(2 * M_PI * (220 + 60 * t) * t) +
               0.02 * ((double)(seed >> 16 & 0x7fff) / 16384.0 - 1);
    int16_t s = (int16_t)(v * 32767);
    sy_buf_append(b, &s, 2);
  }
}

/* Parse "HH:MM:SS,mmm" (sep ',' for SRT, '.' for VTT) at p; -1 when malformed. */
static double cue_time(const char *p, char sep) {
  int hh, mm, ss, ms;
  char c;
  if (strlen(p) < 12 || sscanf(p, "%2d:%2d:%2d%c%3d", &hh, &mm, &ss, &c, &ms) != 5 || c != sep ||
      mm > 59 || ss > 59 || p[2] != ':' || p[5] != ':' || !isdigit((unsigned char)p[11]))
    return -1;
  return hh * 3600 + mm * 60 + ss + ms / 1000.0;
}

int it_check_subtitles(const char *body, bool srt, char *why, size_t wl) {
  const char *p = body;
  if (!srt) {
    if (strncmp(p, "WEBVTT\n\n", 8) != 0) return snprintf(why, wl, "no WEBVTT header"), -1;
    p += 8;
  }
  int cues = 0;
  double prev = 0;
  char sep = srt ? ',' : '.';
  while (*p) {
    if (srt) {
      char *end;
      long idx = strtol(p, &end, 10);
      if (idx != cues + 1 || *end != '\n')
        return snprintf(why, wl, "cue %d: bad number", cues + 1), -1;
      p = end + 1;
    }
    double a = cue_time(p, sep),
           b = a >= 0 && strncmp(p + 12, " --> ", 5) == 0 ? cue_time(p + 17, sep) : -1;
    if (a < 0 || b < 0 || p[29] != '\n')
      return snprintf(why, wl, "cue %d: bad timing line", cues + 1), -1;
    if (a < prev || b < a)
      return snprintf(why, wl, "cue %d: times go back (%.3f..%.3f)", cues + 1, a, b), -1;
    prev = a;
    p += 30;
    const char *blank = strstr(p, "\n\n");
    if (!blank || blank == p)
      return snprintf(why, wl, "cue %d: no text or no blank line", cues + 1), -1;
    p = blank + 2;
    cues++;
  }
  return cues;
}

sy_buf it_test_wav;

/* ---- /v1/audio/speech and the WAVs it answers ---- */

static size_t speech_on_body(char *p, size_t sz, size_t n, void *ud) {
  it_speech_resp *r = ud;
  r->writes++;
  return sy_buf_append(&r->body, p, sz * n) == 0 ? sz * n : 0;
}

static size_t speech_on_header(char *p, size_t sz, size_t n, void *ud) {
  it_speech_resp *r = ud;
  size_t len = sz * n;
  if (len > 26 && strncasecmp(p, "transfer-encoding: chunked", 26) == 0) r->chunked = true;
  if (len > 14 && strncasecmp(p, "content-type: ", 14) == 0)
    snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)strcspn(p + 14, "\r\n"), p + 14);
  return len;
}

void it_speech_post(const daemon_proc *d, json_t *body, it_speech_resp *r) {
  memset(r, 0, sizeof *r);
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  CURL *c = easy_for(d, "/v1/audio/speech", speech_on_body, r, speech_on_header, r);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, s);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME, &r->t_first);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->t_total);
  }
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(s);
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned le16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

bool it_wav_parse(const sy_buf *b, const unsigned char **data, size_t *n, char *why, size_t wl) {
  const unsigned char *p = (const unsigned char *)b->data;
  if (b->len < 44 || memcmp(p, "RIFF", 4) || memcmp(p + 8, "WAVE", 4))
    return snprintf(why, wl, "no RIFF/WAVE"), false;
  size_t at = 12;
  bool fmt = false;
  while (at + 8 <= b->len) {
    uint32_t sz = le32(p + at + 4);
    if (!memcmp(p + at, "fmt ", 4)) {
      if (sz < 16 || at + 8 + 16 > b->len) return snprintf(why, wl, "short fmt"), false;
      const unsigned char *f = p + at + 8;
      if (le16(f) != 1 || le16(f + 2) != 1 || le32(f + 4) != 24000 || le16(f + 14) != 16)
        return snprintf(why, wl, "fmt: format %u, %u channels, %u Hz, %u bits", le16(f),
                        le16(f + 2), (unsigned)le32(f + 4), le16(f + 14)),
               false;
      fmt = true;
    } else if (!memcmp(p + at, "data", 4)) {
      size_t left = b->len - at - 8;
      /* a streamed WAV may not know its length up front (0xFFFFFFFF, as OpenAI's) */
      if (sz != 0xFFFFFFFFu && sz != left)
        return snprintf(why, wl, "data size %u, %zu bytes follow", (unsigned)sz, left), false;
      *data = p + at + 8;
      *n = left;
      return fmt ? true : (snprintf(why, wl, "data before fmt"), false);
    }
    if (sz > b->len) break;
    at += 8 + sz + (sz & 1);
  }
  return snprintf(why, wl, "no data chunk"), false;
}

/* ---- neural voices: bodies, seeded audio, reference voices, base64, audio parts ---- */

json_t *it_speech_body(const char *model, const char *input, const char *format, const char *voice,
                       int seed) {
  json_t *b = json_pack("{s:s, s:s, s:s, s:i}", "model", model, "input", input, "response_format",
                        format, "seed", seed);
  if (voice) json_object_set_new(b, "voice", json_string(voice));
  return b;
}

void it_check_seeded_voice(const daemon_proc *d, const char *model, const char *text,
                           size_t min_bytes, size_t multiple) {
  it_speech_resp a, b, c;
  it_speech_post(d, it_speech_body(model, text, "wav", "ref", 7), &a);
  CHECK(a.status == 200, "status %ld: %.300s", a.status, a.body.data ? a.body.data : "");
  const unsigned char *data = NULL;
  size_t n = 0;
  char why[160] = "";
  bool ok = it_wav_parse(&a.body, &data, &n, why, sizeof why);
  size_t nz = 0;
  for (size_t i = 0; ok && i + 1 < n; i += 2) nz += data[i] || data[i + 1];
  CHECK(ok, "a WAV at 24 kHz: %s", why);
  CHECK(n >= min_bytes && n % multiple == 0,
        "%zu bytes of 16-bit samples (at least %zu, a multiple of %zu)", n, min_bytes, multiple);
  CHECK(nz > n / 8, "not silence: %zu non-zero samples of %zu", nz, n / 2);
  CHECK(a.chunked && a.writes > 1, "streamed: chunked %d, %d pieces", a.chunked, a.writes);
  it_speech_post(d, it_speech_body(model, text, "wav", "ref", 7), &b);
  CHECK(b.status == 200 && b.body.len == a.body.len &&
            memcmp(a.body.data, b.body.data, a.body.len) == 0,
        "the same seed twice: the same bytes (%zu vs %zu)", a.body.len, b.body.len);
  it_speech_post(d, it_speech_body(model, text, "wav", "ref", 8), &c);
  CHECK(c.status == 200 &&
            (c.body.len != a.body.len || memcmp(a.body.data, c.body.data, a.body.len) != 0),
        "another seed: other audio");
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  sy_buf_free(&c.body);
}

void it_write_ref_wav(const char *path) {
  enum { RATE = 24000, N = 48000 };
  FILE *f = fopen(path, "wb");
  if (!f) return;
  unsigned char h[44];
  uint32_t data = N * 2;
  memcpy(h, "RIFF", 4), memcpy(h + 8, "WAVEfmt ", 8), memcpy(h + 36, "data", 4);
  uint32_t v32[] = {36 + data, 16, RATE, RATE * 2, data};
  memcpy(h + 4, &v32[0], 4), memcpy(h + 16, &v32[1], 4), memcpy(h + 24, &v32[2], 4);
  memcpy(h + 28, &v32[3], 4), memcpy(h + 40, &v32[4], 4);
  uint16_t v16[] = {1, 1, 2, 16};
  memcpy(h + 20, &v16[0], 2), memcpy(h + 22, &v16[1], 2), memcpy(h + 32, &v16[2], 2),
      memcpy(h + 34, &v16[3], 2);
  fwrite(h, 1, sizeof h, f);
  for (int i = 0; i < N; i++) {
    int16_t s = (int16_t)(8000.0 * sin(2.0 * 3.14159265358979 * 220.0 * i / RATE));
    fwrite(&s, 2, 1, f);
  }
  fclose(f);
}

json_t *it_uploaded_voice_file(const char *name) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", it_tmpdir, name);
  sy_buf wav = {0};
  it_read_whole(path, &wav);
  char *b = it_b64_encode(wav.data, wav.len);
  json_t *v = json_pack("{s:s+}", "audio", "data:audio/wav;base64,", b);
  free(b);
  sy_buf_free(&wav);
  return v;
}

char *it_b64_encode(const void *data, size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = data;
  char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    *q++ = tbl[v >> 18 & 63];
    *q++ = tbl[v >> 12 & 63];
    *q++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
    *q++ = i + 2 < n ? tbl[v & 63] : '=';
  }
  *q = '\0';
  return o;
}

json_t *it_audio_body(const char *model, const char *text, const char *const *b64s) {
  json_t *parts = json_pack("[{s:s, s:s}]", "type", "text", "text", text);
  for (size_t i = 0; b64s && b64s[i]; i++)
    json_array_append_new(parts, json_pack("{s:s, s:{s:s, s:s}}", "type", "input_audio",
                                           "input_audio", "data", b64s[i], "format", "wav"));
  return json_pack("{s:s, s:[{s:s, s:o}], s:i, s:f, s:i}", "model", model, "messages", "role",
                   "user", "content", parts, "max_tokens", 6, "temperature", 0.0, "seed", 7);
}

bool it_str_is(const char *s, const char *want) { return s && strcmp(s, want) == 0; }

bool it_lists(const json_t *arr, const char *s) {
  size_t i;
  const json_t *v;
  json_array_foreach(arr, i, v) if (it_str_is(json_string_value(v), s)) return true;
  return false;
}

long long it_b_ps_pid(const char *name) {
  json_t *m = it_b_ps_model(name);
  long long pid = m ? it_jnum(m, "pid") : -1;
  json_decref(m);
  return pid;
}

void it_write_main_config(const char *path) {
  FILE *f = fopen(path, "w");
  fprintf(f,
          "log_level: warn\n"
          "limits:\n  max_upload_bytes: 4000000\n"
          "models:\n"
          "  - name: chat\n    aliases: [chat-alias]\n    file: %s/tiny-qwen2.gguf\n    context: "
          "512\n    parallel: 4\n    keep_alive: -1\n"
          "    deterministic: true\n"
          "  - name: busy\n    file: %s/tiny-qwen2.gguf\n    context: 512\n    parallel: 4\n"
          "  - name: flex\n    file: %s/tiny-qwen2.gguf\n    context: 256\n    parallel: 1\n    "
          "keep_alive: -1\n"
          "    request_keep_alive: true\n"
          "  - name: slow\n    file: %s/tiny-qwen2.gguf\n    context: 32768\n    parallel: 1\n"
          "  - name: once\n    file: %s/tiny-qwen2.gguf\n    context: 256\n    parallel: 1\n    "
          "keep_alive: 0\n"
          "  - name: embed\n    file: %s/tiny-bert.gguf\n    context: 512\n"
          "  - name: tools\n    file: %s/tiny-qwen3.gguf\n    context: 1024\n    parallel: 2\n"
          "  - name: think\n    file: %s/tiny-qwq.gguf\n    context: 1024\n    parallel: 1\n",
          it_models_dir, it_models_dir, it_models_dir, it_models_dir, it_models_dir, it_models_dir,
          it_models_dir, it_models_dir);
  fprintf(
      f,
      "  - name: rerank\n    file: %s/tiny-bert-rerank.gguf\n    context: 128\n    parallel: 4\n"
      "  - name: rerank-tmpl\n    file: %s/tiny-bert-rerank-tmpl.gguf\n    context: 128\n",
      it_models_dir, it_models_dir);
  fprintf(f, "  - {name: whisper, engine: whisper, file: %s/tiny-whisper.bin}\n", it_models_dir);
  if (it_have_quant)
    fprintf(f,
            "  - {name: chat-q8_0, file: %s/tiny-qwen2-q8_0.gguf, context: 256, parallel: 1, "
            "keep_alive: 0}\n"
            "  - {name: chat-q4_k_m, file: %s/tiny-qwen2-q4_k_m.gguf, context: 256, parallel: 1, "
            "keep_alive: 0}\n",
            it_models_dir, it_models_dir);
  if (it_have_testdata)
    fprintf(f,
            "  - {name: whisper-vad, engine: whisper, file: %s/for-tests-ggml-tiny.bin,\n"
            "     vad_model: %s/for-tests-silero-v6.2.0-ggml.bin}\n",
            it_testdata_dir, it_testdata_dir);
  if (it_have_testdata) /* Parakeet-TDT: the same ggml magic, whisper.cpp's Parakeet engine */
    fprintf(f,
            "  - {name: parakeet, engine: whisper, file: %s/for-tests-ggml-parakeet-tdt.bin,\n"
            "     vad_model: %s/for-tests-silero-v6.2.0-ggml.bin}\n",
            it_testdata_dir, it_testdata_dir);
  if (it_have_testdata)
    fprintf(f,
            "  - name: llama2\n    file: %s/llama-2-tiny-random.gguf\n    context: 256\n    "
            "parallel: 1\n"
            "  - name: llama2-embed\n    file: %s/llama-2-tiny-random.gguf\n    capabilities: "
            "[embed]\n    pooling: mean\n    context: 256\n",
            it_testdata_dir, it_testdata_dir);
  if (it_have_vlm)
    fprintf(f,
            "  - name: vlm\n    file: %s/tiny-vlm.gguf\n    mmproj: %s/tiny-vlm-mmproj.gguf\n    "
            "context: 512\n"
            "    parallel: 2\n",
            it_models_dir, it_models_dir);
  if (it_have_alm)
    fprintf(f,
            "  - name: alm\n    file: %s/tiny-alm.gguf\n    mmproj: %s/tiny-alm-mmproj.gguf\n    "
            "context: 1024\n"
            "    parallel: 2\n    transcribe_prompt: 'Write down what is said.'\n",
            it_models_dir, it_models_dir);
  if (it_have_pocket) {
    char ref[600];
    snprintf(ref, sizeof ref, "%s/ref-voice.wav", it_tmpdir);
    it_write_ref_wav(ref);
    fprintf(
        f,
        "  - name: pocket\n    file: %s/tiny-pocket.gguf\n    mmproj: %s/tiny-pocket-mmproj.gguf\n"
        "    context: 1024\n    voice_upload: true\n    voices:\n      ref: {audio: %s, language: "
        "en}\n",
        it_models_dir, it_models_dir, ref);
  }
  fclose(f);
}

void it_words(char *out, size_t cap, int n, int salt) {
  static const char *const words[] = {"river", "stone",  "light",  "garden", "window", "paper",
                                      "music", "orange", "silver", "forest", "market", "winter"};
  size_t len = 0;
  out[0] = 0;
  for (int k = 0; k < n && len + 16 < cap; k++)
    len += (size_t)snprintf(out + len, cap - len, "%s%s", k ? " " : "",
                            words[(size_t)(k * 7 + salt) % (sizeof words / sizeof *words)]);
  snprintf(out + len, cap - len, ".");
}
