/* argnum.c — see argnum.h. Must never accept a partial number or wrap around. */
#include "argnum.h"

#include <errno.h>
#include <stdlib.h>

int sy_parse_long(const char *s, long lo, long hi, long *out) {
  if (!s || !*s) return -1;
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}
