/* matrix_discover.c — the model matrix's discovery: the *.gguf files in the models folder that
 * the config does not name become models of their own (named after the file, capabilities and
 * context from the GGUF header, the settings from the config's defaults), sorted by name after
 * the configured ones. Split models count once (their first part); projectors and adapters are
 * not models, but a projector named "mmproj-<model>.gguf" (as `switchyard pull` names the one
 * that comes with a vision or audio model) is attached to <model>.
 *
 * This file must never let a bad file in the folder stop the daemon (it is skipped with a
 * warning), never let a discovered file take a name the config already uses, and never keep more
 * than MATRIX_MAX_MODELS models. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "config/matrix_int.h"

static int cmp_model_name(const void *a, const void *b) {
  return strcmp(((const matrix_model *)a)->name, ((const matrix_model *)b)->name);
}

/* The model name for a file name in the models folder, into name; false to skip the file.
 * "x.gguf" → "x"; split models "x-00001-of-00003.gguf" → "x", later parts skipped. */
static bool discover_name(const char *fname, char *name, size_t cap) {
  size_t n = strlen(fname);
  if (fname[0] == '.' || n <= 5 || strcmp(fname + n - 5, ".gguf") != 0) return false;
  if (!strncasecmp(fname, "mmproj", 6)) return false;
  n -= 5;
  /* "-NNNNN-of-NNNNN" */
  static const char pat[] = "-99999-of-99999";
  size_t k = sizeof pat - 1;
  if (n > k) {
    const char *t = fname + n - k;
    bool split = true;
    for (size_t i = 0; i < k && split; i++)
      split = pat[i] == '9' ? isdigit((unsigned char)t[i]) != 0 : t[i] == pat[i];
    if (split) {
      if (strncmp(t, "-00001-", 7) != 0) return false;
      n -= k;
    }
  }
  if (n >= cap) return false;
  memcpy(name, fname, n);
  name[n] = '\0';
  return true;
}

/* Attach "mmproj-<name>.gguf" from the models folder, when there is one, to the discovered model
 * mm: what it takes joins mm's capabilities. One that cannot be read is skipped with a warning;
 * one that generates speech is left alone (a speech model needs its config entry). -1: out of
 * memory. */
static int attach_mmproj(matrix *m, matrix_model *mm) {
  char fname[NAME_MAX_LEN + 16], path[PATH_MAX], real[PATH_MAX], perr[256];
  struct stat st;
  unsigned caps;
  bool speech;
  snprintf(fname, sizeof fname, "mmproj-%s.gguf", mm->name);
  if (mx_join_path(path, sizeof path, m->models_dir, fname) || !realpath(path, real) ||
      stat(real, &st) != 0 || !S_ISREG(st.st_mode))
    return 0;
  char type[sizeof mm->mmproj_type];
  if (mx_mmproj_probe(real, &caps, &speech, type, sizeof type, perr, sizeof perr)) {
    mx_warn(m, "not attaching %s to model '%s': it %s", path, mm->name, perr);
    return 0;
  }
  if (speech) {
    LOG_D("models dir: %s generates speech; not attached to '%s'", path, mm->name);
    return 0;
  }
  if (!(mm->mmproj = strdup(real))) return -1;
  mm->mmproj_bytes = (long long)st.st_size;
  memcpy(mm->mmproj_type, type, sizeof type);
  mx_caps_add_mmproj(mm, caps, false);
  return 0;
}

int mx_discover(matrix *m, const opts *dflt, char *err, size_t errlen) {
  DIR *d = opendir(m->models_dir);
  if (!d) {
    mx_set_err(err, errlen, "models dir '%s': %s", m->models_dir, strerror(errno));
    return -1;
  }
  matrix_model *found = NULL;
  size_t n_found = 0, n_configured = m->n_models;
  int rc = -1;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char name[NAME_MAX_LEN + 1], path[PATH_MAX], real[PATH_MAX], gerr[256];
    if (!discover_name(de->d_name, name, sizeof name)) {
      size_t dl = strlen(de->d_name);
      if (dl > 5 && !strcmp(de->d_name + dl - 5, ".gguf") && de->d_name[0] != '.' &&
          strncasecmp(de->d_name, "mmproj", 6) != 0 && strstr(de->d_name, "-of-") == NULL)
        mx_warn(m, "skipping %s/%s: the name is too long for a model name", m->models_dir,
                de->d_name);
      continue;
    }
    if (mx_join_path(path, sizeof path, m->models_dir, de->d_name) || !realpath(path, real))
      continue;
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    bool named = false;
    for (size_t i = 0; i < n_configured && !named; i++) named = !strcmp(m->models[i].file, real);
    if (named) continue;
    ghdr_info gi;
    if (ghdr_read_info(real, &gi, gerr, sizeof gerr)) {
      mx_warn(m, "skipping %s: not a readable GGUF: %s", path, gerr);
      continue;
    }
    if (gi.is_mmproj || gi.is_adapter) {
      LOG_D("models dir: %s is %s, not a model", path, gi.is_mmproj ? "an mmproj" : "an adapter");
      continue;
    }
    if (gi.n_tensors == 0) {
      mx_warn(m, "skipping %s: it has no tensors (a vocabulary-only GGUF?)", path);
      continue;
    }
    if (!mx_name_ok(name)) {
      mx_warn(m, "skipping %s: '%s' is not a valid model name (no spaces)", path, name);
      continue;
    }
    const matrix_model *o = matrix_find(m, name);
    if (o) {
      mx_warn(m, "skipping %s: the name '%s' is taken by model '%s' (%s)", path, name, o->name,
              o->source);
      continue;
    }
    if (n_configured + n_found >= MATRIX_MAX_MODELS) {
      mx_warn(m, "models dir %s: more than %d models, the rest are skipped", m->models_dir,
              MATRIX_MAX_MODELS);
      break;
    }
    matrix_model *nf = realloc(found, (n_found + 1) * sizeof *nf);
    if (!nf) goto oom;
    found = nf;
    matrix_model *mm = &found[n_found];
    memset(mm, 0, sizeof *mm);
    n_found++;
    static const opts none = OPTS_UNSET;
    if (!(mm->name = strdup(name)) || !(mm->source = strdup(real)) ||
        mx_model_finish(mm, &none, dflt, &gi, real, (long long)st.st_size))
      goto oom;
    mm->discovered = true;
    mm->max_queue = MATRIX_DEFAULT_MAX_QUEUE;
    mm->caps = mx_caps_default(&gi, NULL, NULL);
    if (attach_mmproj(m, mm)) goto oom;
  }
  if (n_found) qsort(found, n_found, sizeof *found, cmp_model_name);
  for (size_t i = 0; i < n_found; i++)
    if (mx_model_push(m, &found[i])) goto oom;
  rc = 0;
  goto out;
oom:
  mx_set_err(err, errlen, "models dir '%s': out of memory", m->models_dir);
out:
  for (size_t i = 0; i < n_found; i++) mx_model_clear(&found[i]);
  free(found);
  closedir(d);
  return rc;
}
