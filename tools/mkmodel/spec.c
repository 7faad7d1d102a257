/* spec.c — architectures, presets and tensor tables for mkmodel (see spec.h).
 * Pure data and checks: must never touch files, the engine or global mutable state. */
#include "spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aproj.h"
#include "llama.h"
#include "moe.h"

/* ---- tensor tables: the tensors real checkpoints carry (llama.cpp's loader creates more in
 * memory when building from metadata — optional biases, scales — which are dropped on output) */

static const struct mk_tensor_desc tensors_llama[] = {
    {"token_embd.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"output_norm.weight", 0, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"output.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 1, 0},
    {"attn_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_q.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_k.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_v.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_output.weight", 1, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},
    {"ffn_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ffn_gate.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_up.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down.weight", 1, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
};

static const struct mk_tensor_desc tensors_qwen2[] = {
    {"token_embd.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"output_norm.weight", 0, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"output.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 1, 0},
    {"attn_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_q.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_k.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_v.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_q.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_k.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_v.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_output.weight", 1, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},
    {"ffn_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ffn_gate.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_up.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down.weight", 1, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
};

static const struct mk_tensor_desc tensors_qwen3[] = {
    {"token_embd.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"output_norm.weight", 0, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"output.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 1, 0},
    {"attn_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_q.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_k.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_v.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_q_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_k_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_output.weight", 1, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},
    {"ffn_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ffn_gate.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_up.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down.weight", 1, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
};

static const struct mk_tensor_desc tensors_bert[] = {
    {"token_embd.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"token_types.weight", 0, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"position_embd.weight", 0, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"token_embd_norm.weight", 0, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"token_embd_norm.bias", 0, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_q.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_q.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_k.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_k.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_v.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_v.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_output.weight", 1, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},
    {"attn_output.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_output_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_output_norm.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"ffn_up.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_up.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"ffn_down.weight", 1, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
    {"ffn_down.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"layer_output_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"layer_output_norm.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    /* the classification head of a cross-encoder reranker (pooling rank): dense + tanh, then
     * one output (llama.cpp's n_cls_out defaults to 1 without classifier.output_labels) */
    {"cls.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 1},
    {"cls.bias", 0, MK_INIT_ZERO, MK_NE0_EMBD, 0, 1},
    {"cls.output.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 1},
    {"cls.output.bias", 0, MK_INIT_ZERO, MK_NE0_EMBD, 0, 1},
};

/* Pocket-TTS's backbone (src/models/pockettts.cpp): LayerNorm with biases, separate q/k/v, a
 * non-gated GELU FFN; no output matrix (the embedding table is reused for the unused logits) */
static const struct mk_tensor_desc tensors_pockettts[] = {
    {"token_embd.weight", 0, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"output_norm.weight", 0, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"output_norm.bias", 0, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_norm.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"attn_q.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_k.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_v.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_output.weight", 1, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},
    {"ffn_norm.weight", 1, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ffn_norm.bias", 1, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"ffn_up.weight", 1, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down.weight", 1, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
};

/* Qwen3-Next (src/models/qwen3next.cpp), as convert_hf_to_gguf writes it: every layer has an RMS
 * norm before and after its mixer and a mixture of experts (router in F32, experts' gate and up
 * fused, a shared expert with a sigmoid gate); every full_attention_interval-th layer is gated
 * attention (attn_q is query + gate, q/k norms), the others are linear attention (gated delta
 * net: attn_qkv + attn_gate (z), a causal conv1d, dt bias, A, beta/alpha, a gated norm). The
 * converter writes the legacy fused ssm_in no more; the loader's in-memory ssm_in is left out. */
static const struct mk_tensor_desc tensors_qwen3next[] = {
    {"token_embd.weight", MK_GLOBAL, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"output_norm.weight", MK_GLOBAL, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"output.weight", MK_GLOBAL, MK_INIT_MATRIX, MK_NE0_EMBD, 1, 0},
    {"attn_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"post_attention_norm.weight", MK_EVERY_LAYER, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_q.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_k.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_v.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_q_norm.weight", MK_ATTN_LAYERS, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_k_norm.weight", MK_ATTN_LAYERS, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"attn_output.weight", MK_ATTN_LAYERS, MK_INIT_MATRIX, MK_NE0_QDIM, 0, 0},
    {"attn_qkv.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"attn_gate.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ssm_conv1d.weight", MK_RECR_LAYERS, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"ssm_dt.bias", MK_RECR_LAYERS, MK_INIT_ZERO, MK_NE0_EMBD, 0, 0},
    {"ssm_a", MK_RECR_LAYERS, MK_INIT_NEG_ONE, MK_NE0_EMBD, 0, 0},
    {"ssm_ba.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ssm_norm.weight", MK_RECR_LAYERS, MK_INIT_ONE, MK_NE0_EMBD, 0, 0},
    {"ssm_out.weight", MK_RECR_LAYERS, MK_INIT_MATRIX, MK_NE0_SSM_INNER, 0, 0},
    {"ffn_gate_inp.weight", MK_EVERY_LAYER, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"ffn_gate_up_exps.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down_exps.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
    {"ffn_gate_inp_shexp.weight", MK_EVERY_LAYER, MK_INIT_RANDOM, MK_NE0_EMBD, 0, 0},
    {"ffn_gate_shexp.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_up_shexp.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_EMBD, 0, 0},
    {"ffn_down_shexp.weight", MK_EVERY_LAYER, MK_INIT_MATRIX, MK_NE0_FF, 0, 0},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
  const char *name;
  const struct mk_tensor_desc *tensors;
  size_t n_tensors;
} arch_info[MK_ARCH_COUNT] = {
    [MK_ARCH_LLAMA] = {"llama", tensors_llama, N_OF(tensors_llama)},
    [MK_ARCH_QWEN2] = {"qwen2", tensors_qwen2, N_OF(tensors_qwen2)},
    [MK_ARCH_QWEN3] = {"qwen3", tensors_qwen3, N_OF(tensors_qwen3)},
    [MK_ARCH_BERT] = {"bert", tensors_bert, N_OF(tensors_bert)},
    [MK_ARCH_POCKETTTS] = {"pockettts", tensors_pockettts, N_OF(tensors_pockettts)},
    /* Qwen3-TTS's talker (src/models/qwen3vl.cpp) carries qwen3's tensors; its output.weight
     * is the codec head (3072 rows, the vocabulary's last 3072 tokens; llama.cpp sizes it, not
     * n_vocab) */
    [MK_ARCH_QWEN3TTS] = {"qwen3tts", tensors_qwen3, N_OF(tensors_qwen3)},
    [MK_ARCH_QWEN3NEXT] = {"qwen3next", tensors_qwen3next, N_OF(tensors_qwen3next)},
    /* the vision-language text models carry exactly qwen2's / qwen3's tensors (their loaders:
     * src/models/qwen2vl.cpp, qwen3vl.cpp); what differs is metadata (arch_qwenvl.c) */
    [MK_ARCH_QWEN2VL] = {"qwen2vl", tensors_qwen2, N_OF(tensors_qwen2)},
    [MK_ARCH_QWEN3VL] = {"qwen3vl", tensors_qwen3, N_OF(tensors_qwen3)},
    /* moe.c's tables (mk_arch_tensors asks it) */
    [MK_ARCH_QWEN3MOE] = {"qwen3moe", NULL, 0},
    [MK_ARCH_QWEN3VLMOE] = {"qwen3vlmoe", NULL, 0},
    [MK_ARCH_QWEN35] = {"qwen35", NULL, 0},
    [MK_ARCH_QWEN35MOE] = {"qwen35moe", NULL, 0},
    [MK_ARCH_NEMOTRONHMOE] = {"nemotron_h_moe", NULL, 0},
};

/* ---- presets: every shape field given, so a preset fully defines a model ---- */

struct mk_preset {
  const char *name;
  enum mk_arch arch;
  const char *vocab;
  int n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, head_dim;
  const char *chat_template;
  int pooling, tied;
  float rope_base, norm_eps;
};

static const struct mk_preset presets[] = {
    /* name, arch, vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, ctx, head_dim (0:
     * n_embd/n_head), chat template, pooling, tied, rope base, norm eps */
    {"tiny-llama", MK_ARCH_LLAMA, "llama-spm", 64, 2, 4, 2, 128, 2048, 0, "none", -1, 0, 10000.0f,
     1e-5f},
    {"tiny-qwen2", MK_ARCH_QWEN2, "qwen2", 64, 2, 4, 2, 128, 2048, 0, "chatml", -1, 1, 1000000.0f,
     1e-6f},
    {"tiny-qwen3", MK_ARCH_QWEN3, "qwen2", 64, 2, 4, 2, 128, 2048, 0, "chatml", -1, 1, 1000000.0f,
     1e-6f},
    {"tiny-bert", MK_ARCH_BERT, "bert-bge", 64, 2, 4, 4, 128, 512, 0, "none",
     LLAMA_POOLING_TYPE_MEAN, 0, 0.0f, 1e-12f},
    /* a cross-encoder reranker (bge-reranker's structure): bert + classification head */
    {"tiny-bert-rerank", MK_ARCH_BERT, "bert-bge", 64, 2, 4, 4, 128, 512, 0, "none",
     LLAMA_POOLING_TYPE_RANK, 0, 0.0f, 1e-12f},
    /* Pocket-TTS's backbone, tiny (the real packs: 1024 wide, 6 or 24 layers, head_dim 64);
     * the SentencePiece vocabulary gets Pocket-TTS's control tokens appended (meta.c) */
    {"tiny-pockettts", MK_ARCH_POCKETTTS, "llama-spm", 64, 2, 4, 4, 128, 2048, 0, "none", -1, 1,
     10000.0f, 1e-5f},
    /* Qwen3-TTS's talker, tiny: the Qwen2 vocabulary + 3 text specials + 3072 codec tokens
     * (tts_qwen3.c); untied, output.weight is the codec head */
    {"tiny-qwen3tts", MK_ARCH_QWEN3TTS, "qwen2", 64, 2, 4, 2, 128, 4096, 16, "none", -1, 0,
     1000000.0f, 1e-6f},
    /* Qwen3-TTS-12Hz-0.6B's talker shape (head_dim 128, GQA 16:8) */
    {"qwen3tts-0.6b", MK_ARCH_QWEN3TTS, "qwen2", 1024, 28, 16, 8, 3072, 32768, 128, "none", -1, 0,
     1000000.0f, 1e-6f},
    /* Qwen2.5-0.5B-Instruct's shape (tied embeddings, GQA 14:2, head_dim 64) */
    {"qwen2-0.5b", MK_ARCH_QWEN2, "qwen2", 896, 24, 14, 2, 4864, 32768, 0, "chatml", -1, 1,
     1000000.0f, 1e-6f},
    /* Qwen3-0.6B's shape (head_dim 128 > n_embd/n_head, tied embeddings) */
    {"qwen3-0.6b", MK_ARCH_QWEN3, "qwen2", 1024, 28, 16, 8, 3072, 40960, 128, "chatml", -1, 1,
     1000000.0f, 1e-6f},
    /* full-size shapes for memory checks on a GPU (see docs/GPU-CHECK.md); best with --type
     * q4_k_m. From each model's config.json: hidden, layers, heads/kv, head_dim, intermediate */
    {"qwen2.5-7b", MK_ARCH_QWEN2, "qwen2", 3584, 28, 28, 4, 18944, 32768, 0, "chatml", -1, 0,
     1000000.0f, 1e-6f},
    {"qwen3-8b", MK_ARCH_QWEN3, "qwen2", 4096, 36, 32, 8, 12288, 40960, 128, "chatml", -1, 0,
     1000000.0f, 1e-6f},
    {"qwen3-14b", MK_ARCH_QWEN3, "qwen2", 5120, 40, 40, 8, 17408, 40960, 128, "chatml", -1, 0,
     1000000.0f, 1e-6f},
    {"qwen3-32b", MK_ARCH_QWEN3, "qwen2", 5120, 64, 64, 8, 25600, 40960, 128, "chatml", -1, 0,
     1000000.0f, 1e-6f},
    /* Qwen3-Embedding-0.6B: Qwen3-0.6B's body, last-token pooling, no chat template */
    {"qwen3-embedding-0.6b", MK_ARCH_QWEN3, "qwen2", 1024, 28, 16, 8, 3072, 32768, 128, "none",
     LLAMA_POOLING_TYPE_LAST, 1, 1000000.0f, 1e-6f},
    /* a hybrid (attention + recurrent layers), tiny: Qwen3-Next's structure (layers 0-2 linear
     * attention, layer 3 gated attention; n_ff is the experts' and the shared expert's width),
     * tied to keep it small (the real one is untied); its recurrent part in preset_hybrids */
    {"tiny-hybrid", MK_ARCH_QWEN3NEXT, "qwen2", 64, 4, 4, 2, 64, 4096, 16, "chatml", -1, 1,
     10000000.0f, 1e-6f},
    /* vision-language text models (docs/MKMODEL.md "Qwen-VL"): tiny, and the real shapes of
     * Qwen2.5-VL-7B-Instruct and Qwen3-VL-8B-Instruct (config.json's text part) */
    {"tiny-qwen25vl", MK_ARCH_QWEN2VL, "qwen2", 64, 2, 4, 2, 128, 4096, 16, "chatml", -1, 1,
     1000000.0f, 1e-6f},
    {"tiny-qwen3vl", MK_ARCH_QWEN3VL, "qwen2", 64, 3, 4, 2, 128, 4096, 16, "chatml", -1, 1,
     5000000.0f, 1e-6f},
    {"qwen2.5-vl-7b", MK_ARCH_QWEN2VL, "qwen2", 3584, 28, 28, 4, 18944, 128000, 128, "chatml", -1,
     0, 1000000.0f, 1e-6f},
    {"qwen3-vl-8b", MK_ARCH_QWEN3VL, "qwen2", 4096, 36, 32, 8, 12288, 262144, 128, "chatml", -1, 0,
     5000000.0f, 1e-6f},
    /* audio LLMs (aproj.h: their vocabulary additions and projectors). Voxtral-Mini-3B's text
     * model (Ministral-3B's shape, head_dim 128 > n_embd/n_head) on llama-bpe + Mistral's
     * control tokens; its chat template is given with --chat-template (docs/MKMODEL.md) */
    {"tiny-voxtral", MK_ARCH_LLAMA, "llama-bpe", 64, 2, 4, 2, 128, 4096, 32, "none", -1, 0,
     100000000.0f, 1e-5f},
    {"voxtral-mini-3b", MK_ARCH_LLAMA, "llama-bpe", 3072, 30, 32, 8, 8192, 32768, 128, "none", -1,
     0, 100000000.0f, 1e-5f},
    /* Qwen3-ASR's text model: qwen3vl (M-RoPE), chatml as its converter writes it */
    {"tiny-qwen3asr", MK_ARCH_QWEN3VL, "qwen2", 64, 2, 4, 2, 128, 4096, 16, "chatml", -1, 1,
     1000000.0f, 1e-6f},
    {"qwen3-asr-0.6b", MK_ARCH_QWEN3VL, "qwen2", 1024, 28, 16, 8, 3072, 65536, 128, "chatml", -1, 1,
     1000000.0f, 1e-6f},
    /* Ultravox-v0.5 (Llama-3.2-1B's template family), tiny, with its real stack factor 8 */
    {"tiny-ultravox", MK_ARCH_LLAMA, "llama-bpe", 64, 2, 4, 2, 128, 4096, 0, "llama3", -1, 0,
     500000.0f, 1e-5f},
    /* Qwen3-Embedding: last-token pooling over <|endoftext|>, which its tokenizer appends */
    {"tiny-qwen3-embedding", MK_ARCH_QWEN3, "qwen2", 64, 2, 4, 2, 128, 2048, 0, "none",
     LLAMA_POOLING_TYPE_LAST, 1, 1000000.0f, 1e-6f},
    {"qwen3-embedding-8b", MK_ARCH_QWEN3, "qwen2", 4096, 36, 32, 8, 12288, 40960, 128, "none",
     LLAMA_POOLING_TYPE_LAST, 0, 1000000.0f, 1e-6f},
    /* moe.c's architectures, tiny (n_ff: the experts' width; recurrent parts in preset_hybrids)
     * and at their real shapes (config.json: hidden, layers, heads/kv, head_dim, experts' width) */
    {"tiny-qwen3moe", MK_ARCH_QWEN3MOE, "qwen2", 64, 2, 4, 2, 64, 4096, 16, "chatml", -1, 1,
     1000000.0f, 1e-6f},
    /* Qwen3-VL-30B-A3B's text model, tiny: qwen3moe's layers, Qwen3-VL's M-RoPE and deepstack */
    {"tiny-qwen3vlmoe", MK_ARCH_QWEN3VLMOE, "qwen2", 64, 3, 4, 2, 64, 4096, 16, "chatml", -1, 1,
     5000000.0f, 1e-6f},
    {"tiny-qwen35", MK_ARCH_QWEN35, "qwen35", 64, 4, 4, 2, 128, 4096, 32, "chatml", -1, 1,
     10000000.0f, 1e-6f},
    {"tiny-qwen35moe", MK_ARCH_QWEN35MOE, "qwen35", 64, 4, 4, 2, 64, 4096, 32, "chatml", -1, 1,
     10000000.0f, 1e-6f},
    {"tiny-nemotron-h-moe", MK_ARCH_NEMOTRONHMOE, "qwen2", 64, 5, 4, 2, 32, 4096, 16, "chatml", -1,
     1, 10000.0f, 1e-5f},
    {"qwen3-30b-a3b", MK_ARCH_QWEN3MOE, "qwen2", 2048, 48, 32, 4, 768, 40960, 128, "chatml", -1, 0,
     1000000.0f, 1e-6f},
    {"qwen3-next-80b-a3b", MK_ARCH_QWEN3NEXT, "qwen2", 2048, 48, 16, 2, 512, 262144, 256, "chatml",
     -1, 0, 10000000.0f, 1e-6f},
    {"qwen3.5-35b-a3b", MK_ARCH_QWEN35MOE, "qwen35", 2048, 40, 16, 2, 512, 262144, 256, "chatml",
     -1, 0, 10000000.0f, 1e-6f},
    {"nemotron-3-nano-30b-a3b", MK_ARCH_NEMOTRONHMOE, "qwen2", 2688, 52, 32, 2, 1856, 1048576, 128,
     "chatml", -1, 0, 10000.0f, 1e-5f},
};

/* The recurrent layers and experts of the hybrid presets, by preset name. */
static const struct {
  const char *preset;
  struct mk_hybrid hy;
} preset_hybrids[] = {
    /* experts, used, conv kernel, state (head width), k heads, v heads, attention interval;
     * Qwen3-Next-80B-A3B: 512, 10, 4, 128, 16, 32, 4 */
    {"tiny-hybrid", {4, 2, 4, 16, 2, 4, 4, 0, 0, NULL}},
    /* + shared expert width, Mamba-2 head width, layer pattern (moe.h) */
    {"tiny-qwen3moe", {4, 2, 0, 0, 0, 0, 0, 0, 0, NULL}},
    {"tiny-qwen3vlmoe", {4, 2, 0, 0, 0, 0, 0, 0, 0, NULL}},
    {"tiny-qwen35", {0, 0, 4, 16, 2, 4, 4, 0, 0, NULL}},
    {"tiny-qwen35moe", {4, 2, 4, 16, 2, 4, 4, 64, 0, NULL}},
    {"tiny-nemotron-h-moe", {4, 2, 4, 16, 2, 4, 0, 64, 16, "MEM*E"}},
    {"qwen3-30b-a3b", {128, 8, 0, 0, 0, 0, 0, 0, 0, NULL}},
    {"qwen3-next-80b-a3b", {512, 10, 4, 128, 16, 32, 4, 512, 0, NULL}},
    {"qwen3.5-35b-a3b", {256, 8, 4, 128, 16, 32, 4, 512, 0, NULL}},
    {"nemotron-3-nano-30b-a3b",
     {128, 6, 4, 128, 8, 64, 0, 3712, 64, "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME"}},
};

const char *mk_preset_names(void) {
  return "tiny-llama, tiny-qwen2, tiny-qwen3, tiny-bert, tiny-bert-rerank, tiny-pockettts, "
         "tiny-qwen3tts,\n                       qwen3tts-0.6b, qwen2-0.5b, qwen3-0.6b, "
         "qwen2.5-7b, qwen3-8b, "
         "qwen3-14b,\n                       qwen3-32b, qwen3-embedding-0.6b, tiny-hybrid, "
         "tiny-qwen25vl, "
         "tiny-qwen3vl,\n                       qwen2.5-vl-7b, qwen3-vl-8b, "
         "tiny-voxtral,\n                       voxtral-mini-3b, tiny-qwen3asr, qwen3-asr-0.6b, "
         "tiny-ultravox,\n                       tiny-qwen3-embedding, qwen3-embedding-8b, "
         "tiny-qwen3moe, tiny-qwen3vlmoe, tiny-qwen35,\n                       tiny-qwen35moe, "
         "tiny-nemotron-h-moe, "
         "qwen3-30b-a3b, qwen3-next-80b-a3b,\n                       qwen3.5-35b-a3b, "
         "nemotron-3-nano-30b-a3b";
}

void mk_spec_init(struct mk_spec *s) {
  memset(s, 0, sizeof(*s));
  s->arch = MK_ARCH_COUNT;
  s->n_embd = s->n_layer = s->n_head = s->n_head_kv = s->n_ff = s->n_ctx = s->head_dim = -1;
  s->wtype = GGML_TYPE_COUNT;
  s->has_seed = 0;
  s->seed = 42;
  s->pooling = -2;
  s->tied = -1;
  s->rope_base = -1.0f;
  s->norm_eps = -1.0f;
}

/* Copy every field of p into s ("not given" stays so when p leaves it so). */
static void apply_preset(struct mk_spec *s, const struct mk_preset *p) {
  s->arch = p->arch;
  s->vocab = p->vocab;
  s->n_embd = p->n_embd;
  s->n_layer = p->n_layer;
  s->n_head = p->n_head;
  s->n_head_kv = p->n_head_kv;
  s->n_ff = p->n_ff;
  s->n_ctx = p->n_ctx;
  s->head_dim = p->head_dim > 0 ? p->head_dim : -1;
  s->chat_template = p->chat_template;
  s->pooling = p->pooling;
  s->tied = p->tied;
  s->rope_base = p->rope_base;
  s->norm_eps = p->norm_eps;
  s->name = p->name;
  memset(&s->hy, 0, sizeof(s->hy));
  s->alm = mk_alm_of_preset(p->name, &s->alm_stack);
  for (size_t i = 0; i < N_OF(preset_hybrids); i++) {
    if (strcmp(preset_hybrids[i].preset, p->name) == 0) s->hy = preset_hybrids[i].hy;
  }
}

static const struct mk_preset *find_preset(const char *name) {
  for (size_t i = 0; i < N_OF(presets); i++) {
    if (strcmp(presets[i].name, name) == 0) return &presets[i];
  }
  return NULL;
}

int mk_spec_preset(struct mk_spec *s, const char *name) {
  const struct mk_preset *p = find_preset(name);
  if (!p) return -1;
  apply_preset(s, p);
  return 0;
}

void mk_spec_overlay(struct mk_spec *s, const struct mk_spec *g) {
  if (g->arch < MK_ARCH_COUNT) s->arch = g->arch;
  if (g->vocab) s->vocab = g->vocab;
  if (g->n_embd >= 0) s->n_embd = g->n_embd;
  if (g->n_layer >= 0) s->n_layer = g->n_layer;
  if (g->n_head >= 0) s->n_head = g->n_head;
  if (g->n_head_kv >= 0) s->n_head_kv = g->n_head_kv;
  if (g->n_ff >= 0) s->n_ff = g->n_ff;
  if (g->n_ctx >= 0) s->n_ctx = g->n_ctx;
  if (g->head_dim >= 0) s->head_dim = g->head_dim;
  if (g->wtype != GGML_TYPE_COUNT) {
    s->wtype = g->wtype;
    s->mix = g->mix; /* --type sets both */
  }
  if (g->has_seed) {
    s->seed = g->seed;
    s->has_seed = 1;
  }
  if (g->chat_template) s->chat_template = g->chat_template;
  if (g->pooling != -2) s->pooling = g->pooling;
  if (g->tied >= 0) s->tied = g->tied;
  if (g->rope_base >= 0.0f) s->rope_base = g->rope_base;
  if (g->norm_eps >= 0.0f) s->norm_eps = g->norm_eps;
  if (g->name) s->name = g->name;
  if (g->hy.n_expert > 0 || g->hy.ssm_conv > 0) s->hy = g->hy;
  if (g->alm > 0) s->alm = g->alm, s->alm_stack = g->alm_stack;
}

void mk_spec_defaults(struct mk_spec *s) {
  /* the tiny preset of each architecture holds its defaults */
  static const char *tiny[MK_ARCH_COUNT] = {
      [MK_ARCH_LLAMA] = "tiny-llama",           [MK_ARCH_QWEN2] = "tiny-qwen2",
      [MK_ARCH_QWEN3] = "tiny-qwen3",           [MK_ARCH_BERT] = "tiny-bert",
      [MK_ARCH_POCKETTTS] = "tiny-pockettts",   [MK_ARCH_QWEN3TTS] = "tiny-qwen3tts",
      [MK_ARCH_QWEN3NEXT] = "tiny-hybrid",      [MK_ARCH_QWEN2VL] = "tiny-qwen25vl",
      [MK_ARCH_QWEN3VL] = "tiny-qwen3vl",       [MK_ARCH_QWEN3MOE] = "tiny-qwen3moe",
      [MK_ARCH_QWEN3VLMOE] = "tiny-qwen3vlmoe", [MK_ARCH_QWEN35] = "tiny-qwen35",
      [MK_ARCH_QWEN35MOE] = "tiny-qwen35moe",   [MK_ARCH_NEMOTRONHMOE] = "tiny-nemotron-h-moe",
  };
  if (s->arch >= MK_ARCH_COUNT) return;
  struct mk_spec d;
  mk_spec_init(&d);
  apply_preset(&d, find_preset(tiny[s->arch]));
  d.name = mk_arch_name(s->arch);
  /* bert has no grouped-query attention in practice: kv heads follow the heads */
  if (s->arch == MK_ARCH_BERT && s->n_head >= 0 && s->n_head_kv < 0) s->n_head_kv = s->n_head;
  struct mk_spec given = *s;
  *s = d;
  mk_spec_overlay(s, &given);
  if (s->wtype == GGML_TYPE_COUNT) s->wtype = GGML_TYPE_F16;
  if (s->head_dim < 0 && s->n_head > 0) s->head_dim = s->n_embd / s->n_head;
  if (s->pooling == -2) s->pooling = -1;
}

int mk_spec_check(const struct mk_spec *s, char *err, size_t errlen) {
#define FAIL(...)                       \
  do {                                  \
    snprintf(err, errlen, __VA_ARGS__); \
    return -1;                          \
  } while (0)
  if (s->arch >= MK_ARCH_COUNT) FAIL("no architecture: give --arch or --preset");
  if (s->n_embd < 8 || s->n_embd > 65536) FAIL("--n-embd must be in 8..65536");
  if (s->n_layer < 1 || s->n_layer > 256) FAIL("--n-layer must be in 1..256");
  if (s->n_head < 1 || s->n_head > 1024) FAIL("--n-head must be in 1..1024");
  if (s->n_head_kv < 1 || s->n_head_kv > s->n_head) FAIL("--n-head-kv must be in 1..n_head");
  if (s->n_head % s->n_head_kv != 0)
    FAIL("--n-head (%d) must be a multiple of --n-head-kv (%d)", s->n_head, s->n_head_kv);
  if (s->n_ff < 1 || s->n_ff > 1 << 20) FAIL("--n-ff must be in 1..1048576");
  if (s->n_ctx < 8 || s->n_ctx > 1 << 20) FAIL("--ctx must be in 8..1048576");
  if (s->head_dim < 2 || s->head_dim > 1024 || s->head_dim % 2 != 0)
    FAIL("--head-dim must be even, 2..1024");
  if (s->arch == MK_ARCH_BERT) {
    if (s->head_dim * s->n_head != s->n_embd) FAIL("bert needs n_embd == n_head * head_dim");
    if (s->n_ctx > 65536)
      FAIL("bert stores a position embedding per context slot: --ctx must be <= 65536");
    if ((s->pooling < LLAMA_POOLING_TYPE_MEAN || s->pooling > LLAMA_POOLING_TYPE_LAST) &&
        s->pooling != LLAMA_POOLING_TYPE_RANK)
      FAIL("bert needs --pooling mean, cls, last or rank");
  }
  if (s->arch != MK_ARCH_BERT && s->pooling == LLAMA_POOLING_TYPE_RANK)
    FAIL("--pooling rank (a reranker's classification head) is only made for bert");
  if (s->arch != MK_ARCH_BERT && s->pooling == LLAMA_POOLING_TYPE_CLS)
    FAIL("--pooling cls reads the first token, which a causal model sees alone: use mean or last");
  if (s->arch == MK_ARCH_POCKETTTS && s->head_dim * s->n_head != s->n_embd)
    FAIL("pockettts needs n_embd == n_head * head_dim (its q/k/v are n_embd wide)");
  if (s->arch == MK_ARCH_POCKETTTS && s->pooling >= 0)
    FAIL("pockettts is a speech backbone: no --pooling");
  if (s->arch == MK_ARCH_QWEN3TTS && (s->pooling >= 0 || s->tied))
    FAIL(
        "qwen3tts is a speech backbone: no --pooling, and untied (output.weight is the codec "
        "head)");
  if ((s->arch == MK_ARCH_QWEN3TTS || s->arch == MK_ARCH_QWEN3VL ||
       s->arch == MK_ARCH_QWEN3VLMOE) &&
      s->head_dim % 8 != 0)
    FAIL("qwen3tts and qwen3vl need --head-dim a multiple of 8 (their M-RoPE sections)");
  if (s->arch == MK_ARCH_QWEN3NEXT) {
    const struct mk_hybrid *h = &s->hy;
    if (s->pooling >= 0) FAIL("qwen3next is made as a generative model: no --pooling");
    /* the converter writes rope.dimension_count = head_dim * partial_rotary_factor (0.25) */
    if (s->head_dim % 8 != 0)
      FAIL("qwen3next needs --head-dim a multiple of 8 (a quarter rotates)");
    if (h->n_expert < 1 || h->n_expert_used < 1 || h->n_expert_used > h->n_expert)
      FAIL("qwen3next needs 1 <= experts used <= experts");
    if (h->ssm_conv < 2 || h->ssm_state < 2 || h->ssm_k_heads < 1 || h->ssm_v_heads < 1 ||
        h->ssm_v_heads % h->ssm_k_heads != 0 || h->attn_interval < 1)
      FAIL("qwen3next: implausible recurrent-layer parameters");
  }
  if ((s->arch == MK_ARCH_QWEN2VL || s->arch == MK_ARCH_QWEN3VL) &&
      (s->pooling >= 0 || s->head_dim % 8 != 0))
    FAIL(
        "qwen2vl/qwen3vl are made as generative models (no --pooling) with --head-dim a multiple "
        "of 8 (their M-RoPE sections)");
  if (s->arch == MK_ARCH_QWEN2VL && s->head_dim * s->n_head != s->n_embd)
    FAIL("qwen2vl needs n_embd == n_head * head_dim (its attn_output is n_embd square)");
  if (mk_moe_check(s, err, errlen) != 0) return -1;
  if (s->norm_eps <= 0.0f || s->norm_eps > 0.1f) FAIL("norm epsilon must be in (0, 0.1]");
  if (s->arch != MK_ARCH_BERT && s->rope_base <= 0.0f) FAIL("--rope-base must be > 0");
  return 0;
#undef FAIL
}

int mk_arch_parse(const char *str) {
  for (int i = 0; i < MK_ARCH_COUNT; i++) {
    if (strcmp(arch_info[i].name, str) == 0) return i;
  }
  return -1;
}

const char *mk_arch_name(enum mk_arch a) { return a < MK_ARCH_COUNT ? arch_info[a].name : "?"; }

const struct mk_tensor_desc *mk_arch_tensors(enum mk_arch a, size_t *n) {
  if (mk_moe_arch(a)) return mk_moe_tensors(a, n);
  *n = arch_info[a].n_tensors;
  return arch_info[a].tensors;
}

const struct mk_tensor_desc *mk_spec_find_tensor(const struct mk_spec *s, const char *name) {
  long il = -1; /* -1: a global tensor */
  const char *suffix = name;
  if (strncmp(name, "blk.", 4) == 0) {
    char *end = NULL;
    il = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || il < 0 || il >= s->n_layer) return NULL;
    suffix = end + 1;
  }
  size_t n = 0;
  const struct mk_tensor_desc *t = mk_arch_tensors(s->arch, &n);
  for (size_t i = 0; i < n; i++) {
    if ((il < 0) != (t[i].per_layer == MK_GLOBAL) || strcmp(t[i].suffix, suffix) != 0) continue;
    if (il >= 0 && !mk_spec_layer_has(s, &t[i], (int)il)) continue;
    return mk_spec_keeps(s, &t[i]) ? &t[i] : NULL;
  }
  return NULL;
}

int mk_spec_layer_is_recr(const struct mk_spec *s, int il) {
  return mk_moe_layer_kind(s, il) == MK_LAYER_RECR;
}

int mk_spec_layer_has(const struct mk_spec *s, const struct mk_tensor_desc *d, int il) {
  switch (d->per_layer) {
    case MK_EVERY_LAYER:
      return 1;
    case MK_ATTN_LAYERS:
      return mk_moe_layer_kind(s, il) == MK_LAYER_ATTN;
    case MK_MOE_LAYERS:
      return mk_moe_layer_kind(s, il) == MK_LAYER_MOE;
    case MK_RECR_LAYERS:
      return mk_spec_layer_is_recr(s, il);
    default:
      return 0;
  }
}

int mk_spec_keeps(const struct mk_spec *s, const struct mk_tensor_desc *d) {
  if (d->untied_only && s->tied) return 0;
  if (d->rank_only && s->pooling != LLAMA_POOLING_TYPE_RANK) return 0;
  return 1;
}

int64_t mk_spec_ne0(const struct mk_spec *s, enum mk_ne0 which) {
  switch (which) {
    case MK_NE0_FF:
      return s->n_ff;
    case MK_NE0_QDIM:
      return (int64_t)s->n_head * s->head_dim;
    case MK_NE0_SSM_INNER:
      return (int64_t)(s->hy.ssm_head_dim > 0 ? s->hy.ssm_head_dim : s->hy.ssm_state) *
             s->hy.ssm_v_heads;
    case MK_NE0_FF_SHEXP:
      return s->hy.n_ff_shexp > 0 ? s->hy.n_ff_shexp : s->n_ff;
    case MK_NE0_EMBD:
    default:
      return s->n_embd;
  }
}

enum ggml_type mk_spec_matrix_type(enum ggml_type want, int64_t ne0) {
  static const enum ggml_type chain_k[] = {GGML_TYPE_Q4_K, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0,
                                           GGML_TYPE_F16};
  if (ne0 % ggml_blck_size(want) == 0) return want;
  if (want == GGML_TYPE_Q4_K) {
    for (size_t i = 1; i < N_OF(chain_k); i++) {
      if (ne0 % ggml_blck_size(chain_k[i]) == 0) return chain_k[i];
    }
  }
  return GGML_TYPE_F16;
}

enum ggml_type mk_type_parse(const char *str) {
  static const struct {
    const char *name;
    enum ggml_type type;
  } types[] = {
      {"f32", GGML_TYPE_F32},   {"f16", GGML_TYPE_F16},   {"q8_0", GGML_TYPE_Q8_0},
      {"q4_0", GGML_TYPE_Q4_0}, {"q4_k", GGML_TYPE_Q4_K},
  };
  for (size_t i = 0; i < N_OF(types); i++) {
    if (strcasecmp(types[i].name, str) == 0) return types[i].type;
  }
  return GGML_TYPE_COUNT;
}

int mk_pooling_parse(const char *str) {
  if (strcmp(str, "none") == 0) return -1;
  if (strcmp(str, "mean") == 0) return LLAMA_POOLING_TYPE_MEAN;
  if (strcmp(str, "cls") == 0) return LLAMA_POOLING_TYPE_CLS;
  if (strcmp(str, "last") == 0) return LLAMA_POOLING_TYPE_LAST;
  if (strcmp(str, "rank") == 0) return LLAMA_POOLING_TYPE_RANK;
  return -2;
}
