/* test_rpc_addr.c — unit tests for the RPC endpoints and bind addresses: sy_endpoint_parse and
 * sy_addr_scope_numeric (src/common/endpoint.c), and cli_rpc_bind_check
 * (src/daemon/cli/rpc_server.c), which decides whether `switchyard rpc-server` may bind an address
 * (RPC has no authentication).
 *
 * Covers: endpoints as ggml reads them (host:port; names and IPv4; IPv6, empty parts, a port out
 * of range, a sign or a leading zero, junk after the port, a host with odd characters, a host
 * too long refused); the scope of loopback (127/8, ::1), private (10/8, 172.16/12 at both edges,
 * 192.168/16, 100.64/10, 169.254/16, fc00::/7, fe80::/10, a v4-mapped private address) and
 * public addresses (the neighbours of each private range, 8.8.8.8, 2001:db8::1, the wildcards
 * 0.0.0.0 and ::); the bind check: loopback and private accepted, public and the wildcard refused
 * without --allow-public and accepted with it, a name, IPv6 or junk refused always (ggml's server
 * binds numeric IPv4 only). */
#include <stdbool.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "endpoint.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void test_endpoint_parse(void **state) {
  (void)state;
  char host[SY_ENDPOINT_HOST_MAX + 1], err[256];
  int port = 0;
  assert_int_equal(sy_endpoint_parse("127.0.0.1:50052", host, sizeof host, &port, err, sizeof err),
                   0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 50052);
  assert_int_equal(sy_endpoint_parse("gpu-box.lan:1", host, sizeof host, &port, err, sizeof err),
                   0);
  assert_string_equal(host, "gpu-box.lan");
  assert_int_equal(port, 1);
  assert_int_equal(sy_endpoint_parse("a:65535", NULL, 0, NULL, err, sizeof err), 0);
  static const char *const bad[] = {"",          "box",    ":50052",         "box:",    "box:0",
                                    "box:65536", "box:-1", "box:+1",         "box:050", "box:1x",
                                    "box:1 ",    "b x:1",  "[::1]:1",        "::1:1",   "box:1:2",
                                    "b/x:1",     "b_x:1",  "box:99999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (sy_endpoint_parse(bad[i], host, sizeof host, &port, err, sizeof err) == 0)
      fail_msg("endpoint '%s' accepted", bad[i]);
  char longer[SY_ENDPOINT_HOST_MAX + 16];
  memset(longer, 'a', SY_ENDPOINT_HOST_MAX + 1);
  snprintf(longer + SY_ENDPOINT_HOST_MAX + 1, 8, ":80");
  assert_int_equal(sy_endpoint_parse(longer, host, sizeof host, &port, err, sizeof err), -1);
  assert_int_equal(sy_endpoint_parse(NULL, host, sizeof host, &port, err, sizeof err), -1);
}

static void test_scope(void **state) {
  (void)state;
  static const struct {
    const char *addr;
    enum sy_addr_scope want;
  } cases[] = {
      {"127.0.0.1", SY_ADDR_LOOPBACK},
      {"127.255.0.9", SY_ADDR_LOOPBACK},
      {"::1", SY_ADDR_LOOPBACK},
      {"10.0.0.1", SY_ADDR_PRIVATE},
      {"10.255.255.255", SY_ADDR_PRIVATE},
      {"172.16.0.1", SY_ADDR_PRIVATE},
      {"172.31.255.255", SY_ADDR_PRIVATE},
      {"172.15.255.255", SY_ADDR_PUBLIC},
      {"172.32.0.0", SY_ADDR_PUBLIC},
      {"192.168.1.20", SY_ADDR_PRIVATE},
      {"192.169.0.1", SY_ADDR_PUBLIC},
      {"100.64.0.1", SY_ADDR_PRIVATE},
      {"100.127.255.255", SY_ADDR_PRIVATE},
      {"100.128.0.0", SY_ADDR_PUBLIC},
      {"100.63.255.255", SY_ADDR_PUBLIC},
      {"169.254.3.4", SY_ADDR_PRIVATE},
      {"11.0.0.1", SY_ADDR_PUBLIC},
      {"8.8.8.8", SY_ADDR_PUBLIC},
      {"0.0.0.0", SY_ADDR_PUBLIC},
      {"::", SY_ADDR_PUBLIC},
      {"fd00::1", SY_ADDR_PRIVATE},
      {"fc00::1", SY_ADDR_PRIVATE},
      {"fe80::1", SY_ADDR_PRIVATE},
      {"2001:db8::1", SY_ADDR_PUBLIC},
      {"::ffff:192.168.0.1", SY_ADDR_PRIVATE},
      {"::ffff:8.8.8.8", SY_ADDR_PUBLIC},
      {"box", SY_ADDR_INVALID},
      {"", SY_ADDR_INVALID},
      {"1.2.3", SY_ADDR_INVALID},
      {"256.1.1.1", SY_ADDR_INVALID},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    if (sy_addr_scope_numeric(cases[i].addr) != cases[i].want)
      fail_msg("%s: scope %s, want %s", cases[i].addr,
               sy_addr_scope_name(sy_addr_scope_numeric(cases[i].addr)),
               sy_addr_scope_name(cases[i].want));
  assert_int_equal(sy_addr_scope_numeric(NULL), SY_ADDR_INVALID);
}

static void test_bind_check(void **state) {
  (void)state;
  char err[768];
  assert_int_equal(cli_rpc_bind_check("127.0.0.1", false, err, sizeof err), 0);
  assert_int_equal(cli_rpc_bind_check("192.168.1.20", false, err, sizeof err), 0);
  assert_int_equal(cli_rpc_bind_check("10.1.2.3", false, err, sizeof err), 0);
  assert_int_equal(cli_rpc_bind_check("100.100.1.1", false, err, sizeof err), 0);
  assert_int_equal(cli_rpc_bind_check("8.8.8.8", false, err, sizeof err), -1);
  assert_non_null(strstr(err, "--allow-public"));
  assert_non_null(strstr(err, "no authentication"));
  assert_int_equal(cli_rpc_bind_check("0.0.0.0", false, err, sizeof err), -1);
  assert_int_equal(cli_rpc_bind_check("8.8.8.8", true, err, sizeof err), 0);
  assert_int_equal(cli_rpc_bind_check("0.0.0.0", true, err, sizeof err), 0);
  assert_int_equal(cli_rpc_bind_check("not an address", true, err, sizeof err), -1);
  assert_int_equal(cli_rpc_bind_check("", false, err, sizeof err), -1);
  /* the server binds a numeric IPv4 address only: a name or IPv6 would fail there */
  assert_int_equal(cli_rpc_bind_check("localhost", false, err, sizeof err), -1);
  assert_non_null(strstr(err, "IPv4"));
  assert_int_equal(cli_rpc_bind_check("::1", false, err, sizeof err), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_endpoint_parse),
      cmocka_unit_test(test_scope),
      cmocka_unit_test(test_bind_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
