/* moe_hybrid.c — the mixture-of-experts and hybrid (attention + recurrent) text architectures
 * through the daemon, one family each on its tiny model from tests/models.sh: qwen3moe
 * (Qwen3-30B-A3B), qwen3next (Qwen3-Coder-Next), qwen35 and qwen35moe (Qwen3.5), nemotron_h_moe
 * (Nemotron-3-Nano). Per family, on a daemon of its own: a chat, a tool call forced through the
 * model's own template, two requests at once on two slots (each its own recurrent state), the
 * context limit (no context shift: a recurrent state cannot drop tokens, so generation stops at
 * the context and a longer prompt is refused), an unload and a reload, the memory estimate
 * against the measured resident set, and the experts kept in host RAM (cpu_moe / n_cpu_moe).
 * Must never happen: a crash or hang of a worker, a slot's state leaking into another's answer
 * count, a reply past the context.
 *
 * Asserts on shape and counts, never on the random models' text; never sleeps to synchronise. */
#include "harness.h"

#define MH_CONTEXT \
  512                /* tokens per sequence: room for a template with tools, and reached quickly */
#define MH_TOKENS 12 /* generated per request (ignore_eos: exactly this many) */
#define MH_SLACK (64LL << 20)
#define MH_OVER 6 /* the estimate may be this many times the measurement, no more */
/* The documented bound (docs/MODELS.md): measured resident set <= 2 x estimate + 64 MiB, and
 * estimate <= 6 x measured. The estimate is llama-fit-params's (weights, KV and recurrent state,
 * compute buffers) + 16 MiB; the measurement is the worker's VmRSS after a request. On these
 * tiny models the probe's worst-case compute buffer (148 MiB) dominates: 337 MiB estimated,
 * 75-92 MiB measured. */

typedef struct mh_family {
  const char *name; /* the model's name in B's config */
  const char *file; /* in it_models_dir */
  bool moe;         /* has experts: the cpu_moe entries too */
  bool tools;       /* its template renders tools (the tiny-hybrid's chatml does not) */
} mh_family;

static const mh_family families[] = {
    {"qwen3moe", "tiny-qwen3moe.gguf", true, true},
    {"qwen3next", "tiny-qwen3next.gguf", true, true},
    {"qwen35", "tiny-qwen35.gguf", false, true},
    {"qwen35moe", "tiny-qwen35moe.gguf", true, true},
    {"nemotron", "tiny-nemotron-h-moe.gguf", true, true},
};

static const mh_family *cur; /* the family the daemon B of the running test serves */

static const char *weather_tool =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a "
    "city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"unit\":{\"type\":\"string\","
    "\"enum\":[\"c\",\"f\"]}},\"required\":[\"unit\"],\"additionalProperties\":false}}}]";

/* A chat on B: status, completion tokens, prompt tokens and finish reason in the out params. */
static long mh_chat(json_t *body, long long *completion, long long *prompt, char *finish,
                    size_t flen) {
  resp r;
  it_b_chat(body, &r);
  long st = r.status;
  *completion = it_jnum(r.json, "usage.completion_tokens");
  *prompt = it_jnum(r.json, "usage.prompt_tokens");
  snprintf(finish, flen, "%s", it_jstr(r.json, "choices.0.finish_reason") ?: "");
  it_resp_clear(&r);
  return st;
}

static void mh_body(void) {
  const char *m = cur->name;
  long long ct = 0, pt = 0;
  char fin[32];

  /* a chat: an answer of the counted length */
  CHECK(it_b_load(m) == 200, "load %s", m);
  long st = mh_chat(it_long_chat_body(m, "Hello, who are you?", MH_TOKENS, false), &ct, &pt, fin,
                    sizeof fin);
  CHECK(st == 200 && ct == MH_TOKENS && pt > 0 && !strcmp(fin, "length"),
        "chat: %ld, %lld tokens of %d, prompt %lld, finish %s", st, ct, MH_TOKENS, pt, fin);

  /* a tool call forced through the model's own template (its format detected from it) */
  if (cur->tools) {
    json_t *q = it_chat_body(m, "What is the weather in Oslo?", 60, false);
    json_object_set_new(q, "tools", json_loads(weather_tool, 0, NULL));
    json_object_set_new(
        q, "tool_choice",
        json_loads("{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}", 0, NULL));
    resp r;
    it_b_chat(q, &r);
    const char *name = it_jstr(r.json, "choices.0.message.tool_calls.0.function.name");
    const char *args = it_jstr(r.json, "choices.0.message.tool_calls.0.function.arguments");
    json_t *a = args ? json_loads(args, 0, NULL) : NULL;
    const char *unit = json_string_value(json_object_get(a, "unit"));
    bool ok = r.status == 200 && name && !strcmp(name, "get_weather") && unit &&
              (!strcmp(unit, "c") || !strcmp(unit, "f")) &&
              it_str_is(it_jstr(r.json, "choices.0.finish_reason"), "tool_calls");
    json_decref(a);
    if (!ok) {
      CHECK(ok, "forced tool call: %ld %.600s", r.status, r.body.data ? r.body.data : "");
    }
    it_resp_clear(&r);
  }

  /* two requests at once: each slot its own sequence (and recurrent state), both run to their
   * full length */
  it_bg_req a = {0}, b = {0};
  it_bg_chat(&a, &B, it_long_chat_body(m, "Tell me a story about a fox.", MH_TOKENS, false));
  it_bg_chat(&b, &B, it_long_chat_body(m, "List some prime numbers.", MH_TOKENS + 4, false));
  it_bg_join(&a);
  it_bg_join(&b);
  long long ca = it_jnum(a.r.json, "usage.completion_tokens");
  long long cb = it_jnum(b.r.json, "usage.completion_tokens");
  long sa = a.r.status, sb = b.r.status;
  it_resp_clear(&a.r);
  it_resp_clear(&b.r);
  CHECK(sa == 200 && sb == 200 && ca == MH_TOKENS && cb == MH_TOKENS + 4,
        "two at once: %ld (%lld tokens) and %ld (%lld tokens)", sa, ca, sb, cb);

  /* the context limit: no context shift, generation stops when the context is full (every token
   * but the last one sampled is in it); a longer prompt is refused */
  st = mh_chat(it_long_chat_body(m, "Go on and on.", 4 * MH_CONTEXT, false), &ct, &pt, fin,
               sizeof fin);
  CHECK(st == 200 && !strcmp(fin, "length") && pt + ct >= MH_CONTEXT && pt + ct <= MH_CONTEXT + 1 &&
            ct > 0,
        "up to the context: %ld, prompt %lld + %lld tokens (context %d), finish %s", st, pt, ct,
        MH_CONTEXT, fin);
  char longp[8192];
  it_words(longp, sizeof longp, 3 * MH_CONTEXT, 1);
  resp r;
  it_b_chat(it_chat_body(m, longp, 4, false), &r);
  bool refused = it_is_error(&r, 400, "context_length_exceeded");
  long rst = r.status;
  it_resp_clear(&r);
  CHECK(refused, "a prompt over the context: %ld", rst);

  /* the estimate against the measured resident set, within the documented bound */
  json_t *ps = it_b_ps_model(m);
  long long est = it_jnum(ps, "size_estimated"), meas = it_jnum(ps, "size_measured");
  long long pid = it_jnum(ps, "pid");
  json_decref(ps);
  CHECK(est > 0 && meas > 0 && meas <= 2 * est + MH_SLACK && est <= MH_OVER * meas,
        "estimate %lld vs measured %lld bytes (bound: measured <= 2 x estimate + 64 MiB, "
        "estimate <= %d x measured)",
        est, meas, MH_OVER);

  /* unload, then a request loads it again (a new worker) */
  char body[128];
  snprintf(body, sizeof body, "{\"model\":\"%s\"}", m);
  it_http_do(&B, "POST", "/api/unload", body, &r, NULL);
  st = r.status;
  it_resp_clear(&r);
  CHECK(st == 200, "unload: %ld", st);
  st = mh_chat(it_long_chat_body(m, "Hello again.", MH_TOKENS, false), &ct, &pt, fin, sizeof fin);
  CHECK(st == 200 && ct == MH_TOKENS, "after a reload: %ld, %lld tokens", st, ct);
  long long pid2 = it_b_ps_pid(m);
  CHECK(pid2 > 0 && pid2 != pid, "a new worker: pid %lld, before %lld", pid2, pid);

  if (!cur->moe) return;
  /* experts in host RAM: every layer's, and the first layer's; both serve (on this CPU-only
   * machine everything is host memory: the split itself is test_footprint's) */
  static const char *const cmoe[] = {"-cmoe", "-ncmoe"};
  for (size_t i = 0; i < sizeof cmoe / sizeof *cmoe; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s%s", m, cmoe[i]);
    st = mh_chat(it_long_chat_body(name, "Hello.", MH_TOKENS, false), &ct, &pt, fin, sizeof fin);
    CHECK(st == 200 && ct == MH_TOKENS, "%s: %ld, %lld tokens", name, st, ct);
    ps = it_b_ps_model(name);
    const char *dev = it_jstr(ps, "devices.0.device");
    bool host = dev && !strcmp(dev, "Host") && it_jnum(ps, "devices.0.estimated") > 0;
    json_decref(ps);
    CHECK(host, "%s is counted in host RAM", name);
  }
}

static void t_family(const char *name) {
  cur = NULL;
  for (size_t i = 0; i < sizeof families / sizeof *families; i++)
    if (!strcmp(families[i].name, name)) cur = &families[i];
  if (!cur) {
    snprintf(it_cur_skip, sizeof it_cur_skip, "no family %s", name);
    return;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/%s", it_models_dir, cur->file);
  if (access(path, R_OK) != 0) {
    snprintf(it_cur_skip, sizeof it_cur_skip, "%.200s is missing (tests/models.sh)", path);
    return;
  }
  char y[4096];
  int n = snprintf(y, sizeof y,
                   "log_level: warn\nmodels:\n"
                   "  - {name: %s, file: %s, context: %d, parallel: 2, gpu_layers: 0}\n",
                   cur->name, path, MH_CONTEXT);
  if (cur->moe && n > 0 && (size_t)n < sizeof y)
    snprintf(y + n, sizeof y - (size_t)n,
             "  - {name: %s-cmoe, file: %s, context: %d, parallel: 1, gpu_layers: 0, "
             "cpu_moe: true}\n"
             "  - {name: %s-ncmoe, file: %s, context: %d, parallel: 1, gpu_layers: 0, "
             "n_cpu_moe: 1}\n",
             cur->name, path, MH_CONTEXT, cur->name, path, MH_CONTEXT);
  it_with_own_daemon(cur->name, y, mh_body);
}

static void t_qwen3moe(void) { t_family("qwen3moe"); }
static void t_qwen3next(void) { t_family("qwen3next"); }
static void t_qwen35(void) { t_family("qwen35"); }
static void t_qwen35moe(void) { t_family("qwen35moe"); }
static void t_nemotron(void) { t_family("nemotron"); }

/* cpu_moe on a model without experts is a configuration error that names the key. */
static void t_cpu_moe_refused(void) {
  char path[512], cfg[600], y[1024];
  snprintf(path, sizeof path, "%s/tiny-qwen35.gguf", it_models_dir);
  if (access(path, R_OK) != 0) {
    snprintf(it_cur_skip, sizeof it_cur_skip, "%.200s is missing (tests/models.sh)", path);
    return;
  }
  snprintf(cfg, sizeof cfg, "%s/cmoe-bad.yaml", it_tmpdir);
  snprintf(y, sizeof y, "models:\n  - {name: dense, file: %s, cpu_moe: true}\n", path);
  it_write_file(cfg, y);
  daemon_proc d = {0};
  int rc = it_start_daemon(&d, cfg);
  if (rc == 0) it_stop_daemon(&d);
  CHECK(rc != 0, "a daemon started with cpu_moe on a model without experts");
}

static const it_test tests[] = {
    {"moe_qwen3moe", t_qwen3moe, false},    {"hybrid_qwen3next", t_qwen3next, false},
    {"hybrid_qwen35", t_qwen35, false},     {"hybrid_qwen35moe", t_qwen35moe, false},
    {"hybrid_nemotron", t_nemotron, false}, {"cpu_moe_refused", t_cpu_moe_refused, false},
};
const itest_table itest_moe_hybrid = {"moe_hybrid", tests, sizeof tests / sizeof *tests};
