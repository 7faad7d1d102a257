/* toolcall.h — turn a chat model's raw generated text into OpenAI message parts: `content`,
 * `reasoning_content` and `tool_calls`, incrementally, so a stream can send `delta.content`,
 * `delta.reasoning_content` and `delta.tool_calls` chunks as the text arrives (docs/TOOLCALLS.md).
 *
 * Use:
 *   sy_chat_format f;
 *   sy_chat_format_detect(template_source, &f);              // once per model
 *   bool open = sy_chat_prompt_thinking_open(&f, rendered);  // per request
 *   sy_tc_parser *p = sy_tc_new(&f, request_tools, open);
 *   for each piece of generated text: sy_tc_feed(p, piece, len, emit, ud);
 *   sy_tc_finish(p, emit, ud);
 *   json_t *msg = sy_tc_message(p);                          // non-streaming answer
 *   sy_tc_free(p);
 *
 * Events come in the order of the text. Content and reasoning text are emitted as soon as they
 * are known not to be part of a marker (`<tool_call>`, `</think>`, ...); a piece that could be
 * the start of a marker, an incomplete UTF-8 sequence and trailing whitespace are held back until
 * the next feed decides them. A tool call is emitted once it is complete and valid (CALL_BEGIN,
 * one CALL_ARGS with the whole compact arguments JSON, CALL_END); an invalid call (bad JSON,
 * unknown function) is emitted as content instead. The concatenation of the events is the final
 * message, whatever the split of the fed text. */
#ifndef SY_TOOLCALL_H
#define SY_TOOLCALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tool-call formats (the names are shared with the grammar code):
 *   "hermes"      <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>  (Qwen2.5/3, Hermes)
 *   "qwen3_coder" <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n</function>\n
 *                 </tool_call>  (Qwen3-Coder, Qwen3.5)
 *   "llama3"      {"name": ..., "parameters": {...}}, optionally after <|python_tag|>  (Llama 3.x)
 *   "mistral"     [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]  or
 *                 [TOOL_CALLS]NAME[ARGS]{...}  (Nemo / Small 3.x; Devstral, Magistral, Ministral)
 *   "none"        everything is content */
typedef struct sy_chat_format {
  const char *tools;       /* one of the names above (static string) */
  const char *think_open;  /* "<think>", "[THINK]", or NULL when the model has no reasoning block */
  const char *think_close; /* "</think>", "[/THINK]", or NULL */
} sy_chat_format;

/* Choose the format and reasoning markers from a chat template's source (NULL: "none", no
 * markers). Always fills *out; returns 0. */
int sy_chat_format_detect(const char *template_src, sy_chat_format *out);

/* Whether a rendered prompt leaves the model inside a reasoning block: the prompt ends with the
 * format's think_open followed only by whitespace (Qwen3/QwQ/R1 templates end with "<think>\n").
 * "<think>\n\n</think>\n\n" (enable_thinking=false) is not open. */
bool sy_chat_prompt_thinking_open(const sy_chat_format *f, const char *prompt);

typedef enum sy_tc_kind {
  SY_TC_CONTENT,    /* text, len: a piece of content */
  SY_TC_REASONING,  /* text, len: a piece of reasoning */
  SY_TC_CALL_BEGIN, /* index, id, name: a tool call starts (its arguments are "" so far) */
  SY_TC_CALL_ARGS,  /* index, text, len: a fragment of the call's arguments JSON string */
  SY_TC_CALL_END,   /* index: the call is complete */
} sy_tc_kind;

typedef struct sy_tc_event {
  sy_tc_kind kind;
  int index;        /* tool call index, 0-based, in order of appearance */
  const char *id;   /* CALL_BEGIN: "call_" + 24 alphanumerics */
  const char *name; /* CALL_BEGIN: the function's name */
  const char *text; /* CONTENT, REASONING, CALL_ARGS: valid UTF-8, NUL-terminated */
  size_t len;
} sy_tc_event;

/* Called for each event; the pointers are valid only during the call. A non-zero return stops
 * the parser: the feed/finish returns -1 and every later call does too. */
typedef int (*sy_tc_emit_fn)(const sy_tc_event *ev, void *ud);

typedef struct sy_tc_parser sy_tc_parser;

/* Limits (hostile output): a call's text (marker to end) past SY_TC_MAX_CALL_BYTES is content;
 * calls after SY_TC_MAX_CALLS are content; JSON nested deeper than SY_TC_MAX_DEPTH is content. */
#define SY_TC_MAX_CALL_BYTES (1u << 20)
#define SY_TC_MAX_CALLS 128
#define SY_TC_MAX_DEPTH 64

/* f: the format (NULL: "none", no reasoning). tools: the request's OpenAI tools array; NULL or
 * empty turns tool parsing off (tool markup is then content, as with tool_choice "none").
 * thinking_open: generation starts inside reasoning (see sy_chat_prompt_thinking_open).
 * Returns NULL for an unknown format name or out of memory. Not thread-safe; one per request. */
sy_tc_parser *sy_tc_new(const sy_chat_format *f, const json_t *tools, bool thinking_open);

/* Seed the tool call id generator (tests); by default it is seeded from getrandom(). */
void sy_tc_seed(sy_tc_parser *p, uint64_t seed);

/* Feed the next piece of generated text, split anywhere (mid-marker, mid-UTF-8). emit may be
 * NULL (non-streaming). Returns 0, or -1 after emit refused or out of memory. */
int sy_tc_feed(sy_tc_parser *p, const char *text, size_t len, sy_tc_emit_fn emit, void *ud);

/* End of generation: flush held-back text. An unterminated reasoning block stays reasoning; an
 * unterminated call is a call when it is complete enough (its JSON is complete, or every
 * qwen3_coder parameter is closed), else content. Returns 0 or -1 like sy_tc_feed. */
int sy_tc_finish(sy_tc_parser *p, sy_tc_emit_fn emit, void *ud);

/* The message so far (complete after sy_tc_finish): {"role": "assistant", "content": text or null
 * (null when empty and there are tool calls), "reasoning_content": text (only when non-empty),
 * "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": string}}] (only
 * when there are calls)}. New reference; NULL when out of memory. */
json_t *sy_tc_message(const sy_tc_parser *p);

/* Number of tool calls emitted (finish_reason "tool_calls" when > 0). */
int sy_tc_call_count(const sy_tc_parser *p);

/* The OpenAI streaming `delta` object for one event: {"content": ...}, {"reasoning_content": ...},
 * {"tool_calls": [{"index", "id", "type": "function", "function": {"name", "arguments": ""}}]} for
 * CALL_BEGIN, {"tool_calls": [{"index", "function": {"arguments": fragment}}]} for CALL_ARGS, and
 * NULL for CALL_END (nothing to send). New reference. */
json_t *sy_tc_event_delta(const sy_tc_event *ev);

void sy_tc_free(sy_tc_parser *p);

#endif
