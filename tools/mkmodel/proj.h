/* proj.h — what mkmodel's projector writers share (mmproj.c: LLaVA, Ultravox and Pocket-TTS;
 * aproj.c: Voxtral and Qwen3-ASR;
 * tts_qwen3.c: Qwen3-TTS): a builder that creates, fills and registers F16/F32 tensors, each
 * from its own stream seeded by its name (rng.h), the keys every projector file starts with, and
 * the write (OUT.part, synced, renamed over OUT; never a partial OUT).
 *
 * A writer describes its tensors in one function, which mk_pb_write runs twice: first on a
 * counting builder (nothing is created, bytes and sizes are summed), then, once the context is
 * allocated and the keys are set, for real. The bytes of a file are a pure function of the seed
 * and the description. */
#ifndef MK_PROJ_H
#define MK_PROJ_H

#include <stddef.h>
#include <stdint.h>

#include "ggml.h"
#include "gguf.h"

enum mk_pinit {
  MK_P_RANDOM, /* random, the given standard deviation */
  MK_P_ONE,
  MK_P_ZERO,
  MK_P_CONST /* every value is the given "standard deviation" */
};

typedef struct mk_pb {
  struct ggml_context *ctx; /* NULL: the counting pass */
  struct gguf_context *g;
  uint64_t seed; /* the writer's stream seed (not the text model's) */
  size_t need;   /* bytes counted in the first pass */
  int n_tensors; /* tensors counted */
  float *tmp;    /* F32 staging for F16 tensors */
  size_t tmp_n, biggest;
  int failed; /* set when a tensor could not be made (out of memory, or its name too long) */
} mk_pb;

/* Write the projector out_path: tensors(b, arg) counts; the builder gets its memory; keys(g,
 * arg) sets the keys (mk_pb_header's first); tensors(b, arg) fills; the file is saved.
 * stream_seed: the writer's own (not the text model's); what: the errors' prefix ("mmproj").
 * 0, or -1 with err set (and no OUT.part left behind). */
int mk_pb_write(const char *out_path, uint64_t stream_seed, const char *what,
                void (*tensors)(mk_pb *b, const void *arg),
                void (*keys)(struct gguf_context *g, const void *arg), const void *arg,
                uint64_t *n_bytes, char *err, size_t errlen);
/* The keys every projector starts with: general.architecture clip, general.type mmproj,
 * general.name, general.description ("random weights from switchyard mkmodel (seed N): " +
 * what), general.file_type F16. */
void mk_pb_header(struct gguf_context *g, const char *name, uint64_t seed, const char *what);

/* One tensor of type F16 or F32, shape [ne0, ne1, ne2, ne3] (ggml order), named by fmt. */
void mk_pb_tensor4(mk_pb *b, enum ggml_type type, enum mk_pinit init, float std, int64_t ne0,
                   int64_t ne1, int64_t ne2, int64_t ne3, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));
void mk_pb_tensor(mk_pb *b, enum ggml_type type, enum mk_pinit init, float std, int64_t ne0,
                  int64_t ne1, int64_t ne2, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
/* An F16 matrix [in, out], std 1/sqrt(in). */
void mk_pb_mat(mk_pb *b, int64_t in, int64_t out, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An F32 vector of n (MK_P_RANDOM: std 1). */
void mk_pb_vec(mk_pb *b, enum mk_pinit init, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* PREFIX.weight, an F16 matrix [in, out] (std 1/sqrt(in)), and PREFIX.bias, F32 zeros [out]. */
void mk_pb_linear(mk_pb *b, int64_t in, int64_t out, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* PREFIX.weight, F32 ones [n], and PREFIX.bias, F32 zeros [n]: a LayerNorm. */
void mk_pb_norm(mk_pb *b, int64_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* PREFIX.weight, a 1-D conv kernel [k, in, out] in F16 (std 1/sqrt(k*in), as the converters
 * force for ggml_conv_1d), and PREFIX.bias, F32 zeros [out]. */
void mk_pb_conv(mk_pb *b, int64_t k, int64_t in, int64_t out, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* A pre-norm encoder block with biases, CLIP's and whisper's: PFX.blk.IL.{attn_q, attn_k, attn_v,
 * attn_out, ln1, ffn_up, ffn_down, ln2}. k_bias 0 (whisper): attn_k has no bias, and comes after
 * the other three. */
void mk_pb_encoder_block(mk_pb *b, const char *pfx, int il, int64_t E, int64_t FF, int k_bias);

/* whisper's positions: 3000 mel frames halved by the second conv */
#define MK_PB_WHISPER_POS 1500
/* The whisper encoder mtmd's ultravox, voxtral and qwen2a projectors share: two 1-D
 * convolutions over n_mel bins (kernel 3; the second, stride 2, halves the frames), learned
 * positions for MK_PB_WHISPER_POS frames, n_layers pre-norm blocks of width E (k without a bias),
 * a final LayerNorm (a.post_ln). */
void mk_pb_whisper_encoder(mk_pb *b, int64_t E, int64_t n_mel, int n_layers, int64_t FF);

#endif
