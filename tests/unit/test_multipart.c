/* test_multipart.c — unit tests for src/daemon/http/multipart.h (multipart/form-data) and the pure
 * helpers of api/transcribe.h (response formats, cue timestamps, SRT/VTT bodies).
 *
 * Covers: the boundary from a Content-Type (plain, quoted, other parameters, wrong type, missing,
 * too long); a form with text fields and a file (names, filename, content type, exact data
 * bytes, binary data holding CR/LF and "--"); a preamble; a part without headers refused; no
 * closing boundary; headers longer than the limit; too many parts; a field name too long; the last
 * duplicate wins; timestamps rounded and clamped; subtitles with increasing, well-formed cues,
 * empty segments left out, times that go back clamped. */
#include <jansson.h>

#include "api/transcribe.h"
#include "http/multipart.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void test_boundary(void **state) {
  (void)state;
  char b[MP_MAX_BOUNDARY + 1];
  assert_int_equal(mp_boundary("multipart/form-data; boundary=abc123", b, sizeof b), 0);
  assert_string_equal(b, "abc123");
  assert_int_equal(
      mp_boundary("Multipart/Form-Data;charset=utf-8; Boundary=\"a b;c\"", b, sizeof b), 0);
  assert_string_equal(b, "a b;c");
  assert_int_equal(mp_boundary("application/json", b, sizeof b), -1);
  assert_int_equal(mp_boundary("multipart/form-data", b, sizeof b), -1);
  assert_int_equal(mp_boundary("multipart/form-datax; boundary=a", b, sizeof b), -1);
  assert_int_equal(mp_boundary("multipart/form-data; boundary=", b, sizeof b), -1);
  assert_int_equal(mp_boundary("multipart/form-data; boundary=\"abc", b, sizeof b), -1);
  char longb[200];
  snprintf(longb, sizeof longb, "multipart/form-data; boundary=%071d", 7);
  assert_int_equal(mp_boundary(longb, b, sizeof b), -1);
  assert_int_equal(mp_boundary(NULL, b, sizeof b), -1);
}

static const char form[] =
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
    "whisper\r\n"
    "--XyZ\r\n"
    "content-disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".wav\"\r\n"
    "Content-Type: audio/wav\r\n\r\n"
    "RI\r\n--X\0FF\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=model\r\n\r\n"
    "second\r\n"
    "--XyZ--\r\nepilogue";

static void test_parse_form(void **state) {
  (void)state;
  mp_part parts[8];
  size_t n;
  char err[128];
  assert_int_equal(mp_parse(form, sizeof form - 1, "XyZ", parts, 8, &n, err, sizeof err), 0);
  assert_int_equal(n, 3);
  assert_string_equal(parts[0].name, "model");
  assert_int_equal(parts[0].len, 7);
  assert_memory_equal(parts[0].data, "whisper", 7);
  assert_false(parts[0].has_filename);
  assert_string_equal(parts[1].name, "file");
  assert_true(parts[1].has_filename);
  assert_string_equal(parts[1].filename, "a \"b\".wav");
  assert_string_equal(parts[1].content_type, "audio/wav");
  assert_int_equal(parts[1].len, 10);
  assert_memory_equal(parts[1].data, "RI\r\n--X\0FF", 10);
  const mp_part *m = mp_find(parts, n, "model");
  assert_non_null(m);
  assert_memory_equal(m->data, "second", 6); /* the last one wins */
  assert_null(mp_find(parts, n, "nope"));

  /* a preamble before the first boundary */
  static const char pre[] =
      "ignored\r\n--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--";
  assert_int_equal(mp_parse(pre, sizeof pre - 1, "b", parts, 8, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_memory_equal(parts[0].data, "1", 1);
}

static void test_parse_refusals(void **state) {
  (void)state;
  mp_part parts[2];
  size_t n;
  char err[128];
  static const char noclose[] =
      "--b\r\nContent-Disposition: form-data; name=x\r\n\r\ndata without an end";
  assert_int_equal(mp_parse(noclose, sizeof noclose - 1, "b", parts, 2, &n, err, sizeof err), -1);
  static const char nohdr[] = "--b\r\n\r\ndata\r\n--b--";
  assert_int_equal(mp_parse(nohdr, sizeof nohdr - 1, "b", parts, 2, &n, err, sizeof err), -1);
  static const char noname[] = "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--";
  assert_int_equal(mp_parse(noname, sizeof noname - 1, "b", parts, 2, &n, err, sizeof err), -1);
  static const char notform[] = "--b\r\nContent-Disposition: attachment; name=x\r\n\r\nx\r\n--b--";
  assert_int_equal(mp_parse(notform, sizeof notform - 1, "b", parts, 2, &n, err, sizeof err), -1);
  static const char three[] =
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
      "--b\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n"
      "--b\r\nContent-Disposition: form-data; name=c\r\n\r\n3\r\n--b--";
  assert_int_equal(mp_parse(three, sizeof three - 1, "b", parts, 2, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "too many"));
  assert_int_equal(mp_parse("", 0, "b", parts, 2, &n, err, sizeof err), -1);
  assert_int_equal(mp_parse("--b", 3, "b", parts, 2, &n, err, sizeof err), -1);
  /* headers over the limit */
  static char big[MP_MAX_HEADER + 200];
  int k = snprintf(big, sizeof big, "--b\r\nContent-Disposition: form-data; name=x\r\nX-Pad: ");
  memset(big + k, 'a', MP_MAX_HEADER);
  memcpy(big + k + MP_MAX_HEADER, "\r\n\r\nv\r\n--b--", 12);
  assert_int_equal(
      mp_parse(big, (size_t)k + MP_MAX_HEADER + 12, "b", parts, 2, &n, err, sizeof err), -1);
  /* a field name longer than its buffer is refused, never cut */
  char longname[400];
  k = snprintf(longname, sizeof longname,
               "--b\r\nContent-Disposition: form-data; name=\"%0200d\"\r\n\r\nv\r\n--b--", 1);
  assert_int_equal(mp_parse(longname, (size_t)k, "b", parts, 2, &n, err, sizeof err), -1);
}

static void test_formats_and_times(void **state) {
  (void)state;
  assert_int_equal(api_transcribe_format("json"), AUD_JSON);
  assert_int_equal(api_transcribe_format("verbose_json"), AUD_VERBOSE);
  assert_int_equal(api_transcribe_format("srt"), AUD_SRT);
  assert_int_equal(api_transcribe_format("vtt"), AUD_VTT);
  assert_int_equal(api_transcribe_format("text"), AUD_TEXT);
  assert_int_equal(api_transcribe_format("mp3"), -1);
  assert_int_equal(api_transcribe_format(NULL), -1);
  char t[32];
  api_transcribe_timestamp(3725.0015, true, t, sizeof t);
  assert_string_equal(t, "01:02:05,002");
  api_transcribe_timestamp(0.9999, false, t, sizeof t);
  assert_string_equal(t, "00:00:01.000");
  api_transcribe_timestamp(-3, true, t, sizeof t);
  assert_string_equal(t, "00:00:00,000");
  api_transcribe_timestamp(1e12, false, t, sizeof t);
  assert_string_equal(t, "99:59:59.999");
}

static void test_subtitles(void **state) {
  (void)state;
  json_t *segs = json_pack("[{s:f, s:f, s:s}, {s:f, s:f, s:s}, {s:f, s:f, s:s}, {s:f, s:f, s:s}]",
                           "start", 0.0, "end", 2.5, "text", " Hello there.", "start", 2.5, "end",
                           3.0, "text", "  ", "start", 2.0, "end", 1.0, "text", " back\n\nin time",
                           "start", 4.0, "end", 6.25, "text", "last");
  sy_buf b = {0};
  assert_int_equal(api_transcribe_subtitles(segs, true, &b), 0);
  assert_string_equal(b.data,
                      "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
                      "2\n00:00:02,000 --> 00:00:02,000\nback\nin time\n\n"
                      "3\n00:00:04,000 --> 00:00:06,250\nlast\n\n");
  sy_buf_free(&b);
  assert_int_equal(api_transcribe_subtitles(segs, false, &b), 0);
  assert_string_equal(b.data,
                      "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n"
                      "00:00:02.000 --> 00:00:02.000\nback\nin time\n\n"
                      "00:00:04.000 --> 00:00:06.250\nlast\n\n");
  sy_buf_free(&b);
  json_decref(segs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_boundary),       cmocka_unit_test(test_parse_form),
      cmocka_unit_test(test_parse_refusals), cmocka_unit_test(test_formats_and_times),
      cmocka_unit_test(test_subtitles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
