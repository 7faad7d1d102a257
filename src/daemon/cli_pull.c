/* cli_pull.c — `switchyard pull REF`: ask a running daemon to fetch a model (POST /api/pull) and
 * show its progress: a bar with size, speed and ETA on a terminal, plain lines otherwise (one per
 * step and per file). The daemon is SWITCHYARD_HOST (like OLLAMA_HOST: "host:port",
 * "http://host:port" or "host"), else --host/--port, else 127.0.0.1:8080. A client only: the
 * daemon downloads, verifies and adds the model. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "argnum.h"
#include "buf.h"
#include "cli.h"
#include "clock.h"

typedef struct pull_view {
  sy_buf line; /* the NDJSON line being received */
  bool tty;
  char status[256]; /* the last status shown */
  double t0;        /* when the current file started */
  long long t0_done;
  bool bar;      /* a bar is on the terminal's current line */
  bool finished; /* the current file's 100% line was printed (plain lines) */
  bool ok;       /* a "success" line came */
  char err[512]; /* an "error" line's message */
} pull_view;

static void human(long long b, char *out, size_t len) {
  if (b >= 1LL << 30)
    snprintf(out, len, "%.1f GB", (double)b / 1e9);
  else if (b >= 1LL << 20)
    snprintf(out, len, "%.0f MB", (double)b / 1e6);
  else
    snprintf(out, len, "%.0f KB", (double)b / 1e3);
}

static void show(pull_view *v, const json_t *j) {
  const char *err = json_string_value(json_object_get(j, "error"));
  if (err) {
    snprintf(v->err, sizeof v->err, "%s", err);
    return;
  }
  const char *st = json_string_value(json_object_get(j, "status"));
  if (!st) return;
  json_t *tot = json_object_get(j, "total"), *done = json_object_get(j, "completed");
  bool changed = strcmp(st, v->status) != 0;
  if (changed) {
    if (v->bar) fputc('\n', stderr);
    v->bar = v->finished = false;
    snprintf(v->status, sizeof v->status, "%s", st);
    v->t0 = sy_mono_s();
    v->t0_done = json_is_integer(done) ? (long long)json_integer_value(done) : 0;
  }
  if (!strcmp(st, "success")) v->ok = true;
  if (!json_is_integer(tot) || !json_is_integer(done)) {
    if (changed) fprintf(stderr, "%s\n", st);
    return;
  }
  long long t = (long long)json_integer_value(tot), d = (long long)json_integer_value(done);
  char ts[32], ds[32];
  human(t, ts, sizeof ts);
  human(d, ds, sizeof ds);
  int pct = t > 0 ? (int)(100.0 * (double)d / (double)t) : 100;
  if (!v->tty) { /* plain: the file once when it starts, once when it is done */
    if (changed) fprintf(stderr, "%s: %s\n", st, ts);
    if (d == t && !v->finished) {
      fprintf(stderr, "%s: 100%% %s\n", st, ts);
      v->finished = true;
    }
    return;
  }
  double el = sy_mono_s() - v->t0, rate = el > 0.2 ? (double)(d - v->t0_done) / el : 0;
  char rs[32] = "", eta[32] = "";
  if (rate > 0) {
    human((long long)rate, rs, sizeof rs);
    strcat(rs, "/s");
    long long left = (long long)((double)(t - d) / rate);
    snprintf(eta, sizeof eta, "%lldm%02llds", left / 60, left % 60);
  }
  char bar[26];
  int fill = pct / 4;
  for (int i = 0; i < 25; i++) bar[i] = i < fill ? '#' : ' ';
  bar[25] = '\0';
  fprintf(stderr, "\r%-40.40s %3d%% [%s] %s/%s %s %s\033[K", st, pct, bar, ds, ts, rs, eta);
  v->bar = true;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  pull_view *v = ud;
  size_t len = sz * n;
  for (size_t i = 0; i < len; i++) {
    if (p[i] != '\n') {
      if (sy_buf_append(&v->line, p + i, 1) != 0) return 0;
      continue;
    }
    json_t *j = json_loadb(v->line.data ? v->line.data : "", v->line.len, 0, NULL);
    if (j) show(v, j);
    json_decref(j);
    v->line.len = 0;
  }
  return len;
}

/* SWITCHYARD_HOST or the options into base ("http://host:port"). */
static void base_url(const char *env, const char *host, int port, char *out, size_t len) {
  if (env && *env) {
    const char *h = strstr(env, "://") ? strstr(env, "://") + 3 : env;
    const char *scheme = strncmp(env, "https://", 8) == 0 ? "https" : "http";
    size_t hl = strcspn(h, "/");
    bool has_port = memchr(h, ':', hl) && h[0] != '[';
    if (h[0] == '[') has_port = strstr(h, "]:") != NULL;
    snprintf(out, len, "%s://%.*s%s", scheme, (int)hl, h, has_port ? "" : ":8080");
    return;
  }
  snprintf(out, len, "http://%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
           strchr(host, ':') ? "]" : "", port);
}

int cli_pull(int argc, char **argv) {
  const char *host = NULL, *key = getenv("SWITCHYARD_API_KEY");
  int port = 8080;
  static const struct option opts[] = {{"host", required_argument, 0, 'H'},
                                       {"port", required_argument, 0, 'p'},
                                       {"api-key", required_argument, 0, 'k'},
                                       {0, 0, 0, 0}};
  int c;
  long num;
  optind = 1;
  while ((c = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
    if (c == 'H')
      host = optarg;
    else if (c == 'p' && sy_parse_long(optarg, 1, 65535, &num) == 0)
      port = (int)num;
    else if (c == 'k')
      key = optarg;
    else
      optind = argc + 1; /* usage */
  }
  if (optind != argc - 1) {
    fprintf(stderr,
            "usage: switchyard pull [--host H] [--port P] [--api-key K] MODEL\n"
            "  MODEL: hf.co/<org>/<repo>[:<quant>], hf.co/<org>/<repo>/<file>.gguf,\n"
            "         or a registry's <name>[:<tag>]\n");
    return 2;
  }
  char base[512], url[600], auth[600];
  base_url(host ? NULL : getenv("SWITCHYARD_HOST"), host ? host : "127.0.0.1", port, base,
           sizeof base);
  snprintf(url, sizeof url, "%s/api/pull", base);
  json_t *req = json_pack("{s:s, s:b}", "model", argv[optind], "stream", 1);
  char *body = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  pull_view v = {.line = {.limit = 1 << 20}, .tty = isatty(2) == 1};
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *cu = curl_easy_init();
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  if (key) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    hl = curl_slist_append(hl, auth);
  }
  curl_easy_setopt(cu, CURLOPT_URL, url);
  curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(cu, CURLOPT_WRITEDATA, &v);
  CURLcode rc = curl_easy_perform(cu);
  long status = 0;
  curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(cu);
  curl_global_cleanup();
  free(body);
  if (v.line.len) { /* a last line without its newline (an error reply) */
    json_t *j = json_loadb(v.line.data, v.line.len, 0, NULL);
    if (j) show(&v, j);
    json_decref(j);
  }
  sy_buf_free(&v.line);
  if (v.bar) fputc('\n', stderr);
  if (rc != CURLE_OK) {
    fprintf(stderr,
            "switchyard pull: %s: %s (is the daemon running? start it with `switchyard "
            "--models-dir DIR`, or set SWITCHYARD_HOST)\n",
            url, curl_easy_strerror(rc));
    return 1;
  }
  if (v.err[0] || !v.ok) {
    fprintf(stderr, "switchyard pull: %s\n",
            v.err[0]        ? v.err
            : status != 200 ? "the daemon refused the request"
                            : "no success");
    return 1;
  }
  return 0;
}
