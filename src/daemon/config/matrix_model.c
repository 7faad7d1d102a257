/* matrix_model.c — the model matrix's models: one `models:` entry into a matrix_model. The keys
 * are read by a descriptor table (model_keys below: name, type, bounds, default, where it goes;
 * mx_keys_read in matrix_yaml.c walks it), then the engine decides how the model is placed: an
 * external server (matrix_external.c), the fileless built-in voice, or a file — a whisper.cpp
 * model, or a GGUF whose header (gguf_header.c) gives the capabilities and the trained context.
 * Also the capability names and the built-in defaults every model gets (mx_model_finish).
 *
 * This file must never accept a model it did not fully check (a name already taken, a capability
 * the projector cannot back, a key its engine does not use), never change the order of the rows
 * without meaning to (the order of the checks decides which error a file with several gets), and
 * never leak a half-read model (mx_model_clear on every failure). */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/matrix_int.h"
#include "endpoint.h"

/* ---- capabilities --------------------------------------------------------------------------- */

static const char *const cap_names[] = {"chat",       "completion", "embed",  "rerank",
                                        "transcribe", "speech",     "vision", "audio"};
static const char *const engine_names[MATRIX_N_ENGINES] = {"llama", "whisper", "espeak",
                                                           "external"};

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
unsigned mx_caps_default(const ghdr_info *g, const char *pooling, const char *chat_template) {
  if (pooling && !strcmp(pooling, "rank")) return MATRIX_CAP_RERANK;
  if (pooling && strcmp(pooling, "none") != 0) return MATRIX_CAP_EMBED;
  if (g->pooling_type == 4) return MATRIX_CAP_RERANK;
  if (g->pooling_type > 0 || arch_is_encoder(g->arch)) return MATRIX_CAP_EMBED;
  unsigned c = MATRIX_CAP_COMPLETION;
  if (g->has_chat_template || chat_template) c |= MATRIX_CAP_CHAT;
  return c;
}

/* ---- a model's life ---------------------------------------------------------------------------
 */

void mx_model_clear(matrix_model *mm) {
  free(mm->name);
  mx_strv_free(mm->aliases, mm->n_aliases);
  free(mm->file);
  free(mm->pooling);
  free(mm->chat_template);
  free(mm->mmproj);
  free(mm->transcribe_prompt);
  free(mm->vad_model);
  mx_strv_free(mm->rpc, mm->n_rpc);
  mx_strv_free(mm->voice_names, mm->n_voices);
  mx_strv_free(mm->voice_audio, mm->n_voices);
  mx_strv_free(mm->voice_lang, mm->n_voices);
  free(mm->arch);
  free(mm->source);
  mx_ext_free(mm->ext);
  memset(mm, 0, sizeof *mm);
}

/* The model in m that already uses name (as its name or an alias), or NULL. */
static const matrix_model *taken_by(const matrix *m, const char *name) {
  return matrix_find(m, name);
}

static int pick(int given, int dflt, int builtin) {
  return given != UNSET ? given : dflt != UNSET ? dflt : builtin;
}

int mx_model_finish(matrix_model *mm, const opts *given, const opts *dflt, const ghdr_info *g,
                    const char *path, long long bytes) {
  if (!(mm->file = strdup(path))) return -1;
  if (g->arch[0] && !(mm->arch = strdup(g->arch))) return -1;
  mm->file_bytes = bytes;
  mm->n_ctx_train = g->context_length > INT_MAX ? INT_MAX : (int)g->context_length;
  mm->file_type = g->arch[0] ? g->file_type : -1; /* no header read: not a GGUF */
  mm->n_embd = g->embedding_length;
  mm->expert_bytes = g->arch[0] ? g->expert_bytes : -1;
  mm->expert_layers = g->expert_layers;
  if (given->context != UNSET) {
    mm->context = given->context;
  } else {
    mm->context = pick(UNSET, dflt->context, MATRIX_DEFAULT_CONTEXT);
    if (mm->n_ctx_train > 0 && mm->n_ctx_train < mm->context)
      mm->context = mm->n_ctx_train < MATRIX_MIN_CONTEXT ? MATRIX_MIN_CONTEXT : mm->n_ctx_train;
  }
  mm->parallel = pick(given->parallel, dflt->parallel, MATRIX_DEFAULT_PARALLEL);
  mm->keep_alive_s = pick(given->keep_alive, dflt->keep_alive, MATRIX_DEFAULT_KEEP_ALIVE_S);
  mm->threads = pick(given->threads, dflt->threads, MATRIX_DEFAULT_THREADS);
  mm->batch = pick(given->batch, dflt->batch, MATRIX_DEFAULT_BATCH);
  mm->gpu_layers = pick(given->gpu_layers, dflt->gpu_layers, MATRIX_DEFAULT_GPU_LAYERS);
  mm->prompt_cache_ram = given->prompt_cache_ram != UNSET_SIZE  ? given->prompt_cache_ram
                         : dflt->prompt_cache_ram != UNSET_SIZE ? dflt->prompt_cache_ram
                                                                : MATRIX_DEFAULT_PROMPT_CACHE_RAM;
  mm->prompt_cache_disk = given->prompt_cache_disk != UNSET_SIZE ? given->prompt_cache_disk
                          : dflt->prompt_cache_disk != UNSET_SIZE
                              ? dflt->prompt_cache_disk
                              : MATRIX_DEFAULT_PROMPT_CACHE_DISK;
  mm->engine = MATRIX_ENGINE_LLAMA;
  return 0;
}

int mx_model_push(matrix *m, matrix_model *mm) {
  if (m->n_models >= MATRIX_MAX_MODELS) return -1;
  matrix_model *nm = realloc(m->models, (m->n_models + 1) * sizeof *nm);
  if (!nm) return -1;
  m->models = nm;
  nm[m->n_models++] = *mm;
  memset(mm, 0, sizeof *mm);
  return 0;
}

int mx_check_name(loader *l, const yaml_node_t *n, const char *path, const char *name,
                  const matrix_model *self) {
  if (!mx_name_ok(name))
    return mx_at(l, n, "%s: '%s' is not a valid name (1..%d characters, no spaces)", path, name,
                 NAME_MAX_LEN);
  const matrix_model *o = taken_by(l->m, name);
  if (o)
    return mx_at(l, n, "%s: '%s' is already used by model '%s' (%s)", path, name, o->name,
                 o->source);
  if (self && self->name && !strcmp(self->name, name))
    return mx_at(l, n, "%s: '%s' is already this model's name", path, name);
  for (size_t i = 0; self && i < self->n_aliases; i++)
    if (!strcmp(self->aliases[i], name)) return mx_at(l, n, "%s: '%s' is listed twice", path, name);
  return 0;
}

/* A whisper.cpp model starts with ggml's file magic 0x67676d6c (little endian). */
static bool whisper_magic_ok(const char *path) {
  unsigned char b[4];
  FILE *f = fopen(path, "rb");
  bool ok =
      f && fread(b, 1, 4, f) == 4 && b[0] == 0x6c && b[1] == 0x6d && b[2] == 0x67 && b[3] == 0x67;
  if (f) fclose(f);
  return ok;
}

/* vad_model: a Silero VAD model in whisper.cpp's ggml format, relative to the config like file. */
static int engine_vad_model(loader *l, const yaml_node_t *n, const char *path, char **out) {
  char p[128], joined[PATH_MAX], real[PATH_MAX];
  const char *s;
  snprintf(p, sizeof p, "%s.vad_model", path);
  if (mx_want_str(l, n, p, &s)) return -1;
  if (!*s || mx_join_path(joined, sizeof joined, l->dir, s))
    return mx_at(l, n, "%s: '%s' is not a usable path", p, s);
  if (!realpath(joined, real))
    return mx_at(l, n, "%s: cannot open '%s': %s", p, joined, strerror(errno));
  if (!whisper_magic_ok(real))
    return mx_at(l, n, "%s: '%s' is not a whisper.cpp VAD model (ggml magic)", p, joined);
  if (!(*out = strdup(real))) return mx_oom(l);
  return 0;
}

/* ---- the model's keys --------------------------------------------------------------------------
 * One row per key, in the order they are checked. The settings come first; then external (read by
 * model_external, which places a third-party server); then the keys of a model with a file, read
 * once the engine is known (a fileless model ignores them, as it always has). */

enum {
  M_NAME,
  M_ALIASES,
  M_ENGINE,
  M_POOLING,
  M_TEMPLATE,
  M_DETERMINISTIC,
  M_PIN,
  M_PRELOAD,
  M_PRIORITY,
  M_REQUEST_KEEP_ALIVE,
  M_MAX_QUEUE,
  M_CPU_MOE,
  M_N_CPU_MOE,
  M_CAPS,
  M_OPTS, /* then the O_N shared settings */
  M_MMPROJ = M_OPTS + O_N,
  M_TRANSCRIBE_PROMPT,
  M_RPC,
  M_EXTERNAL, /* the settings end here */
  M_VOICES,   /* the keys of a model with a file start here */
  M_VOICE_UPLOAD,
  M_VAD_MODEL,
  M_FILE,
  M_N
};

/* One model being read: the rows fill it, in order. */
typedef struct model_ctx {
  const yaml_node_t *n;    /* the model's mapping */
  yaml_node_t *v[M_N];     /* each row's value, NULL when absent */
  const char *path;        /* "models[i]" */
  char src[PATH_MAX + 32]; /* "config:line": where it is defined */
  matrix_model mm;
  opts given;           /* the shared settings as written here (UNSET: not given) */
  int engine;           /* enum matrix_engine */
  unsigned caps;        /* capabilities as written; 0 = from the file */
  unsigned mmproj_caps; /* what the projector takes: MATRIX_CAP_VISION, MATRIX_CAP_AUDIO */
  bool cpu_moe;         /* cpu_moe: true (checked against the file in moe_placement) */
  int n_cpu_moe;        /* n_cpu_moe: N (0 = not given) */
  bool mmproj_speech;   /* the projector generates audio: a text-to-speech model */
} model_ctx;

static const char *const poolings[] = {"mean", "cls", "last", "none", "rank"};

static int key_name(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  const char *s;
  if (mx_want_str(l, v, p, &s) || mx_check_name(l, v, p, s, NULL)) return -1;
  if (!(c->mm.name = strdup(s))) return mx_oom(l);
  return 0;
}

static int key_aliases(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  char **al;
  size_t nal;
  if (mx_want_str_list(l, v, p, &al, &nal, NULL, NULL)) return -1;
  /* check each against the namespace, this model's name and the aliases before it */
  yaml_node_item_t *it = v->type == YAML_SEQUENCE_NODE ? v->data.sequence.items.start : NULL;
  c->mm.aliases = al;
  for (size_t i = 0; i < nal; i++) {
    char ap[160];
    snprintf(ap, sizeof ap, "%s[%zu]", p, i);
    c->mm.n_aliases = i; /* the aliases before this one */
    if (mx_check_name(l, mx_node(l, it[i]), ap, al[i], &c->mm)) {
      c->mm.n_aliases = nal;
      return -1;
    }
  }
  c->mm.n_aliases = nal;
  return 0;
}

static int key_caps(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  char g[64];
  const char *s;
  if (mx_want_kind(l, v, p, YAML_SEQUENCE_NODE)) return -1;
  if (v->data.sequence.items.start == v->data.sequence.items.top)
    return mx_at(l, v, "%s: empty list (leave the key out to take them from the GGUF)", p);
  size_t i = 0;
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
       it++, i++) {
    yaml_node_t *e = mx_node(l, *it);
    char ip[160];
    snprintf(ip, sizeof ip, "%s[%zu]", p, i);
    if (!e || mx_want_str(l, e, ip, &s)) return -1;
    int cap = cap_parse(s);
    if (cap < 0)
      return mx_at(l, e,
                   "%s: unknown capability %s (known: chat, completion, embed, rerank, transcribe, "
                   "speech, vision, audio)",
                   ip, mx_got(e, g, sizeof g));
    c->caps |= (unsigned)cap;
  }
  return 0;
}

int mx_mmproj_probe(const char *real, unsigned *caps, bool *speech, char *type, size_t type_cap,
                    char *err, size_t errlen) {
  ghdr_info mi;
  char merr[256];
  *caps = 0;
  *speech = false;
  if (ghdr_read_info(real, &mi, merr, sizeof merr)) {
    mx_set_err(err, errlen, "is not a readable GGUF: %s", merr);
    return -1;
  }
  if (!mi.is_mmproj) {
    mx_set_err(err, errlen, "is not a multimodal projector (no clip.* keys)");
    return -1;
  }
  /* clip.has_*_encoder say which; projectors from before audio support have neither key */
  if (mi.has_audio_encoder == 1 && !mi.gen_audio) /* Pocket-TTS has a voice encoder: not input */
    *caps |= MATRIX_CAP_AUDIO;
  if (mi.has_vision_encoder == 1 ||
      (mi.has_vision_encoder < 0 && mi.has_audio_encoder != 1 && !mi.gen_audio))
    *caps |= MATRIX_CAP_VISION;
  if (!*caps && !mi.gen_audio) {
    mx_set_err(err, errlen, "has neither a vision nor an audio encoder");
    return -1;
  }
  *speech = mi.gen_audio;
  snprintf(type, type_cap, "%s", mi.projector_type);
  return 0;
}

/* The projector: a GGUF next to the model, loaded by the worker through mtmd. */
static int mmproj_read(loader *l, model_ctx *c, const yaml_node_t *v, const char *p) {
  char mj[PATH_MAX], mr[PATH_MAX], merr[256];
  struct stat mst;
  const char *s;
  if (mx_want_str(l, v, p, &s)) return -1;
  if (!*s || mx_join_path(mj, sizeof mj, l->dir, s))
    return mx_at(l, v, "%s: '%s' is not a usable path", p, s);
  errno = 0;
  if (!realpath(mj, mr) || stat(mr, &mst) != 0 || !S_ISREG(mst.st_mode))
    return mx_at(l, v, "%s: cannot open '%s': %s", p, mj, errno ? strerror(errno) : "not a file");
  if (mx_mmproj_probe(mr, &c->mmproj_caps, &c->mmproj_speech, c->mm.mmproj_type,
                      sizeof c->mm.mmproj_type, merr, sizeof merr))
    return mx_at(l, v, "%s: '%s' %s", p, mj, merr);
  if (!(c->mm.mmproj = strdup(mr))) return mx_oom(l);
  c->mm.mmproj_bytes = (long long)mst.st_size;
  return 0;
}

/* mmproj (MX_ALWAYS: v is NULL without one), then the capabilities that need a projector. */
static int key_mmproj(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  if (v && mmproj_read(l, c, v, p)) return -1;
  if ((c->caps & MATRIX_CAP_SPEECH) && c->engine == MATRIX_ENGINE_LLAMA && !c->mmproj_speech)
    return mx_at(l, c->v[M_CAPS],
                 "%s.capabilities: speech on engine llama needs an mmproj with an audio generator "
                 "(clip.has_gen_audio_encoder)",
                 c->path);
  if ((c->caps & MATRIX_CAP_VISION) && !(c->mmproj_caps & MATRIX_CAP_VISION))
    return mx_at(l, c->v[M_CAPS], "%s.capabilities: vision needs an mmproj%s", c->path,
                 c->mm.mmproj ? " with a vision encoder" : "");
  if ((c->caps & MATRIX_CAP_AUDIO) && !(c->mmproj_caps & MATRIX_CAP_AUDIO))
    return mx_at(l, c->v[M_CAPS], "%s.capabilities: audio needs an mmproj%s", c->path,
                 c->mm.mmproj ? " with an audio encoder" : "");
  return 0;
}

static int key_transcribe_prompt(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  if (!(c->mmproj_caps & MATRIX_CAP_AUDIO))
    return mx_at(l, v, "%s: only for a model whose mmproj takes audio", p);
  return mx_want_str_dup(l, v, p, &c->mm.transcribe_prompt);
}

static int key_voices(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  if (c->engine != MATRIX_ENGINE_LLAMA || !c->mmproj_speech)
    return mx_at(l, v,
                 "%s: only for engine llama with a speech mmproj (clip.has_gen_audio_encoder)", p);
  return mx_load_voices(l, v, c->path, &c->mm);
}

static int key_voice_upload(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  if (mx_want_bool(l, v, p, &c->mm.voice_upload)) return -1;
  if (c->mm.voice_upload && (c->engine != MATRIX_ENGINE_LLAMA || !c->mmproj_speech))
    return mx_at(l, v,
                 "%s: only for engine llama with a speech mmproj (clip.has_gen_audio_encoder)", p);
  return 0;
}

static bool endpoint_ok(const char *s) {
  char err[8];
  return sy_endpoint_parse(s, NULL, 0, NULL, err, sizeof err) == 0;
}

/* rpc: ggml RPC servers for engine llama, "host:port" each, none twice (docs/CONFIG.md). */
static int key_rpc(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  if (c->engine != MATRIX_ENGINE_LLAMA) return mx_at(l, v, "%s: only for engine: llama", p);
  if (mx_want_str_list(l, v, p, &c->mm.rpc, &c->mm.n_rpc, endpoint_ok,
                       "RPC server (host:port: a name or an IPv4 address, a port 1..65535)"))
    return -1;
  if (c->mm.n_rpc == 0)
    return mx_at(l, v, "%s: empty list (leave the key out to run on this machine only)", p);
  if (c->mm.n_rpc > MATRIX_MAX_RPC)
    return mx_at(l, v, "%s: %zu servers (at most %d)", p, c->mm.n_rpc, MATRIX_MAX_RPC);
  for (size_t i = 0; i < c->mm.n_rpc; i++)
    for (size_t k = 0; k < i; k++)
      if (!strcmp(c->mm.rpc[i], c->mm.rpc[k]))
        return mx_at(l, v, "%s: '%s' is listed twice", p, c->mm.rpc[i]);
  return 0;
}

/* Only the engine is checked here: the VAD model itself is read after the file (key_file). */
static int key_vad_model(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  const model_ctx *c = dst;
  if (c->engine != MATRIX_ENGINE_WHISPER) return mx_at(l, v, "%s: only for engine: whisper", p);
  return 0;
}

/* cpu_moe / n_cpu_moe against the GGUF: one of them, on a model with experts; sets mm->cpu_moe
 * and the experts' size the memory estimate moves to the host (sched/footprint.h). */
static int moe_placement(loader *l, model_ctx *c, const ghdr_info *gi, const char *file) {
  matrix_model *mm = &c->mm;
  if (!c->cpu_moe && c->n_cpu_moe == 0) return 0;
  const yaml_node_t *at = c->cpu_moe ? c->v[M_CPU_MOE] : c->v[M_N_CPU_MOE];
  if (c->cpu_moe && c->n_cpu_moe > 0)
    return mx_at(l, c->v[M_N_CPU_MOE], "%s: give cpu_moe or n_cpu_moe, not both", c->path);
  if (gi->expert_count <= 0)
    return mx_at(l, at, "%s.%s: '%s' has no experts (no %s.expert_count)", c->path,
                 c->cpu_moe ? "cpu_moe" : "n_cpu_moe", file, gi->arch[0] ? gi->arch : "<arch>");
  mm->cpu_moe = c->cpu_moe ? MATRIX_CPU_MOE_ALL : c->n_cpu_moe;
  /* as many layers as the model has (or more) is all of them */
  if (mm->cpu_moe > 0 && gi->block_count > 0 && mm->cpu_moe >= gi->block_count)
    mm->cpu_moe = MATRIX_CPU_MOE_ALL;
  return 0;
}

/* The file last: its errors are the costliest to find. Places the model (engine, capabilities,
 * the settings from the file's header). */
static int key_file(loader *l, void *dst, const yaml_node_t *v, const char *p) {
  model_ctx *c = dst;
  matrix_model *mm = &c->mm;
  const char *s;
  char joined[PATH_MAX], real[PATH_MAX], gerr[256];
  struct stat st;
  if (mx_want_str(l, v, p, &s)) return -1;
  if (!*s || mx_join_path(joined, sizeof joined, l->dir, s))
    return mx_at(l, v, "%s: '%s' is not a usable path", p, s);
  if (!realpath(joined, real) || stat(real, &st) != 0)
    return mx_at(l, v, "%s: cannot open '%s': %s", p, joined, strerror(errno));
  if (c->engine != MATRIX_ENGINE_LLAMA && (c->cpu_moe || c->n_cpu_moe))
    return mx_at(l, c->v[c->cpu_moe ? M_CPU_MOE : M_N_CPU_MOE],
                 "%s.%s: only for engine llama (a GGUF with experts)", c->path,
                 c->cpu_moe ? "cpu_moe" : "n_cpu_moe");
  if (c->engine !=
      MATRIX_ENGINE_LLAMA) { /* whisper.cpp's ggml files (and espeak's data): not GGUF */
    if (c->engine == MATRIX_ENGINE_WHISPER && !whisper_magic_ok(real))
      return mx_at(l, v, "%s: '%s' is not a whisper.cpp model (ggml magic)", p, joined);
    if (c->v[M_VAD_MODEL] && engine_vad_model(l, c->v[M_VAD_MODEL], c->path, &mm->vad_model))
      return -1;
    ghdr_info none = {0};
    if (mx_model_finish(mm, &c->given, &l->defaults, &none, real, (long long)st.st_size))
      return mx_oom(l);
    mm->engine = (enum matrix_engine)c->engine;
    mm->caps = c->caps                              ? c->caps
               : c->engine == MATRIX_ENGINE_WHISPER ? MATRIX_CAP_TRANSCRIBE
                                                    : MATRIX_CAP_SPEECH;
    return 0;
  }
  ghdr_info gi;
  if (ghdr_read_info(real, &gi, gerr, sizeof gerr))
    return mx_at(l, v, "%s: '%s' is not a readable GGUF: %s", p, joined, gerr);
  if (gi.is_mmproj || gi.is_adapter)
    return mx_at(l, v, "%s: '%s' is %s, not a model", p, joined,
                 gi.is_mmproj ? "a multimodal projector (mmproj)" : "an adapter");
  if (gi.n_tensors == 0)
    return mx_at(l, v, "%s: '%s' has no tensors (a vocabulary-only GGUF?)", p, joined);
  if (mx_model_finish(mm, &c->given, &l->defaults, &gi, real, (long long)st.st_size))
    return mx_oom(l);
  if (moe_placement(l, c, &gi, joined)) return -1;
  mm->caps = c->caps ? c->caps : mx_caps_default(&gi, mm->pooling, mm->chat_template);
  /* a speech projector (docs/TTS.md) makes a text-to-speech model: its backbone's text is noise */
  if (c->mmproj_speech && !c->caps) mm->caps = MATRIX_CAP_SPEECH;
  /* a speech worker speaks one request at a time (a FIFO behind it): more sequences only cost KV */
  if (c->mmproj_speech && c->given.parallel == UNSET) mm->parallel = 1;
  mx_caps_add_mmproj(mm, c->mmproj_caps, c->caps != 0);
  return 0;
}

void mx_caps_add_mmproj(matrix_model *mm, unsigned mmproj_caps, bool caps_given) {
  mm->caps |= mmproj_caps;
  /* an audio LLM also answers /v1/audio/transcriptions (a chat with the audio and an instruction)
   */
  if ((mmproj_caps & MATRIX_CAP_AUDIO) && (mm->caps & MATRIX_CAP_CHAT) && !caps_given)
    mm->caps |= MATRIX_CAP_TRANSCRIBE;
}

/* The shared settings, as rows of a table whose struct has an opts at offset b (f: the index of
 * the first row). Absent means UNSET: the defaults section, else the built-in default,
 * decides (mx_model_finish). */
/* clang-format off */
#define OPT_ROWS(f, b)                                                                         \
  [(f) + O_CONTEXT] = {.name = "context", .off = (b) + offsetof(opts, context),                \
      .type = MX_INT, .lo = MATRIX_MIN_CONTEXT, .hi = MATRIX_MAX_CONTEXT, .dflt = UNSET},      \
  [(f) + O_PARALLEL] = {.name = "parallel", .off = (b) + offsetof(opts, parallel),             \
      .type = MX_INT, .lo = MATRIX_MIN_PARALLEL, .hi = MATRIX_MAX_PARALLEL, .dflt = UNSET},    \
  [(f) + O_KEEP_ALIVE] = {.name = "keep_alive", .off = (b) + offsetof(opts, keep_alive),       \
      .type = MX_DURATION, .dflt = UNSET},                                                     \
  [(f) + O_THREADS] = {.name = "threads", .off = (b) + offsetof(opts, threads),                \
      .type = MX_INT, .lo = MATRIX_MIN_THREADS, .hi = MATRIX_MAX_THREADS, .dflt = UNSET},      \
  [(f) + O_BATCH] = {.name = "batch", .off = (b) + offsetof(opts, batch),                      \
      .type = MX_INT, .lo = MATRIX_MIN_BATCH, .hi = MATRIX_MAX_BATCH, .dflt = UNSET},          \
  [(f) + O_GPU_LAYERS] = {.name = "gpu_layers", .off = (b) + offsetof(opts, gpu_layers),       \
      .type = MX_INT, .lo = MATRIX_MIN_GPU_LAYERS, .hi = MATRIX_MAX_GPU_LAYERS, .dflt = UNSET}, \
  [(f) + O_CACHE_RAM] = {.name = "prompt_cache_ram",                                           \
      .off = (b) + offsetof(opts, prompt_cache_ram), .type = MX_SIZE, .lo = 0,                 \
      .hi = MATRIX_MAX_PROMPT_CACHE, .dflt = UNSET},                                           \
  [(f) + O_CACHE_DISK] = {.name = "prompt_cache_disk",                                         \
      .off = (b) + offsetof(opts, prompt_cache_disk), .type = MX_SIZE, .lo = 0,                \
      .hi = MATRIX_MAX_PROMPT_CACHE, .dflt = UNSET}
/* clang-format on */

const mx_key mx_opt_keys[O_N] = {OPT_ROWS(0, 0)};

#define IN_CTX(field) offsetof(model_ctx, field)
static const mx_key model_keys[M_N] = {
    /* mm.name; unique among names and aliases */
    [M_NAME] = {.name = "name", .type = MX_CUSTOM, .parse = key_name, .flags = MX_REQUIRED},
    /* mm.aliases: a list of names, each unique */
    [M_ALIASES] = {.name = "aliases", .type = MX_CUSTOM, .parse = key_aliases},
    [M_ENGINE] = {.name = "engine",
                  .type = MX_ENUM,
                  .dflt = MATRIX_ENGINE_LLAMA,
                  .off = IN_CTX(engine),
                  .choices = engine_names,
                  .n_choices = MATRIX_N_ENGINES,
                  .what = "engine"},
    [M_POOLING] = {.name = "pooling",
                   .type = MX_ENUM_STR,
                   .off = IN_CTX(mm.pooling),
                   .choices = poolings,
                   .n_choices = sizeof poolings / sizeof poolings[0],
                   .what = "pooling"},
    [M_TEMPLATE] = {.name = "chat_template", .type = MX_STRING, .off = IN_CTX(mm.chat_template)},
    [M_DETERMINISTIC] = {.name = "deterministic",
                         .type = MX_BOOL,
                         .dflt = false,
                         .off = IN_CTX(mm.deterministic)},
    [M_PIN] = {.name = "pin", .type = MX_BOOL, .dflt = false, .off = IN_CTX(mm.pin)},
    [M_PRELOAD] = {.name = "preload", .type = MX_BOOL, .dflt = false, .off = IN_CTX(mm.preload)},
    [M_PRIORITY] = {.name = "priority",
                    .type = MX_INT,
                    .lo = MATRIX_MIN_PRIORITY,
                    .hi = MATRIX_MAX_PRIORITY,
                    .dflt = MATRIX_DEFAULT_PRIORITY,
                    .off = IN_CTX(mm.priority)},
    [M_REQUEST_KEEP_ALIVE] = {.name = "request_keep_alive",
                              .type = MX_BOOL,
                              .dflt = false,
                              .off = IN_CTX(mm.request_keep_alive)},
    [M_MAX_QUEUE] = {.name = "max_queue",
                     .type = MX_INT,
                     .lo = MATRIX_MIN_MAX_QUEUE,
                     .hi = MATRIX_MAX_MAX_QUEUE,
                     .dflt = MATRIX_DEFAULT_MAX_QUEUE,
                     .off = IN_CTX(mm.max_queue)},
    /* experts in host RAM (llama.cpp's tensor override for ffn_*_exps, as llama-server's
     * --cpu-moe / --n-cpu-moe); checked against the file in moe_placement */
    [M_CPU_MOE] = {.name = "cpu_moe", .type = MX_BOOL, .dflt = false, .off = IN_CTX(cpu_moe)},
    [M_N_CPU_MOE] = {.name = "n_cpu_moe",
                     .type = MX_INT,
                     .lo = 0,
                     .hi = MATRIX_MAX_N_CPU_MOE,
                     .dflt = 0,
                     .off = IN_CTX(n_cpu_moe)},
    /* caps: a non-empty list of capability names; absent = from the file */
    [M_CAPS] = {.name = "capabilities", .type = MX_CUSTOM, .parse = key_caps},
    OPT_ROWS(M_OPTS, IN_CTX(given)),
    /* mm.mmproj, mmproj_caps, mmproj_speech; then checks caps against them (so: always) */
    [M_MMPROJ] = {.name = "mmproj",
                  .type = MX_CUSTOM,
                  .parse = key_mmproj,
                  .flags = MX_NULL_ABSENT | MX_ALWAYS},
    /* mm.transcribe_prompt: only with an audio projector */
    [M_TRANSCRIBE_PROMPT] = {.name = "transcribe_prompt",
                             .type = MX_CUSTOM,
                             .parse = key_transcribe_prompt},
    /* mm.rpc: engine llama only; a list of host:port */
    [M_RPC] = {.name = "rpc", .type = MX_CUSTOM, .parse = key_rpc},
    /* mm.ext: read by model_external, never by mx_keys_read */
    [M_EXTERNAL] = {.name = "external", .type = MX_CUSTOM, .parse = NULL},
    /* mm.voice_*: only on engine llama with a speech projector */
    [M_VOICES] = {.name = "voices",
                  .type = MX_CUSTOM,
                  .parse = key_voices,
                  .flags = MX_NULL_ABSENT},
    [M_VOICE_UPLOAD] = {.name = "voice_upload", .type = MX_CUSTOM, .parse = key_voice_upload},
    /* mm.vad_model: engine whisper only (read with the file) */
    [M_VAD_MODEL] = {.name = "vad_model", .type = MX_CUSTOM, .parse = key_vad_model},
    /* mm.file and everything its header tells */
    [M_FILE] = {.name = "file", .type = MX_CUSTOM, .parse = key_file, .flags = MX_REQUIRED},
};

/* A model with engine: external (keys that need a file or a GGUF are refused). */
static int model_external(loader *l, model_ctx *c) {
  yaml_node_t *const *v = c->v;
  if (c->engine != MATRIX_ENGINE_EXTERNAL)
    return mx_at(l, v[M_EXTERNAL], "%s.external: only for engine: external", c->path);
  if (!v[M_EXTERNAL])
    return mx_at(l, c->n,
                 "%s: engine: external needs an 'external' map (argv, port, health, routes...)",
                 c->path);
  static const int no[] = {
      M_FILE,          M_POOLING, M_TEMPLATE,  M_MMPROJ, M_VAD_MODEL, M_TRANSCRIBE_PROMPT,
      M_DETERMINISTIC, M_CPU_MOE, M_N_CPU_MOE, M_RPC};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (v[no[i]])
      return mx_at(l, v[no[i]], "%s.%s: not for engine: external", c->path, model_keys[no[i]].name);
  if (mx_load_external(l, v[M_EXTERNAL], c->path, &c->mm.ext)) return -1;
  ghdr_info none = {0};
  if (mx_model_finish(&c->mm, &c->given, &l->defaults, &none, "", 0)) return mx_oom(l);
  c->mm.engine = MATRIX_ENGINE_EXTERNAL;
  c->mm.parallel = c->given.parallel != UNSET ? c->given.parallel : 1;
  c->mm.caps = c->caps ? c->caps : mx_ext_caps(c->mm.ext);
  return 0;
}

int mx_load_model(loader *l, const yaml_node_t *n, size_t idx) {
  char path[64];
  snprintf(path, sizeof path, "models[%zu]", idx);
  model_ctx c = {.n = n, .path = path};
  if (mx_want_keys(l, n, path, model_keys, M_N, c.v)) return -1;
  int rc = -1;
  snprintf(c.src, sizeof c.src, "%s:%zu", l->m->path ? l->m->path : l->file,
           n->start_mark.line + 1);
  if (mx_keys_read(l, model_keys, M_EXTERNAL, c.v, n, path, &c)) goto out;
  if (c.engine == MATRIX_ENGINE_EXTERNAL || c.v[M_EXTERNAL]) { /* a third-party server: no file */
    if (model_external(l, &c)) goto out;
  } else if (c.engine == MATRIX_ENGINE_ESPEAK && !c.v[M_FILE]) { /* the built-in voice: no file */
    ghdr_info none = {0};
    if (mx_model_finish(&c.mm, &c.given, &l->defaults, &none, "", 0)) goto oom;
    c.mm.engine = MATRIX_ENGINE_ESPEAK;
    c.mm.caps = c.caps ? c.caps : MATRIX_CAP_SPEECH;
  } else if (mx_keys_read(l, model_keys + M_VOICES, M_N - M_VOICES, c.v + M_VOICES, n, path, &c)) {
    goto out;
  }
  if (!(c.mm.source = strdup(c.src))) goto oom;
  if (mx_model_push(l->m, &c.mm)) {
    mx_at(l, n, "%s: too many models (limit %d)", path, MATRIX_MAX_MODELS);
    goto out;
  }
  rc = 0;
  goto out;
oom:
  mx_oom(l);
out:
  mx_model_clear(&c.mm);
  return rc;
}
