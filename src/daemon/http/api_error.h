/* api_error.h — an error as a value: the HTTP status and OpenAI error fields, carried up from
 * wherever it happened to the one place (http.c) that turns it into a response body; and the one
 * table that turns a worker's error frame into such a value, so that a worker error has the same
 * status and code on every endpoint. Must never let an api_error point into memory it does not
 * own for good (a frame, a request body): its type, code and param are static strings, its
 * message a copy.
 *
 * Thread safety: every function here is pure or writes only its own *e; the table is read-only.
 * Any thread may call them at once. */
#ifndef SY_APIERR_H
#define SY_APIERR_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct api_error {
  int status;        /* HTTP status; 0 = no error */
  const char *type;  /* "invalid_request_error", "server_error", "authentication_error", ... */
  const char *code;  /* machine-readable code or NULL */
  const char *param; /* offending request field or NULL */
  int retry_after_s; /* > 0: send Retry-After */
  char message[1024];
} api_error;

/* Fill *e (every field; retry_after_s = 0). type, code and param are kept as pointers and must
 * outlive *e (string literals); the message is formatted into e->message, cut to its size, and
 * any byte that is not valid UTF-8 becomes '?'. Returns nothing. */
void api_error_set(api_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Shorthands. */
#define API_BAD(e, param, code, ...) \
  api_error_set(e, 400, "invalid_request_error", code, param, __VA_ARGS__)
#define API_SERVER(e, code, ...) api_error_set(e, 500, "server_error", code, NULL, __VA_ARGS__)

/* {"error":{"message","type","param","code"}} (new reference). */
json_t *api_error_json(const api_error *e);

/* Anthropic's shape of the same error, {"type":"error","error":{"type","message"}} (new
 * reference): the type follows from the status as Anthropic's API types it
 * (api_error_anthropic_type); code and param are left out (the message names the field). */
json_t *api_error_anthropic_json(const api_error *e);
/* Anthropic's error type for an HTTP status: 400 (and other 4xx) invalid_request_error, 401
 * authentication_error, 403 permission_error, 404 not_found_error, 408 and 504 timeout_error,
 * 413 request_too_large, 429 rate_limit_error, 503 and 529 overloaded_error, other 5xx
 * api_error. A static string. */
const char *api_error_anthropic_type(int status);

/* ---- a worker's error frame → api_error (docs/PROTOCOL.md: {"op":"error", "status", "code",
 * "message"}) ---- */

/* The code an error frame gets when its code is missing, not a string or not in the table. */
#define API_WORKER_UNKNOWN_CODE "worker_error"

/* Fill *e (not NULL) from hdr, an error frame's header (borrowed; NULL or any JSON value):
 * - a code in the table keeps the frame's status when it is an integer in 400..599, else the
 *   table's status for that code; code and param are the table's (param: the request field the
 *   code is about where that field has the same name on every endpoint, else NULL);
 * - any other code (missing, not a string, unknown) is 500 server_error with code
 *   API_WORKER_UNKNOWN_CODE, whatever status the frame claims: the daemon cannot vouch that an
 *   error it does not know is the client's fault;
 * - type is "invalid_request_error" below 500, "server_error" from 500; the frame's own "type"
 *   is not used;
 * - the message is the frame's "message" (cut to e->message, invalid UTF-8 replaced), or "the
 *   worker reported an error" when it is missing, empty or not a string.
 * Nothing in *e points into hdr, so hdr may be freed at once. Endpoints may change e->param
 * afterwards (their own field names), never status, type or code. Returns true when the code is
 * in the table, false otherwise. */
bool api_error_from_worker(const json_t *hdr, api_error *e);

/* The table's i-th code (for tests and docs), or NULL when i is past its end. */
const char *api_error_worker_code(size_t i);

#endif
