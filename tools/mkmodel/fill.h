/* fill.h — deterministic random weights for mkmodel: the llama_model_set_tensor_data_t callback
 * that llama_model_init_from_user calls once per tensor. Rows are generated as F32 from a per-row
 * PRNG seeded by (seed, tensor name, row) and converted with ggml_quantize_chunk, in parallel; the
 * result does not depend on the thread count. Also records which tensors are to be written (those a
 * real checkpoint carries; the rest are zeroed). Must never allocate more than one chunk of F32
 * rows per thread (never a whole F32 copy of a tensor), and never touch files. */
#ifndef MK_FILL_H
#define MK_FILL_H

#include <stdint.h>

#include "ggml.h"
#include "spec.h"

struct mk_fill {
  const struct mk_spec *spec; /* borrowed */
  int threads;
  int fast; /* --fast: matrices from a pool of quantized blocks (quant.h, mk_pool_fill) */
  /* results, for the report */
  int n_tensors;  /* tensors filled */
  int n_zeroed;   /* tensors llama.cpp created that real checkpoints lack (zeroed, dropped later) */
  int n_fallback; /* matrices stored in another type because their rows do not fit the block size */
  uint64_t n_bytes; /* bytes written into kept tensors */
  int failed;       /* set when memory ran out or a tensor had an unusable layout */
  /* the tensors to write, in creation order (borrowed from the model; array owned) */
  struct ggml_tensor **kept;
  int n_kept, cap_kept;
};

/* llama_model_set_tensor_data_t: userdata is a struct mk_fill (zero it, then set spec and threads).
 */
void mk_fill_tensor(struct ggml_tensor *tensor, void *userdata);
/* Free what the callback allocated (the kept array, not the tensors). */
void mk_fill_deinit(struct mk_fill *f);

#endif
