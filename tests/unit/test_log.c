/* test_log.c — unit tests for src/common/log.h, the one logger of the daemon and the workers.
 *
 * Covers: the level and format names (any case, unknown ones refused); text lines (tag, level
 * letter, threshold); JSON lines: one object per line with time, level, tag, pid and message, a
 * message with quotes, backslashes, newlines, control bytes and invalid UTF-8 still one valid JSON
 * line, a message longer than the cap cut inside a character still valid, the threshold.
 * stderr is pointed at a temp file for each test and restored; nothing is written elsewhere.
 */
#include "log.h"

/* cmocka.h needs these before it */
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

#include <jansson.h>

#define CAPTURE_MAX (64 * 1024) /* bytes of log a test reads back */

typedef struct capture {
  FILE *f;
  int saved;
} capture;

static void capture_start(capture *c) {
  c->f = tmpfile();
  assert_non_null(c->f);
  fflush(stderr);
  c->saved = dup(STDERR_FILENO);
  assert_true(c->saved >= 0);
  assert_true(dup2(fileno(c->f), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns what was logged (static, NUL-terminated). */
static const char *capture_end(capture *c) {
  static char buf[CAPTURE_MAX];
  assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
  close(c->saved);
  rewind(c->f);
  size_t n = fread(buf, 1, sizeof buf - 1, c->f);
  buf[n] = '\0';
  fclose(c->f);
  return buf;
}

/* Each line of s parsed as JSON into out[] (at most cap); returns the number of lines. */
static size_t json_lines(const char *s, json_t **out, size_t cap) {
  size_t k = 0;
  for (const char *p = s; *p;) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl); /* every line ends with a newline */
    json_error_t e;
    json_t *j = json_loadb(p, (size_t)(nl - p), 0, &e);
    if (!j) fail_msg("not JSON (%s): %.*s", e.text, (int)(nl - p), p);
    assert_true(json_is_object(j));
    assert_true(k < cap);
    out[k++] = j;
    p = nl + 1;
  }
  return k;
}

static void test_names(void **state) {
  (void)state;
  assert_int_equal(sy_log_parse_format("text"), SY_LOG_TEXT);
  assert_int_equal(sy_log_parse_format("JSON"), SY_LOG_JSON);
  assert_int_equal(sy_log_parse_format("xml"), -1);
  assert_int_equal(sy_log_parse_format(""), -1);
  assert_string_equal(sy_log_format_name(SY_LOG_JSON), "json");
  assert_string_equal(sy_log_format_name(SY_LOG_TEXT), "text");
  assert_int_equal(sy_log_parse_level("Warn"), SY_LOG_WARN);
  assert_int_equal(sy_log_parse_level("loud"), -1);
}

static void test_text(void **state) {
  (void)state;
  sy_log_init("unit", SY_LOG_INFO);
  sy_log_set_format(SY_LOG_TEXT);
  capture c;
  capture_start(&c);
  LOG_I("hello %d", 42);
  LOG_D("not shown");
  LOG_E("bad");
  const char *out = capture_end(&c);
  /* "HH:MM:SS.mmm I unit: hello 42\n" then the error */
  assert_non_null(strstr(out, " I unit: hello 42\n"));
  assert_non_null(strstr(out, " E unit: bad\n"));
  assert_null(strstr(out, "not shown"));
  assert_int_equal(out[2], ':');
}

static void test_json(void **state) {
  (void)state;
  sy_log_init("llama:m", SY_LOG_INFO);
  sy_log_set_format(SY_LOG_JSON);
  assert_int_equal(sy_log_get_format(), SY_LOG_JSON);
  capture c;
  capture_start(&c);
  LOG_W("model '%s' said \"%s\"\\ at %s", "q\"x", "a\nb\tc\x01", "\xff\xfe end");
  LOG_D("below the threshold");
  LOG_I("plain");
  const char *out = capture_end(&c);
  sy_log_set_format(SY_LOG_TEXT);
  json_t *l[4];
  assert_int_equal(json_lines(out, l, 4), 2);
  assert_string_equal(json_string_value(json_object_get(l[0], "level")), "warn");
  assert_string_equal(json_string_value(json_object_get(l[0], "tag")), "llama:m");
  assert_int_equal(json_integer_value(json_object_get(l[0], "pid")), getpid());
  const char *t = json_string_value(json_object_get(l[0], "time"));
  assert_non_null(t); /* 2026-01-02T03:04:05.678Z */
  assert_int_equal(strlen(t), 24);
  assert_int_equal(t[10], 'T');
  assert_int_equal(t[23], 'Z');
  /* the message as given; each invalid byte became U+FFFD */
  assert_string_equal(json_string_value(json_object_get(l[0], "message")),
                      "model 'q\"x' said \"a\nb\tc\x01\"\\ at \xef\xbf\xbd\xef\xbf\xbd end");
  assert_string_equal(json_string_value(json_object_get(l[1], "message")), "plain");
  assert_string_equal(json_string_value(json_object_get(l[1], "level")), "info");
  json_decref(l[0]);
  json_decref(l[1]);
}

/* A message past the cap is cut, possibly inside a character: still one valid line. */
static void test_json_long(void **state) {
  (void)state;
  sy_log_init("switchyard", SY_LOG_DEBUG);
  sy_log_set_format(SY_LOG_JSON);
  char big[8192];
  for (size_t i = 0; i + 2 < sizeof big; i += 2) memcpy(big + i, "\xc3\xa9", 2); /* é */
  big[sizeof big - 2] = '\0';
  capture c;
  capture_start(&c);
  LOG_D("%s", big);
  LOG_D("x%s", big); /* cut at the other byte parity */
  const char *out = capture_end(&c);
  sy_log_set_format(SY_LOG_TEXT);
  json_t *l[2];
  assert_int_equal(json_lines(out, l, 2), 2);
  for (int i = 0; i < 2; i++) {
    const char *m = json_string_value(json_object_get(l[i], "message"));
    assert_non_null(m);
    assert_true(strlen(m) > 1000 && strlen(m) < sizeof big);
    json_decref(l[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_text),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_json_long),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
