/* sched.h — residency of models: which models have a worker running, loading on first request
 * (concurrent requests share one load), unloading after their keep-alive, reloading after a
 * crash. This is the first scheduler; the memory-budget scheduler (admission, LRU eviction,
 * queueing) grows here behind the same acquire/release interface.
 *
 * Thread safety: all functions may be called from any thread. */
#ifndef SY_SCHED_H
#define SY_SCHED_H

#include <jansson.h>

#include "apierr.h"
#include "matrix.h"
#include "worker.h"

typedef struct sched sched;

typedef struct sched_params {
  const matrix *mx;        /* borrowed; must outlive the scheduler */
  const char *worker_dir;  /* folder holding switchyard-llama */
  const char *log_level;   /* passed to workers */
  int load_timeout_s;      /* default 600 */
} sched_params;

sched *sched_new(const sched_params *p);
/* Refuse new work, stop every worker, wait for loads in progress to end. */
void sched_shutdown(sched *s);
void sched_free(sched *s);

/* A running worker for model m, loading it if needed (blocks while it loads). The caller owns
 * one reference and one in-flight count; give both back with sched_release. NULL + err on
 * failure (load error, shutdown). *ready_info (optional, borrowed until release) describes it. */
worker *sched_acquire(sched *s, const matrix_model *m, api_error *err);
void sched_release(sched *s, const matrix_model *m, worker *w);

/* "loaded", "loading" or "unloaded". */
const char *sched_state(sched *s, const matrix_model *m);
/* The loaded models, for GET /api/ps (new reference). */
json_t *sched_ps(sched *s);

#endif
