/* test_prompt_cache.c — unit tests of src/workers/llama/prompt_cache.c: the byte limit is never
 * exceeded (least recently used out), an entry extending another replaces it and a prefix of an
 * entry is not kept twice (with trim; without, only identical states are merged), the best entry
 * for a prompt, taking an entry out, and a lowered limit. Buffers are checked by ASan in the
 * sanitizer build (every one is freed exactly once). */
#include "../../src/workers/llama/prompt_cache.h" /* a worker module: no -I for it */

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

/* A malloc'd copy of n tokens, and a state of `size` bytes filled with `tag`. */
static int32_t *toks(const int32_t *t, int32_t n) {
  int32_t *p = malloc((size_t)n * sizeof *p + 1);
  memcpy(p, t, (size_t)n * sizeof *p);
  return p;
}
static void *state(size_t size, int tag) {
  void *p = malloc(size);
  memset(p, tag, size);
  return p;
}
static size_t cost(int32_t n, size_t size) {
  pc_entry e = {.n_tokens = n, .state_size = size};
  return pcache_entry_bytes(&e);
}

static void test_limit_and_lru(void **st) {
  (void)st;
  int32_t a[] = {1, 2, 3}, b[] = {4, 5, 6}, c[] = {7, 8, 9};
  pcache pc;
  pcache_init(&pc, 2 * cost(3, 100), true);
  assert_true(pcache_put(&pc, toks(a, 3), 3, 3, state(100, 'a'), 100));
  assert_true(pcache_put(&pc, toks(b, 3), 3, 3, state(100, 'b'), 100));
  assert_int_equal(pc.n, 2);
  int32_t keep;
  int32_t pa[] = {1, 2, 3, 10};
  assert_true(pcache_best(&pc, pa, 4, 1, &keep) >= 0);
  /* a again: merged (its buffers freed), and a is now the most recent: b the oldest */
  assert_true(pcache_put(&pc, toks(a, 3), 3, 3, state(100, 'x'), 100));
  assert_int_equal(pc.n, 2);
  assert_true(pcache_put(&pc, toks(c, 3), 3, 3, state(100, 'c'), 100));
  assert_int_equal(pc.n, 2);
  assert_true(pc.bytes <= pc.limit);
  int32_t pb[] = {4, 5, 6, 10}, pcc[] = {7, 8, 9, 10};
  assert_int_equal(pcache_best(&pc, pb, 4, 1, &keep), -1); /* b went: least recently used */
  assert_true(pcache_best(&pc, pcc, 4, 1, &keep) >= 0);
  assert_true(pcache_best(&pc, pa, 4, 1, &keep) >= 0);
  /* bigger than the whole limit: not kept, freed */
  int32_t d[] = {9, 9, 9};
  assert_false(pcache_put(&pc, toks(d, 3), 3, 3, state(10000, 'z'), 10000));
  assert_int_equal(pc.n, 2);
  /* a lower limit drops the oldest first */
  pcache_set_limit(&pc, cost(3, 100));
  assert_int_equal(pc.n, 1);
  assert_true(pc.bytes <= pc.limit);
  pcache_set_limit(&pc, 0);
  assert_int_equal(pc.n, 0);
  assert_int_equal(pc.bytes, 0);
  pcache_free(&pc);
}

static void test_prefixes(void **st) {
  (void)st;
  int32_t t[] = {1, 2, 3, 4, 5, 6};
  pcache pc;
  pcache_init(&pc, 1 << 20, true);
  assert_true(pcache_put(&pc, toks(t, 3), 3, 3, state(10, 1), 10));
  assert_true(pcache_put(&pc, toks(t, 6), 6, 6, state(20, 2), 20)); /* replaces its prefix */
  assert_int_equal(pc.n, 1);
  assert_int_equal(pc.e[0].n_tokens, 6);
  assert_true(pcache_put(&pc, toks(t, 4), 4, 4, state(30, 3), 30)); /* served by the longer */
  assert_int_equal(pc.n, 1);
  assert_int_equal(pc.bytes, cost(6, 20));
  int32_t p[] = {1, 2, 3, 4, 9, 9, 9};
  int32_t keep;
  assert_int_equal(pcache_best(&pc, p, 7, 1, &keep), 0);
  assert_int_equal(keep, 4);
  assert_int_equal(pcache_best(&pc, p, 7, 3, &keep), 0); /* whole chunks of 3 */
  assert_int_equal(keep, 3);
  pc_entry out;
  pcache_take(&pc, 0, &out);
  assert_int_equal(pc.n, 0);
  assert_int_equal(pc.bytes, 0);
  assert_int_equal(out.n_tokens, 6);
  assert_int_equal(((unsigned char *)out.state)[0], 2);
  free(out.tokens);
  free(out.state);
  pcache_free(&pc);

  /* without trim (recurrent state): a prefix is another state, both kept; only whole entries
   * serve a prompt */
  pcache_init(&pc, 1 << 20, false);
  assert_true(pcache_put(&pc, toks(t, 3), 3, 3, state(10, 1), 10));
  assert_true(pcache_put(&pc, toks(t, 6), 6, 6, state(20, 2), 20));
  assert_int_equal(pc.n, 2);
  assert_true(pcache_put(&pc, toks(t, 6), 6, 6, state(20, 3), 20)); /* identical: merged */
  assert_int_equal(pc.n, 2);
  int i = pcache_best(&pc, p, 7, 1, &keep);
  assert_true(i >= 0);
  assert_int_equal(keep, 3); /* the whole 3-token state; the 6-token one does not match */
  pcache_free(&pc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_limit_and_lru),
      cmocka_unit_test(test_prefixes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
