/* audio_arch.c — the audio LLM families and Qwen3-Embedding through a daemon of the feature's own
 * (B), on the tiny models tests/models.sh makes with mkmodel (docs/MKMODEL.md "Audio LLMs"):
 * Qwen3-ASR (qwen3vl text + the qwen3a projector: 13 tokens per started second of each 8 s
 * window, inside <|audio_start|> ... <|audio_end|>: exact counts, transcription, two at once,
 * unload and reload, memory), Voxtral (llama text + Mistral's control tokens and template + the
 * voxtral projector) and Ultravox with its real stack factor 8 — both of which the pinned mtmd
 * cannot encode: their audio is refused with the reason, the same worker serves text (and tools)
 * on — and Qwen3-Embedding (last-token pooling over the appended <|endoftext|>; OpenAI's
 * "dimensions" and Ollama's; the "instruction" extension).
 * Must never happen: a token count other than mtmd's, a worker that dies on audio, a vector of
 * the wrong length or norm. Asserts on shape and counts, never on text; no sleeps. */
#include <math.h>
#include <unistd.h>

#include "harness.h"

/* The audio tokens mtmd makes of 1 s and 31 s (tools/mkmodel/aproj.c mk_aproj_tokens):
 * qwen3a: frames = samples/160 + 1, cut into 800-frame windows, 13 tokens per started 100
 * frames of each: 1 s = 101 frames = 2 chunks = 26; 31 s = 3101 = 800+800+800+701 = 4 x 8
 * chunks = 416. The text markers mtmd adds around the audio: 2 (<|audio_start|>, <|audio_end|>). */
#define Q3A_1S 26
#define Q3A_31S 416
#define Q3A_MARKERS 2

static const char *aa_yaml_fmt =
    "log_level: warn\n"
    "models:\n"
    "  - {name: qwen3asr, file: %s/tiny-qwen3asr.gguf, mmproj: %s/tiny-qwen3asr-mmproj.gguf,\n"
    "     context: 2048, parallel: 2}\n"
    "  - {name: voxtral, file: %s/tiny-voxtral.gguf, mmproj: %s/tiny-voxtral-mmproj.gguf,\n"
    "     context: 2048, parallel: 2}\n"
    "  - {name: ultravox8, file: %s/tiny-ultravox.gguf, mmproj: %s/tiny-ultravox-mmproj.gguf,\n"
    "     context: 1024}\n"
    "  - {name: qemb, file: %s/tiny-qwen3-embedding.gguf, context: 512}\n";

static char *aa_b64_1s, *aa_b64_31s;
static sy_buf aa_w1;

/* A chat with the text and the clips (NULL-ended base64 WAVs) on B: status and prompt tokens. */
static long aa_chat(const char *model, const char *const *clips, long long *prompt, resp *r) {
  it_post_json_at(&B, "/v1/chat/completions", it_audio_body(model, "What is said?", clips), r);
  *prompt = r->status == 200 ? it_jnum(r->json, "usage.prompt_tokens") : -1;
  return r->status;
}

/* The checks every audio family that mtmd can encode passes: exact counts for 1 s and 31 s
 * (n1, n31 audio tokens, markers text tokens around them), transcription, two requests at once,
 * unload and reload, memory estimated and measured. */
static void aa_family(const char *model, long long n1, long long n31, long long markers) {
  resp r;
  long long pt0, pt;
  const char *none[] = {NULL}, *one[] = {aa_b64_1s, NULL}, *longer[] = {aa_b64_31s, NULL};
  CHECK(aa_chat(model, none, &pt0, &r) == 200 && pt0 > 3, "%s text only: %ld %s", model, r.status,
        r.body.data);
  it_resp_clear(&r);
  CHECK(aa_chat(model, one, &pt, &r) == 200 && pt == pt0 + markers + n1,
        "%s: 1 s of audio adds %lld + %lld prompt tokens: %lld -> %lld (%ld %s)", model, markers,
        n1, pt0, pt, r.status, r.body.data);
  CHECK(it_jnum(r.json, "usage.completion_tokens") > 0, "%s answered: %s", model, r.body.data);
  it_resp_clear(&r);
  CHECK(aa_chat(model, longer, &pt, &r) == 200 && pt == pt0 + markers + n31,
        "%s: 31 s of audio adds %lld + %lld: %lld -> %lld (%ld %s)", model, markers, n31, pt0, pt,
        r.status, r.body.data);
  it_resp_clear(&r);

  /* transcription: a chat with the transcribe prompt; json usage counts the audio */
  it_post_form_at(&B, "/v1/audio/transcriptions", aa_w1.data, aa_w1.len,
                  (const char *const[]){"model", model, NULL}, &r);
  CHECK(r.status == 200 && it_jstr(r.json, "text") &&
            it_jnum(r.json, "usage.input_tokens") > n1 + markers &&
            it_jnum(r.json, "usage.output_tokens") > 0,
        "%s transcription: %ld %s", model, r.status, r.body.data);
  it_resp_clear(&r);

  /* two at once (parallel 2): both answered, the same count */
  it_bg_req a, b;
  it_bg_chat(&a, &B, it_audio_body(model, "What is said?", one));
  it_bg_chat(&b, &B, it_audio_body(model, "What is said?", one));
  it_bg_join(&a);
  it_bg_join(&b);
  CHECK(a.r.status == 200 && b.r.status == 200 &&
            it_jnum(a.r.json, "usage.prompt_tokens") == pt0 + markers + n1 &&
            it_jnum(b.r.json, "usage.prompt_tokens") == pt0 + markers + n1,
        "%s in parallel: %ld %s / %ld %s", model, a.r.status, a.r.body.data, b.r.status,
        b.r.body.data);
  it_resp_clear(&a.r);
  it_resp_clear(&b.r);

  /* the memory the budget counts: estimated before the load, measured once loaded */
  char path[128];
  snprintf(path, sizeof path, "/v1/models/%s", model);
  it_http_do(&B, "GET", path, NULL, &r, NULL);
  CHECK(it_jnum(r.json, "memory.estimated") > 0 && it_jnum(r.json, "memory.measured") > 0,
        "%s memory: %s", model, r.body.data);
  it_resp_clear(&r);

  /* unload, and the next request loads it again with the same count */
  char body[128];
  snprintf(body, sizeof body, "{\"model\":\"%s\"}", model);
  it_http_do(&B, "POST", "/api/unload", body, &r, NULL);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "status"), "unloaded"), "%s unload: %ld %s",
        model, r.status, r.body.data);
  it_resp_clear(&r);
  CHECK(aa_chat(model, one, &pt, &r) == 200 && pt == pt0 + markers + n1,
        "%s after a reload: %ld %s", model, r.status, r.body.data);
  it_resp_clear(&r);
}

static void aa_qwen3asr(void) { aa_family("qwen3asr", Q3A_1S, Q3A_31S, Q3A_MARKERS); }

/* Voxtral: the pinned mtmd counts 187 tokens per 30 s window ((3000 / 4) / 2 / 2: stack, conv,
 * average pool) and its graph makes 188 (1500 / 2 = 750 rows stacked by 4, padded): it would
 * abort, so the worker refuses Voxtral's audio like Ultravox's (docs/AUDIO.md). */
static void aa_refused(const char *model, const char *why) {
  resp r;
  long long pt;
  const char *one[] = {aa_b64_1s, NULL};
  aa_chat(model, (const char *const[]){NULL}, &pt, &r);
  CHECK(r.status == 200, "%s text: %ld %s", model, r.status, r.body.data);
  it_resp_clear(&r);
  long long pid = it_b_ps_pid(model);
  aa_chat(model, one, &pt, &r);
  const char *msg = it_jstr(r.json, "error.message");
  CHECK(it_is_error(&r, 400, "unsupported_content") && msg && strstr(msg, why),
        "%s audio refused with a reason: %ld %s", model, r.status, r.body.data);
  it_resp_clear(&r);
  it_post_form_at(&B, "/v1/audio/transcriptions", aa_w1.data, aa_w1.len,
                  (const char *const[]){"model", model, NULL}, &r);
  CHECK(r.status == 400, "%s transcription refused: %ld %s", model, r.status, r.body.data);
  it_resp_clear(&r);
  /* the same worker serves on */
  aa_chat(model, (const char *const[]){NULL}, &pt, &r);
  CHECK(r.status == 200 && it_b_ps_pid(model) == pid && pid > 0,
        "%s: the worker lives (pid %lld -> %lld): %ld %s", model, pid, it_b_ps_pid(model), r.status,
        r.body.data);
  it_resp_clear(&r);
}

static void aa_voxtral(void) {
  aa_refused("voxtral", "voxtral, stack factor 4");
  /* Mistral's template with tools renders (its [AVAILABLE_TOOLS] ... control tokens exist) */
  resp r;
  json_t *body = it_chat_body("voxtral", "What is the weather?", 4, false);
  json_object_set_new(body, "tools",
                      json_pack("[{s:s, s:{s:s, s:s, s:{s:s, s:{}}}}]", "type", "function",
                                "function", "name", "get_weather", "description", "the weather",
                                "parameters", "type", "object", "properties"));
  it_post_json_at(&B, "/v1/chat/completions", body, &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.prompt_tokens") > 20,
        "voxtral chat with tools: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
}
static void aa_ultravox8(void) { aa_refused("ultravox8", "ultravox, stack factor 8"); }

/* An embeddings request on B: status; the vectors in r. */
static long aa_embed(json_t *body, resp *r) {
  it_post_json_at(&B, "/v1/embeddings", body, r);
  return r->status;
}

static void aa_embedding(void) {
  resp r;
  size_t dim = 0, d16 = 0;
  CHECK(aa_embed(json_pack("{s:s, s:[s,s]}", "model", "qemb", "input", "a river", "stone"), &r) ==
                200 &&
            fabs(it_norm_of(it_jpath(r.json, "data.0.embedding"), &dim) - 1.0) < 1e-4 && dim == 64,
        "full vectors: norm 1, 64 wide: %ld %.300s", r.status, r.body.data);
  json_t *full = json_incref((json_t *)it_jpath(r.json, "data.0.embedding"));
  /* last-token pooling over the <|endoftext|> the tokenizer appends: "a river" is 2 tokens + 1 */
  long long pt = it_jnum(r.json, "usage.prompt_tokens");
  CHECK(pt == 3 + 2, "prompt tokens with the appended <|endoftext|>: %lld", pt);
  it_resp_clear(&r);

  /* dimensions: the first 16, renormalised */
  CHECK(
      aa_embed(json_pack("{s:s, s:s, s:i}", "model", "qemb", "input", "a river", "dimensions", 16),
               &r) == 200 &&
          fabs(it_norm_of(it_jpath(r.json, "data.0.embedding"), &d16) - 1.0) < 1e-4 && d16 == 16,
      "dimensions 16: %ld %.300s", r.status, r.body.data);
  double s = 0, dot = 0;
  for (size_t i = 0; i < 16; i++) {
    double f = json_number_value(json_array_get(full, i));
    s += f * f;
  }
  for (size_t i = 0; i < 16; i++)
    dot += json_number_value(json_array_get(full, i)) / sqrt(s) *
           json_number_value(json_array_get(it_jpath(r.json, "data.0.embedding"), i));
  CHECK(fabs(dot - 1.0) < 1e-4, "the 16 are the full vector's first 16, renormalised (%f)", dot);
  it_resp_clear(&r);
  json_decref(full);
  CHECK(aa_embed(json_pack("{s:s, s:s, s:i, s:s}", "model", "qemb", "input", "x", "dimensions", 8,
                           "encoding_format", "base64"),
                 &r) == 200 &&
            strlen(it_jstr(r.json, "data.0.embedding")) == 44,
        "dimensions 8 as base64 (32 bytes): %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
  aa_embed(json_pack("{s:s, s:s, s:i}", "model", "qemb", "input", "x", "dimensions", 65), &r);
  CHECK(it_is_error(&r, 400, "invalid_value") &&
            it_str_is(it_jstr(r.json, "error.param"), "dimensions"),
        "dimensions above the model's: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  aa_embed(json_pack("{s:s, s:s, s:i}", "model", "qemb", "input", "x", "dimensions", 0), &r);
  CHECK(it_is_error(&r, 400, "invalid_value"), "dimensions 0: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  aa_embed(json_pack("{s:s, s:s, s:s}", "model", "qemb", "input", "x", "dimensions", "8"), &r);
  CHECK(it_is_error(&r, 400, "invalid_value"), "dimensions as a string: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);

  /* the instruction: "Instruct: ...\nQuery:" before each input (more tokens, another vector) */
  aa_embed(json_pack("{s:s, s:s, s:s}", "model", "qemb", "input", "a river", "instruction",
                     "Find the passage"),
           &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.prompt_tokens") > pt, "instruction: %ld %.300s",
        r.status, r.body.data);
  it_resp_clear(&r);
  aa_embed(json_pack("{s:s, s:s, s:s}", "model", "qemb", "input", "x", "instruction", ""), &r);
  CHECK(it_is_error(&r, 400, "invalid_value"), "empty instruction: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  /* memory counted; unloaded and loaded again, the same text embeds to the same vector */
  it_http_do(&B, "GET", "/v1/models/qemb", NULL, &r, NULL);
  CHECK(it_jnum(r.json, "memory.estimated") > 0 && it_jnum(r.json, "memory.measured") > 0,
        "qemb memory: %s", r.body.data);
  it_resp_clear(&r);
  aa_embed(json_pack("{s:s, s:s}", "model", "qemb", "input", "stone"), &r);
  json_t *before = json_incref((json_t *)it_jpath(r.json, "data.0.embedding"));
  it_resp_clear(&r);
  it_http_do(&B, "POST", "/api/unload", "{\"model\":\"qemb\"}", &r, NULL);
  CHECK(r.status == 200, "qemb unload: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  aa_embed(json_pack("{s:s, s:s}", "model", "qemb", "input", "stone"), &r);
  double diff = 0;
  const json_t *after = it_jpath(r.json, "data.0.embedding");
  for (size_t i = 0; i < json_array_size(before); i++)
    diff = fmax(diff, fabs(json_number_value(json_array_get(before, i)) -
                           json_number_value(json_array_get(after, i))));
  CHECK(r.status == 200 && json_array_size(after) == json_array_size(before) && diff < 1e-6,
        "qemb after a reload: %ld, max difference %g", r.status, diff);
  json_decref(before);
  it_resp_clear(&r);

  /* Ollama's /api/embed takes dimensions too */
  it_post_json_at(
      &B, "/api/embed",
      json_pack("{s:s, s:s, s:i}", "model", "qemb", "input", "a river", "dimensions", 16), &r);
  size_t od = 0;
  CHECK(r.status == 200 && fabs(it_norm_of(it_jpath(r.json, "embeddings.0"), &od) - 1.0) < 1e-4 &&
            od == 16,
        "/api/embed dimensions: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
}

static void aa_body(void) {
  if (it_cur_failed) return;
  aa_qwen3asr();
  aa_voxtral();
  aa_ultravox8();
  aa_embedding();
}

static void t_audio_arch(void) {
  const char *need[] = {"tiny-qwen3asr-mmproj.gguf", "tiny-voxtral-mmproj.gguf",
                        "tiny-ultravox-mmproj.gguf", "tiny-qwen3-embedding.gguf"};
  for (size_t i = 0; i < sizeof need / sizeof *need; i++) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", it_models_dir, need[i]);
    CHECK(access(p, R_OK) == 0, "%s is missing (tests/models.sh makes it)", need[i]);
  }
  sy_buf w31 = {0};
  it_make_wav(&aa_w1, 1.0);
  it_make_wav(&w31, 31.0);
  aa_b64_1s = it_b64_encode(aa_w1.data, aa_w1.len);
  aa_b64_31s = it_b64_encode(w31.data, w31.len);
  char yaml[4096];
  const char *m = it_models_dir;
  snprintf(yaml, sizeof yaml, aa_yaml_fmt, m, m, m, m, m, m, m);
  it_with_own_daemon("audio_arch", yaml, aa_body);
  free(aa_b64_1s);
  free(aa_b64_31s);
  sy_buf_free(&aa_w1);
  sy_buf_free(&w31);
}

static const it_test tests[] = {
    {"audio_arch", t_audio_arch, false},
};

const itest_table itest_audio_arch = {"audio_arch", tests, sizeof tests / sizeof *tests};
