/* arch_qwenvl.h — mkmodel's Qwen vision-language pair (docs/MKMODEL.md "Qwen-VL"): the text
 * architectures `qwen2vl` (Qwen2-VL / Qwen2.5-VL) and `qwen3vl` (Qwen3-VL) — their metadata beyond
 * qwen2's / qwen3's (M-RoPE sections, deepstack inputs) and Qwen's added tokens (vision markers,
 * tool-call and thinking tags at their real ids) — and the projectors that go with them, mtmd's
 * `qwen2.5vl_merger` (window attention, RMS norms, gated SiLU FFN) and `qwen3vl_merger` (learned
 * positions, fused qkv, GELU FFN, deepstack mergers), with their check through mtmd.
 * Widths are tiny, or the real checkpoints' when the text model has the real width
 * (Qwen2.5-VL-7B: 3584, Qwen3-VL-8B: 4096). Writes OUT.part, syncs and renames it; must never
 * leave a partial OUT behind. */
#ifndef MK_ARCH_QWENVL_H
#define MK_ARCH_QWENVL_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "spec.h"

/* An image of MK_QVL_VERIFY_GRID_X x MK_QVL_VERIFY_GRID_Y merged patches (patch x 2 pixels
 * each) becomes exactly that many tokens: mtmd rounds the size to whole merged patches and only
 * rescales outside 8..4096 tokens. */
#define MK_QVL_VERIFY_GRID_X 4
#define MK_QVL_VERIFY_GRID_Y 3

/* Whether s is a Qwen-VL text model (qwen2vl, qwen3vl). */
int mk_qwenvl_is(const struct mk_spec *s);

/* What a Qwen-VL spec needs beyond mk_spec_check: qwen3vl's text layers must outnumber its
 * deepstack inputs (llama.cpp adds them to the first layers' outputs, and the last layer's are cut
 * to the output rows first). 0, or -1 with a one-line reason in err. */
int mk_qwenvl_check(const struct mk_spec *s, char *err, size_t errlen);

/* Keys and vocabulary a converted Qwen-VL text model carries beyond qwen2's / qwen3's:
 * rope.dimension_sections, n_deepstack_layers (qwen3vl), and Qwen's added tokens in place of the
 * qwen2 vocabulary's [PAD...] placeholders. 0, or -1 when out of memory. */
int mk_qwenvl_meta(struct gguf_context *g, const struct mk_spec *s);

/* Write the projector for text model s (qwen2.5vl_merger for qwen2vl, qwen3vl_merger for
 * qwen3vl). The bytes are a pure function of (s's arch and width, seed). 0, or -1 with err. */
int mk_qwenvl_proj_write(const char *out_path, const struct mk_spec *s, uint64_t seed,
                         uint64_t *n_bytes, char *err, size_t errlen);

/* Load both with mtmd, tokenize a prompt around one image of the verify grid, check the image's
 * token count and positions (M-RoPE: max of the grid's sides), that <|vision_start|> is one
 * control token before it, evaluate and check the logits. 0 + summary, or -1 + err. */
int mk_qwenvl_proj_verify(const char *model_path, const char *mmproj_path, const struct mk_spec *s,
                          int threads, char *summary, size_t summarylen, char *err, size_t errlen);

#endif
