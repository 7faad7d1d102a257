/* prompt_cache.c — prompt-prefix reuse (docs/PROMPT_CACHE.md) on daemon B with tiny-qwen2:
 *   - exact counts: a prompt extending the last one keeps all of its tokens; the same prompt again
 *     keeps all but its last; two conversations on two slots each come back to their own slot;
 *     cache_prompt: false keeps nothing;
 *   - batch-invariant mode keeps whole chunks only (multiples of `batch`), and a multi-turn chat
 *     answers exactly as it does without the cache (greedy);
 *   - the counts reach usage.prompt_tokens_details.cached_tokens, timings.cache_n and /metrics;
 *   - a hybrid model (tiny-hybrid: Qwen3-Next's attention + recurrent layers) keeps its state only
 *     whole, and a multi-turn chat answers exactly as it does without the cache.
 * Prompts end with "." and go on with " word": the tokenizer never merges across that boundary,
 * so the shared prefix is the first prompt's tokens exactly. Texts are compared only between
 * requests on the same model, settings and path (greedy): never against fixed strings. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PC_BATCH 32 /* the batch-invariant model's batch: what it keeps is a multiple of it */

/* A text of about n words ending with "." (word k of a fixed list; salt changes them). */
static void pc_text(char *out, size_t cap, int n, int salt) {
  static const char *const words[] = {"river", "stone",  "light",  "garden", "window", "paper",
                                      "music", "orange", "silver", "forest", "market", "winter"};
  size_t len = 0;
  out[0] = 0;
  for (int k = 0; k < n && len + 16 < cap; k++)
    len += (size_t)snprintf(out + len, cap - len, "%s%s", k ? " " : "",
                            words[(size_t)(k * 7 + salt) % (sizeof words / sizeof *words)]);
  snprintf(out + len, cap - len, ".");
}

typedef struct pc_out {
  long status;
  long long prompt, cached, cache_n;
  char text[512];
} pc_out;

/* A greedy completion on B: prompt, max_tokens, cache_prompt (-1: not sent). */
static pc_out pc_complete(const char *model, const char *prompt, int max_tokens, int cache) {
  json_t *q = json_pack("{s:s, s:s, s:i, s:f}", "model", model, "prompt", prompt, "max_tokens",
                        max_tokens, "temperature", 0.0);
  if (cache >= 0) json_object_set_new(q, "cache_prompt", json_boolean(cache));
  char *body = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  resp r;
  it_http_do(&B, "POST", "/v1/completions", body, &r, NULL);
  free(body);
  pc_out o = {r.status, it_jnum(r.json, "usage.prompt_tokens"),
              it_jnum(r.json, "usage.prompt_tokens_details.cached_tokens"),
              it_jnum(r.json, "timings.cache_n"), ""};
  const json_t *t = json_object_get(json_array_get(json_object_get(r.json, "choices"), 0), "text");
  snprintf(o.text, sizeof o.text, "%s", json_is_string(t) ? json_string_value(t) : "(none)");
  it_resp_clear(&r);
  return o;
}

/* A greedy chat turn on B: messages (borrowed), answer appended to them by the caller. */
static pc_out pc_chat(const char *model, json_t *messages, int cache) {
  json_t *q = json_pack("{s:s, s:O, s:i, s:f}", "model", model, "messages", messages, "max_tokens",
                        12, "temperature", 0.0);
  if (cache >= 0) json_object_set_new(q, "cache_prompt", json_boolean(cache));
  char *body = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  resp r;
  it_http_do(&B, "POST", "/v1/chat/completions", body, &r, NULL);
  free(body);
  pc_out o = {r.status, it_jnum(r.json, "usage.prompt_tokens"),
              it_jnum(r.json, "usage.prompt_tokens_details.cached_tokens"),
              it_jnum(r.json, "timings.cache_n"), ""};
  const char *t = it_jstr(r.json, "choices.0.message.content");
  snprintf(o.text, sizeof o.text, "%s", t ? t : "(none)");
  it_resp_clear(&r);
  return o;
}

static void exact_body(void) {
  char p1[2048], p2[4096], p3[2048], q1[4096];
  pc_text(p1, sizeof p1, 60, 0);
  snprintf(p2, sizeof p2, "%s", p1);
  pc_text(p2 + strlen(p1) + 1, sizeof p2 - strlen(p1) - 1, 20, 3);
  p2[strlen(p1)] = ' ';
  pc_text(p3, sizeof p3, 50, 5); /* another conversation */
  snprintf(q1, sizeof q1, "%s", p3);
  pc_text(q1 + strlen(p3) + 1, sizeof q1 - strlen(p3) - 1, 10, 1);
  q1[strlen(p3)] = ' ';

  /* max_tokens 1: the one sampled token is never decoded, so the cache is the prompt exactly */
  pc_out a1 = pc_complete("pc-fast", p1, 1, -1);
  CHECK(a1.status == 200 && a1.prompt > 0, "first prompt: %ld, %lld tokens", a1.status, a1.prompt);
  CHECK(a1.cached == 0 && a1.cache_n == 0, "a fresh slot keeps nothing: cached %lld, cache_n %lld",
        a1.cached, a1.cache_n);
  pc_out b1 = pc_complete("pc-fast", p3, 1, -1); /* the other slot (the first keeps p1) */
  CHECK(b1.status == 200 && b1.cached == 0, "another conversation: %ld, cached %lld", b1.status,
        b1.cached);
  pc_out a2 = pc_complete("pc-fast", p2, 1, -1);
  CHECK(a2.status == 200 && a2.cached == a1.prompt && a2.prompt > a1.prompt,
        "a prompt extending the first keeps all %lld of its tokens: cached %lld of %lld", a1.prompt,
        a2.cached, a2.prompt);
  CHECK(a2.cache_n == a2.cached, "timings.cache_n %lld = cached_tokens %lld", a2.cache_n,
        a2.cached);
  pc_out b2 = pc_complete("pc-fast", q1, 1, -1);
  CHECK(b2.status == 200 && b2.cached == b1.prompt,
        "the other conversation finds its own slot: cached %lld (its last prompt: %lld)", b2.cached,
        b1.prompt);
  pc_out a3 = pc_complete("pc-fast", p2, 1, -1);
  CHECK(a3.status == 200 && a3.cached == a2.prompt - 1,
        "the same prompt again keeps all but its last token: cached %lld of %lld", a3.cached,
        a3.prompt);
  pc_out a4 = pc_complete("pc-fast", p2, 1, 0);
  CHECK(a4.status == 200 && a4.cached == 0, "cache_prompt false keeps nothing: cached %lld",
        a4.cached);

  resp r;
  it_http_do(&B, "GET", "/metrics", NULL, &r, NULL);
  const char *m = r.body.data ? r.body.data : "";
  double tokens = it_metric(m, "switchyard_prompt_cached_tokens_total{model=\"pc-fast\"}");
  double hits = it_metric(m, "switchyard_prompt_cache_hits_total{model=\"pc-fast\"}");
  double misses = it_metric(m, "switchyard_prompt_cache_misses_total{model=\"pc-fast\"}");
  CHECK(tokens == (double)(a2.cached + b2.cached + a3.cached) && hits == 3 && misses == 3,
        "/metrics: cached tokens %.0f (want %lld), hits %.0f (3), misses %.0f (3)", tokens,
        a2.cached + b2.cached + a3.cached, hits, misses);
  it_resp_clear(&r);

  /* bad input: the field's own error */
  resp e;
  it_http_do(&B, "POST", "/v1/completions",
             "{\"model\":\"pc-fast\",\"prompt\":\"x\",\"cache_prompt\":\"yes\"}", &e, NULL);
  CHECK(it_is_error(&e, 400, "invalid_type") &&
            it_str_is(it_jstr(e.json, "error.param"), "cache_prompt"),
        "cache_prompt \"yes\": %ld %s", e.status, e.body.data ? e.body.data : "");
  it_resp_clear(&e);
}

static void invariant_body(void) {
  char p1[4096], p2[8192];
  pc_text(p1, sizeof p1, 150, 2);
  snprintf(p2, sizeof p2, "%s", p1);
  pc_text(p2 + strlen(p1) + 1, sizeof p2 - strlen(p1) - 1, 40, 4);
  p2[strlen(p1)] = ' ';
  pc_out a1 = pc_complete("pc-det", p1, 6, -1);
  pc_out a2 = pc_complete("pc-det", p2, 6, -1);
  pc_out ref = pc_complete("pc-det", p2, 6, 0);
  long long want = a1.prompt - a1.prompt % PC_BATCH;
  CHECK(a1.status == 200 && a2.status == 200 && ref.status == 200, "answers: %ld %ld %ld",
        a1.status, a2.status, ref.status);
  CHECK(a2.cached == want && want > 0,
        "batch-invariant: whole chunks of %d of the first prompt's %lld tokens: cached %lld "
        "(want %lld)",
        PC_BATCH, a1.prompt, a2.cached, want);
  CHECK(ref.cached == 0 && !strcmp(a2.text, ref.text),
        "with and without the cache the same answer: \"%.200s\" vs \"%.200s\"", a2.text, ref.text);

  /* a conversation: every turn answers as it does without the cache */
  json_t *with = json_array(), *without = json_array();
  char sys[4096];
  pc_text(sys, sizeof sys, 120, 6);
  json_array_append_new(with, json_pack("{s:s, s:s}", "role", "system", "content", sys));
  json_array_append_new(without, json_pack("{s:s, s:s}", "role", "system", "content", sys));
  long long reused = 0;
  for (int turn = 0; turn < 3; turn++) {
    char user[256];
    pc_text(user, sizeof user, 8, turn);
    json_array_append_new(with, json_pack("{s:s, s:s}", "role", "user", "content", user));
    json_array_append_new(without, json_pack("{s:s, s:s}", "role", "user", "content", user));
    pc_out c = pc_chat("pc-det", with, -1), n = pc_chat("pc-det", without, 0);
    CHECK(c.status == 200 && n.status == 200, "turn %d: %ld %ld", turn, c.status, n.status);
    CHECK(!strcmp(c.text, n.text), "turn %d: with the cache \"%.200s\", without \"%.200s\"", turn,
          c.text, n.text);
    CHECK(c.cached % PC_BATCH == 0 && c.cached < c.prompt && n.cached == 0,
          "turn %d: cached %lld of %lld (whole chunks), without: %lld", turn, c.cached, c.prompt,
          n.cached);
    if (turn > 0) reused += c.cached;
    json_array_append_new(with, json_pack("{s:s, s:s}", "role", "assistant", "content", c.text));
    json_array_append_new(without, json_pack("{s:s, s:s}", "role", "assistant", "content", n.text));
  }
  CHECK(reused > 0, "later turns reuse the conversation's prefix (%lld tokens)", reused);
  json_decref(with);
  json_decref(without);
}

/* p with n more words appended (salt picks them), in out. */
static void pc_extend(char *out, size_t cap, const char *p, int n, int salt) {
  snprintf(out, cap, "%s", p);
  size_t at = strlen(out);
  if (at + 2 < cap) {
    out[at] = ' ';
    pc_text(out + at + 1, cap - at - 1, n, salt);
  }
}

/* One slot, two conversations taking turns: each turn takes the slot from the other, whose state
 * goes to the RAM cache and comes back from it on its next turn. */
static void ram_body(void) {
  char a1[2048], b1[2048], a2[4096], b2[4096];
  pc_text(a1, sizeof a1, 70, 0);
  pc_text(b1, sizeof b1, 70, 5);
  pc_extend(a2, sizeof a2, a1, 12, 3);
  pc_extend(b2, sizeof b2, b1, 12, 4);
  pc_out ra1 = pc_complete("pc-ram", a1, 1, -1), rb1 = pc_complete("pc-ram", b1, 1, -1);
  pc_out ra2 = pc_complete("pc-ram", a2, 1, -1), rb2 = pc_complete("pc-ram", b2, 1, -1);
  CHECK(ra1.status == 200 && rb1.status == 200 && ra2.status == 200 && rb2.status == 200,
        "answers: %ld %ld %ld %ld", ra1.status, rb1.status, ra2.status, rb2.status);
  CHECK(ra1.cached == 0 && rb1.cached == 0, "first turns: cached %lld, %lld", ra1.cached,
        rb1.cached);
  CHECK(ra2.cached == ra1.prompt, "A comes back from the RAM cache: cached %lld (its prompt: %lld)",
        ra2.cached, ra1.prompt);
  CHECK(rb2.cached == rb1.prompt, "B comes back from the RAM cache: cached %lld (its prompt: %lld)",
        rb2.cached, rb1.prompt);

  /* batch-invariant: restored states keep whole chunks, and answer as without the cache */
  pc_out da1 = pc_complete("pc-ram-det", a1, 4, -1), db1 = pc_complete("pc-ram-det", b1, 4, -1);
  pc_out da2 = pc_complete("pc-ram-det", a2, 4, -1), dref = pc_complete("pc-ram-det", a2, 4, 0);
  long long want = da1.prompt - da1.prompt % PC_BATCH;
  CHECK(da1.status == 200 && db1.status == 200 && da2.status == 200 && dref.status == 200,
        "answers: %ld %ld %ld %ld", da1.status, db1.status, da2.status, dref.status);
  CHECK(da2.cached == want && want > 0, "restored whole chunks: cached %lld (want %lld)",
        da2.cached, want);
  CHECK(dref.cached == 0 && !strcmp(da2.text, dref.text),
        "restored from RAM and computed: the same answer (\"%.200s\" vs \"%.200s\")", da2.text,
        dref.text);
}

static void t_prompt_cache_ram(void) {
  char y[1024];
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: pc-ram, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 1, "
           "prompt_cache_ram: 64MiB, gpu_layers: 0}\n"
           "  - {name: pc-ram-det, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 1, "
           "batch: %d, deterministic: true, prompt_cache_ram: 64MiB, gpu_layers: 0}\n",
           it_models_dir, it_models_dir, PC_BATCH);
  it_with_own_daemon("prompt_cache_ram", y, ram_body);
}

/* The prompt cache folder of daemon B's model (config at cfg): "<cfg>.state/prompt-cache/<name>-…"
 * into out; false when there is none. */
static bool pc_disk_dir(const char *cfg, const char *model, char *out, size_t cap) {
  char base[600];
  snprintf(base, sizeof base, "%s.state/prompt-cache", cfg);
  DIR *d = opendir(base);
  struct dirent *e;
  bool found = false;
  size_t nl = strlen(model);
  while (d && (e = readdir(d)) != NULL && !found)
    if (!strncmp(e->d_name, model, nl) && e->d_name[nl] == '-' && strlen(e->d_name) == nl + 9) {
      snprintf(out, cap, "%s/%s", base, e->d_name);
      found = true;
    }
  if (d) closedir(d);
  return found;
}

/* The *.sypc files of folder dir: their paths (up to max) and count. */
static int pc_files(const char *dir, char paths[][700], int max) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l > 5 && !strcmp(e->d_name + l - 5, ".sypc") && n < max)
      snprintf(paths[n++], 700, "%s/%s", dir, e->d_name);
  }
  if (d) closedir(d);
  return n;
}

static void pc_unload(const char *model) {
  char body[128];
  snprintf(body, sizeof body, "{\"model\":\"%s\"}", model);
  resp r;
  it_http_do(&B, "POST", "/api/unload", body, &r, NULL);
  CHECK(r.status == 200, "unload %s: %ld", model, r.status);
  it_resp_clear(&r);
}

static char pc_cfg[512], pc_log[512];

/* Conversations survive an unload and a daemon restart through the disk cache; damaged files are
 * rejected with a log line and never used. */
static void disk_body(void) {
  char a1[2048], b1[2048], a2[4096], b2[4096];
  pc_text(a1, sizeof a1, 70, 0);
  pc_text(b1, sizeof b1, 70, 5);
  pc_extend(a2, sizeof a2, a1, 12, 3);
  pc_extend(b2, sizeof b2, b1, 12, 4);
  pc_out ra1 = pc_complete("pc-disk", a1, 1, -1), rb1 = pc_complete("pc-disk", b1, 1, -1);
  CHECK(ra1.status == 200 && rb1.status == 200, "first turns: %ld %ld", ra1.status, rb1.status);
  pc_unload("pc-disk"); /* A (RAM) and B (its slot) go to disk */
  pc_out ra2 = pc_complete("pc-disk", a2, 1, -1);
  CHECK(ra2.status == 200 && ra2.cached == ra1.prompt,
        "after an unload, A comes back from disk: cached %lld (its prompt: %lld)", ra2.cached,
        ra1.prompt);

  /* batch-invariant: from disk too, whole chunks, the same answer as computing it */
  pc_out da1 = pc_complete("pc-disk-det", a1, 4, -1);
  pc_unload("pc-disk-det");
  pc_out da2 = pc_complete("pc-disk-det", a2, 4, -1), dref = pc_complete("pc-disk-det", a2, 4, 0);
  long long want = da1.prompt - da1.prompt % PC_BATCH;
  CHECK(da2.status == 200 && da2.cached == want && want > 0,
        "batch-invariant, from disk: cached %lld (want %lld)", da2.cached, want);
  CHECK(dref.status == 200 && !strcmp(da2.text, dref.text),
        "restored from disk and computed: the same answer (\"%.200s\" vs \"%.200s\")", da2.text,
        dref.text);

  /* a daemon restart: B's conversation is still there */
  CHECK(it_stop_daemon(&B) == 0, "stop B for a restart");
  CHECK(it_start_daemon(&B, pc_cfg) == 0, "restart B");
  pc_out rb2 = pc_complete("pc-disk", b2, 1, -1);
  CHECK(rb2.status == 200 && rb2.cached == rb1.prompt,
        "after a restart, B comes back from disk: cached %lld (its prompt: %lld)", rb2.cached,
        rb1.prompt);
  pc_out da3 = pc_complete("pc-disk-det", a2, 4, -1);
  CHECK(da3.status == 200 && da3.cached > 0 && da3.cached % PC_BATCH == 0 &&
            !strcmp(da3.text, dref.text),
        "batch-invariant after a restart: cached %lld (whole chunks), the same answer (\"%.200s\" "
        "vs \"%.200s\")",
        da3.cached, da3.text, dref.text);

  /* damaged files: every file of pc-disk truncated, plus a foreign one and a stale copy */
  CHECK(it_stop_daemon(&B) == 0, "stop B to damage its files");
  char dir[700], files[16][700];
  CHECK(pc_disk_dir(pc_cfg, "pc-disk", dir, sizeof dir), "pc-disk has a cache folder");
  int n = pc_files(dir, files, 16);
  CHECK(n >= 2, "pc-disk wrote its states (%d files)", n);
  char stale[760], foreign[760];
  snprintf(stale, sizeof stale, "%s/0123456789abcdef.sypc", dir);
  snprintf(foreign, sizeof foreign, "%s/00000000deadbeef.sypc", dir);
  sy_buf whole = {0};
  CHECK(it_read_whole(files[0], &whole) && whole.len > 24, "read %.300s", files[0]);
  whole.data[16] ^= 0x5a; /* the model key in the header */
  FILE *f = fopen(stale, "wb");
  CHECK(f && fwrite(whole.data, 1, whole.len, f) == whole.len, "write %.300s", stale);
  fclose(f);
  sy_buf_free(&whole);
  it_write_file(foreign, "this is not a prompt cache file, whatever its name says...........");
  for (int k = 0; k < n; k++) CHECK(truncate(files[k], 30) == 0, "truncate %.300s", files[k]);
  it_daemon_log = pc_log;
  int st = it_start_daemon(&B, pc_cfg);
  it_daemon_log = NULL;
  CHECK(st == 0, "restart B with damaged files");
  pc_out ra3 = pc_complete("pc-disk", a2, 1, -1);
  CHECK(ra3.status == 200 && ra3.cached == 0, "damaged files are never used: %ld, cached %lld",
        ra3.status, ra3.cached);
  sy_buf log = {0};
  it_read_whole(pc_log, &log);
  int lines = 0;
  for (const char *p = log.data; p && (p = strstr(p, "prompt cache: ignoring")); p++) lines++;
  bool said = log.data && strstr(log.data, "(foreign)") && strstr(log.data, "(stale)") &&
              strstr(log.data, "truncated");
  sy_buf_free(&log);
  CHECK(lines == n + 2 && said,
        "one log line per rejected file: %d (want %d), foreign, stale and "
        "truncated named: %d",
        lines, n + 2, said);
  char left[16][700];
  CHECK(pc_files(dir, left, 16) == 0, "rejected files are deleted (%d left)",
        pc_files(dir, left, 16));
}

static void t_prompt_cache_disk(void) {
  snprintf(pc_cfg, sizeof pc_cfg, "%s/prompt_cache_disk.yaml", it_tmpdir);
  snprintf(pc_log, sizeof pc_log, "%s/prompt_cache_disk.log", it_tmpdir);
  char state[1200], y[1024];
  snprintf(state, sizeof state, "rm -rf '%s.state' '%s'", pc_cfg, pc_log);
  CHECK(system(state) == 0, "a fresh state folder");
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: pc-disk, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 1, "
           "prompt_cache_ram: 64MiB, prompt_cache_disk: 64MiB, gpu_layers: 0}\n"
           "  - {name: pc-disk-det, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 1, "
           "batch: %d, deterministic: true, prompt_cache_disk: 64MiB, gpu_layers: 0}\n",
           it_models_dir, it_models_dir, PC_BATCH);
  it_with_own_daemon("prompt_cache_disk", y, disk_body);
}

/* A chat with an image on B: turn 1 [user: image + text]; turn 2 adds an assistant answer and a
 * user message. img: a data URL. max_tokens 1 (the cache holds exactly the prompt), cache: -1
 * not sent. */
static pc_out pc_vision(const char *model, const char *img, bool second, int cache, int max) {
  json_t *q = it_vision_body(model, "What is in the picture? Answer in one word.",
                             (const char *const[]){img, NULL});
  json_object_set_new(q, "max_tokens", json_integer(max));
  json_object_del(q, "seed");
  if (second) {
    json_t *m = json_object_get(q, "messages");
    json_array_append_new(m, json_pack("{s:s, s:s}", "role", "assistant", "content", "Sure."));
    json_array_append_new(m, json_pack("{s:s, s:s}", "role", "user", "content", "Tell me more."));
  }
  if (cache >= 0) json_object_set_new(q, "cache_prompt", json_boolean(cache));
  char *body = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  resp r;
  it_http_do(&B, "POST", "/v1/chat/completions", body, &r, NULL);
  free(body);
  pc_out o = {r.status, it_jnum(r.json, "usage.prompt_tokens"),
              it_jnum(r.json, "usage.prompt_tokens_details.cached_tokens"),
              it_jnum(r.json, "timings.cache_n"), ""};
  const char *t = it_jstr(r.json, "choices.0.message.content");
  snprintf(o.text, sizeof o.text, "%s", t ? t : "(none)");
  it_resp_clear(&r);
  return o;
}

/* Prompts with an image: the prefix match includes the media (by its content), never cuts it. */
static void media_body(void) {
  char *one = it_data_url(it_png_5x4), *other = it_data_url(it_png_3x7);
  pc_out a1 = pc_vision("pc-vlm", one, false, -1, 1), a2 = pc_vision("pc-vlm", one, true, -1, 1);
  CHECK(a1.status == 200 && a2.status == 200, "answers: %ld %ld", a1.status, a2.status);
  CHECK(a1.cached == 0 && a2.cached == a1.prompt,
        "the next turn keeps the whole first prompt, its image included: cached %lld (want %lld)",
        a2.cached, a1.prompt);
  pc_out b2 = pc_vision("pc-vlm", other, true, -1, 1);
  CHECK(b2.status == 200 && b2.cached < a1.prompt - 8,
        "another image at the same place: only the text before it is kept (cached %lld of %lld)",
        b2.cached, b2.prompt);
  /* batch-invariant: chunks as evaluating it cuts them, and the same answer */
  pc_out d1 = pc_vision("pc-vlm-det", one, false, -1, 4),
         d2 = pc_vision("pc-vlm-det", one, true, -1, 4);
  pc_out dref = pc_vision("pc-vlm-det", one, true, 0, 4);
  CHECK(d1.status == 200 && d2.status == 200 && dref.status == 200, "answers: %ld %ld %ld",
        d1.status, d2.status, dref.status);
  CHECK(d2.cached > 0 && d2.cached <= d1.prompt && dref.cached == 0,
        "batch-invariant: cached %lld of the first prompt's %lld", d2.cached, d1.prompt);
  CHECK(!strcmp(d2.text, dref.text), "with and without the cache: \"%.200s\" vs \"%.200s\"",
        d2.text, dref.text);
  free(one);
  free(other);
}

static void t_prompt_cache_media(void) {
  if (!it_have_vlm) {
    snprintf(it_cur_skip, sizeof it_cur_skip,
             "%s/tiny-vlm-mmproj.gguf is missing (tests/models.sh)", it_models_dir);
    return;
  }
  char y[1200];
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: pc-vlm, file: %s/tiny-vlm.gguf, mmproj: %s/tiny-vlm-mmproj.gguf, "
           "context: 1024, parallel: 1, gpu_layers: 0}\n"
           "  - {name: pc-vlm-det, file: %s/tiny-vlm.gguf, mmproj: %s/tiny-vlm-mmproj.gguf, "
           "context: 1024, parallel: 1, batch: %d, deterministic: true, gpu_layers: 0}\n",
           it_models_dir, it_models_dir, it_models_dir, it_models_dir, PC_BATCH);
  it_with_own_daemon("prompt_cache_media", y, media_body);
}

static void t_prompt_cache(void) {
  char y[1024];
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: pc-fast, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 2, "
           "gpu_layers: 0}\n"
           "  - {name: pc-det, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 2, batch: %d, "
           "deterministic: true, gpu_layers: 0}\n",
           it_models_dir, it_models_dir, PC_BATCH);
  it_with_own_daemon("prompt_cache", y, exact_body);
}

static void t_prompt_cache_invariant(void) {
  char y[1024];
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: pc-det, file: %s/tiny-qwen2.gguf, context: 1024, parallel: 2, batch: %d, "
           "deterministic: true, gpu_layers: 0}\n",
           it_models_dir, PC_BATCH);
  it_with_own_daemon("prompt_cache_invariant", y, invariant_body);
}

/* The hybrid (attention + recurrent layers): its recurrent state cannot drop a suffix, so the
 * cache keeps a sequence whole or not at all (docs/PROMPT_CACHE.md), and must never change an
 * answer. One slot each: every request of a conversation comes back to the state the last left. */
static void hybrid_body(void) {
  /* batch-invariant: a three-turn chat with the cache, then the same without: every turn alike */
  char sys[4096];
  pc_text(sys, sizeof sys, 120, 6);
  json_t *with = json_array(), *without = json_array();
  json_array_append_new(with, json_pack("{s:s, s:s}", "role", "system", "content", sys));
  pc_out c[3];
  for (int turn = 0; turn < 3; turn++) {
    char user[256];
    pc_text(user, sizeof user, 8, turn);
    json_array_append_new(with, json_pack("{s:s, s:s}", "role", "user", "content", user));
    c[turn] = pc_chat("pc-hy-det", with, -1);
    CHECK(c[turn].status == 200, "turn %d with the cache: %ld", turn, c[turn].status);
    json_array_append_new(with,
                          json_pack("{s:s, s:s}", "role", "assistant", "content", c[turn].text));
  }
  json_array_append_new(without, json_pack("{s:s, s:s}", "role", "system", "content", sys));
  for (int turn = 0; turn < 3; turn++) {
    char user[256];
    pc_text(user, sizeof user, 8, turn);
    json_array_append_new(without, json_pack("{s:s, s:s}", "role", "user", "content", user));
    pc_out n = pc_chat("pc-hy-det", without, 0);
    CHECK(n.status == 200 && n.cached == 0, "turn %d without the cache: %ld, cached %lld", turn,
          n.status, n.cached);
    CHECK(!strcmp(c[turn].text, n.text), "turn %d: with the cache \"%.200s\", without \"%.200s\"",
          turn, c[turn].text, n.text);
    /* later turns restore the checkpoint taken after the last turn's last whole prompt chunk */
    CHECK(c[turn].cached < c[turn].prompt && c[turn].cached % PC_BATCH == 0 &&
              (turn == 0 ? c[turn].cached == 0 : c[turn].cached > 0),
          "turn %d: cached %lld of %lld (a checkpoint: whole chunks)", turn, c[turn].cached,
          c[turn].prompt);
    json_array_append_new(without, json_pack("{s:s, s:s}", "role", "assistant", "content", n.text));
  }
  json_decref(with);
  json_decref(without);

  /* throughput mode: max_tokens 1 leaves exactly prompt 1 in the state, and prompt 2 extends all
   * of it, so the whole state is kept */
  char p1[2048], p2[4096];
  pc_text(p1, sizeof p1, 60, 0);
  pc_extend(p2, sizeof p2, p1, 20, 3);
  pc_out a1 = pc_complete("pc-hy", p1, 1, -1);
  pc_out a2 = pc_complete("pc-hy", p2, 1, -1);
  CHECK(a1.status == 200 && a2.status == 200, "answers: %ld %ld", a1.status, a2.status);
  CHECK(a1.cached == 0 && a1.prompt > 0, "a fresh slot keeps nothing: cached %lld of %lld",
        a1.cached, a1.prompt);
  CHECK(a2.cached == a1.prompt && a2.prompt > a1.prompt,
        "a prompt extending all of the state keeps it whole: cached %lld (prompt 1: %lld) of %lld",
        a2.cached, a1.prompt, a2.prompt);
}

static void t_prompt_cache_hybrid(void) {
  if (!it_have_hybrid) {
    snprintf(it_cur_skip, sizeof it_cur_skip, "%s/tiny-hybrid.gguf is missing (tests/models.sh)",
             it_models_dir);
    return;
  }
  char y[1024];
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: pc-hy-det, file: %s/tiny-hybrid.gguf, context: 1024, parallel: 1, "
           "batch: %d, deterministic: true, gpu_layers: 0}\n"
           "  - {name: pc-hy, file: %s/tiny-hybrid.gguf, context: 1024, parallel: 1, "
           "gpu_layers: 0}\n",
           it_models_dir, PC_BATCH, it_models_dir);
  it_with_own_daemon("prompt_cache_hybrid", y, hybrid_body);
}

static const it_test tests[] = {
    {"prompt_cache", t_prompt_cache, false},
    {"prompt_cache_invariant", t_prompt_cache_invariant, false},
    {"prompt_cache_ram", t_prompt_cache_ram, false},
    {"prompt_cache_disk", t_prompt_cache_disk, false},
    {"prompt_cache_media", t_prompt_cache_media, false},
    {"prompt_cache_hybrid", t_prompt_cache_hybrid, false},
};
const itest_table itest_prompt_cache = {"prompt_cache", tests, sizeof tests / sizeof *tests};
