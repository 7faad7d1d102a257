/* check.c — `gpucheck`: the measuring half of scripts/gpu-check.sh (docs/GPU-CHECK.md). Given a
 * matrix of model entries (a JSON file the shell script writes), it runs four measurements against
 * the daemon and llama-server and writes raw JSON (results.json) plus a markdown summary:
 *
 *   1. footprint: per entry, the daemon's estimate before load vs what it measured after load and
 *      after one request (and nvidia-smi's per-process number in GPU mode), error in %;
 *   2. a randomized mixed workload over all entries for N seconds under a budget about 3x smaller
 *      than their total demand (gpucheck-load): requests, errors, OOMs, swaps, p50/p99;
 *   3. swap time (A loaded; a 1-token request to B that must evict A) vs a bare llama-server cold
 *      start of B (spawn to /health, then the same 1-token request);
 *   4. decode tok/s, 1 stream and 8 streams, switchyard vs llama-server, same model (bench).
 *
 * A benchmark, never a test: it reports, it asserts nothing. Every phase checks the deadline
 * (--deadline, unix seconds) and is skipped when too little time is left; results written so far
 * stay on disk (and in --mirror, after every phase).
 *
 * Also `gpucheck --write-wav OUT.wav SECONDS`: a 16 kHz mono 16-bit 440 Hz tone with a little
 * noise, for the transcription requests; and `gpucheck --gpu-entries MODELS CARD_MIB [DIV]`: the
 * matrix of the --gpu run (JSON on stdout). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

extern char **environ;

#define MiB (1024.0 * 1024.0)
#define GC_MAX_ENTRIES 64
#define GC_BODY_LIMIT ((size_t)64 << 20)
#define GC_OUT_LIMIT ((size_t)16 << 20)

static struct {
  const char *mode, *entries, *daemon, *load, *bench, *llama_server, *audio, *out, *lib_path,
      *decode_model;
  const char *phases, *mirror;
  char bin[PATH_MAX];
  double seconds, ratio, deadline, reserve;
  int clients, tokens, threads, swap_runs, cold_runs, decode_ctx, decode_tokens, decode_runs,
      footprint_max;
  bool gpu, no_transcribe_load;
} A = {.lib_path = "",
       .phases = "1234",
       .seconds = 60,
       .ratio = 3.0,
       .reserve = 60,
       .clients = 8,
       .tokens = 16,
       .swap_runs = 4,
       .cold_runs = 2,
       .decode_ctx = 1024,
       .decode_tokens = 128,
       .decode_runs = 2,
       .footprint_max = 100};

static double gc_t0;
static sy_buf gc_audio = {.limit = GC_BODY_LIMIT};

static double gc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void gc_sleep(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

static void gc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void gc_log(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "gpucheck [%6.1fs] %s\n", gc_now() - gc_t0, msg);
}

static double gc_left(void) { return A.deadline > 0 ? A.deadline - gc_now() : 1e9; }

static char *gc_path(const char *dir, const char *name) {
  char *p;
  if (asprintf(&p, "%s/%s", dir, name) < 0) abort();
  return p;
}

static int gc_free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0), port = 0;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(s, (struct sockaddr *)&sa, &sl) == 0)
    port = ntohs(sa.sin_port);
  if (s >= 0) close(s);
  return port;
}

/* ---- numbers printed the way the Python version printed them ---- */

/* Python's repr of a float, near enough: shortest of %.15g, with ".0" on whole numbers. */
static const char *gc_pyfloat(char *b, size_t n, double x) {
  snprintf(b, n, "%.15g", x);
  if (!strpbrk(b, ".en") && strlen(b) + 2 < n) strcat(b, ".0");
  return b;
}

static double gc_round(double x, int nd) {
  double m = pow(10, nd);
  return round(x * m) / m;
}

/* "{x:,.0f}" */
static const char *gc_commas(char *b, size_t n, double x) {
  char t[64];
  snprintf(t, sizeof t, "%.0f", x);
  const char *d = t[0] == '-' ? t + 1 : t;
  size_t nd = strlen(d), o = 0;
  if (t[0] == '-' && o + 1 < n) b[o++] = '-';
  for (size_t i = 0; i < nd && o + 2 < n; i++) {
    if (i && (nd - i) % 3 == 0) b[o++] = ',';
    b[o++] = d[i];
  }
  b[o] = 0;
  return b;
}

static const char *gc_fmt_mib(char *b, size_t n, double bytes) {
  if (!bytes) return "—";
  return gc_commas(b, n, bytes / MiB);
}

/* str() of a JSON value as Python would print it; "None" for a missing one. */
static const char *gc_pystr(char *b, size_t n, const json_t *v) {
  if (!v || json_is_null(v)) return "None";
  if (json_is_integer(v))
    snprintf(b, n, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    gc_pyfloat(b, n, json_real_value(v));
  else if (json_is_string(v))
    snprintf(b, n, "%s", json_string_value(v));
  else if (json_is_boolean(v))
    snprintf(b, n, "%s", json_is_true(v) ? "True" : "False");
  else {
    char *s = json_dumps(v, JSON_COMPACT);
    snprintf(b, n, "%s", s ? s : "?");
    free(s);
  }
  return b;
}

static double gc_num(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *gc_str(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/* A number that came as one: the same value, or 0 */
static json_t *gc_copy_num(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_deep_copy(v) : json_integer(0);
}

static json_t *gc_pct(double est, double meas) {
  return meas ? json_real(gc_round(100.0 * (est - meas) / meas, 1)) : json_null();
}

/* ---- HTTP ---- */

typedef struct gc_resp {
  long status; /* 0: the connection failed */
  json_t *j;   /* the body parsed, or NULL */
  sy_buf body;
} gc_resp;

static size_t gc_write(char *p, size_t sz, size_t n, void *ud) {
  return sy_buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

static void gc_resp_free(gc_resp *r) {
  json_decref(r->j);
  sy_buf_free(&r->body);
  memset(r, 0, sizeof *r);
}

/* body: a JSON object to POST, or NULL for GET; model+audio: a transcription form instead. */
static void gc_http(const char *url, const json_t *body, const char *form_model, long timeout,
                    gc_resp *r) {
  memset(r, 0, sizeof *r);
  r->body.limit = GC_BODY_LIMIT;
  CURL *c = curl_easy_init();
  if (!c) return;
  struct curl_slist *hl = NULL;
  curl_mime *mime = NULL;
  char *data = NULL;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gc_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (form_model) {
    /* a set temperature turns whisper's fallback ladder off: random weights would climb it */
    mime = curl_mime_init(c);
    curl_mimepart *p = curl_mime_addpart(mime);
    curl_mime_name(p, "model");
    curl_mime_data(p, form_model, CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "temperature");
    curl_mime_data(p, "0.2", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "file");
    curl_mime_data(p, gc_audio.data ? gc_audio.data : "", gc_audio.len);
    curl_mime_filename(p, "a.wav");
    curl_mime_type(p, "audio/wav");
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
  } else if (body) {
    data = json_dumps(body, JSON_COMPACT);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, data ? data : "{}");
  }
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body.len) r->j = json_loadb(r->body.data, r->body.len, 0, NULL);
  } else {
    sy_buf_free(&r->body);
    r->body.limit = GC_BODY_LIMIT;
  }
  curl_slist_free_all(hl);
  curl_mime_free(mime);
  free(data);
  curl_easy_cleanup(c);
}

/* POST {"model": name} to path; the status. */
static long gc_post_model(const char *base, const char *path, const char *name) {
  char url[512];
  snprintf(url, sizeof url, "%s%s", base, path);
  json_t *b = json_pack("{ss}", "model", name);
  gc_resp r;
  gc_http(url, b, NULL, 600, &r);
  long st = r.status;
  json_decref(b);
  gc_resp_free(&r);
  return st;
}

/* The body as JSON: parsed, or the text as a string (an error to keep in the results). */
static json_t *gc_resp_json(gc_resp *r) {
  if (r->j) return json_incref(r->j);
  return json_stringn_nocheck(r->body.data ? r->body.data : "", r->body.len);
}

/* ---- processes ---- */

typedef struct gc_proc {
  pid_t pid;
  bool done;
} gc_proc;

/* environ, with LD_LIBRARY_PATH prefixed by --lib-path (lib) or without that prefix (!lib: this
 * program itself may run with it, llama-server must not) and SWITCHYARD_STATE_DIR set (state). */
static char **gc_env(bool lib, const char *state) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + 3, sizeof *env);
  if (!env) abort();
  size_t o = 0, pl = strlen(A.lib_path);
  const char *old = getenv("LD_LIBRARY_PATH");
  if (pl && old && !strncmp(old, A.lib_path, pl) && (old[pl] == ':' || !old[pl]))
    old += pl + (old[pl] == ':');
  for (size_t i = 0; i < n; i++) {
    if (pl && !strncmp(environ[i], "LD_LIBRARY_PATH=", 16)) continue;
    if (state && !strncmp(environ[i], "SWITCHYARD_STATE_DIR=", 21)) continue;
    env[o++] = strdup(environ[i]);
  }
  if (pl && lib && asprintf(&env[o++], "LD_LIBRARY_PATH=%s:%s", A.lib_path, old ? old : "") < 0)
    abort();
  if (pl && !lib && old && *old && asprintf(&env[o++], "LD_LIBRARY_PATH=%s", old) < 0) abort();
  if (state && asprintf(&env[o++], "SWITCHYARD_STATE_DIR=%s", state) < 0) abort();
  return env;
}

static void gc_env_free(char **env) {
  for (size_t i = 0; env[i]; i++) free(env[i]);
  free(env);
}

/* Spawn argv in a process group of its own; stdout to out_fd (or the file logpath), stderr to the
 * file errpath (or with stdout). */
static pid_t gc_spawn(char *const argv[], char **env, const char *logpath, bool append, int out_fd,
                      const char *errpath) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&at, 0);
  if (out_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  else
    posix_spawn_file_actions_addopen(&fa, 1, logpath,
                                     O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
  if (errpath)
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  else
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc) {
    gc_log("cannot start %s: %s", argv[0], strerror(rc));
    return -1;
  }
  return pid;
}

static bool gc_exited(gc_proc *p) {
  if (p->done || p->pid <= 0) return true;
  pid_t w = waitpid(p->pid, NULL, WNOHANG);
  if (w == p->pid || (w < 0 && errno == ECHILD)) p->done = true;
  return p->done;
}

/* SIGTERM, up to 60 s for it to exit, then SIGKILL to its whole group. */
static void gc_stop(gc_proc *p) {
  if (p->pid <= 0) return;
  if (!gc_exited(p)) {
    kill(p->pid, SIGTERM);
    for (int i = 0; i < 1200 && !gc_exited(p); i++) gc_sleep(0.05);
    if (!gc_exited(p)) {
      kill(-p->pid, SIGKILL);
      waitpid(p->pid, NULL, 0);
      p->done = true;
    }
  }
  kill(-p->pid, SIGKILL); /* whatever it left behind in its group */
  p->pid = -1;
}

static bool gc_wait_health(const char *base, gc_proc *p, double timeout) {
  char url[512];
  snprintf(url, sizeof url, "%s/health", base);
  double end = gc_now() + timeout;
  while (gc_now() < end) {
    if (gc_exited(p)) return false;
    gc_resp r;
    gc_http(url, NULL, NULL, 2, &r);
    long st = r.status;
    gc_resp_free(&r);
    if (st == 200) return true;
    gc_sleep(0.05);
  }
  return false;
}

/* Run argv to its end (or timeout s); its stdout (bounded) into out, its stderr to errpath. */
static int gc_run_capture(char *const argv[], const char *errpath, double timeout, sy_buf *out) {
  int fd[2];
  if (pipe2(fd, O_CLOEXEC) < 0) return -1;
  char **env = gc_env(true, NULL);
  gc_proc p = {.pid = gc_spawn(argv, env, NULL, false, fd[1], errpath)};
  gc_env_free(env);
  close(fd[1]);
  if (p.pid < 0) {
    close(fd[0]);
    return -1;
  }
  double end = gc_now() + timeout;
  char b[65536];
  for (;;) {
    double l = end - gc_now();
    if (l <= 0) {
      gc_log("%s ran past %.0f s: stopped", argv[0], timeout);
      break;
    }
    struct pollfd pf = {.fd = fd[0], .events = POLLIN};
    int pr = poll(&pf, 1, l > 1 ? 1000 : (int)(l * 1000) + 1);
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    ssize_t n = read(fd[0], b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out->len + (size_t)n <= GC_OUT_LIMIT) sy_buf_append(out, b, (size_t)n);
  }
  close(fd[0]);
  gc_stop(&p);
  return 0;
}

/* ---- nvidia-smi ---- */

typedef struct gc_smi {
  int n;
  long pid[64];
  double mib[64];
} gc_smi;

static void gc_smi_per_pid(gc_smi *s) {
  s->n = 0;
  FILE *f = popen(
      "timeout 30 nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits "
      "2>/dev/null",
      "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    char *end;
    long pid = strtol(line, &end, 10);
    if (end == line || *end != ',' || pid <= 0) continue;
    char *q = end + 1, *e2;
    double mib = strtod(q, &e2);
    if (e2 == q || s->n >= 64) continue;
    s->pid[s->n] = pid;
    s->mib[s->n++] = mib;
  }
  pclose(f);
}

static bool gc_smi_get(const gc_smi *s, const json_t *pid, double *mib) {
  if (!json_is_integer(pid)) return false;
  for (int i = 0; i < s->n; i++)
    if (s->pid[i] == json_integer_value(pid)) {
      *mib = s->mib[i];
      return true;
    }
  return false;
}

/* The first line of an nvidia-smi --query-gpu: 1 when read. */
static int gc_smi_gpu(const char *query, char *line, size_t n) {
  char cmd[256];
  snprintf(cmd, sizeof cmd,
           "timeout 30 nvidia-smi --query-gpu=%s --format=csv,noheader,nounits 2>/dev/null", query);
  FILE *f = popen(cmd, "r");
  if (!f) return 0;
  int ok = fgets(line, (int)n, f) != NULL;
  while (ok && fgetc(f) != EOF) {
  }
  pclose(f);
  if (ok) line[strcspn(line, "\r\n")] = 0;
  return ok;
}

static bool gc_gpu_used_mib(double *mib) {
  char line[128], *end;
  if (!gc_smi_gpu("memory.used", line, sizeof line)) return false;
  *mib = strtod(line, &end);
  return end != line;
}

static bool gc_gpu_total(char *name, size_t nn, double *total) {
  char line[256], *end;
  if (!gc_smi_gpu("name,memory.total", line, sizeof line)) return false;
  char *comma = strrchr(line, ',');
  if (!comma) return false;
  *comma = 0;
  *total = strtod(comma + 1, &end);
  if (end == comma + 1) return false;
  snprintf(name, nn, "%s", line);
  return true;
}

/* ---- the daemon ---- */

typedef struct gc_daemon {
  char url[64];
  gc_proc proc;
} gc_daemon;

/* Start switchyard over entries (a budget < 0: the default) and wait for /health; false if it did
 * not. */
static bool gc_daemon_start(gc_daemon *d, json_t *const *entries, size_t n, const char *name,
                            double budget) {
  int port = gc_free_port();
  snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", port);
  char fname[128];
  snprintf(fname, sizeof fname, "%s.yaml", name);
  char *cfg = gc_path(A.out, fname);
  FILE *f = fopen(cfg, "w");
  if (!f) {
    gc_log("cannot write %s", cfg);
    free(cfg);
    return false;
  }
  fprintf(f, "log_level: warn\nbuiltin_voice: false\n");
  if (budget >= 0)
    fprintf(f, A.gpu ? "memory: {devices: {CUDA0: %.0fMiB}}\n" : "memory: {budget: %.0fMiB}\n",
            floor(budget / MiB));
  fprintf(f, "models:\n");
  for (size_t i = 0; i < n; i++) {
    const json_t *e = entries[i];
    const char *kind = gc_str(e, "kind");
    json_t *m = json_pack("{ss ss si}", "name", gc_str(e, "name"), "file", gc_str(e, "file"),
                          "keep_alive", -1);
    if (strcmp(kind, "transcribe") != 0) {
      json_object_set_new(m, "context", json_integer((json_int_t)gc_num(e, "context")));
      json_object_set_new(m, "parallel", json_integer((json_int_t)gc_num(e, "parallel")));
      json_object_set_new(m, "batch", json_integer(512));
    }
    if (!strcmp(kind, "embed")) json_object_set_new(m, "capabilities", json_pack("[s]", "embed"));
    if (!strcmp(kind, "transcribe")) json_object_set_new(m, "engine", json_string("whisper"));
    if (A.threads) json_object_set_new(m, "threads", json_integer(A.threads));
    if (!A.gpu) json_object_set_new(m, "gpu_layers", json_integer(0));
    char *s = json_dumps(m, JSON_ENSURE_ASCII); /* one line, ", " and ": ": YAML flow style */
    fprintf(f, "  - %s\n", s ? s : "{}");
    free(s);
    json_decref(m);
  }
  fclose(f);
  /* one state folder for the whole run: probes run once per entry, measurements are learned */
  char *state = gc_path(A.out, "state");
  snprintf(fname, sizeof fname, "%s.log", name);
  char *logp = gc_path(A.out, fname);
  char ports[16];
  snprintf(ports, sizeof ports, "%d", port);
  char *argv[] = {(char *)A.daemon, "--config", cfg, "--port", ports, "--worker-dir", A.bin, NULL};
  char **env = gc_env(true, state);
  d->proc = (gc_proc){.pid = gc_spawn(argv, env, logp, false, -1, NULL)};
  gc_env_free(env);
  bool ok = d->proc.pid > 0 && gc_wait_health(d->url, &d->proc, 60);
  if (!ok) {
    gc_log("switchyard did not start (see %s.log)", name);
    gc_stop(&d->proc);
  }
  free(cfg);
  free(state);
  free(logp);
  return ok;
}

static void gc_daemon_close(gc_daemon *d) { gc_stop(&d->proc); }

/* /api/ps's models array (a new reference; empty when it failed). */
static json_t *gc_ps(gc_daemon *d) {
  char url[128];
  snprintf(url, sizeof url, "%s/api/ps", d->url);
  gc_resp r;
  gc_http(url, NULL, NULL, 30, &r);
  json_t *m = json_object_get(r.j, "models");
  json_t *res = r.status == 200 && json_is_array(m) ? json_incref(m) : json_array();
  gc_resp_free(&r);
  return res;
}

/* The /api/ps entry of name (a new reference to an object, empty when absent). */
static json_t *gc_ps_model(gc_daemon *d, const char *name) {
  json_t *ms = gc_ps(d), *res = NULL, *m;
  size_t i;
  json_array_foreach(ms, i, m) {
    if (!strcmp(gc_str(m, "name"), name)) {
      res = json_incref(m);
      break;
    }
  }
  json_decref(ms);
  return res ? res : json_object();
}

/* Send the entry's kind of request (as model, or its name); the status, *secs the time. */
static long gc_one_request(const char *base, const json_t *e, int tokens, const char *model,
                           double *secs) {
  const char *name = model ? model : gc_str(e, "name"), *kind = gc_str(e, "kind");
  char url[512];
  gc_resp r;
  double t = gc_now();
  if (!strcmp(kind, "chat")) {
    snprintf(url, sizeof url, "%s/v1/chat/completions", base);
    json_t *b =
        json_pack("{ss s[{ss ss}] si si}", "model", name, "messages", "role", "user", "content",
                  "Say something about trains.", "max_tokens", tokens, "temperature", 0);
    gc_http(url, b, NULL, 600, &r);
    json_decref(b);
  } else if (!strcmp(kind, "embed")) {
    snprintf(url, sizeof url, "%s/v1/embeddings", base);
    json_t *b = json_pack("{ss ss}", "model", name, "input", "a yard full of railway cars");
    gc_http(url, b, NULL, 600, &r);
    json_decref(b);
  } else {
    snprintf(url, sizeof url, "%s/v1/audio/transcriptions", base);
    gc_http(url, NULL, name, 600, &r);
  }
  *secs = gc_now() - t;
  long st = r.status;
  gc_resp_free(&r);
  return st;
}

/* (gpu estimated, gpu measured, host estimated, host measured) bytes of a /api/ps model. */
static void gc_pool_split(const json_t *m, double v[4]) {
  v[0] = v[1] = v[2] = v[3] = 0;
  json_t *d;
  size_t i;
  json_array_foreach(json_object_get(m, "devices"), i, d) {
    const char *dev = gc_str(d, "device");
    int h = !strcasecmp(dev, "host") || !strcasecmp(dev, "cpu") ? 2 : 0;
    v[h] += gc_num(d, "estimated");
    v[h + 1] += gc_num(d, "measured");
  }
}

static const char *gc_base(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static double gc_file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? (double)st.st_size : 0;
}

static json_t *gc_devices(const json_t *m) {
  json_t *d = json_object_get(m, "devices");
  return json_is_array(d) ? json_deep_copy(d) : json_array();
}

static json_t *gc_or_null(json_t *v) { return v ? json_deep_copy(v) : json_null(); }

/* ---- 1. footprint ---- */
static json_t *gc_phase_footprint(json_t *const *entries, size_t n, json_t *est) {
  gc_daemon d;
  if (!gc_daemon_start(&d, entries, n, "footprint", -1)) return NULL;
  json_t *rows = json_array();
  /* every entry's estimate is made at start (the probe), before anything loads */
  char url[512];
  snprintf(url, sizeof url, "%s/v1/models", d.url);
  gc_resp r;
  gc_http(url, NULL, NULL, 600, &r);
  json_t *m;
  size_t i;
  if (r.status == 200) json_array_foreach(json_object_get(r.j, "data"), i, m) {
      const char *id = gc_str(m, "id");
      if (*id) json_object_set_new(est, id, gc_copy_num(json_object_get(m, "memory"), "estimated"));
    }
  gc_resp_free(&r);
  /* measure distinct files first, then the rest while time and --footprint-max allow */
  json_t *order[GC_MAX_ENTRIES];
  size_t no = 0;
  bool taken[GC_MAX_ENTRIES] = {0};
  for (i = 0; i < n; i++) {
    bool seen = false;
    for (size_t k = 0; k < no; k++)
      seen |= !strcmp(gc_str(order[k], "file"), gc_str(entries[i], "file"));
    if (!seen) order[no++] = entries[i], taken[i] = true;
  }
  for (i = 0; i < n; i++)
    if (!taken[i]) order[no++] = entries[i];
  for (i = 0; i < no && (int)i < A.footprint_max; i++) {
    const json_t *e = order[i];
    const char *name = gc_str(e, "name");
    if (gc_left() < A.reserve) {
      gc_log("footprint: out of time, skipping the rest");
      break;
    }
    double t = gc_now();
    snprintf(url, sizeof url, "%s/api/load", d.url);
    json_t *b = json_pack("{ss}", "model", name);
    gc_http(url, b, NULL, 600, &r);
    json_decref(b);
    double load_s = gc_now() - t;
    json_t *m1 = gc_ps_model(&d, name);
    gc_smi smi = {0};
    if (A.gpu) gc_smi_per_pid(&smi);
    json_t *row = json_object();
    json_object_set_new(row, "name", json_string(name));
    json_object_set_new(row, "kind", json_string(gc_str(e, "kind")));
    json_object_set_new(row, "file", json_string(gc_base(gc_str(e, "file"))));
    json_object_set_new(row, "file_bytes",
                        json_integer((json_int_t)gc_file_size(gc_str(e, "file"))));
    json_object_set_new(row, "context", gc_or_null(json_object_get(e, "context")));
    json_object_set_new(row, "parallel", gc_or_null(json_object_get(e, "parallel")));
    json_object_set_new(row, "load_status", json_integer(r.status));
    json_object_set_new(row, "load_s", json_real(gc_round(load_s, 2)));
    json_object_set_new(row, "estimated", gc_copy_num(m1, "size_estimated"));
    json_object_set_new(row, "measured_after_load", gc_copy_num(m1, "size_measured"));
    json_object_set_new(row, "devices_after_load", gc_devices(m1));
    json_object_set_new(row, "pid", gc_or_null(json_object_get(m1, "pid")));
    if (r.status != 200) json_object_set_new(row, "load_error", gc_resp_json(&r));
    gc_resp_free(&r);
    double mib;
    if (A.gpu && gc_smi_get(&smi, json_object_get(m1, "pid"), &mib))
      json_object_set_new(row, "nvidia_smi_mib_after_load", json_real(mib));
    json_decref(m1);
    double rs;
    long rst = gc_one_request(d.url, e, 8, NULL, &rs);
    json_t *m2 = gc_ps_model(&d, name);
    json_object_set_new(row, "request_status", json_integer(rst));
    json_object_set_new(row, "request_s", json_real(gc_round(rs, 2)));
    json_object_set_new(row, "measured_after_request", gc_copy_num(m2, "size_measured"));
    json_object_set_new(row, "devices_after_request", gc_devices(m2));
    bool have_smi = false;
    double smi_req = 0;
    if (A.gpu) {
      gc_smi_per_pid(&smi);
      if ((have_smi = gc_smi_get(&smi, json_object_get(m2, "pid"), &smi_req)))
        json_object_set_new(row, "nvidia_smi_mib_after_request", json_real(smi_req));
    }
    double v[4];
    gc_pool_split(m2, v);
    json_decref(m2);
    json_object_set_new(row, "gpu_estimated", json_integer((json_int_t)v[0]));
    json_object_set_new(row, "gpu_measured", json_integer((json_int_t)v[1]));
    json_object_set_new(row, "host_estimated", json_integer((json_int_t)v[2]));
    json_object_set_new(row, "host_measured", json_integer((json_int_t)v[3]));
    double e_est = gc_num(row, "estimated"), e_meas = gc_num(row, "measured_after_request");
    json_object_set_new(row, "error_pct", gc_pct(e_est, e_meas));
    if (have_smi) json_object_set_new(row, "error_pct_vs_nvidia_smi", gc_pct(v[0], smi_req * MiB));
    json_object_set_new(row, "estimated_before_load", gc_copy_num(est, name));
    json_array_append_new(rows, row);
    char pb[32];
    gc_log("footprint %s: estimated %.0f MiB, measured %.0f MiB (%s%%), load %.1fs", name,
           e_est / MiB, e_meas / MiB, gc_pystr(pb, sizeof pb, json_object_get(row, "error_pct")),
           load_s);
    gc_post_model(d.url, "/api/unload", name);
  }
  gc_daemon_close(&d);
  return rows;
}

/* ---- 2. mixed workload ---- */
static atomic_bool gc_sampling;
static double gc_peak_mib;
static long gc_samples;

/* the card's total use, once a second: did anything ever overflow it? */
static void *gc_sampler(void *arg) {
  while (atomic_load(&gc_sampling)) {
    for (int i = 0; i < 20 && atomic_load(&gc_sampling); i++) gc_sleep(0.05);
    if (!atomic_load(&gc_sampling)) break;
    double u;
    if (gc_gpu_used_mib(&u)) {
      if (u > gc_peak_mib) gc_peak_mib = u;
      gc_samples++;
    }
  }
  return NULL;
}

/* Joins names of entries of kind with commas into b; false when there are none. */
static bool gc_names(json_t *const *entries, size_t n, const char *kind, sy_buf *b) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(gc_str(entries[i], "kind"), kind)) {
      if (b->len) sy_buf_puts(b, ",");
      sy_buf_puts(b, gc_str(entries[i], "name"));
    }
  return b->len > 0;
}

static json_t *gc_phase_workload(json_t *const *entries, size_t n, double budget) {
  gc_daemon d;
  if (!gc_daemon_start(&d, entries, n, "workload", budget)) return NULL;
  sy_buf chat = {0}, embed = {0}, tr = {0}, out = {.limit = GC_OUT_LIMIT + 1};
  char secs[32], clients[16], tokens[16];
  snprintf(secs, sizeof secs, "%g", A.seconds);
  snprintf(clients, sizeof clients, "%d", A.clients);
  snprintf(tokens, sizeof tokens, "%d", A.tokens);
  char *argv[32] = {(char *)A.load, "--url", d.url,     "--seconds", secs,     "--clients", clients,
                    "--tokens",     tokens,  "--stick", "3",         "--seed", "7"};
  int ac = 13;
  if (gc_names(entries, n, "chat", &chat)) argv[ac++] = "--chat", argv[ac++] = chat.data;
  if (gc_names(entries, n, "embed", &embed)) argv[ac++] = "--embed", argv[ac++] = embed.data;
  if (gc_names(entries, n, "transcribe", &tr) && A.audio && !A.no_transcribe_load)
    argv[ac++] = "--transcribe", argv[ac++] = tr.data, argv[ac++] = "--audio",
    argv[ac++] = (char *)A.audio;
  char bs[64];
  if (budget < 0)
    snprintf(bs, sizeof bs, "the card");
  else
    snprintf(bs, sizeof bs, "%.0f MiB", budget / MiB);
  gc_log("workload: %g s, %d clients, budget %s", A.seconds, A.clients, bs);
  pthread_t th;
  bool sampling = false;
  if (A.gpu) {
    atomic_store(&gc_sampling, true);
    sampling = pthread_create(&th, NULL, gc_sampler, NULL) == 0;
  }
  char *errp = gc_path(A.out, "workload.stderr");
  gc_run_capture(argv, errp, A.seconds + 900, &out);
  free(errp);
  if (sampling) {
    atomic_store(&gc_sampling, false);
    pthread_join(th, NULL);
  }
  json_t *res = out.len ? json_loadb(out.data, out.len, 0, NULL) : NULL;
  if (!json_is_object(res)) {
    json_decref(res);
    size_t k = out.len > 2000 ? out.len - 2000 : 0;
    res = json_pack("{ss s+#}", "error", "gpucheck-load printed no JSON", "stdout",
                    out.data ? out.data + k : "", out.len - k);
    if (!res) res = json_pack("{ss}", "error", "gpucheck-load printed no JSON");
  }
  json_object_set_new(res, "budget", budget < 0 ? json_null() : json_real(budget));
  if (A.gpu) {
    json_object_set_new(res, "peak_gpu_used_mib", json_real(gc_peak_mib));
    json_object_set_new(res, "gpu_samples", json_integer(gc_samples));
  }
  sy_buf_free(&chat);
  sy_buf_free(&embed);
  sy_buf_free(&tr);
  sy_buf_free(&out);
  gc_daemon_close(&d);
  return res;
}

/* ---- 3. swap vs cold start ---- */

static int gc_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static json_t *gc_median(double *v, size_t n, int nd) {
  if (!n) return json_null();
  qsort(v, n, sizeof *v, gc_cmp_double);
  double m = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return json_real(gc_round(m, nd));
}

static json_t *gc_names_of(json_t *models) {
  json_t *a = json_array(), *m;
  size_t i;
  json_array_foreach(models, i, m) json_array_append_new(a, json_string(gc_str(m, "name")));
  return a;
}

static bool gc_in(json_t *names, const char *name) {
  json_t *v;
  size_t i;
  json_array_foreach(names, i, v) if (!strcmp(json_string_value(v), name)) return true;
  return false;
}

/* Spawn llama-server on file (ctx per slot x slots); its base URL in base. */
static gc_proc gc_llama_server(const char *file, long ctx, long slots, const char *log, bool append,
                               bool ub, char *base, size_t bl) {
  int port = gc_free_port();
  snprintf(base, bl, "http://127.0.0.1:%d", port);
  char c[32], np[16], ps[16], th[16];
  snprintf(c, sizeof c, "%ld", ctx * slots);
  snprintf(np, sizeof np, "%ld", slots);
  snprintf(ps, sizeof ps, "%d", port);
  snprintf(th, sizeof th, "%d", A.threads);
  char *argv[32] = {
      (char *)A.llama_server, "-m",     (char *)file, "-c",     c,  "-np",        np,   "-ngl",
      A.gpu ? "99" : "0",     "--host", "127.0.0.1",  "--port", ps, "--no-webui", "-b", "512"};
  int ac = 16;
  if (ub) argv[ac++] = "-ub", argv[ac++] = "512";
  if (A.threads) argv[ac++] = "-t", argv[ac++] = th, argv[ac++] = "-tb", argv[ac++] = th;
  char *logp = gc_path(A.out, log);
  char **env = gc_env(false, NULL);
  gc_proc p = {.pid = gc_spawn(argv, env, logp, append, -1, NULL)};
  gc_env_free(env);
  free(logp);
  return p;
}

static json_t *gc_swap_runs(gc_daemon *d, const json_t *a, const json_t *b, double budget,
                            json_t *est) {
  const char *an = gc_str(a, "name"), *bn = gc_str(b, "name");
  json_t *res = json_pack("{ss ss sf so so s[]}", "A", an, "B", bn, "budget", budget, "A_estimated",
                          gc_or_null(json_object_get(est, an)), "B_estimated",
                          gc_or_null(json_object_get(est, bn)), "swaps");
  json_t *swaps = json_object_get(res, "swaps");
  double ok[64], okc[64];
  size_t nok = 0, nokc = 0;
  for (int i = 0; i < A.swap_runs && i < 64; i++) {
    if (gc_left() < 45) break;
    const json_t *src = i % 2 == 0 ? a : b, *dst = i % 2 == 0 ? b : a;
    const char *sn = gc_str(src, "name"), *dn = gc_str(dst, "name");
    long lst = gc_post_model(d->url, "/api/load", sn);
    json_t *ps = gc_ps(d), *before = gc_names_of(ps);
    json_decref(ps);
    double s;
    long st = gc_one_request(d->url, dst, 1, NULL, &s);
    ps = gc_ps(d);
    json_t *after = gc_names_of(ps);
    json_decref(ps);
    bool swapped = gc_in(before, sn) && !gc_in(after, sn);
    char *la = json_dumps(after, JSON_COMPACT);
    gc_log("swap %s -> %s: %.2fs (HTTP %ld), resident %s", sn, dn, s, st, la ? la : "?");
    free(la);
    json_array_append_new(
        swaps, json_pack("{ss ss sI so sI sf so sb}", "from", sn, "to", dn, "load_from_status",
                         (json_int_t)lst, "resident_before", before, "status", (json_int_t)st,
                         "seconds", gc_round(s, 3), "resident_after", after, "swapped", swapped));
    if (st == 200 && dst == b && swapped) ok[nok++] = gc_round(s, 3);
  }
  json_object_set_new(res, "swap_to_B_median_s", gc_median(ok, nok, 3));
  /* a bare llama-server cold start of B: same file, context, slots, layers, threads */
  json_t *cold = json_array();
  for (int i = 0; i < A.cold_runs && i < 64; i++) {
    if (gc_left() < 40) break;
    char base[64];
    double t = gc_now();
    gc_proc p =
        gc_llama_server(gc_str(b, "file"), (long)gc_num(b, "context"), (long)gc_num(b, "parallel"),
                        "llama-server-cold.log", true, false, base, sizeof base);
    bool healthy = p.pid > 0 && gc_wait_health(base, &p, 300);
    double t_health = gc_now() - t, s = 0;
    long st = healthy ? gc_one_request(base, b, 1, "x", &s) : 0;
    double total = gc_now() - t;
    gc_stop(&p);
    json_array_append_new(
        cold, json_pack("{sb sf sI sf}", "healthy", healthy, "to_health_s", gc_round(t_health, 3),
                        "first_token_status", (json_int_t)st, "spawn_to_first_token_s",
                        gc_round(total, 3)));
    if (st == 200) okc[nokc++] = gc_round(total, 3);
    gc_log("llama-server cold start of %s: health %.2fs, first token %.2fs", bn, t_health, total);
  }
  json_object_set_new(res, "llama_server_cold", cold);
  json_object_set_new(res, "llama_server_cold_median_s", gc_median(okc, nokc, 3));
  return res;
}

/* A daemon of its own over two chat entries (different files) with a budget that holds either but
 * not both, whatever the card: so a request to B must unload A first. */
static json_t *gc_phase_swap(json_t *const *entries, size_t n, json_t *size) {
  json_t *chats[GC_MAX_ENTRIES];
  size_t nc = 0;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(gc_str(entries[i], "kind"), "chat")) {
      /* stable insertion, largest first */
      size_t k = nc++;
      double s = gc_num(size, gc_str(entries[i], "name"));
      while (k > 0 && gc_num(size, gc_str(chats[k - 1], "name")) < s) chats[k] = chats[k - 1], k--;
      chats[k] = entries[i];
    }
  json_t *pair[2] = {NULL, NULL};
  for (size_t i = 0; i < nc && !pair[0]; i++)
    for (size_t k = i + 1; k < nc; k++)
      if (strcmp(gc_str(chats[i], "file"), gc_str(chats[k], "file")) != 0 &&
          gc_num(size, gc_str(chats[k], "name")) > 0.15 * gc_num(size, gc_str(chats[i], "name"))) {
        pair[0] = chats[i], pair[1] = chats[k];
        break;
      }
  if (!pair[0])
    return json_pack("{ss}", "skipped",
                     "no two chat entries of different files and comparable size");
  double sa = gc_num(size, gc_str(pair[0], "name")), sb = gc_num(size, gc_str(pair[1], "name"));
  double budget = 1.1 * (sa > sb ? sa : sb);
  gc_daemon d;
  if (!gc_daemon_start(&d, pair, 2, "swap", budget))
    return json_pack("{ss}", "error", "switchyard did not start");
  json_t *res = gc_swap_runs(&d, pair[0], pair[1], budget, size);
  gc_daemon_close(&d);
  return res;
}

/* ---- 4. decode speed ---- */
static json_t *gc_run_bench(const char *base, const char *streams_out) {
  char tok[16], runs[16];
  snprintf(tok, sizeof tok, "%d", A.decode_tokens);
  snprintf(runs, sizeof runs, "%d", A.decode_runs);
  char *argv[] = {
      (char *)A.bench, "--url", (char *)base, "--model", "decode",         "--tokens", tok,
      "--streams",     "8",     "--runs",     runs,      "--latency-runs", "5",        NULL};
  char errp[PATH_MAX + 16];
  snprintf(errp, sizeof errp, "%s.stderr", streams_out);
  sy_buf out = {.limit = GC_OUT_LIMIT + 1}, err = {.limit = GC_OUT_LIMIT + 1};
  gc_run_capture(argv, errp, 1800, &out);
  FILE *f = fopen(errp, "r");
  if (f) {
    char b[4096];
    size_t k;
    while ((k = fread(b, 1, sizeof b, f)) > 0 && err.len + k <= GC_OUT_LIMIT)
      sy_buf_append(&err, b, k);
    fclose(f);
    unlink(errp);
  }
  f = fopen(streams_out, "w");
  if (f) {
    fprintf(f, "%s\n# stderr\n%s", out.data ? out.data : "", err.data ? err.data : "");
    fclose(f);
  }
  json_t *res = out.len ? json_loadb(out.data, out.len, 0, NULL) : NULL;
  if (!json_is_object(res)) {
    json_decref(res);
    size_t k = err.len > 1000 ? err.len - 1000 : 0;
    res = json_pack("{ss#}", "error", err.data ? err.data + k : "", err.len - k);
    if (!res) res = json_pack("{ss}", "error", "bench printed no JSON");
  }
  sy_buf_free(&out);
  sy_buf_free(&err);
  return res;
}

static json_t *gc_phase_decode(const json_t *entry) {
  json_t *e = json_deep_copy(entry);
  json_object_set_new(e, "name", json_string("decode"));
  json_object_set_new(e, "context", json_integer(A.decode_ctx));
  json_object_set_new(e, "parallel", json_integer(8));
  json_t *res = json_pack("{ss si si}", "model", gc_base(gc_str(e, "file")), "context_per_sequence",
                          A.decode_ctx, "slots", 8);
  gc_daemon d;
  if (!gc_daemon_start(&d, &e, 1, "decode", -1)) {
    json_decref(e);
    return res;
  }
  gc_post_model(d.url, "/api/load", "decode");
  char *p = gc_path(A.out, "decode-switchyard.json");
  json_object_set_new(res, "switchyard", gc_run_bench(d.url, p));
  free(p);
  gc_daemon_close(&d);
  if (gc_left() >= 20) {
    char base[64];
    gc_proc lp = gc_llama_server(gc_str(e, "file"), A.decode_ctx, 8, "llama-server-decode.log",
                                 false, true, base, sizeof base);
    if (lp.pid > 0 && gc_wait_health(base, &lp, 300)) {
      p = gc_path(A.out, "decode-llama-server.json");
      json_object_set_new(res, "llama_server", gc_run_bench(base, p));
      free(p);
    }
    gc_stop(&lp);
  }
  json_decref(e);
  return res;
}

/* ---- summary.md ---- */
static void gc_summary(sy_buf *L, const char *card, size_t n, json_t *fp, json_t *wl, json_t *sw,
                       json_t *dec, double budget, double demand) {
  char b1[64], b2[64], b3[64], b4[64], b5[64], b6[64], b7[64];
  if (A.gpu)
    sy_buf_printf(L, "# gpu-check (gpu mode) — %s\n\n", card ? card : "None");
  else
    sy_buf_printf(L, "# gpu-check (cpu mode) — CPU only (%ld cores), no GPU\n\n",
                  sysconf(_SC_NPROCESSORS_ONLN));
  sy_buf_printf(
      L,
      "%zu matrix entries, total estimated demand %s MiB, budget %s MiB (demand/budget = %.2f)\n\n",
      n, gc_commas(b1, sizeof b1, demand / MiB), gc_commas(b2, sizeof b2, budget / MiB),
      demand / budget);
  sy_buf_puts(L, "## 1. Footprint: estimated before load vs measured\n\n");
  json_t *r;
  size_t i;
  if (A.gpu) {
    sy_buf_puts(L,
                "| entry | file MiB | ctx×slots | estimated MiB (GPU) | NVML via /api/ps MiB | "
                "nvidia-smi MiB | error vs "
                "nvidia-smi | total est | total measured | error "
                "|\n|---|---|---|---|---|---|---|---|---|---|\n");
  } else {
    sy_buf_puts(L,
                "| entry | kind | file MiB | ctx×slots | estimated MiB | measured after load | "
                "after 1 request | "
                "error | load s |\n|---|---|---|---|---|---|---|---|---|\n");
  }
  json_array_foreach(fp, i, r) {
    json_t *ctx = json_object_get(r, "context"), *par = json_object_get(r, "parallel");
    char cs[32], ps[32], e1[32], e2[32];
    const char *c = json_is_null(ctx) || !ctx || (json_is_number(ctx) && !json_number_value(ctx))
                        ? "—"
                        : gc_pystr(cs, 32, ctx);
    const char *p = json_is_null(par) || !par || (json_is_number(par) && !json_number_value(par))
                        ? "—"
                        : gc_pystr(ps, 32, par);
    if (A.gpu) {
      json_t *smi = json_object_get(r, "nvidia_smi_mib_after_request");
      sy_buf_printf(L, "| %s | %s | %s×%s | %s | %s | %s | %s%% | %s | %s | %s%% |\n",
                    gc_str(r, "name"), gc_fmt_mib(b1, 64, gc_num(r, "file_bytes")), c, p,
                    gc_fmt_mib(b2, 64, gc_num(r, "gpu_estimated")),
                    gc_fmt_mib(b3, 64, gc_num(r, "gpu_measured")),
                    smi ? gc_pystr(b4, 64, smi) : "—",
                    gc_pystr(e1, 32, json_object_get(r, "error_pct_vs_nvidia_smi")),
                    gc_fmt_mib(b5, 64, gc_num(r, "estimated")),
                    gc_fmt_mib(b6, 64, gc_num(r, "measured_after_request")),
                    gc_pystr(e2, 32, json_object_get(r, "error_pct")));
    } else {
      sy_buf_printf(L, "| %s | %s | %s | %s×%s | %s | %s | %s | %s%% | %s |\n", gc_str(r, "name"),
                    gc_str(r, "kind"), gc_fmt_mib(b1, 64, gc_num(r, "file_bytes")), c, p,
                    gc_fmt_mib(b2, 64, gc_num(r, "estimated")),
                    gc_fmt_mib(b3, 64, gc_num(r, "measured_after_load")),
                    gc_fmt_mib(b4, 64, gc_num(r, "measured_after_request")),
                    gc_pystr(e1, 32, json_object_get(r, "error_pct")),
                    gc_pystr(b5, 64, json_object_get(r, "load_s")));
    }
  }
  sy_buf_puts(
      L, "\nerror = (estimated − measured) / measured; positive = over-estimate (safe side).\n\n");
  if (wl && json_object_size(wl)) {
    sy_buf_puts(
        L,
        "## 2. Mixed workload\n\n| seconds | clients | requests | ok | errors | OOMs | loads | "
        "evictions | "
        "req/s | p50 s | p99 s | per kind |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    sy_buf kinds = {.limit = 1 << 20};
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(wl, "kinds"), k, v) {
      if (kinds.len) sy_buf_puts(&kinds, "; ");
      sy_buf_printf(&kinds, "%s: %s ok / %s err, p50 %s s, p99 %s s", k,
                    gc_pystr(b1, 64, json_object_get(v, "ok")),
                    gc_pystr(b2, 64, json_object_get(v, "errors")),
                    gc_pystr(b3, 64, json_object_get(v, "p50_s")),
                    gc_pystr(b4, 64, json_object_get(v, "p99_s")));
    }
    static const char *cols[] = {"seconds",        "clients", "requests", "ok",
                                 "errors",         "ooms",    "loads",    "evictions",
                                 "requests_per_s", "p50_s",   "p99_s"};
    for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
      sy_buf_printf(L, "| %s ", gc_pystr(b1, 64, json_object_get(wl, cols[c])));
    sy_buf_printf(L, "| %s |\n\n", kinds.data ? kinds.data : "");
    sy_buf_free(&kinds);
    double peak = gc_num(wl, "peak_gpu_used_mib");
    if (peak)
      sy_buf_printf(L,
                    "Peak memory used on the card during the workload (nvidia-smi, 1 s samples): "
                    "%s MiB of %s.\n\n",
                    gc_commas(b1, 64, peak), card ? card : "None");
  }
  if (sw && json_object_get(sw, "A")) {
    const char *bn = gc_str(sw, "B");
    sy_buf_printf(L,
                  "## 3. Swap vs cold start\n\nA = %s, B = %s, on a daemon of their own whose "
                  "budget (%s MiB) holds "
                  "either, not both. Swap: A loaded, a 1-token chat request to B (unload A, load "
                  "B, first token). "
                  "Cold: spawn llama-server on B's file, /health, the same request.\n\n",
                  gc_str(sw, "A"), bn, gc_commas(b1, 64, gc_num(sw, "budget") / MiB));
    sy_buf_puts(L,
                "| swap A→B median s | runs | llama-server cold start median s | runs "
                "|\n|---|---|---|---|\n");
    int runs = 0;
    json_t *x;
    json_array_foreach(json_object_get(sw, "swaps"), i, x) {
      if (json_is_true(json_object_get(x, "swapped")) && !strcmp(gc_str(x, "to"), bn)) runs++;
    }
    sy_buf_printf(L, "| %s | %d | %s | %zu |\n\n",
                  gc_pystr(b1, 64, json_object_get(sw, "swap_to_B_median_s")), runs,
                  gc_pystr(b2, 64, json_object_get(sw, "llama_server_cold_median_s")),
                  json_array_size(json_object_get(sw, "llama_server_cold")));
  }
  if (dec && json_object_get(dec, "switchyard")) {
    sy_buf_printf(L, "## 4. Decode speed\n\nmodel %s, context %s/sequence, 8 slots\n\n",
                  gc_str(dec, "model"),
                  gc_pystr(b1, 64, json_object_get(dec, "context_per_sequence")));
    sy_buf_puts(L, "| metric | switchyard | llama-server |\n|---|---|---|\n");
    json_t *s = json_object_get(dec, "switchyard"), *l = json_object_get(dec, "llama_server");
    static const char *keys[][2] = {{"single_stream_tok_s", "decode tok/s, 1 stream"},
                                    {"aggregate_tok_s", "decode tok/s, 8 streams"},
                                    {"ttft_ms", "time to first token, ms"}};
    for (int k = 0; k < 3; k++) {
      json_t *sv = json_object_get(s, keys[k][0]), *lv = json_object_get(l, keys[k][0]);
      sy_buf_printf(L, "| %s | %s | %s |\n", keys[k][1], sv ? gc_pystr(b6, 64, sv) : "—",
                    lv ? gc_pystr(b7, 64, lv) : "—");
    }
  }
}

/* ---- the tone WAV ---- */
static int gc_write_wav(const char *path, double secs) {
  if (!(secs > 0 && secs <= 3600)) {
    fprintf(stderr, "gpucheck --write-wav: SECONDS must be in (0, 3600]\n");
    return 2;
  }
  uint32_t n = (uint32_t)(16000 * secs), bytes = n * 2, riff = 36 + bytes;
  unsigned char h[44] =
      "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0data";
  memcpy(h + 4, &riff, 4); /* little-endian host: x86-64 and arm64 */
  memcpy(h + 40, &bytes, 4);
  FILE *f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "gpucheck --write-wav: %s: %s\n", path, strerror(errno));
    return 1;
  }
  fwrite(h, 1, 44, f);
  uint32_t seed = 1;
  for (uint32_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    int noise = (int)((seed >> 16) % 601) - 300;
    int16_t s = (int16_t)(8000 * sin(2 * M_PI * 440 * i / 16000.0) + noise);
    fwrite(&s, 2, 1, f);
  }
  return fclose(f) == 0 ? 0 : 1;
}

/* ---- the GPU matrix ---- */

/* `--gpu-entries MODELS CARD_MIB [DIV]`: the entries of scripts/gpu-check.sh --gpu on stdout: every
 * file at a few context sizes until the rough demand is ~3x the card (DIV: contexts divided, for
 * the GPU_CHECK_SIM rehearsal with small models). */
static int gc_gpu_entries(const char *models, double card_mib, int div) {
  /* file, KV bytes per token at f16 = layers x kv heads x head_dim x 2 x 2 */
  static const struct {
    const char *f;
    double kv;
  } files[] = {{"qwen3-32b", 64 * 8 * 128 * 4},
               {"qwen3-14b", 40 * 8 * 128 * 4},
               {"qwen3-8b", 36 * 8 * 128 * 4},
               {"qwen2.5-7b", 28 * 4 * 128 * 4}};
  static const struct {
    const char *f;
    long ctx, np;
  } plan[] = {{"qwen2.5-7b", 8192, 8}, {"qwen3-8b", 8192, 4},    {"qwen3-14b", 8192, 4},
              {"qwen3-32b", 8192, 4},  {"qwen3-8b", 32768, 4},   {"qwen3-14b", 32768, 4},
              {"qwen3-32b", 32768, 2}, {"qwen2.5-7b", 32768, 4}, {"qwen3-8b", 40960, 4},
              {"qwen3-14b", 40960, 4}, {"qwen3-32b", 40960, 4},  {"qwen3-32b", 16384, 8},
              {"qwen3-14b", 16384, 8}, {"qwen3-8b", 16384, 8},   {"qwen3-32b", 24576, 4},
              {"qwen3-14b", 24576, 4}};
  double card = card_mib * MiB;
  char path[PATH_MAX];
  json_t *chats = json_array();
  snprintf(path, sizeof path, "%s/qwen3-embedding-0.6b.gguf", models);
  json_t *emb = json_pack("{ss ss ss si si}", "name", "qwen3-embedding-0.6b", "kind", "embed",
                          "file", path, "context", (json_int_t)(8192 / div), "parallel", 4);
  double demand =
      gc_file_size(path) + 112 * 1024.0 * (8192 / div) * 4; /* the embedder: KV 112 KiB/token */
  snprintf(path, sizeof path, "%s/whisper-large-v3.bin", models);
  json_t *wh =
      json_pack("{ss ss ss}", "name", "whisper-large-v3", "kind", "transcribe", "file", path);
  demand += 1.25 * gc_file_size(path); /* its file + a quarter, as the daemon estimates it */
  for (size_t i = 0; i < sizeof plan / sizeof *plan && demand < 3 * card; i++) {
    double kv = 0;
    for (size_t k = 0; k < sizeof files / sizeof *files; k++)
      if (!strcmp(files[k].f, plan[i].f)) kv = files[k].kv;
    long ctx = plan[i].ctx / div;
    snprintf(path, sizeof path, "%s/%s.gguf", models, plan[i].f);
    demand += gc_file_size(path) + kv * ctx * plan[i].np + 1.5e9;
    char name[96];
    if (ctx >= 1024)
      snprintf(name, sizeof name, "%s-%ldk-x%ld", plan[i].f, ctx / 1024, plan[i].np);
    else
      snprintf(name, sizeof name, "%s-%ld-x%ld", plan[i].f, ctx, plan[i].np);
    json_array_append_new(
        chats, json_pack("{ss ss ss sI sI}", "name", name, "kind", "chat", "file", path, "context",
                         (json_int_t)ctx, "parallel", (json_int_t)plan[i].np));
  }
  json_array_append_new(chats, emb);
  json_array_append_new(chats, wh);
  char *s = json_dumps(chats, JSON_INDENT(1) | JSON_ENSURE_ASCII);
  if (s) puts(s);
  fprintf(stderr, "gpu-check: %zu entries, rough demand %.0f GiB for a %.0f GiB card\n",
          json_array_size(chats), demand / (1024.0 * MiB), card / (1024.0 * MiB));
  free(s);
  json_decref(chats);
  return s ? 0 : 1;
}

/* ---- main ---- */

static int gc_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(p);
}

static void gc_mkdirs(const char *dir) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", dir);
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      mkdir(p, 0755);
      *s = '/';
    }
  mkdir(p, 0755);
}

static json_t *gc_results;

static void gc_save(void) {
  const char *dirs[2] = {A.out, A.mirror};
  for (int i = 0; i < 2; i++)
    if (dirs[i]) {
      char *p = gc_path(dirs[i], "results.json");
      if (json_dump_file(gc_results, p,
                         JSON_INDENT(1) | JSON_REAL_PRECISION(15) | JSON_ENSURE_ASCII) != 0)
        gc_log("cannot write %s", p);
      free(p);
    }
}

static void gc_utc(char *b, size_t n) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(b, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void gc_usage(void) {
  fprintf(
      stderr,
      "usage: gpucheck --mode cpu|gpu --entries FILE --daemon BIN --bin DIR --load BIN --bench "
      "BIN\n"
      "                --llama-server BIN --out DIR [--audio WAV] [--lib-path P] [--seconds 60] "
      "[--clients 8]\n"
      "                [--tokens 16] [--threads 0] [--ratio 3] [--swap-runs 4] [--cold-runs 2]\n"
      "                [--decode-model NAME] [--decode-ctx 1024] [--decode-tokens 128] "
      "[--decode-runs 2]\n"
      "                [--deadline UNIX] [--phases 1234] [--mirror DIR] [--no-transcribe-load]\n"
      "                [--footprint-max 100] [--reserve 60]\n"
      "       gpucheck --write-wav OUT.wav SECONDS\n"
      "       gpucheck --gpu-entries MODELS_DIR CARD_MIB [CONTEXT_DIVISOR]\n");
}

/* A whole number in [lo, hi] or exit 2. */
static double gc_arg_num(const char *opt, const char *s, double lo, double hi) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "gpucheck: --%s: expected a number in [%g, %g], got '%s'\n", opt, lo, hi, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "--write-wav")) {
    if (argc != 4) {
      gc_usage();
      return 2;
    }
    return gc_write_wav(argv[2], gc_arg_num("write-wav", argv[3], 0, 3600));
  }
  if (argc >= 2 && !strcmp(argv[1], "--gpu-entries")) {
    if (argc != 4 && argc != 5) {
      gc_usage();
      return 2;
    }
    return gc_gpu_entries(
        argv[2], gc_arg_num("gpu-entries", argv[3], 1, 1e8),
        argc == 5 && argv[4][0] ? (int)gc_arg_num("gpu-entries", argv[4], 1, 1024) : 1);
  }
  gc_t0 = gc_now();
  static const struct option opts[] = {{"mode", 1, 0, 'm'},
                                       {"entries", 1, 0, 'e'},
                                       {"daemon", 1, 0, 'd'},
                                       {"bin", 1, 0, 'b'},
                                       {"load", 1, 0, 'L'},
                                       {"bench", 1, 0, 'B'},
                                       {"llama-server", 1, 0, 'S'},
                                       {"audio", 1, 0, 'a'},
                                       {"out", 1, 0, 'o'},
                                       {"lib-path", 1, 0, 'l'},
                                       {"seconds", 1, 0, 's'},
                                       {"clients", 1, 0, 'c'},
                                       {"tokens", 1, 0, 't'},
                                       {"threads", 1, 0, 'T'},
                                       {"ratio", 1, 0, 'r'},
                                       {"swap-runs", 1, 0, 1},
                                       {"cold-runs", 1, 0, 2},
                                       {"decode-model", 1, 0, 3},
                                       {"decode-ctx", 1, 0, 4},
                                       {"decode-tokens", 1, 0, 5},
                                       {"decode-runs", 1, 0, 6},
                                       {"deadline", 1, 0, 7},
                                       {"phases", 1, 0, 8},
                                       {"mirror", 1, 0, 9},
                                       {"no-transcribe-load", 0, 0, 10},
                                       {"footprint-max", 1, 0, 11},
                                       {"reserve", 1, 0, 12},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *bin = NULL;
  int c, li;
  while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
    const char *o = c == '?' ? "" : opts[li].name;
    switch (c) {
      case 'm':
        A.mode = optarg;
        break;
      case 'e':
        A.entries = optarg;
        break;
      case 'd':
        A.daemon = optarg;
        break;
      case 'b':
        bin = optarg;
        break;
      case 'L':
        A.load = optarg;
        break;
      case 'B':
        A.bench = optarg;
        break;
      case 'S':
        A.llama_server = optarg;
        break;
      case 'a':
        A.audio = optarg;
        break;
      case 'o':
        A.out = optarg;
        break;
      case 'l':
        A.lib_path = optarg;
        break;
      case 's':
        A.seconds = gc_arg_num(o, optarg, 1, 86400);
        break;
      case 'c':
        A.clients = (int)gc_arg_num(o, optarg, 1, 1024);
        break;
      case 't':
        A.tokens = (int)gc_arg_num(o, optarg, 1, 1 << 20);
        break;
      case 'T':
        A.threads = (int)gc_arg_num(o, optarg, 0, 1024);
        break;
      case 'r':
        A.ratio = gc_arg_num(o, optarg, 0.01, 1000);
        break;
      case 1:
        A.swap_runs = (int)gc_arg_num(o, optarg, 0, 64);
        break;
      case 2:
        A.cold_runs = (int)gc_arg_num(o, optarg, 0, 64);
        break;
      case 3:
        A.decode_model = optarg;
        break;
      case 4:
        A.decode_ctx = (int)gc_arg_num(o, optarg, 1, 1 << 20);
        break;
      case 5:
        A.decode_tokens = (int)gc_arg_num(o, optarg, 1, 1 << 20);
        break;
      case 6:
        A.decode_runs = (int)gc_arg_num(o, optarg, 1, 1000);
        break;
      case 7:
        A.deadline = gc_arg_num(o, optarg, 0, 1e11);
        break;
      case 8:
        A.phases = optarg;
        break;
      case 9:
        A.mirror = optarg;
        break;
      case 10:
        A.no_transcribe_load = true;
        break;
      case 11:
        A.footprint_max = (int)gc_arg_num(o, optarg, 0, GC_MAX_ENTRIES);
        break;
      case 12:
        A.reserve = gc_arg_num(o, optarg, 0, 86400);
        break;
      default:
        gc_usage();
        return 2;
    }
  }
  if (optind != argc || !A.mode || (strcmp(A.mode, "cpu") && strcmp(A.mode, "gpu")) || !A.entries ||
      !A.daemon || !bin || !A.load || !A.bench || !A.llama_server || !A.out) {
    gc_usage();
    return 2;
  }
  A.gpu = !strcmp(A.mode, "gpu");
  if (!realpath(bin, A.bin)) {
    fprintf(stderr, "gpucheck: --bin %s: %s\n", bin, strerror(errno));
    return 2;
  }
  gc_mkdirs(A.out);
  if (A.mirror) gc_mkdirs(A.mirror);
  char *state = gc_path(A.out, "state");
  nftw(state, gc_rm, 16, FTW_DEPTH | FTW_PHYS); /* estimates start fresh */
  free(state);
  json_error_t jerr;
  json_t *entries_j = json_load_file(A.entries, 0, &jerr);
  size_t n = json_array_size(entries_j);
  if (!json_is_array(entries_j) || n == 0 || n > GC_MAX_ENTRIES) {
    fprintf(stderr, "gpucheck: %s: expected a JSON list of 1..%d entries (%s)\n", A.entries,
            GC_MAX_ENTRIES, entries_j ? "wrong shape" : jerr.text);
    return 2;
  }
  json_t *entries[GC_MAX_ENTRIES];
  for (size_t i = 0; i < n; i++) {
    entries[i] = json_array_get(entries_j, i);
    const char *kind = gc_str(entries[i], "kind");
    if (!*gc_str(entries[i], "name") || !*gc_str(entries[i], "file") ||
        (strcmp(kind, "chat") && strcmp(kind, "embed") && strcmp(kind, "transcribe"))) {
      fprintf(stderr, "gpucheck: entry %zu: needs name, file and kind chat|embed|transcribe\n", i);
      return 2;
    }
  }
  if (A.audio) {
    FILE *f = fopen(A.audio, "rb");
    char b[65536];
    size_t k;
    while (f && (k = fread(b, 1, sizeof b, f)) > 0)
      if (sy_buf_append(&gc_audio, b, k) < 0) break;
    if (f)
      fclose(f);
    else
      gc_log("cannot read --audio %s", A.audio);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  signal(SIGPIPE, SIG_IGN);
  char card[320] = "", gname[256];
  double total = 0;
  if (A.gpu) {
    char tb[64];
    if (gc_gpu_total(gname, sizeof gname, &total))
      snprintf(card, sizeof card, "%s, %s MiB", gname, gc_commas(tb, sizeof tb, total));
    else
      snprintf(card, sizeof card, "GPU (nvidia-smi gave no name)");
  }
  char when[64];
  gc_utc(when, sizeof when);
  gc_results = json_pack(
      "{ss so sI sO ss}", "mode", A.mode, "card", A.gpu ? json_string(card) : json_null(), "cpus",
      (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "entries", entries_j, "started", when);
  json_t *est = json_object();
  json_t *fp = gc_phase_footprint(entries, n, est);
  if (!fp) {
    gc_save();
    return 1;
  }
  json_object_set_new(gc_results, "footprint", fp);
  json_object_set(gc_results, "estimates", est);
  gc_save();
  double demand = 0, budget, biggest = 0;
  const char *k;
  json_t *v;
  json_object_foreach(est, k, v) {
    demand += json_number_value(v);
    if (json_number_value(v) > biggest) biggest = json_number_value(v);
  }
  if (!demand) demand = 1;
  json_t *size = json_deep_copy(est), *r;
  size_t i;
  json_array_foreach(fp, i, r) {
    double m = gc_num(r, "measured_after_request"), e = gc_num(est, gc_str(r, "name"));
    if (m > e)
      json_object_set_new(size, gc_str(r, "name"),
                          json_deep_copy(json_object_get(r, "measured_after_request")));
    if (m > biggest) biggest = m;
  }
  if (A.gpu) {
    gc_gpu_total(gname, sizeof gname, &total);
    budget = total * MiB - 512 * MiB; /* the daemon's default: card − gpu_reserve */
    if (budget < 1) budget = 1;
  } else {
    /* the largest entry must fit alone, at what it was measured to need too (the daemon counts the
     * larger of estimate and measurement), else its requests are refused with 507 */
    if (!biggest) biggest = 1;
    budget = demand / A.ratio > 1.1 * biggest ? demand / A.ratio : 1.1 * biggest;
  }
  json_object_set_new(gc_results, "demand", json_integer((json_int_t)demand));
  json_object_set_new(gc_results, "budget", json_real(budget));
  json_t *wl = NULL, *sw = NULL, *dec = NULL;
  if (strchr(A.phases, '2') && gc_left() > A.seconds + 60) {
    wl = gc_phase_workload(entries, n, A.gpu ? -1 : budget);
    if (wl) json_object_set_new(gc_results, "workload", wl);
    gc_save();
  }
  if (strchr(A.phases, '3') && gc_left() > 60) {
    sw = gc_phase_swap(entries, n, size);
    json_object_set_new(gc_results, "swap", sw);
    gc_save();
  }
  const json_t *pick = NULL;
  double smallest = 0;
  for (i = 0; i < n; i++) {
    if (strcmp(gc_str(entries[i], "kind"), "chat")) continue;
    if (A.decode_model && !strcmp(gc_str(entries[i], "name"), A.decode_model)) {
      pick = entries[i];
      break;
    }
    double fs = gc_file_size(gc_str(entries[i], "file"));
    if (!pick || fs < smallest) pick = entries[i], smallest = fs;
  }
  if (strchr(A.phases, '4') && gc_left() > 45 && pick) {
    dec = gc_phase_decode(pick);
    json_object_set_new(gc_results, "decode", dec);
  }
  gc_utc(when, sizeof when);
  json_object_set_new(gc_results, "finished", json_string(when));
  gc_save();
  sy_buf text = {.limit = 4 << 20};
  gc_summary(&text, A.gpu ? card : NULL, n, fp, wl, sw, dec, budget, demand);
  const char *dirs[2] = {A.out, A.mirror};
  for (int d = 0; d < 2; d++)
    if (dirs[d]) {
      char *p = gc_path(dirs[d], "summary.md");
      FILE *f = fopen(p, "w");
      if (f) {
        fputs(text.data ? text.data : "", f);
        fclose(f);
      }
      free(p);
    }
  fputs(text.data ? text.data : "", stdout);
  sy_buf_free(&text);
  json_decref(size);
  json_decref(est);
  json_decref(gc_results);
  json_decref(entries_j);
  sy_buf_free(&gc_audio);
  curl_global_cleanup();
  return 0;
}
