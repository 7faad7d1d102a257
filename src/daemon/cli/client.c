/* client.c — the CLI's one HTTP client (cli.h): where the daemon is (SWITCHYARD_HOST, --host,
 * --port), the API key (SWITCHYARD_API_KEY, --api-key), requests with JSON replies, streamed
 * replies line by line, and the messages every verb prints when no daemon answers or the daemon
 * says no. libcurl, as the daemon itself links it. Also cli_main: the verb table. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argnum.h"
#include "cli/cli.h"

#define CLI_DEFAULT_HOST "127.0.0.1"
#define CLI_DEFAULT_PORT 8080
#define CLI_MAX_REPLY (64 << 20) /* a non-streamed reply larger than this is refused */
#define CLI_MAX_LINE (4 << 20)   /* one streamed line */
#define CLI_CONNECT_TIMEOUT_S 10L

static const struct {
  const char *verb;
  int (*fn)(int, char **);
} verbs[] = {{"run", cli_run},   {"list", cli_list},
             {"ls", cli_list},   {"ps", cli_ps},
             {"show", cli_show}, {"load", cli_load},
             {"stop", cli_stop}, {"pull", cli_pull},
             {"rm", cli_rm},     {"rpc-server", cli_rpc_server}};

int cli_main(int argc, char **argv) {
  for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++)
    if (strcmp(argv[0], verbs[i].verb) == 0) {
      curl_global_init(CURL_GLOBAL_DEFAULT);
      int rc = verbs[i].fn(argc, argv);
      curl_global_cleanup();
      return rc;
    }
  fprintf(stderr, "switchyard: unknown command '%s' (see switchyard --help)\n", argv[0]);
  return 2;
}

void cli_conn_init(cli_conn *c, const char *verb) {
  memset(c, 0, sizeof *c);
  c->verb = verb;
  c->port = -1;
  const char *k = getenv("SWITCHYARD_API_KEY");
  c->key = k && *k ? k : NULL;
}

int cli_conn_option(cli_conn *c, int opt, const char *arg, const char *usage) {
  long num;
  switch (opt) {
    case 'h':
      fputs(usage, stdout);
      return -2;
    case 'H':
      c->host = arg;
      return 1;
    case 'k':
      c->key = arg;
      return 1;
    case 'p':
      if (sy_parse_long(arg, 1, 65535, &num) != 0) {
        fprintf(stderr, "switchyard %s: --port must be 1..65535, not '%s'\n", c->verb, arg);
        return -1;
      }
      c->port = (int)num;
      return 1;
    default:
      return 0;
  }
}

/* SWITCHYARD_HOST / --host: "host", "host:port", ":port", "[v6]" or "[v6]:port", a bare IPv6
 * address (more than one ':'), or a URL "http(s)://HOSTPORT[/]". --port wins over a port in it. */
int cli_conn_resolve(cli_conn *c) {
  const char *spec = c->host ? c->host : getenv("SWITCHYARD_HOST");
  const char *scheme = "http";
  char host[300] = CLI_DEFAULT_HOST;
  long port = CLI_DEFAULT_PORT;
  if (spec && *spec) {
    const char *s = spec;
    if (strncmp(s, "http://", 7) == 0) {
      s += 7;
    } else if (strncmp(s, "https://", 8) == 0) {
      s += 8;
      scheme = "https";
      port = 443;
    }
    size_t n = strcspn(s, "/"); /* a URL's path is ignored */
    char hp[300];
    if (n == 0 || n >= sizeof hp) goto bad;
    memcpy(hp, s, n);
    hp[n] = '\0';
    const char *ps = NULL;
    if (hp[0] == '[') {
      char *end = strchr(hp, ']');
      if (!end || end == hp + 1) goto bad;
      *end = '\0';
      snprintf(host, sizeof host, "%s", hp + 1);
      if (end[1] == ':')
        ps = end + 2;
      else if (end[1])
        goto bad;
    } else {
      char *colon = strchr(hp, ':');
      if (colon && strchr(colon + 1, ':')) { /* a bare IPv6 address */
        snprintf(host, sizeof host, "%s", hp);
      } else {
        if (colon) {
          *colon = '\0';
          ps = colon + 1;
        }
        if (hp[0]) snprintf(host, sizeof host, "%s", hp);
      }
    }
    if (ps && sy_parse_long(ps, 1, 65535, &port) != 0) goto bad;
  }
  if (c->port > 0) port = c->port;
  bool v6 = strchr(host, ':') != NULL;
  snprintf(c->base, sizeof c->base, "%s://%s%s%s:%ld", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
           port);
  return 0;
bad:
  fprintf(stderr,
          "switchyard %s: %s '%s' is not host, host:port, [ipv6]:port or http://host:port\n",
          c->verb, c->host ? "--host" : "SWITCHYARD_HOST", spec);
  return -1;
}

void cli_reply_free(cli_reply *r) {
  json_decref(r->json);
  sy_buf_free(&r->body);
  memset(r, 0, sizeof *r);
}

/* The streamed request's state (cli_stream); plain requests use it too, with no on_line. */
typedef struct stream_ctx {
  CURL *cu;
  cli_reply *r;
  sy_buf line;
  bool (*on_line)(const char *, size_t, void *);
  void *ud;
  volatile int *cancel;
  bool hung_up;
} stream_ctx;

static bool ok_status(long s) { return s >= 200 && s < 300; }

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  stream_ctx *s = ud;
  size_t len = sz * n;
  if (!s->r->status) curl_easy_getinfo(s->cu, CURLINFO_RESPONSE_CODE, &s->r->status);
  if (!s->on_line || !ok_status(s->r->status))
    return sy_buf_append(&s->r->body, p, len) == 0 ? len : 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] != '\n') {
      if (sy_buf_append(&s->line, p + i, 1) != 0) return 0; /* a line past CLI_MAX_LINE */
      continue;
    }
    size_t ll = s->line.len;
    if (ll && s->line.data[ll - 1] == '\r') ll--;
    bool go = s->on_line(s->line.data ? s->line.data : "", ll, s->ud);
    s->line.len = 0;
    if (!go) {
      s->hung_up = true;
      return 0;
    }
  }
  return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  const stream_ctx *s = ud;
  return s->cancel && *s->cancel ? 1 : 0;
}

static void no_daemon(const cli_conn *c, CURLcode rc) {
  fprintf(stderr,
          "switchyard %s: no Switchyard daemon answers at %s (%s).\n"
          "Start one with `switchyard serve` (or `make run` in the source tree), or point "
          "SWITCHYARD_HOST at the one you run.\n",
          c->verb, c->base, curl_easy_strerror(rc));
}

static int perform(const cli_conn *c, const char *method, const char *path, const json_t *body,
                   long timeout_s, stream_ctx *s) {
  char url[1024], auth[1024];
  snprintf(url, sizeof url, "%s%s", c->base, path);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  CURL *cu = curl_easy_init();
  if (!cu || (body && !text)) {
    fprintf(stderr, "switchyard %s: out of memory\n", c->verb);
    free(text);
    if (cu) curl_easy_cleanup(cu);
    return -2;
  }
  s->cu = cu;
  s->r->body.limit = CLI_MAX_REPLY;
  s->line.limit = CLI_MAX_LINE;
  struct curl_slist *hl = NULL;
  if (c->key) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
    hl = curl_slist_append(hl, auth);
  }
  if (text) hl = curl_slist_append(hl, "Content-Type: application/json");
  curl_easy_setopt(cu, CURLOPT_URL, url);
  curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
  if (text) curl_easy_setopt(cu, CURLOPT_POSTFIELDS, text);
  curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(cu, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, CLI_CONNECT_TIMEOUT_S);
  curl_easy_setopt(cu, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(cu, CURLOPT_NOPROXY, "*"); /* the daemon is ours: never through a proxy */
  if (s->cancel) {
    curl_easy_setopt(cu, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(cu, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(cu, CURLOPT_NOPROGRESS, 0L);
  }
  CURLcode rc = curl_easy_perform(cu);
  if (!s->r->status) curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &s->r->status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(cu);
  free(text);
  if (s->r->body.len) s->r->json = json_loadb(s->r->body.data, s->r->body.len, 0, NULL);
  if (rc == CURLE_OK || s->hung_up || rc == CURLE_ABORTED_BY_CALLBACK) /* the caller cancelled */
    return 0;
  if (s->r->status) { /* it answered, then the connection broke */
    fprintf(stderr, "switchyard %s: %s%s: %s\n", c->verb, c->base, path, curl_easy_strerror(rc));
    return -2;
  }
  no_daemon(c, rc);
  return -1;
}

int cli_request(const cli_conn *c, const char *method, const char *path, const json_t *body,
                long timeout_s, cli_reply *r) {
  memset(r, 0, sizeof *r);
  stream_ctx s = {.r = r};
  int rc = perform(c, method, path, body, timeout_s, &s);
  sy_buf_free(&s.line);
  return rc == 0 ? 0 : -1;
}

int cli_stream(const cli_conn *c, const char *path, const json_t *body,
               bool (*on_line)(const char *line, size_t len, void *ud), void *ud,
               volatile int *cancel, cli_reply *r) {
  memset(r, 0, sizeof *r);
  stream_ctx s = {.r = r, .on_line = on_line, .ud = ud, .cancel = cancel};
  int rc = perform(c, "POST", path, body, 0, &s);
  if (rc == 0 && s.line.len && ok_status(r->status)) /* a last line without its "\n" */
    on_line(s.line.data, s.line.len, ud);
  sy_buf_free(&s.line);
  return rc == 0 ? 0 : -1;
}

int cli_fail(const cli_conn *c, const cli_reply *r) {
  const json_t *e = json_object_get(r->json, "error");
  const char *msg =
      json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "message"));
  if (msg)
    fprintf(stderr, "switchyard %s: %s\n", c->verb, msg);
  else
    fprintf(stderr, "switchyard %s: the daemon at %s answered HTTP %ld\n", c->verb, c->base,
            r->status);
  if (r->status == 401)
    fprintf(stderr,
            "switchyard %s: set SWITCHYARD_API_KEY (or pass --api-key) to a key the "
            "daemon accepts\n",
            c->verb);
  return 1;
}

void cli_human_size(long long b, char *out, size_t len) {
  if (b <= 0)
    snprintf(out, len, "-");
  else if (b >= 1LL << 30)
    snprintf(out, len, "%.1f GiB", (double)b / (double)(1LL << 30));
  else if (b >= 1LL << 20)
    snprintf(out, len, "%.0f MiB", (double)b / (double)(1LL << 20));
  else
    snprintf(out, len, "%.0f KiB", (double)b / 1024.0);
}

char *cli_escape(const char *s) {
  char *e = curl_easy_escape(NULL, s, 0);
  char *out = e ? strdup(e) : NULL;
  curl_free(e);
  return out;
}
