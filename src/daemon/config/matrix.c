/* matrix.c — the model matrix: reads the YAML config (docs/CONFIG.md) into a struct matrix, checks
 * every value, reads each model's GGUF header (gguf_header.c) for capabilities and context
 * defaults, and adds the *.gguf files found in the models folder. This file is the top level: the
 * small helpers the other parts share, the document walk (the top-level keys, in the order they are
 * checked), and the public face (matrix_load, matrix_free, matrix_find...). The parts are split
 * along the config's own sections, all private to the matrix (matrix_int.h): matrix_yaml.c node
 * readers, key descriptor tables, "file:line:col: reason" errors matrix_model.c     models (a
 * table-driven reader of their keys), capabilities matrix_voice.c     a speech model's voices
 *   matrix_external.c  external engines (engine: external)
 *   matrix_discover.c  the models folder
 *   matrix_router.c    routers
 *   matrix_pipeline.c  pipelines
 *   matrix_peer.c      peers (other daemons whose models this one offers)
 *
 * The YAML is read with libyaml's document API, not libcyaml: libcyaml reports positions only
 * inside its log output, and our own checks (ranges, durations, names shared by models and
 * aliases, files that must be GGUFs) need the line and column of the node at fault, which
 * libyaml's nodes carry. The walk is driven by the fixed schema, never by the document's shape,
 * so aliases (even cyclic ones) cannot make it recurse or loop.
 *
 * This file must never accept a config it did not fully check (unknown keys, wrong types and
 * out-of-range numbers are errors with "file:line:col: reason"), never let a bad file in the
 * models folder stop the daemon (a warning, and the file is skipped), and never read without a
 * bound: the config is at most 1 MiB, and at most MATRIX_MAX_MODELS models are kept. */
#include "config/matrix.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "log.h"
#include "config/matrix_int.h"

#define CONFIG_MAX_BYTES (1 << 20)
#define MATRIX_MAX_WARNINGS 256

/* ---- small helpers -------------------------------------------------------------------------- */

/* strdup that leaves *dst alone and returns -1 when out of memory. */
int mx_dup(char **dst, const char *s) {
  char *d = strdup(s);
  if (!d) return -1;
  *dst = d;
  return 0;
}

void mx_strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Append s to a growing string vector; -1 when out of memory. */
int mx_strv_push(char ***v, size_t *n, const char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof **v);
  if (!nv) return -1;
  *v = nv;
  if (mx_dup(&nv[*n], s)) return -1;
  (*n)++;
  return 0;
}

/* dir + "/" + rel, or rel when it is absolute; -1 when it does not fit. */
int mx_join_path(char *out, size_t cap, const char *dir, const char *rel) {
  int n =
      rel[0] == '/' || !dir ? snprintf(out, cap, "%s", rel) : snprintf(out, cap, "%s/%s", dir, rel);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* A model name or alias: 1..NAME_MAX_LEN bytes, no spaces or control characters. */
bool mx_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

void mx_warn(matrix *m, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  LOG_W("%s", line);
  if (m->n_warnings < MATRIX_MAX_WARNINGS) (void)mx_strv_push(&m->warnings, &m->n_warnings, line);
}

/* ---- the config file ------------------------------------------------------------------------- */

enum {
  K_LISTEN,
  K_API_KEYS,
  K_ADMIN_KEYS,
  K_MODELS_DIR,
  K_LOG_LEVEL,
  K_LIMITS,
  K_DEFAULTS,
  K_MODELS,
  K_MEMORY,
  K_SCHEDULING,
  K_BUILTIN_VOICE,
  K_PIPELINES,
  K_ROUTERS,
  K_PULL,
  K_LOG_FORMAT,
  K_PEERS,
  K_N
};
static const char *const top_keys[K_N] = {"listen",    "api_keys",   "admin_keys",    "models_dir",
                                          "log_level", "limits",     "defaults",      "models",
                                          "memory",    "scheduling", "builtin_voice", "pipelines",
                                          "routers",   "pull",       "log_format",    "peers"};

/* memory.devices: {NAME: size, ...}, at most 8 names of the engine's GPU devices. */
static int read_gpu_budgets(loader *l, const yaml_node_t *n, matrix *m) {
  if (mx_want_kind(l, n, "memory.devices", YAML_MAPPING_NODE)) return -1;
  size_t np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (np > 8) return mx_at(l, n, "memory.devices: at most 8 devices");
  m->gpu_names = calloc(np + 1, sizeof *m->gpu_names);
  m->gpu_budgets = calloc(np + 1, sizeof *m->gpu_budgets);
  if (!m->gpu_names || !m->gpu_budgets) return mx_at(l, n, "out of memory");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = mx_node(l, p->key), *v = mx_node(l, p->value);
    char g[64], path[96];
    if (!k || !v) return mx_at(l, n, "memory.devices: malformed mapping");
    if (k->type != YAML_SCALAR_NODE || !*mx_sval(k) || strlen(mx_sval(k)) > 63)
      return mx_at(l, k, "memory.devices: keys must be device names like CUDA0, got %s",
                   mx_got(k, g, sizeof g));
    for (size_t i = 0; i < m->n_gpu_budgets; i++)
      if (strcmp(m->gpu_names[i], mx_sval(k)) == 0)
        return mx_at(l, k, "memory.devices.%s: duplicate key", mx_sval(k));
    snprintf(path, sizeof path, "memory.devices.%s", mx_sval(k));
    long long b;
    if (mx_want_size(l, v, path, 1LL << 20, 1LL << 50, &b)) return -1;
    if (!(m->gpu_names[m->n_gpu_budgets] = strdup(mx_sval(k)))) return mx_at(l, n, "out of memory");
    m->gpu_budgets[m->n_gpu_budgets++] = b;
  }
  return 0;
}

/* A pull setting at v: a URL (http:// or https://) or a token, printable, no spaces (it goes into
 * a request line or header), at most MATRIX_MAX_PULL_SETTING bytes. */
static int read_pull_str(loader *l, const yaml_node_t *v, const char *path, bool url, char **out) {
  const char *s;
  if (mx_want_str(l, v, path, &s)) return -1;
  size_t n = strlen(s);
  if (n == 0 || n > MATRIX_MAX_PULL_SETTING)
    return mx_at(l, v, "%s: 1 to %d bytes, got %zu", path, MATRIX_MAX_PULL_SETTING, n);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
      return mx_at(l, v, "%s: only printable ASCII without spaces", path);
  if (url && strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
    return mx_at(l, v, "%s: '%s' is not an http:// or https:// URL", path, s);
  return mx_dup(out, s) ? mx_oom(l) : 0;
}

/* pull: {hf_endpoint, hf_token, registry, max_bytes}: where `switchyard pull` fetches from. */
static int read_pull(loader *l, const yaml_node_t *n, matrix *m) {
  static const char *const keys[] = {"hf_endpoint", "hf_token", "registry", "max_bytes"};
  yaml_node_t *v[4];
  if (mx_want_map(l, n, "pull", keys, 4, v)) return -1;
  if (v[0] && read_pull_str(l, v[0], "pull.hf_endpoint", true, &m->pull_hf_endpoint)) return -1;
  if (v[1] && read_pull_str(l, v[1], "pull.hf_token", false, &m->pull_hf_token)) return -1;
  if (v[2] && read_pull_str(l, v[2], "pull.registry", true, &m->pull_registry)) return -1;
  if (v[3] && mx_want_size(l, v[3], "pull.max_bytes", 1LL << 20, 1LL << 50, &m->pull_max_bytes))
    return -1;
  return 0;
}

static int load_root(loader *l, const yaml_node_t *root) {
  matrix *m = l->m;
  char g[64];
  if (root->type != YAML_MAPPING_NODE)
    return mx_at(l, root, "the config must be a mapping of keys to values, got %s",
                 mx_got(root, g, sizeof g));
  yaml_node_t *v[K_N];
  if (mx_want_map(l, root, "", top_keys, K_N, v)) return -1;

  if (v[K_LISTEN] && !mx_is_null(v[K_LISTEN])) {
    static const char *const keys[] = {"host", "port"};
    yaml_node_t *lv[2];
    if (mx_want_map(l, v[K_LISTEN], "listen", keys, 2, lv)) return -1;
    if (lv[0] && mx_want_str_dup(l, lv[0], "listen.host", &m->host)) return -1;
    if (lv[1] && mx_want_int(l, lv[1], "listen.port", 0, 65535, &m->port)) return -1;
  }
  if (v[K_API_KEYS]) {
    if (mx_want_str_list(l, v[K_API_KEYS], "api_keys", &m->api_keys, &m->n_api_keys, NULL, NULL))
      return -1;
  }
  if (v[K_ADMIN_KEYS]) {
    if (mx_want_str_list(l, v[K_ADMIN_KEYS], "admin_keys", &m->admin_keys, &m->n_admin_keys, NULL,
                         NULL))
      return -1;
  }
  if (v[K_LOG_LEVEL]) {
    const char *s;
    if (mx_want_str(l, v[K_LOG_LEVEL], "log_level", &s)) return -1;
    int lv = sy_log_parse_level(s);
    if (lv < 0)
      return mx_at(l, v[K_LOG_LEVEL],
                   "log_level: unknown level '%s' (known: error, warn, info, debug)", s);
    m->log_level = lv;
  }
  if (v[K_PULL] && !mx_is_null(v[K_PULL]) && read_pull(l, v[K_PULL], m)) return -1;
  if (v[K_LOG_FORMAT]) {
    const char *s;
    if (mx_want_str(l, v[K_LOG_FORMAT], "log_format", &s)) return -1;
    int f = sy_log_parse_format(s);
    if (f < 0)
      return mx_at(l, v[K_LOG_FORMAT], "log_format: unknown format '%s' (known: text, json)", s);
    m->log_format = f;
  }
  if (v[K_LIMITS] && !mx_is_null(v[K_LIMITS])) {
    static const char *const keys[] = {
        "max_body_bytes",       "max_connections",  "image_dir",
        "max_image_bytes",      "max_image_pixels", "max_upload_bytes",
        "ws_max_message_bytes", "ws_max_sessions",  "ws_idle_timeout"};
    yaml_node_t *lv[9];
    long long b;
    if (mx_want_map(l, v[K_LIMITS], "limits", keys, 9, lv)) return -1;
    if (lv[6]) {
      if (mx_want_ll(l, lv[6], "limits.ws_max_message_bytes", 1024, 1ll << 30, &b)) return -1;
      m->ws_max_message_bytes = (size_t)b;
    }
    if (lv[7] && mx_want_int(l, lv[7], "limits.ws_max_sessions", 1, 65536, &m->ws_max_sessions))
      return -1;
    if (lv[8]) {
      if (mx_want_duration(l, lv[8], "limits.ws_idle_timeout", &m->ws_idle_timeout_s)) return -1;
      if (m->ws_idle_timeout_s < 1)
        return mx_at(l, lv[8], "limits.ws_idle_timeout: must be at least 1s");
    }
    if (lv[5]) {
      if (mx_want_ll(l, lv[5], "limits.max_upload_bytes", 1024, 1ll << 32, &b)) return -1;
      m->max_upload_bytes = (size_t)b;
    }
    if (lv[2] && !mx_is_null(lv[2])) {
      const char *s;
      char joined[PATH_MAX], real[PATH_MAX];
      struct stat st;
      if (mx_want_str(l, lv[2], "limits.image_dir", &s)) return -1;
      if (!*s || mx_join_path(joined, sizeof joined, l->dir, s))
        return mx_at(l, lv[2], "limits.image_dir: '%s' is not a usable path", s);
      if (!realpath(joined, real) || stat(real, &st) != 0)
        return mx_at(l, lv[2], "limits.image_dir: cannot open '%s': %s", joined, strerror(errno));
      if (!S_ISDIR(st.st_mode))
        return mx_at(l, lv[2], "limits.image_dir: '%s' is not a directory", joined);
      if (mx_dup(&m->image_dir, real)) return mx_oom(l);
    }
    if (lv[3] &&
        mx_want_ll(l, lv[3], "limits.max_image_bytes", 1024, 1ll << 30, &m->max_image_bytes))
      return -1;
    if (lv[4] &&
        mx_want_ll(l, lv[4], "limits.max_image_pixels", 1, 1ll << 28, &m->max_image_pixels))
      return -1;
    if (lv[0]) {
      if (mx_want_ll(l, lv[0], "limits.max_body_bytes", 1024, 1ll << 30, &b)) return -1;
      m->max_body_bytes = (size_t)b;
    }
    if (lv[1] && mx_want_int(l, lv[1], "limits.max_connections", 1, 65536, &m->max_connections))
      return -1;
  }
  if (v[K_MEMORY] && !mx_is_null(v[K_MEMORY])) {
    static const char *const keys[] = {"budget", "reserve", "gpu_reserve", "gpu_overhead",
                                       "devices"};
    yaml_node_t *mv[5];
    if (mx_want_map(l, v[K_MEMORY], "memory", keys, 5, mv)) return -1;
    if (mv[0] && mx_want_size(l, mv[0], "memory.budget", 1LL << 20, 1LL << 50, &m->mem_budget))
      return -1;
    if (mv[1] && mx_want_size(l, mv[1], "memory.reserve", 0, 1LL << 50, &m->mem_reserve)) return -1;
    if (mv[2] && mx_want_size(l, mv[2], "memory.gpu_reserve", 0, 1LL << 50, &m->gpu_reserve))
      return -1;
    if (mv[3] && mx_want_size(l, mv[3], "memory.gpu_overhead", 0, 1LL << 40, &m->gpu_overhead))
      return -1;
    if (mv[4] && !mx_is_null(mv[4]) && read_gpu_budgets(l, mv[4], m)) return -1;
  }
  if (v[K_SCHEDULING] && !mx_is_null(v[K_SCHEDULING])) {
    static const char *const keys[] = {"swap_guard", "max_loads"};
    yaml_node_t *sv[2];
    if (mx_want_map(l, v[K_SCHEDULING], "scheduling", keys, 2, sv)) return -1;
    if (sv[1] && mx_want_int(l, sv[1], "scheduling.max_loads", 1, 64, &m->max_loads)) return -1;
    if (sv[0]) {
      if (mx_want_duration(l, sv[0], "scheduling.swap_guard", &m->swap_guard_s)) return -1;
      if (m->swap_guard_s < 0 || m->swap_guard_s > 3600)
        return mx_at(l, sv[0], "scheduling.swap_guard: %s is out of range (0..1h)", mx_sval(sv[0]));
    }
  }
  if (v[K_BUILTIN_VOICE] && mx_want_bool(l, v[K_BUILTIN_VOICE], "builtin_voice", &m->builtin_voice))
    return -1;
  if (v[K_DEFAULTS] && !mx_is_null(v[K_DEFAULTS])) {
    yaml_node_t *dv[O_N];
    if (mx_want_keys(l, v[K_DEFAULTS], "defaults", mx_opt_keys, O_N, dv) ||
        mx_keys_read(l, mx_opt_keys, O_N, dv, v[K_DEFAULTS], "defaults", &l->defaults))
      return -1;
  }
  if (v[K_MODELS_DIR] && !mx_is_null(v[K_MODELS_DIR])) {
    const char *s;
    char joined[PATH_MAX], real[PATH_MAX];
    struct stat st;
    if (mx_want_str(l, v[K_MODELS_DIR], "models_dir", &s)) return -1;
    if (!*s || mx_join_path(joined, sizeof joined, l->dir, s))
      return mx_at(l, v[K_MODELS_DIR], "models_dir: '%s' is not a usable path", s);
    if (!realpath(joined, real) || stat(real, &st) != 0)
      return mx_at(l, v[K_MODELS_DIR], "models_dir: cannot open '%s': %s", joined, strerror(errno));
    if (!S_ISDIR(st.st_mode))
      return mx_at(l, v[K_MODELS_DIR], "models_dir: '%s' is not a directory", joined);
    if (mx_dup(&m->models_dir, real)) return mx_oom(l);
  }
  if (v[K_MODELS] && !mx_is_null(v[K_MODELS])) {
    if (mx_want_kind(l, v[K_MODELS], "models", YAML_SEQUENCE_NODE)) return -1;
    size_t i = 0;
    for (yaml_node_item_t *it = v[K_MODELS]->data.sequence.items.start;
         it < v[K_MODELS]->data.sequence.items.top; it++, i++) {
      yaml_node_t *e = mx_node(l, *it);
      if (!e || mx_load_model(l, e, i)) return -1;
    }
  }
  if (v[K_PIPELINES] && mx_load_pipelines(l, v[K_PIPELINES]))
    return -1; /* after the models: steps name them */
  if (v[K_ROUTERS] && !mx_is_null(v[K_ROUTERS]) && mx_load_routers(l, v[K_ROUTERS]))
    return -1; /* after the models */
  if (v[K_PEERS] && mx_load_peers(l, v[K_PEERS])) return -1;
  return 0;
}

/* libyaml's own error, as "FILE:LINE:COL: problem (context)". */
static void yaml_error(loader *l, const yaml_parser_t *ps, const char *buf, size_t len) {
  size_t line = ps->problem_mark.line, col = ps->problem_mark.column;
  if (ps->error == YAML_READER_ERROR) { /* only an offset: count lines up to it */
    line = col = 0;
    for (size_t i = 0; i < ps->problem_offset && i < len; i++, col++)
      if (buf[i] == '\n') line++, col = (size_t)-1;
  }
  char ctx[160] = "";
  if (ps->context)
    snprintf(ctx, sizeof ctx, " (%s at line %zu, column %zu)", ps->context,
             ps->context_mark.line + 1, ps->context_mark.column + 1);
  mx_set_err(l->err, l->errlen, "%s:%zu:%zu: %s%s", l->file, line + 1, col + 1,
             ps->problem ? ps->problem : "YAML error", ctx);
}

static int load_config(loader *l) {
  FILE *f = fopen(l->file, "rb");
  if (!f) {
    mx_set_err(l->err, l->errlen, "%s: cannot read config: %s", l->file, strerror(errno));
    return -1;
  }
  char *buf = malloc(CONFIG_MAX_BYTES + 1);
  if (!buf) {
    fclose(f);
    return mx_oom(l);
  }
  size_t len = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
  bool bad = ferror(f) != 0;
  fclose(f);
  if (bad || len > CONFIG_MAX_BYTES) {
    mx_set_err(l->err, l->errlen, "%s: %s", l->file,
               bad ? "cannot read config (is it a directory?)" : "config is larger than 1 MiB");
    free(buf);
    return -1;
  }
  yaml_parser_t ps;
  yaml_document_t doc, extra;
  int rc = -1;
  if (!yaml_parser_initialize(&ps)) {
    free(buf);
    return mx_oom(l);
  }
  yaml_parser_set_input_string(&ps, (const unsigned char *)buf, len);
  if (!yaml_parser_load(&ps, &doc)) {
    yaml_error(l, &ps, buf, len);
    goto out_parser;
  }
  l->doc = &doc;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root) {
    /* one document only: a second one would be silently ignored otherwise */
    if (!yaml_parser_load(&ps, &extra)) {
      yaml_error(l, &ps, buf, len);
      goto out_doc;
    }
    yaml_node_t *r2 = yaml_document_get_root_node(&extra);
    if (r2) {
      mx_set_err(l->err, l->errlen, "%s:%zu:%zu: only one YAML document is allowed", l->file,
                 r2->start_mark.line + 1, r2->start_mark.column + 1);
      yaml_document_delete(&extra);
      goto out_doc;
    }
    yaml_document_delete(&extra);
    rc = load_root(l, root);
  } else {
    rc = 0; /* an empty file: all defaults */
  }
out_doc:
  yaml_document_delete(&doc);
  l->doc = NULL;
out_parser:
  yaml_parser_delete(&ps);
  free(buf);
  return rc;
}

/* ---- the public face ------------------------------------------------------------------------ */

matrix *matrix_load(const char *config_path, const char *models_dir, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  matrix *m = calloc(1, sizeof *m);
  if (!m) {
    mx_set_err(err, errlen, "out of memory");
    return NULL;
  }
  m->port = 8080;
  m->max_body_bytes = 16u << 20;
  m->max_upload_bytes = 25u << 20;
  m->mem_reserve = 2LL << 30;
  m->gpu_reserve = 512LL << 20;
  m->gpu_overhead = 512LL << 20;
  m->swap_guard_s = 0;
  m->max_loads = 1;
  m->max_connections = 256;
  m->ws_max_message_bytes = 16u << 20;
  m->ws_max_sessions = 64;
  m->ws_idle_timeout_s = 300;
  m->log_level = SY_LOG_INFO;
  m->log_format = SY_LOG_TEXT;
  m->builtin_voice = true;
  loader l = {.file = config_path, .err = err, .errlen = errlen, .m = m};
  l.defaults = OPTS_UNSET;

  if (config_path) {
    char real[PATH_MAX];
    if (!realpath(config_path, real)) {
      mx_set_err(err, errlen, "%s: cannot read config: %s", config_path, strerror(errno));
      goto fail;
    }
    if (mx_dup(&m->path, real)) goto oom;
    char *slash = strrchr(real, '/');
    if (slash == real)
      slash[1] = '\0';
    else if (slash)
      *slash = '\0';
    snprintf(l.dir, sizeof l.dir, "%s", real);
    if (load_config(&l)) goto fail;
  }
  if (!m->host && mx_dup(&m->host, "127.0.0.1")) goto oom;
  if (models_dir) {
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(models_dir, real) || stat(real, &st) != 0) {
      mx_set_err(err, errlen, "models dir '%s': %s", models_dir, strerror(errno));
      goto fail;
    }
    if (!S_ISDIR(st.st_mode)) {
      mx_set_err(err, errlen, "models dir '%s': not a directory", models_dir);
      goto fail;
    }
    free(m->models_dir);
    m->models_dir = NULL;
    if (mx_dup(&m->models_dir, real)) goto oom;
  }
  if (m->models_dir) {
    opts dflt = l.defaults;
    if (mx_discover(m, &dflt, err, errlen)) goto fail;
  }
  if (mx_pipelines_check(&l)) goto fail;
  free(l.pipe_marks);
  if (mx_router_check(m, err, errlen)) goto fail;
  return m;
oom:
  mx_set_err(err, errlen, "out of memory");
fail:
  free(l.pipe_marks);
  matrix_free(m);
  return NULL;
}

void matrix_free(matrix *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_models; i++) mx_model_clear(&m->models[i]);
  free(m->models);
  for (size_t i = 0; i < m->n_pipelines; i++) mx_pipeline_clear(&m->pipelines[i]);
  free(m->pipelines);
  for (size_t i = 0; i < m->n_routers; i++) mx_router_clear(&m->routers[i]);
  free(m->routers);
  for (size_t i = 0; i < m->n_peers; i++) mx_peer_clear(&m->peers[i]);
  free(m->peers);
  free(m->path);
  free(m->host);
  mx_strv_free(m->api_keys, m->n_api_keys);
  mx_strv_free(m->admin_keys, m->n_admin_keys);
  free(m->pull_hf_endpoint);
  free(m->pull_hf_token);
  free(m->pull_registry);
  free(m->models_dir);
  free(m->image_dir);
  mx_strv_free(m->warnings, m->n_warnings);
  if (m->gpu_names)
    for (size_t i = 0; m->gpu_names[i]; i++) free(m->gpu_names[i]);
  free(m->gpu_names);
  free(m->gpu_budgets);
  free(m);
}

int matrix_add_builtins(matrix *m) {
  if (!m->builtin_voice || matrix_find(m, MATRIX_BUILTIN_VOICE) ||
      matrix_find_router(m, MATRIX_BUILTIN_VOICE))
    return 0;
  matrix_model mm = {.engine = MATRIX_ENGINE_ESPEAK,
                     .caps = MATRIX_CAP_SPEECH,
                     .parallel = 1,
                     .keep_alive_s = MATRIX_DEFAULT_KEEP_ALIVE_S,
                     .batch = MATRIX_DEFAULT_BATCH,
                     .gpu_layers = 0,
                     .max_queue = MATRIX_DEFAULT_MAX_QUEUE};
  if (!(mm.name = strdup(MATRIX_BUILTIN_VOICE)) || !(mm.file = strdup("")) ||
      !(mm.source = strdup("(built-in)")) || mx_model_push(m, &mm) != 0) {
    mx_model_clear(&mm);
    return -1;
  }
  return 0;
}

const matrix_model *matrix_find(const matrix *m, const char *name) {
  if (!m || !name) return NULL;
  for (size_t i = 0; i < m->n_models; i++) {
    const matrix_model *mm = &m->models[i];
    if (!strcmp(mm->name, name)) return mm;
    for (size_t j = 0; j < mm->n_aliases; j++)
      if (!strcmp(mm->aliases[j], name)) return mm;
  }
  return NULL;
}
