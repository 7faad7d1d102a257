/* cli.h — the verbs of the switchyard program that talk to a running daemon as clients
 * (`switchyard run|list|ps|show|load|stop`), and the one small HTTP client they share (client.c).
 *
 * The CLI is a client only: it includes no daemon wing and reaches models and workers solely
 * through the daemon's HTTP API (/v1/models, /v1/chat/completions, /api/ps, /api/load,
 * /api/unload). Where: SWITCHYARD_HOST (host, host:port, [v6]:port or an http(s):// URL; default
 * 127.0.0.1:8080), or --host/--port. The API key: SWITCHYARD_API_KEY, or --api-key.
 * One verb is not a client: `rpc-server` (rpc_server.c) checks its address and execs ggml's RPC
 * server. Exit status of every verb: 0 done, 1 failed (no daemon, an error from it), 2 usage. */
#ifndef SY_CLI_H
#define SY_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* `switchyard VERB ...` (argv[0] is the verb): run it. Unknown verb: usage on stderr, 2. */
int cli_main(int argc, char **argv);

/* ---- the verbs (argv[0] is the verb) ---- */

int cli_ps(int argc, char **argv);   /* ps.c: GET /api/ps as a table */
int cli_list(int argc, char **argv); /* models.c: GET /v1/models as a table */
int cli_show(int argc, char **argv); /* models.c: one model's entry */
int cli_load(int argc, char **argv); /* models.c: POST /api/load */
int cli_stop(int argc, char **argv); /* models.c: POST /api/unload */
int cli_run(int argc, char **argv);  /* run.c: chat, interactive or one-shot */
int cli_pull(int argc, char **argv); /* pull.c: POST /api/pull with a progress bar */
int cli_rm(int argc, char **argv);   /* models.c: DELETE /api/delete */
/* rpc_server.c: exec ggml's RPC server (not a client of the daemon) */
int cli_rpc_server(int argc, char **argv);

/* Whether `switchyard rpc-server` may bind host (an IPv4 address: ggml's server binds no names and
 * no IPv6): 0 for loopback and private addresses, and for public ones when allow_public; else -1
 * with why in err (a public address without the flag, or not an IPv4 address). */
int cli_rpc_bind_check(const char *host, bool allow_public, char *err, size_t errlen);

/* ---- the shared client (client.c) ---- */

/* Where the daemon is and how to authenticate. */
typedef struct cli_conn {
  const char *verb; /* for messages: "switchyard VERB: ..." */
  char base[512];   /* "http://127.0.0.1:8080", no trailing slash */
  const char *key;  /* API key, or NULL */
  const char *host; /* --host (overrides SWITCHYARD_HOST), or NULL */
  int port;         /* --port, or -1 */
} cli_conn;

/* The options every verb takes: --host H, --port P, --api-key K, --help (getopt_long entries;
 * their values are 'H', 'p', 'k', 'h'). */
#define CLI_CONN_OPTIONS                                                    \
  {"host", required_argument, 0, 'H'}, {"port", required_argument, 0, 'p'}, \
      {"api-key", required_argument, 0, 'k'}, {                             \
    "help", no_argument, 0, 'h'                                             \
  }

/* Start c for verb: key from SWITCHYARD_API_KEY. */
void cli_conn_init(cli_conn *c, const char *verb);

/* Take getopt's option opt (with arg) when it is one of CLI_CONN_OPTIONS: 1 taken, 0 not one of
 * them, -1 a bad value (said on stderr: the caller exits 2), -2 --help (usage printed on stdout:
 * the caller exits 0). */
int cli_conn_option(cli_conn *c, int opt, const char *arg, const char *usage);

/* Resolve c->base from --host/--port, SWITCHYARD_HOST and the defaults: 0, or -1 (said). */
int cli_conn_resolve(cli_conn *c);

/* A reply: HTTP status and body (JSON parsed when it is JSON). */
typedef struct cli_reply {
  long status;
  sy_buf body;
  json_t *json;
} cli_reply;

void cli_reply_free(cli_reply *r);

/* method path [body (borrowed), NULL for none]: 0 with r filled (any status), -1 when no daemon
 * answered (the message with how to start one already on stderr). timeout_s 0 = none. */
int cli_request(const cli_conn *c, const char *method, const char *path, const json_t *body,
                long timeout_s, cli_reply *r);

/* A reply that is not 2xx, said on stderr ("switchyard VERB: <the daemon's message>") with a hint
 * for 401; returns 1 (the exit status). */
int cli_fail(const cli_conn *c, const cli_reply *r);

/* POST body as JSON to path and hand every line of the answer (without its "\n"; "data: ..."
 * for SSE) to on_line(line, len, ud) while it arrives; on_line returns false to hang up. When the
 * status is not 2xx the lines are not handed over: the body is in r instead. 0 with r->status set,
 * -1 no daemon (said). *cancel (may be NULL) set from a signal handler hangs up (0 returned;
 * r->status 0 when that was before the answer's headers). */
int cli_stream(const cli_conn *c, const char *path, const json_t *body,
               bool (*on_line)(const char *line, size_t len, void *ud), void *ud,
               volatile int *cancel, cli_reply *r);

/* Human sizes: "1.2 GiB", "512 MiB", "-" for 0. */
void cli_human_size(long long bytes, char *out, size_t len);

/* "NAME" URL-escaped for a path ("/v1/models/NAME"): malloc'd. */
char *cli_escape(const char *s);

#endif
