/* tts_qwen3.h — mkmodel's Qwen3-TTS pair (docs/TTS.md): the talker's vocabulary additions and
 * keys (used by meta.c), the `qwen3tts_gen` + `qwen3tts_spkenc` projector and its check through
 * mtmd's audio-generation API. The structure clip.cpp hard-codes for code2wav (8-layer 16-head
 * transformer, 2 ConvNeXt upsamplers, 4 DAC blocks of 3 residual units, 72-frame window) is
 * the real one; the widths are tiny or, for `qwen3tts-0.6b`, the real checkpoint's.
 * Writes OUT.part, syncs and renames it; must never leave a partial OUT behind. */
#ifndef MK_TTS_QWEN3_H
#define MK_TTS_QWEN3_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "spec.h"

#define MK_Q3T_N_CODEC 3072   /* codec vocabulary (talker_config.vocab_size) */
#define MK_Q3T_N_CODES 2048   /* codebook entries: codes 0..2047 are sampled */
#define MK_Q3T_N_TEXT_EXTRA 3 /* <tts_pad>, <tts_text_bos>, <tts_text_eod> */
#define MK_Q3T_N_EXTRA (MK_Q3T_N_TEXT_EXTRA + MK_Q3T_N_CODEC)
#define MK_Q3T_SAMPLES_PER_FRAME 1920 /* 12.5 Hz at 24 kHz: 2*2 upsample x 8*5*4*3 DAC strides */
#define MK_Q3T_WINDOW 72              /* clip.cpp's wav_tfm_swa: frames per GEN_WAV call */

/* The tokens appended to the text vocabulary, MK_Q3T_N_EXTRA of them: the three text
 * specials, then the codec block (<|codec_N|>, with the named specials at the real
 * checkpoint's ids, e.g. <|codec_eos_token|> at 2150); static storage. */
const char *const *mk_qwen3tts_extra_names(void);

/* Keys a converted talker carries beyond qwen3's: rope.dimension_sections (interleaved M-RoPE),
 * EOS = <|codec_eos_token|>, no BOS/EOS added. n_vocab_text: the text vocabulary's size.
 * 0, or -1 when out of memory. */
int mk_qwen3tts_meta(struct gguf_context *g, const struct mk_spec *s, int n_vocab_text);

/* Write the projector for a talker of width n_embd_text; real != 0 writes the real
 * checkpoint's widths (code predictor 5x1024, code2wav 1024/1536 channels), else tiny ones.
 * The bytes are a pure function of (n_embd_text, real, seed). 0, or -1 with err set. */
int mk_qwen3tts_proj_write(const char *out_path, int n_embd_text, int real, uint64_t seed,
                           uint64_t *n_bytes, char *err, size_t errlen);

/* Load both, build the prompt rows of "Hello world." as the reference helper does (sums of
 * token_embd rows read from the GGUF), run frames of the loop (sample code0 from the codec
 * head, GEN_CODE, feed back embd + <tts_pad>), GEN_WAV the window with its state, and check
 * 1920 finite, non-constant samples per frame. 0 + summary, or -1 + err. */
int mk_qwen3tts_proj_verify(const char *model_path, const char *mmproj_path, int threads,
                            char *summary, size_t summarylen, char *err, size_t errlen);

#endif
