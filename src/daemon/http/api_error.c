/* api_error.c — errors as values (see api_error.h): api_error_set, the OpenAI error body, and the
 * one table from a worker's error code to the API's status, code and param. Must never hand out a
 * pointer into a caller's JSON, and never let a worker's status or code through unchecked. */
#include "http/api_error.h"

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
    if (ok && n == 2 && *p < 0xC2) ok = 0;                  /* overlong */
    if (ok && n == 3 && *p == 0xE0 && p[1] < 0xA0) ok = 0;  /* overlong */
    if (ok && n == 3 && *p == 0xED && p[1] >= 0xA0) ok = 0; /* surrogates */
    if (ok && n == 4 && (*p > 0xF4 || (*p == 0xF0 && p[1] < 0x90) || (*p == 0xF4 && p[1] >= 0x90)))
      ok = 0;
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

const char *api_error_anthropic_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 408:
    case 504:
      return "timeout_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

json_t *api_error_anthropic_json(const api_error *e) {
  const char *type = api_error_anthropic_type(e->status);
  json_t *j = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type, "message",
                        e->message);
  if (!j) /* the message was not valid UTF-8 */
    j = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type, "message",
                  "error (message not printable)");
  return j;
}

/* ---- worker error frames ---- */

/* Every code a worker (or worker.c on its behalf) sends, with the status used when the frame has
 * no usable one and the request field it is about on every endpoint that can see it. A worker that
 * starts sending a new code adds it here, or its errors become 500 worker_error. */
typedef struct worker_code {
  const char *code;
  int status;
  const char *param;
} worker_code;

static const worker_code worker_codes[] = {
    /* the request */
    {"invalid_request", 400, NULL},
    {"wrong_capability", 400, NULL},
    {"unknown_op", 400, NULL},
    {"duplicate_id", 400, NULL},
    {"context_length_exceeded", 400, NULL},
    {"empty_prompt", 400, NULL},
    {"no_chat_template", 400, NULL},
    {"chat_template_error", 400, NULL},
    {"invalid_json_schema", 400, NULL},
    {"invalid_tools", 400, NULL},
    {"invalid_grammar", 400, NULL},
    {"unsupported_parameter", 400, NULL},
    {"unsupported_content", 400, NULL},
    {"invalid_image", 400, NULL},
    {"invalid_audio", 400, NULL},
    {"invalid_language", 400, "language"},
    {"no_vad_model", 400, NULL},
    {"invalid_voice", 400, "voice"},
    /* the worker */
    {"overloaded", 503, NULL},
    {"out_of_memory", 500, NULL},
    {"load_failed", 500, NULL},
    {"worker_crashed", 500, NULL},
    {"rpc_unavailable", 502, NULL}, /* a model's RPC server (matrix key rpc) unreachable or lost */
    {"decode_failed", 500, NULL},
    {"tokenize_failed", 500, NULL},
    {"embedding_failed", 500, NULL},
    {"transcribe_failed", 500, NULL},
    {"synthesis_failed", 500, NULL},
};

const char *api_error_worker_code(size_t i) {
  return i < sizeof worker_codes / sizeof *worker_codes ? worker_codes[i].code : NULL;
}

/* The table's entry for a JSON string (its whole length: an embedded NUL matches nothing). */
static const worker_code *worker_code_find(const json_t *code) {
  const char *s = json_string_value(code);
  if (!s) return NULL;
  size_t n = json_string_length(code);
  for (size_t i = 0; i < sizeof worker_codes / sizeof *worker_codes; i++)
    if (strlen(worker_codes[i].code) == n && memcmp(worker_codes[i].code, s, n) == 0)
      return &worker_codes[i];
  return NULL;
}

bool api_error_from_worker(const json_t *hdr, api_error *e) {
  const worker_code *wc = worker_code_find(json_object_get(hdr, "code"));
  const char *msg = json_string_value(json_object_get(hdr, "message"));
  if (!msg || !*msg) msg = "the worker reported an error";
  if (!wc) {
    api_error_set(e, 500, "server_error", API_WORKER_UNKNOWN_CODE, NULL, "%s", msg);
    return false;
  }
  const json_t *st = json_object_get(hdr, "status");
  json_int_t s = json_is_integer(st) ? json_integer_value(st) : 0;
  int status = s >= 400 && s <= 599 ? (int)s : wc->status;
  api_error_set(e, status, status < 500 ? "invalid_request_error" : "server_error", wc->code,
                wc->param, "%s", msg);
  return true;
}
