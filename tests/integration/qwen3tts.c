/* qwen3tts.c — Qwen3-TTS on a daemon of its own (mkmodel --preset tiny-qwen3tts --mmproj: a
 * random-weight talker and projector; the audio is noise, its structure is checked): formats,
 * the same seed giving the same bytes, languages, reference and uploaded voices. Skipped when the
 * model was not made.
 * Must never happen: a malformed WAV, the same seed giving different audio.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static json_t *q3_body(const char *input, const char *format, const char *voice, int seed) {
  return it_speech_body("q3tts", input, format, voice, seed);
}

static void speech_qwen3tts_body(void) {
  resp r;
  it_http_do(&B, "GET", "/v1/models/q3tts", NULL, &r, NULL);
  const json_t *caps = it_jpath(r.json, "capabilities");
  CHECK(r.status == 200 && json_array_size(caps) == 1 &&
            !strcmp(json_string_value(json_array_get(caps, 0)), "speech"),
        "q3tts has the speech capability only: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* two sentences, each at least one 12.5 Hz frame of 1920 samples (2 bytes each), whole frames */
  it_check_seeded_voice(&B, "q3tts", "Hello world. A second sentence.", 2 * 1920 * 2, 1920 * 2);
  if (it_cur_failed) return;
  it_speech_resp a, b;
  /* no reference voice, pcm, a language of the request (a Switchyard extension) */
  json_t *body = q3_body("Short one.", "pcm", NULL, 1);
  json_object_set_new(body, "language", json_string("de"));
  it_speech_post(&B, body, &a);
  CHECK(a.status == 200 && a.body.len >= 1920 * 2 && a.body.len % (1920 * 2) == 0,
        "pcm without a voice: %ld, %zu bytes", a.status, a.body.len);
  /* the request's own clip (voice_upload): its speaker x-vector changes the audio at the same seed
   */
  body = q3_body("Short one.", "pcm", NULL, 1);
  json_object_set_new(body, "language", json_string("de"));
  json_object_set_new(body, "voice", it_uploaded_voice_file("ref-voice-q3.wav"));
  it_speech_post(&B, body, &b);
  CHECK(b.status == 200 && b.body.len >= 1920 * 2 &&
            (b.body.len != a.body.len || memcmp(a.body.data, b.body.data, a.body.len) != 0),
        "an uploaded voice: %ld, %zu bytes, differs from no voice", b.status, b.body.len);
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  it_post_json_at(&B, "/v1/audio/speech", q3_body("hi", "wav", "nope", 1), &r);
  CHECK(it_is_error(&r, 400, "invalid_voice"), "unknown voice: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  json_t *bad = q3_body("hi", "wav", "ref", 1);
  json_object_set_new(bad, "language", json_string("klingon"));
  it_post_json_at(&B, "/v1/audio/speech", bad, &r);
  CHECK(it_is_error(&r, 400, "invalid_language"), "a language the talker lacks: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
}

static void t_speech_qwen3tts(void) {
  char probe[600], ref[600], yaml[2400];
  snprintf(probe, sizeof probe, "%s/tiny-qwen3tts-mmproj.gguf", it_models_dir);
  if (access(probe, R_OK) != 0) {
    printf("skip - speech_qwen3tts: %s is missing (mkmodel --preset tiny-qwen3tts --mmproj)\n",
           probe);
    it_n_skip++;
    return;
  }
  snprintf(ref, sizeof ref, "%s/ref-voice-q3.wav", it_tmpdir);
  it_write_ref_wav(ref);
  snprintf(yaml, sizeof yaml,
           "log_level: warn\nbuiltin_voice: false\nmodels:\n"
           "  - name: q3tts\n    file: %s/tiny-qwen3tts.gguf\n    mmproj: %s\n    context: 1024\n  "
           "  voice_upload: true\n"
           "    voices:\n      ref: {audio: %s, language: en}\n",
           it_models_dir, probe, ref);
  it_with_own_daemon("qwen3tts", yaml, speech_qwen3tts_body);
}

static const it_test tests[] = {
    {"speech_qwen3tts", t_speech_qwen3tts, false},
};
const itest_table itest_qwen3tts = {"qwen3tts", tests, sizeof tests / sizeof *tests};
