/* slot_pick.c — the slot a request takes and the cached prefix it keeps (slot_pick.h): pure
 * functions, tested exhaustively by tests/unit/test_slot_pick.c. Must never keep a token the
 * prompt does not share, nor the whole prompt (its last token is decoded for logits). */
#include "slot_pick.h"

#include <stddef.h>

int32_t sp_common_prefix(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
  int32_t n = na < nb ? na : nb, i = 0;
  if (!a || !b) return 0;
  while (i < n && a[i] == b[i]) i++;
  return i;
}

int32_t sp_keep(int32_t match, int32_t n_tokens, int32_t n_reusable, int32_t n_prompt,
                int32_t align, bool trim) {
  if (align < 1) align = 1;
  if (n_prompt < 1 || match < 1 || n_tokens < 1) return 0;
  if (match > n_tokens) match = n_tokens;
  /* a memory that cannot drop a suffix is kept whole or not at all */
  if (!trim && match < n_tokens) return 0;
  int32_t keep = match;
  if (n_reusable < keep) keep = n_reusable;
  if (keep > n_prompt - 1) keep = n_prompt - 1;
  if (keep < 0) keep = 0;
  keep -= keep % align;
  if (!trim && keep != n_tokens) return 0; /* cut short: the state would hold the suffix too */
  return keep;
}

int sp_pick(const sp_slot *slots, int n_slots, const int32_t *prompt, int32_t n_prompt,
            int32_t align, bool trim, bool use_cache, int32_t *keep) {
  int best = -1;
  int32_t best_keep = 0;
  for (int i = 0; i < n_slots; i++) {
    const sp_slot *s = &slots[i];
    if (s->busy) continue;
    int32_t k = 0;
    if (use_cache && prompt) {
      int32_t match = sp_common_prefix(s->tokens, s->n_tokens, prompt, n_prompt);
      k = sp_keep(match, s->n_tokens, s->n_reusable, n_prompt, align, trim);
    }
    if (best < 0 || k > best_keep || (k == best_keep && s->last_used < slots[best].last_used)) {
      best = i;
      best_keep = k;
    }
  }
  *keep = best_keep;
  return best;
}
