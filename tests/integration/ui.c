/* ui.c — the status page as HTTP serves it (src/daemon/ui/, web/ui/): "/" and "/ui/…" with their
 * types, the CSP and the other headers, ETag revalidation (304), unknown and traversing paths
 * (404), the wrong method (405); the same Host check as the API (403); browsers' cross-origin
 * writes refused on every route (403 cross_origin) while same-origin ones and clients without an
 * Origin pass; and with API keys configured, the page served without a key while the API still
 * needs one. What the page does in a browser is tests/browser/ (headless Chromium). */
#include "harness.h"

typedef struct page_resp {
  long status;
  sy_buf hdrs; /* every response header line, as received */
  sy_buf body;
} page_resp;

static size_t on_bytes(char *p, size_t sz, size_t n, void *ud) {
  return sy_buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

/* method path on d with extra headers (NULL-ended), as is: no Authorization unless given, the
 * path not normalised (CURLOPT_PATH_AS_IS). */
static void page_do(const daemon_proc *d, const char *method, const char *path,
                    const char *const *headers, const char *body, page_resp *r) {
  memset(r, 0, sizeof *r);
  CURL *c = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s%s", d->base, path);
  struct curl_slist *hl = NULL;
  for (const char *const *h = headers; h && *h; h++) hl = curl_slist_append(hl, *h);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_bytes);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_bytes);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->hdrs);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  sy_buf_append(&r->hdrs, "", 1);
  sy_buf_append(&r->body, "", 1);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
}

static void page_clear(page_resp *r) {
  sy_buf_free(&r->hdrs);
  sy_buf_free(&r->body);
}

/* The value of header name (case-insensitive) in r, copied into out ("" when absent). */
static const char *hdr(const page_resp *r, const char *name, char *out, size_t cap) {
  out[0] = '\0';
  size_t nl = strlen(name);
  for (const char *l = r->hdrs.data; l && *l;) {
    const char *end = strchr(l, '\n');
    size_t len = end ? (size_t)(end - l) : strlen(l);
    if (len > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ') v++;
      size_t vl = len - (size_t)(v - l);
      while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n')) vl--;
      snprintf(out, cap, "%.*s", (int)vl, v);
      return out;
    }
    l = end ? end + 1 : l + len;
  }
  return out;
}

static bool has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* An OpenAI-shaped error with this code in a page_resp's body. */
static bool is_code(const page_resp *r, const char *code) {
  json_t *j = json_loads(r->body.data ? r->body.data : "", 0, NULL);
  bool ok = it_str_is(it_jstr(j, "error.code"), code);
  json_decref(j);
  return ok;
}

static void t_page(void) {
  page_resp r;
  char v[1024], etag[128];
  page_do(&D, "GET", "/", NULL, NULL, &r);
  CHECK(r.status == 200, "GET / -> %ld", r.status);
  CHECK(has(hdr(&r, "Content-Type", v, sizeof v), "text/html"), "type %.100s", v);
  CHECK(has(r.body.data, "<script type=\"module\" src=\"/ui/app.js\">"), "the page loads app.js");
  CHECK(!has(r.body.data, "<script>") && !has(r.body.data, "style="), "no inline script or style");
  hdr(&r, "Content-Security-Policy", v, sizeof v);
  CHECK(has(v, "script-src 'self'") && has(v, "default-src 'none'") &&
            has(v, "frame-ancestors 'none'") && !has(v, "unsafe-inline"),
        "CSP: %.400s", v);
  CHECK(strcmp(hdr(&r, "X-Content-Type-Options", v, sizeof v), "nosniff") == 0, "nosniff: %.100s",
        v);
  CHECK(strcmp(hdr(&r, "Cache-Control", v, sizeof v), "no-cache") == 0, "cache: %.100s", v);
  hdr(&r, "ETag", etag, sizeof etag);
  CHECK(etag[0] == '"', "a strong ETag: %.100s", etag);
  size_t len = r.body.len;
  page_clear(&r);

  /* the same page at /ui/ and /ui; revalidation by ETag */
  const char *same[] = {"/ui/", "/ui", "/ui/index.html"};
  for (size_t i = 0; i < 3; i++) {
    page_do(&D, "GET", same[i], NULL, NULL, &r);
    bool ok = r.status == 200 && r.body.len == len;
    page_clear(&r);
    CHECK(ok, "GET %s is the page", same[i]);
  }
  char inm[200];
  snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
  const char *h304[] = {inm, NULL};
  page_do(&D, "GET", "/", h304, NULL, &r);
  CHECK(r.status == 304 && r.body.len <= 1, "If-None-Match -> %ld", r.status);
  page_clear(&r);

  /* every asset with its type and the CSP */
  const struct {
    const char *path, *type;
  } assets[] = {{"/ui/app.js", "text/javascript"},
                {"/ui/api.js", "text/javascript"},
                {"/ui/playground.js", "text/javascript"},
                {"/ui/style.css", "text/css"},
                {"/ui/favicon.svg", "image/svg+xml"}};
  for (size_t i = 0; i < sizeof assets / sizeof *assets; i++) {
    page_do(&D, "GET", assets[i].path, NULL, NULL, &r);
    bool ok = r.status == 200 && has(hdr(&r, "Content-Type", v, sizeof v), assets[i].type) &&
              has(hdr(&r, "Content-Security-Policy", v, sizeof v), "script-src 'self'");
    page_clear(&r);
    CHECK(ok, "GET %s: 200, %s, CSP", assets[i].path, assets[i].type);
  }
  page_do(&D, "HEAD", "/ui/app.js", NULL, NULL, &r);
  CHECK(r.status == 200 && r.body.len <= 1, "HEAD -> %ld, no body", r.status);
  page_clear(&r);

  /* nothing else: unknown names, traversal, folders, another method */
  const char *missing[] = {"/ui/nope.js", "/ui/../etc/passwd", "/ui/%2e%2e/main.c",
                           "/ui//app.js", "/ui/index.html/",   "/index.html"};
  for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
    page_do(&D, "GET", missing[i], NULL, NULL, &r);
    bool ok = r.status == 404 && is_code(&r, "not_found");
    page_clear(&r);
    CHECK(ok, "GET %s -> 404 not_found", missing[i]);
  }
  page_do(&D, "POST", "/", NULL, "{}", &r);
  CHECK(r.status == 405 && is_code(&r, "method_not_allowed"), "POST / -> %ld", r.status);
  page_clear(&r);
}

/* The Host check (DNS rebinding) holds for the page as for the API. */
static void t_host(void) {
  page_resp r;
  const char *evil[] = {"Host: evil.example", NULL};
  page_do(&D, "GET", "/", evil, NULL, &r);
  CHECK(r.status == 403 && is_code(&r, "host_not_allowed"), "foreign Host -> %ld", r.status);
  page_clear(&r);
  const char *local[] = {"Host: localhost", NULL};
  page_do(&D, "GET", "/", local, NULL, &r);
  CHECK(r.status == 200, "Host: localhost -> %ld", r.status);
  page_clear(&r);
}

/* A browser's write from another origin never reaches a handler; a same-origin one (the page's)
 * and one without Origin (an SDK) do. The model is unknown, so a request that gets through is a
 * 404 model_not_found: nothing is loaded by this test. */
static void t_cross_origin(void) {
  page_resp r;
  const char *body = "{\"model\":\"no-such-model-ui\"}";
  char same[128], host[100];
  snprintf(host, sizeof host, "127.0.0.1:%d", D.port);
  snprintf(same, sizeof same, "Origin: http://%s", host);
  const char *cross[][2] = {{"Origin: http://evil.example", NULL},
                            {"Origin: null", NULL},
                            {"Origin: http://127.0.0.1:1", NULL},
                            {"Origin: http://localhost.evil.example", NULL}};
  const char *paths[] = {"/api/load", "/api/unload", "/v1/chat/completions"};
  for (size_t p = 0; p < sizeof paths / sizeof *paths; p++)
    for (size_t i = 0; i < sizeof cross / sizeof *cross; i++) {
      page_do(&D, "POST", paths[p], cross[i], body, &r);
      bool ok = r.status == 403 && is_code(&r, "cross_origin");
      long st = r.status;
      page_clear(&r);
      CHECK(ok, "POST %s with %s -> %ld, not 403 cross_origin", paths[p], cross[i][0], st);
    }
  const char *same_h[] = {same, NULL};
  page_do(&D, "POST", "/api/load", same_h, body, &r);
  CHECK(r.status == 404 && is_code(&r, "model_not_found"), "same origin -> %ld", r.status);
  page_clear(&r);
  page_do(&D, "POST", "/api/load", NULL, body, &r);
  CHECK(r.status == 404, "no Origin -> %ld", r.status);
  page_clear(&r);
  const char *cross_get[] = {"Origin: http://evil.example", NULL}; /* reads: the browser's CORS */
  page_do(&D, "GET", "/health", cross_get, NULL, &r);
  CHECK(r.status == 200, "a GET with a foreign Origin -> %ld", r.status);
  page_clear(&r);
}

static void b_keys(void) {
  page_resp r;
  page_do(&B, "GET", "/", NULL, NULL, &r);
  CHECK(r.status == 200, "the page without a key -> %ld", r.status);
  page_clear(&r);
  page_do(&B, "GET", "/ui/app.js", NULL, NULL, &r);
  CHECK(r.status == 200, "its script without a key -> %ld", r.status);
  page_clear(&r);
  page_do(&B, "GET", "/api/ps", NULL, NULL, &r);
  CHECK(r.status == 401 && is_code(&r, "invalid_api_key"), "the API without a key -> %ld",
        r.status);
  page_clear(&r);
  const char *key[] = {"Authorization: Bearer sk-ui-test", NULL};
  page_do(&B, "GET", "/api/ps", key, NULL, &r);
  CHECK(r.status == 200, "the API with the key -> %ld", r.status);
  page_clear(&r);
}
static void t_keys(void) {
  it_with_own_daemon("ui_keys", "api_keys: [sk-ui-test]\nmodels: []\n", b_keys);
}

static const it_test tests[] = {
    {"ui_page", t_page, false},
    {"ui_host", t_host, false},
    {"ui_cross_origin", t_cross_origin, false},
    {"ui_keys", t_keys, false},
};

const itest_table itest_ui = {"ui", tests, sizeof tests / sizeof *tests};
