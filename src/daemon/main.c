/* main.c — the switchyard daemon: parse the command line, load the model matrix, start the
 * scheduler and the HTTP front, reload the matrix on SIGHUP, run until SIGINT/SIGTERM, then stop
 * workers and exit cleanly.
 * Links no engine: models run in worker processes (switchyard-llama). */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argnum.h"
#include "api/api.h"
#include "api/responses_store.h"
#include "engines/peer.h"
#include "cli/cli.h"
#include "daemon.h"
#include "obs/events.h"
#include "ws/ws.h"
#include "log.h"

#define SWITCHYARD_VERSION "0.1.0"
#define MAIN_MAX_FD (1 << 20)               /* --ready-fd */
#define MAIN_MAX_LOAD_TIMEOUT_S (24 * 3600) /* --load-timeout */
/* libgomp spin rounds before a waiting worker thread sleeps (set unless the user set
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT); chosen by bench/omp_policy.sh, PERFORMANCE.md */
#define WORKER_GOMP_SPINCOUNT "3000"
/* where `make install` puts the workers, from the folder of the installed daemon (bin/) */
#define WORKER_DIR_INSTALLED "../libexec/switchyard"
#define WORKER_PROBE "switchyard-llama" /* a worker program every build has */

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: switchyard [serve] [options]  run the daemon (options below)\n"
      "       switchyard COMMAND [ARGS]      talk to a running daemon (docs/CLI.md):\n"
      "  run MODEL [PROMPT]   chat in the terminal (one answer and exit with PROMPT or piped "
      "input)\n"
      "  list                 the models of the matrix: size, capabilities, loaded or not\n"
      "  ps                   what is loaded now\n"
      "  show MODEL           a model's entry: capabilities, context, memory, state\n"
      "  load MODEL           load a model now\n"
      "  stop MODEL           unload a model now\n"
      "  pull MODEL           fetch a model into the daemon's models folder (hf.co/..., name:tag)\n"
      "  rm MODEL             delete a model the models folder holds (not a configured one)\n"
      "  rpc-server           serve this box's devices to a model split across boxes (ggml RPC:\n"
      "                       NO authentication; loopback or private addresses only by default)\n"
      "  (the daemon's address: SWITCHYARD_HOST=host:port or URL, default 127.0.0.1:8080, or\n"
      "   --host/--port; its API key: SWITCHYARD_API_KEY or --api-key)\n"
      "daemon options:\n"
      "  -c, --config FILE       model matrix (YAML; see docs/CONFIG.md)\n"
      "  -m, --models-dir DIR    also serve every *.gguf in DIR\n"
      "      --host ADDR         listen address (default 127.0.0.1, or the config's)\n"
      "  -p, --port N            listen port (default 8080, or the config's; 0 = any free port)\n"
      "      --worker-dir DIR    where the workers are (default: next to this program, else\n"
      "                          ../libexec/switchyard from it, as `make install` puts them)\n"
      "      --log-level L       error|warn|info|debug\n"
      "      --log-format F      text|json (json: one object per line, for log shippers)\n"
      "      --load-timeout S    seconds a model may take to load (default 600)\n"
      "      --ready-fd N        write \"PORT\\n\" to fd N once listening, then close it\n"
      "      --check             load and validate the config, print the models, exit\n"
      "      --measure           load each model once (inside the budget) and print its memory\n"
      "                          estimated before load and measured after, then exit\n"
      "  -h, --help, --version\n");
}

static bool same_strs(char **a, size_t na, char **b, size_t nb) {
  if (na != nb) return false;
  for (size_t i = 0; i < na; i++)
    if (strcmp(a[i], b[i]) != 0) return false;
  return true;
}

/* SIGHUP: read the config (and the models folder) again and hand it to the scheduler, which keeps
 * unchanged models loaded. A bad file changes nothing: the error is logged and published. What
 * the HTTP front was started with (listen address, API keys, limits) needs a restart, and so does
 * the log format (running workers were started with the old one). */
static void reload(sy_daemon *d, const char *config, const char *models_dir, bool level_from_cli) {
  char err[1024] = "";
  LOG_I("SIGHUP: reloading %s", config ? config : "the models folder");
  matrix *nmx = matrix_load(config, models_dir, err, sizeof err);
  if (nmx && matrix_add_builtins(nmx) != 0) {
    matrix_free(nmx);
    nmx = NULL;
    snprintf(err, sizeof err, "out of memory");
  }
  if (!nmx) {
    LOG_E("reload failed, keeping the running configuration: %s", err);
    events_publish(sched_events(d->sc),
                   json_pack("{s:s, s:s}", "type", "reload_failed", "error", err));
    return;
  }
  matrix *old = d->mx;
  if (strcmp(nmx->host, old->host) != 0 || nmx->port != old->port ||
      nmx->max_body_bytes != old->max_body_bytes ||
      nmx->max_upload_bytes != old->max_upload_bytes ||
      nmx->max_connections != old->max_connections || nmx->log_format != old->log_format ||
      nmx->ws_max_message_bytes != old->ws_max_message_bytes ||
      nmx->ws_max_sessions != old->ws_max_sessions ||
      nmx->ws_idle_timeout_s != old->ws_idle_timeout_s ||
      !same_strs(nmx->api_keys, nmx->n_api_keys, old->api_keys, old->n_api_keys) ||
      !same_strs(nmx->admin_keys, nmx->n_admin_keys, old->admin_keys, old->n_admin_keys))
    LOG_W(
        "reload: listen, api_keys, admin_keys, limits and log_format take effect at the next "
        "restart");
  if (sched_reload(d->sc, nmx, NULL) != 0) {
    LOG_E("reload failed (out of memory), keeping the running configuration");
    matrix_free(nmx);
    return;
  }
  d->mx = nmx; /* the scheduler owns the old one now */
  if (peers_reload(d->peers, nmx) != 0)
    LOG_E("reload: out of memory: the peers are as they were before the reload");
  if (!level_from_cli) sy_log_init("switchyard", (enum sy_log_level)nmx->log_level);
}

/* The workers' folder when --worker-dir is not given: this program's own folder when a worker is
 * there (the build tree: build/bin), else ../libexec/switchyard from it (an installed daemon in
 * PREFIX/bin). buf holds the result; NULL when this program cannot find its own path. */
static const char *default_worker_dir(char *buf, size_t cap) {
  char self[PATH_MAX], probe[PATH_MAX + sizeof WORKER_DIR_INSTALLED + sizeof WORKER_PROBE + 2];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return NULL;
  self[n] = '\0';
  const char *dir = dirname(self);
  snprintf(probe, sizeof probe, "%s/%s", dir, WORKER_PROBE);
  if (access(probe, X_OK) != 0) {
    snprintf(probe, sizeof probe, "%s/%s/%s", dir, WORKER_DIR_INSTALLED, WORKER_PROBE);
    char real[PATH_MAX];
    if (access(probe, X_OK) == 0 && realpath(dirname(probe), real)) {
      snprintf(buf, cap, "%s", real);
      return buf;
    }
  }
  snprintf(buf, cap, "%s", dir); /* neither: the errors then name this folder */
  return buf;
}

/* --measure: every model loaded once through the scheduler (so the budget holds), its memory
 * estimated before and measured after load printed as a table. */
static int measure_models(sy_daemon *d) {
  int rc = d->sc ? 0 : 1;
  printf("%-24s %12s %12s %8s\n", "MODEL", "ESTIMATED", "MEASURED", "RATIO");
  for (size_t i = 0; d->sc && i < d->mx->n_models; i++) {
    const matrix_model *m = &d->mx->models[i];
    api_error err;
    worker *w = sched_acquire(d->sc, m, &err);
    if (!w) {
      printf("%-24s %s\n", m->name, err.message);
      rc = 1;
      continue;
    }
    sched_release(d->sc, m, w);
    json_t *ps = sched_ps(d->sc), *e;
    size_t k;
    json_array_foreach(json_object_get(ps, "models"), k, e) {
      if (strcmp(json_string_value(json_object_get(e, "name")), m->name) != 0) continue;
      double est = (double)json_integer_value(json_object_get(e, "size_estimated")) / 1048576.0;
      double got = (double)json_integer_value(json_object_get(e, "size_measured")) / 1048576.0;
      printf("%-24s %8.0f MiB %8.0f MiB %8.2f\n", m->name, est, got, est > 0 ? got / est : 0);
    }
    json_decref(ps);
  }
  if (d->sc) {
    sched_shutdown(d->sc);
    sched_free(d->sc);
  }
  matrix_free(d->mx);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "serve") == 0) { /* the daemon, as plain `switchyard` */
    argv[1] = argv[0];
    argc--;
    argv++;
  } else if (argc > 1 && argv[1][0] != '-') {
    return cli_main(argc - 1, argv + 1);
  }
  const char *config = NULL, *models_dir = NULL, *host = NULL, *worker_dir = NULL, *level = NULL,
             *format = NULL;
  int port = -1, ready_fd = -1, load_timeout = 600;
  bool check = false, measure = false;
  enum {
    O_HOST = 256,
    O_WORKER_DIR,
    O_LOG,
    O_LOG_FORMAT,
    O_READY,
    O_TIMEOUT,
    O_CHECK,
    O_MEASURE,
    O_VERSION
  };
  static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                       {"models-dir", required_argument, 0, 'm'},
                                       {"host", required_argument, 0, O_HOST},
                                       {"port", required_argument, 0, 'p'},
                                       {"worker-dir", required_argument, 0, O_WORKER_DIR},
                                       {"log-level", required_argument, 0, O_LOG},
                                       {"log-format", required_argument, 0, O_LOG_FORMAT},
                                       {"ready-fd", required_argument, 0, O_READY},
                                       {"load-timeout", required_argument, 0, O_TIMEOUT},
                                       {"check", no_argument, 0, O_CHECK},
                                       {"measure", no_argument, 0, O_MEASURE},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, O_VERSION},
                                       {0, 0, 0, 0}};
  int c;
  long num;
  while ((c = getopt_long(argc, argv, "c:m:p:h", opts, NULL)) != -1) {
    switch (c) {
      case 'c':
        config = optarg;
        break;
      case 'm':
        models_dir = optarg;
        break;
      case O_HOST:
        host = optarg;
        break;
      case 'p':
        if (sy_parse_long(optarg, 0, 65535, &num) != 0) {
          fprintf(stderr, "switchyard: --port must be 0..65535, not '%s'\n", optarg);
          return 2;
        }
        port = (int)num;
        break;
      case O_WORKER_DIR:
        worker_dir = optarg;
        break;
      case O_LOG:
        if (sy_log_parse_level(optarg) < 0) {
          fprintf(stderr, "switchyard: --log-level must be error, warn, info or debug\n");
          return 2;
        }
        level = optarg;
        break;
      case O_LOG_FORMAT:
        if (sy_log_parse_format(optarg) < 0) {
          fprintf(stderr, "switchyard: --log-format must be text or json\n");
          return 2;
        }
        format = optarg;
        break;
      case O_READY:
        if (sy_parse_long(optarg, 0, MAIN_MAX_FD, &num) != 0) {
          fprintf(stderr, "switchyard: --ready-fd must be 0..%d, not '%s'\n", MAIN_MAX_FD, optarg);
          return 2;
        }
        ready_fd = (int)num;
        break;
      case O_TIMEOUT:
        if (sy_parse_long(optarg, 1, MAIN_MAX_LOAD_TIMEOUT_S, &num) != 0) {
          fprintf(stderr, "switchyard: --load-timeout must be 1..%d seconds, not '%s'\n",
                  MAIN_MAX_LOAD_TIMEOUT_S, optarg);
          return 2;
        }
        load_timeout = (int)num;
        break;
      case O_CHECK:
        check = true;
        break;
      case O_MEASURE:
        measure = true;
        break;
      case O_VERSION:
        printf("switchyard %s\n", SWITCHYARD_VERSION);
        return 0;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return 2;
  }
  sy_log_init("switchyard", level ? (enum sy_log_level)sy_log_parse_level(level) : SY_LOG_INFO);
  if (format) sy_log_set_format((enum sy_log_format)sy_log_parse_format(format));

  char err[1024] = "";
  sy_daemon d = {0};
  d.started = time(NULL);
  d.mx = matrix_load(config, models_dir, err, sizeof err);
  if (d.mx && matrix_add_builtins(d.mx) != 0) {
    matrix_free(d.mx);
    d.mx = NULL;
    snprintf(err, sizeof err, "out of memory");
  }
  if (!d.mx) {
    LOG_E("%s", err); /* in the format asked for on the command line */
    return 1;
  }
  if (!level) sy_log_init("switchyard", (enum sy_log_level)d.mx->log_level);
  if (!format) sy_log_set_format((enum sy_log_format)d.mx->log_format);
  if (check) {
    for (size_t i = 0; i < d.mx->n_models; i++) {
      char caps[64];
      const matrix_model *m = &d.mx->models[i];
      printf("%s\t%s\t%s\tctx=%d parallel=%d\n", m->name,
             matrix_caps_str(m->caps, caps, sizeof caps), m->file, m->context, m->parallel);
    }
    for (size_t i = 0; i < d.mx->n_routers;
         i++) { /* NAME  router  route=model,...  classifier=MODEL */
      const matrix_router *rt = &d.mx->routers[i];
      printf("%s	router	", rt->name);
      for (size_t k = 0; k < rt->n_routes; k++)
        printf("%s%s=%s", k ? "," : "", rt->routes[k].name, rt->routes[k].model);
      printf("	default=%s classifier=%s\n", rt->routes[rt->default_route].name,
             rt->has_classifier ? rt->cls_model : "-");
    }
    for (size_t i = 0; i < d.mx->n_peers; i++) { /* NAME  peer  URL  models=all|a,b */
      const matrix_peer *p = &d.mx->peers[i];
      printf("%s\tpeer\t%s\tmodels=", p->name, p->url);
      for (size_t k = 0; k < p->n_models; k++) printf("%s%s", k ? "," : "", p->models[k]);
      printf("%s\n", p->all ? "all" : "");
    }
    matrix_free(d.mx);
    return 0;
  }
  char wdir[PATH_MAX];
  if (!worker_dir && !(worker_dir = default_worker_dir(wdir, sizeof wdir))) {
    LOG_E("cannot find my own path; pass --worker-dir");
    matrix_free(d.mx);
    return 1;
  }

  /* Signals: handled synchronously by this thread; every other thread inherits the mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(
      CURL_GLOBAL_DEFAULT); /* before any thread: external engines' health checks and proxy */

  /* CUDA numbers GPUs fastest first unless told otherwise; NVML numbers them by PCI bus. Make the
   * workers' CUDA0, CUDA1, ... match NVML's indexes (gpumem.h). */
  setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 0);
  /* ggml's CPU backend runs each graph on OpenMP, with an OpenMP barrier after every op. How a
   * waiting thread waits decides two things: spinning for ever (ACTIVE) takes the cores that other
   * workers need when several run side by side (whisper measured ~20x slower under load), sleeping
   * at once (PASSIVE) pays a futex wake-up at every barrier (single-stream decode 0.80x
   * llama-server on a quiet machine). Spinning a bounded number of rounds, then sleeping, keeps
   * both (PERFORMANCE.md, "OpenMP wait policy"). The user's own setting of either variable wins. */
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
    setenv("GOMP_SPINCOUNT", WORKER_GOMP_SPINCOUNT, 1);
  static const char *level_names[] = {"error", "warn", "info", "debug"};
  sched_params sp = {.mx = d.mx,
                     .worker_dir = worker_dir,
                     .log_level = level_names[sy_log_get_level()],
                     .load_timeout_s = load_timeout};
  d.sc = sched_new(&sp);
  if (measure) return measure_models(&d);
  d.responses = rsp_store_new(0, 0);       /* NULL (out of memory): responses are not kept */
  d.peers = d.sc ? peers_new(d.mx) : NULL; /* their pollers start now: up before we listen */
  d.ws = ws_hub_new(&(ws_limits){.max_message_bytes = d.mx->ws_max_message_bytes,
                                 .idle_timeout_s = d.mx->ws_idle_timeout_s},
                    d.mx->ws_max_sessions); /* NULL: WebSocket upgrades answer 503 */
  http_params hp = {.host = host ? host : d.mx->host,
                    .port = port >= 0 ? port : d.mx->port,
                    .max_body_bytes = d.mx->max_body_bytes,
                    .max_upload_bytes = d.mx->max_upload_bytes,
                    .max_connections = d.mx->max_connections,
                    .api_keys = (const char *const *)d.mx->api_keys,
                    .n_api_keys = d.mx->n_api_keys,
                    .admin_keys = (const char *const *)d.mx->admin_keys,
                    .n_admin_keys = d.mx->n_admin_keys,
                    .handler = api_handle,
                    .error_body = api_error_body,
                    .handler_ud = &d};
  d.http = d.sc && d.peers ? http_start(&hp, err, sizeof err) : NULL;
  if (!d.http) {
    LOG_E("%s", !d.sc ? "could not start the scheduler" : !d.peers ? "out of memory (peers)" : err);
    peers_free(d.peers);
    if (d.sc) {
      sched_shutdown(d.sc);
      sched_free(d.sc);
    }
    matrix_free(d.mx);
    rsp_store_free(d.responses);
    ws_hub_free(d.ws);
    return 1;
  }
  LOG_I("switchyard %s listening on http://%s:%d/ with %zu model(s)%s", SWITCHYARD_VERSION, hp.host,
        http_port(d.http), d.mx->n_models,
        d.mx->n_api_keys || d.mx->n_admin_keys ? " (API keys required)" : "");
  sched_preload(d.sc);
  if (ready_fd >= 0) {
    dprintf(ready_fd, "%d\n", http_port(d.http));
    close(ready_fd);
  }
  int sig = 0;
  while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) reload(&d, config, models_dir, level != NULL);
  LOG_I("signal %d: shutting down", sig);
  sched_shutdown(d.sc);
  http_stop(d.http);
  peers_free(d.peers); /* no request runs now */
  sched_free(d.sc);
  matrix_free(d.mx);
  rsp_store_free(d.responses);
  ws_hub_free(d.ws);
  LOG_I("bye");
  return 0;
}
