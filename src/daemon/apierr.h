/* apierr.h — an error as a value: the HTTP status and OpenAI error fields, carried up from
 * wherever it happened to the one place (http.c) that turns it into a response body. */
#ifndef SY_APIERR_H
#define SY_APIERR_H

#include <jansson.h>
#include <stdarg.h>

typedef struct api_error {
  int status;          /* HTTP status; 0 = no error */
  const char *type;    /* "invalid_request_error", "server_error", "authentication_error", ... */
  const char *code;    /* machine-readable code or NULL */
  const char *param;   /* offending request field or NULL */
  int retry_after_s;   /* > 0: send Retry-After */
  char message[1024];
} api_error;

/* Fill *e (every field; retry_after_s = 0). type, code and param are kept as pointers and must
 * outlive *e (string literals); the message is formatted into e->message, cut to its size, and
 * any byte that is not valid UTF-8 becomes '?'. Returns nothing. */
void api_error_set(api_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Shorthands. */
#define API_BAD(e, param, code, ...) api_error_set(e, 400, "invalid_request_error", code, param, __VA_ARGS__)
#define API_SERVER(e, code, ...) api_error_set(e, 500, "server_error", code, NULL, __VA_ARGS__)

/* {"error":{"message","type","param","code"}} (new reference). */
json_t *api_error_json(const api_error *e);

#endif
