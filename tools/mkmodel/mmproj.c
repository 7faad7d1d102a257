/* mmproj.c — a random-weight LLaVA-style projector GGUF, and its check through mtmd (see
 * mmproj.h). The tensor names, shapes and keys are those llama.cpp's clip loader
 * (tools/mtmd/clip.cpp, projector "mlp") reads; sizes are tiny, so the whole file is built in
 * memory (~0.3 MiB). */
#include "mmproj.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml.h"
#include "gguf.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"
#include "rng.h"

/* ---- weights ----------------------------------------------------------------------------- */

enum mp_init { MP_RANDOM, MP_ONE, MP_ZERO, MP_CONST /* every value is std */ };

typedef struct mp_builder {
  struct ggml_context *ctx;
  struct gguf_context *g;
  uint64_t seed;
  float *tmp; /* F32 staging for F16 tensors */
  size_t tmp_n;
  int failed;
} mp_builder;

/* Create, fill and register one tensor. std: the random values' standard deviation. */
static void mp_tensor(mp_builder *b, const char *name, enum ggml_type type, enum mp_init init,
                      float std, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3) {
  if (b->failed) return;
  int64_t ne[4] = {ne0, ne1, ne2, ne3};
  int nd = ne3 > 1 ? 4 : ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1;
  struct ggml_tensor *t = ggml_new_tensor(b->ctx, type, nd, ne);
  if (!t) {
    b->failed = 1;
    return;
  }
  ggml_set_name(t, name);
  size_t n = (size_t)ggml_nelements(t);
  float *v = type == GGML_TYPE_F32 ? (float *)t->data : b->tmp;
  if (n > b->tmp_n) {
    b->failed = 1;
    return;
  }
  uint64_t st = b->seed ^ mk_rng_hash(name);
  for (size_t i = 0; i < n; i++)
    v[i] = init == MP_ONE     ? 1.0f
           : init == MP_ZERO  ? 0.0f
           : init == MP_CONST ? std
                              : mk_rng_normalish(&st) * std;
  if (type == GGML_TYPE_F16) ggml_fp32_to_fp16_row(v, (ggml_fp16_t *)t->data, (int64_t)n);
  gguf_add_tensor(b->g, t);
}

/* A linear layer: F16 weight [in, out] (ggml order) and an F32 bias of zeros. */
static void mp_linear(mp_builder *b, const char *prefix, int64_t in, int64_t out) {
  char name[96];
  snprintf(name, sizeof name, "%s.weight", prefix);
  mp_tensor(b, name, GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)in), in, out, 1, 1);
  snprintf(name, sizeof name, "%s.bias", prefix);
  mp_tensor(b, name, GGML_TYPE_F32, MP_ZERO, 0, out, 1, 1, 1);
}

static void mp_norm(mp_builder *b, const char *prefix, int64_t n) {
  char name[96];
  snprintf(name, sizeof name, "%s.weight", prefix);
  mp_tensor(b, name, GGML_TYPE_F32, MP_ONE, 0, n, 1, 1, 1);
  snprintf(name, sizeof name, "%s.bias", prefix);
  mp_tensor(b, name, GGML_TYPE_F32, MP_ZERO, 0, n, 1, 1, 1);
}

/* Write the GGUF as part, sync it, rename it over out_path. 0, or -1 with err (part removed). */
static int mp_save(struct gguf_context *g, const char *out_path, const char *part,
                   uint64_t *n_bytes, char *err, size_t errlen) {
  if (!gguf_write_to_file(g, part, false)) {
    snprintf(err, errlen, "mmproj: cannot write %s", part);
    unlink(part);
    return -1;
  }
  int fd = open(part, O_RDONLY);
  off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
  if (fd < 0 || size < 0 || fsync(fd) != 0) {
    snprintf(err, errlen, "mmproj: cannot sync %s: %s", part, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(part);
    return -1;
  }
  close(fd);
  if (rename(part, out_path) != 0) {
    snprintf(err, errlen, "mmproj: cannot rename %s to %s: %s", part, out_path, strerror(errno));
    unlink(part);
    return -1;
  }
  if (n_bytes) *n_bytes = (uint64_t)size;
  return 0;
}

int mk_mmproj_write(const char *out_path, int n_embd_text, uint64_t seed, uint64_t *n_bytes,
                    char *err, size_t errlen) {
  const int E = MK_MMPROJ_EMBD, P = MK_MMPROJ_PATCH, S = MK_MMPROJ_IMAGE_SIZE;
  const int n_pos = (S / P) * (S / P) + 1; /* patches + the class embedding */
  char part[4096];
  if (n_embd_text <= 0 || n_embd_text > 65536) {
    snprintf(err, errlen, "mmproj: text width %d is out of range", n_embd_text);
    return -1;
  }
  if (snprintf(part, sizeof part, "%s.part", out_path) >= (int)sizeof part) {
    snprintf(err, errlen, "mmproj: output path too long");
    return -1;
  }
  size_t biggest = (size_t)n_embd_text * (size_t)n_embd_text;
  if (biggest < (size_t)P * P * 3 * E) biggest = (size_t)P * P * 3 * E;
  if (biggest < (size_t)E * n_embd_text) biggest = (size_t)E * n_embd_text;
  size_t mem = 64 * ggml_tensor_overhead() + 4 * biggest * sizeof(float) * 8 + (1u << 20);
  struct ggml_init_params ip = {mem, NULL, false};
  mp_builder b = {0};
  b.seed = seed * 0x2545f4914f6cdd1dULL + 0x6d6d70726f6aULL; /* not the text model's streams */
  b.ctx = ggml_init(ip);
  b.g = gguf_init_empty();
  b.tmp_n = biggest;
  b.tmp = malloc(biggest * sizeof(float));
  int rc = -1;
  if (!b.ctx || !b.g || !b.tmp) {
    snprintf(err, errlen, "mmproj: out of memory");
    goto done;
  }

  struct gguf_context *g = b.g;
  gguf_set_val_str(g, "general.architecture", "clip");
  gguf_set_val_str(g, "general.type", "mmproj");
  gguf_set_val_str(g, "general.name", "mkmodel tiny llava projector");
  char desc[200];
  snprintf(desc, sizeof desc,
           "random weights from switchyard mkmodel (seed %llu): LLaVA-style mlp projector, "
           "meaningless output",
           (unsigned long long)seed);
  gguf_set_val_str(g, "general.description", desc);
  gguf_set_val_u32(g, "general.file_type", (uint32_t)LLAMA_FTYPE_MOSTLY_F16);
  gguf_set_val_bool(g, "clip.has_vision_encoder", true);
  gguf_set_val_bool(g, "clip.has_audio_encoder", false);
  gguf_set_val_str(g, "clip.projector_type", "mlp");
  gguf_set_val_bool(g, "clip.use_gelu", false); /* CLIP's quick GELU */
  gguf_set_val_u32(g, "clip.vision.image_size", (uint32_t)S);
  gguf_set_val_u32(g, "clip.vision.patch_size", (uint32_t)P);
  gguf_set_val_u32(g, "clip.vision.embedding_length", (uint32_t)E);
  gguf_set_val_u32(g, "clip.vision.feed_forward_length", MK_MMPROJ_FF);
  gguf_set_val_u32(g, "clip.vision.block_count", MK_MMPROJ_LAYERS);
  gguf_set_val_u32(g, "clip.vision.projection_dim", (uint32_t)n_embd_text);
  gguf_set_val_u32(g, "clip.vision.attention.head_count", MK_MMPROJ_HEADS);
  gguf_set_val_f32(g, "clip.vision.attention.layer_norm_epsilon", 1e-5f);
  static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float stdv[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  gguf_set_arr_data(g, "clip.vision.image_mean", GGUF_TYPE_FLOAT32, mean, 3);
  gguf_set_arr_data(g, "clip.vision.image_std", GGUF_TYPE_FLOAT32, stdv, 3);

  /* the ViT: conv patches [P, P, 3, E], class embedding, positions, pre-LN */
  mp_tensor(&b, "v.patch_embd.weight", GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)(P * P * 3)),
            P, P, 3, E);
  mp_tensor(&b, "v.class_embd", GGML_TYPE_F32, MP_RANDOM, 0.02f, E, 1, 1, 1);
  mp_tensor(&b, "v.position_embd.weight", GGML_TYPE_F32, MP_RANDOM, 0.02f, E, n_pos, 1, 1);
  mp_norm(&b, "v.pre_ln", E);
  for (int il = 0; il < MK_MMPROJ_LAYERS; il++) {
    char p[64];
    static const char *const attn[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
    for (int k = 0; k < 4; k++) {
      snprintf(p, sizeof p, "v.blk.%d.%s", il, attn[k]);
      mp_linear(&b, p, E, E);
    }
    snprintf(p, sizeof p, "v.blk.%d.ln1", il);
    mp_norm(&b, p, E);
    snprintf(p, sizeof p, "v.blk.%d.ffn_up", il);
    mp_linear(&b, p, E, MK_MMPROJ_FF);
    snprintf(p, sizeof p, "v.blk.%d.ffn_down", il);
    mp_linear(&b, p, MK_MMPROJ_FF, E);
    snprintf(p, sizeof p, "v.blk.%d.ln2", il);
    mp_norm(&b, p, E);
  }
  /* the projector: E -> text, GELU, text -> text */
  mp_linear(&b, "mm.0", E, n_embd_text);
  mp_linear(&b, "mm.2", n_embd_text, n_embd_text);
  if (b.failed) {
    snprintf(err, errlen, "mmproj: out of memory building tensors");
    goto done;
  }

  rc = mp_save(g, out_path, part, n_bytes, err, errlen);
done:
  free(b.tmp);
  if (b.g) gguf_free(b.g);
  if (b.ctx) ggml_free(b.ctx);
  return rc;
}

/* ---- verify ------------------------------------------------------------------------------ */

int mk_mmproj_verify(const char *model_path, const char *mmproj_path, int threads, char *summary,
                     size_t summarylen, char *err, size_t errlen) {
  enum { W = 40, H = 30 };
  summary[0] = '\0';
  int rc = -1;
  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  struct llama_model *model = llama_model_load_from_file(model_path, mp);
  struct llama_context *ctx = NULL;
  mtmd_context *mctx = NULL;
  mtmd_bitmap *bmp = NULL;
  mtmd_input_chunks *chunks = NULL;
  unsigned char *rgb = NULL;
  if (!model) {
    snprintf(err, errlen, "llama.cpp cannot load %s", model_path);
    return -1;
  }
  struct mtmd_context_params mcp = mtmd_context_params_default();
  mcp.use_gpu = false;
  mcp.n_threads = threads;
  mcp.print_timings = false;
  mcp.warmup = false;
  mctx = mtmd_init_from_file(mmproj_path, model, mcp);
  if (!mctx || !mtmd_support_vision(mctx)) {
    snprintf(err, errlen, "mtmd cannot load %s with %s (run with --verbose for its log)",
             mmproj_path, model_path);
    goto done;
  }
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 256;
  cp.n_batch = 256;
  cp.n_ubatch = 256;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  ctx = llama_init_from_model(model, cp);
  rgb = malloc((size_t)W * H * 3);
  if (!ctx || !rgb) {
    snprintf(err, errlen, "cannot create a llama context");
    goto done;
  }
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      unsigned char *px = rgb + ((size_t)y * W + (size_t)x) * 3;
      px[0] = (unsigned char)(x * 255 / (W - 1));
      px[1] = (unsigned char)(y * 255 / (H - 1));
      px[2] = (unsigned char)((x + y) & 0xff);
    }
  bmp = mtmd_bitmap_init(W, H, rgb);
  chunks = mtmd_input_chunks_init();
  char prompt[128];
  snprintf(prompt, sizeof prompt, "Describe this picture: %s in one word.", mtmd_default_marker());
  mtmd_input_text text = {prompt, strlen(prompt), true, true};
  const mtmd_bitmap *bitmaps[1] = {bmp};
  int32_t t = bmp && chunks ? mtmd_tokenize(mctx, chunks, &text, bitmaps, 1) : -1;
  if (t != 0) {
    snprintf(err, errlen, "mtmd_tokenize failed (%d)", (int)t);
    goto done;
  }
  size_t n_img = 0, n_all = mtmd_helper_get_n_tokens(chunks);
  for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
    const mtmd_input_chunk *c = mtmd_input_chunks_get(chunks, i);
    if (mtmd_input_chunk_get_type(c) == MTMD_INPUT_CHUNK_TYPE_IMAGE)
      n_img += mtmd_input_chunk_get_n_tokens(c);
  }
  if (n_img != MK_MMPROJ_IMAGE_TOKENS) {
    snprintf(err, errlen, "the image became %zu tokens, expected %d", n_img,
             MK_MMPROJ_IMAGE_TOKENS);
    goto done;
  }
  llama_pos n_past = 0;
  if (mtmd_helper_eval_chunks(mctx, ctx, chunks, 0, 0, 256, true, &n_past) != 0) {
    snprintf(err, errlen, "mtmd_helper_eval_chunks failed");
    goto done;
  }
  const float *logits = llama_get_logits_ith(ctx, -1);
  int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  float lo = INFINITY, hi = -INFINITY;
  for (int i = 0; logits && i < n_vocab; i++) {
    if (!isfinite(logits[i])) {
      snprintf(err, errlen, "logit %d is not finite after the image", i);
      goto done;
    }
    lo = logits[i] < lo ? logits[i] : lo;
    hi = logits[i] > hi ? logits[i] : hi;
  }
  if (!logits || !(hi - lo > 1e-6f)) {
    snprintf(err, errlen, "no usable logits after the image");
    goto done;
  }
  snprintf(summary, summarylen,
           "a %dx%d image is %zu tokens of %zu in the prompt (n_pos %d); logits finite, range %.3f",
           W, H, n_img, n_all, (int)n_past, (double)(hi - lo));
  rc = 0;
done:
  if (chunks) mtmd_input_chunks_free(chunks);
  if (bmp) mtmd_bitmap_free(bmp);
  free(rgb);
  if (mctx) mtmd_free(mctx);
  if (ctx) llama_free(ctx);
  llama_model_free(model);
  return rc;
}

/* ---- the audio projector (Ultravox) ------------------------------------------------------ */

int mk_mmproj_audio_write(const char *out_path, int n_embd_text, uint64_t seed, uint64_t *n_bytes,
                          char *err, size_t errlen) {
  const int E = MK_AMMPROJ_EMBD, M = MK_AMMPROJ_MEL, K = MK_AMMPROJ_STACK, PF = MK_AMMPROJ_PROJ_FF;
  char part[4096];
  if (n_embd_text <= 0 || n_embd_text > 65536) {
    snprintf(err, errlen, "mmproj: text width %d is out of range", n_embd_text);
    return -1;
  }
  if (snprintf(part, sizeof part, "%s.part", out_path) >= (int)sizeof part) {
    snprintf(err, errlen, "mmproj: output path too long");
    return -1;
  }
  size_t biggest = (size_t)E * MK_AMMPROJ_POS;
  if (biggest < (size_t)3 * M * E) biggest = (size_t)3 * M * E;
  if (biggest < (size_t)E * K * 2 * PF) biggest = (size_t)E * K * 2 * PF;
  if (biggest < (size_t)PF * n_embd_text) biggest = (size_t)PF * n_embd_text;
  size_t mem = 128 * ggml_tensor_overhead() + 48 * biggest * sizeof(float) + (1u << 20);
  struct ggml_init_params ip = {mem, NULL, false};
  mp_builder b = {0};
  b.seed = seed * 0x2545f4914f6cdd1dULL + 0x617564696f70ULL; /* not the text model's streams */
  b.ctx = ggml_init(ip);
  b.g = gguf_init_empty();
  b.tmp_n = biggest;
  b.tmp = malloc(biggest * sizeof(float));
  int rc = -1;
  if (!b.ctx || !b.g || !b.tmp) {
    snprintf(err, errlen, "mmproj: out of memory");
    goto done;
  }

  struct gguf_context *g = b.g;
  gguf_set_val_str(g, "general.architecture", "clip");
  gguf_set_val_str(g, "general.type", "mmproj");
  gguf_set_val_str(g, "general.name", "mkmodel tiny ultravox projector");
  char desc[200];
  snprintf(desc, sizeof desc,
           "random weights from switchyard mkmodel (seed %llu): Ultravox-style whisper encoder + "
           "stacked frames + SwiGLU MLP, meaningless output",
           (unsigned long long)seed);
  gguf_set_val_str(g, "general.description", desc);
  gguf_set_val_u32(g, "general.file_type", (uint32_t)LLAMA_FTYPE_MOSTLY_F16);
  gguf_set_val_bool(g, "clip.has_vision_encoder", false);
  gguf_set_val_bool(g, "clip.has_audio_encoder", true);
  gguf_set_val_str(g, "clip.projector_type", "ultravox");
  gguf_set_val_u32(g, "clip.audio.embedding_length", (uint32_t)E);
  gguf_set_val_u32(g, "clip.audio.feed_forward_length", MK_AMMPROJ_FF);
  gguf_set_val_u32(g, "clip.audio.block_count", MK_AMMPROJ_LAYERS);
  gguf_set_val_u32(g, "clip.audio.projection_dim", (uint32_t)n_embd_text);
  gguf_set_val_u32(g, "clip.audio.attention.head_count", MK_AMMPROJ_HEADS);
  gguf_set_val_f32(g, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
  gguf_set_val_u32(g, "clip.audio.num_mel_bins", (uint32_t)M);
  gguf_set_val_u32(g, "clip.audio.projector.stack_factor", (uint32_t)K);

  /* the whisper encoder: two convolutions over the mel frames (the second halves them), learned
   * positions, pre-norm blocks (k without a bias, as whisper), a final norm */
  mp_tensor(&b, "a.conv1d.1.weight", GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)(3 * M)), 3, M,
            E, 1);
  mp_tensor(&b, "a.conv1d.1.bias", GGML_TYPE_F32, MP_ZERO, 0, 1, E, 1, 1);
  mp_tensor(&b, "a.conv1d.2.weight", GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)(3 * E)), 3, E,
            E, 1);
  mp_tensor(&b, "a.conv1d.2.bias", GGML_TYPE_F32, MP_ZERO, 0, 1, E, 1, 1);
  mp_tensor(&b, "a.position_embd.weight", GGML_TYPE_F32, MP_RANDOM, 0.02f, E, MK_AMMPROJ_POS, 1, 1);
  for (int il = 0; il < MK_AMMPROJ_LAYERS; il++) {
    char p[64];
    static const char *const attn[] = {"attn_q", "attn_v", "attn_out"};
    for (int k = 0; k < 3; k++) {
      snprintf(p, sizeof p, "a.blk.%d.%s", il, attn[k]);
      mp_linear(&b, p, E, E);
    }
    snprintf(p, sizeof p, "a.blk.%d.attn_k.weight", il);
    mp_tensor(&b, p, GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)E), E, E, 1, 1);
    snprintf(p, sizeof p, "a.blk.%d.ln1", il);
    mp_norm(&b, p, E);
    snprintf(p, sizeof p, "a.blk.%d.ffn_up", il);
    mp_linear(&b, p, E, MK_AMMPROJ_FF);
    snprintf(p, sizeof p, "a.blk.%d.ffn_down", il);
    mp_linear(&b, p, MK_AMMPROJ_FF, E);
    snprintf(p, sizeof p, "a.blk.%d.ln2", il);
    mp_norm(&b, p, E);
  }
  mp_norm(&b, "a.post_ln", E);
  /* the Ultravox projector: K frames stacked, RMS norm, SwiGLU MLP (no biases), RMS norm, out */
  mp_tensor(&b, "mm.a.norm_pre.weight", GGML_TYPE_F32, MP_ONE, 0, E * K, 1, 1, 1);
  mp_tensor(&b, "mm.a.mlp.1.weight", GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)(E * K)), E * K,
            2 * PF, 1, 1);
  mp_tensor(&b, "mm.a.norm_mid.weight", GGML_TYPE_F32, MP_ONE, 0, PF, 1, 1, 1);
  mp_tensor(&b, "mm.a.mlp.2.weight", GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)PF), PF,
            n_embd_text, 1, 1);
  if (b.failed) {
    snprintf(err, errlen, "mmproj: out of memory building tensors");
    goto done;
  }
  rc = mp_save(g, out_path, part, n_bytes, err, errlen);
done:
  free(b.tmp);
  if (b.g) gguf_free(b.g);
  if (b.ctx) ggml_free(b.ctx);
  return rc;
}

int mk_mmproj_audio_verify(const char *model_path, const char *mmproj_path, int threads,
                           char *summary, size_t summarylen, char *err, size_t errlen) {
  summary[0] = '\0';
  int rc = -1;
  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  struct llama_model *model = llama_model_load_from_file(model_path, mp);
  struct llama_context *ctx = NULL;
  mtmd_context *mctx = NULL;
  mtmd_bitmap *bmp = NULL;
  mtmd_input_chunks *chunks = NULL;
  float *pcm = NULL;
  if (!model) {
    snprintf(err, errlen, "llama.cpp cannot load %s", model_path);
    return -1;
  }
  struct mtmd_context_params mcp = mtmd_context_params_default();
  mcp.use_gpu = false;
  mcp.n_threads = threads;
  mcp.print_timings = false;
  mcp.warmup = false;
  mctx = mtmd_init_from_file(mmproj_path, model, mcp);
  if (!mctx || !mtmd_support_audio(mctx)) {
    snprintf(err, errlen, "mtmd cannot load %s with %s as an audio projector (run with --verbose)",
             mmproj_path, model_path);
    goto done;
  }
  int rate = mtmd_get_audio_sample_rate(mctx);
  if (rate != MK_AMMPROJ_RATE) {
    snprintf(err, errlen, "mtmd reports %d Hz audio, expected %d", rate, MK_AMMPROJ_RATE);
    goto done;
  }
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 1024;
  cp.n_batch = 512;
  cp.n_ubatch = 512;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  ctx = llama_init_from_model(model, cp);
  pcm = malloc(sizeof(float) * (size_t)rate);
  if (!ctx || !pcm) {
    snprintf(err, errlen, "cannot create a llama context");
    goto done;
  }
  for (int i = 0; i < rate; i++) /* 1 s of a 440 Hz sine at half scale */
    pcm[i] = 0.5f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / (float)rate);
  bmp = mtmd_bitmap_init_from_audio((size_t)rate, pcm);
  chunks = mtmd_input_chunks_init();
  char prompt[128];
  snprintf(prompt, sizeof prompt, "Listen: %s What is it?", mtmd_default_marker());
  mtmd_input_text text = {prompt, strlen(prompt), true, true};
  const mtmd_bitmap *bitmaps[1] = {bmp};
  int32_t t = bmp && chunks ? mtmd_tokenize(mctx, chunks, &text, bitmaps, 1) : -1;
  if (t != 0) {
    snprintf(err, errlen, "mtmd_tokenize failed (%d)", (int)t);
    goto done;
  }
  size_t n_aud = 0, n_all = mtmd_helper_get_n_tokens(chunks);
  for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
    const mtmd_input_chunk *c = mtmd_input_chunks_get(chunks, i);
    if (mtmd_input_chunk_get_type(c) == MTMD_INPUT_CHUNK_TYPE_AUDIO)
      n_aud += mtmd_input_chunk_get_n_tokens(c);
  }
  if (n_aud != MK_AMMPROJ_WINDOW_TOKENS) {
    snprintf(err, errlen, "1 s of audio became %zu tokens, expected %d", n_aud,
             MK_AMMPROJ_WINDOW_TOKENS);
    goto done;
  }
  llama_pos n_past = 0;
  if (mtmd_helper_eval_chunks(mctx, ctx, chunks, 0, 0, 512, true, &n_past) != 0) {
    snprintf(err, errlen, "mtmd_helper_eval_chunks failed");
    goto done;
  }
  const float *logits = llama_get_logits_ith(ctx, -1);
  int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  float lo = INFINITY, hi = -INFINITY;
  for (int i = 0; logits && i < n_vocab; i++) {
    if (!isfinite(logits[i])) {
      snprintf(err, errlen, "logit %d is not finite after the audio", i);
      goto done;
    }
    lo = logits[i] < lo ? logits[i] : lo;
    hi = logits[i] > hi ? logits[i] : hi;
  }
  if (!logits || !(hi - lo > 1e-6f)) {
    snprintf(err, errlen, "no usable logits after the audio");
    goto done;
  }
  snprintf(summary, summarylen,
           "1 s of %d Hz audio is %zu tokens of %zu in the prompt (n_pos %d); logits finite, "
           "range %.3f",
           rate, n_aud, n_all, (int)n_past, (double)(hi - lo));
  rc = 0;
done:
  if (chunks) mtmd_input_chunks_free(chunks);
  if (bmp) mtmd_bitmap_free(bmp);
  free(pcm);
  if (mctx) mtmd_free(mctx);
  if (ctx) llama_free(ctx);
  llama_model_free(model);
  return rc;
}

/* ---- Pocket-TTS generation projector ----------------------------------------------------- */

/* A conv kernel [k, in, out] (ggml order), F16 as the converter forces for ggml_conv_1d, and its
 * F32 bias of zeros. */
static void mp_conv(mp_builder *b, const char *prefix, int64_t k, int64_t in, int64_t out) {
  char name[96];
  snprintf(name, sizeof name, "%s.weight", prefix);
  mp_tensor(b, name, GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)(k * in)), k, in, out, 1);
  snprintf(name, sizeof name, "%s.bias", prefix);
  mp_tensor(b, name, GGML_TYPE_F32, MP_ZERO, 0, out, 1, 1, 1);
}

/* A bare F16 matrix [in, out] with the given std. */
static void mp_matrix(mp_builder *b, const char *name, int64_t in, int64_t out, float std) {
  mp_tensor(b, name, GGML_TYPE_F16, MP_RANDOM, std, in, out, 1, 1);
}

static void mp_vec(mp_builder *b, const char *name, enum mp_init init, int64_t n) {
  mp_tensor(b, name, GGML_TYPE_F32, init, 1.0f, n, 1, 1, 1);
}

int mk_ttsproj_write(const char *out_path, int n_embd_text, uint64_t seed, uint64_t *n_bytes,
                     char *err, size_t errlen) {
  const int D = n_embd_text, L = MK_TTS_LATENT, C = MK_TTS_FLOW, M = MK_TTS_MIMI;
  const int NF = MK_TTS_FREQS;
  /* SEANet decoder widths: conv_in to S[0], each stage halves (strides 6, 5, 4 in clip.cpp) */
  static const int S[4] = {64, 32, 16, 8};
  static const int stride[3] = {6, 5, 4};
  char part[4096];
  if (n_embd_text < 8 || n_embd_text > 65536) {
    snprintf(err, errlen, "ttsproj: text width %d is out of range", n_embd_text);
    return -1;
  }
  if (snprintf(part, sizeof part, "%s.part", out_path) >= (int)sizeof part) {
    snprintf(err, errlen, "ttsproj: output path too long");
    return -1;
  }
  /* the largest tensor: the 32-tap downsample conv, or a matrix of the backbone width */
  size_t biggest = (size_t)32 * M * M + (size_t)D * (size_t)(D > C ? D : 3 * C) + 65536;
  size_t mem = 256 * ggml_tensor_overhead() + biggest * sizeof(float) * 32 + (4u << 20);
  struct ggml_init_params ip = {mem, NULL, false};
  mp_builder b = {0};
  b.seed = seed * 0x2545f4914f6cdd1dULL + 0x7474737072ULL; /* not the text model's streams */
  b.ctx = ggml_init(ip);
  b.g = gguf_init_empty();
  b.tmp_n = biggest;
  b.tmp = malloc(biggest * sizeof(float));
  int rc = -1;
  if (!b.ctx || !b.g || !b.tmp) {
    snprintf(err, errlen, "ttsproj: out of memory");
    goto done;
  }
  struct gguf_context *g = b.g;
  gguf_set_val_str(g, "general.architecture", "clip");
  gguf_set_val_str(g, "general.type", "mmproj");
  gguf_set_val_str(g, "general.name", "mkmodel tiny pocket-tts projector");
  char desc[200];
  snprintf(desc, sizeof desc,
           "random weights from switchyard mkmodel (seed %llu): pocket-tts flow net and mimi "
           "decoder, noise for audio",
           (unsigned long long)seed);
  gguf_set_val_str(g, "general.description", desc);
  gguf_set_val_u32(g, "general.file_type", (uint32_t)LLAMA_FTYPE_MOSTLY_F16);
  gguf_set_val_bool(g, "clip.has_vision_encoder", false);
  /* mtmd refuses a file with neither a vision nor an audio encoder, so the voice encoder
   * (mimi encoder + speaker projection, for reference clips) is always there, as the
   * converter writes it */
  gguf_set_val_bool(g, "clip.has_audio_encoder", true);
  gguf_set_val_str(g, "clip.audio.projector_type", "pockettts_spkenc");
  gguf_set_val_u32(g, "clip.audio.projection_dim", (uint32_t)D);
  gguf_set_val_u32(g, "clip.audio.embedding_length", (uint32_t)M);
  gguf_set_val_u32(g, "clip.audio.feed_forward_length", MK_TTS_FF);
  gguf_set_val_u32(g, "clip.audio.block_count", MK_TTS_LAYERS);
  gguf_set_val_u32(g, "clip.audio.attention.head_count", MK_TTS_HEADS);
  gguf_set_val_f32(g, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
  gguf_set_val_u32(g, "clip.audio.num_mel_bins", 1); /* the raw waveform, one row */
  gguf_set_val_bool(g, "clip.has_gen_audio_encoder", true);
  gguf_set_val_str(g, "clip.gen.audio.projector_type", "pockettts_gen");
  gguf_set_val_u32(g, "clip.gen.audio.projection_dim", (uint32_t)D);
  gguf_set_val_u32(g, "clip.gen.audio.embedding_length", (uint32_t)M);
  gguf_set_val_u32(g, "clip.gen.audio.feed_forward_length", MK_TTS_FF);
  gguf_set_val_u32(g, "clip.gen.audio.block_count", MK_TTS_LAYERS);
  gguf_set_val_u32(g, "clip.gen.audio.attention.head_count", MK_TTS_HEADS);
  gguf_set_val_f32(g, "clip.gen.audio.attention.layer_norm_epsilon", 1e-5f);
  gguf_set_val_str(g, "clip.gen.audio.model_variant", "mkmodel");

  /* voice encoder: SEANet encoder (1 -> 8 -> 16 -> 32 -> 64 channels, strides 4, 5, 6), one
   * mimi layer, 16x downsample, projection into the backbone */
  {
    static const int E[4] = {8, 16, 32, 64};
    static const int es[3] = {4, 5, 6};
    mp_conv(&b, "a.seanet.conv_in", 7, 1, E[0]);
    for (int i = 0; i < 3; i++) {
      char p[64];
      snprintf(p, sizeof p, "a.seanet.blk.%d.res_conv1", i);
      mp_conv(&b, p, 3, E[i], E[i] / 2);
      snprintf(p, sizeof p, "a.seanet.blk.%d.res_conv2", i);
      mp_conv(&b, p, 1, E[i] / 2, E[i]);
      snprintf(p, sizeof p, "a.seanet.blk.%d.scale_conv", i);
      mp_conv(&b, p, 2 * es[i], E[i], E[i + 1]);
    }
    mp_conv(&b, "a.seanet.conv_out", 7, E[3], M);
    for (int il = 0; il < MK_TTS_LAYERS; il++) {
      char p[64];
      static const char *const attn[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
      snprintf(p, sizeof p, "a.blk.%d.ln1", il);
      mp_norm(&b, p, M);
      for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, "a.blk.%d.%s.weight", il, attn[k]);
        mp_matrix(&b, p, M, M, 1.0f / sqrtf((float)M));
      }
      snprintf(p, sizeof p, "a.blk.%d.ls1.weight", il);
      mp_vec(&b, p, MP_ONE, M);
      snprintf(p, sizeof p, "a.blk.%d.ln2", il);
      mp_norm(&b, p, M);
      snprintf(p, sizeof p, "a.blk.%d.ffn_up.weight", il);
      mp_matrix(&b, p, M, MK_TTS_FF, 1.0f / sqrtf((float)M));
      snprintf(p, sizeof p, "a.blk.%d.ffn_down.weight", il);
      mp_matrix(&b, p, MK_TTS_FF, M, 1.0f / sqrtf((float)MK_TTS_FF));
      snprintf(p, sizeof p, "a.blk.%d.ls2.weight", il);
      mp_vec(&b, p, MP_ONE, M);
    }
    mp_tensor(&b, "a.downsample.conv.weight", GGML_TYPE_F16, MP_RANDOM,
              1.0f / sqrtf((float)(32 * M)), 32, M, M, 1);
    mp_matrix(&b, "a.speaker_proj.weight", M, D, 1.0f / sqrtf((float)M));
  }

  /* flow net: backbone state + noise -> one latent */
  mp_linear(&b, "a.gen.flow.input_proj", L, C);
  mp_linear(&b, "a.gen.flow.cond_embd", D, C);
  for (int i = 0; i < 2; i++) {
    char p[64];
    snprintf(p, sizeof p, "a.gen.flow.time.%d.freqs", i);
    mp_vec(&b, p, MP_RANDOM, NF);
    snprintf(p, sizeof p, "a.gen.flow.time.%d.up", i);
    mp_linear(&b, p, 2 * NF, C);
    snprintf(p, sizeof p, "a.gen.flow.time.%d.down", i);
    mp_linear(&b, p, C, C);
    snprintf(p, sizeof p, "a.gen.flow.time.%d.norm", i);
    mp_vec(&b, p, MP_ONE, C);
  }
  for (int il = 0; il < MK_TTS_FLOW_BLOCKS; il++) {
    char p[64];
    snprintf(p, sizeof p, "a.gen.flow.blk.%d.norm", il);
    mp_norm(&b, p, C);
    snprintf(p, sizeof p, "a.gen.flow.blk.%d.up", il);
    mp_linear(&b, p, C, C);
    snprintf(p, sizeof p, "a.gen.flow.blk.%d.down", il);
    mp_linear(&b, p, C, C);
    snprintf(p, sizeof p, "a.gen.flow.blk.%d.ada", il);
    mp_linear(&b, p, C, 3 * C);
  }
  mp_linear(&b, "a.gen.flow.final.ada", C, 2 * C);
  mp_linear(&b, "a.gen.flow.final.proj", C, L);
  /* end-of-speech head: score ~ N(-4.5, 1) against clip's -4 threshold, so it fires after a
   * few frames (and not on the first), exercising both the EOS tail and the windowing */
  mp_matrix(&b, "a.gen.out_eos.weight", D, 1, 1.0f / sqrtf((float)D));
  mp_tensor(&b, "a.gen.out_eos.bias", GGML_TYPE_F32, MP_CONST, -4.5f, 1, 1, 1, 1);
  mp_matrix(&b, "a.gen.input_linear.weight", L, D, 1.0f / sqrtf((float)L));
  mp_vec(&b, "a.gen.emb_mean", MP_ZERO, L);
  mp_vec(&b, "a.gen.emb_std", MP_ONE, L);

  /* mimi decoder: latent -> M, depthwise 16x upsample, transformer, SEANet */
  mp_matrix(&b, "a.gen.wav.quant_out.weight", L, M, 1.0f / sqrtf((float)L));
  mp_tensor(&b, "a.gen.wav.upsample.weight", GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf(32.0f), 32, 1,
            M, 1);
  for (int il = 0; il < MK_TTS_LAYERS; il++) {
    char p[64];
    static const char *const attn[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
    snprintf(p, sizeof p, "a.gen.wav.tfm.blk.%d.ln1", il);
    mp_norm(&b, p, M);
    for (int k = 0; k < 4; k++) {
      snprintf(p, sizeof p, "a.gen.wav.tfm.blk.%d.%s.weight", il, attn[k]);
      mp_matrix(&b, p, M, M, 1.0f / sqrtf((float)M));
    }
    snprintf(p, sizeof p, "a.gen.wav.tfm.blk.%d.ls1.weight", il);
    mp_vec(&b, p, MP_ONE, M);
    snprintf(p, sizeof p, "a.gen.wav.tfm.blk.%d.ln2", il);
    mp_norm(&b, p, M);
    snprintf(p, sizeof p, "a.gen.wav.tfm.blk.%d.ffn_up.weight", il);
    mp_matrix(&b, p, M, MK_TTS_FF, 1.0f / sqrtf((float)M));
    snprintf(p, sizeof p, "a.gen.wav.tfm.blk.%d.ffn_down.weight", il);
    mp_matrix(&b, p, MK_TTS_FF, M, 1.0f / sqrtf((float)MK_TTS_FF));
    snprintf(p, sizeof p, "a.gen.wav.tfm.blk.%d.ls2.weight", il);
    mp_vec(&b, p, MP_ONE, M);
  }
  mp_conv(&b, "a.gen.wav.seanet.conv_in", 7, M, S[0]);
  for (int i = 0; i < 3; i++) {
    char p[64];
    /* transposed conv: [2*stride, out, in] */
    snprintf(p, sizeof p, "a.gen.wav.seanet.blk.%d.scale_conv.weight", i);
    mp_tensor(&b, p, GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)(2 * stride[i] * S[i])),
              2 * stride[i], S[i + 1], S[i], 1);
    snprintf(p, sizeof p, "a.gen.wav.seanet.blk.%d.scale_conv.bias", i);
    mp_vec(&b, p, MP_ZERO, S[i + 1]);
    snprintf(p, sizeof p, "a.gen.wav.seanet.blk.%d.res_conv1", i);
    mp_conv(&b, p, 3, S[i + 1], S[i + 1] / 2);
    snprintf(p, sizeof p, "a.gen.wav.seanet.blk.%d.res_conv2", i);
    mp_conv(&b, p, 1, S[i + 1] / 2, S[i + 1]);
  }
  mp_conv(&b, "a.gen.wav.seanet.conv_out", 7, S[3], 1);
  if (b.failed) {
    snprintf(err, errlen, "ttsproj: out of memory building tensors");
    goto done;
  }
  rc = mp_save(g, out_path, part, n_bytes, err, errlen);
done:
  free(b.tmp);
  if (b.g) gguf_free(b.g);
  if (b.ctx) ggml_free(b.ctx);
  return rc;
}

/* The id of the token whose text is exactly s, or -1. */
static llama_token mp_find_token(const struct llama_vocab *v, const char *s) {
  int32_t n = llama_vocab_n_tokens(v);
  for (llama_token t = n - 1; t >= 0; t--) {
    const char *x = llama_vocab_get_text(v, t);
    if (x && strcmp(x, s) == 0) return t;
  }
  return -1;
}

/* One embedding row at position pos of sequence 0, logits on; the hidden state after it. */
static const float *mp_decode_embd(struct llama_context *ctx, const float *row, int n_embd,
                                   llama_pos pos) {
  struct llama_batch b = llama_batch_init(1, n_embd, 1);
  memcpy(b.embd, row, (size_t)n_embd * sizeof(float));
  b.pos[0] = pos;
  b.n_seq_id[0] = 1;
  b.seq_id[0][0] = 0;
  b.logits[0] = 1;
  b.n_tokens = 1;
  int rc = llama_decode(ctx, b);
  llama_batch_free(b);
  return rc == 0 ? llama_get_embeddings_ith(ctx, -1) : NULL;
}

int mk_ttsproj_verify(const char *model_path, const char *mmproj_path, int threads, char *summary,
                      size_t summarylen, char *err, size_t errlen) {
  enum { N_FRAMES = 10, WINDOW = 4 };
  summary[0] = '\0';
  int rc = -1;
  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  struct llama_model *model = llama_model_load_from_file(model_path, mp);
  struct llama_context *ctx = NULL;
  mtmd_context *mctx = NULL;
  float *feats = NULL, *h = NULL;
  mk_wav_acc acc = {0}; /* the audio so far, and the decoder state */
  if (!model) {
    snprintf(err, errlen, "llama.cpp cannot load %s", model_path);
    return -1;
  }
  const struct llama_vocab *vocab = llama_model_get_vocab(model);
  const int n_embd = llama_model_n_embd(model);
  struct mtmd_context_params mcp = mtmd_context_params_default();
  mcp.use_gpu = false;
  mcp.n_threads = threads;
  mcp.print_timings = false;
  mcp.warmup = false;
  mctx = mtmd_init_from_file(mmproj_path, model, mcp);
  struct mtmd_gen_audio_info info =
      mctx ? mtmd_gen_audio_get_info(mctx) : (struct mtmd_gen_audio_info){0};
  if (!mctx || info.type != MTMD_GEN_AUDIO_TYPE_POCKETTTS) {
    snprintf(err, errlen, "mtmd cannot load %s as a pocket-tts projector for %s", mmproj_path,
             model_path);
    goto done;
  }
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 256;
  cp.n_batch = 256;
  cp.n_ubatch = 256;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.embeddings = true;
  ctx = llama_init_from_model(model, cp);
  if (!ctx) {
    snprintf(err, errlen, "cannot create a llama context");
    goto done;
  }
  llama_token bos = mp_find_token(vocab, "<|audio_bos|>");
  llama_token toks[64];
  const char *text = "Hello world.";
  int32_t n = llama_tokenize(vocab, text, (int32_t)strlen(text), toks, 60, false, false);
  if (bos < 0 || n <= 0) {
    snprintf(err, errlen, "the vocabulary has no <|audio_bos|>, or the text does not tokenize");
    goto done;
  }
  toks[n++] = bos;
  struct llama_batch pb = llama_batch_get_one(toks, n);
  if (llama_decode(ctx, pb) != 0) {
    snprintf(err, errlen, "the prompt does not decode");
    goto done;
  }
  feats = malloc((size_t)WINDOW * 4096 * sizeof(float));
  h = malloc((size_t)n_embd * sizeof(float));
  const float *he = llama_get_embeddings_ith(ctx, -1);
  if (!feats || !h || !he) {
    snprintf(err, errlen, "no hidden state after the prompt");
    goto done;
  }
  memcpy(h, he, (size_t)n_embd * sizeof(float));
  size_t n_feats = 0, latent = 0;
  int n_eos = 0;
  struct mtmd_gen_inp def = mtmd_gen_inp_default(mctx);
  for (int f = 0; f < N_FRAMES; f++) {
    struct mtmd_gen_inp in = def;
    struct mtmd_gen_out out;
    in.type = MTMD_GEN_PROCESS_TYPE_GEN_CODE;
    in.embd = h;
    in.seed = 1234u + (uint32_t)f;
    if (mtmd_gen_audio_process(mctx, &in, &out) != 0 || !out.feats || out.n_feats == 0 ||
        out.n_feats > 4096 || !out.embd) {
      snprintf(err, errlen, "GEN_CODE failed at frame %d", f);
      goto done;
    }
    latent = out.n_feats;
    n_eos += out.is_eos;
    memcpy(feats + n_feats, out.feats, out.n_feats * sizeof(float));
    n_feats += out.n_feats;
    he = mp_decode_embd(ctx, out.embd, n_embd, n + f);
    if (!he) {
      snprintf(err, errlen, "the fed-back embedding does not decode (frame %d)", f);
      goto done;
    }
    memcpy(h, he, (size_t)n_embd * sizeof(float));
    if (n_feats / latent == WINDOW || f == N_FRAMES - 1) {
      struct mtmd_gen_inp w = def;
      w.type = MTMD_GEN_PROCESS_TYPE_GEN_WAV;
      w.feats = feats;
      w.n_feats = n_feats;
      w.seed = 1u;
      w.state_data = acc.state;
      w.state_size = acc.state_n;
      if (mtmd_gen_audio_process(mctx, &w, &out) != 0 || !out.audio ||
          out.n_samples != (n_feats / latent) * MK_TTS_SAMPLES_PER_FRAME) {
        snprintf(err, errlen, "GEN_WAV failed or gave %zu samples for %zu frames", out.n_samples,
                 n_feats / latent);
        goto done;
      }
      if (mk_wav_take(&acc, out.audio, out.n_samples, out.state_data, out.state_size, err,
                      errlen) != 0)
        goto done;
      n_feats = 0;
    }
  }
  double rms;
  if (mk_wav_done(&acc, &rms, err, errlen) != 0) goto done;
  snprintf(summary, summarylen,
           "%d frames (latent %zu, EOS head fired %d times) -> %zu samples at %d Hz, rms %.4f, "
           "decoder state %zu bytes",
           N_FRAMES, latent, n_eos, acc.n_samples, info.sample_rate, rms, acc.state_n);
  rc = 0;
done:
  free(acc.state);
  free(feats);
  free(h);
  if (mctx) mtmd_free(mctx);
  if (ctx) llama_free(ctx);
  llama_model_free(model);
  return rc;
}

int mk_wav_take(mk_wav_acc *a, const float *audio, size_t n, const void *state, size_t state_n,
                char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(audio[i])) {
      snprintf(err, errlen, "sample %zu is not finite", a->n_samples + i);
      return -1;
    }
    a->sum += audio[i];
    a->sum2 += (double)audio[i] * audio[i];
  }
  a->n_samples += n;
  char *ns = realloc(a->state, state_n ? state_n : 1);
  if (!ns) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  a->state = ns;
  if (state_n) memcpy(a->state, state, state_n);
  a->state_n = state_n;
  return 0;
}

int mk_wav_done(const mk_wav_acc *a, double *rms, char *err, size_t errlen) {
  double n = (double)a->n_samples, mean = n > 0 ? a->sum / n : 0,
         var = n > 0 ? a->sum2 / n - mean * mean : 0;
  if (!(var > 1e-12)) {
    snprintf(err, errlen, "the audio is constant");
    return -1;
  }
  *rms = sqrt(a->sum2 / n);
  return 0;
}
