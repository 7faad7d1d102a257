/* api_parse.c — see api_parse.h. Every check here answers a hostile body with a precise 400;
 * nothing here may crash on any JSON value in any field. */
#include "parse/api_parse.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "buf.h"
#include "media/audio.h"
#include "media/base64.h"

json_t *api_parse_body(const char *body, size_t len, api_error *err) {
  json_error_t je;
  json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    API_BAD(err, NULL, "invalid_json",
            "We could not parse the JSON body of your request: %s (line %d, column %d)", je.text,
            je.line, je.column);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    API_BAD(err, NULL, "invalid_json", "The request body must be a JSON object");
    return NULL;
  }
  return j;
}

/* 404 model_not_found for name, listing the models. */
static void not_found(const matrix *mx, const char *name, api_error *err) {
  sy_buf names = {0};
  for (size_t i = 0; i < mx->n_models && names.len < 600; i++)
    sy_buf_printf(&names, "%s%s", i ? ", " : "", mx->models[i].name);
  api_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                "The model '%.200s' does not exist. Available models: %s", name,
                names.len ? names.data : "(none)");
  sy_buf_free(&names);
}

api_target_kind api_resolve(const matrix *mx, peers *pp, const json_t *req, api_target *t) {
  memset(t, 0, sizeof *t);
  json_t *jm = json_object_get(req, "model");
  const char *name = json_string_value(jm);
  if (!jm || json_is_null(jm)) {
    API_BAD(&t->err, "model", "missing_required_parameter", "you must provide a model parameter");
  } else if (!name) {
    API_BAD(&t->err, "model", "invalid_type", "'model' must be a string");
  } else if ((t->model = matrix_find(mx, name))) {
    t->kind = t->model->engine == MATRIX_ENGINE_EXTERNAL ? API_TARGET_EXTERNAL : API_TARGET_MODEL;
  } else {
    if ((t->router = matrix_find_router(mx, name)))
      t->kind = API_TARGET_ROUTER;
    else if ((t->pipeline = matrix_find_pipeline(mx, name)))
      t->kind = API_TARGET_PIPELINE;
    else if (strlen(name) < sizeof t->peer_model && (t->peer = peers_find(pp, name))) {
      t->kind = API_TARGET_PEER;
      snprintf(t->peer_model, sizeof t->peer_model, "%s", name);
    }
    not_found(mx, name, &t->err); /* a router, a pipeline or a peer's model is no model here */
  }
  return t->kind;
}

const matrix_model *api_target_model(const api_target *t, unsigned cap, const char *what,
                                     api_error *err) {
  if (t->kind != API_TARGET_MODEL && t->kind != API_TARGET_EXTERNAL) {
    *err = t->err;
    return NULL;
  }
  if (!(t->model->caps & cap)) {
    char caps[128];
    API_BAD(err, "model", "wrong_capability",
            "model '%s' does not support %s (its capabilities: %s)", t->model->name, what,
            matrix_caps_str(t->model->caps, caps, sizeof caps));
    return NULL;
  }
  return t->model;
}

const matrix_model *api_find_model(const matrix *mx, const json_t *req, unsigned cap,
                                   const char *what, api_error *err) {
  api_target t;
  api_resolve(mx, NULL, req, &t);
  return api_target_model(&t, cap, what, err);
}

/* The target of a parser: t, or req's "model" resolved into own. */
static const api_target *target_of(const matrix *mx, const api_target *t, const json_t *req,
                                   api_target *own) {
  if (t) return t;
  api_resolve(mx, NULL, req, own);
  return own;
}

/* Optional number field in [lo, hi]; copies it into msg under key (or the same name). */
static int opt_number(const json_t *req, const char *name, double lo, double hi, json_t *msg,
                      const char *key, api_error *err) {
  json_t *v = json_object_get(req, name);
  if (!v || json_is_null(v)) return 0;
  double d = json_is_number(v) ? json_number_value(v) : NAN;
  if (!json_is_number(v) || !(d >= lo && d <= hi)) {
    API_BAD(err, name, "invalid_value", "'%s' must be a number between %g and %g", name, lo, hi);
    return -1;
  }
  json_object_set_new(msg, key ? key : name, json_real(d));
  return 0;
}

static int opt_int(const json_t *req, const char *name, long long lo, long long hi, long long *out,
                   api_error *err) {
  json_t *v = json_object_get(req, name);
  if (!v || json_is_null(v)) return 0;
  /* 5.0 is accepted as 5 (some clients send floats); 5.5 is not. Range-check a real before
   * converting it: a cast of 1e300 to long long is undefined. */
  double d = json_is_real(v) ? json_real_value(v) : 0;
  bool integral = json_is_integer(v) || (json_is_real(v) && d == floor(d) && fabs(d) < 9e15);
  long long x = json_is_integer(v) ? (long long)json_integer_value(v) : integral ? (long long)d : 0;
  if (!integral || x < lo || x > hi) {
    API_BAD(err, name, "invalid_value", "'%s' must be an integer between %lld and %lld", name, lo,
            hi);
    return -1;
  }
  *out = x;
  return 1;
}

static int opt_bool(const json_t *req, const char *name, bool *out, api_error *err) {
  json_t *v = json_object_get(req, name);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) {
    API_BAD(err, name, "invalid_type", "'%s' must be a boolean", name);
    return -1;
  }
  *out = json_is_true(v);
  return 1;
}

/* How many of the media are images (strings) or audio clips (objects). */
static size_t media_count(const json_t *media, bool audio) {
  size_t i, n = 0;
  json_t *x;
  json_array_foreach(media, i, x) n += audio ? json_is_object(x) : json_is_string(x);
  return n;
}

/* An image_url part of a vision model's message: the marker goes into the text (no separator
 * around it), the URL into urls. */
static int content_image(const json_t *part, size_t idx, size_t i, json_t *urls, sy_buf *out,
                         api_error *err) {
  json_t *iu = json_object_get(part, "image_url");
  json_t *url =
      json_is_object(iu) ? json_object_get(iu, "url") : iu; /* {url, detail} or a bare string */
  json_t *detail = json_object_get(iu, "detail");
  if (!json_is_string(url) || json_string_length(url) == 0 ||
      (detail && !json_is_null(detail) && !json_is_string(detail))) {
    API_BAD(err, "messages", "invalid_value",
            "messages[%zu].content[%zu].image_url must be {url: string, detail?: string}", idx, i);
    return -1;
  }
  if (media_count(urls, false) >= API_MAX_IMAGES) {
    API_BAD(err, "messages", "invalid_value", "at most %d images per request", API_MAX_IMAGES);
    return -1;
  }
  json_array_append(urls, url);
  return sy_buf_puts(out, API_IMAGE_MARKER);
}

/* An input_audio part of an audio model's message ({data: base64, format}): the same marker goes
 * into the text, {data, format} into media (decoded by the daemon before the worker sees it). */
static int content_audio(const json_t *part, size_t idx, size_t i, json_t *media, sy_buf *out,
                         api_error *err) {
  json_t *ia = json_object_get(part, "input_audio");
  json_t *data = json_object_get(ia, "data"), *format = json_object_get(ia, "format");
  if (!json_is_object(ia) || !json_is_string(data) || json_string_length(data) == 0 ||
      (format && !json_is_null(format) && !json_is_string(format))) {
    API_BAD(err, "messages", "invalid_value",
            "messages[%zu].content[%zu].input_audio must be {data: base64 string, format: string}",
            idx, i);
    return -1;
  }
  if (media_count(media, true) >= API_MAX_AUDIO) {
    API_BAD(err, "messages", "invalid_value", "at most %d audio parts per request", API_MAX_AUDIO);
    return -1;
  }
  json_array_append_new(media, json_pack("{s:O, s:s}", "data", data, "format",
                                         json_is_string(format) ? json_string_value(format) : ""));
  return sy_buf_puts(out, API_IMAGE_MARKER);
}

/* The text of a message's content: a string, null, or an array of {type:"text", text} parts (and
 * {type:"image_url"} parts for a vision model, collected into urls). */
static int content_text(const json_t *content, size_t idx, const matrix_model *m, json_t *urls,
                        sy_buf *out, api_error *err) {
  if (json_is_null(content)) return 0;
  if (json_is_string(content))
    return sy_buf_append(out, json_string_value(content), json_string_length(content));
  if (!json_is_array(content)) {
    API_BAD(err, "messages", "invalid_type",
            "messages[%zu].content must be a string or an array of content parts", idx);
    return -1;
  }
  size_t i;
  json_t *part;
  bool after_text = false; /* "\n" goes only between two text parts */
  json_array_foreach(content, i, part) {
    const char *type = json_string_value(json_object_get(part, "type"));
    if (!json_is_object(part) || !type) {
      API_BAD(err, "messages", "invalid_type",
              "messages[%zu].content[%zu] must be an object with a 'type'", idx, i);
      return -1;
    }
    if (strcmp(type, "image_url") == 0 && (m->caps & MATRIX_CAP_VISION)) {
      if (content_image(part, idx, i, urls, out, err) != 0) return -1;
      after_text = false;
      continue;
    }
    if (strcmp(type, "input_audio") == 0 && (m->caps & MATRIX_CAP_AUDIO)) {
      if (content_audio(part, idx, i, urls, out, err) != 0) return -1;
      after_text = false;
      continue;
    }
    if (strcmp(type, "text") != 0) {
      unsigned mc = m->caps & (MATRIX_CAP_VISION | MATRIX_CAP_AUDIO);
      API_BAD(err, "messages", "unsupported_content",
              "messages[%zu].content[%zu] has type '%.40s'; model '%s' accepts only text%s content",
              idx, i, type, m->name,
              mc == (MATRIX_CAP_VISION | MATRIX_CAP_AUDIO) ? ", image_url and input_audio"
              : mc == MATRIX_CAP_VISION                    ? " and image_url"
              : mc == MATRIX_CAP_AUDIO                     ? " and input_audio"
                                                           : "");
      return -1;
    }
    json_t *t = json_object_get(part, "text");
    if (!json_is_string(t)) {
      API_BAD(err, "messages", "invalid_type", "messages[%zu].content[%zu].text must be a string",
              idx, i);
      return -1;
    }
    if ((after_text && out->len && sy_buf_puts(out, "\n") != 0) ||
        sy_buf_append(out, json_string_value(t), json_string_length(t)) != 0)
      return -1;
    after_text = true;
  }
  return 0;
}

/* An assistant message's tool_calls, checked and copied in OpenAI's shape (arguments as given:
 * a JSON string, or an object some clients send). */
static json_t *parse_tool_calls(const json_t *tc, size_t idx, api_error *err) {
  if (!json_is_array(tc) || json_array_size(tc) > API_MAX_TOOLS) {
    API_BAD(err, "messages", "invalid_type",
            "messages[%zu].tool_calls must be an array of at most %d calls", idx, API_MAX_TOOLS);
    return NULL;
  }
  json_t *out = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(tc, i, c) {
    json_t *fn = json_object_get(c, "function");
    json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments"),
           *id = json_object_get(c, "id");
    if (!json_is_object(c) || !json_is_object(fn) || !json_is_string(name) ||
        json_string_length(name) == 0 || !(json_is_string(args) || json_is_object(args)) ||
        (id && !json_is_string(id))) {
      API_BAD(err, "messages", "invalid_value",
              "messages[%zu].tool_calls[%zu] must be {id, type: \"function\", function: {name, "
              "arguments}}",
              idx, i);
      json_decref(out);
      return NULL;
    }
    json_array_append_new(
        out, json_pack("{s:s, s:s, s:{s:O, s:O}}", "id", id ? json_string_value(id) : "", "type",
                       "function", "function", "name", name, "arguments", args));
  }
  return out;
}

static json_t *parse_messages(const json_t *req, const matrix_model *m, json_t *urls,
                              api_error *err) {
  json_t *msgs = json_object_get(req, "messages");
  if (!msgs) {
    API_BAD(err, "messages", "missing_required_parameter",
            "you must provide a 'messages' parameter");
    return NULL;
  }
  if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
    API_BAD(err, "messages", "invalid_value", "'messages' must be a non-empty array");
    return NULL;
  }
  static const char *roles[] = {"system", "developer", "user", "assistant", "tool"};
  json_t *out = json_array();
  size_t i;
  json_t *msg;
  json_array_foreach(msgs, i, msg) {
    const char *role = json_string_value(json_object_get(msg, "role"));
    if (!json_is_object(msg) || !role) {
      API_BAD(err, "messages", "invalid_type",
              "messages[%zu] must be an object with a string 'role'", i);
      goto fail;
    }
    size_t r = 0;
    while (r < 5 && strcmp(role, roles[r]) != 0) r++;
    if (r == 5) {
      API_BAD(err, "messages", "invalid_value",
              "messages[%zu].role '%.40s' is not one of system, developer, user, assistant, tool",
              i, role);
      goto fail;
    }
    json_t *content = json_object_get(msg, "content");
    if (!content && r != 3) {
      API_BAD(err, "messages", "missing_required_parameter", "messages[%zu] has no 'content'", i);
      goto fail;
    }
    sy_buf text = {0};
    if (content && content_text(content, i, m, urls, &text, err) != 0) {
      sy_buf_free(&text);
      goto fail;
    }
    /* an assistant turn that only called tools has content null, as OpenAI sends it back */
    bool null_content = r == 3 && (!content || json_is_null(content));
    json_t *o = json_pack("{s:s, s:o}", "role", r == 1 ? "system" : role, "content",
                          null_content ? json_null() : json_string(text.data ? text.data : ""));
    sy_buf_free(&text);
    if (!o || (!null_content && json_is_null(json_object_get(o, "content")))) {
      json_decref(o);
      API_BAD(err, "messages", "invalid_value", "messages[%zu].content is not valid UTF-8", i);
      goto fail;
    }
    json_array_append_new(out, o);
    if (r == 3) {
      json_t *tc = json_object_get(msg, "tool_calls"),
             *rc = json_object_get(msg, "reasoning_content");
      if (tc && !json_is_null(tc)) {
        json_t *calls = parse_tool_calls(tc, i, err);
        if (!calls) goto fail;
        if (json_array_size(calls))
          json_object_set_new(o, "tool_calls", calls);
        else
          json_decref(calls);
      }
      if (json_is_string(rc)) json_object_set(o, "reasoning_content", rc);
    }
    if (r == 4) {
      json_t *tid = json_object_get(msg, "tool_call_id"), *name = json_object_get(msg, "name");
      if (tid && !json_is_string(tid)) {
        API_BAD(err, "messages", "invalid_type", "messages[%zu].tool_call_id must be a string", i);
        goto fail;
      }
      if (tid) json_object_set(o, "tool_call_id", tid);
      if (json_is_string(name)) json_object_set(o, "name", name);
    }
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

/* A function name as OpenAI allows it: 1..64 of a-z A-Z 0-9 _ - (and . as some clients use). */
static bool tool_name_ok(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 64) return false;
  for (size_t i = 0; i < len; i++)
    if (!(isalnum((unsigned char)n[i]) || n[i] == '_' || n[i] == '-' || n[i] == '.')) return false;
  return true;
}

/* tools, tool_choice, parallel_tool_calls: checked, and passed to the worker (which renders them
 * with the model's template, parses its calls back, and constrains a forced call by a grammar). */
static int parse_tools(const json_t *req, json_t *msg, api_error *err) {
  json_t *tools = json_object_get(req, "tools"), *choice = json_object_get(req, "tool_choice");
  size_t n = 0;
  if (tools && !json_is_null(tools)) {
    if (!json_is_array(tools) || json_array_size(tools) > API_MAX_TOOLS) {
      API_BAD(err, "tools", "invalid_type", "'tools' must be an array of at most %d tools",
              API_MAX_TOOLS);
      return -1;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
      json_t *fn = json_object_get(t, "function");
      const char *type = json_string_value(json_object_get(t, "type"));
      const char *name = json_string_value(json_object_get(fn, "name"));
      json_t *params = json_object_get(fn, "parameters"),
             *desc = json_object_get(fn, "description");
      if (!json_is_object(t) || !type || strcmp(type, "function") != 0 || !json_is_object(fn)) {
        API_BAD(err, "tools", "invalid_value",
                "tools[%zu] must be {type: \"function\", function: {name, ...}}", i);
        return -1;
      }
      if (!name || !tool_name_ok(name)) {
        API_BAD(err, "tools", "invalid_value",
                "tools[%zu].function.name must be 1 to 64 letters, digits, underscores or dashes",
                i);
        return -1;
      }
      if ((params && !json_is_null(params) && !json_is_object(params)) ||
          (desc && !json_is_null(desc) && !json_is_string(desc))) {
        API_BAD(err, "tools", "invalid_type",
                "tools[%zu].function: 'parameters' must be an object, 'description' a string", i);
        return -1;
      }
      for (size_t k = 0; k < i; k++)
        if (strcmp(name, json_string_value(json_object_get(
                             json_object_get(json_array_get(tools, k), "function"), "name"))) ==
            0) {
          API_BAD(err, "tools", "invalid_value", "tools[%zu]: the function name '%s' is used twice",
                  i, name);
          return -1;
        }
    }
    n = json_array_size(tools);
    if (n) json_object_set(msg, "tools", tools);
  }
  if (choice && !json_is_null(choice)) {
    const char *cs = json_string_value(choice);
    const char *fname =
        json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
    if (cs && (strcmp(cs, "none") == 0 || strcmp(cs, "auto") == 0 || strcmp(cs, "required") == 0)) {
      if (strcmp(cs, "required") == 0 && n == 0) {
        API_BAD(err, "tool_choice", "invalid_value", "tool_choice 'required' needs 'tools'");
        return -1;
      }
    } else if (json_is_object(choice) && fname) {
      bool known = false;
      for (size_t k = 0; k < n && !known; k++)
        known =
            strcmp(fname, json_string_value(json_object_get(
                              json_object_get(json_array_get(tools, k), "function"), "name"))) == 0;
      if (!known) {
        API_BAD(err, "tool_choice", "invalid_value",
                "tool_choice names function '%.64s', which is not in 'tools'", fname);
        return -1;
      }
    } else {
      API_BAD(err, "tool_choice", "invalid_value",
              "'tool_choice' must be \"none\", \"auto\", \"required\" or {type: \"function\", "
              "function: {name}}");
      return -1;
    }
    json_object_set(msg, "tool_choice", choice);
  }
  bool parallel = true;
  if (opt_bool(req, "parallel_tool_calls", &parallel, err) < 0) return -1;
  if (n) json_object_set_new(msg, "parallel_tool_calls", json_boolean(parallel));
  return 0;
}

/* response_format: text (nothing to do), json_object, json_schema {name, schema, strict}. */
static int parse_response_format(const json_t *req, json_t *msg, api_error *err) {
  json_t *rf = json_object_get(req, "response_format");
  if (!rf || json_is_null(rf)) return 0;
  const char *t = json_string_value(json_object_get(rf, "type"));
  if (!json_is_object(rf) || !t) {
    API_BAD(err, "response_format", "invalid_type",
            "'response_format' must be an object with a 'type'");
    return -1;
  }
  if (strcmp(t, "text") == 0) return 0;
  if (strcmp(t, "json_object") == 0) {
    json_object_set_new(msg, "response_format", json_pack("{s:s}", "type", "json_object"));
    return 0;
  }
  if (strcmp(t, "json_schema") == 0) {
    json_t *js = json_object_get(rf, "json_schema"), *schema = json_object_get(js, "schema");
    if (!json_is_object(js) || !(json_is_object(schema) || json_is_true(schema))) {
      API_BAD(err, "response_format", "invalid_value",
              "response_format json_schema needs 'json_schema': {name, schema: {...}, strict}");
      return -1;
    }
    json_object_set_new(msg, "response_format",
                        json_pack("{s:s, s:O}", "type", "json_schema", "schema", schema));
    return 0;
  }
  API_BAD(err, "response_format", "invalid_value",
          "response_format type must be text, json_object or json_schema");
  return -1;
}

/* Chat: "logprobs": bool and "top_logprobs": 0..20 alternatives. Completions: "logprobs": 0..5. */
static int parse_logprobs(const json_t *req, bool chat, json_t *msg, api_error *err) {
  json_t *lp = json_object_get(req, "logprobs");
  if (!lp || json_is_null(lp)) lp = NULL;
  long long top = 0;
  int r;
  if (chat) {
    bool on = false;
    if (opt_bool(req, "logprobs", &on, err) < 0) return -1;
    if ((r = opt_int(req, "top_logprobs", 0, 20, &top, err)) < 0) return -1;
    if (r && !on) {
      API_BAD(err, "top_logprobs", "invalid_value", "'top_logprobs' needs 'logprobs': true");
      return -1;
    }
    if (on) json_object_set_new(msg, "logprobs", json_integer(top));
    return 0;
  }
  if (!lp) return 0;
  if ((r = opt_int(req, "logprobs", 0, 5, &top, err)) < 0) return -1;
  json_object_set_new(msg, "logprobs", json_integer(top));
  return 0;
}

/* reasoning_effort (OpenAI) and chat_template_kwargs (llama-server, vLLM: e.g. enable_thinking):
 * handed to the template. */
static int parse_reasoning(const json_t *req, json_t *msg, api_error *err) {
  json_t *re = json_object_get(req, "reasoning_effort"),
         *kw = json_object_get(req, "chat_template_kwargs");
  if (re && !json_is_null(re)) {
    static const char *ok[] = {"none", "minimal", "low", "medium", "high"};
    const char *v = json_string_value(re);
    size_t k = 0;
    while (v && k < 5 && strcmp(v, ok[k]) != 0) k++;
    if (!v || k == 5) {
      API_BAD(err, "reasoning_effort", "invalid_value",
              "'reasoning_effort' must be none, minimal, low, medium or high");
      return -1;
    }
    json_object_set(msg, "reasoning_effort", re);
  }
  if (kw && !json_is_null(kw)) {
    if (!json_is_object(kw) || json_object_size(kw) > 64) {
      API_BAD(err, "chat_template_kwargs", "invalid_type",
              "'chat_template_kwargs' must be an object (at most 64 keys)");
      return -1;
    }
    json_object_set(msg, "chat_template_kwargs", kw);
  }
  return 0;
}

/* "keep_alive": seconds (integer; -1 = forever) or a duration string "30s", "5m", "2h", "-1", as
 * Ollama takes it. 0 = absent, 1 = set, -1 = invalid (err filled). */
static int parse_keep_alive(const json_t *req, int *out, api_error *err) {
  json_t *v = json_object_get(req, "keep_alive");
  if (!v || json_is_null(v)) return 0;
  long long secs = -2;
  if (json_is_integer(v)) {
    secs = (long long)json_integer_value(v);
  } else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < 24) {
    const char *sv = json_string_value(v);
    char *end;
    long long n = strtoll(sv, &end, 10);
    long long mul = !*end               ? 1
                    : !strcmp(end, "s") ? 1
                    : !strcmp(end, "m") ? 60
                    : !strcmp(end, "h") ? 3600
                                        : 0;
    if (end != sv && mul && (n >= 0 || (n == -1 && !*end)) && n <= (1LL << 31) / mul)
      secs = n * mul;
  }
  if (secs < -1 || secs > INT_MAX) {
    API_BAD(
        err, "keep_alive", "invalid_value",
        "'keep_alive' must be seconds (-1 = forever) or a duration like \"30s\", \"5m\", \"2h\"");
    return -1;
  }
  *out = (int)secs;
  return 1;
}

static int parse_stop(const json_t *req, json_t *msg, api_error *err) {
  json_t *v = json_object_get(req, "stop");
  if (!v || json_is_null(v)) return 0;
  json_t *arr = json_array();
  if (json_is_string(v)) {
    if (json_string_length(v) > 256) {
      json_decref(arr);
      API_BAD(err, "stop", "invalid_value", "'stop' must be at most 256 bytes");
      return -1;
    }
    if (json_string_length(v)) json_array_append(arr, v);
  } else if (json_is_array(v) && json_array_size(v) <= API_MAX_STOP) {
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
      if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) > 256) {
        json_decref(arr);
        API_BAD(err, "stop", "invalid_value",
                "stop[%zu] must be a non-empty string of at most 256 bytes", i);
        return -1;
      }
      json_array_append(arr, s);
    }
  } else {
    json_decref(arr);
    API_BAD(err, "stop", "invalid_value",
            "'stop' must be a string or an array of at most %d strings", API_MAX_STOP);
    return -1;
  }
  json_object_set_new(msg, "stop", arr);
  return 0;
}

/* Features of the OpenAI API this runtime does not implement yet: refuse clearly, never ignore. */
static int refuse_unsupported(const json_t *req, api_error *err) {
  long long n = 1;
  if (opt_int(req, "n", 1, 1, &n, err) < 0) {
    API_BAD(err, "n", "unsupported_parameter", "only n=1 is supported");
    return -1;
  }
  return 0;
}

int api_parse_generate(const matrix *mx, const api_target *t, const json_t *req, bool chat,
                       api_gen *out, api_error *err) {
  memset(out, 0, sizeof *out);
  out->chat = chat;
  unsigned cap = chat ? MATRIX_CAP_CHAT : MATRIX_CAP_COMPLETION;
  const char *what = chat ? "chat completions" : "text completions";
  api_target own;
  out->model = api_target_model(target_of(mx, t, req, &own), cap, what, err);
  if (!out->model) return -1;
  json_t *msg = json_pack("{s:s}", "op", "generate");
  out->msg = msg;
  if (refuse_unsupported(req, err) != 0) goto fail;
  if (chat) {
    out->media = json_array();
    json_t *msgs = out->media ? parse_messages(req, out->model, out->media, err) : NULL;
    if (!msgs) goto fail;
    json_object_set_new(msg, "messages", msgs);
    if (json_array_size(out->media) == 0) {
      json_decref(out->media);
      out->media = NULL;
    }
    if (parse_tools(req, msg, err) != 0 || parse_reasoning(req, msg, err) != 0) goto fail;
  } else {
    json_t *p = json_object_get(req, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0)))
      p = json_array_get(p, 0);
    if (!p) {
      API_BAD(err, "prompt", "missing_required_parameter", "you must provide a 'prompt' parameter");
      goto fail;
    }
    if (!json_is_string(p)) {
      API_BAD(err, "prompt", "invalid_type",
              "'prompt' must be a string (token arrays and several prompts are not supported)");
      goto fail;
    }
    json_object_set(msg, "prompt", p);
  }
  long long max_tokens = chat ? -1 : API_COMPLETIONS_DEFAULT_MAX_TOKENS, v;
  int r;
  if ((r = opt_int(req, "max_tokens", 1, 1 << 24, &v, err)) < 0) goto fail;
  if (r) max_tokens = v;
  if ((r = opt_int(req, "max_completion_tokens", 1, 1 << 24, &v, err)) < 0) goto fail;
  if (r) max_tokens = v;
  json_object_set_new(msg, "max_tokens", json_integer(max_tokens));
  if (opt_number(req, "temperature", 0, 2, msg, NULL, err) ||
      opt_number(req, "top_p", 0, 1, msg, NULL, err) ||
      opt_number(req, "min_p", 0, 1, msg, NULL, err) ||
      opt_number(req, "presence_penalty", -2, 2, msg, NULL, err) ||
      opt_number(req, "frequency_penalty", -2, 2, msg, NULL, err) ||
      opt_number(req, "repeat_penalty", 0, 10, msg, NULL, err))
    goto fail;
  if ((r = opt_int(req, "top_k", 0, 1 << 20, &v, err)) < 0) goto fail;
  if (r) json_object_set_new(msg, "top_k", json_integer(v));
  if ((r = opt_int(req, "seed", -(1LL << 62), 1LL << 62, &v, err)) < 0) goto fail;
  if (r) json_object_set_new(msg, "seed", json_integer(v & 0xffffffffLL));
  if (parse_stop(req, msg, err) != 0 || parse_response_format(req, msg, err) != 0 ||
      parse_logprobs(req, chat, msg, err) != 0)
    goto fail;
  if ((r = parse_keep_alive(req, &out->keep_alive_s, err)) < 0) goto fail;
  out->has_keep_alive = r == 1;
  bool ignore_eos = false;
  if ((r = opt_bool(req, "ignore_eos", &ignore_eos, err)) < 0) goto fail;
  if (r) json_object_set_new(msg, "ignore_eos", json_boolean(ignore_eos));
  bool cache_prompt = true; /* llama-server's field: false = decode the whole prompt again */
  if ((r = opt_bool(req, "cache_prompt", &cache_prompt, err)) < 0) goto fail;
  if (r) json_object_set_new(msg, "cache_prompt", json_boolean(cache_prompt));
  if (opt_bool(req, "stream", &out->stream, err) < 0) goto fail;
  json_t *so = json_object_get(req, "stream_options");
  if (so && !json_is_null(so)) {
    if (!json_is_object(so)) {
      API_BAD(err, "stream_options", "invalid_type", "'stream_options' must be an object");
      goto fail;
    }
    if (opt_bool(so, "include_usage", &out->include_usage, err) < 0) {
      err->param = "stream_options.include_usage";
      goto fail;
    }
  }
  return 0;
fail:
  api_gen_clear(out);
  return -1;
}

void api_gen_clear(api_gen *g) {
  json_decref(g->msg);
  g->msg = NULL;
  json_decref(g->media);
  g->media = NULL;
}

int api_parse_embed(const matrix *mx, const api_target *t, const json_t *req, api_embed *out,
                    api_error *err) {
  memset(out, 0, sizeof *out);
  api_target own;
  out->model = api_target_model(target_of(mx, t, req, &own), MATRIX_CAP_EMBED, "embeddings", err);
  if (!out->model) return -1;
  json_t *in = json_object_get(req, "input");
  if (!in || json_is_null(in)) {
    API_BAD(err, "input", "missing_required_parameter", "you must provide an 'input' parameter");
    return -1;
  }
  json_t *arr = json_array();
  if (json_is_string(in)) {
    json_array_append(arr, in);
  } else if (json_is_array(in) && json_array_size(in) >= 1 &&
             json_array_size(in) <= API_MAX_EMBED_INPUTS) {
    size_t i;
    json_t *s;
    json_array_foreach(in, i, s) {
      if (!json_is_string(s)) {
        json_decref(arr);
        API_BAD(err, "input", "invalid_type",
                "input[%zu] must be a string (token arrays are not supported)", i);
        return -1;
      }
      json_array_append(arr, s);
    }
  } else {
    json_decref(arr);
    API_BAD(err, "input", "invalid_value",
            "'input' must be a string or an array of 1 to %d strings", API_MAX_EMBED_INPUTS);
    return -1;
  }
  size_t i;
  json_t *s;
  json_array_foreach(arr, i, s) {
    if (json_string_length(s) == 0) {
      json_decref(arr);
      API_BAD(err, "input", "invalid_value",
              "input[%zu] is empty; embeddings need at least one character", i);
      return -1;
    }
  }
  json_t *ef = json_object_get(req, "encoding_format");
  if (ef && !json_is_null(ef)) {
    const char *f = json_string_value(ef);
    if (!f || (strcmp(f, "float") != 0 && strcmp(f, "base64") != 0)) {
      json_decref(arr);
      API_BAD(err, "encoding_format", "invalid_value",
              "'encoding_format' must be \"float\" or \"base64\"");
      return -1;
    }
    out->base64 = strcmp(f, "base64") == 0;
  }
  int ka = parse_keep_alive(req, &out->keep_alive_s, err);
  if (ka < 0) {
    json_decref(arr);
    return -1;
  }
  out->has_keep_alive = ka == 1;
  json_t *dims = json_object_get(req, "dimensions");
  out->dimensions = 0;
  if (dims && !json_is_null(dims)) {
    /* the model's width is known once it answers: larger is refused then (embeddings.c) */
    if (!json_is_integer(dims) || json_integer_value(dims) < 1) {
      json_decref(arr);
      API_BAD(err, "dimensions", "invalid_value", "'dimensions' must be an integer of at least 1");
      return -1;
    }
    out->dimensions = json_integer_value(dims);
  }
  json_t *ins = json_object_get(req, "instruction");
  if (ins && !json_is_null(ins)) {
    const char *it = json_string_value(ins);
    if (!it || !*it || json_string_length(ins) > API_MAX_EMBED_INSTRUCTION ||
        strlen(it) != json_string_length(ins)) {
      json_decref(arr);
      API_BAD(err, "instruction", "invalid_value",
              "'instruction' must be a non-empty string of at most %d bytes",
              API_MAX_EMBED_INSTRUCTION);
      return -1;
    }
    /* each input becomes a query with the task's instruction before it */
    json_t *q = json_array();
    json_array_foreach(arr, i, s) {
      sy_buf b = {0};
      sy_buf_printf(&b, API_EMBED_INSTRUCT_FMT, it, json_string_value(s));
      json_t *qs = b.data ? json_stringn(b.data, b.len) : NULL;
      sy_buf_free(&b);
      if (!qs || json_array_append_new(q, qs) != 0) {
        json_decref(q);
        json_decref(arr);
        API_SERVER(err, "out_of_memory", "out of memory");
        return -1;
      }
    }
    json_decref(arr);
    arr = q;
  }
  out->n_inputs = json_array_size(arr);
  out->msg = json_pack("{s:s, s:o}", "op", "embed", "input", arr);
  return 0;
}

void api_embed_truncate(float *v, size_t keep) {
  double s = 0;
  for (size_t i = 0; i < keep; i++) s += (double)v[i] * v[i];
  if (s <= 0) return;
  double inv = 1.0 / sqrt(s);
  for (size_t i = 0; i < keep; i++) v[i] = (float)(v[i] * inv);
}

void api_embed_clear(api_embed *e) {
  json_decref(e->msg);
  e->msg = NULL;
}

/* The documents of a rerank request: 1..API_MAX_RERANK_DOCUMENTS, each a string or {text}. A new
 * array of the texts, or NULL + err (naming `name`, "documents" or TEI's "texts"). */
static json_t *rerank_documents(const json_t *docs, const char *name, api_error *err) {
  if (!docs || json_is_null(docs)) {
    API_BAD(err, "documents", "missing_required_parameter",
            "you must provide a 'documents' parameter");
    return NULL;
  }
  if (!json_is_array(docs) || json_array_size(docs) < 1 ||
      json_array_size(docs) > API_MAX_RERANK_DOCUMENTS) {
    API_BAD(err, name, "invalid_value", "'%s' must be an array of 1 to %d documents", name,
            API_MAX_RERANK_DOCUMENTS);
    return NULL;
  }
  json_t *arr = json_array();
  size_t i;
  json_t *d;
  json_array_foreach(docs, i, d) {
    json_t *text = json_is_object(d) ? json_object_get(d, "text") : d;
    if (!json_is_string(text)) {
      json_decref(arr);
      API_BAD(err, name, "invalid_type",
              "%s[%zu] must be a string or an object with a string 'text'", name, i);
      return NULL;
    }
    json_array_append(arr, text);
  }
  return arr;
}

int api_parse_rerank(const matrix *mx, const api_target *t, const json_t *req, api_rerank *out,
                     api_error *err) {
  memset(out, 0, sizeof *out);
  api_target own;
  out->model = api_target_model(target_of(mx, t, req, &own), MATRIX_CAP_RERANK, "reranking", err);
  if (!out->model) return -1;
  json_t *q = json_object_get(req, "query");
  if (!q || json_is_null(q)) {
    API_BAD(err, "query", "missing_required_parameter", "you must provide a 'query' parameter");
    return -1;
  }
  if (!json_is_string(q)) {
    API_BAD(err, "query", "invalid_type", "'query' must be a string");
    return -1;
  }
  if (json_string_length(q) == 0) {
    API_BAD(err, "query", "invalid_value", "'query' is empty");
    return -1;
  }
  /* As llama-server: "texts" (TEI) selects TEI's answer; "documents" wins when both are given. */
  json_t *docs = json_object_get(req, "documents");
  out->tei = json_object_get(req, "texts") != NULL;
  bool use_texts = out->tei && (!docs || json_is_null(docs));
  out->documents = rerank_documents(use_texts ? json_object_get(req, "texts") : docs,
                                    use_texts ? "texts" : "documents", err);
  if (!out->documents) return -1;
  out->n_documents = json_array_size(out->documents);
  long long top_n;
  int r = opt_int(req, "top_n", 1, 1LL << 30, &top_n, err);
  if (r < 0) goto fail;
  out->top_n = r && (size_t)top_n < out->n_documents ? (size_t)top_n : out->n_documents;
  if (opt_bool(req, "return_documents", &out->return_documents, err) < 0) goto fail;
  if (out->tei && opt_bool(req, "return_text", &out->return_documents, err) < 0) goto fail;
  if ((r = parse_keep_alive(req, &out->keep_alive_s, err)) < 0) goto fail;
  out->has_keep_alive = r == 1;
  out->msg = json_pack("{s:s, s:O, s:O}", "op", "rerank", "query", q, "documents", out->documents);
  if (!out->msg) {
    API_SERVER(err, "out_of_memory", "out of memory");
    goto fail;
  }
  return 0;
fail:
  api_rerank_clear(out);
  return -1;
}

void api_rerank_clear(api_rerank *r) {
  json_decref(r->msg);
  json_decref(r->documents);
  r->msg = r->documents = NULL;
}

int api_audio_b64(const json_t *str, size_t max_bytes, int rate, double max_seconds, sy_audio *out,
                  bool *unsupported, char *why, size_t why_len) {
  const char *data = json_string_value(str);
  size_t len = json_string_length(str);
  *unsupported = false;
  memset(out, 0, sizeof *out);
  const char *comma =
      data && len > 5 && strncmp(data, "data:", 5) == 0 ? memchr(data, ',', len) : NULL;
  if (comma) {
    len -= (size_t)(comma + 1 - data);
    data = comma + 1;
  }
  if (!data || len / 4 * 3 > max_bytes + 3) {
    snprintf(why, why_len, "the file is larger than %zu bytes", max_bytes);
    return -1;
  }
  unsigned char *bytes = NULL;
  size_t nb = 0;
  if (sy_base64_decode(data, len, max_bytes + 3, &bytes, &nb, why, why_len) != 0) return -1;
  sy_audio_limits lim = {.max_bytes = max_bytes, .max_seconds = max_seconds};
  int rc = sy_audio_decode(bytes, nb, rate, &lim, out, unsupported, why, why_len);
  free(bytes);
  return rc;
}

void api_random_id(char *out, size_t len, const char *prefix) {
  static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned char rnd[24];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) memset(rnd, 7, sizeof rnd);
  size_t p = (size_t)snprintf(out, len, "%s", prefix);
  for (size_t i = 0; i < sizeof rnd && p + 1 < len; i++) out[p++] = al[rnd[i] % (sizeof al - 1)];
  out[p < len ? p : len - 1] = '\0';
}
