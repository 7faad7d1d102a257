/* utf8.h — byte-level UTF-8 helpers shared by the workers: repair (every byte that does not
 * belong to a valid sequence becomes U+FFFD) and the length of an unfinished tail. Pure functions
 * of their arguments; they never read past the given length (engine text is arbitrary bytes,
 * not C strings) and never return invalid UTF-8. Thread safe (no state). */
#ifndef SY_UTF8_H
#define SY_UTF8_H

#include <stddef.h>

/* A valid UTF-8 copy of s[0..n) (RFC 3629: no overlong forms, surrogates or code points past
 * U+10FFFF); each byte that does not belong to a valid sequence becomes U+FFFD. Returns a
 * malloc'd NUL-terminated string (the caller frees it) and its length in *out_len (when not
 * NULL), or NULL when out of memory. */
char *sy_utf8_repair(const char *s, size_t n, size_t *out_len);

/* Bytes at the end of s[0..n) that start a valid UTF-8 sequence still missing bytes (0..3). */
size_t sy_utf8_incomplete_tail(const char *s, size_t n);

#endif
