/* sy-jinja — render a chat template with a JSON context, for tests and differential checks.
 *   sy-jinja --template FILE --context CTX.json [--no-patch]
 * The template gets llama.cpp's two source patches first (jinja_llama_patch) unless --no-patch.
 * Prints the rendered text byte-exact (no added newline) and exits 0; on any error prints one
 * line to stderr and exits 1. SY_JINJA_NOW (unix seconds) fixes strftime_now's clock. */
#include "jinja.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (n == cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    size_t k = fread(buf + n, 1, cap - n, f);
    n += k;
    if (k == 0) break;
  }
  if (buf && ferror(f)) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  const char *tpath = NULL, *cpath = NULL;
  int patch = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--no-patch"))
      patch = 0;
    else if (!strcmp(argv[i], "--template") && i + 1 < argc)
      tpath = argv[++i];
    else if (!strcmp(argv[i], "--context") && i + 1 < argc)
      cpath = argv[++i];
    else {
      fprintf(stderr, "usage: sy-jinja --template FILE --context CTX.json [--no-patch]\n");
      return 1;
    }
  }
  if (!tpath || !cpath) {
    fprintf(stderr, "usage: sy-jinja --template FILE --context CTX.json [--no-patch]\n");
    return 1;
  }
  size_t tlen;
  char *src = slurp(tpath, &tlen);
  if (!src) {
    fprintf(stderr, "sy-jinja: cannot read %s\n", tpath);
    return 1;
  }
  if (patch) {
    char *p = jinja_llama_patch(src, tlen, &tlen);
    free(src);
    if (!p) {
      fprintf(stderr, "sy-jinja: out of memory\n");
      return 1;
    }
    src = p;
  }
  json_error_t jerr;
  json_t *ctx = json_load_file(cpath, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (!ctx) {
    fprintf(stderr, "sy-jinja: %s: %d:%d: %s\n", cpath, jerr.line, jerr.column, jerr.text);
    free(src);
    return 1;
  }
  char err[1024];
  jinja_tmpl *t = jinja_parse(src, tlen, err, sizeof(err));
  free(src);
  if (!t) {
    fprintf(stderr, "%s\n", err);
    json_decref(ctx);
    return 1;
  }
  char *out;
  size_t olen;
  int rc = jinja_render(t, ctx, NULL, &out, &olen, err, sizeof(err));
  jinja_free(t);
  json_decref(ctx);
  if (rc) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int ok = fwrite(out, 1, olen, stdout) == olen && fflush(stdout) == 0;
  free(out);
  return ok ? 0 : 1;
}
