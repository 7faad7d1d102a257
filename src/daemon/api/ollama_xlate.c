/* ollama_xlate.c — see ollama_xlate.h. Every request field is read without trusting its type:
 * any JSON value in any field is a precise 400, never a crash; nothing here allocates more than a
 * small multiple of what the request holds. */
#include "api/ollama_xlate.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "hash.h"
#include "media/base64.h"
#include "parse/api_parse.h"

/* ---- names ---- */

/* The entry named exactly n (a model's name or alias, a router, a pipeline): its own name. */
static const char *name_exact(const matrix *mx, const char *n) {
  const matrix_model *m = matrix_find(mx, n);
  if (m) return m->name;
  const matrix_router *rt = matrix_find_router(mx, n);
  if (rt) return rt->name;
  const matrix_pipeline *p = matrix_find_pipeline(mx, n);
  return p ? p->name : NULL;
}

/* The one entry named n ignoring ASCII case, or NULL (none, or two different entries). */
static const char *name_folded(const matrix *mx, const char *n) {
  const char *hit = NULL;
  bool twice = false;
#define FOLD_HIT(cand, own)                  \
  do {                                       \
    if (strcasecmp((cand), n) == 0) {        \
      if (hit && hit != (own)) twice = true; \
      hit = (own);                           \
    }                                        \
  } while (0)
  for (size_t i = 0; i < mx->n_models; i++) {
    const matrix_model *m = &mx->models[i];
    FOLD_HIT(m->name, m->name);
    for (size_t k = 0; k < m->n_aliases; k++) FOLD_HIT(m->aliases[k], m->name);
  }
  for (size_t i = 0; i < mx->n_routers; i++) FOLD_HIT(mx->routers[i].name, mx->routers[i].name);
  for (size_t i = 0; i < mx->n_pipelines; i++)
    FOLD_HIT(mx->pipelines[i].name, mx->pipelines[i].name);
#undef FOLD_HIT
  return twice ? NULL : hit;
}

const char *ollama_match(const matrix *mx, const char *name) {
  if (!mx || !name || !*name || strlen(name) > OLLAMA_MAX_NAME) return NULL;
  char bare[OLLAMA_MAX_NAME + 1], dashed[OLLAMA_MAX_NAME + 1];
  snprintf(bare, sizeof bare, "%s", name);
  size_t n = strlen(bare);
  if (n > 7 && strcmp(bare + n - 7, ":latest") == 0) bare[n - 7] = '\0';
  snprintf(dashed, sizeof dashed, "%s", bare);
  for (char *p = dashed; *p; p++)
    if (*p == ':') *p = '-';
  const char *hit;
  if ((hit = name_exact(mx, name)) || (hit = name_exact(mx, bare)) ||
      (hit = name_folded(mx, name)) || (hit = name_folded(mx, bare)))
    return hit;
  if (strcmp(dashed, bare) == 0) return NULL;
  return (hit = name_exact(mx, dashed)) ? hit : name_folded(mx, dashed);
}

/* ---- small readers ---- */

/* A JSON integer field of o, 0 when absent or not an integer. */
static long long jint(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* A number that is an integer (5 or 5.0) within [lo, hi]: true with *out. */
static bool int_in(const json_t *v, long long lo, long long hi, long long *out) {
  double d = json_is_real(v) ? json_real_value(v) : 0;
  if (json_is_integer(v)) {
    *out = (long long)json_integer_value(v);
  } else if (json_is_real(v) && d == floor(d) && fabs(d) < 9e15) {
    *out = (long long)d;
  } else {
    return false;
  }
  return *out >= lo && *out <= hi;
}

/* A string field (absent or null: def); false + err when it is another type. */
static bool str_field(const json_t *req, const char *k, const char *what, const char **out,
                      size_t *len, api_error *err) {
  json_t *v = json_object_get(req, k);
  *out = "";
  if (len) *len = 0;
  if (!v || json_is_null(v)) return true;
  if (!json_is_string(v)) {
    API_BAD(err, k, "invalid_type", "%s must be a string", what);
    return false;
  }
  *out = json_string_value(v);
  if (len) *len = json_string_length(v);
  return true;
}

/* A boolean field (absent or null: def); false + err for another type. */
static bool bool_field(const json_t *req, const char *k, bool def, bool *out, api_error *err) {
  json_t *v = json_object_get(req, k);
  *out = def;
  if (!v || json_is_null(v)) return true;
  if (!json_is_boolean(v)) {
    API_BAD(err, k, "invalid_type", "%s must be true or false", k);
    return false;
  }
  *out = json_is_true(v);
  return true;
}

/* ---- keep_alive: seconds, or a Go duration ---- */

/* A Go duration ("1h30m", "300ms", "-5m") or a plain number of seconds, in seconds. */
static int parse_duration(const char *s, size_t len, double *out) {
  if (len == 0 || len > 64 || strlen(s) != len) return -1;
  char *end;
  double plain = strtod(s, &end);
  if (end != s && *end == '\0' && isfinite(plain) && !isalpha((unsigned char)s[len - 1])) {
    *out = plain; /* "300", "-1", "0.5" */
    return 0;
  }
  const char *p = s;
  double sign = 1, total = 0;
  if (*p == '-' || *p == '+') sign = *p++ == '-' ? -1 : 1;
  if (!*p) return -1;
  static const struct {
    const char *u;
    double secs;
  } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6},
               {"ms", 1e-3}, {"s", 1},     {"m", 60},           {"h", 3600}};
  while (*p) {
    const char *num = p;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '.') {
      p++;
      while (isdigit((unsigned char)*p)) p++;
    }
    if (p == num || (p == num + 1 && *num == '.')) return -1;
    double v = strtod(num, NULL);
    size_t k = 0, n = sizeof units / sizeof *units, best = n, best_len = 0;
    for (k = 0; k < n; k++) { /* the longest unit that matches ("ms" before "m") */
      size_t ul = strlen(units[k].u);
      if (strncmp(p, units[k].u, ul) == 0 && ul > best_len) best = k, best_len = ul;
    }
    if (best == n) return -1;
    total += v * units[best].secs;
    p += best_len;
  }
  if (!isfinite(total)) return -1;
  *out = sign * total;
  return 0;
}

int ollama_keep_alive(const json_t *v, int *secs, api_error *err) {
  if (!v || json_is_null(v)) return 0;
  double s = 0;
  bool ok =
      json_is_number(v) ||
      (json_is_string(v) && parse_duration(json_string_value(v), json_string_length(v), &s) == 0);
  if (json_is_number(v)) s = json_number_value(v);
  if (!ok || !isfinite(s)) {
    API_BAD(err, "keep_alive", "invalid_value",
            "keep_alive must be a number of seconds or a duration such as \"5m\", \"1h30m\" or "
            "\"-1\" (forever)");
    return -1;
  }
  *secs = s < 0 ? -1 : s >= (double)INT_MAX ? INT_MAX : (int)ceil(s);
  return 1;
}

/* ---- options ---- */

typedef enum { O_NUM, O_INT, O_BOOL, O_STOP } okind;
typedef enum {
  O_PASS,    /* copied into the body under `to` */
  O_SEED,    /* seed: a negative one means random (left out) */
  O_PREDICT, /* num_predict → max_tokens; -1, -2 and 0 mean no limit */
  O_DEFAULT, /* a sampler we do not have: accepted at its neutral value `lo`, else refused */
  O_IGNORE,  /* accepted and not used (a load setting: load settings are the matrix's) */
  O_NUM_CTX  /* a load setting we report on */
} oact;

static const struct {
  const char *name;
  okind kind;
  oact act;
  double lo, hi;
  const char *to;
} options[] = {
    {"temperature", O_NUM, O_PASS, 0, 2, "temperature"},
    {"top_p", O_NUM, O_PASS, 0, 1, "top_p"},
    {"min_p", O_NUM, O_PASS, 0, 1, "min_p"},
    {"top_k", O_INT, O_PASS, 0, 1 << 20, "top_k"},
    {"repeat_penalty", O_NUM, O_PASS, 0, 10, "repeat_penalty"},
    {"presence_penalty", O_NUM, O_PASS, -2, 2, "presence_penalty"},
    {"frequency_penalty", O_NUM, O_PASS, -2, 2, "frequency_penalty"},
    {"seed", O_INT, O_SEED, -9e15, 9e15, "seed"},
    {"num_predict", O_INT, O_PREDICT, -2, 1 << 24, "max_tokens"},
    {"stop", O_STOP, O_PASS, 0, 0, "stop"},
    {"mirostat", O_INT, O_DEFAULT, 0, 0, NULL},
    {"typical_p", O_NUM, O_DEFAULT, 1, 1, NULL},
    {"repeat_last_n", O_INT, O_IGNORE, -1, 1 << 30, NULL},
    {"tfs_z", O_NUM, O_IGNORE, -1e9, 1e9, NULL},
    {"mirostat_tau", O_NUM, O_IGNORE, -1e9, 1e9, NULL},
    {"mirostat_eta", O_NUM, O_IGNORE, -1e9, 1e9, NULL},
    {"penalize_newline", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"num_keep", O_INT, O_IGNORE, -1, 1 << 30, NULL},
    {"num_ctx", O_INT, O_NUM_CTX, 0, 1LL << 31, NULL},
    {"num_batch", O_INT, O_IGNORE, -1, 1 << 30, NULL},
    {"num_gpu", O_INT, O_IGNORE, -1, 1 << 20, NULL},
    {"main_gpu", O_INT, O_IGNORE, -1, 1 << 20, NULL},
    {"num_thread", O_INT, O_IGNORE, -1, 1 << 20, NULL},
    {"num_gqa", O_INT, O_IGNORE, -1, 1 << 20, NULL},
    {"low_vram", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"f16_kv", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"vocab_only", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"use_mmap", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"use_mlock", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"numa", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"logits_all", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"embedding_only", O_BOOL, O_IGNORE, 0, 0, NULL},
    {"rope_frequency_base", O_NUM, O_IGNORE, -1e30, 1e30, NULL},
    {"rope_frequency_scale", O_NUM, O_IGNORE, -1e30, 1e30, NULL},
};

/* options.stop: a string or an array of strings, copied as the OpenAI validator takes it (which
 * bounds the count and the lengths). */
static int option_stop(const json_t *v, json_t *body, api_error *err) {
  if (json_is_string(v)) {
    if (body) json_object_set(body, "stop", (json_t *)v);
    return 0;
  }
  size_t i;
  json_t *s;
  bool ok = json_is_array(v);
  json_array_foreach(v, i, s) ok = ok && json_is_string(s);
  if (!ok || json_array_size(v) > API_MAX_STOP) {
    API_BAD(err, "stop", "invalid_type",
            "options.stop must be a string or an array of at most %d strings", API_MAX_STOP);
    return -1;
  }
  if (body && json_array_size(v)) json_object_set(body, "stop", (json_t *)v);
  return 0;
}

/* "options": every known key checked for its type and range, the sampling ones copied into body
 * under their OpenAI names (body NULL: check only, an embedding); unknown keys are ignored, as
 * Ollama ignores them. */
static int parse_options(const json_t *req, json_t *body, long long *num_ctx, api_error *err) {
  json_t *o = json_object_get(req, "options");
  if (!o || json_is_null(o)) return 0;
  if (!json_is_object(o)) {
    API_BAD(err, "options", "invalid_type", "options must be an object");
    return -1;
  }
  for (size_t i = 0; i < sizeof options / sizeof *options; i++) {
    json_t *v = json_object_get(o, options[i].name);
    if (!v || json_is_null(v)) continue;
    const char *nm = options[i].name;
    long long iv = 0;
    double dv = json_is_number(v) ? json_number_value(v) : NAN;
    bool ok;
    switch (options[i].kind) {
      case O_STOP:
        if (option_stop(v, body, err) != 0) return -1;
        continue;
      case O_BOOL:
        if (!json_is_boolean(v)) {
          API_BAD(err, nm, "invalid_type", "options.%s must be true or false", nm);
          return -1;
        }
        continue;
      case O_INT:
        ok = int_in(v, (long long)options[i].lo, (long long)options[i].hi, &iv);
        dv = (double)iv;
        break;
      case O_NUM:
      default:
        ok = json_is_number(v) && dv >= options[i].lo && dv <= options[i].hi;
        break;
    }
    if (!ok && options[i].act == O_DEFAULT && json_is_number(v)) {
      API_BAD(err, nm, "unsupported_parameter",
              "options.%s is not supported (only its neutral value %g is accepted)", nm,
              options[i].lo);
      return -1;
    }
    if (!ok) {
      API_BAD(err, nm, "invalid_value", "options.%s must be %s between %g and %g", nm,
              options[i].kind == O_INT ? "an integer" : "a number", options[i].lo, options[i].hi);
      return -1;
    }
    switch (options[i].act) {
      case O_PASS:
        if (body)
          json_object_set_new(body, options[i].to,
                              options[i].kind == O_INT ? json_integer(iv) : json_real(dv));
        break;
      case O_SEED:
        if (body && iv >= 0) json_object_set_new(body, "seed", json_integer(iv));
        break;
      case O_PREDICT:
        if (body && iv > 0) json_object_set_new(body, "max_tokens", json_integer(iv));
        break;
      case O_NUM_CTX:
        *num_ctx = iv;
        break;
      default:
        break;
    }
  }
  return 0;
}

/* ---- format, think ---- */

/* "format": "json" or a JSON schema object → response_format; "" and null: none. */
static int parse_format(const json_t *req, json_t *body, api_error *err) {
  json_t *f = json_object_get(req, "format");
  if (!f || json_is_null(f) || (json_is_string(f) && json_string_length(f) == 0)) return 0;
  if (json_is_string(f) && strcmp(json_string_value(f), "json") == 0) {
    json_object_set_new(body, "response_format", json_pack("{s:s}", "type", "json_object"));
    return 0;
  }
  if (json_is_object(f)) {
    json_object_set_new(body, "response_format",
                        json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema",
                                  "name", "format", "schema", f));
    return 0;
  }
  API_BAD(err, "format", "invalid_value", "format must be \"json\" or a JSON schema object");
  return -1;
}

/* "think": true / false / "low" / "medium" / "high" → the template's enable_thinking and
 * reasoning_effort. */
static int parse_think(const json_t *req, json_t *body, api_error *err) {
  json_t *t = json_object_get(req, "think");
  if (!t || json_is_null(t)) return 0;
  const char *s = json_string_value(t);
  bool level = s && (!strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high"));
  if (!json_is_boolean(t) && !level) {
    API_BAD(err, "think", "invalid_value",
            "think must be true, false, \"low\", \"medium\" or \"high\"");
    return -1;
  }
  bool on = level || json_is_true(t);
  json_object_set_new(body, "chat_template_kwargs", json_pack("{s:b}", "enable_thinking", on));
  if (!on || level) json_object_set_new(body, "reasoning_effort", json_string(on ? s : "none"));
  return 0;
}

/* ---- images ---- */

json_t *ollama_image_url(const char *b64, size_t len) {
  if (len >= 5 && strncmp(b64, "data:", 5) == 0) return json_stringn(b64, len);
  unsigned char *head = NULL;
  size_t n = 0;
  char why[64];
  const char *type = "image/png";
  if (len >= 16 && sy_base64_decode(b64, 16, 12, &head, &n, why, sizeof why) == 0 && n >= 12) {
    if (head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff)
      type = "image/jpeg";
    else if (!memcmp(head, "RIFF", 4) && !memcmp(head + 8, "WEBP", 4))
      type = "image/webp";
    else if (!memcmp(head, "GIF8", 4))
      type = "image/gif"; /* refused by the decoder, with its own words */
  }
  free(head);
  sy_buf b = {0};
  json_t *url = NULL;
  if (sy_buf_printf(&b, "data:%s;base64,", type) == 0 && sy_buf_append(&b, b64, len) == 0)
    url = json_stringn(b.data, b.len);
  sy_buf_free(&b);
  return url;
}

/* "images": an array of base64 strings, appended to parts as image_url parts. *count counts
 * them over the request (at most API_MAX_IMAGES). */
static int images_into(const json_t *imgs, const char *where, json_t *parts, size_t *count,
                       api_error *err) {
  if (!imgs || json_is_null(imgs)) return 0;
  if (!json_is_array(imgs)) {
    API_BAD(err, "images", "invalid_type", "%simages must be an array of base64 strings", where);
    return -1;
  }
  size_t i;
  json_t *s;
  json_array_foreach(imgs, i, s) {
    if (!json_is_string(s) || json_string_length(s) == 0) {
      API_BAD(err, "images", "invalid_type", "%simages[%zu] must be a base64 string", where, i);
      return -1;
    }
    if (++*count > API_MAX_IMAGES) {
      API_BAD(err, "images", "invalid_value", "at most %d images per request", API_MAX_IMAGES);
      return -1;
    }
    json_t *url = ollama_image_url(json_string_value(s), json_string_length(s));
    if (!url) {
      API_SERVER(err, "out_of_memory", "out of memory");
      return -1;
    }
    json_array_append_new(
        parts, json_pack("{s:s, s:{s:o}}", "type", "image_url", "image_url", "url", url));
  }
  return 0;
}

/* A message's content with its images: the text alone, or (images first, as Ollama places them)
 * image_url parts then a text part. */
static json_t *content_of(const char *text, size_t len, const json_t *imgs, const char *where,
                          size_t *count, api_error *err) {
  if (!imgs || json_is_null(imgs) || (json_is_array(imgs) && json_array_size(imgs) == 0))
    return json_stringn(text, len);
  json_t *parts = json_array();
  if (images_into(imgs, where, parts, count, err) != 0) {
    json_decref(parts);
    return NULL;
  }
  if (len)
    json_array_append_new(parts, json_pack("{s:s, s:s%}", "type", "text", "text", text, len));
  return parts;
}

/* ---- messages ---- */

/* An assistant message's Ollama tool_calls ([{id?, function: {name, arguments: object}}]) in
 * OpenAI's shape (arguments a JSON string). */
static json_t *tool_calls_of(const json_t *tc, size_t idx, api_error *err) {
  if (!json_is_array(tc) || json_array_size(tc) > API_MAX_TOOLS) {
    API_BAD(err, "messages", "invalid_type",
            "messages[%zu].tool_calls must be an array of at most %d calls", idx, API_MAX_TOOLS);
    return NULL;
  }
  json_t *out = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(tc, i, c) {
    json_t *fn = json_object_get(c, "function"), *id = json_object_get(c, "id");
    json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
    if (!json_is_object(fn) || !json_is_string(name) || json_string_length(name) == 0 ||
        (args && !json_is_null(args) && !json_is_object(args) && !json_is_string(args))) {
      API_BAD(err, "messages", "invalid_value",
              "messages[%zu].tool_calls[%zu] must be {function: {name, arguments: {...}}}", idx, i);
      json_decref(out);
      return NULL;
    }
    char *a = json_is_string(args)          ? strdup(json_string_value(args))
              : args && !json_is_null(args) ? json_dumps(args, JSON_COMPACT)
                                            : strdup("{}");
    char cid[64];
    snprintf(cid, sizeof cid, "call_%zu_%zu", idx, i);
    json_t *call = a ? json_pack("{s:s, s:s, s:{s:O, s:s}}", "id",
                                 json_is_string(id) ? json_string_value(id) : cid, "type",
                                 "function", "function", "name", name, "arguments", a)
                     : NULL;
    free(a);
    if (!call) {
      API_SERVER(err, "out_of_memory", "out of memory");
      json_decref(out);
      return NULL;
    }
    json_array_append_new(out, call);
  }
  return out;
}

/* Ollama's messages → OpenAI's: content (a string) with images as image_url parts, thinking →
 * reasoning_content, tool_calls, tool_name → name. */
static json_t *messages_of(const json_t *msgs, size_t *images, api_error *err) {
  json_t *out = json_array();
  size_t i;
  json_t *m;
  json_array_foreach(msgs, i, m) {
    char where[48];
    snprintf(where, sizeof where, "messages[%zu].", i);
    const char *role, *text, *thinking, *tool_name, *tool_call_id;
    size_t len;
    if (!json_is_object(m)) {
      API_BAD(err, "messages", "invalid_type", "messages[%zu] must be an object", i);
      goto fail;
    }
    json_t *jr = json_object_get(m, "role");
    if (!json_is_string(jr) || json_string_length(jr) == 0) {
      API_BAD(err, "messages", "invalid_type", "messages[%zu].role must be a string", i);
      goto fail;
    }
    role = json_string_value(jr);
    if (!str_field(m, "content", "content", &text, &len, err) ||
        !str_field(m, "thinking", "thinking", &thinking, NULL, err) ||
        !str_field(m, "tool_name", "tool_name", &tool_name, NULL, err) ||
        !str_field(m, "tool_call_id", "tool_call_id", &tool_call_id, NULL, err)) {
      char why[sizeof err->message];
      snprintf(why, sizeof why, "%s", err->message);
      api_error_set(err, 400, "invalid_request_error", "invalid_type", "messages",
                    "messages[%zu].%s", i, why);
      goto fail;
    }
    json_t *content = content_of(text, len, json_object_get(m, "images"), where, images, err);
    if (!content) goto fail;
    json_t *o = json_pack("{s:O, s:o}", "role", jr, "content", content);
    json_array_append_new(out, o);
    if (*thinking && strcmp(role, "assistant") == 0)
      json_object_set_new(o, "reasoning_content", json_string(thinking));
    json_t *tc = json_object_get(m, "tool_calls");
    if (tc && !json_is_null(tc)) {
      json_t *calls = tool_calls_of(tc, i, err);
      if (!calls) goto fail;
      json_object_set_new(o, "tool_calls", calls);
    }
    if (*tool_name) json_object_set_new(o, "name", json_string(tool_name));
    if (*tool_call_id) json_object_set_new(o, "tool_call_id", json_string(tool_call_id));
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

/* ---- /api/chat, /api/generate ---- */

/* model, stream, keep_alive, options: what every Ollama body shares. The body starts here. */
static int common_fields(const json_t *req, json_t **body, bool *stream, bool *has_ka, int *ka,
                         long long *num_ctx, bool sampling, api_error *err) {
  *body = NULL;
  if (!json_is_object(req)) {
    API_BAD(err, NULL, "invalid_json", "the request body must be a JSON object");
    return -1;
  }
  json_t *jm = json_object_get(req, "model");
  if (!jm || json_is_null(jm) || (json_is_string(jm) && json_string_length(jm) == 0)) {
    API_BAD(err, "model", "missing_required_parameter", "model is required");
    return -1;
  }
  if (!json_is_string(jm)) {
    API_BAD(err, "model", "invalid_type", "model must be a string");
    return -1;
  }
  if (stream && !bool_field(req, "stream", true, stream, err)) return -1;
  int r = ollama_keep_alive(json_object_get(req, "keep_alive"), ka, err);
  if (r < 0) return -1;
  *has_ka = r == 1;
  *body = json_pack("{s:O}", "model", jm);
  if (!*body) {
    API_SERVER(err, "out_of_memory", "out of memory");
    return -1;
  }
  if (*has_ka) json_object_set_new(*body, "keep_alive", json_integer(*ka));
  if (parse_options(req, sampling ? *body : NULL, num_ctx, err) != 0) {
    json_decref(*body);
    *body = NULL;
    return -1;
  }
  return 0;
}

/* /api/chat's own fields into g->body. */
static int chat_fields(const json_t *req, ollama_gen *g, api_error *err) {
  json_t *msgs = json_object_get(req, "messages");
  if (msgs && !json_is_null(msgs) && !json_is_array(msgs)) {
    API_BAD(err, "messages", "invalid_type", "messages must be an array");
    return -1;
  }
  g->load_only = json_array_size(msgs) == 0;
  if (g->load_only) return 0;
  json_t *m = messages_of(msgs, &g->n_images, err);
  if (!m) return -1;
  json_object_set_new(g->body, "messages", m);
  json_t *tools = json_object_get(req, "tools");
  if (tools && !json_is_null(tools)) {
    if (!json_is_array(tools)) {
      API_BAD(err, "tools", "invalid_type", "tools must be an array");
      return -1;
    }
    if (json_array_size(tools)) json_object_set(g->body, "tools", tools);
  }
  /* ours, not Ollama's: OpenAI's tool_choice ("required", or a function by name; forced through
   * the grammar) and parallel_tool_calls, checked by the OpenAI validator */
  static const char *const ours[] = {"tool_choice", "parallel_tool_calls"};
  for (size_t i = 0; i < 2; i++) {
    json_t *v = json_object_get(req, ours[i]);
    if (v && !json_is_null(v)) json_object_set(g->body, ours[i], v);
  }
  return 0;
}

/* /api/generate's own fields: a chat of one user message (and the system prompt), or with raw
 * the prompt as it is (a completion). */
static int generate_fields(const json_t *req, ollama_gen *g, api_error *err) {
  const char *prompt, *system, *suffix, *tmpl;
  size_t plen;
  bool raw;
  if (!str_field(req, "prompt", "prompt", &prompt, &plen, err) ||
      !str_field(req, "system", "system", &system, NULL, err) ||
      !str_field(req, "suffix", "suffix", &suffix, NULL, err) ||
      !str_field(req, "template", "template", &tmpl, NULL, err) ||
      !bool_field(req, "raw", false, &raw, err))
    return -1;
  json_t *ctx = json_object_get(req, "context"), *imgs = json_object_get(req, "images");
  if (ctx && !json_is_null(ctx) && !json_is_array(ctx)) {
    API_BAD(err, "context", "invalid_type", "context must be an array of tokens");
    return -1;
  }
  g->load_only = plen == 0;
  if (g->load_only) return 0;
  if (*suffix) {
    API_BAD(err, "suffix", "unsupported_parameter",
            "suffix (fill-in-the-middle) is not supported; send the whole prompt");
    return -1;
  }
  if (*tmpl) {
    API_BAD(err, "template", "unsupported_parameter",
            "a request's own template is not supported: the model's chat template is used (or "
            "raw: true for none)");
    return -1;
  }
  if (json_array_size(ctx)) {
    API_BAD(err, "context", "unsupported_parameter",
            "context (the tokens of an earlier answer) is not supported: send the conversation "
            "to /api/chat");
    return -1;
  }
  if (raw) {
    if (json_array_size(imgs)) {
      API_BAD(err, "images", "unsupported_parameter",
              "images need the model's chat template: send them without raw");
      return -1;
    }
    g->chat = false;
    json_object_set_new(g->body, "prompt", json_stringn(prompt, plen));
    /* Ollama generates until the model stops; /v1/completions' default is 16 tokens */
    if (!json_object_get(g->body, "max_tokens"))
      json_object_set_new(g->body, "max_tokens", json_integer(1 << 24));
    return 0;
  }
  json_t *content = content_of(prompt, plen, imgs, "", &g->n_images, err);
  if (!content) return -1;
  json_t *msgs = json_array();
  if (*system)
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", system));
  json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", "user", "content", content));
  json_object_set_new(g->body, "messages", msgs);
  return 0;
}

/* logprobs / top_logprobs: as OpenAI's chat takes them; a raw generate's completion wants one
 * number (the alternatives per token). */
static int parse_logprobs(const json_t *req, ollama_gen *g, api_error *err) {
  json_t *lp = json_object_get(req, "logprobs"), *top = json_object_get(req, "top_logprobs");
  if (!lp || json_is_null(lp)) {
    if (top && !json_is_null(top)) json_object_set(g->body, "top_logprobs", top);
    return 0;
  }
  if (!json_is_boolean(lp)) {
    API_BAD(err, "logprobs", "invalid_type", "logprobs must be true or false");
    return -1;
  }
  if (g->chat) {
    json_object_set(g->body, "logprobs", lp);
    if (top && !json_is_null(top)) json_object_set(g->body, "top_logprobs", top);
    return 0;
  }
  long long k = 0;
  if (top && !json_is_null(top) && !int_in(top, 0, 5, &k)) {
    API_BAD(err, "top_logprobs", "invalid_value",
            "top_logprobs must be an integer between 0 and 5 with raw: true");
    return -1;
  }
  if (json_is_true(lp)) json_object_set_new(g->body, "logprobs", json_integer(k));
  return 0;
}

int ollama_parse_gen(const json_t *req, bool chat_api, ollama_gen *out, api_error *err) {
  memset(out, 0, sizeof *out);
  out->chat = true;
  if (common_fields(req, &out->body, &out->stream, &out->has_keep_alive, &out->keep_alive_s,
                    &out->num_ctx, true, err) != 0)
    return -1;
  out->model = json_string_value(json_object_get(out->body, "model"));
  if ((chat_api ? chat_fields(req, out, err) : generate_fields(req, out, err)) != 0) goto fail;
  if (out->load_only) return 0;
  if (parse_format(req, out->body, err) != 0 || parse_logprobs(req, out, err) != 0 ||
      (out->chat && parse_think(req, out->body, err) != 0))
    goto fail;
  json_object_set_new(out->body, "stream", json_boolean(out->stream));
  return 0;
fail:
  ollama_gen_clear(out);
  return -1;
}

void ollama_gen_clear(ollama_gen *g) {
  json_decref(g->body);
  g->body = NULL;
  g->model = NULL;
}

/* ---- /api/embed, /api/embeddings ---- */

int ollama_parse_embed(const json_t *req, bool legacy, ollama_embed *out, api_error *err) {
  memset(out, 0, sizeof *out);
  out->legacy = legacy;
  if (common_fields(req, &out->body, NULL, &out->has_keep_alive, &out->keep_alive_s, &out->num_ctx,
                    false, err) != 0)
    return -1;
  out->model = json_string_value(json_object_get(out->body, "model"));
  json_t *in;
  if (legacy) {
    const char *p;
    size_t len;
    if (!str_field(req, "prompt", "prompt", &p, &len, err)) goto fail;
    out->load_only = len == 0;
    in = out->load_only ? NULL : json_pack("[s%]", p, len);
  } else {
    json_t *v = json_object_get(req, "input");
    bool truncate;
    if (v && !json_is_null(v) && !json_is_string(v) && !json_is_array(v)) {
      API_BAD(err, "input", "invalid_type", "input must be a string or an array of strings");
      goto fail;
    }
    if (!bool_field(req, "truncate", true, &truncate, err)) goto fail;
    json_t *dims = json_object_get(req, "dimensions");
    if (dims && !json_is_null(dims) && !int_in(dims, 1, 1 << 20, &out->dimensions)) {
      API_BAD(err, "dimensions", "invalid_value", "dimensions must be an integer of at least 1");
      goto fail;
    }
    out->load_only = !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0) ||
                     (json_is_array(v) && json_array_size(v) == 0);
    in = out->load_only ? NULL : json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
  }
  if (in) json_object_set_new(out->body, "input", in);
  return 0;
fail:
  ollama_embed_clear(out);
  return -1;
}

void ollama_embed_clear(ollama_embed *e) {
  json_decref(e->body);
  e->body = NULL;
  e->model = NULL;
}

/* ---- answers ---- */

void ollama_time(const struct timespec *ts, char *out, size_t len) {
  struct tm tm;
  time_t s = ts->tv_sec;
  if (!gmtime_r(&s, &tm)) memset(&tm, 0, sizeof tm);
  char day[32];
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, len, "%s.%09ldZ", day, (long)ts->tv_nsec);
}

json_t *ollama_error_json(const api_error *e) {
  return json_pack("{s:s}", "error", e->message[0] ? e->message : "error");
}

bool ollama_path(const char *path) {
  if (!path || strncmp(path, "/api/", 5) != 0) return false;
  static const char *const ours[] = {"load", "unload", "ps", "events"};
  const char *rest = path + 5;
  size_t n = strcspn(rest, "?");
  for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
    if (n == strlen(ours[i]) && strncmp(rest, ours[i], n) == 0) return false;
  return true;
}

struct ollama_tr {
  char *model;
  bool chat, stream;
  double t0, load_s;
  bool fixed;
  struct timespec at;
  sy_buf text, thinking; /* a whole answer's */
  json_t *calls;         /* tool calls so far, OpenAI's shape (folded) */
  size_t calls_sent;     /* streamed: calls already in a line */
  json_t *lps;           /* log-probabilities not yet in a line (streamed), or all (whole) */
  json_t *done;          /* the done frame's header (a whole answer) */
  double end;            /* when it ended */
  bool failed;
  api_error err;
};

ollama_tr *ollama_tr_new(const ollama_tr_params *p) {
  ollama_tr *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->model = strdup(p->model ? p->model : "");
  t->calls = json_array();
  if (!t->model || !t->calls) {
    ollama_tr_free(t);
    return NULL;
  }
  t->chat = p->chat;
  t->stream = p->stream;
  t->t0 = p->t0;
  t->load_s = p->load_s;
  if (p->fixed_time) {
    t->fixed = true;
    t->at = *p->fixed_time;
  }
  return t;
}

void ollama_tr_free(ollama_tr *t) {
  if (!t) return;
  free(t->model);
  sy_buf_free(&t->text);
  sy_buf_free(&t->thinking);
  json_decref(t->calls);
  json_decref(t->lps);
  json_decref(t->done);
  free(t);
}

/* A new answer object: model, created_at, and the empty message (chat) or response. */
static json_t *tr_object(const ollama_tr *t, bool done) {
  struct timespec now = t->at;
  if (!t->fixed) clock_gettime(CLOCK_REALTIME, &now);
  char at[48];
  ollama_time(&now, at, sizeof at);
  json_t *o = json_pack("{s:s, s:s}", "model", t->model, "created_at", at);
  if (t->chat)
    json_object_set_new(o, "message", json_pack("{s:s, s:s}", "role", "assistant", "content", ""));
  else
    json_object_set_new(o, "response", json_string(""));
  json_object_set_new(o, "done", json_boolean(done));
  return o;
}

/* Set the answer's text (content or response) and, when not empty, its thinking. */
static void tr_text(const ollama_tr *t, json_t *o, const char *text, size_t len,
                    const char *thinking, size_t tlen) {
  json_t *where = t->chat ? json_object_get(o, "message") : o;
  json_object_set_new(where, t->chat ? "content" : "response", json_stringn(text, len));
  if (tlen) json_object_set_new(where, "thinking", json_stringn(thinking, tlen));
}

/* Calls [from, to) in Ollama's shape: [{id, function: {index, name, arguments: object}}]. */
static json_t *calls_json(const json_t *calls, size_t from, size_t to) {
  json_t *out = json_array();
  for (size_t i = from; i < to && i < json_array_size(calls); i++) {
    json_t *c = json_array_get(calls, i), *fn = json_object_get(c, "function");
    const char *a = json_string_value(json_object_get(fn, "arguments"));
    json_t *args = a && *a ? json_loads(a, JSON_DECODE_ANY, NULL) : json_object();
    if (!args) args = json_string(a); /* not JSON: kept as the model wrote it */
    json_array_append_new(out, json_pack("{s:O, s:{s:I, s:O, s:o}}", "id", json_object_get(c, "id"),
                                         "function", "index", (json_int_t)i, "name",
                                         json_object_get(fn, "name"), "arguments", args));
  }
  return out;
}

/* The done line's (or the whole answer's) statistics, in nanoseconds as Ollama gives them;
 * prompt_cached_count (ours) counts the prompt tokens reused from the prompt cache. */
static void tr_stats(const ollama_tr *t, json_t *o, const json_t *done) {
  const char *f = json_string_value(json_object_get(done, "finish_reason"));
  json_t *pm = json_object_get(done, "prompt_ms"), *gm = json_object_get(done, "gen_ms");
  double total = t->end - t->t0;
  json_object_set_new(o, "done_reason", json_string(f && !strcmp(f, "length") ? "length" : "stop"));
  json_object_set_new(o, "total_duration", json_integer((json_int_t)(total > 0 ? total * 1e9 : 0)));
  json_object_set_new(o, "load_duration", json_integer((json_int_t)(t->load_s * 1e9)));
  json_object_set_new(o, "prompt_eval_count",
                      json_integer((json_int_t)jint(done, "prompt_tokens")));
  json_object_set_new(
      o, "prompt_eval_duration",
      json_integer((json_int_t)(json_is_number(pm) ? json_number_value(pm) * 1e6 : 0)));
  json_object_set_new(o, "eval_count", json_integer((json_int_t)jint(done, "completion_tokens")));
  json_object_set_new(
      o, "eval_duration",
      json_integer((json_int_t)(json_is_number(gm) ? json_number_value(gm) * 1e6 : 0)));
  json_object_set_new(o, "prompt_cached_count",
                      json_integer((json_int_t)jint(done, "cached_tokens")));
}

/* One streamed line: the object (stolen), then "\n". Pending log-probabilities go with it. */
static void tr_line(ollama_tr *t, json_t *o, sy_buf *out) {
  if (!o) return;
  if (t->lps) {
    json_object_set_new(o, "logprobs", t->lps);
    t->lps = NULL;
  }
  char *s = json_dumps(o, JSON_COMPACT);
  if (s) {
    sy_buf_puts(out, s);
    sy_buf_puts(out, "\n");
  }
  free(s);
  json_decref(o);
}

/* Stream the calls [calls_sent, upto) in one line: a call is complete once another delta follows
 * it (the worker sends a call's name, then its arguments, then whatever comes next). */
static void tr_flush_calls(ollama_tr *t, size_t upto, sy_buf *out) {
  if (!t->chat || upto <= t->calls_sent) return;
  json_t *o = tr_object(t, false);
  json_object_set_new(json_object_get(o, "message"), "tool_calls",
                      calls_json(t->calls, t->calls_sent, upto));
  t->calls_sent = upto;
  tr_line(t, o, out);
}

bool ollama_tr_event(ollama_tr *t, const char *op, const json_t *hdr, double now, sy_buf *out) {
  if (strcmp(op, "delta") == 0) {
    const char *text = json_string_value(json_object_get(hdr, "text"));
    json_t *d = json_object_get(hdr, "delta"), *lp = json_object_get(hdr, "logprobs");
    const char *rc = json_string_value(json_object_get(d, "reasoning_content"));
    json_t *tc = json_object_get(d, "tool_calls");
    if (json_is_array(lp)) {
      if (!t->lps) t->lps = json_array();
      json_array_extend(t->lps, lp);
    }
    size_t before = json_array_size(t->calls);
    if (json_is_array(tc)) api_fold_tool_calls(t->calls, tc);
    if (t->stream && json_array_size(t->calls) > before) /* a new call: the ones before are whole */
      tr_flush_calls(t, json_array_size(t->calls) - 1, out);
    if (!t->stream) {
      if (text) sy_buf_puts(&t->text, text);
      if (rc) sy_buf_puts(&t->thinking, rc);
      return false;
    }
    if ((rc && *rc) || (text && *text)) tr_flush_calls(t, json_array_size(t->calls), out);
    if (rc && *rc) {
      json_t *o = tr_object(t, false);
      tr_text(t, o, "", 0, rc, strlen(rc));
      tr_line(t, o, out);
    }
    if (text && *text) {
      json_t *o = tr_object(t, false);
      tr_text(t, o, text, strlen(text), NULL, 0);
      tr_line(t, o, out);
    }
    return false;
  }
  if (strcmp(op, "done") == 0) {
    t->end = now;
    if (!t->stream) {
      t->done = json_deep_copy(hdr);
      return true;
    }
    tr_flush_calls(t, json_array_size(t->calls), out); /* the calls left, then the end */
    json_t *o = tr_object(t, true);
    tr_stats(t, o, hdr);
    tr_line(t, o, out);
    return true;
  }
  if (strcmp(op, "error") == 0) {
    t->end = now;
    t->failed = true;
    api_worker_error(hdr, &t->err);
    if (t->stream) {
      json_t *o = ollama_error_json(&t->err);
      char *s = json_dumps(o, JSON_COMPACT);
      if (s) {
        sy_buf_puts(out, s);
        sy_buf_puts(out, "\n");
      }
      free(s);
      json_decref(o);
    }
    return true;
  }
  return false;
}

json_t *ollama_tr_reply(ollama_tr *t, api_error *err) {
  if (t->failed || !t->done) {
    if (t->failed)
      *err = t->err;
    else
      API_SERVER(err, "bad_worker_reply", "the answer ended without a result");
    return NULL;
  }
  json_t *o = tr_object(t, true);
  tr_text(t, o, t->text.data ? t->text.data : "", t->text.len, t->thinking.data, t->thinking.len);
  if (t->chat && json_array_size(t->calls))
    json_object_set_new(json_object_get(o, "message"), "tool_calls",
                        calls_json(t->calls, 0, json_array_size(t->calls)));
  tr_stats(t, o, t->done);
  if (t->lps) json_object_set(o, "logprobs", t->lps);
  return o;
}

json_t *ollama_load_reply(const char *model, bool chat, bool unload, const struct timespec *now) {
  char at[48];
  ollama_time(now, at, sizeof at);
  json_t *o = json_pack("{s:s, s:s}", "model", model, "created_at", at);
  if (chat)
    json_object_set_new(o, "message", json_pack("{s:s, s:s}", "role", "assistant", "content", ""));
  else
    json_object_set_new(o, "response", json_string(""));
  json_object_set_new(o, "done", json_true());
  json_object_set_new(o, "done_reason", json_string(unload ? "unload" : "load"));
  return o;
}

/* ---- /api/tags, /api/show, /api/ps ---- */

bool ollama_lists(const matrix_model *m) {
  return m->engine == MATRIX_ENGINE_LLAMA &&
         (m->caps & (MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION | MATRIX_CAP_EMBED));
}

/* llama.cpp's file types: name and about how many bits each weight takes. */
static const struct {
  int ft;
  const char *name;
  double bpw;
} ftypes[] = {
    {0, "F32", 32},          {1, "F16", 16},      {2, "Q4_0", 4.5},    {3, "Q4_1", 5},
    {7, "Q8_0", 8.5},        {8, "Q5_0", 5.5},    {9, "Q5_1", 6},      {10, "Q2_K", 3.0},
    {11, "Q3_K_S", 3.5},     {12, "Q3_K_M", 3.9}, {13, "Q3_K_L", 4.3}, {14, "Q4_K_S", 4.6},
    {15, "Q4_K_M", 4.9},     {16, "Q5_K_S", 5.5}, {17, "Q5_K_M", 5.7}, {18, "Q6_K", 6.6},
    {19, "IQ2_XXS", 2.1},    {20, "IQ2_XS", 2.3}, {21, "Q2_K_S", 2.6}, {22, "IQ3_XS", 3.3},
    {23, "IQ3_XXS", 3.1},    {24, "IQ1_S", 1.6},  {25, "IQ4_NL", 4.5}, {26, "IQ3_S", 3.4},
    {27, "IQ3_M", 3.7},      {28, "IQ2_S", 2.5},  {29, "IQ2_M", 2.7},  {30, "IQ4_XS", 4.3},
    {31, "IQ1_M", 1.8},      {32, "BF16", 16},    {36, "TQ1_0", 1.7},  {37, "TQ2_0", 2.1},
    {38, "MXFP4_MOE", 4.25},
};

static int ftype_index(int ft) {
  for (size_t i = 0; i < sizeof ftypes / sizeof *ftypes; i++)
    if (ftypes[i].ft == ft) return (int)i;
  return -1;
}

const char *ollama_quant_name(int file_type) {
  int i = ftype_index(file_type);
  return i < 0 ? "" : ftypes[i].name;
}

void ollama_param_size(long long file_bytes, int file_type, char *out, size_t len) {
  int i = ftype_index(file_type);
  if (i < 0 || file_bytes <= 0) {
    snprintf(out, len, "%s", "");
    return;
  }
  double p = (double)file_bytes * 8.0 / ftypes[i].bpw;
  if (p >= 1e9)
    snprintf(out, len, "%.1fB", p / 1e9);
  else if (p >= 1e6)
    snprintf(out, len, "%.0fM", p / 1e6);
  else
    snprintf(out, len, "%.0fK", p / 1e3);
}

void ollama_digest(const matrix_model *m, long long mtime, char out[65]) {
  uint64_t h = SY_FNV_OFFSET;
  h = sy_fnv1a64(h, m->name, strlen(m->name) + 1);
  if (m->file) h = sy_fnv1a64(h, m->file, strlen(m->file) + 1);
  h = sy_fnv1a64(h, &m->file_bytes, sizeof m->file_bytes);
  h = sy_fnv1a64(h, &mtime, sizeof mtime);
  for (int k = 0; k < 4; k++) { /* four rounds: 64 hex digits, Ollama's length */
    h = sy_fnv1a64(h, &k, sizeof k);
    snprintf(out + 16 * k, 17, "%016llx", (unsigned long long)h);
  }
}

json_t *ollama_details(const matrix_model *m) {
  char ps[32];
  const char *arch = m->arch ? m->arch : "";
  ollama_param_size(m->file_bytes, m->file_type, ps, sizeof ps);
  json_t *fam = json_array();
  if (*arch) json_array_append_new(fam, json_string(arch));
  if (m->mmproj) json_array_append_new(fam, json_string("clip"));
  return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "parent_model", "", "format", "gguf", "family",
                   arch, "families", fam, "parameter_size", ps, "quantization_level",
                   ollama_quant_name(m->file_type));
}

static json_t *time_json(long long secs) {
  struct timespec ts = {.tv_sec = (time_t)secs};
  char at[48];
  ollama_time(&ts, at, sizeof at);
  return json_string(at);
}

json_t *ollama_tags_entry(const matrix_model *m, long long mtime) {
  char dg[65];
  ollama_digest(m, mtime, dg);
  return json_pack("{s:s, s:s, s:o, s:I, s:s, s:o}", "name", m->name, "model", m->name,
                   "modified_at", time_json(mtime), "size",
                   (json_int_t)(m->file_bytes + m->mmproj_bytes), "digest", dg, "details",
                   ollama_details(m));
}

json_t *ollama_router_entry(const matrix_router *rt, long long started) {
  uint64_t h = sy_fnv1a64(SY_FNV_OFFSET, rt->name, strlen(rt->name));
  char dg[65];
  for (int k = 0; k < 4; k++) {
    h = sy_fnv1a64(h, &k, sizeof k);
    snprintf(dg + 16 * k, 17, "%016llx", (unsigned long long)h);
  }
  return json_pack("{s:s, s:s, s:o, s:i, s:s, s:{s:s, s:s, s:s, s:[s], s:s, s:s}}", "name",
                   rt->name, "model", rt->name, "modified_at", time_json(started), "size", 0,
                   "digest", dg, "details", "parent_model", "", "format", "router", "family",
                   "router", "families", "router", "parameter_size", "", "quantization_level", "");
}

/* Ollama's capability names for m. */
static json_t *capabilities_json(const matrix_model *m) {
  json_t *c = json_array();
  if (m->caps & (MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION))
    json_array_append_new(c, json_string("completion"));
  if (m->caps & MATRIX_CAP_CHAT) json_array_append_new(c, json_string("tools"));
  if (m->caps & MATRIX_CAP_VISION) json_array_append_new(c, json_string("vision"));
  if (m->caps & MATRIX_CAP_EMBED) json_array_append_new(c, json_string("embedding"));
  return c;
}

json_t *ollama_show(const matrix_model *m, long long mtime, const char *gguf_template) {
  const char *arch = m->arch ? m->arch : "";
  const char *base = m->file ? strrchr(m->file, '/') : NULL;
  base = base ? base + 1 : m->file ? m->file : "";
  sy_buf mf = {0}, params = {0};
  sy_buf_printf(&mf,
                "# Modelfile generated by Switchyard: the model matrix is the source of truth\n"
                "FROM %s\nPARAMETER num_ctx %d\n",
                base, m->context);
  sy_buf_printf(&params, "num_ctx                        %d", m->context);
  json_t *info =
      json_pack("{s:s, s:i}", "general.architecture", arch, "general.file_type", m->file_type);
  char key[160];
  if (*arch && m->n_ctx_train > 0) {
    snprintf(key, sizeof key, "%s.context_length", arch);
    json_object_set_new(info, key, json_integer(m->n_ctx_train));
  }
  if (*arch && m->n_embd > 0) {
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    json_object_set_new(info, key, json_integer((json_int_t)m->n_embd));
  }
  json_t *aliases = json_array();
  for (size_t i = 0; i < m->n_aliases; i++)
    json_array_append_new(aliases, json_string(m->aliases[i]));
  json_t *o = json_pack(
      "{s:s, s:s%, s:s%, s:s, s:s, s:o, s:o, s:o, s:o, s:{s:i, s:i, s:i, s:o, s:b}}", "license", "",
      "modelfile", mf.data ? mf.data : "", mf.len, "parameters", params.data ? params.data : "",
      params.len, "template",
      m->chat_template ? m->chat_template
      : gguf_template  ? gguf_template
                       : "",
      "system", "", "details", ollama_details(m), "model_info", info, "capabilities",
      capabilities_json(m), "modified_at", time_json(mtime), "switchyard", "context", m->context,
      "parallel", m->parallel, "keep_alive", m->keep_alive_s, "aliases", aliases, "pinned", m->pin);
  if (o && m->mmproj)
    json_object_set_new(o, "projector_info",
                        json_pack("{s:I}", "size", (json_int_t)m->mmproj_bytes));
  sy_buf_free(&mf);
  sy_buf_free(&params);
  return o;
}

void ollama_ps_fields(json_t *ps, const matrix_model *m, long long mtime, time_t now) {
  const char *name = json_string_value(json_object_get(ps, "name"));
  if (!name) return;
  json_object_set_new(ps, "model", json_string(name));
  char dg[65] = "";
  if (m) ollama_digest(m, mtime, dg);
  json_object_set_new(ps, "digest", json_string(dg));
  json_object_set_new(
      ps, "details",
      m ? ollama_details(m)
        : json_pack("{s:s, s:s, s:s, s:[], s:s, s:s}", "parent_model", "", "format", "", "family",
                    "", "families", "parameter_size", "", "quantization_level", ""));
  json_t *exp = json_object_get(ps, "expires_in_s");
  long long secs = json_is_integer(exp) ? (long long)json_integer_value(exp) : 0;
  /* forever: Ollama's longest duration from now (about 292 years) */
  long long at = secs < 0 ? (long long)now + 9214646400LL : (long long)now + secs;
  json_object_set_new(ps, "expires_at", time_json(at));
  long long vram = 0; /* every pool but the host's RAM */
  size_t i;
  json_t *dv;
  json_array_foreach(json_object_get(ps, "devices"), i, dv) {
    const char *dn = json_string_value(json_object_get(dv, "device"));
    long long e = jint(dv, "estimated"), me = jint(dv, "measured");
    if (dn && strcmp(dn, "Host") != 0) vram += me > e ? me : e;
  }
  json_object_set_new(ps, "size_vram", json_integer((json_int_t)vram));
  json_t *ctx = json_object_get(ps, "context");
  json_object_set_new(ps, "context_length",
                      json_is_integer(ctx) ? json_incref(ctx) : json_integer(m ? m->context : 0));
}
