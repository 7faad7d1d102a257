/* responses_parse.c — see responses_parse.h. Every check answers a hostile body with a precise 400
 * naming the Responses field; nothing here may crash on any JSON value in any field. What the
 * chat checks (api_parse_generate) will check again on the translated body (tool names, number
 * ranges, image counts) is left to them; what they cannot name in Responses terms (item and part
 * shapes, max_output_tokens) is checked here. */
#include "parse/responses_parse.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "parse/api_parse.h"

static bool absent(const json_t *v) { return !v || json_is_null(v); }

/* The index of s among names (NULL-terminated), or -1 (also for s NULL). */
static int one_of(const char *s, const char *const *names) {
  for (int i = 0; s && names[i]; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

/* ---- refusals: Responses features Switchyard does not have ---- */

/* Fields that must be absent or null: each names what it would have asked for. */
static const struct {
  const char *name;
  const char *why;
} refused[] = {
    {"conversation",
     "conversation objects are not supported: pass previous_response_id, or the "
     "whole conversation as input"},
    {"prompt", "stored prompt templates are not supported: send instructions and input"},
    {"context_management", "context management (compaction) is not supported"},
    {"moderation", "moderation is not supported"},
    {"prompt_cache_options",
     "prompt cache options are not supported: the prompt cache reuses the "
     "longest cached prefix by itself (docs/PROMPT_CACHE.md)"},
    {"prompt_cache_retention",
     "the prompt cache's retention cannot be chosen per request: it keeps "
     "what fits its memory share (docs/PROMPT_CACHE.md)"},
    {"max_tool_calls", "max_tool_calls is not supported"},
};

/* The includable the client may ask for: "reasoning.encrypted_content" (Codex sends it with
 * store: false). No reasoning is ever encrypted: reasoning items carry their text in "content",
 * and that is what a client sends back. */
static const char *const includable[] = {"reasoning.encrypted_content", NULL};

static int refuse_unsupported(const json_t *req, api_error *err) {
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
    if (!absent(json_object_get(req, refused[i].name))) {
      API_BAD(err, refused[i].name, "unsupported_parameter", "'%s': %s", refused[i].name,
              refused[i].why);
      return -1;
    }
  json_t *v = json_object_get(req, "background");
  if (!absent(v) && !json_is_boolean(v)) {
    API_BAD(err, "background", "invalid_type", "'background' must be a boolean");
    return -1;
  }
  if (json_is_true(v)) {
    API_BAD(err, "background", "unsupported_parameter",
            "background responses are not supported: wait for the answer, or stream it");
    return -1;
  }
  v = json_object_get(req, "service_tier");
  static const char *const tiers[] = {"auto", "default", NULL};
  if (!absent(v) && one_of(json_string_value(v), tiers) < 0) {
    API_BAD(err, "service_tier", json_is_string(v) ? "unsupported_parameter" : "invalid_type",
            "'service_tier' must be \"auto\" or \"default\" (there is one tier)");
    return -1;
  }
  v = json_object_get(req, "truncation");
  if (!absent(v) && one_of(json_string_value(v), (const char *const[]){"disabled", NULL}) < 0) {
    bool is_auto = json_is_string(v) && strcmp(json_string_value(v), "auto") == 0;
    API_BAD(err, "truncation", is_auto ? "unsupported_parameter" : "invalid_value",
            is_auto ? "truncation \"auto\" is not supported: a conversation longer than the "
                      "model's context is refused (context_length_exceeded)"
                    : "'truncation' must be \"disabled\"");
    return -1;
  }
  v = json_object_get(req, "top_logprobs");
  if (!absent(v) && !(json_is_integer(v) && json_integer_value(v) == 0)) {
    API_BAD(err, "top_logprobs", "unsupported_parameter",
            "log-probabilities are not supported on /v1/responses (use /v1/chat/completions "
            "with logprobs)");
    return -1;
  }
  v = json_object_get(req, "include");
  if (!absent(v)) {
    if (!json_is_array(v) || json_array_size(v) > 16) {
      API_BAD(err, "include", "invalid_type", "'include' must be an array of strings");
      return -1;
    }
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
      if (!json_is_string(s)) {
        API_BAD(err, "include", "invalid_type", "include[%zu] must be a string", i);
        return -1;
      }
      if (one_of(json_string_value(s), includable) < 0) {
        API_BAD(err, "include", "unsupported_parameter",
                "include[%zu] '%.64s' is not supported (only \"reasoning.encrypted_content\" is "
                "accepted, and reasoning is never encrypted)",
                i, json_string_value(s));
        return -1;
      }
    }
  }
  return 0;
}

/* ---- input: items → chat messages ---- */

/* One content part of input[i].content[k] as a chat part (new reference), or NULL + err. An
 * assistant's message takes output_text, refusal (its text) and input_text; the other roles, and
 * a function_call_output, input_text and input_image. */
static json_t *part_of(const json_t *p, bool assistant, size_t i, size_t k, api_error *err) {
  const char *type = json_string_value(json_object_get(p, "type"));
  if (!json_is_object(p) || !type) {
    API_BAD(err, "input", "invalid_type", "input[%zu].content[%zu] must be an object with a 'type'",
            i, k);
    return NULL;
  }
  bool text = strcmp(type, "input_text") == 0 || (assistant && strcmp(type, "output_text") == 0);
  if (text || (assistant && strcmp(type, "refusal") == 0)) {
    const char *key = text ? "text" : "refusal";
    json_t *t = json_object_get(p, key);
    if (!json_is_string(t)) {
      API_BAD(err, "input", "invalid_type", "input[%zu].content[%zu].%s must be a string", i, k,
              key);
      return NULL;
    }
    return json_pack("{s:s, s:O}", "type", "text", "text", t);
  }
  if (!assistant && strcmp(type, "input_image") == 0) {
    json_t *url = json_object_get(p, "image_url"), *detail = json_object_get(p, "detail");
    if (!absent(json_object_get(p, "file_id"))) {
      API_BAD(err, "input", "unsupported_content",
              "input[%zu].content[%zu]: file_id is not supported (there is no Files API); send "
              "image_url as a data: URL",
              i, k);
      return NULL;
    }
    if (!json_is_string(url) || json_string_length(url) == 0 ||
        (!absent(detail) && !json_is_string(detail))) {
      API_BAD(err, "input", "invalid_value",
              "input[%zu].content[%zu] must be {type: \"input_image\", image_url: string, detail?: "
              "string}",
              i, k);
      return NULL;
    }
    return json_pack("{s:s, s:{s:O}}", "type", "image_url", "image_url", "url", url);
  }
  if (strcmp(type, "input_file") == 0) {
    API_BAD(err, "input", "unsupported_content",
            "input[%zu].content[%zu]: input_file parts are not supported; send the text as "
            "input_text (images as input_image)",
            i, k);
    return NULL;
  }
  API_BAD(err, "input", "unsupported_content",
          "input[%zu].content[%zu] has type '%.40s'; %s takes only %s parts", i, k, type,
          assistant ? "an assistant message" : "this item",
          assistant ? "output_text and refusal" : "input_text and input_image");
  return NULL;
}

/* input[i].content (or a function_call_output's output) as chat content: a string stays a string,
 * an array of parts becomes chat parts. New reference, or NULL + err. */
static json_t *content_of(const json_t *c, const char *what, bool assistant, size_t i,
                          api_error *err) {
  if (json_is_string(c)) return json_incref((json_t *)c);
  if (!json_is_array(c) || json_array_size(c) > RSP_MAX_PARTS) {
    API_BAD(err, "input", "invalid_type",
            "input[%zu].%s must be a string or an array of at most %d content parts", i, what,
            RSP_MAX_PARTS);
    return NULL;
  }
  json_t *out = json_array();
  size_t k;
  json_t *p;
  json_array_foreach(c, k, p) {
    json_t *part = part_of(p, assistant, i, k, err);
    if (!part) {
      json_decref(out);
      return NULL;
    }
    json_array_append_new(out, part);
  }
  return out;
}

/* The last message when it is an assistant's (where a reasoning, message or function_call item of
 * the same turn folds in), else NULL. */
static json_t *last_assistant(json_t *msgs) {
  size_t n = json_array_size(msgs);
  json_t *m = n ? json_array_get(msgs, n - 1) : NULL;
  const char *role = json_string_value(json_object_get(m, "role"));
  return role && strcmp(role, "assistant") == 0 ? m : NULL;
}

static bool has(const json_t *m, const char *key) { return !absent(json_object_get(m, key)); }

/* A non-empty string field of item, or NULL + err (400 naming input[i].key). */
static json_t *str_field(const json_t *item, const char *key, size_t i, const char *type,
                         api_error *err) {
  json_t *v = json_object_get(item, key);
  if (!json_is_string(v) || json_string_length(v) == 0) {
    API_BAD(err, "input", absent(v) ? "missing_required_parameter" : "invalid_type",
            "input[%zu] (%s) needs '%s', a non-empty string", i, type, key);
    return NULL;
  }
  return v;
}

/* Whether a tool call call_id is among msgs' assistant messages. */
static bool has_call(const json_t *msgs, const char *call_id) {
  for (size_t n = json_array_size(msgs); n > 0; n--) {
    size_t k;
    json_t *c;
    json_array_foreach(json_object_get(json_array_get(msgs, n - 1), "tool_calls"), k, c) {
      const char *id = json_string_value(json_object_get(c, "id"));
      if (id && strcmp(id, call_id) == 0) return true;
    }
  }
  return false;
}

/* A reasoning item's text: its reasoning_text content, else its summary_text summary, joined with
 * newlines ("" when it has neither). 0, or -1 + err. */
static int reasoning_text(const json_t *item, sy_buf *out) {
  static const char *const keys[] = {"content", "summary"};
  static const char *const types[] = {"reasoning_text", "summary_text"};
  for (int f = 0; f < 2 && out->len == 0; f++) {
    json_t *arr = json_object_get(item, keys[f]);
    if (absent(arr)) continue;
    if (!json_is_array(arr) || json_array_size(arr) > RSP_MAX_PARTS) return -1;
    size_t k;
    json_t *p;
    json_array_foreach(arr, k, p) {
      json_t *t = json_object_get(p, "text");
      const char *type = json_string_value(json_object_get(p, "type"));
      if (!json_is_string(t) || !type || strcmp(type, types[f]) != 0) return -1;
      if ((out->len && sy_buf_puts(out, "\n") != 0) ||
          sy_buf_append(out, json_string_value(t), json_string_length(t)) != 0)
        return -1;
    }
  }
  return 0;
}

/* input[i] appended to msgs as chat messages. The items of one assistant turn (reasoning, its
 * message, its function calls) fold into one assistant message, in the order OpenAI writes them.
 * 0, or -1 + err. */
static int add_item(json_t *msgs, const json_t *item, size_t i, api_error *err) {
  if (!json_is_object(item)) {
    API_BAD(err, "input", "invalid_type", "input[%zu] must be an object", i);
    return -1;
  }
  json_t *jt = json_object_get(item, "type");
  const char *type = json_string_value(jt);
  if (absent(jt) && has(item, "role")) type = "message"; /* the "easy" input message */
  if (!type) {
    API_BAD(err, "input", "invalid_type", "input[%zu] must have a string 'type'", i);
    return -1;
  }
  json_t *last = last_assistant(msgs);
  if (strcmp(type, "message") == 0) {
    static const char *const roles[] = {"user", "system", "developer", "assistant", NULL};
    const char *role = json_string_value(json_object_get(item, "role"));
    int r = one_of(role, roles);
    if (r < 0) {
      API_BAD(err, "input", "invalid_value",
              "input[%zu].role must be one of user, system, developer, assistant", i);
      return -1;
    }
    json_t *c = json_object_get(item, "content");
    if (absent(c)) {
      API_BAD(err, "input", "missing_required_parameter", "input[%zu] (message) has no 'content'",
              i);
      return -1;
    }
    json_t *content = content_of(c, "content", r == 3, i, err);
    if (!content) return -1;
    if (r == 3 && last && !has(last, "content") && !has(last, "tool_calls")) {
      json_object_set_new(last, "content", content); /* after its reasoning */
      return 0;
    }
    json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", content));
    return 0;
  }
  if (strcmp(type, "function_call") == 0) {
    json_t *call_id = str_field(item, "call_id", i, type, err);
    json_t *name = call_id ? str_field(item, "name", i, type, err) : NULL;
    json_t *args = json_object_get(item, "arguments");
    if (!name) return -1;
    if (!json_is_string(args)) {
      API_BAD(err, "input", "invalid_type",
              "input[%zu] (function_call) needs 'arguments', a string", i);
      return -1;
    }
    json_t *call = json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", call_id, "type", "function",
                             "function", "name", name, "arguments", args);
    if (!last) {
      last = json_pack("{s:s, s:n}", "role", "assistant", "content");
      json_array_append_new(msgs, last);
    }
    json_t *calls = json_object_get(last, "tool_calls");
    if (!json_is_array(calls)) json_object_set_new(last, "tool_calls", calls = json_array());
    json_array_append_new(calls, call);
    return 0;
  }
  if (strcmp(type, "function_call_output") == 0) {
    json_t *call_id = str_field(item, "call_id", i, type, err);
    if (!call_id) return -1;
    json_t *o = json_object_get(item, "output");
    if (absent(o)) {
      API_BAD(err, "input", "missing_required_parameter",
              "input[%zu] (function_call_output) has no 'output'", i);
      return -1;
    }
    if (!has_call(msgs, json_string_value(call_id))) {
      API_BAD(err, "input", "invalid_value",
              "input[%zu]: no function_call with call_id '%.64s' comes before this "
              "function_call_output",
              i, json_string_value(call_id));
      return -1;
    }
    json_t *content = content_of(o, "output", false, i, err);
    if (!content) return -1;
    /* as a chat client sends it (no "name"): the same conversation gives the same prompt */
    json_array_append_new(msgs, json_pack("{s:s, s:O, s:o}", "role", "tool", "tool_call_id",
                                          call_id, "content", content));
    return 0;
  }
  if (strcmp(type, "reasoning") == 0) {
    sy_buf t = {0};
    if (reasoning_text(item, &t) != 0) {
      sy_buf_free(&t);
      API_BAD(err, "input", "invalid_value",
              "input[%zu] (reasoning): 'content' must be [{type: \"reasoning_text\", text}] and "
              "'summary' [{type: \"summary_text\", text}]",
              i);
      return -1;
    }
    if (t.len) {
      json_t *rc = json_stringn(t.data, t.len);
      if (last && !has(last, "content") && !has(last, "tool_calls") &&
          !has(last, "reasoning_content"))
        json_object_set_new(last, "reasoning_content", rc);
      else
        json_array_append_new(msgs, json_pack("{s:s, s:n, s:o}", "role", "assistant", "content",
                                              "reasoning_content", rc));
    }
    sy_buf_free(&t);
    return 0;
  }
  if (strcmp(type, "item_reference") == 0) {
    API_BAD(err, "input", "unsupported_content",
            "input[%zu]: item_reference is not supported; send the items themselves, or use "
            "previous_response_id",
            i);
    return -1;
  }
  API_BAD(err, "input", "unsupported_content",
          "input[%zu] has type '%.40s'; Switchyard takes message, function_call, "
          "function_call_output and reasoning items (no built-in tools)",
          i, type);
  return -1;
}

/* "input" (a string, or an array of items) appended to msgs. */
static int add_input(json_t *msgs, const json_t *req, api_error *err) {
  json_t *in = json_object_get(req, "input");
  if (absent(in)) {
    API_BAD(err, "input", "missing_required_parameter", "you must provide an 'input' parameter");
    return -1;
  }
  if (json_is_string(in)) {
    json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "user", "content", in));
    return 0;
  }
  if (!json_is_array(in)) {
    API_BAD(err, "input", "invalid_type", "'input' must be a string or an array of items");
    return -1;
  }
  if (json_array_size(in) > RSP_MAX_INPUT_ITEMS) {
    API_BAD(err, "input", "invalid_value", "'input' holds %zu items; at most %d are allowed",
            json_array_size(in), RSP_MAX_INPUT_ITEMS);
    return -1;
  }
  size_t i;
  json_t *item;
  json_array_foreach(in, i, item) if (add_item(msgs, item, i, err) != 0) return -1;
  return 0;
}

/* ---- tools, tool_choice ---- */

/* "tools": function tools as chat tools. Built-in tools are refused by name. */
static int add_tools(const json_t *req, json_t *chat, api_error *err) {
  json_t *tools = json_object_get(req, "tools");
  if (absent(tools)) return 0;
  if (!json_is_array(tools) || json_array_size(tools) > API_MAX_TOOLS) {
    API_BAD(err, "tools", "invalid_type", "'tools' must be an array of at most %d tools",
            API_MAX_TOOLS);
    return -1;
  }
  json_t *out = json_array();
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) {
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!json_is_object(t) || !type) {
      API_BAD(err, "tools", "invalid_type", "tools[%zu] must be an object with a 'type'", i);
      goto fail;
    }
    if (strcmp(type, "function") != 0) {
      API_BAD(err, "tools", "unsupported_parameter",
              "tools[%zu] has type '%.40s'; only function tools are supported (no built-in tools "
              "such as web_search, file_search, code_interpreter or mcp)",
              i, type);
      goto fail;
    }
    json_t *name = json_object_get(t, "name"), *desc = json_object_get(t, "description"),
           *params = json_object_get(t, "parameters"), *strict = json_object_get(t, "strict");
    if (!json_is_string(name) || (!absent(desc) && !json_is_string(desc)) ||
        (!absent(params) && !json_is_object(params)) ||
        (!absent(strict) && !json_is_boolean(strict))) {
      API_BAD(err, "tools", "invalid_value",
              "tools[%zu] must be {type: \"function\", name: string, description?: string, "
              "parameters?: object, strict?: boolean}",
              i);
      goto fail;
    }
    json_t *fn = json_pack("{s:O}", "name", name);
    if (!absent(desc)) json_object_set(fn, "description", desc);
    if (!absent(params)) json_object_set(fn, "parameters", params);
    json_array_append_new(out, json_pack("{s:s, s:o}", "type", "function", "function", fn));
  }
  json_object_set_new(chat, "tools", out);
  return 0;
fail:
  json_decref(out);
  return -1;
}

/* "tool_choice": "none" / "auto" / "required", or {type: "function", name}. */
static int add_tool_choice(const json_t *req, json_t *chat, api_error *err) {
  json_t *tc = json_object_get(req, "tool_choice");
  if (absent(tc)) return 0;
  static const char *const modes[] = {"none", "auto", "required", NULL};
  if (json_is_string(tc) && one_of(json_string_value(tc), modes) >= 0) {
    json_object_set(chat, "tool_choice", tc);
    return 0;
  }
  const char *type = json_string_value(json_object_get(tc, "type"));
  json_t *name = json_object_get(tc, "name");
  if (json_is_object(tc) && type && strcmp(type, "function") == 0 && json_is_string(name)) {
    json_object_set_new(chat, "tool_choice",
                        json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name", name));
    return 0;
  }
  if (json_is_object(tc) && type && strcmp(type, "function") != 0) {
    API_BAD(err, "tool_choice", "unsupported_parameter",
            "tool_choice type '%.40s' is not supported (only function tools exist here)", type);
    return -1;
  }
  API_BAD(err, "tool_choice", "invalid_value",
          "'tool_choice' must be \"none\", \"auto\", \"required\" or {type: \"function\", name}");
  return -1;
}

/* ---- text.format, reasoning, numbers ---- */

/* "text": {format: {type: text | json_object | json_schema, name, schema, strict}} →
 * response_format; the format as the response repeats it goes into echo. */
static int add_text(const json_t *req, json_t *chat, json_t *echo, api_error *err) {
  json_t *text = json_object_get(req, "text");
  json_t *fmt = json_object_get(text, "format");
  if (!absent(text) && !json_is_object(text)) {
    API_BAD(err, "text", "invalid_type", "'text' must be an object");
    return -1;
  }
  if (!absent(json_object_get(text, "verbosity"))) {
    API_BAD(err, "text.verbosity", "unsupported_parameter",
            "text.verbosity is not supported (no model here takes it)");
    return -1;
  }
  if (absent(fmt)) {
    json_object_set_new(echo, "text", json_pack("{s:{s:s}}", "format", "type", "text"));
    return 0;
  }
  const char *type = json_string_value(json_object_get(fmt, "type"));
  static const char *const types[] = {"text", "json_object", "json_schema", NULL};
  int t = json_is_object(fmt) ? one_of(type, types) : -1;
  if (t < 0) {
    API_BAD(err, "text.format", "invalid_value",
            "text.format must be {type: \"text\"}, {type: \"json_object\"} or {type: "
            "\"json_schema\", name, schema, strict}");
    return -1;
  }
  if (t == 1) json_object_set_new(chat, "response_format", json_pack("{s:s}", "type", type));
  if (t == 2) {
    json_t *name = json_object_get(fmt, "name"), *schema = json_object_get(fmt, "schema"),
           *strict = json_object_get(fmt, "strict");
    if (!(json_is_object(schema) || json_is_true(schema)) ||
        (!absent(name) && !json_is_string(name)) || (!absent(strict) && !json_is_boolean(strict))) {
      API_BAD(err, "text.format", "invalid_value",
              "text.format json_schema needs {type: \"json_schema\", name: string, schema: {...}, "
              "strict?: boolean}");
      return -1;
    }
    json_object_set_new(
        chat, "response_format",
        json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema", "name",
                  json_is_string(name) ? json_string_value(name) : "response", "schema", schema));
  }
  json_object_set_new(echo, "text", json_pack("{s:O}", "format", fmt));
  return 0;
}

/* "reasoning": {effort, summary} → reasoning_effort (none turns thinking off; xhigh and max are
 * the template's high). The summary is accepted: reasoning comes as its text, not summarised. */
static int add_reasoning(const json_t *req, json_t *chat, json_t *echo, api_error *err) {
  json_t *r = json_object_get(req, "reasoning");
  json_t *effort = json_object_get(r, "effort"), *summary = json_object_get(r, "summary"),
         *gen = json_object_get(r, "generate_summary");
  if (!absent(r) && !json_is_object(r)) {
    API_BAD(err, "reasoning", "invalid_type", "'reasoning' must be an object");
    return -1;
  }
  static const char *const efforts[] = {"none", "minimal", "low", "medium",
                                        "high", "xhigh",   "max", NULL};
  int e = one_of(json_string_value(effort), efforts);
  if (!absent(effort) && e < 0) {
    API_BAD(err, "reasoning.effort", "invalid_value",
            "reasoning.effort must be none, minimal, low, medium, high, xhigh or max");
    return -1;
  }
  static const char *const summaries[] = {"auto", "concise", "detailed", NULL};
  if ((!absent(summary) && one_of(json_string_value(summary), summaries) < 0) ||
      (!absent(gen) && one_of(json_string_value(gen), summaries) < 0)) {
    API_BAD(err, "reasoning.summary", "invalid_value",
            "reasoning.summary must be auto, concise or detailed");
    return -1;
  }
  if (e >= 0)
    json_object_set_new(chat, "reasoning_effort", json_string(e >= 5 ? "high" : efforts[e]));
  json_object_set_new(echo, "reasoning",
                      json_pack("{s:O, s:O}", "effort", absent(effort) ? json_null() : effort,
                                "summary", absent(summary) ? json_null() : summary));
  return 0;
}

/* "max_output_tokens": an integer 1 .. 2^24 (5.0 counts as 5) → max_tokens. */
static int add_max_tokens(const json_t *req, json_t *chat, json_t *echo, api_error *err) {
  json_t *v = json_object_get(req, "max_output_tokens");
  if (absent(v)) {
    json_object_set_new(echo, "max_output_tokens", json_null());
    return 0;
  }
  double d = json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
  if (!json_is_number(v) || d != floor(d) || !(d >= 1 && d <= (1 << 24))) {
    API_BAD(err, "max_output_tokens", "invalid_value",
            "'max_output_tokens' must be an integer between 1 and %d", 1 << 24);
    return -1;
  }
  json_object_set_new(chat, "max_tokens", json_integer((json_int_t)d));
  json_object_set_new(echo, "max_output_tokens", json_integer((json_int_t)d));
  return 0;
}

/* A boolean field: *out set when present. 0 or -1 + err. */
static int opt_bool(const json_t *req, const char *name, const char *param, bool *out,
                    api_error *err) {
  json_t *v = json_object_get(req, name);
  if (absent(v)) return 0;
  if (!json_is_boolean(v)) {
    API_BAD(err, param, "invalid_type", "'%s' must be a boolean", param);
    return -1;
  }
  *out = json_is_true(v);
  return 0;
}

/* Fields that are only repeated in the response: metadata (≤ 16 string values), user,
 * safety_identifier, prompt_cache_key (strings), stream_options (include_obfuscation: nothing is
 * obfuscated). */
static int check_echoed(const json_t *req, json_t *echo, api_error *err) {
  json_t *md = json_object_get(req, "metadata");
  if (!absent(md)) {
    bool ok = json_is_object(md) && json_object_size(md) <= RSP_MAX_METADATA;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)md, k, v) ok =
        ok && strlen(k) <= 64 && json_is_string(v) && json_string_length(v) <= 512;
    if (!ok) {
      API_BAD(err, "metadata", "invalid_value",
              "'metadata' must be an object of at most %d string values (keys up to 64 bytes, "
              "values up to 512)",
              RSP_MAX_METADATA);
      return -1;
    }
  }
  json_object_set_new(echo, "metadata", absent(md) ? json_object() : json_incref(md));
  static const char *const strs[] = {"user", "safety_identifier", "prompt_cache_key"};
  for (size_t i = 0; i < 3; i++) {
    json_t *v = json_object_get(req, strs[i]);
    if (!absent(v) && !json_is_string(v)) {
      API_BAD(err, strs[i], "invalid_type", "'%s' must be a string", strs[i]);
      return -1;
    }
    json_object_set_new(echo, strs[i], absent(v) ? json_null() : json_incref(v));
  }
  json_t *so = json_object_get(req, "stream_options");
  bool obf = false;
  if (!absent(so) && !json_is_object(so)) {
    API_BAD(err, "stream_options", "invalid_type", "'stream_options' must be an object");
    return -1;
  }
  return so ? opt_bool(so, "include_obfuscation", "stream_options.include_obfuscation", &obf, err)
            : 0;
}

/* Chat fields Switchyard's chat takes that the Responses API has no name for: passed as they are
 * (and checked by the chat rules, naming themselves). */
static const char *const extensions[] = {"seed",
                                         "top_k",
                                         "min_p",
                                         "repeat_penalty",
                                         "presence_penalty",
                                         "frequency_penalty",
                                         "stop",
                                         "keep_alive",
                                         "cache_prompt",
                                         "ignore_eos",
                                         "chat_template_kwargs",
                                         NULL};

int rsp_parse_previous_id(const json_t *req, const char **id, api_error *err) {
  json_t *v = json_object_get(req, "previous_response_id");
  *id = NULL;
  if (absent(v)) return 0;
  if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 128) {
    API_BAD(err, "previous_response_id", json_is_string(v) ? "invalid_value" : "invalid_type",
            "'previous_response_id' must be a response id (a string such as \"resp_...\")");
    return -1;
  }
  *id = json_string_value(v);
  return 0;
}

int rsp_parse_request(const json_t *req, const json_t *history, rsp_request *out, api_error *err) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(req)) {
    API_BAD(err, NULL, "invalid_json", "The request body must be a JSON object");
    return -1;
  }
  const char *prev;
  if (refuse_unsupported(req, err) != 0 || rsp_parse_previous_id(req, &prev, err) != 0) return -1;
  out->chat = json_object();
  out->echo = json_object();
  out->history = json_is_array(history) ? json_deep_copy(history) : json_array();
  json_t *chat = out->chat, *echo = out->echo;
  json_t *model = json_object_get(req, "model"), *instr = json_object_get(req, "instructions");
  if (!chat || !echo || !out->history) {
    API_SERVER(err, "out_of_memory", "out of memory");
    goto fail;
  }
  if (model) json_object_set(chat, "model", model);
  if (!absent(instr) && !json_is_string(instr)) {
    API_BAD(err, "instructions", "invalid_type", "'instructions' must be a string");
    goto fail;
  }
  if (add_input(out->history, req, err) != 0) goto fail;
  if (json_array_size(out->history) == 0) {
    API_BAD(err, "input", "invalid_value", "'input' holds no message");
    goto fail;
  }
  json_t *msgs = json_array();
  if (!absent(instr))
    json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "system", "content", instr));
  json_array_extend(msgs, out->history);
  json_object_set_new(chat, "messages", msgs);
  json_object_set_new(echo, "instructions", absent(instr) ? json_null() : json_incref(instr));
  if (add_max_tokens(req, chat, echo, err) != 0) goto fail;
  if (check_echoed(req, echo, err) != 0) goto fail;
  json_t *ptc = json_object_get(req, "parallel_tool_calls");
  if (!absent(ptc)) json_object_set(chat, "parallel_tool_calls", ptc);
  json_object_set_new(echo, "parallel_tool_calls", absent(ptc) ? json_true() : json_incref(ptc));
  json_object_set_new(echo, "previous_response_id", prev ? json_string(prev) : json_null());
  if (add_reasoning(req, chat, echo, err) != 0) goto fail;
  out->store = true;
  if (opt_bool(req, "store", "store", &out->store, err) != 0 ||
      opt_bool(req, "stream", "stream", &out->stream, err) != 0)
    goto fail;
  json_object_set_new(chat, "stream", json_boolean(out->stream));
  json_object_set_new(echo, "store", json_boolean(out->store));
  static const char *const sampling[] = {"temperature", "top_p"};
  for (size_t i = 0; i < 2; i++) {
    json_t *v = json_object_get(req, sampling[i]);
    if (!absent(v)) json_object_set(chat, sampling[i], v);
    json_object_set_new(echo, sampling[i], absent(v) ? json_null() : json_incref(v));
  }
  if (add_text(req, chat, echo, err) != 0 || add_tools(req, chat, err) != 0 ||
      add_tool_choice(req, chat, err) != 0)
    goto fail;
  json_t *tc = json_object_get(req, "tool_choice"), *tools = json_object_get(req, "tools");
  json_object_set_new(echo, "tool_choice", absent(tc) ? json_string("auto") : json_incref(tc));
  json_object_set_new(echo, "tools", absent(tools) ? json_array() : json_incref(tools));
  json_object_set_new(echo, "truncation", json_string("disabled"));
  json_object_set_new(echo, "service_tier", json_string("default"));
  for (size_t i = 0; extensions[i]; i++) {
    json_t *v = json_object_get(req, extensions[i]);
    if (v) json_object_set(chat, extensions[i], v);
  }
  return 0;
fail:
  rsp_request_clear(out);
  return -1;
}

void rsp_request_clear(rsp_request *r) {
  json_decref(r->chat);
  json_decref(r->history);
  json_decref(r->echo);
  r->chat = r->history = r->echo = NULL;
}

void rsp_parse_fix_error(api_error *e) {
  static const char *const map[][2] = {{"messages", "input"},
                                       {"max_tokens", "max_output_tokens"},
                                       {"max_completion_tokens", "max_output_tokens"},
                                       {"response_format", "text.format"},
                                       {"reasoning_effort", "reasoning.effort"}};
  for (size_t i = 0; e->param && i < sizeof map / sizeof *map; i++)
    if (strcmp(e->param, map[i][0]) == 0) {
      e->param = map[i][1];
      return;
    }
}
