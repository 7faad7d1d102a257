/* audio_models.c — audio through model files on the main daemon: input_audio parts through mtmd
 * (tiny-alm: an Ultravox-style projector, every started 30 s window is exactly 375 tokens),
 * Parakeet-TDT through whisper.cpp (../shared/testdata), and neural speech with a Pocket-TTS pair
 * through mtmd's audio generator (docs/TTS.md), reference voices and uploaded ones.
 * Must never happen: audio counted wrong, a malformed WAV, a voice upload where it is off.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static json_t *pocket_body(const char *input, const char *format, const char *voice, int seed) {
  return it_speech_body("pocket", input, format, voice, seed);
}

static void t_speech_neural(void) {
  CHECK(it_have_pocket,
        "%s/tiny-pocket-mmproj.gguf is missing (tests/run.sh make_models writes it)",
        it_models_dir);
  resp r;
  it_get("/v1/models/pocket", &r);
  const json_t *caps = it_jpath(r.json, "capabilities");
  CHECK(r.status == 200 && json_array_size(caps) == 1 &&
            !strcmp(json_string_value(json_array_get(caps, 0)), "speech"),
        "pocket has the speech capability only: %s", r.body.data);
  it_resp_clear(&r);
  /* three sentences, each at least a frame: 1920 samples of 2 bytes */
  it_check_seeded_voice(&D, "pocket",
                        "Hello from a neural voice. This is the second sentence. And a third one.",
                        3 * 1920 * 2, 2);
  if (it_cur_failed) return;
  it_speech_resp a, b;
  /* without the reference clip, as pcm */
  it_speech_post(&D, pocket_body("Short one.", "pcm", NULL, 1), &a);
  CHECK(a.status == 200 && a.body.len >= 1920 * 2, "pcm without a voice: %ld, %zu bytes", a.status,
        a.body.len);
  sy_buf_free(&a.body);
  it_post_json("/v1/audio/speech", pocket_body("hi", "wav", "nope", 1), &r);
  CHECK(it_is_error(&r, 400, "invalid_voice"), "unknown voice: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* only spaces: nothing to speak, answered at once with no audio (it once never answered) */
  it_speech_post(&D, pocket_body("   \t  ", "pcm", NULL, 1), &a);
  CHECK(a.status == 200 && a.body.len == 0, "blank input: %ld, %zu bytes", a.status, a.body.len);
  sy_buf_free(&a.body);
  /* a request's own reference clip (voice_upload: true): the voice changes the audio */
  json_t *up = pocket_body("Short one.", "pcm", NULL, 1);
  json_object_set_new(up, "voice", it_uploaded_voice_file("ref-voice.wav"));
  it_speech_post(&D, up, &b);
  it_speech_post(&D, pocket_body("Short one.", "pcm", NULL, 1), &a);
  CHECK(b.status == 200 && b.body.len >= 1920 * 2, "an uploaded voice: %ld %.200s", b.status,
        b.body.data);
  CHECK(a.status == 200 &&
            (a.body.len != b.body.len || memcmp(a.body.data, b.body.data, a.body.len) != 0),
        "the uploaded clip was used: the audio differs from no voice at the same seed");
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  up = pocket_body("hi", "wav", NULL, 1);
  json_object_set_new(up, "voice", json_pack("{s:s}", "audio", "bm90IGF1ZGlvIGF0IGFsbA=="));
  it_post_json("/v1/audio/speech", up, &r);
  /* 415 without ffmpeg (an unknown format it might read), 400 with it */
  CHECK((it_is_error(&r, 400, "invalid_voice_audio") ||
         it_is_error(&r, 415, "invalid_voice_audio")) &&
            strcmp(it_jstr(r.json, "error.param"), "voice") == 0,
        "a clip that is not audio: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  up = json_pack("{s:s, s:s, s:o}", "model", "speak", "input", "hi", "voice",
                 it_uploaded_voice_file("ref-voice.wav"));
  it_post_json("/v1/audio/speech", up, &r);
  CHECK(it_is_error(&r, 400, "voice_upload_disabled"), "a model without voice_upload: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  it_get("/v1/audio/voices", &r);
  bool listed = false;
  json_t *e;
  size_t i;
  json_array_foreach((json_t *)it_jpath(r.json, "data"), i, e) {
    if (strcmp(it_jstr(e, "model"), "pocket") != 0) continue;
    listed = json_array_size(it_jpath(e, "voices")) == 1 &&
             !strcmp(it_jstr(json_array_get(it_jpath(e, "voices"), 0), "id"), "ref");
  }
  CHECK(listed, "/v1/audio/voices lists pocket's ref: %s", r.body.data);
  it_resp_clear(&r);
}

/* ---- audio input: input_audio parts through mtmd (tiny-alm: mkmodel --mmproj-kind audio, an
 * Ultravox-style projector: every started 30 s window of audio is exactly 375 tokens) ---- */

#define ALM_WINDOW_TOKENS 375

static void t_audio_in(void) {
  CHECK(it_have_alm, "%s/tiny-alm-mmproj.gguf is missing (tests/run.sh make_models writes it)",
        it_models_dir);
  if (!it_have_alm) return;
  sy_buf w1 = {0}, w31 = {0};
  it_make_wav(&w1, 1.0);   /* one 30 s window */
  it_make_wav(&w31, 31.0); /* two */
  char *a1 = it_b64_encode(w1.data, w1.len), *a31 = it_b64_encode(w31.data, w31.len);
  char *url = malloc(strlen(a1) + 32);
  sprintf(url, "data:audio/wav;base64,%s", a1);
  resp r;
  it_get("/v1/models/alm", &r);
  const json_t *caps = json_object_get(r.json, "capabilities");
  CHECK(r.status == 200 && it_lists(caps, "audio") && it_lists(caps, "transcribe"),
        "alm lists audio and transcribe: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  it_post_json("/v1/chat/completions", it_audio_body("alm", "What is said?", NULL), &r);
  long long pt0 = it_jnum(r.json, "usage.prompt_tokens");
  CHECK(r.status == 200 && pt0 > 3, "text only: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  const char *one[] = {a1, NULL}, *long1[] = {a31, NULL}, *two[] = {a1, url, NULL};
  it_post_json("/v1/chat/completions", it_audio_body("alm", "What is said?", one), &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.completion_tokens") > 0, "1 s of audio: %ld %s",
        r.status, r.body.data);
  CHECK(it_jnum(r.json, "usage.prompt_tokens") == pt0 + ALM_WINDOW_TOKENS,
        "1 s of audio adds %d prompt tokens: %lld -> %lld", ALM_WINDOW_TOKENS, pt0,
        it_jnum(r.json, "usage.prompt_tokens"));
  it_resp_clear(&r);
  /* 31 s: mtmd cuts it into two 30 s windows; two clips (one as a data: URL) */
  it_post_json("/v1/chat/completions", it_audio_body("alm", "What is said?", long1), &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.prompt_tokens") == pt0 + 2 * ALM_WINDOW_TOKENS,
        "31 s of audio: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_audio_body("alm", "What is said?", two), &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.prompt_tokens") == pt0 + 2 * ALM_WINDOW_TOKENS,
        "two clips: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  CHECK(it_chat_streams(it_audio_body("alm", "What is said?", one), &r), "streamed: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);

  /* refused: audio to a text-only or a vision-only model, bad base64, not audio, an empty WAV */
  it_post_json("/v1/chat/completions", it_audio_body("chat", "x", one), &r);
  CHECK(it_is_error(&r, 400, "unsupported_content"), "text-only model: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  if (it_have_vlm) {
    it_post_json("/v1/chat/completions", it_audio_body("vlm", "x", one), &r);
    CHECK(it_is_error(&r, 400, "unsupported_content"), "vision-only model: %ld %s", r.status,
          r.body.data);
    it_resp_clear(&r);
  }
  const char *badb64[] = {"UklGR*==", NULL},
             *junk[] = {"aGVsbG8sIHdvcmxkLCB0aGlzIGlzIG5vdCBhdWRpbw==", NULL};
  it_post_json("/v1/chat/completions", it_audio_body("alm", "x", badb64), &r);
  CHECK(it_is_error(&r, 400, "invalid_audio"), "bad base64: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_audio_body("alm", "x", junk), &r);
  CHECK(it_is_error(&r, 400, "invalid_audio"), "not audio: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  char *hdr = it_b64_encode(w1.data, 44); /* a WAV header with no samples after it */
  const char *empty[] = {hdr, NULL};
  it_post_json("/v1/chat/completions", it_audio_body("alm", "x", empty), &r);
  CHECK(it_is_error(&r, 400, "invalid_audio"), "truncated WAV: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* a marker typed by the user does not match: refused by the worker, not crashed */
  it_post_json("/v1/chat/completions", it_audio_body("alm", "two <__media__> here", one), &r);
  CHECK(it_is_error(&r, 400, NULL), "stray marker: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  /* /v1/audio/transcriptions with the audio LLM: a chat with its transcribe_prompt */
  const char *path = "/v1/audio/transcriptions";
  it_post_form(path, w1.data, w1.len, (const char *const[]){"model", "alm", NULL}, &r);
  CHECK(r.status == 200 && it_jstr(r.json, "text") &&
            it_str_is(it_jstr(r.json, "usage.type"), "tokens"),
        "transcription (json): %ld %s", r.status, r.body.data);
  CHECK(it_jnum(r.json, "usage.input_tokens") > ALM_WINDOW_TOKENS &&
            it_jnum(r.json, "usage.output_tokens") > 0,
        "transcription usage: %s", r.body.data);
  it_resp_clear(&r);
  it_post_form(path, w1.data, w1.len,
               (const char *const[]){"model", "alm", "response_format", "text", NULL}, &r);
  CHECK(r.status == 200 && r.body.len > 0 && r.body.data[r.body.len - 1] == '\n',
        "transcription (text): %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_form(path, w1.data, w1.len,
               (const char *const[]){"model", "alm", "response_format", "srt", NULL}, &r);
  CHECK(it_is_error(&r, 400, "unsupported_parameter"), "srt from an LLM: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_post_form("/v1/audio/translations", w1.data, w1.len,
               (const char *const[]){"model", "alm", NULL}, &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "translation by an LLM: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_post_form(path, w1.data, w1.len, (const char *const[]){"model", "chat", NULL}, &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "transcription by a text model: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  /* and the model still serves */
  it_post_json("/v1/chat/completions", it_audio_body("alm", "What is said?", one), &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.prompt_tokens") == pt0 + ALM_WINDOW_TOKENS,
        "after errors: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
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
  it_post_form("/v1/audio/transcriptions", wav->data, wav->len,
               (const char *[]){"model", "parakeet", "response_format", "verbose_json", "vad", vad,
                                "timestamp_granularities[]", "word", "timestamp_granularities[]",
                                "segment", NULL},
               &r);
  CHECK(r.status == 200, "vad=%s: %ld %s", vad, r.status, r.body.data);
  const char *text = it_jstr(r.json, "text");
  CHECK(text && *text, "vad=%s: the random model says something on jfk.wav: %s", vad, r.body.data);
  double dur = json_number_value(it_jpath(r.json, "duration"));
  CHECK(fabs(dur - 11.0) < 0.01 && strcmp(it_jstr(r.json, "task"), "transcribe") == 0, "vad=%s: %s",
        vad, r.body.data);
  json_t *segs = json_object_get(r.json, "segments"), *words = json_object_get(r.json, "words"), *s;
  CHECK(json_array_size(segs) > 0 && json_array_size(words) > 0, "vad=%s: segments and words: %s",
        vad, r.body.data);
  sy_buf joined = {0};
  size_t i;
  double prev = 0;
  json_array_foreach(segs, i, s) {
    double a = json_number_value(json_object_get(s, "start")),
           b = json_number_value(json_object_get(s, "end"));
    const char *t = it_jstr(s, "text");
    CHECK(it_jnum(s, "id") == (long long)i && t && a >= prev && b >= a && b <= dur + 1e-6,
          "vad=%s: segment %zu: %s", vad, i, r.body.data);
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
    double a = json_number_value(json_object_get(s, "start")),
           b = json_number_value(json_object_get(s, "end"));
    const char *w = it_jstr(s, "word");
    CHECK(w && *w && !strchr(w, ' ') && a >= prev && b >= a && b <= dur + 1e-6,
          "vad=%s: word %zu: %s", vad, i, r.body.data);
    prev = a;
  }
  *out = json_incref(r.json);
  it_resp_clear(&r);
}

/* whisper.cpp's tiny random Parakeet-TDT (vocabulary 10) through engine: whisper, on jfk.wav:
 * the same text twice; fixed windows (vad=false) and the Silero VAD's speech as windows */
static void t_transcribe_parakeet(void) {
  char p[600];
  snprintf(p, sizeof p, "%s/jfk.wav", it_testdata_dir);
  sy_buf wav = {0};
  CHECK(it_read_whole(p, &wav), "read %s", p);
  json_t *a, *b, *v;
  parakeet_once(&wav, "false", &a);
  if (!it_cur_failed) parakeet_once(&wav, "false", &b);
  if (it_cur_failed) {
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
  if (it_cur_failed) {
    sy_buf_free(&wav);
    return;
  }
  json_t *sp = json_object_get(v, "speech_segments"), *s;
  size_t i;
  json_array_foreach(json_object_get(v, "segments"), i, s) {
    double s0 = json_number_value(json_object_get(s, "start")),
           s1 = json_number_value(json_object_get(s, "end"));
    bool inside = false;
    for (size_t k = 0; k < json_array_size(sp); k++) {
      const json_t *e = json_array_get(sp, k);
      inside |= s0 >= json_number_value(json_object_get(e, "start")) - 0.011 &&
                s1 <= json_number_value(json_object_get(e, "end")) + 0.011;
    }
    CHECK(inside && json_array_size(sp) == 4, "segment %zu (%.2f-%.2f) outside the speech", i, s0,
          s1);
  }
  json_decref(v);
  resp r;
  it_post_form("/v1/audio/transcriptions", wav.data, wav.len,
               (const char *[]){"model", "parakeet", "response_format", "srt", NULL}, &r);
  char why[200] = "";
  CHECK(r.status == 200 &&
            it_check_subtitles(r.body.data ? r.body.data : "", true, why, sizeof why) > 0,
        "srt: %ld %s %s", r.status, why, r.body.data);
  it_resp_clear(&r);
  it_post_form("/v1/audio/translations", wav.data, wav.len,
               (const char *[]){"model", "parakeet", NULL}, &r);
  sy_buf_free(&wav);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "translation: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

static const it_test tests[] = {
    {"audio_in", t_audio_in, false},
    {"transcribe_parakeet", t_transcribe_parakeet, true},
    {"speech_neural", t_speech_neural, false},
};
const itest_table itest_audio_models = {"audio_models", tests, sizeof tests / sizeof *tests};
