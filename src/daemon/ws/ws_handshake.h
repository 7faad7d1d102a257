/* ws_handshake.h — the WebSocket opening handshake (RFC 6455 section 4), both sides, as pure
 * functions: a client's upgrade request checked and its Sec-WebSocket-Accept computed (the daemon
 * as a server), and an upstream's answer to our own upgrade request parsed and checked (the daemon
 * as a client of an external engine, engines/proxy_ws.c). No sockets, no allocation beyond what the
 * caller passes; fuzzed (tests/fuzz/fuzz_ws.c).
 * Must never accept a key that is not 16 bytes of base64, never read past the bytes given, never
 * write past the buffers given. */
#ifndef SY_WS_HANDSHAKE_H
#define SY_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "http/api_error.h"

#define WS_KEY_LEN 24    /* base64 of 16 bytes, with its padding */
#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 (20 bytes) */
#define WS_VERSION "13"
#define WS_MAX_RESPONSE_HEAD 16384 /* an upstream's 101 answer, headers included */
#define WS_MAX_PROTOCOL 256        /* a Sec-WebSocket-Protocol value relayed */

/* Whether a request with these headers (NULL: absent) asks for a WebSocket: Upgrade names
 * "websocket" and Connection has the token "upgrade" (both case-insensitive). */
bool ws_is_upgrade(const char *upgrade, const char *connection);

/* Check an upgrade request (method and the headers' values, NULL when absent). 0 and accept (the
 * Sec-WebSocket-Accept for key, NUL-ended, WS_ACCEPT_LEN + 1 bytes) filled; -1 and e set: 405
 * (not GET), 426 upgrade_required (no upgrade, or a version other than 13: the caller adds
 * Sec-WebSocket-Version: 13), 400 invalid_websocket_key. */
int ws_handshake_check(const char *method, const char *upgrade, const char *connection,
                       const char *version, const char *key, char accept[WS_ACCEPT_LEN + 1],
                       api_error *e);

/* The Sec-WebSocket-Accept for key (any string; the server side of the check). 0, or -1 when the
 * hash is not available. */
int ws_accept_for(const char *key, char accept[WS_ACCEPT_LEN + 1]);

/* A fresh client key (16 random bytes, base64) for our own upgrade request. 0 or -1. */
int ws_new_key(char key[WS_KEY_LEN + 1]);

/* The answer to our upgrade request, head[0..n) (the bytes read so far). Returns 0 while the head
 * is not complete (no blank line yet and n < WS_MAX_RESPONSE_HEAD); else the head's length (bytes
 * after it are WebSocket frames), with *status set (the answer's status code, 0 when the status
 * line is malformed) and *ok true when it is a 101 whose Upgrade, Connection and
 * Sec-WebSocket-Accept (== expect_accept) are right; protocol (protocol_len bytes) gets its
 * Sec-WebSocket-Protocol value, "" when none or too long. -1: the head is longer than
 * WS_MAX_RESPONSE_HEAD. */
long ws_response_parse(const char *head, size_t n, const char *expect_accept, int *status, bool *ok,
                       char *protocol, size_t protocol_len);

#endif
