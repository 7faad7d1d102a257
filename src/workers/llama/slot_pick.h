/* slot_pick.h — which free slot a new generate request takes, and how much of that slot's cached
 * prompt it keeps (prompt-prefix reuse, docs/PROMPT_CACHE.md). A decision as a pure function (no
 * engine, no I/O, no clock, no globals), like the daemon's sched/plan.h; gen.c applies it.
 *
 * A slot's sequence keeps the KV cells of its last request after it ends: tokens[0..n_tokens) are
 * the tokens at positions 0..n_tokens of that sequence. A new request keeps the longest prefix it
 * shares with one of them and decodes only the rest. What may be kept:
 *   - at most the shared prefix, and at most n_reusable of the cached tokens (in batch-invariant
 *     mode only the prompt chunks cut at multiples of the batch size are computed exactly as a
 *     fresh request would compute them, so only those are reusable: the answer never depends on
 *     the cache);
 *   - always fewer than the prompt's tokens: the last prompt token is decoded again for its logits;
 *   - a multiple of `align` (1 = any length; the batch size in batch-invariant mode, so that the
 *     rest is cut into the same chunks as without the cache);
 *   - a sequence whose memory cannot drop a suffix (recurrent or hybrid models: trim false) is
 *     kept only whole: the prompt must extend all n_tokens, else nothing is kept.
 *
 * Thread safety: pure; any thread. Never reads past n_tokens or n_prompt. */
#ifndef SY_SLOT_PICK_H
#define SY_SLOT_PICK_H

#include <stdbool.h>
#include <stdint.h>

/* What the decision sees of one slot. */
typedef struct sp_slot {
  bool busy;             /* running a request: not a candidate */
  const int32_t *tokens; /* the cached tokens (NULL when n_tokens is 0) */
  int32_t n_tokens;      /* cached tokens (positions 0..n_tokens-1 of its sequence) */
  int32_t n_reusable;    /* how many of the first cached tokens may be kept (<= n_tokens) */
  uint64_t last_used;    /* when its last request ended (larger = later): ties go to the oldest */
} sp_slot;

/* The length of the longest common prefix of a[0..na) and b[0..nb). */
int32_t sp_common_prefix(const int32_t *a, int32_t na, const int32_t *b, int32_t nb);

/* How many cached tokens a prompt of n_prompt tokens sharing `match` leading tokens with a slot
 * keeps, by the rules above (0 <= result < n_prompt, or 0 when n_prompt < 1). align < 1 counts as
 * 1. */
int32_t sp_keep(int32_t match, int32_t n_tokens, int32_t n_reusable, int32_t n_prompt,
                int32_t align, bool trim);

/* The free slot for a prompt: the one that keeps the most tokens; among equals, the least recently
 * used (smallest last_used, then the lowest index). With use_cache false (the request asked for
 * no reuse) the least recently used free slot, keeping 0. Returns its index and the tokens it
 * keeps in *keep, or -1 when every slot is busy. */
int sp_pick(const sp_slot *slots, int n_slots, const int32_t *prompt, int32_t n_prompt,
            int32_t align, bool trim, bool use_cache, int32_t *keep);

#endif
