/* sched.h — residency of models inside a memory budget: which models have a worker running;
 * loading on first request (concurrent requests share one load); evicting idle models (lowest
 * priority, then least recently used) when another needs the room; waiting in a bounded queue
 * when the room can only come from busy models; refusing at once a model that can never fit;
 * unloading after keep-alive; reloading after a crash; counting each model's prompt cache in RAM
 * while there is room and cutting it before any eviction (docs/PROMPT_CACHE.md). The decision
 * itself is sched/plan.c (pure); this file gathers the state, carries decisions out, and owns the
 * processes.
 *
 * Thread safety: all functions may be called from any thread. */
#ifndef SY_SCHED_H
#define SY_SCHED_H

#include <jansson.h>

#include "http/api_error.h"
#include "buf.h"
#include "config/matrix.h"
#include "obs/metrics.h"
#include "engines/worker.h"

typedef struct sched sched;

typedef struct sched_params {
  const matrix *mx;       /* borrowed; must outlive the scheduler (matrices given to sched_reload
                             are then owned by it) */
  const char *worker_dir; /* folder holding switchyard-llama and llama-fit-params */
  const char *log_level;  /* passed to workers */
  int load_timeout_s;     /* default 600 */
} sched_params;

/* Estimates every model's footprint (a probe per model), derives the budget. */
sched *sched_new(const sched_params *p);
/* Load the pin/preload models in the background (in matrix order). */
void sched_preload(sched *s);
/* Adopt a new matrix (SIGHUP): models whose worker settings and file are unchanged keep their
 * worker and state (their keep-alive, priority, pin and queue limits become the new ones); models
 * removed or changed finish the requests they have, then unload (reason "reload"); requests for a
 * changed model that arrive or wait meanwhile go to the new definition; new models are estimated
 * (probe) and can load at once; new pinned/preloaded models are loaded. The scheduler takes
 * ownership of the matrix it replaces (requests may still hold its models; freed by sched_free).
 * The budget is derived again from the new memory settings. Publishes a "reloaded" event with the
 * names added, changed and removed (also returned in *summary when not NULL). 0, or -1 (out of
 * memory: nothing changed). */
int sched_reload(sched *s, matrix *mx, json_t **summary);

/* Refuse new work, stop every worker, wait for loads in progress to end. */
void sched_shutdown(sched *s);
void sched_free(sched *s);

/* A running worker for model m, loading it (and evicting others) if needed; blocks while it
 * loads or while it waits for room. The caller owns one reference and one in-flight count; give
 * both back with sched_release. NULL + err on failure: 507 model_too_large (never fits), 503
 * queue_full (with retry_after_s), load errors, 503 shutting_down. */
worker *sched_acquire(sched *s, const matrix_model *m, api_error *err);
void sched_release(sched *s, const matrix_model *m, worker *w);

/* A request asked model m to stay loaded secs after it ends (-1 = forever, 0 = unload when
 * idle); honoured only when the matrix allows it (request_keep_alive), until the next such request
 * or the next unload. Call before sched_release. */
void sched_keep_alive(sched *s, const matrix_model *m, int secs);

/* Memory of model m: estimated before load and largest measured (0 = never measured), bytes. */
void sched_memory(sched *s, const matrix_model *m, long long *estimated, long long *measured);
/* Unload model m now if it is idle (0; also when it was not loaded); -1 + 409 model_busy if it
 * has requests in flight or waiting, or is loading/unloading. Pinned models too: an explicit
 * request wins (the next request loads it again). */
int sched_unload(sched *s, const matrix_model *m, api_error *err);

/* "loaded", "loading", "unloading" or "unloaded". */
const char *sched_state(sched *s, const matrix_model *m);
/* Loaded models and memory, for GET /api/ps (new reference). */
json_t *sched_ps(sched *s);

/* The metrics registry (owned by the scheduler; metrics_model gives a model's row): the scheduler
 * counts loads and unloads there, api.c counts requests. */
metrics *sched_metrics(sched *s);
/* The feed of loads and unloads (GET /api/events). */
struct events;
struct events *sched_events(sched *s);
/* GET /metrics: append the registry and the scheduler's gauges now (queue depth, in flight,
 * loaded, memory) to out in the Prometheus text format. 0, or -1 when out refused to grow. */
int sched_metrics_render(sched *s, sy_buf *out);

#endif
