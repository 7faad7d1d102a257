/* anthropic.h — Anthropic's Messages API as a translation onto the chat path, both ways, pure (no
 * I/O, no global state) so every rule is unit-tested (tests/unit/test_anthropic.c):
 *
 *   request:  an Anthropic body (POST /v1/messages, /v1/messages/count_tokens) → an OpenAI chat
 *             completions body, which api_parse_generate then checks into the worker's generate
 *             message exactly as for /v1/chat/completions (templates, tools, reasoning, grammars,
 *             images, limits): anth_to_chat;
 *   answer:   the worker's generate events (delta, done, error) → Anthropic's server-sent events
 *             (message_start, content_block_start/delta/stop, message_delta, message_stop, ping,
 *             error) or, collected, one message object: anth_out_*.
 *
 * Every field of Anthropic's request is either translated, accepted with a documented meaning
 * (metadata, service_tier, cache_control, a thinking block's signature), or refused with a 400
 * whose message names it (Anthropic's dotted path: "messages.2.content.0.source.type"); an unknown
 * field is refused as Anthropic's own API refuses it. docs/API.md lists every field and every
 * difference from Anthropic's API. Used by api/messages.c only. */
#ifndef SY_ANTHROPIC_H
#define SY_ANTHROPIC_H

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "http/api_error.h"

#define ANTH_MAX_STOP 4       /* stop_sequences (the worker's limit, as chat's "stop") */
#define ANTH_MAX_STOP_LEN 256 /* bytes per stop sequence */
#define ANTH_MAX_TOOLS 128    /* tools per request (chat's limit) */
#define ANTH_MIN_BUDGET 1024  /* thinking.budget_tokens, as Anthropic requires */

/* What anth_to_chat translates: a Messages request, or a count_tokens one (no max_tokens, no
 * sampling, no stream: the fields Anthropic's count_tokens takes). */
typedef enum anth_kind { ANTH_MESSAGES = 0, ANTH_COUNT_TOKENS } anth_kind;

/* The OpenAI chat completions body for req (an object, borrowed), a new reference: "model" as
 * given (already resolved by api.c), "messages" (system first, tool_result blocks as tool
 * messages, images as data: URLs, thinking blocks as reasoning_content, tool_use blocks as
 * tool_calls), "max_tokens", "temperature" (Anthropic's default 1 when absent), "top_p", "top_k",
 * "stop", "stream", "tools" (function tools with input_schema as parameters), "tool_choice",
 * "parallel_tool_calls", "chat_template_kwargs" {"enable_thinking"} (thinking is off unless asked
 * for, as with Anthropic), "reasoning_effort" and "response_format" from output_config. NULL and
 * err (400 invalid_request_error, the message naming the field) when req breaks a rule. */
json_t *anth_to_chat(const json_t *req, anth_kind kind, api_error *err);

/* Anthropic's stop_reason for a worker's done frame (borrowed): "max_tokens" (finish_reason
 * length), "tool_use" (tool_calls), "stop_sequence" (stop with the frame's "stop" string),
 * "end_turn" (anything else). */
const char *anth_stop_reason(const json_t *done);

/* Anthropic's tool_use id for the worker's call id: "call_X" → "toolu_X", any other id → "toolu_"
 * + id; into out (cut to len). */
void anth_tool_id(const char *call_id, char *out, size_t len);

/* ---- the answer ---- */

typedef struct anth_out anth_out;

/* A translator for one answer: id ("msg_…") and model (the served model's name) are copied;
 * stream: server-sent events, else one message collected. NULL when out of memory. */
anth_out *anth_out_new(const char *id, const char *model, bool stream);
void anth_out_free(anth_out *o);

/* One worker event of a generate: op ("delta", "done", "error"; anything else is ignored) with its
 * header (borrowed). Streamed, the client's bytes are appended to out (the first event also
 * writes message_start and a ping; done closes the open block and writes message_delta with the
 * stop reason and the usage, then message_stop; an error writes Anthropic's error event); whole,
 * the message is collected and out is left alone. Returns true when the event ended the answer
 * (done or error). */
bool anth_out_event(anth_out *o, const char *op, const json_t *hdr, sy_buf *out);

/* The whole message after the answer ended (new reference): {id, type: "message", role, model,
 * content: [thinking {thinking, signature}, text, tool_use {id, name, input}…], stop_reason,
 * stop_sequence, usage {input_tokens, output_tokens, cache_creation_input_tokens,
 * cache_read_input_tokens}}; NULL with *err when it ended in the worker's error (mapped by
 * api_error_from_worker) or never ended. */
json_t *anth_out_message(anth_out *o, api_error *err);

/* Anthropic's usage for a done frame (new reference): input_tokens = the prompt tokens computed
 * (prompt_tokens − cached_tokens), cache_read_input_tokens = cached_tokens (reused from the
 * prompt cache), cache_creation_input_tokens = 0, output_tokens = completion_tokens. */
json_t *anth_usage(const json_t *done);

#endif
