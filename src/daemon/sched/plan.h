/* plan.h — the scheduler's decision as a pure function: the state of every model and the
 * memory budget in, one decision out (run, load — cutting these prompt caches and evicting these
 * idle models first —, wait, or reject with the numbers). No I/O, no clock, no locks, no
 * allocation: sched.c gathers the state under its lock, asks, and carries the decision out.
 * Unit-tested exhaustively in tests/unit/test_sched_plan.c; docs/ARCHITECTURE.md has the table.
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
  long long bytes;       /* footprint to count in pool 0: measured if known, else estimated */
  long long cache_bytes; /* the part of `bytes` that is its prompt cache (rule 6): cut at any
                            time, even when busy, pinned or guarded; < 0 counts as 0, > bytes as
                            bytes */
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
  long long shrink[PLAN_MAX_MODELS]; /* bytes to cut from each model's prompt cache (rule 6) before
                                        the load; 0 for every other index */
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
 * 6. Prompt caches are cut before any model is evicted, and never cause an eviction, a wait or a
 *    reject by themselves. A cache can be cut when its model is loading or ready; an unloading
 *    model holds all its memory until its process is gone, and one in an unknown state is busy, so
 *    theirs are counted like the rest of their footprints; an unloaded model's cache holds nothing
 *    and reserves nothing (it is sized from the room left when the model loads). Let d1 be rules
 *    1-5 with the footprints as given. If d1 is RUN, or LOAD with nothing to evict, or no model
 *    but want that is loading, ready or unloaded has a cache → d1. Else d2 is rules 1-5 again
 *    with the caches of those other models left out of their pool-0 footprints (so a pinned
 *    model's cache is not in rule 2's pinned sum):
 *    - d2 LOAD with nothing to evict → LOAD, no evictions, cutting only as much as pool 0 lacks:
 *      the caches of loading and ready models (busy, pinned and guarded ones too) in eviction
 *      order (lower priority, then least recently used, then lower index), each cut whole before
 *      the next is touched, the last one perhaps in part;
 *    - d2 LOAD with evictions → d2's evictions, and every other loading or ready model's cache
 *      cut whole;
 *    - d2 WAIT or REJECT → d2.
 *    Whichever d2 gives, its numbers come with it (they leave those caches out). shrink[] is 0
 *    except where a cache is cut, and a cut never exceeds the cache.
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
