/* hash.h — FNV-1a, 64 bits: a fast non-cryptographic hash for names and checksums of our own
 * files (prompt cache file names and checksums, folder names from model names). Never for
 * anything an attacker could exploit by choosing collisions.
 * Thread safety: pure. */
#ifndef SY_HASH_H
#define SY_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SY_FNV_OFFSET 0xcbf29ce484222325ULL /* the hash of nothing: the first h to pass */

/* h folded with n bytes at p (start with SY_FNV_OFFSET; chain calls to hash several pieces). */
uint64_t sy_fnv1a64(uint64_t h, const void *p, size_t n);

#endif
