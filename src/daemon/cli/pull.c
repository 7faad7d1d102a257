/* pull.c — `switchyard pull REF`: ask the running daemon to fetch a model (POST /api/pull, the
 * pull wing does the work) and show its progress: a bar with size, speed and ETA on a terminal,
 * plain lines otherwise (one per step and per file). A client only: the daemon downloads,
 * verifies and adds the model. Must never block on a daemon that stopped answering without the
 * user being able to Ctrl-C it (curl's own wait). */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "clock.h"

typedef struct pull_view {
  bool tty;
  char status[256]; /* the last status shown */
  double t0;        /* when the current file started */
  long long t0_done;
  bool bar;      /* a bar is on the terminal's current line */
  bool finished; /* the current file's 100% line was printed (plain lines) */
  bool ok;       /* a "success" line came */
  char err[512]; /* an "error" line's message */
} pull_view;

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
  cli_human_size(t, ts, sizeof ts);
  cli_human_size(d, ds, sizeof ds);
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
  char rs[40] = "", eta[32] = "";
  if (rate > 0) {
    cli_human_size((long long)rate, rs, sizeof rs - 2);
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

static bool on_line(const char *line, size_t len, void *ud) {
  json_t *j = json_loadb(line, len, 0, NULL);
  if (j) show(ud, j);
  json_decref(j);
  return true;
}

static const char usage[] =
    "usage: switchyard pull [--host H] [--port P] [--api-key K] MODEL\n"
    "  MODEL: hf.co/<org>/<repo>[:<quant>], hf.co/<org>/<repo>/<file>.gguf,\n"
    "         or a registry's <name>[:<tag>]\n";

int cli_pull(int argc, char **argv) {
  cli_conn c;
  cli_conn_init(&c, "pull");
  static const struct option opts[] = {CLI_CONN_OPTIONS, {0, 0, 0, 0}};
  int o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    int t = cli_conn_option(&c, o, optarg, usage);
    if (t == -2) return 0;
    if (t != 1) {
      fputs(usage, stderr);
      return 2;
    }
  }
  if (optind != argc - 1) {
    fputs(usage, stderr);
    return 2;
  }
  if (cli_conn_resolve(&c) != 0) return 2;
  json_t *req = json_pack("{s:s, s:b}", "model", argv[optind], "stream", 1);
  pull_view v = {.tty = isatty(2) == 1};
  cli_reply r = {0};
  int rc = cli_stream(&c, "/api/pull", req, on_line, &v, NULL, &r);
  json_decref(req);
  if (v.bar) fputc('\n', stderr);
  if (rc != 0) {
    cli_reply_free(&r);
    return 1;
  }
  if (r.status < 200 || r.status > 299) {
    int st = cli_fail(&c, &r);
    cli_reply_free(&r);
    return st;
  }
  cli_reply_free(&r);
  if (v.err[0] || !v.ok) {
    fprintf(stderr, "switchyard pull: %s\n", v.err[0] ? v.err : "no success");
    return 1;
  }
  return 0;
}
