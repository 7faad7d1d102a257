/* mmproj.h — mkmodel's --mmproj: a random-weight multimodal projector GGUF for llama.cpp's mtmd.
 * Vision (--mmproj-kind vision, the default): LLaVA-1.5 style (`clip.projector_type: mlp`): a small CLIP ViT (patch conv, class embedding,
 * learned positions, pre-LN, pre-norm blocks with biases) and a two-layer GELU MLP into the text
 * model's embedding width. It pairs with any text model mkmodel writes (llama, qwen2, qwen3): the
 * projector does not depend on the text architecture, only on its n_embd. Images are resized to
 * a fixed square, so every image costs the same number of tokens: (image_size / patch_size)^2.
 * Writes OUT.part, syncs and renames it; must never leave a partial OUT behind. */
#ifndef MK_MMPROJ_H
#define MK_MMPROJ_H

#include <stddef.h>
#include <stdint.h>

#define MK_MMPROJ_IMAGE_SIZE 56 /* pixels; images are resized to this square */
#define MK_MMPROJ_PATCH 14      /* pixels per patch side: (56/14)^2 = 16 tokens per image */
#define MK_MMPROJ_EMBD 64       /* vision width */
#define MK_MMPROJ_HEADS 4
#define MK_MMPROJ_FF 128
#define MK_MMPROJ_LAYERS 2 /* LLaVA reads the second-to-last layer: one runs */

/* Tokens one image becomes with this projector. */
#define MK_MMPROJ_IMAGE_TOKENS \
  ((MK_MMPROJ_IMAGE_SIZE / MK_MMPROJ_PATCH) * (MK_MMPROJ_IMAGE_SIZE / MK_MMPROJ_PATCH))

/* Write the projector for a text model of width n_embd_text. 0, or -1 with err set. The bytes
 * are a pure function of (n_embd_text, seed). */
int mk_mmproj_write(const char *out_path, int n_embd_text, uint64_t seed, uint64_t *n_bytes,
                    char *err, size_t errlen);

/* Load the text model and the projector with mtmd, tokenize a prompt with one image (a 40x30
 * gradient: not square, so the resize runs), check the image's token count, evaluate it and check
 * the next-token logits are finite. 0 + summary, or -1 + err. */
int mk_mmproj_verify(const char *model_path, const char *mmproj_path, int threads, char *summary,
                     size_t summarylen, char *err, size_t errlen);

/* Audio (--mmproj-kind audio): Ultravox style (`clip.projector_type: ultravox`): a tiny whisper
 * encoder (two 1-D convolutions over log-mel frames, the second with stride 2; learned positions;
 * pre-norm blocks, k without bias; a final norm), MK_AMMPROJ_STACK frames stacked, and a SwiGLU MLP
 * between two RMS norms into the text width. mtmd cuts audio into 30 s windows (3000 mel frames,
 * the last one padded with silence), so every started 30 s costs MK_AMMPROJ_WINDOW_TOKENS tokens. */
#define MK_AMMPROJ_RATE 16000 /* whisper's sample rate (mtmd_get_audio_sample_rate) */
#define MK_AMMPROJ_MEL 128    /* mel bins, as whisper-large-v3 (Ultravox's encoder) */
#define MK_AMMPROJ_EMBD 64    /* encoder width */
#define MK_AMMPROJ_HEADS 4
#define MK_AMMPROJ_FF 128
#define MK_AMMPROJ_LAYERS 2
#define MK_AMMPROJ_POS 1500   /* positions: 3000 frames halved by the second convolution */
#define MK_AMMPROJ_STACK 4    /* frames stacked (Ultravox uses 8; 1500 must be a multiple) */
#define MK_AMMPROJ_PROJ_FF 128 /* the projector's hidden width (after SwiGLU) */
#define MK_AMMPROJ_WINDOW_TOKENS (MK_AMMPROJ_POS / MK_AMMPROJ_STACK) /* 375 per 30 s window */

int mk_mmproj_audio_write(const char *out_path, int n_embd_text, uint64_t seed, uint64_t *n_bytes,
                          char *err, size_t errlen);

/* Load the text model and the audio projector with mtmd, tokenize a prompt with 1 s of a 440 Hz
 * sine, check the audio's token count and the sample rate, evaluate it and check the next-token
 * logits are finite. 0 + summary, or -1 + err. */
int mk_mmproj_audio_verify(const char *model_path, const char *mmproj_path, int threads,
                           char *summary, size_t summarylen, char *err, size_t errlen);

#endif
