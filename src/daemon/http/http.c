/* http.c — see http.h. The only file that includes microhttpd.h.
 * Must never queue a response before the body is complete (keep-alive would be lost), never
 * buffer more than max_body_bytes of a body, never let a request with a foreign Host header
 * reach a handler while bound to loopback (DNS rebinding), never let a browser's write from
 * another origin reach one (CSRF: http_cross_origin_write). */
#include "http/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

#define HTTP_MAX_EXTRA_HEADERS 8

struct http_server {
  struct MHD_Daemon *mhd;
  http_params p;
  bool loopback;
  int port;
  /* upgraded connections (http_reply_upgrade) still running; http_stop waits for none */
  int stop_fd; /* eventfd: readable once http_stop began */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n_upgraded;
};

typedef struct upgrade_box {
  http_server *srv;
  http_upgrade_fn fn;
  void (*drop)(void *cls);
  void *cls;
  bool started;
} upgrade_box;

struct http_req {
  http_server *srv;
  struct MHD_Connection *conn;
  const char *method;
  const char *url;
  sy_buf body;
  bool too_large;
  bool early_reply; /* a reply was queued on the first call */
  struct MHD_Response *resp;
  unsigned status;
  bool abort;
  bool admin; /* authorized() found an admin key, or none is configured */
  char *hdr_name[HTTP_MAX_EXTRA_HEADERS];
  char *hdr_value[HTTP_MAX_EXTRA_HEADERS];
  int n_hdr;
  upgrade_box *upg; /* a 101 queued: its fn has run, or drop runs at the end */
};

const char *http_method(const http_req *r) { return r->method; }
const char *http_path(const http_req *r) { return r->url; }

const char *http_header(const http_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_body(const http_req *r, size_t *len) {
  if (len) *len = r->body.len;
  return r->body.data ? r->body.data : "";
}

bool http_is_admin(const http_req *r) { return r->admin; }

int http_client_fd(const http_req *r) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  return ci ? ci->connect_fd : -1;
}

void http_add_header(http_req *r, const char *name, const char *value) {
  if (r->n_hdr >= HTTP_MAX_EXTRA_HEADERS) return;
  char *n = strdup(name), *v = strdup(value);
  if (!n || !v) { /* out of memory: the header is left out, never half-set */
    free(n);
    free(v);
    return;
  }
  r->hdr_name[r->n_hdr] = n;
  r->hdr_value[r->n_hdr] = v;
  r->n_hdr++;
}

static void set_response(http_req *r, unsigned status, struct MHD_Response *resp) {
  if (!resp) {
    r->abort = true;
    return;
  }
  for (int i = 0; i < r->n_hdr; i++)
    if (r->hdr_name[i] && r->hdr_value[i])
      MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
  if (r->resp) MHD_destroy_response(r->resp);
  r->resp = resp;
  r->status = status;
}

void http_reply_json(http_req *r, unsigned status, json_t *json) {
  char *s = json ? json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
  json_decref(json);
  if (!s)
    s = strdup(
        "{\"error\":{\"message\":\"could not encode the response\",\"type\":\"server_error\","
        "\"param\":null,\"code\":null}}");
  size_t n = s ? strlen(s) : 0;
  struct MHD_Response *resp =
      s ? MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE) : NULL;
  if (resp)
    MHD_add_response_header(resp, "Content-Type", "application/json");
  else
    free(s);
  set_response(r, status, resp);
}

void http_reply_buf(http_req *r, unsigned status, const char *content_type, sy_buf *b) {
  struct MHD_Response *resp =
      b->len ? MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (resp && b->len) memset(b, 0, sizeof *b); /* MHD frees the bytes now */
  sy_buf_free(b);
  if (resp) MHD_add_response_header(resp, "Content-Type", content_type);
  set_response(r, resp ? status : 500, resp);
}

void http_reply_static(http_req *r, unsigned status, const char *content_type, const void *data,
                       size_t len) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)(len ? data : ""), MHD_RESPMEM_PERSISTENT);
  if (resp && content_type) MHD_add_response_header(resp, "Content-Type", content_type);
  set_response(r, resp ? status : 500, resp);
}

void http_reply_error(http_req *r, const api_error *e) {
  if (e->status >= 500)
    LOG_W("%s %s -> %d: %s", r->method, r->url, e->status, e->message);
  else
    LOG_D("%s %s -> %d: %s", r->method, r->url, e->status, e->message);
  if (e->retry_after_s > 0) {
    char v[16];
    snprintf(v, sizeof v, "%d", e->retry_after_s);
    http_add_header(r, "Retry-After", v);
  }
  const http_params *p = &r->srv->p;
  http_reply_json(r, (unsigned)e->status,
                  p->error_body ? p->error_body(r->url, e) : api_error_json(e));
}

typedef struct stream_box {
  http_stream_fn fn;
  void *cls;
  void (*free_fn)(void *);
} stream_box;

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  stream_box *b = cls;
  if (!b->fn) return MHD_CONTENT_READER_END_OF_STREAM;
  ssize_t n = b->fn(b->cls, buf, max);
  if (n == HTTP_STREAM_END) {
    /* The job is done: free it now, not when MHD destroys the response after the last chunk has
     * left. Its model goes back to the scheduler before the client can see the end, so a client's
     * next request (an unload, say) never finds the model still busy with this one. */
    if (b->free_fn) b->free_fn(b->cls);
    b->fn = NULL;
    b->free_fn = NULL;
    return MHD_CONTENT_READER_END_OF_STREAM;
  }
  if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
  return n;
}

static void stream_free(void *cls) {
  stream_box *b = cls;
  if (b->free_fn) b->free_fn(b->cls);
  free(b);
}

void http_reply_stream_raw(http_req *r, unsigned status, const char *const *names,
                           const char *const *values, size_t n, http_stream_fn fn, void *cls,
                           void (*free_fn)(void *cls)) {
  stream_box *b = malloc(sizeof *b);
  struct MHD_Response *resp = NULL;
  if (b) {
    *b = (stream_box){fn, cls, free_fn};
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, b,
                                             stream_free);
  }
  if (!resp) {
    free(b);
    if (free_fn) free_fn(cls);
    set_response(r, 500, NULL);
    return;
  }
  for (size_t i = 0; i < n; i++)
    if (MHD_add_response_header(resp, names[i], values[i]) != MHD_YES)
      LOG_D("http: header %s not relayed", names[i]);
  set_response(r, status, resp);
}

void http_reply_stream(http_req *r, unsigned status, const char *content_type, http_stream_fn fn,
                       void *cls, void (*free_fn)(void *cls)) {
  static const char *const names[] = {"Content-Type", "Cache-Control", "X-Accel-Buffering"};
  const char *values[] = {content_type, "no-cache", "no"};
  http_reply_stream_raw(r, status, names, values, 3, fn, cls, free_fn);
}

void http_reply_abort(http_req *r) { r->abort = true; }

static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                        size_t n_extra, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
  (void)conn;
  (void)con_cls;
  upgrade_box *b = cls;
  http_server *s = b->srv;
  b->started = true;
  pthread_mutex_lock(&s->mu);
  s->n_upgraded++;
  pthread_mutex_unlock(&s->mu);
  b->fn(b->cls, sock, extra, n_extra, s->stop_fd);
  MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
  pthread_mutex_lock(&s->mu);
  s->n_upgraded--;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

void http_reply_upgrade(http_req *r, http_upgrade_fn fn, void *cls, void (*drop)(void *cls)) {
  upgrade_box *b = r->upg ? NULL : calloc(1, sizeof *b);
  struct MHD_Response *resp = b ? MHD_create_response_for_upgrade(on_upgraded, b) : NULL;
  if (!resp) {
    free(b);
    if (drop) drop(cls);
    set_response(r, 500, NULL);
    return;
  }
  *b = (upgrade_box){r->srv, fn, drop, cls, false};
  r->upg = b;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
  set_response(r, 101, resp);
}

typedef struct each_ctx {
  int (*fn)(void *, const char *, const char *);
  void *ud;
} each_ctx;

static enum MHD_Result each_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
  (void)kind;
  each_ctx *c = cls;
  return c->fn(c->ud, key, value ? value : "") ? MHD_NO : MHD_YES;
}

void http_each_header(const http_req *r, int (*fn)(void *ud, const char *name, const char *value),
                      void *ud) {
  each_ctx c = {fn, ud};
  MHD_get_connection_values(r->conn, MHD_HEADER_KIND, each_header, &c);
}

typedef struct query_ctx {
  sy_buf *out;
  int rc;
} query_ctx;

static int query_escape(sy_buf *out, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    int rc = isalnum(c) || strchr("-._~", c) ? sy_buf_append(out, s, 1)
                                             : sy_buf_printf(out, "%%%02X", c);
    if (rc) return -1;
  }
  return 0;
}

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
  (void)kind;
  query_ctx *q = cls;
  if (q->rc == 0 && q->out->len && q->out->data[q->out->len - 1] != '?' &&
      sy_buf_append(q->out, "&", 1))
    q->rc = -1;
  if (q->rc == 0 && query_escape(q->out, key)) q->rc = -1;
  if (q->rc == 0 && value && (sy_buf_append(q->out, "=", 1) || query_escape(q->out, value)))
    q->rc = -1;
  return q->rc == 0 ? MHD_YES : MHD_NO;
}

const char *http_arg(const http_req *r, const char *name) {
  const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
  if (v) return v;
  /* a bare "?name" has a NULL value: present, empty */
  return MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), NULL,
                                       NULL) == MHD_YES
             ? ""
             : NULL;
}

int http_query(const http_req *r, sy_buf *out) {
  query_ctx q = {out, 0};
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, each_arg, &q);
  return q.rc;
}

unsigned http_reply_status(const http_req *r) { return r->abort || !r->resp ? 0 : r->status; }

const char *http_reply_header(const http_req *r, const char *name) {
  for (int i = 0; i < r->n_hdr; i++)
    if (strcasecmp(r->hdr_name[i], name) == 0) return r->hdr_value[i];
  return NULL;
}

bool http_host_is_loopback(const char *host) {
  if (!host) return true; /* HTTP/1.0 without Host: not a browser */
  char h[256];
  size_t n = strlen(host);
  if (n == 0 || n >= sizeof h) return false;
  memcpy(h, host, n + 1);
  if (h[0] == '[') { /* [::1] or [::1]:port */
    char *end = strchr(h, ']');
    if (!end || (end[1] != '\0' && end[1] != ':')) return false;
    *end = '\0';
    return strcmp(h + 1, "::1") == 0;
  }
  char *colon = strchr(h, ':');
  if (colon) {
    for (char *q = colon + 1; *q; q++)
      if (*q < '0' || *q > '9') return false;
    *colon = '\0';
  }
  if (strcasecmp(h, "localhost") == 0) return true;
  struct in_addr a;
  return inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

bool http_cross_origin_write(const char *method, const char *origin, const char *host) {
  if (!origin || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
      strcmp(method, "OPTIONS") == 0)
    return false;
  const char *sep = strstr(origin, "://"); /* "null", or scheme://host[:port] */
  return !sep || !host || strcasecmp(sep + 3, host) != 0;
}

bool http_path_is_public(const char *path) {
  return strcmp(path, "/health") == 0 || strcmp(path, "/") == 0 || strcmp(path, "/ui") == 0 ||
         strncmp(path, "/ui/", 4) == 0;
}

static bool key_equal(const char *a, const char *b) { /* constant time in the key's length */
  size_t la = strlen(a), lb = strlen(b);
  unsigned char d = (unsigned char)(la != lb);
  for (size_t i = 0; i < la; i++) d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
  return d == 0;
}

/* Whether key is one of keys[0..n) (NULL: no); every key is compared. */
static bool key_in(const char *const *keys, size_t n, const char *key) {
  bool ok = false;
  for (size_t i = 0; key && i < n; i++) ok |= key_equal(key, keys[i]);
  return ok;
}

/* A configured key in Authorization: Bearer (OpenAI's clients) or x-api-key (Anthropic's); an
 * admin key is an API key too. Sets r->admin. The public paths (/health, the status page) need
 * none. */
static bool authorized(const http_server *s, http_req *r) {
  const http_params *p = &s->p;
  r->admin = p->n_api_keys == 0 && p->n_admin_keys == 0;
  if (r->admin || http_path_is_public(r->url)) return true;
  const char *auth = http_header(r, "Authorization");
  const char *bearer = auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
  const char *xkey = http_header(r, "x-api-key");
  r->admin = key_in(p->admin_keys, p->n_admin_keys, bearer) ||
             key_in(p->admin_keys, p->n_admin_keys, xkey);
  if (r->admin || key_in(p->api_keys, p->n_api_keys, bearer) ||
      key_in(p->api_keys, p->n_api_keys, xkey))
    return true;
  /* a browser's WebSocket cannot set headers: OpenAI's realtime clients send the key as a
   * subprotocol, "openai-insecure-api-key.<key>" */
  const char *protos = http_header(r, "Sec-WebSocket-Protocol");
  static const char pfx[] = "openai-insecure-api-key.";
  for (const char *at = protos ? strstr(protos, pfx) : NULL; at; at = strstr(at + 1, pfx)) {
    char key[512];
    const char *k = at + sizeof pfx - 1;
    size_t n = strcspn(k, ", ");
    if (n == 0 || n >= sizeof key) continue;
    memcpy(key, k, n);
    key[n] = '\0';
    r->admin = key_in(p->admin_keys, p->n_admin_keys, key);
    if (r->admin || key_in(p->api_keys, p->n_api_keys, key)) return true;
  }
  return false;
}

static enum MHD_Result queue(struct MHD_Connection *conn, http_req *r) {
  if (r->abort || !r->resp) return MHD_NO;
  enum MHD_Result ret = MHD_queue_response(conn, r->status, r->resp);
  MHD_destroy_response(r->resp);
  r->resp = NULL;
  return ret;
}

static void reply_simple_error(http_req *r, int status, const char *type, const char *code,
                               const char *msg) {
  api_error e;
  api_error_set(&e, status, type, code, NULL, "%s", msg);
  http_reply_error(r, &e);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  http_server *s = cls;
  http_req *r = *con_cls;
  if (!r) { /* first call: headers only */
    r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    r->srv = s;
    r->conn = conn;
    r->method = method;
    r->url = url;
    r->body.limit = s->p.max_body_bytes;
    if (s->p.max_upload_bytes && strncmp(url, "/v1/audio/", 10) == 0)
      r->body.limit = s->p.max_upload_bytes;
    *con_cls = r;
    int nh = MHD_get_connection_values(conn, MHD_HEADER_KIND, NULL, NULL);
    const char *cl = http_header(r, "Content-Length");
    if (nh > s->p.max_headers) {
      reply_simple_error(r, 431, "invalid_request_error", "too_many_headers",
                         "too many request headers");
      r->early_reply = true;
    } else if (s->loopback && !http_host_is_loopback(http_header(r, "Host"))) {
      reply_simple_error(
          r, 403, "invalid_request_error", "host_not_allowed",
          "the Host header does not name this machine (the server listens on loopback only)");
      r->early_reply = true;
    } else if (http_cross_origin_write(method, http_header(r, "Origin"), http_header(r, "Host"))) {
      reply_simple_error(r, 403, "invalid_request_error", "cross_origin",
                         "a browser's request from another origin may not change anything here "
                         "(the Origin header does not match Host)");
      r->early_reply = true;
    } else if (cl && strtoull(cl, NULL, 10) > r->body.limit) {
      api_error e;
      api_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                    "the request body (%s bytes) is larger than the limit of %zu bytes%s", cl,
                    r->body.limit,
                    r->body.limit != s->p.max_body_bytes ? " (limits.max_upload_bytes)" : "");
      http_reply_error(r, &e);
      r->early_reply = true;
    }
    if (r->early_reply) return queue(conn, r);
    return MHD_YES;
  }
  if (r->early_reply) { /* already answered: swallow whatever MHD still hands us */
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (!r->too_large && sy_buf_append(&r->body, upload_data, *upload_data_size) != 0) {
      r->too_large = true;
      sy_buf_free(&r->body);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  /* the whole request is here */
  if (r->too_large) {
    api_error e;
    api_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                  "the request body is larger than the limit of %zu bytes%s", r->body.limit,
                  r->body.limit != s->p.max_body_bytes ? " (limits.max_upload_bytes)" : "");
    http_reply_error(r, &e);
  } else if (!authorized(s, r)) {
    reply_simple_error(
        r, 401, "invalid_request_error", "invalid_api_key",
        "missing or invalid API key (send Authorization: Bearer <key>, or x-api-key: <key>)");
  } else {
    s->p.handler(s->p.handler_ud, r);
    if (!r->resp && !r->abort)
      reply_simple_error(r, 500, "server_error", "no_response", "the handler produced no response");
  }
  return queue(conn, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  http_req *r = *con_cls;
  if (!r) return;
  if (r->upg) { /* the upgrade ran (it returned before this call) or never will */
    if (!r->upg->started && r->upg->drop) r->upg->drop(r->upg->cls);
    free(r->upg);
  }
  if (r->resp) MHD_destroy_response(r->resp);
  for (int i = 0; i < r->n_hdr; i++) {
    free(r->hdr_name[i]);
    free(r->hdr_value[i]);
  }
  sy_buf_free(&r->body);
  free(r);
  *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && line[n - 1] == '\n') line[--n] = '\0';
  LOG_D("http: %s", line);
}

http_server *http_start(const http_params *p, char *err, size_t errlen) {
  http_server *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->p = *p;
  if (s->p.max_headers <= 0) s->p.max_headers = 100;
  struct sockaddr_in6 a6 = {0};
  struct sockaddr_in a4 = {0};
  struct sockaddr *sa;
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
  s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->stop_fd < 0) {
    snprintf(err, errlen, "eventfd: out of descriptors");
    free(s);
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  const char *host = p->host && *p->host ? p->host : "127.0.0.1";
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    a4.sin_port = htons((uint16_t)p->port);
    sa = (struct sockaddr *)&a4;
    s->loopback = (ntohl(a4.sin_addr.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons((uint16_t)p->port);
    sa = (struct sockaddr *)&a6;
    flags |= MHD_USE_IPv6;
    s->loopback = IN6_IS_ADDR_LOOPBACK(&a6.sin6_addr);
  } else {
    snprintf(err, errlen, "listen address '%s' is not a numeric IPv4/IPv6 address or localhost",
             host);
    close(s->stop_fd);
    free(s);
    return NULL;
  }
  s->mhd = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)p->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)300, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
  if (!s->mhd) {
    snprintf(err, errlen, "could not listen on %s:%d (address in use?)", host, p->port);
    close(s->stop_fd);
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
  s->port = di ? di->port : p->port;
  return s;
}

int http_port(const http_server *s) { return s->port; }

void http_stop(http_server *s) {
  if (!s) return;
  /* upgraded connections are the application's: tell them, and wait until every one has ended
   * (MHD cannot stop with one still open) */
  uint64_t one = 1;
  if (write(s->stop_fd, &one, sizeof one) != (ssize_t)sizeof one)
    LOG_W("http: stop_fd not signalled");
  pthread_mutex_lock(&s->mu);
  while (s->n_upgraded > 0) pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
  MHD_stop_daemon(s->mhd);
  close(s->stop_fd);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}
