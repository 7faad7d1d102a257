/* unit.h — what more than one unit test needs. Each tests/unit/test_*.c is a program of its own,
 * so everything here is static inline: every test gets its own copy, and one that uses none of it
 * pays nothing. Holds:
 *  - a fresh temp folder per test: ut_setup / ut_teardown (cmocka setup and teardown), ut_tmp()
 *    (its realpath), ut_path(rel), ut_write_text(rel, text);
 *  - GGUF headers: ut_gguf_open and the little-endian writers ut_w32, ut_w64, ut_wstr;
 *  - JSON written with ' for " (readability): ut_json;
 *  - a config written to the temp folder and loaded: ut_load_ok, ut_load_bad.
 * Must never: write outside the test's temp folder, or leave it behind after ut_teardown. */
#ifndef SY_TESTS_UNIT_H
#define SY_TESTS_UNIT_H

/* cmocka.h needs these before it */
/* clang-format off */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>

#include "config/matrix.h"

/* ---- the test's temp folder ----------------------------------------------------------------- */

/* The current test's folder (realpath'd), made fresh by ut_setup. */
static inline char *ut_tmp(void) {
  static char dir[PATH_MAX];
  return dir;
}

/* cmocka setup: a new folder under /tmp. */
static inline int ut_setup(void **state) {
  (void)state;
  char t[] = "/tmp/sy-unit-XXXXXX";
  if (!mkdtemp(t) || !realpath(t, ut_tmp())) return -1;
  return 0;
}

/* dir and everything below it, removed (links are removed, never followed). */
static inline void ut_rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char p[PATH_MAX + 256];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= sizeof p) continue;
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      ut_rm_tree(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

/* cmocka teardown: the folder removed. */
static inline int ut_teardown(void **state) {
  (void)state;
  ut_rm_tree(ut_tmp());
  return 0;
}

/* ut_tmp() + "/" + rel in a static rotating buffer (a test can hold four at once). */
static inline const char *ut_path(const char *rel) {
  static char bufs[4][PATH_MAX + 256];
  static int k;
  char *b = bufs[k++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", ut_tmp(), rel);
  return b;
}

/* text written to ut_path(rel), replacing it. */
static inline void ut_write_text(const char *rel, const char *text) {
  FILE *f = fopen(ut_path(rel), "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* ---- GGUF header pieces (little-endian) ----------------------------------------------------- */

static inline void ut_w32(FILE *f, uint32_t v) {
  unsigned char b[4] = {v, v >> 8, v >> 16, v >> 24};
  fwrite(b, 1, 4, f);
}

static inline void ut_w64(FILE *f, uint64_t v) {
  for (int i = 0; i < 8; i++) fputc((int)(v >> (8 * i)) & 0xff, f);
}

/* a GGUF string: its length (u64), then its bytes */
static inline void ut_wstr(FILE *f, const char *s) {
  ut_w64(f, strlen(s));
  fwrite(s, 1, strlen(s), f);
}

/* A new GGUF file at ut_path(rel) (replacing it), its header written: magic, version 3, n_tensors
 * and n_kv; the caller writes the n_kv pairs and closes it. */
static inline FILE *ut_gguf_open(const char *rel, uint64_t n_tensors, uint64_t n_kv) {
  FILE *f = fopen(ut_path(rel), "wb");
  assert_non_null(f);
  fwrite("GGUF", 1, 4, f);
  ut_w32(f, 3);
  ut_w64(f, n_tensors);
  ut_w64(f, n_kv);
  return f;
}

/* ---- JSON ----------------------------------------------------------------------------------- */

/* text with every ' turned into ", parsed (new reference); the test fails when it is not JSON. */
static inline json_t *ut_json(const char *text) {
  char *s = strdup(text);
  assert_non_null(s);
  for (char *p = s; *p; p++)
    if (*p == '\'') *p = '"';
  json_error_t je;
  json_t *j = json_loads(s, 0, &je);
  if (!j) fail_msg("bad test JSON: %s: %s", s, je.text);
  free(s);
  return j;
}

/* ---- configs -------------------------------------------------------------------------------- */

/* yaml as config.yaml in the temp folder, loaded: the matrix (the test fails when it is refused).
 */
static inline matrix *ut_load_ok(const char *yaml) {
  ut_write_text("config.yaml", yaml);
  char err[1024] = "";
  matrix *m = matrix_load(ut_path("config.yaml"), NULL, err, sizeof err);
  if (!m) fail_msg("expected success, got: %s", err);
  return m;
}

/* in with {D} replaced by the temp folder and {F} by the config's path, into out. */
static inline void ut_expand(const char *in, char *out, size_t cap) {
  size_t o = 0;
  while (*in && o + 1 < cap) {
    const char *rep = !strncmp(in, "{D}", 3)   ? ut_tmp()
                      : !strncmp(in, "{F}", 3) ? ut_path("config.yaml")
                                               : NULL;
    if (rep) {
      o += (size_t)snprintf(out + o, cap - o, "%s", rep);
      in += 3;
    } else {
      out[o++] = *in++;
    }
  }
  out[o < cap ? o : cap - 1] = '\0';
}

/* yaml as config.yaml must be refused with exactly "<config path>:" + want (ut_expand'ed). */
static inline void ut_load_bad(const char *yaml, const char *want) {
  ut_write_text("config.yaml", yaml);
  char err[1024] = "", exp[2048], full[2200];
  matrix *m = matrix_load(ut_path("config.yaml"), NULL, err, sizeof err);
  if (m) {
    matrix_free(m);
    fail_msg("accepted a bad config:\n%s", yaml);
  }
  ut_expand(want, exp, sizeof exp);
  snprintf(full, sizeof full, "%s:%s", ut_path("config.yaml"), exp);
  if (strcmp(err, full) != 0) fail_msg("config:\n%s\nwant: %s\ngot:  %s", yaml, full, err);
}

#endif
