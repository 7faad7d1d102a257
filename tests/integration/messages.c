/* messages.c — Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) against the
 * real daemon and workers:
 *   - a plain answer and a streamed one: Anthropic's message object, its events in Anthropic's
 *     order (message_start, ping, blocks started/delta'd/stopped, message_delta, message_stop),
 *     the same text both ways, /metrics counting the endpoint;
 *   - the same conversation through /v1/chat/completions and /v1/messages gives the same tokens
 *     (greedy, the deterministic model), and the same prompt with tools and a tool round trip
 *     (tool_use / tool_result against tool_calls / a tool message) renders to as many tokens;
 *     count_tokens counts what a generation's prompt holds, also past the context;
 *   - stop_sequences (stop_reason stop_sequence, the string named), a forced tool call (tool_use
 *     with a toolu_ id and its input, whole and streamed as input_json_delta), thinking (a
 *     thinking block with its signature field, signature_delta before it stops);
 *   - hostile input: malformed JSON, wrong types, huge arrays, invalid UTF-8, unknown block
 *     types, unknown fields, each a 400 in Anthropic's error shape naming the field; 404, 405,
 *     413 in the same shape; the daemon stays up;
 *   - a daemon with API keys (x-api-key or Bearer; a 401 in Anthropic's shape on its paths, in
 *     OpenAI's elsewhere) and a router (model "auto": its rule picks the model that answers).
 * Texts are compared only between requests on the same model and settings (greedy), never with
 * fixed strings. */
#include "harness.h"

/* POST body (stolen) to path on d with extra headers (NULL-terminated, or NULL). */
static void post_at(const daemon_proc *d, const char *path, json_t *body, resp *r,
                    const char *const *headers) {
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  it_http_do(d, "POST", path, s, r, headers);
  free(s);
}

static void post(const char *path, json_t *body, resp *r) { post_at(&D, path, body, r, NULL); }

/* {"model", "max_tokens", "messages": [user content]} (new reference), greedy. */
static json_t *msg_body(const char *model, const char *content, int max_tokens) {
  return json_pack("{s:s, s:i, s:f, s:[{s:s, s:s}]}", "model", model, "max_tokens", max_tokens,
                   "temperature", 0.0, "messages", "role", "user", "content", content);
}

/* r is Anthropic's error with this status and error type, its message holding says (or NULL). */
static bool anth_error(const resp *r, long status, const char *type, const char *says) {
  const char *t = it_jstr(r->json, "error.type"), *m = it_jstr(r->json, "error.message");
  return r->status == status && it_str_is(it_jstr(r->json, "type"), "error") &&
         it_str_is(t, type) && m && (!says || strstr(m, says)) && !json_object_get(r->json, "code");
}

/* An Anthropic event stream: [{"event": name, "data": {...}}], NULL when malformed. */
static json_t *sse_named(const sy_buf *b) {
  json_t *arr = json_array();
  const char *p = b->data ? b->data : "";
  while (*p) {
    const char *end = strstr(p, "\n\n"), *nl = strchr(p, '\n');
    if (!end || strncmp(p, "event: ", 7) != 0 || !nl || strncmp(nl + 1, "data: ", 6) != 0) {
      json_decref(arr);
      return NULL;
    }
    json_t *d = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL);
    if (!d) {
      json_decref(arr);
      return NULL;
    }
    json_array_append_new(
        arr, json_pack("{s:s%, s:o}", "event", p + 7, (size_t)(nl - p - 7), "data", d));
    p = end + 2;
  }
  return arr;
}

/* The events' names joined by spaces, and the text of every text_delta / thinking_delta /
 * input_json_delta (in kind order). Checks the order rules on the way: why is set when broken. */
static void walk(const json_t *evs, sy_buf *names, sy_buf *text, sy_buf *thinking, sy_buf *json,
                 char *why, size_t wl) {
  size_t i;
  json_t *e;
  int open = -1, next = 0;
  why[0] = '\0';
  json_array_foreach(evs, i, e) {
    const char *n = it_jstr(e, "event");
    const json_t *d = json_object_get(e, "data");
    sy_buf_printf(names, "%s%s", i ? " " : "", n);
    if (!it_str_is(it_jstr(d, "type"), n) && !why[0])
      snprintf(why, wl, "event %zu: data.type %s", i, it_jstr(d, "type"));
    long long idx = it_jnum(d, "index");
    if (!strcmp(n, "content_block_start")) {
      if ((open >= 0 || idx != next) && !why[0]) snprintf(why, wl, "block %lld started", idx);
      open = (int)idx;
      next++;
    } else if (!strcmp(n, "content_block_delta")) {
      if (idx != open && !why[0]) snprintf(why, wl, "delta for block %lld, open %d", idx, open);
      const char *dt = it_jstr(d, "delta.type");
      if (it_str_is(dt, "text_delta")) sy_buf_puts(text, it_jstr(d, "delta.text"));
      if (it_str_is(dt, "thinking_delta")) sy_buf_puts(thinking, it_jstr(d, "delta.thinking"));
      if (it_str_is(dt, "input_json_delta")) sy_buf_puts(json, it_jstr(d, "delta.partial_json"));
    } else if (!strcmp(n, "content_block_stop")) {
      if (idx != open && !why[0]) snprintf(why, wl, "stop of block %lld, open %d", idx, open);
      open = -1;
    }
  }
  if (open >= 0 && !why[0]) snprintf(why, wl, "block %d never stopped", open);
}

/* The text of a message's text blocks, joined. */
static void text_of(const json_t *msg, sy_buf *out) {
  size_t i;
  json_t *b;
  json_array_foreach(json_object_get(msg, "content"), i,
                     b) if (it_str_is(it_jstr(b, "type"), "text"))
      sy_buf_puts(out, it_jstr(b, "text"));
}

static void t_plain_and_stream(void) {
  resp r;
  post("/v1/messages", msg_body("chat", "Tell me a story", 12), &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  const char *id = it_jstr(r.json, "id");
  CHECK(id && strncmp(id, "msg_", 4) == 0 && it_str_is(it_jstr(r.json, "type"), "message") &&
            it_str_is(it_jstr(r.json, "role"), "assistant") &&
            it_str_is(it_jstr(r.json, "model"), "chat") && it_str_is(r.model_hdr, "chat"),
        "message object: %s", r.body.data);
  const char *sr = it_jstr(r.json, "stop_reason");
  CHECK(it_str_is(sr, "max_tokens") || it_str_is(sr, "end_turn"), "stop_reason %s", sr);
  CHECK(json_is_null(it_jpath(r.json, "stop_sequence")), "stop_sequence null");
  long long in = it_jnum(r.json, "usage.input_tokens"),
            cr = it_jnum(r.json, "usage.cache_read_input_tokens"),
            out = it_jnum(r.json, "usage.output_tokens");
  CHECK(in + cr > 0 && out > 0 && out <= 12 &&
            it_jnum(r.json, "usage.cache_creation_input_tokens") == 0,
        "usage: %s", r.body.data);
  sy_buf whole = {0};
  text_of(r.json, &whole);
  it_resp_clear(&r);

  json_t *q = msg_body("chat", "Tell me a story", 12);
  json_object_set_new(q, "stream", json_true());
  post("/v1/messages", q, &r);
  CHECK(r.status == 200 && strncmp(r.content_type, "text/event-stream", 17) == 0, "stream %ld %s",
        r.status, r.content_type);
  json_t *evs = sse_named(&r.body);
  CHECK(evs, "well-formed named events: %s", r.body.data);
  sy_buf names = {0}, text = {0}, th = {0}, js = {0};
  char why[160];
  walk(evs, &names, &text, &th, &js, why, sizeof why);
  json_t *last_delta = NULL;
  size_t i;
  json_t *e;
  json_array_foreach(evs, i, e) if (it_str_is(it_jstr(e, "event"), "message_delta")) last_delta =
      json_object_get(e, "data");
  bool order = strncmp(names.data, "message_start ping ", 19) == 0 &&
               strstr(names.data, " message_delta message_stop") &&
               strcmp(names.data + names.len - 13, " message_stop") == 0;
  bool same = whole.len == text.len && (whole.len == 0 || !strcmp(whole.data, text.data));
  long long sout = it_jnum(last_delta, "usage.output_tokens");
  json_decref(evs);
  it_resp_clear(&r);
  sy_buf_free(&th);
  sy_buf_free(&js);
  CHECK(!why[0], "event order: %s (%s)", why, names.data);
  CHECK(order, "event names: %s", names.data);
  CHECK(same, "streamed text = whole text: '%s' vs '%s'", text.data, whole.data);
  CHECK(sout == out, "message_delta usage.output_tokens %lld = %lld", sout, out);
  sy_buf_free(&names);
  sy_buf_free(&text);
  sy_buf_free(&whole);

  it_get("/metrics", &r);
  CHECK(r.body.data && strstr(r.body.data, "endpoint=\"messages\",status=\"200\""),
        "/metrics counts the endpoint");
  it_resp_clear(&r);
}

/* The same conversation through both APIs: the same tokens (greedy, deterministic model). */
static void t_same_tokens(void) {
  resp r;
  json_t *chat =
      json_pack("{s:s, s:i, s:f, s:{s:b}, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}",
                "model", "chat", "max_tokens", 16, "temperature", 0.0, "chat_template_kwargs",
                "enable_thinking", 0, "messages", "role", "system", "content", "You are terse.",
                "role", "user", "content", "Name a colour.", "role", "assistant", "content",
                "Blue.", "role", "user", "content", "Another one?");
  post("/v1/chat/completions", chat, &r);
  CHECK(r.status == 200, "chat %ld %s", r.status, r.body.data);
  char ctext[1024];
  snprintf(ctext, sizeof ctext, "%s", it_jstr(r.json, "choices.0.message.content"));
  long long cp = it_jnum(r.json, "usage.prompt_tokens"),
            cc = it_jnum(r.json, "usage.completion_tokens");
  it_resp_clear(&r);
  json_t *msg = json_pack("{s:s, s:i, s:f, s:s, s:[{s:s, s:s}, {s:s, s:[{s:s, s:s}]}, {s:s, s:s}]}",
                          "model", "chat", "max_tokens", 16, "temperature", 0.0, "system",
                          "You are terse.", "messages", "role", "user", "content", "Name a colour.",
                          "role", "assistant", "content", "type", "text", "text", "Blue.", "role",
                          "user", "content", "Another one?");
  json_t *counted = json_pack("{s:s, s:s, s:O}", "model", "chat", "system", "You are terse.",
                              "messages", json_object_get(msg, "messages"));
  json_t *streamed = json_deep_copy(msg);
  post("/v1/messages", msg, &r);
  CHECK(r.status == 200, "messages %ld %s", r.status, r.body.data);
  sy_buf mtext = {0};
  text_of(r.json, &mtext);
  long long mp = it_jnum(r.json, "usage.input_tokens") +
                 it_jnum(r.json, "usage.cache_read_input_tokens"),
            mc = it_jnum(r.json, "usage.output_tokens");
  it_resp_clear(&r);
  json_object_set_new(streamed, "stream", json_true());
  post("/v1/messages", streamed, &r);
  json_t *evs = sse_named(&r.body);
  sy_buf names = {0}, stext = {0}, th = {0}, js = {0};
  char why[160];
  if (evs) walk(evs, &names, &stext, &th, &js, why, sizeof why);
  json_decref(evs);
  it_resp_clear(&r);
  post("/v1/messages/count_tokens", counted, &r);
  long long n = it_jnum(r.json, "input_tokens");
  long cst = r.status;
  it_resp_clear(&r);
  bool same = !strcmp(ctext, mtext.data ? mtext.data : ""),
       same_stream = !strcmp(ctext, stext.data ? stext.data : "");
  sy_buf_free(&names);
  sy_buf_free(&th);
  sy_buf_free(&js);
  CHECK(same, "same text: chat '%.300s', messages '%.300s'", ctext, mtext.data);
  CHECK(same_stream, "same text streamed: chat '%.300s', messages '%.300s'", ctext, stext.data);
  CHECK(cp == mp && cc == mc, "same counts: chat %lld+%lld, messages %lld+%lld", cp, cc, mp, mc);
  CHECK(cst == 200 && n == cp, "count_tokens %ld: %lld, the chat's prompt %lld", cst, n, cp);
  sy_buf_free(&mtext);
  sy_buf_free(&stext);
}

/* A tool round trip renders the same prompt through both APIs (tool_use/tool_result against
 * tool_calls/tool), on qwen3 with its tool template; count_tokens agrees, and counts a prompt
 * longer than the context instead of refusing it. */
static void t_same_prompt_tools(void) {
  const char *schema = "{\"type\":\"object\",\"properties\":{\"unit\":{\"type\":\"string\"}}}";
  json_t *params = json_loads(schema, 0, NULL);
  json_t *chat = json_pack(
      "{s:s, s:i, s:f, s:{s:b}, s:[{s:s, s:{s:s, s:s, s:O}}], s:[{s:s, s:s}, {s:s, s:n, "
      "s:[{s:s, s:s, s:{s:s, s:s}}]}, {s:s, s:s, s:s}]}",
      "model", "tools", "max_tokens", 1, "temperature", 0.0, "chat_template_kwargs",
      "enable_thinking", 0, "tools", "type", "function", "function", "name", "get_weather",
      "description", "Weather", "parameters", params, "messages", "role", "user", "content",
      "Weather in Oslo?", "role", "assistant", "content", "tool_calls", "id", "call_1", "type",
      "function", "function", "name", "get_weather", "arguments", "{\"unit\":\"c\"}", "role",
      "tool", "tool_call_id", "call_1", "content", "-3 C");
  resp r;
  post("/v1/chat/completions", chat, &r);
  CHECK(r.status == 200, "chat %ld %s", r.status, r.body.data);
  long long cp = it_jnum(r.json, "usage.prompt_tokens");
  it_resp_clear(&r);
  json_t *msgs = json_pack(
      "[{s:s, s:s}, {s:s, s:[{s:s, s:s, s:s, s:{s:s}}]}, {s:s, s:[{s:s, s:s, s:s}]}]", "role",
      "user", "content", "Weather in Oslo?", "role", "assistant", "content", "type", "tool_use",
      "id", "call_1", "name", "get_weather", "input", "unit", "c", "role", "user", "content",
      "type", "tool_result", "tool_use_id", "call_1", "content", "-3 C");
  json_t *tools = json_pack("[{s:s, s:s, s:O}]", "name", "get_weather", "description", "Weather",
                            "input_schema", params);
  json_decref(params);
  post("/v1/messages",
       json_pack("{s:s, s:i, s:f, s:O, s:O}", "model", "tools", "max_tokens", 1, "temperature", 0.0,
                 "tools", tools, "messages", msgs),
       &r);
  CHECK(r.status == 200, "messages %ld %s", r.status, r.body.data);
  long long mp =
      it_jnum(r.json, "usage.input_tokens") + it_jnum(r.json, "usage.cache_read_input_tokens");
  it_resp_clear(&r);
  post("/v1/messages/count_tokens",
       json_pack("{s:s, s:o, s:o}", "model", "tools", "tools", tools, "messages", msgs), &r);
  long long n = it_jnum(r.json, "input_tokens");
  CHECK(r.status == 200 && n == cp, "count_tokens %ld: %lld, the chat's prompt %lld", r.status, n,
        cp);
  it_resp_clear(&r);
  CHECK(cp == mp, "the same prompt: chat %lld tokens, messages %lld", cp, mp);
  /* past the context (512 for "chat"): counted, not refused */
  sy_buf big = {0};
  for (int i = 0; i < 400; i++) sy_buf_puts(&big, "lorem ipsum dolor ");
  post("/v1/messages/count_tokens",
       json_pack("{s:s, s:[{s:s, s:s}]}", "model", "chat", "messages", "role", "user", "content",
                 big.data),
       &r);
  CHECK(r.status == 200 && it_jnum(r.json, "input_tokens") > 512, "long prompt counted: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  post("/v1/messages", msg_body("chat", big.data, 4), &r);
  sy_buf_free(&big);
  CHECK(anth_error(&r, 400, "invalid_request_error", "512"), "too long to generate: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
}

static void t_stop_sequence(void) {
  resp r;
  post("/v1/messages", msg_body("chat", "Count with me", 12), &r);
  sy_buf t = {0};
  text_of(r.json, &t);
  it_resp_clear(&r);
  CHECK(t.len >= 4, "some text to cut: '%s'", t.data);
  /* a piece from the middle: the answer must end just before its first occurrence */
  char stop[8];
  size_t at = t.len / 2;
  while (at > 0 && (t.data[at] & 0xC0) == 0x80) at--;
  snprintf(stop, sizeof stop, "%.3s", t.data + at);
  while (strlen(stop) && (stop[strlen(stop) - 1] & 0x80)) stop[strlen(stop) - 1] = '\0';
  const char *first = strstr(t.data, stop);
  size_t keep = first ? (size_t)(first - t.data) : 0;
  json_t *q = msg_body("chat", "Count with me", 12);
  json_object_set_new(q, "stop_sequences", json_pack("[s]", stop));
  post("/v1/messages", q, &r);
  sy_buf cut = {0};
  text_of(r.json, &cut);
  bool ok = it_str_is(it_jstr(r.json, "stop_reason"), "stop_sequence") &&
            it_str_is(it_jstr(r.json, "stop_sequence"), stop) && cut.len == keep &&
            (keep == 0 || !strncmp(cut.data, t.data, keep));
  CHECK(strlen(stop) > 0 && ok, "stop at '%s' of '%s': %s", stop, t.data, r.body.data);
  it_resp_clear(&r);
  sy_buf_free(&t);
  sy_buf_free(&cut);
}

static void t_tool_use(void) {
  const char *tools =
      "[{\"name\":\"get_weather\",\"description\":\"Weather in a city\",\"input_schema\":"
      "{\"type\":\"object\",\"properties\":{\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]}},"
      "\"required\":[\"unit\"],\"additionalProperties\":false}}]";
  json_t *q = msg_body("tools", "What is the weather in Oslo?", 80);
  json_object_set_new(q, "tools", json_loads(tools, 0, NULL));
  json_object_set_new(q, "tool_choice",
                      json_pack("{s:s, s:s, s:b}", "type", "tool", "name", "get_weather",
                                "disable_parallel_tool_use", 1));
  json_t *streamed = json_deep_copy(q);
  resp r;
  post("/v1/messages", q, &r);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "stop_reason"), "tool_use"), "forced call: %s",
        r.body.data);
  const json_t *b = NULL, *x;
  size_t i;
  json_array_foreach(json_object_get(r.json, "content"), i,
                     x) if (it_str_is(it_jstr(x, "type"), "tool_use")) b = x;
  const char *id = it_jstr(b, "id");
  const char *unit = it_jstr(b, "input.unit");
  CHECK(b && id && strncmp(id, "toolu_", 6) == 0 && strlen(id) > 6 &&
            it_str_is(it_jstr(b, "name"), "get_weather") && unit &&
            (!strcmp(unit, "c") || !strcmp(unit, "f")),
        "tool_use block: %s", r.body.data);
  it_resp_clear(&r);
  json_object_set_new(streamed, "stream", json_true());
  post("/v1/messages", streamed, &r);
  json_t *evs = sse_named(&r.body);
  CHECK(evs, "stream: %s", r.body.data);
  sy_buf names = {0}, text = {0}, th = {0}, js = {0};
  char why[160];
  walk(evs, &names, &text, &th, &js, why, sizeof why);
  const json_t *start = NULL, *md = NULL;
  json_array_foreach(evs, i, x) {
    if (it_str_is(it_jstr(x, "data.content_block.type"), "tool_use") && !start)
      start = json_object_get(x, "data");
    if (it_str_is(it_jstr(x, "event"), "message_delta")) md = json_object_get(x, "data");
  }
  json_t *input = js.len ? json_loads(js.data, 0, NULL) : NULL;
  bool ok = !why[0] && start && strncmp(it_jstr(start, "content_block.id"), "toolu_", 6) == 0 &&
            json_is_object(it_jpath(start, "content_block.input")) && json_is_object(input) &&
            it_jstr(input, "unit") && it_str_is(it_jstr(md, "delta.stop_reason"), "tool_use");
  json_decref(input);
  json_decref(evs);
  it_resp_clear(&r);
  CHECK(ok, "streamed tool_use (%s): %s, input_json '%s'", why, names.data, js.data);
  sy_buf_free(&names);
  sy_buf_free(&text);
  sy_buf_free(&th);
  sy_buf_free(&js);
}

/* QwQ's template opens <think> in the prompt: thinking comes back as a thinking block. */
static void t_thinking(void) {
  json_t *q = msg_body("think", "why?", 16);
  json_object_set_new(q, "thinking", json_pack("{s:s}", "type", "adaptive"));
  json_t *streamed = json_deep_copy(q);
  resp r;
  post("/v1/messages", q, &r);
  const json_t *b0 = json_array_get(json_object_get(r.json, "content"), 0);
  const char *th = it_jstr(b0, "thinking");
  CHECK(r.status == 200 && it_str_is(it_jstr(b0, "type"), "thinking") && th && *th &&
            json_is_string(json_object_get(b0, "signature")),
        "a thinking block first: %s", r.body.data);
  it_resp_clear(&r);
  json_object_set_new(streamed, "stream", json_true());
  post("/v1/messages", streamed, &r);
  json_t *evs = sse_named(&r.body);
  CHECK(evs, "stream: %s", r.body.data);
  sy_buf names = {0}, text = {0}, thk = {0}, js = {0};
  char why[160];
  walk(evs, &names, &text, &thk, &js, why, sizeof why);
  bool ok = !why[0] && thk.len > 0 &&
            strstr(names.data, "content_block_delta content_block_stop") &&
            strstr(r.body.data, "\"signature_delta\"");
  json_decref(evs);
  it_resp_clear(&r);
  CHECK(ok, "streamed thinking (%s): %s", why, names.data);
  sy_buf_free(&names);
  sy_buf_free(&text);
  sy_buf_free(&thk);
  sy_buf_free(&js);
}

/* ---- hostile input ---- */

static const struct {
  const char *body, *says;
} hostile[] = {
    {"{bad", "parse the JSON"},
    {"", "parse the JSON"},
    {"[1,2]", "JSON object"},
    {"\"str\"", "JSON"},
    {"{\"model\":\"chat\",\"model\":\"chat\"}", "parse the JSON"},
    {"{\"model\":\"chat\",\"max_tokens\":\"5\",\"messages\":[]}", "max_tokens"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"messages\":\"hi\"}", "messages"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":5}]}",
     "messages.0.content"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":7,\"content\":\"x\"}]}",
     "messages.0.role"},
    {"{\"model\":5,\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     "model"},
    {"{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"temperature\":[],\"messages\":[{\"role\":\"user\","
     "\"content\":\"x\"}]}",
     "temperature"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"system\":{},\"messages\":[{\"role\":\"user\","
     "\"content\":\"x\"}]}",
     "system"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
     "\"video\"}]}]}",
     "messages.0.content.0.type: 'video'"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
     "\"document\",\"source\":{\"type\":\"text\",\"data\":\"x\",\"media_type\":\"text/"
     "plain\"}}]}]}",
     "'document' is not supported"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{}]}]}",
     "messages.0.content.0"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"frequency_penalty\":1,\"messages\":[{\"role\":"
     "\"user\",\"content\":\"x\"}]}",
     "frequency_penalty: unknown field"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
     "\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}}]}"
     "]}",
     "does not take image blocks"},
    {"{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"a\\ud800"
     "b\"}]}",
     "parse the JSON"},
};

static void t_hostile(void) {
  resp r;
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    it_post("/v1/messages", hostile[i].body, &r);
    CHECK(anth_error(&r, 400, "invalid_request_error", hostile[i].says), "case %zu (%s): %ld %s", i,
          hostile[i].body, r.status, r.body.data);
    it_resp_clear(&r);
  }
  /* invalid UTF-8 bytes in a string */
  it_post("/v1/messages",
          "{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\xff"
          "\xfe\"}]}",
          &r);
  CHECK(anth_error(&r, 400, "invalid_request_error", "parse the JSON"), "invalid UTF-8: %s",
        r.body.data);
  it_resp_clear(&r);
  /* huge arrays: 100 000 messages whose last holds an unknown block; 100 000 tools;
   * 100 000 stop sequences; 100 000 text blocks of nothing but a bad one at the end */
  sy_buf b = {0};
  sy_buf_puts(&b, "{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[");
  for (int i = 0; i < 100000; i++) sy_buf_puts(&b, "{\"role\":\"user\",\"content\":\"x\"},");
  sy_buf_puts(&b, "{\"role\":\"user\",\"content\":[{\"type\":\"nope\"}]}]}");
  it_post("/v1/messages", b.data, &r);
  CHECK(anth_error(&r, 400, "invalid_request_error", "messages.100000.content.0.type"),
        "100k messages: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
  b.len = 0;
  sy_buf_puts(&b,
              "{\"model\":\"chat\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
              "\"content\":\"x\"}],\"tools\":[");
  for (int i = 0; i < 100000; i++)
    sy_buf_printf(&b, "%s{\"name\":\"t%d\",\"input_schema\":{\"type\":\"object\"}}", i ? "," : "",
                  i);
  sy_buf_puts(&b, "],\"stop_sequences\":[");
  for (int i = 0; i < 100000; i++) sy_buf_printf(&b, "%s\"s\"", i ? "," : "");
  sy_buf_puts(&b, "]}");
  it_post("/v1/messages", b.data, &r);
  CHECK(anth_error(&r, 400, "invalid_request_error", "stop_sequences"),
        "100k tools and stops: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
  b.len = 0;
  sy_buf_puts(&b, "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":[");
  for (int i = 0; i < 100000; i++) sy_buf_puts(&b, "{\"type\":\"text\",\"text\":\"\"},");
  sy_buf_puts(&b, "{\"type\":\"text\",\"text\":false}]}]}");
  it_post("/v1/messages/count_tokens", b.data, &r);
  CHECK(anth_error(&r, 400, "invalid_request_error", "messages.0.content.100000.text"),
        "100k blocks: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
  /* a body over the limit, an unknown model, a wrong method, an unknown path: the same shape */
  size_t n = 17u << 20;
  char *huge = malloc(n + 1);
  memset(huge, ' ', n);
  huge[n] = '\0';
  huge[0] = '{';
  huge[n - 1] = '}';
  it_post("/v1/messages", huge, &r);
  free(huge);
  CHECK(anth_error(&r, 413, "request_too_large", NULL), "413: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
  post("/v1/messages", msg_body("no-such-model", "x", 4), &r);
  CHECK(anth_error(&r, 404, "not_found_error", "no-such-model"), "404: %s", r.body.data);
  it_resp_clear(&r);
  post("/v1/messages", msg_body("embed", "x", 4), &r);
  CHECK(anth_error(&r, 400, "invalid_request_error", "does not support chat"), "embed model: %s",
        r.body.data);
  it_resp_clear(&r);
  it_get("/v1/messages", &r);
  CHECK(anth_error(&r, 405, "invalid_request_error", "requires POST"), "405: %s", r.body.data);
  it_resp_clear(&r);
  it_post("/v1/messages/batches", "{}", &r);
  CHECK(anth_error(&r, 404, "not_found_error", "Unknown endpoint"), "404 path: %s", r.body.data);
  it_resp_clear(&r);
  /* the OpenAI paths keep OpenAI's shape; the daemon is still up */
  it_post("/v1/chat/completions", "{bad", &r);
  CHECK(it_is_error(&r, 400, "invalid_json"), "chat's shape: %s", r.body.data);
  it_resp_clear(&r);
  it_get("/health", &r);
  CHECK(r.status == 200, "still up");
  it_resp_clear(&r);
  sy_buf_free(&b);
}

/* ---- API keys and routers, on a daemon of its own ---- */

static void keyed_body(void) {
  static const char *const x_key[] = {"x-api-key: sk-anth", "anthropic-version: 2023-06-01", NULL};
  static const char *const bearer[] = {"Authorization: Bearer sk-anth", NULL};
  static const char *const wrong[] = {"x-api-key: sk-wrong", NULL};
  resp r;
  post_at(&B, "/v1/messages", msg_body("chat", "hi", 2), &r, NULL);
  CHECK(anth_error(&r, 401, "authentication_error", "API key"), "no key: %s", r.body.data);
  it_resp_clear(&r);
  post_at(&B, "/v1/messages", msg_body("chat", "hi", 2), &r, wrong);
  CHECK(anth_error(&r, 401, "authentication_error", NULL), "wrong key: %s", r.body.data);
  it_resp_clear(&r);
  post_at(&B, "/v1/messages", msg_body("chat", "hi", 2), &r, x_key);
  CHECK(r.status == 200, "x-api-key: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  post_at(&B, "/v1/messages/count_tokens",
          json_pack("{s:s, s:[{s:s, s:s}]}", "model", "chat", "messages", "role", "user", "content",
                    "hi"),
          &r, bearer);
  CHECK(r.status == 200 && it_jnum(r.json, "input_tokens") > 0, "Bearer: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/v1/models", NULL, &r, NULL);
  CHECK(it_is_error(&r, 401, "invalid_api_key"), "OpenAI's shape elsewhere: %s", r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "GET", "/v1/models", NULL, &r, x_key);
  CHECK(r.status == 200, "x-api-key on an OpenAI path: %ld", r.status);
  it_resp_clear(&r);
  /* a router: tools go to "heavy" (the tools model), the rest to "light" (chat) */
  post_at(&B, "/v1/messages", msg_body("auto", "hi", 2), &r, x_key);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "model"), "chat"), "auto, no tools: %s",
        r.body.data);
  it_resp_clear(&r);
  json_t *q = msg_body("auto", "hi", 2);
  json_object_set_new(q, "tools",
                      json_pack("[{s:s, s:{s:s}}]", "name", "f", "input_schema", "type", "object"));
  post_at(&B, "/v1/messages", q, &r, x_key);
  CHECK(r.status == 200 && it_str_is(it_jstr(r.json, "model"), "tools"), "auto, tools: %s",
        r.body.data);
  it_resp_clear(&r);
}

static void t_keys_and_router(void) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "api_keys: [sk-anth]\nlog_level: warn\nmodels:\n"
           "  - {name: chat, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1}\n"
           "  - {name: tools, file: %s/tiny-qwen3.gguf, context: 512, parallel: 1}\n"
           "routers:\n"
           "  - name: auto\n    routes: {light: chat, heavy: tools}\n"
           "    rules:\n      - {tools: true, route: heavy}\n    default: light\n",
           it_models_dir, it_models_dir);
  it_with_own_daemon("anthropic-keys", yaml, keyed_body);
}

static const it_test tests[] = {
    {"messages_plain_and_stream", t_plain_and_stream, false},
    {"messages_same_tokens", t_same_tokens, false},
    {"messages_same_prompt_tools", t_same_prompt_tools, false},
    {"messages_stop_sequence", t_stop_sequence, false},
    {"messages_tool_use", t_tool_use, false},
    {"messages_thinking", t_thinking, false},
    {"messages_hostile", t_hostile, false},
    {"messages_keys_and_router", t_keys_and_router, false},
};
const itest_table itest_messages = {"messages", tests, sizeof tests / sizeof *tests};
