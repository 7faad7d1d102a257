/* test_api_parse.c — unit tests for src/daemon/parse/api_parse.h, the validation of OpenAI request
 * bodies into worker messages (docs/PROTOCOL.md).
 *
 * The model matrix is built by hand (no config file, no GGUF): a chat+completion model with an
 * alias, a completion-only model, and an embedding model.
 *
 * Covers:
 *  - api_parse_body: object accepted; invalid JSON, empty body, a JSON array / string / number,
 *    duplicate keys -> 400 invalid_json;
 *  - model lookup: missing / null / non-string model (400 param model), unknown model (404
 *    model_not_found, the message names the model and lists the available names), alias lookup,
 *    a model without the capability (400 wrong_capability naming its capabilities);
 *  - chat: the exact worker message of a minimal request (op, messages, max_tokens -1); roles, the
 *    developer -> system mapping, content-part arrays joined with "\n", null content, assistant
 *    without content; every message error (missing, empty, not an array, element not an
 *    object, role missing / unknown, content of a wrong type, a non-text part:
 *    unsupported_content); image_url parts on a vision model (marker in the text, URLs
 *    collected in order, at most 16, bad parts refused);
 *  - completions: prompt string, one-element prompt array, max_tokens default 16, prompt errors;
 *  - sampling fields: copied with their values; temperature "hot" and 3, top_p 1.5, top_k -1 and
 *    2.5, min_p, penalties out of range; max_tokens 0 / "10" / 5.0 / 5.5; max_completion_tokens
 *    wins; seed masked to 32 bits; stop string -> array, 5 entries, empty, non-string, too long;
 *    stream / stream_options / include_usage / ignore_eos flags and their errors;
 *  - refusals: n=2, tools non-empty (tools [] accepted), response_format json_object (text
 *    accepted), logprobs true;
 *  - embeddings: string and array inputs, the message shape, encoding_format float/base64, and
 *    every error (input missing / null / empty string / empty array / array of ints / 2049 items,
 *    encoding_format "hex", dimensions not a positive integer, an empty instruction);
 *  - rerank: the worker message (documents as strings, {text} objects unwrapped), top_n clamped,
 *    return_documents, TEI's texts/return_text, keep_alive, and every error (query missing /
 *    empty / not a string, documents missing / empty / not an array / 1025 items / an element
 *    that is neither a string nor {text: string}, top_n 0 / 1.5 / "2", return_documents 1,
 *    wrong capability both ways, unknown model);
 *  - every error turns into a printable OpenAI error body (api_error_json), also when the quoted
 *    request text is cut inside a UTF-8 character (known bug: test_error_message_utf8_cut);
 *  - a plain-string stop obeys the same 256-byte bound as the array form (known bug:
 *    test_stop_string_bound);
 *  - a fuzz loop (fixed seed) of JSON-ish bodies through api_parse_body, api_parse_generate (chat
 *    and completions), api_parse_embed and api_parse_rerank: no crash, every outcome well-formed,
 * no leak (ASan).
 */
#include "buf.h"
#include "parse/api_parse.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <math.h>
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

/* ---- a hand-built matrix ------------------------------------------------------------------- */

static char *chat_aliases[] = {"qwen-alias"};
static matrix_model test_models[] = {
    {.name = "tiny-qwen",
     .aliases = chat_aliases,
     .n_aliases = 1,
     .caps = MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION,
     .context = 512,
     .parallel = 2},
    {.name = "base-only", .caps = MATRIX_CAP_COMPLETION, .context = 512, .parallel = 1},
    {.name = "tiny-bert", .caps = MATRIX_CAP_EMBED, .context = 256, .parallel = 1},
    {.name = "tiny-rerank", .caps = MATRIX_CAP_RERANK, .context = 256, .parallel = 1},
};
static matrix test_mx = {.models = test_models,
                         .n_models = sizeof test_models / sizeof test_models[0],
                         .max_body_bytes = 1 << 20};

/* ---- helpers ------------------------------------------------------------------------------- */

/* A message must be printable as an OpenAI error body: the status, type and code agree. */
static void check_error_json(const api_error *e) {
  json_t *j = api_error_json(e);
  assert_non_null(j);
  json_t *inner = json_object_get(j, "error");
  assert_true(json_is_object(inner));
  assert_string_equal(json_string_value(json_object_get(inner, "message")), e->message);
  assert_string_equal(json_string_value(json_object_get(inner, "type")),
                      e->type ? e->type : "server_error");
  if (e->code)
    assert_string_equal(json_string_value(json_object_get(inner, "code")), e->code);
  else
    assert_true(json_is_null(json_object_get(inner, "code")));
  if (e->param)
    assert_string_equal(json_string_value(json_object_get(inner, "param")), e->param);
  else
    assert_true(json_is_null(json_object_get(inner, "param")));
  json_decref(j);
}

static void expect_err_(const api_error *e, int status, const char *code, const char *param,
                        const char *phrase, const char *file, int line) {
  if (e->status != status || !e->code || strcmp(e->code, code) != 0 ||
      (param ? !e->param || strcmp(e->param, param) != 0 : e->param != NULL) ||
      (phrase && !strstr(e->message, phrase)))
    fail_msg(
        "%s:%d: got status %d code %s param %s message \"%s\"; want %d %s %s containing \"%s\"",
        file, line, e->status, e->code ? e->code : "(null)", e->param ? e->param : "(null)",
        e->message, status, code, param ? param : "(null)", phrase ? phrase : "");
  assert_string_equal(e->type, "invalid_request_error");
  check_error_json(e);
}
#define expect_err(e, st, code, param, phrase) \
  expect_err_(e, st, code, param, phrase, __FILE__, __LINE__)

/* Parse a generate request that must succeed; the caller clears *g. */
static void gen_ok_(bool chat, const char *body, api_gen *g, const char *file, int line) {
  json_t *req = ut_json(body);
  api_error e = {0};
  int rc = api_parse_generate(&test_mx, NULL, req, chat, g, &e);
  json_decref(req); /* before any failure, so a failing test reports no leak of its own */
  if (rc != 0)
    fail_msg("%s:%d: %s refused (%d %s): %s", file, line, body, e.status, e.code ? e.code : "",
             e.message);
  assert_non_null(g->msg);
  assert_string_equal(json_string_value(json_object_get(g->msg, "op")), "generate");
  assert_int_equal(g->chat, chat);
  assert_null(json_object_get(g->msg, "id")); /* the daemon adds it */
}
#define gen_ok(chat, body, g) gen_ok_(chat, body, g, __FILE__, __LINE__)

static void gen_err_(bool chat, const char *body, int status, const char *code, const char *param,
                     const char *phrase, const char *file, int line) {
  json_t *req = ut_json(body);
  api_error e = {0};
  api_gen g;
  int rc = api_parse_generate(&test_mx, NULL, req, chat, &g, &e);
  json_decref(req);
  if (rc != -1) {
    api_gen_clear(&g);
    fail_msg("%s:%d: %s accepted", file, line, body);
  }
  assert_null(g.msg); /* nothing left to free on failure */
  expect_err_(&e, status, code, param, phrase, file, line);
}
#define chat_err(body, st, code, param, phrase) \
  gen_err_(true, body, st, code, param, phrase, __FILE__, __LINE__)
#define comp_err(body, st, code, param, phrase) \
  gen_err_(false, body, st, code, param, phrase, __FILE__, __LINE__)

static void embed_err_(const char *body, int status, const char *code, const char *param,
                       const char *phrase, const char *file, int line) {
  json_t *req = ut_json(body);
  api_error e = {0};
  api_embed out;
  int rc = api_parse_embed(&test_mx, NULL, req, &out, &e);
  json_decref(req);
  if (rc != -1) {
    api_embed_clear(&out);
    fail_msg("%s:%d: %s accepted", file, line, body);
  }
  assert_null(out.msg);
  expect_err_(&e, status, code, param, phrase, file, line);
}
#define embed_err(body, st, code, param, phrase) \
  embed_err_(body, st, code, param, phrase, __FILE__, __LINE__)

/* A chat body around one field: {"model":"tiny-qwen","messages":[{"role":"user","content":"hi"}],
 * FIELD} */
#define CHAT(field) "{'model':'tiny-qwen','messages':[{'role':'user','content':'hi'}]," field "}"
#define CHAT_MSGS(msgs) "{'model':'tiny-qwen','messages':" msgs "}"

/* ---- api_parse_body ------------------------------------------------------------------------ */

static void body_err(const char *body, size_t len, const char *phrase) {
  api_error e = {0};
  assert_null(api_parse_body(body, len, &e));
  expect_err(&e, 400, "invalid_json", NULL, phrase);
}

static void test_parse_body(void **state) {
  (void)state;
  api_error e = {0};
  const char *ok = "{\"model\":\"x\",\"n\":1}";
  json_t *j = api_parse_body(ok, strlen(ok), &e);
  assert_true(json_is_object(j));
  assert_int_equal(e.status, 0);
  json_decref(j);
  /* the length is honoured: the text after it is not read */
  j = api_parse_body("{}garbage", 2, &e);
  assert_true(json_is_object(j));
  json_decref(j);

  body_err("{\"model\":", 9, "could not parse the JSON body");
  body_err("", 0, "could not parse the JSON body");
  body_err("not json", 8, "could not parse");
  body_err("{\"a\":1} {}", 10, "could not parse");
  body_err("[1,2,3]", 7, "must be a JSON object");
  body_err("[]", 2, "must be a JSON object");
  body_err("{\"model\":\"a\",\"model\":\"b\"}", 25, "could not parse"); /* duplicate keys */
  body_err("{\"a\":\"\\u0000\"}", 14, "could not parse");               /* NUL inside a string */
  body_err("{\"a\":\"\xff\"}", 8, "could not parse");                   /* invalid UTF-8 */
  body_err("{\"a\":1}\0", 8, "could not parse");                        /* a NUL after the object */
}

/* ---- model lookup -------------------------------------------------------------------------- */

static void test_model_errors(void **state) {
  (void)state;
  chat_err("{'messages':[{'role':'user','content':'hi'}]}", 400, "missing_required_parameter",
           "model", "must provide a model");
  chat_err("{'model':null,'messages':[{'role':'user','content':'hi'}]}", 400,
           "missing_required_parameter", "model", "model");
  chat_err("{'model':42,'messages':[{'role':'user','content':'hi'}]}", 400, "invalid_type", "model",
           "must be a string");
  chat_err("{'model':['tiny-qwen'],'messages':[]}", 400, "invalid_type", "model",
           "must be a string");
  chat_err("{'model':'gpt-4o','messages':[{'role':'user','content':'hi'}]}", 404, "model_not_found",
           "model", "'gpt-4o' does not exist");
  /* the 404 lists every available name */
  json_t *req = ut_json("{'model':'nope','input':'x'}");
  api_error e = {0};
  api_embed emb;
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &emb, &e), -1);
  expect_err(&e, 404, "model_not_found", "model",
             "Available models: tiny-qwen, base-only, tiny-bert");
  json_decref(req);
  /* an empty matrix says so */
  matrix empty = {0};
  req = ut_json(CHAT("'x':1"));
  api_gen g;
  assert_int_equal(api_parse_generate(&empty, NULL, req, true, &g, &e), -1);
  expect_err(&e, 404, "model_not_found", "model", "(none)");
  json_decref(req);
  /* model names are case sensitive and exact */
  chat_err("{'model':'Tiny-Qwen','messages':[{'role':'user','content':'hi'}]}", 404,
           "model_not_found", "model", "Tiny-Qwen");
  chat_err("{'model':'tiny-qwen ','messages':[{'role':'user','content':'hi'}]}", 404,
           "model_not_found", "model", NULL);
}

static void test_model_alias_and_capability(void **state) {
  (void)state;
  api_gen g;
  gen_ok(true, "{'model':'qwen-alias','messages':[{'role':'user','content':'hi'}]}", &g);
  assert_ptr_equal(g.model, &test_models[0]);
  api_gen_clear(&g);
  assert_null(g.msg);
  api_gen_clear(&g); /* twice is harmless */

  /* a completion-only model refuses chat; an embedding model refuses both */
  chat_err("{'model':'base-only','messages':[{'role':'user','content':'hi'}]}", 400,
           "wrong_capability", "model",
           "does not support chat completions (its capabilities: completion)");
  chat_err("{'model':'tiny-bert','messages':[{'role':'user','content':'hi'}]}", 400,
           "wrong_capability", "model",
           "'tiny-bert' does not support chat completions (its capabilities: embed)");
  comp_err("{'model':'tiny-bert','prompt':'x'}", 400, "wrong_capability", "model",
           "does not support text completions");
  embed_err("{'model':'tiny-qwen','input':'x'}", 400, "wrong_capability", "model",
            "does not support embeddings (its capabilities: chat,completion)");
  gen_ok(false, "{'model':'base-only','prompt':'x'}", &g);
  assert_ptr_equal(g.model, &test_models[1]);
  api_gen_clear(&g);
}

/* ---- chat ---------------------------------------------------------------------------------- */

static void test_chat_minimal(void **state) {
  (void)state;
  api_gen g;
  gen_ok(true, "{'model':'tiny-qwen','messages':[{'role':'user','content':'Hello'}]}", &g);
  json_t *want =
      ut_json("{'op':'generate','messages':[{'role':'user','content':'Hello'}],'max_tokens':-1}");
  if (!json_equal(g.msg, want)) {
    char *s = json_dumps(g.msg, JSON_SORT_KEYS);
    fail_msg("minimal chat message: %s", s);
  }
  assert_false(g.stream);
  assert_false(g.include_usage);
  assert_true(g.chat);
  assert_ptr_equal(g.model, &test_models[0]);
  json_decref(want);
  api_gen_clear(&g);
}

static void test_chat_roles_and_content(void **state) {
  (void)state;
  api_gen g;
  gen_ok(true,
         CHAT_MSGS("[{'role':'developer','content':'be brief'},"
                   "{'role':'system','content':'sys'},"
                   "{'role':'user','content':[{'type':'text','text':'part "
                   "one'},{'type':'text','text':'part two'}]},"
                   "{'role':'assistant','tool_calls':[]},"
                   "{'role':'assistant','content':null},"
                   "{'role':'tool','content':'42','tool_call_id':'c1'},"
                   "{'role':'user','content':'ok','name':'bob'}]"),
         &g);
  json_t *want = ut_json(
      "[{'role':'system','content':'be brief'},"
      "{'role':'system','content':'sys'},"
      "{'role':'user','content':'part one\\npart two'},"
      "{'role':'assistant','content':null},"
      "{'role':'assistant','content':null},"
      "{'role':'tool','content':'42','tool_call_id':'c1'},"
      "{'role':'user','content':'ok'}]");
  json_t *got = json_object_get(g.msg, "messages");
  if (!json_equal(got, want)) {
    char *s = json_dumps(got, 0);
    fail_msg("messages: %s", s);
  }
  json_decref(want);
  api_gen_clear(&g);

  /* unicode, quotes and newlines pass through untouched */
  gen_ok(true, CHAT_MSGS("[{'role':'user','content':'h\\u00e9\\n\\\"q\\\" \\ud83d\\ude00'}]"), &g);
  assert_string_equal(json_string_value(json_object_get(
                          json_array_get(json_object_get(g.msg, "messages"), 0), "content")),
                      "h\xc3\xa9\n\"q\" \xf0\x9f\x98\x80");
  api_gen_clear(&g);

  /* a single text part; an empty parts array gives empty content */
  gen_ok(true,
         CHAT_MSGS("[{'role':'user','content':[{'type':'text','text':'only'}]},{'role':'user','"
                   "content':[]}]"),
         &g);
  json_t *msgs = json_object_get(g.msg, "messages");
  assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                      "only");
  assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")), "");
  api_gen_clear(&g);
}

static void test_chat_message_errors(void **state) {
  (void)state;
  chat_err("{'model':'tiny-qwen'}", 400, "missing_required_parameter", "messages", "'messages'");
  chat_err(CHAT_MSGS("[]"), 400, "invalid_value", "messages", "non-empty array");
  chat_err(CHAT_MSGS("{'role':'user','content':'hi'}"), 400, "invalid_value", "messages",
           "non-empty array");
  chat_err(CHAT_MSGS("'hi'"), 400, "invalid_value", "messages", "non-empty array");
  chat_err(CHAT_MSGS("null"), 400, "invalid_value", "messages", "non-empty array");
  chat_err(CHAT_MSGS("['hi']"), 400, "invalid_type", "messages", "messages[0] must be an object");
  chat_err(CHAT_MSGS("[{'role':'user','content':'a'},7]"), 400, "invalid_type", "messages",
           "messages[1] must be an object");
  chat_err(CHAT_MSGS("[{'content':'a'}]"), 400, "invalid_type", "messages", "string 'role'");
  chat_err(CHAT_MSGS("[{'role':1,'content':'a'}]"), 400, "invalid_type", "messages",
           "string 'role'");
  chat_err(CHAT_MSGS("[{'role':'wizard','content':'a'}]"), 400, "invalid_value", "messages",
           "messages[0].role 'wizard' is not one of");
  chat_err(CHAT_MSGS("[{'role':'User','content':'a'}]"), 400, "invalid_value", "messages",
           "'User'");
  chat_err(CHAT_MSGS("[{'role':'user'}]"), 400, "missing_required_parameter", "messages",
           "messages[0] has no 'content'");
  chat_err(CHAT_MSGS("[{'role':'user','content':5}]"), 400, "invalid_type", "messages",
           "messages[0].content must be a string or an array");
  chat_err(CHAT_MSGS("[{'role':'user','content':{'type':'text','text':'a'}}]"), 400, "invalid_type",
           "messages", "messages[0].content must be");
  chat_err(CHAT_MSGS("[{'role':'user','content':true}]"), 400, "invalid_type", "messages",
           "content must be");
  chat_err(CHAT_MSGS("[{'role':'user','content':['a']}]"), 400, "invalid_type", "messages",
           "messages[0].content[0] must be an object with a 'type'");
  chat_err(CHAT_MSGS("[{'role':'user','content':[{'text':'a'}]}]"), 400, "invalid_type", "messages",
           "content[0] must be an object with a 'type'");
  chat_err(CHAT_MSGS("[{'role':'user','content':[{'type':'text'}]}]"), 400, "invalid_type",
           "messages", "messages[0].content[0].text must be a string");
  chat_err(CHAT_MSGS("[{'role':'user','content':[{'type':'text','text':3}]}]"), 400, "invalid_type",
           "messages", "text must be a string");
  chat_err(
      CHAT_MSGS(
          "[{'role':'user','content':'x'},{'role':'user','content':[{'type':'text','text':'a'},"
          "{'type':'image_url','image_url':{'url':'data:image/png;base64,AAAA'}}]}]"),
      400, "unsupported_content", "messages",
      "messages[1].content[1] has type 'image_url'; model 'tiny-qwen' accepts only text content");
  chat_err(CHAT_MSGS("[{'role':'user','content':[{'type':'input_audio','input_audio':{}}]}]"), 400,
           "unsupported_content", "messages", "'input_audio'");
}

/* ---- vision: image_url parts (a model with the vision capability, in a matrix of its own) ---- */

static matrix_model vision_models[] = {
    {.name = "tiny-vlm",
     .caps = MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION | MATRIX_CAP_VISION,
     .context = 512,
     .parallel = 1},
};
static matrix vision_mx = {.models = vision_models, .n_models = 1, .max_body_bytes = 1 << 20};

static int vision_parse(const char *msgs, api_gen *g, api_error *e) {
  sy_buf b = {0};
  sy_buf_printf(&b, "{'model':'tiny-vlm','messages':%s}", msgs);
  json_t *req = ut_json(b.data);
  sy_buf_free(&b);
  int rc = api_parse_generate(&vision_mx, NULL, req, true, g, e);
  json_decref(req);
  return rc;
}

static void test_vision_parts(void **state) {
  (void)state;
  api_gen g;
  api_error e = {0};
  /* the marker takes each image's place, with no separator; "\n" only between two text parts */
  assert_int_equal(
      vision_parse("[{'role':'user','content':[{'type':'text','text':'a'},"
                   "{'type':'image_url','image_url':{'url':'data:x','detail':'low'}},"
                   "{'type':'text','text':'b'},{'type':'text','text':'c'},"
                   "{'type':'image_url','image_url':{'url':'file2'}}]},"
                   "{'role':'user','content':[{'type':'image_url','image_url':'bare'}]}]",
                   &g, &e),
      0);
  assert_string_equal(json_string_value(json_object_get(
                          json_array_get(json_object_get(g.msg, "messages"), 0), "content")),
                      "a" API_IMAGE_MARKER "b\nc" API_IMAGE_MARKER);
  assert_string_equal(json_string_value(json_object_get(
                          json_array_get(json_object_get(g.msg, "messages"), 1), "content")),
                      API_IMAGE_MARKER);
  json_t *want = ut_json("['data:x','file2','bare']");
  assert_true(json_equal(g.media, want));
  json_decref(want);
  assert_null(json_object_get(g.msg, "images")); /* sizes are added by the daemon after decoding */
  api_gen_clear(&g);
  assert_null(g.media);

  /* text only: no URL list */
  assert_int_equal(vision_parse("[{'role':'user','content':[{'type':'text','text':'a'}]}]", &g, &e),
                   0);
  assert_null(g.media);
  api_gen_clear(&g);

  /* bad parts */
  static const char *const bad[] = {
      "[{'role':'user','content':[{'type':'image_url'}]}]",
      "[{'role':'user','content':[{'type':'image_url','image_url':{'url':''}}]}]",
      "[{'role':'user','content':[{'type':'image_url','image_url':{'url':5}}]}]",
      "[{'role':'user','content':[{'type':'image_url','image_url':{'url':'x','detail':3}}]}]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&e, 0, sizeof e);
    assert_int_equal(vision_parse(bad[i], &g, &e), -1);
    expect_err(&e, 400, "invalid_value", "messages", "image_url");
    api_gen_clear(&g);
  }
  /* 16 images pass, 17 do not (counted over all messages) */
  sy_buf b = {0};
  sy_buf_puts(&b, "[{'role':'user','content':[");
  for (int i = 0; i < 16; i++)
    sy_buf_printf(&b, "%s{'type':'image_url','image_url':{'url':'u%d'}}", i ? "," : "", i);
  sy_buf_puts(&b, "]}]");
  assert_int_equal(vision_parse(b.data, &g, &e), 0);
  assert_int_equal(json_array_size(g.media), API_MAX_IMAGES);
  api_gen_clear(&g);
  b.len -= 3;
  sy_buf_puts(&b, "]},{'role':'user','content':[{'type':'image_url','image_url':{'url':'u16'}}]}]");
  memset(&e, 0, sizeof e);
  assert_int_equal(vision_parse(b.data, &g, &e), -1);
  expect_err(&e, 400, "invalid_value", "messages", "at most 16 images");
  api_gen_clear(&g);
  sy_buf_free(&b);
}

/* ---- audio: input_audio parts (a model with the audio capability), mixed with images ---- */

static matrix_model audio_models[] = {
    {.name = "tiny-alm", .caps = MATRIX_CAP_CHAT | MATRIX_CAP_AUDIO, .context = 512, .parallel = 1},
    {.name = "tiny-omni",
     .caps = MATRIX_CAP_CHAT | MATRIX_CAP_AUDIO | MATRIX_CAP_VISION,
     .context = 512,
     .parallel = 1},
};
static matrix audio_mx = {.models = audio_models, .n_models = 2, .max_body_bytes = 1 << 20};

static int audio_parse(const char *model, const char *msgs, api_gen *g, api_error *e) {
  sy_buf b = {0};
  sy_buf_printf(&b, "{'model':'%s','messages':%s}", model, msgs);
  json_t *req = ut_json(b.data);
  sy_buf_free(&b);
  int rc = api_parse_generate(&audio_mx, NULL, req, true, g, e);
  json_decref(req);
  return rc;
}

static void test_audio_parts(void **state) {
  (void)state;
  api_gen g;
  api_error e = {0};
  /* markers in part order, images and audio in one list: strings and {data, format} */
  assert_int_equal(
      audio_parse("tiny-omni",
                  "[{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'UklG','"
                  "format':'wav'}},"
                  "{'type':'text','text':'and'},{'type':'image_url','image_url':{'url':'u'}},"
                  "{'type':'input_audio','input_audio':{'data':'SUQz'}}]}]",
                  &g, &e),
      0);
  assert_string_equal(json_string_value(json_object_get(
                          json_array_get(json_object_get(g.msg, "messages"), 0), "content")),
                      API_IMAGE_MARKER "and" API_IMAGE_MARKER API_IMAGE_MARKER);
  json_t *want = ut_json("[{'data':'UklG','format':'wav'},'u',{'data':'SUQz','format':''}]");
  assert_true(json_equal(g.media, want));
  json_decref(want);
  api_gen_clear(&g);

  /* an audio-only model refuses images, and says what it takes */
  memset(&e, 0, sizeof e);
  assert_int_equal(
      audio_parse("tiny-alm",
                  "[{'role':'user','content':[{'type':'image_url','image_url':{'url':'u'}}]}]", &g,
                  &e),
      -1);
  expect_err(&e, 400, "unsupported_content", "messages",
             "accepts only text and input_audio content");
  api_gen_clear(&g);
  /* a vision model refuses audio */
  memset(&e, 0, sizeof e);
  assert_int_equal(
      vision_parse(
          "[{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'x'}}]}]", &g,
          &e),
      -1);
  expect_err(&e, 400, "unsupported_content", "messages", "accepts only text and image_url content");
  api_gen_clear(&g);

  static const char *const bad[] = {
      "[{'role':'user','content':[{'type':'input_audio'}]}]",
      "[{'role':'user','content':[{'type':'input_audio','input_audio':'UklG'}]}]",
      "[{'role':'user','content':[{'type':'input_audio','input_audio':{'data':''}}]}]",
      "[{'role':'user','content':[{'type':'input_audio','input_audio':{'data':5}}]}]",
      "[{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'x','format':1}}]}]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&e, 0, sizeof e);
    assert_int_equal(audio_parse("tiny-alm", bad[i], &g, &e), -1);
    expect_err(&e, 400, "invalid_value", "messages", "input_audio must be");
    api_gen_clear(&g);
  }
  /* 8 audio parts pass, 9 do not; the image count is separate */
  sy_buf b = {0};
  sy_buf_puts(&b, "[{'role':'user','content':[");
  for (int i = 0; i < API_MAX_AUDIO + 1; i++)
    sy_buf_printf(&b, "%s{'type':'input_audio','input_audio':{'data':'a%d'}}", i ? "," : "", i);
  for (int i = 0; i < API_MAX_IMAGES; i++)
    sy_buf_printf(&b, ",{'type':'image_url','image_url':{'url':'u%d'}}", i);
  sy_buf_puts(&b, "]}]");
  memset(&e, 0, sizeof e);
  assert_int_equal(audio_parse("tiny-omni", b.data, &g, &e), -1);
  expect_err(&e, 400, "invalid_value", "messages", "at most 8 audio parts");
  api_gen_clear(&g);
  sy_buf_free(&b);
  sy_buf_puts(&b, "[{'role':'user','content':[");
  for (int i = 0; i < API_MAX_AUDIO; i++)
    sy_buf_printf(&b, "%s{'type':'input_audio','input_audio':{'data':'a%d'}}", i ? "," : "", i);
  for (int i = 0; i < API_MAX_IMAGES; i++)
    sy_buf_printf(&b, ",{'type':'image_url','image_url':{'url':'u%d'}}", i);
  sy_buf_puts(&b, "]}]");
  assert_int_equal(audio_parse("tiny-omni", b.data, &g, &e), 0);
  assert_int_equal(json_array_size(g.media), API_MAX_AUDIO + API_MAX_IMAGES);
  api_gen_clear(&g);
  sy_buf_free(&b);
}

/* ---- completions --------------------------------------------------------------------------- */

static void test_completions(void **state) {
  (void)state;
  api_gen g;
  gen_ok(false, "{'model':'tiny-qwen','prompt':'Once upon'}", &g);
  json_t *want = ut_json("{'op':'generate','prompt':'Once upon','max_tokens':16}");
  assert_true(json_equal(g.msg, want));
  assert_int_equal(API_COMPLETIONS_DEFAULT_MAX_TOKENS, 16);
  assert_false(g.chat);
  json_decref(want);
  api_gen_clear(&g);
  gen_ok(false, "{'model':'tiny-qwen','prompt':['in an array']}", &g);
  assert_string_equal(json_string_value(json_object_get(g.msg, "prompt")), "in an array");
  assert_null(json_object_get(g.msg, "messages"));
  api_gen_clear(&g);
  gen_ok(false, "{'model':'tiny-qwen','prompt':'','max_tokens':3,'messages':'ignored'}", &g);
  assert_string_equal(json_string_value(json_object_get(g.msg, "prompt")), "");
  assert_int_equal(json_integer_value(json_object_get(g.msg, "max_tokens")), 3);
  assert_null(json_object_get(g.msg, "messages"));
  api_gen_clear(&g);

  comp_err("{'model':'tiny-qwen'}", 400, "missing_required_parameter", "prompt", "'prompt'");
  comp_err("{'model':'tiny-qwen','prompt':5}", 400, "invalid_type", "prompt", "must be a string");
  comp_err("{'model':'tiny-qwen','prompt':[1,2,3]}", 400, "invalid_type", "prompt", "token arrays");
  comp_err("{'model':'tiny-qwen','prompt':['a','b']}", 400, "invalid_type", "prompt",
           "several prompts");
  comp_err("{'model':'tiny-qwen','prompt':[]}", 400, "invalid_type", "prompt", NULL);
  comp_err("{'model':'tiny-qwen','prompt':null}", 400, "invalid_type", "prompt", NULL);
}

/* ---- sampling and limits ------------------------------------------------------------------- */

static void test_sampling_fields_copied(void **state) {
  (void)state;
  api_gen g;
  gen_ok(true,
         CHAT("'temperature':0,'top_p':0.5,'top_k':7,'min_p':0.1,'presence_penalty':-2,"
              "'frequency_penalty':1.5,'repeat_penalty':1.1,'seed':1234,'max_tokens':64,"
              "'stop':['END','\\n\\n'],'user':'ignored','metadata':{'x':1}"),
         &g);
  json_t *m = g.msg;
  assert_true(json_is_real(json_object_get(m, "temperature")));
  assert_true(json_real_value(json_object_get(m, "temperature")) == 0.0);
  assert_true(json_number_value(json_object_get(m, "top_p")) == 0.5);
  assert_int_equal(json_integer_value(json_object_get(m, "top_k")), 7);
  assert_true(fabs(json_number_value(json_object_get(m, "min_p")) - 0.1) < 1e-12);
  assert_true(json_number_value(json_object_get(m, "presence_penalty")) == -2.0);
  assert_true(json_number_value(json_object_get(m, "frequency_penalty")) == 1.5);
  assert_true(fabs(json_number_value(json_object_get(m, "repeat_penalty")) - 1.1) < 1e-12);
  assert_int_equal(json_integer_value(json_object_get(m, "seed")), 1234);
  assert_int_equal(json_integer_value(json_object_get(m, "max_tokens")), 64);
  json_t *want_stop = ut_json("['END','\\n\\n']");
  assert_true(json_equal(json_object_get(m, "stop"), want_stop));
  json_decref(want_stop);
  assert_null(json_object_get(m, "user"));
  assert_null(json_object_get(m, "metadata"));
  api_gen_clear(&g);

  /* null means absent, for every optional field */
  gen_ok(
      true,
      CHAT("'temperature':null,'top_p':null,'top_k':null,'seed':null,'stop':null,'max_tokens':null,"
           "'stream':null,'stream_options':null,'tools':null,'response_format':null,'n':null,"
           "'logprobs':null"),
      &g);
  json_t *want =
      ut_json("{'op':'generate','messages':[{'role':'user','content':'hi'}],'max_tokens':-1}");
  assert_true(json_equal(g.msg, want));
  json_decref(want);
  api_gen_clear(&g);

  /* the bounds themselves are accepted; integers are fine for real fields */
  gen_ok(
      true,
      CHAT(
          "'temperature':2,'top_p':0,'top_k':0,'min_p':1,'presence_penalty':2,'repeat_penalty':10"),
      &g);
  assert_true(json_number_value(json_object_get(g.msg, "temperature")) == 2.0);
  assert_int_equal(json_integer_value(json_object_get(g.msg, "top_k")), 0);
  api_gen_clear(&g);
}

static void test_sampling_errors(void **state) {
  (void)state;
  chat_err(CHAT("'temperature':'hot'"), 400, "invalid_value", "temperature",
           "'temperature' must be a number between 0 and 2");
  chat_err(CHAT("'temperature':3"), 400, "invalid_value", "temperature", "between 0 and 2");
  chat_err(CHAT("'temperature':-0.1"), 400, "invalid_value", "temperature", NULL);
  chat_err(CHAT("'temperature':true"), 400, "invalid_value", "temperature", NULL);
  chat_err(CHAT("'top_p':1.5"), 400, "invalid_value", "top_p",
           "'top_p' must be a number between 0 and 1");
  chat_err(CHAT("'top_p':[1]"), 400, "invalid_value", "top_p", NULL);
  chat_err(CHAT("'min_p':-1"), 400, "invalid_value", "min_p", NULL);
  chat_err(CHAT("'presence_penalty':2.5"), 400, "invalid_value", "presence_penalty",
           "between -2 and 2");
  chat_err(CHAT("'frequency_penalty':-3"), 400, "invalid_value", "frequency_penalty", NULL);
  chat_err(CHAT("'repeat_penalty':11"), 400, "invalid_value", "repeat_penalty", NULL);
  chat_err(CHAT("'top_k':-1"), 400, "invalid_value", "top_k",
           "'top_k' must be an integer between 0 and");
  chat_err(CHAT("'top_k':2.5"), 400, "invalid_value", "top_k", "must be an integer");
  chat_err(CHAT("'top_k':'5'"), 400, "invalid_value", "top_k", NULL);
  chat_err(CHAT("'top_k':2000000"), 400, "invalid_value", "top_k", NULL);
  comp_err("{'model':'tiny-qwen','prompt':'x','temperature':3}", 400, "invalid_value",
           "temperature", NULL);
  comp_err("{'model':'tiny-qwen','prompt':'x','top_k':-1}", 400, "invalid_value", "top_k", NULL);
  /* top_k 5.0 is an integer sent as a float: accepted as 5 */
  api_gen g;
  gen_ok(true, CHAT("'top_k':5.0"), &g);
  assert_true(json_is_integer(json_object_get(g.msg, "top_k")));
  assert_int_equal(json_integer_value(json_object_get(g.msg, "top_k")), 5);
  api_gen_clear(&g);
}

static void test_max_tokens(void **state) {
  (void)state;
  api_gen g;
  chat_err(CHAT("'max_tokens':0"), 400, "invalid_value", "max_tokens",
           "'max_tokens' must be an integer between 1 and");
  chat_err(CHAT("'max_tokens':-5"), 400, "invalid_value", "max_tokens", NULL);
  chat_err(CHAT("'max_tokens':'10'"), 400, "invalid_value", "max_tokens", "must be an integer");
  chat_err(CHAT("'max_tokens':5.5"), 400, "invalid_value", "max_tokens", NULL);
  chat_err(CHAT("'max_tokens':true"), 400, "invalid_value", "max_tokens", NULL);
  chat_err(CHAT("'max_tokens':16777217"), 400, "invalid_value", "max_tokens", NULL);
  chat_err(CHAT("'max_tokens':1e300"), 400, "invalid_value", "max_tokens", NULL);
  chat_err(CHAT("'max_tokens':-1e300"), 400, "invalid_value", "max_tokens", NULL);
  chat_err(CHAT("'max_tokens':9007199254740993"), 400, "invalid_value", "max_tokens", NULL);
  chat_err(CHAT("'max_completion_tokens':0"), 400, "invalid_value", "max_completion_tokens", NULL);
  comp_err("{'model':'tiny-qwen','prompt':'x','max_tokens':0}", 400, "invalid_value", "max_tokens",
           NULL);
  gen_ok(true, CHAT("'max_tokens':16777216"), &g);
  assert_int_equal(json_integer_value(json_object_get(g.msg, "max_tokens")), 16777216);
  api_gen_clear(&g);
  gen_ok(true, CHAT("'max_tokens':5.0"), &g);
  assert_true(json_is_integer(json_object_get(g.msg, "max_tokens")));
  assert_int_equal(json_integer_value(json_object_get(g.msg, "max_tokens")), 5);
  api_gen_clear(&g);
  /* max_completion_tokens wins over max_tokens, in either order */
  gen_ok(true, CHAT("'max_tokens':100,'max_completion_tokens':7"), &g);
  assert_int_equal(json_integer_value(json_object_get(g.msg, "max_tokens")), 7);
  assert_null(json_object_get(g.msg, "max_completion_tokens"));
  api_gen_clear(&g);
  gen_ok(true, CHAT("'max_completion_tokens':9,'max_tokens':100"), &g);
  assert_int_equal(json_integer_value(json_object_get(g.msg, "max_tokens")), 9);
  api_gen_clear(&g);
  gen_ok(false, "{'model':'tiny-qwen','prompt':'x','max_completion_tokens':3}", &g);
  assert_int_equal(json_integer_value(json_object_get(g.msg, "max_tokens")), 3);
  api_gen_clear(&g);
}

static void test_seed(void **state) {
  (void)state;
  static const struct {
    const char *seed;
    long long want;
  } cases[] = {
      {"0", 0},
      {"42", 42},
      {"4294967295", 4294967295LL},
      {"4294967296", 0},
      {"4294967338", 42},   /* 2^32 + 42 */
      {"1099511627781", 5}, /* 2^40 + 5 */
      {"-1", 4294967295LL}, /* two's complement, masked */
      {"-4294967296", 0},
      {"7.0", 7},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char body[256];
    snprintf(body, sizeof body, CHAT("'seed':%s"), cases[i].seed);
    api_gen g;
    gen_ok(true, body, &g);
    json_t *s = json_object_get(g.msg, "seed");
    assert_true(json_is_integer(s));
    if (json_integer_value(s) != cases[i].want)
      fail_msg("seed %s -> %lld, want %lld", cases[i].seed, (long long)json_integer_value(s),
               cases[i].want);
    assert_true(json_integer_value(s) >= 0 && json_integer_value(s) <= 0xffffffffLL);
    api_gen_clear(&g);
  }
  chat_err(CHAT("'seed':'42'"), 400, "invalid_value", "seed", "'seed' must be an integer");
  chat_err(CHAT("'seed':1.5"), 400, "invalid_value", "seed", NULL);
}

static void test_stop(void **state) {
  (void)state;
  api_gen g;
  gen_ok(true, CHAT("'stop':'END'"), &g);
  json_t *want = ut_json("['END']");
  assert_true(json_equal(json_object_get(g.msg, "stop"), want));
  json_decref(want);
  api_gen_clear(&g);
  gen_ok(true, CHAT("'stop':['a','b','c','d']"), &g);
  assert_int_equal(json_array_size(json_object_get(g.msg, "stop")), 4);
  api_gen_clear(&g);
  gen_ok(true, CHAT("'stop':[]"), &g);
  assert_int_equal(json_array_size(json_object_get(g.msg, "stop")), 0);
  api_gen_clear(&g);
  /* an empty stop string means no stop string */
  gen_ok(true, CHAT("'stop':''"), &g);
  assert_int_equal(json_array_size(json_object_get(g.msg, "stop")), 0);
  api_gen_clear(&g);

  chat_err(CHAT("'stop':['a','b','c','d','e']"), 400, "invalid_value", "stop", "at most 4 strings");
  chat_err(CHAT("'stop':['a','']"), 400, "invalid_value", "stop",
           "stop[1] must be a non-empty string");
  chat_err(CHAT("'stop':['a',5]"), 400, "invalid_value", "stop",
           "stop[1] must be a non-empty string");
  chat_err(CHAT("'stop':[null]"), 400, "invalid_value", "stop", "stop[0]");
  chat_err(CHAT("'stop':5"), 400, "invalid_value", "stop", "'stop' must be a string or an array");
  chat_err(CHAT("'stop':{'a':1}"), 400, "invalid_value", "stop", NULL);
  char body[1024], longs[300];
  memset(longs, 'x', 257);
  longs[257] = '\0';
  snprintf(body, sizeof body, CHAT("'stop':['%s']"), longs);
  chat_err(body, 400, "invalid_value", "stop", "at most 256 bytes");
  longs[256] = '\0';
  snprintf(body, sizeof body, CHAT("'stop':['%s']"), longs);
  gen_ok(true, body, &g);
  api_gen_clear(&g);
}

static void test_stream_flags(void **state) {
  (void)state;
  api_gen g;
  gen_ok(true, CHAT("'stream':true"), &g);
  assert_true(g.stream);
  assert_false(g.include_usage);
  assert_null(json_object_get(g.msg, "stream"));
  api_gen_clear(&g);
  gen_ok(true, CHAT("'stream':true,'stream_options':{'include_usage':true}"), &g);
  assert_true(g.stream);
  assert_true(g.include_usage);
  api_gen_clear(&g);
  gen_ok(true, CHAT("'stream':false,'stream_options':{'include_usage':false}"), &g);
  assert_false(g.stream);
  assert_false(g.include_usage);
  api_gen_clear(&g);
  gen_ok(true, CHAT("'stream':true,'stream_options':{}"), &g);
  assert_false(g.include_usage);
  api_gen_clear(&g);
  gen_ok(false,
         "{'model':'tiny-qwen','prompt':'x','stream':true,'stream_options':{'include_usage':true}}",
         &g);
  assert_true(g.stream);
  assert_true(g.include_usage);
  api_gen_clear(&g);

  chat_err(CHAT("'stream':'yes'"), 400, "invalid_type", "stream", "'stream' must be a boolean");
  chat_err(CHAT("'stream':1"), 400, "invalid_type", "stream", NULL);
  chat_err(CHAT("'stream':true,'stream_options':true"), 400, "invalid_type", "stream_options",
           "'stream_options' must be an object");
  chat_err(CHAT("'stream':true,'stream_options':[]"), 400, "invalid_type", "stream_options", NULL);
  chat_err(CHAT("'stream':true,'stream_options':{'include_usage':'yes'}"), 400, "invalid_type",
           "stream_options.include_usage", "must be a boolean");
  chat_err(CHAT("'stream':true,'stream_options':{'include_usage':1}"), 400, "invalid_type",
           "stream_options.include_usage", NULL);
}

/* ignore_eos (llama-server's extension): a boolean copied into the worker message when given. */
static void test_ignore_eos(void **state) {
  (void)state;
  api_gen g;
  gen_ok(true, CHAT("'ignore_eos':true"), &g);
  assert_true(json_is_true(json_object_get(g.msg, "ignore_eos")));
  api_gen_clear(&g);
  gen_ok(false, "{'model':'tiny-qwen','prompt':'x','ignore_eos':false}", &g);
  assert_true(json_is_false(json_object_get(g.msg, "ignore_eos")));
  api_gen_clear(&g);
  gen_ok(true, CHAT("'x':1"), &g);
  assert_null(json_object_get(g.msg, "ignore_eos"));
  api_gen_clear(&g);
  chat_err(CHAT("'ignore_eos':'yes'"), 400, "invalid_type", "ignore_eos", "must be a boolean");
  chat_err(CHAT("'ignore_eos':1"), 400, "invalid_type", "ignore_eos", NULL);
}

/* tools, tool_choice, tool calls in history, response_format, reasoning: checked and passed on. */
static void test_tools_and_formats(void **state) {
  (void)state;
  api_gen g;
  gen_ok(true,
         CHAT("'tools':[{'type':'function','function':{'name':'get_weather','parameters':{'type':'"
              "object'}}}],"
              "'tool_choice':{'type':'function','function':{'name':'get_weather'}},'parallel_tool_"
              "calls':false"),
         &g);
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_array_get(json_object_get(g.msg, "tools"), 0), "function"), "name")),
      "get_weather");
  assert_non_null(json_object_get(g.msg, "tool_choice"));
  assert_true(json_is_false(json_object_get(g.msg, "parallel_tool_calls")));
  api_gen_clear(&g);
  chat_err(CHAT("'tools':[{'type':'function','function':{'name':'bad name'}}]"), 400,
           "invalid_value", "tools", "letters, digits");
  chat_err(CHAT("'tools':[{'type':'retrieval'}]"), 400, "invalid_value", "tools", NULL);
  chat_err(CHAT("'tools':[{'type':'function','function':{'name':'f','parameters':[]}}]"), 400,
           "invalid_type", "tools", NULL);
  chat_err(CHAT("'tools':[{'type':'function','function':{'name':'f'}},{'type':'function','function'"
                ":{'name':'f'}}]"),
           400, "invalid_value", "tools", "used twice");
  chat_err(CHAT("'tool_choice':'required'"), 400, "invalid_value", "tool_choice", NULL);
  chat_err(CHAT("'tools':[{'type':'function','function':{'name':'f'}}],'tool_choice':{'type':'"
                "function','function':{'name':'g'}}"),
           400, "invalid_value", "tool_choice", "not in 'tools'");
  chat_err(CHAT("'tool_choice':'sometimes'"), 400, "invalid_value", "tool_choice", NULL);
  gen_ok(true, CHAT("'tool_choice':'none'"), &g);
  api_gen_clear(&g);
  /* history with calls and results */
  gen_ok(true,
         CHAT_MSGS("[{'role':'user','content':'weather?'},"
                   "{'role':'assistant','content':null,'reasoning_content':'think','tool_calls':[{'"
                   "id':'c1','type':'function',"
                   "'function':{'name':'get_weather','arguments':'{\\\"city\\\":\\\"Oslo\\\"}'}}]},"
                   "{'role':'tool','tool_call_id':'c1','name':'get_weather','content':'cold'}]"),
         &g);
  json_t *a = json_array_get(json_object_get(g.msg, "messages"), 1);
  assert_true(json_is_null(json_object_get(a, "content")));
  assert_string_equal(json_string_value(json_object_get(a, "reasoning_content")), "think");
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_array_get(json_object_get(a, "tool_calls"), 0), "function"),
          "name")),
      "get_weather");
  json_t *t = json_array_get(json_object_get(g.msg, "messages"), 2);
  assert_string_equal(json_string_value(json_object_get(t, "tool_call_id")), "c1");
  api_gen_clear(&g);
  chat_err(
      CHAT_MSGS("[{'role':'assistant','tool_calls':[{'function':{'name':'f','arguments':3}}]}]"),
      400, "invalid_value", "messages", "tool_calls[0]");
  gen_ok(true,
         CHAT("'response_format':{'type':'json_schema','json_schema':{'name':'x','schema':{'type':'"
              "object'}}}"),
         &g);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(g.msg, "response_format"), "type")),
      "json_schema");
  api_gen_clear(&g);
  gen_ok(true, CHAT("'reasoning_effort':'low','chat_template_kwargs':{'enable_thinking':false}"),
         &g);
  assert_true(json_is_false(
      json_object_get(json_object_get(g.msg, "chat_template_kwargs"), "enable_thinking")));
  api_gen_clear(&g);
  chat_err(CHAT("'reasoning_effort':'max'"), 400, "invalid_value", "reasoning_effort", NULL);
  chat_err(CHAT("'chat_template_kwargs':[]"), 400, "invalid_type", "chat_template_kwargs", NULL);
}

static void test_unsupported_refused(void **state) {
  (void)state;
  api_gen g;
  chat_err(CHAT("'n':2"), 400, "unsupported_parameter", "n", "only n=1");
  chat_err(CHAT("'n':0"), 400, "unsupported_parameter", "n", NULL);
  chat_err(CHAT("'n':'1'"), 400, "unsupported_parameter", "n", NULL);
  gen_ok(true, CHAT("'n':1"), &g);
  api_gen_clear(&g);
  chat_err(CHAT("'tools':{}"), 400, "invalid_type", "tools", NULL);
  gen_ok(true, CHAT("'tools':[]"), &g);
  assert_null(json_object_get(g.msg, "tools"));
  api_gen_clear(&g);
  chat_err(CHAT("'response_format':'text'"), 400, "invalid_type", "response_format", NULL);
  chat_err(CHAT("'response_format':{}"), 400, "invalid_type", "response_format", NULL);
  chat_err(CHAT("'response_format':{'type':'xml'}"), 400, "invalid_value", "response_format", NULL);
  chat_err(CHAT("'response_format':{'type':'json_schema'}"), 400, "invalid_value",
           "response_format", NULL);
  gen_ok(true, CHAT("'response_format':{'type':'text'}"), &g);
  assert_null(json_object_get(g.msg, "response_format"));
  api_gen_clear(&g);
  gen_ok(true, CHAT("'logprobs':true,'top_logprobs':3"), &g);
  assert_int_equal(json_integer_value(json_object_get(g.msg, "logprobs")), 3);
  api_gen_clear(&g);
  gen_ok(true, CHAT("'logprobs':false"), &g);
  assert_null(json_object_get(g.msg, "logprobs"));
  api_gen_clear(&g);
  chat_err(CHAT("'top_logprobs':2"), 400, "invalid_value", "top_logprobs", "needs 'logprobs'");
  chat_err(CHAT("'logprobs':true,'top_logprobs':21"), 400, "invalid_value", "top_logprobs", NULL);
  chat_err(CHAT("'logprobs':2"), 400, "invalid_type", "logprobs", NULL);
  gen_ok(false, "{'model':'tiny-qwen','prompt':'x','logprobs':2}", &g);
  assert_int_equal(json_integer_value(json_object_get(g.msg, "logprobs")), 2);
  api_gen_clear(&g);
  comp_err("{'model':'tiny-qwen','prompt':'x','logprobs':6}", 400, "invalid_value", "logprobs",
           NULL);
  /* a refusal comes before any message check, and frees what it built */
  chat_err("{'model':'tiny-qwen','n':3}", 400, "unsupported_parameter", "n", NULL);
}

/* ---- embeddings ---------------------------------------------------------------------------- */

static void test_embed_ok(void **state) {
  (void)state;
  api_error e = {0};
  api_embed out;
  json_t *req = ut_json("{'model':'tiny-bert','input':'hello'}");
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), 0);
  json_t *want = ut_json("{'op':'embed','input':['hello']}");
  assert_true(json_equal(out.msg, want));
  assert_int_equal(out.n_inputs, 1);
  assert_false(out.base64);
  assert_ptr_equal(out.model, &test_models[2]);
  json_decref(want);
  api_embed_clear(&out);
  assert_null(out.msg);
  json_decref(req);

  req = ut_json(
      "{'model':'tiny-bert','input':['a','b\\u00e9','c'],'encoding_format':'base64','user':'u'}");
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), 0);
  want = ut_json("{'op':'embed','input':['a','b\\u00e9','c']}");
  assert_true(json_equal(out.msg, want));
  assert_int_equal(out.n_inputs, 3);
  assert_true(out.base64);
  json_decref(want);
  api_embed_clear(&out);
  json_decref(req);

  req = ut_json("{'model':'tiny-bert','input':'x','encoding_format':'float','dimensions':null}");
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), 0);
  assert_false(out.base64);
  api_embed_clear(&out);
  json_decref(req);

  /* dimensions are kept for the reply (checked against the model's width there) */
  req = ut_json("{'model':'tiny-bert','input':'x','dimensions':16}");
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), 0);
  assert_int_equal(out.dimensions, 16);
  api_embed_clear(&out);
  json_decref(req);

  /* the instruction: Qwen3-Embedding's query layout around every input */
  req = ut_json("{'model':'tiny-bert','input':['a fox','b'],'instruction':'Find it'}");
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), 0);
  want = ut_json(
      "{'op':'embed','input':['Instruct: Find it\\nQuery:a fox',"
      "'Instruct: Find it\\nQuery:b']}");
  assert_true(json_equal(out.msg, want));
  assert_int_equal(out.dimensions, 0);
  json_decref(want);
  api_embed_clear(&out);
  json_decref(req);

  /* exactly API_MAX_EMBED_INPUTS inputs is fine */
  json_t *arr = json_array();
  for (int i = 0; i < API_MAX_EMBED_INPUTS; i++) json_array_append_new(arr, json_string("w"));
  req = json_pack("{s:s, s:o}", "model", "tiny-bert", "input", arr);
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), 0);
  assert_int_equal(out.n_inputs, API_MAX_EMBED_INPUTS);
  api_embed_clear(&out);
  /* one more is not */
  json_array_append_new(arr, json_string("w"));
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), -1);
  expect_err(&e, 400, "invalid_value", "input", "array of 1 to 2048 strings");
  json_decref(req);
}

static void test_embed_errors(void **state) {
  (void)state;
  embed_err("{'model':'tiny-bert'}", 400, "missing_required_parameter", "input", "'input'");
  embed_err("{'model':'tiny-bert','input':null}", 400, "missing_required_parameter", "input", NULL);
  embed_err("{'model':'tiny-bert','input':''}", 400, "invalid_value", "input", "input[0] is empty");
  embed_err("{'model':'tiny-bert','input':['a','']}", 400, "invalid_value", "input",
            "input[1] is empty");
  embed_err("{'model':'tiny-bert','input':[]}", 400, "invalid_value", "input",
            "array of 1 to 2048 strings");
  embed_err("{'model':'tiny-bert','input':[1,2,3]}", 400, "invalid_type", "input",
            "input[0] must be a string (token arrays are not supported)");
  embed_err("{'model':'tiny-bert','input':[[1,2]]}", 400, "invalid_type", "input", NULL);
  embed_err("{'model':'tiny-bert','input':['a',null]}", 400, "invalid_type", "input", "input[1]");
  embed_err("{'model':'tiny-bert','input':5}", 400, "invalid_value", "input", NULL);
  embed_err("{'model':'tiny-bert','input':{'a':'b'}}", 400, "invalid_value", "input", NULL);
  embed_err("{'model':'tiny-bert','input':'x','encoding_format':'hex'}", 400, "invalid_value",
            "encoding_format", "must be \"float\" or \"base64\"");
  embed_err("{'model':'tiny-bert','input':'x','encoding_format':1}", 400, "invalid_value",
            "encoding_format", NULL);
  embed_err("{'model':'tiny-bert','input':'x','dimensions':0}", 400, "invalid_value", "dimensions",
            "integer of at least 1");
  embed_err("{'model':'tiny-bert','input':'x','dimensions':-3}", 400, "invalid_value", "dimensions",
            NULL);
  embed_err("{'model':'tiny-bert','input':'x','dimensions':2.5}", 400, "invalid_value",
            "dimensions", NULL);
  embed_err("{'model':'tiny-bert','input':'x','dimensions':'8'}", 400, "invalid_value",
            "dimensions", NULL);
  embed_err("{'model':'tiny-bert','input':'x','instruction':''}", 400, "invalid_value",
            "instruction", "non-empty string");
  embed_err("{'model':'tiny-bert','input':'x','instruction':7}", 400, "invalid_value",
            "instruction", NULL);
  embed_err("{'input':'x'}", 400, "missing_required_parameter", "model", NULL);
  embed_err("{'model':'nope','input':'x'}", 404, "model_not_found", "model", "'nope'");

  /* 2049 items */
  json_t *arr = json_array();
  for (int i = 0; i < 2049; i++) json_array_append_new(arr, json_string("w"));
  json_t *req = json_pack("{s:s, s:o}", "model", "tiny-bert", "input", arr);
  api_error e = {0};
  api_embed out;
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), -1);
  assert_null(out.msg);
  expect_err(&e, 400, "invalid_value", "input", "1 to 2048");
  json_decref(req);
}

/* ---- rerank -------------------------------------------------------------------------------- */

static void rerank_err_(const char *body, int status, const char *code, const char *param,
                        const char *phrase, const char *file, int line) {
  json_t *req = ut_json(body);
  api_error e = {0};
  api_rerank out;
  int rc = api_parse_rerank(&test_mx, NULL, req, &out, &e);
  json_decref(req);
  if (rc != -1) {
    api_rerank_clear(&out);
    fail_msg("%s:%d: %s accepted", file, line, body);
  }
  assert_null(out.msg);
  assert_null(out.documents);
  expect_err_(&e, status, code, param, phrase, file, line);
}
#define rerank_err(body, st, code, param, phrase) \
  rerank_err_(body, st, code, param, phrase, __FILE__, __LINE__)

static void test_rerank_ok(void **state) {
  (void)state;
  api_error e = {0};
  api_rerank out;
  json_t *req = ut_json(
      "{'model':'tiny-rerank','query':'what is a fox?','documents':['a "
      "fox',{'text':'b\\u00e9'},''],"
      "'user':'u'}");
  assert_int_equal(api_parse_rerank(&test_mx, NULL, req, &out, &e), 0);
  json_t *want =
      ut_json("{'op':'rerank','query':'what is a fox?','documents':['a fox','b\\u00e9','']}");
  assert_true(json_equal(out.msg, want));
  json_decref(want);
  want = ut_json("{'x':['a fox','b\\u00e9','']}");
  assert_true(json_equal(out.documents, json_object_get(want, "x")));
  json_decref(want);
  assert_ptr_equal(out.model, &test_models[3]);
  assert_int_equal(out.n_documents, 3);
  assert_int_equal(out.top_n, 3);
  assert_false(out.return_documents);
  assert_false(out.tei);
  assert_false(out.has_keep_alive);
  api_rerank_clear(&out);
  assert_null(out.msg);
  json_decref(req);

  /* top_n clamped to the documents, return_documents, keep_alive, 2.0 as 2 */
  req = ut_json(
      "{'model':'tiny-rerank','query':'q','documents':['a','b'],'top_n':5,'return_documents':true,"
      "'keep_alive':'5m'}");
  assert_int_equal(api_parse_rerank(&test_mx, NULL, req, &out, &e), 0);
  assert_int_equal(out.top_n, 2);
  assert_true(out.return_documents);
  assert_true(out.has_keep_alive);
  assert_int_equal(out.keep_alive_s, 300);
  api_rerank_clear(&out);
  json_decref(req);
  req = ut_json(
      "{'model':'tiny-rerank','query':'q','documents':['a','b','c'],'top_n':2.0,'return_"
      "documents':null}");
  assert_int_equal(api_parse_rerank(&test_mx, NULL, req, &out, &e), 0);
  assert_int_equal(out.top_n, 2);
  assert_false(out.return_documents);
  api_rerank_clear(&out);
  json_decref(req);

  /* TEI: texts, return_text; "documents" wins when both are there (as llama-server) */
  req = ut_json("{'model':'tiny-rerank','query':'q','texts':['a','b'],'return_text':true}");
  assert_int_equal(api_parse_rerank(&test_mx, NULL, req, &out, &e), 0);
  assert_true(out.tei);
  assert_true(out.return_documents);
  assert_int_equal(out.n_documents, 2);
  api_rerank_clear(&out);
  json_decref(req);
  req = ut_json("{'model':'tiny-rerank','query':'q','texts':['a','b'],'documents':['c']}");
  assert_int_equal(api_parse_rerank(&test_mx, NULL, req, &out, &e), 0);
  assert_true(out.tei);
  assert_int_equal(out.n_documents, 1);
  assert_string_equal(json_string_value(json_array_get(out.documents, 0)), "c");
  api_rerank_clear(&out);
  json_decref(req);
  /* return_text means nothing outside TEI's shape */
  req = ut_json("{'model':'tiny-rerank','query':'q','documents':['a'],'return_text':true}");
  assert_int_equal(api_parse_rerank(&test_mx, NULL, req, &out, &e), 0);
  assert_false(out.return_documents);
  api_rerank_clear(&out);
  json_decref(req);

  /* exactly API_MAX_RERANK_DOCUMENTS documents is fine; one more is not */
  json_t *arr = json_array();
  for (int i = 0; i < API_MAX_RERANK_DOCUMENTS; i++) json_array_append_new(arr, json_string("w"));
  req = json_pack("{s:s, s:s, s:o}", "model", "tiny-rerank", "query", "q", "documents", arr);
  assert_int_equal(api_parse_rerank(&test_mx, NULL, req, &out, &e), 0);
  assert_int_equal(out.n_documents, API_MAX_RERANK_DOCUMENTS);
  api_rerank_clear(&out);
  json_array_append_new(arr, json_string("w"));
  assert_int_equal(api_parse_rerank(&test_mx, NULL, req, &out, &e), -1);
  assert_null(out.msg);
  expect_err(&e, 400, "invalid_value", "documents", "array of 1 to 1024 documents");
  json_decref(req);
}

static void test_rerank_errors(void **state) {
  (void)state;
  rerank_err("{'model':'tiny-rerank','documents':['a']}", 400, "missing_required_parameter",
             "query", "'query'");
  rerank_err("{'model':'tiny-rerank','query':null,'documents':['a']}", 400,
             "missing_required_parameter", "query", NULL);
  rerank_err("{'model':'tiny-rerank','query':'','documents':['a']}", 400, "invalid_value", "query",
             "empty");
  rerank_err("{'model':'tiny-rerank','query':['q'],'documents':['a']}", 400, "invalid_type",
             "query", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q'}", 400, "missing_required_parameter", "documents",
             "'documents'");
  rerank_err("{'model':'tiny-rerank','query':'q','documents':null}", 400,
             "missing_required_parameter", "documents", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':[]}", 400, "invalid_value",
             "documents", "1 to 1024");
  rerank_err("{'model':'tiny-rerank','query':'q','documents':'a'}", 400, "invalid_value",
             "documents", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':{'text':'a'}}", 400, "invalid_value",
             "documents", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':['a',2]}", 400, "invalid_type",
             "documents", "documents[1] must be a string or an object with a string 'text'");
  rerank_err("{'model':'tiny-rerank','query':'q','documents':[{'text':3}]}", 400, "invalid_type",
             "documents", "documents[0]");
  rerank_err("{'model':'tiny-rerank','query':'q','documents':[{'content':'a'}]}", 400,
             "invalid_type", "documents", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':[null]}", 400, "invalid_type",
             "documents", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','texts':[]}", 400, "invalid_value", "texts",
             "'texts'");
  rerank_err("{'model':'tiny-rerank','query':'q','texts':[1]}", 400, "invalid_type", "texts",
             "texts[0]");
  rerank_err("{'model':'tiny-rerank','query':'q','documents':['a'],'top_n':0}", 400,
             "invalid_value", "top_n", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':['a'],'top_n':-1}", 400,
             "invalid_value", "top_n", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':['a'],'top_n':1.5}", 400,
             "invalid_value", "top_n", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':['a'],'top_n':'2'}", 400,
             "invalid_value", "top_n", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':['a'],'return_documents':1}", 400,
             "invalid_type", "return_documents", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','texts':['a'],'return_text':'yes'}", 400,
             "invalid_type", "return_text", NULL);
  rerank_err("{'model':'tiny-rerank','query':'q','documents':['a'],'keep_alive':'soon'}", 400,
             "invalid_value", "keep_alive", NULL);
  rerank_err("{'query':'q','documents':['a']}", 400, "missing_required_parameter", "model", NULL);
  rerank_err("{'model':'nope','query':'q','documents':['a']}", 404, "model_not_found", "model",
             "'nope'");
  rerank_err("{'model':'tiny-bert','query':'q','documents':['a']}", 400, "wrong_capability",
             "model", "does not support reranking (its capabilities: embed)");
  /* and the other way: a reranker is not an embedding model */
  embed_err("{'model':'tiny-rerank','input':'x'}", 400, "wrong_capability", "model",
            "does not support embeddings (its capabilities: rerank)");
}

/* ---- error messages stay printable --------------------------------------------------------- */

/* Request text quoted into a message is cut to a byte length ('%.200s' for a model name, '%.40s'
 * for a role or a content-part type): the message must stay valid UTF-8 even when the cut falls
 * inside a multi-byte character, or the client gets a placeholder instead of the explanation. */
static void expect_printable(const api_error *e, const char *phrase) {
  json_t *j = api_error_json(e);
  char msg[1100];
  snprintf(msg, sizeof msg, "%s",
           json_string_value(json_object_get(json_object_get(j, "error"), "message")));
  json_decref(j);
  if (!strstr(msg, phrase))
    fail_msg("the error body lost its message: \"%s\" (want \"%s\")", msg, phrase);
}

static void test_error_message_utf8_cut(void **state) {
  (void)state;
  char name[260];
  memset(name, 'a', 199);
  memcpy(name + 199, "\xc3\xa9\xc3\xa9", 5); /* "éé": byte 200 is the first half of an é */
  json_t *req = json_pack("{s:s, s:s}", "model", name, "input", "x");
  assert_non_null(req);
  api_error e = {0};
  api_embed out;
  assert_int_equal(api_parse_embed(&test_mx, NULL, req, &out, &e), -1);
  json_decref(req);
  assert_int_equal(e.status, 404);
  expect_printable(&e, "Available models: tiny-qwen");

  char role[60];
  memset(role, 'r', 39);
  memcpy(role + 39, "\xc3\xa9", 3); /* byte 40 is the first half of an é */
  req = json_pack("{s:s, s:[{s:s, s:s}]}", "model", "tiny-qwen", "messages", "role", role,
                  "content", "x");
  api_gen g;
  assert_int_equal(api_parse_generate(&test_mx, NULL, req, true, &g, &e), -1);
  json_decref(req);
  assert_int_equal(e.status, 400);
  expect_printable(&e, "is not one of system");

  req = json_pack("{s:s, s:[{s:s, s:[{s:s}]}]}", "model", "tiny-qwen", "messages", "role", "user",
                  "content", "type", role);
  assert_int_equal(api_parse_generate(&test_mx, NULL, req, true, &g, &e), -1);
  json_decref(req);
  assert_string_equal(e.code, "unsupported_content");
  expect_printable(&e, "accepts only text content");
}

/* The 256-byte bound on a stop string holds for the plain-string form too, not only in an array. */
static void test_stop_string_bound(void **state) {
  (void)state;
  char body[1024], longs[300];
  memset(longs, 'x', 257);
  longs[257] = '\0';
  snprintf(body, sizeof body, CHAT("'stop':'%s'"), longs);
  chat_err(body, 400, "invalid_value", "stop", "at most 256 bytes");
}

static void test_keep_alive(void **state) {
  (void)state;
  static const struct {
    const char *v;
    int want;
  } ok[] = {{"0", 0},      {"-1", -1},     {"300", 300}, {"'30s'", 30},
            {"'5m'", 300}, {"'2h'", 7200}, {"'-1'", -1}, {"'45'", 45}};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    char body[256];
    snprintf(body, sizeof body, CHAT("'keep_alive':%s"), ok[i].v);
    api_gen g;
    gen_ok(true, body, &g);
    assert_true(g.has_keep_alive);
    assert_int_equal(g.keep_alive_s, ok[i].want);
    assert_null(json_object_get(g.msg, "keep_alive")); /* the daemon's business, not the worker's */
    api_gen_clear(&g);
  }
  api_gen g;
  gen_ok(true, CHAT("'temperature':0"), &g);
  assert_false(g.has_keep_alive);
  api_gen_clear(&g);
  static const char *bad[] = {"-2", "'soon'", "'5x'", "'-1m'",
                              "''", "1.5",    "true", "'99999999999h'"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char body[256];
    snprintf(body, sizeof body, CHAT("'keep_alive':%s"), bad[i]);
    chat_err(body, 400, "invalid_value", "keep_alive", "duration");
  }
}

/* ---- fuzz ---------------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static const char *const fuzz_keys[] = {
    "model",
    "messages",
    "prompt",
    "input",
    "role",
    "content",
    "type",
    "text",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "include_usage",
    "n",
    "tools",
    "response_format",
    "logprobs",
    "encoding_format",
    "dimensions",
    "instruction",
    "presence_penalty",
    "frequency_penalty",
    "repeat_penalty",
    "image_url",
    "user",
};
static const char *const fuzz_strings[] = {
    "tiny-qwen",      "qwen-alias", "base-only", "tiny-bert", "user",      "system",
    "developer",      "assistant",  "tool",      "text",      "image_url", "json_object",
    "float",          "base64",     "hex",       "",          "x",         "h\\u00e9llo",
    "\\ud83d\\ude00", "a\\nb",      "\\\"",      "wizard",
};
static const char *const fuzz_numbers[] = {
    "0",
    "1",
    "-1",
    "2",
    "3",
    "0.5",
    "1.5",
    "2.5",
    "-0.0",
    "5.0",
    "16",
    "4294967296",
    "-4294967297",
    "1e300",
    "-1e300",
    "9007199254740993",
    "9223372036854775807",
    "-9223372036854775808",
    "1e-300",
    "16777217",
};

static void gen_value(sy_buf *b, int depth);

static void gen_object(sy_buf *b, int depth) {
  int n = (int)(rnd() % 6);
  sy_buf_puts(b, "{");
  for (int i = 0; i < n; i++) {
    if (i) sy_buf_puts(b, ",");
    sy_buf_printf(b, "\"%s\":", fuzz_keys[rnd() % (sizeof fuzz_keys / sizeof *fuzz_keys)]);
    gen_value(b, depth + 1);
  }
  sy_buf_puts(b, "}");
}

static void gen_value(sy_buf *b, int depth) {
  unsigned k = depth > 4 ? rnd() % 4 : rnd() % 7;
  switch (k) {
    case 0:
      sy_buf_printf(b, "\"%s\"",
                    fuzz_strings[rnd() % (sizeof fuzz_strings / sizeof *fuzz_strings)]);
      break;
    case 1:
      sy_buf_puts(b, fuzz_numbers[rnd() % (sizeof fuzz_numbers / sizeof *fuzz_numbers)]);
      break;
    case 2:
      sy_buf_puts(b, rnd() % 2 ? "true" : "false");
      break;
    case 3:
      sy_buf_puts(b, "null");
      break;
    case 4:
    case 5:
      gen_object(b, depth);
      break;
    default: {
      int n = (int)(rnd() % 5);
      sy_buf_puts(b, "[");
      for (int i = 0; i < n; i++) {
        if (i) sy_buf_puts(b, ",");
        gen_value(b, depth + 1);
      }
      sy_buf_puts(b, "]");
    }
  }
}

/* A body that is usually a plausible request: a model, then random known fields. */
static void gen_body(sy_buf *b) {
  if (rnd() % 8 == 0) {
    gen_value(b, 0);
    return;
  }
  sy_buf_puts(b, "{");
  int n = 0;
  if (rnd() % 8) {
    sy_buf_printf(b, "\"model\":\"%s\"", fuzz_strings[rnd() % 4]);
    n++;
  }
  if (rnd() % 2) {
    sy_buf_printf(b, "%s\"messages\":[", n++ ? "," : "");
    int nm = (int)(rnd() % 4);
    for (int i = 0; i < nm; i++) {
      if (i) sy_buf_puts(b, ",");
      if (rnd() % 4 == 0) {
        gen_value(b, 1);
      } else {
        sy_buf_printf(b, "{\"role\":\"%s\",\"content\":", fuzz_strings[4 + rnd() % 6]);
        gen_value(b, 2);
        sy_buf_puts(b, "}");
      }
    }
    sy_buf_puts(b, "]");
  }
  int extra = (int)(rnd() % 6);
  for (int i = 0; i < extra; i++) {
    sy_buf_printf(b, "%s\"%s\":", n++ ? "," : "",
                  fuzz_keys[2 + rnd() % (sizeof fuzz_keys / sizeof *fuzz_keys - 2)]);
    gen_value(b, 1);
  }
  sy_buf_puts(b, "}");
}

static void check_outcome(int rc, const api_error *e, json_t *msg) {
  if (rc == 0) {
    assert_true(json_is_object(msg));
    char *s = json_dumps(msg, JSON_COMPACT);
    assert_non_null(s);
    free(s);
  } else {
    assert_int_equal(rc, -1);
    assert_null(msg);
    assert_true(e->status == 400 || e->status == 404);
    assert_non_null(e->code);
    assert_true(e->message[0] != '\0');
    json_t *j = api_error_json(e);
    assert_non_null(j);
    json_decref(j);
  }
}

static void test_fuzz(void **state) {
  (void)state;
  rng_state = 0x41504950415253ull;
  int parsed = 0, accepted = 0;
  for (int it = 0; it < 20000; it++) {
    sy_buf b = {0};
    gen_body(&b);
    /* sometimes damage the text: the body parser must refuse it cleanly */
    if (b.len && rnd() % 5 == 0) {
      int k = 1 + (int)(rnd() % 3);
      for (int i = 0; i < k; i++) b.data[rnd() % b.len] = (char)(rnd() % 128);
    }
    if (b.len && rnd() % 10 == 0) b.len = rnd() % b.len;
    api_error e = {0};
    json_t *req = api_parse_body(b.data, b.len, &e);
    if (!req) {
      assert_int_equal(e.status, 400);
      assert_string_equal(e.code, "invalid_json");
      json_t *j = api_error_json(&e);
      assert_non_null(j);
      json_decref(j);
      sy_buf_free(&b);
      continue;
    }
    parsed++;
    api_gen g;
    memset(&e, 0, sizeof e);
    int rc = api_parse_generate(&test_mx, NULL, req, true, &g, &e);
    check_outcome(rc, &e, g.msg);
    accepted += rc == 0;
    api_gen_clear(&g);
    memset(&e, 0, sizeof e);
    rc = api_parse_generate(&test_mx, NULL, req, false, &g, &e);
    check_outcome(rc, &e, g.msg);
    accepted += rc == 0;
    api_gen_clear(&g);
    api_embed em;
    memset(&e, 0, sizeof e);
    rc = api_parse_embed(&test_mx, NULL, req, &em, &e);
    check_outcome(rc, &e, em.msg);
    accepted += rc == 0;
    api_embed_clear(&em);
    api_rerank rk;
    memset(&e, 0, sizeof e);
    rc = api_parse_rerank(&test_mx, NULL, req, &rk, &e);
    check_outcome(rc, &e, rk.msg);
    accepted += rc == 0;
    api_rerank_clear(&rk);
    json_decref(req);
    sy_buf_free(&b);
  }
  /* the generator reaches past the body parser and past validation */
  assert_true(parsed > 1000);
  assert_true(accepted >
              50); /* ~100 with this seed: tools, logprobs, response_format are checked strictly */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_body),
      cmocka_unit_test(test_model_errors),
      cmocka_unit_test(test_model_alias_and_capability),
      cmocka_unit_test(test_chat_minimal),
      cmocka_unit_test(test_chat_roles_and_content),
      cmocka_unit_test(test_chat_message_errors),
      cmocka_unit_test(test_completions),
      cmocka_unit_test(test_sampling_fields_copied),
      cmocka_unit_test(test_sampling_errors),
      cmocka_unit_test(test_max_tokens),
      cmocka_unit_test(test_seed),
      cmocka_unit_test(test_stop),
      cmocka_unit_test(test_stream_flags),
      cmocka_unit_test(test_ignore_eos),
      cmocka_unit_test(test_unsupported_refused),
      cmocka_unit_test(test_tools_and_formats),
      cmocka_unit_test(test_embed_ok),
      cmocka_unit_test(test_embed_errors),
      cmocka_unit_test(test_rerank_ok),
      cmocka_unit_test(test_rerank_errors),
      cmocka_unit_test(test_error_message_utf8_cut),
      cmocka_unit_test(test_stop_string_bound),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_fuzz),
      cmocka_unit_test(test_vision_parts),
      cmocka_unit_test(test_audio_parts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
