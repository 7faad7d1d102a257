/* matrix.c — the model matrix: reads the YAML config (docs/CONFIG.md) into a struct matrix, checks
 * every value, reads each model's GGUF header (gguf.c) for capabilities and context defaults, and
 * adds the *.gguf files found in the models folder.
 *
 * The YAML is read with libyaml's document API, not libcyaml: libcyaml reports positions only
 * inside its log output, and our own checks (ranges, durations, names shared by models and
 * aliases, files that must be GGUFs) need the line and column of the node at fault, which
 * libyaml's nodes carry. The walk is driven by the fixed schema below, never by the document's
 * shape, so aliases (even cyclic ones) cannot make it recurse or loop.
 *
 * This file must never accept a config it did not fully check (unknown keys, wrong types and
 * out-of-range numbers are errors with "file:line:col: reason"), never let a bad file in the
 * models folder stop the daemon (a warning, and the file is skipped), and never read without a
 * bound: the config is at most 1 MiB, and at most MATRIX_MAX_MODELS models are kept. */
#include "matrix.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/stat.h>
#include <jansson.h>
#include <yaml.h>

#include "gguf.h"
#include "log.h"

#define CONFIG_MAX_BYTES (1 << 20)
#define MATRIX_MAX_MODELS 4096
#define MATRIX_MAX_WARNINGS 256
#define NAME_MAX_LEN 128
#define UNSET INT_MIN

/* ---- small helpers -------------------------------------------------------------------------- */

/* strdup that leaves *dst alone and returns -1 when out of memory. */
static int dup_to(char **dst, const char *s) {
  char *d = strdup(s);
  if (!d) return -1;
  *dst = d;
  return 0;
}

static void free_strv(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Append s to a growing string vector; -1 when out of memory. */
static int strv_push(char ***v, size_t *n, const char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof **v);
  if (!nv) return -1;
  *v = nv;
  if (dup_to(&nv[*n], s)) return -1;
  (*n)++;
  return 0;
}

/* dir + "/" + rel, or rel when it is absolute; -1 when it does not fit. */
static int join_path(char *out, size_t cap, const char *dir, const char *rel) {
  int n =
      rel[0] == '/' || !dir ? snprintf(out, cap, "%s", rel) : snprintf(out, cap, "%s/%s", dir, rel);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* A model name or alias: 1..NAME_MAX_LEN bytes, no spaces or control characters. */
static bool name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

static void add_warning(matrix *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_warning(matrix *m, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  LOG_W("%s", line);
  if (m->n_warnings < MATRIX_MAX_WARNINGS) (void)strv_push(&m->warnings, &m->n_warnings, line);
}

/* ---- capabilities -----------------------------------------------------------------------------
 */

static const char *const cap_names[] = {"chat", "completion", "embed", "rerank", "transcribe", "speech", "vision",
                                        "audio"};
static const char *const engine_names[MATRIX_N_ENGINES] = {"llama", "whisper", "espeak", "external"};

const char *matrix_engine_name(enum matrix_engine e) {
  return (unsigned)e < MATRIX_N_ENGINES ? engine_names[e] : "?";
}
#define N_CAPS (sizeof cap_names / sizeof cap_names[0])

static int cap_parse(const char *s) {
  for (size_t i = 0; i < N_CAPS; i++)
    if (!strcmp(s, cap_names[i])) return (int)(1u << i);
  return -1;
}

const char *matrix_caps_str(unsigned caps, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  buf[0] = '\0';
  size_t at = 0;
  for (size_t i = 0; i < N_CAPS; i++) {
    if (!(caps & (1u << i))) continue;
    int n = snprintf(buf + at, len - at, "%s%s", at ? "," : "", cap_names[i]);
    if (n < 0 || (size_t)n >= len - at) { /* does not fit: keep the whole names before it */
      buf[at] = '\0';
      break;
    }
    at += (size_t)n;
  }
  return buf;
}

/* Encoder-only architectures (llama.cpp's names): they embed, they do not generate. */
static bool arch_is_encoder(const char *arch) {
  static const char *const enc[] = {"bert",           "modern-bert", "nomic-bert",
                                    "nomic-bert-moe", "neo-bert",    "jina-bert-v2",
                                    "jina-bert-v3",   "eurobert",    "gemma-embedding",
                                    "t5encoder",      "llama-embed"};
  for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++)
    if (!strcmp(arch, enc[i])) return true;
  return false;
}

/* Capabilities when the config names none: from the configured pooling, else the GGUF. */
static unsigned caps_default(const gguf_info *g, const char *pooling, const char *chat_template) {
  if (pooling && !strcmp(pooling, "rank")) return MATRIX_CAP_RERANK;
  if (pooling && strcmp(pooling, "none") != 0) return MATRIX_CAP_EMBED;
  if (g->pooling_type == 4) return MATRIX_CAP_RERANK;
  if (g->pooling_type > 0 || arch_is_encoder(g->arch)) return MATRIX_CAP_EMBED;
  unsigned c = MATRIX_CAP_COMPLETION;
  if (g->has_chat_template || chat_template) c |= MATRIX_CAP_CHAT;
  return c;
}

/* ---- the loader ------------------------------------------------------------------------------ */

/* Per-model settings as written; UNSET where not given. */
typedef struct opts {
  int context, parallel, keep_alive, threads, batch, gpu_layers;
} opts;

typedef struct loader {
  const char *file;   /* the config path as given, for messages */
  char dir[PATH_MAX]; /* its folder (absolute), for relative paths */
  yaml_document_t *doc;
  char *err;
  size_t errlen;
  matrix *m;
  opts defaults;
  struct pipe_marks *pipe_marks; /* where each pipeline's names are, for the checks after discovery */
} loader;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* "FILE:LINE:COL: reason" at node n; returns -1. */
static int at(loader *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int at(loader *l, const yaml_node_t *n, const char *fmt, ...) {
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  set_err(l->err, l->errlen, "%s:%zu:%zu: %s", l->file, n->start_mark.line + 1,
          n->start_mark.column + 1, what);
  return -1;
}

static int oom(loader *l) {
  set_err(l->err, l->errlen, "%s: out of memory", l->file);
  return -1;
}

static yaml_node_t *node(loader *l, int id) { return yaml_document_get_node(l->doc, id); }

static const char *sval(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static bool is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const char *s = sval(n);
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* What a node is, for "expected X, got Y". */
static const char *got(const yaml_node_t *n, char *buf, size_t len) {
  if (n->type == YAML_MAPPING_NODE) return "a mapping";
  if (n->type == YAML_SEQUENCE_NODE) return "a list";
  if (is_null(n)) return "nothing";
  const char *s = sval(n);
  if (strlen(s) > 40)
    snprintf(buf, len, "'%.37s...'", s);
  else
    snprintf(buf, len, "'%s'", s);
  return buf;
}

/* A scalar that is a string: not null, no NUL inside. */
static int want_str(loader *l, const yaml_node_t *n, const char *path, const char **out) {
  char g[64];
  if (n->type != YAML_SCALAR_NODE || is_null(n))
    return at(l, n, "%s: expected a string, got %s", path, got(n, g, sizeof g));
  if (strlen(sval(n)) != n->data.scalar.length)
    return at(l, n, "%s: the string contains a NUL byte", path);
  *out = sval(n);
  return 0;
}

/* A plain true/false scalar. */
static int want_bool(loader *l, const yaml_node_t *n, const char *path, bool *out) {
  char g[64];
  const char *v =
      n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? sval(n) : "";
  if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
    *out = true;
  else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
    *out = false;
  else
    return at(l, n, "%s: expected true or false, got %s", path, got(n, g, sizeof g));
  return 0;
}

static int want_str_dup(loader *l, const yaml_node_t *n, const char *path, char **out) {
  const char *s;
  if (want_str(l, n, path, &s)) return -1;
  if (!*s) return at(l, n, "%s: must not be empty", path);
  char *d = strdup(s);
  if (!d) return oom(l);
  free(*out);
  *out = d;
  return 0;
}

/* Parse "[-+]digits" fully; -1 if not an integer, -2 if it overflows long long. */
static int parse_ll(const char *s, long long *v) {
  const char *p = s;
  if (*p == '-' || *p == '+') p++;
  if (!isdigit((unsigned char)*p)) return -1;
  for (const char *q = p; *q; q++)
    if (!isdigit((unsigned char)*q)) return -1;
  errno = 0;
  *v = strtoll(s, NULL, 10);
  return errno == ERANGE ? -2 : 0;
}

static int want_ll(loader *l, const yaml_node_t *n, const char *path, long long lo, long long hi,
                   long long *out) {
  char g[64];
  long long v;
  int r = n->type == YAML_SCALAR_NODE && !is_null(n) ? parse_ll(sval(n), &v) : -1;
  if (r == -1) return at(l, n, "%s: expected an integer, got %s", path, got(n, g, sizeof g));
  if (r == -2 || v < lo || v > hi)
    return at(l, n, "%s: %s is out of range (%lld..%lld)", path, sval(n), lo, hi);
  *out = v;
  return 0;
}

static int want_int(loader *l, const yaml_node_t *n, const char *path, int lo, int hi, int *out) {
  long long v;
  if (want_ll(l, n, path, lo, hi, &v)) return -1;
  *out = (int)v;
  return 0;
}

/* A memory size: bytes, or a number with KiB/MiB/GiB/TiB (or KB/MB/GB/TB, also powers of 1024,
 * as every GPU tool means them); lo..hi bytes. */
static int want_size(loader *l, const yaml_node_t *n, const char *path, long long lo, long long hi,
                     long long *out) {
  char g[64];
  const char *s = n->type == YAML_SCALAR_NODE && !is_null(n) ? sval(n) : NULL;
  char *end = NULL;
  double v = s ? strtod(s, &end) : -1;
  static const char *const units[] = {"",  "K",  "KB",  "KiB", "M",  "MB", "MiB",
                                      "G", "GB", "GiB", "T",   "TB", "TiB"};
  static const int shift[] = {0, 10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40};
  int u = -1;
  for (int i = 0; s && end != s && i < 13 && u < 0; i++)
    if (strcmp(end, units[i]) == 0) u = i;
  if (u < 0 || !(v >= 0))
    return at(l, n, "%s: expected a size like 8GiB, 512MiB or a number of bytes, got %s", path,
              got(n, g, sizeof g));
  double bytes = v * (double)(1LL << shift[u]);
  if (bytes < (double)lo || bytes > (double)hi)
    return at(l, n, "%s: %s is out of range (%lld..%lld bytes)", path, s, lo, hi);
  *out = (long long)bytes;
  return 0;
}

/* keep_alive: integer seconds, or a number with s, m or h; -1..INT_MAX seconds. */
static int want_duration(loader *l, const yaml_node_t *n, const char *path, int *out) {
  char g[64];
  if (n->type != YAML_SCALAR_NODE || is_null(n))
    return at(l, n, "%s: expected seconds or a duration like 30s, 5m, 2h, got %s", path,
              got(n, g, sizeof g));
  char num[32];
  const char *s = sval(n);
  size_t len = strlen(s);
  long long mul = 1;
  if (len > 1 && strchr("smh", s[len - 1])) {
    mul = s[len - 1] == 's' ? 1 : s[len - 1] == 'm' ? 60 : 3600;
    len--;
  }
  long long v;
  int r = len < sizeof num ? 0 : -2;
  if (r == 0) {
    memcpy(num, s, len);
    num[len] = '\0';
    r = parse_ll(num, &v);
  }
  if (r == -1 || (r == 0 && mul > 1 && (num[0] == '-' || num[0] == '+')))
    return at(l, n, "%s: expected seconds or a duration like 30s, 5m, 2h, got %s", path,
              got(n, g, sizeof g));
  if (r == -2 || v < -1 || v > INT_MAX / mul || (v == -1 && mul > 1))
    return at(l, n, "%s: %s is out of range (-1..%d seconds)", path, s, INT_MAX);
  *out = (int)(v * mul);
  return 0;
}

static int want_kind(loader *l, const yaml_node_t *n, const char *path, yaml_node_type_t t) {
  char g[64];
  if (n->type == t) return 0;
  return at(l, n, "%s: expected %s, got %s", path, t == YAML_MAPPING_NODE ? "a mapping" : "a list",
            got(n, g, sizeof g));
}

/* Check a mapping against its allowed keys: vals[i] gets the value of keys[i] (NULL if absent).
 * Unknown, duplicate and non-string keys are errors at the key. */
static int want_map(loader *l, const yaml_node_t *n, const char *path, const char *const *keys,
                    size_t nkeys, yaml_node_t **vals) {
  if (want_kind(l, n, path, YAML_MAPPING_NODE)) return -1;
  for (size_t i = 0; i < nkeys; i++) vals[i] = NULL;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
    char g[64];
    if (!k || !v) return at(l, n, "%s: malformed mapping", path);
    if (k->type != YAML_SCALAR_NODE)
      return at(l, k, "%s%skeys must be strings, got %s", path, *path ? ": " : "",
                got(k, g, sizeof g));
    size_t i = 0;
    while (i < nkeys && strcmp(sval(k), keys[i]) != 0) i++;
    if (i == nkeys) return at(l, k, "%s%s%.64s: unknown key", path, *path ? "." : "", sval(k));
    if (vals[i]) return at(l, k, "%s%s%s: duplicate key", path, *path ? "." : "", keys[i]);
    vals[i] = v;
  }
  return 0;
}

/* A list of strings (null = empty) into a fresh vector; each passes check when given. */
static int want_str_list(loader *l, const yaml_node_t *n, const char *path, char ***out,
                         size_t *nout, bool (*check)(const char *), const char *check_what) {
  *out = NULL;
  *nout = 0;
  if (is_null(n)) return 0;
  if (want_kind(l, n, path, YAML_SEQUENCE_NODE)) return -1;
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++, i++) {
    yaml_node_t *e = node(l, *it);
    char ipath[160];
    const char *s;
    snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
    if (!e || want_str(l, e, ipath, &s)) goto fail;
    if (!*s) {
      at(l, e, "%s: must not be empty", ipath);
      goto fail;
    }
    if (check && !check(s)) {
      at(l, e, "%s: '%s' is not a valid %s", ipath, s, check_what);
      goto fail;
    }
    if (strv_push(out, nout, s)) {
      oom(l);
      goto fail;
    }
  }
  return 0;
fail:
  free_strv(*out, *nout);
  *out = NULL;
  *nout = 0;
  return -1;
}

/* The settings models share: the "defaults" section, and the same keys on each model. */
enum { O_CONTEXT, O_PARALLEL, O_KEEP_ALIVE, O_THREADS, O_BATCH, O_GPU_LAYERS, O_N };
static const char *const opt_keys[O_N] = {"context", "parallel", "keep_alive",
                                          "threads", "batch",    "gpu_layers"};

static int read_opts(loader *l, yaml_node_t *const *vals, const char *path, opts *o) {
  char p[192];
  int *dst[O_N] = {&o->context, &o->parallel, &o->keep_alive,
                   &o->threads, &o->batch,    &o->gpu_layers};
  static const int lo[O_N] = {16, 1, 0, 0, 1, -1}, hi[O_N] = {1048576, 256, 0, 1024, 65536, 65536};
  for (int i = 0; i < O_N; i++) {
    *dst[i] = UNSET;
    if (!vals[i]) continue;
    snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", opt_keys[i]);
    int rc = i == O_KEEP_ALIVE ? want_duration(l, vals[i], p, dst[i])
                               : want_int(l, vals[i], p, lo[i], hi[i], dst[i]);
    if (rc) return -1;
  }
  return 0;
}

static int pick(int given, int dflt, int builtin) {
  return given != UNSET ? given : dflt != UNSET ? dflt : builtin;
}

/* ---- models --------------------------------------------------------------------------------- */

/* ---- external engines (engine: external) ---------------------------------------------------- */

static void ext_free(matrix_external *e) {
  if (!e) return;
  free_strv(e->argv, e->argc);
  free(e->cwd);
  free_strv(e->env, e->n_env);
  free(e->health_path);
  free_strv(e->routes, e->n_routes);
  free_strv(e->gpu_names, e->n_gpu);
  free(e->gpu_bytes);
  free(e->sig);
  free(e);
}

/* The OpenAI paths an external engine may serve by "model", and the capability each implies. */
static const struct {
  const char *path;
  unsigned cap;
} ext_routes[] = {
    {"/v1/chat/completions", MATRIX_CAP_CHAT},         {"/v1/completions", MATRIX_CAP_COMPLETION},
    {"/v1/embeddings", MATRIX_CAP_EMBED},              {"/v1/rerank", MATRIX_CAP_RERANK},
    {"/v1/images/generations", 0},                     {"/v1/images/edits", 0},
    {"/v1/audio/speech", MATRIX_CAP_SPEECH},           {"/v1/audio/transcriptions", MATRIX_CAP_TRANSCRIBE},
    {"/v1/audio/translations", MATRIX_CAP_TRANSCRIBE},
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

static void model_clear(matrix_model *mm) {
  free(mm->name);
  free_strv(mm->aliases, mm->n_aliases);
  free(mm->file);
  free(mm->pooling);
  free(mm->chat_template);
  free(mm->mmproj);
  free(mm->transcribe_prompt);
  free(mm->vad_model);
  free_strv(mm->voice_names, mm->n_voices);
  free_strv(mm->voice_audio, mm->n_voices);
  free_strv(mm->voice_lang, mm->n_voices);
  free(mm->arch);
  free(mm->source);
  ext_free(mm->ext);
  memset(mm, 0, sizeof *mm);
}

/* The model in m that already uses name (as its name or an alias), or NULL. */
static const matrix_model *taken_by(const matrix *m, const char *name) {
  return matrix_find(m, name);
}

/* Fill what the GGUF tells and the settings every model has: given > defaults > built-in. */
static int model_finish(matrix_model *mm, const opts *given, const opts *dflt, const gguf_info *g,
                        const char *path, long long bytes) {
  if (!(mm->file = strdup(path))) return -1;
  if (g->arch[0] && !(mm->arch = strdup(g->arch))) return -1;
  mm->file_bytes = bytes;
  mm->n_ctx_train = g->context_length > INT_MAX ? INT_MAX : (int)g->context_length;
  if (given->context != UNSET) {
    mm->context = given->context;
  } else {
    mm->context = pick(UNSET, dflt->context, 4096);
    if (mm->n_ctx_train > 0 && mm->n_ctx_train < mm->context)
      mm->context = mm->n_ctx_train < 16 ? 16 : mm->n_ctx_train;
  }
  mm->parallel = pick(given->parallel, dflt->parallel, 4);
  mm->keep_alive_s = pick(given->keep_alive, dflt->keep_alive, 300);
  mm->threads = pick(given->threads, dflt->threads, 0);
  mm->batch = pick(given->batch, dflt->batch, 512);
  mm->gpu_layers = pick(given->gpu_layers, dflt->gpu_layers, -1);
  mm->engine = MATRIX_ENGINE_LLAMA;
  return 0;
}

static int push_model(matrix *m, matrix_model *mm) {
  if (m->n_models >= MATRIX_MAX_MODELS) return -1;
  matrix_model *nm = realloc(m->models, (m->n_models + 1) * sizeof *nm);
  if (!nm) return -1;
  m->models = nm;
  nm[m->n_models++] = *mm;
  memset(mm, 0, sizeof *mm);
  return 0;
}

enum {
  M_NAME,
  M_ALIASES,
  M_FILE,
  M_ENGINE,
  M_CAPS,
  M_POOLING,
  M_TEMPLATE,
  M_DETERMINISTIC,
  M_PIN,
  M_PRELOAD,
  M_PRIORITY,
  M_MAX_QUEUE,
  M_REQUEST_KEEP_ALIVE,
  M_MMPROJ,
  M_VAD_MODEL,
  M_TRANSCRIBE_PROMPT,
  M_VOICES,
  M_VOICE_UPLOAD,
  M_EXTERNAL,
  M_OPTS /* then the O_N shared settings */
};
static const char *const model_keys[M_OPTS + O_N] = {
    "name",      "aliases",   "file",          "engine",        "capabilities",
    "pooling",   "chat_template", "deterministic", "pin",      "preload",
    "priority",  "max_queue", "request_keep_alive", "mmproj", "vad_model", "transcribe_prompt", "voices", "voice_upload", "external", "context",       "parallel",      "keep_alive",
    "threads",   "batch",     "gpu_layers"};

static int check_name(loader *l, const yaml_node_t *n, const char *path, const char *name,
                      const matrix_model *self) {
  if (!name_ok(name))
    return at(l, n, "%s: '%s' is not a valid name (1..%d characters, no spaces)", path, name,
              NAME_MAX_LEN);
  const matrix_model *o = taken_by(l->m, name);
  if (o)
    return at(l, n, "%s: '%s' is already used by model '%s' (%s)", path, name, o->name, o->source);
  if (self && self->name && !strcmp(self->name, name))
    return at(l, n, "%s: '%s' is already this model's name", path, name);
  for (size_t i = 0; self && i < self->n_aliases; i++)
    if (!strcmp(self->aliases[i], name)) return at(l, n, "%s: '%s' is listed twice", path, name);
  return 0;
}

/* A whisper.cpp model starts with ggml's file magic 0x67676d6c (little endian). */
static bool whisper_magic_ok(const char *path) {
  unsigned char b[4];
  FILE *f = fopen(path, "rb");
  bool ok = f && fread(b, 1, 4, f) == 4 && b[0] == 0x6c && b[1] == 0x6d && b[2] == 0x67 && b[3] == 0x67;
  if (f) fclose(f);
  return ok;
}

/* vad_model: a Silero VAD model in whisper.cpp's ggml format, relative to the config like file. */
static int engine_vad_model(loader *l, const yaml_node_t *n, const char *path, char **out) {
  char p[128], joined[PATH_MAX], real[PATH_MAX];
  const char *s;
  snprintf(p, sizeof p, "%s.vad_model", path);
  if (want_str(l, n, p, &s)) return -1;
  if (!*s || join_path(joined, sizeof joined, l->dir, s)) return at(l, n, "%s: '%s' is not a usable path", p, s);
  if (!realpath(joined, real)) return at(l, n, "%s: cannot open '%s': %s", p, joined, strerror(errno));
  if (!whisper_magic_ok(real)) return at(l, n, "%s: '%s' is not a whisper.cpp VAD model (ggml magic)", p, joined);
  if (!(*out = strdup(real))) return oom(l);
  return 0;
}

static int signal_parse(const char *s) {
  static const struct {
    const char *name;
    int sig;
  } sigs[] = {{"TERM", SIGTERM}, {"INT", SIGINT}, {"HUP", SIGHUP}, {"QUIT", SIGQUIT},
              {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
  if (strncmp(s, "SIG", 3) == 0) s += 3;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (strcmp(s, sigs[i].name) == 0) return sigs[i].sig;
  return -1;
}

enum { X_ARGV, X_SHELL, X_CWD, X_ENV, X_PORT, X_HEALTH, X_STOP_SIGNAL, X_STOP_GRACE, X_ROUTES, X_UPSTREAM,
       X_MEMORY, X_GPU_MEMORY, X_N };
static const char *const ext_keys[X_N] = {"argv",   "shell",       "cwd",        "env",    "port",
                                          "health", "stop_signal", "stop_grace", "routes", "upstream",
                                          "memory", "gpu_memory"};

/* A string → string/number mapping (env, gpu_memory): keys checked by key_ok, values by want_val. */
static int ext_env(loader *l, const yaml_node_t *n, const char *path, matrix_external *e) {
  if (is_null(n)) return 0;
  if (want_kind(l, n, path, YAML_MAPPING_NODE)) return -1;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = node(l, pr->key), *v = node(l, pr->value);
    const char *ks, *vs;
    char kp[256];
    if (!k || !v) return at(l, n, "%s: malformed mapping", path);
    if (want_str(l, k, path, &ks)) return -1;
    snprintf(kp, sizeof kp, "%s.%.64s", path, ks);
    bool ok = *ks && !isdigit((unsigned char)*ks);
    for (const char *c = ks; *c && ok; c++) ok = isalnum((unsigned char)*c) || *c == '_';
    if (!ok) return at(l, k, "%s: not a valid environment variable name", kp);
    if (e->n_env >= 256) return at(l, k, "%s: too many variables (limit 256)", path);
    if (v->type != YAML_SCALAR_NODE) return want_str(l, v, kp, &vs);
    vs = sval(v);
    if (strlen(vs) != v->data.scalar.length) return at(l, v, "%s: the string contains a NUL byte", kp);
    size_t len = strlen(ks) + strlen(vs) + 2;
    char *kv = malloc(len);
    if (!kv) return oom(l);
    snprintf(kv, len, "%s=%s", ks, vs);
    int rc = strv_push(&e->env, &e->n_env, kv);
    free(kv);
    if (rc) return oom(l);
  }
  return 0;
}

static int ext_gpu_memory(loader *l, const yaml_node_t *n, const char *path, matrix_external *e) {
  if (is_null(n)) return 0;
  if (want_kind(l, n, path, YAML_MAPPING_NODE)) return -1;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = node(l, pr->key), *v = node(l, pr->value);
    const char *ks;
    char kp[256];
    long long b;
    if (!k || !v) return at(l, n, "%s: malformed mapping", path);
    if (want_str(l, k, path, &ks)) return -1;
    snprintf(kp, sizeof kp, "%s.%.64s", path, ks);
    if (!*ks || strlen(ks) >= 32) return at(l, k, "%s: not a device name", kp);
    if (e->n_gpu >= 8) return at(l, k, "%s: too many devices (limit 8)", path);
    if (want_size(l, v, kp, 0, 1LL << 50, &b)) return -1;
    long long *nb = realloc(e->gpu_bytes, (e->n_gpu + 1) * sizeof *nb);
    if (!nb) return oom(l);
    e->gpu_bytes = nb;
    nb[e->n_gpu] = b;
    size_t ng = e->n_gpu;
    if (strv_push(&e->gpu_names, &ng, ks)) return oom(l);
    e->n_gpu = ng;
  }
  return 0;
}

/* The canonical text of an external engine's settings (a reload restarts it when it changes). */
static char *ext_signature(const matrix_external *e) {
  json_t *j = json_object(), *a = json_array(), *env = json_array(), *rt = json_array(), *gpu = json_object();
  for (size_t i = 0; i < e->argc; i++) json_array_append_new(a, json_string(e->argv[i]));
  for (size_t i = 0; i < e->n_env; i++) json_array_append_new(env, json_string(e->env[i]));
  for (size_t i = 0; i < e->n_routes; i++) json_array_append_new(rt, json_string(e->routes[i]));
  for (size_t i = 0; i < e->n_gpu; i++) json_object_set_new(gpu, e->gpu_names[i], json_integer(e->gpu_bytes[i]));
  json_object_set_new(j, "argv", a);
  json_object_set_new(j, "env", env);
  json_object_set_new(j, "routes", rt);
  json_object_set_new(j, "gpu", gpu);
  json_object_set_new(j, "shell", json_boolean(e->shell));
  json_object_set_new(j, "cwd", e->cwd ? json_string(e->cwd) : json_null());
  json_object_set_new(j, "port", json_integer(e->port));
  json_object_set_new(j, "health", json_pack("[s,i,i]", e->health_path, e->health_status, e->startup_timeout_s));
  json_object_set_new(j, "stop", json_pack("[i,i]", e->stop_signal, e->stop_grace_ms));
  json_object_set_new(j, "upstream", json_boolean(e->upstream));
  json_object_set_new(j, "memory", json_integer(e->memory));
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return s;
}

/* The `external:` map of a model into a new matrix_external (*out). */
static int load_external(loader *l, const yaml_node_t *n, const char *mpath, matrix_external **out) {
  char path[96], p[160], g[64];
  const char *s;
  snprintf(path, sizeof path, "%s.external", mpath);
  yaml_node_t *v[X_N];
  if (want_map(l, n, path, ext_keys, X_N, v)) return -1;
  matrix_external *e = calloc(1, sizeof *e);
  if (!e) return oom(l);
  e->health_status = 200;
  e->startup_timeout_s = 120;
  e->stop_signal = SIGTERM;
  e->stop_grace_ms = 10000;
  e->upstream = true;
  if (!v[X_ARGV]) {
    at(l, n, "%s: missing required key 'argv' (the program and its arguments, a list)", path);
    goto fail;
  }
  snprintf(p, sizeof p, "%s.argv", path);
  if (want_str_list(l, v[X_ARGV], p, &e->argv, &e->argc, NULL, NULL)) goto fail;
  if (e->argc == 0 || e->argc > MATRIX_EXT_MAX_ARGS) {
    at(l, v[X_ARGV], "%s: expected 1..%d strings", p, MATRIX_EXT_MAX_ARGS);
    goto fail;
  }
  if (v[X_SHELL]) {
    snprintf(p, sizeof p, "%s.shell", path);
    if (want_bool(l, v[X_SHELL], p, &e->shell)) goto fail;
    if (e->shell && e->argc != 1) {
      at(l, v[X_SHELL], "%s: with shell: true, argv must be one string (the command line for /bin/sh -c)", p);
      goto fail;
    }
  }
  if (v[X_CWD]) {
    char joined[PATH_MAX], real[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s.cwd", path);
    if (want_str(l, v[X_CWD], p, &s)) goto fail;
    if (!*s || join_path(joined, sizeof joined, l->dir, s)) {
      at(l, v[X_CWD], "%s: '%s' is not a usable path", p, s);
      goto fail;
    }
    errno = 0;
    if (!realpath(joined, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
      at(l, v[X_CWD], "%s: '%s' is not a folder: %s", p, joined, errno ? strerror(errno) : "not a folder");
      goto fail;
    }
    if (!(e->cwd = strdup(real))) goto oom;
  }
  if (v[X_ENV]) {
    snprintf(p, sizeof p, "%s.env", path);
    if (ext_env(l, v[X_ENV], p, e)) goto fail;
  }
  if (v[X_PORT] && !is_null(v[X_PORT])) {
    snprintf(p, sizeof p, "%s.port", path);
    if (want_int(l, v[X_PORT], p, 1, 65535, &e->port)) goto fail;
  }
  if (v[X_HEALTH]) {
    static const char *const hk[] = {"path", "status", "timeout"};
    yaml_node_t *hv[3];
    snprintf(p, sizeof p, "%s.health", path);
    if (want_map(l, v[X_HEALTH], p, hk, 3, hv)) goto fail;
    char hp[192];
    if (hv[0]) {
      snprintf(hp, sizeof hp, "%s.path", p);
      if (want_str_dup(l, hv[0], hp, &e->health_path)) goto fail;
      bool ok = e->health_path[0] == '/' && strlen(e->health_path) < 1024;
      for (const char *c = e->health_path; *c && ok; c++) ok = *c > 0x20 && *c < 0x7f;
      if (!ok) {
        at(l, hv[0], "%s: expected a path starting with / (printable, no spaces)", hp);
        goto fail;
      }
    }
    if (hv[1]) {
      snprintf(hp, sizeof hp, "%s.status", p);
      if (want_int(l, hv[1], hp, 100, 599, &e->health_status)) goto fail;
    }
    if (hv[2]) {
      snprintf(hp, sizeof hp, "%s.timeout", p);
      if (want_duration(l, hv[2], hp, &e->startup_timeout_s)) goto fail;
      if (e->startup_timeout_s < 1) {
        at(l, hv[2], "%s: must be at least 1 second", hp);
        goto fail;
      }
    }
  }
  if (!e->health_path && !(e->health_path = strdup("/health"))) goto oom;
  if (v[X_STOP_SIGNAL]) {
    snprintf(p, sizeof p, "%s.stop_signal", path);
    if (want_str(l, v[X_STOP_SIGNAL], p, &s)) goto fail;
    if ((e->stop_signal = signal_parse(s)) < 0) {
      at(l, v[X_STOP_SIGNAL], "%s: unknown signal %s (known: SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2)",
         p, got(v[X_STOP_SIGNAL], g, sizeof g));
      goto fail;
    }
  }
  if (v[X_STOP_GRACE]) {
    int secs;
    snprintf(p, sizeof p, "%s.stop_grace", path);
    if (want_duration(l, v[X_STOP_GRACE], p, &secs)) goto fail;
    if (secs < 0 || secs > 3600) {
      at(l, v[X_STOP_GRACE], "%s: out of range (0..3600 seconds)", p);
      goto fail;
    }
    e->stop_grace_ms = secs * 1000;
  }
  if (v[X_ROUTES]) {
    snprintf(p, sizeof p, "%s.routes", path);
    if (want_str_list(l, v[X_ROUTES], p, &e->routes, &e->n_routes, NULL, NULL)) goto fail;
    yaml_node_item_t *it = v[X_ROUTES]->type == YAML_SEQUENCE_NODE ? v[X_ROUTES]->data.sequence.items.start : NULL;
    for (size_t i = 0; i < e->n_routes; i++) {
      size_t k = 0;
      while (k < sizeof ext_routes / sizeof ext_routes[0] && strcmp(ext_routes[k].path, e->routes[i]) != 0) k++;
      if (k == sizeof ext_routes / sizeof ext_routes[0]) {
        at(l, node(l, it[i]), "%s[%zu]: unknown route '%.200s' (known: /v1/chat/completions, /v1/completions, "
           "/v1/embeddings, /v1/rerank, /v1/images/generations, /v1/images/edits, /v1/audio/speech, "
           "/v1/audio/transcriptions, /v1/audio/translations)", p, i, e->routes[i]);
        goto fail;
      }
    }
  }
  if (v[X_UPSTREAM]) {
    snprintf(p, sizeof p, "%s.upstream", path);
    if (want_bool(l, v[X_UPSTREAM], p, &e->upstream)) goto fail;
  }
  if (v[X_MEMORY] && !is_null(v[X_MEMORY])) {
    snprintf(p, sizeof p, "%s.memory", path);
    if (want_size(l, v[X_MEMORY], p, 0, 1LL << 50, &e->memory)) goto fail;
  }
  if (v[X_GPU_MEMORY]) {
    snprintf(p, sizeof p, "%s.gpu_memory", path);
    if (ext_gpu_memory(l, v[X_GPU_MEMORY], p, e)) goto fail;
  }
  if (!(e->sig = ext_signature(e))) goto oom;
  *out = e;
  return 0;
oom:
  oom(l);
fail:
  ext_free(e);
  return -1;
}

/* A model with engine: external (keys that need a file or a GGUF are refused). */
static int model_external(loader *l, const yaml_node_t *n, yaml_node_t *const *v, const char *path,
                          enum matrix_engine engine, unsigned caps, const opts *given, matrix_model *mm) {
  if (engine != MATRIX_ENGINE_EXTERNAL) return at(l, v[M_EXTERNAL], "%s.external: only for engine: external", path);
  if (!v[M_EXTERNAL]) return at(l, n, "%s: engine: external needs an 'external' map (argv, port, health, routes...)", path);
  static const int no[] = {M_FILE, M_POOLING, M_TEMPLATE, M_MMPROJ, M_VAD_MODEL, M_TRANSCRIBE_PROMPT, M_DETERMINISTIC};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (v[no[i]]) return at(l, v[no[i]], "%s.%s: not for engine: external", path, model_keys[no[i]]);
  if (load_external(l, v[M_EXTERNAL], path, &mm->ext)) return -1;
  gguf_info none = {0};
  if (model_finish(mm, given, &l->defaults, &none, "", 0)) return oom(l);
  mm->engine = MATRIX_ENGINE_EXTERNAL;
  mm->parallel = given->parallel != UNSET ? given->parallel : 1;
  if (!caps)
    for (size_t i = 0; i < mm->ext->n_routes; i++)
      for (size_t k = 0; k < sizeof ext_routes / sizeof ext_routes[0]; k++)
        if (strcmp(ext_routes[k].path, mm->ext->routes[i]) == 0) caps |= ext_routes[k].cap;
  mm->caps = caps;
  return 0;
}

/* voices: {NAME: {audio: PATH, language?, text?}}: reference clips of a speech model whose
 * projector clones voices (docs/TTS.md); language goes to the worker (Qwen3-TTS speaks in it,
 * Pocket-TTS ignores it), text is accepted for pipelines that use it (none yet). */
static int load_voices(loader *l, const yaml_node_t *n, const char *path, matrix_model *mm) {
  static const char *const vkeys[] = {"audio", "language", "text"};
  char p[160];
  snprintf(p, sizeof p, "%s.voices", path);
  if (want_kind(l, n, p, YAML_MAPPING_NODE)) return -1;
  size_t np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (np > MATRIX_MAX_VOICES) return at(l, n, "%s: at most %d voices", p, MATRIX_MAX_VOICES);
  mm->voice_names = calloc(np + 1, sizeof *mm->voice_names);
  mm->voice_audio = calloc(np + 1, sizeof *mm->voice_audio);
  mm->voice_lang = calloc(np + 1, sizeof *mm->voice_lang);
  if (!mm->voice_names || !mm->voice_audio || !mm->voice_lang) return oom(l);
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = node(l, pr->key), *val = node(l, pr->value);
    const char *name, *audio;
    yaml_node_t *vv[3];
    char vp[320], joined[PATH_MAX], real[PATH_MAX];
    struct stat st;
    if (!k || !val || want_str(l, k, p, &name)) return -1;
    if (!name_ok(name)) return at(l, k, "%s: '%s' is not a valid voice name (no spaces)", p, name);
    for (size_t i = 0; i < mm->n_voices; i++)
      if (!strcmp(mm->voice_names[i], name)) return at(l, k, "%s: voice '%s' is listed twice", p, name);
    snprintf(vp, sizeof vp, "%s.%s", p, name);
    if (want_map(l, val, vp, vkeys, 3, vv)) return -1;
    if (!vv[0]) return at(l, val, "%s: missing required key 'audio'", vp);
    const char *lang = NULL;
    for (int i = 1; i < 3; i++) {
      const char *sv;
      if (vv[i] && want_str(l, vv[i], vp, &sv)) return -1;
      if (vv[i] && i == 1) lang = sv;
    }
    if (lang && (!*lang || strlen(lang) > 32 || strspn(lang, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") != strlen(lang)))
      return at(l, vv[1], "%s.language: '%s' is not a language (en, de, english, ...)", vp, lang);
    if (want_str(l, vv[0], vp, &audio)) return -1;
    if (!*audio || join_path(joined, sizeof joined, l->dir, audio))
      return at(l, vv[0], "%s.audio: '%s' is not a usable path", vp, audio);
    errno = 0;
    if (!realpath(joined, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode))
      return at(l, vv[0], "%s.audio: cannot open '%s': %s", vp, joined, errno ? strerror(errno) : "not a file");
    if (!(mm->voice_names[mm->n_voices] = strdup(name)) || !(mm->voice_audio[mm->n_voices] = strdup(real)) ||
        (lang && !(mm->voice_lang[mm->n_voices] = strdup(lang))))
      return oom(l);
    mm->n_voices++;
  }
  return 0;
}

static int load_model(loader *l, const yaml_node_t *n, size_t idx) {
  char path[64], p[128];
  snprintf(path, sizeof path, "models[%zu]", idx);
  yaml_node_t *v[M_OPTS + O_N];
  if (want_map(l, n, path, model_keys, M_OPTS + O_N, v)) return -1;
  matrix_model mm = {0};
  opts given;
  int rc = -1;
  char g[64];
  const char *s;

  if (!v[M_NAME]) {
    at(l, n, "%s: missing required key 'name'", path);
    goto out;
  }
  snprintf(p, sizeof p, "%s.name", path);
  if (want_str(l, v[M_NAME], p, &s) || check_name(l, v[M_NAME], p, s, NULL)) goto out;
  if (!(mm.name = strdup(s))) goto oom;
  if (v[M_ALIASES]) {
    snprintf(p, sizeof p, "%s.aliases", path);
    char **al;
    size_t nal;
    if (want_str_list(l, v[M_ALIASES], p, &al, &nal, NULL, NULL)) goto out;
    /* check each against the namespace, this model's name and the aliases before it */
    yaml_node_item_t *it =
        v[M_ALIASES]->type == YAML_SEQUENCE_NODE ? v[M_ALIASES]->data.sequence.items.start : NULL;
    for (size_t i = 0; i < nal; i++) {
      char ap[160];
      snprintf(ap, sizeof ap, "%s[%zu]", p, i);
      mm.n_aliases = i; /* the aliases before this one */
      mm.aliases = al;
      if (check_name(l, node(l, it[i]), ap, al[i], &mm)) {
        mm.n_aliases = nal;
        goto out;
      }
    }
    mm.aliases = al;
    mm.n_aliases = nal;
  }
  enum matrix_engine engine = MATRIX_ENGINE_LLAMA;
  if (v[M_ENGINE]) {
    snprintf(p, sizeof p, "%s.engine", path);
    if (want_str(l, v[M_ENGINE], p, &s)) goto out;
    int e = 0;
    while (e < MATRIX_N_ENGINES && strcmp(s, engine_names[e]) != 0) e++;
    if (e == MATRIX_N_ENGINES) {
      at(l, v[M_ENGINE], "%s: unknown engine '%s' (known: llama, whisper, espeak, external)", p, s);
      goto out;
    }
    engine = (enum matrix_engine)e;
  }
  if (v[M_POOLING]) {
    snprintf(p, sizeof p, "%s.pooling", path);
    if (want_str(l, v[M_POOLING], p, &s)) goto out;
    if (strcmp(s, "mean") && strcmp(s, "cls") && strcmp(s, "last") && strcmp(s, "none") &&
        strcmp(s, "rank")) {
      at(l, v[M_POOLING], "%s: unknown pooling '%s' (known: mean, cls, last, none, rank)", p, s);
      goto out;
    }
    if (!(mm.pooling = strdup(s))) goto oom;
  }
  if (v[M_TEMPLATE]) {
    snprintf(p, sizeof p, "%s.chat_template", path);
    if (want_str_dup(l, v[M_TEMPLATE], p, &mm.chat_template)) goto out;
  }
  if (v[M_DETERMINISTIC]) {
    snprintf(p, sizeof p, "%s.deterministic", path);
    if (want_bool(l, v[M_DETERMINISTIC], p, &mm.deterministic)) goto out;
  }
  if (v[M_PIN]) {
    snprintf(p, sizeof p, "%s.pin", path);
    if (want_bool(l, v[M_PIN], p, &mm.pin)) goto out;
  }
  if (v[M_PRELOAD]) {
    snprintf(p, sizeof p, "%s.preload", path);
    if (want_bool(l, v[M_PRELOAD], p, &mm.preload)) goto out;
  }
  if (v[M_PRIORITY]) {
    snprintf(p, sizeof p, "%s.priority", path);
    if (want_int(l, v[M_PRIORITY], p, -1000, 1000, &mm.priority)) goto out;
  }
  if (v[M_REQUEST_KEEP_ALIVE]) {
    snprintf(p, sizeof p, "%s.request_keep_alive", path);
    if (want_bool(l, v[M_REQUEST_KEEP_ALIVE], p, &mm.request_keep_alive)) goto out;
  }
  mm.max_queue = 64;
  if (v[M_MAX_QUEUE]) {
    snprintf(p, sizeof p, "%s.max_queue", path);
    if (want_int(l, v[M_MAX_QUEUE], p, 0, 100000, &mm.max_queue)) goto out;
  }
  unsigned caps = 0;
  bool mmproj_speech = false;
  if (v[M_CAPS]) {
    snprintf(p, sizeof p, "%s.capabilities", path);
    if (want_kind(l, v[M_CAPS], p, YAML_SEQUENCE_NODE)) goto out;
    yaml_node_t *seq = v[M_CAPS];
    if (seq->data.sequence.items.start == seq->data.sequence.items.top) {
      at(l, seq, "%s: empty list (leave the key out to take them from the GGUF)", p);
      goto out;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++, i++) {
      yaml_node_t *e = node(l, *it);
      char ip[160];
      snprintf(ip, sizeof ip, "%s[%zu]", p, i);
      if (!e || want_str(l, e, ip, &s)) goto out;
      int c = cap_parse(s);
      if (c < 0) {
        at(l, e, "%s: unknown capability %s (known: chat, completion, embed, rerank, transcribe, speech, vision, audio)", ip,
           got(e, g, sizeof g));
        goto out;
      }
      caps |= (unsigned)c;
    }
  }
  if (read_opts(l, v + M_OPTS, path, &given)) goto out;
  unsigned mmproj_caps = 0; /* what the projector takes: MATRIX_CAP_VISION, MATRIX_CAP_AUDIO */
  if (v[M_MMPROJ] && !is_null(v[M_MMPROJ])) {
    /* the vision projector: a GGUF next to the model, loaded by the worker through mtmd */
    char mj[PATH_MAX], mr[PATH_MAX], merr[256];
    struct stat mst;
    gguf_info mi;
    snprintf(p, sizeof p, "%s.mmproj", path);
    if (want_str(l, v[M_MMPROJ], p, &s)) goto out;
    if (!*s || join_path(mj, sizeof mj, l->dir, s)) {
      at(l, v[M_MMPROJ], "%s: '%s' is not a usable path", p, s);
      goto out;
    }
    errno = 0;
    if (!realpath(mj, mr) || stat(mr, &mst) != 0 || !S_ISREG(mst.st_mode)) {
      at(l, v[M_MMPROJ], "%s: cannot open '%s': %s", p, mj, errno ? strerror(errno) : "not a file");
      goto out;
    }
    if (gguf_read_info(mr, &mi, merr, sizeof merr)) {
      at(l, v[M_MMPROJ], "%s: '%s' is not a readable GGUF: %s", p, mj, merr);
      goto out;
    }
    if (!mi.is_mmproj) {
      at(l, v[M_MMPROJ], "%s: '%s' is not a multimodal projector (no clip.* keys)", p, mj);
      goto out;
    }
    /* clip.has_*_encoder say which; projectors from before audio support have neither key */
    if (mi.has_audio_encoder == 1 && !mi.gen_audio) /* Pocket-TTS has a voice encoder: not audio input */
      mmproj_caps |= MATRIX_CAP_AUDIO;
    if (mi.has_vision_encoder == 1 || (mi.has_vision_encoder < 0 && mi.has_audio_encoder != 1 && !mi.gen_audio))
      mmproj_caps |= MATRIX_CAP_VISION;
    if (!mmproj_caps && !mi.gen_audio) {
      at(l, v[M_MMPROJ], "%s: '%s' has neither a vision nor an audio encoder", p, mj);
      goto out;
    }
    if (!(mm.mmproj = strdup(mr))) goto oom;
    mm.mmproj_bytes = (long long)mst.st_size;
    mmproj_speech = mi.gen_audio;
  }
  if ((caps & MATRIX_CAP_SPEECH) && engine == MATRIX_ENGINE_LLAMA && !mmproj_speech) {
    at(l, v[M_CAPS], "%s.capabilities: speech on engine llama needs an mmproj with an audio generator "
                     "(clip.has_gen_audio_encoder)", path);
    goto out;
  }
  if ((caps & MATRIX_CAP_VISION) && !(mmproj_caps & MATRIX_CAP_VISION)) {
    at(l, v[M_CAPS], "%s.capabilities: vision needs an mmproj%s", path, mm.mmproj ? " with a vision encoder" : "");
    goto out;
  }
  if ((caps & MATRIX_CAP_AUDIO) && !(mmproj_caps & MATRIX_CAP_AUDIO)) {
    at(l, v[M_CAPS], "%s.capabilities: audio needs an mmproj%s", path, mm.mmproj ? " with an audio encoder" : "");
    goto out;
  }
  if (v[M_TRANSCRIBE_PROMPT]) {
    snprintf(p, sizeof p, "%s.transcribe_prompt", path);
    if (!(mmproj_caps & MATRIX_CAP_AUDIO)) {
      at(l, v[M_TRANSCRIBE_PROMPT], "%s: only for a model whose mmproj takes audio", p);
      goto out;
    }
    if (want_str_dup(l, v[M_TRANSCRIBE_PROMPT], p, &mm.transcribe_prompt)) goto out;
  }

  char src[PATH_MAX + 32];
  snprintf(src, sizeof src, "%s:%zu", l->m->path ? l->m->path : l->file, n->start_mark.line + 1);
  if (engine == MATRIX_ENGINE_EXTERNAL || v[M_EXTERNAL]) { /* a third-party server: no file */
    if (model_external(l, n, v, path, engine, caps, &given, &mm)) goto out;
    if (!(mm.source = strdup(src))) goto oom;
    goto push;
  }
  if (engine == MATRIX_ENGINE_ESPEAK && !v[M_FILE]) { /* the built-in voice needs no file */
    gguf_info none = {0};
    if (model_finish(&mm, &given, &l->defaults, &none, "", 0) || !(mm.source = strdup(src))) goto oom;
    mm.engine = engine;
    mm.caps = caps ? caps : MATRIX_CAP_SPEECH;
    goto push;
  }
  if (v[M_VOICES] && !is_null(v[M_VOICES])) {
    if (engine != MATRIX_ENGINE_LLAMA || !mmproj_speech) {
      at(l, v[M_VOICES], "%s.voices: only for engine llama with a speech mmproj (clip.has_gen_audio_encoder)", path);
      goto out;
    }
    if (load_voices(l, v[M_VOICES], path, &mm)) goto out;
  }
  if (v[M_VOICE_UPLOAD]) {
    snprintf(p, sizeof p, "%s.voice_upload", path);
    if (want_bool(l, v[M_VOICE_UPLOAD], p, &mm.voice_upload)) goto out;
    if (mm.voice_upload && (engine != MATRIX_ENGINE_LLAMA || !mmproj_speech)) {
      at(l, v[M_VOICE_UPLOAD], "%s: only for engine llama with a speech mmproj (clip.has_gen_audio_encoder)", p);
      goto out;
    }
  }
  if (v[M_VAD_MODEL] && engine != MATRIX_ENGINE_WHISPER) {
    at(l, v[M_VAD_MODEL], "%s.vad_model: only for engine: whisper", path);
    goto out;
  }
  /* the file last: its errors are the costliest to find */
  if (!v[M_FILE]) {
    at(l, n, "%s: missing required key 'file'", path);
    goto out;
  }
  snprintf(p, sizeof p, "%s.file", path);
  if (want_str(l, v[M_FILE], p, &s)) goto out;
  char joined[PATH_MAX], real[PATH_MAX], gerr[256];
  if (!*s || join_path(joined, sizeof joined, l->dir, s)) {
    at(l, v[M_FILE], "%s: '%s' is not a usable path", p, s);
    goto out;
  }
  struct stat st;
  if (!realpath(joined, real) || stat(real, &st) != 0) {
    at(l, v[M_FILE], "%s: cannot open '%s': %s", p, joined, strerror(errno));
    goto out;
  }
  if (engine != MATRIX_ENGINE_LLAMA) { /* whisper.cpp's ggml files (and espeak's data): not GGUF */
    if (engine == MATRIX_ENGINE_WHISPER && !whisper_magic_ok(real)) {
      at(l, v[M_FILE], "%s: '%s' is not a whisper.cpp model (ggml magic)", p, joined);
      goto out;
    }
    if (v[M_VAD_MODEL] && engine_vad_model(l, v[M_VAD_MODEL], path, &mm.vad_model)) goto out;
    gguf_info none = {0};
    if (model_finish(&mm, &given, &l->defaults, &none, real, (long long)st.st_size) || !(mm.source = strdup(src)))
      goto oom;
    mm.engine = engine;
    mm.caps = caps ? caps : engine == MATRIX_ENGINE_WHISPER ? MATRIX_CAP_TRANSCRIBE : MATRIX_CAP_SPEECH;
    goto push;
  }
  gguf_info gi;
  if (gguf_read_info(real, &gi, gerr, sizeof gerr)) {
    at(l, v[M_FILE], "%s: '%s' is not a readable GGUF: %s", p, joined, gerr);
    goto out;
  }
  if (gi.is_mmproj || gi.is_adapter) {
    at(l, v[M_FILE], "%s: '%s' is %s, not a model", p, joined,
       gi.is_mmproj ? "a multimodal projector (mmproj)" : "an adapter");
    goto out;
  }
  if (gi.n_tensors == 0) {
    at(l, v[M_FILE], "%s: '%s' has no tensors (a vocabulary-only GGUF?)", p, joined);
    goto out;
  }
  if (model_finish(&mm, &given, &l->defaults, &gi, real, (long long)st.st_size) ||
      !(mm.source = strdup(src)))
    goto oom;
  mm.caps = caps ? caps : caps_default(&gi, mm.pooling, mm.chat_template);
  /* a speech projector (docs/TTS.md) makes a text-to-speech model: its backbone's text is noise */
  if (mmproj_speech && !caps) mm.caps = MATRIX_CAP_SPEECH;
  /* a speech worker speaks one request at a time (a FIFO behind it): more sequences only cost KV */
  if (mmproj_speech && given.parallel == UNSET) mm.parallel = 1;
  mm.caps |= mmproj_caps;
  /* an audio LLM also answers /v1/audio/transcriptions (a chat with the audio and an instruction) */
  if ((mmproj_caps & MATRIX_CAP_AUDIO) && (mm.caps & MATRIX_CAP_CHAT) && !caps) mm.caps |= MATRIX_CAP_TRANSCRIBE;
push:
  if (push_model(l->m, &mm)) {
    at(l, n, "%s: too many models (limit %d)", path, MATRIX_MAX_MODELS);
    goto out;
  }
  rc = 0;
  goto out;
oom:
  oom(l);
out:
  model_clear(&mm);
  return rc;
}

/* ---- discovery ------------------------------------------------------------------------------- */

static int cmp_model_name(const void *a, const void *b) {
  return strcmp(((const matrix_model *)a)->name, ((const matrix_model *)b)->name);
}

/* The model name for a file name in the models folder, into name; false to skip the file.
 * "x.gguf" → "x"; split models "x-00001-of-00003.gguf" → "x", later parts skipped. */
static bool discover_name(const char *fname, char *name, size_t cap) {
  size_t n = strlen(fname);
  if (fname[0] == '.' || n <= 5 || strcmp(fname + n - 5, ".gguf") != 0) return false;
  if (!strncasecmp(fname, "mmproj", 6)) return false;
  n -= 5;
  /* "-NNNNN-of-NNNNN" */
  static const char pat[] = "-99999-of-99999";
  size_t k = sizeof pat - 1;
  if (n > k) {
    const char *t = fname + n - k;
    bool split = true;
    for (size_t i = 0; i < k && split; i++)
      split = pat[i] == '9' ? isdigit((unsigned char)t[i]) != 0 : t[i] == pat[i];
    if (split) {
      if (strncmp(t, "-00001-", 7) != 0) return false;
      n -= k;
    }
  }
  if (n >= cap) return false;
  memcpy(name, fname, n);
  name[n] = '\0';
  return true;
}

static int discover(matrix *m, const opts *dflt, char *err, size_t errlen) {
  DIR *d = opendir(m->models_dir);
  if (!d) {
    set_err(err, errlen, "models dir '%s': %s", m->models_dir, strerror(errno));
    return -1;
  }
  matrix_model *found = NULL;
  size_t n_found = 0, n_configured = m->n_models;
  int rc = -1;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char name[NAME_MAX_LEN + 1], path[PATH_MAX], real[PATH_MAX], gerr[256];
    if (!discover_name(de->d_name, name, sizeof name)) {
      size_t dl = strlen(de->d_name);
      if (dl > 5 && !strcmp(de->d_name + dl - 5, ".gguf") && de->d_name[0] != '.' &&
          strncasecmp(de->d_name, "mmproj", 6) != 0 && strstr(de->d_name, "-of-") == NULL)
        add_warning(m, "skipping %s/%s: the name is too long for a model name", m->models_dir,
                    de->d_name);
      continue;
    }
    if (join_path(path, sizeof path, m->models_dir, de->d_name) || !realpath(path, real)) continue;
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    bool named = false;
    for (size_t i = 0; i < n_configured && !named; i++) named = !strcmp(m->models[i].file, real);
    if (named) continue;
    gguf_info gi;
    if (gguf_read_info(real, &gi, gerr, sizeof gerr)) {
      add_warning(m, "skipping %s: not a readable GGUF: %s", path, gerr);
      continue;
    }
    if (gi.is_mmproj || gi.is_adapter) {
      LOG_D("models dir: %s is %s, not a model", path, gi.is_mmproj ? "an mmproj" : "an adapter");
      continue;
    }
    if (gi.n_tensors == 0) {
      add_warning(m, "skipping %s: it has no tensors (a vocabulary-only GGUF?)", path);
      continue;
    }
    if (!name_ok(name)) {
      add_warning(m, "skipping %s: '%s' is not a valid model name (no spaces)", path, name);
      continue;
    }
    const matrix_model *o = matrix_find(m, name);
    if (o) {
      add_warning(m, "skipping %s: the name '%s' is taken by model '%s' (%s)", path, name, o->name,
                  o->source);
      continue;
    }
    if (n_configured + n_found >= MATRIX_MAX_MODELS) {
      add_warning(m, "models dir %s: more than %d models, the rest are skipped", m->models_dir,
                  MATRIX_MAX_MODELS);
      break;
    }
    matrix_model *nf = realloc(found, (n_found + 1) * sizeof *nf);
    if (!nf) goto oom;
    found = nf;
    matrix_model *mm = &found[n_found];
    memset(mm, 0, sizeof *mm);
    n_found++;
    static const opts none = {UNSET, UNSET, UNSET, UNSET, UNSET, UNSET};
    if (!(mm->name = strdup(name)) || !(mm->source = strdup(real)) ||
        model_finish(mm, &none, dflt, &gi, real, (long long)st.st_size))
      goto oom;
    mm->discovered = true;
    mm->max_queue = 64;
    mm->caps = caps_default(&gi, NULL, NULL);
  }
  if (n_found) qsort(found, n_found, sizeof *found, cmp_model_name);
  for (size_t i = 0; i < n_found; i++)
    if (push_model(m, &found[i])) goto oom;
  rc = 0;
  goto out;
oom:
  set_err(err, errlen, "models dir '%s': out of memory", m->models_dir);
out:
  for (size_t i = 0; i < n_found; i++) model_clear(&found[i]);
  free(found);
  closedir(d);
  return rc;
}

/* ---- the config file ------------------------------------------------------------------------- */

enum {
  K_LISTEN,
  K_API_KEYS,
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
  K_N
};
static const char *const top_keys[K_N] = {"listen", "api_keys", "models_dir", "log_level", "limits",
                                          "defaults", "models", "memory", "scheduling", "builtin_voice",
                                          "pipelines", "routers"};

/* ---- routers ----------------------------------------------------------------------------------
 * A router is a virtual model (docs/CONFIG.md "routers"): its routes name real models, its rules
 * and classifier pick one per request (router.c). Parsed after the models, so a router's name is
 * checked against theirs here; the routes' models are checked after discovery (router_check),
 * when every model is known, with the position kept in each route's source. */

static void router_clear(matrix_router *rt) {
  free(rt->name);
  free(rt->source);
  for (size_t i = 0; i < rt->n_routes; i++) {
    free(rt->routes[i].name);
    free(rt->routes[i].model);
    free(rt->routes[i].source);
  }
  free(rt->routes);
  for (size_t i = 0; i < rt->n_rules; i++) free(rt->rules[i].system_tag);
  free(rt->rules);
  free(rt->cls_model);
  free(rt->cls_prompt);
  free(rt->cls_routes);
  free(rt->fallback);
  memset(rt, 0, sizeof *rt);
}

static bool route_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MATRIX_ROUTE_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return false;
  return true;
}

/* The index of route `name` in rt, or -1 (with an error at n naming path). */
static long route_ref(loader *l, const yaml_node_t *n, const char *path, const matrix_router *rt) {
  const char *s;
  if (want_str(l, n, path, &s)) return -1;
  for (size_t i = 0; i < rt->n_routes; i++)
    if (!strcmp(rt->routes[i].name, s)) return (long)i;
  return at(l, n, "%s: '%.64s' is not one of router '%s''s routes", path, s, rt->name);
}

/* A list of route names into a fresh index vector (each at most once). */
static int route_list(loader *l, const yaml_node_t *n, const char *path, const matrix_router *rt, size_t **out,
                      size_t *nout) {
  if (want_kind(l, n, path, YAML_SEQUENCE_NODE)) return -1;
  size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cap == 0) return at(l, n, "%s: must name at least one route", path);
  if (cap > MATRIX_MAX_ROUTES) return at(l, n, "%s: at most %d routes", path, MATRIX_MAX_ROUTES);
  if (!(*out = calloc(cap, sizeof **out))) return oom(l);
  *nout = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *e = node(l, *it);
    char ip[160];
    snprintf(ip, sizeof ip, "%s[%zu]", path, *nout);
    long r = e ? route_ref(l, e, ip, rt) : at(l, n, "%s: malformed list", path);
    if (r < 0) return -1;
    for (size_t k = 0; k < *nout; k++)
      if ((*out)[k] == (size_t)r) return at(l, e, "%s: route '%s' is listed twice", ip, rt->routes[r].name);
    (*out)[(*nout)++] = (size_t)r;
  }
  return 0;
}

static int router_routes(loader *l, const yaml_node_t *n, const char *path, matrix_router *rt) {
  if (want_kind(l, n, path, YAML_MAPPING_NODE)) return -1;
  size_t np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (np == 0) return at(l, n, "%s: a router needs at least one route", path);
  if (np > MATRIX_MAX_ROUTES) return at(l, n, "%s: at most %d routes", path, MATRIX_MAX_ROUTES);
  if (!(rt->routes = calloc(np, sizeof *rt->routes))) return oom(l);
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
    char g[64], rp[160], src[PATH_MAX + 48];
    if (!k || !v) return at(l, n, "%s: malformed mapping", path);
    if (k->type != YAML_SCALAR_NODE || !route_name_ok(sval(k)))
      return at(l, k ? k : n, "%s: route names are 1..%d letters, digits, '_' or '-', got %s", path,
                MATRIX_ROUTE_NAME_MAX, got(k, g, sizeof g));
    for (size_t i = 0; i < rt->n_routes; i++)
      if (!strcmp(rt->routes[i].name, sval(k))) return at(l, k, "%s.%s: duplicate key", path, sval(k));
    snprintf(rp, sizeof rp, "%s.%s", path, sval(k));
    matrix_route *r = &rt->routes[rt->n_routes];
    snprintf(src, sizeof src, "%s:%zu:%zu", l->file, v->start_mark.line + 1, v->start_mark.column + 1);
    if (!(r->name = strdup(sval(k))) || !(r->source = strdup(src))) return oom(l);
    rt->n_routes++; /* owned from here: router_clear frees it */
    if (want_str_dup(l, v, rp, &r->model)) return -1;
  }
  return 0;
}

enum { RU_IMAGES, RU_AUDIO, RU_TOOLS, RU_MIN_TOKENS, RU_SYSTEM_TAG, RU_ROUTE, RU_N };
static const char *const rule_keys[RU_N] = {"images", "audio", "tools", "min_prompt_tokens", "system_tag", "route"};

static int router_rules(loader *l, const yaml_node_t *n, const char *path, matrix_router *rt) {
  if (is_null(n)) return 0;
  if (want_kind(l, n, path, YAML_SEQUENCE_NODE)) return -1;
  size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cap > MATRIX_MAX_RULES) return at(l, n, "%s: at most %d rules", path, MATRIX_MAX_RULES);
  if (cap && !(rt->rules = calloc(cap, sizeof *rt->rules))) return oom(l);
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *e = node(l, *it), *v[RU_N];
    char rp[128], kp[160];
    snprintf(rp, sizeof rp, "%s[%zu]", path, rt->n_rules);
    if (!e) return at(l, n, "%s: malformed list", path);
    if (want_map(l, e, rp, rule_keys, RU_N, v)) return -1;
    matrix_rule *ru = &rt->rules[rt->n_rules++];
    if (!v[RU_ROUTE]) return at(l, e, "%s: 'route' is required", rp);
    snprintf(kp, sizeof kp, "%s.route", rp);
    long r = route_ref(l, v[RU_ROUTE], kp, rt);
    if (r < 0) return -1;
    ru->route = (size_t)r;
    bool *flags[3] = {&ru->images, &ru->audio, &ru->tools};
    for (int i = 0; i < 3; i++) {
      snprintf(kp, sizeof kp, "%s.%s", rp, rule_keys[i]);
      if (v[i] && want_bool(l, v[i], kp, flags[i])) return -1;
    }
    snprintf(kp, sizeof kp, "%s.min_prompt_tokens", rp);
    if (v[RU_MIN_TOKENS] && want_ll(l, v[RU_MIN_TOKENS], kp, 1, 1LL << 30, &ru->min_prompt_tokens)) return -1;
    snprintf(kp, sizeof kp, "%s.system_tag", rp);
    if (v[RU_SYSTEM_TAG]) {
      if (want_str_dup(l, v[RU_SYSTEM_TAG], kp, &ru->system_tag)) return -1;
      if (strlen(ru->system_tag) > 256) return at(l, v[RU_SYSTEM_TAG], "%s: at most 256 bytes", kp);
    }
  }
  return 0;
}

enum { CL_MODEL, CL_PROMPT, CL_ROUTES, CL_TIMEOUT, CL_MAX_TOKENS, CL_MAX_INPUT, CL_N };
static const char *const cls_keys[CL_N] = {"model", "prompt", "routes", "timeout_ms", "max_tokens",
                                           "max_input_chars"};

static int router_classifier(loader *l, const yaml_node_t *n, const char *path, matrix_router *rt) {
  yaml_node_t *v[CL_N];
  char kp[128];
  if (want_map(l, n, path, cls_keys, CL_N, v)) return -1;
  rt->has_classifier = true;
  rt->cls_timeout_ms = 2000;
  rt->cls_max_tokens = 16;
  rt->cls_max_input_chars = 2000;
  if (!v[CL_MODEL]) return at(l, n, "%s: 'model' is required (the light chat model that classifies)", path);
  snprintf(kp, sizeof kp, "%s.model", path);
  if (want_str_dup(l, v[CL_MODEL], kp, &rt->cls_model)) return -1;
  snprintf(kp, sizeof kp, "%s.prompt", path);
  if (v[CL_PROMPT]) {
    if (want_str_dup(l, v[CL_PROMPT], kp, &rt->cls_prompt)) return -1;
    if (strlen(rt->cls_prompt) > 16384) return at(l, v[CL_PROMPT], "%s: at most 16384 bytes", kp);
  }
  snprintf(kp, sizeof kp, "%s.routes", path);
  if (v[CL_ROUTES]) {
    if (route_list(l, v[CL_ROUTES], kp, rt, &rt->cls_routes, &rt->n_cls_routes)) return -1;
  } else {
    if (!(rt->cls_routes = calloc(rt->n_routes, sizeof *rt->cls_routes))) return oom(l);
    for (size_t i = 0; i < rt->n_routes; i++) rt->cls_routes[i] = i;
    rt->n_cls_routes = rt->n_routes;
  }
  snprintf(kp, sizeof kp, "%s.timeout_ms", path);
  if (v[CL_TIMEOUT] && want_int(l, v[CL_TIMEOUT], kp, 1, 600000, &rt->cls_timeout_ms)) return -1;
  snprintf(kp, sizeof kp, "%s.max_tokens", path);
  if (v[CL_MAX_TOKENS] && want_int(l, v[CL_MAX_TOKENS], kp, 1, 256, &rt->cls_max_tokens)) return -1;
  snprintf(kp, sizeof kp, "%s.max_input_chars", path);
  if (v[CL_MAX_INPUT] && want_int(l, v[CL_MAX_INPUT], kp, 16, 1 << 20, &rt->cls_max_input_chars)) return -1;
  return 0;
}

enum { RT_NAME, RT_ROUTES, RT_RULES, RT_CLASSIFIER, RT_DEFAULT, RT_FALLBACK, RT_N };
static const char *const router_keys[RT_N] = {"name", "routes", "rules", "classifier", "default", "fallback"};

static int load_router(loader *l, const yaml_node_t *n, size_t idx, matrix_router *rt) {
  char path[48], kp[96];
  snprintf(path, sizeof path, "routers[%zu]", idx);
  yaml_node_t *v[RT_N];
  if (want_map(l, n, path, router_keys, RT_N, v)) return -1;
  if (!v[RT_NAME]) return at(l, n, "%s: 'name' is required", path);
  snprintf(kp, sizeof kp, "%s.name", path);
  if (want_str_dup(l, v[RT_NAME], kp, &rt->name)) return -1;
  if (!name_ok(rt->name))
    return at(l, v[RT_NAME], "%s: '%s' is not a valid name (1..%d characters, no spaces)", kp, rt->name,
              NAME_MAX_LEN);
  const matrix_model *o = taken_by(l->m, rt->name);
  if (o) return at(l, v[RT_NAME], "%s: '%s' is already used by model '%s' (%s)", kp, rt->name, o->name, o->source);
  for (size_t i = 0; i < idx; i++) /* the routers before this one */
    if (!strcmp(l->m->routers[i].name, rt->name))
      return at(l, v[RT_NAME], "%s: router '%s' is defined twice", kp, rt->name);
  const matrix_pipeline *pl = matrix_find_pipeline(l->m, rt->name); /* pipelines are read first */
  if (pl) return at(l, v[RT_NAME], "%s: '%s' is already used by pipeline '%s' (%s)", kp, rt->name, pl->name, pl->source);
  char src[PATH_MAX + 32];
  snprintf(src, sizeof src, "%s:%zu", l->file, n->start_mark.line + 1);
  if (!(rt->source = strdup(src))) return oom(l);
  if (!v[RT_ROUTES]) return at(l, n, "%s: 'routes' is required", path);
  snprintf(kp, sizeof kp, "%s.routes", path);
  if (router_routes(l, v[RT_ROUTES], kp, rt)) return -1;
  snprintf(kp, sizeof kp, "%s.rules", path);
  if (v[RT_RULES] && router_rules(l, v[RT_RULES], kp, rt)) return -1;
  snprintf(kp, sizeof kp, "%s.classifier", path);
  if (v[RT_CLASSIFIER] && !is_null(v[RT_CLASSIFIER]) && router_classifier(l, v[RT_CLASSIFIER], kp, rt)) return -1;
  if (!v[RT_DEFAULT]) {
    if (rt->n_routes > 1)
      return at(l, n, "%s: 'default' is required (the route taken when no rule matches and the classifier cannot "
                "answer)", path);
    rt->default_route = 0;
  } else {
    snprintf(kp, sizeof kp, "%s.default", path);
    long r = route_ref(l, v[RT_DEFAULT], kp, rt);
    if (r < 0) return -1;
    rt->default_route = (size_t)r;
  }
  if (v[RT_FALLBACK] && !is_null(v[RT_FALLBACK])) {
    snprintf(kp, sizeof kp, "%s.fallback", path);
    if (v[RT_FALLBACK]->type == YAML_SEQUENCE_NODE) {
      if (route_list(l, v[RT_FALLBACK], kp, rt, &rt->fallback, &rt->n_fallback)) return -1;
    } else {
      bool on;
      if (want_bool(l, v[RT_FALLBACK], kp, &on)) return -1;
      if (on) {
        if (!(rt->fallback = calloc(rt->n_routes, sizeof *rt->fallback))) return oom(l);
        for (size_t i = 0; i < rt->n_routes; i++) rt->fallback[i] = i;
        rt->n_fallback = rt->n_routes;
      }
    }
  }
  return 0;
}

static int load_routers(loader *l, const yaml_node_t *n) {
  matrix *m = l->m;
  if (want_kind(l, n, "routers", YAML_SEQUENCE_NODE)) return -1;
  size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (cap > MATRIX_MAX_ROUTERS) return at(l, n, "routers: at most %d routers", MATRIX_MAX_ROUTERS);
  if (cap && !(m->routers = calloc(cap, sizeof *m->routers))) return oom(l);
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *e = node(l, *it);
    if (!e) return at(l, n, "routers: malformed list");
    /* counted first, so matrix_free frees a half-read router */
    size_t k = m->n_routers++;
    if (load_router(l, e, k, &m->routers[k])) return -1;
  }
  return 0;
}

/* After discovery: every route names a model that serves chat or completions, rules on images or
 * audio lead to models that take them, the classifier is a chat model. */
static int router_check(matrix *m, char *err, size_t errlen) {
  char caps[128];
  for (size_t i = 0; i < m->n_routers; i++) {
    const matrix_router *rt = &m->routers[i];
    for (size_t k = 0; k < rt->n_routes; k++) {
      const matrix_route *r = &rt->routes[k];
      const matrix_model *mm = matrix_find(m, r->model);
      if (!mm) {
        set_err(err, errlen, "%s: router '%s', route '%s': there is no model '%s'", r->source, rt->name, r->name,
                r->model);
        return -1;
      }
      if (!(mm->caps & (MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION))) {
        set_err(err, errlen, "%s: router '%s', route '%s': model '%s' serves neither chat nor completions (%s)",
                r->source, rt->name, r->name, mm->name, matrix_caps_str(mm->caps, caps, sizeof caps));
        return -1;
      }
    }
    for (size_t k = 0; k < rt->n_rules; k++) {
      const matrix_rule *ru = &rt->rules[k];
      const matrix_route *r = &rt->routes[ru->route];
      const matrix_model *mm = matrix_find(m, r->model);
      unsigned need = (ru->images ? MATRIX_CAP_VISION : 0) | (ru->audio ? MATRIX_CAP_AUDIO : 0);
      if ((mm->caps & need) != need) {
        set_err(err, errlen, "%s: router '%s', rules[%zu]: route '%s' leads to model '%s', which does not take %s",
                rt->source, rt->name, k, r->name, mm->name,
                (need & ~mm->caps & MATRIX_CAP_VISION) ? "images (no vision capability)"
                                                       : "audio (no audio capability)");
        return -1;
      }
    }
    if (rt->has_classifier) {
      const matrix_model *mm = matrix_find(m, rt->cls_model);
      if (!mm || !(mm->caps & MATRIX_CAP_CHAT)) {
        set_err(err, errlen, "%s: router '%s': classifier.model '%s' %s", rt->source, rt->name, rt->cls_model,
                mm ? "is not a chat model" : "does not exist");
        return -1;
      }
    }
    const matrix_model *clash = matrix_find(m, rt->name);
    if (clash) /* only a discovered file can get here: configured names were checked while parsing */
      add_warning(m, "router '%s' hides the discovered model '%s' (%s)", rt->name, clash->name, clash->source);
  }
  return 0;
}

const matrix_router *matrix_find_router(const matrix *m, const char *name) {
  if (!m || !name) return NULL;
  for (size_t i = 0; i < m->n_routers; i++)
    if (!strcmp(m->routers[i].name, name)) return &m->routers[i];
  return NULL;
}

/* memory.devices: {NAME: size, ...}, at most 8 names of the engine's GPU devices. */
static int read_gpu_budgets(loader *l, const yaml_node_t *n, matrix *m) {
  if (want_kind(l, n, "memory.devices", YAML_MAPPING_NODE)) return -1;
  size_t np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (np > 8) return at(l, n, "memory.devices: at most 8 devices");
  m->gpu_names = calloc(np + 1, sizeof *m->gpu_names);
  m->gpu_budgets = calloc(np + 1, sizeof *m->gpu_budgets);
  if (!m->gpu_names || !m->gpu_budgets) return at(l, n, "out of memory");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
    char g[64], path[96];
    if (!k || !v) return at(l, n, "memory.devices: malformed mapping");
    if (k->type != YAML_SCALAR_NODE || !*sval(k) || strlen(sval(k)) > 63)
      return at(l, k, "memory.devices: keys must be device names like CUDA0, got %s", got(k, g, sizeof g));
    for (size_t i = 0; i < m->n_gpu_budgets; i++)
      if (strcmp(m->gpu_names[i], sval(k)) == 0) return at(l, k, "memory.devices.%s: duplicate key", sval(k));
    snprintf(path, sizeof path, "memory.devices.%s", sval(k));
    long long b;
    if (want_size(l, v, path, 1LL << 20, 1LL << 50, &b)) return -1;
    if (!(m->gpu_names[m->n_gpu_budgets] = strdup(sval(k)))) return at(l, n, "out of memory");
    m->gpu_budgets[m->n_gpu_budgets++] = b;
  }
  return 0;
}

static int load_pipelines(loader *l, const yaml_node_t *n);

static int load_root(loader *l, const yaml_node_t *root) {
  matrix *m = l->m;
  char g[64];
  if (root->type != YAML_MAPPING_NODE)
    return at(l, root, "the config must be a mapping of keys to values, got %s",
              got(root, g, sizeof g));
  yaml_node_t *v[K_N];
  if (want_map(l, root, "", top_keys, K_N, v)) return -1;

  if (v[K_LISTEN] && !is_null(v[K_LISTEN])) {
    static const char *const keys[] = {"host", "port"};
    yaml_node_t *lv[2];
    if (want_map(l, v[K_LISTEN], "listen", keys, 2, lv)) return -1;
    if (lv[0] && want_str_dup(l, lv[0], "listen.host", &m->host)) return -1;
    if (lv[1] && want_int(l, lv[1], "listen.port", 0, 65535, &m->port)) return -1;
  }
  if (v[K_API_KEYS]) {
    if (want_str_list(l, v[K_API_KEYS], "api_keys", &m->api_keys, &m->n_api_keys, NULL, NULL))
      return -1;
  }
  if (v[K_LOG_LEVEL]) {
    const char *s;
    if (want_str(l, v[K_LOG_LEVEL], "log_level", &s)) return -1;
    int lv = sy_log_parse_level(s);
    if (lv < 0)
      return at(l, v[K_LOG_LEVEL],
                "log_level: unknown level '%s' (known: error, warn, info, debug)", s);
    m->log_level = lv;
  }
  if (v[K_LIMITS] && !is_null(v[K_LIMITS])) {
    static const char *const keys[] = {"max_body_bytes", "max_connections", "image_dir",
                                       "max_image_bytes", "max_image_pixels", "max_upload_bytes"};
    yaml_node_t *lv[6];
    long long b;
    if (want_map(l, v[K_LIMITS], "limits", keys, 6, lv)) return -1;
    if (lv[5]) {
      if (want_ll(l, lv[5], "limits.max_upload_bytes", 1024, 1ll << 32, &b)) return -1;
      m->max_upload_bytes = (size_t)b;
    }
    if (lv[2] && !is_null(lv[2])) {
      const char *s;
      char joined[PATH_MAX], real[PATH_MAX];
      struct stat st;
      if (want_str(l, lv[2], "limits.image_dir", &s)) return -1;
      if (!*s || join_path(joined, sizeof joined, l->dir, s))
        return at(l, lv[2], "limits.image_dir: '%s' is not a usable path", s);
      if (!realpath(joined, real) || stat(real, &st) != 0)
        return at(l, lv[2], "limits.image_dir: cannot open '%s': %s", joined, strerror(errno));
      if (!S_ISDIR(st.st_mode))
        return at(l, lv[2], "limits.image_dir: '%s' is not a directory", joined);
      if (dup_to(&m->image_dir, real)) return oom(l);
    }
    if (lv[3] && want_ll(l, lv[3], "limits.max_image_bytes", 1024, 1ll << 30, &m->max_image_bytes))
      return -1;
    if (lv[4] && want_ll(l, lv[4], "limits.max_image_pixels", 1, 1ll << 28, &m->max_image_pixels))
      return -1;
    if (lv[0]) {
      if (want_ll(l, lv[0], "limits.max_body_bytes", 1024, 1ll << 30, &b)) return -1;
      m->max_body_bytes = (size_t)b;
    }
    if (lv[1] && want_int(l, lv[1], "limits.max_connections", 1, 65536, &m->max_connections))
      return -1;
  }
  if (v[K_MEMORY] && !is_null(v[K_MEMORY])) {
    static const char *const keys[] = {"budget", "reserve", "gpu_reserve", "gpu_overhead", "devices"};
    yaml_node_t *mv[5];
    if (want_map(l, v[K_MEMORY], "memory", keys, 5, mv)) return -1;
    if (mv[0] && want_size(l, mv[0], "memory.budget", 1LL << 20, 1LL << 50, &m->mem_budget))
      return -1;
    if (mv[1] && want_size(l, mv[1], "memory.reserve", 0, 1LL << 50, &m->mem_reserve)) return -1;
    if (mv[2] && want_size(l, mv[2], "memory.gpu_reserve", 0, 1LL << 50, &m->gpu_reserve)) return -1;
    if (mv[3] && want_size(l, mv[3], "memory.gpu_overhead", 0, 1LL << 40, &m->gpu_overhead)) return -1;
    if (mv[4] && !is_null(mv[4]) && read_gpu_budgets(l, mv[4], m)) return -1;
  }
  if (v[K_SCHEDULING] && !is_null(v[K_SCHEDULING])) {
    static const char *const keys[] = {"swap_guard", "max_loads"};
    yaml_node_t *sv[2];
    if (want_map(l, v[K_SCHEDULING], "scheduling", keys, 2, sv)) return -1;
    if (sv[1] && want_int(l, sv[1], "scheduling.max_loads", 1, 64, &m->max_loads)) return -1;
    if (sv[0]) {
      if (want_duration(l, sv[0], "scheduling.swap_guard", &m->swap_guard_s)) return -1;
      if (m->swap_guard_s < 0 || m->swap_guard_s > 3600)
        return at(l, sv[0], "scheduling.swap_guard: %s is out of range (0..1h)", sval(sv[0]));
    }
  }
  if (v[K_BUILTIN_VOICE] && want_bool(l, v[K_BUILTIN_VOICE], "builtin_voice", &m->builtin_voice)) return -1;
  if (v[K_DEFAULTS] && !is_null(v[K_DEFAULTS])) {
    yaml_node_t *dv[O_N];
    if (want_map(l, v[K_DEFAULTS], "defaults", opt_keys, O_N, dv) ||
        read_opts(l, dv, "defaults", &l->defaults))
      return -1;
  }
  if (v[K_MODELS_DIR] && !is_null(v[K_MODELS_DIR])) {
    const char *s;
    char joined[PATH_MAX], real[PATH_MAX];
    struct stat st;
    if (want_str(l, v[K_MODELS_DIR], "models_dir", &s)) return -1;
    if (!*s || join_path(joined, sizeof joined, l->dir, s))
      return at(l, v[K_MODELS_DIR], "models_dir: '%s' is not a usable path", s);
    if (!realpath(joined, real) || stat(real, &st) != 0)
      return at(l, v[K_MODELS_DIR], "models_dir: cannot open '%s': %s", joined, strerror(errno));
    if (!S_ISDIR(st.st_mode))
      return at(l, v[K_MODELS_DIR], "models_dir: '%s' is not a directory", joined);
    if (dup_to(&m->models_dir, real)) return oom(l);
  }
  if (v[K_MODELS] && !is_null(v[K_MODELS])) {
    if (want_kind(l, v[K_MODELS], "models", YAML_SEQUENCE_NODE)) return -1;
    size_t i = 0;
    for (yaml_node_item_t *it = v[K_MODELS]->data.sequence.items.start;
         it < v[K_MODELS]->data.sequence.items.top; it++, i++) {
      yaml_node_t *e = node(l, *it);
      if (!e || load_model(l, e, i)) return -1;
    }
  }
  if (v[K_PIPELINES] && load_pipelines(l, v[K_PIPELINES])) return -1; /* after the models: steps name them */
  if (v[K_ROUTERS] && !is_null(v[K_ROUTERS]) && load_routers(l, v[K_ROUTERS])) return -1; /* after the models */
  return 0;
}


/* ---- pipelines (virtual models whose steps are other models) --------------------------------
 * Parsed after the models; their step names are checked in pipelines_check, after discovery,
 * since a step may name a discovered model or the built-in voice. */

enum { P_NAME, P_KIND, P_ASR, P_LLM, P_TTS, P_VOICE, P_INSTRUCTION, P_MAX_TOKENS, P_TEMPERATURE,
       P_SENTENCE_CHARS, P_N };
static const char *const pipe_keys[P_N] = {"name",  "kind",        "asr",        "llm",
                                           "tts",   "voice",       "instruction", "max_tokens",
                                           "temperature", "sentence_chars"};
#define PIPE_MAX 256
#define PIPE_MAX_INSTRUCTION 16384

/* Positions of a pipeline's name and its three steps (0: none). */
typedef struct pipe_marks {
  size_t line[4], col[4]; /* [0] name, [1] asr, [2] llm, [3] tts */
} pipe_marks;

const char *matrix_pipeline_kind_name(enum matrix_pipeline_kind k) {
  return k == MATRIX_PIPE_VOICE ? "voice" : "transcribe_clean";
}

static void pipeline_clear(matrix_pipeline *p) {
  free(p->name);
  free(p->asr);
  free(p->llm);
  free(p->tts);
  free(p->voice);
  free(p->instruction);
  free(p->source);
  memset(p, 0, sizeof *p);
}

const matrix_pipeline *matrix_find_pipeline(const matrix *m, const char *name) {
  if (!m || !name) return NULL;
  for (size_t i = 0; i < m->n_pipelines; i++)
    if (!strcmp(m->pipelines[i].name, name)) return &m->pipelines[i];
  return NULL;
}

static void mark(pipe_marks *mk, int i, const yaml_node_t *n) {
  mk->line[i] = n->start_mark.line + 1;
  mk->col[i] = n->start_mark.column + 1;
}

static int load_pipeline(loader *l, const yaml_node_t *n, size_t idx) {
  char path[64], p[128], g[64];
  snprintf(path, sizeof path, "pipelines[%zu]", idx);
  yaml_node_t *v[P_N];
  if (want_map(l, n, path, pipe_keys, P_N, v)) return -1;
  matrix_pipeline mp = {.max_tokens = UNSET, .temperature = NAN};
  pipe_marks mk = {0};
  const char *s;
  if (!v[P_NAME]) goto missing_name;
  snprintf(p, sizeof p, "%s.name", path);
  if (want_str(l, v[P_NAME], p, &s) || check_name(l, v[P_NAME], p, s, NULL)) goto fail;
  const matrix_pipeline *other = matrix_find_pipeline(l->m, s);
  if (other) {
    at(l, v[P_NAME], "%s: '%s' is already used by pipeline '%s' (%s)", p, s, other->name, other->source);
    goto fail;
  }
  if (!(mp.name = strdup(s))) goto oom;
  mark(&mk, 0, v[P_NAME]);
  if (!v[P_KIND]) {
    at(l, n, "%s: missing required key 'kind' (transcribe_clean or voice)", path);
    goto fail;
  }
  snprintf(p, sizeof p, "%s.kind", path);
  if (want_str(l, v[P_KIND], p, &s)) goto fail;
  if (!strcmp(s, "voice")) mp.kind = MATRIX_PIPE_VOICE;
  else if (strcmp(s, "transcribe_clean") != 0) {
    at(l, v[P_KIND], "%s: unknown kind '%s' (known: transcribe_clean, voice)", p, s);
    goto fail;
  }
  bool voice = mp.kind == MATRIX_PIPE_VOICE;
  char **steps[3] = {&mp.asr, &mp.llm, &mp.tts};
  for (int i = 0; i < 3; i++) {
    yaml_node_t *sv = v[P_ASR + i];
    bool required = i == 1 || (i == 0 && !voice) || (i == 2 && voice);
    if (!sv && required) {
      at(l, n, "%s: a %s pipeline needs the step '%s'", path, voice ? "voice" : "transcribe_clean", pipe_keys[P_ASR + i]);
      goto fail;
    }
    if (!sv) continue;
    snprintf(p, sizeof p, "%s.%s", path, pipe_keys[P_ASR + i]);
    if (i == 2 && !voice) {
      at(l, sv, "%s: only a voice pipeline has a tts step", p);
      goto fail;
    }
    if (want_str_dup(l, sv, p, steps[i])) goto fail;
    mark(&mk, 1 + i, sv);
  }
  if (v[P_VOICE]) {
    snprintf(p, sizeof p, "%s.voice", path);
    if (!voice) {
      at(l, v[P_VOICE], "%s: only a voice pipeline has a voice", p);
      goto fail;
    }
    if (want_str_dup(l, v[P_VOICE], p, &mp.voice)) goto fail;
    if (strlen(mp.voice) > 100) {
      at(l, v[P_VOICE], "%s: longer than 100 characters", p);
      goto fail;
    }
  }
  if (v[P_INSTRUCTION]) {
    snprintf(p, sizeof p, "%s.instruction", path);
    if (want_str_dup(l, v[P_INSTRUCTION], p, &mp.instruction)) goto fail;
    if (strlen(mp.instruction) > PIPE_MAX_INSTRUCTION) {
      at(l, v[P_INSTRUCTION], "%s: longer than %d bytes", p, PIPE_MAX_INSTRUCTION);
      goto fail;
    }
  }
  snprintf(p, sizeof p, "%s.max_tokens", path);
  if (v[P_MAX_TOKENS] && want_int(l, v[P_MAX_TOKENS], p, 1, 32768, &mp.max_tokens)) goto fail;
  if (mp.max_tokens == UNSET) mp.max_tokens = voice ? 512 : 1024;
  mp.temperature = voice ? -1 : 0;
  if (v[P_TEMPERATURE]) {
    snprintf(p, sizeof p, "%s.temperature", path);
    char *end = NULL;
    const char *t = v[P_TEMPERATURE]->type == YAML_SCALAR_NODE ? sval(v[P_TEMPERATURE]) : NULL;
    double d = t && *t ? strtod(t, &end) : NAN;
    if (!t || !*t || *end || !(d >= 0 && d <= 2)) {
      at(l, v[P_TEMPERATURE], "%s: expected a number from 0 to 2, got %s", p, got(v[P_TEMPERATURE], g, sizeof g));
      goto fail;
    }
    mp.temperature = d;
  }
  mp.sentence_chars = 200;
  if (v[P_SENTENCE_CHARS]) {
    snprintf(p, sizeof p, "%s.sentence_chars", path);
    if (!voice) {
      at(l, v[P_SENTENCE_CHARS], "%s: only a voice pipeline cuts sentences", p);
      goto fail;
    }
    if (want_int(l, v[P_SENTENCE_CHARS], p, 8, 4000, &mp.sentence_chars)) goto fail;
  }
  char src[PATH_MAX + 32];
  snprintf(src, sizeof src, "%s:%zu", l->file, n->start_mark.line + 1);
  if (!(mp.source = strdup(src))) goto oom;
  if (l->m->n_pipelines >= PIPE_MAX) {
    at(l, n, "%s: more than %d pipelines", path, PIPE_MAX);
    goto fail;
  }
  matrix_pipeline *np = realloc(l->m->pipelines, (l->m->n_pipelines + 1) * sizeof *np);
  pipe_marks *nm = realloc(l->pipe_marks, (l->m->n_pipelines + 1) * sizeof *nm);
  if (np) l->m->pipelines = np;
  if (nm) l->pipe_marks = nm;
  if (!np || !nm) goto oom;
  nm[l->m->n_pipelines] = mk;
  np[l->m->n_pipelines++] = mp;
  return 0;
missing_name:
  at(l, n, "%s: missing required key 'name'", path);
  goto fail;
oom:
  oom(l);
fail:
  pipeline_clear(&mp);
  return -1;
}

static int load_pipelines(loader *l, const yaml_node_t *n) {
  if (is_null(n)) return 0;
  if (want_kind(l, n, "pipelines", YAML_SEQUENCE_NODE)) return -1;
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
    yaml_node_t *e = node(l, *it);
    if (!e || load_pipeline(l, e, i)) return -1;
  }
  return 0;
}

/* The steps against the whole matrix (configured, discovered and built-in models): each names a
 * model with the capability its role needs, and no model took a pipeline's name. */
static int pipelines_check(loader *l) {
  static const unsigned need[3] = {MATRIX_CAP_TRANSCRIBE, MATRIX_CAP_CHAT, MATRIX_CAP_SPEECH};
  static const char *const what[3] = {"transcribe", "chat", "speak"};
  const matrix *m = l->m;
  for (size_t i = 0; i < m->n_pipelines; i++) {
    const matrix_pipeline *pp = &m->pipelines[i];
    const pipe_marks *mk = &l->pipe_marks[i];
    const matrix_model *o = matrix_find(m, pp->name);
    bool builtin = m->builtin_voice && !matrix_find(m, MATRIX_BUILTIN_VOICE);
    if (o || (builtin && !strcmp(pp->name, MATRIX_BUILTIN_VOICE))) {
      set_err(l->err, l->errlen, "%s:%zu:%zu: pipelines[%zu].name: '%s' is already used by model '%s' (%s)", l->file,
              mk->line[0], mk->col[0], i, pp->name, o ? o->name : MATRIX_BUILTIN_VOICE, o ? o->source : "(built-in)");
      return -1;
    }
    const char *steps[3] = {pp->asr, pp->llm, pp->tts};
    for (int k = 0; k < 3; k++) {
      if (!steps[k]) continue;
      const matrix_model *sm = matrix_find(m, steps[k]);
      if (!sm && k == 2 && builtin && !strcmp(steps[k], MATRIX_BUILTIN_VOICE)) continue; /* added later */
      char caps[128];
      if (!sm) {
        set_err(l->err, l->errlen, "%s:%zu:%zu: pipelines[%zu].%s: no model is named '%s'", l->file, mk->line[1 + k],
                mk->col[1 + k], i, pipe_keys[P_ASR + k], steps[k]);
        return -1;
      }
      if (!(sm->caps & need[k])) {
        set_err(l->err, l->errlen, "%s:%zu:%zu: pipelines[%zu].%s: model '%s' cannot %s (its capabilities: %s)",
                l->file, mk->line[1 + k], mk->col[1 + k], i, pipe_keys[P_ASR + k], steps[k], what[k],
                matrix_caps_str(sm->caps, caps, sizeof caps));
        return -1;
      }
    }
  }
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
  set_err(l->err, l->errlen, "%s:%zu:%zu: %s%s", l->file, line + 1, col + 1,
          ps->problem ? ps->problem : "YAML error", ctx);
}

static int load_config(loader *l) {
  FILE *f = fopen(l->file, "rb");
  if (!f) {
    set_err(l->err, l->errlen, "%s: cannot read config: %s", l->file, strerror(errno));
    return -1;
  }
  char *buf = malloc(CONFIG_MAX_BYTES + 1);
  if (!buf) {
    fclose(f);
    return oom(l);
  }
  size_t len = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
  bool bad = ferror(f) != 0;
  fclose(f);
  if (bad || len > CONFIG_MAX_BYTES) {
    set_err(l->err, l->errlen, "%s: %s", l->file,
            bad ? "cannot read config (is it a directory?)" : "config is larger than 1 MiB");
    free(buf);
    return -1;
  }
  yaml_parser_t ps;
  yaml_document_t doc, extra;
  int rc = -1;
  if (!yaml_parser_initialize(&ps)) {
    free(buf);
    return oom(l);
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
      set_err(l->err, l->errlen, "%s:%zu:%zu: only one YAML document is allowed", l->file,
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

/* ---- the public face --------------------------------------------------------------------------
 */

matrix *matrix_load(const char *config_path, const char *models_dir, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  matrix *m = calloc(1, sizeof *m);
  if (!m) {
    set_err(err, errlen, "out of memory");
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
  m->log_level = SY_LOG_INFO;
  m->builtin_voice = true;
  loader l = {.file = config_path, .err = err, .errlen = errlen, .m = m};
  l.defaults = (opts){UNSET, UNSET, UNSET, UNSET, UNSET, UNSET};

  if (config_path) {
    char real[PATH_MAX];
    if (!realpath(config_path, real)) {
      set_err(err, errlen, "%s: cannot read config: %s", config_path, strerror(errno));
      goto fail;
    }
    if (dup_to(&m->path, real)) goto oom;
    char *slash = strrchr(real, '/');
    if (slash == real)
      slash[1] = '\0';
    else if (slash)
      *slash = '\0';
    snprintf(l.dir, sizeof l.dir, "%s", real);
    if (load_config(&l)) goto fail;
  }
  if (!m->host && dup_to(&m->host, "127.0.0.1")) goto oom;
  if (models_dir) {
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(models_dir, real) || stat(real, &st) != 0) {
      set_err(err, errlen, "models dir '%s': %s", models_dir, strerror(errno));
      goto fail;
    }
    if (!S_ISDIR(st.st_mode)) {
      set_err(err, errlen, "models dir '%s': not a directory", models_dir);
      goto fail;
    }
    free(m->models_dir);
    m->models_dir = NULL;
    if (dup_to(&m->models_dir, real)) goto oom;
  }
  if (m->models_dir) {
    opts dflt = l.defaults;
    if (discover(m, &dflt, err, errlen)) goto fail;
  }
  if (pipelines_check(&l)) goto fail;
  free(l.pipe_marks);
  if (router_check(m, err, errlen)) goto fail;
  return m;
oom:
  set_err(err, errlen, "out of memory");
fail:
  free(l.pipe_marks);
  matrix_free(m);
  return NULL;
}

void matrix_free(matrix *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_models; i++) model_clear(&m->models[i]);
  free(m->models);
  for (size_t i = 0; i < m->n_pipelines; i++) pipeline_clear(&m->pipelines[i]);
  free(m->pipelines);
  for (size_t i = 0; i < m->n_routers; i++) router_clear(&m->routers[i]);
  free(m->routers);
  free(m->path);
  free(m->host);
  free_strv(m->api_keys, m->n_api_keys);
  free(m->models_dir);
  free(m->image_dir);
  free_strv(m->warnings, m->n_warnings);
  if (m->gpu_names)
    for (size_t i = 0; m->gpu_names[i]; i++) free(m->gpu_names[i]);
  free(m->gpu_names);
  free(m->gpu_budgets);
  free(m);
}

int matrix_add_builtins(matrix *m) {
  if (!m->builtin_voice || matrix_find(m, MATRIX_BUILTIN_VOICE) || matrix_find_router(m, MATRIX_BUILTIN_VOICE))
    return 0;
  matrix_model mm = {.engine = MATRIX_ENGINE_ESPEAK, .caps = MATRIX_CAP_SPEECH, .parallel = 1,
                     .keep_alive_s = 300, .batch = 512, .gpu_layers = 0, .max_queue = 64};
  if (!(mm.name = strdup(MATRIX_BUILTIN_VOICE)) || !(mm.file = strdup("")) || !(mm.source = strdup("(built-in)")) ||
      push_model(m, &mm) != 0) {
    model_clear(&mm);
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
