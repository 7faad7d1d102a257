/* sched_plan.c — the scheduler's decision (see sched_plan.h): given every model's state and the
 * memory budget, say whether a request runs now, loads its model (after evicting which idle models,
 * in what order), waits, or can never fit.
 *
 * It must never do I/O, allocate, read a clock, take a lock or touch global state: sched.c calls it
 * under its own lock, and the unit test drives it through every case. It also never trusts its
 * input: n beyond PLAN_MAX_MODELS or want out of range is a REJECT with need 0, a footprint ≤ 0
 * counts as 0 (such a model still loads), a model in an unknown state counts as resident and busy,
 * a nonzero inflight or queued (negative too) means "not idle", and no sum can overflow: the
 * reported numbers saturate at LLONG_MAX, and every "does it fit" question is answered exactly by
 * taking the terms one by one out of the room left (room_take), never by adding them up. */
#include "sched_plan.h"

#include <limits.h>
#include <string.h>

/* A footprint as counted: bytes ≤ 0 (unknown or nonsense) counts as nothing. */
static long long plan_bytes(const plan_model *m) { return m->bytes > 0 ? m->bytes : 0; }

/* a + b for a, b ≥ 0, saturating at LLONG_MAX (for the reported numbers only). */
static long long plan_sat_add(long long a, long long b) {
  return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

/* Takes x (≥ 0) out of *room. False, with *room untouched, when it does not fit (x > *room, and
 * always when *room is negative). Exact: *room stays within [0, LLONG_MAX], nothing overflows. */
static bool room_take(long long *room, long long x) {
  if (*room < 0 || x > *room) return false;
  *room -= x;
  return true;
}

/* Holds memory now: loading, ready, unloading — and, defensively, any state we do not know. */
static bool plan_resident(const plan_model *m) { return m->state != PLAN_UNLOADED; }

/* May be unloaded now to make room: ready, serving nothing, nobody waiting on it, not pinned, and
 * not loaded so recently that evicting it would thrash (guarded). */
static bool plan_idle(const plan_model *m) {
  return m->state == PLAN_READY && m->inflight == 0 && m->queued == 0 && !m->pinned && !m->guarded;
}

/* Eviction order: true when models[a] goes before models[b] — lower priority first, then least
 * recently used, then lower index. */
static bool plan_before(const plan_model *models, size_t a, size_t b) {
  const plan_model *x = &models[a], *y = &models[b];
  if (x->priority != y->priority) return x->priority < y->priority;
  if (x->last_used_ms != y->last_used_ms) return x->last_used_ms < y->last_used_ms;
  return a < b;
}

/* Fills in the action and list length, and zeroes the unused tail of evict so that `out` is
 * entirely defined whatever the caller looks at. */
static void plan_finish(plan_decision *out, plan_action action, size_t n_evict) {
  out->action = action;
  out->n_evict = n_evict;
  memset(out->evict + n_evict, 0, (PLAN_MAX_MODELS - n_evict) * sizeof out->evict[0]);
}

void plan_decide(const plan_model *models, size_t n, size_t want, long long budget,
                 plan_decision *out) {
  if (!out) return;
  out->need = 0;
  out->budget = budget;
  out->used = 0;
  out->pinned = 0;
  out->busy = 0;
  if (!models || n > PLAN_MAX_MODELS || want >= n) {
    plan_finish(out, PLAN_REJECT, 0);
    return;
  }

  /* The numbers, and the idle models (the eviction candidates) gathered into out->evict. */
  const plan_model *w = &models[want];
  long long need = plan_bytes(w);
  size_t n_idle = 0;
  out->need = need;
  for (size_t i = 0; i < n; i++) {
    const plan_model *m = &models[i];
    long long b = plan_bytes(m);
    if (m->pinned && i != want) out->pinned = plan_sat_add(out->pinned, b);
    if (!plan_resident(m)) continue;
    out->used = plan_sat_add(out->used, b);
    if (i != want && plan_idle(m))
      out->evict[n_idle++] = i;
    else
      out->busy = plan_sat_add(out->busy, b);
  }

  /* 1. Already there, or on its way in or out. */
  if (w->state == PLAN_READY) {
    plan_finish(out, PLAN_RUN, 0);
    return;
  }
  if (w->state != PLAN_UNLOADED) {
    plan_finish(out, PLAN_WAIT, 0);
    return;
  }

  /* 2. need + the other pinned models > budget: no eviction or wait can ever make room. The want
   * model's own pin is left out (its bytes are already `need`). */
  long long room = budget;
  bool ok = room_take(&room, need);
  for (size_t i = 0; ok && i < n; i++)
    if (models[i].pinned && i != want) ok = room_take(&room, plan_bytes(&models[i]));
  if (!ok) {
    plan_finish(out, PLAN_REJECT, 0);
    return;
  }

  /* 3. Fits beside everything resident. */
  room = budget;
  ok = room_take(&room, need);
  for (size_t i = 0; ok && i < n; i++)
    if (plan_resident(&models[i])) ok = room_take(&room, plan_bytes(&models[i]));
  if (ok) {
    plan_finish(out, PLAN_LOAD, 0);
    return;
  }

  /* 5 (checked first). The room left once every idle model is gone: if need and the busy models
   * (resident, not idle) do not fit, evicting cannot help — wait for a state change. */
  room = budget;
  ok = room_take(&room, need);
  for (size_t i = 0; ok && i < n; i++)
    if (plan_resident(&models[i]) && !(i != want && plan_idle(&models[i])))
      ok = room_take(&room, plan_bytes(&models[i]));
  if (!ok) {
    plan_finish(out, PLAN_WAIT, 0);
    return;
  }

  /* 4. Put the idle models in eviction order (insertion sort: n ≤ PLAN_MAX_MODELS, no allocation).
   */
  size_t *c = out->evict;
  for (size_t i = 1; i < n_idle; i++) {
    size_t v = c[i], j = i;
    for (; j > 0 && plan_before(models, v, c[j - 1]); j--) c[j] = c[j - 1];
    c[j] = v;
  }
  /* Evict c[0..k) for the smallest k whose kept suffix c[k..n_idle) fits in `room`. Kept sums grow
   * as the suffix grows backwards (footprints are ≥ 0), so extend it from the end while it fits;
   * where it stops is k. Step 3 failing means the whole list does not fit, so k ≥ 1. */
  size_t k = n_idle;
  while (k > 0 && room_take(&room, plan_bytes(&models[c[k - 1]]))) k--;
  plan_finish(out, PLAN_LOAD, k);
}
