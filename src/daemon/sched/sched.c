/* sched.c — see sched.h. One slot per model of the matrix (plus, after a reload, "draining" slots:
 * models whose definition went away while loaded, serving their requests in flight before they
 * unload), one mutex, one condition variable for every state change, a reaper thread for
 * keep-alive expiry, a preloader thread for pinned and preloaded models. Decisions come from
 * plan_decide (sched/plan.c); this file only gathers state and carries them out. Must never stop a
 * worker that has requests in flight (except at shutdown), never hold the lock while spawning or
 * stopping a process (or sending to one), never count a model's memory as free before its process
 * is gone, never give a worker a prompt-cache limit larger than its slot counts (a cut is made in
 * the slot and told to the worker before the load that needs the room starts; a raise is made in
 * the slot, then told), and never drop a worker reference on its reader thread. */
#include "sched/sched.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "hash.h"
#include "log.h"
#include "statedir.h"
#include "sched/footprint.h"
#include "clock.h"
#include "sched/cpu_share.h"
#include "obs/events.h"
#include "sched/gpumem.h"
#include "sched/footprint_store.h"
#include "obs/metrics.h"
#include "sched/plan.h"

enum slot_state { SLOT_UNLOADED = 0, SLOT_LOADING, SLOT_READY, SLOT_UNLOADING };

typedef struct slot {
  const matrix_model *m; /* its definition (kept valid: old matrices live until sched_free) */
  bool draining;         /* gone from the matrix (or changed): serves what it has, then unloads */
  int row;               /* its metrics row */
  enum slot_state state;
  worker *w;     /* the scheduler's reference while loaded */
  json_t *ready; /* the worker's "ready" message */
  int inflight;
  int queued; /* requests waiting in sched_acquire for this model */
  long long last_used_ms;
  unsigned load_gen;     /* bumped when a load ends (ok or not) */
  api_error last_err;    /* of the last failed load */
  int fails;             /* failed loads in a row (back-off grows with it) */
  long long retry_at_ms; /* no new load attempt before this (back-off after a failure) */
  footprint_est est;     /* estimated before load */
  long long measured; /* largest resident set seen (bytes; remembered across restarts), 0 = never */
  long long est_pool[PLAN_MAX_POOLS];  /* the estimate per memory pool ([0] = host RAM) */
  long long meas_pool[PLAN_MAX_POOLS]; /* the largest use measured per GPU pool ([0] unused:
                                          `measured`) */
  char key[PATH_MAX + 160];            /* footprint_store key: file identity + settings */
  long long loaded_at_ms; /* when it became ready (the thrash guard counts from here) */
  long long rss_at_ms;    /* when the resident set was last read */
  bool ka_set;            /* a request set the keep-alive (ka_s) */
  int threads_now;        /* threads last told to its worker (cpu_share.h); 0 = as loaded */
  int ka_s;
  long long cache_limit; /* bytes the budget counts for its prompt cache now (≤ slot_cache_max);
                            0 when not loaded */
  long long cache_told;  /* the limit its worker was last given (load message or cache_limit) */
} slot;

struct sched {
  const matrix *mx; /* the current matrix */
  matrix **old_mx;  /* matrices replaced by reloads: requests may still hold their models */
  size_t n_old_mx;
  pthread_mutex_t reload_mu; /* one reload at a time */
  char worker_exe[PATH_MAX]; /* switchyard-llama (also the device probe) */
  char worker_dir[PATH_MAX];
  char log_level[16];
  int load_timeout_s;
  long long budget; /* configured (or RAM − reserve) */
  long long
      live_budget; /* min(budget, what is really free + ours − reserve), refreshed before loads */
  pthread_mutex_t mu;
  pthread_mutex_t tell_mu; /* one cache_tell at a time (taken without mu, then mu inside it) */
  pthread_cond_t cond;     /* any state change: loads, unloads, releases */
  pthread_cond_t reaper_cond;
  pthread_t reaper;
  pthread_t preloader;
  bool preloading;
  unsigned preload_gen; /* bumped to make the preloader look again (start, reload) */
  bool stopping;
  slot **slots; /* n_slots, stable pointers; active ones first come in matrix order */
  size_t n_slots, cap_slots;
  char tool[PATH_MAX + 32]; /* llama-fit-params */
  long long tool_stamp;     /* its mtime: estimates are remembered per estimator build */
  footprint_store *ms;      /* remembered measurements */
  json_t *devices;          /* what the engine build sees ({"devices":[...]}), or NULL */
  metrics *mt;        /* GET /metrics: counters and histograms (gauges are read from the slots) */
  events *ev;         /* GET /api/events: loads and unloads as they happen */
  plan_model *plan;   /* scratch for plan_decide, guarded by mu */
  size_t n_pools;     /* memory pools: [0] the host's RAM, then each GPU with memory of its own */
  int ncpu;           /* the cores workers share (cpu_share.h) */
  bool cpu_share_off; /* SWITCHYARD_CPU_SHARE=off */
  struct pool {
    char name[FOOTPRINT_DEV_NAME];      /* "Host", or the engine's device name ("CUDA0", "Vulkan1",
                                           ...), or an RPC server's device: "RPC<k>[host:port]" */
    char endpoint[SY_ENDPOINT_MAX + 1]; /* an RPC server's device: the server, else "" */
    int rpc_device;                     /* an RPC server's device: its index on that server */
    int nv;                             /* NVML index, -1 = none (live numbers unknown) */
    long long total;  /* bytes, from the device probe at start (an RPC server's device: the free
                         memory it reported when first reached) */
    long long budget; /* configured, or total − reserve */
    long long live;   /* min(budget, free now + ours − reserve) when the driver tells */
  } pools[PLAN_MAX_POOLS];
  long long guard_wake_ms; /* set by decide(): when the earliest thrash guard ends, 0 = none */
  plan_decision decision;
};

static void sched_free_parts(sched *s);

/* The active (not draining) slot serving model `name` now, or NULL (lock held). Requests may hold
 * a model of an older matrix: the name is what identifies it. */
static slot *slot_find(sched *s, const char *name) {
  for (size_t i = 0; i < s->n_slots; i++)
    if (!s->slots[i]->draining && strcmp(s->slots[i]->m->name, name) == 0) return s->slots[i];
  return NULL;
}

static size_t slot_index(const sched *s, const slot *sl) {
  for (size_t i = 0; i < s->n_slots; i++)
    if (s->slots[i] == sl) return i;
  return SIZE_MAX;
}

/* Free draining slots that are done: unloaded and nobody waiting on them (lock held). Callers must
 * not use a slot pointer across a call unless they keep it busy (queued, loading, unloading). */
static void slot_gc(sched *s) {
  size_t k = 0;
  for (size_t i = 0; i < s->n_slots; i++) {
    slot *sl = s->slots[i];
    if (sl->draining && sl->state == SLOT_UNLOADED && sl->queued == 0) {
      free(sl);
    } else {
      s->slots[k++] = sl;
    }
  }
  s->n_slots = k;
}

/* What the budget counts for a model: the estimate, or more if more was measured. */
static long long slot_bytes(const slot *sl) {
  return sl->measured > sl->est.total_bytes ? sl->measured : sl->est.total_bytes;
}

/* The most its prompt cache may hold: the matrix's prompt_cache_ram for a llama.cpp model that
 * generates (chat or completion, not embedding or ranking), else 0. */
static long long slot_cache_max(const slot *sl) {
  const matrix_model *m = sl->m;
  if (m->engine != MATRIX_ENGINE_LLAMA || !(m->caps & (MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION)) ||
      (m->caps & (MATRIX_CAP_EMBED | MATRIX_CAP_RERANK)))
    return 0;
  return m->prompt_cache_ram > 0 ? m->prompt_cache_ram : 0;
}

/* What the budget counts for a model in host RAM: its footprint and its prompt cache's limit. */
static long long slot_counted(const slot *sl) { return slot_bytes(sl) + sl->cache_limit; }

/* What the budget counts for a model in pool p. */
static long long slot_pool_bytes(const slot *sl, size_t p) {
  if (p == 0) return slot_bytes(sl);
  return sl->meas_pool[p] > sl->est_pool[p] ? sl->meas_pool[p] : sl->est_pool[p];
}

/* The pool of a device the probe named: a GPU with memory of its own, else the host's RAM (the
 * CPU, integrated GPUs sharing RAM, and names we do not know). */
static size_t pool_of(const sched *s, const char *name) {
  for (size_t p = 1; p < s->n_pools; p++)
    if (strcmp(s->pools[p].name, name) == 0) return p;
  return 0;
}

/* The estimate split into pools: each device's share where it lives, the worker's own overhead on
 * the host, and the GPU backend's per-process overhead on each local GPU it uses (an RPC server's
 * own overhead is in the free memory it reported). Without a split (file-size fallback), all of
 * it on the host. */
static void slot_split(const sched *s, slot *sl) {
  memset(sl->est_pool, 0, sizeof sl->est_pool);
  long long rest = sl->est.total_bytes;
  for (int i = 0; i < sl->est.n_dev; i++) {
    size_t p = pool_of(s, sl->est.dev[i].name);
    sl->est_pool[p] += sl->est.dev[i].bytes;
    rest -= sl->est.dev[i].bytes;
  }
  sl->est_pool[0] += rest > 0 ? rest : 0;
  for (size_t p = 1; p < s->n_pools; p++)
    if (sl->est_pool[p] > 0 && !s->pools[p].endpoint[0]) sl->est_pool[p] += s->mx->gpu_overhead;
}

static double gib(long long b);

/* A probe names a model's RPC devices RPC0, RPC1, ... in the order it added them: m->rpc's servers
 * in order, each server's devices in order. Rename them to their pools' names (RPC<k>[host:port]),
 * which stay the same whatever else a process added; a device with no pool (its server was not
 * reached at start) keeps its name and so counts on the host. */
static void est_rpc_names(const sched *s, const matrix_model *m, footprint_est *e) {
  for (int d = 0; d < e->n_dev; d++) {
    long idx;
    char *end;
    if (strncmp(e->dev[d].name, "RPC", 3) != 0 || e->dev[d].name[3] < '0' ||
        e->dev[d].name[3] > '9')
      continue;
    idx = strtol(e->dev[d].name + 3, &end, 10);
    if (*end != '\0') continue;
    long seen = 0;
    for (size_t r = 0; r < m->n_rpc; r++)
      for (size_t p = 1; p < s->n_pools; p++)
        if (strcmp(s->pools[p].endpoint, m->rpc[r]) == 0 && seen++ == idx)
          snprintf(e->dev[d].name, sizeof e->dev[d].name, "%s", s->pools[p].name);
  }
}

/* The local GPUs with memory of their own (RPC servers' devices are pools too, but not here). */
static bool local_gpus(const sched *s) {
  for (size_t p = 1; p < s->n_pools; p++)
    if (!s->pools[p].endpoint[0]) return true;
  return false;
}

/* Pools for the devices of the RPC servers mx names that no pool has yet: one probe for all of
 * them (a process: never under the lock; `running`: take it to publish the new pools). A server
 * that does not answer gets no pool (logged; the next reload tries again): what a model puts there
 * is then counted on the host. */
static void pools_add_rpc(sched *s, const matrix *mx, bool running) {
  sy_buf list = {0};
  for (size_t i = 0; i < mx->n_models; i++)
    for (size_t r = 0; r < mx->models[i].n_rpc; r++) {
      const char *ep = mx->models[i].rpc[r];
      bool known = false;
      for (size_t p = 1; p < s->n_pools && !known; p++) known = !strcmp(s->pools[p].endpoint, ep);
      /* each once: ",ep," is never inside another entry (endpoints hold no comma) */
      char probe[SY_ENDPOINT_MAX + 3];
      snprintf(probe, sizeof probe, ",%s,", ep);
      if (known || (list.data && strstr(list.data, probe))) continue;
      if (!list.len) sy_buf_append(&list, ",", 1);
      sy_buf_append(&list, ep, strlen(ep));
      sy_buf_append(&list, ",", 1);
    }
  if (!list.len) return;
  list.data[list.len - 1] = '\0'; /* ",a,b," → "a,b" after the first comma */
  char err[256] = "";
  json_t *j = footprint_devices(s->worker_exe, list.data + 1, err, sizeof err);
  sy_buf_free(&list);
  if (!j) {
    LOG_W("could not reach the RPC servers: %s", err);
    return;
  }
  size_t i;
  json_t *dv;
  json_array_foreach(json_object_get(j, "rpc_unreachable"), i, dv)
      LOG_W("RPC server %s: %s (no pool for it; what a model puts there counts on the host)",
            json_string_value(json_object_get(dv, "endpoint")),
            json_string_value(json_object_get(dv, "error")));
  if (running) pthread_mutex_lock(&s->mu);
  json_array_foreach(json_object_get(j, "devices"), i, dv) {
    const char *ep = json_string_value(json_object_get(dv, "endpoint"));
    json_int_t k = json_integer_value(json_object_get(dv, "rpc_device"));
    if (!ep || strlen(ep) > SY_ENDPOINT_MAX || k < 0 || k > 255 || s->n_pools >= PLAN_MAX_POOLS)
      continue;
    struct pool *pl = &s->pools[s->n_pools];
    memset(pl, 0, sizeof *pl);
    snprintf(pl->name, sizeof pl->name, "RPC%d[%s]", (int)k, ep);
    snprintf(pl->endpoint, sizeof pl->endpoint, "%s", ep);
    pl->rpc_device = (int)k;
    pl->nv = -1;
    pl->total = (long long)json_integer_value(json_object_get(dv, "free"));
    s->n_pools++;
    LOG_I("RPC pool %s: %.2f GiB free of %.2f GiB (%s)", pl->name, gib(pl->total),
          gib((long long)json_integer_value(json_object_get(dv, "total"))),
          json_string_value(json_object_get(dv, "description")));
  }
  if (running) pthread_mutex_unlock(&s->mu);
  json_decref(j);
}

/* Pools from the engine's device list: [0] the host, then each discrete GPU (at most
 * PLAN_MAX_POOLS − 1); budgets from the matrix. */
static void pools_setup(sched *s) {
  s->n_pools = 1;
  snprintf(s->pools[0].name, sizeof s->pools[0].name, "Host");
  s->pools[0].nv = -1;
  size_t i;
  json_t *dv;
  json_array_foreach(json_object_get(s->devices, "devices"), i, dv) {
    const char *type = json_string_value(json_object_get(dv, "type"));
    const char *name = json_string_value(json_object_get(dv, "name"));
    if (!type || !name || strcmp(type, "gpu") != 0 || strlen(name) >= sizeof s->pools[0].name ||
        s->n_pools >= PLAN_MAX_POOLS || json_object_get(dv, "endpoint"))
      continue;
    struct pool *pl = &s->pools[s->n_pools++];
    memset(pl, 0, sizeof *pl);
    snprintf(pl->name, sizeof pl->name, "%s", name);
    pl->nv = gpumem_index_of(name);
    pl->total = (long long)json_integer_value(json_object_get(dv, "total"));
  }
}

/* Budgets from the matrix (at start and after a reload); lock held or before threads run. */
static void pools_budget(sched *s) {
  s->pools[0].budget = s->budget;
  s->pools[0].live = s->live_budget;
  for (size_t p = 1; p < s->n_pools; p++) {
    struct pool *pl = &s->pools[p];
    pl->budget = pl->total > s->mx->gpu_reserve ? pl->total - s->mx->gpu_reserve : 0;
    for (size_t k = 0; k < s->mx->n_gpu_budgets; k++)
      if (strcmp(s->mx->gpu_names[k], pl->name) == 0) pl->budget = s->mx->gpu_budgets[k];
    pl->live = pl->budget;
  }
}

/* What each GPU has free right now, where the driver tells (lock held): the budget never exceeds
 * free + what our own workers hold − the reserve, so memory taken by other programs counts. */
static void pools_live(sched *s) {
  for (size_t p = 1; p < s->n_pools; p++) {
    struct pool *pl = &s->pools[p];
    long long fr, tot;
    pl->live = pl->budget;
    if (pl->nv < 0 || gpumem_info(pl->nv, &fr, &tot) != 0) continue;
    long long ours = 0;
    for (size_t i = 0; i < s->n_slots; i++)
      if (s->slots[i]->state != SLOT_UNLOADED) ours += s->slots[i]->meas_pool[p];
    pl->live = footprint_live_budget(pl->budget, fr, ours, s->mx->gpu_reserve);
  }
}

/* Measure what a worker holds on each GPU (no lock: the driver call may take a while). */
static void measure_gpus(const sched *s, pid_t pid, long long *out) {
  for (size_t p = 1; p < s->n_pools; p++)
    out[p] = s->pools[p].nv >= 0 ? gpumem_process_bytes(s->pools[p].nv, pid) : -1;
}

/* What a worker holds: its resident set and its use of each GPU (no lock). An external engine
 * counts its whole process group (a launcher script's children are the real server). The prompt
 * cache the worker reports (read after the resident set, so that a state saved in between is not
 * counted twice) is left out: the budget counts it apart, up to its limit (cache_limit). */
static long long measure_worker(const sched *s, const worker *w, long long *on_gpu) {
  pid_t pids[64];
  size_t n = worker_group_pids(w, pids, 64);
  long long rss = 0;
  for (size_t p = 1; p < s->n_pools; p++) on_gpu[p] = 0;
  for (size_t i = 0; i < n; i++) {
    long long r = footprint_rss_bytes(pids[i]), g[PLAN_MAX_POOLS] = {0};
    if (r > 0) rss += r;
    measure_gpus(s, pids[i], g);
    for (size_t p = 1; p < s->n_pools; p++)
      if (g[p] > 0) on_gpu[p] += g[p];
  }
  if (!n) return -1;
  long long cache = worker_cache_bytes(w, NULL);
  return rss > cache ? rss - cache : 0;
}

/* The keep-alive in force: a request's override (if the matrix allows one), else the matrix's;
 * -1 = forever (pinned models too). */
static int keep_alive_of(const slot *sl, const matrix_model *m) {
  if (m->pin) return -1;
  return sl->ka_set && m->request_keep_alive ? sl->ka_s : m->keep_alive_s;
}

static double gib(long long b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

/* Take the worker out of a slot (lock held), leaving it UNLOADING: its memory stays counted until
 * the caller has stopped it and called slot_unloaded. */
static worker *slot_take(slot *sl) {
  worker *w = sl->w;
  sl->w = NULL;
  json_decref(sl->ready);
  sl->ready = NULL;
  sl->state = w ? SLOT_UNLOADING : SLOT_UNLOADED;
  sl->ka_set = false;
  sl->inflight = 0;    /* requests on the old worker release against a worker not in the slot */
  sl->threads_now = 0; /* the next worker starts with its configured threads */
  if (!w) sl->cache_limit = sl->cache_told = 0; /* else counted until the process is gone */
  return w;
}

/* Stop a taken worker (no lock held), then mark its slot free and wake everyone. */
/* Stop a taken worker (no lock held), then mark its slot free and wake everyone. The slot may be
 * freed (a draining one): the caller must not use it afterwards. */
static void retire(sched *s, slot *sl, worker *w, metrics_unload_reason reason, const char *why) {
  const char *name = sl->m->name; /* the matrix outlives the slot */
  if (w) {
    LOG_I("unloading %s (%s)", name, why);
    metrics_unload(s->mt, sl->row, reason);
    events_publish(s->ev,
                   json_pack("{s:s, s:s, s:s}", "type", "unloading", "model", name, "reason", why));
    worker_stop(w, 5000); /* returns once the process is reaped: its memory is back */
    worker_unref(w);
  }
  pthread_mutex_lock(&s->mu);
  if (sl->state == SLOT_UNLOADING) {
    sl->state = SLOT_UNLOADED;
    sl->cache_limit = sl->cache_told = 0; /* its cache went with the process */
  }
  slot_gc(s);
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->mu);
  if (w) events_publish(s->ev, json_pack("{s:s, s:s}", "type", "unloaded", "model", name));
}

/* Whether a loaded slot should go now: dead, draining and idle, or its keep-alive ran out; *reason
 * and *why say why (lock held). *due is set to when the keep-alive runs out (-1 = never). */
static bool slot_expired(const slot *sl, long long now, long long *due,
                         metrics_unload_reason *reason, const char **why) {
  *due = -1;
  if (sl->state != SLOT_READY || sl->inflight > 0) return false;
  if (!worker_alive(sl->w)) {
    *reason = METRICS_UNLOAD_CRASHED;
    *why = "worker exited";
    return true;
  }
  if (sl->draining) {
    if (sl->queued > 0) return false;
    *reason = METRICS_UNLOAD_RELOAD;
    *why = "removed or changed by a configuration reload";
    return true;
  }
  int ka = keep_alive_of(sl, sl->m);
  *due = ka < 0 ? -1 : sl->last_used_ms + (long long)ka * 1000;
  if (*due >= 0 && *due <= now && sl->queued == 0) {
    *reason = METRICS_UNLOAD_KEEP_ALIVE;
    *why = "keep-alive expired";
    return true;
  }
  return false;
}

static void *reaper_main(void *arg) {
  sched *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    long long now = sy_mono_ms(), next = -1;
    bool again = false;
    for (size_t i = 0; i < s->n_slots; i++) {
      slot *sl = s->slots[i];
      long long due;
      metrics_unload_reason reason;
      const char *why;
      if (slot_expired(sl, now, &due, &reason, &why)) {
        worker *w = slot_take(sl);
        pthread_mutex_unlock(&s->mu);
        retire(s, sl, w, reason, why);
        pthread_mutex_lock(&s->mu);
        again = true; /* rescan: the state may have changed while unlocked */
        break;
      }
      if (due >= 0 && (next < 0 || due < next)) next = due;
    }
    if (again) continue;
    if (next < 0) {
      pthread_cond_wait(&s->reaper_cond, &s->mu);
    } else {
      struct timespec ts = sy_deadline(next - now);
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

/* An external engine's footprint is what its matrix entry declares (host RAM and per GPU, no
 * overhead added: the user measured it), else 0 until measured once started (resident set of the
 * group's leader, and its GPU use where NVML tells). */
static void ext_estimate(const sched *s, slot *sl) {
  const matrix_external *e = sl->m->ext;
  memset(sl->est_pool, 0, sizeof sl->est_pool);
  sl->est.total_bytes = sl->est.model_bytes = e->memory;
  sl->est_pool[0] = e->memory;
  snprintf(sl->est.devices, sizeof sl->est.devices, "(declared)");
  for (size_t i = 0; i < e->n_gpu && sl->est.n_dev < 8; i++) {
    size_t p = pool_of(s, e->gpu_names[i]);
    if (p == 0) {
      LOG_W("%s: gpu_memory names %s, which the engine build does not list: counted in host RAM",
            sl->m->name, e->gpu_names[i]);
      sl->est.total_bytes += e->gpu_bytes[i];
    }
    sl->est_pool[p] += e->gpu_bytes[i];
    snprintf(sl->est.dev[sl->est.n_dev].name, sizeof sl->est.dev[0].name, "%s", e->gpu_names[i]);
    sl->est.dev[sl->est.n_dev++].bytes = e->gpu_bytes[i];
  }
}

/* A new, unloaded slot for model m with its estimate (a probe when nothing is remembered: runs a
 * process, so never under the lock). NULL on out of memory. */
static slot *slot_make(sched *s, const matrix_model *m) {
  slot *sl = calloc(1, sizeof *sl);
  if (!sl) return NULL;
  sl->m = m;
  sl->row = metrics_model(s->mt, m->name);
  char err[256] = "", ekey[sizeof sl->key + 64];
  footprint_store_key(m, sl->key, sizeof sl->key);
  /* Estimates are remembered too (keyed by the model's identity and settings and by the
   * estimator's own build): a probe per model runs once, not at every start. */
  snprintf(ekey, sizeof ekey, "estimate-v2|%s|%lld", sl->key,
           s->tool_stamp); /* v2: weights ≥ the file */
  if (m->mmproj)           /* and the projector's margin, which the daemon's build decides */
    snprintf(ekey + strlen(ekey), sizeof ekey - strlen(ekey), "|mm%lld",
             footprint_mmproj_margin(m->mmproj_type));
  long long cached = s->ms ? footprint_store_get(s->ms, ekey) : -1;
  char dkey[sizeof ekey + FOOTPRINT_DEV_NAME + 8];
  if (m->engine == MATRIX_ENGINE_EXTERNAL) {
    ext_estimate(s, sl);
    goto estimated;
  }
  if (cached > 0) {
    sl->est = (footprint_est){.total_bytes = cached, .from_probe = true};
    snprintf(sl->est.devices, sizeof sl->est.devices, "(remembered)");
    for (size_t p = 0; p < s->n_pools; p++) { /* the split per device, where remembered */
      snprintf(dkey, sizeof dkey, "%s|dev=%s", ekey, s->pools[p].name);
      long long b = footprint_store_get(s->ms, dkey);
      if (b > 0 && sl->est.n_dev < (int)(sizeof sl->est.dev / sizeof sl->est.dev[0])) {
        snprintf(sl->est.dev[sl->est.n_dev].name, sizeof sl->est.dev[0].name, "%s",
                 s->pools[p].name);
        sl->est.dev[sl->est.n_dev++].bytes = b;
      }
    }
  } else if (m->engine == MATRIX_ENGINE_WHISPER &&
             footprint_whisper_estimate(m->file, m->file_bytes, &sl->est) == 0) {
    /* whisper.cpp's buffers from the file's header (footprint.h); measured once loaded */
  } else if (m->engine != MATRIX_ENGINE_LLAMA) {
    /* llama.cpp's probe knows only GGUF models: the weights plus a margin for the engine's own
     * buffers (whisper's KV and mel buffers, espeak's voice data); measured once loaded */
    sl->est.model_bytes = m->file_bytes;
    sl->est.compute_bytes = m->file_bytes / 4 + (64LL << 20);
    sl->est.total_bytes = sl->est.model_bytes + sl->est.compute_bytes;
    snprintf(sl->est.devices, sizeof sl->est.devices, "(file size)");
  } else if (footprint_estimate(s->tool, m, &sl->est, err, sizeof err) != 0) {
    LOG_W("%s: memory estimate from the file size (%s)", m->name, err);
  } else {
    est_rpc_names(s, m, &sl->est);
    for (int d = 0; s->ms && d < sl->est.n_dev; d++) {
      snprintf(dkey, sizeof dkey, "%s|dev=%s", ekey, sl->est.dev[d].name);
      footprint_store_put_max(s->ms, dkey, sl->est.dev[d].bytes);
    }
    if (s->ms) /* last: its presence means the split is there */
      footprint_store_put_max(s->ms, ekey, sl->est.total_bytes);
  }
  slot_split(s, sl);
estimated:;
  long long remembered = s->ms ? footprint_store_get(s->ms, sl->key) : -1;
  if (remembered > 0) sl->measured = remembered;
  const footprint_est *e = &sl->est;
  LOG_I(
      "%s: estimated %.0f MiB (weights %.0f, context %.0f, compute %.0f) on %s; measured before: "
      "%.0f MiB",
      m->name, (double)e->total_bytes / 1048576.0, (double)e->model_bytes / 1048576.0,
      (double)e->context_bytes / 1048576.0, (double)e->compute_bytes / 1048576.0, e->devices,
      remembered > 0 ? (double)remembered / 1048576.0 : 0.0);
  return sl;
}

/* Append a slot (lock held, or before any thread runs). -1 on out of memory. */
static int slot_add(sched *s, slot *sl) {
  if (s->n_slots == s->cap_slots) {
    size_t cap = s->cap_slots ? s->cap_slots * 2 : 16;
    if (cap > PLAN_MAX_MODELS) cap = PLAN_MAX_MODELS;
    if (cap <= s->n_slots) return -1;
    slot **ns = realloc(s->slots, cap * sizeof *ns);
    if (!ns) return -1;
    s->slots = ns;
    plan_model *np = realloc(s->plan, cap * sizeof *np);
    if (!np) return -1;
    s->plan = np;
    s->cap_slots = cap;
  }
  s->slots[s->n_slots++] = sl;
  return 0;
}

/* The budget the matrix asks for: memory.budget, else RAM − memory.reserve. */
static long long budget_of(const matrix *mx) {
  long long total = footprint_mem_total();
  return mx->mem_budget > 0        ? mx->mem_budget
         : total > mx->mem_reserve ? total - mx->mem_reserve
         : total > 0               ? total / 2
                                   : 1LL << 30;
}

sched *sched_new(const sched_params *p) {
  sched *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->mx = p->mx;
  s->ncpu = cpu_share_cores();
  const char *share =
      getenv("SWITCHYARD_CPU_SHARE"); /* "off": every worker keeps its threads (benchmarks) */
  s->cpu_share_off = share && strcmp(share, "off") == 0;
  snprintf(s->worker_exe, sizeof s->worker_exe, "%s/switchyard-llama", p->worker_dir);
  snprintf(s->worker_dir, sizeof s->worker_dir, "%s", p->worker_dir);
  snprintf(s->log_level, sizeof s->log_level, "%s", p->log_level ? p->log_level : "info");
  s->load_timeout_s = p->load_timeout_s > 0 ? p->load_timeout_s : 600;
  s->budget = budget_of(p->mx);
  s->live_budget = s->budget;
  LOG_I("memory budget %.2f GiB (%s)", gib(s->budget),
        p->mx->mem_budget > 0 ? "memory.budget" : "RAM − memory.reserve");
  char state[PATH_MAX];
  snprintf(s->tool, sizeof s->tool, "%s/llama-fit-params", p->worker_dir);
  footprint_store_default_path(state, sizeof state);
  s->ms = footprint_store_open(state);
  char derr[256] = "";
  s->devices = footprint_devices(s->worker_exe, NULL, derr, sizeof derr);
  if (!s->devices) LOG_W("could not list the engine's devices: %s", derr);
  size_t di;
  json_t *dv;
  json_array_foreach(json_object_get(s->devices, "devices"), di, dv) LOG_I(
      "device %s (%s, %s): %.1f of %.1f GiB free", json_string_value(json_object_get(dv, "name")),
      json_string_value(json_object_get(dv, "description")),
      json_string_value(json_object_get(dv, "type")),
      gib((long long)json_integer_value(json_object_get(dv, "free"))),
      gib((long long)json_integer_value(json_object_get(dv, "total"))));
  pools_setup(s);
  pools_add_rpc(s, p->mx, false);
  pools_budget(s);
  for (size_t k = 1; k < s->n_pools; k++)
    LOG_I("GPU pool %s: budget %.2f GiB of %.2f GiB (%s)", s->pools[k].name,
          gib(s->pools[k].budget), gib(s->pools[k].total),
          gpumem_available() && s->pools[k].nv >= 0 ? "live free memory from NVML"
                                                    : "no live numbers");
  struct stat tst;
  s->tool_stamp = stat(s->tool, &tst) == 0
                      ? (long long)tst.st_mtim.tv_sec * 1000000000LL + tst.st_mtim.tv_nsec
                      : 0;
  s->mt = metrics_new(NULL, 0);
  s->ev = events_new();
  bool ok = s->mt && s->ev;
  for (size_t i = 0; ok && i < p->mx->n_models; i++) {
    slot *sl = slot_make(s, &p->mx->models[i]);
    if (!sl || slot_add(s, sl) != 0) {
      free(sl);
      ok = false;
    }
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->tell_mu, NULL);
  pthread_mutex_init(&s->reload_mu, NULL);
  pthread_cond_init(&s->cond, NULL);
  pthread_cond_init(&s->reaper_cond, NULL);
  if (!ok || pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
    s->stopping = true;
    sched_free_parts(s);
    return NULL;
  }
  return s;
}

#define NAME_MAX_SAFE 64 /* characters of a model's name in its prompt cache folder's name */

/* A model's prompt cache folder: "<state dir>/prompt-cache/<its name, made safe>-<hash>" (the
 * hash keeps two names that look alike apart; nothing of the name can leave the folder). */
static void prompt_cache_dir(const char *name, char *out, size_t cap) {
  char state[PATH_MAX], safe[NAME_MAX_SAFE + 1];
  sy_state_dir(state, sizeof state);
  size_t k = 0;
  for (const char *p = name; *p && k < NAME_MAX_SAFE; p++)
    safe[k++] = isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-' ? *p : '_';
  safe[k] = 0;
  snprintf(out, cap, "%s/prompt-cache/%s-%08x", state, safe,
           (unsigned)(sy_fnv1a64(SY_FNV_OFFSET, name, strlen(name)) & 0xffffffffu));
}

/* The worker's load message; cache_ram: its prompt cache's first limit (llama.cpp only). */
static json_t *load_message(const matrix_model *m, long long cache_ram) {
  if (m->engine != MATRIX_ENGINE_LLAMA) {
    json_t *e = json_pack("{s:s, s:s, s:i}", "model", m->file, "engine",
                          matrix_engine_name(m->engine), "n_threads", m->threads);
    if (e &&
        m->engine ==
            MATRIX_ENGINE_WHISPER) { /* whisper.cpp's built-in VAD; the GPU unless gpu_layers: 0 */
      if (m->vad_model) json_object_set_new(e, "vad_model", json_string(m->vad_model));
      json_object_set_new(e, "gpu", json_boolean(m->gpu_layers != 0));
    }
    return e;
  }
  json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s}", "model", m->file, "n_ctx",
                        m->context, "n_parallel", m->parallel, "n_threads", m->threads, "n_batch",
                        m->batch, "n_gpu_layers", m->gpu_layers, "mode",
                        (m->caps & MATRIX_CAP_RERANK)  ? "rerank"
                        : (m->caps & MATRIX_CAP_EMBED) ? "embed"
                                                       : "generate");
  if (j && m->pooling) json_object_set_new(j, "pooling", json_string(m->pooling));
  if (j && m->chat_template) json_object_set_new(j, "chat_template", json_string(m->chat_template));
  if (j && m->deterministic) json_object_set_new(j, "deterministic", json_true());
  if (j && m->n_rpc) { /* RPC servers whose devices take layers (docs/CONFIG.md, rpc) */
    json_t *r = json_array();
    for (size_t i = 0; r && i < m->n_rpc; i++) json_array_append_new(r, json_string(m->rpc[i]));
    if (r) json_object_set_new(j, "rpc", r);
  }
  /* the prompt cache's first limit (the budget's share for it), and its folder on disk
   * (docs/PROMPT_CACHE.md) */
  if (j) json_object_set_new(j, "cache_ram", json_integer(cache_ram));
  if (j && m->prompt_cache_disk > 0) {
    char dir[PATH_MAX + 256];
    prompt_cache_dir(m->name, dir, sizeof dir);
    json_object_set_new(j, "cache_dir", json_string(dir));
    json_object_set_new(j, "cache_disk", json_integer(m->prompt_cache_disk));
  }
  if (j && m->mmproj) json_object_set_new(j, "mmproj", json_string(m->mmproj));
  /* experts kept in host RAM: -1 every layer's, N the first N layers' */
  if (j && m->cpu_moe) json_object_set_new(j, "cpu_moe", json_integer(m->cpu_moe));
  if (j && m->n_voices) { /* reference clips of a speech model, by name */
    json_t *vo = json_object();
    for (size_t i = 0; vo && i < m->n_voices; i++) {
      const char *lang = m->voice_lang ? m->voice_lang[i] : NULL;
      json_object_set_new(
          vo, m->voice_names[i],
          lang ? json_pack("{s:s, s:s}", "audio", m->voice_audio[i], "language", lang)
               : json_string(m->voice_audio[i]));
    }
    if (vo) json_object_set_new(j, "voices", vo);
  }
  return j;
}

/* Ask plan_decide about slot `want` (lock held). */
static const plan_decision *decide(sched *s, size_t want) {
  static const plan_state map[] = {PLAN_UNLOADED, PLAN_LOADING, PLAN_READY, PLAN_UNLOADING};
  long long now = sy_mono_ms(), guard = (long long)s->mx->swap_guard_s * 1000;
  s->guard_wake_ms = 0;
  for (size_t i = 0; i < s->n_slots; i++) {
    const slot *sl = s->slots[i];
    /* Thrash guard: a model loaded less than swap_guard ago keeps its place, so two models that
     * cannot co-reside take turns of at least swap_guard each instead of swapping per request. */
    bool guarded =
        sl->state == SLOT_READY && guard > 0 && now < sl->loaded_at_ms + guard && !sl->draining;
    if (guarded && (s->guard_wake_ms == 0 || sl->loaded_at_ms + guard < s->guard_wake_ms))
      s->guard_wake_ms = sl->loaded_at_ms + guard;
    s->plan[i] = (plan_model){.state = map[sl->state],
                              .bytes = slot_counted(sl),
                              .cache_bytes = sl->cache_limit,
                              .inflight = sl->inflight,
                              .queued = sl->queued,
                              .last_used_ms = sl->last_used_ms,
                              .priority = sl->m->priority,
                              .pinned = sl->m->pin && !sl->draining,
                              .guarded = guarded};
    for (size_t p = 1; p < s->n_pools; p++) s->plan[i].pool_bytes[p] = slot_pool_bytes(sl, p);
  }
  long long budgets[PLAN_MAX_POOLS];
  budgets[0] = s->live_budget;
  for (size_t p = 1; p < s->n_pools; p++) budgets[p] = s->pools[p].live;
  plan_decide_pools(s->plan, s->n_slots, want, budgets, s->n_pools, &s->decision);
  return &s->decision;
}

/* ---- the prompt caches' limits (docs/PROMPT_CACHE.md, plan.h rule 6) ---- */

#define CACHE_TELL_MAX 64 /* workers told at one change (the rest at the next) */

/* Host RAM the budget has left (lock held): the live budget less what every resident model counts,
 * its prompt cache's limit included; negative when over. */
static long long pool0_room(const sched *s) {
  long long room = s->live_budget;
  for (size_t i = 0; i < s->n_slots; i++)
    if (s->slots[i]->state != SLOT_UNLOADED) room -= slot_counted(s->slots[i]);
  return room;
}

/* Cut the prompt caches a decision names (lock held): the slots first, their workers after
 * (cache_plan, cache_tell). */
static void cache_cut(sched *s, const plan_decision *d) {
  for (size_t i = 0; i < s->n_slots; i++) {
    slot *sl = s->slots[i];
    long long cut = d->shrink[i] < sl->cache_limit ? d->shrink[i] : sl->cache_limit;
    if (cut > 0) sl->cache_limit -= cut;
  }
}

/* A request starts on ready slot sl (lock held): its cache's limit back under a lowered
 * prompt_cache_ram (a reload), or up towards it by what the budget has left. */
static void cache_raise(sched *s, slot *sl) {
  long long max = slot_cache_max(sl);
  if (sl->cache_limit >= max) {
    sl->cache_limit = max;
    return;
  }
  long long room = pool0_room(s);
  if (room > 0) sl->cache_limit += room < max - sl->cache_limit ? room : max - sl->cache_limit;
}

/* With s->mu held: each ready worker whose limit changed since it was told goes into tell[] with
 * a reference (at most cap); the caller tells them with cache_tell once the lock is released. */
static size_t cache_plan(sched *s, worker **tell, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < s->n_slots && k < cap; i++) {
    slot *sl = s->slots[i];
    if (sl->state != SLOT_READY || !sl->w || sl->cache_told == sl->cache_limit) continue;
    sl->cache_told = sl->cache_limit;
    worker_ref(sl->w);
    tell[k++] = sl->w;
  }
  return k;
}

/* Without s->mu: tell each worker its slot's limit as it is now, one teller at a time, so that
 * two tellers cannot deliver an older limit after a newer one (a limit changed after it is read
 * here is told again by whoever changed it, after this). Drops the references. */
static void cache_tell(sched *s, worker **tell, size_t k) {
  if (k == 0) return;
  pthread_mutex_lock(&s->tell_mu);
  for (size_t i = 0; i < k; i++) {
    long long limit = -1;
    pthread_mutex_lock(&s->mu);
    for (size_t j = 0; j < s->n_slots; j++)
      if (s->slots[j]->w == tell[i]) {
        limit = s->slots[j]->cache_limit;
        s->slots[j]->cache_told = limit;
      }
    pthread_mutex_unlock(&s->mu);
    if (limit >= 0) worker_set_cache_limit(tell[i], limit);
  }
  pthread_mutex_unlock(&s->tell_mu);
  for (size_t i = 0; i < k; i++) worker_unref(tell[i]); /* a last one stops a process: no lock */
}

typedef struct progress_ctx {
  sched *s;
  const char *name;
} progress_ctx;

static void on_load_progress(void *ud, double progress) {
  progress_ctx *c = ud;
  events_publish(c->s->ev, json_pack("{s:s, s:s, s:f}", "type", "load_progress", "model", c->name,
                                     "progress", progress));
}

static int load_finish(sched *s, slot *sl, worker *w, json_t *ready, long long t0, api_error *err);

/* Start an external engine for slot sl (lock not held; taken again on return, like the tail of
 * load_with_evictions). */
static int load_external(sched *s, slot *sl, api_error *err) {
  const matrix_model *m = sl->m;
  worker_ext_params xp = {
      .tag = m->name, .ext = m->ext, .on_exit = on_worker_exit, .on_exit_ud = s};
  long long t0 = sy_mono_ms();
  events_publish(s->ev, json_pack("{s:s, s:s, s:I}", "type", "loading", "model", m->name,
                                  "estimated", (json_int_t)sl->est.total_bytes));
  worker *w = worker_start_external(&xp, err);
  return load_finish(s, sl, w, NULL, t0, err);
}

/* Load slot sl (lock held on entry and exit; dropped while working), first unloading the victims
 * the plan named. Returns 0, or -1 with err. */
static int load_with_evictions(sched *s, slot *sl, const plan_decision *d, api_error *err) {
  const matrix_model *m = sl->m;
  size_t nv = d->n_evict;
  slot *victims[64];
  worker *vw[64];
  if (nv > 64) nv = 64; /* more than 64 at once: the next decision takes the rest */
  cache_cut(s, d);      /* before any eviction (plan.h rule 6) */
  long long room = 0;
  for (size_t k = 0; k < nv; k++) {
    victims[k] = s->slots[d->evict[k]];
    room += slot_counted(victims[k]); /* gone before this model's worker starts */
    vw[k] = slot_take(victims[k]);
  }
  sl->state = SLOT_LOADING;
  /* its prompt cache: what the budget has left once this model counts, up to prompt_cache_ram */
  room += pool0_room(s);
  long long max = slot_cache_max(sl), cache_ram = room < max ? room : max;
  sl->cache_limit = sl->cache_told = cache_ram > 0 ? cache_ram : 0;
  cache_ram = sl->cache_limit;
  worker *tell[CACHE_TELL_MAX];
  size_t nt = cache_plan(s, tell, CACHE_TELL_MAX);
  pthread_mutex_unlock(&s->mu);
  cache_tell(s, tell, nt); /* the cut caches first: their memory makes the room */
  for (size_t k = 0; k < nv; k++) {
    char why[200];
    snprintf(why, sizeof why, "evicted (LRU) to make room for %s", m->name);
    retire(s, victims[k], vw[k], METRICS_UNLOAD_EVICTED, why);
  }
  if (m->engine == MATRIX_ENGINE_EXTERNAL) return load_external(s, sl, err);
  json_t *load = load_message(m, cache_ram);
  json_t *ready = NULL;
  char exe[PATH_MAX + 32]; /* each engine has its worker program */
  snprintf(exe, sizeof exe, "%s/switchyard-%s", s->worker_dir, matrix_engine_name(m->engine));
  worker_params wp = {.exe = exe,
                      .tag = m->name,
                      .log_level = s->log_level,
                      .load = load,
                      .load_timeout_s = s->load_timeout_s,
                      .on_exit = on_worker_exit,
                      .on_exit_ud = s};
  progress_ctx pc = {s, m->name};
  wp.on_progress = on_load_progress;
  wp.on_progress_ud = &pc;
  long long t0 = sy_mono_ms();
  events_publish(s->ev, json_pack("{s:s, s:s, s:I}", "type", "loading", "model", m->name,
                                  "estimated", (json_int_t)sl->est.total_bytes));
  worker *w = worker_start(&wp, &ready, err);
  json_decref(load);
  return load_finish(s, sl, w, ready, t0, err);
}

/* The end of a load, ok (w) or not (err): events, metrics, the slot's state (lock not held on
 * entry; held on return). */
static int load_finish(sched *s, slot *sl, worker *w, json_t *ready, long long t0, api_error *err) {
  const matrix_model *m = sl->m;
  long long on_gpu[PLAN_MAX_POOLS] = {0};
  long long rss = w ? measure_worker(s, w, on_gpu) : -1;
  if (w)
    events_publish(s->ev, json_pack("{s:s, s:s, s:I, s:i, s:I}", "type", "loaded", "model", m->name,
                                    "ms", (json_int_t)(sy_mono_ms() - t0), "pid",
                                    (int)worker_pid(w), "measured", (json_int_t)rss));
  else
    events_publish(s->ev, json_pack("{s:s, s:s, s:s}", "type", "load_failed", "model", m->name,
                                    "error", err->message));
  metrics_load(s->mt, sl->row, w != NULL, (double)(sy_mono_ms() - t0) / 1000.0);
  pthread_mutex_lock(&s->mu);
  sl->load_gen++;
  pthread_cond_broadcast(&s->cond);
  if (!w) {
    /* back-off: 5 s after the first failure, doubling up to 5 min; requests meanwhile get the
     * reason at once instead of another doomed load */
    long long backoff = 5000LL << (sl->fails < 6 ? sl->fails : 6);
    if (backoff > 300000) backoff = 300000;
    sl->fails++;
    sl->retry_at_ms = sy_mono_ms() + backoff;
    sl->state = SLOT_UNLOADED;
    sl->cache_limit = sl->cache_told = 0;
    sl->last_err = *err;
    LOG_W("loading %s failed (%d in a row; next try in %lld s): %s", m->name, sl->fails,
          backoff / 1000, err->message);
    slot_gc(s); /* a draining slot that failed is done */
    return -1;
  }
  sl->fails = 0;
  sl->retry_at_ms = 0;
  LOG_I("loaded %s in %lld ms (pid %d, resident %.0f MiB, estimated %.0f MiB)", m->name,
        sy_mono_ms() - t0, (int)worker_pid(w), (double)rss / 1048576.0,
        (double)sl->est.total_bytes / 1048576.0);
  sl->state = SLOT_READY;
  sl->w = w;
  sl->ready = ready;
  sl->last_used_ms = sl->loaded_at_ms = sy_mono_ms();
  for (size_t p = 1; p < s->n_pools; p++)
    if (on_gpu[p] > sl->meas_pool[p]) sl->meas_pool[p] = on_gpu[p];
  pthread_cond_signal(
      &s->reaper_cond); /* it expires it, or unloads it if a reload made it draining */
  if (rss > sl->measured) {
    sl->measured = rss;
    pthread_mutex_unlock(&s->mu);
    if (s->ms) footprint_store_put_max(s->ms, sl->key, rss); /* file I/O: not under the lock */
    pthread_mutex_lock(&s->mu);
  }
  return 0;
}

/* ---- the busy CPU workers' threads (cpu_share.h) ---- */

/* Computes on this CPU: a llama.cpp or whisper.cpp worker with no GPU, or told to keep its layers
 * off it (gpu_layers 0). */
static bool slot_on_cpu(const sched *s, const slot *sl) {
  const matrix_model *m = sl->m;
  if (m->engine != MATRIX_ENGINE_LLAMA && m->engine != MATRIX_ENGINE_WHISPER) return false;
  return !local_gpus(s) || m->gpu_layers == 0;
}

static int slot_threads_wanted(const sched *s, const slot *sl) {
  return sl->m->threads > 0 ? sl->m->threads : s->ncpu;
}

/* With s->mu held, after a worker became busy or idle: the busy CPU workers' shares. Each worker
 * whose share changed goes into tell[] with a reference (at most cap); the caller tells them with
 * threads_tell once the lock is released (a send must not happen under the scheduler's lock). */
static size_t threads_plan(sched *s, worker **tell, int *tell_n, size_t cap) {
  if (s->cpu_share_off) return 0;
  size_t idx[CPU_SHARE_MAX_WORKERS], n = 0, k = 0;
  int want[CPU_SHARE_MAX_WORKERS], share[CPU_SHARE_MAX_WORKERS];
  for (size_t i = 0; i < s->n_slots && n < CPU_SHARE_MAX_WORKERS; i++) {
    slot *sl = s->slots[i];
    if (sl->state != SLOT_READY || !sl->w || sl->inflight == 0 || !slot_on_cpu(s, sl)) continue;
    idx[n] = i;
    want[n++] = slot_threads_wanted(s, sl);
  }
  if (n == 0) return 0;
  cpu_share_plan(s->ncpu, want, n, share);
  for (size_t j = 0; j < n && k < cap; j++) {
    slot *sl = s->slots[idx[j]];
    int now = sl->threads_now > 0 ? sl->threads_now : want[j];
    if (share[j] == now) continue;
    sl->threads_now = share[j];
    worker_ref(sl->w);
    tell[k] = sl->w;
    tell_n[k++] = share[j];
  }
  return k;
}

static void threads_tell(worker **tell, const int *tell_n, size_t k) {
  for (size_t i = 0; i < k; i++) {
    worker_set_threads(tell[i], tell_n[i]);
    worker_unref(tell[i]);
  }
}

#define THREADS_TELL_MAX 64 /* workers told at one change (the rest at the next) */

worker *sched_acquire(sched *s, const matrix_model *model, api_error *err) {
  pthread_mutex_lock(&s->mu);
  for (;;) {
    if (s->stopping) {
      pthread_mutex_unlock(&s->mu);
      api_error_set(err, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
      return NULL;
    }
    slot *sl = slot_find(s, model->name);
    if (!sl) {
      api_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                    "model '%s' was removed from the configuration by a reload", model->name);
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    const matrix_model *m = sl->m; /* the current definition */
    /* Workers that died (any model): their memory is back once reaped, so free their slots
     * before deciding. Requests still on them get their error from the worker module and
     * release against a worker no longer in the slot. */
    bool swept = false;
    for (size_t i = 0; i < s->n_slots && !swept; i++) {
      slot *di = s->slots[i];
      if (di->state != SLOT_READY || worker_alive(di->w)) continue;
      worker *dead = slot_take(di);
      pthread_mutex_unlock(&s->mu);
      retire(s, di, dead, METRICS_UNLOAD_CRASHED, "worker exited");
      pthread_mutex_lock(&s->mu);
      swept = true;
    }
    if (swept) continue;
    long long now = sy_mono_ms();
    if (sl->state == SLOT_UNLOADED && sl->retry_at_ms > now) {
      *err = sl->last_err;
      err->status = 503;
      err->retry_after_s = (int)((sl->retry_at_ms - now + 999) / 1000);
      char reason[sizeof err->message];
      snprintf(reason, sizeof reason, "%s", sl->last_err.message);
      snprintf(err->message, sizeof err->message, "%.700s (loading is retried in %d s)", reason,
               err->retry_after_s);
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    if (sl->state != SLOT_READY) { /* a load may follow: check the budget against reality */
      long long ours = 0;          /* what our workers hold: their footprints and prompt caches */
      for (size_t i = 0; i < s->n_slots; i++)
        if (s->slots[i]->state != SLOT_UNLOADED)
          ours += s->slots[i]->measured +
                  (s->slots[i]->w ? worker_cache_bytes(s->slots[i]->w, NULL) : 0);
      s->live_budget =
          footprint_live_budget(s->budget, footprint_mem_available(), ours, s->mx->mem_reserve);
      pools_live(s);
    }
    const plan_decision *d = decide(s, slot_index(s, sl));
    if (d->action == PLAN_RUN) {
      worker *tell[THREADS_TELL_MAX];
      int tell_n[THREADS_TELL_MAX];
      size_t k = ++sl->inflight == 1 ? threads_plan(s, tell, tell_n, THREADS_TELL_MAX) : 0;
      sl->last_used_ms = sy_mono_ms();
      cache_raise(s, sl);
      worker *ctell[CACHE_TELL_MAX];
      size_t ck = cache_plan(s, ctell, CACHE_TELL_MAX);
      worker *w = sl->w;
      worker_ref(w);
      pthread_mutex_unlock(&s->mu);
      threads_tell(tell, tell_n, k);
      cache_tell(s, ctell, ck);
      return w;
    }
    long long configured = d->pool == 0 ? s->budget : s->pools[d->pool].budget;
    const char *where = d->pool == 0 ? "" : s->pools[d->pool].name;
    if (d->action == PLAN_REJECT && d->need <= configured - d->pinned) {
      /* it fits the configured budget, but not what other programs leave free right now */
      api_error_set(err, 503, "server_error", "memory_busy", "model",
                    "model '%s' needs %.2f GiB%s%s; the budget is %.2f GiB but only %.2f GiB of it "
                    "is free right now "
                    "(other programs use the rest); try again later",
                    m->name, gib(d->need), *where ? " on " : "", where, gib(configured),
                    gib(d->budget));
      err->retry_after_s = 10;
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    if (d->action == PLAN_REJECT) {
      api_error_set(
          err, 507, "server_error", "model_too_large", "model",
          "model '%s' needs %.2f GiB%s%s but the memory budget is %.2f GiB, %.2f GiB of it held by "
          "pinned models: it can never be loaded",
          m->name, gib(d->need), *where ? " on " : "", where, gib(d->budget), gib(d->pinned));
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    int loading = 0;
    for (size_t i = 0; i < s->n_slots; i++) loading += s->slots[i]->state == SLOT_LOADING;
    if (d->action == PLAN_LOAD && loading < s->mx->max_loads) {
      int rc = load_with_evictions(s, sl, d, err);
      if (rc != 0) {
        pthread_mutex_unlock(&s->mu);
        return NULL;
      }
      continue; /* the RUN branch hands it out (or refuses it if we are stopping) */
    }
    /* PLAN_WAIT (a load in progress, shared; an unload; busy models holding the room), or a
     * LOAD that must wait its turn: scheduling.max_loads models load at once (one by default:
     * concurrent loads compete for disk and memory bandwidth, and each estimate assumes the
     * others' memory is already taken). */
    if (sl->queued >= m->max_queue) {
      api_error_set(err, 503, "server_error", "queue_full", NULL,
                    "model '%s' has %d requests waiting already (max_queue); try again shortly",
                    m->name, sl->queued);
      err->retry_after_s = 5;
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    bool was_loading = sl->state == SLOT_LOADING;
    unsigned gen = sl->load_gen;
    sl->queued++; /* keeps sl allocated while we wait, even if a reload makes it draining */
    if (s->guard_wake_ms > 0) { /* a guard may be all that is in the way: wake when it ends */
      struct timespec ts = sy_deadline(s->guard_wake_ms - sy_mono_ms() + 1);
      pthread_cond_timedwait(&s->cond, &s->mu, &ts);
    } else {
      pthread_cond_wait(&s->cond, &s->mu);
    }
    sl->queued--;
    bool failed = was_loading && sl->state == SLOT_UNLOADED && sl->load_gen != gen && !sl->draining;
    if (failed) *err = sl->last_err; /* the shared load failed */
    if (sl->draining) slot_gc(s);
    if (failed) {
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
  }
}

void sched_release(sched *s, const matrix_model *m, worker *w) {
  (void)m;
  /* measure the resident set at most once a second per model: /proc is not free on a hot path */
  long long now = sy_mono_ms(), rss = -1;
  pthread_mutex_lock(&s->mu);
  slot *sl = NULL;
  for (size_t i = 0; i < s->n_slots && !sl; i++)
    if (s->slots[i]->w == w) sl = s->slots[i];
  bool measure = sl && now - sl->rss_at_ms >= 1000;
  if (measure) sl->rss_at_ms = now;
  pthread_mutex_unlock(&s->mu);
  long long on_gpu[PLAN_MAX_POOLS] = {0};
  if (measure) {
    rss = measure_worker(s, w, on_gpu);
  }
  worker *retired = NULL;
  metrics_unload_reason reason = METRICS_UNLOAD_KEEP_ALIVE_0;
  const char *why = "keep_alive 0";
  char key[sizeof sl->key] = "";
  worker *tell[THREADS_TELL_MAX];
  int tell_n[THREADS_TELL_MAX];
  size_t k = 0;
  pthread_mutex_lock(&s->mu);
  sl = NULL; /* look again: it may have been unloaded meanwhile */
  for (size_t i = 0; i < s->n_slots && !sl; i++)
    if (s->slots[i]->w == w) sl = s->slots[i];
  if (sl) {
    if (--sl->inflight == 0) k = threads_plan(s, tell, tell_n, THREADS_TELL_MAX);
    sl->last_used_ms = sy_mono_ms();
    if (rss > sl->measured) {
      sl->measured = rss;
      snprintf(key, sizeof key, "%s", sl->key);
    }
    for (size_t p = 1; p < s->n_pools; p++)
      if (on_gpu[p] > sl->meas_pool[p]) sl->meas_pool[p] = on_gpu[p];
    if (sl->inflight == 0 && sl->queued == 0 && sl->draining) {
      reason = METRICS_UNLOAD_RELOAD;
      why = "removed or changed by a configuration reload";
      retired = slot_take(sl);
    } else if (sl->inflight == 0 && sl->queued == 0 && keep_alive_of(sl, sl->m) == 0) {
      retired = slot_take(sl);
    }
    pthread_cond_broadcast(&s->cond); /* a waiter may now evict this idle model */
    pthread_cond_signal(&s->reaper_cond);
  }
  pthread_mutex_unlock(&s->mu);
  threads_tell(tell, tell_n, k);
  if (key[0] && s->ms) footprint_store_put_max(s->ms, key, rss);
  if (retired) retire(s, sl, retired, reason, why);
  worker_unref(w);
}

/* Loads every pinned or preloaded model of the current matrix that is not loaded, each time it is
 * asked to (at start and after a reload), until the scheduler stops. */
static void *preload_main(void *arg) {
  sched *s = arg;
  unsigned seen = 0;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    if (seen == s->preload_gen) {
      pthread_cond_wait(&s->cond, &s->mu);
      continue;
    }
    seen = s->preload_gen;
    const matrix *mx = s->mx;
    for (size_t i = 0; i < mx->n_models && !s->stopping; i++) {
      const matrix_model *m = &mx->models[i];
      if (!m->pin && !m->preload) continue;
      pthread_mutex_unlock(&s->mu);
      api_error err;
      worker *w = sched_acquire(s, m, &err);
      if (!w) {
        LOG_W("%s %s failed: %s", m->pin ? "pinning" : "preloading", m->name, err.message);
      } else {
        sched_release(s, m, w);
      }
      pthread_mutex_lock(&s->mu);
      if (s->mx != mx) break; /* reloaded meanwhile: start over with the new matrix */
    }
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

void sched_preload(sched *s) {
  pthread_mutex_lock(&s->mu);
  s->preload_gen++;
  pthread_cond_broadcast(&s->cond);
  bool start = !s->preloading;
  pthread_mutex_unlock(&s->mu);
  if (start && pthread_create(&s->preloader, NULL, preload_main, s) == 0) s->preloading = true;
}

/* Same voices (names and clips, in order). */
static bool same_voices(const matrix_model *a, const matrix_model *m) {
  if (a->n_voices != m->n_voices) return false;
  for (size_t i = 0; i < a->n_voices; i++)
    if (strcmp(a->voice_names[i], m->voice_names[i]) ||
        strcmp(a->voice_audio[i], m->voice_audio[i]))
      return false;
  for (size_t i = 0; i < a->n_voices; i++) {
    const char *x = a->voice_lang ? a->voice_lang[i] : NULL,
               *y = m->voice_lang ? m->voice_lang[i] : NULL;
    if ((x == NULL) != (y == NULL) || (x && strcmp(x, y))) return false;
  }
  return true;
}

/* Same worker settings: everything the load message carries, and the file's identity (key). */
static bool same_load(const slot *sl, const matrix_model *m, const char *key) {
  const matrix_model *a = sl->m;
  if (!same_voices(a, m)) return false;
  bool same_str = (!a->pooling == !m->pooling) &&
                  (!a->pooling || strcmp(a->pooling, m->pooling) == 0) &&
                  (!a->chat_template == !m->chat_template) &&
                  (!a->chat_template || strcmp(a->chat_template, m->chat_template) == 0) &&
                  (!a->mmproj == !m->mmproj) && (!a->mmproj || strcmp(a->mmproj, m->mmproj) == 0) &&
                  (!a->vad_model == !m->vad_model) &&
                  (!a->vad_model || strcmp(a->vad_model, m->vad_model) == 0);
  if (a->engine == MATRIX_ENGINE_EXTERNAL || m->engine == MATRIX_ENGINE_EXTERNAL)
    return a->engine == m->engine && strcmp(a->ext->sig, m->ext->sig) == 0;
  bool same_rpc = a->n_rpc == m->n_rpc;
  for (size_t i = 0; same_rpc && i < a->n_rpc; i++) same_rpc = !strcmp(a->rpc[i], m->rpc[i]);
  return same_str && same_rpc && strcmp(sl->key, key) == 0 && a->engine == m->engine &&
         a->threads == m->threads && a->deterministic == m->deterministic &&
         (a->caps & (MATRIX_CAP_EMBED | MATRIX_CAP_RERANK)) ==
             (m->caps & (MATRIX_CAP_EMBED | MATRIX_CAP_RERANK));
}

int sched_reload(sched *s, matrix *nmx, json_t **summary) {
  pthread_mutex_lock(&s->reload_mu);
  size_t n = nmx->n_models;
  slot **keep = calloc(n ? n : 1, sizeof *keep);   /* an active slot that stays, per new model */
  slot **fresh = calloc(n ? n : 1, sizeof *fresh); /* or a new slot */
  char(*keys)[sizeof((slot *)0)->key] = calloc(n ? n : 1, sizeof *keys);
  json_t *added = json_array(), *changed = json_array(), *removed = json_array();
  int rc = keep && fresh && keys && added && changed && removed ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < n; i++)
    footprint_store_key(&nmx->models[i], keys[i], sizeof keys[i]);
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    slot *sl = slot_find(s, nmx->models[i].name);
    if (sl && same_load(sl, &nmx->models[i], keys[i])) keep[i] = sl;
  }
  pthread_mutex_unlock(&s->mu);
  pools_add_rpc(s, nmx,
                true); /* servers the new matrix names first (a probe: not under the lock) */
  for (size_t i = 0; rc == 0 && i < n; i++) /* estimates (maybe a probe each): not under the lock */
    if (!keep[i] && !(fresh[i] = slot_make(s, &nmx->models[i]))) rc = -1;
  if (rc != 0) {
    for (size_t i = 0; fresh && i < n; i++) free(fresh[i]);
    free(keep);
    free(fresh);
    free(keys);
    json_decref(added);
    json_decref(changed);
    json_decref(removed);
    pthread_mutex_unlock(&s->reload_mu);
    return -1;
  }
  matrix **olds = realloc(s->old_mx, (s->n_old_mx + 1) * sizeof *olds);
  pthread_mutex_lock(&s->mu);
  if (olds) {
    s->old_mx = olds;
    s->old_mx[s->n_old_mx++] = (matrix *)s->mx;
  } /* else: the old matrix leaks rather than dangle */
  /* every active slot not kept drains: it serves what it has and unloads */
  for (size_t i = 0; i < s->n_slots; i++) {
    slot *sl = s->slots[i];
    bool kept = false;
    for (size_t k = 0; k < n && !kept; k++) kept = keep[k] == sl;
    if (sl->draining || kept) continue;
    sl->draining = true;
    bool again = false;
    for (size_t k = 0; k < n && !again; k++) again = strcmp(nmx->models[k].name, sl->m->name) == 0;
    json_array_append_new(again ? changed : removed, json_string(sl->m->name));
  }
  size_t nk = 0;
  for (size_t i = 0; i < n; i++) {
    if (keep[i]) {
      keep[i]->m = &nmx->models[i]; /* new keep-alive, priority, pin, queue limits apply */
      nk++;
    } else if (slot_add(s, fresh[i]) == 0) {
      bool was = false;
      for (size_t k = 0; k < json_array_size(changed) && !was; k++)
        was = strcmp(json_string_value(json_array_get(changed, k)), nmx->models[i].name) == 0;
      if (!was) json_array_append_new(added, json_string(nmx->models[i].name));
    } else {
      LOG_E("reload: no room for model %s", nmx->models[i].name);
      free(fresh[i]);
    }
  }
  s->mx = nmx;
  s->budget = budget_of(nmx);
  s->live_budget = s->budget;
  pools_budget(s);
  for (size_t i = 0; i < s->n_slots; i++)
    slot_split(s, s->slots[i]); /* gpu_overhead may have changed */
  slot_gc(s); /* draining slots that were not loaded go now; loaded ones when idle (reaper) */
  s->preload_gen++;
  pthread_cond_broadcast(&s->cond); /* waiters look up their model again */
  pthread_cond_signal(&s->reaper_cond);
  pthread_mutex_unlock(&s->mu);
  LOG_I("reloaded the configuration: %zu unchanged, %zu added, %zu changed, %zu removed", nk,
        json_array_size(added), json_array_size(changed), json_array_size(removed));
  json_t *sum = json_pack("{s:s, s:i, s:o, s:o, s:o}", "type", "reloaded", "unchanged", (int)nk,
                          "added", added, "changed", changed, "removed", removed);
  if (summary) *summary = json_incref(sum);
  events_publish(s->ev, sum);
  free(keep);
  free(fresh);
  free(keys);
  pthread_mutex_unlock(&s->reload_mu);
  return 0;
}

void sched_keep_alive(sched *s, const matrix_model *m, int secs) {
  pthread_mutex_lock(&s->mu);
  slot *sl = slot_find(s, m->name);
  if (sl && sl->m->request_keep_alive) {
    sl->ka_set = true;
    sl->ka_s = secs;
    pthread_cond_signal(&s->reaper_cond);
  }
  pthread_mutex_unlock(&s->mu);
}

void sched_memory(sched *s, const matrix_model *m, long long *estimated, long long *measured) {
  pthread_mutex_lock(&s->mu);
  slot *sl = slot_find(s, m->name);
  *estimated = sl ? sl->est.total_bytes : 0;
  *measured = sl ? sl->measured : 0;
  pthread_mutex_unlock(&s->mu);
}

int sched_unload(sched *s, const matrix_model *m, api_error *err) {
  pthread_mutex_lock(&s->mu);
  slot *sl = slot_find(s, m->name);
  if (!sl || sl->state == SLOT_UNLOADED) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  if (sl->state != SLOT_READY || sl->inflight > 0 || sl->queued > 0) {
    api_error_set(
        err, 409, "invalid_request_error", "model_busy", "model",
        "model '%s' is %s with %d request(s) in flight and %d waiting; try again when it is idle",
        m->name,
        sl->state == SLOT_READY     ? "loaded"
        : sl->state == SLOT_LOADING ? "loading"
                                    : "unloading",
        sl->inflight, sl->queued);
    pthread_mutex_unlock(&s->mu);
    return -1;
  }
  worker *w = slot_take(sl);
  pthread_mutex_unlock(&s->mu);
  retire(s, sl, w, METRICS_UNLOAD_ADMIN, "unloaded by request");
  return 0;
}

const char *sched_state(sched *s, const matrix_model *m) {
  static const char *names[] = {"unloaded", "loading", "loaded", "unloading"};
  pthread_mutex_lock(&s->mu);
  slot *sl = slot_find(s, m->name);
  const char *st = names[sl ? sl->state : SLOT_UNLOADED];
  pthread_mutex_unlock(&s->mu);
  return st;
}

json_t *sched_ps(sched *s) {
  static const char *names[] = {"unloaded", "loading", "loaded", "unloading"};
  json_t *arr = json_array();
  long long used = 0;
  pthread_mutex_lock(&s->mu);
  long long now = sy_mono_ms();
  for (size_t i = 0; i < s->n_slots; i++) {
    slot *sl = s->slots[i];
    const matrix_model *m = sl->m;
    if (sl->state == SLOT_UNLOADED) continue;
    used += slot_counted(sl);
    json_t *o =
        json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:b}", "name", m->name, "state",
                  names[sl->state], "inflight", sl->inflight, "queued", sl->queued, "size",
                  (json_int_t)slot_bytes(sl), "size_estimated", (json_int_t)sl->est.total_bytes,
                  "size_measured", (json_int_t)sl->measured, "pinned", m->pin && !sl->draining);
    if (sl->draining) json_object_set_new(o, "draining", json_true());
    json_t *per = json_array(); /* where it is, per memory pool */
    for (size_t p = 0; p < s->n_pools; p++)
      if (sl->est_pool[p] > 0 || (p > 0 && sl->meas_pool[p] > 0))
        json_array_append_new(per,
                              json_pack("{s:s, s:I, s:I}", "device", s->pools[p].name, "estimated",
                                        (json_int_t)sl->est_pool[p], "measured",
                                        (json_int_t)(p == 0 ? sl->measured : sl->meas_pool[p])));
    json_object_set_new(o, "devices", per);
    if (slot_cache_max(sl) > 0 || sl->cache_limit > 0) { /* docs/PROMPT_CACHE.md */
      int entries = 0;
      long long held = sl->w ? worker_cache_bytes(sl->w, &entries) : 0;
      json_object_set_new(
          o, "prompt_cache",
          json_pack("{s:I, s:i, s:I, s:I}", "bytes", (json_int_t)held, "entries", entries, "limit",
                    (json_int_t)sl->cache_limit, "max", (json_int_t)slot_cache_max(sl)));
    }
    if (sl->state == SLOT_READY && slot_on_cpu(s, sl)) /* what it computes with now (cpu_share.h) */
      json_object_set_new(
          o, "threads",
          json_integer(sl->threads_now > 0 ? sl->threads_now : slot_threads_wanted(s, sl)));
    if (sl->state == SLOT_READY) {
      json_object_set_new(o, "pid", json_integer(worker_pid(sl->w)));
      if (worker_port(sl->w)) json_object_set_new(o, "port", json_integer(worker_port(sl->w)));
      int ka = keep_alive_of(sl, m);
      long long exp = ka < 0         ? -1
                      : sl->inflight ? (long long)ka
                                     : (sl->last_used_ms + (long long)ka * 1000 - now) / 1000;
      json_object_set_new(o, "expires_in_s", json_integer(exp));
      json_t *keys[] = {json_object_get(sl->ready, "n_ctx"),
                        json_object_get(sl->ready, "n_parallel")};
      const char *kn[] = {"context", "parallel"};
      for (int k = 0; k < 2; k++)
        if (keys[k]) json_object_set(o, kn[k], keys[k]);
    }
    json_array_append_new(arr, o);
  }
  json_t *mem = json_pack("{s:I, s:I, s:I}", "budget", (json_int_t)s->budget, "budget_now",
                          (json_int_t)s->live_budget, "used", (json_int_t)used);
  json_t *pools = json_array();
  for (size_t p = 0; p < s->n_pools; p++) {
    long long pu = 0;
    for (size_t i = 0; i < s->n_slots; i++)
      if (s->slots[i]->state != SLOT_UNLOADED)
        pu += p == 0 ? slot_counted(s->slots[i]) : slot_pool_bytes(s->slots[i], p);
    json_t *po =
        json_pack("{s:s, s:I, s:I, s:I}", "device", s->pools[p].name, "budget",
                  (json_int_t)(p ? s->pools[p].budget : s->budget), "budget_now",
                  (json_int_t)(p ? s->pools[p].live : s->live_budget), "used", (json_int_t)pu);
    if (po && s->pools[p].endpoint[0]) /* an RPC server's device: where it is */
      json_object_set_new(po, "rpc", json_string(s->pools[p].endpoint));
    json_array_append_new(pools, po);
  }
  json_object_set_new(mem, "pools", pools);
  pthread_mutex_unlock(&s->mu);
  json_t *devs = json_object_get(s->devices, "devices");
  return json_pack("{s:o, s:o, s:o}", "models", arr, "memory", mem, "devices",
                   devs ? json_incref(devs) : json_array());
}

metrics *sched_metrics(sched *s) { return s->mt; }

events *sched_events(sched *s) { return s->ev; }

int sched_metrics_render(sched *s, sy_buf *out) {
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  for (size_t i = 0; i < s->n_slots; i++)
    if (s->slots[i]->row >= 0 && (size_t)s->slots[i]->row + 1 > n) n = (size_t)s->slots[i]->row + 1;
  metrics_model_gauges *mg = calloc(n ? n : 1, sizeof *mg);
  if (!mg) {
    pthread_mutex_unlock(&s->mu);
    return -1;
  }
  metrics_gauges g = {.models = mg, .n_models = n, .budget_bytes = s->budget};
  for (size_t i = 0; i < s->n_slots; i++) { /* a draining slot adds to its name's row */
    const slot *sl = s->slots[i];
    if (sl->row < 0) continue;
    metrics_model_gauges *r = &mg[sl->row];
    r->queued += sl->queued;
    r->inflight += sl->inflight;
    if (!sl->draining) r->estimated_bytes = sl->est.total_bytes;
    if (sl->measured > r->measured_bytes) r->measured_bytes = sl->measured;
    r->loaded |= sl->state == SLOT_READY;
    if (sl->w) r->prompt_cache_bytes += worker_cache_bytes(sl->w, NULL);
    if (sl->state != SLOT_UNLOADED) g.used_bytes += slot_counted(sl);
  }
  pthread_mutex_unlock(&s->mu);
  int rc = metrics_render(s->mt, &g, out); /* its own lock, not ours: never both at once */
  free(mg);
  return rc;
}

void sched_shutdown(sched *s) {
  events_publish(s->ev, json_pack("{s:s}", "type", "shutdown")); /* ends every event stream */
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->cond);
  pthread_cond_signal(&s->reaper_cond);
  for (;;) { /* wait out loads and unloads in progress: a loader sees `stopping` and stops its
                worker */
    bool busy = false;
    for (size_t i = 0; i < s->n_slots; i++)
      busy |= s->slots[i]->state == SLOT_LOADING || s->slots[i]->state == SLOT_UNLOADING;
    if (!busy) break;
    pthread_cond_wait(&s->cond, &s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  if (s->preloading) pthread_join(s->preloader, NULL);
  pthread_join(s->reaper, NULL);
  for (;;) { /* retire frees draining slots: look for the next loaded one each time */
    pthread_mutex_lock(&s->mu);
    slot *sl = NULL;
    for (size_t i = 0; i < s->n_slots && !sl; i++)
      if (s->slots[i]->w) sl = s->slots[i];
    worker *w = sl ? slot_take(sl) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!sl) break;
    retire(s, sl, w, METRICS_UNLOAD_SHUTDOWN, "shutdown");
  }
}

/* Everything sched_new may have made (also its failure path). */
static void sched_free_parts(sched *s) {
  for (size_t i = 0; i < s->n_slots; i++) {
    json_decref(s->slots[i]->ready);
    free(s->slots[i]);
  }
  free(s->slots);
  free(s->plan);
  for (size_t i = 0; i < s->n_old_mx; i++) matrix_free(s->old_mx[i]);
  free(s->old_mx);
  footprint_store_close(s->ms);
  json_decref(s->devices);
  metrics_free(s->mt);
  events_free(s->ev);
  free(s);
}

void sched_free(sched *s) {
  if (!s) return;
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->tell_mu);
  pthread_mutex_destroy(&s->reload_mu);
  pthread_cond_destroy(&s->cond);
  pthread_cond_destroy(&s->reaper_cond);
  sched_free_parts(s);
}
