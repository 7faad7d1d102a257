/* rpc.c — a model's RPC servers (matrix key `rpc:`, docs/CONFIG.md) added to ggml's device
 * registry, so that llama.cpp splits the layers over them as over local GPUs (they go first in
 * its default device list; `gpu_layers` says how many layers leave this process). ggml's RPC client
 * aborts the process when it cannot reach a server or loses one mid-request, so each server is
 * first reached here with a bounded connect (a clear load error instead of an abort), and an abort
 * callback tells the daemon why the worker is going away (frame "fatal", docs/PROTOCOL.md) before
 * ggml aborts. Calls ggml only; nothing before it in worker.h.
 * Must never register a server twice (its devices would be counted twice), never hang on a server
 * that does not answer, and never pass ggml an endpoint endpoint.h did not accept. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "log.h"
#include "worker.h"

#define RPC_CONNECT_TIMEOUT_MS 5000

static char added[GGML_RPC_MAX_SERVERS][SY_ENDPOINT_MAX + 1];
static size_t n_added;

/* One connect to host:port within the timeout (then closed: ggml opens its own). 0 or -1. */
static int rpc_reach(const char *ep, char *err, size_t errlen) {
  char host[SY_ENDPOINT_HOST_MAX + 1], port_s[8];
  int port;
  if (sy_endpoint_parse(ep, host, sizeof host, &port, err, errlen) != 0) return -1;
  snprintf(port_s, sizeof port_s, "%d", port);
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int grc = getaddrinfo(host, port_s, &hints, &res);
  if (grc != 0 || !res) {
    snprintf(err, errlen, "the RPC server %s: cannot resolve %s: %s", ep, host, gai_strerror(grc));
    return -1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc = -1, e = 0;
  if (fd < 0) {
    e = errno;
  } else if (connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    rc = 0;
  } else if (errno == EINPROGRESS) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n;
    while ((n = poll(&p, 1, RPC_CONNECT_TIMEOUT_MS)) < 0 && errno == EINTR) {
    }
    socklen_t len = sizeof e;
    if (n == 0)
      e = ETIMEDOUT;
    else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
      e = errno;
    rc = e == 0 ? 0 : -1;
  } else {
    e = errno;
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  if (rc != 0)
    snprintf(err, errlen, "the RPC server %s is not reachable: %s", ep,
             e == ETIMEDOUT ? "no answer within 5 s" : strerror(e));
  return rc;
}

int rpc_add_servers(const char *const *eps, size_t n, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    bool known = false;
    for (size_t k = 0; k < n_added; k++) known = known || strcmp(added[k], eps[i]) == 0;
    if (known) continue;
    if (n_added >= GGML_RPC_MAX_SERVERS) {
      snprintf(err, errlen, "at most %d RPC servers", GGML_RPC_MAX_SERVERS);
      return -1;
    }
    if (strlen(eps[i]) > SY_ENDPOINT_MAX) {
      snprintf(err, errlen, "the RPC endpoint '%.64s...' is too long", eps[i]);
      return -1;
    }
    if (rpc_reach(eps[i], err, errlen) != 0) return -1;
    ggml_backend_reg_t reg = ggml_backend_rpc_add_server(eps[i]);
    if (!reg) {
      snprintf(err, errlen, "the RPC server %s offers no device", eps[i]);
      return -1;
    }
    ggml_backend_register(reg);
    snprintf(added[n_added++], sizeof added[0], "%s", eps[i]);
    LOG_I("RPC server %s: %zu device(s) added", eps[i], ggml_backend_reg_dev_count(reg));
  }
  return 0;
}

static wio_out *fatal_out;

/* ggml's abort path: the message goes to the daemon as frame "fatal" (id 0), then ggml aborts. */
static void rpc_abort_cb(const char *text) {
  if (!text) return;
  const char *msg = strstr(text, ": "); /* past ggml's "file:line: " */
  msg = msg ? msg + 2 : text;
  LOG_E("ggml aborts: %s", msg);
  if (!fatal_out) return;
  /* ggml's RPC client says "RPC" in every message of its own (a lost or unreachable server) */
  const char *code = strstr(msg, "RPC") ? "rpc_unavailable" : "worker_crashed";
  json_t *h = json_pack("{s:s, s:i, s:s, s:s#}", "op", "fatal", "id", 0, "code", code, "message",
                        msg, (int)(strlen(msg) > 400 ? 400 : strlen(msg)));
  if (h) wio_send(fatal_out, h, NULL, 0);
}

void rpc_fatal_install(wio_out *out) {
  fatal_out = out;
  ggml_set_abort_callback(rpc_abort_cb);
}
