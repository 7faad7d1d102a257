/* hash.c — FNV-1a 64 (hash.h). */
#include "hash.h"

#define SY_FNV_PRIME 0x100000001b3ULL

uint64_t sy_fnv1a64(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * SY_FNV_PRIME;
  return h;
}
