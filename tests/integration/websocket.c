/* websocket.c — WebSocket upgrades on a daemon of their own (API keys, one session at most, a
 * 1 s idle timeout), over raw sockets: the checks every HTTP request gets apply to an upgrade too
 * (a foreign Host → 403, no key → 401, a key as Authorization or as OpenAI's browser subprotocol
 * → 101), limits.ws_max_sessions (the second session → 503 too_many_sessions, a slot freed when
 * the first client goes away), limits.ws_idle_timeout (a silent session gets close 1001), and a
 * plain GET of /v1/realtime → 426. The sessions are /v1/realtime transcription sessions on a
 * whisper model (nothing loads until audio comes). The message-level protocol is covered by
 * tests/compat/realtime.test.mjs and websocket.test.mjs (the openai SDK and ws).
 * Must never happen: an upgrade that skips the HTTP checks, a session past its limits.
 *
 * Asserts on status lines and frame headers; never sleeps to synchronise (every wait is a poll
 * on the socket with a bound, or a bounded retry of a request). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "harness.h"

#define WS_TEST_WAIT_MS 10000 /* any one wait on the daemon */

/* Open a socket to B and send an upgrade of path with extra header lines (each ending "\r\n"; a
 * Host line there replaces ours).
 * Returns the fd with the status code in *status (0: no answer), the answer's head in head. */
static int upgrade(const char *path, const char *extra, int *status, char *head, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)B.port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  *status = 0;
  head[0] = '\0';
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return fd;
  char req[2048], host[64];
  snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", B.port);
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\n%sUpgrade: websocket\r\nConnection: "
                   "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n%s\r\n",
                   path, extra && strstr(extra, "Host:") ? "" : host, extra ? extra : "");
  if (write(fd, req, (size_t)n) != n) return fd;
  size_t got = 0;
  while (got + 1 < cap && !strstr(head, "\r\n\r\n")) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, WS_TEST_WAIT_MS) <= 0) break;
    ssize_t k = read(fd, head + got, 1); /* byte by byte: frames after the head stay unread */
    if (k <= 0) break;
    got += (size_t)k;
    head[got] = '\0';
  }
  if (strncmp(head, "HTTP/1.1 ", 9) == 0) *status = atoi(head + 9);
  return fd;
}

/* The next frame's opcode (payload into buf, at most cap, its length in *len; a close's code in
 * *code), or -1 when none came within the wait. */
static int next_frame(int fd, unsigned char *buf, size_t cap, size_t *len, int *code) {
  unsigned char h[10];
  size_t need = 2, got = 0, plen = 0;
  for (int stage = 0; stage < 3; stage++) {
    while (got < need) {
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, WS_TEST_WAIT_MS) <= 0) return -1;
      ssize_t k = read(fd, stage < 2 ? h + got : buf + got, need - got);
      if (k <= 0) return -1;
      got += (size_t)k;
    }
    if (stage == 0) {
      plen = h[1] & 0x7f;
      need = plen == 126 ? 4 : plen == 127 ? 10 : 2;
    } else if (stage == 1) {
      if ((h[1] & 0x7f) == 126) plen = (size_t)h[2] << 8 | h[3];
      if ((h[1] & 0x7f) == 127) return -1; /* not in these tests */
      if (plen > cap) return -1;
      need = plen;
      got = 0;
    }
  }
  *len = plen;
  *code = (h[0] & 0x0f) == 8 && plen >= 2 ? buf[0] << 8 | buf[1] : 0;
  return h[0] & 0x0f;
}

#define RT_PATH "/v1/realtime?intent=transcription&model=whisper"

static void ws_body(void) {
  char head[4096];
  int st;
  /* the HTTP checks */
  int fd = upgrade(RT_PATH, NULL, &st, head, sizeof head);
  CHECK(st == 401, "no key: 401, got %d: %.300s", st, head);
  close(fd);
  fd = upgrade(RT_PATH, "Authorization: Bearer sekrit\r\nHost: evil.example\r\n", &st, head,
               sizeof head);
  CHECK(st == 403 || st == 400, "a foreign Host: refused, got %d", st);
  close(fd);
  /* a session (the key as OpenAI's browser clients send it) */
  int s1 = upgrade(RT_PATH, "Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.sekrit\r\n",
                   &st, head, sizeof head);
  CHECK(st == 101, "the key as a subprotocol: 101, got %d: %.300s", st, head);
  CHECK(strstr(head, "Sec-WebSocket-Protocol: realtime\r\n") != NULL, "realtime chosen: %.300s",
        head);
  CHECK(strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL,
        "the accept key: %.300s", head);
  unsigned char buf[8192];
  size_t len;
  int code;
  int op = next_frame(s1, buf, sizeof buf - 1, &len, &code);
  CHECK(op == 1, "a text frame first: %d", op);
  buf[len] = '\0';
  CHECK(strstr((char *)buf, "\"transcription_session.created\"") ||
            strstr((char *)buf, "\"session.created\""),
        "session created: %.300s", buf);
  /* one session at most */
  fd = upgrade(RT_PATH, "Authorization: Bearer sekrit\r\n", &st, head, sizeof head);
  CHECK(st == 503 && strstr(head, "Retry-After"), "a second session: 503, got %d: %.300s", st,
        head);
  close(fd);
  /* the idle timeout closes the silent one with 1001 */
  do op = next_frame(s1, buf, sizeof buf, &len, &code);
  while (op == 1);
  CHECK(op == 8 && code == 1001, "idle: close 1001, got op %d code %d", op, code);
  close(s1);
  /* its slot is free again (the session may still be leaving: a bounded retry) */
  st = 0;
  for (int i = 0; i < 100 && st != 101; i++) {
    fd = upgrade(RT_PATH, "Authorization: Bearer sekrit\r\n", &st, head, sizeof head);
    close(fd);
    if (st != 101) {
      struct pollfd p = {-1, 0, 0};
      poll(&p, 0, 50); /* not a synchronisation: a retry's pacing */
    }
  }
  CHECK(st == 101, "the slot came back: %d", st);
  /* a plain GET of a WebSocket-only endpoint */
  resp r;
  it_http_do(&B, "GET", "/v1/realtime?model=whisper&intent=transcription", NULL, &r, NULL);
  CHECK(it_is_error(&r, 426, "upgrade_required"), "plain GET: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/metrics", NULL, &r, NULL);
  CHECK(r.status == 200 &&
            it_metric(r.body.data, "switchyard_ws_sessions_refused_total{route=\"realtime\"}") >= 1,
        "refusals counted");
  it_resp_clear(&r);
}

static void t_ws_limits(void) {
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "log_level: warn\napi_keys: [sekrit]\n"
           "limits: {ws_max_sessions: 1, ws_idle_timeout: 1s}\n"
           "models:\n  - {name: whisper, engine: whisper, file: %s/tiny-whisper.bin}\n",
           it_models_dir);
  B.api_key = "sekrit";
  it_with_own_daemon("ws", yaml, ws_body);
  B.api_key = NULL;
}

static const it_test tests[] = {
    {"ws_limits", t_ws_limits, false},
};
const itest_table itest_websocket = {"websocket", tests, sizeof tests / sizeof *tests};
