/* text.c — stop strings in streamed text: the earliest match, and how much of the tail to hold
 * back because a stop string may start there (UTF-8 repair and tails are src/common/utf8.c).
 * Pure functions of their arguments, the lowest file of the worker; they must never read past
 * the given lengths (token pieces are arbitrary bytes, not C strings). */
#include <stdlib.h>
#include <string.h>

#include "worker.h"

long text_find_stop(const char *s, size_t n, char *const *stops, const size_t *stop_lens,
                    int n_stops) {
  long best = -1;
  for (int k = 0; k < n_stops; k++) {
    if (stop_lens[k] == 0 || stop_lens[k] > n) continue;
    const char *p = memmem(s, n, stops[k], stop_lens[k]);
    if (p && (best < 0 || p - s < best)) best = p - s;
  }
  return best;
}

size_t text_stop_holdback(const char *s, size_t n, char *const *stops, const size_t *stop_lens,
                          int n_stops) {
  size_t best = 0;
  for (int k = 0; k < n_stops; k++) {
    size_t max = stop_lens[k] > 0 ? stop_lens[k] - 1 : 0;
    if (max > n) max = n;
    for (size_t len = max; len > best; len--) {
      if (s[n - len] == stops[k][0] && memcmp(s + n - len, stops[k], len) == 0) {
        best = len;
        break;
      }
    }
  }
  return best;
}
