/* metrics.c — see metrics.h. A fixed table of rows, one per model of the matrix plus one for
 * model="", each holding its counters and histograms; one mutex; a renderer that writes the
 * Prometheus text format (HELP and TYPE lines, escaped label values, cumulative buckets).
 * Must never turn anything a client sent into a label value, never allocate after metrics_new
 * except for the output buffer, and never call out of this file while holding its lock. */
#include "obs/metrics.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statuses the daemon answers with; any other counts as status="other". */
static const int statuses[] = {200, 400, 401, 403, 404, 405, 408, 413, 429,
                               431, 499, 500, 501, 502, 503, 504, 507};
#define N_STATUS (sizeof statuses / sizeof *statuses + 1) /* + "other" */

static const char *const endpoint_names[METRICS_EP_N] = {
    "chat",        "completions",     "embeddings",   "rerank",    "transcriptions",
    "speech",      "messages",        "count_tokens", "responses", "input_tokens",
    "ollama_chat", "ollama_generate", "ollama_embed"};
static const char *const unload_names[METRICS_UNLOAD_N] = {
    "keep_alive", "evicted", "crashed", "shutdown", "keep_alive_0", "admin", "reload"};

/* Upper bounds of the buckets (seconds); +Inf is implicit. */
static const double request_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,  5,     10,   30,  60,   120};
static const double load_bounds[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
#define N_REQ_BOUNDS (sizeof request_bounds / sizeof *request_bounds)
#define N_LOAD_BOUNDS (sizeof load_bounds / sizeof *load_bounds)
#define HIST_MAX 16 /* ≥ every bounds array + 1 for +Inf */

typedef struct hist {
  unsigned long long in[HIST_MAX]; /* observations per bucket (not cumulative); the last is +Inf */
  unsigned long long count;
  double sum;
} hist;

typedef struct row {
  char *name;
  unsigned long long requests[METRICS_EP_N][N_STATUS];
  hist duration[METRICS_EP_N];
  hist ttft;
  unsigned long long prompt_tokens, generated_tokens, cancelled;
  unsigned long long cached_tokens, cache_hits, cache_misses; /* the prompt cache */
  unsigned long long loads[2];                                /* [0] ok, [1] failed */
  hist load_duration;
  unsigned long long unloads[METRICS_UNLOAD_N];
  hist stage[METRICS_STAGE_N]; /* pipelines */
  unsigned long long step_failures[METRICS_STEP_N];
} row;

struct metrics {
  pthread_mutex_t mu;
  size_t n_models;
  row *rows; /* n_models + 1: the last is model="" */
};

metrics *metrics_new(const char *const *names, size_t n_models) {
  metrics *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->n_models = n_models;
  m->rows = calloc(n_models + 1, sizeof *m->rows);
  if (!m->rows) goto err;
  for (size_t i = 0; i <= n_models; i++) {
    m->rows[i].name = strdup(i < n_models && names[i] ? names[i] : "");
    if (!m->rows[i].name) goto err;
  }
  pthread_mutex_init(&m->mu, NULL);
  return m;
err:
  for (size_t i = 0; m->rows && i <= n_models; i++) free(m->rows[i].name);
  free(m->rows);
  free(m);
  return NULL;
}

void metrics_free(metrics *m) {
  if (!m) return;
  for (size_t i = 0; i <= m->n_models; i++) free(m->rows[i].name);
  free(m->rows);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

int metrics_model(metrics *m, const char *name) {
  if (!m || !name) return METRICS_NO_MODEL;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->n_models; i++)
    if (strcmp(m->rows[i].name, name) == 0) {
      pthread_mutex_unlock(&m->mu);
      return (int)i;
    }
  int idx = METRICS_NO_MODEL;
  char *copy = m->n_models < METRICS_MAX_MODELS ? strdup(name) : NULL;
  row *rows = copy ? realloc(m->rows, (m->n_models + 2) * sizeof *rows) : NULL;
  if (rows) { /* the model="" row stays last */
    m->rows = rows;
    rows[m->n_models + 1] = rows[m->n_models];
    memset(&rows[m->n_models], 0, sizeof *rows);
    rows[m->n_models].name = copy;
    idx = (int)m->n_models++;
  } else {
    free(copy);
  }
  pthread_mutex_unlock(&m->mu);
  return idx;
}

/* The row of a model index (lock held: rows move when one is added); anything out of range is
 * model="". */
static row *row_of(metrics *m, int model) {
  return &m->rows[model >= 0 && (size_t)model < m->n_models ? (size_t)model : m->n_models];
}

static size_t status_index(int status) {
  for (size_t i = 0; i + 1 < N_STATUS; i++)
    if (statuses[i] == status) return i;
  return N_STATUS - 1;
}

static void hist_observe(hist *h, const double *bounds, size_t n_bounds, double v) {
  if (!(v >= 0)) v = 0; /* NaN or a clock step backwards */
  size_t b = 0;
  while (b < n_bounds && v > bounds[b]) b++;
  h->in[b]++;
  h->count++;
  h->sum += v;
}

void metrics_request(metrics *m, int model, metrics_endpoint ep, int status, double seconds) {
  if (!m || ep < 0 || ep >= METRICS_EP_N) return;
  pthread_mutex_lock(&m->mu);
  row *r = row_of(m, model);
  r->requests[ep][status_index(status)]++;
  hist_observe(&r->duration[ep], request_bounds, N_REQ_BOUNDS, seconds);
  pthread_mutex_unlock(&m->mu);
}

void metrics_ttft(metrics *m, int model, double seconds) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  hist_observe(&row_of(m, model)->ttft, request_bounds, N_REQ_BOUNDS, seconds);
  pthread_mutex_unlock(&m->mu);
}

void metrics_tokens(metrics *m, int model, long long prompt, long long generated) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  row *r = row_of(m, model);
  if (prompt > 0) r->prompt_tokens += (unsigned long long)prompt;
  if (generated > 0) r->generated_tokens += (unsigned long long)generated;
  pthread_mutex_unlock(&m->mu);
}

void metrics_prompt_cache(metrics *m, int model, long long cached) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  row *r = row_of(m, model);
  if (cached > 0) {
    r->cached_tokens += (unsigned long long)cached;
    r->cache_hits++;
  } else {
    r->cache_misses++;
  }
  pthread_mutex_unlock(&m->mu);
}

void metrics_cancelled(metrics *m, int model) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  row_of(m, model)->cancelled++;
  pthread_mutex_unlock(&m->mu);
}

void metrics_load(metrics *m, int model, bool ok, double seconds) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  row *r = row_of(m, model);
  r->loads[ok ? 0 : 1]++;
  hist_observe(&r->load_duration, load_bounds, N_LOAD_BOUNDS, seconds);
  pthread_mutex_unlock(&m->mu);
}

void metrics_unload(metrics *m, int model, metrics_unload_reason why) {
  if (!m || why < 0 || why >= METRICS_UNLOAD_N) return;
  pthread_mutex_lock(&m->mu);
  row_of(m, model)->unloads[why]++;
  pthread_mutex_unlock(&m->mu);
}

static const char *const stage_names[METRICS_STAGE_N] = {
    "stt", "llm", "llm_first_token", "tts_first_audio", "first_audio", "total"};
static const char *const step_names[METRICS_STEP_N] = {"asr", "llm", "tts"};

void metrics_pipeline_stage(metrics *m, int model, metrics_stage stage, double seconds) {
  if (!m || stage < 0 || stage >= METRICS_STAGE_N) return;
  pthread_mutex_lock(&m->mu);
  hist_observe(&row_of(m, model)->stage[stage], request_bounds, N_REQ_BOUNDS, seconds);
  pthread_mutex_unlock(&m->mu);
}

void metrics_pipeline_failure(metrics *m, int model, metrics_step step) {
  if (!m || step < 0 || step >= METRICS_STEP_N) return;
  pthread_mutex_lock(&m->mu);
  row_of(m, model)->step_failures[step]++;
  pthread_mutex_unlock(&m->mu);
}

/* ---- rendering ---- */

typedef struct out {
  sy_buf *b;
  int err;
} out;

static void put(out *o, const char *s) { o->err |= sy_buf_puts(o->b, s); }

/* A label value as the format wants it: backslash, double quote and newline escaped. */
static void put_escaped(out *o, const char *s) {
  for (const char *p = s; *p; p++) {
    if (*p == '\\')
      put(o, "\\\\");
    else if (*p == '"')
      put(o, "\\\"");
    else if (*p == '\n')
      put(o, "\\n");
    else
      o->err |= sy_buf_append(o->b, p, 1);
  }
}

static void family(out *o, const char *name, const char *type, const char *help) {
  o->err |= sy_buf_printf(o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The label set without its closing brace: {model="…"[,k2="…"[,k3="…"]] (NULL keys end it). */
static void labels(out *o, const char *model, const char *k2, const char *v2, const char *k3,
                   const char *v3) {
  put(o, "{model=\"");
  put_escaped(o, model);
  put(o, "\"");
  const char *k[] = {k2, k3}, *v[] = {v2, v3};
  for (int i = 0; i < 2 && k[i]; i++) {
    o->err |= sy_buf_printf(o->b, ",%s=\"", k[i]);
    put_escaped(o, v[i]);
    put(o, "\"");
  }
}

/* One sample line: name{labels} value, or name value when model is NULL. */
static void sample(out *o, const char *name, const char *model, const char *k2, const char *v2,
                   const char *k3, const char *v3, long long v) {
  put(o, name);
  if (model) {
    labels(o, model, k2, v2, k3, v3);
    put(o, "}");
  }
  o->err |= sy_buf_printf(o->b, " %lld\n", v);
}

/* name_bucket{…,le="…"} (cumulative), name_sum, name_count for one label set. */
static void histogram(out *o, const char *name, const char *model, const char *k2, const char *v2,
                      const hist *h, const double *bounds, size_t n_bounds) {
  unsigned long long cum = 0;
  for (size_t b = 0; b <= n_bounds; b++) {
    cum += h->in[b];
    o->err |= sy_buf_printf(o->b, "%s_bucket", name);
    labels(o, model, k2, v2, NULL, NULL);
    if (b < n_bounds)
      o->err |= sy_buf_printf(o->b, ",le=\"%g\"} %llu\n", bounds[b], cum);
    else
      o->err |= sy_buf_printf(o->b, ",le=\"+Inf\"} %llu\n", cum);
  }
  o->err |= sy_buf_printf(o->b, "%s_sum", name);
  labels(o, model, k2, v2, NULL, NULL);
  o->err |= sy_buf_printf(o->b, "} %.9g\n", h->sum);
  o->err |= sy_buf_printf(o->b, "%s_count", name);
  labels(o, model, k2, v2, NULL, NULL);
  o->err |= sy_buf_printf(o->b, "} %llu\n", h->count);
}

/* A per-model counter: every matrix model always (so rates start from 0), model="" only once
 * something was counted there. */
static void per_model_counter(out *o, const metrics *m, const char *name, size_t offset) {
  for (size_t i = 0; i <= m->n_models; i++) {
    const row *r = &m->rows[i];
    unsigned long long v = *(const unsigned long long *)((const char *)r + offset);
    if (i < m->n_models || v) sample(o, name, r->name, NULL, NULL, NULL, NULL, (long long)v);
  }
}

int metrics_render(metrics *m, const metrics_gauges *g, sy_buf *b) {
  out o = {.b = b};
  char st[16];
  pthread_mutex_lock(&m->mu);
  size_t nr = m->n_models + 1;

  family(&o, "switchyard_requests_total", "counter",
         "Generation, embedding and rerank requests answered, by model, endpoint and HTTP status "
         "(499: the "
         "client went away before a status was sent).");
  for (size_t i = 0; i < nr; i++)
    for (int e = 0; e < METRICS_EP_N; e++)
      for (size_t s = 0; s < N_STATUS; s++) {
        unsigned long long v = m->rows[i].requests[e][s];
        if (!v) continue;
        if (s + 1 < N_STATUS)
          snprintf(st, sizeof st, "%d", statuses[s]);
        else
          snprintf(st, sizeof st, "other");
        sample(&o, "switchyard_requests_total", m->rows[i].name, "endpoint", endpoint_names[e],
               "status", st, (long long)v);
      }

  family(&o, "switchyard_requests_cancelled_total", "counter",
         "Requests ended early because their client went away.");
  per_model_counter(&o, m, "switchyard_requests_cancelled_total", offsetof(row, cancelled));

  family(&o, "switchyard_request_duration_seconds", "histogram",
         "Time from a request's body to the end of its response.");
  for (size_t i = 0; i < nr; i++)
    for (int e = 0; e < METRICS_EP_N; e++)
      if (m->rows[i].duration[e].count)
        histogram(&o, "switchyard_request_duration_seconds", m->rows[i].name, "endpoint",
                  endpoint_names[e], &m->rows[i].duration[e], request_bounds, N_REQ_BOUNDS);

  family(&o, "switchyard_time_to_first_token_seconds", "histogram",
         "Time from a generation request's body to its first generated text (model loading "
         "included).");
  for (size_t i = 0; i < nr; i++)
    if (m->rows[i].ttft.count)
      histogram(&o, "switchyard_time_to_first_token_seconds", m->rows[i].name, NULL, NULL,
                &m->rows[i].ttft, request_bounds, N_REQ_BOUNDS);

  family(&o, "switchyard_prompt_tokens_total", "counter",
         "Prompt tokens of finished requests (embedding and rerank inputs too).");
  per_model_counter(&o, m, "switchyard_prompt_tokens_total", offsetof(row, prompt_tokens));
  family(&o, "switchyard_generated_tokens_total", "counter",
         "Tokens generated by finished requests.");
  per_model_counter(&o, m, "switchyard_generated_tokens_total", offsetof(row, generated_tokens));
  family(&o, "switchyard_prompt_cached_tokens_total", "counter",
         "Prompt tokens reused from the prompt cache instead of computed (docs/PROMPT_CACHE.md).");
  per_model_counter(&o, m, "switchyard_prompt_cached_tokens_total", offsetof(row, cached_tokens));
  family(&o, "switchyard_prompt_cache_hits_total", "counter",
         "Generations whose prompt reused cached tokens.");
  per_model_counter(&o, m, "switchyard_prompt_cache_hits_total", offsetof(row, cache_hits));
  family(&o, "switchyard_prompt_cache_misses_total", "counter",
         "Generations whose prompt was computed from its first token.");
  per_model_counter(&o, m, "switchyard_prompt_cache_misses_total", offsetof(row, cache_misses));

  family(&o, "switchyard_model_loads_total", "counter",
         "Model loads that ended, by result (ok or failed).");
  for (size_t i = 0; i < nr; i++)
    for (int k = 0; k < 2; k++)
      if (m->rows[i].loads[k])
        sample(&o, "switchyard_model_loads_total", m->rows[i].name, "result", k ? "failed" : "ok",
               NULL, NULL, (long long)m->rows[i].loads[k]);

  family(&o, "switchyard_model_unloads_total", "counter",
         "Model unloads, by reason (keep_alive, evicted, crashed, shutdown, keep_alive_0, admin, "
         "reload).");
  for (size_t i = 0; i < nr; i++)
    for (int k = 0; k < METRICS_UNLOAD_N; k++)
      if (m->rows[i].unloads[k])
        sample(&o, "switchyard_model_unloads_total", m->rows[i].name, "reason", unload_names[k],
               NULL, NULL, (long long)m->rows[i].unloads[k]);

  family(&o, "switchyard_model_load_duration_seconds", "histogram",
         "Time to start a model's worker and load the model (failed loads too).");
  for (size_t i = 0; i < nr; i++)
    if (m->rows[i].load_duration.count)
      histogram(&o, "switchyard_model_load_duration_seconds", m->rows[i].name, NULL, NULL,
                &m->rows[i].load_duration, load_bounds, N_LOAD_BOUNDS);

  family(&o, "switchyard_pipeline_stage_seconds", "histogram",
         "Pipelines: each stage's time (stt, llm, llm_first_token, tts_first_audio, first_audio, "
         "total).");
  for (size_t i = 0; i < nr; i++)
    for (int k = 0; k < METRICS_STAGE_N; k++)
      if (m->rows[i].stage[k].count)
        histogram(&o, "switchyard_pipeline_stage_seconds", m->rows[i].name, "stage", stage_names[k],
                  &m->rows[i].stage[k], request_bounds, N_REQ_BOUNDS);
  family(&o, "switchyard_pipeline_step_failures_total", "counter",
         "Pipelines: requests that failed, by step.");
  for (size_t i = 0; i < nr; i++)
    for (int k = 0; k < METRICS_STEP_N; k++)
      if (m->rows[i].step_failures[k])
        sample(&o, "switchyard_pipeline_step_failures_total", m->rows[i].name, "step",
               step_names[k], NULL, NULL, (long long)m->rows[i].step_failures[k]);

  if (g) {
    const metrics_model_gauges *mg = g->models;
    size_t n = mg ? (g->n_models < m->n_models ? g->n_models : m->n_models) : 0;
    family(&o, "switchyard_queue_depth", "gauge",
           "Requests waiting for the model to load or for room.");
    for (size_t i = 0; i < n; i++)
      sample(&o, "switchyard_queue_depth", m->rows[i].name, NULL, NULL, NULL, NULL, mg[i].queued);
    family(&o, "switchyard_requests_in_flight", "gauge", "Requests holding the model's worker.");
    for (size_t i = 0; i < n; i++)
      sample(&o, "switchyard_requests_in_flight", m->rows[i].name, NULL, NULL, NULL, NULL,
             mg[i].inflight);
    family(&o, "switchyard_model_loaded", "gauge",
           "1 when the model's worker is loaded and serving, else 0.");
    for (size_t i = 0; i < n; i++)
      sample(&o, "switchyard_model_loaded", m->rows[i].name, NULL, NULL, NULL, NULL,
             mg[i].loaded ? 1 : 0);
    family(&o, "switchyard_model_memory_bytes", "gauge",
           "The model's footprint: estimated before load, measured (largest resident set seen; 0 = "
           "never).");
    for (size_t i = 0; i < n; i++) {
      sample(&o, "switchyard_model_memory_bytes", m->rows[i].name, "kind", "estimated", NULL, NULL,
             mg[i].estimated_bytes);
      sample(&o, "switchyard_model_memory_bytes", m->rows[i].name, "kind", "measured", NULL, NULL,
             mg[i].measured_bytes);
    }
    family(&o, "switchyard_prompt_cache_bytes", "gauge",
           "The model's prompt cache in RAM (saved prompt states; counted in the budget up to its "
           "limit).");
    for (size_t i = 0; i < n; i++)
      sample(&o, "switchyard_prompt_cache_bytes", m->rows[i].name, NULL, NULL, NULL, NULL,
             mg[i].prompt_cache_bytes);
    family(&o, "switchyard_memory_budget_bytes", "gauge",
           "The memory budget models are loaded into.");
    sample(&o, "switchyard_memory_budget_bytes", NULL, NULL, NULL, NULL, NULL, g->budget_bytes);
    family(&o, "switchyard_memory_used_bytes", "gauge",
           "Memory the budget counts as used (loading, loaded and unloading models).");
    sample(&o, "switchyard_memory_used_bytes", NULL, NULL, NULL, NULL, NULL, g->used_bytes);
  }
  pthread_mutex_unlock(&m->mu);
  return o.err ? -1 : 0;
}
