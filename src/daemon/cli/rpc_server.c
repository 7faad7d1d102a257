/* rpc_server.c — `switchyard rpc-server`: run ggml's RPC server (ggml-rpc-server, built with the
 * engines and installed next to this program) on this box, so that a daemon on another box can
 * put layers of a model here (matrix key `rpc:`, docs/CONFIG.md). Not a client of the daemon: it
 * checks the address and replaces itself with the server (exec), which then runs until stopped.
 *
 * ggml's RPC protocol has NO authentication and no encryption: whoever reaches the port can run
 * graphs and read or write the server's memory. So this verb binds to loopback by default, accepts
 * a private network address (RFC 1918, carrier NAT/Tailscale, link-local, IPv6 unique-local), and
 * refuses anything else (a public address, 0.0.0.0) unless --allow-public is given. The server
 * binds IPv4 only, by number (no names). Must never exec the server on a public address without
 * that flag. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argnum.h"
#include "cli/cli.h"
#include "endpoint.h"

#define RPC_DEFAULT_HOST "127.0.0.1"
#define RPC_DEFAULT_PORT 50052 /* ggml-rpc-server's own default */
#define RPC_MAX_THREADS 1024
#define RPC_SERVER_EXE "ggml-rpc-server"

static const char usage[] =
    "usage: switchyard rpc-server [--host ADDR] [--port N] [--threads N] [--device DEV,...]\n"
    "                             [--cache] [--allow-public]\n"
    "  Runs ggml's RPC server here, for a model whose entry on another box lists\n"
    "  rpc: [ADDR:N] (docs/CONFIG.md). --host: the IPv4 address to bind (default\n"
    "  127.0.0.1);\n"
    "  --port (default 50052); --threads: CPU threads; --device: which of this box's\n"
    "  devices to offer (default: its GPUs, else the CPU); --cache: keep received\n"
    "  tensors in a local file cache.\n"
    "  WARNING: the RPC protocol has no authentication and no encryption. Anyone who\n"
    "  reaches the port controls the server's memory. Bind it to loopback or a private\n"
    "  network you trust; a public address (or 0.0.0.0) is refused unless\n"
    "  --allow-public is given.\n";

int cli_rpc_bind_check(const char *host, bool allow_public, char *err, size_t errlen) {
  struct in_addr a;
  if (!host || inet_pton(AF_INET, host, &a) != 1) {
    snprintf(err, errlen,
             "'%.256s' is not an IPv4 address (ggml's RPC server binds a numeric IPv4 address)",
             host ? host : "");
    return -1;
  }
  if (sy_addr_scope_numeric(host) == SY_ADDR_PUBLIC && !allow_public) {
    snprintf(err, errlen,
             "refusing to bind the RPC server to %.256s: a public address (or every interface). "
             "ggml's RPC protocol has no authentication: anyone who reaches the port controls the "
             "server. Use a loopback or private address, or pass --allow-public if a firewall you "
             "trust guards it",
             host);
    return -1;
  }
  return 0;
}

/* The server next to this program (make puts it in the same folder). */
static int server_path(char *out, size_t cap) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (!slash) return -1;
  *slash = '\0';
  int w = snprintf(out, cap, "%s/%s", self, RPC_SERVER_EXE);
  return w > 0 && (size_t)w < cap ? 0 : -1;
}

static bool device_list_ok(const char *s) {
  if (!*s || strlen(s) > 256) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == ',' || *p == '_' || *p == '-'))
      return false;
  return true;
}

int cli_rpc_server(int argc, char **argv) {
  static const struct option opts[] = {
      {"host", required_argument, 0, 'H'},    {"port", required_argument, 0, 'p'},
      {"threads", required_argument, 0, 't'}, {"device", required_argument, 0, 'd'},
      {"cache", no_argument, 0, 'c'},         {"allow-public", no_argument, 0, 'P'},
      {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  const char *host = RPC_DEFAULT_HOST, *device = NULL;
  long port = RPC_DEFAULT_PORT, threads = 0;
  bool cache = false, allow_public = false;
  int o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'H':
        host = optarg;
        break;
      case 'p':
        if (sy_parse_long(optarg, 1, 65535, &port) != 0) {
          fprintf(stderr, "switchyard rpc-server: --port must be 1..65535\n");
          return 2;
        }
        break;
      case 't':
        if (sy_parse_long(optarg, 1, RPC_MAX_THREADS, &threads) != 0) {
          fprintf(stderr, "switchyard rpc-server: --threads must be 1..%d\n", RPC_MAX_THREADS);
          return 2;
        }
        break;
      case 'd':
        if (!device_list_ok(optarg)) {
          fprintf(stderr, "switchyard rpc-server: --device takes device names (CUDA0,CPU,...)\n");
          return 2;
        }
        device = optarg;
        break;
      case 'c':
        cache = true;
        break;
      case 'P':
        allow_public = true;
        break;
      case 'h':
        fputs(usage, stdout);
        return 0;
      default:
        fputs(usage, stderr);
        return 2;
    }
  }
  if (optind < argc) {
    fputs(usage, stderr);
    return 2;
  }
  char err[768], exe[PATH_MAX];
  if (cli_rpc_bind_check(host, allow_public, err, sizeof err) != 0) {
    fprintf(stderr, "switchyard rpc-server: %s\n", err);
    return 2;
  }
  if (server_path(exe, sizeof exe) != 0 || access(exe, X_OK) != 0) {
    fprintf(stderr,
            "switchyard rpc-server: %s is not next to this program (make builds it with the "
            "engines: build/bin/%s)\n",
            RPC_SERVER_EXE, RPC_SERVER_EXE);
    return 1;
  }
  enum sy_addr_scope sc = sy_addr_scope_numeric(host);
  fprintf(stderr,
          "switchyard rpc-server: serving on %s:%ld (%s address). The RPC protocol has no "
          "authentication: only machines you trust may reach this port.\n",
          host, port, sy_addr_scope_name(sc));
  char port_s[16], threads_s[16];
  snprintf(port_s, sizeof port_s, "%ld", port);
  snprintf(threads_s, sizeof threads_s, "%ld", threads);
  char *args[12];
  int n = 0;
  args[n++] = exe;
  args[n++] = "--host";
  args[n++] = (char *)host;
  args[n++] = "--port";
  args[n++] = port_s;
  if (threads > 0) {
    args[n++] = "--threads";
    args[n++] = threads_s;
  }
  if (device) {
    args[n++] = "--device";
    args[n++] = (char *)device;
  }
  if (cache) args[n++] = "--cache";
  args[n] = NULL;
  fflush(stderr);
  execv(exe, args);
  fprintf(stderr, "switchyard rpc-server: cannot run %s: %s\n", exe, strerror(errno));
  return 1;
}
