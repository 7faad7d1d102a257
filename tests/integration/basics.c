/* basics.c — the main daemon's front door: /health, /v1/models (aliases, capabilities), chat
 * completions (plain, deterministic under a fixed seed whatever runs beside, Q8_0 and Q4_K_M
 * weights, streamed) and the legacy /v1/completions.
 * Must never happen: a malformed SSE stream, usage that does not add up, a deterministic model
 * whose answer depends on what else runs.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static void t_health(void) {
  resp r;
  it_get("/health", &r);
  CHECK(r.status == 200, "status %ld", r.status);
  CHECK(it_jstr(r.json, "status") && strcmp(it_jstr(r.json, "status"), "ok") == 0, "%s",
        r.body.data);
  it_resp_clear(&r);
}

static void t_models(void) {
  resp r;
  it_get("/v1/models", &r);
  CHECK(r.status == 200, "status %ld", r.status);
  CHECK(strcmp(it_jstr(r.json, "object"), "list") == 0, "object");
  json_t *data = json_object_get(r.json, "data");
  bool chat = false, embed = false;
  size_t i;
  json_t *m;
  json_array_foreach(data, i, m) {
    const char *id = it_jstr(m, "id");
    if (id && strcmp(id, "chat") == 0) chat = strcmp(it_jstr(m, "capabilities.0"), "chat") == 0;
    if (id && strcmp(id, "embed") == 0) embed = strcmp(it_jstr(m, "capabilities.0"), "embed") == 0;
    CHECK(strcmp(it_jstr(m, "object"), "model") == 0, "object of %s", id);
  }
  CHECK(chat && embed, "chat/embed listed with capabilities: %s", r.body.data);
  it_resp_clear(&r);
  it_get("/v1/models/chat", &r);
  CHECK(r.status == 200 && strcmp(it_jstr(r.json, "id"), "chat") == 0, "retrieve: %ld", r.status);
  it_resp_clear(&r);
  it_get("/v1/models/nope", &r);
  CHECK(it_is_error(&r, 404, "model_not_found"), "retrieve unknown: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

static void t_chat(void) {
  resp r;
  it_post_json("/v1/chat/completions", it_chat_body("chat", "Hello there", 12, false), &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strcmp(it_jstr(r.json, "object"), "chat.completion") == 0, "object");
  CHECK(strncmp(it_jstr(r.json, "id"), "chatcmpl-", 9) == 0, "id");
  CHECK(strcmp(it_jstr(r.json, "model"), "chat") == 0, "model");
  CHECK(strcmp(r.model_hdr, "chat") == 0, "X-Switchyard-Model header '%s'", r.model_hdr);
  CHECK(strcmp(it_jstr(r.json, "choices.0.message.role"), "assistant") == 0, "role");
  CHECK(it_jstr(r.json, "choices.0.message.content") != NULL, "content");
  const char *fin = it_jstr(r.json, "choices.0.finish_reason");
  long long ct = it_jnum(r.json, "usage.completion_tokens"),
            pt = it_jnum(r.json, "usage.prompt_tokens");
  CHECK(fin && (strcmp(fin, "length") == 0 || strcmp(fin, "stop") == 0), "finish %s", fin);
  CHECK(ct >= 1 && ct <= 12, "completion_tokens %lld", ct);
  CHECK(strcmp(fin, "stop") == 0 || ct == 12, "length finish must use all max_tokens (%lld)", ct);
  CHECK(pt > 5, "prompt_tokens %lld (template applied)", pt);
  CHECK(it_jnum(r.json, "usage.total_tokens") == pt + ct, "total");
  it_resp_clear(&r);
}

/* Quantized weights on the CPU: Q8_0 and Q4_K_M (256-wide, so the K-quant blocks are real and not
 * a fallback type) through the worker, prompt (a batch) and decode (one token at a time). These
 * take the CPU backend's repacked or matrix-unit kernels, which F16 never does: a crash there
 * (ggml's AMX kernels on Intel Sapphire Rapids, llama.cpp #20824) fails here, on whatever
 * processor runs the suite. Shape only: the tokens differ between processors. */
static void t_chat_quantized(void) {
  CHECK(it_have_quant,
        "%s/tiny-qwen2-q8_0.gguf / -q4_k_m.gguf are missing (tests/run.sh make_models writes them)",
        it_models_dir);
  static const char *const names[] = {"chat-q8_0", "chat-q4_k_m"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    resp r;
    it_post_json("/v1/chat/completions",
                 it_chat_body(names[i], "Tell me, in a few words, what quantized weights are for.",
                              8, false),
                 &r);
    CHECK(r.status == 200, "%s: status %ld %s", names[i], r.status, r.body.data);
    long long ct = it_jnum(r.json, "usage.completion_tokens"),
              pt = it_jnum(r.json, "usage.prompt_tokens");
    const char *fin = it_jstr(r.json, "choices.0.finish_reason");
    CHECK(pt > 10, "%s: prompt_tokens %lld", names[i], pt);
    CHECK(ct >= 1 && ct <= 8, "%s: completion_tokens %lld", names[i], ct);
    CHECK(fin && (strcmp(fin, "stop") == 0 || (strcmp(fin, "length") == 0 && ct == 8)),
          "%s: finish %s", names[i], fin);
    CHECK(it_jstr(r.json, "choices.0.message.content") != NULL, "%s: content", names[i]);
    it_resp_clear(&r);
  }
}

static void t_chat_deterministic(void) {
  resp a, b;
  it_post_json("/v1/chat/completions", it_chat_body("chat", "Tell me a story", 24, false), &a);
  it_post_json("/v1/chat/completions", it_chat_body("chat", "Tell me a story", 24, false), &b);
  CHECK(a.status == 200 && b.status == 200, "%ld %ld", a.status, b.status);
  const char *ta = it_jstr(a.json, "choices.0.message.content"),
             *tb = it_jstr(b.json, "choices.0.message.content");
  CHECK(ta && tb && strcmp(ta, tb) == 0, "'%s' vs '%s'", ta, tb);
  CHECK(strlen(ta) > 0, "empty text");
  it_resp_clear(&a);
  it_resp_clear(&b);
  /* with sampling, a fixed seed is reproducible too */
  json_t *q1 = it_chat_body("chat", "Sample", 16, false),
         *q2 = it_chat_body("chat", "Sample", 16, false);
  json_object_set_new(q1, "temperature", json_real(1.0));
  json_object_set_new(q2, "temperature", json_real(1.0));
  it_post_json("/v1/chat/completions", q1, &a);
  it_post_json("/v1/chat/completions", q2, &b);
  ta = it_jstr(a.json, "choices.0.message.content");
  tb = it_jstr(b.json, "choices.0.message.content");
  CHECK(ta && tb && strcmp(ta, tb) == 0, "seeded sampling differs: '%s' vs '%s'", ta, tb);
  it_resp_clear(&a);
  it_resp_clear(&b);
}

static void t_chat_stream(void) {
  resp whole, r;
  it_post_json("/v1/chat/completions", it_chat_body("chat", "Stream this", 20, false), &whole);
  CHECK(whole.status == 200, "whole %ld", whole.status);
  json_t *q = it_chat_body("chat", "Stream this", 20, true);
  json_object_set_new(q, "stream_options", json_pack("{s:b}", "include_usage", 1));
  it_post_json("/v1/chat/completions", q, &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strncmp(r.content_type, "text/event-stream", 17) == 0, "content-type %s", r.content_type);
  bool done, ok;
  json_t *ev = it_sse_events(&r.body, &done, &ok);
  CHECK(ok && done, "well formed %d, [DONE] %d: %s", ok, done, r.body.data);
  CHECK(json_array_size(ev) >= 3, "events %zu", json_array_size(ev));
  json_t *first = json_array_get(ev, 0);
  CHECK(strcmp(it_jstr(first, "object"), "chat.completion.chunk") == 0, "chunk object");
  CHECK(strcmp(it_jstr(first, "choices.0.delta.role"), "assistant") == 0,
        "first chunk carries the role");
  sy_buf text = {0};
  const char *finish;
  json_t *usage;
  it_stream_text(ev, true, &text, &finish, &usage);
  const char *want = it_jstr(whole.json, "choices.0.message.content");
  CHECK(strcmp(text.data ? text.data : "", want) == 0, "stream '%s' vs whole '%s'", text.data,
        want);
  CHECK(finish && strcmp(finish, it_jstr(whole.json, "choices.0.finish_reason")) == 0, "finish %s",
        finish);
  CHECK(usage &&
            it_jnum(usage, "completion_tokens") == it_jnum(whole.json, "usage.completion_tokens"),
        "usage");
  json_t *last = json_array_get(ev, json_array_size(ev) - 1);
  CHECK(json_array_size(json_object_get(last, "choices")) == 0, "usage chunk has empty choices");
  sy_buf_free(&text);
  json_decref(ev);
  it_resp_clear(&r);
  it_resp_clear(&whole);
}

static void t_completions(void) {
  resp r, s;
  json_t *q = json_pack("{s:s, s:s, s:i, s:f, s:i}", "model", "chat", "prompt", "Once upon a time",
                        "max_tokens", 8, "temperature", 0.0, "seed", 1);
  it_post_json("/v1/completions", json_deep_copy(q), &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strcmp(it_jstr(r.json, "object"), "text_completion") == 0, "object");
  CHECK(it_jstr(r.json, "choices.0.text") != NULL, "text");
  long long ct = it_jnum(r.json, "usage.completion_tokens");
  const char *fin = it_jstr(r.json, "choices.0.finish_reason");
  CHECK(ct >= 1 && ct <= 8 && (strcmp(fin, "stop") == 0 || ct == 8), "tokens %lld finish %s", ct,
        fin);
  json_object_set_new(q, "stream", json_true());
  it_post_json("/v1/completions", q, &s);
  bool done, ok;
  json_t *ev = it_sse_events(&s.body, &done, &ok);
  CHECK(s.status == 200 && ok && done, "stream %ld", s.status);
  sy_buf text = {0};
  const char *finish;
  json_t *usage;
  it_stream_text(ev, false, &text, &finish, &usage);
  CHECK(strcmp(text.data ? text.data : "", it_jstr(r.json, "choices.0.text")) == 0,
        "stream text differs");
  CHECK(usage == NULL, "no usage chunk unless asked");
  sy_buf_free(&text);
  json_decref(ev);
  it_resp_clear(&r);
  it_resp_clear(&s);
  /* without max_tokens, OpenAI's default of 16 applies to /v1/completions */
  it_post_json("/v1/completions",
               json_pack("{s:s, s:s, s:f}", "model", "chat", "prompt", "x", "temperature", 0.0),
               &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.completion_tokens") <= 16, "default max_tokens");
  it_resp_clear(&r);
}

static const it_test tests[] = {
    {"health", t_health, false},
    {"models", t_models, false},
    {"chat", t_chat, false},
    {"chat_deterministic", t_chat_deterministic, false},
    {"chat_quantized", t_chat_quantized, false},
    {"chat_stream", t_chat_stream, false},
    {"completions", t_completions, false},
};
const itest_table itest_basics = {"basics", tests, sizeof tests / sizeof *tests};
