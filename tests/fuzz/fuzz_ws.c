/* fuzz_ws.c — libFuzzer target for src/daemon/ws/ (built by `make fuzz`): what a WebSocket peer
 * sends. The first byte picks the part:
 *   0: an upstream's answer to our upgrade (ws_response_parse), in a copy of exactly its size;
 *   1: a client's upgrade headers (ws_handshake_check): method, Upgrade, Connection, version and
 *      key, one per line;
 *   else: frames from a client, read by a server-side connection (ws_conn over a socketpair whose
 *      other end is closed, the bytes given as already read) whose handler echoes every message, so
 *      reassembly, unmasking, control frames, the size limit and the close path all run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ws/ws.h"
#include "ws/ws_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void echo(void *ud, ws_conn *c, bool text, const uint8_t *d, size_t len) {
  (void)ud;
  volatile unsigned sum = 0;
  for (size_t i = 0; i < len; i++) sum += d[i];
  (void)sum;
  ws_send(c, text, d, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  if (mode == 0) {
    char *head = malloc(size ? size : 1);
    if (!head) return 0;
    memcpy(head, data, size);
    int status;
    bool ok;
    char proto[WS_MAX_PROTOCOL + 1];
    (void)ws_response_parse(head, size, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &status, &ok, proto,
                            sizeof proto);
    free(head);
  } else if (mode == 1) {
    char *s = malloc(size + 1), *f[5] = {NULL, NULL, NULL, NULL, NULL};
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *p = s;
    for (int i = 0; i < 5 && p; i++) {
      f[i] = p;
      p = strchr(p, '\n');
      if (p) *p++ = '\0';
    }
    char accept[WS_ACCEPT_LEN + 1];
    api_error e;
    (void)ws_handshake_check(f[0], f[1], f[2], f[3], f[4], accept, &e);
    free(s);
  } else {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
    close(sv[1]); /* the peer sent exactly these bytes, then went away */
    ws_limits l = {.max_message_bytes = 4096, .idle_timeout_s = 1};
    ws_conn *c = ws_conn_new(sv[0], mode & 1, data, size, &l);
    if (c) {
      ws_handler h = {.on_message = echo, .extra_fd = -1};
      (void)ws_run(c, &h, NULL, -1);
      ws_conn_free(c);
    }
    close(sv[0]);
  }
  return 0;
}
