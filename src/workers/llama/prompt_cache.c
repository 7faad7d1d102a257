/* prompt_cache.c — the worker's prompt cache in RAM (prompt_cache.h): a small array of saved
 * states, least recently used out. Tested by tests/unit/test_prompt_cache.c. Must never exceed
 * its limit or lose track of a buffer it owns. */
#include "prompt_cache.h"

#include <stdlib.h>
#include <string.h>

#include "slot_pick.h"

size_t pcache_entry_bytes(const pc_entry *e) {
  return e->state_size + (size_t)e->n_tokens * sizeof *e->tokens + sizeof *e;
}

void pcache_init(pcache *c, size_t limit, bool trim) {
  memset(c, 0, sizeof *c);
  c->limit = limit;
  c->trim = trim;
}

static void drop(pcache *c, size_t i) {
  c->bytes -= pcache_entry_bytes(&c->e[i]);
  free(c->e[i].tokens);
  free(c->e[i].state);
  c->e[i] = c->e[--c->n];
}

void pcache_free(pcache *c) {
  while (c->n) drop(c, c->n - 1);
  free(c->e);
  c->e = NULL;
  c->n = c->cap = c->bytes = 0;
}

/* Drop least recently used entries until `room` more bytes fit under the limit. */
static void make_room(pcache *c, size_t room) {
  while (c->n && c->bytes + room > c->limit) {
    size_t lru = 0;
    for (size_t i = 1; i < c->n; i++)
      if (c->e[i].last_used < c->e[lru].last_used) lru = i;
    drop(c, lru);
  }
}

bool pcache_put(pcache *c, int32_t *tokens, int32_t n_tokens, int32_t n_reusable, void *state,
                size_t state_size) {
  pc_entry ne = {tokens, n_tokens, n_reusable, state, state_size, ++c->clock};
  size_t need = pcache_entry_bytes(&ne);
  bool kept = false;
  for (size_t i = 0; i < c->n && !kept;) {
    pc_entry *e = &c->e[i];
    int32_t m = sp_common_prefix(e->tokens, e->n_tokens, tokens, n_tokens);
    if (!c->trim && (m != n_tokens || m != e->n_tokens)) { /* only the same state serves alike */
      i++;
    } else if (m == n_tokens &&
               e->n_reusable >= n_reusable) { /* it already serves every such prompt */
      e->last_used = ne.last_used;
      kept = true;
    } else if (m == e->n_tokens && n_reusable >= e->n_reusable) {
      drop(c, i); /* the new one serves every prompt this one did */
    } else {
      i++;
    }
  }
  if (kept || n_tokens < 1 || need > c->limit) {
    free(tokens);
    free(state);
    return kept;
  }
  make_room(c, need);
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 8;
    pc_entry *ge = realloc(c->e, cap * sizeof *ge);
    if (!ge) {
      free(tokens);
      free(state);
      return false;
    }
    c->e = ge;
    c->cap = cap;
  }
  c->e[c->n++] = ne;
  c->bytes += need;
  return true;
}

int pcache_best(const pcache *c, const int32_t *prompt, int32_t n_prompt, int32_t align,
                int32_t *keep) {
  int best = -1;
  *keep = 0;
  for (size_t i = 0; i < c->n; i++) {
    const pc_entry *e = &c->e[i];
    int32_t m = sp_common_prefix(e->tokens, e->n_tokens, prompt, n_prompt);
    int32_t k = sp_keep(m, e->n_tokens, e->n_reusable, n_prompt, align, c->trim);
    if (k > 0 && (k > *keep || (k == *keep && e->last_used > c->e[best].last_used))) {
      best = (int)i;
      *keep = k;
    }
  }
  return best;
}

void pcache_take(pcache *c, int i, pc_entry *out) {
  *out = c->e[i];
  c->bytes -= pcache_entry_bytes(out);
  c->e[i] = c->e[--c->n];
}

void pcache_set_limit(pcache *c, size_t limit) {
  c->limit = limit;
  make_room(c, 0);
}
