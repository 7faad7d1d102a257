/* responses.c — the OpenAI Responses API on the real daemon: hostile bodies (malformed JSON,
 * invalid UTF-8, wrong types, huge arrays, unknown item and tool types, refused features) are 400s
 * in OpenAI's error shape and the daemon stays up; the response store (GET, DELETE, 404s,
 * store: false, previous_response_id); the typed event stream (named events whose data agrees,
 * sequence numbers, the last event; an error before the first token is a plain HTTP error); and
 * the same conversation through /v1/chat/completions and /v1/responses giving the same tokens on
 * the deterministic model, whole, streamed, by previous_response_id and with function calls.
 *
 * Asserts on structure and equality, never on meaning; never sleeps. */
#include "harness.h"

/* r is an OpenAI-style error with this status, code and param (param NULL: null). */
static bool is_error(const resp *r, long status, const char *code, const char *param) {
  const json_t *p = it_jpath(r->json, "error.param");
  return it_is_error(r, status, code) &&
         (param ? it_str_is(json_string_value(p), param) : json_is_null(p));
}

/* The named events of a Responses stream ("event: T\ndata: {...type: T...}\n\n"); *ok false when
 * a block is malformed, its name and its data's type differ, or a [DONE] appears. */
static json_t *named_events(const sy_buf *b, bool *ok) {
  json_t *arr = json_array();
  const char *p = b->data ? b->data : "";
  *ok = true;
  while (*p) {
    const char *end = strstr(p, "\n\n"), *nl = strchr(p, '\n');
    if (!end || strncmp(p, "event: ", 7) != 0 || !nl || strncmp(nl + 1, "data: ", 6) != 0) {
      *ok = false;
      break;
    }
    json_t *e = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL);
    const char *type = json_string_value(json_object_get(e, "type"));
    if (!type || strlen(type) != (size_t)(nl - p - 7) || strncmp(type, p + 7, strlen(type)) != 0)
      *ok = false;
    if (e) json_array_append_new(arr, e);
    p = end + 2;
  }
  return arr;
}

/* The text of a response object's message items. */
static void output_text(const json_t *rsp, sy_buf *b) {
  size_t i, k;
  json_t *item, *part;
  json_array_foreach(json_object_get(rsp, "output"), i, item) {
    json_array_foreach(json_object_get(item, "content"), k, part) {
      const char *t = it_jstr(part, "text");
      if (t && it_str_is(it_jstr(part, "type"), "output_text")) sy_buf_puts(b, t);
    }
  }
}

static void post_text(const char *body, resp *r) { it_post("/v1/responses", body, r); }

static void t_hostile(void) {
  static const struct {
    const char *body;
    long status;
    const char *code, *param;
  } cases[] = {
      {"{", 400, "invalid_json", NULL},
      {"[1,2]", 400, "invalid_json", NULL},
      {"{\"model\":\"chat\",\"input\":\"a\",\"input\":\"b\"}", 400, "invalid_json", NULL},
      {"{\"model\":\"chat\",\"input\":\"\xff\xfe\"}", 400, "invalid_json", NULL},
      {"{\"model\":\"chat\",\"input\":\"\xc3\x28\"}", 400, "invalid_json", NULL},
      {"{\"model\":5,\"input\":\"x\"}", 400, "invalid_type", "model"},
      {"{\"input\":\"x\"}", 400, "missing_required_parameter", "model"},
      {"{\"model\":\"nope\",\"input\":\"x\"}", 404, "model_not_found", "model"},
      {"{\"model\":\"embed\",\"input\":\"x\"}", 400, "wrong_capability", "model"},
      {"{\"model\":\"chat\"}", 400, "missing_required_parameter", "input"},
      {"{\"model\":\"chat\",\"input\":5}", 400, "invalid_type", "input"},
      {"{\"model\":\"chat\",\"input\":[{\"type\":\"web_search_call\"}]}", 400,
       "unsupported_content", "input"},
      {"{\"model\":\"chat\",\"input\":[{\"type\":\"mystery\",\"role\":\"user\"}]}", 400,
       "unsupported_content", "input"},
      {"{\"model\":\"chat\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\","
       "\"file_id\":\"f\"}]}]}",
       400, "unsupported_content", "input"},
      {"{\"model\":\"chat\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
       "\"image_url\":\"data:image/png;base64,AAAA\"}]}]}",
       400, "unsupported_content", "input"},
      {"{\"model\":\"chat\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"x\","
       "\"output\":\"y\"}]}",
       400, "invalid_value", "input"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"tools\":\"all\"}", 400, "invalid_type", "tools"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", 400,
       "unsupported_parameter", "tools"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"max_output_tokens\":\"5\"}", 400, "invalid_value",
       "max_output_tokens"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"stream\":\"yes\"}", 400, "invalid_type", "stream"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"temperature\":[]}", 400, "invalid_value",
       "temperature"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"xml\"}}}", 400,
       "invalid_value", "text.format"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"reasoning\":{\"effort\":\"huge\"}}", 400,
       "invalid_value", "reasoning.effort"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"background\":true}", 400, "unsupported_parameter",
       "background"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"conversation\":\"conv_1\"}", 400,
       "unsupported_parameter", "conversation"},
      {"{\"model\":\"chat\",\"input\":\"x\",\"previous_response_id\":7}", 400, "invalid_type",
       "previous_response_id"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    resp r;
    post_text(cases[i].body, &r);
    CHECK(is_error(&r, cases[i].status, cases[i].code, cases[i].param), "%s: %ld %s", cases[i].body,
          r.status, r.body.data);
    it_resp_clear(&r);
  }
  /* huge arrays: items, parts, tools */
  json_t *items = json_array();
  for (int i = 0; i < 5000; i++)
    json_array_append_new(items, json_pack("{s:s, s:s}", "role", "user", "content", "x"));
  resp r;
  it_post_json("/v1/responses", json_pack("{s:s, s:o}", "model", "chat", "input", items), &r);
  CHECK(is_error(&r, 400, "invalid_value", "input"), "5000 items: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  json_t *parts = json_array();
  for (int i = 0; i < 2000; i++)
    json_array_append_new(parts, json_pack("{s:s, s:s}", "type", "input_text", "text", "x"));
  it_post_json("/v1/responses",
               json_pack("{s:s, s:[{s:s, s:o}]}", "model", "chat", "input", "role", "user",
                         "content", parts),
               &r);
  CHECK(is_error(&r, 400, "invalid_type", "input"), "2000 parts: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  json_t *tools = json_array();
  for (int i = 0; i < 200; i++)
    json_array_append_new(tools, json_pack("{s:s, s:s}", "type", "function", "name", "f"));
  it_post_json("/v1/responses",
               json_pack("{s:s, s:s, s:o}", "model", "chat", "input", "x", "tools", tools), &r);
  CHECK(is_error(&r, 400, "invalid_type", "tools"), "200 tools: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* nested deeper than the parser takes */
  sy_buf deep = {0};
  sy_buf_puts(&deep, "{\"model\":\"chat\",\"input\":\"x\",\"metadata\":");
  for (int i = 0; i < 5000; i++) sy_buf_puts(&deep, "[");
  post_text(deep.data, &r);
  sy_buf_free(&deep);
  CHECK(is_error(&r, 400, "invalid_json", NULL), "deep: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* a prompt longer than the context is refused before any event, even when streamed */
  sy_buf big = {0};
  for (int i = 0; i < 1200; i++) sy_buf_puts(&big, "word ");
  it_post_json("/v1/responses",
               json_pack("{s:s, s:s, s:b}", "model", "chat", "input", big.data, "stream", 1), &r);
  sy_buf_free(&big);
  CHECK(is_error(&r, 400, "context_length_exceeded", "input"), "too long: %ld %s", r.status,
        r.body.data);
  CHECK(strncmp(r.content_type, "application/json", 16) == 0, "content type %s", r.content_type);
  it_resp_clear(&r);
  it_get("/health", &r);
  CHECK(r.status == 200, "the daemon is still up: %ld", r.status);
  it_resp_clear(&r);
}

static void t_store(void) {
  resp r, g;
  it_post_json("/v1/responses",
               json_pack("{s:s, s:s, s:i, s:f, s:{s:s}}", "model", "chat", "input", "Remember me",
                         "max_output_tokens", 6, "temperature", 0.0, "metadata", "k", "v"),
               &r);
  CHECK(r.status == 200, "create: %ld %s", r.status, r.body.data);
  const char *id = it_jstr(r.json, "id");
  CHECK(id && strncmp(id, "resp_", 5) == 0, "id %s", id);
  CHECK(it_str_is(it_jstr(r.json, "object"), "response"), "object");
  CHECK(it_str_is(r.model_hdr, "chat"), "X-Switchyard-Model %s", r.model_hdr);
  char path[128];
  snprintf(path, sizeof path, "/v1/responses/%s", id);
  it_get(path, &g);
  CHECK(g.status == 200 && json_equal(g.json, r.json), "GET: %ld %s", g.status, g.body.data);
  it_resp_clear(&g);
  /* a continuation holds the first turn: a longer prompt */
  json_t *q = json_pack("{s:s, s:s, s:s, s:i, s:f}", "model", "chat", "input", "And now?",
                        "previous_response_id", id, "max_output_tokens", 4, "temperature", 0.0);
  it_post_json("/v1/responses", q, &g);
  CHECK(g.status == 200, "continue: %ld %s", g.status, g.body.data);
  CHECK(it_str_is(it_jstr(g.json, "previous_response_id"), id), "echoed previous id");
  CHECK(it_jnum(g.json, "usage.input_tokens") > it_jnum(r.json, "usage.input_tokens") + 3,
        "continuation prompt %lld vs %lld", it_jnum(g.json, "usage.input_tokens"),
        it_jnum(r.json, "usage.input_tokens"));
  it_resp_clear(&g);
  it_http_do(&D, "DELETE", path, NULL, &g, NULL);
  CHECK(g.status == 200 && json_is_true(it_jpath(g.json, "deleted")) &&
            it_str_is(it_jstr(g.json, "id"), id),
        "DELETE: %ld %s", g.status, g.body.data);
  it_resp_clear(&g);
  it_get(path, &g);
  CHECK(is_error(&g, 404, "response_not_found", NULL), "GET deleted: %ld %s", g.status,
        g.body.data);
  it_resp_clear(&g);
  it_http_do(&D, "DELETE", path, NULL, &g, NULL);
  CHECK(is_error(&g, 404, "response_not_found", NULL), "DELETE twice: %ld", g.status);
  it_resp_clear(&g);
  q = json_pack("{s:s, s:s, s:s}", "model", "chat", "input", "x", "previous_response_id", id);
  it_post_json("/v1/responses", q, &g);
  CHECK(is_error(&g, 404, "previous_response_not_found", "previous_response_id"),
        "continue deleted: %ld %s", g.status, g.body.data);
  it_resp_clear(&g);
  it_resp_clear(&r);
  /* store: false: answered, not kept */
  it_post_json("/v1/responses",
               json_pack("{s:s, s:s, s:i, s:b}", "model", "chat", "input", "x", "max_output_tokens",
                         2, "store", 0),
               &r);
  CHECK(r.status == 200 && json_is_false(it_jpath(r.json, "store")), "store false: %ld", r.status);
  snprintf(path, sizeof path, "/v1/responses/%s", it_jstr(r.json, "id"));
  it_get(path, &g);
  CHECK(g.status == 404, "store false kept: %ld", g.status);
  it_resp_clear(&g);
  it_resp_clear(&r);
  /* what the route table answers */
  it_get("/v1/responses/resp_x/input_items", &g);
  CHECK(is_error(&g, 404, "not_found", NULL), "input_items: %ld %s", g.status, g.body.data);
  it_resp_clear(&g);
  it_get("/v1/responses/resp_x?stream=true", &g);
  CHECK(is_error(&g, 400, "unsupported_parameter", "stream"), "stream GET: %ld", g.status);
  it_resp_clear(&g);
  it_http_do(&D, "PUT", "/v1/responses/resp_x", "{}", &g, NULL);
  CHECK(is_error(&g, 405, "method_not_allowed", NULL), "PUT: %ld", g.status);
  it_resp_clear(&g);
  it_get("/v1/responses", &g);
  CHECK(is_error(&g, 405, "method_not_allowed", NULL), "GET list: %ld", g.status);
  it_resp_clear(&g);
  /* input_tokens: the prompt's size, nothing kept */
  it_post_json("/v1/responses/input_tokens",
               json_pack("{s:s, s:s}", "model", "chat", "input", "Remember me"), &g);
  CHECK(g.status == 200 && it_str_is(it_jstr(g.json, "object"), "response.input_tokens") &&
            it_jnum(g.json, "input_tokens") > 3,
        "input_tokens: %ld %s", g.status, g.body.data);
  it_resp_clear(&g);
}

static void t_stream(void) {
  resp r;
  it_post_json("/v1/responses",
               json_pack("{s:s, s:s, s:i, s:f, s:b}", "model", "chat", "input", "Stream please",
                         "max_output_tokens", 10, "temperature", 0.0, "stream", 1),
               &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strncmp(r.content_type, "text/event-stream", 17) == 0, "content type %s", r.content_type);
  CHECK(!strstr(r.body.data, "[DONE]"), "no [DONE] in a Responses stream");
  bool ok;
  json_t *ev = named_events(&r.body, &ok);
  CHECK(ok, "malformed stream: %s", r.body.data);
  size_t n = json_array_size(ev);
  CHECK(n >= 6, "%zu events", n);
  CHECK(it_str_is(it_jstr(json_array_get(ev, 0), "type"), "response.created"), "first");
  CHECK(it_str_is(it_jstr(json_array_get(ev, 1), "type"), "response.in_progress"), "second");
  sy_buf deltas = {0};
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) {
    CHECK(it_jnum(e, "sequence_number") == (long long)i, "sequence %zu", i);
    if (it_str_is(it_jstr(e, "type"), "response.output_text.delta"))
      sy_buf_puts(&deltas, it_jstr(e, "delta"));
  }
  json_t *last = json_array_get(ev, n - 1);
  const char *lt = it_jstr(last, "type");
  CHECK(it_str_is(lt, "response.completed") || it_str_is(lt, "response.incomplete"), "last %s", lt);
  sy_buf final = {0};
  output_text(json_object_get(last, "response"), &final);
  CHECK(deltas.len == final.len && (!deltas.len || !memcmp(deltas.data, final.data, deltas.len)),
        "deltas '%s' vs final '%s'", deltas.data, final.data);
  /* the stored response is the last event's */
  char path[128];
  snprintf(path, sizeof path, "/v1/responses/%s", it_jstr(last, "response.id"));
  resp g;
  it_get(path, &g);
  CHECK(g.status == 200 && json_equal(g.json, json_object_get(last, "response")),
        "stored vs streamed");
  it_resp_clear(&g);
  sy_buf_free(&deltas);
  sy_buf_free(&final);
  json_decref(ev);
  it_resp_clear(&r);
}

/* The chat answer's text and token counts vs a response's. */
static bool same_answer(const resp *chat, const resp *rsp, char *why, size_t wl) {
  sy_buf t = {0};
  output_text(rsp->json, &t);
  const char *ct = it_jstr(chat->json, "choices.0.message.content");
  bool same =
      ct && strcmp(ct, t.data ? t.data : "") == 0 &&
      it_jnum(chat->json, "usage.prompt_tokens") == it_jnum(rsp->json, "usage.input_tokens") &&
      it_jnum(chat->json, "usage.completion_tokens") == it_jnum(rsp->json, "usage.output_tokens");
  snprintf(why, wl, "chat '%s' (%lld+%lld) vs responses '%s' (%lld+%lld)", ct ? ct : "(null)",
           it_jnum(chat->json, "usage.prompt_tokens"),
           it_jnum(chat->json, "usage.completion_tokens"), t.data ? t.data : "",
           it_jnum(rsp->json, "usage.input_tokens"), it_jnum(rsp->json, "usage.output_tokens"));
  sy_buf_free(&t);
  return same;
}

/* The same conversation through both doors, greedy on the deterministic model: the same tokens. */
static void t_same_tokens(void) {
  char why[512];
  resp c, s;
  /* one system + user turn: instructions and a string input */
  it_post_json("/v1/chat/completions", it_chat_body("chat", "Tell me about ships", 16, false), &c);
  it_post_json("/v1/responses",
               json_pack("{s:s, s:s, s:s, s:i, s:f, s:i}", "model", "chat", "instructions",
                         "You are terse.", "input", "Tell me about ships", "max_output_tokens", 16,
                         "temperature", 0.0, "seed", 42),
               &s);
  CHECK(c.status == 200 && s.status == 200, "%ld %ld %s", c.status, s.status, s.body.data);
  CHECK(same_answer(&c, &s, why, sizeof why), "plain: %s", why);
  const char *first = it_jstr(s.json, "output.0.content.0.text");
  char *answer1 = strdup(first ? first : "");
  char id1[64];
  snprintf(id1, sizeof id1, "%s", it_jstr(s.json, "id"));
  it_resp_clear(&s);
  /* streamed: the same text */
  it_post_json("/v1/responses",
               json_pack("{s:s, s:s, s:s, s:i, s:f, s:b}", "model", "chat", "instructions",
                         "You are terse.", "input", "Tell me about ships", "max_output_tokens", 16,
                         "temperature", 0.0, "stream", 1),
               &s);
  bool ok;
  json_t *ev = named_events(&s.body, &ok);
  json_t *last = json_object_get(json_array_get(ev, json_array_size(ev) - 1), "response");
  resp fake = {.json = last};
  CHECK(ok && same_answer(&c, &fake, why, sizeof why), "streamed: %s", why);
  json_decref(ev);
  it_resp_clear(&s);
  it_resp_clear(&c);
  /* a second turn: the whole history in chat; previous_response_id, and the items, in responses */
  json_t *cq = it_chat_body("chat", "Tell me about ships", 12, false);
  json_array_append_new(json_object_get(cq, "messages"),
                        json_pack("{s:s, s:s}", "role", "assistant", "content", answer1));
  json_array_append_new(json_object_get(cq, "messages"),
                        json_pack("{s:s, s:s}", "role", "user", "content", "And trains?"));
  it_post_json("/v1/chat/completions", cq, &c);
  CHECK(c.status == 200, "chat turn 2: %ld %s", c.status, c.body.data);
  it_post_json("/v1/responses",
               json_pack("{s:s, s:s, s:s, s:s, s:i, s:f}", "model", "chat", "instructions",
                         "You are terse.", "previous_response_id", id1, "input", "And trains?",
                         "max_output_tokens", 12, "temperature", 0.0),
               &s);
  CHECK(s.status == 200 && same_answer(&c, &s, why, sizeof why), "by id: %ld %s", s.status, why);
  it_resp_clear(&s);
  it_post_json(
      "/v1/responses",
      json_pack("{s:s, s:s, s:[{s:s, s:s}, {s:s, s:s, s:[{s:s, s:s}]}, {s:s, s:s}], s:i, s:f}",
                "model", "chat", "instructions", "You are terse.", "input", "role", "user",
                "content", "Tell me about ships", "type", "message", "role", "assistant", "content",
                "type", "output_text", "text", answer1, "role", "user", "content", "And trains?",
                "max_output_tokens", 12, "temperature", 0.0),
      &s);
  CHECK(s.status == 200 && same_answer(&c, &s, why, sizeof why), "items: %ld %s", s.status, why);
  it_resp_clear(&s);
  it_resp_clear(&c);
  free(answer1);
  /* function calls: the assistant's call and its output, both ways */
  const char *tools_chat =
      "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
      "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
  const char *tools_rsp =
      "[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Weather\",\"parameters\":"
      "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}]";
  json_t *cb = json_pack(
      "{s:s, s:[{s:s, s:s}, {s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}, {s:s, s:s, s:s}], s:o, s:i, "
      "s:f}",
      "model", "chat", "messages", "role", "user", "content", "Weather in Oslo?", "role",
      "assistant", "content", "tool_calls", "id", "call_1", "type", "function", "function", "name",
      "get_weather", "arguments", "{\"city\":\"Oslo\"}", "role", "tool", "tool_call_id", "call_1",
      "content", "-3 C", "tools", json_loads(tools_chat, 0, NULL), "max_tokens", 10, "temperature",
      0.0);
  it_post_json("/v1/chat/completions", cb, &c);
  json_t *rb = json_pack(
      "{s:s, s:[{s:s, s:s}, {s:s, s:s, s:s, s:s}, {s:s, s:s, s:s}], s:o, s:i, s:f}", "model",
      "chat", "input", "role", "user", "content", "Weather in Oslo?", "type", "function_call",
      "call_id", "call_1", "name", "get_weather", "arguments", "{\"city\":\"Oslo\"}", "type",
      "function_call_output", "call_id", "call_1", "output", "-3 C", "tools",
      json_loads(tools_rsp, 0, NULL), "max_output_tokens", 10, "temperature", 0.0);
  it_post_json("/v1/responses", rb, &s);
  CHECK(c.status == 200 && s.status == 200, "calls: %ld %ld %s", c.status, s.status, s.body.data);
  /* the answer may itself be a call: compare calls too */
  const char *cc = it_jstr(c.json, "choices.0.message.tool_calls.0.function.arguments");
  const char *rc = NULL;
  size_t i;
  json_t *item;
  json_array_foreach(json_object_get(s.json, "output"), i,
                     item) if (it_str_is(it_jstr(item, "type"), "function_call")) rc =
      it_jstr(item, "arguments");
  CHECK((!cc && !rc) || (cc && rc && strcmp(cc, rc) == 0), "call arguments %s vs %s", cc, rc);
  CHECK(it_jnum(c.json, "usage.prompt_tokens") == it_jnum(s.json, "usage.input_tokens") &&
            it_jnum(c.json, "usage.completion_tokens") == it_jnum(s.json, "usage.output_tokens"),
        "calls: %s vs %s", c.body.data, s.body.data);
  if (!cc) CHECK(same_answer(&c, &s, why, sizeof why), "calls: %s", why);
  it_resp_clear(&c);
  it_resp_clear(&s);
  /* counted under their own endpoint */
  it_get("/metrics", &c);
  CHECK(strstr(c.body.data ? c.body.data : "",
               "switchyard_requests_total{model=\"chat\",endpoint=\"responses\",status=\"200\"}"),
        "metrics: no responses counter");
  it_resp_clear(&c);
}

static const it_test tests[] = {
    {"responses_hostile", t_hostile, false},
    {"responses_store", t_store, false},
    {"responses_stream", t_stream, false},
    {"responses_same_tokens", t_same_tokens, false},
};
const itest_table itest_responses = {"responses", tests, sizeof tests / sizeof *tests};
