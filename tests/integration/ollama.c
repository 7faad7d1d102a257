/* ollama.c — Ollama's API (/api/chat, /api/generate, /api/embed, /api/embeddings, /api/show,
 * /api/tags, /api/version, /api/ps) on the main daemon: its shapes on the wire (NDJSON lines, the
 * done line's timings, Ollama's fields in /api/ps beside ours), load and unload by empty requests,
 * options.num_ctx answered with a header instead of a reload, and hostile input: bodies that are
 * not JSON, invalid UTF-8, nesting past the parser's depth, every field of the wrong type, arrays
 * far past every bound — each answered at once with Ollama's error shape, {"error": "<string>"},
 * and Ollama's status, and the daemon still serving after them.
 * Must never happen: an OpenAI-shaped error object on these paths (ollama-js shows it as
 * "[object Object]"), a hostile body that loads a model or reaches a worker, a crash.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a response, a bounded poll of /api/ps). */
#include "harness.h"

/* A POST (or method) of len raw bytes to D's path; r filled as it_http_do fills it, and the
 * X-Switchyard-Context header into ctx (when not NULL). */
typedef struct hdrs {
  resp *r;
  char *ctx;
} hdrs;

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  hdrs *h = ud;
  size_t len = sz * n;
  static const char key[] = "x-switchyard-context:";
  if (h->ctx && len > sizeof key - 1 && strncasecmp(p, key, sizeof key - 1) == 0)
    snprintf(h->ctx, 256, "%.*s", (int)(len - (sizeof key - 1)), p + sizeof key - 1);
  return it_on_header(p, sz, n, h->r);
}

static void raw_do(const char *method, const char *path, const char *body, size_t len, resp *r,
                   char *ctx) {
  memset(r, 0, sizeof *r);
  hdrs h = {r, ctx};
  if (ctx) ctx[0] = '\0';
  char url[512];
  snprintf(url, sizeof url, "%s%s", D.base, path);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, it_on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
  }
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

/* r is Ollama's error: this status, application/json, a body {"error": "<non-empty string>"} and
 * nothing else. */
static bool ollama_error(const resp *r, long status) {
  json_t *e = json_object_get(r->json, "error");
  return r->status == status && strncmp(r->content_type, "application/json", 16) == 0 &&
         json_is_object(r->json) && json_object_size(r->json) == 1 && json_is_string(e) &&
         json_string_length(e) > 0;
}

/* The NDJSON lines of a body: an array of their JSON values, or NULL when one is not JSON or the
 * body does not end with a newline. */
static json_t *ndjson(const sy_buf *b) {
  json_t *lines = json_array();
  size_t start = 0;
  for (size_t i = 0; i < b->len; i++) {
    if (b->data[i] != '\n') continue;
    json_t *l = json_loadb(b->data + start, i - start, 0, NULL);
    if (!l) {
      json_decref(lines);
      return NULL;
    }
    json_array_append_new(lines, l);
    start = i + 1;
  }
  if (start != b->len) {
    json_decref(lines);
    return NULL;
  }
  return lines;
}

/* A done line or whole answer: done true, a done_reason, every duration an integer >= 0. */
static bool done_ok(const json_t *o) {
  static const char *const k[] = {"total_duration",       "load_duration", "prompt_eval_count",
                                  "prompt_eval_duration", "eval_count",    "eval_duration"};
  bool ok = json_is_true(json_object_get(o, "done")) && it_jstr(o, "done_reason");
  for (size_t i = 0; ok && i < sizeof k / sizeof *k; i++)
    ok = json_is_integer(json_object_get(o, k[i])) && it_jnum(o, k[i]) >= 0;
  return ok;
}

/* Shapes on the wire: version, tags, a streamed chat (NDJSON), a whole generate, embed, show,
 * and /api/ps with Ollama's fields beside ours. */
static void t_ollama_shapes(void) {
  resp r;
  it_get("/api/version", &r);
  CHECK(r.status == 200 && it_jstr(r.json, "version"), "version: %ld", r.status);
  it_resp_clear(&r);

  it_get("/api/tags", &r);
  CHECK(r.status == 200, "tags: %ld", r.status);
  bool chat = false, whisper = false;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(r.json, "models"), i, m) {
    const char *n = it_jstr(m, "name");
    chat |= it_str_is(n, "chat") && strlen(it_jstr(m, "digest")) == 64 &&
            it_str_is(it_jstr(m, "details.format"), "gguf") && it_jnum(m, "size") > 0;
    whisper |= it_str_is(n, "whisper");
  }
  it_resp_clear(&r);
  CHECK(chat && !whisper, "tags lists the chat model, not the speech-to-text one");

  char ctx[256];
  const char *body =
      "{\"model\":\"chat:latest\",\"messages\":[{\"role\":\"user\",\"content\":"
      "\"hi\"}],\"options\":{\"num_predict\":4,\"num_ctx\":65536}}";
  raw_do("POST", "/api/chat", body, strlen(body), &r, ctx);
  CHECK(r.status == 200, "chat: %ld %s", r.status, r.body.data);
  CHECK(strncmp(r.content_type, "application/x-ndjson", 20) == 0, "ndjson: %s", r.content_type);
  CHECK(strstr(ctx, "512") && strstr(ctx, "65536"), "num_ctx answered with a header: '%s'", ctx);
  json_t *lines = ndjson(&r.body);
  CHECK(lines && json_array_size(lines) >= 2, "NDJSON lines: %s", r.body.data);
  json_t *last = json_array_get(lines, json_array_size(lines) - 1);
  bool shape = done_ok(last) && it_jnum(last, "eval_count") == 4;
  for (i = 0; i + 1 < json_array_size(lines); i++)
    shape = shape && json_is_false(json_object_get(json_array_get(lines, i), "done")) &&
            it_str_is(it_jstr(json_array_get(lines, i), "message.role"), "assistant") &&
            it_str_is(it_jstr(json_array_get(lines, i), "model"), "chat:latest");
  json_decref(lines);
  it_resp_clear(&r);
  CHECK(shape, "every line but the last done:false, the last with Ollama's timings");

  it_post("/api/generate",
          "{\"model\":\"chat\",\"prompt\":\"hi\",\"stream\":false,\"options\":{\"num_predict\":3}}",
          &r);
  CHECK(r.status == 200 && done_ok(r.json) && it_jstr(r.json, "response"), "generate: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);

  it_post("/api/embed", "{\"model\":\"embed\",\"input\":[\"a\",\"b\"],\"dimensions\":4}", &r);
  CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "embeddings")) == 2 &&
            json_array_size(it_jpath(r.json, "embeddings.0")) == 4,
        "embed: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  it_post("/api/show", "{\"model\":\"CHAT\"}", &r);
  CHECK(r.status == 200 && it_jstr(r.json, "details.family"), "show: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);

  json_t *ps = it_ps_model(&D, "chat");
  CHECK(ps, "chat in /api/ps");
  bool both = it_str_is(it_jstr(ps, "model"), "chat") && strlen(it_jstr(ps, "digest")) == 64 &&
              it_jstr(ps, "expires_at") && it_jnum(ps, "size_vram") >= 0 &&
              it_jnum(ps, "context_length") == 512 && it_jpath(ps, "details.family") &&
              it_str_is(it_jstr(ps, "state"), "loaded") && it_jnum(ps, "size") > 0;
  json_decref(ps);
  CHECK(both, "Ollama's fields and ours");
}

/* An empty generate loads a model; keep_alive 0 unloads it. */
static void t_ollama_load_unload(void) {
  resp r;
  it_post("/api/generate", "{\"model\":\"busy\"}", &r);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "done_reason"), "load"), "load: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  json_t *ps = it_ps_model(&D, "busy");
  CHECK(ps && it_str_is(it_jstr(ps, "state"), "loaded"), "loaded");
  json_decref(ps);
  it_post("/api/chat", "{\"model\":\"busy:latest\",\"messages\":[],\"keep_alive\":0}", &r);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "done_reason"), "unload"), "unload: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  ps = it_ps_model(&D, "busy");
  json_decref(ps);
  CHECK(!ps, "unloaded");
}

/* n copies of item joined with ',' inside head ... tail (malloc'd). */
static char *repeat(const char *head, const char *item, size_t n, const char *tail) {
  sy_buf b = {0};
  sy_buf_puts(&b, head);
  for (size_t i = 0; i < n; i++) {
    if (i) sy_buf_puts(&b, ",");
    sy_buf_puts(&b, item);
  }
  sy_buf_puts(&b, tail);
  return b.data;
}

/* Hostile bodies: each refused at once in Ollama's shape, no model loaded for it. */
static void t_ollama_hostile(void) {
  static const struct {
    const char *path, *body;
    long status;
  } rows[] = {
      /* not JSON, not an object */
      {"/api/chat", "", 400},
      {"/api/chat", "{", 400},
      {"/api/chat", "nul", 400},
      {"/api/chat", "[]", 400},
      {"/api/chat", "\"model\"", 400},
      {"/api/chat", "123", 400},
      {"/api/generate", "{\"model\":\"chat\",\"model\":\"embed\",\"prompt\":\"x\"}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"a\\u0000b\"}", 400},
      /* invalid UTF-8: a stray byte, an overlong '/', a lone surrogate, a cut sequence */
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"\xc0\xaf\"}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"\xed\xa0\x80\"}", 400},
      {"/api/embed", "{\"model\":\"embed\",\"input\":\"\xe2\x82\"}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"\\ud800\"}", 400},
      /* wrong types */
      {"/api/chat", "{\"model\":5,\"messages\":[]}", 400},
      {"/api/chat", "{\"model\":\"\"}", 400},
      {"/api/chat", "{\"model\":\"chat\",\"messages\":\"hi\"}", 400},
      {"/api/chat", "{\"model\":\"chat\",\"messages\":[5]}", 400},
      {"/api/chat", "{\"model\":\"chat\",\"messages\":[{\"role\":[],\"content\":\"x\"}]}", 400},
      {"/api/chat", "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":{}}]}", 400},
      {"/api/chat", "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"images\":5}]}", 400},
      {"/api/chat", "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"images\":[[]]}]}", 400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":\"x\"}]}", 400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"options\":5}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"options\":{"
       "\"temperature\":\"hot\"}}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"options\":{"
       "\"num_predict\":1.5}}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"options\":{"
       "\"stop\":{}}}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"keep_alive\":{}"
       "}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"format\":[]}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"think\":{}}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":\"x\"}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":"
       "\"yes\"}",
       400},
      {"/api/chat",
       "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
       "\"type\":\"function\",\"function\":{\"name\":\"bad name!\"}}]}",
       400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":[]}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"x\",\"raw\":1}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"x\",\"images\":[1]}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"x\",\"context\":{}}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"x\",\"suffix\":1}", 400},
      {"/api/generate", "{\"model\":\"chat\",\"prompt\":\"x\",\"images\":[\"@@@@\"]}", 400},
      {"/api/embed", "{\"model\":\"embed\",\"input\":{}}", 400},
      {"/api/embed", "{\"model\":\"embed\",\"input\":[1,2]}", 400},
      {"/api/embed", "{\"model\":\"embed\",\"input\":[[]]}", 400},
      {"/api/embed", "{\"model\":\"embed\",\"input\":\"x\",\"dimensions\":\"x\"}", 400},
      {"/api/embed", "{\"model\":\"embed\",\"input\":\"x\",\"truncate\":\"x\"}", 400},
      {"/api/embeddings", "{\"model\":\"embed\",\"prompt\":5}", 400},
      {"/api/show", "{", 400},
      {"/api/show", "{\"model\":5}", 400},
      {"/api/show", "{}", 400},
      /* wrong model, wrong capability, wrong method, not built */
      {"/api/chat", "{\"model\":\"no-such\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
       404},
      {"/api/show", "{\"model\":\"no-such\"}", 404},
      {"/api/embed", "{\"model\":\"chat\",\"input\":\"x\"}", 400},
      {"/api/chat", "{\"model\":\"embed\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
       400},
      {"/api/chat", "{\"model\":\"whisper\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
       400},
      {"/api/generate", "{\"model\":\"whisper\"}", 400}, /* not even loaded */
      {"/api/copy", "{\"source\":\"chat\",\"destination\":\"x\"}", 501},
      {"/api/nope", "{}", 404},
  };
  resp r;
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    raw_do("POST", rows[i].path, rows[i].body, strlen(rows[i].body), &r, NULL);
    bool ok = ollama_error(&r, rows[i].status);
    char got[200];
    snprintf(got, sizeof got, "%ld %.150s", r.status, r.body.data ? r.body.data : "");
    it_resp_clear(&r);
    CHECK(ok, "%s %s: want %ld in Ollama's shape, got %s", rows[i].path, rows[i].body,
          rows[i].status, got);
  }
  raw_do("GET", "/api/chat", NULL, 0, &r, NULL);
  CHECK(ollama_error(&r, 405), "GET /api/chat: %ld", r.status);
  it_resp_clear(&r);
  /* (pull and delete are the pull wing's: tests/integration/pull.c) a model named in the config is
   * not a file to delete */
  raw_do("DELETE", "/api/delete", "{\"name\":\"chat\"}", 15, &r, NULL);
  CHECK(ollama_error(&r, 400), "DELETE /api/delete of a configured model: %ld", r.status);
  it_resp_clear(&r);

  /* a NUL byte in the body, nesting past the parser's depth */
  static const char nul[] = "{\"model\":\"chat\",\0\"prompt\":\"x\"}";
  raw_do("POST", "/api/generate", nul, sizeof nul - 1, &r, NULL);
  CHECK(ollama_error(&r, 400), "NUL byte: %ld", r.status);
  it_resp_clear(&r);
  char *deep = malloc(200001);
  memset(deep, '[', 100000);
  memset(deep + 100000, ']', 100000);
  deep[200000] = '\0';
  raw_do("POST", "/api/chat", deep, 200000, &r, NULL);
  free(deep);
  CHECK(ollama_error(&r, 400), "100000 levels deep: %ld", r.status);
  it_resp_clear(&r);

  /* arrays far past every bound: refused at once, before any worker sees them */
  struct {
    const char *path;
    char *body;
  } huge[] = {
      {"/api/chat", repeat("{\"model\":\"chat\",\"messages\":[",
                           "{\"role\":\"user\",\"content\":\"x\"}", 200000, "]}")},
      {"/api/chat",
       repeat("{\"model\":\"vlm\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[",
              "\"iVBORw0KGgo=\"", 100000, "]}]}")},
      {"/api/chat",
       repeat(
           "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"options\":"
           "{\"stop\":[",
           "\"s\"", 200000, "]}}")},
      {"/api/chat",
       repeat(
           "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[",
           "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", 100000, "]}")},
      {"/api/chat",
       repeat("{\"model\":\"chat\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\","
              "\"tool_calls\":[",
              "{\"function\":{\"name\":\"f\",\"arguments\":{}}}", 100000, "]}]}")},
      {"/api/embed", repeat("{\"model\":\"embed\",\"input\":[", "\"x\"", 300000, "]}")},
      {"/api/generate",
       repeat("{\"model\":\"chat\",\"prompt\":\"x\",\"context\":[", "1", 300000, "]}")},
  };
  double t0 = (double)time(NULL);
  for (size_t k = 0; k < sizeof huge / sizeof *huge; k++) {
    raw_do("POST", huge[k].path, huge[k].body, strlen(huge[k].body), &r, NULL);
    char got[200];
    snprintf(got, sizeof got, "%ld %.150s", r.status, r.body.data ? r.body.data : "");
    bool ok = ollama_error(&r, 400);
    it_resp_clear(&r);
    if (!ok) {
      for (size_t j = 0; j < sizeof huge / sizeof *huge; j++) free(huge[j].body);
      CHECK(ok, "huge array %zu: want 400 in Ollama's shape, got %s", k, got);
    }
  }
  for (size_t j = 0; j < sizeof huge / sizeof *huge; j++) free(huge[j].body);
  CHECK((double)time(NULL) - t0 < 60, "the huge arrays were refused at once");

  it_get("/health", &r);
  CHECK(r.status == 200, "still serving: %ld", r.status);
  it_resp_clear(&r);
}

static const it_test tests[] = {
    {"ollama_shapes", t_ollama_shapes, false},
    {"ollama_load_unload", t_ollama_load_unload, false},
    {"ollama_hostile", t_ollama_hostile, false},
};
const itest_table itest_ollama = {"ollama", tests, sizeof tests / sizeof *tests};
