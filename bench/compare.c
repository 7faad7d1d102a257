/* compare.c — `bench --compare SWITCHYARD.json LLAMA.json [--label TEXT]`: reads two result objects
 * written by `bench` (one per server) and prints the markdown comparison table of `make bench`:
 *
 *   {label}, {tokens} tokens, mean of {runs} runs
 *   <empty line>
 *   | metric | switchyard | llama-server | ratio |
 *   ...
 *
 * tokens, runs and streams come from the first file. Values print as %.2f, the ratio (first/second)
 * as %.3f, or n/a when the second value is 0. A missing file, bad JSON, or a missing or non-numeric
 * key is an error (exit 1) before anything is printed, so the caller can fall back to the raw JSON.
 */
#include "compare.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* a result file is one small object; refuse anything much bigger */
#define CMP_MAX_FILE (1 << 20)

static const struct {
  const char *key, *name; /* name NULL: built from streams */
} cmp_rows[] = {
    {"single_stream_tok_s", "decode tok/s, 1 stream"},
    {"aggregate_tok_s", NULL},
    {"ttft_ms", "time to first token, ms"},
    {"one_token_p50_ms", "1-token request p50, ms"},
    {"one_token_p90_ms", "1-token request p90, ms"},
    {"overhead_p50_ms", "time outside the engine, 1-token request p50, ms"},
};
#define CMP_NROWS (sizeof cmp_rows / sizeof cmp_rows[0])

static json_t *cmp_load(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "bench --compare: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  if (!S_ISREG(st.st_mode) || st.st_size > CMP_MAX_FILE) {
    fprintf(stderr, "bench --compare: %s: not a regular file of at most %d bytes\n", path,
            CMP_MAX_FILE);
    return NULL;
  }
  json_error_t err;
  json_t *j = json_load_file(path, 0, &err);
  if (!j) {
    fprintf(stderr, "bench --compare: %s:%d:%d: bad JSON: %s\n", path, err.line, err.column,
            err.text);
    return NULL;
  }
  if (!json_is_object(j)) {
    fprintf(stderr, "bench --compare: %s: not a JSON object\n", path);
    json_decref(j);
    return NULL;
  }
  return j;
}

/* a number (integer or real) under key; false with a message when absent or of another type */
static bool cmp_number(json_t *o, const char *path, const char *key, double *v) {
  json_t *x = json_object_get(o, key);
  if (!json_is_number(x)) {
    fprintf(stderr, "bench --compare: %s: \"%s\" is %s\n", path, key,
            x ? "not a number" : "missing");
    return false;
  }
  *v = json_number_value(x);
  return true;
}

static bool cmp_integer(json_t *o, const char *path, const char *key, json_int_t *v) {
  json_t *x = json_object_get(o, key);
  if (!json_is_integer(x)) {
    fprintf(stderr, "bench --compare: %s: \"%s\" is %s\n", path, key,
            x ? "not an integer" : "missing");
    return false;
  }
  *v = json_integer_value(x);
  return true;
}

int bench_compare(int argc, char **argv) {
  const char *files[2] = {NULL, NULL}, *label = NULL;
  int nfiles = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--compare") == 0) continue;
    if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) {
      label = argv[++i];
    } else if (strncmp(argv[i], "--label=", 8) == 0) {
      label = argv[i] + 8;
    } else if (argv[i][0] != '-' && nfiles < 2) {
      files[nfiles++] = argv[i];
    } else {
      nfiles = -1;
      break;
    }
  }
  if (nfiles != 2) {
    fprintf(stderr, "usage: bench --compare SWITCHYARD.json LLAMA.json [--label TEXT]\n");
    return 2;
  }

  json_t *j[2] = {cmp_load(files[0]), NULL};
  if (j[0]) j[1] = cmp_load(files[1]);
  int rc = 1;
  double v[2][CMP_NROWS];
  json_int_t tokens, runs, streams;
  if (!j[0] || !j[1]) goto out;
  if (!cmp_integer(j[0], files[0], "tokens", &tokens) ||
      !cmp_integer(j[0], files[0], "runs", &runs) ||
      !cmp_integer(j[0], files[0], "streams", &streams))
    goto out;
  for (int f = 0; f < 2; f++)
    for (size_t k = 0; k < CMP_NROWS; k++)
      if (!cmp_number(j[f], files[f], cmp_rows[k].key, &v[f][k])) goto out;

  /* everything checked: print the whole table */
  if (label) printf("%s, ", label);
  printf("%" JSON_INTEGER_FORMAT " tokens, mean of %" JSON_INTEGER_FORMAT " runs\n\n", tokens,
         runs);
  printf("| metric | switchyard | llama-server | ratio |\n|---|---|---|---|\n");
  for (size_t k = 0; k < CMP_NROWS; k++) {
    if (cmp_rows[k].name)
      printf("| %s", cmp_rows[k].name);
    else
      printf("| decode tok/s, %" JSON_INTEGER_FORMAT " streams (aggregate)", streams);
    printf(" | %.2f | %.2f | ", v[0][k], v[1][k]);
    if (v[1][k] != 0)
      printf("%.3f |\n", v[0][k] / v[1][k]);
    else
      printf("n/a |\n");
  }
  rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
  json_decref(j[0]);
  json_decref(j[1]);
  return rc;
}
