/* test_footprint.c — the parser of llama-fit-params' output (hostile text: only the fixed line
 * format counts), the fallback estimate when the probe is missing, and the /proc readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/gpumem.h"
#include "sched/footprint.h"

#define MIB (1024LL * 1024LL)

static void test_parse_cpu(void **state) {
  (void)state;
  footprint_est e;
  assert_int_equal(footprint_parse_probe("Host 500 24 300 \n", &e), 0);
  assert_true(e.model_bytes == 500 * MIB && e.context_bytes == 24 * MIB &&
              e.compute_bytes == 300 * MIB);
  assert_true(e.total_bytes > 824 * MIB); /* plus the process overhead */
  assert_true(e.from_probe);
  assert_string_equal(e.devices, "Host");
}

static void test_parse_gpu_and_host(void **state) {
  (void)state;
  footprint_est e;
  assert_int_equal(footprint_parse_probe("CUDA0 4400 448 304\nHost 243 0 20\n", &e), 0);
  assert_true(e.model_bytes == 4643 * MIB && e.context_bytes == 448 * MIB &&
              e.compute_bytes == 324 * MIB);
  assert_string_equal(e.devices, "CUDA0,Host");
  assert_int_equal(e.n_dev, 2);
  assert_string_equal(e.dev[0].name, "CUDA0");
  assert_true(e.dev[0].bytes == (4400LL + 448 + 304) << 20);
  assert_string_equal(e.dev[1].name, "Host");
  assert_true(e.dev[1].bytes == 263LL << 20);
}

static void test_parse_ignores_other_lines(void **state) {
  (void)state;
  footprint_est e;
  const char *noise =
      "llama_fit_params: printing\nHost 1 2 3 junk\nHost -1 2 3\nHost 1 2\n"
      "Host 99999999999 1 1\n\nHost 10 0 1\n";
  assert_int_equal(footprint_parse_probe(noise, &e), 0);
  assert_true(e.model_bytes == 10 * MIB && e.compute_bytes == 1 * MIB);
  assert_int_equal(footprint_parse_probe("", &e), -1);
  assert_false(e.from_probe);
  assert_int_equal(footprint_parse_probe("nothing useful here\n", &e), -1);
  char longline[600];
  memset(longline, 'x', sizeof longline - 1);
  longline[sizeof longline - 1] = '\0';
  assert_int_equal(footprint_parse_probe(longline, &e), -1);
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
  footprint_est e;
  char err[256];
  assert_int_equal(footprint_estimate("/nonexistent/llama-fit-params", &m, &e, err, sizeof err),
                   -1);
  assert_false(e.from_probe);
  assert_true(e.model_bytes == 100 * MIB);
  assert_true(e.total_bytes > 100 * MIB);
  assert_non_null(strstr(err, "not there"));
}

static void test_live_budget(void **state) {
  (void)state;
  /* plenty free: the configured budget */
  assert_true(footprint_live_budget(8 * MIB, 100 * MIB, 0, 2 * MIB) == 8 * MIB);
  /* others use most of the machine: what is free + ours − reserve */
  assert_true(footprint_live_budget(8 * MIB, 3 * MIB, 2 * MIB, 1 * MIB) == 4 * MIB);
  /* nothing free and nothing of ours: 0, never negative */
  assert_true(footprint_live_budget(8 * MIB, 0, 0, 1 * MIB) == 0);
  /* unknown (no /proc/meminfo): the configured budget */
  assert_true(footprint_live_budget(8 * MIB, -1, 5, 5) == 8 * MIB);
}

static void test_proc_readers(void **state) {
  (void)state;
  assert_true(footprint_rss_bytes(getpid()) > 0);
  assert_true(footprint_rss_bytes(-5) < 0);
  assert_true(footprint_mem_total() > 64 * MIB);
  assert_true(footprint_mem_available() > 0 && footprint_mem_available() <= footprint_mem_total());
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

/* The whisper estimate from a file's header: whisper's base shape (the KV sizes whisper.cpp logs
 * for it: self 6.29 MB, cross 18.87 MB, pad 3.15 MB; its four compute buffers, 203 MB in all, are
 * covered), and headers it must not trust (Parakeet's layout, absurd numbers, short files). */
static void write_header(const char *path, const int32_t *h, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(h, sizeof *h, n, f), n);
  fclose(f);
}

static void test_whisper_estimate(void **state) {
  (void)state;
  char path[] = "/tmp/sy-whisper-est-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  /* magic; vocab, audio ctx/state/head/layer, text ctx/state/head/layer, mels, ftype; n_mel, n_fft
   */
  int32_t base[14] = {0x67676d6c, 51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1, 80, 201};
  write_header(path, base, 14);
  footprint_est e;
  const long long file = 147903423;
  assert_int_equal(footprint_whisper_estimate(path, file, &e), 0);
  assert_int_equal(e.model_bytes, file);
  assert_int_equal(e.context_bytes, 6291456 + 18874368 + 3145728);
  assert_true(e.compute_bytes >= 203000000 && e.compute_bytes <= 240000000);
  assert_int_equal(e.total_bytes, e.model_bytes + e.context_bytes + e.compute_bytes + (16LL << 20));
  /* measured 381 MB resident on this machine (PERFORMANCE.md): the estimate covers it */
  assert_true(e.total_bytes >= 381000000 && e.total_bytes <= 381000000LL * 115 / 100);
  int32_t bad[14];
  memcpy(bad, base, sizeof bad);
  bad[13] = 513; /* not whisper's mel filters: Parakeet's layout */
  write_header(path, bad, 14);
  assert_int_equal(footprint_whisper_estimate(path, file, &e), -1);
  memcpy(bad, base, sizeof bad);
  bad[4] = 100000; /* heads */
  write_header(path, bad, 14);
  assert_int_equal(footprint_whisper_estimate(path, file, &e), -1);
  memcpy(bad, base, sizeof bad);
  bad[1] = -5; /* vocabulary */
  write_header(path, bad, 14);
  assert_int_equal(footprint_whisper_estimate(path, file, &e), -1);
  write_header(path, base, 5); /* short */
  assert_int_equal(footprint_whisper_estimate(path, file, &e), -1);
  unlink(path);
  assert_int_equal(footprint_whisper_estimate(path, file, &e), -1); /* gone */
}

/* The probe misses the CPU backend's repacked weights: the file's size is the floor, the missing
 * part counted on Host (also beside a GPU). */
/* A projector's margin by its type: Qwen-VL's warm-up needs more than the default (footprint.h) */
static void test_mmproj_margin(void **state) {
  (void)state;
  assert_int_equal(footprint_mmproj_margin("qwen2.5vl_merger"), FOOTPRINT_MMPROJ_MARGIN_QWEN25VL);
  assert_int_equal(footprint_mmproj_margin("qwen2vl_merger"), FOOTPRINT_MMPROJ_MARGIN_QWEN25VL);
  assert_int_equal(footprint_mmproj_margin("qwen3vl_merger"), FOOTPRINT_MMPROJ_MARGIN_QWEN3VL);
  assert_int_equal(footprint_mmproj_margin("mlp"), FOOTPRINT_MMPROJ_MARGIN);
  assert_int_equal(footprint_mmproj_margin(""), FOOTPRINT_MMPROJ_MARGIN);
  assert_int_equal(footprint_mmproj_margin(NULL), FOOTPRINT_MMPROJ_MARGIN);
  /* measured compute buffers (docs/MODELS.md): 705 and 372 MiB fit */
  assert_true(FOOTPRINT_MMPROJ_MARGIN_QWEN25VL >= 705LL << 20);
  assert_true(FOOTPRINT_MMPROJ_MARGIN_QWEN3VL >= 372LL << 20);
}

static void test_weights_floor(void **state) {
  (void)state;
  footprint_est e;
  const long long MiB = 1LL << 20;
  assert_int_equal(footprint_parse_probe("Host 1483 224 310\n", &e), 0);
  long long total = e.total_bytes;
  footprint_weights_floor(&e, 4466 * MiB);
  assert_int_equal(e.model_bytes, 4466 * MiB);
  assert_int_equal(e.total_bytes, total + (4466 - 1483) * MiB);
  assert_int_equal(e.dev[0].bytes, (4466 + 224 + 310) * MiB);
  assert_int_equal(footprint_parse_probe("CUDA0 3000 200 300\nHost 100 0 10\n", &e), 0);
  footprint_weights_floor(&e, 3500 * MiB);
  assert_int_equal(e.dev[0].bytes, 3500 * MiB);             /* the GPU as the probe said */
  assert_int_equal(e.dev[1].bytes, (100 + 400 + 10) * MiB); /* the rest on Host */
  total = e.total_bytes;
  footprint_weights_floor(&e, 1000 * MiB); /* already above the file: unchanged */
  assert_int_equal(e.total_bytes, total);
}

/* cpu_moe: the experts' bytes are counted in host RAM (the pool the scheduler budgets for the
 * host), the rest where the probe put it; the total never changes. */
static void test_cpu_moe_split(void **state) {
  (void)state;
  footprint_est e;
  const long long MiB = 1LL << 20;
  /* Qwen3-30B-A3B-sized: 16,000 MiB of experts over 48 layers */
  assert_int_equal(footprint_cpu_moe_bytes(16000 * MiB, 48, MATRIX_CPU_MOE_ALL), 16000 * MiB);
  assert_int_equal(footprint_cpu_moe_bytes(16000 * MiB, 48, 12), 4000 * MiB); /* a quarter */
  assert_int_equal(footprint_cpu_moe_bytes(16000 * MiB, 48, 48), 16000 * MiB);
  assert_int_equal(footprint_cpu_moe_bytes(16000 * MiB, 48, 100), 16000 * MiB);
  assert_int_equal(footprint_cpu_moe_bytes(16000 * MiB, 48, 0), 0);           /* no cpu_moe */
  assert_int_equal(footprint_cpu_moe_bytes(-1, 48, MATRIX_CPU_MOE_ALL), 0);   /* size unknown */
  assert_int_equal(footprint_cpu_moe_bytes(16000 * MiB, 0, 12), 16000 * MiB); /* layers unknown */

  /* an estimate with the whole model on the GPU: the experts move to the host */
  assert_int_equal(footprint_parse_probe("CUDA0 17000 400 300\nHost 200 0 20\n", &e), 0);
  long long total = e.total_bytes;
  footprint_experts_on_host(&e, 16000 * MiB);
  assert_int_equal(e.dev[1].bytes, 16000 * MiB);
  assert_int_equal(e.dev[0].bytes, (17700 - (16000 - 220)) * MiB);
  assert_int_equal(e.total_bytes, total);
  assert_int_equal(e.n_dev, 2);

  /* the probe run with --cpu-moe already counts them on the host: nothing moves */
  assert_int_equal(footprint_parse_probe("CUDA0 1000 400 300\nHost 16200 0 20\n", &e), 0);
  footprint_experts_on_host(&e, 16000 * MiB);
  assert_int_equal(e.dev[0].bytes, 1700 * MiB);
  assert_int_equal(e.dev[1].bytes, 16220 * MiB);

  /* CPU only: everything is host already */
  assert_int_equal(footprint_parse_probe("Host 500 24 300\n", &e), 0);
  footprint_experts_on_host(&e, 10000 * MiB);
  assert_int_equal(e.n_dev, 1);
  assert_int_equal(e.dev[0].bytes, 824 * MiB);

  /* a GPU-only answer: the host entry is added; a GPU never goes below 0 */
  assert_int_equal(footprint_parse_probe("CUDA0 5000 100 100\n", &e), 0);
  total = e.total_bytes;
  footprint_experts_on_host(&e, 4000 * MiB);
  assert_int_equal(e.n_dev, 2);
  assert_string_equal(e.dev[1].name, "Host");
  assert_int_equal(e.dev[1].bytes, 4000 * MiB);
  assert_int_equal(e.dev[0].bytes, 1200 * MiB);
  footprint_experts_on_host(&e, 9000 * MiB); /* more than there is: the GPU empties, no more */
  assert_int_equal(e.dev[0].bytes, 0);
  assert_int_equal(e.dev[1].bytes, 5200 * MiB);
  assert_int_equal(e.total_bytes, total);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gpumem),
      cmocka_unit_test(test_whisper_estimate),
      cmocka_unit_test(test_weights_floor),
      cmocka_unit_test(test_mmproj_margin),
      cmocka_unit_test(test_cpu_moe_split),
      cmocka_unit_test(test_parse_cpu),
      cmocka_unit_test(test_parse_gpu_and_host),
      cmocka_unit_test(test_parse_ignores_other_lines),
      cmocka_unit_test(test_fallback_without_probe),
      cmocka_unit_test(test_live_budget),
      cmocka_unit_test(test_proc_readers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
