/* test_ipc.c — unit tests for src/common/ipc.h, the daemon <-> worker framing.
 *
 * Covers:
 *  - round trips over a real AF_UNIX socketpair: header + payload, zero payload, a payload of
 *    several MiB (written from a thread so the socket buffer cannot deadlock the test), several
 *    frames back to back, and the same over a pipe (the writev fallback for non-sockets);
 *  - ipc_encode/ipc_decode round trip, two frames in one buffer, trailing bytes left unused;
 *  - every truncation point of a valid frame gives IPC_EOF from ipc_decode, and IPC_ERR from
 *    ipc_recv when the socket ends there (IPC_EOF only for the clean end before any byte);
 *  - invalid framing gives IPC_ERR from both ipc_decode and ipc_recv: bad magic, header length 0,
 *    header over IPC_MAX_HEADER, payload over IPC_MAX_PAYLOAD;
 *  - a whole frame whose header is JSON but not an object, invalid JSON, trailing garbage after
 *    the JSON or duplicate keys gives IPC_BADMSG, consumed, with the stream still in step;
 *  - ipc_send refusals (non-object header, payload over the limit, peer gone: EPIPE, no SIGPIPE);
 *  - ipc_op on present/absent/non-string ops;
 *  - 4 threads sending on one channel at once: every frame the receiver reads parses, belongs to
 *    one sender, arrives in that sender's order, carries its own payload, and the counts match;
 *  - a fuzz loop (fixed seed, 20k iterations) of random bytes and mutated valid frames through
 *    ipc_decode: no crash, every result well-formed (run under ASan/UBSan for memory errors).
 */
#include "ipc.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

/* ---- helpers ------------------------------------------------------------------------------- */

static void make_pair(int sv[2]) { assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); }

static void write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    assert_true(w > 0);
    c += w;
    n -= (size_t)w;
  }
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

/* A raw frame with arbitrary prefix fields: magic, declared lengths, then the given bytes. */
static unsigned char *raw_frame(const char *magic, uint32_t hl, uint32_t pl, const void *body,
                                size_t body_len, size_t *out_len) {
  unsigned char *b = malloc(12 + body_len);
  assert_non_null(b);
  memcpy(b, magic, 4);
  put_u32(b + 4, hl);
  put_u32(b + 8, pl);
  if (body_len) memcpy(b + 12, body, body_len);
  *out_len = 12 + body_len;
  return b;
}

/* A raw frame whose lengths match a JSON text header and a payload. */
static unsigned char *text_frame(const char *hdr, const void *payload, size_t pl, size_t *out_len) {
  size_t hl = strlen(hdr);
  unsigned char *body = malloc(hl + pl + 1);
  assert_non_null(body);
  memcpy(body, hdr, hl);
  if (pl) memcpy(body + hl, payload, pl);
  unsigned char *f = raw_frame("SYW1", (uint32_t)hl, (uint32_t)pl, body, hl + pl, out_len);
  free(body);
  return f;
}

/* Feed bytes into a fresh socketpair, close the writing end, and ipc_recv once. */
static int recv_from_bytes(const void *bytes, size_t n, ipc_msg *m) {
  int sv[2];
  make_pair(sv);
  if (n) write_all(sv[0], bytes, n); /* small enough for the socket buffer */
  close(sv[0]);
  int rc = ipc_recv(sv[1], m);
  close(sv[1]);
  return rc;
}

/* A whole frame whose header is not a JSON object: consumed, reported, the stream in step. */
static void expect_badmsg(const unsigned char *f, size_t n) {
  ipc_msg m;
  size_t used = 12345;
  assert_int_equal(ipc_decode(f, n, &m, &used), IPC_BADMSG);
  assert_null(m.hdr);
  assert_null(m.payload);
  assert_int_equal(used, n);
  assert_int_equal(recv_from_bytes(f, n, &m), IPC_BADMSG);
  assert_null(m.hdr);
  assert_null(m.payload);
}

static void expect_invalid(const unsigned char *f, size_t n) {
  ipc_msg m;
  size_t used = 12345;
  assert_int_equal(ipc_decode(f, n, &m, &used), IPC_ERR);
  assert_null(m.hdr);
  assert_null(m.payload);
  assert_int_equal(used, 12345);
  assert_int_equal(recv_from_bytes(f, n, &m), IPC_ERR);
  assert_null(m.hdr);
  assert_null(m.payload);
}

/* ---- round trips over a socketpair --------------------------------------------------------- */

static void test_socket_roundtrip(void **state) {
  (void)state;
  int sv[2];
  make_pair(sv);
  ipc_chan c;
  ipc_chan_init(&c, sv[0]);
  json_t *h = json_pack("{s:s, s:i, s:s, s:f}", "op", "generate", "id", 7, "prompt", "héllo\n\"x\"",
                        "t", 0.5);
  const char payload[] = "\x00\x01\x02binary\xff";
  assert_int_equal(ipc_send(&c, h, payload, sizeof payload), IPC_OK);
  assert_int_equal(ipc_send_steal(&c, json_pack("{s:s}", "op", "shutdown"), NULL, 0), IPC_OK);

  ipc_msg m;
  assert_int_equal(ipc_recv(sv[1], &m), IPC_OK);
  assert_true(json_equal(m.hdr, h));
  assert_string_equal(ipc_op(&m), "generate");
  assert_int_equal(m.payload_len, sizeof payload);
  assert_memory_equal(m.payload, payload, sizeof payload);
  ipc_msg_clear(&m);
  assert_null(m.hdr);
  assert_null(m.payload);
  assert_int_equal(m.payload_len, 0);

  assert_int_equal(ipc_recv(sv[1], &m), IPC_OK); /* zero payload */
  assert_string_equal(ipc_op(&m), "shutdown");
  assert_null(m.payload);
  assert_int_equal(m.payload_len, 0);
  ipc_msg_clear(&m);

  close(sv[0]);
  assert_int_equal(ipc_recv(sv[1], &m), IPC_EOF); /* clean end of stream */
  assert_null(m.hdr);
  json_decref(h);
  ipc_chan_deinit(&c);
  close(sv[1]);
}

typedef struct big_send {
  ipc_chan *c;
  const unsigned char *payload;
  size_t len;
  int frames;
  int rc;
} big_send;

static void *big_sender(void *arg) {
  big_send *b = arg;
  b->rc = IPC_OK;
  for (int i = 0; i < b->frames && b->rc == IPC_OK; i++)
    b->rc = ipc_send_steal(b->c, json_pack("{s:s, s:i}", "op", "embeddings", "i", i), b->payload,
                           b->len - (size_t)i);
  return NULL;
}

/* A payload of several MiB needs a concurrent reader; fd is a socket or a pipe. */
static void big_roundtrip(int wfd, int rfd) {
  const size_t len = (6u << 20) + 123;
  unsigned char *payload = malloc(len);
  assert_non_null(payload);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    payload[i] = (unsigned char)x;
  }
  ipc_chan c;
  ipc_chan_init(&c, wfd);
  big_send b = {&c, payload, len, 3, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, big_sender, &b), 0);
  for (int i = 0; i < 3; i++) {
    ipc_msg m;
    assert_int_equal(ipc_recv(rfd, &m), IPC_OK);
    assert_string_equal(ipc_op(&m), "embeddings");
    assert_int_equal(json_integer_value(json_object_get(m.hdr, "i")), i);
    assert_int_equal(m.payload_len, len - (size_t)i);
    assert_memory_equal(m.payload, payload, m.payload_len);
    ipc_msg_clear(&m);
  }
  pthread_join(t, NULL);
  assert_int_equal(b.rc, IPC_OK);
  ipc_chan_deinit(&c);
  free(payload);
}

static void test_socket_large_payload(void **state) {
  (void)state;
  int sv[2];
  make_pair(sv);
  big_roundtrip(sv[0], sv[1]);
  close(sv[0]);
  ipc_msg m;
  assert_int_equal(ipc_recv(sv[1], &m), IPC_EOF);
  close(sv[1]);
}

static void test_pipe_large_payload(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0); /* not a socket: ipc_send must fall back to writev */
  big_roundtrip(p[1], p[0]);
  close(p[1]);
  ipc_msg m;
  assert_int_equal(ipc_recv(p[0], &m), IPC_EOF);
  close(p[0]);
}

static void test_send_refusals(void **state) {
  (void)state;
  int sv[2];
  make_pair(sv);
  ipc_chan c;
  ipc_chan_init(&c, sv[0]);
  json_t *arr = json_array();
  errno = 0;
  assert_int_equal(ipc_send(&c, arr, NULL, 0), IPC_ERR);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(ipc_send(&c, NULL, NULL, 0), IPC_ERR);
  json_decref(arr);
  json_t *h = json_pack("{s:s}", "op", "x");
  /* over the payload limit: refused before the (bogus) pointer is touched */
  errno = 0;
  assert_int_equal(ipc_send(&c, h, (const void *)1, (size_t)IPC_MAX_PAYLOAD + 1), IPC_ERR);
  assert_int_equal(errno, EINVAL);
  size_t n = 99;
  assert_null(ipc_encode(h, (const void *)1, (size_t)IPC_MAX_PAYLOAD + 1, &n));
  assert_null(ipc_encode(NULL, NULL, 0, &n));
  /* nothing was written by the refusals */
  close(sv[0]);
  ipc_msg m;
  assert_int_equal(ipc_recv(sv[1], &m), IPC_EOF);
  ipc_chan_deinit(&c);

  /* peer gone: EPIPE as an error value, no SIGPIPE killing the process */
  int sv2[2];
  make_pair(sv2);
  close(sv2[1]);
  ipc_chan_init(&c, sv2[0]);
  errno = 0;
  assert_int_equal(ipc_send(&c, h, "abc", 3), IPC_ERR);
  assert_int_equal(errno, EPIPE);
  ipc_chan_deinit(&c);
  close(sv2[0]);
  json_decref(h);
  close(sv[1]);
}

static void test_op(void **state) {
  (void)state;
  ipc_msg m = {0};
  assert_string_equal(ipc_op(&m), "");
  m.hdr = json_pack("{s:i}", "op", 5);
  assert_string_equal(ipc_op(&m), "");
  json_decref(m.hdr);
  m.hdr = json_pack("{s:s}", "id", "x");
  assert_string_equal(ipc_op(&m), "");
  json_decref(m.hdr);
  m.hdr = json_pack("{s:s}", "op", "ready");
  assert_string_equal(ipc_op(&m), "ready");
  ipc_msg_clear(&m);
  ipc_msg_clear(&m); /* clearing a cleared message is harmless */
}

/* ---- encode / decode ----------------------------------------------------------------------- */

static void test_encode_decode(void **state) {
  (void)state;
  json_t *h = json_pack("{s:s, s:i, s:[s,s]}", "op", "generate", "id", 1, "stop", "a", "\n");
  size_t n = 0;
  unsigned char *f = ipc_encode(h, "PAY", 3, &n);
  assert_non_null(f);
  assert_memory_equal(f, "SYW1", 4);
  uint32_t hl = (uint32_t)f[4] | (uint32_t)f[5] << 8 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 24;
  uint32_t pl =
      (uint32_t)f[8] | (uint32_t)f[9] << 8 | (uint32_t)f[10] << 16 | (uint32_t)f[11] << 24;
  assert_int_equal(pl, 3);
  assert_int_equal(n, 12 + hl + 3);
  assert_memory_equal(f + n - 3, "PAY", 3);

  ipc_msg m;
  size_t used = 0;
  assert_int_equal(ipc_decode(f, n, &m, &used), IPC_OK);
  assert_int_equal(used, n);
  assert_true(json_equal(m.hdr, h));
  assert_int_equal(m.payload_len, 3);
  assert_memory_equal(m.payload, "PAY", 3);
  ipc_msg_clear(&m);

  /* two frames and trailing bytes in one buffer: decode consumes exactly one frame each time */
  size_t n2 = 0;
  json_t *h2 = json_pack("{s:s, s:i}", "op", "cancel", "id", 9);
  unsigned char *f2 = ipc_encode(h2, NULL, 0, &n2);
  assert_non_null(f2);
  unsigned char *both = malloc(n + n2 + 5);
  memcpy(both, f, n);
  memcpy(both + n, f2, n2);
  memcpy(both + n + n2, "SYW1x", 5);
  size_t off = 0;
  assert_int_equal(ipc_decode(both + off, n + n2 + 5 - off, &m, &used), IPC_OK);
  assert_int_equal(used, n);
  assert_string_equal(ipc_op(&m), "generate");
  ipc_msg_clear(&m);
  off += used;
  assert_int_equal(ipc_decode(both + off, n + n2 + 5 - off, &m, &used), IPC_OK);
  assert_int_equal(used, n2);
  assert_true(json_equal(m.hdr, h2));
  assert_null(m.payload);
  ipc_msg_clear(&m);
  off += used;
  assert_int_equal(ipc_decode(both + off, n + n2 + 5 - off, &m, &used),
                   IPC_EOF); /* "SYW1x": a partial frame */
  free(both);
  free(f2);
  json_decref(h2);
  free(f);
  json_decref(h);
}

static void test_decode_every_truncation(void **state) {
  (void)state;
  json_t *h = json_pack("{s:s, s:i, s:s}", "op", "delta", "id", 3, "text", "piece");
  unsigned char payload[40];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (unsigned char)(i * 7);
  size_t n = 0;
  unsigned char *f = ipc_encode(h, payload, sizeof payload, &n);
  assert_non_null(f);
  for (size_t cut = 0; cut < n; cut++) {
    /* copy into an exact-size allocation so ASan catches any read past the cut */
    unsigned char *part = malloc(cut ? cut : 1);
    memcpy(part, f, cut);
    ipc_msg m;
    size_t used = 777;
    int rc = ipc_decode(part, cut, &m, &used);
    if (rc != IPC_EOF) fail_msg("truncated at %zu of %zu: got %d, want IPC_EOF", cut, n, rc);
    assert_null(m.hdr);
    assert_int_equal(used, 777);
    free(part);
  }
  ipc_msg m;
  size_t used = 0;
  assert_int_equal(ipc_decode(f, n, &m, &used), IPC_OK);
  ipc_msg_clear(&m);
  free(f);
  json_decref(h);
}

static void test_socket_eof_mid_frame(void **state) {
  (void)state;
  json_t *h = json_pack("{s:s, s:i}", "op", "delta", "id", 3);
  size_t n = 0;
  unsigned char *f = ipc_encode(h, "0123456789", 10, &n);
  assert_non_null(f);
  ipc_msg m;
  assert_int_equal(recv_from_bytes(f, 0, &m), IPC_EOF); /* nothing at all: clean EOF */
  for (size_t cut = 1; cut < n; cut++) {
    int rc = recv_from_bytes(f, cut, &m);
    if (rc != IPC_ERR)
      fail_msg("socket ended at byte %zu of %zu: got %d, want IPC_ERR", cut, n, rc);
    assert_null(m.hdr);
    assert_null(m.payload);
  }
  assert_int_equal(recv_from_bytes(f, n, &m), IPC_OK);
  assert_string_equal(ipc_op(&m), "delta");
  ipc_msg_clear(&m);

  /* a good frame, then a truncated one: the first arrives, the second is an error */
  int sv[2];
  make_pair(sv);
  write_all(sv[0], f, n);
  write_all(sv[0], f, n - 1);
  close(sv[0]);
  assert_int_equal(ipc_recv(sv[1], &m), IPC_OK);
  ipc_msg_clear(&m);
  assert_int_equal(ipc_recv(sv[1], &m), IPC_ERR);
  close(sv[1]);
  free(f);
  json_decref(h);
}

static void test_invalid_frames(void **state) {
  (void)state;
  size_t n;
  unsigned char *f;
  const char *js = "{\"op\":\"x\"}";
  size_t jl = strlen(js);

  f = raw_frame("SYW2", (uint32_t)jl, 0, js, jl, &n); /* bad magic */
  expect_invalid(f, n);
  free(f);
  f = raw_frame("syw1", (uint32_t)jl, 0, js, jl, &n);
  expect_invalid(f, n);
  free(f);
  /* bad magic is detected as soon as the magic is complete, even before the lengths */
  {
    ipc_msg m;
    size_t used;
    assert_int_equal(ipc_decode((const unsigned char *)"XXXX", 4, &m, &used), IPC_ERR);
    assert_int_equal(ipc_decode((const unsigned char *)"SYW1\x01", 5, &m, &used), IPC_EOF);
  }
  f = raw_frame("SYW1", 0, 0, NULL, 0, &n); /* header length 0 */
  expect_invalid(f, n);
  free(f);
  f = raw_frame("SYW1", 0, 3, "abc", 3, &n);
  expect_invalid(f, n);
  free(f);
  /* header over the limit: refused from the 12-byte prefix alone, nothing allocated */
  f = raw_frame("SYW1", IPC_MAX_HEADER + 1, 0, js, jl, &n);
  expect_invalid(f, n);
  free(f);
  f = raw_frame("SYW1", UINT32_MAX, 0, NULL, 0, &n);
  expect_invalid(f, n);
  free(f);
  /* payload over the limit */
  f = raw_frame("SYW1", (uint32_t)jl, IPC_MAX_PAYLOAD + 1, js, jl, &n);
  expect_invalid(f, n);
  free(f);
  f = raw_frame("SYW1", (uint32_t)jl, UINT32_MAX, js, jl, &n);
  expect_invalid(f, n);
  free(f);

  /* headers that are JSON but not an object, or not JSON at all */
  static const char *bad_hdrs[] = {
      "[1,2]",
      "[]",
      "\"op\"",
      "42",
      "null",
      "true", /* JSON, not an object */
      "{",
      "{\"op\":}",
      "op",
      "{'op':'x'}",
      "\xff\xfe",
      "{\"op\":\"\xc3\x28\"}", /* invalid JSON / UTF-8 */
      "{\"op\":\"x\"} junk",
      "{\"op\":\"x\"}{}",            /* trailing garbage */
      "{\"op\":\"x\",\"op\":\"y\"}", /* duplicate keys */
      " ",
  };
  for (size_t i = 0; i < sizeof bad_hdrs / sizeof *bad_hdrs; i++) {
    f = text_frame(bad_hdrs[i], "pp", 2, &n);
    expect_badmsg(f, n);
    free(f);
  }
  /* a raw NUL byte inside the declared header (an escaped \u0000 in a string is fine) */
  f = raw_frame("SYW1", 12, 0, "{\"op\":\"a\0\"}", 12, &n);
  expect_badmsg(f, n);
  free(f);
  {
    ipc_msg m;
    size_t used;
    f = text_frame("{\"op\":\"a\\u0000b\"}", NULL, 0, &n);
    assert_int_equal(ipc_decode(f, n, &m, &used), IPC_OK);
    assert_int_equal(json_string_length(json_object_get(m.hdr, "op")), 3);
    ipc_msg_clear(&m);
    free(f);
  }

  /* the limits themselves are fine for ipc_decode when the bytes are not there yet */
  {
    unsigned char pre[12];
    memcpy(pre, "SYW1", 4);
    put_u32(pre + 4, IPC_MAX_HEADER);
    put_u32(pre + 8, IPC_MAX_PAYLOAD);
    ipc_msg m;
    size_t used;
    assert_int_equal(ipc_decode(pre, sizeof pre, &m, &used), IPC_EOF);
  }
}

static void test_bad_header_keeps_stream_in_step(void **state) {
  (void)state;
  /* a frame with a bad header, then a good one: the first is reported and skipped, the second
   * arrives whole */
  size_t n1, n2;
  unsigned char *bad = text_frame("{not json", "xyz", 3, &n1);
  unsigned char *good = text_frame("{\"op\":\"ok\"}", "pay", 3, &n2);
  int sv[2];
  make_pair(sv);
  write_all(sv[0], bad, n1);
  write_all(sv[0], good, n2);
  close(sv[0]);
  ipc_msg m;
  assert_int_equal(ipc_recv(sv[1], &m), IPC_BADMSG);
  assert_int_equal(ipc_recv(sv[1], &m), IPC_OK);
  assert_string_equal(ipc_op(&m), "ok");
  assert_int_equal(m.payload_len, 3);
  assert_memory_equal(m.payload, "pay", 3);
  ipc_msg_clear(&m);
  assert_int_equal(ipc_recv(sv[1], &m), IPC_EOF);
  close(sv[1]);
  free(bad);
  free(good);
}

static void test_header_at_limit_over_socket(void **state) {
  (void)state;
  /* a declared header exactly at the limit is accepted as a length; the stream then ends early */
  unsigned char pre[12];
  memcpy(pre, "SYW1", 4);
  put_u32(pre + 4, IPC_MAX_HEADER);
  put_u32(pre + 8, 0);
  ipc_msg m;
  assert_int_equal(recv_from_bytes(pre, sizeof pre, &m), IPC_ERR);
  assert_null(m.hdr);
}

/* ---- concurrent senders -------------------------------------------------------------------- */

#define N_SENDERS 4
#define N_FRAMES 2000

typedef struct sender_arg {
  ipc_chan *c;
  int tid;
  int failures;
} sender_arg;

static size_t payload_size(int tid, int seq) { return (size_t)((seq * 131 + tid * 977) % 9000); }

static void *sender_main(void *arg) {
  sender_arg *a = arg;
  unsigned char *buf = malloc(9000);
  memset(buf, 'A' + a->tid, 9000);
  for (int i = 0; i < N_FRAMES; i++) {
    json_t *h = json_pack("{s:s, s:i, s:i, s:s}", "op", "delta", "tid", a->tid, "seq", i, "text",
                          "some text to make the header longer than a few bytes");
    if (ipc_send_steal(a->c, h, buf, payload_size(a->tid, i)) != IPC_OK) a->failures++;
  }
  free(buf);
  return NULL;
}

typedef struct joiner_arg {
  pthread_t *threads;
  int wfd;
} joiner_arg;

/* Joins the senders, then ends the stream: the receiver never waits on a frame that will not come,
 * even when a broken frame declared more bytes than were sent. */
static void *joiner_main(void *arg) {
  joiner_arg *j = arg;
  for (int i = 0; i < N_SENDERS; i++) pthread_join(j->threads[i], NULL);
  shutdown(j->wfd, SHUT_WR);
  return NULL;
}

static void test_concurrent_senders(void **state) {
  (void)state;
  int sv[2];
  make_pair(sv);
  /* a small send buffer makes short writes (and so interleaving, if the lock were missing) likely
   */
  int small = 4096;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ipc_chan c;
  ipc_chan_init(&c, sv[0]);
  pthread_t t[N_SENDERS], joiner;
  sender_arg args[N_SENDERS];
  for (int i = 0; i < N_SENDERS; i++) {
    args[i] = (sender_arg){&c, i, 0};
    assert_int_equal(pthread_create(&t[i], NULL, sender_main, &args[i]), 0);
  }
  joiner_arg ja = {t, sv[0]};
  assert_int_equal(pthread_create(&joiner, NULL, joiner_main, &ja), 0);
  int next[N_SENDERS] = {0};
  int total = 0, bad = 0, rc;
  ipc_msg m;
  while ((rc = ipc_recv(sv[1], &m)) == IPC_OK) {
    json_int_t tid = json_integer_value(json_object_get(m.hdr, "tid"));
    json_int_t seq = json_integer_value(json_object_get(m.hdr, "seq"));
    if (strcmp(ipc_op(&m), "delta") != 0 || tid < 0 || tid >= N_SENDERS || seq != next[tid] ||
        m.payload_len != payload_size((int)tid, (int)seq)) {
      bad++;
    } else {
      const unsigned char *p = m.payload;
      for (size_t i = 0; i < m.payload_len; i++)
        if (p[i] != 'A' + tid) {
          bad++;
          break;
        }
      next[tid]++;
    }
    ipc_msg_clear(&m);
    total++;
  }
  /* on a broken frame, stop reading so blocked senders fail (EPIPE) instead of hanging */
  if (rc != IPC_EOF) shutdown(sv[1], SHUT_RDWR);
  pthread_join(joiner, NULL);
  assert_int_equal(rc, IPC_EOF); /* every frame parsed, then the clean end */
  assert_int_equal(bad, 0);
  assert_int_equal(total, N_SENDERS * N_FRAMES);
  for (int i = 0; i < N_SENDERS; i++) {
    assert_int_equal(args[i].failures, 0);
    assert_int_equal(next[i], N_FRAMES);
  }
  ipc_chan_deinit(&c);
  close(sv[0]);
  close(sv[1]);
}

/* ---- fuzz ---------------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void) { /* xorshift64*: fixed seed, same run every time */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static void fuzz_one(const unsigned char *buf, size_t len) {
  /* exact-size copy so ASan sees any read beyond len */
  unsigned char *copy = malloc(len ? len : 1);
  if (len) memcpy(copy, buf, len);
  ipc_msg m;
  size_t used = 0;
  int rc = ipc_decode(copy, len, &m, &used);
  if (rc == IPC_OK) {
    assert_true(json_is_object(m.hdr));
    assert_true(used >= 12 && used <= len);
    assert_true((m.payload == NULL) == (m.payload_len == 0));
    ipc_msg_clear(&m);
  } else {
    assert_true(rc == IPC_EOF || rc == IPC_ERR || rc == IPC_BADMSG);
    assert_null(m.hdr);
    assert_null(m.payload);
  }
  free(copy);
}

static void test_fuzz_decode(void **state) {
  (void)state;
  rng_state = 0x5357594655a2ull;
  static const char *seeds[] = {
      "{\"op\":\"generate\",\"id\":1,\"prompt\":\"hi\",\"max_tokens\":4}",
      "{\"op\":\"delta\",\"id\":2,\"text\":\"\\u00e9\"}",
      "{\"op\":\"embeddings\",\"id\":3,\"n\":1,\"dim\":4}",
      "{\"op\":\"x\",\"a\":[1,2,{\"b\":null}],\"c\":1.5e300}",
  };
  unsigned char buf[600];
  int ok = 0;
  for (int it = 0; it < 20000; it++) {
    size_t len;
    if (it % 4 == 0) { /* pure random bytes, sometimes with a valid magic */
      len = rnd() % sizeof buf;
      for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)rnd();
      if (len >= 4 && rnd() % 2) memcpy(buf, "SYW1", 4);
    } else { /* a valid frame, then mutated */
      const char *s = seeds[rnd() % 4];
      size_t pl = rnd() % 64;
      unsigned char pay[64];
      for (size_t i = 0; i < pl; i++) pay[i] = (unsigned char)rnd();
      size_t fl;
      unsigned char *f = text_frame(s, pay, pl, &fl);
      assert_true(fl <= sizeof buf);
      memcpy(buf, f, fl);
      free(f);
      len = fl;
      int muts = 1 + (int)(rnd() % 4);
      for (int k = 0; k < muts; k++) {
        switch (rnd() % 6) {
          case 0:
            buf[rnd() % len] = (unsigned char)rnd();
            break; /* random byte */
          case 1:
            buf[rnd() % len] ^= (unsigned char)(1u << (rnd() % 8));
            break; /* bit flip */
          case 2:
            buf[4 + rnd() % 8] = (unsigned char)rnd();
            break; /* a length byte */
          case 3:
            len = rnd() % (len + 1);
            break; /* truncate */
          case 4:  /* extend with junk */
            while (len < sizeof buf && rnd() % 8) buf[len++] = (unsigned char)rnd();
            break;
          default: { /* lengths off by a little */
            uint32_t hl = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
                          (uint32_t)buf[7] << 24;
            put_u32(buf + 4, hl + (rnd() % 5) - 2);
            break;
          }
        }
        if (len < 12) break;
      }
    }
    fuzz_one(buf, len);
    ipc_msg m;
    size_t used;
    if (len && ipc_decode(buf, len, &m, &used) == IPC_OK) {
      ok++;
      ipc_msg_clear(&m);
    }
  }
  assert_true(ok > 0); /* the mutator did not only produce garbage */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_socket_roundtrip),
      cmocka_unit_test(test_socket_large_payload),
      cmocka_unit_test(test_pipe_large_payload),
      cmocka_unit_test(test_send_refusals),
      cmocka_unit_test(test_op),
      cmocka_unit_test(test_encode_decode),
      cmocka_unit_test(test_decode_every_truncation),
      cmocka_unit_test(test_socket_eof_mid_frame),
      cmocka_unit_test(test_invalid_frames),
      cmocka_unit_test(test_header_at_limit_over_socket),
      cmocka_unit_test(test_bad_header_keeps_stream_in_step),
      cmocka_unit_test(test_concurrent_senders),
      cmocka_unit_test(test_fuzz_decode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
