/* matrix_int.h — private to the matrix_*.c files (the model matrix's loader, split along its
 * sections): the loader's state, the YAML readers that turn a node into a value or a
 * "file:line:col: reason" error, the key descriptor tables that drive them, the bounds and built-in
 * defaults of the model settings, and what each part exports to the others. Everything here is
 * prefixed mx_; nothing outside src/daemon/matrix*.c may include this header (matrix.h is the
 * module's whole public face).
 *
 * Must never: hold state of its own (the loader lives on matrix_load's stack, so loads stay
 * thread safe), or let a reader return -1 without having written the error. */
#ifndef SY_MATRIX_INT_H
#define SY_MATRIX_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config/gguf_header.h"
#include "config/matrix.h"

#define MATRIX_MAX_MODELS 4096
#define NAME_MAX_LEN 128     /* a model, alias, router or pipeline name */
#define UNSET INT_MIN        /* a setting not given */
#define UNSET_SIZE LLONG_MIN /* a size (MX_SIZE) not given */

/* ---- model settings: bounds and built-in defaults (docs/CONFIG.md "models") ----------------- */

#define MATRIX_MIN_CONTEXT 16 /* tokens per sequence */
#define MATRIX_MAX_CONTEXT 1048576
#define MATRIX_DEFAULT_CONTEXT 4096 /* or the model's trained context, when smaller */
#define MATRIX_MIN_PARALLEL 1
#define MATRIX_MAX_PARALLEL 256
#define MATRIX_DEFAULT_PARALLEL 4 /* 1 for external engines and speech models */
#define MATRIX_DEFAULT_KEEP_ALIVE_S 300
#define MATRIX_MIN_THREADS 0 /* 0 = the worker chooses */
#define MATRIX_MAX_THREADS 1024
#define MATRIX_DEFAULT_THREADS 0
#define MATRIX_MIN_BATCH 1
#define MATRIX_MAX_BATCH 65536
#define MATRIX_DEFAULT_BATCH 512
#define MATRIX_MIN_GPU_LAYERS (-1) /* -1 = all */
#define MATRIX_MAX_GPU_LAYERS 65536
#define MATRIX_DEFAULT_GPU_LAYERS (-1)
#define MATRIX_MAX_RPC 16 /* RPC servers per model: ggml's GGML_RPC_MAX_SERVERS */
#define MATRIX_MIN_PRIORITY (-1000)
#define MATRIX_MAX_PRIORITY 1000
#define MATRIX_DEFAULT_PRIORITY 0
#define MATRIX_MIN_MAX_QUEUE 0
#define MATRIX_MAX_MAX_QUEUE 100000
#define MATRIX_DEFAULT_MAX_QUEUE 64
#define MATRIX_MAX_PROMPT_CACHE (1LL << 50) /* bytes of a model's prompt cache in RAM */
#define MATRIX_DEFAULT_PROMPT_CACHE_RAM (1LL << 30)
#define MATRIX_DEFAULT_PROMPT_CACHE_DISK (4LL << 30)

/* Per-model settings as written (the "defaults" section, or a model's own keys); UNSET where not
 * given. */
typedef struct opts {
  int context, parallel, keep_alive, threads, batch, gpu_layers;
  long long prompt_cache_ram, prompt_cache_disk; /* UNSET_SIZE where not given */
} opts;
enum {
  O_CONTEXT,
  O_PARALLEL,
  O_KEEP_ALIVE,
  O_THREADS,
  O_BATCH,
  O_GPU_LAYERS,
  O_CACHE_RAM,
  O_CACHE_DISK,
  O_N
};
#define OPTS_UNSET ((opts){UNSET, UNSET, UNSET, UNSET, UNSET, UNSET, UNSET_SIZE, UNSET_SIZE})

/* One config load: the file being read and the matrix being filled. */
typedef struct loader {
  const char *file;   /* the config path as given, for messages */
  char dir[PATH_MAX]; /* its folder (absolute), for relative paths */
  yaml_document_t *doc;
  char *err;
  size_t errlen;
  matrix *m;
  opts defaults;
  struct pipe_marks
      *pipe_marks; /* where each pipeline's names are, for the checks after discovery */
} loader;

/* ---- small helpers (matrix.c) ---------------------------------------------------------------- */

/* strdup that leaves *dst alone and returns -1 when out of memory. */
int mx_dup(char **dst, const char *s);
void mx_strv_free(char **v, size_t n);
/* Append a copy of s to a growing string vector; -1 when out of memory. */
int mx_strv_push(char ***v, size_t *n, const char *s);
/* dir + "/" + rel, or rel when it is absolute; -1 when it does not fit. */
int mx_join_path(char *out, size_t cap, const char *dir, const char *rel);
/* A model name or alias: 1..NAME_MAX_LEN bytes, no spaces or control characters. */
bool mx_name_ok(const char *s);
/* Log a warning and keep it in m->warnings (bounded). */
void mx_warn(matrix *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- errors and YAML readers (matrix_yaml.c) ------------------------------------------------ *
 * Every mx_want_* reads one node, names it by path ("models[0].context") in its errors and returns
 * 0, or -1 with "FILE:LINE:COL: path: reason" in l->err (the node's own position). */

void mx_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "FILE:LINE:COL: reason" at node n; returns -1. */
int mx_at(loader *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "FILE: out of memory"; returns -1. */
int mx_oom(loader *l);
yaml_node_t *mx_node(loader *l, int id);
const char *mx_sval(const yaml_node_t *n);
bool mx_is_null(const yaml_node_t *n);
/* What a node is, for "expected X, got Y". */
const char *mx_got(const yaml_node_t *n, char *buf, size_t len);
int mx_want_str(loader *l, const yaml_node_t *n, const char *path, const char **out);
int mx_want_bool(loader *l, const yaml_node_t *n, const char *path, bool *out);
int mx_want_str_dup(loader *l, const yaml_node_t *n, const char *path, char **out);
int mx_want_ll(loader *l, const yaml_node_t *n, const char *path, long long lo, long long hi,
               long long *out);
int mx_want_int(loader *l, const yaml_node_t *n, const char *path, int lo, int hi, int *out);
int mx_want_size(loader *l, const yaml_node_t *n, const char *path, long long lo, long long hi,
                 long long *out);
int mx_want_duration(loader *l, const yaml_node_t *n, const char *path, int *out);
int mx_want_kind(loader *l, const yaml_node_t *n, const char *path, yaml_node_type_t t);
int mx_want_map(loader *l, const yaml_node_t *n, const char *path, const char *const *keys,
                size_t nkeys, yaml_node_t **vals);
int mx_want_str_list(loader *l, const yaml_node_t *n, const char *path, char ***out, size_t *nout,
                     bool (*check)(const char *), const char *check_what);

/* ---- key descriptor tables (read by matrix_yaml.c) ------------------------------------------ *
 * A mapping whose keys are settings is described by a table, one row per key: its name, its
 * type, its bounds, its value when absent, and where it goes (an offset in the struct the table
 * fills). mx_keys_read walks the rows in order, so the row order is the order of the checks (and
 * so which error a file with several gets). */

typedef enum mx_key_type {
  MX_BOOL,     /* true or false → bool */
  MX_INT,      /* an integer in lo..hi → int */
  MX_DURATION, /* seconds, or a number with s, m or h (-1..INT_MAX seconds) → int */
  MX_SIZE,     /* bytes, or a number with KiB, MiB, GiB... in lo..hi → long long (absent:
                  UNSET_SIZE when dflt is UNSET, else dflt) */
  MX_STRING,   /* a non-empty string → char * (owned) */
  MX_ENUM,     /* one of choices → int (its index) */
  MX_ENUM_STR, /* one of choices → char * (an owned copy) */
  MX_CUSTOM,   /* read by the row's parse function */
} mx_key_type;

enum {
  MX_REQUIRED = 1u << 0,    /* absent: "PATH: missing required key 'NAME'" at the mapping */
  MX_NULL_ABSENT = 1u << 1, /* a null value (key: ~) counts as absent */
  MX_ALWAYS = 1u << 2,      /* MX_CUSTOM: parse runs even when absent (value NULL) */
};

typedef struct mx_key {
  const char *name;
  mx_key_type type;
  long long lo, hi;           /* MX_INT: the bounds */
  int dflt;                   /* MX_BOOL, MX_INT, MX_DURATION, MX_ENUM: the value when absent */
  size_t off;                 /* where the value goes: offset in the struct being filled */
  const char *const *choices; /* MX_ENUM, MX_ENUM_STR: the words allowed, ... */
  size_t n_choices;
  const char *what; /* ... and what they are ("unknown WHAT 'x' (known: a, b)") */
  /* MX_CUSTOM: read value v (NULL when absent and MX_ALWAYS) into dst, the struct being filled;
   * path names the key. 0 or -1 (error written). */
  int (*parse)(loader *l, void *dst, const yaml_node_t *v, const char *path);
  unsigned flags; /* MX_REQUIRED, MX_NULL_ABSENT, MX_ALWAYS */
} mx_key;

#define MX_MAX_KEYS 64 /* rows in one table */

/* mx_want_map with the names of a table's rows: vals[i] gets the value of keys[i].name. */
int mx_want_keys(loader *l, const yaml_node_t *n, const char *path, const mx_key *keys,
                 size_t nkeys, yaml_node_t **vals);
/* Read rows keys[0..nkeys) from their values vals (as mx_want_keys gave them) into dst, in row
 * order; map is the mapping itself (for "missing required key"), path names it. */
int mx_keys_read(loader *l, const mx_key *keys, size_t nkeys, yaml_node_t *const *vals,
                 const yaml_node_t *map, const char *path, void *dst);

/* ---- models (matrix_model.c) ---------------------------------------------------------------- */

/* The projector GGUF at real (a resolved path): what it takes (*caps: MATRIX_CAP_VISION and/or
 * MATRIX_CAP_AUDIO), whether it generates audio instead (*speech: a text-to-speech model's) and
 * its clip.projector_type (into type, "" when absent). 0, or -1 with the reason in err, worded to
 * follow the file's name ("is not a readable GGUF: ..."). Thread safe. */
int mx_mmproj_probe(const char *real, unsigned *caps, bool *speech, char *type, size_t type_cap,
                    char *err, size_t errlen);
/* What a projector takes (mmproj_caps) joins mm->caps; an audio one makes a chat model answer
 * transcriptions too, unless the config gave the capabilities (caps_given). */
void mx_caps_add_mmproj(matrix_model *mm, unsigned mmproj_caps, bool caps_given);
/* The shared settings' rows: the "defaults" section and the same keys on each model fill an opts.
 */
extern const mx_key mx_opt_keys[O_N];
/* models[idx]: read, checked against the models before it, and appended to l->m. */
int mx_load_model(loader *l, const yaml_node_t *n, size_t idx);
/* name (or alias) at n is valid and not taken by a model (nor by self's name or earlier aliases).
 */
int mx_check_name(loader *l, const yaml_node_t *n, const char *path, const char *name,
                  const matrix_model *self);
/* Fill what the GGUF tells and the settings every model has: given > defaults > built-in. */
int mx_model_finish(matrix_model *mm, const opts *given, const opts *dflt, const ghdr_info *g,
                    const char *path, long long bytes);
/* Move *mm into m->models (mm is zeroed); -1 when full or out of memory (mm untouched). */
int mx_model_push(matrix *m, matrix_model *mm);
void mx_model_clear(matrix_model *mm);
/* Capabilities when the config names none: from the configured pooling, else the GGUF. */
unsigned mx_caps_default(const ghdr_info *g, const char *pooling, const char *chat_template);

/* ---- voices (matrix_voice.c) ---------------------------------------------------------------- */

/* A speech model's voices map (path names it) into mm->voice_*. */
int mx_load_voices(loader *l, const yaml_node_t *n, const char *path, matrix_model *mm);

/* ---- external engines (matrix_external.c) --------------------------------------------------- */

/* The `external:` map of model mpath into a new matrix_external (*out). */
int mx_load_external(loader *l, const yaml_node_t *n, const char *mpath, matrix_external **out);
/* The capabilities e's routes imply. */
unsigned mx_ext_caps(const matrix_external *e);
void mx_ext_free(matrix_external *e);

/* ---- discovery (matrix_discover.c) ---------------------------------------------------------- */

/* Add the models in m->models_dir that the config did not name; files that cannot be used are
 * warnings. -1 only when the folder cannot be read or memory runs out. */
int mx_discover(matrix *m, const opts *dflt, char *err, size_t errlen);

/* ---- routers (matrix_router.c) -------------------------------------------------------------- */

int mx_load_routers(loader *l, const yaml_node_t *n);
/* After discovery: every route and classifier names a model able to do its part. */
int mx_router_check(matrix *m, char *err, size_t errlen);
void mx_router_clear(matrix_router *rt);

/* ---- peers (matrix_peer.c) ------------------------------------------------------------------ */

int mx_load_peers(loader *l, const yaml_node_t *n);
void mx_peer_clear(matrix_peer *p);

/* ---- pipelines (matrix_pipeline.c) ---------------------------------------------------------- */

int mx_load_pipelines(loader *l, const yaml_node_t *n);
/* After discovery: each step names a model with the capability its role needs. */
int mx_pipelines_check(loader *l);
void mx_pipeline_clear(matrix_pipeline *p);

#endif
