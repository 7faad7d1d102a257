/* test_http.c — unit tests for src/daemon/http/http.h, the daemon's HTTP front.
 *
 * Covers:
 *  - http_host_is_loopback on names, IPv4 and IPv6 literals with and without ports, look-alike
 *    hosts (127.0.0.1.evil.com, localhost.evil.com), bad ports, unterminated brackets, "" and NULL;
 *  - http_cross_origin_write (browsers' writes from another origin, "null", look-alikes; reads
 *    and clients without Origin pass) and http_path_is_public (/health and the status page);
 *  - a real server (http_start on 127.0.0.1, port 0) with an echo handler, driven by a tiny raw
 *    TCP client written here (no libcurl: the unit rule does not link it), checking:
 *      200 echo of method / path / body length / a header, for GET, POST and chunked POST;
 *      a body over max_body_bytes -> 413 with an OpenAI error body, announced by Content-Length
 *      (answered from the headers alone, with Expect: 100-continue, and with the body sent right
 *      behind the headers) and sent chunked (the
 *      body is read to its end, then refused, and the connection stays usable);
 *      a body of exactly max_body_bytes is accepted;
 *      Host: evil.com (and look-alikes) -> 403 host_not_allowed; Host: localhost:port -> 200;
 *      HTTP/1.0 without Host -> 200;
 *      too many headers -> 431;
 *      API keys: missing / wrong / prefix / other scheme -> 401 invalid_api_key, the right key
 *      (scheme case-insensitive), a second key, the key in x-api-key (Anthropic's header; also
 *      beside a wrong Bearer token) -> 200, /health without a key -> 200;
 *      error_body: every error reply (401, 403, 413, 431 before the handler, and the handler's)
 *      gets the body the hook makes for its path;
 *      keep-alive: two and then three requests on one connection, all answered in order;
 *      a handler that replies nothing -> 500 no_response; extra response headers;
 *      a streamed reply arrives whole (chunked);
 *  - http_stop with connections still open returns.
 * The client sets a receive timeout only as a safety net so that a server bug fails the test
 * instead of hanging it; nothing waits on time for synchronisation.
 */
#include "http/http.h"
#include "buf.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

#define MAX_BODY 1024

/* ---- http_host_is_loopback ------------------------------------------------------------------ */

static void test_host_is_loopback(void **state) {
  (void)state;
  static const char *yes[] = {"localhost", "LOCALHOST:8080", "LocalHost",    "localhost:1",
                              "127.0.0.1", "127.0.0.1:8080", "127.1.2.3:99", "127.255.255.255",
                              "[::1]",     "[::1]:8080"};
  static const char *no[] = {"evil.com",
                             "evil.com:8080",
                             "127.0.0.1.evil.com",
                             "localhost.evil.com",
                             "localhost.",
                             "[::2]",
                             "[::2]:8080",
                             "10.0.0.1",
                             "128.0.0.1",
                             "0.0.0.0",
                             "127.0.0.1:80x",
                             "127.0.0.1:-1",
                             "localhost:http",
                             "",
                             "[::1",
                             "[::1]x",
                             "[::1]8080",
                             "::1",
                             "[127.0.0.1]",
                             "127.1",
                             "0x7f.0.0.1",
                             "127.0.0.1 ",
                             " 127.0.0.1",
                             "evil.com#@127.0.0.1"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    if (!http_host_is_loopback(yes[i])) fail_msg("\"%s\" should be loopback", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (http_host_is_loopback(no[i])) fail_msg("\"%s\" should not be loopback", no[i]);
  assert_true(http_host_is_loopback(NULL)); /* HTTP/1.0 without Host */
  char longhost[600];
  memset(longhost, 'a', sizeof longhost - 1);
  longhost[sizeof longhost - 1] = '\0';
  assert_false(http_host_is_loopback(longhost));
}

/* ---- http_cross_origin_write, http_path_is_public ------------------------------------------ */

static void test_cross_origin(void **state) {
  (void)state;
  const char *h = "127.0.0.1:8080";
  assert_false(http_cross_origin_write("POST", NULL, h)); /* not a browser */
  assert_false(http_cross_origin_write("POST", "http://127.0.0.1:8080", h));
  assert_false(http_cross_origin_write("POST", "HTTP://127.0.0.1:8080", "127.0.0.1:8080"));
  assert_false(http_cross_origin_write("POST", "http://localhost", "LOCALHOST"));
  assert_false(http_cross_origin_write("GET", "http://evil.example", h)); /* reads: CORS */
  assert_false(http_cross_origin_write("HEAD", "http://evil.example", h));
  assert_false(http_cross_origin_write("OPTIONS", "http://evil.example", h));
  const char *bad[] = {"http://evil.example",
                       "null",
                       "http://127.0.0.1:8081",
                       "http://127.0.0.1",
                       "http://127.0.0.1:8080.evil.example",
                       "",
                       "127.0.0.1:8080",
                       "http://127.0.0.1:8080/"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    if (!http_cross_origin_write("POST", bad[i], h)) fail_msg("POST from %s passed", bad[i]);
    if (!http_cross_origin_write("DELETE", bad[i], h)) fail_msg("DELETE from %s passed", bad[i]);
  }
  assert_true(http_cross_origin_write("POST", "http://127.0.0.1:8080", NULL)); /* no Host */
}

static void test_public_paths(void **state) {
  (void)state;
  const char *yes[] = {"/health", "/", "/ui", "/ui/", "/ui/app.js"};
  const char *no[] = {"/api/ps", "/metrics", "/v1/models",           "/health/", "//",
                      "/uix",    "/u",       "/v1/chat/completions", ""};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    if (!http_path_is_public(yes[i])) fail_msg("%s should be public", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (http_path_is_public(no[i])) fail_msg("%s should need the key", no[i]);
}

/* ---- the server under test ------------------------------------------------------------------ */

typedef struct stream_state {
  int i;
} stream_state;

static int stream_freed;

static ssize_t stream_fn(void *cls, char *buf, size_t max) {
  stream_state *s = cls;
  static const char *pieces[] = {"data: one\n\n", "data: two\n\n", "data: [DONE]\n\n"};
  if (s->i >= 3) return HTTP_STREAM_END;
  size_t n = strlen(pieces[s->i]);
  assert_true(n <= max);
  memcpy(buf, pieces[s->i++], n);
  return (ssize_t)n;
}

static void stream_free(void *cls) {
  free(cls);
  __atomic_add_fetch(&stream_freed, 1, __ATOMIC_SEQ_CST);
}

static void echo_handler(void *ud, http_req *r) {
  (void)ud;
  const char *path = http_path(r);
  if (strcmp(path, "/noreply") == 0) return;
  if (strcmp(path, "/stream") == 0) {
    stream_state *s = calloc(1, sizeof *s);
    http_reply_stream(r, 200, "text/event-stream", stream_fn, s, stream_free);
    return;
  }
  if (strcmp(path, "/error") == 0) {
    api_error e;
    api_error_set(&e, 422, "invalid_request_error", "custom", "field", "custom failure %d", 7);
    http_reply_error(r, &e);
    return;
  }
  size_t len = 0;
  const char *body = http_body(r, &len);
  assert_non_null(body);
  unsigned long sum = 0;
  for (size_t i = 0; i < len; i++) sum = sum * 31 + (unsigned char)body[i];
  json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:s?}", "method", http_method(r), "path", path,
                        "body_len", (json_int_t)len, "body_hash", (json_int_t)(sum & 0xffffffffff),
                        "x_test", http_header(r, "X-Test"));
  http_add_header(r, "X-Echo", "yes");
  http_reply_json(r, 200, j);
}

static http_server *start_server(const char *const *keys, size_t n_keys) {
  http_params p = {0};
  p.host = "127.0.0.1";
  p.port = 0;
  p.max_body_bytes = MAX_BODY;
  p.max_connections = 32;
  p.max_headers = 16;
  p.api_keys = keys;
  p.n_api_keys = n_keys;
  p.handler = echo_handler;
  char err[256] = "";
  http_server *s = http_start(&p, err, sizeof err);
  if (!s) fail_msg("http_start: %s", err);
  assert_true(http_port(s) > 0);
  return s;
}

static int setup_plain(void **state) {
  *state = start_server(NULL, 0);
  return 0;
}

static const char *const test_keys[] = {"sk-test-123", "sk-second"};
static int setup_keys(void **state) {
  *state = start_server(test_keys, 2);
  return 0;
}

static int teardown_server(void **state) {
  http_stop(*state);
  return 0;
}

/* ---- a raw HTTP/1.1 client ------------------------------------------------------------------ */

typedef struct conn {
  int fd;
  sy_buf in; /* bytes read and not yet consumed */
} conn;

typedef struct resp {
  int status;
  char head[8192]; /* status line and headers */
  sy_buf body;
  json_t *json; /* the body as JSON when it parses */
} resp;

static void conn_open(conn *c, const http_server *s) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(c->fd >= 0);
  struct timeval tv = {20, 0}; /* safety net only */
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)http_port(s));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void conn_close(conn *c) {
  close(c->fd);
  sy_buf_free(&c->in);
}

static void send_all(conn *c, const void *p, size_t n) {
  const char *q = p;
  while (n) {
    ssize_t w = send(c->fd, q, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail_msg("send: %s", strerror(errno));
    q += w;
    n -= (size_t)w;
  }
}

static void send_str(conn *c, const char *s) { send_all(c, s, strlen(s)); }

/* Read more bytes into c->in; 0 on EOF. */
static ssize_t fill(conn *c) {
  char tmp[4096];
  ssize_t r;
  do r = recv(c->fd, tmp, sizeof tmp, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) fail_msg("recv: %s", strerror(errno));
  if (r > 0) assert_int_equal(sy_buf_append(&c->in, tmp, (size_t)r), 0);
  return r;
}

/* Wait until c->in holds n bytes; false on EOF first. */
static int need(conn *c, size_t n) {
  while (c->in.len < n)
    if (fill(c) == 0) return 0;
  return 1;
}

/* Find the end of a line from offset off in c->in (reading more as needed); returns its length. */
static size_t line_at(conn *c, size_t off) {
  for (;;) {
    char *nl = c->in.len > off ? memchr(c->in.data + off, '\n', c->in.len - off) : NULL;
    if (nl) return (size_t)(nl - (c->in.data + off)) + 1;
    if (fill(c) == 0) fail_msg("EOF inside a line");
  }
}

static const char *head_value(const resp *r, const char *name) {
  static char val[512];
  const char *p = strstr(r->head, "\r\n");
  size_t nl = strlen(name);
  while (p && p[2]) {
    p += 2;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ') v++;
      const char *e = strstr(v, "\r\n");
      size_t n = e ? (size_t)(e - v) : strlen(v);
      if (n >= sizeof val) n = sizeof val - 1;
      memcpy(val, v, n);
      val[n] = '\0';
      return val;
    }
    p = strstr(p, "\r\n");
  }
  return NULL;
}

/* Read one response (status line, headers, body by Content-Length, chunked, or to EOF). */
static void read_response(conn *c, resp *r) {
  memset(r, 0, sizeof *r);
  char *end;
  while (!(c->in.len && (end = strstr(c->in.data, "\r\n\r\n"))))
    if (fill(c) == 0) fail_msg("EOF before a complete response head (got %zu bytes)", c->in.len);
  size_t hl = (size_t)(end - c->in.data) + 4;
  assert_true(hl < sizeof r->head);
  memcpy(r->head, c->in.data, hl);
  r->head[hl] = '\0';
  sy_buf_consume(&c->in, hl);
  assert_int_equal(sscanf(r->head, "HTTP/1.%*d %d", &r->status), 1);
  const char *te = head_value(r, "Transfer-Encoding");
  const char *cl = head_value(r, "Content-Length");
  if (te && strcasecmp(te, "chunked") == 0) {
    for (;;) {
      size_t ll = line_at(c, 0);
      size_t n = strtoul(c->in.data, NULL, 16);
      sy_buf_consume(&c->in, ll);
      if (n == 0) { /* trailers until an empty line */
        while ((ll = line_at(c, 0)) > 2) sy_buf_consume(&c->in, ll);
        sy_buf_consume(&c->in, ll);
        break;
      }
      if (!need(c, n + 2)) fail_msg("EOF inside a chunk");
      sy_buf_append(&r->body, c->in.data, n);
      sy_buf_consume(&c->in, n + 2);
    }
  } else if (cl) {
    size_t n = strtoul(cl, NULL, 10);
    if (!need(c, n)) fail_msg("EOF inside a body of %zu bytes", n);
    sy_buf_append(&r->body, c->in.data, n);
    sy_buf_consume(&c->in, n);
  } else {
    while (fill(c) > 0) {
    }
    sy_buf_append(&r->body, c->in.data ? c->in.data : "", c->in.len);
    sy_buf_consume(&c->in, c->in.len);
  }
  if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

static void resp_clear(resp *r) {
  json_decref(r->json);
  sy_buf_free(&r->body);
}

/* One request on a fresh connection. */
static void request(const http_server *s, const char *raw, resp *r) {
  conn c;
  conn_open(&c, s);
  send_str(&c, raw);
  read_response(&c, r);
  conn_close(&c);
}

static void expect_echo(const resp *r, const char *method, const char *path, long long body_len) {
  if (r->status != 200) fail_msg("status %d, body %s", r->status, r->body.data ? r->body.data : "");
  assert_non_null(r->json);
  assert_string_equal(json_string_value(json_object_get(r->json, "method")), method);
  assert_string_equal(json_string_value(json_object_get(r->json, "path")), path);
  assert_int_equal(json_integer_value(json_object_get(r->json, "body_len")), body_len);
}

/* An OpenAI error body: {"error":{"message","type","param","code"}}. */
static void expect_error(const resp *r, int status, const char *code, const char *phrase) {
  if (r->status != status)
    fail_msg("status %d (want %d), body %s", r->status, status, r->body.data ? r->body.data : "");
  const char *ct = head_value(r, "Content-Type");
  assert_non_null(ct);
  assert_string_equal(ct, "application/json");
  assert_non_null(r->json);
  json_t *e = json_object_get(r->json, "error");
  assert_true(json_is_object(e));
  assert_true(json_is_string(json_object_get(e, "message")));
  assert_true(json_is_string(json_object_get(e, "type")));
  assert_non_null(json_object_get(e, "param"));
  assert_string_equal(json_string_value(json_object_get(e, "code")), code);
  if (phrase && !strstr(json_string_value(json_object_get(e, "message")), phrase))
    fail_msg("message \"%s\" lacks \"%s\"", json_string_value(json_object_get(e, "message")),
             phrase);
}

static unsigned long body_hash(const char *p, size_t n) {
  unsigned long sum = 0;
  for (size_t i = 0; i < n; i++) sum = sum * 31 + (unsigned char)p[i];
  return sum & 0xffffffffff;
}

/* ---- server tests -------------------------------------------------------------------------- */

static void test_echo(void **state) {
  http_server *s = *state;
  resp r;
  request(s,
          "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test: abc\r\nConnection: close\r\n\r\n",
          &r);
  expect_echo(&r, "GET", "/v1/models", 0);
  assert_string_equal(json_string_value(json_object_get(r.json, "x_test")), "abc");
  assert_string_equal(head_value(&r, "Content-Type"), "application/json");
  assert_string_equal(head_value(&r, "X-Echo"), "yes");
  resp_clear(&r);

  const char *body = "{\"model\":\"x\",\"messages\":[]}";
  char req[512];
  snprintf(req, sizeof req,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:%d\r\nContent-Type: "
           "application/json\r\n"
           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
           http_port(s), strlen(body), body);
  request(s, req, &r);
  expect_echo(&r, "POST", "/v1/chat/completions", (long long)strlen(body));
  assert_int_equal(json_integer_value(json_object_get(r.json, "body_hash")),
                   body_hash(body, strlen(body)));
  assert_true(json_is_null(json_object_get(r.json, "x_test")));
  resp_clear(&r);

  /* the query string is not part of the path */
  request(s, "GET /health?verbose=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", &r);
  expect_echo(&r, "GET", "/health", 0);
  resp_clear(&r);

  /* HTTP/1.0 without a Host header: not a browser, allowed */
  request(s, "GET /x HTTP/1.0\r\n\r\n", &r);
  expect_echo(&r, "GET", "/x", 0);
  resp_clear(&r);
}

static void test_chunked_body(void **state) {
  http_server *s = *state;
  resp r;
  /* a chunked body under the limit is reassembled */
  char body[600];
  for (size_t i = 0; i < sizeof body; i++) body[i] = (char)('a' + i % 26);
  conn c;
  conn_open(&c, s);
  send_str(&c,
           "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  char hdr[32];
  for (size_t off = 0; off < sizeof body; off += 200) {
    snprintf(hdr, sizeof hdr, "%x\r\n", 200);
    send_str(&c, hdr);
    send_all(&c, body + off, 200);
    send_str(&c, "\r\n");
  }
  send_str(&c, "0\r\n\r\n");
  read_response(&c, &r);
  expect_echo(&r, "POST", "/v1/embeddings", (long long)sizeof body);
  assert_int_equal(json_integer_value(json_object_get(r.json, "body_hash")),
                   body_hash(body, sizeof body));
  resp_clear(&r);
  conn_close(&c);
}

static void test_body_limit_content_length(void **state) {
  http_server *s = *state;
  resp r;
  char req[512];
  /* announced as too large: refused from the headers alone, before any body byte is sent */
  snprintf(req, sizeof req,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n",
           MAX_BODY + 1);
  request(s, req, &r);
  expect_error(&r, 413, "request_too_large", "larger than the limit of 1024 bytes");
  resp_clear(&r);
  /* the same with Expect: 100-continue: the answer is the 413, not "100 Continue" */
  snprintf(req, sizeof req,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
           "Content-Length: 99999999999\r\n\r\n");
  request(s, req, &r);
  expect_error(&r, 413, "request_too_large", NULL);
  resp_clear(&r);

  /* the usual client sends the body right behind the headers without waiting: still a clean 413 */
  {
    char *big = malloc(2 * MAX_BODY);
    memset(big, 'q', 2 * MAX_BODY);
    conn c;
    conn_open(&c, s);
    snprintf(req, sizeof req,
             "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n",
             2 * MAX_BODY);
    send_str(&c, req);
    send_all(&c, big, 2 * MAX_BODY);
    read_response(&c, &r);
    expect_error(&r, 413, "request_too_large", "(2048 bytes)");
    resp_clear(&r);
    conn_close(&c);
    free(big);
  }
  /* exactly the limit is fine */
  char *body = malloc(MAX_BODY);
  memset(body, 'b', MAX_BODY);
  conn c;
  conn_open(&c, s);
  snprintf(req, sizeof req, "POST /exact HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n",
           MAX_BODY);
  send_str(&c, req);
  send_all(&c, body, MAX_BODY);
  read_response(&c, &r);
  expect_echo(&r, "POST", "/exact", MAX_BODY);
  resp_clear(&r);
  conn_close(&c);
  free(body);
}

static void test_body_limit_chunked(void **state) {
  http_server *s = *state;
  resp r;
  conn c;
  conn_open(&c, s);
  /* no Content-Length: the limit is found while reading, the body is read to its end, then 413 */
  send_str(
      &c, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  char chunk[512];
  memset(chunk, 'z', sizeof chunk);
  for (int i = 0; i < 4; i++) { /* 2048 bytes in all */
    send_str(&c, "200\r\n");
    send_all(&c, chunk, sizeof chunk);
    send_str(&c, "\r\n");
  }
  send_str(&c, "0\r\n\r\n");
  read_response(&c, &r);
  expect_error(&r, 413, "request_too_large", "larger than the limit");
  resp_clear(&r);
  /* the body was consumed, so the connection can carry another request */
  send_str(&c, "GET /after HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  read_response(&c, &r);
  expect_echo(&r, "GET", "/after", 0);
  resp_clear(&r);
  conn_close(&c);
}

static void test_host_check(void **state) {
  http_server *s = *state;
  static const char *bad[] = {"evil.com", "127.0.0.1.evil.com", "localhost.evil.com", "evil.com:80",
                              "[::2]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char req[256];
    snprintf(req, sizeof req, "GET /v1/models HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
             bad[i]);
    resp r;
    request(s, req, &r);
    expect_error(&r, 403, "host_not_allowed", "Host header");
    resp_clear(&r);
  }
  /* a foreign Host is refused even with a body, which never reaches the handler */
  resp r;
  request(s, "POST /v1/completions HTTP/1.1\r\nHost: evil.com\r\nContent-Length: 2\r\n\r\n{}", &r);
  expect_error(&r, 403, "host_not_allowed", NULL);
  resp_clear(&r);
  request(s, "GET /ok HTTP/1.1\r\nHost: LOCALHOST\r\nConnection: close\r\n\r\n", &r);
  expect_echo(&r, "GET", "/ok", 0);
  resp_clear(&r);
}

static void test_too_many_headers(void **state) {
  http_server *s = *state;
  sy_buf req = {0};
  sy_buf_puts(&req, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (int i = 0; i < 30; i++) sy_buf_printf(&req, "X-Filler-%d: %d\r\n", i, i);
  sy_buf_puts(&req, "\r\n");
  resp r;
  request(s, req.data, &r);
  expect_error(&r, 431, "too_many_headers", "too many");
  resp_clear(&r);
  sy_buf_free(&req);
  /* at the limit (16, Host included) is fine */
  sy_buf_puts(&req, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (int i = 0; i < 15; i++) sy_buf_printf(&req, "X-Filler-%d: %d\r\n", i, i);
  sy_buf_puts(&req, "\r\n");
  request(s, req.data, &r);
  expect_echo(&r, "GET", "/v1/models", 0);
  resp_clear(&r);
  sy_buf_free(&req);
}

static void test_keep_alive(void **state) {
  http_server *s = *state;
  conn c;
  conn_open(&c, s);
  resp r;
  send_str(&c, "GET /first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  read_response(&c, &r);
  expect_echo(&r, "GET", "/first", 0);
  resp_clear(&r);
  send_str(&c, "POST /second HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc");
  read_response(&c, &r);
  expect_echo(&r, "POST", "/second", 3);
  resp_clear(&r);
  /* an error reply (from the handler) keeps the connection too */
  send_str(&c, "GET /error HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  read_response(&c, &r);
  expect_error(&r, 422, "custom", "custom failure 7");
  assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "param")),
                      "field");
  resp_clear(&r);
  send_str(&c, "GET /third HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  read_response(&c, &r);
  expect_echo(&r, "GET", "/third", 0);
  resp_clear(&r);
  assert_int_equal(fill(&c), 0); /* closed as asked */
  conn_close(&c);
}

static void test_no_reply_and_stream(void **state) {
  http_server *s = *state;
  resp r;
  request(s, "GET /noreply HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", &r);
  expect_error(&r, 500, "no_response", NULL);
  assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "type")),
                      "server_error");
  resp_clear(&r);

  int freed_before = __atomic_load_n(&stream_freed, __ATOMIC_SEQ_CST);
  conn c;
  conn_open(&c, s);
  send_str(&c, "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  read_response(&c, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(head_value(&r, "Content-Type"), "text/event-stream");
  assert_string_equal(head_value(&r, "Cache-Control"), "no-cache");
  assert_string_equal(r.body.data, "data: one\n\ndata: two\n\ndata: [DONE]\n\n");
  resp_clear(&r);
  /* the connection survives a streamed reply; the request after it is answered */
  send_str(&c, "GET /next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  read_response(&c, &r);
  expect_echo(&r, "GET", "/next", 0);
  resp_clear(&r);
  conn_close(&c);
  /* the stream's state was freed before the next request on the connection was served */
  assert_true(__atomic_load_n(&stream_freed, __ATOMIC_SEQ_CST) == freed_before + 1);
}

static void test_api_keys(void **state) {
  http_server *s = *state;
  static const struct {
    const char *auth; /* full header line or "" */
    int status;
  } cases[] = {
      {"", 401},
      {"Authorization: Bearer wrong\r\n", 401},
      {"Authorization: Bearer \r\n", 401},
      {"Authorization: Bearer sk-test-12\r\n", 401},   /* a prefix of the key */
      {"Authorization: Bearer sk-test-1234\r\n", 401}, /* the key plus more */
      {"Authorization: Basic c2stdGVzdC0xMjM=\r\n", 401},
      {"Authorization: sk-test-123\r\n", 401},
      {"Authorization: Bearer sk-test-123\r\n", 200},
      {"Authorization: bearer sk-test-123\r\n", 200},
      {"Authorization: Bearer sk-second\r\n", 200},
      {"x-api-key: sk-test-123\r\n", 200},
      {"X-Api-Key: sk-second\r\n", 200},
      {"x-api-key: wrong\r\n", 401},
      {"x-api-key: \r\n", 401},
      {"x-api-key: Bearer sk-test-123\r\n", 401},
      {"Authorization: Bearer wrong\r\nx-api-key: sk-test-123\r\n", 200},
      {"Authorization: Basic c2stdGVzdC0xMjM=\r\nx-api-key: sk-second\r\n", 200},
      {"Authorization: Bearer sk-test-123\r\nx-api-key: wrong\r\n", 200},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char req[512];
    snprintf(req, sizeof req,
             "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
             cases[i].auth);
    resp r;
    request(s, req, &r);
    if (r.status != cases[i].status)
      fail_msg("case %zu (%s): status %d, want %d", i, cases[i].auth, r.status, cases[i].status);
    if (cases[i].status == 401)
      expect_error(&r, 401, "invalid_api_key", "API key");
    else
      expect_echo(&r, "GET", "/v1/models", 0);
    resp_clear(&r);
  }
  /* a POST with a body and a wrong key: 401, and the connection stays usable */
  conn c;
  conn_open(&c, s);
  send_str(&c,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}");
  resp r;
  read_response(&c, &r);
  expect_error(&r, 401, "invalid_api_key", NULL);
  resp_clear(&r);
  send_str(&c, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); /* no key needed */
  read_response(&c, &r);
  expect_echo(&r, "GET", "/health", 0);
  resp_clear(&r);
  conn_close(&c);
  /* the Host check comes first, the body limit still applies */
  request(s, "GET /health HTTP/1.1\r\nHost: evil.com\r\nConnection: close\r\n\r\n", &r);
  expect_error(&r, 403, "host_not_allowed", NULL);
  resp_clear(&r);
  request(s, "POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n", &r);
  expect_error(&r, 413, "request_too_large", NULL);
  resp_clear(&r);
}

/* error_body for the tests: a shape of its own under /other, OpenAI's elsewhere */
static json_t *other_error_body(const char *path, const api_error *e) {
  if (strncmp(path, "/other", 6) != 0) return api_error_json(e);
  return json_pack("{s:s, s:i, s:s}", "shape", "other", "status", e->status, "message", e->message);
}

static void error_reply_handler(void *ud, http_req *r) {
  (void)ud;
  api_error e;
  api_error_set(&e, 418, "invalid_request_error", "teapot", NULL, "from the handler");
  http_reply_error(r, &e);
}

static void test_error_body(void **state) {
  (void)state;
  static const char *const keys[] = {"sk-k"};
  http_params p = {.host = "127.0.0.1",
                   .max_body_bytes = MAX_BODY,
                   .max_connections = 8,
                   .max_headers = 16,
                   .api_keys = keys,
                   .n_api_keys = 1,
                   .handler = error_reply_handler,
                   .error_body = other_error_body};
  char err[256] = "";
  http_server *s = http_start(&p, err, sizeof err);
  assert_non_null(s);
  static const struct {
    const char *req;
    int status;
  } cases[] = {
      {"GET /other/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 401},
      {"GET /other HTTP/1.1\r\nHost: evil.com\r\nConnection: close\r\n\r\n", 403},
      {"POST /other HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999\r\nConnection: "
       "close\r\n\r\n",
       413},
      {"GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: sk-k\r\nConnection: close\r\n\r\n",
       418},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    resp r;
    request(s, cases[i].req, &r);
    if (r.status != cases[i].status || !r.json ||
        strcmp(json_string_value(json_object_get(r.json, "shape")), "other") != 0 ||
        json_integer_value(json_object_get(r.json, "status")) != cases[i].status)
      fail_msg("case %zu: status %d, body %s", i, r.status, r.body.data ? r.body.data : "");
    resp_clear(&r);
  }
  resp r; /* other paths keep OpenAI's shape */
  request(s, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", &r);
  expect_error(&r, 401, "invalid_api_key", "x-api-key");
  resp_clear(&r);
  http_stop(s);
}

static void test_start_errors_and_stop(void **state) {
  (void)state;
  http_params p = {.host = "example.com",
                   .port = 0,
                   .max_body_bytes = 10,
                   .max_connections = 4,
                   .handler = echo_handler};
  char err[256] = "";
  assert_null(http_start(&p, err, sizeof err));
  assert_non_null(strstr(err, "not a numeric"));
  /* a port already taken */
  http_server *a = start_server(NULL, 0);
  p.host = "127.0.0.1";
  p.port = http_port(a);
  err[0] = '\0';
  assert_null(http_start(&p, err, sizeof err));
  assert_non_null(strstr(err, "could not listen"));
  /* stopping with an idle keep-alive connection still open returns */
  conn c;
  conn_open(&c, a);
  send_str(&c, "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  resp r;
  read_response(&c, &r);
  expect_echo(&r, "GET", "/x", 0);
  resp_clear(&r);
  http_stop(a);
  conn_close(&c);
  http_stop(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_is_loopback),
      cmocka_unit_test(test_cross_origin),
      cmocka_unit_test(test_public_paths),
      cmocka_unit_test_setup_teardown(test_echo, setup_plain, teardown_server),
      cmocka_unit_test_setup_teardown(test_chunked_body, setup_plain, teardown_server),
      cmocka_unit_test_setup_teardown(test_body_limit_content_length, setup_plain, teardown_server),
      cmocka_unit_test_setup_teardown(test_body_limit_chunked, setup_plain, teardown_server),
      cmocka_unit_test_setup_teardown(test_host_check, setup_plain, teardown_server),
      cmocka_unit_test_setup_teardown(test_too_many_headers, setup_plain, teardown_server),
      cmocka_unit_test_setup_teardown(test_keep_alive, setup_plain, teardown_server),
      cmocka_unit_test_setup_teardown(test_no_reply_and_stream, setup_plain, teardown_server),
      cmocka_unit_test_setup_teardown(test_api_keys, setup_keys, teardown_server),
      cmocka_unit_test(test_error_body),
      cmocka_unit_test(test_start_errors_and_stop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
