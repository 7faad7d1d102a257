/* buf.h — a growable byte buffer with a hard cap, for bodies and stream output.
 * A buffer that would grow past its cap refuses (returns -1) instead of growing. */
#ifndef SY_BUF_H
#define SY_BUF_H

#include <stddef.h>

typedef struct sy_buf {
  char *data; /* always NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
  size_t limit; /* 0 = no limit */
} sy_buf;

int sy_buf_append(sy_buf *b, const void *p, size_t n);
int sy_buf_puts(sy_buf *b, const char *s);
int sy_buf_printf(sy_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes. */
void sy_buf_consume(sy_buf *b, size_t n);
/* Move up to max of the first bytes into dst (a stream's body callback): returns how many. */
size_t sy_buf_take(sy_buf *b, char *dst, size_t max);
void sy_buf_free(sy_buf *b);

#endif
