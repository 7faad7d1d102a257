/* test_metrics.c — unit tests for src/daemon/obs/metrics.h, the registry behind GET /metrics and
 * its Prometheus text rendering. Must never depend on timing: every observation is given its value.
 *
 * Covers: HELP and TYPE lines for every family, before its samples, each family once; the exact
 * sample lines of counters (three labels) and of label-less gauges; label values escaped
 * (backslash, double quote, newline) and nothing else; histogram buckets cumulative and ordered,
 * the +Inf bucket equal to _count, _sum the sum; bounded labels: model indexes out of range and
 * METRICS_NO_MODEL all count under model="", unknown statuses under status="other", and the
 * output's size does not grow with the number of distinct bad inputs; every line of the output
 * is a comment or a well-formed sample; a buffer at its limit makes render fail.
 */
#include "obs/metrics.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static const char *names2[] = {"chat", "embed"};

static char *render(metrics *m, const metrics_gauges *g) {
  sy_buf b = {0};
  assert_int_equal(metrics_render(m, g, &b), 0);
  assert_non_null(b.data);
  return b.data;
}

/* The value of the sample line that starts with exactly `head` followed by a space; -1 if none. */
static double value_of(const char *text, const char *head) {
  size_t n = strlen(head);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, head, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

static void test_counters_exact_lines(void **state) {
  (void)state;
  metrics *m = metrics_new(names2, 2);
  assert_non_null(m);
  metrics_request(m, 0, METRICS_EP_CHAT, 200, 0.02);
  metrics_request(m, 0, METRICS_EP_CHAT, 200, 0.03);
  metrics_request(m, 1, METRICS_EP_EMBEDDINGS, 400, 0.001);
  metrics_tokens(m, 0, 7, 5);
  metrics_tokens(m, 1, 3, 0);
  metrics_cancelled(m, 0);
  metrics_load(m, 0, true, 1.5);
  metrics_load(m, 1, false, 0.2);
  metrics_unload(m, 0, METRICS_UNLOAD_EVICTED);
  metrics_unload(m, 0, METRICS_UNLOAD_KEEP_ALIVE_0);
  char *t = render(m, NULL);
  assert_non_null(strstr(t, "# HELP switchyard_requests_total "));
  assert_non_null(strstr(t, "# TYPE switchyard_requests_total counter\n"));
  assert_non_null(strstr(
      t, "\nswitchyard_requests_total{model=\"chat\",endpoint=\"chat\",status=\"200\"} 2\n"));
  assert_non_null(strstr(
      t,
      "\nswitchyard_requests_total{model=\"embed\",endpoint=\"embeddings\",status=\"400\"} 1\n"));
  assert_null(strstr(t, "status=\"404\"")); /* zero combinations are left out */
  assert_non_null(strstr(t, "\nswitchyard_prompt_tokens_total{model=\"chat\"} 7\n"));
  assert_non_null(strstr(t, "\nswitchyard_prompt_tokens_total{model=\"embed\"} 3\n"));
  assert_non_null(strstr(t, "\nswitchyard_generated_tokens_total{model=\"chat\"} 5\n"));
  assert_non_null(strstr(
      t, "\nswitchyard_generated_tokens_total{model=\"embed\"} 0\n"));     /* every model, from 0 */
  assert_null(strstr(t, "switchyard_generated_tokens_total{model=\"\"}")); /* "" only once used */
  assert_non_null(strstr(t, "\nswitchyard_requests_cancelled_total{model=\"chat\"} 1\n"));
  assert_non_null(strstr(t, "\nswitchyard_model_loads_total{model=\"chat\",result=\"ok\"} 1\n"));
  assert_non_null(
      strstr(t, "\nswitchyard_model_loads_total{model=\"embed\",result=\"failed\"} 1\n"));
  assert_non_null(
      strstr(t, "\nswitchyard_model_unloads_total{model=\"chat\",reason=\"evicted\"} 1\n"));
  assert_non_null(
      strstr(t, "\nswitchyard_model_unloads_total{model=\"chat\",reason=\"keep_alive_0\"} 1\n"));
  assert_non_null(strstr(t, "\nswitchyard_model_load_duration_seconds_count{model=\"embed\"} 1\n"));
  assert_null(strstr(t, "switchyard_queue_depth")); /* no gauges passed */
  free(t);
  metrics_free(m);
}

static void test_gauges(void **state) {
  (void)state;
  metrics *m = metrics_new(names2, 2);
  metrics_model_gauges mg[2] = {{.queued = 3,
                                 .inflight = 4,
                                 .estimated_bytes = 1000,
                                 .measured_bytes = 1200,
                                 .prompt_cache_bytes = 77,
                                 .loaded = true},
                                {.estimated_bytes = 500}};
  metrics_gauges g = {.models = mg, .n_models = 2, .budget_bytes = 1LL << 40, .used_bytes = 1200};
  char *t = render(m, &g);
  assert_non_null(
      strstr(t, "# TYPE switchyard_queue_depth gauge\nswitchyard_queue_depth{model=\"chat\"} 3\n"));
  assert_non_null(strstr(t, "\nswitchyard_requests_in_flight{model=\"chat\"} 4\n"));
  assert_non_null(strstr(t, "\nswitchyard_model_loaded{model=\"chat\"} 1\n"));
  assert_non_null(strstr(t, "\nswitchyard_model_loaded{model=\"embed\"} 0\n"));
  assert_non_null(
      strstr(t, "\nswitchyard_model_memory_bytes{model=\"chat\",kind=\"estimated\"} 1000\n"));
  assert_non_null(
      strstr(t, "\nswitchyard_model_memory_bytes{model=\"chat\",kind=\"measured\"} 1200\n"));
  assert_non_null(
      strstr(t, "\nswitchyard_model_memory_bytes{model=\"embed\",kind=\"measured\"} 0\n"));
  assert_non_null(strstr(t,
                         "# TYPE switchyard_prompt_cache_bytes gauge\n"
                         "switchyard_prompt_cache_bytes{model=\"chat\"} 77\n"
                         "switchyard_prompt_cache_bytes{model=\"embed\"} 0\n"));
  assert_non_null(strstr(t, "\nswitchyard_memory_budget_bytes 1099511627776\n"));
  assert_non_null(strstr(t, "\nswitchyard_memory_used_bytes 1200\n"));
  free(t);
  metrics_free(m);
}

static void test_escaping(void **state) {
  (void)state;
  const char *odd[] = {"a\\b\"c\nd"};
  metrics *m = metrics_new(odd, 1);
  metrics_tokens(m, 0, 1, 1);
  metrics_request(m, 0, METRICS_EP_COMPLETIONS, 200, 0.5);
  char *t = render(m, NULL);
  assert_non_null(strstr(t, "\nswitchyard_prompt_tokens_total{model=\"a\\\\b\\\"c\\nd\"} 1\n"));
  assert_non_null(strstr(t,
                         "switchyard_request_duration_seconds_bucket{model=\"a\\\\b\\\"c\\nd\","
                         "endpoint=\"completions\",le=\"0.5\"} 1\n"));
  /* no raw newline inside any sample: every line starts with '#' or the prefix */
  for (char *line = t; *line; line = strchr(line, '\n') + 1) {
    assert_true(line[0] == '#' || strncmp(line, "switchyard_", 11) == 0);
    assert_non_null(strchr(line, '\n'));
  }
  free(t);
  metrics_free(m);
}

static void test_histogram_cumulative(void **state) {
  (void)state;
  metrics *m = metrics_new(names2, 2);
  double obs[] = {0.001, 0.005, 0.007, 0.3,
                  0.3,   2,     119,   500}; /* 0.005 is on a bound: counts as ≤ 0.005 */
  double sum = 0;
  for (size_t i = 0; i < sizeof obs / sizeof *obs; i++) {
    metrics_ttft(m, 0, obs[i]);
    sum += obs[i];
  }
  char *t = render(m, NULL);
  static const struct {
    const char *le;
    double want;
  } b[] = {{"0.005", 2}, {"0.01", 3}, {"0.25", 3}, {"0.5", 5}, {"1", 5},
           {"2.5", 6},   {"60", 6},   {"120", 7},  {"+Inf", 8}};
  char head[160];
  for (size_t i = 0; i < sizeof b / sizeof *b; i++) {
    snprintf(head, sizeof head,
             "switchyard_time_to_first_token_seconds_bucket{model=\"chat\",le=\"%s\"}", b[i].le);
    assert_true(value_of(t, head) == b[i].want);
  }
  /* buckets never decrease, in the order printed */
  double prev = -1;
  int n_buckets = 0;
  for (const char *p = strstr(t, "switchyard_time_to_first_token_seconds_bucket"); p;
       p = strstr(p + 1, "switchyard_time_to_first_token_seconds_bucket")) {
    double v = strtod(strchr(p, '}') + 2, NULL);
    assert_true(v >= prev);
    prev = v;
    n_buckets++;
  }
  assert_int_equal(n_buckets, 15); /* 14 bounds + +Inf */
  assert_true(value_of(t, "switchyard_time_to_first_token_seconds_count{model=\"chat\"}") == 8);
  double got = value_of(t, "switchyard_time_to_first_token_seconds_sum{model=\"chat\"}");
  assert_true(got > sum - 1e-6 && got < sum + 1e-6);
  assert_null(strstr(
      t, "switchyard_time_to_first_token_seconds_count{model=\"embed\"}")); /* never observed */
  free(t);
  metrics_free(m);
}

static void test_bounded_labels(void **state) {
  (void)state;
  metrics *m = metrics_new(names2, 2);
  metrics_request(m, METRICS_NO_MODEL, METRICS_EP_CHAT, 404, 0.001);
  char *t1 = render(m, NULL);
  size_t len1 = strlen(t1);
  /* many distinct bad inputs: model indexes out of range, odd statuses */
  for (int i = 0; i < 1000; i++) {
    metrics_request(m, 2 + i, METRICS_EP_CHAT, 404, 0.001);
    metrics_request(m, -2 - i, METRICS_EP_CHAT, 404, 0.001);
    metrics_request(m, METRICS_NO_MODEL, METRICS_EP_CHAT, 600 + i, 0.001);
  }
  metrics_request(m, 0, (metrics_endpoint)99, 200, 0.001); /* refused, not a crash */
  metrics_unload(m, 0, (metrics_unload_reason)99);
  char *t2 = render(m, NULL);
  assert_true(
      value_of(t2, "switchyard_requests_total{model=\"\",endpoint=\"chat\",status=\"404\"}") ==
      2001);
  assert_true(
      value_of(t2, "switchyard_requests_total{model=\"\",endpoint=\"chat\",status=\"other\"}") ==
      1000);
  assert_true(
      value_of(t2, "switchyard_request_duration_seconds_count{model=\"\",endpoint=\"chat\"}") ==
      3001);
  assert_null(
      strstr(t2, "model=\"chat\",endpoint=\"chat\"")); /* nothing leaked into a real model */
  assert_true(strlen(t2) < len1 + 200); /* one more line (status="other"), whatever came in */
  free(t1);
  free(t2);
  metrics_free(m);
}

/* Each family's HELP then TYPE, once, before its samples; every sample line belongs to the family
 * declared last. */
/* A reload adds names: old rows keep their counts and index, "" stays the catch-all. */
static void test_add_model(void **state) {
  (void)state;
  metrics *m = metrics_new(names2, 2);
  metrics_request(m, 1, METRICS_EP_EMBEDDINGS, 200, 0.1);
  metrics_request(m, METRICS_NO_MODEL, METRICS_EP_CHAT, 404, 0.1);
  assert_int_equal(metrics_model(m, "embed"), 1);
  int k = metrics_model(m, "new-model");
  assert_int_equal(k, 2);
  assert_int_equal(metrics_model(m, "new-model"), 2);
  metrics_request(m, k, METRICS_EP_CHAT, 200, 0.1);
  metrics_model_gauges mg[3] = {{0}, {0}, {.loaded = true}};
  metrics_gauges g = {.models = mg, .n_models = 3};
  char *t = render(m, &g);
  assert_non_null(strstr(
      t, "switchyard_requests_total{model=\"embed\",endpoint=\"embeddings\",status=\"200\"} 1\n"));
  assert_non_null(strstr(
      t, "switchyard_requests_total{model=\"new-model\",endpoint=\"chat\",status=\"200\"} 1\n"));
  assert_non_null(
      strstr(t, "switchyard_requests_total{model=\"\",endpoint=\"chat\",status=\"404\"} 1\n"));
  assert_non_null(strstr(t, "switchyard_model_loaded{model=\"new-model\"} 1\n"));
  free(t);
  metrics_free(m);
}

static void test_structure(void **state) {
  (void)state;
  metrics *m = metrics_new(names2, 2);
  metrics_request(m, 0, METRICS_EP_CHAT, 200, 0.1);
  metrics_ttft(m, 0, 0.05);
  metrics_load(m, 0, true, 3);
  metrics_model_gauges mg[2] = {{0}};
  metrics_gauges g = {.models = mg, .n_models = 2};
  char *t = render(m, &g);
  char family[128] = "";
  int n_families = 0;
  for (char *line = t; *line;) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    char name[128], type[32];
    if (sscanf(line, "# HELP %127s", name) == 1) {
      assert_string_not_equal(name, family);
      snprintf(family, sizeof family, "%s", name);
      n_families++;
      char *next = nl + 1;
      assert_int_equal(sscanf(next, "# TYPE %127s %31s", name, type), 2);
      assert_string_equal(name, family);
      assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") || !strcmp(type, "histogram"));
    } else if (line[0] != '#') {
      size_t fl = strlen(family);
      assert_true(strncmp(line, family, fl) == 0);
      const char *rest = line + fl;
      assert_true(*rest == '{' || *rest == ' ' || !strncmp(rest, "_bucket{", 8) ||
                  !strncmp(rest, "_sum{", 5) || !strncmp(rest, "_count{", 7));
      const char *sp = strrchr(line, ' ');
      char *end;
      strtod(sp + 1, &end);
      assert_true(*end == '\0' && end > sp + 1); /* the value is a number and ends the line */
    }
    line = nl + 1;
  }
  assert_int_equal(n_families, 21); /* + the two pipeline families, + four of the prompt cache */
  free(t);
  metrics_free(m);
}

static void test_limit_refusal(void **state) {
  (void)state;
  metrics *m = metrics_new(names2, 2);
  sy_buf b = {.limit = 64};
  assert_int_equal(metrics_render(m, NULL, &b), -1);
  sy_buf_free(&b);
  metrics_free(m);
}

/* The rerank endpoint has its own label value, in both the counter and the histogram. */
static void test_rerank_endpoint(void **state) {
  (void)state;
  metrics *m = metrics_new(names2, 2);
  assert_non_null(m);
  metrics_request(m, 1, METRICS_EP_RERANK, 200, 0.02);
  metrics_request(m, 1, METRICS_EP_RERANK, 400, 0.001);
  char *t = render(m, NULL);
  assert_non_null(strstr(
      t, "\nswitchyard_requests_total{model=\"embed\",endpoint=\"rerank\",status=\"200\"} 1\n"));
  assert_non_null(strstr(
      t, "\nswitchyard_requests_total{model=\"embed\",endpoint=\"rerank\",status=\"400\"} 1\n"));
  assert_non_null(strstr(
      t, "\nswitchyard_request_duration_seconds_count{model=\"embed\",endpoint=\"rerank\"} 2\n"));
  free(t);
  metrics_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counters_exact_lines),
      cmocka_unit_test(test_gauges),
      cmocka_unit_test(test_escaping),
      cmocka_unit_test(test_histogram_cumulative),
      cmocka_unit_test(test_bounded_labels),
      cmocka_unit_test(test_structure),
      cmocka_unit_test(test_add_model),
      cmocka_unit_test(test_limit_refusal),
      cmocka_unit_test(test_rerank_endpoint),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
