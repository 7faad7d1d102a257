/* matrix_peer.c — the model matrix's peers (docs/CONFIG.md "Peers"): the top-level `peers:` list,
 * other Switchyard daemons whose models this daemon offers and forwards requests to. Each entry's
 * name, base URL (checked with libcurl's own URL parser, not by hand), API key, which of its
 * models to offer (a list, or all), how often its model list and state are read and how long a
 * connection may take, into a matrix_peer, plus the canonical signature a reload compares.
 *
 * This file must never accept a URL the forwarder cannot use as a base (a scheme other than
 * http/https, user info, a query or fragment, no host), a peer name that could not be printed
 * in a header or a log line, two peers of one name, or more than MATRIX_MAX_PEERS peers or
 * MATRIX_PEER_MAX_MODELS names in one list; and never leave a half-read peer where matrix_free
 * cannot find it. */
#include <curl/curl.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/matrix_int.h"

void mx_peer_clear(matrix_peer *p) {
  free(p->name);
  free(p->url);
  free(p->api_key);
  mx_strv_free(p->models, p->n_models);
  free(p->source);
  free(p->sig);
  memset(p, 0, sizeof *p);
}

static bool peer_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MATRIX_PEER_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') return false;
  return true;
}

/* A base URL: http or https, a host, an optional port and path prefix; nothing else. The stored
 * form is libcurl's normalised one without a trailing '/', so a request path is appended as is.
 * 0, or -1 with why. */
static int url_check(const char *s, char **out, char *why, size_t wl) {
  if (strlen(s) > MATRIX_PEER_URL_MAX) {
    snprintf(why, wl, "longer than %d bytes", MATRIX_PEER_URL_MAX);
    return -1;
  }
  for (const char *c = s; *c; c++)
    if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
      snprintf(why, wl, "spaces and control characters are not allowed");
      return -1;
    }
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *user = NULL, *pw = NULL, *query = NULL, *frag = NULL,
       *full = NULL;
  int rc = -1;
  if (!u) {
    snprintf(why, wl, "out of memory");
    return -1;
  }
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME);
  if (uc != CURLUE_OK) {
    snprintf(why, wl, "not a URL (%s)", curl_url_strerror(uc));
    goto out;
  }
  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_USER, &user, 0);
  curl_url_get(u, CURLUPART_PASSWORD, &pw, 0);
  curl_url_get(u, CURLUPART_QUERY, &query, 0);
  curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
  if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
    snprintf(why, wl, "the scheme must be http or https");
  else if (!host || !*host)
    snprintf(why, wl, "no host");
  else if (user || pw)
    snprintf(why, wl, "user info is not allowed (the key goes in api_key)");
  else if (query || frag)
    snprintf(why, wl, "a query or fragment is not allowed (a base URL only)");
  else if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK || !full)
    snprintf(why, wl, "out of memory");
  else {
    size_t n = strlen(full);
    while (n > 0 && full[n - 1] == '/') full[--n] = '\0';
    if (!(*out = strdup(full)))
      snprintf(why, wl, "out of memory");
    else
      rc = 0;
  }
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(user);
  curl_free(pw);
  curl_free(query);
  curl_free(frag);
  curl_free(full);
  curl_url_cleanup(u);
  return rc;
}

/* The canonical text of a peer's settings (a reload keeps its state when it is the same). */
static char *peer_signature(const matrix_peer *p) {
  json_t *models = json_array();
  for (size_t i = 0; i < p->n_models; i++) json_array_append_new(models, json_string(p->models[i]));
  json_t *j = json_pack("{s:s, s:s, s:s?, s:b, s:o, s:i, s:i}", "name", p->name, "url", p->url,
                        "api_key", p->api_key, "all", p->all, "models", models, "refresh",
                        p->refresh_s, "connect_timeout", p->connect_timeout_s);
  char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  return s;
}

enum { P_NAME, P_URL, P_API_KEY, P_MODELS, P_REFRESH, P_CONNECT_TIMEOUT, P_N };
static const char *const peer_keys[P_N] = {"name",   "url",     "api_key",
                                           "models", "refresh", "connect_timeout"};

/* A duration key in 1..hi seconds. */
static int want_secs(loader *l, const yaml_node_t *n, const char *path, int hi, int *out) {
  if (mx_want_duration(l, n, path, out)) return -1;
  if (*out < 1 || *out > hi) return mx_at(l, n, "%s: out of range (1..%d seconds)", path, hi);
  return 0;
}

static int load_peer(loader *l, const yaml_node_t *n, size_t idx, matrix_peer *p) {
  char path[48], kp[96], why[160];
  const char *s;
  snprintf(path, sizeof path, "peers[%zu]", idx);
  yaml_node_t *v[P_N];
  if (mx_want_map(l, n, path, peer_keys, P_N, v)) return -1;
  p->all = true;
  p->refresh_s = MATRIX_PEER_DEFAULT_REFRESH_S;
  p->connect_timeout_s = MATRIX_PEER_DEFAULT_CONNECT_TIMEOUT_S;
  if (!v[P_NAME]) return mx_at(l, n, "%s: 'name' is required", path);
  snprintf(kp, sizeof kp, "%s.name", path);
  if (mx_want_str_dup(l, v[P_NAME], kp, &p->name)) return -1;
  if (!peer_name_ok(p->name))
    return mx_at(l, v[P_NAME],
                 "%s: '%.64s' is not a valid peer name (1..%d letters, digits, '_', "
                 "'-' or '.')",
                 kp, p->name, MATRIX_PEER_NAME_MAX);
  for (size_t i = 0; i < idx; i++)
    if (!strcmp(l->m->peers[i].name, p->name))
      return mx_at(l, v[P_NAME], "%s: peer '%s' is defined twice", kp, p->name);
  char src[PATH_MAX + 32];
  snprintf(src, sizeof src, "%s:%zu", l->file, n->start_mark.line + 1);
  if (!(p->source = strdup(src))) return mx_oom(l);
  if (!v[P_URL])
    return mx_at(l, n, "%s: 'url' is required (the peer's base URL, http://HOST:PORT)", path);
  snprintf(kp, sizeof kp, "%s.url", path);
  if (mx_want_str(l, v[P_URL], kp, &s)) return -1;
  if (url_check(s, &p->url, why, sizeof why)) return mx_at(l, v[P_URL], "%s: %s", kp, why);
  if (v[P_API_KEY] && !mx_is_null(v[P_API_KEY])) {
    snprintf(kp, sizeof kp, "%s.api_key", path);
    if (mx_want_str_dup(l, v[P_API_KEY], kp, &p->api_key)) return -1;
    bool ok = *p->api_key && strlen(p->api_key) <= MATRIX_PEER_KEY_MAX;
    for (const char *c = p->api_key; *c && ok; c++) ok = *c > 0x20 && *c < 0x7f;
    if (!ok)
      return mx_at(l, v[P_API_KEY], "%s: 1..%d printable characters without spaces", kp,
                   MATRIX_PEER_KEY_MAX);
  }
  if (v[P_MODELS] && !mx_is_null(v[P_MODELS])) {
    snprintf(kp, sizeof kp, "%s.models", path);
    if (v[P_MODELS]->type == YAML_SCALAR_NODE) {
      if (strcmp(mx_sval(v[P_MODELS]), "all") != 0)
        return mx_at(l, v[P_MODELS], "%s: expected 'all' or a list of model names, got '%.64s'", kp,
                     mx_sval(v[P_MODELS]));
    } else {
      if (mx_want_str_list(l, v[P_MODELS], kp, &p->models, &p->n_models, mx_name_ok, "model name"))
        return -1;
      if (p->n_models == 0 || p->n_models > MATRIX_PEER_MAX_MODELS)
        return mx_at(l, v[P_MODELS], "%s: expected 1..%d names (or 'all')", kp,
                     MATRIX_PEER_MAX_MODELS);
      p->all = false;
    }
  }
  if (v[P_REFRESH]) {
    snprintf(kp, sizeof kp, "%s.refresh", path);
    if (want_secs(l, v[P_REFRESH], kp, MATRIX_PEER_MAX_REFRESH_S, &p->refresh_s)) return -1;
  }
  if (v[P_CONNECT_TIMEOUT]) {
    snprintf(kp, sizeof kp, "%s.connect_timeout", path);
    if (want_secs(l, v[P_CONNECT_TIMEOUT], kp, MATRIX_PEER_MAX_CONNECT_TIMEOUT_S,
                  &p->connect_timeout_s))
      return -1;
  }
  if (!(p->sig = peer_signature(p))) return mx_oom(l);
  return 0;
}

int mx_load_peers(loader *l, const yaml_node_t *n) {
  matrix *m = l->m;
  if (mx_is_null(n)) return 0;
  if (mx_want_kind(l, n, "peers", YAML_SEQUENCE_NODE)) return -1;
  size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cap > MATRIX_MAX_PEERS) return mx_at(l, n, "peers: at most %d peers", MATRIX_MAX_PEERS);
  if (cap && !(m->peers = calloc(cap, sizeof *m->peers))) return mx_oom(l);
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *e = mx_node(l, *it);
    if (!e) return mx_at(l, n, "peers: malformed list");
    size_t k = m->n_peers++; /* counted first, so matrix_free frees a half-read peer */
    if (load_peer(l, e, k, &m->peers[k])) return -1;
  }
  return 0;
}

const matrix_peer *matrix_find_peer(const matrix *m, const char *name) {
  if (!m || !name) return NULL;
  for (size_t i = 0; i < m->n_peers; i++)
    if (!strcmp(m->peers[i].name, name)) return &m->peers[i];
  return NULL;
}

bool matrix_peer_may_offer(const matrix *m, const char *name) {
  if (!m || !name) return false;
  for (size_t i = 0; i < m->n_peers; i++) {
    const matrix_peer *p = &m->peers[i];
    if (p->all) return true;
    for (size_t k = 0; k < p->n_models; k++)
      if (!strcmp(p->models[k], name)) return true;
  }
  return false;
}
