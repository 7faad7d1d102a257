/* rng.h — the random numbers every mkmodel writer draws weights from (fill.c for the text models,
 * proj.c for the projectors): splitmix64 streams seeded per tensor by the name's
 * FNV-1a hash, and a bounded near-normal. Same seed, same bytes. */
#ifndef MK_RNG_H
#define MK_RNG_H

#include <stdint.h>

/* splitmix64: tiny, fast, good enough to decorrelate rows and tensors. */
static inline uint64_t mk_rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Sum of four 16-bit uniforms (Irwin-Hall, n=4), centred and scaled to unit variance: close to a
 * normal, and bounded (|z| < 3.47) so no outlier can blow up an activation. */
static inline float mk_rng_normalish(uint64_t *state) {
  uint64_t r = mk_rng_next(state);
  int32_t sum = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
                (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48);
  return ((float)sum - 131070.0f) * (1.0f / 37837.22f);
}

/* FNV-1a of a tensor's name: its stream's seed, whatever order tensors are written in. */
static inline uint64_t mk_rng_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ULL;
  }
  return h;
}

#endif
