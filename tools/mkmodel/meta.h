/* meta.h — the GGUF metadata mkmodel hands to llama_model_init_from_user: hyper-parameters,
 * the tokenizer copied from a real vocabulary file, and per-tensor type overrides; plus the chat
 * template text. Reads the vocabulary and template files; must never write any file. */
#ifndef MK_META_H
#define MK_META_H

#include <stddef.h>

#include "gguf.h"
#include "spec.h"

/* Resolve --vocab: a path (contains '/' or ends in ".gguf") is used as is; a name such as
 * "qwen2" becomes $SWITCHYARD_VOCAB_DIR/ggml-vocab-qwen2.gguf. Returns 0, or -1 with err set. */
int mk_vocab_path(const char *arg, char *out, size_t outlen, char *err, size_t errlen);

/* Open a vocabulary GGUF (metadata only). Returns NULL with err set when it cannot be read or
 * has no tokenizer.ggml.tokens. *n_vocab receives the number of tokens. */
struct gguf_context *mk_vocab_load(const char *path, int *n_vocab, char *err, size_t errlen);

/* Tokens the architecture appends to the vocabulary (pockettts: <|pad|>, <|audio_bos|>). */
int mk_meta_extra_tokens(const struct mk_spec *s);
/* Qwen's added tokens (<|vision_start|>, <tool_call>, <think>, ...) at their real ids in place of
 * the [PAD151646]... placeholders of the Qwen vocabularies the engine ships: the first n_added
 * (Qwen2.5's 19 or Qwen3's 23), typed as Qwen's converter types them. 1 done, 0 not such a
 * vocabulary (left as it is), -1 out of memory or a bad n_added. */
#define MK_QWEN_ADDED_QWEN25 19
#define MK_QWEN_ADDED_QWEN3 23
int mk_meta_qwen_added(struct gguf_context *g, int n_added);

/* Build the metadata for llama_model_init_from_user (NULL when out of memory). The caller frees
 * it with gguf_free. */
struct gguf_context *mk_meta_new(const struct mk_spec *s, const struct gguf_context *vocab,
                                 int n_vocab);

/* The chat template for --chat-template VALUE: NULL for "none", a built-in for "chatml" and
 * "llama3", the vocabulary's for "vocab", else the contents of the file VALUE (at most 1 MiB).
 * Returns 0 and sets *out (malloc'd, or NULL), or -1 with err set. */
int mk_chat_template_load(const char *value, const struct gguf_context *vocab, char **out,
                          char *err, size_t errlen);

#endif
