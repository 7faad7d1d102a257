/* main.c — the integration tests' runner: options, the main daemon (D) started once on the config
 * harness.c writes, every feature's table run in a fixed order, then the daemon's clean shutdown.
 *
 * usage: itest --daemon BIN --models DIR [--testdata DIR] [--engines DIR] [--only NAME] | --list
 * --engines (or SWITCHYARD_ENGINES): the engine cache's install folder (deps/engines.sh
 * print-prefix), whose bin/llama-server and bin/whisper-server the external-engine tests run;
 * without it they are skipped. --only NAME runs one test, or every test of the feature NAME.
 * --list prints "FEATURE TEST" for every test, in run order, and starts nothing.
 * Prints one line per test and "N passed, N failed, N skipped" at the end; exit status 1 on any
 * failure, 2 on bad usage.
 *
 * The order is part of the suite: the tests share D (its loaded models, its counters), so the
 * tables run in the order the single-file suite always ran them, and a new test goes where it
 * does not disturb the ones after it. Never reorder to make a test pass. */
#include <getopt.h>

#include "harness.h"

static const itest_table *const features[] = {
    &itest_basics,       &itest_threads,     &itest_embed,        &itest_serving,
    &itest_ops,          &itest_budget,      &itest_config,       &itest_fidelity,
    &itest_vision,       &itest_vision_arch, &itest_asr,          &itest_speech,
    &itest_audio_models, &itest_external,    &itest_routers,      &itest_whisper_server,
    &itest_pipelines,    &itest_qwen3tts,    &itest_prompt_cache, &itest_prompt_cache_budget,
    &itest_messages,     &itest_responses,   &itest_cli,          &itest_pull,
    &itest_ollama,       &itest_ui,          &itest_peers,        &itest_audio_arch,
    &itest_moe_hybrid,   &itest_rpc,         &itest_websocket,
};
enum { n_features = sizeof features / sizeof *features };

/* Whether --only (NULL: everything) selects test t of feature f. */
static bool selected(const char *only, const itest_table *f, const it_test *t) {
  return !only || strcmp(only, t->name) == 0 || strcmp(only, f->name) == 0;
}

static void run_test(const it_test *t) {
  if (t->needs_testdata && !it_have_testdata) {
    printf("skip - %s: ../shared/testdata not found (pass --testdata)\n", t->name);
    it_n_skip++;
    return;
  }
  it_cur_failed = false;
  it_cur_skip[0] = '\0';
  t->fn();
  if (it_cur_skip[0] && !it_cur_failed) {
    printf("skip - %s: %s\n", t->name, it_cur_skip);
    it_n_skip++;
  } else if (it_cur_failed) {
    it_n_fail++;
    printf("not ok - %s: %s\n", t->name, it_cur_fail);
  } else {
    it_n_pass++;
    printf("ok - %s\n", t->name);
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"daemon", required_argument, 0, 'd'},
                                       {"models", required_argument, 0, 'm'},
                                       {"testdata", required_argument, 0, 't'},
                                       {"only", required_argument, 0, 'o'},
                                       {"engines", required_argument, 0, 'e'},
                                       {"list", no_argument, 0, 'l'},
                                       {0, 0, 0, 0}};
  const char *only = NULL;
  bool list = false;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'd')
      it_daemon_bin = optarg;
    else if (c == 'm')
      it_models_dir = optarg;
    else if (c == 't')
      it_testdata_dir = optarg;
    else if (c == 'o')
      only = optarg;
    else if (c == 'e')
      it_engines_dir = optarg;
    else if (c == 'l')
      list = true;
    else
      return 2;
  }
  if (list) {
    for (size_t i = 0; i < n_features; i++)
      for (size_t k = 0; k < features[i]->count; k++)
        printf("%s %s\n", features[i]->name, features[i]->tests[k].name);
    return 0;
  }
  if (!it_daemon_bin || !it_models_dir) {
    fprintf(stderr,
            "usage: itest --daemon BIN --models DIR [--testdata DIR] [--engines DIR] [--only NAME] "
            "| --list\n");
    return 2;
  }
  size_t n_selected = 0;
  for (size_t i = 0; i < n_features; i++)
    for (size_t k = 0; k < features[i]->count; k++)
      n_selected += selected(only, features[i], &features[i]->tests[k]);
  if (n_selected == 0) {
    fprintf(stderr, "itest: --only %s names no test and no feature (itest --list)\n", only);
    return 2;
  }
  /* the config written below lives in a temp dir: make every path absolute */
  static char models_abs[4096], testdata_abs[4096];
  if (!realpath(it_models_dir, models_abs)) {
    fprintf(stderr, "itest: %s: %s\n", it_models_dir, strerror(errno));
    return 2;
  }
  it_models_dir = models_abs;
  if (it_testdata_dir)
    it_testdata_dir = realpath(it_testdata_dir, testdata_abs) ? testdata_abs : NULL;
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!it_engines_dir) it_engines_dir = getenv("SWITCHYARD_ENGINES");
  char probe[512];
  snprintf(probe, sizeof probe, "%s/llama-2-tiny-random.gguf",
           it_testdata_dir ? it_testdata_dir : "");
  it_have_testdata = it_testdata_dir && access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-vlm-mmproj.gguf", it_models_dir);
  it_have_vlm = access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-alm-mmproj.gguf", it_models_dir);
  it_have_alm = access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-qwen2-q4_k_m.gguf", it_models_dir);
  it_have_quant = access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-qwen2-q8_0.gguf", it_models_dir);
  it_have_quant = it_have_quant && access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-pocket-mmproj.gguf", it_models_dir);
  it_have_pocket = access(probe, R_OK) == 0;
  snprintf(probe, sizeof probe, "%s/tiny-hybrid.gguf", it_models_dir);
  it_have_hybrid = access(probe, R_OK) == 0;
  snprintf(it_tmpdir, sizeof it_tmpdir, "/tmp/switchyard-itest-XXXXXX");
  if (!mkdtemp(it_tmpdir)) return 1;
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/main.yaml", it_tmpdir);
  it_write_main_config(cfg);
  if (it_start_daemon(&D, cfg) != 0) {
    fprintf(stderr, "itest: the daemon did not start (config %s)\n", cfg);
    printf("0 passed, 1 failed\n");
    return 1;
  }
  for (size_t i = 0; i < n_features; i++)
    for (size_t k = 0; k < features[i]->count; k++)
      if (selected(only, features[i], &features[i]->tests[k])) run_test(&features[i]->tests[k]);
  int st = it_stop_daemon(&D);
  if (st != 0) {
    it_n_fail++;
    printf("not ok - clean_shutdown: the daemon exited with %d on SIGTERM\n", st);
  } else {
    it_n_pass++;
    printf("ok - clean_shutdown\n");
  }
  curl_global_cleanup();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", it_tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "itest: could not remove %s\n", it_tmpdir);
  printf("itest: %d passed, %d failed, %d skipped\n", it_n_pass, it_n_fail, it_n_skip);
  return it_n_fail ? 1 : 0;
}
