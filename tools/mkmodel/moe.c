/* moe.c — qwen3moe, qwen35, qwen35moe and nemotron_h_moe for mkmodel (see moe.h): tensor tables
 * as convert_hf_to_gguf writes them (llama.cpp's conversion/qwen.py, conversion/nemotron.py) and
 * as src/models/{qwen3moe,qwen35,qwen35moe,nemotron-h}.cpp load them, their metadata, and the Qwen
 * added tokens. Pure data and metadata: must never touch files, the engine or global state. */
#include "meta.h"
#include "moe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Qwen3-30B-A3B: qwen3's attention (q/k norms), a router (F32) and 3-D expert tensors with gate
 * and up apart (the loader has no fused form for qwen3moe); no shared expert. */
static const struct mk_tensor_desc tensors_qwen3moe[] = {
    {"token_embd.weight", MK_GLOBAL, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"output_norm.weight", MK_GLOBAL, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"output.weight", MK_GLOBAL, MK_INIT_MATRIX, MK_NE0_EMBD, 1, 0},
    {"attn_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_q.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_k.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_v.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_q_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_k_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_output.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},
    {"ffn_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ffn_gate_inp.weight", MK_EVERY_LAYER, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"ffn_gate_exps.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_up_exps.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down_exps.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
};

/* The rows Qwen3.5's dense and MoE variants share: every layer a norm before and after its
 * mixer; attention layers gated (attn_q is query + gate) with q/k norms; linear-attention layers
 * a gated delta net whose beta and alpha projections are separate (Qwen3-Next fuses them). */
#define QWEN35_COMMON                                                                 \
  {"token_embd.weight", MK_GLOBAL, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},                \
      {"output_norm.weight", MK_GLOBAL, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},              \
      {"output.weight", MK_GLOBAL, MK_INIT_MATRIX, MK_NE0_EMBD, 1, 0},                \
      {"attn_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},           \
      {"post_attention_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0}, \
      {"attn_q.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},           \
      {"attn_k.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},           \
      {"attn_v.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},           \
      {"attn_q_norm.weight", MK_ATTN_LAYERS, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},         \
      {"attn_k_norm.weight", MK_ATTN_LAYERS, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},         \
      {"attn_output.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},      \
      {"attn_qkv.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},         \
      {"attn_gate.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},        \
      {"ssm_conv1d.weight", MK_RECR_LAYERS, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},       \
      {"ssm_dt.bias", MK_RECR_LAYERS, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},               \
      {"ssm_a", MK_RECR_LAYERS, MK_INIT_NEG_ONE, MK_NE0_EMBD, 0, 0},                  \
      {"ssm_beta.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},         \
      {"ssm_alpha.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},        \
      {"ssm_norm.weight", MK_RECR_LAYERS, MK_INIT_ONE, MK_NE0_EMBD, 0, 0}, {          \
    "ssm_out.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_SSM_INNER, 0, 0          \
  }

/* Qwen3.5 dense (Qwen3.5-9B, ...): a gated FFN in every layer. */
static const struct mk_tensor_desc tensors_qwen35[] = {
    QWEN35_COMMON,
    {"ffn_gate.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_up.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
};

/* Qwen3.5 MoE (Qwen3.5-35B-A3B): experts in every layer with gate and up fused (the loader
 * creates the fused form whenever it may, so that is the one mkmodel can fill; the converter's
 * --fuse-gate-up-exps writes the same), and a shared expert with a sigmoid gate. */
static const struct mk_tensor_desc tensors_qwen35moe[] = {
    QWEN35_COMMON,
    {"ffn_gate_inp.weight", MK_EVERY_LAYER, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"ffn_gate_up_exps.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down_exps.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
    {"ffn_gate_inp_shexp.weight", MK_EVERY_LAYER, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"ffn_gate_shexp.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_up_shexp.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down_shexp.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_FF_SHEXP, 0, 0},
};

/* Nemotron-H MoE: each layer one of three kinds, all with attn_norm. Mamba-2 (fused in
 * projection, a biased causal conv, dt bias, A and D, a grouped gated norm, out projection);
 * attention without biases or RoPE; experts (sigmoid router with a correction bias, up and down
 * only: squared-ReLU, no gate) and a shared expert. The loader's optional latent projections
 * (Nemotron 3 Super) and biases are left out, as the Nano's converted files do. */
static const struct mk_tensor_desc tensors_nemotron_h_moe[] = {
    {"token_embd.weight", MK_GLOBAL, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"output_norm.weight", MK_GLOBAL, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"output.weight", MK_GLOBAL, MK_INIT_MATRIX, MK_NE0_EMBD, 1, 0},
    {"attn_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ssm_in.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ssm_conv1d.weight", MK_RECR_LAYERS, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"ssm_conv1d.bias", MK_RECR_LAYERS, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"ssm_dt.bias", MK_RECR_LAYERS, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"ssm_a", MK_RECR_LAYERS, MK_INIT_NEG_ONE, MK_NE0_EMBD, 0, 0},
    {"ssm_d", MK_RECR_LAYERS, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ssm_norm.weight", MK_RECR_LAYERS, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ssm_out.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_SSM_INNER, 0, 0},
    {"attn_q.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_k.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_v.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_output.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},
    {"ffn_gate_inp.weight", MK_MOE_LAYERS, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"exp_probs_b.bias", MK_MOE_LAYERS, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"ffn_up_exps.weight", MK_MOE_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down_exps.weight", MK_MOE_LAYERS, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
    {"ffn_up_shexp.weight", MK_MOE_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down_shexp.weight", MK_MOE_LAYERS, MK_INIT_MATRIX, MK_NE0_FF_SHEXP, 0, 0},
};

int mk_moe_arch(enum mk_arch a) {
  return a == MK_ARCH_QWEN3MOE || a == MK_ARCH_QWEN3VLMOE || a == MK_ARCH_QWEN35 ||
         a == MK_ARCH_QWEN35MOE || a == MK_ARCH_NEMOTRONHMOE;
}

int mk_moe_is_hybrid(enum mk_arch a) {
  return a == MK_ARCH_QWEN3NEXT || a == MK_ARCH_QWEN35 || a == MK_ARCH_QWEN35MOE ||
         a == MK_ARCH_NEMOTRONHMOE;
}

const struct mk_tensor_desc *mk_moe_tensors(enum mk_arch a, size_t *n) {
  switch (a) {
    case MK_ARCH_QWEN3MOE:
    case MK_ARCH_QWEN3VLMOE: /* the same tensors (src/models/qwen3vlmoe.cpp); VL metadata */
      *n = N_OF(tensors_qwen3moe);
      return tensors_qwen3moe;
    case MK_ARCH_QWEN35:
      *n = N_OF(tensors_qwen35);
      return tensors_qwen35;
    case MK_ARCH_QWEN35MOE:
      *n = N_OF(tensors_qwen35moe);
      return tensors_qwen35moe;
    case MK_ARCH_NEMOTRONHMOE:
      *n = N_OF(tensors_nemotron_h_moe);
      return tensors_nemotron_h_moe;
    default:
      *n = 0;
      return NULL;
  }
}

enum mk_layer_kind mk_moe_layer_kind(const struct mk_spec *s, int il) {
  const struct mk_hybrid *h = &s->hy;
  switch (s->arch) {
    case MK_ARCH_QWEN3NEXT:
    case MK_ARCH_QWEN35:
    case MK_ARCH_QWEN35MOE:
      /* llama.cpp's rule without attention.recurrent_layers */
      return h->attn_interval > 0 && (il + 1) % h->attn_interval != 0 ? MK_LAYER_RECR
                                                                      : MK_LAYER_ATTN;
    case MK_ARCH_NEMOTRONHMOE:
      if (!h->pattern || il < 0 || (size_t)il >= strlen(h->pattern)) return MK_LAYER_ATTN;
      return h->pattern[il] == 'M'   ? MK_LAYER_RECR
             : h->pattern[il] == 'E' ? MK_LAYER_MOE
                                     : MK_LAYER_ATTN;
    default:
      return MK_LAYER_ATTN;
  }
}

int mk_moe_check(const struct mk_spec *s, char *err, size_t errlen) {
#define FAIL(...)                       \
  do {                                  \
    snprintf(err, errlen, __VA_ARGS__); \
    return -1;                          \
  } while (0)
  const struct mk_hybrid *h = &s->hy;
  const char *an = mk_arch_name(s->arch);
  if (!mk_moe_arch(s->arch)) return 0;
  if (s->pooling >= 0) FAIL("%s is made as a generative model: no --pooling", an);
  if (s->arch != MK_ARCH_QWEN35 &&
      (h->n_expert < 1 || h->n_expert_used < 1 || h->n_expert_used > h->n_expert))
    FAIL("%s needs 1 <= experts used <= experts", an);
  if (s->arch == MK_ARCH_QWEN3MOE || s->arch == MK_ARCH_QWEN3VLMOE) return 0;
  if (h->ssm_conv < 2 || h->ssm_state < 2 || h->ssm_k_heads < 1 || h->ssm_v_heads < 1)
    FAIL("%s: implausible recurrent-layer parameters", an);
  if (s->arch == MK_ARCH_QWEN35 || s->arch == MK_ARCH_QWEN35MOE) {
    /* a quarter of each head rotates, in pairs split into three M-RoPE sections */
    if (s->head_dim % 8 != 0) FAIL("%s needs --head-dim a multiple of 8 (a quarter rotates)", an);
    if (h->ssm_v_heads % h->ssm_k_heads != 0 || h->attn_interval < 1)
      FAIL("%s: implausible linear-attention parameters", an);
    return 0;
  }
  /* nemotron_h_moe: the pattern gives the layers */
  size_t n = h->pattern ? strlen(h->pattern) : 0;
  if (n != (size_t)s->n_layer)
    FAIL("nemotron_h_moe: --n-layer (%d) must be the layer pattern's length (%zu: %s)", s->n_layer,
         n, h->pattern ? h->pattern : "none");
  for (size_t i = 0; i < n; i++)
    if (h->pattern[i] != 'M' && h->pattern[i] != 'E' && h->pattern[i] != '*')
      FAIL("nemotron_h_moe: the layer pattern has '%c' (M, E or * only)", h->pattern[i]);
  int64_t inner = mk_spec_ne0(s, MK_NE0_SSM_INNER);
  if (h->ssm_head_dim < 1 || inner % h->ssm_k_heads != 0)
    FAIL("nemotron_h_moe: the Mamba-2 width (%lld) must divide into its %d groups",
         (long long)inner, h->ssm_k_heads);
  return 0;
#undef FAIL
}

void mk_moe_meta(struct gguf_context *g, const struct mk_spec *s) {
  const struct mk_hybrid *h = &s->hy;
  const char *arch = mk_arch_name(s->arch);
  char key[128];
#define KEY(suffix) (snprintf(key, sizeof(key), "%s.%s", arch, (suffix)), key)
  gguf_set_val_f32(g, KEY("attention.layer_norm_rms_epsilon"), s->norm_eps);
  if (s->arch != MK_ARCH_QWEN35) {
    gguf_set_val_u32(g, KEY("expert_count"), (uint32_t)h->n_expert);
    gguf_set_val_u32(g, KEY("expert_used_count"), (uint32_t)h->n_expert_used);
    gguf_set_val_u32(g, KEY("expert_feed_forward_length"), (uint32_t)s->n_ff);
  }
  if (s->arch == MK_ARCH_QWEN3MOE || s->arch == MK_ARCH_QWEN3VLMOE) { /* VL's: arch_qwenvl.c */
    gguf_set_val_u32(g, KEY("rope.dimension_count"), (uint32_t)s->head_dim);
    gguf_set_val_f32(g, KEY("rope.freq_base"), s->rope_base);
    return;
  }
  int64_t inner = mk_spec_ne0(s, MK_NE0_SSM_INNER);
  gguf_set_val_u32(g, KEY("ssm.conv_kernel"), (uint32_t)h->ssm_conv);
  gguf_set_val_u32(g, KEY("ssm.state_size"), (uint32_t)h->ssm_state);
  gguf_set_val_u32(g, KEY("ssm.group_count"), (uint32_t)h->ssm_k_heads);
  gguf_set_val_u32(g, KEY("ssm.time_step_rank"), (uint32_t)h->ssm_v_heads);
  gguf_set_val_u32(g, KEY("ssm.inner_size"), (uint32_t)inner);
  if (s->arch == MK_ARCH_QWEN35 || s->arch == MK_ARCH_QWEN35MOE) {
    /* as Qwen3_5(Moe)TextModel writes them: Qwen3-Next's keys plus interleaved M-RoPE sections
     * over the rotated pairs, [11, 11, 10, 0] for the real 64 rotated of 256 */
    uint32_t n_rot = (uint32_t)s->head_dim / 4, half = n_rot / 2, side = half * 11 / 32;
    int32_t sections[4] = {(int32_t)side, (int32_t)side, (int32_t)(half - 2 * side), 0};
    gguf_set_val_u32(g, KEY("rope.dimension_count"), n_rot);
    gguf_set_val_f32(g, KEY("rope.freq_base"), s->rope_base);
    gguf_set_arr_data(g, KEY("rope.dimension_sections"), GGUF_TYPE_INT32, sections, 4);
    gguf_set_val_u32(g, KEY("full_attention_interval"), (uint32_t)h->attn_interval);
    if (s->arch == MK_ARCH_QWEN35MOE)
      gguf_set_val_u32(g, KEY("expert_shared_feed_forward_length"),
                       (uint32_t)mk_spec_ne0(s, MK_NE0_FF_SHEXP));
    return;
  }
  /* nemotron_h_moe, as NemotronHModel / GraniteHybridModel write it: per-layer KV heads (0 off
   * the attention layers) and FFN widths (the experts' on E layers, else 0) tell the layer kinds;
   * no RoPE; LayerNorm epsilon for the (absent) MTP head's norm is still read */
  uint32_t *kv = malloc((size_t)s->n_layer * sizeof *kv);
  uint32_t *ff = malloc((size_t)s->n_layer * sizeof *ff);
  if (kv && ff) {
    for (int il = 0; il < s->n_layer; il++) {
      enum mk_layer_kind k = mk_moe_layer_kind(s, il);
      kv[il] = k == MK_LAYER_ATTN ? (uint32_t)s->n_head_kv : 0;
      ff[il] = k == MK_LAYER_MOE ? (uint32_t)s->n_ff : 0;
    }
    gguf_set_arr_data(g, KEY("attention.head_count_kv"), GGUF_TYPE_UINT32, kv, (size_t)s->n_layer);
    gguf_set_arr_data(g, KEY("feed_forward_length"), GGUF_TYPE_UINT32, ff, (size_t)s->n_layer);
  }
  free(kv);
  free(ff);
  gguf_set_val_f32(g, KEY("attention.layer_norm_epsilon"), s->norm_eps);
  gguf_set_val_u32(g, KEY("expert_shared_feed_forward_length"),
                   (uint32_t)mk_spec_ne0(s, MK_NE0_FF_SHEXP));
  gguf_set_val_u32(g, KEY("expert_shared_count"), 1);
  gguf_set_val_bool(g, KEY("expert_weights_norm"), true);
  gguf_set_val_f32(g, KEY("expert_weights_scale"), 2.5f); /* routed_scaling_factor */
  gguf_set_val_u32(g, KEY("expert_group_count"), 1);
#undef KEY
}

#define QWEN_IM_END 151645 /* <|im_end|> in Qwen's vocabularies */

int mk_moe_vocab(struct gguf_context *g, const struct mk_spec *s) {
  if (!mk_moe_arch(s->arch) && s->arch != MK_ARCH_QWEN3NEXT) return 0;
  int rc = mk_meta_qwen_added(g, MK_QWEN_ADDED_QWEN3);
  /* Nemotron ends a turn with <|im_end|>, its EOS */
  if (rc > 0 && s->arch == MK_ARCH_NEMOTRONHMOE)
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", QWEN_IM_END);
  return rc < 0 ? -1 : 0;
}
