/* arch_qwenvl.c — the Qwen vision-language pair for mkmodel (see arch_qwenvl.h). Names, shapes
 * and keys are those llama.cpp's loaders read (src/models/qwen2vl.cpp, qwen3vl.cpp;
 * tools/mtmd/clip.cpp, models/qwen2vl.cpp, models/qwen3vl.cpp) and its converter writes
 * (conversion/qwenvl.py, qwen3vl.py); nothing is copied from them. */
#include "arch_qwenvl.h"
#include "meta.h"
#include "mmproj.h"
#include "proj.h"
#include "verify.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"

/* ---- text model ------------------------------------------------------------------------ */

/* The real checkpoints' widths: a text model of this width gets the real projector. */
#define QVL_REAL_EMBD_QWEN25 3584 /* Qwen2.5-VL-7B */
#define QVL_REAL_EMBD_QWEN3 4096  /* Qwen3-VL-8B */
#define QVL_TINY_DEEPSTACK 2      /* deepstack mergers of the tiny qwen3vl projector */
#define QVL_REAL_DEEPSTACK 3      /* Qwen3-VL-8B: deepstack_visual_indexes [8, 16, 24] */

int mk_qwenvl_is(const struct mk_spec *s) {
  return s->arch == MK_ARCH_QWEN2VL || s->arch == MK_ARCH_QWEN3VL || s->arch == MK_ARCH_QWEN3VLMOE;
}

/* Qwen3-VL's text model, dense or MoE: the qwen3vl_merger projector with deepstack */
static int qvl_qwen3(const struct mk_spec *s) {
  return s->arch == MK_ARCH_QWEN3VL || s->arch == MK_ARCH_QWEN3VLMOE;
}

static int qvl_real(const struct mk_spec *s) {
  return s->n_embd == (s->arch == MK_ARCH_QWEN2VL ? QVL_REAL_EMBD_QWEN25 : QVL_REAL_EMBD_QWEN3);
}

/* deepstack inputs of a qwen3vl text model: Qwen3-VL's; none for an audio LLM's (Qwen3-ASR) */
static int qvl_deepstack(const struct mk_spec *s) {
  if (!qvl_qwen3(s) || s->alm) return 0;
  return qvl_real(s) ? QVL_REAL_DEEPSTACK : QVL_TINY_DEEPSTACK;
}

int mk_qwenvl_check(const struct mk_spec *s, char *err, size_t errlen) {
  if (s->n_layer <= qvl_deepstack(s)) {
    snprintf(err, errlen, "qwen3vl needs --n-layer > %d (its deepstack inputs)", qvl_deepstack(s));
    return -1;
  }
  return 0;
}

int mk_qwenvl_meta(struct gguf_context *g, const struct mk_spec *s) {
  const char *arch = mk_arch_name(s->arch);
  char key[96];
  /* M-RoPE over head_dim/2 rotary pairs, as the converters write rope_scaling.mrope_section:
   * Qwen2.5-VL's 128-wide heads 16/24/24, Qwen3-VL's 24/20/20 (interleaved) */
  int32_t half = s->head_dim / 2;
  int32_t side = s->arch == MK_ARCH_QWEN2VL ? half * 3 / 8 : half * 5 / 16;
  int32_t sections[4] = {half - 2 * side, side, side, 0};
  snprintf(key, sizeof key, "%s.rope.dimension_sections", arch);
  gguf_set_arr_data(g, key, GGUF_TYPE_INT32, sections, 4);
  if (qvl_qwen3(s)) {
    snprintf(key, sizeof key, "%s.n_deepstack_layers", arch);
    gguf_set_val_u32(g, key, (uint32_t)qvl_deepstack(s));
  }
  return mk_meta_qwen_added(
             g, s->arch == MK_ARCH_QWEN2VL ? MK_QWEN_ADDED_QWEN25 : MK_QWEN_ADDED_QWEN3) < 0
             ? -1
             : 0;
}

/* ---- projector --------------------------------------------------------------------------- */

/* A vision tower's shape (the keys' and tensors' sizes). */
struct qvl_vit {
  int embd, heads, ff, layers, patch, image_size;
  int wa_pattern; /* qwen2.5vl: every wa_pattern-th block attends fully, the others in windows */
  int n_ds;       /* qwen3vl: deepstack mergers, after blocks ds[0..n_ds) */
  int ds[QVL_REAL_DEEPSTACK];
};

/* Qwen2.5-VL-7B's vision_config: depth 32, hidden 1280, 16 heads, intermediate 3420, patch 14,
 * fullatt_block_indexes [7, 15, 23, 31]; Qwen3-VL-8B's: depth 27, hidden 1152, 16 heads,
 * intermediate 4304, patch 16, 2304 position embeddings (48 x 48), deepstack [8, 16, 24]. The
 * tiny ones keep the structure: qwen2.5vl one windowed and one full block, qwen3vl three blocks
 * with deepstack after the first two. */
static const struct qvl_vit qvl_tiny25 = {64, 4, 128, 2, 14, 560, 2, 0, {0}};
static const struct qvl_vit qvl_real25 = {1280, 16, 3420, 32, 14, 560, 8, 0, {0}};
static const struct qvl_vit qvl_tiny3 = {64, 4, 128, 3, 16, 64, 0, QVL_TINY_DEEPSTACK, {0, 1}};
static const struct qvl_vit qvl_real3 = {1152,       16, 4304, 27, 16, 768, 0, QVL_REAL_DEEPSTACK,
                                         {8, 16, 24}};

struct qvl_args {
  const struct qvl_vit *v;
  int qwen3; /* qwen3vl_merger, else qwen2.5vl_merger */
  int n_embd_text;
  uint64_t seed;
};

/* The patch embedding: the converter splits the Conv3D over 2 frames into two Conv2Ds. */
static void qvl_patch(mk_pb *b, const struct qvl_vit *v) {
  float std = 1.0f / sqrtf((float)(v->patch * v->patch * 3 * 2));
  mk_pb_tensor4(b, GGML_TYPE_F16, MK_P_RANDOM, std, v->patch, v->patch, 3, v->embd,
                "v.patch_embd.weight");
  mk_pb_tensor4(b, GGML_TYPE_F16, MK_P_RANDOM, std, v->patch, v->patch, 3, v->embd,
                "v.patch_embd.weight.1");
}

static void qvl_tensors(mk_pb *b, const void *arg) {
  const struct qvl_args *a = arg;
  const struct qvl_vit *v = a->v;
  const int64_t E = v->embd, M = 4 * E; /* 2x2 patches merged */
  qvl_patch(b, v);
  if (a->qwen3) {
    int side = v->image_size / v->patch;
    mk_pb_vec(b, MK_P_ZERO, E, "v.patch_embd.bias");
    mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 0.02f, E, (int64_t)side * side, 1,
                 "v.position_embd.weight");
  }
  for (int il = 0; il < v->layers; il++) {
    if (a->qwen3) { /* fused qkv, LayerNorms, GELU FFN */
      mk_pb_linear(b, E, 3 * E, "v.blk.%d.attn_qkv", il);
      mk_pb_linear(b, E, E, "v.blk.%d.attn_out", il);
      mk_pb_norm(b, E, "v.blk.%d.ln1", il);
      mk_pb_norm(b, E, "v.blk.%d.ln2", il);
      mk_pb_linear(b, E, v->ff, "v.blk.%d.ffn_up", il);
      mk_pb_linear(b, v->ff, E, "v.blk.%d.ffn_down", il);
    } else { /* q/k/v with biases, RMS norms, gated SiLU FFN with biases */
      mk_pb_linear(b, E, E, "v.blk.%d.attn_q", il);
      mk_pb_linear(b, E, E, "v.blk.%d.attn_k", il);
      mk_pb_linear(b, E, E, "v.blk.%d.attn_v", il);
      mk_pb_linear(b, E, E, "v.blk.%d.attn_out", il);
      mk_pb_vec(b, MK_P_ONE, E, "v.blk.%d.ln1.weight", il);
      mk_pb_vec(b, MK_P_ONE, E, "v.blk.%d.ln2.weight", il);
      mk_pb_linear(b, E, v->ff, "v.blk.%d.ffn_gate", il);
      mk_pb_linear(b, E, v->ff, "v.blk.%d.ffn_up", il);
      mk_pb_linear(b, v->ff, E, "v.blk.%d.ffn_down", il);
    }
  }
  /* the merger: a norm over each patch, 2x2 patches concatenated, GELU MLP into the text */
  if (a->qwen3)
    mk_pb_norm(b, E, "v.post_ln");
  else
    mk_pb_vec(b, MK_P_ONE, E, "v.post_ln.weight");
  mk_pb_linear(b, M, M, "mm.0");
  mk_pb_linear(b, M, a->n_embd_text, "mm.2");
  /* qwen3vl: a merger after each deepstack block, its output fed to the text layer of its rank */
  for (int k = 0; k < v->n_ds; k++) {
    mk_pb_norm(b, M, "v.deepstack.%d.norm", v->ds[k]);
    mk_pb_linear(b, M, M, "v.deepstack.%d.fc1", v->ds[k]);
    mk_pb_linear(b, M, a->n_embd_text, "v.deepstack.%d.fc2", v->ds[k]);
  }
}

static void qvl_keys(struct gguf_context *g, const void *arg) {
  const struct qvl_args *a = arg;
  const struct qvl_vit *v = a->v;
  mk_pb_header(g, a->qwen3 ? "mkmodel qwen3-vl projector" : "mkmodel qwen2.5-vl projector", a->seed,
               a->qwen3
                   ? "Qwen3-VL vision tower + merger + deepstack, meaningless output"
                   : "Qwen2.5-VL vision tower (window attention) + merger, meaningless output");
  gguf_set_val_bool(g, "clip.has_vision_encoder", true);
  gguf_set_val_bool(g, "clip.has_audio_encoder", false);
  gguf_set_val_str(g, "clip.projector_type", a->qwen3 ? "qwen3vl_merger" : "qwen2.5vl_merger");
  if (a->qwen3)
    gguf_set_val_bool(g, "clip.use_gelu", true);
  else
    gguf_set_val_bool(g, "clip.use_silu", true);
  gguf_set_val_u32(g, "clip.vision.image_size", (uint32_t)v->image_size);
  gguf_set_val_u32(g, "clip.vision.patch_size", (uint32_t)v->patch);
  gguf_set_val_u32(g, "clip.vision.embedding_length", (uint32_t)v->embd);
  gguf_set_val_u32(g, "clip.vision.feed_forward_length", (uint32_t)v->ff);
  gguf_set_val_u32(g, "clip.vision.block_count", (uint32_t)v->layers);
  gguf_set_val_u32(g, "clip.vision.projection_dim", (uint32_t)a->n_embd_text);
  gguf_set_val_u32(g, "clip.vision.attention.head_count", (uint32_t)v->heads);
  gguf_set_val_f32(g, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
  if (a->qwen3)
    gguf_set_val_u32(g, "clip.vision.spatial_merge_size", 2);
  else
    gguf_set_val_u32(g, "clip.vision.n_wa_pattern", (uint32_t)v->wa_pattern);
  if (a->qwen3) {
    bool ds[64] = {false}; /* clip.vision.is_deepstack_layers, as the converter writes it */
    for (int k = 0; k < v->n_ds; k++) ds[v->ds[k]] = true;
    gguf_set_arr_data(g, "clip.vision.is_deepstack_layers", GGUF_TYPE_BOOL, ds, (size_t)v->layers);
  }
  /* Qwen2.5-VL's and Qwen3-VL's preprocessor_config.json */
  static const float mean25[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float std25[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  static const float half3[3] = {0.5f, 0.5f, 0.5f};
  gguf_set_arr_data(g, "clip.vision.image_mean", GGUF_TYPE_FLOAT32, a->qwen3 ? half3 : mean25, 3);
  gguf_set_arr_data(g, "clip.vision.image_std", GGUF_TYPE_FLOAT32, a->qwen3 ? half3 : std25, 3);
}

int mk_qwenvl_proj_write(const char *out_path, const struct mk_spec *s, uint64_t seed,
                         uint64_t *n_bytes, char *err, size_t errlen) {
  if (!mk_qwenvl_is(s) || s->n_embd < 8 || s->n_embd > 65536) {
    snprintf(err, errlen, "mmproj: a Qwen-VL projector needs a qwen2vl or qwen3vl text model");
    return -1;
  }
  int qwen3 = qvl_qwen3(s), real = qvl_real(s);
  const struct qvl_args a = {
      qwen3 ? (real ? &qvl_real3 : &qvl_tiny3) : (real ? &qvl_real25 : &qvl_tiny25), qwen3,
      s->n_embd, seed};
  /* seeded apart from the text model's streams and the other projectors' */
  return mk_pb_write(out_path, seed * 0x2545f4914f6cdd1dULL + 0x7177656e766cULL, "mmproj",
                     qvl_tensors, qvl_keys, &a, n_bytes, err, errlen);
}

/* ---- verify ------------------------------------------------------------------------------ */

int mk_qwenvl_proj_verify(const char *model_path, const char *mmproj_path, const struct mk_spec *s,
                          int threads, char *summary, size_t summarylen, char *err, size_t errlen) {
  summary[0] = '\0';
  int qwen3 = qvl_qwen3(s);
  const struct qvl_vit *v =
      qwen3 ? (qvl_real(s) ? &qvl_real3 : &qvl_tiny3) : (qvl_real(s) ? &qvl_real25 : &qvl_tiny25);
  const int W = MK_QVL_VERIFY_GRID_X * v->patch * 2, H = MK_QVL_VERIFY_GRID_Y * v->patch * 2;
  const size_t want = (size_t)MK_QVL_VERIFY_GRID_X * MK_QVL_VERIFY_GRID_Y;
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
  if (!mctx || !mtmd_support_vision(mctx) || !mtmd_decode_use_mrope(mctx)) {
    snprintf(err, errlen, "mtmd cannot load %s with %s as an M-RoPE vision projector (--verbose)",
             mmproj_path, model_path);
    goto done;
  }
  ctx = mk_verify_context(model, 256, 256, threads, 0);
  rgb = mk_mm_test_image(W, H);
  if (!ctx || !rgb) {
    snprintf(err, errlen, "cannot create a llama context");
    goto done;
  }
  bmp = mtmd_bitmap_init((uint32_t)W, (uint32_t)H, rgb);
  chunks = mtmd_input_chunks_init();
  size_t n_img = 0;
  if (mk_mm_tokenize_one(mctx, "Describe this picture: %s in one word.", bmp,
                         MTMD_INPUT_CHUNK_TYPE_IMAGE, chunks, &n_img, err, errlen) != 0)
    goto done;
  /* text, <|vision_start|> | image | <|vision_end|>, text */
  const mtmd_input_chunk *before =
      mtmd_input_chunks_size(chunks) == 3 ? mtmd_input_chunks_get(chunks, 0) : NULL;
  size_t nt = 0;
  const llama_token *t = before ? mtmd_input_chunk_get_tokens_text(before, &nt) : NULL;
  llama_token vs = mk_verify_find_token(llama_model_get_vocab(model), "<|vision_start|>");
  if (!t || nt == 0 || vs < 0 || t[nt - 1] != vs) {
    snprintf(err, errlen, "the image is not preceded by the <|vision_start|> token (%d)", (int)vs);
    goto done;
  }
  llama_pos img_pos = mtmd_input_chunk_get_n_pos(mtmd_input_chunks_get(chunks, 1));
  if (n_img != want || img_pos != MK_QVL_VERIFY_GRID_X) {
    snprintf(err, errlen, "a %dx%d image became %zu tokens at %d positions, expected %zu at %d", W,
             H, n_img, (int)img_pos, want, MK_QVL_VERIFY_GRID_X);
    goto done;
  }
  int32_t n_past;
  float range;
  if (mk_mm_eval_check(mctx, ctx, model, chunks, 256, "image", &n_past, &range, err, errlen) != 0)
    goto done;
  snprintf(summary, summarylen,
           "a %dx%d image is %zu tokens (%d positions) of %zu in the prompt (n_pos %d); logits "
           "finite, range %.3f",
           W, H, n_img, (int)img_pos, mtmd_helper_get_n_tokens(chunks), (int)n_past, (double)range);
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
