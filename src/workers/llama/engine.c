/* engine.c — everything that sets up llama.cpp for the worker: routing engine logs into sy_log,
 * handling `load` (the model's RPC servers, model, one context, the projector, the mode's module,
 * `ready`) and freeing it all. Calls llama.h, mtmd.h and gguf.h, and, below it in the worker,
 * rpc.c, chat.c, embed.c, gen.c and speech.c (their init/free); nothing below calls back into it
 * (tokenising is tok.c, the chat prompt chat.c). Must never let a load field reach the engine
 * unchecked, and never free the model while the context still exists. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audio_check.h"
#include "clock.h"
#include "ggml-backend.h"
#include "endpoint.h"
#include "ggml-rpc.h"
#include "gguf.h"
#include "log.h"
#include "mtmd-helper.h"
#include "utf8.h"
#include "worker.h"

/* ---- engine logs -------------------------------------------------------------------------- */

static void engine_log_flush(engine_log_line *l) {
  if (l->len > 0) sy_log((enum sy_log_level)l->level, "engine: %.*s", (int)l->len, l->buf);
  l->len = 0;
}

/* llama.cpp/ggml hand over text in pieces (GGML_LOG_LEVEL_CONT continues the previous line);
 * assemble whole lines, debug for chatter, warn for warnings and errors. */
static void engine_log_cb(enum ggml_log_level level, const char *text, void *ud) {
  engine_log_line *l = ud;
  if (!text) return;
  pthread_mutex_lock(&l->mu);
  if (level != GGML_LOG_LEVEL_CONT) {
    engine_log_flush(l);
    l->level = level >= GGML_LOG_LEVEL_WARN ? SY_LOG_WARN : SY_LOG_DEBUG;
  }
  if (l->level <= (int)sy_log_get_level()) {
    for (const char *p = text; *p; p++) {
      if (*p == '\n') {
        engine_log_flush(l);
      } else {
        if (l->len == sizeof l->buf - 1) engine_log_flush(l);
        l->buf[l->len++] = *p;
      }
    }
  }
  pthread_mutex_unlock(&l->mu);
}

void engine_log_install(worker *w) {
  pthread_mutex_init(&w->logline.mu, NULL);
  w->logline.len = 0;
  w->logline.level = SY_LOG_DEBUG;
  llama_log_set(engine_log_cb, &w->logline);
  mtmd_log_set(engine_log_cb, &w->logline);
  mtmd_helper_log_set(engine_log_cb, &w->logline);
}

/* ---- small helpers ----------------------------------------------------------------------- */

/* An optional integer field: absent or null → def. Returns -1 when present with another type
 * or a non-integral number. */
static int engine_opt_int(const json_t *hdr, const char *key, int64_t def, int64_t *out) {
  const json_t *v = json_object_get(hdr, key);
  if (!v || json_is_null(v)) {
    *out = def;
    return 0;
  }
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 0;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (isfinite(d) && d == floor(d) && fabs(d) < 9e15) {
      *out = (int64_t)d;
      return 0;
    }
  }
  return -1;
}

/* An optional string field: absent or null → NULL. Returns -1 when present with another type. */
static int engine_opt_str(const json_t *hdr, const char *key, const char **out) {
  const json_t *v = json_object_get(hdr, key);
  *out = NULL;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return -1;
  *out = json_string_value(v);
  return 0;
}

static int engine_default_threads(void) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}

static const char *engine_pooling_name(enum llama_pooling_type p) {
  switch (p) {
    case LLAMA_POOLING_TYPE_MEAN:
      return "mean";
    case LLAMA_POOLING_TYPE_CLS:
      return "cls";
    case LLAMA_POOLING_TYPE_LAST:
      return "last";
    case LLAMA_POOLING_TYPE_RANK:
      return "rank";
    case LLAMA_POOLING_TYPE_NONE:
      return "none";
    default:
      return "unspecified";
  }
}

/* Model loading may take long: give up early when the daemon is gone. */
/* Load progress: a "progress" frame (id 0) every 10 %, so the daemon can show it; false aborts
 * the load when the daemon is gone. */
static bool engine_progress(float progress, void *ud) {
  worker *w = ud;
  int pct = (int)(progress * 100.0f);
  if (pct >= w->load_pct + 10 || (pct == 100 && w->load_pct < 100)) {
    w->load_pct = pct;
    wio_send(&w->out,
             json_pack("{s:s, s:i, s:f}", "op", "progress", "id", 0, "progress", (double)progress),
             NULL, 0);
  }
  return !wio_inbox_ended(&w->in);
}

/* Abort a running llama_decode when the daemon is gone (we exit right after). */
static bool engine_abort(void *ud) {
  worker *w = ud;
  return wio_inbox_ended(&w->in);
}

/* Whether the projector GGUF declares an audio generator (clip.has_gen_audio_encoder), read
 * before the context is made: a speech model's context differs (embeddings on). */
static bool engine_mmproj_gen_audio(const char *path) {
  struct gguf_init_params gp = {.no_alloc = true, .ctx = NULL};
  struct gguf_context *g = gguf_init_from_file(path, gp);
  if (!g) return false;
  int64_t k = gguf_find_key(g, "clip.has_gen_audio_encoder");
  bool yes = k >= 0 && gguf_get_kv_type(g, k) == GGUF_TYPE_BOOL && gguf_get_val_bool(g, k);
  gguf_free(g);
  return yes;
}

/* Whether mtmd would abort encoding the projector's audio (audio_check.h), from its type
 * (clip.audio.projector_type, else clip.projector_type) and clip.audio.projector.stack_factor:
 * 1 with the reason in why, else 0 (also when the file cannot be read: mtmd has loaded it). */
static int engine_mmproj_audio_refused(const char *path, char *why, size_t why_len) {
  struct gguf_init_params gp = {.no_alloc = true, .ctx = NULL};
  struct gguf_context *g = gguf_init_from_file(path, gp);
  if (!g) return 0;
  const char *proj = NULL;
  static const char *const keys[] = {"clip.audio.projector_type", "clip.projector_type"};
  for (int i = 0; i < 2 && !proj; i++) {
    int64_t k = gguf_find_key(g, keys[i]);
    if (k >= 0 && gguf_get_kv_type(g, k) == GGUF_TYPE_STRING) proj = gguf_get_val_str(g, k);
  }
  long stack = 0;
  int64_t k = gguf_find_key(g, "clip.audio.projector.stack_factor");
  if (k >= 0 && gguf_get_kv_type(g, k) == GGUF_TYPE_UINT32) stack = (long)gguf_get_val_u32(g, k);
  int rc = audio_check_stack(proj, stack, why, why_len);
  gguf_free(g);
  return rc;
}

/* The id of Qwen3-ASR's answer separator, the control token "<asr_text>", or -1 (chat.c). */
static llama_token engine_asr_sep(const struct llama_vocab *v) {
  static const char sep[] = "<asr_text>";
  llama_token t[2];
  int32_t n = llama_tokenize(v, sep, (int32_t)(sizeof sep - 1), t, 2, false, true);
  return n == 1 && (llama_vocab_get_attr(v, t[0]) & LLAMA_TOKEN_ATTR_CONTROL) ? t[0] : -1;
}

/* ---- load -------------------------------------------------------------------------------- */

#define ENGINE_FAIL(status, ...)                               \
  do {                                                         \
    wio_error(&w->out, 0, status, "load_failed", __VA_ARGS__); \
    LOG_E("load failed");                                      \
    goto err;                                                  \
  } while (0)

/* Experts in host RAM (load's "cpu_moe"): llama.cpp's tensor buffer override for the expert
 * tensors, as llama-server's --cpu-moe (n < 0: every layer's) and --n-cpu-moe N (the first N
 * layers'); the rest of the model goes where n_gpu_layers puts it. At or above
 * ENGINE_CPU_MOE_MAX_LAYERS layers is every layer (llama.cpp takes at most
 * llama_max_tensor_buft_overrides() patterns). */
#define ENGINE_CPU_MOE_MAX_LAYERS 1024
#define ENGINE_EXPS_REGEX "\\.ffn_(up|down|gate|gate_up)_(ch|)exps"
#define ENGINE_EXPS_PATTERN_MAX 64

/* The override list for cpu_moe n (NULL-pattern terminated; patterns stored after it in the same
 * block: one free()), or NULL when n == 0 or out of memory (*oom then). The engine reads it only
 * while the model loads. */
static struct llama_model_tensor_buft_override *engine_cpu_moe(int64_t n, bool *oom) {
  *oom = false;
  if (n == 0) return NULL;
  size_t k = n < 0 || n >= ENGINE_CPU_MOE_MAX_LAYERS ? 1 : (size_t)n;
  struct llama_model_tensor_buft_override *ov =
      malloc((k + 1) * sizeof *ov + k * ENGINE_EXPS_PATTERN_MAX);
  if (!ov) {
    *oom = true;
    return NULL;
  }
  char *pat = (char *)(ov + k + 1);
  for (size_t i = 0; i < k; i++, pat += ENGINE_EXPS_PATTERN_MAX) {
    if (k == 1 && (n < 0 || n >= ENGINE_CPU_MOE_MAX_LAYERS))
      snprintf(pat, ENGINE_EXPS_PATTERN_MAX, "%s", ENGINE_EXPS_REGEX);
    else
      snprintf(pat, ENGINE_EXPS_PATTERN_MAX, "blk\\.%zu%s", i, ENGINE_EXPS_REGEX);
    ov[i].pattern = pat;
    ov[i].buft = ggml_backend_cpu_buffer_type();
  }
  ov[k].pattern = NULL;
  ov[k].buft = NULL;
  return ov;
}

/* What makes a saved prompt state usable by this worker (prompt_disk.h): the model file (path,
 * size, mtime), the projector, the context per sequence, the batch, the mode, GPU offload and this
 * program (a rebuilt engine may lay its state out otherwise). */
static int engine_cache_identity(worker *w, const char *path, const char *mmproj, int64_t ngl) {
  struct stat st = {0}, pst = {0}, est = {0};
  stat(path, &st);
  if (mmproj && *mmproj) stat(mmproj, &pst);
  stat("/proc/self/exe", &est);
  char id[PATH_MAX * 2 + 512];
  snprintf(
      id, sizeof id,
      "sypc1|%s|%lld|%lld.%09ld|%s|%lld|ctx=%d|batch=%d|det=%d|gpu=%d/%lld|exe=%lld.%lld.%09ld",
      path, (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
      mmproj ? mmproj : "", (long long)pst.st_size, (int)w->n_ctx_seq, (int)w->n_batch,
      (int)w->deterministic, (int)w->gpu_offload, (long long)ngl, (long long)est.st_size,
      (long long)est.st_mtim.tv_sec, est.st_mtim.tv_nsec);
  free(w->cache_identity);
  w->cache_identity = strdup(id);
  return w->cache_identity ? 0 : -1;
}

/* A GPU of this machine (an RPC server's devices are GPUs to ggml too, but not here). */
static bool engine_local_gpu(void) {
  for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
    ggml_backend_dev_t d = ggml_backend_dev_get(i);
    enum ggml_backend_dev_type t = ggml_backend_dev_type(d);
    if ((t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU) &&
        ggml_backend_dev_backend_reg(d) != ggml_backend_rpc_reg())
      return true;
  }
  return false;
}

/* The load's "rpc": absent, or a list of "host:port" RPC servers (at most GGML_RPC_MAX_SERVERS)
 * added as devices before the model loads. 0, or -1 after sending the load error. */
static int engine_rpc(worker *w, const json_t *rpc) {
  const char *eps[GGML_RPC_MAX_SERVERS];
  size_t n = 0, i;
  const json_t *v;
  char err[512];
  if (!rpc || json_is_null(rpc)) return 0;
  if (!json_is_array(rpc) || json_array_size(rpc) > GGML_RPC_MAX_SERVERS) {
    wio_error(&w->out, 0, 400, "load_failed", "load: \"rpc\" must be a list of at most %d servers",
              GGML_RPC_MAX_SERVERS);
    return -1;
  }
  json_array_foreach(rpc, i, v) {
    if (!json_is_string(v) ||
        sy_endpoint_parse(json_string_value(v), NULL, 0, NULL, err, sizeof err) != 0) {
      wio_error(&w->out, 0, 400, "load_failed", "load: \"rpc\"[%zu] must be \"host:port\"", i);
      return -1;
    }
    eps[n++] = json_string_value(v);
  }
  rpc_fatal_install(&w->out);
  if (rpc_add_servers(eps, n, err, sizeof err) != 0) {
    LOG_E("load failed: %s", err);
    wio_error(&w->out, 0, 502, "rpc_unavailable", "%s", err);
    return -1;
  }
  return 0;
}

int engine_load(worker *w, const json_t *hdr) {
  const char *path, *mode, *pooling, *tmpl, *mmproj;
  int64_t n_ctx, n_parallel, n_threads, n_batch, n_gpu_layers, cpu_moe;
  if (engine_opt_str(hdr, "model", &path) != 0 || !path || !*path)
    ENGINE_FAIL(400, "load: \"model\" must be a path");
  if (engine_opt_str(hdr, "mode", &mode) != 0) ENGINE_FAIL(400, "load: \"mode\" must be a string");
  if (engine_opt_str(hdr, "pooling", &pooling) != 0)
    ENGINE_FAIL(400, "load: \"pooling\" must be a string");
  if (engine_opt_str(hdr, "chat_template", &tmpl) != 0)
    ENGINE_FAIL(400, "load: \"chat_template\" must be a string");
  if (engine_opt_str(hdr, "mmproj", &mmproj) != 0)
    ENGINE_FAIL(400, "load: \"mmproj\" must be a path");
  if (engine_opt_int(hdr, "n_ctx", 0, &n_ctx) != 0 ||
      engine_opt_int(hdr, "n_parallel", 1, &n_parallel) != 0 ||
      engine_opt_int(hdr, "n_threads", 0, &n_threads) != 0 ||
      engine_opt_int(hdr, "n_batch", 512, &n_batch) != 0 ||
      engine_opt_int(hdr, "n_gpu_layers", -1, &n_gpu_layers) != 0)
    ENGINE_FAIL(400,
                "load: n_ctx, n_parallel, n_threads, n_batch and n_gpu_layers must be integers");
  if (engine_opt_int(hdr, "cpu_moe", 0, &cpu_moe) != 0 || cpu_moe < -1 || cpu_moe > INT32_MAX)
    ENGINE_FAIL(400, "load: \"cpu_moe\" must be -1 (every layer's experts), 0 or a layer count");

  json_t *det = json_object_get(hdr, "deterministic");
  if (det && !json_is_boolean(det)) ENGINE_FAIL(400, "load: \"deterministic\" must be a boolean");
  w->deterministic = json_is_true(det);
  json_t *cram = json_object_get(hdr, "cache_ram");
  if (cram && !(json_is_integer(cram) && json_integer_value(cram) >= 0))
    ENGINE_FAIL(400, "load: \"cache_ram\" must be a byte count >= 0");
  w->cache_ram = cram ? (int64_t)json_integer_value(cram) : 0;
  json_t *cdisk = json_object_get(hdr, "cache_disk");
  const char *cdir;
  if ((cdisk && !(json_is_integer(cdisk) && json_integer_value(cdisk) >= 0)) ||
      engine_opt_str(hdr, "cache_dir", &cdir) != 0)
    ENGINE_FAIL(400, "load: \"cache_disk\" must be a byte count >= 0, \"cache_dir\" a path");
  w->cache_disk = cdisk ? (int64_t)json_integer_value(cdisk) : 0;
  free(w->cache_dir);
  w->cache_dir = cdir && *cdir ? strdup(cdir) : NULL;
  if (!mode || strcmp(mode, "generate") == 0)
    w->mode = WK_MODE_GENERATE;
  else if (strcmp(mode, "embed") == 0)
    w->mode = WK_MODE_EMBED;
  else if (strcmp(mode, "rerank") == 0)
    w->mode = WK_MODE_RERANK; /* an embedding context with pooling rank */
  else
    ENGINE_FAIL(400, "load: unknown mode \"%.64s\" (generate, embed, rerank)", mode);

  enum llama_pooling_type want_pool = LLAMA_POOLING_TYPE_UNSPECIFIED;
  if (pooling && *pooling) {
    if (strcmp(pooling, "mean") == 0)
      want_pool = LLAMA_POOLING_TYPE_MEAN;
    else if (strcmp(pooling, "cls") == 0)
      want_pool = LLAMA_POOLING_TYPE_CLS;
    else if (strcmp(pooling, "last") == 0)
      want_pool = LLAMA_POOLING_TYPE_LAST;
    else if (strcmp(pooling, "none") == 0)
      want_pool = LLAMA_POOLING_TYPE_NONE;
    else if (strcmp(pooling, "rank") == 0 && w->mode == WK_MODE_RERANK)
      want_pool = LLAMA_POOLING_TYPE_RANK;
    else
      ENGINE_FAIL(400, "load: unknown pooling \"%.64s\" (mean, cls, last, none; rank to rerank)",
                  pooling);
  }
  if (w->mode == WK_MODE_RERANK && want_pool != LLAMA_POOLING_TYPE_UNSPECIFIED &&
      want_pool != LLAMA_POOLING_TYPE_RANK)
    ENGINE_FAIL(400, "load: a reranker pools with \"rank\", not \"%.64s\"", pooling);
  if (w->mode == WK_MODE_RERANK) want_pool = LLAMA_POOLING_TYPE_RANK;

  int64_t max_seq = (int64_t)llama_max_parallel_sequences();
  if (n_parallel <= 0) n_parallel = 1;
  if (n_parallel > max_seq)
    ENGINE_FAIL(400, "load: n_parallel must be 1..%lld", (long long)max_seq);
  if (n_ctx < 0 || n_ctx > WK_MAX_CTX) ENGINE_FAIL(400, "load: n_ctx must be 0..%d", WK_MAX_CTX);
  if (n_threads <= 0) n_threads = engine_default_threads();
  if (n_threads > 1024) n_threads = 1024;
  if (n_batch <= 0) n_batch = 512;
  if (n_batch > 65536) n_batch = 65536;
  if (n_gpu_layers < -1) n_gpu_layers = -1;
  if (n_gpu_layers > INT32_MAX) n_gpu_layers = INT32_MAX;

  LOG_I("loading %s (%s, n_ctx %lld x %lld, threads %lld, batch %lld, gpu layers %lld)", path,
        w->mode == WK_MODE_RERANK ? "rerank"
        : wk_embeds(w)            ? "embed"
                                  : "generate",
        (long long)n_ctx, (long long)n_parallel, (long long)n_threads, (long long)n_batch,
        (long long)n_gpu_layers);

  if (engine_rpc(w, json_object_get(hdr, "rpc")) != 0) goto err;

  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = (int32_t)n_gpu_layers;
  w->load_pct = -10;
  mp.progress_callback = engine_progress;
  mp.progress_callback_user_data = w;
  bool oom;
  struct llama_model_tensor_buft_override *moe_ov = engine_cpu_moe(cpu_moe, &oom);
  if (oom) ENGINE_FAIL(500, "out of memory");
  mp.tensor_buft_overrides = moe_ov;
  if (moe_ov)
    LOG_I("experts (ffn_*_exps) in host RAM: %s",
          cpu_moe < 0 || cpu_moe >= ENGINE_CPU_MOE_MAX_LAYERS ? "every layer's"
                                                              : "the first layers'");
  double t0 = sy_mono_s() * 1e3;
  w->model = llama_model_load_from_file(path, mp);
  free(moe_ov); /* read only while loading */
  if (!w->model) {
    if (wio_inbox_ended(&w->in)) goto err; /* aborted: the daemon is gone */
    ENGINE_FAIL(500, "failed to load model %.512s (see the worker log)", path);
  }
  w->vocab = llama_model_get_vocab(w->model);
  tok_cut_init(&w->cut, w->vocab, TOK_PIECE_BYTES);
  w->asr_sep = engine_asr_sep(w->vocab);
  /* not llama_supports_gpu_offload(): with the RPC backend compiled in it is true on every build */
  w->gpu_offload =
      n_gpu_layers != 0 && (engine_local_gpu() || json_array_size(json_object_get(hdr, "rpc")) > 0);

  bool has_enc = llama_model_has_encoder(w->model), has_dec = llama_model_has_decoder(w->model);
  if (has_enc && has_dec) ENGINE_FAIL(400, "encoder-decoder models are not supported");
  if (!wk_embeds(w) && !has_dec)
    ENGINE_FAIL(400, "this model cannot generate text (encoder only); load it in embed mode");

  int32_t n_ctx_train = llama_model_n_ctx_train(w->model);
  if (n_ctx == 0) n_ctx = n_ctx_train > 0 ? n_ctx_train : 4096;
  if (n_ctx > WK_MAX_CTX) n_ctx = WK_MAX_CTX;
  if (n_ctx * n_parallel > (int64_t)1 << 26)
    ENGINE_FAIL(400, "load: n_ctx x n_parallel = %lld cells is too many",
                (long long)(n_ctx * n_parallel));

  if (wk_embeds(w)) {
    /* A whole input must fit one ubatch: pooling and non-causal attention see one ubatch. */
    if (n_batch < n_ctx) n_batch = n_ctx;
  } else if (n_batch < n_parallel + 1) {
    n_batch = n_parallel + 1; /* every generating slot's token (and a pad row) fits one decode */
  }

  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)(n_ctx * n_parallel);
  cp.n_seq_max = (uint32_t)n_parallel;
  cp.n_batch = (uint32_t)n_batch;
  cp.n_ubatch = wk_embeds(w) ? (uint32_t)n_batch : (uint32_t)(n_batch < 512 ? n_batch : 512);
  w->n_threads_max = (int)n_threads;
  cp.n_threads = (int32_t)n_threads;
  cp.n_threads_batch = (int32_t)n_threads;
  cp.embeddings = wk_embeds(w);
  cp.pooling_type = wk_embeds(w) ? want_pool : LLAMA_POOLING_TYPE_UNSPECIFIED;
  cp.abort_callback = engine_abort;
  cp.abort_callback_data = w;
  cp.no_perf = true;
  /* A speech projector (docs/TTS.md) needs the backbone's hidden states: with embeddings on,
   * llama.cpp outputs every prompt row, so the output cap below must not apply. */
  bool speech = !wk_embeds(w) && mmproj && *mmproj && engine_mmproj_gen_audio(mmproj);
  if (speech) cp.embeddings = true;
  /* Generation reads one logits row per sequence per decode, plus at most one pad row (gen.c). */
  if (!wk_embeds(w) && !speech) {
    cp.n_outputs_max = (uint32_t)n_parallel + 1;
    cp.n_outputs_max_per_seq = 2;
  }
  w->ctx = llama_init_from_model(w->model, cp);
  if (!w->ctx) ENGINE_FAIL(500, "failed to create the llama context (see the worker log)");

  if (wk_embeds(w)) {
    enum llama_pooling_type got = llama_pooling_type(w->ctx);
    if (want_pool == LLAMA_POOLING_TYPE_UNSPECIFIED &&
        (got == LLAMA_POOLING_TYPE_NONE || got == LLAMA_POOLING_TYPE_RANK ||
         got == LLAMA_POOLING_TYPE_UNSPECIFIED)) {
      /* The model names no usable pooling: embeddings are the mean of the token vectors. */
      LOG_I("model pooling is %s; using mean", engine_pooling_name(got));
      llama_free(w->ctx);
      cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
      w->ctx = llama_init_from_model(w->model, cp);
      if (!w->ctx) ENGINE_FAIL(500, "failed to create the llama context (see the worker log)");
    }
    w->pooling = llama_pooling_type(w->ctx);
  } else {
    w->pooling = LLAMA_POOLING_TYPE_NONE;
    if (!llama_get_memory(w->ctx))
      ENGINE_FAIL(400, "this model has no KV memory; it cannot generate");
  }

  uint32_t ctx_seq = llama_n_ctx_seq(w->ctx);
  w->n_ctx_seq = (int32_t)(ctx_seq < (uint32_t)n_ctx ? ctx_seq : (uint32_t)n_ctx);
  w->n_parallel = (int32_t)llama_n_seq_max(w->ctx);
  w->n_batch = (int32_t)llama_n_batch(w->ctx);
  if (w->n_parallel != (int32_t)n_parallel ||
      w->n_batch < (int32_t)(wk_embeds(w) ? 1 : n_parallel + 1))
    ENGINE_FAIL(500, "the engine changed n_parallel/n_batch (%d/%d)", w->n_parallel, w->n_batch);
  w->n_embd = wk_embeds(w) ? llama_model_n_embd_out(w->model) : llama_model_n_embd(w->model);
  if (w->mode == WK_MODE_RERANK &&
      (w->pooling != LLAMA_POOLING_TYPE_RANK || llama_model_n_cls_out(w->model) < 1))
    ENGINE_FAIL(400, "this model cannot rerank (pooling %s)", engine_pooling_name(w->pooling));

  if (!wk_embeds(w)) {
    char cerr[400];
    if (chat_load(w, tmpl, cerr, sizeof cerr) != 0) ENGINE_FAIL(400, "%s", cerr);
  }

  if (!wk_embeds(w) && mmproj && *mmproj) {
    /* The projector runs where the text layers run; its compute buffer is sized by a warm-up
     * encode now, so a projector that cannot run fails the load, not the first request. */
    struct mtmd_context_params mcp = mtmd_context_params_default();
    mcp.use_gpu = w->gpu_offload && engine_local_gpu(); /* the projector stays on this box */
    mcp.n_threads = (int)n_threads;
    mcp.print_timings = false;
    mcp.warmup = true;
    w->mtmd = mtmd_init_from_file(mmproj, w->model, mcp);
    if (!w->mtmd) ENGINE_FAIL(400, "cannot load the projector %.512s (see the worker log)", mmproj);
    if (mtmd_gen_audio_get_info(w->mtmd).type != MTMD_GEN_AUDIO_TYPE_NONE) {
      /* a speech model: the backbone's hidden states feed the projector's audio generator */
      char serr[400];
      if (!speech) ENGINE_FAIL(500, "the projector's audio generator was not detected in time");
      w->mode = WK_MODE_SPEECH;
      if (speech_init(w, path, json_object_get(hdr, "voices"), serr, sizeof serr) != 0)
        ENGINE_FAIL(400, "%s", serr);
    } else {
      if (!mtmd_support_vision(w->mtmd) && !mtmd_support_audio(w->mtmd))
        ENGINE_FAIL(400, "the projector %.512s has neither a vision nor an audio encoder", mmproj);
      if (mtmd_support_audio(w->mtmd) && mtmd_get_audio_sample_rate(w->mtmd) != WK_AUDIO_RATE)
        LOG_W(
            "audio: the projector wants %d Hz audio, the daemon sends %d Hz: audio requests will "
            "be refused",
            mtmd_get_audio_sample_rate(w->mtmd), WK_AUDIO_RATE);
      if (mtmd_support_audio(w->mtmd) &&
          engine_mmproj_audio_refused(mmproj, w->audio_refused, sizeof w->audio_refused))
        LOG_W("audio: %s", w->audio_refused);
      LOG_I("projector %s loaded (%s%s%s)", mmproj, mtmd_support_vision(w->mtmd) ? "vision, " : "",
            mtmd_support_audio(w->mtmd) ? "audio, " : "", w->gpu_offload ? "GPU" : "CPU");
    }
  }

  if (!wk_embeds(w) && w->mode != WK_MODE_SPEECH &&
      engine_cache_identity(w, path, mmproj, n_gpu_layers) != 0)
    ENGINE_FAIL(500, "out of memory");
  if (wk_embeds(w) ? embed_init(w) != 0 : gen_init(w) != 0) ENGINE_FAIL(500, "out of memory");

  char arch[128] = "", desc[256] = "";
  if (llama_model_meta_val_str(w->model, "general.architecture", arch, sizeof arch) < 0)
    arch[0] = 0;
  if (llama_model_desc(w->model, desc, sizeof desc) < 0) desc[0] = 0;
  size_t arch_len, desc_len;
  char *arch_ok = sy_utf8_repair(arch, strlen(arch), &arch_len);
  char *desc_ok = sy_utf8_repair(desc, strlen(desc), &desc_len);
  json_t *ready = json_pack(
      "{s:s, s:i, s:i, s:i, s:i, s:i, s:b, s:s, s:s, s:I, s:s, s:b}", "op", "ready", "n_ctx",
      (int)w->n_ctx_seq, "n_ctx_train", (int)n_ctx_train, "n_parallel", (int)w->n_parallel,
      "n_embd", (int)w->n_embd, "n_vocab", (int)llama_vocab_n_tokens(w->vocab), "has_chat_template",
      (int)(w->chat_kind != WK_CHAT_NONE), "pooling", engine_pooling_name(w->pooling), "arch",
      arch_ok ? arch_ok : "", "model_bytes", (json_int_t)llama_model_size(w->model), "desc",
      desc_ok ? desc_ok : "", "vision",
      w->mtmd && w->mode != WK_MODE_SPEECH && mtmd_support_vision(w->mtmd));
  if (ready && w->mtmd && w->mode != WK_MODE_SPEECH && mtmd_support_audio(w->mtmd)) {
    json_object_set_new(ready, "audio", json_true());
    json_object_set_new(ready, "audio_rate", json_integer(mtmd_get_audio_sample_rate(w->mtmd)));
  }
  if (ready && w->mode == WK_MODE_SPEECH) {
    json_object_set_new(ready, "speech", json_true());
    json_object_set_new(ready, "sample_rate", json_integer(w->sample_rate));
  }
  free(arch_ok);
  free(desc_ok);
  LOG_I("ready: %s %s, n_ctx %d/seq x %d, batch %d, %s, chat template: %s (%.1f s)", arch, desc,
        w->n_ctx_seq, w->n_parallel, w->n_batch,
        wk_embeds(w) ? engine_pooling_name(w->pooling) : "generate",
        w->chat_kind == WK_CHAT_JINJA     ? "jinja"
        : w->chat_kind == WK_CHAT_BUILTIN ? "built-in"
                                          : "none",
        ((sy_mono_s() * 1e3) - t0) / 1e3);
  wio_send(&w->out, ready, NULL, 0);
  return w->out.dead ? -1 : 0;

err:
  return -1;
}

void engine_free(worker *w) {
  speech_free(w);
  gen_free(w);
  embed_free(w);
  if (w->mtmd) mtmd_free(w->mtmd);
  w->mtmd = NULL;
  if (w->ctx) llama_free(w->ctx);
  w->ctx = NULL;
  if (w->model) llama_model_free(w->model);
  w->model = NULL;
  w->vocab = NULL;
  chat_unload(w);
  free(w->cache_dir);
  free(w->cache_identity);
  w->cache_dir = w->cache_identity = NULL;
}
