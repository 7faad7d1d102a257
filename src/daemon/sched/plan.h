/* plan.h — the scheduler's decision as a pure function: the state of every model and the
 * memory budget in, one decision out (run, load — evicting these idle models first —, wait, or
 * reject with the numbers). No I/O, no clock, no locks, no allocation: sched.c gathers the state
 * under its lock, asks, and carries the decision out. Unit-tested exhaustively in
 * tests/unit/test_sched_plan.c; docs/ARCHITECTURE.md has the table.
 *
 * Memory comes in pools: pool 0 is the host's RAM (and unified memory: integrated GPUs share it),
 * pools 1.. are the GPUs with memory of their own. A model has a footprint in each pool (its
 * weights, KV cache and compute buffers where llama.cpp puts them); it fits when it fits in every
 * pool at once. */
#ifndef SY_SCHED_PLAN_H
#define SY_SCHED_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#define PLAN_MAX_MODELS 1024
#define PLAN_MAX_POOLS 8

typedef enum plan_state {
  PLAN_UNLOADED = 0,
  PLAN_LOADING, /* its memory is already counted */
  PLAN_READY,
  PLAN_UNLOADING, /* still holds its memory until the process is gone */
} plan_state;

typedef struct plan_model {
  plan_state state;
  long long bytes; /* footprint to count in pool 0: measured if known, else estimated */
  long long pool_bytes[PLAN_MAX_POOLS]; /* ... in pools 1.. ([0] is unused: pool 0 is `bytes`) */
  int inflight;                         /* requests being served by it */
  int queued;                           /* requests waiting for it to be loaded (or for room) */
  long long last_used_ms;               /* when a request last ended or started on it (monotonic) */
  int priority;                         /* higher = evicted later; default 0 */
  bool pinned;                          /* never evicted */
  bool guarded; /* loaded too recently to be evicted (the thrash guard): wait instead */
} plan_model;

typedef enum plan_action {
  PLAN_RUN,  /* it is ready: send the request */
  PLAN_LOAD, /* unload evict[0..n_evict) (all idle), then load it */
  PLAN_WAIT, /* wait for a state change (a load in progress, an unload, a busy model going idle) */
  PLAN_REJECT, /* it can never fit: answer at once with the numbers */
} plan_action;

typedef struct plan_decision {
  plan_action action;
  size_t evict[PLAN_MAX_MODELS]; /* indices, in the order to unload them */
  size_t n_evict;
  /* the numbers behind the decision, for logs and error messages (bytes), in pool `pool`: the one
   * that decided a REJECT or WAIT, else pool 0 */
  size_t pool;
  long long need;   /* the wanted model's footprint */
  long long budget; /* the budget */
  long long used;   /* counted now: loading + ready + unloading models */
  long long pinned; /* footprint of pinned models (resident or not) */
  long long busy;   /* footprint of resident models that cannot be evicted now */
} plan_decision;

/* Decide for a request to models[want]. Rules, in order:
 * 1. want is READY → RUN; LOADING or UNLOADING → WAIT.
 * 2. need > budget − pinned (pinned models other than want) → REJECT: it can never fit.
 * 3. used + need ≤ budget → LOAD with nothing to evict.
 * 4. Otherwise evict idle models (READY, inflight 0, queued 0, not pinned, not guarded): lowest
 * priority first, then least recently used, then lowest index; take only as many as needed (stop as
 * soon as it fits) → LOAD with that list.
 * 5. If evicting every idle model is not enough → WAIT (the room must come from busy, loading or
 *    unloading models).
 * `out` is fully written in every case. */
void plan_decide(const plan_model *models, size_t n, size_t want, long long budget,
                 plan_decision *out);

/* The same over n_pools pools (budgets[p] each; 1 ≤ n_pools ≤ PLAN_MAX_POOLS, else REJECT): rule
 * 2 rejects if any pool can never hold it, rule 3 loads if every pool has room, rule 5 waits if
 * any pool lacks room even with every idle model gone, and rule 4 walks the eviction order taking
 * only models that free memory in a pool still short of room, until every pool fits (an idle
 * model on the CPU is not evicted to make room on a GPU). */
void plan_decide_pools(const plan_model *models, size_t n, size_t want, const long long *budgets,
                       size_t n_pools, plan_decision *out);

#endif
