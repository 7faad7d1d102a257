/* asr.c — speech to text on the main daemon (/v1/audio/transcriptions and /translations,
 * tiny-whisper): every response_format, streamed transcription, upload errors, and whisper.cpp's
 * own test model with the real Silero VAD on jfk.wav (../shared/testdata).
 * Must never happen: malformed SRT/VTT, an upload over the limit accepted, a bad file that takes
 * the worker down, a bad form number (temperature_inc) passed on to the worker.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static void t_transcribe(void) {
  if (!it_test_wav.len) it_make_wav(&it_test_wav, 3.0);
  const char *path = "/v1/audio/transcriptions";
  resp r;
  /* json */
  it_post_form(path, it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "whisper", "temperature", "0.2", "language", "en", NULL},
               &r);
  CHECK(r.status == 200 && it_jstr(r.json, "text"), "json: %ld %s", r.status, r.body.data);
  CHECK(strcmp(it_jstr(r.json, "usage.type"), "duration") == 0 &&
            it_jnum(r.json, "usage.seconds") == 3,
        "usage: %s", r.body.data);
  CHECK(strcmp(r.model_hdr, "whisper") == 0, "X-Switchyard-Model '%s'", r.model_hdr);
  it_resp_clear(&r);
  /* text */
  it_post_form(
      path, it_test_wav.data, it_test_wav.len,
      (const char *[]){"model", "whisper", "temperature", "0.2", "response_format", "text", NULL},
      &r);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/plain", 10) == 0, "text: %ld %s", r.status,
        r.content_type);
  CHECK(r.body.len >= 1 && r.body.data[r.body.len - 1] == '\n', "text ends with a newline");
  it_resp_clear(&r);
  /* srt, vtt */
  char why[128] = "";
  for (int srt = 1; srt >= 0; srt--) {
    it_post_form(path, it_test_wav.data, it_test_wav.len,
                 (const char *[]){"model", "whisper", "temperature", "0.2", "response_format",
                                  srt ? "srt" : "vtt", NULL},
                 &r);
    CHECK(r.status == 200, "%s: %ld %s", srt ? "srt" : "vtt", r.status, r.body.data);
    int cues = it_check_subtitles(r.body.data ? r.body.data : "", srt, why, sizeof why);
    CHECK(cues >= 0, "%s: %s:\n%s", srt ? "srt" : "vtt", why, r.body.data);
    it_resp_clear(&r);
  }
  /* verbose_json with words and segments */
  it_post_form(path, it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "whisper", "temperature", "0.2", "response_format",
                                "verbose_json", "timestamp_granularities[]", "word",
                                "timestamp_granularities[]", "segment", NULL},
               &r);
  CHECK(r.status == 200, "verbose_json: %ld %s", r.status, r.body.data);
  CHECK(strcmp(it_jstr(r.json, "task"), "transcribe") == 0 && it_jstr(r.json, "language") &&
            it_jstr(r.json, "text"),
        "verbose_json shape: %s", r.body.data);
  const json_t *dur = it_jpath(r.json, "duration");
  CHECK(json_is_number(dur) && fabs(json_number_value(dur) - 3.0) < 0.01, "duration %s",
        r.body.data);
  json_t *segs = json_object_get(r.json, "segments"), *words = json_object_get(r.json, "words");
  CHECK(json_is_array(segs) && json_is_array(words), "segments and words: %s", r.body.data);
  size_t i;
  json_t *s;
  double prev = 0;
  json_array_foreach(segs, i, s) {
    double a = json_number_value(json_object_get(s, "start")),
           b = json_number_value(json_object_get(s, "end"));
    CHECK(it_jnum(s, "id") == (long long)i && it_jstr(s, "text") && a >= prev && b >= a &&
              b <= 3.0 + 1e-6,
          "segment %zu: %s", i, r.body.data);
    prev = a;
  }
  json_array_foreach(words, i, s) {
    double a = json_number_value(json_object_get(s, "start")),
           b = json_number_value(json_object_get(s, "end"));
    CHECK(it_jstr(s, "word") && b >= a, "word %zu: %s", i, r.body.data);
  }
  it_resp_clear(&r);
}

static void t_transcribe_stream(void) {
  if (!it_test_wav.len) it_make_wav(&it_test_wav, 3.0);
  resp r;
  it_post_form("/v1/audio/transcriptions", it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "whisper", "temperature", "0.2", "stream", "true", NULL},
               &r);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/event-stream", 17) == 0, "%ld %s",
        r.status, r.content_type);
  bool done, ok;
  json_t *ev = it_sse_events(&r.body, &done, &ok);
  size_t n = json_array_size(ev), i;
  json_t *e;
  sy_buf text = {0};
  bool shapes = ok && n >= 1;
  json_array_foreach(ev, i, e) {
    const char *type = it_jstr(e, "type");
    if (i + 1 < n) {
      shapes &= type && strcmp(type, "transcript.text.delta") == 0 && it_jstr(e, "delta");
      if (it_jstr(e, "delta")) sy_buf_puts(&text, it_jstr(e, "delta"));
    }
  }
  const json_t *last = json_array_get(ev, n ? n - 1 : 0);
  const char *ltype = it_jstr(last, "type"), *ltext = it_jstr(last, "text");
  bool same = ltext && strcmp(ltext, text.data ? text.data : "") == 0;
  bool ends = ltype && strcmp(ltype, "transcript.text.done") == 0;
  sy_buf_free(&text);
  json_decref(ev);
  CHECK(shapes, "deltas well formed: %s", r.body.data);
  CHECK(ends, "ends with transcript.text.done: %s", r.body.data);
  CHECK(same, "done text is the deltas joined: %s", r.body.data);
  it_resp_clear(&r);
}

static void t_translations(void) {
  if (!it_test_wav.len) it_make_wav(&it_test_wav, 3.0);
  resp r;
  it_post_form("/v1/audio/translations", it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "whisper", "temperature", "0.2", "response_format",
                                "verbose_json", NULL},
               &r);
  CHECK(r.status == 200 && strcmp(it_jstr(r.json, "task"), "translate") == 0, "%ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
}

static void t_transcribe_errors(void) {
  if (!it_test_wav.len) it_make_wav(&it_test_wav, 3.0);
  const char *path = "/v1/audio/transcriptions";
  resp r;
  /* over limits.max_upload_bytes (4000000 in the main config) */
  size_t big = 5000000;
  char *zeros = calloc(1, big);
  it_post_form(path, zeros, big, (const char *[]){"model", "whisper", NULL}, &r);
  free(zeros);
  CHECK(it_is_error(&r, 413, "request_too_large"), "413: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* a WAV cut inside its fmt chunk */
  sy_buf bad = {0};
  sy_buf_append(&bad, it_test_wav.data, 26);
  it_post_form(path, bad.data, bad.len, (const char *[]){"model", "whisper", NULL}, &r);
  sy_buf_free(&bad);
  CHECK(r.status == 400 && it_jstr(r.json, "error.message"), "corrupt file: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  static const char junk[] = "hello, this is text and not audio at all";
  it_post_form(path, junk, sizeof junk - 1, (const char *[]){"model", "whisper", NULL}, &r);
  CHECK(it_is_error(&r, 415, "unsupported_audio_format"), "not audio: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_post_form(path, it_test_wav.data, it_test_wav.len, (const char *[]){"model", "chat", NULL},
               &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "a chat model: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_form(path, NULL, 0, (const char *[]){"model", "whisper", NULL}, &r);
  CHECK(it_is_error(&r, 400, "missing_required_parameter"), "no file: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_post_form(path, it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "whisper", "response_format", "mp4", NULL}, &r);
  CHECK(it_is_error(&r, 400, "invalid_value"), "bad format: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_form(path, it_test_wav.data, it_test_wav.len,
               (const char *[]){"model", "whisper", "language", "xx", NULL}, &r);
  CHECK(it_is_error(&r, 400, "invalid_language"), "bad language: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json(path, json_pack("{s:s}", "model", "whisper"), &r);
  CHECK(it_is_error(&r, 400, "invalid_content_type"), "JSON body: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

/* temperature_inc (whisper-server's fallback step) must be a number from 0 to 1: anything else is
 * a 400 in the OpenAI error shape, invalid_value on param temperature_inc, before any decoding;
 * a good value is taken. */
static void t_transcribe_bad_temperature_inc(void) {
  if (!it_test_wav.len) it_make_wav(&it_test_wav, 3.0);
  const char *path = "/v1/audio/transcriptions";
  static const char *const bad[] = {"abc", "-0.5", "1.5", "0.2x", "nan", "inf"};
  resp r;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    it_post_form(path, it_test_wav.data, it_test_wav.len,
                 (const char *[]){"model", "whisper", "temperature_inc", bad[i], NULL}, &r);
    CHECK(it_is_error(&r, 400, "invalid_value") &&
              it_str_is(it_jstr(r.json, "error.type"), "invalid_request_error") &&
              it_str_is(it_jstr(r.json, "error.param"), "temperature_inc") &&
              strstr(it_jstr(r.json, "error.message"), "temperature_inc"),
          "temperature_inc '%s': %ld %s", bad[i], r.status, r.body.data);
    it_resp_clear(&r);
  }
  it_post_form(
      path, it_test_wav.data, it_test_wav.len,
      (const char *[]){"model", "whisper", "temperature", "0", "temperature_inc", "0", NULL}, &r);
  CHECK(r.status == 200 && it_jstr(r.json, "text"), "temperature_inc 0: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
}

/* whisper.cpp's own test model (no weights: empty text) with the real Silero VAD on jfk.wav */
static void t_transcribe_vad(void) {
  char p[600];
  snprintf(p, sizeof p, "%s/jfk.wav", it_testdata_dir);
  sy_buf wav = {0};
  CHECK(it_read_whole(p, &wav), "read %s", p);
  resp r;
  it_post_form("/v1/audio/transcriptions", wav.data, wav.len,
               (const char *[]){"model", "whisper-vad", "language", "en", "response_format",
                                "verbose_json", NULL},
               &r);
  sy_buf_free(&wav);
  CHECK(r.status == 200, "%ld %s", r.status, r.body.data);
  static const double want[4][2] = {{0.32, 2.27}, {3.27, 4.41}, {5.38, 7.68}, {8.16, 10.62}};
  json_t *sp = json_object_get(r.json, "speech_segments");
  CHECK(json_array_size(sp) == 4, "4 speech segments: %s", r.body.data);
  for (size_t i = 0; i < 4; i++) {
    double a = json_number_value(json_object_get(json_array_get(sp, i), "start"));
    double b = json_number_value(json_object_get(json_array_get(sp, i), "end"));
    CHECK(fabs(a - want[i][0]) < 0.015 && fabs(b - want[i][1]) < 0.015,
          "segment %zu: %.2f-%.2f, want %.2f-%.2f", i, a, b, want[i][0], want[i][1]);
  }
  const json_t *dur = it_jpath(r.json, "duration");
  CHECK(json_is_number(dur) && fabs(json_number_value(dur) - 11.0) < 0.01, "duration: %s",
        r.body.data);
  CHECK(it_jstr(r.json, "text") && strcmp(it_jstr(r.json, "text"), "") == 0,
        "a weightless model says nothing: %s", r.body.data);
  it_resp_clear(&r);
  /* the same speech through MP3 (decoded by the daemon) */
  snprintf(p, sizeof p, "%s/jfk.mp3", it_testdata_dir);
  wav.len = 0; /* the MP3 alone (appended to the WAV, the WAV's data chunk would hide it) */
  CHECK(it_read_whole(p, &wav), "read %s", p);
  it_post_form("/v1/audio/transcriptions", wav.data, wav.len,
               (const char *[]){"model", "whisper-vad", "language", "en", "response_format",
                                "verbose_json", NULL},
               &r);
  sy_buf_free(&wav);
  sp = json_object_get(r.json, "speech_segments");
  CHECK(r.status == 200 && json_array_size(sp) == 4, "mp3: %ld %s", r.status, r.body.data);
  for (size_t i = 0; i < 4; i++) {
    double a = json_number_value(json_object_get(json_array_get(sp, i), "start"));
    CHECK(fabs(a - want[i][0]) < 0.05, "mp3 segment %zu starts at %.2f, want %.2f", i, a,
          want[i][0]);
  }
  it_resp_clear(&r);
}

static const it_test tests[] = {
    {"transcribe", t_transcribe, false},
    {"transcribe_stream", t_transcribe_stream, false},
    {"translations", t_translations, false},
    {"transcribe_errors", t_transcribe_errors, false},
    {"transcribe_bad_temperature_inc", t_transcribe_bad_temperature_inc, false},
    {"transcribe_vad", t_transcribe_vad, true},
};
const itest_table itest_asr = {"asr", tests, sizeof tests / sizeof *tests};
