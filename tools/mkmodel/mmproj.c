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

/* ---- weights ----------------------------------------------------------------------------- */

static uint64_t mp_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Bounded near-normal (sum of four 16-bit uniforms), unit variance, as fill.c makes them. */
static float mp_normalish(uint64_t *s) {
  uint64_t r = mp_next(s);
  int32_t sum = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
                (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48);
  return ((float)sum - 131070.0f) * (1.0f / 37837.22f);
}

static uint64_t mp_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ULL;
  }
  return h;
}

enum mp_init { MP_RANDOM, MP_ONE, MP_ZERO };

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
  uint64_t st = b->seed ^ mp_hash(name);
  for (size_t i = 0; i < n; i++)
    v[i] = init == MP_ONE ? 1.0f : init == MP_ZERO ? 0.0f : mp_normalish(&st) * std;
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
static int mp_save(struct gguf_context *g, const char *out_path, const char *part, uint64_t *n_bytes,
                   char *err, size_t errlen) {
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
    snprintf(err, errlen, "the image became %zu tokens, expected %d", n_img, MK_MMPROJ_IMAGE_TOKENS);
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
  mp_tensor(&b, "a.conv1d.1.weight", GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)(3 * M)), 3, M, E, 1);
  mp_tensor(&b, "a.conv1d.1.bias", GGML_TYPE_F32, MP_ZERO, 0, 1, E, 1, 1);
  mp_tensor(&b, "a.conv1d.2.weight", GGML_TYPE_F16, MP_RANDOM, 1.0f / sqrtf((float)(3 * E)), 3, E, E, 1);
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
