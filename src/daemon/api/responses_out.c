/* responses_out.c — see responses_out.h. Events and the response object come from the same state
 * (o->item, o->text), so what a stream said and what GET /v1/responses/{id} gives agree. */
#include "api/responses_out.h"

#include <string.h>

#include "parse/api_parse.h"

int rsp_out_init(rsp_out *o, const char *id, const char *model, long long created_at,
                 const json_t *echo, bool stream) {
  memset(o, 0, sizeof *o);
  o->resp =
      json_pack("{s:s, s:s, s:I, s:s, s:b, s:n, s:n, s:s, s:[], s:n}", "id", id, "object",
                "response", "created_at", (json_int_t)created_at, "status", "in_progress",
                "background", 0, "error", "incomplete_details", "model", model, "output", "usage");
  if (o->resp && echo) json_object_update_missing(o->resp, (json_t *)echo);
  o->events = stream ? json_array() : NULL;
  return o->resp && (!stream || o->events) ? 0 : -1;
}

void rsp_out_free(rsp_out *o) {
  json_decref(o->resp);
  json_decref(o->events);
  json_decref(o->item);
  sy_buf_free(&o->text);
  memset(o, 0, sizeof *o);
}

/* The response object as it stands (events keep a copy: the object goes on changing). */
static json_t *snapshot(const rsp_out *o) {
  return json_pack("{s:o}", "response", json_deep_copy(o->resp));
}

/* One event: {type, sequence_number, ...fields} (fields stolen). Nothing when not streaming. */
static void emit(rsp_out *o, const char *type, json_t *fields) {
  if (o->events) {
    json_t *e = json_pack("{s:s, s:I}", "type", type, "sequence_number", (json_int_t)o->seq++);
    if (e && fields) json_object_update(e, fields);
    json_array_append_new(o->events, e);
  }
  json_decref(fields);
}

static const char *item_id(const rsp_out *o) {
  return json_string_value(json_object_get(o->item, "id"));
}

/* The open item's content part with the text so far. */
static json_t *part(const rsp_out *o) {
  json_t *text = json_stringn(o->text.data ? o->text.data : "", o->text.len);
  if (o->open == RSP_ITEM_REASONING)
    return json_pack("{s:s, s:o}", "type", "reasoning_text", "text", text);
  return json_pack("{s:s, s:[], s:[], s:o}", "type", "output_text", "annotations", "logprobs",
                   "text", text);
}

/* Close the open item with status: its done events, then it goes into "output". */
static void close_item(rsp_out *o, const char *status) {
  if (o->open == RSP_ITEM_NONE) return;
  const char *id = item_id(o);
  json_t *text = json_stringn(o->text.data ? o->text.data : "", o->text.len);
  if (o->open == RSP_ITEM_CALL) {
    json_object_set(o->item, "arguments", text);
    if (o->events)
      emit(o, "response.function_call_arguments.done",
           json_pack("{s:s, s:I, s:O, s:O}", "item_id", id, "output_index", (json_int_t)o->index,
                     "name", json_object_get(o->item, "name"), "arguments", text));
  } else {
    bool msg = o->open == RSP_ITEM_MESSAGE;
    if (o->events) {
      json_t *f = json_pack("{s:s, s:I, s:i, s:O}", "item_id", id, "output_index",
                            (json_int_t)o->index, "content_index", 0, "text", text);
      if (f && msg) json_object_set_new(f, "logprobs", json_array());
      emit(o, msg ? "response.output_text.done" : "response.reasoning_text.done", f);
      emit(o, "response.content_part.done",
           json_pack("{s:s, s:I, s:i, s:o}", "item_id", id, "output_index", (json_int_t)o->index,
                     "content_index", 0, "part", part(o)));
    }
    json_object_set_new(o->item, "content", json_pack("[o]", part(o)));
  }
  json_decref(text);
  json_object_set_new(o->item, "status", json_string(status));
  if (o->events)
    emit(o, "response.output_item.done",
         json_pack("{s:I, s:o}", "output_index", (json_int_t)o->index, "item",
                   json_deep_copy(o->item)));
  json_array_append_new(json_object_get(o->resp, "output"), o->item);
  o->item = NULL;
  o->open = RSP_ITEM_NONE;
  o->text.len = 0;
}

/* Open an item of kind k (item: its in-progress form, stolen), closing the one before. */
static void open_item(rsp_out *o, rsp_item_kind k, json_t *item) {
  close_item(o, "completed");
  o->open = k;
  o->item = item;
  o->index = json_array_size(json_object_get(o->resp, "output"));
  o->text.len = 0;
  if (!o->events) return;
  emit(o, "response.output_item.added",
       json_pack("{s:I, s:o}", "output_index", (json_int_t)o->index, "item", json_deep_copy(item)));
  if (k != RSP_ITEM_CALL)
    emit(o, "response.content_part.added",
         json_pack("{s:s, s:I, s:i, s:o}", "item_id", item_id(o), "output_index",
                   (json_int_t)o->index, "content_index", 0, "part", part(o)));
}

/* A piece of message or reasoning text. */
static void add_text(rsp_out *o, rsp_item_kind k, const char *s, size_t n) {
  if (n == 0) return;
  if (o->open != k) {
    char id[48];
    api_random_id(id, sizeof id, k == RSP_ITEM_MESSAGE ? "msg_" : "rs_");
    open_item(o, k,
              k == RSP_ITEM_MESSAGE
                  ? json_pack("{s:s, s:s, s:s, s:s, s:[]}", "id", id, "type", "message", "status",
                              "in_progress", "role", "assistant", "content")
                  : json_pack("{s:s, s:s, s:[], s:[], s:s}", "id", id, "type", "reasoning",
                              "summary", "content", "status", "in_progress"));
  }
  sy_buf_append(&o->text, s, n);
  if (!o->events) return;
  json_t *f = json_pack("{s:s, s:I, s:i, s:s%}", "item_id", item_id(o), "output_index",
                        (json_int_t)o->index, "content_index", 0, "delta", s, n);
  if (f && k == RSP_ITEM_MESSAGE) json_object_set_new(f, "logprobs", json_array());
  emit(o, k == RSP_ITEM_MESSAGE ? "response.output_text.delta" : "response.reasoning_text.delta",
       f);
}

/* One entry of a worker's tool_calls delta: {index, id, function: {name, arguments}} starts a
 * call, {index, function: {arguments}} continues the open one. */
static void add_call(rsp_out *o, const json_t *c) {
  json_t *fn = json_object_get(c, "function"), *id = json_object_get(c, "id");
  long long idx = (long long)json_integer_value(json_object_get(c, "index"));
  json_t *args = json_object_get(fn, "arguments");
  if (json_is_string(id)) {
    const char *name = json_string_value(json_object_get(fn, "name"));
    char fid[48];
    api_random_id(fid, sizeof fid, "fc_");
    open_item(
        o, RSP_ITEM_CALL,
        json_pack("{s:s, s:s, s:s, s:s, s:O, s:s}", "id", fid, "type", "function_call", "status",
                  "in_progress", "arguments", "", "call_id", id, "name", name ? name : ""));
    o->call = idx;
  } else if (o->open != RSP_ITEM_CALL || idx != o->call) {
    return; /* a piece of no open call: the worker never sends one */
  }
  if (!json_is_string(args) || json_string_length(args) == 0) return;
  sy_buf_append(&o->text, json_string_value(args), json_string_length(args));
  if (o->events)
    emit(o, "response.function_call_arguments.delta",
         json_pack("{s:s, s:I, s:O}", "item_id", item_id(o), "output_index", (json_int_t)o->index,
                   "delta", args));
}

void rsp_out_start(rsp_out *o) {
  if (!o->events) return;
  emit(o, "response.created", snapshot(o));
  emit(o, "response.in_progress", snapshot(o));
}

void rsp_out_delta(rsp_out *o, const json_t *hdr) {
  if (o->ended) return;
  json_t *d = json_object_get(hdr, "delta");
  json_t *rc = json_object_get(d, "reasoning_content"), *tc = json_object_get(d, "tool_calls"),
         *text = json_object_get(hdr, "text");
  if (json_is_string(rc))
    add_text(o, RSP_ITEM_REASONING, json_string_value(rc), json_string_length(rc));
  size_t i;
  json_t *c;
  json_array_foreach(tc, i, c) add_call(o, c);
  if (json_is_string(text))
    add_text(o, RSP_ITEM_MESSAGE, json_string_value(text), json_string_length(text));
}

static long long jint(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

void rsp_out_done(rsp_out *o, const json_t *hdr) {
  if (o->ended) return;
  const char *fr = json_string_value(json_object_get(hdr, "finish_reason"));
  bool cut = fr && strcmp(fr, "length") == 0;
  close_item(o, cut ? "incomplete" : "completed");
  long long in = jint(hdr, "prompt_tokens"), out = jint(hdr, "completion_tokens");
  json_object_set_new(
      o->resp, "usage",
      json_pack("{s:I, s:{s:I}, s:I, s:I}", "input_tokens", (json_int_t)in, "input_tokens_details",
                "cached_tokens", (json_int_t)jint(hdr, "cached_tokens"), "output_tokens",
                (json_int_t)out, "total_tokens", (json_int_t)(in + out)));
  json_object_set_new(o->resp, "status", json_string(cut ? "incomplete" : "completed"));
  if (cut)
    json_object_set_new(o->resp, "incomplete_details",
                        json_pack("{s:s}", "reason", "max_output_tokens"));
  if (o->events) emit(o, cut ? "response.incomplete" : "response.completed", snapshot(o));
  o->ended = true;
}

void rsp_out_fail(rsp_out *o, const api_error *e) {
  if (o->ended) return;
  close_item(o, "incomplete");
  json_object_set_new(o->resp, "status", json_string("failed"));
  json_object_set_new(
      o->resp, "error",
      json_pack("{s:s, s:s}", "code", e->code ? e->code : "server_error", "message", e->message));
  if (o->events) emit(o, "response.failed", snapshot(o));
  o->ended = true;
}

json_t *rsp_out_take_events(rsp_out *o) {
  json_t *e = o->events ? o->events : json_array();
  if (o->events) o->events = json_array();
  return e;
}

/* The texts of an item's content parts of type type, appended to b. */
static void texts_of(const json_t *item, const char *type, sy_buf *b) {
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(item, "content"), i, p) {
    const char *t = json_string_value(json_object_get(p, "type"));
    json_t *text = json_object_get(p, "text");
    if (t && strcmp(t, type) == 0 && json_is_string(text))
      sy_buf_append(b, json_string_value(text), json_string_length(text));
  }
}

json_t *rsp_out_message(const json_t *response) {
  sy_buf content = {0}, reasoning = {0};
  json_t *calls = json_array();
  bool has_message = false;
  size_t i;
  json_t *item;
  json_array_foreach(json_object_get(response, "output"), i, item) {
    const char *type = json_string_value(json_object_get(item, "type"));
    if (!type) continue;
    if (strcmp(type, "message") == 0) {
      has_message = true;
      texts_of(item, "output_text", &content);
    } else if (strcmp(type, "reasoning") == 0) {
      texts_of(item, "reasoning_text", &reasoning);
    } else if (strcmp(type, "function_call") == 0) {
      json_array_append_new(
          calls, json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", json_object_get(item, "call_id"),
                           "type", "function", "function", "name", json_object_get(item, "name"),
                           "arguments", json_object_get(item, "arguments")));
    }
  }
  bool null_content = !has_message && json_array_size(calls) > 0;
  json_t *m = json_pack(
      "{s:s, s:o}", "role", "assistant", "content",
      null_content ? json_null() : json_stringn(content.data ? content.data : "", content.len));
  if (m && reasoning.len)
    json_object_set_new(m, "reasoning_content", json_stringn(reasoning.data, reasoning.len));
  if (m && json_array_size(calls)) json_object_set(m, "tool_calls", calls);
  json_decref(calls);
  sy_buf_free(&content);
  sy_buf_free(&reasoning);
  return m;
}
