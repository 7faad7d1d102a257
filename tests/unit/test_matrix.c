/* test_matrix.c — unit tests of matrix.c: good configs (every key, defaults, relative paths),
 * every kind of bad config with its exact "file:line:col: reason", capability and context defaults
 * from GGUF headers, and discovery in a models folder. Every file lives in a mkdtemp folder that is
 * removed afterwards; GGUF files are written here (tiny valid headers), plus a copy of the shared
 * llama-2-tiny-random.gguf when it is present. */
#include "config/matrix.h"

#include <signal.h>

#include "unit.h"

/* ---- tiny GGUF writer ----------------------------------------------------------------------- */

typedef struct gspec {
  const char *arch; /* NULL: no general.architecture */
  unsigned ctx;     /* <arch>.context_length, 0: absent */
  int pooling;      /* <arch>.pooling_type, -1: absent */
  const char *tmpl; /* tokenizer.chat_template, NULL: absent */
  const char *type; /* general.type, NULL: absent */
  unsigned n_tensors;
} gspec;

static void write_gguf(const char *rel, gspec s) {
  uint64_t nkv =
      (s.arch != NULL) + (s.ctx != 0) + (s.pooling >= 0) + (s.tmpl != NULL) + (s.type != NULL);
  FILE *f = ut_gguf_open(rel, s.n_tensors, nkv);
  char k[128];
  if (s.type) ut_wstr(f, "general.type"), ut_w32(f, 8), ut_wstr(f, s.type);
  if (s.arch) ut_wstr(f, "general.architecture"), ut_w32(f, 8), ut_wstr(f, s.arch);
  if (s.ctx)
    snprintf(k, sizeof k, "%s.context_length", s.arch), ut_wstr(f, k), ut_w32(f, 4),
        ut_w32(f, s.ctx);
  if (s.pooling >= 0)
    snprintf(k, sizeof k, "%s.pooling_type", s.arch), ut_wstr(f, k), ut_w32(f, 4),
        ut_w32(f, (uint32_t)s.pooling);
  if (s.tmpl) ut_wstr(f, "tokenizer.chat_template"), ut_w32(f, 8), ut_wstr(f, s.tmpl);
  fclose(f);
}

static const gspec CHAT = {"qwen2", 32768, -1, "{{ messages }}", NULL, 1};
static const gspec BASE = {"llama", 2048, -1, NULL, NULL, 1};
static const gspec BERT = {"bert", 512, -1, NULL, NULL, 1};

/* ---- helpers --------------------------------------------------------------------------------- */

/* ---- good configs --------------------------------------------------------------------------- */

static void test_all_keys(void **state) {
  (void)state;
  assert_int_equal(mkdir(ut_path("models"), 0700), 0);
  assert_int_equal(mkdir(ut_path("weights"), 0700), 0);
  write_gguf("weights/qwen.gguf", CHAT);
  write_gguf("weights/bge.gguf", BERT);
  /* every key; the second model's file is an absolute path */
  char yaml[4096];
  snprintf(yaml, sizeof yaml,
           "listen: {host: 0.0.0.0, port: 9090}\n"
           "api_keys: [sk-one, \"sk-two\"]\n"
           "admin_keys: [sk-admin]\n"
           "pull: {hf_endpoint: 'http://127.0.0.1:9', hf_token: hf_x, registry: "
           "'https://registry.example', max_bytes: 2GiB}\n"
           "models_dir: ./models\n"
           "log_level: debug\n"
           "limits: {max_body_bytes: 1048576, max_connections: 32}\n"
           "memory: {budget: 6GiB, reserve: 512MiB, gpu_reserve: 1GiB, gpu_overhead: 300MiB, "
           "devices: {CUDA0: 70GiB, CUDA1: 20GiB}}\n"
           "scheduling: {swap_guard: 30s, max_loads: 2}\n"
           "defaults: {context: 2048, parallel: 2, keep_alive: 1m, threads: 8, batch: 256, "
           "gpu_layers: 10}\n"
           "models:\n"
           "  - name: qwen-small\n"
           "    aliases: [small, q]\n"
           "    file: weights/qwen.gguf\n"
           "    engine: llama\n"
           "    capabilities: [chat, completion]\n"
           "    context: 8192\n"
           "    parallel: 3\n"
           "    keep_alive: 10m\n"
           "    threads: 4\n"
           "    batch: 1024\n"
           "    gpu_layers: -1\n"
           "    pooling: none\n"
           "    chat_template: chatml\n"
           "    deterministic: true\n"
           "    pin: true\n"
           "    preload: false\n"
           "    priority: 5\n"
           "    max_queue: 7\n"
           "    request_keep_alive: true\n"
           "  - name: bge\n"
           "    file: %s\n",
           ut_path("weights/bge.gguf"));
  matrix *m = ut_load_ok(yaml);
  assert_string_equal(m->path, ut_path("config.yaml"));
  assert_string_equal(m->host, "0.0.0.0");
  assert_int_equal(m->port, 9090);
  assert_int_equal(m->n_api_keys, 2);
  assert_string_equal(m->api_keys[0], "sk-one");
  assert_string_equal(m->api_keys[1], "sk-two");
  assert_int_equal(m->n_admin_keys, 1);
  assert_string_equal(m->admin_keys[0], "sk-admin");
  assert_string_equal(m->pull_hf_endpoint, "http://127.0.0.1:9");
  assert_string_equal(m->pull_hf_token, "hf_x");
  assert_string_equal(m->pull_registry, "https://registry.example");
  assert_true(m->pull_max_bytes == 2LL << 30);
  assert_string_equal(m->models_dir, ut_path("models"));
  assert_int_equal(m->log_level, 3);
  assert_true(m->gpu_reserve == 1LL << 30 && m->gpu_overhead == 300LL << 20);
  assert_int_equal(m->n_gpu_budgets, 2);
  assert_string_equal(m->gpu_names[1], "CUDA1");
  assert_true(m->gpu_budgets[0] == 70LL << 30 && m->gpu_budgets[1] == 20LL << 30);
  assert_int_equal(m->max_body_bytes, 1048576);
  assert_int_equal(m->max_connections, 32);
  assert_true(m->mem_budget == 6LL << 30);
  assert_true(m->mem_reserve == 512LL << 20);
  assert_int_equal(m->swap_guard_s, 30);
  assert_int_equal(m->max_loads, 2);
  assert_int_equal(m->n_models, 2);
  assert_int_equal(m->n_warnings, 0);

  const matrix_model *q = &m->models[0];
  assert_string_equal(q->name, "qwen-small");
  assert_int_equal(q->n_aliases, 2);
  assert_string_equal(q->aliases[0], "small");
  assert_string_equal(q->aliases[1], "q");
  assert_string_equal(q->file, ut_path("weights/qwen.gguf"));
  assert_int_equal(q->engine, MATRIX_ENGINE_LLAMA);
  assert_int_equal(q->caps, MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION);
  assert_int_equal(q->context, 8192);
  assert_int_equal(q->parallel, 3);
  assert_int_equal(q->keep_alive_s, 600);
  assert_int_equal(q->threads, 4);
  assert_int_equal(q->batch, 1024);
  assert_int_equal(q->gpu_layers, -1);
  assert_string_equal(q->pooling, "none");
  assert_string_equal(q->chat_template, "chatml");
  assert_true(q->deterministic);
  assert_true(q->pin);
  assert_false(q->preload);
  assert_int_equal(q->priority, 5);
  assert_int_equal(q->max_queue, 7);
  assert_true(q->request_keep_alive);
  assert_string_equal(q->arch, "qwen2");
  assert_int_equal(q->n_ctx_train, 32768);
  assert_true(q->file_bytes > 0);
  assert_false(q->discovered);
  char src[PATH_MAX + 300];
  snprintf(src, sizeof src, "%s:12", ut_path("config.yaml"));
  assert_string_equal(q->source, src);

  /* the defaults section fills what the model leaves out; context is capped by n_ctx_train */
  const matrix_model *b = &m->models[1];
  assert_string_equal(b->name, "bge");
  assert_string_equal(b->file, ut_path("weights/bge.gguf"));
  assert_int_equal(b->caps, MATRIX_CAP_EMBED);
  assert_int_equal(b->context, 512);
  assert_int_equal(b->parallel, 2);
  assert_int_equal(b->keep_alive_s, 60);
  assert_int_equal(b->threads, 8);
  assert_int_equal(b->batch, 256);
  assert_int_equal(b->gpu_layers, 10);
  assert_null(b->pooling);
  assert_null(b->chat_template);

  assert_ptr_equal(matrix_find(m, "qwen-small"), q);
  assert_ptr_equal(matrix_find(m, "small"), q);
  assert_ptr_equal(matrix_find(m, "q"), q);
  assert_ptr_equal(matrix_find(m, "bge"), b);
  assert_null(matrix_find(m, "Small"));
  assert_null(matrix_find(m, ""));
  assert_null(matrix_find(m, NULL));
  assert_null(matrix_find(NULL, "q"));
  matrix_free(m);
}

static void test_defaults(void **state) {
  (void)state;
  write_gguf("chat.gguf", CHAT); /* n_ctx_train 32768 */
  write_gguf("base.gguf", BASE); /* 2048 */
  write_gguf("noctx.gguf", (gspec){"llama", 0, -1, NULL, NULL, 1});
  write_gguf("tiny.gguf", (gspec){"llama", 8, -1, NULL, NULL, 1});
  matrix *m = ut_load_ok(
      "models:\n"
      "  - {name: chat, file: chat.gguf}\n"
      "  - {name: base, file: base.gguf}\n"
      "  - {name: noctx, file: noctx.gguf}\n"
      "  - {name: tiny, file: tiny.gguf}\n"
      "  - {name: big, file: base.gguf, context: 16384}\n");
  assert_string_equal(m->host, "127.0.0.1");
  assert_int_equal(m->port, 8080);
  assert_int_equal(m->n_api_keys, 0);
  assert_null(m->models_dir);
  assert_int_equal(m->log_level, 2);
  assert_int_equal(m->max_body_bytes, 16 << 20);
  assert_int_equal(m->max_connections, 256);
  assert_true(m->mem_budget == 0);
  assert_true(m->mem_reserve == 2LL << 30);
  assert_int_equal(m->swap_guard_s, 0);
  assert_int_equal(m->max_loads, 1);
  assert_int_equal(m->n_models, 5);
  const matrix_model *c = &m->models[0];
  assert_int_equal(c->context, 4096);
  assert_int_equal(c->parallel, 4);
  assert_int_equal(c->keep_alive_s, 300);
  assert_int_equal(c->threads, 0);
  assert_int_equal(c->batch, 512);
  assert_int_equal(c->gpu_layers, -1);
  assert_int_equal(c->caps, MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION);
  assert_int_equal(m->models[1].context, 2048);
  assert_int_equal(m->models[1].caps, MATRIX_CAP_COMPLETION);
  assert_int_equal(m->models[2].context, 4096);
  assert_int_equal(m->models[2].n_ctx_train, 0);
  assert_int_equal(m->models[3].context, 16);    /* never below the minimum */
  assert_int_equal(m->models[4].context, 16384); /* given: taken as is */
  matrix_free(m);

  /* an empty config, and null sections */
  m = ut_load_ok("");
  assert_int_equal(m->n_models, 0);
  assert_int_equal(m->port, 8080);
  matrix_free(m);
  m = ut_load_ok("# nothing\nlisten:\napi_keys:\nmodels:\nlimits: ~\ndefaults: null\n");
  assert_int_equal(m->n_models, 0);
  assert_int_equal(m->n_api_keys, 0);
  matrix_free(m);
  m = ut_load_ok("listen: {port: 0}\nlog_level: WARN\n");
  assert_int_equal(m->port, 0);
  assert_int_equal(m->log_level, 1);
  assert_int_equal(m->log_format, 0); /* text unless asked */
  matrix_free(m);
  m = ut_load_ok("log_format: JSON\n");
  assert_int_equal(m->log_format, 1);
  matrix_free(m);
}

static void test_capabilities(void **state) {
  (void)state;
  write_gguf("base.gguf", BASE);
  write_gguf("bert.gguf", BERT);
  write_gguf("jina.gguf", (gspec){"jina-bert-v2", 8192, -1, NULL, NULL, 1});
  write_gguf("pool.gguf", (gspec){"qwen3", 32768, 1, NULL, NULL, 1});
  write_gguf("pool0.gguf", (gspec){"qwen3", 32768, 0, NULL, NULL, 1});
  write_gguf("rank.gguf", (gspec){"bert", 512, 4, NULL, NULL, 1});
  matrix *m = ut_load_ok(
      "models:\n"
      "  - {name: a, file: base.gguf}\n"
      "  - {name: b, file: base.gguf, chat_template: chatml}\n"
      "  - {name: c, file: bert.gguf}\n"
      "  - {name: d, file: jina.gguf}\n"
      "  - {name: e, file: pool.gguf}\n"
      "  - {name: f, file: pool0.gguf}\n"
      "  - {name: g, file: rank.gguf}\n"
      "  - {name: h, file: base.gguf, pooling: last}\n"
      "  - {name: i, file: base.gguf, pooling: rank}\n"
      "  - {name: j, file: bert.gguf, capabilities: [completion, embed, embed]}\n");
  unsigned want[] = {MATRIX_CAP_COMPLETION, MATRIX_CAP_COMPLETION | MATRIX_CAP_CHAT,
                     MATRIX_CAP_EMBED,      MATRIX_CAP_EMBED,
                     MATRIX_CAP_EMBED,      MATRIX_CAP_COMPLETION,
                     MATRIX_CAP_RERANK,     MATRIX_CAP_EMBED,
                     MATRIX_CAP_RERANK,     MATRIX_CAP_COMPLETION | MATRIX_CAP_EMBED};
  assert_int_equal(m->n_models, sizeof want / sizeof want[0]);
  for (size_t i = 0; i < m->n_models; i++)
    if (m->models[i].caps != want[i])
      fail_msg("model %s: caps %#x, want %#x", m->models[i].name, m->models[i].caps, want[i]);
  matrix_free(m);

  char buf[64];
  assert_string_equal(matrix_caps_str(MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION, buf, sizeof buf),
                      "chat,completion");
  assert_string_equal(matrix_caps_str(MATRIX_CAP_EMBED, buf, sizeof buf), "embed");
  assert_string_equal(matrix_caps_str(0, buf, sizeof buf), "");
  assert_string_equal(matrix_caps_str(0xf, buf, sizeof buf), "chat,completion,embed,rerank");
  char small[8];
  assert_string_equal(matrix_caps_str(0xf, small, sizeof small), "chat"); /* cut, terminated */
}

/* rpc: ggml RPC servers of a llama.cpp model, "host:port" each (docs/CONFIG.md). */
static void test_rpc(void **state) {
  (void)state;
  write_gguf("base.gguf", BASE);
  matrix *m = ut_load_ok(
      "models:\n"
      "  - {name: a, file: base.gguf, rpc: ['127.0.0.1:50052', 'gpu.lan:1']}\n"
      "  - {name: b, file: base.gguf}\n");
  assert_int_equal(m->models[0].n_rpc, 2);
  assert_string_equal(m->models[0].rpc[0], "127.0.0.1:50052");
  assert_string_equal(m->models[0].rpc[1], "gpu.lan:1");
  assert_int_equal(m->models[1].n_rpc, 0);
  assert_null(m->models[1].rpc);
  matrix_free(m);
  ut_load_bad("models:\n  - {name: a, file: base.gguf, rpc: ['box']}\n",
              "2:38: models[0].rpc[0]: 'box' is not a valid RPC server"
              " (host:port: a name or an IPv4 address, a port 1..65535)");
  ut_load_bad("models:\n  - {name: a, file: base.gguf, rpc: ['box:0']}\n",
              "2:38: models[0].rpc[0]: 'box:0' is not a valid RPC server"
              " (host:port: a name or an IPv4 address, a port 1..65535)");
  ut_load_bad("models:\n  - {name: a, file: base.gguf, rpc: ['[::1]:5']}\n",
              "2:38: models[0].rpc[0]: '[::1]:5' is not a valid RPC server"
              " (host:port: a name or an IPv4 address, a port 1..65535)");
  ut_load_bad("models:\n  - {name: a, file: base.gguf, rpc: []}\n",
              "2:37: models[0].rpc: empty list (leave the key out to run on this machine only)");
  ut_load_bad("models:\n  - {name: a, file: base.gguf, rpc: 'box:1'}\n",
              "2:37: models[0].rpc: expected a list, got 'box:1'");
  ut_load_bad("models:\n  - {name: a, file: base.gguf, rpc: ['a:1', 'a:1']}\n",
              "2:37: models[0].rpc: 'a:1' is listed twice");
  ut_load_bad("models:\n  - {name: a, engine: whisper, file: base.gguf, rpc: ['a:1']}\n",
              "2:54: models[0].rpc: only for engine: llama");
  char yaml[1024];
  int at = snprintf(yaml, sizeof yaml, "models:\n  - {name: a, file: base.gguf, rpc: [");
  for (int i = 0; i < 17; i++)
    at += snprintf(yaml + at, sizeof yaml - (size_t)at, "%s'h:%d'", i ? ", " : "", i + 1);
  snprintf(yaml + at, sizeof yaml - (size_t)at, "]}\n");
  ut_load_bad(yaml, "2:37: models[0].rpc: 17 servers (at most 16)");
}

static void test_keep_alive_forms(void **state) {
  (void)state;
  write_gguf("m.gguf", BASE);
  matrix *m = ut_load_ok(
      "models:\n"
      "  - {name: a, file: m.gguf, keep_alive: 30s}\n"
      "  - {name: b, file: m.gguf, keep_alive: 5m}\n"
      "  - {name: c, file: m.gguf, keep_alive: 2h}\n"
      "  - {name: d, file: m.gguf, keep_alive: 0}\n"
      "  - {name: e, file: m.gguf, keep_alive: -1}\n"
      "  - {name: f, file: m.gguf, keep_alive: 90}\n"
      "  - {name: g, file: m.gguf, keep_alive: \"2147483647\"}\n");
  int want[] = {30, 300, 7200, 0, -1, 90, 2147483647};
  for (size_t i = 0; i < 7; i++) assert_int_equal(m->models[i].keep_alive_s, want[i]);
  matrix_free(m);
}

/* ---- bad configs ----------------------------------------------------------------------------- */

static void test_bad_structure(void **state) {
  (void)state;
  write_gguf("m.gguf", BASE);
  ut_load_bad("listen: {host: a}\nfoo: 1\n", "2:1: foo: unknown key");
  ut_load_bad("log_format: xml\n", "1:13: log_format: unknown format 'xml' (known: text, json)");
  ut_load_bad("listen:\n  hots: x\n", "2:3: listen.hots: unknown key");
  ut_load_bad("models:\n  - name: a\n    file: m.gguf\n    contxt: 5\n",
              "4:5: models[0].contxt: unknown key");
  ut_load_bad("defaults: {ctx: 5}\n", "1:12: defaults.ctx: unknown key");
  ut_load_bad("limits:\n  max_body: 5\n", "2:3: limits.max_body: unknown key");
  ut_load_bad("log_level: info\nlog_level: debug\n", "2:1: log_level: duplicate key");
  ut_load_bad("models:\n  - {name: a, file: m.gguf, name: b}\n",
              "2:29: models[0].name: duplicate key");
  ut_load_bad("- a\n- b\n", "1:1: the config must be a mapping of keys to values, got a list");
  ut_load_bad("just text\n",
              "1:1: the config must be a mapping of keys to values, got 'just text'");
  ut_load_bad("[a]: 1\n", "1:1: keys must be strings, got a list");
  ut_load_bad("listen: 8080\n", "1:9: listen: expected a mapping, got '8080'");
  ut_load_bad("limits: [1]\n", "1:9: limits: expected a mapping, got a list");
  ut_load_bad("api_keys: sk\n", "1:11: api_keys: expected a list, got 'sk'");
  ut_load_bad("api_keys: [{a: b}]\n", "1:12: api_keys[0]: expected a string, got a mapping");
  ut_load_bad("api_keys: [ok, '']\n", "1:16: api_keys[1]: must not be empty");
  ut_load_bad("admin_keys: [ok, '']\n", "1:18: admin_keys[1]: must not be empty");
  ut_load_bad("pull: {hf_endpoint: ftp://x}\n",
              "1:21: pull.hf_endpoint: 'ftp://x' is not an http:// or https:// URL");
  ut_load_bad("pull: {hf_token: 'a b'}\n",
              "1:18: pull.hf_token: only printable ASCII without spaces");
  ut_load_bad("pull: {registry: ''}\n", "1:18: pull.registry: 1 to 512 bytes, got 0");
  ut_load_bad("pull: {mirror: x}\n", "1:8: pull.mirror: unknown key");
  ut_load_bad("models: {name: a}\n", "1:9: models: expected a list, got a mapping");
  ut_load_bad("models:\n  - a\n", "2:5: models[0]: expected a mapping, got 'a'");
  ut_load_bad("log_level: info\n---\nlog_level: warn\n", "3:1: only one YAML document is allowed");
  /* aliases, even cyclic ones, cannot make the walk loop: the schema bounds it */
  ut_load_bad("models: &a [*a]\n", "1:9: models[0]: expected a mapping, got a list");
  ut_load_bad("listen: &l {host: *l}\n", "1:9: listen.host: expected a string, got a mapping");
  /* libyaml's own errors carry their position too */
  ut_load_bad(
      "listen: {host: a\n",
      "2:1: did not find expected ',' or '}' (while parsing a flow mapping at line 1, column 9)");
  ut_load_bad("a: b: c\n", "1:5: mapping values are not allowed in this context");
  ut_load_bad("x: *nope\n", "1:4: found undefined alias");
  ut_load_bad(
      "listen:\n\thost: a\n",
      "2:1: found character that cannot start any token (while scanning for the next token at "
      "line 2, column 1)");
  ut_load_bad("log_level: \xff\n", "1:12: invalid leading UTF-8 octet");
}

static void test_bad_values(void **state) {
  (void)state;
  write_gguf("m.gguf", BASE);
  ut_load_bad("listen: {port: abc}\n", "1:16: listen.port: expected an integer, got 'abc'");
  ut_load_bad("listen:\n  port: 70000\n", "2:9: listen.port: 70000 is out of range (0..65535)");
  ut_load_bad("listen:\n  port: -1\n", "2:9: listen.port: -1 is out of range (0..65535)");
  ut_load_bad("listen:\n  port: 1.5\n", "2:9: listen.port: expected an integer, got '1.5'");
  ut_load_bad("listen:\n  port:\n", "2:8: listen.port: expected an integer, got nothing");
  ut_load_bad("listen: {host: [a]}\n", "1:16: listen.host: expected a string, got a list");
  ut_load_bad("listen: {host: ''}\n", "1:16: listen.host: must not be empty");
  ut_load_bad(
      "memory: {budget: lots}\n",
      "1:18: memory.budget: expected a size like 8GiB, 512MiB or a number of bytes, got 'lots'");
  ut_load_bad("memory: {budget: 5}\n",
              "1:18: memory.budget: 5 is out of range (1048576..1125899906842624 bytes)");
  ut_load_bad(
      "memory: {reserve: -1GiB}\n",
      "1:19: memory.reserve: expected a size like 8GiB, 512MiB or a number of bytes, got '-1GiB'");
  ut_load_bad("memory: {spare: 1}\n", "1:10: memory.spare: unknown key");
  ut_load_bad("memory: {devices: [CUDA0]}\n",
              "1:19: memory.devices: expected a mapping, got a list");
  ut_load_bad("memory: {devices: {CUDA0: 1GiB, CUDA0: 2GiB}}\n",
              "1:33: memory.devices.CUDA0: duplicate key");
  ut_load_bad("memory: {devices: {CUDA0: big}}\n",
              "1:27: memory.devices.CUDA0: expected a size like 8GiB, 512MiB or a number of bytes, "
              "got 'big'");
  ut_load_bad("scheduling: {swap_guard: 2h}\n",
              "1:26: scheduling.swap_guard: 2h is out of range (0..1h)");
  ut_load_bad("scheduling: {max_loads: 0}\n",
              "1:25: scheduling.max_loads: 0 is out of range (1..64)");
  ut_load_bad("scheduling: {swap_guard: -1}\n",
              "1:26: scheduling.swap_guard: -1 is out of range (0..1h)");
  ut_load_bad("log_level: loud\n",
              "1:12: log_level: unknown level 'loud' (known: error, warn, info, debug)");
  ut_load_bad("limits: {max_body_bytes: 10}\n",
              "1:26: limits.max_body_bytes: 10 is out of range (1024..1073741824)");
  ut_load_bad("limits: {max_connections: 0}\n",
              "1:27: limits.max_connections: 0 is out of range (1..65536)");
  ut_load_bad("limits: {max_connections: 99999999999999999999999}\n",
              "1:27: limits.max_connections: 99999999999999999999999 is out of range (1..65536)");
  ut_load_bad("defaults: {context: 8}\n",
              "1:21: defaults.context: 8 is out of range (16..1048576)");
  ut_load_bad("defaults: {parallel: 300}\n",
              "1:22: defaults.parallel: 300 is out of range (1..256)");
  ut_load_bad(
      "defaults: {keep_alive: soon}\n",
      "1:24: defaults.keep_alive: expected seconds or a duration like 30s, 5m, 2h, got 'soon'");
  ut_load_bad("models_dir: nowhere\n",
              "1:13: models_dir: cannot open '{D}/nowhere': No such file or directory");
  ut_load_bad("models_dir: m.gguf\n", "1:13: models_dir: '{D}/m.gguf' is not a directory");

  const char *head = "models:\n  - name: a\n    file: m.gguf\n";
  struct {
    const char *line, *want;
  } cases[] = {
      {"    context: 2000000\n", "4:14: models[0].context: 2000000 is out of range (16..1048576)"},
      {"    context: 15\n", "4:14: models[0].context: 15 is out of range (16..1048576)"},
      {"    parallel: 0\n", "4:15: models[0].parallel: 0 is out of range (1..256)"},
      {"    threads: 2000\n", "4:14: models[0].threads: 2000 is out of range (0..1024)"},
      {"    batch: 0\n", "4:12: models[0].batch: 0 is out of range (1..65536)"},
      {"    gpu_layers: -2\n", "4:17: models[0].gpu_layers: -2 is out of range (-1..65536)"},
      {"    keep_alive: 5x\n",
       "4:17: models[0].keep_alive: expected seconds or a duration like 30s, 5m, 2h, got '5x'"},
      {"    keep_alive: -5\n",
       "4:17: models[0].keep_alive: -5 is out of range (-1..2147483647 seconds)"},
      {"    keep_alive: -1m\n",
       "4:17: models[0].keep_alive: expected seconds or a duration like 30s, 5m, 2h, got '-1m'"},
      {"    keep_alive: 600000h\n",
       "4:17: models[0].keep_alive: 600000h is out of range (-1..2147483647 seconds)"},
      {"    keep_alive: 2147483648\n",
       "4:17: models[0].keep_alive: 2147483648 is out of range (-1..2147483647 seconds)"},
      {"    keep_alive: [1]\n",
       "4:17: models[0].keep_alive: expected seconds or a duration like 30s, 5m, 2h, got a list"},
      {"    engine: vllm\n",
       "4:13: models[0].engine: unknown engine 'vllm' (known: llama, whisper, espeak, external)"},
      {"    pin: 1\n", "4:10: models[0].pin: expected true or false, got '1'"},
      {"    priority: 5000\n", "4:15: models[0].priority: 5000 is out of range (-1000..1000)"},
      {"    max_queue: -1\n", "4:16: models[0].max_queue: -1 is out of range (0..100000)"},
      {"    deterministic: yes\n",
       "4:20: models[0].deterministic: expected true or false, got 'yes'"},
      {"    pooling: max\n",
       "4:14: models[0].pooling: unknown pooling 'max' (known: mean, cls, last, none, rank)"},
      {"    capabilities: [chat, fly]\n",
       "4:26: models[0].capabilities[1]: unknown capability 'fly' (known: chat, completion, embed, "
       "rerank, transcribe, speech, vision, audio)"},
      {"    capabilities: chat\n", "4:19: models[0].capabilities: expected a list, got 'chat'"},
      {"    capabilities: []\n",
       "4:19: models[0].capabilities: empty list (leave the key out to take them from the GGUF)"},
      {"    chat_template: ''\n", "4:20: models[0].chat_template: must not be empty"},
      {"    aliases: small\n", "4:14: models[0].aliases: expected a list, got 'small'"},
      {"    aliases: [b, 'has space']\n",
       "4:18: models[0].aliases[1]: 'has space' is not a valid name (1..128 characters, no "
       "spaces)"},
      {"    aliases: [b, b]\n", "4:18: models[0].aliases[1]: 'b' is listed twice"},
      {"    aliases: [a]\n", "4:15: models[0].aliases[0]: 'a' is already this model's name"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%s%s", head, cases[i].line);
    ut_load_bad(yaml, cases[i].want);
  }
}

/* engine: whisper takes whisper.cpp's ggml files (checked by magic), espeak needs no file. */
static void test_engines(void **state) {
  (void)state;
  ut_write_text("ggml-tiny.bin", "lmgg and then the rest of a whisper model");
  write_gguf("plain.gguf", BASE);
  matrix *m = ut_load_ok(
      "models:\n  - {name: asr, engine: whisper, file: ggml-tiny.bin}\n"
      "  - {name: speak, engine: espeak}\n");
  assert_int_equal(m->n_models, 2);
  assert_int_equal(m->models[0].engine, MATRIX_ENGINE_WHISPER);
  assert_int_equal(m->models[0].caps, MATRIX_CAP_TRANSCRIBE);
  assert_int_equal(m->models[1].engine, MATRIX_ENGINE_ESPEAK);
  assert_int_equal(m->models[1].caps, MATRIX_CAP_SPEECH);
  assert_string_equal(matrix_engine_name(m->models[0].engine), "whisper");
  matrix_free(m);
  ut_load_bad("models:\n  - {name: asr, engine: whisper, file: plain.gguf}\n",
              "2:40: models[0].file: '{D}/plain.gguf' is not a whisper.cpp model (ggml magic)");
  ut_load_bad("models:\n  - {name: asr, engine: whisper}\n",
              "2:5: models[0]: missing required key 'file'");
}

/* mmproj: relative to the config, must be a projector GGUF; gives the vision capability; image
 * limits under limits. */
static void test_mmproj(void **state) {
  (void)state;
  write_gguf("m.gguf", CHAT);
  write_gguf("proj.gguf", (gspec){"clip", 0, -1, NULL, "mmproj", 1});
  assert_int_equal(mkdir(ut_path("imgs"), 0700), 0);
  matrix *m = ut_load_ok(
      "limits: {image_dir: imgs, max_image_bytes: 4096, max_image_pixels: 1000}\n"
      "models:\n  - name: v\n    file: m.gguf\n    mmproj: proj.gguf\n"
      "  - name: t\n    file: m.gguf\n");
  assert_string_equal(m->models[0].mmproj, ut_path("proj.gguf"));
  assert_true(m->models[0].mmproj_bytes > 0);
  assert_true(m->models[0].caps & MATRIX_CAP_VISION);
  assert_true(m->models[0].caps & MATRIX_CAP_CHAT);
  assert_null(m->models[1].mmproj);
  assert_false(m->models[1].caps & MATRIX_CAP_VISION);
  assert_string_equal(m->image_dir, ut_path("imgs"));
  assert_int_equal(m->max_image_bytes, 4096);
  assert_int_equal(m->max_image_pixels, 1000);
  char caps[64];
  assert_string_equal(matrix_caps_str(m->models[0].caps, caps, sizeof caps),
                      "chat,completion,vision");
  matrix_free(m);
  /* capabilities given: vision is added by the mmproj, and needs one */
  m = ut_load_ok(
      "models:\n  - name: v\n    file: m.gguf\n    mmproj: proj.gguf\n    capabilities: [chat]\n");
  assert_int_equal(m->models[0].caps, MATRIX_CAP_CHAT | MATRIX_CAP_VISION);
  matrix_free(m);
  m = ut_load_ok("models:\n  - name: t\n    file: m.gguf\n");
  assert_null(m->image_dir);
  assert_int_equal(m->max_image_bytes, 0);
  matrix_free(m);
  ut_load_bad("models:\n  - name: v\n    file: m.gguf\n    capabilities: [chat, vision]\n",
              "4:19: models[0].capabilities: vision needs an mmproj");
  ut_load_bad("models:\n  - name: v\n    file: m.gguf\n    mmproj: nope.gguf\n",
              "4:13: models[0].mmproj: cannot open '{D}/nope.gguf': No such file or directory");
  ut_load_bad(
      "models:\n  - name: v\n    file: m.gguf\n    mmproj: m.gguf\n",
      "4:13: models[0].mmproj: '{D}/m.gguf' is not a multimodal projector (no clip.* keys)");
  ut_load_bad("limits: {image_dir: nope}\n",
              "1:21: limits.image_dir: cannot open '{D}/nope': No such file or directory");
  ut_load_bad("limits: {image_dir: m.gguf}\n",
              "1:21: limits.image_dir: '{D}/m.gguf' is not a directory");
  ut_load_bad("limits: {max_image_pixels: 0}\n",
              "1:28: limits.max_image_pixels: 0 is out of range (1..268435456)");
}

/* an mmproj with an audio encoder (clip.has_audio_encoder) gives audio (and transcribe), not
 * vision; transcribe_prompt only for such a model */
/* A projector header; gen: an audio generator too (Pocket-TTS: its voice encoder is the audio one).
 */
static void write_proj_gen(const char *rel, bool vision, bool audio, bool gen) {
  FILE *f = ut_gguf_open(rel, 1, gen ? 4 : 3);
  ut_wstr(f, "general.architecture"), ut_w32(f, 8), ut_wstr(f, "clip");
  ut_wstr(f, "clip.has_vision_encoder"), ut_w32(f, 7), fputc(vision, f); /* bool */
  ut_wstr(f, "clip.has_audio_encoder"), ut_w32(f, 7), fputc(audio, f);
  if (gen) ut_wstr(f, "clip.has_gen_audio_encoder"), ut_w32(f, 7), fputc(1, f);
  fclose(f);
}

static void write_proj(const char *rel, bool vision, bool audio) {
  write_proj_gen(rel, vision, audio, false);
}

static void test_mmproj_audio(void **state) {
  (void)state;
  write_gguf("m.gguf", CHAT);
  write_proj("aproj.gguf", false, true);
  write_proj("vproj.gguf", true, false);
  write_proj("none.gguf", false, false);
  write_proj("both.gguf", true, true);
  matrix *m = ut_load_ok(
      "models:\n  - name: a\n    file: m.gguf\n    mmproj: aproj.gguf\n"
      "    transcribe_prompt: 'Write down what is said.'\n"
      "  - name: b\n    file: m.gguf\n    mmproj: aproj.gguf\n    capabilities: [chat]\n");
  char caps[96];
  assert_string_equal(matrix_caps_str(m->models[0].caps, caps, sizeof caps),
                      "chat,completion,transcribe,audio");
  assert_string_equal(m->models[0].transcribe_prompt, "Write down what is said.");
  assert_int_equal(m->models[1].caps, MATRIX_CAP_CHAT | MATRIX_CAP_AUDIO);
  assert_null(m->models[1].transcribe_prompt);
  matrix_free(m);
  ut_load_bad(
      "models:\n  - name: a\n    file: m.gguf\n    mmproj: aproj.gguf\n    capabilities: [chat, "
      "vision]\n",
      "5:19: models[0].capabilities: vision needs an mmproj with a vision encoder");
  ut_load_bad(
      "models:\n  - name: a\n    file: m.gguf\n    mmproj: vproj.gguf\n    capabilities: [chat, "
      "audio]\n",
      "5:19: models[0].capabilities: audio needs an mmproj with an audio encoder");
  ut_load_bad("models:\n  - name: a\n    file: m.gguf\n    capabilities: [audio]\n",
              "4:19: models[0].capabilities: audio needs an mmproj");
  ut_load_bad(
      "models:\n  - name: a\n    file: m.gguf\n    mmproj: vproj.gguf\n    transcribe_prompt: hi\n",
      "5:24: models[0].transcribe_prompt: only for a model whose mmproj takes audio");
  ut_load_bad("models:\n  - name: a\n    file: m.gguf\n    mmproj: none.gguf\n",
              "4:13: models[0].mmproj: '{D}/none.gguf' has neither a vision nor an audio encoder");
  m = ut_load_ok("models:\n  - name: a\n    file: m.gguf\n    mmproj: both.gguf\n");
  assert_string_equal(matrix_caps_str(m->models[0].caps, caps, sizeof caps),
                      "chat,completion,transcribe,vision,audio");
  matrix_free(m);
}

static void test_mmproj_speech(void **state) {
  (void)state;
  write_gguf("m.gguf", CHAT);
  write_proj_gen("sproj.gguf", false, true, true);
  write_proj("aproj.gguf", false, true);
  matrix *m = ut_load_ok(
      "models:\n  - name: tts\n    file: m.gguf\n    mmproj: sproj.gguf\n    voice_upload: true\n");
  char caps[96];
  /* speech only: the voice encoder is not audio input, the backbone's text is noise */
  assert_string_equal(matrix_caps_str(m->models[0].caps, caps, sizeof caps), "speech");
  assert_true(m->models[0].voice_upload);
  assert_int_equal(m->models[0].parallel, 1); /* one request at a time: no KV for idle sequences */
  matrix_free(m);
  m = ut_load_ok("models:\n  - {name: tts, file: m.gguf, mmproj: sproj.gguf, parallel: 3}\n");
  assert_int_equal(m->models[0].parallel, 3);
  matrix_free(m);
  m = ut_load_ok("models:\n  - name: tts\n    file: m.gguf\n    mmproj: sproj.gguf\n");
  assert_false(m->models[0].voice_upload);
  matrix_free(m);
  ut_load_bad(
      "models:\n  - name: a\n    file: m.gguf\n    mmproj: aproj.gguf\n    voice_upload: true\n",
      "5:19: models[0].voice_upload: only for engine llama with a speech mmproj "
      "(clip.has_gen_audio_encoder)");
  ut_load_bad(
      "models:\n  - name: a\n    file: m.gguf\n    mmproj: sproj.gguf\n    voice_upload: maybe\n",
      "5:19: models[0].voice_upload: expected true or false, got 'maybe'");
}

static void test_bad_models(void **state) {
  (void)state;
  write_gguf("m.gguf", BASE);
  write_gguf("proj.gguf", (gspec){"clip", 0, -1, NULL, "mmproj", 1});
  write_gguf("lora.gguf", (gspec){"llama", 0, -1, NULL, "adapter", 1});
  write_gguf("vocab.gguf", (gspec){"llama", 4096, -1, NULL, NULL, 0});
  ut_write_text("junk.gguf", "hello, world");
  assert_int_equal(mkdir(ut_path("adir"), 0700), 0);
  ut_load_bad("models:\n  - file: m.gguf\n", "2:5: models[0]: missing required key 'name'");
  ut_load_bad("models:\n  - name: a\n", "2:5: models[0]: missing required key 'file'");
  ut_load_bad("models:\n  - {name: a}\n", "2:5: models[0]: missing required key 'file'");
  ut_load_bad("models:\n  - name: a\n    file: nope.gguf\n",
              "3:11: models[0].file: cannot open '{D}/nope.gguf': No such file or directory");
  ut_load_bad("models:\n  - name: a\n    file: junk.gguf\n",
              "3:11: models[0].file: '{D}/junk.gguf' is not a readable GGUF: not a GGUF file: bad "
              "magic (offset 4)");
  ut_load_bad("models:\n  - name: a\n    file: adir\n",
              "3:11: models[0].file: '{D}/adir' is not a readable GGUF: not a regular file");
  ut_load_bad(
      "models:\n  - name: a\n    file: proj.gguf\n",
      "3:11: models[0].file: '{D}/proj.gguf' is a multimodal projector (mmproj), not a model");
  ut_load_bad("models:\n  - name: a\n    file: lora.gguf\n",
              "3:11: models[0].file: '{D}/lora.gguf' is an adapter, not a model");
  ut_load_bad("models:\n  - name: a\n    file: vocab.gguf\n",
              "3:11: models[0].file: '{D}/vocab.gguf' has no tensors (a vocabulary-only GGUF?)");
  ut_load_bad("models:\n  - name: a\n    file: [m.gguf]\n",
              "3:11: models[0].file: expected a string, got a list");
  ut_load_bad("models:\n  - name: 'a b'\n    file: m.gguf\n",
              "2:11: models[0].name: 'a b' is not a valid name (1..128 characters, no spaces)");
  ut_load_bad("models:\n  - name: \"a\\0b\"\n    file: m.gguf\n",
              "2:11: models[0].name: the string contains a NUL byte");
  /* names and aliases share one namespace */
  ut_load_bad("models:\n  - {name: a, file: m.gguf}\n  - {name: a, file: m.gguf}\n",
              "3:12: models[1].name: 'a' is already used by model 'a' ({F}:2)");
  ut_load_bad("models:\n  - {name: a, aliases: [x], file: m.gguf}\n  - {name: x, file: m.gguf}\n",
              "3:12: models[1].name: 'x' is already used by model 'a' ({F}:2)");
  ut_load_bad(
      "models:\n  - {name: a, file: m.gguf}\n  - {name: b, aliases: [c, a], file: m.gguf}\n",
      "3:28: models[1].aliases[1]: 'a' is already used by model 'a' ({F}:2)");
  ut_load_bad(
      "models:\n  - {name: a, aliases: [x], file: m.gguf}\n  - name: b\n    aliases:\n      - x\n  "
      "  file: m.gguf\n",
      "5:9: models[1].aliases[0]: 'x' is already used by model 'a' ({F}:2)");
}

/* cpu_moe / n_cpu_moe: one of them, on a GGUF with <arch>.expert_count; N at or above the block
 * count is every layer. */
static void test_cpu_moe(void **state) {
  (void)state;
  FILE *f = ut_gguf_open("moe.gguf", 1, 3);
  ut_wstr(f, "general.architecture"), ut_w32(f, 8), ut_wstr(f, "qwen3moe");
  ut_wstr(f, "qwen3moe.expert_count"), ut_w32(f, 4), ut_w32(f, 128);
  ut_wstr(f, "qwen3moe.block_count"), ut_w32(f, 4), ut_w32(f, 48);
  fclose(f);
  write_gguf("m.gguf", BASE);
  matrix *m = ut_load_ok(
      "models:\n"
      "  - {name: a, file: moe.gguf, cpu_moe: true}\n"
      "  - {name: b, file: moe.gguf, n_cpu_moe: 12}\n"
      "  - {name: c, file: moe.gguf, n_cpu_moe: 48}\n"
      "  - {name: d, file: moe.gguf}\n"
      "  - {name: e, file: m.gguf, cpu_moe: false, n_cpu_moe: 0}\n");
  assert_int_equal(matrix_find(m, "a")->cpu_moe, MATRIX_CPU_MOE_ALL);
  assert_int_equal(matrix_find(m, "b")->cpu_moe, 12);
  assert_int_equal(matrix_find(m, "c")->cpu_moe, MATRIX_CPU_MOE_ALL);
  assert_int_equal(matrix_find(m, "d")->cpu_moe, 0);
  assert_int_equal(matrix_find(m, "e")->cpu_moe, 0);
  matrix_free(m);
  ut_load_bad("models:\n  - {name: a, file: moe.gguf, cpu_moe: true, n_cpu_moe: 2}\n",
              "2:57: models[0]: give cpu_moe or n_cpu_moe, not both");
  ut_load_bad("models:\n  - {name: a, file: m.gguf, cpu_moe: true}\n",
              "2:38: models[0].cpu_moe: '{D}/m.gguf' has no experts (no llama.expert_count)");
  ut_load_bad("models:\n  - {name: a, file: m.gguf, n_cpu_moe: 4}\n",
              "2:40: models[0].n_cpu_moe: '{D}/m.gguf' has no experts (no llama.expert_count)");
}

static void test_missing_config(void **state) {
  (void)state;
  char err[512], want[PATH_MAX + 300];
  assert_null(matrix_load(ut_path("none.yaml"), NULL, err, sizeof err));
  snprintf(want, sizeof want, "%s: cannot read config: No such file or directory",
           ut_path("none.yaml"));
  assert_string_equal(err, want);
  assert_null(matrix_load(ut_tmp(), NULL, err, sizeof err));
  snprintf(want, sizeof want, "%s: cannot read config (is it a directory?)", ut_tmp());
  assert_string_equal(err, want);
  assert_null(matrix_load(NULL, ut_path("nodir"), err, sizeof err));
  snprintf(want, sizeof want, "models dir '%s': No such file or directory", ut_path("nodir"));
  assert_string_equal(err, want);
  /* too big */
  FILE *f = fopen(ut_path("big.yaml"), "wb");
  assert_non_null(f);
  for (int i = 0; i < (1 << 20) / 8 + 1; i++) fputs("# hello\n", f);
  fclose(f);
  assert_null(matrix_load(ut_path("big.yaml"), NULL, err, sizeof err));
  snprintf(want, sizeof want, "%s: config is larger than 1 MiB", ut_path("big.yaml"));
  assert_string_equal(err, want);
  /* no config, no folder: an empty matrix with the defaults */
  matrix *m = matrix_load(NULL, NULL, err, sizeof err);
  assert_non_null(m);
  assert_null(m->path);
  assert_string_equal(m->host, "127.0.0.1");
  assert_int_equal(m->port, 8080);
  assert_int_equal(m->n_models, 0);
  matrix_free(m);
}

/* ---- discovery --------------------------------------------------------------------------------
 */

static void test_discovery(void **state) {
  (void)state;
  assert_int_equal(mkdir(ut_path("models"), 0700), 0);
  assert_int_equal(mkdir(ut_path("models/sub"), 0700), 0);
  write_gguf("models/zeta.gguf", CHAT);
  write_gguf("models/alpha.gguf", BASE);
  write_gguf("models/emb.gguf", BERT);
  write_gguf("models/mmproj-zeta.gguf", CHAT);         /* by its name; not attached: no projector */
  write_proj("models/mmproj-alpha.gguf", true, false); /* attached to alpha */
  write_gguf("models/vision.gguf", (gspec){"clip", 0, -1, NULL, "mmproj", 1}); /* by its header */
  write_gguf("models/big-00001-of-00002.gguf", BASE);                          /* a split model */
  write_gguf("models/big-00002-of-00002.gguf", BASE);
  write_gguf("models/conf.gguf", CHAT);  /* named by a configured model */
  write_gguf("models/small.gguf", BASE); /* clashes with a configured alias */
  write_gguf("models/.hidden.gguf", BASE);
  write_gguf("models/sub/deep.gguf", BASE); /* not recursive */
  write_gguf("models/vocab.gguf", (gspec){"llama", 4096, -1, NULL, NULL, 0});
  ut_write_text("models/broken.gguf", "GGUF\3\0\0\0");
  ut_write_text("models/notes.txt", "not a model");
  write_gguf("models/has space.gguf", BASE);
  write_gguf("models/sub.gguf.txt", BASE);

  matrix *m = ut_load_ok(
      "models_dir: models\n"
      "defaults: {parallel: 2}\n"
      "models:\n"
      "  - name: configured\n"
      "    aliases: [small]\n"
      "    file: models/conf.gguf\n");
  const char *names[] = {"configured", "alpha", "big", "emb", "zeta"};
  if (m->n_models != 5) {
    for (size_t i = 0; i < m->n_models; i++) print_message("model %s\n", m->models[i].name);
    fail_msg("%zu models, want 5", m->n_models);
  }
  for (size_t i = 0; i < 5; i++) assert_string_equal(m->models[i].name, names[i]);
  assert_false(m->models[0].discovered);
  const matrix_model *z = matrix_find(m, "zeta");
  assert_non_null(z);
  assert_true(z->discovered);
  assert_string_equal(z->file, ut_path("models/zeta.gguf"));
  assert_string_equal(z->source, ut_path("models/zeta.gguf"));
  assert_int_equal(z->caps, MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION);
  assert_int_equal(z->context, 4096);
  assert_int_equal(z->parallel, 2);
  assert_int_equal(z->n_aliases, 0);
  assert_string_equal(matrix_find(m, "big")->file, ut_path("models/big-00001-of-00002.gguf"));
  assert_int_equal(matrix_find(m, "emb")->caps, MATRIX_CAP_EMBED);
  assert_int_equal(matrix_find(m, "emb")->context, 512);
  assert_ptr_equal(matrix_find(m, "small"), &m->models[0]);

  const matrix_model *a = matrix_find(m, "alpha");
  assert_string_equal(a->mmproj, ut_path("models/mmproj-alpha.gguf"));
  assert_true(a->mmproj_bytes > 0 && (a->caps & MATRIX_CAP_VISION));
  assert_null(z->mmproj);
  assert_false(z->caps & MATRIX_CAP_VISION);

  /* warnings: the broken file, the vocabulary-only one, the clash, the bad name, the projector
   * that is not one */
  assert_int_equal(m->n_warnings, 5);
  int seen = 0;
  for (size_t i = 0; i < m->n_warnings; i++) {
    const char *w = m->n_warnings ? m->warnings[i] : "";
    if (strstr(w, "broken.gguf: not a readable GGUF: truncated")) seen |= 1;
    if (strstr(w, "vocab.gguf: it has no tensors")) seen |= 2;
    if (strstr(w, "small.gguf: the name 'small' is taken by model 'configured'")) seen |= 4;
    if (strstr(w, "has space.gguf: 'has space' is not a valid model name")) seen |= 8;
    if (strstr(w, "mmproj-zeta.gguf to model 'zeta': it is not a multimodal projector")) seen |= 16;
  }
  if (seen != 31)
    for (size_t i = 0; i < m->n_warnings; i++) print_message("warning: %s\n", m->warnings[i]);
  assert_int_equal(seen, 31);
  matrix_free(m);

  /* no config at all: the folder alone; the argument wins over the config's models_dir */
  char err[512];
  m = matrix_load(NULL, ut_path("models"), err, sizeof err);
  if (!m) fail_msg("%s", err);
  assert_null(m->path);
  assert_string_equal(m->models_dir, ut_path("models"));
  assert_int_equal(m->n_models, 6); /* alpha big conf emb small zeta */
  assert_string_equal(m->models[0].name, "alpha");
  assert_string_equal(m->models[5].name, "zeta");
  assert_int_equal(m->models[0].parallel, 4);
  matrix_free(m);
  assert_int_equal(mkdir(ut_path("other"), 0700), 0);
  ut_write_text("config.yaml", "models_dir: models\n");
  m = matrix_load(ut_path("config.yaml"), ut_path("other"), err, sizeof err);
  if (!m) fail_msg("%s", err);
  assert_int_equal(m->n_models, 0);
  assert_string_equal(m->models_dir, ut_path("other"));
  matrix_free(m);
}

static void test_discovery_real_file(void **state) {
  (void)state;
  const char *td = getenv("SWITCHYARD_TESTDATA");
  char src[PATH_MAX];
  snprintf(src, sizeof src, "%s/llama-2-tiny-random.gguf", td && *td ? td : "../shared/testdata");
  FILE *in = fopen(src, "rb");
  if (!in) {
    print_message("SKIP: %s not found (set SWITCHYARD_TESTDATA to the shared testdata folder)\n",
                  src);
    skip();
  }
  assert_int_equal(mkdir(ut_path("models"), 0700), 0);
  FILE *out = fopen(ut_path("models/tiny.gguf"), "wb");
  assert_non_null(out);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  fclose(out);
  char err[512];
  matrix *m = matrix_load(NULL, ut_path("models"), err, sizeof err);
  if (!m) fail_msg("%s", err);
  assert_int_equal(m->n_models, 1);
  const matrix_model *t = matrix_find(m, "tiny");
  assert_non_null(t);
  assert_string_equal(t->arch, "llama");
  assert_int_equal(t->n_ctx_train, 4096);
  assert_int_equal(t->context, 4096);
  assert_int_equal(t->caps, MATRIX_CAP_COMPLETION);
  matrix_free(m);
}

/* engine: external: a third-party server; every key checked, defaults filled, ${PORT} kept. */
static void test_external(void **state) {
  (void)state;
  assert_int_equal(mkdir(ut_path("comfy"), 0755), 0);
  matrix *m = ut_load_ok(
      "models:\n"
      "  - name: comfy\n    engine: external\n    keep_alive: 10m\n    priority: 3\n"
      "    external:\n      argv: [python3, main.py, --port, '${PORT}']\n      cwd: comfy\n"
      "      env: {CUDA_VISIBLE_DEVICES: '0', X_PORT: 'p${PORT}'}\n"
      "      health: {path: /system_stats, status: 204, timeout: 3m}\n"
      "      routes: [/v1/images/generations, /v1/chat/completions]\n"
      "      upstream: false\n      memory: 2GiB\n      gpu_memory: {CUDA0: 10GiB}\n"
      "      stop_signal: SIGINT\n      stop_grace: 20s\n      port: 8188\n"
      "  - name: tiny\n    engine: external\n    external: {argv: [srv]}\n");
  assert_int_equal(m->n_models, 2);
  const matrix_model *c = &m->models[0];
  assert_int_equal(c->engine, MATRIX_ENGINE_EXTERNAL);
  assert_string_equal(matrix_engine_name(c->engine), "external");
  assert_non_null(c->ext);
  assert_int_equal(c->ext->argc, 4);
  assert_string_equal(c->ext->argv[3], "${PORT}");
  assert_string_equal(c->ext->cwd, ut_path("comfy"));
  assert_int_equal(c->ext->n_env, 2);
  assert_string_equal(c->ext->env[0], "CUDA_VISIBLE_DEVICES=0");
  assert_string_equal(c->ext->env[1], "X_PORT=p${PORT}");
  assert_string_equal(c->ext->health_path, "/system_stats");
  assert_int_equal(c->ext->health_status, 204);
  assert_int_equal(c->ext->startup_timeout_s, 180);
  assert_int_equal(c->ext->port, 8188);
  assert_false(c->ext->upstream);
  assert_int_equal(c->ext->memory, 2LL << 30);
  assert_int_equal(c->ext->n_gpu, 1);
  assert_string_equal(c->ext->gpu_names[0], "CUDA0");
  assert_int_equal(c->ext->gpu_bytes[0], 10LL << 30);
  assert_int_equal(c->ext->stop_signal, SIGINT);
  assert_int_equal(c->ext->stop_grace_ms, 20000);
  assert_int_equal(c->caps, MATRIX_CAP_CHAT); /* images have no capability bit */
  assert_int_equal(c->keep_alive_s, 600);
  assert_int_equal(c->priority, 3);
  assert_true(matrix_ext_serves(c, "/v1/images/generations"));
  assert_false(matrix_ext_serves(c, "/v1/embeddings"));
  assert_non_null(c->ext->sig);
  const matrix_model *t = &m->models[1];
  assert_string_equal(t->ext->health_path, "/health");
  assert_int_equal(t->ext->health_status, 200);
  assert_int_equal(t->ext->startup_timeout_s, 120);
  assert_int_equal(t->ext->port, 0);
  assert_true(t->ext->upstream);
  assert_int_equal(t->ext->stop_signal, SIGTERM);
  assert_int_equal(t->ext->stop_grace_ms, 10000);
  assert_int_equal(t->ext->n_routes, 0);
  assert_false(matrix_ext_serves(&m->models[0], NULL));
  assert_string_not_equal(c->ext->sig, t->ext->sig);
  matrix_free(m);

  ut_load_bad(
      "models:\n  - {name: x, engine: external}\n",
      "2:5: models[0]: engine: external needs an 'external' map (argv, port, health, routes...)");
  ut_load_bad("models:\n  - {name: x, external: {argv: [a]}}\n",
              "2:25: models[0].external: only for engine: external");
  ut_load_bad(
      "models:\n  - {name: x, engine: external, external: {}}\n",
      "2:43: models[0].external: missing required key 'argv' (the program and its arguments, "
      "a list)");
  ut_load_bad("models:\n  - {name: x, engine: external, file: a.gguf, external: {argv: [a]}}\n",
              "2:39: models[0].file: not for engine: external");
  ut_load_bad(
      "models:\n  - {name: x, engine: external, external: {argv: [a, b], shell: true}}\n",
      "2:65: models[0].external.shell: with shell: true, argv must be one string (the command "
      "line for /bin/sh -c)");
  ut_load_bad(
      "models:\n  - {name: x, engine: external, external: {argv: [a], routes: [/v1/nope]}}\n",
      "2:64: models[0].external.routes[0]: unknown route '/v1/nope' (known: /v1/chat/completions, "
      "/v1/completions, /v1/embeddings, /v1/rerank, /v1/images/generations, /v1/images/edits, "
      "/v1/audio/speech, /v1/audio/transcriptions, /v1/audio/translations)");
  ut_load_bad(
      "models:\n  - {name: x, engine: external, external: {argv: [a], stop_signal: SIGSEGV}}\n",
      "2:68: models[0].external.stop_signal: unknown signal 'SIGSEGV' (known: SIGTERM, SIGINT, "
      "SIGHUP, "
      "SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2)");
  ut_load_bad("models:\n  - {name: x, engine: external, external: {argv: [a], port: 70000}}\n",
              "2:61: models[0].external.port: 70000 is out of range (1..65535)");
  ut_load_bad("models:\n  - {name: x, engine: external, external: {argv: [a], env: {1BAD: x}}}\n",
              "2:61: models[0].external.env.1BAD: not a valid environment variable name");
  ut_load_bad(
      "models:\n  - {name: x, engine: external, external: {argv: [a], health: {path: nope}}}\n",
      "2:70: models[0].external.health.path: expected a path starting with / (printable, no "
      "spaces)");
  ut_load_bad(
      "models:\n  - {name: x, engine: external, external: {argv: [a], cwd: nothere}}\n",
      "2:60: models[0].external.cwd: '{D}/nothere' is not a folder: No such file or directory");
  ut_load_bad("models:\n  - {name: x, engine: external, external: {argv: [a], bogus: 1}}\n",
              "2:55: models[0].external.bogus: unknown key");
}

/* pipelines: steps by role, checked against the whole matrix (the built-in voice included) after
 * the models; names unique with the models'. */
static void test_pipelines(void **state) {
  (void)state;
  ut_write_text("ggml-tiny.bin", "lmgg and then the rest of a whisper model");
  write_gguf("chat.gguf", CHAT);
  write_gguf("plain.gguf", BASE);
  const char *models =
      "models:\n  - {name: asr, engine: whisper, file: ggml-tiny.bin}\n"
      "  - {name: lm, file: chat.gguf, aliases: [light]}\n"
      "  - {name: base, file: plain.gguf}\n";
  char y[2048];
  snprintf(y, sizeof y,
           "pipelines:\n  - {name: clean, kind: transcribe_clean, asr: asr, llm: light}\n"
           "  - name: talk\n    kind: voice\n    asr: asr\n    llm: lm\n    tts: speak\n    voice: "
           "en-us\n"
           "    instruction: Be brief.\n    max_tokens: 64\n    temperature: 0.5\n    "
           "sentence_chars: 40\n%s",
           models);
  matrix *m = ut_load_ok(y);
  assert_int_equal(m->n_pipelines, 2);
  const matrix_pipeline *c = matrix_find_pipeline(m, "clean"), *t = matrix_find_pipeline(m, "talk");
  assert_non_null(c);
  assert_non_null(t);
  assert_null(matrix_find(m, "clean")); /* a pipeline is not a model */
  assert_int_equal(c->kind, MATRIX_PIPE_TRANSCRIBE_CLEAN);
  assert_string_equal(c->asr, "asr");
  assert_string_equal(c->llm, "light");
  assert_null(c->tts);
  assert_null(c->instruction); /* MATRIX_CLEAN_PROMPT at run time */
  assert_int_equal(c->max_tokens, 1024);
  assert_true(c->temperature == 0.0);
  assert_int_equal(t->kind, MATRIX_PIPE_VOICE);
  assert_string_equal(t->tts, "speak");
  assert_string_equal(t->voice, "en-us");
  assert_string_equal(t->instruction, "Be brief.");
  assert_int_equal(t->max_tokens, 64);
  assert_true(t->temperature == 0.5);
  assert_int_equal(t->sentence_chars, 40);
  assert_string_equal(matrix_pipeline_kind_name(t->kind), "voice");
  matrix_free(m);
  /* a voice pipeline needs no asr (text in, speech out) */
  snprintf(y, sizeof y, "pipelines:\n  - {name: v, kind: voice, llm: lm, tts: speak}\n%s", models);
  m = ut_load_ok(y);
  assert_null(m->pipelines[0].asr);
  assert_true(m->pipelines[0].temperature < 0);
  assert_int_equal(m->pipelines[0].sentence_chars, 200);
  matrix_free(m);

  static const struct {
    const char *p, *want;
  } bad[] = {
      {"pipelines:\n  - {kind: voice}\n", "2:5: pipelines[0]: missing required key 'name'"},
      {"pipelines:\n  - {name: x, kind: music, llm: lm}\n",
       "2:21: pipelines[0].kind: unknown kind 'music' (known: transcribe_clean, voice)"},
      {"pipelines:\n  - {name: x, llm: lm}\n",
       "2:5: pipelines[0]: missing required key 'kind' (transcribe_clean or voice)"},
      {"pipelines:\n  - {name: x, kind: transcribe_clean, llm: lm}\n",
       "2:5: pipelines[0]: a transcribe_clean pipeline needs the step 'asr'"},
      {"pipelines:\n  - {name: x, kind: voice, llm: lm}\n",
       "2:5: pipelines[0]: a voice pipeline needs the step 'tts'"},
      {"pipelines:\n  - {name: x, kind: transcribe_clean, asr: asr, llm: lm, tts: speak}\n",
       "2:63: pipelines[0].tts: only a voice pipeline has a tts step"},
      {"pipelines:\n  - {name: lm, kind: voice, llm: lm, tts: speak}\n",
       "2:12: pipelines[0].name: 'lm' is already used by model 'lm' ({F}:5)"},
      {"pipelines:\n  - {name: speak, kind: voice, llm: lm, tts: speak}\n",
       "2:12: pipelines[0].name: 'speak' is already used by model 'speak' ((built-in))"},
      {"pipelines:\n  - {name: x, kind: voice, llm: lm, tts: speak}\n  - {name: x, kind: voice, "
       "llm: lm, tts: speak}\n",
       "3:12: pipelines[1].name: 'x' is already used by pipeline 'x' ({F}:2)"},
      {"pipelines:\n  - {name: x, kind: voice, llm: nope, tts: speak}\n",
       "2:33: pipelines[0].llm: no model is named 'nope'"},
      {"pipelines:\n  - {name: x, kind: voice, llm: base, tts: speak}\n",
       "2:33: pipelines[0].llm: model 'base' cannot chat (its capabilities: completion)"},
      {"pipelines:\n  - {name: x, kind: voice, llm: lm, tts: asr}\n",
       "2:42: pipelines[0].tts: model 'asr' cannot speak (its capabilities: transcribe)"},
      {"pipelines:\n  - {name: x, kind: transcribe_clean, asr: lm, llm: lm}\n",
       "2:44: pipelines[0].asr: model 'lm' cannot transcribe (its capabilities: chat,completion)"},
      {"pipelines:\n  - {name: x, kind: voice, llm: lm, tts: speak, temperature: hot}\n",
       "2:62: pipelines[0].temperature: expected a number from 0 to 2, got 'hot'"},
      {"pipelines:\n  - {name: x, kind: voice, llm: lm, tts: speak, sentence_chars: 2}\n",
       "2:65: pipelines[0].sentence_chars: 2 is out of range (8..4000)"},
      {"pipelines:\n  - {name: x, kind: transcribe_clean, asr: asr, llm: lm, voice: a}\n",
       "2:65: pipelines[0].voice: only a voice pipeline has a voice"},
      {"pipelines:\n  - {name: x, kind: voice, llm: lm, tts: speak, steps: []}\n",
       "2:49: pipelines[0].steps: unknown key"},
      {"pipelines: {name: x}\n", "1:12: pipelines: expected a list, got a mapping"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(y, sizeof y, "%s%s", bad[i].p, models);
    ut_load_bad(y, bad[i].want);
  }
  /* builtin_voice: false: speak is no model any more */
  snprintf(y, sizeof y,
           "builtin_voice: false\npipelines:\n  - {name: x, kind: voice, llm: lm, tts: speak}\n%s",
           models);
  ut_load_bad(y, "3:42: pipelines[0].tts: no model is named 'speak'");
  /* a router may not take a pipeline's name */
  snprintf(y, sizeof y,
           "pipelines:\n  - {name: x, kind: voice, llm: lm, tts: speak}\n%s"
           "routers:\n  - {name: x, routes: {a: lm}, default: a}\n",
           models);
  ut_load_bad(y, "8:12: routers[0].name: 'x' is already used by pipeline 'x' ({D}/config.yaml:2)");
}

/* The model keys are checked in a fixed order (the rows of matrix_model.c's table), not in the
 * document's: with several errors the same one is reported every time. */
static void test_key_order(void **state) {
  (void)state;
  write_gguf("m.gguf", BASE);
  /* priority is checked before context, though written after it */
  ut_load_bad("models:\n  - name: a\n    context: 8\n    priority: 5000\n    file: m.gguf\n",
              "4:15: models[0].priority: 5000 is out of range (-1000..1000)");
  /* the capabilities a projector must back, before transcribe_prompt */
  ut_load_bad(
      "models:\n  - name: a\n    file: m.gguf\n    transcribe_prompt: hi\n    capabilities: "
      "[vision]\n",
      "5:19: models[0].capabilities: vision needs an mmproj");
  /* the engine's own checks before the missing file */
  ut_load_bad("models:\n  - name: a\n    vad_model: x\n",
              "3:16: models[0].vad_model: only for engine: whisper");
  /* an external engine names the first key it does not take: file before pooling */
  ut_load_bad(
      "models:\n  - {name: a, engine: external, pooling: mean, file: x, external: {argv: [x]}}\n",
      "2:54: models[0].file: not for engine: external");
  /* a null mmproj is no projector */
  matrix *m = ut_load_ok("models:\n  - {name: a, file: m.gguf, mmproj: ~, max_queue: 7}\n");
  assert_null(m->models[0].mmproj);
  assert_int_equal(m->models[0].max_queue, 7);
  assert_int_equal(m->models[0].priority, 0);
  matrix_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_all_keys, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_defaults, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_capabilities, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_rpc, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_keep_alive_forms, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_bad_structure, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_bad_values, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_bad_models, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_cpu_moe, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_engines, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_missing_config, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_discovery, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_mmproj, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_mmproj_audio, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_mmproj_speech, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_discovery_real_file, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_external, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_pipelines, ut_setup, ut_teardown),
      cmocka_unit_test_setup_teardown(test_key_order, ut_setup, ut_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
