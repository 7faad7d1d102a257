/* argnum.h — a whole number from a command-line argument, checked: every program's options
 * (daemon, CLI, workers, tools) parse numbers through this, so `--load-timeout abc` is an error
 * and never silently 0. */
#ifndef SY_ARGNUM_H
#define SY_ARGNUM_H

/* s as a base-10 integer in lo..hi into *out: 0, or -1 (and *out untouched) when s is empty, has
 * anything after the digits, overflows, or is out of range. s may be NULL (-1). */
int sy_parse_long(const char *s, long lo, long hi, long *out);

#endif
