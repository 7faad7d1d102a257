/* moe.h — mkmodel's mixture-of-experts and hybrid (recurrent + attention) architectures beyond
 * qwen3next: qwen3moe (Qwen3-30B-A3B), qwen35 / qwen35moe (Qwen3.5, gated delta net + gated
 * attention, interleaved M-RoPE) and nemotron_h_moe (Nemotron-3-Nano-30B-A3B: Mamba-2 + attention
 * + MoE layers by a pattern). Their tensor tables, metadata, layer kinds and the Qwen special
 * tokens the test vocabularies lack. Pure data and metadata: must never touch files or the
 * engine, and never change what the other architectures write. */
#ifndef MK_MOE_H
#define MK_MOE_H

#include <stddef.h>

#include "gguf.h"
#include "spec.h"

/* What a layer is, by the architecture's rule. */
enum mk_layer_kind {
  MK_LAYER_ATTN, /* attention (a KV cache), or any layer of a non-hybrid */
  MK_LAYER_RECR, /* recurrent: linear attention (gated delta net) or Mamba-2 */
  MK_LAYER_MOE,  /* nemotron_h_moe's expert layers: neither attention nor recurrent */
};

/* Whether a is one of this file's architectures (qwen3moe, qwen35, qwen35moe, nemotron_h_moe). */
int mk_moe_arch(enum mk_arch a);
/* Whether llama.cpp loads a as a hybrid (attention and recurrent layers): qwen3next, qwen35,
 * qwen35moe, nemotron_h_moe. */
int mk_moe_is_hybrid(enum mk_arch a);
/* The tensor table of one of this file's architectures; *n receives its length. */
const struct mk_tensor_desc *mk_moe_tensors(enum mk_arch a, size_t *n);
/* Layer il's kind (qwen3next / qwen35*: every full_attention_interval-th layer is attention;
 * nemotron_h_moe: the pattern's letter, M recurrent, * attention, E experts). */
enum mk_layer_kind mk_moe_layer_kind(const struct mk_spec *s, int il);
/* Shape checks for this file's architectures; 0, or -1 with a one-line reason in err. */
int mk_moe_check(const struct mk_spec *s, char *err, size_t errlen);
/* Write the architecture's hyper-parameters into g (the common keys are already there; this
 * adds and overrides as the converter writes them). */
void mk_moe_meta(struct gguf_context *g, const struct mk_spec *s);
/* The vocabulary as these models (and qwen3next) ship it: the Qwen added tokens (<|im_start|>,
 * <tool_call>, <think>, <|vision_start|>, ...) at their real ids where the test vocabulary has
 * [PADn] entries, and nemotron's end of turn (<|im_end|>) as EOS. 0, or -1 when out of memory. */
int mk_moe_vocab(struct gguf_context *g, const struct mk_spec *s);

#endif
