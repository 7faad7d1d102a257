/* plan.c — the scheduler's decision (see plan.h): given every model's state and the
 * memory budget, say whether a request runs now, loads its model (after cutting which prompt
 * caches and evicting which idle models, in what order), waits, or can never fit.
 *
 * It must never do I/O, allocate, read a clock, take a lock or touch global state: sched.c calls it
 * under its own lock, and the unit test drives it through every case. It also never trusts its
 * input: n beyond PLAN_MAX_MODELS or want out of range is a REJECT with need 0, a footprint ≤ 0
 * counts as 0 (such a model still loads), a cache below 0 counts as 0 and one above its footprint
 * as the footprint, a model in an unknown state counts as resident and busy (its cache is not cut),
 * a nonzero inflight or queued (negative too) means "not idle", and no sum can overflow: the
 * reported numbers saturate at LLONG_MAX, and every "does it fit" question is answered exactly by
 * taking the terms one by one out of the room left (room_take), never by adding them up. A prompt
 * cache must never be the reason for an eviction, a wait or a reject (rule 6). */
#include "sched/plan.h"

#include <limits.h>
#include <string.h>

/* A footprint as given in pool p: bytes ≤ 0 (unknown or nonsense) counts as nothing. */
static long long plan_given(const plan_model *m, size_t p) {
  long long b = p == 0 ? m->bytes : m->pool_bytes[p];
  return b > 0 ? b : 0;
}

/* Its prompt cache: cache_bytes clamped to [0, its pool-0 footprint]. */
static long long plan_cache(const plan_model *m) {
  long long b = plan_given(m, 0);
  return m->cache_bytes <= 0 ? 0 : m->cache_bytes < b ? m->cache_bytes : b;
}

/* Its cache may be cut now: it is loading or ready (rule 6). */
static bool plan_cuttable(const plan_model *m) {
  return m->state == PLAN_LOADING || m->state == PLAN_READY;
}

/* Its cache is left out of d2 (rule 6): cuttable, or unloaded (holding nothing, reserving none). */
static bool plan_droppable(const plan_model *m) {
  return plan_cuttable(m) || m->state == PLAN_UNLOADED;
}

/* One pass of rules 1-5 looks at the models through this: with `drop` (d2), the caches of the
 * models other than want that rule 6 leaves out are not in their pool-0 footprints. */
typedef struct plan_view {
  const plan_model *models;
  size_t n, want;
  bool drop;
} plan_view;

/* models[i]'s footprint in pool p, as this view counts it. */
static long long plan_bytes(const plan_view *v, size_t i, size_t p) {
  const plan_model *m = &v->models[i];
  long long b = plan_given(m, p);
  if (p == 0 && v->drop && i != v->want && plan_droppable(m)) b -= plan_cache(m);
  return b;
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

/* Fills in the action and list length, and zeroes the unused tail of evict and every cut so that
 * `out` is entirely defined whatever the caller looks at (rule 6 writes its cuts afterwards). */
static void plan_finish(plan_decision *out, plan_action action, size_t n_evict) {
  out->action = action;
  out->n_evict = n_evict;
  memset(out->evict + n_evict, 0, (PLAN_MAX_MODELS - n_evict) * sizeof out->evict[0]);
  memset(out->shrink, 0, sizeof out->shrink);
}

void plan_decide(const plan_model *models, size_t n, size_t want, long long budget,
                 plan_decision *out) {
  long long budgets[1] = {budget};
  plan_decide_pools(models, n, want, budgets, 1, out);
}

/* Sorts idx[0..k) into eviction order (insertion sort: k ≤ PLAN_MAX_MODELS, no allocation). */
static void plan_sort(const plan_model *models, size_t *idx, size_t k) {
  for (size_t i = 1; i < k; i++) {
    size_t v = idx[i], j = i;
    for (; j > 0 && plan_before(models, v, idx[j - 1]); j--) idx[j] = idx[j - 1];
    idx[j] = v;
  }
}

/* The reported numbers of pool p (saturating sums). */
static void plan_numbers(const plan_view *v, const long long *budgets, size_t p,
                         plan_decision *out) {
  const plan_model *models = v->models;
  size_t n = v->n, want = v->want;
  out->pool = p;
  out->need = plan_bytes(v, want, p);
  out->budget = budgets[p];
  out->used = out->pinned = out->busy = 0;
  for (size_t i = 0; i < n; i++) {
    const plan_model *m = &models[i];
    long long b = plan_bytes(v, i, p);
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

/* Rules 1-5 through view v (arguments already checked). */
static void plan_once(const plan_view *v, const long long *budgets, size_t n_pools,
                      plan_decision *out) {
  const plan_model *models = v->models;
  size_t n = v->n, want = v->want;
  plan_numbers(v, budgets, 0, out);
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
    bool ok = room_take(&room, plan_bytes(v, want, p));
    for (size_t i = 0; ok && i < n; i++)
      if (models[i].pinned && i != want) ok = room_take(&room, plan_bytes(v, i, p));
    if (!ok) {
      plan_numbers(v, budgets, p, out);
      plan_finish(out, PLAN_REJECT, 0);
      return;
    }
  }

  /* 3. Fits beside everything resident, in every pool. */
  bool fits = true;
  for (size_t p = 0; fits && p < n_pools; p++) {
    long long room = budgets[p];
    fits = room_take(&room, plan_bytes(v, want, p));
    for (size_t i = 0; fits && i < n; i++)
      if (plan_resident(&models[i])) fits = room_take(&room, plan_bytes(v, i, p));
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
    bool ok = room_take(&room[p], plan_bytes(v, want, p));
    for (size_t i = 0; ok && i < n; i++)
      if (plan_resident(&models[i]) && !(i != want && plan_idle(&models[i])))
        ok = room_take(&room[p], plan_bytes(v, i, p));
    if (!ok) {
      plan_numbers(v, budgets, p, out);
      plan_finish(out, PLAN_WAIT, 0);
      return;
    }
  }

  /* 4. The idle models in eviction order. */
  size_t c[PLAN_MAX_MODELS], n_idle = 0;
  for (size_t i = 0; i < n; i++)
    if (i != want && plan_idle(&models[i])) c[n_idle++] = i;
  plan_sort(models, c, n_idle);
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
        if (kept[j]) sum = plan_usat_add(sum, (unsigned long long)plan_bytes(v, c[j], p));
      bool shorter = sum > (unsigned long long)room[p];
      any_short |= shorter;
      useful |= shorter && plan_bytes(v, c[k], p) > 0;
    }
    if (!any_short) break;
    if (!useful) continue;
    kept[k] = false;
    out->evict[n_evict++] = c[k];
  }
  plan_finish(out, PLAN_LOAD, n_evict);
}

/* Rule 6, d2 loading with nothing to evict: cut the caches in eviction order until pool 0 fits.
 * Cutting the first ones whole and the last in part is keeping, from the other end of the order,
 * as much of each cache as the room left holds — which is how it is computed (room_take style). */
static void plan_cut_some(const plan_view *v, long long budget, plan_decision *out) {
  const plan_model *models = v->models;
  long long room = budget;
  bool ok = room_take(&room, plan_bytes(v, v->want, 0));
  for (size_t i = 0; ok && i < v->n; i++)
    if (i != v->want && plan_resident(&models[i])) ok = room_take(&room, plan_bytes(v, i, 0));
  size_t c[PLAN_MAX_MODELS], k = 0;
  for (size_t i = 0; i < v->n; i++)
    if (i != v->want && plan_cuttable(&models[i]) && plan_cache(&models[i]) > 0) c[k++] = i;
  plan_sort(models, c, k);
  if (!ok) room = 0; /* cannot happen (d2 fitted): then cut them all */
  for (size_t j = k; j-- > 0;) {
    long long cache = plan_cache(&models[c[j]]), keep = cache < room ? cache : room;
    room -= keep;
    out->shrink[c[j]] = cache - keep;
  }
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
  /* d1: rules 1-5 with the footprints as given */
  plan_view v = {.models = models, .n = n, .want = want, .drop = false};
  plan_once(&v, budgets, n_pools, out);
  if (out->action == PLAN_RUN || (out->action == PLAN_LOAD && out->n_evict == 0)) return;
  bool any = false;
  for (size_t i = 0; i < n && !any; i++)
    any = i != want && plan_droppable(&models[i]) && plan_cache(&models[i]) > 0;
  if (!any) return;
  /* d2: the same without the other models' caches */
  v.drop = true;
  plan_once(&v, budgets, n_pools, out);
  if (out->action != PLAN_LOAD) return;
  if (out->n_evict == 0) {
    plan_cut_some(&v, budgets[0], out);
    return;
  }
  for (size_t i = 0; i < n; i++)
    if (i != want && plan_cuttable(&models[i])) out->shrink[i] = plan_cache(&models[i]);
  for (size_t k = 0; k < out->n_evict; k++) out->shrink[out->evict[k]] = 0; /* they go whole */
}
