/* anthropic.c — see anthropic.h. Two pure translations: an Anthropic Messages request into the
 * OpenAI chat body the chat path already checks (anth_to_chat), and the worker's generate events
 * into Anthropic's event stream or message (anth_out_*). Must never crash on any JSON value in any
 * field, never let a field pass unchecked (every key of every object is known or refused), and
 * never write an event out of Anthropic's order (message_start, then blocks each started, given
 * deltas and stopped before the next, then message_delta and message_stop). */
#include "api/anthropic.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/sse.h"

/* ---- the request ---- */

/* A 400 naming the field (Anthropic's dotted path, in the message); param: the top-level field. */
#define BAD(err, param, ...) API_BAD(err, param, "invalid_request", __VA_ARGS__)

/* Whether key is one of the NULL-terminated names. */
static bool key_in(const char *key, const char *const *names) {
  for (; *names; names++)
    if (strcmp(key, *names) == 0) return true;
  return false;
}

/* Every key of o is one of names; else a 400 naming the first other one (path: o's own). */
static int only_keys(const json_t *o, const char *const *names, const char *param, const char *path,
                     api_error *err) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    if (!key_in(k, names)) {
      BAD(err, param, "%s%s%.64s: unknown field (not part of the Messages API this server serves)",
          path, *path ? "." : "", k);
      return -1;
    }
  }
  return 0;
}

/* o's member k when present and not null, else NULL. */
static json_t *opt(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_null(v) ? NULL : v;
}

/* cache_control (a prompt-caching breakpoint): {type: "ephemeral", ttl?: "5m"|"1h"}. Accepted and
 * not needed: the prompt cache keeps every prefix by itself (docs/PROMPT_CACHE.md). */
static int check_cache_control(const json_t *o, const char *param, const char *path,
                               api_error *err) {
  json_t *cc = opt(o, "cache_control");
  if (!cc) return 0;
  static const char *const keys[] = {"type", "ttl", NULL};
  const char *t = json_string_value(json_object_get(cc, "type"));
  json_t *ttl = opt(cc, "ttl");
  const char *ts = json_string_value(ttl);
  if (!json_is_object(cc) || !t || strcmp(t, "ephemeral") != 0 ||
      (ttl && (!ts || (strcmp(ts, "5m") != 0 && strcmp(ts, "1h") != 0)))) {
    BAD(err, param, "%s.cache_control: must be {\"type\": \"ephemeral\", \"ttl\"?: \"5m\"|\"1h\"}",
        path);
    return -1;
  }
  char sub[160];
  snprintf(sub, sizeof sub, "%s.cache_control", path);
  return only_keys(cc, keys, param, sub, err);
}

/* A text block {type: "text", text, cache_control?, citations?: null or []} → an OpenAI text part
 * appended to parts. */
static int text_block(const json_t *b, const char *param, const char *path, json_t *parts,
                      api_error *err) {
  static const char *const keys[] = {"type", "text", "cache_control", "citations", NULL};
  if (only_keys(b, keys, param, path, err) || check_cache_control(b, param, path, err)) return -1;
  json_t *t = json_object_get(b, "text"), *cit = opt(b, "citations");
  if (!json_is_string(t)) {
    BAD(err, param, "%s.text: must be a string", path);
    return -1;
  }
  if (cit && !(json_is_array(cit) && json_array_size(cit) == 0)) {
    BAD(err, param, "%s.citations: citations are not supported (send null or [])", path);
    return -1;
  }
  json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", t));
  return 0;
}

/* An image block {type: "image", source: {type: "base64", media_type, data}} → an image_url part
 * with a data: URL (decoded by the daemon as every chat image is: media/image.c). */
static int image_block(const json_t *b, const char *param, const char *path, json_t *parts,
                       api_error *err) {
  static const char *const keys[] = {"type", "source", "cache_control", NULL};
  static const char *const src_keys[] = {"type", "media_type", "data", NULL};
  if (only_keys(b, keys, param, path, err) || check_cache_control(b, param, path, err)) return -1;
  json_t *src = json_object_get(b, "source");
  const char *st = json_string_value(json_object_get(src, "type"));
  if (!json_is_object(src) || !st) {
    BAD(err, param, "%s.source: must be {\"type\": \"base64\", \"media_type\", \"data\"}", path);
    return -1;
  }
  if (strcmp(st, "base64") != 0) {
    BAD(err, param,
        "%s.source.type: '%.40s' is not supported: images are sent as base64 (image URLs are "
        "not fetched, files are not stored)",
        path, st);
    return -1;
  }
  char sub[160];
  snprintf(sub, sizeof sub, "%s.source", path);
  if (only_keys(src, src_keys, param, sub, err)) return -1;
  const char *mt = json_string_value(json_object_get(src, "media_type"));
  json_t *data = json_object_get(src, "data");
  if (!mt || (strcmp(mt, "image/png") != 0 && strcmp(mt, "image/jpeg") != 0 &&
              strcmp(mt, "image/webp") != 0)) {
    BAD(err, param,
        "%s.source.media_type: must be image/png, image/jpeg or image/webp (image/gif is not "
        "decoded here)",
        path);
    return -1;
  }
  if (!json_is_string(data) || json_string_length(data) == 0) {
    BAD(err, param, "%s.source.data: must be a non-empty base64 string", path);
    return -1;
  }
  sy_buf url = {0};
  int rc = sy_buf_printf(&url, "data:%s;base64,", mt) ||
           sy_buf_append(&url, json_string_value(data), json_string_length(data));
  json_t *part =
      rc ? NULL
         : json_pack("{s:s, s:{s:s%}}", "type", "image_url", "image_url", "url", url.data, url.len);
  sy_buf_free(&url);
  if (!part) {
    API_SERVER(err, "out_of_memory", "out of memory");
    return -1;
  }
  json_array_append_new(parts, part);
  return 0;
}

/* A tool_result block → an OpenAI tool message (tool_call_id, name when the call is known,
 * content: a string, or text and image parts). is_error: "Error: " goes before the text (chat
 * templates have no place for the flag). */
static json_t *tool_result_block(const json_t *b, const json_t *names, const char *param,
                                 const char *path, api_error *err) {
  static const char *const keys[] = {"type",     "tool_use_id",   "content",
                                     "is_error", "cache_control", NULL};
  if (only_keys(b, keys, param, path, err) || check_cache_control(b, param, path, err)) return NULL;
  json_t *id = json_object_get(b, "tool_use_id"), *c = opt(b, "content"), *ie = opt(b, "is_error");
  if (!json_is_string(id) || json_string_length(id) == 0) {
    BAD(err, param, "%s.tool_use_id: must be a non-empty string", path);
    return NULL;
  }
  if (ie && !json_is_boolean(ie)) {
    BAD(err, param, "%s.is_error: must be a boolean", path);
    return NULL;
  }
  bool is_error = json_is_true(ie);
  json_t *content;
  if (!c || json_is_string(c)) {
    sy_buf t = {0};
    if (is_error) sy_buf_puts(&t, c && json_string_length(c) ? "Error: " : "Error");
    if (c) sy_buf_append(&t, json_string_value(c), json_string_length(c));
    content = json_stringn(t.data ? t.data : "", t.len);
    sy_buf_free(&t);
  } else if (json_is_array(c)) {
    content = json_array();
    if (is_error)
      json_array_append_new(content, json_pack("{s:s, s:s}", "type", "text", "text", "Error:"));
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
      char sub[160];
      snprintf(sub, sizeof sub, "%s.content.%zu", path, i);
      const char *t = json_string_value(json_object_get(p, "type"));
      int rc;
      if (!json_is_object(p) || !t) {
        BAD(err, param, "%s: must be a content block with a 'type'", sub);
        rc = -1;
      } else if (strcmp(t, "text") == 0) {
        rc = text_block(p, param, sub, content, err);
      } else if (strcmp(t, "image") == 0) {
        rc = image_block(p, param, sub, content, err);
      } else {
        BAD(err, param, "%s.type: '%.40s' is not supported in a tool_result (text, image)", sub, t);
        rc = -1;
      }
      if (rc) {
        json_decref(content);
        return NULL;
      }
    }
  } else {
    BAD(err, param, "%s.content: must be a string or an array of content blocks", path);
    return NULL;
  }
  json_t *m = json_pack("{s:s, s:O, s:o}", "role", "tool", "tool_call_id", id, "content", content);
  json_t *name = json_object_get(names, json_string_value(id));
  if (m && name) json_object_set(m, "name", name);
  return m;
}

/* A tool_use block of an assistant message → an OpenAI tool call ({id, type, function: {name,
 * arguments: the input object}}); its name is remembered by id for the tool_result. */
static json_t *tool_use_block(const json_t *b, json_t *names, const char *param, const char *path,
                              api_error *err) {
  static const char *const keys[] = {"type", "id", "name", "input", "cache_control", NULL};
  if (only_keys(b, keys, param, path, err) || check_cache_control(b, param, path, err)) return NULL;
  json_t *id = json_object_get(b, "id"), *name = json_object_get(b, "name"),
         *input = json_object_get(b, "input");
  if (!json_is_string(id) || json_string_length(id) == 0) {
    BAD(err, param, "%s.id: must be a non-empty string", path);
    return NULL;
  }
  if (!json_is_string(name) || json_string_length(name) == 0) {
    BAD(err, param, "%s.name: must be a non-empty string", path);
    return NULL;
  }
  if (!json_is_object(input)) {
    BAD(err, param, "%s.input: must be an object", path);
    return NULL;
  }
  json_object_set(names, json_string_value(id), name);
  return json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", id, "type", "function", "function", "name",
                   name, "arguments", input);
}

/* A thinking block of an assistant message: its text is appended to reasoning. The signature is
 * accepted and not checked (a local model's reasoning is not signed). */
static int thinking_block(const json_t *b, const char *param, const char *path, sy_buf *reasoning,
                          api_error *err) {
  static const char *const keys[] = {"type", "thinking", "signature", NULL};
  if (only_keys(b, keys, param, path, err)) return -1;
  json_t *t = json_object_get(b, "thinking"), *sig = opt(b, "signature");
  if (!json_is_string(t)) {
    BAD(err, param, "%s.thinking: must be a string", path);
    return -1;
  }
  if (sig && !json_is_string(sig)) {
    BAD(err, param, "%s.signature: must be a string", path);
    return -1;
  }
  return sy_buf_append(reasoning, json_string_value(t), json_string_length(t));
}

/* One message of "messages" (index i) appended to out as OpenAI messages: a user message becomes
 * its tool_result blocks as tool messages, then one user message of its text and images (when it
 * has any); an assistant message becomes one message with content (text), reasoning_content
 * (thinking) and tool_calls (tool_use). names: tool_use ids → names so far. */
static int one_message(const json_t *m, size_t i, json_t *names, json_t *out, api_error *err) {
  static const char *const keys[] = {"role", "content", NULL};
  char path[64];
  snprintf(path, sizeof path, "messages.%zu", i);
  if (!json_is_object(m)) {
    BAD(err, "messages", "%s: must be an object with 'role' and 'content'", path);
    return -1;
  }
  if (only_keys(m, keys, "messages", path, err)) return -1;
  const char *role = json_string_value(json_object_get(m, "role"));
  if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
    BAD(err, "messages",
        "%s.role: must be \"user\" or \"assistant\" (the system prompt goes in "
        "'system')",
        path);
    return -1;
  }
  bool user = role[0] == 'u';
  json_t *c = json_object_get(m, "content");
  if (json_is_string(c)) {
    json_array_append_new(out, json_pack("{s:s, s:O}", "role", role, "content", c));
    return 0;
  }
  if (!json_is_array(c) || json_array_size(c) == 0) {
    BAD(err, "messages", "%s.content: must be a string or a non-empty array of content blocks",
        path);
    return -1;
  }
  json_t *parts = json_array(), *calls = json_array();
  sy_buf reasoning = {0};
  size_t k;
  json_t *b;
  int rc = 0;
  json_array_foreach(c, k, b) {
    char sub[96];
    snprintf(sub, sizeof sub, "%s.content.%zu", path, k);
    const char *t = json_string_value(json_object_get(b, "type"));
    if (!json_is_object(b) || !t) {
      BAD(err, "messages", "%s: must be a content block with a 'type'", sub);
      rc = -1;
    } else if (strcmp(t, "text") == 0) {
      rc = text_block(b, "messages", sub, parts, err);
    } else if (strcmp(t, "image") == 0 && user) {
      rc = image_block(b, "messages", sub, parts, err);
    } else if (strcmp(t, "tool_result") == 0 && user) {
      json_t *tm = tool_result_block(b, names, "messages", sub, err);
      rc = tm ? json_array_append_new(out, tm) : -1;
    } else if (strcmp(t, "tool_use") == 0 && !user) {
      json_t *call = tool_use_block(b, names, "messages", sub, err);
      rc = call ? json_array_append_new(calls, call) : -1;
    } else if (strcmp(t, "thinking") == 0 && !user) {
      rc = thinking_block(b, "messages", sub, &reasoning, err);
    } else if (strcmp(t, "image") == 0 || strcmp(t, "tool_result") == 0 ||
               strcmp(t, "tool_use") == 0 || strcmp(t, "thinking") == 0) {
      BAD(err, "messages", "%s.type: a '%s' block belongs in %s message", sub, t,
          user ? "an assistant" : "a user");
      rc = -1;
    } else {
      BAD(err, "messages",
          "%s.type: '%.40s' is not supported (text, image, tool_use, tool_result, thinking)", sub,
          t);
      rc = -1;
    }
    if (rc) break;
  }
  if (rc == 0 && (json_array_size(parts) || (!user && (json_array_size(calls) || reasoning.len)))) {
    json_t *o = json_pack("{s:s}", "role", role);
    /* an assistant turn that only called tools has content null, as OpenAI sends it back */
    json_object_set(o, "content", json_array_size(parts) ? parts : json_null());
    if (json_array_size(calls)) json_object_set(o, "tool_calls", calls);
    if (reasoning.len)
      json_object_set_new(o, "reasoning_content", json_stringn(reasoning.data, reasoning.len));
    json_array_append_new(out, o);
  }
  json_decref(parts);
  json_decref(calls);
  sy_buf_free(&reasoning);
  return rc;
}

/* "system": a string, or an array of text blocks → the first OpenAI message. */
static int system_prompt(const json_t *req, json_t *out, api_error *err) {
  json_t *s = opt(req, "system");
  if (!s) return 0;
  if (json_is_string(s)) {
    json_array_append_new(out, json_pack("{s:s, s:O}", "role", "system", "content", s));
    return 0;
  }
  if (!json_is_array(s)) {
    BAD(err, "system", "system: must be a string or an array of text blocks");
    return -1;
  }
  json_t *parts = json_array();
  size_t i;
  json_t *b;
  json_array_foreach(s, i, b) {
    char path[48];
    snprintf(path, sizeof path, "system.%zu", i);
    const char *t = json_string_value(json_object_get(b, "type"));
    if (!json_is_object(b) || !t || strcmp(t, "text") != 0) {
      BAD(err, "system", "%s: must be a text block {\"type\": \"text\", \"text\"}", path);
      json_decref(parts);
      return -1;
    }
    if (text_block(b, "system", path, parts, err) != 0) {
      json_decref(parts);
      return -1;
    }
  }
  if (json_array_size(parts))
    json_array_append_new(out, json_pack("{s:s, s:o}", "role", "system", "content", parts));
  else
    json_decref(parts);
  return 0;
}

static int messages(const json_t *req, json_t *chat, api_error *err) {
  json_t *msgs = json_object_get(req, "messages");
  if (!msgs || json_is_null(msgs)) {
    BAD(err, "messages", "messages: Field required");
    return -1;
  }
  if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
    BAD(err, "messages", "messages: must be a non-empty array of messages");
    return -1;
  }
  json_t *out = json_array(), *names = json_object();
  int rc = system_prompt(req, out, err);
  size_t i;
  json_t *m;
  json_array_foreach(msgs, i, m) {
    if (rc || (rc = one_message(m, i, names, out, err)) != 0) break;
  }
  const char *last = json_string_value(json_object_get(json_array_get(msgs, i - 1), "role"));
  if (rc == 0 && last && strcmp(last, "assistant") == 0) {
    BAD(err, "messages",
        "messages.%zu: a last assistant message (a prefill to continue) is not supported; end "
        "with a user message",
        i - 1);
    rc = -1;
  }
  json_decref(names);
  if (rc) {
    json_decref(out);
    return -1;
  }
  json_object_set_new(chat, "messages", out);
  return 0;
}

/* Tool names as Anthropic allows them: 1..128 of letters, digits, '_' and '-'. The chat path's
 * own limit (64, '.' too) is checked after us. */
static bool tool_name_ok(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 64) return false;
  for (size_t i = 0; i < len; i++)
    if (!(isalnum((unsigned char)n[i]) || n[i] == '_' || n[i] == '-')) return false;
  return true;
}

/* "tools": client tools ({name, description?, input_schema, cache_control?, type?: "custom"}) →
 * OpenAI function tools. Anthropic's server tools (web search, bash, text editor, computer use…)
 * are refused: nothing here runs them. */
static int tools(const json_t *req, json_t *chat, api_error *err) {
  json_t *ts = opt(req, "tools");
  if (!ts) return 0;
  if (!json_is_array(ts) || json_array_size(ts) > ANTH_MAX_TOOLS) {
    BAD(err, "tools", "tools: must be an array of at most %d tools", ANTH_MAX_TOOLS);
    return -1;
  }
  static const char *const keys[] = {"type",
                                     "name",
                                     "description",
                                     "input_schema",
                                     "cache_control",
                                     "strict",
                                     "eager_input_streaming",
                                     "defer_loading",
                                     NULL};
  json_t *out = json_array();
  size_t i;
  json_t *t;
  json_array_foreach(ts, i, t) {
    char path[32];
    snprintf(path, sizeof path, "tools.%zu", i);
    json_t *type = opt(t, "type");
    const char *ty = json_string_value(type), *name = json_string_value(json_object_get(t, "name"));
    json_t *schema = json_object_get(t, "input_schema"), *desc = opt(t, "description");
    json_t *strict = opt(t, "strict"), *eager = opt(t, "eager_input_streaming"),
           *defer = opt(t, "defer_loading");
    if (!json_is_object(t)) {
      BAD(err, "tools", "%s: must be an object", path);
      goto fail;
    }
    if (type && (!ty || strcmp(ty, "custom") != 0)) {
      BAD(err, "tools",
          "%s.type: '%.40s' is not supported: only client tools (type \"custom\", or no type) "
          "are; server tools are not run here",
          path, ty ? ty : "(not a string)");
      goto fail;
    }
    if (only_keys(t, keys, "tools", path, err) || check_cache_control(t, "tools", path, err))
      goto fail;
    if (!name || !tool_name_ok(name)) {
      BAD(err, "tools", "%s.name: must be 1 to 64 letters, digits, underscores or dashes", path);
      goto fail;
    }
    for (size_t k = 0; k < i; k++)
      if (strcmp(name, json_string_value(json_object_get(json_array_get(ts, k), "name"))) == 0) {
        BAD(err, "tools", "%s.name: '%s' is used by tools.%zu too", path, name, k);
        goto fail;
      }
    const char *st = json_string_value(json_object_get(schema, "type"));
    if (!json_is_object(schema) || !st || strcmp(st, "object") != 0) {
      BAD(err, "tools", "%s.input_schema: must be a JSON schema object with \"type\": \"object\"",
          path);
      goto fail;
    }
    if (desc && !json_is_string(desc)) {
      BAD(err, "tools", "%s.description: must be a string", path);
      goto fail;
    }
    if ((strict && !json_is_boolean(strict)) || (eager && !json_is_boolean(eager)) ||
        (defer && !json_is_boolean(defer))) {
      BAD(err, "tools", "%s: strict, eager_input_streaming and defer_loading must be booleans",
          path);
      goto fail;
    }
    if (json_is_true(strict) || json_is_true(defer)) {
      BAD(err, "tools",
          "%s.%s: true is not supported (inputs are held to the schema only when tool_choice "
          "forces a call; tools are never loaded later)",
          path, json_is_true(strict) ? "strict" : "defer_loading");
      goto fail;
    }
    /* in OpenAI's order (name, description, parameters): the template writes the tools out
     * with tojson, so the order is part of the prompt */
    json_t *fn = json_pack("{s:s}", "name", name);
    if (desc) json_object_set(fn, "description", desc);
    json_object_set(fn, "parameters", schema);
    json_array_append_new(out, json_pack("{s:s, s:o}", "type", "function", "function", fn));
  }
  if (json_array_size(out)) json_object_set(chat, "tools", out);
  json_decref(out);
  return 0;
fail:
  json_decref(out);
  return -1;
}

/* "tool_choice": {type: auto|any|tool|none, name (tool), disable_parallel_tool_use?} → OpenAI's
 * "auto", "required", {type: "function", function: {name}}, "none", and parallel_tool_calls. */
static int tool_choice(const json_t *req, json_t *chat, api_error *err) {
  json_t *tc = opt(req, "tool_choice");
  if (!tc) return 0;
  const char *t = json_string_value(json_object_get(tc, "type"));
  static const char *const keys[] = {"type", "name", "disable_parallel_tool_use", NULL};
  if (!json_is_object(tc) || !t ||
      (strcmp(t, "auto") && strcmp(t, "any") && strcmp(t, "tool") && strcmp(t, "none"))) {
    BAD(err, "tool_choice",
        "tool_choice: must be {\"type\": \"auto\"|\"any\"|\"tool\"|\"none\"} (with \"name\" for "
        "\"tool\")");
    return -1;
  }
  if (only_keys(tc, keys, "tool_choice", "tool_choice", err)) return -1;
  json_t *dp = opt(tc, "disable_parallel_tool_use"), *name = opt(tc, "name");
  if (dp && !json_is_boolean(dp)) {
    BAD(err, "tool_choice", "tool_choice.disable_parallel_tool_use: must be a boolean");
    return -1;
  }
  if (dp && strcmp(t, "none") == 0) {
    BAD(err, "tool_choice", "tool_choice.disable_parallel_tool_use: not with type \"none\"");
    return -1;
  }
  size_t n_tools = json_array_size(json_object_get(chat, "tools"));
  if (t[0] == 't') {
    if (!json_is_string(name)) {
      BAD(err, "tool_choice", "tool_choice.name: required (a string) with type \"tool\"");
      return -1;
    }
    bool known = false;
    json_t *tl = json_object_get(chat, "tools");
    for (size_t k = 0; k < n_tools && !known; k++)
      known = json_equal(
          name, json_object_get(json_object_get(json_array_get(tl, k), "function"), "name"));
    if (!known) {
      BAD(err, "tool_choice", "tool_choice.name: '%.64s' is not one of 'tools'",
          json_string_value(name));
      return -1;
    }
    json_object_set_new(chat, "tool_choice",
                        json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name", name));
  } else {
    if (name) {
      BAD(err, "tool_choice", "tool_choice.name: only with type \"tool\"");
      return -1;
    }
    if (t[1] == 'n' && n_tools == 0) { /* "any" */
      BAD(err, "tool_choice", "tool_choice: type \"any\" needs 'tools'");
      return -1;
    }
    json_object_set_new(chat, "tool_choice",
                        json_string(t[1] == 'n'   ? "required"
                                    : t[0] == 'a' ? "auto"
                                                  : "none"));
  }
  if (json_is_true(dp) && n_tools) json_object_set_new(chat, "parallel_tool_calls", json_false());
  return 0;
}

/* "thinking": {type: enabled, budget_tokens} / {type: adaptive} turn the template's thinking on,
 * {type: disabled} (and no "thinking") off, as Anthropic's models do. budget_tokens is checked as
 * Anthropic checks it (≥ 1024, < max_tokens); max_tokens bounds the reasoning and the answer
 * together, there is no separate reasoning budget. */
static int thinking(const json_t *req, anth_kind kind, long long max_tokens, json_t *chat,
                    api_error *err) {
  json_t *th = opt(req, "thinking");
  bool on = false;
  if (th) {
    const char *t = json_string_value(json_object_get(th, "type"));
    static const char *const en_keys[] = {"type", "budget_tokens", "display", NULL};
    static const char *const adaptive_keys[] = {"type", "display", NULL};
    static const char *const disabled_keys[] = {"type", NULL};
    if (!json_is_object(th) || !t ||
        (strcmp(t, "enabled") && strcmp(t, "disabled") && strcmp(t, "adaptive"))) {
      BAD(err, "thinking",
          "thinking: must be {\"type\": \"enabled\", \"budget_tokens\"}, {\"type\": \"adaptive\"} "
          "or {\"type\": \"disabled\"}");
      return -1;
    }
    if (only_keys(th,
                  t[0] == 'e'   ? en_keys
                  : t[0] == 'a' ? adaptive_keys
                                : disabled_keys,
                  "thinking", "thinking", err))
      return -1;
    json_t *disp = opt(th, "display");
    if (disp && !(json_is_string(disp) && strcmp(json_string_value(disp), "summarized") == 0)) {
      BAD(err, "thinking",
          "thinking.display: only \"summarized\" is served (the reasoning comes back as the model "
          "wrote it)");
      return -1;
    }
    if (t[0] == 'e') {
      json_t *bt = json_object_get(th, "budget_tokens");
      long long b = json_is_integer(bt) ? (long long)json_integer_value(bt) : -1;
      if (b < ANTH_MIN_BUDGET) {
        BAD(err, "thinking", "thinking.budget_tokens: must be an integer >= %d", ANTH_MIN_BUDGET);
        return -1;
      }
      if (kind == ANTH_MESSAGES && b >= max_tokens) {
        BAD(err, "thinking", "thinking.budget_tokens: must be less than max_tokens (%lld)",
            max_tokens);
        return -1;
      }
    }
    on = t[0] != 'd';
  }
  json_object_set_new(chat, "chat_template_kwargs", json_pack("{s:b}", "enable_thinking", on));
  return 0;
}

/* "output_config": {effort?: low|medium|high|xhigh|max → reasoning_effort (xhigh and max as
 * high), format?: {type: "json_schema", schema} → response_format json_schema (a grammar)}. */
static int output_config(const json_t *req, json_t *chat, api_error *err) {
  json_t *oc = opt(req, "output_config");
  if (!oc) return 0;
  static const char *const keys[] = {"effort", "format", NULL};
  static const char *const fmt_keys[] = {"type", "schema", NULL};
  if (!json_is_object(oc)) {
    BAD(err, "output_config", "output_config: must be an object");
    return -1;
  }
  if (only_keys(oc, keys, "output_config", "output_config", err)) return -1;
  json_t *ef = opt(oc, "effort"), *fmt = opt(oc, "format");
  if (ef) {
    static const char *const names[] = {"low", "medium", "high", "xhigh", "max", NULL};
    const char *e = json_string_value(ef);
    if (!e || !key_in(e, names)) {
      BAD(err, "output_config", "output_config.effort: must be low, medium, high, xhigh or max");
      return -1;
    }
    json_object_set_new(chat, "reasoning_effort",
                        json_string(e[0] == 'x' || e[0] == 'm' ? "high" : e));
  }
  if (fmt) {
    const char *t = json_string_value(json_object_get(fmt, "type"));
    json_t *schema = json_object_get(fmt, "schema");
    if (!json_is_object(fmt) || !t || strcmp(t, "json_schema") != 0 || !json_is_object(schema)) {
      BAD(err, "output_config",
          "output_config.format: must be {\"type\": \"json_schema\", \"schema\": {...}}");
      return -1;
    }
    if (only_keys(fmt, fmt_keys, "output_config", "output_config.format", err)) return -1;
    json_object_set_new(chat, "response_format",
                        json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema",
                                  "name", "output", "schema", schema));
  }
  return 0;
}

/* An optional number in [lo, hi] copied under the same name. */
static int number(const json_t *req, const char *name, double lo, double hi, json_t *chat,
                  api_error *err) {
  json_t *v = opt(req, name);
  if (!v) return 0;
  double d = json_is_number(v) ? json_number_value(v) : NAN;
  if (!(d >= lo && d <= hi)) {
    BAD(err, name, "%s: must be a number between %g and %g", name, lo, hi);
    return -1;
  }
  json_object_set_new(chat, name, json_real(d));
  return 0;
}

/* An optional integer in [lo, hi] (5.0 taken as 5): 1 set (*out), 0 absent, -1 bad. */
static int integer(const json_t *req, const char *name, long long lo, long long hi, long long *out,
                   api_error *err) {
  json_t *v = opt(req, name);
  if (!v) return 0;
  double d = json_is_real(v) ? json_real_value(v) : 0;
  bool integral = json_is_integer(v) || (json_is_real(v) && d == floor(d) && fabs(d) < 9e15);
  long long x = json_is_integer(v) ? (long long)json_integer_value(v) : integral ? (long long)d : 0;
  if (!integral || x < lo || x > hi) {
    BAD(err, name, "%s: must be an integer between %lld and %lld", name, lo, hi);
    return -1;
  }
  *out = x;
  return 1;
}

static int stop_sequences(const json_t *req, json_t *chat, api_error *err) {
  json_t *ss = opt(req, "stop_sequences");
  if (!ss) return 0;
  if (!json_is_array(ss) || json_array_size(ss) > ANTH_MAX_STOP) {
    BAD(err, "stop_sequences", "stop_sequences: must be an array of at most %d strings",
        ANTH_MAX_STOP);
    return -1;
  }
  size_t i;
  json_t *s;
  json_array_foreach(ss, i, s) {
    if (!json_is_string(s) || json_string_length(s) == 0 ||
        json_string_length(s) > ANTH_MAX_STOP_LEN) {
      BAD(err, "stop_sequences",
          "stop_sequences.%zu: must be a non-empty string of at most %d "
          "bytes",
          i, ANTH_MAX_STOP_LEN);
      return -1;
    }
  }
  if (json_array_size(ss)) json_object_set(chat, "stop", ss);
  return 0;
}

/* metadata {user_id?}: accepted (nothing here is per user). service_tier, speed: one tier, one
 * speed. cache_control (automatic caching): as on a block. */
static int accepted(const json_t *req, api_error *err) {
  json_t *md = opt(req, "metadata"), *tier = opt(req, "service_tier"), *sp = opt(req, "speed");
  static const char *const md_keys[] = {"user_id", NULL};
  if (md) {
    json_t *u = opt(md, "user_id");
    if (!json_is_object(md) || (u && (!json_is_string(u) || json_string_length(u) > 256))) {
      BAD(err, "metadata", "metadata: must be {\"user_id\"?: a string of at most 256 bytes}");
      return -1;
    }
    if (only_keys(md, md_keys, "metadata", "metadata", err)) return -1;
  }
  const char *t = json_string_value(tier);
  if (tier && (!t || (strcmp(t, "auto") != 0 && strcmp(t, "standard_only") != 0))) {
    BAD(err, "service_tier", "service_tier: must be \"auto\" or \"standard_only\"");
    return -1;
  }
  const char *s = json_string_value(sp);
  if (sp && (!s || strcmp(s, "standard") != 0)) {
    BAD(err, "speed", "speed: only \"standard\" is served here");
    return -1;
  }
  return check_cache_control(req, "cache_control", "", err);
}

json_t *anth_to_chat(const json_t *req, anth_kind kind, api_error *err) {
  static const char *const msg_keys[] = {
      "model",       "messages",     "max_tokens",    "system", "stop_sequences", "stream",
      "temperature", "top_p",        "top_k",         "tools",  "tool_choice",    "thinking",
      "metadata",    "service_tier", "output_config", "speed",  "cache_control",  NULL};
  static const char *const count_keys[] = {"model",         "messages", "system",        "tools",
                                           "tool_choice",   "thinking", "output_config", "speed",
                                           "cache_control", NULL};
  if (!json_is_object(req)) {
    BAD(err, NULL, "the request body must be a JSON object");
    return NULL;
  }
  if (only_keys(req, kind == ANTH_MESSAGES ? msg_keys : count_keys, NULL, "", err)) return NULL;
  json_t *chat = json_object();
  json_t *model = json_object_get(req, "model");
  if (model) json_object_set(chat, "model", model);
  long long max_tokens = 0, top_k;
  int r;
  if (kind == ANTH_MESSAGES) {
    json_t *mt = opt(req, "max_tokens");
    if (!mt) {
      BAD(err, "max_tokens", "max_tokens: Field required");
      goto fail;
    }
    if (integer(req, "max_tokens", 1, 1 << 24, &max_tokens, err) < 0) goto fail;
    json_object_set_new(chat, "max_tokens", json_integer(max_tokens));
    json_t *st = opt(req, "stream");
    if (st && !json_is_boolean(st)) {
      BAD(err, "stream", "stream: must be a boolean");
      goto fail;
    }
    if (st) json_object_set(chat, "stream", st);
    if (!opt(req, "temperature")) json_object_set_new(chat, "temperature", json_real(1.0));
    if (number(req, "temperature", 0, 1, chat, err) || number(req, "top_p", 0, 1, chat, err))
      goto fail;
    if ((r = integer(req, "top_k", 0, 1 << 20, &top_k, err)) < 0) goto fail;
    if (r) json_object_set_new(chat, "top_k", json_integer(top_k));
    if (stop_sequences(req, chat, err)) goto fail;
  }
  if (accepted(req, err) || messages(req, chat, err) || tools(req, chat, err) ||
      tool_choice(req, chat, err) || thinking(req, kind, max_tokens, chat, err) ||
      output_config(req, chat, err))
    goto fail;
  return chat;
fail:
  json_decref(chat);
  return NULL;
}

/* ---- the answer ---- */

const char *anth_stop_reason(const json_t *done) {
  const char *f = json_string_value(json_object_get(done, "finish_reason"));
  if (f && strcmp(f, "length") == 0) return "max_tokens";
  if (f && strcmp(f, "tool_calls") == 0) return "tool_use";
  if (f && strcmp(f, "stop") == 0 && json_is_string(json_object_get(done, "stop")))
    return "stop_sequence";
  return "end_turn";
}

void anth_tool_id(const char *call_id, char *out, size_t len) {
  if (!call_id) call_id = "";
  snprintf(out, len, "toolu_%s", strncmp(call_id, "call_", 5) == 0 ? call_id + 5 : call_id);
}

static long long jint(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

json_t *anth_usage(const json_t *done) {
  long long p = jint(done, "prompt_tokens"), c = jint(done, "cached_tokens");
  if (c < 0 || c > p) c = 0;
  return json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", (json_int_t)(p - c),
                   "cache_creation_input_tokens", (json_int_t)0, "cache_read_input_tokens",
                   (json_int_t)c, "output_tokens", (json_int_t)jint(done, "completion_tokens"));
}

typedef enum block_kind { B_NONE = 0, B_TEXT, B_THINKING, B_TOOL } block_kind;

struct anth_out {
  char id[64];
  char *model;
  bool stream;
  bool started; /* message_start written */
  bool ended;   /* done or error seen */
  block_kind open;
  int index;       /* the open block's index (blocks so far - 1) */
  int tool_index;  /* the worker's index of the open tool call */
  json_t *content; /* whole: the blocks so far (a tool_use block's input still a string) */
  json_t *done;    /* whole: the done frame (a copy) */
  api_error err;   /* the worker's error */
};

anth_out *anth_out_new(const char *id, const char *model, bool stream) {
  anth_out *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  snprintf(o->id, sizeof o->id, "%s", id);
  o->model = strdup(model ? model : "");
  o->content = json_array();
  o->stream = stream;
  o->index = -1;
  o->tool_index = -1;
  if (!o->model || !o->content) {
    anth_out_free(o);
    return NULL;
  }
  return o;
}

void anth_out_free(anth_out *o) {
  if (!o) return;
  free(o->model);
  json_decref(o->content);
  json_decref(o->done);
  free(o);
}

/* One event (its JSON stolen): written when streaming. */
static void put(anth_out *o, sy_buf *out, const char *name, json_t *data) {
  if (o->stream && data) sse_append_event(out, name, data);
  json_decref(data);
}

static void message_start(anth_out *o, sy_buf *out) {
  if (o->started) return;
  o->started = true;
  put(o, out, "message_start",
      json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i, s:i, s:i}}}", "type",
                "message_start", "message", "id", o->id, "type", "message", "role", "assistant",
                "model", o->model, "content", "stop_reason", "stop_sequence", "usage",
                "input_tokens", 0, "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0,
                "output_tokens", 0));
  put(o, out, "ping", json_pack("{s:s}", "type", "ping"));
}

static void block_stop(anth_out *o, sy_buf *out) {
  if (o->open == B_NONE) return;
  if (o->open == B_THINKING) /* the signature field Anthropic's clients expect: empty, nothing
                                here signs a local model's reasoning */
    put(o, out, "content_block_delta",
        json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta", "index", o->index,
                  "delta", "type", "signature_delta", "signature", ""));
  put(o, out, "content_block_stop",
      json_pack("{s:s, s:i}", "type", "content_block_stop", "index", o->index));
  o->open = B_NONE;
  o->tool_index = -1;
}

/* Start a block of kind k (block: its content_block, stolen), closing the open one. */
static void block_start(anth_out *o, sy_buf *out, block_kind k, json_t *block) {
  block_stop(o, out);
  o->open = k;
  o->index++;
  if (!o->stream && block) json_array_append(o->content, block);
  put(o, out, "content_block_start",
      json_pack("{s:s, s:i, s:o}", "type", "content_block_start", "index", o->index,
                "content_block", block ? block : json_object()));
}

/* A piece of the open block: streamed as a delta of dtype carrying key: text; collected onto the
 * block's field (a tool_use block's "input" is the arguments text until the end). */
static void block_piece(anth_out *o, sy_buf *out, const char *dtype, const char *key,
                        const char *field, const char *text, size_t len) {
  if (len == 0) return;
  if (!o->stream) {
    json_t *b = json_array_get(o->content, json_array_size(o->content) - 1);
    const char *have = json_string_value(json_object_get(b, field));
    sy_buf t = {0};
    sy_buf_puts(&t, have ? have : "");
    sy_buf_append(&t, text, len);
    json_object_set_new(b, field, json_stringn(t.data ? t.data : "", t.len));
    sy_buf_free(&t);
    return;
  }
  put(o, out, "content_block_delta",
      json_pack("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta", "index", o->index,
                "delta", "type", dtype, key, text, len));
}

static void on_text(anth_out *o, sy_buf *out, const json_t *t) {
  if (!json_is_string(t) || json_string_length(t) == 0) return;
  if (o->open != B_TEXT)
    block_start(o, out, B_TEXT, json_pack("{s:s, s:s}", "type", "text", "text", ""));
  block_piece(o, out, "text_delta", "text", "text", json_string_value(t), json_string_length(t));
}

static void on_reasoning(anth_out *o, sy_buf *out, const json_t *t) {
  if (!json_is_string(t) || json_string_length(t) == 0) return;
  if (o->open != B_THINKING)
    block_start(o, out, B_THINKING,
                json_pack("{s:s, s:s, s:s}", "type", "thinking", "thinking", "", "signature", ""));
  block_piece(o, out, "thinking_delta", "thinking", "thinking", json_string_value(t),
              json_string_length(t));
}

/* OpenAI-shaped tool-call deltas: {index, id, function: {name, arguments}} starts a call, {index,
 * function: {arguments}} continues the open one. */
static void on_tool_calls(anth_out *o, sy_buf *out, const json_t *calls) {
  size_t i;
  json_t *c;
  json_array_foreach(calls, i, c) {
    json_t *idx = json_object_get(c, "index"), *fn = json_object_get(c, "function");
    const char *id = json_string_value(json_object_get(c, "id"));
    json_t *args = json_object_get(fn, "arguments");
    int k = json_is_integer(idx) ? (int)json_integer_value(idx) : -1;
    if (id) {
      const char *name = json_string_value(json_object_get(fn, "name"));
      char tid[96];
      anth_tool_id(id, tid, sizeof tid);
      block_start(
          o, out, B_TOOL,
          json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id", tid, "name", name ? name : "",
                    "input", o->stream ? json_object() : json_string("")));
      o->tool_index = k;
    } else if (o->open != B_TOOL || k != o->tool_index) {
      continue; /* arguments of no open call: nothing to add them to */
    }
    if (json_is_string(args))
      block_piece(o, out, "input_json_delta", "partial_json", "input", json_string_value(args),
                  json_string_length(args));
  }
}

bool anth_out_event(anth_out *o, const char *op, const json_t *hdr, sy_buf *out) {
  if (o->ended || !op) return o->ended;
  if (strcmp(op, "delta") == 0) {
    message_start(o, out);
    json_t *d = json_object_get(hdr, "delta");
    if (json_is_object(d)) {
      on_reasoning(o, out, json_object_get(d, "reasoning_content"));
      json_t *tc = json_object_get(d, "tool_calls");
      if (json_is_array(tc)) on_tool_calls(o, out, tc);
    }
    on_text(o, out, json_object_get(hdr, "text"));
    return false;
  }
  if (strcmp(op, "done") == 0) {
    message_start(o, out);
    block_stop(o, out);
    json_t *sseq = json_object_get(hdr, "stop");
    const char *reason = anth_stop_reason(hdr);
    put(o, out, "message_delta",
        json_pack("{s:s, s:{s:s, s:o}, s:o}", "type", "message_delta", "delta", "stop_reason",
                  reason, "stop_sequence",
                  strcmp(reason, "stop_sequence") == 0 ? json_copy(sseq) : json_null(), "usage",
                  anth_usage(hdr)));
    put(o, out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    o->done = json_deep_copy(hdr);
    o->ended = true;
    return true;
  }
  if (strcmp(op, "error") == 0) {
    api_error_from_worker(hdr, &o->err);
    put(o, out, "error", api_error_anthropic_json(&o->err));
    o->ended = true;
    return true;
  }
  return false;
}

json_t *anth_out_message(anth_out *o, api_error *err) {
  if (!o->done) {
    if (o->err.status)
      *err = o->err;
    else
      API_SERVER(err, "worker_error", "the answer ended without a result");
    return NULL;
  }
  /* a tool_use block's input: the arguments the parser checked, as JSON */
  size_t i;
  json_t *b;
  json_array_foreach(o->content, i, b) {
    json_t *in = json_object_get(b, "input");
    if (!json_is_string(in)) continue;
    json_t *v = json_string_length(in)
                    ? json_loadb(json_string_value(in), json_string_length(in), 0, NULL)
                    : json_object();
    json_object_set_new(b, "input", v ? v : json_object());
  }
  const char *reason = anth_stop_reason(o->done);
  json_t *sseq = json_object_get(o->done, "stop");
  return json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:o, s:o}", "id", o->id, "type", "message",
                   "role", "assistant", "model", o->model, "content", o->content, "stop_reason",
                   reason, "stop_sequence",
                   strcmp(reason, "stop_sequence") == 0 ? json_copy(sseq) : json_null(), "usage",
                   anth_usage(o->done));
}
