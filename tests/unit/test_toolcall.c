/* test_toolcall.c — unit tests for src/chat/toolcall.h: generated text -> content, reasoning and
 * tool calls, incrementally.
 *
 * Every case is parsed with one feed, one byte at a time, in two pieces at every split point and
 * in random pieces; each run must give the same final message (sy_tc_message), and the message a
 * client rebuilds from the streamed deltas (sy_tc_event_delta, applied as OpenAI clients do) must
 * equal it. Covers: each format (hermes, qwen3_coder, llama3, mistral both forms, none), content
 * before and after calls, several calls, reasoning then a call, forced-open thinking, no think
 * block, malformed and unknown calls (content), unterminated calls, markers split across feeds,
 * UTF-8 split and invalid UTF-8, number text kept exactly, schema-typed qwen3_coder values, the
 * limits (call size, call count, nesting, whitespace flood), a random-input fuzz, the delta
 * shapes, an emit callback that refuses, and format detection on the real templates of
 * llama.cpp (directory in SY_TEMPLATES_DIR; skipped when unset). */
#include "toolcall.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "unit.h"

static const char *TOOLS_JSON =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{"
    "\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"},"
    "\"days\":{\"type\":\"integer\"},\"metric\":{\"type\":\"boolean\"},"
    "\"opts\":{\"type\":\"object\"},\"tags\":{\"type\":\"array\"},"
    "\"note\":{\"type\":[\"string\",\"null\"]},\"zip\":{\"type\":\"string\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"search\",\"parameters\":{"
    "\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}}]";

static json_t *tools(void) {
  json_t *t = json_loads(TOOLS_JSON, 0, NULL);
  assert_non_null(t);
  return t;
}

/* ---- a client that rebuilds the message from the stream's deltas ---------------------------- */

typedef struct client {
  json_t *msg; /* role, content, reasoning_content, tool_calls as accumulated */
  int events;
  int last_kind;
  int refuse_after; /* emit returns -1 after this many events (0: never) */
} client;

static void append_str(json_t *obj, const char *key, const char *add) {
  const char *old = json_string_value(json_object_get(obj, key));
  size_t n = old ? strlen(old) : 0, m = strlen(add);
  char *s = malloc(n + m + 1);
  assert_non_null(s);
  if (n) memcpy(s, old, n);
  memcpy(s + n, add, m + 1);
  json_object_set_new(obj, key, json_string(s));
  free(s);
}

static int on_event(const sy_tc_event *ev, void *ud) {
  client *c = ud;
  c->events++;
  if (c->refuse_after && c->events > c->refuse_after) return -1;
  if (ev->kind == SY_TC_CONTENT || ev->kind == SY_TC_REASONING || ev->kind == SY_TC_CALL_ARGS) {
    assert_non_null(ev->text);
    assert_int_equal(strlen(ev->text), ev->len);
    json_t *chk = json_stringn(ev->text, ev->len); /* valid UTF-8 */
    assert_non_null(chk);
    json_decref(chk);
  }
  if (ev->kind == SY_TC_CALL_ARGS) assert_int_equal(c->last_kind, SY_TC_CALL_BEGIN);
  if (ev->kind == SY_TC_CALL_END) assert_int_equal(c->last_kind, SY_TC_CALL_ARGS);
  c->last_kind = (int)ev->kind;
  json_t *d = sy_tc_event_delta(ev);
  if (ev->kind == SY_TC_CALL_END) {
    assert_null(d);
    return 0;
  }
  assert_non_null(d);
  const char *s;
  if ((s = json_string_value(json_object_get(d, "content")))) append_str(c->msg, "content", s);
  if ((s = json_string_value(json_object_get(d, "reasoning_content"))))
    append_str(c->msg, "reasoning_content", s);
  json_t *tc = json_object_get(d, "tool_calls");
  if (tc) {
    assert_int_equal(json_array_size(tc), 1);
    json_t *e = json_array_get(tc, 0);
    int idx = (int)json_integer_value(json_object_get(e, "index"));
    json_t *fn = json_object_get(e, "function");
    json_t *calls = json_object_get(c->msg, "tool_calls");
    if (!calls) {
      calls = json_array();
      json_object_set_new(c->msg, "tool_calls", calls);
    }
    if (ev->kind == SY_TC_CALL_BEGIN) {
      /* first chunk: index, id, type, name, arguments "" */
      assert_int_equal(idx, (int)json_array_size(calls));
      assert_string_equal(json_string_value(json_object_get(e, "type")), "function");
      assert_string_equal(json_string_value(json_object_get(fn, "arguments")), "");
      assert_non_null(json_string_value(json_object_get(fn, "name")));
      json_array_append_new(
          calls,
          json_pack("{s:O, s:s, s:{s:O, s:s}}", "id", json_object_get(e, "id"), "type", "function",
                    "function", "name", json_object_get(fn, "name"), "arguments", ""));
    } else {
      /* later chunks: index and an arguments fragment only */
      assert_null(json_object_get(e, "id"));
      assert_null(json_object_get(e, "type"));
      assert_null(json_object_get(fn, "name"));
      json_t *call = json_array_get(calls, (size_t)idx);
      assert_non_null(call);
      append_str(json_object_get(call, "function"), "arguments",
                 json_string_value(json_object_get(fn, "arguments")));
    }
  }
  json_decref(d);
  return 0;
}

/* The message a client holds at the end, shaped like sy_tc_message's. */
static json_t *client_message(client *c) {
  json_t *m = c->msg;
  bool calls = json_object_get(m, "tool_calls") != NULL;
  if (!json_object_get(m, "content"))
    json_object_set_new(m, "content", calls ? json_null() : json_string(""));
  return json_incref(m);
}

/* ---- running a case ------------------------------------------------------------------------- */

typedef struct tcase {
  const char *fmt;
  const char *think_open, *think_close;
  bool with_tools;
  bool thinking_open;
} tcase;

/* Parse text fed in pieces cut at cuts[0..ncuts) (ascending); returns the final message and
 * checks that the streamed deltas rebuild it. */
static json_t *parse_cuts(const tcase *tc, const char *text, size_t len, const size_t *cuts,
                          size_t ncuts) {
  sy_chat_format f = {tc->fmt, tc->think_open, tc->think_close};
  json_t *t = tc->with_tools ? tools() : NULL;
  sy_tc_parser *p = sy_tc_new(&f, t, tc->thinking_open);
  json_decref(t);
  assert_non_null(p);
  sy_tc_seed(p, 42);
  client c = {.msg = json_pack("{s:s}", "role", "assistant"), .last_kind = -1};
  size_t at = 0;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    assert_int_equal(sy_tc_feed(p, text + at, end - at, on_event, &c), 0);
    at = end;
  }
  assert_int_equal(sy_tc_finish(p, on_event, &c), 0);
  json_t *m = sy_tc_message(p);
  assert_non_null(m);
  json_t *cm = client_message(&c);
  if (!json_equal(m, cm)) {
    char *a = json_dumps(m, JSON_SORT_KEYS), *b = json_dumps(cm, JSON_SORT_KEYS);
    fail_msg("stream and message differ:\n message %s\n stream  %s", a, b);
  }
  assert_int_equal(sy_tc_call_count(p), (int)json_array_size(json_object_get(m, "tool_calls")));
  json_decref(cm);
  json_decref(c.msg);
  sy_tc_free(p);
  return m;
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t next_rand(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void expect_same(json_t *want, json_t *got, const char *how, size_t at) {
  if (!json_equal(want, got)) {
    char *a = json_dumps(want, JSON_SORT_KEYS), *b = json_dumps(got, JSON_SORT_KEYS);
    fail_msg("%s (at %zu) differs:\n one feed %s\n split    %s", how, at, a, b);
  }
}

/* Ids are random: check their shape, then blank them for comparison. */
static void blank_ids(json_t *m) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(m, "tool_calls"), i, c) {
    const char *id = json_string_value(json_object_get(c, "id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), 29);
    assert_memory_equal(id, "call_", 5);
    for (int k = 5; k < 29; k++)
      assert_true((id[k] >= 'a' && id[k] <= 'z') || (id[k] >= 'A' && id[k] <= 'Z') ||
                  (id[k] >= '0' && id[k] <= '9'));
    json_object_set_new(c, "id", json_string("ID"));
  }
}

/* Parse text in every way; all must agree; return the one-feed message (ids blanked). */
static json_t *parse_all(const tcase *tc, const char *text) {
  size_t len = strlen(text);
  json_t *one = parse_cuts(tc, text, len, NULL, 0);
  /* two pieces, at every split point (only the first 3000 for long texts) */
  for (size_t i = 0; i <= len && i < 3000; i++) {
    json_t *m = parse_cuts(tc, text, len, &i, 1);
    expect_same(one, m, "two pieces", i);
    json_decref(m);
  }
  /* one byte at a time */
  if (len < 20000) {
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    for (size_t i = 0; i < len; i++) cuts[i] = i + 1;
    json_t *m = parse_cuts(tc, text, len, cuts, len ? len - 1 : 0);
    expect_same(one, m, "byte by byte", 0);
    json_decref(m);
    free(cuts);
  }
  /* random pieces */
  for (int r = 0; r < 30; r++) {
    size_t cuts[64], n = 0, at = 0;
    while (n < 64 && len > 0) {
      at += 1 + next_rand() % 9;
      if (at >= len) break;
      cuts[n++] = at;
    }
    json_t *m = parse_cuts(tc, text, len, cuts, n);
    expect_same(one, m, "random pieces", (size_t)r);
    json_decref(m);
  }
  blank_ids(one);
  return one;
}

/* Expected message written as JSON with single quotes for readability. */
static json_t *expect_json(const char *js) {
  json_t *j = ut_json(js);
  json_object_set_new(j, "role", json_string("assistant"));
  return j;
}

static void check(const tcase *tc, const char *text, const char *want_js) {
  json_t *got = parse_all(tc, text);
  json_t *want = expect_json(want_js);
  if (!json_equal(want, got)) {
    char *a = json_dumps(want, JSON_SORT_KEYS), *b = json_dumps(got, JSON_SORT_KEYS);
    fail_msg("input: %s\n want %s\n got  %s", text, a, b);
  }
  json_decref(got);
  json_decref(want);
}

/* The text comes back unchanged as content. */
static void check_content(const tcase *tc, const char *text) {
  json_t *got = parse_all(tc, text);
  const char *c = json_string_value(json_object_get(got, "content"));
  if (!c || strcmp(c, text) != 0) fail_msg("want content %s\n got %s", text, c ? c : "(null)");
  assert_null(json_object_get(got, "tool_calls"));
  json_decref(got);
}

/* One call expectation: {'content': ..., 'tool_calls': [call(name, args)]} */
#define CALL(name, args) \
  "{'id':'ID','type':'function','function':{'name':'" name "','arguments':" args "}}"

static const tcase HERMES = {"hermes", NULL, NULL, true, false};
static const tcase QWEN3 = {"hermes", "<think>", "</think>", true, false};
static const tcase QWEN3_OPEN = {"hermes", "<think>", "</think>", true, true};
static const tcase CODER = {"qwen3_coder", NULL, NULL, true, false};
static const tcase QWEN35 = {"qwen3_coder", "<think>", "</think>", true, true};
static const tcase LLAMA = {"llama3", NULL, NULL, true, false};
static const tcase MISTRAL = {"mistral", NULL, NULL, true, false};
static const tcase MAGISTRAL = {"mistral", "[THINK]", "[/THINK]", true, false};
static const tcase NONE = {"none", NULL, NULL, true, false};
static const tcase HERMES_NOTOOLS = {"hermes", NULL, NULL, false, false};

/* ---- hermes --------------------------------------------------------------------------------- */

static void test_hermes_basic(void **state) {
  (void)state;
  check(&HERMES,
        "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
        "{\"location\": \"Paris\", \"days\": 3}}\n</tool_call>",
        "{'content':'Let me check.','tool_calls':[" CALL(
            "get_weather", "'{\\'location\\':\\'Paris\\',\\'days\\':3}'") "]}");
  /* no content: content is null */
  check(&HERMES,
        "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"a b\"}}\n</tool_call>",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'a b\\'}'") "]}");
}

static void test_hermes_several(void **state) {
  (void)state;
  check(&HERMES,
        "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\n</tool_call>\n"
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Oslo\"}}\n"
        "</tool_call>",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'x\\'}'") "," CALL(
            "get_weather", "'{\\'location\\':\\'Oslo\\'}'") "]}");
  /* content after the calls is content */
  check(&HERMES, "<tool_call>{\"name\":\"search\",\"arguments\":{}}</tool_call>\n\nDone.",
        "{'content':'Done.','tool_calls':[" CALL("search", "'{}'") "]}");
}

static void test_hermes_arguments_forms(void **state) {
  (void)state;
  /* arguments as a JSON string, and missing arguments */
  check(&HERMES,
        "<tool_call>\n{\"name\": \"search\", \"arguments\": \"{\\\"q\\\": \\\"x\\\"}\"}\n"
        "</tool_call><tool_call>{\"name\": \"search\"}</tool_call>",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'x\\'}'") "," CALL(
            "search", "'{}'") "]}");
  /* number text kept exactly (no 0.10000000000000001, no overflow), escapes and spaces in
   * strings kept, nested values minified */
  check(&HERMES,
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"x\": 0.1, \"big\": "
        "123456789012345678901234567890, \"s\": \"a  \\\"b\\\" \\u00e9\", \"o\": { \"k\" : [ 1 , "
        "2 ] }}}\n</tool_call>",
        "{'content':null,'tool_calls':[" CALL(
            "get_weather",
            "'{\\'x\\':0.1,\\'big\\':123456789012345678901234567890,"
            "\\'s\\':\\'a  \\\\\\'b\\\\\\' \\\\u00e9\\',\\'o\\':{\\'k\\':[1,2]}}'") "]}");
}

static void test_hermes_malformed(void **state) {
  (void)state;
  /* invalid JSON, unknown function, not an object, arguments not an object: all content */
  check_content(&HERMES,
                "Sure.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": }}\n"
                "</tool_call>");
  check_content(&HERMES, "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>");
  check_content(&HERMES, "<tool_call>\nget_weather(location=Paris)\n</tool_call>");
  check_content(&HERMES, "<tool_call>{\"name\": \"search\", \"arguments\": [1]}</tool_call>");
  check_content(&HERMES, "<tool_call>{\"arguments\": {}}</tool_call>");
  /* unterminated JSON at the end */
  check_content(&HERMES, "<tool_call>\n{\"name\": \"search\", \"argu");
  /* a bad call, then a good one: the bad one is content, the good one a call */
  check(&HERMES,
        "<tool_call>oops</tool_call> <tool_call>{\"name\": \"search\", \"arguments\": {}}"
        "</tool_call>",
        "{'content':'<tool_call>oops</tool_call>','tool_calls':[" CALL("search", "'{}'") "]}");
}

static void test_hermes_unterminated_complete(void **state) {
  (void)state;
  /* complete JSON but the model stopped before </tool_call> (or mid-way through it) */
  check(&HERMES, "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'x\\'}'") "]}");
  check(&HERMES, "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\n</tool_",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'x\\'}'") "]}");
}

static void test_marker_lookalikes(void **state) {
  (void)state;
  check_content(&HERMES, "a < b and <tool_ c <tool_call is <> </tool_call>");
  check_content(&HERMES, "ends with <tool_cal");
  check_content(&HERMES, "<");
  check_content(&HERMES, "");
  check_content(&HERMES, "  spaces kept at the start and end  \n\n");
  check_content(&QWEN3, "no think here, <think> later is content</think>");
  check_content(&LLAMA, "x = {\"name\": \"search\", \"parameters\": {}}");
}

static void test_no_tools_and_none(void **state) {
  (void)state;
  const char *t = "<tool_call>\n{\"name\": \"search\", \"arguments\": {}}\n</tool_call>";
  check_content(&HERMES_NOTOOLS, t);
  check_content(&NONE, t);
  check_content(&NONE, "[TOOL_CALLS]search[ARGS]{}");
}

/* ---- reasoning ------------------------------------------------------------------------------ */

static void test_reasoning(void **state) {
  (void)state;
  check(&QWEN3, "<think>\nThe user wants weather.\nCall it.\n</think>\n\nHere you go.",
        "{'content':'Here you go.','reasoning_content':'The user wants weather.\\nCall it.'}");
  /* reasoning then a call */
  check(&QWEN3,
        "<think>\nNeed data.\n</think>\n\n<tool_call>\n{\"name\": \"search\", \"arguments\": "
        "{\"q\": \"x\"}}\n</tool_call>",
        "{'content':null,'reasoning_content':'Need data.','tool_calls':[" CALL(
            "search", "'{\\'q\\':\\'x\\'}'") "]}");
  /* empty think block (enable_thinking=false rendered by the model itself) */
  check(&QWEN3, "<think>\n\n</think>\n\nHi!", "{'content':'Hi!'}");
  /* enable_thinking=false: no think block at all */
  check(&QWEN3, "Hello there.", "{'content':'Hello there.'}");
  /* a tool call inside reasoning is reasoning */
  check(&QWEN3, "<think><tool_call>{}</tool_call></think>ok",
        "{'content':'ok','reasoning_content':'<tool_call>{}</tool_call>'}");
}

static void test_reasoning_forced_open(void **state) {
  (void)state;
  check(&QWEN3_OPEN, "Let me think.\n</think>\n\nThe answer is 4.",
        "{'content':'The answer is 4.','reasoning_content':'Let me think.'}");
  check(&QWEN3_OPEN,
        "Use a tool.\n</think>\n\n<tool_call>\n{\"name\": \"search\", \"arguments\": {}}\n"
        "</tool_call>",
        "{'content':null,'reasoning_content':'Use a tool.','tool_calls':[" CALL("search",
                                                                                "'{}'") "]}");
  /* the model repeats the opener: not part of the reasoning */
  check(&QWEN3_OPEN, "<think>\nHmm.\n</think>\n\nOK",
        "{'content':'OK','reasoning_content':'Hmm.'}");
  check(&QWEN3_OPEN, "\n<thin", "{'content':'','reasoning_content':'<thin'}");
  /* out of tokens while thinking: it stays reasoning */
  check(&QWEN3_OPEN, "Still thinking about </thi",
        "{'content':'','reasoning_content':'Still thinking about </thi'}");
}

static void test_reasoning_think_brackets(void **state) {
  (void)state;
  check(&MAGISTRAL, "[THINK]Compute 2+2.[/THINK]4",
        "{'content':'4','reasoning_content':'Compute 2+2.'}");
  check(&MAGISTRAL, "[THINK]Need a search.[/THINK][TOOL_CALLS]search[ARGS]{\"q\": \"x\"}",
        "{'content':null,'reasoning_content':'Need a search.','tool_calls':[" CALL(
            "search", "'{\\'q\\':\\'x\\'}'") "]}");
}

/* ---- qwen3_coder ---------------------------------------------------------------------------- */

static void test_coder_basic(void **state) {
  (void)state;
  check(&CODER,
        "I will look it up.\n<tool_call>\n<function=get_weather>\n<parameter=location>\nNew York\n"
        "</parameter>\n<parameter=days>\n5\n</parameter>\n<parameter=metric>\ntrue\n"
        "</parameter>\n<parameter=opts>\n{\"a\": [1, 2.50]}\n</parameter>\n<parameter=note>\n"
        "null\n</parameter>\n<parameter=zip>\n01234\n</parameter>\n</function>\n</tool_call>",
        "{'content':'I will look it up.','tool_calls':[" CALL(
            "get_weather",
            "'{\\'location\\':\\'New York\\',\\'days\\':5,\\'metric\\':true,"
            "\\'opts\\':{\\'a\\':[1,2.50]},\\'note\\':\\'null\\',"
            "\\'zip\\':\\'01234\\'}'") "]}");
  /* a value that is not valid for its type stays a string; unknown parameters are parsed
   * as JSON when they are JSON */
  check(&CODER,
        "<tool_call>\n<function=get_weather>\n<parameter=days>\nfive\n</parameter>\n"
        "<parameter=extra>\n[1,2]\n</parameter>\n<parameter=other>\nplain text\n</parameter>\n"
        "</function>\n</tool_call>",
        "{'content':null,'tool_calls':[" CALL(
            "get_weather",
            "'{\\'days\\':\\'five\\',\\'extra\\':[1,2],\\'other\\':\\'plain text\\'}'") "]}");
}

static void test_coder_multiline_and_markup_in_values(void **state) {
  (void)state;
  /* multi-line string with its own trailing newline; markup inside a value is value */
  check(
      &CODER,
      "<tool_call>\n<function=search>\n<parameter=q>\nline 1\n<function=x></function>\n"
      "  line 3\n\n</parameter>\n</function>\n</tool_call>",
      "{'content':null,'tool_calls':[" CALL(
          "search", "'{\\'q\\':\\'line 1\\\\n<function=x></function>\\\\n  line 3\\\\n\\'}'") "]}");
  /* empty function */
  check(&CODER, "<tool_call>\n<function=search>\n</function>\n</tool_call>",
        "{'content':null,'tool_calls':[" CALL("search", "'{}'") "]}");
}

static void test_coder_several_and_thinking(void **state) {
  (void)state;
  check(&QWEN35,
        "Plan: search twice.\n</think>\n\nSearching.\n\n<tool_call>\n<function=search>\n"
        "<parameter=q>\nfoo\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n"
        "<function=search>\n<parameter=q>\nbar\n</parameter>\n</function>\n</tool_call>",
        "{'content':'Searching.','reasoning_content':'Plan: search twice.','tool_calls':[" CALL(
            "search", "'{\\'q\\':\\'foo\\'}'") "," CALL("search", "'{\\'q\\':\\'bar\\'}'") "]}");
  /* <function= without <tool_call>, and hermes JSON inside <tool_call> */
  check(&CODER,
        "<function=search>\n<parameter=q>\nx\n</parameter>\n</function>\n"
        "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"y\"}}\n</tool_call>",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'x\\'}'") "," CALL(
            "search", "'{\\'q\\':\\'y\\'}'") "]}");
}

static void test_coder_unterminated_and_malformed(void **state) {
  (void)state;
  /* stopped after the last </parameter> or inside </function>: still a call */
  check(&CODER, "<tool_call>\n<function=search>\n<parameter=q>\nx\n</parameter>\n",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'x\\'}'") "]}");
  check(&CODER, "<tool_call>\n<function=search>\n<parameter=q>\nx\n</parameter>\n</func",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'x\\'}'") "]}");
  /* stopped inside a value: content */
  check_content(&CODER, "<tool_call>\n<function=search>\n<parameter=q>\nx\n</param");
  /* unknown function, junk between parameters, bad names: content */
  check_content(&CODER, "<tool_call>\n<function=nope>\n</function>\n</tool_call>");
  check_content(&CODER,
                "<tool_call>\n<function=search>\njunk\n<parameter=q>\nx\n</parameter>\n"
                "</function>\n</tool_call>");
  check_content(&CODER, "<tool_call>\n<function=sea\nrch>\n</function>");
  check_content(&CODER, "<tool_call>\n<function=>\n</function>");
  check_content(&CODER, "<tool_call>\nnot a function\n</tool_call>");
}

/* ---- llama3 --------------------------------------------------------------------------------- */

static void test_llama3(void **state) {
  (void)state;
  check(
      &LLAMA, "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\"}}",
      "{'content':null,'tool_calls':[" CALL("get_weather", "'{\\'location\\':\\'Paris\\'}'") "]}");
  check(&LLAMA, "<|python_tag|>{\"name\": \"search\", \"parameters\": {\"q\": \"llama\"}}",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'llama\\'}'") "]}");
  check(&LLAMA,
        "\n\n{\"type\": \"function\", \"name\": \"search\", \"parameters\": {\"q\": \"a\"}}; "
        "{\"name\": \"search\", \"arguments\": {\"q\": \"b\"}}",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'a\\'}'") "," CALL(
            "search", "'{\\'q\\':\\'b\\'}'") "]}");
  /* prose, code, JSON that is not a call: content */
  check_content(&LLAMA, "The answer is {x}.");
  check_content(&LLAMA, "{ not json at all");
  check_content(&LLAMA, "{\"foo\": 1} is JSON");
  check_content(&LLAMA, "{\"name\": \"unknown\", \"parameters\": {}}");
  check_content(&LLAMA, "<|python_tag|>brave_search.call(query=\"x\")");
  check_content(&LLAMA, "{\"name\": \"search\", \"parameters\": {\"q\": ");
}

/* ---- mistral -------------------------------------------------------------------------------- */

static void test_mistral(void **state) {
  (void)state;
  check(&MISTRAL,
        "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}, "
        "{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}, \"id\": \"abcdefghi\"}]",
        "{'content':null,'tool_calls':[" CALL(
            "get_weather", "'{\\'location\\':\\'Paris\\'}'") "," CALL("search",
                                                                      "'{\\'q\\':\\'x\\'}'") "]}");
  check(
      &MISTRAL, "[TOOL_CALLS]get_weather[ARGS]{\"location\": \"Paris\"}",
      "{'content':null,'tool_calls':[" CALL("get_weather", "'{\\'location\\':\\'Paris\\'}'") "]}");
  check(&MISTRAL,
        "Two calls.[TOOL_CALLS]get_weather[ARGS]{\"location\": \"Rome\"}[TOOL_CALLS]search"
        "[CALL_ID]a1B2c3D4e[ARGS]{\"q\": \"x\"}",
        "{'content':'Two calls.','tool_calls':[" CALL(
            "get_weather", "'{\\'location\\':\\'Rome\\'}'") "," CALL("search",
                                                                     "'{\\'q\\':\\'x\\'}'") "]}");
  check(&MISTRAL, "[TOOL_CALLS] {\"name\": \"search\", \"arguments\": {}}",
        "{'content':null,'tool_calls':[" CALL("search", "'{}'") "]}");
  /* malformed: content */
  check_content(&MISTRAL, "[TOOL_CALLS]bad name[ARGS]{}");
  check_content(&MISTRAL, "[TOOL_CALLS]nope[ARGS]{}");
  check_content(&MISTRAL, "[TOOL_CALLS]search[ARGS][1]");
  check_content(&MISTRAL, "[TOOL_CALLS][]");
  check_content(&MISTRAL, "[TOOL_CALLS][{\"name\": \"search\"}, {\"name\": \"nope\"}]");
  check_content(&MISTRAL, "[TOOL_CALLS]search[ARG");
  check_content(&MISTRAL, "[TOOL_CALL] [TOOL_CALLS");
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

static void test_utf8(void **state) {
  (void)state;
  /* multi-byte characters everywhere; the random and byte splits cut them */
  check(&QWEN3,
        "<think>Zürich → 東京 😀</think>Temperatür: 20 °C 😀\n<tool_call>\n{\"name\": "
        "\"get_weather\", \"arguments\": {\"location\": \"Zürich 東京\"}}\n</tool_call>",
        "{'content':'Temperatür: 20 °C 😀','reasoning_content':'Zürich → 東京 😀',"
        "'tool_calls':[" CALL("get_weather", "'{\\'location\\':\\'Zürich 東京\\'}'") "]}");
  check(&CODER,
        "<tool_call>\n<function=search>\n<parameter=q>\nπ ≈ 3.14 😀\n</parameter>\n</function>",
        "{'content':null,'tool_calls':[" CALL("search", "'{\\'q\\':\\'π ≈ 3.14 😀\\'}'") "]}");
  /* invalid bytes become U+FFFD; a sequence cut by the end too */
  check(&HERMES,
        "a\xff"
        "b\xc3",
        "{'content':'a\xEF\xBF\xBD"
        "b\xEF\xBF\xBD'}");
  check(&HERMES, "\xe2\x82", "{'content':'\xEF\xBF\xBD'}");
}

/* ---- limits --------------------------------------------------------------------------------- */

static json_t *parse_once(const tcase *tc, const char *text, size_t len, size_t piece) {
  size_t n = piece ? (len + piece - 1) / piece : 0;
  size_t *cuts = malloc((n + 1) * sizeof *cuts);
  size_t k = 0;
  for (size_t at = piece; piece && at < len; at += piece) cuts[k++] = at;
  json_t *m = parse_cuts(tc, text, len, cuts, k);
  free(cuts);
  return m;
}

static void test_limits(void **state) {
  (void)state;
  /* a call that never ends: content once past the cap, the text comes back whole */
  size_t big = SY_TC_MAX_CALL_BYTES + 100000;
  char *s = malloc(big + 1);
  const char *head = "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"";
  size_t hl = strlen(head);
  memcpy(s, head, hl);
  memset(s + hl, 'a', big - hl);
  s[big] = '\0';
  json_t *m = parse_once(&HERMES, s, big, 4096);
  assert_string_equal(json_string_value(json_object_get(m, "content")), s);
  json_decref(m);
  /* the same for qwen3_coder inside a value */
  head = "<tool_call>\n<function=search>\n<parameter=q>\n";
  hl = strlen(head);
  memcpy(s, head, hl);
  m = parse_once(&CODER, s, big, 4096);
  assert_string_equal(json_string_value(json_object_get(m, "content")), s);
  json_decref(m);
  /* deep nesting: content */
  memcpy(s, "<tool_call>", 11);
  memset(s + 11, '{', 5000);
  s[5011] = '\0';
  m = parse_once(&HERMES, s, 5011, 7);
  assert_string_equal(json_string_value(json_object_get(m, "content")), s);
  json_decref(m);
  /* whitespace flood then text: all kept */
  memset(s, ' ', 100000);
  memcpy(s + 100000, "x", 2);
  m = parse_once(&QWEN3, s, 100001, 333);
  assert_string_equal(json_string_value(json_object_get(m, "content")), s);
  json_decref(m);
  free(s);
  /* more calls than the cap: the rest is content */
  const char *one = "<tool_call>{\"name\":\"search\",\"arguments\":{}}</tool_call>";
  size_t ol = strlen(one), nc = SY_TC_MAX_CALLS + 5;
  s = malloc(ol * nc + 1);
  for (size_t i = 0; i < nc; i++) memcpy(s + i * ol, one, ol);
  s[ol * nc] = '\0';
  m = parse_once(&HERMES, s, ol * nc, 13);
  assert_int_equal(json_array_size(json_object_get(m, "tool_calls")), SY_TC_MAX_CALLS);
  const char *c = json_string_value(json_object_get(m, "content"));
  assert_non_null(c);
  assert_int_equal(strlen(c), 5 * ol);
  json_decref(m);
  free(s);
}

/* Random text made of marker pieces, JSON bits and UTF-8: no crash, every split agrees. */
static void test_fuzz(void **state) {
  (void)state;
  static const char *parts[] = {"<tool_call>",
                                "</tool_call>",
                                "<think>",
                                "</think>",
                                "<function=search>",
                                "<parameter=q>",
                                "</parameter>",
                                "</function>",
                                "[TOOL_CALLS]",
                                "[ARGS]",
                                "[CALL_ID]",
                                "<|python_tag|>",
                                "{\"name\": \"search\", \"arguments\": {\"q\": 1}}",
                                "{",
                                "}",
                                "[",
                                "]",
                                "\"",
                                "\\",
                                "\n",
                                " ",
                                "search",
                                "é",
                                "\xe6\x9d\xb1",
                                "\xff",
                                "<",
                                "[THINK]",
                                "[/THINK]",
                                "{\"name\": \"get_weather\", \"parameters\": {}}",
                                ",",
                                ":",
                                "x",
                                "</",
                                "\n</think>\n\n",
                                "<function=get_weather>",
                                "[TOOL_CALLS]search",
                                "5",
                                "\"q\"",
                                "\xf0\x9f\x98",
                                "\x80"};
  const tcase *cases[] = {&HERMES, &QWEN3,   &QWEN3_OPEN, &CODER, &QWEN35,
                          &LLAMA,  &MISTRAL, &MAGISTRAL,  &NONE,  &HERMES_NOTOOLS};
  char text[2048];
  const char *env = getenv("SY_FUZZ_ITERS"); /* more for a longer local run */
  int iters = env && atoi(env) > 0 ? atoi(env) : 300;
  for (int iter = 0; iter < iters; iter++) {
    size_t len = 0;
    int nparts = 1 + (int)(next_rand() % 25);
    for (int k = 0; k < nparts; k++) {
      const char *pt = parts[next_rand() % (sizeof parts / sizeof parts[0])];
      size_t pl = strlen(pt);
      if (len + pl >= sizeof text) break;
      memcpy(text + len, pt, pl);
      len += pl;
    }
    text[len] = '\0';
    const tcase *tc = cases[iter % (sizeof cases / sizeof cases[0])];
    json_t *one = parse_cuts(tc, text, len, NULL, 0);
    for (int r = 0; r < 4; r++) {
      size_t cuts[256], n = 0, at = 0;
      while (n < 256) {
        at += 1 + next_rand() % 5;
        if (at >= len) break;
        cuts[n++] = at;
      }
      json_t *m = parse_cuts(tc, text, len, cuts, n);
      if (!json_equal(one, m)) {
        char *a = json_dumps(one, JSON_SORT_KEYS), *b = json_dumps(m, JSON_SORT_KEYS);
        fail_msg("fuzz %d (%s): %s\n one %s\n split %s", iter, tc->fmt, text, a, b);
      }
      json_decref(m);
    }
    json_decref(one);
  }
}

/* ---- API details ---------------------------------------------------------------------------- */

static void test_delta_shapes(void **state) {
  (void)state;
  sy_tc_event b = {.kind = SY_TC_CALL_BEGIN, .index = 2, .id = "call_x", .name = "f"};
  json_t *d = sy_tc_event_delta(&b);
  json_t *want = json_loads(
      "{\"tool_calls\":[{\"index\":2,\"id\":\"call_x\",\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}",
      0, NULL);
  assert_true(json_equal(d, want));
  json_decref(d);
  json_decref(want);
  sy_tc_event a = {.kind = SY_TC_CALL_ARGS, .index = 2, .text = "{\"a\":1}", .len = 7};
  d = sy_tc_event_delta(&a);
  want = json_loads(
      "{\"tool_calls\":[{\"index\":2,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}", 0, NULL);
  assert_true(json_equal(d, want));
  json_decref(d);
  json_decref(want);
  sy_tc_event c = {.kind = SY_TC_CONTENT, .text = "hi", .len = 2};
  d = sy_tc_event_delta(&c);
  assert_string_equal(json_string_value(json_object_get(d, "content")), "hi");
  json_decref(d);
  sy_tc_event r = {.kind = SY_TC_REASONING, .text = "hm", .len = 2};
  d = sy_tc_event_delta(&r);
  assert_string_equal(json_string_value(json_object_get(d, "reasoning_content")), "hm");
  json_decref(d);
}

static void test_ids_and_seed(void **state) {
  (void)state;
  const char *t =
      "<tool_call>{\"name\":\"search\"}</tool_call><tool_call>{\"name\":\"search\"}"
      "</tool_call>";
  json_t *m1 = parse_cuts(&HERMES, t, strlen(t), NULL, 0);
  json_t *m2 = parse_cuts(&HERMES, t, strlen(t), NULL, 0);
  assert_true(json_equal(m1, m2)); /* same seed, same ids */
  json_t *calls = json_object_get(m1, "tool_calls");
  assert_string_not_equal(json_string_value(json_object_get(json_array_get(calls, 0), "id")),
                          json_string_value(json_object_get(json_array_get(calls, 1), "id")));
  json_decref(m1);
  json_decref(m2);
  /* unseeded parsers differ */
  sy_chat_format f = {"hermes", NULL, NULL};
  json_t *tl = tools();
  char ids[2][40];
  for (int k = 0; k < 2; k++) {
    sy_tc_parser *p = sy_tc_new(&f, tl, false);
    assert_int_equal(sy_tc_feed(p, t, strlen(t), NULL, NULL), 0);
    assert_int_equal(sy_tc_finish(p, NULL, NULL), 0);
    json_t *m = sy_tc_message(p);
    snprintf(ids[k], sizeof ids[k], "%s",
             json_string_value(
                 json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id")));
    json_decref(m);
    sy_tc_free(p);
  }
  assert_string_not_equal(ids[0], ids[1]);
  json_decref(tl);
}

static void test_emit_refuses_and_bad_format(void **state) {
  (void)state;
  sy_chat_format f = {"hermes", NULL, NULL};
  json_t *tl = tools();
  sy_tc_parser *p = sy_tc_new(&f, tl, false);
  client c = {.msg = json_object(), .last_kind = -1, .refuse_after = 1};
  assert_int_equal(sy_tc_feed(p, "hello ", 6, on_event, &c), 0);
  assert_int_equal(sy_tc_feed(p, "world ", 6, on_event, &c), -1);
  assert_int_equal(sy_tc_feed(p, "again", 5, on_event, &c), -1);
  assert_int_equal(sy_tc_finish(p, on_event, &c), -1);
  sy_tc_free(p);
  json_decref(c.msg);
  sy_chat_format bad = {"klingon", NULL, NULL};
  assert_null(sy_tc_new(&bad, tl, false));
  json_decref(tl);
  /* NULL format: plain content */
  p = sy_tc_new(NULL, NULL, true);
  assert_non_null(p);
  assert_int_equal(sy_tc_feed(p, "<think>x", 8, NULL, NULL), 0);
  assert_int_equal(sy_tc_finish(p, NULL, NULL), 0);
  json_t *m = sy_tc_message(p);
  assert_string_equal(json_string_value(json_object_get(m, "content")), "<think>x");
  json_decref(m);
  sy_tc_free(p);
  sy_tc_free(NULL);
}

/* ---- detection ------------------------------------------------------------------------------ */

/* Qwen3-ASR's answer, "language English<asr_text>the words": the worker gives its template these
 * markers (src/workers/llama/chat.c chat_asr_markers), so the words are the content */
static const tcase QWEN3ASR = {"none", "language ", "<asr_text>", false, false};

static void test_asr_answer(void **state) {
  (void)state;
  check(&QWEN3ASR, "language English<asr_text>Hello there.",
        "{'content':'Hello there.','reasoning_content':'English'}");
  check(&QWEN3ASR, "language None<asr_text>", "{'content':'','reasoning_content':'None'}");
  /* an answer without the prefix is all content */
  check(&QWEN3ASR, "Hello there.", "{'content':'Hello there.'}");
}

static void test_thinking_open(void **state) {
  (void)state;
  sy_chat_format f;
  sy_chat_format_detect("{{ '<think>' }}{{ '</think>' }}", &f);
  assert_true(sy_chat_prompt_thinking_open(&f, "<|im_start|>assistant\n<think>\n"));
  assert_true(sy_chat_prompt_thinking_open(&f, "<｜Assistant｜><think>\n"));
  assert_false(sy_chat_prompt_thinking_open(&f, "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  assert_false(sy_chat_prompt_thinking_open(&f, "<|im_start|>assistant\n"));
  assert_false(sy_chat_prompt_thinking_open(&f, NULL));
  sy_chat_format_detect("[THINK][/THINK]", &f);
  assert_true(sy_chat_prompt_thinking_open(&f, "[INST]hi[/INST][THINK]"));
  sy_chat_format_detect("plain", &f);
  assert_false(sy_chat_prompt_thinking_open(&f, "<think>\n"));
}

static void detect_str(const char *src, const char *tools_name, const char *think) {
  sy_chat_format f;
  assert_int_equal(sy_chat_format_detect(src, &f), 0);
  assert_string_equal(f.tools, tools_name);
  if (think) {
    assert_non_null(f.think_open);
    assert_string_equal(f.think_open, think);
  } else {
    assert_null(f.think_open);
  }
}

static void test_detect_strings(void **state) {
  (void)state;
  detect_str(NULL, "none", NULL);
  detect_str("{{ messages }}", "none", NULL);
  detect_str("<tool_call>\n<function=x>\n<parameter=y>", "qwen3_coder", NULL);
  detect_str("<tool_call>{{ tool_call | tojson }}</tool_call><think>", "hermes", "<think>");
  detect_str("[TOOL_CALLS]{{ name }}[ARGS]", "mistral", NULL);
  detect_str("<|python_tag|>", "llama3", NULL);
  detect_str("ipython ... \"parameters\"", "llama3", NULL);
  detect_str("<tool_call>{{ name }}<arg_key>k</arg_key>", "none", NULL);
}

static char *read_file(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.jinja", dir, name);
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, fp);
  s[got] = '\0';
  fclose(fp);
  return s;
}

static void test_detect_templates(void **state) {
  (void)state;
  const char *dir = getenv("SY_TEMPLATES_DIR");
  if (!dir || !*dir) {
    skip();
    return;
  }
  static const struct {
    const char *file, *tools, *think;
  } want[] = {
      {"Qwen-Qwen2.5-7B-Instruct", "hermes", NULL},
      {"Qwen-Qwen3-0.6B", "hermes", "<think>"},
      {"Qwen3-Coder", "qwen3_coder", NULL},
      {"Qwen3.5-4B", "qwen3_coder", "<think>"},
      {"Qwen-QwQ-32B", "hermes", "<think>"},
      {"meta-llama-Llama-3.1-8B-Instruct", "llama3", NULL},
      {"meta-llama-Llama-3.2-3B-Instruct", "llama3", NULL},
      {"meta-llama-Llama-3.3-70B-Instruct", "llama3", NULL},
      {"mistralai-Mistral-Nemo-Instruct-2407", "mistral", NULL},
      {"Mistral-Small-3.2-24B-Instruct-2506", "mistral", NULL},
      {"unsloth-mistral-Devstral-Small-2507", "mistral", NULL},
      {"mistralai-Ministral-3-14B-Reasoning-2512", "mistral", "[THINK]"},
      {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "hermes", NULL},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "hermes", NULL},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "none", "<think>"},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "none", "<think>"},
      {"google-gemma-2-2b-it", "none", NULL},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    char *src = read_file(dir, want[i].file);
    if (!src) fail_msg("template %s not found in %s", want[i].file, dir);
    sy_chat_format f;
    sy_chat_format_detect(src, &f);
    if (strcmp(f.tools, want[i].tools) != 0)
      fail_msg("%s: tools %s, want %s", want[i].file, f.tools, want[i].tools);
    if (!want[i].think != !f.think_open ||
        (want[i].think && strcmp(want[i].think, f.think_open) != 0))
      fail_msg("%s: think %s, want %s", want[i].file, f.think_open ? f.think_open : "none",
               want[i].think ? want[i].think : "none");
    free(src);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hermes_basic),
      cmocka_unit_test(test_hermes_several),
      cmocka_unit_test(test_hermes_arguments_forms),
      cmocka_unit_test(test_hermes_malformed),
      cmocka_unit_test(test_hermes_unterminated_complete),
      cmocka_unit_test(test_marker_lookalikes),
      cmocka_unit_test(test_no_tools_and_none),
      cmocka_unit_test(test_reasoning),
      cmocka_unit_test(test_reasoning_forced_open),
      cmocka_unit_test(test_reasoning_think_brackets),
      cmocka_unit_test(test_coder_basic),
      cmocka_unit_test(test_coder_multiline_and_markup_in_values),
      cmocka_unit_test(test_coder_several_and_thinking),
      cmocka_unit_test(test_coder_unterminated_and_malformed),
      cmocka_unit_test(test_llama3),
      cmocka_unit_test(test_mistral),
      cmocka_unit_test(test_utf8),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_fuzz),
      cmocka_unit_test(test_delta_shapes),
      cmocka_unit_test(test_ids_and_seed),
      cmocka_unit_test(test_emit_refuses_and_bad_format),
      cmocka_unit_test(test_thinking_open),
      cmocka_unit_test(test_asr_answer),
      cmocka_unit_test(test_detect_strings),
      cmocka_unit_test(test_detect_templates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
