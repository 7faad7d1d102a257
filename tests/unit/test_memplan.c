/* test_memplan.c — the parser of llama-fit-params' output (hostile text: only the fixed line
 * format counts), the fallback estimate when the probe is missing, and the /proc readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "../../src/daemon/gpumem.h"
#include "../../src/daemon/memplan.h"

#define MIB (1024LL * 1024LL)

static void test_parse_cpu(void **state) {
  (void)state;
  memplan_est e;
  assert_int_equal(memplan_parse_probe("Host 500 24 300 \n", &e), 0);
  assert_true(e.model_bytes == 500 * MIB && e.context_bytes == 24 * MIB && e.compute_bytes == 300 * MIB);
  assert_true(e.total_bytes > 824 * MIB); /* plus the process overhead */
  assert_true(e.from_probe);
  assert_string_equal(e.devices, "Host");
}

static void test_parse_gpu_and_host(void **state) {
  (void)state;
  memplan_est e;
  assert_int_equal(memplan_parse_probe("CUDA0 4400 448 304\nHost 243 0 20\n", &e), 0);
  assert_true(e.model_bytes == 4643 * MIB && e.context_bytes == 448 * MIB && e.compute_bytes == 324 * MIB);
  assert_string_equal(e.devices, "CUDA0,Host");
  assert_int_equal(e.n_dev, 2);
  assert_string_equal(e.dev[0].name, "CUDA0");
  assert_true(e.dev[0].bytes == (4400LL + 448 + 304) << 20);
  assert_string_equal(e.dev[1].name, "Host");
  assert_true(e.dev[1].bytes == 263LL << 20);
}

static void test_parse_ignores_other_lines(void **state) {
  (void)state;
  memplan_est e;
  const char *noise = "llama_fit_params: printing\nHost 1 2 3 junk\nHost -1 2 3\nHost 1 2\n"
                      "Host 99999999999 1 1\n\nHost 10 0 1\n";
  assert_int_equal(memplan_parse_probe(noise, &e), 0);
  assert_true(e.model_bytes == 10 * MIB && e.compute_bytes == 1 * MIB);
  assert_int_equal(memplan_parse_probe("", &e), -1);
  assert_false(e.from_probe);
  assert_int_equal(memplan_parse_probe("nothing useful here\n", &e), -1);
  char longline[600];
  memset(longline, 'x', sizeof longline - 1);
  longline[sizeof longline - 1] = '\0';
  assert_int_equal(memplan_parse_probe(longline, &e), -1);
}

static void test_fallback_without_probe(void **state) {
  (void)state;
  matrix_model m = {0};
  m.name = "x";
  m.file = "/nonexistent.gguf";
  m.file_bytes = 100 * MIB;
  m.context = 512;
  m.parallel = 1;
  m.batch = 512;
  memplan_est e;
  char err[256];
  assert_int_equal(memplan_estimate("/nonexistent/llama-fit-params", &m, &e, err, sizeof err), -1);
  assert_false(e.from_probe);
  assert_true(e.model_bytes == 100 * MIB);
  assert_true(e.total_bytes > 100 * MIB);
  assert_non_null(strstr(err, "not there"));
}

static void test_live_budget(void **state) {
  (void)state;
  /* plenty free: the configured budget */
  assert_true(memplan_live_budget(8 * MIB, 100 * MIB, 0, 2 * MIB) == 8 * MIB);
  /* others use most of the machine: what is free + ours − reserve */
  assert_true(memplan_live_budget(8 * MIB, 3 * MIB, 2 * MIB, 1 * MIB) == 4 * MIB);
  /* nothing free and nothing of ours: 0, never negative */
  assert_true(memplan_live_budget(8 * MIB, 0, 0, 1 * MIB) == 0);
  /* unknown (no /proc/meminfo): the configured budget */
  assert_true(memplan_live_budget(8 * MIB, -1, 5, 5) == 8 * MIB);
}

static void test_proc_readers(void **state) {
  (void)state;
  assert_true(memplan_rss_bytes(getpid()) > 0);
  assert_true(memplan_rss_bytes(-5) < 0);
  assert_true(memplan_mem_total() > 64 * MIB);
  assert_true(memplan_mem_available() > 0 && memplan_mem_available() <= memplan_mem_total());
}

/* Device names to NVML indexes; without NVML (this machine) nothing is known, nothing crashes. */
static void test_gpumem(void **state) {
  (void)state;
  assert_int_equal(gpumem_index_of("CUDA0"), 0);
  assert_int_equal(gpumem_index_of("CUDA12"), 12);
  assert_int_equal(gpumem_index_of("CUDA"), -1);
  assert_int_equal(gpumem_index_of("CUDA1x"), -1);
  assert_int_equal(gpumem_index_of("CUDA-1"), -1);
  assert_int_equal(gpumem_index_of("Vulkan0"), -1);
  assert_int_equal(gpumem_index_of(NULL), -1);
  long long f = 0, t = 0;
  if (!gpumem_available()) {
    assert_int_equal(gpumem_info(0, &f, &t), -1);
    assert_true(gpumem_process_bytes(0, getpid()) == -1);
  }
  assert_int_equal(gpumem_info(-1, &f, &t), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gpumem),
      cmocka_unit_test(test_parse_cpu),          cmocka_unit_test(test_parse_gpu_and_host),
      cmocka_unit_test(test_parse_ignores_other_lines), cmocka_unit_test(test_fallback_without_probe),
      cmocka_unit_test(test_live_budget), cmocka_unit_test(test_proc_readers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
