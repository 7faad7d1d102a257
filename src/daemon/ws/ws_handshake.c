/* ws_handshake.c — see ws_handshake.h. SHA-1 from OpenSSL's libcrypto (EVP) (already linked for
 * pull's sha256), base64 from media/base64.c, random bytes from getrandom(2). Must never read past
 * the n bytes of a response head (it is not NUL-ended), never copy a header value longer than its
 * buffer. */
#include "ws/ws_handshake.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "media/base64.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 section 1.3 */
#define WS_KEY_BYTES 16

/* Whether the comma-separated list s has token tok (case-insensitive, spaces around items). */
static bool has_token(const char *s, const char *tok) {
  size_t tl = strlen(tok);
  while (s && *s) {
    while (*s == ' ' || *s == '\t' || *s == ',') s++;
    const char *end = s;
    while (*end && *end != ',') end++;
    const char *e = end;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0) return true;
    s = end;
  }
  return false;
}

bool ws_is_upgrade(const char *upgrade, const char *connection) {
  return upgrade && connection && has_token(upgrade, "websocket") &&
         has_token(connection, "upgrade");
}

int ws_accept_for(const char *key, char accept[WS_ACCEPT_LEN + 1]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  bool good = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) &&
              EVP_DigestUpdate(c, key, strlen(key)) &&
              EVP_DigestUpdate(c, WS_GUID, strlen(WS_GUID)) && EVP_DigestFinal_ex(c, md, &mdlen);
  EVP_MD_CTX_free(c);
  if (!good) return -1;
  char *b = sy_base64_encode(md, mdlen);
  if (!b || strlen(b) != WS_ACCEPT_LEN) {
    free(b);
    return -1;
  }
  memcpy(accept, b, WS_ACCEPT_LEN + 1);
  free(b);
  return 0;
}

int ws_new_key(char key[WS_KEY_LEN + 1]) {
  unsigned char raw[WS_KEY_BYTES];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) return -1;
  char *b = sy_base64_encode(raw, sizeof raw);
  if (!b || strlen(b) != WS_KEY_LEN) {
    free(b);
    return -1;
  }
  memcpy(key, b, WS_KEY_LEN + 1);
  free(b);
  return 0;
}

int ws_handshake_check(const char *method, const char *upgrade, const char *connection,
                       const char *version, const char *key, char accept[WS_ACCEPT_LEN + 1],
                       api_error *e) {
  if (!method || strcmp(method, "GET") != 0) {
    api_error_set(e, 405, "invalid_request_error", "method_not_allowed", NULL,
                  "a WebSocket upgrade must be a GET");
    return -1;
  }
  if (!ws_is_upgrade(upgrade, connection)) {
    api_error_set(e, 426, "invalid_request_error", "upgrade_required", NULL,
                  "this endpoint speaks WebSocket only (send Upgrade: websocket, Connection: "
                  "Upgrade, Sec-WebSocket-Version: 13)");
    return -1;
  }
  if (!version || strcmp(version, WS_VERSION) != 0) {
    api_error_set(e, 426, "invalid_request_error", "upgrade_required", NULL,
                  "unsupported Sec-WebSocket-Version (only 13 is spoken)");
    return -1;
  }
  unsigned char *raw = NULL;
  size_t n = 0;
  char msg[128];
  bool good = key && strlen(key) == WS_KEY_LEN &&
              sy_base64_decode(key, WS_KEY_LEN, WS_KEY_BYTES, &raw, &n, msg, sizeof msg) == 0 &&
              n == WS_KEY_BYTES;
  free(raw);
  if (!good) {
    api_error_set(e, 400, "invalid_request_error", "invalid_websocket_key", NULL,
                  "Sec-WebSocket-Key must be 16 bytes in base64");
    return -1;
  }
  if (ws_accept_for(key, accept) != 0) {
    api_error_set(e, 500, "server_error", "hash_failed", NULL, "could not compute the accept key");
    return -1;
  }
  return 0;
}

/* The end of the head (just past "\r\n\r\n") in head[0..n), or 0. */
static size_t head_end(const char *head, size_t n) {
  for (size_t i = 3; i < n; i++)
    if (head[i] == '\n' && head[i - 1] == '\r' && head[i - 2] == '\n' && head[i - 3] == '\r')
      return i + 1;
  return 0;
}

/* Copy line [s, e) value into out (trimmed), or "" when it does not fit. */
static void copy_value(const char *s, const char *e, char *out, size_t outlen) {
  while (s < e && (*s == ' ' || *s == '\t')) s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
  size_t len = (size_t)(e - s);
  if (!out || outlen == 0) return;
  if (len >= outlen) len = 0;
  memcpy(out, s, len);
  out[len] = '\0';
}

long ws_response_parse(const char *head, size_t n, const char *expect_accept, int *status, bool *ok,
                       char *protocol, size_t protocol_len) {
  size_t end = head_end(head, n);
  if (!end) return n >= WS_MAX_RESPONSE_HEAD ? -1 : 0;
  if (end > WS_MAX_RESPONSE_HEAD) return -1;
  *status = 0;
  *ok = false;
  if (protocol && protocol_len) protocol[0] = '\0';
  /* status line: HTTP/1.x SP 3DIGIT */
  if (end < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ' ||
      !isdigit((unsigned char)head[9]) || !isdigit((unsigned char)head[10]) ||
      !isdigit((unsigned char)head[11]))
    return (long)end;
  *status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
  bool up = false, conn = false, acc = false;
  char val[WS_MAX_PROTOCOL + 1];
  const char *p = memchr(head, '\n', end);
  while (p && (size_t)(p + 1 - head) < end) {
    const char *ls = p + 1;
    const char *le = memchr(ls, '\n', end - (size_t)(ls - head));
    if (!le) break;
    const char *lend = le > ls && le[-1] == '\r' ? le - 1 : le;
    const char *colon = memchr(ls, ':', (size_t)(lend - ls));
    if (colon) {
      size_t nl = (size_t)(colon - ls);
      copy_value(colon + 1, lend, val, sizeof val);
      if (nl == 7 && strncasecmp(ls, "Upgrade", 7) == 0)
        up = has_token(val, "websocket");
      else if (nl == 10 && strncasecmp(ls, "Connection", 10) == 0)
        conn = has_token(val, "upgrade");
      else if (nl == 20 && strncasecmp(ls, "Sec-WebSocket-Accept", 20) == 0)
        acc = expect_accept && strcmp(val, expect_accept) == 0;
      else if (nl == 22 && strncasecmp(ls, "Sec-WebSocket-Protocol", 22) == 0)
        copy_value(colon + 1, lend, protocol, protocol_len);
    }
    p = le;
  }
  *ok = *status == 101 && up && conn && acc;
  return (long)end;
}
