/* meta.c — GGUF metadata for llama_model_init_from_user, vocabulary and chat-template loading
 * (see meta.h). Reads files; must never write one. */
#include "meta.h"
#include "arch_qwenvl.h"
#include "aproj.h"
#include "moe.h"
#include "quant.h"
#include "tts_qwen3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llama.h"

#define MK_TEMPLATE_MAX (1u << 20)

/* ChatML, as Qwen2.5/Qwen3 instruct models use it (without their tool-calling parts).
 * llama.cpp recognises it by "<|im_start|>". */
static const char tmpl_chatml[] =
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

/* Llama 3 style; llama.cpp recognises it by "<|start_header_id|>" and "<|end_header_id|>". */
static const char tmpl_llama3[] =
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] "
    "| trim + "
    "'<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' "
    "-}}{%- endif -%}";

int mk_vocab_path(const char *arg, char *out, size_t outlen, char *err, size_t errlen) {
  size_t n = strlen(arg);
  int is_path = strchr(arg, '/') != NULL || (n > 5 && strcmp(arg + n - 5, ".gguf") == 0);
  int w;
  if (is_path) {
    w = snprintf(out, outlen, "%s", arg);
  } else {
    const char *dir = getenv("SWITCHYARD_VOCAB_DIR");
    if (!dir || !*dir) {
      snprintf(
          err, errlen,
          "vocabulary '%s' is a name, but SWITCHYARD_VOCAB_DIR is not set: set it to the engine's "
          "share/vocab folder ($(deps/engines.sh print-prefix)/share/vocab) or give --vocab "
          "PATH.gguf",
          arg);
      return -1;
    }
    w = snprintf(out, outlen, "%s/ggml-vocab-%s.gguf", dir, arg);
  }
  if (w < 0 || (size_t)w >= outlen) {
    snprintf(err, errlen, "vocabulary path too long");
    return -1;
  }
  if (access(out, R_OK) != 0) {
    snprintf(err, errlen, "cannot read vocabulary %s: %s", out, strerror(errno));
    return -1;
  }
  return 0;
}

struct gguf_context *mk_vocab_load(const char *path, int *n_vocab, char *err, size_t errlen) {
  struct gguf_init_params p = {.no_alloc = true, .ctx = NULL};
  struct gguf_context *g = gguf_init_from_file(path, p);
  if (!g) {
    snprintf(err, errlen, "%s is not a readable GGUF file", path);
    return NULL;
  }
  int64_t k = gguf_find_key(g, "tokenizer.ggml.tokens");
  if (k < 0 || gguf_get_kv_type(g, k) != GGUF_TYPE_ARRAY ||
      gguf_get_arr_type(g, k) != GGUF_TYPE_STRING) {
    snprintf(err, errlen, "%s has no tokenizer.ggml.tokens: not a vocabulary", path);
    gguf_free(g);
    return NULL;
  }
  size_t n = gguf_get_arr_n(g, k);
  if (n < 2 || n > (1u << 24)) {
    snprintf(err, errlen, "%s: implausible vocabulary size %zu", path, n);
    gguf_free(g);
    return NULL;
  }
  *n_vocab = (int)n;
  return g;
}

/* Copy the tokenizer.* keys of src into dst, except the chat template (mkmodel writes its own). */
static void copy_tokenizer_keys(struct gguf_context *dst, const struct gguf_context *src) {
  /* gguf_set_kv copies every key; copy all into a scratch context, then move over those wanted */
  struct gguf_context *tmp = gguf_init_empty();
  gguf_set_kv(tmp, src);
  int64_t n = gguf_get_n_kv(tmp);
  for (int64_t i = n - 1; i >= 0; i--) {
    const char *key = gguf_get_key(tmp, i);
    if (strncmp(key, "tokenizer.", 10) != 0 || strcmp(key, "tokenizer.chat_template") == 0) {
      gguf_remove_key(tmp, key);
    }
  }
  gguf_set_kv(dst, tmp);
  gguf_free(tmp);
}

/* Pocket-TTS's converter appends its learned input vectors to the embedding table as control
 * tokens (conversion/pockettts.py); the speech pipeline looks them up by text. */
static const char *const pockettts_extra[] = {"<|pad|>", "<|audio_bos|>"};
#define POCKETTTS_N_EXTRA 2

/* Append control tokens to the tokenizer arrays of g (tokens, scores, token types). 0 or -1. */
static int append_control_tokens(struct gguf_context *g, const char *const *extra, int n_extra) {
  int64_t kt = gguf_find_key(g, "tokenizer.ggml.tokens");
  int64_t ks = gguf_find_key(g, "tokenizer.ggml.scores");
  int64_t ky = gguf_find_key(g, "tokenizer.ggml.token_type");
  if (kt < 0) return -1;
  size_t n = gguf_get_arr_n(g, kt), m = n + (size_t)n_extra;
  const char **toks = malloc(m * sizeof *toks);
  float *scores = malloc(m * sizeof *scores);
  int32_t *types = malloc(m * sizeof *types);
  int rc = -1;
  if (!toks || !scores || !types) goto out;
  int have_s =
      ks >= 0 && gguf_get_arr_type(g, ks) == GGUF_TYPE_FLOAT32 && gguf_get_arr_n(g, ks) == n;
  int have_y = ky >= 0 && gguf_get_arr_type(g, ky) == GGUF_TYPE_INT32 && gguf_get_arr_n(g, ky) == n;
  for (size_t i = 0; i < n; i++) {
    toks[i] = gguf_get_arr_str(g, kt, i);
    scores[i] = have_s ? ((const float *)gguf_get_arr_data(g, ks))[i] : 0.0f;
    types[i] = have_y ? ((const int32_t *)gguf_get_arr_data(g, ky))[i] : LLAMA_TOKEN_TYPE_NORMAL;
  }
  for (int i = 0; i < n_extra; i++) {
    toks[n + (size_t)i] = extra[i];
    scores[n + (size_t)i] = -1000.0f;
    types[n + (size_t)i] = LLAMA_TOKEN_TYPE_CONTROL;
  }
  /* the setters copy; the old strings stay valid until the key is replaced, so build a new
   * context for the tokens first */
  struct gguf_context *tmp = gguf_init_empty();
  if (!tmp) goto out;
  gguf_set_arr_str(tmp, "tokenizer.ggml.tokens", toks, m);
  gguf_set_arr_data(tmp, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, m);
  gguf_set_arr_data(tmp, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, m);
  gguf_set_kv(g, tmp);
  gguf_free(tmp);
  rc = 0;
out:
  free(toks);
  free(scores);
  free(types);
  return rc;
}

/* Qwen2.5's and Qwen3's added tokens after <|im_end|> (151645), by id from 151646: the
 * vocabularies llama.cpp ships for tests keep [PAD151646]... there. <tool_call> and the rest
 * without "<|" are not special in Qwen's tokenizer_config (user-defined: still one token each). */
#define QWEN_FIRST_ADDED 151646
static const char *const qwen_added[MK_QWEN_ADDED_QWEN3] = {
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>", /* Qwen3: */
    "</tool_response>",
    "<think>",
    "</think>",
};

int mk_meta_qwen_added(struct gguf_context *g, int n_added) {
  int64_t kt = gguf_find_key(g, "tokenizer.ggml.tokens");
  int64_t ky = gguf_find_key(g, "tokenizer.ggml.token_type");
  if (n_added < 0 || n_added > MK_QWEN_ADDED_QWEN3) return -1;
  if (kt < 0 || ky < 0 || gguf_get_arr_type(g, ky) != GGUF_TYPE_INT32) return 0;
  size_t n = gguf_get_arr_n(g, kt);
  if (n != gguf_get_arr_n(g, ky) || n < (size_t)(QWEN_FIRST_ADDED + n_added)) return 0;
  /* only where the vocabulary holds placeholders: a real Qwen vocabulary stays as it is */
  char pad[32];
  snprintf(pad, sizeof pad, "[PAD%d]", QWEN_FIRST_ADDED);
  if (strcmp(gguf_get_arr_str(g, kt, QWEN_FIRST_ADDED), pad) != 0) return 0;
  const char **toks = malloc(n * sizeof *toks);
  int32_t *types = malloc(n * sizeof *types);
  int rc = -1;
  if (!toks || !types) goto out;
  const int32_t *old_types = gguf_get_arr_data(g, ky);
  for (size_t i = 0; i < n; i++) {
    toks[i] = gguf_get_arr_str(g, kt, i);
    types[i] = old_types[i];
  }
  for (int i = 0; i < n_added; i++) {
    toks[QWEN_FIRST_ADDED + i] = qwen_added[i];
    types[QWEN_FIRST_ADDED + i] = strncmp(qwen_added[i], "<|", 2) == 0
                                      ? LLAMA_TOKEN_TYPE_CONTROL
                                      : LLAMA_TOKEN_TYPE_USER_DEFINED;
  }
  /* the setters copy, and the old strings live until the key is replaced: build aside first */
  struct gguf_context *tmp = gguf_init_empty();
  if (!tmp) goto out;
  gguf_set_arr_str(tmp, "tokenizer.ggml.tokens", toks, n);
  gguf_set_arr_data(tmp, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, n);
  gguf_set_kv(g, tmp);
  gguf_free(tmp);
  rc = 1;
out:
  free(toks);
  free(types);
  return rc;
}

int mk_meta_extra_tokens(const struct mk_spec *s) {
  if (s->arch == MK_ARCH_QWEN3TTS) return MK_Q3T_N_EXTRA;
  int n_alm = 0;
  if (mk_alm_extra_names(s->alm, &n_alm)) return n_alm;
  return s->arch == MK_ARCH_POCKETTTS ? POCKETTTS_N_EXTRA : 0;
}

/* Type override for a tensor: llama_model_init_from_user creates tensors as F32 unless the
 * metadata holds a tensor of that name with another type (only its type is read). */
static void add_type_override(struct gguf_context *g, const char *name, enum ggml_type type) {
  if (type == GGML_TYPE_F32 || gguf_find_tensor(g, name) >= 0) return;
  struct ggml_tensor t;
  memset(&t, 0, sizeof(t));
  t.type = type;
  snprintf(t.name, sizeof(t.name), "%s", name);
  gguf_add_tensor(g, &t);
}

struct gguf_context *mk_meta_new(const struct mk_spec *s, const struct gguf_context *vocab,
                                 int n_vocab) {
  struct gguf_context *g = gguf_init_empty();
  const char *arch = mk_arch_name(s->arch);
  char key[128];
#define KEY(suffix) (snprintf(key, sizeof(key), "%s.%s", arch, (suffix)), key)

  gguf_set_val_str(g, "general.architecture", arch);
  gguf_set_val_str(g, "general.name", s->name);
  gguf_set_val_u32(g, KEY("vocab_size"), (uint32_t)(n_vocab + mk_meta_extra_tokens(s)));
  gguf_set_val_u32(g, KEY("context_length"), (uint32_t)s->n_ctx);
  gguf_set_val_u32(g, KEY("embedding_length"), (uint32_t)s->n_embd);
  gguf_set_val_u32(g, KEY("block_count"), (uint32_t)s->n_layer);
  gguf_set_val_u32(g, KEY("feed_forward_length"), (uint32_t)s->n_ff);
  gguf_set_val_u32(g, KEY("attention.head_count"), (uint32_t)s->n_head);
  gguf_set_val_u32(g, KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv);
  gguf_set_val_u32(g, KEY("attention.key_length"), (uint32_t)s->head_dim);
  gguf_set_val_u32(g, KEY("attention.value_length"), (uint32_t)s->head_dim);
  if (s->arch == MK_ARCH_BERT) {
    gguf_set_val_f32(g, KEY("attention.layer_norm_epsilon"), s->norm_eps);
    gguf_set_val_bool(g, KEY("attention.causal"), false);
  } else if (s->arch == MK_ARCH_POCKETTTS) {
    gguf_set_val_f32(g, KEY("attention.layer_norm_epsilon"), s->norm_eps);
    gguf_set_val_u32(g, KEY("rope.dimension_count"), (uint32_t)s->head_dim);
    gguf_set_val_f32(g, KEY("rope.freq_base"), s->rope_base);
  } else if (s->arch == MK_ARCH_QWEN3NEXT) {
    /* as convert_hf_to_gguf's Qwen3NextModel writes them (conversion/qwen.py) */
    const struct mk_hybrid *h = &s->hy;
    gguf_set_val_f32(g, KEY("attention.layer_norm_rms_epsilon"), s->norm_eps);
    gguf_set_val_u32(g, KEY("rope.dimension_count"), (uint32_t)(s->head_dim / 4));
    gguf_set_val_f32(g, KEY("rope.freq_base"), s->rope_base);
    gguf_set_val_u32(g, KEY("expert_count"), (uint32_t)h->n_expert);
    gguf_set_val_u32(g, KEY("expert_used_count"), (uint32_t)h->n_expert_used);
    gguf_set_val_u32(g, KEY("expert_feed_forward_length"), (uint32_t)s->n_ff);
    gguf_set_val_u32(g, KEY("expert_shared_feed_forward_length"), (uint32_t)s->n_ff);
    gguf_set_val_u32(g, KEY("ssm.conv_kernel"), (uint32_t)h->ssm_conv);
    gguf_set_val_u32(g, KEY("ssm.state_size"), (uint32_t)h->ssm_state);
    gguf_set_val_u32(g, KEY("ssm.group_count"), (uint32_t)h->ssm_k_heads);
    gguf_set_val_u32(g, KEY("ssm.time_step_rank"), (uint32_t)h->ssm_v_heads);
    gguf_set_val_u32(g, KEY("ssm.inner_size"), (uint32_t)(h->ssm_state * h->ssm_v_heads));
    gguf_set_val_u32(g, KEY("full_attention_interval"), (uint32_t)h->attn_interval);
  } else if (mk_moe_arch(s->arch)) {
    mk_moe_meta(g, s);
  } else {
    gguf_set_val_f32(g, KEY("attention.layer_norm_rms_epsilon"), s->norm_eps);
    gguf_set_val_u32(g, KEY("rope.dimension_count"), (uint32_t)s->head_dim);
    gguf_set_val_f32(g, KEY("rope.freq_base"), s->rope_base);
  }
  if (s->pooling >= 0) gguf_set_val_u32(g, KEY("pooling_type"), (uint32_t)s->pooling);
#undef KEY

  copy_tokenizer_keys(g, vocab);
  if (mk_moe_vocab(g, s) != 0) {
    gguf_free(g);
    return NULL;
  }
  if (s->arch == MK_ARCH_POCKETTTS) {
    if (append_control_tokens(g, pockettts_extra, POCKETTTS_N_EXTRA) != 0) {
      gguf_free(g);
      return NULL;
    }
    /* as the converter writes them: the pipeline adds no BOS/EOS */
    gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", false);
    gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
  }
  if (s->arch == MK_ARCH_QWEN3TTS &&
      (append_control_tokens(g, mk_qwen3tts_extra_names(), MK_Q3T_N_EXTRA) != 0 ||
       mk_qwen3tts_meta(g, s, n_vocab) != 0)) {
    gguf_free(g);
    return NULL;
  }
  if (mk_qwenvl_is(s) && mk_qwenvl_meta(g, s) != 0) {
    gguf_free(g);
    return NULL;
  }
  int n_alm = 0;
  const char *const *alm_extra = mk_alm_extra_names(s->alm, &n_alm);
  if ((alm_extra && append_control_tokens(g, alm_extra, n_alm) != 0) ||
      (s->alm && mk_alm_meta(g, s) != 0)) {
    gguf_free(g);
    return NULL;
  }
  /* a Qwen embedding model (last-token pooling) reads the hidden state of the <|endoftext|> its
   * tokenizer appends (Qwen3-Embedding's post-processor; the converter writes add_eos_token) */
  if (s->arch != MK_ARCH_BERT && s->pooling == LLAMA_POOLING_TYPE_LAST)
    gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", true);
  /* bert's loader insists on a token-type count; real bert vocabularies carry 2 */
  if (s->arch == MK_ARCH_BERT && gguf_find_key(g, "tokenizer.ggml.token_type_count") < 0) {
    gguf_set_val_u32(g, "tokenizer.ggml.token_type_count", 2);
  }

  /* weight types: every matrix of the table, including a tied model's output matrix (llama.cpp
   * creates it in memory anyway; a small type keeps the intermediate file small) */
  size_t n = 0;
  const struct mk_tensor_desc *t = mk_arch_tensors(s->arch, &n);
  for (size_t i = 0; i < n; i++) {
    if (t[i].init != MK_INIT_MATRIX || (t[i].rank_only && !mk_spec_keeps(s, &t[i]))) continue;
    int64_t ne0 = mk_spec_ne0(s, t[i].ne0);
    char name[GGML_MAX_NAME];
    if (t[i].per_layer == MK_GLOBAL) {
      add_type_override(g, t[i].suffix, mk_quant_matrix_type(s, t[i].suffix, -1, ne0));
      continue;
    }
    for (int il = 0; il < s->n_layer; il++) {
      if (!mk_spec_layer_has(s, &t[i], il)) continue;
      snprintf(name, sizeof(name), "blk.%d.%s", il, t[i].suffix);
      add_type_override(g, name, mk_quant_matrix_type(s, t[i].suffix, il, ne0));
    }
  }
  return g;
}

static char *read_file_bounded(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(MK_TEMPLATE_MAX + 1);
  size_t n = buf ? fread(buf, 1, MK_TEMPLATE_MAX + 1, f) : 0;
  int bad = !buf || ferror(f) || n > MK_TEMPLATE_MAX || n == 0;
  fclose(f);
  if (bad) {
    snprintf(err, errlen, "%s: %s", path,
             !buf                  ? "out of memory"
             : n > MK_TEMPLATE_MAX ? "larger than 1 MiB"
                                   : "empty or unreadable");
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  if (strlen(buf) != n) {
    snprintf(err, errlen, "%s: contains a NUL byte, not a template", path);
    free(buf);
    return NULL;
  }
  return buf;
}

int mk_chat_template_load(const char *value, const struct gguf_context *vocab, char **out,
                          char *err, size_t errlen) {
  *out = NULL;
  if (!value || strcmp(value, "none") == 0) return 0;
  const char *builtin = NULL;
  if (strcmp(value, "chatml") == 0) builtin = tmpl_chatml;
  if (strcmp(value, "llama3") == 0) builtin = tmpl_llama3;
  if (strcmp(value, "vocab") == 0) {
    int64_t k = gguf_find_key(vocab, "tokenizer.chat_template");
    if (k < 0 || gguf_get_kv_type(vocab, k) != GGUF_TYPE_STRING) {
      snprintf(err, errlen, "--chat-template vocab: the vocabulary has no tokenizer.chat_template");
      return -1;
    }
    builtin = gguf_get_val_str(vocab, k);
  }
  if (builtin) {
    *out = strdup(builtin);
    if (!*out) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
    return 0;
  }
  char inner[512];
  *out = read_file_bounded(value, inner, sizeof(inner));
  if (!*out) {
    snprintf(err, errlen,
             "--chat-template: '%s' is not none|chatml|llama3|vocab nor a readable file (%s)",
             value, inner);
    return -1;
  }
  return 0;
}
