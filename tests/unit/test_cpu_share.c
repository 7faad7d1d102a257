/* test_cpu_share.c — unit tests of cpu_share.c: the rules of cpu_share_plan on hand-picked cases,
 * then every state with 1..12 cores, 0..6 busy workers and wants 1..9 (about 700k plans) checked
 * against the header's rules: fits -> as wanted; else each in [1, want], the total is
 * max(ncpu, n) capped by the wants' sum, shares below their want differ by at most 1. */
#include "sched/cpu_share.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void plan(int ncpu, const int *want, size_t n, int *out) {
  memset(out, 0x55, sizeof(int) * (n ? n : 1));
  cpu_share_plan(ncpu, want, n, out);
}

static void test_cases(void **st) {
  (void)st;
  int out[4];
  /* one worker alone keeps what it wants, up to the cores */
  plan(2, (int[]){2}, 1, out);
  assert_int_equal(out[0], 2);
  plan(2, (int[]){8}, 1, out);
  assert_int_equal(out[0], 2);
  /* two workers of 2 threads on 2 cores: 1 + 1 */
  plan(2, (int[]){2, 2}, 2, out);
  assert_int_equal(out[0], 1);
  assert_int_equal(out[1], 1);
  /* 16 cores, three of 8: 6 + 5 + 5 */
  plan(16, (int[]){8, 8, 8}, 3, out);
  assert_int_equal(out[0], 6);
  assert_int_equal(out[1], 5);
  assert_int_equal(out[2], 5);
  /* a small want is kept, the rest goes to the other */
  plan(8, (int[]){1, 16}, 2, out);
  assert_int_equal(out[0], 1);
  assert_int_equal(out[1], 7);
  /* more workers than cores: 1 each */
  plan(2, (int[]){4, 4, 4}, 3, out);
  for (int i = 0; i < 3; i++) assert_int_equal(out[i], 1);
  /* bad arguments are floored, never 0 */
  plan(0, (int[]){0, -3}, 2, out);
  assert_int_equal(out[0], 1);
  assert_int_equal(out[1], 1);
  cpu_share_plan(4, NULL, 0, NULL); /* nothing to do, nothing touched */
  assert_true(cpu_share_cores() >= 1);
}

static void test_all_states(void **st) {
  (void)st;
  int want[6], out[6];
  for (int ncpu = 1; ncpu <= 12; ncpu++)
    for (size_t n = 1; n <= 6; n++) {
      long long states = 1;
      for (size_t i = 0; i < n; i++) states *= 9;
      for (long long s = 0; s < states; s++) {
        long long x = s, sum = 0;
        for (size_t i = 0; i < n; i++, x /= 9) sum += want[i] = (int)(x % 9) + 1;
        plan(ncpu, want, n, out);
        long long total = 0;
        int lo = 1 << 30, hi = 0;
        for (size_t i = 0; i < n; i++) {
          assert_true(out[i] >= 1 && out[i] <= want[i]);
          total += out[i];
          if (out[i] < want[i]) {
            if (out[i] < lo) lo = out[i];
            if (out[i] > hi) hi = out[i];
          }
        }
        if (sum <= ncpu) {
          for (size_t i = 0; i < n; i++) assert_int_equal(out[i], want[i]);
          continue;
        }
        long long cap = (long long)ncpu > (long long)n ? ncpu : (long long)n;
        assert_true(total == (cap < sum ? cap : sum));
        assert_true(hi == 0 || hi - lo <= 1);
        /* nobody below its want holds less than a worker that got more than the fair floor */
        for (size_t i = 0; i < n; i++)
          if (out[i] < want[i])
            for (size_t j = 0; j < n; j++) assert_true(out[j] <= out[i] + 1);
      }
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_cases),
                                     cmocka_unit_test(test_all_states)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
