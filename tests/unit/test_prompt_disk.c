/* test_prompt_disk.c — unit tests of src/workers/llama/prompt_disk.c in a temporary folder: a
 * written state reads back the same after the folder is opened again; a truncated file, a foreign
 * file, a stale one (another key) and a damaged one (checksum) are each rejected — deleted,
 * counted, never returned; the folder stays within its limit, least recently used out. */
#include "../../src/workers/llama/prompt_disk.h" /* a worker module: no -I for it */

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static char dir[64];

static int setup(void **st) {
  (void)st;
  snprintf(dir, sizeof dir, "/tmp/sy-pdisk-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **st) {
  (void)st;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* The path of the only *.sypc file whose tokens start with first (via the index). */
static void file_of(const pdisk *d, int32_t first, char *out, size_t cap) {
  out[0] = 0;
  for (size_t i = 0; i < d->n; i++)
    if (d->f[i].tokens[0] == first)
      snprintf(out, cap, "%s/%016llx.sypc", d->dir, (unsigned long long)d->f[i].name);
}

static void test_roundtrip_and_rejects(void **st) {
  (void)st;
  int32_t a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8}, c[] = {9, 9, 9, 9};
  unsigned char sa[100], sb[200], sc[50];
  memset(sa, 'a', sizeof sa), memset(sb, 'b', sizeof sb), memset(sc, 'c', sizeof sc);
  uint64_t key = pdisk_key("model-a|ctx=64");
  pdisk d;
  assert_int_equal(pdisk_open(&d, dir, key, 1 << 20, true), 0);
  assert_int_equal(pdisk_write(&d, a, 4, 4, sa, sizeof sa), 0);
  assert_int_equal(pdisk_write(&d, b, 4, 2, sb, sizeof sb), 0);
  assert_int_equal(pdisk_write(&d, c, 4, 4, sc, sizeof sc), 0);
  char pa[PATH_MAX + 32], pb[PATH_MAX + 32], pc[PATH_MAX + 32];
  file_of(&d, 1, pa, sizeof pa), file_of(&d, 5, pb, sizeof pb), file_of(&d, 9, pc, sizeof pc);
  pdisk_close(&d);

  /* damage: b truncated, c's state changed (checksum), a foreign file under our name pattern */
  assert_int_equal(truncate(pb, 40), 0);
  FILE *f = fopen(pc, "r+b");
  fseek(f, -1, SEEK_END);
  fputc('X', f);
  fclose(f);
  char foreign[PATH_MAX + 32];
  snprintf(foreign, sizeof foreign, "%s/00000000deadbeef.sypc", dir);
  f = fopen(foreign, "wb");
  fputs("not a cache file at all, but long enough to have a header........", f);
  fclose(f);

  assert_int_equal(pdisk_open(&d, dir, key, 1 << 20, true), 0);
  assert_int_equal(d.rejected, 2); /* truncated b, foreign; c is caught when read */
  assert_int_equal(d.n, 2);
  struct stat s;
  assert_int_not_equal(stat(pb, &s), 0);
  assert_int_not_equal(stat(foreign, &s), 0);
  int32_t prompt[] = {1, 2, 3, 4, 10};
  int32_t keep;
  int i = pdisk_best(&d, prompt, 5, 1, &keep);
  assert_true(i >= 0);
  assert_int_equal(keep, 4);
  pc_entry e;
  assert_int_equal(pdisk_read(&d, i, &e), 0);
  assert_int_equal(e.n_tokens, 4);
  assert_int_equal(e.n_reusable, 4);
  assert_int_equal(e.state_size, sizeof sa);
  assert_memory_equal(e.state, sa, sizeof sa);
  assert_memory_equal(e.tokens, a, sizeof a);
  free(e.tokens), free(e.state);
  int32_t pcp[] = {9, 9, 9, 9, 1};
  i = pdisk_best(&d, pcp, 5, 1, &keep);
  assert_true(i >= 0);
  assert_int_equal(pdisk_read(&d, i, &e), -1); /* damaged: rejected now */
  assert_int_equal(d.rejected, 3);
  assert_int_equal(pdisk_best(&d, pcp, 5, 1, &keep), -1);
  assert_int_not_equal(stat(pc, &s), 0);
  pdisk_close(&d);

  /* another key: a's file is stale */
  assert_int_equal(pdisk_open(&d, dir, pdisk_key("model-a|ctx=128"), 1 << 20, true), 0);
  assert_int_equal(d.rejected, 1);
  assert_int_equal(d.n, 0);
  assert_int_not_equal(stat(pa, &s), 0);
  pdisk_close(&d);
}

static void test_limit(void **st) {
  (void)st;
  uint64_t key = pdisk_key("model-b");
  unsigned char state[1000] = {0};
  pdisk d;
  assert_int_equal(pdisk_open(&d, dir, key, 2500, true), 0);
  for (int32_t k = 1; k <= 5; k++) {
    int32_t t[] = {k, k, k};
    assert_int_equal(pdisk_write(&d, t, 3, 3, state, sizeof state), 0);
    assert_true(d.bytes <= d.limit);
  }
  assert_int_equal(d.n, 2); /* the two most recent */
  int32_t keep, p5[] = {5, 5, 5, 0}, p1[] = {1, 1, 1, 0};
  assert_true(pdisk_best(&d, p5, 4, 1, &keep) >= 0);
  assert_int_equal(pdisk_best(&d, p1, 4, 1, &keep), -1);
  /* a state bigger than the whole limit is not written */
  unsigned char big[3000] = {0};
  int32_t t[] = {7, 7, 7};
  assert_int_equal(pdisk_write(&d, t, 3, 3, big, sizeof big), -1);
  pdisk_close(&d);
  /* a smaller limit at the next open drops the oldest */
  assert_int_equal(pdisk_open(&d, dir, key, 1500, true), 0);
  assert_int_equal(d.n, 1);
  pdisk_close(&d);
  /* off: nothing indexed or written */
  assert_int_equal(pdisk_open(&d, dir, key, 0, true), 0);
  assert_int_equal(pdisk_write(&d, t, 3, 3, state, 10), -1);
  pdisk_close(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_roundtrip_and_rejects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
