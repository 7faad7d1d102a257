/* test_slot_pick.c — unit tests of src/workers/llama/slot_pick.c: hand-picked cases, then every
 * cached sequence and prompt over a two-token alphabet up to a few tokens, checked against the
 * header's rules by brute force: sp_keep returns the largest length that obeys every rule, and
 * sp_pick the free slot keeping the most (ties: least recently used, then lowest index). */
#include "../../src/workers/llama/slot_pick.h" /* a worker module: no -I for it */

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void test_cases(void **st) {
  (void)st;
  int32_t a[] = {1, 2, 3, 4}, b[] = {1, 2, 9};
  assert_int_equal(sp_common_prefix(a, 4, b, 3), 2);
  assert_int_equal(sp_common_prefix(a, 4, a, 2), 2);
  assert_int_equal(sp_common_prefix(NULL, 0, a, 4), 0);
  /* a prompt extending the cache keeps all of it */
  assert_int_equal(sp_keep(4, 4, 4, 10, 1, true), 4);
  /* the same prompt again: its last token is decoded again */
  assert_int_equal(sp_keep(4, 4, 4, 4, 1, true), 3);
  /* batch-invariant: only whole chunks of 2, only reusable tokens */
  assert_int_equal(sp_keep(4, 4, 4, 4, 2, true), 2);
  assert_int_equal(sp_keep(7, 9, 4, 20, 2, true), 4);
  /* a recurrent memory: whole or nothing */
  assert_int_equal(sp_keep(3, 4, 4, 10, 1, false), 0);
  assert_int_equal(sp_keep(4, 4, 4, 10, 1, false), 4);
  assert_int_equal(sp_keep(4, 4, 4, 4, 1, false), 0);
  /* the slot sharing more wins; then the older one */
  int32_t p[] = {1, 2, 3, 5, 6};
  sp_slot s[3] = {{false, b, 3, 3, 5}, {false, a, 4, 4, 9}, {false, NULL, 0, 0, 1}};
  int32_t keep = -1;
  assert_int_equal(sp_pick(s, 3, p, 5, 1, true, true, &keep), 1);
  assert_int_equal(keep, 3);
  assert_int_equal(sp_pick(s, 3, p, 5, 1, true, false, &keep), 2);
  assert_int_equal(keep, 0);
  s[1].busy = true;
  assert_int_equal(sp_pick(s, 3, p, 5, 1, true, true, &keep), 0);
  assert_int_equal(keep, 2);
  s[0].busy = s[2].busy = true;
  assert_int_equal(sp_pick(s, 3, p, 5, 1, true, true, &keep), -1);
}

/* The rules of slot_pick.h, one candidate length at a time. */
static int32_t ref_keep(int32_t match, int32_t n_tokens, int32_t n_reusable, int32_t n_prompt,
                        int32_t align, bool trim) {
  int32_t best = 0;
  for (int32_t k = 1; k < n_prompt; k++) {
    bool ok = k <= match && k <= n_tokens && k <= n_reusable && k % align == 0 &&
              (trim || (k == n_tokens && match >= n_tokens));
    if (ok) best = k;
  }
  return best;
}

#define MAXL 4 /* tokens per cached sequence */
#define MAXP 5 /* tokens per prompt */

/* The i-th sequence of a two-token alphabet in order of length (0: empty; 1, 2: length 1; ...). */
static int32_t seq_of(int i, int32_t *out) {
  int32_t len = 0;
  while (i >= (1 << len)) i -= 1 << len++;
  for (int32_t k = 0; k < len; k++) out[k] = (i >> k) & 1;
  return len;
}

static void test_keep_all(void **st) {
  (void)st;
  int32_t c[MAXL], p[MAXP];
  for (int ci = 0; ci < (1 << (MAXL + 1)) - 1; ci++) {
    int32_t nc = seq_of(ci, c);
    for (int pi = 0; pi < (1 << (MAXP + 1)) - 1; pi++) {
      int32_t np = seq_of(pi, p);
      int32_t match = sp_common_prefix(c, nc, p, np);
      int32_t brute = 0;
      while (brute < nc && brute < np && c[brute] == p[brute]) brute++;
      assert_int_equal(match, brute);
      for (int32_t reuse = 0; reuse <= nc; reuse++)
        for (int32_t align = 1; align <= 3; align++)
          for (int trim = 0; trim < 2; trim++)
            assert_int_equal(sp_keep(match, nc, reuse, np, align, trim),
                             ref_keep(match, nc, reuse, np, align, trim));
    }
  }
}

static void test_pick_all(void **st) {
  (void)st;
  enum { N_SEQ = (1 << 4) - 1 }; /* cached sequences of up to 3 tokens */
  int32_t c0[MAXL], c1[MAXL], p[MAXP];
  for (int i0 = 0; i0 < N_SEQ; i0++)
    for (int i1 = 0; i1 < N_SEQ; i1++)
      for (int pi = 0; pi < (1 << (MAXP + 1)) - 1; pi++)
        for (int busy = 0; busy < 4; busy++)
          for (int older = 0; older < 3; older++)
            for (int32_t align = 1; align <= 2; align++)
              for (int flags = 0; flags < 4; flags++) {
                bool trim = flags & 1, use = flags & 2;
                int32_t n0 = seq_of(i0, c0), n1 = seq_of(i1, c1), np = seq_of(pi, p);
                sp_slot s[2] = {{busy & 1, c0, n0, n0, older == 1 ? 1u : 2u},
                                {busy & 2, c1, n1, n1 > 0 ? n1 - 1 : 0, older == 2 ? 1u : 2u}};
                int32_t keep = -7;
                int got = sp_pick(s, 2, p, np, align, trim, use, &keep);
                int want = -1;
                int32_t want_keep = 0;
                for (int k = 0; k < 2; k++) {
                  if (s[k].busy) continue;
                  int32_t m = sp_common_prefix(s[k].tokens, s[k].n_tokens, p, np);
                  int32_t kk =
                      use ? ref_keep(m, s[k].n_tokens, s[k].n_reusable, np, align, trim) : 0;
                  if (want < 0 || kk > want_keep ||
                      (kk == want_keep && s[k].last_used < s[want].last_used)) {
                    want = k;
                    want_keep = kk;
                  }
                }
                assert_int_equal(got, want);
                assert_int_equal(keep, want_keep);
              }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_keep_all),
      cmocka_unit_test(test_pick_all),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
