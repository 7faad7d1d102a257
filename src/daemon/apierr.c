/* apierr.c — see apierr.h. */
#include "apierr.h"

#include <stdio.h>
#include <string.h>

void api_error_set(api_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) {
  e->status = status;
  e->type = type;
  e->code = code;
  e->param = param;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

json_t *api_error_json(const api_error *e) {
  json_t *inner = json_pack("{s:s, s:s, s:o, s:o}", "message", e->message, "type",
                            e->type ? e->type : "server_error", "param", str_or_null(e->param),
                            "code", str_or_null(e->code));
  if (!inner) { /* the message was not valid UTF-8 */
    inner = json_pack("{s:s, s:s, s:n, s:n}", "message", "error (message not printable)", "type",
                      e->type ? e->type : "server_error", "param", "code");
  }
  return json_pack("{s:o}", "error", inner);
}
