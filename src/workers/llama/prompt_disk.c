/* prompt_disk.c — the prompt cache on disk (prompt_disk.h): a folder of checked, atomically
 * written state files, least recently used out. Tested by tests/unit/test_prompt_disk.c. Must
 * never restore a file it has not checked whole, nor leave a half-written file under a final
 * name. */
#include "prompt_disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "slot_pick.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "prompt cache files are written in host order; this worker assumes a little-endian host"
#endif

#define PD_MAGIC "SYPCACHE"
#define PD_VERSION 1u

typedef struct pd_header {
  char magic[8];
  uint32_t version;
  uint32_t n_tokens;
  uint64_t key;
  int32_t n_reusable;
  uint32_t pad;
  uint64_t state_size;
  uint64_t checksum; /* FNV-1a over the tokens' bytes, then the state's */
} pd_header;

uint64_t pdisk_key(const char *identity) {
  return sy_fnv1a64(SY_FNV_OFFSET, identity, strlen(identity));
}

static void path_of(const pdisk *d, uint64_t name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%016llx.sypc", d->dir, (unsigned long long)name);
}

static void unindex(pdisk *d, size_t i) {
  d->bytes -= d->f[i].bytes;
  free(d->f[i].tokens);
  d->f[i] = d->f[--d->n];
}

/* A file found unusable: say why, delete it, count it. */
static void reject(pdisk *d, const char *path, const char *why) {
  LOG_W("prompt cache: ignoring %s: %s (deleted)", path, why);
  unlink(path);
  d->rejected++;
}

/* Read and check a header and the tokens after it from f (size: the file's). NULL + why. */
static int32_t *read_head(const pdisk *d, FILE *f, uint64_t size, pd_header *h, const char **why) {
  if (fread(h, sizeof *h, 1, f) != 1) {
    *why = "truncated (no header)";
    return NULL;
  }
  if (memcmp(h->magic, PD_MAGIC, sizeof h->magic) != 0 || h->version != PD_VERSION) {
    *why = "not a Switchyard prompt cache file of this version (foreign)";
    return NULL;
  }
  if (h->key != d->key) {
    *why = "made for another model file or other settings (stale)";
    return NULL;
  }
  if (h->n_tokens < 1 || h->n_tokens > PD_MAX_TOKENS || h->n_reusable < 0 ||
      (uint32_t)h->n_reusable > h->n_tokens || h->state_size > d->limit ||
      size != sizeof *h + (uint64_t)h->n_tokens * sizeof(int32_t) + h->state_size) {
    *why = "its sizes do not add up (truncated or damaged)";
    return NULL;
  }
  int32_t *t = malloc((size_t)h->n_tokens * sizeof *t);
  if (!t || fread(t, sizeof *t, h->n_tokens, f) != h->n_tokens) {
    free(t);
    *why = t ? "truncated (tokens)" : "out of memory";
    return NULL;
  }
  return t;
}

static int add(pdisk *d, pd_file nf) {
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 16;
    pd_file *g = realloc(d->f, cap * sizeof *g);
    if (!g) return -1;
    d->f = g;
    d->cap = cap;
  }
  d->f[d->n++] = nf;
  d->bytes += nf.bytes;
  return 0;
}

static bool older(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec != b->tv_sec ? a->tv_sec < b->tv_sec : a->tv_nsec < b->tv_nsec;
}

/* Delete least recently used files until `room` more bytes fit. */
static void make_room(pdisk *d, uint64_t room) {
  while (d->n && d->bytes + room > d->limit) {
    size_t lru = 0;
    for (size_t i = 1; i < d->n; i++)
      if (older(&d->f[i].used, &d->f[lru].used)) lru = i;
    char p[PATH_MAX + 32];
    path_of(d, d->f[lru].name, p, sizeof p);
    unlink(p);
    unindex(d, lru);
  }
}

static int mkdirs(const char *dir) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int pdisk_open(pdisk *d, const char *dir, uint64_t key, uint64_t limit, bool trim) {
  memset(d, 0, sizeof *d);
  d->key = key;
  d->limit = limit;
  d->trim = trim;
  if (!dir || !*dir || limit == 0 || strlen(dir) >= sizeof d->dir - 32) return 0;
  if (mkdirs(dir) != 0) {
    LOG_W("prompt cache: cannot make %s: %s (the disk cache is off)", dir, strerror(errno));
    return -1;
  }
  snprintf(d->dir, sizeof d->dir, "%s", dir);
  DIR *dh = opendir(dir);
  struct dirent *de;
  while (dh && (de = readdir(dh)) != NULL && d->n < PD_MAX_FILES) {
    char *end;
    unsigned long long name = strtoull(de->d_name, &end, 16);
    if (end != de->d_name + 16 || strcmp(end, ".sypc") != 0) continue; /* not ours (or a .tmp) */
    char p[PATH_MAX + 32];
    path_of(d, name, p, sizeof p);
    struct stat st;
    FILE *f = fopen(p, "rb");
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
      if (f) fclose(f);
      continue;
    }
    pd_header h;
    const char *why = NULL;
    int32_t *t = read_head(d, f, (uint64_t)st.st_size, &h, &why);
    fclose(f);
    if (!t) {
      reject(d, p, why);
      continue;
    }
    pd_file nf = {name, t, (int32_t)h.n_tokens, h.n_reusable, (uint64_t)st.st_size, st.st_mtim};
    if (add(d, nf) != 0) free(t);
  }
  if (dh) closedir(dh);
  make_room(d, 0); /* a smaller limit than last time */
  LOG_D("prompt cache: %zu files (%llu bytes) in %s", d->n, (unsigned long long)d->bytes, dir);
  return 0;
}

void pdisk_close(pdisk *d) {
  while (d->n) unindex(d, d->n - 1);
  free(d->f);
  d->f = NULL;
  d->cap = 0;
}

int pdisk_best(const pdisk *d, const int32_t *prompt, int32_t n_prompt, int32_t align,
               int32_t *keep) {
  int best = -1;
  *keep = 0;
  for (size_t i = 0; i < d->n; i++) {
    const pd_file *f = &d->f[i];
    int32_t m = sp_common_prefix(f->tokens, f->n_tokens, prompt, n_prompt);
    int32_t k = sp_keep(m, f->n_tokens, f->n_reusable, n_prompt, align, d->trim);
    if (k > *keep) {
      best = (int)i;
      *keep = k;
    }
  }
  return best;
}

int pdisk_read(pdisk *d, int i, pc_entry *out) {
  char p[PATH_MAX + 32];
  path_of(d, d->f[i].name, p, sizeof p);
  memset(out, 0, sizeof *out);
  FILE *f = fopen(p, "rb");
  struct stat st;
  pd_header h;
  const char *why = "cannot be opened";
  int32_t *t = NULL;
  void *state = NULL;
  if (f && fstat(fileno(f), &st) == 0 && (t = read_head(d, f, (uint64_t)st.st_size, &h, &why))) {
    why = "truncated (state)";
    state = malloc(h.state_size ? h.state_size : 1);
    if (state && fread(state, 1, h.state_size, f) == h.state_size) {
      uint64_t sum = sy_fnv1a64(sy_fnv1a64(SY_FNV_OFFSET, t, (size_t)h.n_tokens * sizeof *t), state,
                                h.state_size);
      why = sum == h.checksum ? NULL : "its checksum does not match (damaged)";
    }
  }
  if (f) fclose(f);
  if (why) {
    free(t);
    free(state);
    reject(d, p, why);
    unindex(d, (size_t)i);
    return -1;
  }
  utimensat(AT_FDCWD, p, NULL, 0); /* used now */
  clock_gettime(CLOCK_REALTIME, &d->f[i].used);
  *out = (pc_entry){t, (int32_t)h.n_tokens, h.n_reusable, state, h.state_size, 0};
  return 0;
}

int pdisk_write(pdisk *d, const int32_t *tokens, int32_t n_tokens, int32_t n_reusable,
                const void *state, size_t state_size) {
  if (!d->dir[0] || n_tokens < 1 || n_tokens > PD_MAX_TOKENS) return -1;
  pd_header h = {.version = PD_VERSION,
                 .n_tokens = (uint32_t)n_tokens,
                 .key = d->key,
                 .n_reusable = n_reusable,
                 .state_size = state_size};
  memcpy(h.magic, PD_MAGIC, sizeof h.magic);
  size_t tbytes = (size_t)n_tokens * sizeof *tokens;
  h.checksum = sy_fnv1a64(sy_fnv1a64(SY_FNV_OFFSET, tokens, tbytes), state, state_size);
  uint64_t size = sizeof h + tbytes + state_size;
  if (size > d->limit) return -1;
  uint64_t name =
      sy_fnv1a64(sy_fnv1a64(SY_FNV_OFFSET, tokens, tbytes), &n_reusable, sizeof n_reusable);
  for (size_t i = 0; i < d->n; i++)
    if (d->f[i].name == name) {
      unindex(d, i); /* replaced below */
      break;
    }
  make_room(d, size);
  char p[PATH_MAX + 32], tmp[PATH_MAX + 64];
  path_of(d, name, p, sizeof p);
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", p, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  bool ok = f && fwrite(&h, sizeof h, 1, f) == 1 && fwrite(tokens, 1, tbytes, f) == tbytes &&
            fwrite(state, 1, state_size, f) == state_size;
  if (f && fclose(f) != 0) ok = false;
  int32_t *t = ok ? malloc(tbytes) : NULL;
  if (!t || rename(tmp, p) != 0) {
    LOG_W("prompt cache: could not write %s: %s", p, strerror(errno));
    unlink(tmp);
    free(t);
    return -1;
  }
  memcpy(t, tokens, tbytes);
  pd_file nf = {name, t, n_tokens, n_reusable, size, {0, 0}};
  clock_gettime(CLOCK_REALTIME, &nf.used);
  if (add(d, nf) != 0) free(t);
  return 0;
}
