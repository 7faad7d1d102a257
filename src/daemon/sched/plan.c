/* plan.c — the scheduler's decision (see plan.h): given every model's state and the
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
#include "sched/plan.h"

#include <limits.h>
#include <string.h>

/* A footprint as counted in pool p: bytes ≤ 0 (unknown or nonsense) counts as nothing. */
static long long plan_bytes(const plan_model *m, size_t p) {
  long long b = p == 0 ? m->bytes : m->pool_bytes[p];
  return b > 0 ? b : 0;
}

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
  long long budgets[1] = {budget};
  plan_decide_pools(models, n, want, budgets, 1, out);
}

/* The reported numbers of pool p (saturating sums). */
static void plan_numbers(const plan_model *models, size_t n, size_t want, const long long *budgets,
                         size_t p, plan_decision *out) {
  out->pool = p;
  out->need = plan_bytes(&models[want], p);
  out->budget = budgets[p];
  out->used = out->pinned = out->busy = 0;
  for (size_t i = 0; i < n; i++) {
    const plan_model *m = &models[i];
    long long b = plan_bytes(m, p);
    if (m->pinned && i != want) out->pinned = plan_sat_add(out->pinned, b);
    if (!plan_resident(m)) continue;
    out->used = plan_sat_add(out->used, b);
    if (!(i != want && plan_idle(m))) out->busy = plan_sat_add(out->busy, b);
  }
}

/* Unsigned saturating a + b: the kept idle models' sum in a pool (above any room when it saturates,
 * since rooms are ≤ LLONG_MAX). */
static unsigned long long plan_usat_add(unsigned long long a, unsigned long long b) {
  return a > ULLONG_MAX - b ? ULLONG_MAX : a + b;
}

void plan_decide_pools(const plan_model *models, size_t n, size_t want, const long long *budgets,
                       size_t n_pools, plan_decision *out) {
  if (!out) return;
  out->pool = 0;
  out->need = out->used = out->pinned = out->busy = 0;
  out->budget = budgets && n_pools > 0 ? budgets[0] : 0;
  if (!models || !budgets || n > PLAN_MAX_MODELS || want >= n || n_pools == 0 ||
      n_pools > PLAN_MAX_POOLS) {
    plan_finish(out, PLAN_REJECT, 0);
    return;
  }
  plan_numbers(models, n, want, budgets, 0, out);
  const plan_model *w = &models[want];

  /* 1. Already there, or on its way in or out. */
  if (w->state == PLAN_READY) {
    plan_finish(out, PLAN_RUN, 0);
    return;
  }
  if (w->state != PLAN_UNLOADED) {
    plan_finish(out, PLAN_WAIT, 0);
    return;
  }

  /* 2. need + the other pinned models > budget in some pool: no eviction or wait can ever make
   * room. The want model's own pin is left out (its bytes are already `need`). */
  for (size_t p = 0; p < n_pools; p++) {
    long long room = budgets[p];
    bool ok = room_take(&room, plan_bytes(w, p));
    for (size_t i = 0; ok && i < n; i++)
      if (models[i].pinned && i != want) ok = room_take(&room, plan_bytes(&models[i], p));
    if (!ok) {
      plan_numbers(models, n, want, budgets, p, out);
      plan_finish(out, PLAN_REJECT, 0);
      return;
    }
  }

  /* 3. Fits beside everything resident, in every pool. */
  bool fits = true;
  for (size_t p = 0; fits && p < n_pools; p++) {
    long long room = budgets[p];
    fits = room_take(&room, plan_bytes(w, p));
    for (size_t i = 0; fits && i < n; i++)
      if (plan_resident(&models[i])) fits = room_take(&room, plan_bytes(&models[i], p));
  }
  if (fits) {
    plan_finish(out, PLAN_LOAD, 0);
    return;
  }

  /* 5 (checked first). The room left in each pool once every idle model is gone: if need and the
   * busy models (resident, not idle) do not fit in some pool, evicting cannot help — wait. */
  long long room[PLAN_MAX_POOLS];
  for (size_t p = 0; p < n_pools; p++) {
    room[p] = budgets[p];
    bool ok = room_take(&room[p], plan_bytes(w, p));
    for (size_t i = 0; ok && i < n; i++)
      if (plan_resident(&models[i]) && !(i != want && plan_idle(&models[i])))
        ok = room_take(&room[p], plan_bytes(&models[i], p));
    if (!ok) {
      plan_numbers(models, n, want, budgets, p, out);
      plan_finish(out, PLAN_WAIT, 0);
      return;
    }
  }

  /* 4. The idle models in eviction order (insertion sort: n ≤ PLAN_MAX_MODELS, no allocation). */
  size_t c[PLAN_MAX_MODELS], n_idle = 0;
  for (size_t i = 0; i < n; i++)
    if (i != want && plan_idle(&models[i])) c[n_idle++] = i;
  for (size_t i = 1; i < n_idle; i++) {
    size_t v = c[i], j = i;
    for (; j > 0 && plan_before(models, v, c[j - 1]); j--) c[j] = c[j - 1];
    c[j] = v;
  }
  /* Walk that order; evict a model only if it frees memory in a pool still short of room (the
   * kept idle models do not fit there), and stop once every pool fits. Step 5 passing means the
   * walk ends with every pool fitting; step 3 failing means it evicts at least one. */
  bool kept[PLAN_MAX_MODELS];
  for (size_t k = 0; k < n_idle; k++) kept[k] = true;
  size_t n_evict = 0;
  for (size_t k = 0; k < n_idle; k++) {
    bool any_short = false, useful = false;
    for (size_t p = 0; p < n_pools; p++) {
      unsigned long long sum = 0;
      for (size_t j = 0; j < n_idle; j++)
        if (kept[j]) sum = plan_usat_add(sum, (unsigned long long)plan_bytes(&models[c[j]], p));
      bool shorter = sum > (unsigned long long)room[p];
      any_short |= shorter;
      useful |= shorter && plan_bytes(&models[c[k]], p) > 0;
    }
    if (!any_short) break;
    if (!useful) continue;
    kept[k] = false;
    out->evict[n_evict++] = c[k];
  }
  plan_finish(out, PLAN_LOAD, n_evict);
}
