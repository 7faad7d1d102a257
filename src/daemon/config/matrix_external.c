/* matrix_external.c — the model matrix's external engines (engine: external, docs/CONFIG.md
 * "External engines"): a model's `external:` map — the command line, its environment, the port,
 * the health check, how to stop it, the OpenAI routes it serves, its declared memory — into a
 * matrix_external, plus the canonical signature a reload compares.
 *
 * This file must never accept a route the daemon cannot dispatch, a command line it cannot run
 * (no program, or shell: true with more than one string), an environment name a shell would
 * mangle, or a stop signal outside the short list below; and never bound nothing: at most
 * MATRIX_EXT_MAX_ARGS arguments, 256 variables, 8 GPU entries. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/matrix_int.h"

void mx_ext_free(matrix_external *e) {
  if (!e) return;
  mx_strv_free(e->argv, e->argc);
  free(e->cwd);
  mx_strv_free(e->env, e->n_env);
  free(e->health_path);
  mx_strv_free(e->routes, e->n_routes);
  mx_strv_free(e->gpu_names, e->n_gpu);
  free(e->gpu_bytes);
  free(e->sig);
  free(e);
}

/* The OpenAI paths an external engine may serve by "model", and the capability each implies. */
static const struct {
  const char *path;
  unsigned cap;
} ext_routes[] = {
    {"/v1/chat/completions", MATRIX_CAP_CHAT},
    {"/v1/completions", MATRIX_CAP_COMPLETION},
    {"/v1/embeddings", MATRIX_CAP_EMBED},
    {"/v1/rerank", MATRIX_CAP_RERANK},
    {"/v1/images/generations", 0},
    {"/v1/images/edits", 0},
    {"/v1/audio/speech", MATRIX_CAP_SPEECH},
    {"/v1/audio/transcriptions", MATRIX_CAP_TRANSCRIBE},
    {"/v1/audio/translations", MATRIX_CAP_TRANSCRIBE},
    {"/v1/responses", MATRIX_CAP_CHAT},
};

bool matrix_ext_route(const char *path) {
  for (size_t k = 0; path && k < sizeof ext_routes / sizeof ext_routes[0]; k++)
    if (strcmp(ext_routes[k].path, path) == 0) return true;
  return false;
}

bool matrix_ext_serves(const matrix_model *m, const char *path) {
  if (!m || !m->ext || !path) return false;
  for (size_t i = 0; i < m->ext->n_routes; i++)
    if (strcmp(m->ext->routes[i], path) == 0) return true;
  return false;
}

unsigned mx_ext_caps(const matrix_external *e) {
  unsigned caps = 0;
  for (size_t i = 0; i < e->n_routes; i++)
    for (size_t k = 0; k < sizeof ext_routes / sizeof ext_routes[0]; k++)
      if (strcmp(ext_routes[k].path, e->routes[i]) == 0) caps |= ext_routes[k].cap;
  return caps;
}

static int signal_parse(const char *s) {
  static const struct {
    const char *name;
    int sig;
  } sigs[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},  {"QUIT", SIGQUIT},
              {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
  if (strncmp(s, "SIG", 3) == 0) s += 3;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (strcmp(s, sigs[i].name) == 0) return sigs[i].sig;
  return -1;
}

enum {
  X_ARGV,
  X_SHELL,
  X_CWD,
  X_ENV,
  X_PORT,
  X_HEALTH,
  X_STOP_SIGNAL,
  X_STOP_GRACE,
  X_ROUTES,
  X_UPSTREAM,
  X_MEMORY,
  X_GPU_MEMORY,
  X_N
};
static const char *const ext_keys[X_N] = {"argv",   "shell",    "cwd",         "env",
                                          "port",   "health",   "stop_signal", "stop_grace",
                                          "routes", "upstream", "memory",      "gpu_memory"};

/* A string → string/number mapping (env, gpu_memory): keys checked by key_ok, values by want_val.
 */
static int ext_env(loader *l, const yaml_node_t *n, const char *path, matrix_external *e) {
  if (mx_is_null(n)) return 0;
  if (mx_want_kind(l, n, path, YAML_MAPPING_NODE)) return -1;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = mx_node(l, pr->key), *v = mx_node(l, pr->value);
    const char *ks, *vs;
    char kp[256];
    if (!k || !v) return mx_at(l, n, "%s: malformed mapping", path);
    if (mx_want_str(l, k, path, &ks)) return -1;
    snprintf(kp, sizeof kp, "%s.%.64s", path, ks);
    bool ok = *ks && !isdigit((unsigned char)*ks);
    for (const char *c = ks; *c && ok; c++) ok = isalnum((unsigned char)*c) || *c == '_';
    if (!ok) return mx_at(l, k, "%s: not a valid environment variable name", kp);
    if (e->n_env >= 256) return mx_at(l, k, "%s: too many variables (limit 256)", path);
    if (v->type != YAML_SCALAR_NODE) return mx_want_str(l, v, kp, &vs);
    vs = mx_sval(v);
    if (strlen(vs) != v->data.scalar.length)
      return mx_at(l, v, "%s: the string contains a NUL byte", kp);
    size_t len = strlen(ks) + strlen(vs) + 2;
    char *kv = malloc(len);
    if (!kv) return mx_oom(l);
    snprintf(kv, len, "%s=%s", ks, vs);
    int rc = mx_strv_push(&e->env, &e->n_env, kv);
    free(kv);
    if (rc) return mx_oom(l);
  }
  return 0;
}

static int ext_gpu_memory(loader *l, const yaml_node_t *n, const char *path, matrix_external *e) {
  if (mx_is_null(n)) return 0;
  if (mx_want_kind(l, n, path, YAML_MAPPING_NODE)) return -1;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = mx_node(l, pr->key), *v = mx_node(l, pr->value);
    const char *ks;
    char kp[256];
    long long b;
    if (!k || !v) return mx_at(l, n, "%s: malformed mapping", path);
    if (mx_want_str(l, k, path, &ks)) return -1;
    snprintf(kp, sizeof kp, "%s.%.64s", path, ks);
    if (!*ks || strlen(ks) >= 32) return mx_at(l, k, "%s: not a device name", kp);
    if (e->n_gpu >= 8) return mx_at(l, k, "%s: too many devices (limit 8)", path);
    if (mx_want_size(l, v, kp, 0, 1LL << 50, &b)) return -1;
    long long *nb = realloc(e->gpu_bytes, (e->n_gpu + 1) * sizeof *nb);
    if (!nb) return mx_oom(l);
    e->gpu_bytes = nb;
    nb[e->n_gpu] = b;
    size_t ng = e->n_gpu;
    if (mx_strv_push(&e->gpu_names, &ng, ks)) return mx_oom(l);
    e->n_gpu = ng;
  }
  return 0;
}

/* The canonical text of an external engine's settings (a reload restarts it when it changes). */
static char *ext_signature(const matrix_external *e) {
  json_t *j = json_object(), *a = json_array(), *env = json_array(), *rt = json_array(),
         *gpu = json_object();
  for (size_t i = 0; i < e->argc; i++) json_array_append_new(a, json_string(e->argv[i]));
  for (size_t i = 0; i < e->n_env; i++) json_array_append_new(env, json_string(e->env[i]));
  for (size_t i = 0; i < e->n_routes; i++) json_array_append_new(rt, json_string(e->routes[i]));
  for (size_t i = 0; i < e->n_gpu; i++)
    json_object_set_new(gpu, e->gpu_names[i], json_integer(e->gpu_bytes[i]));
  json_object_set_new(j, "argv", a);
  json_object_set_new(j, "env", env);
  json_object_set_new(j, "routes", rt);
  json_object_set_new(j, "gpu", gpu);
  json_object_set_new(j, "shell", json_boolean(e->shell));
  json_object_set_new(j, "cwd", e->cwd ? json_string(e->cwd) : json_null());
  json_object_set_new(j, "port", json_integer(e->port));
  json_object_set_new(j, "health",
                      json_pack("[s,i,i]", e->health_path, e->health_status, e->startup_timeout_s));
  json_object_set_new(j, "stop", json_pack("[i,i]", e->stop_signal, e->stop_grace_ms));
  json_object_set_new(j, "upstream", json_boolean(e->upstream));
  json_object_set_new(j, "memory", json_integer(e->memory));
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return s;
}

/* The `external:` map of a model into a new matrix_external (*out). */
int mx_load_external(loader *l, const yaml_node_t *n, const char *mpath, matrix_external **out) {
  char path[96], p[160], g[64];
  const char *s;
  snprintf(path, sizeof path, "%s.external", mpath);
  yaml_node_t *v[X_N];
  if (mx_want_map(l, n, path, ext_keys, X_N, v)) return -1;
  matrix_external *e = calloc(1, sizeof *e);
  if (!e) return mx_oom(l);
  e->health_status = 200;
  e->startup_timeout_s = 120;
  e->stop_signal = SIGTERM;
  e->stop_grace_ms = 10000;
  e->upstream = true;
  if (!v[X_ARGV]) {
    mx_at(l, n, "%s: missing required key 'argv' (the program and its arguments, a list)", path);
    goto fail;
  }
  snprintf(p, sizeof p, "%s.argv", path);
  if (mx_want_str_list(l, v[X_ARGV], p, &e->argv, &e->argc, NULL, NULL)) goto fail;
  if (e->argc == 0 || e->argc > MATRIX_EXT_MAX_ARGS) {
    mx_at(l, v[X_ARGV], "%s: expected 1..%d strings", p, MATRIX_EXT_MAX_ARGS);
    goto fail;
  }
  if (v[X_SHELL]) {
    snprintf(p, sizeof p, "%s.shell", path);
    if (mx_want_bool(l, v[X_SHELL], p, &e->shell)) goto fail;
    if (e->shell && e->argc != 1) {
      mx_at(l, v[X_SHELL],
            "%s: with shell: true, argv must be one string (the command line for /bin/sh -c)", p);
      goto fail;
    }
  }
  if (v[X_CWD]) {
    char joined[PATH_MAX], real[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s.cwd", path);
    if (mx_want_str(l, v[X_CWD], p, &s)) goto fail;
    if (!*s || mx_join_path(joined, sizeof joined, l->dir, s)) {
      mx_at(l, v[X_CWD], "%s: '%s' is not a usable path", p, s);
      goto fail;
    }
    errno = 0;
    if (!realpath(joined, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
      mx_at(l, v[X_CWD], "%s: '%s' is not a folder: %s", p, joined,
            errno ? strerror(errno) : "not a folder");
      goto fail;
    }
    if (!(e->cwd = strdup(real))) goto oom;
  }
  if (v[X_ENV]) {
    snprintf(p, sizeof p, "%s.env", path);
    if (ext_env(l, v[X_ENV], p, e)) goto fail;
  }
  if (v[X_PORT] && !mx_is_null(v[X_PORT])) {
    snprintf(p, sizeof p, "%s.port", path);
    if (mx_want_int(l, v[X_PORT], p, 1, 65535, &e->port)) goto fail;
  }
  if (v[X_HEALTH]) {
    static const char *const hk[] = {"path", "status", "timeout"};
    yaml_node_t *hv[3];
    snprintf(p, sizeof p, "%s.health", path);
    if (mx_want_map(l, v[X_HEALTH], p, hk, 3, hv)) goto fail;
    char hp[192];
    if (hv[0]) {
      snprintf(hp, sizeof hp, "%s.path", p);
      if (mx_want_str_dup(l, hv[0], hp, &e->health_path)) goto fail;
      bool ok = e->health_path[0] == '/' && strlen(e->health_path) < 1024;
      for (const char *c = e->health_path; *c && ok; c++) ok = *c > 0x20 && *c < 0x7f;
      if (!ok) {
        mx_at(l, hv[0], "%s: expected a path starting with / (printable, no spaces)", hp);
        goto fail;
      }
    }
    if (hv[1]) {
      snprintf(hp, sizeof hp, "%s.status", p);
      if (mx_want_int(l, hv[1], hp, 100, 599, &e->health_status)) goto fail;
    }
    if (hv[2]) {
      snprintf(hp, sizeof hp, "%s.timeout", p);
      if (mx_want_duration(l, hv[2], hp, &e->startup_timeout_s)) goto fail;
      if (e->startup_timeout_s < 1) {
        mx_at(l, hv[2], "%s: must be at least 1 second", hp);
        goto fail;
      }
    }
  }
  if (!e->health_path && !(e->health_path = strdup("/health"))) goto oom;
  if (v[X_STOP_SIGNAL]) {
    snprintf(p, sizeof p, "%s.stop_signal", path);
    if (mx_want_str(l, v[X_STOP_SIGNAL], p, &s)) goto fail;
    if ((e->stop_signal = signal_parse(s)) < 0) {
      mx_at(l, v[X_STOP_SIGNAL],
            "%s: unknown signal %s (known: SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGKILL, SIGUSR1, "
            "SIGUSR2)",
            p, mx_got(v[X_STOP_SIGNAL], g, sizeof g));
      goto fail;
    }
  }
  if (v[X_STOP_GRACE]) {
    int secs;
    snprintf(p, sizeof p, "%s.stop_grace", path);
    if (mx_want_duration(l, v[X_STOP_GRACE], p, &secs)) goto fail;
    if (secs < 0 || secs > 3600) {
      mx_at(l, v[X_STOP_GRACE], "%s: out of range (0..3600 seconds)", p);
      goto fail;
    }
    e->stop_grace_ms = secs * 1000;
  }
  if (v[X_ROUTES]) {
    snprintf(p, sizeof p, "%s.routes", path);
    if (mx_want_str_list(l, v[X_ROUTES], p, &e->routes, &e->n_routes, NULL, NULL)) goto fail;
    yaml_node_item_t *it =
        v[X_ROUTES]->type == YAML_SEQUENCE_NODE ? v[X_ROUTES]->data.sequence.items.start : NULL;
    for (size_t i = 0; i < e->n_routes; i++) {
      size_t k = 0;
      while (k < sizeof ext_routes / sizeof ext_routes[0] &&
             strcmp(ext_routes[k].path, e->routes[i]) != 0)
        k++;
      if (k == sizeof ext_routes / sizeof ext_routes[0]) {
        mx_at(l, mx_node(l, it[i]),
              "%s[%zu]: unknown route '%.200s' (known: /v1/chat/completions, /v1/completions, "
              "/v1/embeddings, /v1/rerank, /v1/images/generations, /v1/images/edits, "
              "/v1/audio/speech, "
              "/v1/audio/transcriptions, /v1/audio/translations)",
              p, i, e->routes[i]);
        goto fail;
      }
    }
  }
  if (v[X_UPSTREAM]) {
    snprintf(p, sizeof p, "%s.upstream", path);
    if (mx_want_bool(l, v[X_UPSTREAM], p, &e->upstream)) goto fail;
  }
  if (v[X_MEMORY] && !mx_is_null(v[X_MEMORY])) {
    snprintf(p, sizeof p, "%s.memory", path);
    if (mx_want_size(l, v[X_MEMORY], p, 0, 1LL << 50, &e->memory)) goto fail;
  }
  if (v[X_GPU_MEMORY]) {
    snprintf(p, sizeof p, "%s.gpu_memory", path);
    if (ext_gpu_memory(l, v[X_GPU_MEMORY], p, e)) goto fail;
  }
  if (!(e->sig = ext_signature(e))) goto oom;
  *out = e;
  return 0;
oom:
  mx_oom(l);
fail:
  mx_ext_free(e);
  return -1;
}
