/* responses_out.h — a worker's chat answer (its generate frames: delta, done; or an error) as the
 * OpenAI Responses API gives it: the response object with its output items (reasoning, message
 * with output_text, function_call with call_id), status and usage, and, when streamed, the typed
 * events with their sequence numbers:
 *
 *   response.created, response.in_progress,
 *   per item: response.output_item.added,
 *     message:   response.content_part.added, response.output_text.delta…,
 *                response.output_text.done, response.content_part.done
 *     reasoning: response.content_part.added, response.reasoning_text.delta…,
 *                response.reasoning_text.done, response.content_part.done
 *     call:      response.function_call_arguments.delta…, response.function_call_arguments.done
 *   response.output_item.done,
 *   then response.completed | response.incomplete (max_output_tokens) | response.failed.
 *
 * One state machine makes both shapes, so a streamed answer and a whole one are the same
 * response. Pure: no I/O, no clock (the caller passes created_at), no global state; only the ids
 * are random (api_random_id). Unit-tested (tests/unit/test_responses.c). Exports rsp_out_*.
 *
 * Usage (api/responses.c):
 *   rsp_out o;
 *   rsp_out_init(&o, "resp_…", model, time(NULL), echo, stream);
 *   rsp_out_start(&o);                               // stream: created, in_progress
 *   for each worker frame: rsp_out_delta(&o, hdr) / rsp_out_done(&o, hdr) / rsp_out_fail(&o, &e);
 *   events = rsp_out_take_events(&o);                // stream: send them; any time
 *   o.resp is the response object; rsp_out_free(&o). */
#ifndef SY_RESPONSES_OUT_H
#define SY_RESPONSES_OUT_H

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "http/api_error.h"

typedef enum rsp_item_kind {
  RSP_ITEM_NONE = 0,
  RSP_ITEM_REASONING, /* {type: reasoning, content: [reasoning_text]} */
  RSP_ITEM_MESSAGE,   /* {type: message, role: assistant, content: [output_text]} */
  RSP_ITEM_CALL       /* {type: function_call, call_id, name, arguments} */
} rsp_item_kind;

typedef struct rsp_out {
  json_t *resp;       /* the response object (owned); "output" grows as items close */
  json_t *events;     /* streamed: the events not yet taken (owned array); NULL otherwise */
  long long seq;      /* the next event's sequence_number */
  rsp_item_kind open; /* the item being written */
  json_t *item;       /* that item (owned), as it will stand in "output" */
  size_t index;       /* its output_index */
  sy_buf text;        /* its text (message, reasoning) or arguments (call) so far */
  long long call;     /* the worker's index of the open call */
  bool ended;         /* done or failed: later frames are ignored */
} rsp_out;

/* Start an answer: the response object {id, object: "response", created_at, status:
 * "in_progress", model, output: [], usage: null, ...echo} (echo: rsp_request.echo, borrowed,
 * copied). stream: collect events. 0, or -1 when out of memory. */
int rsp_out_init(rsp_out *o, const char *id, const char *model, long long created_at,
                 const json_t *echo, bool stream);
void rsp_out_free(rsp_out *o);

/* Streamed: response.created and response.in_progress. */
void rsp_out_start(rsp_out *o);
/* A worker "delta" frame (hdr, borrowed): reasoning_content, tool_calls (a call's first piece
 * has its id and name) and text, in that order, each opening its item when another is open. */
void rsp_out_delta(rsp_out *o, const json_t *hdr);
/* A worker "done" frame: the open item closed, status completed (or incomplete with
 * incomplete_details.reason max_output_tokens when finish_reason is "length"), usage
 * {input_tokens, input_tokens_details.cached_tokens, output_tokens, total_tokens}; the last
 * event response.completed / response.incomplete. */
void rsp_out_done(rsp_out *o, const json_t *hdr);
/* The answer failed (e: the worker's error as the API says it): the open item closed as
 * incomplete, status failed, error {code, message}; the last event response.failed. */
void rsp_out_fail(rsp_out *o, const api_error *e);
/* The events since the last call (new reference: an array, empty when there are none). */
json_t *rsp_out_take_events(rsp_out *o);

/* A response object's output as one chat assistant message (new reference): content (the
 * messages' text, null when there is none), reasoning_content, tool_calls {id: call_id, function:
 * {name, arguments}} — what a later previous_response_id continues from. */
json_t *rsp_out_message(const json_t *response);

#endif
