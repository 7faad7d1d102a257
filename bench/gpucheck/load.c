/* load.c — `gpucheck-load`: the randomized mixed workload of scripts/gpu-check.sh. C clients for
 * S seconds, each sticking to one model for a few requests and then moving to a random other one:
 * chat (non-streamed, max_tokens T), embeddings, and transcriptions when a WAV is given. Reports
 * requests served, errors by status, out-of-memory signs (507, "memory" in an error, failed loads,
 * crashed workers), swaps (model loads and evictions from /metrics) and p50/p99 latency, overall
 * and per kind, as one JSON object. A benchmark, never a test.
 *
 * usage: gpucheck-load --url URL --chat a,b --embed c [--transcribe w --audio f.wav]
 *                      [--seconds 60] [--clients 8] [--tokens 16] [--stick 3] [--seed 1] */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib.h"
#include "buf.h"
#include "clock.h"

#define GL_MAX_MODELS 32
#define GL_MAX_LAT 200000

enum gl_kind { GL_CHAT, GL_EMBED, GL_TRANSCRIBE, GL_KINDS };
static const char *gl_kind_name[GL_KINDS] = {"chat", "embed", "transcribe"};

struct gl_model {
  const char *name;
  enum gl_kind kind;
};

static struct gl_model gl_models[GL_MAX_MODELS];
static int gl_n_models, gl_clients = 8, gl_tokens = 16, gl_stick = 3;
static double gl_seconds = 60, gl_deadline;
static unsigned gl_seed = 1;
static const char *gl_url, *gl_audio;

static pthread_mutex_t gl_mu = PTHREAD_MUTEX_INITIALIZER;
static double *gl_lat[GL_KINDS];
static size_t gl_n_lat[GL_KINDS];
static long gl_ok[GL_KINDS], gl_err[GL_KINDS], gl_oom, gl_status[600], gl_tokens_out;

/* Sum of the values of every /metrics sample of `name` whose labels contain `label` (or all). */
static double gl_metric(const char *text, const char *name, const char *label) {
  double sum = 0;
  size_t nl = strlen(name);
  for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, name, nl) != 0 || (l[nl] != '{' && l[nl] != ' ')) continue;
    const char *eol = strchr(l, '\n');
    size_t len = eol ? (size_t)(eol - l) : strlen(l);
    char line[1024];
    if (len >= sizeof line) continue;
    memcpy(line, l, len);
    line[len] = '\0';
    if (label && !strstr(line, label)) continue;
    const char *v = strrchr(line, ' ');
    if (v) sum += strtod(v + 1, NULL);
  }
  return sum;
}

static int gl_get_metrics(sy_buf *out) {
  char url[512];
  snprintf(url, sizeof url, "%s/metrics", gl_url);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bench_to_buf);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  return rc == CURLE_OK && out->data ? 0 : -1;
}

static void gl_record(enum gl_kind k, long st, double lat, const char *body, long tokens) {
  pthread_mutex_lock(&gl_mu);
  gl_status[st >= 0 && st < 600 ? st : 0]++;
  if (st == 200) {
    gl_ok[k]++;
    gl_tokens_out += tokens;
    if (gl_n_lat[k] < GL_MAX_LAT) gl_lat[k][gl_n_lat[k]++] = lat;
  } else {
    gl_err[k]++;
    if (st == 507 || (body && (strstr(body, "out of memory") || strstr(body, "out_of_memory"))))
      gl_oom++;
  }
  pthread_mutex_unlock(&gl_mu);
}

/* splitmix64: each client its own well-mixed stream (rand_r's few clients x few picks cluster) */
static uint64_t gl_rand(uint64_t *st) {
  uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void *gl_client(void *arg) {
  int id = (int)(long)arg;
  uint64_t seed = ((uint64_t)gl_seed << 32) ^ (uint64_t)id;
  int m = id % gl_n_models; /* every model gets a client at the start, then random jumps */
  CURL *cu = curl_easy_init();
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  for (int i = 0; sy_mono_s() < gl_deadline; i++) {
    if (i > 0 && i % gl_stick == 0) m = (int)(gl_rand(&seed) % (uint64_t)gl_n_models);
    const struct gl_model *gm = &gl_models[m];
    char url[512], *body = NULL;
    curl_mime *mime = NULL;
    json_t *q = NULL;
    curl_easy_reset(cu);
    if (gm->kind == GL_CHAT) {
      snprintf(url, sizeof url, "%s/v1/chat/completions", gl_url);
      q = json_pack("{s:s, s:[{s:s, s:s}], s:i, s:f, s:b}", "model", gm->name, "messages", "role",
                    "user", "content",
                    "Tell me about railway yards and the engines that shunt there.", "max_tokens",
                    gl_tokens, "temperature", 0.0, "ignore_eos", 1);
    } else if (gm->kind == GL_EMBED) {
      snprintf(url, sizeof url, "%s/v1/embeddings", gl_url);
      q = json_pack("{s:s, s:[s,s]}", "model", gm->name, "input", "a switchyard sorts railway cars",
                    "engines shunt cars between the tracks of a classification yard");
    } else {
      snprintf(url, sizeof url, "%s/v1/audio/transcriptions", gl_url);
      mime = curl_mime_init(cu);
      curl_mimepart *p = curl_mime_addpart(mime);
      curl_mime_name(p, "model");
      curl_mime_data(p, gm->name, CURL_ZERO_TERMINATED);
      /* a set temperature turns whisper's fallback ladder off: random weights would climb it */
      p = curl_mime_addpart(mime);
      curl_mime_name(p, "temperature");
      curl_mime_data(p, "0.2", CURL_ZERO_TERMINATED);
      p = curl_mime_addpart(mime);
      curl_mime_name(p, "file");
      curl_mime_filedata(p, gl_audio);
      curl_easy_setopt(cu, CURLOPT_MIMEPOST, mime);
    }
    if (q) {
      body = json_dumps(q, JSON_COMPACT);
      json_decref(q);
      curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
      curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hl);
    }
    sy_buf out = {0};
    out.limit = 4u << 20;
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, bench_to_buf);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    /* requests still running 60 s after the end are cut (status 0 in the report): the run ends on
     * time */
    long limit = (long)(gl_deadline - sy_mono_s()) + 60;
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, limit > 30 ? limit : 30L);
    double t0 = sy_mono_s();
    long st = 0, tokens = 0;
    if (curl_easy_perform(cu) == CURLE_OK) curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &st);
    double lat = sy_mono_s() - t0;
    if (st == 200 && gm->kind == GL_CHAT) {
      json_t *j = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
      tokens = (long)json_integer_value(
          json_object_get(json_object_get(j, "usage"), "completion_tokens"));
      json_decref(j);
    }
    if (st != 200)
      fprintf(stderr, "gpucheck-load: client %d %s %s: HTTP %ld %.300s\n", id,
              gl_kind_name[gm->kind], gm->name, st, out.data ? out.data : "");
    gl_record(gm->kind, st, lat, out.data, tokens);
    sy_buf_free(&out);
    free(body);
    if (mime) curl_mime_free(mime);
  }
  curl_slist_free_all(hl);
  curl_easy_cleanup(cu);
  return NULL;
}

static double gl_pct(const double *v, size_t n, int pct) {
  if (n == 0) return 0;
  size_t i = (n * (size_t)pct) / 100;
  return v[i < n ? i : n - 1];
}

static int gl_add_models(char *list, enum gl_kind kind) {
  for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t;
       t = strtok_r(NULL, ",", &save)) {
    if (gl_n_models == GL_MAX_MODELS) return -1;
    gl_models[gl_n_models].name = t;
    gl_models[gl_n_models++].kind = kind;
  }
  return 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"url", 1, 0, 'u'},        {"chat", 1, 0, 'c'},   {"embed", 1, 0, 'e'},
      {"transcribe", 1, 0, 'w'}, {"audio", 1, 0, 'a'},  {"seconds", 1, 0, 's'},
      {"clients", 1, 0, 'n'},    {"tokens", 1, 0, 't'}, {"stick", 1, 0, 'k'},
      {"seed", 1, 0, 'r'},       {0, 0, 0, 0}};
  char *chat = NULL, *embed = NULL, *tr = NULL;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'u':
        gl_url = optarg;
        break;
      case 'c':
        chat = optarg;
        break;
      case 'e':
        embed = optarg;
        break;
      case 'w':
        tr = optarg;
        break;
      case 'a':
        gl_audio = optarg;
        break;
      case 's':
        gl_seconds = atof(optarg);
        break;
      case 'n':
        gl_clients = atoi(optarg);
        break;
      case 't':
        gl_tokens = atoi(optarg);
        break;
      case 'k':
        gl_stick = atoi(optarg);
        break;
      case 'r':
        gl_seed = (unsigned)strtoul(optarg, NULL, 10);
        break;
      default:
        return 2;
    }
  }
  if (gl_add_models(chat, GL_CHAT) || gl_add_models(embed, GL_EMBED) ||
      (gl_audio && gl_add_models(tr, GL_TRANSCRIBE)) || !gl_url || gl_n_models < 1 ||
      gl_clients < 1 || gl_clients > 256 || gl_tokens < 1 || gl_stick < 1 ||
      !(gl_seconds > 0 && gl_seconds <= 86400)) {
    fprintf(stderr,
            "usage: gpucheck-load --url URL --chat a,b --embed c [--transcribe w --audio f.wav] "
            "[--seconds 60] "
            "[--clients 8] [--tokens 16] [--stick 3] [--seed 1]\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_ALL);
  for (int k = 0; k < GL_KINDS; k++) {
    gl_lat[k] = calloc(GL_MAX_LAT, sizeof(double));
    if (!gl_lat[k]) return 1;
  }
  sy_buf m0 = {0}, m1 = {0};
  gl_get_metrics(&m0);
  double t0 = sy_mono_s();
  gl_deadline = t0 + gl_seconds;
  pthread_t th[256];
  int started = 0;
  for (long i = 0; i < gl_clients; i++)
    if (pthread_create(&th[started], NULL, gl_client, (void *)i) == 0) started++;
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  double wall = sy_mono_s() - t0;
  gl_get_metrics(&m1);
  const char *a = m0.data ? m0.data : "", *b = m1.data ? m1.data : "";
#define DELTA(name, label) (gl_metric(b, name, label) - gl_metric(a, name, label))
  double loads = DELTA("switchyard_model_loads_total", "result=\"ok\"");
  double failed = DELTA("switchyard_model_loads_total", "result=\"failed\"");
  double evicted = DELTA("switchyard_model_unloads_total", "reason=\"evicted\"");
  double crashed = DELTA("switchyard_model_unloads_total", "reason=\"crashed\"");
  /* every latency together, then per kind */
  size_t n_all = 0;
  long ok = 0, err = 0;
  for (int k = 0; k < GL_KINDS; k++) n_all += gl_n_lat[k], ok += gl_ok[k], err += gl_err[k];
  double *all = calloc(n_all ? n_all : 1, sizeof(double));
  size_t w = 0;
  for (int k = 0; k < GL_KINDS; k++) {
    memcpy(all + w, gl_lat[k], gl_n_lat[k] * sizeof(double));
    w += gl_n_lat[k];
    qsort(gl_lat[k], gl_n_lat[k], sizeof(double), bench_cmp_double);
  }
  qsort(all, n_all, sizeof(double), bench_cmp_double);
  printf(
      "{\"seconds\": %.1f, \"clients\": %d, \"models\": %d, \"requests\": %ld, \"ok\": %ld, "
      "\"errors\": %ld, "
      "\"ooms\": %.0f, \"loads\": %.0f, \"failed_loads\": %.0f, \"evictions\": %.0f, "
      "\"crashed_workers\": %.0f, "
      "\"requests_per_s\": %.3f, \"generated_tokens\": %ld, \"p50_s\": %.3f, \"p99_s\": %.3f, "
      "\"kinds\": {",
      wall, gl_clients, gl_n_models, ok + err, ok, err, (double)gl_oom + failed + crashed, loads,
      failed, evicted, crashed, ok / wall, gl_tokens_out, gl_pct(all, n_all, 50),
      gl_pct(all, n_all, 99));
  int first = 1;
  for (int k = 0; k < GL_KINDS; k++) {
    if (gl_ok[k] + gl_err[k] == 0) continue;
    printf("%s\"%s\": {\"ok\": %ld, \"errors\": %ld, \"p50_s\": %.3f, \"p99_s\": %.3f}",
           first ? "" : ", ", gl_kind_name[k], gl_ok[k], gl_err[k],
           gl_pct(gl_lat[k], gl_n_lat[k], 50), gl_pct(gl_lat[k], gl_n_lat[k], 99));
    first = 0;
  }
  printf("}, \"status\": {");
  first = 1;
  for (int s = 0; s < 600; s++) {
    if (!gl_status[s]) continue;
    printf("%s\"%d\": %ld", first ? "" : ", ", s, gl_status[s]);
    first = 0;
  }
  printf("}}\n");
  free(all);
  for (int k = 0; k < GL_KINDS; k++) free(gl_lat[k]);
  sy_buf_free(&m0);
  sy_buf_free(&m1);
  curl_global_cleanup();
  return err == 0 ? 0 : 1;
}
