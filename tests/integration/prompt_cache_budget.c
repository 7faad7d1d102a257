/* prompt_cache_budget.c — the prompt cache in the memory budget (docs/PROMPT_CACHE.md, "In the
 * budget"; plan.h rule 6) on daemon B with two tiny-qwen2 models: A, whose prompt cache may be
 * large, and B, without one. A first start with a budget the size of the machine measures both
 * models' footprints (/api/ps "size": what the budget counts for each, remembered in the daemon's
 * state folder); the second start gets a budget of exactly those two footprints plus a little, so
 * that A's cache takes the rest of the room while A is alone, and loading B must cut it.
 * Must never happen: a model evicted, a request kept waiting or refused (memory_busy) because of
 * a prompt cache; a cache's limit left beyond the room; a worker holding more than its limit once
 * told.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a response, a bounded poll of /api/ps). No machine-specific numbers: the budget is
 * computed from what the first start reports. */
#include "harness.h"

#define PCB_NAME "prompt_cache_budget" /* both starts: one config path, one state folder */
#define PCB_MARGIN (16LL << 20)        /* beyond the two footprints: A's cache once B loads */
#define PCB_WORDS 70     /* per prompt: well over the worker's 32 tokens to save a state */
#define PCB_POLLS 100000 /* bound of a poll of /api/ps */

/* What the first start measured: the budget's count of each model (bytes). */
static long long pcb_size_a, pcb_size_b;

/* A text of about n words ending with "." (salt changes them). */
static void pcb_text(char *out, size_t cap, int n, int salt) {
  static const char *const words[] = {"harbor",  "copper", "meadow", "lantern", "canyon",  "violet",
                                      "thunder", "pebble", "saddle", "glacier", "orchard", "ember"};
  size_t len = 0;
  out[0] = 0;
  for (int k = 0; k < n && len + 16 < cap; k++)
    len += (size_t)snprintf(out + len, cap - len, "%s%s", k ? " " : "",
                            words[(size_t)(k * 5 + salt) % (sizeof words / sizeof *words)]);
  snprintf(out + len, cap - len, ".");
}

/* A greedy one-token completion on B: its status. */
static long pcb_complete(const char *model, const char *prompt) {
  json_t *q = json_pack("{s:s, s:s, s:i, s:f}", "model", model, "prompt", prompt, "max_tokens", 1,
                        "temperature", 0.0);
  char *body = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  resp r;
  it_http_do(&B, "POST", "/v1/completions", body, &r, NULL);
  free(body);
  long st = r.status;
  it_resp_clear(&r);
  return st;
}

/* Two conversations taking turns on A's one slot: each turn takes the slot from the other, whose
 * state goes to A's prompt cache in RAM. True when every request got a 200. */
static bool pcb_serve_a(void) {
  char p[2][2048];
  pcb_text(p[0], sizeof p[0], PCB_WORDS, 0);
  pcb_text(p[1], sizeof p[1], PCB_WORDS, 7);
  bool ok = true;
  for (int turn = 0; turn < 4; turn++) ok &= pcb_complete("pcb-a", p[turn % 2]) == 200;
  return ok;
}

/* A's prompt cache as /api/ps shows it: bytes held, entries, limit (-1 each when not listed). */
static void pcb_cache_of_a(long long *bytes, long long *entries, long long *limit) {
  json_t *m = it_b_ps_model("pcb-a");
  *bytes = it_jnum(m, "prompt_cache.bytes");
  *entries = it_jnum(m, "prompt_cache.entries");
  *limit = it_jnum(m, "prompt_cache.limit");
  json_decref(m);
}

/* The model's /api/ps "size" (what the budget counts for it, its cache aside), -1 when not
 * listed. */
static long long pcb_size(const char *name) {
  json_t *m = it_b_ps_model(name);
  long long s = it_jnum(m, "size");
  json_decref(m);
  return s;
}

/* First start (a budget the size of the machine): serve A as the test will, load B, read both
 * footprints. */
static void measure_body(void) {
  CHECK(pcb_serve_a(), "A served its requests");
  CHECK(pcb_complete("pcb-b", "hello.") == 200, "B served a request");
  pcb_size_a = pcb_size("pcb-a");
  pcb_size_b = pcb_size("pcb-b");
  CHECK(pcb_size_a > 0 && pcb_size_b > 0, "both listed with a size: %lld, %lld", pcb_size_a,
        pcb_size_b);
}

/* Second start (a budget of both footprints plus PCB_MARGIN): A alone takes the rest for its
 * cache; B loads by cutting it, with A still loaded. */
static void squeeze_body(void) {
  CHECK(pcb_serve_a(), "A served its requests");
  long long bytes, entries, before;
  pcb_cache_of_a(&bytes, &entries, &before);
  CHECK(before > 0, "A's cache has a share of the budget while A is alone: limit %lld", before);
  CHECK(entries >= 1 && bytes > 0 && bytes <= before,
        "A's cache holds saved states within its limit: %lld entries, %lld of %lld bytes", entries,
        bytes, before);

  resp r;
  it_b_chat(it_chat_body("pcb-b", "hello", 2, false), &r);
  long st = r.status;
  const char *code = it_jstr(r.json, "error.code");
  char why[64];
  snprintf(why, sizeof why, "%s", code ? code : "-");
  it_resp_clear(&r);
  CHECK(st == 200, "B loads beside A: %ld (%s)", st, why);

  json_t *a = it_b_ps_model("pcb-a"), *b = it_b_ps_model("pcb-b");
  const char *a_state = it_jstr(a, "state");
  bool a_loaded = a_state && strcmp(a_state, "loaded") == 0, b_listed = b != NULL;
  json_decref(a);
  json_decref(b);
  CHECK(a_loaded && b_listed, "A was not evicted: A %s, B %s", a_loaded ? "loaded" : "gone",
        b_listed ? "listed" : "not listed");
  long long after;
  pcb_cache_of_a(&bytes, &entries, &after);
  CHECK(after >= 0 && after < before, "A's cache was cut to make room: limit %lld -> %lld", before,
        after);
  it_http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  long long used = it_jnum(r.json, "memory.used"), budget = it_jnum(r.json, "memory.budget");
  it_resp_clear(&r);
  CHECK(used <= budget, "counted %lld (caches' limits included) within the budget %lld", used,
        budget);

  /* the worker obeys the new limit (it tells its size when it changes) */
  for (int i = 0; i < PCB_POLLS && !(bytes >= 0 && bytes <= after); i++)
    pcb_cache_of_a(&bytes, &entries, &after);
  CHECK(bytes >= 0 && bytes <= after, "A's worker holds %lld bytes, over its limit %lld", bytes,
        after);

  it_http_do(&B, "GET", "/metrics", NULL, &r, NULL);
  double g =
      it_metric(r.body.data ? r.body.data : "", "switchyard_prompt_cache_bytes{model=\"pcb-a\"}");
  it_resp_clear(&r);
  CHECK(g >= 0, "/metrics: A's prompt cache gauge missing (%g)", g);
}

static void t_prompt_cache_budget(void) {
  static const char models[] =
      "models:\n"
      "  - {name: pcb-a, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 1, keep_alive: -1, "
      "prompt_cache_ram: 64GiB, prompt_cache_disk: 0, gpu_layers: 0}\n"
      "  - {name: pcb-b, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1, keep_alive: -1, "
      "prompt_cache_ram: 0, prompt_cache_disk: 0, gpu_layers: 0}\n";
  char yaml[2048], m[1024];
  snprintf(m, sizeof m, models, it_models_dir, it_models_dir);
  snprintf(yaml, sizeof yaml, "log_level: warn\n%s", m);
  it_with_own_daemon(PCB_NAME, yaml, measure_body);
  if (it_cur_failed) return;
  snprintf(yaml, sizeof yaml, "log_level: warn\nmemory: {budget: %lld}\n%s",
           pcb_size_a + pcb_size_b + PCB_MARGIN, m);
  it_with_own_daemon(PCB_NAME, yaml, squeeze_body);
}

static const it_test tests[] = {
    {"prompt_cache_budget", t_prompt_cache_budget, false},
};
const itest_table itest_prompt_cache_budget = {"prompt_cache_budget", tests,
                                               sizeof tests / sizeof *tests};
