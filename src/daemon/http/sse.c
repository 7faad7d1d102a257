/* sse.c — see sse.h. */
#include "http/sse.h"

#include <stdlib.h>
#include <string.h>

/* "event: NAME\n" (when name) and "data: <json>\n\n", all or nothing. */
static int append(sy_buf *out, const char *name, const json_t *json) {
  char *s = json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(9));
  if (!s) return -1;
  size_t len = out->len;
  int rc =
      (name && (sy_buf_puts(out, "event: ") || sy_buf_puts(out, name) || sy_buf_puts(out, "\n"))) ||
              sy_buf_puts(out, "data: ") || sy_buf_puts(out, s) || sy_buf_puts(out, "\n\n")
          ? -1
          : 0;
  free(s);
  if (rc != 0 && out->data) { /* never leave half an event behind */
    out->len = len;
    out->data[len] = '\0';
  }
  return rc;
}

int sse_append_json(sy_buf *out, const json_t *json) { return append(out, NULL, json); }

int sse_append_event(sy_buf *out, const char *name, const json_t *json) {
  return append(out, name, json);
}

int sse_append_done(sy_buf *out) { return sy_buf_puts(out, "data: [DONE]\n\n"); }
