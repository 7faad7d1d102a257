/* itest.c — integration tests: start the real daemon (which starts real llama.cpp workers on
 * random-weight models made by tools/mkmodel) on a free loopback port and drive it over HTTP with
 * libcurl. Asserts on structure (shapes, token counts, finish reasons, status codes, determinism
 * under a fixed seed), never on meaning. No sleeps: every wait is on a condition (a pipe, a
 * response, a bounded poll of /api/ps).
 *
 * usage: itest --daemon BIN --models DIR [--testdata DIR] [--engines DIR] [--only NAME]
 * --engines (or SWITCHYARD_ENGINES): the engine cache's install folder (deps/engines.sh print-prefix),
 * whose bin/llama-server the external-engine tests run; without it they are skipped.
 * Prints one line per test and "N passed, N failed" at the end; exit status 1 on any failure. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <sys/syscall.h>
#include <poll.h>
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/daemon/audio.h"
#include "buf.h"

/* ---- tiny test harness ---- */

static int n_pass, n_fail, n_skip;
static char cur_fail[1024];
static char cur_skip[256]; /* set by a test that cannot run here: counted as skipped */
static bool cur_failed;

#define CHECK(cond, ...)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      if (!cur_failed) {                                                              \
        int k_ = snprintf(cur_fail, sizeof cur_fail, "line %d: %s: ", __LINE__, #cond); \
        if (k_ > 0 && (size_t)k_ < sizeof cur_fail)                                   \
          snprintf(cur_fail + k_, sizeof cur_fail - (size_t)k_, __VA_ARGS__);         \
      }                                                                               \
      cur_failed = true;                                                              \
      return;                                                                         \
    }                                                                                 \
  } while (0)

/* ---- the daemon under test ---- */

static const char *daemon_bin, *models_dir, *testdata_dir, *only;
static const char *engines_dir; /* --engines or SWITCHYARD_ENGINES: the engine cache's install folder */
static char tmpdir[256];

typedef struct daemon_proc {
  pid_t pid;
  int port;
  char base[64];
  const char *api_key;
} daemon_proc;

static daemon_proc D;       /* the main instance */
static bool have_testdata;
static bool have_vlm; /* models/tiny-vlm-mmproj.gguf exists (tests/run.sh make_models) */
static bool have_alm; /* models/tiny-alm-mmproj.gguf exists (mkmodel --mmproj-kind audio) */
static bool have_quant; /* models/tiny-qwen2-q8_0.gguf and -q4_k_m.gguf exist (tests/run.sh make_models) */
static bool have_pocket; /* models/tiny-pocket-mmproj.gguf exists (mkmodel --arch pockettts --mmproj) */

static int start_daemon(daemon_proc *d, const char *config) {
  int pfd[2];
  if (pipe(pfd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(pfd[0]);
    /* each daemon remembers its own measurements: "<config>.state/" (one test's measurements,
     * say under ASan, must not become another test's footprints) */
    char state[600];
    snprintf(state, sizeof state, "%s.state", config);
    setenv("SWITCHYARD_STATE_DIR", state, 1);
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
    execl(daemon_bin, daemon_bin, "--config", config, "--port", "0", "--ready-fd", fdarg, (char *)NULL);
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

static int stop_daemon(daemon_proc *d) {
  if (d->pid <= 0) return -1;
  kill(d->pid, SIGTERM);
  int st = 0;
  waitpid(d->pid, &st, 0);
  d->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- HTTP client ---- */

typedef struct resp {
  long status;
  sy_buf body;
  json_t *json;
  char model_hdr[128];
  char content_type[128];
  char retry_after[128];
  char server_timing[256];
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  return sy_buf_append(&r->body, p, sz * n) == 0 ? sz * n : 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
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

static void resp_clear(resp *r) {
  sy_buf_free(&r->body);
  json_decref(r->json);
  memset(r, 0, sizeof *r);
}

/* method path body; extra headers NULL-terminated; fills r (json parsed when possible). */
static void http_do(const daemon_proc *d, const char *method, const char *path, const char *body, resp *r,
                    const char *const *headers) {
  memset(r, 0, sizeof *r);
  CURL *c = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s%s", d->base, path);
  struct curl_slist *hl = NULL;
  if (body) hl = curl_slist_append(hl, "Content-Type: application/json");
  char auth[256];
  if (d->api_key) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", d->api_key);
    hl = curl_slist_append(hl, auth);
  }
  for (const char *const *h = headers; h && *h; h++) hl = curl_slist_append(hl, *h);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L); /* a hang fails the test instead of CI */
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

static void post(const char *path, const char *body, resp *r) { http_do(&D, "POST", path, body, r, NULL); }
static void get(const char *path, resp *r) { http_do(&D, "GET", path, NULL, r, NULL); }

/* Body built with json_pack-style format (stolen). */
static void post_json(const char *path, json_t *body, resp *r) {
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  post(path, s, r);
  free(s);
}

/* POST a chat body (stolen) to the test's own second daemon, B. */
static daemon_proc B;
static void b_chat(json_t *body, resp *r) {
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  http_do(&B, "POST", "/v1/chat/completions", s, r, NULL);
  free(s);
}

/* The value at a dotted path ("choices.0.message.content"; numbers index arrays), or NULL. */
static const json_t *jpath(const json_t *j, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  const json_t *cur = j;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
    cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
  return cur;
}

static const char *jstr(const json_t *j, const char *path) { return json_string_value(jpath(j, path)); }

/* The whole file at path appended to b; false if it cannot be read. */
static bool read_whole(const char *path, sy_buf *b) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char chunk[65536];
  size_t n;
  bool ok = true;
  while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0) ok = sy_buf_append(b, chunk, n) == 0;
  fclose(f);
  return ok;
}

static long long jnum(const json_t *j, const char *path) {
  const json_t *v = jpath(j, path);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* Parse an SSE body into its JSON events; *done set when "data: [DONE]" ends it. */
static json_t *sse_events(const sy_buf *b, bool *done, bool *well_formed) {
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
    if (strncmp(p, "data: ", 6) != 0 || *done) *well_formed = false;
    else if (strncmp(p + 6, "[DONE]", 6) == 0) *done = true;
    else {
      json_t *e = json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL);
      if (!e) *well_formed = false;
      else json_array_append_new(arr, e);
    }
    p = end + 2;
  }
  return arr;
}

/* Concatenated content of a chat/completion stream, with its finish reason and usage. */
static void stream_text(json_t *events, bool chat, sy_buf *text, const char **finish, json_t **usage) {
  size_t i;
  json_t *e;
  *finish = NULL;
  *usage = NULL;
  json_array_foreach(events, i, e) {
    json_t *ch = json_array_get(json_object_get(e, "choices"), 0);
    const char *t = chat ? jstr(ch, "delta.content") : jstr(ch, "text");
    if (t) sy_buf_puts(text, t);
    const char *f = json_string_value(json_object_get(ch, "finish_reason"));
    if (f) *finish = f;
    json_t *u = json_object_get(e, "usage");
    if (json_is_object(u)) *usage = u;
  }
}

static bool is_error(const resp *r, long status, const char *code) {
  const char *c = jstr(r->json, "error.code");
  return r->status == status && jstr(r->json, "error.message") && jstr(r->json, "error.type") &&
         (!code || (c && strcmp(c, code) == 0));
}

/* ---- tests ---- */

static void t_health(void) {
  resp r;
  get("/health", &r);
  CHECK(r.status == 200, "status %ld", r.status);
  CHECK(jstr(r.json, "status") && strcmp(jstr(r.json, "status"), "ok") == 0, "%s", r.body.data);
  resp_clear(&r);
}

static void t_models(void) {
  resp r;
  get("/v1/models", &r);
  CHECK(r.status == 200, "status %ld", r.status);
  CHECK(strcmp(jstr(r.json, "object"), "list") == 0, "object");
  json_t *data = json_object_get(r.json, "data");
  bool chat = false, embed = false;
  size_t i;
  json_t *m;
  json_array_foreach(data, i, m) {
    const char *id = jstr(m, "id");
    if (id && strcmp(id, "chat") == 0) chat = strcmp(jstr(m, "capabilities.0"), "chat") == 0;
    if (id && strcmp(id, "embed") == 0) embed = strcmp(jstr(m, "capabilities.0"), "embed") == 0;
    CHECK(strcmp(jstr(m, "object"), "model") == 0, "object of %s", id);
  }
  CHECK(chat && embed, "chat/embed listed with capabilities: %s", r.body.data);
  resp_clear(&r);
  get("/v1/models/chat", &r);
  CHECK(r.status == 200 && strcmp(jstr(r.json, "id"), "chat") == 0, "retrieve: %ld", r.status);
  resp_clear(&r);
  get("/v1/models/nope", &r);
  CHECK(is_error(&r, 404, "model_not_found"), "retrieve unknown: %ld %s", r.status, r.body.data);
  resp_clear(&r);
}

static json_t *chat_body(const char *model, const char *content, int max_tokens, bool stream) {
  return json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:f, s:i, s:b}", "model", model, "messages", "role",
                   "system", "content", "You are terse.", "role", "user", "content", content, "max_tokens",
                   max_tokens, "temperature", 0.0, "seed", 42, "stream", stream);
}

static void t_chat(void) {
  resp r;
  post_json("/v1/chat/completions", chat_body("chat", "Hello there", 12, false), &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strcmp(jstr(r.json, "object"), "chat.completion") == 0, "object");
  CHECK(strncmp(jstr(r.json, "id"), "chatcmpl-", 9) == 0, "id");
  CHECK(strcmp(jstr(r.json, "model"), "chat") == 0, "model");
  CHECK(strcmp(r.model_hdr, "chat") == 0, "X-Switchyard-Model header '%s'", r.model_hdr);
  CHECK(strcmp(jstr(r.json, "choices.0.message.role"), "assistant") == 0, "role");
  CHECK(jstr(r.json, "choices.0.message.content") != NULL, "content");
  const char *fin = jstr(r.json, "choices.0.finish_reason");
  long long ct = jnum(r.json, "usage.completion_tokens"), pt = jnum(r.json, "usage.prompt_tokens");
  CHECK(fin && (strcmp(fin, "length") == 0 || strcmp(fin, "stop") == 0), "finish %s", fin);
  CHECK(ct >= 1 && ct <= 12, "completion_tokens %lld", ct);
  CHECK(strcmp(fin, "stop") == 0 || ct == 12, "length finish must use all max_tokens (%lld)", ct);
  CHECK(pt > 5, "prompt_tokens %lld (template applied)", pt);
  CHECK(jnum(r.json, "usage.total_tokens") == pt + ct, "total");
  resp_clear(&r);
}

/* Quantized weights on the CPU: Q8_0 and Q4_K_M (256-wide, so the K-quant blocks are real and not
 * a fallback type) through the worker, prompt (a batch) and decode (one token at a time). These
 * take the CPU backend's repacked or matrix-unit kernels, which F16 never does: a crash there
 * (ggml's AMX kernels on Intel Sapphire Rapids, llama.cpp #20824) fails here, on whatever
 * processor runs the suite. Shape only: the tokens differ between processors. */
static void t_chat_quantized(void) {
  CHECK(have_quant, "%s/tiny-qwen2-q8_0.gguf / -q4_k_m.gguf are missing (tests/run.sh make_models writes them)",
        models_dir);
  static const char *const names[] = {"chat-q8_0", "chat-q4_k_m"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    resp r;
    post_json("/v1/chat/completions",
              chat_body(names[i], "Tell me, in a few words, what quantized weights are for.", 8, false), &r);
    CHECK(r.status == 200, "%s: status %ld %s", names[i], r.status, r.body.data);
    long long ct = jnum(r.json, "usage.completion_tokens"), pt = jnum(r.json, "usage.prompt_tokens");
    const char *fin = jstr(r.json, "choices.0.finish_reason");
    CHECK(pt > 10, "%s: prompt_tokens %lld", names[i], pt);
    CHECK(ct >= 1 && ct <= 8, "%s: completion_tokens %lld", names[i], ct);
    CHECK(fin && (strcmp(fin, "stop") == 0 || (strcmp(fin, "length") == 0 && ct == 8)), "%s: finish %s",
          names[i], fin);
    CHECK(jstr(r.json, "choices.0.message.content") != NULL, "%s: content", names[i]);
    resp_clear(&r);
  }
}

static void t_chat_deterministic(void) {
  resp a, b;
  post_json("/v1/chat/completions", chat_body("chat", "Tell me a story", 24, false), &a);
  post_json("/v1/chat/completions", chat_body("chat", "Tell me a story", 24, false), &b);
  CHECK(a.status == 200 && b.status == 200, "%ld %ld", a.status, b.status);
  const char *ta = jstr(a.json, "choices.0.message.content"), *tb = jstr(b.json, "choices.0.message.content");
  CHECK(ta && tb && strcmp(ta, tb) == 0, "'%s' vs '%s'", ta, tb);
  CHECK(strlen(ta) > 0, "empty text");
  resp_clear(&a);
  resp_clear(&b);
  /* with sampling, a fixed seed is reproducible too */
  json_t *q1 = chat_body("chat", "Sample", 16, false), *q2 = chat_body("chat", "Sample", 16, false);
  json_object_set_new(q1, "temperature", json_real(1.0));
  json_object_set_new(q2, "temperature", json_real(1.0));
  post_json("/v1/chat/completions", q1, &a);
  post_json("/v1/chat/completions", q2, &b);
  ta = jstr(a.json, "choices.0.message.content");
  tb = jstr(b.json, "choices.0.message.content");
  CHECK(ta && tb && strcmp(ta, tb) == 0, "seeded sampling differs: '%s' vs '%s'", ta, tb);
  resp_clear(&a);
  resp_clear(&b);
}

static void t_chat_stream(void) {
  resp whole, r;
  post_json("/v1/chat/completions", chat_body("chat", "Stream this", 20, false), &whole);
  CHECK(whole.status == 200, "whole %ld", whole.status);
  json_t *q = chat_body("chat", "Stream this", 20, true);
  json_object_set_new(q, "stream_options", json_pack("{s:b}", "include_usage", 1));
  post_json("/v1/chat/completions", q, &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strncmp(r.content_type, "text/event-stream", 17) == 0, "content-type %s", r.content_type);
  bool done, ok;
  json_t *ev = sse_events(&r.body, &done, &ok);
  CHECK(ok && done, "well formed %d, [DONE] %d: %s", ok, done, r.body.data);
  CHECK(json_array_size(ev) >= 3, "events %zu", json_array_size(ev));
  json_t *first = json_array_get(ev, 0);
  CHECK(strcmp(jstr(first, "object"), "chat.completion.chunk") == 0, "chunk object");
  CHECK(strcmp(jstr(first, "choices.0.delta.role"), "assistant") == 0, "first chunk carries the role");
  sy_buf text = {0};
  const char *finish;
  json_t *usage;
  stream_text(ev, true, &text, &finish, &usage);
  const char *want = jstr(whole.json, "choices.0.message.content");
  CHECK(strcmp(text.data ? text.data : "", want) == 0, "stream '%s' vs whole '%s'", text.data, want);
  CHECK(finish && strcmp(finish, jstr(whole.json, "choices.0.finish_reason")) == 0, "finish %s", finish);
  CHECK(usage && jnum(usage, "completion_tokens") == jnum(whole.json, "usage.completion_tokens"), "usage");
  json_t *last = json_array_get(ev, json_array_size(ev) - 1);
  CHECK(json_array_size(json_object_get(last, "choices")) == 0, "usage chunk has empty choices");
  sy_buf_free(&text);
  json_decref(ev);
  resp_clear(&r);
  resp_clear(&whole);
}

static void t_completions(void) {
  resp r, s;
  json_t *q = json_pack("{s:s, s:s, s:i, s:f, s:i}", "model", "chat", "prompt", "Once upon a time", "max_tokens", 8,
                        "temperature", 0.0, "seed", 1);
  post_json("/v1/completions", json_deep_copy(q), &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strcmp(jstr(r.json, "object"), "text_completion") == 0, "object");
  CHECK(jstr(r.json, "choices.0.text") != NULL, "text");
  long long ct = jnum(r.json, "usage.completion_tokens");
  const char *fin = jstr(r.json, "choices.0.finish_reason");
  CHECK(ct >= 1 && ct <= 8 && (strcmp(fin, "stop") == 0 || ct == 8), "tokens %lld finish %s", ct, fin);
  json_object_set_new(q, "stream", json_true());
  post_json("/v1/completions", q, &s);
  bool done, ok;
  json_t *ev = sse_events(&s.body, &done, &ok);
  CHECK(s.status == 200 && ok && done, "stream %ld", s.status);
  sy_buf text = {0};
  const char *finish;
  json_t *usage;
  stream_text(ev, false, &text, &finish, &usage);
  CHECK(strcmp(text.data ? text.data : "", jstr(r.json, "choices.0.text")) == 0, "stream text differs");
  CHECK(usage == NULL, "no usage chunk unless asked");
  sy_buf_free(&text);
  json_decref(ev);
  resp_clear(&r);
  resp_clear(&s);
  /* without max_tokens, OpenAI's default of 16 applies to /v1/completions */
  post_json("/v1/completions", json_pack("{s:s, s:s, s:f}", "model", "chat", "prompt", "x", "temperature", 0.0), &r);
  CHECK(r.status == 200 && jnum(r.json, "usage.completion_tokens") <= 16, "default max_tokens");
  resp_clear(&r);
}

static double norm_of(const json_t *vec, size_t *dim) {
  double s = 0;
  size_t i;
  json_t *x;
  *dim = json_array_size(vec);
  json_array_foreach(vec, i, x) s += json_number_value(x) * json_number_value(x);
  return sqrt(s);
}

static void t_embeddings(void) {
  resp r;
  post_json("/v1/embeddings", json_pack("{s:s, s:s}", "model", "embed", "input", "hello world"), &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strcmp(jstr(r.json, "object"), "list") == 0, "object");
  json_t *v = json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "embedding");
  size_t dim;
  double n = norm_of(v, &dim);
  CHECK(dim >= 8, "dim %zu", dim);
  CHECK(fabs(n - 1.0) < 1e-3, "norm %f", n);
  CHECK(jnum(r.json, "usage.prompt_tokens") >= 2, "prompt tokens");
  json_t *single = json_deep_copy(v);
  resp_clear(&r);

  post_json("/v1/embeddings",
            json_pack("{s:s, s:[s,s,s]}", "model", "embed", "input", "first text", "hello world", "third"), &r);
  CHECK(r.status == 200, "batch status %ld %s", r.status, r.body.data);
  json_t *data = json_object_get(r.json, "data");
  CHECK(json_array_size(data) == 3, "3 items");
  for (size_t i = 0; i < 3; i++) {
    size_t di;
    CHECK(jnum(json_array_get(data, i), "index") == (long long)i, "index order");
    CHECK(fabs(norm_of(json_object_get(json_array_get(data, i), "embedding"), &di) - 1.0) < 1e-3 && di == dim, "item %zu", i);
  }
  json_t *again = json_object_get(json_array_get(data, 1), "embedding");
  double maxdiff = 0;
  for (size_t k = 0; k < dim; k++)
    maxdiff = fmax(maxdiff, fabs(json_number_value(json_array_get(again, k)) - json_number_value(json_array_get(single, k))));
  CHECK(maxdiff < 1e-4, "same text in a batch embeds the same (max diff %g)", maxdiff);
  resp_clear(&r);

  post_json("/v1/embeddings", json_pack("{s:s, s:s, s:s}", "model", "embed", "input", "hello world", "encoding_format", "base64"), &r);
  CHECK(r.status == 200, "base64 status %ld", r.status);
  const char *b64 = jstr(r.json, "data.0.embedding");
  CHECK(b64 && strlen(b64) == (dim * 4 + 2) / 3 * 4, "base64 length");
  /* decode and compare */
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned char *raw = calloc(dim * 4 + 3, 1);
  size_t o = 0;
  for (size_t i = 0; b64[i] && b64[i + 1] && b64[i + 2] && b64[i + 3]; i += 4) {
    unsigned v4 = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      const char *pos = strchr(tbl, b64[i + k]);
      if (b64[i + k] == '=') pad++;
      v4 = v4 << 6 | (pos && b64[i + k] != '=' ? (unsigned)(pos - tbl) : 0);
    }
    raw[o++] = (unsigned char)(v4 >> 16);
    if (pad < 2) raw[o++] = (unsigned char)(v4 >> 8);
    if (pad < 1) raw[o++] = (unsigned char)v4;
  }
  float f0;
  memcpy(&f0, raw, 4);
  double d0 = json_number_value(json_array_get(single, 0));
  free(raw);
  json_decref(single);
  CHECK(o == dim * 4, "decoded %zu bytes", o);
  CHECK(fabs(f0 - d0) < 1e-6, "base64 value %f vs float %f", f0, d0);
  resp_clear(&r);
}

typedef struct conc_arg {
  int i;
  const char *model;
  resp r;
} conc_arg;

static void *conc_main(void *p) {
  conc_arg *a = p;
  char content[64];
  snprintf(content, sizeof content, "Concurrent request number %d", a->i);
  post_json("/v1/chat/completions", chat_body(a->model, content, 16, true), &a->r);
  return NULL;
}

/* 10 streams at once on a model with 4 slots: all complete. On "chat" (deterministic: true) a
 * request also gives the same text alone as under load; on "busy" (throughput mode, prompts
 * batched together) only the structure is asserted. */
static void concurrent_streams(const char *model, bool same_alone) {
  enum { N = 10 };
  conc_arg args[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    args[i].i = i;
    args[i].model = model;
    pthread_create(&th[i], NULL, conc_main, &args[i]);
  }
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  int good = 0;
  for (int i = 0; i < N; i++) {
    bool done, ok;
    json_t *ev = sse_events(&args[i].r.body, &done, &ok);
    sy_buf text = {0};
    const char *finish;
    json_t *usage;
    stream_text(ev, true, &text, &finish, &usage);
    if (args[i].r.status == 200 && done && ok && finish) good++;
    sy_buf_free(&text);
    json_decref(ev);
  }
  /* the same request alone gives the same text as under concurrency (greedy decoding) */
  resp alone;
  post_json("/v1/chat/completions", chat_body(model, "Concurrent request number 3", 16, true), &alone);
  bool d1, o1, d2, o2;
  json_t *e1 = sse_events(&alone.body, &d1, &o1), *e2 = sse_events(&args[3].r.body, &d2, &o2);
  sy_buf t1 = {0}, t2 = {0};
  const char *f;
  json_t *u;
  stream_text(e1, true, &t1, &f, &u);
  stream_text(e2, true, &t2, &f, &u);
  bool same = strcmp(t1.data ? t1.data : "", t2.data ? t2.data : "") == 0;
  sy_buf_free(&t1);
  sy_buf_free(&t2);
  json_decref(e1);
  json_decref(e2);
  resp_clear(&alone);
  for (int i = 0; i < N; i++) resp_clear(&args[i].r);
  CHECK(good == N, "%d of %d streams completed", good, N);
  CHECK(same || !same_alone, "request 3 alone and under concurrency gave different text");
}

static void t_concurrent_streams(void) { concurrent_streams("chat", true); }
static void t_concurrent_throughput(void) { concurrent_streams("busy", false); }

static void t_errors(void) {
  resp r;
  post("/v1/chat/completions", "{\"model\": \"chat\", \"messages\": [", &r);
  CHECK(is_error(&r, 400, "invalid_json"), "malformed json: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post("/v1/chat/completions", "[1,2]", &r);
  CHECK(is_error(&r, 400, "invalid_json"), "array body: %ld", r.status);
  resp_clear(&r);
  post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(is_error(&r, 400, NULL) && strcmp(jstr(r.json, "error.param"), "model") == 0, "missing model: %s", r.body.data);
  resp_clear(&r);
  post("/v1/chat/completions", "{\"model\":\"gpt-17\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(is_error(&r, 404, "model_not_found"), "unknown model: %ld", r.status);
  CHECK(strstr(jstr(r.json, "error.message"), "gpt-17") && strstr(jstr(r.json, "error.message"), "chat"),
        "message names the model and lists models: %s", jstr(r.json, "error.message"));
  resp_clear(&r);
  post("/v1/chat/completions", "{\"model\":\"chat\",\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(is_error(&r, 400, NULL) && strcmp(jstr(r.json, "error.param"), "temperature") == 0, "bad temperature: %s", r.body.data);
  resp_clear(&r);
  post("/v1/chat/completions", "{\"model\":\"chat\",\"messages\":[]}", &r);
  CHECK(is_error(&r, 400, NULL) && strcmp(jstr(r.json, "error.param"), "messages") == 0, "empty messages");
  resp_clear(&r);
  post("/v1/chat/completions", "{\"model\":\"chat\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(is_error(&r, 400, "unsupported_parameter"), "n=2: %s", r.body.data);
  resp_clear(&r);
  post("/v1/embeddings", "{\"model\":\"chat\",\"input\":\"hi\"}", &r);
  CHECK(is_error(&r, 400, "wrong_capability"), "embeddings on a chat model: %s", r.body.data);
  resp_clear(&r);
  post("/v1/chat/completions", "{\"model\":\"embed\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(is_error(&r, 400, "wrong_capability"), "chat on an embedding model: %s", r.body.data);
  resp_clear(&r);
  /* a prompt longer than the context (512 per request for "chat") */
  sy_buf big = {0};
  for (int i = 0; i < 400; i++) sy_buf_puts(&big, "lorem ipsum dolor ");
  json_t *q = json_pack("{s:s, s:[{s:s, s:s}]}", "model", "chat", "messages", "role", "user", "content", big.data);
  sy_buf_free(&big);
  post_json("/v1/chat/completions", json_deep_copy(q), &r);
  CHECK(is_error(&r, 400, "context_length_exceeded"), "long prompt: %ld %s", r.status, r.body.data);
  CHECK(strstr(jstr(r.json, "error.message"), "512") != NULL, "names the context: %s", jstr(r.json, "error.message"));
  resp_clear(&r);
  json_object_set_new(q, "stream", json_true());
  post_json("/v1/chat/completions", q, &r);
  CHECK(is_error(&r, 400, "context_length_exceeded"), "long prompt, streamed: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* a body over the limit (16 MiB default) */
  size_t n = 17u << 20;
  char *huge = malloc(n + 1);
  memset(huge, ' ', n);
  huge[n] = '\0';
  huge[0] = '{';
  huge[n - 1] = '}';
  post("/v1/chat/completions", huge, &r);
  free(huge);
  CHECK(is_error(&r, 413, "request_too_large"), "413: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  get("/v1/nothing", &r);
  CHECK(is_error(&r, 404, "not_found"), "unknown endpoint %ld", r.status);
  resp_clear(&r);
  get("/v1/chat/completions", &r);
  CHECK(is_error(&r, 405, "method_not_allowed"), "GET on POST endpoint %ld", r.status);
  resp_clear(&r);
  const char *evil[] = {"Host: evil.example", NULL};
  http_do(&D, "GET", "/v1/models", NULL, &r, evil);
  CHECK(is_error(&r, 403, "host_not_allowed"), "DNS rebinding Host: %ld", r.status);
  resp_clear(&r);
}

static long long ps_stat(const char *key) {
  resp r;
  get("/api/ps", &r);
  char path[64];
  snprintf(path, sizeof path, "stats.%s", key);
  long long v = jnum(r.json, path);
  resp_clear(&r);
  return v;
}

typedef struct abort_ctx {
  int chunks;
} abort_ctx;

static size_t abort_after_first(char *p, size_t sz, size_t n, void *ud) {
  (void)p;
  abort_ctx *a = ud;
  return ++a->chunks >= 2 ? 0 : sz * n; /* 0 = curl closes the connection */
}

static void t_disconnect(void) {
  /* "slow" has one slot and a long context: a stream left to run would hold it for a long time. */
  long long before = ps_stat("cancelled");
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "%s/v1/chat/completions", D.base);
  json_t *q = chat_body("slow", "Go on forever", 30000, true);
  json_object_set_new(q, "ignore_eos", json_true()); /* runs until cancelled, whatever the weights say */
  char *body = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  abort_ctx a = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, abort_after_first);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(body);
  CHECK(rc == CURLE_WRITE_ERROR, "the client aborted (curl %d)", rc);
  /* One slot: this request can only run once the abandoned one has let go of it. */
  resp r;
  post_json("/v1/chat/completions", chat_body("slow", "Next", 4, false), &r);
  CHECK(r.status == 200, "next request %ld %s", r.status, r.body.data);
  resp_clear(&r);
  CHECK(ps_stat("cancelled") > before, "the abandoned stream was cancelled, not run to its end");
}

typedef struct bg_req {
  resp r;
} bg_req;

static void *bg_long(void *p) {
  bg_req *b = p;
  json_t *q = chat_body("slow", "Take your time", 30000, false);
  json_object_set_new(q, "ignore_eos", json_true()); /* still running when the worker is killed */
  post_json("/v1/chat/completions", q, &b->r);
  return NULL;
}

static void t_worker_crash(void) {
  resp r;
  post_json("/v1/chat/completions", chat_body("slow", "warm up", 2, false), &r); /* load it */
  CHECK(r.status == 200, "warm-up %ld", r.status);
  resp_clear(&r);
  bg_req b;
  pthread_t th;
  pthread_create(&th, NULL, bg_long, &b);
  /* wait (bounded) until the long request is in flight, then kill its worker */
  long long pid = -1;
  for (int tries = 0; tries < 100000 && pid < 0; tries++) {
    get("/api/ps", &r);
    json_t *models = json_object_get(r.json, "models");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
      if (strcmp(jstr(m, "name"), "slow") == 0 && jnum(m, "inflight") >= 1) pid = jnum(m, "pid");
    }
    resp_clear(&r);
  }
  CHECK(pid > 0, "the long request never showed as in flight");
  kill((pid_t)pid, SIGKILL);
  pthread_join(th, NULL);
  CHECK(is_error(&b.r, 500, "worker_crashed"), "in-flight request: %ld %s", b.r.status, b.r.body.data);
  resp_clear(&b.r);
  get("/health", &r);
  CHECK(r.status == 200, "daemon still up");
  resp_clear(&r);
  post_json("/v1/chat/completions", chat_body("slow", "after the crash", 4, false), &r);
  CHECK(r.status == 200, "the next request reloads the model: %ld %s", r.status, r.body.data);
  resp_clear(&r);
}

static bool ps_lists(const char *name) {
  resp r;
  get("/api/ps", &r);
  bool found = false;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(r.json, "models"), i, m) found |= strcmp(jstr(m, "name"), name) == 0;
  resp_clear(&r);
  return found;
}

/* Ollama's per-request keep_alive: honoured where the matrix allows it (flex), ignored elsewhere. */
static void t_request_keep_alive(void) {
  resp r;
  json_t *q = chat_body("flex", "hi", 2, false);
  json_object_set_new(q, "keep_alive", json_string("0s"));
  post_json("/v1/chat/completions", q, &r);
  CHECK(r.status == 200, "flex: %ld", r.status);
  resp_clear(&r);
  CHECK(!ps_lists("flex"), "keep_alive 0 on request: flex should be unloaded as it ended");
  q = chat_body("chat", "hi", 2, false);
  json_object_set_new(q, "keep_alive", json_integer(0));
  post_json("/v1/chat/completions", q, &r);
  CHECK(r.status == 200, "chat: %ld", r.status);
  resp_clear(&r);
  CHECK(ps_lists("chat"), "chat does not allow request keep_alive: it stays");
  q = chat_body("flex", "hi", 2, false);
  json_object_set_new(q, "keep_alive", json_string("soon"));
  post_json("/v1/chat/completions", q, &r);
  CHECK(is_error(&r, 400, "invalid_value") && strcmp(jstr(r.json, "error.param"), "keep_alive") == 0,
        "bad keep_alive: %ld %s", r.status, r.body.data);
  resp_clear(&r);
}

static void t_devices(void) {
  resp r;
  get("/api/ps", &r);
  json_t *devs = json_object_get(r.json, "devices");
  bool cpu = false;
  size_t i;
  json_t *d;
  json_array_foreach(devs, i, d) cpu |= strcmp(jstr(d, "type"), "cpu") == 0 && jnum(d, "total") > 0 && jnum(d, "free") >= 0;
  resp_clear(&r);
  CHECK(cpu, "the engine's CPU device, with its memory, in /api/ps");
}

typedef struct feed {
  const daemon_proc *d; /* NULL: the main instance */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool hello;
  sy_buf body;
  CURLcode rc;
  const char *until[4]; /* hang up once all of these have been seen */
} feed;

static size_t feed_data(char *p, size_t sz, size_t n, void *ud) {
  feed *f = ud;
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

static void *feed_main(void *arg) {
  feed *f = arg;
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

/* Subscribe f (its fields set) on a thread; returns once the stream has started. */
static void feed_start(feed *f, pthread_t *th) {
  pthread_create(th, NULL, feed_main, f);
  pthread_mutex_lock(&f->mu);
  while (!f->hello) pthread_cond_wait(&f->cond, &f->mu);
  pthread_mutex_unlock(&f->mu);
}

/* GET /api/events follows loads and unloads as they happen, in order. */
static void t_events(void) {
  resp r;
  post("/api/unload", "{\"model\":\"busy\"}", &r); /* start from unloaded, whatever ran before */
  CHECK(r.status == 200, "unload first: %ld", r.status);
  resp_clear(&r);
  feed f = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
            .until = {"\"type\":\"unloaded\",\"model\":\"busy\""}};
  pthread_t th;
  pthread_create(&th, NULL, feed_main, &f);
  pthread_mutex_lock(&f.mu);
  while (!f.hello) pthread_cond_wait(&f.cond, &f.mu); /* subscribed before anything happens */
  pthread_mutex_unlock(&f.mu);
  post("/api/load", "{\"model\":\"busy\"}", &r);
  long load = r.status;
  resp_clear(&r);
  post("/api/unload", "{\"model\":\"busy\"}", &r);
  long unload = r.status;
  resp_clear(&r);
  pthread_join(th, NULL);
  const char *b = f.body.data ? f.body.data : "";
  const char *want[] = {"\"type\":\"loading\",\"model\":\"busy\"", "\"type\":\"load_progress\",\"model\":\"busy\"",
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
  post("/api/load", body, &r);
  resp_clear(&r);
  return NULL;
}

/* scheduling.max_loads (1 by default): two models asked for at once load one after the other. */
static void t_one_load_at_a_time(void) {
  resp r;
  post("/api/unload", "{\"model\":\"busy\"}", &r);
  resp_clear(&r);
  post("/api/unload", "{\"model\":\"flex\"}", &r);
  resp_clear(&r);
  feed f = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
            .until = {"\"type\":\"loaded\",\"model\":\"busy\"", "\"type\":\"loaded\",\"model\":\"flex\""}};
  pthread_t th, l1, l2;
  pthread_create(&th, NULL, feed_main, &f);
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
    } else if (strncmp(p, loaded, sizeof loaded - 1) == 0 || strncmp(p, failed, sizeof failed - 1) == 0) {
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
  post_json("/v1/chat/completions", chat_body("chat", "hi", 2, false), &r); /* chat is loaded */
  resp_clear(&r);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s ps --port %d", daemon_bin, D.port);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL, "popen");
  sy_buf out = {0};
  char line[512];
  while (fgets(line, sizeof line, p)) sy_buf_puts(&out, line);
  int st = pclose(p);
  bool header = out.data && strstr(out.data, "NAME") && strstr(out.data, "SIZE") && strstr(out.data, "CONTEXT");
  bool chat = out.data && strstr(out.data, "\nchat ") && strstr(out.data, "memory: ");
  sy_buf_free(&out);
  CHECK(st == 0, "switchyard ps exited %d", st);
  CHECK(header && chat, "the table lists chat under its header");
  snprintf(cmd, sizeof cmd, "%s ps --port 1 2>/dev/null", daemon_bin);
  p = popen(cmd, "r");
  while (p && fgets(line, sizeof line, p)) {}
  st = p ? pclose(p) : -1;
  CHECK(st != 0, "no daemon there: a failing exit status");
}

static void t_keep_alive_zero(void) {
  resp r;
  post_json("/v1/chat/completions", chat_body("once", "hi", 2, false), &r);
  CHECK(r.status == 200, "status %ld", r.status);
  resp_clear(&r);
  get("/api/ps", &r);
  json_t *models = json_object_get(r.json, "models");
  size_t i;
  json_t *m;
  bool listed = false;
  json_array_foreach(models, i, m) listed |= strcmp(jstr(m, "name"), "once") == 0;
  resp_clear(&r);
  CHECK(!listed, "a keep_alive 0 model is unloaded when its request ends");
}

static void t_third_party_gguf(void) {
  resp r;
  post_json("/v1/completions",
            json_pack("{s:s, s:s, s:i, s:f}", "model", "llama2", "prompt", "The quick brown fox", "max_tokens", 6,
                      "temperature", 0.0),
            &r);
  CHECK(r.status == 200, "completion on a third-party GGUF: %ld %s", r.status, r.body.data);
  CHECK(jnum(r.json, "usage.prompt_tokens") >= 5, "prompt tokens");
  resp_clear(&r);
  post_json("/v1/embeddings", json_pack("{s:s, s:[s,s]}", "model", "llama2-embed", "input", "one", "two"), &r);
  CHECK(r.status == 200, "embeddings (mean pooling) on a third-party GGUF: %ld %s", r.status, r.body.data);
  size_t dim;
  double n = norm_of(json_object_get(json_array_get(json_object_get(r.json, "data"), 1), "embedding"), &dim);
  CHECK(dim == 8 && fabs(n - 1) < 1e-3, "dim %zu (n_embd 8), norm %f", dim, n);
  resp_clear(&r);
}

static void t_api_keys(void) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/keys.yaml", tmpdir);
  FILE *f = fopen(cfg, "w");
  fprintf(f, "api_keys: [sk-test-one, sk-test-two]\nlog_level: warn\nmodels:\n  - name: chat\n    file: %s/tiny-qwen2.gguf\n    context: 256\n    parallel: 1\n", models_dir);
  fclose(f);
  daemon_proc k = {0};
  CHECK(start_daemon(&k, cfg) == 0, "start the keyed daemon");
  resp r;
  http_do(&k, "GET", "/v1/models", NULL, &r, NULL);
  long no_key = r.status;
  bool code_ok = is_error(&r, 401, "invalid_api_key");
  resp_clear(&r);
  const char *wrong[] = {"Authorization: Bearer sk-wrong", NULL};
  http_do(&k, "GET", "/v1/models", NULL, &r, wrong);
  long bad_key = r.status;
  resp_clear(&r);
  http_do(&k, "GET", "/metrics", NULL, &r, NULL);
  long metrics_no_key = r.status;
  resp_clear(&r);
  k.api_key = "sk-test-two";
  http_do(&k, "GET", "/v1/models", NULL, &r, NULL);
  long good_key = r.status;
  resp_clear(&r);
  http_do(&k, "GET", "/metrics", NULL, &r, NULL);
  long metrics_key = r.status;
  resp_clear(&r);
  k.api_key = NULL;
  http_do(&k, "GET", "/health", NULL, &r, NULL);
  long health = r.status;
  resp_clear(&r);
  int st = stop_daemon(&k);
  CHECK(no_key == 401 && code_ok, "no key: %ld", no_key);
  CHECK(bad_key == 401, "wrong key: %ld", bad_key);
  CHECK(good_key == 200, "right key: %ld", good_key);
  CHECK(health == 200, "health needs no key: %ld", health);
  CHECK(metrics_no_key == 401 && metrics_key == 200, "/metrics needs the key: %ld without, %ld with", metrics_no_key,
        metrics_key);
  CHECK(st == 0, "clean exit on SIGTERM: %d", st);
}

/* ---- GET /metrics ---- */

/* The value of the sample `head` (name and labels exactly as rendered) in a Prometheus text body;
 * -1 when absent. */
static double metric(const char *text, const char *head) {
  size_t n = strlen(head);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, head, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

/* promtool check metrics on the body: 1 ok, 0 problems (in out), -1 promtool not installed. */
static int promtool_check(const sy_buf *body, char *out, size_t outlen) {
  if (system("command -v promtool >/dev/null 2>&1") != 0) return -1;
  char path[600], cmd[700];
  snprintf(path, sizeof path, "%s/metrics.txt", tmpdir);
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

static void t_metrics(void) {
  resp r;
  post_json("/v1/chat/completions", chat_body("chat", "count me", 4, false), &r);
  CHECK(r.status == 200, "chat %ld", r.status);
  resp_clear(&r);
  post_json("/v1/chat/completions", chat_body("chat", "count me streamed", 4, true), &r);
  CHECK(r.status == 200, "chat stream %ld", r.status);
  resp_clear(&r);
  post("/v1/chat/completions", "{\"model\":\"gpt-17-unknown\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(r.status == 404, "unknown model %ld", r.status);
  resp_clear(&r);
  post_json("/v1/embeddings", json_pack("{s:s, s:s}", "model", "embed", "input", "count me too"), &r);
  CHECK(r.status == 200, "embeddings %ld", r.status);
  resp_clear(&r);
  post_json("/v1/chat/completions", chat_body("once", "load, then unload", 2, false), &r); /* keep_alive 0 */
  CHECK(r.status == 200, "once %ld", r.status);
  resp_clear(&r);
  get("/metrics", &r);
  CHECK(r.status == 200, "GET /metrics %ld", r.status);
  CHECK(strcmp(r.content_type, "text/plain; version=0.0.4; charset=utf-8") == 0, "content type '%s'", r.content_type);
  const char *t = r.body.data ? r.body.data : "";
  struct { const char *head; double min; } want[] = {
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
      {"switchyard_memory_budget_bytes", 1},
      {"switchyard_memory_used_bytes", 1},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    double v = metric(t, want[i].head);
    CHECK(v >= want[i].min, "%s = %g, want >= %g", want[i].head, v, want[i].min);
  }
  CHECK(metric(t, "switchyard_model_loaded{model=\"once\"}") == 0, "once is unloaded");
  CHECK(!strstr(t, "gpt-17-unknown"), "a client's model name never becomes a label");
  char out[4096];
  int pc = promtool_check(&r.body, out, sizeof out);
  if (pc < 0) printf("note: promtool not installed (Debian package prometheus): the exposition format was not validated\n");
  CHECK(pc != 0, "promtool check metrics: %.900s", out);
  resp_clear(&r);
  http_do(&D, "POST", "/metrics", "{}", &r, NULL);
  CHECK(is_error(&r, 405, "method_not_allowed"), "POST /metrics %ld", r.status);
  resp_clear(&r);
}

/* ---- the memory budget (a RAM budget here; the same rules hold for a GPU) ---- */


/* Names of the models /api/ps lists (comma-separated, sorted by the daemon's order), the memory
 * it counts, and the summed resident memory of their worker processes read from /proc. */
static void budget_ps(char *names, size_t len, long long *used, long long *budget, long long *rss) {
  resp r;
  http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  names[0] = '\0';
  *rss = 0;
  json_t *models = json_object_get(r.json, "models");
  size_t i;
  json_t *m;
  json_array_foreach(models, i, m) {
    size_t n = strlen(names);
    snprintf(names + n, len - n, "%s%s", n ? "," : "", jstr(m, "name"));
    long long pid = jnum(m, "pid");
    if (pid > 0) {
      char path[64], line[256];
      snprintf(path, sizeof path, "/proc/%lld/status", pid);
      FILE *f = fopen(path, "r");
      while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) *rss += strtoll(line + 6, NULL, 10) * 1024;
      if (f) fclose(f);
    }
  }
  *used = jnum(r.json, "memory.used");
  *budget = jnum(r.json, "memory.budget");
  resp_clear(&r);
}

static long budget_request(const char *model) {
  resp r;
  b_chat(chat_body(model, "hello", 2, false), &r);
  long st = r.status;
  resp_clear(&r);
  return st;
}

/* Run body against a daemon of its own (B) started with this config text; B is always stopped. */
static void with_own_daemon(const char *name, const char *yaml, void (*body)(void)) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/%s.yaml", tmpdir, name);
  FILE *f = fopen(cfg, "w");
  CHECK(f != NULL, "write %s", cfg);
  fputs(yaml, f);
  fclose(f);
  CHECK(start_daemon(&B, cfg) == 0, "start the %s daemon", name);
  body();
  int st = stop_daemon(&B); /* always, even when a check in body failed */
  CHECK(st == 0, "%s daemon: clean exit %d", name, st);
}

/* ---- the busy CPU workers' thread shares (src/daemon/cpu_share.h) ---- */

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
  json_t *q = chat_body(b->model, "Go on", 100000, true);
  json_object_set_new(q, "ignore_eos", json_true());
  char *body = json_dumps(q, JSON_COMPACT), url[128];
  json_decref(q);
  snprintf(url, sizeof url, "%s/v1/chat/completions", B.base);
  CURL *c = curl_easy_init();
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_bg_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  curl_easy_perform(c);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(body);
  return NULL;
}

/* model's "inflight" and "threads" in B's /api/ps (-1 when not listed / absent). */
static void ps_threads(const char *model, long long *inflight, long long *threads) {
  resp r;
  http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  *inflight = *threads = -1;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(r.json, "models"), i, m) {
    if (!json_is_string(json_object_get(m, "name")) || strcmp(json_string_value(json_object_get(m, "name")), model))
      continue;
    *inflight = json_integer_value(json_object_get(m, "inflight"));
    json_t *t = json_object_get(m, "threads");
    if (json_is_integer(t)) *threads = json_integer_value(t);
  }
  resp_clear(&r);
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
  for (int i = 0; i < 100000 && !(ia == 1 && ib == 1); i++) { /* bounded: both loaded and streaming */
    ps_threads("share-a", &ia, &ta);
    ps_threads("share-b", &ib, &tb);
  }
  bool both = ia == 1 && ib == 1;
  long long want_sum = ncpu > 2 ? ncpu : 2; /* each wants ncpu; together they get the cores, >= 1 each */
  bool shared = ta >= 1 && tb >= 1 && ta + tb == want_sum;
  atomic_store(&a.stop, true); /* a's client leaves: a is cancelled, b has the cores again */
  long long tb_alone = -1;
  for (int i = 0; i < 100000 && ia != 0; i++) ps_threads("share-a", &ia, &ta);
  ps_threads("share-b", &ib, &tb_alone);
  bool b_still = ib == 1;
  atomic_store(&b.stop, true);
  pthread_join(a.th, NULL);
  pthread_join(b.th, NULL);
  CHECK(both, "both models busy at once (inflight a %lld, b %lld)", ia, ib);
  CHECK(shared, "%d cores, two busy workers wanting %d each: threads %lld + %lld (want %lld in all, >= 1 each)", ncpu,
        ncpu, ta, tb, want_sum);
  CHECK(b_still && tb_alone == ncpu, "b alone again: %lld threads (want %d; still busy: %d)", tb_alone, ncpu, b_still);
}

static void t_cpu_share(void) {
  char y[1024];
  int n = cores_here();
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: share-a, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, threads: %d, gpu_layers: 0}\n"
           "  - {name: share-b, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, threads: %d, gpu_layers: 0}\n",
           models_dir, n, models_dir, n);
  with_own_daemon("cpu_share", y, cpu_share_body);
}

static void budget_body(void) {
  char names[256];
  long long used, budget, rss;
  CHECK(budget_request("a") == 200 && budget_request("b") == 200, "a and b load");
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strcmp(names, "pinned,a,b") == 0, "resident after a, b: %s", names);
  CHECK(budget_request("a") == 200, "a again (b is now the least recently used)");
  CHECK(budget_request("c") == 200, "c loads by evicting");
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strcmp(names, "pinned,a,c") == 0, "LRU eviction took b: %s", names);
  CHECK(budget_request("b") == 200, "b comes back");
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strcmp(names, "pinned,b,c") == 0, "then a was the least recently used: %s", names);
  /* round robin: every request served, the budget never exceeded, the pinned model never leaves */
  const char *order[] = {"a", "b", "c", "c", "a", "b", "a", "c", "b", "b", "a", "c"};
  for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
    long st = budget_request(order[i]);
    CHECK(st == 200, "request %zu to %s: %ld", i, order[i], st);
    budget_ps(names, sizeof names, &used, &budget, &rss);
    CHECK(budget == 480LL << 20, "budget %lld", budget);
    CHECK(used <= budget, "counted %lld > budget %lld (%s)", used, budget, names);
    CHECK(rss <= budget, "resident %lld > budget %lld (%s)", rss, budget, names);
    CHECK(strncmp(names, "pinned,", 7) == 0, "the pinned model left: %s", names);
    CHECK(strstr(names, order[i]) != NULL, "%s not resident after its request: %s", order[i], names);
  }
  /* a model that can never fit is refused at once, with the numbers */
  resp r;
  b_chat(chat_body("huge", "hello", 2, false), &r);
  bool refused = is_error(&r, 507, "model_too_large");
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", jstr(r.json, "error.message") ? jstr(r.json, "error.message") : "(none)");
  bool numbers = strstr(msg, "needs") && strstr(msg, "budget is 0.47 GiB") && strstr(msg, "pinned");
  resp_clear(&r);
  CHECK(refused, "huge: 507 model_too_large");
  CHECK(numbers, "the message gives need, budget and pinned: %.400s", msg);
  /* a worker killed with SIGKILL is noticed and its memory returned: then loading the third model
   * needs no eviction */
  budget_ps(names, sizeof names, &used, &budget, &rss);
  const char *victim = strrchr(names, ',') + 1; /* the last one listed */
  char vname[16];
  snprintf(vname, sizeof vname, "%s", victim);
  resp p;
  http_do(&B, "GET", "/api/ps", NULL, &p, NULL);
  long long pid = -1;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(p.json, "models"), i, m) if (strcmp(jstr(m, "name"), vname) == 0) pid = jnum(m, "pid");
  resp_clear(&p);
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
  const char *third = strcmp(vname, "a") && strstr(before, "a") == NULL ? "a" : strcmp(vname, "b") && strstr(before, ",b") == NULL ? "b" : "c";
  CHECK(budget_request(third) == 200, "load %s", third);
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strstr(names, third) && strlen(names) > strlen(before), "no eviction was needed: %s -> %s", before, names);
}

static void t_budget(void) {
  /* Estimates (llama-fit-params): a, b, c (tiny-qwen2, context 256, 1 slot) 166 MiB each, mostly
   * the logits buffer; the pinned bert 3 MiB estimated, ~18 MiB measured (the larger counts);
   * huge (context 262144 × 4 slots) 571 MiB; plus 16 MiB of process overhead each. A 480 MiB
   * budget holds the pinned model and two of a, b, c, never three, and never huge. */
  char yaml[2048];
  const char *d = models_dir;
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmemory: {budget: 480MiB}\nscheduling: {swap_guard: 0}\nmodels:\n"
           "  - {name: pinned, file: %s/tiny-bert.gguf, pin: true, context: 128, parallel: 1}\n"
           "  - {name: a, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n"
           "  - {name: b, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n"
           "  - {name: c, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n"
           "  - {name: huge, file: %s/tiny-qwen2.gguf, context: 262144, parallel: 4}\n",
           d, d, d, d, d);
  with_own_daemon("budget", yaml, budget_body);
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/budget.yaml", tmpdir);
  /* what was measured is remembered for the next start */
  char state[600];
  snprintf(state, sizeof state, "%s.state/measurements.json", cfg);
  json_t *j = json_load_file(state, 0, NULL);
  size_t n = json_object_size(json_object_get(j, "models"));
  bool has_a = false;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(j, "models"), k, v) has_a |= strstr(k, "tiny-qwen2.gguf|") && strstr(k, "ctx=256|np=1") && json_integer_value(v) > 0;
  json_decref(j);
  CHECK(n >= 2 && has_a, "measurements remembered in %s: %zu entries", state, n);
}

static void *queue_long_request(void *p) {
  resp *r = p;
  json_t *q = chat_body("x", "keep going", 2000, false);
  json_object_set_new(q, "ignore_eos", json_true());
  b_chat(q, r);
  return NULL;
}

static void queue_body(void) {
  resp bg, r;
  pthread_t th;
  pthread_create(&th, NULL, queue_long_request, &bg);
  bool busy = false;
  for (int tries = 0; tries < 100000 && !busy; tries++) { /* bounded: until x is serving it */
    http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r.json, "models"), i, m) busy |= strcmp(jstr(m, "name"), "x") == 0 && jnum(m, "inflight") >= 1;
    resp_clear(&r);
  }
  /* y needs x's room, x is busy, and y may queue nobody: refused at once, with Retry-After */
  b_chat(chat_body("y", "hello", 2, false), &r);
  bool full = is_error(&r, 503, "queue_full") && atoi(r.retry_after) > 0;
  long y_status = r.status;
  resp_clear(&r);
  /* z may queue: it waits for x's request to end, then evicts x and loads */
  b_chat(chat_body("z", "hello", 2, false), &r);
  long z_status = r.status;
  resp_clear(&r);
  pthread_join(th, NULL);
  long x_status = bg.status;
  long long x_tokens = jnum(bg.json, "usage.completion_tokens");
  resp_clear(&bg);
  CHECK(busy, "x never showed as busy");
  CHECK(full, "y: want 503 queue_full with Retry-After, got %ld", y_status);
  CHECK(z_status == 200, "z waited and was served: %ld", z_status);
  CHECK(x_status == 200 && x_tokens == 2000, "x's request ran to its end undisturbed: %ld, %lld tokens", x_status, x_tokens);
  char names[256];
  long long used, budget, rss;
  budget_ps(names, sizeof names, &used, &budget, &rss);
  CHECK(strcmp(names, "z") == 0, "z replaced x: %s", names);
}

static void t_queue(void) {
  /* x, y, z: tiny-qwen2 with batch 64 (~73 MiB estimated each); a 120 MiB budget holds one */
  char yaml[1024];
  const char *d = models_dir;
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmemory: {budget: 120MiB}\nscheduling: {swap_guard: 0}\n"
           "defaults: {parallel: 1, batch: 64, keep_alive: -1}\nmodels:\n"
           "  - {name: x, file: %s/tiny-qwen2.gguf}\n"
           "  - {name: y, file: %s/tiny-qwen2.gguf, max_queue: 0}\n"
           "  - {name: z, file: %s/tiny-qwen2.gguf, max_queue: 4}\n",
           d, d, d);
  with_own_daemon("queue", yaml, queue_body);
}

/* The thrash guard: a model loaded less than swap_guard ago is not evicted, even idle; a request
 * that needs its room waits (here: may not wait, max_queue 0, so it is refused at once). */
static void guard_body(void) {
  CHECK(budget_request("a") == 200, "a loads");
  resp r;
  b_chat(chat_body("b", "hello", 2, false), &r);
  bool held = is_error(&r, 503, "queue_full");
  resp_clear(&r);
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
           models_dir, models_dir);
  with_own_daemon("guard", yaml, guard_body);
}

static void t_admin(void) {
  resp r;
  post("/api/load", "{\"model\":\"busy\"}", &r);
  CHECK(r.status == 200 && strcmp(jstr(r.json, "status"), "loaded") == 0, "load: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  get("/v1/models/busy", &r);
  CHECK(jnum(r.json, "memory.estimated") > 0 && jnum(r.json, "memory.measured") > 0, "memory in /v1/models: %s",
        r.body.data);
  resp_clear(&r);
  post("/api/unload", "{\"model\":\"busy\"}", &r);
  CHECK(r.status == 200 && strcmp(jstr(r.json, "status"), "unloaded") == 0, "unload: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  get("/api/ps", &r);
  bool listed = r.body.data && strstr(r.body.data, "\"busy\"");
  resp_clear(&r);
  CHECK(!listed, "busy still listed after unload");
  post("/api/unload", "{\"model\":\"busy\"}", &r);
  CHECK(r.status == 200, "unloading what is not loaded is fine: %ld", r.status);
  resp_clear(&r);
  post("/api/unload", "{\"model\":\"nope\"}", &r);
  CHECK(is_error(&r, 404, "model_not_found"), "unknown model: %ld", r.status);
  resp_clear(&r);
  get("/api/load", &r);
  CHECK(is_error(&r, 405, "method_not_allowed"), "GET /api/load: %ld", r.status);
  resp_clear(&r);
}

static void *slow_request(void *arg) {
  json_t *q = chat_body("slow", "keep going", 2000, false);
  json_object_set_new(q, "ignore_eos", json_true());
  post_json("/v1/chat/completions", q, arg);
  return NULL;
}

/* Unloading a model that is serving a request is refused (409), the request runs on. */
static void t_admin_unload_busy(void) {
  resp bg, r;
  pthread_t th;
  pthread_create(&th, NULL, slow_request, &bg);
  bool busy = false;
  for (int tries = 0; tries < 100000 && !busy; tries++) { /* bounded: until it is being served */
    get("/api/ps", &r);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r.json, "models"), i, m) busy |= strcmp(jstr(m, "name"), "slow") == 0 && jnum(m, "inflight") >= 1;
    resp_clear(&r);
  }
  post("/api/unload", "{\"model\":\"slow\"}", &r);
  bool refused = is_error(&r, 409, "model_busy") && strstr(jstr(r.json, "error.message"), "in flight");
  long st = r.status;
  resp_clear(&r);
  pthread_join(th, NULL);
  long bg_status = bg.status;
  long long tokens = jnum(bg.json, "usage.completion_tokens");
  resp_clear(&bg);
  CHECK(busy, "slow never showed as busy");
  CHECK(refused, "unload of a busy model: want 409 model_busy, got %ld", st);
  CHECK(bg_status == 200 && tokens == 2000, "the request ran on: %ld, %lld tokens", bg_status, tokens);
}

/* A model whose file is cut short: its load fails (500 with the engine's reason); the next
 * request within the back-off gets that reason at once (503 + Retry-After) instead of another
 * doomed load. */
static void backoff_body(void) {
  resp r;
  b_chat(chat_body("broken", "hello", 2, false), &r);
  bool failed = is_error(&r, 500, "load_failed");
  long st1 = r.status;
  resp_clear(&r);
  b_chat(chat_body("broken", "hello", 2, false), &r);
  bool backed_off = is_error(&r, 503, "load_failed") && atoi(r.retry_after) > 0 &&
                    strstr(jstr(r.json, "error.message"), "retried in");
  long st2 = r.status;
  resp_clear(&r);
  CHECK(failed, "first request: want 500 load_failed, got %ld", st1);
  CHECK(backed_off, "second request: want 503 with Retry-After, got %ld", st2);
}

static void t_load_backoff(void) {
  char src[600], dst[600];
  snprintf(src, sizeof src, "%s/tiny-qwen2.gguf", models_dir);
  snprintf(dst, sizeof dst, "%s/broken.gguf", tmpdir);
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  CHECK(in && out, "copy");
  fseek(in, 0, SEEK_END);
  long keep = ftell(in) - (4L << 20); /* the header stays whole; the last tensors are cut off */
  fseek(in, 0, SEEK_SET);
  char buf[65536];
  for (long done = 0; done < keep;) {
    size_t n = fread(buf, 1, (size_t)(keep - done) < sizeof buf ? (size_t)(keep - done) : sizeof buf, in);
    if (n == 0) break;
    fwrite(buf, 1, n, out);
    done += (long)n;
  }
  fclose(in);
  fclose(out);
  char yaml[1024];
  snprintf(yaml, sizeof yaml, "log_level: warn\nmodels:\n  - {name: broken, file: %s, context: 256, parallel: 1}\n",
           dst);
  with_own_daemon("backoff", yaml, backoff_body);
}

/* The budget is checked against what is really free: with a reserve larger than the machine, no
 * model fits *now* although it fits the configured budget: 503 memory_busy, not 507. */
static void memory_busy_body(void) {
  resp r;
  b_chat(chat_body("a", "hello", 2, false), &r);
  bool busy = is_error(&r, 503, "memory_busy") && atoi(r.retry_after) > 0 &&
              strstr(jstr(r.json, "error.message"), "free right now");
  long st = r.status;
  resp_clear(&r);
  CHECK(busy, "want 503 memory_busy with Retry-After, got %ld", st);
}

static void t_memory_busy(void) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmemory: {budget: 1GiB, reserve: 512TiB}\nmodels:\n"
           "  - {name: a, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1}\n",
           models_dir);
  with_own_daemon("membusy", yaml, memory_busy_body);
}

/* ---- chat fidelity: tools, structured output, reasoning ---- */

static const char *weather_tools =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a city\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"unit\":{\"enum\":[\"c\",\"f\"]}},"
    "\"required\":[\"unit\"],\"additionalProperties\":false}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{},\"additionalProperties\":false}}}]";

static json_t *tools_body(const char *choice, bool stream) {
  json_t *q = chat_body("tools", "What is the weather in Oslo?", 80, stream);
  json_object_set_new(q, "tools", json_loads(weather_tools, 0, NULL));
  json_object_set_new(q, "tool_choice", json_loads(choice, JSON_DECODE_ANY, NULL));
  json_object_set_new(q, "parallel_tool_calls", json_false());
  return q;
}

/* Whether args is a JSON string holding {"unit": "c"|"f"} and nothing else. */
static bool weather_args_ok(const char *args) {
  json_t *a = args ? json_loads(args, 0, NULL) : NULL;
  const char *u = json_string_value(json_object_get(a, "unit"));
  bool ok = json_is_object(a) && json_object_size(a) == 1 && u && (!strcmp(u, "c") || !strcmp(u, "f"));
  json_decref(a);
  return ok;
}

/* tool_choice forces a call: the grammar makes the random model write a valid Hermes call, which
 * comes back as message.tool_calls (content null, finish_reason tool_calls) — and streamed, as
 * OpenAI's tool_calls deltas that add up to the same call. */
static void t_tool_calls(void) {
  resp r;
  post_json("/v1/chat/completions", tools_body("{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}", false), &r);
  CHECK(r.status == 200, "forced call: %ld %s", r.status, r.body.data);
  const char *id = jstr(r.json, "choices.0.message.tool_calls.0.id");
  CHECK(id && strncmp(id, "call_", 5) == 0, "a call id: %s", r.body.data);
  CHECK(strcmp(jstr(r.json, "choices.0.message.tool_calls.0.type") ?: "", "function") == 0, "type function");
  CHECK(strcmp(jstr(r.json, "choices.0.message.tool_calls.0.function.name") ?: "", "get_weather") == 0, "named get_weather");
  CHECK(weather_args_ok(jstr(r.json, "choices.0.message.tool_calls.0.function.arguments")), "arguments follow the schema: %s",
        r.body.data);
  CHECK(json_is_null(jpath(r.json, "choices.0.message.content")), "content null beside the call");
  CHECK(strcmp(jstr(r.json, "choices.0.finish_reason") ?: "", "tool_calls") == 0, "finish_reason tool_calls: %s",
        r.body.data);
  resp_clear(&r);

  post_json("/v1/chat/completions", tools_body("\"required\"", true), &r);
  bool done = false, wf = false;
  json_t *ev = sse_events(&r.body, &done, &wf);
  sy_buf args = {0};
  const char *name = NULL, *finish = NULL, *cid = NULL;
  int starts = 0;
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) {
    const json_t *tc = jpath(e, "choices.0.delta.tool_calls.0");
    if (tc && jstr(tc, "id")) {
      starts++;
      name = jstr(tc, "function.name");
      cid = jstr(tc, "id");
    }
    if (tc && jstr(tc, "function.arguments")) sy_buf_puts(&args, jstr(tc, "function.arguments"));
    if (jstr(e, "choices.0.finish_reason")) finish = jstr(e, "choices.0.finish_reason");
  }
  CHECK(r.status == 200 && done && wf, "streamed: %ld", r.status);
  CHECK(starts == 1 && cid && name && (!strcmp(name, "get_weather") || !strcmp(name, "get_time")),
        "one call started, with id and a known name (%d)", starts);
  CHECK(name && (strcmp(name, "get_weather") ? strcmp(args.data ? args.data : "", "{}") == 0 : weather_args_ok(args.data)),
        "the argument deltas add up to valid arguments: %s", args.data ? args.data : "");
  CHECK(finish && strcmp(finish, "tool_calls") == 0, "streamed finish_reason tool_calls");
  sy_buf_free(&args);
  json_decref(ev);
  resp_clear(&r);

  /* a conversation with a call and its result renders through the model's own template */
  json_t *q = chat_body("tools", "x", 4, false);
  json_object_set_new(q, "tools", json_loads(weather_tools, 0, NULL));
  json_object_set_new(q, "messages", json_loads(
      "[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
      "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"unit\\\":\\\"c\\\"}\"}}]},"
      "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"-3 C\"}]", 0, NULL));
  post_json("/v1/chat/completions", q, &r);
  long long pt = jnum(r.json, "usage.prompt_tokens");
  CHECK(r.status == 200 && pt > 100, "history with a tool call and result: %ld, %lld prompt tokens", r.status, pt);
  resp_clear(&r);

  post_json("/v1/chat/completions", tools_body("{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}", false), &r);
  CHECK(is_error(&r, 400, "invalid_value"), "forcing an unknown function: %ld", r.status);
  resp_clear(&r);
}

/* response_format json_schema: the answer parses as JSON and obeys the schema. */
static void t_json_schema(void) {
  resp r;
  json_t *q = chat_body("tools", "Is it cold?", 60, false);
  json_object_set_new(q, "response_format", json_loads(
      "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"answer\",\"strict\":true,\"schema\":{\"type\":\"object\","
      "\"properties\":{\"cold\":{\"type\":\"boolean\"},\"level\":{\"enum\":[\"low\",\"high\"]}},"
      "\"required\":[\"cold\",\"level\"],\"additionalProperties\":false}}}", 0, NULL));
  post_json("/v1/chat/completions", q, &r);
  const char *c = jstr(r.json, "choices.0.message.content");
  json_t *a = c ? json_loads(c, 0, NULL) : NULL;
  const char *lv = json_string_value(json_object_get(a, "level"));
  CHECK(r.status == 200 && json_is_boolean(json_object_get(a, "cold")) && lv &&
            (!strcmp(lv, "low") || !strcmp(lv, "high")) && json_object_size(a) == 2,
        "content obeys the schema: %ld %s", r.status, c ? c : r.body.data);
  json_decref(a);
  resp_clear(&r);
  q = chat_body("tools", "Is it cold?", 60, false);
  json_object_set_new(q, "response_format", json_loads("{\"type\":\"json_object\"}", 0, NULL));
  post_json("/v1/chat/completions", q, &r);
  c = jstr(r.json, "choices.0.message.content");
  a = c ? json_loads(c, 0, NULL) : NULL;
  bool obj = json_is_object(a) || (r.status == 200 && strcmp(jstr(r.json, "choices.0.finish_reason") ?: "", "length") == 0);
  CHECK(r.status == 200 && obj, "json_object: a JSON object (or cut by max_tokens): %s", c ? c : r.body.data);
  json_decref(a);
  resp_clear(&r);
  q = chat_body("tools", "x", 4, false);
  json_object_set_new(q, "response_format", json_loads(
      "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\",\"not\":{}}}}", 0, NULL));
  post_json("/v1/chat/completions", q, &r);
  CHECK(is_error(&r, 400, "invalid_json_schema"), "an unsupported schema keyword: %ld %s", r.status, r.body.data);
  resp_clear(&r);
}

/* A small JSON Schema validator for what the sampling test uses: type, properties, required,
 * additionalProperties false, enum, minimum/maximum, items, minItems/maxItems, anyOf, $ref to
 * #/$defs. Independent of the grammar compiler it checks. */
static bool schema_ok(const json_t *root, const json_t *sc, const json_t *v, int depth) {
  if (depth > 32 || !json_is_object(sc)) return false;
  const char *ref = json_string_value(json_object_get(sc, "$ref"));
  if (ref && strncmp(ref, "#/$defs/", 8) == 0)
    return schema_ok(root, json_object_get(json_object_get(root, "$defs"), ref + 8), v, depth + 1);
  const json_t *any = json_object_get(sc, "anyOf");
  if (any) {
    size_t i;
    json_t *alt;
    json_array_foreach(any, i, alt) if (schema_ok(root, alt, v, depth + 1)) return true;
    return false;
  }
  const json_t *en = json_object_get(sc, "enum");
  if (en) {
    size_t i;
    json_t *x;
    json_array_foreach(en, i, x) if (json_equal(x, v)) return true;
    return false;
  }
  const char *t = json_string_value(json_object_get(sc, "type"));
  if (!t) return true;
  if (!strcmp(t, "boolean")) return json_is_boolean(v);
  if (!strcmp(t, "null")) return json_is_null(v);
  if (!strcmp(t, "integer") || !strcmp(t, "number")) {
    if (!strcmp(t, "integer") ? !json_is_integer(v) : !json_is_number(v)) return false;
    const json_t *mn = json_object_get(sc, "minimum"), *mx = json_object_get(sc, "maximum");
    double x = json_number_value(v);
    return (!mn || x >= json_number_value(mn)) && (!mx || x <= json_number_value(mx));
  }
  if (!strcmp(t, "array")) {
    if (!json_is_array(v)) return false;
    const json_t *mn = json_object_get(sc, "minItems"), *mx = json_object_get(sc, "maxItems");
    size_t n = json_array_size(v), i;
    if ((mn && n < (size_t)json_integer_value(mn)) || (mx && n > (size_t)json_integer_value(mx))) return false;
    json_t *x;
    json_array_foreach(v, i, x) if (!schema_ok(root, json_object_get(sc, "items"), x, depth + 1)) return false;
    return true;
  }
  if (!strcmp(t, "object")) {
    if (!json_is_object(v)) return false;
    const json_t *props = json_object_get(sc, "properties");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(sc, "required"), i, r) if (!json_object_get(v, json_string_value(r))) return false;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
      const json_t *ps = json_object_get(props, k);
      if (!ps) {
        if (json_is_false(json_object_get(sc, "additionalProperties"))) return false;
        continue;
      }
      if (!schema_ok(root, ps, x, depth + 1)) return false;
    }
    return true;
  }
  return false;
}

/* Sampling under the grammar (temperature 1, several seeds) on a random-weight model: every
 * complete answer parses as JSON and is valid against its schema. */
static void t_schema_sampling(void) {
  static const char *schemas[] = {
      "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120},"
      "\"ok\":{\"type\":\"boolean\"}},\"required\":[\"n\",\"ok\"],\"additionalProperties\":false}",
      "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\",3,null]},"
      "\"minItems\":1,\"maxItems\":3}},\"required\":[\"tags\"],\"additionalProperties\":false}",
      "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"boolean\"}},\"required\":[\"x\"],"
      "\"additionalProperties\":false},{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9},"
      "\"maxItems\":2}]}",
      "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"enum\":[1,2]},\"kids\":{\"type\":\"array\","
      "\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},\"required\":[\"v\"],\"additionalProperties\":false}},"
      "\"$ref\":\"#/$defs/node\"}",
  };
  int complete = 0, total = 0;
  for (size_t k = 0; k < sizeof schemas / sizeof *schemas; k++) {
    json_t *schema = json_loads(schemas[k], 0, NULL);
    for (int seed = 1; seed <= 4; seed++) {
      json_t *q = chat_body("tools", "answer in JSON", 160, false);
      json_object_set_new(q, "temperature", json_real(1.0));
      json_object_set_new(q, "seed", json_integer(seed));
      json_object_set_new(q, "response_format",
                          json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema", "name", "t", "schema", schema));
      resp r;
      post_json("/v1/chat/completions", q, &r);
      total++;
      const char *c = jstr(r.json, "choices.0.message.content");
      const char *fin = jstr(r.json, "choices.0.finish_reason");
      CHECK(r.status == 200, "schema %zu seed %d: %ld %s", k, seed, r.status, r.body.data);
      if (c && fin && !strcmp(fin, "stop")) {
        complete++;
        json_t *v = json_loads(c, JSON_DECODE_ANY, NULL);
        CHECK(v && schema_ok(schema, schema, v, 0), "schema %zu seed %d: the answer is valid: %s", k, seed, c);
        json_decref(v);
      }
      resp_clear(&r);
    }
    json_decref(schema);
  }
  CHECK(complete * 2 >= total, "most samples finish (%d of %d)", complete, total);
}

/* A template whose generation prompt opens <think> (QwQ): everything the model writes before
 * </think> is reasoning_content, never content — whole and streamed. */
static void t_reasoning(void) {
  resp r;
  /* ignore_eos: the random weights may end at once; 24 tokens stay inside the open <think> block */
  json_t *q = chat_body("think", "why?", 24, false);
  json_object_set_new(q, "ignore_eos", json_true());
  post_json("/v1/chat/completions", q, &r);
  const char *rc = jstr(r.json, "choices.0.message.reasoning_content");
  const char *c = jstr(r.json, "choices.0.message.content");
  CHECK(r.status == 200 && rc && *rc && c && !*c, "all in reasoning_content: %s", r.body.data);
  resp_clear(&r);
  q = chat_body("think", "why?", 24, true);
  json_object_set_new(q, "ignore_eos", json_true());
  post_json("/v1/chat/completions", q, &r);
  bool done = false, wf = false;
  json_t *ev = sse_events(&r.body, &done, &wf);
  int nr = 0, nc = 0;
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) {
    nr += jstr(e, "choices.0.delta.reasoning_content") != NULL;
    const char *t = jstr(e, "choices.0.delta.content");
    nc += t && *t;
  }
  CHECK(done && nr > 0 && nc == 0, "streamed as reasoning_content deltas (%d), no content (%d)", nr, nc);
  json_decref(ev);
  resp_clear(&r);
  /* Qwen3's template with enable_thinking false closes the block in the prompt: plain content */
  q = chat_body("tools", "hi", 8, false);
  json_object_set_new(q, "chat_template_kwargs", json_pack("{s:b}", "enable_thinking", 0));
  post_json("/v1/chat/completions", q, &r);
  CHECK(r.status == 200 && !jstr(r.json, "choices.0.message.reasoning_content"), "thinking off: no reasoning: %s",
        r.body.data);
  resp_clear(&r);
}

/* logprobs: one entry per generated token, each ≤ 0, with top_logprobs sorted; greedy picks the
 * most likely token, so its logprob is the first alternative's. Streamed, the entries add up to
 * the same count; legacy completions get the tokens / token_logprobs arrays. */
static void t_logprobs(void) {
  resp r;
  json_t *q = chat_body("chat", "count", 6, false);
  json_object_set_new(q, "logprobs", json_true());
  json_object_set_new(q, "top_logprobs", json_integer(3));
  json_object_set_new(q, "temperature", json_real(0));
  json_object_set_new(q, "ignore_eos", json_true());
  post_json("/v1/chat/completions", q, &r);
  const json_t *c = jpath(r.json, "choices.0.logprobs.content");
  bool ok = r.status == 200 && json_array_size(c) == 6;
  size_t i;
  json_t *e;
  json_array_foreach(c, i, e) {
    const json_t *top = json_object_get(e, "top_logprobs");
    double lp = json_number_value(json_object_get(e, "logprob"));
    double t0 = json_number_value(json_object_get(json_array_get(top, 0), "logprob"));
    double t1 = json_number_value(json_object_get(json_array_get(top, 1), "logprob"));
    /* greedy = the best, unless the best is an end-of-generation token (ignore_eos skips it; the
     * raw logprobs still list it): whether it is depends on the random weights */
    const char *best = json_string_value(json_object_get(json_array_get(top, 0), "token"));
    bool eog_first = best && strncmp(best, "<|", 2) == 0 && strlen(best) > 4 && !strcmp(best + strlen(best) - 2, "|>");
    ok &= lp <= 0 && json_array_size(top) == 3 && t0 >= t1 && (fabs(lp - t0) < 1e-4 || (eog_first && lp <= t0)) &&
          json_is_string(json_object_get(e, "token")) && json_is_array(json_object_get(e, "bytes"));
  }
  CHECK(ok, "chat logprobs: 6 entries, top 3 sorted, greedy = best (or after an end token): %.300s", r.body.data);
  resp_clear(&r);
  q = chat_body("chat", "count", 6, true);
  json_object_set_new(q, "logprobs", json_true());
  json_object_set_new(q, "ignore_eos", json_true());
  post_json("/v1/chat/completions", q, &r);
  bool done = false, wf = false;
  json_t *ev = sse_events(&r.body, &done, &wf);
  size_t n = 0;
  json_array_foreach(ev, i, e) n += json_array_size(jpath(e, "choices.0.logprobs.content"));
  CHECK(done && n == 6, "streamed logprobs add up to 6 entries: %zu", n);
  json_decref(ev);
  resp_clear(&r);
  post("/v1/completions", "{\"model\":\"chat\",\"prompt\":\"a b c\",\"max_tokens\":4,\"logprobs\":2,\"ignore_eos\":true}", &r);
  CHECK(r.status == 200 && json_array_size(jpath(r.json, "choices.0.logprobs.tokens")) == 4 &&
            json_array_size(jpath(r.json, "choices.0.logprobs.token_logprobs")) == 4 &&
            json_object_size(jpath(r.json, "choices.0.logprobs.top_logprobs.0")) >= 1,
        "completions logprobs: %.300s", r.body.data);
  resp_clear(&r);
}

/* ---- SIGHUP reload ---- */

static char reload_cfg[512];

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static json_t *b_ps_model(const char *name) { /* new reference, or NULL when not listed */
  resp r;
  http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  json_t *found = NULL, *m;
  size_t i;
  json_array_foreach(json_object_get(r.json, "models"), i, m) if (strcmp(jstr(m, "name"), name) == 0) found = json_incref(m);
  resp_clear(&r);
  return found;
}

static long b_load(const char *name) {
  char body[128];
  snprintf(body, sizeof body, "{\"model\":\"%s\"}", name);
  resp r;
  http_do(&B, "POST", "/api/load", body, &r, NULL);
  long st = r.status;
  resp_clear(&r);
  return st;
}

static void *reload_slow_request(void *arg) {
  json_t *q = chat_body("change", "keep going", 2000, false);
  json_object_set_new(q, "ignore_eos", json_true());
  b_chat(q, arg);
  return NULL;
}

static void reload_body(void) {
  const char *d = models_dir;
  CHECK(b_load("keep") == 200 && b_load("change") == 200 && b_load("gone") == 200, "keep, change, gone load");
  json_t *k0 = b_ps_model("keep");
  long long keep_pid = jnum(k0, "pid");
  json_decref(k0);
  /* a long request on "change" is in flight across the reload */
  resp bg;
  pthread_t th;
  pthread_create(&th, NULL, reload_slow_request, &bg);
  bool busy = false;
  for (int tries = 0; tries < 100000 && !busy; tries++) { /* bounded: until it is being served */
    json_t *m = b_ps_model("change");
    busy = m && jnum(m, "inflight") >= 1;
    json_decref(m);
  }
  feed f = {.d = &B, .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
            .until = {"\"type\":\"reloaded\"", "\"type\":\"unloaded\",\"model\":\"gone\"",
                      "\"type\":\"unloaded\",\"model\":\"change\""}};
  pthread_t fth;
  feed_start(&f, &fth);
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmodels:\n"
           "  - {name: keep, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1, priority: 3}\n"
           "  - {name: change, file: %s/tiny-qwen2.gguf, context: 512, parallel: 1, keep_alive: -1}\n"
           "  - {name: added, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1}\n",
           d, d, d);
  write_file(reload_cfg, yaml);
  kill(B.pid, SIGHUP);
  bool drained = false; /* the old worker is seen draining while its request runs */
  for (int tries = 0; tries < 100000 && !drained; tries++) {
    json_t *m = b_ps_model("change");
    drained = m && json_is_true(json_object_get(m, "draining")) && jnum(m, "inflight") == 1;
    json_decref(m);
    if (!m) break; /* gone already */
  }
  pthread_join(th, NULL); /* the request in flight finishes on its old worker */
  long bg_status = bg.status;
  long long tokens = jnum(bg.json, "usage.completion_tokens");
  resp_clear(&bg);
  pthread_join(fth, NULL);
  json_t *ev = NULL;
  for (const char *p = f.body.data; p && (p = strstr(p, "data: ")); p += 6) {
    json_t *e = json_loads(p + 6, JSON_DISABLE_EOF_CHECK, NULL);
    if (e && strcmp(jstr(e, "type") ? jstr(e, "type") : "", "reloaded") == 0 && !ev) ev = json_incref(e);
    json_decref(e);
  }
  sy_buf_free(&f.body);
  CHECK(busy, "change never showed as busy");
  CHECK(drained, "the changed model's old worker drained its request");
  CHECK(bg_status == 200 && tokens == 2000, "the request in flight ran on: %ld, %lld tokens", bg_status, tokens);
  /* unchanged: keep, and the built-in speak */
  CHECK(ev && jnum(ev, "unchanged") == 2 && strcmp(jstr(ev, "added.0") ? jstr(ev, "added.0") : "", "added") == 0 &&
            strcmp(jstr(ev, "changed.0") ? jstr(ev, "changed.0") : "", "change") == 0 &&
            strcmp(jstr(ev, "removed.0") ? jstr(ev, "removed.0") : "", "gone") == 0,
        "reloaded event: unchanged 2, added [added], changed [change], removed [gone]");
  json_decref(ev);
  json_t *k1 = b_ps_model("keep");
  CHECK(k1 && jnum(k1, "pid") == keep_pid, "keep stayed loaded in the same worker (pid %lld)", keep_pid);
  json_decref(k1);
  json_t *g = b_ps_model("gone");
  CHECK(!g, "gone is unloaded");
  json_decref(g);
  resp r;
  b_chat(chat_body("gone", "hi", 2, false), &r);
  CHECK(is_error(&r, 404, "model_not_found"), "a removed model is not found: %ld", r.status);
  resp_clear(&r);
  b_chat(chat_body("change", "hi", 2, false), &r);
  CHECK(r.status == 200, "change under its new settings: %ld", r.status);
  resp_clear(&r);
  json_t *c = b_ps_model("change");
  CHECK(c && jnum(c, "context") == 512 && !json_is_true(json_object_get(c, "draining")),
        "change runs with context 512 now");
  json_decref(c);
  b_chat(chat_body("added", "hi", 2, false), &r);
  CHECK(r.status == 200, "the added model serves: %ld", r.status);
  resp_clear(&r);
  /* a broken file changes nothing */
  feed f2 = {.d = &B, .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
             .until = {"\"type\":\"reload_failed\""}};
  feed_start(&f2, &fth);
  write_file(reload_cfg, "models: [ {name: x, file: \n");
  kill(B.pid, SIGHUP);
  pthread_join(fth, NULL);
  bool failed_ev = f2.body.data && strstr(f2.body.data, "reload_failed") && strstr(f2.body.data, "reload.yaml:");
  sy_buf_free(&f2.body);
  CHECK(failed_ev, "a broken file is refused with file:line (reload_failed event)");
  b_chat(chat_body("keep", "hi", 2, false), &r);
  CHECK(r.status == 200, "keep still serves after a failed reload: %ld", r.status);
  resp_clear(&r);
  json_t *k2 = b_ps_model("keep");
  CHECK(k2 && jnum(k2, "pid") == keep_pid, "and keeps its worker");
  json_decref(k2);
}

/* SIGHUP reloads the matrix: unchanged models keep their worker, a changed one finishes its
 * request in flight and comes back with its new settings, a removed one unloads, a new one
 * serves, and a broken file changes nothing. */
static void t_reload(void) {
  char yaml[2048];
  const char *d = models_dir;
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nmodels:\n"
           "  - {name: keep, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n"
           "  - {name: change, file: %s/tiny-qwen2.gguf, context: 2048, parallel: 1, keep_alive: -1}\n"
           "  - {name: gone, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1}\n",
           d, d, d);
  snprintf(reload_cfg, sizeof reload_cfg, "%s/reload.yaml", tmpdir);
  with_own_daemon("reload", yaml, reload_body);
}

static void t_bad_config(void) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/bad.yaml", tmpdir);
  FILE *f = fopen(cfg, "w");
  fprintf(f, "models:\n  - name: x\n    file: /nonexistent/model.gguf\n");
  fclose(f);
  daemon_proc k = {0};
  CHECK(start_daemon(&k, cfg) != 0, "a config naming a missing file must be refused at start");
}

/* Scores of a rerank answer by document index (NAN where absent); checks the shape on the way. */
static bool rerank_scores(const json_t *j, size_t n_docs, size_t want, double *scores, char *why, size_t wlen) {
  json_t *res = json_object_get(j, "results");
  for (size_t i = 0; i < n_docs; i++) scores[i] = NAN;
  if (json_array_size(res) != want) return snprintf(why, wlen, "%zu results", json_array_size(res)), false;
  double prev = INFINITY;
  size_t k;
  json_t *h;
  json_array_foreach(res, k, h) {
    long long idx = jnum(h, "index");
    json_t *sc = json_object_get(h, "relevance_score");
    if (idx < 0 || (size_t)idx >= n_docs || !isnan(scores[idx]))
      return snprintf(why, wlen, "results[%zu].index %lld", k, idx), false;
    if (!json_is_number(sc) || !isfinite(json_number_value(sc)))
      return snprintf(why, wlen, "results[%zu].relevance_score", k), false;
    scores[idx] = json_number_value(sc);
    if (scores[idx] > prev) return snprintf(why, wlen, "not sorted at %zu", k), false;
    prev = scores[idx];
  }
  return true;
}

static void t_rerank(void) {
  resp r;
  char why[128] = "";
  double s1[4], s2[4], s3[4];
  const char *docs[] = {"A fox is a small wild canine.", "Databases store rows in pages.", "", "Foxes eat mice."};
  json_t *body = json_pack("{s:s, s:s, s:[s, {s:s}, s, s]}", "model", "rerank", "query", "what is a fox?",
                           "documents", docs[0], "text", docs[1], docs[2], docs[3]);
  char *b = json_dumps(body, JSON_COMPACT);
  post("/v1/rerank", b, &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strcmp(jstr(r.json, "object"), "list") == 0 && strcmp(jstr(r.json, "model"), "rerank") == 0, "%s", r.body.data);
  CHECK(rerank_scores(r.json, 4, 4, s1, why, sizeof why), "%s: %s", why, r.body.data);
  CHECK(!jpath(r.json, "results.0.document"), "no documents unless asked");
  long long pt = jnum(r.json, "usage.prompt_tokens");
  CHECK(pt >= 4 * 3 && pt == jnum(r.json, "usage.total_tokens"), "usage %s", r.body.data);
  CHECK(s1[0] != s1[1] || s1[1] != s1[3], "different documents score differently: %s", r.body.data);
  resp_clear(&r);
  post("/rerank", b, &r); /* the alias; the same request scores the same */
  CHECK(r.status == 200 && rerank_scores(r.json, 4, 4, s2, why, sizeof why), "alias: %ld %s %s", r.status, why,
        r.body.data);
  for (int i = 0; i < 4; i++) CHECK(s1[i] == s2[i], "deterministic: document %d %g vs %g", i, s1[i], s2[i]);
  resp_clear(&r);
  free(b);
  json_decref(body);

  /* a document alone scores as it did packed with the others */
  post_json("/v1/rerank", json_pack("{s:s, s:s, s:[s]}", "model", "rerank", "query", "what is a fox?", "documents",
                                    docs[3]), &r);
  CHECK(r.status == 200 && rerank_scores(r.json, 1, 1, s3, why, sizeof why), "alone: %s %s", why, r.body.data);
  CHECK(fabs(s3[0] - s1[3]) < 1e-5, "alone %g vs packed %g", s3[0], s1[3]);
  resp_clear(&r);

  /* top_n and return_documents */
  post_json("/v1/rerank", json_pack("{s:s, s:s, s:[s,s,s,s], s:i, s:b}", "model", "rerank", "query", "what is a fox?",
                                    "documents", docs[0], docs[1], docs[2], docs[3], "top_n", 2, "return_documents", 1),
            &r);
  CHECK(r.status == 200 && rerank_scores(r.json, 4, 2, s3, why, sizeof why), "top_n: %s %s", why, r.body.data);
  for (int k = 0; k < 2; k++) {
    char p[64];
    snprintf(p, sizeof p, "results.%d.index", k);
    long long idx = jnum(r.json, p);
    snprintf(p, sizeof p, "results.%d.document.text", k);
    CHECK(jstr(r.json, p) && strcmp(jstr(r.json, p), docs[idx]) == 0, "document %d echoed: %s", k, r.body.data);
    CHECK(s3[idx] == s1[idx], "top_n scores as before");
  }
  resp_clear(&r);

  /* TEI's shape: "texts" in, a bare array of {index, score, text} out */
  post_json("/v1/rerank", json_pack("{s:s, s:s, s:[s,s], s:b}", "model", "rerank", "query", "what is a fox?", "texts",
                                    docs[0], docs[1], "return_text", 1), &r);
  CHECK(r.status == 200 && json_array_size(r.json) == 2, "tei: %ld %s", r.status, r.body.data);
  CHECK(json_is_number(jpath(r.json, "0.score")) && jstr(r.json, "0.text"), "tei item: %s", r.body.data);
  CHECK(fabs(json_number_value(jpath(r.json, "0.score")) - s1[jnum(r.json, "0.index")]) < 1e-5, "tei score");
  resp_clear(&r);

  /* errors */
  static const struct {
    const char *body;
    long status;
    const char *code;
  } bad[] = {
      {"{\"model\":\"rerank\",\"documents\":[\"a\"]}", 400, "missing_required_parameter"},
      {"{\"model\":\"rerank\",\"query\":\"\",\"documents\":[\"a\"]}", 400, "invalid_value"},
      {"{\"model\":\"rerank\",\"query\":7,\"documents\":[\"a\"]}", 400, "invalid_type"},
      {"{\"model\":\"rerank\",\"query\":\"q\"}", 400, "missing_required_parameter"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[]}", 400, "invalid_value"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":\"a\"}", 400, "invalid_value"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[1]}", 400, "invalid_type"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[{\"txt\":\"a\"}]}", 400, "invalid_type"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":0}", 400, "invalid_value"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[\"a\"],\"return_documents\":1}", 400, "invalid_type"},
      {"{\"model\":\"chat\",\"query\":\"q\",\"documents\":[\"a\"]}", 400, "wrong_capability"},
      {"{\"model\":\"embed\",\"query\":\"q\",\"documents\":[\"a\"]}", 400, "wrong_capability"},
      {"{\"model\":\"no-such-model\",\"query\":\"q\",\"documents\":[\"a\"]}", 404, "model_not_found"},
      {"{\"model\":\"rerank\",\"input\":\"a\"}", 400, "wrong_capability"}, /* sent to /v1/embeddings */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    bool emb = strstr(bad[i].body, "\"input\"") != NULL;
    post(emb ? "/v1/embeddings" : "/v1/rerank", bad[i].body, &r);
    CHECK(is_error(&r, bad[i].status, bad[i].code), "%s: %ld %s", bad[i].body, r.status, r.body.data);
    resp_clear(&r);
  }
  sy_buf big = {0};
  for (int i = 0; i < 300; i++) sy_buf_puts(&big, "fox ");
  post_json("/v1/rerank", json_pack("{s:s, s:s, s:[s,s]}", "model", "rerank", "query", "q", "documents", "short",
                                    big.data), &r);
  sy_buf_free(&big);
  CHECK(is_error(&r, 400, "context_length_exceeded") && strstr(jstr(r.json, "error.message"), "128") &&
            strstr(jstr(r.json, "error.message"), "documents[1]"),
        "too long: %ld %s", r.status, r.body.data);
  resp_clear(&r);

  /* the model's own pair template (tokenizer.chat_template.rerank "[CLS]{query}[SEP]{document}[SEP]"):
   * one token more per pair than llama-server's BERT layout "[CLS] q [SEP] d"; a "{document}" in
   * the query stays text (one-pass substitution) */
  long long plain = -1, tmpl = -1;
  for (int k = 0; k < 2; k++) {
    post_json("/v1/rerank", json_pack("{s:s, s:s, s:[s,s]}", "model", k ? "rerank-tmpl" : "rerank", "query",
                                      "what is {document}?", "documents", "one two three four five six seven",
                                      "eight"), &r);
    CHECK(r.status == 200 && rerank_scores(r.json, 2, 2, s3, why, sizeof why), "template %d: %s %s", k, why,
          r.body.data);
    *(k ? &tmpl : &plain) = jnum(r.json, "usage.prompt_tokens");
    resp_clear(&r);
  }
  CHECK(plain > 0 && tmpl == plain + 2, "prompt tokens: %lld with the template, %lld without", tmpl, plain);

  get("/v1/models/rerank", &r);
  CHECK(r.status == 200 && jstr(r.json, "capabilities.0") && strcmp(jstr(r.json, "capabilities.0"), "rerank") == 0,
        "capabilities: %s", r.body.data);
  resp_clear(&r);
  get("/metrics", &r);
  CHECK(r.body.data && strstr(r.body.data, "switchyard_requests_total{model=\"rerank\",endpoint=\"rerank\",status=\"200\"}"),
        "metrics count rerank requests");
  resp_clear(&r);
}

/* ---- vision: image_url parts through mtmd (tiny-vlm: mkmodel --mmproj, LLaVA-style 'mlp'
 * projector that turns any image into exactly 16 tokens: 56x56 pixels, 14x14 patches) ---- */

#define VLM_IMAGE_TOKENS 16
/* two small valid PNGs (RGB, 5x4 and 3x7) */
static const char png_5x4[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAQklEQVR42hXIMRHAMAwEwevSuXNnABojSPEzoaAiYB6OQAigk3IXICDBUB8Q"
    "oSs1rFla/4dHetm7fEMTPbO3+6l+D1cfDu22FFMAAAAAAElFTkSuQmCC";
static const char png_3x7[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAMAAAAHCAIAAABC22D+AAAASUlEQVR42g3FoRHAIBBE0S2IEujmGyYOdw4Xc0MFqSB6maEtSkieeUKksP4r"
    "WS/XLoKM7hhikSu8pjjkGT6PKGS5XV7RyDbd9gfMkR4Eg25eQgAAAABJRU5ErkJggg==";

/* A user message with the text and then one image_url part per url (NULL-terminated). */
static json_t *vision_body(const char *model, const char *text, const char *const *urls) {
  json_t *parts = json_pack("[{s:s, s:s}]", "type", "text", "text", text);
  for (size_t i = 0; urls && urls[i]; i++)
    json_array_append_new(parts, json_pack("{s:s, s:{s:s, s:s}}", "type", "image_url", "image_url", "url", urls[i],
                                           "detail", "auto"));
  return json_pack("{s:s, s:[{s:s, s:o}], s:i, s:f, s:i}", "model", model, "messages", "role", "user", "content",
                   parts, "max_tokens", 6, "temperature", 0.0, "seed", 7);
}

static char *data_url(const char *b64) {
  char *u = malloc(strlen(b64) + 32);
  sprintf(u, "data:image/png;base64,%s", b64);
  return u;
}

static void t_vision(void) {
  CHECK(have_vlm, "%s/tiny-vlm-mmproj.gguf is missing (tests/run.sh make_models writes it)", models_dir);
  char *a = data_url(png_5x4), *b = data_url(png_3x7);
  resp r;
  get("/v1/models/vlm", &r);
  bool vision = false;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(r.json, "capabilities"), i, c) vision |= strcmp(json_string_value(c), "vision") == 0;
  CHECK(r.status == 200 && vision, "vlm lists the vision capability: %ld %s", r.status, r.body.data);
  resp_clear(&r);

  post_json("/v1/chat/completions", vision_body("vlm", "What is in the picture?", NULL), &r);
  long long pt0 = jnum(r.json, "usage.prompt_tokens");
  CHECK(r.status == 200 && pt0 > 5, "text only: %ld %s", r.status, r.body.data);
  resp_clear(&r);

  const char *one[] = {a, NULL};
  post_json("/v1/chat/completions", vision_body("vlm", "What is in the picture?", one), &r);
  CHECK(r.status == 200, "one image: %ld %s", r.status, r.body.data);
  long long pt1 = jnum(r.json, "usage.prompt_tokens"), ct1 = jnum(r.json, "usage.completion_tokens");
  CHECK(ct1 > 0 && jstr(r.json, "choices.0.message.content"), "one image: completion_tokens %lld", ct1);
  CHECK(pt1 == pt0 + VLM_IMAGE_TOKENS, "one image adds %d prompt tokens: %lld -> %lld", VLM_IMAGE_TOKENS, pt0, pt1);
  resp_clear(&r);

  /* another size, same count (the projector resizes to a fixed square); two images, twice */
  const char *other[] = {b, NULL}, *two[] = {a, b, NULL};
  post_json("/v1/chat/completions", vision_body("vlm", "What is in the picture?", other), &r);
  CHECK(r.status == 200 && jnum(r.json, "usage.prompt_tokens") == pt1, "3x7 image: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/chat/completions", vision_body("vlm", "What is in the picture?", two), &r);
  CHECK(r.status == 200, "two images: %ld %s", r.status, r.body.data);
  CHECK(jnum(r.json, "usage.prompt_tokens") == pt0 + 2 * VLM_IMAGE_TOKENS && jnum(r.json, "usage.completion_tokens") > 0,
        "two images: prompt_tokens %lld (text %lld)", jnum(r.json, "usage.prompt_tokens"), pt0);
  resp_clear(&r);

  /* the same request streamed */
  json_t *sb = vision_body("vlm", "What is in the picture?", one);
  json_object_set_new(sb, "stream", json_true());
  post_json("/v1/chat/completions", sb, &r);
  bool done, wf;
  json_t *ev = sse_events(&r.body, &done, &wf);
  CHECK(r.status == 200 && done && wf && json_array_size(ev) > 1, "streamed: %ld %s", r.status, r.body.data);
  json_decref(ev);
  resp_clear(&r);

  /* refused: a corrupt image, a remote URL, a local path without limits.image_dir, a text-only
   * model, too many images */
  char *bad = data_url("iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAQklEQVR42hXIMRHAMAwEwev");
  const char *corrupt[] = {bad, NULL}, *remote[] = {"https://example.com/cat.png", NULL},
             *local[] = {"/etc/hostname", NULL};
  post_json("/v1/chat/completions", vision_body("vlm", "x", corrupt), &r);
  CHECK(is_error(&r, 400, "invalid_image"), "corrupt image: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/chat/completions", vision_body("vlm", "x", remote), &r);
  CHECK(is_error(&r, 400, "invalid_image"), "http URL: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/chat/completions", vision_body("vlm", "x", local), &r);
  CHECK(is_error(&r, 400, "invalid_image"), "local file without image_dir: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/chat/completions", vision_body("chat", "x", one), &r);
  CHECK(is_error(&r, 400, "unsupported_content"), "text-only model: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  const char *many[18];
  for (i = 0; i < 17; i++) many[i] = a;
  many[17] = NULL;
  post_json("/v1/chat/completions", vision_body("vlm", "x", many), &r);
  CHECK(is_error(&r, 400, NULL), "17 images: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* a marker typed by the user does not match the images: refused by the worker, not crashed */
  post_json("/v1/chat/completions", vision_body("vlm", "two <__media__> here", one), &r);
  CHECK(is_error(&r, 400, NULL), "stray marker: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* and the model still serves */
  post_json("/v1/chat/completions", vision_body("vlm", "What is in the picture?", one), &r);
  CHECK(r.status == 200 && jnum(r.json, "usage.prompt_tokens") == pt1, "after errors: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  free(a);
  free(b);
  free(bad);
}

/* ---- speech to text (/v1/audio/transcriptions, /translations) ---- */

/* POST a multipart form to daemon d: the file (data, or none when NULL) and name/value pairs
 * (NULL-ended). */
static void post_form_at(const daemon_proc *d, const char *path, const void *file, size_t file_len,
                         const char *const *kv, resp *r) {
  memset(r, 0, sizeof *r);
  CURL *c = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s%s", d->base, path);
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
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_MIMEPOST, form);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_mime_free(form);
  curl_easy_cleanup(c);
  if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

static void post_form(const char *path, const void *file, size_t file_len, const char *const *kv, resp *r) {
  post_form_at(&D, path, file, file_len, kv, r);
}

/* A 16 kHz mono 16-bit WAV: secs of a gliding tone over a little noise. */
static void make_wav(sy_buf *b, double secs) {
  uint32_t n = (uint32_t)(secs * 16000), bytes = n * 2;
  unsigned char h[44] = "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0data";
  uint32_t riff = 36 + bytes;
  memcpy(h + 4, &riff, 4);
  memcpy(h + 40, &bytes, 4);
  sy_buf_append(b, h, 44);
  unsigned seed = 7;
  for (uint32_t i = 0; i < n; i++) {
    double t = i / 16000.0;
    seed = seed * 1103515245u + 12345u;
    double v = 0.3 * sin(2 * M_PI * (220 + 60 * t) * t) + 0.02 * ((double)(seed >> 16 & 0x7fff) / 16384.0 - 1);
    int16_t s = (int16_t)(v * 32767);
    sy_buf_append(b, &s, 2);
  }
}

/* Parse "HH:MM:SS,mmm" (sep ',' for SRT, '.' for VTT) at p; -1 when malformed. */
static double cue_time(const char *p, char sep) {
  int hh, mm, ss, ms;
  char c;
  if (strlen(p) < 12 || sscanf(p, "%2d:%2d:%2d%c%3d", &hh, &mm, &ss, &c, &ms) != 5 || c != sep || mm > 59 || ss > 59 ||
      p[2] != ':' || p[5] != ':' || !isdigit((unsigned char)p[11]))
    return -1;
  return hh * 3600 + mm * 60 + ss + ms / 1000.0;
}

/* Check an SRT (srt) or VTT body: numbered cues / WEBVTT header, well-formed and increasing
 * times, a text line per cue. Returns the number of cues, or -1 (reason in why). */
static int check_subtitles(const char *body, bool srt, char *why, size_t wl) {
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
      if (idx != cues + 1 || *end != '\n') return snprintf(why, wl, "cue %d: bad number", cues + 1), -1;
      p = end + 1;
    }
    double a = cue_time(p, sep), b = a >= 0 && strncmp(p + 12, " --> ", 5) == 0 ? cue_time(p + 17, sep) : -1;
    if (a < 0 || b < 0 || p[29] != '\n') return snprintf(why, wl, "cue %d: bad timing line", cues + 1), -1;
    if (a < prev || b < a) return snprintf(why, wl, "cue %d: times go back (%.3f..%.3f)", cues + 1, a, b), -1;
    prev = a;
    p += 30;
    const char *blank = strstr(p, "\n\n");
    if (!blank || blank == p) return snprintf(why, wl, "cue %d: no text or no blank line", cues + 1), -1;
    p = blank + 2;
    cues++;
  }
  return cues;
}

static sy_buf test_wav;

static void t_transcribe(void) {
  if (!test_wav.len) make_wav(&test_wav, 3.0);
  const char *path = "/v1/audio/transcriptions";
  resp r;
  /* json */
  post_form(path, test_wav.data, test_wav.len,
            (const char *[]){"model", "whisper", "temperature", "0.2", "language", "en", NULL}, &r);
  CHECK(r.status == 200 && jstr(r.json, "text"), "json: %ld %s", r.status, r.body.data);
  CHECK(strcmp(jstr(r.json, "usage.type"), "duration") == 0 && jnum(r.json, "usage.seconds") == 3, "usage: %s",
        r.body.data);
  CHECK(strcmp(r.model_hdr, "whisper") == 0, "X-Switchyard-Model '%s'", r.model_hdr);
  resp_clear(&r);
  /* text */
  post_form(path, test_wav.data, test_wav.len,
            (const char *[]){"model", "whisper", "temperature", "0.2", "response_format", "text", NULL}, &r);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/plain", 10) == 0, "text: %ld %s", r.status, r.content_type);
  CHECK(r.body.len >= 1 && r.body.data[r.body.len - 1] == '\n', "text ends with a newline");
  resp_clear(&r);
  /* srt, vtt */
  char why[128] = "";
  for (int srt = 1; srt >= 0; srt--) {
    post_form(path, test_wav.data, test_wav.len,
              (const char *[]){"model", "whisper", "temperature", "0.2", "response_format", srt ? "srt" : "vtt", NULL},
              &r);
    CHECK(r.status == 200, "%s: %ld %s", srt ? "srt" : "vtt", r.status, r.body.data);
    int cues = check_subtitles(r.body.data ? r.body.data : "", srt, why, sizeof why);
    CHECK(cues >= 0, "%s: %s:\n%s", srt ? "srt" : "vtt", why, r.body.data);
    resp_clear(&r);
  }
  /* verbose_json with words and segments */
  post_form(path, test_wav.data, test_wav.len,
            (const char *[]){"model", "whisper", "temperature", "0.2", "response_format", "verbose_json",
                             "timestamp_granularities[]", "word", "timestamp_granularities[]", "segment", NULL},
            &r);
  CHECK(r.status == 200, "verbose_json: %ld %s", r.status, r.body.data);
  CHECK(strcmp(jstr(r.json, "task"), "transcribe") == 0 && jstr(r.json, "language") && jstr(r.json, "text"),
        "verbose_json shape: %s", r.body.data);
  const json_t *dur = jpath(r.json, "duration");
  CHECK(json_is_number(dur) && fabs(json_number_value(dur) - 3.0) < 0.01, "duration %s", r.body.data);
  json_t *segs = json_object_get(r.json, "segments"), *words = json_object_get(r.json, "words");
  CHECK(json_is_array(segs) && json_is_array(words), "segments and words: %s", r.body.data);
  size_t i;
  json_t *s;
  double prev = 0;
  json_array_foreach(segs, i, s) {
    double a = json_number_value(json_object_get(s, "start")), b = json_number_value(json_object_get(s, "end"));
    CHECK(jnum(s, "id") == (long long)i && jstr(s, "text") && a >= prev && b >= a && b <= 3.0 + 1e-6,
          "segment %zu: %s", i, r.body.data);
    prev = a;
  }
  json_array_foreach(words, i, s) {
    double a = json_number_value(json_object_get(s, "start")), b = json_number_value(json_object_get(s, "end"));
    CHECK(jstr(s, "word") && b >= a, "word %zu: %s", i, r.body.data);
  }
  resp_clear(&r);
}

static void t_transcribe_stream(void) {
  if (!test_wav.len) make_wav(&test_wav, 3.0);
  resp r;
  post_form("/v1/audio/transcriptions", test_wav.data, test_wav.len,
            (const char *[]){"model", "whisper", "temperature", "0.2", "stream", "true", NULL}, &r);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/event-stream", 17) == 0, "%ld %s", r.status, r.content_type);
  bool done, ok;
  json_t *ev = sse_events(&r.body, &done, &ok);
  size_t n = json_array_size(ev), i;
  json_t *e;
  sy_buf text = {0};
  bool shapes = ok && n >= 1;
  json_array_foreach(ev, i, e) {
    const char *type = jstr(e, "type");
    if (i + 1 < n) {
      shapes &= type && strcmp(type, "transcript.text.delta") == 0 && jstr(e, "delta");
      if (jstr(e, "delta")) sy_buf_puts(&text, jstr(e, "delta"));
    }
  }
  const json_t *last = json_array_get(ev, n ? n - 1 : 0);
  const char *ltype = jstr(last, "type"), *ltext = jstr(last, "text");
  bool same = ltext && strcmp(ltext, text.data ? text.data : "") == 0;
  bool ends = ltype && strcmp(ltype, "transcript.text.done") == 0;
  sy_buf_free(&text);
  json_decref(ev);
  CHECK(shapes, "deltas well formed: %s", r.body.data);
  CHECK(ends, "ends with transcript.text.done: %s", r.body.data);
  CHECK(same, "done text is the deltas joined: %s", r.body.data);
  resp_clear(&r);
}

static void t_translations(void) {
  if (!test_wav.len) make_wav(&test_wav, 3.0);
  resp r;
  post_form("/v1/audio/translations", test_wav.data, test_wav.len,
            (const char *[]){"model", "whisper", "temperature", "0.2", "response_format", "verbose_json", NULL}, &r);
  CHECK(r.status == 200 && strcmp(jstr(r.json, "task"), "translate") == 0, "%ld %s", r.status, r.body.data);
  resp_clear(&r);
}

static void t_transcribe_errors(void) {
  if (!test_wav.len) make_wav(&test_wav, 3.0);
  const char *path = "/v1/audio/transcriptions";
  resp r;
  /* over limits.max_upload_bytes (4000000 in the main config) */
  size_t big = 5000000;
  char *zeros = calloc(1, big);
  post_form(path, zeros, big, (const char *[]){"model", "whisper", NULL}, &r);
  free(zeros);
  CHECK(is_error(&r, 413, "request_too_large"), "413: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* a WAV cut inside its fmt chunk */
  sy_buf bad = {0};
  sy_buf_append(&bad, test_wav.data, 26);
  post_form(path, bad.data, bad.len, (const char *[]){"model", "whisper", NULL}, &r);
  sy_buf_free(&bad);
  CHECK(r.status == 400 && jstr(r.json, "error.message"), "corrupt file: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  static const char junk[] = "hello, this is text and not audio at all";
  post_form(path, junk, sizeof junk - 1, (const char *[]){"model", "whisper", NULL}, &r);
  CHECK(is_error(&r, 415, "unsupported_audio_format"), "not audio: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_form(path, test_wav.data, test_wav.len, (const char *[]){"model", "chat", NULL}, &r);
  CHECK(is_error(&r, 400, "wrong_capability"), "a chat model: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_form(path, NULL, 0, (const char *[]){"model", "whisper", NULL}, &r);
  CHECK(is_error(&r, 400, "missing_required_parameter"), "no file: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_form(path, test_wav.data, test_wav.len, (const char *[]){"model", "whisper", "response_format", "mp4", NULL},
            &r);
  CHECK(is_error(&r, 400, "invalid_value"), "bad format: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_form(path, test_wav.data, test_wav.len, (const char *[]){"model", "whisper", "language", "xx", NULL}, &r);
  CHECK(is_error(&r, 400, "invalid_language"), "bad language: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json(path, json_pack("{s:s}", "model", "whisper"), &r);
  CHECK(is_error(&r, 400, "invalid_content_type"), "JSON body: %ld %s", r.status, r.body.data);
  resp_clear(&r);
}

/* whisper.cpp's own test model (no weights: empty text) with the real Silero VAD on jfk.wav */
static void t_transcribe_vad(void) {
  char p[600];
  snprintf(p, sizeof p, "%s/jfk.wav", testdata_dir);
  sy_buf wav = {0};
  CHECK(read_whole(p, &wav), "read %s", p);
  resp r;
  post_form("/v1/audio/transcriptions", wav.data, wav.len,
            (const char *[]){"model", "whisper-vad", "language", "en", "response_format", "verbose_json", NULL}, &r);
  sy_buf_free(&wav);
  CHECK(r.status == 200, "%ld %s", r.status, r.body.data);
  static const double want[4][2] = {{0.32, 2.27}, {3.27, 4.41}, {5.38, 7.68}, {8.16, 10.62}};
  json_t *sp = json_object_get(r.json, "speech_segments");
  CHECK(json_array_size(sp) == 4, "4 speech segments: %s", r.body.data);
  for (size_t i = 0; i < 4; i++) {
    double a = json_number_value(json_object_get(json_array_get(sp, i), "start"));
    double b = json_number_value(json_object_get(json_array_get(sp, i), "end"));
    CHECK(fabs(a - want[i][0]) < 0.015 && fabs(b - want[i][1]) < 0.015, "segment %zu: %.2f-%.2f, want %.2f-%.2f", i,
          a, b, want[i][0], want[i][1]);
  }
  const json_t *dur = jpath(r.json, "duration");
  CHECK(json_is_number(dur) && fabs(json_number_value(dur) - 11.0) < 0.01, "duration: %s", r.body.data);
  CHECK(jstr(r.json, "text") && strcmp(jstr(r.json, "text"), "") == 0, "a weightless model says nothing: %s",
        r.body.data);
  resp_clear(&r);
  /* the same speech through MP3 (decoded by the daemon) */
  snprintf(p, sizeof p, "%s/jfk.mp3", testdata_dir);
  wav.len = 0; /* the MP3 alone (appended to the WAV, the WAV's data chunk would hide it) */
  CHECK(read_whole(p, &wav), "read %s", p);
  post_form("/v1/audio/transcriptions", wav.data, wav.len,
            (const char *[]){"model", "whisper-vad", "language", "en", "response_format", "verbose_json", NULL}, &r);
  sy_buf_free(&wav);
  sp = json_object_get(r.json, "speech_segments");
  CHECK(r.status == 200 && json_array_size(sp) == 4, "mp3: %ld %s", r.status, r.body.data);
  for (size_t i = 0; i < 4; i++) {
    double a = json_number_value(json_object_get(json_array_get(sp, i), "start"));
    CHECK(fabs(a - want[i][0]) < 0.05, "mp3 segment %zu starts at %.2f, want %.2f", i, a, want[i][0]);
  }
  resp_clear(&r);
}

/* ---- speech (the built-in `speak` model: espeak-ng, no file) ---- */

typedef struct speech_resp {
  long status;
  sy_buf body;
  int writes;          /* write callbacks: the body arrived in this many pieces */
  bool chunked;        /* Transfer-Encoding: chunked */
  char ctype[64];
  double t_first, t_total;
} speech_resp;

static size_t speech_on_body(char *p, size_t sz, size_t n, void *ud) {
  speech_resp *r = ud;
  r->writes++;
  return sy_buf_append(&r->body, p, sz * n) == 0 ? sz * n : 0;
}

static size_t speech_on_header(char *p, size_t sz, size_t n, void *ud) {
  speech_resp *r = ud;
  size_t len = sz * n;
  if (len > 26 && strncasecmp(p, "transfer-encoding: chunked", 26) == 0) r->chunked = true;
  if (len > 14 && strncasecmp(p, "content-type: ", 14) == 0)
    snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)strcspn(p + 14, "\r\n"), p + 14);
  return len;
}

/* POST /v1/audio/speech with body (stolen). */
static void speech_post(const daemon_proc *d, json_t *body, speech_resp *r) {
  memset(r, 0, sizeof *r);
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "%s/v1/audio/speech", d->base);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, s);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, speech_on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, speech_on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME, &r->t_first);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->t_total);
  }
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(s);
}

static json_t *speech_body(const char *input, const char *format) {
  return json_pack("{s:s, s:s, s:s}", "model", "speak", "input", input, "response_format", format);
}

static const char speech_text[] = "Hello from Switchyard. This is the built-in voice.";

/* A long multi-sentence input (many synth callbacks, several sentences). */
static const char *speech_long(void) {
  static char buf[3000];
  if (!buf[0]) {
    size_t p = 0;
    for (int i = 0; i < 30 && p + 80 < sizeof buf; i++)
      p += (size_t)snprintf(buf + p, sizeof buf - p, "This is sentence number %d of a longer text. ", i + 1);
  }
  return buf;
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static unsigned le16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

/* A RIFF/WAVE body (PCM, mono, 16 bit, 24 kHz): its samples' bytes in data and n; false if malformed. */
static bool wav_parse(const sy_buf *b, const unsigned char **data, size_t *n, char *why, size_t wl) {
  const unsigned char *p = (const unsigned char *)b->data;
  if (b->len < 44 || memcmp(p, "RIFF", 4) || memcmp(p + 8, "WAVE", 4)) return snprintf(why, wl, "no RIFF/WAVE"), false;
  size_t at = 12;
  bool fmt = false;
  while (at + 8 <= b->len) {
    uint32_t sz = le32(p + at + 4);
    if (!memcmp(p + at, "fmt ", 4)) {
      if (sz < 16 || at + 8 + 16 > b->len) return snprintf(why, wl, "short fmt"), false;
      const unsigned char *f = p + at + 8;
      if (le16(f) != 1 || le16(f + 2) != 1 || le32(f + 4) != 24000 || le16(f + 14) != 16)
        return snprintf(why, wl, "fmt: format %u, %u channels, %u Hz, %u bits", le16(f), le16(f + 2),
                        (unsigned)le32(f + 4), le16(f + 14)),
               false;
      fmt = true;
    } else if (!memcmp(p + at, "data", 4)) {
      size_t left = b->len - at - 8;
      /* a streamed WAV may not know its length up front (0xFFFFFFFF, as OpenAI's) */
      if (sz != 0xFFFFFFFFu && sz != left) return snprintf(why, wl, "data size %u, %zu bytes follow", (unsigned)sz, left), false;
      *data = p + at + 8;
      *n = left;
      return fmt ? true : (snprintf(why, wl, "data before fmt"), false);
    }
    if (sz > b->len) break;
    at += 8 + sz + (sz & 1);
  }
  return snprintf(why, wl, "no data chunk"), false;
}

static void t_speech_wav(void) {
  speech_resp r;
  speech_post(&D, speech_body(speech_text, "wav"), &r);
  CHECK(r.status == 200, "status %ld: %.300s", r.status, r.body.data ? r.body.data : "");
  CHECK(strcmp(r.ctype, "audio/wav") == 0, "content type %s", r.ctype);
  const unsigned char *data = NULL;
  size_t n = 0;
  char why[160] = "";
  bool ok = wav_parse(&r.body, &data, &n, why, sizeof why);
  size_t nz = 0;
  for (size_t i = 0; ok && i + 1 < n; i += 2) nz += data[i] || data[i + 1];
  sy_buf_free(&r.body);
  CHECK(ok, "a WAV: %s", why);
  CHECK(n > 24000 && n % 2 == 0, "%zu bytes of 16-bit samples (more than half a second)", n);
  CHECK(nz > n / 8, "not silence: %zu non-zero samples of %zu", nz, n / 2);
  /* the same request twice: the same bytes (espeak runs in a fresh child each time) */
  speech_resp a, b;
  speech_post(&D, speech_body(speech_long(), "wav"), &a);
  speech_post(&D, speech_body(speech_long(), "wav"), &b);
  bool same = a.status == 200 && b.status == 200 && a.body.len == b.body.len && a.body.len > 44 &&
              memcmp(a.body.data, b.body.data, a.body.len) == 0;
  size_t la = a.body.len, lb = b.body.len;
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  CHECK(same, "deterministic: %ld/%ld, %zu vs %zu bytes", a.status, b.status, la, lb);
}

/* pcm: raw s16le at 24 kHz; the same samples as the WAV's data, and as the SSE events' audio; the
 * done event counts them. Streams: chunked, many SSE deltas for a long text. */
static void t_speech_pcm_sse(void) {
  speech_resp p, w, s;
  speech_post(&D, speech_body(speech_long(), "pcm"), &p);
  speech_post(&D, speech_body(speech_long(), "wav"), &w);
  json_t *sb = speech_body(speech_long(), "pcm");
  json_object_set_new(sb, "stream_format", json_string("sse"));
  speech_post(&D, sb, &s);
  const unsigned char *data = NULL;
  size_t n = 0;
  char why[160] = "";
  bool wav_ok = w.status == 200 && wav_parse(&w.body, &data, &n, why, sizeof why);
  bool same_wav = wav_ok && n == p.body.len && memcmp(data, p.body.data, n) == 0;
  sy_buf audio = {0};
  bool done = false, wf = false;
  json_t *ev = sse_events(&s.body, &done, &wf);
  size_t deltas = 0, i;
  json_t *e;
  const json_t *last = NULL;
  bool bad_b64 = false;
  json_array_foreach(ev, i, e) {
    const char *t = jstr(e, "type");
    if (t && strcmp(t, "speech.audio.delta") == 0) {
      deltas++;
      const char *b = jstr(e, "audio");
      size_t bl = b ? strlen(b) : 0;
      static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      unsigned acc = 0;
      int bits = 0;
      for (size_t k = 0; k < bl && b[k] != '='; k++) {
        const char *q = strchr(al, b[k]);
        if (!q || !b[k]) {
          bad_b64 = true;
          break;
        }
        acc = (acc << 6) | (unsigned)(q - al);
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          char c = (char)((acc >> bits) & 0xFF);
          sy_buf_append(&audio, &c, 1);
        }
      }
    }
    last = e;
  }
  char last_type[64] = "";
  snprintf(last_type, sizeof last_type, "%s", last && jstr(last, "type") ? jstr(last, "type") : "(none)");
  long long in_tok = last ? jnum(last, "usage.input_tokens") : -1, samples = last ? jnum(last, "samples") : -1;
  bool same_sse = audio.len == p.body.len && audio.len && memcmp(audio.data, p.body.data, audio.len) == 0;
  size_t plen = p.body.len, alen = audio.len;
  bool chunked = p.chunked;
  int writes = p.writes;
  double t_first = p.t_first, t_total = p.t_total;
  const char *pct = strcmp(p.ctype, "audio/pcm") == 0 ? NULL : "pcm content type";
  json_decref(ev);
  sy_buf_free(&audio);
  sy_buf_free(&p.body);
  sy_buf_free(&w.body);
  sy_buf_free(&s.body);
  CHECK(p.status == 200 && s.status == 200, "status pcm %ld, sse %ld", p.status, s.status);
  CHECK(!pct, "%s", pct);
  CHECK(plen % 2 == 0 && plen > 48000, "pcm: %zu bytes", plen);
  CHECK(wav_ok, "wav: %s", why);
  CHECK(same_wav, "pcm = the WAV's data (%zu vs %zu bytes)", plen, n);
  CHECK(wf && !bad_b64, "SSE well formed, base64 audio");
  CHECK(deltas > 3, "the long text streams as many deltas: %zu", deltas);
  CHECK(strcmp(last_type, "speech.audio.done") == 0, "ends with speech.audio.done: %s", last_type);
  CHECK(in_tok == (long long)strlen(speech_long()), "usage.input_tokens %lld (characters)", in_tok);
  CHECK(same_sse, "the SSE audio is the pcm body (%zu vs %zu bytes)", alen, plen);
  CHECK(samples >= 0 && samples == (long long)plen / 2, "pcm length %zu = 2 x %lld samples", plen,
        samples);
  CHECK(chunked && writes > 1, "chunked (%d), in %d pieces", chunked, writes);
  CHECK(t_first < t_total, "the first byte came before the last (%.3f < %.3f s)", t_first, t_total);
}

/* mp3, opus, flac, aac: their magic bytes, and they decode (the audio module) to about as many
 * samples as the WAV holds, not silence. aac needs ffmpeg: without it, a 400 unsupported_format. */
static void t_speech_formats(void) {
  static const struct { const char *fmt, *ctype; } f[] = {
      {"mp3", "audio/mpeg"}, {"opus", "audio/ogg"}, {"flac", "audio/flac"}, {"aac", "audio/aac"}};
  speech_resp w;
  speech_post(&D, speech_body(speech_text, "wav"), &w);
  size_t wav_samples = w.body.len > 44 ? (w.body.len - 44) / 2 : 0;
  sy_buf_free(&w.body);
  CHECK(w.status == 200 && wav_samples > 12000, "wav: %ld", w.status);
  char ff[512];
  bool have_ffmpeg = sy_audio_ffmpeg_find(ff, sizeof ff);
  for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
    speech_resp r;
    speech_post(&D, speech_body(speech_text, f[i].fmt), &r);
    const unsigned char *b = (const unsigned char *)(r.body.data ? r.body.data : "");
    size_t n = r.body.len;
    long st = r.status;
    if (!strcmp(f[i].fmt, "aac") && !have_ffmpeg) {
      bool refused = st == 400 && r.body.data && strstr(r.body.data, "unsupported_format");
      sy_buf_free(&r.body);
      CHECK(refused, "aac without ffmpeg: %ld", st);
      continue;
    }
    bool magic = !strcmp(f[i].fmt, "mp3")    ? n > 3 && (!memcmp(b, "ID3", 3) || (b[0] == 0xFF && (b[1] & 0xE0) == 0xE0))
                 : !strcmp(f[i].fmt, "opus") ? n > 36 && !memcmp(b, "OggS", 4) && memmem(b, n < 200 ? n : 200, "OpusHead", 8)
                 : !strcmp(f[i].fmt, "flac") ? n > 4 && !memcmp(b, "fLaC", 4)
                                             : n > 2 && b[0] == 0xFF && (b[1] & 0xF6) == 0xF0; /* ADTS */
    char ct[64], err[256] = "";
    snprintf(ct, sizeof ct, "%s", r.ctype);
    sy_audio a = {0};
    bool unsup = false;
    int drc = st == 200 ? sy_audio_decode(b, n, 24000, NULL, &a, &unsup, err, sizeof err) : -1;
    double energy = 0;
    for (size_t k = 0; k < a.n; k++) energy += (double)a.pcm[k] * a.pcm[k];
    size_t got = a.n;
    sy_audio_free(&a);
    sy_buf_free(&r.body);
    CHECK(st == 200, "%s: status %ld", f[i].fmt, st);
    CHECK(magic && n > 1000, "%s: magic bytes, %zu bytes", f[i].fmt, n);
    CHECK(strcmp(ct, f[i].ctype) == 0, "%s: content type %s", f[i].fmt, ct);
    CHECK(drc == 0 || unsup, "%s: decodes: %s", f[i].fmt, err);
    if (drc != 0) continue; /* a format this build reads only through ffmpeg */
    CHECK(got > wav_samples * 9 / 10 && got < wav_samples * 11 / 10 + 4800, "%s: %zu samples, the WAV %zu",
          f[i].fmt, got, wav_samples);
    CHECK(energy / (double)got > 1e-5, "%s: not silence (mean square %g)", f[i].fmt, energy / (double)got);
  }
}

static void t_speech_errors(void) {
  resp r;
  post_json("/v1/audio/speech", json_pack("{s:s}", "model", "speak"), &r);
  CHECK(is_error(&r, 400, "missing_required_parameter") && !strcmp(jstr(r.json, "error.param"), "input"),
        "missing input: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  char *big = malloc(4098);
  memset(big, 'a', 4097);
  big[4097] = '\0';
  post_json("/v1/audio/speech", speech_body(big, "wav"), &r);
  free(big);
  CHECK(is_error(&r, 400, "string_above_max_length"), "4097 characters: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/audio/speech", speech_body("hi", "ogg"), &r);
  CHECK(is_error(&r, 400, "invalid_value") && !strcmp(jstr(r.json, "error.param"), "response_format"),
        "unknown format: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/audio/speech", json_pack("{s:s, s:s}", "model", "chat", "input", "hi"), &r);
  CHECK(is_error(&r, 400, "wrong_capability"), "a chat model: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/audio/speech", json_pack("{s:s, s:s, s:s}", "model", "speak", "input", "hi", "voice", "no-such-voice"), &r);
  CHECK(is_error(&r, 400, "invalid_voice"), "unknown voice: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/audio/speech", json_pack("{s:s, s:s, s:f}", "model", "speak", "input", "hi", "speed", 5.0), &r);
  CHECK(is_error(&r, 400, "invalid_value"), "speed 5: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/chat/completions", json_pack("{s:s, s:[{s:s, s:s}]}", "model", "speak", "messages", "role", "user",
                                              "content", "hi"),
            &r);
  CHECK(is_error(&r, 400, "wrong_capability"), "chat with the voice: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* voices: OpenAI's names and espeak's languages, for the speak model */
  get("/v1/audio/voices", &r);
  bool en = false, alloy = false;
  size_t i, k;
  json_t *m, *v;
  json_array_foreach(json_object_get(r.json, "data"), i, m) {
    if (!jstr(m, "model") || strcmp(jstr(m, "model"), "speak") != 0) continue;
    json_array_foreach(json_object_get(m, "voices"), k, v) {
      en |= jstr(v, "id") && !strcmp(jstr(v, "id"), "en-us");
      alloy |= jstr(v, "id") && !strcmp(jstr(v, "id"), "alloy");
    }
  }
  CHECK(r.status == 200 && en && alloy, "voices: %ld %.300s", r.status, r.body.data);
  resp_clear(&r);
  /* every listed voice id speaks: a few of them, with a variant and a speed */
  const char *ok_voices[] = {"en-gb", "alloy", "en-us+f3", "de", "English (Great Britain)"};
  for (size_t q = 0; q < sizeof ok_voices / sizeof *ok_voices; q++) {
    speech_resp s;
    json_t *b = speech_body("Hello.", "pcm");
    json_object_set_new(b, "voice", json_string(ok_voices[q]));
    json_object_set_new(b, "speed", json_real(1.5));
    speech_post(&D, b, &s);
    size_t n = s.body.len;
    sy_buf_free(&s.body);
    CHECK(s.status == 200 && n > 1000, "voice %s: %ld, %zu bytes", ok_voices[q], s.status, n);
  }
}

/* A client that hangs up mid-stream cancels the synthesis (counted in /api/ps stats.cancelled);
 * the voice serves the next request at once. */
static size_t speech_hangup(char *p, size_t sz, size_t n, void *ud) {
  (void)p, (void)sz, (void)n, (void)ud;
  return 0; /* take nothing of the first piece: curl aborts the transfer */
}

static void t_speech_disconnect(void) {
  resp r;
  get("/api/ps", &r);
  long long before = jnum(r.json, "stats.cancelled");
  resp_clear(&r);
  char *s = json_dumps(speech_body(speech_long(), "pcm"), JSON_COMPACT);
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "%s/v1/audio/speech", D.base);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, s);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, speech_hangup);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode cc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  free(s);
  CHECK(cc == CURLE_WRITE_ERROR, "the client hung up after the first piece (%d)", (int)cc);
  long long after = before;
  for (int i = 0; i < 500 && after <= before; i++) { /* the daemon notices on its next write */
    get("/api/ps", &r);
    after = jnum(r.json, "stats.cancelled");
    resp_clear(&r);
    if (after <= before) usleep(10000);
  }
  CHECK(after == before + 1, "stats.cancelled %lld -> %lld", before, after);
  speech_resp p;
  speech_post(&D, speech_body(speech_text, "pcm"), &p);
  size_t n = p.body.len;
  sy_buf_free(&p.body);
  CHECK(p.status == 200 && n > 1000, "the next request: %ld, %zu bytes", p.status, n);
}

static void speech_off_body(void) {
  resp r;
  http_do(&B, "GET", "/v1/models", NULL, &r, NULL);
  bool has = r.body.data && strstr(r.body.data, "\"speak\"");
  resp_clear(&r);
  CHECK(!has, "builtin_voice: false lists no speak model");
  char *s = json_dumps(speech_body("hi", "wav"), JSON_COMPACT);
  http_do(&B, "POST", "/v1/audio/speech", s, &r, NULL);
  free(s);
  CHECK(is_error(&r, 404, "model_not_found"), "speak is unknown: %ld", r.status);
  resp_clear(&r);
}

/* ---- neural speech: a Pocket-TTS pair through mtmd's audio generator (docs/TTS.md) ---- */

/* A 2 s, 24 kHz, 16-bit sine: the reference clip of the `ref` voice. */
static void write_ref_wav(const char *path) {
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
  memcpy(h + 20, &v16[0], 2), memcpy(h + 22, &v16[1], 2), memcpy(h + 32, &v16[2], 2), memcpy(h + 34, &v16[3], 2);
  fwrite(h, 1, sizeof h, f);
  for (int i = 0; i < N; i++) {
    int16_t s = (int16_t)(8000.0 * sin(2.0 * 3.14159265358979 * 220.0 * i / RATE));
    fwrite(&s, 2, 1, f);
  }
  fclose(f);
}

static char *b64_encode(const void *data, size_t n);

/* The voice.audio of a request: a clip in tmpdir as a data: URL (voice cloning, voice_upload). */
static json_t *uploaded_voice_file(const char *name) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  sy_buf wav = {0};
  read_whole(path, &wav);
  char *b = b64_encode(wav.data, wav.len);
  json_t *v = json_pack("{s:s+}", "audio", "data:audio/wav;base64,", b);
  free(b);
  sy_buf_free(&wav);
  return v;
}

static json_t *pocket_body(const char *input, const char *format, const char *voice, int seed) {
  json_t *b = json_pack("{s:s, s:s, s:s, s:i}", "model", "pocket", "input", input, "response_format", format,
                        "seed", seed);
  if (voice) json_object_set_new(b, "voice", json_string(voice));
  return b;
}

static void t_speech_neural(void) {
  CHECK(have_pocket, "%s/tiny-pocket-mmproj.gguf is missing (tests/run.sh make_models writes it)", models_dir);
  resp r;
  get("/v1/models/pocket", &r);
  const json_t *caps = jpath(r.json, "capabilities");
  CHECK(r.status == 200 && json_array_size(caps) == 1 && !strcmp(json_string_value(json_array_get(caps, 0)), "speech"),
        "pocket has the speech capability only: %s", r.body.data);
  resp_clear(&r);
  static const char text[] = "Hello from a neural voice. This is the second sentence. And a third one.";
  speech_resp a, b, c;
  speech_post(&D, pocket_body(text, "wav", "ref", 7), &a);
  CHECK(a.status == 200, "status %ld: %.300s", a.status, a.body.data ? a.body.data : "");
  const unsigned char *data = NULL;
  size_t n = 0;
  char why[160] = "";
  bool ok = wav_parse(&a.body, &data, &n, why, sizeof why);
  size_t nz = 0;
  for (size_t i = 0; ok && i + 1 < n; i += 2) nz += data[i] || data[i + 1];
  CHECK(ok, "a WAV at 24 kHz: %s", why);
  /* every sentence gives at least a frame: 1920 samples of 2 bytes */
  CHECK(n >= 3 * 1920 * 2 && n % 2 == 0, "%zu bytes of 16-bit samples", n);
  CHECK(nz > n / 8, "not silence: %zu non-zero samples of %zu", nz, n / 2);
  CHECK(a.chunked && a.writes > 1, "streamed: chunked %d, %d pieces", a.chunked, a.writes);
  speech_post(&D, pocket_body(text, "wav", "ref", 7), &b);
  CHECK(b.status == 200 && b.body.len == a.body.len && memcmp(a.body.data, b.body.data, a.body.len) == 0,
        "the same seed twice: the same bytes (%zu vs %zu)", a.body.len, b.body.len);
  speech_post(&D, pocket_body(text, "wav", "ref", 8), &c);
  CHECK(c.status == 200 && (c.body.len != a.body.len || memcmp(a.body.data, c.body.data, a.body.len) != 0),
        "another seed: other audio");
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  sy_buf_free(&c.body);
  /* without the reference clip, as pcm */
  speech_post(&D, pocket_body("Short one.", "pcm", NULL, 1), &a);
  CHECK(a.status == 200 && a.body.len >= 1920 * 2, "pcm without a voice: %ld, %zu bytes", a.status, a.body.len);
  sy_buf_free(&a.body);
  post_json("/v1/audio/speech", pocket_body("hi", "wav", "nope", 1), &r);
  CHECK(is_error(&r, 400, "invalid_voice"), "unknown voice: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* a request's own reference clip (voice_upload: true): the voice changes the audio */
  json_t *up = pocket_body("Short one.", "pcm", NULL, 1);
  json_object_set_new(up, "voice", uploaded_voice_file("ref-voice.wav"));
  speech_post(&D, up, &b);
  speech_post(&D, pocket_body("Short one.", "pcm", NULL, 1), &a);
  CHECK(b.status == 200 && b.body.len >= 1920 * 2, "an uploaded voice: %ld %.200s", b.status, b.body.data);
  CHECK(a.status == 200 && (a.body.len != b.body.len || memcmp(a.body.data, b.body.data, a.body.len) != 0),
        "the uploaded clip was used: the audio differs from no voice at the same seed");
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  up = pocket_body("hi", "wav", NULL, 1);
  json_object_set_new(up, "voice", json_pack("{s:s}", "audio", "bm90IGF1ZGlvIGF0IGFsbA=="));
  post_json("/v1/audio/speech", up, &r);
  /* 415 without ffmpeg (an unknown format it might read), 400 with it */
  CHECK((is_error(&r, 400, "invalid_voice_audio") || is_error(&r, 415, "invalid_voice_audio")) &&
            strcmp(jstr(r.json, "error.param"), "voice") == 0,
        "a clip that is not audio: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  up = json_pack("{s:s, s:s, s:o}", "model", "speak", "input", "hi", "voice", uploaded_voice_file("ref-voice.wav"));
  post_json("/v1/audio/speech", up, &r);
  CHECK(is_error(&r, 400, "voice_upload_disabled"), "a model without voice_upload: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  get("/v1/audio/voices", &r);
  bool listed = false;
  json_t *e;
  size_t i;
  json_array_foreach((json_t *)jpath(r.json, "data"), i, e) {
    if (strcmp(jstr(e, "model"), "pocket") != 0) continue;
    listed = json_array_size(jpath(e, "voices")) == 1 && !strcmp(jstr(json_array_get(jpath(e, "voices"), 0), "id"), "ref");
  }
  CHECK(listed, "/v1/audio/voices lists pocket's ref: %s", r.body.data);
  resp_clear(&r);
}

static void t_speech_builtin_off(void) { with_own_daemon("speech_off", "log_level: warn\nbuiltin_voice: false\n", speech_off_body); }

/* ---- audio input: input_audio parts through mtmd (tiny-alm: mkmodel --mmproj-kind audio, an
 * Ultravox-style projector: every started 30 s window of audio is exactly 375 tokens) ---- */

#define ALM_WINDOW_TOKENS 375

static char *b64_encode(const void *data, size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = data;
  char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    *q++ = tbl[v >> 18 & 63];
    *q++ = tbl[v >> 12 & 63];
    *q++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
    *q++ = i + 2 < n ? tbl[v & 63] : '=';
  }
  *q = '\0';
  return o;
}

/* A user message with the text and then one input_audio part per base64 string (NULL-ended). */
static json_t *audio_body(const char *model, const char *text, const char *const *b64s) {
  json_t *parts = json_pack("[{s:s, s:s}]", "type", "text", "text", text);
  for (size_t i = 0; b64s && b64s[i]; i++)
    json_array_append_new(parts, json_pack("{s:s, s:{s:s, s:s}}", "type", "input_audio", "input_audio", "data",
                                           b64s[i], "format", "wav"));
  return json_pack("{s:s, s:[{s:s, s:o}], s:i, s:f, s:i}", "model", model, "messages", "role", "user", "content",
                   parts, "max_tokens", 6, "temperature", 0.0, "seed", 7);
}

static bool str_is(const char *s, const char *want) { return s && strcmp(s, want) == 0; }

static void t_audio_in(void) {
  CHECK(have_alm, "%s/tiny-alm-mmproj.gguf is missing (tests/run.sh make_models writes it)", models_dir);
  if (!have_alm) return;
  sy_buf w1 = {0}, w31 = {0};
  make_wav(&w1, 1.0);   /* one 30 s window */
  make_wav(&w31, 31.0); /* two */
  char *a1 = b64_encode(w1.data, w1.len), *a31 = b64_encode(w31.data, w31.len);
  char *url = malloc(strlen(a1) + 32);
  sprintf(url, "data:audio/wav;base64,%s", a1);
  resp r;
  get("/v1/models/alm", &r);
  bool audio = false, transcribe = false;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(r.json, "capabilities"), i, c) {
    audio |= str_is(json_string_value(c), "audio");
    transcribe |= str_is(json_string_value(c), "transcribe");
  }
  CHECK(r.status == 200 && audio && transcribe, "alm lists audio and transcribe: %ld %s", r.status, r.body.data);
  resp_clear(&r);

  post_json("/v1/chat/completions", audio_body("alm", "What is said?", NULL), &r);
  long long pt0 = jnum(r.json, "usage.prompt_tokens");
  CHECK(r.status == 200 && pt0 > 3, "text only: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  const char *one[] = {a1, NULL}, *long1[] = {a31, NULL}, *two[] = {a1, url, NULL};
  post_json("/v1/chat/completions", audio_body("alm", "What is said?", one), &r);
  CHECK(r.status == 200 && jnum(r.json, "usage.completion_tokens") > 0, "1 s of audio: %ld %s", r.status, r.body.data);
  CHECK(jnum(r.json, "usage.prompt_tokens") == pt0 + ALM_WINDOW_TOKENS, "1 s of audio adds %d prompt tokens: %lld -> %lld",
        ALM_WINDOW_TOKENS, pt0, jnum(r.json, "usage.prompt_tokens"));
  resp_clear(&r);
  /* 31 s: mtmd cuts it into two 30 s windows; two clips (one as a data: URL) */
  post_json("/v1/chat/completions", audio_body("alm", "What is said?", long1), &r);
  CHECK(r.status == 200 && jnum(r.json, "usage.prompt_tokens") == pt0 + 2 * ALM_WINDOW_TOKENS, "31 s of audio: %ld %s",
        r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/chat/completions", audio_body("alm", "What is said?", two), &r);
  CHECK(r.status == 200 && jnum(r.json, "usage.prompt_tokens") == pt0 + 2 * ALM_WINDOW_TOKENS, "two clips: %ld %s",
        r.status, r.body.data);
  resp_clear(&r);
  /* streamed */
  json_t *sb = audio_body("alm", "What is said?", one);
  json_object_set_new(sb, "stream", json_true());
  post_json("/v1/chat/completions", sb, &r);
  bool done, wf;
  json_t *ev = sse_events(&r.body, &done, &wf);
  CHECK(r.status == 200 && done && wf && json_array_size(ev) > 1, "streamed: %ld %s", r.status, r.body.data);
  json_decref(ev);
  resp_clear(&r);

  /* refused: audio to a text-only or a vision-only model, bad base64, not audio, an empty WAV */
  post_json("/v1/chat/completions", audio_body("chat", "x", one), &r);
  CHECK(is_error(&r, 400, "unsupported_content"), "text-only model: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  if (have_vlm) {
    post_json("/v1/chat/completions", audio_body("vlm", "x", one), &r);
    CHECK(is_error(&r, 400, "unsupported_content"), "vision-only model: %ld %s", r.status, r.body.data);
    resp_clear(&r);
  }
  const char *badb64[] = {"UklGR*==", NULL}, *junk[] = {"aGVsbG8sIHdvcmxkLCB0aGlzIGlzIG5vdCBhdWRpbw==", NULL};
  post_json("/v1/chat/completions", audio_body("alm", "x", badb64), &r);
  CHECK(is_error(&r, 400, "invalid_audio"), "bad base64: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_json("/v1/chat/completions", audio_body("alm", "x", junk), &r);
  CHECK(is_error(&r, 400, "invalid_audio"), "not audio: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  char *hdr = b64_encode(w1.data, 44); /* a WAV header with no samples after it */
  const char *empty[] = {hdr, NULL};
  post_json("/v1/chat/completions", audio_body("alm", "x", empty), &r);
  CHECK(is_error(&r, 400, "invalid_audio"), "truncated WAV: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* a marker typed by the user does not match: refused by the worker, not crashed */
  post_json("/v1/chat/completions", audio_body("alm", "two <__media__> here", one), &r);
  CHECK(is_error(&r, 400, NULL), "stray marker: %ld %s", r.status, r.body.data);
  resp_clear(&r);

  /* /v1/audio/transcriptions with the audio LLM: a chat with its transcribe_prompt */
  const char *path = "/v1/audio/transcriptions";
  post_form(path, w1.data, w1.len, (const char *const[]){"model", "alm", NULL}, &r);
  CHECK(r.status == 200 && jstr(r.json, "text") && str_is(jstr(r.json, "usage.type"), "tokens"),
        "transcription (json): %ld %s", r.status, r.body.data);
  CHECK(jnum(r.json, "usage.input_tokens") > ALM_WINDOW_TOKENS && jnum(r.json, "usage.output_tokens") > 0,
        "transcription usage: %s", r.body.data);
  resp_clear(&r);
  post_form(path, w1.data, w1.len, (const char *const[]){"model", "alm", "response_format", "text", NULL}, &r);
  CHECK(r.status == 200 && r.body.len > 0 && r.body.data[r.body.len - 1] == '\n', "transcription (text): %ld %s",
        r.status, r.body.data);
  resp_clear(&r);
  post_form(path, w1.data, w1.len, (const char *const[]){"model", "alm", "response_format", "srt", NULL}, &r);
  CHECK(is_error(&r, 400, "unsupported_parameter"), "srt from an LLM: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_form("/v1/audio/translations", w1.data, w1.len, (const char *const[]){"model", "alm", NULL}, &r);
  CHECK(is_error(&r, 400, "wrong_capability"), "translation by an LLM: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  post_form(path, w1.data, w1.len, (const char *const[]){"model", "chat", NULL}, &r);
  CHECK(is_error(&r, 400, "wrong_capability"), "transcription by a text model: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* and the model still serves */
  post_json("/v1/chat/completions", audio_body("alm", "What is said?", one), &r);
  CHECK(r.status == 200 && jnum(r.json, "usage.prompt_tokens") == pt0 + ALM_WINDOW_TOKENS, "after errors: %ld %s",
        r.status, r.body.data);
  resp_clear(&r);
  free(hdr);
  free(url);
  free(a1);
  free(a31);
  sy_buf_free(&w1);
  sy_buf_free(&w31);
}

/* One verbose_json transcription by the Parakeet model, checked for shape: status, non-empty
 * text, 11 s, segments in order inside the audio whose texts make the text, words in order. */
static void parakeet_once(const sy_buf *wav, const char *vad, json_t **out) {
  resp r;
  *out = NULL;
  post_form("/v1/audio/transcriptions", wav->data, wav->len,
            (const char *[]){"model", "parakeet", "response_format", "verbose_json", "vad", vad,
                             "timestamp_granularities[]", "word", "timestamp_granularities[]", "segment", NULL},
            &r);
  CHECK(r.status == 200, "vad=%s: %ld %s", vad, r.status, r.body.data);
  const char *text = jstr(r.json, "text");
  CHECK(text && *text, "vad=%s: the random model says something on jfk.wav: %s", vad, r.body.data);
  double dur = json_number_value(jpath(r.json, "duration"));
  CHECK(fabs(dur - 11.0) < 0.01 && strcmp(jstr(r.json, "task"), "transcribe") == 0, "vad=%s: %s", vad, r.body.data);
  json_t *segs = json_object_get(r.json, "segments"), *words = json_object_get(r.json, "words"), *s;
  CHECK(json_array_size(segs) > 0 && json_array_size(words) > 0, "vad=%s: segments and words: %s", vad, r.body.data);
  sy_buf joined = {0};
  size_t i;
  double prev = 0;
  json_array_foreach(segs, i, s) {
    double a = json_number_value(json_object_get(s, "start")), b = json_number_value(json_object_get(s, "end"));
    const char *t = jstr(s, "text");
    CHECK(jnum(s, "id") == (long long)i && t && a >= prev && b >= a && b <= dur + 1e-6, "vad=%s: segment %zu: %s", vad,
          i, r.body.data);
    sy_buf_puts(&joined, t);
    prev = b;
  }
  const char *jt = joined.data ? joined.data : "";
  while (*jt == ' ') jt++;
  bool same = strcmp(jt, text) == 0;
  sy_buf_free(&joined);
  CHECK(same, "vad=%s: the segments do not make the text: %s", vad, r.body.data);
  prev = 0;
  json_array_foreach(words, i, s) {
    double a = json_number_value(json_object_get(s, "start")), b = json_number_value(json_object_get(s, "end"));
    const char *w = jstr(s, "word");
    CHECK(w && *w && !strchr(w, ' ') && a >= prev && b >= a && b <= dur + 1e-6, "vad=%s: word %zu: %s", vad, i,
          r.body.data);
    prev = a;
  }
  *out = json_incref(r.json);
  resp_clear(&r);
}

/* whisper.cpp's tiny random Parakeet-TDT (vocabulary 10) through engine: whisper, on jfk.wav:
 * the same text twice; fixed windows (vad=false) and the Silero VAD's speech as windows */
static void t_transcribe_parakeet(void) {
  char p[600];
  snprintf(p, sizeof p, "%s/jfk.wav", testdata_dir);
  sy_buf wav = {0};
  CHECK(read_whole(p, &wav), "read %s", p);
  json_t *a, *b, *v;
  parakeet_once(&wav, "false", &a);
  if (!cur_failed) parakeet_once(&wav, "false", &b);
  if (cur_failed) {
    sy_buf_free(&wav);
    json_decref(a);
    return;
  }
  bool same = json_equal(json_object_get(a, "segments"), json_object_get(b, "segments")) &&
              json_equal(json_object_get(a, "words"), json_object_get(b, "words"));
  char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);
  json_decref(a);
  json_decref(b);
  CHECK(same, "two runs differ:\n%s\n%s", ta, tb);
  free(ta);
  free(tb);
  parakeet_once(&wav, "true", &v); /* the VAD's speech windows: each segment inside one */
  if (cur_failed) {
    sy_buf_free(&wav);
    return;
  }
  json_t *sp = json_object_get(v, "speech_segments"), *s;
  size_t i;
  json_array_foreach(json_object_get(v, "segments"), i, s) {
    double s0 = json_number_value(json_object_get(s, "start")), s1 = json_number_value(json_object_get(s, "end"));
    bool inside = false;
    for (size_t k = 0; k < json_array_size(sp); k++) {
      const json_t *e = json_array_get(sp, k);
      inside |= s0 >= json_number_value(json_object_get(e, "start")) - 0.011 &&
                s1 <= json_number_value(json_object_get(e, "end")) + 0.011;
    }
    CHECK(inside && json_array_size(sp) == 4, "segment %zu (%.2f-%.2f) outside the speech", i, s0, s1);
  }
  json_decref(v);
  resp r;
  post_form("/v1/audio/transcriptions", wav.data, wav.len,
            (const char *[]){"model", "parakeet", "response_format", "srt", NULL}, &r);
  char why[200] = "";
  CHECK(r.status == 200 && check_subtitles(r.body.data ? r.body.data : "", true, why, sizeof why) > 0, "srt: %ld %s %s",
        r.status, why, r.body.data);
  resp_clear(&r);
  post_form("/v1/audio/translations", wav.data, wav.len, (const char *[]){"model", "parakeet", NULL}, &r);
  sy_buf_free(&wav);
  CHECK(is_error(&r, 400, "wrong_capability"), "translation: %ld %s", r.status, r.body.data);
  resp_clear(&r);
}


/* ---- external engines (engine: external): llama-server from the engine cache as a third-party
 * server behind the proxy. Skipped when --engines (or SWITCHYARD_ENGINES) does not hold it. ---- */

static char llama_server[4200];

static bool ext_skip(void) {
  if (llama_server[0] && access(llama_server, X_OK) == 0) return false;
  snprintf(cur_skip, sizeof cur_skip, "llama-server not found (pass --engines DIR or SWITCHYARD_ENGINES)");
  return true;
}

/* A model entry running llama-server on tiny-qwen2 (one slot), with extra lines for `external:`. */
static void ext_llama_entry(sy_buf *y, const char *name, const char *model_extra, const char *ext_extra) {
  sy_buf_printf(y,
                "  - name: %s\n    engine: external\n%s"
                "    external:\n      argv: [%s, -m, %s/tiny-qwen2.gguf, --host, 127.0.0.1, --port, '${PORT}',\n"
                "             -c, '4096', -np, '1', -t, '2']\n"
                "      health: {path: /health, status: 200, timeout: 120s}\n"
                "      routes: [/v1/chat/completions, /v1/completions, /v1/audio/transcriptions]\n"
                "      stop_grace: 5s\n%s",
                name, model_extra ? model_extra : "", llama_server, models_dir, ext_extra ? ext_extra : "");
}

static void with_ext_daemon(const char *name, const sy_buf *y, void (*body)(void)) {
  with_own_daemon(name, y->data, body);
}

static long long b_ps_pid(const char *name) {
  json_t *m = b_ps_model(name);
  long long pid = m ? jnum(m, "pid") : -1;
  json_decref(m);
  return pid;
}

static void ext_chat_body(void) {
  resp r;
  /* listed with the capabilities its routes imply, not started yet */
  http_do(&B, "GET", "/v1/models/ext", NULL, &r, NULL);
  CHECK(r.status == 200 && jstr(r.json, "capabilities.0") && strcmp(jstr(r.json, "capabilities.0"), "chat") == 0 &&
            strcmp(jstr(r.json, "status"), "unloaded") == 0,
        "model listed: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  b_chat(chat_body("ext", "Hello there", 8, false), &r);
  CHECK(r.status == 200 && jstr(r.json, "choices.0.message.content") &&
            jnum(r.json, "usage.completion_tokens") > 0,
        "chat through the proxy: %ld %s", r.status, r.body.data);
  CHECK(strcmp(r.model_hdr, "ext") == 0, "X-Switchyard-Model: '%s'", r.model_hdr);
  resp_clear(&r);
  long long pid = b_ps_pid("ext");
  CHECK(pid > 0, "/api/ps lists the engine with its pid");
  /* streamed: SSE chunks as llama-server sends them, ending in [DONE] */
  json_t *q = chat_body("ext", "Count to ten", 12, true);
  char *s = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  http_do(&B, "POST", "/v1/chat/completions", s, &r, NULL);
  free(s);
  bool done, wf;
  json_t *ev = sse_events(&r.body, &done, &wf);
  size_t nev = json_array_size(ev);
  json_decref(ev);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/event-stream", 17) == 0 && done && wf && nev >= 3,
        "stream: %ld '%s' done=%d well_formed=%d events=%zu", r.status, r.content_type, done, wf, nev);
  resp_clear(&r);
  /* completions: the other declared route */
  http_do(&B, "POST", "/v1/completions", "{\"model\":\"ext\",\"prompt\":\"Once\",\"max_tokens\":4}", &r, NULL);
  CHECK(r.status == 200 && jstr(r.json, "choices.0.text"), "completions: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* a route it does not declare, and pass-through */
  http_do(&B, "POST", "/v1/embeddings", "{\"model\":\"ext\",\"input\":\"x\"}", &r, NULL);
  CHECK(is_error(&r, 400, "wrong_capability"), "undeclared route: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  http_do(&B, "GET", "/upstream/ext/health", NULL, &r, NULL);
  CHECK(r.status == 200 && jstr(r.json, "status") && strcmp(jstr(r.json, "status"), "ok") == 0,
        "/upstream/ext/health: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  http_do(&B, "GET", "/upstream/ext/v1/models?limit=5&x=a%20b", NULL, &r, NULL);
  CHECK(r.status == 200 && json_is_array(json_object_get(r.json, "data")), "/upstream/ext/v1/models: %ld %s",
        r.status, r.body.data);
  resp_clear(&r);
  http_do(&B, "POST", "/upstream/ext/tokenize", "{\"content\":\"hello world\"}", &r, NULL);
  CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "tokens")) >= 1, "POST through /upstream: %ld %s",
        r.status, r.body.data);
  resp_clear(&r);
  /* a multipart body is dispatched by its model field: llama-server's own refusal comes back (501: a
   * model without audio input; 404 where a build lacks the endpoint), not a Switchyard error */
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
    curl_easy_setopt(mc, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(mc, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(mc, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(mc, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(mc, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(mc) == CURLE_OK) curl_easy_getinfo(mc, CURLINFO_RESPONSE_CODE, &r.status);
    curl_mime_free(mime);
    curl_easy_cleanup(mc);
    bool relayed = (r.status == 501 || r.status == 404) && strcmp(r.model_hdr, "ext") == 0;
    long mst = r.status;
    char mh[128];
    snprintf(mh, sizeof mh, "%s", r.model_hdr);
    resp_clear(&r);
    CHECK(relayed, "multipart dispatched to the engine: %ld, X-Switchyard-Model '%s'", mst, mh);
  }
  http_do(&B, "GET", "/upstream/ext/no/such/page", NULL, &r, NULL);
  CHECK(r.status == 404, "the upstream's own 404 is relayed: %ld", r.status);
  resp_clear(&r);
  http_do(&B, "GET", "/upstream/nobody/health", NULL, &r, NULL);
  CHECK(is_error(&r, 404, "model_not_found"), "unknown upstream: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  CHECK(b_ps_pid("ext") == pid, "the same process served everything");
  /* a client that hangs up mid-stream cancels the upstream transfer */
  http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  long long before = jnum(r.json, "stats.cancelled");
  resp_clear(&r);
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "%s/v1/chat/completions", B.base);
  const char *lb = "{\"model\":\"ext\",\"messages\":[{\"role\":\"user\",\"content\":\"Go on\"}],\"max_tokens\":3000,"
                   "\"ignore_eos\":true,\"stream\":true}";
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  abort_ctx a = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, lb);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, abort_after_first);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  CHECK(rc == CURLE_WRITE_ERROR, "the client aborted (curl %d)", rc);
  /* one slot: this only runs once llama-server has let go of the abandoned stream */
  b_chat(chat_body("ext", "Next", 4, false), &r);
  CHECK(r.status == 200, "next request %ld %s", r.status, r.body.data);
  resp_clear(&r);
  long long after = -1;
  for (int tries = 0; tries < 100000 && after <= before; tries++) { /* counted as the handler returns */
    http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
    after = jnum(r.json, "stats.cancelled");
    resp_clear(&r);
  }
  CHECK(after > before, "the abandoned stream was counted as cancelled (%lld -> %lld)", before, after);
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
  CHECK(budget_request("ea") == 200, "ea starts");
  long long pa = b_ps_pid("ea");
  CHECK(pa > 0 && b_ps_pid("eb") < 0, "ea resident alone (pid %lld)", pa);
  CHECK(budget_request("eb") == 200, "eb starts, evicting ea");
  long long pb = b_ps_pid("eb");
  CHECK(pb > 0 && b_ps_pid("ea") < 0, "eb resident, ea gone from /api/ps");
  CHECK(pid_gone(pa), "ea's process %lld is gone (process group killed and reaped)", pa);
  CHECK(budget_request("ea") == 200, "ea starts again on the next request");
  long long pa2 = b_ps_pid("ea");
  CHECK(pa2 > 0 && pa2 != pa && b_ps_pid("eb") < 0 && pid_gone(pb), "ea restarted (pid %lld), eb evicted", pa2);
}

static void t_ext_evict(void) {
  if (ext_skip()) return;
  sy_buf y = {0};
  sy_buf_puts(&y, "log_level: warn\nbuiltin_voice: false\nmemory: {budget: 1GiB}\nscheduling: {swap_guard: 0}\n"
                  "models:\n");
  ext_llama_entry(&y, "ea", NULL, "      memory: 600MiB\n");
  ext_llama_entry(&y, "eb", NULL, "      memory: 600MiB\n");
  with_ext_daemon("ext_evict", &y, ext_evict_body);
  sy_buf_free(&y);
}

static void ext_fail_body(void) {
  resp r;
  /* alive but never healthy: the health timeout, naming the model, its check and its output */
  b_chat(chat_body("deaf", "hi", 2, false), &r);
  const char *msg = jstr(r.json, "error.message");
  CHECK(is_error(&r, 500, "load_timeout") && strstr(msg, "'deaf'") && strstr(msg, "GET /health") &&
            strstr(msg, "deaf-engine-says-hello"),
        "never healthy: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  CHECK(b_ps_pid("deaf") < 0, "nothing of it stays resident");
  /* exits during start-up: its status and its last words */
  b_chat(chat_body("dies", "hi", 2, false), &r);
  msg = jstr(r.json, "error.message");
  CHECK(is_error(&r, 500, "load_failed") && strstr(msg, "'dies'") && strstr(msg, "exited with status 3") &&
            strstr(msg, "no-gpu-for-me"),
        "exits at start: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  /* a program that does not exist */
  b_chat(chat_body("nothere", "hi", 2, false), &r);
  msg = jstr(r.json, "error.message");
  CHECK(r.status == 500 && msg && strstr(msg, "'nothere'") && strstr(msg, "No such file"), "missing program: %ld %s",
        r.status, r.body.data);
  resp_clear(&r);
  http_do(&B, "GET", "/health", NULL, &r, NULL);
  CHECK(r.status == 200, "daemon still up");
  resp_clear(&r);
}

static void t_ext_fail(void) {
  char y[2048];
  snprintf(y, sizeof y,
           "log_level: warn\nbuiltin_voice: false\nmodels:\n"
           "  - name: deaf\n    engine: external\n    external:\n"
           "      argv: ['echo deaf-engine-says-hello; exec sleep 600']\n      shell: true\n"
           "      health: {timeout: 2s}\n      stop_grace: 0\n      routes: [/v1/chat/completions]\n"
           "  - name: dies\n    engine: external\n    external:\n"
           "      argv: ['echo no-gpu-for-me >&2; exit 3']\n      shell: true\n      routes: [/v1/chat/completions]\n"
           "  - name: nothere\n    engine: external\n    external:\n"
           "      argv: [/nonexistent/engine-binary, --port, '${PORT}']\n      routes: [/v1/chat/completions]\n");
  with_own_daemon("ext_fail", y, ext_fail_body);
}

static void *ext_long_stream(void *p) {
  bg_req *b = p;
  const char *lb = "{\"model\":\"ext\",\"messages\":[{\"role\":\"user\",\"content\":\"Go on\"}],\"max_tokens\":3500,"
                   "\"ignore_eos\":true,\"stream\":true}";
  http_do(&B, "POST", "/v1/chat/completions", lb, &b->r, NULL);
  return NULL;
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
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "%s/v1/chat/completions", B.base);
  const char *lb = "{\"model\":\"ext\",\"messages\":[{\"role\":\"user\",\"content\":\"Go on\"}],\"max_tokens\":3500,"
                   "\"ignore_eos\":true,\"stream\":true}";
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, lb);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mid_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, m);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  m->rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &m->status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  close(m->pfd[1]); /* wakes the test if no event ever came */
  return NULL;
}

/* Killed while streaming: the client gets the events so far, then an error event, then a clean end. */
static void ext_mid_stream_kill(void) {
  mid_stream m = {0};
  CHECK(pipe(m.pfd) == 0, "pipe");
  pthread_t th;
  pthread_create(&th, NULL, mid_main, &m);
  char x;
  ssize_t got = read(m.pfd[0], &x, 1); /* the first event has arrived (or the request ended) */
  close(m.pfd[0]);
  long long pid = b_ps_pid("ext");
  if (got == 1 && pid > 0) kill((pid_t)pid, SIGKILL);
  pthread_join(th, NULL);
  bool done = false, wf = false;
  json_t *ev = sse_events(&m.body, &done, &wf);
  size_t n = json_array_size(ev);
  const char *code = jstr(json_array_get(ev, n ? n - 1 : 0), "error.code");
  bool ok = got == 1 && pid > 0 && m.rc == CURLE_OK && m.status == 200 && wf && !done && n >= 2 && code &&
            strcmp(code, "upstream_crashed") == 0;
  json_decref(ev);
  CHECK(ok, "mid-stream kill: got=%zd pid=%lld curl=%d status=%ld well_formed=%d done=%d events=%zu: %.300s", got,
        pid, m.rc, m.status, wf, done, n, m.body.data ? m.body.data : "");
  sy_buf_free(&m.body);
}

static void ext_crash_body(void) {
  resp r;
  b_chat(chat_body("ext", "warm up", 2, false), &r);
  CHECK(r.status == 200, "warm-up %ld %s", r.status, r.body.data);
  resp_clear(&r);
  bg_req b;
  pthread_t th;
  pthread_create(&th, NULL, ext_long_stream, &b);
  long long pid = -1;
  for (int tries = 0; tries < 100000 && pid < 0; tries++) {
    json_t *m = b_ps_model("ext");
    if (m && jnum(m, "inflight") >= 1) pid = jnum(m, "pid");
    json_decref(m);
  }
  if (pid > 0) kill((pid_t)pid, SIGKILL);
  pthread_join(th, NULL);
  CHECK(pid > 0, "the long request never showed as in flight");
  /* before the upstream answered: a 502; mid-stream: an error event ends the stream, no [DONE] */
  bool done = false, wf = false;
  json_t *ev = b.r.status == 200 ? sse_events(&b.r.body, &done, &wf) : NULL;
  json_t *last = json_array_get(ev, json_array_size(ev) ? json_array_size(ev) - 1 : 0);
  const char *code = jstr(last, "error.code");
  bool ok = (b.r.status == 200 && !done && code && strcmp(code, "upstream_crashed") == 0) ||
            is_error(&b.r, 502, "upstream_crashed");
  json_decref(ev);
  CHECK(ok, "in-flight request: %ld %.300s", b.r.status, b.r.body.data ? b.r.body.data : "");
  resp_clear(&b.r);
  http_do(&B, "GET", "/health", NULL, &r, NULL);
  CHECK(r.status == 200, "daemon still up");
  resp_clear(&r);
  b_chat(chat_body("ext", "after the crash", 4, false), &r);
  CHECK(r.status == 200, "the next request restarts it: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  long long pid2 = b_ps_pid("ext");
  CHECK(pid2 > 0 && pid2 != pid, "a new process (%lld, was %lld)", pid2, pid);
  ext_mid_stream_kill();
  if (cur_failed) return;
  b_chat(chat_body("ext", "after the second crash", 4, false), &r);
  CHECK(r.status == 200, "restarted again: %ld %s", r.status, r.body.data);
  resp_clear(&r);
}

static void t_ext_crash(void) {
  if (ext_skip()) return;
  sy_buf y = {0};
  sy_buf_puts(&y, "log_level: warn\nbuiltin_voice: false\nmodels:\n");
  ext_llama_entry(&y, "ext", NULL, NULL);
  with_ext_daemon("ext_crash", &y, ext_crash_body);
  sy_buf_free(&y);
}

/* Live (not zombie) processes of process group pgrp, from /proc, into out (at most cap); how many. */
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
    if (rp && sscanf(rp + 1, " %c %lld %lld", &state, &ppid, &pg) == 3 && pg == pgrp && state != 'Z') out[n++] = pid;
  }
  if (d) closedir(d);
  return n;
}

static void ext_group_body(void) {
  resp r;
  b_chat(chat_body("grp", "hello", 2, false), &r);
  CHECK(r.status == 200, "through a shell launcher: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  json_t *m = b_ps_model("grp");
  long long leader = m ? jnum(m, "pid") : -1, measured = m ? jnum(m, "size_measured") : -1;
  json_decref(m);
  long long members[16];
  size_t n = group_members(leader, members, 16);
  CHECK(leader > 0 && n >= 3, "the shell (pid %lld), llama-server and the helper share a group: %zu members",
        leader, n);
  /* the group is measured, not the shell alone (a few MiB): llama-server holds tens of MiB */
  CHECK(measured > (24LL << 20), "measured %lld bytes for the group", measured);
  int pfd[16];
  for (size_t i = 0; i < n; i++) pfd[i] = (int)syscall(SYS_pidfd_open, (pid_t)members[i], 0);
  http_do(&B, "POST", "/api/unload", "{\"model\":\"grp\"}", &r, NULL);
  long st = r.status;
  resp_clear(&r);
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
  /* cwd and env (${PORT} substituted there too) reach the program; no exec: the shell stays the group's leader and llama-server is its child; a helper that
   * ignores SIGTERM would outlive the stop signal: only the group kill at the leader's exit ends it */
  snprintf(y, sizeof y,
           "log_level: warn\nbuiltin_voice: false\nmodels:\n"
           "  - name: grp\n    engine: external\n    external:\n"
           "      argv: ['(trap \"\" TERM; exec sleep 600) & %s -m tiny-qwen2.gguf --host 127.0.0.1 --port $SY_PORT -c 512 -np 1 -t 2; echo ended']\n"
           "      shell: true\n      cwd: %s\n      env: {SY_PORT: '${PORT}'}\n"
           "      routes: [/v1/chat/completions]\n      stop_grace: 30s\n",
           llama_server, models_dir);
  with_own_daemon("ext_group", y, ext_group_body);
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
                "      argv: [%s, -m, %s/tiny-qwen2.gguf, --host, 127.0.0.1, --port, '${PORT}', -c, '512', -t, '%s']\n"
                "      routes: [/v1/chat/completions]\n",
                llama_server, models_dir, chg_threads);
}

static void ext_reload_body(void) {
  CHECK(b_load("same") == 200 && b_load("chg") == 200, "both start");
  long long same_pid = b_ps_pid("same"), chg_pid = b_ps_pid("chg");
  feed f = {.d = &B, .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
            .until = {"\"type\":\"reloaded\"", "\"type\":\"unloaded\",\"model\":\"chg\""}};
  pthread_t fth;
  feed_start(&f, &fth);
  sy_buf y = {0};
  ext_reload_yaml(&y, "1", "-1");
  write_file(ext_reload_cfg, y.data);
  sy_buf_free(&y);
  kill(B.pid, SIGHUP);
  pthread_join(fth, NULL);
  bool changed = f.body.data && strstr(f.body.data, "\"changed\":[\"chg\"]");
  sy_buf_free(&f.body);
  CHECK(changed, "the reloaded event names chg as changed");
  json_t *m = b_ps_model("same");
  long long exp = m ? jnum(m, "expires_in_s") : 0;
  CHECK(m && jnum(m, "pid") == same_pid && exp == -1, "same kept its process (%lld) and took keep_alive -1 (%lld)",
        same_pid, exp);
  json_decref(m);
  CHECK(pid_gone(chg_pid) || b_ps_pid("chg") != chg_pid, "chg's old process was stopped");
  resp r;
  b_chat(chat_body("chg", "hi", 2, false), &r);
  CHECK(r.status == 200, "chg under its new argv: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  long long np = b_ps_pid("chg");
  CHECK(np > 0 && np != chg_pid, "a new process for chg (%lld)", np);
}

static void t_ext_reload(void) {
  if (ext_skip()) return;
  sy_buf y = {0};
  ext_reload_yaml(&y, "2", "300");
  snprintf(ext_reload_cfg, sizeof ext_reload_cfg, "%s/ext_reload.yaml", tmpdir);
  with_own_daemon("ext_reload", y.data, ext_reload_body);
  sy_buf_free(&y);
}

typedef struct test {
  const char *name;
  void (*fn)(void);
  bool needs_testdata;
} test;

/* ---- routers: a virtual model whose requests go to one of several real models (router.c) ----
 * Own daemon: light = tiny-qwen2, heavy = tiny-qwen3, vision = tiny-vlm and audio = tiny-alm (when
 * made), and a model whose file is cut short (its load fails) for the fallback. */

typedef struct route_resp {
  resp r;
  char route[160], by[32];
} route_resp;

static size_t on_route_header(char *p, size_t sz, size_t n, void *ud) {
  route_resp *rr = ud;
  size_t len = sz * n;
  on_header(p, sz, n, &rr->r);
  const char *keys[] = {"x-switchyard-route:", "x-switchyard-route-by:"};
  char *dst[] = {rr->route, rr->by};
  size_t cap[] = {sizeof rr->route, sizeof rr->by};
  for (int k = 0; k < 2; k++) {
    size_t kl = strlen(keys[k]);
    if (len > kl && strncasecmp(p, keys[k], kl) == 0) {
      size_t v = kl, e = len;
      while (v < len && p[v] == ' ') v++;
      while (e > v && (p[e - 1] == '\r' || p[e - 1] == '\n')) e--;
      snprintf(dst[k], cap[k], "%.*s", (int)(e - v), p + v);
    }
  }
  return len;
}

/* POST body (stolen) to B's path, keeping the route headers. */
static void route_post(const char *path, json_t *body, route_resp *rr) {
  memset(rr, 0, sizeof *rr);
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  CURL *c = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s%s", B.base, path);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, s);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &rr->r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_route_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, rr);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rr->r.status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(s);
  if (rr->r.body.len) rr->r.json = json_loadb(rr->r.body.data, rr->r.body.len, 0, NULL);
}

static json_t *route_chat(const char *model, const char *system, const char *user) {
  json_t *msgs = json_array();
  if (system) json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", system));
  json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", user));
  return json_pack("{s:s, s:o, s:i}", "model", model, "messages", msgs, "max_tokens", 2);
}

/* The request went to router/route, chosen by `by`, and the answer names model (field and header). */
static bool routed(const route_resp *rr, const char *route, const char *by, const char *model) {
  const char *m = jstr(rr->r.json, "model");
  return rr->r.status == 200 && !strcmp(rr->route, route) && !strcmp(rr->by, by) && m && !strcmp(m, model) &&
         !strcmp(rr->r.model_hdr, model);
}

static void router_body(void) {
  route_resp rr;
  /* rules, in order: tools → heavy; a long prompt (>= 64 estimated tokens, 4 bytes each) → heavy;
   * a system-prompt tag → heavy; an image → vision (first rule) */
  json_t *q = route_chat("auto", NULL, "what is the weather?");
  json_object_set_new(q, "tools", json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                                             "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]", 0, NULL));
  route_post("/v1/chat/completions", q, &rr);
  CHECK(routed(&rr, "auto/heavy", "rule", "heavy"), "tools: %ld %s %s %s", rr.r.status, rr.route, rr.by,
        rr.r.body.data);
  resp_clear(&rr.r);
  char long_text[300];
  memset(long_text, 'a', sizeof long_text - 1);
  for (size_t i = 5; i < sizeof long_text - 1; i += 6) long_text[i] = ' ';
  long_text[sizeof long_text - 1] = '\0'; /* 299 bytes: 75 estimated tokens */
  route_post("/v1/chat/completions", route_chat("auto", NULL, long_text), &rr);
  CHECK(routed(&rr, "auto/heavy", "rule", "heavy"), "long prompt: %ld %s %s", rr.r.status, rr.route, rr.by);
  resp_clear(&rr.r);
  route_post("/v1/chat/completions", route_chat("auto", "Be thorough. #deep", "hi"), &rr);
  CHECK(routed(&rr, "auto/heavy", "rule", "heavy"), "system tag: %ld %s %s", rr.r.status, rr.route, rr.by);
  resp_clear(&rr.r);
  if (have_vlm) {
    char *u = data_url(png_5x4);
    route_post("/v1/chat/completions", vision_body("auto", "What is this?", (const char *[]){u, NULL}), &rr);
    free(u);
    CHECK(routed(&rr, "auto/vision", "rule", "vlm"), "image: %ld %s %s %s", rr.r.status, rr.route, rr.by,
          rr.r.body.data);
    resp_clear(&rr.r);
  }
  if (have_alm) {
    sy_buf w = {0};
    make_wav(&w, 1.0);
    char *a = b64_encode(w.data, w.len);
    route_post("/v1/chat/completions", audio_body("auto", "What is said?", (const char *[]){a, NULL}), &rr);
    free(a);
    sy_buf_free(&w);
    CHECK(routed(&rr, "auto/audio", "rule", "alm"), "audio: %ld %s %s %s", rr.r.status, rr.route, rr.by,
          rr.r.body.data);
    resp_clear(&rr.r);
  }

  /* no rule matches: the classifier (random weights, greedy, under a grammar of the route names)
   * always answers one of its routes, and that route's model serves */
  static const char *const asks[] = {"hello", "translate 'cat' to French", "2+2?", "write a poem about rust",
                                     "classify: spam or not"};
  int n_cls = 0;
  for (size_t i = 0; i < sizeof asks / sizeof *asks; i++) {
    route_post("/v1/chat/completions", route_chat("auto", NULL, asks[i]), &rr);
    bool ok = routed(&rr, "auto/light", "classifier", "light") || routed(&rr, "auto/heavy", "classifier", "heavy");
    CHECK(ok, "classifier on '%s': %ld %s %s model %s", asks[i], rr.r.status, rr.route, rr.by, rr.r.model_hdr);
    n_cls += ok;
    resp_clear(&rr.r);
  }
  /* /v1/completions too, streamed: every chunk names the model that serves */
  json_t *cq = json_pack("{s:s, s:s, s:i, s:b}", "model", "auto", "prompt", "Once upon", "max_tokens", 3, "stream", 1);
  route_post("/v1/completions", cq, &rr);
  bool done = false, wf = false;
  json_t *ev = sse_events(&rr.r.body, &done, &wf);
  const char *served = !strcmp(rr.route, "auto/heavy") ? "heavy" : "light";
  bool names = json_array_size(ev) > 0;
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) names &= jstr(e, "model") && !strcmp(jstr(e, "model"), served);
  CHECK(rr.r.status == 200 && done && wf && names && !strcmp(rr.by, "classifier") && !strcmp(rr.r.model_hdr, served),
        "streamed completion through the router: %ld %s %s", rr.r.status, rr.route, rr.by);
  json_decref(ev);
  resp_clear(&rr.r);

  /* a classifier that cannot answer in time: the default route */
  route_post("/v1/chat/completions", route_chat("hasty", NULL, "hello"), &rr);
  CHECK(routed(&rr, "hasty/heavy", "default", "heavy"), "classifier timeout → default: %ld %s %s", rr.r.status,
        rr.route, rr.by);
  resp_clear(&rr.r);

  /* fallback: the chosen route's model cannot be loaded, the next route serves; without fallback
   * the load error is the answer */
  route_post("/v1/chat/completions", route_chat("fb", NULL, "hello"), &rr);
  CHECK(routed(&rr, "fb/good", "fallback", "light"), "fallback: %ld %s %s %s", rr.r.status, rr.route, rr.by,
        rr.r.body.data);
  resp_clear(&rr.r);
  route_post("/v1/chat/completions", route_chat("nofb", NULL, "hello"), &rr);
  CHECK(rr.r.status >= 500 && jstr(rr.r.json, "error.code") && !strcmp(jstr(rr.r.json, "error.code"), "load_failed") &&
            !rr.route[0],
        "no fallback: the load error: %ld %s", rr.r.status, rr.r.body.data);
  resp_clear(&rr.r);
  /* no image rule: the default route's model has no vision, so the next route that takes images serves */
  if (have_vlm) {
    char *u = data_url(png_5x4);
    route_post("/v1/chat/completions", vision_body("mixed", "What is this?", (const char *[]){u, NULL}), &rr);
    free(u);
    CHECK(routed(&rr, "mixed/vision", "fallback", "vlm"), "image without a rule: %ld %s %s %s", rr.r.status,
          rr.route, rr.by, rr.r.body.data);
    resp_clear(&rr.r);
  }
  /* a request the chosen model refuses is refused, not passed on */
  q = route_chat("auto", NULL, "hi");
  json_object_set_new(q, "max_tokens", json_integer(-3));
  route_post("/v1/chat/completions", q, &rr);
  CHECK(rr.r.status == 400 && jstr(rr.r.json, "error.param") && !strcmp(jstr(rr.r.json, "error.param"), "max_tokens"),
        "a bad request through the router: %ld %s", rr.r.status, rr.r.body.data);
  resp_clear(&rr.r);

  /* listed by /v1/models, with its routes */
  resp r;
  http_do(&B, "GET", "/v1/models/auto", NULL, &r, NULL);
  CHECK(r.status == 200 && jstr(r.json, "owned_by") && !strcmp(jstr(r.json, "owned_by"), "switchyard-router") &&
            jstr(r.json, "routes.heavy") && !strcmp(jstr(r.json, "routes.heavy"), "heavy") &&
            !strcmp(jstr(r.json, "classifier") ?: "", "light"),
        "GET /v1/models/auto: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  http_do(&B, "GET", "/v1/models", NULL, &r, NULL);
  bool listed = false;
  json_array_foreach(json_object_get(r.json, "data"), i, e) listed |= !strcmp(jstr(e, "id") ?: "", "fb");
  CHECK(r.status == 200 && listed, "the routers are listed: %s", r.body.data);
  resp_clear(&r);

  /* counted: every decision above, by router, route and what chose it */
  http_do(&B, "GET", "/metrics", NULL, &r, NULL);
  const char *t = r.body.data ? r.body.data : "";
  double rule_heavy = metric(t, "switchyard_router_decisions_total{router=\"auto\",route=\"heavy\",by=\"rule\"}");
  double cls_l = metric(t, "switchyard_router_decisions_total{router=\"auto\",route=\"light\",by=\"classifier\"}");
  double cls_h = metric(t, "switchyard_router_decisions_total{router=\"auto\",route=\"heavy\",by=\"classifier\"}");
  double cls_n = metric(t, "switchyard_router_classifier_seconds_count{router=\"auto\"}");
  double fb = metric(t, "switchyard_router_decisions_total{router=\"fb\",route=\"good\",by=\"fallback\"}");
  double dflt = metric(t, "switchyard_router_decisions_total{router=\"hasty\",route=\"heavy\",by=\"default\"}");
  double fails = metric(t, "switchyard_router_classifier_failures_total{router=\"hasty\"}");
  /* the classifier decided the n_cls chats and the streamed completion; it also ran for the refused
   * request (timed, but no route served it) */
  CHECK(rule_heavy == 3 && (cls_l < 0 ? 0 : cls_l) + (cls_h < 0 ? 0 : cls_h) == n_cls + 1 && cls_n == n_cls + 2 &&
            fb == 1 && dflt == 1 && fails == 1,
        "router metrics: rule %g, classifier %g+%g (%d+1 wanted, %g timed), fallback %g, default %g, failures %g",
        rule_heavy, cls_l, cls_h, n_cls, cls_n, fb, dflt, fails);
  char out[2048];
  int pc = promtool_check(&r.body, out, sizeof out);
  CHECK(pc != 0, "promtool check metrics: %.900s", out);
  resp_clear(&r);
}

static void t_router(void) {
  char src[600], dst[600];
  snprintf(src, sizeof src, "%s/tiny-qwen2.gguf", models_dir);
  snprintf(dst, sizeof dst, "%s/router-broken.gguf", tmpdir);
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  CHECK(in && out, "copy");
  if (!in || !out) return;
  fseek(in, 0, SEEK_END);
  long left = ftell(in) - (4L << 20); /* the header stays whole, the last tensors are cut off: the load fails */
  fseek(in, 0, SEEK_SET);
  char buf[65536];
  while (left > 0) {
    size_t n = fread(buf, 1, (size_t)left < sizeof buf ? (size_t)left : sizeof buf, in);
    if (n == 0) break;
    fwrite(buf, 1, n, out);
    left -= (long)n;
  }
  fclose(in);
  fclose(out);
  const char *d = models_dir;
  char yaml[4096];
  int n = snprintf(yaml, sizeof yaml,
                   "log_level: warn\n"
                   "models:\n"
                   "  - {name: light, file: %s/tiny-qwen2.gguf, context: 512, parallel: 1, keep_alive: -1}\n"
                   "  - {name: heavy, file: %s/tiny-qwen3.gguf, context: 512, parallel: 1, keep_alive: -1}\n"
                   "  - {name: broken, file: %s, context: 256, parallel: 1}\n",
                   d, d, dst);
  if (have_vlm)
    n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                  "  - {name: vlm, file: %s/tiny-vlm.gguf, mmproj: %s/tiny-vlm-mmproj.gguf,\n"
                  "     context: 512, parallel: 1}\n",
                  d, d);
  if (have_alm)
    n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                  "  - {name: alm, file: %s/tiny-alm.gguf, mmproj: %s/tiny-alm-mmproj.gguf,\n"
                  "     context: 1024, parallel: 1}\n",
                  d, d);
  snprintf(yaml + n, sizeof yaml - (size_t)n,
           "routers:\n"
           "  - name: auto\n"
           "    routes: {light: light, heavy: heavy%s%s}\n"
           "    rules:\n"
           "%s%s"
           "      - {tools: true, route: heavy}\n"
           "      - {min_prompt_tokens: 64, route: heavy}\n"
           "      - {system_tag: '#deep', route: heavy}\n"
           "    classifier: {model: light, routes: [light, heavy], timeout_ms: 120000, max_input_chars: 200}\n"
           "    default: light\n"
           "  - {name: hasty, routes: {light: light, heavy: heavy}, default: heavy,\n"
           "     classifier: {model: light, timeout_ms: 1}}\n"
           "  - {name: fb, routes: {bad: broken, good: light}, default: bad, fallback: true}\n"
           "  - {name: nofb, routes: {bad: broken, good: light}, default: bad}\n"
           "%s",
           have_vlm ? ", vision: vlm" : "", have_alm ? ", audio: alm" : "",
           have_vlm ? "      - {images: true, route: vision}\n" : "",
           have_alm ? "      - {audio: true, route: audio}\n" : "",
           have_vlm ? "  - {name: mixed, routes: {text: light, vision: vlm}, default: text, fallback: true}\n" : "");
  with_own_daemon("router", yaml, router_body);
}

/* whisper.cpp's own whisper-server (deps/whisper-server.sh) as an external engine: transcription
 * through the proxy, dispatched by the multipart form's model field, answered by whisper-server
 * itself (its JSON and SRT), one process for both requests; unloaded on request. */
static char whisper_server[4200];

static void ext_whisper_body(void) {
  sy_buf wav = {0};
  make_wav(&wav, 3.0);
  resp r;
  post_form_at(&B, "/v1/audio/transcriptions", wav.data, wav.len,
               (const char *const[]){"model", "wsrv", "response_format", "json", NULL}, &r);
  CHECK(r.status == 200 && json_is_string(json_object_get(r.json, "text")) && strcmp(r.model_hdr, "wsrv") == 0,
        "json through the proxy: %ld '%s' %s", r.status, r.model_hdr, r.body.data);
  resp_clear(&r);
  long long pid = b_ps_pid("wsrv");
  CHECK(pid > 0, "whisper-server runs: pid %lld", pid);
  post_form_at(&B, "/v1/audio/transcriptions", wav.data, wav.len,
               (const char *const[]){"model", "wsrv", "response_format", "srt", NULL}, &r);
  CHECK(r.status == 200 && !r.json && b_ps_pid("wsrv") == pid, "srt from the same process: %ld %s", r.status,
        r.body.data);
  resp_clear(&r);
  post_form_at(&B, "/v1/audio/transcriptions", wav.data, wav.len,
               (const char *const[]){"model", "nobody", NULL}, &r);
  CHECK(is_error(&r, 404, "model_not_found"), "an unknown model: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  http_do(&B, "POST", "/api/unload", "{\"model\":\"wsrv\"}", &r, NULL);
  CHECK(r.status == 200 && kill((pid_t)pid, 0) != 0, "unloaded: %ld, the process is gone", r.status);
  resp_clear(&r);
  sy_buf_free(&wav);
}

static void t_ext_whisper(void) {
  if (!whisper_server[0] || access(whisper_server, X_OK) != 0) {
    snprintf(cur_skip, sizeof cur_skip, "whisper-server not found (deps/whisper-server.sh; pass --engines DIR)");
    return;
  }
  char y[8192];
  snprintf(y, sizeof y,
           "log_level: warn\nbuiltin_voice: false\nmodels:\n"
           "  - name: wsrv\n    engine: external\n    external:\n"
           "      argv: [%s, -m, %s/tiny-whisper.bin, --host, 127.0.0.1, --port, '${PORT}', -t, '2',\n"
           "             --inference-path, /v1/audio/transcriptions]\n"
           "      health: {path: /health, status: 200, timeout: 120s}\n"
           "      routes: [/v1/audio/transcriptions]\n      stop_grace: 5s\n",
           whisper_server, models_dir);
  with_own_daemon("ext_whisper", y, ext_whisper_body);
}

/* ---- pipelines (pipeline.c): transcribe-and-clean and voice turns on a daemon of their own:
 * tiny-whisper (random weights: junk text) as asr, tiny-qwen2 as llm, the built-in espeak voice
 * as tts; a whisper file that cannot load for the failing step ---- */

static unsigned char *b64_decode(const char *s, size_t *n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t len = s ? strlen(s) : 0;
  unsigned char *o = malloc(len / 4 * 3 + 3);
  *n = 0;
  for (size_t i = 0; o && i + 3 < len; i += 4) {
    unsigned v = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      const char *pos = strchr(tbl, s[i + k]);
      if (s[i + k] == '=') pad++;
      v = v << 6 | (pos && s[i + k] != '=' ? (unsigned)(pos - tbl) : 0);
    }
    o[(*n)++] = (unsigned char)(v >> 16);
    if (pad < 2) o[(*n)++] = (unsigned char)(v >> 8);
    if (pad < 1) o[(*n)++] = (unsigned char)v;
  }
  return o;
}

static void pipe_config(char *out, size_t cap) {
  char junk[600], alm[1200] = "";
  snprintf(junk, sizeof junk, "%s/junk-whisper.bin", tmpdir);
  write_file(junk, "lmgg: the magic is right, the rest is not a whisper model at all");
  setenv("GGML_NO_BACKTRACE", "1", 1); /* its worker aborts: no gdb backtrace in the log */
  if (have_alm) /* an audio LLM as an asr step too */
    snprintf(alm, sizeof alm,
             "  - {name: alm, file: %s/tiny-alm.gguf, mmproj: %s/tiny-alm-mmproj.gguf, context: 1024}\n", models_dir,
             models_dir);
  snprintf(out, cap,
           "log_level: warn\n"
           "models:\n"
           "  - {name: whisper, engine: whisper, file: %s/tiny-whisper.bin}\n"
           "  - {name: junk-asr, engine: whisper, file: %s}\n"
           "  - {name: lm, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 2}\n"
           "  - {name: lm1, file: %s/tiny-qwen2.gguf, context: 4096, parallel: 1}\n"
           "%s"
           "pipelines:\n"
           "  - {name: clean, kind: transcribe_clean, asr: whisper, llm: lm, max_tokens: 12}\n"
           "  - {name: talk, kind: voice, asr: whisper, llm: lm, tts: speak, voice: en-us, max_tokens: 40,\n"
           "     temperature: 0, sentence_chars: 12, instruction: 'Answer briefly.'}\n"
           "  - {name: clean-broken, kind: transcribe_clean, asr: junk-asr, llm: lm}\n"
           "  - {name: talk-broken, kind: voice, asr: junk-asr, llm: lm, tts: speak}\n"
           "  - {name: talk-one, kind: voice, llm: lm1, tts: speak, temperature: 0, sentence_chars: 12}\n"
           "%s",
           models_dir, junk, models_dir, models_dir, alm,
           have_alm ? "  - {name: clean-alm, kind: transcribe_clean, asr: alm, llm: lm, max_tokens: 8}\n" : "");
}

/* A voice turn's body: a text message, then a user message holding the test WAV (when audio). */
static json_t *voice_body(const char *model, bool audio, bool stream, const char *format, const char *voice) {
  if (!test_wav.len) make_wav(&test_wav, 3.0);
  json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "Tell me about the weather today.");
  if (audio) {
    char *a = b64_encode(test_wav.data, test_wav.len);
    json_array_append_new(msgs, json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}]}", "role", "user", "content", "type",
                                          "input_audio", "input_audio", "data", a, "format", "wav"));
    free(a);
  }
  /* ignore_eos: the LLM step says something (several sentences) whatever the random weights pick */
  return json_pack("{s:s, s:o, s:[s, s], s:{s:s, s:s}, s:b, s:i, s:b}", "model", model, "messages", msgs,
                   "modalities", "text", "audio", "audio", "voice", voice, "format", format, "stream", stream, "seed",
                   11, "ignore_eos", 1);
}

static void b_post_json(const char *path, json_t *body, resp *r) {
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  http_do(&B, "POST", path, s, r, NULL);
  free(s);
}

static bool timings_ok(const json_t *t, bool stt) {
  const char *keys[] = {"stt_ms", "llm_first_token_ms", "tts_first_audio_ms", "first_audio_ms", "total_ms"};
  for (size_t i = 0; i < 5; i++) {
    json_t *v = json_object_get(t, keys[i]);
    if (!json_is_number(v) || json_number_value(v) < 0) return false;
  }
  return json_number_value(json_object_get(t, "total_ms")) > 0 &&
         (!stt || json_number_value(json_object_get(t, "stt_ms")) > 0) &&
         json_number_value(json_object_get(t, "first_audio_ms")) > 0;
}

static void pipeline_clean_body(void) {
  daemon_proc save = D;
  D = B; /* post_form talks to D */
  resp r;
  post_form("/v1/audio/transcriptions", test_wav.data, test_wav.len,
            (const char *[]){"model", "clean", "response_format", "verbose_json", NULL}, &r);
  D = save;
  CHECK(r.status == 200, "clean verbose_json: %ld %s", r.status, r.body.data);
  const char *text = jstr(r.json, "text"), *raw = jstr(r.json, "raw_text");
  CHECK(text && raw, "text and raw_text: %s", r.body.data);
  CHECK(!*raw || jnum(r.json, "switchyard_pipeline.completion_tokens") > 0,
        "a transcript is cleaned by the llm step: %s", r.body.data);
  CHECK(json_is_array(json_object_get(r.json, "segments")) && jstr(r.json, "language") &&
            json_is_number(jpath(r.json, "duration")),
        "verbose_json fields: %s", r.body.data);
  CHECK(strcmp(r.model_hdr, "clean") == 0 && strstr(r.server_timing, "stt;dur=") &&
            strstr(r.server_timing, "llm;dur=") && strstr(r.server_timing, "total;dur="),
        "headers: model '%s', Server-Timing '%s'", r.model_hdr, r.server_timing);
  CHECK(json_is_number(jpath(r.json, "usage.switchyard_timings.stt_ms")), "timings: %s", r.body.data);
  resp_clear(&r);
  D = B;
  post_form("/v1/audio/transcriptions", test_wav.data, test_wav.len,
            (const char *[]){"model", "clean", "response_format", "text", NULL}, &r);
  long st_text = r.status;
  bool nl = r.body.len && r.body.data[r.body.len - 1] == '\n';
  resp_clear(&r);
  post_form("/v1/audio/transcriptions", test_wav.data, test_wav.len,
            (const char *[]){"model", "clean", "response_format", "srt", NULL}, &r);
  bool srt_refused = is_error(&r, 400, "unsupported_parameter");
  resp_clear(&r);
  post_form("/v1/audio/transcriptions", test_wav.data, test_wav.len, (const char *[]){"model", "talk", NULL}, &r);
  bool voice_refused = is_error(&r, 400, "wrong_capability");
  resp_clear(&r);
  post_form("/v1/audio/transcriptions", test_wav.data, test_wav.len, (const char *[]){"model", "clean-broken", NULL},
            &r);
  D = save;
  CHECK(st_text == 200 && nl, "clean text: %ld", st_text);
  CHECK(srt_refused, "srt is refused for a pipeline");
  CHECK(voice_refused, "a voice pipeline is refused here");
  /* the failing step is named: the asr model's file does not load */
  const char *msg = jstr(r.json, "error.message"), *param = jstr(r.json, "error.param");
  CHECK(r.status >= 400 && msg && strstr(msg, "step asr (junk-asr) failed") && param && !strcmp(param, "asr"),
        "broken asr: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  if (have_alm) { /* an audio LLM transcribes (verbose_json: no segments, an LLM gives no timestamps) */
    D = B;
    post_form("/v1/audio/transcriptions", test_wav.data, test_wav.len,
              (const char *[]){"model", "clean-alm", "response_format", "verbose_json", NULL}, &r);
    D = save;
    CHECK(r.status == 200 && jstr(r.json, "text") && jstr(r.json, "raw_text") &&
              json_array_size(json_object_get(r.json, "segments")) == 0,
          "clean with an audio LLM as asr: %ld %s", r.status, r.body.data);
    resp_clear(&r);
  }
}

static void t_pipeline_clean(void) {
  if (!test_wav.len) make_wav(&test_wav, 3.0);
  char cfg[4096];
  pipe_config(cfg, sizeof cfg);
  with_own_daemon("pipeline-clean", cfg, pipeline_clean_body);
}

static void pipeline_voice_body(void) {
  /* not streamed: the whole audio (a WAV at 24 kHz) and its transcript */
  resp r;
  b_post_json("/v1/chat/completions", voice_body("talk", true, false, "wav", "alloy"), &r);
  CHECK(r.status == 200, "voice turn: %ld %s", r.status, r.body.data);
  const char *data = jstr(r.json, "choices.0.message.audio.data"),
             *tr = jstr(r.json, "choices.0.message.audio.transcript");
  CHECK(data && tr && *tr && json_is_null(jpath(r.json, "choices.0.message.content")) &&
            jstr(r.json, "choices.0.message.audio.id") && jnum(r.json, "choices.0.message.audio.expires_at") > 0,
        "message.audio: %.400s", r.body.data);
  size_t n = 0;
  unsigned char *wav = b64_decode(data, &n);
  sy_buf wb = {.data = (char *)wav, .len = n};
  const unsigned char *pcm = NULL;
  size_t pn = 0;
  char why[160] = "";
  bool ok = wav_parse(&wb, &pcm, &pn, why, sizeof why);
  free(wav);
  CHECK(ok && pn > 4800, "a WAV at 24 kHz with audio in it: %s, %zu bytes", why, pn);
  CHECK(strstr(r.server_timing, "stt;dur=") && strstr(r.server_timing, "llm_first_token;dur=") &&
            strstr(r.server_timing, "tts_first_audio;dur=") && strstr(r.server_timing, "total;dur="),
        "Server-Timing '%s'", r.server_timing);
  CHECK(timings_ok(jpath(r.json, "usage.switchyard_timings"), true), "usage.switchyard_timings: %s", r.body.data);
  CHECK(json_array_size(jpath(r.json, "switchyard_pipeline.input_transcripts")) == 1 &&
            jnum(r.json, "usage.completion_tokens") > 0 && strcmp(r.model_hdr, "talk") == 0,
        "one input transcribed, tokens counted: %s", r.body.data);
  resp_clear(&r);

  /* streamed: audio leaves before the answer's text is all out */
  b_post_json("/v1/chat/completions", voice_body("talk", true, true, "wav", "alloy"), &r);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/event-stream", 17) == 0, "stream: %ld %s", r.status,
        r.body.data);
  bool done, wf;
  json_t *ev = sse_events(&r.body, &done, &wf);
  size_t i, first_audio = SIZE_MAX, last_text = 0, finish_at = SIZE_MAX, n_audio = 0;
  json_t *e;
  const json_t *timings = NULL;
  sy_buf audio = {0}, said = {0};
  json_array_foreach(ev, i, e) {
    json_t *ch = json_array_get(json_object_get(e, "choices"), 0);
    const char *d = jstr(ch, "delta.audio.data"), *t = jstr(ch, "delta.audio.transcript");
    if (d) {
      if (first_audio == SIZE_MAX) first_audio = i;
      n_audio++;
      size_t k = 0;
      unsigned char *b = b64_decode(d, &k);
      sy_buf_append(&audio, b, k);
      free(b);
    }
    if (t) {
      last_text = i;
      sy_buf_puts(&said, t);
    }
    if (json_string_value(json_object_get(ch, "finish_reason")) && finish_at == SIZE_MAX) finish_at = i;
    if (json_is_object(jpath(e, "usage.switchyard_timings"))) timings = jpath(e, "usage.switchyard_timings");
  }
  bool order = first_audio < last_text && last_text < finish_at && finish_at != SIZE_MAX;
  bool t_ok = timings && timings_ok(timings, true);
  ok = wav_parse(&audio, &pcm, &pn, why, sizeof why);
  size_t said_len = said.len, n_events = json_array_size(ev);
  json_decref(ev);
  sy_buf_free(&audio);
  sy_buf_free(&said);
  CHECK(wf && done, "well-formed SSE ending in [DONE]: %.300s", r.body.data);
  CHECK(order, "audio before the last text (first audio #%zu, last text #%zu, finish #%zu of %zu events)", first_audio,
        last_text, finish_at, n_events);
  CHECK(n_audio >= 2 && said_len > 0, "%zu audio chunks, %zu bytes of transcript", n_audio, said_len);
  CHECK(ok && pn > 4800, "the chunks make one WAV: %s", why);
  CHECK(t_ok, "the usage chunk has the timings");
  resp_clear(&r);

  /* text only: no tts step, content as a plain chat */
  json_t *b = voice_body("talk", false, false, "wav", "alloy");
  json_object_set_new(b, "modalities", json_pack("[s]", "text"));
  b_post_json("/v1/chat/completions", b, &r);
  CHECK(r.status == 200 && jstr(r.json, "choices.0.message.content") && !jpath(r.json, "choices.0.message.audio"),
        "modalities [text]: %ld %.300s", r.status, r.body.data);
  resp_clear(&r);

  /* failing steps are named: an unknown voice (tts), an asr model that does not load */
  b_post_json("/v1/chat/completions", voice_body("talk", false, false, "wav", "no-such-voice-xyz"), &r);
  const char *msg = jstr(r.json, "error.message"), *param = jstr(r.json, "error.param");
  CHECK(r.status == 400 && msg && strstr(msg, "step tts (speak) failed") && param && !strcmp(param, "tts"),
        "bad voice: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  b_post_json("/v1/chat/completions", voice_body("talk-broken", true, true, "wav", "alloy"), &r);
  msg = jstr(r.json, "error.message"), param = jstr(r.json, "error.param");
  CHECK(r.status >= 400 && msg && strstr(msg, "step asr (junk-asr) failed") && param && !strcmp(param, "asr"),
        "broken asr: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  b_post_json("/v1/chat/completions", voice_body("talk", false, false, "ogg-x", "alloy"), &r);
  CHECK(is_error(&r, 400, "invalid_value") && str_is(jstr(r.json, "error.param"), "audio.format"), "bad format: %s",
        r.body.data);
  resp_clear(&r);
  b_post_json("/v1/chat/completions", voice_body("clean", false, false, "wav", "alloy"), &r);
  CHECK(is_error(&r, 400, "wrong_capability"), "a transcribe_clean pipeline is no chat: %s", r.body.data);
  resp_clear(&r);

  /* listed as models; counted in metrics by stage and failed step */
  http_do(&B, "GET", "/v1/models/talk", NULL, &r, NULL);
  CHECK(r.status == 200 && str_is(jstr(r.json, "pipeline.kind"), "voice") && str_is(jstr(r.json, "pipeline.tts"), "speak"),
        "GET /v1/models/talk: %s", r.body.data);
  resp_clear(&r);
  http_do(&B, "GET", "/metrics", NULL, &r, NULL);
  const char *m = r.body.data ? r.body.data : "";
  bool stages = strstr(m, "switchyard_pipeline_stage_seconds_count{model=\"talk\",stage=\"first_audio\"} 2") &&
                strstr(m, "switchyard_pipeline_stage_seconds_count{model=\"talk\",stage=\"stt\"}");
  bool fails = strstr(m, "switchyard_pipeline_step_failures_total{model=\"talk-broken\",step=\"asr\"} 1") &&
               strstr(m, "switchyard_pipeline_step_failures_total{model=\"talk\",step=\"tts\"} 1");
  resp_clear(&r);
  CHECK(stages, "stage histograms in /metrics");
  CHECK(fails, "step failures in /metrics");
}

/* A client that leaves a voice stream cancels its steps: lm1 has one slot, so the next turn runs
 * only once the abandoned one has let go of it; the daemon counts it as cancelled. */
static void pipeline_disconnect_body(void) {
  resp r;
  http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  long long before = jnum(r.json, "stats.cancelled");
  resp_clear(&r);
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "%s/v1/chat/completions", B.base);
  json_t *q = voice_body("talk-one", false, true, "pcm16", "alloy");
  json_object_set_new(q, "max_tokens", json_integer(3000));
  char *body = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  abort_ctx a = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, abort_after_first);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(body);
  CHECK(rc == CURLE_WRITE_ERROR, "the client aborted (curl %d)", rc);
  json_t *next = voice_body("talk-one", false, false, "wav", "alloy");
  json_object_set_new(next, "max_tokens", json_integer(4));
  b_post_json("/v1/chat/completions", next, &r);
  CHECK(r.status == 200, "next turn: %ld %.300s", r.status, r.body.data);
  resp_clear(&r);
  http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  long long after = jnum(r.json, "stats.cancelled");
  resp_clear(&r);
  CHECK(after > before, "the abandoned turn was cancelled (%lld -> %lld)", before, after);
}

static void t_pipeline_voice(void) {
  char cfg[4096];
  pipe_config(cfg, sizeof cfg);
  with_own_daemon("pipeline-voice", cfg, pipeline_voice_body);
}

static void t_pipeline_disconnect(void) {
  char cfg[4096];
  pipe_config(cfg, sizeof cfg);
  with_own_daemon("pipeline-disconnect", cfg, pipeline_disconnect_body);
}

/* ---- Qwen3-TTS (mkmodel --preset tiny-qwen3tts --mmproj: a random-weight talker and projector;
 * the audio is noise, its structure is checked) ---- */

static json_t *q3_body(const char *input, const char *format, const char *voice, int seed) {
  json_t *b = json_pack("{s:s, s:s, s:s, s:i}", "model", "q3tts", "input", input, "response_format", format,
                        "seed", seed);
  if (voice) json_object_set_new(b, "voice", json_string(voice));
  return b;
}

static void speech_qwen3tts_body(void) {
  resp r;
  http_do(&B, "GET", "/v1/models/q3tts", NULL, &r, NULL);
  const json_t *caps = jpath(r.json, "capabilities");
  CHECK(r.status == 200 && json_array_size(caps) == 1 && !strcmp(json_string_value(json_array_get(caps, 0)), "speech"),
        "q3tts has the speech capability only: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  static const char text[] = "Hello world. A second sentence.";
  speech_resp a, b, c;
  speech_post(&B, q3_body(text, "wav", "ref", 7), &a);
  CHECK(a.status == 200, "status %ld: %.300s", a.status, a.body.data ? a.body.data : "");
  const unsigned char *data = NULL;
  size_t n = 0;
  char why[160] = "";
  bool ok = wav_parse(&a.body, &data, &n, why, sizeof why);
  size_t nz = 0;
  for (size_t i = 0; ok && i + 1 < n; i += 2) nz += data[i] || data[i + 1];
  CHECK(ok, "a WAV at 24 kHz: %s", why);
  /* two sentences, each at least one 12.5 Hz frame of 1920 samples (2 bytes each) */
  CHECK(n >= 2 * 1920 * 2 && n % (1920 * 2) == 0, "%zu bytes of 16-bit samples, whole frames", n);
  CHECK(nz > n / 8, "not silence: %zu non-zero samples of %zu", nz, n / 2);
  CHECK(a.chunked && a.writes > 1, "streamed: chunked %d, %d pieces", a.chunked, a.writes);
  speech_post(&B, q3_body(text, "wav", "ref", 7), &b);
  CHECK(b.status == 200 && b.body.len == a.body.len && memcmp(a.body.data, b.body.data, a.body.len) == 0,
        "the same seed twice: the same bytes (%zu vs %zu)", a.body.len, b.body.len);
  speech_post(&B, q3_body(text, "wav", "ref", 8), &c);
  CHECK(c.status == 200 && (c.body.len != a.body.len || memcmp(a.body.data, c.body.data, a.body.len) != 0),
        "another seed: other audio");
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  sy_buf_free(&c.body);
  /* no reference voice, pcm, a language of the request (a Switchyard extension) */
  json_t *body = q3_body("Short one.", "pcm", NULL, 1);
  json_object_set_new(body, "language", json_string("de"));
  speech_post(&B, body, &a);
  CHECK(a.status == 200 && a.body.len >= 1920 * 2 && a.body.len % (1920 * 2) == 0, "pcm without a voice: %ld, %zu bytes",
        a.status, a.body.len);
  /* the request's own clip (voice_upload): its speaker x-vector changes the audio at the same seed */
  body = q3_body("Short one.", "pcm", NULL, 1);
  json_object_set_new(body, "language", json_string("de"));
  json_object_set_new(body, "voice", uploaded_voice_file("ref-voice-q3.wav"));
  speech_post(&B, body, &b);
  CHECK(b.status == 200 && b.body.len >= 1920 * 2 &&
            (b.body.len != a.body.len || memcmp(a.body.data, b.body.data, a.body.len) != 0),
        "an uploaded voice: %ld, %zu bytes, differs from no voice", b.status, b.body.len);
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  json_t *bad = q3_body("hi", "wav", "nope", 1);
  char *s = json_dumps(bad, JSON_COMPACT);
  json_decref(bad);
  http_do(&B, "POST", "/v1/audio/speech", s, &r, NULL);
  free(s);
  CHECK(is_error(&r, 400, "invalid_voice"), "unknown voice: %ld %s", r.status, r.body.data);
  resp_clear(&r);
  bad = q3_body("hi", "wav", "ref", 1);
  json_object_set_new(bad, "language", json_string("klingon"));
  s = json_dumps(bad, JSON_COMPACT);
  json_decref(bad);
  http_do(&B, "POST", "/v1/audio/speech", s, &r, NULL);
  free(s);
  CHECK(is_error(&r, 400, "invalid_language"), "a language the talker lacks: %ld %s", r.status, r.body.data);
  resp_clear(&r);
}

static void t_speech_qwen3tts(void) {
  char probe[600], ref[600], yaml[2400];
  snprintf(probe, sizeof probe, "%s/tiny-qwen3tts-mmproj.gguf", models_dir);
  if (access(probe, R_OK) != 0) {
    printf("skip - speech_qwen3tts: %s is missing (mkmodel --preset tiny-qwen3tts --mmproj)\n", probe);
    n_skip++;
    return;
  }
  snprintf(ref, sizeof ref, "%s/ref-voice-q3.wav", tmpdir);
  write_ref_wav(ref);
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nbuiltin_voice: false\nmodels:\n"
           "  - name: q3tts\n    file: %s/tiny-qwen3tts.gguf\n    mmproj: %s\n    context: 1024\n    voice_upload: true\n"
           "    voices:\n      ref: {audio: %s, language: en}\n",
           models_dir, probe, ref);
  with_own_daemon("qwen3tts", yaml, speech_qwen3tts_body);
}

static const test tests[] = {
    {"health", t_health, false},
    {"models", t_models, false},
    {"chat", t_chat, false},
    {"chat_deterministic", t_chat_deterministic, false},
    {"chat_quantized", t_chat_quantized, false},
    {"cpu_share", t_cpu_share, false},
    {"chat_stream", t_chat_stream, false},
    {"completions", t_completions, false},
    {"embeddings", t_embeddings, false},
    {"rerank", t_rerank, false},
    {"concurrent_streams", t_concurrent_streams, false},
    {"concurrent_streams_throughput_mode", t_concurrent_throughput, false},
    {"errors", t_errors, false},
    {"disconnect_cancels", t_disconnect, false},
    {"worker_crash", t_worker_crash, false},
    {"keep_alive_zero", t_keep_alive_zero, false},
    {"metrics", t_metrics, false},
    {"ps_cli", t_ps_cli, false},
    {"devices", t_devices, false},
    {"events", t_events, false},
    {"one_load_at_a_time", t_one_load_at_a_time, false},
    {"memory_busy", t_memory_busy, false},
    {"request_keep_alive", t_request_keep_alive, false},
    {"third_party_gguf", t_third_party_gguf, true},
    {"api_keys", t_api_keys, false},
    {"memory_budget", t_budget, false},
    {"wait_queue", t_queue, false},
    {"swap_guard", t_swap_guard, false},
    {"admin_load_unload", t_admin, false},
    {"admin_unload_busy", t_admin_unload_busy, false},
    {"load_backoff", t_load_backoff, false},
    {"bad_config", t_bad_config, false},
    {"reload", t_reload, false},
    {"tool_calls", t_tool_calls, false},
    {"json_schema", t_json_schema, false},
    {"reasoning", t_reasoning, false},
    {"logprobs", t_logprobs, false},
    {"schema_sampling", t_schema_sampling, false},
    {"vision", t_vision, false},
    {"transcribe", t_transcribe, false},
    {"transcribe_stream", t_transcribe_stream, false},
    {"translations", t_translations, false},
    {"transcribe_errors", t_transcribe_errors, false},
    {"transcribe_vad", t_transcribe_vad, true},
    {"speech_wav", t_speech_wav, false},
    {"speech_pcm_sse", t_speech_pcm_sse, false},
    {"speech_formats", t_speech_formats, false},
    {"speech_errors", t_speech_errors, false},
    {"speech_disconnect", t_speech_disconnect, false},
    {"speech_builtin_off", t_speech_builtin_off, false},
    {"audio_in", t_audio_in, false},
    {"transcribe_parakeet", t_transcribe_parakeet, true},
    {"speech_neural", t_speech_neural, false},
    {"ext_chat", t_ext_chat, false},
    {"ext_evict", t_ext_evict, false},
    {"ext_fail", t_ext_fail, false},
    {"ext_crash", t_ext_crash, false},
    {"ext_group", t_ext_group, false},
    {"ext_reload", t_ext_reload, false},
    {"router", t_router, false},
    {"ext_whisper", t_ext_whisper, false},
    {"pipeline_clean", t_pipeline_clean, false},
    {"pipeline_voice", t_pipeline_voice, false},
    {"pipeline_disconnect", t_pipeline_disconnect, false},
    {"speech_qwen3tts", t_speech_qwen3tts, false},
};

static void write_main_config(const char *path) {
  FILE *f = fopen(path, "w");
  fprintf(f,
          "log_level: warn\n"
          "limits:\n  max_upload_bytes: 4000000\n"
          "models:\n"
          "  - name: chat\n    aliases: [chat-alias]\n    file: %s/tiny-qwen2.gguf\n    context: 512\n    parallel: 4\n    keep_alive: -1\n"
          "    deterministic: true\n"
          "  - name: busy\n    file: %s/tiny-qwen2.gguf\n    context: 512\n    parallel: 4\n"
          "  - name: flex\n    file: %s/tiny-qwen2.gguf\n    context: 256\n    parallel: 1\n    keep_alive: -1\n"
          "    request_keep_alive: true\n"
          "  - name: slow\n    file: %s/tiny-qwen2.gguf\n    context: 32768\n    parallel: 1\n"
          "  - name: once\n    file: %s/tiny-qwen2.gguf\n    context: 256\n    parallel: 1\n    keep_alive: 0\n"
          "  - name: embed\n    file: %s/tiny-bert.gguf\n    context: 512\n"
          "  - name: tools\n    file: %s/tiny-qwen3.gguf\n    context: 1024\n    parallel: 2\n"
          "  - name: think\n    file: %s/tiny-qwq.gguf\n    context: 1024\n    parallel: 1\n",
          models_dir, models_dir, models_dir, models_dir, models_dir, models_dir, models_dir, models_dir);
  fprintf(f,
          "  - name: rerank\n    file: %s/tiny-bert-rerank.gguf\n    context: 128\n    parallel: 4\n"
          "  - name: rerank-tmpl\n    file: %s/tiny-bert-rerank-tmpl.gguf\n    context: 128\n",
          models_dir, models_dir);
  fprintf(f, "  - {name: whisper, engine: whisper, file: %s/tiny-whisper.bin}\n", models_dir);
  if (have_quant)
    fprintf(f,
            "  - {name: chat-q8_0, file: %s/tiny-qwen2-q8_0.gguf, context: 256, parallel: 1, keep_alive: 0}\n"
            "  - {name: chat-q4_k_m, file: %s/tiny-qwen2-q4_k_m.gguf, context: 256, parallel: 1, keep_alive: 0}\n",
            models_dir, models_dir);
  if (have_testdata)
    fprintf(f,
            "  - {name: whisper-vad, engine: whisper, file: %s/for-tests-ggml-tiny.bin,\n"
            "     vad_model: %s/for-tests-silero-v6.2.0-ggml.bin}\n",
            testdata_dir, testdata_dir);
  if (have_testdata) /* Parakeet-TDT: the same ggml magic, whisper.cpp's Parakeet engine */
    fprintf(f,
            "  - {name: parakeet, engine: whisper, file: %s/for-tests-ggml-parakeet-tdt.bin,\n"
            "     vad_model: %s/for-tests-silero-v6.2.0-ggml.bin}\n",
            testdata_dir, testdata_dir);
  if (have_testdata)
    fprintf(f,
            "  - name: llama2\n    file: %s/llama-2-tiny-random.gguf\n    context: 256\n    parallel: 1\n"
            "  - name: llama2-embed\n    file: %s/llama-2-tiny-random.gguf\n    capabilities: [embed]\n    pooling: mean\n    context: 256\n",
            testdata_dir, testdata_dir);
  if (have_vlm)
    fprintf(f, "  - name: vlm\n    file: %s/tiny-vlm.gguf\n    mmproj: %s/tiny-vlm-mmproj.gguf\n    context: 512\n"
               "    parallel: 2\n",
            models_dir, models_dir);
  if (have_alm)
    fprintf(f, "  - name: alm\n    file: %s/tiny-alm.gguf\n    mmproj: %s/tiny-alm-mmproj.gguf\n    context: 1024\n"
               "    parallel: 2\n    transcribe_prompt: 'Write down what is said.'\n",
            models_dir, models_dir);
  if (have_pocket) {
    char ref[600];
    snprintf(ref, sizeof ref, "%s/ref-voice.wav", tmpdir);
    write_ref_wav(ref);
    fprintf(f, "  - name: pocket\n    file: %s/tiny-pocket.gguf\n    mmproj: %s/tiny-pocket-mmproj.gguf\n"
               "    context: 1024\n    voice_upload: true\n    voices:\n      ref: {audio: %s, language: en}\n",
            models_dir, models_dir, ref);
  }
  fclose(f);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"daemon", required_argument, 0, 'd'},
                                       {"models", required_argument, 0, 'm'},
                                       {"testdata", required_argument, 0, 't'},
                                       {"only", required_argument, 0, 'o'},
                                       {"engines", required_argument, 0, 'e'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'd') daemon_bin = optarg;
    else if (c == 'm') models_dir = optarg;
    else if (c == 't') testdata_dir = optarg;
    else if (c == 'o') only = optarg;
    else if (c == 'e') engines_dir = optarg;
    else return 2;
  }
  if (!daemon_bin || !models_dir) {
    fprintf(stderr, "usage: itest --daemon BIN --models DIR [--testdata DIR] [--engines DIR] [--only NAME]\n");
    return 2;
  }
  /* the config written below lives in a temp dir: make every path absolute */
  static char models_abs[4096], testdata_abs[4096];
  if (!realpath(models_dir, models_abs)) {
    fprintf(stderr, "itest: %s: %s\n", models_dir, strerror(errno));
    return 2;
  }
  models_dir = models_abs;
  if (testdata_dir) testdata_dir = realpath(testdata_dir, testdata_abs) ? testdata_abs : NULL;
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!engines_dir) engines_dir = getenv("SWITCHYARD_ENGINES");
  if (engines_dir) snprintf(llama_server, sizeof llama_server, "%s/bin/llama-server", engines_dir);
  if (engines_dir) snprintf(whisper_server, sizeof whisper_server, "%s/bin/whisper-server", engines_dir);
  char probe[512];
  snprintf(probe, sizeof probe, "%s/llama-2-tiny-random.gguf", testdata_dir ? testdata_dir : "");
  have_testdata = testdata_dir && access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-vlm-mmproj.gguf", models_dir);
  have_vlm = access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-alm-mmproj.gguf", models_dir);
  have_alm = access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-qwen2-q4_k_m.gguf", models_dir);
  have_quant = access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-qwen2-q8_0.gguf", models_dir);
  have_quant = have_quant && access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-pocket-mmproj.gguf", models_dir);
  have_pocket = access(probe, R_OK) == 0;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/switchyard-itest-XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/main.yaml", tmpdir);
  write_main_config(cfg);
  if (start_daemon(&D, cfg) != 0) {
    fprintf(stderr, "itest: the daemon did not start (config %s)\n", cfg);
    printf("0 passed, 1 failed\n");
    return 1;
  }
  for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
    const test *t = &tests[i];
    if (only && strcmp(only, t->name) != 0) continue;
    if (t->needs_testdata && !have_testdata) {
      printf("skip - %s: ../shared/testdata not found (pass --testdata)\n", t->name);
      n_skip++;
      continue;
    }
    cur_failed = false;
    cur_skip[0] = '\0';
    t->fn();
    if (cur_skip[0] && !cur_failed) {
      printf("skip - %s: %s\n", t->name, cur_skip);
      n_skip++;
    } else if (cur_failed) {
      n_fail++;
      printf("not ok - %s: %s\n", t->name, cur_fail);
    } else {
      n_pass++;
      printf("ok - %s\n", t->name);
    }
    fflush(stdout);
  }
  int st = stop_daemon(&D);
  if (st != 0) {
    n_fail++;
    printf("not ok - clean_shutdown: the daemon exited with %d on SIGTERM\n", st);
  } else {
    n_pass++;
    printf("ok - clean_shutdown\n");
  }
  curl_global_cleanup();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "itest: could not remove %s\n", tmpdir);
  printf("itest: %d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
  return n_fail ? 1 : 0;
}
