/* api_parse.c — see api_parse.h. Every check here answers a hostile body with a precise 400;
 * nothing here may crash on any JSON value in any field. */
#include "api_parse.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

json_t *api_parse_body(const char *body, size_t len, api_error *err) {
  json_error_t je;
  json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    API_BAD(err, NULL, "invalid_json",
            "We could not parse the JSON body of your request: %s (line %d, column %d)", je.text, je.line,
            je.column);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    API_BAD(err, NULL, "invalid_json", "The request body must be a JSON object");
    return NULL;
  }
  return j;
}

const matrix_model *api_find_model(const matrix *mx, const json_t *req, unsigned cap, const char *what,
                                   api_error *err) {
  json_t *jm = json_object_get(req, "model");
  if (!jm || json_is_null(jm)) {
    API_BAD(err, "model", "missing_required_parameter", "you must provide a model parameter");
    return NULL;
  }
  if (!json_is_string(jm)) {
    API_BAD(err, "model", "invalid_type", "'model' must be a string");
    return NULL;
  }
  const matrix_model *m = matrix_find(mx, json_string_value(jm));
  if (!m) {
    sy_buf names = {0};
    for (size_t i = 0; i < mx->n_models && names.len < 600; i++)
      sy_buf_printf(&names, "%s%s", i ? ", " : "", mx->models[i].name);
    api_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                  "The model '%.200s' does not exist. Available models: %s", json_string_value(jm),
                  names.len ? names.data : "(none)");
    sy_buf_free(&names);
    return NULL;
  }
  if (!(m->caps & cap)) {
    char caps[128];
    API_BAD(err, "model", "wrong_capability", "model '%s' does not support %s (its capabilities: %s)", m->name,
            what, matrix_caps_str(m->caps, caps, sizeof caps));
    return NULL;
  }
  return m;
}

/* Optional number field in [lo, hi]; copies it into msg under key (or the same name). */
static int opt_number(const json_t *req, const char *name, double lo, double hi, json_t *msg, const char *key,
                      api_error *err) {
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
    API_BAD(err, name, "invalid_value", "'%s' must be an integer between %lld and %lld", name, lo, hi);
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

/* The text of a message's content: a string, null, or an array of {type:"text", text} parts. */
static int content_text(const json_t *content, size_t idx, const matrix_model *m, sy_buf *out, api_error *err) {
  if (json_is_null(content)) return 0;
  if (json_is_string(content)) return sy_buf_append(out, json_string_value(content), json_string_length(content));
  if (!json_is_array(content)) {
    API_BAD(err, "messages", "invalid_type", "messages[%zu].content must be a string or an array of content parts",
            idx);
    return -1;
  }
  size_t i;
  json_t *part;
  json_array_foreach(content, i, part) {
    const char *type = json_string_value(json_object_get(part, "type"));
    if (!json_is_object(part) || !type) {
      API_BAD(err, "messages", "invalid_type", "messages[%zu].content[%zu] must be an object with a 'type'", idx, i);
      return -1;
    }
    if (strcmp(type, "text") != 0) {
      API_BAD(err, "messages", "unsupported_content",
              "messages[%zu].content[%zu] has type '%.40s'; model '%s' accepts only text content", idx, i, type,
              m->name);
      return -1;
    }
    json_t *t = json_object_get(part, "text");
    if (!json_is_string(t)) {
      API_BAD(err, "messages", "invalid_type", "messages[%zu].content[%zu].text must be a string", idx, i);
      return -1;
    }
    if ((out->len && sy_buf_puts(out, "\n") != 0) || sy_buf_append(out, json_string_value(t), json_string_length(t)) != 0)
      return -1;
  }
  return 0;
}

static json_t *parse_messages(const json_t *req, const matrix_model *m, api_error *err) {
  json_t *msgs = json_object_get(req, "messages");
  if (!msgs) {
    API_BAD(err, "messages", "missing_required_parameter", "you must provide a 'messages' parameter");
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
      API_BAD(err, "messages", "invalid_type", "messages[%zu] must be an object with a string 'role'", i);
      goto fail;
    }
    size_t r = 0;
    while (r < 5 && strcmp(role, roles[r]) != 0) r++;
    if (r == 5) {
      API_BAD(err, "messages", "invalid_value",
              "messages[%zu].role '%.40s' is not one of system, developer, user, assistant, tool", i, role);
      goto fail;
    }
    json_t *content = json_object_get(msg, "content");
    if (!content && r != 3) {
      API_BAD(err, "messages", "missing_required_parameter", "messages[%zu] has no 'content'", i);
      goto fail;
    }
    sy_buf text = {0};
    if (content && content_text(content, i, m, &text, err) != 0) {
      sy_buf_free(&text);
      goto fail;
    }
    json_t *o = json_pack("{s:s, s:s}", "role", r == 1 ? "system" : role, "content", text.data ? text.data : "");
    sy_buf_free(&text);
    if (!o) {
      API_BAD(err, "messages", "invalid_value", "messages[%zu].content is not valid UTF-8", i);
      goto fail;
    }
    json_array_append_new(out, o);
  }
  return out;
fail:
  json_decref(out);
  return NULL;
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
    long long mul = !*end ? 1 : !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600 : 0;
    if (end != sv && mul && (n >= 0 || (n == -1 && !*end)) && n <= (1LL << 31) / mul) secs = n * mul;
  }
  if (secs < -1 || secs > INT_MAX) {
    API_BAD(err, "keep_alive", "invalid_value",
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
        API_BAD(err, "stop", "invalid_value", "stop[%zu] must be a non-empty string of at most 256 bytes", i);
        return -1;
      }
      json_array_append(arr, s);
    }
  } else {
    json_decref(arr);
    API_BAD(err, "stop", "invalid_value", "'stop' must be a string or an array of at most %d strings", API_MAX_STOP);
    return -1;
  }
  json_object_set_new(msg, "stop", arr);
  return 0;
}

/* Features of the OpenAI API this runtime does not implement yet: refuse clearly, never ignore. */
static int refuse_unsupported(const json_t *req, api_error *err) {
  json_t *tools = json_object_get(req, "tools");
  if (tools && !json_is_null(tools) && !(json_is_array(tools) && json_array_size(tools) == 0)) {
    API_BAD(err, "tools", "unsupported_parameter", "tool calling is not supported yet");
    return -1;
  }
  json_t *rf = json_object_get(req, "response_format");
  const char *rft = json_string_value(json_object_get(rf, "type"));
  if (rf && !json_is_null(rf) && !(rft && strcmp(rft, "text") == 0)) {
    API_BAD(err, "response_format", "unsupported_parameter", "only response_format {\"type\":\"text\"} is supported yet");
    return -1;
  }
  if (json_is_true(json_object_get(req, "logprobs")) || json_is_integer(json_object_get(req, "logprobs"))) {
    API_BAD(err, "logprobs", "unsupported_parameter", "logprobs are not supported yet");
    return -1;
  }
  long long n = 1;
  if (opt_int(req, "n", 1, 1, &n, err) < 0) {
    API_BAD(err, "n", "unsupported_parameter", "only n=1 is supported");
    return -1;
  }
  return 0;
}

int api_parse_generate(const matrix *mx, const json_t *req, bool chat, api_gen *out, api_error *err) {
  memset(out, 0, sizeof *out);
  out->chat = chat;
  out->model = api_find_model(mx, req, chat ? MATRIX_CAP_CHAT : MATRIX_CAP_COMPLETION,
                              chat ? "chat completions" : "text completions", err);
  if (!out->model) return -1;
  json_t *msg = json_pack("{s:s}", "op", "generate");
  out->msg = msg;
  if (refuse_unsupported(req, err) != 0) goto fail;
  if (chat) {
    json_t *msgs = parse_messages(req, out->model, err);
    if (!msgs) goto fail;
    json_object_set_new(msg, "messages", msgs);
  } else {
    json_t *p = json_object_get(req, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
    if (!p) {
      API_BAD(err, "prompt", "missing_required_parameter", "you must provide a 'prompt' parameter");
      goto fail;
    }
    if (!json_is_string(p)) {
      API_BAD(err, "prompt", "invalid_type", "'prompt' must be a string (token arrays and several prompts are not supported)");
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
  if (opt_number(req, "temperature", 0, 2, msg, NULL, err) || opt_number(req, "top_p", 0, 1, msg, NULL, err) ||
      opt_number(req, "min_p", 0, 1, msg, NULL, err) ||
      opt_number(req, "presence_penalty", -2, 2, msg, NULL, err) ||
      opt_number(req, "frequency_penalty", -2, 2, msg, NULL, err) ||
      opt_number(req, "repeat_penalty", 0, 10, msg, NULL, err))
    goto fail;
  if ((r = opt_int(req, "top_k", 0, 1 << 20, &v, err)) < 0) goto fail;
  if (r) json_object_set_new(msg, "top_k", json_integer(v));
  if ((r = opt_int(req, "seed", -(1LL << 62), 1LL << 62, &v, err)) < 0) goto fail;
  if (r) json_object_set_new(msg, "seed", json_integer(v & 0xffffffffLL));
  if (parse_stop(req, msg, err) != 0) goto fail;
  if ((r = parse_keep_alive(req, &out->keep_alive_s, err)) < 0) goto fail;
  out->has_keep_alive = r == 1;
  bool ignore_eos = false;
  if ((r = opt_bool(req, "ignore_eos", &ignore_eos, err)) < 0) goto fail;
  if (r) json_object_set_new(msg, "ignore_eos", json_boolean(ignore_eos));
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
}

int api_parse_embed(const matrix *mx, const json_t *req, api_embed *out, api_error *err) {
  memset(out, 0, sizeof *out);
  out->model = api_find_model(mx, req, MATRIX_CAP_EMBED, "embeddings", err);
  if (!out->model) return -1;
  json_t *in = json_object_get(req, "input");
  if (!in || json_is_null(in)) {
    API_BAD(err, "input", "missing_required_parameter", "you must provide an 'input' parameter");
    return -1;
  }
  json_t *arr = json_array();
  if (json_is_string(in)) {
    json_array_append(arr, in);
  } else if (json_is_array(in) && json_array_size(in) >= 1 && json_array_size(in) <= API_MAX_EMBED_INPUTS) {
    size_t i;
    json_t *s;
    json_array_foreach(in, i, s) {
      if (!json_is_string(s)) {
        json_decref(arr);
        API_BAD(err, "input", "invalid_type", "input[%zu] must be a string (token arrays are not supported)", i);
        return -1;
      }
      json_array_append(arr, s);
    }
  } else {
    json_decref(arr);
    API_BAD(err, "input", "invalid_value", "'input' must be a string or an array of 1 to %d strings",
            API_MAX_EMBED_INPUTS);
    return -1;
  }
  size_t i;
  json_t *s;
  json_array_foreach(arr, i, s) {
    if (json_string_length(s) == 0) {
      json_decref(arr);
      API_BAD(err, "input", "invalid_value", "input[%zu] is empty; embeddings need at least one character", i);
      return -1;
    }
  }
  json_t *ef = json_object_get(req, "encoding_format");
  if (ef && !json_is_null(ef)) {
    const char *f = json_string_value(ef);
    if (!f || (strcmp(f, "float") != 0 && strcmp(f, "base64") != 0)) {
      json_decref(arr);
      API_BAD(err, "encoding_format", "invalid_value", "'encoding_format' must be \"float\" or \"base64\"");
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
  if (dims && !json_is_null(dims)) {
    json_decref(arr);
    API_BAD(err, "dimensions", "unsupported_parameter", "'dimensions' is not supported by this model");
    return -1;
  }
  out->n_inputs = json_array_size(arr);
  out->msg = json_pack("{s:s, s:o}", "op", "embed", "input", arr);
  return 0;
}

void api_embed_clear(api_embed *e) {
  json_decref(e->msg);
  e->msg = NULL;
}
