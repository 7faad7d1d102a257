/* test_footprint_store.c — remembered measurements: round trip through the file, only growing,
 * corrupt and foreign files treated as empty, keys that change with the file and the settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sched/footprint_store.h"

static char dir[64], path[128];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/sy-footprint_store-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(path, sizeof path, "%s/sub/measurements.json", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_round_trip(void **state) {
  (void)state;
  footprint_store *s = footprint_store_open(path);
  assert_non_null(s);
  assert_true(footprint_store_get(s, "k1") == -1);
  assert_int_equal(footprint_store_put_max(s, "k1", 1000), 0); /* creates the folder too */
  assert_int_equal(footprint_store_put_max(s, "k1", 500), 0);  /* never lowers */
  assert_int_equal(footprint_store_put_max(s, "k2", 7), 0);
  footprint_store_close(s);
  s = footprint_store_open(path);
  assert_true(footprint_store_get(s, "k1") == 1000);
  assert_true(footprint_store_get(s, "k2") == 7);
  footprint_store_close(s);
  char tmp[160];
  snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
  assert_int_not_equal(access(tmp, F_OK), 0); /* no temp file left behind */
}

static void test_corrupt_files(void **state) {
  (void)state;
  static const char *bad[] = {"", "{", "[1,2]", "{\"models\": 5}",
                              "{\"models\": {\"k\": \"big\", \"n\": -3}}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char p[160];
    snprintf(p, sizeof p, "%s/bad%zu.json", dir, i);
    FILE *f = fopen(p, "w");
    fputs(bad[i], f);
    fclose(f);
    footprint_store *s = footprint_store_open(p);
    assert_non_null(s);
    assert_true(footprint_store_get(s, "k") == -1);
    assert_true(footprint_store_get(s, "n") == -1);
    footprint_store_close(s);
  }
}

static void test_memory_only(void **state) {
  (void)state;
  footprint_store *s = footprint_store_open(NULL);
  assert_int_equal(footprint_store_put_max(s, "k", 5), 0);
  assert_true(footprint_store_get(s, "k") == 5);
  footprint_store_close(s);
}

static void test_keys(void **state) {
  (void)state;
  char f[160];
  snprintf(f, sizeof f, "%s/model.gguf", dir);
  FILE *fp = fopen(f, "w");
  fputs("GGUF", fp);
  fclose(fp);
  matrix_model m = {0};
  m.file = f;
  m.context = 512;
  m.parallel = 4;
  m.batch = 512;
  m.gpu_layers = -1;
  char k1[512], k2[512], k3[512];
  footprint_store_key(&m, k1, sizeof k1);
  m.parallel = 2;
  footprint_store_key(&m, k2, sizeof k2);
  assert_string_not_equal(k1, k2);
  m.parallel = 4;
  fp = fopen(f, "a");
  fputs("more", fp); /* the file changed: a new key */
  fclose(fp);
  footprint_store_key(&m, k3, sizeof k3);
  assert_string_not_equal(k1, k3);
  assert_non_null(strstr(k1, "ctx=512|np=4"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip), cmocka_unit_test(test_corrupt_files),
      cmocka_unit_test(test_memory_only), cmocka_unit_test(test_keys)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
