/* test_api_error.c — the one worker-error table (api_error.c): every code in it run through every
 * endpoint family's mapping (chat: api.c, transcription: api/transcribe.c, speech: api/speech.c,
 * pipeline: pipeline.c) with the same status and code everywhere; unknown codes; and hostile
 * frames (no header, wrong types, huge strings, lying statuses); Anthropic's error shape (every
 * status's type, the body, the paths that get it: api_error_body). Must never pass while one
 * endpoint answers a worker error with a status or code another does not. */
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/transcribe.h"
#include "api/speech.h"
#include "http/api_error.h"
#include "api/api.h"
#include "daemon.h"
#include "virtual/pipeline.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

/* ---- the endpoint families ---- */

static char pipe_name[] = "voice";
static const matrix_pipeline pl = {.name = pipe_name};

static void pipe_asr(const json_t *h, api_error *e) { pipe_step_error(h, &pl, PIPE_ASR, "w", e); }
static void pipe_llm(const json_t *h, api_error *e) { pipe_step_error(h, &pl, PIPE_LLM, "q", e); }
static void pipe_tts(const json_t *h, api_error *e) { pipe_step_error(h, &pl, PIPE_TTS, "k", e); }

typedef struct family {
  const char *name;
  void (*map)(const json_t *hdr, api_error *e);
  const char *role; /* pipeline: the param every error gets */
} family;

static const family families[] = {
    {"chat", api_worker_error, NULL},          {"transcription", api_transcribe_worker_error, NULL},
    {"speech", api_speech_worker_error, NULL}, {"pipeline asr", pipe_asr, "asr"},
    {"pipeline llm", pipe_llm, "llm"},         {"pipeline tts", pipe_tts, "tts"},
};
#define N_FAMILIES (sizeof families / sizeof *families)

/* The param a family gives a known code: the table's, except where the endpoint names its own
 * field (chat: context_length_exceeded → messages; a pipeline: the failed step). */
static const char *want_param(const family *f, const char *code, const char *table_param) {
  if (f->role) return f->role;
  if (f->map == api_worker_error && code && strcmp(code, "context_length_exceeded") == 0)
    return "messages";
  return table_param;
}

static bool str_eq(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* Every family maps hdr to want_status / want_code (type from the status); params as want_param;
 * the message contains want_msg. Then hdr is freed and the results read again: nothing in them
 * may point into the frame (ASan catches it). */
static void check_all(json_t *hdr, int want_status, const char *want_code, const char *want_msg) {
  api_error e[N_FAMILIES];
  api_error base;
  bool known = api_error_from_worker(hdr, &base);
  assert_int_equal(base.status, want_status);
  assert_string_equal(base.code, want_code);
  assert_int_equal(known, strcmp(want_code, API_WORKER_UNKNOWN_CODE) != 0);
  for (size_t i = 0; i < N_FAMILIES; i++) {
    memset(&e[i], 0x5a, sizeof e[i]);
    families[i].map(hdr, &e[i]);
  }
  json_decref(hdr);
  const char *want_type = want_status < 500 ? "invalid_request_error" : "server_error";
  for (size_t i = 0; i < N_FAMILIES; i++) {
    const family *f = &families[i];
    if (e[i].status != want_status || !str_eq(e[i].code, want_code) ||
        !str_eq(e[i].type, want_type) ||
        !str_eq(e[i].param, want_param(f, want_code, known ? base.param : NULL)) ||
        !strstr(e[i].message, want_msg) || e[i].retry_after_s != 0)
      fail_msg("%s: status %d code %s type %s param %s message '%.80s'; want %d %s %s", f->name,
               e[i].status, e[i].code ? e[i].code : "(null)", e[i].type ? e[i].type : "(null)",
               e[i].param ? e[i].param : "(null)", e[i].message, want_status, want_code, want_type);
    assert_true(strlen(e[i].message) < sizeof e[i].message);
    json_t *body = api_error_json(&e[i]);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "error"), "code")),
                        want_code);
    json_decref(body);
  }
}

static json_t *frame(json_t *status, json_t *code, json_t *message) {
  json_t *h = json_pack("{s:s, s:I, s:s}", "op", "error", "id", (json_int_t)7, "type",
                        "server_error"); /* a type that lies: never used */
  if (status) json_object_set_new(h, "status", status);
  if (code) json_object_set_new(h, "code", code);
  if (message) json_object_set_new(h, "message", message);
  return h;
}

/* ---- the table ---- */

/* The union of the four lists the endpoints had before the table, and the codes added since
 * (rpc_unavailable): none may go missing. */
static const char *const before[] = {"context_length_exceeded",
                                     "no_chat_template",
                                     "wrong_capability",
                                     "worker_crashed",
                                     "invalid_request",
                                     "load_failed",
                                     "empty_prompt",
                                     "out_of_memory",
                                     "overloaded",
                                     "decode_failed",
                                     "tokenize_failed",
                                     "embedding_failed",
                                     "unknown_op",
                                     "duplicate_id",
                                     "chat_template_error",
                                     "invalid_json_schema",
                                     "invalid_tools",
                                     "invalid_grammar",
                                     "unsupported_parameter",
                                     "unsupported_content",
                                     "invalid_image",
                                     "invalid_audio",
                                     "invalid_language",
                                     "no_vad_model",
                                     "transcribe_failed",
                                     "invalid_voice",
                                     "synthesis_failed",
                                     "rpc_unavailable"};

static size_t table_size(void) {
  size_t n = 0;
  while (api_error_worker_code(n)) n++;
  return n;
}

static void test_table_holds_every_code(void **state) {
  (void)state;
  size_t n = table_size();
  assert_int_equal(n, sizeof before / sizeof *before);
  for (size_t i = 0; i < sizeof before / sizeof *before; i++) {
    bool found = false;
    for (size_t k = 0; k < n; k++) found = found || !strcmp(api_error_worker_code(k), before[i]);
    if (!found) fail_msg("%s is not in the table", before[i]);
  }
  for (size_t i = 0; i < n; i++) /* no code twice */
    for (size_t k = i + 1; k < n; k++)
      assert_string_not_equal(api_error_worker_code(i), api_error_worker_code(k));
  assert_null(api_error_worker_code(n));
  assert_null(api_error_worker_code((size_t)-1));
}

/* Every code, with every kind of status a worker sends, the same on every endpoint. */
static void test_every_code_every_family(void **state) {
  (void)state;
  static const int statuses[] = {400, 401, 404, 413, 422, 429, 499, 500, 502, 503, 507, 599};
  for (size_t i = 0; api_error_worker_code(i); i++) {
    const char *code = api_error_worker_code(i);
    for (size_t s = 0; s < sizeof statuses / sizeof *statuses; s++)
      check_all(frame(json_integer(statuses[s]), json_string(code), json_string("why it failed")),
                statuses[s], code, "why it failed");
    /* no status: the table's, a 4xx or 5xx that the code itself implies */
    api_error e;
    json_t *h = frame(NULL, json_string(code), json_string("x"));
    assert_true(api_error_from_worker(h, &e));
    json_decref(h);
    assert_true(e.status == 400 || e.status == 500 || e.status == 502 || e.status == 503);
    check_all(frame(NULL, json_string(code), json_string("x")), e.status, code, "x");
  }
}

static void test_known_codes(void **state) {
  (void)state;
  api_error e;
  json_t *h = frame(json_integer(400), json_string("context_length_exceeded"), json_string("long"));
  api_worker_error(h, &e);
  assert_string_equal(e.param, "messages");
  api_transcribe_worker_error(h, &e);
  assert_null(e.param);
  pipe_llm(h, &e);
  assert_string_equal(e.param, "llm");
  assert_string_equal(e.message, "pipeline 'voice' step llm (q) failed: long");
  json_decref(h);
  h = frame(json_integer(400), json_string("invalid_voice"), json_string("no such voice"));
  api_speech_worker_error(h, &e);
  assert_string_equal(e.param, "voice");
  assert_string_equal(e.type, "invalid_request_error");
  json_decref(h);
  h = frame(json_integer(400), json_string("invalid_language"), json_string("xx"));
  api_transcribe_worker_error(h, &e);
  assert_string_equal(e.param, "language");
  json_decref(h);
  /* the statuses a worker leaves out */
  static const struct {
    const char *code;
    int status;
  } dflt[] = {{"invalid_request", 400}, {"overloaded", 503},   {"worker_crashed", 500},
              {"load_failed", 500},     {"no_vad_model", 400}, {"synthesis_failed", 500}};
  for (size_t i = 0; i < sizeof dflt / sizeof *dflt; i++)
    check_all(frame(NULL, json_string(dflt[i].code), NULL), dflt[i].status, dflt[i].code,
              "the worker reported an error");
}

/* ---- unknown codes ---- */

static void test_unknown_codes(void **state) {
  (void)state;
  static const char *const unknown[] = {"",
                                        "nope",
                                        "INVALID_REQUEST",
                                        "invalid_request ",
                                        " overloaded",
                                        "worker_error",
                                        "load_failed\n"};
  static const int statuses[] = {400, 404, 503, 500};
  for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++)
    for (size_t s = 0; s < sizeof statuses / sizeof *statuses; s++)
      check_all(frame(json_integer(statuses[s]), json_string(unknown[i]), json_string("m")), 500,
                API_WORKER_UNKNOWN_CODE, "m");
  /* a known code followed by a NUL and more is not that code */
  check_all(frame(json_integer(400), json_stringn("invalid_request\0x", 17), json_string("m")), 500,
            API_WORKER_UNKNOWN_CODE, "m");
  /* no code, or a code that is not a string */
  check_all(frame(json_integer(400), NULL, json_string("m")), 500, API_WORKER_UNKNOWN_CODE, "m");
  check_all(frame(json_integer(400), json_null(), json_string("m")), 500, API_WORKER_UNKNOWN_CODE,
            "m");
  check_all(frame(json_integer(400), json_integer(400), json_string("m")), 500,
            API_WORKER_UNKNOWN_CODE, "m");
  check_all(frame(json_integer(400), json_pack("[s]", "invalid_request"), json_string("m")), 500,
            API_WORKER_UNKNOWN_CODE, "m");
  check_all(
      frame(json_integer(400), json_pack("{s:s}", "code", "invalid_request"), json_string("m")),
      500, API_WORKER_UNKNOWN_CODE, "m");
}

/* ---- hostile frames ---- */

static void test_hostile_headers(void **state) {
  (void)state;
  check_all(NULL, 500, API_WORKER_UNKNOWN_CODE, "the worker reported an error");
  check_all(json_array(), 500, API_WORKER_UNKNOWN_CODE, "the worker reported an error");
  check_all(json_string("invalid_request"), 500, API_WORKER_UNKNOWN_CODE,
            "the worker reported an error");
  check_all(json_object(), 500, API_WORKER_UNKNOWN_CODE, "the worker reported an error");
}

static void test_hostile_statuses(void **state) {
  (void)state;
  json_t *bad[] = {json_string("400"),
                   json_real(400.0),
                   json_real(1e300),
                   json_integer(-400),
                   json_integer(0),
                   json_integer(200),
                   json_integer(399),
                   json_integer(600),
                   json_integer((json_int_t)4294967296LL + 400), /* 400 once cut to 32 bits */
                   json_integer(LLONG_MAX),
                   json_integer(LLONG_MIN),
                   json_true(),
                   json_null(),
                   json_pack("[i]", 400)};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    /* a known code: the table's status for it, never the bogus one */
    check_all(frame(json_incref(bad[i]), json_string("invalid_request"), json_string("m")), 400,
              "invalid_request", "m");
    check_all(frame(json_incref(bad[i]), json_string("overloaded"), json_string("m")), 503,
              "overloaded", "m");
    check_all(frame(bad[i], json_string("nope"), json_string("m")), 500, API_WORKER_UNKNOWN_CODE,
              "m");
  }
}

static void test_hostile_messages(void **state) {
  (void)state;
  const char *dflt = "the worker reported an error";
  check_all(frame(json_integer(400), json_string("invalid_request"), NULL), 400, "invalid_request",
            dflt);
  check_all(frame(json_integer(400), json_string("invalid_request"), json_string("")), 400,
            "invalid_request", dflt);
  check_all(frame(json_integer(400), json_string("invalid_request"), json_integer(5)), 400,
            "invalid_request", dflt);
  check_all(frame(json_integer(400), json_string("invalid_request"), json_pack("[s]", "m")), 400,
            "invalid_request", dflt);
  /* printf directives in a message are text */
  check_all(frame(json_integer(400), json_string("invalid_request"), json_string("%s%n%99999d")),
            400, "invalid_request", "%s%n%99999d");
  /* a huge message of 4-byte characters: cut to the buffer, still valid UTF-8 */
  size_t n = 100000;
  char *big = malloc(4 * n + 1);
  assert_non_null(big);
  for (size_t i = 0; i < n; i++) memcpy(big + 4 * i, "\xF0\x9F\x98\x80", 4);
  big[4 * n] = '\0';
  api_error e;
  json_t *h = frame(json_integer(500), json_string("decode_failed"), json_string(big));
  assert_true(api_error_from_worker(h, &e));
  assert_int_equal(strlen(e.message), sizeof e.message - 1);
  json_t *s = json_string(e.message); /* NULL if it is not valid UTF-8 */
  assert_non_null(s);
  json_decref(s);
  pipe_tts(h, &e);
  assert_true(strlen(e.message) < sizeof e.message);
  assert_non_null(s = json_string(e.message));
  json_decref(s);
  big[64] = '\0';
  check_all(h, 500, "decode_failed", big);
  /* a huge code is unknown */
  memset(big, 'a', 4 * n);
  big[4 * n] = '\0';
  check_all(frame(json_integer(400), json_string(big), json_string("m")), 500,
            API_WORKER_UNKNOWN_CODE, "m");
  free(big);
}

static void test_anthropic_shape(void **state) {
  (void)state;
  static const struct {
    int status;
    const char *type;
  } types[] = {
      {400, "invalid_request_error"},
      {401, "authentication_error"},
      {403, "permission_error"},
      {404, "not_found_error"},
      {405, "invalid_request_error"},
      {408, "timeout_error"},
      {413, "request_too_large"},
      {429, "rate_limit_error"},
      {431, "invalid_request_error"},
      {500, "api_error"},
      {502, "api_error"},
      {503, "overloaded_error"},
      {504, "timeout_error"},
      {507, "api_error"},
      {529, "overloaded_error"},
  };
  for (size_t i = 0; i < sizeof types / sizeof *types; i++)
    assert_string_equal(api_error_anthropic_type(types[i].status), types[i].type);
  api_error e;
  api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model", "no model 'x'");
  json_t *j = api_error_anthropic_json(&e);
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(s,
                      "{\"error\":{\"message\":\"no model 'x'\",\"type\":\"not_found_error\"},"
                      "\"type\":\"error\"}");
  free(s);
  json_decref(j);
  /* the paths: Anthropic's under /v1/messages, OpenAI's elsewhere */
  static const struct {
    const char *path;
    bool anthropic;
  } paths[] = {
      {"/v1/messages", true},
      {"/v1/messages/count_tokens", true},
      {"/v1/messages/x", true},
      {"/v1/messagesx", false},
      {"/v1/chat/completions", false},
      {"/v1/message", false},
      {"/", false},
  };
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    j = api_error_body(paths[i].path, &e);
    bool anth = json_is_string(json_object_get(j, "type"));
    if (anth != paths[i].anthropic) fail_msg("%s: wrong shape", paths[i].path);
    if (!anth)
      assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                          "model_not_found");
    json_decref(j);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table_holds_every_code),
      cmocka_unit_test(test_every_code_every_family),
      cmocka_unit_test(test_known_codes),
      cmocka_unit_test(test_unknown_codes),
      cmocka_unit_test(test_hostile_headers),
      cmocka_unit_test(test_hostile_statuses),
      cmocka_unit_test(test_hostile_messages),
      cmocka_unit_test(test_anthropic_shape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
