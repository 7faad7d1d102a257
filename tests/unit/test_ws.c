/* test_ws.c — unit tests for src/daemon/ws/: the handshake (ws_handshake.c) and connections
 * (ws.c) over a socketpair, a client-side and a server-side ws_conn talking to each other.
 *
 * Covers: RFC 6455's sample key and accept; the request checks (method, upgrade tokens, version,
 * key length and alphabet); an upstream's 101 parsed (complete or not, a wrong accept, another
 * status, the subprotocol, bytes after the head, a head over the bound); messages both ways (text,
 * binary, empty, large), bytes given as already read; a message over the size limit closes with
 * 1009; a clean close returns the peer's code; the idle timeout closes with 1001; the hub's slots
 * and its metrics text. */
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "ws/ws.h"
#include "ws/ws_handshake.h"

static void test_accept_sample(void **state) {
  (void)state;
  char acc[WS_ACCEPT_LEN + 1];
  api_error e;
  assert_int_equal(ws_handshake_check("GET", "websocket", "keep-alive, Upgrade", "13",
                                      "dGhlIHNhbXBsZSBub25jZQ==", acc, &e),
                   0);
  assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  char key[WS_KEY_LEN + 1];
  assert_int_equal(ws_new_key(key), 0);
  assert_int_equal(strlen(key), WS_KEY_LEN);
  assert_int_equal(ws_handshake_check("GET", "WebSocket", "upgrade", "13", key, acc, &e), 0);
}

static void test_request_errors(void **state) {
  (void)state;
  char acc[WS_ACCEPT_LEN + 1];
  api_error e;
  const char *k = "dGhlIHNhbXBsZSBub25jZQ==";
  assert_int_equal(ws_handshake_check("POST", "websocket", "Upgrade", "13", k, acc, &e), -1);
  assert_int_equal(e.status, 405);
  assert_int_equal(ws_handshake_check("GET", NULL, "Upgrade", "13", k, acc, &e), -1);
  assert_int_equal(e.status, 426);
  assert_int_equal(ws_handshake_check("GET", "websocket", "keep-alive", "13", k, acc, &e), -1);
  assert_int_equal(e.status, 426);
  assert_int_equal(ws_handshake_check("GET", "websocket", "Upgrade", "8", k, acc, &e), -1);
  assert_int_equal(e.status, 426);
  assert_string_equal(e.code, "upgrade_required");
  assert_int_equal(ws_handshake_check("GET", "websocket", "Upgrade", "13", "short", acc, &e), -1);
  assert_int_equal(e.status, 400);
  assert_int_equal(
      ws_handshake_check("GET", "websocket", "Upgrade", "13", "!!!!!!!!!!!!!!!!!!!!!!==", acc, &e),
      -1);
  assert_string_equal(e.code, "invalid_websocket_key");
  assert_int_equal(ws_handshake_check("GET", "websocket", "Upgrade", "13", NULL, acc, &e), -1);
  assert_false(ws_is_upgrade("websocketx", "upgrade"));
  assert_true(ws_is_upgrade("h2c, websocket", "Upgrade , close"));
}

static void test_response_parse(void **state) {
  (void)state;
  const char *acc = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
  const char *ok101 =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
      "\r\nSec-WebSocket-Protocol: comfy.v1\r\n\r\nXY";
  int st;
  bool ok;
  char proto[WS_MAX_PROTOCOL + 1];
  size_t n = strlen(ok101);
  assert_int_equal(ws_response_parse(ok101, 20, acc, &st, &ok, proto, sizeof proto), 0);
  long end = ws_response_parse(ok101, n, acc, &st, &ok, proto, sizeof proto);
  assert_int_equal(end, (long)n - 2);
  assert_int_equal(st, 101);
  assert_true(ok);
  assert_string_equal(proto, "comfy.v1");
  assert_true(ws_response_parse(ok101, n, "wrong", &st, &ok, proto, sizeof proto) > 0);
  assert_false(ok);
  const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  assert_true(ws_response_parse(nf, strlen(nf), acc, &st, &ok, proto, sizeof proto) > 0);
  assert_int_equal(st, 404);
  assert_false(ok);
  const char *junk = "garbage\r\n\r\n";
  assert_true(ws_response_parse(junk, strlen(junk), acc, &st, &ok, proto, sizeof proto) > 0);
  assert_int_equal(st, 0);
  char *big = malloc(WS_MAX_RESPONSE_HEAD + 10);
  memset(big, 'a', WS_MAX_RESPONSE_HEAD + 10);
  assert_int_equal(
      ws_response_parse(big, WS_MAX_RESPONSE_HEAD + 10, acc, &st, &ok, proto, sizeof proto), -1);
  free(big);
}

/* ---- two connections over a socketpair ---- */

typedef struct side {
  ws_conn *c;
  int got;         /* messages received */
  bool text;       /* the last one's kind */
  size_t len;      /* ... and length */
  int echo;        /* echo messages back */
  int close_after; /* close (1000) after this many messages; 0: never */
  int code;        /* what ws_run returned */
} side;

static void on_msg(void *ud, ws_conn *c, bool text, const uint8_t *d, size_t len) {
  (void)d;
  side *s = ud;
  s->got++;
  s->text = text;
  s->len = len;
  if (s->echo) ws_send(c, text, d, len);
  if (s->close_after && s->got >= s->close_after) ws_close(c, WS_CLOSE_NORMAL, "bye");
}

static void *run_side(void *arg) {
  side *s = arg;
  ws_handler h = {.on_message = on_msg, .extra_fd = -1};
  s->code = ws_run(s->c, &h, s, -1);
  return NULL;
}

static void test_roundtrip(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ws_limits l = {.max_message_bytes = 1 << 20, .idle_timeout_s = 30};
  side srv = {.echo = 1}, cli = {.close_after = 4};
  srv.c = ws_conn_new(sv[0], false, NULL, 0, &l);
  cli.c = ws_conn_new(sv[1], true, NULL, 0, &l);
  assert_non_null(srv.c);
  assert_non_null(cli.c);
  pthread_t a, b;
  pthread_create(&a, NULL, run_side, &srv);
  pthread_create(&b, NULL, run_side, &cli);
  assert_int_equal(ws_send(cli.c, true, "hello", 5), 0);
  assert_int_equal(ws_send(cli.c, false, "\0\1\2", 3), 0);
  assert_int_equal(ws_send(cli.c, true, "", 0), 0);
  size_t big = 700 * 1024;
  char *p = calloc(1, big);
  assert_int_equal(ws_send(cli.c, false, p, big), 0);
  free(p);
  pthread_join(b, NULL);
  pthread_join(a, NULL);
  assert_int_equal(srv.got, 4);
  assert_int_equal(cli.got, 4);
  assert_false(cli.text);
  assert_int_equal(cli.len, big);
  assert_int_equal(srv.code, WS_CLOSE_NORMAL); /* the client's close */
  assert_int_equal(cli.code, WS_CLOSE_NORMAL); /* the server's echo of it */
  assert_true(ws_closing(cli.c));
  assert_int_equal(ws_send(cli.c, true, "late", 4), -1);
  ws_conn_free(srv.c);
  ws_conn_free(cli.c);
  close(sv[0]);
  close(sv[1]);
}

static void test_too_big_and_pre(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ws_limits l = {.max_message_bytes = 1024, .idle_timeout_s = 30};
  /* a masked "Hi" already read (RFC 6455 masking with a zero key), then a 2000-byte frame */
  const uint8_t pre[] = {0x81, 0x82, 0, 0, 0, 0, 'H', 'i'};
  side srv = {0}, cli = {0};
  srv.c = ws_conn_new(sv[0], false, pre, sizeof pre, &l);
  ws_limits big = {.max_message_bytes = 1 << 20, .idle_timeout_s = 30};
  cli.c = ws_conn_new(sv[1], true, NULL, 0, &big);
  pthread_t a, b;
  pthread_create(&a, NULL, run_side, &srv);
  pthread_create(&b, NULL, run_side, &cli);
  char *p = calloc(1, 2000);
  assert_int_equal(ws_send(cli.c, true, p, 2000), 0);
  free(p);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  assert_int_equal(srv.got, 1); /* "Hi", never the big one */
  assert_int_equal(srv.len, 2);
  assert_int_equal(ws_close_code_sent(srv.c), WS_CLOSE_TOO_BIG);
  assert_int_equal(cli.code, WS_CLOSE_TOO_BIG);
  ws_conn_free(srv.c);
  ws_conn_free(cli.c);
  close(sv[0]);
  close(sv[1]);
}

static void test_idle(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ws_limits l = {.max_message_bytes = 1024, .idle_timeout_s = 1};
  ws_limits lc = {.max_message_bytes = 1024, .idle_timeout_s = 60};
  side srv = {0}, cli = {0};
  srv.c = ws_conn_new(sv[0], false, NULL, 0, &l);
  cli.c = ws_conn_new(sv[1], true, NULL, 0, &lc);
  pthread_t a, b;
  pthread_create(&a, NULL, run_side, &srv);
  pthread_create(&b, NULL, run_side, &cli);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  assert_int_equal(cli.code, WS_CLOSE_GOING_AWAY);
  ws_conn_free(srv.c);
  ws_conn_free(cli.c);
  close(sv[0]);
  close(sv[1]);
}

static void test_hub(void **state) {
  (void)state;
  ws_limits l = {.max_message_bytes = 1024, .idle_timeout_s = 1};
  ws_hub *h = ws_hub_new(&l, 2);
  api_error e;
  assert_int_equal(ws_hub_enter(h, WS_ROUTE_REALTIME, &e), 0);
  assert_int_equal(ws_hub_enter(h, WS_ROUTE_UPSTREAM, &e), 0);
  assert_int_equal(ws_hub_enter(h, WS_ROUTE_UPSTREAM, &e), -1);
  assert_int_equal(e.status, 503);
  assert_string_equal(e.code, "too_many_sessions");
  ws_hub_count(h, WS_ROUTE_UPSTREAM, true, 10);
  ws_hub_closed(h, WS_ROUTE_UPSTREAM, 1000);
  ws_hub_leave(h, WS_ROUTE_UPSTREAM);
  assert_int_equal(ws_hub_enter(h, WS_ROUTE_UPSTREAM, &e), 0);
  sy_buf out = {0};
  assert_int_equal(ws_hub_render(h, &out), 0);
  assert_non_null(strstr(out.data, "switchyard_ws_sessions_open{route=\"upstream\"} 1\n"));
  assert_non_null(strstr(out.data, "switchyard_ws_sessions_refused_total{route=\"upstream\"} 1\n"));
  assert_non_null(strstr(
      out.data, "switchyard_ws_message_bytes_total{route=\"upstream\",direction=\"in\"} 10\n"));
  assert_non_null(
      strstr(out.data, "switchyard_ws_closes_total{route=\"upstream\",code=\"normal\"} 1\n"));
  sy_buf_free(&out);
  ws_hub_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_sample),
      cmocka_unit_test(test_request_errors),
      cmocka_unit_test(test_response_parse),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_too_big_and_pre),
      cmocka_unit_test(test_idle),
      cmocka_unit_test(test_hub),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
