/* matrix.h — the model matrix: the daemon's configuration (YAML) plus models discovered in a
 * models directory. Loaded once at start (and on reload); read-only afterwards, so any thread may
 * read a loaded matrix without locks. A bad file is refused with "file:line:col: reason".
 * See docs/CONFIG.md for every key. */
#ifndef SY_MATRIX_H
#define SY_MATRIX_H

#include <stdbool.h>
#include <stddef.h>

/* Which worker runs the model: switchyard-llama (GGUF LLMs, embedders, rerankers, mtmd),
 * switchyard-whisper (whisper.cpp ggml models: speech to text), switchyard-espeak (the built-in
 * CPU voice, no model file). */
enum matrix_engine {
  MATRIX_ENGINE_LLAMA = 0,
  MATRIX_ENGINE_WHISPER,
  MATRIX_ENGINE_ESPEAK,
  MATRIX_ENGINE_EXTERNAL
};
#define MATRIX_N_ENGINES 4
/* "llama", "whisper", "espeak", "external" */
const char *matrix_engine_name(enum matrix_engine e);

enum matrix_cap {
  MATRIX_CAP_CHAT = 1u << 0,
  MATRIX_CAP_COMPLETION = 1u << 1,
  MATRIX_CAP_EMBED = 1u << 2,
  MATRIX_CAP_RERANK = 1u << 3,     /* a ranking model (pooling rank): scores query/document pairs */
  MATRIX_CAP_TRANSCRIBE = 1u << 4, /* speech to text (/v1/audio/transcriptions, translations) */
  MATRIX_CAP_SPEECH = 1u << 5,     /* text to speech (/v1/audio/speech) */
  MATRIX_CAP_VISION = 1u << 6,     /* image input (a model with an mmproj) */
  MATRIX_CAP_AUDIO = 1u << 7,      /* audio input (an mmproj with an audio encoder) */
};

/* matrix_model.cpu_moe: every layer's experts in host RAM (cpu_moe: true) */
#define MATRIX_CPU_MOE_ALL (-1)
/* n_cpu_moe's bound (layers) */
#define MATRIX_MAX_N_CPU_MOE 65536

/* engine: external — a third-party server (ComfyUI, llama-server, vLLM...) run as a process of its
 * own and reached over HTTP on 127.0.0.1 (see docs/CONFIG.md, "External engines"). */
#define MATRIX_EXT_MAX_ARGS 256
#define MATRIX_EXT_MAX_ROUTES 16
typedef struct matrix_external {
  char **argv; /* the program and its arguments (${PORT} substituted at start) */
  size_t argc;
  bool shell; /* argv is one string run with /bin/sh -c */
  char *cwd;  /* absolute working folder, or NULL = the daemon's */
  char **env; /* extra "KEY=value" entries (${PORT} substituted) */
  size_t n_env;
  int port;              /* 0 = the daemon picks a free port at each start */
  char *health_path;     /* polled with GET until it answers health_status; default /health */
  int health_status;     /* default 200 */
  int startup_timeout_s; /* give up (and kill the group) after this long; default 120 */
  int stop_signal;       /* sent to the process group on unload; default SIGTERM */
  int stop_grace_ms;     /* then SIGKILL after this long; default 10 s */
  char **routes;         /* OpenAI paths dispatched to it by "model" */
  size_t n_routes;
  bool upstream;    /* /upstream/<name>/... passes any request through; default true */
  long long memory; /* declared host RAM, bytes; 0 = not declared */
  char **gpu_names; /* declared memory per GPU (engine device names, e.g. CUDA0) */
  long long *gpu_bytes;
  size_t n_gpu;
  char *sig; /* a canonical text of everything above: a reload compares it */
} matrix_external;

typedef struct matrix_model {
  char *name; /* unique among names and aliases */
  char **aliases;
  size_t n_aliases;
  char *file; /* absolute path of the GGUF */
  enum matrix_engine engine;
  unsigned caps;              /* MATRIX_CAP_* (from the config, else from the GGUF's metadata) */
  int context;                /* tokens per request (per sequence) */
  int parallel;               /* sequences served at once */
  int keep_alive_s;           /* seconds idle before unload; 0 = unload when idle; -1 = never */
  int threads;                /* 0 = let the worker choose */
  int batch;                  /* n_batch */
  int gpu_layers;             /* -1 = all */
  int cpu_moe;                /* expert weights (ffn_*_exps) kept in host RAM: 0 none,
                                 MATRIX_CPU_MOE_ALL every layer's (cpu_moe: true), N > 0 the first
                                 N layers' (n_cpu_moe: N) */
  long long expert_bytes;     /* the file's expert tensors, bytes (-1 unknown; 0 none) */
  int expert_layers;          /* layers that have experts (0 unknown or none) */
  long long prompt_cache_ram; /* bytes of saved prompt states it may keep in RAM (0 = none), counted
                                 in the budget while there is room and shrunk before any eviction
                                 (docs/PROMPT_CACHE.md) */
  long long prompt_cache_disk; /* bytes of saved prompt states its folder under the state dir may
                                  hold (0 = none): written on unload, read after a load */
  char *pooling;               /* NULL = the model's own; else mean|cls|last|none|rank */
  bool deterministic;          /* batch-invariant generation (slower under load); default false */
  bool pin;                    /* load at start, never evict */
  bool preload;                /* load at start, may be evicted */
  int priority;                /* higher = evicted later; default 0 */
  int max_queue;           /* requests that may wait for this model (loading / room); default 64 */
  bool request_keep_alive; /* a request's "keep_alive" may override keep_alive_s; default false */
  char *chat_template;     /* NULL = the GGUF's; else a llama.cpp built-in name or a template */
  char *mmproj;            /* absolute path of the vision projector GGUF, or NULL */
  long long mmproj_bytes;  /* its size */
  char mmproj_type[32];    /* its clip.projector_type ("" when absent): the memory margin */
  char *transcribe_prompt; /* audio models: the instruction /v1/audio/transcriptions sends with
                              the audio (NULL = MATRIX_TRANSCRIBE_PROMPT) */
  char *vad_model;         /* whisper: absolute path of a Silero VAD ggml model, or NULL */
  char **rpc;              /* engine llama: ggml RPC servers ("host:port", endpoint.h) whose
                              devices take layers (gpu_layers of them), in order; NULL = none */
  size_t n_rpc;            /* at most MATRIX_MAX_RPC */
  char **voice_names;      /* speech models on engine llama: voices (reference clips) by name */
  char **voice_audio;      /* absolute paths of their clips, same order */
  char **voice_lang;       /* their `language` (NULL: the request's or the model's default) */
  size_t n_voices;         /* at most MATRIX_MAX_VOICES */
  bool voice_upload;    /* a /v1/audio/speech request may bring its own reference clip (cloning) */
  char *arch;           /* general.architecture from the GGUF header, or NULL if unreadable */
  long long file_bytes; /* size of the file */
  int n_ctx_train;      /* from the GGUF, 0 if unknown */
  int file_type;        /* general.file_type from the GGUF (llama.cpp's ftype: 15 = Q4_K_M...), -1
                           if unknown */
  long long n_embd;     /* <arch>.embedding_length from the GGUF, 0 if unknown */
  bool discovered;      /* true: found in models_dir, not named in the config */
  char *source;         /* "path:line" of its definition, or the file path when discovered */
  matrix_external *ext; /* engine: external only, else NULL */
} matrix_model;

/* A pipeline: a named virtual model whose steps are other models (docs/CONFIG.md "pipelines").
 * Steps are kept by name and resolved with matrix_find at request time (the models array moves
 * when the built-in voice is added). */
enum matrix_pipeline_kind { MATRIX_PIPE_TRANSCRIBE_CLEAN = 0, MATRIX_PIPE_VOICE };
typedef struct matrix_pipeline {
  char *name; /* unique among model names, aliases and pipelines */
  enum matrix_pipeline_kind kind;
  char *asr;   /* speech to text: a transcribe model (whisper or audio LLM); voice: optional */
  char *llm;   /* a chat model */
  char *tts;   /* voice: a speech model */
  char *voice; /* voice: the default voice; NULL = the speech model's own default */
  char *instruction;  /* the LLM's system prompt (transcribe_clean: MATRIX_CLEAN_PROMPT when NULL;
                         voice: none when NULL) */
  int max_tokens;     /* the LLM step's bound; default 1024 (clean) / 512 (voice) */
  double temperature; /* the LLM step's; default 0 (clean) / -1 = the request's (voice) */
  int sentence_chars; /* voice: text longer than this is cut at a space for speech; default 200 */
  char *source;       /* "path:line" of its definition */
} matrix_pipeline;

/* The default clean-up instruction of a transcribe_clean pipeline. */
#define MATRIX_CLEAN_PROMPT                                                                      \
  "You clean up speech transcripts. Rewrite the transcript the user sends: remove filler words " \
  "(um, uh, like, you know), stutters, repeated words and false starts; add punctuation, "       \
  "capitalisation and paragraph breaks. Keep the speaker's own words and meaning: do not "       \
  "summarise, answer, translate or add anything. Reply with the cleaned transcript only."

/* ---- routers: virtual models whose requests go to one of several real models (router.c) ---- */

#define MATRIX_MAX_ROUTERS 64
#define MATRIX_MAX_ROUTES 16     /* routes per router */
#define MATRIX_MAX_RULES 64      /* rules per router */
#define MATRIX_ROUTE_NAME_MAX 32 /* a route's name: letters, digits, '_' and '-' */

typedef struct matrix_route {
  char *name;   /* the route's name, e.g. "heavy" (what the classifier answers) */
  char *model;  /* the real model's name or alias, as written */
  char *source; /* "path:line:col" of the route, for errors found after discovery */
} matrix_route;

/* One rule: every condition it names must hold (an empty rule always matches). */
typedef struct matrix_rule {
  bool images;                 /* the request has image_url parts */
  bool audio;                  /* the request has input_audio parts */
  bool tools;                  /* the request has a non-empty "tools" */
  long long min_prompt_tokens; /* 0 = no condition; else the estimated prompt tokens >= this */
  char *system_tag;            /* NULL = no condition; else a substring of the system prompt */
  size_t route;                /* index in routes */
} matrix_rule;

typedef struct matrix_router {
  char *name;   /* unique among models, aliases and routers */
  char *source; /* "path:line" */
  matrix_route *routes;
  size_t n_routes;
  matrix_rule *rules; /* in order; the first that matches decides */
  size_t n_rules;
  size_t default_route; /* when no rule matches and there is no classifier (or it fails) */
  /* the classifier: the light model picks one of cls_routes by a constrained generation */
  bool has_classifier;
  char *cls_model;    /* a chat model (name or alias) */
  char *cls_prompt;   /* the fixed question (system message); NULL = the built-in one */
  size_t *cls_routes; /* indexes in routes it may answer; all routes when not given */
  size_t n_cls_routes;
  int cls_timeout_ms;      /* its generation; default 2000 */
  int cls_max_tokens;      /* default 16 */
  int cls_max_input_chars; /* the request text shown to it; default 2000 */
  /* fallback: when the chosen route's model cannot be loaded, the next of these is tried */
  size_t *fallback; /* indexes in routes, in order (fallback: true = all routes in order) */
  size_t n_fallback;
} matrix_router;

#define MATRIX_MAX_PULL_SETTING 512 /* bytes of pull.hf_endpoint, pull.hf_token, pull.registry */

/* ---- peers: other Switchyard daemons whose models this one offers (docs/CONFIG.md "Peers") ----
 */

#define MATRIX_MAX_PEERS 32        /* peers in one config */
#define MATRIX_PEER_MAX_MODELS 256 /* names in one peer's models list */
#define MATRIX_PEER_NAME_MAX 32    /* a peer's name: letters, digits, '_', '-' and '.' */
#define MATRIX_PEER_URL_MAX 512    /* its base URL */
#define MATRIX_PEER_KEY_MAX 512    /* its API key */
#define MATRIX_PEER_DEFAULT_REFRESH_S 5
#define MATRIX_PEER_MAX_REFRESH_S 3600
#define MATRIX_PEER_DEFAULT_CONNECT_TIMEOUT_S 3
#define MATRIX_PEER_MAX_CONNECT_TIMEOUT_S 60

typedef struct matrix_peer {
  char *name;    /* unique among peers; names it in /v1/models, /api/ps and logs */
  char *url;     /* http://HOST[:PORT][/PREFIX] or https://..., no trailing '/', no query */
  char *api_key; /* sent as Authorization: Bearer; NULL = none */
  bool all;      /* models: all (the default) — every model, router and pipeline it lists */
  char **models; /* else the names (or aliases) it may offer, in order */
  size_t n_models;
  int refresh_s;         /* its /v1/models and /api/ps are read this often (and after every
                            request forwarded to it); default MATRIX_PEER_DEFAULT_REFRESH_S */
  int connect_timeout_s; /* a connection not made by then: the peer is down (503) */
  char *source;          /* "path:line" of its definition */
  char *sig;             /* a canonical text of the settings above: a reload compares it */
} matrix_peer;

typedef struct matrix {
  char *path;      /* config file, or NULL when none */
  char *host;      /* listen address; default 127.0.0.1 */
  int port;        /* default 8080 */
  char **api_keys; /* empty = no auth */
  size_t n_api_keys;
  char **admin_keys; /* keys that may also pull, delete, load and unload (also API keys) */
  size_t n_admin_keys;
  char *models_dir; /* NULL = no discovery */
  /* pull: where `switchyard pull` fetches from (NULL / 0: the environment's, else the defaults;
   * src/daemon/pull/pull.h) */
  char *pull_hf_endpoint, *pull_hf_token, *pull_registry;
  long long pull_max_bytes;
  size_t max_body_bytes;       /* default 16 MiB */
  size_t max_upload_bytes;     /* audio uploads (/v1/audio/...); default 25 MiB */
  int max_connections;         /* default 256 */
  size_t ws_max_message_bytes; /* limits.ws_max_message_bytes: one WebSocket frame or message;
                                  default 16 MiB */
  int ws_max_sessions;         /* limits.ws_max_sessions: WebSocket sessions at once; default 64 */
  int ws_idle_timeout_s; /* limits.ws_idle_timeout: a session with no frame either way; 300 s */
  char *
      image_dir; /* limits.image_dir: local image files allowed from here; NULL = only data: URLs */
  long long
      max_image_bytes; /* limits.max_image_bytes: encoded size of one image; 0 = decoder default */
  long long max_image_pixels; /* limits.max_image_pixels: w*h of one image; 0 = decoder default */
  int log_level;              /* sy_log_level; default info */
  int log_format;             /* sy_log_format; default text (--log-format overrides) */
  long long mem_budget;       /* bytes models may use; 0 = MemTotal − mem_reserve */
  long long mem_reserve;      /* bytes kept free when the budget is derived; default 2 GiB */
  long long gpu_reserve;      /* bytes kept free on each GPU (dedicated memory); default 512 MiB */
  long long gpu_overhead;     /* per worker process on each GPU it uses, beyond llama.cpp's estimate
                                 (the backend's context and workspaces); default 512 MiB */
  char **gpu_names;           /* memory.devices: a budget for named GPUs (as `switchyard-llama
                                 --list-devices` names them, e.g. CUDA0); at most 8 */
  long long *gpu_budgets;
  size_t n_gpu_budgets;
  int swap_guard_s; /* a model loaded less than this ago is not evicted (thrash guard); default 0 =
                       off */
  int max_loads;    /* models loading at once; default 1 */
  bool builtin_voice;   /* builtin_voice: add the built-in `speak` model (espeak); default true */
  matrix_model *models; /* configured ones in file order, then discovered ones by name */
  size_t n_models;
  matrix_pipeline *pipelines; /* the config's pipelines, in file order */
  size_t n_pipelines;
  matrix_router *routers; /* routers: in file order */
  size_t n_routers;
  matrix_peer *peers; /* peers: in file order (the first that offers a name serves it) */
  size_t n_peers;
  char **warnings; /* files skipped in models_dir and why (already logged); at most 256 */
  size_t n_warnings;
} matrix;

/* The default instruction of an audio-input LLM asked to transcribe (transcribe_prompt). */
#define MATRIX_TRANSCRIBE_PROMPT "Transcribe the audio."

/* Load the config at config_path (may be NULL: defaults only) and discover *.gguf files in
 * models_dir (NULL: the config's models_dir, if any). On failure returns NULL and writes a
 * one-line reason ("file:line:col: reason") into err.
 * models_dir, when given, is relative to the working directory and must be a folder. Files in
 * the folder that cannot be used are skipped with a warning (logged, and kept in m->warnings),
 * never an error. Reads each model's GGUF header; thread safe (no shared state). */
matrix *matrix_load(const char *config_path, const char *models_dir, char *err, size_t errlen);
void matrix_free(matrix *m);

#define MATRIX_MAX_VOICES 64

/* The built-in voice's model name: engine espeak, capability speech, no file. */
#define MATRIX_BUILTIN_VOICE "speak"
/* Add the built-in models the config did not turn off (builtin_voice) and no model or alias
 * already names: `speak`. The daemon calls it after matrix_load (the unit tests see the matrix as
 * the file made it). 0, or -1 on out of memory. */
int matrix_add_builtins(matrix *m);

/* Find a model by name or alias (exact match); NULL if none. */
const matrix_model *matrix_find(const matrix *m, const char *name);

/* Find a pipeline by name (exact match); NULL if none. */
const matrix_pipeline *matrix_find_pipeline(const matrix *m, const char *name);
/* "transcribe_clean", "voice" */
const char *matrix_pipeline_kind_name(enum matrix_pipeline_kind k);
/* True if path is one an external engine may list in its routes. */
bool matrix_ext_route(const char *path);
/* True if the external model m serves path (one of its routes). */
bool matrix_ext_serves(const matrix_model *m, const char *path);
/* Find a router by name (exact match); NULL if none. */
const matrix_router *matrix_find_router(const matrix *m, const char *name);

/* Find a peer by its own name (exact match); NULL if none. */
const matrix_peer *matrix_find_peer(const matrix *m, const char *name);
/* Whether a peer of m may offer a model named name: one whose models list names it, or one with
 * models: all (its list is only known at run time). For the checks of routes at load. */
bool matrix_peer_may_offer(const matrix *m, const char *name);

/* "chat,completion" style text of a capability mask, into buf. */
const char *matrix_caps_str(unsigned caps, char *buf, size_t len);

#endif
