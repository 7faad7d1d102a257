/* pull.c (api/) — POST /api/pull: fetch a model into the models folder (pull/pull.c) and add it
 * to the running daemon's matrix, Ollama's way: progress as NDJSON lines ({"status", "digest",
 * "total", "completed"}, then {"status":"success"}, or {"error"} as the last line) unless
 * "stream": false, which answers once. The download runs on a thread of its own; the HTTP thread
 * streams what it reports. A client that goes away cancels the download (the partial file stays
 * for a retry). The model joins the matrix through the same path as a reload (SIGHUP to this
 * process: main.c's reload), so loaded models stay loaded.
 *
 * DELETE /api/delete removes a model the models folder holds (below).
 *
 * Auth: both are admin actions (api.c's route table: an admin key when keys are configured).
 * Where from: the config's pull section, over it the environment (pull/pull.h). */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "pull/pull.h"

#define PULL_RELOAD_WAIT_S 30.0

typedef struct pull_job {
  sy_daemon *d;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sy_buf out;  /* NDJSON lines not yet sent */
  size_t sent; /* bytes of out sent */
  bool done;
  atomic_bool cancel;
  char ref[1024];
  char models_dir[4096];
  bool has_dir;
  /* the config's pull settings when the job started ("" / 0: none) */
  char hf_endpoint[MATRIX_MAX_PULL_SETTING + 1], hf_token[MATRIX_MAX_PULL_SETTING + 1];
  char registry[MATRIX_MAX_PULL_SETTING + 1];
  long long max_bytes;
} pull_job;

/* Append one JSON line (stolen) to the job's output and wake the HTTP thread. */
static void job_line(pull_job *j, json_t *o) {
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  pthread_mutex_lock(&j->mu);
  if (s) {
    if (j->sent == j->out.len) { /* all sent: start the buffer again */
      j->out.len = j->sent = 0;
      if (j->out.data) j->out.data[0] = '\0';
    }
    sy_buf_append(&j->out, s, strlen(s));
    sy_buf_append(&j->out, "\n", 1);
  }
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  free(s);
}

static void on_progress(void *ud, const char *status, const char *digest, long long total,
                        long long completed) {
  json_t *o = json_pack("{s:s}", "status", status);
  if (o && digest) json_object_set_new(o, "digest", json_string(digest));
  if (o && total >= 0) json_object_set_new(o, "total", json_integer(total));
  if (o && completed >= 0) json_object_set_new(o, "completed", json_integer(completed));
  job_line(ud, o);
}

/* After the files are in: a reload (the SIGHUP path), then the model should be in the matrix.
 * Waits for the model's name rather than for any new matrix: a reload another pull started
 * before this one's files were in may land first (signals coalesce, so the reload that follows
 * ours reads the folder after our rename). 0, or -1 with err. */
static int join_matrix(sy_daemon *d, const char *model, char *err, size_t errlen) {
  if (kill(getpid(), SIGHUP) != 0) {
    snprintf(err, errlen, "cannot signal the daemon to reload");
    return -1;
  }
  double t0 = sy_mono_s();
  while (!matrix_find(atomic_load(&d->mx), model) && sy_mono_s() - t0 < PULL_RELOAD_WAIT_S) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (!matrix_find(atomic_load(&d->mx), model)) {
    snprintf(err, errlen,
             "downloaded, but the daemon did not add a model named '%s' (see its log: the "
             "reload may have failed, or the config uses the name)",
             model);
    return -1;
  }
  return 0;
}

/* Runs the pull; the job's last line is "success" or an error. */
static int job_run(pull_job *j, pull_result *res) {
  pull_params p;
  pull_params_default(&p, *j->hf_endpoint ? j->hf_endpoint : NULL,
                      *j->hf_token ? j->hf_token : NULL, *j->registry ? j->registry : NULL,
                      j->max_bytes);
  p.models_dir = j->has_dir ? j->models_dir : NULL;
  p.progress = on_progress;
  p.ud = j;
  p.cancel = &j->cancel;
  if (pull_run(&p, j->ref, res) != 0) {
    LOG_W("pull %s: %s", j->ref, res->error);
    return -1;
  }
  on_progress(j, "writing manifest", NULL, -1, -1);
  if (join_matrix(j->d, res->model, res->error, sizeof res->error) != 0) {
    res->status = 500;
    LOG_W("pull %s: %s", j->ref, res->error);
    return -1;
  }
  LOG_I("pull %s: model '%s' added", j->ref, res->model);
  return 0;
}

static void *job_thread(void *arg) {
  pull_job *j = arg;
  pull_result res;
  if (job_run(j, &res) == 0)
    job_line(j, json_pack("{s:s, s:s}", "status", "success", "model", res.model));
  else
    job_line(j, json_pack("{s:s}", "error", res.error));
  pthread_mutex_lock(&j->mu);
  j->done = true;
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  return NULL;
}

static ssize_t job_stream(void *cls, char *buf, size_t max) {
  pull_job *j = cls;
  pthread_mutex_lock(&j->mu);
  while (j->sent == j->out.len && !j->done) pthread_cond_wait(&j->cv, &j->mu);
  ssize_t n = HTTP_STREAM_END;
  if (j->sent < j->out.len) {
    size_t k = j->out.len - j->sent < max ? j->out.len - j->sent : max;
    memcpy(buf, j->out.data + j->sent, k);
    j->sent += k;
    n = (ssize_t)k;
  }
  pthread_mutex_unlock(&j->mu);
  return n;
}

static void job_free(void *cls) {
  pull_job *j = cls;
  atomic_store(&j->cancel, true);
  pthread_join(j->th, NULL);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  sy_buf_free(&j->out);
  free(j);
}

static void reply_error(http_req *r, unsigned status, const char *msg) {
  http_reply_json(r, status, json_pack("{s:s}", "error", msg));
}

void api_pull_handle(sy_daemon *d, http_req *r, api_call *c) {
  json_t *m = json_object_get(c->req, "model");
  if (!m) m = json_object_get(c->req, "name"); /* Ollama's older field */
  const char *ref = json_string_value(m);
  if (!ref || !*ref || strlen(ref) >= 1024) {
    reply_error(r, 400, "'model' must name the model to pull (e.g. hf.co/org/repo:Q4_K_M)");
    return;
  }
  json_t *sv = json_object_get(c->req, "stream");
  bool stream = !json_is_false(sv);
  pull_job *j = calloc(1, sizeof *j);
  if (!j) {
    reply_error(r, 500, "out of memory");
    return;
  }
  j->d = d;
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  snprintf(j->ref, sizeof j->ref, "%s", ref);
  const char *dir = c->mx->models_dir;
  if (dir && strlen(dir) < sizeof j->models_dir) {
    snprintf(j->models_dir, sizeof j->models_dir, "%s", dir);
    j->has_dir = true;
  }
  snprintf(j->hf_endpoint, sizeof j->hf_endpoint, "%s",
           c->mx->pull_hf_endpoint ? c->mx->pull_hf_endpoint : "");
  snprintf(j->hf_token, sizeof j->hf_token, "%s", c->mx->pull_hf_token ? c->mx->pull_hf_token : "");
  snprintf(j->registry, sizeof j->registry, "%s", c->mx->pull_registry ? c->mx->pull_registry : "");
  j->max_bytes = c->mx->pull_max_bytes;
  if (!stream) {
    pull_result res;
    if (job_run(j, &res) == 0)
      http_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "success", "model", res.model));
    else
      reply_error(r, (unsigned)res.status, res.error);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    sy_buf_free(&j->out);
    free(j);
    return;
  }
  if (pthread_create(&j->th, NULL, job_thread, j) != 0) {
    free(j);
    reply_error(r, 500, "cannot start the download");
    return;
  }
  http_reply_stream(r, 200, "application/x-ndjson", job_stream, j, job_free);
}

/* ---- DELETE /api/delete ---- */

/* Remove name (a file name in dirfd's folder) if it is there; counts what went. */
static void remove_in(int dirfd, const char *name, int *n) {
  if (unlinkat(dirfd, name, 0) == 0) (*n)++;
}

/* Ollama's delete: {"model": NAME}. Only a model discovered in the models folder can go (a
 * configured one is the config's): its file, a split model's other parts, and the projector a
 * pull saved beside it (mmproj-NAME.gguf); then the reload path drops it from the matrix (a
 * loaded one drains first). Nothing outside the models folder is touched: the file must sit
 * directly in it. */
void api_delete_handle(sy_daemon *d, http_req *r, api_call *c) {
  if (strcmp(http_method(r), "DELETE") != 0) {
    http_add_header(r, "Allow", "DELETE");
    reply_error(r, 405, "/api/delete requires DELETE");
    return;
  }
  json_t *m = json_object_get(c->req, "model");
  if (!m) m = json_object_get(c->req, "name");
  const char *want = json_string_value(m);
  char name[PULL_MAX_NAME + 1];
  if (!want || !*want || strlen(want) > PULL_MAX_NAME) {
    reply_error(r, 400, "'model' must name the model to delete");
    return;
  }
  snprintf(name, sizeof name, "%s", want);
  size_t nl = strlen(name);
  if (nl > 7 && !strcmp(name + nl - 7, ":latest")) name[nl - 7] = '\0';
  const matrix *mx = c->mx;
  const matrix_model *mm = matrix_find(mx, name);
  if (!mm) {
    reply_error(r, 404, "model not found");
    return;
  }
  char dir[PATH_MAX], fdir[PATH_MAX];
  if (!mm->discovered || !mm->file || !mx->models_dir || !realpath(mx->models_dir, dir)) {
    reply_error(r, 400,
                "the model is named in the config, not a file of the models folder: "
                "remove it from the config");
    return;
  }
  snprintf(fdir, sizeof fdir, "%s", mm->file);
  char *slash = strrchr(fdir, '/');
  if (!slash || (*slash = '\0', strcmp(fdir, dir) != 0)) {
    reply_error(r, 400, "the model's file is not directly in the models folder");
    return;
  }
  const char *base = slash + 1;
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    reply_error(r, 500, "cannot open the models folder");
    return;
  }
  int removed = 0, idx, cnt;
  size_t sl;
  char part[PULL_MAX_NAME + 32];
  if (strlen(base) <= PULL_MAX_NAME && pull_split_of(base, &idx, &cnt, &sl)) {
    for (int i = 1; i <= cnt; i++) {
      snprintf(part, sizeof part, "%.*s-%05d-of-%05d.gguf", (int)sl, base, i, cnt);
      remove_in(dirfd, part, &removed);
    }
  } else {
    remove_in(dirfd, base, &removed);
  }
  snprintf(part, sizeof part, "mmproj-%s.gguf", name);
  remove_in(dirfd, part, &removed);
  close(dirfd);
  if (!removed) {
    reply_error(r, 500, "could not remove the model's file");
    return;
  }
  LOG_I("delete: model '%s' (%d file(s)) removed from %s", name, removed, dir);
  kill(getpid(), SIGHUP);
  double t0 = sy_mono_s();
  while (matrix_find(atomic_load(&d->mx), name) && sy_mono_s() - t0 < PULL_RELOAD_WAIT_S) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  http_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "success", "model", name));
}
