/* test_sse.c — unit tests for src/daemon/http/sse.h, the server-sent events encoding of streamed
 * responses.
 *
 * Covers: the exact bytes of an event ("data: <compact json>\n\n") and of the end marker
 * ("data: [DONE]\n\n"); several events appended in order; object key order kept; reals written
 * compactly; a string holding newlines, carriage returns, tabs, quotes, backslashes, control
 * characters and non-ASCII text stays on one line (no raw CR or LF before the final blank line)
 * and round-trips through json_loads; values that cannot be encoded (NULL, a bare string) are
 * refused with the buffer untouched; a buffer at its limit refuses an event and the end marker
 * and keeps what it already held; a named event ("event: NAME\ndata: <json>\n\n", Anthropic's
 * streams) and its refusal the same way.
 */
#include "http/sse.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void test_event_exact_bytes(void **state) {
  (void)state;
  sy_buf b = {0};
  json_t *j = json_pack("{s:s, s:i, s:[b,n]}", "id", "chatcmpl-1", "n", 3, "a", 1);
  assert_int_equal(sse_append_json(&b, j), 0);
  assert_string_equal(b.data, "data: {\"id\":\"chatcmpl-1\",\"n\":3,\"a\":[true,null]}\n\n");
  assert_int_equal(b.len, strlen(b.data));
  json_decref(j);

  j = json_pack("{s:f, s:f, s:f}", "x", 0.5, "y", 0.1, "z", 1.0 / 3.0);
  sy_buf_free(&b);
  assert_int_equal(sse_append_json(&b, j), 0);
  assert_string_equal(b.data, "data: {\"x\":0.5,\"y\":0.1,\"z\":0.333333333}\n\n");
  json_decref(j);

  j = json_object();
  sy_buf_free(&b);
  assert_int_equal(sse_append_json(&b, j), 0);
  assert_string_equal(b.data, "data: {}\n\n");
  json_decref(j);
  sy_buf_free(&b);
}

static void test_named_event(void **state) {
  (void)state;
  sy_buf b = {0};
  json_t *j = json_pack("{s:s}", "type", "ping");
  assert_int_equal(sse_append_event(&b, "ping", j), 0);
  assert_string_equal(b.data, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
  assert_int_equal(sse_append_json(&b, j), 0); /* unnamed after named */
  assert_string_equal(b.data,
                      "event: ping\ndata: {\"type\":\"ping\"}\n\ndata: {\"type\":\"ping\"}\n\n");
  json_decref(j);
  size_t len = b.len; /* refused: nothing appended, not even the name */
  assert_int_equal(sse_append_event(&b, "message_start", NULL), -1);
  assert_int_equal(b.len, len);
  sy_buf full = {0};
  full.limit = 12;
  j = json_pack("{s:s}", "type", "message_stop");
  assert_int_equal(sse_append_event(&full, "message_stop", j), -1);
  assert_true(full.len == 0);
  json_decref(j);
  sy_buf_free(&full);
  sy_buf_free(&b);
}

static void test_done_marker(void **state) {
  (void)state;
  sy_buf b = {0};
  assert_int_equal(sse_append_done(&b), 0);
  assert_string_equal(b.data, "data: [DONE]\n\n");
  assert_int_equal(b.len, 14);
  sy_buf_free(&b);
}

static void test_sequence(void **state) {
  (void)state;
  sy_buf b = {0};
  for (int i = 0; i < 3; i++) {
    json_t *j = json_pack("{s:i}", "i", i);
    assert_int_equal(sse_append_json(&b, j), 0);
    json_decref(j);
  }
  assert_int_equal(sse_append_done(&b), 0);
  assert_string_equal(b.data,
                      "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\ndata: [DONE]\n\n");
  sy_buf_free(&b);
}

/* The JSON of an event, checked to be one line: "data: " + json + "\n\n" and nothing else. */
static json_t *decode_event(const char *ev, size_t len) {
  assert_true(len > 8);
  assert_memory_equal(ev, "data: ", 6);
  assert_memory_equal(ev + len - 2, "\n\n", 2);
  for (size_t i = 0; i < len - 2; i++)
    if (ev[i] == '\n' || ev[i] == '\r')
      fail_msg("raw line break at byte %zu of the event: %s", i, ev);
  json_error_t je;
  json_t *j = json_loadb(ev + 6, len - 8, 0, &je);
  if (!j) fail_msg("event does not decode: %s", je.text);
  return j;
}

static void test_awkward_strings_one_line(void **state) {
  (void)state;
  static const char *texts[] = {
      "line one\nline two\n\nline four",
      "carriage\rreturn\r\n",
      "\"quoted\" and 'single' and \\backslash\\",
      "tab\there, bell\x07, escape\x1b, unit sep\x1f",
      "h\xc3\xa9llo w\xc3\xb6rld \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
      "line sep \xe2\x80\xa8 para sep \xe2\x80\xa9", /* U+2028/U+2029: not SSE line breaks */
      "data: [DONE]\n\n",                            /* text that looks like the protocol */
      "",
  };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    json_t *chunk = json_pack("{s:s, s:[{s:i, s:{s:s}, s:n}]}", "object", "chat.completion.chunk",
                              "choices", "index", 0, "delta", "content", texts[i], "finish_reason");
    assert_non_null(chunk);
    sy_buf b = {0};
    assert_int_equal(sse_append_json(&b, chunk), 0);
    json_t *back = decode_event(b.data, b.len);
    assert_true(json_equal(back, chunk));
    const char *content = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(back, "choices"), 0), "delta"), "content"));
    assert_string_equal(content, texts[i]);
    json_decref(back);
    json_decref(chunk);
    sy_buf_free(&b);
  }
}

static void test_unencodable_refused(void **state) {
  (void)state;
  sy_buf b = {0};
  assert_int_equal(sy_buf_puts(&b, "before"), 0);
  assert_int_equal(sse_append_json(&b, NULL), -1);
  json_t *s = json_string("bare");
  assert_int_equal(sse_append_json(&b, s), -1); /* not an object or array */
  json_decref(s);
  assert_string_equal(b.data, "before");
  sy_buf_free(&b);
}

static void test_limit_refusal(void **state) {
  (void)state;
  json_t *j = json_pack("{s:s}", "content", "a fairly long piece of generated text");
  /* room for nothing */
  sy_buf b = {.limit = 4};
  assert_int_equal(sse_append_json(&b, j), -1);
  assert_int_equal(sse_append_done(&b), -1);
  assert_true(b.len <= 4);
  sy_buf_free(&b);

  /* room for "data: " but not the JSON: a refusal leaves no half event behind */
  sy_buf h = {.limit = 20};
  assert_int_equal(sse_append_json(&h, j), -1);
  assert_int_equal(h.len, 0);
  sy_buf_free(&h);

  /* room for one event exactly: it fits; the next one and the marker are refused */
  sy_buf one = {0};
  assert_int_equal(sse_append_json(&one, j), 0);
  sy_buf c = {.limit = one.len};
  assert_int_equal(sse_append_json(&c, j), 0);
  assert_string_equal(c.data, one.data);
  assert_int_equal(sse_append_json(&c, j), -1);
  assert_int_equal(sse_append_done(&c), -1);
  /* the complete event already there is untouched */
  assert_memory_equal(c.data, one.data, one.len);
  assert_true(c.len <= c.limit);
  sy_buf_free(&c);

  /* room for the marker and not one byte less */
  sy_buf d = {.limit = 14};
  assert_int_equal(sse_append_done(&d), 0);
  sy_buf e = {.limit = 13};
  assert_int_equal(sse_append_done(&e), -1);
  assert_int_equal(e.len, 0);
  sy_buf_free(&d);
  sy_buf_free(&e);
  sy_buf_free(&one);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_event_exact_bytes),
      cmocka_unit_test(test_named_event),
      cmocka_unit_test(test_done_marker),
      cmocka_unit_test(test_sequence),
      cmocka_unit_test(test_awkward_strings_one_line),
      cmocka_unit_test(test_unencodable_refused),
      cmocka_unit_test(test_limit_refusal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
