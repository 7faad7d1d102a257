/* responses_parse.h — an OpenAI Responses API request (POST /v1/responses) translated into the Chat
 * Completions body that /v1/chat/completions takes, so that it is served by the very same path:
 * api_parse_generate's checks, the model's template, tool-call and reasoning parsing, grammars,
 * images, routers, the scheduler, limits and metrics. Nothing here is a second engine: the
 * translation only reshapes (input items → messages, function tools → chat tools, text.format →
 * response_format, reasoning.effort → reasoning_effort, max_output_tokens → max_tokens) and
 * refuses, with a 400 naming the field, every Responses feature Switchyard does not have
 * (built-in tools, background, conversations, ...). It never ignores one silently.
 *
 * Pure: no I/O, no global state; unit-tested (tests/unit/test_responses.c) and fuzzed
 * (tests/fuzz/fuzz_responses.c). Exports rsp_parse_* and rsp_request_* (prefix "rsp_", shorter
 * than the file's name). The stored conversation of a previous_response_id is looked up by the
 * endpoint (api/responses.c) and handed in as chat messages. */
#ifndef SY_RESPONSES_PARSE_H
#define SY_RESPONSES_PARSE_H

#include <jansson.h>
#include <stdbool.h>

#include "http/api_error.h"

#define RSP_MAX_INPUT_ITEMS 4096 /* items in "input" */
#define RSP_MAX_PARTS 1024       /* content parts of one message (or of a function_call_output) */
#define RSP_MAX_METADATA 16 /* metadata keys, OpenAI's bound (keys ≤ 64, values ≤ 512 bytes) */

typedef struct rsp_request {
  json_t *chat;    /* the Chat Completions body (owned): model, messages, stream, and the rest */
  json_t *history; /* the conversation as chat messages without the instructions (owned): the
                      previous response's history, then this input's messages; what a stored
                      response keeps (with its answer appended) for a later previous_response_id */
  json_t *echo;    /* the request's settings as the response object repeats them (owned):
                      instructions, max_output_tokens, metadata, parallel_tool_calls,
                      previous_response_id, reasoning, store, temperature, text, tool_choice,
                      tools, top_p, truncation, user, ... */
  bool stream;     /* "stream": server-sent events */
  bool store;      /* "store" (default true): keep the response for GET and previous_response_id */
} rsp_request;

/* The request's "previous_response_id": 0 with *id NULL (absent or null) or the string (borrowed
 * from req); -1 + err (400 invalid_type / invalid_value) when it is not a non-empty string. */
int rsp_parse_previous_id(const json_t *req, const char **id, api_error *err);

/* Translate req (any JSON value; borrowed) into *out. history: the previous response's stored
 * conversation (a JSON array of chat messages, borrowed; copied), or NULL. 0, or -1 + err (400
 * naming the Responses field; out is left empty). The model is copied as given: api_resolve
 * resolves it, api_parse_generate checks the result against it. */
int rsp_parse_request(const json_t *req, const json_t *history, rsp_request *out, api_error *err);
void rsp_request_clear(rsp_request *r);

/* An error the chat checks (api_parse_generate) gave for a translated body, made to name the
 * Responses field: param messages → input, max_tokens → max_output_tokens, response_format →
 * text.format, reasoning_effort → reasoning.effort. Status, type and code stay. */
void rsp_parse_fix_error(api_error *e);

#endif
