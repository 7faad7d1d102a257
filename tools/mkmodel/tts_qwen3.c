/* tts_qwen3.c — the Qwen3-TTS pair for mkmodel (see tts_qwen3.h). Tensor names, shapes and
 * keys are those llama.cpp's clip loader (tools/mtmd/clip.cpp, projectors qwen3tts_gen and
 * qwen3tts_spkenc) and its converter (conversion/qwen3tts.py) use; nothing is copied from them. */
#include "tts_qwen3.h"
#include "mmproj.h"
#include "proj.h"
#include "verify.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml.h"
#include "llama.h"
#include "mtmd.h"

/* ---- vocabulary ------------------------------------------------------------------------ */

/* codec ids with a name in the real talker_config (the converter names them <|prefix|>) */
static const struct {
  int id;
  const char *name;
} q3t_named[] = {
    {2148, "<|codec_pad|>"},
    {2149, "<|codec_bos|>"},
    {2150, "<|codec_eos_token|>"},
    {2154, "<|codec_think|>"},
    {2155, "<|codec_nothink|>"},
    {2156, "<|codec_think_bos|>"},
    {2157, "<|codec_think_eos|>"},
    {2050, "<|codec_language_english|>"},
    {2053, "<|codec_language_german|>"},
    {2054, "<|codec_language_spanish|>"},
    {2055, "<|codec_language_chinese|>"},
    {2058, "<|codec_language_japanese|>"},
    {2061, "<|codec_language_french|>"},
    {2064, "<|codec_language_korean|>"},
    {2069, "<|codec_language_russian|>"},
    {2070, "<|codec_language_italian|>"},
    {2071, "<|codec_language_portuguese|>"},
};

const char *const *mk_qwen3tts_extra_names(void) {
  static char storage[MK_Q3T_N_CODEC][24];
  static const char *names[MK_Q3T_N_EXTRA];
  if (names[0]) return names;
  names[0] = "<tts_pad>";
  names[1] = "<tts_text_bos>";
  names[2] = "<tts_text_eod>";
  for (int i = 0; i < MK_Q3T_N_CODEC; i++) {
    snprintf(storage[i], sizeof storage[i], "<|codec_%d|>", i);
    names[MK_Q3T_N_TEXT_EXTRA + i] = storage[i];
  }
  for (size_t k = 0; k < sizeof q3t_named / sizeof q3t_named[0]; k++)
    names[MK_Q3T_N_TEXT_EXTRA + q3t_named[k].id] = q3t_named[k].name;
  return names;
}

int mk_qwen3tts_meta(struct gguf_context *g, const struct mk_spec *s, int n_vocab_text) {
  /* interleaved M-RoPE over head_dim/2 pairs: the real 128-wide heads use 24/20/20 */
  int32_t half = s->head_dim / 2, side = half * 5 / 16;
  int32_t sections[4] = {half - 2 * side, side, side, 0};
  gguf_set_arr_data(g, "qwen3tts.rope.dimension_sections", GGUF_TYPE_INT32, sections, 4);
  uint32_t eos = (uint32_t)(n_vocab_text + MK_Q3T_N_TEXT_EXTRA + 2150);
  gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", eos);
  gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", false);
  gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
  return 0;
}

/* ---- projector (written with proj.h's builder) --------------------------------------- */

struct q3t_shape {
  int pred_layers, pred_heads, pred_heads_kv, pred_head_dim, pred_ff; /* code predictor */
  int cb_dim, quant_out, latent;        /* RVQ codebook width, its output, pre_conv output */
  int tfm, tfm_head_dim, tfm_ff;        /* code2wav transformer (16 heads, 8 layers: fixed) */
  int dac[5];                           /* DAC widths: entry output .. last block output */
  int spk_c, spk_se, spk_mfa, spk_attn; /* speaker encoder (ECAPA-TDNN) */
};

/* the real Qwen3-TTS-12Hz-0.6B widths (talker 1024) and a tiny set with the same structure */
static const struct q3t_shape q3t_real = {5,   16,   8,    128, 3072, 256,
                                          512, 1024, 512,  64,  1024, {1536, 768, 384, 192, 96},
                                          512, 128,  1536, 128};
static const struct q3t_shape q3t_tiny = {
    1, 4, 2, 16, 128, 8, 32, 32, 32, 2, 64, {32, 16, 16, 8, 8}, 16, 8, 48, 8};

/* What the projector's tensors and keys depend on (the arg of mk_pb_write's callbacks). */
struct q3t_args {
  int D; /* the talker's width */
  int real;
  const struct q3t_shape *S;
  uint64_t seed;
};

static void q3t_describe(mk_pb *b, const void *arg) {
  const int D = ((const struct q3t_args *)arg)->D;
  const struct q3t_shape *S = ((const struct q3t_args *)arg)->S;
  const int P = D; /* predictor width == talker width: no proj_in */
  const int NA = 15, NC = MK_Q3T_N_CODES;
  /* --- speaker encoder (mel 128 -> x-vector of D) --- */
  const int C = S->spk_c;
  mk_pb_conv(b, 5, 128, C, "a.conv1d.0");
  for (int bid = 1; bid <= 3; bid++) {
    mk_pb_conv(b, 1, C, C, "a.blk.%d.conv_pw1", bid);
    mk_pb_conv(b, 1, C, C, "a.blk.%d.conv_pw2", bid);
    mk_pb_conv(b, 1, C, S->spk_se, "a.blk.%d.se_conv1", bid);
    mk_pb_conv(b, 1, S->spk_se, C, "a.blk.%d.se_conv2", bid);
    for (int x = 0; x < 7; x++) mk_pb_conv(b, 3, C / 8, C / 8, "a.blk.%d.res2.%d", bid, x);
  }
  mk_pb_conv(b, 1, 3 * C, S->spk_mfa, "a.conv_out");
  mk_pb_conv(b, 1, 3 * S->spk_mfa, S->spk_attn, "a.asp_tdnn");
  mk_pb_conv(b, 1, S->spk_attn, S->spk_mfa, "a.asp_attn");
  mk_pb_conv(b, 1, 2 * S->spk_mfa, D, "mm.a.fc");

  /* --- code predictor: codebook 0 embedding (the talker's), 15 codebooks, 15 heads --- */
  mk_pb_mat(b, D, MK_Q3T_N_CODEC, "a.gen.code.out_embd.weight");
  mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f, D, NC, NA, "a.gen.code.embd.weight");
  mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)P), P, NC, NA,
               "a.gen.code.head.weight");
  mk_pb_vec(b, MK_P_ONE, P, "a.gen.code.output_norm.weight");
  const int qd = S->pred_heads * S->pred_head_dim, kvd = S->pred_heads_kv * S->pred_head_dim;
  for (int il = 0; il < S->pred_layers; il++) {
    mk_pb_vec(b, MK_P_ONE, P, "a.gen.code.blk.%d.ln1.weight", il);
    mk_pb_mat(b, P, qd, "a.gen.code.blk.%d.attn_q.weight", il);
    mk_pb_mat(b, P, kvd, "a.gen.code.blk.%d.attn_k.weight", il);
    mk_pb_mat(b, P, kvd, "a.gen.code.blk.%d.attn_v.weight", il);
    mk_pb_vec(b, MK_P_ONE, S->pred_head_dim, "a.gen.code.blk.%d.attn_q_norm.weight", il);
    mk_pb_vec(b, MK_P_ONE, S->pred_head_dim, "a.gen.code.blk.%d.attn_k_norm.weight", il);
    mk_pb_mat(b, qd, P, "a.gen.code.blk.%d.attn_out.weight", il);
    mk_pb_vec(b, MK_P_ONE, P, "a.gen.code.blk.%d.ln2.weight", il);
    mk_pb_mat(b, P, S->pred_ff, "a.gen.code.blk.%d.ffn_gate.weight", il);
    mk_pb_mat(b, P, S->pred_ff, "a.gen.code.blk.%d.ffn_up.weight", il);
    mk_pb_mat(b, S->pred_ff, P, "a.gen.code.blk.%d.ffn_down.weight", il);
  }

  /* --- code2wav: RVQ decode --- */
  const int Q = S->cb_dim, H = S->quant_out, L = S->latent, T = S->tfm;
  mk_pb_mat(b, H, Q, "a.gen.wav.quant.first.in_proj.weight"); /* encoder side: loaded, unused */
  mk_pb_mat(b, Q, H, "a.gen.wav.quant.first.out_proj.weight");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 1.0f, Q, NC, 1,
               "a.gen.wav.quant.first.codebook.weight");
  mk_pb_mat(b, H, Q, "a.gen.wav.quant.rest.in_proj.weight");
  mk_pb_mat(b, Q, H, "a.gen.wav.quant.rest.out_proj.weight");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 1.0f, Q, NC, NA,
               "a.gen.wav.quant.rest.codebook.weight");
  mk_pb_conv(b, 3, H, L, "a.gen.wav.pre_conv");
  /* transformer: 8 layers, 16 heads (clip.cpp's fixed values) */
  const int tq = 16 * S->tfm_head_dim;
  mk_pb_mat(b, L, T, "a.gen.wav.tfm.in_proj.weight");
  mk_pb_vec(b, MK_P_ZERO, T, "a.gen.wav.tfm.in_proj.bias");
  for (int il = 0; il < 8; il++) {
    mk_pb_vec(b, MK_P_ONE, T, "a.gen.wav.tfm.blk.%d.ln1.weight", il);
    mk_pb_mat(b, T, tq, "a.gen.wav.tfm.blk.%d.attn_q.weight", il);
    mk_pb_mat(b, T, tq, "a.gen.wav.tfm.blk.%d.attn_k.weight", il);
    mk_pb_mat(b, T, tq, "a.gen.wav.tfm.blk.%d.attn_v.weight", il);
    mk_pb_mat(b, tq, T, "a.gen.wav.tfm.blk.%d.attn_out.weight", il);
    mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 0.1f, T, 1, 1, "a.gen.wav.tfm.blk.%d.ls1.weight",
                 il);
    mk_pb_vec(b, MK_P_ONE, T, "a.gen.wav.tfm.blk.%d.ln2.weight", il);
    mk_pb_mat(b, T, S->tfm_ff, "a.gen.wav.tfm.blk.%d.ffn_gate.weight", il);
    mk_pb_mat(b, T, S->tfm_ff, "a.gen.wav.tfm.blk.%d.ffn_up.weight", il);
    mk_pb_mat(b, S->tfm_ff, T, "a.gen.wav.tfm.blk.%d.ffn_down.weight", il);
    mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 0.1f, T, 1, 1, "a.gen.wav.tfm.blk.%d.ls2.weight",
                 il);
  }
  mk_pb_vec(b, MK_P_ONE, T, "a.gen.wav.tfm.output_norm.weight");
  mk_pb_mat(b, T, L, "a.gen.wav.tfm.out_proj.weight");
  mk_pb_vec(b, MK_P_ZERO, L, "a.gen.wav.tfm.out_proj.bias");
  /* 2x (transposed conv, kernel == stride 2; ConvNeXt block) */
  for (int il = 0; il < 2; il++) {
    mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf(2.0f * L), 2, L, L,
                 "a.gen.wav.up.blk.%d.conv.weight", il);
    mk_pb_vec(b, MK_P_ZERO, L, "a.gen.wav.up.blk.%d.conv.bias", il);
    mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf(7.0f), 7, 1, L,
                 "a.gen.wav.up.blk.%d.dwconv.weight", il);
    mk_pb_vec(b, MK_P_ZERO, L, "a.gen.wav.up.blk.%d.dwconv.bias", il);
    mk_pb_vec(b, MK_P_ONE, L, "a.gen.wav.up.blk.%d.norm.weight", il);
    mk_pb_vec(b, MK_P_ZERO, L, "a.gen.wav.up.blk.%d.norm.bias", il);
    mk_pb_linear(b, L, 4 * L, "a.gen.wav.up.blk.%d.pw1", il);
    mk_pb_linear(b, 4 * L, L, "a.gen.wav.up.blk.%d.pw2", il);
    mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 0.1f, L, 1, 1, "a.gen.wav.up.blk.%d.gamma", il);
  }
  /* DAC decoder: entry conv, 4 blocks (snake, transposed conv of kernel 2*stride, 3 residual
   * units at dilations 1/3/9), snake, post conv to one channel */
  static const int stride[4] = {8, 5, 4, 3};
  mk_pb_conv(b, 7, L, S->dac[0], "a.gen.wav.dac.entry");
  for (int il = 0; il < 4; il++) {
    const int ci = S->dac[il], co = S->dac[il + 1];
    mk_pb_vec(b, MK_P_ONE, ci, "a.gen.wav.dac.blk.%d.snake.alpha", il);
    mk_pb_vec(b, MK_P_ONE, ci, "a.gen.wav.dac.blk.%d.snake.beta", il);
    mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)(2 * stride[il] * ci) / 2.0f),
                 2 * stride[il], co, ci, "a.gen.wav.dac.blk.%d.conv.weight", il);
    mk_pb_vec(b, MK_P_ZERO, co, "a.gen.wav.dac.blk.%d.conv.bias", il);
    for (int ir = 0; ir < 3; ir++) {
      mk_pb_vec(b, MK_P_ONE, co, "a.gen.wav.dac.blk.%d.res.%d.act1.alpha", il, ir);
      mk_pb_vec(b, MK_P_ONE, co, "a.gen.wav.dac.blk.%d.res.%d.act1.beta", il, ir);
      mk_pb_conv(b, 7, co, co, "a.gen.wav.dac.blk.%d.res.%d.conv1", il, ir);
      mk_pb_vec(b, MK_P_ONE, co, "a.gen.wav.dac.blk.%d.res.%d.act2.alpha", il, ir);
      mk_pb_vec(b, MK_P_ONE, co, "a.gen.wav.dac.blk.%d.res.%d.act2.beta", il, ir);
      mk_pb_conv(b, 1, co, co, "a.gen.wav.dac.blk.%d.res.%d.conv2", il, ir);
    }
  }
  mk_pb_vec(b, MK_P_ONE, S->dac[4], "a.gen.wav.dac.post_snake.alpha");
  mk_pb_vec(b, MK_P_ONE, S->dac[4], "a.gen.wav.dac.post_snake.beta");
  mk_pb_conv(b, 7, S->dac[4], 1, "a.gen.wav.dac.post_conv");
}

static void q3t_keys(struct gguf_context *g, const void *arg) {
  const struct q3t_args *a = arg;
  const struct q3t_shape *S = a->S;
  const uint32_t D = (uint32_t)a->D;
  mk_pb_header(
      g, a->real ? "mkmodel qwen3-tts 0.6b-shape projector" : "mkmodel tiny qwen3-tts projector",
      a->seed, "qwen3-tts code predictor, code2wav and speaker encoder, noise for audio");
  gguf_set_val_bool(g, "clip.has_vision_encoder", false);
  /* the speaker encoder (reference clips -> one x-vector row); mtmd also refuses a file
   * whose only part is the generator */
  gguf_set_val_bool(g, "clip.has_audio_encoder", true);
  gguf_set_val_str(g, "clip.audio.projector_type", "qwen3tts_spkenc");
  gguf_set_val_u32(g, "clip.audio.projection_dim", D);
  gguf_set_val_u32(g, "clip.audio.num_mel_bins", 128);
  gguf_set_val_u32(g, "clip.audio.block_count", 3);
  gguf_set_val_u32(g, "clip.audio.embedding_length", (uint32_t)S->spk_c);
  gguf_set_val_u32(g, "clip.audio.attention.head_count", 1);
  gguf_set_val_u32(g, "clip.audio.feed_forward_length", (uint32_t)S->spk_c);
  gguf_set_val_f32(g, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
  gguf_set_val_bool(g, "clip.has_gen_audio_encoder", true);
  gguf_set_val_str(g, "clip.gen.audio.projector_type", "qwen3tts_gen");
  gguf_set_val_u32(g, "clip.gen.audio.projection_dim", D);
  gguf_set_val_u32(g, "clip.gen.audio.embedding_length", D);
  gguf_set_val_u32(g, "clip.gen.audio.feed_forward_length", (uint32_t)S->pred_ff);
  gguf_set_val_u32(g, "clip.gen.audio.block_count", (uint32_t)S->pred_layers);
  gguf_set_val_u32(g, "clip.gen.audio.attention.head_count", (uint32_t)S->pred_heads);
  gguf_set_val_u32(g, "clip.gen.audio.attention.head_count_kv", (uint32_t)S->pred_heads_kv);
  gguf_set_val_f32(g, "clip.gen.audio.attention.layer_norm_epsilon", 1e-6f);
}

int mk_qwen3tts_proj_write(const char *out_path, int n_embd_text, int real, uint64_t seed,
                           uint64_t *n_bytes, char *err, size_t errlen) {
  const int D = n_embd_text;
  if (D < 8 || D > 65536 || (real && D != 1024)) {
    snprintf(err, errlen, "qwen3tts projector: talker width %d is out of range%s", D,
             real ? " (the real widths need 1024)" : "");
    return -1;
  }
  const struct q3t_args a = {D, real, real ? &q3t_real : &q3t_tiny, seed};
  /* seeded apart from the talker's streams */
  return mk_pb_write(out_path, seed * 0x2545f4914f6cdd1dULL + 0x71337474730aULL,
                     "qwen3tts projector", q3t_describe, q3t_keys, &a, n_bytes, err, errlen);
}

/* ---- check ----------------------------------------------------------------------------- */

/* token_embd.weight rows read straight from the GGUF (the prompt rows are sums of them). */
struct q3t_rows {
  int fd;
  size_t off, row_bytes;
  enum ggml_type type;
  int64_t n_embd, n_rows;
};

static int q3t_rows_open(struct q3t_rows *r, const char *path) {
  struct ggml_context *meta = NULL;
  struct gguf_init_params gp = {true, &meta};
  struct gguf_context *g = gguf_init_from_file(path, gp);
  r->fd = -1;
  if (!g) return -1;
  int64_t ti = gguf_find_tensor(g, "token_embd.weight");
  struct ggml_tensor *t = meta ? ggml_get_tensor(meta, "token_embd.weight") : NULL;
  int rc = -1;
  if (ti >= 0 && t && ggml_get_type_traits(t->type)->to_float) {
    r->off = gguf_get_data_offset(g) + gguf_get_tensor_offset(g, ti);
    r->type = t->type;
    r->n_embd = t->ne[0];
    r->n_rows = t->ne[1];
    r->row_bytes = ggml_row_size(t->type, t->ne[0]);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    rc = r->fd >= 0 ? 0 : -1;
  }
  gguf_free(g);
  if (meta) ggml_free(meta);
  return rc;
}

/* out += row(tok) (n_embd floats). 0 or -1. */
static int q3t_rows_add(struct q3t_rows *r, llama_token tok, float *out, void *scratch,
                        float *tmp) {
  if (tok < 0 || tok >= r->n_rows) return -1;
  if (pread(r->fd, scratch, r->row_bytes, (off_t)(r->off + (size_t)tok * r->row_bytes)) !=
      (ssize_t)r->row_bytes)
    return -1;
  ggml_get_type_traits(r->type)->to_float(scratch, tmp, r->n_embd);
  for (int64_t i = 0; i < r->n_embd; i++) out[i] += tmp[i];
  return 0;
}

/* Decode n rows of embeddings at positions pos.. (4 equal M-RoPE streams); logits for the last. */
static int q3t_decode(struct llama_context *ctx, const float *rows, int n, int n_embd,
                      llama_pos pos) {
  struct llama_batch b = llama_batch_init(n * 4, n_embd, 1);
  memcpy(b.embd, rows, (size_t)n * (size_t)n_embd * sizeof(float));
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < 4; k++) b.pos[k * n + i] = pos + i;
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = i == n - 1;
  }
  b.n_tokens = n;
  int rc = llama_decode(ctx, b);
  llama_batch_free(b);
  return rc;
}

/* greedy over the 2048 codes of the codec head (verify needs no randomness here) */
static int q3t_argmax_code(const float *logits, llama_token codec0) {
  int best = 0;
  for (int i = 1; i < MK_Q3T_N_CODES; i++)
    if (logits[codec0 + i] > logits[codec0 + best]) best = i;
  return best;
}

int mk_qwen3tts_proj_verify(const char *model_path, const char *mmproj_path, int threads,
                            char *summary, size_t summarylen, char *err, size_t errlen) {
  enum { N_FRAMES = MK_Q3T_WINDOW + 6 };
  summary[0] = '\0';
  int rc = -1;
  struct q3t_rows rows = {.fd = -1};
  float *prompt = NULL, *fb = NULL, *pad = NULL, *tmp = NULL, *h = NULL;
  void *scratch = NULL;
  int32_t *codes = NULL;
  mk_wav_acc acc = {0}; /* the audio so far, and the decoder state */
  mk_gen_check c;
  if (mk_gen_open(&c, model_path, mmproj_path, threads, MTMD_GEN_AUDIO_TYPE_QWEN3TTS, "qwen3-tts",
                  err, errlen) != 0)
    return -1;
  struct llama_context *ctx = c.ctx;
  mtmd_context *mctx = c.mctx;
  const struct llama_vocab *vocab = c.vocab;
  const int n_embd = c.n_embd;
  if (q3t_rows_open(&rows, model_path) != 0 || rows.n_embd != n_embd) {
    snprintf(err, errlen, "cannot read token_embd.weight from %s", model_path);
    goto done;
  }
  const char *sp[] = {"<tts_pad>",           "<tts_text_bos>",
                      "<tts_text_eod>",      "<|codec_0|>",
                      "<|codec_pad|>",       "<|codec_bos|>",
                      "<|codec_think|>",     "<|codec_think_bos|>",
                      "<|codec_think_eos|>", "<|codec_language_english|>"};
  llama_token id[10];
  for (int i = 0; i < 10; i++) {
    id[i] = mk_verify_find_token(vocab, sp[i]);
    if (id[i] < 0) {
      snprintf(err, errlen, "the vocabulary has no %s", sp[i]);
      goto done;
    }
  }
  const char *text = "<|im_start|>assistant\nHello world.<|im_end|>\n<|im_start|>assistant\n";
  llama_token toks[64];
  int n_tok = llama_tokenize(vocab, text, (int32_t)strlen(text), toks, 64, false, true);
  if (n_tok < 9) {
    snprintf(err, errlen, "the prompt does not tokenize (%d tokens)", n_tok);
    goto done;
  }
  int n_rows = 3 + 4 + 1 + (n_tok - 8) + 2;
  prompt = calloc((size_t)n_rows * (size_t)n_embd, sizeof(float));
  fb = calloc((size_t)n_embd, sizeof(float));
  pad = calloc((size_t)n_embd, sizeof(float));
  h = calloc((size_t)n_embd, sizeof(float));
  tmp = malloc((size_t)n_embd * sizeof(float));
  scratch = malloc(rows.row_bytes);
  codes = malloc(sizeof(int32_t) * 16 * MK_Q3T_WINDOW);
  if (!prompt || !fb || !pad || !h || !tmp || !scratch || !codes) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  /* the reference layout: role tokens; tts_pad + think/think_bos/language/think_eos;
   * tts_text_bos + codec_pad; text + codec_pad; tts_text_eod + codec_pad; tts_pad + codec_bos */
  llama_token pairs[64][2];
  int r = 0;
  for (int i = 0; i < 3; i++) pairs[r][0] = toks[i], pairs[r++][1] = -1;
  pairs[r][0] = id[0], pairs[r++][1] = id[6];
  pairs[r][0] = id[0], pairs[r++][1] = id[7];
  pairs[r][0] = id[0], pairs[r++][1] = id[9];
  pairs[r][0] = id[0], pairs[r++][1] = id[8];
  pairs[r][0] = id[1], pairs[r++][1] = id[4];
  for (int i = 3; i < n_tok - 5; i++) pairs[r][0] = toks[i], pairs[r++][1] = id[4];
  pairs[r][0] = id[2], pairs[r++][1] = id[4];
  pairs[r][0] = id[0], pairs[r++][1] = id[5];
  n_rows = r;
  for (int i = 0; i < n_rows; i++) {
    float *row = prompt + (size_t)i * (size_t)n_embd;
    if (q3t_rows_add(&rows, pairs[i][0], row, scratch, tmp) != 0 ||
        (pairs[i][1] >= 0 && q3t_rows_add(&rows, pairs[i][1], row, scratch, tmp) != 0)) {
      snprintf(err, errlen, "cannot read token_embd rows");
      goto done;
    }
  }
  if (q3t_rows_add(&rows, id[0], pad, scratch, tmp) != 0 ||
      q3t_decode(ctx, prompt, n_rows, n_embd, 0) != 0) {
    snprintf(err, errlen, "the prompt does not decode");
    goto done;
  }
  size_t n_frames_buf = 0;
  struct mtmd_gen_inp def = mtmd_gen_inp_default(mctx);
  for (int f = 0; f < N_FRAMES; f++) {
    const float *logits = llama_get_logits_ith(ctx, -1);
    const float *he = llama_get_embeddings_ith(ctx, -1);
    if (!logits || !he) {
      snprintf(err, errlen, "no logits or hidden state at frame %d", f);
      goto done;
    }
    if (!isinf(logits[0]) || !isfinite(logits[id[3]])) {
      snprintf(err, errlen, "the logits are not the padded codec head (frame %d)", f);
      goto done;
    }
    memcpy(h, he, (size_t)n_embd * sizeof(float));
    struct mtmd_gen_inp in = def;
    struct mtmd_gen_out out;
    in.type = MTMD_GEN_PROCESS_TYPE_GEN_CODE;
    in.code0 = q3t_argmax_code(logits, id[3]);
    in.embd = h;
    in.seed = 1234u + (uint32_t)f;
    if (mtmd_gen_audio_process(mctx, &in, &out) != 0 || out.n_codes != 16 || !out.embd ||
        out.codes[0] != in.code0) {
      snprintf(err, errlen, "GEN_CODE failed at frame %d", f);
      goto done;
    }
    memcpy(codes + n_frames_buf * 16, out.codes, 16 * sizeof(int32_t));
    n_frames_buf++;
    for (int i = 0; i < n_embd; i++) fb[i] = out.embd[i] + pad[i];
    if (q3t_decode(ctx, fb, 1, n_embd, n_rows + f) != 0) {
      snprintf(err, errlen, "the fed-back embedding does not decode (frame %d)", f);
      goto done;
    }
    if (n_frames_buf == MK_Q3T_WINDOW || f == N_FRAMES - 1) {
      struct mtmd_gen_inp w = def;
      w.codes = codes;
      w.n_codes = n_frames_buf * 16;
      if (mk_wav_gen(&acc, mctx, &w, n_frames_buf, MK_Q3T_SAMPLES_PER_FRAME, err, errlen) != 0)
        goto done;
      n_frames_buf = 0;
    }
  }
  double rms;
  if (mk_wav_done(&acc, &rms, err, errlen) != 0) goto done;
  snprintf(summary, summarylen,
           "prompt %d rows, %d frames (16 codes each) -> %zu samples at %d Hz, rms %.4f, "
           "decoder state %zu bytes",
           n_rows, N_FRAMES, acc.n_samples, c.sample_rate, rms, acc.state_n);
  rc = 0;
done:
  if (rows.fd >= 0) close(rows.fd);
  free(acc.state);
  free(codes);
  free(scratch);
  free(tmp);
  free(h);
  free(pad);
  free(fb);
  free(prompt);
  mk_gen_close(&c);
  return rc;
}
