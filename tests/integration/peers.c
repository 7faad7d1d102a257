/* peers.c — peers (CONFIG.md "Peers"): two daemons on loopback, A (the near one, started here)
 * peering B (the harness's second daemon, with an API key), every API family through A to B's
 * models (chat whole and streamed, completions, embeddings, a transcription upload, speech,
 * Anthropic's, the Responses and Ollama's routes, a load), the peer's models listed and marked, its
 * real state and memory in A's /api/ps, a streamed chat abandoned by A's client cancelled in B's
 * worker, B stopped (A answers 503 with Retry-After at once) and started again on its port (A
 * serves again), routers choosing between a local and a peer model (and falling back to the local
 * one while the peer is down), a request already forwarded once refused. Must never happen: a
 * request for a down peer that hangs, a request forwarded twice, a cancelled stream left running on
 * the peer.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps or /v1/models). */
#include "harness.h"

#define FAR_KEY "sk-far"
#define POLL_TRIES                                                              \
  100000 /* bounded polls: requests to a daemon, until what they wait for shows \
          */

static daemon_proc A;   /* the near daemon: its config peers B */
static char b_cfg[512]; /* B's config file, to start it again on its port */
static char a_cfg[512];

static void write_b_config(void) {
  snprintf(b_cfg, sizeof b_cfg, "%s/peer-far.yaml", it_tmpdir);
  FILE *f = fopen(b_cfg, "w");
  if (!f) return;
  fprintf(f,
          "log_level: warn\n"
          "admin_keys: [" FAR_KEY
          "]\n" /* A loads and unloads B's models: its key must be one of B's admin keys */
          "models:\n"
          "  - {name: far-chat, aliases: [fc], file: %s/tiny-qwen2.gguf, context: 512, "
          "parallel: 2, keep_alive: -1}\n"
          "  - {name: far-slow, file: %s/tiny-qwen2.gguf, context: 32768, parallel: 1}\n"
          "  - {name: far-embed, file: %s/tiny-bert.gguf, context: 512}\n"
          "  - {name: far-whisper, engine: whisper, file: %s/tiny-whisper.bin}\n"
          "  - {name: local-chat, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1}\n",
          it_models_dir, it_models_dir, it_models_dir, it_models_dir, it_models_dir);
  fclose(f);
}

/* A's config: its own model, routers to B's model, and B as its peer; with only: B's models to
 * offer (instead of `models: all`), no routers, and a second peer that is never up. */
static void write_a_config(int b_port, const char *only) {
  snprintf(a_cfg, sizeof a_cfg, "%s/peer-near.yaml", it_tmpdir);
  FILE *f = fopen(a_cfg, "w");
  if (!f) return;
  fprintf(f,
          "log_level: warn\n"
          "builtin_voice: false\n" /* B's `speak` is the one served here */
          "models:\n"
          "  - {name: local-chat, file: %s/tiny-qwen2.gguf, context: 512, parallel: 2, "
          "keep_alive: -1}\n",
          it_models_dir);
  if (!only)
    fprintf(f,
            "routers:\n"
            "  - name: pick\n"
            "    routes: {light: local-chat, heavy: far-chat}\n"
            "    rules: [{min_prompt_tokens: 40, route: heavy}]\n"
            "    default: light\n"
            "  - name: pick-fb\n"
            "    routes: {heavy: far-chat, light: local-chat}\n"
            "    default: heavy\n"
            "    fallback: [light]\n");
  fprintf(f,
          "peers:\n"
          "  - {name: far, url: 'http://127.0.0.1:%d', api_key: " FAR_KEY
          ", refresh: 1s, connect_timeout: 2s, models: %s}\n",
          b_port, only ? only : "all");
  if (only) /* a peer nobody listens for (port 1 on loopback), never reached */
    fprintf(f, "  - {name: gone, url: 'http://127.0.0.1:1', models: [ghost], refresh: 1s}\n");
  fclose(f);
}

/* A's /v1/models entry of name (a new reference), or NULL. */
static json_t *a_model(const char *name) {
  resp r;
  it_http_do(&A, "GET", "/v1/models", NULL, &r, NULL);
  json_t *found = NULL, *m;
  size_t i;
  json_array_foreach(json_object_get(r.json, "data"), i, m) {
    if (it_str_is(it_jstr(m, "id"), name)) found = json_incref(m);
  }
  it_resp_clear(&r);
  return found;
}

/* A's /api/ps "peers" entry of the peer far (a new reference), or NULL. */
static json_t *a_peer_ps(void) {
  resp r;
  it_http_do(&A, "GET", "/api/ps", NULL, &r, NULL);
  json_t *p = json_incref((json_t *)it_jpath(r.json, "peers.0"));
  it_resp_clear(&r);
  return p;
}

/* Start B (on port, 0: any) and A peering it; A returns once it lists B's models. */
static bool start_pair(void) {
  write_b_config();
  if (it_start_daemon(&B, b_cfg) != 0) return false;
  B.api_key = FAR_KEY;
  write_a_config(B.port, NULL);
  if (it_start_daemon(&A, a_cfg) != 0) return false;
  for (int i = 0; i < POLL_TRIES; i++) { /* bounded: until A's poller has read B's list */
    json_t *m = a_model("far-chat");
    json_decref(m);
    if (m) return true;
  }
  return false;
}

/* Run body with the pair up; both are stopped afterwards, whatever body's checks said, and must
 * exit cleanly (under ASan: no leak, no error). */
static void with_pair(void (*body)(void)) {
  bool up = start_pair();
  if (up) body();
  int sa = it_stop_daemon(&A), sb = it_stop_daemon(&B);
  B.api_key = NULL;
  CHECK(up, "B and A started, and A lists B's models");
  CHECK(sa == 0 && sb == 0, "clean exits: A %d, B %d", sa, sb);
}

/* ---- the model list ---- */

static void models_body(void) {
  json_t *m = a_model("far-chat");
  CHECK(m && it_str_is(it_jstr(m, "peer"), "far") && it_str_is(it_jstr(m, "peer_state"), "up") &&
            it_lists(json_object_get(m, "capabilities"), "chat"),
        "far-chat is listed, marked with its peer");
  json_decref(m);
  m = a_model("local-chat"); /* A's own wins over B's of the same name */
  CHECK(m && !json_object_get(m, "peer"), "local-chat is A's own");
  json_decref(m);
  m = a_model("pick");
  CHECK(m && !json_object_get(m, "peer"), "A's router is listed as A's");
  json_decref(m);
  m = a_model("speak");
  CHECK(m && it_str_is(it_jstr(m, "peer"), "far"), "B's built-in voice is offered");
  json_decref(m);
  resp r;
  it_http_do(&A, "GET", "/v1/models/fc", NULL, &r, NULL); /* an alias of B's model */
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "id"), "far-chat") &&
            it_str_is(it_jstr(r.json, "peer"), "far"),
        "GET /v1/models/fc: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_http_do(&A, "GET", "/v1/models/nothing-anywhere", NULL, &r, NULL);
  CHECK(it_is_error(&r, 404, "model_not_found"), "unknown name: %ld", r.status);
  it_resp_clear(&r);
}

static void t_models(void) { with_pair(models_body); }

/* SIGHUP with another `models:` for the peer: A offers what the new list says, without a restart.
 */
static void reload_body(void) {
  write_a_config(B.port, "[far-embed]");
  CHECK(kill(A.pid, SIGHUP) == 0, "SIGHUP A");
  bool changed = false;
  for (int i = 0; i < POLL_TRIES && !changed; i++) { /* bounded: until the new peer has read B */
    json_t *chat = a_model("far-chat"), *emb = a_model("far-embed");
    changed = !chat && emb && it_str_is(it_jstr(emb, "peer"), "far");
    json_decref(chat);
    json_decref(emb);
  }
  CHECK(changed, "after the reload A offers far-embed, not far-chat");
  resp r;
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("far-chat", "Still there?", 2, false),
                  &r);
  CHECK(it_is_error(&r, 404, "model_not_found"), "far-chat is not offered now: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_post_json_at(&A, "/v1/embeddings", json_pack("{s:s, s:s}", "model", "far-embed", "input", "x"),
                  &r);
  CHECK(r.status == 200, "far-embed through the reloaded peer: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* a peer never reached: the names its list gives answer 503 at once, not 404 */
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("ghost", "Anyone?", 2, false), &r);
  CHECK(it_is_error(&r, 503, "peer_unavailable") && atoi(r.retry_after) >= 1,
        "a model of a peer never reached: %ld '%s' %s", r.status, r.retry_after, r.body.data);
  it_resp_clear(&r);
}

static void t_reload(void) { with_pair(reload_body); }

/* ---- every API family through the peer ---- */

static void families_body(void) {
  resp r;
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("far-chat", "Hello there", 6, false),
                  &r);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "model"), "far-chat") &&
            it_jstr(r.json, "choices.0.message.content") &&
            it_jnum(r.json, "usage.completion_tokens") > 0,
        "chat through the peer: %ld %s", r.status, r.body.data);
  CHECK(it_str_is(r.model_hdr, "far-chat"), "X-Switchyard-Model from B: '%s'", r.model_hdr);
  it_resp_clear(&r);
  /* an alias, streamed: B's SSE as B sends it */
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("fc", "Count to ten", 8, true), &r);
  bool done, wf;
  json_t *ev = it_sse_events(&r.body, &done, &wf);
  size_t nev = json_array_size(ev);
  json_decref(ev);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/event-stream", 17) == 0 && done && wf &&
            nev >= 3,
        "streamed: %ld '%s' done=%d well_formed=%d events=%zu", r.status, r.content_type, done, wf,
        nev);
  it_resp_clear(&r);
  it_post_json_at(
      &A, "/v1/completions",
      json_pack("{s:s, s:s, s:i}", "model", "far-chat", "prompt", "Once", "max_tokens", 4), &r);
  CHECK(r.status == 200 && it_jstr(r.json, "choices.0.text"),
        "completions through the peer: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json_at(&A, "/v1/embeddings",
                  json_pack("{s:s, s:[s,s]}", "model", "far-embed", "input", "one", "two"), &r);
  size_t dim = 0;
  double norm = it_norm_of(it_jpath(r.json, "data.1.embedding"), &dim);
  CHECK(r.status == 200 && dim > 0 && fabs(norm - 1.0) < 1e-3,
        "embeddings through the peer: %ld dim %zu norm %f", r.status, dim, norm);
  it_resp_clear(&r);
  /* a multipart upload: the form relayed as received */
  if (!it_test_wav.len) it_make_wav(&it_test_wav, 3.0);
  it_post_form_at(&A, "/v1/audio/transcriptions", it_test_wav.data, it_test_wav.len,
                  (const char *const[]){"model", "far-whisper", "response_format", "json", NULL},
                  &r);
  CHECK(r.status == 200 && it_jstr(r.json, "text"), "transcription through the peer: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  it_speech_resp sr;
  it_speech_post(&A, it_speech_body("speak", "Hello from the other box.", "wav", NULL, 1), &sr);
  const unsigned char *pcm;
  size_t n = 0;
  char why[128] = "";
  bool wav = it_wav_parse(&sr.body, &pcm, &n, why, sizeof why);
  CHECK(sr.status == 200 && wav && n > 0, "speech through the peer: %ld %s (%zu bytes)", sr.status,
        why, n);
  sy_buf_free(&sr.body);
  /* other APIs' routes: the peer speaks them too */
  it_post_json_at(&A, "/v1/messages",
                  json_pack("{s:s, s:i, s:[{s:s, s:s}]}", "model", "far-chat", "max_tokens", 4,
                            "messages", "role", "user", "content", "Hi"),
                  &r);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "type"), "message"),
        "Anthropic's route through the peer: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json_at(
      &A, "/api/chat",
      json_pack("{s:s, s:b, s:{s:i}, s:[{s:s, s:s}]}", "model", "far-chat", "stream", 0, "options",
                "num_predict", 4, "messages", "role", "user", "content", "Hi"),
      &r);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "message.role"), "assistant"),
        "Ollama's route through the peer: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json_at(
      &A, "/v1/responses",
      json_pack("{s:s, s:s, s:i}", "model", "far-chat", "input", "Hi", "max_output_tokens", 4), &r);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "object"), "response"),
        "the Responses API through the peer: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* the admin side: a load of a peer's model loads it there */
  it_post_json_at(&A, "/api/load", json_pack("{s:s}", "model", "far-slow"), &r);
  json_t *m = it_ps_model(&B, "far-slow");
  CHECK(r.status == 200 && m && it_str_is(it_jstr(m, "state"), "loaded"),
        "POST /api/load through the peer: %ld %s", r.status, r.body.data);
  json_decref(m);
  it_resp_clear(&r);
  /* a request B refuses comes back as B said it */
  it_post_json_at(&A, "/v1/embeddings", json_pack("{s:s, s:s}", "model", "far-chat", "input", "x"),
                  &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "B's refusal relayed: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  /* a request already forwarded once is never forwarded again */
  it_http_do(&A, "POST", "/v1/chat/completions",
             "{\"model\":\"far-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &r,
             (const char *const[]){"X-Switchyard-Forwarded: 1", NULL});
  CHECK(it_is_error(&r, 508, "peer_loop"), "a second hop: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

static void t_families(void) { with_pair(families_body); }

/* ---- a client that goes away ---- */

static void cancel_body(void) {
  long long before = it_ps_stat(&B, "cancelled");
  CURLcode rc = it_abandon_stream(&A, "/v1/chat/completions", /* runs until cancelled */
                                  it_long_chat_body("far-slow", "Go on forever", 30000, true));
  CHECK(rc == CURLE_WRITE_ERROR, "the client aborted (curl %d)", rc);
  /* far-slow has one slot: this request can only run once the abandoned one let go of it on B */
  resp r;
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("far-slow", "Next", 4, false), &r);
  CHECK(r.status == 200, "next request through the peer %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  CHECK(it_ps_stat(&B, "cancelled") > before,
        "B cancelled the abandoned stream (its worker's request), not ran it to its end");
  json_t *m = it_ps_model(&B, "far-slow");
  CHECK(m && it_jnum(m, "inflight") == 0, "far-slow's slot is free on B");
  json_decref(m);
}

static void t_cancel(void) { with_pair(cancel_body); }

/* ---- the peer's state in A's /api/ps ---- */

static void ps_body(void) {
  resp r;
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("far-chat", "Load it", 2, false), &r);
  CHECK(r.status == 200, "chat %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* A shows what B reports (its own reads of B's /api/ps), not a guess: the same state and size */
  bool same = false;
  long long size_a = -1, size_b = -1;
  for (int i = 0; i < POLL_TRIES && !same; i++) { /* bounded: A reads B again after a request */
    json_t *ma = it_ps_model(&A, "far-chat"), *mb = it_ps_model(&B, "far-chat");
    size_a = it_jnum(ma, "size");
    size_b = it_jnum(mb, "size");
    same = ma && mb && it_str_is(it_jstr(ma, "peer"), "far") &&
           it_str_is(it_jstr(ma, "state"), "loaded") && it_str_is(it_jstr(mb, "state"), "loaded") &&
           size_b > 0 && size_a == size_b;
    json_decref(ma);
    json_decref(mb);
  }
  CHECK(same, "A's /api/ps lists far-chat as B reports it (size %lld on A, %lld on B)", size_a,
        size_b);
  json_t *p = a_peer_ps();
  CHECK(p && it_str_is(it_jstr(p, "name"), "far") && it_str_is(it_jstr(p, "state"), "up") &&
            it_jnum(p, "memory.budget") > 0 && it_jnum(p, "models") >= 5,
        "A's /api/ps peers[0]: the peer up, its memory");
  json_decref(p);
  it_http_do(&A, "GET", "/api/ps", NULL, &r, NULL); /* A's own stay A's */
  json_t *e;
  size_t i;
  bool local_marked = false;
  json_array_foreach(json_object_get(r.json, "models"), i, e) {
    if (it_str_is(it_jstr(e, "name"), "local-chat") && json_object_get(e, "peer"))
      local_marked = true;
  }
  it_resp_clear(&r);
  CHECK(!local_marked, "a local name is never shown as the peer's");
}

static void t_ps(void) { with_pair(ps_body); }

/* `switchyard ps` against A: the peer's model as NAME@PEER, and a line for the peer. */
static void cli_ps_body(void) {
  resp r;
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("far-chat", "Load it", 2, false), &r);
  CHECK(r.status == 200, "chat %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  bool shown = false;
  for (int i = 0; i < POLL_TRIES && !shown; i++) { /* bounded: until A has read B since */
    json_t *m = it_ps_model(&A, "far-chat");
    shown = m != NULL;
    json_decref(m);
  }
  CHECK(shown, "A's /api/ps lists far-chat");
  sy_buf cmd = {0};
  sy_buf_printf(&cmd, "env -u SWITCHYARD_HOST -u SWITCHYARD_API_KEY '%s' ps --port %d",
                it_daemon_bin, A.port);
  FILE *f = cmd.data ? popen(cmd.data, "r") : NULL;
  sy_buf_free(&cmd);
  CHECK(f != NULL, "run switchyard ps");
  sy_buf out = {0};
  char line[512];
  while (fgets(line, sizeof line, f)) sy_buf_puts(&out, line);
  int st = pclose(f);
  bool ok = st == 0 && out.data && strstr(out.data, "\nfar-chat@far ") &&
            strstr(out.data, "\npeer far (http://127.0.0.1:") && strstr(out.data, "): up");
  CHECK(ok, "switchyard ps: exit %d\n%s", st, out.data ? out.data : "");
  sy_buf_free(&out);
}

static void t_cli_ps(void) { with_pair(cli_ps_body); }

/* ---- the peer down, then back ---- */

static void down_up_body(void) {
  int port = B.port;
  resp r;
  CHECK(it_stop_daemon(&B) == 0, "B stopped cleanly");
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("far-chat", "Anyone?", 2, false), &r);
  CHECK(it_is_error(&r, 503, "peer_unavailable") && atoi(r.retry_after) >= 1,
        "a down peer's model: %ld Retry-After '%s' %s", r.status, r.retry_after, r.body.data);
  it_resp_clear(&r);
  /* a router falls back to its local route while the peer is away */
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("pick-fb", "Anyone?", 2, false), &r);
  CHECK(r.status == 200 && it_str_is(r.model_hdr, "local-chat"),
        "router fallback to the local model: %ld '%s' %s", r.status, r.model_hdr, r.body.data);
  it_resp_clear(&r);
  json_t *p = a_peer_ps();
  CHECK(p && it_str_is(it_jstr(p, "state"), "down") && it_jstr(p, "error"),
        "A's /api/ps says the peer is down");
  json_decref(p);
  json_t *m = a_model("far-chat"); /* still offered (503 rather than 404 while it is away) */
  CHECK(m && it_str_is(it_jstr(m, "peer_state"), "down"), "far-chat listed, its peer down");
  json_decref(m);
  /* back on its port: served again, and A sees it up */
  CHECK(it_start_daemon_at(&B, b_cfg, port) == 0, "B started again on port %d", port);
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("far-chat", "Back?", 2, false), &r);
  CHECK(r.status == 200, "served again: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  bool up = false;
  for (int i = 0; i < POLL_TRIES && !up; i++) { /* bounded: A's next read of B */
    p = a_peer_ps();
    up = p && it_str_is(it_jstr(p, "state"), "up");
    json_decref(p);
  }
  CHECK(up, "A's /api/ps says the peer is up again");
}

static void t_down_up(void) { with_pair(down_up_body); }

/* ---- routers ---- */

static void router_body(void) {
  resp r;
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("pick", "Short one", 2, false), &r);
  CHECK(r.status == 200 && it_str_is(r.model_hdr, "local-chat"), "short → local: %ld '%s' %s",
        r.status, r.model_hdr, r.body.data);
  it_resp_clear(&r);
  char words[1024];
  it_words(words, sizeof words, 80, 1); /* ~ 100 estimated tokens: the heavy route's rule */
  it_post_json_at(&A, "/v1/chat/completions", it_chat_body("pick", words, 2, false), &r);
  CHECK(r.status == 200 && it_str_is(r.model_hdr, "far-chat") &&
            it_str_is(it_jstr(r.json, "model"), "far-chat"),
        "long → the peer's model: %ld '%s' %s", r.status, r.model_hdr, r.body.data);
  it_resp_clear(&r);
  /* through another API's door: the client's own request goes to the peer */
  it_post_json_at(&A, "/v1/messages",
                  json_pack("{s:s, s:i, s:[{s:s, s:s}]}", "model", "pick", "max_tokens", 2,
                            "messages", "role", "user", "content", words),
                  &r);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "type"), "message") &&
            it_str_is(it_jstr(r.json, "model"), "far-chat"),
        "Anthropic's route through a router to the peer: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

static void t_router(void) { with_pair(router_body); }

static const it_test tests[] = {
    {"peers_models", t_models, false},
    {"peers_reload", t_reload, false},
    {"peers_families", t_families, false},
    {"peers_cancel", t_cancel, false},
    {"peers_ps", t_ps, false},
    {"peers_cli_ps", t_cli_ps, false},
    {"peers_down_up", t_down_up, false},
    {"peers_router", t_router, false},
};

const itest_table itest_peers = {"peers", tests, sizeof tests / sizeof tests[0]};
