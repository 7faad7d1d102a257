/* test_realtime.c — unit tests for src/daemon/parse/realtime_parse.c (the Realtime API's events
 * and session, pure).
 *
 * Covers: every client event name, current and beta; bad JSON, a non-object, no type, an unknown
 * type (error codes, the client's event_id kept); append's base64 decoded and bounded; truncate's
 * fields; session.update in the current shape (audio.input/output, output_modalities, tools) and
 * the beta shape (input_audio_format, voice, modalities, turn_detection null) merged and rendered;
 * a bad field leaves the session unchanged; the error event's shape; G.711 µ-law and A-law round
 * trips within their quantisation; pcm16 both ways; the VAD level of silence, a loud tone and a
 * quiet one. */
/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>
/* clang-format on */

#include "parse/realtime_parse.h"

static int parse(const char *s, rt_event *ev, api_error *e) {
  return rt_event_parse(s, strlen(s), 1024, ev, e);
}

static void test_names(void **state) {
  (void)state;
  static const struct {
    const char *json;
    rt_type t;
  } ok[] = {
      {"{\"type\":\"session.update\",\"session\":{}}", RT_SESSION_UPDATE},
      {"{\"type\":\"transcription_session.update\",\"session\":{}}", RT_SESSION_UPDATE},
      {"{\"type\":\"input_audio_buffer.append\",\"audio\":\"AAAA\"}", RT_AUDIO_APPEND},
      {"{\"type\":\"input_audio_buffer.commit\"}", RT_AUDIO_COMMIT},
      {"{\"type\":\"input_audio_buffer.clear\"}", RT_AUDIO_CLEAR},
      {"{\"type\":\"conversation.item.create\",\"item\":{}}", RT_ITEM_CREATE},
      {"{\"type\":\"conversation.item.delete\",\"item_id\":\"a\"}", RT_ITEM_DELETE},
      {"{\"type\":\"conversation.item.retrieve\",\"item_id\":\"a\"}", RT_ITEM_RETRIEVE},
      {"{\"type\":\"response.create\"}", RT_RESPONSE_CREATE},
      {"{\"type\":\"response.cancel\"}", RT_RESPONSE_CANCEL},
      {"{\"type\":\"output_audio_buffer.clear\"}", RT_OUTPUT_AUDIO_CLEAR},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    rt_event ev;
    api_error e;
    assert_int_equal(parse(ok[i].json, &ev, &e), 0);
    assert_int_equal(ev.type, ok[i].t);
    rt_event_clear(&ev);
  }
}

static void test_errors(void **state) {
  (void)state;
  rt_event ev;
  api_error e;
  assert_int_equal(parse("{nope", &ev, &e), -1);
  assert_string_equal(e.code, "invalid_json");
  assert_int_equal(parse("[1]", &ev, &e), -1);
  assert_string_equal(e.code, "invalid_event");
  assert_int_equal(parse("{\"event_id\":\"ev9\"}", &ev, &e), -1);
  assert_string_equal(e.code, "missing_field");
  assert_string_equal(ev.event_id, "ev9");
  assert_int_equal(parse("{\"type\":\"x.y\",\"event_id\":\"ev1\"}", &ev, &e), -1);
  assert_string_equal(e.code, "unknown_event");
  assert_string_equal(ev.event_id, "ev1");
  assert_int_equal(parse("{\"type\":\"session.update\"}", &ev, &e), -1);
  assert_string_equal(e.param, "session");
  assert_int_equal(parse("{\"type\":\"input_audio_buffer.append\",\"audio\":5}", &ev, &e), -1);
  assert_int_equal(parse("{\"type\":\"input_audio_buffer.append\",\"audio\":\"@@@@\"}", &ev, &e),
                   -1);
  assert_string_equal(e.code, "invalid_value");
  char big[3000] = "{\"type\":\"input_audio_buffer.append\",\"audio\":\"";
  size_t n = strlen(big);
  memset(big + n, 'A', 2000);
  strcpy(big + n + 2000, "\"}");
  assert_int_equal(parse(big, &ev, &e), -1);
  assert_string_equal(e.code, "audio_too_large");
  assert_int_equal(parse("{\"type\":\"conversation.item.truncate\",\"item_id\":\"a\"}", &ev, &e),
                   -1);
  json_t *j = rt_error_event(&e, "ev1");
  assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "event_id")),
                      "ev1");
  json_decref(j);
}

static void test_append_truncate(void **state) {
  (void)state;
  rt_event ev;
  api_error e;
  assert_int_equal(
      parse("{\"type\":\"input_audio_buffer.append\",\"audio\":\"AAABAP9/\"}", &ev, &e), 0);
  assert_int_equal(ev.audio_len, 6);
  float *pcm = NULL;
  size_t n = 0;
  assert_int_equal(rt_audio_to_float(RT_FMT_PCM16, ev.audio, ev.audio_len, &pcm, &n), 0);
  assert_int_equal(n, 3);
  assert_true(pcm[0] == 0.0f && fabsf(pcm[1] - 1.0f / 32768) < 1e-7 && pcm[2] > 0.999f);
  size_t nb;
  uint8_t *back = rt_audio_from_float(RT_FMT_PCM16, pcm, n, &nb);
  assert_int_equal(nb, 6);
  assert_memory_equal(back, ev.audio, 4);
  free(back);
  free(pcm);
  rt_event_clear(&ev);
  assert_int_equal(parse("{\"type\":\"conversation.item.truncate\",\"item_id\":\"it\","
                         "\"content_index\":0,\"audio_end_ms\":1500}",
                         &ev, &e),
                   0);
  assert_string_equal(ev.item_id, "it");
  assert_int_equal(ev.audio_end_ms, 1500);
  rt_event_clear(&ev);
}

static void test_session_ga(void **state) {
  (void)state;
  rt_session s;
  rt_session_init(&s, false);
  api_error e;
  json_t *u = json_loads(
      "{\"type\":\"realtime\",\"instructions\":\"Be brief.\",\"output_modalities\":[\"text\"],"
      "\"audio\":{\"input\":{\"format\":{\"type\":\"audio/pcmu\"},\"turn_detection\":{\"type\":"
      "\"server_vad\",\"threshold\":0.3,\"silence_duration_ms\":700},\"transcription\":{\"model\":"
      "\"whisper\",\"language\":\"en\"}},\"output\":{\"format\":{\"type\":\"audio/"
      "pcma\"},\"voice\":"
      "\"en-us\"}},\"tools\":[{\"type\":\"function\",\"name\":\"get\",\"parameters\":{}}],"
      "\"max_output_tokens\":50}",
      0, NULL);
  assert_int_equal(rt_session_apply(&s, u, &e), 0);
  json_decref(u);
  assert_string_equal(s.instructions, "Be brief.");
  assert_false(s.audio_out);
  assert_int_equal(s.in_fmt, RT_FMT_ULAW);
  assert_int_equal(s.out_fmt, RT_FMT_ALAW);
  assert_true(s.vad.server);
  assert_true(fabs(s.vad.threshold - 0.3) < 1e-9);
  assert_int_equal(s.vad.silence_duration_ms, 700);
  assert_int_equal(s.vad.prefix_padding_ms, 300);
  assert_string_equal(s.voice, "en-us");
  assert_string_equal(s.transcribe_model, "whisper");
  assert_int_equal(s.max_output_tokens, 50);
  assert_int_equal(json_array_size(s.tools), 1);
  json_t *j = rt_session_json(&s, "sess_1", "talk");
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(json_object_get(j, "audio"), "input"), "format"),
          "type")),
      "audio/pcmu");
  json_t *t0 = json_array_get(json_object_get(j, "tools"), 0);
  assert_string_equal(json_string_value(json_object_get(t0, "name")), "get");
  json_decref(j);
  /* a bad field: nothing changes */
  u = json_loads(
      "{\"instructions\":\"other\",\"audio\":{\"input\":{\"turn_detection\":{\"type\":"
      "\"server_vad\",\"threshold\":3}}}}",
      0, NULL);
  assert_int_equal(rt_session_apply(&s, u, &e), -1);
  assert_string_equal(e.param, "session.turn_detection.threshold");
  assert_string_equal(s.instructions, "Be brief.");
  json_decref(u);
  rt_session_free(&s);
}

static void test_session_beta(void **state) {
  (void)state;
  rt_session s;
  rt_session_init(&s, false);
  api_error e;
  json_t *u = json_loads(
      "{\"modalities\":[\"text\",\"audio\"],\"voice\":\"alloy\","
      "\"input_audio_format\":\"g711_alaw\",\"output_audio_format\":\"pcm16\","
      "\"turn_detection\":null,\"temperature\":0.8,"
      "\"max_response_output_tokens\":\"inf\"}",
      0, NULL);
  assert_int_equal(rt_session_apply(&s, u, &e), 0);
  json_decref(u);
  assert_true(s.audio_out);
  assert_int_equal(s.in_fmt, RT_FMT_ALAW);
  assert_false(s.vad.server);
  assert_string_equal(s.voice, "alloy");
  assert_int_equal(s.max_output_tokens, 0);
  u = json_loads("{\"type\":\"transcription\"}", 0, NULL);
  assert_int_equal(rt_session_apply(&s, u, &e), -1);
  json_decref(u);
  u = json_loads("{\"input_audio_format\":\"mp3\"}", 0, NULL);
  assert_int_equal(rt_session_apply(&s, u, &e), -1);
  assert_string_equal(e.param, "session.audio.input.format");
  json_decref(u);
  rt_session_free(&s);
}

static void test_g711(void **state) {
  (void)state;
  float in[64];
  for (int i = 0; i < 64; i++) in[i] = 0.9f * sinf((float)i * 0.3f);
  for (int f = RT_FMT_ULAW; f <= RT_FMT_ALAW; f++) {
    size_t nb;
    uint8_t *b = rt_audio_from_float((rt_fmt)f, in, 64, &nb);
    assert_int_equal(nb, 64);
    float *out = NULL;
    size_t n = 0;
    assert_int_equal(rt_audio_to_float((rt_fmt)f, b, nb, &out, &n), 0);
    assert_int_equal(n, 64);
    for (int i = 0; i < 64; i++) assert_true(fabsf(out[i] - in[i]) < 0.05f);
    free(out);
    free(b);
  }
  assert_int_equal(rt_fmt_rate(RT_FMT_ULAW), 8000);
  assert_int_equal(rt_fmt_rate(RT_FMT_PCM16), 24000);
}

static void test_vad_level(void **state) {
  (void)state;
  float z[480] = {0}, loud[480], quiet[480];
  for (int i = 0; i < 480; i++) {
    loud[i] = 0.5f * sinf((float)i * 0.2f);
    quiet[i] = 0.001f * sinf((float)i * 0.2f);
  }
  assert_true(rt_vad_level(z, 480) == 0.0);
  assert_true(rt_vad_level(loud, 480) > 0.8);
  assert_true(rt_vad_level(quiet, 480) < 0.1);
}

static void test_item_content(void **state) {
  (void)state;
  api_error e;
  char *t;
  uint8_t *a;
  size_t n;
  json_t *it = json_loads(
      "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
      "\"input_text\",\"text\":\"Hi \"},{\"type\":\"input_text\",\"text\":"
      "\"there\"},{\"type\":\"input_audio\",\"audio\":\"AAAA\"}]}",
      0, NULL);
  assert_int_equal(rt_item_content(it, &t, &a, &n, 1024, &e), 0);
  assert_string_equal(t, "Hi there");
  assert_int_equal(n, 3);
  free(t);
  free(a);
  json_decref(it);
  it = json_loads("{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"42\"}", 0,
                  NULL);
  assert_int_equal(rt_item_content(it, &t, &a, &n, 1024, &e), 0);
  assert_string_equal(t, "42");
  free(t);
  json_decref(it);
  it = json_loads("{\"type\":\"message\",\"role\":\"robot\",\"content\":[]}", 0, NULL);
  assert_int_equal(rt_item_content(it, &t, &a, &n, 1024, &e), -1);
  json_decref(it);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),           cmocka_unit_test(test_errors),
      cmocka_unit_test(test_append_truncate), cmocka_unit_test(test_session_ga),
      cmocka_unit_test(test_session_beta),    cmocka_unit_test(test_g711),
      cmocka_unit_test(test_vad_level),       cmocka_unit_test(test_item_content),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
