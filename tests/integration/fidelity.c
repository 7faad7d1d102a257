/* fidelity.c — chat fidelity on the main daemon: tool calls (tool_choice forces a valid call),
 * response_format json_schema (greedy and sampled under the grammar), reasoning split out of the
 * content (QwQ's template), logprobs.
 * Must never happen: a tool call or a schema answer that does not parse or obey, reasoning text
 * leaking into content.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static const char *weather_tools =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a "
    "city\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"unit\":{\"enum\":[\"c\",\"f\"]}},"
    "\"required\":[\"unit\"],\"additionalProperties\":false}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":"
    "\"object\","
    "\"properties\":{},\"additionalProperties\":false}}}]";

static json_t *tools_body(const char *choice, bool stream) {
  json_t *q = it_chat_body("tools", "What is the weather in Oslo?", 80, stream);
  json_object_set_new(q, "tools", json_loads(weather_tools, 0, NULL));
  json_object_set_new(q, "tool_choice", json_loads(choice, JSON_DECODE_ANY, NULL));
  json_object_set_new(q, "parallel_tool_calls", json_false());
  return q;
}

/* Whether args is a JSON string holding {"unit": "c"|"f"} and nothing else. */
static bool weather_args_ok(const char *args) {
  json_t *a = args ? json_loads(args, 0, NULL) : NULL;
  const char *u = json_string_value(json_object_get(a, "unit"));
  bool ok =
      json_is_object(a) && json_object_size(a) == 1 && u && (!strcmp(u, "c") || !strcmp(u, "f"));
  json_decref(a);
  return ok;
}

/* tool_choice forces a call: the grammar makes the random model write a valid Hermes call, which
 * comes back as message.tool_calls (content null, finish_reason tool_calls) — and streamed, as
 * OpenAI's tool_calls deltas that add up to the same call. */
static void t_tool_calls(void) {
  resp r;
  it_post_json("/v1/chat/completions",
               tools_body("{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}", false),
               &r);
  CHECK(r.status == 200, "forced call: %ld %s", r.status, r.body.data);
  const char *id = it_jstr(r.json, "choices.0.message.tool_calls.0.id");
  CHECK(id && strncmp(id, "call_", 5) == 0, "a call id: %s", r.body.data);
  CHECK(strcmp(it_jstr(r.json, "choices.0.message.tool_calls.0.type") ?: "", "function") == 0,
        "type function");
  CHECK(strcmp(it_jstr(r.json, "choices.0.message.tool_calls.0.function.name") ?: "",
               "get_weather") == 0,
        "named get_weather");
  CHECK(weather_args_ok(it_jstr(r.json, "choices.0.message.tool_calls.0.function.arguments")),
        "arguments follow the schema: %s", r.body.data);
  CHECK(json_is_null(it_jpath(r.json, "choices.0.message.content")),
        "content null beside the call");
  CHECK(strcmp(it_jstr(r.json, "choices.0.finish_reason") ?: "", "tool_calls") == 0,
        "finish_reason tool_calls: %s", r.body.data);
  it_resp_clear(&r);

  it_post_json("/v1/chat/completions", tools_body("\"required\"", true), &r);
  bool done = false, wf = false;
  json_t *ev = it_sse_events(&r.body, &done, &wf);
  sy_buf args = {0};
  const char *name = NULL, *finish = NULL, *cid = NULL;
  int starts = 0;
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) {
    const json_t *tc = it_jpath(e, "choices.0.delta.tool_calls.0");
    if (tc && it_jstr(tc, "id")) {
      starts++;
      name = it_jstr(tc, "function.name");
      cid = it_jstr(tc, "id");
    }
    if (tc && it_jstr(tc, "function.arguments"))
      sy_buf_puts(&args, it_jstr(tc, "function.arguments"));
    if (it_jstr(e, "choices.0.finish_reason")) finish = it_jstr(e, "choices.0.finish_reason");
  }
  CHECK(r.status == 200 && done && wf, "streamed: %ld", r.status);
  CHECK(starts == 1 && cid && name && (!strcmp(name, "get_weather") || !strcmp(name, "get_time")),
        "one call started, with id and a known name (%d)", starts);
  CHECK(name && (strcmp(name, "get_weather") ? strcmp(args.data ? args.data : "", "{}") == 0
                                             : weather_args_ok(args.data)),
        "the argument deltas add up to valid arguments: %s", args.data ? args.data : "");
  CHECK(finish && strcmp(finish, "tool_calls") == 0, "streamed finish_reason tool_calls");
  sy_buf_free(&args);
  json_decref(ev);
  it_resp_clear(&r);

  /* a conversation with a call and its result renders through the model's own template */
  json_t *q = it_chat_body("tools", "x", 4, false);
  json_object_set_new(q, "tools", json_loads(weather_tools, 0, NULL));
  json_object_set_new(
      q, "messages",
      json_loads("[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\","
                 "\"content\":null,\"tool_calls\":"
                 "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"arguments\":\"{\\\"unit\\\":\\\"c\\\"}\"}}]},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"-3 C\"}]",
                 0, NULL));
  it_post_json("/v1/chat/completions", q, &r);
  long long pt = it_jnum(r.json, "usage.prompt_tokens");
  CHECK(r.status == 200 && pt > 100, "history with a tool call and result: %ld, %lld prompt tokens",
        r.status, pt);
  it_resp_clear(&r);

  it_post_json("/v1/chat/completions",
               tools_body("{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}", false), &r);
  CHECK(it_is_error(&r, 400, "invalid_value"), "forcing an unknown function: %ld", r.status);
  it_resp_clear(&r);
}

/* response_format json_schema: the answer parses as JSON and obeys the schema. */
static void t_json_schema(void) {
  resp r;
  json_t *q = it_chat_body("tools", "Is it cold?", 60, false);
  json_object_set_new(
      q, "response_format",
      json_loads("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"answer\",\"strict\":true,"
                 "\"schema\":{\"type\":\"object\","
                 "\"properties\":{\"cold\":{\"type\":\"boolean\"},\"level\":{\"enum\":[\"low\","
                 "\"high\"]}},"
                 "\"required\":[\"cold\",\"level\"],\"additionalProperties\":false}}}",
                 0, NULL));
  it_post_json("/v1/chat/completions", q, &r);
  const char *c = it_jstr(r.json, "choices.0.message.content");
  json_t *a = c ? json_loads(c, 0, NULL) : NULL;
  const char *lv = json_string_value(json_object_get(a, "level"));
  CHECK(r.status == 200 && json_is_boolean(json_object_get(a, "cold")) && lv &&
            (!strcmp(lv, "low") || !strcmp(lv, "high")) && json_object_size(a) == 2,
        "content obeys the schema: %ld %s", r.status, c ? c : r.body.data);
  json_decref(a);
  it_resp_clear(&r);
  q = it_chat_body("tools", "Is it cold?", 60, false);
  json_object_set_new(q, "response_format", json_loads("{\"type\":\"json_object\"}", 0, NULL));
  it_post_json("/v1/chat/completions", q, &r);
  c = it_jstr(r.json, "choices.0.message.content");
  a = c ? json_loads(c, 0, NULL) : NULL;
  bool obj =
      json_is_object(a) ||
      (r.status == 200 && strcmp(it_jstr(r.json, "choices.0.finish_reason") ?: "", "length") == 0);
  CHECK(r.status == 200 && obj, "json_object: a JSON object (or cut by max_tokens): %s",
        c ? c : r.body.data);
  json_decref(a);
  it_resp_clear(&r);
  q = it_chat_body("tools", "x", 4, false);
  json_object_set_new(q, "response_format",
                      json_loads("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
                                 "\"schema\":{\"type\":\"object\",\"not\":{}}}}",
                                 0, NULL));
  it_post_json("/v1/chat/completions", q, &r);
  CHECK(it_is_error(&r, 400, "invalid_json_schema"), "an unsupported schema keyword: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
}

/* A small JSON Schema validator for what the sampling test uses: type, properties, required,
 * additionalProperties false, enum, minimum/maximum, items, minItems/maxItems, anyOf, $ref to
 * #/$defs. Independent of the grammar compiler it checks. */
static bool schema_ok(const json_t *root, const json_t *sc, const json_t *v, int depth) {
  if (depth > 32 || !json_is_object(sc)) return false;
  const char *ref = json_string_value(json_object_get(sc, "$ref"));
  if (ref && strncmp(ref, "#/$defs/", 8) == 0)
    return schema_ok(root, json_object_get(json_object_get(root, "$defs"), ref + 8), v, depth + 1);
  const json_t *any = json_object_get(sc, "anyOf");
  if (any) {
    size_t i;
    json_t *alt;
    json_array_foreach(any, i, alt) if (schema_ok(root, alt, v, depth + 1)) return true;
    return false;
  }
  const json_t *en = json_object_get(sc, "enum");
  if (en) {
    size_t i;
    json_t *x;
    json_array_foreach(en, i, x) if (json_equal(x, v)) return true;
    return false;
  }
  const char *t = json_string_value(json_object_get(sc, "type"));
  if (!t) return true;
  if (!strcmp(t, "boolean")) return json_is_boolean(v);
  if (!strcmp(t, "null")) return json_is_null(v);
  if (!strcmp(t, "integer") || !strcmp(t, "number")) {
    if (!strcmp(t, "integer") ? !json_is_integer(v) : !json_is_number(v)) return false;
    const json_t *mn = json_object_get(sc, "minimum"), *mx = json_object_get(sc, "maximum");
    double x = json_number_value(v);
    return (!mn || x >= json_number_value(mn)) && (!mx || x <= json_number_value(mx));
  }
  if (!strcmp(t, "array")) {
    if (!json_is_array(v)) return false;
    const json_t *mn = json_object_get(sc, "minItems"), *mx = json_object_get(sc, "maxItems");
    size_t n = json_array_size(v), i;
    if ((mn && n < (size_t)json_integer_value(mn)) || (mx && n > (size_t)json_integer_value(mx)))
      return false;
    json_t *x;
    json_array_foreach(
        v, i, x) if (!schema_ok(root, json_object_get(sc, "items"), x, depth + 1)) return false;
    return true;
  }
  if (!strcmp(t, "object")) {
    if (!json_is_object(v)) return false;
    const json_t *props = json_object_get(sc, "properties");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(sc, "required"), i,
                       r) if (!json_object_get(v, json_string_value(r))) return false;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
      const json_t *ps = json_object_get(props, k);
      if (!ps) {
        if (json_is_false(json_object_get(sc, "additionalProperties"))) return false;
        continue;
      }
      if (!schema_ok(root, ps, x, depth + 1)) return false;
    }
    return true;
  }
  return false;
}

/* Sampling under the grammar (temperature 1, several seeds) on a random-weight model: every
 * complete answer parses as JSON and is valid against its schema. */
static void t_schema_sampling(void) {
  static const char *schemas[] = {
      "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":"
      "120},"
      "\"ok\":{\"type\":\"boolean\"}},\"required\":[\"n\",\"ok\"],\"additionalProperties\":false}",
      "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"items\":{\"enum\":["
      "\"a\",\"b\",3,null]},"
      "\"minItems\":1,\"maxItems\":3}},\"required\":[\"tags\"],\"additionalProperties\":false}",
      "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"boolean\"}},\"required\":"
      "[\"x\"],"
      "\"additionalProperties\":false},{\"type\":\"array\",\"items\":{\"type\":\"integer\","
      "\"minimum\":0,\"maximum\":9},"
      "\"maxItems\":2}]}",
      "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"enum\":[1,2]},\"kids\":{"
      "\"type\":\"array\","
      "\"items\":{\"$ref\":\"#/$defs/"
      "node\"},\"maxItems\":2}},\"required\":[\"v\"],\"additionalProperties\":false}},"
      "\"$ref\":\"#/$defs/node\"}",
  };
  int complete = 0, total = 0;
  for (size_t k = 0; k < sizeof schemas / sizeof *schemas; k++) {
    json_t *schema = json_loads(schemas[k], 0, NULL);
    for (int seed = 1; seed <= 4; seed++) {
      json_t *q = it_chat_body("tools", "answer in JSON", 160, false);
      json_object_set_new(q, "temperature", json_real(1.0));
      json_object_set_new(q, "seed", json_integer(seed));
      json_object_set_new(q, "response_format",
                          json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema",
                                    "name", "t", "schema", schema));
      resp r;
      it_post_json("/v1/chat/completions", q, &r);
      total++;
      const char *c = it_jstr(r.json, "choices.0.message.content");
      const char *fin = it_jstr(r.json, "choices.0.finish_reason");
      CHECK(r.status == 200, "schema %zu seed %d: %ld %s", k, seed, r.status, r.body.data);
      if (c && fin && !strcmp(fin, "stop")) {
        complete++;
        json_t *v = json_loads(c, JSON_DECODE_ANY, NULL);
        CHECK(v && schema_ok(schema, schema, v, 0), "schema %zu seed %d: the answer is valid: %s",
              k, seed, c);
        json_decref(v);
      }
      it_resp_clear(&r);
    }
    json_decref(schema);
  }
  CHECK(complete * 2 >= total, "most samples finish (%d of %d)", complete, total);
}

/* A template whose generation prompt opens <think> (QwQ): everything the model writes before
 * </think> is reasoning_content, never content — whole and streamed. */
static void t_reasoning(void) {
  resp r;
  /* ignore_eos: the random weights may end at once; 24 tokens stay inside the open <think> block */
  json_t *q = it_chat_body("think", "why?", 24, false);
  json_object_set_new(q, "ignore_eos", json_true());
  it_post_json("/v1/chat/completions", q, &r);
  const char *rc = it_jstr(r.json, "choices.0.message.reasoning_content");
  const char *c = it_jstr(r.json, "choices.0.message.content");
  CHECK(r.status == 200 && rc && *rc && c && !*c, "all in reasoning_content: %s", r.body.data);
  it_resp_clear(&r);
  q = it_chat_body("think", "why?", 24, true);
  json_object_set_new(q, "ignore_eos", json_true());
  it_post_json("/v1/chat/completions", q, &r);
  bool done = false, wf = false;
  json_t *ev = it_sse_events(&r.body, &done, &wf);
  int nr = 0, nc = 0;
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) {
    nr += it_jstr(e, "choices.0.delta.reasoning_content") != NULL;
    const char *t = it_jstr(e, "choices.0.delta.content");
    nc += t && *t;
  }
  CHECK(done && nr > 0 && nc == 0, "streamed as reasoning_content deltas (%d), no content (%d)", nr,
        nc);
  json_decref(ev);
  it_resp_clear(&r);
  /* Qwen3's template with enable_thinking false closes the block in the prompt: plain content */
  q = it_chat_body("tools", "hi", 8, false);
  json_object_set_new(q, "chat_template_kwargs", json_pack("{s:b}", "enable_thinking", 0));
  it_post_json("/v1/chat/completions", q, &r);
  CHECK(r.status == 200 && !it_jstr(r.json, "choices.0.message.reasoning_content"),
        "thinking off: no reasoning: %s", r.body.data);
  it_resp_clear(&r);
}

/* logprobs: one entry per generated token, each ≤ 0, with top_logprobs sorted; greedy picks the
 * most likely token, so its logprob is the first alternative's. Streamed, the entries add up to
 * the same count; legacy completions get the tokens / token_logprobs arrays. */
static void t_logprobs(void) {
  resp r;
  json_t *q = it_chat_body("chat", "count", 6, false);
  json_object_set_new(q, "logprobs", json_true());
  json_object_set_new(q, "top_logprobs", json_integer(3));
  json_object_set_new(q, "temperature", json_real(0));
  json_object_set_new(q, "ignore_eos", json_true());
  it_post_json("/v1/chat/completions", q, &r);
  const json_t *c = it_jpath(r.json, "choices.0.logprobs.content");
  bool ok = r.status == 200 && json_array_size(c) == 6;
  size_t i;
  json_t *e;
  json_array_foreach(c, i, e) {
    const json_t *top = json_object_get(e, "top_logprobs");
    double lp = json_number_value(json_object_get(e, "logprob"));
    double t0 = json_number_value(json_object_get(json_array_get(top, 0), "logprob"));
    double t1 = json_number_value(json_object_get(json_array_get(top, 1), "logprob"));
    /* greedy = the best, unless the best is an end-of-generation token (ignore_eos skips it; the
     * raw logprobs still list it): whether it is depends on the random weights */
    const char *best = json_string_value(json_object_get(json_array_get(top, 0), "token"));
    bool eog_first = best && strncmp(best, "<|", 2) == 0 && strlen(best) > 4 &&
                     !strcmp(best + strlen(best) - 2, "|>");
    ok &= lp <= 0 && json_array_size(top) == 3 && t0 >= t1 &&
          (fabs(lp - t0) < 1e-4 || (eog_first && lp <= t0)) &&
          json_is_string(json_object_get(e, "token")) && json_is_array(json_object_get(e, "bytes"));
  }
  CHECK(ok, "chat logprobs: 6 entries, top 3 sorted, greedy = best (or after an end token): %.300s",
        r.body.data);
  it_resp_clear(&r);
  q = it_chat_body("chat", "count", 6, true);
  json_object_set_new(q, "logprobs", json_true());
  json_object_set_new(q, "ignore_eos", json_true());
  it_post_json("/v1/chat/completions", q, &r);
  bool done = false, wf = false;
  json_t *ev = it_sse_events(&r.body, &done, &wf);
  size_t n = 0;
  json_array_foreach(ev, i, e) n += json_array_size(it_jpath(e, "choices.0.logprobs.content"));
  CHECK(done && n == 6, "streamed logprobs add up to 6 entries: %zu", n);
  json_decref(ev);
  it_resp_clear(&r);
  it_post("/v1/completions",
          "{\"model\":\"chat\",\"prompt\":\"a b "
          "c\",\"max_tokens\":4,\"logprobs\":2,\"ignore_eos\":true}",
          &r);
  CHECK(r.status == 200 && json_array_size(it_jpath(r.json, "choices.0.logprobs.tokens")) == 4 &&
            json_array_size(it_jpath(r.json, "choices.0.logprobs.token_logprobs")) == 4 &&
            json_object_size(it_jpath(r.json, "choices.0.logprobs.top_logprobs.0")) >= 1,
        "completions logprobs: %.300s", r.body.data);
  it_resp_clear(&r);
}

static const it_test tests[] = {
    {"tool_calls", t_tool_calls, false},
    {"json_schema", t_json_schema, false},
    {"reasoning", t_reasoning, false},
    {"logprobs", t_logprobs, false},
    {"schema_sampling", t_schema_sampling, false},
};
const itest_table itest_fidelity = {"fidelity", tests, sizeof tests / sizeof *tests};
