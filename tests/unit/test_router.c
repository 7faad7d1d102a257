/* test_router.c — unit tests of routers: the matrix's "routers" section (good configs, every kind
 * of bad one with its "file:line:col: reason"), the facts read from a request, the rules on a table
 * of requests, the classifier's message and the reading of its answer, the fallback order, and the
 * switchyard_router_* metrics. */
#include "config/matrix.h"
#include "virtual/router.h"

#include "unit.h"

/* A GGUF header: architecture, and a chat template when tmpl (a chat model), else a base model. */
static void write_gguf(const char *rel, const char *arch, const char *tmpl) {
  FILE *f = ut_gguf_open(rel, 1, tmpl ? 2 : 1);
  ut_wstr(f, "general.architecture"), ut_w32(f, 8), ut_wstr(f, arch);
  if (tmpl) ut_wstr(f, "tokenizer.chat_template"), ut_w32(f, 8), ut_wstr(f, tmpl);
  fclose(f);
}

/* The models every config below uses: light and heavy chat, base (completion only), bert (embed).
 */
#define MODELS                                             \
  "models:\n"                                              \
  "  - {name: light, file: chat.gguf, aliases: [small]}\n" \
  "  - {name: heavy, file: chat.gguf}\n"                   \
  "  - {name: base, file: base.gguf}\n"                    \
  "  - {name: bert, file: bert.gguf}\n"

static void write_models(void) {
  write_gguf("chat.gguf", "qwen2", "{{ messages }}");
  write_gguf("base.gguf", "llama", NULL);
  write_gguf("bert.gguf", "bert", NULL);
}

/* ---- the matrix ---- */

static void test_config_ok(void **state) {
  (void)state;
  write_models();
  matrix *m = ut_load_ok(MODELS
                         "routers:\n"
                         "  - name: auto\n"
                         "    routes: {light: small, heavy: heavy, raw: base}\n"
                         "    rules:\n"
                         "      - {tools: true, route: heavy}\n"
                         "      - {min_prompt_tokens: 100, route: heavy}\n"
                         "      - {system_tag: '#raw', route: raw}\n"
                         "    classifier:\n"
                         "      model: light\n"
                         "      prompt: Which one?\n"
                         "      routes: [light, heavy]\n"
                         "      timeout_ms: 750\n"
                         "      max_tokens: 8\n"
                         "      max_input_chars: 100\n"
                         "    default: light\n"
                         "    fallback: [heavy, light]\n"
                         "  - name: one\n"
                         "    routes: {only: heavy}\n"
                         "    fallback: true\n");
  assert_int_equal(m->n_routers, 2);
  const matrix_router *rt = matrix_find_router(m, "auto");
  assert_non_null(rt);
  assert_null(matrix_find_router(m, "light"));
  assert_null(matrix_find(m, "auto")); /* a router is not a model */
  assert_int_equal(rt->n_routes, 3);
  assert_string_equal(rt->routes[0].name, "light");
  assert_string_equal(rt->routes[0].model, "small");
  assert_string_equal(rt->routes[2].model, "base");
  assert_int_equal(rt->n_rules, 3);
  assert_true(rt->rules[0].tools && !rt->rules[0].images && rt->rules[0].route == 1);
  assert_int_equal(rt->rules[1].min_prompt_tokens, 100);
  assert_string_equal(rt->rules[2].system_tag, "#raw");
  assert_int_equal(rt->rules[2].route, 2);
  assert_true(rt->has_classifier);
  assert_string_equal(rt->cls_model, "light");
  assert_string_equal(rt->cls_prompt, "Which one?");
  assert_int_equal(rt->n_cls_routes, 2);
  assert_int_equal(rt->cls_routes[0], 0);
  assert_int_equal(rt->cls_routes[1], 1);
  assert_int_equal(rt->cls_timeout_ms, 750);
  assert_int_equal(rt->cls_max_tokens, 8);
  assert_int_equal(rt->cls_max_input_chars, 100);
  assert_int_equal(rt->default_route, 0);
  assert_int_equal(rt->n_fallback, 2);
  assert_int_equal(rt->fallback[0], 1);
  /* defaults: one route needs no default; fallback true = every route in order; no classifier */
  const matrix_router *one = matrix_find_router(m, "one");
  assert_int_equal(one->default_route, 0);
  assert_int_equal(one->n_fallback, 1);
  assert_false(one->has_classifier);
  assert_int_equal(one->n_rules, 0);
  assert_int_equal(matrix_add_builtins(m), 0);
  matrix_free(m);

  /* classifier defaults: every route, 2 s, 16 tokens, 2000 bytes */
  m = ut_load_ok(MODELS
                 "routers:\n  - {name: r, routes: {a: light, b: heavy}, default: b, classifier: "
                 "{model: small}}\n");
  rt = matrix_find_router(m, "r");
  assert_int_equal(rt->n_cls_routes, 2);
  assert_int_equal(rt->cls_timeout_ms, 2000);
  assert_int_equal(rt->cls_max_tokens, 16);
  assert_int_equal(rt->cls_max_input_chars, 2000);
  assert_null(rt->cls_prompt);
  assert_int_equal(rt->n_fallback, 0);
  matrix_free(m);
}

static void test_config_bad(void **state) {
  (void)state;
  write_models();
  ut_load_bad(MODELS "routers: {a: 1}\n", "6:10: routers: expected a list, got a mapping");
  ut_load_bad(MODELS "routers:\n  - {routes: {a: light}}\n", "7:5: routers[0]: 'name' is required");
  ut_load_bad(MODELS "routers:\n  - {name: r}\n", "7:5: routers[0]: 'routes' is required");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: light}, foo: 1}\n",
              "7:35: routers[0].foo: unknown key");
  char want[PATH_MAX + 256];
  snprintf(want, sizeof want,
           "7:12: routers[0].name: 'small' is already used by model 'light' (%s:2)",
           ut_path("config.yaml"));
  ut_load_bad(MODELS "routers:\n  - {name: small, routes: {a: light}}\n", want);
  ut_load_bad(MODELS
              "routers:\n  - {name: r, routes: {a: light}}\n  - {name: r, routes: {a: light}}\n",
              "8:12: routers[1].name: router 'r' is defined twice");
  ut_load_bad(MODELS "routers:\n  - {name: 'a b', routes: {a: light}}\n",
              "7:12: routers[0].name: 'a b' is not a valid name (1..128 characters, no spaces)");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {}}\n",
              "7:23: routers[0].routes: a router needs at least one route");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: [light]}\n",
              "7:23: routers[0].routes: expected a mapping, got a list");
  ut_load_bad(
      MODELS "routers:\n  - {name: r, routes: {'a.b': light}}\n",
      "7:24: routers[0].routes: route names are 1..32 letters, digits, '_' or '-', got 'a.b'");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: light, a: heavy}}\n",
              "7:34: routers[0].routes.a: duplicate key");
  ut_load_bad(
      MODELS "routers:\n  - {name: r, routes: {a: light, b: heavy}}\n",
      "7:5: routers[0]: 'default' is required (the route taken when no rule matches and the "
      "classifier cannot "
      "answer)");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: light}, default: b}\n",
              "7:44: routers[0].default: 'b' is not one of router 'r''s routes");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: light}, rules: [{tools: true}]}\n",
              "7:43: routers[0].rules[0]: 'route' is required");
  ut_load_bad(MODELS
              "routers:\n  - {name: r, routes: {a: light}, rules: [{tools: yes, route: a}]}\n",
              "7:51: routers[0].rules[0].tools: expected true or false, got 'yes'");
  ut_load_bad(
      MODELS
      "routers:\n  - {name: r, routes: {a: light}, rules: [{min_prompt_tokens: 0, route: a}]}\n",
      "7:63: routers[0].rules[0].min_prompt_tokens: 0 is out of range (1..1073741824)");
  ut_load_bad(MODELS
              "routers:\n  - {name: r, routes: {a: light}, rules: [{color: red, route: a}]}\n",
              "7:44: routers[0].rules[0].color: unknown key");
  ut_load_bad(
      MODELS "routers:\n  - {name: r, routes: {a: light}, classifier: {prompt: x}}\n",
      "7:47: routers[0].classifier: 'model' is required (the light chat model that classifies)");
  ut_load_bad(
      MODELS
      "routers:\n  - {name: r, routes: {a: light}, classifier: {model: light, routes: [a, a]}}\n",
      "7:74: routers[0].classifier.routes[1]: route 'a' is listed twice");
  ut_load_bad(
      MODELS
      "routers:\n  - {name: r, routes: {a: light}, classifier: {model: light, routes: []}}\n",
      "7:70: routers[0].classifier.routes: must name at least one route");
  ut_load_bad(
      MODELS
      "routers:\n  - {name: r, routes: {a: light}, classifier: {model: light, timeout_ms: 0}}\n",
      "7:74: routers[0].classifier.timeout_ms: 0 is out of range (1..600000)");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: light}, fallback: maybe}\n",
              "7:45: routers[0].fallback: expected true or false, got 'maybe'");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: light}, fallback: [b]}\n",
              "7:46: routers[0].fallback[0]: 'b' is not one of router 'r''s routes");
  /* checked once every model is known: the position is the route's (or the router's) */
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: nope}}\n",
              "7:27: router 'r', route 'a': there is no model 'nope'");
  ut_load_bad(
      MODELS "routers:\n  - {name: r, routes: {a: bert}}\n",
      "7:27: router 'r', route 'a': model 'bert' serves neither chat nor completions (embed)");
  ut_load_bad(
      MODELS "routers:\n  - {name: r, routes: {a: light}, rules: [{images: true, route: a}]}\n",
      "7: router 'r', rules[0]: route 'a' leads to model 'light', which does not take images "
      "(no vision "
      "capability)");
  ut_load_bad(
      MODELS "routers:\n  - {name: r, routes: {a: light}, rules: [{audio: true, route: a}]}\n",
      "7: router 'r', rules[0]: route 'a' leads to model 'light', which does not take audio "
      "(no audio "
      "capability)");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: light}, classifier: {model: base}}\n",
              "7: router 'r': classifier.model 'base' is not a chat model");
  ut_load_bad(MODELS "routers:\n  - {name: r, routes: {a: light}, classifier: {model: gone}}\n",
              "7: router 'r': classifier.model 'gone' does not exist");
}

/* ---- facts and rules ---- */

static json_t *J(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  if (!j) fail_msg("bad JSON in the test: %s: %s", e.text, text);
  return j;
}

static void test_facts(void **state) {
  (void)state;
  router_facts f;
  json_t *q =
      J("{\"messages\":[{\"role\":\"system\",\"content\":\"be #brief\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"and kind\"}]},"
        "{\"role\":\"user\",\"content\":\"first\"},{\"role\":\"assistant\",\"content\":null},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:x\"}},{\"type\":\"text\",\"text\":"
        "\"here\"}]}],"
        "\"tools\":[{\"type\":\"function\"}]}");
  router_facts_of(q, true, &f);
  assert_true(f.images && f.tools && !f.audio);
  assert_string_equal(f.system, "be #brief\nand kind");
  assert_string_equal(f.text, "look\nhere");
  assert_int_equal(f.prompt_bytes, 9 + 8 + 5 + 4 + 4);
  assert_int_equal(f.prompt_tokens, (30 + 3) / 4);
  router_facts_clear(&f);
  json_decref(q);

  /* completions: the prompt (also as a one-element array); tools: [] is no tools */
  q = J("{\"prompt\":[\"0123456789\"],\"tools\":[]}");
  router_facts_of(q, false, &f);
  assert_false(f.tools || f.images || f.audio);
  assert_string_equal(f.text, "0123456789");
  assert_int_equal(f.prompt_tokens, 3);
  assert_null(f.system);
  router_facts_clear(&f);
  json_decref(q);

  /* hostile shapes are read as absent, never a crash */
  const char *odd[] = {"{}", "{\"messages\":5}",
                       "{\"messages\":[1,null,{\"role\":7,\"content\":{}}]}",
                       "{\"messages\":[{\"role\":\"user\",\"content\":[5,{\"type\":3},{\"type\":"
                       "\"text\",\"text\":[]},"
                       "{\"type\":\"input_audio\"}]}]}",
                       "{\"prompt\":7}"};
  for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
    q = J(odd[i]);
    router_facts_of(q, i < 4, &f);
    assert_false(f.images || f.tools);
    assert_int_equal(f.prompt_bytes, 0);
    assert_int_equal(f.audio, i == 3);
    router_facts_clear(&f);
    json_decref(q);
  }
}

/* A router as the matrix would hold it, with every kind of condition. */
static matrix_route T_ROUTES[] = {
    {"light", "l", ""}, {"heavy", "h", ""}, {"vision", "v", ""}, {"audio", "a", ""}};
static matrix_rule T_RULES[] = {
    {.images = true, .route = 2},
    {.audio = true, .route = 3},
    {.tools = true, .route = 1},
    {.min_prompt_tokens = 50, .route = 1},
    {.system_tag = "#heavy", .route = 1},
    {.system_tag = "#quick",
     .tools = true,
     .route = 0}, /* both must hold: never reached (tools wins first) */
};
static size_t T_CLS[] = {0, 1};
static size_t T_FALLBACK[] = {1, 0};
static const matrix_router T_ROUTER = {.name = "auto",
                                       .routes = T_ROUTES,
                                       .n_routes = 4,
                                       .rules = T_RULES,
                                       .n_rules = 6,
                                       .default_route = 0,
                                       .has_classifier = true,
                                       .cls_model = "l",
                                       .cls_routes = T_CLS,
                                       .n_cls_routes = 2,
                                       .cls_timeout_ms = 1000,
                                       .cls_max_tokens = 16,
                                       .cls_max_input_chars = 8,
                                       .fallback = T_FALLBACK,
                                       .n_fallback = 2};

static void test_rules_table(void **state) {
  (void)state;
  static const struct {
    const char *req;
    bool chat;
    long rule; /* -1: no rule (the classifier or the default decides) */
  } table[] = {
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", true, -1},
      {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
       "\"url\":\"u\"}}]}],"
       "\"tools\":[{}]}",
       true, 0},
      {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":{}"
       "}]}]}",
       true, 1},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\"}]"
       "}",
       true, 2},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[]}", true, -1},
      /* 200 bytes = 50 estimated tokens: the threshold is inclusive; 196 bytes = 49 is below */
      {"{\"prompt\":\"%200\"}", false, 3},
      {"{\"prompt\":\"%196\"}", false, -1},
      {"{\"messages\":[{\"role\":\"system\",\"content\":\"think hard "
       "#heavy\"},{\"role\":\"user\",\"content\":\"x\"}]}",
       true, 4},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"#heavy in the user's text is no tag\"}]}",
       true, -1},
      {"{\"messages\":[{\"role\":\"system\",\"content\":\"#quick\"},{\"role\":\"user\",\"content\":"
       "\"x\"}]}",
       true, -1},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    char buf[1024];
    const char *pct = strchr(table[i].req, '%');
    if (pct) { /* %N: N bytes of text */
      int n = atoi(pct + 1);
      snprintf(buf, sizeof buf, "{\"prompt\":\"%.*s\"}", n,
               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
               "xxxxxxxxxxxxxxxxxx"
               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
               "xxxxxxxxxxxxxxxxxx");
    }
    json_t *q = J(pct ? buf : table[i].req);
    router_facts f;
    router_facts_of(q, table[i].chat, &f);
    long got = router_match_rule(&T_ROUTER, &f);
    if (got != table[i].rule)
      fail_msg("request %zu (%s): rule %ld, want %ld", i, table[i].req, got, table[i].rule);
    router_facts_clear(&f);
    json_decref(q);
  }
}

/* ---- the classifier ---- */

static void test_classifier_msg(void **state) {
  (void)state;
  router_facts f = {.text = "ééééé"}; /* 10 bytes: cut to 8 at a character boundary */
  json_t *m = router_classifier_msg(&T_ROUTER, &f);
  assert_non_null(m);
  assert_string_equal(json_string_value(json_object_get(m, "op")), "generate");
  json_t *msgs = json_object_get(m, "messages");
  assert_int_equal(json_array_size(msgs), 2);
  const char *sys = json_string_value(json_object_get(json_array_get(msgs, 0), "content"));
  assert_non_null(strstr(sys, "light, heavy."));
  assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
                      "éééé");
  assert_true(json_number_value(json_object_get(m, "temperature")) == 0.0);
  assert_int_equal(json_integer_value(json_object_get(m, "max_tokens")), 16);
  json_t *schema = json_object_get(json_object_get(m, "response_format"), "schema");
  char *s = json_dumps(schema, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(s, "{\"enum\":[\"light\",\"heavy\"],\"type\":\"string\"}");
  free(s);
  assert_true(json_is_false(
      json_object_get(json_object_get(m, "chat_template_kwargs"), "enable_thinking")));
  json_decref(m);
  /* a custom prompt is used as written; no text: an empty user message */
  matrix_router r = T_ROUTER;
  r.cls_prompt = "Pick.";
  router_facts none = {0};
  m = router_classifier_msg(&r, &none);
  msgs = json_object_get(m, "messages");
  assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                      "Pick.");
  assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")), "");
  json_decref(m);
}

static void test_classifier_answer(void **state) {
  (void)state;
  static const struct {
    const char *text;
    long want;
  } t[] = {{"\"light\"", 0},
           {"\"heavy\"", 1},
           {" \"heavy\"\n", 1},
           {"heavy", 1},
           {"\"vision\"", -1} /* not allowed */,
           {"\"heav\"", -1},
           {"", -1},
           {"\"", -1},
           {"\"light", -1},
           {"\"heavy\" extra", -1}};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    long got = router_classifier_answer(&T_ROUTER, t[i].text, strlen(t[i].text));
    if (got != t[i].want) fail_msg("answer '%s': %ld, want %ld", t[i].text, got, t[i].want);
  }
  assert_int_equal(router_classifier_answer(&T_ROUTER, NULL, 0), -1);
}

static void test_candidates(void **state) {
  (void)state;
  size_t c[MATRIX_MAX_ROUTES];
  assert_int_equal(router_candidates(&T_ROUTER, 2, c, MATRIX_MAX_ROUTES), 3);
  assert_int_equal(c[0], 2);
  assert_int_equal(c[1], 1);
  assert_int_equal(c[2], 0);
  assert_int_equal(router_candidates(&T_ROUTER, 1, c, MATRIX_MAX_ROUTES), 2); /* chosen once */
  assert_int_equal(c[0], 1);
  assert_int_equal(c[1], 0);
  assert_int_equal(router_candidates(&T_ROUTER, 1, c, 1), 1);
  matrix_router nf = T_ROUTER;
  nf.n_fallback = 0;
  assert_int_equal(router_candidates(&nf, 3, c, MATRIX_MAX_ROUTES), 1);
}

/* ---- metrics ---- */

static void test_stats(void **state) {
  (void)state;
  router_stats_reset();
  router_stats_decision("auto", "heavy", ROUTER_BY_RULE);
  router_stats_decision("auto", "heavy", ROUTER_BY_RULE);
  router_stats_decision("auto", "light", ROUTER_BY_CLASSIFIER);
  router_stats_decision("we\"ird", "light", ROUTER_BY_FALLBACK);
  router_stats_classifier("auto", 0.2, true);
  router_stats_classifier("auto", 3.0, false);
  sy_buf b = {0};
  assert_int_equal(router_stats_render(&b), 0);
  const char *want[] = {
      "# TYPE switchyard_router_decisions_total counter\n",
      "switchyard_router_decisions_total{router=\"auto\",route=\"heavy\",by=\"rule\"} 2\n",
      "switchyard_router_decisions_total{router=\"auto\",route=\"light\",by=\"classifier\"} 1\n",
      "switchyard_router_decisions_total{router=\"we\\\"ird\",route=\"light\",by=\"fallback\"} 1\n",
      "# TYPE switchyard_router_classifier_seconds histogram\n",
      "switchyard_router_classifier_seconds_bucket{router=\"auto\",le=\"0.1\"} 0\n",
      "switchyard_router_classifier_seconds_bucket{router=\"auto\",le=\"0.25\"} 1\n",
      "switchyard_router_classifier_seconds_bucket{router=\"auto\",le=\"5\"} 2\n",
      "switchyard_router_classifier_seconds_bucket{router=\"auto\",le=\"+Inf\"} 2\n",
      "switchyard_router_classifier_seconds_sum{router=\"auto\"} 3.200000\n",
      "switchyard_router_classifier_seconds_count{router=\"auto\"} 2\n",
      "switchyard_router_classifier_failures_total{router=\"auto\"} 1\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    if (!strstr(b.data, want[i])) fail_msg("missing: %s\nin:\n%s", want[i], b.data);
  sy_buf_free(&b);
  router_stats_reset();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_config_ok, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_config_bad, ut_setup, ut_teardown),
      cmocka_unit_test(test_facts),
      cmocka_unit_test(test_rules_table),
      cmocka_unit_test(test_classifier_msg),
      cmocka_unit_test(test_classifier_answer),
      cmocka_unit_test(test_candidates),
      cmocka_unit_test(test_stats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
