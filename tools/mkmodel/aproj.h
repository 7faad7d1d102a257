/* aproj.h — mkmodel's audio LLM families (docs/MKMODEL.md "Audio LLMs"): which presets are one,
 * the tokens each adds to a shipped vocabulary and the keys that go with them, the projector each
 * pairs with, and the number of tokens mtmd makes of an audio clip for it.
 *  - Voxtral (Mistral's Voxtral-Mini-3B): a `llama` text model; Mistral's tekken vocabulary is not
 *    shipped with the engine, so a shipped BPE vocabulary (llama-bpe) gets Mistral's control
 *    tokens (<s>, </s>, [INST], [/INST], [BEGIN_AUDIO], [AUDIO], [TRANSCRIBE], the tool tokens)
 *    appended; the `voxtral` projector (whisper encoder, 4 frames stacked, GELU MLP).
 *  - Qwen3-ASR / Qwen3-Omni: text architecture `qwen3vl` (M-RoPE, no deepstack layers), the Qwen2
 *    vocabulary + Qwen3's audio markers (<|audio_start|>, <|audio_end|>, <|audio_pad|>,
 *    <asr_text>); the `qwen3a` projector (three stride-2 conv2d over 100-frame chunks, 13 tokens
 * per chunk, 8 s windows).
 *  - Ultravox with its real stack factor 8, which the pinned mtmd cannot encode (its token count
 *    and its graph differ by one): the projector is written so that Switchyard's refusal can be
 *    tested; --verify counts its tokens and does not encode.
 * Pure data and file writing through proj.h; must never leave a partial output behind. */
#ifndef MK_APROJ_H
#define MK_APROJ_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "mmproj.h"
#include "spec.h"

enum mk_alm {
  MK_ALM_NONE = 0,
  MK_ALM_ULTRAVOX, /* --mmproj-kind audio's projector, with the preset's stack factor */
  MK_ALM_VOXTRAL,
  MK_ALM_QWEN3A,
};

#define MK_APROJ_RATE MK_AMMPROJ_RATE /* every audio projector here takes 16 kHz */
#define MK_APROJ_MEL MK_AMMPROJ_MEL   /* 128 (whisper-large-v3's, Voxtral's, Qwen3-ASR's) */
#define MK_APROJ_WINDOW 480000        /* whisper-style windows: 30 s of samples */
#define MK_APROJ_Q3A_CHUNK 100        /* qwen3a: mel frames per conv chunk (1 s) */
#define MK_APROJ_Q3A_CHUNK_TOKENS 13
#define MK_APROJ_Q3A_WINDOW 800 /* qwen3a: mel frames per encoder pass (8 s) */
#define MK_APROJ_HOP 160        /* samples per mel frame */

/* The audio family of a preset name (MK_ALM_NONE for the others); *stack gets its stack
 * factor (0 where the projector has none). */
int mk_alm_of_preset(const char *name, int *stack);
/* "ultravox", "voxtral", "qwen3a" (clip.projector_type), or "none". */
const char *mk_alm_name(int alm);

/* The tokens a family appends to its vocabulary (as control tokens); *n their number (0 and
 * NULL for none). Static storage. */
const char *const *mk_alm_extra_names(int alm, int *n);
/* The keys a converted model of the family carries beyond its architecture's, set after the
 * tokenizer keys are copied and the extra tokens appended: BOS/EOS ids (Voxtral <s>/</s>,
 * Qwen3-ASR <|im_end|> as its converter writes), qwen3vl's M-RoPE sections and deepstack count.
 * 0, or -1 when a token is missing. */
int mk_alm_meta(struct gguf_context *g, const struct mk_spec *s);

/* Write the family's projector for a text model of width n_embd_text (Ultravox: stack frames
 * stacked). Tiny widths, or the real checkpoint's for the real text width (Voxtral-Mini's 3072,
 * Qwen3-ASR-0.6B's 1024). A pure function of the arguments. 0, or -1 with err set. */
int mk_aproj_write(const char *out_path, int alm, int stack, int n_embd_text, uint64_t seed,
                   uint64_t *n_bytes, char *err, size_t errlen);

/* The tokens the pinned mtmd counts for n_samples of 16 kHz audio with this projector
 * (clip_n_output_tokens over the windows its preprocessor makes). */
long mk_aproj_tokens(int alm, int stack, long n_samples);
/* Whether the pinned mtmd can encode it: its graph makes as many tokens as it counts (1500
 * whisper frames, halved by Voxtral's average pool, must divide by the stack factor). */
int mk_aproj_encodable(int alm, int stack);

#endif
