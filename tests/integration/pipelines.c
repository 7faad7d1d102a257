/* pipelines.c — pipelines (pipeline.c) on a daemon of their own: transcribe-and-clean and voice
 * turns (STT -> chat -> TTS streamed by sentence): tiny-whisper (random weights: junk text) as asr,
 * tiny-qwen2 as llm, the built-in espeak voice as tts; a whisper file that cannot load for the
 * failing step; a client that leaves mid-turn.
 * Must never happen: a step's failure reported as success, steps that run on after the client
 * left.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

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
  snprintf(junk, sizeof junk, "%s/junk-whisper.bin", it_tmpdir);
  it_write_file(junk, "lmgg: the magic is right, the rest is not a whisper model at all");
  setenv("GGML_NO_BACKTRACE", "1", 1); /* its worker aborts: no gdb backtrace in the log */
  if (it_have_alm)                     /* an audio LLM as an asr step too */
    snprintf(
        alm, sizeof alm,
        "  - {name: alm, file: %s/tiny-alm.gguf, mmproj: %s/tiny-alm-mmproj.gguf, context: 1024}\n",
        it_models_dir, it_models_dir);
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
           "  - {name: talk, kind: voice, asr: whisper, llm: lm, tts: speak, voice: en-us, "
           "max_tokens: 40,\n"
           "     temperature: 0, sentence_chars: 12, instruction: 'Answer briefly.'}\n"
           "  - {name: clean-broken, kind: transcribe_clean, asr: junk-asr, llm: lm}\n"
           "  - {name: talk-broken, kind: voice, asr: junk-asr, llm: lm, tts: speak}\n"
           "  - {name: talk-one, kind: voice, llm: lm1, tts: speak, temperature: 0, "
           "sentence_chars: 12}\n"
           "%s",
           it_models_dir, junk, it_models_dir, it_models_dir, alm,
           it_have_alm
               ? "  - {name: clean-alm, kind: transcribe_clean, asr: alm, llm: lm, max_tokens: 8}\n"
               : "");
}

/* A voice turn's body: a text message, then a user message holding the test WAV (when audio). */
static json_t *voice_body(const char *model, bool audio, bool stream, const char *format,
                          const char *voice) {
  if (!it_test_wav.len) it_make_wav(&it_test_wav, 3.0);
  json_t *msgs =
      json_pack("[{s:s, s:s}]", "role", "user", "content", "Tell me about the weather today.");
  if (audio) {
    char *a = it_b64_encode(it_test_wav.data, it_test_wav.len);
    json_array_append_new(
        msgs, json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}]}", "role", "user", "content", "type",
                        "input_audio", "input_audio", "data", a, "format", "wav"));
    free(a);
  }
  /* ignore_eos: the LLM step says something (several sentences) whatever the random weights pick */
  return json_pack("{s:s, s:o, s:[s, s], s:{s:s, s:s}, s:b, s:i, s:b}", "model", model, "messages",
                   msgs, "modalities", "text", "audio", "audio", "voice", voice, "format", format,
                   "stream", stream, "seed", 11, "ignore_eos", 1);
}

static bool timings_ok(const json_t *t, bool stt) {
  const char *keys[] = {"stt_ms", "llm_first_token_ms", "tts_first_audio_ms", "first_audio_ms",
                        "total_ms"};
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
  D = B; /* it_post_form talks to D */
  resp r;
  it_post_form("/v1/audio/transcriptions", it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "clean", "response_format", "verbose_json", NULL}, &r);
  D = save;
  CHECK(r.status == 200, "clean verbose_json: %ld %s", r.status, r.body.data);
  const char *text = it_jstr(r.json, "text"), *raw = it_jstr(r.json, "raw_text");
  CHECK(text && raw, "text and raw_text: %s", r.body.data);
  CHECK(!*raw || it_jnum(r.json, "switchyard_pipeline.completion_tokens") > 0,
        "a transcript is cleaned by the llm step: %s", r.body.data);
  CHECK(json_is_array(json_object_get(r.json, "segments")) && it_jstr(r.json, "language") &&
            json_is_number(it_jpath(r.json, "duration")),
        "verbose_json fields: %s", r.body.data);
  CHECK(strcmp(r.model_hdr, "clean") == 0 && strstr(r.server_timing, "stt;dur=") &&
            strstr(r.server_timing, "llm;dur=") && strstr(r.server_timing, "total;dur="),
        "headers: model '%s', Server-Timing '%s'", r.model_hdr, r.server_timing);
  CHECK(json_is_number(it_jpath(r.json, "usage.switchyard_timings.stt_ms")), "timings: %s",
        r.body.data);
  it_resp_clear(&r);
  D = B;
  it_post_form("/v1/audio/transcriptions", it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "clean", "response_format", "text", NULL}, &r);
  long st_text = r.status;
  bool nl = r.body.len && r.body.data[r.body.len - 1] == '\n';
  it_resp_clear(&r);
  it_post_form("/v1/audio/transcriptions", it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "clean", "response_format", "srt", NULL}, &r);
  bool srt_refused = it_is_error(&r, 400, "unsupported_parameter");
  it_resp_clear(&r);
  it_post_form("/v1/audio/transcriptions", it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "talk", NULL}, &r);
  bool voice_refused = it_is_error(&r, 400, "wrong_capability");
  it_resp_clear(&r);
  it_post_form("/v1/audio/transcriptions", it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "clean-broken", NULL}, &r);
  D = save;
  CHECK(st_text == 200 && nl, "clean text: %ld", st_text);
  CHECK(srt_refused, "srt is refused for a pipeline");
  CHECK(voice_refused, "a voice pipeline is refused here");
  /* the failing step is named: the asr model's file does not load */
  const char *msg = it_jstr(r.json, "error.message"), *param = it_jstr(r.json, "error.param");
  CHECK(r.status >= 400 && msg && strstr(msg, "step asr (junk-asr) failed") && param &&
            !strcmp(param, "asr"),
        "broken asr: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  if (it_have_alm) { /* an audio LLM transcribes (verbose_json: no segments, an LLM gives no
                        timestamps) */
    D = B;
    it_post_form("/v1/audio/transcriptions", it_test_wav.data, it_test_wav.len,
                 (const char *[]){"model", "clean-alm", "response_format", "verbose_json", NULL},
                 &r);
    D = save;
    CHECK(r.status == 200 && it_jstr(r.json, "text") && it_jstr(r.json, "raw_text") &&
              json_array_size(json_object_get(r.json, "segments")) == 0,
          "clean with an audio LLM as asr: %ld %s", r.status, r.body.data);
    it_resp_clear(&r);
  }
}

static void t_pipeline_clean(void) {
  if (!it_test_wav.len) it_make_wav(&it_test_wav, 3.0);
  char cfg[4096];
  pipe_config(cfg, sizeof cfg);
  it_with_own_daemon("pipeline-clean", cfg, pipeline_clean_body);
}

static void pipeline_voice_body(void) {
  /* not streamed: the whole audio (a WAV at 24 kHz) and its transcript */
  resp r;
  it_b_chat(voice_body("talk", true, false, "wav", "alloy"), &r);
  CHECK(r.status == 200, "voice turn: %ld %s", r.status, r.body.data);
  const char *data = it_jstr(r.json, "choices.0.message.audio.data"),
             *tr = it_jstr(r.json, "choices.0.message.audio.transcript");
  CHECK(data && tr && *tr && json_is_null(it_jpath(r.json, "choices.0.message.content")) &&
            it_jstr(r.json, "choices.0.message.audio.id") &&
            it_jnum(r.json, "choices.0.message.audio.expires_at") > 0,
        "message.audio: %.400s", r.body.data);
  size_t n = 0;
  unsigned char *wav = b64_decode(data, &n);
  sy_buf wb = {.data = (char *)wav, .len = n};
  const unsigned char *pcm = NULL;
  size_t pn = 0;
  char why[160] = "";
  bool ok = it_wav_parse(&wb, &pcm, &pn, why, sizeof why);
  free(wav);
  CHECK(ok && pn > 4800, "a WAV at 24 kHz with audio in it: %s, %zu bytes", why, pn);
  CHECK(strstr(r.server_timing, "stt;dur=") && strstr(r.server_timing, "llm_first_token;dur=") &&
            strstr(r.server_timing, "tts_first_audio;dur=") &&
            strstr(r.server_timing, "total;dur="),
        "Server-Timing '%s'", r.server_timing);
  CHECK(timings_ok(it_jpath(r.json, "usage.switchyard_timings"), true),
        "usage.switchyard_timings: %s", r.body.data);
  CHECK(json_array_size(it_jpath(r.json, "switchyard_pipeline.input_transcripts")) == 1 &&
            it_jnum(r.json, "usage.completion_tokens") > 0 && strcmp(r.model_hdr, "talk") == 0,
        "one input transcribed, tokens counted: %s", r.body.data);
  it_resp_clear(&r);

  /* streamed: audio leaves before the answer's text is all out */
  it_b_chat(voice_body("talk", true, true, "wav", "alloy"), &r);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/event-stream", 17) == 0, "stream: %ld %s",
        r.status, r.body.data);
  bool done, wf;
  json_t *ev = it_sse_events(&r.body, &done, &wf);
  size_t i, first_audio = SIZE_MAX, last_text = 0, finish_at = SIZE_MAX, n_audio = 0;
  json_t *e;
  const json_t *timings = NULL;
  sy_buf audio = {0}, said = {0};
  json_array_foreach(ev, i, e) {
    json_t *ch = json_array_get(json_object_get(e, "choices"), 0);
    const char *d = it_jstr(ch, "delta.audio.data"), *t = it_jstr(ch, "delta.audio.transcript");
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
    if (json_string_value(json_object_get(ch, "finish_reason")) && finish_at == SIZE_MAX)
      finish_at = i;
    if (json_is_object(it_jpath(e, "usage.switchyard_timings")))
      timings = it_jpath(e, "usage.switchyard_timings");
  }
  bool order = first_audio < last_text && last_text < finish_at && finish_at != SIZE_MAX;
  bool t_ok = timings && timings_ok(timings, true);
  ok = it_wav_parse(&audio, &pcm, &pn, why, sizeof why);
  size_t said_len = said.len, n_events = json_array_size(ev);
  json_decref(ev);
  sy_buf_free(&audio);
  sy_buf_free(&said);
  CHECK(wf && done, "well-formed SSE ending in [DONE]: %.300s", r.body.data);
  CHECK(order,
        "audio before the last text (first audio #%zu, last text #%zu, finish #%zu of %zu events)",
        first_audio, last_text, finish_at, n_events);
  CHECK(n_audio >= 2 && said_len > 0, "%zu audio chunks, %zu bytes of transcript", n_audio,
        said_len);
  CHECK(ok && pn > 4800, "the chunks make one WAV: %s", why);
  CHECK(t_ok, "the usage chunk has the timings");
  it_resp_clear(&r);

  /* text only: no tts step, content as a plain chat */
  json_t *b = voice_body("talk", false, false, "wav", "alloy");
  json_object_set_new(b, "modalities", json_pack("[s]", "text"));
  it_b_chat(b, &r);
  CHECK(r.status == 200 && it_jstr(r.json, "choices.0.message.content") &&
            !it_jpath(r.json, "choices.0.message.audio"),
        "modalities [text]: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);

  /* failing steps are named: an unknown voice (tts), an asr model that does not load */
  it_b_chat(voice_body("talk", false, false, "wav", "no-such-voice-xyz"), &r);
  const char *msg = it_jstr(r.json, "error.message"), *param = it_jstr(r.json, "error.param");
  CHECK(r.status == 400 && msg && strstr(msg, "step tts (speak) failed") && param &&
            !strcmp(param, "tts"),
        "bad voice: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_b_chat(voice_body("talk-broken", true, true, "wav", "alloy"), &r);
  msg = it_jstr(r.json, "error.message"), param = it_jstr(r.json, "error.param");
  CHECK(r.status >= 400 && msg && strstr(msg, "step asr (junk-asr) failed") && param &&
            !strcmp(param, "asr"),
        "broken asr: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_b_chat(voice_body("talk", false, false, "ogg-x", "alloy"), &r);
  CHECK(it_is_error(&r, 400, "invalid_value") &&
            it_str_is(it_jstr(r.json, "error.param"), "audio.format"),
        "bad format: %s", r.body.data);
  it_resp_clear(&r);
  it_b_chat(voice_body("clean", false, false, "wav", "alloy"), &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "a transcribe_clean pipeline is no chat: %s",
        r.body.data);
  it_resp_clear(&r);

  /* listed as models; counted in metrics by stage and failed step */
  it_http_do(&B, "GET", "/v1/models/talk", NULL, &r, NULL);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "pipeline.kind"), "voice") &&
            it_str_is(it_jstr(r.json, "pipeline.tts"), "speak"),
        "GET /v1/models/talk: %s", r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/metrics", NULL, &r, NULL);
  const char *m = r.body.data ? r.body.data : "";
  bool stages =
      strstr(m,
             "switchyard_pipeline_stage_seconds_count{model=\"talk\",stage=\"first_audio\"} 2") &&
      strstr(m, "switchyard_pipeline_stage_seconds_count{model=\"talk\",stage=\"stt\"}");
  bool fails =
      strstr(m, "switchyard_pipeline_step_failures_total{model=\"talk-broken\",step=\"asr\"} 1") &&
      strstr(m, "switchyard_pipeline_step_failures_total{model=\"talk\",step=\"tts\"} 1");
  it_resp_clear(&r);
  CHECK(stages, "stage histograms in /metrics");
  CHECK(fails, "step failures in /metrics");
}

/* A client that leaves a voice stream cancels its steps: lm1 has one slot, so the next turn runs
 * only once the abandoned one has let go of it; the daemon counts it as cancelled. */
static void pipeline_disconnect_body(void) {
  long long before = it_ps_stat(&B, "cancelled");
  json_t *q = voice_body("talk-one", false, true, "pcm16", "alloy");
  json_object_set_new(q, "max_tokens", json_integer(3000));
  CURLcode rc = it_abandon_stream(&B, "/v1/chat/completions", q);
  CHECK(rc == CURLE_WRITE_ERROR, "the client aborted (curl %d)", rc);
  json_t *next = voice_body("talk-one", false, false, "wav", "alloy");
  json_object_set_new(next, "max_tokens", json_integer(4));
  resp r;
  it_b_chat(next, &r);
  CHECK(r.status == 200, "next turn: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
  long long after = it_ps_stat(&B, "cancelled");
  CHECK(after > before, "the abandoned turn was cancelled (%lld -> %lld)", before, after);
}

static void t_pipeline_voice(void) {
  char cfg[4096];
  pipe_config(cfg, sizeof cfg);
  it_with_own_daemon("pipeline-voice", cfg, pipeline_voice_body);
}

static void t_pipeline_disconnect(void) {
  char cfg[4096];
  pipe_config(cfg, sizeof cfg);
  it_with_own_daemon("pipeline-disconnect", cfg, pipeline_disconnect_body);
}

static const it_test tests[] = {
    {"pipeline_clean", t_pipeline_clean, false},
    {"pipeline_voice", t_pipeline_voice, false},
    {"pipeline_disconnect", t_pipeline_disconnect, false},
};
const itest_table itest_pipelines = {"pipelines", tests, sizeof tests / sizeof *tests};
