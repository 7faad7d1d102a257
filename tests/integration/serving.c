/* serving.c — serving many requests on the main daemon: concurrent streams over 4 slots (on a
 * deterministic model each equals its answer alone), the error bodies of bad requests, a client
 * that hangs up (its request cancelled in the worker), a worker that crashes (its requests fail,
 * the next one reloads it).
 * Must never happen: a stream that never ends, a cancelled request that keeps its slot, a crash
 * that takes the daemon down.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

typedef struct conc_arg {
  int i;
  const char *model;
  resp r;
} conc_arg;

static void *conc_main(void *p) {
  conc_arg *a = p;
  char content[64];
  snprintf(content, sizeof content, "Concurrent request number %d", a->i);
  it_post_json("/v1/chat/completions", it_chat_body(a->model, content, 16, true), &a->r);
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
    json_t *ev = it_sse_events(&args[i].r.body, &done, &ok);
    sy_buf text = {0};
    const char *finish;
    json_t *usage;
    it_stream_text(ev, true, &text, &finish, &usage);
    if (args[i].r.status == 200 && done && ok && finish) good++;
    sy_buf_free(&text);
    json_decref(ev);
  }
  /* the same request alone gives the same text as under concurrency (greedy decoding) */
  resp alone;
  it_post_json("/v1/chat/completions", it_chat_body(model, "Concurrent request number 3", 16, true),
               &alone);
  bool d1, o1, d2, o2;
  json_t *e1 = it_sse_events(&alone.body, &d1, &o1), *e2 = it_sse_events(&args[3].r.body, &d2, &o2);
  sy_buf t1 = {0}, t2 = {0};
  const char *f;
  json_t *u;
  it_stream_text(e1, true, &t1, &f, &u);
  it_stream_text(e2, true, &t2, &f, &u);
  bool same = strcmp(t1.data ? t1.data : "", t2.data ? t2.data : "") == 0;
  sy_buf_free(&t1);
  sy_buf_free(&t2);
  json_decref(e1);
  json_decref(e2);
  it_resp_clear(&alone);
  for (int i = 0; i < N; i++) it_resp_clear(&args[i].r);
  CHECK(good == N, "%d of %d streams completed", good, N);
  CHECK(same || !same_alone, "request 3 alone and under concurrency gave different text");
}

static void t_concurrent_streams(void) { concurrent_streams("chat", true); }

static void t_concurrent_throughput(void) { concurrent_streams("busy", false); }

static void t_errors(void) {
  resp r;
  it_post("/v1/chat/completions", "{\"model\": \"chat\", \"messages\": [", &r);
  CHECK(it_is_error(&r, 400, "invalid_json"), "malformed json: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post("/v1/chat/completions", "[1,2]", &r);
  CHECK(it_is_error(&r, 400, "invalid_json"), "array body: %ld", r.status);
  it_resp_clear(&r);
  it_post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(it_is_error(&r, 400, NULL) && strcmp(it_jstr(r.json, "error.param"), "model") == 0,
        "missing model: %s", r.body.data);
  it_resp_clear(&r);
  it_post("/v1/chat/completions",
          "{\"model\":\"gpt-17\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(it_is_error(&r, 404, "model_not_found"), "unknown model: %ld", r.status);
  CHECK(strstr(it_jstr(r.json, "error.message"), "gpt-17") &&
            strstr(it_jstr(r.json, "error.message"), "chat"),
        "message names the model and lists models: %s", it_jstr(r.json, "error.message"));
  it_resp_clear(&r);
  it_post("/v1/chat/completions",
          "{\"model\":\"chat\",\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"hi\"}]}",
          &r);
  CHECK(it_is_error(&r, 400, NULL) && strcmp(it_jstr(r.json, "error.param"), "temperature") == 0,
        "bad temperature: %s", r.body.data);
  it_resp_clear(&r);
  it_post("/v1/chat/completions", "{\"model\":\"chat\",\"messages\":[]}", &r);
  CHECK(it_is_error(&r, 400, NULL) && strcmp(it_jstr(r.json, "error.param"), "messages") == 0,
        "empty messages");
  it_resp_clear(&r);
  it_post("/v1/chat/completions",
          "{\"model\":\"chat\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(it_is_error(&r, 400, "unsupported_parameter"), "n=2: %s", r.body.data);
  it_resp_clear(&r);
  it_post("/v1/embeddings", "{\"model\":\"chat\",\"input\":\"hi\"}", &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "embeddings on a chat model: %s", r.body.data);
  it_resp_clear(&r);
  it_post("/v1/chat/completions",
          "{\"model\":\"embed\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "chat on an embedding model: %s", r.body.data);
  it_resp_clear(&r);
  /* a prompt longer than the context (512 per request for "chat") */
  sy_buf big = {0};
  for (int i = 0; i < 400; i++) sy_buf_puts(&big, "lorem ipsum dolor ");
  json_t *q = json_pack("{s:s, s:[{s:s, s:s}]}", "model", "chat", "messages", "role", "user",
                        "content", big.data);
  sy_buf_free(&big);
  it_post_json("/v1/chat/completions", json_deep_copy(q), &r);
  CHECK(it_is_error(&r, 400, "context_length_exceeded"), "long prompt: %ld %s", r.status,
        r.body.data);
  CHECK(strstr(it_jstr(r.json, "error.message"), "512") != NULL, "names the context: %s",
        it_jstr(r.json, "error.message"));
  it_resp_clear(&r);
  json_object_set_new(q, "stream", json_true());
  it_post_json("/v1/chat/completions", q, &r);
  CHECK(it_is_error(&r, 400, "context_length_exceeded"), "long prompt, streamed: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  /* a body over the limit (16 MiB default) */
  size_t n = 17u << 20;
  char *huge = malloc(n + 1);
  memset(huge, ' ', n);
  huge[n] = '\0';
  huge[0] = '{';
  huge[n - 1] = '}';
  it_post("/v1/chat/completions", huge, &r);
  free(huge);
  CHECK(it_is_error(&r, 413, "request_too_large"), "413: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_get("/v1/nothing", &r);
  CHECK(it_is_error(&r, 404, "not_found"), "unknown endpoint %ld", r.status);
  it_resp_clear(&r);
  it_get("/v1/chat/completions", &r);
  CHECK(it_is_error(&r, 405, "method_not_allowed"), "GET on POST endpoint %ld", r.status);
  it_resp_clear(&r);
  const char *evil[] = {"Host: evil.example", NULL};
  it_http_do(&D, "GET", "/v1/models", NULL, &r, evil);
  CHECK(it_is_error(&r, 403, "host_not_allowed"), "DNS rebinding Host: %ld", r.status);
  it_resp_clear(&r);
}

static void t_disconnect(void) {
  /* "slow" has one slot and a long context: a stream left to run would hold it for a long time. */
  long long before = it_ps_stat(&D, "cancelled");
  CURLcode rc = it_abandon_stream(&D, "/v1/chat/completions", /* runs until cancelled */
                                  it_long_chat_body("slow", "Go on forever", 30000, true));
  CHECK(rc == CURLE_WRITE_ERROR, "the client aborted (curl %d)", rc);
  /* One slot: this request can only run once the abandoned one has let go of it. */
  resp r;
  it_post_json("/v1/chat/completions", it_chat_body("slow", "Next", 4, false), &r);
  CHECK(r.status == 200, "next request %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  CHECK(it_ps_stat(&D, "cancelled") > before,
        "the abandoned stream was cancelled, not run to its end");
}

static void t_worker_crash(void) {
  resp r;
  it_post_json("/v1/chat/completions", it_chat_body("slow", "warm up", 2, false), &r); /* load it */
  CHECK(r.status == 200, "warm-up %ld", r.status);
  it_resp_clear(&r);
  it_bg_req b; /* still running when the worker is killed */
  it_bg_chat(&b, &D, it_long_chat_body("slow", "Take your time", 30000, false));
  /* wait (bounded) until the long request is in flight, then kill its worker */
  long long pid = -1;
  it_wait_inflight(&D, "slow", &pid);
  CHECK(pid > 0, "the long request never showed as in flight");
  kill((pid_t)pid, SIGKILL);
  it_bg_join(&b);
  CHECK(it_is_error(&b.r, 500, "worker_crashed"), "in-flight request: %ld %s", b.r.status,
        b.r.body.data);
  it_resp_clear(&b.r);
  it_get("/health", &r);
  CHECK(r.status == 200, "daemon still up");
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_chat_body("slow", "after the crash", 4, false), &r);
  CHECK(r.status == 200, "the next request reloads the model: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

static const it_test tests[] = {
    {"concurrent_streams", t_concurrent_streams, false},
    {"concurrent_streams_throughput_mode", t_concurrent_throughput, false},
    {"errors", t_errors, false},
    {"disconnect_cancels", t_disconnect, false},
    {"worker_crash", t_worker_crash, false},
};
const itest_table itest_serving = {"serving", tests, sizeof tests / sizeof *tests};
