/* sched.c — see sched.h. One slot per model of the matrix, one mutex, one condition variable,
 * and a reaper thread that unloads models whose keep-alive has run out.
 * Must never stop a worker that has requests in flight (except at shutdown), never hold the lock
 * while spawning or stopping a process, and never drop a worker reference on its reader thread. */
#include "sched.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

enum slot_state { SLOT_UNLOADED = 0, SLOT_LOADING, SLOT_READY };

typedef struct slot {
  enum slot_state state;
  worker *w;          /* the scheduler's reference while loaded */
  json_t *ready;      /* the worker's "ready" message */
  int inflight;
  long long last_used_ms;
  unsigned load_gen;  /* bumped when a load ends (ok or not) */
  api_error last_err; /* of the last failed load */
} slot;

struct sched {
  const matrix *mx;
  char worker_exe[PATH_MAX];
  char log_level[16];
  int load_timeout_s;
  pthread_mutex_t mu;
  pthread_cond_t cond;  /* state changes */
  pthread_cond_t reaper_cond;
  pthread_t reaper;
  bool stopping;
  slot *slots;
};

static long long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static slot *slot_of(sched *s, const matrix_model *m) { return &s->slots[m - s->mx->models]; }

/* Take the worker out of a slot (lock held); the caller stops and unrefs it without the lock. */
static worker *slot_take(slot *sl) {
  worker *w = sl->w;
  sl->w = NULL;
  json_decref(sl->ready);
  sl->ready = NULL;
  sl->state = SLOT_UNLOADED;
  sl->inflight = 0; /* requests on the old worker release against a worker not in the slot */
  return w;
}

static void retire(worker *w, const char *name, const char *why) {
  if (!w) return;
  LOG_I("unloading %s (%s)", name, why);
  worker_stop(w, 5000);
  worker_unref(w);
}

static void *reaper_main(void *arg) {
  sched *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    long long now = mono_ms(), next = -1;
    for (size_t i = 0; i < s->mx->n_models; i++) {
      slot *sl = &s->slots[i];
      const matrix_model *m = &s->mx->models[i];
      if (sl->state != SLOT_READY || sl->inflight > 0) continue;
      bool dead = !worker_alive(sl->w);
      long long due = m->keep_alive_s < 0 ? -1 : sl->last_used_ms + (long long)m->keep_alive_s * 1000;
      if (dead || (due >= 0 && due <= now)) {
        worker *w = slot_take(sl);
        pthread_mutex_unlock(&s->mu);
        retire(w, m->name, dead ? "worker exited" : "keep-alive expired");
        pthread_mutex_lock(&s->mu);
        now = mono_ms();
        next = 0; /* rescan: the state may have changed while unlocked */
        break;
      }
      if (due >= 0 && (next < 0 || due < next)) next = due;
    }
    if (next == 0) continue;
    if (next < 0) {
      pthread_cond_wait(&s->reaper_cond, &s->mu);
    } else {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      long long add = next - now;
      ts.tv_sec += add / 1000;
      ts.tv_nsec += (add % 1000) * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&s->reaper_cond, &s->mu, &ts);
    }
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Called on a worker's reader thread when its process ends: only wake people up. */
static void on_worker_exit(void *ud, worker *w) {
  sched *s = ud;
  (void)w;
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->cond);
  pthread_cond_signal(&s->reaper_cond);
  pthread_mutex_unlock(&s->mu);
}

sched *sched_new(const sched_params *p) {
  sched *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->mx = p->mx;
  s->slots = calloc(p->mx->n_models ? p->mx->n_models : 1, sizeof *s->slots);
  snprintf(s->worker_exe, sizeof s->worker_exe, "%s/switchyard-llama", p->worker_dir);
  snprintf(s->log_level, sizeof s->log_level, "%s", p->log_level ? p->log_level : "info");
  s->load_timeout_s = p->load_timeout_s > 0 ? p->load_timeout_s : 600;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cond, NULL);
  pthread_cond_init(&s->reaper_cond, NULL);
  if (!s->slots || pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
    free(s->slots);
    free(s);
    return NULL;
  }
  return s;
}

static json_t *load_message(const matrix_model *m) {
  json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s}", "model", m->file, "n_ctx", m->context,
                        "n_parallel", m->parallel, "n_threads", m->threads, "n_batch", m->batch,
                        "n_gpu_layers", m->gpu_layers, "mode",
                        (m->caps & MATRIX_CAP_EMBED) ? "embed" : "generate");
  if (j && m->pooling) json_object_set_new(j, "pooling", json_string(m->pooling));
  if (j && m->chat_template) json_object_set_new(j, "chat_template", json_string(m->chat_template));
  if (j && m->deterministic) json_object_set_new(j, "deterministic", json_true());
  return j;
}

worker *sched_acquire(sched *s, const matrix_model *m, api_error *err) {
  slot *sl = slot_of(s, m);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    if (s->stopping) {
      pthread_mutex_unlock(&s->mu);
      api_error_set(err, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
      return NULL;
    }
    if (sl->state == SLOT_READY) {
      if (worker_alive(sl->w)) {
        sl->inflight++;
        sl->last_used_ms = mono_ms();
        worker *w = sl->w;
        worker_ref(w);
        pthread_mutex_unlock(&s->mu);
        return w;
      }
      /* It crashed: requests still on it get their error from the worker module and release
       * against a worker no longer in the slot; load a fresh one now. */
      worker *dead = slot_take(sl);
      pthread_mutex_unlock(&s->mu);
      retire(dead, m->name, "worker exited");
      pthread_mutex_lock(&s->mu);
      continue;
    }
    if (sl->state == SLOT_LOADING) {
      unsigned gen = sl->load_gen;
      while (sl->state == SLOT_LOADING && !s->stopping) pthread_cond_wait(&s->cond, &s->mu);
      if (sl->state == SLOT_UNLOADED && sl->load_gen != gen) { /* the shared load failed */
        *err = sl->last_err;
        pthread_mutex_unlock(&s->mu);
        return NULL;
      }
      continue;
    }
    /* SLOT_UNLOADED: this thread loads it; others wait. */
    sl->state = SLOT_LOADING;
    pthread_mutex_unlock(&s->mu);
    json_t *load = load_message(m);
    json_t *ready = NULL;
    worker_params wp = {.exe = s->worker_exe, .tag = m->name, .log_level = s->log_level, .load = load,
                        .load_timeout_s = s->load_timeout_s, .on_exit = on_worker_exit, .on_exit_ud = s};
    long long t0 = mono_ms();
    worker *w = worker_start(&wp, &ready, err);
    json_decref(load);
    pthread_mutex_lock(&s->mu);
    sl->load_gen++;
    if (!w) {
      sl->state = SLOT_UNLOADED;
      sl->last_err = *err;
      pthread_cond_broadcast(&s->cond);
      pthread_mutex_unlock(&s->mu);
      LOG_W("loading %s failed: %s", m->name, err->message);
      return NULL;
    }
    LOG_I("loaded %s in %lld ms (pid %d)", m->name, mono_ms() - t0, (int)worker_pid(w));
    sl->state = SLOT_READY;
    sl->w = w;
    sl->ready = ready;
    sl->last_used_ms = mono_ms();
    pthread_cond_broadcast(&s->cond);
    pthread_cond_signal(&s->reaper_cond);
    /* loop: the READY branch hands it out (or refuses it if we are stopping) */
  }
}

void sched_release(sched *s, const matrix_model *m, worker *w) {
  slot *sl = slot_of(s, m);
  worker *retired = NULL;
  pthread_mutex_lock(&s->mu);
  if (sl->w == w) {
    sl->inflight--;
    sl->last_used_ms = mono_ms();
    if (sl->inflight == 0 && m->keep_alive_s == 0) retired = slot_take(sl);
    pthread_cond_signal(&s->reaper_cond);
  }
  pthread_mutex_unlock(&s->mu);
  retire(retired, m->name, "keep_alive 0");
  worker_unref(w);
}

const char *sched_state(sched *s, const matrix_model *m) {
  static const char *names[] = {"unloaded", "loading", "loaded"};
  pthread_mutex_lock(&s->mu);
  const char *st = names[slot_of(s, m)->state];
  pthread_mutex_unlock(&s->mu);
  return st;
}

json_t *sched_ps(sched *s) {
  json_t *arr = json_array();
  pthread_mutex_lock(&s->mu);
  long long now = mono_ms();
  for (size_t i = 0; i < s->mx->n_models; i++) {
    slot *sl = &s->slots[i];
    const matrix_model *m = &s->mx->models[i];
    if (sl->state == SLOT_UNLOADED) continue;
    json_t *o = json_pack("{s:s, s:s, s:i}", "name", m->name, "state",
                          sl->state == SLOT_READY ? "loaded" : "loading", "inflight", sl->inflight);
    if (sl->state == SLOT_READY) {
      json_object_set_new(o, "pid", json_integer(worker_pid(sl->w)));
      long long exp = m->keep_alive_s < 0 ? -1
                      : sl->inflight ? (long long)m->keep_alive_s
                                     : (sl->last_used_ms + (long long)m->keep_alive_s * 1000 - now) / 1000;
      json_object_set_new(o, "expires_in_s", json_integer(exp));
      json_t *keys[] = {json_object_get(sl->ready, "n_ctx"), json_object_get(sl->ready, "n_parallel"),
                        json_object_get(sl->ready, "model_bytes")};
      const char *names[] = {"context", "parallel", "model_bytes"};
      for (int k = 0; k < 3; k++)
        if (keys[k]) json_object_set(o, names[k], keys[k]);
    }
    json_array_append_new(arr, o);
  }
  pthread_mutex_unlock(&s->mu);
  return json_pack("{s:o}", "models", arr);
}

void sched_shutdown(sched *s) {
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->cond);
  pthread_cond_signal(&s->reaper_cond);
  for (;;) { /* wait out loads in progress: their loader sees `stopping` and stops them */
    bool loading = false;
    for (size_t i = 0; i < s->mx->n_models; i++) loading |= s->slots[i].state == SLOT_LOADING;
    if (!loading) break;
    pthread_cond_wait(&s->cond, &s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->reaper, NULL);
  for (size_t i = 0; i < s->mx->n_models; i++) {
    pthread_mutex_lock(&s->mu);
    worker *w = s->slots[i].w ? slot_take(&s->slots[i]) : NULL;
    pthread_mutex_unlock(&s->mu);
    retire(w, s->mx->models[i].name, "shutdown");
  }
}

void sched_free(sched *s) {
  if (!s) return;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cond);
  pthread_cond_destroy(&s->reaper_cond);
  free(s->slots);
  free(s);
}
