/* test_peer.c — unit tests of peers' pure parts: the `peers:` section of the config
 * (config/matrix_peer.c: every key, defaults, the URL's normal form, every refusal with its
 * "file:line:col: reason", routes that name a peer's model), api_resolve's order (the matrix's
 * names, then a peer's, with a peer table whose peer listens nowhere) and what a peer offers, read
 * from its own /v1/models and /api/ps answers (engines/peer_offer.c: the models list filter,
 * aliases, the peer's own peers' models never offered again, /api/ps entries of offered models
 * only, malformed answers refused or skipped). */
#include <curl/curl.h>

#include "buf.h"
#include "config/matrix.h"
#include "engines/peer.h"
#include "engines/peer_offer.h"
#include "parse/api_parse.h"

#include "unit.h"

/* ---- the config ----------------------------------------------------------------------------- */

static void test_peer_config(void **state) {
  (void)state;
  matrix *m = ut_load_ok(
      "peers:\n"
      "  - name: spark\n"
      "    url: http://10.0.0.2:8080/\n"
      "    api_key: sk-spark\n"
      "    models: [big, whisper]\n"
      "    refresh: 1m\n"
      "    connect_timeout: 2s\n"
      "  - {name: box.2, url: 'https://box2.lan'}\n");
  assert_int_equal(m->n_peers, 2);
  const matrix_peer *p = &m->peers[0];
  assert_string_equal(p->name, "spark");
  assert_string_equal(p->url, "http://10.0.0.2:8080"); /* no trailing '/': a path is appended */
  assert_string_equal(p->api_key, "sk-spark");
  assert_false(p->all);
  assert_int_equal(p->n_models, 2);
  assert_string_equal(p->models[1], "whisper");
  assert_int_equal(p->refresh_s, 60);
  assert_int_equal(p->connect_timeout_s, 2);
  assert_non_null(p->sig);
  p = &m->peers[1];
  assert_string_equal(p->url, "https://box2.lan");
  assert_null(p->api_key);
  assert_true(p->all); /* the default: every model it lists */
  assert_int_equal(p->refresh_s, MATRIX_PEER_DEFAULT_REFRESH_S);
  assert_int_equal(p->connect_timeout_s, MATRIX_PEER_DEFAULT_CONNECT_TIMEOUT_S);
  assert_ptr_equal(matrix_find_peer(m, "box.2"), p);
  assert_null(matrix_find_peer(m, "nope"));
  assert_true(matrix_peer_may_offer(m, "anything")); /* box.2 offers all */
  assert_string_not_equal(m->peers[0].sig, m->peers[1].sig);
  matrix_free(m);

  m = ut_load_ok(
      "peers:\n  - {name: a, url: 'http://h:1/sy', models: all}\n"
      "  - {name: b, url: 'http://h:2', models: [x]}\n");
  assert_string_equal(m->peers[0].url, "http://h:1/sy");
  assert_true(m->peers[0].all);
  matrix_free(m);
  m = ut_load_ok("peers:\n  - {name: b, url: 'http://h:2', models: [x, y]}\n");
  assert_true(matrix_peer_may_offer(m, "y"));
  assert_false(matrix_peer_may_offer(m, "z"));
  matrix_free(m);
  m = ut_load_ok("peers: ~\n");
  assert_int_equal(m->n_peers, 0);
  matrix_free(m);
}

static void test_peer_config_bad(void **state) {
  (void)state;
  ut_load_bad("peers: {name: a}\n", "1:8: peers: expected a list, got a mapping");
  ut_load_bad("peers:\n  - {url: 'http://h'}\n", "2:5: peers[0]: 'name' is required");
  ut_load_bad("peers:\n  - {name: a}\n",
              "2:5: peers[0]: 'url' is required (the peer's base URL, http://HOST:PORT)");
  ut_load_bad("peers:\n  - {name: 'a b', url: 'http://h'}\n",
              "2:12: peers[0].name: 'a b' is not a valid peer name (1..32 letters, digits, '_', "
              "'-' or '.')");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h'}\n  - {name: a, url: 'http://g'}\n",
              "3:12: peers[1].name: peer 'a' is defined twice");
  ut_load_bad("peers:\n  - {name: a, url: 'ftp://h'}\n",
              "2:20: peers[0].url: the scheme must be http or https");
  ut_load_bad("peers:\n  - {name: a, url: 'http://u:p@h'}\n",
              "2:20: peers[0].url: user info is not allowed (the key goes in api_key)");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h/?x=1'}\n",
              "2:20: peers[0].url: a query or fragment is not allowed (a base URL only)");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h x'}\n",
              "2:20: peers[0].url: spaces and control characters are not allowed");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h', models: some}\n",
              "2:40: peers[0].models: expected 'all' or a list of model names, got 'some'");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h', models: []}\n",
              "2:40: peers[0].models: expected 1..256 names (or 'all')");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h', refresh: 0}\n",
              "2:41: peers[0].refresh: out of range (1..3600 seconds)");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h', connect_timeout: 2m}\n",
              "2:49: peers[0].connect_timeout: out of range (1..60 seconds)");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h', api_key: 'a b'}\n",
              "2:41: peers[0].api_key: 1..512 printable characters without spaces");
  ut_load_bad("peers:\n  - {name: a, url: 'http://h', key: x}\n",
              "2:32: peers[0].key: unknown key");
}

/* A route may name a model only a peer offers; without such a peer it is refused as before. */
static void test_peer_routes(void **state) {
  (void)state;
  ut_write_text("m.gguf", "");
  FILE *f = ut_gguf_open("m.gguf", 1, 2);
  ut_wstr(f, "general.architecture"), ut_w32(f, 8), ut_wstr(f, "qwen2");
  ut_wstr(f, "tokenizer.chat_template"), ut_w32(f, 8), ut_wstr(f, "{{ messages }}");
  fclose(f);
  matrix *m = ut_load_ok(
      "models:\n  - {name: small, file: m.gguf}\n"
      "routers:\n  - name: pick\n    routes: {light: small, heavy: big}\n"
      "    rules: [{images: true, route: heavy}]\n    default: light\n"
      "peers:\n  - {name: spark, url: 'http://h:1', models: [big]}\n");
  assert_int_equal(m->n_routers, 1);
  matrix_free(m);
  ut_load_bad(
      "models:\n  - {name: small, file: m.gguf}\n"
      "routers:\n  - name: pick\n    routes: {light: small, heavy: big}\n"
      "    default: light\n"
      "peers:\n  - {name: spark, url: 'http://h:1', models: [other]}\n",
      "5:35: router 'pick', route 'heavy': there is no model 'big'");
}

/* api_resolve: the matrix's names first, then the peers' (a peer never reached offers the names
 * its models list gives); a name nobody has is 404. The peer listens nowhere (port 1). */
static void test_resolve_order(void **state) {
  (void)state;
  FILE *f = ut_gguf_open("m.gguf", 1, 2);
  ut_wstr(f, "general.architecture"), ut_w32(f, 8), ut_wstr(f, "qwen2");
  ut_wstr(f, "tokenizer.chat_template"), ut_w32(f, 8), ut_wstr(f, "{{ messages }}");
  fclose(f);
  matrix *m = ut_load_ok(
      "models:\n  - {name: small, file: m.gguf}\n"
      "peers:\n  - {name: gone, url: 'http://127.0.0.1:1', "
      "models: [small, big], connect_timeout: 1s}\n");
  curl_global_init(CURL_GLOBAL_DEFAULT); /* as the daemon does before any thread */
  peers *pp = peers_new(m);
  assert_non_null(pp);
  api_target t;
  json_t *q = ut_json("{'model': 'small'}");
  assert_int_equal(api_resolve(m, pp, q, &t), API_TARGET_MODEL); /* the local one wins */
  json_decref(q);
  q = ut_json("{'model': 'big'}");
  assert_int_equal(api_resolve(m, pp, q, &t), API_TARGET_PEER);
  assert_string_equal(t.peer_model, "big");
  assert_string_equal(peer_name(t.peer), "gone");
  assert_int_equal(t.err.status, 404); /* for a route that takes only local models */
  json_decref(q);
  q = ut_json("{'model': 'nobody'}");
  assert_int_equal(api_resolve(m, pp, q, &t), API_TARGET_NONE);
  assert_int_equal(t.err.status, 404);
  assert_int_equal(api_resolve(m, NULL, q, &t), API_TARGET_NONE);
  json_decref(q);
  q = ut_json("{'model': 'big'}");
  assert_int_equal(api_resolve(m, NULL, q, &t), API_TARGET_NONE); /* no peers: not found */
  json_decref(q);
  peers_free(pp);
  matrix_free(m);
  curl_global_cleanup();
}

/* ---- what a peer offers --------------------------------------------------------------------- */

static const char MODELS[] =
    "{\"object\":\"list\",\"data\":["
    "{\"id\":\"chat\",\"aliases\":[\"c\",\"bad name\",3],\"status\":\"loaded\"},"
    "{\"id\":\"embed\",\"aliases\":[]},"
    "{\"id\":\"far\",\"peer\":\"c\"},"
    "{\"id\":\"with space\"},{\"id\":7},\"x\","
    "{\"id\":\"pick\",\"owned_by\":\"switchyard-router\"}]}";
static const char PS[] =
    "{\"models\":[{\"name\":\"chat\",\"state\":\"loaded\",\"size\":123},"
    "{\"name\":\"hidden\",\"state\":\"loaded\"},"
    "{\"name\":\"far\",\"state\":\"loaded\",\"peer\":\"c\"},5],"
    "\"memory\":{\"used\":123,\"budget\":1000},\"devices\":[]}";

static void test_offer_all(void **state) {
  (void)state;
  peer_offer o;
  char why[256] = "";
  assert_int_equal(
      peer_offer_parse(MODELS, strlen(MODELS), PS, strlen(PS), "b", true, NULL, 0, &o, why, 256),
      0);
  assert_int_equal(json_array_size(o.models), 3); /* chat, embed, pick */
  assert_true(peer_offer_has(&o, "chat"));
  assert_true(peer_offer_has(&o, "c")); /* an alias */
  assert_false(peer_offer_has(&o, "bad name"));
  assert_false(peer_offer_has(&o, "far")); /* the peer's own peer's: never forwarded twice */
  assert_true(peer_offer_has(&o, "pick"));
  const json_t *e = peer_offer_entry(&o, "c");
  assert_string_equal(json_string_value(json_object_get(e, "id")), "chat");
  assert_string_equal(json_string_value(json_object_get(e, "peer")), "b");
  assert_int_equal(json_array_size(o.ps), 1); /* only offered models' state */
  assert_string_equal(json_string_value(json_object_get(json_array_get(o.ps, 0), "peer")), "b");
  assert_int_equal(json_integer_value(json_object_get(o.memory, "budget")), 1000);
  assert_non_null(o.devices);
  peer_offer_clear(&o);
}

static void test_offer_list(void **state) {
  (void)state;
  peer_offer o;
  char why[256] = "";
  char *want[] = {"c", "pick", "nothere"};
  assert_int_equal(
      peer_offer_parse(MODELS, strlen(MODELS), NULL, 0, "b", false, want, 3, &o, why, 256), 0);
  assert_int_equal(json_array_size(o.models), 2); /* chat (by its alias) and pick */
  assert_true(peer_offer_has(&o, "chat"));
  assert_false(peer_offer_has(&o, "embed"));
  assert_int_equal(json_array_size(o.ps), 0); /* no /api/ps: no state known */
  assert_null(o.memory);
  peer_offer_clear(&o);
}

static void test_offer_bad(void **state) {
  (void)state;
  peer_offer o;
  char why[256] = "";
  assert_int_equal(peer_offer_parse("[1]", 3, NULL, 0, "b", true, NULL, 0, &o, why, 256), -1);
  assert_non_null(strstr(why, "not a JSON object"));
  assert_null(o.models);
  assert_int_equal(peer_offer_parse("{\"data\":{}}", 11, NULL, 0, "b", true, NULL, 0, &o, why, 256),
                   -1);
  assert_non_null(strstr(why, "no \"data\" list"));
  assert_int_equal(
      peer_offer_parse("{\"data\":[]}", 11, "nope", 4, "b", true, NULL, 0, &o, why, 256), -1);
  assert_non_null(strstr(why, "/api/ps"));
  assert_int_equal(peer_offer_parse(NULL, 0, NULL, 0, "b", true, NULL, 0, &o, why, 256), -1);
  /* a peer's list past the bound: only the first PEER_OFFER_MAX_MODELS entries */
  sy_buf b = {0};
  sy_buf_puts(&b, "{\"data\":[");
  for (int i = 0; i < PEER_OFFER_MAX_MODELS + 10; i++)
    sy_buf_printf(&b, "%s{\"id\":\"m%d\"}", i ? "," : "", i);
  sy_buf_puts(&b, "]}");
  assert_int_equal(peer_offer_parse(b.data, b.len, NULL, 0, "b", true, NULL, 0, &o, why, 256), 0);
  assert_int_equal(json_array_size(o.models), PEER_OFFER_MAX_MODELS);
  assert_false(peer_offer_has(&o, "m1030"));
  peer_offer_clear(&o);
  sy_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_peer_config, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_peer_config_bad, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_peer_routes, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_resolve_order, ut_setup, ut_teardown),
      cmocka_unit_test(test_offer_all),
      cmocka_unit_test(test_offer_list),
      cmocka_unit_test(test_offer_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
