/* tok.h — tokenising with a llama.h vocabulary, in pieces when a text is long.
 *
 * llama.cpp's special-token partition (tokenizer_st_partition, the pinned llama-vocab.cpp) walks
 * its fragment list from the start for every special token it finds, so a prompt's tokenisation
 * time grows with the square of its special tokens: 8000 chat messages took ~10 s here, 94 % of
 * it in that function. A long prompt is therefore cut right after occurrences of one special token
 * (the end-of-turn token: every chat message ends with it) and the pieces are tokenised one by
 * one. The result is the same tokens as one call — the partition cuts at that token anyway, and
 * what follows a special token is tokenised the same at a piece's start (SPM's space prefix, BPE's
 * pre-tokeniser) — as long as no special token the partition tries first can overlap the cut
 * token's text: tok_cut_init checks that, for BPE and SPM vocabularies only, and otherwise leaves
 * texts whole. tests/unit/test_tok.c compares both ways on the engine's vocabularies.
 *
 * Must never return tokens that differ from llama_tokenize's on the same text. A leaf: llama.h
 * only. */
#ifndef SY_TOK_H
#define SY_TOK_H

#include <stdbool.h>
#include <stddef.h>

#include "llama.h"

#define TOK_CUT_MAX 64              /* bytes of the cut token's text */
#define TOK_PIECE_BYTES (16u << 10) /* a text is cut into pieces of at least this many bytes */

typedef struct tok_cut {
  char text[TOK_CUT_MAX + 1]; /* the cut token's text; "" = never cut (texts go whole) */
  size_t len;
  size_t piece_bytes; /* the least bytes of a piece (the last one may be shorter) */
} tok_cut;

/* Choose v's cut token (its end-of-turn token, else end-of-sequence), or none when cutting could
 * change tokens (not BPE/SPM, a strip attribute, a special token overlapping its text). Reads
 * every token's attributes once (linear in the vocabulary). */
void tok_cut_init(tok_cut *c, const struct llama_vocab *v, size_t piece_bytes);

/* llama_tokenize(v, text, add_special, parse_special) into a malloc'd array (*out, *n_out),
 * in pieces when parse_special and c allows it. 0, or -1 (allocation, or a text over 1 GiB). */
int tok_text(const struct llama_vocab *v, const tok_cut *c, const char *text, size_t len,
             bool add_special, bool parse_special, llama_token **out, int32_t *n_out);

#endif
