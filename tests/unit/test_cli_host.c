/* test_cli_host.c — unit tests for cli_conn_resolve (src/daemon/cli/client.c): where the CLI's
 * verbs look for the daemon.
 *
 * Covers: the default (127.0.0.1:8080); SWITCHYARD_HOST as a host, host:port, :port, [v6],
 * [v6]:port, a bare IPv6 address, http:// and https:// URLs with and without a port or a path;
 * --host winning over SWITCHYARD_HOST, --port over a port in either; malformed values refused
 * (an empty host name in brackets, an unclosed bracket, a port that is not 1..65535, junk after
 * "]"); the API key from SWITCHYARD_API_KEY, an empty one taken as none.
 */
#include <stdlib.h>

#include "cli/cli.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

/* The base URL for SWITCHYARD_HOST env (unset when NULL), --host host, --port port (-1: none);
 * "ERR" when refused. */
static const char *base_for(const char *env, const char *host, int port) {
  static cli_conn c;
  if (env)
    setenv("SWITCHYARD_HOST", env, 1);
  else
    unsetenv("SWITCHYARD_HOST");
  cli_conn_init(&c, "test");
  c.host = host;
  c.port = port;
  return cli_conn_resolve(&c) == 0 ? c.base : "ERR";
}

static void test_default(void **state) {
  (void)state;
  assert_string_equal(base_for(NULL, NULL, -1), "http://127.0.0.1:8080");
  assert_string_equal(base_for("", NULL, -1), "http://127.0.0.1:8080");
}

static void test_env_forms(void **state) {
  (void)state;
  assert_string_equal(base_for("box", NULL, -1), "http://box:8080");
  assert_string_equal(base_for("box:9000", NULL, -1), "http://box:9000");
  assert_string_equal(base_for(":9000", NULL, -1), "http://127.0.0.1:9000");
  assert_string_equal(base_for("[::1]", NULL, -1), "http://[::1]:8080");
  assert_string_equal(base_for("[::1]:9000", NULL, -1), "http://[::1]:9000");
  assert_string_equal(base_for("::1", NULL, -1), "http://[::1]:8080");
  assert_string_equal(base_for("http://box:9000", NULL, -1), "http://box:9000");
  assert_string_equal(base_for("http://box:9000/", NULL, -1), "http://box:9000");
  assert_string_equal(base_for("http://box/some/path", NULL, -1), "http://box:8080");
  assert_string_equal(base_for("https://box", NULL, -1), "https://box:443");
  assert_string_equal(base_for("https://[::1]:8443/", NULL, -1), "https://[::1]:8443");
}

static void test_overrides(void **state) {
  (void)state;
  assert_string_equal(base_for("box:9000", "other", -1), "http://other:8080");
  assert_string_equal(base_for("box:9000", NULL, 7000), "http://box:7000");
  assert_string_equal(base_for(NULL, "other:9000", 7000), "http://other:7000");
  assert_string_equal(base_for(NULL, "::1", 7000), "http://[::1]:7000"); /* `ps --host ::1` */
}

static void test_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {"[]:80",
                                    "[::1",
                                    "box:0",
                                    "box:65536",
                                    "box:80x",
                                    "box:",
                                    "[::1]x",
                                    "http://",
                                    "http:///",
                                    "[::1]:abc",
                                    "box:99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *got = base_for(bad[i], NULL, -1);
    if (strcmp(got, "ERR") != 0) fail_msg("SWITCHYARD_HOST '%s' taken as %s", bad[i], got);
  }
}

static void test_api_key(void **state) {
  (void)state;
  cli_conn c;
  setenv("SWITCHYARD_API_KEY", "sekrit", 1);
  cli_conn_init(&c, "test");
  assert_string_equal(c.key, "sekrit");
  setenv("SWITCHYARD_API_KEY", "", 1);
  cli_conn_init(&c, "test");
  assert_null(c.key);
  unsetenv("SWITCHYARD_API_KEY");
  cli_conn_init(&c, "test");
  assert_null(c.key);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default),   cmocka_unit_test(test_env_forms),
      cmocka_unit_test(test_overrides), cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_api_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
