/* test_api_speech.c — unit tests for the pure parts of text to speech:
 *  - api_parse_speech: the worker's `speak` message of a minimal and a full request (voice as a
 *    string or {"id"}, speed, response_format, stream_format); every error: input missing / null /
 *    not a string / empty / over 4096 characters (counted in characters, not bytes: 4096 'é' pass),
 *    voice of a wrong type or too long, response_format unknown, speed out of range or a string,
 *    stream_format unknown; voice.audio (a request's clip) on a model without voice_upload, or not
 * a non-empty string; a model without the speech capability (400 wrong_capability) and an unknown
 * one (404);
 *  - matrix_add_builtins: `speak` (engine espeak, capability speech, no file) is added to a matrix
 *    that has no model of that name; not when a model or an alias already is `speak`; not when the
 *    config says builtin_voice: false; adding twice adds once;
 *  - a fuzz loop (fixed seed) of request bodies: no crash, no leak, every error printable. */
#include "api/speech.h"
#include "parse/api_parse.h"

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

#include "unit.h"

static matrix_model models[] = {
    {.name = "speak", .caps = MATRIX_CAP_SPEECH, .engine = MATRIX_ENGINE_ESPEAK, .parallel = 1},
    {.name = "chat",
     .caps = MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION,
     .context = 512,
     .parallel = 1},
    {.name = "clone",
     .caps = MATRIX_CAP_SPEECH,
     .context = 512,
     .parallel = 1,
     .voice_upload = true},
};
static matrix mx = {.models = models, .n_models = 3, .max_body_bytes = 1 << 20};

/* Parse body; expect status (0 = success) and, on failure, param and code. */
static void expect(const char *body, int status, const char *param, const char *code) {
  json_t *req = ut_json(body);
  api_speech s;
  api_error e = {0};
  int rc = api_parse_speech(&mx, NULL, req, &s, &e);
  if (status == 0) {
    if (rc != 0) fail_msg("%s: refused: %s", body, e.message);
    api_speech_clear(&s);
  } else {
    if (rc == 0) fail_msg("%s: accepted", body);
    assert_int_equal(e.status, status);
    if (param) assert_string_equal(e.param ? e.param : "(null)", param);
    if (code) assert_string_equal(e.code ? e.code : "(null)", code);
    json_t *ej = api_error_json(&e);
    assert_non_null(ej);
    json_decref(ej);
  }
  json_decref(req);
}

static void test_minimal(void **state) {
  (void)state;
  json_t *req = ut_json("{'model':'speak','input':'Hello.'}");
  api_speech s;
  api_error e = {0};
  assert_int_equal(api_parse_speech(&mx, NULL, req, &s, &e), 0);
  assert_ptr_equal(s.model, &models[0]);
  assert_string_equal(s.format, "mp3");
  assert_false(s.sse);
  assert_int_equal(s.n_chars, 6);
  assert_string_equal(json_string_value(json_object_get(s.msg, "op")), "speak");
  assert_string_equal(json_string_value(json_object_get(s.msg, "input")), "Hello.");
  assert_string_equal(json_string_value(json_object_get(s.msg, "voice")), "");
  assert_true(json_real_value(json_object_get(s.msg, "speed")) == 1.0);
  api_speech_clear(&s);
  json_decref(req);
}

static void test_full(void **state) {
  (void)state;
  json_t *req = ut_json(
      "{'model':'speak','input':'Hi','voice':{'id':'en-gb+f3'},'response_format':'pcm',"
      "'speed':2.5,'stream_format':'sse','instructions':'ignored'}");
  api_speech s;
  api_error e = {0};
  assert_int_equal(api_parse_speech(&mx, NULL, req, &s, &e), 0);
  assert_string_equal(s.format, "pcm");
  assert_true(s.sse);
  assert_string_equal(json_string_value(json_object_get(s.msg, "voice")), "en-gb+f3");
  assert_true(json_real_value(json_object_get(s.msg, "speed")) == 2.5);
  api_speech_clear(&s);
  json_decref(req);
  const char *fmts[] = {"mp3", "opus", "aac", "flac", "wav", "pcm"};
  for (size_t i = 0; i < 6; i++) {
    char b[128];
    snprintf(b, sizeof b,
             "{'model':'speak','input':'x','voice':'alloy','response_format':'%s','speed':4}",
             fmts[i]);
    expect(b, 0, NULL, NULL);
  }
  expect("{'model':'speak','input':'x','speed':0.25,'stream_format':'audio'}", 0, NULL, NULL);
}

static void test_errors(void **state) {
  (void)state;
  expect("{'model':'speak'}", 400, "input", "missing_required_parameter");
  expect("{'model':'speak','input':null}", 400, "input", "missing_required_parameter");
  expect("{'model':'speak','input':5}", 400, "input", "invalid_type");
  expect("{'model':'speak','input':''}", 400, "input", "invalid_value");
  expect("{'model':'speak','input':'x','voice':5}", 400, "voice", "invalid_type");
  expect("{'model':'speak','input':'x','voice':{'name':'x'}}", 400, "voice", "invalid_type");
  expect("{'model':'speak','input':'x','response_format':'ogg'}", 400, "response_format",
         "invalid_value");
  expect("{'model':'speak','input':'x','response_format':1}", 400, "response_format",
         "invalid_value");
  expect("{'model':'speak','input':'x','speed':0.2}", 400, "speed", "invalid_value");
  expect("{'model':'speak','input':'x','speed':4.01}", 400, "speed", "invalid_value");
  expect("{'model':'speak','input':'x','speed':'fast'}", 400, "speed", "invalid_value");
  expect("{'model':'speak','input':'x','stream_format':'chunks'}", 400, "stream_format",
         "invalid_value");
  expect("{'model':'chat','input':'x'}", 400, "model", "wrong_capability");
  expect("{'model':'nope','input':'x'}", 404, "model", "model_not_found");
  expect("{'input':'x'}", 400, "model", "missing_required_parameter");
  /* voice.audio (a request's own clip): only where the matrix allows it, and a string */
  expect("{'model':'speak','input':'x','voice':{'audio':'UklGRg=='}}", 400, "voice",
         "voice_upload_disabled");
  expect("{'model':'clone','input':'x','voice':{'audio':''}}", 400, "voice", "invalid_type");
  expect("{'model':'clone','input':'x','voice':{'audio':5}}", 400, "voice", "invalid_type");
  expect("{'model':'clone','input':'x','voice':{'audio':'UklGRg=='}}", 0, NULL, NULL);
}

static void test_length(void **state) {
  (void)state;
  /* 4096 characters pass, 4097 do not; 'é' is two bytes but one character */
  for (int k = 0; k < 2; k++) {
    for (int extra = 0; extra < 2; extra++) {
      const char *ch = k ? "\xc3\xa9" : "a";
      size_t n = 4096 + (size_t)extra, cl = strlen(ch);
      char *in = malloc(n * cl + 1);
      for (size_t i = 0; i < n; i++) memcpy(in + i * cl, ch, cl);
      in[n * cl] = '\0';
      json_t *req = json_pack("{s:s, s:s}", "model", "speak", "input", in);
      api_speech s;
      api_error e = {0};
      int rc = api_parse_speech(&mx, NULL, req, &s, &e);
      if (extra == 0) {
        assert_int_equal(rc, 0);
        assert_int_equal(s.n_chars, 4096);
        api_speech_clear(&s);
      } else {
        assert_int_equal(rc, -1);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "string_above_max_length");
      }
      json_decref(req);
      free(in);
    }
  }
}

/* ---- the built-in model ---- */

static matrix *load_yaml(const char *yaml) {
  char path[] = "/tmp/sy-speech-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  char err[512] = "";
  matrix *m = matrix_load(path, NULL, err, sizeof err);
  unlink(path);
  if (!m) fail_msg("%s", err);
  return m;
}

static void test_builtin(void **state) {
  (void)state;
  char err[256];
  matrix *m = matrix_load(NULL, NULL, err, sizeof err);
  assert_non_null(m);
  assert_true(m->builtin_voice);
  assert_int_equal(m->n_models, 0);
  assert_int_equal(matrix_add_builtins(m), 0);
  assert_int_equal(matrix_add_builtins(m), 0); /* once */
  assert_int_equal(m->n_models, 1);
  const matrix_model *s = matrix_find(m, "speak");
  assert_non_null(s);
  assert_int_equal(s->engine, MATRIX_ENGINE_ESPEAK);
  assert_int_equal(s->caps, MATRIX_CAP_SPEECH);
  assert_string_equal(s->file, "");
  assert_int_equal(s->file_bytes, 0);
  assert_true(s->parallel >= 1);
  matrix_free(m);

  m = load_yaml("builtin_voice: false\n");
  assert_false(m->builtin_voice);
  assert_int_equal(matrix_add_builtins(m), 0);
  assert_int_equal(m->n_models, 0);
  matrix_free(m);

  /* a configured model (or alias) named speak wins */
  m = load_yaml("models:\n  - {name: speak, engine: espeak, keep_alive: -1}\n");
  assert_int_equal(matrix_add_builtins(m), 0);
  assert_int_equal(m->n_models, 1);
  assert_int_equal(m->models[0].keep_alive_s, -1);
  matrix_free(m);
  m = load_yaml("models:\n  - {name: voice, aliases: [speak], engine: espeak}\n");
  assert_int_equal(matrix_add_builtins(m), 0);
  assert_int_equal(m->n_models, 1);
  matrix_free(m);

  char e2[512];
  char path[] = "/tmp/sy-speech-XXXXXX";
  int fd = mkstemp(path);
  const char *bad = "builtin_voice: maybe\n";
  assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
  close(fd);
  assert_null(matrix_load(path, NULL, e2, sizeof e2));
  assert_non_null(strstr(e2, "builtin_voice"));
  unlink(path);
}

/* ---- fuzz ---- */

static void test_fuzz(void **state) {
  (void)state;
  static const char *const vals[] = {"null",
                                     "1",
                                     "-1",
                                     "0.5",
                                     "4.5",
                                     "\"\"",
                                     "\"x\"",
                                     "\"pcm\"",
                                     "\"sse\"",
                                     "\"speak\"",
                                     "[]",
                                     "{}",
                                     "{\"id\":\"en\"}",
                                     "true",
                                     "\"\\u0000a\"",
                                     "1e308"};
  static const char *const keys[] = {"model",           "input", "voice",
                                     "response_format", "speed", "stream_format"};
  unsigned x = 12345;
  for (int it = 0; it < 5000; it++) {
    char body[1024];
    size_t p = (size_t)snprintf(body, sizeof body, "{");
    for (size_t k = 0; k < 6; k++) {
      x = x * 1103515245u + 12345u;
      if ((x >> 16) % 3 == 0 && k != 0) continue;
      x = x * 1103515245u + 12345u;
      p += (size_t)snprintf(body + p, sizeof body - p, "%s\"%s\":%s", p > 1 ? "," : "", keys[k],
                            k == 0 && (x >> 20) % 4 ? "\"speak\"" : vals[(x >> 16) % 16]);
    }
    snprintf(body + p, sizeof body - p, "}");
    api_error e = {0};
    json_t *req = api_parse_body(body, strlen(body), &e);
    if (!req) continue;
    api_speech s;
    if (api_parse_speech(&mx, NULL, req, &s, &e) == 0) {
      assert_non_null(s.msg);
      api_speech_clear(&s);
    } else {
      assert_true(e.status >= 400 && e.status < 500);
      json_t *ej = api_error_json(&e);
      assert_non_null(ej);
      json_decref(ej);
    }
    json_decref(req);
  }
}

/* The `language` extension (Qwen3-TTS): passed to the worker as given; bounded and plain. */
static void test_language(void **state) {
  (void)state;
  json_t *req = ut_json("{'model':'speak','input':'Hallo.','language':'de'}");
  api_speech s;
  api_error e = {0};
  assert_int_equal(api_parse_speech(&mx, NULL, req, &s, &e), 0);
  assert_string_equal(json_string_value(json_object_get(s.msg, "language")), "de");
  api_speech_clear(&s);
  json_decref(req);
  req = ut_json("{'model':'speak','input':'x'}");
  assert_int_equal(api_parse_speech(&mx, NULL, req, &s, &e), 0);
  assert_null(json_object_get(s.msg, "language"));
  api_speech_clear(&s);
  json_decref(req);
  expect("{'model':'speak','input':'x','language':'english'}", 0, NULL, NULL);
  expect("{'model':'speak','input':'x','language':'zh-CN'}", 0, NULL, NULL);
  expect("{'model':'speak','input':'x','language':null}", 0, NULL, NULL);
  expect("{'model':'speak','input':'x','language':5}", 400, "language", "invalid_value");
  expect("{'model':'speak','input':'x','language':''}", 400, "language", "invalid_value");
  expect("{'model':'speak','input':'x','language':'<|im_end|>'}", 400, "language", "invalid_value");
  expect("{'model':'speak','input':'x','language':'abcdefghijklmnopqrstuvwxyzabcdefg'}", 400,
         "language", "invalid_value");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_language), cmocka_unit_test(test_minimal),
      cmocka_unit_test(test_full),     cmocka_unit_test(test_errors),
      cmocka_unit_test(test_length),   cmocka_unit_test(test_builtin),
      cmocka_unit_test(test_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
