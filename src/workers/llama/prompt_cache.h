/* prompt_cache.h — a worker's prompt cache in RAM (docs/PROMPT_CACHE.md): saved sequence states,
 * each with the tokens it holds, kept when a slot is taken for another conversation and restored
 * when that conversation comes back. Bounded by a byte limit (the scheduler's share of the budget,
 * op cache_limit): least recently used entries go first. No engine here: a state is opaque bytes
 * (llama_state_seq_get_data_ext's), tokens are int32 (llama_token); gen.c saves and restores.
 *
 * Ownership: pcache_put takes the token and state buffers (malloc'd) whatever it returns;
 * pcache_take hands an entry's buffers to the caller. Thread safety: none (the worker's main
 * thread only). Must never hold more than its limit, nor two entries one of which is a prefix of
 * the other (the longer serves every prompt the shorter would). */
#ifndef SY_PROMPT_CACHE_H
#define SY_PROMPT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pc_entry {
  int32_t *tokens;    /* the tokens at positions 0..n_tokens of the saved sequence */
  int32_t n_tokens;   /* cells the state holds */
  int32_t n_reusable; /* of them, how many a request may keep (slot_pick.h) */
  void *state;        /* llama_state_seq_get_data_ext's bytes */
  size_t state_size;
  uint64_t last_used; /* larger = more recent */
} pc_entry;

typedef struct pcache {
  pc_entry *e;
  size_t n, cap;
  size_t bytes; /* what the entries take (pcache_entry_bytes, summed) */
  size_t limit; /* the most they may take; 0 = the cache is off */
  bool trim;    /* the model's memory can drop a suffix (slot_pick.h): a longer entry then serves
                   every prompt a shorter one it extends would; without, only whole entries do */
  uint64_t clock;
} pcache;

/* What an entry counts for: its state, its tokens and its bookkeeping. */
size_t pcache_entry_bytes(const pc_entry *e);
void pcache_init(pcache *c, size_t limit, bool trim);
void pcache_free(pcache *c);
/* Keep a state (taking tokens and state): entries it extends are dropped; when an entry already
 * extends it, only that entry is marked used (without trim: only an identical entry counts). Least
 * recently used entries make room; a state bigger than the limit is not kept. True when the cache
 * holds it (or an entry extending it). */
bool pcache_put(pcache *c, int32_t *tokens, int32_t n_tokens, int32_t n_reusable, void *state,
                size_t state_size);
/* The entry a prompt keeps the most of (sp_keep with align and the cache's trim; ties: most
 * recently used),
 * with that count in *keep; -1 when none keeps anything. */
int pcache_best(const pcache *c, const int32_t *prompt, int32_t n_prompt, int32_t align,
                int32_t *keep);
/* Remove entry i and hand its buffers to *out (the caller frees tokens and state). */
void pcache_take(pcache *c, int i, pc_entry *out);
/* A new limit: least recently used entries go until the rest fit. */
void pcache_set_limit(pcache *c, size_t limit);

#endif
