/* footprint_store.c — see footprint_store.h. The file is {"version":1,"models":{"KEY":BYTES,...}}.
 */
#include "sched/footprint_store.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "statedir.h"

#define FOOTPRINT_STORE_MAX_FILE (4 << 20)
#define FOOTPRINT_STORE_MAX_ENTRIES 10000

struct footprint_store {
  pthread_mutex_t mu;
  char *path;     /* NULL = memory only */
  json_t *models; /* object: key -> integer */
};

static void mkdirs(const char *dir) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(tmp, 0755);
    *p = '/';
  }
  mkdir(tmp, 0755);
}

void footprint_store_default_path(char *buf, size_t len) {
  char dir[PATH_MAX];
  sy_state_dir(dir, sizeof dir);
  snprintf(buf, len, "%s/measurements.json", dir);
}

footprint_store *footprint_store_open(const char *path) {
  footprint_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->mu, NULL);
  s->path = path ? strdup(path) : NULL;
  s->models = json_object();
  struct stat st;
  if (path && stat(path, &st) == 0) {
    json_error_t e;
    json_t *j = st.st_size <= FOOTPRINT_STORE_MAX_FILE
                    ? json_load_file(path, JSON_REJECT_DUPLICATES, &e)
                    : NULL;
    json_t *m = json_object_get(j, "models");
    const char *k;
    json_t *v;
    if (json_is_object(m)) {
      json_object_foreach(m, k, v) {
        if (json_is_integer(v) && json_integer_value(v) > 0 &&
            json_object_size(s->models) < FOOTPRINT_STORE_MAX_ENTRIES)
          json_object_set(s->models, k, v);
      }
    } else {
      LOG_W("%s: not a measurements file; starting afresh", path);
    }
    json_decref(j);
  }
  return s;
}

void footprint_store_close(footprint_store *s) {
  if (!s) return;
  json_decref(s->models);
  free(s->path);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

void footprint_store_key(const matrix_model *m, char *buf, size_t len) {
  struct stat st;
  long long size = -1, mtime = -1;
  if (stat(m->file, &st) == 0) {
    size = (long long)st.st_size;
    mtime = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  }
  snprintf(buf, len, "%s|%lld|%lld|ctx=%d|np=%d|b=%d|ngl=%d|%s", m->file, size, mtime, m->context,
           m->parallel, m->batch, m->gpu_layers,
           (m->caps & MATRIX_CAP_RERANK)  ? "rerank"
           : (m->caps & MATRIX_CAP_EMBED) ? "embed"
                                          : "generate");
  size_t at = strlen(buf);
  if (m->engine == MATRIX_ENGINE_EXTERNAL && at < len) /* no file: its name tells them apart */
    snprintf(buf + at, len - at, "|external=%s", m->name);
  at = strlen(buf);
  if (m->cpu_moe && at < len) /* experts in host RAM: another split (and a reload changes it) */
    snprintf(buf + at, len - at, "|cpu_moe=%d", m->cpu_moe);
  at = strlen(buf);
  if (m->mmproj && at < len) /* a projector (and its size) changes the footprint too */
    snprintf(buf + at, len - at, "|mmproj=%s|%lld", m->mmproj, m->mmproj_bytes);
  at = strlen(buf);
  if (m->n_rpc && at < len) { /* so do RPC servers (where the layers go): their list, hashed */
    uint64_t h = SY_FNV_OFFSET;
    for (size_t i = 0; i < m->n_rpc; i++) h = sy_fnv1a64(h, m->rpc[i], strlen(m->rpc[i]) + 1);
    snprintf(buf + at, len - at, "|rpc=%016llx", (unsigned long long)h);
  }
}

long long footprint_store_get(footprint_store *s, const char *key) {
  pthread_mutex_lock(&s->mu);
  json_t *v = json_object_get(s->models, key);
  long long b = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
  pthread_mutex_unlock(&s->mu);
  return b;
}

/* Write the file atomically (lock held). */
static int save(footprint_store *s) {
  if (!s->path) return 0;
  char dir[PATH_MAX], tmp[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s", s->path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    mkdirs(dir);
  }
  snprintf(tmp, sizeof tmp, "%s.tmp%d", s->path, (int)getpid());
  json_t *doc = json_pack("{s:i, s:O}", "version", 1, "models", s->models);
  int rc = doc && json_dump_file(doc, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) == 0 &&
                   rename(tmp, s->path) == 0
               ? 0
               : -1;
  if (rc != 0) {
    LOG_W("could not write %s: %s", s->path, strerror(errno));
    unlink(tmp);
  }
  json_decref(doc);
  return rc;
}

int footprint_store_put_max(footprint_store *s, const char *key, long long bytes) {
  if (bytes <= 0) return 0;
  pthread_mutex_lock(&s->mu);
  json_t *v = json_object_get(s->models, key);
  int rc = 0;
  bool room = v || json_object_size(s->models) < FOOTPRINT_STORE_MAX_ENTRIES;
  if (room && (!json_is_integer(v) || json_integer_value(v) < bytes)) {
    json_object_set_new(s->models, key, json_integer(bytes));
    rc = save(s);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}
