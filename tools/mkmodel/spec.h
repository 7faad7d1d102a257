/* spec.h — what mkmodel is asked to build: architecture, shape, weight type, presets, and the
 * per-architecture table of the tensors a real checkpoint of that architecture carries.
 * Pure data and checks: this module must never touch files, the engine or global state. */
#ifndef MK_SPEC_H
#define MK_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "ggml.h"

enum mk_arch {
  MK_ARCH_LLAMA = 0,
  MK_ARCH_QWEN2,
  MK_ARCH_QWEN3,
  MK_ARCH_BERT,
  MK_ARCH_POCKETTTS,  /* Pocket-TTS's backbone (docs/TTS.md); pairs with a pockettts_gen mmproj */
  MK_ARCH_QWEN3TTS,   /* Qwen3-TTS's talker (qwen3vl layers, codec head); pairs with qwen3tts_gen */
  MK_ARCH_QWEN3NEXT,  /* Qwen3-Next: hybrid, gated-delta-net (recurrent) + gated attention, MoE */
  MK_ARCH_QWEN2VL,    /* Qwen2-VL / Qwen2.5-VL's text model: qwen2 + M-RoPE (arch_qwenvl.c) */
  MK_ARCH_QWEN3VL,    /* Qwen3-VL's text model: qwen3 + interleaved M-RoPE + deepstack inputs; also
                         Qwen3-ASR's (none of them: aproj.h) */
  MK_ARCH_QWEN3MOE,   /* Qwen3-30B-A3B: qwen3 attention + experts (moe.c) */
  MK_ARCH_QWEN3VLMOE, /* Qwen3-VL-30B-A3B's text model: qwen3moe's tensors, Qwen3-VL's metadata */
  MK_ARCH_QWEN35,     /* Qwen3.5 dense: hybrid like Qwen3-Next, M-RoPE, gated FFN (moe.c) */
  MK_ARCH_QWEN35MOE,  /* Qwen3.5 MoE: hybrid + experts (moe.c) */
  MK_ARCH_NEMOTRONHMOE, /* Nemotron-3-Nano: Mamba-2 + attention + expert layers (moe.c) */
  MK_ARCH_COUNT
};

/* How a tensor of the table is initialised. */
enum mk_init {
  MK_INIT_MATRIX,  /* random, std 1/sqrt(ne0), stored in the requested weight type */
  MK_INIT_RANDOM,  /* random, std 1/sqrt(ne0), always F32 (position / token-type embeddings) */
  MK_INIT_ONE,     /* 1.0 (norm weights), F32 */
  MK_INIT_ZERO,    /* 0.0 (biases), F32 */
  MK_INIT_NEG_ONE, /* -1.0, F32: a recurrent layer's decay rate A = -exp(A_log) (decays, never
                      grows) */
};

/* Values of mk_tensor_desc.per_layer: which layers carry a tensor ("blk.<i>.<suffix>"). */
enum {
  MK_GLOBAL = 0,      /* not per layer: named "<suffix>" */
  MK_EVERY_LAYER = 1, /* every layer */
  MK_ATTN_LAYERS = 2, /* a hybrid's attention layers only */
  MK_RECR_LAYERS = 3, /* a hybrid's recurrent layers only */
  MK_MOE_LAYERS = 4,  /* nemotron_h_moe's expert layers only (moe.h) */
};

/* Which hyper-parameter is a matrix's row length (ne0), to pick a type its rows fit. */
enum mk_ne0 {
  MK_NE0_EMBD,
  MK_NE0_FF,
  MK_NE0_QDIM,
  MK_NE0_SSM_INNER, /* a recurrent layer's value width (ssm.inner_size) */
  MK_NE0_FF_SHEXP,  /* the shared expert's width (expert_shared_feed_forward_length) */
};

struct mk_tensor_desc {
  const char *suffix; /* "token_embd.weight", or for per-layer tensors "attn_q.weight" */
  int per_layer;      /* MK_GLOBAL, or which layers carry it: named "blk.<i>.<suffix>" */
  enum mk_init init;
  enum mk_ne0 ne0; /* meaningful for MK_INIT_MATRIX only */
  int untied_only; /* 1: only kept when the output matrix is not tied to the embeddings */
  int rank_only;   /* 1: only kept with pooling rank (a reranker's classification head) */
};

/* A hybrid's recurrent layers and experts (Qwen3-Next: linear attention = gated delta net; a
 * mixture of experts in every layer, plus a shared expert; the MoE and hybrid architectures of
 * moe.h use it too). All 0 for other architectures. */
struct mk_hybrid {
  int n_expert, n_expert_used; /* experts per layer, and chosen per token */
  int ssm_conv;                /* ssm.conv_kernel */
  int ssm_state;               /* ssm.state_size: head width of the recurrent keys and values */
  int ssm_k_heads;             /* ssm.group_count */
  int ssm_v_heads;             /* ssm.time_step_rank; a multiple of ssm_k_heads */
  int attn_interval;           /* full_attention_interval: every n-th layer is attention */
  int n_ff_shexp;              /* the shared expert's width; 0 = n_ff */
  int ssm_head_dim;            /* Mamba-2's head width (inner = it x ssm_v_heads); 0 = ssm_state */
  const char *pattern;         /* nemotron_h_moe: a letter per layer, M Mamba-2, * attention,
                                  E experts */
};

/* Everything needed to build one model. Integers < 0 and NULL strings mean "not given". */
struct mk_spec {
  enum mk_arch arch;
  const char *vocab; /* a path, or a name resolved in $SWITCHYARD_VOCAB_DIR */
  int n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, head_dim;
  enum ggml_type wtype; /* type of the 2-D matrices; GGML_TYPE_COUNT = not given */
  int mix;              /* enum mk_mix (quant.h): a per-tensor mix around wtype; 0 = none */
  int has_seed;
  uint64_t seed;
  const char *chat_template; /* none | chatml | llama3 | vocab | path to a .jinja file */
  int pooling; /* llama_pooling_type (rank: a reranker); -1 = none (not written); -2 = not given */
  int tied;    /* 1: no output.weight, the loader reuses token_embd */
  float rope_base, norm_eps;
  const char *name;    /* general.name */
  struct mk_hybrid hy; /* qwen3next and moe.h's; n_expert 0 and ssm_conv 0 = not given */
  int alm, alm_stack;  /* an audio LLM's family (aproj.h enum mk_alm; 0 none) and stack factor */
};

/* Set every field to "not given" (-1 / NULL / GGML_TYPE_COUNT). */
void mk_spec_init(struct mk_spec *s);
/* Copy the preset's values into *s. Returns 0, or -1 if the name is unknown. */
int mk_spec_preset(struct mk_spec *s, const char *name);
/* Copy the fields given in g over s. */
void mk_spec_overlay(struct mk_spec *s, const struct mk_spec *g);
/* Fill the fields still "not given" with the architecture's defaults (its tiny preset; head_dim
 * = n_embd/n_head; f16 weights; seed 42). No-op while the architecture is unknown. */
void mk_spec_defaults(struct mk_spec *s);
/* Check shapes are usable; on failure writes a one-line reason to err and returns -1. */
int mk_spec_check(const struct mk_spec *s, char *err, size_t errlen);

/* Parse an architecture name (mk_arch_name's); returns -1 when unknown. */
int mk_arch_parse(const char *s);
/* llama.cpp's architecture name ("llama", "qwen2", ...). */
const char *mk_arch_name(enum mk_arch a);
/* The tensor table of an architecture; *n receives its length. */
const struct mk_tensor_desc *mk_arch_tensors(enum mk_arch a, size_t *n);
/* Find the table entry for a tensor name ("blk.3.attn_q.weight"); NULL if the name is not one a
 * real checkpoint carries (or is the output matrix of a tied model, or a classification head
 * without pooling rank). */
const struct mk_tensor_desc *mk_spec_find_tensor(const struct mk_spec *s, const char *name);
/* Whether a table entry is part of the model this spec describes (tied, pooling). */
int mk_spec_keeps(const struct mk_spec *s, const struct mk_tensor_desc *d);
/* Whether layer il is a recurrent one (a hybrid's linear-attention layer); 0 for other archs. */
int mk_spec_layer_is_recr(const struct mk_spec *s, int il);
/* Whether layer il carries the per-layer entry d (by its per_layer kind; tied and pooling are
 * mk_spec_keeps's business). */
int mk_spec_layer_has(const struct mk_spec *s, const struct mk_tensor_desc *d, int il);
/* Row length (ne0) of a matrix entry for this spec. */
int64_t mk_spec_ne0(const struct mk_spec *s, enum mk_ne0 which);
/* Type used for a matrix with rows of ne0 elements: the requested type when ne0 fits its
 * block size, else the nearest that fits (q4_k -> q5_0 -> q8_0 -> f16; others -> f16). */
enum ggml_type mk_spec_matrix_type(enum ggml_type want, int64_t ne0);

/* Parse "f32|f16|q8_0|q4_0|q4_k"; returns GGML_TYPE_COUNT when unknown. */
enum ggml_type mk_type_parse(const char *s);
/* Parse "none|mean|cls|last|rank"; returns -2 when unknown. */
int mk_pooling_parse(const char *s);
/* The list of preset names, for usage text. */
const char *mk_preset_names(void);

#endif
