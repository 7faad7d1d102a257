/* quant.h — mkmodel's quantization mixes: --type q4_k_m / q5_k_m / q6_k pick a weight type per
 * tensor the way llama-quantize's ftypes of those names do (output and some attn_v / ffn_down in a
 * larger type), so a random-weight file has the size and the kernels of a downloaded one.
 * Pure functions of the spec: must never touch files or the engine. */
#ifndef MK_QUANT_H
#define MK_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "spec.h"

enum mk_mix { MK_MIX_NONE = 0, MK_MIX_Q4_K_M, MK_MIX_Q5_K_M, MK_MIX_COUNT };

/* Parse a --type value that names a mix ("q4_k_m", "q5_k_m") or a type only this module adds
 * ("q6_k", "q5_k"). Sets *mix and *base (the type of most matrices) and returns 0; -1 when the
 * name is neither (then mk_type_parse decides). */
int mk_mix_parse(const char *s, int *mix, enum ggml_type *base);

/* Type of one matrix: `suffix` is the table entry's ("attn_v.weight"), il its layer (-1 for
 * global tensors), ne0 its row length. Without a mix: mk_spec_matrix_type(s->wtype, ne0). */
enum ggml_type mk_quant_matrix_type(const struct mk_spec *s, const char *suffix, int il,
                                    int64_t ne0);

/* llama_ftype to record as general.file_type. */
int32_t mk_quant_ftype(const struct mk_spec *s);

/* Name of the weight type for messages: "Q4_K_M" for a mix, else ggml's type name. */
const char *mk_quant_name(const struct mk_spec *s);

/* --fast: fill a matrix from a pool of MK_POOL_BLOCKS random blocks already in the target type
 * (quantized once per (type, row length) with ggml_quantize_chunk), each block of each row picked
 * by a PRNG of (seed, tensor, row, block). Every block carries its own scale, so the result has
 * the distribution of a quantized random matrix at memcpy speed, for multi-GB models. Still a pure
 * function of seed, shape and type (not of --threads); not the same bytes as the default fill.
 * Returns 0, or -1 when out of memory. dst holds nrows rows of ggml_row_size(type, ne0). */
#define MK_POOL_BLOCKS 4096
int mk_pool_fill(enum ggml_type type, int64_t ne0, int64_t nrows, float scale, uint64_t seed,
                 uint64_t tensor_seed, char *dst, int threads);
/* Free the cached pools. */
void mk_pool_free(void);
#endif
