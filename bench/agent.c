/* agent.c — `bench agent`: the prompt cache under agent-like conversations (issue 14), driven
 * the same way against switchyard and llama-server; bench/agent.sh runs it (`make bench-agent`).
 *
 * usage: bench agent --url URL --model NAME --scenario chat|multi|reload [--server LABEL]
 *                    [--run R] [--turns 8] [--convs 8] [--tokens 16] [--words 900] [--after 4]
 *                    [--api completions|chat]
 *        bench agent-table --dir DIR --runs N [--label TEXT]
 *
 * A conversation: a system prompt of --words words (its own text per conversation and run), then
 * turns: a short user message, a streamed greedy answer of --tokens tokens (ignore_eos), the
 * answer appended before the next turn. By default it goes to /v1/completions as a plain-text
 * transcript ("SYSTEM\n\nUser: ...\nAssistant:ANSWER\nUser: ...\nAssistant:"): the same tokens on
 * both servers, no template, no special tokens; --api chat sends the messages to
 * /v1/chat/completions. llama-server runs every answer through its chat output parser (on both
 * endpoints), which cancels the request on the invalid UTF-8 a random-weight model says now and
 * then: such a turn keeps its TTFT and the text it got, and the table counts them. Scenarios:
 *   chat   one conversation, --turns turns;
 *   multi  --convs conversations taking turns round-robin (conversation 0 turn 1, 1 turn 1, ...),
 *          one request at a time, so with fewer slots than conversations each one's prefix must
 *          come back from wherever the server kept it;
 *   reload (switchyard only) one conversation, --after turns, then POST /api/unload between two
 *          turns: the next turn's TTFT (model load included), the same prompt cold
 *          (cache_prompt: false), the cold prompt after an unload (load included), and after
 *          another unload POST /api/load alone, then the next turn (restore only).
 * TTFT = request sent -> the first streamed chunk with a choice in it (both servers send it with
 * the first token); content_ttft_ms is the first chunk with text. Every run's prompts differ
 * (--run salts them), so no run reuses another's cache. One JSON object on stdout per run; the
 * table (medians over runs) comes from `bench agent-table`. A benchmark, never a test. */
#include "agent.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "lib.h"

static const char *ag_url, *ag_model;
static int ag_tokens = 16, ag_words_n = 900;
static bool ag_chat_api; /* --api chat: /v1/chat/completions; else /v1/completions */

/* ---- text ---- */

static const char *const ag_words[] = {
    "the",        "agent",   "must",           "always",     "check",      "each",       "railway",
    "track",      "before",  "moving",         "cars",       "between",    "yards",      "and",
    "report",     "every",   "signal",         "change",     "to",         "dispatcher", "when",
    "a",          "train",   "arrives",        "late",       "or",         "early",      "write",
    "down",       "its",     "number",         "cargo",      "weight",     "length",     "in",
    "log",        "never",   "switch",         "points",     "under",      "moving",     "wagon",
    "keep",       "answers", "short",          "clear",      "polite",     "use",        "tools",
    "only",       "if",      "they",           "help",       "user",       "with",       "their",
    "question",   "about",   "schedules",      "crews",      "weather",    "safety",     "rules",
    "locomotive", "diesel",  "electric",       "freight",    "passenger",  "platform",   "station",
    "night",      "shift",   "morning",        "inspection", "brakes",     "coupling",   "lamps",
    "radio",      "channel", "seven",          "three",      "north",      "south",      "east",
    "west",       "hump",    "classification", "siding",     "mainline",   "speed",      "limit",
    "slow",       "stop",    "proceed",        "caution",    "yellow",     "green",      "red",
    "flag",       "horn",    "bell",           "crossing",   "gate",       "bridge",     "tunnel",
    "grade",      "curve",   "ballast",        "sleeper",    "rail",       "bolt",       "plate",
    "oil",        "coal",    "grain",          "timber",     "steel",      "containers", "tank",
    "hopper",     "boxcar",  "flatcar",        "caboose",    "yardmaster", "conductor",  "engineer",
    "brakeman",   "clerk",   "manifest",       "waybill",    "priority",   "delay",      "reason",
    "forecast",   "snow",    "rain",           "wind",       "fog",        "visibility", "notice",
};
#define AG_NWORDS (sizeof ag_words / sizeof ag_words[0])

static unsigned ag_rand(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fffu;
}

/* n words of sentences (8 to 15 words each, capitalised, full stops), seeded, appended to b. */
static void ag_text(sy_buf *b, int n, unsigned seed) {
  unsigned s = seed * 2654435761u + 1u;
  int left = 0; /* words left in the sentence */
  for (int i = 0; i < n; i++) {
    const char *w = ag_words[ag_rand(&s) % AG_NWORDS];
    bool start = left == 0;
    if (start) left = 8 + (int)(ag_rand(&s) % 8);
    if (i > 0) sy_buf_puts(b, " ");
    if (start)
      sy_buf_printf(b, "%c%s", w[0] - 'a' + 'A', w + 1);
    else
      sy_buf_puts(b, w);
    if (--left == 0 || i == n - 1) sy_buf_puts(b, ".");
  }
}

/* ---- HTTP ---- */

typedef struct ag_turn {
  double t0, t_first, t_content, t_end;
  long status;
  long long prompt, cached, completion, prompt_n; /* prompt_n: timings.prompt_n, tokens computed */
  double prompt_ms;                               /* timings.prompt_ms, the server's own */
  sy_buf body, text;
  size_t scanned;
  bool error; /* the stream ended with an error event (its time counts as the first token's) */
  bool cut;   /* the answer ended early: no usage at the end of the stream */
} ag_turn;

static void ag_event(ag_turn *r, json_t *e, double t) {
  json_t *chs = json_object_get(e, "choices");
  json_t *ch = json_array_get(chs, 0);
  /* llama-server sends an error event where the first token's chunk would go when its output
   * parser rejects that token (see ag_chat): the prompt is done by then */
  if (json_is_object(json_object_get(e, "error"))) r->error = true;
  if ((ch || r->error) && r->t_first == 0) r->t_first = t;
  json_t *c = ag_chat_api ? json_object_get(json_object_get(ch, "delta"), "content")
                          : json_object_get(ch, "text");
  size_t cl = json_string_length(c);
  if (cl > 0) {
    if (r->t_content == 0) r->t_content = t;
    /* a random-weight model can say a NUL byte ("\u0000"): dropped from the answer sent back */
    const char *cs = json_string_value(c);
    for (size_t i = 0; i < cl; i++)
      if (cs[i]) sy_buf_append(&r->text, cs + i, 1);
  }
  json_t *u = json_object_get(e, "usage");
  if (json_is_object(u)) {
    r->prompt = (long long)json_integer_value(json_object_get(u, "prompt_tokens"));
    r->completion = (long long)json_integer_value(json_object_get(u, "completion_tokens"));
    json_t *ct = json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    if (json_is_integer(ct)) r->cached = (long long)json_integer_value(ct);
  }
  json_t *tm = json_object_get(e, "timings");
  json_t *cn = json_object_get(tm, "cache_n");
  if (r->cached < 0 && json_is_integer(cn)) r->cached = (long long)json_integer_value(cn);
  if (json_is_integer(json_object_get(tm, "prompt_n"))) {
    r->prompt_n = (long long)json_integer_value(json_object_get(tm, "prompt_n"));
    r->prompt_ms = json_number_value(json_object_get(tm, "prompt_ms"));
  }
}

static size_t ag_on_data(char *p, size_t sz, size_t n, void *ud) {
  ag_turn *r = ud;
  double t = sy_mono_s();
  if (sy_buf_append(&r->body, p, sz * n) != 0) return 0;
  for (;;) {
    char *start = r->body.data + r->scanned;
    char *end = strstr(start, "\n\n");
    if (!end) break;
    if (strncmp(start, "data: {", 7) == 0) {
      json_t *e = json_loadb(start + 6, (size_t)(end - start - 6), JSON_ALLOW_NUL, NULL);
      if (e) ag_event(r, e, t);
      json_decref(e);
    }
    r->scanned = (size_t)(end + 2 - r->body.data);
  }
  return sz * n;
}

/* A conversation, both as chat messages and as the plain-text transcript /v1/completions gets:
 * the system prompt, then "\nUser: ...\nAssistant:" and the answer, turn after turn. */
typedef struct ag_conv {
  json_t *msgs;
  sy_buf text;
  unsigned seed;
  int turn; /* user turns added so far */
} ag_conv;

/* One streamed request of the conversation so far into r (which starts zeroed); false when it
 * failed. */
static bool ag_chat(const ag_conv *cv, bool cache_prompt, ag_turn *r) {
  char url[512];
  snprintf(url, sizeof url, "%s/v1/%scompletions", ag_url, ag_chat_api ? "chat/" : "");
  json_t *q = json_pack("{s:s, s:i, s:f, s:i, s:b, s:b, s:{s:b}}", "model", ag_model, "max_tokens",
                        ag_tokens, "temperature", 0.0, "seed", 1, "ignore_eos", 1, "stream", 1,
                        "stream_options", "include_usage", 1);
  if (ag_chat_api)
    json_object_set(q, "messages", cv->msgs);
  else
    json_object_set_new(q, "prompt", json_stringn(cv->text.data, cv->text.len));
  if (!cache_prompt) json_object_set_new(q, "cache_prompt", json_false());
  char *body = json_dumps(q, JSON_COMPACT);
  json_decref(q);
  r->cached = r->prompt_n = -1;
  r->prompt_ms = -1;
  CURL *c = curl_easy_init();
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  bench_post_json(c, url, body, hl, ag_on_data, r);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  r->t0 = sy_mono_s();
  CURLcode rc = curl_easy_perform(c);
  r->t_end = sy_mono_s();
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  free(body);
  if (rc != CURLE_OK || r->status != 200 || r->t_first == 0) {
    fprintf(stderr, "bench agent: request failed (curl %d, HTTP %ld): %.300s\n", (int)rc, r->status,
            r->body.data ? r->body.data : "");
    return false;
  }
  /* llama-server runs every answer through its chat output parser (even on /v1/completions),
   * which throws on the invalid UTF-8 a random-weight model says now and then: the request is
   * cancelled, its stream ends early (an error event, or nothing more). The turn keeps its TTFT
   * and the text it got; the table counts these turns. */
  r->cut = r->error || r->prompt <= 0 || r->cached < 0;
  if (r->cut) {
    const char *m = r->body.data ? strstr(r->body.data, "\"error\"") : NULL;
    fprintf(stderr, "bench agent: the answer ended early after %zu bytes of text%s%.160s\n",
            r->text.len, m ? ": " : " (no usage at the end of the stream)", m ? m : "");
  }
  return true;
}

static json_t *ag_turn_json(const ag_turn *r) {
  return json_pack("{s:b, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:f}", "cut", r->cut, "ttft_ms",
                   (r->t_first - r->t0) * 1000, "content_ttft_ms",
                   r->t_content > 0 ? (r->t_content - r->t0) * 1000 : -1.0, "total_ms",
                   (r->t_end - r->t0) * 1000, "prompt_tokens", (json_int_t)r->prompt,
                   "cached_tokens", (json_int_t)r->cached, "completion_tokens",
                   (json_int_t)r->completion, "server_prompt_n", (json_int_t)r->prompt_n,
                   "server_prompt_ms", r->prompt_ms);
}

static void ag_turn_free(ag_turn *r) {
  sy_buf_free(&r->body);
  sy_buf_free(&r->text);
}

/* method path [body] -> status; the reply into out when out is not NULL. */
static long ag_admin(const char *path, const char *post, sy_buf *out) {
  char url[512];
  snprintf(url, sizeof url, "%s%s", ag_url, path);
  sy_buf sink = {0};
  CURL *c = curl_easy_init();
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  if (post)
    bench_post_json(c, url, post, hl, bench_to_buf, out ? out : &sink);
  else {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bench_to_buf);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out ? out : &sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  }
  long st = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  sy_buf_free(&sink);
  return st;
}

/* Is the model in GET /api/ps's table (loading, loaded or unloading)? -1 when /api/ps failed. */
static int ag_resident(void) {
  sy_buf b = {0};
  int found = -1;
  if (ag_admin("/api/ps", NULL, &b) == 200 && b.data) {
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    json_t *ms = json_object_get(j, "models");
    if (json_is_array(ms)) {
      found = 0;
      for (size_t i = 0; i < json_array_size(ms); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(ms, i), "name"));
        if (n && !strcmp(n, ag_model)) found = 1;
      }
    }
    json_decref(j);
  }
  sy_buf_free(&b);
  return found;
}

/* POST /api/unload, then wait until the model is gone from /api/ps (its worker has written the
 * disk cache and exited); the milliseconds that took, or -1. */
static double ag_unload(void) {
  char body[256];
  snprintf(body, sizeof body, "{\"model\":\"%s\"}", ag_model);
  double t0 = sy_mono_s();
  sy_buf out = {0};
  long st = ag_admin("/api/unload", body, &out);
  if (st != 200) {
    fprintf(stderr, "bench agent: /api/unload: HTTP %ld %.200s\n", st, out.data ? out.data : "");
    sy_buf_free(&out);
    return -1;
  }
  sy_buf_free(&out);
  for (int i = 0; i < 6000; i++) {
    int r = ag_resident();
    if (r == 0) return (sy_mono_s() - t0) * 1000;
    if (r < 0) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "bench agent: %s did not leave /api/ps after /api/unload\n", ag_model);
  return -1;
}

/* POST /api/load; its milliseconds, or -1. */
static double ag_load(void) {
  char body[256];
  snprintf(body, sizeof body, "{\"model\":\"%s\"}", ag_model);
  double t0 = sy_mono_s();
  long st = ag_admin("/api/load", body, NULL);
  if (st != 200) {
    fprintf(stderr, "bench agent: /api/load: HTTP %ld\n", st);
    return -1;
  }
  return (sy_mono_s() - t0) * 1000;
}

/* ---- conversations ---- */

static void ag_conv_set(ag_conv *c, const char *system, unsigned seed) {
  *c = (ag_conv){.seed = seed};
  c->msgs = json_pack("[{s:s, s:s}]", "role", "system", "content", system);
  sy_buf_printf(&c->text, "%s\n", system);
}

static void ag_conv_init(ag_conv *c, unsigned seed) {
  sy_buf b = {0};
  sy_buf_printf(&b, "You are the dispatcher's assistant for railway yard %u. ", seed);
  ag_text(&b, ag_words_n, seed);
  ag_conv_set(c, b.data, seed);
  sy_buf_free(&b);
}

static void ag_conv_free(ag_conv *c) {
  json_decref(c->msgs);
  sy_buf_free(&c->text);
}

/* Append the next user message (a short one, its own words). */
static void ag_conv_user(ag_conv *c) {
  sy_buf b = {0};
  ag_text(&b, 8 + (int)((c->seed + (unsigned)c->turn) % 5), c->seed * 131u + (unsigned)c->turn);
  b.data[b.len - 1] = '?';
  json_array_append_new(c->msgs, json_pack("{s:s, s:s}", "role", "user", "content", b.data));
  sy_buf_printf(&c->text, "\nUser: %s\nAssistant:", b.data);
  c->turn++;
  sy_buf_free(&b);
}

static void ag_conv_answer(ag_conv *c, const ag_turn *r) {
  json_array_append_new(c->msgs, json_pack("{s:s, s:s}", "role", "assistant", "content",
                                           r->text.data ? r->text.data : ""));
  sy_buf_puts(&c->text, r->text.data ? r->text.data : "");
}

/* A user turn and its answer, appended; the turn's JSON (NULL when it failed). */
static json_t *ag_conv_turn(ag_conv *c) {
  ag_conv_user(c);
  ag_turn r = {0};
  json_t *j = NULL;
  if (ag_chat(c, true, &r)) {
    ag_conv_answer(c, &r);
    j = ag_turn_json(&r);
  }
  ag_turn_free(&r);
  return j;
}

/* One request of the conversation so far (nothing appended); its JSON or NULL. */
static json_t *ag_once(const ag_conv *c, bool cache_prompt, ag_turn *keep) {
  ag_turn r = {0};
  json_t *j = ag_chat(c, cache_prompt, &r) ? ag_turn_json(&r) : NULL;
  if (keep && j)
    *keep = r;
  else
    ag_turn_free(&r);
  return j;
}

/* chat (convs 1) and multi: convs conversations, turns turns each, round-robin. */
static json_t *ag_round_robin(int convs, int turns, unsigned salt) {
  ag_conv *cs = calloc((size_t)convs, sizeof *cs);
  json_t *out = json_array();
  for (int i = 0; i < convs; i++) {
    ag_conv_init(&cs[i], salt + (unsigned)i);
    json_array_append_new(out, json_array());
  }
  bool ok = true;
  for (int t = 0; t < turns && ok; t++)
    for (int i = 0; i < convs && ok; i++) {
      json_t *j = ag_conv_turn(&cs[i]);
      ok = j != NULL;
      if (ok) json_array_append_new(json_array_get(out, (size_t)i), j);
    }
  for (int i = 0; i < convs; i++) ag_conv_free(&cs[i]);
  free(cs);
  if (!ok) json_decref(out);
  return ok ? out : NULL;
}

/* reload: see the top of the file. */
static json_t *ag_reload(int after, unsigned salt) {
  ag_conv c;
  ag_conv_init(&c, salt);
  json_t *turns = json_array(), *res = NULL;
  for (int t = 0; t < after; t++) {
    json_t *j = ag_conv_turn(&c);
    if (!j) goto out;
    json_array_append_new(turns, j);
  }
  double unload_ms = ag_unload();
  if (unload_ms < 0) goto out;
  ag_conv_user(&c);
  ag_turn r = {0};
  json_t *reload_turn = ag_once(&c, true, &r);
  if (!reload_turn) goto out;
  json_t *cold = ag_once(&c, false, NULL);
  double unload2_ms = ag_unload();
  json_t *cold_load = unload2_ms >= 0 ? ag_once(&c, false, NULL) : NULL;
  ag_conv_answer(&c, &r);
  ag_turn_free(&r);
  double unload3_ms = ag_unload();
  double load_ms = unload3_ms >= 0 ? ag_load() : -1;
  ag_conv_user(&c);
  json_t *after_load = load_ms >= 0 ? ag_once(&c, true, NULL) : NULL;
  if (cold && cold_load && after_load)
    res = json_pack("{s:i, s:o, s:f, s:o, s:o, s:o, s:f, s:o}", "after", after, "turns",
                    json_incref(turns), "unload_ms", unload_ms, "reload_turn", reload_turn, "cold",
                    cold, "cold_with_load", cold_load, "load_ms", load_ms, "after_load_turn",
                    after_load);
  else {
    json_decref(reload_turn);
    json_decref(cold);
    json_decref(cold_load);
    json_decref(after_load);
  }
out:
  json_decref(turns);
  ag_conv_free(&c);
  return res;
}

int bench_agent(int argc, char **argv) {
  static const struct option opts[] = {
      {"url", 1, 0, 'u'},   {"model", 1, 0, 'm'}, {"scenario", 1, 0, 's'}, {"server", 1, 0, 'S'},
      {"run", 1, 0, 'r'},   {"turns", 1, 0, 't'}, {"convs", 1, 0, 'c'},    {"tokens", 1, 0, 'n'},
      {"words", 1, 0, 'w'}, {"after", 1, 0, 'a'}, {"api", 1, 0, 'A'},      {0, 0, 0, 0}};
  const char *scenario = NULL, *server = "server", *api = "completions";
  int run = 0, turns = 8, convs = 8, after = 4, o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'u')
      ag_url = optarg;
    else if (o == 'm')
      ag_model = optarg;
    else if (o == 's')
      scenario = optarg;
    else if (o == 'S')
      server = optarg;
    else if (o == 'r')
      run = atoi(optarg);
    else if (o == 't')
      turns = atoi(optarg);
    else if (o == 'c')
      convs = atoi(optarg);
    else if (o == 'n')
      ag_tokens = atoi(optarg);
    else if (o == 'w')
      ag_words_n = atoi(optarg);
    else if (o == 'a')
      after = atoi(optarg);
    else if (o == 'A')
      api = optarg;
    else
      return 2;
  }
  ag_chat_api = !strcmp(api, "chat");
  int sc = !scenario                     ? -1
           : !strcmp(scenario, "chat")   ? 0
           : !strcmp(scenario, "multi")  ? 1
           : !strcmp(scenario, "reload") ? 2
                                         : -1;
  if (!ag_url || !ag_model || sc < 0 || run < 0 || turns < 1 || turns > 64 || convs < 1 ||
      convs > 64 || ag_tokens < 1 || ag_words_n < 1 || after < 1 ||
      (!ag_chat_api && strcmp(api, "completions"))) {
    fprintf(
        stderr,
        "usage: bench agent --url URL --model NAME --scenario chat|multi|reload [--server "
        "LABEL] [--run R] [--turns 8] [--convs 8] [--tokens 16] [--words 900] [--after 4] [--api "
        "completions|chat]\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  /* warm-up: loads the model, first graph allocations; a short prompt of its own */
  ag_conv wc;
  ag_conv_set(&wc, "Hello there, yard.", 0);
  json_t *w = ag_once(&wc, false, NULL);
  ag_conv_free(&wc);
  if (!w) return 1;
  json_decref(w);
  /* every (scenario, run, conversation) its own text */
  unsigned salt = 1000003u * (unsigned)(sc + 1) + 1009u * (unsigned)run;
  json_t *res = NULL;
  if (sc == 2) {
    res = ag_reload(after, salt);
  } else {
    json_t *cv = ag_round_robin(sc == 0 ? 1 : convs, turns, salt);
    if (cv) res = json_pack("{s:o}", "convs", cv);
  }
  int rc = 1;
  if (res) {
    json_object_set_new(res, "scenario", json_string(scenario));
    json_object_set_new(res, "server", json_string(server));
    json_object_set_new(res, "run", json_integer(run));
    json_object_set_new(res, "tokens", json_integer(ag_tokens));
    json_object_set_new(res, "words", json_integer(ag_words_n));
    json_object_set_new(res, "api", json_string(api));
    char *s = json_dumps(res, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(res);
    rc = 0;
  }
  curl_global_cleanup();
  return rc;
}

/* ---- the tables ---- */

static const char *const ag_servers[] = {"switchyard", "llama-server"};

static json_t *ag_read(const char *dir, const char *scenario, const char *server, int run) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s-%s-%d.json", dir, scenario, server, run);
  json_error_t err;
  json_t *j = json_load_file(path, 0, &err);
  if (!j) fprintf(stderr, "bench agent-table: %s: %s\n", path, err.text);
  return j;
}

static double ag_num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* A turn whose answer ended early (ag_chat): no token counts. */
static bool ag_cut(json_t *t) {
  return json_is_true(json_object_get(t, "cut")) || ag_num(t, "cached_tokens") < 0;
}

/* The median of n counts into buf, "–" when there are none (every such turn was cut). */
static void ag_count(char *buf, size_t cap, double *v, int n) {
  if (n == 0)
    snprintf(buf, cap, "–");
  else
    snprintf(buf, cap, "%.0f", bench_median(v, n));
}

/* chat or multi: per turn, the median over runs and conversations, both servers. */
static int ag_table_rr(const char *dir, const char *scenario, int runs, const char *title) {
  json_t *f[2][64] = {{0}};
  int turns = 0, convs = 0, rc = 1;
  double *v = NULL, *c = NULL, *p = NULL;
  for (int s = 0; s < 2; s++)
    for (int r = 0; r < runs; r++) {
      f[s][r] = ag_read(dir, scenario, ag_servers[s], r);
      if (!f[s][r]) goto out;
      json_t *cv = json_object_get(f[s][r], "convs");
      int nt = (int)json_array_size(json_array_get(cv, 0)), nc = (int)json_array_size(cv);
      if ((turns && nt != turns) || (convs && nc != convs) || nt < 2 || nc < 1) {
        fprintf(stderr, "bench agent-table: %s: runs of different shapes\n", scenario);
        goto out;
      }
      turns = nt;
      convs = nc;
    }
  json_t *f0 = f[0][0];
  printf(
      "%s: system prompt of ~%d words, %d turns of %d tokens, %d conversation%s; median of %d "
      "run%s%s\n\n",
      title, (int)ag_num(f0, "words"), turns, (int)ag_num(f0, "tokens"), convs,
      convs > 1 ? "s" : "", runs, runs > 1 ? "s" : "", convs > 1 ? " × conversations" : "");
  printf(
      "| turn | prompt tokens, switchyard / llama-server | cached tokens | TTFT switchyard, ms "
      "| TTFT llama-server, ms | ratio |\n|---|---|---|---|---|---|\n");
  size_t n = (size_t)runs * (size_t)convs * (size_t)turns;
  v = calloc(n, sizeof *v);
  c = calloc(n, sizeof *c);
  p = calloc(n, sizeof *p);
  int worse = 0, worst_t = 0, cut[2] = {0, 0};
  double worst = 0, all[2];
  for (int t = 0; t <= turns; t++) { /* t == turns: every turn >= 2 */
    double med[2];
    char cached[2][24], prompt[2][24];
    for (int s = 0; s < 2; s++) {
      int k = 0, kc = 0;
      for (int r = 0; r < runs; r++)
        for (int i = 0; i < convs; i++) {
          json_t *cv = json_array_get(json_object_get(f[s][r], "convs"), (size_t)i);
          for (int u = t == turns ? 1 : t; u < (t == turns ? turns : t + 1); u++) {
            json_t *tj = json_array_get(cv, (size_t)u);
            v[k++] = ag_num(tj, "ttft_ms");
            if (ag_cut(tj)) {
              if (t < turns) cut[s]++;
              continue;
            }
            c[kc] = ag_num(tj, "cached_tokens");
            p[kc++] = ag_num(tj, "prompt_tokens");
          }
        }
      med[s] = bench_median(v, k);
      ag_count(cached[s], sizeof cached[s], c, kc);
      ag_count(prompt[s], sizeof prompt[s], p, kc);
    }
    double ratio = med[1] > 0 ? med[0] / med[1] : 0;
    if (t == turns) {
      printf("| **turns ≥ 2** | %s / %s | %s / %s | **%.1f** | **%.1f** | **%.3f** |\n", prompt[0],
             prompt[1], cached[0], cached[1], med[0], med[1], ratio);
      all[0] = med[0];
      all[1] = med[1];
    } else {
      printf("| %d | %s / %s | %s / %s | %.1f | %.1f | %.3f |\n", t + 1, prompt[0], prompt[1],
             cached[0], cached[1], med[0], med[1], ratio);
      if (t > 0 && ratio > 1.0) worse++;
      if (t > 0 && ratio > worst) {
        worst = ratio;
        worst_t = t + 1;
      }
    }
  }
  /* spread: each run's median TTFT of turns >= 2 */
  printf("\nRun to run (each run's median TTFT of turns ≥ 2):");
  for (int s = 0; s < 2; s++) {
    double per[64], lo = 1e30, hi = 0;
    for (int r = 0; r < runs; r++) {
      int k = 0;
      for (int i = 0; i < convs; i++)
        for (int u = 1; u < turns; u++)
          v[k++] =
              ag_num(json_array_get(json_array_get(json_object_get(f[s][r], "convs"), (size_t)i),
                                    (size_t)u),
                     "ttft_ms");
      per[r] = bench_median(v, k);
      if (per[r] < lo) lo = per[r];
      if (per[r] > hi) hi = per[r];
    }
    printf("%s %s", s ? ";" : "", ag_servers[s]);
    for (int r = 0; r < runs; r++) printf("%s%.1f", r ? ", " : " ", per[r]);
    printf(" ms (spread %.0f %% of the median)", all[s] > 0 ? (hi - lo) / all[s] * 100 : 0);
  }
  printf(
      ".\nGoal, turns ≥ 2 no slower than llama-server (ratio ≤ 1.0): %s for turns ≥ 2 together "
      "(%.3f)",
      all[0] <= all[1] ? "met" : "**missed**", all[1] > 0 ? all[0] / all[1] : 0);
  if (worse)
    printf("; %d of %d turns above 1.0 on their own, worst %.3f at turn %d", worse, turns - 1,
           worst, worst_t);
  printf(".\n");
  for (int s = 0; s < 2; s++)
    if (cut[s])
      printf(
          "%s: %d of %d answers ended early (%s; their TTFT counts, their token counts are "
          "left out).\n",
          ag_servers[s], cut[s], runs * convs * turns,
          s ? "its output parser rejects the invalid UTF-8 a random-weight model says and "
              "cancels the request"
            : "no usage at the end of the stream");
  printf("\n");
  rc = 0;
out:
  free(v);
  free(c);
  free(p);
  for (int s = 0; s < 2; s++)
    for (int r = 0; r < runs; r++) json_decref(f[s][r]);
  return rc;
}

/* reload: medians over runs. */
static int ag_table_reload(const char *dir, int runs) {
  json_t *f[64] = {0};
  int rc = 1;
  for (int r = 0; r < runs; r++)
    if (!(f[r] = ag_read(dir, "reload", "switchyard", r))) goto out;
  static const char *const rows[][2] = {
      {"cold", NULL},    {"reload_turn", NULL},     {"cold_with_load", NULL},
      {NULL, "load_ms"}, {"after_load_turn", NULL}, {NULL, "unload_ms"},
  };
  enum { NR = sizeof rows / sizeof rows[0] };
  double med[NR], cached[NR], prompt[NR], v[64], c[64];
  for (int i = 0; i < NR; i++) {
    for (int r = 0; r < runs; r++) {
      json_t *o = rows[i][0] ? json_object_get(f[r], rows[i][0]) : NULL;
      v[r] = o ? ag_num(o, "ttft_ms") : ag_num(f[r], rows[i][1]);
      c[r] = o ? ag_num(o, "cached_tokens") : 0;
      if (r == 0) prompt[i] = o ? ag_num(o, "prompt_tokens") : 0;
    }
    med[i] = bench_median(v, runs);
    cached[i] = bench_median(c, runs);
  }
  int k = (int)ag_num(f[0], "after") + 1;
  double cold = med[0] > 0 ? med[0] : 1;
  printf(
      "(c) switchyard only: one conversation, %d turn(s), then `POST /api/unload` (the bench waits "
      "until the model has left /api/ps: its worker wrote the disk cache and exited; %.0f ms); "
      "median of %d run%s. Turn %d has %.0f prompt tokens, turn %d %.0f.\n\n",
      k - 1, med[5], runs, runs > 1 ? "s" : "", k, prompt[0], k + 1, prompt[4]);
  printf("| measurement | ms | cached tokens | of the cold prompt's TTFT |\n|---|---|---|---|\n");
  printf("| TTFT, turn %d cold, model loaded (`cache_prompt: false`) | %.1f | %.0f | 100 %% |\n", k,
         med[0], cached[0]);
  printf("| TTFT, turn %d cold after an unload (model load included) | %.1f | %.0f | %.1f %% |\n",
         k, med[2], cached[2], med[2] / cold * 100);
  printf(
      "| **TTFT, turn %d right after the unload: model load + restore from disk + the rest** | "
      "**%.1f** | %.0f | **%.1f %%** |\n",
      k, med[1], cached[1], med[1] / cold * 100);
  printf(
      "| `POST /api/load` alone, after another unload (the model load, no request) | %.1f | | "
      "%.1f %% |\n",
      med[3], med[3] / cold * 100);
  printf(
      "| TTFT, turn %d after that load: restore from disk + the rest (load excluded) | %.1f | "
      "%.0f | %.1f %% |\n",
      k + 1, med[4], cached[4], med[4] / cold * 100);
  printf("| load + that TTFT | %.1f | | %.1f %% |\n", med[3] + med[4],
         (med[3] + med[4]) / cold * 100);
  printf(
      "\nGoal, turn %d after the unload (load included) ≤ 20 %% of the cold prompt's TTFT: %s "
      "(%.1f %%).\n",
      k, med[1] / cold <= 0.2 ? "met" : "**missed**", med[1] / cold * 100);
  printf("Run to run, the turn after the unload:");
  for (int r = 0; r < runs; r++)
    printf("%s%.1f", r ? ", " : " ", ag_num(json_object_get(f[r], "reload_turn"), "ttft_ms"));
  printf(" ms; the cold prompt:");
  for (int r = 0; r < runs; r++)
    printf("%s%.1f", r ? ", " : " ", ag_num(json_object_get(f[r], "cold"), "ttft_ms"));
  printf(" ms.\n");
  rc = 0;
out:
  for (int r = 0; r < runs; r++) json_decref(f[r]);
  return rc;
}

int bench_agent_table(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", 1, 0, 'd'}, {"runs", 1, 0, 'r'}, {"label", 1, 0, 'l'}, {0, 0, 0, 0}};
  const char *dir = NULL, *label = NULL;
  int runs = 0, o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'd')
      dir = optarg;
    else if (o == 'r')
      runs = atoi(optarg);
    else if (o == 'l')
      label = optarg;
    else
      return 2;
  }
  if (!dir || runs < 1 || runs > 64) {
    fprintf(stderr, "usage: bench agent-table --dir DIR --runs N (1..64) [--label TEXT]\n");
    return 2;
  }
  if (label) printf("%s\n\n", label);
  /* the scenarios that ran (agent.sh's AGENT_SCENARIOS): those with a first file */
  bool has[3];
  static const char *const first[3] = {"chat-switchyard-0", "multi-switchyard-0",
                                       "reload-switchyard-0"};
  for (int i = 0; i < 3; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, first[i]);
    has[i] = access(path, R_OK) == 0;
  }
  if (!has[0] && !has[1] && !has[2]) {
    fprintf(stderr, "bench agent-table: no results in %s\n", dir);
    return 1;
  }
  int rc = 0;
  if (has[0]) rc |= ag_table_rr(dir, "chat", runs, "(a) one conversation");
  if (has[1]) rc |= ag_table_rr(dir, "multi", runs, "(b) conversations interleaved round-robin");
  if (has[2]) rc |= ag_table_reload(dir, runs);
  return rc;
}
