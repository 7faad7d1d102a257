/* aproj.c — mkmodel's audio LLM families: presets, vocabulary additions, keys, the `voxtral` and
 * `qwen3a` projectors and mtmd's token counts (see aproj.h). The tensor names, shapes and keys
 * are those llama.cpp's converter writes and its clip loader reads (conversion/ultravox.py,
 * conversion/qwen3vl.py, tools/mtmd/clip.cpp, models/whisper-enc.cpp, models/qwen3a.cpp). */
#include "aproj.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mmproj.h"
#include "proj.h"

static const struct {
  const char *preset;
  int alm, stack;
} alm_presets[] = {
    {"tiny-voxtral", MK_ALM_VOXTRAL, 4},   {"voxtral-mini-3b", MK_ALM_VOXTRAL, 4},
    {"tiny-qwen3asr", MK_ALM_QWEN3A, 0},   {"qwen3-asr-0.6b", MK_ALM_QWEN3A, 0},
    {"tiny-ultravox", MK_ALM_ULTRAVOX, 8},
};

int mk_alm_of_preset(const char *name, int *stack) {
  for (size_t i = 0; i < sizeof alm_presets / sizeof *alm_presets; i++) {
    if (strcmp(alm_presets[i].preset, name) == 0) {
      *stack = alm_presets[i].stack;
      return alm_presets[i].alm;
    }
  }
  *stack = 0;
  return MK_ALM_NONE;
}

const char *mk_alm_name(int alm) {
  switch (alm) {
    case MK_ALM_ULTRAVOX:
      return "ultravox";
    case MK_ALM_VOXTRAL:
      return "voxtral";
    case MK_ALM_QWEN3A:
      return "qwen3a";
    default:
      return "none";
  }
}

/* Mistral's control tokens (tekken's first ids in the real vocabulary): what Voxtral's prompts,
 * mtmd's [BEGIN_AUDIO] and Mistral's chat template (tools included) use */
static const char *const voxtral_extra[] = {
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "[IMG]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
    "[ARGS]",
    "[CALL_ID]",
    "[AUDIO]",
    "[BEGIN_AUDIO]",
    "[TRANSCRIBE]",
};
/* Qwen3-Omni / Qwen3-ASR's audio markers (mtmd wraps the audio in <|audio_start|> ...
 * <|audio_end|>) and Qwen3-ASR's answer separator ("language English<asr_text>...") */
static const char *const qwen3a_extra[] = {"<|audio_start|>", "<|audio_end|>", "<|audio_pad|>",
                                           "<asr_text>"};

const char *const *mk_alm_extra_names(int alm, int *n) {
  if (alm == MK_ALM_VOXTRAL) {
    *n = (int)(sizeof voxtral_extra / sizeof *voxtral_extra);
    return voxtral_extra;
  }
  if (alm == MK_ALM_QWEN3A) {
    *n = (int)(sizeof qwen3a_extra / sizeof *qwen3a_extra);
    return qwen3a_extra;
  }
  *n = 0;
  return NULL;
}

/* The id of the token whose text is s in g's tokenizer.ggml.tokens, or -1. */
static long meta_find_token(const struct gguf_context *g, const char *s) {
  int64_t k = gguf_find_key(g, "tokenizer.ggml.tokens");
  size_t n = k >= 0 ? gguf_get_arr_n(g, k) : 0;
  for (size_t i = n; i-- > 0;) { /* the appended ones are at the end */
    if (strcmp(gguf_get_arr_str(g, k, i), s) == 0) return (long)i;
  }
  return -1;
}

int mk_alm_meta(struct gguf_context *g, const struct mk_spec *s) {
  if (s->alm == MK_ALM_VOXTRAL) {
    long bos = meta_find_token(g, "<s>"), eos = meta_find_token(g, "</s>");
    if (bos < 0 || eos < 0) return -1;
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", true);
    gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
  }
  if (s->alm == MK_ALM_QWEN3A) {
    /* Qwen3ASRTextModel.set_vocab: BOS and EOS are <|im_end|> */
    long im_end = meta_find_token(g, "<|im_end|>");
    if (im_end < 0) return -1;
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t)im_end);
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t)im_end);
  }
  /* Qwen3-ASR's qwen3vl text keys (M-RoPE sections, no deepstack): arch_qwenvl.c's */
  return 0;
}

/* ---- projectors -------------------------------------------------------------------------- */

/* Encoder widths: tiny, or a real checkpoint's. */
struct ap_shape {
  int embd, layers, heads, ff;
  int conv; /* qwen3a: conv2d channels (downsample_hidden_size) */
};
static const struct ap_shape ap_tiny = {64, 2, 4, 128, 8};
/* Voxtral-Mini-3B's audio tower: whisper-large-v3's encoder */
static const struct ap_shape ap_voxtral_real = {1280, 32, 20, 5120, 0};
/* Qwen3-ASR-0.6B's audio tower (thinker_config.audio_config) */
static const struct ap_shape ap_qwen3a_real = {896, 18, 14, 3584, 480};

struct ap_args {
  int alm, stack, n_embd_text;
  const struct ap_shape *S;
  uint64_t seed;
};

/* whisper encoder, stack frames, then Voxtral's projector: linear (4E -> text), GELU, linear
 * (text -> text), no biases */
static void ap_voxtral_tensors(mk_pb *b, const void *arg) {
  const struct ap_args *a = arg;
  const int E = a->S->embd;
  mk_pb_whisper_encoder(b, E, MK_APROJ_MEL, a->S->layers, a->S->ff);
  mk_pb_mat(b, (int64_t)E * a->stack, a->n_embd_text, "mm.a.mlp.1.weight");
  mk_pb_mat(b, a->n_embd_text, a->n_embd_text, "mm.a.mlp.2.weight");
}

/* three 3x3 stride-2 conv2d (1 -> C -> C -> C channels) with biases ([1, 1, C], as the
 * converter unsqueezes them), conv_out (16*C -> E, no bias), sinusoid positions (learned here),
 * pre-norm blocks (k without a bias), ln_post, then proj1 (E -> E) GELU proj2 (E -> text) */
static void ap_qwen3a_tensors(mk_pb *b, const void *arg) {
  const struct ap_args *a = arg;
  const int E = a->S->embd, C = a->S->conv;
  for (int i = 1; i <= 3; i++) {
    int in = i == 1 ? 1 : C;
    mk_pb_tensor4(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)(9 * in)), 3, 3, in, C,
                  "a.conv2d.%d.weight", i);
    mk_pb_tensor(b, GGML_TYPE_F32, MK_P_ZERO, 0, 1, 1, C, "a.conv2d.%d.bias", i);
  }
  mk_pb_mat(b, (int64_t)(MK_APROJ_MEL / 8) * C, E, "a.conv_out.weight");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 0.02f, E, MK_PB_WHISPER_POS, 1,
               "a.position_embd.weight");
  for (int il = 0; il < a->S->layers; il++) mk_pb_encoder_block(b, "a", il, E, a->S->ff, 0);
  mk_pb_norm(b, E, "a.post_ln");
  mk_pb_linear(b, E, E, "mm.a.mlp.1");
  mk_pb_linear(b, E, a->n_embd_text, "mm.a.mlp.2");
}

static void ap_keys(struct gguf_context *g, const void *arg) {
  const struct ap_args *a = arg;
  int vox = a->alm == MK_ALM_VOXTRAL;
  mk_pb_header(g, vox ? "mkmodel voxtral projector" : "mkmodel qwen3-asr projector", a->seed,
               vox ? "Voxtral-style whisper encoder + stacked frames + GELU MLP, meaningless output"
                   : "Qwen3-ASR-style conv2d + encoder + MLP, meaningless output");
  gguf_set_val_bool(g, "clip.has_vision_encoder", false);
  gguf_set_val_bool(g, "clip.has_audio_encoder", true);
  /* Voxtral's converter writes clip.projector_type, Qwen3-ASR's (a mixed-modality family)
   * clip.audio.projector_type */
  gguf_set_val_str(g, vox ? "clip.projector_type" : "clip.audio.projector_type",
                   mk_alm_name(a->alm));
  gguf_set_val_u32(g, "clip.audio.embedding_length", (uint32_t)a->S->embd);
  gguf_set_val_u32(g, "clip.audio.feed_forward_length", (uint32_t)a->S->ff);
  gguf_set_val_u32(g, "clip.audio.block_count", (uint32_t)a->S->layers);
  gguf_set_val_u32(g, "clip.audio.projection_dim", (uint32_t)a->n_embd_text);
  gguf_set_val_u32(g, "clip.audio.attention.head_count", (uint32_t)a->S->heads);
  gguf_set_val_f32(g, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
  gguf_set_val_u32(g, "clip.audio.num_mel_bins", MK_APROJ_MEL);
  if (vox) gguf_set_val_u32(g, "clip.audio.projector.stack_factor", (uint32_t)a->stack);
}

int mk_aproj_write(const char *out_path, int alm, int stack, int n_embd_text, uint64_t seed,
                   uint64_t *n_bytes, char *err, size_t errlen) {
  if (alm == MK_ALM_ULTRAVOX)
    return mk_mmproj_audio_write(out_path, n_embd_text, stack, seed, n_bytes, err, errlen);
  if ((alm != MK_ALM_VOXTRAL && alm != MK_ALM_QWEN3A) || n_embd_text <= 0 || n_embd_text > 65536 ||
      (alm == MK_ALM_VOXTRAL && (stack < 1 || stack > 64))) {
    snprintf(err, errlen, "aproj: no %s projector for text width %d", mk_alm_name(alm),
             n_embd_text);
    return -1;
  }
  const struct ap_shape *S = &ap_tiny;
  if (alm == MK_ALM_VOXTRAL && n_embd_text == 3072) S = &ap_voxtral_real;
  if (alm == MK_ALM_QWEN3A && n_embd_text == 1024) S = &ap_qwen3a_real;
  const struct ap_args a = {alm, stack, n_embd_text, S, seed};
  /* seeded apart from the text model's streams */
  return mk_pb_write(out_path, seed * 0x2545f4914f6cdd1dULL + 0x616c6d70ULL + (uint64_t)alm,
                     "aproj", alm == MK_ALM_VOXTRAL ? ap_voxtral_tensors : ap_qwen3a_tensors,
                     ap_keys, &a, n_bytes, err, errlen);
}

/* ---- token counts ------------------------------------------------------------------------ */

/* clip_n_output_tokens for one 30 s whisper window (3000 mel frames): stacked (the count rounds
 * 3000 up to the stack factor), halved by the stride-2 conv, halved again by Voxtral's average
 * pool (audio_has_avgpool) */
static long ap_window_count(int alm, int stack) {
  long n = 2 * MK_PB_WHISPER_POS;
  if (stack > 1) n = (n + stack - 1) / stack;
  n /= 2;
  if (alm == MK_ALM_VOXTRAL) n /= 2;
  return n;
}

/* what the graph makes of the same window: 1500 frames, pooled, then stacked with padding */
static long ap_window_graph(int alm, int stack) {
  long n = MK_PB_WHISPER_POS;
  if (alm == MK_ALM_VOXTRAL) n /= 2;
  return stack > 1 ? (n + stack - 1) / stack : n;
}

long mk_aproj_tokens(int alm, int stack, long n_samples) {
  if (n_samples <= 0) return 0;
  if (alm == MK_ALM_QWEN3A) {
    long frames = n_samples / MK_APROJ_HOP + 1, total = 0;
    for (long off = 0; off < frames; off += MK_APROJ_Q3A_WINDOW) {
      long w = frames - off < MK_APROJ_Q3A_WINDOW ? frames - off : MK_APROJ_Q3A_WINDOW;
      total += (w + MK_APROJ_Q3A_CHUNK - 1) / MK_APROJ_Q3A_CHUNK * MK_APROJ_Q3A_CHUNK_TOKENS;
    }
    return total;
  }
  long windows = (n_samples + MK_APROJ_WINDOW - 1) / MK_APROJ_WINDOW;
  return windows * ap_window_count(alm, stack);
}

int mk_aproj_encodable(int alm, int stack) {
  return alm == MK_ALM_QWEN3A || ap_window_count(alm, stack) == ap_window_graph(alm, stack);
}
