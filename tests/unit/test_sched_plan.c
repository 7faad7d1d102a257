/* test_sched_plan.c — unit tests of sched/plan.c: one test per rule and boundary of plan_decide
 * (run, wait, load with and without evictions, eviction order, busy/queued/pinned models kept,
 * reject, exact-fit edges on both sides, unloading and loading memory counted, the wanted model
 * pinned, bad arguments, sums near LLONG_MAX), each checking the action, the exact evict list and
 * every number; then a property test over 100k fixed-seed random states that checks the decision
 * against the header's rules with exact 128-bit arithmetic. Rule 6 (prompt caches cut before any
 * eviction) has its own cases and property test: a cache must never cause an eviction, a wait or
 * a reject, and is cut only as much as needed. Nothing here sleeps or reads a clock.
 */
#include "sched/plan.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

/* ---- helpers ------------------------------------------------------------------------------- */

#define UNL(b) \
  { .state = PLAN_UNLOADED, .bytes = (b) }
#define RDY(b, t) \
  { .state = PLAN_READY, .bytes = (b), .last_used_ms = (t) }
#define LDG(b) \
  { .state = PLAN_LOADING, .bytes = (b) }
#define ULG(b) \
  { .state = PLAN_UNLOADING, .bytes = (b) }
/* with a prompt cache of c bytes (part of b) */
#define RDYC(b, c, t) \
  { .state = PLAN_READY, .bytes = (b), .cache_bytes = (c), .last_used_ms = (t) }
#define NMODELS(a) (sizeof(a) / sizeof((a)[0]))

static plan_decision D; /* one decision at a time; ~8 KiB, so not on the stack */

/* The cuts are written everywhere (the garbage D was filled with is negative), none is negative,
 * none beyond n; without any cache there are none at all. */
static void check_shrink_written(const plan_model *m, size_t n) {
  bool caches = false;
  for (size_t i = 0; m && i < n && i < PLAN_MAX_MODELS; i++) caches |= m[i].cache_bytes != 0;
  for (size_t i = 0; i < PLAN_MAX_MODELS; i++) {
    assert_true(D.shrink[i] >= 0);
    if (!caches || i >= n) assert_true(D.shrink[i] == 0);
  }
}

/* plan_decide into D, after filling D with garbage, then check that the unused tail of evict was
 * written (zeroed), and every cut: `out` must be fully written in every case. */
static const plan_decision *decide(const plan_model *m, size_t n, size_t want, long long budget) {
  memset(&D, 0xA5, sizeof D);
  plan_decide(m, n, want, budget, &D);
  assert_true(D.n_evict <= PLAN_MAX_MODELS);
  for (size_t i = D.n_evict; i < PLAN_MAX_MODELS; i++) assert_int_equal(D.evict[i], 0);
  check_shrink_written(m, n);
  return &D;
}

static void expect_numbers(const plan_decision *d, long long need, long long budget, long long used,
                           long long pinned, long long busy) {
  assert_true(d->need == need);
  assert_true(d->budget == budget);
  assert_true(d->used == used);
  assert_true(d->pinned == pinned);
  assert_true(d->busy == busy);
}

static void expect_evict(const plan_decision *d, size_t n, const size_t *list) {
  assert_int_equal(d->n_evict, n);
  for (size_t i = 0; i < n; i++) assert_int_equal(d->evict[i], list[i]);
}

/* action + exact evict list (as a brace list, possibly empty) */
#define EXPECT(d, act, ...)                        \
  do {                                             \
    const size_t e_[] = {(size_t)-1, __VA_ARGS__}; \
    assert_int_equal((d)->action, (act));          \
    expect_evict((d), NMODELS(e_) - 1, e_ + 1);    \
  } while (0)

/* ---- rule 1: the wanted model's own state -------------------------------------------------- */

static void test_ready_runs(void **state) {
  (void)state;
  plan_model m[] = {RDY(100, 5), RDY(200, 1)};
  const plan_decision *d = decide(m, 2, 0, 1000);
  EXPECT(d, PLAN_RUN);
  expect_numbers(d, 100, 1000, 300, 0, 100); /* the wanted model is resident and not evictable */

  /* ready runs whatever else is true: busy, pinned, over budget, budget too small for it */
  m[0].inflight = 3;
  m[0].pinned = true;
  d = decide(m, 2, 0, 10);
  EXPECT(d, PLAN_RUN);
  expect_numbers(d, 100, 10, 300, 0, 100);
}

static void test_loading_unloading_wait(void **state) {
  (void)state;
  plan_model m[] = {LDG(100), RDY(200, 1), ULG(300)};
  const plan_decision *d = decide(m, 3, 0, 1000);
  EXPECT(d, PLAN_WAIT);
  expect_numbers(d, 100, 1000, 600, 0, 400); /* loading 100 + unloading 300 cannot be evicted */

  d = decide(m, 3, 2, 1000); /* want the unloading one: wait for it to be gone, then load */
  EXPECT(d, PLAN_WAIT);
  expect_numbers(d, 300, 1000, 600, 0, 400);

  /* even when it could never fit: rule 1 comes first */
  d = decide(m, 3, 0, 50);
  EXPECT(d, PLAN_WAIT);
}

/* ---- rule 3: fits as it is ----------------------------------------------------------------- */

static void test_fits_with_room(void **state) {
  (void)state;
  plan_model m[] = {UNL(100), RDY(200, 1), UNL(5000)};
  const plan_decision *d = decide(m, 3, 0, 1000);
  EXPECT(d, PLAN_LOAD);
  expect_numbers(d, 100, 1000, 200, 0, 0); /* unloaded models count for nothing */
}

static void test_fits_exactly(void **state) {
  (void)state;
  plan_model m[] = {UNL(400), RDY(300, 1), RDY(300, 2)};
  const plan_decision *d = decide(m, 3, 0, 1000); /* used + need == budget */
  EXPECT(d, PLAN_LOAD);
  expect_numbers(d, 400, 1000, 600, 0, 0);

  d = decide(m, 3, 0, 999); /* one byte short: the LRU one goes */
  EXPECT(d, PLAN_LOAD, 1);
  expect_numbers(d, 400, 999, 600, 0, 0);
}

/* ---- rule 4: evictions --------------------------------------------------------------------- */

static void test_evicts_one_lru(void **state) {
  (void)state;
  plan_model m[] = {UNL(400), RDY(300, 10), RDY(300, 5), RDY(300, 20)};
  const plan_decision *d = decide(m, 4, 0, 1000);
  EXPECT(d, PLAN_LOAD, 2);
  expect_numbers(d, 400, 1000, 900, 0, 0);
}

static void test_evicts_several_in_order_and_stops(void **state) {
  (void)state;
  plan_model m[] = {UNL(500), RDY(200, 1), RDY(100, 9), RDY(100, 3), RDY(300, 2)};
  m[1].priority = 1;
  m[4].priority = 2;
  /* order: 3 (p0, t3), 2 (p0, t9), 1 (p1), 4 (p2) */
  const plan_decision *d = decide(m, 5, 0, 1000); /* must free 200: 3 then 2, exactly fits */
  EXPECT(d, PLAN_LOAD, 3, 2);
  expect_numbers(d, 500, 1000, 700, 0, 0);

  d = decide(m, 5, 0, 999); /* must free 201: 3, 2, then 1 (not 4) */
  EXPECT(d, PLAN_LOAD, 3, 2, 1);

  d = decide(m, 5, 0, 700); /* must free 500: 3, 2, 1 free 400, then 4 as well */
  EXPECT(d, PLAN_LOAD, 3, 2, 1, 4);

  d = decide(m, 5, 0, 500); /* everything goes, fits exactly */
  EXPECT(d, PLAN_LOAD, 3, 2, 1, 4);
  expect_numbers(d, 500, 500, 700, 0, 0);

  d = decide(m, 5, 0, 499); /* need alone exceeds budget: can never fit */
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 500, 499, 700, 0, 0);
}

static void test_priority_beats_recency(void **state) {
  (void)state;
  plan_model m[] = {UNL(100), RDY(100, 1), RDY(100, 1000), RDY(100, 500)};
  m[1].priority = 5; /* the oldest, but precious */
  m[2].priority = 0;
  m[3].priority = -3; /* negative priorities go first */
  const plan_decision *d = decide(m, 4, 0, 300);
  EXPECT(d, PLAN_LOAD, 3);
  d = decide(m, 4, 0, 200);
  EXPECT(d, PLAN_LOAD, 3, 2);
  d = decide(m, 4, 0, 100);
  EXPECT(d, PLAN_LOAD, 3, 2, 1);
}

static void test_ties_lowest_index(void **state) {
  (void)state;
  plan_model m[] = {RDY(100, 7), RDY(100, 7), RDY(100, 7), UNL(100), RDY(100, 7)};
  const plan_decision *d = decide(m, 5, 3, 300);
  EXPECT(d, PLAN_LOAD, 0, 1);
  expect_numbers(d, 100, 300, 400, 0, 0);

  /* same, given in an order that an unstable sort would scramble */
  plan_model r[] = {UNL(100), RDY(100, 7), RDY(100, 7), RDY(100, 7), RDY(100, 7)};
  r[4].priority = -1;
  d = decide(r, 5, 0, 200);
  EXPECT(d, PLAN_LOAD, 4, 1, 2);
}

static void test_busy_and_queued_kept(void **state) {
  (void)state;
  plan_model m[] = {UNL(300), RDY(300, 1), RDY(300, 2), RDY(300, 3)};
  m[1].inflight = 1; /* the LRU one is serving */
  m[2].queued = 2;   /* the next one has requests waiting for it */
  const plan_decision *d = decide(m, 4, 0, 1000);
  EXPECT(d, PLAN_LOAD, 3);
  expect_numbers(d, 300, 1000, 900, 0, 600);

  d = decide(m, 4, 0, 899); /* evicting the only idle one is not enough: wait */
  EXPECT(d, PLAN_WAIT);
  expect_numbers(d, 300, 899, 900, 0, 600);

  /* busy + need == budget: evict every idle one; one byte less: wait */
  plan_model e[] = {UNL(300), RDY(300, 1), RDY(100, 2), RDY(100, 3)};
  e[1].inflight = 1;
  d = decide(e, 4, 0, 600);
  EXPECT(d, PLAN_LOAD, 2, 3);
  expect_numbers(d, 300, 600, 500, 0, 300);
  d = decide(e, 4, 0, 599);
  EXPECT(d, PLAN_WAIT);
}

static void test_guarded_kept(void **state) {
  (void)state;
  /* the thrash guard: a model loaded too recently is not evicted; the request waits instead */
  plan_model m[] = {UNL(300), RDY(300, 1), RDY(300, 2)};
  m[1].guarded = true;
  const plan_decision *d = decide(m, 3, 0, 700);
  EXPECT(d, PLAN_LOAD, 2); /* the LRU one is guarded: the next one goes */
  m[2].guarded = true;
  d = decide(m, 3, 0, 700);
  EXPECT(d, PLAN_WAIT); /* both guarded: wait for a guard to expire */
  d = decide(m, 3, 0, 900);
  EXPECT(d, PLAN_LOAD); /* room without evicting: guards do not matter */
  assert_int_equal(d->n_evict, 0);
}

static void test_pinned_kept_and_counted(void **state) {
  (void)state;
  plan_model m[] = {UNL(450), RDY(300, 1), UNL(200), RDY(300, 5)};
  m[1].pinned = true; /* resident and pinned: never evicted, counted in pinned and busy */
  m[2].pinned = true; /* pinned but not loaded: still reserved in `pinned`, not in used */
  const plan_decision *d = decide(m, 4, 0, 1000);
  EXPECT(d, PLAN_LOAD, 3);
  expect_numbers(d, 450, 1000, 600, 500, 300);

  /* need == budget − pinned: allowed (evicting the idle one); one more byte: rejected */
  m[0].bytes = 500;
  d = decide(m, 4, 0, 1000);
  EXPECT(d, PLAN_LOAD, 3);
  expect_numbers(d, 500, 1000, 600, 500, 300);
  m[0].bytes = 501;
  d = decide(m, 4, 0, 1000);
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 501, 1000, 600, 500, 300);
}

static void test_all_busy_waits(void **state) {
  (void)state;
  plan_model m[] = {UNL(200), RDY(600, 1), LDG(300), UNL(900)};
  m[1].inflight = 1;
  const plan_decision *d = decide(m, 4, 0, 1000);
  EXPECT(d, PLAN_WAIT);
  expect_numbers(d, 200, 1000, 900, 0, 900);
}

/* ---- rule 2: never fits -------------------------------------------------------------------- */

static void test_reject_even_when_busy(void **state) {
  (void)state;
  plan_model m[] = {UNL(700), RDY(400, 1), RDY(500, 2)};
  m[1].pinned = true;
  m[2].inflight = 2;
  const plan_decision *d = decide(m, 3, 0, 1000); /* 700 > 1000 − 400: reject, not wait */
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 700, 1000, 900, 400, 900);

  m[0].bytes = 600; /* == budget − pinned: it will fit once model 2 is idle */
  d = decide(m, 3, 0, 1000);
  EXPECT(d, PLAN_WAIT);

  plan_model b[] = {UNL(1001), RDY(500, 1), LDG(10)};
  b[1].inflight = 1;
  d = decide(b, 3, 0, 1000);
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 1001, 1000, 510, 0, 510);
  b[0].bytes = 1000;
  d = decide(b, 3, 0, 1000);
  EXPECT(d, PLAN_WAIT);
}

/* ---- memory in transit --------------------------------------------------------------------- */

static void test_unloading_counted(void **state) {
  (void)state;
  plan_model m[] = {UNL(500), ULG(600)};
  const plan_decision *d = decide(m, 2, 0, 1000);
  EXPECT(d, PLAN_WAIT); /* its memory is not free until the process is gone */
  expect_numbers(d, 500, 1000, 600, 0, 600);
  m[1].state = PLAN_UNLOADED;
  d = decide(m, 2, 0, 1000);
  EXPECT(d, PLAN_LOAD);
  expect_numbers(d, 500, 1000, 0, 0, 0);

  /* an unloading model is never put on the evict list, even when idle-looking and oldest */
  plan_model e[] = {UNL(500), ULG(300), RDY(300, 50)};
  d = decide(e, 3, 0, 1000);
  EXPECT(d, PLAN_LOAD, 2);
  expect_numbers(d, 500, 1000, 600, 0, 300);
}

static void test_loading_counted(void **state) {
  (void)state;
  plan_model m[] = {UNL(500), LDG(600), RDY(100, 1)};
  const plan_decision *d = decide(m, 3, 0, 1100);
  EXPECT(d, PLAN_LOAD, 2);
  expect_numbers(d, 500, 1100, 700, 0, 600);
  d = decide(m, 3, 0, 1099);
  EXPECT(d, PLAN_WAIT);
  d = decide(m, 3, 0, 1200);
  EXPECT(d, PLAN_LOAD);
}

/* ---- the wanted model pinned --------------------------------------------------------------- */

static void test_want_pinned(void **state) {
  (void)state;
  plan_model m[] = {UNL(600), RDY(300, 1)};
  m[0].pinned = true;
  m[1].pinned = true;
  const plan_decision *d = decide(m, 2, 0, 1000); /* 600 ≤ 1000 − 300: its own pin not counted */
  EXPECT(d, PLAN_LOAD);
  expect_numbers(d, 600, 1000, 300, 300, 300);
  m[0].bytes = 700; /* exactly budget − pinned(others) */
  d = decide(m, 2, 0, 1000);
  EXPECT(d, PLAN_LOAD);
  expect_numbers(d, 700, 1000, 300, 300, 300);
  m[0].bytes = 701;
  d = decide(m, 2, 0, 1000);
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 701, 1000, 300, 300, 300);

  /* alone and pinned: need == budget loads */
  plan_model a[] = {UNL(1000)};
  a[0].pinned = true;
  d = decide(a, 1, 0, 1000);
  EXPECT(d, PLAN_LOAD);
  expect_numbers(d, 1000, 1000, 0, 0, 0);
}

/* ---- bad arguments and extremes ------------------------------------------------------------ */

static void test_bad_arguments(void **state) {
  (void)state;
  plan_model m[] = {RDY(100, 1), UNL(100)};
  const plan_decision *d = decide(m, 0, 0, 1000); /* n = 0 */
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 0, 1000, 0, 0, 0);
  d = decide(m, 2, 2, 1000); /* want == n */
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 0, 1000, 0, 0, 0);
  d = decide(m, 2, (size_t)-1, 1000);
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 0, 1000, 0, 0, 0);
  d = decide(NULL, 2, 0, 1000);
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 0, 1000, 0, 0, 0);
  plan_decide(m, 2, 0, 1000, NULL); /* nowhere to write: does nothing, does not crash */

  static plan_model big[PLAN_MAX_MODELS + 1];
  for (size_t i = 0; i <= PLAN_MAX_MODELS; i++) big[i] = (plan_model)RDY(1, (long long)i);
  d = decide(big, PLAN_MAX_MODELS + 1, 0, 1000); /* too many models */
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 0, 1000, 0, 0, 0);
}

static void test_nonpositive_bytes(void **state) {
  (void)state;
  plan_model m[] = {UNL(-5), RDY(-100, 1), RDY(0, 2), UNL(0)};
  m[3].pinned = true;
  const plan_decision *d = decide(m, 4, 0, 0); /* nothing counts: loads within a zero budget */
  EXPECT(d, PLAN_LOAD);
  expect_numbers(d, 0, 0, 0, 0, 0);

  /* already over budget (it shrank): even a free model makes the idle ones go, LRU first */
  plan_model o[] = {UNL(0), RDY(300, 9), RDY(300, 1)};
  d = decide(o, 3, 0, 350);
  EXPECT(d, PLAN_LOAD, 2);
  expect_numbers(d, 0, 350, 600, 0, 0);

  d = decide(o, 3, 0, -1); /* negative budget: nothing ever fits */
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 0, -1, 600, 0, 0);
}

static void test_huge_bytes(void **state) {
  (void)state;
  const long long H = LLONG_MAX / 2;
  plan_model m[] = {UNL(H), RDY(H, 4), RDY(H, 1), RDY(H, 3), RDY(H, 2)};
  const plan_decision *d = decide(m, 5, 0, LLONG_MAX);
  /* used saturates; kept + need ≤ LLONG_MAX keeps exactly one (2H + H > LLONG_MAX) */
  EXPECT(d, PLAN_LOAD, 2, 4, 3);
  expect_numbers(d, H, LLONG_MAX, LLONG_MAX, 0, 0);

  d = decide(m, 5, 0, 2 * H); /* 2H: still one kept */
  EXPECT(d, PLAN_LOAD, 2, 4, 3);
  d = decide(m, 5, 0, 2 * H - 1); /* one byte less: all four go */
  EXPECT(d, PLAN_LOAD, 2, 4, 3, 1);

  /* pinned sum saturates and rejects; busy sum saturates and waits */
  plan_model p[] = {UNL(1), RDY(H, 1), RDY(H, 2), UNL(H)};
  p[1].pinned = p[2].pinned = p[3].pinned = true;
  d = decide(p, 4, 0, LLONG_MAX);
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, 1, LLONG_MAX, 2 * H, LLONG_MAX, 2 * H);
  p[3].pinned = false;
  d = decide(p, 4, 0, LLONG_MAX); /* 1 + 2H == LLONG_MAX exactly: fits beside them */
  EXPECT(d, PLAN_LOAD);
  expect_numbers(d, 1, LLONG_MAX, 2 * H, 2 * H, 2 * H);

  plan_model b[] = {UNL(LLONG_MAX), RDY(LLONG_MAX, 1), LDG(LLONG_MAX), ULG(LLONG_MAX)};
  b[1].inflight = 1;
  d = decide(b, 4, 0, LLONG_MAX);
  EXPECT(d, PLAN_WAIT);
  expect_numbers(d, LLONG_MAX, LLONG_MAX, LLONG_MAX, 0, LLONG_MAX);
  d = decide(b, 4, 0, LLONG_MIN);
  EXPECT(d, PLAN_REJECT);
  expect_numbers(d, LLONG_MAX, LLONG_MIN, LLONG_MAX, 0, LLONG_MAX);
  b[1].inflight = 0;
  b[2].state = b[3].state = PLAN_READY;
  d = decide(b, 4, 0, LLONG_MAX); /* all go: 2 and 3 (last used 0, by index), then 1 */
  EXPECT(d, PLAN_LOAD, 2, 3, 1);
  expect_numbers(d, LLONG_MAX, LLONG_MAX, LLONG_MAX, 0, 0);
}

/* Every slot used: all PLAN_MAX_MODELS − 1 others idle, loaded newest-first, all must go. */
static void test_full_table(void **state) {
  (void)state;
  static plan_model m[PLAN_MAX_MODELS];
  m[PLAN_MAX_MODELS - 1] = (plan_model)UNL(PLAN_MAX_MODELS);
  for (size_t i = 0; i + 1 < PLAN_MAX_MODELS; i++)
    m[i] = (plan_model)RDY(1, (long long)(PLAN_MAX_MODELS - i));
  const plan_decision *d = decide(m, PLAN_MAX_MODELS, PLAN_MAX_MODELS - 1, PLAN_MAX_MODELS);
  assert_int_equal(d->action, PLAN_LOAD);
  assert_int_equal(d->n_evict, PLAN_MAX_MODELS - 1);
  for (size_t i = 0; i < d->n_evict; i++) assert_int_equal(d->evict[i], PLAN_MAX_MODELS - 2 - i);
  expect_numbers(d, PLAN_MAX_MODELS, PLAN_MAX_MODELS, PLAN_MAX_MODELS - 1, 0, 0);

  d = decide(m, PLAN_MAX_MODELS, PLAN_MAX_MODELS - 1, PLAN_MAX_MODELS + 10); /* keep 10 */
  assert_int_equal(d->action, PLAN_LOAD);
  assert_int_equal(d->n_evict, PLAN_MAX_MODELS - 11);
  for (size_t i = 0; i < d->n_evict; i++) assert_int_equal(d->evict[i], PLAN_MAX_MODELS - 2 - i);
}

/* Strange input the caller should never send: an unknown state counts as resident and busy (and
 * the wanted model in one waits); negative counters mean "not idle". */
static void test_odd_input(void **state) {
  (void)state;
  plan_model m[] = {UNL(100), RDY(100, 1), RDY(100, 2), RDY(100, 3)};
  m[1].state = (plan_state)77;
  m[2].inflight = -1;
  m[3].queued = -1;
  const plan_decision *d = decide(m, 4, 0, 350);
  EXPECT(d, PLAN_WAIT);
  expect_numbers(d, 100, 350, 300, 0, 300);
  d = decide(m, 4, 1, 1000);
  EXPECT(d, PLAN_WAIT);
}

/* ---- property test ------------------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}
static long long pick(long long lo, long long hi) { /* in [lo, hi], hi − lo < 2^62 */
  return lo + (long long)(next() % (uint64_t)(hi - lo + 1));
}

typedef __int128 i128; /* exact sums for the reference (gcc) */

static long long sat(i128 x) { return x > LLONG_MAX ? LLONG_MAX : (long long)x; }
static i128 cnt(const plan_model *m) { return m->bytes > 0 ? m->bytes : 0; }
static bool resident(const plan_model *m) { return m->state != PLAN_UNLOADED; }
static bool idle(const plan_model *m) {
  return m->state == PLAN_READY && m->inflight == 0 && m->queued == 0 && !m->pinned && !m->guarded;
}
static bool before(const plan_model *m, size_t a, size_t b) {
  if (m[a].priority != m[b].priority) return m[a].priority < m[b].priority;
  if (m[a].last_used_ms != m[b].last_used_ms) return m[a].last_used_ms < m[b].last_used_ms;
  return a < b;
}

static long long random_bytes(long long scale) {
  switch (next() % 16) {
    case 0:
      return 0;
    case 1:
      return -pick(1, 1000);
    case 2:
      return LLONG_MAX / 2 - pick(0, 2);
    case 3:
      return LLONG_MAX - pick(0, 2);
    default:
      return pick(1, scale);
  }
}

static void check_one(const plan_model *m, size_t n, size_t want, long long budget) {
  const plan_decision *d = decide(m, n, want, budget);
  const plan_model *w = &m[want];
  i128 need = cnt(w), used = 0, pinned = 0, busy = 0, idle_sum = 0;
  for (size_t i = 0; i < n; i++) {
    if (m[i].pinned && i != want) pinned += cnt(&m[i]);
    if (!resident(&m[i])) continue;
    used += cnt(&m[i]);
    if (i != want && idle(&m[i]))
      idle_sum += cnt(&m[i]);
    else
      busy += cnt(&m[i]);
  }
  expect_numbers(d, (long long)need, budget, sat(used), sat(pinned), sat(busy));

  /* the action, rule by rule */
  plan_action a;
  if (w->state == PLAN_READY)
    a = PLAN_RUN;
  else if (w->state != PLAN_UNLOADED)
    a = PLAN_WAIT;
  else if (need + pinned > budget)
    a = PLAN_REJECT;
  else if (busy + need > budget)
    a = PLAN_WAIT; /* even with every idle model gone */
  else
    a = PLAN_LOAD;
  assert_int_equal(d->action, a);
  if (a != PLAN_LOAD) {
    assert_int_equal(d->n_evict, 0);
    return;
  }

  /* the evict list: distinct, idle, unpinned, ready, not the wanted one, in eviction order */
  bool seen[12] = {0};
  i128 freed = 0, last = 0;
  for (size_t k = 0; k < d->n_evict; k++) {
    size_t e = d->evict[k];
    assert_true(e < n && e != want && !seen[e]);
    seen[e] = true;
    assert_true(idle(&m[e]) && m[e].state == PLAN_READY && !m[e].pinned);
    assert_true(m[e].inflight == 0 && m[e].queued == 0);
    if (k > 0) assert_true(before(m, d->evict[k - 1], e));
    freed += cnt(&m[e]);
    last = cnt(&m[e]);
  }
  /* ... and a prefix of that order, leaving out models that free nothing: every idle model left
   * that holds memory comes after every evicted one */
  for (size_t i = 0; i < n; i++)
    if (i != want && idle(&m[i]) && !seen[i] && d->n_evict > 0 && cnt(&m[i]) > 0)
      assert_true(before(m, d->evict[d->n_evict - 1], i));
  /* it fits after the evictions, and would not have without the last one (minimal prefix) */
  assert_true(used - freed + need <= budget);
  if (d->n_evict > 0) assert_true(used - freed + last + need > budget);
  if (used + need <= budget) assert_int_equal(d->n_evict, 0);
  (void)idle_sum;
}

static void test_property_random(void **state) {
  (void)state;
  static const plan_state states[] = {PLAN_UNLOADED, PLAN_LOADING, PLAN_READY, PLAN_UNLOADING};
  plan_model m[12];
  size_t counts[4] = {0};
  for (int it = 0; it < 100000; it++) {
    size_t n = (size_t)pick(1, 12);
    long long scale = next() % 4 == 0 ? LLONG_MAX / 16 : 1000;
    i128 total = 0;
    for (size_t i = 0; i < n; i++) {
      plan_model *x = &m[i];
      memset(x, 0, sizeof *x);
      x->state = states[next() % 4];
      x->bytes = random_bytes(scale);
      x->inflight = next() % 4 == 0 ? (int)pick(1, 3) : 0;
      x->queued = next() % 5 == 0 ? (int)pick(1, 3) : 0;
      x->last_used_ms = pick(0, 20); /* narrow: plenty of ties */
      x->priority = (int)pick(-2, 2);
      x->pinned = next() % 6 == 0;
      x->guarded = next() % 7 == 0;
      total += cnt(x);
    }
    size_t want = (size_t)pick(0, (long long)n - 1);
    if (next() % 2) m[want].state = PLAN_UNLOADED; /* the interesting case, more often */
    long long budget;
    switch (next() % 8) {
      case 0:
        budget = LLONG_MAX - pick(0, 2);
        break;
      case 1:
        budget = -pick(0, 1000);
        break;
      default:
        budget = sat(total * pick(0, 100) / 100 + pick(-2, 2));
        break;
    }
    check_one(m, n, want, budget);
    counts[D.action]++;
  }
  /* every outcome was actually exercised */
  for (int a = 0; a < 4; a++) assert_true(counts[a] > 1000);
}

/* ---- pools (host RAM + GPUs) -------------------------------------------------------------- */

/* A model with `host` bytes in pool 0 and `gpu` in pool 1. */
static plan_model pm(plan_state st, long long host, long long gpu, long long t) {
  plan_model m = {.state = st, .bytes = host, .last_used_ms = t};
  m.pool_bytes[1] = gpu;
  return m;
}

static const plan_decision *decide_pools(const plan_model *m, size_t n, size_t want,
                                         const long long *b, size_t np) {
  memset(&D, 0xA5, sizeof D);
  plan_decide_pools(m, n, want, b, np, &D);
  assert_true(D.n_evict <= PLAN_MAX_MODELS);
  for (size_t i = D.n_evict; i < PLAN_MAX_MODELS; i++) assert_int_equal(D.evict[i], 0);
  check_shrink_written(m, n);
  return &D;
}

/* The GPU is full, the host has room: the least recently used model is CPU-only, so it stays;
 * the GPU model goes. */
static void test_pools_evict_where_short(void **state) {
  (void)state;
  plan_model m[] = {pm(PLAN_UNLOADED, 100, 600, 0), pm(PLAN_READY, 500, 0, 1),
                    pm(PLAN_READY, 100, 600, 2)};
  long long b[] = {1000, 1000};
  const plan_decision *d = decide_pools(m, 3, 0, b, 2);
  EXPECT(d, PLAN_LOAD, 2);
  /* both fit in both pools: nothing goes */
  b[1] = 1200;
  d = decide_pools(m, 3, 0, b, 2);
  EXPECT(d, PLAN_LOAD);
  /* short in both pools: the LRU one frees host memory, then the GPU one */
  long long b2[] = {650, 1000};
  d = decide_pools(m, 3, 0, b2, 2);
  EXPECT(d, PLAN_LOAD, 1, 2);
}

/* Rejected by the pool that can never hold it, with that pool's numbers. */
static void test_pools_reject_names_the_pool(void **state) {
  (void)state;
  plan_model m[] = {pm(PLAN_UNLOADED, 100, 900, 0), pm(PLAN_UNLOADED, 10, 200, 1)};
  m[1].pinned = true;
  long long b[] = {1000, 1000};
  const plan_decision *d = decide_pools(m, 2, 0, b, 2);
  EXPECT(d, PLAN_REJECT);
  assert_int_equal(d->pool, 1);
  expect_numbers(d, 900, 1000, 0, 200, 0);
  b[1] = 1100; /* exactly budget − pinned on the GPU */
  d = decide_pools(m, 2, 0, b, 2);
  EXPECT(d, PLAN_LOAD);
  assert_int_equal(d->pool, 0);
}

/* A busy GPU model holds the room: wait, with the GPU's numbers; the idle host model stays. */
static void test_pools_wait_on_busy_gpu(void **state) {
  (void)state;
  plan_model m[] = {pm(PLAN_UNLOADED, 100, 600, 0), pm(PLAN_READY, 800, 0, 1),
                    pm(PLAN_READY, 10, 600, 2)};
  m[2].inflight = 1;
  long long b[] = {1000, 1000};
  const plan_decision *d = decide_pools(m, 3, 0, b, 2);
  EXPECT(d, PLAN_WAIT);
  assert_int_equal(d->pool, 1);
  expect_numbers(d, 600, 1000, 600, 0, 600);
}

static void test_pools_bad_arguments(void **state) {
  (void)state;
  plan_model m[] = {pm(PLAN_UNLOADED, 1, 1, 0)};
  long long b[PLAN_MAX_POOLS + 1] = {10, 10};
  EXPECT(decide_pools(m, 1, 0, b, 0), PLAN_REJECT);
  EXPECT(decide_pools(m, 1, 0, b, PLAN_MAX_POOLS + 1), PLAN_REJECT);
  EXPECT(decide_pools(m, 1, 0, NULL, 1), PLAN_REJECT);
  EXPECT(decide_pools(m, 1, 0, b, 2), PLAN_LOAD);
}

/* Random states over 1–4 pools against the rules, with exact arithmetic: the action; for a LOAD,
 * every pool fits after the evictions, each evicted model is idle, in eviction order, and freed
 * memory in a pool that was still short when it was taken. */
static void test_pools_property(void **state) {
  (void)state;
  static const plan_state states[] = {PLAN_UNLOADED, PLAN_LOADING, PLAN_READY, PLAN_UNLOADING};
  plan_model m[10];
  size_t counts[4] = {0};
  for (int it = 0; it < 50000; it++) {
    size_t n = (size_t)pick(1, 10), np = (size_t)pick(1, 4);
    long long b[PLAN_MAX_POOLS];
    for (size_t p = 0; p < np; p++) b[p] = pick(0, 3000);
    for (size_t i = 0; i < n; i++) {
      memset(&m[i], 0, sizeof m[i]);
      m[i].state = states[next() % 4];
      for (size_t p = 0; p < np; p++) {
        long long v = next() % 3 == 0 ? 0 : pick(1, 1000);
        if (p == 0)
          m[i].bytes = v;
        else
          m[i].pool_bytes[p] = v;
      }
      m[i].inflight = next() % 4 == 0;
      m[i].last_used_ms = pick(0, 20);
      m[i].priority = (int)pick(-1, 1);
      m[i].pinned = next() % 6 == 0;
    }
    size_t want = (size_t)pick(0, (long long)n - 1);
    if (next() % 2) m[want].state = PLAN_UNLOADED;
    const plan_decision *d = decide_pools(m, n, want, b, np);
    counts[d->action]++;
#define PB(i, p) ((p) == 0 ? m[i].bytes : m[i].pool_bytes[p])
    plan_action a;
    bool never = false, short_busy = false, fits = true;
    for (size_t p = 0; p < np; p++) {
      long long pin = 0, busy = 0, used = 0;
      for (size_t i = 0; i < n; i++) {
        if (m[i].pinned && i != want) pin += PB(i, p);
        if (m[i].state == PLAN_UNLOADED) continue;
        used += PB(i, p);
        if (!(i != want && idle(&m[i]))) busy += PB(i, p);
      }
      never |= PB(want, p) + pin > b[p];
      short_busy |= PB(want, p) + busy > b[p];
      fits &= PB(want, p) + used <= b[p];
    }
    if (m[want].state == PLAN_READY)
      a = PLAN_RUN;
    else if (m[want].state != PLAN_UNLOADED)
      a = PLAN_WAIT;
    else if (never)
      a = PLAN_REJECT;
    else if (fits)
      a = PLAN_LOAD;
    else if (short_busy)
      a = PLAN_WAIT;
    else
      a = PLAN_LOAD;
    assert_int_equal(d->action, a);
    if (a != PLAN_LOAD) continue;
    if (fits) assert_int_equal(d->n_evict, 0);
    bool gone[10] = {0};
    for (size_t k = 0; k < d->n_evict; k++) {
      size_t e = d->evict[k];
      assert_true(e < n && e != want && !gone[e] && idle(&m[e]));
      if (k > 0) assert_true(before(m, d->evict[k - 1], e));
      /* useful: some pool was short (kept idle + need + busy > budget) before it went, and it
       * holds memory there */
      bool useful = false;
      for (size_t p = 0; p < np; p++) {
        long long used = PB(want, p);
        for (size_t i = 0; i < n; i++)
          if (m[i].state != PLAN_UNLOADED && !gone[i]) used += PB(i, p);
        useful |= used > b[p] && PB(e, p) > 0;
      }
      assert_true(useful);
      gone[e] = true;
    }
    for (size_t p = 0; p < np; p++) {
      long long used = PB(want, p);
      for (size_t i = 0; i < n; i++)
        if (m[i].state != PLAN_UNLOADED && !gone[i]) used += PB(i, p);
      assert_true(used <= b[p]);
    }
#undef PB
  }
  for (int a = 0; a < 4; a++) assert_true(counts[a] > 500);
}

/* ---- rule 6: prompt caches ------------------------------------------------------------------ */

/* the exact cuts of models 0..n) (the rest are checked zero by check_shrink_written) */
static void expect_shrink(const plan_decision *d, size_t n, const long long *list) {
  for (size_t i = 0; i < n; i++) assert_true(d->shrink[i] == list[i]);
}
#define SHRINK(d, ...)                    \
  do {                                    \
    const long long s_[] = {__VA_ARGS__}; \
    expect_shrink((d), NMODELS(s_), s_);  \
  } while (0)

/* The caches are cut instead of evicting, only as much as needed, least recently used first;
 * eviction only once cutting every cache is not enough, and then every cache left is cut. */
static void test_cache_cut_before_evicting(void **state) {
  (void)state;
  plan_model m[] = {UNL(400), RDYC(300, 200, 1), RDYC(300, 100, 2)};
  const plan_decision *d = decide(m, 3, 0, 1000); /* fits beside them, caches and all */
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 0, 0);
  expect_numbers(d, 400, 1000, 600, 0, 0);

  d = decide(m, 3, 0, 900); /* 100 short: the LRU one's cache gives it, nobody is evicted */
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 100, 0);
  expect_numbers(d, 400, 900, 300, 0, 0); /* d2's numbers: the caches left out */

  d = decide(m, 3, 0, 750); /* 250 short: all of the LRU one's cache, then 50 of the next */
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 200, 50);

  d = decide(m, 3, 0, 700); /* every cache, exactly */
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 200, 100);

  d = decide(m, 3, 0, 699); /* one byte more than every cache: evict the LRU one, cut the other */
  EXPECT(d, PLAN_LOAD, 1);
  SHRINK(d, 0, 0, 100);
  expect_numbers(d, 400, 699, 300, 0, 0);

  d = decide(m, 3, 0, 399); /* never fits */
  EXPECT(d, PLAN_REJECT);
  SHRINK(d, 0, 0, 0);

  /* the order is the eviction order: priority before recency */
  m[2].priority = -1;
  d = decide(m, 3, 0, 850);
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 50, 100);
}

/* Busy, queued, pinned and guarded models cannot be evicted, but their caches are cut: the
 * request loads instead of waiting. */
static void test_cache_cut_on_busy_pinned_guarded(void **state) {
  (void)state;
  plan_model m[] = {UNL(400), RDYC(300, 100, 4), RDYC(300, 100, 3), RDYC(300, 100, 2),
                    RDYC(300, 100, 1)};
  m[1].inflight = 1;
  m[2].pinned = true;
  m[3].guarded = true;
  m[4].queued = 2;
  const plan_decision *d = decide(m, 5, 0, 1200); /* 400 short; nobody idle */
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 100, 100, 100, 100);
  expect_numbers(d, 400, 1200, 800, 200, 800);

  d = decide(m, 5, 0, 1350); /* 250 short: LRU first (4, 3, then half of 2) */
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 0, 50, 100, 100);

  d = decide(m, 5, 0, 1199); /* even every cache cut is not enough: wait, no cuts */
  EXPECT(d, PLAN_WAIT);
  SHRINK(d, 0, 0, 0, 0, 0);
  expect_numbers(d, 400, 1199, 800, 200, 800);

  /* a loading model's cache is cut too */
  plan_model l[] = {UNL(400), {.state = PLAN_LOADING, .bytes = 500, .cache_bytes = 300}};
  d = decide(l, 2, 0, 800);
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 100);
}

/* A pinned model's cache is not reserved: it never makes a model "too large". */
static void test_cache_pinned_never_rejects(void **state) {
  (void)state;
  plan_model m[] = {UNL(600), RDYC(500, 200, 1)};
  m[1].pinned = true;
  const plan_decision *d = decide(m, 2, 0, 1000); /* 600 + 500 > 1000, but 600 + 300 is not */
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 100);
  expect_numbers(d, 600, 1000, 300, 300, 300);
  m[0].bytes = 701; /* 701 + 300 > 1000: that is the model, not the cache */
  d = decide(m, 2, 0, 1000);
  EXPECT(d, PLAN_REJECT);
  SHRINK(d, 0, 0);
  expect_numbers(d, 701, 1000, 300, 300, 300);

  /* pinned and not loaded: its cache is not reserved either, and there is nothing to cut */
  plan_model u[] = {UNL(600), {.state = PLAN_UNLOADED, .bytes = 500, .cache_bytes = 200}};
  u[1].pinned = true;
  d = decide(u, 2, 0, 900);
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 0);
  expect_numbers(d, 600, 900, 0, 300, 0);
}

/* What is not cut: an unloading model's cache (its memory is held until the process is gone), the
 * wanted model's own, a model in an unknown state's; and nonsense caches are clamped. */
static void test_cache_not_cut_and_odd(void **state) {
  (void)state;
  plan_model m[] = {UNL(500), {.state = PLAN_UNLOADING, .bytes = 600, .cache_bytes = 300}};
  const plan_decision *d = decide(m, 2, 0, 1000);
  EXPECT(d, PLAN_WAIT);
  SHRINK(d, 0, 0);
  expect_numbers(d, 500, 1000, 600, 0, 600);

  plan_model u[] = {
      UNL(400), {.state = PLAN_UNLOADING, .bytes = 300, .cache_bytes = 200}, RDYC(300, 200, 1)};
  d = decide(u, 3, 0, 900); /* only the ready one's cache is cut */
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, 0, 100);
  expect_numbers(d, 400, 900, 400, 0, 300);

  plan_model w[] = {{.state = PLAN_UNLOADED, .bytes = 500, .cache_bytes = 300}, RDY(600, 1)};
  d = decide(w, 2, 0, 1000); /* its own cache is part of what it needs */
  EXPECT(d, PLAN_LOAD, 1);
  SHRINK(d, 0, 0);
  expect_numbers(d, 500, 1000, 600, 0, 0);

  plan_model o[] = {UNL(400),
                    RDYC(300, -5, 1),
                    RDYC(300, 900, 2),
                    RDYC(-7, 50, 3),
                    {.state = (plan_state)77, .bytes = 100, .cache_bytes = 100}};
  d = decide(o, 5, 0, 600); /* caches 0, 300 (clamped), 0 (no footprint), not 4's (unknown) */
  EXPECT(d, PLAN_LOAD, 1);
  SHRINK(d, 0, 0, 300, 0, 0);
  expect_numbers(d, 400, 600, 400, 0, 100);
  d = decide(o, 5, 0, 499); /* 400 + 100 of the unknown one: wait */
  EXPECT(d, PLAN_WAIT);
  SHRINK(d, 0, 0, 0, 0, 0);
}

/* Sums near LLONG_MAX: cuts computed exactly, nothing overflows. */
static void test_cache_huge(void **state) {
  (void)state;
  const long long H = LLONG_MAX / 2; /* LLONG_MAX == 2H + 1 */
  plan_model m[] = {UNL(H), RDYC(LLONG_MAX, LLONG_MAX, 1), RDYC(LLONG_MAX, LLONG_MAX - 5, 2)};
  m[1].inflight = m[2].inflight = 1;
  const plan_decision *d = decide(m, 3, 0, LLONG_MAX);
  EXPECT(d, PLAN_LOAD);
  SHRINK(d, 0, LLONG_MAX, H); /* the room left, H − 4, stays with the most recently used one */
  expect_numbers(d, H, LLONG_MAX, 5, 0, 5);
}

/* Random states with caches over 1–3 pools. Whatever the state, the action and evictions are
 * exactly those of the same state with the other models' cuttable caches gone (a cache never
 * causes an eviction, a wait or a reject); with no cut needed (ran, fitted, or no such cache) the
 * decision is the one without caches, with no cuts; a LOAD that evicts cuts every other cache
 * whole; one that does not cuts exactly what pool 0 lacks, a prefix of the eviction order. */
static plan_decision R1, R2;

static long long cache_of(const plan_model *x) { /* clamped as plan.h says */
  long long b = x->bytes > 0 ? x->bytes : 0;
  return x->cache_bytes <= 0 ? 0 : x->cache_bytes < b ? x->cache_bytes : b;
}
static bool cuttable(const plan_model *x) {
  return x->state == PLAN_LOADING || x->state == PLAN_READY;
}

static void same_decision(const plan_decision *a, const plan_decision *b) {
  assert_int_equal(a->action, b->action);
  assert_int_equal(a->n_evict, b->n_evict);
  for (size_t k = 0; k < a->n_evict; k++) assert_int_equal(a->evict[k], b->evict[k]);
  assert_int_equal(a->pool, b->pool);
  expect_numbers(a, b->need, b->budget, b->used, b->pinned, b->busy);
}

static void test_cache_property(void **state) {
  (void)state;
  static const plan_state states[] = {PLAN_UNLOADED, PLAN_LOADING, PLAN_READY, PLAN_UNLOADING};
  plan_model m[10], m1[10], m2[10];
  size_t partial = 0, cut_evict = 0, saved_reject = 0, saved_wait = 0, saved_evict = 0, plain = 0;
  for (int it = 0; it < 100000; it++) {
    size_t n = (size_t)pick(1, 10), np = (size_t)pick(1, 3);
    bool huge = next() % 8 == 0;
    long long scale = huge ? LLONG_MAX / 16 : 1000, b[PLAN_MAX_POOLS];
    for (size_t i = 0; i < n; i++) {
      plan_model *x = &m[i];
      memset(x, 0, sizeof *x);
      x->state = states[next() % 4];
      x->bytes = huge ? random_bytes(scale) : pick(0, scale);
      for (size_t p = 1; p < np; p++) x->pool_bytes[p] = next() % 3 == 0 ? 0 : pick(1, 1000);
      switch (next() % 8) {
        case 0:
        case 1:
          break; /* none */
        case 2:
          x->cache_bytes = -pick(1, 5);
          break;
        case 3: /* more than its footprint (LLONG_MAX at most) */
          x->cache_bytes = x->bytes <= 0              ? pick(0, 5)
                           : x->bytes > LLONG_MAX - 5 ? LLONG_MAX
                                                      : x->bytes + pick(0, 5);
          break;
        default: /* 0..bytes, any size */
          x->cache_bytes =
              x->bytes > 0 ? (long long)(next() % ((unsigned long long)x->bytes + 1)) : 0;
      }
      x->inflight = next() % 4 == 0;
      x->queued = next() % 6 == 0;
      x->last_used_ms = pick(0, 20);
      x->priority = (int)pick(-1, 1);
      x->pinned = next() % 5 == 0;
      x->guarded = next() % 7 == 0;
    }
    size_t want = (size_t)pick(0, (long long)n - 1);
    if (next() % 4) m[want].state = PLAN_UNLOADED;
    i128 total = 0;
    for (size_t i = 0; i < n; i++) total += cnt(&m[i]);
    for (size_t p = 0; p < np; p++)
      b[p] = p == 0 ? sat(total * pick(0, 100) / 100 + pick(-2, 2)) : pick(0, 3000);

    /* m1: the caches forgotten (d1); m2: the other models' droppable caches gone (d2) */
    bool any = false;
    for (size_t i = 0; i < n; i++) {
      m1[i] = m2[i] = m[i];
      m1[i].cache_bytes = m2[i].cache_bytes = 0;
      bool drop = i != want && (cuttable(&m[i]) || m[i].state == PLAN_UNLOADED);
      if (drop && cache_of(&m[i]) > 0) {
        m2[i].bytes -= cache_of(&m[i]);
        any = true;
      }
    }
    plan_decide_pools(m1, n, want, b, np, &R1);
    plan_decide_pools(m2, n, want, b, np, &R2);
    const plan_decision *d = decide_pools(m, n, want, b, np);

    /* never worse than a world without those caches, whatever the case */
    assert_int_equal(d->action, R2.action);
    assert_int_equal(d->n_evict, R2.n_evict);
    for (size_t k = 0; k < d->n_evict; k++) assert_int_equal(d->evict[k], R2.evict[k]);

    i128 sum = 0;
    for (size_t i = 0; i < n; i++) {
      assert_true(d->shrink[i] <= cache_of(&m[i]));
      if (d->shrink[i] > 0) assert_true(i != want && cuttable(&m[i]));
      sum += d->shrink[i];
    }
    if (R1.action == PLAN_RUN || (R1.action == PLAN_LOAD && R1.n_evict == 0) || !any) {
      same_decision(d, &R1);
      assert_true(sum == 0);
      plain++;
      continue;
    }
    same_decision(d, &R2);
    if (R1.action == PLAN_REJECT && d->action != PLAN_REJECT) saved_reject++;
    if (R1.action == PLAN_WAIT && d->action != PLAN_WAIT) saved_wait++;
    if (R1.action == PLAN_LOAD && d->action == PLAN_LOAD && d->n_evict < R1.n_evict) saved_evict++;
    if (d->action != PLAN_LOAD) {
      assert_true(sum == 0);
      continue;
    }
    bool gone[10] = {0};
    for (size_t k = 0; k < d->n_evict; k++) gone[d->evict[k]] = true;
    if (d->n_evict > 0) { /* every other cache cut whole */
      for (size_t i = 0; i < n; i++)
        assert_true(d->shrink[i] ==
                    (i != want && cuttable(&m[i]) && !gone[i] ? cache_of(&m[i]) : 0));
      if (sum > 0) cut_evict++;
      continue;
    }
    /* no eviction: exactly what pool 0 lacks, taken in eviction order */
    i128 used = cnt(&m[want]);
    for (size_t i = 0; i < n; i++)
      if (m[i].state != PLAN_UNLOADED) used += cnt(&m[i]);
    i128 lack = used - b[0];
    assert_true(sum == (lack > 0 ? lack : 0));
    size_t c[10], k = 0;
    for (size_t i = 0; i < n; i++)
      if (i != want && cuttable(&m[i]) && cache_of(&m[i]) > 0) c[k++] = i;
    for (size_t x = 1; x < k; x++) /* eviction order */
      for (size_t y = x; y > 0 && before(m, c[y], c[y - 1]); y--) {
        size_t t = c[y];
        c[y] = c[y - 1];
        c[y - 1] = t;
      }
    bool whole = true; /* while true, every cache so far was cut whole */
    for (size_t j = 0; j < k; j++) {
      long long s = d->shrink[c[j]], cache = cache_of(&m[c[j]]);
      if (!whole) assert_true(s == 0);
      if (s != cache) whole = false;
      if (s > 0 && s < cache) partial++;
    }
  }
  /* every interesting case was exercised */
  assert_true(partial > 500 && cut_evict > 500 && saved_reject > 100 && saved_wait > 500 &&
              saved_evict > 500 && plain > 500);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ready_runs),
      cmocka_unit_test(test_loading_unloading_wait),
      cmocka_unit_test(test_fits_with_room),
      cmocka_unit_test(test_fits_exactly),
      cmocka_unit_test(test_evicts_one_lru),
      cmocka_unit_test(test_evicts_several_in_order_and_stops),
      cmocka_unit_test(test_priority_beats_recency),
      cmocka_unit_test(test_ties_lowest_index),
      cmocka_unit_test(test_busy_and_queued_kept),
      cmocka_unit_test(test_guarded_kept),
      cmocka_unit_test(test_pinned_kept_and_counted),
      cmocka_unit_test(test_all_busy_waits),
      cmocka_unit_test(test_reject_even_when_busy),
      cmocka_unit_test(test_unloading_counted),
      cmocka_unit_test(test_loading_counted),
      cmocka_unit_test(test_want_pinned),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_nonpositive_bytes),
      cmocka_unit_test(test_huge_bytes),
      cmocka_unit_test(test_full_table),
      cmocka_unit_test(test_odd_input),
      cmocka_unit_test(test_property_random),
      cmocka_unit_test(test_pools_evict_where_short),
      cmocka_unit_test(test_pools_reject_names_the_pool),
      cmocka_unit_test(test_pools_wait_on_busy_gpu),
      cmocka_unit_test(test_pools_bad_arguments),
      cmocka_unit_test(test_pools_property),
      cmocka_unit_test(test_cache_cut_before_evicting),
      cmocka_unit_test(test_cache_cut_on_busy_pinned_guarded),
      cmocka_unit_test(test_cache_pinned_never_rejects),
      cmocka_unit_test(test_cache_not_cut_and_odd),
      cmocka_unit_test(test_cache_huge),
      cmocka_unit_test(test_cache_property),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
