/* pull.c — the downloader behind `switchyard pull` and POST /api/pull (see pull.h): resolve a
 * reference to files (a hub repo's file list, or a registry's manifest), check the size limit
 * and the disk space, then fetch each file to NAME.partial with libcurl (Range resume after a
 * broken transfer, in this call or a later one), check its size and sha256 (OpenSSL's libcrypto),
 * and rename it into the models folder. Every file is created with openat() under the models
 * folder's descriptor, by a name that went through pull_safe_name and O_NOFOLLOW: nothing is ever
 * written elsewhere. The one piece of process state is the table of files being downloaded, so
 * that two pulls of the same file share one download. */
#include "pull/pull.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define PULL_MAX_ACTIVE 64
#define PULL_REDIRECTS 5

/* Files being downloaded in this process, by name in the models folder. */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char names[PULL_MAX_ACTIVE][PULL_MAX_NAME + 1];
  bool used[PULL_MAX_ACTIVE];
} pull_active = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, {0}};

static int res_fail(pull_result *res, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->error, sizeof res->error, fmt, ap);
  va_end(ap);
  res->status = status;
  return -1;
}

/* The environment's value of a (else of b), when set and not empty; else dflt. */
static const char *env_or(const char *a, const char *b, const char *dflt) {
  const char *e = getenv(a);
  if ((!e || !*e) && b) e = getenv(b);
  return e && *e ? e : dflt;
}

void pull_params_default(pull_params *p, const char *hf_endpoint, const char *hf_token,
                         const char *registry, long long max_bytes) {
  memset(p, 0, sizeof *p);
  p->hf_endpoint = env_or("SWITCHYARD_HF_ENDPOINT", "HF_ENDPOINT",
                          hf_endpoint ? hf_endpoint : "https://huggingface.co");
  p->hf_token = env_or("SWITCHYARD_HF_TOKEN", "HF_TOKEN", hf_token);
  p->registry =
      env_or("SWITCHYARD_REGISTRY", NULL, registry ? registry : "https://registry.ollama.ai");
  const char *e = getenv("SWITCHYARD_PULL_MAX_BYTES");
  p->max_bytes = e && *e ? strtoll(e, NULL, 10) : max_bytes;
  p->reserve_bytes = 64LL << 20;
  p->attempts = 4;
}

static void progress(const pull_params *p, const char *status, const char *digest, long long total,
                     long long done) {
  if (p->progress) p->progress(p->ud, status, digest, total, done);
}

static bool cancelled(const pull_params *p) { return p->cancel && atomic_load(p->cancel); }

static void curl_common(CURL *c, const char *url, struct curl_slist *hdrs) {
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)PULL_REDIRECTS);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer breaks after 60 s */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "switchyard-pull/0.1");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
}

/* An error for an HTTP status from a server, in words a user acts on. */
static int http_fail(pull_result *res, long code, const char *what, const char *url) {
  if (code == 401 || code == 403)
    return res_fail(res, 401,
                    "%s: unauthorized (HTTP %ld): the repository is gated or private; set HF_TOKEN "
                    "to a token that may read it (%s)",
                    what, code, url);
  if (code == 404) return res_fail(res, 404, "%s: not found (HTTP 404 from %s)", what, url);
  return res_fail(res, 502, "%s: the server answered HTTP %ld (%s)", what, code, url);
}

static size_t on_small(char *data, size_t sz, size_t n, void *ud) {
  sy_buf *b = ud;
  if (b->len + sz * n > PULL_MAX_LIST) return 0;
  return sy_buf_append(b, data, sz * n) == 0 ? sz * n : 0;
}

/* GET url into b (at most PULL_MAX_LIST bytes). */
static int fetch_small(const char *url, struct curl_slist *hdrs, sy_buf *b, const char *what,
                       pull_result *res) {
  CURL *c = curl_easy_init();
  if (!c) return res_fail(res, 500, "out of memory");
  curl_common(c, url, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_small);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  CURLcode cc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  if (cc == CURLE_OK && code == 200) return 0;
  if (cc == CURLE_OK || code >= 400) return http_fail(res, code, what, url);
  return res_fail(res, 502, "%s: %s (%s)", what, curl_easy_strerror(cc), url);
}

/* ---- one file ---- */

typedef struct dl {
  const pull_params *p;
  CURL *c;
  int fd;
  long long have, size; /* bytes in the partial file; expected size (-1: unknown) */
  const char *digest, *label;
  bool refused; /* an error status, or more bytes than expected: nothing written */
  bool started; /* this transfer's first bytes were written */
  double last;
} dl;

static size_t on_data(char *data, size_t sz, size_t n, void *ud) {
  dl *d = ud;
  size_t len = sz * n;
  long code = 0;
  curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200 && code != 206) {
    d->refused = true;
    return 0;
  }
  if (!d->started && code == 200 && d->have > 0) { /* the server ignored Range: start over */
    if (ftruncate(d->fd, 0) != 0) return 0;
    d->have = 0;
  }
  d->started = true;
  if (d->size >= 0 && d->have + (long long)len > d->size) {
    d->refused = true;
    return 0;
  }
  for (size_t off = 0; off < len;) {
    ssize_t w = write(d->fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 0;
    off += (size_t)w;
  }
  d->have += (long long)len;
  return len;
}

static int on_xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  dl *d = ud;
  if (cancelled(d->p)) return 1;
  double now = 0;
  curl_easy_getinfo(d->c, CURLINFO_TOTAL_TIME, &now);
  if (now - d->last >= 0.25) {
    d->last = now;
    progress(d->p, d->label, d->digest, d->size, d->have);
  }
  return 0;
}

/* sha256 of the file at fd (read from its start), as lowercase hex into hex[65]. */
static int sha256_fd(int fd, char hex[65]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return -1;
  }
  static _Thread_local unsigned char buf[1 << 16];
  off_t off = 0;
  for (;;) {
    ssize_t r = pread(fd, buf, sizeof buf, off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      EVP_MD_CTX_free(ctx);
      return -1;
    }
    if (r == 0) break;
    EVP_DigestUpdate(ctx, buf, (size_t)r);
    off += r;
  }
  unsigned char md[32];
  unsigned int mdl = 0;
  EVP_DigestFinal_ex(ctx, md, &mdl);
  EVP_MD_CTX_free(ctx);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  return 0;
}

/* Wait until no other pull downloads name, then claim it. -1 when the table is full. */
static int claim(const char *name) {
  pthread_mutex_lock(&pull_active.mu);
  for (;;) {
    bool busy = false;
    for (int i = 0; i < PULL_MAX_ACTIVE && !busy; i++)
      busy = pull_active.used[i] && !strcmp(pull_active.names[i], name);
    if (!busy) break;
    pthread_cond_wait(&pull_active.cv, &pull_active.mu);
  }
  int slot = -1;
  for (int i = 0; i < PULL_MAX_ACTIVE && slot < 0; i++)
    if (!pull_active.used[i]) slot = i;
  if (slot >= 0) {
    pull_active.used[slot] = true;
    snprintf(pull_active.names[slot], sizeof pull_active.names[slot], "%s", name);
  }
  pthread_mutex_unlock(&pull_active.mu);
  return slot;
}

static void unclaim(int slot) {
  pthread_mutex_lock(&pull_active.mu);
  pull_active.used[slot] = false;
  pthread_cond_broadcast(&pull_active.cv);
  pthread_mutex_unlock(&pull_active.mu);
}

/* Fetch f from url into dest (a safe name) under dirfd. */
static int fetch_file(const pull_params *p, int dirfd, const char *url, struct curl_slist *hdrs,
                      const pull_file *f, const char *dest, pull_result *res) {
  char part[PULL_MAX_NAME + 16], label[PULL_MAX_NAME + 16], digest[72];
  snprintf(part, sizeof part, "%s.partial", dest);
  snprintf(label, sizeof label, "pulling %s", dest);
  snprintf(digest, sizeof digest, "sha256:%s", f->sha256);
  struct stat st;
  if (fstatat(dirfd, dest, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
      st.st_size == f->size) {
    progress(p, label, digest, f->size, f->size); /* already here (from an earlier pull) */
    return 0;
  }
  int fd = openat(dirfd, part, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return res_fail(res, 500, "cannot create %s: %s", part, strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return res_fail(res, 500, "%s is not a regular file", part);
  }
  dl d = {.p = p, .fd = fd, .have = st.st_size, .size = f->size, .digest = digest, .label = label};
  if (d.have > f->size && ftruncate(fd, 0) == 0) d.have = 0;
  int rc = -1;
  for (int attempt = 0; d.have < f->size; attempt++) {
    if (attempt >= (p->attempts > 0 ? p->attempts : 1)) {
      res_fail(res, 502, "%s: the transfer broke %d times; run the pull again to resume", dest,
               attempt);
      goto out;
    }
    if (attempt) LOG_W("pull: %s broke at %lld of %lld bytes, resuming", dest, d.have, f->size);
    d.c = curl_easy_init();
    if (!d.c) {
      res_fail(res, 500, "out of memory");
      goto out;
    }
    curl_common(d.c, url, hdrs);
    curl_easy_setopt(d.c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)d.have);
    curl_easy_setopt(d.c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(d.c, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(d.c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(d.c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(d.c, CURLOPT_XFERINFODATA, &d);
    d.refused = d.started = false;
    d.last = 0;
    CURLcode cc = curl_easy_perform(d.c);
    long code = 0;
    curl_easy_getinfo(d.c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(d.c);
    d.c = NULL;
    if (cancelled(p)) {
      res_fail(res, 499, "%s: cancelled (the partial file is kept for a retry)", dest);
      goto out;
    }
    if (code == 416) break; /* nothing left to send: the size check below decides */
    if (code >= 400) {
      http_fail(res, code, dest, url);
      goto out;
    }
    if (d.refused) {
      res_fail(res, 502, "%s: the server sent more than the expected %lld bytes", dest, f->size);
      if (ftruncate(fd, 0) != 0) LOG_W("pull: cannot truncate %s", part);
      goto out;
    }
    if (cc == CURLE_OK && d.have < f->size) {
      res_fail(res, 502, "%s: the server sent %lld of %lld bytes", dest, d.have, f->size);
      goto out;
    }
  }
  progress(p, label, digest, f->size, d.have);
  progress(p, "verifying sha256 digest", digest, -1, -1);
  char got[65];
  if (d.have != f->size || sha256_fd(fd, got) != 0 || strcmp(got, f->sha256) != 0) {
    unlinkat(dirfd, part, 0); /* it can never become right: start over next time */
    if (d.have != f->size)
      res_fail(res, 502, "%s: size mismatch (got %lld bytes, expected %lld); nothing installed",
               dest, d.have, f->size);
    else
      res_fail(res, 502, "%s: checksum mismatch (expected sha256 %s, got %s); nothing installed",
               dest, f->sha256, got);
    goto out;
  }
  if (fsync(fd) != 0 || renameat(dirfd, part, dirfd, dest) != 0) {
    res_fail(res, 500, "cannot install %s: %s", dest, strerror(errno));
    goto out;
  }
  fsync(dirfd);
  rc = 0;
out:
  close(fd);
  return rc;
}

/* ---- a whole pull ---- */

typedef struct item {
  pull_file f;
  char url[2048];
  char dest[PULL_MAX_NAME + 1];
} item;

/* The files of a hub reference. */
static int plan_hub(const pull_params *p, const pull_ref *r, struct curl_slist *hdrs, item *items,
                    size_t *n, pull_result *res) {
  char url[2048], err[512];
  snprintf(url, sizeof url, "%s/api/models/%s/%s/tree/main?recursive=true", p->hf_endpoint, r->org,
           r->repo);
  sy_buf b = {0};
  if (fetch_small(url, hdrs, &b, "the repository's file list", res) != 0) {
    sy_buf_free(&b);
    return -1;
  }
  pull_file *files = calloc(PULL_MAX_FILES, sizeof *files);
  if (!files) {
    sy_buf_free(&b);
    return res_fail(res, 500, "out of memory");
  }
  size_t nf = 0, pick[PULL_MAX_PICK];
  int rc = pull_hf_list_parse(b.data, b.len, files, PULL_MAX_FILES, &nf, err, sizeof err);
  sy_buf_free(&b);
  int np = 0;
  if (rc == 0 && r->kind == PULL_HF_FILE) {
    for (size_t i = 0; i < nf && np == 0; i++)
      if (!strcmp(files[i].path, r->file)) pick[np++] = i;
    if (np == 0) rc = res_fail(res, 404, "%s/%s has no file %s", r->org, r->repo, r->file);
  } else if (rc == 0) {
    np = pull_hf_pick(files, nf, r->tag, pick, err, sizeof err);
    if (np < 0) rc = res_fail(res, 404, "%s/%s: %s", r->org, r->repo, err);
  } else {
    res_fail(res, 502, "%s", err);
  }
  char stem[PULL_MAX_NAME + 1] = "";
  for (int i = 0; rc == 0 && i < np; i++) {
    item *it = &items[i];
    it->f = files[pick[i]];
    if (!it->f.sha256[0]) {
      rc = res_fail(res, 502, "%s: the hub gave no sha256 for it (not an LFS file)", it->f.path);
      break;
    }
    snprintf(it->url, sizeof it->url, "%s/%s/%s/resolve/main/%s", p->hf_endpoint, r->org, r->repo,
             it->f.path);
    char name[PULL_MAX_NAME + 1];
    if (pull_safe_name(it->f.path, name, sizeof name) != 0) {
      rc = res_fail(res, 502, "the repo's file name '%.200s' is not safe", it->f.path);
      break;
    }
    if (i == 0) {
      size_t sl;
      snprintf(stem, sizeof stem, "%s", name);
      stem[pull_split_of(name, NULL, NULL, &sl) ? sl : strlen(name) - 5] = '\0';
    }
    if (it->f.mmproj) /* named after its model, so two repos' "mmproj-F16.gguf" never collide */
      snprintf(name, sizeof name, "mmproj-%.*s.gguf", PULL_MAX_NAME - 12, stem);
    snprintf(it->dest, sizeof it->dest, "%s", name);
  }
  free(files);
  snprintf(res->model, sizeof res->model, "%s", stem);
  *n = rc == 0 ? (size_t)np : 0;
  return rc;
}

/* The files of a registry reference. */
static int plan_registry(const pull_params *p, const pull_ref *r, item *items, size_t *n,
                         pull_result *res) {
  char url[2048], err[512];
  snprintf(url, sizeof url, "%s/v2/%s/%s/manifests/%s", p->registry, r->org, r->repo, r->tag);
  struct curl_slist *h =
      curl_slist_append(NULL, "Accept: application/vnd.docker.distribution.manifest.v2+json");
  sy_buf b = {0};
  int rc = fetch_small(url, h, &b, "the manifest", res);
  curl_slist_free_all(h);
  pull_file files[2];
  size_t nf = 0;
  if (rc == 0 && pull_manifest_parse(b.data, b.len, files, &nf, err, sizeof err) != 0)
    rc = res_fail(res, 502, "%s: %s", url, err);
  sy_buf_free(&b);
  if (rc) return rc;
  char stem[320];
  if (!strcmp(r->org, "library"))
    snprintf(stem, sizeof stem, "%s%s%s", r->repo, strcmp(r->tag, "latest") ? "-" : "",
             strcmp(r->tag, "latest") ? r->tag : "");
  else
    snprintf(stem, sizeof stem, "%s-%s%s%s", r->org, r->repo, strcmp(r->tag, "latest") ? "-" : "",
             strcmp(r->tag, "latest") ? r->tag : "");
  for (size_t i = 0; i < nf; i++) {
    items[i].f = files[i];
    snprintf(items[i].url, sizeof items[i].url, "%s/v2/%s/%s/blobs/%s", p->registry, r->org,
             r->repo, files[i].path);
    char want[PULL_MAX_NAME + 8];
    snprintf(want, sizeof want, "%s%.180s.gguf", files[i].mmproj ? "mmproj-" : "", stem);
    if (pull_safe_name(want, items[i].dest, sizeof items[i].dest) != 0)
      return res_fail(res, 400, "'%s' makes no safe file name", stem);
  }
  snprintf(res->model, sizeof res->model, "%.180s", stem);
  *n = nf;
  return 0;
}

int pull_run(const pull_params *p, const char *ref, pull_result *res) {
  memset(res, 0, sizeof *res);
  pull_ref r;
  char err[512];
  if (pull_ref_parse(ref, &r, err, sizeof err) != 0) return res_fail(res, 400, "%s", err);
  if (!p->models_dir) return res_fail(res, 400, "the daemon has no models folder (--models-dir)");
  int dirfd = open(p->models_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return res_fail(res, 500, "models folder %s: %s", p->models_dir, strerror(errno));
  struct curl_slist *hdrs = NULL;
  char auth[1024];
  if (r.kind != PULL_REGISTRY && p->hf_token) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->hf_token);
    hdrs = curl_slist_append(NULL, auth);
  }
  item *items = calloc(PULL_MAX_PICK, sizeof *items);
  size_t n = 0;
  int rc = -1;
  if (!items) {
    res_fail(res, 500, "out of memory");
    goto out;
  }
  progress(p, "pulling manifest", NULL, -1, -1);
  if ((r.kind == PULL_REGISTRY ? plan_registry(p, &r, items, &n, res)
                               : plan_hub(p, &r, hdrs, items, &n, res)) != 0)
    goto out;
  /* what is still to come, against the limit and the disk */
  long long total = 0, need = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    total += items[i].f.size;
    long long have = 0;
    char part[PULL_MAX_NAME + 16];
    snprintf(part, sizeof part, "%s.partial", items[i].dest);
    if (fstatat(dirfd, items[i].dest, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_size == items[i].f.size)
      have = st.st_size;
    else if (fstatat(dirfd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_size <= items[i].f.size)
      have = st.st_size;
    need += items[i].f.size - have;
  }
  if (p->max_bytes > 0 && total > p->max_bytes) {
    res_fail(res, 507, "%s is %lld bytes, over the pull size limit of %lld bytes", ref, total,
             p->max_bytes);
    goto out;
  }
  struct statvfs vs;
  if (fstatvfs(dirfd, &vs) == 0) {
    long long avail = (long long)vs.f_bavail * (long long)vs.f_frsize;
    if (need + p->reserve_bytes > avail) {
      res_fail(res, 507, "not enough disk space in %s: the pull needs %lld bytes, %lld are free",
               p->models_dir, need + p->reserve_bytes, avail);
      goto out;
    }
  }
  for (size_t i = 0; i < n; i++) {
    int slot = claim(items[i].dest);
    if (slot < 0) {
      res_fail(res, 503, "too many pulls at once");
      goto out;
    }
    int frc = fetch_file(p, dirfd, items[i].url, r.kind == PULL_REGISTRY ? NULL : hdrs, &items[i].f,
                         items[i].dest, res);
    unclaim(slot);
    if (frc != 0) goto out;
  }
  rc = 0;
out:
  free(items);
  curl_slist_free_all(hdrs);
  close(dirfd);
  return rc;
}
