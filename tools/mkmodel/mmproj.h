/* mmproj.h — mkmodel's --mmproj: a random-weight multimodal projector GGUF for llama.cpp's mtmd,
 * LLaVA-1.5 style (`clip.projector_type: mlp`): a small CLIP ViT (patch conv, class embedding,
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

#endif
