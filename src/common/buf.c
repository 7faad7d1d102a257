/* buf.c — see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(sy_buf *b, size_t extra) {
  if (extra > (size_t)-1 / 2 - b->len) return -1;
  size_t need = b->len + extra + 1;
  if (b->limit && need - 1 > b->limit) return -1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  char *d = realloc(b->data, cap);
  if (!d) return -1;
  b->data = d;
  b->cap = cap;
  return 0;
}

int sy_buf_append(sy_buf *b, const void *p, size_t n) {
  if (buf_reserve(b, n) != 0) return -1;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int sy_buf_puts(sy_buf *b, const char *s) { return sy_buf_append(b, s, strlen(s)); }

int sy_buf_printf(sy_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || buf_reserve(b, (size_t)n) != 0) return -1;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void sy_buf_consume(sy_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
  }
  if (b->data) b->data[b->len] = '\0';
}

size_t sy_buf_take(sy_buf *b, char *dst, size_t max) {
  size_t n = b->len < max ? b->len : max;
  if (n) memcpy(dst, b->data, n);
  sy_buf_consume(b, n);
  return n;
}

void sy_buf_free(sy_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
