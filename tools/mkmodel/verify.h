/* verify.h — mkmodel's --verify: load the written file the way a server would (from disk, through
 * llama.cpp) and run it once: a generative model decodes a prompt and greedily generates a few
 * tokens, an embedding model embeds two sentences. Checks numbers are finite and varied, not
 * meaningful. embedding: the model pools (bert, or a decoder given --pooling). Reads the model
 * file; must never write one. */
#ifndef MK_VERIFY_H
#define MK_VERIFY_H

#include <stddef.h>

/* Returns 0 when the model loads and runs; -1 with err set otherwise. A one-line summary (the
 * generated text, or the embedding size and norm) goes to summary. */
int mk_verify(const char *path, int embedding, int threads, char *summary, size_t summarylen,
              char *err, size_t errlen);

#endif
