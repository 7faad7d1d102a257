/* apierr.c — see apierr.h. */
#include "apierr.h"

#include <stdio.h>
#include <string.h>

/* Replace every byte that does not belong to a valid UTF-8 sequence with '?', in place: messages
 * quote request text cut to a byte length (and vsnprintf may cut too), which can split a
 * character, and JSON needs valid UTF-8. */
static void utf8_sanitize(char *s) {
  unsigned char *p = (unsigned char *)s;
  while (*p) {
    int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
    int ok = n > 0;
    for (int i = 1; ok && i < n; i++) ok = (p[i] & 0xC0) == 0x80;
    if (ok && n == 2 && *p < 0xC2) ok = 0;                      /* overlong */
    if (ok && n == 3 && *p == 0xE0 && p[1] < 0xA0) ok = 0;      /* overlong */
    if (ok && n == 3 && *p == 0xED && p[1] >= 0xA0) ok = 0;     /* surrogates */
    if (ok && n == 4 && (*p > 0xF4 || (*p == 0xF0 && p[1] < 0x90) || (*p == 0xF4 && p[1] >= 0x90))) ok = 0;
    if (!ok) {
      *p++ = '?';
      continue;
    }
    p += n;
  }
}

void api_error_set(api_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) {
  e->status = status;
  e->type = type;
  e->code = code;
  e->param = param;
  e->retry_after_s = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  utf8_sanitize(e->message);
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
