/* mmproj.c — a random-weight LLaVA-style projector GGUF, and its check through mtmd (see
 * mmproj.h). The tensor names, shapes and keys are those llama.cpp's clip loader
 * (tools/mtmd/clip.cpp, projector "mlp") reads; sizes are tiny, so the whole file is built in
 * memory (~0.3 MiB). */
#include "mmproj.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "gguf.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"
#include "proj.h"
#include "verify.h"

/* ---- weights ----------------------------------------------------------------------------- */

/* What a projector's tensors and keys depend on (the arg of mk_pb_write's callbacks). */
struct mp_args {
  int n_embd_text;
  uint64_t seed;
  int stack; /* the Ultravox projector's stack factor */
};

/* the ViT: conv patches [P, P, 3, E], class embedding, positions, pre-LN, blocks; then the
 * projector: E -> text, GELU, text -> text */
static void mp_vision_tensors(mk_pb *b, const void *arg) {
  const int n_embd_text = ((const struct mp_args *)arg)->n_embd_text;
  const int E = MK_MMPROJ_EMBD, P = MK_MMPROJ_PATCH, S = MK_MMPROJ_IMAGE_SIZE;
  const int n_pos = (S / P) * (S / P) + 1; /* patches + the class embedding */
  mk_pb_tensor4(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)(P * P * 3)), P, P, 3, E,
                "v.patch_embd.weight");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 0.02f, E, 1, 1, "v.class_embd");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 0.02f, E, n_pos, 1, "v.position_embd.weight");
  mk_pb_norm(b, E, "v.pre_ln");
  for (int il = 0; il < MK_MMPROJ_LAYERS; il++) mk_pb_encoder_block(b, "v", il, E, MK_MMPROJ_FF, 1);
  mk_pb_linear(b, E, n_embd_text, "mm.0");
  mk_pb_linear(b, n_embd_text, n_embd_text, "mm.2");
}

static void mp_vision_keys(struct gguf_context *g, const void *arg) {
  const struct mp_args *a = arg;
  mk_pb_header(g, "mkmodel tiny llava projector", a->seed,
               "LLaVA-style mlp projector, meaningless output");
  gguf_set_val_bool(g, "clip.has_vision_encoder", true);
  gguf_set_val_bool(g, "clip.has_audio_encoder", false);
  gguf_set_val_str(g, "clip.projector_type", "mlp");
  gguf_set_val_bool(g, "clip.use_gelu", false); /* CLIP's quick GELU */
  gguf_set_val_u32(g, "clip.vision.image_size", MK_MMPROJ_IMAGE_SIZE);
  gguf_set_val_u32(g, "clip.vision.patch_size", MK_MMPROJ_PATCH);
  gguf_set_val_u32(g, "clip.vision.embedding_length", MK_MMPROJ_EMBD);
  gguf_set_val_u32(g, "clip.vision.feed_forward_length", MK_MMPROJ_FF);
  gguf_set_val_u32(g, "clip.vision.block_count", MK_MMPROJ_LAYERS);
  gguf_set_val_u32(g, "clip.vision.projection_dim", (uint32_t)a->n_embd_text);
  gguf_set_val_u32(g, "clip.vision.attention.head_count", MK_MMPROJ_HEADS);
  gguf_set_val_f32(g, "clip.vision.attention.layer_norm_epsilon", 1e-5f);
  static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float stdv[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  gguf_set_arr_data(g, "clip.vision.image_mean", GGUF_TYPE_FLOAT32, mean, 3);
  gguf_set_arr_data(g, "clip.vision.image_std", GGUF_TYPE_FLOAT32, stdv, 3);
}

int mk_mmproj_write(const char *out_path, int n_embd_text, uint64_t seed, uint64_t *n_bytes,
                    char *err, size_t errlen) {
  if (n_embd_text <= 0 || n_embd_text > 65536) {
    snprintf(err, errlen, "mmproj: text width %d is out of range", n_embd_text);
    return -1;
  }
  const struct mp_args a = {n_embd_text, seed, 0};
  /* seeded apart from the text model's streams */
  return mk_pb_write(out_path, seed * 0x2545f4914f6cdd1dULL + 0x6d6d70726f6aULL, "mmproj",
                     mp_vision_tensors, mp_vision_keys, &a, n_bytes, err, errlen);
}

/* ---- verify ------------------------------------------------------------------------------ */

/* Tokenize prompt (mtmd's marker where it has %s) around one bitmap into chunks, and count the
 * tokens of the chunks of media type `type` into *n_media. 0, or -1 with err. */
unsigned char *mk_mm_test_image(int w, int h) {
  unsigned char *rgb = malloc((size_t)w * (size_t)h * 3);
  for (int y = 0; rgb && y < h; y++)
    for (int x = 0; x < w; x++) {
      unsigned char *px = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
      px[0] = (unsigned char)(x * 255 / (w > 1 ? w - 1 : 1));
      px[1] = (unsigned char)(y * 255 / (h > 1 ? h - 1 : 1));
      px[2] = (unsigned char)((x + y) & 0xff);
    }
  return rgb;
}

int mk_mm_tokenize_one(mtmd_context *mctx, const char *prompt_fmt, const mtmd_bitmap *bmp, int type,
                       mtmd_input_chunks *chunks, size_t *n_media, char *err, size_t errlen) {
  char prompt[128];
  snprintf(prompt, sizeof prompt, prompt_fmt, mtmd_default_marker());
  mtmd_input_text text = {prompt, strlen(prompt), true, true};
  const mtmd_bitmap *bitmaps[1] = {bmp};
  int32_t t = bmp && chunks ? mtmd_tokenize(mctx, chunks, &text, bitmaps, 1) : -1;
  if (t != 0) {
    snprintf(err, errlen, "mtmd_tokenize failed (%d)", (int)t);
    return -1;
  }
  *n_media = 0;
  for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
    const mtmd_input_chunk *c = mtmd_input_chunks_get(chunks, i);
    if ((int)mtmd_input_chunk_get_type(c) == type) *n_media += mtmd_input_chunk_get_n_tokens(c);
  }
  return 0;
}

/* Evaluate the chunks in batches of n_batch and check the next-token logits: finite, not all
 * equal. what: "image" or "audio", for the errors. 0 (*n_past, *range), or -1 with err. */
int mk_mm_eval_check(mtmd_context *mctx, struct llama_context *ctx, const struct llama_model *model,
                     mtmd_input_chunks *chunks, int n_batch, const char *what, llama_pos *n_past,
                     float *range, char *err, size_t errlen) {
  *n_past = 0;
  if (mtmd_helper_eval_chunks(mctx, ctx, chunks, 0, 0, n_batch, true, n_past) != 0) {
    snprintf(err, errlen, "mtmd_helper_eval_chunks failed");
    return -1;
  }
  const float *logits = llama_get_logits_ith(ctx, -1);
  int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  float lo = INFINITY, hi = -INFINITY;
  for (int i = 0; logits && i < n_vocab; i++) {
    if (!isfinite(logits[i])) {
      snprintf(err, errlen, "logit %d is not finite after the %s", i, what);
      return -1;
    }
    lo = logits[i] < lo ? logits[i] : lo;
    hi = logits[i] > hi ? logits[i] : hi;
  }
  if (!logits || !(hi - lo > 1e-6f)) {
    snprintf(err, errlen, "no usable logits after the %s", what);
    return -1;
  }
  *range = hi - lo;
  return 0;
}

int mk_mmproj_verify(const char *model_path, const char *mmproj_path, int threads, char *summary,
                     size_t summarylen, char *err, size_t errlen) {
  enum { W = 40, H = 30 };
  summary[0] = '\0';
  int rc = -1;
  struct llama_model *model = mk_verify_load(model_path);
  struct llama_context *ctx = NULL;
  mtmd_context *mctx = NULL;
  mtmd_bitmap *bmp = NULL;
  mtmd_input_chunks *chunks = NULL;
  unsigned char *rgb = NULL;
  if (!model) {
    snprintf(err, errlen, "llama.cpp cannot load %s", model_path);
    return -1;
  }
  mctx = mk_verify_mtmd(mmproj_path, model, threads);
  if (!mctx || !mtmd_support_vision(mctx)) {
    snprintf(err, errlen, "mtmd cannot load %s with %s (run with --verbose for its log)",
             mmproj_path, model_path);
    goto done;
  }
  ctx = mk_verify_context(model, 256, 256, threads, 0);
  rgb = mk_mm_test_image(W, H);
  if (!ctx || !rgb) {
    snprintf(err, errlen, "cannot create a llama context");
    goto done;
  }
  bmp = mtmd_bitmap_init(W, H, rgb);
  chunks = mtmd_input_chunks_init();
  size_t n_img = 0;
  if (mk_mm_tokenize_one(mctx, "Describe this picture: %s in one word.", bmp,
                         MTMD_INPUT_CHUNK_TYPE_IMAGE, chunks, &n_img, err, errlen) != 0)
    goto done;
  if (n_img != MK_MMPROJ_IMAGE_TOKENS) {
    snprintf(err, errlen, "the image became %zu tokens, expected %d", n_img,
             MK_MMPROJ_IMAGE_TOKENS);
    goto done;
  }
  llama_pos n_past;
  float range;
  if (mk_mm_eval_check(mctx, ctx, model, chunks, 256, "image", &n_past, &range, err, errlen) != 0)
    goto done;
  snprintf(summary, summarylen,
           "a %dx%d image is %zu tokens of %zu in the prompt (n_pos %d); logits finite, range %.3f",
           W, H, n_img, mtmd_helper_get_n_tokens(chunks), (int)n_past, (double)range);
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

/* the whisper encoder: two convolutions over the mel frames (the second halves them), learned
 * positions, pre-norm blocks (k without a bias, as whisper), a final norm; then the Ultravox
 * projector: K frames stacked, RMS norm, SwiGLU MLP (no biases), RMS norm, out */
static void mp_audio_tensors(mk_pb *b, const void *arg) {
  const struct mp_args *a = arg;
  const int E = MK_AMMPROJ_EMBD, K = a->stack, PF = MK_AMMPROJ_PROJ_FF;
  mk_pb_whisper_encoder(b, E, MK_AMMPROJ_MEL, MK_AMMPROJ_LAYERS, MK_AMMPROJ_FF);
  mk_pb_vec(b, MK_P_ONE, E * K, "mm.a.norm_pre.weight");
  mk_pb_mat(b, E * K, 2 * PF, "mm.a.mlp.1.weight");
  mk_pb_vec(b, MK_P_ONE, PF, "mm.a.norm_mid.weight");
  mk_pb_mat(b, PF, a->n_embd_text, "mm.a.mlp.2.weight");
}

static void mp_audio_keys(struct gguf_context *g, const void *arg) {
  const struct mp_args *a = arg;
  mk_pb_header(g, "mkmodel tiny ultravox projector", a->seed,
               "Ultravox-style whisper encoder + stacked frames + SwiGLU MLP, meaningless output");
  gguf_set_val_bool(g, "clip.has_vision_encoder", false);
  gguf_set_val_bool(g, "clip.has_audio_encoder", true);
  gguf_set_val_str(g, "clip.projector_type", "ultravox");
  gguf_set_val_u32(g, "clip.audio.embedding_length", MK_AMMPROJ_EMBD);
  gguf_set_val_u32(g, "clip.audio.feed_forward_length", MK_AMMPROJ_FF);
  gguf_set_val_u32(g, "clip.audio.block_count", MK_AMMPROJ_LAYERS);
  gguf_set_val_u32(g, "clip.audio.projection_dim", (uint32_t)a->n_embd_text);
  gguf_set_val_u32(g, "clip.audio.attention.head_count", MK_AMMPROJ_HEADS);
  gguf_set_val_f32(g, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
  gguf_set_val_u32(g, "clip.audio.num_mel_bins", MK_AMMPROJ_MEL);
  gguf_set_val_u32(g, "clip.audio.projector.stack_factor", (uint32_t)a->stack);
}

int mk_mmproj_audio_write(const char *out_path, int n_embd_text, int stack, uint64_t seed,
                          uint64_t *n_bytes, char *err, size_t errlen) {
  if (n_embd_text <= 0 || n_embd_text > 65536 || stack < 1 || stack > 64) {
    snprintf(err, errlen, "mmproj: text width %d or stack factor %d is out of range", n_embd_text,
             stack);
    return -1;
  }
  const struct mp_args a = {n_embd_text, seed, stack};
  /* seeded apart from the text model's streams */
  return mk_pb_write(out_path, seed * 0x2545f4914f6cdd1dULL + 0x617564696f70ULL, "mmproj",
                     mp_audio_tensors, mp_audio_keys, &a, n_bytes, err, errlen);
}

int mk_mmproj_audio_verify(const char *model_path, const char *mmproj_path, int threads,
                           long expect_tokens, int eval, char *summary, size_t summarylen,
                           char *err, size_t errlen) {
  summary[0] = '\0';
  int rc = -1;
  struct llama_model *model = mk_verify_load(model_path);
  struct llama_context *ctx = NULL;
  mtmd_context *mctx = NULL;
  mtmd_bitmap *bmp = NULL;
  mtmd_input_chunks *chunks = NULL;
  float *pcm = NULL;
  if (!model) {
    snprintf(err, errlen, "llama.cpp cannot load %s", model_path);
    return -1;
  }
  mctx = mk_verify_mtmd(mmproj_path, model, threads);
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
  ctx = mk_verify_context(model, 1024, 512, threads, 0);
  pcm = malloc(sizeof(float) * (size_t)rate);
  if (!ctx || !pcm) {
    snprintf(err, errlen, "cannot create a llama context");
    goto done;
  }
  for (int i = 0; i < rate; i++) /* 1 s of a 440 Hz sine at half scale */
    pcm[i] = 0.5f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / (float)rate);
  bmp = mtmd_bitmap_init_from_audio((size_t)rate, pcm);
  chunks = mtmd_input_chunks_init();
  size_t n_aud = 0;
  if (mk_mm_tokenize_one(mctx, "Listen: %s What is it?", bmp, MTMD_INPUT_CHUNK_TYPE_AUDIO, chunks,
                         &n_aud, err, errlen) != 0)
    goto done;
  if ((long)n_aud != expect_tokens) {
    snprintf(err, errlen, "1 s of audio became %zu tokens, expected %ld", n_aud, expect_tokens);
    goto done;
  }
  llama_pos n_past = 0;
  float range = 0;
  if (!eval) {
    snprintf(summary, summarylen,
             "1 s of %d Hz audio is %zu tokens of %zu in the prompt; not encoded: the pinned mtmd "
             "aborts on this projector (its graph gives one token more than its count)",
             rate, n_aud, mtmd_helper_get_n_tokens(chunks));
    rc = 0;
    goto done;
  }
  if (mk_mm_eval_check(mctx, ctx, model, chunks, 512, "audio", &n_past, &range, err, errlen) != 0)
    goto done;
  snprintf(summary, summarylen,
           "1 s of %d Hz audio is %zu tokens of %zu in the prompt (n_pos %d); logits finite, "
           "range %.3f",
           rate, n_aud, mtmd_helper_get_n_tokens(chunks), (int)n_past, (double)range);
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

/* A mimi transformer layer (no biases, layer scales): PFX.blk.IL.{ln1, attn_q, attn_k, attn_v,
 * attn_out, ls1, ln2, ffn_up, ffn_down, ls2}. */
static void mp_mimi_layer(mk_pb *b, const char *pfx, int il, int64_t M, int64_t FF) {
  static const char *const attn[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
  mk_pb_norm(b, M, "%s.blk.%d.ln1", pfx, il);
  for (int k = 0; k < 4; k++) mk_pb_mat(b, M, M, "%s.blk.%d.%s.weight", pfx, il, attn[k]);
  mk_pb_vec(b, MK_P_ONE, M, "%s.blk.%d.ls1.weight", pfx, il);
  mk_pb_norm(b, M, "%s.blk.%d.ln2", pfx, il);
  mk_pb_mat(b, M, FF, "%s.blk.%d.ffn_up.weight", pfx, il);
  mk_pb_mat(b, FF, M, "%s.blk.%d.ffn_down.weight", pfx, il);
  mk_pb_vec(b, MK_P_ONE, M, "%s.blk.%d.ls2.weight", pfx, il);
}

static void mp_tts_tensors(mk_pb *b, const void *arg) {
  const int n_embd_text = ((const struct mp_args *)arg)->n_embd_text;
  const int D = n_embd_text, L = MK_TTS_LATENT, C = MK_TTS_FLOW, M = MK_TTS_MIMI;
  const int NF = MK_TTS_FREQS;
  /* SEANet decoder widths: conv_in to S[0], each stage halves (strides 6, 5, 4 in clip.cpp) */
  static const int S[4] = {64, 32, 16, 8};
  static const int stride[3] = {6, 5, 4};

  /* voice encoder: SEANet encoder (1 -> 8 -> 16 -> 32 -> 64 channels, strides 4, 5, 6), one
   * mimi layer, 16x downsample, projection into the backbone */
  static const int E[4] = {8, 16, 32, 64};
  static const int es[3] = {4, 5, 6};
  mk_pb_conv(b, 7, 1, E[0], "a.seanet.conv_in");
  for (int i = 0; i < 3; i++) {
    mk_pb_conv(b, 3, E[i], E[i] / 2, "a.seanet.blk.%d.res_conv1", i);
    mk_pb_conv(b, 1, E[i] / 2, E[i], "a.seanet.blk.%d.res_conv2", i);
    mk_pb_conv(b, 2 * es[i], E[i], E[i + 1], "a.seanet.blk.%d.scale_conv", i);
  }
  mk_pb_conv(b, 7, E[3], M, "a.seanet.conv_out");
  for (int il = 0; il < MK_TTS_LAYERS; il++) mp_mimi_layer(b, "a", il, M, MK_TTS_FF);
  mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)(32 * M)), 32, M, M,
               "a.downsample.conv.weight");
  mk_pb_mat(b, M, D, "a.speaker_proj.weight");

  /* flow net: backbone state + noise -> one latent */
  mk_pb_linear(b, L, C, "a.gen.flow.input_proj");
  mk_pb_linear(b, D, C, "a.gen.flow.cond_embd");
  for (int i = 0; i < 2; i++) {
    mk_pb_vec(b, MK_P_RANDOM, NF, "a.gen.flow.time.%d.freqs", i);
    mk_pb_linear(b, 2 * NF, C, "a.gen.flow.time.%d.up", i);
    mk_pb_linear(b, C, C, "a.gen.flow.time.%d.down", i);
    mk_pb_vec(b, MK_P_ONE, C, "a.gen.flow.time.%d.norm", i);
  }
  for (int il = 0; il < MK_TTS_FLOW_BLOCKS; il++) {
    mk_pb_norm(b, C, "a.gen.flow.blk.%d.norm", il);
    mk_pb_linear(b, C, C, "a.gen.flow.blk.%d.up", il);
    mk_pb_linear(b, C, C, "a.gen.flow.blk.%d.down", il);
    mk_pb_linear(b, C, 3 * C, "a.gen.flow.blk.%d.ada", il);
  }
  mk_pb_linear(b, C, 2 * C, "a.gen.flow.final.ada");
  mk_pb_linear(b, C, L, "a.gen.flow.final.proj");
  /* end-of-speech head: score ~ N(-4.5, 1) against clip's -4 threshold, so it fires after a
   * few frames (and not on the first), exercising both the EOS tail and the windowing */
  mk_pb_mat(b, D, 1, "a.gen.out_eos.weight");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_CONST, -4.5f, 1, 1, 1, "a.gen.out_eos.bias");
  mk_pb_mat(b, L, D, "a.gen.input_linear.weight");
  mk_pb_vec(b, MK_P_ZERO, L, "a.gen.emb_mean");
  mk_pb_vec(b, MK_P_ONE, L, "a.gen.emb_std");

  /* mimi decoder: latent -> M, depthwise 16x upsample, transformer, SEANet */
  mk_pb_mat(b, L, M, "a.gen.wav.quant_out.weight");
  mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf(32.0f), 32, 1, M,
               "a.gen.wav.upsample.weight");
  for (int il = 0; il < MK_TTS_LAYERS; il++) mp_mimi_layer(b, "a.gen.wav.tfm", il, M, MK_TTS_FF);
  mk_pb_conv(b, 7, M, S[0], "a.gen.wav.seanet.conv_in");
  for (int i = 0; i < 3; i++) {
    /* transposed conv: [2*stride, out, in] */
    mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)(2 * stride[i] * S[i])),
                 2 * stride[i], S[i + 1], S[i], "a.gen.wav.seanet.blk.%d.scale_conv.weight", i);
    mk_pb_vec(b, MK_P_ZERO, S[i + 1], "a.gen.wav.seanet.blk.%d.scale_conv.bias", i);
    mk_pb_conv(b, 3, S[i + 1], S[i + 1] / 2, "a.gen.wav.seanet.blk.%d.res_conv1", i);
    mk_pb_conv(b, 1, S[i + 1] / 2, S[i + 1], "a.gen.wav.seanet.blk.%d.res_conv2", i);
  }
  mk_pb_conv(b, 7, S[3], 1, "a.gen.wav.seanet.conv_out");
}

static void mp_tts_keys(struct gguf_context *g, const void *arg) {
  const struct mp_args *a = arg;
  mk_pb_header(g, "mkmodel tiny pocket-tts projector", a->seed,
               "pocket-tts flow net and mimi decoder, noise for audio");
  gguf_set_val_bool(g, "clip.has_vision_encoder", false);
  /* mtmd refuses a file with neither a vision nor an audio encoder, so the voice encoder
   * (mimi encoder + speaker projection, for reference clips) is always there, as the
   * converter writes it */
  gguf_set_val_bool(g, "clip.has_audio_encoder", true);
  gguf_set_val_str(g, "clip.audio.projector_type", "pockettts_spkenc");
  gguf_set_val_u32(g, "clip.audio.projection_dim", (uint32_t)a->n_embd_text);
  gguf_set_val_u32(g, "clip.audio.embedding_length", MK_TTS_MIMI);
  gguf_set_val_u32(g, "clip.audio.feed_forward_length", MK_TTS_FF);
  gguf_set_val_u32(g, "clip.audio.block_count", MK_TTS_LAYERS);
  gguf_set_val_u32(g, "clip.audio.attention.head_count", MK_TTS_HEADS);
  gguf_set_val_f32(g, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
  gguf_set_val_u32(g, "clip.audio.num_mel_bins", 1); /* the raw waveform, one row */
  gguf_set_val_bool(g, "clip.has_gen_audio_encoder", true);
  gguf_set_val_str(g, "clip.gen.audio.projector_type", "pockettts_gen");
  gguf_set_val_u32(g, "clip.gen.audio.projection_dim", (uint32_t)a->n_embd_text);
  gguf_set_val_u32(g, "clip.gen.audio.embedding_length", MK_TTS_MIMI);
  gguf_set_val_u32(g, "clip.gen.audio.feed_forward_length", MK_TTS_FF);
  gguf_set_val_u32(g, "clip.gen.audio.block_count", MK_TTS_LAYERS);
  gguf_set_val_u32(g, "clip.gen.audio.attention.head_count", MK_TTS_HEADS);
  gguf_set_val_f32(g, "clip.gen.audio.attention.layer_norm_epsilon", 1e-5f);
  gguf_set_val_str(g, "clip.gen.audio.model_variant", "mkmodel");
}

int mk_ttsproj_write(const char *out_path, int n_embd_text, uint64_t seed, uint64_t *n_bytes,
                     char *err, size_t errlen) {
  if (n_embd_text < 8 || n_embd_text > 65536) {
    snprintf(err, errlen, "ttsproj: text width %d is out of range", n_embd_text);
    return -1;
  }
  const struct mp_args a = {n_embd_text, seed, 0};
  /* seeded apart from the text model's streams */
  return mk_pb_write(out_path, seed * 0x2545f4914f6cdd1dULL + 0x7474737072ULL, "ttsproj",
                     mp_tts_tensors, mp_tts_keys, &a, n_bytes, err, errlen);
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
  float *feats = NULL, *h = NULL;
  mk_wav_acc acc = {0}; /* the audio so far, and the decoder state */
  mk_gen_check c;
  if (mk_gen_open(&c, model_path, mmproj_path, threads, MTMD_GEN_AUDIO_TYPE_POCKETTTS, "pocket-tts",
                  err, errlen) != 0)
    return -1;
  struct llama_context *ctx = c.ctx;
  mtmd_context *mctx = c.mctx;
  const struct llama_vocab *vocab = c.vocab;
  const int n_embd = c.n_embd;
  llama_token bos = mk_verify_find_token(vocab, "<|audio_bos|>");
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
      w.feats = feats;
      w.n_feats = n_feats;
      if (mk_wav_gen(&acc, mctx, &w, n_feats / latent, MK_TTS_SAMPLES_PER_FRAME, err, errlen) != 0)
        goto done;
      n_feats = 0;
    }
  }
  double rms;
  if (mk_wav_done(&acc, &rms, err, errlen) != 0) goto done;
  snprintf(summary, summarylen,
           "%d frames (latent %zu, EOS head fired %d times) -> %zu samples at %d Hz, rms %.4f, "
           "decoder state %zu bytes",
           N_FRAMES, latent, n_eos, acc.n_samples, c.sample_rate, rms, acc.state_n);
  rc = 0;
done:
  free(acc.state);
  free(feats);
  free(h);
  mk_gen_close(&c);
  return rc;
}

static int mk_wav_take(mk_wav_acc *a, const float *audio, size_t n, const void *state,
                       size_t state_n, char *err, size_t errlen) {
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

int mk_wav_gen(mk_wav_acc *a, struct mtmd_context *mctx, struct mtmd_gen_inp *w, size_t n_frames,
               size_t per_frame, char *err, size_t errlen) {
  struct mtmd_gen_out out;
  w->type = MTMD_GEN_PROCESS_TYPE_GEN_WAV;
  w->seed = 1u;
  w->state_data = a->state;
  w->state_size = a->state_n;
  if (mtmd_gen_audio_process(mctx, w, &out) != 0 || !out.audio ||
      out.n_samples != n_frames * per_frame) {
    snprintf(err, errlen, "GEN_WAV failed or gave %zu samples for %zu frames", out.n_samples,
             n_frames);
    return -1;
  }
  return mk_wav_take(a, out.audio, out.n_samples, out.state_data, out.state_size, err, errlen);
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

int mk_gen_open(mk_gen_check *c, const char *model_path, const char *mmproj_path, int threads,
                int gen_type, const char *label, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  c->model = mk_verify_load(model_path);
  if (!c->model) {
    snprintf(err, errlen, "llama.cpp cannot load %s", model_path);
    return -1;
  }
  c->vocab = llama_model_get_vocab(c->model);
  c->n_embd = llama_model_n_embd(c->model);
  c->mctx = mk_verify_mtmd(mmproj_path, c->model, threads);
  struct mtmd_gen_audio_info info =
      c->mctx ? mtmd_gen_audio_get_info(c->mctx) : (struct mtmd_gen_audio_info){0};
  c->sample_rate = info.sample_rate;
  if (!c->mctx || (int)info.type != gen_type) {
    snprintf(err, errlen, "mtmd cannot load %s as a %s projector for %s", mmproj_path, label,
             model_path);
    mk_gen_close(c);
    return -1;
  }
  c->ctx = mk_verify_context(c->model, 256, 256, threads, 1);
  if (!c->ctx) {
    snprintf(err, errlen, "cannot create a llama context");
    mk_gen_close(c);
    return -1;
  }
  return 0;
}

void mk_gen_close(mk_gen_check *c) {
  if (c->mctx) mtmd_free(c->mctx);
  if (c->ctx) llama_free(c->ctx);
  if (c->model) llama_model_free(c->model);
  memset(c, 0, sizeof *c);
}
