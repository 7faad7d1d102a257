/* peer.c — see peer.h. One thread per peer, blocking libcurl reads of the peer's GET /v1/models
 * and GET /api/ps (bounded in time and bytes), parsed by peer_offer.c, swapped into the peer under
 * its lock; readers copy what they need under that lock, so no JSON value is shared between
 * threads. Polling was chosen over following the peer's /api/events: the events say that
 * something changed, and the state would have to be read again anyway; a read after every
 * forwarded request (peer_touched) makes what this daemon's own clients did show at once.
 *
 * Must never block a request on a peer's read (requests only take the locks, briefly), never keep
 * a thread past peers_free (a read in progress is aborted by its progress callback), and never
 * free a peer a request may still hold (retired peers stay until peers_free). */
#include "engines/peer.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "engines/peer_offer.h"
#include "log.h"

#define PEER_MIN_GAP_MS                                                     \
  200 /* reads of one peer start at least this far apart (touches coalesce) \
       */

enum peer_state { PEER_UNKNOWN = 0, PEER_UP, PEER_DOWN };
static const char *const state_names[] = {"unknown", "up", "down"};

struct peer {
  /* settings: copied from the matrix, fixed for the peer's life */
  char *name, *url, *api_key, *sig;
  bool all;
  char **want;
  size_t n_want;
  int refresh_s, connect_timeout_s;
  pthread_t th;
  bool started;
  atomic_bool stop;
  pthread_mutex_t mu; /* guards everything below */
  pthread_cond_t cond;
  bool touched;          /* read again soon */
  enum peer_state state; /* what the last read found */
  peer_offer offer;      /* what the last good read found (kept while the peer is down) */
  long long last_ok_ms;  /* sy_mono_ms of the last good read; 0 = never */
  char why[256];         /* why the last read failed; "" after a good one */
};

struct peers {
  pthread_mutex_t mu;
  peer **all; /* every peer made, retired ones too: freed by peers_free */
  size_t n_all;
  peer **cur; /* the current matrix's, in config order */
  size_t n_cur;
};

/* ---- reading a peer ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  return sy_buf_append(ud, p, sz * n) == 0 ? sz * n : 0; /* past the bound: the read fails */
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  const peer *p = ud;
  return atomic_load(&p->stop) ? 1 : 0; /* the daemon is stopping: abort the read */
}

/* GET url + path into out (bounded); 0, or -1 with why. */
static int fetch(peer *p, const char *path, sy_buf *out, char *why, size_t wl) {
  char url[MATRIX_PEER_URL_MAX + 64], auth[MATRIX_PEER_KEY_MAX + 32];
  snprintf(url, sizeof url, "%s%s", p->url, path);
  out->limit = PEER_OFFER_MAX_BYTES;
  CURL *e = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, PEER_HOP_HEADER ": 1"), *h2 = NULL;
  if (h && p->api_key) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->api_key);
    if ((h2 = curl_slist_append(h, auth))) h = h2;
  }
  if (!e || !h || (p->api_key && !h2)) {
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    snprintf(why, wl, "out of memory");
    return -1;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_timeout_s * 1000L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)PEER_FETCH_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, p);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  curl_slist_free_all(h);
  if (rc != CURLE_OK) {
    snprintf(why, wl, "GET %s: %s", path,
             rc == CURLE_WRITE_ERROR ? "the answer is too large"
             : errbuf[0]             ? errbuf
                                     : curl_easy_strerror(rc));
    return -1;
  }
  if (status != 200) {
    snprintf(why, wl, "GET %s: HTTP %ld%s", path, status,
             status == 401 ? " (its API key: peers[].api_key)" : "");
    return -1;
  }
  return 0;
}

/* One read of the peer: its offer and state replaced under its lock. */
static void refresh(peer *p) {
  sy_buf models = {0}, ps = {0};
  char why[256] = "";
  peer_offer o = {0};
  bool ok = fetch(p, "/v1/models", &models, why, sizeof why) == 0;
  bool have_ps = ok && fetch(p, "/api/ps", &ps, why, sizeof why) == 0;
  if (ok && !have_ps) LOG_D("peer %s: %s (its state is not shown)", p->name, why);
  if (ok)
    ok = peer_offer_parse(models.data, models.len, have_ps ? ps.data : NULL, ps.len, p->name,
                          p->all, p->want, p->n_want, &o, why, sizeof why) == 0;
  sy_buf_free(&models);
  sy_buf_free(&ps);
  if (atomic_load(&p->stop)) { /* aborted: not a fact about the peer */
    peer_offer_clear(&o);
    return;
  }
  pthread_mutex_lock(&p->mu);
  enum peer_state was = p->state;
  if (ok) {
    peer_offer_clear(&p->offer);
    p->offer = o;
    p->state = PEER_UP;
    p->last_ok_ms = sy_mono_ms();
    p->why[0] = '\0';
  } else {
    p->state = PEER_DOWN;
    snprintf(p->why, sizeof p->why, "%s", why);
  }
  size_t n = json_array_size(p->offer.models);
  pthread_mutex_unlock(&p->mu);
  if (ok && was != PEER_UP)
    LOG_I("peer %s (%s): up, offering %zu model(s)", p->name, p->url, n);
  else if (!ok && was != PEER_DOWN)
    LOG_W("peer %s (%s): down: %s", p->name, p->url, why);
}

static void *peer_main(void *arg) {
  peer *p = arg;
  long long last = 0;
  while (!atomic_load(&p->stop)) {
    pthread_mutex_lock(&p->mu);
    for (;;) { /* two reads never closer than the gap */
      long long gap = last + PEER_MIN_GAP_MS - sy_mono_ms();
      if (gap <= 0 || atomic_load(&p->stop)) break;
      struct timespec ts = sy_deadline(gap);
      pthread_cond_timedwait(&p->cond, &p->mu, &ts);
    }
    p->touched = false;
    pthread_mutex_unlock(&p->mu);
    if (atomic_load(&p->stop)) break;
    last = sy_mono_ms();
    refresh(p);
    pthread_mutex_lock(&p->mu);
    struct timespec ts = sy_deadline((long long)p->refresh_s * 1000);
    while (!p->touched && !atomic_load(&p->stop))
      if (pthread_cond_timedwait(&p->cond, &p->mu, &ts) == ETIMEDOUT) break;
    pthread_mutex_unlock(&p->mu);
  }
  return NULL;
}

/* ---- the table ---- */

static void peer_free(peer *p) {
  if (!p) return;
  if (p->started) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
  }
  peer_offer_clear(&p->offer);
  free(p->name);
  free(p->url);
  free(p->api_key);
  free(p->sig);
  for (size_t i = 0; i < p->n_want; i++) free(p->want[i]);
  free(p->want);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cond);
  free(p);
}

/* Stop p's thread (a reload retired it); p itself stays for requests that hold it. */
static void peer_retire(peer *p) {
  if (!p->started) return;
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->stop, true);
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->th, NULL);
  p->started = false;
  LOG_I("peer %s: retired by a reload", p->name);
}

/* A peer for config mp, its thread not started yet; NULL when out of memory. */
static peer *peer_new(const matrix_peer *mp) {
  peer *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cond, NULL);
  p->all = mp->all;
  p->refresh_s = mp->refresh_s;
  p->connect_timeout_s = mp->connect_timeout_s;
  bool ok = (p->name = strdup(mp->name)) && (p->url = strdup(mp->url)) &&
            (p->sig = strdup(mp->sig)) && (!mp->api_key || (p->api_key = strdup(mp->api_key)));
  if (ok && mp->n_models && !(p->want = calloc(mp->n_models, sizeof *p->want))) ok = false;
  for (size_t i = 0; ok && i < mp->n_models; i++, p->n_want++)
    ok = (p->want[i] = strdup(mp->models[i])) != NULL;
  if (!ok) {
    peer_free(p);
    return NULL;
  }
  return p;
}

static int peer_start(peer *p) {
  if (pthread_create(&p->th, NULL, peer_main, p) != 0) return -1;
  p->started = true;
  return 0;
}

/* The current set for mx: unchanged peers of the table kept, the others made (not started). */
static int build(peers *ps, const matrix *mx, peer ***cur, peer ***made, size_t *n_made) {
  size_t n = mx ? mx->n_peers : 0;
  *cur = calloc(n ? n : 1, sizeof **cur);
  *made = calloc(n ? n : 1, sizeof **made);
  *n_made = 0;
  if (!*cur || !*made) return -1;
  for (size_t i = 0; i < n; i++) {
    const matrix_peer *mp = &mx->peers[i];
    peer *keep = NULL;
    for (size_t k = 0; !keep && k < ps->n_cur; k++)
      if (!strcmp(ps->cur[k]->sig, mp->sig)) keep = ps->cur[k];
    if (!keep) {
      if (!(keep = peer_new(mp))) return -1;
      (*made)[(*n_made)++] = keep;
    }
    (*cur)[i] = keep;
  }
  return 0;
}

int peers_reload(peers *ps, const matrix *mx) {
  peer **cur = NULL, **made = NULL;
  size_t n_made = 0, n = mx ? mx->n_peers : 0;
  pthread_mutex_lock(&ps->mu);
  peer **all = realloc(ps->all, (ps->n_all + n + 1) * sizeof *all);
  if (all) ps->all = all;
  if (!all || build(ps, mx, &cur, &made, &n_made) != 0) {
    pthread_mutex_unlock(&ps->mu);
    for (size_t i = 0; made && i < n_made; i++) peer_free(made[i]);
    free(made);
    free(cur);
    return -1;
  }
  peer **old = ps->cur;
  size_t n_old = ps->n_cur;
  ps->cur = cur;
  ps->n_cur = n;
  for (size_t i = 0; i < n_made; i++) ps->all[ps->n_all++] = made[i];
  pthread_mutex_unlock(&ps->mu);
  for (size_t i = 0; i < n_old; i++) { /* those not kept stop polling */
    bool kept = false;
    for (size_t k = 0; k < n; k++) kept |= cur[k] == old[i];
    if (!kept) peer_retire(old[i]);
  }
  free(old);
  for (size_t i = 0; i < n_made; i++)
    if (peer_start(made[i]) != 0) LOG_E("peer %s: cannot start its thread", made[i]->name);
  free(made);
  return 0;
}

peers *peers_new(const matrix *mx) {
  peers *ps = calloc(1, sizeof *ps);
  if (!ps) return NULL;
  pthread_mutex_init(&ps->mu, NULL);
  if (peers_reload(ps, mx) != 0) {
    peers_free(ps);
    return NULL;
  }
  return ps;
}

void peers_free(peers *ps) {
  if (!ps) return;
  for (size_t i = 0; i < ps->n_all; i++) peer_free(ps->all[i]);
  free(ps->all);
  free(ps->cur);
  pthread_mutex_destroy(&ps->mu);
  free(ps);
}

/* Whether p's models list names name (a peer never read yet offers those: they answer 503 until it
 * answers, not 404). */
static bool wants(const peer *p, const char *name) {
  for (size_t i = 0; !p->all && i < p->n_want; i++)
    if (!strcmp(p->want[i], name)) return true;
  return false;
}

peer *peers_find(peers *ps, const char *name) {
  if (!ps || !name) return NULL;
  peer *found = NULL;
  pthread_mutex_lock(&ps->mu);
  for (size_t i = 0; !found && i < ps->n_cur; i++) {
    peer *p = ps->cur[i];
    pthread_mutex_lock(&p->mu);
    if (peer_offer_has(&p->offer, name) || (p->last_ok_ms == 0 && wants(p, name))) found = p;
    pthread_mutex_unlock(&p->mu);
  }
  pthread_mutex_unlock(&ps->mu);
  return found;
}

/* Whether a peer before cur[i] offers name (it serves the name, not cur[i]). The caller holds the
 * table's lock (and may hold cur[i]'s: only a holder of the table's lock takes two peers' locks,
 * so this cannot deadlock with a poller, which takes one). */
static bool offered_earlier(peers *ps, size_t i, const char *name) {
  bool has = false;
  for (size_t j = 0; !has && j < i; j++) {
    pthread_mutex_lock(&ps->cur[j]->mu);
    has = peer_offer_has(&ps->cur[j]->offer, name);
    pthread_mutex_unlock(&ps->cur[j]->mu);
  }
  return has;
}

/* Whether name is taken by the local matrix (which wins over every peer). */
static bool local_name(const matrix *mx, const char *name) {
  return matrix_find(mx, name) || matrix_find_router(mx, name) || matrix_find_pipeline(mx, name);
}

void peers_models_json(peers *ps, const matrix *local, json_t *data) {
  if (!ps) return;
  pthread_mutex_lock(&ps->mu);
  for (size_t i = 0; i < ps->n_cur; i++) {
    peer *p = ps->cur[i];
    pthread_mutex_lock(&p->mu);
    size_t k;
    json_t *e;
    json_array_foreach(p->offer.models, k, e) {
      const char *id = json_string_value(json_object_get(e, "id"));
      if (local_name(local, id) || offered_earlier(ps, i, id)) continue;
      json_t *c = json_deep_copy(e);
      if (c) json_object_set_new(c, "peer_state", json_string(state_names[p->state]));
      json_array_append_new(data, c);
    }
    pthread_mutex_unlock(&p->mu);
  }
  pthread_mutex_unlock(&ps->mu);
}

json_t *peers_model_json(peers *ps, const char *name) {
  peer *p = peers_find(ps, name);
  if (!p) return NULL;
  pthread_mutex_lock(&p->mu);
  json_t *c = json_deep_copy(peer_offer_entry(&p->offer, name));
  if (c) json_object_set_new(c, "peer_state", json_string(state_names[p->state]));
  pthread_mutex_unlock(&p->mu);
  return c;
}

void peers_ps_json(peers *ps, const matrix *local, json_t *ps_obj) {
  if (!ps) return;
  json_t *models = json_object_get(ps_obj, "models"), *list = json_array();
  long long now = sy_mono_ms();
  pthread_mutex_lock(&ps->mu);
  for (size_t i = 0; i < ps->n_cur; i++) {
    peer *p = ps->cur[i];
    pthread_mutex_lock(&p->mu);
    size_t k;
    json_t *e;
    json_array_foreach(p->offer.ps, k, e) {
      const char *name = json_string_value(json_object_get(e, "name"));
      if (local_name(local, name) || offered_earlier(ps, i, name)) continue;
      json_array_append_new(models, json_deep_copy(e));
    }
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:I}", "name", p->name, "url", p->url, "state",
                  state_names[p->state], "models", (json_int_t)json_array_size(p->offer.models));
    if (o && p->last_ok_ms)
      json_object_set_new(o, "seen_s_ago", json_integer((now - p->last_ok_ms) / 1000));
    if (o && p->why[0]) json_object_set_new(o, "error", json_string(p->why));
    if (o && p->offer.memory) json_object_set_new(o, "memory", json_deep_copy(p->offer.memory));
    if (o && p->offer.devices) json_object_set_new(o, "devices", json_deep_copy(p->offer.devices));
    pthread_mutex_unlock(&p->mu);
    json_array_append_new(list, o);
  }
  pthread_mutex_unlock(&ps->mu);
  json_object_set_new(ps_obj, "peers", list);
}

const char *peer_name(const peer *p) { return p->name; }
const char *peer_url(const peer *p) { return p->url; }
const char *peer_api_key(const peer *p) { return p->api_key; }
int peer_connect_timeout_ms(const peer *p) { return p->connect_timeout_s * 1000; }
int peer_retry_after_s(const peer *p) { return p->refresh_s; }

void peer_touched(peer *p, bool unreachable) {
  pthread_mutex_lock(&p->mu);
  p->touched = true;
  if (unreachable && p->state != PEER_DOWN) {
    p->state = PEER_DOWN;
    snprintf(p->why, sizeof p->why, "a forwarded request could not connect");
  }
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->mu);
}
