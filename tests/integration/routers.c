/* routers.c — routers (router.c) on a daemon of its own: a virtual model whose requests go to one
 * of several real models by rules and a grammar-constrained classifier, with fallback. light =
 * tiny-qwen2, heavy = tiny-qwen3, vision = tiny-vlm and audio = tiny-alm (when made), and a model
 * whose file is cut short (its load fails) for the fallback.
 * Must never happen: a request routed without saying where (headers, /metrics), a failed route
 * without its fallback.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

typedef struct route_resp {
  resp r;
  char route[160], by[32];
} route_resp;

static size_t on_route_header(char *p, size_t sz, size_t n, void *ud) {
  route_resp *rr = ud;
  size_t len = sz * n;
  it_on_header(p, sz, n, &rr->r);
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
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, it_on_body);
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
  if (system)
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", system));
  json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", user));
  return json_pack("{s:s, s:o, s:i}", "model", model, "messages", msgs, "max_tokens", 2);
}

/* The request went to router/route, chosen by `by`, and the answer names model (field and header).
 */
static bool routed(const route_resp *rr, const char *route, const char *by, const char *model) {
  const char *m = it_jstr(rr->r.json, "model");
  return rr->r.status == 200 && !strcmp(rr->route, route) && !strcmp(rr->by, by) && m &&
         !strcmp(m, model) && !strcmp(rr->r.model_hdr, model);
}

static void router_body(void) {
  route_resp rr;
  /* rules, in order: tools → heavy; a long prompt (>= 64 estimated tokens, 4 bytes each) → heavy;
   * a system-prompt tag → heavy; an image → vision (first rule) */
  json_t *q = route_chat("auto", NULL, "what is the weather?");
  json_object_set_new(q, "tools",
                      json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                                 "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]",
                                 0, NULL));
  route_post("/v1/chat/completions", q, &rr);
  CHECK(routed(&rr, "auto/heavy", "rule", "heavy"), "tools: %ld %s %s %s", rr.r.status, rr.route,
        rr.by, rr.r.body.data);
  it_resp_clear(&rr.r);
  char long_text[300];
  memset(long_text, 'a', sizeof long_text - 1);
  for (size_t i = 5; i < sizeof long_text - 1; i += 6) long_text[i] = ' ';
  long_text[sizeof long_text - 1] = '\0'; /* 299 bytes: 75 estimated tokens */
  route_post("/v1/chat/completions", route_chat("auto", NULL, long_text), &rr);
  CHECK(routed(&rr, "auto/heavy", "rule", "heavy"), "long prompt: %ld %s %s", rr.r.status, rr.route,
        rr.by);
  it_resp_clear(&rr.r);
  route_post("/v1/chat/completions", route_chat("auto", "Be thorough. #deep", "hi"), &rr);
  CHECK(routed(&rr, "auto/heavy", "rule", "heavy"), "system tag: %ld %s %s", rr.r.status, rr.route,
        rr.by);
  it_resp_clear(&rr.r);
  if (it_have_vlm) {
    char *u = it_data_url(it_png_5x4);
    route_post("/v1/chat/completions",
               it_vision_body("auto", "What is this?", (const char *[]){u, NULL}), &rr);
    free(u);
    CHECK(routed(&rr, "auto/vision", "rule", "vlm"), "image: %ld %s %s %s", rr.r.status, rr.route,
          rr.by, rr.r.body.data);
    it_resp_clear(&rr.r);
  }
  if (it_have_alm) {
    sy_buf w = {0};
    it_make_wav(&w, 1.0);
    char *a = it_b64_encode(w.data, w.len);
    route_post("/v1/chat/completions",
               it_audio_body("auto", "What is said?", (const char *[]){a, NULL}), &rr);
    free(a);
    sy_buf_free(&w);
    CHECK(routed(&rr, "auto/audio", "rule", "alm"), "audio: %ld %s %s %s", rr.r.status, rr.route,
          rr.by, rr.r.body.data);
    it_resp_clear(&rr.r);
  }

  /* no rule matches: the classifier (random weights, greedy, under a grammar of the route names)
   * always answers one of its routes, and that route's model serves */
  static const char *const asks[] = {"hello", "translate 'cat' to French", "2+2?",
                                     "write a poem about rust", "classify: spam or not"};
  int n_cls = 0;
  for (size_t i = 0; i < sizeof asks / sizeof *asks; i++) {
    route_post("/v1/chat/completions", route_chat("auto", NULL, asks[i]), &rr);
    bool ok = routed(&rr, "auto/light", "classifier", "light") ||
              routed(&rr, "auto/heavy", "classifier", "heavy");
    CHECK(ok, "classifier on '%s': %ld %s %s model %s", asks[i], rr.r.status, rr.route, rr.by,
          rr.r.model_hdr);
    n_cls += ok;
    it_resp_clear(&rr.r);
  }
  /* /v1/completions too, streamed: every chunk names the model that serves */
  json_t *cq = json_pack("{s:s, s:s, s:i, s:b}", "model", "auto", "prompt", "Once upon",
                         "max_tokens", 3, "stream", 1);
  route_post("/v1/completions", cq, &rr);
  bool done = false, wf = false;
  json_t *ev = it_sse_events(&rr.r.body, &done, &wf);
  const char *served = !strcmp(rr.route, "auto/heavy") ? "heavy" : "light";
  bool names = json_array_size(ev) > 0;
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) names &= it_jstr(e, "model") && !strcmp(it_jstr(e, "model"), served);
  CHECK(rr.r.status == 200 && done && wf && names && !strcmp(rr.by, "classifier") &&
            !strcmp(rr.r.model_hdr, served),
        "streamed completion through the router: %ld %s %s", rr.r.status, rr.route, rr.by);
  json_decref(ev);
  it_resp_clear(&rr.r);

  /* a classifier that cannot answer in time: the default route */
  route_post("/v1/chat/completions", route_chat("hasty", NULL, "hello"), &rr);
  CHECK(routed(&rr, "hasty/heavy", "default", "heavy"), "classifier timeout → default: %ld %s %s",
        rr.r.status, rr.route, rr.by);
  it_resp_clear(&rr.r);

  /* fallback: the chosen route's model cannot be loaded, the next route serves; without fallback
   * the load error is the answer */
  route_post("/v1/chat/completions", route_chat("fb", NULL, "hello"), &rr);
  CHECK(routed(&rr, "fb/good", "fallback", "light"), "fallback: %ld %s %s %s", rr.r.status,
        rr.route, rr.by, rr.r.body.data);
  it_resp_clear(&rr.r);
  route_post("/v1/chat/completions", route_chat("nofb", NULL, "hello"), &rr);
  CHECK(rr.r.status >= 500 && it_jstr(rr.r.json, "error.code") &&
            !strcmp(it_jstr(rr.r.json, "error.code"), "load_failed") && !rr.route[0],
        "no fallback: the load error: %ld %s", rr.r.status, rr.r.body.data);
  it_resp_clear(&rr.r);
  /* no image rule: the default route's model has no vision, so the next route that takes images
   * serves */
  if (it_have_vlm) {
    char *u = it_data_url(it_png_5x4);
    route_post("/v1/chat/completions",
               it_vision_body("mixed", "What is this?", (const char *[]){u, NULL}), &rr);
    free(u);
    CHECK(routed(&rr, "mixed/vision", "fallback", "vlm"), "image without a rule: %ld %s %s %s",
          rr.r.status, rr.route, rr.by, rr.r.body.data);
    it_resp_clear(&rr.r);
  }
  /* a request the chosen model refuses is refused, not passed on */
  q = route_chat("auto", NULL, "hi");
  json_object_set_new(q, "max_tokens", json_integer(-3));
  route_post("/v1/chat/completions", q, &rr);
  CHECK(rr.r.status == 400 && it_jstr(rr.r.json, "error.param") &&
            !strcmp(it_jstr(rr.r.json, "error.param"), "max_tokens"),
        "a bad request through the router: %ld %s", rr.r.status, rr.r.body.data);
  it_resp_clear(&rr.r);

  /* listed by /v1/models, with its routes */
  resp r;
  it_http_do(&B, "GET", "/v1/models/auto", NULL, &r, NULL);
  CHECK(r.status == 200 && it_jstr(r.json, "owned_by") &&
            !strcmp(it_jstr(r.json, "owned_by"), "switchyard-router") &&
            it_jstr(r.json, "routes.heavy") && !strcmp(it_jstr(r.json, "routes.heavy"), "heavy") &&
            !strcmp(it_jstr(r.json, "classifier") ?: "", "light"),
        "GET /v1/models/auto: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/v1/models", NULL, &r, NULL);
  bool listed = false;
  json_array_foreach(json_object_get(r.json, "data"), i, e) listed |=
      !strcmp(it_jstr(e, "id") ?: "", "fb");
  CHECK(r.status == 200 && listed, "the routers are listed: %s", r.body.data);
  it_resp_clear(&r);

  /* counted: every decision above, by router, route and what chose it */
  it_http_do(&B, "GET", "/metrics", NULL, &r, NULL);
  const char *t = r.body.data ? r.body.data : "";
  double rule_heavy = it_metric(
      t, "switchyard_router_decisions_total{router=\"auto\",route=\"heavy\",by=\"rule\"}");
  double cls_l = it_metric(
      t, "switchyard_router_decisions_total{router=\"auto\",route=\"light\",by=\"classifier\"}");
  double cls_h = it_metric(
      t, "switchyard_router_decisions_total{router=\"auto\",route=\"heavy\",by=\"classifier\"}");
  double cls_n = it_metric(t, "switchyard_router_classifier_seconds_count{router=\"auto\"}");
  double fb = it_metric(
      t, "switchyard_router_decisions_total{router=\"fb\",route=\"good\",by=\"fallback\"}");
  double dflt = it_metric(
      t, "switchyard_router_decisions_total{router=\"hasty\",route=\"heavy\",by=\"default\"}");
  double fails = it_metric(t, "switchyard_router_classifier_failures_total{router=\"hasty\"}");
  /* the classifier decided the n_cls chats and the streamed completion; it also ran for the refused
   * request (timed, but no route served it) */
  CHECK(rule_heavy == 3 && (cls_l < 0 ? 0 : cls_l) + (cls_h < 0 ? 0 : cls_h) == n_cls + 1 &&
            cls_n == n_cls + 2 && fb == 1 && dflt == 1 && fails == 1,
        "router metrics: rule %g, classifier %g+%g (%d+1 wanted, %g timed), fallback %g, default "
        "%g, failures %g",
        rule_heavy, cls_l, cls_h, n_cls, cls_n, fb, dflt, fails);
  char out[2048];
  int pc = it_promtool_check(&r.body, out, sizeof out);
  CHECK(pc != 0, "promtool check metrics: %.900s", out);
  it_resp_clear(&r);
}

static void t_router(void) {
  char src[600], dst[600];
  snprintf(src, sizeof src, "%s/tiny-qwen2.gguf", it_models_dir);
  snprintf(dst, sizeof dst, "%s/router-broken.gguf", it_tmpdir);
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  CHECK(in && out, "copy");
  if (!in || !out) return;
  fseek(in, 0, SEEK_END);
  long left = ftell(in) -
              (4L << 20); /* the header stays whole, the last tensors are cut off: the load fails */
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
  const char *d = it_models_dir;
  char yaml[4096];
  int n = snprintf(
      yaml, sizeof yaml,
      "log_level: warn\n"
      "models:\n"
      "  - {name: light, file: %s/tiny-qwen2.gguf, context: 512, parallel: 1, keep_alive: -1}\n"
      "  - {name: heavy, file: %s/tiny-qwen3.gguf, context: 512, parallel: 1, keep_alive: -1}\n"
      "  - {name: broken, file: %s, context: 256, parallel: 1}\n",
      d, d, dst);
  if (it_have_vlm)
    n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                  "  - {name: vlm, file: %s/tiny-vlm.gguf, mmproj: %s/tiny-vlm-mmproj.gguf,\n"
                  "     context: 512, parallel: 1}\n",
                  d, d);
  if (it_have_alm)
    n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                  "  - {name: alm, file: %s/tiny-alm.gguf, mmproj: %s/tiny-alm-mmproj.gguf,\n"
                  "     context: 1024, parallel: 1}\n",
                  d, d);
  snprintf(
      yaml + n, sizeof yaml - (size_t)n,
      "routers:\n"
      "  - name: auto\n"
      "    routes: {light: light, heavy: heavy%s%s}\n"
      "    rules:\n"
      "%s%s"
      "      - {tools: true, route: heavy}\n"
      "      - {min_prompt_tokens: 64, route: heavy}\n"
      "      - {system_tag: '#deep', route: heavy}\n"
      "    classifier: {model: light, routes: [light, heavy], timeout_ms: 120000, max_input_chars: "
      "200}\n"
      "    default: light\n"
      "  - {name: hasty, routes: {light: light, heavy: heavy}, default: heavy,\n"
      "     classifier: {model: light, timeout_ms: 1}}\n"
      "  - {name: fb, routes: {bad: broken, good: light}, default: bad, fallback: true}\n"
      "  - {name: nofb, routes: {bad: broken, good: light}, default: bad}\n"
      "%s",
      it_have_vlm ? ", vision: vlm" : "", it_have_alm ? ", audio: alm" : "",
      it_have_vlm ? "      - {images: true, route: vision}\n" : "",
      it_have_alm ? "      - {audio: true, route: audio}\n" : "",
      it_have_vlm
          ? "  - {name: mixed, routes: {text: light, vision: vlm}, default: text, fallback: true}\n"
          : "");
  it_with_own_daemon("router", yaml, router_body);
}

static const it_test tests[] = {
    {"router", t_router, false},
};
const itest_table itest_routers = {"routers", tests, sizeof tests / sizeof *tests};
