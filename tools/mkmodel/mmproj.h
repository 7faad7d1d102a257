/* mmproj.h — mkmodel's --mmproj: a random-weight multimodal projector GGUF for llama.cpp's mtmd.
 * Vision (--mmproj-kind vision, the default): LLaVA-1.5 style (`clip.projector_type: mlp`): a small
 * CLIP ViT (patch conv, class embedding, learned positions, pre-LN, pre-norm blocks with biases)
 * and a two-layer GELU MLP into the text model's embedding width. It pairs with any text model
 * mkmodel writes (llama, qwen2, qwen3): the projector does not depend on the text architecture,
 * only on its n_embd. Images are resized to a fixed square, so every image costs the same number of
 * tokens: (image_size / patch_size)^2. Writes OUT.part, syncs and renames it; must never leave a
 * partial OUT behind. */
#ifndef MK_MMPROJ_H
#define MK_MMPROJ_H

#include <stddef.h>
#include <stdint.h>

struct llama_model;
struct llama_context;
struct llama_vocab;
struct mtmd_context;
struct mtmd_gen_inp;

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
 * the last one padded with silence), so every started 30 s costs MK_AMMPROJ_WINDOW_TOKENS tokens.
 */
#define MK_AMMPROJ_RATE 16000 /* whisper's sample rate (mtmd_get_audio_sample_rate) */
#define MK_AMMPROJ_MEL 128    /* mel bins, as whisper-large-v3 (Ultravox's encoder) */
#define MK_AMMPROJ_EMBD 64    /* encoder width */
#define MK_AMMPROJ_HEADS 4
#define MK_AMMPROJ_FF 128
#define MK_AMMPROJ_LAYERS 2
#define MK_AMMPROJ_POS 1500    /* positions: 3000 frames halved by the second convolution */
#define MK_AMMPROJ_STACK 4     /* frames stacked (Ultravox uses 8; 1500 must be a multiple) */
#define MK_AMMPROJ_PROJ_FF 128 /* the projector's hidden width (after SwiGLU) */
#define MK_AMMPROJ_WINDOW_TOKENS (MK_AMMPROJ_POS / MK_AMMPROJ_STACK) /* 375 per 30 s window */

/* stack: the stack factor (MK_AMMPROJ_STACK; Ultravox's real one, 8, makes a projector the pinned
 * mtmd cannot encode: see aproj.h). */
int mk_mmproj_audio_write(const char *out_path, int n_embd_text, int stack, uint64_t seed,
                          uint64_t *n_bytes, char *err, size_t errlen);

/* Load the text model and an audio projector (any: ultravox, voxtral, qwen3a) with mtmd,
 * tokenize a prompt with 1 s of a 440 Hz sine, check the audio's token count (expect_tokens)
 * and the sample rate; with eval, evaluate it and check the next-token logits are finite (without:
 * a projector mtmd would abort on is counted, not run). 0 + summary, or -1 + err. */
int mk_mmproj_audio_verify(const char *model_path, const char *mmproj_path, int threads,
                           long expect_tokens, int eval, char *summary, size_t summarylen,
                           char *err, size_t errlen);

/* What the projector checks share (this file's, arch_qwenvl.c's). */
struct mtmd_bitmap;
struct mtmd_input_chunks;
/* A w x h RGB test picture (a gradient; malloc'd, the caller frees it), or NULL. */
unsigned char *mk_mm_test_image(int w, int h);
/* Tokenize prompt_fmt (mtmd's marker where it has %s) around one bitmap into chunks and count the
 * tokens of the chunks of type (enum mtmd_input_chunk_type) into *n_media. 0, or -1 with err. */
int mk_mm_tokenize_one(struct mtmd_context *mctx, const char *prompt_fmt,
                       const struct mtmd_bitmap *bmp, int type, struct mtmd_input_chunks *chunks,
                       size_t *n_media, char *err, size_t errlen);
/* Evaluate the chunks in batches of n_batch and check the next-token logits: finite, not all
 * equal. what: "image" or "audio", for the errors. 0 (*n_past, *range), or -1 with err. */
int mk_mm_eval_check(struct mtmd_context *mctx, struct llama_context *ctx,
                     const struct llama_model *model, struct mtmd_input_chunks *chunks, int n_batch,
                     const char *what, int32_t *n_past, float *range, char *err, size_t errlen);

/* ---- Pocket-TTS (docs/TTS.md) ----------------------------------------------------------- */
/* --mmproj for --arch pockettts: the generation projector (`pockettts_gen`: flow net, end-of-
 * speech head, mimi decoder) for a backbone of width n_embd_text. Tiny widths; the structure
 * clip.cpp hard-codes (SEANet strides 6/5/4, 16x upsample: 1920 samples per 12.5 Hz frame at
 * 24 kHz) is the real one. */
#define MK_TTS_LATENT 32 /* latent per frame, as the real packs */
#define MK_TTS_FLOW 64   /* flow net width */
#define MK_TTS_FLOW_BLOCKS 1
#define MK_TTS_FREQS 16 /* time embedding frequencies (cos + sin: 32 inputs) */
#define MK_TTS_MIMI 64  /* mimi decoder transformer width */
#define MK_TTS_HEADS 4
#define MK_TTS_FF 128
#define MK_TTS_LAYERS 1
#define MK_TTS_SAMPLES_PER_FRAME 1920

int mk_ttsproj_write(const char *out_path, int n_embd_text, uint64_t seed, uint64_t *n_bytes,
                     char *err, size_t errlen);
/* Load the backbone and the projector, prompt "Hello world." + <|audio_bos|>, run 10 frames of
 * the loop (GEN_CODE, feed the embedding back, GEN_WAV every 4 frames with the decoder state) and
 * check the audio: 1920 samples per frame, finite, not constant. 0 + summary, or -1 + err. */
int mk_ttsproj_verify(const char *model_path, const char *mmproj_path, int threads, char *summary,
                      size_t summarylen, char *err, size_t errlen);

/* The audio of a verify's GEN_WAV calls, checked as it comes (mk_wav_gen: the sample count,
 * every sample finite) with the decoder state carried to the next call, and at the end not
 * constant (mk_wav_done: its RMS). Both return 0, or -1 + err. Used by the Pocket-TTS and the
 * Qwen3-TTS verifies. */
typedef struct mk_wav_acc {
  size_t n_samples;
  double sum, sum2;
  char *state; /* the decoder state for the next GEN_WAV (malloc'd; the caller frees it) */
  size_t state_n;
} mk_wav_acc;
/* GEN_WAV on w (the caller sets its feats or codes) with the decoder state so far; it must give
 * n_frames * per_frame samples. */
int mk_wav_gen(mk_wav_acc *a, struct mtmd_context *mctx, struct mtmd_gen_inp *w, size_t n_frames,
               size_t per_frame, char *err, size_t errlen);
int mk_wav_done(const mk_wav_acc *a, double *rms, char *err, size_t errlen);

/* A speech-generation check's setup, the Pocket-TTS and the Qwen3-TTS verifies' (verify.h's
 * pieces): the backbone on the CPU, mtmd with the projector, whose generator must be of
 * gen_type (enum mtmd_gen_audio_type; label names it in the error, "pocket-tts"), and a
 * 256-token context with embeddings. 0, or -1 with err and nothing left open. */
typedef struct mk_gen_check {
  struct llama_model *model;
  struct llama_context *ctx;
  struct mtmd_context *mctx;
  const struct llama_vocab *vocab;
  int n_embd, sample_rate;
} mk_gen_check;
int mk_gen_open(mk_gen_check *c, const char *model_path, const char *mmproj_path, int threads,
                int gen_type, const char *label, char *err, size_t errlen);
void mk_gen_close(mk_gen_check *c);

#endif
