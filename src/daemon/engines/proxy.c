/* proxy.c — see proxy.h. One libcurl transfer per request, driven on the request's own HTTP
 * thread (thread-per-connection): first until the upstream's status and headers are known (so an
 * upstream that fails before answering becomes a proper 502, or a peer that cannot be reached a
 * 503), then, inside the streaming body callback, until the next bytes arrive. Nothing is buffered
 * beyond PROXY_MAX_BUFFERED, so SSE chunks reach the client as the upstream sends them. External
 * engines and peers share this one relay (relay()); only the far end differs: a held worker on
 * 127.0.0.1, or a peer's URL with its key and the hop mark.
 * Must never let an upstream's bytes or headers grow without a bound, never leave a transfer
 * running after the client went away, never release the model before the transfer ends, never
 * pass the client's API key on, and never forward a request that already came from a peer. */
#include "engines/proxy.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "http/api_error.h"
#include "log.h"
#include "ws/ws_handshake.h"

#define PROXY_MAX_BUFFERED (1 << 20)    /* upstream bytes held before the transfer is paused */
#define PROXY_MAX_HEADERS 64            /* upstream response headers relayed */
#define PROXY_MAX_HEADER_BYTES 16384    /* their total size */
#define PROXY_POLL_MS 200               /* how often a wait looks at the client's socket */
#define PROXY_CONNECT_TIMEOUT_MS 10000L /* to an external engine on 127.0.0.1 */

typedef struct proxy_job {
  sy_daemon *d;
  const matrix_model *m; /* an external engine's model (held: w), or NULL */
  worker *w;
  peer *p;        /* a peer's model: the peer (told when the transfer ends), or NULL */
  char what[320]; /* the far side, for messages: "model 'x' (external engine)", "peer 'p' (URL)" */
  CURL *e;
  CURLM *multi;
  struct curl_slist *req_hdrs;
  int client_fd;
  long status; /* the upstream's final status, 0 until known */
  bool headers_done;
  bool done; /* the transfer ended */
  CURLcode result;
  bool paused;    /* the write callback paused the transfer (buffer full) */
  bool sse;       /* the upstream answers text/event-stream */
  bool tail_sent; /* the closing error event (SSE) is queued */
  sy_buf out;     /* upstream body bytes not yet given to the client */
  char *hname[PROXY_MAX_HEADERS], *hvalue[PROXY_MAX_HEADERS];
  size_t n_h, h_bytes;
  char errbuf[CURL_ERROR_SIZE];
} proxy_job;

/* Hop-by-hop headers (RFC 9110 7.6.1) and those the two sides set for themselves. */
static bool hop_header(const char *name) {
  static const char *const hop[] = {"Connection",
                                    "Keep-Alive",
                                    "Proxy-Authenticate",
                                    "Proxy-Authorization",
                                    "TE",
                                    "Trailer",
                                    "Transfer-Encoding",
                                    "Upgrade",
                                    "Content-Length",
                                    "Host",
                                    "Expect",
                                    "Date"};
  for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
    if (strcasecmp(name, hop[i]) == 0) return true;
  return false;
}

static void job_clear_headers(proxy_job *j) {
  for (size_t i = 0; i < j->n_h; i++) {
    free(j->hname[i]);
    free(j->hvalue[i]);
  }
  j->n_h = j->h_bytes = 0;
}

/* A response header line from the upstream. A status line starts a new header block (so a
 * 100 Continue's headers are forgotten); the blank line ends it. */
static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
  proxy_job *j = ud;
  size_t n = sz * nm, len = n;
  while (len && (p[len - 1] == '\r' || p[len - 1] == '\n')) len--;
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    job_clear_headers(j);
    j->status = 0;
    return n;
  }
  if (len == 0) {
    long code = 0;
    curl_easy_getinfo(j->e, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200) {
      j->status = code;
      j->headers_done = true;
    }
    return n;
  }
  const char *colon = memchr(p, ':', len);
  if (!colon || colon == p || j->n_h >= PROXY_MAX_HEADERS ||
      j->h_bytes + len > PROXY_MAX_HEADER_BYTES)
    return n;
  size_t nl = (size_t)(colon - p);
  const char *v = colon + 1;
  while (v < p + len && (*v == ' ' || *v == '\t')) v++;
  char *name = strndup(p, nl), *value = strndup(v, (size_t)(p + len - v));
  bool ok = name && value;
  for (size_t i = 0; ok && name[i]; i++) ok = name[i] > 0x20 && name[i] < 0x7f;
  for (size_t i = 0; ok && value[i]; i++) ok = (unsigned char)value[i] >= 0x20 || value[i] == '\t';
  if (!ok || hop_header(name)) {
    free(name);
    free(value);
    return n;
  }
  if (strcasecmp(name, "Content-Type") == 0 && strncasecmp(value, "text/event-stream", 17) == 0)
    j->sse = true;
  j->hname[j->n_h] = name;
  j->hvalue[j->n_h++] = value;
  j->h_bytes += len;
  return n;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
  proxy_job *j = ud;
  size_t n = sz * nm;
  if (j->out.len + n > PROXY_MAX_BUFFERED) {
    j->paused = true; /* the same bytes come again after curl_easy_pause(CONT) */
    return CURL_WRITEFUNC_PAUSE;
  }
  if (sy_buf_append(&j->out, p, n) != 0) return 0; /* out of memory: fails the transfer */
  return n;
}

enum { DRIVE_OK, DRIVE_GONE };

/* Run the transfer until want(j) holds or it ends; DRIVE_GONE if the client hung up meanwhile. */
static int drive(proxy_job *j, bool (*want)(const proxy_job *)) {
  for (;;) {
    int running = 0;
    curl_multi_perform(j->multi, &running);
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(j->multi, &left)))
      if (msg->msg == CURLMSG_DONE) {
        j->done = true;
        j->result = msg->data.result;
      }
    if (j->done || want(j)) return DRIVE_OK;
    if (j->client_fd >= 0 && fd_peer_gone(j->client_fd)) return DRIVE_GONE;
    curl_multi_poll(j->multi, NULL, 0, PROXY_POLL_MS, NULL);
  }
}

static bool want_headers(const proxy_job *j) { return j->headers_done; }
static bool want_bytes(const proxy_job *j) { return j->out.len > 0; }

static void job_free(void *cls) {
  proxy_job *j = cls;
  if (j->multi && j->e) curl_multi_remove_handle(j->multi, j->e);
  if (j->e) curl_easy_cleanup(j->e);
  if (j->multi) curl_multi_cleanup(j->multi);
  curl_slist_free_all(j->req_hdrs);
  job_clear_headers(j);
  sy_buf_free(&j->out);
  if (j->w) sched_release(j->d->sc, j->m, j->w);
  if (j->p) peer_touched(j->p, false); /* its state changed: read it again soon */
  free(j);
}

/* The transfer never reached the far side (no connection was made). */
static bool never_connected(proxy_job *j) {
  curl_off_t t = 0;
  if (j->result == CURLE_COULDNT_CONNECT || j->result == CURLE_COULDNT_RESOLVE_HOST) return true;
  return j->result == CURLE_OPERATION_TIMEDOUT &&
         curl_easy_getinfo(j->e, CURLINFO_CONNECT_TIME_T, &t) == CURLE_OK && t == 0;
}

/* Why the transfer failed, for the client. */
static void upstream_error(proxy_job *j, api_error *err) {
  const char *why = j->errbuf[0] ? j->errbuf : curl_easy_strerror(j->result);
  if (j->p) { /* a peer: down (503, come back later), or broke while answering (502) */
    if (!j->headers_done && never_connected(j)) {
      api_error_set(err, 503, "server_error", "peer_unavailable", NULL, "%s cannot be reached: %s",
                    j->what, why);
      err->retry_after_s = peer_retry_after_s(j->p);
    } else {
      api_error_set(err, 502, "server_error", "peer_error", NULL, "%s: %s", j->what, why);
    }
    return;
  }
  /* a connection that broke is most often a process that died: give its reader a moment to see it
   */
  bool dead = worker_wait_dead(j->w, 1000);
  api_error_set(err, 502, "server_error", dead ? "upstream_crashed" : "upstream_error", NULL,
                "%s%s: %s", j->what, dead ? " exited while serving this request" : "", why);
}

static ssize_t body_read(void *cls, char *buf, size_t max) {
  proxy_job *j = cls;
  for (;;) {
    if (j->out.len) {
      return (ssize_t)sy_buf_take(&j->out, buf, max);
    }
    if (j->done) {
      if (j->result == CURLE_OK) return HTTP_STREAM_END;
      if (!j->sse || j->tail_sent) return j->sse ? HTTP_STREAM_END : HTTP_STREAM_ABORT;
      /* an event stream cut short: its readers get an OpenAI-style error event, then the end */
      api_error e;
      upstream_error(j, &e);
      LOG_W("proxy: %s", e.message);
      json_t *ej = api_error_json(&e);
      char *s = ej ? json_dumps(ej, JSON_COMPACT) : NULL;
      json_decref(ej);
      j->tail_sent = true;
      int rc = s ? sy_buf_printf(&j->out, "data: %s\n\n", s) : -1;
      free(s);
      if (rc) return HTTP_STREAM_ABORT;
      continue;
    }
    if (j->paused) {
      j->paused = false;
      curl_easy_pause(j->e, CURLPAUSE_CONT);
    }
    if (drive(j, want_bytes) == DRIVE_GONE) {
      LOG_I("proxy: the client went away; the transfer to %s cancelled", j->what);
      atomic_fetch_add(&j->d->cancelled, 1);
      return HTTP_STREAM_ABORT;
    }
  }
}

typedef struct hdr_ctx {
  proxy_job *j;
  int rc;
} hdr_ctx;

static int copy_header(void *ud, const char *name, const char *value) {
  hdr_ctx *c = ud;
  if (hop_header(name) || strcasecmp(name, "Authorization") == 0 ||
      strcasecmp(name, "x-api-key") == 0 || strcasecmp(name, PEER_HOP_HEADER) == 0)
    return 0; /* our API key stays here (a peer gets its own); the hop mark is ours to set */
  size_t len = strlen(name) + strlen(value) + 3;
  char *line = malloc(len);
  if (!line) return c->rc = -1;
  snprintf(line, len, "%s: %s", name, value);
  struct curl_slist *n = curl_slist_append(c->j->req_hdrs, line);
  free(line);
  if (!n) return c->rc = -1;
  c->j->req_hdrs = n;
  return 0;
}

/* The headers q adds to an answer: just before a reply (never when nothing is answered). */
static void add_headers(http_req *r, const proxy_peer_req *q) {
  for (size_t i = 0; q && i < q->n_hdr && i < PROXY_PEER_MAX_HEADERS; i++)
    http_add_header(r, q->hdr_names[i], q->hdr_values[i]);
}

/* Relay request r as j says (j->m and j->w: an external engine's, held; or j->p: a peer, q what
 * proxy_peer was asked) to base + path and the request's query string. Answers r and returns 0;
 * or, for a peer that could not be reached when q->fall_back, answers nothing (the headers q adds
 * are only sent with a reply) and returns PROXY_UNREACHABLE with *err (503 + Retry-After). j is
 * owned (freed here or by the reply). */
static int relay(sy_daemon *d, http_req *r, proxy_job *j, const char *base, const char *path,
                 const proxy_peer_req *q, api_error *err) {
  const char *body = q ? q->body : NULL;
  size_t blen = q ? q->len : 0;
  atomic_fetch_add(&d->requests, 1);
  j->d = d;
  j->client_fd = http_client_fd(r);
  j->out.limit = PROXY_MAX_BUFFERED + CURL_MAX_WRITE_SIZE + 4096;
  sy_buf url = {.limit = 64 * 1024};
  hdr_ctx hc = {j, 0};
  int rc = sy_buf_printf(&url, "%s%s", base, path);
  if (rc == 0) {
    size_t mark = url.len;
    rc = sy_buf_append(&url, "?", 1) || http_query(r, &url);
    if (rc == 0 && url.len == mark + 1) url.data[--url.len] = '\0';
  }
  j->e = curl_easy_init();
  j->multi = curl_multi_init();
  if (rc == 0) http_each_header(r, copy_header, &hc);
  struct curl_slist *n = hc.rc == 0 ? curl_slist_append(j->req_hdrs, "Expect:") : NULL;
  if (n) j->req_hdrs = n;
  if (n && j->p) { /* a peer: our mark, and its own key */
    char auth[MATRIX_PEER_KEY_MAX + 32];
    n = curl_slist_append(j->req_hdrs, PEER_HOP_HEADER ": 1");
    if (n) j->req_hdrs = n;
    if (n && peer_api_key(j->p)) {
      snprintf(auth, sizeof auth, "Authorization: Bearer %s", peer_api_key(j->p));
      if ((n = curl_slist_append(j->req_hdrs, auth))) j->req_hdrs = n;
    }
  }
  if (rc || hc.rc || !n || !j->e || !j->multi) {
    sy_buf_free(&url);
    job_free(j);
    API_SERVER(err, "out_of_memory", "out of memory (or a request URL over 64 KiB)");
    add_headers(r, q);
    http_reply_error(r, err);
    return 0;
  }
  const char *method = http_method(r);
  if (!body) body = http_body(r, &blen);
  CURL *e = j->e;
  curl_easy_setopt(e, CURLOPT_URL, url.data);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, j->p ? "http,https" : "http");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   j->p ? (long)peer_connect_timeout_ms(j->p) : PROXY_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->req_hdrs);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "GET") != 0 || blen > 0) {
    /* copied: the request's buffer may go before a slow upstream has read it all */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  sy_buf_free(&url);
  curl_multi_add_handle(j->multi, e);
  if (drive(j, want_headers) == DRIVE_GONE) {
    atomic_fetch_add(&d->cancelled, 1);
    job_free(j);
    http_reply_abort(r);
    return 0;
  }
  if (!j->headers_done) { /* failed before it answered */
    upstream_error(j, err);
    bool down = j->p && err->status == 503;
    if (down) peer_touched(j->p, true);
    job_free(j);
    if (down && q && q->fall_back) return PROXY_UNREACHABLE;
    add_headers(r, q);
    http_reply_error(r, err);
    return 0;
  }
  if (j->p) peer_touched(j->p, false); /* busy there now: /api/ps may show it */
  const char *names[PROXY_MAX_HEADERS + 1], *values[PROXY_MAX_HEADERS + 1];
  size_t nh = 0;
  for (size_t i = 0; i < j->n_h; i++, nh++) {
    names[nh] = j->hname[i];
    values[nh] = j->hvalue[i];
  }
  if (j->p) { /* the peer's X-Switchyard-Model (what it served) is relayed as it is */
    names[nh] = "X-Switchyard-Peer";
    values[nh++] = peer_name(j->p);
  } else {
    names[nh] = "X-Switchyard-Model";
    values[nh++] = j->m->name;
  }
  add_headers(r, q);
  http_reply_stream_raw(r, (unsigned)j->status, names, values, nh, body_read, j, job_free);
  return 0;
}

/* An external engine's model m: held for the whole transfer. */
static void relay_external(sy_daemon *d, http_req *r, const matrix_model *m, const char *path) {
  api_error err = {0};
  worker *w = sched_acquire(d->sc, m, &err);
  if (!w) {
    http_reply_error(r, &err);
    return;
  }
  proxy_job *j = calloc(1, sizeof *j);
  if (!j) {
    sched_release(d->sc, m, w);
    API_SERVER(&err, "out_of_memory", "out of memory");
    http_reply_error(r, &err);
    return;
  }
  j->m = m;
  j->w = w;
  snprintf(j->what, sizeof j->what, "model '%.200s' (external engine)", m->name);
  char base[64];
  snprintf(base, sizeof base, "http://127.0.0.1:%d", worker_port(w));
  relay(d, r, j, base, path, NULL, &err);
}

static void reply(http_req *r, int status, const char *type, const char *code, const char *param,
                  const char *msg) {
  api_error e;
  api_error_set(&e, status, type, code, param, "%s", msg);
  http_reply_error(r, &e);
}

void proxy_upstream(sy_daemon *d, http_req *r, const char *rest) {
  const matrix *mx = atomic_load(&d->mx);
  char msg[512];
  const char *slash = strchr(rest, '/');
  size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
  char mname[160];
  if (nl == 0 || nl >= sizeof mname) {
    reply(r, 404, "invalid_request_error", "model_not_found", NULL,
          "/upstream/<model>/<path>: no model named");
    return;
  }
  memcpy(mname, rest, nl);
  mname[nl] = '\0';
  const matrix_model *m = matrix_find(mx, mname);
  if (!m || m->engine != MATRIX_ENGINE_EXTERNAL || !m->ext->upstream) {
    snprintf(msg, sizeof msg,
             "'%.160s' is not an external model with upstream pass-through (/upstream/<model>/...)",
             mname);
    reply(r, 404, "invalid_request_error", "model_not_found", NULL, msg);
    return;
  }
  if (ws_is_upgrade(http_header(r, "Upgrade"), http_header(r, "Connection")))
    proxy_ws_upstream(d, r, m, slash ? slash : "/");
  else
    relay_external(d, r, m, slash ? slash : "/");
}

void proxy_serve(sy_daemon *d, http_req *r, const matrix_model *m) {
  const char *path = http_path(r);
  if (!matrix_ext_serves(m, path)) {
    char msg[512];
    snprintf(msg, sizeof msg,
             "model '%.200s' is an external engine that does not serve %.100s (see its routes)",
             m->name, path);
    reply(r, 400, "invalid_request_error", "wrong_capability", "model", msg);
    return;
  }
  relay_external(d, r, m, path);
}

int proxy_peer(sy_daemon *d, http_req *r, peer *p, const proxy_peer_req *q, api_error *err) {
  memset(err, 0, sizeof *err);
  if (http_header(r, PEER_HOP_HEADER)) { /* it came from a peer: forwarding again could loop */
    api_error_set(err, 508, "server_error", "peer_loop", "model",
                  "model '%.200s' is peer %s's, and this request was already forwarded once by a "
                  "peer (%s): a request is forwarded at most once",
                  q->model, peer_name(p), PEER_HOP_HEADER);
    http_reply_error(r, err);
    return 0;
  }
  proxy_job *j = calloc(1, sizeof *j);
  if (!j) {
    API_SERVER(err, "out_of_memory", "out of memory");
    http_reply_error(r, err);
    return 0;
  }
  j->p = p;
  snprintf(j->what, sizeof j->what, "model '%.128s' of peer %s (%.160s)", q->model, peer_name(p),
           peer_url(p));
  return relay(d, r, j, peer_url(p), http_path(r), q, err);
}
