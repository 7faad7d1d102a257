/* save.h — write mkmodel's output GGUF from the tensors llama.cpp created and mkmodel filled.
 * The metadata is the set llama.cpp was given (hyper-parameters and the vocabulary's tokenizer
 * keys, as a converter writes them) plus the chat template, file type and a description; the
 * tensors are those a real checkpoint of the architecture carries, in llama.cpp's creation order.
 * (llama_model_save_to_file is not used: it leaves out token_embd.weight for models without an
 * output matrix — bert — and writes every hyper-parameter llama.cpp knows, unset ones as 0 or -1,
 * e.g. pooling_type = 4294967295, which misleads other readers.)
 * Writes OUT.part, syncs it and renames it over OUT; must never leave a partial OUT behind. */
#ifndef MK_SAVE_H
#define MK_SAVE_H

#include <stddef.h>
#include <stdint.h>

#include "ggml.h"
#include "gguf.h"
#include "spec.h"

struct mk_save_info {
  int n_tensors;     /* tensors written */
  uint64_t n_params; /* elements in them */
  uint64_t n_bytes;  /* size of OUT */
};

/* kv: the metadata given to llama_model_init_from_user (its keys are copied, its tensor entries
 * are not). tensors: the kept tensors, borrowed (their data is read). chat_template may be NULL.
 * Returns 0, or -1 with err set (also when a tensor the architecture needs is missing). */
int mk_save(const char *out_path, const struct mk_spec *s, const struct gguf_context *kv,
            const char *chat_template, struct ggml_tensor *const *tensors, int n_tensors,
            struct mk_save_info *info, char *err, size_t errlen);

#endif
