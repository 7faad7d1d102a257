/* verify.h — mkmodel's --verify: load the written file the way a server would (from disk, through
 * llama.cpp) and run it once: a generative model decodes a prompt and greedily generates a few
 * tokens, an embedding model embeds two sentences. Checks numbers are finite and varied, not
 * meaningful. embedding: the model pools (bert, or a decoder given --pooling). Reads the model
 * file; must never write one. */
#ifndef MK_VERIFY_H
#define MK_VERIFY_H

#include <stddef.h>
#include <stdint.h>

struct llama_model;
struct llama_context;
struct llama_vocab;
struct mtmd_context;

/* Returns 0 when the model loads and runs; -1 with err set otherwise. A one-line summary (the
 * generated text, or the embedding size and norm) goes to summary. hybrid: the model must also
 * load as a hybrid (llama_model_is_hybrid: attention and recurrent layers). */
int mk_verify(const char *path, int embedding, int hybrid, int threads, char *summary,
              size_t summarylen, char *err, size_t errlen);

/* ---- what every check shares (this file's and the projectors' in mmproj.c, tts_qwen3.c) ---- */

/* The model at path, all on the CPU; NULL when llama.cpp cannot load it. */
struct llama_model *mk_verify_load(const char *path);
/* A CPU context of n_ctx tokens, batches of n_batch (n_ubatch too), threads for both, embeddings
 * on request; NULL when llama.cpp refuses. */
struct llama_context *mk_verify_context(struct llama_model *model, int n_ctx, int n_batch,
                                        int threads, int embeddings);
/* mtmd for the projector at path and its text model: CPU, no timings, no warm-up; NULL when it
 * cannot load. */
struct mtmd_context *mk_verify_mtmd(const char *path, const struct llama_model *model, int threads);
/* The id of the token whose text is exactly s, or -1. */
int32_t mk_verify_find_token(const struct llama_vocab *vocab, const char *s);

#endif
