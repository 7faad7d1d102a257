/* sse.h — server-sent events encoding for streamed responses ("data: <json>\n\n", "data: [DONE]",
 * named events "event: NAME\ndata: <json>\n\n"). */
#ifndef SY_SSE_H
#define SY_SSE_H

#include <jansson.h>

#include "buf.h"

/* Append one event carrying json (compact, one line: JSON text never holds a raw newline).
 * Returns 0, or -1 when json cannot be encoded or the buffer refuses to grow. */
int sse_append_json(sy_buf *out, const json_t *json);
/* Append one named event, "event: NAME\ndata: <json>\n\n" (Anthropic's streams name every
 * event; name: a static string without newlines). 0, or -1 as sse_append_json (nothing appended).
 */
int sse_append_event(sy_buf *out, const char *name, const json_t *json);
/* Append the OpenAI end-of-stream marker "data: [DONE]\n\n". */
int sse_append_done(sy_buf *out);

#endif
